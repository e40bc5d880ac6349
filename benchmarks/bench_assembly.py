"""Benchmark form assembly: forms for 10,000 candidates from a 5,000-item bank.

    .venv/bin/python benchmarks/bench_assembly.py [--candidates 10000] [--items 5000] [--workers 2]

The pool has 4 topics x 4 levels and every item type; the blueprint is a
40-item paper shaped like the Vietnamese Math exam (Part I 12 single-choice,
Part II 4 true/false, Part III 6 short answers) plus a fourth section of 18
items, some of any type, so rows compete for the same items. Each candidate's
work is what cbt does when an exam opens: derive the seed (HMAC), draw the
form, turn it into JSON and digest it.

Target (issue 4): 10,000 forms in under 5 s on 2 cores. The run is timed in
one process, again after ``gc.freeze()`` (as a server would after start-up,
so the garbage collector stops re-scanning the long-lived index), and with
``--workers`` processes, each drawing and storing a share of the roster from
the same index. Forms go out in batches of 500, as to PostgreSQL; only the
digests are kept, to check that every run drew the same forms.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cbt.assembly import (
    Blueprint,
    BlueprintRow,
    BlueprintSection,
    PoolIndex,
    PoolItem,
    candidate_seed,
    draw_form,
    form_digest,
    form_to_json,
    index_pool,
)

TARGET_SECONDS = 5.0
TOPICS = ("ham-so", "mu-logarit", "nguyen-ham-tich-phan", "toa-do-oxyz")
# Share of each type in the bank, roughly as a teacher's bank grows.
TYPES = ("single",) * 12 + ("truefalse4",) * 3 + ("short",) * 3 + ("multiple", "essay")
SECRET = bytes(range(32))
BATCH = 500  # forms per INSERT


def make_pool(size: int, rng: random.Random) -> list[PoolItem]:
    pool = []
    for n in range(size):
        item_type = rng.choice(TYPES)
        options = ("A", "B", "C", "D") if item_type in ("single", "multiple") else ()
        statements = ("a", "b", "c", "d") if item_type == "truefalse4" else ()
        pool.append(
            PoolItem(
                pk=n + 1,
                item_id=f"M12-{n:05d}",
                version=1,
                topic=rng.choice(TOPICS),
                level=rng.randint(1, 4),
                type=item_type,
                points=Decimal("0.25"),
                option_ids=options,
                statement_ids=statements,
                shuffle=rng.random() > 0.05,  # a few items pin their options ("all of the above")
            )
        )
    return pool


def math_paper() -> Blueprint:
    """40 items: the Math paper's 12/4/6 (10 points) plus 18 more."""
    t0, t1, t2, t3 = TOPICS
    quarter, half, one = Decimal("0.25"), Decimal("0.5"), Decimal("1")
    part1 = tuple(BlueprintRow(t, 1, 2, quarter, "single") for t in TOPICS) + tuple(
        BlueprintRow(t, 2, 1, quarter, "single") for t in TOPICS
    )
    part2 = tuple(BlueprintRow(t, level, 1, one, "truefalse4") for t, level in zip(TOPICS, (2, 3, 2, 3), strict=True))
    part3 = (
        BlueprintRow(t0, 3, 2, half, "short"),
        BlueprintRow(t1, 3, 2, half, "short"),
        BlueprintRow(t2, 4, 1, half, "short"),
        BlueprintRow(t3, 4, 1, half, "short"),
    )
    extra = (
        BlueprintRow(t0, 1, 3),
        BlueprintRow(t1, 1, 3),
        BlueprintRow(t2, 2, 3),
        BlueprintRow(t3, 2, 3),
        BlueprintRow(t0, 3, 2),
        BlueprintRow(t1, 4, 2),
        BlueprintRow(t2, 3, 1, type="multiple"),
        BlueprintRow(t3, 3, 1, type="multiple"),
    )
    return Blueprint(
        (
            BlueprintSection("Phần I", part1),
            BlueprintSection("Phần II", part2),
            BlueprintSection("Phần III", part3),
            BlueprintSection("Phần bổ sung", extra, time_limit_minutes=20),
        )
    )


