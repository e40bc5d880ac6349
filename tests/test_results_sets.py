"""Item sets and trial questions in an exam's results: the stored report has
per-set statistics and the testlet alpha beside alpha, computed over the
questions that counted; a trial question is in the item table, calibrated
against the scored total, and in nobody's total."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.results import SETS_CANDIDATES

from cbt import results
from cbt.analysis import ctt, testlets
from cbt.analysis.render import render_html
from cbt.platform.errors import Conflict

CANDIDATES = SETS_CANDIDATES


def corr(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# -- the analysis on a matrix made here -------------------------------------------------


def _testlet_matrix(n: int = 400, seed: int = 5, mixed: bool = False) -> results.ExamMatrix:
    """Right/wrong data with a passage effect: three scored sets of four
    children (R1-R3), four standalone items, and as trial questions a single-
    choice item (T-ITEM) and a set of three (T1). With mixed, T-ITEM counts
    for the even candidates and is a trial question for the odd ones."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    columns = []  # (label, set key or None, trial)
    for s in range(1, 4):
        columns += [(f"R{s}-{c}@1", f"R{s}@1", False) for c in range(1, 5)]
    columns += [(f"G-{g}@1", None, False) for g in range(1, 5)]
    columns += [("T-ITEM@1", None, True)] + [(f"T1-{c}@1", "T1@1", True) for c in range(1, 4)]
    k = len(columns)
    passage = {key: rng.normal(scale=1.2, size=n) for key in {c[1] for c in columns if c[1]}}
    logit = theta[:, None] - rng.normal(scale=0.8, size=k)[None, :]
    for j, (_, key, _) in enumerate(columns):
        if key is not None:
            logit[:, j] += passage[key]
    scores = (rng.random((n, k)) < 1 / (1 + np.exp(-logit))).astype(float)
    trial = np.zeros((n, k), dtype=bool)
    for j, (label, _, is_trial) in enumerate(columns):
        trial[:, j] = is_trial
        if mixed and label == "T-ITEM@1":
            trial[:, j] = np.arange(n) % 2 == 1
    single = np.array([label == "T-ITEM@1" for label, _, _ in columns])
    choices = np.full((n, k), ctt.NOT_PRESENTED, dtype=np.int64)
    t = int(np.flatnonzero(single)[0])
    # The key is option 0; a wrong answer is one of the three distractors.
    choices[:, t] = np.where(scores[:, t] == 1, 0, rng.integers(1, 4, size=n))
    pks = list(range(201, 201 + k))
    return results.ExamMatrix(
        candidate_codes=[f"{i:04d}" for i in range(n)],
        item_pks=pks,
        item_labels=[c[0] for c in columns],
        item_types=["single" if single[j] else "numeric" for j in range(k)],
        scores=scores,
        omitted=np.zeros((n, k), dtype=bool),
        max_points=np.ones(k),
        choices=choices,
        single=single,
        key=np.zeros(k, dtype=np.int64),
        options=[["A", "B", "C", "D"] if single[j] else [] for j in range(k)],
        form_items=[tuple(pks)] * n,
        trial=trial,
        item_sets=[c[1] for c in columns],
    )


def _set_index(keys) -> np.ndarray:
    order: dict[str, int] = {}
    return np.array([-1 if key is None else order.setdefault(key, len(order)) for key in keys])


def test_sets_and_testlet_alpha_are_over_the_questions_that_counted():
    m = _testlet_matrix()
    report = results.analyze(m)
    counted = ~m.trial[0]
    scored = m.scores[:, counted]
    sets = _set_index([key for key, c in zip(m.item_sets, counted, strict=True) if c])
    totals = scored.sum(axis=1)
    assert report["test"]["mean"] == pytest.approx(totals.mean(), abs=1e-12)
    assert report["test"]["alpha"] == pytest.approx(ctt.reliability(scored).alpha, abs=1e-12)
    units = testlets.testlet_reliability(scored, sets)
    assert report["test"]["testlet_alpha"] == pytest.approx(units.alpha, abs=1e-12)
    assert report["test"]["testlet_units"] == units.units == 3 + 4
    # The passages' shared effect: alpha over the children overstates the reliability.
    assert report["test"]["testlet_alpha"] < report["test"]["alpha"] - 0.02
    expected = testlets.set_statistics(scored, np.ones(scored.shape[1]), sets)
    operational = [row for row in report["sets"] if "trial_n" not in row]
    assert [row["id"] for row in operational] == ["R1@1", "R2@1", "R3@1"]
    for j, row in enumerate(operational):
        assert row["items"] == [f"R{j + 1}-{c}@1" for c in range(1, 5)]
        for name in ("mean", "p", "sd", "r_rest", "alpha"):
            assert row[name] == pytest.approx(getattr(expected, name)[j], abs=1e-12), name
        assert row["n"] == 400 and row["n_partial"] == 0
    json.dumps(report, allow_nan=False)


