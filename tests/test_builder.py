"""The test builder's form -> exam spec (through parse_exam, like the YAML
file), the blueprint's availability and short cells, and bad input."""

from decimal import Decimal

import pytest
from support.workspace import EXAM_YAML, good_form

from cbt import builder, exams

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
