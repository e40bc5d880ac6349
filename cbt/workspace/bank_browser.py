"""The read-only bank browser: releases, items filtered by subject, topic,
level, type and status, and a preview of an item as a student sees it.

An item set is shown whole at its own address, the one an item would have
(/bank/items/SET-ID/VERSION: ids are an item's or a set's, never both): its
passage, then each question as students see it, with its key for staff. A
question's page says which set it is in and links there; the list marks
questions of a set. Levels are named by the scheme of the release that
brought each item.

A reader sees the releases of their organisation, of its department and (a
department) of its schools, and the items in those (bank.release_org_ids);
anything else is 'not found', never 'forbidden', so that its existence is not
given away either."""

from __future__ import annotations

import mimetypes
import tempfile
from pathlib import Path

from aiohttp import web

from cbt import accounts, bank, results
from cbt.platform import appkeys
from cbt.platform.auth import require_user
from cbt.platform.errors import NotFound, UserError
from cbt.platform.inputs import path_id
from cbt.platform.templating import render
from itembank.formats.xlsx import write_template
from itembank.levels import LEGACY, LevelScheme
from itembank.model import ItemType, Status
from itembank.render import is_media_path, render_item, render_set

LEVELS = (1, 2, 3, 4)
LETTERS = "ABCDEFGHIJKLMNOP"
# Media is served from our own origin, so an SVG must not be able to run
# script even when opened directly: no script sources, and a sandbox.
MEDIA_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


def _filter_from(query) -> bank.ItemFilter:
    def number(name: str, allowed=None) -> int | None:
        raw = query.get(name, "").strip()
        if not raw:
            return None
        if not raw.isdigit() or (allowed and int(raw) not in allowed):
            raise UserError("bad_filter", f"{name} must be one of {', '.join(map(str, allowed or ()))}")
        return int(raw)

    kind = query.get("type", "").strip()
    if kind and kind not in {t.value for t in ItemType}:
        raise UserError("bad_filter", f"type must be one of {', '.join(t.value for t in ItemType)}")
    status = query.get("status", "").strip()
    if status and status not in {s.value for s in Status}:
        raise UserError("bad_filter", f"status must be one of {', '.join(s.value for s in Status)}")
    release = query.get("release", "").strip()
    if release and (not release.isdigit() or len(release) > 18):
        raise UserError("bad_filter", "release must be a release number from the list")
    return bank.ItemFilter(
        release_id=int(release) if release else None,
        subject=query.get("subject", "").strip()[:100],
        topic=query.get("topic", "").strip()[:100],
        level=number("level", LEVELS),
        type=kind,
        status=status,
        text=query.get("q", "").strip()[:200],
    )


async def _orgs(conn, request: web.Request) -> list[int]:
    """The organisations whose releases the reader may read (bank.release_org_ids)."""
    return await bank.release_org_ids(conn, require_user(request).org_id)


async def index(request: web.Request) -> web.Response:
    f = _filter_from(request.query)
    async with request.app[appkeys.POOL].acquire() as conn:
        orgs = await _orgs(conn, request)
        if f.release_id is not None:
            await bank.get_release(conn, f.release_id, orgs)  # another school's release: 404, as if none
        releases = await bank.list_releases(conn, orgs)
        items = await bank.search_items(conn, f, orgs)
        facets = await bank.facet_values(conn, orgs)
        places = await bank.item_places(conn, [i["id"] for i in items])
        schemes = (
            [await bank.level_scheme(conn, [f.release_id])]
            if f.release_id is not None
            else await bank.release_schemes(conn, orgs)
        )
    return render(
        request,
        "bank/index.html",
        {
            "releases": releases,
            "items": items,
            "filter": f,
            "facets": facets,
            # The levels the readable releases have (any four, without a release yet).
            "levels": sorted({n for scheme in schemes for n in scheme.numbers}) or LEVELS,
            "level_filter_names": _filter_names(schemes),
            "places": places,
            "level_names": {
                i["id"]: _level_name(bank.scheme_from_json(places[i["id"]]["levels"]), i["level"]) for i in items
            },
            "types": [t.value for t in ItemType],
            "statuses": [s.value for s in Status],
        },
    )


def _level_name(scheme: LevelScheme, level: int) -> str:
    """A level as its scheme names it; "" for the legacy four, which the catalogs name (level.N)."""
    return "" if scheme == LEGACY or level not in scheme.numbers else scheme.name(level)


