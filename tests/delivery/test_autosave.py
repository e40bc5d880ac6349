"""Autosave's fast path: a batch checked against the candidate as the worker
last read it and saved in one statement, which writes nothing unless that
reading still holds. Every change a proctor, an admin or the clock makes is
seen by the very next batch."""

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import re

import aiohttp
import asyncpg
import pytest
from support.delivery import single_item, started
from support.proctor import proctor_client

from cbt.delivery import autosave, candidate
from cbt.platform import appkeys, db, jsonio
from cbt.platform.app import create_app
from cbt.platform.metrics import Metrics


def batch(item: dict, seq: int, choice: int = 0) -> dict:
    return {"changes": [{"seq": seq, "item": item["ref"], "kind": "answer", "value": item["options"][choice]["id"]}]}


async def primed(client, ticket) -> tuple[dict, dict, dict]:
    """A started attempt whose first batch was saved (so the worker has read the candidate)."""
    headers, body = await started(client, ticket)
    item = single_item(body)
    first = await client.post("/api/v1/changes", json=batch(item, 1), headers=headers)
    assert first.status == 200 and (await first.json())["saved_seq"] == 1
    return headers, body, item


async def history(conn, attempt_id: int) -> list[int]:
    return [
        r["seq"]
        for r in await conn.fetch("SELECT seq FROM response_history WHERE attempt_id = $1 ORDER BY seq", attempt_id)
    ]


async def test_a_batch_after_the_first_is_one_statement(settings, aiohttp_client, conn, staff, locked_exam):
    # One pooled connection, and all of GroupCommit's, so every statement the handler sends passes a logger.
    client = await aiohttp_client(create_app(dataclasses.replace(settings, pool_min=1, pool_max=1)))
    headers, body, item = await primed(client, locked_exam["0000000001"])
    sent: list[str] = []
    pool, saves = client.app[appkeys.POOL], client.app[appkeys.SAVES].pool
    assert saves.get_max_size() == autosave.MAX_INFLIGHT
    async with contextlib.AsyncExitStack() as stack:
        connections = [await stack.enter_async_context(p.acquire()) for p in [pool] + [saves] * autosave.MAX_INFLIGHT]
        for connection in connections:
            connection.add_query_logger(lambda q: sent.append(q.query.strip()))
        assert await connections[-1].fetchval("SHOW enable_seqscan") == "off"  # autosave.SAVE_SETTINGS
    second = await client.post("/api/v1/changes", json=batch(item, 2, 1), headers=headers)
    assert second.status == 200 and (await second.json())["saved_seq"] == 2
    handler_statements = [q for q in sent if q.startswith(("WITH req", "SELECT c.id AS candidate_id"))]
    assert handler_statements == [autosave._SAVE.strip()]
    assert await history(conn, body["attempt"]["id"]) == [1, 2]
    value = await conn.fetchval("SELECT value #>> '{}' FROM responses WHERE item_ref = $1", item["ref"])
    assert value == item["options"][1]["id"]


async def test_the_save_reads_every_table_by_key_while_the_tables_are_tiny(conn, staff, locked_exam):
    # The suite's tables hold a few rows, as an exam's do when it starts, and the
    # generic plan made then is kept while they grow (PLANS in autosave.py). A
    # plan that scans them, or reads a whole index to hash-join it, fails here.
    plan = await autosave.save_plan(conn)
    assert not [line for line in plan if "Seq Scan" in line or "Bitmap" in line]
    scans = [i for i, line in enumerate(plan) if re.search(r"Index (Only )?Scan", line)]
    tables = {re.search(r" on (\w+)", plan[i]).group(1) for i in scans}
    assert {"candidate_sessions", "candidates", "exams", "attempts", "response_history"} <= tables
    assert all("Index Cond:" in plan[i + 1] for i in scans), "\n".join(plan)


