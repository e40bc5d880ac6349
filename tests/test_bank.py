"""The bank in the database: trust store, import of signed releases, the
read-only bank browser."""

import shutil

import pytest
from support.accounts import login
from support.bank import trust

from cbt import bank
from cbt.platform.errors import Conflict, NotFound, UserError
from itembank import keys as ik
from itembank import package, seal
from itembank.demo import BANK


async def test_import_needs_a_trusted_key(conn, signed_demo):
    folder, _, _ = signed_demo
    with pytest.raises(UserError, match="cbt keys trust"):
        await bank.import_release(conn, folder)
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 0


async def test_import_stores_release_items_and_media(conn, signed_demo):
    folder, packed, pub = signed_demo
    fp = await trust(conn, pub)
    result = await bank.import_release(conn, packed)
    assert not result.already_imported
    assert result.items >= 60 and result.new_items == result.items
    row = await conn.fetchrow("SELECT signer, item_count, manifest, signature FROM bank_releases")
    assert row["signer"] == fp and row["item_count"] == result.items
    assert row["manifest"] == (folder / "MANIFEST.json").read_bytes()
    assert await conn.fetchval("SELECT count(*) FROM bank_items") == result.items
    assert await conn.fetchval("SELECT count(*) FROM release_items") == result.items
    assert await conn.fetchval("SELECT count(*) FROM release_media") == result.media > 0
    # Every stored item is rebuilt exactly from its canonical source.
    for r in await conn.fetch("SELECT item_id, version FROM bank_items"):
        _, item = await bank.get_item(conn, r["item_id"], r["version"], [])  # a release for every organisation
        assert item.id == r["item_id"] and item.version == r["version"]


async def test_same_release_again_is_a_no_op(conn, signed_demo):
    folder, packed, pub = signed_demo
    await trust(conn, pub)
    first = await bank.import_release(conn, folder)
    again = await bank.import_release(conn, packed)  # the same content, as a .cbtbank
    assert again.already_imported and again.release_id == first.release_id
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 1


async def edited_copy(conn, folder, tmp_path, release_version=None):
    """A copy of the release whose first item was edited without a new item
    version, signed by another (trusted) key."""
    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    if release_version:
        bank_yaml = changed / "bank.yaml"
        bank_yaml.write_text(
            bank_yaml.read_text("utf-8").replace("version:", f"version: '{release_version}'\n#", 1), "utf-8"
        )
    item_file = sorted((changed / "items").glob("*.yaml"))[0]
    item_file.write_text(item_file.read_text("utf-8").replace("points:", "tags: [edited]\npoints:", 1), "utf-8")
    other = ik.generate_key_files("other", tmp_path / "k")
    package.sign(changed, ik.load_private_key(other.private_path))
    await trust(conn, other.public_path, "other signer")
    return changed


async def test_different_content_under_the_same_name_and_version_is_refused(conn, signed_demo, tmp_path):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    changed = await edited_copy(conn, folder, tmp_path)
    with pytest.raises(Conflict) as info:
        await bank.import_release(conn, changed)
    assert info.value.code == "release_conflict"
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 1


async def test_changed_item_under_an_old_version_is_refused_whole(conn, signed_demo, tmp_path):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    changed = await edited_copy(conn, folder, tmp_path, release_version="9.9")
    before = await conn.fetchval("SELECT count(*) FROM bank_items")
    with pytest.raises(Conflict) as info:
        await bank.import_release(conn, changed)
    assert info.value.code == "item_version_conflict"
    assert "new version number" in info.value.message
    # Nothing half-written: no second release, no new items.
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 1
    assert await conn.fetchval("SELECT count(*) FROM bank_items") == before


async def test_tampered_release_is_refused_with_the_file_named(conn, signed_demo, tmp_path):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    victim = sorted((bad / "items").glob("*.yaml"))[1]
    victim.write_bytes(victim.read_bytes() + b"\n# edited after signing\n")
    with pytest.raises(UserError) as info:
        await bank.import_release(conn, bad)
    assert info.value.code == "changed-file" and victim.name in info.value.message
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 0


async def test_revoked_key_no_longer_imports(conn, signed_demo):
    folder, _, pub = signed_demo
    fp = await trust(conn, pub)
    await bank.revoke_key(conn, fp)
    with pytest.raises(UserError):
        await bank.import_release(conn, folder)
    with pytest.raises(NotFound):
        await bank.revoke_key(conn, "0123456789abcdef")
    assert [r["fingerprint"] for r in await bank.list_keys(conn)] == [fp]


