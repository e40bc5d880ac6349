"""The audit chain anchored outside the database: signed heads and the heads
receipts carry. A chain cut short, or rewritten whole and consistently,
still recomputes, so `audit.verify` alone passes; checked against a head
kept outside, it fails, naming why. Forged heads are refused."""

import asyncio
import datetime as dt
import io
import json
import re

import openpyxl
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.accounts import login
from support.audit import exam_id, flip, some_events, tamper
from support.delivery import changes_of, correct_answers, started

from cbt import audit, heads, receipts, submission
from cbt.platform import appkeys
from cbt.platform.errors import UserError


async def signed(conn, code="AUDIT-T") -> heads.SignedHead:
    return await heads.sign_current(conn, code)


async def check(conn, code, *args, key_pem=None) -> tuple[int, str]:
    """`cbt audit verify CODE --head ARG ...` in process: (exit code, what it printed)."""
    out = io.StringIO()
    found = [item for arg in args for item in heads.parse_heads(arg)]
    rc = await heads.verify_command(conn, code, out, found, key_pem)
    return rc, out.getvalue()


async def cut_tail(conn, eid, after_seq) -> None:
    """What a superuser can do: delete the chain's last events."""
    await tamper(conn, "DELETE FROM audit_events WHERE exam_id = $1 AND seq > $2", eid, after_seq)


async def test_a_cut_off_tail_passes_alone_and_fails_against_the_published_head(conn, exam):
    eid = await exam_id(conn)
    await some_events(conn, eid, 6)
    published = await signed(conn)
    assert (published.head.seq, published.exam) == (6, "AUDIT-T")
    await some_events(conn, eid, 3)
    assert await check(conn, "AUDIT-T", published.token) == (
        0,
        "audit log of AUDIT-T intact: 9 events; reaches all 1 heads kept outside the database (the latest: event 6)\n",
    )

    await cut_tail(conn, eid, 4)
    # The weakness: the shortened chain still recomputes.
    assert await audit.verify(conn, eid) == audit.VerifyResult(True, 4)
    rc, said = await check(conn, "AUDIT-T", published.token)
    assert rc == 1 and said.count("\n") == 1
    assert said.startswith("audit log of AUDIT-T does NOT reach a published head: ")
    assert "names event 6, but the chain ends at event 4: events were removed from its end" in said
    # The head's hash alone, and SEQ:HASH, find the same.
    assert (await check(conn, "AUDIT-T", published.head.hash.hex()))[0] == 1
    assert (await check(conn, "AUDIT-T", f"6:{published.head.hash.hex()}"))[0] == 1


async def test_events_after_the_last_published_head_are_not_covered(conn, exam):
    """What a head does not prove: a cut after it goes unseen."""
    eid = await exam_id(conn)
    await some_events(conn, eid, 5)
    published = await signed(conn)
    await some_events(conn, eid, 4)
    await cut_tail(conn, eid, 7)
    assert (await check(conn, "AUDIT-T", published.token))[0] == 0


async def test_a_consistent_rewrite_fails_against_the_published_head(conn, exam):
    eid = await exam_id(conn)
    await some_events(conn, eid, 6)
    published = await signed(conn)
    # Rewrite the whole chain, as long as before and correctly hashed: event 3 says something else.
    await cut_tail(conn, eid, 0)
    for i in range(6):
        await audit.append(conn, eid, "system", "exam_edit", {"i": i if i != 2 else 99})
    assert await audit.verify(conn, eid) == audit.VerifyResult(True, 6)
    rc, said = await check(conn, "AUDIT-T", published.token)
    assert rc == 1 and "event 6 has hash " in said and f"not the published {published.head.hash.hex()}" in said
    assert "the chain was rewritten" in said
    rc, said = await check(conn, "AUDIT-T", published.head.hash.hex())
    assert rc == 1 and "no event has the published hash" in said


