"""The teachers' workspace end to end in Chromium (issue 8): subjects and a
server key set by the admin, three items written with the live preview,
reviewed, released and signed on the server, a test built from the release
and opened, sat by a student, an essay marked, the results downloaded. The
refusals on the way: approving one's own item, a blueprint that cannot be
filled, another school's teacher reaching the exam."""

import asyncio
import concurrent.futures
import csv
import datetime as dt
import io
import re
from decimal import Decimal

import asyncpg
import pytest
from support.accounts import PASSWORD
from support.browser import SCREENSHOTS, chromium_page, live_server, require_chromium
from support.cli import free_port

PASSPHRASE = "to toan thpt a 2026"
KEY_NAME = "Tổ Toán THPT A"
CODE = "E2E-TOAN"
ESSAY_TEXT = "Tập xác định R. Đạo hàm y' = 3x^2 - 3, bảng biến thiên, cực trị tại x = 1 và x = -1."
ROSTER = (
    "Mã học sinh,Họ và tên,Ngày sinh,Lớp,Trường,Phòng\n"
    "0000000001,Nguyễn Văn An,05/03/2008,12A1,THPT A,P01\n"
    "0000000002,Trần Thị Bình,25/12/2008,12A1,THPT A,P01\n"
)
# What the teacher writes: two single-choice items (the key is option A) and an essay.
ITEMS = (
    {
        "id": "E2E-1",
        "type": "single",
        "level": "1",
        "points": "0.5",
        "stem": "Đạo hàm của $y = x^3$ tại $x = 1$ bằng",
        "options": ("3", "1", "0", "6"),
    },
    {
        "id": "E2E-2",
        "type": "single",
        "level": "1",
        "points": "0.5",
        "stem": "Giá trị nhỏ nhất của $y = x^2 + 1$ trên $\\mathbb{R}$ bằng",
        "options": ("1", "0", "2", "4"),
    },
    {
        "id": "E2E-3",
        "type": "essay",
        "level": "3",
        "points": "2",
        "stem": "Khảo sát sự biến thiên của hàm số $y = x^3 - 3x$.",
        "explanation": "Tập xác định, đạo hàm, bảng biến thiên, cực trị: mỗi ý 0,5 điểm.",
    },
)


def query(dsn: str, sql: str, *args):
    """One value from the database, from the browser's thread (whose event loop Playwright holds)."""

    async def run():
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"e2e-{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(base + "/staff")


def sign_out(page) -> None:
    page.click("form[action='/logout'] button")
    page.wait_for_url(re.compile(r".*/login$"))


