"""A whole sitting in Chromium: ticket, identity, answers of every type, the
network gone, a reload with unsent answers, back online, submit; then every
answer is in the database and scored."""

import asyncio
import concurrent.futures
import datetime as dt
import http.cookiejar
import json
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from support.accounts import CSRF_RE, PASSWORD
from support.bank import trust
from support.browser import SCREENSHOTS, chromium_page, on_live_server
from support.delivery import NOW, STUDENTS, exam_yaml
from support.sets import imported, passages_exam_yaml

from cbt import bank, exams


def answer_current(page) -> str:
    """Answer the question on screen, whatever its type; return its type."""
    box = page.locator("#question")
    if box.locator("input[type=radio][name^=q]").count() and not box.locator("table.statements").count():
        box.locator("label.option").first.click()
        return "single"
    if box.locator("input[type=checkbox]").count():
        box.locator("label.option").first.click()
        return "multiple"
    if box.locator("table.statements").count():
        for radio in box.locator("td.tf input").all()[::2]:  # "true" for every statement
            radio.check()
        return "truefalse4"
    if box.locator("input.short-input").count():
        box.locator("input.short-input").fill("")
        box.locator("input.short-input").type("-1.5x")  # filtered to Part III characters: -1,5
        return "short"
    box.locator("textarea").fill("Lời giải: đạo hàm, lập bảng biến thiên, kết luận.")
    return "essay"


def sit(base: str, ticket: str) -> dict:
    with chromium_page() as (page, problems):
        page.goto(base + "/exam")
        page.fill("#ticket", ticket.lower().replace("-", " "))  # typed sloppily: still accepted
        page.click("#login-form button")
        page.wait_for_selector("#screen-confirm:not([hidden])")
        assert page.locator("#c-name").inner_text() == "Nguyễn Văn An"
        page.click("#start")
        page.wait_for_selector("#screen-exam:not([hidden])")
        total = page.locator(".qbtn").count()
        assert page.locator("#timer").inner_text().count(":") >= 1
        types = {}
        types[1] = answer_current(page)
        page.click("#next")
        types[2] = answer_current(page)
        page.wait_for_selector("#save-state[data-state=saved]")

        page.context.set_offline(True)
        for n in (3, 4, 5):
            page.click("#next")
            types[n] = answer_current(page)
        page.click("#flag")
        page.wait_for_selector("#offline:not([hidden])", timeout=15000)
        journal = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('cbt.journal'))")
        assert journal and len(json.loads(page.evaluate(f"localStorage.getItem('{journal[0]}')"))) >= 3
        page.screenshot(path=str(SCREENSHOTS / "exam-offline-vi.png"))

        # Back on the network, but the server still unreachable for saves while
        # the student reloads: the answers must come back from the journal.
        page.route("**/api/v1/changes", lambda route: route.abort())
        page.context.set_offline(False)
        page.reload()
        page.wait_for_selector("#screen-exam:not([hidden])")
        answered = page.locator(".qbtn.answered").count()
        assert answered == 5, answered
        assert page.locator(".qbtn.flagged").count() == 1
        page.unroute("**/api/v1/changes")
        page.evaluate("window.dispatchEvent(new Event('online'))")
        page.wait_for_selector("#save-state[data-state=saved]", timeout=20000)
        page.locator(".qbtn").nth(5).click()
        types[6] = answer_current(page)
        page.wait_for_selector("#save-state[data-state=saved]", timeout=20000)

        page.click("#submit")
        assert "7" in page.locator("#unanswered").inner_text() or total == 6
        page.screenshot(path=str(SCREENSHOTS / "exam-submit-dialog-vi.png"))
        page.click("#submit-yes")
        page.wait_for_selector("#screen-done:not([hidden])", timeout=30000)
        receipt = page.locator("#d-receipt").inner_text()
        score = page.locator("#d-score").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "exam-done-vi.png"))
        # The problems the page met: only the aborted saves may appear.
        real = [
            p
            for p in problems
            if "ERR_FAILED" not in p and "ERR_INTERNET_DISCONNECTED" not in p and "Failed to fetch" not in p
        ]
        return {"types": types, "receipt": receipt, "score": score, "problems": real}


async def test_whole_sitting_in_chromium(conn, dsn, exam):
    out = await on_live_server(dsn, sit, exam["0000000001"])
    assert out["problems"] == [], out["problems"]
    attempt = await conn.fetchrow("SELECT * FROM attempts")
    assert attempt["status"] == "submitted" and attempt["submitted_by"] == "candidate"
    assert out["receipt"] == attempt["receipt"]
    rows = {r["item_ref"]: r for r in await conn.fetch("SELECT * FROM responses WHERE attempt_id = $1", attempt["id"])}
    answered = [ref for ref, r in rows.items() if r["value"] is not None]
    assert len(answered) == 6, sorted(answered)
    assert sum(1 for r in rows.values() if r["flagged"]) == 1
    for ref in answered:  # every answered question was scored (essays wait for marking)
        r = rows[ref]
        kind = json.loads(attempt["layout"])[ref]["t"]
        assert (r["score"] is None) == (kind == "essay"), ref
        if kind == "short":
            assert json.loads(r["value"]) == "-1,5"
    assert out["score"].startswith("Điểm: ")


