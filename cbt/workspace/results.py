"""The workspace's marking and results pages.

Marking (teachers and admins): the exams with essays, the essay items of an
exam with their progress, and one item's queue of anonymous scripts with the
stem, the marking guide and a form for points and a comment (cbt.marking).

Results (teachers, admins and the exam board, read-only): the table of an
exam, filtered by class, and its gradebook downloads (CSV, xlsx) from
cbt.results, for the whole exam or one class. The page and both downloads
carry the exam's audit chain head, signed (cbt.heads), as it stood then; so
does a head file of its own (audit-head.txt) to keep apart from the server.

Only exams of the user's organisation (and, for a department, its schools)
exist here: any other is "unknown" (404), never a hint that it exists.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from cbt import accounts, exams, heads, marking, results
from cbt.platform import appkeys
from cbt.platform.auth import redirect, require_user
from cbt.platform.errors import NotFound, UserError
from cbt.platform.inputs import path_id
from cbt.platform.templating import language, render
from cbt.scoring import round_half_up
from itembank.render import render_item

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


async def _visible_exam(conn: asyncpg.Connection, request: web.Request) -> asyncpg.Record:
    return await exams.visible_exam(conn, require_user(request), request.match_info["code"])


def _pk(request: web.Request) -> int:
    return path_id(request, "pk", NotFound("unknown_item", "no such question in this exam: choose one from the list"))


# -- marking ------------------------------------------------------------------------


async def marking_index(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        listed = await conn.fetch(
            """
            SELECT e.code, e.title, e.subject, e.status, o.code AS org_code,
                   (SELECT count(*) FROM exam_items i WHERE i.exam_id = e.id AND i.type = 'essay') AS essays,
                   (SELECT count(*) FROM attempts a WHERE a.exam_id = e.id AND a.status = 'submitted'
                                                     AND NOT a.voided) AS submitted,
                   (SELECT count(*) FROM attempts a WHERE a.exam_id = e.id AND a.status = 'submitted'
                                                     AND NOT a.voided AND a.provisional) AS provisional
            FROM exams e JOIN orgs o ON o.id = e.org_id
            WHERE e.org_id = ANY($1::bigint[]) ORDER BY e.opens_at DESC, e.code
            """,
            await accounts.visible_org_ids(conn, user),
        )
    return render(request, "workspace/marking_index.html", {"exams": listed})


async def marking_exam(request: web.Request) -> web.Response:
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        items = await marking.essay_progress(conn, exam["id"])
    return render(request, "workspace/marking_exam.html", {"exam": exam, "items": items})


async def _item_page(
    request: web.Request,
    conn,
    exam,
    pk: int,
    *,
    number: int | None,
    error: UserError | None = None,
    typed: dict | None = None,
    saved: int | None = None,
) -> web.Response:
    row, item = await marking.essay_item(conn, exam["id"], pk)
    queue = await marking.scripts(conn, exam, pk)
    script = None
    if number is not None:
        script = next((s for s in queue if s.number == number), None)
        if script is None:
            raise NotFound("unknown_script", f"no script number {number} for this question")
    elif queue:
        script = next((s for s in queue if s.mark is None), queue[0])
    history = await marking.mark_history(conn, script.attempt_id, script.ref) if script else []
    base = request.app.router["bank_media"]

    def media_url(path: str) -> str:
        return str(base.url_for(item_id=row["item_id"], version=str(row["version"]), path=path))

    decimals = marking.report_decimals(exam)
    return render(
        request,
        "workspace/marking_item.html",
        {
            "exam": exam,
            "row": row,
            "item": item,
            "r": render_item(item, media_url),
            "queue": queue,
            "script": script,
            "history": history,
            "marked": sum(s.mark is not None for s in queue),
            "step": marking.step_of(decimals),
            "error": error,
            "typed": typed or {},
            "saved": saved if saved and not error else None,
        },
        status=error.status if error else 200,
    )


def _number(request: web.Request) -> int | None:
    raw = request.query.get("script")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise NotFound("unknown_script", f"no script number {raw!r} for this question")
    return int(raw)


async def marking_item(request: web.Request) -> web.Response:
    pk = _pk(request)
    number = _number(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        raw = request.query.get("saved", "")
        saved = int(raw) if raw.isdigit() and len(raw) < 10 else None
        return await _item_page(request, conn, exam, pk, number=number, saved=saved)


async def marking_save(request: web.Request) -> web.Response:
    pk = _pk(request)
    form = await request.post()
    attempt_id, points, comment = form.get("attempt_id", ""), form.get("points", ""), form.get("comment", "")
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        try:
            await marking.record_mark(conn, exam, pk, attempt_id, points, str(comment), user)
        except UserError as e:
            if e.code in ("unknown_item", "not_essay", "unknown_attempt"):
                raise
            # The marker sees the same script again, with what they typed and what to fix.
            queue = await marking.scripts(conn, exam, pk)
            shown = next((s.number for s in queue if str(s.attempt_id) == str(attempt_id)), None)
            return await _item_page(
                request, conn, exam, pk, number=shown, error=e, typed={"points": str(points), "comment": str(comment)}
            )
        queue = await marking.scripts(conn, exam, pk)
    done = next((s for s in queue if str(s.attempt_id) == str(attempt_id)), None)
    # On to the next unmarked script after this one (wrapping round), else stay.
    after = [s for s in queue if s.mark is None and done and s.number > done.number]
    before = [s for s in queue if s.mark is None]
    target = (after or before or [done])[0]
    query = {"script": target.number, "saved": done.number} if target and done else None
    return redirect(request, "ws_marking_item", query, code=exam["code"], pk=pk)


# -- results ------------------------------------------------------------------------


async def results_index(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        listed = await conn.fetch(
            """
            SELECT e.code, e.title, e.subject, e.status, o.code AS org_code,
                   (SELECT count(*) FROM candidates c WHERE c.exam_id = e.id) AS candidates,
                   (SELECT count(*) FROM attempts a WHERE a.exam_id = e.id AND a.status = 'submitted') AS submitted
            FROM exams e JOIN orgs o ON o.id = e.org_id
            WHERE e.org_id = ANY($1::bigint[]) ORDER BY e.opens_at DESC, e.code
            """,
            await accounts.visible_org_ids(conn, user),
        )
    return render(request, "workspace/results_index.html", {"exams": listed})


async def _rows(request: web.Request) -> tuple[asyncpg.Record, list[dict], list[str], str | None, heads.SignedHead]:
    """The exam, its result rows (of the class asked for), every class, that
    class, and the exam's signed chain head as the rows were read."""
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        rows = await results.results_rows(conn, exam["code"], request.app[appkeys.SETTINGS].time_zone)
        head = await heads.sign_current(conn, exam["code"])
    classes = sorted({r["class"] for r in rows})
    chosen = request.query.get("class")
    if chosen in (None, ""):
        return exam, rows, classes, None, head
    if chosen not in classes:
        raise NotFound("unknown_class", f"exam {exam['code']} has no class {chosen!r}: choose one of the list")
    return exam, [r for r in rows if r["class"] == chosen], classes, chosen, head


