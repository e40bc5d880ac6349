"""Opening an exam for real: forms for 10,000 candidates from a 5,000-item bank.

    python benchmarks/bench_forms.py [--candidates 10000] [--items 5000]

Imports a generated bank into a throw-away embedded PostgreSQL, creates an
exam with a 40-item blueprint and a roster, then times cbt's own
`generate_forms` (draw every form in worker processes, store them with
COPY) and, separately, rendering every item that appears on some form.
Target (issue 4): forms for 10,000 candidates in under 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_bank import make_item
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from throwaway_pg import throwaway_postgres

from cbt import bank, exams
from cbt.platform import db
from cbt.roster import Candidate
from itembank import package
from itembank.formats.yaml_format import serialise_bank_info, serialise_item
from itembank.keys import public_key_pem
from itembank.model import BankInfo

TOPICS = ("ham-so", "mu-logarit", "nguyen-ham-tich-phan", "toa-do-oxyz")


def exam_yaml() -> str:
    now = dt.datetime.now(dt.UTC)
    rows = []
    counts = [3, 3, 2, 2]  # per level: 4 topics x (3+3+2+2) = 40 items
    for topic in TOPICS:
        for level, count in zip((1, 2, 3, 4), counts, strict=True):
            rows.append(f"      - {{topic: {topic}, level: {level}, count: {count}}}")
    return (
        f"""
code: FORMS
title: Forms benchmark
release: bench-forms 1
duration_minutes: 90
window: {{opens: {(now - dt.timedelta(minutes=5)).isoformat()}, closes: {(now + dt.timedelta(hours=5)).isoformat()}}}
sections:
  - title: All
    rows:
"""
        + "\n".join(rows)
        + "\n"
    )


async def run(dsn: str, root: Path, n_items: int, n_candidates: int) -> None:
    folder = root / "bank"
    (folder / "items").mkdir(parents=True)
    (folder / "media").mkdir()
    (folder / "bank.yaml").write_text(serialise_bank_info(BankInfo(name="bench-forms", version="1")), "utf-8")
    rng = random.Random(4)
    for i in range(n_items):
        # make_item ties the level to the topic; spread levels over every topic.
        item = dataclasses.replace(make_item(i, rng), level=(i // 4) % 4 + 1)
        (folder / "items" / f"{item.id}.yaml").write_text(serialise_item(item), "utf-8")
    key = Ed25519PrivateKey.generate()
    package.sign(folder, key)
    conn = await asyncpg.connect(dsn)
    try:
        await db.migrate(conn)
        await bank.trust_key(conn, public_key_pem(key.public_key()), "bench")
        await bank.import_release(conn, folder)
        await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ('B', 'Bench', 'department')")
        await exams.create_exam(conn, exams.parse_exam(exam_yaml()), "B")
        await exams.add_roster(
            conn,
            "FORMS",
            [
                Candidate(f"{i:010d}", f"Thí sinh {i}", dt.date(2008, 1, 1), "12A", "S", f"P{i // 40:03d}")
                for i in range(1, n_candidates + 1)
            ],
        )
        exam = await exams.get_exam(conn, "FORMS")
        start = time.perf_counter()
        async with conn.transaction():
            count = await exams.generate_forms(conn, exam)
        forms_s = time.perf_counter() - start
        print(
            f"generate_forms: {count} forms of 40 items from {n_items} items, drawn and stored in {forms_s:.2f} s "
            f"(target < 5 s: {'met' if forms_s < 5 else 'MISSED'})"
        )
        start = time.perf_counter()
        rendered = await exams.render_exam_items(conn, exam)
        print(
            f"render_exam_items: {rendered} distinct items rendered to student HTML in "
            f"{time.perf_counter() - start:.2f} s"
        )
        digests = await conn.fetchval("SELECT count(DISTINCT digest) FROM candidate_forms")
        sample = json.loads(await conn.fetchval("SELECT form FROM candidate_forms LIMIT 1"))
        print(f"distinct forms: {digests}; items per form: {sum(len(s['items']) for s in sample['sections'])}")
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--items", type=int, default=5_000)
    args = ap.parse_args()
    with throwaway_postgres("cbt-bench-forms-") as (dsn, root):
        asyncio.run(run(dsn, root, args.items, args.candidates))


if __name__ == "__main__":
    main()
