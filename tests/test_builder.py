"""The test builder's form -> exam spec (through parse_exam, like the YAML
file), the blueprint's availability and short cells, and bad input."""

from decimal import Decimal

import pytest
from support.workspace import EXAM_YAML, good_form

from cbt import assembly, builder, exams
from itembank.levels import LEGACY, SCHEME_2025, scheme_of

RELEASE = "demo-thpt 2025.1"


def problems_of(form: dict) -> list[str]:
    with pytest.raises(exams.ExamFileError) as e:
        builder.build_spec(form, RELEASE)
    return e.value.details["problems"]


def test_the_form_gives_the_same_spec_as_the_yaml_file():
    text, spec = builder.build_spec(good_form(), RELEASE)
    assert spec == exams.parse_exam(EXAM_YAML)
    # The form's own exam file is a valid exam file: the files stay the source of truth.
    assert exams.parse_exam(text) == spec
    assert spec.policies["integrity"] == {"action": "pause", "pause_after": 2}
    assert spec.blueprint.sections[1].time_limit_minutes == 20


def test_a_stored_spec_comes_back_as_the_same_form():
    _, spec = builder.build_spec(good_form(), RELEASE)
    again = builder.form_from_spec(spec)
    assert builder.build_spec(again, RELEASE)[1] == spec
    assert again["s0.c1.ham-so"] == "2" and again["s0.type"] == "single" and again["s1.time_limit"] == "20"


def test_an_exam_files_time_zone_is_checked_and_kept_through_the_form():
    spec = exams.parse_exam(EXAM_YAML + "time_zone: Asia/Tokyo\n")
    assert spec.time_zone == "Asia/Tokyo" and exams.parse_exam(EXAM_YAML).time_zone == ""
    assert exams.spec_from_json(spec.to_json()) == spec
    # The builder does not ask for it, but editing the exam there keeps it.
    assert builder.build_spec(builder.form_from_spec(spec), RELEASE)[1] == spec
    with pytest.raises(exams.ExamFileError) as e:
        exams.parse_exam(EXAM_YAML + "time_zone: GMT+7\n")
    assert [p.code for p in e.value.details["problems"]] == ["time_zone_unknown"]


def test_seb_options_reach_the_policies():
    key = "ab" * 32
    _, spec = builder.build_spec(good_form(seb_required="1", seb_browser_exam_keys=key + "\n", seb_js_api="1"), RELEASE)
    assert spec.policies["seb"]["required"] is True
    assert spec.policies["seb"]["browser_exam_keys"] == [key]
    assert spec.policies["seb"]["js_api"] is True and spec.policies["seb"]["allow_quit"] is False


def test_a_mixed_section_from_a_yaml_file_is_not_shown_as_a_matrix():
    spec = exams.parse_exam(EXAM_YAML.replace("count: 1, points: 0.25, type: single", "count: 1, type: single"))
    with pytest.raises(exams.ExamFileError, match="YAML file"):
        builder.form_from_spec(spec)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"s0.c1.ham-so": "-1"}, "sections[1]: topic ham-so, level 1: must be from 0 to 500, got -1"),
        ({"s0.c1.ham-so": "hai"}, "sections[1]: topic ham-so, level 1: write a whole number from 0 to 500, got 'hai'"),
        ({"closes": "2026-12-20T07:00"}, "window: closes must be after opens"),
        ({"opens": "20/12/2026"}, "window.opens: '20/12/2026' is not a date and time"),
        (
            {"networks_allow": "10.0.0.300/8"},
            "policies.networks.allow: '10.0.0.300/8' is not an address or CIDR network",
        ),
        ({"networks_rooms": "P01 10.1.1.0/24"}, "policies.networks.rooms line 1: write ROOM: CIDR"),
        ({"duration_minutes": "0"}, "duration_minutes: must be from 1 to 1440, got 0"),
        ({"s0.points": "-1"}, "sections[1].points: must be more than 0"),
        ({"s0.type": "bogus"}, "sections[1].type: one of single"),
        ({"single_penalty": "2"}, "scoring.single_penalty: a fraction of the item's points from 0 to 1"),
        ({"tz": "Asia/Hanoi"}, "window.tz: a time zone offset like +07:00"),
        ({"code": "", "title": ""}, "code: give the exam a code"),
        ({"code": "TOÁN 12"}, "code: only letters without accents, digits"),
        ({"integrity_action": "shout"}, "policies.integrity.action: one of count, warn, pause"),
        ({"s0.c1.ham-so": "0", "s0.c2.mu-logarit": ""}, "sections[1]: has no rows"),
        ({"form_count": "100"}, "forms.count: must be from 1 to 99, got 100"),
    ],
)
def test_bad_input_is_named(changes, expected):
    found = problems_of(good_form(**changes))
    assert any(expected in p for p in found), found


