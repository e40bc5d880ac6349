"""The teachers' exam pages: build an exam in the browser (cbt.builder turns
the form into the exam file's spec, and reads it as the 2025 matrix),
download its matrix and bản đặc tả as xlsx, preview a form as a student,
import the roster, print tickets, open and close the exam.

Every change goes through the same functions as the `cbt exam ...` commands
(exams.create_exam, add_roster, issue_tickets, open_exam), so it is checked
and audited the same way. A teacher (or admin) sees and changes only the
exams of their organisation (a department: also of its schools); any other
exam is "unknown" (404), so its existence is not given away either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets

import asyncpg
from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cbt import accounts, assembly, audit, bank, builder, exams, notify, roster, seb, submission
from cbt import subjects as subject_list
from cbt.platform import appkeys, uploads
from cbt.platform.auth import redirect, require_user
from cbt.platform.clientaddr import public_url
from cbt.platform.errors import Conflict, NotFound, Problem, UserError
from cbt.platform.inputs import whole
from cbt.platform.templating import error_text, language, render

INTEGRITY_ACTIONS = ("count", "warn", "pause")


def _plain_form(form) -> dict:
    return {k: v for k, v in form.items() if isinstance(v, str)}


# The exam's releases as the pages name them: "demo-thpt 2025.1, thpt-a-toan 1",
# for one exam (by id) and in the exam list (a subquery per row).
_RELEASES_OF = (
    "SELECT string_agg(r.name || ' ' || r.version, ', ' ORDER BY x.position) FROM exam_releases x"
    " JOIN bank_releases r ON r.id = x.release_id WHERE x.exam_id = "
)
_RELEASES_LABEL = "(" + _RELEASES_OF + "e.id)"


async def _exam_for(conn: asyncpg.Connection, request: web.Request) -> asyncpg.Record:
    exam = await exams.visible_exam(conn, require_user(request), request.match_info["code"])
    label = await conn.fetchval(_RELEASES_OF + "$1", exam["id"])
    return {**exam, "releases_label": label}


def _confirmed(form) -> None:
    if form.get("confirm") != "1":
        raise UserError("confirm_required", "tick the confirmation box first: this change cannot be undone")


async def _release_orgs(conn: asyncpg.Connection, request: web.Request, exam=None) -> list[int]:
    """Whose bank releases the exam may use: those its organisation may use (an
    exam being made belongs to the teacher's organisation)."""
    return await bank.release_org_ids(conn, exam["org_id"] if exam is not None else require_user(request).org_id)


def _chosen(values) -> list[str]:
    """The release ids a form or query names (`release`, once per ticked box), blanks left out."""
    return [v for v in values if isinstance(v, str) and v.strip()]


async def _releases(conn: asyncpg.Connection, raws: list[str], org_ids: list[int]) -> list[asyncpg.Record]:
    """The releases ticked, each one these organisations may use, oldest first:
    the order the exam names them in (whose figure an item of two uses) does
    not then hang on how the page happened to list them."""
    out, seen = [], set()
    for raw in raws:
        release_id = whole(raw)
        if release_id is None:
            raise NotFound("unknown_release", "choose a bank release from the list (import one with `cbt bank import`)")
        if release_id not in seen:
            seen.add(release_id)
            out.append(await bank.get_release(conn, release_id, org_ids))
    if not out:
        raise NotFound("unknown_release", "choose a bank release from the list (import one with `cbt bank import`)")
    return sorted(out, key=lambda r: r["id"])


def _labels(releases) -> list[str]:
    return [f"{r['name']} {r['version']}" for r in releases]


# -- the list --------------------------------------------------------------------------


_INDEX = (
    "SELECT e.code, e.title, e.subject, e.status, e.opens_at, e.closes_at, e.time_zone, o.code AS org_code, "  # noqa: S608
    + _RELEASES_LABEL
    + " AS release,"
    " (SELECT count(*) FROM candidates c WHERE c.exam_id = e.id) AS candidates"
    " FROM exams e JOIN orgs o ON o.id = e.org_id"
    " WHERE e.org_id = ANY($1::bigint[]) ORDER BY e.opens_at DESC, e.code"
)


async def index(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        rows = await conn.fetch(_INDEX, await accounts.visible_org_ids(conn, user))
    return render(request, "workspace/exams.html", {"exams": rows})


# -- building --------------------------------------------------------------------------


async def _chooser(request, conn, *, exam=None, chosen=(), error: UserError | None = None) -> web.Response:
    """The releases to tick (the exam's, or those just tried, ticked), with why the choice was refused."""
    return render(
        request,
        "workspace/exams_release.html",
        {
            "releases": await bank.list_releases(conn, await _release_orgs(conn, request, exam)),
            "exam": exam,
            "chosen": set(chosen),
            "error": error,
            "error_text": error_text(request, error) if error else "",
        },
        status=error.status if error else 200,
    )


async def _builder_page(
    request, conn, *, releases, form: dict, exam=None, problems=(), status: int = 200, checked: bool = False
) -> web.Response:
    ids = [r["id"] for r in releases]
    avail = await builder.availability(conn, ids)
    scheme = await bank.level_scheme(conn, ids)
    sections = builder.sections_of(form)
    catalogs, lang = request.app[appkeys.CATALOGS], language(request)
    names = builder.level_names(scheme, lang)
    matrix = builder.matrix(builder.form_blueprint(sections)[0], avail, scheme, builder.targets_of(form))
    return render(
        request,
        "workspace/exams_builder.html",
        {
            "exam": exam,
            "releases": releases,
            "form": form,
            "sections": sections,
            "topics": avail.topics,
            "status": builder.blueprint_status(sections, avail, scheme),
            "problems": [builder.problem_text(catalogs, lang, p) for p in problems],
            "checked": checked,
            # The columns: the levels of the releases' scheme, by its names (Biết, Hiểu, Vận dụng).
            "levels": list(scheme.numbers),
            "level_names": names,
            "set_topics": avail.set_topics,
            "set_profiles": builder.set_profiles(avail, names),
            "matrix": matrix,
            "target_notes": builder.target_notes(matrix, catalogs.translator(lang), names, lang),
            "tolerance": builder.percent_text(builder.TARGET_TOLERANCE),
            "specification_given": any(k.startswith("specification.") and v for k, v in form.items()),
            "points_text": builder.points_text,
            "percent_text": builder.percent_text,
            "item_types": builder.ITEM_TYPES,
            "form_modes": builder.FORM_MODES,
            "integrity_actions": INTEGRITY_ACTIONS,
            # A row names its subject as the organisation's list does ("Toán"), not by its code.
            "subject_names": await subject_list.names(conn, await _release_orgs(conn, request, exam)),
            # And a topic by the name its release gives it ("Hàm số"), not by its code.
            "topic_names": await bank.topic_names(conn, ids),
        },
        status=status,
    )


async def _chosen_releases(request, conn, raws: list[str], exam=None):
    """The releases ticked, or the chooser page again saying why they cannot make one exam."""
    releases = await _releases(conn, raws, await _release_orgs(conn, request, exam))
    try:
        await exams.check_releases(conn, releases, "")
    except UserError as e:
        return None, await _chooser(request, conn, exam=exam, chosen=[r["id"] for r in releases], error=e)
    return releases, None


async def new_page(request: web.Request) -> web.Response:
    async with request.app[appkeys.POOL].acquire() as conn:
        raws = _chosen(request.query.getall("release", []))
        if not raws:
            return await _chooser(request, conn)
        releases, refused = await _chosen_releases(request, conn, raws)
        if refused is not None:
            return refused
        form = builder.default_form(releases[0]["subject"] or "")
        return await _builder_page(request, conn, releases=releases, form=form)


def _remove_section(form: dict, index: int) -> dict:
    n = whole(form.get("section_count"), builder.MAX_SECTIONS) or 1
    if n <= 1 or not 0 <= index < n:
        return form
    out = {
        k: v
        for k, v in form.items()
        if not k.startswith("s") or "." not in k or whole(k[1 : k.index(".")], builder.MAX_SECTIONS) is None
    }
    for key, value in form.items():
        head, dot, rest = key.partition(".")
        si = whole(head[1:], builder.MAX_SECTIONS) if dot and head[:1] == "s" else None
        if si is not None:
            if si != index:
                out[f"s{si - (si > index)}.{rest}"] = value
    out["section_count"] = str(n - 1)
    return out


def _form_action(form: dict) -> tuple[str, dict]:
    """What the builder's button asked for, and the form to show next."""
    action = form.get("action", "save")
    if action == "add_section":
        n = whole(form.get("section_count"), builder.MAX_SECTIONS) or 1
        if n >= builder.MAX_SECTIONS:
            raise UserError("too_many_sections", f"an exam has at most {builder.MAX_SECTIONS} sections")
        form = dict(form, section_count=str(n + 1))
        form.setdefault(f"s{n}.title", f"Phần {n + 1}")
        return "edit", form
    removed = whole(action.split(":", 1)[1], builder.MAX_SECTIONS) if action.startswith("remove_section:") else None
    if removed is not None:
        return "edit", _remove_section(form, removed)
    if action == "check":
        return "check", form
    return "save", form


async def _checked_spec(request, conn, releases, form: dict) -> tuple[exams.ExamSpec | None, list[Problem]]:
    """The spec for the form, or the problems that stop it (the blueprint's short cells too)."""
    # Levels are checked against the releases' own scheme (no level 4 in a 2025 bank).
    scheme = await bank.level_scheme(conn, [r["id"] for r in releases])
    try:
        _, spec = builder.build_spec(form, _labels(releases), scheme)
    except exams.ExamFileError as e:
        return None, list(e.details["problems"])
    try:
        await exams.check_releases(conn, releases, spec.subject)
    except UserError as e:
        return None, [error_text(request, e)]
    # Counting is enough here (create_exam checks again against the items themselves).
    pool = (await builder.availability(conn, [r["id"] for r in releases])).pool()
    short = exams.describe_shortfalls(assembly.shortfalls(spec.blueprint, pool))
    if short:
        return None, [
            Problem("the blueprint asks for more approved items than the release has:", "blueprint_short"),
            *short,
        ]
    return spec, []


async def create(request: web.Request) -> web.Response:
    user = require_user(request)
    post = await request.post()
    form = _plain_form(post)
    async with request.app[appkeys.POOL].acquire() as conn:
        releases = await _releases(conn, _chosen(post.getall("release", [])), await _release_orgs(conn, request))
        action, form = _form_action(form)
        if action != "save":
            return await _builder_page(request, conn, releases=releases, form=form, checked=action == "check")
        spec, problems = await _checked_spec(request, conn, releases, form)
        if spec is not None:
            try:
                await exams.create_exam(conn, spec, user.org_code)
            except UserError as e:
                problems = [error_text(request, e)]
        if problems:
            return await _builder_page(
                request, conn, releases=releases, form=form, problems=problems, status=400, checked=True
            )
    return redirect(request, "ws_exam", code=spec.code)


def _must_be_draft(exam) -> None:
    if exam["status"] != "draft":
        raise Conflict("exam_not_draft", f"exam {exam['code']} is {exam['status']}: only a draft exam can be edited")


async def edit_page(request: web.Request) -> web.Response:
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _exam_for(conn, request)
        _must_be_draft(exam)
        try:
            form = builder.form_from_spec(exams.spec_from_json(json.loads(exam["spec"])))
        except exams.ExamFileError as e:
            # The error page, with the problem said in the reader's language too.
            catalogs, lang = request.app[appkeys.CATALOGS], language(request)
            return render(
                request,
                "error.html",
                {
                    "status": e.status,
                    "code": e.code,
                    "message": error_text(request, e),
                    "problems": [builder.problem_text(catalogs, lang, p) for p in e.details["problems"]],
                },
                status=e.status,
            )
        current = await exams.release_ids(conn, exam["id"])
        raws = _chosen(request.query.getall("release", []))
        if "release" in request.query and not raws:
            return await _chooser(request, conn, exam=exam, chosen=current)
        releases, refused = await _chosen_releases(request, conn, raws or [str(i) for i in current], exam)
        if refused is not None:
            return refused
        return await _builder_page(request, conn, releases=releases, form=form, exam=exam)


async def update(request: web.Request) -> web.Response:
    user = require_user(request)
    post = await request.post()
    form = _plain_form(post)
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _exam_for(conn, request)
        _must_be_draft(exam)
        form["code"] = exam["code"]  # the code names the exam everywhere: it stays
        releases = await _releases(conn, _chosen(post.getall("release", [])), await _release_orgs(conn, request, exam))
        action, form = _form_action(form)
        if action != "save":
            return await _builder_page(
                request, conn, releases=releases, form=form, exam=exam, checked=action == "check"
            )
        spec, problems = await _checked_spec(request, conn, releases, form)
        if problems:
            return await _builder_page(
                request, conn, releases=releases, form=form, exam=exam, problems=problems, status=400, checked=True
            )
        await update_exam(conn, exam, [r["id"] for r in releases], spec, user.username)
    return redirect(request, "ws_exam", code=exam["code"])


async def update_exam(conn: asyncpg.Connection, exam, release_ids: list[int], spec: exams.ExamSpec, by: str) -> None:
    """Store a draft exam's new spec and releases, audited like its creation."""
    late_until = min(spec.opens_at + dt.timedelta(minutes=spec.late_entry_minutes), spec.closes_at)
    async with conn.transaction():
        done = await conn.execute(
            """
            UPDATE exams SET title = $2, subject = $3, release_id = $4, spec = $5, duration_seconds = $6,
                   opens_at = $7, closes_at = $8, late_entry_until = $9, grace_seconds = $10, show_score = $11,
                   time_zone = $12
            WHERE id = $1 AND status = 'draft'
            """,
            exam["id"],
            spec.title,
            spec.subject,
            release_ids[0],
            json.dumps(spec.to_json()),
            spec.duration_minutes * 60,
            spec.opens_at,
            spec.closes_at,
            late_until,
            spec.grace_seconds,
            spec.show_score,
            spec.time_zone or None,
        )
        if done != "UPDATE 1":
            raise Conflict("exam_not_draft", f"exam {exam['code']} was opened meanwhile: it can no longer be edited")
        await exams.set_releases(conn, exam["id"], release_ids)
        await audit.append(
            conn,
            exam["id"],
            "staff",
            "exam_edit",
            {"edit": "update", "by": by, "spec_sha256": exams.sha256_hex(spec.to_json())},
        )


async def blueprint_json(request: web.Request) -> web.Response:
    """Live counts for the matrix: what each cell's releases have together, the
    short cells, the totals, and the summary as the 2025 template reads it
    (`matrix_html`, the page's own fragment, and `target_notes`)."""
    async with request.app[appkeys.POOL].acquire() as conn:
        try:
            releases = await _releases(
                conn, _chosen(request.query.getall("release", [])), await _release_orgs(conn, request)
            )
        except UserError as e:  # a .json address answers JSON, whatever the Accept header says
            return web.json_response(e.to_json(), status=e.status)
        ids = [r["id"] for r in releases]
        avail = await builder.availability(conn, ids)
        scheme = await bank.level_scheme(conn, ids)
        topic_names = await bank.topic_names(conn, ids)
    sections = builder.sections_of(request.query)
    lang = language(request)
    names = builder.level_names(scheme, lang)
    matrix = builder.matrix(builder.form_blueprint(sections)[0], avail, scheme, builder.targets_of(request.query))
    fragment = render(
        request,
        "workspace/exams_matrix.html",
        {
            "matrix": matrix,
            "level_names": names,
            "topic_names": topic_names,
            "points_text": builder.points_text,
            "percent_text": builder.percent_text,
        },
    )
    body = builder.blueprint_status(sections, avail, scheme)
    body["matrix_html"] = fragment.text
    body["target_notes"] = builder.target_notes(matrix, request.app[appkeys.CATALOGS].translator(lang), names, lang)
    return web.json_response(body)


# The grades of the items a blueprint may draw, for the matrix's title block.
_GRADES = """
SELECT DISTINCT b.grade FROM bank_items b LEFT JOIN bank_sets s ON s.id = b.set_pk
WHERE b.status = 'approved' AND b.grade IS NOT NULL AND coalesce(s.topic, b.topic) = ANY($2::text[])
  AND b.id IN (SELECT ri.item_pk FROM release_items ri WHERE ri.release_id = ANY($1::bigint[]))
ORDER BY b.grade
"""


async def matrix_xlsx(request: web.Request) -> web.Response:
    """The exam's matrix and bản đặc tả as an xlsx workbook, in the layout schools
    hand to the department: from the exam as saved, for whoever may see the exam."""
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _exam_for(conn, request)
        spec = exams.spec_from_json(json.loads(exam["spec"]))
        ids = await exams.release_ids(conn, exam["id"])
        avail = await builder.availability(conn, ids)
        scheme = await bank.level_scheme(conn, ids)
        topic_names = await bank.topic_names(conn, ids)
        subject_names = await subject_list.names(conn, await _release_orgs(conn, request, exam))
        topics = sorted({r.topic for s in spec.blueprint.sections for r in s.rows})
        grades = [str(r["grade"]) for r in await conn.fetch(_GRADES, ids, topics)]
    lang = language(request)
    t = request.app[appkeys.CATALOGS].translator(lang)
    matrix = builder.matrix(spec.blueprint, avail, scheme, spec.level_targets)
    heading = builder.Heading(
        school=exam["org_name"],
        title=spec.title,
        code=spec.code,
        subject=subject_names.get(spec.subject, spec.subject) or "-",
        grade=", ".join(grades) or "-",
        minutes=spec.duration_minutes,
    )
    body = builder.matrix_xlsx(
        matrix, heading, t, builder.level_names(scheme, lang), topic_names, spec.specification, lang
    )
    return web.Response(
        body=body,
        headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": f'attachment; filename="{exam["code"]}-ma-tran.xlsx"',
        },
    )


# -- one exam --------------------------------------------------------------------------


async def _exam_context(conn, exam) -> dict:
    spec = exams.spec_from_json(json.loads(exam["spec"]))
    candidates = await conn.fetch(
        """
        SELECT c.code, c.full_name, c.date_of_birth, c.class_name, c.room, c.time_multiplier,
               c.ticket_hash IS NOT NULL AS has_ticket,
               EXISTS (SELECT 1 FROM candidate_forms f WHERE f.candidate_id = c.id) AS has_form,
               (SELECT a.status FROM attempts a WHERE a.candidate_id = c.id ORDER BY a.id DESC LIMIT 1) AS attempt
        FROM candidates c WHERE c.exam_id = $1 ORDER BY c.room, c.full_name, c.code
        """,
        exam["id"],
    )
    rooms = sorted({c["room"] for c in candidates}, key=roster.room_sort_key)
    items = sum(r.questions for s in spec.blueprint.sections for r in s.rows)
    running = sum(c["attempt"] == "in_progress" for c in candidates)
    # Who would lose a printed ticket if tickets were issued again (those who started keep theirs).
    ticketed = sum(c["has_ticket"] and c["attempt"] is None for c in candidates)
    return {
        "exam": exam,
        "spec": spec,
        "candidates": candidates,
        "rooms": rooms,
        "item_count": items,
        "running": running,
        "ticketed": ticketed,
        "seb_assurance": seb.assurance(spec.policies.get("seb")),
    }


async def exam_page(request: web.Request) -> web.Response:
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _exam_for(conn, request)
        ctx = await _exam_context(conn, exam)
    return render(request, "workspace/exams_exam.html", ctx | {"problems": [], "notice": request.query.get("done")})


async def preview(request: web.Request) -> web.Response:
    """One form drawn with a preview seed, through the same assembly and rendering
    as delivery, shown read-only: what a student would get, without any key."""
    raw = request.query.get("seed", "1")
    if whole(raw, 1_000_000, low=1) is None:
        raise UserError("bad_seed", "seed must be a whole number from 1 to 1000000")
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _exam_for(conn, request)
        spec = exams.spec_from_json(json.loads(exam["spec"]))
        ids = await exams.release_ids(conn, exam["id"])
        pool = await exams.load_pool(conn, ids)
        seed = hashlib.sha256(f"cbt-preview/{exam['code']}/{raw}".encode()).digest()
        try:
            form = assembly.draw_form(
                spec.blueprint, pool, seed, shuffle_items=spec.shuffle_items, shuffle_options=spec.shuffle_options
            )
        except assembly.InfeasibleBlueprint as e:
            raise UserError("infeasible_blueprint", str(e), count=len(e.shortfalls)) from None
        rendered = await exams.render_items(conn, ids, [fi.pk for fi in form.items])
    payload, _ = assembly.build_form_payload(form, rendered)
    seed_number = int(raw)
    return render(
        request,
        "workspace/exams_preview.html",
        {"exam": exam, "spec": spec, "form": payload, "seed": seed_number, "next_seed": seed_number % 1_000_000 + 1},
    )


def _in_reader_language(request: web.Request, problems: list[dict]) -> list[dict]:
    """Roster problems as the page shows them: each in the reader's language
    (`roster.problem.<key>`, or `error.<code>` for a refusal that is not about
    a cell), the English message where the catalog has no text."""
    catalogs, lang = request.app[appkeys.CATALOGS], language(request)
    shown = []
    for p in problems:
        # The problem's own text, else its code's (a column of no text of its own), else the refusal's.
        text = None
        for name in (f"roster.problem.{p.get('key')}", f"roster.problem.{p['code']}", f"error.{p['code']}"):
            text = text or catalogs.lookup(lang, name)
        try:
            message = text.format(**p.get("details", {})) if text else p["message"]
        except (KeyError, IndexError):
            message = p["message"]
        shown.append(p | {"message": message})
    return shown


async def roster_upload(request: web.Request) -> web.Response:
    post = await request.post()
    upload = post.get("roster")
    pool = request.app[appkeys.POOL]
    async with pool.acquire() as conn:
        exam = await _exam_for(conn, request)
    if exam["status"] == "closed":
        raise Conflict("exam_closed", f"exam {exam['code']} is closed: its roster cannot change")
    problems, total = [], 0
    if upload is None or isinstance(upload, str):
        problems = [
            {
                "row": None,
                "column": None,
                "message": "choose the roster file (CSV or .xlsx) to import",
                "code": "no_roster_file",
            }
        ]
    else:
        try:
            # Read in the reading process, holding no database connection meanwhile.
            candidates = await uploads.off_loop(
                roster.parse_roster, upload.file.read(), upload.filename or "roster.csv"
            )
            async with pool.acquire() as conn:
                count = await exams.add_roster(conn, exam["code"], candidates)
        except roster.RosterError as e:
            problems = [p.to_json() for p in e.problems[: roster.MAX_REPORTED]]
            total = e.details["problem_count"]
        except UserError as e:
            problems = [
                {"row": None, "column": None, "message": error_text(request, e), "code": e.code, "details": e.details}
            ]
    if problems:
        async with pool.acquire() as conn:
            ctx = await _exam_context(conn, exam)
        return render(
            request,
            "workspace/exams_exam.html",
            ctx
            | {
                "problems": _in_reader_language(request, problems),
                "notice": None,
                "more_problems": max(0, total - len(problems)),
            },
            status=400,
        )
    return redirect(request, "ws_exam", {"done": "roster", "n": count}, code=exam["code"])


async def roster_template(request: web.Request) -> web.Response:
    """The roster workbook to fill in (the headers the import takes, an example row)."""
    return web.Response(
        body=roster.template_xlsx(),
        headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": 'attachment; filename="danh-sach-thi-sinh.xlsx"',
        },
    )