def sit_until_time_is_up(base: str, ticket: str, dsn: str) -> dict:
    import asyncpg

    with chromium_page() as (page, problems):
        page.goto(base + "/exam")
        page.fill("#ticket", ticket)
        page.click("#login-form button")
        page.click("#start")
        page.wait_for_selector("#screen-exam:not([hidden])")
        answer_current(page)
        page.wait_for_selector("#save-state[data-state=saved]")

        async def shorten():
            conn = await asyncpg.connect(dsn)
            await conn.execute("UPDATE attempts SET deadline = now() + interval '4 seconds'")
            await conn.close()

        # Playwright's sync API holds this thread's event loop: use another thread.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, shorten()).result()
        page.reload()  # the page learns the new deadline from the server
        page.wait_for_selector("#timer.warn", timeout=10000)
        page.wait_for_selector("#screen-done:not([hidden])", timeout=30000)
        return {"problems": problems, "receipt": page.locator("#d-receipt").inner_text()}


@pytest.mark.slow
async def test_the_page_submits_by_itself_when_time_is_up(conn, dsn, exam):
    out = await on_live_server(dsn, sit_until_time_is_up, exam["0000000002"], dsn)
    assert out["problems"] == [], out["problems"]
    attempt = await conn.fetchrow("SELECT status, submitted_at, deadline, receipt FROM attempts")
    assert attempt["status"] == "submitted" and attempt["receipt"] == out["receipt"]
    assert attempt["submitted_at"] >= attempt["deadline"]
    assert await conn.fetchval("SELECT count(*) FROM responses WHERE value IS NOT NULL") == 1


def sit_by_keyboard(base: str, ticket: str) -> dict:
    with chromium_page() as (page, problems):
        page.goto(base + "/exam")
        page.focus("#ticket")
        page.keyboard.type(ticket)
        page.keyboard.press("Enter")
        page.wait_for_selector("#screen-confirm:not([hidden])")
        assert page.evaluate("document.activeElement.id") == "start"
        page.keyboard.press("Enter")
        page.wait_for_selector("#screen-exam:not([hidden])")
        # Tab into the answer area and pick an option with the keyboard.
        page.focus("#question")
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate(
                "document.activeElement.closest('#question') !== null && document.activeElement.tagName === 'INPUT'"
            ):
                break
        focused = page.evaluate("document.activeElement.type")
        page.keyboard.press("Space")
        page.wait_for_selector("#save-state[data-state=saved]")
        answered = page.locator(".qbtn.answered").count()
        # The question buttons and the navigation are reachable and work from the keyboard.
        page.focus(".qbtn >> nth=1")
        page.keyboard.press("Enter")
        current = page.evaluate("document.querySelector('.qbtn.current').textContent")
        return {"problems": problems, "focused": focused, "answered": answered, "current": current}


async def test_the_exam_is_usable_by_keyboard_alone(dsn, exam):
    out = await on_live_server(dsn, sit_by_keyboard, exam["0000000003"])
    assert out["problems"] == []
    assert out["focused"] in ("radio", "checkbox", "text")
    assert out["answered"] == 1
    assert out["current"] == "2"


def open_twice(base: str, ticket: str) -> list:
    with chromium_page() as (page, problems):
        for p in (page, page.context.new_page()):
            p.goto(base + "/exam")
            p.fill("#ticket", ticket)
            p.click("#login-form button")
            p.wait_for_selector("#screen-confirm:not([hidden]), #screen-exam:not([hidden])")
            if p.locator("#screen-confirm:not([hidden])").count():
                p.click("#start")
            p.wait_for_selector("#screen-exam:not([hidden])")
        page.wait_for_timeout(1500)
        return problems


async def test_a_second_tab_of_the_same_attempt_is_reported(conn, dsn, exam):
    problems = await on_live_server(dsn, open_twice, exam["0000000001"])
    assert problems == []
    kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM integrity_events")]
    assert "second_tab" in kinds


