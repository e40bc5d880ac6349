"""Start and autosave latency under a simple concurrent client.

    python benchmarks/bench_delivery.py [--candidates 500] [--concurrency 100] [--workers 2] [--rounds 5]

Sets up a throw-away embedded PostgreSQL with the demo bank, an exam with
N candidates (opened: forms drawn), starts `cbt serve --workers W`, then with
an aiohttp client at the given concurrency: every candidate signs in, all
press Start at once, then each sends `rounds` batches of 5 answer changes.
Prints p50/p95/p99 of Start and of a 5-change batch, the exam-open time, and
checks that every acknowledged change is in the database. The full load
tests (Locust, the storm and district profiles) are issue 7's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throwaway_pg import throwaway_postgres

from cbt import bank, exams
from cbt.platform import db
from cbt.roster import Candidate
from itembank import keys as ik
from itembank import package
from itembank.demo import write_demo_bank

EXAM = """
code: BENCH
title: Benchmark
release: demo-thpt 2025.1
duration_minutes: 90
window: {{opens: {opens}, closes: {closes}, late_entry_minutes: 600}}
sections:
  - title: I
    rows:
      - {{topic: ham-so, level: 1, count: 3, type: single}}
      - {{topic: mu-logarit, level: 1, count: 3, type: single}}
      - {{topic: nguyen-ham-tich-phan, level: 1, count: 3, type: single}}
      - {{topic: toa-do-oxyz, level: 1, count: 3, type: single}}
  - title: II
    rows:
      - {{topic: ham-so, level: 2, count: 1, type: truefalse4}}
      - {{topic: mu-logarit, level: 2, count: 1, type: truefalse4}}
      - {{topic: nguyen-ham-tich-phan, level: 2, count: 1, type: truefalse4}}
      - {{topic: toa-do-oxyz, level: 2, count: 1, type: truefalse4}}
  - title: III
    rows:
      - {{topic: ham-so, level: 3, count: 1, type: short}}
      - {{topic: mu-logarit, level: 3, count: 1, type: short}}
      - {{topic: nguyen-ham-tich-phan, level: 3, count: 1, type: short}}
      - {{topic: toa-do-oxyz, level: 3, count: 1, type: short}}
