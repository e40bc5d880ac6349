"""The workspace pages: items written in the browser, the review queue and
subject assignment. Handlers parse the request, call cbt.authoring, render."""

from __future__ import annotations

from aiohttp import web

from cbt import accounts, authoring, results
from cbt import subjects as subject_list
from cbt.exams import student_view
from cbt.platform import appkeys
from cbt.platform.auth import redirect, require_user
from cbt.platform.errors import NotFound, UserError
from cbt.platform.inputs import path_id
from cbt.platform.templating import error_text, render

LETTERS = "ABCDEFGHIJKLMNOP"


def _pk(request: web.Request) -> int:
    return path_id(request, "pk", NotFound("unknown_item", "no such item in your organisation's workspace"))


def _filter(query) -> authoring.DraftFilter:
    def number(name: str, allowed: range) -> int | None:
        raw = query.get(name, "").strip()
        if not raw:
            return None
        if not raw.isdigit() or int(raw) not in allowed:
            raise UserError("bad_filter", f"{name} must be a number from {allowed.start} to {allowed.stop - 1}")
        return int(raw)

    kind, state = query.get("type", "").strip(), query.get("state", "").strip()
    if kind and kind not in authoring.TYPES:
        raise UserError("bad_filter", f"type must be one of {', '.join(authoring.TYPES)}")
    if state and state not in authoring.STATES:
        raise UserError("bad_filter", f"state must be one of {', '.join(authoring.STATES)}")
    return authoring.DraftFilter(
        subject=query.get("subject", "").strip()[:64],
        grade=number("grade", range(1, 13)),
        topic=query.get("topic", "").strip()[:100],
        level=number("level", range(1, 5)),
        type=kind,
        state=state,
        text=query.get("q", "").strip()[:200],
    )


async def index(request: web.Request) -> web.Response:
    user = require_user(request)
    f = _filter(request.query)
    async with request.app[appkeys.POOL].acquire() as conn:
        items = await authoring.search(conn, user, f)
        facets = await authoring.facets(conn, user)
        names = await subject_list.names(conn, await accounts.visible_org_ids(conn, user))
    return render(
        request,
        "workspace/items.html",
        {
            "items": items,
            "filter": f,
            "facets": facets,
            "levels": authoring.LEVELS,
            "types": authoring.TYPES,
            "states": authoring.STATES,
            "done": request.query.get("done", ""),
            "subject_names": names,
        },
    )


# ---------------------------------------------------------------- editor


def _form_values(form) -> dict:
    """What the teacher typed, to show again after a refused save."""
    values = {k: v for k, v in form.items() if isinstance(v, str) and k not in ("csrf_token", "key")}
    values["keys"] = ",".join(authoring._keys(form))
    return values


def _preview(item, media: dict[str, bytes]) -> dict | None:
    return None if item is None else {"item": item, "view": student_view(item, media)}


def _editor(
    request: web.Request,
    *,
    values: dict,
    subjects: list[subject_list.Subject],
    row=None,
    problems=None,
    preview=None,
    status: int = 200,
    extra: dict | None = None,
) -> web.Response:
    ctx = {
        "v": values,
        "row": row,
        "problems": problems or {},
        "preview": preview,
        "types": authoring.TYPES,
        # Chosen from the organisation's list (the item's, when it exists), never typed.
        "subjects": subjects,
        "subject_codes": {s.code for s in subjects},
        "levels": authoring.LEVELS,
        "option_ids": authoring.OPTION_IDS,
        "statement_ids": authoring.STATEMENT_IDS,
        "short_formats": authoring.SHORT_FORMATS,
        "letters": LETTERS,
        "events": [],
        "media": {},
        "history": [],
        "versions": [],
        "notice": request.query.get("done", ""),
        "may_edit": True,
        "error": None,
    }
    ctx.update(extra or {})
    return render(request, "workspace/items_edit.html", ctx, status=status)


async def new_page(request: web.Request) -> web.Response:
    user = require_user(request)
    grade = request.query.get("grade", "").strip()
    async with request.app[appkeys.POOL].acquire() as conn:
        listed = await subject_list.list_for(conn, user.org_id)
        # The subject asked for, else the first one the teacher writes for.
        found = subject_list.find(listed, request.query.get("subject", "")[:64])
        mine = await authoring.subjects_of(conn, user.id)
        subject = found.code if found else next((s.code for s in listed if s.code in mine), "")
        suggested = await authoring.suggest_id(conn, subject, int(grade) if grade.isdigit() else None)
    values = {
        "id": suggested,
        "type": "single",
        "subject": subject,
        "grade": grade,
        "level": "1",
        "points": "0.25",
        "lang": "vi",
        "shuffle": "on",
        "short_format": "vn-numeric",
    }
    return _editor(request, values=values, subjects=listed)


