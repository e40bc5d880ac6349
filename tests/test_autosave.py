"""Autosave's fast path: a batch checked against the candidate as the worker
last read it and saved in one statement, which writes nothing unless that
reading still holds. Every change a proctor, an admin or the clock makes is
seen by the very next batch."""

import dataclasses
import datetime as dt
import hashlib

import aiohttp
import pytest
from test_bank import signed_demo  # noqa: F401 - fixture
from test_delivery import single_item, started
from test_proctor import locked_exam, proctor_client  # noqa: F401 - fixture

from cbt import autosave, delivery
from cbt.app import create_app


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
    return [r["seq"] for r in await conn.fetch(
        "SELECT seq FROM response_history WHERE attempt_id = $1 ORDER BY seq", attempt_id)]


async def test_a_batch_after_the_first_is_one_statement(settings, aiohttp_client, conn, staff, locked_exam):  # noqa: F811
    # One pooled connection, so every statement the handler sends passes the logger.
    client = await aiohttp_client(create_app(dataclasses.replace(settings, pool_min=1, pool_max=1)))
    headers, body, item = await primed(client, locked_exam["0000000001"])
    sent: list[str] = []
    pool = client.app[delivery.keys.POOL]
    async with pool.acquire() as c:
        c.add_query_logger(lambda q: sent.append(q.query.strip()))
    second = await client.post("/api/v1/changes", json=batch(item, 2, 1), headers=headers)
    assert second.status == 200 and (await second.json())["saved_seq"] == 2
    handler_statements = [q for q in sent if q.startswith(("WITH verified", "SELECT c.id AS candidate_id"))]
    assert handler_statements == [autosave._SAVE.strip()]
    assert await history(conn, body["attempt"]["id"]) == [1, 2]
    value = await conn.fetchval("SELECT value #>> '{}' FROM responses WHERE item_ref = $1", item["ref"])
    assert value == item["options"][1]["id"]


async def test_pause_is_seen_by_the_next_batch(client, conn, staff, locked_exam, settings, aiohttp_client):  # noqa: F811
    headers, body, item = await primed(client, locked_exam["0000000001"])
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    act = "/proctor/exams/LOCK-T/actions"
    assert (await proctor.post(act, json={"action": "pause", "candidate": "0000000001"}, headers=csrf)).status == 200
    paused = await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)
    assert paused.status == 409 and (await paused.json())["error"]["code"] == "paused"
    assert await history(conn, body["attempt"]["id"]) == [1]


async def test_terminate_and_extend_are_seen_by_the_next_batch(client, conn, staff, locked_exam, settings,  # noqa: F811
                                                               aiohttp_client):
    act = "/proctor/exams/LOCK-T/actions"
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    # Extend: the next batch is saved and answers with the new deadline.
    headers, body, item = await primed(client, locked_exam["0000000001"])
    before = await conn.fetchval("SELECT deadline FROM attempts WHERE id = $1", body["attempt"]["id"])
    assert (await proctor.post(act, json={"action": "extend", "candidate": "0000000001", "minutes": 7},
                               headers=csrf)).status == 200
    extended = await (await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)).json()
    assert extended["deadline"] == delivery.iso(before + dt.timedelta(minutes=7))
    # Terminate: the next batch is refused and kept in refused_changes.
    assert (await proctor.post(act, json={"action": "terminate", "candidate": "0000000001"},
                               headers=csrf)).status == 200
    closed = await client.post("/api/v1/changes", json=batch(item, 3), headers=headers)
    assert closed.status == 409 and (await closed.json())["error"]["code"] == "attempt_closed"
    assert await history(conn, body["attempt"]["id"]) == [1, 2]
    assert await conn.fetchval("SELECT reason FROM refused_changes") == "attempt_submitted"


