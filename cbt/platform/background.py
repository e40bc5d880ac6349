"""Periodic background work in each worker, started and stopped with the app (cleanup_ctx)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web


def periodic(
    work: Callable[[web.Application], Awaitable[object]], seconds: Callable[[web.Application], float], what: str
):
    """A cleanup_ctx running work(app) every seconds(app) while the app runs.

    A failure (the database may be restarting) is logged and the loop goes
    on: the next round retries, so no worker needs a restart."""
    log = logging.getLogger(f"cbt.{what.split()[0]}")

    async def ctx(app: web.Application):
        async def loop():
            while True:
                try:
                    await work(app)
                except (
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    asyncpg.exceptions.InternalClientError,
                    OSError,
                ) as e:
                    log.warning("%s failed: %s", what, e)
                except Exception:
                    # Never let the loop die: its work (sealing audit events,
                    # closing expired attempts) would silently stop.
                    log.exception("%s failed", what)
                await asyncio.sleep(seconds(app))

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
