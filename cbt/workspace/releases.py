"""Pages for building releases from approved items, signing them (offline
or with a key kept on the server) and managing the server's signing keys.

Who may do what: teachers, reviewers and administrators of a school build
releases and download them; anyone of them may upload a signature made
offline, since the server accepts it only from a trusted key. Signing with
a key kept on the server is for administrators and reviewers (the subject
group leader signs what the group approved); creating, uploading,
trusting and revoking keys is for administrators only. An administrator
trusts a key for their own organisation (a department: and its schools);
revoking is for everyone and for good.

Who holds signing keys: the organisation that made them, and the keys of a
department serve its schools too, as its trust does. A department's
administrator makes a key (and trusts it, which covers the schools); a
school's reviewers sign their releases with it, given its passphrase, and a
school that wants a key of its own makes one the same way. A school's key
is never offered to another school (releases.signing_key_orgs).

The list of releases shows those built here and those in the bank that the
organisation may use (a department's are its schools' too), so a school sees
its department's bank.

A release is built at the level scheme the organisation's workspace writes
at (cbt.authoring.level_scheme): the page names levels by it and says it,
and the release's bank.yaml carries it. Item sets are chosen whole.
"""

from __future__ import annotations

from aiohttp import web

from cbt import accounts, authoring, bank, releases
from cbt import subjects as subject_list
from cbt.platform import appkeys
from cbt.platform.auth import redirect, require_user
from cbt.platform.errors import NotFound, UserError
from cbt.platform.inputs import path_id
from cbt.platform.templating import render
from cbt.roles import SIGNERS

LEVELS = (1, 2, 3, 4)


async def _orgs(conn, user) -> list[int]:
    return await accounts.visible_org_ids(conn, user)


def _release_id(request: web.Request) -> int:
    return path_id(
        request, "release_id", NotFound("unknown_release", "no such release: choose one from the list of releases")
    )


def _filters(query) -> dict:
    level = query.get("level", "").strip()
    if level and (not level.isdigit() or int(level) not in LEVELS):
        raise UserError("bad_filter", "level must be one of 1, 2, 3, 4")
    return {
        "subject": query.get("subject", "").strip()[:64],
        "topic": query.get("topic", "").strip()[:200],
        "level": int(level) if level else None,
    }


async def index(request: web.Request, *, error: UserError | None = None, form: dict | None = None) -> web.Response:
    user = require_user(request)
    f = _filters(request.query)
    async with request.app[appkeys.POOL].acquire() as conn:
        orgs = await _orgs(conn, user)
        items = await releases.approved_items(conn, orgs, f["subject"], f["topic"], f["level"])
        facets = await releases.approved_facets(conn, orgs)
        listed = await releases.list_for(conn, orgs)
        # The bank's releases this organisation may use, by the bank's own rule; those built here are listed above.
        built = {r["bank_release_id"] for r in listed}
        in_bank = [
            r
            for r in await bank.list_releases(conn, await bank.release_org_ids(conn, user.org_id))
            if r["id"] not in built
        ]
        listed_subjects = await subject_list.list_for(conn, user.org_id)
        names = await subject_list.names(conn, orgs)
        levels = await authoring.level_scheme(conn, user.org_id)
    chosen = {int(pk) for pk in (form or {}).get("items", ()) if pk.isdigit()}
    return render(
        request,
        "workspace/releases.html",
        {
            "items": items,
            "facets": facets,
            "filter": f,
            "levels": list(levels.numbers),
            "level_names": authoring.level_names(levels),
            "scheme_listing": authoring.level_listing(levels),
            "releases": listed,
            "bank_releases": in_bank,
            "error": error,
            "form": form or {},
            "chosen": chosen,
            "subjects": listed_subjects,
            "subject_names": names,
        },
        status=error.status if error else 200,
    )


async def create(request: web.Request) -> web.Response:
    user = require_user(request)
    data = await request.post()
    form = {k: str(data.get(k, "")).strip() for k in ("name", "version", "title", "subject")}
    form["items"] = [str(v) for v in data.getall("item", [])]
    try:
        pks = []
        for raw in form["items"]:
            if not raw.isdigit() or len(raw) > 18:
                raise UserError("unknown_items", "the chosen items are not valid: reload the page and choose again")
            pks.append(int(raw))
        async with request.app[appkeys.POOL].acquire() as conn:
            # The levels the items were written at: the workspace's scheme, which bank.yaml then says.
            build = releases.Build(
                form["name"],
                form["version"],
                form["title"],
                form["subject"],
                tuple(dict.fromkeys(pks)),
                levels=await authoring.level_scheme(conn, user.org_id),
            )
            release_id = await releases.create(conn, user, await _orgs(conn, user), build)
    except UserError as e:
        return await index(request, error=e, form=form)
    return redirect(request, "ws_release", {"built": 1}, release_id=release_id)


