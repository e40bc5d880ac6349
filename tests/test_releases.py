"""Releases built from approved workspace items: offline signing with
itembank's own functions (as `cbt bank sign` and `cbt bank pack` do), signing
on the server with a key kept under a passphrase, and the refusals."""

import asyncio
import base64
import datetime as dt
import io
import json
import re
import zipfile
import zoneinfo

import aiohttp
from support.accounts import PASSWORD, login
from support.browser import SCREENSHOTS, chromium_page, live_server, require_chromium
from support.cli import free_port
from support.releases import (
    add_draft,
    approved,
    build,
    built,
    csrf,
    error_code,
    items_for,
    release_row,
    staff_user,
    unsigned_folder,
    upload,
)

from cbt import bank, releases
from itembank import keys as ik
from itembank import package
from itembank.archive import MemoryFiles
from itembank.validate import check_release

PASSPHRASE = "ngan hang cau hoi 2025"


def new_key(tmp_path, name="to-toan"):
    made = ik.generate_key_files(name, tmp_path / "keys")
    return ik.load_private_key(made.private_path), made


# -- building ----------------------------------------------------------------------


async def test_build_release_from_approved_items(client, conn, staff):
    pks = await approved(conn)
    draft = await add_draft(conn, items_for("D")[0], state="submitted")
    await login(client, "teacher")
    html = await (await client.get("/workspace/releases")).text()
    assert "HS-A1@1" in html and "HS-D1@1" not in html, "only approved items are offered"
    assert 'id="select-all"' in html
    release_id = await built(client, pks)
    row = await release_row(conn, release_id)
    assert row["signature"] is None and row["bank_release_id"] is None
    with zipfile.ZipFile(io.BytesIO(row["package"])) as z:
        names = sorted(z.namelist())
        files = {n: z.read(n) for n in names}
    assert names == ["bank.yaml", "items/HS-A1.v1.yaml", "items/HS-A2.v1.yaml", "items/HS-A3.v1.yaml"]
    assert b"name: thpt-a-toan" in files["bank.yaml"] and b"status: approved" in files["items/HS-A1.v1.yaml"]
    # The stored manifest is `cbt bank sign`'s, with signer and time still empty.
    manifest = json.loads(row["manifest"])
    assert manifest["signer"] == "" and manifest["item_count"] == 3
    assert set(manifest["files"]) == set(names)
    assert not check_release(MemoryFiles(files, "x")).problems
    assert await conn.fetchval("SELECT count(*) FROM workspace_release_items WHERE release_id = $1", release_id) == 3
    listing = await (await client.get("/workspace/releases")).text()
    row_html = r'thpt-a-toan</a></td>\s*<td>2025.1</td>\s*<td>Toán 12 học kì I</td>\s*<td class="num">3</td>'
    assert re.search(row_html, listing), "the list shows name, version, title and item count"
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="unsigned"' in page and "cbt bank sign thpt-a-toan-2025.1 --key" in page
    # "Select all" in a filtered view: only level 2 is shown.
    html = await (await client.get("/workspace/releases?level=2")).text()
    assert "HS-A2@1" in html and "HS-A1@1" not in html
    # An unapproved item is refused, and nothing is stored.
    resp = await build(client, [pks[0], draft], version="2025.2")
    assert resp.status == 400 and error_code(await resp.text()) == "not_approved"
    assert await conn.fetchval("SELECT count(*) FROM workspace_releases") == 1


async def test_bad_build_input_is_refused_with_a_reason(client, conn, staff):
    pks = await approved(conn)
    await login(client, "teacher")
    for kw, pk_list, code in [
        ({"name": "toán 12"}, pks, "invalid-release"),
        ({"version": "1 0"}, pks, "bad_release_version"),
        ({}, [], "no_items_chosen"),
        ({"subject": "Toán 12"}, pks, "subject_not_in_list"),
        ({}, [999999], "unknown_items"),
    ]:
        resp = await build(client, pk_list, **kw)
        html = await resp.text()
        assert resp.status in (400, 404) and error_code(html) == code, (kw, html[-2000:])
    assert await conn.fetchval("SELECT count(*) FROM workspace_releases") == 0


