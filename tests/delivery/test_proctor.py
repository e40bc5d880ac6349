"""Lockdown policies and the proctor console: for each policy the allowed and
the hostile case, and the live room view across the LISTEN/NOTIFY path."""

import asyncio
import datetime as dt
import http.cookiejar
import itertools
import json
import urllib.request

import aiohttp
import pytest
from support.accounts import login
from support.delivery import sign_in, single_item, started
from support.proctor import proctor_client

from cbt import lockdown
from cbt.delivery import proctor as proctor_module
from cbt.platform import db
from cbt.platform.app import create_app


def device_cookie(resp) -> dict:
    """The device cookie a sign-in set, as a header: for a client that cannot
    keep it (another test client, or a Secure cookie over the test's http)."""
    return {"Cookie": f"cbt_device={resp.cookies['cbt_device'].value}"}


async def test_a_room_view_holds_that_room_only_and_reads_it_by_index(
    client, conn, staff, locked_exam, settings, aiohttp_client
):
    proctor, _ = await proctor_client(aiohttp_client, settings)
    await started(client, locked_exam["0000000001"])

    async def codes(query: str) -> list[str]:
        resp = await proctor.get(f"/proctor/exams/LOCK-T/state{query}")
        assert resp.status == 200
        return [c["code"] for c in (await resp.json())["candidates"]]

    assert await codes("?room=P01") == ["0000000001", "0000000002"]
    assert await codes("?room=P02") == ["0000000003"]
    assert await codes("?room=P99") == []
    assert await codes("") == await codes("?room=") == ["0000000001", "0000000002", "0000000003"]
    # Consoles re-read their room whenever the exam changes: the generic plan,
    # made while the tables are tiny, must find the room's rows by index.
    plan = await db.generic_plan(conn, proctor_module._ROOM)
    scan = next(i for i, line in enumerate(plan) if " on candidates " in line)
    assert "Index" in plan[scan] and "room = $2" in plan[scan + 1], "\n".join(plan)


@pytest.mark.parametrize("locked_exam", ["  networks: {allow: [10.0.0.0/8]}\n"], indirect=True)
async def test_network_refused_and_forged_forwarded_for_ignored(client, staff, locked_exam, settings, aiohttp_client):
    resp = await client.post("/api/v1/login", json={"ticket": locked_exam["0000000001"]})
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}", **device_cookie(resp)}
    refused = await client.post("/api/v1/start", json={}, headers=headers)
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "network_refused"
    # The test client is an untrusted peer: its X-Forwarded-For is ignored.
    forged = await client.post("/api/v1/start", json={}, headers={**headers, "X-Forwarded-For": "10.1.2.3"})
    assert forged.status == 403
    state_client, _ = await proctor_client(aiohttp_client, settings)
    row = next(
        c
        for c in (await (await state_client.get("/proctor/exams/LOCK-T/state")).json())["candidates"]
        if c["code"] == "0000000001"
    )
    assert row["policy_refusals"] == 2  # both refusals are on the proctor's screen
    # Behind a configured proxy the header is believed.
    behind = await aiohttp_client(create_app(settings.replace(trusted_proxies=("127.0.0.0/8",))))
    ok = await behind.post("/api/v1/start", json={}, headers={**headers, "X-Forwarded-For": "10.1.2.3"})
    assert ok.status == 200
    # A proctor may let one candidate in from elsewhere.
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    resp = await client.post("/api/v1/login", json={"ticket": locked_exam["0000000002"]})
    headers2 = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    assert (await client.post("/api/v1/start", json={}, headers=headers2)).status == 403
    act = await proctor.post(
        "/proctor/exams/LOCK-T/actions", json={"action": "allow_network", "candidate": "0000000002"}, headers=csrf
    )
    assert act.status == 200
    assert (await client.post("/api/v1/start", json={}, headers=headers2)).status == 200


@pytest.mark.parametrize(
    "locked_exam", ["  networks: {allow: [10.0.0.0/8], rooms: {P01: [127.0.0.0/8]}}\n"], indirect=True
)
async def test_a_rooms_own_network_list(client, staff, locked_exam):
    headers, _ = await sign_in(client, locked_exam["0000000001"])  # room P01
    assert (await client.post("/api/v1/start", json={}, headers=headers)).status == 200
    headers3, _ = await sign_in(client, locked_exam["0000000003"])  # room P02: the general list
    assert (await client.post("/api/v1/start", json={}, headers=headers3)).status == 403