async def test_an_intact_chain_reaches_every_head_and_a_head_file_holds_many(conn, exam, tmp_path):
    eid = await exam_id(conn)
    tokens = []
    for _ in range(3):
        await some_events(conn, eid, 2)
        tokens.append((await signed(conn)).token)
    last = await signed(conn)
    assert last.head.seq == 6
    path = tmp_path / "heads.txt"
    path.write_text(last.text() + "\n".join(tokens) + "\n", "utf-8")
    found = heads.parse_heads(str(path))
    assert set(found) == {last.token, *tokens}  # each token once
    assert await check(conn, "AUDIT-T", str(path)) == (
        0,
        f"audit log of AUDIT-T intact: 6 events; reaches all {len(found)} heads kept outside the database "
        "(the latest: event 6)\n",
    )
    # A line SEQ:HASH in the file is a head too: event 4 does not have event 6's hash.
    path.write_text(last.text() + f"4:{last.head.hash.hex()}\n", "utf-8")
    assert audit.Head(4, last.head.hash, "head heads.txt:6") in heads.parse_heads(str(path))
    rc, said = await check(conn, "AUDIT-T", str(path))
    assert rc == 1 and "head heads.txt:6: event 4 has hash" in said
    # The file form is what a person reads.
    assert last.text().startswith(
        f"# Signed audit chain head of exam AUDIT-T\n# event: 6\n# hash: {last.head.hash.hex()}\n# signed at: "
    )


async def test_a_forged_head_is_refused_with_a_clear_message(conn, exam):
    eid = await exam_id(conn)
    await some_events(conn, eid, 3)
    genuine = await signed(conn)
    # Signed by another key, saying the same.
    forger = Ed25519PrivateKey.generate()
    forged = receipts.sign_head(forger, "AUDIT-T", genuine.head, genuine.signed_at)
    with pytest.raises(UserError) as e:
        await check(conn, "AUDIT-T", forged)
    assert e.value.code == "head_bad_signature"
    assert "its signature does not match" in e.value.message and "signed with key" in e.value.message
    # A genuine head with one bit changed (its seq, hash or exam).
    for index in (10, 40, 80):
        with pytest.raises(UserError) as e:
            await check(conn, "AUDIT-T", flip(genuine.token, 0, index))
        assert e.value.code in ("head_bad_signature", "bad_head")
    with pytest.raises(UserError) as e:
        await check(conn, "AUDIT-T", flip(genuine.token, 1))
    assert e.value.code == "head_bad_signature" and "altered, or not signed by this server" in e.value.message
    # Checked against a public key kept apart from the database, the forger's key is refused too,
    # and the genuine head passes.
    pem = receipts.public_key_pem((await receipts.server_key(conn)).public_key())
    assert (await check(conn, "AUDIT-T", genuine.token, key_pem=pem))[0] == 0
    with pytest.raises(UserError):
        await check(conn, "AUDIT-T", forged, key_pem=pem)
    # Another exam's head, and things that are no head at all.
    with pytest.raises(UserError) as e:
        await check(conn, "TOAN-T", genuine.token)
    assert e.value.code == "head_other_exam" and "is of exam AUDIT-T, not TOAN-T" in e.value.message
    for junk in ("hello", "12:zz", "abc.def", "/no/such/file"):
        with pytest.raises(UserError) as e:
            heads.parse_heads(junk)
        assert e.value.code == "bad_head"


