"""The exam board's pages: who may see an exam's analysis, the item table
and item pages, the xlsx report, the recompute form, and the bank's item history."""

import io
import json
import re

import openpyxl
import pytest
from support.accounts import csrf_of, login
from support.results import SETS_CANDIDATES as CANDIDATES

from cbt import accounts
from cbt.numbers import fmt


async def test_board_sees_the_analysis_computed_on_first_view(client, conn, board_exam):
    await login(client, "board")
    resp = await client.get("/board/exams")
    assert resp.status == 200
    html = await resp.text()
    assert "TOAN-T" in html and ">8<" in html  # candidates and submitted counts
    assert await conn.fetchval("SELECT count(*) FROM exam_stats") == 0
    resp = await client.get("/board/exams/TOAN-T")
    assert resp.status == 200
    html = await resp.text()
    assert await conn.fetchval("SELECT count(*) FROM exam_stats") == 1
    pks = [r["item_pk"] for r in await conn.fetch("SELECT item_pk FROM item_stats ORDER BY item_pk")]
    assert pks and all(f"/board/exams/TOAN-T/items/{pk}" in html for pk in pks)
    assert "<svg" in html and 'class="bar"' in html  # the histogram
    assert 'href="?sort=p"' in html and 'name="csrf_token"' in html
    mean = await conn.fetchval("SELECT (report->'test'->>'mean')::float FROM exam_stats")
    assert f"{mean:.3f}".replace(".", ",") in html  # the reader's decimal mark (vi)
    flagged = await conn.fetchval("SELECT count(*) FROM item_stats WHERE flags <> '{}'")
    assert html.count('<tr class="flagged">') == flagged
    # No item sets, no trial questions: nothing about them on the page.
    assert 'id="sets-h"' not in html and "testlet-note" not in html and "Câu thử nghiệm" not in html


async def test_item_table_sorts_by_facility(client, conn, board_exam):
    await login(client, "board")
    html = await (await client.get("/board/exams/TOAN-T?sort=p")).text()
    shown = [int(pk) for pk in re.findall(r"/board/exams/TOAN-T/items/(\d+)", html)]
    by_p = [r["item_pk"] for r in await conn.fetch("SELECT item_pk, p FROM item_stats ORDER BY p, item_pk")]
    ps = {r["item_pk"]: r["p"] for r in await conn.fetch("SELECT item_pk, p FROM item_stats")}
    assert [ps[pk] for pk in shown] == [ps[pk] for pk in by_p]
    assert (await client.get("/board/exams/TOAN-T?sort=nope")).status == 400


async def test_item_page_shows_the_option_table(client, conn, board_exam):
    await login(client, "admin")
    await client.get("/board/exams/TOAN-T")
    pk = await conn.fetchval(
        "SELECT s.item_pk FROM item_stats s JOIN exam_items i ON i.item_pk = s.item_pk AND i.exam_id = s.exam_id "
        "WHERE i.type = 'single' ORDER BY s.item_pk LIMIT 1"
    )
    resp = await client.get(f"/board/exams/TOAN-T/items/{pk}")
    assert resp.status == 200
    html = await resp.text()
    assert '<tr class="key">' in html and "<meter" in html
    assert (await client.get("/board/exams/TOAN-T/items/999999")).status == 404


async def test_xlsx_report_downloads(client, board_exam):
    await login(client, "board")
    resp = await client.get("/board/exams/TOAN-T/report.xlsx")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    wb = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    assert "Câu hỏi" in wb.sheetnames
    assert "Ngữ liệu (nhóm câu hỏi)" not in wb.sheetnames  # no item sets, no sheet


async def test_xlsx_report_speaks_the_readers_language(client, conn, board_exam):
    """The flags, labels and notes follow the reader's language, as the board's pages do."""
    await login(client, "board")
    await client.get("/board/exams/TOAN-T")
    flags = [f for r in await conn.fetch("SELECT flags FROM item_stats") for f in r["flags"]]
    assert flags  # eight candidates: some items are flagged

    def sheets(body: bytes, items: str = "Câu hỏi", notes: str = "Ghi chú") -> tuple[list, list]:
        wb = openpyxl.load_workbook(io.BytesIO(body))
        return list(wb[items].iter_rows(values_only=True)), [r[0] for r in wb[notes].iter_rows(values_only=True)]

    items, notes = sheets(await (await client.get("/board/exams/TOAN-T/report.xlsx")).read())
    vi = {
        "too_easy": "quá dễ",
        "too_hard": "quá khó",
        "low_discrimination": "phân biệt thấp",
        "negative_discrimination": "phân biệt âm",
        "possible_miskey": "có thể sai đáp án",
        "nonfunctioning_distractor": "phương án nhiễu không hiệu quả",
    }
    assert items[0][0] == "Câu hỏi" and items[0][-1] == "Cờ"
    shown = {f for row in items[1:] if row[-1] for f in row[-1].split(", ")}
    assert shown == {vi[f] for f in flags}
    assert "quá dễ (too_easy): p trên 0.9." in notes and not any("too easy" in n for n in notes)
    await client.get("/lang/en")
    items, notes = sheets(await (await client.get("/board/exams/TOAN-T/report.xlsx")).read(), "Items", "Notes")
    assert "too_easy: too easy (p above 0.9)" in notes and items[0][0] == "Item"


