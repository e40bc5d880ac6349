"""Security headers on every response, error pages in the layout, no tracebacks."""

import json

import asyncpg
import pytest
from aiohttp import web
from support.accounts import login
from support.results import make_exam, sit_all

from cbt.platform import middleware, routes
from cbt.platform.app import create_app
from cbt.platform.auth import PUBLIC
from cbt.platform.middleware import CSP


def assert_security_headers(resp):
    csp = resp.headers["Content-Security-Policy"]
    assert csp == CSP
    script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/login", "/healthz", "/static/cbt.css", "/no/such/page", "/"])
async def test_security_headers_everywhere(client, path):
    resp = await client.get(path, allow_redirects=False)
    assert_security_headers(resp)


async def test_security_headers_on_staff_pages_and_refusals(client, staff):
    await login(client, "teacher")
    for path in ("/staff", "/staff/users"):
        resp = await client.get(path)
        assert_security_headers(resp)
        assert resp.headers["Cache-Control"] == "no-store"


async def test_no_inline_script_or_style_in_pages(client, staff):
    await login(client, "admin")
    for path in ("/login", "/staff", "/staff/users", "/nowhere"):
        html = await (await client.get(path)).text()
        assert "<script>" not in html and "<script >" not in html
        assert " style=" not in html and "<style" not in html
        assert " onclick=" not in html


async def test_404_page_is_in_the_layout(client):
    resp = await client.get("/no/such/page")
    assert resp.status == 404
    html = await resp.text()
    assert '<main id="main"' in html
    assert 'data-code="not_found"' in html
    assert "Không tìm thấy trang" in html


async def test_404_is_json_for_the_api(client):
    resp = await client.get("/api/v1/nothing")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_405_is_a_clear_page(client):
    resp = await client.put("/login")
    assert resp.status == 405
    assert 'data-code="method_not_allowed"' in await resp.text()


async def test_unlisted_route_is_refused_by_default(settings, aiohttp_client):
    app = create_app(settings)

    async def secret(request):
        return web.Response(text="should never be served")

    app.router.add_get("/unlisted", secret, name="unlisted")
    client = await aiohttp_client(app)
    resp = await client.get("/unlisted")
    assert resp.status == 403
    assert "should never be served" not in await resp.text()


async def test_500_page_has_no_traceback(settings, aiohttp_client, monkeypatch):
    monkeypatch.setitem(routes.ACCESS, "boom", PUBLIC)
    app = create_app(settings)

    async def boom(request):
        raise RuntimeError("secret internal detail")

    app.router.add_get("/boom", boom, name="boom")
    client = await aiohttp_client(app)
    resp = await client.get("/boom")
    assert resp.status == 500
    html = await resp.text()
    assert "Traceback" not in html and "secret internal detail" not in html
    assert 'data-code="internal_error"' in html
    assert '<main id="main"' in html
    assert_security_headers(resp)
    resp = await client.get("/boom", headers={"Accept": "application/json"})
    body = await resp.json()
    assert body["error"]["code"] == "internal_error"
    assert "secret internal detail" not in body["error"]["message"]


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        ConnectionRefusedError(111, "Connection refused"),
        asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
    ],
)
async def test_a_database_restarting_is_503_to_retry_not_500(settings, error):
    """While PostgreSQL restarts, a request fails with a code the exam page retries."""
    from aiohttp.test_utils import make_mocked_request

    request = make_mocked_request("POST", "/api/v1/changes", app=create_app(settings))

    async def handler(request):
        raise error

    resp = await middleware.error_middleware(request, handler)
    assert resp.status == 503
    assert json.loads(resp.body)["error"]["code"] == "database_unavailable"


async def test_downloads_and_streams_carry_no_store_and_the_security_headers(client, conn, staff, signed_demo):
    """Results, reports and the proctor's live stream hold personal data: no
    browser or proxy may keep them, and the stream (whose headers go out before
    its handler returns) has the headers every other response has."""
    await sit_all(client, conn, await make_exam(conn, signed_demo, "THPT-A"))
    await login(client, "admin")
    for path in (
        "/workspace/results/TOAN-T/results.csv",
        "/workspace/results/TOAN-T/results.xlsx",
        "/board/exams/TOAN-T/report.xlsx",
    ):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert "attachment" in resp.headers["Content-Disposition"], path
        assert resp.headers["Cache-Control"] == "no-store", path
        assert_security_headers(resp)
    stream = await client.get("/proctor/exams/TOAN-T/events")
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Cache-Control"] == "no-store"
    assert_security_headers(stream)
    stream.close()
    # Our versioned static files are the one thing a browser may keep.
    static = await client.get("/static/cbt.css")
    assert "no-store" not in static.headers.get("Cache-Control", "")
