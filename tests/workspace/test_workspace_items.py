"""The workspace pages over HTTP (forms, CSRF, errors, access) and one walk
through them in Chromium: a teacher writes an item with math, watches the
live preview, saves and submits it; a reviewer approves it."""

import asyncio
import html
import io
import re

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
