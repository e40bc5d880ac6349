"""The teachers' workspace as issue 16 met it on first use, in Chromium: the
roster form and its template, tickets issued once and asked for again, the
subject chosen from a list, and the demo's bank and signing key in a
school's workspace."""

import asyncio
import re

import pytest
from support.accounts import PASSWORD
from support.authoring import who
from support.bank import trust
from support.browser import SCREENSHOTS, chromium_page, live_server, require_chromium
from support.cli import free_port
from support.delivery import exam_yaml

from cbt import authoring, bank, exams, releases
from cbt.demo import seed_demo

ROSTER = (
    "Số báo danh;Họ và tên;Ngày sinh;Lớp;Phòng thi\n"
    "0000000001;Nguyễn Văn An;05/03/2008;12A1;P01\n0000000002;Trần Thị Bình;25/12/2008;12A1;P01\n"
)
BAD_ROSTER = "Số báo danh;Họ và tên;Ngày sinh;Lớp;Phòng thi\n12345;Lê Văn Cường;31/02/2008;12A2;P02\n"


@pytest.fixture
async def draft_exam(conn, staff, signed_demo):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await exams.create_exam(conn, exams.parse_exam(exam_yaml(code="TOAN-F")), "THPT-A")
    return "TOAN-F"


def sign_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button.primary")
    page.wait_for_url(base + "/staff")


def focused(page) -> dict:
    """The field that has the focus, and what it says of itself to a screen reader."""
    return page.evaluate("""() => { const e = document.activeElement;
        const said = (e.getAttribute("aria-describedby") || "").split(" ").filter(Boolean)
            .map(id => document.getElementById(id) ? document.getElementById(id).innerText : "");
        return {id: e.id, invalid: e.getAttribute("aria-invalid"), said: said.join(" | ")}; }""")


# Words of the English messages a Vietnamese page must not show.
ENGLISH = re.compile(r"\b(the|must|choose|item|key|wrong|passphrase|column|row|points?)\b", re.I)


def teacher_walk(dsn: str, code: str, tmp_path) -> dict:
    out: dict = {}
    good, bad = tmp_path / "danh-sach.csv", tmp_path / "sai.csv"
    good.write_text(ROSTER, encoding="utf-8")
    bad.write_text(BAD_ROSTER, encoding="utf-8")
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        sign_in(page, base, "teacher")
        exam_url = f"{base}/workspace/exams/{code}"
        page.goto(exam_url)
        # 3. The hint says what the import takes, and the template is a download away.
        out["hint"] = page.inner_text("#roster-help")
        with page.expect_download() as download:
            page.click("#roster-template")
        out["template"] = download.value.suggested_filename
        page.set_input_files("#roster-file", str(bad))
        page.click("#roster-submit")
        page.wait_for_selector("#problems")
        out["problems"] = page.inner_text("#problems")
        out["roster_focus"] = focused(page)
        page.screenshot(path=str(SCREENSHOTS / "workspace-roster-problems-vi.png"), full_page=True)
        page.set_input_files("#roster-file", str(good))
        page.click("#roster-submit")
        page.wait_for_selector("#candidates")
        out["candidates"] = page.locator("#candidates tbody tr").count()

        # 6. Issued, then shown on a page of their own; a reload shows them no more.
        out["confirm_first"] = page.locator("#tickets-confirm").count()
        page.click("#tickets-submit")
        page.wait_for_selector(".ticket-slip")
        out["sheet_url"] = page.url
        out["tickets"] = page.locator(".ticket-code").all_inner_texts()
        page.reload()
        page.wait_for_selector("#tickets-gone")
        out["after_reload"] = page.inner_text("#tickets-gone")
        # Issuing again asks, and says the printed tickets stop working.
        page.goto(exam_url)
        out["note"] = page.inner_text("#tickets-reissue-note")
        page.click("#tickets-submit")
        page.wait_for_selector("#tickets-error")
        out["unconfirmed"] = page.inner_text("#tickets-error")
        page.check("#tickets-confirm")
        page.click("#tickets-submit")
        page.wait_for_selector(".ticket-slip")
        out["tickets_again"] = page.locator(".ticket-code").all_inner_texts()

        # 4. The subject is chosen from the list, by its name.
        page.goto(base + "/workspace/items/new")
        out["subject_tag"] = page.eval_on_selector("#f-subject", "e => e.tagName")
        page.select_option("#f-subject", label="Toán")
        page.fill("#f-id", "FIRST-1")
        # 7. An item with problems: said in Vietnamese, the first field in error focused.
        page.fill("#f-topic", "ham-so")
        page.fill("#f-points", "0")
        page.click("#item-form button.primary")
        page.wait_for_selector("#problems")
        out["item_errors"] = page.locator(".field-error li").all_inner_texts()
        out["item_focus"] = focused(page)
        page.fill("#f-points", "0,25")
        page.fill("#f-stem", "Đạo hàm của $y = x^2$ là")
        for letter, text in zip("ABCD", ("$2x$", "$x$", "$2$", "$x^2$"), strict=True):
            page.fill(f"#f-opt-{letter}", text)
        page.check("#f-key-A")
        page.click("#item-form button.primary")
        page.wait_for_url(re.compile(r".*/workspace/items/\d+\?done=saved"))
        # The refusals answer 400, 409 and 410, as they should; nothing else went wrong on the pages.
        out["problems_seen"] = [p for p in problems if not p.startswith("Failed to load resource")]
    return out


