"""The ceiling: the least a save endpoint can do on this machine, to measure cbt's autosave against.

    python -m loadtests.bare --dsn DSN --port P [--workers W]

POST /bare with {"key": int, "changes": [...]} parses the JSON and does one upsert in PostgreSQL,
nothing else: no authentication, no validation, no audit, no notification. It runs like
`cbt serve`: W processes sharing the port with SO_REUSEPORT, on the same event loop (uvloop) and
with the same JSON helpers (orjson), each with the same asyncpg pool as cbt's
(cbt.platform.db.create_pool), so the ratio of the two throughputs is what cbt's own work costs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal

import asyncpg
from aiohttp import web

from cbt.platform import db
from cbt.platform.config import Settings
from cbt.platform.jsonio import json_body, json_bytes, read_json
from cbt.platform.server import event_loop

POOL = web.AppKey("pool", asyncpg.Pool)
TABLE = """CREATE TABLE IF NOT EXISTS bare_saves (key bigint PRIMARY KEY, seq integer NOT NULL,
                                                    changes jsonb NOT NULL, at timestamptz NOT NULL)"""
UPSERT = """INSERT INTO bare_saves (key, seq, changes, at) VALUES ($1, $2, $3::jsonb, now())
            ON CONFLICT (key) DO UPDATE SET seq = excluded.seq, changes = excluded.changes, at = excluded.at
            RETURNING seq"""


async def save(request: web.Request) -> web.Response:
    body = await read_json(request)
    changes = body["changes"]
    seq = await request.app[POOL].fetchval(
        UPSERT, int(body["key"]), max(c["seq"] for c in changes), json_bytes(changes).decode()
    )
    return json_body({"saved_seq": seq})


def make_app(dsn: str) -> web.Application:
    settings = Settings()

    async def pool_ctx(app: web.Application):
        # The same pool as cbt's (size and settings), so only the work per request differs.
        app[POOL] = await db.create_pool(dsn, settings.pool_min, settings.pool_max)
        yield
        await app[POOL].close()

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/bare", save)
    return app


def worker(dsn: str, port: int) -> None:
    # As cbt's workers run (cbt/server.py run_worker).
    web.run_app(
        make_app(dsn), host="127.0.0.1", port=port, reuse_port=True, access_log=None, print=None, loop=event_loop()
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    async def create_table() -> None:
        conn = await asyncpg.connect(args.dsn)
        try:
            await conn.execute(TABLE)
        finally:
            await conn.close()

    asyncio.run(create_table())
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker, args=(args.dsn, args.port)) for _ in range(args.workers)]
    for p in procs:
        p.start()

    def stop(*_):
        for p in procs:
            if p.pid:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
