"""Shuffling options around fixed ones: invariants, uniformity, refusals."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from itembank.demo import demo_2025
from itembank.shuffle import keep_fixed, shuffle_keeping_fixed


@st.composite
def masks_and_orders(draw: st.DrawFn) -> tuple[list[bool], list[int]]:
    fixed = draw(st.lists(st.booleans(), max_size=9))
    free = fixed.count(False)
    return fixed, draw(st.permutations(range(free)))


@given(drawn=masks_and_orders())
def test_fixed_options_stay_and_free_ones_take_the_order_given(drawn):
    fixed, free_order = drawn
    order = keep_fixed(fixed, free_order)
    assert sorted(order.tolist()) == list(range(len(fixed)))
    free = [i for i, f in enumerate(fixed) if not f]
    for position, stays in enumerate(fixed):
        if stays:
            assert order[position] == position
    assert [order[i] for i in free] == [free[j] for j in free_order]


@given(fixed=st.lists(st.booleans(), max_size=9), seed=st.integers(0, 2**32))
def test_a_random_shuffle_keeps_the_fixed_in_place(fixed, seed):
    order = shuffle_keeping_fixed(np.array(fixed, dtype=bool), np.random.default_rng(seed))
    assert order.dtype.kind == "i" and order.shape == (len(fixed),)
    assert sorted(order.tolist()) == list(range(len(fixed)))
    assert all(order[i] == i for i, f in enumerate(fixed) if f)


def test_every_order_of_the_free_options_is_equally_likely():
    # Four options, the last fixed ("Tất cả các ý trên"): 6 orders of A-C.
    rng = np.random.default_rng(20250101)
    draws = 60_000
    counts = Counter(tuple(shuffle_keeping_fixed([False, False, False, True], rng).tolist()) for _ in range(draws))
    assert set(counts) == {(*p, 3) for p in itertools.permutations(range(3))}
    expected = draws / 6
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi_square < 20.5  # the 0.999 quantile of chi-square with 5 degrees of freedom


def test_nothing_fixed_and_everything_fixed():
    rng = np.random.default_rng(1)
    assert keep_fixed([True] * 4, []).tolist() == [0, 1, 2, 3]
    assert keep_fixed([], []).tolist() == []
    seen = {tuple(shuffle_keeping_fixed([False] * 3, rng).tolist()) for _ in range(200)}
    assert len(seen) == 6


@pytest.mark.parametrize(
    ("fixed", "free_order", "says"),
    [
        ([False, True, False], [0], "one entry per free option (2)"),
        ([False, True, False], [0, 0], "a permutation of 0..1"),
        ([False, False], [1, 2], "a permutation of 0..1"),
    ],
)
def test_a_free_order_that_is_not_a_permutation_is_refused(fixed, free_order, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        keep_fixed(fixed, free_order)


def test_the_demo_fixed_option_stays_last():
    item = next(i for i in demo_2025().items if any(o.fixed for o in i.options))
    assert [o.fixed for o in item.options] == [False, False, False, True]
    assert item.options[-1].text.startswith("Tất cả các ý trên")
    rng = np.random.default_rng(7)
    for _ in range(50):
        order = shuffle_keeping_fixed([o.fixed for o in item.options], rng)
        shown = [item.options[i] for i in order]
        assert shown[-1] is item.options[-1]