def _filter_names(schemes: list[LevelScheme]) -> dict[int, str]:
    """The level menu's names: the schemes' names of each number, "Nhận biết / Biết" where
    the releases read differ; {} where they are all the legacy four's."""
    if all(s == LEGACY for s in schemes):
        return {}
    numbers = sorted({n for s in schemes for n in s.numbers})
    return {n: " / ".join(dict.fromkeys(s.name(n) for s in schemes if n in s.numbers)) for n in numbers}


def _version(request: web.Request) -> int:
    return path_id(request, "version", NotFound("bad_version", "an item version is a whole number"), high=2**31 - 1)


def _media_url(request: web.Request, item_id: str, version: int):
    base = request.app.router["bank_media"]
    return lambda path: str(base.url_for(item_id=item_id, version=str(version), path=path))


def _key_letters(item) -> list[str]:
    # Options are shown as A, B, C ... in authored order; the key in the same letters.
    return [LETTERS[i] for i, o in enumerate(item.options) if o.correct]


async def item_page(request: web.Request) -> web.Response:
    """An item version; or, for a set's id, the set whole."""
    item_id = request.match_info["item_id"]
    version = _version(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        orgs = await _orgs(conn, request)
        try:
            row, item = await bank.get_item(conn, item_id, version, orgs)
        except NotFound:
            return await _set_page(request, conn, orgs, item_id, version)
        versions = await bank.item_versions(conn, item_id, orgs)
        topic = (await bank.topic_names(conn, list(row["release_ids"]))).get(item.topic, item.topic)
        place = (await bank.item_places(conn, [row["id"]]))[row["id"]]
        # Statistics of this version in the exams the viewer's organisation may see.
        history = await results.item_history(
            conn, row["id"], await accounts.visible_org_ids(conn, require_user(request))
        )
    rendered = render_item(item, _media_url(request, item_id, version))
    return render(
        request,
        "bank/item.html",
        {
            "row": row,
            "item": item,
            "topic": topic,
            "r": rendered,
            "versions": versions,
            "letters": LETTERS,
            "history": history,
            "key_letters": _key_letters(item),
            "place": place,
            "level_name": _level_name(bank.scheme_from_json(place["levels"]), item.level),
        },
    )


async def _set_page(request: web.Request, conn, orgs: list[int], set_id: str, version: int) -> web.Response:
    """A set whole: its passage, then each question as students see it with its key."""
    row, item_set, children = await bank.get_set(conn, set_id, version, orgs)
    versions = await bank.set_versions(conn, set_id, orgs)
    topics = await bank.topic_names(conn, list(row["release_ids"]))
    scheme = await bank.level_scheme(conn, [row["first_release_id"]])
    passage = render_set(item_set, _media_url(request, set_id, version))
    questions = [
        {
            "item": child,
            "pk": pk,
            "r": render_item(child, _media_url(request, child.id, version)),
            "key_letters": _key_letters(child),
            "level_name": _level_name(scheme, child.level),
            "topic": topics.get(child.topic, child.topic),
        }
        for child, pk in zip(children, row["child_pks"], strict=True)
    ]
    return render(
        request,
        "bank/set.html",
        {
            "row": row,
            "item_set": item_set,
            "topic": topics.get(item_set.topic, item_set.topic),
            "passage": passage,
            "questions": questions,
            "versions": versions,
            "letters": LETTERS,
        },
    )


async def media(request: web.Request) -> web.Response:
    path = request.match_info["path"]
    if not is_media_path(path):
        raise UserError("unknown_media", "no such media file", status=404)
    item_id, version = request.match_info["item_id"], _version(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        orgs = await _orgs(conn, request)
        try:
            row, _ = await bank.get_item(conn, item_id, version, orgs)
        except NotFound:
            row, _, _ = await bank.get_set(conn, item_id, version, orgs)  # a passage's image
        content = await bank.media_for_item(conn, row, path)
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return web.Response(
        body=content,
        content_type=content_type,
        headers={
            "Content-Security-Policy": MEDIA_CSP,
            "Cache-Control": "private, max-age=3600",
        },
    )


async def template_xlsx(request: web.Request) -> web.Response:
    # openpyxl writes to a path; the template is small and made on demand.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cbt-items-template.xlsx"
        write_template(path)
        body = path.read_bytes()
    return web.Response(
        body=body,
        headers={
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Content-Disposition": 'attachment; filename="cbt-items-template.xlsx"',
        },
    )
