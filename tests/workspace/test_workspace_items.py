"""The workspace pages over HTTP (forms, CSRF, errors, access) and one walk
through them in Chromium: a teacher writes an item with math, watches the
live preview, saves and submits it; a reviewer approves it."""

import asyncio
import html
import io
import re
from decimal import Decimal

from support.accounts import PASSWORD, csrf_of, login
from support.authoring import BASE, FIELDS, PNG, YAML_TWO, template_bytes, who
from support.browser import SCREENSHOTS, chromium_page, live_server, require_chromium
from support.cli import free_port
from support.i18n import VIETNAMESE

from cbt import authoring

NEW = "/workspace/items/new"


async def post_form(client, path, data, *, token_from=NEW):
    token = await csrf_of(client, token_from)
    return await client.post(path, data={**data, "csrf_token": token}, allow_redirects=False)


def form_of(kind: str, **more) -> dict:
    return {**BASE, **FIELDS[kind], **more}


async def create(client, kind="single", item_id="W-1", **more) -> int:
    resp = await post_form(client, NEW, {**form_of(kind, **more), "id": item_id})
    assert resp.status == 303, await resp.text()
    return int(re.search(r"/workspace/items/(\d+)", resp.headers["Location"]).group(1))


async def test_roles_and_the_new_item_form(client, staff):
    await login(client, "teacher")
    html = await (await client.get(NEW)).text()
    assert 'name="csrf_token"' in html and 'id="f-stem"' in html and 'value="Q-001"' in html
    assert "authoring.js" in html and "<script>" not in html
    for page in ("/workspace/items", "/workspace/review", "/workspace/items/import"):
        assert (await client.get(page)).status == 200
    assert (await client.get("/workspace/subjects")).status == 403
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    for role in ("proctor", "board"):
        await login(client, role)
        resp = await client.get("/workspace/items")
        assert resp.status == 403 and "role_refused" in await resp.text()
        await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})


async def test_create_needs_csrf_and_saves_nothing_without_it(client, conn, staff):
    await login(client, "teacher")
    resp = await client.post(NEW, data={**form_of("single"), "id": "W-1"}, allow_redirects=False)
    assert resp.status == 403
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0


async def test_errors_are_shown_next_to_their_fields_and_the_typing_is_kept(client, conn, staff):
    await login(client, "teacher")
    resp = await post_form(
        client, NEW, {**form_of("single", level="9", opt_B="$3x^2$"), "id": "W-1", "stem": "Câu hỏi của tôi $x^2$"}
    )
    html = await resp.text()
    assert resp.status == 400
    assert 'id="err-level"' in html and 'id="err-opt_B"' in html and 'aria-invalid="true"' in html
    assert "Câu hỏi của tôi $x^2$" in html and 'value="W-1"' in html
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0


async def test_write_every_type_then_page_preview_and_key(client, conn, staff):
    await login(client, "teacher")
    for n, kind in enumerate(FIELDS):
        if kind == "multiple":
            token = await csrf_of(client, NEW)
            pairs = [(k, v) for k, v in {**BASE, **FIELDS[kind]}.items() if k != "key"]
            resp = await client.post(
                NEW,
                data=[*pairs, ("key", "A"), ("key", "C"), ("id", f"W-{n}"), ("csrf_token", token)],
                allow_redirects=False,
            )
            assert resp.status == 303
            continue
        pk = await create(client, kind, f"W-{n}")
        html = await (await client.get(f"/workspace/items/{pk}?done=saved")).text()
        assert 'class="card question ws-student"' in html and 'role="status"' in html
    single = await conn.fetchval("SELECT id FROM draft_items WHERE type = 'single'")
    html = await (await client.get(f"/workspace/items/{single}")).text()
    assert "<math" in html and 'id="key-h"' in html
    multiple = await conn.fetchval("SELECT source FROM draft_items WHERE type = 'multiple'")
    assert authoring.item_from_draft(multiple).correct_option_ids == ("A", "C")


async def test_live_preview_renders_mathml_and_never_the_key(client, conn, staff):
    await login(client, "teacher")
    data = {**form_of("short"), "id": "W-P", "explanation": "Bí mật lời giải"}
    resp = await post_form(client, "/workspace/items/preview", data)
    html = await resp.text()
    assert resp.status == 200 and "<math" in html and 'id="pv-short"' in html
    assert "-1,5" not in html and "Bí mật lời giải" not in html
    bad = await post_form(client, "/workspace/items/preview", {**form_of("single"), "level": "x"})
    assert 'data-problems="1"' in await bad.text()
    assert (await client.post("/workspace/items/preview", data=form_of("single"))).status == 403
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0