@pytest.mark.parametrize("locked_exam", ["  access_code: true\n"], indirect=True)
async def test_access_code_is_required_and_can_be_rotated(client, conn, staff, locked_exam, settings, aiohttp_client):
    headers, body = await sign_in(client, locked_exam["0000000001"])
    assert body["exam"]["access_code_required"] is True
    resp = await client.post("/api/v1/start", json={}, headers=headers)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "bad_access_code"
    code = await conn.fetchval("SELECT access_code FROM exam_rooms WHERE room = 'P01'")
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    rotated = await (
        await proctor.post("/proctor/exams/LOCK-T/actions", json={"action": "rotate_code", "room": "P01"}, headers=csrf)
    ).json()
    assert rotated["access_code"] != code
    old = await client.post("/api/v1/start", json={"access_code": code.lower()}, headers=headers)
    assert old.status == 403
    ok = await client.post("/api/v1/start", json={"access_code": rotated["access_code"].lower()}, headers=headers)
    assert ok.status == 200


async def test_second_browser_is_locked_until_the_proctor_moves_the_attempt(
    client, conn, staff, locked_exam, settings, aiohttp_client
):
    headers, body = await started(client, locked_exam["0000000001"])
    item = single_item(body)
    change = {"changes": [{"seq": 1, "item": item["ref"], "value": item["options"][0]["id"]}]}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        login_resp = await other.post(client.make_url("/api/v1/login"), json={"ticket": locked_exam["0000000001"]})
        other_headers = {"Authorization": f"Bearer {(await login_resp.json())['token']}"}
        locked = await other.post(client.make_url("/api/v1/changes"), json=change, headers=other_headers)
        assert locked.status == 403 and (await locked.json())["error"]["code"] == "device_locked"
        assert await conn.fetchval("SELECT count(*) FROM device_requests WHERE resolved_at IS NULL") == 1
        proctor, csrf = await proctor_client(aiohttp_client, settings)
        state = await (await proctor.get("/proctor/exams/LOCK-T/state")).json()
        row = next(c for c in state["candidates"] if c["code"] == "0000000001")
        assert row["device_requests"] == 1
        assert row["addr"] is None and row["addr_changes"] == 0  # nothing saved yet
        moved = await proctor.post(
            "/proctor/exams/LOCK-T/actions", json={"action": "unlock", "candidate": "0000000001"}, headers=csrf
        )
        assert moved.status == 200
        ok = await other.post(client.make_url("/api/v1/changes"), json=change, headers=other_headers)
        assert ok.status == 200
    # The first browser is now the locked-out one.
    again = await client.post(
        "/api/v1/changes", json={"changes": [{"seq": 2, "item": item["ref"], "value": None}]}, headers=headers
    )
    assert again.status == 403


async def test_pause_moves_the_deadline_by_exactly_the_paused_time(
    client, conn, staff, locked_exam, settings, aiohttp_client
):
    headers, body = await started(client, locked_exam["0000000002"])
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    act = "/proctor/exams/LOCK-T/actions"
    assert (await proctor.post(act, json={"action": "pause", "candidate": "0000000002"}, headers=csrf)).status == 200
    item = single_item(body)
    paused = await client.post(
        "/api/v1/changes", json={"changes": [{"seq": 1, "item": item["ref"], "value": None}]}, headers=headers
    )
    assert paused.status == 409 and (await paused.json())["error"]["code"] == "paused"
    state = await (await client.get("/api/v1/state", headers=headers)).json()
    assert state["attempt"]["paused"] is True
    # Make the pause two minutes long, then resume.
    before = await conn.fetchrow(
        "UPDATE attempts SET paused_at = paused_at - interval '2 minutes' RETURNING deadline, paused_at"
    )
    assert (await proctor.post(act, json={"action": "resume", "candidate": "0000000002"}, headers=csrf)).status == 200
    after = await conn.fetchval("SELECT deadline FROM attempts")
    resumed_at = await conn.fetchval("SELECT at FROM proctor_actions WHERE action = 'resume'")
    assert after - before["deadline"] == resumed_at - before["paused_at"]
    assert (
        await client.post(
            "/api/v1/changes", json={"changes": [{"seq": 1, "item": item["ref"], "value": None}]}, headers=headers
        )
    ).status == 200


