"""Mantel-Haenszel DIF against a plain-loop computation, the ETS rule, and
the verbal aggression data by gender."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from cbt.analysis import analyze_matrix, dif

DATASETS = Path(__file__).parents[1] / "data"


def ref_mh(scores, focal, j):
    """alpha, D, SE(D), chi2 for item j with dictionaries and loops."""
    tables = defaultdict(lambda: [0, 0, 0, 0])  # A, B, C, D per total score
    for row, f in zip(scores, focal, strict=True):
        if f not in (0, 1):
            continue
        cell = (0 if row[j] == 1 else 1) + (2 if f == 1 else 0)
        tables[sum(row)][cell] += 1
    num = den = sum_a = sum_e = sum_v = 0.0
    terms = []
    for a, b, c, d in tables.values():
        t = a + b + c + d
        if t < 2:
            continue
        num += a * d / t
        den += b * c / t
        sum_a += a
        sum_e += (a + b) * (a + c) / t
        sum_v += (a + b) * (c + d) * (a + c) * (b + d) / (t * t * (t - 1))
        terms.append(((a + d) / t, (b + c) / t, a * d / t, b * c / t))
    alpha = num / den
    var = (
        sum(p * r for p, q, r, s in terms) / (2 * num**2)
        + sum(p * s + q * r for p, q, r, s in terms) / (2 * num * den)
        + sum(q * s for p, q, r, s in terms) / (2 * den**2)
    )
    chi2 = max(abs(sum_a - sum_e) - 0.5, 0) ** 2 / sum_v
    return alpha, -2.35 * math.log(alpha), 2.35 * math.sqrt(var), chi2


def simulate(rng, n=2000, k=15, dif_item=3, shift=1.0):
    focal = (rng.random(n) < 0.4).astype(int)
    theta = rng.normal(size=n)
    b = rng.uniform(-1.5, 1.5, k)
    logits = theta[:, None] - b[None, :]
    logits[:, dif_item] -= shift * focal  # harder for the focal group
    return (rng.random((n, k)) < 1 / (1 + np.exp(-logits))).astype(float), focal


def test_matches_loops():
    rng = np.random.default_rng(3)
    scores, focal = simulate(rng, n=600, k=8)
    focal[:20] = -1  # not in either group
    mh = dif.mantel_haenszel(scores, focal)
    assert mh.n_reference + mh.n_focal == 580
    for j in range(8):
        alpha, d, se, chi2 = ref_mh(scores, focal, j)
        assert mh.alpha[j] == pytest.approx(alpha, rel=1e-10)
        assert mh.d_dif[j] == pytest.approx(d, rel=1e-10, abs=1e-12)
        assert mh.se_d_dif[j] == pytest.approx(se, rel=1e-10)
        assert mh.chi2[j] == pytest.approx(chi2, rel=1e-10, abs=1e-12)
        assert mh.p_value[j] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-12)


def test_simulated_dif_item_is_class_c():
    rng = np.random.default_rng(10)
    scores, focal = simulate(rng, n=6000, shift=1.2)
    mh = dif.mantel_haenszel(scores, focal)
    assert mh.ets_class[3] == "C"
    assert mh.d_dif[3] < -1.5  # harder for the focal group: favours the reference
    others = [c for j, c in enumerate(mh.ets_class) if j != 3]
    assert others.count("A") >= len(others) - 1


def test_sign_convention():
    """An item harder for the focal group favours the reference group:
    alpha_MH > 1 and MH D-DIF negative."""
    rng = np.random.default_rng(12)
    scores, focal = simulate(rng, n=6000, shift=1.2)
    mh = dif.mantel_haenszel(scores, focal)
    assert mh.alpha[3] > 1 and mh.d_dif[3] < 0


@pytest.mark.parametrize(
    ("d", "se", "p", "expected"),
    [
        (0.99, 0.1, 1e-6, "A"),  # small
        (-2.0, 0.1, 0.06, "A"),  # large but not significant
        (1.2, 0.1, 0.001, "B"),
        (-1.6, 0.2, 0.001, "C"),  # (1.6 - 1)/0.2 = 3 > 1.645
        (-1.6, 0.4, 0.001, "B"),  # (1.6 - 1)/0.4 = 1.5: not significantly above 1
        (1.49, 0.01, 0.001, "B"),
        (1.5, 0.2, 0.001, "C"),  # (1.5 - 1)/0.2 = 2.5 > 1.645
        (-1.8, 0.5, 0.001, "B"),  # (1.8 - 1)/0.5 = 1.6 < 1.645
        (float("nan"), 0.1, 0.001, None),
    ],
)
def test_ets_classes(d, se, p, expected):
    assert dif.ets_class(d, se, p) == expected


def test_partial_credit_and_undefined_items_are_null():
    rng = np.random.default_rng(1)
    scores, focal = simulate(rng, n=300, k=5)
    scores[:, 0] = 1.0  # everyone right: no odds ratio
    scores[:, 1] *= 0.5
    scores[::3, 1] = 0.25  # partial credit
    mh = dif.mantel_haenszel(scores, focal, max_points=np.array([1, 0.5, 1, 1, 1]))
    assert math.isnan(mh.alpha[0]) and mh.ets_class[0] is None
    assert math.isnan(mh.chi2[1]) and mh.ets_class[1] is None
    assert all(c is not None for c in mh.ets_class[2:])


def test_verbal_by_gender():
    path = DATASETS / "verbal.tsv"
    raw = np.loadtxt(path, delimiter="\t", skiprows=1)
    header = path.read_text().split("\n", 1)[0].split("\t")
    items = raw[:, :24]
    gender = raw[:, header.index("Gender")].astype(int)  # 1 = male (focal)
    report = analyze_matrix(items, item_ids=header[:24], group=gender)
    rows = report["dif"]
    assert len(rows) == 24
    assert rows[0]["n_focal"] == int((gender == 1).sum())
    assert rows[0]["n_reference"] + rows[0]["n_focal"] == 316
    classes = [r["ets_class"] for r in rows]
    assert set(classes) <= {"A", "B", "C"}
    assert classes.count("A") >= 12  # most items behave alike across genders
    for r in rows:
        assert (r["mh_d_dif"] < 0) == (r["mh_alpha"] > 1)
        assert 0 <= r["p_value"] <= 1
        alpha, d, se, chi2 = ref_mh(items, gender, header.index(r["id"]))
        assert r["mh_alpha"] == pytest.approx(alpha) and r["se_d_dif"] == pytest.approx(se)
        assert r["mh_d_dif"] == pytest.approx(d) and r["chi2"] == pytest.approx(chi2)
        if r["ets_class"] == "C":
            assert abs(r["mh_d_dif"]) >= 1.5 and r["p_value"] < 0.05
