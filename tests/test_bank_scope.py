"""Whose trust counts: a key is trusted by an organisation (a department's
trust covers its schools) or by the operator for all, and a revocation is
final."""

import re

import asyncpg
import pytest
from conftest import CSRF_RE, login

from cbt import bank, db, releases
from cbt.errors import Conflict, UserError
from itembank import keys as ik
from itembank import package
from itembank.demo import GRAPH, essay, graph_svg, single, truefalse4
from itembank.model import BankInfo

# One release per organisation: SGD-T (the department), THPT-A and THPT-B (its schools).
OWNERS = {"d": "SGD-T", "a": "THPT-A", "b": "THPT-B"}


def items_for(tag: str):
    t = tag.upper()
    return [
        single(f"HS-{t}1", "ham-so", 1, f"Câu {t}1: đồ thị nào dưới đây?\n\n![Đồ thị]({GRAPH})",
               ["$y = x^3 - 3x$", "$y = -x^3 + 3x$", "$y = x^4$", "$y = x^2$"], media=(GRAPH,)),
        truefalse4(f"HS-{t}2", "ham-so", 2, f"Câu {t}2: cho hàm số $y = x^3 - 3x$.",
                   [("Có hai cực trị.", True), ("Đi qua gốc toạ độ.", True), ("Đồng biến trên R.", False),
                    ("$y(1) = -2$.", True)]),
        essay(f"HS-{t}3", "tich-phan", 3, f"Câu {t}3: tính $\\int_0^1 2x\\,dx$.", "Bằng 1."),
    ]


def write_release(folder, tag: str, key) -> None:
    files = releases.release_files(BankInfo(name=f"rel-{tag}", version="1", title=f"Release {tag}"),
                                   items_for(tag), {GRAPH: graph_svg().encode()})
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    package.sign(folder, key)


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    root = tmp_path_factory.mktemp("scope")
    made = ik.generate_key_files("exam-board", root / "keys")
    key = ik.load_private_key(made.private_path)
    folders = {}
    for tag in OWNERS:
        folders[tag] = root / f"rel-{tag}"
        write_release(folders[tag], tag, key)
    return made, folders


async def org_id(conn, code: str) -> int:
    return await conn.fetchval("SELECT id FROM orgs WHERE code = $1", code)


async def csrf(client, path="/workspace/exams") -> str:
    m = CSRF_RE.search(await (await client.get(path)).text())
    assert m, path
    return m.group(1)


# -- trust ------------------------------------------------------------------------------