async def test_extend_terminate_void_admit(client, conn, staff, locked_exam, settings, aiohttp_client):
    _, body = await started(client, locked_exam["0000000001"])
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    act = "/proctor/exams/LOCK-T/actions"
    before = await conn.fetchval("SELECT deadline FROM attempts WHERE id = $1", body["attempt"]["id"])
    room = await (await proctor.post(act, json={"action": "extend", "room": "P01", "minutes": 10}, headers=csrf)).json()
    assert room["attempts"] == 1
    after = await conn.fetchval("SELECT deadline FROM attempts WHERE id = $1", body["attempt"]["id"])
    assert after - before == dt.timedelta(minutes=10)
    bad = await proctor.post(act, json={"action": "extend", "candidate": "0000000001", "minutes": 0}, headers=csrf)
    assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_minutes"
    done = await proctor.post(act, json={"action": "terminate", "candidate": "0000000001"}, headers=csrf)
    assert done.status == 200
    assert await conn.fetchval("SELECT submitted_by FROM attempts") == "proctor"
    await proctor.post(act, json={"action": "void", "candidate": "0000000001"}, headers=csrf)
    assert await conn.fetchval("SELECT voided FROM attempts") is True
    # Late entry: refused, then admitted by the proctor.
    await conn.execute("UPDATE exams SET late_entry_until = opens_at")
    headers3, _ = await sign_in(client, locked_exam["0000000003"])
    assert (await client.post("/api/v1/start", json={}, headers=headers3)).status == 403
    # A malformed number of minutes is refused, as for extend, not silently taken as 15.
    for minutes in ("ten", 0, 601, True):
        bad = await proctor.post(
            act, json={"action": "admit", "candidate": "0000000003", "minutes": minutes}, headers=csrf
        )
        assert bad.status == 400 and (await bad.json())["error"]["code"] == "bad_minutes", minutes
    assert await conn.fetchval("SELECT admitted_until FROM candidates WHERE code = '0000000003'") is None
    await proctor.post(act, json={"action": "admit", "candidate": "0000000003"}, headers=csrf)
    admitted = await conn.fetchval("SELECT admitted_until - now() FROM candidates WHERE code = '0000000003'")
    assert dt.timedelta(minutes=14) < admitted <= dt.timedelta(minutes=15)
    assert (await client.post("/api/v1/start", json={}, headers=headers3)).status == 200
    # extend, terminate, void, admit: the refused extend and admits left nothing behind.
    assert await conn.fetchval("SELECT count(*) FROM proctor_actions") == 4


async def test_candidates_and_teachers_cannot_use_proctor_endpoints(
    client, staff, locked_exam, settings, aiohttp_client
):
    headers, _ = await started(client, locked_exam["0000000001"])
    for method, path in (("GET", "/proctor/exams/LOCK-T/state"), ("POST", "/proctor/exams/LOCK-T/actions")):
        resp = await client.request(
            method,
            path,
            headers={**headers, "Accept": "application/json"},
            json={"action": "terminate", "candidate": "0000000001"},
        )
        assert resp.status in (401, 403), path
    teacher = await aiohttp_client(create_app(settings))
    await login(teacher, "teacher")
    assert (await teacher.get("/proctor/exams/LOCK-T/state")).status == 403
    other_school, _ = await proctor_client(aiohttp_client, settings, who="b-admin")
    resp = await other_school.get("/proctor/exams/LOCK-T/state")
    assert resp.status == 404
    proctor, _ = await proctor_client(aiohttp_client, settings)
    no_csrf = await proctor.post("/proctor/exams/LOCK-T/actions", json={"action": "note", "note": "x"})
    assert no_csrf.status == 403


async def test_a_proctor_note_with_a_nul_is_refused_not_a_server_error(staff, locked_exam, settings, aiohttp_client):
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    for body in (
        {"action": "note", "note": "a\u0000b"},
        {"action": "extend", "room": "P01", "minutes": 5, "why": ["\u0000"]},
    ):
        resp = await proctor.post("/proctor/exams/LOCK-T/actions", json=body, headers=csrf)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "unstorable_text"


