"""Item sets (testlets): one passage read for several child items.

The children of one passage are scored as items, and their item statistics
stay as :mod:`cbt.analysis.ctt` computes them. But they are not locally
independent: how well a student understood the passage moves all its
children together, beyond what the measured ability explains. Cronbach's
alpha over the children counts that shared passage effect as true-score
variance and so overstates reliability. Summing each set's children into one
unit (a testlet) and computing alpha over the units (sets and standalone
items) leaves the within-passage covariance out of the between-unit part
(Wainer & Kiely 1987; Sireci, Thissen & Wainer 1991). Both are reported,
side by side; the testlet alpha is the safer estimate.

Conventions, as in :mod:`cbt.analysis.ctt`:

- ``scores``: ``[examinees x items]`` float, ``NaN`` = no score on the item
  (not presented, not reached, or omitted under the ``missing`` policy).
- ``max_points``: ``[items]`` float, the maximum score of each item.
- ``sets``: ``[items]`` int, the set index ``0..s-1`` of each item, or
  :data:`STANDALONE` (-1) for an item in no set. Every index ``0..s-1`` has
  at least one item; a set's children need not be adjacent.

A set score is the sum of the set's children for an examinee who has a
score on every child, and ``NaN`` otherwise: when none of the children was
presented (the set was not on the form) and also when only some were (not
reached, or omitted under the ``missing`` policy). A sum over some of the
children is on a shorter scale than the set's maximum, and mixing such sums
with full ones would pull the set's mean, p and correlations towards the
examinees who stopped early. So such an examinee leaves the set's
statistics, as an examinee with no score leaves an item's, and is counted
(``n_partial``) so that the board sees how often it happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cbt.analysis import ctt

STANDALONE = -1


def check_sets(sets: np.ndarray, k: int) -> np.ndarray:
    """``sets`` as a [k] int64 array, or ValueError saying what to fix.

    sets: [k] int, set index 0..s-1 per item, STANDALONE (-1) for none.
    """
    arr = np.asarray(sets)
    if arr.ndim != 1 or arr.shape[0] != k:
        raise ValueError(f"sets must be one set index per item: {k} entries, not shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"sets must be whole numbers (set index, -1 = standalone), not {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < STANDALONE:
        raise ValueError(f"set index {int(arr.min())}: use 0..s-1 for a set, -1 for a standalone item")
    s = int(arr.max(initial=STANDALONE)) + 1
    empty = np.setdiff1d(np.arange(s), arr)
    if empty.size:
        raise ValueError(f"set index {int(empty[0])} has no item: number the sets 0..s-1 without gaps")
    return arr


def set_count(sets: np.ndarray) -> int:
    """Number of sets s (the standalone items are not a set)."""
    return int(np.max(sets, initial=STANDALONE)) + 1


def set_children(sets: np.ndarray) -> list[np.ndarray]:
    """Per set, the item indices of its children (ascending)."""
    sets = np.asarray(sets)
    return [np.flatnonzero(sets == j) for j in range(set_count(sets))]


def _membership(sets: np.ndarray) -> np.ndarray:
    """[k x s] float: 1 where the item is a child of the set."""
    return (sets[:, None] == np.arange(set_count(sets))[None, :]).astype(np.float64)


def _set_sums(scores: np.ndarray, sets: np.ndarray):
    """(set scores [N x s] with NaN unless complete, children scored [N x s],
    children per set [s]).

    Without NaN the matrix is read twice: once for the row sums, which are
    only the NaN check (as in ctt), once for the product with the membership.
    """
    member = _membership(sets)
    children = member.sum(axis=0)
    n_rows, k = scores.shape
    if not np.isnan(scores @ np.ones(k)).any():
        return scores @ member, np.broadcast_to(children, (n_rows, children.size)), children
    nan = np.isnan(scores)
    # Masked before the product: NaN * 0 is NaN, so one missing item would
    # otherwise spoil every set's sum in its row.
    sums = np.where(nan, 0.0, scores) @ member
    scored = (~nan).astype(np.float64) @ member
    return np.where(scored == children[None, :], sums, np.nan), scored, children


def set_scores(scores: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """Set scores: [N x s] float, the sum of each set's children per examinee.

    scores: [N x k] float, NaN = no score; sets: [k] int (STANDALONE = -1).
    NaN where the examinee lacks a score on any child of the set (none or
    only some presented; see the module's note).
    """
    scores = np.asarray(scores, dtype=np.float64)
    sets = check_sets(sets, scores.shape[1])
    return _set_sums(scores, sets)[0]


def set_max_points(max_points: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """[s] float: the maximum set score, the sum of its children's maxima."""
    mp = np.asarray(max_points, dtype=np.float64)
    sets = check_sets(sets, mp.shape[0])
    return mp @ _membership(sets)


@dataclass(frozen=True)
class SetStatistics:
    """Per-set statistics; every field is an [s] array.

    children: number of items in the set.
    max_points: the set's maximum score (sum of its children's maxima).
    n: examinees with a score on every child (they have a set score).
    n_partial: examinees with a score on some children but not all; they
        are left out of the statistics below.
    mean: mean set score; p: mean / max_points.
    sd: standard deviation of the set score (denominator n - 1).
    r_rest: Pearson correlation of the set score with the total minus the
        set score (the corrected set-total correlation: the set's
        discrimination, as r_pb_rest is an item's).
    alpha: Cronbach's alpha of the set's children, over the examinees with
        every child (internal consistency within the passage); NaN for a
        set of one child.
    """

    children: np.ndarray
    max_points: np.ndarray
    n: np.ndarray
    n_partial: np.ndarray
    mean: np.ndarray
    p: np.ndarray
    sd: np.ndarray
    r_rest: np.ndarray
    alpha: np.ndarray


def set_statistics(
    scores: np.ndarray,
    max_points: np.ndarray,
    sets: np.ndarray,
    totals: np.ndarray | None = None,
) -> SetStatistics:
    """Facility, spread, discrimination and inner alpha of each set.

    scores: [N x k] float, NaN = no score; max_points: [k] float > 0.
    sets: [k] int set index (STANDALONE = -1).
    totals: [N] float, the examinees' totals over all items (default
        :func:`ctt.total_scores`), from which each set's rest score is the
        total minus the set score.

    A set score is treated as one polytomous item, so the set's statistics
    are :func:`ctt.item_statistics` of the set scores against the totals,
    and the inner alpha is :func:`ctt.reliability` of the set's children.
    """
    return analyze_sets(scores, max_points, sets, totals)[0]


def testlet_units(scores: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """[N x u] unit scores: the s set scores, then the standalone items in
    their order (u = s + the number of standalone items). NaN as in
    :func:`set_scores` and ``scores``."""
    scores = np.asarray(scores, dtype=np.float64)
    sets = check_sets(sets, scores.shape[1])
    return _units(scores, sets, _set_sums(scores, sets)[0])


def _units(scores: np.ndarray, sets: np.ndarray, sums: np.ndarray) -> np.ndarray:
    return np.hstack([sums, scores[:, sets == STANDALONE]])


@dataclass(frozen=True)
class TestletReliability:
    """Cronbach's alpha over testlet units (see :func:`testlet_reliability`).

    n: examinees with a score on every item (listwise, as ctt.reliability:
        a unit is complete exactly when all its items are, so these are the
        same examinees as the alpha over the items).
    units: number of units (sets plus standalone items).
    alpha: alpha over the units; NaN when undefined (fewer than two units
        or examinees, or a zero total variance). Negative values are kept.
    """

    n: int
    units: int
    alpha: float


def testlet_reliability(scores: np.ndarray, sets: np.ndarray) -> TestletReliability:
    """Cronbach's alpha with each set summed into one unit.

    scores: [N x k] float, NaN = no score; sets: [k] int (STANDALONE = -1).

    alpha = u/(u-1) (1 - sum var(unit) / var(X)) over the units of
    :func:`testlet_units`; X is the same total as for the items' alpha. It
    is :func:`ctt.reliability` run on the units, so the same rows (complete
    ones), variances (n - 1) and undefined cases apply. Compare it with
    ``ctt.reliability(scores).alpha``, the alpha over the children as items.
    """
    return _testlet_reliability(testlet_units(scores, sets))


def _testlet_reliability(units: np.ndarray) -> TestletReliability:
    rel = ctt.reliability(units)
    return TestletReliability(n=rel.n, units=units.shape[1], alpha=rel.alpha)


def analyze_sets(
    scores: np.ndarray,
    max_points: np.ndarray,
    sets: np.ndarray,
    totals: np.ndarray | None = None,
) -> tuple[SetStatistics, TestletReliability]:
    """:func:`set_statistics` and :func:`testlet_reliability` from one
    computation of the set scores (arguments as for set_statistics)."""
    scores = np.asarray(scores, dtype=np.float64)
    mp = np.asarray(max_points, dtype=np.float64)
    sets = check_sets(sets, scores.shape[1])
    sums, scored, children = _set_sums(scores, sets)
    set_mp = mp @ _membership(sets)
    totals = ctt.total_scores(scores) if totals is None else np.asarray(totals, dtype=np.float64)
    stats = ctt.item_statistics(sums, set_mp, totals)
    alpha = [ctt.reliability(scores[:, c], mp[c]).alpha for c in set_children(sets)]
    per_set = SetStatistics(
        children=children.astype(np.int64),
        max_points=set_mp,
        n=stats.n.astype(np.int64),
        n_partial=((scored > 0) & (scored < children[None, :])).sum(axis=0),
        mean=stats.mean,
        p=stats.p,
        sd=stats.sd,
        r_rest=stats.r_pb_rest,
        alpha=np.array(alpha, dtype=np.float64),
    )
    return per_set, _testlet_reliability(_units(scores, sets, sums))