async def results_exam(request: web.Request) -> web.Response:
    exam, rows, classes, chosen, head = await _rows(request)
    scored = [r["score"] for r in rows if r["score"] is not None]
    return render(
        request,
        "workspace/results_exam.html",
        {
            "exam": exam,
            "rows": rows,
            "classes": classes,
            "chosen": chosen,
            "submitted": len(scored),
            "provisional": sum(1 for r in rows if r["provisional"]),
            "mean": round_half_up(sum(scored, Decimal(0)) / len(scored), 2) if scored else None,
            "query": "?" + urlencode({"class": chosen}) if chosen else "",
            "head": head,
        },
    )


def _filename(exam: asyncpg.Record, chosen: str | None, ext: str) -> str:
    part = f"-{_SAFE_NAME.sub('_', chosen)}" if chosen else ""
    return f"{exam['code']}{part}-results.{ext}"


async def results_csv(request: web.Request) -> web.Response:
    exam, rows, _, chosen, head = await _rows(request)
    return web.Response(
        body=results.results_csv(rows, head).encode("utf-8"),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{_filename(exam, chosen, "csv")}"',
        },
    )


async def results_head(request: web.Request) -> web.Response:
    """The exam's signed chain head as a file (`cbt audit verify EXAM --head FILE`)."""
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _visible_exam(conn, request)
        head = await heads.sign_current(conn, exam["code"])
    return web.Response(
        body=head.text().encode("utf-8"),
        headers={
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{exam["code"]}-audit-head-{head.head.seq}.txt"',
        },
    )


async def results_xlsx(request: web.Request) -> web.Response:
    exam, rows, _, chosen, head = await _rows(request)
    out = io.BytesIO()
    # For people: sheet names and headers in the reader's language (the CSV keeps its keys).
    t = request.app[appkeys.CATALOGS].translator(language(request))
    results.write_results_xlsx(rows, out, head, results.xlsx_words(t), heads.row_words(t))
    return web.Response(
        body=out.getvalue(),
        headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": f'attachment; filename="{_filename(exam, chosen, "xlsx")}"',
        },
    )