async def test_teacher_is_refused_and_other_schools_board_sees_nothing(client, conn, board_exam):
    await login(client, "teacher")
    assert (await client.get("/board/exams/TOAN-T")).status == 403
    assert (await client.get("/board/exams")).status == 403
    await accounts.add_org(conn, "THPT-C", "Trường C", "school")
    await accounts.add_user(conn, "c-board", "board", "THPT-C", "another long password")
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    resp = await login(client, "c-board", "another long password")
    assert resp.status == 303
    resp = await client.get("/board/exams/TOAN-T")
    assert resp.status == 404
    assert "unknown_exam" in await resp.text()
    assert (await client.get("/board/exams/TOAN-T/report.xlsx")).status == 404
    assert "TOAN-T" not in await (await client.get("/board/exams")).text()


async def test_department_board_sees_its_schools_exam(client, conn, board_exam):
    await accounts.add_user(conn, "sgd-board", "board", "SGD-T", "another long password")
    await login(client, "sgd-board", "another long password")
    assert (await client.get("/board/exams/TOAN-T")).status == 200


async def test_recompute_needs_the_csrf_token(client, conn, board_exam):
    await login(client, "board")
    await client.get("/board/exams/TOAN-T")
    first = await conn.fetchval("SELECT computed_at FROM exam_stats")
    refused = await client.post("/board/exams/TOAN-T/recompute", data={}, allow_redirects=False)
    assert refused.status == 403
    assert await conn.fetchval("SELECT computed_at FROM exam_stats") == first
    token = await csrf_of(client, "/board/exams/TOAN-T")
    done = await client.post("/board/exams/TOAN-T/recompute", data={"csrf_token": token}, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/board/exams/TOAN-T"
    assert await conn.fetchval("SELECT computed_at FROM exam_stats") > first


async def test_bank_item_page_shows_the_items_history(client, conn, board_exam):
    await login(client, "board")
    await client.get("/board/exams/TOAN-T")
    row = await conn.fetchrow(
        "SELECT b.item_id, b.version, s.p, s.n FROM item_stats s JOIN bank_items b ON b.id = s.item_pk "
        "ORDER BY s.item_pk LIMIT 1"
    )
    html = await (await client.get(f"/bank/items/{row['item_id']}/{row['version']}")).text()
    # Written as every statistic is (a p of exactly 1 as "1"), with the reader's decimal comma.
    assert 'id="history-h"' in html and "TOAN-T" in html and fmt(row["p"]).replace(".", ",") in html
    # A teacher of another school sees the item, not the other school's statistics.
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    await login(client, "b-teacher")
    html = await (await client.get(f"/bank/items/{row['item_id']}/{row['version']}")).text()
    assert 'id="history-h"' not in html


async def test_dashboard_links_the_board_pages(client, staff):
    await login(client, "board")
    assert "/board/exams" in await (await client.get("/staff")).text()
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    await login(client, "teacher")
    assert "/board/exams" not in await (await client.get("/staff")).text()


async def test_item_page_shows_option_trace_lines_and_the_item_curve(client, conn, board_exam):
    await login(client, "board")
    await client.get("/board/exams/TOAN-T")
    pk = await conn.fetchval(
        "SELECT s.item_pk FROM item_stats s JOIN exam_items i ON i.item_pk = s.item_pk AND i.exam_id = s.exam_id "
        "WHERE i.type = 'single' ORDER BY s.item_pk LIMIT 1"
    )
    report = json.loads(await conn.fetchval("SELECT report FROM exam_stats"))
    item = next(it for it in report["items"] if it["pk"] == pk)
    html = await (await client.get(f"/board/exams/TOAN-T/items/{pk}")).text()
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    trace = next(s for s in svgs if 'aria-label="Đường chọn phương án' in s)
    assert trace.count("<polyline") == len(item["options"])  # one line per option
    for o in item["options"]:
        assert f"<title>{o['option']}" in trace
    assert "tỉ lệ chọn" in trace  # axis labels follow the page language
    assert 'style="' not in html  # CSP: no inline styles
    rasch = {it["id"]: it for it in report["test"]["irt_reliability"]["items"]}
    if rasch.get(item["id"], {}).get("b") is not None:
        icc = next(s for s in svgs if "Rasch" in s)
        assert icc.count("<polyline") == 1
    await client.get("/lang/en")
    html = await (await client.get(f"/board/exams/TOAN-T/items/{pk}")).text()
    assert "share choosing" in html and "Option trace lines" in html


async def test_exam_page_shows_the_irt_reliability(client, conn, board_exam):
    await login(client, "board")
    await client.get("/lang/en")
    html = await (await client.get("/board/exams/TOAN-T")).text()
    report = json.loads(await conn.fetchval("SELECT report FROM exam_stats"))
    rel = report["test"]["irt_reliability"]
    assert "IRT marginal reliability (Rasch model)" in html
    assert (rel["marginal_reliability"] is None) or (0 <= rel["marginal_reliability"] <= 1)
    assert "var(EAP) / (var(EAP) + mean of SE²)" in html
    if report["test"]["form_groups"] > 1 and report["test"]["alpha"] is None:
        assert "Cronbach&#39;s alpha is not shown" in html or "Cronbach's alpha is not shown" in html
    assert "total score" in html  # the histogram's axis, in the page's language


# -- an exam with passages and trial questions ----------------------------------------


def _vi(x, digits=3) -> str:
    return fmt(x, digits).replace(".", ",")


async def test_the_exam_page_shows_the_passages_and_the_testlet_alpha_beside_alpha(client, conn, sets_exam):
    await login(client, "board")
    html = await (await client.get("/board/exams/EN-SETS")).text()
    report = json.loads(await conn.fetchval("SELECT report FROM exam_stats WHERE exam_id = $1", sets_exam))
    test = report["test"]
    assert "Độ tin cậy theo nhóm câu hỏi (alpha, mỗi nhóm là một đơn vị)" in html
    assert f"<dd>{_vi(test['testlet_alpha'])} " in html and f"<dd>{_vi(test['alpha'])} " in html
    assert "Các câu cùng một ngữ liệu không độc lập với nhau: alpha tính theo nhóm là ước lượng an toàn hơn." in html
    section = re.search(r'<section class="card" aria-labelledby="sets-h">.*?</section>', html, flags=re.S).group(0)
    assert "Ngữ liệu (nhóm câu hỏi)" in section and "Độ phân biệt của nhóm câu hỏi (phần còn lại)" in section
    rows = re.findall(r"<tr>\s*<td>(.*?)</tr>", section, flags=re.S)
    assert len(rows) == len(report["sets"]) == 4
    for row, st in zip(rows, report["sets"], strict=True):
        assert row.startswith(st["id"]) and f">{_vi(st['r_rest'])}<" in row and f">{st['n']}<" in row
        assert ("Nhóm câu hỏi thử nghiệm" in row) == ("trial_n" in st)
    # Trial questions: marked in the item table, counted in the summary, explained.
    items = re.search(r'<section aria-labelledby="items-h">.*?</section>', html, flags=re.S).group(0)
    assert items.count('<span class="badge">Câu thử nghiệm</span>') == report["trial_items"] == 6
    assert "không tính vào điểm của thí sinh" in html
    trial = next(it for it in report["items"] if "trial_n" in it)
    page = await (await client.get(f"/board/exams/EN-SETS/items/{trial['pk']}")).text()
    assert '<span class="badge">Câu thử nghiệm</span>' in page
    assert "mô hình Rasch chỉ được ước lượng trên các câu tính điểm" in page  # why it has no curve
    await client.get("/lang/en")
    html = await (await client.get("/board/exams/EN-SETS")).text()
    assert "Questions on one passage are not independent of each other" in html and "Passages (item sets)" in html


async def test_the_xlsx_report_has_the_sets_sheet_and_the_trial_column(client, conn, sets_exam):
    await login(client, "board")
    resp = await client.get("/board/exams/EN-SETS/report.xlsx")
    assert resp.status == 200
    wb = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    report = json.loads(await conn.fetchval("SELECT report FROM exam_stats WHERE exam_id = $1", sets_exam))
    assert wb.sheetnames[:3] == ["Tổng quan", "Câu hỏi", "Ngữ liệu (nhóm câu hỏi)"]
    sets = list(wb["Ngữ liệu (nhóm câu hỏi)"].iter_rows(values_only=True))
    assert sets[0][:3] == ("Nhóm câu hỏi", "Các câu của nhóm", "Số câu")
    assert [r[0] for r in sets[1:]] == [st["id"] for st in report["sets"]]
    r_rest = sets[0].index("Độ phân biệt của nhóm câu hỏi (phần còn lại)")
    assert [r[r_rest] for r in sets[1:]] == pytest.approx([st["r_rest"] for st in report["sets"]], abs=1e-12)
    summary = {r[0]: r[1] for r in wb["Tổng quan"].iter_rows(values_only=True) if r and r[0]}
    testlet = summary["Độ tin cậy theo nhóm câu hỏi (alpha, mỗi nhóm là một đơn vị)"]
    assert testlet == pytest.approx(report["test"]["testlet_alpha"], abs=1e-12)
    assert summary["Alpha Cronbach"] == pytest.approx(report["test"]["alpha"], abs=1e-12)
    items = list(wb["Câu hỏi"].iter_rows(values_only=True))
    trial = items[0].index("Số thí sinh có câu này là câu thử nghiệm")
    assert items[0][-1] == "Cờ" and [r[trial] for r in items[1:]].count(CANDIDATES) == 6
    notes = [r[0] for r in wb["Ghi chú"].iter_rows(values_only=True)]
    assert "Các câu cùng một ngữ liệu không độc lập với nhau: alpha tính theo nhóm là ước lượng an toàn hơn." in notes
