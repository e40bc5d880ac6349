"""Results of an exam: the examinee x item matrix, the item analysis stored
per item version per administration, and the gradebook export.

No aiohttp here: the exam board's pages (cbt.workspace.board) and the CLI
(`cbt exam analyze`, `cbt exam results`) call these functions.

The matrix is keyed by bank item (``bank_items.id``), not by the form's
question refs: the same item is "q3" on one form and "q17" on another.
Single-choice answers are mapped back to the bank's own option ids (the
form's ``option_order`` / ``option_aliases``), so the option table of an
item adds up across forms.

Two things on a form shape the analysis beyond the scores. A child of an
item set carries its set ("R1@1"): the report then has per-set statistics
and the testlet alpha (docs/item-analysis.md, "Passages (item sets)"). A
trial question (a ``scored: false`` row) is scored but in no candidate's
total: the totals every item is correlated with, the test's summary and its
reliability are over the questions that counted, and a trial question's own
statistics are taken against that total (see :func:`analyze`). Whether a
question counted is a property of the candidate's form, not of the item: a
trial row and a scored row of the same topic and level draw from one pool,
so an item can be a trial question on one form and count on another.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import numpy as np

from cbt import bank, exams, times
from cbt.analysis import AnalysisInputError, analyze_matrix, ctt, irt, testlets
from cbt.platform.errors import Conflict
from cbt.roster import safe_cell
from cbt.scoring import round_half_up

if TYPE_CHECKING:
    from cbt.heads import SignedHead

# The columns stored per item in item_stats, straight from the report.
STAT_COLUMNS = ("n", "p", "r_pb", "r_pb_total", "r_bis", "d_upper_lower", "alpha_if_deleted", "omitted")


@dataclasses.dataclass
class ExamMatrix:
    """Submitted attempts of one exam, one row per candidate (by code), one
    column per distinct bank item (by pk, ascending).

    scores: [N x k] item scores, NaN where the item was not on the
      candidate's form (or is an essay not marked yet).
    omitted: [N x k] True where the item was shown and left unanswered.
    max_points: [k] the item's points on the forms.
    choices: [N x k] int option index for single-choice items (bank option
      order; ctt.OMITTED, ctt.NOT_PRESENTED), ctt.NOT_PRESENTED elsewhere.
    single: [k] True for single-choice items; key: [k] keyed option index
      (0 for others); options: [k] the bank's option ids (empty for others).
    """

    candidate_codes: list[str]
    item_pks: list[int]
    item_labels: list[str]  # "ITEM-ID@version"
    item_types: list[str]
    scores: np.ndarray
    omitted: np.ndarray
    max_points: np.ndarray
    choices: np.ndarray
    single: np.ndarray
    key: np.ndarray
    options: list[list[str]]
    # The bank item pks on each candidate's form, sorted (None: infer from
    # the non-NaN scores). Candidates with the same tuple sat the same form.
    form_items: list[tuple[int, ...]] | None = None
    # [N x k] True where the item was on the candidate's form as a trial
    # question: scored, but not in the candidate's total (None: no trials).
    trial: np.ndarray | None = None
    # [k] the set key ("R1@1") of each child of an item set, None for a
    # standalone item (None: no sets).
    item_sets: list[str | None] | None = None


def _is_omitted(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


async def exam_matrix(conn: asyncpg.Connection, exam_id: int) -> ExamMatrix:
    """The score matrix of the exam's submitted attempts (see ExamMatrix)."""
    attempts = await conn.fetch(
        "SELECT a.id, c.code, f.form FROM attempts a JOIN candidates c ON c.id = a.candidate_id "
        "JOIN candidate_forms f ON f.candidate_id = a.candidate_id "
        "WHERE a.exam_id = $1 AND a.status = 'submitted' ORDER BY c.code",
        exam_id,
    )
    forms = [json.loads(a["form"]) for a in attempts]
    points: dict[int, float] = {}
    set_of: dict[int, str] = {}
    for form in forms:
        for section in form["sections"]:
            for fi in section["items"]:
                points[fi["pk"]] = max(points.get(fi["pk"], 0.0), float(Decimal(str(fi["points"]))))
                if fi.get("set_key") is not None:
                    set_of[fi["pk"]] = fi["set_key"]  # a bank item version is a child of one set version
    pks = sorted(points)
    col = {pk: j for j, pk in enumerate(pks)}
    items = {pk: bank.item_from_source(source) for pk, source in (await bank.item_sources(conn, pks)).items()}
    types = [items[pk].type.value for pk in pks]
    single = np.array([t == "single" for t in types], dtype=bool)
    options = [[o.id for o in items[pk].options] if single[j] else [] for j, pk in enumerate(pks)]
    key = np.array(
        [options[j].index(items[pk].correct_option_ids[0]) if single[j] else 0 for j, pk in enumerate(pks)],
        dtype=np.int64,
    )

    n, k = len(attempts), len(pks)
    scores = np.full((n, k), np.nan)
    omitted = np.zeros((n, k), dtype=bool)
    trial = np.zeros((n, k), dtype=bool)
    choices = np.full((n, k), ctt.NOT_PRESENTED, dtype=np.int64)
    responses = await conn.fetch(
        "SELECT attempt_id, item_ref, value, score FROM responses WHERE attempt_id = ANY($1::bigint[])",
        [a["id"] for a in attempts],
    )
    by_attempt: dict[int, dict[str, asyncpg.Record]] = {}
    for r in responses:
        by_attempt.setdefault(r["attempt_id"], {})[r["item_ref"]] = r
    for i, (a, form) in enumerate(zip(attempts, forms, strict=True)):
        answers = by_attempt.get(a["id"], {})
        for section in form["sections"]:
            for fi in section["items"]:
                j = col[fi["pk"]]
                trial[i, j] = fi.get("scored", True) is False
                r = answers.get(fi["ref"])
                value = json.loads(r["value"]) if r is not None and r["value"] is not None else None
                blank = _is_omitted(value)
                if r is not None and r["score"] is not None:
                    scores[i, j] = float(r["score"])
                elif blank:
                    scores[i, j] = 0.0  # never answered, never scored: omitted = wrong
                # else: an essay waiting for its mark stays NaN (not scored yet)
                omitted[i, j] = blank and not np.isnan(scores[i, j])
                if single[j]:
                    if blank:
                        choices[i, j] = ctt.OMITTED
                    else:
                        back = dict(zip(fi["option_aliases"], fi["option_order"], strict=True))
                        original = back.get(value)
                        choices[i, j] = options[j].index(original) if original in options[j] else ctt.OMITTED
    return ExamMatrix(
        candidate_codes=[a["code"] for a in attempts],
        item_pks=pks,
        item_labels=[f"{items[pk].id}@{items[pk].version}" for pk in pks],
        item_types=types,
        scores=scores,
        omitted=omitted,
        max_points=np.array([points[pk] for pk in pks]),
        choices=choices,
        single=single,
        key=key,
        options=options,
        form_items=[tuple(sorted({fi["pk"] for sec in f["sections"] for fi in sec["items"]})) for f in forms],
        trial=trial if trial.any() else None,
        item_sets=[set_of.get(pk) for pk in pks] if set_of else None,
    )


