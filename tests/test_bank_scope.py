"""Whose is a bank release, whose trust counts: a release belongs to the
organisation that imported it (a department's are shared with its schools, a
department sees its schools'), nothing crosses sideways between schools, and
anything another school holds is 'not found' (404), never 'forbidden'."""

import datetime as dt
import re

import asyncpg
import pytest
from support.accounts import CSRF_RE, login

from cbt import bank, exams, releases
from cbt.platform import db
from cbt.platform.errors import Conflict, NotFound, UserError
from itembank import keys as ik
from itembank import package
from itembank.demo import GRAPH, essay, graph_svg, single, truefalse4
from itembank.model import BankInfo

# One release per organisation: SGD-T (the department), THPT-A and THPT-B (its schools).
OWNERS = {"d": "SGD-T", "a": "THPT-A", "b": "THPT-B"}


def items_for(tag: str):
    t = tag.upper()
    return [
        single(
            f"HS-{t}1",
            "ham-so",
            1,
            f"Câu {t}1: đồ thị nào dưới đây?\n\n![Đồ thị]({GRAPH})",
            ["$y = x^3 - 3x$", "$y = -x^3 + 3x$", "$y = x^4$", "$y = x^2$"],
            media=(GRAPH,),
        ),
        truefalse4(
            f"HS-{t}2",
            "ham-so",
            2,
            f"Câu {t}2: cho hàm số $y = x^3 - 3x$.",
            [
                ("Có hai cực trị.", True),
                ("Đi qua gốc toạ độ.", True),
                ("Đồng biến trên R.", False),
                ("$y(1) = -2$.", True),
            ],
        ),
        essay(f"HS-{t}3", "tich-phan", 3, f"Câu {t}3: tính $\\int_0^1 2x\\,dx$.", "Bằng 1."),
    ]


def write_release(folder, tag: str, key) -> None:
    files = releases.release_files(
        BankInfo(name=f"rel-{tag}", version="1", title=f"Release {tag}"), items_for(tag), {GRAPH: graph_svg().encode()}
    )
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


@pytest.fixture
async def scoped(conn, staff, signer):
    """rel-d, rel-a, rel-b imported for SGD-T, THPT-A, THPT-B; their ids by tag."""
    made, folders = signer
    await bank.trust_key(conn, made.public_path.read_bytes(), "exam board")
    ids = {}
    for tag, code in OWNERS.items():
        ids[tag] = (await bank.import_release(conn, folders[tag], await org_id(conn, code))).release_id
    return ids


def bank_paths(tag: str, release_id: int) -> list[str]:
    t = tag.upper()
    return [
        f"/bank?release={release_id}",
        f"/bank/items/HS-{t}1/1",
        f"/bank/items/HS-{t}3/1",
        f"/bank/items/HS-{t}1/1/{GRAPH}",
    ]


async def test_another_schools_release_and_items_are_not_found_in_the_bank(client, staff, scoped):
    for user in ("teacher", "board", "admin", "reviewer"):  # of THPT-A
        await login(client, user)
        for path in bank_paths("b", scoped["b"]):
            assert (await client.get(path)).status == 404, (user, path)
        for tag in ("a", "d"):  # its own, and its department's
            for path in bank_paths(tag, scoped[tag]):
                assert (await client.get(path)).status == 200, (user, path)
        html = await (await client.get("/bank")).text()
        assert "rel-a" in html and "rel-d" in html and "HS-A1@1" in html and "HS-D1@1" in html
        assert "rel-b" not in html and "HS-B" not in html, user
        # A search by text or facet finds nothing of B's either.
        html = await (await client.get("/bank?q=HS-B")).text()
        assert "HS-B1@1" not in html and 'class="grid"' in html
        assert "HS-B3@1" not in await (await client.get("/bank?topic=tich-phan")).text()
    for user in ("b-teacher", "b-admin"):
        await login(client, user)
        for path in bank_paths("a", scoped["a"]):
            assert (await client.get(path)).status == 404, (user, path)
        for path in bank_paths("b", scoped["b"]) + bank_paths("d", scoped["d"]):
            assert (await client.get(path)).status == 200, (user, path)
    # The answer is the same as for what does not exist at all.
    resp = await client.get("/bank/items/HS-A1/1")
    assert 'data-code="unknown_item"' in await resp.text() or "unknown_item" in await resp.text()
    assert (await client.get("/bank?release=999999")).status == 404
    assert (await client.get("/bank?release=99999999999999999999")).status == 400
    assert (await client.get("/bank/items/HS-B1/99999999999")).status == 404


