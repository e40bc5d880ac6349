"""Cross-cutting middlewares and signals: request log and metrics, security headers, error pages."""

from __future__ import annotations

import logging
import secrets
import time

import asyncpg
from aiohttp import web

from cbt.platform import appkeys, uploads
from cbt.platform.errors import UserError
from cbt.platform.inputs import has_bad_characters
from cbt.platform.templating import language, render

log = logging.getLogger("cbt.http")

# No inline script anywhere: scripts only from our own /static/. MathML and
# our CSS need nothing more.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The name of the static files' route (routes.py); here to avoid an import cycle.
STATIC_ROUTE = "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


@web.middleware
async def observe_middleware(request: web.Request, handler):
    """One log line and one metrics sample per request."""
    start = time.perf_counter()
    request[appkeys.REQUEST_ID] = secrets.token_hex(8)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        elapsed = time.perf_counter() - start
        route = request.match_info.route.name or ("unmatched" if status == 404 else "other")
        request.app[appkeys.METRICS].observe(route, request.method, status, elapsed)
        log.info(
            "request",
            extra={
                "fields": {
                    "event": "http",
                    "id": request[appkeys.REQUEST_ID],
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                }
            },
        )


async def security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare: the security headers on every response as it is sent,
    streams (the proctor console's events) and files included, which a
    middleware would see only after a stream's headers had gone out."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.app[appkeys.SETTINGS].secure_cookies:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    # Pages, JSON and every download (results, reports, releases, .seb files)
    # can hold exam content or personal data: never kept by a browser or a
    # proxy. Only our versioned static files may be cached.
    if request.match_info.route.name != STATIC_ROUTE:
        response.headers.setdefault("Cache-Control", "no-store")
    elif "v" not in request.query:
        # Asked for without its version: a module imported by another
        # (exam.js imports "./journal.js"). Checked again on every load (a 304
        # while unchanged), so that it is never older than its importer.
        response.headers.setdefault("Cache-Control", "no-cache")


@web.middleware
async def input_middleware(request: web.Request, handler):
    """Refuse a NUL (or half a character) in the address or a plain form before
    any handler sees it: PostgreSQL would refuse it with an error, not a message."""
    if has_bad_characters(request.path) or any(
        has_bad_characters(k) or has_bad_characters(v) for k, v in request.query.items()
    ):
        raise UserError(
            "bad_characters",
            "the address holds a character no field may hold (a NUL, or half of "
            "a character): correct the address, or go back and follow the link again",
        )
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        if any(has_bad_characters(k) or (isinstance(v, str) and has_bad_characters(v)) for k, v in form.items()):
            raise UserError(
                "bad_characters",
                "a field of this form holds a character no text may hold (a NUL, "
                "or half of a character): remove it and send the form again",
            )
    return await handler(request)


def _is_api(request: web.Request) -> bool:
    # A JSON call (the proctor console's actions, say) gets a JSON error too.
    return (
        request.path.startswith("/api/") or request.path in ("/healthz",) or request.content_type == "application/json"
    )


def _error_response(
    request: web.Request, status: int, code: str, message: str, details: dict | None = None
) -> web.Response:
    message = request.app[appkeys.CATALOGS].error_message(language(request), code, message, details)
    if _is_api(request) or "application/json" in request.headers.get("Accept", ""):
        body = {"code": code, "message": message}
        if details:
            body["details"] = details
        return web.json_response({"error": body}, status=status)
    return render(request, "error.html", {"status": status, "code": code, "message": message}, status=status)


_HTTP_CODES = {
    400: "bad_request",
    401: "login_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "too_many_requests",
}


# The database is away (restarting, shutting down, refusing connections):
# the request may be retried, so 503, not 500. OperatorInterventionError is
# what a connection gets while PostgreSQL shuts down or starts up;
# InternalClientError what asyncpg raises on a pooled connection that a
# restart left half-way through an operation (the pool then drops it).
DATABASE_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every failure becomes a page in the layout (or JSON for the API): never a traceback."""
    try:
        return await handler(request)
    except UserError as e:
        return _error_response(request, e.status, e.code, e.message, e.details)
    except web.HTTPRequestEntityTooLarge:
        # A plain form over the server's limit, read by input_middleware before
        # the upload routes' own limits apply: the same refusal, naming the limit.
        e = uploads.body_too_large(request.client_max_size)
        return _error_response(request, e.status, e.code, e.message, e.details)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = _HTTP_CODES.get(e.status, "http_error")
        return _error_response(request, e.status, code, e.reason)
    except DATABASE_DOWN as e:
        log.error("database unavailable: %s", e, extra={"fields": {"id": request.get(appkeys.REQUEST_ID)}})
        return _error_response(
            request, 503, "database_unavailable", "the exam server cannot reach its database; try again in a moment"
        )
    except Exception:
        log.exception("unhandled error", extra={"fields": {"id": request.get(appkeys.REQUEST_ID)}})
        return _error_response(
            request,
            500,
            "internal_error",
            f"something went wrong on the server (reference {request.get(appkeys.REQUEST_ID)})",
        )