async def test_pause_is_seen_by_the_next_batch(client, conn, staff, locked_exam, settings, aiohttp_client):
    headers, body, item = await primed(client, locked_exam["0000000001"])
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    act = "/proctor/exams/LOCK-T/actions"
    assert (await proctor.post(act, json={"action": "pause", "candidate": "0000000001"}, headers=csrf)).status == 200
    paused = await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)
    assert paused.status == 409 and (await paused.json())["error"]["code"] == "paused"
    assert await history(conn, body["attempt"]["id"]) == [1]


async def test_terminate_and_extend_are_seen_by_the_next_batch(
    client, conn, staff, locked_exam, settings, aiohttp_client
):
    act = "/proctor/exams/LOCK-T/actions"
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    # Extend: the next batch is saved and answers with the new deadline.
    headers, body, item = await primed(client, locked_exam["0000000001"])
    before = await conn.fetchval("SELECT deadline FROM attempts WHERE id = $1", body["attempt"]["id"])
    assert (
        await proctor.post(act, json={"action": "extend", "candidate": "0000000001", "minutes": 7}, headers=csrf)
    ).status == 200
    extended = await (await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)).json()
    assert extended["deadline"] == jsonio.iso(before + dt.timedelta(minutes=7))
    # Terminate: the next batch is refused and kept in refused_changes.
    assert (
        await proctor.post(act, json={"action": "terminate", "candidate": "0000000001"}, headers=csrf)
    ).status == 200
    closed = await client.post("/api/v1/changes", json=batch(item, 3), headers=headers)
    assert closed.status == 409 and (await closed.json())["error"]["code"] == "attempt_closed"
    assert await history(conn, body["attempt"]["id"]) == [1, 2]
    assert await conn.fetchval("SELECT reason FROM refused_changes") == "attempt_submitted"


async def test_moving_the_attempt_to_another_browser_locks_out_the_first(
    client, conn, staff, locked_exam, settings, aiohttp_client
):
    headers, body, item = await primed(client, locked_exam["0000000001"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        login = await other.post(client.make_url("/api/v1/login"), json={"ticket": locked_exam["0000000001"]})
        other_headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        refused = await other.post(client.make_url("/api/v1/changes"), json=batch(item, 2), headers=other_headers)
        assert refused.status == 403
        proctor, csrf = await proctor_client(aiohttp_client, settings)
        assert (
            await proctor.post(
                "/proctor/exams/LOCK-T/actions", json={"action": "unlock", "candidate": "0000000001"}, headers=csrf
            )
        ).status == 200
        assert (
            await other.post(client.make_url("/api/v1/changes"), json=batch(item, 2), headers=other_headers)
        ).status == 200
    locked = await client.post("/api/v1/changes", json=batch(item, 3), headers=headers)
    assert locked.status == 403 and (await locked.json())["error"]["code"] == "device_locked"
    assert await history(conn, body["attempt"]["id"]) == [1, 2]


async def test_an_expired_or_removed_session_is_seen_by_the_next_batch(client, conn, staff, locked_exam):
    headers, _, item = await primed(client, locked_exam["0000000001"])
    await conn.execute("UPDATE candidate_sessions SET expires_at = now() - interval '1 second'")
    expired = await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)
    assert expired.status == 401 and (await expired.json())["error"]["code"] == "session_expired"
    headers, _, item = await primed(client, locked_exam["0000000002"])
    await conn.execute("DELETE FROM candidate_sessions WHERE expires_at > now()")
    gone = await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)
    assert gone.status == 401
    assert await conn.fetchval("SELECT count(*) FROM response_history WHERE seq = 2") == 0


async def test_a_deadline_moved_into_the_past_is_seen_by_the_next_batch(client, conn, staff, locked_exam):
    headers, body, item = await primed(client, locked_exam["0000000001"])
    await conn.execute("UPDATE attempts SET deadline = now() - interval '1 hour'")
    late = await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)
    assert late.status == 409 and (await late.json())["error"]["code"] == "attempt_closed"
    assert await history(conn, body["attempt"]["id"]) == [1]


