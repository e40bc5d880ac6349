"""The workspace workflow on a real database: writing every item type,
validation, versions, review, access across schools, import and export."""

from dataclasses import replace

import pytest
from support.authoring import BASE, FIELDS, PNG, YAML_TWO, template_bytes, who

from cbt import accounts, authoring
from cbt.platform.errors import UserError
from itembank.formats.yaml_format import parse_text, serialise_item
from itembank.levels import LEGACY, SCHEME_2025
from itembank.model import ItemType, Status
from itembank.validate import check_item, check_items


async def write(conn, user, kind: str = "single", item_id: str | None = None, **more) -> int:
    fields = {**BASE, **FIELDS[kind], **more, "id": item_id or f"T-{kind}-{user.username}"}
    return await authoring.create_item(conn, user, fields)


async def test_every_type_is_stored_as_canonical_yaml_that_itembank_accepts(conn, staff):
    teacher = await who(conn, "teacher")
    for kind in FIELDS:
        pk = await write(conn, teacher, kind)
        row = await conn.fetchrow("SELECT * FROM draft_items WHERE id = $1", pk)
        assert row["state"] == "draft" and row["type"] == kind and row["version"] == 1
        parsed = parse_text(row["source"], "x")
        assert parsed.problems == [] and check_item(parsed.items[0]) == []
        item = parsed.items[0].item
        assert item.type == ItemType(kind) and item.status == Status.DRAFT
        assert serialise_item(item) == row["source"]
        assert await conn.fetchval("SELECT action FROM review_events WHERE draft_pk = $1", pk) == "create"
    short = authoring.item_from_draft(await conn.fetchval("SELECT source FROM draft_items WHERE type = 'short'"))
    assert short.answer.canonical == "-1,5"
    multiple = authoring.item_from_draft(await conn.fetchval("SELECT source FROM draft_items WHERE type = 'multiple'"))
    assert multiple.correct_option_ids == ("A", "C")


