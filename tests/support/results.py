"""Exams whose candidates have all sat them, for results, marking and the board."""

import pytest

from cbt import bank, exams
from cbt.roster import Candidate
from support.bank import trust
from support.delivery import STUDENTS, changes_of, correct_answers, exam_yaml, started

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
