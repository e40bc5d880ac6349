"""An exam drawing from several bank releases of its subject: the exam file's
`releases:`, forms holding items of every release, the builder's counts
summed over them, and the releases that cannot make one exam."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from support.bank import SCHOOL

from cbt import assembly, builder, exams
from cbt.platform.errors import NotFound, UserError
from cbt.roster import Candidate
from itembank.demo import BANK

DEMO = f"{BANK.name} {BANK.version}"


def exam_yaml(release_lines: str, code="TOAN-2R", subject="toan", singles=5) -> str:
    opens = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    return f"""
code: {code}
title: Kiểm tra từ hai gói
subject: {subject}
{release_lines}
duration_minutes: 45
window: {{opens: {opens.isoformat()}, closes: {(opens + dt.timedelta(hours=3)).isoformat()}}}
sections:
  - title: Phần I
    rows:
      - {{topic: ham-so, level: 1, count: {singles}, points: 0.25, type: single}}
"""


TWO = f"releases: [{DEMO}, {SCHOOL}]"


def test_the_exam_file_takes_a_list_of_releases():
    spec = exams.parse_exam(exam_yaml(TWO))
    assert spec.all_releases == (("demo-thpt", "2025.1"), ("thpt-a-toan", "1"))
    assert (spec.release_name, spec.release_version) == ("demo-thpt", "2025.1")
    assert exams.spec_from_json(json.loads(json.dumps(spec.to_json()))) == spec
    # One release is written and stored as it always was.
    one = exams.parse_exam(exam_yaml(f"release: {DEMO}"))
    assert one.all_releases == (("demo-thpt", "2025.1"),) and "releases" not in one.to_json()
    assert exams.spec_from_json(json.loads(json.dumps(one.to_json()))) == one


@pytest.mark.parametrize(
    ("lines", "code", "where"),
    [
        (f"release: {DEMO}\n{TWO}", "release_and_releases", "releases"),
        ("releases: []", "releases_list", "releases"),
        (f"releases: {DEMO}", "releases_list", "releases"),
        (f"releases: [{DEMO}, thpt-a-toan]", "release_format", "releases[2]"),
        (f"releases: [{DEMO}, {DEMO}]", "release_twice", "releases[2]"),
    ],
)
def test_a_bad_list_of_releases_is_refused_saying_where(lines, code, where):
    with pytest.raises(exams.ExamFileError) as refused:
        exams.parse_exam(exam_yaml(lines))
    problems = refused.value.details["problems"]
    assert [(p.code, p.where) for p in problems] == [(code, where)]


async def test_forms_draw_from_both_releases(conn, imported):
    """Five single-choice ham-so items: the demo's three and the school's two,
    so every form holds items of both releases."""
    ids = [imported["demo"], imported["school"]]
    avail = await builder.availability(conn, ids)
    assert avail.count("ham-so", 1, "single") == 3 + 2
    assert (await builder.availability(conn, [imported["demo"]])).count("ham-so", 1, "single") == 3
    # With the demo alone the blueprint cannot be filled.
    with pytest.raises(UserError) as short:
        await exams.create_exam(conn, exams.parse_exam(exam_yaml(f"release: {DEMO}", code="ONE")), "THPT-A")
    assert short.value.code == "infeasible_blueprint"

    exam_id = await exams.create_exam(conn, exams.parse_exam(exam_yaml(TWO)), "THPT-A")
    assert await exams.release_ids(conn, exam_id) == ids
    assert await conn.fetchval("SELECT release_id FROM exams WHERE id = $1", exam_id) == imported["demo"]
    await exams.add_roster(
        conn,
        "TOAN-2R",
        [Candidate(f"00000000{n:02d}", f"Học sinh {n}", dt.date(2008, 1, n), "12A1", "", "P01") for n in (1, 2, 3)],
    )
    await exams.open_exam(conn, "TOAN-2R")
    source = {
        r["item_pk"]: r["release_id"]
        for r in await conn.fetch(
            "SELECT item_pk, release_id FROM release_items WHERE release_id = ANY($1::bigint[])", ids
        )
    }
    forms = await conn.fetch("SELECT c.code, f.form FROM candidate_forms f JOIN candidates c ON c.id = f.candidate_id")
    assert len(forms) == 3
    for row in forms:
        pks = [item["pk"] for s in json.loads(row["form"])["sections"] for item in s["items"]]
        assert len(pks) == 5 and {source[pk] for pk in pks} == set(ids)
        # The exam board draws the same form again from the same releases.
        _, same = await exams.rederive_form(conn, "TOAN-2R", row["code"])
        assert same
    # The school's item is rendered with its own release's figure.
    a1 = await conn.fetchval("SELECT id FROM bank_items WHERE item_id = 'HS-A1'")
    rendered = json.loads(
        await conn.fetchval("SELECT rendered FROM exam_items WHERE exam_id = $1 AND item_pk = $2", exam_id, a1)
    )
    assert "Câu của trường A1" in rendered["stem"] and "data:image/svg+xml;base64," in rendered["stem"]
    assert await conn.fetchval("SELECT count(*) FROM exam_items WHERE exam_id = $1", exam_id) == 5


@pytest.mark.parametrize(
    ("lines", "subject", "code", "named"),
    [
        (f"releases: [{DEMO}, thpt-a-vat-li 1]", "toan", "release_subject_mismatch", "thpt-a-vat-li 1"),
        (TWO, "vat-li", "release_subject_mismatch", DEMO),
        (f"releases: [{DEMO}, thpt-a-sua 1]", "toan", "release_item_conflict", "HS-01 (1, 2)"),
    ],
)
async def test_releases_that_cannot_make_one_exam_are_refused(conn, imported, lines, subject, code, named):
    with pytest.raises(UserError) as refused:
        await exams.create_exam(conn, exams.parse_exam(exam_yaml(lines, subject=subject)), "THPT-A")
    assert refused.value.code == code
    assert named in refused.value.message and named in json.dumps(refused.value.details, ensure_ascii=False)
    assert await conn.fetchval("SELECT count(*) FROM exams") == 0


@pytest.mark.parametrize("other", ["nope 1", "thpt-b-toan 1"])  # unknown; another school's
async def test_an_unknown_or_another_schools_release_is_not_found(conn, imported, other):
    with pytest.raises(NotFound) as refused:
        await exams.create_exam(conn, exams.parse_exam(exam_yaml(f"releases: [{DEMO}, {other}]")), "THPT-A")
    assert refused.value.code == "unknown_release" and other in refused.value.message
    assert await conn.fetchval("SELECT count(*) FROM exams") == 0


# -- set rows and trial rows in the exam file ---------------------------------------


def exam_with_rows(*rows: str) -> str:
    """exam_yaml's file with these rows (flow mappings) in its one section."""
    head, _ = exam_yaml(f"release: {DEMO}").split("    rows:\n")
    return head + "    rows:\n" + "".join(f"      - {row}\n" for row in rows)