async def test_a_school_cannot_undo_a_revocation(client, conn, staff):
    admin = await staff_user(conn, "admin")
    fp = await releases.generate_key(conn, admin, "Tổ Toán", "mot cum mat khau dai", "mot cum mat khau dai")
    await login(client, "sgd-admin")
    token = await csrf(client, "/workspace/keys")
    resp = await client.post(f"/workspace/keys/{fp}/trust", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    await bank.revoke_key(conn, fp)  # the operator's `cbt keys revoke`
    await login(client, "admin")  # THPT-A's, whose key it is
    token = await csrf(client, "/workspace/keys")
    resp = await client.post(f"/workspace/keys/{fp}/trust", data={"csrf_token": token}, allow_redirects=False)
    html = await resp.text()
    assert resp.status == 409 and 'data-code="key_revoked"' in html, html[-500:]
    assert await conn.fetchval("SELECT revoked_at FROM trusted_keys WHERE fingerprint = $1", fp) is not None
    assert await bank.trusted_public_keys(conn, await org_id(conn, "THPT-A")) == []
    # Nor with the library's own call on behalf of an organisation, whatever it asks.
    with pytest.raises(Conflict):
        await bank.trust_key(conn, (await conn.fetchval(
            "SELECT public_key_pem FROM signing_keys WHERE fingerprint = $1", fp)).encode(), "x",
            org_id=await org_id(conn, "THPT-A"), unrevoke=True)
    assert await conn.fetchval("SELECT revoked_at FROM trusted_keys WHERE fingerprint = $1", fp) is not None


async def test_the_keys_page_shows_who_trusted_and_who_revoked(client, conn, staff):
    admin = await staff_user(conn, "admin")
    fp = await releases.generate_key(conn, admin, "Tổ Toán", "mot cum mat khau dai", "mot cum mat khau dai")
    await login(client, "sgd-admin")
    token = await csrf(client, "/workspace/keys")
    await client.post(f"/workspace/keys/{fp}/trust", data={"csrf_token": token})
    await login(client, "admin")
    row = await key_row(client, fp)
    assert "SGD-T" in row and 'badge ok' in row  # the department's trust covers its school
    token = await csrf(client, "/workspace/keys")
    resp = await client.post(f"/workspace/keys/{fp}/revoke", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 400 and 'data-code="confirm_required"' in await resp.text()
    assert await conn.fetchval("SELECT revoked_at FROM trusted_keys WHERE fingerprint = $1", fp) is None
    resp = await client.post(f"/workspace/keys/{fp}/revoke", data={"csrf_token": token, "confirm": "1"},
                             allow_redirects=False)
    assert resp.status == 303
    await login(client, "sgd-admin")
    row = await key_row(client, fp)
    assert "admin (THPT-A)" in row and "Đã thu hồi" in row
    assert f"/workspace/keys/{fp}/trust" not in row
    await client.get("/lang/en")
    row = await key_row(client, fp)
    assert "by admin (THPT-A)" in row and "Trusted by: SGD-T" in row
    # Another school's administrator can neither see nor revoke the key.
    await login(client, "b-admin")
    token = await csrf(client, "/workspace/keys")
    assert fp not in await (await client.get("/workspace/keys")).text()
    resp = await client.post(f"/workspace/keys/{fp}/revoke", data={"csrf_token": token, "confirm": "1"})
    assert resp.status == 404


async def test_revoking_a_key_nobody_trusts_yet_keeps_it_out(client, conn, staff):
    admin = await staff_user(conn, "admin")
    fp = await releases.generate_key(conn, admin, "Tổ Toán", "mot cum mat khau dai", "mot cum mat khau dai")
    await login(client, "admin")
    token = await csrf(client, "/workspace/keys")
    resp = await client.post(f"/workspace/keys/{fp}/revoke", data={"csrf_token": token, "confirm": "1"},
                             allow_redirects=False)
    assert resp.status == 303
    resp = await client.post(f"/workspace/keys/{fp}/trust", data={"csrf_token": token})
    assert resp.status == 409 and 'data-code="key_revoked"' in await resp.text()
    resp = await client.post(f"/workspace/keys/{fp}/revoke", data={"csrf_token": token, "confirm": "1"})
    assert resp.status == 409 and 'data-code="key_revoked"' in await resp.text()
    await client.get("/lang/en")
    assert "the server operator" not in await key_row(client, fp)


async def key_row(client, fp: str) -> str:
    html = await (await client.get("/workspace/keys")).text()
    m = re.search(rf'<tr data-fp="{fp}">.*?</tr>', html, re.S)
    assert m, html
    return m.group(0)


async def staff_user(conn, username):
    from test_releases import staff_user as find

    return await find(conn, username)


async def signed_for(client, conn, tmp_path, key, *, user: str, pks_org: str, name: str):
    """A workspace release of `user`'s school, signed offline with `key`: (release id, .cbtbank bytes)."""
    from test_releases import add_draft, built, unsigned_folder

    author = "teacher" if pks_org == "THPT-A" else "b-teacher"
    # Without the item that shows a picture: a draft's media is not what is tested here.
    pks = [await add_draft(conn, item, org=pks_org, author=author) for item in items_for(name)[1:]]
    await login(client, user)
    release_id = await built(client, pks, name=f"ws-{name}")
    folder = await unsigned_folder(client, release_id, tmp_path)
    package.sign(folder, key)
    return release_id, package.pack_bytes(
        {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()})


async def test_a_key_trusted_by_one_school_does_not_import_for_another(client, conn, staff, tmp_path):
    from test_releases import error_code, upload

    made = ik.generate_key_files("to-toan-a", tmp_path / "k")
    key = ik.load_private_key(made.private_path)
    await bank.trust_key(conn, made.public_path.read_bytes(), "Tổ Toán A", org_id=await org_id(conn, "THPT-A"))
    release_id, packed = await signed_for(client, conn, tmp_path, key, user="b-teacher", pks_org="THPT-B", name="x")
    resp = await upload(client, release_id, package=("x.cbtbank", packed))
    html = await resp.text()
    assert resp.status == 400 and error_code(html) == "untrusted-signer" and "not trusted by your school" in html
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 0
    with pytest.raises(UserError):
        await bank.import_release(conn, packed, await org_id(conn, "THPT-B"))
    with pytest.raises(UserError):  # nor for the department above the school that trusts it
        await bank.import_release(conn, packed, await org_id(conn, "SGD-T"))
    with pytest.raises(UserError):  # nor for everyone
        await bank.import_release(conn, packed, None)
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 0
    # Trusted by the department, it imports for its school, and the release is the school's.
    await bank.trust_key(conn, made.public_path.read_bytes(), "Tổ Toán A", org_id=await org_id(conn, "SGD-T"))
    resp = await upload(client, release_id, package=("x.cbtbank", packed))
    assert resp.status == 303, await resp.text()
    owner = await conn.fetchval("SELECT o.code FROM bank_releases r JOIN orgs o ON o.id = r.org_id")
    assert owner == "THPT-B"
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="verified"' in page


async def test_a_release_is_verified_against_its_own_schools_trust(client, conn, staff, tmp_path):
    made = ik.generate_key_files("to-toan-a", tmp_path / "k")
    key = ik.load_private_key(made.private_path)
    a, b = await org_id(conn, "THPT-A"), await org_id(conn, "THPT-B")
    await bank.trust_key(conn, made.public_path.read_bytes(), "Tổ Toán A", org_id=a)
    release_id, packed = await signed_for(client, conn, tmp_path, key, user="teacher", pks_org="THPT-A", name="y")
    from test_releases import upload

    resp = await upload(client, release_id, package=("y.cbtbank", packed))
    assert resp.status == 303, await resp.text()
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="verified"' in page
    # Were the key trusted by school B instead, A's release would no longer verify.
    await conn.execute("UPDATE key_trust SET org_id = $1 WHERE org_id = $2", b, a)
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="invalid"' in page


# -- the migration ----------------------------------------------------------------------


async def before_scopes(dsn: str, monkeypatch) -> asyncpg.Connection:
    """A database at the schema before migration 015."""
    every = db.migrations()
    monkeypatch.setattr(db, "migrations", lambda: [m for m in every if m.version < 15])
    conn = await asyncpg.connect(dsn)
    await db.migrate(conn)
    monkeypatch.setattr(db, "migrations", lambda: every)
    return conn


async def legacy_rows(conn, orgs: list[tuple[str, str, str | None]]) -> dict[str, int]:
    ids = {}
    for code, kind, parent in orgs:
        ids[code] = await conn.fetchval("INSERT INTO orgs (code, name, kind, parent_id) VALUES ($1, $1, $2, $3)"
                                        " RETURNING id", code, kind, ids.get(parent))
    first = orgs[-1][0]
    user = await conn.fetchval("INSERT INTO users (username, role, org_id, password_hash) VALUES ('ad', 'admin', $1,"
                               " 'x') RETURNING id", ids[first])
    # A key kept on the server (trusted on its keys page, as it may have been), a revoked one from the CLI.
    await conn.execute("INSERT INTO trusted_keys (fingerprint, name, public_key_pem) VALUES"
                       " ('00000000000000aa', 'web', 'pem'), ('00000000000000bb', 'cli', 'pem')")
    await conn.execute("UPDATE trusted_keys SET revoked_at = now() WHERE fingerprint = '00000000000000bb'")
    await conn.execute("INSERT INTO signing_keys (fingerprint, org_id, name, private_key_pem, public_key_pem,"
                       " created_by) VALUES ('00000000000000aa', $1, 'web', 'k', 'pem', $2)", ids[first], user)
    for name, signer in (("from-workspace", "00000000000000aa"), ("from-cli", "00000000000000bb")):
        ids[name] = await conn.fetchval(
            "INSERT INTO bank_releases (name, version, signer, signed_at, manifest, signature, manifest_sha256,"
            " item_count) VALUES ($1, '1', $2, now(), 'm', 's', 'h', 0) RETURNING id", name, signer)
    await conn.execute("INSERT INTO workspace_releases (org_id, name, version, created_by, package, manifest,"
                       " bank_release_id) VALUES ($1, 'from-workspace', '1', $2, 'p', 'm', $3)",
                       ids[first], user, ids["from-workspace"])
    return ids


async def test_the_migration_gives_existing_releases_and_trust_an_owner(empty_dsn, monkeypatch):
    conn = await before_scopes(empty_dsn, monkeypatch)
    try:
        ids = await legacy_rows(conn, [("SGD", "department", None), ("A", "school", "SGD"), ("B", "school", "SGD")])
        await db.migrate(conn)
        owners = dict(await conn.fetch("SELECT name, org_id FROM bank_releases"))
        # Built in B's workspace: B's. From the CLI, with several organisations: shared with all, as it was.
        assert owners == {"from-workspace": ids["B"], "from-cli": None}
        trust = dict(await conn.fetch("SELECT fingerprint, org_id FROM key_trust"))
        assert trust == {"00000000000000aa": ids["B"], "00000000000000bb": None}
        # Revoked before: by the operator, the only one who could.
        assert await conn.fetchval("SELECT revoked_by FROM trusted_keys WHERE fingerprint = '00000000000000bb'") \
            is None
    finally:
        await conn.close()


async def test_the_migration_gives_a_single_schools_releases_to_it(empty_dsn, monkeypatch):
    conn = await before_scopes(empty_dsn, monkeypatch)
    try:
        ids = await legacy_rows(conn, [("ONLY", "school", None)])
        await db.migrate(conn)
        assert [r["org_id"] for r in await conn.fetch("SELECT org_id FROM bank_releases")] == [ids["ONLY"]] * 2
    finally:
        await conn.close()