def analyze(m: ExamMatrix, thresholds: ctt.FlagThresholds | None = None) -> dict:
    """analyze_matrix on the scores that counted, plus the option table of
    every single-choice item (against the same totals) and its flags, the
    exam's item sets and its trial questions.

    A candidate's total is the sum of the scores that counted in their
    result: trial questions are left out. Everything compared with a total
    uses it: the summary, alpha and the testlet alpha (over the questions
    that counted), the upper-lower groups, the option tables.

    An item that was a trial question for some candidates gets its row from
    every candidate who had it, counted or not: that is how a new item gets
    statistics before it counts. Its rest score is the total minus its own
    score where it counted, and the whole total where it did not (the total
    holds no part of it there). So a trial question's r_pb is its
    correlation with the scored total; its r_pb_total, the correlation with
    the total as if it had counted; it has no alpha if deleted, being in no
    alpha. Such an item gets ``trial_n``, the number of candidates who had
    it as a trial question; a set with trial children, the same.
    """
    cols = _scored_columns(m)  # drop items nobody has a score on (unmarked essays)
    if len(m.candidate_codes) == 0 or cols.size == 0:
        raise Conflict("no_results", "no submitted attempts with scores yet: nothing to analyse")
    trial = _trial(m)[:, cols]
    raw, om, mp = m.scores[:, cols], m.omitted[:, cols], m.max_points[cols]
    # Positions (in cols) of the items that counted for at least one candidate.
    op = np.flatnonzero(~np.all(np.isnan(raw) | trial, axis=0))
    if op.size == 0:
        raise Conflict(
            "no_results",
            "only trial questions have scores yet: no total to analyse them against; analyse again when"
            " the scored questions are marked",
        )
    labels = [m.item_labels[j] for j in cols]
    in_sets = m.item_sets is not None and any(m.item_sets[j] is not None for j in cols[op])
    try:
        report = analyze_matrix(
            np.where(trial, np.nan, raw)[:, op],
            omitted=(om & ~trial)[:, op],
            max_points=mp[op],
            item_ids=[labels[c] for c in op],
            examinee_ids=m.candidate_codes,
            thresholds=thresholds,
            sets=[m.item_sets[j] for j in cols[op]] if in_sets else None,
        )
    except AnalysisInputError as e:
        raise Conflict("analysis_failed", str(e)) from None
    sc = ctt.apply_omit_policy(raw, om, report["omit_policy"])  # every candidate who had the item
    counted = np.where(trial, np.nan, sc)
    totals = ctt.total_scores(counted[:, op])  # the totals analyze_matrix used
    items = {}
    for it, c in zip(report["items"], op, strict=True):
        it["pk"] = m.item_pks[cols[c]]
        it["type"] = m.item_types[cols[c]]
        items[int(c)] = it
    single_op = [int(c) for c in op if m.single[cols[c]]]
    if single_op:
        js = cols[single_op]
        n_opt = np.array([len(m.options[j]) for j in js], dtype=np.int64)
        choices = np.where(trial[:, single_op], ctt.NOT_PRESENTED, m.choices[:, js])
        d = ctt.distractor_analysis(choices, m.key[js], n_opt, totals, mp[single_op])
        _add_options(m, [items[c] for c in single_op], js, d, thresholds)
    _add_trials(m, cols, items, sc, trial, om, totals, thresholds)
    report["items"] = [items[c] for c in sorted(items)]
    report["items_count"] = len(report["items"])
    trial_items = sum(1 for it in report["items"] if "trial_n" in it)
    if trial_items:
        report["trial_items"] = trial_items
    if m.item_sets is not None and any(m.item_sets[j] is not None for j in cols):
        report["sets"] = _sets_with_trials(m, cols, sc, trial, totals, report.get("sets", []), labels)
    report["test"].update(form_reliability(m, cols, counted, mp))
    report["test"]["irt_reliability"] = rasch_reliability(counted[:, op], mp[op], [labels[c] for c in op])
    return report