async def test_a_teachers_first_exam_in_chromium(conn, dsn, draft_exam, tmp_path):
    require_chromium()
    out = await asyncio.to_thread(teacher_walk, dsn, draft_exam, tmp_path)
    assert "Số báo danh (10 chữ số" in out["hint"] and "Không bắt buộc: Trường" in out["hint"]
    assert out["template"] == "danh-sach-thi-sinh.xlsx"
    assert "Số báo danh '12345' có 5 chữ số; phải có đúng 10 chữ số." in out["problems"]
    assert "Ngày sinh '31/02/2008' không phải ngày có thật" in out["problems"]
    assert "student code" not in out["problems"] and "date of birth" not in out["problems"]
    assert out["candidates"] == 2
    assert await conn.fetchval("SELECT array_agg(DISTINCT school) FROM candidates") == ["Trường A"]

    assert out["confirm_first"] == 0 and re.search(r"/workspace/exams/TOAN-F/tickets/[\w-]{43}$", out["sheet_url"])
    assert len(out["tickets"]) == 2 and "đã hiện một lần" in out["after_reload"]
    assert "2 thí sinh chưa vào làm bài đã có phiếu" in out["note"]
    assert "2 thí sinh đã có phiếu: cấp lại thì phiếu cũ của họ hết hiệu lực" in out["unconfirmed"]
    assert len(out["tickets_again"]) == 2 and not set(out["tickets_again"]) & set(out["tickets"])
    assert out["subject_tag"] == "SELECT"
    # Issue 16 item 7: the item's problems in Vietnamese, the cursor in the first field at fault.
    assert out["item_errors"], out
    assert "Điểm phải lớn hơn 0, ví dụ 0,25 cho một câu Phần I." in out["item_errors"]
    assert not [m for m in out["item_errors"] if ENGLISH.search(m)], out["item_errors"]
    assert out["item_focus"]["invalid"] == "true" and out["item_focus"]["id"] == "f-points", out["item_focus"]
    assert out["item_focus"]["said"] == "Điểm phải lớn hơn 0, ví dụ 0,25 cho một câu Phần I."
    assert out["roster_focus"]["id"] == "roster-file" and out["roster_focus"]["invalid"] == "true"
    assert "Số báo danh '12345' có 5 chữ số" in out["roster_focus"]["said"]
    assert not ENGLISH.search(out["problems"]), out["problems"]
    assert await conn.fetchval("SELECT subject FROM draft_items WHERE item_id = 'FIRST-1'") == "toan"
    assert out["problems_seen"] == []


def reviewer_signs(dsn: str, password: str, passphrase: str, release_id: int) -> dict:
    out: dict = {}
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        sign_in(page, base, "reviewer", password)
        page.goto(base + "/workspace/releases")
        out["bank"] = page.inner_text("#bank-releases")
        page.goto(f"{base}/workspace/releases/{release_id}")
        out["keys"] = page.locator("#sign-key option").all_inner_texts()
        page.fill("#sign-pass", passphrase + "-sai")
        page.click("#sign-form button.primary")
        page.wait_for_selector("#release-error")
        out["wrong"] = page.inner_text("#release-error")
        out["wrong_focus"] = focused(page)
        page.fill("#sign-pass", passphrase)
        page.click("#sign-form button.primary")
        page.wait_for_url(re.compile(r".*\?signed=1$"))
        out["status"] = page.get_attribute("#verification", "data-status")
        page.screenshot(path=str(SCREENSHOTS / "workspace-demo-reviewer-signed-vi.png"), full_page=True)
        # The wrong passphrase answers 400, as it should.
        out["problems"] = [p for p in problems if not p.startswith("Failed to load resource")]
    return out


async def test_the_demo_reviewer_signs_on_the_server_in_chromium(conn, dsn, settings):
    require_chromium()
    printed = await seed_demo(dsn, settings)
    password = re.search(r"^\s+reviewer\s+\S+\s+password: (\S+)", printed, re.M).group(1)
    passphrase = re.search(r"passphrase: (\S+)", printed).group(1)
    # A release of the school, built from an item the reviewer approved.
    teacher, reviewer = await who(conn, "teacher"), await who(conn, "reviewer")
    fields = {
        "id": "DEMO-1",
        "type": "single",
        "subject": "Toán",
        "topic": "ham-so",
        "level": "1",
        "points": "0.25",
        "lang": "vi",
        "stem": "Đạo hàm của $y = x^2$ là",
        "opt_A": "$2x$",
        "opt_B": "$x$",
        "key": "A",
    }
    pk = await authoring.create_item(conn, teacher, fields)
    await authoring.submit_items(conn, teacher, [pk])
    await authoring.review_item(conn, reviewer, pk, "approve", "")
    release_id = await releases.create(
        conn, teacher, [teacher.org_id], releases.Build("demo-thpt-toan", "2025.1", "Toán 12", "toan", (pk,))
    )
    out = await asyncio.to_thread(reviewer_signs, dsn, password, passphrase, release_id)
    assert "demo-thpt 2025.1" in out["bank"] and "DEMO-SGD" in out["bank"]
    assert len(out["keys"]) == 1 and out["keys"][0].startswith("Khoá ký của Sở (demo)")
    assert out["status"] == "verified" and out["problems"] == []
    # Issue 16 item 7: a wrong passphrase is said in Vietnamese, at the passphrase field.
    assert out["wrong"] == "Mật khẩu của khoá ký không đúng: hãy nhập lại." and not ENGLISH.search(out["wrong"])
    assert out["wrong_focus"] == {
        "id": "sign-pass",
        "invalid": "true",
        "said": out["wrong"] + " | " + out["wrong_focus"]["said"].split(" | ")[1],
    }
