"""Differential item functioning by the Mantel-Haenszel procedure.

Examinees are matched on the total score over all items, the studied item
included (Holland & Thayer 1988: leaving it out biases the statistic).
For each item and each total-score stratum s, the 2 x 2 table is::

                 right  wrong   total
    reference     A_s    B_s    n_Rs
    focal         C_s    D_s    n_Fs
                  m1_s   m0_s   T_s

- alpha_MH = sum(A D / T) / sum(B C / T): the common odds ratio of a right
  answer, reference over focal; above 1 the item favours the reference.
- MH D-DIF = -2.35 ln(alpha_MH) (ETS delta metric): negative when the item
  favours the reference group.
- chi-square (1 df) with continuity correction:
  (max(|sum A - sum E(A)| - 0.5, 0))^2 / sum Var(A), E(A) = n_R m1 / T,
  Var(A) = n_R n_F m1 m0 / (T^2 (T - 1)). The max(., 0) keeps a difference
  under 0.5 from turning into a positive statistic.
- SE of D-DIF: 2.35 x the Robins-Breslow-Greenland (= Phillips-Holland)
  standard error of ln(alpha_MH).
- ETS class: A if |D| < 1 or the chi-square is not significant at .05;
  C if |D| >= 1.5 and (|D| - 1) / SE > 1.645; otherwise B.

Strata with fewer than two examinees carry no information and are left
out. Only examinees with a score on every item enter (the total must mean
the same thing for everyone), and only right/wrong items get statistics;
others are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

D_SCALE = -2.35
SIGNIFICANCE = 0.05
Z_ONE_SIDED_05 = 1.645


@dataclass(frozen=True)
class MantelHaenszel:
    """Per-item results ([k] float arrays; NaN = undefined).

    alpha: common odds ratio; d_dif: -2.35 ln(alpha); se_d_dif: its SE;
    chi2: continuity-corrected MH chi-square; p_value: its upper tail (1 df);
    ets_class: "A", "B", "C" or None when undefined;
    n_reference, n_focal: examinees used.
    """

    alpha: np.ndarray
    d_dif: np.ndarray
    se_d_dif: np.ndarray
    chi2: np.ndarray
    p_value: np.ndarray
    ets_class: list[str | None]
    n_reference: int
    n_focal: int


def chi2_sf_1df(x: float) -> float:
    """Upper tail of chi-square with 1 df: P(Z^2 > x) = erfc(sqrt(x / 2))."""
    return math.erfc(math.sqrt(x / 2)) if x >= 0 else math.nan


def ets_class(d_dif: float, se: float, p_value: float) -> str | None:
    """ETS A/B/C from both size and significance (see module docstring)."""
    if any(math.isnan(v) for v in (d_dif, p_value)):
        return None
    size = abs(d_dif)
    if size < 1.0 or p_value >= SIGNIFICANCE:
        return "A"
    if size >= 1.5 and not math.isnan(se) and se > 0 and (size - 1.0) / se > Z_ONE_SIDED_05:
        return "C"
    return "B"


def mantel_haenszel(
    scores: np.ndarray,
    group: np.ndarray,
    max_points: np.ndarray | None = None,
) -> MantelHaenszel:
    """MH DIF statistics for every item.

    scores: [N x k] float item scores, NaN = no score (such examinees are
        left out).
    group: [N] int, 1 = focal, 0 = reference, anything else (e.g. -1) = not
        in either group; a bool array (True = focal) also works.
    max_points: [k] (default 1): "right" means scoring the maximum; items
        with other scores than 0 and the maximum get NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    group = np.asarray(group)
    k = scores.shape[1]
    mp = np.ones(k) if max_points is None else np.asarray(max_points, dtype=np.float64)
    focal = group.astype(np.int64) if group.dtype == bool else group
    keep = ((focal == 0) | (focal == 1)) & ~np.isnan(scores).any(axis=1)
    s = scores[keep]
    f = (focal[keep] == 1).astype(np.int64)
    n_ref, n_foc = int((f == 0).sum()), int(f.sum())
    dich = np.all((s == 0) | (s == mp[None, :]), axis=0)
    right = (s == mp[None, :]).astype(np.float64)

    _, stratum = np.unique(s.sum(axis=1).round(9), return_inverse=True)
    stratum = stratum.reshape(-1)
    n_strata = int(stratum.max()) + 1 if stratum.size else 0
    # Cell = (stratum, group); per-cell counts and numbers right by item,
    # from one sort and cumulative sums (no [N x strata] one-hot array).
    cell = stratum * 2 + f
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(2 * n_strata + 1))
    csum = np.vstack([np.zeros((1, k)), np.cumsum(right[order], axis=0)])
    right_cell = (csum[bounds[1:]] - csum[bounds[:-1]]).reshape(n_strata, 2, k)
    n_cell = np.diff(bounds).reshape(n_strata, 2).astype(np.float64)

    a = right_cell[:, 0, :]  # reference right
    c = right_cell[:, 1, :]  # focal right
    n_r = n_cell[:, 0:1]
    n_f = n_cell[:, 1:2]
    b = n_r - a
    dd = n_f - c
    t = n_r + n_f
    use = (t >= 2).astype(np.float64)  # [S x 1]
    with np.errstate(all="ignore"):
        tt = np.where(t >= 2, t, np.nan)
        r = np.nan_to_num(a * dd / tt) * use
        sq = np.nan_to_num(b * c / tt) * use
        m1 = a + c
        m0 = b + dd
        e_a = np.nan_to_num(n_r * m1 / tt) * use
        v_a = np.nan_to_num(n_r * n_f * m1 * m0 / (tt * tt * (tt - 1))) * use
        p_ = np.nan_to_num((a + dd) / tt) * use
        q_ = np.nan_to_num((b + c) / tt) * use
        sum_r, sum_s = r.sum(axis=0), sq.sum(axis=0)
        alpha = sum_r / sum_s
        d_dif = D_SCALE * np.log(alpha)
        var_ln = (
            (p_ * r).sum(axis=0) / (2 * sum_r**2)
            + (p_ * sq + q_ * r).sum(axis=0) / (2 * sum_r * sum_s)
            + (q_ * sq).sum(axis=0) / (2 * sum_s**2)
        )
        se_d = abs(D_SCALE) * np.sqrt(var_ln)
        diff = np.abs((a * use).sum(axis=0) - e_a.sum(axis=0))
        sum_v = v_a.sum(axis=0)
        chi2 = np.maximum(diff - 0.5, 0.0) ** 2 / sum_v
    defined = dich & (sum_r > 0) & (sum_s > 0)
    alpha = np.where(defined, alpha, np.nan)
    d_dif = np.where(defined, d_dif, np.nan)
    se_d = np.where(defined, se_d, np.nan)
    chi2 = np.where(dich & (sum_v > 0), chi2, np.nan)
    p_value = np.array([chi2_sf_1df(x) if not np.isnan(x) else np.nan for x in chi2])
    classes = [ets_class(float(d_dif[j]), float(se_d[j]), float(p_value[j])) for j in range(k)]
    return MantelHaenszel(alpha, d_dif, se_d, chi2, p_value, classes, n_ref, n_foc)