"""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000


async def prepare(dsn: str, root: Path, n: int) -> tuple[list[str], float]:
    folder = root / "bank"
    write_demo_bank(folder)
    made = ik.generate_key_files("bench", root / "keys")
    package.sign(folder, ik.load_private_key(made.private_path))
    conn = await asyncpg.connect(dsn)
    try:
        await db.migrate(conn)
        await bank.trust_key(conn, made.public_path.read_bytes(), "bench")
        await bank.import_release(conn, folder)
        await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ('B', 'Bench', 'department')")
        now = dt.datetime.now(dt.UTC)
        await exams.create_exam(
            conn,
            exams.parse_exam(
                EXAM.format(
                    opens=(now - dt.timedelta(minutes=5)).isoformat(), closes=(now + dt.timedelta(hours=5)).isoformat()
                )
            ),
            "B",
        )
        await exams.add_roster(
            conn,
            "BENCH",
            [
                Candidate(f"{i:010d}", f"Thí sinh {i}", dt.date(2008, 1, 1), "12A", "S", f"P{i // 40:02d}")
                for i in range(1, n + 1)
            ],
        )
        start = time.perf_counter()
        await exams.open_exam(conn, "BENCH")
        opened = time.perf_counter() - start
        tickets = [t["ticket"] for t in await exams.issue_tickets(conn, "BENCH")]
    finally:
        await conn.close()
    return tickets, opened


async def drive(base: str, tickets: list[str], concurrency: int, rounds: int) -> dict:
    limit = asyncio.Semaphore(concurrency)
    timings: dict[str, list[float]] = {"start": [], "changes": []}
    acked: dict[int, int] = {}
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    # No shared cookie jar: each candidate is a browser of its own, with its own device cookie.
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http:

        async def login(ticket):
            async with limit, http.post(base + "/api/v1/login", json={"ticket": ticket}) as r:
                return {
                    "Authorization": f"Bearer {(await r.json())['token']}",
                    "Cookie": f"cbt_device={r.cookies['cbt_device'].value}",
                }

        signed_in = await asyncio.gather(*(login(t) for t in tickets))

        async def start(headers):
            async with limit:
                t0 = time.perf_counter()
                async with http.post(base + "/api/v1/start", json={}, headers=headers) as r:
                    body = await r.json()
                    timings["start"].append(time.perf_counter() - t0)
                    if r.status != 200:
                        errors.append(f"start {r.status}")
                    return body

        starts = await asyncio.gather(*(start(h) for h in signed_in))

        async def sit(headers, body):
            rng = random.Random(headers["Authorization"])
            singles = [i for s in body["form"]["sections"] for i in s["items"] if i["type"] == "single"]
            seq = 0
            for _ in range(rounds):
                batch = []
                for _ in range(5):
                    seq += 1
                    q = rng.choice(singles)
                    batch.append({"seq": seq, "item": q["ref"], "value": rng.choice(q["options"])["id"]})
                async with limit:
                    t0 = time.perf_counter()
                    async with http.post(base + "/api/v1/changes", json={"changes": batch}, headers=headers) as r:
                        result = await r.json()
                        timings["changes"].append(time.perf_counter() - t0)
                        if r.status != 200:
                            errors.append(f"changes {r.status}")
                        else:
                            acked[body["attempt"]["id"]] = result["saved_seq"]
                await asyncio.sleep(rng.uniform(0, 0.2))

        t0 = time.perf_counter()
        await asyncio.gather(*(sit(h, b) for h, b in zip(signed_in, starts, strict=True)))
        elapsed = time.perf_counter() - t0
    return {"timings": timings, "acked": acked, "errors": errors, "autosave_seconds": elapsed}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(dsn: str, workers: int) -> Iterator[str]:
    """`cbt serve --workers W` on the database, on a free loopback port; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
    env.update(CBT_DATABASE_URL=dsn, CBT_SECRET_KEY="bench-" + "z" * 40, CBT_LOG_LEVEL="WARNING")
    server = subprocess.Popen(
        [sys.executable, "-m", "cbt", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        start_new_session=True,
    )
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with throwaway_postgres("cbt-bench-delivery-") as (dsn, root):
        tickets, opened = asyncio.run(prepare(dsn, root, args.candidates))
        print(f"exam opened: {args.candidates} forms drawn and stored in {opened:.2f} s")
        with serving(dsn, args.workers) as base:
            out = asyncio.run(drive(base, tickets, args.concurrency, args.rounds))
        t = out["timings"]
        print(
            f"start: n={len(t['start'])} p50 {pct(t['start'], 50):.0f} ms, p95 {pct(t['start'], 95):.0f} ms, "
            f"p99 {pct(t['start'], 99):.0f} ms "
            f"(all {len(tickets)} pressed at once, concurrency {args.concurrency})"
        )
        print(
            f"5-change batch: n={len(t['changes'])} p50 {pct(t['changes'], 50):.0f} ms, "
            f"p95 {pct(t['changes'], 95):.0f} ms, p99 {pct(t['changes'], 99):.0f} ms; "
            f"{len(t['changes']) / out['autosave_seconds']:.0f} batches/s"
        )
        print(f"errors: {len(out['errors'])} {sorted(set(out['errors']))[:5]}")

        async def lost() -> int:
            conn = await asyncpg.connect(dsn)
            try:
                missing = 0
                for attempt_id, saved in out["acked"].items():
                    stored = await conn.fetchval(
                        "SELECT count(*) FROM response_history WHERE attempt_id = $1 AND seq <= $2", attempt_id, saved
                    )
                    missing += saved - stored
                return missing
            finally:
                await conn.close()

        print(f"acknowledged changes missing from the database: {asyncio.run(lost())}")
        print(f"(mean of starts {statistics.mean(t['start']) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