def test_every_problem_is_listed_at_once_and_none_twice():
    found = problems_of(good_form(**{"s0.c1.ham-so": "-3", "closes": "2026-12-19T07:00", "opens": ""}))
    assert any("topic ham-so, level 1" in p for p in found)
    assert sum(p.startswith("window.opens") for p in found) == 1, found


AVAIL = builder.Availability(
    groups=(
        ("ham-so", "toan", 1, "single", Decimal("0.25"), 3),
        ("ham-so", "toan", 2, "truefalse4", Decimal("1"), 1),
        ("ham-so", "toan", 2, "single", Decimal("0.25"), 2),
        ("mu-logarit", "toan", 4, "essay", Decimal("1"), 1),
    )
)


def test_availability_follows_the_item_type():
    assert AVAIL.topics == [("ham-so", "toan"), ("mu-logarit", "toan")]
    assert AVAIL.count("ham-so", 2, None) == 3
    assert AVAIL.count("ham-so", 2, "single") == 2
    assert AVAIL.count("ham-so", 2, "essay") == 0


def test_a_cell_asking_more_than_available_is_short():
    sections = builder.sections_of(
        {"section_count": "1", "s0.type": "single", "s0.c1.ham-so": "4", "s0.c2.ham-so": "2"}
    )
    status = builder.blueprint_status(sections, AVAIL)
    cells = status["sections"][0]["cells"]
    assert cells["1.ham-so"] == {"available": 3, "wanted": 4, "short": True, "left": 3}
    assert cells["2.ham-so"] == {"available": 2, "wanted": 2, "short": False}
    assert [builder.describe(s) for s in status["shortfalls"]] == [
        "section 1: topic ham-so, level 1, type single: wants 4 approved items, the release has 3"
    ]
    assert status["total_items"] == 6 and status["total_points"] == "1.5" and status["points_exact"]


def test_sections_compete_for_the_same_items():
    sections = builder.sections_of({"section_count": "2", "s0.c1.ham-so": "2", "s1.c1.ham-so": "2"})
    status = builder.blueprint_status(sections, AVAIL)
    assert not status["sections"][0]["cells"]["1.ham-so"]["short"]
    second = status["sections"][1]["cells"]["1.ham-so"]
    assert second["short"] and second["left"] == 1


def test_points_are_estimated_when_a_cells_items_differ():
    status = builder.blueprint_status(builder.sections_of({"section_count": "1", "s0.c2.ham-so": "3"}), AVAIL)
    assert status["total_points"] == "1.5" and not status["points_exact"]
    fixed = builder.blueprint_status(
        builder.sections_of({"section_count": "1", "s0.c2.ham-so": "3", "s0.points": "0,5"}), AVAIL
    )
    assert fixed["total_points"] == "1.5" and fixed["points_exact"]


def test_bad_counts_do_not_break_the_live_status():
    status = builder.blueprint_status(
        builder.sections_of({"section_count": "x", "s0.c1.ham-so": "-2", "s7.c1.ham-so": "1"}), AVAIL
    )
    assert status["total_items"] == 0 and status["shortfalls"] == []
    assert len(status["sections"]) == 1


# -- set rows, level targets, the bản đặc tả ----------------------------------------