async def test_trust_refuses_what_is_not_an_ed25519_public_key(conn, tmp_path):
    with pytest.raises(UserError):
        await bank.trust_key(conn, b"-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n", "x")
    assert await conn.fetchval("SELECT count(*) FROM trusted_keys") == 0


async def test_sealed_release_imports_after_unsealing(conn, signed_demo):
    _, packed, pub = signed_demo
    await trust(conn, pub)
    sealed, key = seal.seal(packed)
    result = await bank.import_release(conn, seal.unseal(sealed, key))
    assert result.items >= 60


async def test_bank_browser_lists_filters_and_previews(client, staff, conn, signed_demo):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await login(client, "teacher")
    html = await (await client.get("/bank")).text()
    assert "Chữ ký hợp lệ khi nhập" in html
    row = await conn.fetchrow(
        "SELECT item_id, version, topic, level FROM bank_items WHERE type = 'single' ORDER BY item_id LIMIT 1"
    )
    html = await (await client.get(f"/bank?topic={row['topic']}&level={row['level']}&type=single")).text()
    assert f">{row['item_id']}@{row['version']}<" in html
    others = await conn.fetchval(
        "SELECT count(*) FROM bank_items WHERE NOT (topic = $1 AND level = $2 AND type = 'single')",
        row["topic"],
        row["level"],
    )
    assert others > 0
    page = await client.get(f"/bank/items/{row['item_id']}/{row['version']}")
    assert page.status == 200
    html = await page.text()
    assert "Thí sinh sẽ thấy" in html and "Đáp án" in html
    assert f"· {BANK.topics[row['topic']]} ·" in html  # the topic as the release names it (bank.yaml topics:)
    listing = await (await client.get("/bank")).text()
    assert '<option value="ham-so" >Hàm số</option>' in listing and "<td>Hàm số</td>" in listing
    assert "<td>ham-so</td>" not in listing
    assert (await client.get("/bank?level=9")).status == 400
    assert (await client.get("/bank/items/NOPE/1")).status == 404
    assert (await client.get("/bank/items/NOPE/abc")).status == 404


async def test_math_renders_as_mathml_and_media_is_served_safely(client, staff, conn, signed_demo):
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    await login(client, "reviewer")
    math_item = await conn.fetchrow("SELECT item_id, version FROM bank_items WHERE stem LIKE '%$%' LIMIT 1")
    html = await (await client.get(f"/bank/items/{math_item['item_id']}/{math_item['version']}")).text()
    assert "<math" in html
    media_row = await conn.fetchrow(
        "SELECT b.item_id, b.version, rm.path FROM bank_items b JOIN release_media rm "
        "ON rm.release_id = b.first_release_id WHERE b.source LIKE '%' || rm.path || '%' LIMIT 1"
    )
    url = f"/bank/items/{media_row['item_id']}/{media_row['version']}/{media_row['path']}"
    resp = await client.get(url)
    assert resp.status == 200
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    bad = f"/bank/items/{media_row['item_id']}/{media_row['version']}/media/../bank.yaml"
    assert (await client.get(bad)).status in (400, 404)


async def test_proctor_cannot_read_the_bank(client, staff):
    await login(client, "proctor")
    assert (await client.get("/bank")).status == 403
    assert (await client.get("/bank/template.xlsx")).status == 403


async def test_template_download(client, staff):
    await login(client, "teacher")
    resp = await client.get("/bank/template.xlsx")
    assert resp.status == 200
    body = await resp.read()
    assert body[:2] == b"PK"
    assert "attachment" in resp.headers["Content-Disposition"]