def run_in_thread(coro_fn):
    """Run an asyncio coroutine from Playwright's sync code (its thread holds an event loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro_fn()).result()


def go_to(page, kind: str) -> int:
    """Show the first question of this type (the form is shuffled); return its number on screen."""
    selector = {"essay": "#question textarea", "single": "#question label.option"}[kind]
    for n in range(page.locator(".qbtn").count()):
        page.locator(".qbtn").nth(n).click()
        if page.locator(selector).count() and (kind != "single" or not page.locator("input[type=checkbox]").count()):
            return n + 1
    raise AssertionError(f"no {kind} question")


def type_into_essay(page, text: str) -> None:
    # As a keyboard, a paste or an input method would: the value changes, then an input event.
    page.evaluate(
        """(text) => { const a = document.querySelector('#question textarea'); a.value = text;
                                 a.dispatchEvent(new Event('input', {bubbles: true})); }""",
        text,
    )


def sit_through_refusals(base: str, ticket: str, dsn: str) -> dict:
    import asyncpg

    async def db(query: str, *args):
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    out = {}
    with chromium_page() as (page, problems):
        page.goto(base + "/exam")
        # Wrong tickets from this address up to its limit (CBT_TICKET_MAX_PER_IP=3 here): then the page says
        # what happened and what to do.
        for n in range(4):
            page.fill("#ticket", f"{n:04d}-XXXX-XXXX-XXXX")
            with page.expect_response("**/api/v1/login"):
                page.click("#login-form button")
        page.wait_for_selector("#login-error:not([hidden]):has-text('phút')")
        out["locked_message"] = page.locator("#login-error").inner_text()
        run_in_thread(lambda: db("DELETE FROM login_failures"))  # what the proctor's "clear sign-in lock" does
        page.fill("#ticket", ticket)
        page.click("#login-form button")
        page.wait_for_selector("#screen-confirm:not([hidden])")
        # The device cookie lost between sign-in and Start (cleared, or blocked): Start is refused before the
        # clock starts, with a new cookie, and the page presses Start again by itself.
        page.context.clear_cookies()
        starts = []
        page.on("response", lambda r: starts.append(r.status) if r.url.endswith("/api/v1/start") else None)
        page.click("#start")
        page.wait_for_selector("#screen-exam:not([hidden])")
        out["starts"] = starts

        # A NUL typed or pasted into an essay: the page keeps the rest of the text, and saves it.
        essay_no = go_to(page, "essay")
        type_into_essay(page, "Bài làm\u0000 có ký tự NUL")
        page.wait_for_selector("#save-state[data-state=saved]", timeout=15000)
        go_to(page, "single")
        page.locator("#question label.option").first.click()
        page.wait_for_selector("#save-state[data-state=saved]", timeout=15000)

        # A change the server refuses as malformed (an essay over its length, set around the textarea's
        # maxlength): withdrawn, shown to the student, and the answers after it are saved.
        go_to(page, "essay")
        type_into_essay(page, "x" * 20001)
        page.wait_for_selector("#refused:not([hidden])", timeout=15000)
        out["refused_notice"] = page.locator("#refused").inner_text()
        out["essay_no"] = essay_no
        page.locator(".qbtn:not(.answered)").first.click()
        answer_current(page)
        page.wait_for_selector("#save-state[data-state=saved]", timeout=15000)
        out["kept"] = page.evaluate(
            "Object.keys(localStorage).filter(k => k.startsWith('cbt.refused.'))"
            ".map(k => JSON.parse(localStorage.getItem(k)))"
        )
        page.screenshot(path=str(SCREENSHOTS / "exam-refused-vi.png"))
        # The refusals above are the only failed requests the console may show.
        out["problems"] = [p for p in problems if not any(f"status of {n}" in p for n in (400, 401, 403, 429))]
    return out


async def test_the_page_gets_past_what_the_server_refuses(conn, dsn, exam):
    out = await on_live_server(dsn, sit_through_refusals, exam["0000000001"], dsn, CBT_TICKET_MAX_PER_IP="3")
    assert out["problems"] == [], out["problems"]
    assert "cán bộ coi thi mở khoá" in out["locked_message"] and "15 phút" in out["locked_message"]
    attempt = await conn.fetchrow("SELECT id, layout, device_hash FROM attempts")
    assert out["starts"] == [403, 200] and attempt["device_hash"] is not None
    layout = json.loads(attempt["layout"])
    values = {
        r["item_ref"]: json.loads(r["value"])
        for r in await conn.fetch(
            "SELECT item_ref, value FROM responses WHERE attempt_id = $1 AND value IS NOT NULL", attempt["id"]
        )
    }
    essay = next(ref for ref, e in layout.items() if e["t"] == "essay")
    assert values[essay] == "Bài làm có ký tự NUL"  # the NUL left out, the rest saved, not the refused text
    assert len(values) == 3  # the essay, the first single-choice answer, and the answer after the refusal
    history = [r["kind"] for r in await conn.fetch("SELECT kind FROM response_history ORDER BY seq")]
    assert history.count("withdrawn") == 1 and history[-1] == "answer"
    assert f"Câu {out['essay_no']}:" in out["refused_notice"]
    assert [len(k) for k in out["kept"]] == [1] and len(out["kept"][0][0]["value"]) == 20001


# -- what a student, a proctor and a keyboard met on first use (issue 16) ------------------------------------


LAB_EXAM = f"""
code: LAB-T
title: Kiểm tra Toán 12 (phòng máy)
subject: toan
release: demo-thpt 2025.1
duration_minutes: 45
window: {{opens: {(NOW - dt.timedelta(hours=1)).isoformat()}, closes: {(NOW + dt.timedelta(hours=3)).isoformat()},
          late_entry_minutes: 120}}
show_score: true
grace_seconds: 30
sections:
  - title: Phần I
    rows:
      - {{topic: ham-so, level: 1, count: 3, points: 0.25, type: single}}
      - {{topic: mu-logarit, level: 1, count: 3, points: 0.25, type: single}}
      - {{topic: mu-logarit, level: 2, count: 2, points: 0.25, type: single}}
      - {{topic: nguyen-ham-tich-phan, level: 1, count: 2, points: 0.25, type: single}}
  - title: Phần II
    rows:
      - {{topic: ham-so, level: 2, count: 1, points: 1, type: truefalse4}}