async def test_moving_the_attempt_to_another_browser_locks_out_the_first(client, conn, staff, locked_exam,  # noqa: F811
                                                                         settings, aiohttp_client):
    headers, body, item = await primed(client, locked_exam["0000000001"])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        login = await other.post(client.make_url("/api/v1/login"), json={"ticket": locked_exam["0000000001"]})
        other_headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        refused = await other.post(client.make_url("/api/v1/changes"), json=batch(item, 2), headers=other_headers)
        assert refused.status == 403
        proctor, csrf = await proctor_client(aiohttp_client, settings)
        assert (await proctor.post("/proctor/exams/LOCK-T/actions", json={"action": "unlock",
                                                                         "candidate": "0000000001"},
                                   headers=csrf)).status == 200
        assert (await other.post(client.make_url("/api/v1/changes"), json=batch(item, 2),
                                 headers=other_headers)).status == 200
    locked = await client.post("/api/v1/changes", json=batch(item, 3), headers=headers)
    assert locked.status == 403 and (await locked.json())["error"]["code"] == "device_locked"
    assert await history(conn, body["attempt"]["id"]) == [1, 2]


async def test_an_expired_or_removed_session_is_seen_by_the_next_batch(client, conn, staff, locked_exam):  # noqa: F811
    headers, _, item = await primed(client, locked_exam["0000000001"])
    await conn.execute("UPDATE candidate_sessions SET expires_at = now() - interval '1 second'")
    expired = await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)
    assert expired.status == 401 and (await expired.json())["error"]["code"] == "session_expired"
    headers, _, item = await primed(client, locked_exam["0000000002"])
    await conn.execute("DELETE FROM candidate_sessions WHERE expires_at > now()")
    gone = await client.post("/api/v1/changes", json=batch(item, 2), headers=headers)
    assert gone.status == 401
    assert await conn.fetchval("SELECT count(*) FROM response_history WHERE seq = 2") == 0


async def test_a_deadline_moved_into_the_past_is_seen_by_the_next_batch(client, conn, staff, locked_exam):  # noqa: F811
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
async def test_the_save_writes_nothing_when_what_was_checked_has_changed(client, conn, staff, locked_exam,  # noqa: F811
                                                                         what):
    headers, _, item = await primed(client, locked_exam["0000000001"])
    token = hashlib.sha256(headers["Authorization"][len("Bearer "):].encode()).digest()
    me = dict(await conn.fetchrow(delivery._CANDIDATE_LEAN, token))
    rows = [(2, item["ref"], "answer", f'"{item["options"][1]["id"]}"')]
    changes = [{"seq": 2, "item": item["ref"], "kind": "answer", "value": item["options"][1]["id"]}]
    before = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM response_history) AS history, (SELECT count(*) FROM audit_pending) "
        "+ (SELECT count(*) FROM audit_events) AS audit, (SELECT value::text FROM responses) AS value")
    await conn.execute(STALE[what])
    assert await autosave.save(conn, me, token, rows, changes, "127.0.0.1") is None
    after = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM response_history) AS history, (SELECT count(*) FROM audit_pending) "
        "+ (SELECT count(*) FROM audit_events) AS audit, (SELECT value::text FROM responses) AS value")
    assert after == before
    assert await conn.fetchval("SELECT saved_seq FROM attempts") == 1


async def test_the_save_goes_through_when_nothing_changed(client, conn, staff, locked_exam):  # noqa: F811
    """The control for the test above: the same call, nothing changed, saves."""
    headers, body, item = await primed(client, locked_exam["0000000001"])
    token = hashlib.sha256(headers["Authorization"][len("Bearer "):].encode()).digest()
    me = dict(await conn.fetchrow(delivery._CANDIDATE_LEAN, token))
    rows = [(2, item["ref"], "answer", f'"{item["options"][1]["id"]}"')]
    changes = [{"seq": 2, "item": item["ref"], "kind": "answer", "value": item["options"][1]["id"]}]
    assert await autosave.save(conn, me, token, rows, changes, "127.0.0.1") == 2
    assert await history(conn, body["attempt"]["id"]) == [1, 2]
    # Another candidate's token with this attempt's fields saves nothing.
    other, _ = await started(client, locked_exam["0000000002"])
    other_token = hashlib.sha256(other["Authorization"][len("Bearer "):].encode()).digest()
    assert await autosave.save(conn, me, other_token, [(3, *rows[0][1:])], changes, "127.0.0.1") is None
    assert await history(conn, body["attempt"]["id"]) == [1, 2]