def _trial(m: ExamMatrix) -> np.ndarray:
    return np.zeros(m.scores.shape, dtype=bool) if m.trial is None else np.asarray(m.trial, dtype=bool)


def _add_options(m: ExamMatrix, rows: list[dict], js, d: ctt.DistractorStatistics, thresholds) -> None:
    """The option table of single-choice items (columns js of m) and their
    flags from the distractor statistics d (one row of d per item)."""
    p = np.array([_nan(it["p"]) for it in rows])
    r = np.array([_nan(it["r_pb"]) for it in rows])
    flags = ctt.flag_items(p, r, d, m.key[js], thresholds)
    for s, (it, j) in enumerate(zip(rows, js, strict=True)):
        it["options"] = [
            {
                "option": m.options[j][o],
                "is_key": o == int(m.key[j]),
                "count": int(d.count[s, o]),
                "proportion": _num(d.proportion[s, o]),
                "r_pb_rest": _num(d.r_pb_rest[s, o]),
                "mean_total": _num(d.mean_total[s, o]),
            }
            for o in range(len(m.options[j]))
        ]
        it["flags"] = flags[s]


def _add_trials(m, cols, items, sc, trial, om, totals, thresholds) -> None:
    """Rows for the items that were a trial question for some candidate,
    from every candidate who had them (see :func:`analyze`): new rows, or
    replacing those made from the candidates for whom they counted."""
    has_total = ~np.isnan(totals)
    pos = np.flatnonzero((trial & ~np.isnan(sc) & has_total[:, None]).any(axis=0))
    if pos.size == 0:
        return
    x = np.where(has_total[:, None], sc[:, pos], np.nan)
    counted = ~trial[:, pos]
    mp = m.max_points[cols[pos]]
    st, d_index = trial_item_statistics(x, counted, mp, totals)
    for t, c in enumerate(pos):
        j = cols[c]
        row = {
            "id": m.item_labels[j],
            "max_points": float(mp[t]),
            "n": int(st.n[t]),
            "p": _num(st.p[t]),
            "sd": _num(st.sd[t]),
            "r_pb": _num(st.r_pb_rest[t]),
            "r_pb_total": _num(st.r_pb_total[t]),
            "r_bis": _num(st.r_bis[t]),
            "d_upper_lower": _num(d_index[t]),
            # Only the alpha of the questions that counted exists; a trial question is in none.
            "alpha_if_deleted": items[int(c)]["alpha_if_deleted"] if int(c) in items else None,
            "omitted": int((om[:, c] & has_total).sum()),
        }
        if m.single[j]:
            choices = np.where(has_total[:, None], m.choices[:, [j]], ctt.NOT_PRESENTED)
            # The rest score as above: the total, plus the item's own score where it did not count.
            rest_total = totals + np.where(counted[:, t], 0.0, np.nan_to_num(x[:, t]))
            n_opt = np.array([len(m.options[j])])
            d = ctt.distractor_analysis(choices, m.key[[j]], n_opt, rest_total, mp[[t]])
            # mean_total: of the totals the candidates had, not of the rest-score helper.
            mean = ctt.distractor_analysis(choices, m.key[[j]], n_opt, totals, mp[[t]]).mean_total
            _add_options(m, [row], [j], dataclasses.replace(d, mean_total=mean), thresholds)
        else:
            row["flags"] = ctt.flag_items(st.p[[t]], st.r_pb_rest[[t]], thresholds=thresholds)[0]
        row.update(pk=m.item_pks[j], type=m.item_types[j], trial_n=int((trial[:, c] & ~np.isnan(x[:, t])).sum()))
        items[int(c)] = row