"""


@pytest.fixture
async def lab_exam(conn, staff, signed_demo):
    """Ten single-choice questions, every one of the bank's (-oo; 2) and inline-fraction items among them, then a
    true/false one; in THPT-A, where the proctor account works. Returns {code: ticket}."""
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await exams.create_exam(conn, exams.parse_exam(LAB_EXAM), "THPT-A")
    await exams.add_roster(conn, "LAB-T", STUDENTS)
    await exams.open_exam(conn, "LAB-T")
    return {r["code"]: r["ticket"] for r in await exams.issue_tickets(conn, "LAB-T")}


class StaffBrowserless:
    """A staff member signed in over HTTP, for the proctor's actions while a student's page is open."""

    def __init__(self, base: str, username: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        token = CSRF_RE.search(self.opener.open(base + "/login").read().decode()).group(1)
        form = urllib.parse.urlencode(
            {"username": username, "password": PASSWORD, "csrf_token": token, "next": "/staff"}
        ).encode()
        page = self.opener.open(urllib.request.Request(base + "/login", data=form)).read().decode()
        self.csrf = CSRF_RE.search(page).group(1)

    def act(self, code: str, action: str, **body) -> dict:
        req = urllib.request.Request(
            f"{self.base}/proctor/exams/{code}/actions",
            method="POST",
            data=json.dumps({"action": action, **body}).encode(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf},
        )
        with self.opener.open(req, timeout=10) as resp:
            return json.loads(resp.read())


def sign_in_and_start(page, base: str, ticket: str) -> None:
    page.goto(base + "/exam")
    page.fill("#ticket", ticket)
    page.click("#login-form button")
    page.wait_for_selector("#screen-confirm:not([hidden])")
    page.click("#start")
    page.wait_for_selector("#screen-exam:not([hidden])")


def seconds(timer: str) -> int:
    parts = [int(p) for p in timer.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def sit_through_a_pause(base: str, ticket: str, dsn: str) -> dict:
    import asyncpg

    async def shorten():
        conn = await asyncpg.connect(dsn)
        try:  # a short exam: its time nearly over
            return await conn.fetchval(
                "UPDATE attempts SET deadline = now() + interval '10 seconds' RETURNING deadline"
            )
        finally:
            await conn.close()

    async def status():
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval("SELECT status FROM attempts")
        finally:
            await conn.close()

    out = {}
    proctor = StaffBrowserless(base, "proctor")
    with chromium_page() as (page, problems):
        sign_in_and_start(page, base, ticket)
        out["first_deadline"] = run_in_thread(shorten)
        page.reload()  # the page learns the short deadline
        page.wait_for_selector("#screen-exam:not([hidden])")
        proctor.act("LOCK-T", "pause", candidate="0000000001")
        page.wait_for_selector("#paused:not([hidden])", timeout=10000)
        frozen = page.locator("#timer").inner_text()
        # Longer than the time that was left: on the page as on the server, the clock stands still.
        page.wait_for_timeout(13000)
        out["frozen"], out["still"] = frozen, page.locator("#timer").inner_text()
        out["screen_while_paused"] = page.evaluate("document.body.dataset.screen")
        out["status_while_paused"] = run_in_thread(status)
        out["inert"] = page.evaluate(
            "[...document.querySelectorAll('#screen-exam .exam-body, #screen-exam .qfoot')]"
            ".map(e => e.inert && getComputedStyle(e).opacity < 0.5)"
        )
        out["paused_text"] = page.locator("#paused").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "exam-paused-vi.png"))
        if out["screen_while_paused"] != "exam":
            return out  # nothing more to sit: the assertions say what the page showed

        proctor.act("LOCK-T", "resume", candidate="0000000001")
        page.wait_for_selector("#paused", state="hidden", timeout=10000)
        out["after_resume"] = page.locator("#timer").inner_text()
        page.locator("#question label.option").first.click()
        page.wait_for_selector("#save-state[data-state=saved]", timeout=10000)
        # The time left runs out after the resume: now the page hands in, and says so.
        page.wait_for_selector("#screen-done:not([hidden])", timeout=30000)
        out["receipt"] = page.locator("#d-receipt").inner_text()
        out["problems"] = [p for p in problems if "status of 409" not in p]  # the saves refused while paused
    return out


@pytest.mark.slow
async def test_a_paused_page_stops_its_clock_and_never_says_submitted(conn, dsn, staff, locked_exam):
    out = await on_live_server(dsn, sit_through_a_pause, locked_exam["0000000001"], dsn)
    assert out["screen_while_paused"] == "exam" and out["status_while_paused"] == "in_progress", out
    assert out["still"] == out["frozen"] and seconds(out["frozen"]) > 0, out
    assert out["problems"] == [], out["problems"]
    assert out["inert"] == [True, True]  # nothing to press, and it looks so
    assert "tạm dừng" in out["paused_text"]
    # After the resume the clock goes on from where it stopped (the server moved the deadline by the pause).
    assert 0 < seconds(out["frozen"]) - seconds(out["after_resume"]) <= 6, out
    attempt = await conn.fetchrow("SELECT status, deadline, submitted_at, receipt FROM attempts")
    assert attempt["status"] == "submitted" and out["receipt"] == attempt["receipt"] != ""
    assert attempt["deadline"] >= out["first_deadline"] + dt.timedelta(seconds=13)
    assert attempt["submitted_at"] >= attempt["deadline"]


def tab_to(page, condition: str, *, limit: int = 80) -> int:
    """Press Tab until `condition` (JS) holds; how many times focus left the page on the way."""
    left = 0
    for _ in range(limit):
        page.keyboard.press("Tab")
        where = page.evaluate(f"[document.hasFocus() && document.activeElement !== document.body, {condition}]")
        left += not where[0]
        if where[1]:
            return left
    raise AssertionError(f"not reached by Tab: {condition}")


async def db(dsn: str, query: str, *args) -> list:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def answer_ten_by_keyboard(base: str, ticket: str, dsn: str) -> dict:
    with chromium_page() as (page, problems):
        page.goto(base + "/exam")
        page.keyboard.type(ticket)  # the ticket field has focus from the start
        page.keyboard.press("Enter")
        page.wait_for_selector("#screen-confirm:not([hidden])")
        page.keyboard.press("Enter")
        page.wait_for_selector("#screen-exam:not([hidden])")
        left = 0
        for n in range(1, 11):
            assert page.evaluate("document.querySelector('.qbtn.current').textContent") == str(n)
            left += tab_to(
                page, "document.activeElement.closest('#question') !== null && document.activeElement.type === 'radio'"
            )
            page.keyboard.press("Space")
            # On to "Câu sau →", the last control of the page, and past it.
            left += tab_to(page, "document.activeElement.id === 'next'")
            page.keyboard.press("Enter")
            page.wait_for_selector("#save-state[data-state=saved]")
        page.wait_for_timeout(3000)  # longer than a moment away
        page.reload()
        page.wait_for_selector("#screen-exam:not([hidden])")
        page.locator(".langs a[hreflang=en]").click()
        page.wait_for_selector("#screen-exam:not([hidden])")
        page.wait_for_selector("html[lang=en]", state="attached")
        page.wait_for_timeout(3000)
        answered = page.locator(".qbtn.answered").count()
        quiet = run_in_thread(lambda: db(dsn, "SELECT kind FROM integrity_events ORDER BY id"))
        # Really leaving: another page in the exam's tab for a while, then back.
        page.goto(base + "/receipt")
        page.wait_for_timeout(6000)
        page.goto(base + "/exam")
        page.wait_for_selector("#screen-exam:not([hidden])")
        page.wait_for_timeout(2000)
        return {"problems": problems, "answered": answered, "quiet": [r["kind"] for r in quiet], "left": left}


@pytest.mark.slow
async def test_ten_answers_by_keyboard_a_reload_and_a_language_switch_report_nothing(conn, dsn, lab_exam):
    out = await on_live_server(dsn, answer_ten_by_keyboard, lab_exam["0000000001"], dsn)
    assert out["quiet"] == []  # Tab past the last control, a reload, the language switch: nobody left
    assert out["left"] == 0  # focus stayed in the page at every Tab
    assert out["problems"] == [], out["problems"]
    assert out["answered"] == 10
    assert await conn.fetchval("SELECT count(*) FROM responses WHERE value IS NOT NULL") == 10
    # Another page opened in the exam's tab, and back 6 s later: that is leaving, reported once.
    assert [r["kind"] for r in await conn.fetch("SELECT kind FROM integrity_events")] == ["visibility_hidden"]


def find_the_way_in(base: str, ticket: str) -> dict:
    with chromium_page() as (page, problems):
        # A student types the server's bare address: the front page shows the way in.
        page.goto(base + "/")
        page.click("#students-way-in")
        page.wait_for_url(base + "/exam")
        page.wait_for_selector("#screen-login:not([hidden])")
        focused = page.evaluate("document.activeElement.id")
        page.keyboard.type(ticket)  # no Tab first
        page.keyboard.press("Enter")
        page.wait_for_selector("#screen-confirm:not([hidden])")
        return {"problems": problems, "focused": focused, "name": page.locator("#c-name").inner_text()}


async def test_students_find_their_way_in_from_the_front_page(dsn, exam):
    out = await on_live_server(dsn, find_the_way_in, exam["0000000001"])
    assert out == {"problems": [], "focused": "ticket", "name": "Nguyễn Văn An"}


def open_on_a_second_computer(base: str, ticket: str) -> dict:
    out = {}
    with chromium_page() as (page, problems):
        sign_in_and_start(page, base, ticket)
        # The same ticket on another computer (another browser, its own device cookie).
        other = page.context.browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        other.on("pageerror", lambda e: problems.append(str(e)))
        other.goto(base + "/exam")
        other.fill("#ticket", ticket)
        other.click("#login-form button")
        other.wait_for_selector("#start-error:not([hidden])")
        out["facts"] = {k: other.locator("#c-" + k).inner_text() for k in ("name", "code", "dob", "exam", "time")}
        out["error"] = other.locator("#start-error").inner_text()
        out["screen"] = other.evaluate("document.body.dataset.screen")
        other.screenshot(path=str(SCREENSHOTS / "exam-other-computer-vi.png"))
        out["problems"] = [p for p in problems if "status of 403" not in p]
    return out


async def test_the_second_computer_screen_says_whose_exam_it_is(dsn, exam):
    out = await on_live_server(dsn, open_on_a_second_computer, exam["0000000002"])
    assert out["problems"] == [], out["problems"]
    assert out["screen"] == "confirm" and "máy khác" in out["error"]
    assert out["facts"] == {
        "name": "Trần Thị Bình",
        "code": "0000000002",
        "dob": "09/05/2008",
        "exam": "Kiểm tra Toán 12 (thử)",
        "time": "90 phút",
    }


def reload_and_drop_the_network(base: str, ticket: str) -> dict:
    out = {}
    with chromium_page() as (page, problems):
        sign_in_and_start(page, base, ticket)
        page.locator(".qbtn").nth(2).click()
        answer_current(page)
        page.wait_for_selector("#save-state[data-state=saved]")
        page.reload()
        page.wait_for_selector("#screen-exam:not([hidden])")
        out["after_reload"] = page.evaluate("document.querySelector('.qbtn.current').textContent")

        page.context.set_offline(True)
        page.click("#next")
        answer_current(page)
        # Said within a few seconds, and kept while the network is gone.
        page.wait_for_timeout(5000)
        out["offline_text"] = page.locator("#save-state").inner_text()
        page.wait_for_timeout(8000)
        out["still_offline_text"] = page.locator("#save-state").inner_text()
        page.context.set_offline(False)
        page.wait_for_selector("#save-state[data-state=saved]", timeout=20000)
        out["problems"] = [p for p in problems if "ERR_INTERNET_DISCONNECTED" not in p and "Failed to fetch" not in p]
    return out


@pytest.mark.slow
async def test_a_reload_comes_back_to_the_question_and_offline_is_said_as_it_is(conn, dsn, exam):
    out = await on_live_server(dsn, reload_and_drop_the_network, exam["0000000003"])
    assert out["problems"] == [], out["problems"]
    assert out["after_reload"] == "3"
    assert out["offline_text"] == out["still_offline_text"] == "Chưa lưu được, sẽ gửi lại khi có mạng"
    assert await conn.fetchval("SELECT count(*) FROM responses WHERE value IS NOT NULL") == 2


# Gaps between the glyphs of a formula's symbols, and the size of a fraction's digits against the text around it.
MEASURE_MATH = """() => {
  const glyph = (e) => { const r = document.createRange(); r.selectNodeContents(e); return r.getBoundingClientRect(); };
  const out = {};
  const minus = [...document.querySelectorAll('#question .option-text mo')].find(
    (m) => m.textContent === '\u2212' && m.nextElementSibling && m.nextElementSibling.textContent === '\u221e');
  if (minus) {
    const open = minus.previousElementSibling, inf = minus.nextElementSibling;
    out.interval = minus.closest('math').textContent;
    out.before = glyph(minus).left - glyph(open).right;
    out.after = glyph(inf).left - glyph(minus).right;
  }
  const frac = document.querySelector('#question .stem mfrac');
  if (frac) {
    out.fraction = parseFloat(getComputedStyle(frac.querySelector('mn')).fontSize) /
      parseFloat(getComputedStyle(frac.closest('p, div')).fontSize);
  }
  return out;
}"""


def read_a_lab_screen(base: str, ticket: str) -> dict:
    out = {"targets": [], "row_click": []}
    with chromium_page() as (page, problems):
        sign_in_and_start(page, base, ticket)
        for n in range(page.locator(".qbtn").count()):
            page.locator(".qbtn").nth(n).click()
            found = page.evaluate(MEASURE_MATH)
            if "interval" in found:
                out["interval"] = found
                page.screenshot(path=str(SCREENSHOTS / "exam-interval-vi.png"))
            if "fraction" in found:
                out["fraction"] = found["fraction"]
            for box in page.locator("#question input").all():
                b = box.bounding_box()
                out["targets"].append((b["width"], b["height"]))
            if n == 0:
                # The far end of an option's row, away from its circle and its text, chooses it.
                row = page.locator("#question .choice").nth(1)
                b = row.bounding_box()
                row.click(position={"x": b["width"] - 6, "y": b["height"] / 2})
                out["row_click"] = page.evaluate(
                    "[...document.querySelectorAll('#question input')].map(i => i.checked)"
                )
        out["problems"] = problems
    return out


async def test_a_lab_screen_reads_minus_signs_fractions_and_takes_whole_rows(dsn, lab_exam):
    out = await on_live_server(dsn, read_a_lab_screen, lab_exam["0000000002"])
    assert out["problems"] == [], out["problems"]
    # (−∞; 2): the minus is unary, set against the symbols on both sides, not spaced as a binary operator.
    interval = out["interval"]
    assert interval["interval"].startswith("(\u2212\u221e;")
    assert abs(interval["before"]) < 1 and abs(interval["after"]) < 1, interval
    assert out["fraction"] > 0.9  # \frac in a sentence at the sentence's size
    assert out["row_click"] == [False, True, False, False]
    assert len(out["targets"]) == 10 * 4 + 8 and all(w >= 24 and h >= 24 for w, h in out["targets"]), out["targets"]


def read_points(base: str, ticket: str, lang: str) -> dict:
    """Every question's title and the score after submitting, in one language."""
    with chromium_page() as (page, problems):
        page.context.add_cookies([{"name": "cbt_lang", "value": lang, "url": base}])
        page.goto(base + "/exam")
        page.fill("#ticket", ticket)
        page.click("#login-form button")
        page.wait_for_selector("#screen-confirm:not([hidden])")
        page.click("#start")
        page.wait_for_selector("#screen-exam:not([hidden])")
        titles = []
        for n in range(page.locator(".qbtn").count()):
            page.locator(".qbtn").nth(n).click()
            titles.append(page.locator("#question .qtitle").inner_text())
        page.click("#submit")
        page.click("#submit-yes")
        page.wait_for_selector("#screen-done:not([hidden])", timeout=30000)
        return {"titles": titles, "score": page.locator("#d-score").inner_text(), "problems": problems}