@pytest.mark.parametrize("locked_exam", ["  integrity: {action: pause, pause_after: 2}\n"], indirect=True)
async def test_integrity_events_pause_after_n(client, conn, staff, locked_exam):
    headers, _ = await started(client, locked_exam["0000000001"])
    first = await (await client.post("/api/v1/integrity", json={"events": [{"kind": "blur"}]}, headers=headers)).json()
    assert first["total"] == 1 and await conn.fetchval("SELECT paused_at FROM attempts") is None
    await client.post("/api/v1/integrity", json={"events": [{"kind": "fullscreen_exit"}]}, headers=headers)
    assert await conn.fetchval("SELECT paused_at FROM attempts") is not None
    bad = await client.post("/api/v1/integrity", json={"events": [{"kind": "hack"}]}, headers=headers)
    assert bad.status == 400


async def test_live_room_view_follows_a_student(client, staff, locked_exam, settings, aiohttp_client):
    proctor, _ = await proctor_client(aiohttp_client, settings)
    resp = await proctor.get("/proctor/exams/LOCK-T/events")
    assert resp.headers["Content-Type"].startswith("text/event-stream")

    async def next_event() -> dict:
        while True:
            line = await asyncio.wait_for(resp.content.readline(), 10)
            if line.startswith(b"data: "):
                return json.loads(line[6:])

    first = await next_event()
    assert {c["state"] for c in first["candidates"]} == {"not_started"}
    headers, body = await started(client, locked_exam["0000000002"])
    item = single_item(body)
    await client.post(
        "/api/v1/changes",
        json={"changes": [{"seq": 1, "item": item["ref"], "value": item["options"][1]["id"]}]},
        headers=headers,
    )
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        event = await next_event()
        row = next(c for c in event["candidates"] if c["code"] == "0000000002")
        if row["answered"] == 1:
            break
    assert row["state"] == "in_progress" and row["answered"] == 1 and row["seconds_left"] > 0
    resp.close()


async def test_open_consoles_end_cleanly_when_the_worker_stops(staff, locked_exam, settings, aiohttp_client):
    proctor, _ = await proctor_client(aiohttp_client, settings)
    streams = [await proctor.get(f"/proctor/exams/LOCK-T/events{q}") for q in ("?room=P01", "")]
    for resp in streams:
        assert (await asyncio.wait_for(resp.content.readline(), 10)).startswith(b"data: ")
    readers = [asyncio.create_task(resp.content.read()) for resp in streams]
    # Stopping runs on_shutdown, then waits for running handlers. Without
    # proctor.end_streams each stream would hold the stop until the shutdown
    # timeout and then be cut, and the reads below would fail mid-chunk.
    await proctor.server.close()
    for reader in readers:
        await asyncio.wait_for(reader, 30)  # the rest of each stream, up to its clean end


async def test_the_console_counts_each_kind_of_report_in_either_language(
    client, staff, locked_exam, settings, aiohttp_client
):
    headers, _ = await started(client, locked_exam["0000000001"])
    kinds = ["visibility_hidden", "blur", "blur", "fullscreen_exit", "copy", "paste", "contextmenu", "second_tab"]
    resp = await client.post("/api/v1/integrity", json={"events": [{"kind": k} for k in kinds]}, headers=headers)
    assert resp.status == 200
    proctor, _ = await proctor_client(aiohttp_client, settings)
    row = next(
        c
        for c in (await (await proctor.get("/proctor/exams/LOCK-T/state")).json())["candidates"]
        if c["code"] == "0000000001"
    )
    assert row["integrity_events"] == 8 and row["integrity_kinds"] == {
        "visibility_hidden": 1,
        "blur": 2,
        "fullscreen_exit": 1,
        "copy": 1,
        "paste": 1,
        "contextmenu": 1,
        "second_tab": 1,
    }
    # Every kind has its name on the console, in Vietnamese and in English.
    for lang, left in (("vi", "rời trang thi: {n} lần"), ("en", "left the page: {n}")):
        await proctor.get(f"/lang/{lang}")
        page = await (await proctor.get("/proctor/exams/LOCK-T")).text()
        strings = json.loads(page.split('id="proctor-config">', 1)[1].split("</script>", 1)[0])["strings"]
        assert strings["kind_visibility_hidden"] == left
        assert all(strings.get("kind_" + k) for k in lockdown.INTEGRITY_KINDS)


