"""Staff sign-in: server-side sessions, CSRF tokens, the sign-in rate limit,
and the role check on every route.

- The session cookie holds a random token; PostgreSQL holds its SHA-256.
- CSRF tokens are HMACs of the session token (or, before sign-in, of a
  random pre-session cookie) under the server secret, so they need no
  storage and are bound to the browser that holds the cookie.
- Every route is named in routes.py with who may use it; a route the access
  table does not list is refused, so forgetting a check fails closed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from cbt import accounts
from cbt.platform import appkeys
from cbt.platform.clientaddr import client_addr
from cbt.platform.errors import Forbidden, TooManyRequests, UserError
from cbt.platform.templating import render

SESSION_COOKIE = "cbt_session"
PRE_COOKIE = "cbt_pre"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Who may use a route: PUBLIC, STAFF (any signed-in staff), or a set of roles.
PUBLIC = "public"
STAFF = "staff"


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_token_for(secret: str, basis: str) -> str:
    return hmac.new(secret.encode(), b"csrf|" + basis.encode(), hashlib.sha256).hexdigest()


def _cookie_flags(request: web.Request) -> dict:
    settings = request.app[appkeys.SETTINGS]
    return {
        "httponly": True,
        "samesite": "Lax",
        "secure": settings.secure_cookies or request.secure,
        "path": "/",
    }


_LOAD_SESSION = """
SELECT u.id, u.username, u.display_name, u.role, u.org_id, o.code AS org_code, o.kind AS org_kind,
       s.last_seen < now() - interval '1 minute' AS stale
FROM sessions s
JOIN users u ON u.id = s.user_id
JOIN orgs o ON o.id = u.org_id
WHERE s.token_hash = $1 AND s.expires_at > now() AND u.active
"""


@web.middleware
async def session_middleware(request: web.Request, handler):
    """Attach the signed-in staff member (or None) and the CSRF token to the request."""
    settings = request.app[appkeys.SETTINGS]
    request[appkeys.USER] = None
    token = request.cookies.get(SESSION_COOKIE)
    if token and not request.path.startswith("/static/"):
        pool = request.app[appkeys.POOL]
        row = await pool.fetchrow(_LOAD_SESSION, _token_hash(token))
        if row is not None:
            request[appkeys.USER] = accounts.Staff(
                row["id"],
                row["username"],
                row["display_name"],
                row["role"],
                row["org_id"],
                row["org_code"],
                row["org_kind"],
            )
            request[appkeys.SESSION_TOKEN] = token
            if row["stale"]:
                # last_seen is for the admin's view of who is signed in; one
                # write a minute per session is enough.
                await pool.execute("UPDATE sessions SET last_seen = now() WHERE token_hash = $1", _token_hash(token))
    if request[appkeys.USER] is None and request.match_info.route.name in request.app[appkeys.CSRF_EXEMPT]:
        # The candidate API: bearer-authenticated JSON, no form to protect. A
        # pre-session token and its HMAC per call were a few percent of a
        # worker's CPU under load.
        request[appkeys.CSRF_BASIS_MISSING] = False
        return await handler(request)
    new_pre = None
    if request[appkeys.USER] is not None:
        basis = token
    else:
        basis = request.cookies.get(PRE_COOKIE, "")
        if not basis:
            new_pre = secrets.token_urlsafe(32)
            basis = new_pre
    request[appkeys.CSRF_BASIS_MISSING] = new_pre is not None
    request[appkeys.CSRF_TOKEN] = csrf_token_for(settings.secret_key, basis)
    response = await handler(request)
    # Only pages carry forms that need the pre-session token.
    if new_pre is not None and response.content_type == "text/html":
        response.set_cookie(PRE_COOKIE, new_pre, **_cookie_flags(request))
    return response


async def _submitted_csrf(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD, "")
        return value if isinstance(value, str) else ""
    return ""


@web.middleware
async def csrf_middleware(request: web.Request, handler):
    unmatched = getattr(request.match_info, "http_exception", None) is not None
    if request.method in SAFE_METHODS or unmatched:
        return await handler(request)
    route_name = request.match_info.route.name
    if route_name in request.app[appkeys.CSRF_EXEMPT]:
        return await handler(request)
    sent = await _submitted_csrf(request)
    if request[appkeys.CSRF_BASIS_MISSING]:
        raise Forbidden(
            "csrf_no_cookie",
            "your browser did not send the security cookie: enable cookies for this site and reload the page",
        )
    if not sent or not hmac.compare_digest(sent, request[appkeys.CSRF_TOKEN]):
        raise Forbidden(
            "csrf_failed",
            "this form has expired or did not come from this site: reload the page and try again",
        )
    return await handler(request)


def access_middleware(access: dict[str, object]):
    """Refuse any request whose route does not admit the caller's role."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        route = request.match_info.route
        name = route.name
        if getattr(request.match_info, "http_exception", None) is not None:
            return await handler(request)  # 404/405: let the error page say so
        rule = access.get(name or "", None)
        if rule is None:
            raise Forbidden("route_not_authorised", "this address is not open to anyone")
        if rule == PUBLIC:
            return await handler(request)
        user = request[appkeys.USER]
        if user is None:
            if request.method in SAFE_METHODS and not _wants_json(request):
                return redirect(request, "login", {"next": request.path_qs})
            raise Forbidden("login_required", "sign in first", status=401)
        if rule != STAFF and user.role not in rule:
            allowed = ", ".join(sorted(rule))
            raise Forbidden(
                "role_refused",
                f"your role ({user.role}) cannot use this page; it is for: {allowed}",
                role=user.role,
                allowed=allowed,
            )
        return await handler(request)

    return middleware


def see_other(location: str) -> web.Response:
    """303 to a path already known to be this site's (see redirect for routes)."""
    return web.Response(status=303, headers={"Location": location})