async def test_points_and_scores_are_written_in_the_readers_way(dsn, exam):
    """0,25 điểm in Vietnamese, 0.25 points in English: the page writes numbers as the templates do."""

    def both(base):
        return read_points(base, exam["0000000001"], "vi"), read_points(base, exam["0000000002"], "en")

    vi, en = await on_live_server(dsn, both)
    assert vi["problems"] == [] and en["problems"] == []
    assert any(t.endswith("· 0,25 điểm") for t in vi["titles"]), vi["titles"]
    assert not any("." in t.split("·")[-1] for t in vi["titles"])
    assert any(t.endswith("· 0.25 points") for t in en["titles"]), en["titles"]
    assert vi["score"].startswith("Điểm: 0,00 / ") and "." not in vi["score"], vi["score"]
    assert en["score"].startswith("Score: 0.00 / "), en["score"]


@pytest.fixture
async def timed_exam(conn, signed_demo):
    """The demo exam with each section timed (one after another), three candidates."""
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ('SGD-E', 'Sở E', 'department')")
    await exams.create_exam(conn, exams.parse_exam(exam_yaml(timed=True)), "SGD-E")
    await exams.add_roster(conn, "TOAN-T", STUDENTS)
    await exams.open_exam(conn, "TOAN-T")
    return {r["code"]: r["ticket"] for r in await exams.issue_tickets(conn, "TOAN-T")}