def api_call(opener, base: str, path: str, body=None, token=None) -> dict:
    """One call of the candidate API through `opener`, which keeps cookies (the
    device id) as the exam page's browser does."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body or {}).encode() if body is not None else None,
        headers=headers,
        method="POST" if body is not None else "GET",
    )
    with opener.open(req, timeout=10) as resp:
        return json.loads(resp.read())


def watch_a_student(base: str, ticket: str) -> dict:
    import re

    from playwright.sync_api import expect
    from support.accounts import PASSWORD
    from support.browser import SCREENSHOTS, chromium_page

    with chromium_page() as (page, problems):
        page.goto(base + "/login")
        page.fill("#username", "proctor")
        page.fill("#password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(base + "/staff")
        page.goto(base + "/proctor/exams/LOCK-T")
        row = page.locator("tr[data-code='0000000001']")
        row.wait_for()
        assert row.get_attribute("data-state") == "not_started"
        # The student starts and answers, through the same API the exam page uses.
        student = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        token = api_call(student, base, "/api/v1/login", {"ticket": ticket})["token"]
        start = api_call(student, base, "/api/v1/start", {}, token)
        item = next(i for s in start["form"]["sections"] for i in s["items"] if i["type"] == "single")
        api_call(
            student,
            base,
            "/api/v1/changes",
            {"changes": [{"seq": 1, "item": item["ref"], "value": item["options"][0]["id"]}]},
            token,
        )
        page.wait_for_selector("tr[data-code='0000000001'][data-state='in_progress']", timeout=15000)
        # Not wait_for_function: the page's CSP forbids the eval its polling needs.
        expect(page.locator("tr[data-code='0000000001'] td:nth-child(4)")).to_have_text(
            re.compile(r"^1/"), timeout=15000
        )
        # What the page reports, each kind by its name.
        api_call(
            student,
            base,
            "/api/v1/integrity",
            {"events": [{"kind": "visibility_hidden"}, {"kind": "blur"}, {"kind": "blur"}, {"kind": "paste"}]},
            token,
        )
        alerts = row.locator("td.alerting", has_text="dán")
        alerts.wait_for(timeout=15000)
        integrity = alerts.inner_text()
        page.screenshot(path=str(SCREENSHOTS / "proctor-room-vi.png"), full_page=True)
        page.on("dialog", lambda d: d.accept())
        row.locator("button", has_text="Tạm dừng").click()
        page.wait_for_selector("tr[data-code='0000000001'][data-state='paused']", timeout=15000)
        state = api_call(student, base, "/api/v1/state", None, token)
        return {"problems": problems, "paused": state["attempt"]["paused"], "integrity": integrity}


@pytest.mark.slow
async def test_proctor_console_follows_a_live_student_in_chromium(staff, dsn, locked_exam):
    from support.browser import on_live_server

    out = await on_live_server(dsn, watch_a_student, locked_exam["0000000001"])
    assert out["problems"] == [] and out["paused"] is True
    assert sorted(out["integrity"].split(", ")) == ["dán: 1 lần", "rời trang thi: 1 lần", "sang cửa sổ khác: 2 lần"]


async def test_the_proctor_list_shows_the_exams_own_time_zone(client, conn, staff, locked_exam):
    from zoneinfo import ZoneInfo

    await conn.execute("UPDATE exams SET time_zone = 'Asia/Tokyo' WHERE code = 'LOCK-T'")
    opens = await conn.fetchval("SELECT opens_at FROM exams WHERE code = 'LOCK-T'")
    await login(client, "proctor")
    html = await (await client.get("/proctor")).text()
    local = opens.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (
        f'<time datetime="{local.isoformat(timespec="seconds")}" title="Asia/Tokyo">'
        f"{local:%H:%M %d/%m/%Y} (GMT+9)</time>" in html
    )


def sign_in_proctor(page, base: str) -> None:
    from support.accounts import PASSWORD

    page.goto(base + "/login")
    page.fill("#username", "proctor")
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(base + "/staff")


def tokyo_clock(base: str) -> dict:
    """The list and the console, read by a browser whose own zone is New York's."""
    import re
    from zoneinfo import ZoneInfo

    from playwright.sync_api import expect
    from support.browser import chromium_page

    with chromium_page(timezone_id="America/New_York") as (page, problems):
        sign_in_proctor(page, base)
        page.goto(base + "/proctor")
        listed = page.locator("ul.tiles li").first.inner_text()
        page.goto(base + "/proctor/exams/LOCK-T")
        expect(page.locator("#live")).to_contain_text(re.compile(r"\d\d:\d\d:\d\d"), timeout=15000)
        now = dt.datetime.now(ZoneInfo("Asia/Tokyo"))
        live = page.locator("#live").inner_text()
        shown = re.search(r"(\d\d):(\d\d):\d\d", live)
        minutes = int(shown.group(1)) * 60 + int(shown.group(2))
        return {
            "problems": problems,
            "listed": listed,
            "live": live,
            "skew": min(
                abs(minutes - (now.hour * 60 + now.minute)) % 1440,
                1440 - abs(minutes - (now.hour * 60 + now.minute)) % 1440,
            ),
        }


