"""Item response theory: Rasch and 2PL by marginal maximum likelihood.

Model (logistic metric, scaling constant D = 1)::

    P(correct | theta) = 1 / (1 + exp(-(a theta + d))),   b = -d / a

with ability theta ~ N(0, 1) integrated out by quadrature on an even grid
(61 points on [-6, 6] by default, see DEFAULT_QUADRATURE). "rasch" fixes a = 1 for every item (the ability
variance stays 1, as in ltm's ``rasch(constraint=...)``); "2pl" frees a.

Estimation:

1. Bock-Aitkin EM: the E-step gives each examinee's posterior over the
   quadrature nodes with two matrix products; the M-step is a few Newton
   steps of a weighted logistic regression per item, all items at once.
2. EM converges linearly, and slowly when abilities are poorly measured
   (short tests), so a stop on "small change" can leave estimates off by
   more than 0.01. Once EM has settled, Newton-Raphson on the marginal
   log-likelihood itself takes over, with the exact observed information
   (Louis's formula, built from matrix products), with step halving and an
   EM step as fall-back. It stops when the Newton step is below 1e-5 in
   every parameter or the log-likelihood gains less than 1e-6.
3. Standard errors come from the inverse of that observed information;
   se_b by the delta method from the (a, d) covariance.

Inputs: ``responses`` is ``[rows x items]`` float of 0/1 with NaN for "not
presented / not reached / missing" (those cells drop out of the
likelihood); ``weights`` is ``[rows]`` frequencies, so response patterns
with counts (LSAT data) are fitted without expanding them. Tests of up to
20 items are compressed to their distinct patterns automatically.
Items nobody got right (or nobody wrong) have no finite estimate and are
left out of the fit; their parameters are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODELS = ("rasch", "2pl")

# Each examinee's likelihood is a bump over theta, about 1/sqrt(test
# information) wide: some 0.3 with 60 items. Gauss-Hermite puts its nodes for
# the N(0, 1) factor alone and spreads them out to +-15, so 61 of them are
# 0.4 apart in the middle and moved 60-item estimates by up to 3.5e-4 (and
# the log-likelihood by 0.4) from the exact integral. The trapezoid rule on
# an even grid converges exponentially for smooth, fast-decaying integrands:
# 61 points 0.2 apart on [-6, 6] (the prior outside holds 2e-9) give the
# same estimates as 201 Gauss-Hermite points to 1e-8, for long tests and
# short ones alike, at the cost of 61.
DEFAULT_QUADRATURE = 61
QUADRATURE_LIMIT = 6.0


@dataclass(frozen=True)
class IRTFit:
    """Result of :func:`fit`. Item arrays are [k]; ability arrays [rows].

    model: "rasch" or "2pl". a, d: slope and intercept; b = -d / a.
    se_a (NaN for rasch: fixed), se_d, se_b: standard errors from the
    observed information. loglik: marginal log-likelihood at the estimates
    (with weights). iterations: EM plus Newton iterations. converged:
    whether the stopping rule was met within max_iter. estimated: [k] bool,
    False for items without both a right and a wrong response.
    theta, theta_se: EAP ability and its posterior SD per input row.
    nodes, quad_weights: the quadrature used (standard normal, summing to 1).
    """

    model: str
    a: np.ndarray
    d: np.ndarray
    b: np.ndarray
    se_a: np.ndarray
    se_d: np.ndarray
    se_b: np.ndarray
    loglik: float
    iterations: int
    converged: bool
    estimated: np.ndarray
    theta: np.ndarray
    theta_se: np.ndarray
    nodes: np.ndarray
    quad_weights: np.ndarray


def quadrature(n: int = DEFAULT_QUADRATURE) -> tuple[np.ndarray, np.ndarray]:
    """Nodes [n] evenly spaced on [-6, 6] and weights [n] proportional to the
    standard normal density there, summing to 1 (the trapezoid rule: the end
    weights, halved, are 1e-8 of the total and left whole)."""
    nodes = np.linspace(-QUADRATURE_LIMIT, QUADRATURE_LIMIT, n)
    w = np.exp(-0.5 * nodes * nodes)
    return nodes, w / w.sum()


def icc(theta: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Item characteristic curves: [len(theta) x k] P(correct | theta)."""
    theta = np.asarray(theta, dtype=np.float64)
    z = np.outer(theta, np.asarray(a, dtype=np.float64)) - np.asarray(a) * np.asarray(b)
    return _expit(z)


