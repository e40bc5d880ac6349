"""`cbt demo` as a newcomer meets it in the workspace (issue 16): the demo bank
is in the school teacher's list of releases, and the school's reviewer signs
the school's release on the server with the department's key."""

import json
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
    assert {r[0] for r in await conn.fetch("SELECT o.code FROM bank_releases r JOIN orgs o ON o.id = r.org_id")} == {
        DEPARTMENT[0]
    }
    await sign_in(client, demo, "teacher")
    page = await (await client.get("/workspace/releases")).text()
    assert "Chưa có bản phát hành nào" not in page
    assert 'data-release="demo-thpt 2025.1"' in page and f'href="/workspace/exams/new?release={release_id}"' in page
    page = await (await client.get("/workspace/exams/new")).text()
    # Beside the 2025 bank: two to choose from, so neither is ticked for the teacher.
    assert re.search(
        rf'id="release-{release_id}" name="release" value="{release_id}" >\s*'
        rf'<label for="release-{release_id}">demo-thpt 2025.1',
        page,
    )
    assert '<label for="release-2">demo-2025 2025.1' in page
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


async def test_the_demo_has_a_2025_exam_with_a_passage_to_open_in_the_builder(client, conn, demo, dsn, settings):
    from cbt import exams
    from cbt.demo import DEMO_EXAM, DEMO_EXAM_2025

    # Both banks, each with its scheme: the 2025 one stores its three levels.
    schemes = dict(await conn.fetch("SELECT name, levels::text FROM bank_releases"))
    assert schemes["demo-thpt"] is None and "Vận dụng" in schemes["demo-2025"]
    row = await conn.fetchrow("SELECT * FROM exams WHERE code = $1", DEMO_EXAM_2025)
    assert row["status"] == "draft"
    assert await conn.fetchval("SELECT status FROM exams WHERE code = $1", DEMO_EXAM) == "open"
    spec = exams.spec_from_json(json.loads(row["spec"]))
    reading = spec.blueprint.sections[1].rows[0]
    assert (reading.type, reading.topic, reading.count, reading.children) == ("set", "reading", 1, 5)
    assert spec.level_targets == {1: 40, 2: 35, 3: 25} and spec.specification["reading"][3]
    release = await conn.fetchval("SELECT id FROM bank_releases WHERE name = 'demo-2025'")
    assert await exams.release_ids(conn, row["id"]) == [release]
    # The teacher opens it in the builder: three levels by the 2025 names, the passage a set cell.
    await sign_in(client, demo, "teacher")
    page = await (await client.get(f"/workspace/exams/{DEMO_EXAM_2025}/edit")).text()
    assert re.findall(r'<th scope="col" data-level="\d">([^<]+)<', page)[:3] == ["Biết", "Hiểu", "Vận dụng"]
    assert 'name="s1.sets.reading" value="1"' in page and 'name="s1.children.reading" value="5"' in page
    # Its matrix meets the targets it sets (37,5 / 37,5 / 25 against 40 / 35 / 25): nothing to warn of.
    assert 'id="target-status" role="status"></div>' in page
    # And a second run adds nothing.
    printed = await seed_demo(dsn, settings)
    assert f"Demo exam {DEMO_EXAM_2025}: exists" in printed and "demo-2025 2025.1: already imported" in printed
    assert await conn.fetchval("SELECT count(*) FROM exams") == 2
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 2
