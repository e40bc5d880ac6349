"""An open exam on the demo bank and candidates who sign in, start it and answer."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from cbt import bank, exams
from cbt.roster import Candidate
from itembank.formats.yaml_format import parse_text
from support.bank import trust

NOW = dt.datetime.now(dt.UTC)


def exam_yaml(code="TOAN-T", timed=False, grace=30, opens=None, closes=None, rows_extra="") -> str:
    opens = opens or NOW - dt.timedelta(hours=1)
    closes = closes or NOW + dt.timedelta(hours=3)
    limit = "    time_limit_minutes: 20\n" if timed else ""
    return f"""
code: {code}
title: Kiểm tra Toán 12 (thử)
subject: toan
release: demo-thpt 2025.1
duration_minutes: 90
window: {{opens: {opens.isoformat()}, closes: {closes.isoformat()}, late_entry_minutes: 120}}
show_score: true
grace_seconds: {grace}
instructions: Làm bài cẩn thận.
sections:
  - title: Phần I
{limit}    rows:
      - {{topic: ham-so, level: 1, count: 2, points: 0.25, type: single}}
      - {{topic: mu-logarit, level: 1, count: 2, points: 0.25, type: single}}
      - {{topic: mu-logarit, level: 4, count: 1, points: 0.5, type: multiple}}
  - title: Phần II
{limit}    rows:
      - {{topic: ham-so, level: 2, count: 1, points: 1, type: truefalse4}}
  - title: Phần III
{limit}    rows:
      - {{topic: ham-so, level: 3, count: 1, points: 0.5, type: short}}
      - {{topic: toa-do-oxyz, level: 4, count: 1, points: 1, type: essay}}
{rows_extra}"""


STUDENTS = [
    Candidate("0000000001", "Nguyễn Văn An", dt.date(2008, 3, 1), "12A1", "THPT A", "P01"),
    Candidate("0000000002", "Trần Thị Bình", dt.date(2008, 5, 9), "12A1", "THPT A", "P01"),
    Candidate("0000000003", "Lê Hoàng Cường", dt.date(2008, 7, 2), "12A2", "THPT A", "P02", Decimal("1.5")),
]


@pytest.fixture
async def exam(conn, signed_demo):
    """An open exam on the demo bank, three candidates; returns {code: ticket}."""
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ('SGD-E', 'Sở E', 'department')")
    await exams.create_exam(conn, exams.parse_exam(exam_yaml()), "SGD-E")
    await exams.add_roster(conn, "TOAN-T", STUDENTS)
    await exams.open_exam(conn, "TOAN-T")
    return {r["code"]: r["ticket"] for r in await exams.issue_tickets(conn, "TOAN-T")}


async def sign_in(client, ticket):
    resp = await client.post("/api/v1/login", json={"ticket": ticket})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return {"Authorization": f"Bearer {body['token']}"}, body


async def started(client, ticket):
    headers, _ = await sign_in(client, ticket)
    resp = await client.post("/api/v1/start", json={}, headers=headers)
    assert resp.status == 200, await resp.text()
    return headers, await resp.json()


async def correct_answers(conn, start_body) -> dict:
    """The right answer for every question, in the form's aliases (what a perfect student sends)."""
    attempt = await conn.fetchrow("SELECT a.candidate_id FROM attempts a WHERE a.id = $1", start_body["attempt"]["id"])
    form = json.loads(
        await conn.fetchval("SELECT form FROM candidate_forms WHERE candidate_id = $1", attempt["candidate_id"])
    )
    answers = {}
    for section in form["sections"]:
        for fi in section["items"]:
            source = await conn.fetchval("SELECT source FROM bank_items WHERE id = $1", fi["pk"])
            item = parse_text(source, "t").items[0].item
            alias = dict(zip(fi["option_order"], fi["option_aliases"], strict=True))
            if item.type.value == "single":
                answers[fi["ref"]] = alias[item.correct_option_ids[0]]
            elif item.type.value == "multiple":
                answers[fi["ref"]] = [alias[o] for o in item.correct_option_ids]
            elif item.type.value == "truefalse4":
                answers[fi["ref"]] = {s.id: s.answer for s in item.statements}
            elif item.type.value == "short":
                answers[fi["ref"]] = item.answer.canonical
            else:
                answers[fi["ref"]] = "Bài làm tự luận."
    return answers


def single_item(body) -> dict:
    """The first single-choice question of the form."""
    return next(i for sec in body["form"]["sections"] for i in sec["items"] if i["type"] == "single")


def changes_of(answers: dict, first_seq=1) -> list[dict]:
    return [
        {"seq": first_seq + i, "item": ref, "kind": "answer", "value": v}
        for i, (ref, v) in enumerate(sorted(answers.items()))
    ]
