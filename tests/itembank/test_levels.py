"""Level schemes: the legacy four, the 2025 three, a bank's own list; levels by number or id."""

from __future__ import annotations

import textwrap

import pytest

from itembank.formats.yaml_format import parse_bank_info, parse_text, serialise_bank_info
from itembank.levels import LEGACY, SCHEME_2025, LevelError, LevelScheme
from itembank.validate import validate_path

BANK = "format: cbt-bank/1\nname: b\nversion: '1'\n"


def bank(levels: str) -> tuple:
    return parse_bank_info(BANK + levels, "bank.yaml")


def item(level: str) -> str:
    return textwrap.dedent(
        f"""\
        id: L-1
        version: 1
        type: essay
        subject: toan
        topic: ham-so
        level: {level}
        points: 1
        lang: vi
        status: approved
        stem: Trình bày.
        """
    )


# ---------------------------------------------------------------- the schemes


def test_the_built_in_schemes_and_their_names():
    assert LEGACY.ids == ("nhan-biet", "thong-hieu", "van-dung", "van-dung-cao")
    assert [LEGACY.name(n) for n in LEGACY.numbers] == ["Nhận biết", "Thông hiểu", "Vận dụng", "Vận dụng cao"]
    assert SCHEME_2025.ids == ("biet", "hieu", "van-dung")
    assert [SCHEME_2025.name(n) for n in SCHEME_2025.numbers] == ["Biết", "Hiểu", "Vận dụng"]
    assert SCHEME_2025.id_of(3) == "van-dung" and SCHEME_2025.count == 3
    assert LEGACY.describe(2) == "2 (Thông hiểu / comprehension)"


def test_a_level_is_numbered_from_its_number_or_its_id():
    assert [SCHEME_2025.number(x) for x in ("biet", "hieu", "van-dung", 1, 2, 3, "3", " hieu ")] == [
        1,
        2,
        3,
        1,
        2,
        3,
        3,
        2,
    ]
    assert LEGACY.number("van-dung-cao") == 4
    # The same id may sit at another place in another scheme.
    assert LEGACY.number("van-dung") == 3 and SCHEME_2025.number("van-dung") == 3


@pytest.mark.parametrize("level", [0, 4, "4", "van-dung-cao", "nhan-biet", "kho", True, "²"])
def test_a_level_outside_the_scheme_is_refused_with_the_scheme_named(level):
    with pytest.raises(LevelError) as error:
        SCHEME_2025.number(level)
    assert error.value.code == "level-range"
    assert "biet" in str(error.value) or "Biết" in str(error.value)
    with pytest.raises(LevelError):
        SCHEME_2025.name(4)


def test_a_scheme_needs_distinct_ids_and_a_name_each():
    with pytest.raises(ValueError, match="distinct"):
        LevelScheme(ids=("a", "a"), names=("A", "B"))
    with pytest.raises(ValueError, match="distinct"):
        LevelScheme(ids=("a", "b"), names=("A",))


# ---------------------------------------------------------------- bank.yaml


@pytest.mark.parametrize(
    ("levels", "ids", "names"),
    [
        ("", LEGACY.ids, LEGACY.names),
        ("levels: 2025", SCHEME_2025.ids, SCHEME_2025.names),
        ("levels: '2025'", SCHEME_2025.ids, SCHEME_2025.names),
        ("levels: [biet, hieu, van-dung]", SCHEME_2025.ids, SCHEME_2025.names),
        ("levels: [nhan-biet, thong-hieu, van-dung, van-dung-cao]", LEGACY.ids, LEGACY.names),
        ("levels:\n  - de: Dễ\n  - kho: Khó", ("de", "kho"), ("Dễ", "Khó")),
        (
            "levels: [biet, {hieu-sau: Hiểu sâu}, van-dung]",
            ("biet", "hieu-sau", "van-dung"),
            ("Biết", "Hiểu sâu", "Vận dụng"),
        ),
        ("levels: [muc-1, muc-2]", ("muc-1", "muc-2"), ("muc-1", "muc-2")),
    ],
)
def test_bank_yaml_says_which_levels_and_round_trips(levels, ids, names):
    info, problems = bank(levels)
    assert problems == []
    assert (info.levels.ids, info.levels.names) == (ids, names)
    again, problems = parse_bank_info(serialise_bank_info(info), "bank.yaml")
    assert problems == [] and again == info
    # A list equal to a built-in scheme is that scheme, glosses and all.
    if ids == SCHEME_2025.ids:
        assert info.levels is SCHEME_2025 and "levels: '2025'" in serialise_bank_info(info)
    if ids == LEGACY.ids:
        assert info.levels is LEGACY and "levels" not in serialise_bank_info(info)


