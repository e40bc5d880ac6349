"""Benchmark the item bank: validate, sign, pack, verify and load a 10,000-item release.

    .venv/bin/python benchmarks/bench_bank.py [--items 10000]

Items are generated with distinct formulas (so the math cache does not make
rendering look cheaper than it is), one file each, with a few media files.
Targets (issue 3): verify under 2 s; import into PostgreSQL under 10 s.
The import step runs cbt's real import (verify, validate, store) against a
throw-away embedded PostgreSQL, or CBT_DATABASE_URL when set.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from itembank import package
from itembank.formats.yaml_format import serialise_bank_info, serialise_item
from itembank.model import BankInfo, Item, ItemType, Option, ShortKey, Statement, Status
from itembank.render import _formula
from itembank.validate import validate_path

TOPICS = ("ham-so", "mu-logarit", "nguyen-ham-tich-phan", "toa-do-oxyz")


def make_item(n: int, rng: random.Random) -> Item:
    a, b, c = rng.randint(2, 9), rng.randint(1, 20), rng.randint(-9, 9)
    kind = (ItemType.SINGLE,) * 6 + (ItemType.TRUEFALSE4,) * 2 + (ItemType.SHORT, ItemType.MULTIPLE)
    item_type = kind[n % len(kind)]
    stem = f"Cho hàm số $y = {a}x^3 - {b}x^2 + {c}$. Tính $\\int_0^{{{a}}} y\\,dx$ và $y'({c})$."
    fields: dict = {}
    if item_type in (ItemType.SINGLE, ItemType.MULTIPLE):
        correct = {0} if item_type == ItemType.SINGLE else {0, 2}
        fields["options"] = tuple(
            Option("ABCD"[i], f"$\\frac{{{a + i}}}{{{b + i}}} + \\sqrt{{{c + 10 + i}}}$", i in correct)
            for i in range(4)
        )
    elif item_type == ItemType.TRUEFALSE4:
        fields["statements"] = tuple(
            Statement(s, f"Hàm số đạt cực trị tại $x = {a * i - b}$.", i % 2 == 0) for i, s in enumerate("abcd")
        )
    else:
        fields["answer"] = ShortKey(str(n % 1000))
    return Item(
        id=f"B-{n:05d}",
        version=1,
        type=item_type,
        subject="toan",
        grade=12,
        topic=TOPICS[n % 4],
        level=n % 4 + 1,
        points=Decimal("0.25"),
        lang="vi",
        status=Status.APPROVED,
        stem=stem,
        tags=("bench",),
        explanation=f"$y' = {3 * a}x^2 - {2 * b}x$.",
        **fields,
    )


def write_bank(folder: Path, count: int) -> None:
    rng = random.Random(2025)
    (folder / "items").mkdir(parents=True)
    (folder / "media").mkdir()
    bank = BankInfo(name="bench", version="1", title="benchmark")
    (folder / "bank.yaml").write_text(serialise_bank_info(bank), encoding="utf-8")
    for i in range(20):
        (folder / "media" / f"figure-{i}.png").write_bytes(os.urandom(20_000))
    for n in range(count):
        item = make_item(n, rng)
        (folder / "items" / f"{item.id}.yaml").write_text(serialise_item(item), encoding="utf-8")


def timed(label: str, action: Callable[[], object]) -> float:
    _formula.cache_clear()  # each step starts cold, as in a fresh process
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    print(f"  {label:<34} {seconds:7.2f} s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="cbt-bench-") as temp:
        folder, archive = Path(temp) / "bank", Path(temp) / "bank.cbtbank"
        print(f"{args.items} items, {os.cpu_count()} CPUs")
        timed("generate", lambda: write_bank(folder, args.items))

        def validate() -> None:
            problems = validate_path(folder)
            assert not problems, problems[:3]

        timed("validate (parse + render)", validate)
        timed("sign (validates again)", lambda: package.sign(folder, key))
        timed("pack", lambda: package.pack(folder, archive))
        print(f"  {'archive size':<34} {archive.stat().st_size / 1e6:7.2f} MB")
        folder_seconds = timed("verify folder", lambda: package.verify(folder, [key.public_key()]))
        archive_seconds = timed("verify .cbtbank", lambda: package.verify(archive, [key.public_key()]))
        timed("load_release .cbtbank (no database)", lambda: package.load_release(archive, [key.public_key()]))
        import_seconds = import_into_postgres(archive, key)
        verdict = "met" if max(folder_seconds, archive_seconds) < 2 else "MISSED"
        print(f"target verify < 2 s: {verdict}")
        print(f"target import < 10 s: {'met' if import_seconds < 10 else 'MISSED'}")


def import_into_postgres(archive: Path, key: Ed25519PrivateKey) -> float:
    """cbt's full import into a real, fresh database; returns its seconds."""
    import asyncio

    import asyncpg

    from cbt import bank
    from cbt.platform import db
    from itembank.keys import public_key_pem

    async def run(dsn: str) -> float:
        conn = await asyncpg.connect(dsn)
        try:
            await db.migrate(conn)
            await bank.trust_key(conn, public_key_pem(key.public_key()), "bench")
            _formula.cache_clear()
            start = time.perf_counter()
            result = await bank.import_release(conn, archive)
            seconds = time.perf_counter() - start
            print(f"  {'import into PostgreSQL':<34} {seconds:7.2f} s  ({result})")
            return seconds
        finally:
            await conn.close()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from throwaway_pg import throwaway_postgres

    with throwaway_postgres("cbt-bench-bank-") as (dsn, _):
        return asyncio.run(run(dsn))


if __name__ == "__main__":
    main()
