"""The item-analysis report as one JSON-shaped dict, from arrays.

:func:`analyze_matrix` is what ``cbt analyze`` writes to OUT.json and what
the server shows on the exam board's pages: the same function, the same
numbers. Undefined statistics are ``None`` (JSON null), never 0.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence

import numpy as np

from cbt.analysis import ctt, dif, irt, testlets

TESTLET_NOTE = (
    "children of one passage are not independent; alpha on sets as testlets "
    "(each set summed into one unit) is the safer estimate"
)


class AnalysisInputError(ValueError):
    """The arrays cannot be analysed as asked; the message says why and
    ``code`` names the kind of problem for scripts ("analysis_input" unless
    a raise site says otherwise)."""

    def __init__(self, message: str, code: str = "analysis_input"):
        super().__init__(message)
        self.code = code


def _num(x) -> float | None:
    """A finite float, or None for NaN/inf (undefined)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def analyze_matrix(
    scores: np.ndarray | None = None,
    *,
    choices: np.ndarray | None = None,
    key: Sequence[int] | np.ndarray | None = None,
    options: Sequence[Sequence[str]] | None = None,
    omitted: np.ndarray | None = None,
    max_points: Sequence[float] | np.ndarray | None = None,
    item_ids: Sequence[str] | None = None,
    examinee_ids: Sequence[object] | None = None,
    group: np.ndarray | None = None,
    irt_model: str | None = None,
    omit: str = "wrong",
    thresholds: ctt.FlagThresholds | None = None,
    traces: bool = False,
    n_quad: int = irt.DEFAULT_QUADRATURE,
    sets: Sequence[str | int | None] | None = None,
) -> dict:
    """Classical statistics, flags and optionally IRT and DIF, as a dict.

    Give either
      scores: [N x k] float item scores, NaN = not presented / not reached,
        with omitted: [N x k] bool (True = seen but not answered), or
      choices: [N x k] int option index (ctt.OMITTED = -1 omitted,
        ctt.NOT_PRESENTED = -2 not presented / not reached) with
        key: [k] int keyed option index and
        options: per item the option labels, index-aligned (default "1".."m").
    max_points: [k] points of each item (with choices: the key's points,
        default 1; with scores: default ctt.infer_max_points).
    item_ids: [k] names (default "1".."k"); examinee_ids: [N] for abilities.
    group: [N] int 1 = focal, 0 = reference, -1 = neither -> adds "dif".
    irt_model: None, "rasch" or "2pl" -> adds "irt" (right/wrong items only).
    omit: "wrong" (default) or "missing".
    thresholds: flag thresholds (ctt.FlagThresholds defaults).
    traces: add per item "trace" (score-group curves for charts; not part
        of the JSON file).
    sets: [k] the item set (passage) of each item: a set id (text or whole
        number), None for a standalone item -> adds "sets" (per set
        statistics) and the testlet alpha to "test" (see testlets).

    Raises AnalysisInputError when the inputs do not fit together.
    """
    if (scores is None) == (choices is None):
        raise AnalysisInputError("give either scores or choices (with a key)")
    if omit not in ("wrong", "missing"):
        raise AnalysisInputError(f"omit must be 'wrong' or 'missing', not {omit!r}")
    if irt_model is not None and irt_model not in irt.MODELS:
        raise AnalysisInputError(f"irt_model must be one of {', '.join(irt.MODELS)}")

    if choices is not None:
        choices = np.asarray(choices)
        if choices.ndim != 2:
            raise AnalysisInputError("choices must be a 2-d [examinees x items] array")
        n_rows, k = choices.shape
        if key is None:
            raise AnalysisInputError("choices need a key (the keyed option index per item)")
        key_arr = np.asarray(key, dtype=np.int64)
        if key_arr.shape != (k,):
            raise AnalysisInputError(f"key has {key_arr.size} entries for {k} items")
        if options is None:
            n_opt = np.maximum(choices.max(axis=0, initial=-1).astype(np.int64), key_arr) + 1
            labels = [[str(o + 1) for o in range(int(n))] for n in n_opt]
        else:
            labels = [list(map(str, o)) for o in options]
            if len(labels) != k:
                raise AnalysisInputError(f"options given for {len(labels)} items, not {k}")
            n_opt = np.array([len(o) for o in labels], dtype=np.int64)
        mp = np.ones(k) if max_points is None else np.asarray(max_points, dtype=np.float64)
        s = ctt.score_choices(choices, key_arr, mp, omit)
        omitted_count = (choices == ctt.OMITTED).sum(axis=0)
    else:
        raw = np.asarray(scores, dtype=np.float64)
        if raw.ndim != 2:
            raise AnalysisInputError("scores must be a 2-d [examinees x items] array")
        n_rows, k = raw.shape
        om = None if omitted is None else np.asarray(omitted, dtype=bool)
        s = ctt.apply_omit_policy(raw, om, omit)
        mp = ctt.infer_max_points(s) if max_points is None else np.asarray(max_points, float)
        omitted_count = np.zeros(k, dtype=np.int64) if om is None else om.sum(axis=0)
        key_arr = None
    if mp.shape != (k,) or np.any(~(mp > 0)):
        raise AnalysisInputError("max_points must be one positive number per item")
    ids = [str(j + 1) for j in range(k)] if item_ids is None else [str(i) for i in item_ids]
    if len(ids) != k:
        raise AnalysisInputError(f"{len(ids)} item ids for {k} items")
    set_index, set_ids = (None, []) if sets is None else _set_index(sets, ids)

    # Scores made from choices are right/wrong by construction: no check.
    cl = ctt.classical(s, mp, dichotomous=np.ones(k, bool) if choices is not None else None)
    totals, stats, rel, d_index = cl.totals, cl.items, cl.reliability, cl.upper_lower
    summary = ctt.describe_totals(totals)
    distractors = None
    if choices is not None:
        distractors = ctt.distractor_analysis(choices, key_arr, n_opt, totals, mp)
    flags = ctt.flag_items(stats.p, stats.r_pb_rest, distractors, key_arr, thresholds)
    low, high, counts = ctt.score_histogram(totals)

    report: dict = {
        "examinees": int(n_rows),
        "items_count": int(k),
        "omit_policy": omit,
        "flag_thresholds": dataclasses.asdict(thresholds or ctt.FlagThresholds()),
        "test": {
            "n": summary.n,
            "mean": _num(summary.mean),
            "sd": _num(summary.sd),
            "min": _num(summary.min),
            "max": _num(summary.max),
            "median": _num(summary.median),
            "alpha": _num(rel.alpha),
            "kr20": _num(rel.kr20),
            "kr21": _num(rel.kr21),
            "sem": _num(ctt.standard_error_of_measurement(summary.sd, rel.alpha)),
            "skewness": _num(summary.skewness),
            "kurtosis": _num(summary.kurtosis),
            "reliability_n": rel.n,
            "score_histogram": [
                {"low": float(lo), "high": float(hi), "count": int(c)}
                for lo, hi, c in zip(low, high, counts, strict=True)
            ],
        },
        "items": [],
    }
    for j in range(k):
        item = {
            "id": ids[j],
            "max_points": float(mp[j]),
            "n": int(stats.n[j]),
            "p": _num(stats.p[j]),
            "sd": _num(stats.sd[j]),
            "r_pb": _num(stats.r_pb_rest[j]),
            "r_pb_total": _num(stats.r_pb_total[j]),
            "r_bis": _num(stats.r_bis[j]),
            "d_upper_lower": _num(d_index[j]),
            "alpha_if_deleted": _num(rel.alpha_if_deleted[j]),
            "omitted": int(omitted_count[j]),
        }
        if distractors is not None:
            item["options"] = [
                {
                    "option": labels[j][o],
                    "is_key": o == int(key_arr[j]),
                    "count": int(distractors.count[j, o]),
                    "proportion": _num(distractors.proportion[j, o]),
                    "r_pb_rest": _num(distractors.r_pb_rest[j, o]),
                    "mean_total": _num(distractors.mean_total[j, o]),
                }
                for o in range(int(n_opt[j]))
            ]
        item["flags"] = flags[j]
        report["items"].append(item)

    if set_index is not None:
        report["sets"], testlet = _sets_section(s, mp, set_index, set_ids, ids, totals, summary.sd)
        report["test"].update(testlet)
    if irt_model is not None:
        report["irt"] = _irt_section(s, mp, stats, ids, examinee_ids, irt_model, n_quad)
    if group is not None:
        report["dif"] = _dif_section(s, mp, np.asarray(group), ids)
    if traces:
        gmean, curve = ctt.score_trace(s, mp, totals)
        for j, item in enumerate(report["items"]):
            item["trace"] = {"group_mean_total": [_num(x) for x in gmean], "mean_score": [_num(x) for x in curve[j]]}
        if choices is not None:
            _, share = ctt.option_trace(choices, n_opt, totals)
            for j, item in enumerate(report["items"]):
                item["trace"]["options"] = {labels[j][o]: [_num(x) for x in share[j, o]] for o in range(int(n_opt[j]))}
    return report


