"""The exam builder's form in the workspace, and a release to build exams from."""

import datetime as dt

import pytest

from cbt import bank
from support.accounts import CSRF_RE
from support.bank import trust

EXAM_YAML = """
code: TOAN-W
title: Kiểm tra Toán 12
subject: toan
release: demo-thpt 2025.1
duration_minutes: 60
window: {opens: 2026-12-20T07:30:00+07:00, closes: 2026-12-20T10:00:00+07:00, late_entry_minutes: 20}
shuffle: {items: true, options: false}
forms: {mode: fixed, count: 4}
scoring: {multiple_partial: true, single_penalty: 0.25, report_decimals: 1}
show_score: true
grace_seconds: 45
instructions: Làm bài cẩn thận.
sections:
  - title: Phần I
    rows:
      - {topic: ham-so, level: 1, count: 2, points: 0.25, type: single}
      - {topic: mu-logarit, level: 2, count: 1, points: 0.25, type: single}
  - title: Phần II
    time_limit_minutes: 20
    rows:
      - {topic: ham-so, level: 2, count: 1}
policies:
  networks: {allow: [10.0.0.0/8], rooms: {P01: [10.1.1.0/24, 10.1.2.0/24]}}
  access_code: true
  one_device: false
  integrity: {action: pause, pause_after: 2}
  admission: {rate_per_second: 20, burst: 40}
"""


def good_form(**changes) -> dict:
    form = {
        "code": "TOAN-W",
        "title": "Kiểm tra Toán 12",
        "subject": "toan",
        "duration_minutes": "60",
        "opens": "2026-12-20T07:30",
        "closes": "2026-12-20T10:00",
        "tz": "+07:00",
        "late_entry_minutes": "20",
        "shuffle_items": "1",
        "form_mode": "fixed",
        "form_count": "4",
        "multiple_partial": "1",
        "single_penalty": "0,25",
        "report_decimals": "1",
        "show_score": "1",
        "grace_seconds": "45",
        "instructions": "Làm bài cẩn thận.",
        "section_count": "2",
        "s0.title": "Phần I",
        "s0.type": "single",
        "s0.points": "0.25",
        "s0.time_limit": "",
        "s0.c1.ham-so": "2",
        "s0.c2.ham-so": "",
        "s0.c2.mu-logarit": "1",
        "s0.c3.mu-logarit": "0",
        "s1.title": "Phần II",
        "s1.type": "",
        "s1.points": "",
        "s1.time_limit": "20",
        "s1.c2.ham-so": "1",
        "networks_allow": "10.0.0.0/8",
        "networks_rooms": "P01: 10.1.1.0/24, 10.1.2.0/24\n",
        "access_code": "1",
        "integrity_action": "pause",
        "integrity_pause_after": "2",
        "admission_rate": "20",
        "admission_burst": "40",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


@pytest.fixture
async def release(conn, signed_demo):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    return await conn.fetchval("SELECT id FROM bank_releases")


def form_for(release_id: int, **changes) -> dict:
    form = good_form(**changes)
    # The demo bank's Phần II cell has a truefalse4 and singles: ask for any type there.
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    form.update(release=str(release_id), opens=f"{tomorrow}T07:30", closes=f"{tomorrow}T10:00")
    form.update({k: v for k, v in changes.items() if k in ("opens", "closes")})
    return form


async def csrf(client, path="/workspace/exams") -> str:
    m = CSRF_RE.search(await (await client.get(path)).text())
    assert m
    return m.group(1)


async def create(client, release_id, **changes):
    data = form_for(release_id, **changes) | {"csrf_token": await csrf(client), "action": "save"}
    return await client.post("/workspace/exams/new", data=data, allow_redirects=False)