# Each field the handler checks a batch against, and a change to it made behind the worker's back.
STALE = {
    "session": "UPDATE candidate_sessions SET seb_verified_at = now()",
    "candidate": "UPDATE candidates SET network_override = true",
    "exam": "UPDATE exams SET grace_seconds = grace_seconds + 1",
    "status": "UPDATE attempts SET status = 'submitted', submitted_at = now(), submitted_by = 'proctor'",
    "paused": "UPDATE attempts SET paused_at = now()",
    "voided": "UPDATE attempts SET voided = true",
    "deadline": "UPDATE attempts SET deadline = deadline + interval '1 minute'",
    "section": "UPDATE attempts SET section_index = section_index + 1",
    "section_deadline": "UPDATE attempts SET section_deadline = now() + interval '5 minutes'",
    "device": "UPDATE attempts SET device_hash = '\\x00'::bytea",
    "expired": "UPDATE candidate_sessions SET expires_at = now() - interval '1 second'",
}


@pytest.mark.parametrize("what", sorted(STALE))
async def test_the_save_writes_nothing_when_what_was_checked_has_changed(client, conn, staff, locked_exam, what):
    headers, _, item = await primed(client, locked_exam["0000000001"])
    token = hashlib.sha256(headers["Authorization"][len("Bearer ") :].encode()).digest()
    me = dict(await conn.fetchrow(candidate._CANDIDATE_LEAN, token))
    rows = [(2, item["ref"], "answer", f'"{item["options"][1]["id"]}"')]
    changes = [{"seq": 2, "item": item["ref"], "kind": "answer", "value": item["options"][1]["id"]}]
    before = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM response_history) AS history, (SELECT count(*) FROM audit_pending) "
        "+ (SELECT count(*) FROM audit_events) AS audit, (SELECT value::text FROM responses) AS value"
    )
    await conn.execute(STALE[what])
    assert await autosave.save(conn, me, token, rows, changes, "127.0.0.1") is None
    after = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM response_history) AS history, (SELECT count(*) FROM audit_pending) "
        "+ (SELECT count(*) FROM audit_events) AS audit, (SELECT value::text FROM responses) AS value"
    )
    assert after == before
    assert await conn.fetchval("SELECT saved_seq FROM attempts") == 1


async def test_the_save_goes_through_when_nothing_changed(client, conn, staff, locked_exam):
    """The control for the test above: the same call, nothing changed, saves."""
    headers, body, item = await primed(client, locked_exam["0000000001"])
    token = hashlib.sha256(headers["Authorization"][len("Bearer ") :].encode()).digest()
    me = dict(await conn.fetchrow(candidate._CANDIDATE_LEAN, token))
    rows = [(2, item["ref"], "answer", f'"{item["options"][1]["id"]}"')]
    changes = [{"seq": 2, "item": item["ref"], "kind": "answer", "value": item["options"][1]["id"]}]
    assert await autosave.save(conn, me, token, rows, changes, "127.0.0.1") == 2
    assert await history(conn, body["attempt"]["id"]) == [1, 2]
    # Another candidate's token with this attempt's fields saves nothing.
    other, _ = await started(client, locked_exam["0000000002"])
    other_token = hashlib.sha256(other["Authorization"][len("Bearer ") :].encode()).digest()
    assert await autosave.save(conn, me, other_token, [(3, *rows[0][1:])], changes, "127.0.0.1") is None
    assert await history(conn, body["attempt"]["id"]) == [1, 2]


async def _saves_for(client, conn, tickets: dict, codes: list[str]) -> dict[str, tuple]:
    """Per candidate code: (me as the worker reads it, token hash, a single-choice item, attempt id), primed."""
    out = {}
    for code in codes:
        headers, body, item = await primed(client, tickets[code])
        token = hashlib.sha256(headers["Authorization"][len("Bearer ") :].encode()).digest()
        me = dict(await conn.fetchrow(candidate._CANDIDATE_LEAN, token))
        out[code] = (me, token, item, body["attempt"]["id"])
    return out