def _expit(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def response_patterns(responses: np.ndarray):
    """Distinct response patterns of [N x k] 0/1/NaN responses.

    Returns (patterns [P x k] float with NaN, counts [P], inverse [N]) with
    ``patterns[inverse] == responses`` (NaN in the same places).
    """
    r = np.asarray(responses, dtype=np.float64)
    codes = np.where(np.isnan(r), 2, r).astype(np.int8)
    uniq, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    patterns = np.where(uniq == 2, np.nan, uniq).astype(np.float64)
    return patterns, counts.astype(np.float64), inverse.reshape(-1)


# -- the data as the estimator sees it -------------------------------------------------------


class _Data:
    """0/1 responses split into values and presence, plus row weights."""

    def __init__(self, responses: np.ndarray, weights: np.ndarray):
        nan = np.isnan(responses)
        self.missing = bool(nan.any())
        self.u = np.where(nan, 0.0, responses)  # [N x k], 0 where missing
        self.m = (~nan).astype(np.float64) if self.missing else None  # presence
        self.w = weights
        self.unit_weights = bool(np.all(weights == 1.0))
        self.total_weight = float(weights.sum())


@dataclass
class _EStep:
    post: np.ndarray  # [N x Q] posterior over nodes per row
    loglik: float
    r: np.ndarray  # [k x Q] expected number right at each node
    n: np.ndarray  # [k x Q] expected number presented at each node


def _estep(data: _Data, a, d, nodes, log_prior) -> _EStep:
    z = np.outer(nodes, a) + d  # [Q x k]
    log_p = -np.logaddexp(0.0, -z)
    log_q = -np.logaddexp(0.0, z)
    ll = data.u @ (log_p - log_q).T  # [N x Q] log P(row | node), less the constant below
    if data.missing:
        ll += data.m @ log_q.T
        ll += log_prior[None, :]
    else:
        ll += (log_q.sum(axis=1) + log_prior)[None, :]
    # exp() straight away unless a row could underflow at every node (long
    # tests): skipping the row maxima saves two passes over N x Q.
    post = np.exp(ll)
    s = post.sum(axis=1)
    if s.min(initial=1.0) > 1e-290 and np.isfinite(s).all():
        log_s = np.log(s)
    else:
        top = ll.max(axis=1, keepdims=True)
        np.subtract(ll, top, out=ll)
        post = np.exp(ll, out=ll)
        s = post.sum(axis=1)
        log_s = top[:, 0] + np.log(s)
    post *= (1.0 / s)[:, None]
    loglik = float(data.w @ log_s)
    wpost = post if data.unit_weights else post * data.w[:, None]
    r = data.u.T @ wpost
    if data.missing:
        n = data.m.T @ wpost
    else:
        n = np.broadcast_to(wpost.sum(axis=0), r.shape)
    return _EStep(post, loglik, r, n)


def _item_gradient(a, d, nodes, r, n):
    """Gradient of the expected complete-data log-likelihood, which equals
    the gradient of the marginal log-likelihood (Fisher's identity)."""
    p = _expit(np.outer(a, nodes) + d[:, None])  # [k x Q]
    resid = r - n * p
    return resid @ nodes, resid.sum(axis=1), p


def _mstep(a, d, nodes, r, n, model, inner: int = 10):
    """Maximise each item's expected complete-data log-likelihood (a
    weighted logistic regression on the nodes) by Newton, all items at once."""
    a = a.copy()
    d = d.copy()
    for _ in range(inner):
        g_a, g_d, p = _item_gradient(a, d, nodes, r, n)
        w = n * p * (1 - p)
        h_dd = -w.sum(axis=1)
        if model == "rasch":
            step_d = -g_d / h_dd
            step_a = np.zeros_like(a)
        else:
            h_aa = -(w * nodes**2).sum(axis=1)
            h_ad = -(w @ nodes)
            det = h_aa * h_dd - h_ad * h_ad
            step_a = -(h_dd * g_a - h_ad * g_d) / det
            step_d = -(-h_ad * g_a + h_aa * g_d) / det
        # A cap keeps an early EM iteration from throwing an item far away.
        step_a = np.clip(np.nan_to_num(step_a), -1.0, 1.0)
        step_d = np.clip(np.nan_to_num(step_d), -2.0, 2.0)
        a += step_a
        d += step_d
        if max(np.abs(step_a).max(initial=0), np.abs(step_d).max(initial=0)) < 1e-10:
            break
    return a, d


def _observed_information(data: _Data, a, d, nodes, e: _EStep, model: str):
    """Negative Hessian of the marginal log-likelihood at (a, d)."""
    if data.missing:
        return _information_general(data, a, d, nodes, e, model)
    return _information_complete(data, a, d, nodes, e, model)


def _information_complete(data: _Data, a, d, nodes, e: _EStep, model: str):
    """Observed information when every row has every item.

    Per row i, Louis's formula gives d2 l_i = E_post[H_c] + Cov_post(s),
    with s_q = (u_i - P_q) (x) (theta_q, 1) the complete-data score at node
    q. Writing s_q = y_q - z_q, y_q = u_i (x) (theta_q, 1) varies only
    through theta_q and z_q = P_q (x) (theta_q, 1) not with i at all, so
    summed over rows the covariance needs one weighted Gram matrix of the
    responses, one [k x Q] product and a [Q x Q] one, instead of the
    [2k x 2k] cross-product of per-row gradients (a sixth of the work).
    """
    u, w, post = data.u, data.w, e.post
    k = u.shape[1]
    p_qk = _expit(np.outer(nodes, a) + d)  # [Q x k]
    wpost = post if data.unit_weights else post * w[:, None]
    mass = wpost.sum(axis=0)  # [Q] expected examinees at each node
    pq = p_qk * (1 - p_qk)
    # Cov(z) summed over rows: V' (diag(mass) - Pi' W Pi) V.
    mid = np.diag(mass) - wpost.T @ post
    v = np.hstack([p_qk * nodes[:, None], p_qk]) if model == "2pl" else p_qk
    hess = v.T @ mid @ v
    hc = [-(pq * (mass * nodes**f)[:, None]).sum(axis=0) for f in (0, 1, 2)]
    if model == "rasch":
        hess += np.diag(hc[0])
        return -(hess + hess.T) / 2
    theta_bar = post @ nodes
    var_theta = np.maximum(post @ nodes**2 - theta_bar**2, 0.0)
    scaled = u * np.sqrt(w * var_theta)[:, None]
    gram = scaled.T @ scaled  # Cov(y): Var(theta) u u' in the (a, a) block
    y = u.T @ (wpost * (nodes[None, :] - theta_bar[:, None]))  # [k x Q]
    x_th = (y * nodes) @ p_qk  # Cov(y, z), (a, a) block
    x_1 = y @ p_qk  # Cov(y, z), (a, d) block
    hess[:k, :k] += gram - x_th - x_th.T + np.diag(hc[2])
    hess[:k, k:] += np.diag(hc[1]) - x_1
    hess[k:, :k] += np.diag(hc[1]) - x_1.T
    hess[k:, k:] += np.diag(hc[0])
    return -(hess + hess.T) / 2


def _information_general(data: _Data, a, d, nodes, e: _EStep, model: str):
    """Observed information with missing responses (Louis 1982).

    Per row i: d2 l_i = E_post[H_c] + E_post[s s'] - g_i g_i', with s the
    complete-data score at a node and g_i its posterior mean. The middle
    term, summed over rows and nodes, expands into products of the [N x k]
    response matrix with itself, so nothing of size N x Q x k is formed.
    Parameter order: (a_1..a_k, d_1..d_k) for 2pl; (d_1..d_k) for rasch.
    """
    u, m, w, post = data.u, data.m, data.w, e.post
    p_qk = _expit(np.outer(nodes, a) + d)  # [Q x k]
    wpost = post if data.unit_weights else post * w[:, None]
    pq = (p_qk * (1 - p_qk)).T  # [k x Q]
    powers = (0, 1, 2) if model == "2pl" else (0,)
    node_mass = wpost.sum(axis=0)  # [Q]
    if data.missing:
        # K_q = M' diag(wpost_q) M: pairs of items presented together.
        # One [k x k] product per node: an N x Q x k intermediate would not fit.
        pair_mass = np.stack([(m * wpost[:, q : q + 1]).T @ m for q in range(nodes.size)])
    blocks = {}
    for f in powers:
        fq = nodes**f
        t = wpost @ fq
        t1 = (u * t[:, None]).T @ u
        cp = wpost @ (fq[:, None] * p_qk)  # [N x k]
        if data.missing:
            cp *= m
            t4 = np.einsum("q,qj,ql,qjl->jl", fq, p_qk, p_qk, pair_mass, optimize=True)
        else:
            t4 = (p_qk * (fq * node_mass)[:, None]).T @ p_qk
        t2 = u.T @ cp
        expected_hc = -np.diag((e.n * pq) @ fq)
        blocks[f] = t1 - t2 - t2.T + t4 + expected_hc
    # Per-row gradients g_i (posterior mean of the complete-data score).
    pres = m if data.missing else 1.0
    g_d = u - (post @ p_qk) * pres
    if model == "2pl":
        g_a = u * (post @ nodes)[:, None] - (post @ (nodes[:, None] * p_qk)) * pres
        g = np.hstack([g_a, g_d])
        hess = np.block([[blocks[2], blocks[1]], [blocks[1].T, blocks[0]]])
    else:
        g = g_d
        hess = blocks[0]
    wg = g if data.unit_weights else g * w[:, None]
    hess = hess - wg.T @ g
    return -(hess + hess.T) / 2


def _gradient(a, d, nodes, e: _EStep, model):
    g_a, g_d, _ = _item_gradient(a, d, nodes, e.r, e.n)
    return np.concatenate([g_a, g_d]) if model == "2pl" else g_d


def _pack(a, d, model):
    return np.concatenate([a, d]) if model == "2pl" else d.copy()


def _unpack(x, k, model):
    if model == "2pl":
        return x[:k].copy(), x[k:].copy()
    return np.ones(k), x.copy()


def fit(
    responses: np.ndarray,
    model: str = "2pl",
    weights: np.ndarray | None = None,
    n_quad: int = DEFAULT_QUADRATURE,
    max_iter: int = 5000,
    tol_loglik: float = 1e-6,
    tol_param: float = 1e-5,
) -> IRTFit:
    """Fit the Rasch or 2PL model by marginal maximum likelihood.

    responses: [rows x k] float 0/1, NaN = not presented / missing.
    model: "rasch" (a = 1) or "2pl".
    weights: [rows] frequency of each row (default 1): pass response
        patterns and their counts to fit them without expanding.
    n_quad: quadrature points on [-6, 6] (61 by default; 41 still holds
        estimates to 1e-6 on a 60-item test).
    Returns an :class:`IRTFit`; ``theta``/``theta_se`` follow the rows given.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, not {model!r}")
    resp = np.asarray(responses, dtype=np.float64)
    if resp.ndim != 2:
        raise ValueError("responses must be a 2-d [examinees x items] array")
    bad = ~(np.isnan(resp) | (resp == 0) | (resp == 1))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"responses must be 0, 1 or NaN; row {i}, item {j} is {resp[i, j]!r}")
    n_rows, k = resp.shape
    w = np.ones(n_rows) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n_rows,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be [rows] non-negative finite numbers")

    inverse = None
    if k <= 20 and n_rows > 64:
        # Few items: far fewer distinct patterns than examinees.
        patterns, _, inverse = response_patterns(resp)
        w = np.bincount(inverse, weights=w, minlength=patterns.shape[0])
        resp = patterns

    # Items without both a right and a wrong answer have no finite MLE.
    present = ~np.isnan(resp)
    right = (np.where(present, resp, 0) * w[:, None]).sum(axis=0)
    seen = (present * w[:, None]).sum(axis=0)
    est = (right > 0) & (right < seen)
    nodes, qw = quadrature(n_quad)
    log_prior = np.log(qw)
    data = _Data(resp[:, est], w)
    ke = int(est.sum())

    a, d, cov, e, iterations, converged = _maximise(
        data,
        ke,
        model,
        nodes,
        log_prior,
        max_iter,
        tol_loglik,
        tol_param,
        right[est] / seen[est] if ke else np.zeros(0),
    )
    if e is not None:
        post, loglik = e.post, e.loglik
    else:
        post, loglik = np.broadcast_to(qw, (resp.shape[0], n_quad)), 0.0
    theta = post @ nodes
    theta_se = np.sqrt(np.maximum(post @ nodes**2 - theta**2, 0.0))
    if inverse is not None:
        theta, theta_se = theta[inverse], theta_se[inverse]

    var = np.full(2 * ke if model == "2pl" else ke, np.nan)
    cov_ad = np.full(ke, np.nan)
    if cov is not None:
        var = np.diag(cov)
        if model == "2pl":
            cov_ad = np.diag(cov[:ke, ke:])
    if model == "2pl":
        var_a, var_d = var[:ke], var[ke:]
    else:
        var_a, var_d = np.zeros(ke), var
        cov_ad = np.zeros(ke)
    # b = -d / a: db/da = d / a^2, db/dd = -1 / a.
    var_b = (d / a**2) ** 2 * var_a + var_d / a**2 - 2 * d / a**3 * cov_ad

    def spread(v, fill=np.nan):
        out = np.full(k, fill)
        out[est] = v
        return out

    return IRTFit(
        model=model,
        a=spread(a),
        d=spread(d),
        b=spread(-d / a),
        se_a=spread(np.sqrt(var_a) if model == "2pl" else np.full(ke, np.nan)),
        se_d=spread(np.sqrt(var_d)),
        se_b=spread(np.sqrt(np.maximum(var_b, 0.0))),
        # Items left out add log 1 = 0, the limit of their likelihood as b
        # goes to -/+ infinity, so the fit's value is the whole test's.
        loglik=loglik,
        iterations=iterations,
        converged=converged,
        estimated=est,
        theta=theta,
        theta_se=theta_se,
        nodes=nodes,
        quad_weights=qw,
    )


def _maximise(data, ke, model, nodes, log_prior, max_iter, tol_ll, tol_par, p_right):
    """EM, then Newton on the marginal likelihood. Returns a, d, covariance
    of the free parameters (None if not positive definite), the E-step at
    the estimates, iterations, converged."""
    if ke == 0:
        return np.zeros(0), np.zeros(0), None, None, 0, True
    p = np.clip(p_right, 1e-3, 1 - 1e-3)
    a = np.ones(ke)
    # Marginally P is flatter than the logistic of d: start d a bit wider.
    d = np.log(p / (1 - p)) * 1.2
    e = _estep(data, a, d, nodes, log_prior)
    iterations = 0
    # Phase 1: EM until the gain per examinee is small; Newton (with EM as
    # its fall-back) converges far faster from there than EM would.
    switch = 1e-3 * data.total_weight
    while iterations < max_iter:
        a_new, d_new = _mstep(a, d, nodes, e.r, e.n, model)
        e_new = _estep(data, a_new, d_new, nodes, log_prior)
        iterations += 1
        gain = e_new.loglik - e.loglik
        change = max(np.abs(a_new - a).max(), np.abs(d_new - d).max())
        a, d, e = a_new, d_new, e_new
        if iterations >= 3 and (abs(gain) < switch or change < tol_par):
            break
    # Phase 2: Newton-Raphson with the observed information.
    converged = False
    cov = None
    last_gain = np.inf
    while iterations < max_iter:
        info = _observed_information(data, a, d, nodes, e, model)
        grad = _gradient(a, d, nodes, e, model)
        try:
            chol = np.linalg.cholesky(info)
        except np.linalg.LinAlgError:
            chol = None
        if chol is None:
            cov = None
            a, d = _mstep(a, d, nodes, e.r, e.n, model)
            e = _estep(data, a, d, nodes, log_prior)
            iterations += 1
            continue
        step = _chol_solve(chol, grad)
        cov = _chol_solve(chol, np.eye(info.shape[0]))
        if np.abs(step).max() < tol_par or abs(last_gain) < tol_ll:
            converged = True
            break
        x = _pack(a, d, model)
        t = 1.0
        for _ in range(12):
            a_t, d_t = _unpack(x + t * step, ke, model)
            e_t = _estep(data, a_t, d_t, nodes, log_prior)
            if e_t.loglik >= e.loglik - 1e-12 * abs(e.loglik):
                break
            t /= 2
        else:
            a_t, d_t = _mstep(a, d, nodes, e.r, e.n, model)
            e_t = _estep(data, a_t, d_t, nodes, log_prior)
            t = 0.0
        iterations += 1
        last_gain = e_t.loglik - e.loglik if t == 1.0 else np.inf
        a, d, e = a_t, d_t, e_t
    return a, d, cov, e, iterations, converged


def _chol_solve(chol, b):
    y = np.linalg.solve(chol, b)
    return np.linalg.solve(chol.T, y)


def fit_rasch(responses, weights=None, **kw) -> IRTFit:
    """Rasch model (a = 1, theta ~ N(0, 1)) by MML; see :func:`fit`."""
    return fit(responses, "rasch", weights, **kw)


def fit_2pl(responses, weights=None, **kw) -> IRTFit:
    """2PL model by MML; see :func:`fit`."""
    return fit(responses, "2pl", weights, **kw)


def eap(responses, a, d, n_quad: int = DEFAULT_QUADRATURE):
    """EAP abilities and posterior SDs ([rows] each) for known a, d ([k]).

    responses: [rows x k] 0/1, NaN = missing. Items with NaN a or d are
    ignored (not estimated).
    """
    resp = np.asarray(responses, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    use = ~(np.isnan(a) | np.isnan(d))
    nodes, qw = quadrature(n_quad)
    data = _Data(resp[:, use], np.ones(resp.shape[0]))
    e = _estep(data, a[use], d[use], nodes, np.log(qw))
    theta = e.post @ nodes
    return theta, np.sqrt(np.maximum(e.post @ nodes**2 - theta**2, 0.0))


def marginal_loglik(responses, a, d, weights=None, n_quad: int = DEFAULT_QUADRATURE) -> float:
    """Marginal log-likelihood of [rows x k] responses at given a, d."""
    resp = np.asarray(responses, dtype=np.float64)
    w = np.ones(resp.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    nodes, qw = quadrature(n_quad)
    data = _Data(resp, w)
    return _estep(data, np.asarray(a, float), np.asarray(d, float), nodes, np.log(qw)).loglik


def marginal_reliability(theta, theta_se) -> float:
    """IRT marginal reliability of EAP abilities:

        var(EAP) / (var(EAP) + mean(SE^2))

    theta: [N] EAP abilities; theta_se: [N] their posterior SDs. Both
    variances over N (the EAP identity var(EAP) + mean(PSD^2) = var(prior)
    holds with N). Rows with a NaN are left out; NaN when fewer than two rows
    remain or the denominator is 0 (undefined, never 0). Lies in [0, 1].
    """
    t = np.asarray(theta, dtype=np.float64)
    se = np.asarray(theta_se, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(se)
    if ok.sum() < 2:
        return float("nan")
    t, se = t[ok], se[ok]
    var = float(np.var(t))
    denom = var + float(np.mean(se**2))
    return var / denom if denom > 0 else float("nan")