@pytest.mark.parametrize(
    ("levels", "line", "says"),
    [
        ("levels: 2024", 4, "'2024' is not a level scheme: write levels: 2025"),
        ("levels: []", 4, "is not a level scheme"),
        ("levels: {biet: Biết}", 4, "a mapping is not a level scheme"),
        ("levels:\n  - biet\n  - biet", 6, "'biet' is listed twice"),
        ("levels: [1, 2, 3]", 4, "'1' is not a level id: start with a letter"),
        ("levels:\n  - Biết", 5, "'Biết' is not a level id"),
        ("levels:\n  - de\n  - {a: A, b: B}", 6, "a mapping is not a level"),
        ("levels:\n  - de\n  - [a]", 6, "a list is not a level"),
        ("levels:\n  - de: ' '", 5, "a name of 1 to 100 characters"),
        ("levels: [" + ", ".join(f"m{i}" for i in range(11)) + "]", 4, "11 levels, more than 10"),
    ],
)
def test_a_bad_level_scheme_says_where_and_how_to_fix_it(levels, line, says):
    info, problems = bank(levels)
    assert info is None
    assert {p.code for p in problems} == {"bad-levels"}
    assert problems[0].line == line and says in problems[0].message


# ---------------------------------------------------------------- items


def test_an_item_level_is_a_number_or_an_id_of_the_files_scheme():
    for written, number in (("1", 1), ("biet", 1), ("hieu", 2), ("3", 3), ("van-dung", 3)):
        result = parse_text(item(written), "i.yaml", levels=SCHEME_2025)
        assert result.problems == [], written
        assert result.items[0].item.level == number, written
    [source] = parse_text(item("thong-hieu"), "i.yaml").items  # no scheme given: the legacy one
    assert source.item.level == 2


def test_an_id_of_another_scheme_is_a_level_range_problem_at_its_line():
    result = parse_text(item("van-dung-cao"), "i.yaml", levels=SCHEME_2025)
    assert result.items == []
    assert [str(p) for p in result.problems] == [
        "i.yaml:6: level 'van-dung-cao' is not a level of this bank (bank.yaml says levels: 2025):"
        " use 1 or biet (Biết), 2 or hieu (Hiểu), 3 or van-dung (Vận dụng)"
    ]
    assert result.problems[0].code == "level-range"
    [problem] = parse_text(item("hieu"), "i.yaml").problems
    assert (problem.code, problem.line) == ("level-range", 6)
    assert "(bank.yaml has no levels:, so the legacy four): use 1 or nhan-biet (Nhận biết)" in problem.message


def test_a_level_that_is_no_level_at_all_is_the_wrong_type():
    [problem] = parse_text(item("abc"), "i.yaml", levels=SCHEME_2025).problems
    assert (problem.code, problem.line) == ("wrong-type", 6)
    assert (
        problem.message == "level: must be a whole number from 1 to 3 or a level id (biet, hieu, van-dung), not 'abc'"
    )
    [problem] = parse_text(item("[1]"), "i.yaml").problems
    assert problem.message == "level: must be a whole number from 1 to 4, not a list"


def release(root, levels: str, level: str):
    (root / "items").mkdir(parents=True)
    (root / "media").mkdir()
    (root / "bank.yaml").write_text(BANK + levels + "\n")
    (root / "items" / "i.yaml").write_text(item(level))
    return root


def test_a_release_checks_levels_against_its_own_scheme(tmp_path):
    assert validate_path(release(tmp_path / "a", "levels: 2025", "3")) == []
    assert validate_path(release(tmp_path / "b", "", "4")) == []
    problems = validate_path(release(tmp_path / "c", "levels: 2025", "4"))
    assert [(p.code, p.line) for p in problems] == [("level-range", 6)]
    assert problems[0].message == (
        "level 4 is outside 1-3 (bank.yaml says levels: 2025):"
        " use 1 (Biết / recall), 2 (Hiểu / comprehension), 3 (Vận dụng / application)"
    )
    problems = validate_path(release(tmp_path / "d", "levels: [de, kho]", "3"))
    assert "level 3 is outside 1-2 (bank.yaml says levels: [de, kho]): use 1 (de), 2 (kho)" == problems[0].message


def test_an_item_file_is_read_with_the_scheme_of_the_release_it_sits_in(tmp_path):
    folder = release(tmp_path / "r", "levels: 2025", "hieu")
    assert validate_path(folder / "items" / "i.yaml") == []
    assert validate_path(folder / "items") == []
    # The same file outside any release: the legacy scheme, which has no hieu.
    (tmp_path / "loose.yaml").write_text(item("hieu"))
    assert [p.code for p in validate_path(tmp_path / "loose.yaml")] == ["level-range"]


def test_a_broken_bank_yaml_is_reported_and_items_read_with_the_legacy_levels(tmp_path):
    problems = validate_path(release(tmp_path / "r", "levels: 2024", "hieu"))
    found = {(p.file.rsplit("/", 1)[-1], p.code) for p in problems}
    assert {("bank.yaml", "bad-levels"), ("i.yaml", "level-range")} <= found