async def test_short_with_number_format_and_tolerance(conn, staff):
    teacher = await who(conn, "teacher")
    pk = await write(conn, teacher, "short", short_key="3.14", short_format="number", short_tolerance="0.01")
    item = authoring.item_from_draft(await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", pk))
    assert item.answer.format.value == "number" and str(item.answer.tolerance) == "0.01"


async def test_bad_fields_report_each_problem_by_field_and_save_nothing(conn, staff):
    teacher = await who(conn, "teacher")
    with pytest.raises(authoring.InvalidItem) as e:
        await write(conn, teacher, "single", stem="", opt_B="$3x^2$", level="7", points="-1", key=[])
    problems = e.value.checked.problems
    assert {"stem", "level", "points", "opt_B", "key"} <= set(problems)
    # Named by the workspace's scheme (the legacy four here), not by bank.yaml as itembank says it.
    assert problems["level"][0].code == "level-not-in-scheme" and "4 Vận dụng cao" in problems["level"][0]
    with pytest.raises(authoring.InvalidItem) as e:
        await write(conn, teacher, "short", short_key="12345")
    assert "short_key" in e.value.checked.problems
    with pytest.raises(authoring.InvalidItem) as e:
        await write(conn, teacher, "truefalse4", st_c_answer="")
    assert "st_c_answer" in e.value.checked.problems
    with pytest.raises(authoring.InvalidItem) as e:
        await write(conn, teacher, "single", stem="Xem hình ![](media/missing.png)")
    assert "missing.png" in e.value.checked.problems["stem"][0]
    with pytest.raises(authoring.InvalidItem) as e:
        await write(conn, teacher, "single", item_id="bad id with spaces")
    assert "id" in e.value.checked.problems
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0


async def test_ids_are_suggested_and_unique(conn, staff):
    teacher = await who(conn, "teacher")
    first = await authoring.suggest_id(conn, "toan", 12)
    assert first == "TOAN12-001"
    await write(conn, teacher, "single", item_id=first)
    assert await authoring.suggest_id(conn, "toan", 12) == "TOAN12-002"
    with pytest.raises(authoring.InvalidItem) as e:
        await write(conn, teacher, "essay", item_id=first)
    assert "already used" in e.value.checked.problems["id"][0]


async def approve(conn, pk):
    reviewer = await who(conn, "reviewer")
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    await authoring.submit_items(conn, await who(conn, "teacher"), [pk])
    await authoring.review_item(conn, reviewer, pk, "approve", "tốt")


async def test_review_flow_submit_return_edit_submit_approve(conn, staff):
    teacher, reviewer = await who(conn, "teacher"), await who(conn, "reviewer")
    await authoring.set_subjects(conn, "reviewer", "toan, vat-li")
    pk = await write(conn, teacher, "single")
    await authoring.submit_items(conn, teacher, [pk])
    queue = await authoring.review_queue(conn, reviewer)
    assert [r["id"] for r in queue["to_review"]] == [pk]
    assert [r["id"] for r in (await authoring.review_queue(conn, teacher))["waiting"]] == [pk]
    with pytest.raises(UserError) as e:
        await authoring.review_item(conn, reviewer, pk, "return", "  ")
    assert e.value.code == "comment_required"
    await authoring.review_item(conn, reviewer, pk, "return", "Phương án C quá dễ loại.")
    mine = await authoring.review_queue(conn, teacher)
    assert mine["returned"][0]["last_comment"] == "Phương án C quá dễ loại."
    assert (await authoring.review_queue(conn, reviewer))["to_review"] == []
    # A returned item is edited in place and submitted again.
    assert await authoring.save_item(conn, teacher, pk, {**BASE, **FIELDS["single"], "opt_C": "$3x^3$"}) == pk
    await authoring.submit_items(conn, teacher, [pk])
    await authoring.review_item(conn, reviewer, pk, "approve", "")
    row = await conn.fetchrow("SELECT state, reviewer_id, source FROM draft_items WHERE id = $1", pk)
    assert row["state"] == "approved" and row["reviewer_id"] == reviewer.id
    assert authoring.item_from_draft(row["source"]).status == Status.APPROVED
    actions = [r["action"] for r in await authoring.events(conn, pk)]
    assert actions == ["create", "submit", "return", "edit", "submit", "approve"]
    approved = await authoring.approved_items(conn, [teacher.org_id], "toan")
    assert [r["id"] for r in approved] == [pk] and set(approved[0].keys()) >= {
        "id",
        "item_id",
        "version",
        "subject",
        "topic",
        "level",
        "type",
        "source",
    }
    assert await authoring.approved_items(conn, [teacher.org_id], "vat-li") == []


async def test_nobody_approves_their_own_item(conn, staff):
    reviewer = await who(conn, "reviewer")
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    pk = await write(conn, reviewer, "single")
    await authoring.submit_items(conn, reviewer, [pk])
    with pytest.raises(UserError) as e:
        await authoring.review_item(conn, reviewer, pk, "approve", "")
    assert e.value.code == "own_item" and e.value.status == 403
    assert await conn.fetchval("SELECT state FROM draft_items WHERE id = $1", pk) == "submitted"
    # The table refuses it too, whatever the code does.
    import asyncpg

    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE draft_items SET reviewer_id = author_id WHERE id = $1", pk)


async def test_reviewer_of_another_subject_and_teachers_are_refused(conn, staff):
    teacher, reviewer = await who(conn, "teacher"), await who(conn, "reviewer")
    await authoring.set_subjects(conn, "reviewer", ["ngu-van"])
    pk = await write(conn, teacher, "single")
    await authoring.submit_items(conn, teacher, [pk])
    assert (await authoring.review_queue(conn, reviewer))["to_review"] == []
    with pytest.raises(UserError) as e:
        await authoring.review_item(conn, reviewer, pk, "approve", "")
    assert e.value.code == "not_your_subject"
    with pytest.raises(UserError) as e:
        await authoring.review_item(conn, teacher, pk, "approve", "")
    assert e.value.code == "not_a_reviewer"
    with pytest.raises(UserError) as e:
        await authoring.review_item(conn, reviewer, pk, "publish", "")
    assert e.value.code == "bad_decision"


async def test_another_school_cannot_see_change_or_review(conn, staff):
    teacher, other = await who(conn, "teacher"), await who(conn, "b-teacher")
    pk = await write(conn, teacher, "single")
    with pytest.raises(UserError) as e:
        await authoring.get_draft(conn, other, pk)
    assert e.value.status == 404
    for call in (
        authoring.save_item(conn, other, pk, {**BASE, **FIELDS["single"]}),
        authoring.submit_items(conn, other, [pk]),
        authoring.duplicate_item(conn, other, pk),
        authoring.retire_item(conn, other, pk, "x"),
        authoring.add_media(conn, other, pk, "a.png", PNG),
    ):
        with pytest.raises(UserError) as e:
            await call
        assert e.value.status == 404
    assert await authoring.search(conn, other, authoring.DraftFilter()) == []
    # The department sees its schools' items.
    sgd = await who(conn, "sgd-admin")
    assert [r["id"] for r in await authoring.search(conn, sgd, authoring.DraftFilter())] == [pk]
    # A colleague in the same school sees the draft but may not change it.
    colleague = await who(conn, "reviewer")
    with pytest.raises(UserError) as e:
        await authoring.save_item(conn, colleague, pk, {**BASE, **FIELDS["single"]})
    assert e.value.code == "not_your_item"


async def test_editing_an_approved_item_makes_the_next_version(conn, staff):
    teacher = await who(conn, "teacher")
    pk = await write(conn, teacher, "single")
    await approve(conn, pk)
    before = await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", pk)
    new_pk = await authoring.save_item(conn, teacher, pk, {**BASE, **FIELDS["single"], "stem": "Đạo hàm mới"})
    assert new_pk != pk
    rows = await conn.fetch("SELECT id, version, state, source FROM draft_items ORDER BY version")
    assert [(r["version"], r["state"]) for r in rows] == [(1, "approved"), (2, "draft")]
    assert rows[0]["source"] == before
    assert authoring.item_from_draft(rows[1]["source"]).stem == "Đạo hàm mới"
    with pytest.raises(UserError) as e:
        await authoring.submit_items(conn, teacher, [pk])
    assert e.value.code == "bad_state"


async def test_a_version_already_in_the_bank_is_never_changed(conn, staff):
    teacher = await who(conn, "teacher")
    pk = await write(conn, teacher, "single", item_id="M-BANK")
    # As if a signed release had brought this very version into the bank.
    await conn.execute(
        "INSERT INTO trusted_keys (fingerprint, name, public_key_pem) VALUES ('00112233aabbccdd', 'k', 'x')"
    )
    release = await conn.fetchval(
        "INSERT INTO bank_releases (name, version, signer, signed_at, manifest, signature, manifest_sha256,"
        " item_count) VALUES ('r', '1', '00112233aabbccdd', now(), '', '', 'h', 1) RETURNING id"
    )
    await conn.execute(
        "INSERT INTO bank_items (item_id, version, type, subject, topic, level, points, lang, status, stem, source,"
        " content_sha256, first_release_id) VALUES ('M-BANK', 1, 'single', 'toan', 't', 1, 1, 'vi', 'approved',"
        " 's', 'x', 'h', $1)",
        release,
    )
    new_pk = await authoring.save_item(conn, teacher, pk, {**BASE, **FIELDS["single"]})
    assert new_pk != pk
    assert await conn.fetchval("SELECT version FROM draft_items WHERE id = $1", new_pk) == 2


async def test_duplicate_and_retire(conn, staff):
    teacher = await who(conn, "teacher")
    pk = await write(conn, teacher, "single", item_id="M-1")
    await authoring.add_media(conn, teacher, pk, "Đồ thị 1.PNG", PNG)
    copy = await authoring.duplicate_item(conn, teacher, pk)
    row = await conn.fetchrow("SELECT item_id, version, state FROM draft_items WHERE id = $1", copy)
    assert (row["item_id"], row["version"], row["state"]) == ("M-1-2", 1, "draft")
    assert list(await authoring.media_of(conn, copy)) == ["media/th-1.png"]
    with pytest.raises(UserError) as e:
        await authoring.duplicate_item(conn, teacher, pk, "M-1")
    assert e.value.code == "item_exists"
    with pytest.raises(UserError) as e:
        await authoring.retire_item(conn, teacher, pk, "")
    assert e.value.code == "comment_required"
    await authoring.retire_item(conn, teacher, pk, "Trùng với câu khác")
    row = await conn.fetchrow("SELECT state, source FROM draft_items WHERE id = $1", pk)
    assert row["state"] == "retired" and authoring.item_from_draft(row["source"]).status == Status.RETIRED
    with pytest.raises(UserError) as e:
        await authoring.save_item(conn, teacher, pk, {**BASE, **FIELDS["single"]})
    assert e.value.code == "item_not_editable"


async def test_images_are_sniffed_from_their_bytes(conn, staff):
    teacher = await who(conn, "teacher")
    pk = await write(conn, teacher, "single")
    assert await authoring.add_media(conn, teacher, pk, "graph.jpg", PNG) == "media/graph.png"
    cases = {
        "svg_refused": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "not_an_image": b"MZ\x90\x00 this is a program",
        "empty_file": b"",
        "media_too_large": PNG + b"\0" * authoring.MAX_MEDIA_BYTES,
    }
    for code, data in cases.items():
        with pytest.raises(UserError) as e:
            await authoring.add_media(conn, teacher, pk, "x.png", data)
        assert e.value.code == code
    assert authoring.sniff_image(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert authoring.sniff_image(b"GIF89a....") == "gif"
    assert authoring.sniff_image(b"\xff\xd8\xff\xe0") == "jpg"
    # The item may now show the image, and the release builder gets the file.
    fields = {**BASE, **FIELDS["single"], "stem": "Xem hình ![đồ thị](media/graph.png)"}
    assert await authoring.save_item(conn, teacher, pk, fields) == pk
    assert await authoring.draft_media_files(conn, [pk]) == {"media/graph.png": PNG}


async def test_yaml_import_is_all_or_nothing_with_line_numbers(conn, staff):
    teacher = await who(conn, "teacher")
    bad = YAML_TWO.replace("level: 3", "level: 9")
    with pytest.raises(UserError) as e:
        await authoring.import_yaml(conn, teacher, bad.encode(), "items.yaml")
    assert e.value.code == "import_failed"
    assert any(p.startswith("items.yaml:18:") and "outside 1-4" in p for p in e.value.details["problems"])
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0
    with pytest.raises(UserError) as e:
        await authoring.import_yaml(conn, teacher, b"id: [unclosed", "broken.yaml")
    assert e.value.details["problems"][0].startswith("broken.yaml:")
    with pytest.raises(UserError):
        await authoring.import_yaml(conn, teacher, b"\xff\xfe", "utf16.yaml")
    pks = await authoring.import_yaml(conn, teacher, YAML_TWO.encode(), "items.yaml")
    assert len(pks) == 2
    # The same ids a second time: refused, nothing added.
    with pytest.raises(UserError) as e:
        await authoring.import_yaml(conn, teacher, YAML_TWO.encode(), "items.yaml")
    assert "Y-1" in e.value.details["problems"][0]
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 2


async def test_xlsx_import_of_the_template_and_a_bad_sheet(conn, staff):
    teacher = await who(conn, "teacher")

    def break_level(sheet):
        header = [c.value for c in sheet[1]]
        sheet.cell(row=3, column=header.index("level") + 1, value=7)

    with pytest.raises(UserError) as e:
        await authoring.import_xlsx(conn, teacher, template_bytes(break_level), "mau.xlsx")
    assert any("row 3, column 'level'" in p for p in e.value.details["problems"])
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0
    with pytest.raises(UserError) as e:
        await authoring.import_xlsx(conn, teacher, b"PK\x03\x04 not really a zip", "fake.xlsx")
    assert e.value.code == "import_failed"
    pks = await authoring.import_xlsx(conn, teacher, template_bytes(), "mau.xlsx")
    types = {r["type"] for r in await conn.fetch("SELECT type FROM draft_items")}
    assert len(pks) >= 5 and types == {"single", "multiple", "truefalse4", "short", "essay"}
    assert {r["state"] for r in await conn.fetch("SELECT state FROM draft_items")} == {"draft"}


async def test_export_round_trips_through_the_yaml_parser(conn, staff):
    teacher = await who(conn, "teacher")
    pks = [await write(conn, teacher, kind) for kind in FIELDS]
    text = await authoring.export_yaml(conn, teacher, pks[:2])
    parsed = parse_text(text, "export.yaml")
    assert parsed.problems == [] and len(parsed.items) == 2
    everything = parse_text(await authoring.export_yaml(conn, teacher), "all.yaml")
    assert {s.item.type.value for s in everything.items} == set(FIELDS)
    # Exported items come back in under new ids only.
    other = await who(conn, "b-teacher")
    with pytest.raises(UserError):
        await authoring.import_yaml(conn, other, text.encode(), "export.yaml")
    with pytest.raises(UserError) as e:
        await authoring.export_yaml(conn, other, pks)
    assert e.value.code == "nothing_chosen"


async def test_subjects_are_assigned_within_the_admins_organisation(conn, staff):
    admin, b_admin = await who(conn, "admin"), await who(conn, "b-admin")
    assert await authoring.set_subjects(conn, "reviewer", "Toan, vat-li toan", by=admin) == ["toan", "vat-li"]
    assert await authoring.subjects_of(conn, (await who(conn, "reviewer")).id) == ["toan", "vat-li"]
    with pytest.raises(UserError) as e:
        await authoring.set_subjects(conn, "reviewer", "toan", by=b_admin)
    assert e.value.code == "unknown_user"
    # Named by code or name, whatever the case and accents; never anything off the list.
    assert await authoring.set_subjects(conn, "reviewer", ["Toán", "Vật lý", "HOÁ HỌC"], by=admin) == [
        "hoa-hoc",
        "toan",
        "vat-li",
    ]
    with pytest.raises(UserError) as e:
        await authoring.set_subjects(conn, "reviewer", ["toan", "Toán 12"], by=admin)
    assert e.value.code == "subject_not_in_list" and e.value.details["subject"] == "Toán 12"
    assert await authoring.subjects_of(conn, (await who(conn, "reviewer")).id) == ["hoa-hoc", "toan", "vat-li"]
    assert await authoring.set_subjects(conn, "reviewer", "") == []


async def test_cli_sets_a_reviewers_subjects(dsn, conn, staff, tmp_path):
    from support.cli import cbt, env_for, one_line_error

    env = env_for(tmp_path / "d", CBT_DATABASE_URL=dsn)
    done = cbt("user", "subjects", "Reviewer", "toan", "vat-li", env=env)
    assert done.returncode == 0, done.stderr
    assert "reviewer: toan, vat-li" in done.stdout
    assert [
        r["subject"]
        for r in await conn.fetch(
            "SELECT subject FROM staff_subjects s JOIN users u ON u.id = s.user_id WHERE u.username = 'reviewer' "
            "ORDER BY subject"
        )
    ] == ["toan", "vat-li"]
    assert "no staff member" in one_line_error(cbt("user", "subjects", "nobody", "toan", env=env))
    done = cbt("user", "subjects", "reviewer", env=env)
    assert done.returncode == 0 and await conn.fetchval("SELECT count(*) FROM staff_subjects") == 0


# -- subjects from the organisation's list (issue 16) ---------------------------------------


async def test_an_item_saved_with_a_typed_subject_reaches_its_reviewers_queue(conn, staff):
    """Saved as "Toán" where the reviewer reviews "toan", an item waited for ever; now the
    subject is stored as the list's code, and a subject off the list is refused."""
    teacher, reviewer = await who(conn, "teacher"), await who(conn, "reviewer")
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    pk = await write(conn, teacher, "single", subject="Toán")
    assert await conn.fetchval("SELECT subject FROM draft_items WHERE id = $1", pk) == "toan"
    assert (
        authoring.item_from_draft(await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", pk)).subject
        == "toan"
    )
    await authoring.submit_items(conn, teacher, [pk])
    assert [r["id"] for r in (await authoring.review_queue(conn, reviewer))["to_review"]] == [pk]
    with pytest.raises(authoring.InvalidItem) as refused:
        await write(conn, teacher, "single", item_id="T-2", subject="Toán 12")
    assert refused.value.checked.problems["subject"] == [
        "the subject 'Toán 12' is not in the list of subjects: choose one from the list (an administrator adds"
        " subjects on the Subjects page)"
    ]
    # Saving again maps a typed subject too.
    await authoring.review_item(conn, reviewer, pk, "return", "sửa lại")
    assert await authoring.save_item(conn, teacher, pk, {**BASE, **FIELDS["single"], "subject": "TOÁN"}) == pk
    assert await conn.fetchval("SELECT subject FROM draft_items WHERE id = $1", pk) == "toan"


async def test_an_item_from_before_the_list_keeps_its_subject_until_changed(conn, staff):
    teacher = await who(conn, "teacher")
    pk = await write(conn, teacher, "single")
    legacy = (await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", pk)).replace(
        "subject: toan", "subject: Đại số"
    )
    await conn.execute("UPDATE draft_items SET subject = 'Đại số', source = $2 WHERE id = $1", pk, legacy)
    # Other edits save; the subject it had is kept, and only a subject of the list replaces it.
    fields = {**BASE, **FIELDS["single"], "subject": "Đại số", "topic": "dai-so"}
    assert await authoring.save_item(conn, teacher, pk, fields) == pk
    assert tuple(await conn.fetchrow("SELECT subject, topic FROM draft_items WHERE id = $1", pk)) == (
        "Đại số",
        "dai-so",
    )
    with pytest.raises(authoring.InvalidItem):
        await authoring.save_item(conn, teacher, pk, {**fields, "subject": "Hình học"})
    from cbt import subjects

    missing = await subjects.not_in_list(conn, [teacher.org_id])
    assert [(r["subject"], r["items"], r["staff"]) for r in missing] == [("Đại số", 1, 0)]


async def test_imports_name_subjects_by_code_or_name_and_nothing_else(conn, staff):
    teacher = await who(conn, "teacher")
    item = parse_text(YAML_TWO, "x.yaml").items[0].item
    good = serialise_item(replace(item, id="IM-1", subject="Vật lý"))
    assert len(await authoring.import_yaml(conn, teacher, good.encode(), "a.yaml")) == 1
    assert await conn.fetchval("SELECT subject FROM draft_items WHERE item_id = 'IM-1'") == "vat-li"
    bad = serialise_item(replace(item, id="IM-2", subject="Vật lý 12"))
    with pytest.raises(UserError) as refused:
        await authoring.import_yaml(conn, teacher, bad.encode(), "b.yaml")
    assert any("'Vật lý 12' is not in the list of subjects" in p for p in refused.value.details["problems"])
    assert await conn.fetchval("SELECT count(*) FROM draft_items WHERE item_id = 'IM-2'") == 0


async def test_a_department_keeps_the_list_its_schools_use(conn, staff):
    from cbt import subjects

    admin, sgd_admin = await who(conn, "admin"), await who(conn, "sgd-admin")
    department = await subjects.list_for(conn, sgd_admin.org_id)
    assert {(s.code, s.name) for s in department} == set(subjects.STANDARD)
    school = await subjects.list_for(conn, admin.org_id)
    assert school == department  # the department's rows, none of the school's own yet
    assert [s.name for s in school][:3] == ["Âm nhạc", "Công nghệ", "Địa lí"]  # Đ after D, as in Vietnamese
    # A school adds one of its own; its sister school does not see it.
    await subjects.save(conn, admin.org_id, "gd-dia-phuong", "Giáo dục địa phương")
    assert subjects.find(await subjects.list_for(conn, admin.org_id), "giao duc dia phuong").code == "gd-dia-phuong"
    b_teacher = await who(conn, "b-teacher")
    assert subjects.find(await subjects.list_for(conn, b_teacher.org_id), "gd-dia-phuong") is None
    for code, name, refusal in [
        ("Vat Li", "x", "bad_subject_code"),
        ("vat-ly", "Vật lý", "subject_exists"),
        ("li", "Vật lí", "subject_exists"),
        ("toan", "Toán học", "subject_of_department"),
        ("ok", "", "bad_subject_name"),
    ]:
        with pytest.raises(UserError) as refused:
            await subjects.save(conn, admin.org_id, code, name)
        assert refused.value.code == refusal, (code, name)
    # Renamed by the department; removed only when nobody has it.
    await subjects.save(conn, sgd_admin.org_id, "hoa-hoc", "Hóa học")
    assert subjects.find(await subjects.list_for(conn, admin.org_id), "hoa-hoc").name == "Hóa học"
    await authoring.set_subjects(conn, "b-teacher", ["gdtc"])
    with pytest.raises(UserError) as refused:
        await subjects.remove(conn, sgd_admin.org_id, "gdtc")
    assert refused.value.code == "subject_in_use" and refused.value.details["staff"] == 1
    await subjects.remove(conn, sgd_admin.org_id, "tieng-duc")
    assert subjects.find(await subjects.list_for(conn, admin.org_id), "Tiếng Đức") is None
    # A new top-level organisation starts from the usual subjects.
    new_id = await accounts.add_org(conn, "THPT-LE", "Trường lẻ", "school")
    assert len(await subjects.list_for(conn, new_id)) == len(subjects.STANDARD)


async def test_the_migration_maps_typed_subjects_to_the_list_and_keeps_the_rest(empty_dsn, monkeypatch):
    """Migration 018: items and staff subjects typed before the list become the list's codes
    where they name one (accents and case aside), so the "Toán" item reaches the "toan" reviewer."""
    import asyncpg

    from cbt import subjects
    from cbt.platform import db

    every = db.migrations()
    monkeypatch.setattr(db, "migrations", lambda: [m for m in every if m.version < 18])
    conn = await asyncpg.connect(empty_dsn)
    try:
        await db.migrate(conn)
        sgd = await conn.fetchval("INSERT INTO orgs (code, name, kind) VALUES ('SGD', 'Sở', 'department') RETURNING id")
        school = await conn.fetchval(
            "INSERT INTO orgs (code, name, kind, parent_id) VALUES ('A', 'Trường A', 'school', $1) RETURNING id", sgd
        )
        users = {}
        for name, role in (("gv", "teacher"), ("tt", "reviewer")):
            users[name] = await conn.fetchval(
                "INSERT INTO users (username, role, org_id, password_hash) VALUES ($1, $2, $3, 'x') RETURNING id",
                name,
                role,
                school,
            )
        await conn.executemany(
            "INSERT INTO staff_subjects (user_id, subject) VALUES ($1, $2)",
            [(users["tt"], "toan"), (users["tt"], "vat-ly"), (users["gv"], "toan"), (users["gv"], "Toan")],
        )
        base = parse_text(YAML_TWO, "x.yaml").items[0].item
        for item_id, subject, state in (
            ("M-1", "Toán", "submitted"),
            ("M-2", "Vật lý", "draft"),
            ("M-3", "Toán 12", "submitted"),
            ("M-4", "toan", "draft"),
        ):
            item = replace(base, id=item_id, subject=subject)
            await conn.execute(
                "INSERT INTO draft_items (org_id, item_id, version, type, subject, topic, level, points, stem,"
                " source, state, author_id) VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                school,
                item_id,
                item.type.value,
                subject,
                item.topic,
                item.level,
                item.points,
                item.stem,
                serialise_item(item),
                state,
                users["gv"],
            )
        monkeypatch.setattr(db, "migrations", lambda: every)
        await db.migrate(conn)

        rows = {r["item_id"]: r for r in await conn.fetch("SELECT item_id, subject, source FROM draft_items")}
        assert {k: r["subject"] for k, r in rows.items()} == {
            "M-1": "toan",
            "M-2": "vat-li",
            "M-3": "Toán 12",
            "M-4": "toan",
        }
        for r in rows.values():  # the stored YAML says the same, and still reads
            assert authoring.item_from_draft(r["source"]).subject == r["subject"]
        assert dict(
            await conn.fetchrow(
                "SELECT array_agg(subject ORDER BY subject) AS s FROM staff_subjects WHERE user_id = $1", users["tt"]
            )
        ) == {"s": ["toan", "vat-li"]}
        assert [
            r[0] for r in await conn.fetch("SELECT subject FROM staff_subjects WHERE user_id = $1", users["gv"])
        ] == ["toan"]
        reviewer = accounts.Staff(users["tt"], "tt", "", "reviewer", school, "A", "school")
        assert [r["item_id"] for r in (await authoring.review_queue(conn, reviewer))["to_review"]] == ["M-1"]
        # What names nothing on the list stays, and is reported.
        assert [(r["subject"], r["items"]) for r in await subjects.not_in_list(conn, [school])] == [("Toán 12", 1)]
        # The department's list is the one a department made today gets.
        assert {(s.code, s.name) for s in await subjects.list_for(conn, school)} == set(subjects.STANDARD)
        assert await conn.fetchval("SELECT count(*) FROM subjects WHERE org_id = $1", school) == 0
    finally:
        await conn.close()


# -- item sets and level schemes (issue 18) ---------------------------------------------------

# A set as the set editor sends it: the passage, then two questions keyed 0 and 1.
SET = {
    "type": "set",
    "subject": "toan",
    "grade": "12",
    "topic": "ham-so",
    "lang": "vi",
    "stimulus": "Cho hàm số $y = x^3 - 3x$ có bảng giá trị:\n\n| $x$ | $-1$ | $1$ |\n|---|---|---|\n| $y$ | 2 | -2 |",
    "child": ["0", "1"],
    "c0_id": "S-1",
    "c0_type": "single",
    "c0_level": "1",
    "c0_points": "0.25",
    "c0_stem": "Hàm số đạt cực đại tại",
    "c0_opt_A": "$x = -1$",
    "c0_opt_B": "$x = 1$",
    "c0_key": "A",
    "c0_shuffle": "on",
    "c1_id": "S-2",
    "c1_type": "truefalse4",
    "c1_level": "2",
    "c1_points": "1",
    "c1_stem": "Xét các mệnh đề sau.",
    "c1_st_a": "Hàm số có hai cực trị.",
    "c1_st_a_answer": "true",
    "c1_st_b": "Giá trị cực tiểu là $-2$.",
    "c1_st_b_answer": "true",
    "c1_st_c": "Hàm số đồng biến trên $\\mathbb{R}$.",
    "c1_st_c_answer": "false",
    "c1_st_d": "Đồ thị đi qua gốc toạ độ.",
    "c1_st_d_answer": "true",
}


async def write_set(conn, user, set_id: str = "S", **more) -> int:
    return await authoring.create_item(conn, user, {**SET, **more, "id": set_id})


async def test_a_set_is_one_draft_holding_its_passage_and_questions(conn, staff):
    teacher = await who(conn, "teacher")
    pk = await write_set(conn, teacher)
    row = await conn.fetchrow("SELECT * FROM draft_items WHERE id = $1", pk)
    assert (row["type"], row["level"], row["state"], row["version"]) == ("set", None, "draft", 1)
    assert row["points"] == 1.25 and row["stem"].startswith("Cho hàm số")
    item_set, children = authoring.set_from_draft(row["source"])
    assert item_set.children == ("S-1", "S-2") and [c.type for c in children] == [ItemType.SINGLE, ItemType.TRUEFALSE4]
    assert {c.status for c in children} == {Status.DRAFT} and item_set.status == Status.DRAFT
    assert [c.set_id for c in children] == ["S", "S"] and children[0].correct_option_ids == ("A",)
    kids = await conn.fetch("SELECT * FROM draft_set_children WHERE draft_pk = $1 ORDER BY position", pk)
    assert [(k["child_id"], k["type"], k["level"]) for k in kids] == [("S-1", "single", 1), ("S-2", "truefalse4", 2)]
    # The stored source is what cbt bank validate accepts, the set whole.
    parsed = parse_text(row["source"], "x.yaml")
    assert parsed.problems == [] and check_items(parsed.items, None, sets=parsed.sets) == []
    # Reordered in the form (the "child" field's order): saved in that order.
    assert await authoring.save_item(conn, teacher, pk, {**SET, "child": ["1", "0"]}) == pk
    item_set, _ = authoring.set_from_draft(await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", pk))
    assert item_set.children == ("S-2", "S-1")
    # The list shows it once, with its questions; a level filter finds it by a question's level.
    found = await authoring.search(conn, teacher, authoring.DraftFilter(level=2))
    assert [(r["item_id"], r["children"], r["child_levels"]) for r in found] == [("S", ["S-2", "S-1"], [1, 2])]
    assert [r["item_id"] for r in await authoring.search(conn, teacher, authoring.DraftFilter(text="S-2"))] == ["S"]
    assert await authoring.search(conn, teacher, authoring.DraftFilter(level=3)) == []


async def test_a_sets_problems_are_said_at_their_fields_and_nothing_is_written(conn, staff):
    teacher = await who(conn, "teacher")
    # No questions at all.
    with pytest.raises(authoring.InvalidItem) as e:
        await write_set(conn, teacher, child=[])
    assert [p.code for p in e.value.checked.problems["children"]] == ["set-no-questions"]
    # One id for two questions: said at the second.
    with pytest.raises(authoring.InvalidItem) as e:
        await write_set(conn, teacher, c1_id="S-1")
    assert [p.code for p in e.value.checked.problems["c1_id"]] == ["child-id-twice"]
    assert "c0_id" not in e.value.checked.problems
    # A question's own problems are that question's: a key not ticked, an empty stem, a bad formula.
    with pytest.raises(authoring.InvalidItem) as e:
        await write_set(conn, teacher, c0_key=[], c1_stem="", stimulus="Sai $\\foo{1}$")
    problems = e.value.checked.problems
    assert {"c0_key", "c1_stem", "stimulus"} <= set(problems) and "key" not in problems
    # An id something else has, and a level the workspace does not write at.
    await write(conn, teacher, "single", item_id="LONE-1")
    await conn.execute(
        "INSERT INTO workspace_levels (org_id, scheme) SELECT id, '2025' FROM orgs WHERE code = 'THPT-A'"
    )
    with pytest.raises(authoring.InvalidItem) as e:
        await write_set(conn, teacher, c0_id="LONE-1", c1_level="4")
    problems = e.value.checked.problems
    assert [p.code for p in problems["c0_id"]] == ["id-taken"]
    assert [p.code for p in problems["c1_level"]] == ["level-not-in-scheme"]
    assert problems["c1_level"][0].params == {"level": "4", "levels": "1 Biết, 2 Hiểu, 3 Vận dụng"}
    assert await conn.fetchval("SELECT count(*) FROM draft_items WHERE type = 'set'") == 0
    assert await conn.fetchval("SELECT count(*) FROM draft_set_children") == 0


async def test_a_questions_id_is_its_sets_alone(conn, staff):
    teacher = await who(conn, "teacher")
    pk = await write_set(conn, teacher)
    # Nothing else takes a question's id, nor the set's.
    with pytest.raises(authoring.InvalidItem) as e:
        await write(conn, teacher, "single", item_id="S-2")
    assert [p.code for p in e.value.checked.problems["id"]] == ["id-taken"]
    with pytest.raises(authoring.InvalidItem) as e:
        await write_set(conn, teacher, "T", c0_id="T-1", c1_id="S-1")
    assert [p.code for p in e.value.checked.problems["c1_id"]] == ["id-taken"]
    assert "c0_id" not in e.value.checked.problems
    # The set's next version keeps its questions' ids.
    await approve(conn, pk)
    new_pk = await authoring.save_item(conn, teacher, pk, {**SET, "c1_points": "0.5"})
    assert new_pk != pk
    row = await conn.fetchrow("SELECT version, state, points FROM draft_items WHERE id = $1", new_pk)
    assert (row["version"], row["state"], row["points"]) == (2, "draft", 0.75)
    _, children = authoring.set_from_draft(await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", new_pk))
    assert [(c.id, c.version) for c in children] == [("S-1", 2), ("S-2", 2)]
    # A copy of the set gets ids of its own, its questions' too.
    copy = await authoring.duplicate_item(conn, teacher, pk)
    copied, children = authoring.set_from_draft(
        await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", copy)
    )
    # S-2 is a question's id already: the copy is S-3.
    assert (copied.id, copied.version, copied.children) == ("S-3", 1, ("S-3-1", "S-3-2"))
    assert [(c.id, c.set_id, c.version) for c in children] == [("S-3-1", "S-3", 1), ("S-3-2", "S-3", 1)]


async def test_a_set_is_reviewed_and_approved_as_one_unit(conn, staff):
    teacher, reviewer = await who(conn, "teacher"), await who(conn, "reviewer")
    await authoring.set_subjects(conn, "reviewer", ["toan"])
    pk = await write_set(conn, teacher)
    await authoring.submit_items(conn, teacher, [pk])
    queue = (await authoring.review_queue(conn, reviewer))["to_review"]
    assert [(r["id"], r["type"], r["children"]) for r in queue] == [(pk, "set", ["S-1", "S-2"])]
    assert authoring.set_from_draft(queue[0]["set_source"])[0].id == "S"
    await authoring.review_item(conn, reviewer, pk, "approve", "")
    row = await conn.fetchrow("SELECT state, reviewer_id, source FROM draft_items WHERE id = $1", pk)
    item_set, children = authoring.set_from_draft(row["source"])
    assert row["state"] == "approved" and row["reviewer_id"] == reviewer.id
    assert item_set.status == Status.APPROVED and {c.status for c in children} == {Status.APPROVED}
    # Nobody approves their own set.
    own = await write_set(conn, reviewer, "R", c0_id="R-1", c1_id="R-2")
    await authoring.submit_items(conn, reviewer, [own])
    with pytest.raises(UserError) as e:
        await authoring.review_item(conn, reviewer, own, "approve", "")
    assert e.value.code == "own_item"
    # Retired whole.
    await authoring.retire_item(conn, teacher, pk, "Đề cũ")
    item_set, children = authoring.set_from_draft(
        await conn.fetchval("SELECT source FROM draft_items WHERE id = $1", pk)
    )
    assert item_set.status == Status.RETIRED and {c.status for c in children} == {Status.RETIRED}


SET_YAML = """\
- id: Y-SET
  version: 1
  type: set
  subject: toan
  topic: ham-so
  lang: vi
  status: draft
  stimulus: Cho bảng số liệu.
  items:
    - id: Y-SET-1
      type: single
      level: {level}
      points: 0.25
      stem: Câu một?
      options: {{A: có, B: không}}
      answer: A
    - id: Y-SET-2
      type: short
      level: 2
      points: 0.5
      stem: Câu hai?
      answer: '1,5'
- id: Y-LONE
  version: 1
  type: essay
  subject: toan
  topic: ham-so
  level: 3
  points: 1
  lang: vi
  status: draft
  stem: Giải thích.
"""


async def test_yaml_import_takes_sets_whole_and_nothing_when_anything_is_wrong(conn, staff):
    teacher = await who(conn, "teacher")

    async def refused(text: str) -> list[str]:
        before = await conn.fetchval("SELECT count(*) FROM draft_items")
        with pytest.raises(UserError) as e:
            await authoring.import_yaml(conn, teacher, text.encode(), "bo.yaml")
        assert e.value.code == "import_failed"
        assert await conn.fetchval("SELECT count(*) FROM draft_items") == before
        return list(e.value.details["problems"])

    # A set without questions, a question in two sets, a level the workspace lacks: each at its line.
    empty = SET_YAML.format(level=1).split("  items:")[0] + "  items: []\n"
    assert [(p.code, p.where) for p in await refused(empty)] == [("set-empty", "bo.yaml:9")]
    twice = SET_YAML.format(level=1) + SET_YAML.format(level=1).replace("Y-SET\n", "Y-SET-B\n").split("- id: Y-LONE")[0]
    assert ("duplicate-id", "bo.yaml:42") in [(p.code, p.where) for p in await refused(twice)]
    await conn.execute("INSERT INTO workspace_levels (org_id, scheme) SELECT id, '2025' FROM orgs WHERE code = 'SGD-T'")
    lines = await refused(SET_YAML.format(level="van-dung-cao"))
    assert [(p.code, p.where) for p in lines] == [("level-range", "bo.yaml:12")]
    # At the 2025 levels a question may name its level by id.
    pks = await authoring.import_yaml(conn, teacher, SET_YAML.format(level="hieu").encode(), "bo.yaml")
    rows = await conn.fetch("SELECT id, item_id, type, state FROM draft_items ORDER BY id")
    assert [(r["item_id"], r["type"], r["state"]) for r in rows] == [
        ("Y-SET", "set", "draft"),
        ("Y-LONE", "essay", "draft"),
    ]
    assert [r["id"] for r in rows] == pks
    assert [
        (r["child_id"], r["level"])
        for r in await conn.fetch("SELECT child_id, level FROM draft_set_children ORDER BY position")
    ] == [("Y-SET-1", 2), ("Y-SET-2", 2)]
    # Again: the ids are taken now; a question's id is its set's, so another set's question may not have it.
    again = await refused(SET_YAML.format(level="hieu"))
    assert {p.params["id"] for p in again if p.code == "id-taken"} == {"Y-SET", "Y-LONE"}
    other = SET_YAML.format(level="hieu").replace("Y-SET\n", "Z-SET\n").replace("Y-SET-2", "Z-SET-2")
    other = other.split("- id: Y-LONE")[0]
    assert [(p.code, p.where, p.params["id"]) for p in await refused(other)] == [("id-taken", "bo.yaml:10", "Y-SET-1")]
    # Exported whole: the set with its questions, which reads back as it was written.
    text = await authoring.export_yaml(conn, teacher)
    parsed = parse_text(text, "export.yaml", levels=SCHEME_2025)
    assert parsed.problems == [] and [s.set.id for s in parsed.sets] == ["Y-SET"]
    assert [s.item.id for s in parsed.items] == ["Y-LONE", "Y-SET-1", "Y-SET-2"]


async def test_the_workspace_writes_at_its_organisations_level_scheme(conn, staff):
    teacher, admin, sgd_admin = await who(conn, "teacher"), await who(conn, "admin"), await who(conn, "sgd-admin")
    b_teacher = await who(conn, "b-teacher")
    assert await authoring.level_scheme(conn, teacher.org_id) == LEGACY
    # The department chooses for its schools; a school may choose its own.
    await authoring.set_level_scheme(conn, sgd_admin, "2025")
    assert await authoring.level_scheme(conn, teacher.org_id) == SCHEME_2025
    assert await authoring.level_scheme(conn, b_teacher.org_id) == SCHEME_2025
    assert await authoring.own_level_scheme(conn, admin.org_id) == ""
    await authoring.set_level_scheme(conn, admin, "legacy")
    assert await authoring.level_scheme(conn, teacher.org_id) == LEGACY
    assert await authoring.level_scheme(conn, b_teacher.org_id) == SCHEME_2025
    with pytest.raises(UserError) as e:
        await authoring.set_level_scheme(conn, admin, "2018")
    assert e.value.code == "bad_level_scheme"
    await authoring.set_level_scheme(conn, admin, "")  # back to the department's
    assert await authoring.level_scheme(conn, teacher.org_id) == SCHEME_2025
    # Level 4 is the legacy Vận dụng cao: not a level of the 2025 three.
    with pytest.raises(authoring.InvalidItem) as e:
        await write(conn, teacher, "single", level="4")
    assert e.value.checked.problems["level"][0].code == "level-not-in-scheme"
    pk = await write(conn, teacher, "single", level="3")
    assert await conn.fetchval("SELECT level FROM draft_items WHERE id = $1", pk) == 3


# -- questions from other tools ------------------------------------------------------------------


FOREIGN = {"subject": "Toán", "grade": "12", "topic": "ham-so", "level": "2", "points": "0,5", "id_prefix": ""}


async def test_the_values_a_foreign_file_lacks_are_checked_each_at_its_field(conn, staff):
    from decimal import Decimal

    from itembank.formats.imported import ImportDefaults

    teacher = await who(conn, "teacher")
    prefill = await authoring.foreign_prefill(conn, teacher)
    assert prefill["topic"] == "chua-phan-loai" and prefill["level"] == "1" and prefill["points"] == "0.25"
    assert prefill["subject"] in {s.code for s in await authoring.subject_list.list_for(conn, teacher.org_id)}
    defaults = await authoring.foreign_defaults(conn, teacher, FOREIGN, "Đề 15 phút.gift")
    assert defaults == ImportDefaults(
        subject="toan", topic="ham-so", level=2, points=Decimal("0.5"), grade=12, id_prefix="De-15-phut"
    )
    assert authoring.defaults_fields(defaults)["points"] == "0.5"
    with pytest.raises(authoring.InvalidDefaults) as e:
        bad = {"subject": "thien-van", "grade": "13", "topic": "x" * 101, "level": "5", "points": "1e-9"}
        await authoring.foreign_defaults(conn, teacher, {**bad, "id_prefix": "có dấu"}, "a.gift")
    assert e.value.code == "import_defaults_invalid" and e.value.details == {"count": 6}
    codes = {name: [p.code for p in problems] for name, problems in e.value.problems.items()}
    assert codes == {
        "subject": ["subject-not-listed"],
        "grade": ["bad-grade"],
        "topic": ["bad-topic"],
        "level": ["level-not-in-scheme"],
        "points": ["bad-points"],
        "id_prefix": ["bad-id-prefix"],
    }
    # At the 2025 scheme, a level is one of its three, by number or id.
    await authoring.set_level_scheme(conn, await who(conn, "admin"), "2025")
    assert (await authoring.foreign_defaults(conn, teacher, {**FOREIGN, "level": "hieu"}, "a.gift")).level == 2
    with pytest.raises(authoring.InvalidDefaults):
        await authoring.foreign_defaults(conn, teacher, {**FOREIGN, "level": "4"}, "a.gift")


async def test_a_preview_stores_nothing_and_saving_stores_exactly_what_it_showed(conn, staff):
    from support.foreign import GIFT, GIFT_KEYS

    teacher = await who(conn, "teacher")
    defaults = await authoring.foreign_defaults(conn, teacher, {**FOREIGN, "id_prefix": "kt"}, "kt.gift")
    preview = await authoring.preview_foreign(conn, teacher, GIFT.encode(), "kt.gift", defaults)
    assert preview.kind == "GIFT" and preview.left_out == 0 and preview.problems == []
    assert [one.item.id for one in preview.items] == [f"kt-{n}" for n in GIFT_KEYS]
    assert [one.where for one in preview.items] == ["kt.gift:4", "kt.gift:6", "kt.gift:8", "kt.gift:10"]
    assert [n.code for n in preview.notes] == ["category-ignored", "weights-not-kept"]
    assert "<math" in preview.items[3].view["stem"]  # rendered as the exam page renders it
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0
    with pytest.raises(authoring.ImportChanged):
        await authoring.import_foreign(conn, teacher, GIFT.encode(), "kt.gift", defaults, "not the digest")
    pks, saved = await authoring.import_foreign(conn, teacher, GIFT.encode(), "kt.gift", defaults, preview.digest)
    assert saved.digest == preview.digest and len(pks) == 4
    rows = await conn.fetch("SELECT id, item_id, source, state FROM draft_items ORDER BY id")
    assert [r["id"] for r in rows] == pks and {r["state"] for r in rows} == {"draft"}
    assert [authoring.item_from_draft(r["source"]) for r in rows] == [
        authoring.with_status(one.item, Status.DRAFT) for one in preview.items
    ]
    # A reader cannot import: the workspace's rule for every item.
    with pytest.raises(UserError) as e:
        await authoring.preview_foreign(conn, await who(conn, "proctor"), GIFT.encode(), "kt.gift", defaults)
    assert e.value.code == "role_refused"


async def test_the_workspaces_own_checks_leave_questions_out_and_say_why(conn, staff):
    from dataclasses import replace as changed

    from support.foreign import AIKEN, moodle_export

    teacher = await who(conn, "teacher")
    defaults = await authoring.foreign_defaults(conn, teacher, {**FOREIGN, "id_prefix": "mdl"}, "ngan-hang.xml")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    large = b"\x89PNG\r\n\x1a\n" + bytes(authoring.MAX_MEDIA_BYTES)
    for picture, code in ((svg, "picture-not-image"), (large, "picture-too-large")):
        preview = await authoring.preview_foreign(conn, teacher, moodle_export(picture), "nh.xml", defaults)
        assert [one.item.id for one in preview.items] == ["mdl-C2"] and preview.media == {}
        assert [(p.code, p.where) for p in preview.problems if p.code != "not-imported"] == [(code, "nh.xml:7")]
        assert preview.left_out == 2 and preview.problem_count == 2  # the picture, and the matching question
    # A level outside the workspace's scheme (an importer may read levels from the file).
    await authoring.set_level_scheme(conn, await who(conn, "admin"), "2025")
    preview = await authoring.preview_foreign(conn, teacher, AIKEN.encode(), "ak.txt", changed(defaults, level=4))
    assert preview.items == [] and preview.left_out == 3
    assert [p.code for p in preview.problems] == ["level-not-in-scheme", "options-out-of-order", "level-not-in-scheme"]
    with pytest.raises(UserError) as e:
        await authoring.import_foreign(
            conn, teacher, AIKEN.encode(), "ak.txt", changed(defaults, level=4), preview.digest
        )
    assert e.value.code == "nothing_to_import"
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 0


async def test_two_teachers_saving_one_file_at_once_store_it_once(dsn, conn, staff):
    import asyncio

    import asyncpg
    from support.foreign import GIFT

    teacher, colleague = await who(conn, "teacher"), await who(conn, "b-teacher")
    defaults = await authoring.foreign_defaults(conn, teacher, {**FOREIGN, "id_prefix": "kt"}, "kt.gift")
    digest = (await authoring.preview_foreign(conn, teacher, GIFT.encode(), "kt.gift", defaults)).digest
    other = await asyncpg.connect(dsn)
    try:
        outcomes = await asyncio.gather(
            authoring.import_foreign(conn, teacher, GIFT.encode(), "kt.gift", defaults, digest),
            authoring.import_foreign(other, colleague, GIFT.encode(), "kt.gift", defaults, digest),
            return_exceptions=True,
        )
    finally:
        await other.close()
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    # One stores all four; the other is told the ids are taken (before or while saving) and stores none.
    assert len(refused) == 1 and isinstance(refused[0], UserError), outcomes
    assert refused[0].code in ("import_changed", "item_exists")
    assert await conn.fetchval("SELECT count(*) FROM draft_items") == 4
