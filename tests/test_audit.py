"""The per-exam audit log: a hash chain that finds edited, deleted and
reordered rows, stays gap-free under concurrent appends from many
connections, and refuses UPDATE and DELETE outright."""

import asyncio
import datetime as dt
import hashlib
import io
import itertools
import json

import asyncpg
import pytest
from support.audit import exam_id, some_events, tamper
from support.delivery import started

from cbt import audit


async def test_a_chain_of_events_verifies(conn, exam):
    eid = await exam_id(conn)
    assert await audit.verify(conn, eid) == audit.VerifyResult(True, 0)
    await some_events(conn, eid)
    result = await audit.verify(conn, eid)
    assert result.ok and result.count == 6 and result.first_bad_seq is None
    rows = await conn.fetch("SELECT seq, prev_hash, hash FROM audit_events WHERE exam_id = $1 ORDER BY seq", eid)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["prev_hash"] == bytes(32)
    for a, b in itertools.pairwise(rows):
        assert b["prev_hash"] == a["hash"]


async def test_hash_is_computed_as_documented(conn, exam):
    """Recompute the first row's hash independently of cbt.audit."""
    eid = await exam_id(conn)
    await audit.append(conn, eid, "staff:admin", "exam_edit", {"field": "title", "to": "Toán 12 — đề chính thức"})
    row = await conn.fetchrow("SELECT at, content::text AS content, hash FROM audit_events WHERE exam_id = $1", eid)
    body = {
        "exam_id": eid,
        "seq": 1,
        "at": row["at"].astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": "staff:admin",
        "kind": "exam_edit",
        "attempt_id": None,
        "content": json.loads(row["content"]),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert "Toán".encode() in text
    assert row["hash"] == hashlib.sha256(bytes(32) + text).digest()


async def test_an_edited_row_is_found_and_named(conn, exam):
    eid = await exam_id(conn)
    await some_events(conn, eid)
    await tamper(
        conn,
        """UPDATE audit_events SET content = jsonb_set(content, '{i}', '99')
                          WHERE exam_id = $1 AND seq = 4""",
        eid,
    )
    result = await audit.verify(conn, eid)
    assert not result.ok and result.first_bad_seq == 4
    assert "4" in result.reason


async def test_an_edited_actor_or_time_is_found(conn, exam):
    eid = await exam_id(conn)
    await some_events(conn, eid)
    await tamper(conn, "UPDATE audit_events SET actor = 'staff:admin' WHERE exam_id = $1 AND seq = 2", eid)
    assert (await audit.verify(conn, eid)).first_bad_seq == 2
    eid_rows = await conn.fetchval("SELECT count(*) FROM audit_events WHERE exam_id = $1", eid)
    assert eid_rows == 6


async def test_a_deleted_row_is_found(conn, exam):
    eid = await exam_id(conn)
    await some_events(conn, eid)
    await tamper(conn, "DELETE FROM audit_events WHERE exam_id = $1 AND seq = 3", eid)
    result = await audit.verify(conn, eid)
    assert not result.ok and result.first_bad_seq == 3 and "missing" in result.reason


async def test_rows_deleted_and_renumbered_are_found(conn, exam):
    """Hiding a deletion by renumbering the rows after it still breaks the chain."""
    eid = await exam_id(conn)
    await some_events(conn, eid)
    await tamper(conn, "DELETE FROM audit_events WHERE exam_id = $1 AND seq = 3", eid)
    await tamper(conn, "UPDATE audit_events SET seq = seq + 1000 WHERE exam_id = $1 AND seq > 3", eid)
    await tamper(conn, "UPDATE audit_events SET seq = seq - 1001 WHERE exam_id = $1 AND seq > 1000", eid)
    assert await conn.fetchval("SELECT array_agg(seq ORDER BY seq) FROM audit_events WHERE exam_id = $1", eid) == [
        1,
        2,
        3,
        4,
        5,
    ]
    result = await audit.verify(conn, eid)
    assert not result.ok and result.first_bad_seq == 3


async def test_swapped_rows_are_found(conn, exam):
    eid = await exam_id(conn)
    await some_events(conn, eid)
    await tamper(conn, "UPDATE audit_events SET seq = seq + 1000 WHERE exam_id = $1 AND seq IN (2, 5)", eid)
    await tamper(
        conn,
        """UPDATE audit_events SET seq = CASE seq WHEN 1002 THEN 5 ELSE 2 END
                          WHERE exam_id = $1 AND seq > 1000""",
        eid,
    )
    result = await audit.verify(conn, eid)
    assert not result.ok and result.first_bad_seq == 2


async def test_the_table_refuses_update_delete_and_truncate(conn, exam):
    eid = await exam_id(conn)
    await some_events(conn, eid, 2)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("UPDATE audit_events SET actor = 'x' WHERE exam_id = $1", eid)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("DELETE FROM audit_events WHERE exam_id = $1 AND seq = 2", eid)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await conn.execute("TRUNCATE audit_events")
    assert (await audit.verify(conn, eid)).ok


async def test_unknown_kind_is_refused(conn, exam):
    eid = await exam_id(conn)
    with pytest.raises(audit.AuditError):
        await audit.append(conn, eid, "system", "lgoin", {})
    assert await conn.fetchval("SELECT count(*) FROM audit_events WHERE exam_id = $1", eid) == 0


async def test_an_event_rolls_back_with_its_transaction(conn, exam):
    eid = await exam_id(conn)
    await audit.append(conn, eid, "system", "exam_edit", {"n": 1})
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await audit.append(conn, eid, "system", "exam_edit", {"n": 2})
            raise RuntimeError("the change failed")
    assert await audit.append(conn, eid, "system", "exam_edit", {"n": 3}) == 2
    assert (await audit.verify(conn, eid)) == audit.VerifyResult(True, 2)


async def test_concurrent_appends_make_one_gap_free_chain(dsn, conn, exam):
    eid = await exam_id(conn)
    conns = [await asyncpg.connect(dsn) for _ in range(5)]
    try:

        async def writer(c, w):
            return [
                await audit.append(
                    c,
                    eid,
                    f"candidate:{w:010d}",
                    "changes",
                    {"count": 1, "first_seq": i, "last_seq": i, "sha256": "0" * 64},
                )
                for i in range(20)
            ]

        seqs = await asyncio.gather(*(writer(c, w) for w, c in enumerate(conns)))
    finally:
        for c in conns:
            await c.close()
    flat = sorted(s for per in seqs for s in per)
    assert flat == list(range(1, 101))
    for per in seqs:
        assert per == sorted(per)
    assert await audit.verify(conn, eid) == audit.VerifyResult(True, 100)


async def test_chains_are_per_exam(conn, exam):
    eid = await exam_id(conn)
    other = await conn.fetchval(
        """INSERT INTO exams (org_id, code, title, release_id, spec, secret, duration_seconds, opens_at, closes_at,
                              late_entry_until)
           SELECT org_id, 'KHAC', title, release_id, spec, secret, duration_seconds, opens_at, closes_at,
                  late_entry_until FROM exams WHERE id = $1 RETURNING id""",
        eid,
    )
    assert await audit.append(conn, eid, "system", "exam_edit", {}) == 1
    assert await audit.append(conn, other, "system", "exam_edit", {}) == 1
    assert await audit.append(conn, eid, "system", "exam_edit", {}) == 2
    assert (await audit.verify(conn, eid)).count == 2 and (await audit.verify(conn, other)).count == 1


async def test_export_round_trips_and_its_hashes_match(client, conn, exam):
    eid = await audit.exam_id_of(conn, "TOAN-T")
    await started(client, exam["0000000001"])
    attempt_id = await conn.fetchval("SELECT id FROM attempts WHERE exam_id = $1", eid)
    logged = (await audit.verify(conn, eid)).count
    kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM audit_events WHERE exam_id = $1 ORDER BY seq", eid)]
    # Created, roster added, opened, tickets issued; then the sign-in and the start.
    assert kinds == ["exam_edit"] * 4 + ["login", "start"] and logged == 6
    await some_events(conn, eid, 4)
    batch = [{"seq": 3, "item": "q1", "value": "A"}, {"seq": 4, "item": "q2", "value": "Đúng"}]
    digest = audit.batch_digest(batch)
    assert digest["count"] == 2 and digest["first_seq"] == 3 and digest["last_seq"] == 4
    await audit.append(conn, eid, "candidate:0000000001", "changes", digest, attempt_id=attempt_id)
    lines = [line async for line in audit.export(conn, eid)]
    assert len(lines) == logged + 5 and all("\n" not in line for line in lines)
    records = [json.loads(line) for line in lines]
    assert records[-1]["attempt_id"] == attempt_id and records[-1]["content"] == digest
    assert records[0]["prev_hash"] == "00" * 32
    stored = await conn.fetch("SELECT seq, hash FROM audit_events WHERE exam_id = $1 ORDER BY seq", eid)
    assert [r["hash"] for r in records] == [s["hash"].hex() for s in stored]
    assert audit.check_export(lines) == audit.VerifyResult(True, logged + 5)
    # An export edited after the fact fails on its own, without the database.
    records[2]["content"]["i"] = 42
    edited = [json.dumps(r, ensure_ascii=False) for r in records]
    assert audit.check_export(edited).first_bad_seq == 3


async def test_command_line_verify_and_export(conn, exam):
    eid = await audit.exam_id_of(conn, "TOAN-T")
    await some_events(conn, eid, 3)
    out = io.StringIO()
    assert await audit.verify_command(conn, "TOAN-T", out) == 0
    assert "intact: 7 events" in out.getvalue()  # 4 from setting the exam up, 3 here
    out = io.StringIO()
    assert await audit.export_command(conn, "TOAN-T", out) == 0
    assert audit.check_export(out.getvalue().splitlines()) == audit.VerifyResult(True, 7)
    await tamper(conn, "UPDATE audit_events SET kind = 'login' WHERE exam_id = $1 AND seq = 2", eid)
    out = io.StringIO()
    assert await audit.verify_command(conn, "TOAN-T", out) == 1
    assert "BROKEN at row 2" in out.getvalue()
    with pytest.raises(audit.AuditError):
        await audit.verify_command(conn, "NO-SUCH", out)


async def test_pending_events_are_sealed_in_order_and_before_a_synchronous_append(conn, exam):
    eid = await exam_id(conn)
    async with conn.transaction():
        await audit.append_later(conn, eid, "candidate:0000000001", "login", {"addr": "10.0.0.1"})
        await audit.append_later(conn, eid, "candidate:0000000001", "changes", {"count": 1, "note": "Đúng"})
    assert await conn.fetchval("SELECT count(*) FROM audit_events WHERE exam_id = $1", eid) == 0
    # A synchronous append seals what is pending first, so the chain keeps the order of events.
    assert await audit.append(conn, eid, "staff:proctor", "proctor_action", {"action": "pause"}) == 3
    kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM audit_events WHERE exam_id = $1 ORDER BY seq", eid)]
    assert kinds == ["login", "changes", "proctor_action"]
    assert await conn.fetchval("SELECT count(*) FROM audit_pending") == 0
    await audit.append_later(conn, eid, "candidate:0000000002", "start", {"deadline": "x"})
    # verify seals pending events before reading, so nothing recorded escapes it.
    assert await audit.verify(conn, eid) == audit.VerifyResult(True, 4)
    assert await audit.chain(conn, eid) == 0


async def test_a_rolled_back_save_leaves_no_pending_event(conn, exam):
    eid = await exam_id(conn)
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await audit.append_later(conn, eid, "candidate:0000000001", "changes", {"count": 1})
            raise RuntimeError("the save failed")
    assert await conn.fetchval("SELECT count(*) FROM audit_pending") == 0
    with pytest.raises(audit.AuditError):
        await audit.append_later(conn, eid, "x", "no_such_kind", {})


async def test_concurrent_saves_and_chainers_give_one_gapless_chain(dsn, conn, exam):
    eid = await exam_id(conn)
    pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)
    try:

        async def saver(i):
            async with pool.acquire() as c:
                for j in range(25):
                    async with c.transaction():
                        await audit.append_later(c, eid, f"candidate:{i:010d}", "changes", {"i": i, "j": j})
                    if j % 10 == 0:
                        await audit.chain(c, eid, wait=False)

        async def proctor():
            async with pool.acquire() as c:
                for j in range(10):
                    await audit.append(c, eid, "staff:proctor", "proctor_action", {"j": j})

        await asyncio.gather(*(saver(i) for i in range(6)), proctor(), audit.chain_all(pool))
        await audit.chain_all(pool)
    finally:
        await pool.close()
    result = await audit.verify(conn, eid)
    assert result == audit.VerifyResult(True, 6 * 25 + 10)
    seen = {
        (r["i"], r["j"])
        for r in [
            json.loads(x["content"])
            for x in await conn.fetch(
                "SELECT content::text AS content FROM audit_events WHERE exam_id = $1 AND kind = 'changes'", eid
            )
        ]
    }
    assert seen == {(i, j) for i in range(6) for j in range(25)}


async def test_the_server_seals_saved_batches_within_a_second(client, conn, exam):
    eid = await audit.exam_id_of(conn, "TOAN-T")
    await started(client, exam["0000000001"])
    for _ in range(40):
        kinds = [
            r["kind"] for r in await conn.fetch("SELECT kind FROM audit_events WHERE exam_id = $1 ORDER BY seq", eid)
        ]
        if "start" in kinds:
            break
        await asyncio.sleep(0.05)
    assert kinds[-2:] == ["login", "start"]
    assert await conn.fetchval("SELECT count(*) FROM audit_pending WHERE exam_id = $1", eid) == 0