def answer_while_the_section_ends_offline(base: str, ticket: str, dsn: str) -> dict:
    """Part I answered, then one more answer written offline while Part I's time
    and grace run out: the server refuses it (section_closed) when the network is back."""
    out = {}
    with chromium_page() as (page, problems):
        sign_in_and_start(page, base, ticket)
        answer_current(page)
        page.wait_for_selector("#save-state[data-state=saved]")
        page.context.set_offline(True)
        page.click("#next")
        answer_current(page)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(
                asyncio.run, db(dsn, "UPDATE attempts SET section_deadline = now() - interval '2 minutes'")
            ).result()
        page.context.set_offline(False)
        # The page moves on to Part II, says what was not saved, and saves what follows.
        page.wait_for_selector("#refused:not([hidden])", timeout=20000)
        out["refused"] = page.locator("#refused").inner_text()
        answer_current(page)
        page.wait_for_selector("#save-state[data-state=saved]", timeout=20000)
        out["seq"] = page.evaluate(
            "() => Number(Object.entries(localStorage).find(([k]) => k.startsWith('cbt.seq.'))[1])"
        )
        out["journal"] = page.evaluate(
            "() => Object.keys(localStorage).filter((k) => k.startsWith('cbt.journal.'))"
            ".map((k) => JSON.parse(localStorage.getItem(k)).length)"
        )
        # The 409 is the refusal itself, which the browser logs.
        out["problems"] = [
            p
            for p in problems
            if not any(s in p for s in ("ERR_INTERNET_DISCONNECTED", "Failed to fetch", "status of 409"))
        ]
    return out


