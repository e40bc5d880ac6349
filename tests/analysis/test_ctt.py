"""Classical statistics against independent plain-loop computations, and
the edge cases where a statistic is undefined or unusual."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cbt.analysis import NOT_PRESENTED, OMITTED, analyze_matrix, ctt

DATASETS = Path(__file__).parents[1] / "data"
NAN = float("nan")


# -- independent reference computations (plain Python, other formulas) ---------------------


def mean(xs):
    return sum(xs) / len(xs)


def var(xs):
    m = mean(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def pearson(xs, ys):
    mx, my = mean(xs), mean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return NAN
    return sxy / math.sqrt(sxx * syy)


def rows_of(s):
    return [[None if math.isnan(v) else float(v) for v in row] for row in np.asarray(s)]


def ref_item(rows, j, mp):
    """p, sd, r with rest, r with total for item j, over rows with a score."""
    xs, tot = [], []
    for row in rows:
        if row[j] is None:
            continue
        xs.append(row[j])
        tot.append(sum(v for v in row if v is not None))
    rest = [t - x for t, x in zip(tot, xs, strict=True)]
    sd = math.sqrt(var(xs)) if len(xs) > 1 else NAN
    return mean(xs) / mp, sd, pearson(xs, rest), pearson(xs, tot)


def ref_alpha(rows):
    full = [r for r in rows if all(v is not None for v in r)]
    k = len(full[0])
    if k < 2 or len(full) < 2:
        return NAN
    item_vars = [var([r[j] for r in full]) for j in range(k)]
    tv = var([sum(r) for r in full])
    if tv == 0:
        return NAN
    return k / (k - 1) * (1 - sum(item_vars) / tv)


def ref_kr20(rows):
    """KR-20 in its textbook form: p q and a population variance."""
    k, n = len(rows[0]), len(rows)
    ps = [sum(r[j] for r in rows) / n for j in range(k)]
    tot = [sum(r) for r in rows]
    m = mean(tot)
    vpop = sum((t - m) ** 2 for t in tot) / n
    return k / (k - 1) * (1 - sum(p * (1 - p) for p in ps) / vpop)


def ref_kr21(rows):
    k, n = len(rows[0]), len(rows)
    tot = [sum(r) for r in rows]
    m = mean(tot)
    vpop = sum((t - m) ** 2 for t in tot) / n
    return k / (k - 1) * (1 - m * (k - m) / (k * vpop))


def ref_upper_lower(rows, j, mp, fraction=0.27):
    """Fill the groups one tied block at a time, highest totals first."""
    tot = [sum(v for v in r if v is not None) for r in rows]
    cap = fraction * len(rows)

    def group(order):
        weights = [0.0] * len(rows)
        left = cap
        values = sorted(set(tot), reverse=order)
        for v in values:
            members = [i for i, t in enumerate(tot) if t == v]
            take = min(1.0, left / len(members))
            for i in members:
                weights[i] = take
            left -= take * len(members)
            if left <= 1e-12:
                break
        return weights

    def p(weights):
        num = sum(w * rows[i][j] for i, w in enumerate(weights) if rows[i][j] is not None)
        den = sum(w for i, w in enumerate(weights) if rows[i][j] is not None)
        return num / den / mp

    return p(group(True)) - p(group(False))


def inv_norm(p):
    lo, hi = -10.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def ref_skew_kurt(xs):
    n = len(xs)
    m, s = mean(xs), math.sqrt(var(xs))
    z = [(x - m) / s for x in xs]
    g1 = n / ((n - 1) * (n - 2)) * sum(v**3 for v in z)
    g2 = n * (n + 1) / ((n - 1) * (n - 2) * (n - 3)) * sum(v**4 for v in z) - 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))
    return g1, g2


def close(a, b, tol=1e-9):
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or math.isnan(b)
    return b is not None and not math.isnan(b) and abs(a - b) <= tol * max(1.0, abs(b))


# -- random data -------------------------------------------------------------------------------


def random_scores(rng, n, k, missing=0.0):
    ability = rng.normal(size=n)
    diff = rng.normal(size=k)
    s = (rng.random((n, k)) < 1 / (1 + np.exp(-(ability[:, None] - diff)))).astype(float)
    if missing:
        s[rng.random((n, k)) < missing] = np.nan
    return s


@pytest.mark.parametrize("missing", [0.0, 0.15])
def test_item_statistics_match_loops(missing):
    rng = np.random.default_rng(11)
    s = random_scores(rng, 150, 7, missing)
    mp = np.ones(7)
    stats = ctt.item_statistics(s, mp)
    rows = rows_of(s)
    for j in range(7):
        p, sd, r_rest, r_tot = ref_item(rows, j, 1.0)
        assert close(stats.p[j], p)
        assert close(stats.sd[j], sd)
        assert close(stats.r_pb_rest[j], r_rest)
        assert close(stats.r_pb_total[j], r_tot)
        expected_bis = r_rest * math.sqrt(p * (1 - p)) / (math.exp(-(inv_norm(p) ** 2) / 2) / math.sqrt(2 * math.pi))
        assert close(stats.r_bis[j], expected_bis, 1e-7)
        assert close(ctt.upper_lower_index(s, mp)[j], ref_upper_lower(rows, j, 1.0))


def test_reliability_matches_loops():
    rng = np.random.default_rng(5)
    s = random_scores(rng, 200, 8)
    rows = rows_of(s)
    rel = ctt.reliability(s)
    assert rel.n == 200
    assert close(rel.alpha, ref_alpha(rows))
    # Alpha equals KR-20 exactly when both use the same denominators.
    assert close(rel.kr20, ref_kr20(rows))
    assert close(rel.alpha, ref_kr20(rows))
    assert close(rel.kr21, ref_kr21(rows))
    assert rel.kr21 <= rel.kr20
    for j in range(8):
        without = [r[:j] + r[j + 1 :] for r in rows]
        assert close(rel.alpha_if_deleted[j], ref_alpha(without))


def test_reliability_is_listwise_with_missing():
    rng = np.random.default_rng(6)
    s = random_scores(rng, 120, 5, missing=0.05)
    rows = rows_of(s)
    rel = ctt.reliability(s)
    complete = [r for r in rows if None not in r]
    assert rel.n == len(complete) < 120
    assert close(rel.alpha, ref_alpha(complete))


def test_total_summary_matches_loops():
    rng = np.random.default_rng(7)
    totals = rng.integers(0, 40, 333).astype(float)
    xs = list(totals)
    summary = ctt.describe_totals(totals)
    g1, g2 = ref_skew_kurt(xs)
    assert summary.n == 333
    assert close(summary.mean, mean(xs))
    assert close(summary.sd, math.sqrt(var(xs)))
    assert summary.median == sorted(xs)[166]
    assert (summary.min, summary.max) == (min(xs), max(xs))
    assert close(summary.skewness, g1)
    assert close(summary.kurtosis, g2)


def test_score_histogram_counts_every_total_once():
    totals = np.array([0, 1, 1, 3, 3, 3, np.nan, 0.1 + 0.2, 0.3])
    low, high, counts = ctt.score_histogram(totals)
    assert list(low) == list(high) == [0, 0.3, 1, 3]
    assert list(counts) == [1, 2, 2, 3]  # 0.1 + 0.2 and 0.3 are one score
    wide = np.linspace(0, 100, 1000)
    low, high, counts = ctt.score_histogram(wide)
    assert counts.sum() == 1000 and len(counts) == 50 and np.all(high > low)


def test_distractors_match_loops():
    rng = np.random.default_rng(9)
    n, k, m = 300, 6, 4
    ability = rng.normal(size=n)
    choices = np.where(
        rng.random((n, k)) < 1 / (1 + np.exp(-ability[:, None])),
        0,
        rng.integers(1, m, (n, k)),
    ).astype(np.int8)
    choices[rng.random((n, k)) < 0.05] = OMITTED
    choices[rng.random((n, k)) < 0.05] = NOT_PRESENTED
    key = np.array([0, 0, 1, 0, 2, 0])
    points = np.array([1, 2, 1, 1, 0.5, 1.0])
    s = ctt.score_choices(choices, key, points)
    totals = ctt.total_scores(s)
    dist = ctt.distractor_analysis(choices, key, m, totals, points)
    for j in range(k):
        presented = [i for i in range(n) if choices[i, j] != NOT_PRESENTED]
        rest = {i: totals[i] - (0 if math.isnan(s[i, j]) else s[i, j]) for i in presented}
        assert dist.presented[j] == len(presented)
        assert dist.omitted[j] == sum(choices[i, j] == OMITTED for i in presented)
        for o in range(m):
            chose = [i for i in presented if choices[i, j] == o]
            assert dist.count[j, o] == len(chose)
            assert close(dist.proportion[j, o], len(chose) / len(presented))
            assert close(dist.mean_total[j, o], mean([totals[i] for i in chose]))
            ind = [1.0 if choices[i, j] == o else 0.0 for i in presented]
            assert close(dist.r_pb_rest[j, o], pearson(ind, [rest[i] for i in presented]))
    # With omits scored wrong, "chose the key" is the item score: same r.
    stats = ctt.item_statistics(s, points, totals)
    no_missing = [j for j in range(k)]
    for j in no_missing:
        if points[j] > 0:
            assert close(dist.r_pb_rest[j, key[j]], stats.r_pb_rest[j], 1e-7)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_alpha_property_against_loops(n, k, seed):
    s = np.random.default_rng(seed).integers(0, 3, (n, k)).astype(float)
    ours = ctt.cronbach_alpha(s)
    assert close(ours, ref_alpha(rows_of(s)), 1e-7)


# -- edge cases ------------------------------------------------------------------------------


def test_zero_variance_item_gives_null_not_zero():
    rng = np.random.default_rng(1)
    s = random_scores(rng, 50, 4)
    s[:, 2] = 1.0
    report = analyze_matrix(s)
    item = report["items"][2]
    assert item["p"] == 1.0
    assert item["sd"] == 0.0
    assert item["r_pb"] is None and item["r_pb_total"] is None and item["r_bis"] is None
    assert item["flags"] == ["too_easy"]
    assert report["test"]["alpha"] is not None


def test_two_items_alpha_if_deleted_is_null():
    rng = np.random.default_rng(2)
    s = random_scores(rng, 80, 2)
    report = analyze_matrix(s)
    assert close(report["test"]["alpha"], ref_alpha(rows_of(s)))
    assert [it["alpha_if_deleted"] for it in report["items"]] == [None, None]


def test_all_omitted():
    omitted = np.ones((10, 3), dtype=bool)
    scores = np.full((10, 3), np.nan)
    wrong = analyze_matrix(scores, omitted=omitted)
    assert wrong["test"]["mean"] == 0.0 and wrong["test"]["sd"] == 0.0
    assert wrong["test"]["alpha"] is None and wrong["test"]["sem"] is None
    assert all(it["p"] == 0.0 and it["r_pb"] is None and it["omitted"] == 10 for it in wrong["items"])
    assert all(it["d_upper_lower"] is None for it in wrong["items"])
    missing = analyze_matrix(scores, omitted=omitted, omit="missing")
    assert missing["test"]["n"] == 0 and missing["test"]["mean"] is None
    assert missing["test"]["score_histogram"] == []
    assert all(it["p"] is None and it["n"] == 0 for it in missing["items"])


def test_one_examinee():
    report = analyze_matrix(np.array([[1.0, 0.0, 1.0]]))
    assert report["test"]["mean"] == 2.0
    assert report["test"]["sd"] is None and report["test"]["alpha"] is None
    assert [it["p"] for it in report["items"]] == [1.0, 0.0, 1.0]
    assert all(it["sd"] is None and it["r_pb"] is None for it in report["items"])


def test_partial_credit_items():
    """Vietnamese true/false-4 items (0, .1, .25, .5, 1) beside 0/0.25 items."""
    rng = np.random.default_rng(3)
    ability = rng.normal(size=400)
    right = rng.random((400, 4, 4)) < 1 / (1 + np.exp(-ability[:, None, None]))
    tf = np.array([0, 0.1, 0.25, 0.5, 1.0])[right.sum(axis=2)]
    mc = (rng.random((400, 3)) < 1 / (1 + np.exp(-ability[:, None]))) * 0.25
    s = np.hstack([tf, mc])
    mp = np.array([1, 1, 1, 1, 0.25, 0.25, 0.25])
    report = analyze_matrix(s, max_points=mp)
    rows = rows_of(s)
    for j, item in enumerate(report["items"]):
        p, sd, r_rest, r_tot = ref_item(rows, j, mp[j])
        assert close(item["p"], p) and close(item["sd"], sd)
        assert close(item["r_pb"], r_rest) and close(item["r_pb_total"], r_tot)
        assert (item["r_bis"] is None) == (j < 4)  # biserial only for right/wrong items
    assert close(report["test"]["alpha"], ref_alpha(rows))
    assert report["test"]["kr20"] is None and report["test"]["kr21"] is None
    # 0/0.25 items alone: KR-20 on the number right equals alpha.
    rel = ctt.reliability(mc, np.full(3, 0.25))
    assert close(rel.kr20, rel.alpha)
    assert close(rel.kr20, ref_kr20(rows_of(mc / 0.25)))


def test_negative_alpha_is_kept():
    rng = np.random.default_rng(4)
    a = (rng.random(100) < 0.5).astype(float)
    b = (rng.random(100) < 0.5).astype(float)
    s = np.column_stack([a, 1 - a, b, 1 - b, a])
    alpha = ref_alpha(rows_of(s))
    assert alpha < 0
    report = analyze_matrix(s)
    assert close(report["test"]["alpha"], alpha)
    assert report["test"]["sem"] > report["test"]["sd"]


def test_upper_lower_tie_rule():
    # 10 examinees: 2.7 places per group; the totals 3 are tied across the cut.
    totals = np.array([5, 4, 3, 3, 3, 2, 1, 1, 0, 0], dtype=float)
    upper, lower = ctt.upper_lower_weights(totals)
    assert upper.sum() == pytest.approx(2.7) and lower.sum() == pytest.approx(2.7)
    assert list(upper[:2]) == [1, 1] and upper[2:5] == pytest.approx([0.7 / 3] * 3)
    assert list(lower[8:]) == [1, 1] and lower[6:8] == pytest.approx([0.35, 0.35])
    # Row order does not matter.
    perm = np.random.default_rng(0).permutation(10)
    u2, l2 = ctt.upper_lower_weights(totals[perm])
    assert u2 == pytest.approx(upper[perm]) and l2 == pytest.approx(lower[perm])


def test_omit_policies():
    choices = np.array([[0, 1], [1, OMITTED], [0, 0], [OMITTED, NOT_PRESENTED]])
    key = np.array([0, 0])
    wrong = ctt.score_choices(choices, key)
    missing = ctt.score_choices(choices, key, omit="missing")
    assert wrong.tolist()[1] == [0.0, 0.0] and math.isnan(wrong[3, 1])
    assert math.isnan(missing[1, 1]) and math.isnan(missing[3, 0]) and missing[0, 0] == 1.0
    with pytest.raises(ValueError, match="omit policy"):
        ctt.score_choices(choices, key, omit="zero")


def test_flags_follow_thresholds():
    p = np.array([0.95, 0.1, 0.5, 0.5, 0.5])
    r = np.array([0.3, 0.3, -0.1, 0.1, np.nan])
    assert ctt.flag_items(p, r) == [["too_easy"], ["too_hard"], ["negative_discrimination"], ["low_discrimination"], []]
    strict = ctt.FlagThresholds(too_easy=0.96, low_discrimination=0.05)
    assert ctt.flag_items(p, r, thresholds=strict)[0] == []
    assert ctt.flag_items(p, r, thresholds=strict)[3] == []


def _sat12():
    raw = np.loadtxt(DATASETS / "SAT12.csv", delimiter=",", skiprows=1, dtype=int)
    key = np.loadtxt(DATASETS / "SAT12_key.csv", delimiter=",", skiprows=1, usecols=1, dtype=int)
    return np.where(raw == 8, OMITTED, raw - 1), key - 1


def test_sat12_distractor_invariants():
    choices, key = _sat12()
    labels = [[str(o) for o in range(1, 6)]] * 32
    report = analyze_matrix(choices=choices, key=key, options=labels)
    assert report["examinees"] == 600 and report["items_count"] == 32
    for item in report["items"]:
        opts = item["options"]
        assert sum(o["count"] for o in opts) + item["omitted"] == 600
        assert sum(o["proportion"] for o in opts) + item["omitted"] / 600 == pytest.approx(1)
        keyed = [o for o in opts if o["is_key"]]
        assert len(keyed) == 1
        # Omits scored wrong: choosing the key is the item score itself.
        assert keyed[0]["r_pb_rest"] == pytest.approx(item["r_pb"], abs=1e-9)
        assert keyed[0]["proportion"] == pytest.approx(item["p"])
        assert keyed[0]["mean_total"] > report["test"]["mean"]
    # With the key as distributed only item 32 looks miskeyed: option 3 is
    # chosen by 266 examinees with r_pb .20 while the key (5) has .04.
    suspects = [it["id"] for it in report["items"] if "possible_miskey" in it["flags"]]
    assert suspects == ["32"]
    item32 = {o["option"]: o for o in report["items"][31]["options"]}
    assert item32["3"]["count"] == 266 and item32["5"]["is_key"]
    assert item32["3"]["r_pb_rest"] == pytest.approx(0.203, abs=5e-4)
    assert item32["5"]["r_pb_rest"] == pytest.approx(0.037, abs=5e-4)
    # Key item 2 to its most popular distractor: now flagged as a miskey.
    wrong_key = key.copy()
    counts = [o["count"] for o in report["items"][1]["options"]]
    wrong_key[1] = max((c, o) for o, c in enumerate(counts) if o != key[1])[1]
    bad = analyze_matrix(choices=choices, key=wrong_key, options=labels)
    assert "possible_miskey" in bad["items"][1]["flags"]
    assert bad["items"][1]["r_pb"] < 0
    assert "negative_discrimination" in bad["items"][1]["flags"]