def test_set_rows_targets_and_the_specification_go_through_the_form_and_back():
    form = good_form(
        **{
            "s1.sets.reading": "2",
            "s1.children.reading": "5",
            "target.1": "40",
            "target.2": "30",
            "target.3": "30",
            "specification.1.ham-so": "Nhận ra khoảng đồng biến",
            "specification.3.reading": "Suy luận từ bài đọc",
        }
    )
    text, spec = builder.build_spec(form, RELEASE, SCHEME_2025)
    rows = spec.blueprint.sections[1].rows
    assert rows[-1] == assembly.BlueprintRow(topic="reading", level=None, count=2, type="set", children=5)
    assert spec.level_targets == {1: 40, 2: 30, 3: 30}
    assert spec.specification == {"ham-so": {1: "Nhận ra khoảng đồng biến"}, "reading": {3: "Suy luận từ bài đọc"}}
    # The form's own file says them as an exam file does, and the stored spec comes back the same.
    assert exams.parse_exam(text) == spec
    assert "level_targets:\n  1: 40\n" in text
    assert exams.spec_from_json(spec.to_json()) == spec
    again = builder.form_from_spec(spec)
    assert again["s1.sets.reading"] == "2" and again["s1.children.reading"] == "5" and again["target.2"] == "30"
    assert builder.build_spec(again, RELEASE, SCHEME_2025)[1] == spec


def test_an_exam_without_targets_is_stored_as_before():
    _, spec = builder.build_spec(good_form(), RELEASE)
    stored = spec.to_json()
    assert "level_targets" not in stored and "specification" not in stored
    assert exams.spec_from_json(stored) == spec


def test_trial_rows_are_not_shown_as_a_matrix_that_would_score_them():
    spec = exams.parse_exam(
        EXAM_YAML.replace(
            "- {topic: ham-so, level: 2, count: 1}", "- {topic: ham-so, level: 2, count: 1, scored: false}"
        )
    )
    with pytest.raises(exams.ExamFileError) as e:
        builder.form_from_spec(spec)
    assert [p.code for p in e.value.details["problems"]] == ["matrix_trial_rows"]


@pytest.mark.parametrize(
    ("changes", "code", "expected"),
    [
        (
            {"target.1": "40", "target.2": "30", "target.3": "20"},
            "targets_sum",
            "level_targets: the percents add up to 90, not 100",
        ),
        ({"target.1": "bốn mươi", "target.2": "60"}, "target_percent", "level 1: a percent from 0 to 100"),
        ({"target.1": "140", "target.2": "-40"}, "target_percent", "level 1: a percent from 0 to 100, got 140"),
        (
            {"s0.c4.ham-so": "1"},
            "row_level_not_in_scheme",
            "sections[1]: topic ham-so, level 4: the bank's levels are 1 Biết, 2 Hiểu, 3 Vận dụng",
        ),
        (
            {"target.1": "40", "target.2": "30", "target.4": "30"},
            "level_not_in_scheme",
            "level_targets: level 4 is not a level of the bank",
        ),
        ({"specification.4.ham-so": "Vận dụng cao"}, "level_not_in_scheme", "specification: level 4 is not a level"),
        ({"s1.sets.reading": "hai"}, "not_whole", "sections[2]: item sets of topic reading: write a whole number"),
        (
            {"s1.sets.reading": "1", "s1.children.reading": "0"},
            "out_of_range",
            "questions in each set of topic reading",
        ),
    ],
)
def test_bad_targets_levels_and_set_counts_are_named(changes, code, expected):
    with pytest.raises(exams.ExamFileError) as e:
        builder.build_spec(good_form(**changes), RELEASE, SCHEME_2025)
    found = e.value.details["problems"]
    assert any(p.code == code and expected in p for p in found), found


def test_a_level_4_row_is_fine_in_the_legacy_scheme():
    _, spec = builder.build_spec(good_form(**{"s0.c4.ham-so": "1"}), RELEASE)
    assert any(r.level == 4 for r in spec.blueprint.sections[0].rows)


