"""Item sets (passages) as testlets: per-set statistics and testlet alpha,
against arithmetic done by hand, against simulated passage dependence, and
the sets argument of analyze_matrix."""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest

from cbt.analysis import AnalysisInputError, analyze_matrix, ctt, testlets

NAN = float("nan")

# -- a matrix small enough to do by hand -----------------------------------------------------
#
# Five items: a and c form passage A (1 point each), b (1 point) and e
# (2 points) passage B, d stands alone. The children are not adjacent.
#
#          a  b  c  d  e    A = a+c   B = b+e   d   total
SMALL = [
    [1, 1, 1, 1, 2],  #     2         3        1     6
    [1, 0, 0, 1, 1],  #     1         1        1     3
    [0, 1, 0, 0, 2],  #     0         3        0     3
    [1, 1, 1, 1, 1],  #     2         2        1     5
    [0, 0, 1, 0, 0],  #     1         0        0     1
    [0, 0, 0, 1, 0],  #     0         0        1     1
]
SMALL_SETS = ["A", "B", "A", None, "B"]
SMALL_POINTS = [1, 1, 1, 1, 2]


def close(a, b, tol=1e-12):
    return a is not None and b is not None and math.isclose(a, float(b), rel_tol=tol, abs_tol=tol)


def test_small_matrix_by_hand():
    report = analyze_matrix(
        np.array(SMALL, float), max_points=SMALL_POINTS, item_ids=["a", "b", "c", "d", "e"], sets=SMALL_SETS
    )
    set_a, set_b = report["sets"]
    assert set_a["id"] == "A" and set_a["items"] == ["a", "c"]
    assert set_b["id"] == "B" and set_b["items"] == ["b", "e"]
    assert (set_a["children"], set_a["max_points"], set_b["children"], set_b["max_points"]) == (2, 2.0, 2, 3.0)
    assert set_a["n"] == set_b["n"] == 6 and set_a["n_partial"] == set_b["n_partial"] == 0

    # Set A: scores 2, 1, 0, 2, 1, 0; mean 6/6 = 1; p = 1/2.
    # Deviations 1, 0, -1, 1, 0, -1; squares sum to 4; variance 4/5.
    assert close(set_a["mean"], 1) and close(set_a["p"], F(1, 2))
    assert close(set_a["sd"], math.sqrt(4 / 5))
    # Rest = total - A = 4, 2, 3, 3, 0, 1; mean 13/6.
    # Rest deviations 11/6, -1/6, 5/6, 5/6, -13/6, -7/6.
    # Cross products with A's: 11/6 + 0 - 5/6 + 5/6 + 0 + 7/6 = 3.
    # Squared rest deviations: (121 + 1 + 25 + 25 + 169 + 49) / 36 = 65/6.
    assert close(set_a["r_rest"], 3 / math.sqrt(4 * 65 / 6))
    # Inner alpha: a = 1,1,0,1,0,0 and c = 1,0,0,1,1,0 each have variance
    # (6 * 1/4) / 5 = 3/10; alpha = 2/1 * (1 - (3/10 + 3/10) / (4/5)) = 1/2.
    assert close(set_a["alpha"], F(1, 2))

    # Set B: scores 3, 1, 3, 2, 0, 0; mean 9/6 = 3/2; p = (3/2) / 3 = 1/2.
    # Deviations 3/2, -1/2, 3/2, 1/2, -3/2, -3/2; squares (9+1+9+1+9+9)/4 = 19/2; variance 19/10.
    assert close(set_b["mean"], F(3, 2)) and close(set_b["p"], F(1, 2))
    assert close(set_b["sd"], math.sqrt(19 / 10))
    # Rest = total - B = 3, 2, 0, 3, 1, 1; mean 10/6 = 5/3.
    # Rest deviations 4/3, 1/3, -5/3, 4/3, -2/3, -2/3.
    # Cross products: 2 - 1/6 - 5/2 + 2/3 + 1 + 1 = 2.
    # Squared rest deviations: (16 + 1 + 25 + 16 + 4 + 4) / 9 = 22/3.
    assert close(set_b["r_rest"], 2 / math.sqrt(19 / 2 * 22 / 3))
    # Inner alpha: b = 1,0,1,1,0,0 variance 3/10; e = 2,1,2,1,0,0 mean 1,
    # squares 1+0+1+0+1+1 = 4, variance 4/5; alpha = 2 * (1 - (3/10 + 4/5) / (19/10)) = 16/19.
    assert close(set_b["alpha"], F(16, 19))

    # Units A, B, d. d = 1,1,0,1,0,1: mean 2/3, squares 4 * 1/9 + 2 * 4/9 = 4/3, variance 4/15.
    # Total 6,3,3,5,1,1: mean 19/6, deviations 17/6, -1/6, -1/6, 11/6, -13/6, -13/6,
    # squares (289 + 1 + 1 + 121 + 169 + 169) / 36 = 125/6, variance 25/6.
    # Testlet alpha = 3/2 * (1 - (4/5 + 19/10 + 4/15) / (25/6)) = 3/2 * (1 - 89/125) = 54/125.
    test = report["test"]
    assert close(test["testlet_alpha"], F(54, 125))
    assert test["testlet_units"] == 3
    # Items' alpha: variances 3/10, 3/10, 3/10, 4/15, 4/5 sum to 59/30;
    # 5/4 * (1 - (59/30) / (25/6)) = 5/4 * 66/125 = 33/50: the passages inflate it.
    assert close(test["alpha"], F(33, 50))
    assert close(test["testlet_sem"], math.sqrt(25 / 6) * math.sqrt(1 - 54 / 125))
    assert "not independent" in test["testlet_note"]