async def create(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        try:
            pk = await authoring.create_item(conn, user, form)
        except authoring.InvalidItem as e:
            return _editor(
                request,
                values=_form_values(form),
                problems=e.checked.problems,
                preview=_preview(e.checked.item, {}),
                status=400,
                subjects=await subject_list.list_for(conn, user.org_id),
            )
        except UserError as e:
            if e.details.get("field") != "id":
                raise
            return _editor(
                request,
                values=_form_values(form),
                problems={"id": [error_text(request, e)]},
                status=409,
                subjects=await subject_list.list_for(conn, user.org_id),
            )
    return redirect(request, "ws_item", {"done": "saved"}, pk=pk)


async def _item_context(conn, user, row) -> dict:
    item = authoring.item_from_draft(row["source"])
    media = await authoring.media_of(conn, row["id"])
    bank_pk = await authoring.bank_pk(conn, row["item_id"], row["version"])
    history = []
    if bank_pk is not None:
        history = await results.item_history(conn, bank_pk, await accounts.visible_org_ids(conn, user))
    may_change = row["author_id"] == user.id or user.role == "admin"
    return {
        "item": item,
        "media": media,
        "history": history,
        "events": await authoring.events(conn, row["id"]),
        "versions": await authoring.versions(conn, user, row["item_id"]),
        "in_bank": bank_pk is not None,
        "may_change": may_change and row["state"] in authoring.EDITABLE,
        # Approved (or imported) versions are frozen: saving makes the next version.
        "may_edit": (may_change and row["state"] in authoring.EDITABLE) or row["state"] == "approved",
        "may_retire": may_change and row["state"] != "retired",
        "may_review": (
            user.role == "reviewer"
            and row["state"] == "submitted"
            and row["author_id"] != user.id
            and row["subject"] in await authoring.subjects_of(conn, user.id)
        ),
        "key_letters": [LETTERS[i] for i, o in enumerate(item.options) if o.correct],
    }


async def item_page(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        row = await authoring.get_draft(conn, user, _pk(request))
        extra = await _item_context(conn, user, row)
        listed = await subject_list.list_for(conn, row["org_id"])
    values = {"id": row["item_id"], **authoring.item_to_fields(extra["item"])}
    return _editor(
        request, values=values, row=row, preview=_preview(extra["item"], extra["media"]), extra=extra, subjects=listed
    )


async def save(request: web.Request) -> web.Response:
    user = require_user(request)
    pk = _pk(request)
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        try:
            new_pk = await authoring.save_item(conn, user, pk, form)
        except authoring.InvalidItem as e:
            row = await authoring.get_draft(conn, user, pk)
            extra = await _item_context(conn, user, row)
            values = {**_form_values(form), "id": row["item_id"]}
            return _editor(
                request,
                values=values,
                row=row,
                problems=e.checked.problems,
                preview=_preview(e.checked.item, extra["media"]),
                status=400,
                extra=extra,
                subjects=await subject_list.list_for(conn, row["org_id"]),
            )
    done = "new_version" if new_pk != pk else "saved"
    return redirect(request, "ws_item", {"done": done}, pk=new_pk)


async def preview(request: web.Request) -> web.Response:
    """The editor's current content as the student will see it (an HTML fragment; never the key)."""
    user = require_user(request)
    form = await request.post()
    media: dict[str, bytes] = {}
    raw_pk = str(form.get("pk", ""))
    item_id = str(form.get("id", "")).strip() or "PREVIEW"
    async with request.app[appkeys.POOL].acquire() as conn:
        if raw_pk.isdigit() and len(raw_pk) < 19:
            row = await authoring.get_draft(conn, user, int(raw_pk))
            media = await authoring.media_of(conn, row["id"])
            item_id = row["item_id"]
    checked = authoring.check_fields(
        form, item_id=item_id if len(item_id) <= 64 else "PREVIEW", version=1, media_paths=set(media)
    )
    return render(
        request,
        "workspace/items_preview.html",
        {
            "preview": _preview(checked.item, media),
            "problems": checked.problems,
            "letters": LETTERS,
            "fragment": True,
        },
    )


async def upload_media(request: web.Request) -> web.Response:
    user = require_user(request)
    pk = _pk(request)
    form = await request.post()
    upload = form.get("image")
    if not hasattr(upload, "file"):
        raise UserError("empty_file", "choose an image file to upload")
    data = upload.file.read(authoring.MAX_MEDIA_BYTES + 1)
    async with request.app[appkeys.POOL].acquire() as conn:
        await authoring.add_media(conn, user, pk, upload.filename or "", data)
    return redirect(request, "ws_item", {"done": "media"}, pk=pk)


async def duplicate(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        new_pk = await authoring.duplicate_item(conn, user, _pk(request), str(form.get("new_id", "")))
    return redirect(request, "ws_item", {"done": "duplicated"}, pk=new_pk)


async def retire(request: web.Request) -> web.Response:
    user = require_user(request)
    pk = _pk(request)
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        await authoring.retire_item(conn, user, pk, str(form.get("comment", "")))
    return redirect(request, "ws_item", {"done": "retired"}, pk=pk)


def _chosen(form) -> list[int]:
    out = []
    for raw in form.getall("pk", []):
        if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 18:
            raise UserError("bad_choice", "the chosen items are not valid: reload the list and choose again")
        out.append(int(raw))
    return out


async def submit(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        await authoring.submit_items(conn, user, _chosen(form))
    back = str(form.get("back", ""))
    if back.isdigit():
        return redirect(request, "ws_item", {"done": "submitted"}, pk=back)
    return redirect(request, "ws_items", {"done": "submitted"})


async def export(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    chosen = _chosen(form)
    async with request.app[appkeys.POOL].acquire() as conn:
        text = await authoring.export_yaml(conn, user, chosen or None)
    return web.Response(
        body=text.encode("utf-8"),
        headers={
            "Content-Type": "application/yaml; charset=utf-8",
            "Content-Disposition": 'attachment; filename="cbt-items.yaml"',
        },
    )


async def import_page(request: web.Request) -> web.Response:
    require_user(request)
    return render(request, "workspace/items_import.html", {"error": None, "problems": [], "imported": None})


async def import_submit(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    upload = form.get("file")
    if not hasattr(upload, "file"):
        return render(
            request,
            "workspace/items_import.html",
            {
                "error": UserError("empty_file", "choose a .xlsx or .yaml file to import"),
                "problems": [],
                "imported": None,
            },
            status=400,
        )
    name = upload.filename or ""
    data = upload.file.read(authoring.MAX_IMPORT_BYTES + 1)
    async with request.app[appkeys.POOL].acquire() as conn:
        try:
            if name.lower().endswith(".xlsx") or data[:2] == b"PK":
                pks = await authoring.import_xlsx(conn, user, data, name)
            elif name.lower().endswith((".yaml", ".yml")):
                pks = await authoring.import_yaml(conn, user, data, name)
            else:
                raise UserError("bad_file_type", "import a spreadsheet (.xlsx, from the template) or a .yaml file")
        except UserError as e:
            return render(
                request,
                "workspace/items_import.html",
                {"error": e, "problems": e.details.get("problems", []), "imported": None},
                status=e.status,
            )
    return render(request, "workspace/items_import.html", {"error": None, "problems": [], "imported": len(pks)})


# ---------------------------------------------------------------- review


async def review_queue(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        queue = await authoring.review_queue(conn, user)
        subjects = await authoring.subjects_of(conn, user.id)
        names = await subject_list.names(conn, await accounts.visible_org_ids(conn, user))
    return render(
        request,
        "workspace/review.html",
        {"queue": queue, "subjects": subjects, "subject_names": names, "done": request.query.get("done", "")},
    )


async def review_decide(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    decision = str(form.get("decision", ""))
    async with request.app[appkeys.POOL].acquire() as conn:
        await authoring.review_item(conn, user, _pk(request), decision, str(form.get("comment", "")))
    return redirect(request, "ws_review", {"done": decision})


async def subjects_page(
    request: web.Request, *, error: UserError | None = None, status: int = 200, done: str = "", username: str = ""
) -> web.Response:
    """The organisation's list of subjects, what is in use but not on it, and who writes and reviews what."""
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        orgs = await accounts.visible_org_ids(conn, user)
        staff = await authoring.staff_with_subjects(conn, user)
        listed = await subject_list.list_for(conn, user.org_id)
        org_codes = dict(
            await conn.fetch("SELECT id, code FROM orgs WHERE id = ANY($1::bigint[])", list({s.org_id for s in listed}))
        )
        missing = await subject_list.not_in_list(conn, orgs)
        names = await subject_list.names(conn, orgs)
    wanted = (username or request.query.get("user", "")).lower()
    chosen = next((s for s in staff if s["username"] == wanted), staff[0] if staff else None)
    return render(
        request,
        "workspace/review_subjects.html",
        {
            "staff": staff,
            "listed": listed,
            "org_codes": org_codes,
            "missing": missing,
            "subject_names": names,
            "chosen": chosen,
            "error": error,
            "done": done or request.query.get("done", ""),
        },
        status=status,
    )


async def subjects_submit(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    username = str(form.get("username", ""))
    # The page's boxes, one per subject ticked; a text of codes or names from a script.
    chosen = str(form["subjects"]) if "subjects" in form else [str(v) for v in form.getall("subject", [])]
    async with request.app[appkeys.POOL].acquire() as conn:
        try:
            await authoring.set_subjects(conn, username, chosen, by=user)
        except UserError as e:
            return await subjects_page(request, error=e, status=e.status, username=username)
    return redirect(request, "ws_subjects", {"done": "saved", "user": username})


async def subject_list_submit(request: web.Request) -> web.Response:
    """Add or rename a subject of the administrator's own organisation, or remove one nobody uses."""
    user = require_user(request)
    form = await request.post()
    code = str(form.get("code", ""))
    async with request.app[appkeys.POOL].acquire() as conn:
        try:
            if form.get("action") == "remove":
                await subject_list.remove(conn, user.org_id, code)
                done = "list_removed"
            else:
                await subject_list.save(conn, user.org_id, code, str(form.get("name", "")))
                done = "list_saved"
        except UserError as e:
            if e.status == 404:
                raise
            return await subjects_page(request, error=e, status=e.status)
    return redirect(request, "ws_subjects", {"done": done})
