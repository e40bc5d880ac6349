"""One rule for which exams a staff member may see, proved once for every
exam-scoped route of the URL table: an exam is its school's, and its
department's; another school's staff are told it does not exist (404
unknown_exam) and change nothing; a role the route is not for is refused
(403) wherever the exam is."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from support.accounts import PASSWORD, login
from support.results import make_exam

from cbt import accounts
from cbt.platform import routes
from cbt.platform.auth import PUBLIC, STAFF

EXAM_ROUTES = [r for r in routes.ROUTES if "{code}" in r.path and r.access is not PUBLIC]
# Routes that take JSON get a well-formed body, so that what is refused is the exam, not the body.
JSON_BODIES = {"proctor_act": {"action": "pause", "candidate": "0000000001"}}


async def _snapshot(conn) -> list:
    return [
        await conn.fetchval(f"SELECT count(*) FROM {t}")
        for t in (
            "attempts",
            "candidates",
            "candidate_forms",
            "essay_marks",
            "exam_stats",
            "audit_pending",
            "audit_events",
            "ticket_sheets",
        )
    ] + [tuple(await conn.fetchrow("SELECT status, spec, xmin::text FROM exams"))]


def _path(route: routes.Route, known: dict) -> str:
    return re.sub(r"\{([a-z_]+)\}", lambda m: known[m.group(1)], route.path)


async def _ask(client, route: routes.Route, path: str):
    headers = {"Accept": "application/json"}
    if route.method == "GET":
        resp = await client.get(path, headers=headers, allow_redirects=False)
    else:
        token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', await (await client.get("/staff")).text()).group(1)
        if route.name in JSON_BODIES:
            resp = await client.post(
                path, json=JSON_BODIES[route.name], headers={**headers, "X-CSRF-Token": token}, allow_redirects=False
            )
        else:
            resp = await client.post(path, data={"csrf_token": token}, headers=headers, allow_redirects=False)
    # A live stream (the proctor's events) answers with its headers and then
    # runs on: its status is the answer.
    code = None
    if resp.status >= 400 and resp.content_type == "application/json":
        code = (await resp.json())["error"]["code"]
    resp.close()
    return resp.status, code


def _allowed(route: routes.Route, role: str) -> bool:
    return route.access == STAFF or role in route.access


@pytest.fixture
async def exam_of_school_a(client, conn, staff, signed_demo):
    await make_exam(conn, signed_demo, "THPT-A")
    # Every role in the other school and in the department, besides the suite's accounts.
    for role in accounts.ROLES:
        for org, prefix in (("THPT-B", "b2"), ("SGD-T", "sgd2")):
            await accounts.add_user(conn, f"{prefix}-{role}", role, org, PASSWORD)
    essay = await conn.fetchval("SELECT item_pk FROM exam_items WHERE type = 'essay' LIMIT 1")
    return {"code": "TOAN-T", "pk": str(essay), "sheet": "1"}


def test_every_exam_scoped_route_is_walked():
    # The walk below takes its routes from the table: a new exam page is in it at once.
    assert len(EXAM_ROUTES) >= 20
    assert {r.path.split("/")[1] for r in EXAM_ROUTES} == {"proctor", "board", "workspace"}


async def test_an_exam_is_its_schools_and_its_departments_and_nobody_elses(client, conn, exam_of_school_a):
    outsiders = [f"b2-{role}" for role in accounts.ROLES]
    insiders = [role for role in accounts.ROLES] + [f"sgd2-{role}" for role in accounts.ROLES]
    before = await _snapshot(conn)
    for username in outsiders:
        role = username.split("-", 1)[1]
        await login(client, username)
        for route in EXAM_ROUTES:
            status, code = await _ask(client, route, _path(route, exam_of_school_a))
            expected = (404, "unknown_exam") if _allowed(route, role) else (403, "role_refused")
            assert (status, code) == expected, (username, route.name)
        await client.post("/logout", data={"csrf_token": ""})
        client.session.cookie_jar.clear()
    assert await _snapshot(conn) == before  # nobody else's request changed anything
    for username in insiders:
        role = username.split("-", 1)[-1]
        await login(client, username)
        for route in EXAM_ROUTES:
            status, code = await _ask(client, route, _path(route, exam_of_school_a))
            if _allowed(route, role):
                assert status < 500 and status != 403 and code != "unknown_exam", (username, route.name, status, code)
            else:
                assert (status, code) == (403, "role_refused"), (username, route.name)
        client.session.cookie_jar.clear()


def test_staff_pages_find_an_exam_only_through_the_one_rule():
    # An exam looked up by its code in a staff page's own SQL would be a second
    # visibility rule, free to drift from exams.visible_exam.
    by_code = re.compile(r"FROM exams\b[^\"']*?\bcode\s*=\s*\$\d", re.S)
    staff_modules = {r.handler.__module__ for r in routes.ROUTES if r.access is not PUBLIC}
    offenders = [
        m
        for m in sorted(staff_modules)
        if by_code.search(Path(importlib.import_module(m).__file__).read_text(encoding="utf-8"))
    ]
    assert offenders == []