def _set_index(sets, ids: list[str]) -> tuple[np.ndarray, list[str]]:
    """The set index per item ([k] int, testlets.STANDALONE for None) and
    the sets' ids in order of first appearance, or AnalysisInputError."""
    k = len(ids)
    how = "give one set id per item (a text or whole number; None for an item in no set)"
    if isinstance(sets, str | bytes) or not isinstance(sets, Sequence | np.ndarray):
        raise AnalysisInputError(f"sets must be a list: {how}", "bad_sets")
    if isinstance(sets, np.ndarray) and sets.ndim != 1:
        raise AnalysisInputError(f"sets has shape {sets.shape}: {how}", "bad_sets")
    if len(sets) != k:
        raise AnalysisInputError(f"sets has {len(sets)} entries for {k} items: {how}", "bad_sets")
    index = np.full(k, testlets.STANDALONE, dtype=np.int64)
    order: dict[str, int] = {}
    spelt: dict[str, object] = {}
    for j, raw in enumerate(sets):
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, str | numbers.Integral):
            raise AnalysisInputError(f"item {ids[j]}: set id {raw!r} is not a text or whole number; {how}", "bad_sets")
        if isinstance(raw, numbers.Integral) and raw < 0:
            # testlets' index arrays mark a standalone item -1; taken here as
            # an id, it would quietly make the standalone items one set.
            raise AnalysisInputError(
                f"item {ids[j]}: set id {raw} is negative; use None for an item in no set", "bad_sets"
            )
        name = str(raw)
        if not name.strip():
            raise AnalysisInputError(f"item {ids[j]}: empty set id; use None for an item in no set", "bad_sets")
        if name in spelt and spelt[name] != raw:
            raise AnalysisInputError(
                f"set ids {spelt[name]!r} and {raw!r} both read {name!r} in the report; spell each set one way",
                "bad_sets",
            )
        spelt[name] = raw
        index[j] = order.setdefault(name, len(order))
    return index, list(order)