def candidate_codes(count: int) -> list[str]:
    return [f"{2025000000 + n:010d}" for n in range(count)]


def forms_for(blueprint: Blueprint, index: PoolIndex, codes: list[str]) -> list[str]:
    """What opening an exam does per candidate: seed, form, JSON, digest.

    Forms go out in batches, as they would to PostgreSQL, and are not kept;
    only the digests come back (to check runs against each other).
    """
    digests: list[str] = []
    for start in range(0, len(codes), BATCH):
        batch = []
        for code in codes[start : start + BATCH]:
            form = draw_form(blueprint, index, candidate_seed(SECRET, code))
            batch.append((code, form_to_json(form), form_digest(form)))
        store(batch)
        digests.extend(digest for _, _, digest in batch)
    return digests


def store(batch: list[tuple[str, dict, str]]) -> None:
    """Stands in for the batch INSERT; checks each form has distinct items."""
    for _, data, _ in batch:
        pks = [item["pk"] for section in data["sections"] for item in section["items"]]
        assert len(pks) == len(set(pks))


# Set before the worker processes fork, so each inherits the built index.
_SHARED: tuple[Blueprint, PoolIndex] | None = None


def _worker(codes: list[str]) -> list[str]:
    assert _SHARED is not None
    return forms_for(*_SHARED, codes)


def in_processes(blueprint: Blueprint, index: PoolIndex, codes: list[str], workers: int) -> list[str]:
    """The roster split between ``workers`` processes, each storing its own forms."""
    global _SHARED
    _SHARED = (blueprint, index)
    share = -(-len(codes) // workers)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_worker, [codes[i : i + share] for i in range(0, len(codes), share)])
    return [digest for part in parts for digest in part]


def report(label: str, seconds: float, candidates: int, items_per_form: int) -> None:
    verdict = "ok" if seconds < TARGET_SECONDS else "OVER TARGET"
    print(
        f"{label:<26} {seconds:6.2f} s  {candidates / seconds:8.0f} forms/s"
        f"  {candidates * items_per_form / seconds:9.0f} items/s   target < {TARGET_SECONDS:.0f} s: {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    pool = make_pool(args.items, random.Random(2025))
    blueprint = math_paper()
    items_per_form = sum(row.count for section in blueprint.sections for row in section.rows)
    codes = candidate_codes(args.candidates)

    started = time.perf_counter()
    index = index_pool(pool)
    index.plan(blueprint)
    print(f"index {args.items} items and plan the blueprint: {time.perf_counter() - started:.3f} s")
    print(f"{args.candidates} candidates x {items_per_form} items (seed, draw, form_to_json, form_digest):")

    started, cpu = time.perf_counter(), time.process_time()
    single = forms_for(blueprint, index, codes)
    report("1 process", time.perf_counter() - started, args.candidates, items_per_form)
    print(f"{'':26} {time.process_time() - cpu:6.2f} s of CPU")

    # The cyclic garbage collector keeps re-scanning the long-lived index and
    # whatever else the process holds; a server would freeze them after start-up.
    gc.freeze()
    started = time.perf_counter()
    frozen = forms_for(blueprint, index, codes)
    report("1 process, gc.freeze()", time.perf_counter() - started, args.candidates, items_per_form)
    assert frozen == single

    if args.workers > 1:
        started = time.perf_counter()
        parallel = in_processes(blueprint, index, codes, args.workers)
        report(f"{args.workers} processes, gc.freeze()", time.perf_counter() - started, args.candidates, items_per_form)
        assert parallel == single, "the processes drew different forms"

    print(f"distinct forms: {len(set(single))} of {args.candidates}")


if __name__ == "__main__":
    main()
