"""The exam board's pages: exams with their counts, an exam's item analysis
(summary, histogram, sortable item table with flags), an item's option
table, and the same report as xlsx. The numbers are cbt.results.analyze_exam's,
which calls cbt.analysis.analyze_matrix: the same as `cbt analyze`.

A board member (or admin) sees only the exams of their organisation and,
for a department, of its schools; any other exam is "unknown" (404).
"""

from __future__ import annotations

import io
import math

import asyncpg
from aiohttp import web

from cbt import accounts, exams, heads, results
from cbt.analysis.render import (
    CHART_LABELS,
    catalog_words,
    histogram_svg,
    icc_svg,
    option_trace_svg,
    score_trace_svg,
    write_xlsx,
)
from cbt.platform import appkeys
from cbt.platform.auth import redirect, require_user
from cbt.platform.errors import NotFound, UserError
from cbt.platform.templating import language, render

# ?sort= on the item table: the report's item fields (default: bank order).
SORT_KEYS = ("id", "n", "p", "r_pb", "r_pb_total", "r_bis", "d_upper_lower", "alpha_if_deleted", "omitted", "flags")
NUMBER_COLUMNS = SORT_KEYS[1:-1]


async def _visible_exam(conn: asyncpg.Connection, request: web.Request) -> asyncpg.Record:
    return await exams.visible_exam(conn, require_user(request), request.match_info["code"])


async def exams_list(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT e.code, e.title, e.subject, e.status, e.opens_at, e.time_zone, o.code AS org_code,
                   (SELECT count(*) FROM candidates c WHERE c.exam_id = e.id) AS candidates,
                   (SELECT count(*) FROM attempts a WHERE a.exam_id = e.id AND a.status = 'submitted') AS submitted,
                   s.computed_at
            FROM exams e JOIN orgs o ON o.id = e.org_id LEFT JOIN exam_stats s ON s.exam_id = e.id
            WHERE e.org_id = ANY($1::bigint[]) ORDER BY e.opens_at DESC, e.code
            """,
            await accounts.visible_org_ids(conn, user),
        )
    return render(request, "board/exams.html", {"exams": rows})


def _sorted_items(items: list[dict], sort: str) -> list[dict]:
    if sort == "id":
        return items
    if sort == "flags":
        return sorted(items, key=lambda it: -len(it["flags"]))

    def key(it):
        v = it.get(sort)
        return (v is None or (isinstance(v, float) and math.isnan(v)), v if v is not None else 0)

    return sorted(items, key=key)


async def _report(conn, exam, *, recompute: bool = False) -> tuple[dict | None, object, UserError | None]:
    stored = None if recompute else await results.stored_report(conn, exam["id"])
    if stored is not None:
        return stored[0], stored[1], None
    try:
        await results.analyze_exam(conn, exam["id"])
    except UserError as e:
        return None, None, e
    report, computed_at = await results.stored_report(conn, exam["id"])
    return report, computed_at, None


async def exam_page(request: web.Request) -> web.Response:
    sort = request.query.get("sort", "id")
    if sort not in SORT_KEYS:
        raise UserError("bad_sort", f"sort must be one of {', '.join(SORT_KEYS)}")
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        report, computed_at, problem = await _report(conn, exam)
        head = await heads.sign_current(conn, exam["code"])
    return render(
        request,
        "board/exam.html",
        {
            "exam": exam,
            "report": report,
            "computed_at": computed_at,
            "problem": problem,
            "sort": sort,
            "head": head,
            "sort_keys": SORT_KEYS,
            "number_columns": NUMBER_COLUMNS,
            "items": _sorted_items(report["items"], sort) if report else [],
            "histogram": histogram_svg(report["test"]["score_histogram"], chart_labels(request)) if report else None,
        },
    )


async def recompute(request: web.Request) -> web.Response:
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        await results.analyze_exam(conn, exam["id"])
    return redirect(request, "board_exam", code=exam["code"])


async def item_page(request: web.Request) -> web.Response:
    raw = request.match_info["pk"]
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        report, _, problem = await _report(conn, exam)
        if problem:
            raise problem
        item = next((it for it in report["items"] if raw.isdigit() and it["pk"] == int(raw)), None)
        if item is None:
            raise NotFound("unknown_item", f"no analysed item {raw} in exam {exam['code']}")
        bank_row = await conn.fetchrow("SELECT item_id, version FROM bank_items WHERE id = $1", item["pk"])
        # The traces are not stored: they come from the same matrix, now.
        trace = results.item_traces(await results.exam_matrix(conn, exam["id"]), item["pk"], report["omit_policy"])
    return render(
        request,
        "board/item.html",
        {
            "exam": exam,
            "item": item,
            "bank_row": bank_row,
            "number_columns": NUMBER_COLUMNS,
            **item_charts(request, item, trace, report),
        },
    )


def chart_labels(request: web.Request) -> dict:
    """The charts' words in the page's language."""
    t = request.app[appkeys.CATALOGS].translator(language(request))
    words = {k: t("chart." + k) for k in CHART_LABELS if k not in ("histogram", "option_trace", "score_trace")}
    words["histogram"] = t("board.histogram")
    words["option_trace"] = t("board.option_trace") + " · {id}"
    words["score_trace"] = t("board.score_trace") + " · {id}"
    return words


def item_charts(request: web.Request, item: dict, trace: dict | None, report: dict) -> dict:
    """Option trace lines (single choice) or the observed item curve, and the
    Rasch item characteristic curve when the item has an estimate."""
    labels = chart_labels(request)
    out = {"trace_chart": None, "trace_kind": None, "icc_chart": None}
    if trace is not None:
        if "options" in trace:
            out["trace_chart"], out["trace_kind"] = option_trace_svg(item, trace, labels), "option_trace"
        else:
            out["trace_chart"], out["trace_kind"] = score_trace_svg(item, trace, labels), "score_trace"
    rasch = report["test"].get("irt_reliability") or {}
    params = next((it for it in rasch.get("items", []) if it["id"] == item["id"]), None)
    if params is not None and params["b"] is not None:
        t = request.app[appkeys.CATALOGS].translator(language(request))
        out["icc_chart"] = icc_svg([params], f"{t('board.icc')} · {item['id']}", labels)
    return out


async def report_xlsx(request: web.Request) -> web.Response:
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        report, _, problem = await _report(conn, exam)
        head = await heads.sign_current(conn, exam["code"])
    if problem:
        raise problem
    out = io.BytesIO()
    # In the reader's language, as the board's pages: sheet names, headers, flags and notes.
    t = request.app[appkeys.CATALOGS].translator(language(request))
    write_xlsx(report, out, head, catalog_words(t), heads.row_words(t))
    return web.Response(
        body=out.getvalue(),
        headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": f'attachment; filename="{exam["code"]}-item-analysis.xlsx"',
        },
    )