async def test_the_console_says_when_it_was_updated_in_the_exams_zone_in_chromium(staff, dsn, conn, locked_exam):
    from zoneinfo import ZoneInfo

    from support.browser import on_live_server

    await conn.execute("UPDATE exams SET time_zone = 'Asia/Tokyo' WHERE code = 'LOCK-T'")
    opens = await conn.fetchval("SELECT opens_at FROM exams WHERE code = 'LOCK-T'")

    out = await on_live_server(dsn, tokyo_clock)
    assert out["problems"] == []
    assert f"{opens.astimezone(ZoneInfo('Asia/Tokyo')):%H:%M %d/%m/%Y} (GMT+9)" in out["listed"]
    # Tokyo's hour, labelled; not the browser's (New York) nor UTC.
    assert out["live"].startswith("Cập nhật lúc ") and out["live"].endswith(" (GMT+9)")
    assert out["skew"] <= 1


def run_the_room(base: str, ticket: str) -> dict:
    import re

    from support.browser import chromium_page

    with chromium_page() as (page, problems):
        sign_in_proctor(page, base)
        page.goto(base + "/proctor/exams/LOCK-T")
        page.locator("tr[data-code='0000000001']").wait_for()
        page.on("dialog", lambda d: d.accept())
        out: dict = {"problems": problems}
        # Every action button names its candidate (or room) for a screen reader.
        out["admit_buttons"] = page.get_by_role("button", name="Cho vào muộn — Trần Thị Bình (0000000002)").count()
        out["room_buttons"] = page.get_by_role("button", name="Đổi mã — Phòng P01").count()
        # Admitting late says so, and the row shows until when.
        page.get_by_role("button", name="Cho vào muộn — Trần Thị Bình (0000000002)").click()
        status = page.locator("#action-status[role='status']")
        status.filter(has_text="vào thi muộn").wait_for(timeout=15000)
        out["admitted"] = status.inner_text()
        cell = page.locator("tr[data-code='0000000002'] td.state")
        cell.filter(has_text="muộn").wait_for(timeout=15000)
        out["admitted_row"] = cell.inner_text()
        # A student starts: the time left counts down each second between the server's updates.
        student = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        token = api_call(student, base, "/api/v1/login", {"ticket": ticket})["token"]
        api_call(student, base, "/api/v1/start", {}, token)
        page.wait_for_selector("tr[data-code='0000000001'][data-state='in_progress']", timeout=15000)
        left = page.locator("tr[data-code='0000000001'] td.time-left")

        def seconds() -> int:
            m, s = re.fullmatch(r"(\d+):(\d\d)", left.inner_text()).groups()
            return int(m) * 60 + int(s)

        # Sampled every 1.5 s, after the start's own updates: the stream sends the room only when it changes
        # (or every 15 s), so each fall between samples is the page's own count.
        page.wait_for_timeout(3000)
        samples = [seconds()]
        for _ in range(4):
            page.wait_for_timeout(1500)
            samples.append(seconds())
        out["ticked"] = [a - b for a, b in itertools.pairwise(samples)]
        out["pause_buttons"] = page.get_by_role("button", name="Tạm dừng — Nguyễn Văn An (0000000001)").count()
        page.get_by_role("button", name="Tạm dừng — Nguyễn Văn An (0000000001)").click()
        page.wait_for_selector("tr[data-code='0000000001'][data-state='paused']", timeout=15000)
        out["paused_status"] = status.inner_text()
        first = seconds()
        page.wait_for_timeout(2600)
        out["paused_ticked"] = first - seconds()
        return out


