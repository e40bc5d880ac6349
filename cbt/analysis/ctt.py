"""Classical test theory: item and test statistics over a score matrix.

Conventions used by every function here:

- ``scores``: ``[examinees x items]`` float array of item scores. ``NaN``
  means "no score for this examinee on this item": the item was not
  presented, not reached, or (with the ``missing`` omit policy) omitted.
  Build it with :func:`score_choices` or :func:`apply_omit_policy`.
- ``max_points``: ``[items]`` float, the maximum score of each item.
- ``totals``: ``[examinees]`` float, the sum of the item scores an examinee
  has (``NaN`` when they have none at all); see :func:`total_scores`.
- ``choices``: ``[examinees x items]`` integer option indices ``0..m-1``,
  with :data:`OMITTED` (-1) for an omitted response and
  :data:`NOT_PRESENTED` (-2) for an item the examinee never saw or never
  reached. ``int8`` is enough and keeps a million examinees small.

Undefined statistics (a zero variance, too few examinees or items) are
``NaN`` here and ``null`` in reports, never 0. Cronbach's alpha is never
clipped: a negative alpha says the items do not measure one thing.

Which examinees enter which statistic:

- item statistics use the examinees who have a score on that item
  ("pairwise"), with their total over the items they have;
- reliability (alpha, KR-20, KR-21, alpha if deleted) uses the examinees
  who have a score on every item ("listwise"), so that every variance in
  the formula is over the same people; the count is returned.

Everything is vectorised: a handful of passes over the matrix (column
sums, one matrix-vector product with the totals, ``bincount`` per item for
options), so a million examinees by 50 items takes well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

OMITTED = -1
NOT_PRESENTED = -2
UPPER_LOWER_FRACTION = 0.27

# A variance is treated as zero when it is below this fraction of the mean
# square of the values: sums-of-squares formulas leave rounding residue of
# about 1e-16 relative, and the smallest real variance of item or test
# scores with a million examinees is about 1e-6 relative.
_ZERO_VARIANCE = 1e-10

_STD_NORMAL = NormalDist()


# -- building the score matrix ---------------------------------------------------------------


def score_choices(
    choices: np.ndarray,
    key: np.ndarray,
    points: np.ndarray | None = None,
    omit: str = "wrong",
) -> np.ndarray:
    """Score option choices against a key.

    choices: [N x k] int option index, OMITTED (-1), NOT_PRESENTED (-2).
    key: [k] int, the index of the keyed option of each item.
    points: [k] float, the score of the keyed option (default 1).
    omit: "wrong" scores an omitted response 0; "missing" makes it NaN.

    Returns [N x k] float64: points[j] for the key, 0 for another option,
    NaN where not presented (and where omitted, with omit="missing").
    """
    _check_omit(omit)
    choices = np.asarray(choices)
    key = np.asarray(key)
    k = choices.shape[1]
    pts = np.ones(k) if points is None else np.asarray(points, dtype=np.float64)
    scores = np.multiply(choices == key[None, :], pts[None, :], dtype=np.float64)
    missing = choices == NOT_PRESENTED
    if omit == "missing":
        missing |= choices == OMITTED
    if missing.any():
        scores[missing] = np.nan
    return scores


def apply_omit_policy(scores: np.ndarray, omitted: np.ndarray | None, omit: str = "wrong") -> np.ndarray:
    """Apply the omit policy to a score matrix.

    scores: [N x k] float, NaN = not presented / not reached.
    omitted: [N x k] bool, True where the examinee saw the item and gave no
        answer (whatever ``scores`` holds there is ignored), or None.
    omit: "wrong" (omitted scores 0, the default) or "missing" (NaN, so the
        examinee drops out of that item's statistics).

    Returns a new [N x k] float64 array.
    """
    _check_omit(omit)
    out = np.array(scores, dtype=np.float64, copy=True)
    if omitted is not None:
        out[np.asarray(omitted, dtype=bool)] = 0.0 if omit == "wrong" else np.nan
    return out


def _check_omit(omit: str) -> None:
    if omit not in ("wrong", "missing"):
        raise ValueError(f"omit policy must be 'wrong' or 'missing', not {omit!r}")


def infer_max_points(scores: np.ndarray) -> np.ndarray:
    """[k] maximum points when none are given: 1 for a column of 0/1 (or
    all-missing) scores, otherwise the largest observed score."""
    scores = np.asarray(scores, dtype=np.float64)
    with np.errstate(all="ignore"):
        observed = np.where(np.isnan(scores), -np.inf, scores).max(axis=0)
    zero_one = np.all(np.isnan(scores) | (scores == 0) | (scores == 1), axis=0)
    return np.where(zero_one | ~np.isfinite(observed), 1.0, observed)


def _totals_and_mask(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Row sums and the NaN mask (None when nothing is NaN).

    A NaN anywhere makes its row's sum NaN, so in the common case of no NaN
    the sums themselves are the check and the matrix is read once.
    """
    k = scores.shape[1]
    totals = scores @ np.ones(k)
    if not np.isnan(totals).any():
        return totals, None
    nan = np.isnan(scores)
    totals = np.where(nan, 0.0, scores) @ np.ones(k)
    totals[nan.all(axis=1)] = np.nan
    return totals, nan


def total_scores(scores: np.ndarray) -> np.ndarray:
    """[N] sum of each examinee's item scores; NaN for an examinee with no
    score on any item (nobody to compare)."""
    return _totals_and_mask(np.asarray(scores, dtype=np.float64))[0]


def is_dichotomous(scores: np.ndarray, max_points: np.ndarray) -> np.ndarray:
    """[k] bool: every score of the item is 0 or its maximum (right/wrong)."""
    scores = np.asarray(scores, dtype=np.float64)
    mp = np.asarray(max_points, dtype=np.float64)[None, :]
    # NaN compares unequal to both, so count the non-NaN cells separately.
    hits = np.count_nonzero((scores == 0) | (scores == mp), axis=0)
    return hits == np.count_nonzero(~np.isnan(scores), axis=0)


# -- one pass of sums, shared by the item and reliability statistics -------------------------


@dataclass(frozen=True)
class _Moments:
    """Per-item sums over the examinees with a score on the item: n, sum x,
    sum x^2, and of the shifted total X - shift: sum X, sum X^2, sum xX;
    with upper-lower weights also each group's weight and sum x (nu, nl,
    su, sl). Sums of X - shift keep the sums-of-squares formulas free of
    cancellation."""

    n: np.ndarray
    sx: np.ndarray
    sxx: np.ndarray
    s_t: np.ndarray
    s_tt: np.ndarray
    s_xt: np.ndarray
    shift: float
    groups: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


def _moments(
    scores: np.ndarray,
    totals: np.ndarray,
    nan: np.ndarray | None,
    weights: tuple[np.ndarray, np.ndarray] | None = None,
    right_wrong: np.ndarray | None = None,
) -> _Moments:
    """All per-item sums from as few reads of the matrix as possible.

    The vectors to multiply the matrix by (ones, the total, the group
    weights) go side by side into one [N x c] matrix and meet the scores in
    a single ``scores.T @ V`` (a (c x N) @ (N x k) product is several times
    slower in OpenBLAS). ``right_wrong``: [k] max points where an item is
    known to score 0 or max, so sum x^2 = max * sum x without another pass.
    """
    n_rows, k = scores.shape
    valid_total = ~np.isnan(totals)
    shift = float(totals[valid_total].mean()) if valid_total.any() else 0.0
    tc = np.where(valid_total, totals - shift, 0.0)
    cols = [np.ones(n_rows), tc]
    if weights is not None:
        cols += list(weights)
    s0 = scores if nan is None else np.where(nan, 0.0, scores)
    prod = s0.T @ np.column_stack(cols)  # [k x c]
    sx, s_xt = prod[:, 0], prod[:, 1]
    if nan is None:
        n = np.full(k, float(n_rows))
        s_t, s_tt = np.full(k, tc.sum()), np.full(k, tc @ tc)
        group_n = [np.full(k, w.sum()) for w in weights] if weights is not None else None
    else:
        present = (~nan).astype(np.float64)
        pprod = present.T @ np.column_stack([np.ones(n_rows), tc, tc * tc, *cols[2:]])
        n, s_t, s_tt = pprod[:, 0], pprod[:, 1], pprod[:, 2]
        group_n = [pprod[:, 3], pprod[:, 4]] if weights is not None else None
    if right_wrong is not None:
        sxx = np.asarray(right_wrong, dtype=np.float64) * sx
        other = np.flatnonzero(np.isnan(right_wrong))
        if other.size:
            part = s0[:, other]
            sxx[other] = np.einsum("ij,ij->j", part, part)
    else:
        sxx = np.einsum("ij,ij->j", s0, s0)
    groups = None
    if weights is not None:
        groups = (group_n[0], group_n[1], prod[:, 2], prod[:, 3])
    return _Moments(n, sx, sxx, s_t, s_tt, s_xt, shift, groups)


def _variance(n, s, ss):
    """Sample variance (n - 1) from sums; NaN when n < 2; tiny residue -> 0."""
    with np.errstate(all="ignore"):
        var = (ss - s * s / n) / (n - 1)
        scale = ss / n
    var = np.where(n >= 2, var, np.nan)
    return np.where(np.abs(var) <= _ZERO_VARIANCE * np.maximum(scale, 1e-300), 0.0, var)


def _correlation(cov, var_a, var_b):
    with np.errstate(all="ignore"):
        r = cov / np.sqrt(var_a * var_b)
    r = np.where((var_a > 0) & (var_b > 0), r, np.nan)
    return np.clip(r, -1.0, 1.0)


def _item_parts(m: _Moments):
    """var(x), var(X), cov(x, X), var(R) per item (R = X - x, rest score)."""
    n = m.n
    var_x = _variance(n, m.sx, m.sxx)
    var_t = _variance(n, m.s_t, m.s_tt)
    with np.errstate(all="ignore"):
        cov = np.where(n >= 2, (m.s_xt - m.sx * m.s_t / n) / (n - 1), np.nan)
    # var(X - x) = var(X) - 2 cov(x, X) + var(x)
    var_r = var_t - 2 * cov + var_x
    scale = (m.s_tt + m.sxx) / np.maximum(n, 1)
    var_r = np.where(np.abs(var_r) <= _ZERO_VARIANCE * np.maximum(scale, 1e-300), 0.0, var_r)
    return var_x, var_t, cov, var_r


# -- item statistics -------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemStatistics:
    """Per-item classical statistics; every field is a [k] float64 array.

    n: examinees with a score on the item.
    mean: mean item score; p: facility = mean / max_points.
    sd: standard deviation of the item score (denominator n - 1).
    r_pb_rest: Pearson correlation of the item score with the rest score
        (total minus this item): the corrected item-total correlation.
    r_pb_total: the same with the total (item included), labelled as such:
        it is inflated by the item correlating with itself.
    r_bis: biserial from ``r_pb_rest`` (NaN unless the item is right/wrong).
    dichotomous: 1.0 where every score is 0 or the maximum, else 0.0.
    """

    n: np.ndarray
    mean: np.ndarray
    p: np.ndarray
    sd: np.ndarray
    r_pb_rest: np.ndarray
    r_pb_total: np.ndarray
    r_bis: np.ndarray
    dichotomous: np.ndarray


def _item_statistics(m: _Moments, mp: np.ndarray, dich: np.ndarray) -> ItemStatistics:
    var_x, var_t, cov, var_r = _item_parts(m)
    with np.errstate(all="ignore"):
        mean = np.where(m.n > 0, m.sx / m.n, np.nan)
        p = np.where(mp > 0, mean / mp, np.nan)
    r_rest = _correlation(cov - var_x, var_x, var_r)  # cov(x, X - x) = cov(x, X) - var(x)
    return ItemStatistics(
        n=m.n,
        mean=mean,
        p=p,
        sd=np.sqrt(var_x),
        r_pb_rest=r_rest,
        r_pb_total=_correlation(cov, var_x, var_t),
        r_bis=np.where(dich, biserial(r_rest, p), np.nan),
        dichotomous=dich.astype(np.float64),
    )


def item_statistics(scores: np.ndarray, max_points: np.ndarray, totals: np.ndarray | None = None) -> ItemStatistics:
    """Facility, sd, point-biserial (rest and total) and biserial per item.

    scores: [N x k] float, NaN = no score (not presented / not reached /
        omitted under the "missing" policy).
    max_points: [k] float > 0.
    totals: [N] float, default :func:`total_scores`.

    Each item uses the examinees with a score on it; their rest score is
    their total minus this item's score.
    """
    scores = np.asarray(scores, dtype=np.float64)
    mp = np.asarray(max_points, dtype=np.float64)
    own_totals, nan = _totals_and_mask(scores)
    totals = own_totals if totals is None else np.asarray(totals, dtype=np.float64)
    return _item_statistics(_moments(scores, totals, nan), mp, is_dichotomous(scores, mp))


def biserial(r_pb: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Biserial from point-biserial: r_pb * sqrt(p q) / phi(Phi^-1(p)).

    r_pb, p: [k] float. NaN where p is 0, 1 or NaN. Not clipped: a biserial
    above 1 says the normal-latent-variable assumption does not hold.
    """
    r_pb = np.asarray(r_pb, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    out = np.full(r_pb.shape, np.nan)
    for j in np.flatnonzero((p > 0) & (p < 1) & ~np.isnan(r_pb)):
        # k is small (items), so the stdlib inverse normal costs nothing.
        z = _STD_NORMAL.inv_cdf(float(p[j]))
        out[j] = r_pb[j] * math.sqrt(p[j] * (1 - p[j])) / _STD_NORMAL.pdf(z)
    return out


# -- upper-lower index -----------------------------------------------------------------------


def upper_lower_weights(totals: np.ndarray, fraction: float = UPPER_LOWER_FRACTION):
    """Membership weights of the upper and lower groups by total score.

    totals: [N] float (NaN = excluded, weight 0).
    fraction: share of examinees in each group (Kelley's 27%).

    Returns (upper, lower), each [N] float in [0, 1], each summing to
    exactly ``fraction * n`` over the n examinees with a total.

    Tie rule: examinees tied at a group's cut score share the places left
    in the group equally (a fractional weight), so each group is exactly
    27% of the examinees and the result never depends on row order.
    """
    totals = np.asarray(totals, dtype=np.float64)
    valid = ~np.isnan(totals)
    x = totals[valid]
    size = fraction * x.size
    upper = np.zeros(totals.shape)
    lower = np.zeros(totals.shape)
    if x.size == 0:
        return upper, lower
    # round() guards against 0.27 * 100 = 27.000000000000004 -> 28 places.
    places = max(1, math.ceil(round(size, 9)))
    upper[valid] = _group_weights(x, places, size, descending=True)
    lower[valid] = _group_weights(x, places, size, descending=False)
    return upper, lower


def _group_weights(x: np.ndarray, places: int, size: float, descending: bool) -> np.ndarray:
    if descending:
        cut = np.partition(x, x.size - places)[x.size - places]
        beyond = x > cut
    else:
        cut = np.partition(x, places - 1)[places - 1]
        beyond = x < cut
    tied = x == cut
    w = beyond.astype(np.float64)
    w[tied] = (size - beyond.sum()) / tied.sum()
    return w


def _group_weights_or_none(totals: np.ndarray, fraction: float):
    """Upper/lower weights, or None when the groups would be the same
    people (nobody has a total, or everybody has the same one)."""
    valid = ~np.isnan(totals)
    if not valid.any() or np.ptp(totals[valid]) == 0:
        return None
    return upper_lower_weights(totals, fraction)


def _upper_lower(m: _Moments, mp: np.ndarray) -> np.ndarray:
    if m.groups is None:
        return np.full(mp.shape, np.nan)
    nu, nl, su, sl = m.groups
    with np.errstate(all="ignore"):
        d = (su / nu - sl / nl) / mp
    return np.where((nu > 0) & (nl > 0), d, np.nan)


def upper_lower_index(
    scores: np.ndarray,
    max_points: np.ndarray,
    totals: np.ndarray | None = None,
    fraction: float = UPPER_LOWER_FRACTION,
) -> np.ndarray:
    """[k] upper-lower discrimination index D = p(upper) - p(lower).

    Groups are the top and bottom ``fraction`` (27%) of examinees by total
    score, with the tie rule of :func:`upper_lower_weights`; p is the mean
    item score / max points among the group's examinees who have a score on
    the item. NaN when all totals are equal (the groups are the same
    people) or a group has nobody with a score on the item.
    """
    scores = np.asarray(scores, dtype=np.float64)
    own_totals, nan = _totals_and_mask(scores)
    totals = own_totals if totals is None else np.asarray(totals, dtype=np.float64)
    weights = _group_weights_or_none(totals, fraction)
    m = _moments(scores, totals, nan, weights)
    return _upper_lower(m, np.asarray(max_points, dtype=np.float64))


# -- reliability -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reliability:
    """Internal-consistency reliability over the examinees with every item.

    n: number of those examinees (listwise).
    alpha: Cronbach's alpha, k/(k-1) (1 - sum var_j / var X); all variances
        with denominator n - 1. Negative values are kept.
    alpha_if_deleted: [k] alpha of the other k - 1 items (NaN when k < 3).
    kr20: alpha of the number-right score when every item is right/wrong
        (scores 0 or max); equals alpha exactly for 0/1 items. NaN otherwise.
    kr21: KR-21 on the number-right score, with the same denominator as
        KR-20 so that KR-21 <= KR-20 always holds. NaN unless right/wrong.
    """

    n: int
    alpha: float
    alpha_if_deleted: np.ndarray
    kr20: float
    kr21: float


def _alpha(k: int, n: int, var_x: np.ndarray, var_t: float, cov: np.ndarray):
    """alpha and alpha-if-deleted [k] from item variances, the total's
    variance and the item-total covariances, all over the same n rows."""
    alpha = math.nan
    sum_var = float(var_x.sum())
    if k >= 2 and n >= 2 and var_t > 0:
        alpha = k / (k - 1) * (1 - sum_var / var_t)
    aid = np.full(k, np.nan)
    if k >= 3 and n >= 2:
        var_rest = var_t - 2 * cov + var_x
        positive = var_rest > _ZERO_VARIANCE * max(var_t, float(var_x.max(initial=0)), 1e-300)
        with np.errstate(all="ignore"):
            aid = np.where(positive, (k - 1) / (k - 2) * (1 - (sum_var - var_x) / var_rest), np.nan)
    return alpha, aid


def _number_right_parts(right_totals: np.ndarray, var_items: np.ndarray, k: int):
    """KR-20 and KR-21 from number-right totals [n] and item variances [k]."""
    n = right_totals.size
    if k < 2 or n < 2:
        return math.nan, math.nan
    mean = float(right_totals.mean())
    dev = right_totals - mean
    var_pop = float(dev @ dev) / n
    if var_pop <= _ZERO_VARIANCE * max(float(np.mean(right_totals**2)), 1e-300):
        return math.nan, math.nan
    kr20 = k / (k - 1) * (1 - float(var_items.sum()) / (var_pop * n / (n - 1)))
    kr21 = k / (k - 1) * (1 - mean * (k - mean) / (k * var_pop))
    return kr20, kr21


def _reliability(scores, nan, mp, dich, moments: _Moments, totals) -> Reliability:
    """Listwise: over the rows with every item (all rows when nothing is NaN,
    and then the item sums already made are reused)."""
    k = scores.shape[1]
    if nan is None:
        s, m, t = scores, moments, totals
    else:
        s = scores[~nan.any(axis=1)]
        t = s.sum(axis=1)
        m = _moments(s, t, None)
    n = s.shape[0]
    if n == 0 or k == 0:
        return Reliability(n, math.nan, np.full(k, np.nan), math.nan, math.nan)
    var_x, var_t, cov, _ = _item_parts(m)
    alpha, aid = _alpha(k, n, var_x, float(var_t[0]), cov)
    kr20 = kr21 = math.nan
    if bool(dich.all()) and bool((mp > 0).all()):
        ones = bool((mp == 1).all())
        right = t if ones else s @ (1.0 / mp)
        kr20, kr21 = _number_right_parts(right, var_x / mp**2, k)
        if ones:
            kr20 = alpha  # the same formula; avoid a last-digit difference
    return Reliability(n=n, alpha=alpha, alpha_if_deleted=aid, kr20=kr20, kr21=kr21)


def reliability(scores: np.ndarray, max_points: np.ndarray | None = None) -> Reliability:
    """Alpha, alpha if item deleted, KR-20 and KR-21 (see :class:`Reliability`).

    scores: [N x k] float, NaN = no score; only complete rows are used.
    max_points: [k] float, needed for KR-20/21 (default: 1 per item).
    """
    scores = np.asarray(scores, dtype=np.float64)
    k = scores.shape[1]
    mp = np.ones(k) if max_points is None else np.asarray(max_points, dtype=np.float64)
    totals, nan = _totals_and_mask(scores)
    m = _moments(scores, totals, None) if nan is None else None
    return _reliability(scores, nan, mp, is_dichotomous(scores, mp), m, totals)


def cronbach_alpha(scores: np.ndarray) -> float:
    """Cronbach's alpha of [N x k] scores (listwise); NaN when undefined."""
    return reliability(scores).alpha


# -- all classical statistics at once --------------------------------------------------------


@dataclass(frozen=True)
class Classical:
    """Output of :func:`classical`: totals [N], item statistics, reliability
    and the upper-lower index [k]."""

    totals: np.ndarray
    items: ItemStatistics
    reliability: Reliability
    upper_lower: np.ndarray


def classical(
    scores: np.ndarray,
    max_points: np.ndarray,
    dichotomous: np.ndarray | None = None,
    fraction: float = UPPER_LOWER_FRACTION,
) -> Classical:
    """Item statistics, reliability and D from one set of passes.

    scores: [N x k] float, NaN = no score; max_points: [k].
    dichotomous: [k] bool if known (scores built from choices are right/
        wrong by construction), else checked.

    Without NaN the matrix is read twice: once for the row sums (which
    double as the NaN check), once for one product with [ones, total,
    upper weights, lower weights]; sums of squares of right/wrong items
    follow from their sums. That keeps a million rows well under a second.
    """
    scores = np.asarray(scores, dtype=np.float64)
    mp = np.asarray(max_points, dtype=np.float64)
    totals, nan = _totals_and_mask(scores)
    dich = is_dichotomous(scores, mp) if dichotomous is None else np.asarray(dichotomous, bool)
    weights = _group_weights_or_none(totals, fraction)
    m = _moments(scores, totals, nan, weights, right_wrong=np.where(dich, mp, np.nan))
    return Classical(
        totals=totals,
        items=_item_statistics(m, mp, dich),
        reliability=_reliability(scores, nan, mp, dich, m, totals),
        upper_lower=_upper_lower(m, mp),
    )


def standard_error_of_measurement(sd: float, alpha: float) -> float:
    """SEM = SD sqrt(1 - alpha); NaN when either is undefined (never clips:
    a negative alpha gives an SEM above the SD, which is the truth)."""
    if math.isnan(sd) or math.isnan(alpha):
        return math.nan
    return sd * math.sqrt(1 - alpha)


# -- the total-score distribution ------------------------------------------------------------


@dataclass(frozen=True)
class ScoreSummary:
    """Distribution of total scores over the n examinees who have one.

    sd uses n - 1; skewness and kurtosis are the sample estimators G1 and
    G2 (as in SAS, SPSS and Excel SKEW/KURT): G1 needs n >= 3, G2 n >= 4,
    both a non-zero variance.
    """

    n: int
    mean: float
    sd: float
    min: float
    max: float
    median: float
    skewness: float
    kurtosis: float


def describe_totals(totals: np.ndarray) -> ScoreSummary:
    """Summary of [N] total scores; NaN totals are left out."""
    totals = np.asarray(totals, dtype=np.float64)
    x = totals[~np.isnan(totals)]
    n = x.size
    if n == 0:
        nan = math.nan
        return ScoreSummary(0, nan, nan, nan, nan, nan, nan, nan)
    mean = float(x.mean())
    dev = x - mean
    m2 = float(np.mean(dev * dev))
    zero = m2 <= _ZERO_VARIANCE * max(float(np.mean(x * x)), 1e-300)
    sd = math.sqrt(m2 * n / (n - 1)) if n >= 2 else math.nan
    if zero and n >= 2:
        sd = 0.0
    skew = kurt = math.nan
    if not zero:
        dev2 = dev * dev  # products, not **: pow() is several times slower
        m3 = float(dev2 @ dev) / n
        m4 = float(dev2 @ dev2) / n
        if n >= 3:
            g1 = m3 / m2**1.5
            skew = g1 * math.sqrt(n * (n - 1)) / (n - 2)
        if n >= 4:
            g2 = m4 / m2**2 - 3
            kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6)
    return ScoreSummary(
        n=n,
        mean=mean,
        sd=sd,
        min=float(x.min()),
        max=float(x.max()),
        median=float(np.median(x)),
        skewness=skew,
        kurtosis=kurt,
    )


def score_histogram(totals: np.ndarray, max_bins: int = 101):
    """Histogram of total scores.

    totals: [N] float, NaN left out.
    Returns (low, high, count) arrays. When the totals take at most
    ``max_bins`` distinct values (the usual case: sums of item points) each
    value is its own bin with low == high; otherwise ``min(max_bins, 50)``
    equal-width bins [low, high), the last one closed.
    """
    totals = np.asarray(totals, dtype=np.float64)
    x = totals[~np.isnan(totals)]
    # Sums of decimal points (0.25, 0.1) carry binary rounding noise.
    values, counts = np.unique(np.round(x, 9), return_counts=True)
    if values.size <= max_bins:
        return values, values.copy(), counts
    counts, edges = np.histogram(x, bins=min(max_bins, 50))
    return edges[:-1], edges[1:], counts


# -- distractor analysis ---------------------------------------------------------------------


@dataclass(frozen=True)
class DistractorStatistics:
    """Per item and option ([k x m] float arrays; m = the most options).

    count: examinees choosing the option.
    proportion: count / examinees presented with the item (omitters stay
        in the denominator).
    mean_total: mean total score of the option's choosers (NaN if none).
    r_pb_rest: point-biserial of "chose this option" with the rest score
        (total minus the item), over the examinees presented with the item.
    omitted: [k] examinees presented with the item who gave no answer.
    presented: [k] examinees presented with the item.
    Options beyond an item's own n_options are NaN.
    """

    count: np.ndarray
    proportion: np.ndarray
    mean_total: np.ndarray
    r_pb_rest: np.ndarray
    omitted: np.ndarray
    presented: np.ndarray


def distractor_analysis(
    choices: np.ndarray,
    key: np.ndarray,
    n_options: np.ndarray | int,
    totals: np.ndarray,
    points: np.ndarray | None = None,
) -> DistractorStatistics:
    """Option-level statistics for multiple-choice items.

    choices: [N x k] int option index, OMITTED (-1), NOT_PRESENTED (-2).
    key: [k] int keyed option; n_options: [k] int (or one int for all).
    totals: [N] float total scores (from the scores of the same choices).
    points: [k] float score of the key (default 1), needed for the rest
        score: an examinee's item score is points for the key, else 0.

    One ``bincount`` per item and quantity: no [N x k x m] indicator array.
    """
    choices = np.asarray(choices)
    key = np.asarray(key, dtype=np.int64)
    k = choices.shape[1]
    n_opt = np.broadcast_to(np.asarray(n_options, dtype=np.int64), (k,))
    m = int(n_opt.max()) if k else 0
    pts = np.ones(k) if points is None else np.asarray(points, dtype=np.float64)
    totals = np.asarray(totals, dtype=np.float64)
    valid = ~np.isnan(totals)
    shift = float(totals[valid].mean()) if valid.any() else 0.0
    xc = np.where(valid, totals - shift, 0.0)
    xc2 = xc * xc
    vw = None if valid.all() else valid.astype(np.float64)

    count = np.full((k, m), np.nan)
    proportion = np.full((k, m), np.nan)
    mean_total = np.full((k, m), np.nan)
    r_rest = np.full((k, m), np.nan)
    omitted = np.zeros(k)
    presented = np.zeros(k)
    if choices.size:
        low, high = choices.min(axis=0), choices.max(axis=0)
        bad = np.flatnonzero((low < NOT_PRESENTED) | (high >= n_opt))
        if bad.size:
            j = int(bad[0])
            raise ValueError(f"item {j}: option index out of range 0..{n_opt[j] - 1}")
    bad = np.flatnonzero((key < 0) | (key >= n_opt))
    if bad.size:
        raise ValueError(f"item {bad[0]}: key {key[bad[0]]} out of range 0..{n_opt[bad[0]] - 1}")
    sum_tt_all = float(xc2.sum())
    for j, codes in enumerate(_item_columns(choices)):
        # code 0 = not presented, 1 = omitted, 2.. = options
        size = m + 2
        codes += 2
        cnt = np.bincount(codes, minlength=size).astype(np.float64)
        sx = np.bincount(codes, weights=xc, minlength=size)
        cv = cnt if vw is None else np.bincount(codes, weights=vw, minlength=size)
        score = np.zeros(size)  # item score of each code (not presented unused)
        score[2 + key[j]] = pts[j]
        use = slice(1, size)  # presented examinees: omitters and choosers
        n = cv[use].sum()
        # Sum of squared totals over the presented: all, minus the others.
        s_tt = sum_tt_all - (float(xc2[codes == 0].sum()) if cnt[0] else 0.0)
        s_r = (sx[use] - cv[use] * score[use]).sum()
        s_rr = s_tt - 2 * (score[use] * sx[use]).sum() + (cv[use] * score[use] ** 2).sum()
        presented[j] = cnt[use].sum()
        omitted[j] = cnt[1]
        o = slice(2, 2 + n_opt[j])
        count[j, : n_opt[j]] = cnt[o]
        with np.errstate(all="ignore"):
            proportion[j, : n_opt[j]] = cnt[o] / presented[j]
            mean_total[j, : n_opt[j]] = np.where(cv[o] > 0, sx[o] / cv[o] + shift, np.nan)
            n_o = cv[o]
            a_o = sx[o] - n_o * score[o]  # sum of rest scores of the choosers
            cov = a_o - n_o * s_r / n
            var_i = n_o - n_o * n_o / n
            var_r = s_rr - s_r * s_r / n
            r = cov / np.sqrt(var_i * var_r)
        zero_r = var_r <= _ZERO_VARIANCE * max(s_rr / max(n, 1), 1e-300)
        ok = (n_o > 0) & (n_o < n) & (not zero_r)
        r_rest[j, : n_opt[j]] = np.where(ok, np.clip(r, -1, 1), np.nan)
    return DistractorStatistics(count, proportion, mean_total, r_rest, omitted, presented)


def _item_columns(choices: np.ndarray, block: int = 16384):
    """Yield each item's column as a fresh contiguous intp array.

    Transposing in row blocks that fit in cache is several times faster
    than a whole-matrix transpose or strided column reads at a million rows.
    """
    n_rows, k = choices.shape
    if choices.flags.f_contiguous:
        for j in range(k):
            yield choices[:, j].astype(np.intp)
        return
    by_item = np.empty((k, n_rows), dtype=choices.dtype)
    for start in range(0, n_rows, block):
        by_item[:, start : start + block] = choices[start : start + block].T
    for j in range(k):
        yield by_item[j].astype(np.intp)


# -- score-group traces for charts -----------------------------------------------------------


def score_groups(totals: np.ndarray, groups: int = 5) -> np.ndarray:
    """[N] int group 0..groups-1 by total-score quantiles (-1 = no total).

    Tied totals stay in one group, so groups can differ in size or be empty.
    """
    totals = np.asarray(totals, dtype=np.float64)
    valid = ~np.isnan(totals)
    out = np.full(totals.shape, -1, dtype=np.int64)
    if not valid.any():
        return out
    cuts = np.quantile(totals[valid], np.arange(1, groups) / groups)
    out[valid] = np.searchsorted(cuts, totals[valid], side="left")
    return out


def option_trace(choices: np.ndarray, n_options: np.ndarray | int, totals: np.ndarray, groups: int = 5):
    """Share choosing each option within each total-score group.

    Returns (group_mean_total [groups], share [k x m x groups]); share is
    over the group's examinees presented with the item (NaN if none).
    """
    choices = np.asarray(choices)
    g = score_groups(totals, groups)
    k = choices.shape[1]
    n_opt = np.broadcast_to(np.asarray(n_options, dtype=np.int64), (k,))
    m = int(n_opt.max()) if k else 0
    totals = np.asarray(totals, dtype=np.float64)
    ok = g >= 0
    gsize = np.bincount(g[ok], minlength=groups).astype(np.float64)
    with np.errstate(all="ignore"):
        gmean = np.bincount(g[ok], weights=totals[ok], minlength=groups) / gsize
    share = np.full((k, m, groups), np.nan)
    for j in range(k):
        c = choices[ok, j].astype(np.intp)
        pres = c != NOT_PRESENTED
        npres = np.bincount(g[ok][pres], minlength=groups).astype(np.float64)
        cell = np.bincount(g[ok][c >= 0] * m + c[c >= 0], minlength=groups * m)
        with np.errstate(all="ignore"):
            share[j, : n_opt[j], :] = (cell.reshape(groups, m).T / npres)[: n_opt[j]]
    return gmean, share


def score_trace(scores: np.ndarray, max_points: np.ndarray, totals: np.ndarray, groups: int = 5):
    """Mean item score / max within each total-score group (empirical item
    characteristic curve). Returns (group_mean_total [groups], [k x groups])."""
    scores = np.asarray(scores, dtype=np.float64)
    mp = np.asarray(max_points, dtype=np.float64)
    totals = np.asarray(totals, dtype=np.float64)
    g = score_groups(totals, groups)
    onehot = (g[:, None] == np.arange(groups)[None, :]).astype(np.float64)
    nan = np.isnan(scores)
    present = (~nan).astype(np.float64)
    s0 = np.where(nan, 0.0, scores)
    with np.errstate(all="ignore"):
        gmean = (onehot.T @ np.nan_to_num(totals)) / onehot.sum(axis=0)
        curve = (onehot.T @ s0) / (onehot.T @ present) / mp[None, :]
    return gmean, curve.T


# -- flags -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagThresholds:
    """When an item is flagged (all configurable).

    too_easy: p above this (default 0.90).
    too_hard: p below this (default 0.20; near or below chance for 4-5
        option items).
    negative_discrimination: r_pb with the rest score below this (0).
    low_discrimination: r_pb with the rest score at or above
        ``negative_discrimination`` but below this (0.20, Ebel's "poor").
    nonfunctioning_distractor: a distractor chosen by fewer than this share
        of the examinees presented with the item (0.05, Haladyna & Downing).
    miskey_min_r: a distractor suggests a miskey when its r_pb with the rest
        score is above this (0) and above the key's.
    """

    too_easy: float = 0.90
    too_hard: float = 0.20
    negative_discrimination: float = 0.0
    low_discrimination: float = 0.20
    nonfunctioning_distractor: float = 0.05
    miskey_min_r: float = 0.0


FLAG_NAMES = (
    "possible_miskey",
    "negative_discrimination",
    "low_discrimination",
    "too_easy",
    "too_hard",
    "nonfunctioning_distractor",
)


def flag_items(
    p: np.ndarray,
    r_pb_rest: np.ndarray,
    distractors: DistractorStatistics | None = None,
    key: np.ndarray | None = None,
    thresholds: FlagThresholds | None = None,
) -> list[list[str]]:
    """Flags per item, in the order of FLAG_NAMES. An undefined statistic
    raises no flag (a zero-variance item is not "low discrimination")."""
    t = thresholds or FlagThresholds()
    p = np.asarray(p, dtype=np.float64)
    r = np.asarray(r_pb_rest, dtype=np.float64)
    flags: list[list[str]] = []
    for j in range(p.size):
        f: list[str] = []
        if distractors is not None and key is not None:
            rk = distractors.r_pb_rest[j]
            kj = int(key[j])
            others = [o for o in range(rk.size) if o != kj and not np.isnan(distractors.count[j, o])]
            key_r = rk[kj]
            if any(
                not np.isnan(rk[o]) and rk[o] > t.miskey_min_r and (np.isnan(key_r) or rk[o] > key_r) for o in others
            ):
                f.append("possible_miskey")
        if not np.isnan(r[j]):
            if r[j] < t.negative_discrimination:
                f.append("negative_discrimination")
            elif r[j] < t.low_discrimination:
                f.append("low_discrimination")
        if not np.isnan(p[j]):
            if p[j] > t.too_easy:
                f.append("too_easy")
            if p[j] < t.too_hard:
                f.append("too_hard")
        if distractors is not None and key is not None:
            prop = distractors.proportion[j]
            if any(
                o != int(key[j]) and not np.isnan(prop[o]) and prop[o] < t.nonfunctioning_distractor
                for o in range(prop.size)
            ):
                f.append("nonfunctioning_distractor")
        flags.append(f)
    return flags
