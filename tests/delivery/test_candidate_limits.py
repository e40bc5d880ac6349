"""The candidate API against a hostile or broken client: one device per
attempt whatever the request carries, text PostgreSQL cannot hold, absurd
bodies, and the limits on access codes, integrity reports and tickets (which
a lab behind one NAT address must not trip)."""

import hashlib
import json

import aiohttp
import pytest
from support.delivery import sign_in, single_item, started
from support.proctor import proctor_client

from cbt import audit, lockdown
from cbt.platform.app import create_app

ACT = "/proctor/exams/LOCK-T/actions"


def item_of(body: dict, kind: str) -> dict:
    return next(i for sec in body["form"]["sections"] for i in sec["items"] if i["type"] == kind)


async def audited(conn, kind: str) -> list[dict]:
    """The exam's events of this kind, chained or still pending."""
    rows = await conn.fetch(
        "SELECT content FROM audit_events WHERE kind = $1 UNION ALL SELECT content FROM audit_pending WHERE kind = $1",
        kind,
    )
    return [json.loads(r["content"]) for r in rows]


# -- one device per attempt ------------------------------------------------------------


async def test_start_without_the_device_cookie_is_refused_before_the_clock_starts(locked_exam, client, conn, staff):
    # A client that keeps no cookies: before, its Start stored the attempt with
    # no device, and any browser could then answer for it.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as bare:
        login = await bare.post(client.make_url("/api/v1/login"), json={"ticket": locked_exam["0000000001"]})
        token = {"Authorization": f"Bearer {(await login.json())['token']}"}
        refused = await bare.post(client.make_url("/api/v1/start"), json={}, headers=token)
        assert refused.status == 403 and (await refused.json())["error"]["code"] == "device_cookie_missing"
        assert await conn.fetchval("SELECT count(*) FROM attempts") == 0
        # The refusal carries a new device cookie: with it, Start binds the attempt to it.
        issued = refused.cookies[lockdown.DEVICE_COOKIE].value
        ok = await bare.post(
            client.make_url("/api/v1/start"), json={}, headers={**token, "Cookie": f"{lockdown.DEVICE_COOKIE}={issued}"}
        )
        assert ok.status == 200
        assert await conn.fetchval("SELECT device_hash FROM attempts") == hashlib.sha256(issued.encode()).digest()
        item = single_item(await ok.json())
        change = {"changes": [{"seq": 1, "item": item["ref"], "value": item["options"][0]["id"]}]}
        # The same token without the cookie, or with another browser's, gets nowhere.
        lost = await bare.post(client.make_url("/api/v1/changes"), json=change, headers=token)
        assert lost.status == 403 and (await lost.json())["error"]["code"] == "device_cookie_missing"
    other_headers, _ = await sign_in(client, locked_exam["0000000001"])  # `client` keeps a cookie of its own
    other = await client.post("/api/v1/changes", json=change, headers=other_headers)
    assert other.status == 403 and (await other.json())["error"]["code"] == "device_locked"
    assert await conn.fetchval("SELECT count(*) FROM response_history") == 0


async def test_a_second_browser_can_neither_read_nor_change_the_attempt(locked_exam, client, conn, staff):
    _, body = await started(client, locked_exam["0000000001"])
    item = single_item(body)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        login = await other.post(client.make_url("/api/v1/login"), json={"ticket": locked_exam["0000000001"]})
        headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        calls = [
            ("GET", "/api/v1/state", None),
            ("POST", "/api/v1/integrity", {"events": [{"kind": "blur"}]}),
            ("POST", "/api/v1/changes", {"changes": [{"seq": 1, "item": item["ref"], "value": None}]}),
            ("POST", "/api/v1/sections/next", {"from_section": 0}),
            ("POST", "/api/v1/submit", {}),
            ("POST", "/api/v1/start", {}),
        ]
        for method, path, payload in calls:
            resp = await other.request(method, client.make_url(path), json=payload, headers=headers)
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "device_locked", path
    assert await conn.fetchval("SELECT count(*) FROM integrity_events") == 0
    assert await conn.fetchval("SELECT count(*) FROM response_history") == 0
    assert await conn.fetchval("SELECT (status, section_index) FROM attempts") == ("in_progress", 0)
    # The writes asked the proctor to move the attempt; the reads did not.
    assert await conn.fetchval("SELECT count(*) FROM device_requests") == 1