@pytest.mark.slow
async def test_the_console_admits_visibly_counts_down_and_names_who_in_chromium(staff, dsn, locked_exam):
    from support.browser import on_live_server

    now = dt.datetime.now(dt.UTC)
    out = await on_live_server(dsn, run_the_room, locked_exam["0000000001"])
    assert out["problems"] == []
    assert out["admit_buttons"] == 1 and out["room_buttons"] == 1 and out["pause_buttons"] == 1
    # Until 15 minutes from now, in the exam's zone (the server's: GMT+7).
    until = [f"{now + dt.timedelta(minutes=15, seconds=s) + dt.timedelta(hours=7):%H:%M}" for s in (0, 60)]
    assert any(out["admitted"] == f"Đã cho Trần Thị Bình (0000000002) vào thi muộn đến {u} (GMT+7)." for u in until)
    assert any(f"được vào muộn đến {u} (GMT+7)" in out["admitted_row"] for u in until)
    assert all(1 <= fall <= 2 for fall in out["ticked"]), out["ticked"]
    assert out["paused_status"] == "Đã thực hiện: Tạm dừng — Nguyễn Văn An (0000000001)."
    assert out["paused_ticked"] == 0


BEK = "a" * 64  # a Browser Exam Key as an admin would paste it


@pytest.mark.parametrize("locked_exam", [f"  seb: {{required: true, browser_exam_keys: [{BEK}]}}\n"], indirect=True)
async def test_safe_exam_browser_headers_are_checked_on_every_request(
    client, conn, staff, locked_exam, settings, aiohttp_client
):
    from cbt import lockdown, seb

    public = "https://thi.example.edu.vn"
    app_client = await aiohttp_client(create_app(settings.replace(public_url=public)))
    config = await app_client.get("/exam/LOCK-T/config.seb")
    assert config.status == 200 and config.headers["Content-Type"] == "application/seb"
    config_key = seb.config_key_for_file(await config.read())

    def seb_headers(path: str) -> dict:
        url = seb.absolute_url(public, path)
        return {
            seb.CONFIG_KEY_HEADER: seb.request_hash(url, config_key),
            seb.REQUEST_HASH_HEADER: seb.request_hash(url, BEK),
        }

    resp = await app_client.post("/api/v1/login", json={"ticket": locked_exam["0000000001"]})
    token = {"Authorization": f"Bearer {(await resp.json())['token']}", **device_cookie(resp)}
    missing = await app_client.post("/api/v1/start", json={}, headers=token)
    body = await missing.json()
    assert missing.status == 403 and body["error"]["code"] == "seb_required"
    assert body["error"]["details"]["reason"] == "missing_headers"
    ok = await app_client.post("/api/v1/start", json={}, headers={**token, **seb_headers("/api/v1/start")})
    assert ok.status == 200, await ok.text()
    # A correct hash replayed on another URL is refused.
    replayed = await app_client.get("/api/v1/state", headers={**token, **seb_headers("/api/v1/start")})
    assert replayed.status == 403
    assert (await app_client.get("/api/v1/state", headers={**token, **seb_headers("/api/v1/state")})).status == 200
    refusal = await conn.fetchrow("SELECT content FROM audit_events WHERE kind = 'policy_refused' ORDER BY seq DESC")
    logged = json.loads(refusal["content"])
    assert logged["policy"] == "seb" and logged["seb_reason"] == "config_key_mismatch" and logged["seb_expected"]
    # The proctor may let one candidate sit without SEB.
    proctor, csrf = await proctor_client(aiohttp_client, settings)
    await proctor.post(
        "/proctor/exams/LOCK-T/actions", json={"action": "allow_without_seb", "candidate": "0000000001"}, headers=csrf
    )
    assert (await app_client.get("/api/v1/state", headers=token)).status == 200
    assert lockdown.check_seb(None, public, "/x", {}, "X", "t") is None


