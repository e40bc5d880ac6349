"""Exam delivery through the candidate API: tickets, start, autosave, time,
sections, submit and scoring, and what a candidate must never see."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from support.bank import trust
from support.delivery import STUDENTS, changes_of, correct_answers, exam_yaml, sign_in, single_item, started

from cbt import bank, exams, grading
from cbt.delivery import candidate
from cbt.platform import db
from cbt.platform.errors import UserError
from itembank.formats.yaml_format import parse_text


async def test_exam_file_problems_are_all_listed():
    bad = exam_yaml().replace("duration_minutes: 90", "duration_minutes: 0")
    bad = bad.replace("level: 1, count: 2", "level: 7, count: 2")
    bad += "shufle: {items: true}\n"
    with pytest.raises(UserError) as info:
        exams.parse_exam(bad)
    message = info.value.message
    assert "duration_minutes: must be a whole number from 1" in message
    assert "level: must be a whole number from 1 to 4, got 7" in message
    assert "unknown field 'shufle' — did you mean 'shuffle'?" in message


async def test_infeasible_blueprint_lists_every_short_cell(conn, signed_demo):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ('SGD-E', 'Sở E', 'department')")
    spec = exams.parse_exam(
        exam_yaml(
            rows_extra="""  - title: Thêm
    rows:
      - {topic: ham-so, level: 1, count: 5, type: single}
      - {topic: khong-co, level: 2, count: 1}