async def test_an_attempt_started_with_no_device_goes_to_the_first_browser_that_comes(locked_exam, client, conn, staff):
    # As an attempt started before Start always bound one.
    headers, body = await started(client, locked_exam["0000000001"])
    await conn.execute("UPDATE attempts SET device_hash = NULL")
    item = single_item(body)
    change = {"changes": [{"seq": 1, "item": item["ref"], "value": item["options"][0]["id"]}]}
    assert (await client.post("/api/v1/changes", json=change, headers=headers)).status == 200
    assert await conn.fetchval("SELECT device_hash FROM attempts") is not None
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        login = await other.post(client.make_url("/api/v1/login"), json={"ticket": locked_exam["0000000001"]})
        other_headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
        resp = await other.post(client.make_url("/api/v1/changes"), json=change, headers=other_headers)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "device_locked"


# -- text PostgreSQL cannot hold -------------------------------------------------------


@pytest.mark.parametrize("kind", ["short", "essay"])
@pytest.mark.parametrize("text", ["a\\u0000b", "a\\ud800b", "\\udfff"])
async def test_text_postgresql_cannot_hold_is_a_bad_change_naming_its_seq(exam, client, conn, kind, text):
    headers, body = await started(client, exam["0000000001"])
    ref = item_of(body, kind)["ref"]
    # Raw JSON: "\ud800" as the browser's JSON.stringify writes an unpaired surrogate.
    raw = json.dumps(
        {"changes": [{"seq": 1, "item": ref, "value": "fine"}, {"seq": 2, "item": ref, "value": "TEXT"}]}
    ).replace("TEXT", text)
    resp = await client.post(
        "/api/v1/changes", data=raw.encode(), headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status == 400, await resp.text()
    err = (await resp.json())["error"]
    assert err["code"] == "bad_change" and err["details"]["seq"] == 2 and "cannot be saved" in err["details"]["reason"]
    assert await conn.fetchval("SELECT count(*) FROM response_history") == 0


async def test_a_withdrawn_change_holds_its_seq_and_changes_no_answer(exam, client, conn):
    headers, body = await started(client, exam["0000000001"])
    item = single_item(body)
    first, second = item["options"][0]["id"], item["options"][1]["id"]
    changes = [
        {"seq": 1, "item": item["ref"], "value": first},
        {"seq": 2, "item": item["ref"], "kind": "withdrawn", "value": None},
        {"seq": 3, "item": None, "kind": "withdrawn", "value": None},
        {"seq": 4, "item": item["ref"], "kind": "flag", "value": True},
    ]
    resp = await client.post("/api/v1/changes", json={"changes": changes}, headers=headers)
    assert resp.status == 200 and (await resp.json())["saved_seq"] == 4
    state = await (await client.get("/api/v1/state", headers=headers)).json()
    assert state["answers"] == {item["ref"]: {"value": first, "flagged": True}}
    kinds = [tuple(r) for r in await conn.fetch("SELECT seq, kind, item_ref FROM response_history ORDER BY seq")]
    assert kinds == [
        (1, "answer", item["ref"]),
        (2, "withdrawn", item["ref"]),
        (3, "withdrawn", ""),
        (4, "flag", item["ref"]),
    ]
    bad = await client.post(
        "/api/v1/changes",
        headers=headers,
        json={"changes": [{"seq": 5, "item": item["ref"], "kind": "withdrawn", "value": second}]},
    )
    assert bad.status == 400 and (await bad.json())["error"]["details"]["seq"] == 5


async def test_a_late_batch_of_long_essays_is_refused_and_kept(exam, client, conn):
    headers, body = await started(client, exam["0000000001"])
    ref = item_of(body, "essay")["ref"]
    await conn.execute("UPDATE attempts SET deadline = now() - interval '5 minutes'")
    changes = [{"seq": n, "item": ref, "value": "Lời giải dài. " * 1400} for n in range(1, 11)]
    resp = await client.post("/api/v1/changes", json={"changes": changes}, headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "attempt_closed"
    kept = json.loads(await conn.fetchval("SELECT body FROM refused_changes"))
    assert kept["count"] == 10 and kept["omitted"] == 10 - len(kept["changes"]) > 0
    assert kept["sha256"] == audit.batch_digest(changes)["sha256"]


# -- integrity reports -----------------------------------------------------------------


async def test_integrity_reports_are_capped_and_the_rest_counted(
    locked_exam, client, conn, staff, settings, aiohttp_client
):
    headers, _ = await started(client, locked_exam["0000000001"])
    for _ in range(40):  # 2,000 events as fast as the client can send them
        resp = await client.post("/api/v1/integrity", json={"events": [{"kind": "blur"}] * 50}, headers=headers)
        assert resp.status == 200
    body = await resp.json()
    assert body["total"] == 2000 and body["recorded"] == 0 and body["not_recorded"] == 50
    assert await conn.fetchval("SELECT count(*) FROM integrity_events") == lockdown.INTEGRITY_MAX_PER_MINUTE
    proctor, _ = await proctor_client(aiohttp_client, settings)
    state = await (await proctor.get("/proctor/exams/LOCK-T/state")).json()
    row = next(c for c in state["candidates"] if c["code"] == "0000000001")
    assert row["integrity_events"] == 2000
    assert row["integrity_not_recorded"] == 2000 - lockdown.INTEGRITY_MAX_PER_MINUTE
    # A minute on, more are stored, up to the cap per attempt.
    attempt = await conn.fetchval("SELECT id FROM attempts")
    await conn.execute("UPDATE integrity_events SET at = at - interval '2 minutes'")
    await conn.executemany(
        "INSERT INTO integrity_events (attempt_id, kind, at) VALUES ($1, 'blur', now() - interval '2 minutes')",
        [(attempt,)] * (lockdown.INTEGRITY_MAX_PER_ATTEMPT - 1 - lockdown.INTEGRITY_MAX_PER_MINUTE),
    )
    last = await (
        await client.post("/api/v1/integrity", json={"events": [{"kind": "copy"}] * 3}, headers=headers)
    ).json()
    assert last["recorded"] == 1 and last["not_recorded"] == 2
    assert await conn.fetchval("SELECT count(*) FROM integrity_events") == lockdown.INTEGRITY_MAX_PER_ATTEMPT


@pytest.mark.parametrize("locked_exam", ["  integrity: {action: pause, pause_after: 40}\n"], indirect=True)
async def test_events_only_counted_still_pause_the_attempt(locked_exam, client, conn, staff):
    headers, _ = await started(client, locked_exam["0000000001"])
    first = await (
        await client.post("/api/v1/integrity", json={"events": [{"kind": "blur"}] * 35}, headers=headers)
    ).json()
    assert first["action"] == "pause" and first["not_recorded"] == 5
    assert await conn.fetchval("SELECT paused_at FROM attempts") is None
    await client.post("/api/v1/integrity", json={"events": [{"kind": "blur"}] * 5}, headers=headers)
    assert await conn.fetchval("SELECT paused_at FROM attempts") is not None


# -- room access codes -----------------------------------------------------------------


@pytest.mark.parametrize("locked_exam", ["  access_code: true\n"], indirect=True)
async def test_wrong_access_codes_are_limited_per_candidate_audited_and_the_proctor_can_clear(
    locked_exam, conn, staff, settings, aiohttp_client
):
    client = await aiohttp_client(create_app(settings.replace(access_code_max_per_candidate=3)))
    code = await conn.fetchval("SELECT access_code FROM exam_rooms WHERE room = 'P01'")
    headers, _ = await sign_in(client, locked_exam["0000000001"])
    tries = []
    for _ in range(3):
        resp = await client.post("/api/v1/start", json={"access_code": "XXXXXX"}, headers=headers)
        assert resp.status == 403
        tries.append((await resp.json())["error"]["details"]["tries_left"])
    assert tries == [2, 1, 0]
    locked = await client.post("/api/v1/start", json={"access_code": code}, headers=headers)
    err = (await locked.json())["error"]
    assert locked.status == 429 and err["code"] == "access_code_locked"
    assert err["details"]["minutes"] == 15 and 14 * 60 < err["details"]["retry_after"] <= 15 * 60
    assert "15" in err["message"]  # the wait, in the reader's language
    events = await audited(conn, "access_code_refused")
    assert [e["failures"] for e in events] == [1, 2, 3] and [e["locked"] for e in events] == [False, False, True]
    # The lock is this candidate's: a classmate on the same address starts.
    headers2, _ = await sign_in(client, locked_exam["0000000002"])
    assert (await client.post("/api/v1/start", json={"access_code": code}, headers=headers2)).status == 200
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    other_room = await proctor.post(ACT, json={"action": "clear_sign_in_lock", "room": "P02"}, headers=csrf)
    assert (await other_room.json())["cleared"] == 3  # the address's count; candidate 1 stays locked
    assert (await client.post("/api/v1/start", json={"access_code": code}, headers=headers)).status == 429
    whole_exam = await proctor.post(ACT, json={"action": "clear_sign_in_lock"}, headers=csrf)
    assert whole_exam.status == 200 and (await whole_exam.json())["cleared"] == 3
    assert (await client.post("/api/v1/start", json={"access_code": code}, headers=headers)).status == 200


@pytest.mark.parametrize("locked_exam", ["  access_code: true\n"], indirect=True)
async def test_wrong_access_codes_from_one_address_are_limited_much_higher(
    locked_exam, conn, staff, settings, aiohttp_client
):
    client = await aiohttp_client(
        create_app(settings.replace(access_code_max_per_candidate=3, access_code_max_per_ip=4))
    )
    code = await conn.fetchval("SELECT access_code FROM exam_rooms WHERE room = 'P01'")
    headers = [(await sign_in(client, locked_exam[c]))[0] for c in ("0000000001", "0000000002")]
    statuses = [
        (await client.post("/api/v1/start", json={"access_code": "XXXXXX"}, headers=h)).status
        for h in (headers[0], headers[0], headers[1], headers[1], headers[1])
    ]
    assert statuses == [403, 403, 403, 403, 429]
    resp = await client.post("/api/v1/start", json={"access_code": code}, headers=headers[0])
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "access_code_locked"


@pytest.mark.parametrize("locked_exam", ["  access_code: true\n"], indirect=True)
async def test_an_access_code_typed_in_vietnamese_is_wrong_not_a_server_error(locked_exam, client, staff):
    headers, _ = await sign_in(client, locked_exam["0000000001"])
    for typed in ("MÃ PHÒNG", "Đ\u0000", "x" * 100_000, 12, ["A"]):
        resp = await client.post("/api/v1/start", json={"access_code": typed}, headers=headers)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "bad_access_code", typed


# -- wrong tickets ---------------------------------------------------------------------


def wrong_ticket(n: int) -> str:
    return f"{n:04d}-XXXX-XXXX-XXXX"


async def test_a_lab_behind_one_address_is_not_locked_out_by_typing_mistakes(exam, client):
    # Forty students, each typing a ticket wrong once: before, the 31st wrong
    # ticket from the lab's one address locked everyone out for 15 minutes.
    for n in range(40):
        resp = await client.post("/api/v1/login", json={"ticket": wrong_ticket(n)})
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "bad_ticket", n
    assert (await client.post("/api/v1/login", json={"ticket": exam["0000000001"]})).status == 200


async def test_the_address_lock_says_what_to_do_and_a_proctor_clears_it(
    locked_exam, conn, staff, settings, aiohttp_client
):
    client = await aiohttp_client(create_app(settings.replace(ticket_max_per_ip=5)))
    for n in range(5):
        assert (await client.post("/api/v1/login", json={"ticket": wrong_ticket(n)})).status == 401
    # Now even a right ticket waits: the lock is against guessing from this address.
    locked = await client.post("/api/v1/login", json={"ticket": locked_exam["0000000001"]})
    err = (await locked.json())["error"]
    assert locked.status == 429 and err["code"] == "sign_in_locked"
    assert err["details"]["minutes"] == 15 and "cán bộ coi thi mở khoá" in err["message"]
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    cleared = await (await proctor.post(ACT, json={"action": "clear_sign_in_lock", "room": "P01"}, headers=csrf)).json()
    assert cleared["addresses"] == ["127.0.0.1"] and cleared["cleared"] == 5
    assert (await client.post("/api/v1/login", json={"ticket": locked_exam["0000000001"]})).status == 200
    action = next(e for e in await audited(conn, "proctor_action") if e["action"] == "clear_sign_in_lock")
    assert action["room"] == "P01" and action["addresses"] == ["127.0.0.1"] and action["cleared"] == 5


async def test_one_ticket_typed_wrong_again_and_again_is_limited_by_itself(exam, conn, settings, aiohttp_client):
    client = await aiohttp_client(create_app(settings.replace(ticket_max_per_ticket=3)))
    same = {"ticket": wrong_ticket(1)}
    assert [(await client.post("/api/v1/login", json=same)).status for _ in range(4)] == [401, 401, 401, 429]
    resp = await client.post("/api/v1/login", json={"ticket": wrong_ticket(1).lower().replace("-", " ")})
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "ticket_locked"  # the same ticket
    assert (await client.post("/api/v1/login", json={"ticket": wrong_ticket(2)})).status == 401
    assert (await client.post("/api/v1/login", json={"ticket": exam["0000000001"]})).status == 200
    # Only the ticket's hash is stored, never what was typed.
    keys = [r["key"] for r in await conn.fetch("SELECT key FROM login_failures WHERE scope = 'ticket'")]
    assert keys and not any("XXXX" in k for k in keys)


async def test_the_lock_queries_read_by_key_while_the_tables_are_tiny(exam, conn):
    from cbt.delivery import candidate
    from cbt.platform import db

    plan = await db.generic_plan(conn, candidate._LOCKED_UNTIL)
    assert not [line for line in plan if "Seq Scan on login_failures" in line], "\n".join(plan)
    assert any("Index" in line and "login_failures" in line for line in plan), "\n".join(plan)


async def test_settings_refuse_a_limit_below_one():
    from cbt.platform.config import ConfigError, settings_from

    with pytest.raises(ConfigError, match="CBT_TICKET_MAX_PER_IP must be 1 or more"):
        settings_from({"CBT_TICKET_MAX_PER_IP": "0"})
    assert settings_from({"CBT_ACCESS_CODE_MAX_PER_IP": "500"}).access_code_max_per_ip == 500


# -- absurd bodies ---------------------------------------------------------------------


# Each (path, body) against a started attempt. Before, several of these were a 500.
ABSURD = [
    ("/api/v1/login", {"ticket": "\u0000"}),
    ("/api/v1/login", {"ticket": "A" * 200_000}),
    ("/api/v1/login", {"ticket": ["AAAA"]}),
    ("/api/v1/login", {"ticket": {"a": 1}}),
    ("/api/v1/start", {"attempt_id": "\u0000"}),
    ("/api/v1/changes", {"changes": [{"seq": 1, "item": ["q1"], "value": None}]}),
    ("/api/v1/changes", {"changes": [{"seq": 1, "item": {"q": 1}, "value": None}]}),
    ("/api/v1/changes", {"changes": [{"seq": 1, "item": "\u0000", "value": None}]}),
    ("/api/v1/changes", {"changes": [{"seq": 10**30, "item": "q1", "value": None}]}),
    ("/api/v1/changes", {"changes": [{"seq": 1, "item": "q1", "kind": ["answer"], "value": None}]}),
    ("/api/v1/changes", {"changes": "\u0000"}),
    ("/api/v1/integrity", {"events": [{"kind": "\u0000"}]}),
    ("/api/v1/integrity", {"events": [{"kind": ["blur"]}]}),
    ("/api/v1/integrity", {"events": [{"kind": "blur"}] * 51}),
    ("/api/v1/sections/next", {"from_section": "\u0000"}),
    ("/api/v1/submit", {"attempt_id": {"\u0000": 1}}),
    ("/api/v1/seb/js-check", {"nonce": "\u0000"}),
    ("/api/v1/seb/js-check", {"nonce": ["x"]}),
    ("/api/v1/seb/js-check", {"nonce": "x" * 100_000}),
]


@pytest.mark.parametrize(("path", "payload"), ABSURD)
async def test_nul_and_absurd_values_in_any_body_get_a_4xx(locked_exam, client, conn, staff, path, payload):
    headers, _ = await started(client, locked_exam["0000000002"])
    resp = await client.post(path, json=payload, headers=headers)
    assert 400 <= resp.status < 500, (resp.status, await resp.text())
    assert (await resp.json())["error"]["code"]


@pytest.mark.parametrize(
    "locked_exam", ["  seb: {required: true, browser_exam_keys: [" + "a" * 64 + "]}\n"], indirect=True
)
async def test_seb_keys_that_are_not_hashes_are_refused_not_stored(locked_exam, conn, staff, settings, aiohttp_client):
    client = await aiohttp_client(create_app(settings.replace(public_url="https://thi.example.edu.vn")))
    headers, _ = await sign_in(client, locked_exam["0000000001"])
    for keys in ({"config_key": 5, "browser_exam_key": ["x"]}, {"config_key": "\u0000" * 64}):
        nonce = (await (await client.post("/api/v1/seb/nonce", json={}, headers=headers)).json())["nonce"]
        resp = await client.post("/api/v1/seb/js-check", json={"nonce": nonce, **keys}, headers=headers)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "seb_required"
    # A script asking for nonces without end keeps only the latest few.
    for _ in range(20):
        await client.post("/api/v1/seb/nonce", json={}, headers=headers)
    assert await conn.fetchval("SELECT count(*) FROM seb_nonces") == 5