async def test_a_replaced_receipt_key_is_named(conn, exam):
    """Someone with the database swaps in their own key and signs a new head:
    the head people kept still names the old one."""
    eid = await exam_id(conn)
    await some_events(conn, eid, 3)
    kept = await signed(conn)
    fresh = (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    await conn.execute("UPDATE server_keys SET private_pem = $1 WHERE name = 'receipt'", fresh)
    with pytest.raises(UserError) as e:
        await check(conn, "AUDIT-T", kept.token)
    assert e.value.code == "head_bad_signature"
    assert f"signed with key {kept.kid}, and the database's receipt key is " in e.value.message
    assert "the key was replaced" in e.value.message


async def answered(client, conn, ticket) -> dict:
    headers, body = await started(client, ticket)
    answers = await correct_answers(conn, body)
    await client.post("/api/v1/changes", json={"changes": changes_of(answers)}, headers=headers)
    return headers


async def press_submit(client, headers) -> dict:
    resp = await client.post("/api/v1/submit", json={}, headers=headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["result"]


async def submit(client, conn, ticket) -> dict:
    return await press_submit(client, await answered(client, conn, ticket))


async def test_receipts_name_the_chain_up_to_their_own_submission(client, conn, exam):
    result = await submit(client, conn, exam["0000000001"])
    payload = receipts.verify_token(result["receipt_token"], await receipts.public_keys(conn))
    assert payload["v"] == 2 and payload["kind"] == "receipt"
    head = receipts.receipt_head(payload)
    event = await conn.fetchrow(
        "SELECT kind, attempt_id, content::text AS content, hash FROM audit_events "
        "WHERE exam_id = (SELECT id FROM exams WHERE code = 'TOAN-T') AND seq = $1",
        head.seq,
    )
    # The head's last event is this candidate's submission, of the very responses the receipt names.
    assert event["kind"] == "submit" and event["attempt_id"] == payload["attempt"]
    assert json.loads(event["content"])["responses_sha256"] == payload["responses_sha256"]
    assert bytes(event["hash"]) == head.hash
    assert result["receipt"] == receipts.short_code_of(receipts.canonical(payload))
    # A receipt is a head: the chain reaches it, and not once cut below it.
    assert (await check(conn, "TOAN-T", result["receipt_token"]))[0] == 0
    await cut_tail(conn, await audit.exam_id_of(conn, "TOAN-T"), head.seq - 1)
    rc, said = await check(conn, "TOAN-T", result["receipt_token"])
    assert rc == 1 and f"receipt {result['receipt']}: the published head names event {head.seq}" in said


async def test_concurrent_submissions_each_get_their_own_head(client, conn, exam):
    sitting = [await answered(client, conn, exam[code]) for code in sorted(exam)]
    results = await asyncio.gather(*(press_submit(client, headers) for headers in sitting))
    keys = await receipts.public_keys(conn)
    seen = set()
    for result in results:
        payload = receipts.verify_token(result["receipt_token"], keys)
        head = receipts.receipt_head(payload)
        row = await conn.fetchrow(
            "SELECT kind, attempt_id, hash FROM audit_events WHERE seq = $1 AND exam_id = "
            "(SELECT id FROM exams WHERE code = 'TOAN-T')",
            head.seq,
        )
        assert (row["kind"], row["attempt_id"], bytes(row["hash"])) == ("submit", payload["attempt"], head.hash)
        seen.add(head.seq)
    assert len(seen) == 3
    assert (await check(conn, "TOAN-T", *(r["receipt_token"] for r in results)))[0] == 0


async def test_a_submission_left_without_its_receipt_gets_one(client, conn, exam):
    """The worker stopped between the submission's commit and its receipt."""
    headers, _ = await started(client, exam["0000000002"])
    attempt_id = await conn.fetchval("SELECT id FROM attempts")
    await submission._submit(client.server.app, conn, attempt_id, "candidate")
    assert await conn.fetchval("SELECT receipt FROM attempts") is None
    # The page retries its submit: the receipt is signed then.
    result = (await (await client.post("/api/v1/submit", json={}, headers=headers)).json())["result"]
    assert result["receipt"] and result["receipt_token"]
    assert receipts.receipt_head(receipts.verify_token(result["receipt_token"], await receipts.public_keys(conn)))
    # Or, the page gone, every worker's repair round finds it.
    headers, _ = await started(client, exam["0000000003"])
    other = await conn.fetchval(
        "SELECT a.id FROM attempts a JOIN candidates c ON c.id = a.candidate_id WHERE c.code = '0000000003'"
    )
    await submission._submit(client.server.app, conn, other, "deadline")
    await conn.execute("UPDATE attempts SET submitted_at = submitted_at - interval '1 minute' WHERE id = $1", other)
    pool = client.server.app[appkeys.POOL]
    assert await receipts.issue_missing(pool) == 1
    assert await conn.fetchval("SELECT receipt FROM attempts WHERE id = $1", other)
    assert await receipts.issue_missing(pool) == 0


async def test_the_receipt_page_shows_the_head_and_refuses_a_head_token(client, conn, exam):
    result = await submit(client, conn, exam["0000000001"])
    head = receipts.receipt_head(receipts.verify_token(result["receipt_token"], await receipts.public_keys(conn)))
    html = await (await client.get("/receipt", params={"token": result["receipt_token"]})).text()
    assert 'data-result="valid"' in html and f'data-head-seq="{head.seq}"' in html and head.hash.hex() in html
    html = await (await client.get("/receipt", params={"token": (await signed(conn, "TOAN-T")).token})).text()
    assert 'data-result="invalid"' in html and 'data-code="not_a_receipt"' in html
    assert "không phải biên nhận" in html
    out = io.StringIO()
    assert await receipts.verify_command(conn, result["receipt_token"], out) == 0
    assert f"audit chain head: event {head.seq}, hash {head.hash.hex()}" in out.getvalue()


async def test_an_old_receipt_without_a_head_still_verifies(client, conn, exam):
    await started(client, exam["0000000001"])
    attempt_id = await conn.fetchval("SELECT id FROM attempts")
    key = await receipts.server_key(conn)
    # Byte for byte what cbt signed before receipts carried the head.
    old = {
        "v": 1,
        "exam": "TOAN-T",
        "candidate": "0000000001",
        "attempt": attempt_id,
        "responses_sha256": "ab" * 32,
        "submitted_at": "2025-06-26T01:30:05.123456+00:00",
        "kid": receipts.key_id(key.public_key()),
    }
    token = receipts.sign(key, old).token
    assert receipts.verify_token(token, await receipts.public_keys(conn)) == old
    html = await (await client.get("/receipt", params={"token": token})).text()
    assert 'data-result="valid"' in html and "data-head-seq" not in html
    out = io.StringIO()
    assert await receipts.verify_command(conn, token, out) == 0
    assert "audit chain head: none" in out.getvalue()
    # As a head it anchors nothing, and says so.
    with pytest.raises(UserError) as e:
        await check(conn, "TOAN-T", token)
    assert e.value.code == "receipt_without_head"


async def test_results_and_reports_carry_the_signed_head(client, conn, staff, exam, tmp_path):
    await conn.execute("UPDATE exams SET org_id = (SELECT id FROM orgs WHERE code = 'THPT-A')")
    await submit(client, conn, exam["0000000001"])
    now = await audit.current_head(conn, await audit.exam_id_of(conn, "TOAN-T"))
    await login(client, "board")

    html = await (await client.get("/workspace/results/TOAN-T")).text()
    assert f'id="audit-head" data-seq="{now.seq}" data-hash="{now.hash.hex()}"' in html
    text = await (await client.get("/workspace/results/TOAN-T/results.csv")).text()
    header = text.lstrip("\ufeff").splitlines()[0]
    assert header.endswith(",audit_head")
    # The head repeats in every row; as a head file, the CSV holds it once.
    (tmp_path / "results.csv").write_text(text, "utf-8")
    assert len(heads.parse_heads(str(tmp_path / "results.csv"))) == 1

    resp = await client.get("/workspace/results/TOAN-T/audit-head.txt")
    assert resp.status == 200 and f'filename="TOAN-T-audit-head-{now.seq}.txt"' in resp.headers["Content-Disposition"]
    head_file = await resp.text()
    assert head_file.startswith("# Signed audit chain head of exam TOAN-T\n")

    wb = openpyxl.load_workbook(io.BytesIO(await (await client.get("/workspace/results/TOAN-T/results.xlsx")).read()))
    assert wb.sheetnames == ["Kết quả", "Nhật ký"]
    rows = {r[0]: r[1] for r in wb["Nhật ký"].values}
    assert rows["Tính đến sự kiện số"] == now.seq and rows["Mã băm (SHA-256)"] == now.hash.hex()

    wb = openpyxl.load_workbook(io.BytesIO(await (await client.get("/board/exams/TOAN-T/report.xlsx")).read()))
    assert wb.sheetnames[-1] == "Nhật ký"
    token = {r[0]: r[1] for r in wb["Nhật ký"].values}["Mã mốc có chữ ký"]
    html = await (await client.get("/board/exams/TOAN-T")).text()
    assert f'data-seq="{now.seq}"' in html and "Mốc nhật ký kỳ thi có chữ ký số" in html

    # Each of them is a head `cbt audit verify --head` takes.
    for source in (text, head_file, token):
        (tmp_path / "source").write_text(source, "utf-8")
        assert (await check(conn, "TOAN-T", str(tmp_path / "source")))[0] == 0


async def test_command_line_head_and_verify(dsn, conn, exam, tmp_path):
    from support.cli import cbt, env_for, one_line_error

    env = env_for(tmp_path / "d", CBT_DATABASE_URL=dsn)
    eid = await exam_id(conn)
    await some_events(conn, eid, 5)
    head_file = tmp_path / "AUDIT-T.head"
    done = await asyncio.to_thread(cbt, "audit", "head", "AUDIT-T", "-o", str(head_file), env=env)
    assert done.returncode == 0, done.stderr
    assert "signed audit chain head of AUDIT-T (event 5, hash " in done.stdout
    printed = await asyncio.to_thread(cbt, "audit", "head", "AUDIT-T", env=env)
    assert printed.stdout.startswith("# Signed audit chain head of exam AUDIT-T\n# event: 5\n")
    token = printed.stdout.splitlines()[-1]

    done = await asyncio.to_thread(
        cbt, "audit", "verify", "AUDIT-T", "--head", str(head_file), "--head", token, env=env
    )
    assert (done.returncode, done.stdout) == (
        0,
        "audit log of AUDIT-T intact: 5 events; reaches all 2 heads kept outside the database (the latest: event 5)\n",
    )
    await cut_tail(conn, eid, 3)
    done = await asyncio.to_thread(cbt, "audit", "verify", "AUDIT-T", "--head", str(head_file), env=env)
    assert done.returncode == 1 and done.stdout.count("\n") == 1 and "Traceback" not in done.stderr
    assert "does NOT reach a published head" in done.stdout and "chain ends at event 3" in done.stdout
    # Without a head, the cut goes unseen: what the heads are for.
    assert (await asyncio.to_thread(cbt, "audit", "verify", "AUDIT-T", env=env)).returncode == 0

    forged = receipts.sign_head(
        Ed25519PrivateKey.generate(), "AUDIT-T", audit.Head(3, bytes(range(32))), dt.datetime.now(dt.UTC)
    )
    line = one_line_error(await asyncio.to_thread(cbt, "audit", "verify", "AUDIT-T", "--head", forged, env=env))
    assert "is refused: its signature does not match" in line
    line = one_line_error(await asyncio.to_thread(cbt, "audit", "verify", "AUDIT-T", "--head", "nonsense", env=env))
    assert "'nonsense' is neither a file nor a chain head: give a head file" in line


@pytest.mark.parametrize(
    ("module", "statement", "indexes"),
    [
        (audit, "_SUBMIT_EVENT", {"audit_events_attempt_idx"}),
        (receipts, "_SUBMITTED", {"attempts_pkey", "exams_pkey", "candidates_pkey", "receipts_pkey"}),
    ],
)
async def test_a_receipts_lookups_read_by_key_while_the_tables_are_tiny(conn, exam, module, statement, indexes):
    """Every submission runs these; the pool keeps the generic plan made when
    an exam's tables hold a few rows (see test_delivery)."""
    from cbt.platform import db

    plan = "\n".join(await db.generic_plan(conn, getattr(module, statement)))
    assert "Seq Scan" not in plan, plan
    assert set(re.findall(r"Index (?:Only )?Scan (?:using )?(?:on )?(\w+)", plan)) == indexes, plan