async def test_an_answer_to_a_section_that_ended_offline_is_withdrawn_and_the_rest_saved(conn, dsn, timed_exam):
    out = await on_live_server(dsn, answer_while_the_section_ends_offline, timed_exam["0000000001"], dsn)
    assert out["problems"] == [], out["problems"]
    assert "2" in out["refused"], out["refused"]  # question 2, written after Part I ended, is named
    assert out["journal"] == [0]  # everything acknowledged, the withdrawal included
    attempt = await conn.fetchrow("SELECT section_index, saved_seq FROM attempts")
    # Every change is acknowledged, the withdrawn one (seq 2) included: nothing waits behind it.
    assert attempt["section_index"] == 1 and attempt["saved_seq"] == out["seq"] > 2
    saved = await conn.fetchval("SELECT count(*) FROM responses WHERE value IS NOT NULL")
    assert saved == 2  # Part I's first answer and Part II's; not the one written too late


# -- passages: a set's questions beside the text they share (issue 18) --------------------------------------


@pytest.fixture
async def passages_exam(conn, releases):
    """Two passages of five questions each (the second longer than a lab screen), then two grammar
    questions without one; three candidates. Returns {code: ticket}."""
    await imported(conn, releases, "pair")
    await exams.create_exam(conn, exams.parse_exam(passages_exam_yaml()), "SGD-S")
    await exams.add_roster(conn, "EN-P", STUDENTS)
    await exams.open_exam(conn, "EN-P")
    return {r["code"]: r["ticket"] for r in await exams.issue_tickets(conn, "EN-P")}


def regions(page) -> list[str]:
    """The accessible names of the page's regions, as Chromium computes them for a screen reader."""
    cdp = page.context.new_cdp_session(page)
    nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    return [
        n.get("name", {}).get("value", "")
        for n in nodes
        if n.get("role", {}).get("value") == "region" and not n.get("ignored")
    ]


def in_view(page, selector: str) -> bool:
    """Every element the selector finds lies wholly inside the viewport, the window not scrolled."""
    return page.evaluate(
        """(sel) => window.scrollY === 0 && [...document.querySelectorAll(sel)].every((e) => {
             const r = e.getBoundingClientRect();
             return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && r.right <= innerWidth; })""",
        selector,
    )


# The passage panel as the student has it: what it says, how far it is scrolled, whether it is the
# same drawing (a mark set on its text survives), and the columns beside it.
PANEL = """() => { const p = document.querySelector('#passage'), $ = (s) => document.querySelector(s);
  return {hidden: p.hidden, title: $('#passage-title').textContent, serves: $('#passage-serves').textContent,
          text: $('#passage-text').textContent, marked: !!p.querySelector('[data-seen]'),
          scrollTop: p.scrollTop, scrollHeight: p.scrollHeight, clientHeight: p.clientHeight,
          columns: getComputedStyle($('#stage')).gridTemplateColumns.split(' ').length,
          questionWidth: $('#question').getBoundingClientRect().width,
          stageWidth: $('#stage').getBoundingClientRect().width}; }"""