def csrf_on(page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def write_item(page, base: str, item: dict) -> int:
    page.goto(base + "/workspace/items/new")
    page.fill("#f-id", item["id"])
    page.select_option("#f-type", item["type"])
    page.select_option("#f-subject", "toan")
    page.fill("#f-grade", "12")
    page.fill("#f-topic", "ham-so")
    page.select_option("#f-level", item["level"])
    page.fill("#f-points", item["points"])
    assert page.locator("#preview .question").count() == 0  # nothing typed yet, nothing previewed
    page.fill("#f-stem", item["stem"])
    if item["type"] == "single":
        assert page.locator("fieldset[data-types='single multiple']").is_visible()
        for letter, text in zip("ABCD", item["options"], strict=True):
            page.fill(f"#f-opt-{letter}", text)
        page.check("#f-key-A")
        # The live preview: the formula as MathML, every option as the student sees it.
        page.locator(f"#preview label.option:has(span:text-is('{item['options'][-1]}'))").wait_for(timeout=10000)
        assert page.locator("#preview .choice").count() == 4
    else:
        assert page.locator("fieldset[data-types='single multiple']").is_hidden()
        page.fill("#f-explanation", item["explanation"])
        page.locator("#preview #pv-essay").wait_for(timeout=10000)
    page.locator("#preview .stem math").first.wait_for(timeout=10000)
    # The preview never shows the key or the marking guide.
    assert "Tập xác định, đạo hàm" not in page.inner_text("#preview")
    shot(page, f"02-editor-{item['id']}")
    page.click("#item-form button.primary")
    page.wait_for_url(re.compile(r".*/workspace/items/\d+\?done=saved"))
    pk = int(re.search(r"/workspace/items/(\d+)", page.url).group(1))
    page.click("#submit-review")
    page.wait_for_url(re.compile(r".*done=submitted"))
    assert page.locator("h1 .badge.state-submitted").count() == 1
    return pk


def whole_path(dsn: str) -> dict:
    out: dict = {}
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        browser = page.context.browser

        # 1. The admin assigns subjects and makes a server signing key, then trusts it.
        sign_in(page, base, "admin")
        for username in ("reviewer", "teacher"):
            page.goto(base + "/workspace/subjects")
            page.select_option("#s-user", username)
            page.click("#s-choose")
            page.check("#as-toan")
            page.click("#assign-save")
            page.wait_for_url(re.compile(r".*/workspace/subjects\?done=saved.*"))
        assert "Toán" in page.inner_text("#staff-subjects tr[data-user=reviewer]")
        shot(page, "01-subjects")
        page.goto(base + "/workspace/keys")
        page.fill("#kg-name", KEY_NAME)
        page.fill("#kg-pass", PASSPHRASE)
        page.fill("#kg-pass2", PASSPHRASE)
        page.click("#key-generate button.primary")
        page.wait_for_url(re.compile(r".*/workspace/keys\?done=created"))
        fp = page.locator("#keys-table code").first.inner_text().strip()
        page.click("#keys-table button")
        page.wait_for_url(re.compile(r".*/workspace/keys\?done=trusted"))
        assert page.locator("#keys-table .badge.ok").count() == 1
        shot(page, "01-keys")
        out["fp"] = fp
        sign_out(page)

        # 2. The teacher writes three items, watching the preview, and submits them.
        sign_in(page, base, "teacher")
        pks = [write_item(page, base, item) for item in ITEMS]
        out["pks"] = pks
        # 3a. The teacher may not approve (not even her own item): the form post is refused.
        resp = page.request.post(
            f"{base}/workspace/review/{pks[0]}",
            form={"csrf_token": csrf_on(page), "decision": "approve", "comment": ""},
        )
        out["teacher_approve"] = (resp.status, resp.text())
        page.goto(base + "/workspace/review")
        assert all(page.locator(f"a[href='/workspace/items/{pk}']").count() == 1 for pk in pks)
        shot(page, "03-review-waiting")
        sign_out(page)

        # 3b. The reviewer approves the three in the queue; her own item she cannot approve.
        sign_in(page, base, "reviewer")
        page.goto(base + "/workspace/review")
        assert page.locator("#to-review-h").is_visible()
        for pk, item in zip(pks, ITEMS, strict=True):
            page.click(f"a[href='/workspace/items/{pk}']")
            assert page.locator(".ws-student .stem math").count() >= 1
            page.fill("#f-review-comment", f"Đạt yêu cầu ({item['id']})")
            page.click("button[value=approve]")
            page.wait_for_url(re.compile(r".*/workspace/review\?done=approve"))
        # Nothing left to review.
        assert page.locator("section[aria-labelledby=to-review-h] a[href^='/workspace/items/']").count() == 0
        shot(page, "03-review-done")
        token = csrf_on(page)
        resp = page.request.post(
            f"{base}/workspace/items/new",
            form={
                "csrf_token": token,
                "id": "E2E-R",
                "type": "single",
                "subject": "toan",
                "grade": "12",
                "topic": "ham-so",
                "level": "2",
                "points": "0.5",
                "lang": "vi",
                "stem": "Câu của người duyệt",
                "opt_A": "có",
                "opt_B": "không",
                "key": "A",
            },
            max_redirects=0,
        )
        assert resp.status == 303, resp.text()
        own = int(re.search(r"/workspace/items/(\d+)", resp.headers["location"]).group(1))
        resp = page.request.post(
            f"{base}/workspace/items/submit", form={"csrf_token": token, "pk": str(own)}, max_redirects=0
        )
        assert resp.status == 303
        resp = page.request.post(
            f"{base}/workspace/review/{own}", form={"csrf_token": token, "decision": "approve", "comment": ""}
        )
        out["own_approve"] = (resp.status, resp.text())
        page.goto(f"{base}/workspace/items/{own}")
        out["own_review_form"] = page.locator("button[value=approve]").count()

        # 4. The reviewer builds the release from the approved items and signs it on the server.
        page.goto(base + "/workspace/releases")
        assert page.locator("input.rel-item").count() == 3  # the approved ones only
        page.check("#select-all")
        assert page.locator("input.rel-item:checked").count() == 3
        page.fill("#rel-name", "thpt-a-e2e")
        page.fill("#rel-version", "2026.1")
        page.fill("#rel-title", "Toán 12 · kiểm tra đầu cuối")
        page.select_option("#rel-subject", "toan")
        page.click("#build-form button.primary")
        page.wait_for_url(re.compile(r".*/workspace/releases/\d+\?built=1"))
        assert page.locator("#verification").get_attribute("data-status") != "verified"
        page.select_option("#sign-key", fp)
        page.focus("#sign-pass")
        page.keyboard.type(PASSPHRASE)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*\?signed=1"))
        out["release_status"] = page.locator("#verification").get_attribute("data-status")
        out["signer_fp"] = page.inner_text("#signer-fp").strip()
        out["signer_name"] = page.inner_text("#signer-name").strip()
        out["release_fits"] = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, "04-release-signed")
        sign_out(page)
        bank_release = query(dsn, "SELECT bank_release_id FROM workspace_releases WHERE name = 'thpt-a-e2e'")
        assert bank_release is not None

        # 5. The teacher builds the test: first a cell asks for more than the release has.
        sign_in(page, base, "teacher")
        page.goto(base + "/workspace/exams/new")
        page.check(f"#release-{bank_release}")
        page.click("button.primary")
        page.wait_for_selector("#builder")
        page.fill("#f-code", CODE)
        page.fill("#f-title", "Kiểm tra Toán 12 (đầu cuối)")
        now = dt.datetime.now(dt.timezone(dt.timedelta(hours=7)))
        page.fill("#f-tz", "+07:00")
        page.fill("#f-opens", (now - dt.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M"))
        page.fill("#f-closes", (now + dt.timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"))
        page.fill("#f-late_entry_minutes", "120")
        singles = page.locator('td[data-cell="1.ham-so"]').first
        essays = page.locator('td[data-cell="3.ham-so"]').first
        assert singles.locator(".avail").inner_text().strip() == "có 2"
        assert essays.locator(".avail").inner_text().strip() == "có 1"
        singles.locator("input").fill("3")
        essays.locator("input").fill("1")
        page.wait_for_selector('td.short[data-cell="1.ham-so"]')
        out["cell_warning"] = singles.locator(".cell-warn").is_visible()
        shot(page, "05-builder-short")
        page.click("#save-exam")  # the server refuses it too, naming the cell
        page.wait_for_selector("#problems")
        out["refusal"] = page.inner_text("#problems")
        out["exams_after_refusal"] = query(dsn, "SELECT count(*) FROM exams")
        shot(page, "05-builder-refused")
        singles = page.locator('td[data-cell="1.ham-so"]').first
        assert singles.locator("input").input_value() == "3"  # what the teacher typed is kept
        singles.locator("input").fill("2")
        page.wait_for_selector("td.short", state="detached")
        from playwright.sync_api import expect

        expect(page.locator("#total-items")).to_have_text("3")
        expect(page.locator("#total-points")).to_have_text("3")
        page.click("#save-exam")
        page.wait_for_url(f"{base}/workspace/exams/{CODE}")
        assert page.get_attribute("#exam-status", "data-status") == "draft"
        page.click("#preview-link")
        page.wait_for_selector(".question")
        out["preview_questions"] = page.locator(".question").count()
        out["preview_math"] = page.locator(".question .stem math").count()
        shot(page, "05-preview")

        # Another school's teacher cannot see or change this exam, even posting the complete form.
        page.goto(f"{base}/workspace/exams/{CODE}/edit")
        full_form = page.evaluate("Object.fromEntries(new FormData(document.getElementById('builder')))")
        assert full_form["s0.c1.ham-so"] == "2" and full_form["release"] == str(bank_release)
        other = browser.new_context(viewport={"width": 1366, "height": 768})
        b_page = other.new_page()
        sign_in(b_page, base, "b-teacher")
        b_token = csrf_on(b_page)
        out["b_pages"] = [
            b_page.goto(f"{base}/workspace/exams/{CODE}{tail}").status for tail in ("", "/edit", "/preview")
        ]
        shot(b_page, "05-other-school-404")
        out["b_edit"] = b_page.request.post(
            f"{base}/workspace/exams/{CODE}/edit",
            form={**full_form, "csrf_token": b_token, "action": "save", "title": "Đổi tên"},
        ).status
        out["b_open"] = b_page.request.post(
            f"{base}/workspace/exams/{CODE}/open", form={"csrf_token": b_token, "confirm": "1"}
        ).status
        b_page.goto(base + "/workspace/exams")
        out["b_list_has_exam"] = CODE in b_page.content()
        other.close()

        # Roster, tickets, open.
        page.goto(f"{base}/workspace/exams/{CODE}")
        page.set_input_files(
            "#roster-file", files=[{"name": "danh-sach.csv", "mimeType": "text/csv", "buffer": ROSTER.encode("utf-8")}]
        )
        page.click("#roster-submit")
        page.wait_for_selector("#candidates")
        out["candidates"] = page.locator("#candidates tbody tr").count()
        page.click("#tickets-submit")
        page.wait_for_selector(".ticket-slip")
        out["tickets"] = page.locator(".ticket-slip").count()
        slip = page.locator(".ticket-slip", has=page.locator(".ticket-name", has_text="Nguyễn Văn An"))
        ticket = slip.locator(".ticket-code").inner_text().strip()
        shot(page, "05-tickets")
        page.goto(f"{base}/workspace/exams/{CODE}")
        page.check("#open-confirm")
        page.click("#open-exam")
        page.wait_for_selector('#exam-status[data-status="open"]')
        shot(page, "05-exam-open")

        # 6. The student, in a browser of her own, signs in with the ticket and sits the test.
        student_ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        student = student_ctx.new_page()
        student_problems: list[str] = []
        student.on("console", lambda m: student_problems.append(m.text) if m.type == "error" else None)
        student.on("pageerror", lambda e: student_problems.append(str(e)))
        student.goto(base + "/exam")
        student.fill("#ticket", ticket)
        student.click("#login-form button")
        student.wait_for_selector("#screen-confirm:not([hidden])")
        out["student_name"] = student.inner_text("#c-name")
        student.click("#start")
        student.wait_for_selector("#screen-exam:not([hidden])")
        out["questions"] = student.locator(".qbtn").count()
        answered = []
        for i in range(out["questions"]):
            student.locator(".qbtn").nth(i).click()
            box = student.locator("#question")
            stem = box.locator(".stem").inner_text()
            if "Đạo hàm" in stem:  # answered right: "3"
                box.locator("label.option:has(span:text-is('3'))").click()
                answered.append("right")
            elif "nhỏ nhất" in stem:  # answered wrong: "2" (the key is "1")
                box.locator("label.option:has(span:text-is('2'))").click()
                answered.append("wrong")
            else:
                box.locator("textarea").fill(ESSAY_TEXT)
                answered.append("essay")
            student.wait_for_selector(".qbtn.answered >> nth=" + str(i))
        student.wait_for_selector("#save-state[data-state=saved]", timeout=20000)
        out["answered"] = sorted(answered)
        shot(student, "06-student-exam")
        student.click("#submit")
        student.click("#submit-yes")
        student.wait_for_selector("#screen-done:not([hidden])", timeout=30000)
        out["receipt"] = student.inner_text("#d-receipt").strip()
        shot(student, "06-student-receipt")
        out["student_problems"] = student_problems
        student_ctx.close()

        # 7. The teacher sees the total provisional, marks the essay (names hidden), and it is final.
        page.goto(f"{base}/workspace/results/{CODE}")
        out["provisional_before"] = page.locator('tr[data-code="0000000001"] [data-provisional]').get_attribute(
            "data-provisional"
        )
        page.goto(base + "/workspace/marking")
        page.click(f"a[href='/workspace/marking/{CODE}']")
        page.click(f"a[href^='/workspace/marking/{CODE}/items/']")
        page.wait_for_selector(".essay-answer")
        html = page.content()
        out["names_hidden"] = all(s not in html for s in ("Nguyễn Văn An", "0000000001", "Trần Thị Bình"))
        out["essay_shown"] = page.inner_text(".essay-answer").strip()
        page.fill("#points", "1.5")
        page.fill("#comment", "Thiếu kết luận về khoảng đồng biến.")
        page.click(".mark-form button.primary")
        page.wait_for_selector("p.notice[role='status']")
        shot(page, "07-marking")

        # 8. The results page and its CSV download.
        page.goto(f"{base}/workspace/results/{CODE}")
        out["provisional_after"] = page.locator('tr[data-code="0000000001"] [data-provisional]').get_attribute(
            "data-provisional"
        )
        with page.expect_download() as info:
            page.click("#download-csv")
        out["csv"] = open(info.value.path(), encoding="utf-8-sig").read()
        out["csv_name"] = info.value.suggested_filename
        shot(page, "08-results")
        out["problems"] = problems
    return out


@pytest.mark.slow
async def test_the_whole_workspace_path_in_chromium(conn, dsn, staff):
    require_chromium()
    out = await asyncio.to_thread(whole_path, dsn)

    # 1. Subjects and the trusted server key.
    subjects = await conn.fetch(
        "SELECT u.username, s.subject FROM staff_subjects s JOIN users u ON u.id = s.user_id ORDER BY u.username"
    )
    assert [(r["username"], r["subject"]) for r in subjects] == [("reviewer", "toan"), ("teacher", "toan")]
    key = await conn.fetchrow("SELECT * FROM signing_keys")
    assert key["fingerprint"] == out["fp"] and key["name"] == KEY_NAME
    assert b"ENCRYPTED PRIVATE KEY" in key["private_key_pem"]

    # 2-3. Three items written, approved by the reviewer; the refusals.
    rows = await conn.fetch(
        "SELECT id, item_id, type, state FROM draft_items WHERE id = ANY($1::bigint[]) ORDER BY item_id", out["pks"]
    )
    assert [(r["item_id"], r["type"], r["state"]) for r in rows] == [
        ("E2E-1", "single", "approved"),
        ("E2E-2", "single", "approved"),
        ("E2E-3", "essay", "approved"),
    ]
    for pk in out["pks"]:
        actions = [
            r["action"]
            for r in await conn.fetch("SELECT action FROM review_events WHERE draft_pk = $1 ORDER BY id", pk)
        ]
        assert actions == ["create", "submit", "approve"], actions
    status, text = out["teacher_approve"]
    assert status == 403 and "role_refused" in text, (status, text[:300])
    status, text = out["own_approve"]
    assert status == 403 and "own_item" in text, (status, text[:300])
    assert out["own_review_form"] == 0
    assert await conn.fetchval("SELECT state FROM draft_items WHERE item_id = 'E2E-R'") == "submitted"

    # 4. The release, signed on the server and verified.
    assert out["release_status"] == "verified"
    assert out["signer_fp"] == out["fp"] and out["signer_name"] == KEY_NAME
    assert out["release_fits"]
    release = await conn.fetchrow("SELECT * FROM workspace_releases")
    assert release["signer"] == out["fp"] and release["bank_release_id"] is not None
    assert (
        await conn.fetchval("SELECT count(*) FROM release_items WHERE release_id = $1", release["bank_release_id"]) == 3
    )

    # 5. The builder's refusal named the cell; the exam was built, previewed, opened.
    assert out["cell_warning"]
    assert "Phần 1: chủ đề ham-so, mức 1: cần 3 câu đã duyệt, gói ngân hàng chỉ có 2." in out["refusal"]
    assert out["exams_after_refusal"] == 0
    assert out["preview_questions"] == 3 and out["preview_math"] >= 3
    assert out["b_pages"] == [404, 404, 404]
    assert out["b_edit"] == 404 and out["b_open"] == 404 and not out["b_list_has_exam"]
    exam = await conn.fetchrow("SELECT * FROM exams WHERE code = $1", CODE)
    assert exam["status"] == "open" and exam["title"] == "Kiểm tra Toán 12 (đầu cuối)"
    assert await conn.fetchval("SELECT code FROM orgs WHERE id = $1", exam["org_id"]) == "THPT-A"
    assert out["candidates"] == 2 and out["tickets"] == 2
    assert await conn.fetchval("SELECT count(*) FROM candidate_forms") == 2

    # 6. The sitting.
    assert out["student_name"] == "Nguyễn Văn An" and out["questions"] == 3
    assert out["answered"] == ["essay", "right", "wrong"]
    assert out["student_problems"] == [], out["student_problems"]
    attempt = await conn.fetchrow(
        "SELECT a.* FROM attempts a JOIN candidates c ON c.id = a.candidate_id WHERE c.code = '0000000001'"
    )
    assert attempt["status"] == "submitted" and attempt["receipt"] == out["receipt"]
    assert (
        await conn.fetchval("SELECT count(*) FROM responses WHERE attempt_id = $1 AND value IS NOT NULL", attempt["id"])
        == 3
    )

    # 7. Marked anonymously; the total is no longer provisional.
    assert out["provisional_before"] == "1" and out["provisional_after"] == "0"
    assert out["names_hidden"] and out["essay_shown"] == ESSAY_TEXT
    mark = await conn.fetchrow("SELECT points, comment FROM essay_marks")
    assert mark["points"] == Decimal("1.5")
    # (attempt was read after the marking: it is final now; the page showed it provisional before.)
    assert attempt["provisional"] is False and attempt["score"] == Decimal("2")

    # 8. The CSV: the right single choice (0.5) plus the essay mark (1.5), out of 3.
    assert out["csv_name"] == f"{CODE}-results.csv"
    rows = {r["student_code"]: r for r in csv.DictReader(io.StringIO(out["csv"]))}
    an = rows["0000000001"]
    assert Decimal(an["score"]) == Decimal("2.0") and Decimal(an["max_score"]) == Decimal("3")
    assert an["provisional"] == "0" and an["full_name"] == "Nguyễn Văn An"
    assert Decimal(an["gradebook_10"]) == Decimal("6.7")

    # Only the expected refusal reached the teacher's console: the unfillable blueprint (400).
    unexpected = [p for p in out["problems"] if "status of 400" not in p]
    assert unexpected == [], out["problems"]
