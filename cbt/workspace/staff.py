"""The staff home page, the administrator's account pages, and the language switch."""

from __future__ import annotations

from aiohttp import web

from cbt import accounts
from cbt.platform import appkeys
from cbt.platform.auth import redirect, require_user, safe_next, see_other
from cbt.platform.errors import UserError
from cbt.platform.i18n import LANG_COOKIE, LANGUAGES
from cbt.platform.templating import render


async def home(request: web.Request) -> web.Response:
    """Staff signed in go to their dashboard; anyone else chooses a way in.
    Students type the bare address too, and the staff sign-in is no use to them."""
    if request[appkeys.USER]:
        return redirect(request, "staff_dashboard")
    return render(request, "home.html")


async def dashboard(request: web.Request) -> web.Response:
    user = require_user(request)
    return render(request, "staff/dashboard.html", {"me": user})


async def users_page(request: web.Request, *, error: UserError | None = None, form: dict | None = None) -> web.Response:
    user = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        users = await accounts.list_users(conn, user)
        orgs = await accounts.list_orgs(conn, user)
    return render(
        request,
        "staff/users.html",
        {
            "users": users,
            "orgs": orgs,
            "roles": accounts.ROLES,
            "error": error,
            "form": form or {},
            "created": request.query.get("created", ""),
        },
        status=error.status if error else 200,
    )


async def users_create(request: web.Request) -> web.Response:
    user = require_user(request)
    form = await request.post()
    fields = {k: str(form.get(k, "")) for k in ("username", "display_name", "role", "org", "password")}
    try:
        async with request.app[appkeys.POOL].acquire() as conn:
            visible = {r["code"] for r in await accounts.list_orgs(conn, user)}
            # An administrator creates accounts only in organisations they see.
            if fields["org"] not in visible:
                raise UserError("unknown_org", "choose one of the organisations in the list", org=fields["org"])
            await accounts.add_user(
                conn, fields["username"], fields["role"], fields["org"], fields["password"], fields["display_name"]
            )
    except UserError as e:
        fields.pop("password")
        return await users_page(request, error=e, form=fields)
    return redirect(request, "staff_users", {"created": fields["username"].strip().lower()})


async def set_language(request: web.Request) -> web.Response:
    lang = request.match_info["lang"]
    if lang not in LANGUAGES:
        raise UserError("unknown_language", f"choose one of: {', '.join(LANGUAGES)}", status=404)
    response = see_other(safe_next(request.query.get("next"), default="/"))
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, path="/", samesite="Lax", httponly=True)
    return response