# -- tickets ----------------------------------------------------------------------------
#
# Issuing is a POST that redirects to a page showing the tickets once: reloading
# that page issues nothing (were it the POST's answer, a reload would issue
# new tickets and the printed ones would stop working). The server keeps no ticket, only its hash, so
# the new tickets travel to that page in a ticket_sheets row (migration 018):
# encrypted under a key derived from a random id that only the redirect
# carries, found by the id's hash, for the teacher who issued them, deleted
# when shown or after SHEET_MINUTES.

SHEET_MINUTES = 10


def _sheet_keys(sheet_id: str) -> tuple[bytes, bytes]:
    """(the row's key, the encryption key) of a sheet id."""
    raw = sheet_id.encode()
    return (
        hashlib.sha256(b"cbt ticket sheet row\x00" + raw).digest(),
        hashlib.sha256(b"cbt ticket sheet key\x00" + raw).digest(),
    )


async def _keep_sheet(conn: asyncpg.Connection, exam_id: int, user_id: int, rows: list[dict]) -> str:
    sheet_id = secrets.token_urlsafe(32)
    row_key, key = _sheet_keys(sheet_id)
    nonce = secrets.token_bytes(12)
    sheet = nonce + AESGCM(key).encrypt(nonce, json.dumps(rows).encode(), row_key)
    await conn.execute("DELETE FROM ticket_sheets WHERE expires_at < now()")
    await conn.execute(
        "INSERT INTO ticket_sheets (id_sha256, exam_id, issued_by, sheet, expires_at)"
        " VALUES ($1, $2, $3, $4, now() + make_interval(mins => $5))",
        row_key,
        exam_id,
        user_id,
        sheet,
        SHEET_MINUTES,
    )
    return sheet_id


