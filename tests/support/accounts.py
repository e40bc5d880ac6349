"""Staff accounts of the test databases and signing in as one of them."""

from __future__ import annotations

import re

from cbt import accounts

PASSWORD = "correct horse battery"


# A department SGD-T with schools THPT-A and THPT-B; one account per role in
# THPT-A (named after the role), a department admin and a teacher of THPT-B.
STAFF_USERS = (
    *((role, role, "THPT-A") for role in accounts.ROLES),
    ("sgd-admin", "admin", "SGD-T"),
    ("b-admin", "admin", "THPT-B"),
    ("b-teacher", "teacher", "THPT-B"),
)


CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def csrf_of(client, path: str = "/login") -> str:
    resp = await client.get(path)
    html = await resp.text()
    m = CSRF_RE.search(html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


async def login(client, username: str, password: str = PASSWORD):
    token = await csrf_of(client)
    return await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/staff"},
        allow_redirects=False,
    )