def _sets_section(s, mp, set_index, set_ids, ids, totals, sd) -> tuple[list[dict], dict]:
    """Per set statistics, and the testlet alpha's keys for "test"."""
    per_set, rel = testlets.analyze_sets(s, mp, set_index, totals)
    testlet = {
        "testlet_alpha": _num(rel.alpha),
        "testlet_units": rel.units,
        "testlet_sem": _num(ctt.standard_error_of_measurement(sd, rel.alpha)),
        "testlet_note": TESTLET_NOTE,
    }
    children = testlets.set_children(set_index)
    per_set_rows = [
        {
            "id": set_ids[j],
            "items": [ids[c] for c in children[j]],
            "children": int(per_set.children[j]),
            "max_points": float(per_set.max_points[j]),
            "n": int(per_set.n[j]),
            "n_partial": int(per_set.n_partial[j]),
            "mean": _num(per_set.mean[j]),
            "p": _num(per_set.p[j]),
            "sd": _num(per_set.sd[j]),
            "r_rest": _num(per_set.r_rest[j]),
            "alpha": _num(per_set.alpha[j]),
        }
        for j in range(len(set_ids))
    ]
    return per_set_rows, testlet


def _irt_section(s, mp, stats, ids, examinee_ids, model, n_quad) -> dict:
    partial = [ids[j] for j in range(len(ids)) if not stats.dichotomous[j]]
    if partial:
        raise AnalysisInputError(f"IRT here fits right/wrong items only; partial-credit item(s): {', '.join(partial)}")
    fit = irt.fit(s / mp[None, :], model, n_quad=n_quad)
    n_rows = s.shape[0]
    eids = list(range(1, n_rows + 1)) if examinee_ids is None else list(examinee_ids)
    return {
        "model": model,
        "loglik": _num(fit.loglik),
        "converged": fit.converged,
        "iterations": fit.iterations,
        "quadrature_points": int(fit.nodes.size),
        "items": [
            {
                "id": ids[j],
                "a": _num(fit.a[j]),
                "b": _num(fit.b[j]),
                "se_a": _num(fit.se_a[j]),
                "se_b": _num(fit.se_b[j]),
            }
            for j in range(len(ids))
        ],
        "abilities": [{"id": eids[i], "eap": _num(fit.theta[i]), "se": _num(fit.theta_se[i])} for i in range(n_rows)],
    }


def _dif_section(s, mp, group, ids) -> list[dict]:
    mh = dif.mantel_haenszel(s, group, mp)
    return [
        {
            "id": ids[j],
            "mh_alpha": _num(mh.alpha[j]),
            "mh_d_dif": _num(mh.d_dif[j]),
            "se_d_dif": _num(mh.se_d_dif[j]),
            "chi2": _num(mh.chi2[j]),
            "p_value": _num(mh.p_value[j]),
            "ets_class": mh.ets_class[j],
            "n_reference": mh.n_reference,
            "n_focal": mh.n_focal,
        }
        for j in range(len(ids))
    ]
