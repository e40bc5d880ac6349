"""Scoring with exact decimals: worked examples from the Vietnamese national exam (DOMAIN.md §2)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cbt.scoring import (
    DEFAULT_RULES,
    AttemptScore,
    ScoringRules,
    SectionScore,
    round_half_up,
    score_attempt,
    score_item,
)
from itembank.model import Item, ItemType, Option, ShortFormat, ShortKey, Statement, Status

D = Decimal
QUARTER, HALF, ONE = D("0.25"), D("0.5"), D("1")


def make_item(item_type: ItemType, item_id: str = "M12-001", **fields) -> Item:
    return Item(
        id=item_id,
        version=1,
        type=item_type,
        subject="toan",
        topic="ham-so",
        level=2,
        points=QUARTER,
        lang="vi",
        status=Status.APPROVED,
        stem="Cho hàm số $y = x^3 - 3x$.",
        **fields,
    )


def single(key: str = "B", item_id: str = "S1") -> Item:
    return make_item(ItemType.SINGLE, item_id, options=tuple(Option(o, f"đáp án {o}", o == key) for o in "ABCD"))


def multiple(keys: str = "AC", item_id: str = "M1") -> Item:
    return make_item(ItemType.MULTIPLE, item_id, options=tuple(Option(o, f"ý {o}", o in keys) for o in "ABCDE"))


# Statements a) true, b) false, c) true, d) false.
TRUTH = {"a": True, "b": False, "c": True, "d": False}


def truefalse4(item_id: str = "T1") -> Item:
    return make_item(
        ItemType.TRUEFALSE4, item_id, statements=tuple(Statement(s, f"mệnh đề {s}", v) for s, v in TRUTH.items())
    )


def short(key: str = "-1,5", fmt: ShortFormat = ShortFormat.VN_NUMERIC, item_id: str = "R1") -> Item:
    return make_item(ItemType.SHORT, item_id, answer=ShortKey(key, fmt))


def essay(item_id: str = "E1") -> Item:
    return make_item(ItemType.ESSAY, item_id)


def judged_right(k: int) -> dict[str, bool]:
    """A Part II answer with exactly the first k statements judged right."""
    return {s: (v if n < k else not v) for n, (s, v) in enumerate(TRUTH.items())}


# --------------------------------------------------------------------------
# Part I: single choice, 0.25 each


def test_part_one_single_choice_scores_a_quarter():
    item = single("B")
    assert score_item(item, "B", QUARTER, DEFAULT_RULES) == D("0.25")
    assert score_item(item, "A", QUARTER, DEFAULT_RULES) == 0
    assert score_item(item, None, QUARTER, DEFAULT_RULES) == 0
    assert score_item(item, "", QUARTER, DEFAULT_RULES) == 0


def test_negative_marking_takes_a_fraction_off_wrong_answers_only():
    rules = ScoringRules(single_penalty=D("0.25"))
    item = single("B")
    assert score_item(item, "B", ONE, rules) == ONE
    assert score_item(item, "C", ONE, rules) == D("-0.25")
    assert score_item(item, "C", QUARTER, rules) == D("-0.0625")
    assert score_item(item, "Z", ONE, rules) == D("-0.25")  # not an option: still a wrong answer
    assert score_item(item, None, ONE, rules) == 0  # omitted: no penalty
    assert score_item(item, "", ONE, rules) == 0


def test_negative_marking_never_takes_a_section_below_zero():
    rules = ScoringRules(single_penalty=D("0.25"))
    sections = [
        [("q1", single("A", "S1"), ONE), ("q2", single("A", "S2"), ONE), ("q3", single("A", "S3"), ONE)],
        [("q4", single("A", "S4"), ONE), ("q5", single("A", "S5"), ONE)],
    ]
    responses = {"q1": "B", "q2": "C", "q3": None, "q4": "A", "q5": "D"}
    result = score_attempt(sections, responses, rules)
    assert result.items == {"q1": D("-0.25"), "q2": D("-0.25"), "q3": 0, "q4": 1, "q5": D("-0.25")}
    assert result.sections == (SectionScore(D(0), D(3)), SectionScore(D("0.75"), D(2)))
    assert result.total == D("0.75")  # section 1's -0.5 does not eat section 2's 0.75
    assert result.max_total == D(5)


# --------------------------------------------------------------------------
# Part II: four true/false statements, the national table


@pytest.mark.parametrize(("right", "points"), [(0, "0"), (1, "0.1"), (2, "0.25"), (3, "0.5"), (4, "1")])
def test_part_two_table_for_a_one_point_item(right, points):
    assert score_item(truefalse4(), judged_right(right), ONE, DEFAULT_RULES) == D(points)


def test_part_two_scales_the_table_by_the_item_points():
    assert score_item(truefalse4(), judged_right(3), D(2), DEFAULT_RULES) == D("1.0")
    assert score_item(truefalse4(), judged_right(1), D("0.5"), DEFAULT_RULES) == D("0.05")


def test_part_two_unanswered_statements_are_not_right():
    item = truefalse4()
    assert score_item(item, None, ONE, DEFAULT_RULES) == 0
    assert score_item(item, {}, ONE, DEFAULT_RULES) == 0
    assert score_item(item, {"a": True}, ONE, DEFAULT_RULES) == D("0.1")
    assert score_item(item, {"a": True, "b": False, "c": None}, ONE, DEFAULT_RULES) == D("0.25")
    # Only true booleans count as a judgement.
    assert score_item(item, {"a": "true", "b": 0, "c": 1, "d": False}, ONE, DEFAULT_RULES) == D("0.1")


def test_part_two_with_an_exam_specific_table():
    rules = ScoringRules(truefalse4_table=(D(0), D(0), D("0.25"), D("0.5"), D(1)))
    assert score_item(truefalse4(), judged_right(1), ONE, rules) == 0
    assert score_item(truefalse4(), judged_right(2), ONE, rules) == D("0.25")


def test_part_two_item_without_four_statements_cannot_be_scored():
    broken = make_item(ItemType.TRUEFALSE4, statements=(Statement("a", "x", True),))
    with pytest.raises(ValueError, match="4 statements"):
        score_item(broken, {"a": True}, ONE, DEFAULT_RULES)


# --------------------------------------------------------------------------
# Part III: short answers


@pytest.mark.parametrize(
    ("answer", "points"),
    [
        ("-1,5", "0.5"),
        ("-1.5", "0.5"),  # a decimal point is the decimal comma after normalising
        (" -1.5 ", "0.5"),
        ("-1,50", "0"),  # as on the answer sheet: the digits must be the key's
        ("1,5", "0"),
        ("-1,55", "0"),  # 5 characters: not a Part III answer at all
        ("", "0"),
        (None, "0"),
    ],
)
def test_part_three_short_answer_against_minus_one_and_a_half(answer, points):
    assert score_item(short("-1,5"), answer, HALF, DEFAULT_RULES) == D(points)


def test_part_three_leading_zero_is_a_different_answer():
    # vn-numeric compares the written digits: "075" is not "75" (itembank.model.ShortFormat).
    assert score_item(short("75"), "75", HALF, DEFAULT_RULES) == HALF
    assert score_item(short("75"), "075", HALF, DEFAULT_RULES) == 0
    # An exam that wants numeric equality says format: number.
    assert score_item(short("75", ShortFormat.NUMBER), "075", HALF, DEFAULT_RULES) == HALF
    assert score_item(short("75", ShortFormat.NUMBER), "75,0", HALF, DEFAULT_RULES) == HALF


def test_short_item_without_a_key_cannot_be_scored():
    with pytest.raises(ValueError, match="without an answer key"):
        score_item(make_item(ItemType.SHORT), "1", HALF, DEFAULT_RULES)


# --------------------------------------------------------------------------
# Multiple choice with several keys


@pytest.mark.parametrize(
    ("chosen", "points"),
    [(["A", "C"], "1"), (["C", "A"], "1"), (["A"], "0"), (["A", "B", "C"], "0"), (["B"], "0"), ([], "0"), (None, "0")],
)
def test_multiple_is_all_or_nothing_by_default(chosen, points):
    assert score_item(multiple("AC"), chosen, ONE, DEFAULT_RULES) == D(points)


@pytest.mark.parametrize(
    ("chosen", "points"),
    [
        (["A", "C"], "1"),  # (2 - 0) / 2
        (["A"], "0.5"),  # (1 - 0) / 2
        (["A", "B"], "0"),  # (1 - 1) / 2
        (["A", "C", "B"], "0.5"),  # (2 - 1) / 2
        (["B", "D"], "0"),  # (0 - 2) / 2, floored at 0
        (["A", "A"], "0.5"),  # a repeated id counts once
        ([], "0"),
    ],
)
def test_multiple_partial_credit_is_right_minus_wrong_over_keys(chosen, points):
    rules = ScoringRules(multiple_partial=True)
    assert score_item(multiple("AC"), chosen, ONE, rules) == D(points)


def test_multiple_partial_thirds_are_kept_to_28_digits_and_round_when_reported():
    rules = ScoringRules(multiple_partial=True)
    third = score_item(multiple("ABC"), ["A"], ONE, rules)
    assert third == D("0.3333333333333333333333333333")
    assert round_half_up(third, 2) == D("0.33")
    assert round_half_up(score_item(multiple("ABC"), ["A", "B"], ONE, rules), 2) == D("0.67")


def test_a_multiple_answer_must_be_a_list():
    with pytest.raises(ValueError, match="list of option ids"):
        score_item(multiple("AC"), "AC", ONE, DEFAULT_RULES)


# --------------------------------------------------------------------------
# Whole papers


def math_paper() -> list[list[tuple[str, Item, Decimal]]]:
    """The 2025 Math paper: Part I 12 x 0.25, Part II 4 x 1, Part III 6 x 0.5."""
    part1 = [(f"q{n}", single("ABCD"[n % 4], f"S{n}"), QUARTER) for n in range(1, 13)]
    part2 = [(f"q{n}", truefalse4(f"T{n}"), ONE) for n in range(13, 17)]
    keys = ["75", "-1,5", "0,25", "12", "3,14", "-8"]
    part3 = [(f"q{n}", short(keys[n - 17], item_id=f"R{n}"), HALF) for n in range(17, 23)]
    return [part1, part2, part3]


def correct_responses(paper) -> dict[str, object]:
    responses: dict[str, object] = {}
    for section in paper:
        for ref, item, _ in section:
            if item.type == ItemType.SINGLE:
                responses[ref] = item.correct_option_ids[0]
            elif item.type == ItemType.TRUEFALSE4:
                responses[ref] = dict(TRUTH)
            else:
                responses[ref] = item.answer.canonical.replace(",", ".")  # typed with a point
    return responses


def test_a_perfect_math_paper_is_exactly_ten():
    paper = math_paper()
    result = score_attempt(paper, correct_responses(paper), DEFAULT_RULES)
    assert result.total == D(10) and result.max_total == D(10)
    assert [s.total for s in result.sections] == [D(3), D(4), D(3)]
    assert not result.provisional
    assert round_half_up(result.total, 2) == D("10.00")


def test_a_typical_math_paper():
    paper = math_paper()
    responses = correct_responses(paper)
    responses.update({"q1": "C", "q2": None})  # Part I: 10 of 12 -> 2.5
    for ref, right in zip(("q13", "q14", "q15", "q16"), (4, 3, 2, 1), strict=True):
        responses[ref] = judged_right(right)  # Part II: 1 + 0.5 + 0.25 + 0.1 = 1.85
    responses.update({"q17": "075", "q18": "1,5"})  # Part III: 4 of 6 -> 2
    result = score_attempt(paper, responses, DEFAULT_RULES)
    assert [s.total for s in result.sections] == [D("2.5"), D("1.85"), D(2)]
    assert result.total == D("6.35")
    assert round_half_up(result.total, 2) == D("6.35")
    assert round_half_up(result.total, 1) == D("6.4")  # half-up, where round(6.35, 1) gives 6.3
    assert result.items["q16"] == D("0.1") and result.items["q17"] == 0


def test_missing_responses_are_omitted():
    result = score_attempt(math_paper(), {}, DEFAULT_RULES)
    assert result.total == 0 and result.max_total == D(10)
    assert all(score == 0 for score in result.items.values())


def test_scores_do_not_depend_on_the_callers_decimal_context():
    paper = math_paper()
    with localcontext() as context:
        context.prec = 2
        context.rounding = ROUND_DOWN
        assert score_attempt(paper, correct_responses(paper), DEFAULT_RULES).total == D(10)
        third = score_item(multiple("ABC"), ["A"], ONE, ScoringRules(multiple_partial=True))
    assert third == D("0.3333333333333333333333333333")


def test_the_same_ref_twice_is_refused():
    with pytest.raises(ValueError, match="q1 appears twice"):
        score_attempt([[("q1", single(), ONE)], [("q1", single(), ONE)]], {}, DEFAULT_RULES)


# --------------------------------------------------------------------------
# Essays


def test_unmarked_essay_makes_the_score_provisional():
    paper = [[("q1", single("A"), ONE)], [("q2", essay(), D(2))]]
    result = score_attempt(paper, {"q1": "A", "q2": "Bài làm của em ..."}, DEFAULT_RULES)
    assert isinstance(result, AttemptScore)
    assert result.provisional
    assert result.items["q2"] is None
    assert result.total == ONE and result.max_total == D(3)
    assert score_item(essay(), "Bài làm", D(2), DEFAULT_RULES) is None

    marked = score_attempt(paper, {"q1": "A"}, DEFAULT_RULES, essay_marks={"q2": D("1.5")})
    assert not marked.provisional
    assert marked.items["q2"] == D("1.5")
    assert marked.total == D("2.5")
    assert marked.sections[1] == SectionScore(D("1.5"), D(2))


def test_essay_marks_must_fit_the_item():
    paper = [[("q1", essay(), D(2))]]
    for mark in (D("2.5"), D("-1")):
        with pytest.raises(ValueError, match="from 0 to 2"):
            score_attempt(paper, {}, DEFAULT_RULES, essay_marks={"q1": mark})


# --------------------------------------------------------------------------
# Rules and rounding


def test_rules_are_checked():
    with pytest.raises(ValueError, match="single_penalty"):
        ScoringRules(single_penalty=D(2))
    with pytest.raises(ValueError, match="single_penalty"):
        ScoringRules(single_penalty=0.25)
    with pytest.raises(ValueError, match="truefalse4_table"):
        ScoringRules(truefalse4_table=(D(0), D(1)))
    with pytest.raises(TypeError, match="Decimal"):
        score_item(single(), "B", 0.25, DEFAULT_RULES)


def test_round_half_up_where_python_rounds_down():
    assert round(8.25, 1) == 8.2  # 8.25 is exact in binary; round() goes to the even digit
    assert round_half_up(D("8.25"), 1) == D("8.3")
    assert round_half_up(D("8.35"), 1) == D("8.4")
    assert round_half_up(D("6.125"), 2) == D("6.13")
    assert round_half_up(D("6.124999"), 2) == D("6.12")
    assert round_half_up(D("-8.25"), 1) == D("-8.3")
    assert str(round_half_up(D(8), 2)) == "8.00"
    assert str(round_half_up(7, 2)) == "7.00"
    assert round_half_up(D("9.995"), 2) == D("10.00")
    assert round_half_up(D("12345678901234567890123456789.5"), 0) == D("12345678901234567890123456790")
    with pytest.raises(TypeError):
        round_half_up(8.25, 1)
    with pytest.raises(ValueError):
        round_half_up(D(1), -1)


answers = st.one_of(st.none(), st.sampled_from("ABCD"))
judgements = st.dictionaries(st.sampled_from("abcd"), st.booleans())
shorts = st.one_of(st.none(), st.sampled_from(["75", "075", "-1.5", "-1,5", "12", "", "abc"]))


@given(
    part1=st.lists(answers, min_size=12, max_size=12),
    part2=st.lists(judgements, min_size=4, max_size=4),
    part3=st.lists(shorts, min_size=6, max_size=6),
    penalty=st.sampled_from([D(0), D("0.25"), D(1)]),
)
def test_any_math_paper_scores_between_zero_and_ten(part1, part2, part3, penalty):
    paper = math_paper()
    refs = [ref for section in paper for ref, _, _ in section]
    responses = dict(zip(refs, [*part1, *part2, *part3], strict=True))
    result = score_attempt(paper, responses, ScoringRules(single_penalty=penalty))
    assert 0 <= result.total <= 10
    assert all(0 <= s.total <= s.max_total for s in result.sections)
    assert result.total == sum(s.total for s in result.sections)
    # Part II and III never lose points; only Part I's wrong answers can.
    for ref, score in result.items.items():
        assert score is not None
        if ref in refs[12:]:
            assert score >= 0
    # Every Part II score is a table entry.
    assert {result.items[ref] for ref in refs[12:16]} <= {D(0), D("0.1"), D("0.25"), D("0.5"), D(1)}
