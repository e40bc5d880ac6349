"""The read-only bank browser: releases, items filtered by subject, topic,
level, type and status, and a preview of an item as a student sees it.

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
from itembank.model import ItemType, Status
from itembank.render import is_media_path, render_item

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
    return render(
        request,
        "bank/index.html",
        {
            "releases": releases,
            "items": items,
            "filter": f,
            "facets": facets,
            "levels": LEVELS,
            "types": [t.value for t in ItemType],
            "statuses": [s.value for s in Status],
        },
    )


def _version(request: web.Request) -> int:
    return path_id(request, "version", NotFound("bad_version", "an item version is a whole number"), high=2**31 - 1)


async def item_page(request: web.Request) -> web.Response:
    item_id = request.match_info["item_id"]
    version = _version(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        orgs = await _orgs(conn, request)
        row, item = await bank.get_item(conn, item_id, version, orgs)
        versions = await bank.item_versions(conn, item_id, orgs)
        topic = (await bank.topic_names(conn, list(row["release_ids"]))).get(item.topic, item.topic)
        # Statistics of this version in the exams the viewer's organisation may see.
        history = await results.item_history(
            conn, row["id"], await accounts.visible_org_ids(conn, require_user(request))
        )
    base = request.app.router["bank_media"]

    def media_url(path: str) -> str:
        return str(base.url_for(item_id=item_id, version=str(version), path=path))

    rendered = render_item(item, media_url)
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
            # Options are shown as A, B, C ... in authored order; the key in the same letters.
            "key_letters": [LETTERS[i] for i, o in enumerate(item.options) if o.correct],
        },
    )


async def media(request: web.Request) -> web.Response:
    path = request.match_info["path"]
    if not is_media_path(path):
        raise UserError("unknown_media", "no such media file", status=404)
    async with request.app[appkeys.POOL].acquire() as conn:
        row, _ = await bank.get_item(conn, request.match_info["item_id"], _version(request), await _orgs(conn, request))
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