def test_a_trial_question_is_calibrated_against_the_scored_total():
    m = _testlet_matrix()
    report = results.analyze(m)
    totals = m.scores[:, ~m.trial[0]].sum(axis=1)
    assert report["items_count"] == m.scores.shape[1] and report["trial_items"] == 4
    item = next(it for it in report["items"] if it["id"] == "T-ITEM@1")
    x = m.scores[:, m.item_labels.index("T-ITEM@1")]
    assert item["trial_n"] == item["n"] == 400
    assert item["p"] == pytest.approx(x.mean(), abs=1e-12)
    # Its discrimination: with the total of the questions that counted, which holds no part of it.
    assert item["r_pb"] == pytest.approx(corr(x, totals), abs=1e-12)
    assert item["r_pb_total"] == pytest.approx(corr(x, totals + x), abs=1e-12)
    assert item["alpha_if_deleted"] is None  # in no alpha
    key = next(o for o in item["options"] if o["is_key"])
    assert key["count"] == int(x.sum()) and key["r_pb_rest"] == pytest.approx(corr(x, totals), abs=1e-12)
    assert key["mean_total"] == pytest.approx(totals[x == 1].mean(), abs=1e-12)
    # A trial set: its score against the same total.
    trial_set = next(row for row in report["sets"] if row["id"] == "T1@1")
    children = [m.item_labels.index(f"T1-{c}@1") for c in range(1, 4)]
    set_score = m.scores[:, children].sum(axis=1)
    assert trial_set["trial_n"] == 400 and trial_set["items"] == ["T1-1@1", "T1-2@1", "T1-3@1"]
    assert trial_set["r_rest"] == pytest.approx(corr(set_score, totals), abs=1e-12)
    assert trial_set["alpha"] == pytest.approx(ctt.cronbach_alpha(m.scores[:, children]), abs=1e-12)
    # The printable page marks them too.
    html = render_html(report)
    assert "<h2>Passages (item sets)</h2>" in html and html.count(" (trial)") == 4 + 1
    # The standalone items that counted are untouched by the trial questions.
    g1 = next(it for it in report["items"] if it["id"] == "G-1@1")
    y = m.scores[:, m.item_labels.index("G-1@1")]
    assert "trial_n" not in g1 and g1["r_pb"] == pytest.approx(corr(y, totals - y), abs=1e-12)


def test_an_item_that_counted_on_some_forms_uses_every_candidate_and_the_right_rest():
    m = _testlet_matrix(mixed=True)
    report = results.analyze(m)
    j = m.item_labels.index("T-ITEM@1")
    counted = ~m.trial
    totals = np.where(counted, m.scores, 0).sum(axis=1)
    x = m.scores[:, j]
    rest = totals - np.where(counted[:, j], x, 0)  # the total without it, where it counted
    item = next(it for it in report["items"] if it["id"] == "T-ITEM@1")
    assert item["n"] == 400 and item["trial_n"] == 200
    assert item["r_pb"] == pytest.approx(corr(x, rest), abs=1e-12)
    assert report["test"]["mean"] == pytest.approx(totals.mean(), abs=1e-12)
    assert report["test"]["n"] == 400
    key = next(o for o in item["options"] if o["is_key"])
    assert key["r_pb_rest"] == pytest.approx(corr(x, rest), abs=1e-12)


def test_fixed_forms_with_sets_get_a_testlet_alpha_each():
    m = _testlet_matrix(n=200)
    # Two fixed forms: the even candidates without R3, the odd ones without G-1.
    k = m.scores.shape[1]
    drop = {0: [m.item_labels.index(f"R3-{c}@1") for c in range(1, 5)], 1: [m.item_labels.index("G-1@1")]}
    forms = []
    for i in range(200):
        m.scores[i, drop[i % 2]] = np.nan
        forms.append(tuple(m.item_pks[j] for j in range(k) if j not in drop[i % 2]))
    m.form_items = forms
    report = results.analyze(m)
    assert report["test"]["alpha"] is None and len(report["test"]["forms"]) == 2
    for form in report["test"]["forms"]:
        rows = np.arange(200)[np.arange(200) % 2 == (0 if form["items_count"] == 12 else 1)]
        assert form["items_count"] in (12, 15) and form["n"] == 100
        cols = [j for j in range(k) if not m.trial[0, j] and j not in drop[rows[0] % 2]]
        block = m.scores[np.ix_(rows, cols)]
        units = testlets.testlet_reliability(block, _set_index([m.item_sets[j] for j in cols]))
        assert form["testlet_alpha"] == pytest.approx(units.alpha, abs=1e-12)
        assert form["testlet_units"] == units.units
        assert form["alpha"] == pytest.approx(ctt.reliability(block).alpha, abs=1e-12)


