"""`cbt demo` as a newcomer meets it in the workspace (issue 16): the demo bank
is in the school teacher's list of releases."""

import re

import pytest
from conftest import CSRF_RE

from cbt.demo import DEPARTMENT, seed_demo


@pytest.fixture
async def demo(dsn, settings) -> dict:
    """The demo's accounts, as `cbt demo` prints them."""
    printed = await seed_demo(dsn, settings)
    return {"passwords": dict(re.findall(r"^\s+(\S+)\s+\S+\s+password: (\S+)", printed, re.M))}


async def sign_in(client, demo, username: str) -> None:
    token = CSRF_RE.search(await (await client.get("/login")).text()).group(1)
    resp = await client.post("/login", data={"username": username, "password": demo["passwords"][username],
                                             "csrf_token": token, "next": "/staff"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def test_the_demo_bank_is_in_the_school_teachers_workspace(client, conn, demo):
    release_id = await conn.fetchval("SELECT id FROM bank_releases WHERE name = 'demo-thpt'")
    # The department's, as an exam board's release is, and so its school's too.
    assert await conn.fetchval("SELECT o.code FROM bank_releases r JOIN orgs o ON o.id = r.org_id") == DEPARTMENT[0]
    await sign_in(client, demo, "teacher")
    page = await (await client.get("/workspace/releases")).text()
    assert "Chưa có bản phát hành nào" not in page
    assert 'data-release="demo-thpt 2025.1"' in page and f'href="/workspace/exams/new?release={release_id}"' in page
    page = await (await client.get("/workspace/exams/new")).text()
    assert f'<option value="{release_id}">demo-thpt 2025.1' in page
    await sign_in(client, demo, "reviewer")
    page = await (await client.get("/workspace/releases")).text()
    assert 'data-release="demo-thpt 2025.1"' in page and "/workspace/exams/new?release=" not in page