# The summary as the 2025 template reads it, over a 2025 release: every
# figure below is worked out by hand from the blueprint in SUMMARY_FORM.
SETS = tuple(
    builder.SetInfo(
        f"TK-{n}@1",
        "thong-ke",
        "toan",
        (("truefalse4", 2, Decimal("1")), ("short", 3, Decimal("0.5")), ("short", 3, Decimal("0.5"))),
    )
    for n in (1, 2)
)
AVAIL_2025 = builder.Availability(
    groups=(
        ("ham-so", "toan", 1, "single", Decimal("0.25"), 6),
        ("ham-so", "toan", 1, "truefalse4", Decimal("1"), 2),
        ("ham-so", "toan", 2, "truefalse4", Decimal("1"), 2),
        ("ham-so", "toan", 3, "short", Decimal("0.5"), 3),
        ("xac-suat", "toan", 1, "single", Decimal("0.25"), 4),
        ("xac-suat", "toan", 2, "single", Decimal("0.25"), 4),
        ("xac-suat", "toan", 3, "essay", Decimal("1"), 1),
    ),
    sets=SETS,
)
SUMMARY_FORM = {
    "section_count": "4",
    # Phần I, multiple choice at 0.25: 8 Biết (2 points), 4 Hiểu (1 point).
    "s0.type": "single",
    "s0.points": "0.25",
    "s0.c1.ham-so": "4",
    "s0.c1.xac-suat": "4",
    "s0.c2.xac-suat": "4",
    # Phần II, true/false at 1: 2 Biết (2 points), 1 Hiểu (1 point).
    "s1.type": "truefalse4",
    "s1.points": "1",
    "s1.c1.ham-so": "2",
    "s1.c2.ham-so": "1",
    # Phần III, short answers at 0.5: 2 Vận dụng (1 point).
    "s2.type": "short",
    "s2.points": "0,5",
    "s2.c3.ham-so": "2",
    # Phần IV, the items' own points: a set (a true/false Hiểu, 1 point; two short Vận dụng, 1 point)
    # and an essay Vận dụng (1 point).
    "s3.sets.thong-ke": "1",
    "s3.c3.xac-suat": "1",
}


def summary(form: dict, avail=AVAIL_2025) -> builder.Matrix:
    sections = builder.sections_of(form)
    return builder.matrix(builder.form_blueprint(sections)[0], avail, SCHEME_2025, builder.targets_of(form))


def test_the_summary_counts_questions_and_points_per_format_and_level():
    m = summary(SUMMARY_FORM | {"target.1": "40", "target.2": "30", "target.3": "30"})
    assert m.levels == (1, 2, 3) and m.formats == ("mcq", "truefalse", "short", "essay")
    assert m.topics == ("ham-so", "thong-ke", "xac-suat")
    assert m.count("ham-so", "mcq", 1) == 4 and m.count("xac-suat", "mcq", 2) == 4
    assert m.count("thong-ke", "truefalse", 2) == 1 and m.count("thong-ke", "short", 3) == 2
    # Per format: questions and points.
    assert [m.count(fmt=f) for f in m.formats] == [12, 4, 4, 1]
    assert [m.points_of(fmt=f) for f in m.formats] == [3, 4, 2, 1]
    # Per level: 10, 6 and 5 questions; 4, 3 and 3 points of 10.
    assert [m.count(level=lv) for lv in m.levels] == [10, 6, 5]
    assert [m.points_of(level=lv) for lv in m.levels] == [4, 3, 3]
    assert m.total_questions == 21 and m.total_points == 10 and m.exact
    assert [m.percent(lv) for lv in m.levels] == [40, 30, 30]
    assert m.percent(fmt="truefalse") == 40
    assert m.checkable and m.off_target() == []
    # The live status says the same totals.
    status = builder.blueprint_status(builder.sections_of(SUMMARY_FORM), AVAIL_2025, SCHEME_2025)
    assert status["total_items"] == 21 and status["total_points"] == "10" and status["shortfalls"] == []
    assert status["sections"][3]["cells"]["set.thong-ke"] == {"available": 2, "wanted": 1, "short": False}


def test_a_level_off_its_target_by_more_than_the_tolerance_is_said():
    # Shares 40 / 30 / 30 against 50 / 25 / 25: Biết misses by 10 points; Hiểu and Vận dụng by 5, within tolerance.
    m = summary(SUMMARY_FORM | {"target.1": "50", "target.2": "25", "target.3": "25"})
    assert m.off_target() == [(1, Decimal(40), Decimal(50))]
    t = {"ws.exams.off_target": "{level}: {percent}% of {target}% (over {tolerance})"}.get
    notes = builder.target_notes(m, lambda key, **kw: t(key).format(**kw), {1: "Biết", 2: "Hiểu", 3: "Vận dụng"}, "vi")
    assert notes == ["Biết: 40% of 50% (over 5)"]
    # A share that is not whole: 4.25 of 10.25 points is 41.46%, within 5 points of 40.
    m = summary(SUMMARY_FORM | {"s0.c1.ham-so": "5", "target.1": "40", "target.2": "30", "target.3": "30"})
    assert builder.percent_text(m.percent(1)) == "41.5" and m.off_target() == []