async def test_duplicate_name_and_version_refused(client, conn, staff):
    pks = await approved(conn)
    await login(client, "teacher")
    await built(client, pks)
    resp = await build(client, pks[:1])
    assert resp.status == 409 and error_code(await resp.text()) == "release_exists"
    assert await conn.fetchval("SELECT count(*) FROM workspace_releases") == 1


# -- offline signing -----------------------------------------------------------------


async def test_offline_signature_imports_into_the_bank(client, conn, staff, tmp_path):
    pks = await approved(conn)
    await login(client, "teacher")
    release_id = await built(client, pks)
    folder = await unsigned_folder(client, release_id, tmp_path)
    key, made = new_key(tmp_path)
    await bank.trust_key(conn, made.public_path.read_bytes(), "Tổ Toán THPT-A")
    manifest = package.sign(folder, key)  # what `cbt bank sign` does
    packed = tmp_path / "signed.cbtbank"
    package.pack(folder, packed)  # what `cbt bank pack` does
    resp = await upload(client, release_id, package=("signed.cbtbank", packed.read_bytes()))
    assert resp.status == 303, await resp.text()
    row = await release_row(conn, release_id)
    assert row["signer"] == made.fingerprint and row["bank_release_id"] is not None
    assert bytes(row["manifest"]) == (folder / "MANIFEST.json").read_bytes()
    stored = await conn.fetchrow("SELECT * FROM bank_releases WHERE id = $1", row["bank_release_id"])
    assert (stored["name"], stored["version"], stored["item_count"]) == ("thpt-a-toan", "2025.1", 3)
    assert await conn.fetchval("SELECT count(*) FROM release_items WHERE release_id = $1", row["bank_release_id"]) == 3
    assert await conn.fetchval("SELECT count(*) FROM bank_items WHERE item_id LIKE 'HS-A%'") == 3
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="verified"' in page
    # The signing time is shown in the school's time zone, which may already be the next day.
    signed = dt.datetime.fromisoformat(manifest.signed_at.replace("Z", "+00:00"))
    local_day = signed.astimezone(zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%d/%m/%Y")
    assert "Tổ Toán THPT-A" in page and made.fingerprint in page and local_day in page
    # The signed download is byte for byte what `cbt bank pack` made.
    resp = await client.get(f"/workspace/releases/{release_id}/signed.cbtbank")
    assert resp.status == 200 and await resp.read() == packed.read_bytes()
    # Signed once is signed for good.
    resp = await upload(client, release_id, package=("signed.cbtbank", packed.read_bytes()))
    assert resp.status == 409 and error_code(await resp.text()) == "already_signed"


async def test_manifest_and_signature_files_are_enough(client, conn, staff, tmp_path):
    pks = await approved(conn)
    await login(client, "reviewer")
    release_id = await built(client, pks)
    folder = await unsigned_folder(client, release_id, tmp_path)
    key, made = new_key(tmp_path)
    await bank.trust_key(conn, made.public_path.read_bytes(), "board")
    package.sign(folder, key)
    resp = await upload(
        client,
        release_id,
        manifest=("MANIFEST.json", (folder / "MANIFEST.json").read_bytes()),
        signature=("MANIFEST.sig", (folder / "MANIFEST.sig").read_bytes()),
    )
    assert resp.status == 303, await resp.text()
    assert (await release_row(conn, release_id))["bank_release_id"] is not None
    resp = await upload(client, release_id + 1000, manifest=("MANIFEST.json", b"{}"), signature=("MANIFEST.sig", b""))
    assert resp.status == 404


async def test_untrusted_key_refused(client, conn, staff, tmp_path):
    pks = await approved(conn)
    await login(client, "teacher")
    release_id = await built(client, pks)
    folder = await unsigned_folder(client, release_id, tmp_path)
    _, trusted = new_key(tmp_path, "trusted")
    await bank.trust_key(conn, trusted.public_path.read_bytes(), "trusted")
    stranger, _ = new_key(tmp_path, "stranger")
    package.sign(folder, stranger)
    package.pack(folder, tmp_path / "s.cbtbank")
    resp = await upload(client, release_id, package=("s.cbtbank", (tmp_path / "s.cbtbank").read_bytes()))
    html = await resp.text()
    assert resp.status == 400 and error_code(html) == "untrusted-signer"
    assert "mà trường hoặc Sở/Phòng của bạn chưa tin cậy" in html
    row = await release_row(conn, release_id)
    assert row["signature"] is None and await conn.fetchval("SELECT count(*) FROM bank_releases") == 0


async def test_signature_over_other_bytes_refused(client, conn, staff, tmp_path):
    pks = await approved(conn)
    await login(client, "teacher")
    release_id = await built(client, pks)
    folder = await unsigned_folder(client, release_id, tmp_path)
    key, made = new_key(tmp_path)
    await bank.trust_key(conn, made.public_path.read_bytes(), "board")
    package.sign(folder, key)
    other = base64.b64encode(key.sign(b"some other bytes")) + b"\n"
    resp = await upload(
        client,
        release_id,
        manifest=("MANIFEST.json", (folder / "MANIFEST.json").read_bytes()),
        signature=("MANIFEST.sig", other),
    )
    assert resp.status == 400 and error_code(await resp.text()) == "bad-signature"
    # A good signature of another release's manifest (a second release with the same items) is refused too.
    second = await built(client, pks, version="2025.2")
    resp = await upload(
        client,
        second,
        manifest=("MANIFEST.json", (folder / "MANIFEST.json").read_bytes()),
        signature=("MANIFEST.sig", (folder / "MANIFEST.sig").read_bytes()),
    )
    assert resp.status == 400 and error_code(await resp.text()) == "changed-file"
    # A manifest over exactly these files, well signed, but naming another release.
    stored = json.loads((await release_row(conn, release_id))["manifest"])
    forged = package.Manifest(
        name="other-release",
        version="9",
        files=stored["files"],
        item_count=3,
        signer=made.fingerprint,
        signed_at="2025-01-01T00:00:00Z",
    )
    data, signature = package.sign_manifest(forged, key)
    resp = await upload(client, release_id, manifest=("MANIFEST.json", data), signature=("MANIFEST.sig", signature))
    assert resp.status == 400 and error_code(await resp.text()) == "other_manifest"
    assert await conn.fetchval("SELECT count(*) FROM workspace_releases WHERE signature IS NOT NULL") == 0
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 0


async def test_tampered_upload_refused(client, conn, staff, tmp_path):
    pks = await approved(conn)
    await login(client, "teacher")
    release_id = await built(client, pks)
    folder = await unsigned_folder(client, release_id, tmp_path)
    key, made = new_key(tmp_path)
    await bank.trust_key(conn, made.public_path.read_bytes(), "board")
    item = folder / "items" / "HS-A1.v1.yaml"
    # Changed after signing: the zip carries the old manifest with a new item file.
    package.sign(folder, key)
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    files["items/HS-A1.v1.yaml"] = files["items/HS-A1.v1.yaml"].replace(b"points: 0.25", b"points: 1")
    resp = await upload(client, release_id, package=("t.cbtbank", package.pack_bytes(files)))
    html = await resp.text()
    assert resp.status == 400 and error_code(html) == "upload_changed" and "HS-A1.v1.yaml" in html
    # Changed and then signed again: well signed, but not the release built here.
    item.write_bytes(item.read_bytes().replace(b"points: 0.25", b"points: 1"))
    package.sign(folder, key)
    package.pack(folder, tmp_path / "t2.cbtbank")
    resp = await upload(client, release_id, package=("t2.cbtbank", (tmp_path / "t2.cbtbank").read_bytes()))
    assert resp.status == 400 and error_code(await resp.text()) == "upload_changed"
    resp = await upload(client, release_id, package=("junk.cbtbank", b"not a zip"))
    assert resp.status == 400 and error_code(await resp.text()) == "bad-archive"
    resp = await upload(client, release_id)
    assert resp.status == 400 and error_code(await resp.text()) == "no_signature"
    assert (await release_row(conn, release_id))["signature"] is None
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 0


# -- organisations and roles ---------------------------------------------------------


async def test_another_schools_release_is_not_found(client, conn, staff, aiohttp_client, settings, tmp_path):
    pks = await approved(conn)
    b_pks = await approved(conn, "B", org="THPT-B", author="b-teacher")
    await login(client, "teacher")
    release_id = await built(client, pks)
    html = await (await client.get("/workspace/releases")).text()
    assert "HS-B1@1" not in html
    from cbt.platform.app import create_app

    other = await aiohttp_client(create_app(settings))
    await login(other, "b-teacher")
    for path in (
        f"/workspace/releases/{release_id}",
        f"/workspace/releases/{release_id}/unsigned.zip",
        f"/workspace/releases/{release_id}/signed.cbtbank",
    ):
        assert (await other.get(path)).status == 404, path
    assert f'href="/workspace/releases/{release_id}"' in await (await client.get("/workspace/releases")).text()
    assert f'href="/workspace/releases/{release_id}"' not in await (await other.get("/workspace/releases")).text()
    resp = await upload(other, release_id, package=("x.cbtbank", b"x"))
    assert resp.status == 404
    # School B cannot put school A's items in its release.
    resp = await build(other, pks[:1], name="thpt-b-toan")
    assert resp.status == 404 and error_code(await resp.text()) == "unknown_items"
    assert await built(other, b_pks, name="thpt-b-toan")
    await login(client, "admin")
    key_fp = await releases.generate_key(conn, await staff_user(conn, "admin"), "to-toan", PASSPHRASE, PASSPHRASE)
    await login(other, "b-admin")
    resp = await other.post(
        f"/workspace/releases/{release_id}/sign",
        data={"csrf_token": await csrf(other), "key": key_fp, "passphrase": PASSPHRASE},
    )
    assert resp.status == 404
    resp = await other.post(f"/workspace/keys/{key_fp}/trust", data={"csrf_token": await csrf(other)})
    assert resp.status == 404
    assert key_fp not in await (await other.get("/workspace/keys")).text()


async def test_roles(client, conn, staff):
    pks = await approved(conn)
    await login(client, "teacher")
    release_id = await built(client, pks)
    assert (await client.get("/workspace/keys")).status == 403
    token = await csrf(client)
    resp = await client.post(
        f"/workspace/releases/{release_id}/sign", data={"csrf_token": token, "key": "0" * 16, "passphrase": PASSPHRASE}
    )
    assert resp.status == 403
    resp = await client.post(
        "/workspace/keys", data={"csrf_token": token, "name": "x", "passphrase": PASSPHRASE, "passphrase2": PASSPHRASE}
    )
    assert resp.status == 403 and await conn.fetchval("SELECT count(*) FROM signing_keys") == 0
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'id="sign-form"' not in page and 'id="upload-form"' in page
    await login(client, "proctor")
    assert (await client.get("/workspace/releases")).status == 403


# -- signing on the server ------------------------------------------------------------


async def sign_on_server(client, release_id, fp, passphrase):
    token = await csrf(client, f"/workspace/releases/{release_id}")
    return await client.post(
        f"/workspace/releases/{release_id}/sign",
        data={"csrf_token": token, "key": fp, "passphrase": passphrase},
        allow_redirects=False,
    )


async def test_server_signing_with_right_and_wrong_passphrase(client, conn, staff):
    pks = await approved(conn)
    await login(client, "admin")
    token = await csrf(client, "/workspace/keys")
    resp = await client.post(
        "/workspace/keys", data={"csrf_token": token, "name": "Tổ Toán", "passphrase": "short", "passphrase2": "short"}
    )
    assert resp.status == 400 and error_code(await resp.text()) == "weak_passphrase"
    resp = await client.post(
        "/workspace/keys",
        data={"csrf_token": token, "name": "Tổ Toán", "passphrase": PASSPHRASE, "passphrase2": PASSPHRASE + "x"},
    )
    assert resp.status == 400 and error_code(await resp.text()) == "passphrase_mismatch"
    resp = await client.post(
        "/workspace/keys",
        data={"csrf_token": token, "name": "Tổ Toán", "passphrase": PASSPHRASE, "passphrase2": PASSPHRASE},
        allow_redirects=False,
    )
    assert resp.status == 303
    key = await conn.fetchrow("SELECT * FROM signing_keys")
    assert b"ENCRYPTED PRIVATE KEY" in key["private_key_pem"]
    assert PASSPHRASE.encode() not in key["private_key_pem"]
    fp = key["fingerprint"]
    release_id = await built(client, pks)
    # Not trusted yet: its signature does not import.
    resp = await sign_on_server(client, release_id, fp, PASSPHRASE)
    assert resp.status == 400 and error_code(await resp.text()) == "untrusted-signer"
    resp = await client.post(f"/workspace/keys/{fp}/trust", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    assert "Tổ Toán" in await (await client.get("/workspace/keys")).text()
    resp = await sign_on_server(client, release_id, fp, "wrong passphrase!")
    assert resp.status == 400 and error_code(await resp.text()) == "wrong_passphrase"
    resp = await sign_on_server(client, release_id, fp, "")
    assert resp.status == 400 and error_code(await resp.text()) == "passphrase_needed"
    assert (await release_row(conn, release_id))["signature"] is None
    resp = await sign_on_server(client, release_id, fp, PASSPHRASE)
    assert resp.status == 303, await resp.text()
    row = await release_row(conn, release_id)
    assert row["signer"] == fp and row["bank_release_id"] is not None
    # The signed release verifies with itembank against the key's public half.
    public = ik.public_key_from_pem(key["public_key_pem"].encode())
    signed = await client.get(f"/workspace/releases/{release_id}/signed.cbtbank")
    summary = package.verify(await signed.read(), [public])
    assert summary.item_count == 3 and summary.signer == fp
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="verified"' in page and fp in page and "Tổ Toán" in page
    # Revoking the key shows on the release page at the next look.
    await bank.revoke_key(conn, fp)
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="revoked"' in page
    # A stored signature that no longer matches is shown as invalid (the operator
    # lifts the revocation, the only one who may).
    await bank.trust_key(conn, key["public_key_pem"].encode(), "Tổ Toán", unrevoke=True)
    await conn.execute(
        "UPDATE workspace_releases SET signature = $2 WHERE id = $1", release_id, base64.b64encode(bytes(64)) + b"\n"
    )
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="invalid"' in page


async def make_key(client, conn, admin: str, name: str) -> str:
    """A key kept on the server, made and trusted by this administrator; its fingerprint."""
    await login(client, admin)
    token = await csrf(client, "/workspace/keys")
    resp = await client.post(
        "/workspace/keys",
        data={"csrf_token": token, "name": name, "passphrase": PASSPHRASE, "passphrase2": PASSPHRASE},
        allow_redirects=False,
    )
    assert resp.status == 303
    fp = await conn.fetchval("SELECT fingerprint FROM signing_keys WHERE name = $1", name)
    resp = await client.post(f"/workspace/keys/{fp}/trust", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    return fp


async def test_a_schools_reviewer_signs_with_its_departments_key(client, conn, staff):
    """Issue 16: the department's administrator made and trusted a key; the school's
    reviewer saw none. A department's keys serve its schools; a school's, no other school."""
    pks = await approved(conn)
    department_fp = await make_key(client, conn, "sgd-admin", "Khoá của Sở")
    other_school_fp = await make_key(client, conn, "b-admin", "Khoá của trường B")
    await login(client, "reviewer")
    release_id = await built(client, pks)
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert f'value="{department_fp}"' in page and other_school_fp not in page
    assert "chưa có khoá ký nào" not in page
    resp = await sign_on_server(client, release_id, other_school_fp, PASSPHRASE)
    assert error_code(await resp.text()) == "unknown_signing_key"
    assert (await release_row(conn, release_id))["signature"] is None
    resp = await sign_on_server(client, release_id, department_fp, PASSPHRASE)
    assert resp.status == 303, await resp.text()
    row = await release_row(conn, release_id)
    assert row["signer"] == department_fp
    # In the bank for the school that built it, verified against what the school trusts.
    assert (
        await conn.fetchval(
            "SELECT o.code FROM bank_releases r JOIN orgs o ON o.id = r.org_id WHERE r.id = $1", row["bank_release_id"]
        )
        == "THPT-A"
    )
    assert 'data-status="verified"' in await (await client.get(f"/workspace/releases/{release_id}")).text()
    # A teacher builds, but does not sign on the server.
    await login(client, "teacher")
    other = await built(client, await approved(conn, "B"), version="2025.2")
    assert (await sign_on_server(client, other, department_fp, PASSPHRASE)).status == 403


async def test_uploaded_key_needs_its_passphrase(client, conn, staff, tmp_path):
    made = ik.generate_key_files("board", tmp_path, PASSPHRASE.encode())
    await login(client, "admin")
    token = await csrf(client, "/workspace/keys")

    async def send(data: bytes, passphrase: str):
        form = aiohttp.FormData()
        for k, v in (("csrf_token", token), ("name", "board"), ("passphrase", passphrase)):
            form.add_field(k, v)
        form.add_field("key_file", data, filename="board.key")
        return await client.post("/workspace/keys/upload", data=form, allow_redirects=False)

    resp = await send(made.private_path.read_bytes(), "not the passphrase")
    assert resp.status == 400 and error_code(await resp.text()) == "wrong_passphrase"
    resp = await send(b"hello", PASSPHRASE)
    assert resp.status == 400 and error_code(await resp.text()) == "not_a_key"
    resp = await send(made.private_path.read_bytes(), PASSPHRASE)
    assert resp.status == 303
    assert await conn.fetchval("SELECT fingerprint FROM signing_keys") == made.fingerprint
    resp = await send(made.private_path.read_bytes(), PASSPHRASE)
    assert resp.status == 409 and error_code(await resp.text()) == "key_exists"


# -- in the browser ---------------------------------------------------------------------


def sign_in_browser(dsn: str, fp: str) -> tuple[str, list[str]]:
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        page.goto(base + "/login")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(base + "/staff")
        page.goto(base + "/workspace/releases")
        page.check("#select-all")
        assert page.locator("input.rel-item:checked").count() == 3
        page.fill("#rel-name", "thpt-a-toan")
        page.fill("#rel-version", "2025.1")
        page.fill("#rel-title", "Toán 12")
        page.click("#build-form button.primary")
        page.wait_for_url(re.compile(r".*/workspace/releases/\d+\?built=1"))
        page.select_option("#sign-key", fp)
        page.fill("#sign-pass", "sai mat khau roi")
        page.click("#sign-form button.primary")
        assert page.locator('[role="alert"][data-code="wrong_passphrase"]').is_visible()
        page.focus("#sign-pass")
        page.keyboard.type(PASSPHRASE)
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*\?signed=1"))
        status = page.locator("#verification").get_attribute("data-status")
        assert page.locator("#signer-fp").inner_text() == fp
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.screenshot(path=str(SCREENSHOTS / "workspace-release-signed-vi.png"), full_page=True)
        page.goto(base + "/workspace/releases")
        page.screenshot(path=str(SCREENSHOTS / "workspace-releases-vi.png"), full_page=True)
        return status, problems


async def test_sign_on_the_server_in_chromium(staff, conn, dsn):
    require_chromium()
    await approved(conn)
    admin = await staff_user(conn, "admin")
    fp = await releases.generate_key(conn, admin, "Tổ Toán", PASSPHRASE, PASSPHRASE)
    await releases.trust(conn, admin, fp, [admin.org_id])
    # Playwright's sync API cannot run inside this test's event loop: use a thread.
    status, problems = await asyncio.to_thread(sign_in_browser, dsn, fp)
    assert status == "verified"
    # The one refusal (the wrong passphrase, answered 400) is expected; nothing else may go wrong.
    assert problems == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"], problems
    assert await conn.fetchval("SELECT count(*) FROM bank_items WHERE item_id LIKE 'HS-A%'") == 3


# -- item sets and the workspace's level scheme (issue 18) ---------------------------------

# A passage and two questions, as the set editor sends them.
READING_SET = {
    "type": "set",
    "id": "DOC-1",
    "subject": "toan",
    "grade": "12",
    "topic": "ham-so",
    "lang": "vi",
    "stimulus": "Bảng giá trị của hàm số $y = x^2$:\n\n| $x$ | 1 | 2 |\n|---|---|---|\n| $y$ | 1 | 4 |",
    "child": ["0", "1"],
    "c0_id": "DOC-1-1",
    "c0_type": "single",
    "c0_level": "1",
    "c0_points": "0.25",
    "c0_stem": "Giá trị của $y$ tại $x = 2$ là",
    "c0_opt_A": "4",
    "c0_opt_B": "2",
    "c0_key": "A",
    "c0_shuffle": "on",
    "c1_id": "DOC-1-2",
    "c1_type": "short",
    "c1_level": "3",
    "c1_points": "0.5",
    "c1_stem": "Giá trị của $y$ tại $x = 1,5$ là",
    "c1_short_key": "2,25",
    "c1_short_format": "number",
}
LONE = {
    "type": "essay",
    "id": "LONE-1",
    "subject": "toan",
    "grade": "12",
    "topic": "ham-so",
    "level": "2",
    "points": "1",
    "lang": "vi",
    "stem": "Giải thích vì sao $y = x^2$ là hàm số chẵn.",
}


async def written_and_approved(conn, fields: dict) -> int:
    from cbt import authoring

    teacher, reviewer = await staff_user(conn, "teacher"), await staff_user(conn, "reviewer")
    pk = await authoring.create_item(conn, teacher, fields)
    await authoring.submit_items(conn, teacher, [pk])
    await authoring.review_item(conn, reviewer, pk, "approve", "")
    return pk


async def test_a_release_with_an_approved_set_validates_signs_and_imports_back(client, conn, staff, tmp_path):
    from cbt import authoring

    # The school writes at the 2025 levels (its department's choice).
    await authoring.set_level_scheme(conn, await staff_user(conn, "sgd-admin"), "2025")
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    set_pk = await written_and_approved(conn, READING_SET)
    item_pk = await written_and_approved(conn, LONE)
    await login(client, "teacher")
    page = await (await client.get("/workspace/releases")).text()
    assert 'data-set="DOC-1"' in page and "2 câu" in page and "DOC-1-1@1" not in page  # chosen whole, by its passage
    assert "Bản phát hành ghi thang mức độ mà đơn vị soạn câu hỏi: 1 Biết, 2 Hiểu, 3 Vận dụng." in page
    assert ">Hiểu</option>" in page.split('id="rf-level"')[1].split("</select>")[0]
    release_id = await built(client, [set_pk, item_pk])
    row = await release_row(conn, release_id)
    with zipfile.ZipFile(io.BytesIO(row["package"])) as z:
        files = {n: z.read(n) for n in z.namelist()}
    assert sorted(files) == ["bank.yaml", "items/DOC-1.v1.yaml", "items/LONE-1.v1.yaml"]
    assert b"levels: '2025'" in files["bank.yaml"]
    check = check_release(MemoryFiles(files, "built"))
    assert check.problems == [] and check.info.levels.names == ("Biết", "Hiểu", "Vận dụng")
    assert [s.set.id for s in check.sets] == ["DOC-1"] and len(check.items) == 3
    assert [s.item.id for s in check.items if s.item.set_id == "DOC-1"] == ["DOC-1-1", "DOC-1-2"]
    assert json.loads(row["manifest"])["item_count"] == 3
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-set="DOC-1"' in page and "DOC-1-1, DOC-1-2" in page
    assert re.search(r'<td class="num">3</td>', await (await client.get("/workspace/releases")).text())
    # Signed offline as cbt bank sign does, and imported back into the bank: the set whole, at the 2025 levels.
    folder = await unsigned_folder(client, release_id, tmp_path)
    key, made = new_key(tmp_path)
    await bank.trust_key(conn, made.public_path.read_bytes(), "Tổ Toán")
    package.sign(folder, key)
    package.pack(folder, tmp_path / "doc.cbtbank")
    resp = await upload(client, release_id, package=("doc.cbtbank", (tmp_path / "doc.cbtbank").read_bytes()))
    assert resp.status == 303, await resp.text()
    bank_release = (await release_row(conn, release_id))["bank_release_id"]
    assert (await bank.level_scheme(conn, [bank_release])).names == ("Biết", "Hiểu", "Vận dụng")
    stored = await conn.fetch(
        "SELECT b.item_id, b.level, b.set_position, s.set_id, s.version FROM bank_items b"
        " JOIN bank_sets s ON s.id = b.set_pk JOIN release_sets rs ON rs.set_pk = s.id"
        " WHERE rs.release_id = $1 ORDER BY b.set_position",
        bank_release,
    )
    assert [tuple(r) for r in stored] == [("DOC-1-1", 1, 0, "DOC-1", 1), ("DOC-1-2", 3, 1, "DOC-1", 1)]
    assert await conn.fetchval("SELECT set_pk FROM bank_items WHERE item_id = 'LONE-1'") is None
    item_set = bank.set_with_children(await conn.fetchval("SELECT source FROM bank_sets WHERE set_id = 'DOC-1'"))[0]
    assert item_set.status.value == "approved" and item_set.children == ("DOC-1-1", "DOC-1-2")


async def test_a_set_enters_a_release_approved_whole_and_once(client, conn, staff):
    from cbt import authoring

    await authoring.set_subjects(conn, "reviewer", ["toan"])
    teacher = await staff_user(conn, "teacher")
    set_pk = await written_and_approved(conn, READING_SET)
    # Its next version, still being written: not approved, so refused.
    draft = await authoring.save_item(conn, teacher, set_pk, {**READING_SET, "c1_points": "1"})
    await login(client, "teacher")
    resp = await build(client, [set_pk, draft])
    assert resp.status == 400 and error_code(await resp.text()) == "not_approved"
    # Approved too: two versions of one set are refused, naming it.
    await authoring.submit_items(conn, teacher, [draft])
    await authoring.review_item(conn, await staff_user(conn, "reviewer"), draft, "approve", "")
    resp = await build(client, [set_pk, draft])
    html = await resp.text()
    assert resp.status == 400 and error_code(html) == "item_twice" and "DOC-1" in html
    # An item approved at a level the scheme lost (the legacy Vận dụng cao, before the school chose
    # the 2025 three) is refused with the file and line to fix.
    old = await written_and_approved(conn, {**LONE, "level": "4"})
    await authoring.set_level_scheme(conn, await staff_user(conn, "admin"), "2025")
    resp = await build(client, [old])
    html = await resp.text()
    assert resp.status == 400 and error_code(html) == "invalid-release"
    assert "items/LONE-1.v1.yaml:7: level 4 is outside 1-3" in html
    assert await conn.fetchval("SELECT count(*) FROM workspace_releases") == 0