@pytest.mark.slow
async def test_bank_commands(dsn, tmp_path, signed_demo):
    from support.cli import cbt, env_for, one_line_error

    folder, packed, pub = signed_demo
    env = env_for(tmp_path / "d", CBT_DATABASE_URL=dsn)
    # No organisation yet: whose the release is must be said.
    assert "--all-orgs" in one_line_error(cbt("bank", "import", str(folder), env=env))
    refused = cbt("bank", "import", str(folder), "--all-orgs", env=env)
    assert refused.returncode == 1 and "cbt keys trust" in refused.stderr
    trusted = cbt("keys", "trust", str(pub), "--name", "Hội đồng demo", env=env)
    assert trusted.returncode == 0 and "trusted key" in trusted.stdout
    fp = trusted.stdout.split()[2]
    listed = cbt("keys", "list", env=env)
    assert f"{fp}  trusted  Hội đồng demo  (for every organisation)" in listed.stdout

    cbtbank = tmp_path / "demo.cbtbank"
    cbtbank.write_bytes(packed)
    sealed_path = tmp_path / "demo.sealed"
    sealed, key = seal.seal(packed)
    sealed_path.write_bytes(sealed)
    wrong_key = seal.seal(packed)[1]
    assert (
        "key"
        in one_line_error(cbt("bank", "import", str(sealed_path), "--key", wrong_key, "--all-orgs", env=env)).lower()
    )
    assert "--key" in one_line_error(cbt("bank", "import", str(sealed_path), env=env))
    ok = cbt("bank", "import", str(sealed_path), "--key", key, "--all-orgs", env=env)
    assert ok.returncode == 0 and "imported demo-thpt" in ok.stdout and "for every organisation" in ok.stdout
    again = cbt("bank", "import", str(cbtbank), "--all-orgs", env=env)
    assert again.returncode == 0 and "already imported" in again.stdout

    revoked = cbt("keys", "revoke", fp, env=env)
    assert revoked.returncode == 0 and "--unrevoke" in revoked.stdout
    assert "no trusted key" in one_line_error(cbt("keys", "revoke", "0000000000000000", env=env))
    # A revocation is final, unless the operator says otherwise, and is told so.
    assert "--unrevoke" in one_line_error(cbt("keys", "trust", str(pub), env=env))
    listed = cbt("keys", "list", env=env)
    assert f"{fp}  revoked" in listed.stdout and "by the operator  Hội đồng demo" in listed.stdout
    lifted = cbt("keys", "trust", str(pub), "--unrevoke", env=env)
    assert lifted.returncode == 0 and "was revoked" in lifted.stdout and "lifted" in lifted.stdout
    assert f"{fp}  trusted  demo-signer" in cbt("keys", "list", env=env).stdout  # named after the file again


async def test_bank_import_and_exam_create_commands_follow_the_organisation(conn, staff, dsn, tmp_path, signed_demo):
    from support.cli import cbt, env_for, one_line_error

    folder, _, pub = signed_demo
    env = env_for(tmp_path / "d", CBT_DATABASE_URL=dsn)
    # Several organisations: the command does not guess.
    assert "--org CODE" in one_line_error(cbt("bank", "import", str(folder), env=env))
    assert "NOPE" in one_line_error(cbt("bank", "import", str(folder), "--org", "NOPE", env=env))
    # Trusted by school B only, the key imports nothing for school A.
    b = await conn.fetchval("SELECT id FROM orgs WHERE code = 'THPT-B'")
    await bank.trust_key(conn, pub.read_bytes(), "Tổ Toán B", org_id=b)
    assert "cbt keys trust" in one_line_error(cbt("bank", "import", str(folder), "--org", "THPT-A", env=env))
    ok = cbt("bank", "import", str(folder), "--org", "THPT-B", env=env)
    assert ok.returncode == 0 and "(for THPT-B)" in ok.stdout, ok.stderr
    assert await conn.fetchval("SELECT o.code FROM bank_releases r JOIN orgs o ON o.id = r.org_id") == "THPT-B"
    exam = tmp_path / "exam.yaml"
    exam.write_text(EXAM_YAML, encoding="utf-8")
    refused = one_line_error(cbt("exam", "create", str(exam), "--org", "THPT-A", env=env))
    assert "no bank release demo-thpt 2025.1 for THPT-A" in refused
    made = cbt("exam", "create", str(exam), "--org", "THPT-B", env=env)
    assert made.returncode == 0, made.stderr


EXAM_YAML = """
code: KT-CLI
title: Kiểm tra
subject: toan
release: demo-thpt 2025.1
duration_minutes: 30
window: {opens: 2030-01-02T07:30:00+07:00, closes: 2030-01-02T10:00:00+07:00}
sections:
  - title: Phần I
    rows:
      - {topic: ham-so, level: 1, count: 1}
"""