"""
        )
    )
    with pytest.raises(UserError) as info:
        await exams.create_exam(conn, spec, "SGD-E")
    assert info.value.code == "infeasible_blueprint"
    assert "ham-so, level 1" in info.value.message and "khong-co, level 2" in info.value.message
    assert await conn.fetchval("SELECT count(*) FROM exams") == 0


async def test_full_sitting_scores_every_type_exactly(client, conn, exam):
    headers, body = await started(client, exam["0000000001"])
    answers = await correct_answers(conn, body)
    resp = await client.post("/api/v1/changes", json={"changes": changes_of(answers)}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["saved_seq"] == len(answers)
    resp = await client.post("/api/v1/submit", json={}, headers=headers)
    result = (await resp.json())["result"]
    # 4 x 0.25 + 0.5 + 1 + 0.5 (essay waits for marking) = 3.0 of 4.0, provisional.
    assert result["score"] == {"total": "3.00", "max": "4.00", "provisional": True}
    assert re.fullmatch(r"[A-Z2-7]{5}(-[A-Z2-7]{5}){3}", result["receipt"])
    assert result["receipt_token"]  # the signed token, checkable at /receipt
    again = await (await client.post("/api/v1/submit", json={}, headers=headers)).json()
    assert again["result"] == result  # idempotent


async def test_partial_credit_truefalse4_and_wrong_answers(client, conn, exam):
    headers, body = await started(client, exam["0000000002"])
    answers = await correct_answers(conn, body)
    tf_ref = next(ref for ref, v in answers.items() if isinstance(v, dict))
    tf = dict(answers[tf_ref])
    flipped = sorted(tf)[:1]  # one statement wrong: 3 right -> 0.5 of 1 point
    for sid in flipped:
        tf[sid] = not tf[sid]
    sent = {tf_ref: tf}
    short_ref = next(i["ref"] for sec in body["form"]["sections"] for i in sec["items"] if i["type"] == "short")
    sent[short_ref] = answers[short_ref].replace(",", ".")  # decimal point counts as comma
    await client.post("/api/v1/changes", json={"changes": changes_of(sent)}, headers=headers)
    result = (await (await client.post("/api/v1/submit", json={}, headers=headers)).json())["result"]
    assert Decimal(result["score"]["total"]) == Decimal("1.00")  # 0.5 + 0.5


async def test_out_of_order_and_duplicate_batches(client, conn, exam):
    headers, body = await started(client, exam["0000000001"])
    ref = single_item(body)["ref"]
    options = [o["id"] for o in single_item(body)["options"]]
    batch2 = [{"seq": 3, "item": ref, "value": options[2]}, {"seq": 4, "item": ref, "kind": "flag", "value": True}]
    batch1 = [{"seq": 1, "item": ref, "value": options[0]}, {"seq": 2, "item": ref, "value": options[1]}]
    r2 = await (await client.post("/api/v1/changes", json={"changes": batch2}, headers=headers)).json()
    assert r2["saved_seq"] == 0  # 1 and 2 are not stored yet: nothing may be dropped from the journal
    r1 = await (await client.post("/api/v1/changes", json={"changes": batch1}, headers=headers)).json()
    assert r1["saved_seq"] == 4
    dup = await (await client.post("/api/v1/changes", json={"changes": batch1 + batch2}, headers=headers)).json()
    assert dup["saved_seq"] == 4
    state = await (await client.get("/api/v1/state", headers=headers)).json()
    assert state["answers"][ref] == {"value": options[2], "flagged": True}  # the newest seq wins
    assert (
        await conn.fetchval("SELECT count(*) FROM response_history WHERE attempt_id = $1", body["attempt"]["id"]) == 4
    )


async def test_resume_after_reload_returns_answers_and_same_deadline(client, exam):
    headers, body = await started(client, exam["0000000001"])
    ref = single_item(body)["ref"]
    alias = single_item(body)["options"][1]["id"]
    await client.post("/api/v1/changes", json={"changes": [{"seq": 1, "item": ref, "value": alias}]}, headers=headers)
    _, again = await started(client, exam["0000000001"])  # a new sign-in, as after a crash
    assert again["attempt"]["id"] == body["attempt"]["id"]
    assert again["attempt"]["deadline"] == body["attempt"]["deadline"]
    assert again["answers"][ref]["value"] == alias
    assert again["form"] == body["form"]
    assert again["attempt"]["saved_seq"] == 1


async def test_time_multiplier_lengthens_the_deadline(client, exam):
    _, a = await started(client, exam["0000000001"])
    _, c = await started(client, exam["0000000003"])  # multiplier 1.5
    da = dt.datetime.fromisoformat(a["attempt"]["deadline"].replace("Z", "+00:00"))
    dc = dt.datetime.fromisoformat(c["attempt"]["deadline"].replace("Z", "+00:00"))
    assert abs((dc - da).total_seconds() - 45 * 60) < 30


async def test_changes_after_deadline_and_grace_are_refused_and_logged(client, conn, exam):
    headers, body = await started(client, exam["0000000001"])
    ref = single_item(body)["ref"]
    alias = single_item(body)["options"][0]["id"]
    # Inside the grace period: still saved.
    await conn.execute(
        "UPDATE attempts SET deadline = now() - interval '10 seconds' WHERE id = $1", body["attempt"]["id"]
    )
    ok = await client.post(
        "/api/v1/changes", json={"changes": [{"seq": 1, "item": ref, "value": alias}]}, headers=headers
    )
    assert ok.status == 200
    # Past the grace: refused, kept in the record, and the attempt is closed by the deadline.
    await conn.execute(
        "UPDATE attempts SET deadline = now() - interval '31 seconds' WHERE id = $1", body["attempt"]["id"]
    )
    late = await client.post(
        "/api/v1/changes", json={"changes": [{"seq": 2, "item": ref, "value": None}]}, headers=headers
    )
    assert late.status == 409
    assert (await late.json())["error"]["code"] == "attempt_closed"
    assert await conn.fetchval("SELECT reason FROM refused_changes") == "after_deadline"
    row = await conn.fetchrow("SELECT status, submitted_by FROM attempts WHERE id = $1", body["attempt"]["id"])
    assert dict(row) == {"status": "submitted", "submitted_by": "deadline"}
    assert await conn.fetchval(
        "SELECT value FROM responses WHERE attempt_id = $1 AND item_ref = $2", body["attempt"]["id"], ref
    ) == json.dumps(alias)


async def test_sweeper_submits_abandoned_attempts(client, conn, exam):
    from cbt.submission import close_expired_attempts

    _, body = await started(client, exam["0000000002"])
    await conn.execute(
        "UPDATE attempts SET deadline = now() - interval '5 minutes' WHERE id = $1", body["attempt"]["id"]
    )
    assert await close_expired_attempts(client.server.app) == 1
    assert await conn.fetchval("SELECT submitted_by FROM attempts WHERE id = $1", body["attempt"]["id"]) == "deadline"


@pytest.mark.parametrize(
    ("statement", "tables"),
    [
        ("candidate._CANDIDATE", {"candidate_sessions", "candidates", "exams", "attempts", "receipts"}),
        ("candidate._CANDIDATE_LEAN", {"candidate_sessions", "candidates", "exams", "attempts", "receipts"}),
        ("candidate._TICKET", {"candidates", "exams"}),
        ("bank.ITEM_SOURCES", {"bank_items"}),
        ("grading._ATTEMPT", {"attempts", "exams", "candidates", "candidate_forms"}),
    ],
)
async def test_every_candidate_lookup_reads_by_key_while_the_tables_are_tiny(conn, exam, statement, tables):
    # The pool keeps the generic plan made at a statement's first use, when an
    # exam's tables hold a few rows, as the suite's do (db.create_pool). A plan
    # that scans them then would scan every candidate on each request later on.
    module, name = statement.split(".")
    plan = await db.generic_plan(
        conn, getattr({"candidate": candidate, "bank": bank, "grading": grading}[module], name)
    )
    assert not [line for line in plan if "Seq Scan" in line or "Bitmap" in line], "\n".join(plan)
    scans = [i for i, line in enumerate(plan) if re.search(r"Index (Only )?Scan", line)]
    assert {re.search(r" on (\w+)", plan[i]).group(1) for i in scans} == tables
    assert all("Index Cond:" in plan[i + 1] for i in scans), "\n".join(plan)


async def test_late_entry_and_not_yet_open(client, conn, exam):
    await conn.execute("UPDATE exams SET late_entry_until = opens_at")
    headers, _ = await sign_in(client, exam["0000000001"])
    resp = await client.post("/api/v1/start", json={}, headers=headers)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "late_entry_closed"
    await conn.execute(
        "UPDATE exams SET opens_at = now() + interval '1 hour', late_entry_until = now() + interval '2 hours'"
    )
    resp = await client.post("/api/v1/start", json={}, headers=headers)
    body = await resp.json()
    assert resp.status == 403 and body["error"]["code"] == "exam_not_open" and body["error"]["details"]["opens_at"]


async def test_bad_ticket_and_missing_token(client, exam):
    resp = await client.post("/api/v1/login", json={"ticket": "AAAA-BBBB-CCCC-DDDD"})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "bad_ticket"
    resp = await client.get("/api/v1/state")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "login_required"
    resp = await client.get("/api/v1/state", headers={"Authorization": "Bearer forged"})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "session_expired"
    resp = await client.post("/api/v1/login", data="not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_json"


async def test_json_that_is_not_strict_json_is_refused(client, exam):
    # NaN and Infinity are not JSON (the standard library would accept them); neither is bad UTF-8.
    for raw in (b'{"ticket": NaN}', b'{"ticket": Infinity}', b'{"ticket": "\xff"}'):
        resp = await client.post("/api/v1/login", data=raw, headers={"Content-Type": "application/json"})
        body = await resp.json()
        assert resp.status == 400 and body["error"]["code"] == "bad_json", raw


async def test_a_candidate_cannot_touch_another_candidates_attempt(client, conn, exam):
    _, a = await started(client, exam["0000000001"])
    headers_b, _ = await started(client, exam["0000000002"])
    ref = a["form"]["sections"][0]["items"][0]["ref"]
    for path, body in (
        ("/api/v1/changes", {"attempt_id": a["attempt"]["id"], "changes": [{"seq": 1, "item": ref, "value": None}]}),
        ("/api/v1/submit", {"attempt_id": a["attempt"]["id"]}),
        ("/api/v1/start", {"attempt_id": a["attempt"]["id"]}),
    ):
        resp = await client.post(path, json=body, headers=headers_b)
        assert resp.status == 403, path
        assert (await resp.json())["error"]["code"] == "not_your_attempt"
    assert await conn.fetchval("SELECT count(*) FROM response_history WHERE attempt_id = $1", a["attempt"]["id"]) == 0
    assert await conn.fetchval("SELECT status FROM attempts WHERE id = $1", a["attempt"]["id"]) == "in_progress"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"seq": 0, "item": "q1", "value": None}, "positive whole number"),
        ({"seq": 1, "item": "q999", "value": None}, "no question"),
        ({"seq": 1, "item": "q1", "value": "not-an-alias"}, "not one of this question's options"),
        ({"seq": 1, "item": "q1", "kind": "flag", "value": "yes"}, "true or false"),
        ({"seq": 1, "item": "q1", "kind": "erase", "value": None}, "kind is"),
    ],
)
async def test_malformed_changes_are_refused_whole(client, conn, exam, change, fragment):
    headers, body = await started(client, exam["0000000001"])
    first = single_item(body)
    good = {"seq": 2, "item": first["ref"], "value": first["options"][0]["id"]}
    change = {**change, "item": first["ref"] if change["item"] == "q1" else change["item"]}
    resp = await client.post("/api/v1/changes", json={"changes": [good, change]}, headers=headers)
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["code"] == "bad_change" and fragment in err["details"]["reason"]
    assert err["message"] == "Dữ liệu bài làm gửi lên không hợp lệ: hãy tải lại trang rồi thử lại."
    assert await conn.fetchval("SELECT count(*) FROM response_history") == 0


async def test_nothing_a_candidate_receives_holds_key_material(client, conn, exam):
    headers, body = await sign_in(client, exam["0000000001"])
    texts = [json.dumps(body)]
    resp = await client.post("/api/v1/start", json={}, headers=headers)
    start = await resp.json()
    texts.append(await resp.text())
    texts.append(await (await client.get("/api/v1/state", headers=headers)).text())
    texts.append(await (await client.get("/api/v1/session", headers=headers)).text())
    blob = "\n".join(texts)
    for word in (
        '"correct"',
        '"answer"',
        '"explanation"',
        '"key"',
        '"item_id"',
        '"pk"',
        '"secret"',
        '"seed',
        '"option_order"',
        '"source"',
    ):
        assert word not in blob, word
    rows = await conn.fetch("SELECT b.item_id, b.source FROM bank_items b")
    for r in rows:
        assert f'"{r["item_id"]}"' not in blob
    # Option ids are per-form aliases, never the authored A/B/C/D.
    for section in start["form"]["sections"]:
        for item in section["items"]:
            for option in item.get("options", []):
                assert option["id"] not in ("A", "B", "C", "D")
    # The explanation text of each item on the form never appears.
    for r in rows:
        item = parse_text(r["source"], "t").items[0].item
        if item.explanation and len(item.explanation) > 30:
            assert item.explanation[:30] not in blob


async def test_rederived_form_equals_the_served_one(conn, exam):
    form, same = await exams.rederive_form(conn, "TOAN-T", "0000000002")
    assert same
    stored = json.loads(
        await conn.fetchval(
            "SELECT f.form FROM candidate_forms f JOIN candidates c ON c.id = f.candidate_id WHERE c.code = $1",
            "0000000002",
        )
    )
    assert form == stored
    other, _ = await exams.rederive_form(conn, "TOAN-T", "0000000001")
    assert other != form  # per-candidate forms differ


async def test_bad_roster_imports_nothing(conn, exam):
    from cbt.roster import RosterError, parse_roster

    csv = (
        "Mã học sinh,Họ và tên,Ngày sinh,Lớp,Trường,Phòng thi\n"
        "0000000009,Phạm D,01/02/2008,12A3,A,P03\n12345,X,32/13/2008,12A3,A,P03\n"
    )
    with pytest.raises(RosterError) as info:
        parse_roster(csv.encode(), "roster.csv")
    assert "row 3" in str(info.value)
    assert await conn.fetchval("SELECT count(*) FROM candidates WHERE code = '0000000009'") == 0
    with pytest.raises(UserError) as dup:
        await exams.add_roster(conn, "TOAN-T", STUDENTS[:1])
    assert dup.value.code == "candidate_exists"


async def test_timed_sections_run_in_order_and_cannot_be_reopened(client, conn, signed_demo):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ('SGD-E', 'Sở E', 'department')")
    await exams.create_exam(conn, exams.parse_exam(exam_yaml(code="TIMED", timed=True)), "SGD-E")
    await exams.add_roster(conn, "TIMED", STUDENTS[:1])
    await exams.open_exam(conn, "TIMED")
    ticket = (await exams.issue_tickets(conn, "TIMED"))[0]["ticket"]
    headers, body = await started(client, ticket)
    assert body["attempt"]["section_index"] == 0 and body["attempt"]["section_deadline"]
    s1 = single_item(body)
    s2 = body["form"]["sections"][1]["items"][0]
    resp = await client.post(
        "/api/v1/changes", json={"changes": [{"seq": 1, "item": s2["ref"], "value": {"a": True}}]}, headers=headers
    )
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "section_closed"
    moved = await (await client.post("/api/v1/sections/next", json={"from_section": 0}, headers=headers)).json()
    assert moved["attempt"]["section_index"] == 1
    again = await (await client.post("/api/v1/sections/next", json={"from_section": 0}, headers=headers)).json()
    assert again["attempt"]["section_index"] == 1  # a retried request does not skip a section
    resp = await client.post(
        "/api/v1/changes",
        json={"changes": [{"seq": 2, "item": s1["ref"], "value": s1["options"][0]["id"]}]},
        headers=headers,
    )
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "section_closed"
    resp = await client.post(
        "/api/v1/changes",
        json={"changes": [{"seq": 3, "item": s2["ref"], "value": {"a": True, "b": False}}]},
        headers=headers,
    )
    assert resp.status == 200
    # A section whose time ran out moves on by itself.
    await conn.execute("UPDATE attempts SET section_deadline = now() - interval '1 minute'")
    state = await (await client.get("/api/v1/state", headers=headers)).json()
    assert state["attempt"]["section_index"] == 2


async def test_openapi_document_lists_the_candidate_api(client):
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/login", "/api/v1/start", "/api/v1/changes", "/api/v1/state", "/api/v1/submit"} <= set(doc["paths"])


async def test_exam_commands(dsn, conn, tmp_path, signed_demo):
    from support.cli import cbt, env_for, one_line_error

    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ('SGD-E', 'Sở E', 'department')")
    env = env_for(tmp_path / "d", CBT_DATABASE_URL=dsn)
    exam_file = tmp_path / "exam.yaml"
    exam_file.write_text(exam_yaml(code="CLI-T"), encoding="utf-8")
    made = cbt("exam", "create", str(exam_file), env=env)
    assert made.returncode == 0 and "exam CLI-T created" in made.stdout, made.stderr
    assert "already exists" in one_line_error(cbt("exam", "create", str(exam_file), env=env))
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "Mã học sinh;Họ và tên;Ngày sinh;Lớp;Trường;Phòng thi\n"
        "0123456789;Đỗ Thị Em;02/03/2008;12A5;THPT A;P07\n"
        "0123456780;Ngô Văn Phúc;12/12/2007;12A5;THPT A;P08\n",
        encoding="utf-8",
    )
    added = cbt("exam", "roster", "CLI-T", str(roster), env=env)
    assert added.returncode == 0 and "2 candidates added" in added.stdout, added.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "Mã học sinh,Họ và tên,Ngày sinh,Lớp,Trường,Phòng thi\n123,X,01/01/2008,12A5,A,P07\n", encoding="utf-8"
    )
    failed = cbt("exam", "roster", "CLI-T", str(bad), env=env)
    assert failed.returncode == 1 and "row 2" in failed.stderr and "Traceback" not in failed.stderr
    opened = cbt("exam", "open", "CLI-T", env=env)
    assert opened.returncode == 0 and "2 forms drawn" in opened.stdout
    sheet = tmp_path / "tickets.html"
    printed = cbt("exam", "tickets", "CLI-T", "-o", str(sheet), env=env)
    assert printed.returncode == 0, printed.stderr
    html = sheet.read_text("utf-8")
    assert html.count('class="ticket-slip"') == 2 and "Đỗ Thị Em" in html and "<style>" in html
    printed = cbt("exam", "tickets", "CLI-T", "-o", str(sheet), env={**env, "CBT_PUBLIC_URL": "https://thi.sgd.vn"})
    assert sheet.read_text("utf-8").count("https://thi.sgd.vn/exam") == 2
    printed = cbt("exam", "tickets", "CLI-T", "-o", str(sheet), env={**env, "CBT_HOST": "0.0.0.0"})
    assert printed.returncode == 0 and "set CBT_PUBLIC_URL" in printed.stderr
    csv = cbt("exam", "tickets", "CLI-T", "--format", "csv", "--room", "P08", env=env)
    assert csv.returncode == 0 and "Ngô Văn Phúc" in csv.stdout and "Đỗ Thị Em" not in csv.stdout
    ticket = csv.stdout.strip().splitlines()[-1].split(",")[-1]
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM candidates WHERE ticket_hash = $1",
            __import__("cbt.roster", fromlist=["ticket_hash"]).ticket_hash(ticket),
        )
        == 1
    )
    same = cbt("exam", "form", "CLI-T", "0123456789", env=env)
    assert same.returncode == 0 and "equals the form served" in same.stdout
    assert "no candidate" in one_line_error(cbt("exam", "form", "CLI-T", "9999999999", env=env))
