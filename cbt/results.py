"""Results of an exam: the examinee x item matrix, the item analysis stored
per item version per administration, and the gradebook export.

No aiohttp here: the exam board's pages (cbt.workspace.board) and the CLI
(`cbt exam analyze`, `cbt exam results`) call these functions.

The matrix is keyed by bank item (``bank_items.id``), not by the form's
question refs: the same item is "q3" on one form and "q17" on another.
Single-choice answers are mapped back to the bank's own option ids (the
form's ``option_order`` / ``option_aliases``), so the option table of an
item adds up across forms.
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
from cbt.analysis import AnalysisInputError, analyze_matrix, ctt, irt
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
    for form in forms:
        for section in form["sections"]:
            for fi in section["items"]:
                points[fi["pk"]] = max(points.get(fi["pk"], 0.0), float(Decimal(str(fi["points"]))))
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
    )


def analyze(m: ExamMatrix, thresholds: ctt.FlagThresholds | None = None) -> dict:
    """analyze_matrix on the scores, plus the option table of every
    single-choice item (against the same totals) and its flags."""
    cols = _scored_columns(m)  # drop items nobody has a score on (unmarked essays)
    if len(m.candidate_codes) == 0 or cols.size == 0:
        raise Conflict("no_results", "no submitted attempts with scores yet: nothing to analyse")
    scores, omitted, mp = m.scores[:, cols], m.omitted[:, cols], m.max_points[cols]
    try:
        report = analyze_matrix(
            scores,
            omitted=omitted,
            max_points=mp,
            item_ids=[m.item_labels[j] for j in cols],
            examinee_ids=m.candidate_codes,
            thresholds=thresholds,
        )
    except AnalysisInputError as e:
        raise Conflict("analysis_failed", str(e)) from None
    for item, j in zip(report["items"], cols, strict=True):
        item["pk"] = m.item_pks[j]
        item["type"] = m.item_types[j]
    sel = [i for i, j in enumerate(cols) if m.single[j]]
    if sel:
        totals = ctt.total_scores(ctt.apply_omit_policy(scores, omitted, report["omit_policy"]))
        js = cols[sel]
        n_opt = np.array([len(m.options[j]) for j in js], dtype=np.int64)
        d = ctt.distractor_analysis(m.choices[:, js], m.key[js], n_opt, totals, mp[sel])
        p = np.array([_nan(report["items"][i]["p"]) for i in sel])
        r = np.array([_nan(report["items"][i]["r_pb"]) for i in sel])
        flags = ctt.flag_items(p, r, d, m.key[js], thresholds)
        for s, i in enumerate(sel):
            j = cols[i]
            report["items"][i]["options"] = [
                {
                    "option": m.options[j][o],
                    "is_key": o == int(m.key[j]),
                    "count": int(d.count[s, o]),
                    "proportion": _num(d.proportion[s, o]),
                    "r_pb_rest": _num(d.r_pb_rest[s, o]),
                    "mean_total": _num(d.mean_total[s, o]),
                }
                for o in range(int(n_opt[s]))
            ]
            report["items"][i]["flags"] = flags[s]
    sc = ctt.apply_omit_policy(scores, omitted, report["omit_policy"])
    report["test"].update(form_reliability(m, cols, sc, mp))
    report["test"]["irt_reliability"] = rasch_reliability(sc, mp, [m.item_labels[j] for j in cols])
    return report


def _scored_columns(m: ExamMatrix) -> np.ndarray:
    return np.flatnonzero(~np.all(np.isnan(m.scores), axis=0))


def item_traces(m: ExamMatrix, item_pk: int, omit: str = "wrong") -> dict | None:
    """The chart data of one item, against the same totals as :func:`analyze`:
    {"group_mean_total", "mean_score"} by total-score fifth, and for a
    single-choice item "options": {option id: share choosing by fifth}.
    None when the item has no scores."""
    cols = _scored_columns(m)
    if item_pk not in m.item_pks or m.item_pks.index(item_pk) not in cols:
        return None
    j = m.item_pks.index(item_pk)
    scores = ctt.apply_omit_policy(m.scores[:, cols], m.omitted[:, cols], omit)
    totals = ctt.total_scores(scores)
    c = int(np.flatnonzero(cols == j)[0])
    gmean, curve = ctt.score_trace(scores[:, [c]], m.max_points[[j]], totals)
    trace = {"group_mean_total": [_num(x) for x in gmean], "mean_score": [_num(x) for x in curve[0]]}
    if m.single[j]:
        _, share = ctt.option_trace(m.choices[:, [j]], len(m.options[j]), totals)
        trace["options"] = {o: [_num(x) for x in share[0, i]] for i, o in enumerate(m.options[j])}
    return trace


def form_reliability(m: ExamMatrix, cols: np.ndarray, scores: np.ndarray, max_points: np.ndarray) -> dict:
    """Alpha, KR-20 and SEM per form: candidates are grouped by the set of
    items on their form; a group shared by at least two candidates is a
    (fixed) form and gets the statistics over its own rows and items (only
    complete rows, as for the whole test). Returns {"form_groups": number
    of distinct item sets, "forms": [...], one entry per shared form}.

    scores: [N x len(cols)] after the omit policy; cols: the analysed
    columns of ``m``.
    """
    if m.form_items is not None:
        known = set(m.item_pks)
        keys = [tuple(pk for pk in f if pk in known) for f in m.form_items]
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
        forms.append(
            {
                "form": number,
                "n": len(rows),
                "items_count": len(fcols),
                "reliability_n": rel.n,
                "alpha": _num(rel.alpha),
                "kr20": _num(rel.kr20),
                "sem": _num(ctt.standard_error_of_measurement(sd, rel.alpha)),
            }
        )
    return {"form_groups": len(groups), "forms": forms}


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
