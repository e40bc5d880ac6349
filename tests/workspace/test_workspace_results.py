"""The marking and results pages: a teacher marks essays without seeing
who wrote them, totals become final, results and downloads follow; bad
marks, other schools and other roles are refused."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import openpyxl
import pytest
from support.accounts import PASSWORD, csrf_of, login
from support.delivery import STUDENTS
from support.results import MORE, essay_pk, make_exam, sit_all

from cbt import results

NAMES = [s.full_name for s in STUDENTS + MORE]
CODES = [s.code for s in STUDENTS + MORE]


@pytest.fixture
async def sat_exam(client, conn, staff, signed_demo):
    """TOAN-T of THPT-A, sat and submitted by eight candidates (essays unmarked)."""
    tickets = await make_exam(conn, signed_demo, "THPT-A")
    await sit_all(client, conn, tickets)
    return await conn.fetchrow("SELECT * FROM exams WHERE code = 'TOAN-T'")


def attempt_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'name="attempt_id" value="(\d+)"', html)]


async def post_mark(client, pk, attempt_id, points, comment="", code="TOAN-T"):
    path = f"/workspace/marking/{code}/items/{pk}"
    token = await csrf_of(client, path)
    return await client.post(
        path,
        data={"csrf_token": token, "attempt_id": str(attempt_id), "points": points, "comment": comment},
        allow_redirects=False,
    )


async def test_teacher_marks_anonymously_until_totals_are_final(client, conn, sat_exam):
    pk = await essay_pk(conn)
    await login(client, "teacher")
    html = await (await client.get("/workspace/marking")).text()
    assert "/workspace/marking/TOAN-T" in html
    html = await (await client.get("/workspace/marking/TOAN-T")).text()
    assert f"/workspace/marking/TOAN-T/items/{pk}" in html and f'data-progress="{pk}">0/8<' in html

    resp = await client.get(f"/workspace/marking/TOAN-T/items/{pk}")
    assert resp.status == 200
    html = await resp.text()
    # The stem and the marking guide are shown; who wrote the script is not.
    assert "Hướng dẫn chấm" in html and 'class="guide"' in html and "Bài làm tự luận." in html
    for name in NAMES:
        assert name not in html
    for code in CODES:
        assert code not in html
    assert len(attempt_ids(html)) == 1 and html.count('data-script="') == 8

    for i in range(8):
        html = await (await client.get(f"/workspace/marking/TOAN-T/items/{pk}")).text()
        assert all(name not in html for name in NAMES)
        [attempt_id] = attempt_ids(html)
        resp = await post_mark(client, pk, attempt_id, "0,75" if i % 2 else "1", "Đủ ý." if i % 2 else "")
        assert resp.status == 303, await resp.text()
        assert "saved=" in resp.headers["Location"]
        progress = await (await client.get("/workspace/marking/TOAN-T")).text()
        assert f'data-progress="{pk}">{i + 1}/8<' in progress
    assert await conn.fetchval("SELECT count(*) FROM attempts WHERE provisional") == 0
    assert await conn.fetchval("SELECT sum(points) FROM essay_marks") == Decimal("7.00")

    # Results reflect the marks at once: final scores, 2 and 1 decimals.
    html = await (await client.get("/workspace/results/TOAN-T")).text()
    assert 'data-provisional="1"' not in html and html.count('data-provisional="0"') == 8
    a = await conn.fetchrow(
        "SELECT a.score, a.max_score FROM attempts a JOIN candidates c ON c.id = a.candidate_id "
        "WHERE c.code = '0000000001'"
    )
    assert a["max_score"] == 4
    # Vietnamese writes a decimal comma.
    assert f"{a['score'].quantize(Decimal('0.01'))} / 4,00".replace(".", ",") in html
    assert "Nguyễn Văn An" in html  # names belong on the results page

    resp = await client.get("/workspace/results/TOAN-T/results.csv")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert 'filename="TOAN-T-results.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert len(rows) == 8 and {r["provisional"] for r in rows} == {"0"}
    first = next(r for r in rows if r["student_code"] == "0000000001")
    assert Decimal(first["score"]) == a["score"].quantize(Decimal("0.01"))
    assert Decimal(first["gradebook_10"]) == (a["score"] * 10 / 4).quantize(Decimal("0.1"), rounding="ROUND_HALF_UP")

    resp = await client.get("/workspace/results/TOAN-T/results.xlsx")
    assert resp.status == 200
    ws = openpyxl.load_workbook(io.BytesIO(await resp.read())).active
    values = list(ws.values)
    assert values[0][0] == "Số báo danh" and len(values) == 9
    assert {v[8] for v in values[1:]} == {"Chính thức"}


async def test_results_filter_and_download_per_class(client, conn, sat_exam):
    await login(client, "teacher")
    html = await (await client.get("/workspace/results/TOAN-T?class=12A1")).text()
    shown = re.findall(r'<tr data-code="(\d+)">', html)
    assert shown == ["0000000001", "0000000002"]
    assert 'data-provisional="1"' in html  # the essays are not marked yet
    assert "/workspace/results/TOAN-T/results.csv?class=12A1" in html
    resp = await client.get("/workspace/results/TOAN-T/results.csv?class=12A3")
    assert 'filename="TOAN-T-12A3-results.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert [r["student_code"] for r in rows] == [c.code for c in MORE] and {r["class"] for r in rows} == {"12A3"}
    assert {r["provisional"] for r in rows} == {"1"}
    resp = await client.get("/workspace/results/TOAN-T/results.xlsx?class=12A2")
    values = list(openpyxl.load_workbook(io.BytesIO(await resp.read())).active.values)
    assert [v[0] for v in values[1:]] == ["0000000003"]
    resp = await client.get("/workspace/results/TOAN-T?class=12Z9")
    assert resp.status == 404 and 'data-code="unknown_class"' in await resp.text()
    # The same page in English.
    await client.get("/lang/en?next=/")
    html = await (await client.get("/workspace/results/TOAN-T")).text()
    assert "Score out of 10" in html and "Download CSV (whole exam)" in html and "Provisional" in html
    pk = await essay_pk(conn)
    html = await (await client.get(f"/workspace/marking/TOAN-T/items/{pk}")).text()
    assert "Marking guide" in html and "Points (0 to 1)" in html


async def test_results_show_and_export_times_in_the_exams_zone(client, conn, sat_exam):
    from zoneinfo import ZoneInfo

    await conn.execute("UPDATE exams SET time_zone = 'Asia/Tokyo' WHERE code = 'TOAN-T'")
    at = await conn.fetchval(
        "SELECT a.submitted_at FROM attempts a JOIN candidates c ON c.id = a.candidate_id WHERE c.code = '0000000001'"
    )
    tokyo = at.astimezone(ZoneInfo("Asia/Tokyo"))
    await login(client, "teacher")
    html = await (await client.get("/workspace/results/TOAN-T")).text()
    row = html.split('<tr data-code="0000000001">', 1)[1].split("</tr>", 1)[0]
    assert f"{tokyo:%H:%M %d/%m/%Y} (GMT+9)" in row and "UTC" not in html
    assert f'datetime="{tokyo.isoformat(timespec="seconds")}"' in row
    # The head of the audit chain, on the same page, in the same zone.
    assert "(GMT+9)</time>" in html.split('id="audit-head"', 1)[1]
    # Downloads: ISO 8601 with the zone's offset, which names the very instant.
    resp = await client.get("/workspace/results/TOAN-T/results.csv")
    table = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    line = next(r for r in table if r[0] == "0000000001")
    stamp = dt.datetime.fromisoformat(line[results.RESULT_COLUMNS.index("submitted_at")])
    assert stamp.utcoffset() == dt.timedelta(hours=9) and stamp == at.replace(microsecond=0)
    resp = await client.get("/workspace/results/TOAN-T/results.xlsx")
    values = list(openpyxl.load_workbook(io.BytesIO(await resp.read())).active.values)
    column = results.RESULT_COLUMNS.index("submitted_at")
    cell = next(v[column] for v in values[1:] if v[0] == "0000000001")
    assert isinstance(cell, str) and cell == stamp.isoformat()


async def test_bad_marks_are_refused_and_change_nothing(client, conn, sat_exam):
    pk = await essay_pk(conn)
    single_pk = await conn.fetchval(
        "SELECT item_pk FROM exam_items WHERE exam_id = $1 AND type = 'single' ORDER BY item_pk LIMIT 1", sat_exam["id"]
    )
    await login(client, "teacher")
    [attempt_id] = attempt_ids(await (await client.get(f"/workspace/marking/TOAN-T/items/{pk}")).text())
    before = await conn.fetch("SELECT id, score, provisional FROM attempts ORDER BY id")
    for points, status, code in [
        ("-0.5", 400, "mark_out_of_range"),
        ("2", 400, "mark_out_of_range"),
        ("abc", 400, "bad_mark"),
        ("", 400, "mark_missing"),
        ("0.001", 400, "mark_step"),
    ]:
        resp = await post_mark(client, pk, attempt_id, points)
        html = await resp.text()
        assert resp.status == status and f'data-code="{code}"' in html, (points, resp.status)
        assert 'role="alert"' in html and f'value="{points}"' in html  # the marker sees what they typed
    resp = await post_mark(client, pk, 999999, "0.5")
    assert resp.status == 404 and 'data-code="unknown_attempt"' in await resp.text()
    resp = await post_mark(client, single_pk, attempt_id, "0.25")
    assert resp.status == 400 and 'data-code="not_essay"' in await resp.text()
    assert (await client.get(f"/workspace/marking/TOAN-T/items/{single_pk}")).status == 400
    assert (await client.get(f"/workspace/marking/TOAN-T/items/{pk}?script=99")).status == 404
    assert (await client.get("/workspace/marking/TOAN-T/items/abc")).status == 404
    # No CSRF token: refused before anything is read.
    resp = await client.post(
        f"/workspace/marking/TOAN-T/items/{pk}",
        data={"attempt_id": str(attempt_id), "points": "1"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert await conn.fetch("SELECT id, score, provisional FROM attempts ORDER BY id") == before
    assert await conn.fetchval("SELECT count(*) FROM essay_marks") == 0
    assert await conn.fetchval("SELECT count(*) FROM essay_mark_history") == 0


async def test_other_school_and_other_roles_are_refused(client, conn, sat_exam):
    pk = await essay_pk(conn)
    attempt_id = await conn.fetchval("SELECT min(id) FROM attempts")
    await login(client, "b-teacher")
    for path in (
        "/workspace/marking/TOAN-T",
        f"/workspace/marking/TOAN-T/items/{pk}",
        "/workspace/results/TOAN-T",
        "/workspace/results/TOAN-T/results.csv",
        "/workspace/results/TOAN-T/results.xlsx",
    ):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert 'data-code="unknown_exam"' in await resp.text()
    assert "TOAN-T" not in await (await client.get("/workspace/marking")).text()
    assert "TOAN-T" not in await (await client.get("/workspace/results")).text()
    token = await csrf_of(client, "/workspace/marking")
    resp = await client.post(
        f"/workspace/marking/TOAN-T/items/{pk}",
        data={"csrf_token": token, "attempt_id": str(attempt_id), "points": "1"},
        allow_redirects=False,
    )
    assert resp.status == 404
    assert await conn.fetchval("SELECT count(*) FROM essay_marks") == 0
    await client.post("/logout", data={"csrf_token": token})

    await login(client, "proctor")
    assert (await client.get("/workspace/marking/TOAN-T")).status == 403
    assert (await client.get("/workspace/results/TOAN-T")).status == 403
    token = await csrf_of(client, "/staff")
    await client.post("/logout", data={"csrf_token": token})

    # The board reads results but does not mark.
    await login(client, "board")
    assert (await client.get("/workspace/results/TOAN-T")).status == 200
    assert (await client.get("/workspace/results/TOAN-T/results.csv")).status == 200
    assert (await client.get(f"/workspace/marking/TOAN-T/items/{pk}")).status == 403
    token = await csrf_of(client, "/staff")
    await client.post("/logout", data={"csrf_token": token})

    # A department administrator sees its schools' exams.
    await login(client, "sgd-admin")
    assert (await client.get(f"/workspace/marking/TOAN-T/items/{pk}")).status == 200


def mark_and_download(base: str, pk: int, downloads) -> dict:
    from support.browser import SCREENSHOTS, chromium_page

    with chromium_page() as (page, problems):
        page.goto(base + "/login")
        page.fill("#username", "teacher")
        page.fill("#password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(base + "/staff")
        page.goto(f"{base}/workspace/marking/TOAN-T")
        page.click(f"a[href='/workspace/marking/TOAN-T/items/{pk}']")
        page.wait_for_selector(".essay-answer")
        html = page.content()
        hidden = all(name not in html for name in NAMES)
        # Keyboard only: focus the points field through its label, type, tab to the comment, submit with Enter.
        page.get_by_label(re.compile("Điểm")).first.focus()
        page.keyboard.type("0.5")
        page.keyboard.press("Tab")
        page.keyboard.type("Lập luận còn thiếu bước cuối.")
        page.locator("button.primary", has_text="Lưu điểm").focus()
        focus_visible = page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Enter")
        page.wait_for_selector("p.notice[role='status']")
        fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(SCREENSHOTS / "workspace-marking-vi.png"), full_page=True)
        page.goto(f"{base}/workspace/results/TOAN-T")
        page.select_option("#class", "12A1")
        page.click("button[type='submit']:has-text('Xem')")
        page.wait_for_url(re.compile(r"class=12A1"))
        rows = page.locator("tbody tr").count()
        with page.expect_download() as info:
            page.click("#download-csv")
        info.value.save_as(downloads / "class.csv")
        with page.expect_download() as info:
            page.click("#download-xlsx")
        info.value.save_as(downloads / "class.xlsx")
        page.screenshot(path=str(SCREENSHOTS / "workspace-results-vi.png"), full_page=True)
        return {"problems": problems, "hidden": hidden, "rows": rows, "fits": fits, "focus": focus_visible}


async def test_teacher_marks_and_downloads_in_chromium(staff, dsn, conn, sat_exam, tmp_path):
    from support.browser import on_live_server

    pk = await essay_pk(conn)

    out = await on_live_server(dsn, mark_and_download, pk, tmp_path)
    assert out["problems"] == [] and out["hidden"] and out["fits"] and out["focus"]
    assert out["rows"] == 2
    mark = await conn.fetchrow("SELECT points, comment FROM essay_marks")
    assert mark["points"] == Decimal("0.5") and mark["comment"] == "Lập luận còn thiếu bước cuối."
    rows = list(csv.DictReader(io.StringIO((tmp_path / "class.csv").read_text("utf-8-sig"))))
    assert [r["student_code"] for r in rows] == ["0000000001", "0000000002"]
    marked = await conn.fetchval(
        "SELECT c.code FROM essay_marks m JOIN attempts a ON a.id = m.attempt_id "
        "JOIN candidates c ON c.id = a.candidate_id"
    )
    values = list(openpyxl.load_workbook(tmp_path / "class.xlsx").active.values)
    assert len(values) == 3
    # The marked candidate, if in 12A1, is final; the other still provisional.
    for r in rows:
        assert r["provisional"] == ("0" if r["student_code"] == marked else "1")


async def test_workbooks_speak_the_readers_language_and_the_csv_keeps_its_keys(client, conn, sat_exam):
    """The results and the item-analysis workbooks are for people: sheet names and
    headers in the reader's language; the CSV keeps its stable English keys."""
    from cbt import results

    async def book(path: str) -> openpyxl.Workbook:
        resp = await client.get(path)
        assert resp.status == 200
        return openpyxl.load_workbook(io.BytesIO(await resp.read()))

    async def csv_header() -> list[str]:
        body = await (await client.get("/workspace/results/TOAN-T/results.csv")).read()
        return next(csv.reader(io.StringIO(body.decode("utf-8-sig"))))

    await login(client, "teacher")
    wb = await book("/workspace/results/TOAN-T/results.xlsx")
    assert wb.sheetnames == ["Kết quả", "Nhật ký"]
    header = [c.value for c in wb["Kết quả"][1]]
    assert header == [
        "Số báo danh",
        "Họ và tên",
        "Lớp",
        "Trường",
        "Môn",
        "Điểm",
        "Điểm tối đa",
        "Điểm hệ 10",
        "Tình trạng điểm",
        "Nộp lúc",
    ]
    assert {r[8] for r in wb["Kết quả"].iter_rows(min_row=2, values_only=True)} == {"Tạm tính"}
    assert wb["Nhật ký"]["A1"].value == "Mốc nhật ký kỳ thi có chữ ký số"
    assert await csv_header() == [*results.RESULT_COLUMNS, "audit_head"]

    await client.get("/lang/en")
    wb = await book("/workspace/results/TOAN-T/results.xlsx")
    assert wb.sheetnames == ["Results", "Audit"]
    assert [c.value for c in wb["Results"][1]][:3] == ["Candidate number", "Full name", "Class"]
    assert wb["Audit"]["A3"].value == "Up to event"
    assert await csv_header() == [*results.RESULT_COLUMNS, "audit_head"]

    # The board's item analysis: every sheet's name and header row.
    await client.get("/lang/vi")
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    await login(client, "board")
    wb = await book("/board/exams/TOAN-T/report.xlsx")
    assert wb.sheetnames[:3] == ["Tổng quan", "Câu hỏi", "Phương án"] and wb.sheetnames[-2:] == ["Ghi chú", "Nhật ký"]
    assert [c.value for c in wb["Phương án"][1]][:3] == ["Câu hỏi", "Phương án", "Là đáp án"]
    english = [name for name in wb.sheetnames if name in ("Summary", "Items", "Options", "Notes", "Audit")]
    assert not english
    await client.get("/lang/en")
    wb = await book("/board/exams/TOAN-T/report.xlsx")
    assert wb.sheetnames[:3] == ["Summary", "Items", "Options"] and wb.sheetnames[-1] == "Audit"
    assert [c.value for c in wb["Options"][1]][:2] == ["Item", "Option"]
