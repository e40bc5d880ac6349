"""Waking the proctor consoles of an exam: PostgreSQL NOTIFY on the channel
`cbt_exam`, which every worker process listens to (proctor.Hub)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiohttp import web

from cbt.platform import appkeys


async def notify(conn, exam_id: int) -> None:
    """Wake the proctor consoles of this exam (every worker process listens)."""
    await conn.execute("SELECT pg_notify('cbt_exam', $1)", str(exam_id))


class Notifier:
    """Wakes proctor consoles after saves, starts and submits, at most once per
    exam every `delay` seconds from each worker.

    Why not a NOTIFY in each save's transaction: PostgreSQL takes one
    cluster-wide lock to queue notifications at commit and holds it through
    the commit's WAL flush, so a NOTIFY in every save serialises all saves
    (measured: a quarter of the throughput of the same save without it). The
    consoles redraw at most every proctor.UPDATE_SECONDS anyway."""

    def __init__(self, pool: asyncpg.Pool, delay: float = 0.5) -> None:
        self.pool, self.delay = pool, delay
        self.pending: set[int] = set()
        self.tasks: set[asyncio.Task] = set()

    def soon(self, exam_id: int) -> None:
        if exam_id in self.pending:
            return
        self.pending.add(exam_id)
        task = asyncio.get_running_loop().create_task(self._fire(exam_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _fire(self, exam_id: int) -> None:
        await asyncio.sleep(self.delay)
        self.pending.discard(exam_id)
        try:
            await self.pool.execute("SELECT pg_notify('cbt_exam', $1)", str(exam_id))
        except (asyncpg.PostgresError, OSError) as e:  # the consoles also refresh on their own
            logging.getLogger("cbt.notify").warning("proctor notify failed: %s", e)


async def notifier_ctx(app: web.Application):
    """cleanup_ctx (after the pool): this worker's Notifier."""
    app[appkeys.NOTIFIER] = notifier = Notifier(app[appkeys.POOL])
    yield
    for task in list(notifier.tasks):
        task.cancel()