def _save(who: tuple, seq: int, choice: int = 1, value: str | None = None) -> autosave.Save:
    me, token, item, _ = who
    option = item["options"][choice]["id"]
    change = {"seq": seq, "item": item["ref"], "kind": "answer", "value": option}
    return autosave.Save(me, token, [(seq, item["ref"], "answer", value or f'"{option}"')], [change], "127.0.0.1")


async def test_saves_that_arrive_together_go_as_one_statement_and_each_stands_alone(client, conn, staff, locked_exam):
    a, b, c = (await _saves_for(client, conn, locked_exam, ["0000000001", "0000000002", "0000000003"])).values()
    await conn.execute("UPDATE attempts SET paused_at = now() WHERE id = $1", b[3])  # b's save must write nothing
    pool = await db.create_pool(client.app[appkeys.SETTINGS].database_url, 1, 1)
    sent: list[str] = []
    async with pool.acquire() as one:
        one.add_query_logger(lambda q: sent.append(q.query.strip()))
    metrics = Metrics()
    group = autosave.GroupCommit(pool, metrics, max_inflight=1)
    try:
        # c's first save goes at once; the rest arrive while it runs, so they go
        # together, except a's second, which waits for a's first.
        results = await asyncio.gather(
            *(
                group.save(s)
                for s in (_save(c, 2), _save(a, 2), _save(b, 2), _save(a, 3, choice=2), _save(c, 3, choice=0))
            )
        )
    finally:
        await group.close()
        await pool.close()
    assert results == [2, 2, None, 3, 3]
    assert sum(q == autosave._SAVE.strip() for q in sent) == 3
    # Statements of 1, 3 and 1 saves.
    rendered = metrics.render().decode()
    for line in ("_count 3.0", "_sum 5.0", '_bucket{le="1.0"} 2.0', '_bucket{le="2.0"} 2.0'):
        assert "cbt_autosave_saves_per_statement" + line in rendered
    for who, last in ((a, 2), (c, 0)):
        assert await history(conn, who[3]) == [1, 2, 3]
        value = await conn.fetchval(
            "SELECT value #>> '{}' FROM responses WHERE attempt_id = $1 AND item_ref = $2", who[3], who[2]["ref"]
        )
        assert value == who[2]["options"][last]["id"]
    assert await history(conn, b[3]) == [1]
    assert await conn.fetchval("SELECT saved_seq FROM attempts WHERE id = $1", b[3]) == 1
    # One audit event per save written, none for the refused one.
    events = await conn.fetch(
        "SELECT attempt_id FROM audit_pending WHERE kind = 'changes' UNION ALL "
        "SELECT attempt_id FROM audit_events WHERE kind = 'changes'"
    )
    assert sorted(r["attempt_id"] for r in events) == sorted([a[3]] * 3 + [b[3]] + [c[3]] * 3)


async def test_a_statement_that_fails_is_retried_save_by_save(client, conn, staff, locked_exam):
    a, b, c = (await _saves_for(client, conn, locked_exam, ["0000000001", "0000000002", "0000000003"])).values()
    pool = await db.create_pool(client.app[appkeys.SETTINGS].database_url, 1, 1)
    group = autosave.GroupCommit(pool, max_inflight=1)
    try:
        # b's value is not JSON (parse_changes never lets that through): the
        # statement carrying a, b and c fails, then a and c are saved on their own.
        results = await asyncio.gather(
            *(group.save(s) for s in (_save(c, 2), _save(a, 2), _save(b, 2, value="not json"), _save(c, 3))),
            return_exceptions=True,
        )
    finally:
        await group.close()
        await pool.close()
    assert results[0] == 2 and results[1] == 2 and results[3] == 3
    assert isinstance(results[2], asyncpg.DataError)
    assert await history(conn, a[3]) == [1, 2] and await history(conn, c[3]) == [1, 2, 3]
    assert await history(conn, b[3]) == [1]
