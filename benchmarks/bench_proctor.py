"""What a proctor console's live view costs the server, as the exam grows.

    python benchmarks/bench_proctor.py [--candidates 5000] [--rounds 3] [--repeat 200]

Every open console re-reads its room's state (cbt.delivery.proctor.room_state) when
the exam changes, at most every 2 s (proctor.UPDATE_SECONDS), so a school
with a proctor per room of 40 runs one such read per room every 2 s while
students save. This sets up a throw-away embedded PostgreSQL, an exam of N
candidates seated 40 to a room, has every candidate sign in, start and save
`rounds` batches through `cbt serve` (benchmarks/bench_delivery.py), then
times room_state on a pool like the server's (generic plans) for one room and
for the whole exam, and prints ms per read and the rows PostgreSQL touched.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_delivery import drive, prepare, serving
from throwaway_pg import throwaway_postgres

from cbt.delivery import proctor
from cbt.platform import db


async def time_reads(dsn: str, repeat: int) -> None:
    pool = await db.create_pool(dsn, 1, 1)
    try:
        async with pool.acquire() as conn:
            exam = await conn.fetchrow("SELECT * FROM exams WHERE code = 'BENCH'")
            rooms = [
                r[0]
                for r in await conn.fetch(
                    "SELECT DISTINCT room FROM candidates WHERE exam_id = $1 ORDER BY 1", exam["id"]
                )
            ]
            for label, room, n in (
                ("one room", rooms[len(rooms) // 2], repeat),
                ("whole exam", None, max(3, repeat // 20)),
            ):
                await proctor.room_state(conn, exam, room)  # the plan is made on first use, as in a worker
                before = await _blocks(conn)
                times = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    body = await proctor.room_state(conn, exam, room)
                    times.append(time.perf_counter() - t0)
                touched = (await _blocks(conn) - before) / n
                print(
                    f"{label}: {len(body['candidates'])} candidates, {n} reads: "
                    f"median {statistics.median(times) * 1000:.2f} ms, "
                    f"max {max(times) * 1000:.2f} ms; {touched:.0f} buffer pages a read"
                )
    finally:
        await pool.close()


async def _blocks(conn: asyncpg.Connection) -> int:
    # Buffer pages read by this database (hits and reads): the work a read did,
    # independent of how busy the machine is. The statistics lag until flushed.
    await conn.execute("SELECT pg_stat_force_next_flush()")
    return await conn.fetchval("SELECT blks_hit + blks_read FROM pg_stat_database WHERE datname = current_database()")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    with throwaway_postgres("cbt-bench-proctor-") as (dsn, root):
        tickets, _ = asyncio.run(prepare(dsn, root, args.candidates))
        with serving(dsn, 2) as base:
            out = asyncio.run(drive(base, tickets, 100, args.rounds))
        print(
            f"{args.candidates} candidates started and saved {len(out['timings']['changes'])} batches "
            f"({len(out['errors'])} errors)"
        )
        asyncio.run(time_reads(dsn, args.repeat))


if __name__ == "__main__":
    main()
