"""IRT against published results (LSAT6, LSAT7), an independent plain-loop
likelihood, and recovery of known parameters."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cbt.analysis import irt

DATASETS = Path(__file__).parents[1] / "data"


def patterns(name):
    path = DATASETS / f"{name}_patterns.csv"
    raw = np.loadtxt(path, delimiter=",", skiprows=1)
    return raw[:, :5], raw[:, 5]


def simulate_2pl(rng, n, a, b):
    """(theta [n], responses [n x len(a)] 0/1) for N(0, 1) examinees under the 2PL."""
    theta = rng.normal(size=n)
    return theta, (rng.random((n, len(a))) < 1 / (1 + np.exp(-a * (theta[:, None] - b)))).astype(float)


def random_2pl(rng, n, k, a_range, b_range):
    """(a, b, theta, responses): k items with a and b drawn uniformly from the
    ranges, and n examinees answering them (simulate_2pl)."""
    a = rng.uniform(*a_range, k)
    b = rng.uniform(*b_range, k)
    theta, resp = simulate_2pl(rng, n, a, b)
    return a, b, theta, resp


def fine_normal_grid(points=241, limit=8.0):
    """A plain Riemann sum for N(0, 1), four times finer and wider than cbt's
    rule and built independently of it: (nodes, weights) as Python lists.
    The two agree to about 1e-7 in a log-likelihood (tests below allow 1e-6)."""
    h = 2 * limit / (points - 1)
    nodes = [-limit + i * h for i in range(points)]
    return nodes, [h * math.exp(-t * t / 2) / math.sqrt(2 * math.pi) for t in nodes]


def ref_loglik(resp, a, d, weights):
    """Marginal log-likelihood with plain loops over rows, nodes and items."""
    nodes, w = fine_normal_grid()
    total = 0.0
    for row, f in zip(resp, weights, strict=True):
        like = 0.0
        for t, wq in zip(nodes, w, strict=True):
            prod = 1.0
            for x, aj, dj in zip(row, a, d, strict=True):
                if math.isnan(x):
                    continue
                p = 1 / (1 + math.exp(-(aj * t + dj)))
                prod *= p if x == 1 else 1 - p
            like += wq * prod
        total += f * math.log(like)
    return total


# Rizopoulos (2006), ltm, J. Stat. Software 17(5); logistic, D = 1.
LSAT6_RASCH_B = [-2.8720, -1.0630, -0.2576, -1.3881, -2.2188]
LSAT6_RASCH_LL = -2473.054
LSAT6_2PL_A = [0.8254, 0.7229, 0.8905, 0.6886, 0.6575]
LSAT6_2PL_B = [-3.3597, -1.3696, -0.2799, -1.8659, -3.1236]
LSAT6_2PL_LL = -2466.653
# mirt test suite, slope-intercept form.
LSAT7_2PL_A = [0.988, 1.081, 1.706, 0.7651, 0.7358]
LSAT7_2PL_D = [1.8561, 0.808, 1.8043, 0.486, 1.8545]


def test_lsat6_rasch_matches_ltm():
    resp, freq = patterns("LSAT6")
    fit = irt.fit_rasch(resp, freq)
    assert fit.converged
    assert np.all(fit.a == 1)
    assert fit.b == pytest.approx(LSAT6_RASCH_B, abs=0.01)
    assert fit.loglik == pytest.approx(LSAT6_RASCH_LL, abs=0.01)
    assert np.all(np.isnan(fit.se_a)) and np.all(fit.se_b > 0)


def test_lsat6_2pl_matches_ltm():
    resp, freq = patterns("LSAT6")
    fit = irt.fit_2pl(resp, freq)
    assert fit.converged
    assert fit.a == pytest.approx(LSAT6_2PL_A, abs=0.01)
    assert fit.b == pytest.approx(LSAT6_2PL_B, abs=0.01)
    assert fit.loglik == pytest.approx(LSAT6_2PL_LL, abs=0.01)
    assert fit.loglik == pytest.approx(ref_loglik(resp, fit.a, fit.d, freq), abs=1e-6)


def test_lsat7_2pl_matches_mirt():
    resp, freq = patterns("LSAT7")
    fit = irt.fit_2pl(resp, freq)
    assert fit.converged
    assert fit.a == pytest.approx(LSAT7_2PL_A, abs=0.01)
    assert fit.d == pytest.approx(LSAT7_2PL_D, abs=0.01)
    assert fit.b == pytest.approx(-np.array(LSAT7_2PL_D) / LSAT7_2PL_A, abs=0.01)


def test_patterns_with_weights_equal_expanded_rows():
    resp, freq = patterns("LSAT7")
    rows = np.repeat(resp, freq.astype(int), axis=0)
    by_pattern = irt.fit_2pl(resp, freq)
    by_row = irt.fit_2pl(rows)
    assert by_row.a == pytest.approx(by_pattern.a, abs=1e-6)
    assert by_row.b == pytest.approx(by_pattern.b, abs=1e-6)
    assert by_row.se_b == pytest.approx(by_pattern.se_b, rel=1e-5)
    assert by_row.loglik == pytest.approx(by_pattern.loglik, abs=1e-6)
    # Abilities come back per row given, in order.
    assert by_row.theta.shape == (1000,)
    first = np.flatnonzero((resp == rows[0]).all(axis=1))[0]
    assert by_row.theta[0] == pytest.approx(by_pattern.theta[first])


@pytest.mark.parametrize("model", ["rasch", "2pl"])
def test_estimates_maximise_an_independent_likelihood(model):
    """With missing cells: every small move of any parameter lowers the
    plain-loop likelihood, and the reported loglik is that likelihood."""
    rng = np.random.default_rng(21)
    n, k = 300, 5
    *_, resp = random_2pl(rng, n, k, (0.6, 1.8), (-1.5, 1.5))
    resp[rng.random((n, k)) < 0.1] = np.nan
    fit = irt.fit(resp, model)
    w = np.ones(n)
    best = ref_loglik(resp, fit.a, fit.d, w)
    assert fit.loglik == pytest.approx(best, abs=1e-6)
    for j in range(k):
        for delta in (-1e-3, 1e-3):
            d = fit.d.copy()
            d[j] += delta
            assert ref_loglik(resp, fit.a, d, w) < best
            if model == "2pl":
                aa = fit.a.copy()
                aa[j] += delta
                assert ref_loglik(resp, aa, fit.d, w) < best


def test_standard_errors_match_numerical_hessian():
    resp, freq = patterns("LSAT6")
    fit = irt.fit_2pl(resp, freq)
    k = 5
    cov = numerical_cov(resp, fit.a, fit.d, freq)
    se_a = np.sqrt(np.diag(cov)[:k])
    a, d = fit.a, fit.d
    var_b = (d / a**2) ** 2 * np.diag(cov)[:k] + np.diag(cov)[k:] / a**2 - 2 * d / a**3 * np.diag(cov[:k, k:])
    assert fit.se_a == pytest.approx(se_a, rel=1e-3)
    assert fit.se_b == pytest.approx(np.sqrt(var_b), rel=1e-3)


def distinct_patterns(resp, weights):
    """The rows of ``resp`` once each, weighted by how often they occur: the
    same likelihood as the rows themselves, for a fraction of ref_loglik's
    loops (three items with missing cells have at most 27 patterns)."""
    counts: dict[tuple, float] = {}
    for row, f in zip(resp, weights, strict=True):
        key = tuple(-1.0 if math.isnan(x) else float(x) for x in row)
        counts[key] = counts.get(key, 0.0) + f
    rows = np.array([[math.nan if x == -1.0 else x for x in key] for key in counts])
    return rows, np.array(list(counts.values()))


def numerical_cov(resp, a, d, weights, h=1e-4):
    """Inverse of minus the finite-difference Hessian of ref_loglik."""
    resp, weights = distinct_patterns(resp, weights)
    k = a.size
    x0 = np.concatenate([a, d])
    n = 2 * k

    def ll(x):
        return ref_loglik(resp, x[:k], x[k:], weights)

    hess = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            e_i, e_j = np.eye(n)[i] * h, np.eye(n)[j] * h
            hess[i, j] = hess[j, i] = (
                ll(x0 + e_i + e_j) - ll(x0 + e_i - e_j) - ll(x0 - e_i + e_j) + ll(x0 - e_i - e_j)
            ) / (4 * h * h)
    return np.linalg.inv(-hess)


def test_standard_errors_with_missing_responses():
    """The observed information with missing cells (its own code path)."""
    rng = np.random.default_rng(31)
    n, k = 200, 3
    a = np.array([0.8, 1.4, 1.1])
    b = np.array([-0.5, 0.3, 0.9])
    _, resp = simulate_2pl(rng, n, a, b)
    resp[rng.random((n, k)) < 0.2] = np.nan
    fit = irt.fit_2pl(resp)
    cov = numerical_cov(resp, fit.a, fit.d, np.ones(n))
    assert fit.se_a == pytest.approx(np.sqrt(np.diag(cov)[:k]), rel=1e-3)
    assert fit.se_d == pytest.approx(np.sqrt(np.diag(cov)[k:]), rel=1e-3)
    rasch = irt.fit_rasch(resp)
    d, h = rasch.d, 1e-4
    rows, freq = distinct_patterns(resp, np.ones(n))
    full = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            e_i, e_j = np.eye(k)[i] * h, np.eye(k)[j] * h
            full[i, j] = full[j, i] = (
                ref_loglik(rows, np.ones(k), d + e_i + e_j, freq)
                - ref_loglik(rows, np.ones(k), d + e_i - e_j, freq)
                - ref_loglik(rows, np.ones(k), d - e_i + e_j, freq)
                + ref_loglik(rows, np.ones(k), d - e_i - e_j, freq)
            ) / (4 * h * h)
    assert rasch.se_b == pytest.approx(np.sqrt(np.diag(np.linalg.inv(-full))), rel=1e-3)


def test_2pl_recovers_known_parameters():
    rng = np.random.default_rng(2024)
    n, k = 20_000, 25
    a, b, theta, resp = random_2pl(rng, n, k, (0.7, 2.0), (-1.5, 1.5))
    fit = irt.fit_2pl(resp)
    assert fit.converged
    assert math.sqrt(np.mean((fit.a - a) ** 2)) < 0.05
    assert math.sqrt(np.mean((fit.b - b) ** 2)) < 0.05
    # EAP abilities track the true ones; their SEs are posterior SDs.
    assert np.corrcoef(fit.theta, theta)[0, 1] > 0.9
    assert np.all((fit.theta_se > 0) & (fit.theta_se < 1))


def test_eap_matches_loops():
    rng = np.random.default_rng(4)
    resp = (rng.random((20, 4)) < 0.6).astype(float)
    resp[3, 1] = np.nan
    a = np.array([1.0, 1.5, 0.7, 2.0])
    d = np.array([0.5, -0.2, 1.0, 0.0])
    theta, se = irt.eap(resp, a, d)
    nodes, w = fine_normal_grid()
    for i, row in enumerate(resp):
        post = []
        for t, wq in zip(nodes, w, strict=True):
            like = wq
            for x, aj, dj in zip(row, a, d, strict=True):
                if not math.isnan(x):
                    p = 1 / (1 + math.exp(-(aj * t + dj)))
                    like *= p if x == 1 else 1 - p
            post.append(like)
        total = sum(post)
        m = sum(p * t for p, t in zip(post, nodes, strict=True)) / total
        v = sum(p * t * t for p, t in zip(post, nodes, strict=True)) / total - m * m
        assert theta[i] == pytest.approx(m, abs=1e-7)
        assert se[i] == pytest.approx(math.sqrt(v), abs=1e-7)


def test_items_without_variation_are_left_out():
    rng = np.random.default_rng(8)
    resp = (rng.random((500, 4)) < 0.6).astype(float)
    resp[:, 1] = 1.0
    fit = irt.fit_rasch(resp)
    assert list(fit.estimated) == [True, False, True, True]
    assert math.isnan(fit.b[1]) and math.isnan(fit.se_b[1])
    alone = irt.fit_rasch(resp[:, [0, 2, 3]])
    assert fit.b[[0, 2, 3]] == pytest.approx(alone.b, abs=1e-8)
    assert fit.loglik == pytest.approx(alone.loglik)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="0, 1 or NaN"):
        irt.fit(np.array([[0, 2.0], [1, 0]]))
    with pytest.raises(ValueError, match="model"):
        irt.fit(np.zeros((3, 2)), "3pl")


def _rasch_data(seed, n, k, missing=False):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    b = rng.uniform(-2, 2, size=k)
    resp = (rng.random((n, k)) < 1 / (1 + np.exp(-(theta[:, None] - b[None, :])))).astype(float)
    if missing:  # two forms sharing half the items
        half = k // 4
        first = np.arange(n) % 2 == 0
        resp[np.ix_(first, np.arange(half))] = np.nan
        resp[np.ix_(~first, np.arange(k - half, k))] = np.nan
    return theta, resp


@pytest.mark.parametrize("missing", [False, True])
def test_marginal_reliability_recovers_the_true_reliability(missing):
    theta, resp = _rasch_data(11, 3000, 40, missing)
    fit = irt.fit_rasch(resp)
    rel = irt.marginal_reliability(fit.theta, fit.theta_se)
    # The true reliability of the EAP scores: their squared correlation with the true abilities.
    true = np.corrcoef(fit.theta, theta)[0, 1] ** 2
    assert 0 <= rel <= 1
    assert abs(rel - true) < 0.05, (rel, true)
    # The formula, written out.
    v = sum((t - fit.theta.mean()) ** 2 for t in fit.theta) / len(fit.theta)
    assert rel == pytest.approx(v / (v + sum(s * s for s in fit.theta_se) / len(fit.theta_se)), rel=1e-12)


def test_marginal_reliability_undefined_is_nan_not_zero():
    assert math.isnan(irt.marginal_reliability([0.3], [0.5]))
    assert math.isnan(irt.marginal_reliability([0.0, 0.0], [0.0, 0.0]))
    assert irt.marginal_reliability([0.0, 0.0], [0.5, 0.5]) == 0.0  # no spread at all: defined, and 0
    assert irt.marginal_reliability([1.0, -1.0, np.nan], [0.0, 0.0, 0.3]) == 1.0


def test_long_test_estimates_do_not_depend_on_the_quadrature():
    """With 60 items each examinee's likelihood is narrow (SD about 0.3):
    the default rule must already give the exact integral's estimates, which
    201 points (spacing 0.06) stand in for."""
    rng = np.random.default_rng(33)
    n, k = 4000, 60
    *_, resp = random_2pl(rng, n, k, (0.6, 2.0), (-2.0, 2.0))
    default = irt.fit_2pl(resp)
    fine = irt.fit_2pl(resp, n_quad=201)
    assert np.abs(default.a - fine.a).max() < 1e-6
    assert np.abs(default.b - fine.b).max() < 1e-6
    assert default.loglik == pytest.approx(fine.loglik, abs=1e-4)