def test_set_rows_and_unscored_rows_are_read_and_stored():
    spec = exams.parse_exam(
        exam_with_rows(
            "{topic: ham-so, level: 1, count: 2, type: single}",
            "{topic: ham-so, level: 2, count: 1, scored: false}",
            "{topic: doc-hieu, type: set, count: 2, children: 4, points: 0.5}",
            "{topic: doc-hieu, type: set, count: 1, scored: false}",
        )
    )
    rows = spec.blueprint.sections[0].rows
    assert [(r.type, r.level, r.children, r.scored) for r in rows] == [
        ("single", 1, None, True),
        (None, 2, None, False),
        (assembly.SET_ROW, None, 4, True),
        (assembly.SET_ROW, None, None, False),
    ]
    assert rows[2].points == Decimal("0.5") and rows[2].is_set and not rows[0].is_set
    stored = json.loads(json.dumps(spec.to_json()))
    assert exams.spec_from_json(stored) == spec
    written = stored["blueprint"]["sections"][0]["rows"]
    # Defaults are left out: an ordinary scored row is stored as it always was.
    assert written[0] == {"topic": "ham-so", "level": 1, "count": 2, "points": None, "type": "single"}
    assert written[1]["scored"] is False and "children" not in written[1]
    assert written[2]["children"] == 4 and "scored" not in written[2] and written[2]["level"] is None


