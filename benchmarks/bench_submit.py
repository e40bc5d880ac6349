"""Submit latency: a whole exam pressing Submit at once.

    python benchmarks/bench_submit.py [--candidates 300] [--concurrency 100] [--workers 2] [--rounds 3]

The same set-up as bench_delivery.py (a throw-away PostgreSQL, the demo bank,
`cbt serve --workers W`): every candidate signs in, starts and saves `rounds`
batches of answers; then all of them press Submit together. Prints p50/p95/p99
of a submit and how long the whole exam took to submit, then checks that every
candidate got a receipt, how many of the receipts name an audit chain head,
and that each such head is that candidate's own submit event.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_delivery import pct, prepare, serving
from throwaway_pg import throwaway_postgres


async def drive(base: str, tickets: list[str], concurrency: int, rounds: int) -> dict:
    limit = asyncio.Semaphore(concurrency)
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def sit(ticket):
            async with limit:
                async with http.post(base + "/api/v1/login", json={"ticket": ticket}) as r:
                    headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
                async with http.post(base + "/api/v1/start", json={}, headers=headers) as r:
                    body = await r.json()
                rng = random.Random(ticket)
                singles = [i for s in body["form"]["sections"] for i in s["items"] if i["type"] == "single"]
                for n in range(rounds):
                    batch = [
                        {"seq": n * 5 + k + 1, "item": q["ref"], "value": rng.choice(q["options"])["id"]}
                        for k, q in enumerate(rng.sample(singles, 5))
                    ]
                    async with http.post(base + "/api/v1/changes", json={"changes": batch}, headers=headers) as r:
                        if r.status != 200:
                            errors.append(f"changes {r.status}")
            return headers

        sitting = await asyncio.gather(*(sit(t) for t in tickets))
        timings: list[float] = []
        tokens: list[str | None] = []

        async def submit(headers):
            async with limit:
                t0 = time.perf_counter()
                async with http.post(base + "/api/v1/submit", json={}, headers=headers) as r:
                    body = await r.json()
                    timings.append(time.perf_counter() - t0)
                    if r.status != 200:
                        errors.append(f"submit {r.status}")
                        return
                    tokens.append(body["result"]["receipt_token"])

        t0 = time.perf_counter()
        await asyncio.gather(*(submit(h) for h in sitting))
        elapsed = time.perf_counter() - t0
    return {"timings": timings, "tokens": tokens, "errors": errors, "elapsed": elapsed}


async def check_heads(dsn: str, tokens: list[str | None]) -> tuple[int, int, int]:
    """(receipts, receipts naming a head, heads that are their own submit event)."""
    conn = await asyncpg.connect(dsn)
    try:
        with_head = own = 0
        for token in tokens:
            if not token:
                continue
            part = token.split(".")[0]
            payload = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            head = payload.get("head")
            if head is None:
                continue
            with_head += 1
            row = await conn.fetchrow(
                "SELECT kind, attempt_id, hash FROM audit_events e JOIN exams x ON x.id = e.exam_id "
                "WHERE x.code = $1 AND e.seq = $2",
                payload["exam"],
                head["seq"],
            )
            own += (
                row is not None
                and row["kind"] == "submit"
                and row["attempt_id"] == payload["attempt"]
                and bytes(row["hash"]).hex() == head["hash"]
            )
        return sum(1 for t in tokens if t), with_head, own
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with throwaway_postgres("cbt-bench-submit-") as (dsn, root):
        tickets, _ = asyncio.run(prepare(dsn, root, args.candidates))
        with serving(dsn, args.workers) as base:
            out = asyncio.run(drive(base, tickets, args.concurrency, args.rounds))
        t = out["timings"]
        print(
            f"submit: n={len(t)} p50 {pct(t, 50):.0f} ms, p95 {pct(t, 95):.0f} ms, p99 {pct(t, 99):.0f} ms; "
            f"all {len(tickets)} submitted in {out['elapsed']:.2f} s (concurrency {args.concurrency}, "
            f"{args.workers} workers)"
        )
        print(f"errors: {len(out['errors'])} {sorted(set(out['errors']))[:5]}")
        issued, with_head, own = asyncio.run(check_heads(dsn, out["tokens"]))
        print(
            f"receipts: {issued} of {len(tickets)}; naming a chain head: {with_head}; "
            f"that head is the candidate's own submit event: {own}"
        )


if __name__ == "__main__":
    main()
