"""Short answers (Vietnamese Part III and others): normalising and matching."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from itembank.answers import check_short_answer, normalise_short_answer, short_key_problem
from itembank.model import ShortFormat, ShortKey

VN = ShortKey("-1,5")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("-1,5", "-1,5"), (" -1.5 ", "-1,5"), ("7 5", "75"), ("0,25", "0,25"), ("1234", "1234")],
)
def test_part_three_normalisation(answer, expected):
    assert normalise_short_answer(answer) == expected


@pytest.mark.parametrize("answer", ["12345", "-0,25", "1,2,3", "--1", "1-", ",5", "5,", "a", ""])
def test_part_three_refuses_what_the_answer_sheet_cannot_hold(answer):
    assert normalise_short_answer(answer) is None


def test_part_three_matching_is_exact_after_normalising():
    assert check_short_answer("-1.5", VN)
    assert check_short_answer(" -1,5", VN)
    assert not check_short_answer("-1,50", VN)  # as on the national answer sheet
    assert not check_short_answer("1,5", VN)
    assert not check_short_answer("", VN)


def test_tolerance_accepts_nearby_values():
    key = ShortKey("2,5", tolerance=Decimal("0.1"))
    assert check_short_answer("2,5", key)
    assert check_short_answer("2.6", key)
    assert check_short_answer("2,40", key)
    assert not check_short_answer("2,7", key)
    assert not check_short_answer("2,45678", key)  # still must fit the answer sheet


def test_number_format_compares_values():
    key = ShortKey("75", ShortFormat.NUMBER)
    for answer in ("75", "075", "75,0", "75.00", " 7 5 "):
        assert check_short_answer(answer, key), answer
    assert not check_short_answer("7.5", key)
    assert normalise_short_answer("-0.0", ShortFormat.NUMBER) == "0"
    assert normalise_short_answer("1e5", ShortFormat.NUMBER) is None


def test_text_format_ignores_case_and_spacing():
    key = ShortKey("Hà  Nội", ShortFormat.TEXT)
    assert check_short_answer(" hà nội ", key)
    assert check_short_answer("HÀ NỘI", key)
    assert not check_short_answer("Ha Noi", key)


def test_key_problems():
    assert short_key_problem(ShortKey("-1,5")) is None
    assert "does not fit Part III" in short_key_problem(ShortKey("12345"))
    assert "not a number" in short_key_problem(ShortKey("abc", ShortFormat.NUMBER))
    assert "only makes sense" in short_key_problem(ShortKey("x", ShortFormat.TEXT, Decimal("1")))
    assert "negative" in short_key_problem(ShortKey("1", tolerance=Decimal("-1")))
    assert "empty" in short_key_problem(ShortKey("  ", ShortFormat.TEXT))


@given(st.from_regex(r"-?[0-9]{1,3}", fullmatch=True))
def test_every_valid_key_matches_itself_written_with_a_point_or_spaces(key):
    assert check_short_answer(f" {key.replace(',', '.')} ", ShortKey(key))