async def test_the_department_sees_all_its_schools_releases(client, staff, scoped):
    await login(client, "sgd-admin")
    for tag in OWNERS:
        for path in bank_paths(tag, scoped[tag]):
            assert (await client.get(path)).status == 200, path
    html = await (await client.get("/bank")).text()
    assert all(f"rel-{tag}" in html for tag in OWNERS)
    assert "THPT-A" in html and "THPT-B" in html  # whose each release is


async def test_an_item_page_names_only_releases_the_reader_may_use(client, conn, staff, scoped, signer, tmp_path):
    # The same item version in B's release and in a later department release:
    # school A reads it through the department's, and never learns of B's.
    made, _ = signer
    folder = tmp_path / "shared"
    files = releases.release_files(BankInfo(name="rel-shared", version="1"), items_for("b")[1:2], {})
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    package.sign(folder, ik.load_private_key(made.private_path))
    await bank.import_release(conn, folder, await org_id(conn, "SGD-T"))
    await login(client, "teacher")
    html = await (await client.get("/bank/items/HS-B2/1")).text()
    assert "rel-shared 1" in html and "rel-b" not in html
    assert (await client.get("/bank/items/HS-B1/1")).status == 404


# -- the builder and exams ----------------------------------------------------------


def exam_yaml(code: str, release: str) -> str:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    return f"""
code: {code}
title: Kiểm tra
subject: toan
release: {release} 1
duration_minutes: 30
window: {{opens: {tomorrow}T07:30:00+07:00, closes: {tomorrow}T10:00:00+07:00}}
sections:
  - title: Phần I
    rows:
      - {{topic: ham-so, level: 1, count: 1}}
"""


def builder_form(release_id: int, code: str = "KT-1") -> dict:
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    return {
        "release": str(release_id),
        "code": code,
        "title": "Kiểm tra",
        "subject": "toan",
        "duration_minutes": "30",
        "opens": f"{tomorrow}T07:30",
        "closes": f"{tomorrow}T10:00",
        "tz": "+07:00",
        "section_count": "1",
        "s0.title": "Phần I",
        "s0.c1.ham-so": "1",
        "action": "save",
    }


async def csrf(client, path="/workspace/exams") -> str:
    m = CSRF_RE.search(await (await client.get(path)).text())
    assert m, path
    return m.group(1)