async def _take_sheet(conn: asyncpg.Connection, exam_id: int, user_id: int, sheet_id: str) -> list[dict] | None:
    """The tickets kept under this id for this teacher, once: the row goes as it is read."""
    row_key, key = _sheet_keys(sheet_id)
    await conn.execute("DELETE FROM ticket_sheets WHERE expires_at < now()")
    sheet = await conn.fetchval(
        "DELETE FROM ticket_sheets WHERE id_sha256 = $1 AND exam_id = $2 AND issued_by = $3 AND expires_at >= now()"
        " RETURNING sheet",
        row_key,
        exam_id,
        user_id,
    )
    if sheet is None:
        return None
    try:
        return json.loads(AESGCM(key).decrypt(sheet[:12], sheet[12:], row_key))
    except InvalidTag:  # pragma: no cover - the row was found by the same id
        return None


async def tickets(request: web.Request) -> web.Response:
    user = require_user(request)
    post = await request.post()
    room = (post.get("room") or "").strip() or None
    pool = request.app[appkeys.POOL]
    async with pool.acquire() as conn:
        exam = await _exam_for(conn, request)
        if exam["status"] == "closed":
            raise Conflict("exam_closed", f"exam {exam['code']} is closed: no more tickets")
        try:
            # One transaction: tickets that replaced the old ones are never lost before they are shown.
            async with conn.transaction():
                rows = await exams.issue_tickets(conn, exam["code"], room, reissue=post.get("confirm") == "1")
                sheet_id = await _keep_sheet(conn, exam["id"], user.id, rows)
        except UserError as e:
            ctx = await _exam_context(conn, exam)
            return render(
                request,
                "workspace/exams_exam.html",
                ctx
                | {"problems": [], "notice": None, "tickets_error": e, "tickets_error_text": error_text(request, e)},
                status=e.status,
            )
    return redirect(request, "ws_exam_ticket_sheet", code=exam["code"], sheet=sheet_id)