def test_an_exam_stored_before_set_rows_still_loads():
    spec = exams.parse_exam(exam_yaml(f"release: {DEMO}"))
    stored = json.loads(json.dumps(spec.to_json()))
    (row,) = stored["blueprint"]["sections"][0]["rows"]
    assert set(row) == {"topic", "level", "count", "points", "type"}
    assert exams.spec_from_json(stored).blueprint.sections[0].rows[0].scored is True


@pytest.mark.parametrize(
    ("row", "code", "where", "says"),
    [
        (
            "{topic: doc-hieu, type: set, level: 2, count: 1}",
            "set_row_level",
            "rows[2].level",
            "a set row has no level",
        ),
        ("{topic: ham-so, level: 1, count: 1, children: 4}", "children_not_set", "rows[2].children", "only a set row"),
        ("{topic: doc-hieu, type: set, count: 1, children: 0}", "not_whole", "rows[2].children", "from 1 to 50"),
        ("{topic: doc-hieu, type: set, count: 1, children: 51}", "not_whole", "rows[2].children", "from 1 to 50"),
        ("{topic: doc-hieu, type: set, count: 1, children: 2.5}", "not_whole", "rows[2].children", "got 2.5"),
        ("{topic: ham-so, level: 1, count: 1, scored: 'no'}", "not_bool", "rows[2].scored", "true or false"),
        ("{topic: doc-hieu, type: set, count: 1, scored: 0}", "not_bool", "rows[2].scored", "true or false"),
        ("{topic: doc-hieu, type: set}", "set_row_incomplete", "rows[2]", "needs topic and count"),
        ("{topic: doc-hieu, count: 2}", "row_incomplete", "rows[2]", "topic, level and count"),
        ("{topic: doc-hieu, type: sets, count: 2, level: 1}", "not_one_of", "rows[2].type", "essay, set"),
        ("{topic: doc-hieu, type: set, count: 1, points: 0}", "not_positive", "rows[2].points", "more than 0"),
    ],
)
def test_a_bad_set_or_trial_row_is_refused_saying_where_and_why(row, code, where, says):
    with pytest.raises(exams.ExamFileError) as refused:
        # A good row first: the section is not empty whatever is wrong with the other.
        exams.parse_exam(exam_with_rows("{topic: ham-so, level: 1, count: 1}", row))
    problems = refused.value.details["problems"]
    assert [(p.code, p.where) for p in problems] == [(code, f"sections[1].{where}")]
    assert says in problems[0]


def test_a_set_shortfall_becomes_a_problem_that_counts_sets():
    sized = assembly.Shortfall(1, "doc-hieu", None, assembly.SET_ROW, wanted=3, available=2, children=4)
    any_size = assembly.Shortfall(0, "doc-hieu", None, assembly.SET_ROW, wanted=1, available=0)
    one, two = exams.describe_shortfalls([sized, any_size])
    assert (one.code, one.where, one.params) == (
        "sets_short_size",
        "sections[2]",
        {"topic": "doc-hieu", "children": 4, "wanted": 3, "available": 2},
    )
    assert one == "section 2: wants 3 sets of topic doc-hieu with 4 questions each, the release has 2 approved"
    assert (two.code, two.params) == ("sets_short", {"topic": "doc-hieu", "wanted": 1, "available": 0})
    assert two == "section 1: wants 1 set of topic doc-hieu, the release has 0 approved"