async def test_the_builder_offers_and_takes_only_releases_the_school_may_use(client, conn, staff, scoped):
    for user in ("teacher", "admin"):  # of THPT-A
        await login(client, user)
        page = await (await client.get("/workspace/exams/new")).text()
        assert "rel-a 1" in page and "rel-d 1" in page and "rel-b" not in page
        assert (await client.get(f"/workspace/exams/new?release={scoped['b']}")).status == 404
        assert (await client.get(f"/workspace/exams/new?release={scoped['d']}")).status == 200
        resp = await client.get(f"/workspace/exams/blueprint.json?release={scoped['b']}&s0.c1.ham-so=1")
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_release"
        resp = await client.get(f"/workspace/exams/blueprint.json?release={scoped['a']}&s0.c1.ham-so=1")
        assert resp.status == 200
        token = await csrf(client)
        resp = await client.post(
            "/workspace/exams/new",
            data=builder_form(scoped["b"], f"KT-B-{user}") | {"csrf_token": token},
            allow_redirects=False,
        )
        assert resp.status == 404
        for action in ("check", "add_section"):
            resp = await client.post(
                "/workspace/exams/new",
                data=builder_form(scoped["b"]) | {"csrf_token": token, "action": action},
                allow_redirects=False,
            )
            assert resp.status == 404, action
    assert await conn.fetchval("SELECT count(*) FROM exams") == 0
    # A school builds from its department's release.
    resp = await client.post(
        "/workspace/exams/new", data=builder_form(scoped["d"]) | {"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    # Its own exam cannot be moved onto another school's release either.
    assert (await client.get(f"/workspace/exams/KT-1/edit?release={scoped['b']}")).status == 404
    page = await (await client.get("/workspace/exams/KT-1/edit?release=")).text()
    assert "rel-a 1" in page and "rel-b" not in page
    resp = await client.post(
        "/workspace/exams/KT-1/edit", data=builder_form(scoped["b"]) | {"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 404
    assert await conn.fetchval("SELECT release_id FROM exams WHERE code = 'KT-1'") == scoped["d"]


async def test_a_department_editing_a_schools_exam_uses_what_that_school_may(client, conn, staff, scoped):
    await exams.create_exam(conn, exams.parse_exam(exam_yaml("KT-A", "rel-a")), "THPT-A")
    await login(client, "sgd-admin")
    # The department itself may use B's release, but A's exam may not.
    assert (await client.get(f"/workspace/exams/new?release={scoped['b']}")).status == 200
    assert (await client.get(f"/workspace/exams/KT-A/edit?release={scoped['b']}")).status == 404
    page = await (await client.get("/workspace/exams/KT-A/edit?release=")).text()
    assert "rel-a 1" in page and "rel-d 1" in page and "rel-b" not in page


async def test_an_exam_may_only_use_a_release_its_organisation_may_use(conn, staff, scoped):
    with pytest.raises(NotFound) as refused:
        await exams.create_exam(conn, exams.parse_exam(exam_yaml("KT-X", "rel-b")), "THPT-A")
    assert refused.value.code == "unknown_release" and "--org THPT-A" in refused.value.message
    # Worded exactly as for a release that does not exist.
    with pytest.raises(NotFound) as missing:
        await exams.create_exam(conn, exams.parse_exam(exam_yaml("KT-X", "rel-nowhere")), "THPT-A")
    assert missing.value.message == refused.value.message.replace("rel-b", "rel-nowhere")
    assert await conn.fetchval("SELECT count(*) FROM exams") == 0
    for code, release in (("KT-1", "rel-b"), ("KT-2", "rel-d"), ("KT-3", "rel-a")):
        await exams.create_exam(
            conn, exams.parse_exam(exam_yaml(code, release)), "SGD-T" if code == "KT-3" else "THPT-B"
        )
    assert await conn.fetchval("SELECT count(*) FROM exams") == 3


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
        await bank.trust_key(
            conn,
            (await conn.fetchval("SELECT public_key_pem FROM signing_keys WHERE fingerprint = $1", fp)).encode(),
            "x",
            org_id=await org_id(conn, "THPT-A"),
            unrevoke=True,
        )
    assert await conn.fetchval("SELECT revoked_at FROM trusted_keys WHERE fingerprint = $1", fp) is not None


async def test_the_keys_page_shows_who_trusted_and_who_revoked(client, conn, staff):
    admin = await staff_user(conn, "admin")
    fp = await releases.generate_key(conn, admin, "Tổ Toán", "mot cum mat khau dai", "mot cum mat khau dai")
    await login(client, "sgd-admin")
    token = await csrf(client, "/workspace/keys")
    await client.post(f"/workspace/keys/{fp}/trust", data={"csrf_token": token})
    await login(client, "admin")
    row = await key_row(client, fp)
    assert "SGD-T" in row and "badge ok" in row  # the department's trust covers its school
    token = await csrf(client, "/workspace/keys")
    resp = await client.post(f"/workspace/keys/{fp}/revoke", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 400 and 'data-code="confirm_required"' in await resp.text()
    assert await conn.fetchval("SELECT revoked_at FROM trusted_keys WHERE fingerprint = $1", fp) is None
    resp = await client.post(
        f"/workspace/keys/{fp}/revoke", data={"csrf_token": token, "confirm": "1"}, allow_redirects=False
    )
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


async def test_the_sign_form_says_whether_the_releases_own_school_trusts_a_key(client, conn, staff):
    from support.releases import approved, built

    admin = await staff_user(conn, "admin")
    fp = await releases.generate_key(conn, admin, "Tổ Toán", "mot cum mat khau dai", "mot cum mat khau dai")
    await releases.trust(conn, admin, fp, [admin.org_id])  # THPT-A's trust only
    await login(client, "teacher")
    release_id = await built(client, await approved(conn))
    await login(client, "sgd-admin")  # may sign its school's release, with the school's trusted key
    html = await (await client.get(f"/workspace/releases/{release_id}")).text()
    option = re.search(rf'<option value="{fp}">[^<]*</option>', html)
    assert option and "chưa được tin cậy" not in option.group(0), option


async def test_revoking_a_key_nobody_trusts_yet_keeps_it_out(client, conn, staff):
    admin = await staff_user(conn, "admin")
    fp = await releases.generate_key(conn, admin, "Tổ Toán", "mot cum mat khau dai", "mot cum mat khau dai")
    await login(client, "admin")
    token = await csrf(client, "/workspace/keys")
    resp = await client.post(
        f"/workspace/keys/{fp}/revoke", data={"csrf_token": token, "confirm": "1"}, allow_redirects=False
    )
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
    from support.releases import staff_user as find

    return await find(conn, username)


async def signed_for(client, conn, tmp_path, key, *, user: str, pks_org: str, name: str):
    """A workspace release of `user`'s school, signed offline with `key`: (release id, .cbtbank bytes)."""
    from support.releases import add_draft, built, unsigned_folder

    author = "teacher" if pks_org == "THPT-A" else "b-teacher"
    # Without the item that shows a picture: a draft's media is not what is tested here.
    pks = [await add_draft(conn, item, org=pks_org, author=author) for item in items_for(name)[1:]]
    await login(client, user)
    release_id = await built(client, pks, name=f"ws-{name}")
    folder = await unsigned_folder(client, release_id, tmp_path)
    package.sign(folder, key)
    return release_id, package.pack_bytes(
        {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    )


async def test_a_key_trusted_by_one_school_does_not_import_for_another(client, conn, staff, tmp_path):
    from support.releases import error_code, upload

    made = ik.generate_key_files("to-toan-a", tmp_path / "k")
    key = ik.load_private_key(made.private_path)
    await bank.trust_key(conn, made.public_path.read_bytes(), "Tổ Toán A", org_id=await org_id(conn, "THPT-A"))
    release_id, packed = await signed_for(client, conn, tmp_path, key, user="b-teacher", pks_org="THPT-B", name="x")
    resp = await upload(client, release_id, package=("x.cbtbank", packed))
    html = await resp.text()
    assert resp.status == 400 and error_code(html) == "untrusted-signer" and "chưa tin cậy" in html
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
    from support.releases import upload

    resp = await upload(client, release_id, package=("y.cbtbank", packed))
    assert resp.status == 303, await resp.text()
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="verified"' in page
    # Were the key trusted by school B instead, A's release would no longer verify.
    await conn.execute("UPDATE key_trust SET org_id = $1 WHERE org_id = $2", b, a)
    page = await (await client.get(f"/workspace/releases/{release_id}")).text()
    assert 'data-status="invalid"' in page


async def test_a_release_imported_twice_for_two_schools_is_refused(conn, staff, signer):
    made, folders = signer
    await bank.trust_key(conn, made.public_path.read_bytes(), "exam board")
    first = await bank.import_release(conn, folders["a"], await org_id(conn, "THPT-A"))
    again = await bank.import_release(conn, folders["a"], await org_id(conn, "THPT-A"))
    assert again.already_imported and again.release_id == first.release_id
    with pytest.raises(Conflict) as refused:
        await bank.import_release(conn, folders["a"], await org_id(conn, "THPT-B"))
    assert refused.value.code == "release_conflict"
    assert await conn.fetchval("SELECT count(*) FROM bank_releases") == 1


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
        ids[code] = await conn.fetchval(
            "INSERT INTO orgs (code, name, kind, parent_id) VALUES ($1, $1, $2, $3) RETURNING id",
            code,
            kind,
            ids.get(parent),
        )
    first = orgs[-1][0]
    user = await conn.fetchval(
        "INSERT INTO users (username, role, org_id, password_hash) VALUES ('ad', 'admin', $1, 'x') RETURNING id",
        ids[first],
    )
    # A key kept on the server (trusted on its keys page, as it may have been), a revoked one from the CLI.
    await conn.execute(
        "INSERT INTO trusted_keys (fingerprint, name, public_key_pem) VALUES"
        " ('00000000000000aa', 'web', 'pem'), ('00000000000000bb', 'cli', 'pem')"
    )
    await conn.execute("UPDATE trusted_keys SET revoked_at = now() WHERE fingerprint = '00000000000000bb'")
    await conn.execute(
        "INSERT INTO signing_keys (fingerprint, org_id, name, private_key_pem, public_key_pem,"
        " created_by) VALUES ('00000000000000aa', $1, 'web', 'k', 'pem', $2)",
        ids[first],
        user,
    )
    for name, signer in (("from-workspace", "00000000000000aa"), ("from-cli", "00000000000000bb")):
        ids[name] = await conn.fetchval(
            "INSERT INTO bank_releases (name, version, signer, signed_at, manifest, signature, manifest_sha256,"
            " item_count) VALUES ($1, '1', $2, now(), 'm', 's', 'h', 0) RETURNING id",
            name,
            signer,
        )
    await conn.execute(
        "INSERT INTO workspace_releases (org_id, name, version, created_by, package, manifest,"
        " bank_release_id) VALUES ($1, 'from-workspace', '1', $2, 'p', 'm', $3)",
        ids[first],
        user,
        ids["from-workspace"],
    )
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
        assert await conn.fetchval("SELECT revoked_by FROM trusted_keys WHERE fingerprint = '00000000000000bb'") is None
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