def trial_item_statistics(
    scores: np.ndarray, counted: np.ndarray, max_points: np.ndarray, totals: np.ndarray
) -> tuple[ctt.ItemStatistics, np.ndarray]:
    """Item statistics of items that did not count in every candidate's total.

    scores: [N x t] item scores of every candidate who had the item, NaN =
        not on the form or no score; counted: [N x t] bool, True where the
        score counted in the candidate's total; max_points: [t];
        totals: [N] the totals over the scores that counted (NaN = none:
        the row is left out).

    The rest score of candidate i on item j is totals[i] - scores[i, j]
    where the score counted and totals[i] where it did not, so r_pb_rest is
    the corrected item-total correlation of ctt.item_statistics in both
    cases; r_pb_total correlates with the total as if the item had counted
    for everyone (totals + the score where it did not). Returns the
    statistics ([t] arrays) and the upper-lower index [t] by ``totals``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    totals = np.asarray(totals, dtype=np.float64)
    mp = np.asarray(max_points, dtype=np.float64)
    x = np.where(np.isnan(totals)[:, None], np.nan, scores)
    parts = []
    for j in range(x.shape[1]):
        # item_statistics' rest is "its totals minus the item": give it the
        # total with the item's score added back where it did not count.
        with_item = totals + np.where(counted[:, j], 0.0, np.nan_to_num(x[:, j]))
        parts.append(ctt.item_statistics(x[:, [j]], mp[[j]], with_item))
    stats = ctt.ItemStatistics(
        **{f.name: np.concatenate([getattr(s, f.name) for s in parts]) for f in dataclasses.fields(ctt.ItemStatistics)}
    )
    return stats, ctt.upper_lower_index(x, mp, totals)


def _sets_with_trials(m, cols, sc, trial, totals, op_rows: list[dict], labels: list[str]) -> list[dict]:
    """Every set's row, in the order of its first child: the one made by
    analyze_matrix when the set always counted, else one from every
    candidate who had the set, its rest score taken as for trial items."""
    made = {row["id"]: row for row in op_rows}
    children: dict[str, list[int]] = {}
    for c, j in enumerate(cols):
        if m.item_sets[j] is not None:
            children.setdefault(m.item_sets[j], []).append(c)
    has_total = ~np.isnan(totals)
    out = []
    for key, ch in children.items():
        had_trial = (trial[:, ch] & ~np.isnan(sc[:, ch])).any(axis=1) & has_total
        if not had_trial.any():
            out.append(made[key])
            continue
        cs = np.where(has_total[:, None], sc[:, ch], np.nan)
        one = np.zeros(len(ch), dtype=np.int64)
        set_score = testlets.set_scores(cs, one)[:, 0]
        counted = ~trial[:, ch].any(axis=1)
        with_set = totals + np.where(counted, 0.0, np.nan_to_num(set_score))
        st = testlets.set_statistics(cs, m.max_points[cols[ch]], one, with_set)
        out.append(
            {
                "id": key,
                "items": [labels[c] for c in ch],
                "children": int(st.children[0]),
                "max_points": float(st.max_points[0]),
                "n": int(st.n[0]),
                "n_partial": int(st.n_partial[0]),
                "mean": _num(st.mean[0]),
                "p": _num(st.p[0]),
                "sd": _num(st.sd[0]),
                "r_rest": _num(st.r_rest[0]),
                "alpha": _num(st.alpha[0]),
                "trial_n": int(had_trial.sum()),
            }
        )
    return out


def _scored_columns(m: ExamMatrix) -> np.ndarray:
    return np.flatnonzero(~np.all(np.isnan(m.scores), axis=0))


def item_traces(m: ExamMatrix, item_pk: int, omit: str = "wrong") -> dict | None:
    """The chart data of one item, against the same totals as :func:`analyze`
    (the scores that counted): {"group_mean_total", "mean_score"} by
    total-score fifth, and for a single-choice item "options": {option id:
    share choosing by fifth}. None when the item has no scores."""
    cols = _scored_columns(m)
    if item_pk not in m.item_pks or m.item_pks.index(item_pk) not in cols:
        return None
    j = m.item_pks.index(item_pk)
    scores = ctt.apply_omit_policy(m.scores[:, cols], m.omitted[:, cols], omit)
    totals = ctt.total_scores(np.where(_trial(m)[:, cols], np.nan, scores))
    c = int(np.flatnonzero(cols == j)[0])
    gmean, curve = ctt.score_trace(scores[:, [c]], m.max_points[[j]], totals)
    trace = {"group_mean_total": [_num(x) for x in gmean], "mean_score": [_num(x) for x in curve[0]]}
    if m.single[j]:
        _, share = ctt.option_trace(m.choices[:, [j]], len(m.options[j]), totals)
        trace["options"] = {o: [_num(x) for x in share[0, i]] for i, o in enumerate(m.options[j])}
    return trace


def form_reliability(m: ExamMatrix, cols: np.ndarray, scores: np.ndarray, max_points: np.ndarray) -> dict:
    """Alpha, KR-20 and SEM per form: candidates are grouped by the set of
    items that counted on their form (trial questions left out); a group
    shared by at least two candidates is a (fixed) form and gets the
    statistics over its own rows and items (only complete rows, as for the
    whole test), and with item sets the testlet alpha of its units
    (``testlet_alpha``, ``testlet_units``). Returns {"form_groups": number
    of distinct item sets, "forms": [...], one entry per shared form}.

    scores: [N x len(cols)] after the omit policy, NaN where the item did
    not count (trial questions); cols: the analysed columns of ``m``.
    """
    if m.form_items is not None:
        known = {pk: j for j, pk in enumerate(m.item_pks)}
        trial = _trial(m)
        keys = [tuple(pk for pk in f if pk in known and not trial[i, known[pk]]) for i, f in enumerate(m.form_items)]
    else:
        keys = [tuple(m.item_pks[j] for j in cols[~np.isnan(row)]) for row in scores]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    pos = {m.item_pks[j]: c for c, j in enumerate(cols)}
    forms = []
    for number, (key, rows) in enumerate(sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])), start=1):
        if len(rows) < 2:
            continue
        fcols = [pos[pk] for pk in key if pk in pos]
        s = scores[np.ix_(rows, fcols)]
        rel = ctt.reliability(s, max_points[fcols])
        complete = s[~np.isnan(s).any(axis=1)]
        sd = ctt.describe_totals(complete.sum(axis=1)).sd if complete.shape[0] else math.nan
        form = {
            "form": number,
            "n": len(rows),
            "items_count": len(fcols),
            "reliability_n": rel.n,
            "alpha": _num(rel.alpha),
            "kr20": _num(rel.kr20),
            "sem": _num(ctt.standard_error_of_measurement(sd, rel.alpha)),
        }
        set_index = _set_index([m.item_sets[cols[c]] for c in fcols]) if m.item_sets is not None else None
        if set_index is not None:
            units = testlets.testlet_reliability(s, set_index)
            form["testlet_alpha"] = _num(units.alpha)
            form["testlet_units"] = units.units
        forms.append(form)
    return {"form_groups": len(groups), "forms": forms}


def _set_index(keys: list[str | None]) -> np.ndarray | None:
    """testlets' [k] set index of these set keys (None = standalone), or
    None when no item is in a set."""
    order: dict[str, int] = {}
    index = [testlets.STANDALONE if key is None else order.setdefault(key, len(order)) for key in keys]
    return np.array(index, dtype=np.int64) if order else None


def rasch_reliability(scores: np.ndarray, max_points: np.ndarray, item_ids: list[str] | None = None) -> dict:
    """IRT (Rasch) marginal reliability, for any form design: Rasch fitted
    on the right/wrong items with NaN where an item was not on the form,
    EAP abilities and their SEs; reliability = var(EAP) / (var(EAP) +
    mean(SE^2)). Partial-credit items are left out (their number is
    ``excluded_items``); candidates without any right/wrong item too.
    ``marginal_reliability`` is null when undefined. ``items``: the Rasch
    a (= 1) and b of each right/wrong item (null b when not estimable), for
    the item characteristic curves."""
    dich = ctt.is_dichotomous(scores, max_points)
    resp = scores[:, dich] / max_points[dich][None, :]
    rows = ~np.all(np.isnan(resp), axis=1)
    resp = resp[rows]
    ids = [str(j + 1) for j in range(scores.shape[1])] if item_ids is None else list(item_ids)
    out = {
        "model": "rasch",
        "marginal_reliability": None,
        "n": int(resp.shape[0]),
        "items_count": 0,
        "excluded_items": int((~dich).sum()),
        "items": [],
    }
    if resp.shape[0] < 2 or resp.shape[1] < 2:
        return out
    try:
        fit = irt.fit(resp, "rasch")
    except ValueError:
        return out
    out["items_count"] = int(fit.estimated.sum())
    out["items"] = [
        {"id": ids[j], "a": 1.0, "b": _num(b), "se_b": _num(se)}
        for j, b, se in zip(np.flatnonzero(dich), fit.b, fit.se_b, strict=True)
    ]
    if out["items_count"] >= 2:
        out["marginal_reliability"] = _num(irt.marginal_reliability(fit.theta, fit.theta_se))
    return out


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


async def analyze_exam(conn: asyncpg.Connection, exam_id: int) -> dict:
    """Analyse the exam's submitted attempts and store the result (replacing
    an earlier one): item_stats per bank item, exam_stats the whole report."""
    m = await exam_matrix(conn, exam_id)
    report = analyze(m)
    async with conn.transaction():
        await conn.execute("DELETE FROM item_stats WHERE exam_id = $1", exam_id)
        await conn.executemany(
            "INSERT INTO item_stats (exam_id, item_pk, n, p, r_pb, r_pb_total, r_bis, d_upper_lower, "
            "alpha_if_deleted, omitted, flags) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            [(exam_id, it["pk"], *(it[c] for c in STAT_COLUMNS), it["flags"]) for it in report["items"]],
        )
        await conn.execute(
            "INSERT INTO exam_stats (exam_id, report) VALUES ($1, $2) ON CONFLICT (exam_id) "
            "DO UPDATE SET report = EXCLUDED.report, computed_at = now()",
            exam_id,
            json.dumps(report),
        )
    return report


async def stored_report(conn: asyncpg.Connection, exam_id: int) -> tuple[dict, object] | None:
    """(report, computed_at) as stored, or None when not analysed yet."""
    row = await conn.fetchrow("SELECT report, computed_at FROM exam_stats WHERE exam_id = $1", exam_id)
    return None if row is None else (json.loads(row["report"]), row["computed_at"])


async def item_history(conn: asyncpg.Connection, item_pk: int, org_ids: list[int]) -> list[asyncpg.Record]:
    """The stored statistics of one item version, per administration the viewer may see."""
    return await conn.fetch(
        "SELECT e.code AS exam_code, e.title, s.n, s.p, s.r_pb, s.flags, s.computed_at "
        "FROM item_stats s JOIN exams e ON e.id = s.exam_id "
        "WHERE s.item_pk = $1 AND e.org_id = ANY($2::bigint[]) ORDER BY e.opens_at, e.code",
        item_pk,
        org_ids,
    )


# -- results for gradebooks ----------------------------------------------------------

# submitted_at is in the exam's time zone, as ISO 8601 text with its offset
# (2026-12-02T07:30:00+07:00) in the CSV and the workbook alike: a spreadsheet's
# date cell holds no zone, and a bare hour was read as local when it was UTC.
RESULT_COLUMNS = (
    "student_code",
    "full_name",
    "class",
    "school",
    "subject",
    "score",
    "max_score",
    "gradebook_10",
    "provisional",
    "submitted_at",
)


def gradebook_score(score: Decimal, max_score: Decimal) -> Decimal:
    """The score on the 0-10 scale, one decimal, half-up (DOMAIN §3): 8.25 -> 8.3."""
    if max_score <= 0:
        raise ValueError("max_score must be positive")
    return round_half_up(Decimal(score) * 10 / Decimal(max_score), 1)


async def results_rows(conn: asyncpg.Connection, exam_code: str, default_zone: str = times.DEFAULT_ZONE) -> list[dict]:
    """One row per candidate (by student code): scores as Decimal, blank
    (None) for a candidate with no submitted attempt; submitted_at in the
    exam's time zone (`default_zone`, the server's, when it names none)."""
    exam = await exams.get_exam(conn, exam_code)
    zone = times.exam_zone(exam, default_zone)
    rows = await conn.fetch(
        "SELECT c.code, c.full_name, c.class_name, c.school, a.status, a.score, a.max_score, a.provisional, "
        "a.submitted_at FROM candidates c LEFT JOIN attempts a ON a.candidate_id = c.id "
        "WHERE c.exam_id = $1 ORDER BY c.class_name, c.code",
        exam["id"],
    )
    out = []
    for r in rows:
        done = r["status"] == "submitted" and r["score"] is not None and r["max_score"]
        out.append(
            {
                "student_code": r["code"],
                "full_name": r["full_name"],
                "class": r["class_name"],
                "school": r["school"],
                "subject": exam["subject"],
                "score": round_half_up(r["score"], 2) if done else None,
                "max_score": round_half_up(r["max_score"], 2) if done else None,
                "gradebook_10": gradebook_score(r["score"], r["max_score"]) if done else None,
                "provisional": bool(r["provisional"]) if done else None,
                "submitted_at": times.local(r["submitted_at"], zone) if done else None,
            }
        )
    return out


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")  # with the offset of the zone results_rows put it in
    return str(value)


def results_csv(rows: Iterable[dict], head: SignedHead | None = None) -> str:
    """UTF-8 CSV with a BOM (Excel reads the names right); formula-safe cells.
    With head, a last column audit_head holds the exam's signed audit chain
    head token (cbt/heads.py) in every row: a trailing line would be read as
    one more student by gradebook imports, and rows sorted or copied in a
    spreadsheet keep the head they were exported under."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RESULT_COLUMNS + (("audit_head",) if head is not None else ()))
    extra = [head.token] if head is not None else []
    for row in rows:
        writer.writerow([safe_cell(_text(row[c])) for c in RESULT_COLUMNS] + extra)
    return out.getvalue()