async def test_upload_image_then_preview_inlines_it(client, conn, staff):
    await login(client, "teacher")
    pk = await create(client)
    token = await csrf_of(client, f"/workspace/items/{pk}")

    def upload(name, content):
        body = {"csrf_token": token, "image": io.BytesIO(content)}
        return client.post(f"/workspace/items/{pk}/media", data=_files(body, name), allow_redirects=False)

    resp = await upload("ve.png", PNG)
    assert resp.status == 303
    svg = await upload("x.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    assert svg.status == 400 and "svg_refused" in await svg.text()
    fields = {**form_of("single"), "stem": "Hình ![](media/ve.png)", "pk": str(pk)}
    html = await (await post_form(client, "/workspace/items/preview", fields)).text()
    assert 'src="data:image/png;base64,' in html


def _files(body, name):
    from aiohttp import FormData

    form = FormData()
    for k, v in body.items():
        if isinstance(v, io.BytesIO):
            form.add_field(k, v, filename=name, content_type="application/octet-stream")
        else:
            form.add_field(k, v)
    return form


async def test_other_school_gets_404_and_colleague_is_read_only(client, conn, staff):
    await login(client, "teacher")
    pk = await create(client)
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    await login(client, "b-teacher")
    assert (await client.get(f"/workspace/items/{pk}")).status == 404
    resp = await post_form(client, f"/workspace/items/{pk}", form_of("single"))
    assert resp.status == 404
    assert "W-1" not in await (await client.get("/workspace/items")).text()
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    await login(client, "reviewer")
    html = await (await client.get(f"/workspace/items/{pk}")).text()
    assert 'id="item-form"' not in html
    resp = await post_form(client, f"/workspace/items/{pk}", form_of("single"))
    assert resp.status == 403 and "not_your_item" in await resp.text()


async def test_an_items_history_shows_times_in_the_servers_zone(settings, aiohttp_client, conn, staff):
    from zoneinfo import ZoneInfo

    from cbt.platform.app import create_app

    # A page of no exam: the server's zone, whichever it is set to.
    client = await aiohttp_client(create_app(settings.replace(time_zone="Asia/Tokyo")))
    await login(client, "teacher")
    pk = await create(client)
    at = await conn.fetchval("SELECT at FROM review_events WHERE draft_pk = $1", pk)
    html = await (await client.get(f"/workspace/items/{pk}")).text()
    history = html.split('id="events-h"', 1)[1].split("</table>", 1)[0]
    local = at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (
        f'<time datetime="{local.isoformat(timespec="seconds")}" title="Asia/Tokyo">'
        f"{local:%H:%M %d/%m/%Y} (GMT+9)</time>" in history
    )
    assert "UTC" not in history


async def test_submit_review_queue_self_approval_and_approve(client, conn, staff):
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    await login(client, "teacher")
    pk = await create(client)
    resp = await post_form(client, "/workspace/items/submit", {"pk": str(pk), "back": str(pk)})
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=submitted")
    assert "W-1" in await (await client.get("/workspace/review")).text()
    # The teacher cannot reach the decision at all.
    assert (await post_form(client, f"/workspace/review/{pk}", {"decision": "approve"})).status == 403
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    await login(client, "reviewer")
    html = await (await client.get("/workspace/review")).text()
    assert f"/workspace/items/{pk}" in html
    refused = await post_form(client, f"/workspace/review/{pk}", {"decision": "return", "comment": ""})
    assert refused.status == 400 and "comment_required" in await refused.text()
    done = await post_form(client, f"/workspace/review/{pk}", {"decision": "approve"})
    assert done.status == 303
    assert await conn.fetchval("SELECT state FROM draft_items WHERE id = $1", pk) == "approved"
    # The reviewer's own item: refused with a clear message.
    own = await create(client, item_id="R-1")
    await post_form(client, "/workspace/items/submit", {"pk": str(own)})
    resp = await post_form(client, f"/workspace/review/{own}", {"decision": "approve"})
    assert resp.status == 403 and "own_item" in await resp.text()


async def test_approved_item_saves_as_a_new_version(client, conn, staff):
    teacher = await who(conn, "teacher")
    pk = await authoring.create_item(conn, teacher, {**form_of("single"), "id": "W-9"})
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    await authoring.submit_items(conn, teacher, [pk])
    await authoring.review_item(conn, await who(conn, "reviewer"), pk, "approve", "")
    await login(client, "teacher")
    html = await (await client.get(f"/workspace/items/{pk}")).text()
    assert 'id="item-form"' in html
    resp = await post_form(client, f"/workspace/items/{pk}", {**form_of("single"), "stem": "Mới"})
    assert resp.status == 303 and resp.headers["Location"].endswith("?done=new_version")
    assert await conn.fetchval("SELECT count(*) FROM draft_items WHERE item_id = 'W-9'") == 2


async def test_duplicate_retire_and_filters(client, conn, staff):
    await login(client, "teacher")
    pk = await create(client)
    resp = await post_form(client, f"/workspace/items/{pk}/duplicate", {"new_id": ""})
    assert resp.status == 303
    bad = await post_form(client, f"/workspace/items/{pk}/retire", {"comment": ""})
    assert bad.status == 400 and "comment_required" in await bad.text()
    assert (await post_form(client, f"/workspace/items/{pk}/retire", {"comment": "cũ"})).status == 303
    html = await (await client.get("/workspace/items?state=retired")).text()
    assert "W-1@1" in html and "W-1-2@1" not in html
    html = await (await client.get("/workspace/items?q=W-1-2")).text()
    assert "W-1-2@1" in html
    bad = await client.get("/workspace/items?level=9")
    assert bad.status == 400 and "bad_filter" in await bad.text()
    assert (await client.get("/workspace/items/abc")).status == 404


async def test_import_and_export_pages(client, conn, staff):
    await login(client, "teacher")
    token = await csrf_of(client, "/workspace/items/import")

    def send(name, content):
        return client.post(
            "/workspace/items/import", data=_files({"csrf_token": token, "file": io.BytesIO(content)}, name)
        )

    bad = await send("items.yaml", YAML_TWO.replace("level: 3", "level: 9").encode())
    html = await bad.text()
    assert bad.status == 400 and "items.yaml:18:" in html
    other = await send("notes.txt", b"hello")
    assert other.status == 400 and "bad_file_type" in await other.text()
    ok = await send("cau-hoi.xlsx", template_bytes())
    assert ok.status == 200 and 'id="imported"' in await ok.text()
    ok = await send("items.yaml", YAML_TWO.encode())
    assert ok.status == 200
    pks = [str(r["id"]) for r in await conn.fetch("SELECT id FROM draft_items WHERE item_id LIKE 'Y-%'")]
    token = await csrf_of(client, "/workspace/items")
    resp = await client.post("/workspace/items/export", data=[("csrf_token", token), *(("pk", p) for p in pks)])
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    text = await resp.text()
    assert "id: Y-1" in text and "id: Y-2" in text and text.count("- id:") == 2


async def test_an_imports_problems_are_listed_in_the_readers_language(client, conn, staff):
    await login(client, "teacher")
    token = await csrf_of(client, "/workspace/items/import")

    async def problems(name: str, content: bytes) -> list[str]:
        resp = await client.post(
            "/workspace/items/import", data=_files({"csrf_token": token, "file": io.BytesIO(content)}, name)
        )
        assert resp.status == 400
        listed = re.search(r'<ul class="problems">(.*?)</ul>', await resp.text(), re.S).group(1)
        return [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", listed, re.S)]

    # Each line keeps its place in the file and says the problem in Vietnamese.
    lines = await problems("items.yaml", YAML_TWO.replace("level: 3", "level: 9").encode())
    assert lines and all(VIETNAMESE.search(line) for line in lines), lines
    assert any(line.startswith("items.yaml:18: ") for line in lines), lines
    assert not any("outside 1-4" in line for line in lines)
    lines = await problems(
        "mau.xlsx", template_bytes(lambda ws: ws.cell(row=1, column=ws.max_column + 1, value="cot-la"))
    )
    assert any(line.startswith("mau.xlsx: row 1, column 'cot-la': ") and "tệp mẫu" in line for line in lines), lines
    # An id taken and a subject not in the list: cbt's own checks of an import.
    assert (
        await client.post(
            "/workspace/items/import",
            data=_files({"csrf_token": token, "file": io.BytesIO(YAML_TWO.encode())}, "items.yaml"),
        )
    ).status == 200
    lines = await problems("items.yaml", YAML_TWO.replace("subject: toan", "subject: thien-van").encode())
    assert any("đã có câu hỏi dùng" in line for line in lines) and any(
        "thien-van" in line and "danh sách môn" in line for line in lines
    ), lines
    await client.get("/lang/en")
    lines = await problems("items.yaml", YAML_TWO.encode())
    assert lines and not any(VIETNAMESE.search(line) for line in lines), lines


async def test_admin_assigns_subjects_within_the_organisation(client, conn, staff):
    await login(client, "admin")
    html = await (await client.get("/workspace/subjects")).text()
    assert "reviewer" in html and "b-teacher" not in html
    resp = await post_form(
        client,
        "/workspace/subjects",
        {"username": "reviewer", "subjects": "toan, hoa-hoc"},
        token_from="/workspace/subjects",
    )
    assert resp.status == 303
    assert await authoring.subjects_of(conn, (await who(conn, "reviewer")).id) == ["hoa-hoc", "toan"]
    resp = await post_form(
        client, "/workspace/subjects", {"username": "b-teacher", "subjects": "toan"}, token_from="/workspace/subjects"
    )
    assert resp.status == 404 and "unknown_user" in await resp.text()


async def test_a_subject_typed_into_the_form_reaches_the_reviewers_queue(client, conn, staff):
    """Issue 16: "Toán" typed instead of "toan" left the item out of every queue."""
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    await login(client, "teacher")
    page = await (await client.get(NEW)).text()
    # Chosen from the list, by name; never typed.
    assert '<select id="f-subject" name="subject" required>' in page
    assert '<option value="toan" >Toán</option>' in page and '<option value="vat-li" >Vật lí</option>' in page
    pk = await create(client, subject="Toán")
    assert await conn.fetchval("SELECT subject FROM draft_items WHERE id = $1", pk) == "toan"
    page = await (await client.get(f"/workspace/items/{pk}")).text()
    assert '<option value="toan" selected>Toán</option>' in page
    assert (await post_form(client, "/workspace/items/submit", {"pk": str(pk)})).status == 303
    refused = await post_form(client, NEW, {**form_of("single"), "id": "W-2", "subject": "Toán 12"})
    assert refused.status == 400 and "Môn Toán 12 không có trong danh sách môn" in await refused.text()
    await login(client, "reviewer")
    page = await (await client.get("/workspace/review")).text()
    assert f"/workspace/items/{pk}" in page and "Môn bạn duyệt: Toán" in page
    # The list's filter has the subject once, by its name.
    page = await (await client.get("/workspace/items")).text()
    assert page.count('<option value="toan" >Toán</option>') == 1


async def test_admin_keeps_the_list_of_subjects(client, conn, staff):
    await login(client, "admin")
    page = await (await client.get("/workspace/subjects")).text()
    assert 'id="subject-list"' in page and '<tr data-code="vat-li"><td>Vật lí</td>' in page
    assert "SGD-T" in page  # the school uses its department's list
    resp = await post_form(
        client,
        "/workspace/subjects/list",
        {"action": "save", "code": "gd-dia-phuong", "name": "Giáo dục địa phương"},
        token_from="/workspace/subjects",
    )
    assert resp.status == 303 and resp.headers["Location"].endswith("done=list_saved")
    page = await (await client.get("/workspace/subjects")).text()
    assert '<tr data-code="gd-dia-phuong"><td>Giáo dục địa phương</td>' in page
    refused = await post_form(
        client,
        "/workspace/subjects/list",
        {"action": "save", "code": "vat-ly", "name": "Vật lý"},
        token_from="/workspace/subjects",
    )
    page = await refused.text()
    assert refused.status == 409 and 'data-code="subject_exists"' in page
    assert "Danh sách đã có môn Vật lí (vat-li), đọc giống môn này" in page
    # Assigned with the page's boxes; the assignment shows names.
    data = [
        ("csrf_token", await csrf_of(client, "/workspace/subjects")),
        ("username", "reviewer"),
        ("subject", "toan"),
        ("subject", "gd-dia-phuong"),
    ]
    resp = await client.post("/workspace/subjects", data=data, allow_redirects=False)
    assert resp.status == 303
    assert await authoring.subjects_of(conn, (await who(conn, "reviewer")).id) == ["gd-dia-phuong", "toan"]
    page = await (await client.get("/workspace/subjects?user=reviewer")).text()
    assert 'id="as-toan" name="subject" value="toan" checked' in page
    assert 'id="as-vat-li" name="subject" value="vat-li" >' in page
    refused = await post_form(
        client,
        "/workspace/subjects/list",
        {"action": "remove", "code": "gd-dia-phuong"},
        token_from="/workspace/subjects",
    )
    assert refused.status == 409 and "đang là môn của 0 câu hỏi và 1 cán bộ" in await refused.text()
    # What was typed before the list and names nothing on it is shown, to be put right.
    await conn.execute(
        "INSERT INTO staff_subjects (user_id, subject) SELECT id, 'toan-hinh' FROM users WHERE username = 'teacher'"
    )
    page = await (await client.get("/workspace/subjects")).text()
    assert 'id="subjects-missing"' in page and "<td>toan-hinh</td>" in page
    assert (
        await post_form(
            client,
            "/workspace/subjects",
            {"username": "teacher", "subjects": "toan-hinh"},
            token_from="/workspace/subjects",
        )
    ).status == 400


async def test_list_shows_statistics_of_a_version_used_in_exams(client, conn, board_exam):
    await login(client, "board")
    await client.get("/board/exams/TOAN-T")  # computes the item statistics
    await client.post("/logout", data={"csrf_token": await csrf_of(client, "/staff")})
    row = await conn.fetchrow(
        "SELECT b.item_id, b.version, b.source, s.n FROM item_stats s"
        " JOIN bank_items b ON b.id = s.item_pk ORDER BY s.item_pk LIMIT 1"
    )
    teacher = await who(conn, "teacher")
    await conn.execute(
        "INSERT INTO draft_items (org_id, item_id, version, type, subject, topic, level, points, stem, source, state,"
        " author_id) SELECT $1, item_id, version, type, subject, topic, level, points, stem, source, 'approved', $2"
        " FROM bank_items WHERE item_id = $3 AND version = $4",
        teacher.org_id,
        teacher.id,
        row["item_id"],
        row["version"],
    )
    await login(client, "teacher")
    html = await (await client.get("/workspace/items")).text()
    assert f"{row['item_id']}@{row['version']}" in html and f'<td class="num">{row["n"]}</td>' in html
    pk = await conn.fetchval("SELECT id FROM draft_items")
    html = await (await client.get(f"/workspace/items/{pk}")).text()
    assert 'id="stats-h"' in html and "TOAN-T" in html


# ---------------------------------------------------------------- Chromium


def write_review_in_chromium(dsn: str) -> list[str]:
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):

        def sign_in(name):
            page.goto(base + "/login")
            page.fill("#username", name)
            page.fill("#password", PASSWORD)
            page.click("button.primary")
            page.wait_for_url(base + "/staff")

        sign_in("teacher")
        page.goto(base + NEW)
        page.fill("#f-id", "WEB-1")
        page.select_option("#f-type", "single")
        # The fields of other types are hidden by the script.
        assert page.locator("fieldset[data-types=truefalse4]").is_hidden()
        page.select_option("#f-subject", "toan")
        page.fill("#f-topic", "ham-so")
        page.fill("#f-points", "0.25")
        page.fill("#f-stem", "Đạo hàm của $y = x^3$ là")
        page.fill("#f-opt-A", "$y' = 3x^2$")
        page.fill("#f-opt-B", "$y' = x^2$")
        page.check("#f-key-A")
        # The live preview shows the formula as MathML while the teacher types.
        page.locator("#preview .stem math").first.wait_for(timeout=10000)
        assert page.locator("#preview .choice math").count() == 2
        page.screenshot(path=str(SCREENSHOTS / "workspace-item-editor-vi.png"), full_page=True)
        page.keyboard.press("Tab")
        page.click("#item-form button.primary")
        page.wait_for_url(re.compile(r".*/workspace/items/\d+\?done=saved"))
        page.click("#submit-review")
        page.wait_for_url(re.compile(r".*done=submitted"))
        assert page.locator("h1 .badge").inner_text().strip() in ("Chờ duyệt", "Submitted")
        page.click("form[action='/logout'] button")

        sign_in("reviewer")
        page.goto(base + "/workspace/review")
        page.click("text=WEB-1@1")
        assert page.locator(".ws-student math").count() >= 1
        page.fill("#f-review-comment", "Đạt yêu cầu")
        page.click("button[value=approve]")
        page.wait_for_url(re.compile(r".*/workspace/review\?done=approve"))
        page.screenshot(path=str(SCREENSHOTS / "workspace-review-vi.png"), full_page=True)
        return problems


async def test_teacher_writes_with_live_preview_and_reviewer_approves_in_chromium(conn, dsn, staff):
    require_chromium()
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    problems = await asyncio.to_thread(write_review_in_chromium, dsn)
    assert problems == [], problems
    assert await conn.fetchval("SELECT state FROM draft_items WHERE item_id = 'WEB-1'") == "approved"
    assert [r["action"] for r in await conn.fetch("SELECT action FROM review_events ORDER BY id")] == [
        "create",
        "submit",
        "approve",
    ]


# ---------------------------------------------------------------- item sets and level schemes

# The set editor's form as the page sends it: the passage, then each question's
# fields in the page's order, "child" giving each question's key.
SET_FORM = [
    ("type", "set"),
    ("id", "WS-1"),
    ("subject", "toan"),
    ("grade", "12"),
    ("topic", "doc-hieu"),
    ("lang", "vi"),
    ("stimulus", "Một vật rơi tự do từ độ cao $h = 45$ m, lấy $g = 10$ m/s²."),
    ("child", "0"),
    ("c0_id", "WS-1-1"),
    ("c0_type", "single"),
    ("c0_level", "1"),
    ("c0_points", "0.25"),
    ("c0_stem", "Thời gian rơi là"),
    ("c0_opt_A", "3 s"),
    ("c0_opt_B", "9 s"),
    ("c0_key", "A"),
    ("c0_shuffle", "on"),
    ("child", "1"),
    ("c1_id", "WS-1-2"),
    ("c1_type", "short"),
    ("c1_level", "2"),
    ("c1_points", "0.5"),
    ("c1_stem", "Vận tốc chạm đất (m/s) là"),
    ("c1_short_key", "30"),
    ("c1_short_format", "vn-numeric"),
    ("c1_explanation", "Bí mật: $v = gt$"),
]


async def post_pairs(client, path, pairs, *, token_from=NEW):
    token = await csrf_of(client, token_from)
    return await client.post(path, data=[*pairs, ("csrf_token", token)], allow_redirects=False)


def changed(pairs, **fields):
    """SET_FORM with some fields' values replaced."""
    return [(k, fields.get(k, v)) for k, v in pairs]


def children_order(page: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="child" value="(\d+)">', page.split('id="child-template"')[0])


async def test_the_set_editor_adds_moves_and_removes_questions_without_its_script(client, conn, staff):
    await login(client, "teacher")
    page = await (await client.get(NEW + "?type=set")).text()
    assert 'name="type" value="set"' in page and 'id="f-stimulus"' in page and 'id="child-template"' in page
    assert children_order(page) == ["0"] and 'value="Q-001-1"' in page
    # Each button sends the form back and the page comes back changed; nothing is saved.
    resp = await post_pairs(client, NEW, [*SET_FORM, ("child_action", "add")])
    page = await resp.text()
    assert resp.status == 200 and children_order(page) == ["0", "1", "2"] and 'value="WS-1-3"' in page
    assert 'value="Thời gian rơi là"' not in page and ">Thời gian rơi là</textarea>" in page  # kept as typed
    page = await (await post_pairs(client, NEW, [*SET_FORM, ("child_action", "up:1")])).text()
    assert children_order(page) == ["1", "0"]
    assert page.index('id="child-1"') < page.index('id="child-0"')
    page = await (await post_pairs(client, NEW, [*SET_FORM, ("child_action", "remove:0")])).text()
    assert children_order(page) == ["1"] and "WS-1-1" not in page.split('id="child-template"')[0]
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0


async def test_a_set_written_on_the_page_is_saved_and_shown_whole(client, conn, staff):
    await login(client, "teacher")
    # Refused: the second question takes the first's id; said at its field, the typing kept.
    resp = await post_pairs(client, NEW, changed(SET_FORM, c1_id="WS-1-1"))
    page = await resp.text()
    assert resp.status == 400 and 'id="err-c1_id"' in page and 'aria-describedby="err-c1_id"' in page
    assert "Mã WS-1-1 đã dùng cho câu khác trong nhóm" in page and ">Vận tốc chạm đất (m/s) là</textarea>" in page
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0
    resp = await post_pairs(client, NEW, SET_FORM)
    assert resp.status == 303, await resp.text()
    pk = int(re.search(r"/workspace/items/(\d+)", resp.headers["Location"]).group(1))
    page = await (await client.get(f"/workspace/items/{pk}")).text()
    # The passage, then each question as students see it; each key for staff below.
    assert 'class="passage"' in page and "<math" in page and page.count('class="card question ws-student"') == 2
    assert "Câu 1 · 0,25 điểm" in page and "Câu 2 · 0,5 điểm" in page
    keys = page.split('id="key-h"')[1].split("</section>")[0]
    assert "WS-1-1" in keys and "<strong>A</strong>" in keys and "<strong>30</strong>" in keys
    assert children_order(page) == ["0", "1"] and 'value="WS-1-2"' in page
    # The live preview of the set: passage and questions, never a key or an explanation.
    pairs = changed(SET_FORM, c1_stem="Đã sửa: vận tốc là")
    html = await (await post_pairs(client, "/workspace/items/preview", pairs)).text()
    assert 'class="passage"' in html and "Đã sửa: vận tốc là" in html and 'id="pv-2-short"' in html
    assert ">30<" not in html and "Bí mật" not in html and "data-problems" not in html
    # Saved again in another order.
    token = await csrf_of(client, f"/workspace/items/{pk}")
    order = [p for p in SET_FORM if p[0] != "child"]
    resp = await client.post(
        f"/workspace/items/{pk}",
        data=[("child", "1"), ("child", "0"), *order, ("csrf_token", token)],
        allow_redirects=False,
    )
    assert resp.status == 303
    source = await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", pk)
    assert authoring.set_from_draft(source)[0].children == ("WS-1-2", "WS-1-1")
    # The list marks it, with its size; the export writes it whole.
    listing = await (await client.get("/workspace/items?type=set")).text()
    assert 'data-set="WS-1"' in listing and "2 câu" in listing
    text = await (
        await post_pairs(client, "/workspace/items/export", [("pk", str(pk))], token_from="/workspace/items")
    ).text()
    assert "type: set" in text and "- id: WS-1-2" in text and text.count("stimulus:") == 1


async def test_the_review_queue_shows_a_set_whole_and_approving_approves_it(client, conn, staff):
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    await login(client, "teacher")
    resp = await post_pairs(client, NEW, SET_FORM)
    pk = int(re.search(r"/workspace/items/(\d+)", resp.headers["Location"]).group(1))
    assert (await post_form(client, "/workspace/items/submit", {"pk": str(pk)})).status == 303
    await login(client, "reviewer")
    page = await (await client.get("/workspace/review")).text()
    queue = page.split('id="to-review-h"')[1].split("</section>")[0]
    assert f'id="set-{pk}"' in queue and "Xem ngữ liệu và 2 câu hỏi" in queue
    assert 'class="passage"' in queue and "Thời gian rơi là" in queue and "Vận tốc chạm đất" in queue
    assert "Bí mật" not in queue
    resp = await post_form(client, f"/workspace/review/{pk}", {"decision": "approve"}, token_from="/workspace/review")
    assert resp.status == 303
    row = await conn.fetchrow("SELECT state, source FROM draft_items WHERE id = $1", pk)
    item_set, children = authoring.set_from_draft(row["source"])
    assert row["state"] == "approved" and {item_set.status.value, *(c.status.value for c in children)} == {"approved"}


async def test_an_administrator_chooses_the_level_scheme_and_the_editor_names_its_levels(client, conn, staff):
    await login(client, "teacher")
    page = await (await client.get(NEW)).text()
    assert ">Nhận biết</option>" in page and ">Vận dụng cao</option>" in page
    assert (
        await post_pairs(client, "/workspace/subjects/list", [("action", "levels"), ("scheme", "2025")])
    ).status == 403
    await login(client, "admin")
    page = await (await client.get("/workspace/subjects")).text()
    assert 'id="level-scheme"' in page and 'id="ls-inherit" name="scheme" value="" checked' in page
    resp = await post_pairs(
        client, "/workspace/subjects/list", [("action", "levels"), ("scheme", "2025")], token_from="/workspace/subjects"
    )
    assert resp.status == 303 and resp.headers["Location"].endswith("done=levels_saved")
    page = await (await client.get("/workspace/subjects?done=levels_saved")).text()
    assert "Đã lưu thang mức độ." in page and 'id="ls-2025" name="scheme" value="2025" checked' in page
    resp = await post_pairs(
        client, "/workspace/subjects/list", [("action", "levels"), ("scheme", "2018")], token_from="/workspace/subjects"
    )
    page = await resp.text()
    assert resp.status == 400 and 'data-code="bad_level_scheme"' in page and "Không có thang mức độ 2018" in page
    await login(client, "teacher")
    page = await (await client.get(NEW)).text()
    menu = page.split('id="f-level"')[1].split("</select>")[0]
    assert re.findall(r">([^<]+)</option>", menu) == ["Biết", "Hiểu", "Vận dụng"]
    page = await (await client.get(NEW + "?type=set")).text()
    menu = page.split('id="f-c0_level"')[1].split("</select>")[0]
    assert re.findall(r">([^<]+)</option>", menu) == ["Biết", "Hiểu", "Vận dụng"]
    # A level the scheme lacks (the legacy Vận dụng cao) is said at its field, in the scheme's words.
    resp = await post_pairs(client, NEW, changed(SET_FORM, c1_level="4"))
    page = await resp.text()
    assert resp.status == 400 and 'id="err-c1_level"' in page
    assert "Mức độ 4 không có trong thang mức độ của đơn vị (1 Biết, 2 Hiểu, 3 Vận dụng)" in page
    assert "4 · không có trong thang mức độ" in page


async def test_importing_a_set_from_yaml_on_the_page(client, conn, staff):
    await login(client, "teacher")
    token = await csrf_of(client, "/workspace/items/import")

    def send(content: str):
        form = _files({"csrf_token": token, "file": io.BytesIO(content.encode())}, "nhom.yaml")
        return client.post("/workspace/items/import", data=form)

    set_yaml = (
        "id: IM-SET\nversion: 1\ntype: set\nsubject: toan\ntopic: ham-so\nlang: vi\nstatus: draft\n"
        "stimulus: Bảng số liệu.\nitems:\n"
        "  - {id: IM-SET-1, type: essay, level: 1, points: 1, stem: Nhận xét.}\n"
        "  - {id: IM-SET-2, type: essay, level: 2, points: 1, stem: Giải thích.}\n"
    )
    bad = await send(set_yaml.split("items:")[0] + "items: []\n")
    page = await bad.text()
    assert bad.status == 400 and "nhom.yaml:9: " in page and "Nhóm câu hỏi chưa có câu hỏi nào" in page
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0
    ok = await send(set_yaml)
    assert ok.status == 200 and 'id="imported"' in await ok.text()
    assert [
        tuple(r)
        for r in await conn.fetch(
            "SELECT d.item_id, d.type, k.child_id FROM draft_items d"
            " JOIN draft_set_children k ON k.draft_pk = d.id ORDER BY k.position"
        )
    ] == [("IM-SET", "set", "IM-SET-1"), ("IM-SET", "set", "IM-SET-2")]


# ---------------------------------------------------------------- questions from other tools


async def send_foreign(client, name: str, content: bytes, **values):
    """The import page's first post of a foreign file, with the values its questions lack."""
    token = await csrf_of(client, "/workspace/items/import")
    fields = {"subject": "toan", "grade": "12", "topic": "ham-so", "level": "2", "points": "0,5", "id_prefix": ""}
    body = {"csrf_token": token, **fields, **values, "file": io.BytesIO(content)}
    return await client.post("/workspace/items/import", data=_files(body, name))


def confirm_fields(page: str) -> dict[str, str]:
    """What the preview's form sends back, as the browser would send it."""
    form = re.search(r'<form method="post" action="/workspace/items/import/confirm".*?</form>', page, re.S).group(0)
    fields = {n: html.unescape(v) for n, v in re.findall(r'<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"', form)}
    for name, body in re.findall(r'<select[^>]*\bname="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        fields[name] = chosen.group(1) if chosen else ""
    return fields


async def confirm(client, fields: dict[str, str], action: str = "save"):
    from aiohttp import FormData

    form = FormData(default_to_multipart=True)
    for k, v in {**fields, "action": action}.items():
        form.add_field(k, v)
    return await client.post("/workspace/items/import/confirm", data=form)


def previewed(page: str) -> dict[str, tuple[str, str]]:
    """id -> (type as the page names it, key as its data-key says) of each question the preview shows."""
    shown = {}
    for section in re.findall(r'<section class="ws-import-item".*?</section>', page, re.S):
        item_id = re.search(r'data-id="([^"]+)"', section).group(1)
        heading = html.unescape(re.search(r'<h2 class="qhead">(.*?)</h2>', section, re.S).group(1))
        shown[item_id] = (heading.split(" · ")[1], re.search(r'data-key="([^"]*)"', section).group(1))
    return shown


def listed_problems(page: str) -> list[str]:
    found = re.search(r'<section class="card" id="import-problems">.*?<ul class="problems">(.*?)</ul>', page, re.S)
    return [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)] if found else []


TYPE_NAMES = {"single": "Một lựa chọn", "multiple": "Nhiều đáp án", "short": "Trả lời ngắn"}


async def drafts(conn) -> list[tuple]:
    return [
        tuple(r)
        for r in await conn.fetch(
            "SELECT item_id, type, state, subject, grade, topic, level, points FROM draft_items ORDER BY item_id"
        )
    ]


async def test_a_gift_file_is_previewed_with_its_keys_and_saving_stores_exactly_those_drafts(client, conn, staff):
    from support.foreign import GIFT, GIFT_KEYS

    await login(client, "teacher")
    resp = await send_foreign(client, "Kiểm tra 15 phút.gift", GIFT.encode())
    page = await resp.text()
    assert resp.status == 200, page
    # The prefix comes from the file's name; every question as students see it, with its key.
    ids = {f"Kiem-tra-15-phut-{n}": (TYPE_NAMES[kind], key) for n, (kind, key) in GIFT_KEYS.items()}
    assert previewed(page) == ids
    assert "Hà Nội" in page and "<math" in page  # rendered as on the exam page, math included
    assert 'data-saved="4" data-left-out="0"' in page and "GIFT" in page
    # The notes say what the file lost (the weights of question 2), in Vietnamese, at its line.
    notes = re.search(r'<ul class="notes">(.*?)</ul>', page, re.S).group(1)
    assert "Kiểm tra 15 phút.gift:6: Trọng số điểm" in html.unescape(notes)
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0  # a preview stores nothing

    fields = confirm_fields(page)
    assert fields["id_prefix"] == "Kiem-tra-15-phut" and fields["points"] == "0.5" and fields["level"] == "2"
    saved = await confirm(client, fields)
    page = await saved.text()
    assert saved.status == 200 and 'id="imported"' in page and "Đã nhập 4 câu hỏi" in page, page
    rows = await drafts(conn)
    assert [r[0] for r in rows] == sorted(ids)
    assert {r[1:] for r in rows} >= {("single", "draft", "toan", 12, "ham-so", 2, Decimal("0.5"))}
    events = await conn.fetch("SELECT action, comment FROM review_events")
    assert [tuple(e) for e in events] == [("create", "imported")] * 4
    short = authoring.item_from_draft(await conn.fetchval("SELECT source FROM draft_items WHERE type = 'short'"))
    assert short.answer.canonical == "1.5" and short.answer.tolerance == Decimal("0.1")


async def test_an_aiken_file_saves_its_good_questions_and_says_why_one_is_left_out(client, conn, staff):
    from support.foreign import AIKEN, AIKEN_BAD_LINE, AIKEN_KEYS

    await login(client, "teacher")
    page = await (await send_foreign(client, "ak.txt", AIKEN.encode(), id_prefix="ak")).text()
    assert previewed(page) == {f"ak-{n}": (TYPE_NAMES[kind], key) for n, (kind, key) in AIKEN_KEYS.items()}
    assert 'data-saved="2" data-left-out="1"' in page and "1 câu có lỗi không được lưu" in page
    (problem,) = listed_problems(page)
    assert problem.startswith(f"ak.txt:{AIKEN_BAD_LINE}: ") and "không theo thứ tự A, B, C" in problem
    saved = await confirm(client, confirm_fields(page))
    page = await saved.text()
    assert saved.status == 200 and "Đã nhập 2 câu hỏi" in page and "1 câu có lỗi không được lưu" in page
    assert f"ak.txt:{AIKEN_BAD_LINE}: " in page
    assert [r[0] for r in await drafts(conn)] == ["ak-C1", "ak-C3"]
    # In English, the lines say the file's own message.
    await client.get("/lang/en")
    page = await (await send_foreign(client, "ak.txt", AIKEN.encode(), id_prefix="ak2")).text()
    assert any("its options go A, B, D" in p for p in listed_problems(page))


async def test_a_moodle_export_brings_its_picture_and_names_the_type_cbt_lacks(client, conn, staff):
    from support.foreign import MOODLE, MOODLE_KEYS, MOODLE_PICTURE, PNG

    await login(client, "teacher")
    page = await (await send_foreign(client, "ngan-hang.xml", MOODLE, id_prefix="mdl")).text()
    assert previewed(page) == {f"mdl-{n}": (TYPE_NAMES[kind], key) for n, (kind, key) in MOODLE_KEYS.items()}
    assert "data:image/png;base64," in page  # the picture shown in the preview
    (problem,) = listed_problems(page)
    assert problem.startswith("ngan-hang.xml:") and "ghép đôi" in problem
    saved = await confirm(client, confirm_fields(page))
    assert saved.status == 200
    path = MOODLE_PICTURE.format(prefix="mdl")
    stored = await conn.fetch(
        "SELECT d.item_id, dm.path, m.content FROM draft_media dm JOIN draft_items d ON d.id = dm.draft_pk"
        " JOIN media_blobs m ON m.sha256 = dm.sha256"
    )
    assert [(r["item_id"], r["path"], bytes(r["content"])) for r in stored] == [("mdl-C1", path, PNG)]
    item = authoring.item_from_draft(await conn.fetchval("SELECT source FROM draft_items WHERE item_id = 'mdl-C1'"))
    assert item.media == (path,) and path in item.stem
    # The item's page shows the picture as any uploaded one.
    pk = await conn.fetchval("SELECT id FROM draft_items WHERE item_id = 'mdl-C1'")
    assert "data:image/png;base64," in await (await client.get(f"/workspace/items/{pk}")).text()


async def test_a_word_file_and_a_latex_file_come_in_the_same_way(client, conn, staff):
    from support.foreign import (
        LATEX,
        LATEX_BAD_LINE,
        LATEX_KEYS,
        PNG,
        WORD_BAD_PARAGRAPH,
        WORD_KEYS,
        WORD_PICTURE,
        word_file,
    )

    await login(client, "teacher")
    page = await (await send_foreign(client, "Đề Word.docx", word_file(), id_prefix="w")).text()
    assert previewed(page) == {f"w-{n}": (TYPE_NAMES[kind], key) for n, (kind, key) in WORD_KEYS.items()}
    assert "Word" in page and "data:image/png;base64," in page
    (problem,) = listed_problems(page)
    assert problem.startswith(f"Đề Word.docx:{WORD_BAD_PARAGRAPH}: ") and "chưa có đáp án" in problem
    assert (await confirm(client, confirm_fields(page))).status == 200
    picture = WORD_PICTURE.format(prefix="w")
    stored = await conn.fetchval(
        "SELECT m.content FROM draft_media dm JOIN media_blobs m ON m.sha256 = dm.sha256 WHERE dm.path = $1", picture
    )
    assert bytes(stored) == PNG

    page = await (await send_foreign(client, "de.tex", LATEX.encode(), id_prefix="tex")).text()
    types = TYPE_NAMES | {"truefalse4": "Đúng/Sai 4 ý"}
    assert previewed(page) == {f"tex-{n}": (types[kind], key) for n, (kind, key) in LATEX_KEYS.items()}
    (problem,) = listed_problems(page)
    assert problem.startswith(f"de.tex:{LATEX_BAD_LINE}: ")
    # The picture LaTeX cannot bring is a note: its question is saved, for the teacher to finish.
    notes = html.unescape(re.search(r'<ul class="notes">(.*?)</ul>', page, re.S).group(1))
    assert "de.tex:19: " in notes and 'data-saved="4" data-left-out="1"' in page
    assert (await confirm(client, confirm_fields(page))).status == 200
    # The ID code 2D1H3-1 gave the first question its grade, chapter and level; the form the others'.
    rows = {r[0]: r[4:7] for r in await drafts(conn) if r[0].startswith("tex-")}
    assert rows == {"tex-C1": (12, "ch-2D1", 2), **{f"tex-C{n}": (12, "ham-so", 2) for n in (2, 3, 4)}}


async def test_ids_already_used_ask_for_another_prefix(client, conn, staff):
    from support.foreign import GIFT

    await login(client, "teacher")
    page = await (await send_foreign(client, "kt.gift", GIFT.encode(), id_prefix="kt")).text()
    assert (await confirm(client, confirm_fields(page))).status == 200
    again = await send_foreign(client, "kt.gift", GIFT.encode(), id_prefix="kt")
    page = await again.text()
    assert again.status == 400 and 'data-saved="0" data-left-out="4"' in page
    assert 'value="save"' not in page  # nothing to save: no button
    problems = listed_problems(page)
    assert len(problems) == 4
    assert all("Mã kt-C" in p and "hãy đổi tiền tố mã kt (ví dụ thành kt-2)" in p for p in problems), problems
    # Previewing again with the prefix suggested, from the same page, the file sent back with it.
    page = await (await confirm(client, {**confirm_fields(page), "id_prefix": "kt-2"}, action="preview")).text()
    assert set(previewed(page)) == {f"kt-2-C{n}" for n in range(1, 5)}
    assert (await confirm(client, confirm_fields(page))).status == 200
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 8


async def test_saving_stores_nothing_unless_it_is_what_the_preview_showed(client, conn, staff):
    from support.foreign import GIFT

    await login(client, "teacher")
    page = await (await send_foreign(client, "kt.gift", GIFT.encode(), id_prefix="kt")).text()
    fields = confirm_fields(page)
    # The values changed on the page without a new preview: the preview is shown again.
    changed = await confirm(client, {**fields, "points": "1"})
    page = await changed.text()
    assert changed.status == 409 and 'data-code="import_changed"' in page and 'data-saved="4"' in page
    # Another teacher took an id meanwhile: the questions to save are no longer those shown.
    await conn.execute(
        "INSERT INTO draft_items (org_id, item_id, version, type, subject, topic, level, points, stem, source, state,"
        " author_id) SELECT org_id, 'kt-C2', 1, 'essay', 'toan', 't', 1, 1, 'x', 'x', 'draft', id"
        " FROM users WHERE username = 'teacher'"
    )
    raced = await confirm(client, fields)
    page = await raced.text()
    assert raced.status == 409 and 'data-saved="3" data-left-out="1"' in page
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 1
    # The values given are checked as any form's, each at its field.
    bad = await confirm(client, {**fields, "points": "0", "id_prefix": "có dấu", "subject": "thien-van"})
    page = await bad.text()
    assert bad.status == 400 and 'data-code="import_defaults_invalid"' in page
    for name in ("points", "id_prefix", "subject"):
        assert f'id="err-{name}"' in page and f'aria-describedby="err-{name}"' in page
    # The file lost on its way back: said, nothing stored.
    lost = await confirm(client, {**fields, "file_data": "not base64!"})
    assert lost.status == 400 and 'data-code="import_file_lost"' in await lost.text()
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 1


async def test_a_bomb_a_corrupt_file_and_an_unknown_kind_are_each_one_clear_message(client, conn, staff):
    from support.foreign import MOODLE, XML_BOMB

    await login(client, "teacher")
    resp = await send_foreign(client, "bomb.xml", XML_BOMB)
    page = await resp.text()
    assert resp.status == 400 and 'data-saved="0"' in page
    (problem,) = listed_problems(page)
    assert problem.startswith("bomb.xml:2: ") and "<!DOCTYPE ...>" in problem
    resp = await send_foreign(client, "cut.xml", MOODLE[: len(MOODLE) // 2])
    (problem,) = listed_problems(await resp.text())
    assert resp.status == 400 and problem.startswith("cut.xml:") and "XML bị hỏng" in problem
    for name, content in (("de.pdf", b"%PDF-1.7\n"), ("ghi-chu.txt", "chỉ là ghi chú".encode())):
        resp = await send_foreign(client, name, content)
        page = await resp.text()
        assert resp.status == 400 and 'data-code="bad_file_type"' in page
        assert "Moodle XML (.xml), QTI 3.0 (.zip, .xml), Aiken (.txt), GIFT (.gift, .txt)" in page
    huge = b"::Q:: x {T}\n\n" * (2 * 1024 * 1024)
    resp = await send_foreign(client, "lon.gift", huge)
    assert resp.status == 413 and 'data-code="too_large"' in await resp.text()
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0


def import_moodle_in_chromium(dsn: str, folder) -> list[str]:
    from playwright.sync_api import expect
    from support.foreign import MOODLE

    upload = folder / "Ngân hàng câu hỏi.xml"
    upload.write_bytes(MOODLE)
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        page.goto(base + "/login")
        page.fill("#username", "teacher")
        page.fill("#password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(base + "/staff")
        page.goto(base + "/workspace/items/import")
        page.set_input_files("#f-file", str(upload))
        page.select_option("#f-subject", "toan")
        page.fill("#f-topic", "ham-so")
        page.click("button.primary")
        # The preview: each question as students see it (the picture, the formula), its key beside it.
        expect(page.locator("#summary")).to_have_attribute("data-saved", "2")
        expect(page.locator(".ws-import-item")).to_have_count(2)
        expect(page.locator("#q-Ngan-hang-cau-hoi-C1 img")).to_be_visible()
        expect(page.locator("#q-Ngan-hang-cau-hoi-C1 math").first).to_be_attached()
        expect(page.locator("#q-Ngan-hang-cau-hoi-C1 .key")).to_contain_text("B")
        expect(page.locator("#import-problems li")).to_contain_text("Ngân hàng câu hỏi.xml:")
        page.screenshot(path=str(SCREENSHOTS / "items-import-preview.png"), full_page=True)
        # The form carries the file back: saving stores the two drafts.
        page.click("button[value=save]")
        expect(page.locator("#imported")).to_contain_text("Đã nhập 2 câu hỏi")
        expect(page.locator("#left-out")).to_contain_text("1 câu có lỗi")
        page.screenshot(path=str(SCREENSHOTS / "items-import-moodle.png"), full_page=True)
    return problems


async def test_a_teacher_previews_and_saves_a_moodle_export_in_chromium(conn, dsn, staff, tmp_path):
    require_chromium()
    problems = await asyncio.to_thread(import_moodle_in_chromium, dsn, tmp_path)
    assert problems == [], problems
    assert [r[0] for r in await drafts(conn)] == ["Ngan-hang-cau-hoi-C1", "Ngan-hang-cau-hoi-C2"]
    assert await conn.fetchval("SELECT count(*) FROM draft_media") == 1


def write_set_in_chromium(dsn: str) -> list[str]:
    from playwright.sync_api import expect

    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        page.goto(base + "/login")
        page.fill("#username", "teacher")
        page.fill("#password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(base + "/staff")
        page.goto(base + "/workspace/items")
        page.click("#new-set")
        page.wait_for_url(re.compile(r".*/workspace/items/new\?type=set"))
        # The questions' ids follow the set's.
        page.fill("#f-id", "WEB-SET")
        page.locator("#f-id").dispatch_event("change")
        expect(page.locator("#f-c0_id")).to_have_value("WEB-SET-1")
        page.select_option("#f-subject", "toan")
        page.fill("#f-topic", "ham-so")
        page.fill(
            "#f-stimulus",
            "Cho hàm số $y = x^3 - 3x$. Bảng giá trị:\n\n| $x$ | $-1$ | $1$ |\n|---|---|---|\n| $y$ | 2 | -2 |",
        )
        # The passage previews as it is typed, formulas as MathML.
        expect(page.locator("#preview .passage math").first).to_be_visible(timeout=10000)
        # The level menu names the workspace's scheme: the 2025 three.
        assert page.locator("#f-c0_level option").all_inner_texts() == ["Biết", "Hiểu", "Vận dụng"]
        page.fill("#f-c0_stem", "Hàm số đạt cực đại tại")
        page.fill("#f-c0_opt-A", "$x = -1$")
        page.fill("#f-c0_opt-B", "$x = 1$")
        page.check("#f-c0_key-A")
        # A second question, added in place: its own id, the cursor in it.
        page.click("#add-child")
        expect(page.locator("#f-c1_id")).to_have_value("WEB-SET-2")
        expect(page.locator("#f-c1_id")).to_be_focused()
        page.select_option("#f-c1_type", "truefalse4")
        expect(page.locator("#child-1 fieldset[data-types=truefalse4]")).to_be_visible()
        expect(page.locator("#child-1 fieldset[data-types='single multiple']")).to_be_hidden()
        expect(page.locator("#child-0 fieldset[data-types='single multiple']")).to_be_visible()
        page.select_option("#f-c1_level", "2")
        page.fill("#f-c1_points", "1")
        page.fill("#f-c1_stem", "Xét các mệnh đề.")
        for sid, truth in zip("abcd", ("true", "true", "false", "true"), strict=True):
            page.fill(f"#f-c1_st-{sid}", f"Mệnh đề {sid}.")
            page.select_option(f"#f-c1_st-{sid}-answer", truth)
        # A third, removed again; then the second moved up: the numbers follow.
        page.click("#add-child")
        expect(page.locator("#children > .ws-child")).to_have_count(3)
        page.click("#child-2 [data-move=remove]")
        expect(page.locator("#children > .ws-child")).to_have_count(2)
        page.click("#child-1 [data-move=up]")
        expect(page.locator("#children > .ws-child").first).to_have_id("child-1")
        expect(page.locator("#child-1 legend").first).to_have_text("Câu 1")
        expect(page.locator("#child-1 [data-move=up]")).to_be_disabled()
        # The preview follows: the passage, then the questions in their new order.
        expect(page.locator("#preview .question")).to_have_count(2, timeout=10000)
        expect(page.locator("#preview .question").first.locator("table.statements")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "workspace-set-editor-vi.png"), full_page=True)
        page.click("#item-form button.primary")
        page.wait_for_url(re.compile(r".*/workspace/items/\d+\?done=saved"))
        expect(page.locator("#key-h")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "workspace-set-saved-vi.png"), full_page=True)
        return problems


async def test_a_teacher_writes_a_set_in_the_editor_in_chromium(conn, dsn, staff):
    require_chromium()
    await conn.execute("INSERT INTO workspace_levels (org_id, scheme) SELECT id, '2025' FROM orgs WHERE code = 'SGD-T'")
    problems = await asyncio.to_thread(write_set_in_chromium, dsn)
    assert problems == [], problems
    row = await conn.fetchrow("SELECT type, state, source FROM draft_items WHERE item_id = 'WEB-SET'")
    item_set, children = authoring.set_from_draft(row["source"])
    assert (row["type"], row["state"], item_set.children) == ("set", "draft", ("WEB-SET-2", "WEB-SET-1"))
    assert [(c.type.value, c.level) for c in children] == [("truefalse4", 2), ("single", 1)]
    assert "$y = x^3 - 3x$" in item_set.stimulus


async def test_a_qti_package_saves_its_sets_whole_and_the_same_package_twice_finds_them_there(client, conn, staff):
    """cbt's own package (the 2025 demo bank, passages included) comes in as drafts equal to the
    bank's items, each set one draft with its passage, questions and pictures; a set with an SVG
    picture stays out whole, as the workspace takes no SVG; importing it again saves nothing and
    says each question is there already."""
    from dataclasses import replace

    from itembank.demo import FOLDER_2025, demo_2025
    from itembank.formats.qti import export_release
    from itembank.model import Status

    bank = demo_2025()
    package = export_release(FOLDER_2025).data

    def svg(paths) -> bool:
        return any(p.endswith(".svg") for p in paths)

    out_sets = {s.id for s in bank.sets if svg(s.media) or any(svg(i.media) for i in bank.items if i.set_id == s.id)}
    standalone = [i for i in bank.items if not i.set_id and not svg(i.media)]
    sets = [s for s in bank.sets if s.id not in out_sets]
    assert out_sets and sets and standalone
    questions = len(standalone) + sum(len(s.children) for s in sets)

    await login(client, "teacher")
    resp = await send_foreign(client, "de-2025.zip", package)
    page = await resp.text()
    assert resp.status == 200 and "QTI 3.0" in page
    problems = listed_problems(page)
    assert problems and all("không phải ảnh PNG" in p and ".svg" in p for p in problems)
    assert f'data-saved="{questions}"' in page
    assert set(previewed(page)) == {i.id for i in standalone}
    for item_set in sets:
        section = re.search(rf'<section class="ws-import-set" id="set-{item_set.id}".*?</section>', page, re.S)
        assert section and f'data-children="{len(item_set.children)}"' in section.group(0)
        assert '<div class="passage">' in section.group(0)
    assert not any(f'id="set-{s}"' in page for s in out_sets)
    saved = await confirm(client, confirm_fields(page))
    assert saved.status == 200 and f"Đã nhập {questions} câu hỏi" in await saved.text()

    rows = {r["item_id"]: r for r in await conn.fetch("SELECT id, item_id, type, state, source FROM draft_items")}
    assert set(rows) == {i.id for i in standalone} | {s.id for s in sets}
    assert {r["state"] for r in rows.values()} == {"draft"}
    for item in standalone:
        assert authoring.item_from_draft(rows[item.id]["source"]) == replace(item, status=Status.DRAFT)
    for item_set in sets:
        got_set, children = authoring.set_from_draft(rows[item_set.id]["source"])
        assert got_set == replace(item_set, status=Status.DRAFT)
        expected = [replace(i, status=Status.DRAFT) for i in bank.items if i.set_id == item_set.id]
        assert list(children) == expected
        listed = await conn.fetch(
            "SELECT child_id FROM draft_set_children WHERE draft_pk = $1 ORDER BY position", rows[item_set.id]["id"]
        )
        assert [r[0] for r in listed] == list(item_set.children)
    # Every picture a stored item or passage names is stored with its draft, byte for byte.
    stored = {
        r["path"]: bytes(r["content"])
        for r in await conn.fetch(
            "SELECT dm.path, m.content FROM draft_media dm JOIN media_blobs m ON m.sha256 = dm.sha256"
        )
    }
    kept = [*standalone, *(i for i in bank.items if i.set_id in {s.id for s in sets})]
    named = {p for i in kept for p in i.media} | {p for s in sets for p in s.media}
    assert stored == {p: (FOLDER_2025 / p).read_bytes() for p in named}

    again = await send_foreign(client, "de-2025.zip", package)
    page = await again.text()
    assert again.status == 400 and 'data-saved="0"' in page
    here = [p for p in listed_problems(page) if "đã được nhập rồi" in p]
    assert len(here) == len(rows) + sum(len(s.children) for s in sets)
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == len(rows)


async def test_another_tool_s_qti_package_keeps_a_set_whole_or_leaves_it_out(client, conn, staff):
    from support.qti import foreign_package, make_zip

    await login(client, "teacher")
    page = await (await send_foreign(client, "goi.zip", foreign_package(), id_prefix="q")).text()
    # The package's problems (an interaction cbt lacks, a QTI 2 item) are listed by file.
    assert [p.split(": ")[0] for p in listed_problems(page)] == [
        "goi.zip/items/hotspot.xml:2",
        "goi.zip/items/two.xml:2",
        "goi.zip/imsmanifest.xml:15",
    ]
    assert 'id="set-q-Cpassage"' in page and 'data-children="2"' in page
    assert previewed(page)["q-Ccapital"][1] == "B"
    saved = await confirm(client, confirm_fields(page))
    assert saved.status == 200 and "Đã nhập 7 câu hỏi" in await saved.text()
    assert await conn.fetchval("SELECT count(*) FROM draft_set_children") == 2

    # A set whose second question has no key: its first question is not stored alone either.
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(foreign_package())) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    files["items/read-2.xml"] = files["items/read-2.xml"].replace(b"<qti-value>B</qti-value>", b"")
    page = await (await send_foreign(client, "goi.zip", make_zip(files), id_prefix="r")).text()
    assert 'id="set-r-Cpassage"' not in page and "r-Cread-1" not in previewed(page)
    assert any("read-2" in p for p in listed_problems(page))