def test_sets_whose_levels_differ_are_said_to_vary():
    odd = builder.SetInfo("TK-3@1", "thong-ke", "toan", (("short", 1, Decimal("0.5")),) * 2)
    avail = builder.Availability(AVAIL_2025.groups, (*SETS, odd))
    m = summary(SUMMARY_FORM | {"target.1": "40", "target.2": "30", "target.3": "30"}, avail)
    # One set drawn from three, of 3, 3 and 2 questions worth 2, 2 and 1 points: at least 2 questions,
    # the points their mean (an estimate), and no cell can hold them.
    assert m.varies == {"thong-ke": [1, 2, Decimal(5) / 3]}
    assert m.count("thong-ke") == 0 and m.topic_questions("thong-ke") == 2
    assert not m.exact and m.total_questions == 20
    assert not m.checkable and m.off_target() == []
    # With the size asked, only the sets of that size qualify, and they are alike.
    m = summary(SUMMARY_FORM | {"s3.children.thong-ke": "3"}, avail)
    assert m.varies == {} and m.count("thong-ke") == 3 and m.exact
    m = summary(SUMMARY_FORM | {"s3.children.thong-ke": "2"}, avail)
    assert m.count("thong-ke", "short", 1) == 2


def test_a_row_of_any_type_over_cells_of_several_formats_is_its_own_column():
    m = summary({"section_count": "1", "s0.c1.ham-so": "2", "s0.c3.xac-suat": "1"})
    assert m.formats[-1] == "any" and m.count("ham-so", "any", 1) == 2
    assert m.count("xac-suat", "essay", 3) == 1  # one format there: its own column
    # Their points are the mean of the cell's items (six of 0.25, two of 1: 0.4375 each): an estimate.
    assert not m.exact and m.points_of("ham-so") == Decimal("0.875")


def test_more_sets_than_the_release_has_is_a_short_set_cell():
    status = builder.blueprint_status(
        builder.sections_of({"section_count": "1", "s0.sets.thong-ke": "3"}), AVAIL_2025, SCHEME_2025
    )
    cell = status["sections"][0]["cells"]["set.thong-ke"]
    assert cell["short"] and cell["left"] == 2
    assert [builder.describe(s) for s in status["shortfalls"]] == [
        "section 1: topic thong-ke: wants 3 item sets, the release has 2"
    ]
    sized = builder.blueprint_status(
        builder.sections_of({"section_count": "1", "s0.sets.thong-ke": "1", "s0.children.thong-ke": "4"}),
        AVAIL_2025,
        SCHEME_2025,
    )
    assert sized["sections"][0]["cells"]["set.thong-ke"] == {"available": 0, "wanted": 1, "short": True, "left": 0}


def test_level_names_come_from_the_scheme():
    assert builder.level_names(SCHEME_2025, "vi") == {1: "Biết", 2: "Hiểu", 3: "Vận dụng"}
    assert builder.level_names(SCHEME_2025, "en") == {1: "Recall", 2: "Comprehension", 3: "Application"}
    assert builder.level_names(LEGACY, "en")[4] == "High application"
    own = scheme_of([("de", "Dễ"), ("kho", "Khó")])
    assert builder.level_names(own, "en") == {1: "Dễ", 2: "Khó"}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("level_targets: [40, 30, 30]\n", "targets_not_mapping"),
        ("level_targets: {biet: 40, 2: 60}\n", "not_a_level"),
        ("level_targets: {1: true, 2: 100}\n", "target_percent"),
        ("level_targets: {1: 33.3, 2: 33.3, 3: 33.3}\n", "targets_sum"),
        ("specification: [ham-so]\n", "specification_shape"),
        ("specification: {ham-so: {0: Nhận ra}}\n", "not_a_level"),
    ],
)
def test_an_exam_files_targets_and_specification_are_checked(text, code):
    with pytest.raises(exams.ExamFileError) as e:
        exams.parse_exam(EXAM_YAML + text)
    assert [p.code for p in e.value.details["problems"]] == [code]


def test_an_exam_files_targets_may_have_decimals():
    spec = exams.parse_exam(EXAM_YAML + "level_targets: {1: 33.4, 2: '33,3', 3: 33.3}\n")
    assert spec.level_targets == {1: Decimal("33.4"), 2: Decimal("33.3"), 3: Decimal("33.3")}
    assert exams.spec_from_json(spec.to_json()) == spec