@pytest.mark.parametrize("locked_exam", ["  admission: {rate_per_second: 2, burst: 1}\n"], indirect=True)
async def test_start_storm_waits_in_line_and_time_starts_on_admission(client, conn, staff, locked_exam):
    tokens = []
    for code in ("0000000001", "0000000002", "0000000003"):
        headers, _ = await sign_in(client, locked_exam[code])
        tokens.append(headers)
    results = [await client.post("/api/v1/start", json={}, headers=h) for h in tokens]
    assert [r.status for r in results] == [200, 429, 429]
    waiting = [(await r.json())["error"] for r in results[1:]]
    assert [w["code"] for w in waiting] == ["admission_wait"] * 2
    assert [w["details"]["place"] for w in waiting] == [1, 2]  # first come, first served
    assert await conn.fetchval("SELECT count(*) FROM attempts") == 1
    await asyncio.sleep(waiting[0]["details"]["retry_after"] + 0.1)
    second = await client.post("/api/v1/start", json={}, headers=tokens[1])
    assert second.status == 200
    started_at, admitted_deadline = await conn.fetchrow(
        "SELECT a.started_at, a.deadline FROM attempts a JOIN candidates c ON c.id = a.candidate_id "
        "WHERE c.code = '0000000002'"
    )
    assert admitted_deadline - started_at == dt.timedelta(minutes=90)
    first = await conn.fetchval(
        "SELECT a.started_at FROM attempts a JOIN candidates c ON c.id = a.candidate_id WHERE c.code = '0000000001'"
    )
    # Both pressed Start together; the second's clock began when admitted, later.
    assert started_at - first >= dt.timedelta(seconds=0.4)
    assert await conn.fetchval("SELECT count(*) FROM admission_queue") == 1  # the third is still in line


@pytest.mark.parametrize("locked_exam", [f"  seb: {{required: true, browser_exam_keys: [{BEK}]}}\n"], indirect=True)
async def test_seb_javascript_api_path_with_a_single_use_nonce(conn, staff, locked_exam, settings, aiohttp_client):
    from cbt import seb

    public = "https://thi.example.edu.vn"
    client = await aiohttp_client(create_app(settings.replace(public_url=public)))
    config_key = seb.config_key_for_file(await (await client.get("/exam/LOCK-T/config.seb")).read())
    resp = await client.post("/api/v1/login", json={"ticket": locked_exam["0000000002"]})
    body = await resp.json()
    assert body["exam"]["seb_required"] is True
    token = {"Authorization": f"Bearer {body['token']}", **device_cookie(resp)}
    assert (await client.post("/api/v1/start", json={}, headers=token)).status == 403

    async def js_keys(page_path: str) -> dict:
        # What SafeExamBrowser.security computes on the page at that URL.
        url = seb.absolute_url(public, page_path)
        return {"config_key": seb.request_hash(url, config_key), "browser_exam_key": seb.request_hash(url, BEK)}

    first = await (await client.post("/api/v1/seb/nonce", json={}, headers=token)).json()
    second = await (await client.post("/api/v1/seb/nonce", json={}, headers=token)).json()
    # Hashes made for one nonce's page do not verify another nonce.
    wrong = await client.post(
        "/api/v1/seb/js-check", json={"nonce": second["nonce"], **await js_keys(first["page"])}, headers=token
    )
    assert wrong.status == 403
    ok = await client.post(
        "/api/v1/seb/js-check", json={"nonce": first["nonce"], **await js_keys(first["page"])}, headers=token
    )
    assert ok.status == 200, await ok.text()
    replay = await client.post(
        "/api/v1/seb/js-check", json={"nonce": first["nonce"], **await js_keys(first["page"])}, headers=token
    )
    assert replay.status == 403 and (await replay.json())["error"]["code"] == "seb_nonce"
    # This sign-in is now trusted without headers; a new sign-in is not.
    assert (await client.post("/api/v1/start", json={}, headers=token)).status == 200
    resp = await client.post("/api/v1/login", json={"ticket": locked_exam["0000000002"]})
    again = await client.get(
        "/api/v1/state", headers={"Authorization": f"Bearer {(await resp.json())['token']}", **device_cookie(resp)}
    )
    assert again.status == 403 and (await again.json())["error"]["code"] == "seb_required"