def test_small_matrix_pure_functions_agree_with_the_report():
    s = np.array(SMALL, float)
    sets = np.array([0, 1, 0, testlets.STANDALONE, 1])
    sums = testlets.set_scores(s, sets)
    assert sums[:, 0].tolist() == [2, 1, 0, 2, 1, 0]
    assert sums[:, 1].tolist() == [3, 1, 3, 2, 0, 0]
    assert testlets.set_max_points(SMALL_POINTS, sets).tolist() == [2, 3]
    units = testlets.testlet_units(s, sets)
    assert units[:, 2].tolist() == [1, 1, 0, 1, 0, 1]  # d, after the sets
    rel = testlets.testlet_reliability(s, sets)
    assert (rel.n, rel.units) == (6, 3) and close(rel.alpha, F(54, 125))
    stats = testlets.set_statistics(s, SMALL_POINTS, sets)
    assert close(stats.r_rest[1], 2 / math.sqrt(19 / 2 * 22 / 3))


# -- simulated passages ----------------------------------------------------------------------


def simulate(seed, passage_sd, n=2000, n_sets=6, per_set=4, standalone=0):
    """Right/wrong scores from a Rasch-like model where each child of a set
    also carries a person x set effect: theta_i + gamma_is (Bradlow, Wainer &
    Wang 1999). passage_sd = 0 gives locally independent items."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    sets = np.concatenate([np.repeat(np.arange(n_sets), per_set), np.full(standalone, testlets.STANDALONE)])
    b = rng.normal(size=sets.size)
    # The last column is 0: what STANDALONE (-1) picks.
    gamma = np.hstack([rng.normal(scale=passage_sd, size=(n, n_sets)), np.zeros((n, 1))])
    eta = theta[:, None] + gamma[:, sets]
    p = 1 / (1 + np.exp(-(1.2 * eta - b[None, :])))
    return (rng.random(p.shape) < p).astype(float), sets


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_passage_dependence_inflates_the_items_alpha(seed):
    s, sets = simulate(seed, passage_sd=1.0)
    items = ctt.reliability(s).alpha
    units = testlets.testlet_reliability(s, sets).alpha
    # Over seeds 1 to 20 the gap was 0.093 to 0.112.
    assert items - units > 0.05
    # Without the passage effect the two agree (gap within +-0.004 over the same seeds).
    s0, _ = simulate(seed, passage_sd=0.0)
    gap0 = ctt.reliability(s0).alpha - testlets.testlet_reliability(s0, sets).alpha
    assert abs(gap0) < 0.015
    assert items - units > gap0 + 0.05


def test_set_scores_sum_their_children_within_bounds():
    s, sets = simulate(4, passage_sd=0.7, n=300, n_sets=3, per_set=3, standalone=4)
    s[:, 0] *= 2  # a 2-point child
    mp = np.ones(sets.size)
    mp[0] = 2
    sums = testlets.set_scores(s, sets)
    smax = testlets.set_max_points(mp, sets)
    for j in range(3):
        children = [c for c in range(sets.size) if sets[c] == j]
        for i in range(0, 300, 7):
            assert sums[i, j] == sum(s[i, c] for c in children)
        assert smax[j] == sum(mp[c] for c in children)
    assert (sums >= 0).all() and (sums <= smax[None, :]).all()
    # Units add up to the total.
    assert np.array_equal(testlets.testlet_units(s, sets).sum(axis=1), s.sum(axis=1))


def test_a_set_not_presented_or_cut_short_has_no_set_score():
    s, sets = simulate(5, passage_sd=0.5, n=400, n_sets=2, per_set=3, standalone=2)
    mp = np.ones(sets.size)
    before = testlets.set_statistics(s, mp, sets)
    rel_before = testlets.testlet_reliability(s, sets)
    # 30 more examinees: set 1 not on their form; 20 of them also stopped
    # after the first child of set 0 (not reached).
    extra, _ = simulate(6, passage_sd=0.5, n=30, n_sets=2, per_set=3, standalone=2)
    extra[:, sets == 1] = NAN
    extra[:20, [1, 2]] = NAN
    both = np.vstack([s, extra])
    sums = testlets.set_scores(both, sets)
    assert np.isnan(sums[400:, 1]).all()
    assert np.isnan(sums[400:420, 0]).all() and not np.isnan(sums[420:, 0]).any()
    after = testlets.set_statistics(both, mp, sets)
    assert after.n.tolist() == [410, 400]
    assert after.n_partial.tolist() == [20, 0]  # nobody saw only part of set 1
    # Set 1's statistics use only the examinees who sat it: unchanged.
    for field in ("mean", "p", "sd", "r_rest", "alpha"):
        assert close(getattr(after, field)[1], getattr(before, field)[1], 1e-9), field
    # Reliability is listwise, as ctt's: the incomplete rows drop out of both alphas.
    rel_after = testlets.testlet_reliability(both, sets)
    assert rel_after.n == ctt.reliability(both).n == 400
    assert close(rel_after.alpha, rel_before.alpha, 1e-9)

    report = analyze_matrix(both, max_points=mp, sets=[f"P{x}" if x >= 0 else None for x in sets], omit="missing")
    assert [(r["id"], r["n"], r["n_partial"]) for r in report["sets"]] == [("P0", 410, 20), ("P1", 400, 0)]


def test_nobody_sat_a_set():
    s, sets = simulate(7, passage_sd=0.5, n=50, n_sets=2, per_set=2, standalone=2)
    s[:, sets == 1] = NAN
    report = analyze_matrix(s, max_points=np.ones(sets.size), sets=[int(x) if x >= 0 else None for x in sets])
    gone = report["sets"][1]
    assert gone["n"] == 0 and gone["mean"] is None and gone["p"] is None and gone["r_rest"] is None
    assert gone["alpha"] is None
    # No complete rows: both alphas are undefined, not 0.
    assert report["test"]["alpha"] is None and report["test"]["testlet_alpha"] is None


def test_a_set_of_one_child_is_that_item():
    s, sets = simulate(8, passage_sd=0.5, n=200, n_sets=2, per_set=3, standalone=3)
    ids = [f"q{j}" for j in range(sets.size)]
    one = [None] * sets.size
    one[7] = "lone"
    report = analyze_matrix(s, item_ids=ids, sets=one)
    (lone,) = report["sets"]
    item = report["items"][7]
    assert lone["items"] == ["q7"] and lone["alpha"] is None
    assert close(lone["p"], item["p"]) and close(lone["sd"], item["sd"]) and close(lone["r_rest"], item["r_pb"])
    assert close(report["test"]["testlet_alpha"], report["test"]["alpha"])


def test_only_standalone_items():
    s, _ = simulate(9, passage_sd=0.0, n=100, n_sets=0, per_set=0, standalone=6)
    report = analyze_matrix(s, sets=[None] * 6)
    assert report["sets"] == []
    assert report["test"]["testlet_units"] == 6
    assert close(report["test"]["testlet_alpha"], report["test"]["alpha"])


def test_no_sets_argument_leaves_the_report_as_it_was():
    report = analyze_matrix(np.array(SMALL, float))
    assert "sets" not in report
    assert not any(key.startswith("testlet") for key in report["test"])


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sets", "says"),
    [
        ("AABBC", "must be a list"),
        (5, "must be a list"),
        ({"A": 1}, "must be a list"),
        (["A", "A", None], "3 entries for 5 items"),
        (np.array([["A"], ["A"], ["B"], ["B"], [None]], dtype=object), r"shape \(5, 1\)"),
        (["A", "A", 1.5, None, None], "item 3: set id 1.5"),
        (["A", "A", float("nan"), None, None], "item 3: set id nan"),
        (["A", True, None, None, None], "item 2: set id True"),
        (["A", "A", " ", None, None], "item 3: empty set id; use None"),
        ([1, 1, "1", None, None], "spell each set one way"),
        # testlets' index arrays mark standalone items -1; here that would be a set.
        (np.array([0, 1, 0, -1, 1]), "item 4: set id -1 .* None for an item in no set"),
    ],
)
def test_bad_sets_argument(sets, says):
    with pytest.raises(AnalysisInputError, match=says) as e:
        analyze_matrix(np.array(SMALL, float), sets=sets)
    assert e.value.code == "bad_sets"


def test_set_ids_may_be_whole_numbers_of_any_integer_type():
    report = analyze_matrix(np.array(SMALL, float), sets=[np.int64(7), 3, np.int32(7), None, 3])
    assert [(r["id"], r["items"]) for r in report["sets"]] == [("7", ["1", "3"]), ("3", ["2", "5"])]
    objects = analyze_matrix(np.array(SMALL, float), sets=np.array([0, 1, 0, None, 1], dtype=object))
    assert [r["id"] for r in objects["sets"]] == ["0", "1"]


def test_other_input_errors_keep_a_code():
    with pytest.raises(AnalysisInputError) as e:
        analyze_matrix(np.array(SMALL, float), item_ids=["a"])
    assert e.value.code == "analysis_input"


@pytest.mark.parametrize(
    ("sets", "says"),
    [
        ([0, 0, 1], "5 entries"),
        ([0, 0, 1, 1, 0.5], "whole numbers"),
        ([0, 0, 2, 2, -1], "set index 1 has no item"),
        ([0, 0, -2, 1, 1], "set index -2"),
    ],
)
def test_set_index_arrays_are_checked(sets, says):
    with pytest.raises(ValueError, match=says):
        testlets.set_scores(np.array(SMALL, float), np.array(sets))
