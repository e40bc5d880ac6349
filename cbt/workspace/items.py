"""The workspace pages: items and item sets written in the browser, the review
queue, subject assignment and the level scheme. Handlers parse the request,
call cbt.authoring, render.

The set editor is the item editor's page in set mode (``?type=set``): the
passage, then its questions, each with an item's fields. The page's script
adds, removes and reorders questions in place; without it, the same buttons
send the form back and the page comes back changed, nothing saved."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse

from aiohttp import web

from cbt import accounts, authoring, results
from cbt import subjects as subject_list
from cbt.exams import passage_view, student_view
from cbt.platform import appkeys, uploads
from cbt.platform.auth import redirect, require_user
from cbt.platform.errors import NotFound, UserError
from cbt.platform.inputs import path_id
from cbt.platform.templating import error_text, render
from itembank.formats import foreign
from itembank.levels import LEGACY, LevelScheme
from itembank.model import ItemSet, Status

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
    if kind and kind not in authoring.KINDS:
        raise UserError("bad_filter", f"type must be one of {', '.join(authoring.KINDS)}")
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


def level_context(levels: LevelScheme) -> dict:
    """What a page needs to name levels: the scheme's numbers, and its names where
    they are not the legacy four (which the catalogs name in both languages)."""
    return {"levels": list(levels.numbers), "level_names": authoring.level_names(levels)}


async def index(request: web.Request) -> web.Response:
    user = require_user(request)
    f = _filter(request.query)
    async with request.app[appkeys.POOL].acquire() as conn:
        items = await authoring.search(conn, user, f)
        facets = await authoring.facets(conn, user)
        names = await subject_list.names(conn, await accounts.visible_org_ids(conn, user))
        levels = await authoring.level_scheme(conn, user.org_id)
    return render(
        request,
        "workspace/items.html",
        {
            "items": items,
            "filter": f,
            "facets": facets,
            **level_context(levels),
            "types": authoring.KINDS,
            "states": authoring.STATES,
            "done": request.query.get("done", ""),
            "subject_names": names,
        },
    )


# ---------------------------------------------------------------- editor


def _form_values(form) -> dict:
    """What the teacher typed, to show again after a refused save (a set's children apart)."""
    values = {
        k: v
        for k, v in form.items()
        if isinstance(v, str) and k not in ("csrf_token", "key", "child", "child_action") and not _CHILD_FIELD.match(k)
    }
    values["keys"] = ",".join(authoring._keys(form))
    return values


_CHILD_FIELD = re.compile(r"c[0-9]+_")


def _preview(item, media: dict[str, bytes]) -> dict | None:
    return None if item is None else {"item": item, "view": student_view(item, media)}


def _set_preview(item_set: ItemSet | None, children, media: dict[str, bytes], stimulus: str = "") -> dict | None:
    """The passage and every question as students see them; with no set (its fields
    do not read yet), the passage alone, from what was typed."""
    if item_set is None:
        if not stimulus.strip():
            return None
        passage = ItemSet(
            id="PREVIEW",
            version=1,
            subject="",
            topic="",
            lang="vi",
            status=Status.DRAFT,
            stimulus=stimulus,
            children=(),
        )
        return {"set": None, "passage": passage_view(passage, media), "children": []}
    return {
        "set": item_set,
        "passage": passage_view(item_set, media),
        "children": [{"item": c, "view": student_view(c, media)} for c in children],
    }


def _new_child(key: str, set_id: str, children: list[dict], level: str) -> dict:
    """A new question's fields: the next free id after the set's (SET-1, SET-2 ...)."""
    taken = {c.get("id", "") for c in children}
    n = len(children) + 1
    while f"{set_id}-{n}" in taken:
        n += 1
    return {
        "k": key,
        "id": f"{set_id}-{n}",
        "type": "single",
        "level": level,
        "points": "0.25",
        "shuffle": "on",
        "short_format": "vn-numeric",
    }


def _child_action(children: list[dict], action: str, set_id: str, level: str) -> list[dict]:
    """The children after the page's add, remove, up or down button (sent without the page's script)."""
    verb, _, key = action.partition(":")
    keys = [c["k"] for c in children]
    if verb == "add":
        fresh = str(max((int(k) for k in keys), default=-1) + 1)
        return [*children, _new_child(fresh, set_id, children, level)]
    if key not in keys:
        return children
    i = keys.index(key)
    children = list(children)
    if verb == "remove":
        del children[i]
    elif verb == "up" and i > 0:
        children[i - 1], children[i] = children[i], children[i - 1]
    elif verb == "down" and i < len(children) - 1:
        children[i + 1], children[i] = children[i], children[i + 1]
    return children


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
    levels: LevelScheme = LEGACY,
    children: list[dict] | None = None,
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
        **level_context(levels),
        "is_set": values.get("type") == authoring.SET,
        "children": children or [],
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
    """The editor for a new item, or with ?type=set for a new item set (a passage and one question to start)."""
    user = require_user(request)
    grade = request.query.get("grade", "").strip()
    async with request.app[appkeys.POOL].acquire() as conn:
        listed = await subject_list.list_for(conn, user.org_id)
        # The subject asked for, else the first one the teacher writes for.
        found = subject_list.find(listed, request.query.get("subject", "")[:64])
        mine = await authoring.subjects_of(conn, user.id)
        subject = found.code if found else next((s.code for s in listed if s.code in mine), "")
        suggested = await authoring.suggest_id(conn, subject, int(grade) if grade.isdigit() else None)
        levels = await authoring.level_scheme(conn, user.org_id)
    if request.query.get("type") == authoring.SET:
        values = {"id": suggested, "type": authoring.SET, "subject": subject, "grade": grade, "lang": "vi"}
        children = [_new_child("0", suggested, [], "1")]
        return _editor(request, values=values, subjects=listed, levels=levels, children=children)
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
    return _editor(request, values=values, subjects=listed, levels=levels)


def _typed(form, row=None) -> tuple[dict, list[dict]]:
    """The editor's values and a set's children as typed (the id of a stored row is its own)."""
    values = _form_values(form)
    if row is not None:
        values["id"] = row["item_id"]
        # A stored set is edited as a set, an item as an item, whatever the form says.
        if row["type"] == authoring.SET:
            values["type"] = authoring.SET
        elif values.get("type") == authoring.SET:
            values["type"] = ""
    return values, authoring.children_values(form) if values.get("type") == authoring.SET else []


def _typed_preview(checked: authoring.Checked, form, media: dict[str, bytes]) -> dict | None:
    if checked.set is not None or str(form.get("type", "")) == authoring.SET:
        return _set_preview(checked.set, checked.children, media, str(form.get("stimulus", "")))
    return _preview(checked.item, media)


async def create(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        levels = await authoring.level_scheme(conn, user.org_id)
        action = str(form.get("child_action", ""))
        if action:  # a question added, removed or moved without the page's script: nothing is saved
            values, children = _typed(form)
            children = _child_action(children, action, values.get("id", ""), str(levels.numbers[0]))
            return _editor(
                request,
                values=values,
                children=children,
                levels=levels,
                subjects=await subject_list.list_for(conn, user.org_id),
            )
        try:
            pk = await authoring.create_item(conn, user, form)
        except authoring.InvalidItem as e:
            values, children = _typed(form)
            return _editor(
                request,
                values=values,
                children=children,
                problems=e.checked.problems,
                preview=_typed_preview(e.checked, form, {}),
                status=400,
                levels=levels,
                subjects=await subject_list.list_for(conn, user.org_id),
            )
        except UserError as e:
            if e.details.get("field") != "id":
                raise
            values, children = _typed(form)
            return _editor(
                request,
                values=values,
                children=children,
                problems={"id": [error_text(request, e)]},
                status=409,
                levels=levels,
                subjects=await subject_list.list_for(conn, user.org_id),
            )
    return redirect(request, "ws_item", {"done": "saved"}, pk=pk)


def _key_letters(item) -> list[str]:
    # Options are shown as A, B, C ... in authored order; the key in the same letters.
    return [LETTERS[i] for i, o in enumerate(item.options) if o.correct]


async def _item_context(conn, user, row) -> dict:
    """What an item's (or a set's) page shows besides the editor: its content, keys, media, history."""
    item, item_set, children = None, None, ()
    if row["type"] == authoring.SET:
        item_set, children = authoring.set_from_draft(row["source"])
    else:
        item = authoring.item_from_draft(row["source"])
    media = await authoring.media_of(conn, row["id"])
    bank_pk = await authoring.bank_pk(conn, row["item_id"], row["version"]) if item is not None else None
    history = []
    if bank_pk is not None:
        history = await results.item_history(conn, bank_pk, await accounts.visible_org_ids(conn, user))
    may_change = row["author_id"] == user.id or user.role == "admin"
    return {
        "item": item,
        "item_set": item_set,
        "set_children": children,
        # Each question of a set with its key, for staff.
        "child_keys": [{"item": c, "key_letters": _key_letters(c)} for c in children],
        "media": media,
        "history": history,
        "events": await authoring.events(conn, row["id"]),
        "versions": await authoring.versions(conn, user, row["item_id"]),
        "in_bank": await authoring.in_bank(conn, row),
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
        "key_letters": _key_letters(item) if item is not None else [],
    }


def _stored_values(row, extra: dict) -> tuple[dict, list[dict], dict | None]:
    """The editor's values, a set's children and the preview of a stored row."""
    if extra["item_set"] is not None:
        values, children = authoring.set_to_fields(extra["item_set"], extra["set_children"])
        preview = _set_preview(extra["item_set"], extra["set_children"], extra["media"])
    else:
        values, children = authoring.item_to_fields(extra["item"]), []
        preview = _preview(extra["item"], extra["media"])
    return {"id": row["item_id"], **values}, children, preview


async def item_page(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        row = await authoring.get_draft(conn, user, _pk(request))
        extra = await _item_context(conn, user, row)
        listed = await subject_list.list_for(conn, row["org_id"])
        levels = await authoring.level_scheme(conn, row["org_id"])
    values, children, preview = _stored_values(row, extra)
    return _editor(
        request,
        values=values,
        children=children,
        row=row,
        preview=preview,
        extra=extra,
        subjects=listed,
        levels=levels,
    )


async def save(request: web.Request) -> web.Response:
    user = require_user(request)
    pk = _pk(request)
    form = await request.post()
    async with request.app[appkeys.POOL].acquire() as conn:
        action = str(form.get("child_action", ""))
        if action:  # a question added, removed or moved without the page's script: nothing is saved
            row = await authoring.get_draft(conn, user, pk)
            levels = await authoring.level_scheme(conn, row["org_id"])
            values, children = _typed(form, row)
            children = _child_action(children, action, row["item_id"], str(levels.numbers[0]))
            return await _stored_again(request, conn, user, row, values, children, levels=levels)
        try:
            new_pk = await authoring.save_item(conn, user, pk, form)
        except authoring.InvalidItem as e:
            row = await authoring.get_draft(conn, user, pk)
            values, children = _typed(form, row)
            return await _stored_again(request, conn, user, row, values, children, checked=e.checked, form=form)
    done = "new_version" if new_pk != pk else "saved"
    return redirect(request, "ws_item", {"done": done}, pk=new_pk)


async def _stored_again(
    request: web.Request,
    conn,
    user,
    row,
    values: dict,
    children: list[dict],
    *,
    checked: authoring.Checked | None = None,
    form=None,
    levels: LevelScheme | None = None,
) -> web.Response:
    """A stored row's editor showing what was typed: with its problems (400) after a refused save."""
    extra = await _item_context(conn, user, row)
    return _editor(
        request,
        values=values,
        children=children,
        row=row,
        problems=checked.problems if checked else None,
        preview=_typed_preview(checked, form, extra["media"]) if checked else None,
        status=400 if checked else 200,
        extra=extra,
        levels=levels or await authoring.level_scheme(conn, row["org_id"]),
        subjects=await subject_list.list_for(conn, row["org_id"]),
    )


async def preview(request: web.Request) -> web.Response:
    """The editor's current content as the student will see it (an HTML fragment; never the key)."""
    user = require_user(request)
    form = await request.post()
    media: dict[str, bytes] = {}
    raw_pk = str(form.get("pk", ""))
    item_id = str(form.get("id", "")).strip() or "PREVIEW"
    async with request.app[appkeys.POOL].acquire() as conn:
        org_id = user.org_id
        if raw_pk.isdigit() and len(raw_pk) < 19:
            row = await authoring.get_draft(conn, user, int(raw_pk))
            media = await authoring.media_of(conn, row["id"])
            item_id, org_id = row["item_id"], row["org_id"]
        levels = await authoring.level_scheme(conn, org_id)
    item_id = item_id if len(item_id) <= 64 else "PREVIEW"
    if str(form.get("type", "")) == authoring.SET:
        checked = authoring.check_set_fields(form, set_id=item_id, version=1, media_paths=set(media), levels=levels)
    else:
        checked = authoring.check_fields(form, item_id=item_id, version=1, media_paths=set(media), levels=levels)
    return render(
        request,
        "workspace/items_preview.html",
        {
            "preview": _typed_preview(checked, form, media),
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


async def _import_context(conn, user, **more) -> dict:
    """What the import page shows: its form, with the values for a foreign file's questions."""
    levels = await authoring.level_scheme(conn, user.org_id)
    ctx = {
        "error": None,
        "problems": [],
        "imported": None,
        "left_out": 0,
        "v": await authoring.foreign_prefill(conn, user),
        "field_problems": {},
        "subjects": await subject_list.list_for(conn, user.org_id),
        **level_context(levels),
        "kinds": foreign.kinds(),
        "accept": ",".join((".xlsx", ".yaml", ".yml", *foreign.EXTENSIONS)),
    }
    ctx.update(more)
    return ctx


async def import_page(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        ctx = await _import_context(conn, user)
    return render(request, "workspace/items_import.html", ctx)


def _upload_name(name: str) -> str:
    """The uploaded file's name as messages show it: its last part, of printable characters, not too long."""
    name = name.replace("\\", "/").rpartition("/")[2]
    if name.isascii() and re.search(r"%[0-9A-Fa-f]{2}", name):  # sent percent-encoded, as some clients do
        name = urllib.parse.unquote(name)
    name = "".join(c for c in name if c.isprintable())[-120:]
    return name or "file"


async def import_submit(request: web.Request) -> web.Response:
    """Items from a spreadsheet or YAML file (stored at once, all or nothing), or the preview of
    a file of another tool's questions (stored by import_confirm)."""
    user = require_user(request)
    form = await request.post()
    upload = form.get("file")
    async with request.app[appkeys.POOL].acquire() as conn:
        if not hasattr(upload, "file"):
            error = UserError("empty_file", "choose a .xlsx or .yaml file to import")
            ctx = await _import_context(conn, user, error=error, v=_typed_defaults(form))
            return render(request, "workspace/items_import.html", ctx, status=400)
        name = _upload_name(upload.filename or "")
        data = upload.file.read(uploads.FOREIGN_IMPORT_BYTES + 1)
        ending = foreign.extension(name)
        try:
            if ending in (".yaml", ".yml"):
                pks = await authoring.import_yaml(conn, user, data, name)
            elif ending == ".xlsx":
                pks = await authoring.import_xlsx(conn, user, data, name)
            elif foreign.reader_for(data, name) is not None:
                return await _foreign_preview(request, conn, user, form, data, name)
            elif data[:2] == b"PK":
                pks = await authoring.import_xlsx(conn, user, data, name)
            else:
                raise UserError(
                    "bad_file_type",
                    f"import a spreadsheet (.xlsx, from the template), a .yaml file, or questions as {foreign.kinds()}",
                    kinds=foreign.kinds(),
                )
        except authoring.InvalidDefaults as e:
            ctx = await _import_context(conn, user, error=e, v=_typed_defaults(form), field_problems=e.problems)
            return render(request, "workspace/items_import.html", ctx, status=e.status)
        except UserError as e:
            ctx = await _import_context(
                conn, user, error=e, problems=e.details.get("problems", []), v=_typed_defaults(form)
            )
            return render(request, "workspace/items_import.html", ctx, status=e.status)
        ctx = await _import_context(conn, user, imported=len(pks))
    return render(request, "workspace/items_import.html", ctx)


_DEFAULT_FIELDS = ("subject", "grade", "topic", "level", "points", "id_prefix")


def _typed_defaults(form) -> dict[str, str]:
    """The values typed for a foreign file's questions, to show again."""
    return {k: str(form.get(k, ""))[:200] for k in _DEFAULT_FIELDS}


async def _foreign_preview(request: web.Request, conn, user, form, data: bytes, name: str) -> web.Response:
    """The preview of a foreign file's questions (nothing stored), or the form again with its problems."""
    if len(data) > uploads.FOREIGN_IMPORT_BYTES:  # the route's limit leaves room for the form's other fields
        raise uploads.body_too_large(uploads.FOREIGN_IMPORT_BYTES)
    try:
        defaults = await authoring.foreign_defaults(conn, user, form, name)
        preview = await authoring.preview_foreign(conn, user, data, name, defaults)
    except authoring.InvalidDefaults as e:
        return await _preview_page(
            request, conn, user, None, data, name, v=_typed_defaults(form), error=e, field_problems=e.problems
        )
    return await _preview_page(request, conn, user, preview, data, name)


async def _preview_page(
    request: web.Request,
    conn,
    user,
    preview: authoring.ForeignPreview | None,
    data: bytes,
    name: str,
    *,
    v: dict | None = None,
    error: UserError | None = None,
    field_problems: dict | None = None,
) -> web.Response:
    """The preview: every question to be stored as a student sees it, with its key; what is left
    out and why; and the form that stores them, carrying the file back (see cbt.authoring)."""
    levels = await authoring.level_scheme(conn, user.org_id)
    status = error.status if error is not None else 200 if preview is not None and preview.questions else 400
    return render(
        request,
        "workspace/items_import_preview.html",
        {
            # The page imports items_preview.html's question macro, which runs that template's
            # own body too: its "preview" (one item's, or a set's) is none here.
            "foreign": preview,
            "preview": None,
            "v": v or authoring.defaults_fields(preview.defaults),
            "field_problems": field_problems or {},
            "error": error,
            "filename": name,
            "file_data": base64.b64encode(data).decode("ascii"),
            "subjects": await subject_list.list_for(conn, user.org_id),
            **level_context(levels),
            "letters": LETTERS,
        },
        status=status,
    )


async def import_confirm(request: web.Request) -> web.Response:
    """The preview's form: preview again with the values given, or store the questions it showed."""
    user = require_user(request)
    form = await request.post()
    name = _upload_name(str(form.get("filename", "")))
    try:
        data = base64.b64decode(str(form.get("file_data", "")), validate=True)
    except binascii.Error:
        data = b""
    async with request.app[appkeys.POOL].acquire() as conn:
        if not data:
            error = UserError("import_file_lost", "the file did not come back with the form: choose it again")
            ctx = await _import_context(conn, user, error=error)
            return render(request, "workspace/items_import.html", ctx, status=400)
        try:
            if form.get("action") != "save":
                return await _foreign_preview(request, conn, user, form, data, name)
            defaults = await authoring.foreign_defaults(conn, user, form, name)
            _, preview = await authoring.import_foreign(conn, user, data, name, defaults, str(form.get("digest", "")))
        except authoring.InvalidDefaults as e:
            return await _preview_page(
                request, conn, user, None, data, name, v=_typed_defaults(form), error=e, field_problems=e.problems
            )
        except authoring.ImportChanged as e:
            return await _preview_page(request, conn, user, e.preview, data, name, error=e)
        except UserError as e:
            # Past a bound, nothing left to save, or an id taken while saving: said on the preview's page.
            return await _preview_page(request, conn, user, None, data, name, v=_typed_defaults(form), error=e)
        ctx = await _import_context(
            conn,
            user,
            imported=preview.questions,
            left_out=preview.left_out,
            problems=preview.problems,
            problem_count=preview.problem_count,
        )
    return render(request, "workspace/items_import.html", ctx)


# ---------------------------------------------------------------- review


async def review_queue(request: web.Request) -> web.Response:
    """What waits for review; a set shows whole: its passage, then every question as students see it."""
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        queue = await authoring.review_queue(conn, user)
        subjects = await authoring.subjects_of(conn, user.id)
        names = await subject_list.names(conn, await accounts.visible_org_ids(conn, user))
        levels = await authoring.level_scheme(conn, user.org_id)
        previews = {}
        for r in (r for rows in queue.values() for r in rows if r["set_source"] is not None):
            item_set, children = authoring.set_from_draft(r["set_source"])
            previews[r["id"]] = _set_preview(item_set, children, await authoring.media_of(conn, r["id"]))
    return render(
        request,
        "workspace/review.html",
        {
            "queue": queue,
            "subjects": subjects,
            "subject_names": names,
            "done": request.query.get("done", ""),
            "previews": previews,
            "letters": LETTERS,
            **level_context(levels),
        },
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
    """The organisation's list of subjects, what is in use but not on it, who writes and
    reviews what, and the level scheme its teachers write at."""
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
        own_scheme = await authoring.own_level_scheme(conn, user.org_id)
        levels = await authoring.level_scheme(conn, user.org_id)
        has_department = user.org_kind == "school" and bool(
            await conn.fetchval("SELECT parent_id FROM orgs WHERE id = $1", user.org_id)
        )
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
            "own_scheme": own_scheme,
            "scheme": authoring.scheme_name(levels),
            "schemes": {name: authoring.level_listing(s) for name, s in authoring.SCHEMES.items()},
            "has_department": has_department,
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
    """Add or rename a subject of the administrator's own organisation, or remove one nobody uses;
    or choose the level scheme the organisation writes at."""
    user = require_user(request)
    form = await request.post()
    code = str(form.get("code", ""))
    async with request.app[appkeys.POOL].acquire() as conn:
        try:
            if form.get("action") == "levels":
                await authoring.set_level_scheme(conn, user, str(form.get("scheme", "")))
                done = "levels_saved"
            elif form.get("action") == "remove":
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