async def ticket_sheet(request: web.Request) -> web.Response:
    """The tickets just issued, shown once; after that (or SHEET_MINUTES) a page saying how to get new ones."""
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _exam_for(conn, request)
        rows = await _take_sheet(conn, exam["id"], user.id, request.match_info["sheet"])
    if rows is None:
        return render(
            request, "workspace/exams_tickets_gone.html", {"exam": exam, "minutes": SHEET_MINUTES}, status=410
        )
    return render(
        request,
        "exam/tickets.html",
        {
            "exam": {"title": exam["title"]},
            "rooms": roster.tickets_by_room(rows),
            "address": public_url(request) + "/exam",
        },
    )


async def open_(request: web.Request) -> web.Response:
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _exam_for(conn, request)
        _confirmed(form)
        if exam["status"] == "open":
            raise Conflict("exam_open", f"exam {exam['code']} is already open")
        await exams.open_exam(conn, exam["code"])
    return redirect(request, "ws_exam", {"done": "open"}, code=exam["code"])


_IN_PROGRESS = "SELECT id FROM attempts WHERE exam_id = $1 AND status = 'in_progress' ORDER BY id"


async def close(request: web.Request) -> web.Response:
    """Close the exam: nobody may start or write any more. Attempts still in
    progress are submitted as they are, once the closer has confirmed how
    many they are (a closed exam must not leave students writing into it)."""
    user = require_user(request)
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await _exam_for(conn, request)
        _confirmed(form)
        if exam["status"] != "open":
            raise Conflict("exam_not_open", f"exam {exam['code']} is {exam['status']}: only an open exam can be closed")
        running = len(await conn.fetch(_IN_PROGRESS, exam["id"]))
        if running and form.get("submit_running") != "1":
            raise Conflict(
                "attempts_in_progress",
                f"{running} candidate(s) are still writing exam {exam['code']}: tick the box that submits "
                "their answers as they are now, or wait until they have finished",
                running=running,
                exam=exam["code"],
            )
        async with conn.transaction():
            await conn.execute("UPDATE exams SET status = 'closed' WHERE id = $1", exam["id"])
            await audit.append(
                conn,
                exam["id"],
                "staff",
                "exam_edit",
                {"edit": "close", "by": user.username, "submitted_running": running},
            )
        # After the commit: a Start racing with the close may still create an
        # attempt; the deadline sweep submits those of a closed exam too.
        for row in await conn.fetch(_IN_PROGRESS, exam["id"]):
            await submission.finalize(request.app, conn, row["id"], "close")
        await notify.notify(conn, exam["id"])
    return redirect(request, "ws_exam", {"done": "close"}, code=exam["code"])