def redirect(request: web.Request, name: str, query: dict | None = None, **parts) -> web.Response:
    """303 to the route ``name`` of the URL table, its ``{parts}`` filled in,
    with ``query`` encoded: the one way a handler sends the browser on."""
    url = request.app.router[name].url_for(**{k: str(v) for k, v in parts.items()})
    return see_other(f"{url}?{urlencode(query)}" if query else str(url))


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


def safe_next(target: str | None, default: str = "/staff") -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


# --------------------------------------------------------------------------
# Sign-in rate limit (state in PostgreSQL, so every worker counts the same)
#
# An attempt is counted before its password is checked: it is reserved as a
# failure, and the reservation is taken back if the password was right.
# Counting afterwards let 30 wrong passwords sent at once all be checked
# (each saw the 4 failures before it) where the limit is 5.

_COUNT_FAILURES = """
SELECT count(*) FROM login_failures
WHERE scope = $1 AND key = $2 AND failed_at > now() - make_interval(mins => $3)
"""

# Attempts for one account, or from one address, take their turn here for the
# moment of counting and reserving; the account's lock is always taken first,
# so two attempts never wait for each other's.
_LOCK_ATTEMPTS = """
SELECT pg_advisory_xact_lock(hashtextextended('cbt-login|account|' || $1, 0)),
       pg_advisory_xact_lock(hashtextextended('cbt-login|addr|' || $2, 0))
"""

_RESERVE = """
INSERT INTO login_failures (scope, key) VALUES ('addr', $1), ('account', $2) RETURNING id
"""


async def _reserve_attempt(conn, settings, addr: str, username: str) -> list[int]:
    """Refuse when either limit is reached, else count this attempt as a failure
    until it proves otherwise; returns the rows to take back if it does."""
    window = settings.login_window_minutes
    async with conn.transaction():
        await conn.execute(_LOCK_ATTEMPTS, username, addr)
        by_addr = await conn.fetchval(_COUNT_FAILURES, "addr", addr, window)
        by_account = await conn.fetchval(_COUNT_FAILURES, "account", username, window)
        if by_addr >= settings.login_max_per_ip:
            raise TooManyRequests(
                "login_rate_limited",
                f"too many failed sign-ins from this computer; wait {window} minutes and try again",
                minutes=window,
            )
        if by_account >= settings.login_max_per_account:
            raise TooManyRequests(
                "login_rate_limited",
                f"too many failed sign-ins for this account; wait {window} minutes or ask an administrator",
                minutes=window,
            )
        return [r["id"] for r in await conn.fetch(_RESERVE, addr, username)]


async def _failed(conn) -> None:
    # The reservation stays as the failure. Keep the table small: anything
    # older than a day no longer matters.
    await conn.execute("DELETE FROM login_failures WHERE failed_at < now() - interval '1 day'")


# --------------------------------------------------------------------------
# Handlers


async def login_page(request: web.Request) -> web.Response:
    if request[appkeys.USER] is not None:
        return see_other(safe_next(request.query.get("next")))
    return render(request, "login.html", {"next": safe_next(request.query.get("next")), "error": None, "username": ""})


async def login_submit(request: web.Request) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    pool = request.app[appkeys.POOL]
    form = await request.post()
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    addr = client_addr(request, settings.trusted_proxies)

    def again(code: str, status: int) -> web.Response:
        return render(request, "login.html", {"next": target, "error": code, "username": username}, status=status)

    if not username or not password:
        return again("login_missing", 400)
    # A room of proctors signing in at once queues here for this process's
    # hashing thread, without a database connection (it must not hold the pool
    # meanwhile), and only then reserves its attempt: so the attempts counted in
    # flight are the few being hashed (one per worker), not all those waiting,
    # and a crowd of right passwords is not taken for a guessing attack.
    async with accounts.hash_turn():
        async with pool.acquire() as conn:
            reserved = await _reserve_attempt(conn, settings, addr, username)
            row = await conn.fetchrow(
                "SELECT id, password_hash FROM users WHERE lower(username) = $1 AND active",
                username,
            )
        ok = await accounts.off_loop(accounts.verify_password, row and row["password_hash"], password)
    rehashed = (
        await accounts.off_loop(accounts.hash_password, password)
        if ok and accounts.needs_rehash(row["password_hash"])
        else None
    )
    async with pool.acquire() as conn:
        if not ok:
            await _failed(conn)
            return again("login_failed", 401)
        # Signed in: the account's failures no longer count, and this attempt was none.
        await conn.execute(
            "DELETE FROM login_failures WHERE (scope = 'account' AND key = $1) OR id = ANY($2::bigint[])",
            username,
            reserved,
        )
        if rehashed is not None:
            await conn.execute("UPDATE users SET password_hash = $1 WHERE id = $2", rehashed, row["id"])
        token = secrets.token_urlsafe(32)
        await conn.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at, client_addr)"
            " VALUES ($1, $2, now() + $3::interval, $4)",
            _token_hash(token),
            row["id"],
            timedelta(hours=settings.session_hours),
            addr,
        )
        await conn.execute("DELETE FROM sessions WHERE expires_at < now()")
    response = see_other(target)
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_hours * 3600, **_cookie_flags(request))
    return response


async def logout(request: web.Request) -> web.Response:
    token = request.get(appkeys.SESSION_TOKEN)
    if token:
        await request.app[appkeys.POOL].execute("DELETE FROM sessions WHERE token_hash = $1", _token_hash(token))
    response = redirect(request, "login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def require_user(request: web.Request) -> accounts.Staff:
    user = request[appkeys.USER]
    if user is None:  # the access table should have stopped this already
        raise UserError("login_required", "sign in first", status=401)
    return user