# The workbook is for people: its sheet names and headers are words in the
# reader's language ("results.xlsx.<key>" in web/i18n), where the CSV keeps
# RESULT_COLUMNS, stable keys for scripts (docs/design.md). These are the
# English words, for a caller without catalogs.
XLSX_WORDS = {
    "sheet": "Results",
    "audit_sheet": "Audit",
    "student_code": "Candidate number",
    "full_name": "Full name",
    "class": "Class",
    "school": "School",
    "subject": "Subject",
    "score": "Score",
    "max_score": "Maximum score",
    "gradebook_10": "Score out of 10",
    "provisional": "Score status",
    "submitted_at": "Submitted at",
    "is_provisional": "Provisional",
    "is_final": "Final",
}


def xlsx_words(t) -> dict:
    """XLSX_WORDS from the catalogs, with t a cbt.platform.i18n translator (the reader's language)."""
    return {key: t("results.xlsx." + key) for key in XLSX_WORDS}


def write_results_xlsx(
    rows: Iterable[dict],
    out: Path | io.BytesIO,
    head: SignedHead | None = None,
    words: dict | None = None,
    head_words: dict | None = None,
) -> None:
    """The results sheet: the student code is a text cell (leading zeros kept),
    scores numbers. With head, a second sheet holds the exam's signed audit
    chain head (gradebooks import the first sheet). words: XLSX_WORDS in the
    reader's language (English without them); head_words: heads.ROW_WORDS'."""
    from openpyxl import Workbook

    w = {**XLSX_WORDS, **(words or {})}
    wb = Workbook()
    ws = wb.active
    ws.title = w["sheet"]
    ws.append([w[c] for c in RESULT_COLUMNS])
    for row in rows:
        values = []
        for c in RESULT_COLUMNS:
            v = row[c]
            if isinstance(v, Decimal):
                v = float(v)
            elif c == "provisional" and v is not None:
                v = w["is_provisional"] if v else w["is_final"]
            elif c == "submitted_at" and v is not None:
                v = _text(v)
            elif isinstance(v, str):
                v = safe_cell(v)
            values.append(v)
        ws.append(values)
        code_cell = ws.cell(row=ws.max_row, column=1)
        code_cell.value = str(row["student_code"])
        code_cell.data_type = "s"
        code_cell.number_format = "@"
        for column in (6, 7):
            ws.cell(row=ws.max_row, column=column).number_format = "0.00"
        ws.cell(row=ws.max_row, column=8).number_format = "0.0"
    for col in ws.columns:
        ws.column_dimensions[col[0].column_letter].width = max(10, len(str(col[0].value)) + 2)
    ws.freeze_panes = "A2"
    if head is not None:
        head.add_sheet(wb, w["audit_sheet"], head_words)
    wb.save(out)