def read_a_passage_at_a_time(base: str, ticket: str, dsn: str) -> dict:
    from playwright.sync_api import expect

    out = {"passages": [], "kept": [], "controls_in_view": [], "quiet": []}
    with chromium_page() as (page, problems):
        sign_in_and_start(page, base, ticket)
        out["regions"] = regions(page)
        out["map"] = [b.get_attribute("aria-label") for b in page.locator(".qbtn").all()]
        out["groups"] = [g.inner_text().split("\n")[0] for g in page.locator(".qnav-set").all()]
        out["grouped"] = [g.locator(".qbtn").count() for g in page.locator(".qnav-set").all()]
        for passage in (1, 2):
            expect(page.locator("#passage")).to_be_visible()
            out["passages"].append(page.evaluate(PANEL))
            # Read to the end by keyboard: the panel takes focus and scrolls; the window does not.
            page.focus("#passage")
            page.keyboard.press("End")
            for _ in range(50):
                p = page.evaluate(PANEL)
                if p["scrollTop"] + p["clientHeight"] >= p["scrollHeight"] - 1:
                    break
                page.wait_for_timeout(100)
            out["controls_in_view"].append(in_view(page, "#question label.option, #prev, #flag, #next"))
            if p["scrollHeight"] > p["clientHeight"]:  # the long one, read to its end
                page.screenshot(path=str(SCREENSHOTS / "exam-passage-vi.png"))
            page.evaluate("document.querySelector('#passage-text > *').dataset.seen = '1'")
            scrolled = page.evaluate(PANEL)["scrollTop"]
            for child in range(5):
                page.locator("#question label.option", has_text="đúng").click()
                if child == 0:
                    page.evaluate("document.querySelector('#announce-polite').textContent = ''")
                page.click("#next")
                if child < 4:  # the next question of the same passage: the panel as the student left it
                    now = page.evaluate(PANEL)
                    out["kept"].append(now["marked"] and now["scrollTop"] == scrolled)
                    out["quiet"].append(page.locator("#announce-polite").inner_text())
            if passage == 1:  # on to the next passage: said once, politely
                expect(page.locator("#announce-polite")).to_have_text("Ngữ liệu 2: Dùng cho câu 6–10.")
        # Part II: questions without a passage take the whole width again.
        out["after"] = page.evaluate(PANEL)
        page.locator("#question label.option", has_text="yes").click()
        page.click("#next")
        page.locator("#question label.option", has_text="yes").click()
        page.wait_for_selector("#save-state[data-state=saved]", timeout=15000)
        saved = run_in_thread(lambda: db(dsn, "SELECT count(*) AS n FROM responses WHERE value IS NOT NULL"))
        out["saved"] = saved[0]["n"]
        out["answered"] = [b.get_attribute("aria-label") for b in page.locator(".qbtn").all()]
        # On a narrower screen the (long) passage sits above its question, and still scrolls on its own.
        page.locator(".qbtn").nth(0 if "Paragraph 18" in out["passages"][0]["text"] else 5).click()
        page.set_viewport_size({"width": 1024, "height": 768})
        out["narrow"] = page.evaluate(
            """() => { const p = document.querySelector('#passage').getBoundingClientRect();
                       const q = document.querySelector('#question').getBoundingClientRect();
                       return {above: p.bottom <= q.top, scrolls: document.querySelector('#passage').scrollHeight >
                               document.querySelector('#passage').clientHeight}; }"""
        )
        page.screenshot(path=str(SCREENSHOTS / "exam-passage-narrow-vi.png"))
        page.set_viewport_size({"width": 1366, "height": 768})
        page.click("#submit")
        page.click("#submit-yes")
        page.wait_for_selector("#screen-done:not([hidden])", timeout=30000)
        out["score"] = page.locator("#d-score").inner_text()
        out["problems"] = problems
    return out


@pytest.mark.slow
async def test_a_student_reads_each_passage_beside_its_questions_and_answers_them(conn, dsn, passages_exam):
    out = await on_live_server(dsn, read_a_passage_at_a_time, passages_exam["0000000001"], dsn)
    assert out["problems"] == [], out["problems"]
    first, second = out["passages"]
    # Each passage in a region a screen reader names, beside its questions on a 1366x768 screen.
    assert "Ngữ liệu 1 Dùng cho câu 1–5" in out["regions"], out["regions"]
    assert (first["title"], first["serves"]) == ("Ngữ liệu 1", "Dùng cho câu 1–5")
    assert (second["title"], second["serves"]) == ("Ngữ liệu 2", "Dùng cho câu 6–10")
    assert first["columns"] == second["columns"] == 2 and not first["hidden"]
    assert first["text"] != second["text"]  # the panel's text changed with the passage
    # The long passage (its school's canteen, 18 paragraphs) scrolls inside its own panel.
    long = next(p for p in (first, second) if "Paragraph 18" in p["text"])
    assert long["scrollHeight"] > long["clientHeight"] + 200, long
    # Scrolled to its end, the question's answer controls and the Previous/Next bar are all in view.
    assert out["controls_in_view"] == [True, True]
    # Between questions of one passage the panel is not drawn again, nor announced again.
    assert out["kept"] == [True] * 8 and out["quiet"] == [""] * 8
    # Questions without a passage use the whole width.
    assert out["after"]["hidden"] and out["after"]["questionWidth"] == out["after"]["stageWidth"]
    assert out["narrow"] == {"above": True, "scrolls": True}
    # The map groups each passage's questions under its name, and says so to a screen reader.
    assert out["groups"] == ["Ngữ liệu 1", "Ngữ liệu 2"] and out["grouped"] == [5, 5]
    assert out["map"][2] == "Câu 3, thuộc ngữ liệu 1, chưa trả lời"
    marks = [(True, False)] * 5 + [(False, True)] * 5 + [(False, False)] * 2
    assert [("ngữ liệu 1" in a, "ngữ liệu 2" in a) for a in out["map"]] == marks
    assert out["answered"][7] == "Câu 8, thuộc ngữ liệu 2, Đã trả lời"
    # Autosaved as any answer, and scored on submit: twelve right answers of 0,25.
    assert out["saved"] == 12
    attempt = await conn.fetchrow("SELECT status, score, max_score FROM attempts")
    assert attempt["status"] == "submitted" and attempt["score"] == attempt["max_score"] == Decimal("3.00")
    assert out["score"].startswith("Điểm: 3,00 / 3,00"), out["score"]