def test_only_trial_scores_is_nothing_to_analyse():
    m = _testlet_matrix(n=10)
    m.trial[:] = True
    with pytest.raises(Conflict) as info:
        results.analyze(m)
    assert info.value.code == "no_results" and "trial" in info.value.message


# -- through the server: an exam with passages and trial rows, sat by seeded students ----


async def independent_matrix(conn, exam_id):
    """From the stored forms and per-question scores, built apart from
    results.exam_matrix: (scores [N x k] of every question, counted [k]
    (the one form's scored flags), set keys [k], attempt scores [N])."""
    rows = await conn.fetch(
        "SELECT c.code, f.form, a.id, a.score FROM attempts a JOIN candidates c ON c.id = a.candidate_id "
        "JOIN candidate_forms f ON f.candidate_id = c.id WHERE a.exam_id = $1 AND a.status = 'submitted' "
        "ORDER BY c.code",
        exam_id,
    )
    first = json.loads(rows[0]["form"])
    questions = sorted((fi for s in first["sections"] for fi in s["items"]), key=lambda fi: fi["pk"])
    scores = np.empty((len(rows), len(questions)))
    for i, r in enumerate(rows):
        assert json.loads(r["form"])["sections"] == first["sections"]  # one fixed form
        stored = {
            s["item_ref"]: s["score"]
            for s in await conn.fetch("SELECT item_ref, score FROM responses WHERE attempt_id = $1", r["id"])
        }
        scores[i] = [float(stored.get(fi["ref"]) or 0) for fi in questions]  # blank: never scored, 0
    counted = np.array([fi.get("scored", True) for fi in questions])
    return scores, counted, [fi.get("set_key") for fi in questions], np.array([float(r["score"]) for r in rows])


async def test_the_stored_report_has_the_sets_and_the_testlet_alpha_of_the_same_matrix(conn, sets_exam):
    report = await results.analyze_exam(conn, sets_exam)
    scores, counted, keys, attempt_scores = await independent_matrix(conn, sets_exam)
    assert report["examinees"] == CANDIDATES and report["items_count"] == scores.shape[1] == 3 * 5 + 3 + 1 + 5
    scored = scores[:, counted]
    sets = _set_index([key for key, c in zip(keys, counted, strict=True) if c])
    units = testlets.testlet_reliability(scored, sets)
    assert report["test"]["testlet_alpha"] == pytest.approx(units.alpha, abs=1e-12)
    assert report["test"]["testlet_units"] == units.units == 3 + 3
    assert report["test"]["alpha"] == pytest.approx(ctt.reliability(scored).alpha, abs=1e-12)
    expected = testlets.set_statistics(scored, np.full(scored.shape[1], 0.25), sets)
    operational = [row for row in report["sets"] if "trial_n" not in row]
    assert len(operational) == 3 and len(report["sets"]) == 4
    for j, row in enumerate(operational):
        assert row["children"] == 5 and row["max_points"] == 1.25
        for name in ("mean", "p", "sd", "r_rest", "alpha"):
            assert row[name] == pytest.approx(getattr(expected, name)[j], abs=1e-12), name
    # The trial questions are in the item table, but no total holds them: the
    # analysis' totals are the candidates' own scores, as the server gave them.
    assert report["test"]["mean"] == pytest.approx(attempt_scores.mean(), abs=1e-9)
    assert np.allclose(scored.sum(axis=1), attempt_scores)
    trial_rows = [it for it in report["items"] if "trial_n" in it]
    assert len(trial_rows) == report["trial_items"] == 6
    trial_cols = np.flatnonzero(~counted)
    assert sorted(it["n"] for it in trial_rows) == [CANDIDATES] * 6
    stored = {r["item_pk"]: r for r in await conn.fetch("SELECT * FROM item_stats WHERE exam_id = $1", sets_exam)}
    for it in trial_rows:
        assert it["trial_n"] == CANDIDATES and it["pk"] in stored and stored[it["pk"]]["n"] == CANDIDATES
    x = scores[:, trial_cols[0]]
    first = next(it for it in trial_rows if it["id"] == report["items"][int(trial_cols[0])]["id"])
    assert first["p"] == pytest.approx(x.mean() / 0.25, abs=1e-12)
    assert first["r_pb"] == pytest.approx(corr(x, attempt_scores), abs=1e-12)
    trial_set = next(row for row in report["sets"] if "trial_n" in row)
    set_cols = [j for j, key in enumerate(keys) if key == trial_set["id"]]
    assert not counted[set_cols].any()
    assert trial_set["r_rest"] == pytest.approx(corr(scores[:, set_cols].sum(axis=1), attempt_scores), abs=1e-12)