async def page(request: web.Request, *, error: UserError | None = None) -> web.Response:
    user = require_user(request)
    release_id = _release_id(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        orgs = await _orgs(conn, user)
        row = await releases.get(conn, release_id, orgs)
        items = await releases.items_of(conn, release_id)
        status, detail = await releases.verification(conn, row)
        # Trusted or not for the release's own organisation: a department's admin may sign a school's,
        # and a school's reviewer with the department's keys.
        server_keys = (
            await releases.list_keys(conn, row["org_id"], await releases.signing_key_orgs(conn, user))
            if user.role in SIGNERS
            else []
        )
        levels = await authoring.level_scheme(conn, row["org_id"])
    return render(
        request,
        "workspace/releases_detail.html",
        {
            "r": row,
            "items": items,
            # As the bank counts them: a set's questions, not the set.
            "item_count": sum(len(i["children"]) if i["type"] == authoring.SET else 1 for i in items),
            "level_names": authoring.level_names(levels),
            "status": status,
            "detail": detail,
            "server_keys": server_keys,
            "can_sign": user.role in SIGNERS,
            "error": error,
            "folder": f"{row['name']}-{row['version']}",
            "built": request.query.get("built") == "1",
            "signed": request.query.get("signed") == "1",
        },
        status=error.status if error else 200,
    )


async def download_unsigned(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        row = await releases.get(conn, _release_id(request), await _orgs(conn, user))
    return _attachment(bytes(row["package"]), f"{row['name']}-{row['version']}-unsigned.zip", "application/zip")


async def download_signed(request: web.Request) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        row = await releases.get(conn, _release_id(request), await _orgs(conn, user))
    body = releases.signed_package(row)
    return _attachment(body, f"{row['name']}-{row['version']}.cbtbank", "application/octet-stream")


def _attachment(body: bytes, filename: str, content_type: str) -> web.Response:
    # Names and versions allow only letters, digits, . _ and -, so the header needs no quoting.
    return web.Response(
        body=body, content_type=content_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


def _file(data, name: str) -> bytes | None:
    field = data.get(name)
    if field is None or isinstance(field, str) or not getattr(field, "filename", ""):
        return None
    return field.file.read()


async def upload_signature(request: web.Request) -> web.Response:
    user = require_user(request)
    release_id = _release_id(request)
    data = await request.post()
    try:
        async with request.app[appkeys.POOL].acquire() as conn:
            await releases.accept_upload(
                conn,
                release_id,
                await _orgs(conn, user),
                upload=_file(data, "package"),
                manifest=_file(data, "manifest"),
                signature=_file(data, "signature"),
            )
    except UserError as e:
        if e.status == 404:
            raise
        return await page(request, error=e)
    return redirect(request, "ws_release", {"signed": 1}, release_id=release_id)


async def sign(request: web.Request) -> web.Response:
    user = require_user(request)
    release_id = _release_id(request)
    data = await request.post()
    try:
        async with request.app[appkeys.POOL].acquire() as conn:
            await releases.sign_on_server(
                conn,
                release_id,
                await _orgs(conn, user),
                str(data.get("key", "")),
                str(data.get("passphrase", "")),
                key_org_ids=await releases.signing_key_orgs(conn, user),
            )
    except UserError as e:
        if e.code == "unknown_release":
            raise
        return await page(request, error=e)
    return redirect(request, "ws_release", {"signed": 1}, release_id=release_id)


# -- keys -----------------------------------------------------------------------


async def keys_page(request: web.Request, *, error: UserError | None = None, done: str = "") -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        listed = await releases.list_keys(conn, user.org_id, await _orgs(conn, user))
    return render(
        request,
        "workspace/releases_keys.html",
        {
            "keys": listed,
            "error": error,
            "done": done or request.query.get("done", ""),
            "fp": request.query.get("fp", "")[:16],
        },
        status=error.status if error else 200,
    )


async def keys_create(request: web.Request) -> web.Response:
    user = require_user(request)
    data = await request.post()
    try:
        async with request.app[appkeys.POOL].acquire() as conn:
            fp = await releases.generate_key(
                conn, user, str(data.get("name", "")), str(data.get("passphrase", "")), str(data.get("passphrase2", ""))
            )
    except UserError as e:
        return await keys_page(request, error=e)
    return redirect(request, "ws_keys", {"done": "created", "fp": fp})


async def keys_upload(request: web.Request) -> web.Response:
    user = require_user(request)
    data = await request.post()
    try:
        pem = _file(data, "key_file")
        if not pem:
            raise UserError("no_key_file", "choose the .key file made by cbt keys generate")
        async with request.app[appkeys.POOL].acquire() as conn:
            fp = await releases.upload_key(conn, user, str(data.get("name", "")), pem, str(data.get("passphrase", "")))
    except UserError as e:
        return await keys_page(request, error=e)
    return redirect(request, "ws_keys", {"done": "created", "fp": fp})


async def keys_trust(request: web.Request) -> web.Response:
    user = require_user(request)
    fp = request.match_info["fp"]
    try:
        async with request.app[appkeys.POOL].acquire() as conn:
            await releases.trust(conn, user, fp, await _orgs(conn, user))
    except UserError as e:
        if e.status == 404:
            raise
        return await keys_page(request, error=e)
    return redirect(request, "ws_keys", {"done": "trusted", "fp": fp})


async def keys_revoke(request: web.Request) -> web.Response:
    """Revoke a key for good, for everyone: the way back is a new key."""
    user = require_user(request)
    fp = request.match_info["fp"]
    data = await request.post()
    try:
        if data.get("confirm") != "1":
            raise UserError("confirm_required", "tick the confirmation box first: a revoked key stays revoked")
        async with request.app[appkeys.POOL].acquire() as conn:
            await releases.revoke(conn, user, fp, await _orgs(conn, user))
    except UserError as e:
        if e.status == 404:
            raise
        return await keys_page(request, error=e)
    return redirect(request, "ws_keys", {"done": "revoked", "fp": fp})
