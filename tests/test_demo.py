"""`cbt demo` as a newcomer meets it in the workspace (issue 16): the demo bank
is in the school teacher's list of releases, and the school's reviewer signs
the school's release on the server with the department's key."""

import re

import pytest
from support.accounts import CSRF_RE

from cbt.demo import DEPARTMENT, SCHOOL, seed_demo


@pytest.fixture
async def demo(dsn, settings) -> dict:
    """The demo's accounts and the signing key's passphrase, as `cbt demo` prints them."""
    printed = await seed_demo(dsn, settings)
    passphrase = re.search(r"passphrase: (\S+)", printed)
    return {
        "passwords": dict(re.findall(r"^\s+(\S+)\s+\S+\s+password: (\S+)", printed, re.M)),
        "passphrase": passphrase.group(1) if passphrase else None,
    }


async def sign_in(client, demo, username: str) -> None:
    token = CSRF_RE.search(await (await client.get("/login")).text()).group(1)
    resp = await client.post(
        "/login",
        data={"username": username, "password": demo["passwords"][username], "csrf_token": token, "next": "/staff"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()


async def token_of(client, path: str) -> str:
    return CSRF_RE.search(await (await client.get(path)).text()).group(1)


async def test_the_demo_bank_is_in_the_school_teachers_workspace(client, conn, demo):
    release_id = await conn.fetchval("SELECT id FROM bank_releases WHERE name = 'demo-thpt'")
    # The department's, as an exam board's release is, and so its school's too.
    assert await conn.fetchval("SELECT o.code FROM bank_releases r JOIN orgs o ON o.id = r.org_id") == DEPARTMENT[0]
    await sign_in(client, demo, "teacher")
    page = await (await client.get("/workspace/releases")).text()
    assert "Chưa có bản phát hành nào" not in page
    assert 'data-release="demo-thpt 2025.1"' in page and f'href="/workspace/exams/new?release={release_id}"' in page
    page = await (await client.get("/workspace/exams/new")).text()
    assert re.search(
        rf'id="release-{release_id}" name="release" value="{release_id}" checked>\s*'
        rf'<label for="release-{release_id}">demo-thpt 2025.1',
        page,
    )
    await sign_in(client, demo, "reviewer")
    page = await (await client.get("/workspace/releases")).text()
    assert 'data-release="demo-thpt 2025.1"' in page and "/workspace/exams/new?release=" not in page


ITEM = {
    "id": "DEMO-T1",
    "type": "single",
    "subject": "toan",
    "grade": "12",
    "topic": "ham-so",
    "level": "1",
    "points": "0.25",
    "lang": "vi",
    "stem": "Đạo hàm của $y = x^2$ là",
    "opt_A": "$2x$",
    "opt_B": "$x$",
    "opt_C": "$2$",
    "opt_D": "$x^2$",
    "key": "A",
    "shuffle": "on",
}


async def test_the_demo_reviewer_signs_the_schools_release_on_the_server(client, conn, demo):
    await sign_in(client, demo, "teacher")
    resp = await client.post(
        "/workspace/items/new",
        data=ITEM | {"csrf_token": await token_of(client, "/workspace/items/new")},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    pk = int(re.search(r"/workspace/items/(\d+)", resp.headers["Location"]).group(1))
    resp = await client.post(
        "/workspace/items/submit",
        data={"csrf_token": await token_of(client, "/workspace/items"), "pk": str(pk)},
        allow_redirects=False,
    )
    assert resp.status == 303
    await sign_in(client, demo, "reviewer")
    resp = await client.post(
        f"/workspace/review/{pk}",
        data={"csrf_token": await token_of(client, "/workspace/review"), "decision": "approve"},
        allow_redirects=False,
    )
    assert resp.status == 303 and await conn.fetchval("SELECT state FROM draft_items") == "approved"
    resp = await client.post(
        "/workspace/releases",
        data={
            "csrf_token": await token_of(client, "/workspace/releases"),
            "name": "demo-thpt-toan",
            "version": "2025.1",
            "title": "Toán 12",
            "subject": "toan",
            "item": str(pk),
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    page_url = resp.headers["Location"].split("?")[0]
    page = await (await client.get(page_url)).text()
    fp = await conn.fetchval("SELECT fingerprint FROM signing_keys")
    assert f'value="{fp}"' in page and "chưa có khoá ký nào" not in page
    resp = await client.post(
        page_url + "/sign",
        data={"csrf_token": await token_of(client, page_url), "key": fp, "passphrase": demo["passphrase"]},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    signed = await conn.fetchrow(
        "SELECT w.signer, o.code FROM workspace_releases w JOIN bank_releases r"
        " ON r.id = w.bank_release_id JOIN orgs o ON o.id = r.org_id"
    )
    assert tuple(signed) == (fp, SCHOOL[0])
    assert 'data-status="verified"' in await (await client.get(page_url)).text()
