"""Releases built in the workspace from approved drafts, and their signature upload."""

import io
import re
import zipfile

import aiohttp

from itembank.demo import essay, single, truefalse4
from itembank.formats.yaml_format import serialise_item


def items_for(prefix: str):
    return [
        single(
            f"HS-{prefix}1",
            "ham-so",
            1,
            "Hàm số $y = x^2$ đồng biến trên khoảng nào?",
            ["$(0; +\\infty)$", "$(-\\infty; 0)$", "$\\mathbb{R}$", "$(-1; 1)$"],
        ),
        truefalse4(
            f"HS-{prefix}2",
            "ham-so",
            2,
            "Cho hàm số $y = x^3 - 3x$.",
            [
                ("Hàm số có hai cực trị.", True),
                ("Đồ thị đi qua gốc toạ độ.", True),
                ("Hàm số đồng biến trên $\\mathbb{R}$.", False),
                ("$y(1) = -2$.", True),
            ],
        ),
        essay(f"HS-{prefix}3", "tich-phan", 3, "Tính $\\int_0^1 2x\\,dx$.", "Bằng 1."),
    ]


async def add_draft(conn, item, *, org="THPT-A", author="teacher", state="approved") -> int:
    org_id = await conn.fetchval("SELECT id FROM orgs WHERE code = $1", org)
    author_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", author)
    return await conn.fetchval(
        """
        INSERT INTO draft_items (org_id, item_id, version, type, subject, grade, topic, level, points, stem, source,
                                 state, author_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id
        """,
        org_id,
        item.id,
        item.version,
        item.type.value,
        item.subject,
        item.grade,
        item.topic,
        item.level,
        item.points,
        item.stem,
        serialise_item(item),
        state,
        author_id,
    )


async def approved(conn, prefix="A", **kw) -> list[int]:
    return [await add_draft(conn, item, **kw) for item in items_for(prefix)]


async def csrf(client, path="/workspace/releases") -> str:
    html = await (await client.get(path)).text()
    m = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


async def build(client, pks, name="thpt-a-toan", version="2025.1", **more):
    data = [
        ("csrf_token", await csrf(client)),
        ("name", name),
        ("version", version),
        ("title", more.get("title", "Toán 12 học kì I")),
        ("subject", more.get("subject", "toan")),
    ]
    data += [("item", str(pk)) for pk in pks]
    return await client.post("/workspace/releases", data=data, allow_redirects=False)


async def built(client, pks, **kw) -> int:
    resp = await build(client, pks, **kw)
    assert resp.status == 303, await resp.text()
    m = re.fullmatch(r"/workspace/releases/(\d+)\?built=1", resp.headers["Location"])
    assert m, resp.headers["Location"]
    return int(m.group(1))


async def unsigned_folder(client, release_id, tmp_path):
    resp = await client.get(f"/workspace/releases/{release_id}/unsigned.zip")
    assert resp.status == 200
    assert "-unsigned.zip" in resp.headers["Content-Disposition"]
    folder = tmp_path / f"release-{release_id}"
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as z:
        z.extractall(folder)
    return folder


async def upload(client, release_id, **files):
    form = aiohttp.FormData()
    form.add_field("csrf_token", await csrf(client, f"/workspace/releases/{release_id}"))
    for field, (filename, data) in files.items():
        form.add_field(field, data, filename=filename, content_type="application/octet-stream")
    return await client.post(f"/workspace/releases/{release_id}/signature", data=form, allow_redirects=False)


def error_code(html: str) -> str:
    m = re.search(r'role="alert" data-code="([a-z_-]+)"', html)
    return m.group(1) if m else ""


async def release_row(conn, release_id):
    return await conn.fetchrow("SELECT * FROM workspace_releases WHERE id = $1", release_id)


async def staff_user(conn, username):
    row = await conn.fetchrow(
        "SELECT u.id, u.username, u.display_name, u.role, u.org_id, o.code AS org_code, o.kind AS org_kind"
        " FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.username = $1",
        username,
    )
    from cbt.accounts import Staff

    return Staff(**dict(row))
