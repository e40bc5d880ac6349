"""Every route in the URL table, fed the values an attacker or a broken client
sends (NUL characters, numbers beyond 64 bits, the wrong JSON types) in the
path, the query, a form and a JSON body, by each kind of caller: the answer
is a 4xx that names the problem, never a 500."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from support.accounts import login
from support.delivery import sign_in
from support.paths import REPO
from support.results import make_exam

from cbt import roles
from cbt.platform import routes
from cbt.platform.app import create_app
from cbt.platform.auth import PUBLIC, STAFF

CBT = REPO / "cbt"

# What the handlers read: collected from their source, so a field added later is fuzzed too.
_READS = re.compile(
    r"""(?:query|form|post|data|body|raw|args|params)\.get\(\s*["']([a-z_0-9.]+)["']"""
    r"""|_get\(form, ["']([a-z_0-9.]+)["']|(?:query|body|form|post)\[["']([a-z_0-9.]+)["']\]"""
)


def field_names() -> list[str]:
    names = set()
    for path in CBT.rglob("*.py"):
        for m in _READS.finditer(path.read_text(encoding="utf-8")):
            names.add(next(g for g in m.groups() if g))
    # Fields every staff form has, and the builder's per-section ones.
    names |= {"username", "password", "display_name", "role", "q", "s0.title", "s0.points", "s0.time_limit"}
    return sorted(names)


BIG = "99999999999999999999"
BAD_TEXT = ["\x00", "teacher\x00", BIG, "-1", "1e999", "NaN", "\ud800"]
BAD_PATH = ["%00", "ESS%00AY", BIG, "-1"]
BAD_JSON = ["\u0000", "x\u0000y", int(BIG), -(2**70), 1e308, [1], {"a": [1]}, None, True, "\ud800"]


def path_with(route: routes.Route, value: str) -> str:
    path = route.path.replace("{path:media/.+}", f"media/{value}")
    return re.sub(r"\{[a-z_]+\}", value, path)


def good_path(route: routes.Route, known: dict) -> str:
    path = route.path.replace("{path:media/.+}", "media/x.png")
    return re.sub(r"\{([a-z_]+)\}", lambda m: known.get(m.group(1), "1"), path)


@pytest.fixture
async def fuzz_setup(client, conn, staff, signed_demo, settings, aiohttp_client):
    tickets = await make_exam(conn, signed_demo, "THPT-A")
    known = {
        "code": "TOAN-T",
        "lang": "vi",
        "release_id": str(await conn.fetchval("SELECT id FROM bank_releases")),
        "item_id": await conn.fetchval("SELECT item_id FROM bank_items ORDER BY id LIMIT 1"),
        "version": "1",
        "pk": str(await conn.fetchval("SELECT id FROM bank_items ORDER BY id LIMIT 1")),
        "fp": "0" * 64,
    }
    candidate, _ = await sign_in(client, tickets["0000000001"])
    return known, candidate


async def _staff_client(aiohttp_client, settings, who: str):
    c = await aiohttp_client(create_app(settings.replace(public_url="http://thi.example.edu.vn")))
    assert (await login(c, who)).status == 303
    page = await (await c.get("/staff")).text()
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    return c, token


async def _send(c, route, path, *, token, headers, form=None, json_body=None, query=""):
    kwargs = {"headers": headers, "allow_redirects": False}
    if route.method == "POST":
        if json_body is not None:
            kwargs["json"] = json_body
            kwargs["headers"] = {**headers, "X-CSRF-Token": token}
        else:
            kwargs["data"] = {**(form or {}), "csrf_token": token}
    async with c.request(route.method, path + query, **kwargs) as resp:
        if resp.headers.get("Content-Type", "").startswith("text/event-stream"):
            return resp.status, ""  # a live stream: its status is the answer
        return resp.status, await resp.text(errors="replace")


def _problem(route, how, status, text) -> str | None:
    if status >= 500 or "Traceback" in text:
        return f"{route.method} {route.name} {how!r}: {status} {text[:200]!r}"
    return None


async def test_no_route_answers_bad_values_with_a_500(fuzz_setup, settings, aiohttp_client):
    known, candidate = fuzz_setup
    names = field_names()
    problems: list[str] = []
    callers = {
        "admin": await _staff_client(aiohttp_client, settings, "admin"),
        "reviewer": await _staff_client(aiohttp_client, settings, "reviewer"),
    }
    for route in routes.ROUTES:
        if route.name in ("logout",):
            continue
        who = "reviewer" if route.name == "ws_review_decide" else "admin"
        c, token = callers[who]
        headers = dict(candidate) if route.path.startswith("/api/") else {}
        # Bad values in the path.
        if "{" in route.path:
            for value in BAD_PATH:
                status, text = await _send(c, route, path_with(route, value), token=token, headers=headers)
                problems.append(_problem(route, ("path", value), status, text))
        path = good_path(route, known)
        # Bad values in the query string and in a form, one value at a time in every field.
        for value in BAD_TEXT:
            query = "?" + "&".join(f"{quote(n)}={quote(value, errors='surrogatepass')}" for n in names)
            status, text = await _send(c, route, path, token=token, headers=headers, query=query)
            problems.append(_problem(route, ("query", value), status, text))
            if route.method == "POST":
                form = {n: value for n in names}
                try:
                    status, text = await _send(c, route, path, token=token, headers=headers, form=form)
                except UnicodeEncodeError:
                    continue  # a lone surrogate cannot be sent as a form
                problems.append(_problem(route, ("form", value), status, text))
        # Bad values of every JSON type, in every field the handlers read.
        if route.method == "POST":
            for value in BAD_JSON:
                body = {n: value for n in names}
                try:
                    status, text = await _send(c, route, path, token=token, headers=headers, json_body=body)
                except (UnicodeEncodeError, TypeError):
                    continue
                problems.append(_problem(route, ("json", value), status, text))
                for list_field in ("changes", "events"):
                    body = {list_field: [{n: value for n in names}]}
                    status, text = await _send(c, route, path, token=token, headers=headers, json_body=body)
                    problems.append(_problem(route, ("json", list_field, value), status, text))
    problems = [p for p in problems if p]
    assert not problems, f"{len(problems)} requests got a 500:\n" + "\n".join(problems[:60])


def test_every_route_names_its_access_by_a_named_role_set():
    # A set written on the spot drifts from its twin; the named sets are in cbt/roles.py.
    named = {v for k, v in vars(roles).items() if k.isupper() and isinstance(v, frozenset)}
    odd = [r.name for r in routes.ROUTES if r.access not in (PUBLIC, STAFF) and not any(r.access is s for s in named)]
    assert odd == []


def test_only_the_candidate_api_goes_without_a_csrf_token():
    # Bearer-authenticated JSON: another site cannot send the Authorization header.
    exempt = {r.path for r in routes.ROUTES if not r.csrf}
    assert exempt and all(p.startswith("/api/v1/") for p in exempt)
    assert routes.CSRF_EXEMPT == {r.name for r in routes.ROUTES if not r.csrf}
    assert {r.name for r in routes.ROUTES if r.method == "POST" and r.path.startswith("/api/v1/")} == routes.CSRF_EXEMPT


def test_route_names_say_their_area_by_one_prefix():
    # The workspace's routes were named ws_item... and workspace_exam...: one prefix per area now.
    prefixes = {
        "/workspace/": "ws_",
        "/board/": "board_",
        "/proctor/": "proctor_",
        "/api/v1/": "api_",
        "/bank": "bank_",
        "/staff": "staff_",
    }
    odd = [
        r.name
        for r in routes.ROUTES
        for path, prefix in prefixes.items()
        if r.path.startswith(path) and not r.name.startswith(prefix)
    ]
    assert odd == []
    assert len({r.name for r in routes.ROUTES}) == len(routes.ROUTES)
