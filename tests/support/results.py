"""Exams whose candidates have all sat them, for results, marking and the board."""

import datetime as dt
import math

import numpy as np
import pytest

from cbt import bank, exams
from cbt.roster import Candidate
from itembank import keys as ik
from support.bank import trust
from support.delivery import STUDENTS, changes_of, correct_answers, exam_yaml, started
from support.sets import write_release

MORE = [
    Candidate(f"00000000{i:02d}", f"Học sinh {i}", STUDENTS[0].date_of_birth, "12A3", "THPT A", "P03")
    for i in range(4, 9)
]


async def make_exam(conn, signed_demo, org: str, code="TOAN-T") -> dict:
    """An open exam of ``org`` with eight candidates; returns {student code: ticket}."""
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    if not await conn.fetchval("SELECT 1 FROM orgs WHERE code = $1", org):
        await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ($1, $1, 'school')", org)
    await exams.create_exam(conn, exams.parse_exam(exam_yaml(code=code)), org)
    await exams.add_roster(conn, code, STUDENTS + MORE)
    await exams.open_exam(conn, code)
    return {r["code"]: r["ticket"] for r in await exams.issue_tickets(conn, code)}


async def _wrong_single(conn, body, ref) -> str:
    """An alias of a wrong option of the single-choice question ``ref``."""
    fi = next(i for s in body["form"]["sections"] for i in s["items"] if i["ref"] == ref)
    right = (await correct_answers(conn, body))[ref]
    return next(o["id"] for o in fi["options"] if o["id"] != right)


async def sit_all(client, conn, tickets: dict) -> None:
    """Every candidate sits the exam: candidate number i gets the first i
    single-choice questions wrong (by position on the form), leaves question
    q1 blank when i is even, and answers the rest right."""
    for n, code in enumerate(sorted(tickets)):
        headers, body = await started(client, tickets[code])
        answers = await correct_answers(conn, body)
        singles = [i["ref"] for s in body["form"]["sections"] for i in s["items"] if i["type"] == "single"]
        for ref in singles[: n % (len(singles) + 1)]:
            answers[ref] = await _wrong_single(conn, body, ref)
        if n % 2 == 0:
            answers.pop("q1")
        resp = await client.post("/api/v1/changes", json={"changes": changes_of(answers)}, headers=headers)
        assert resp.status == 200, await resp.text()
        resp = await client.post("/api/v1/submit", json={}, headers=headers)
        assert resp.status == 200, await resp.text()


@pytest.fixture
async def board_exam(client, conn, staff, signed_demo):
    """An exam of THPT-A, sat by eight candidates (not analysed yet)."""
    tickets = await make_exam(conn, signed_demo, "THPT-A")
    await sit_all(client, conn, tickets)
    return "TOAN-T"


async def essay_pk(conn, code="TOAN-T") -> int:
    return await conn.fetchval(
        "SELECT ei.item_pk FROM exam_items ei JOIN exams e ON e.id = ei.exam_id "
        "WHERE e.code = $1 AND ei.type = 'essay'",
        code,
    )


# -- an exam with passages (item sets) and trial questions ---------------------------

SETS_CANDIDATES = 40


def sets_exam_yaml(code: str = "EN-SETS") -> str:
    """One fixed form: three passages and three grammar questions that count,
    one passage and one grammar question as trial questions."""
    now = dt.datetime.now(dt.UTC)
    opens, closes = (now - dt.timedelta(hours=1)).isoformat(), (now + dt.timedelta(hours=3)).isoformat()
    return f"""
code: {code}
title: Tiếng Anh (đọc hiểu)
subject: tieng-anh
release: en-2025 1
duration_minutes: 50
window: {{opens: {opens}, closes: {closes}, late_entry_minutes: 120}}
forms: {{mode: fixed, count: 1}}
sections:
  - title: Reading
    rows:
      - {{topic: reading, type: set, count: 3, children: 5}}
  - title: Grammar
    rows:
      - {{topic: grammar, level: 1, count: 3}}
  - title: Trial
    rows:
      - {{topic: grammar, level: 1, count: 1, scored: false}}
      - {{topic: reading, type: set, count: 1, children: 5, scored: false}}
"""


@pytest.fixture(scope="module")
def set_release(tmp_path_factory):
    """The signed en-2025 1 release of support.sets (six reading sets of five
    questions, six grammar questions): (folder, public key path)."""
    root = tmp_path_factory.mktemp("set-release")
    made = ik.generate_key_files("set-signer", root / "keys")
    write_release(root / "release", ik.load_private_key(made.private_path))
    return root / "release", made.public_path


async def sit_with_passages(client, conn, tickets: dict, seed: int = 18) -> None:
    """Every candidate answers as a student of ability theta would, each
    passage moving all its questions together (an effect of its own per
    candidate and passage): right with probability 1 / (1 + exp(-(theta +
    passage - b))), else one of the wrong options; about one in ten leaves
    the last question blank."""
    rng = np.random.default_rng(seed)
    difficulty: dict[str, float] = {}
    for code in sorted(tickets):
        headers, body = await started(client, tickets[code])
        right = await correct_answers(conn, body)
        theta = rng.normal()
        effect: dict[str, float] = {}
        answers = {}
        questions = [q for s in body["form"]["sections"] for q in s["items"]]
        for q in questions:
            b = difficulty.setdefault(q["ref"], rng.normal(scale=0.8))
            u = effect.setdefault(q["passage"], rng.normal(scale=1.2)) if "passage" in q else 0.0
            if rng.random() < 1 / (1 + math.exp(-(theta + u - b))):
                answers[q["ref"]] = right[q["ref"]]
            else:
                wrong = [o["id"] for o in q["options"] if o["id"] != right[q["ref"]]]
                answers[q["ref"]] = wrong[rng.integers(len(wrong))]
        if rng.random() < 0.1:
            answers.pop(questions[-1]["ref"])
        resp = await client.post("/api/v1/changes", json={"changes": changes_of(answers)}, headers=headers)
        assert resp.status == 200, await resp.text()
        resp = await client.post("/api/v1/submit", json={}, headers=headers)
        assert resp.status == 200, await resp.text()


@pytest.fixture
async def sets_exam(client, conn, staff, set_release):
    """EN-SETS of THPT-A (sets_exam_yaml), sat by SETS_CANDIDATES seeded
    students (sit_with_passages); returns the exam's id."""
    folder, pub = set_release
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await exams.create_exam(conn, exams.parse_exam(sets_exam_yaml()), "THPT-A")
    roster = [
        Candidate(f"{n:010d}", f"Học sinh {n}", dt.date(2008, 1, 1), "12A", "THPT A", "P01")
        for n in range(1, SETS_CANDIDATES + 1)
    ]
    await exams.add_roster(conn, "EN-SETS", roster)
    await exams.open_exam(conn, "EN-SETS")
    tickets = {r["code"]: r["ticket"] for r in await exams.issue_tickets(conn, "EN-SETS")}
    await sit_with_passages(client, conn, tickets)
    return await conn.fetchval("SELECT id FROM exams WHERE code = 'EN-SETS'")
