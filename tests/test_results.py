"""Results of an exam: the item-by-candidate matrix, the stored item
statistics, and the gradebook export (CSV and xlsx)."""

import csv
import datetime as dt
import io
import json
import math
from decimal import Decimal

import numpy as np
import openpyxl
import pytest
from support.delivery import STUDENTS
from support.results import MORE, make_exam, sit_all

from cbt import results
from cbt.analysis import analyze_matrix
from cbt.platform.errors import UserError
from itembank.formats.yaml_format import parse_text


@pytest.fixture
async def sat(client, conn, signed_demo):
    tickets = await make_exam(conn, signed_demo, "THPT-X")
    await sit_all(client, conn, tickets)
    return await conn.fetchval("SELECT id FROM exams WHERE code = 'TOAN-T'")


async def independent_matrix(conn, exam_id):
    """Scores by bank item, built another way: per (candidate, item) from the
    form and the stored per-question scores, essays without a mark left out."""
    rows = await conn.fetch(
        "SELECT c.code, f.form, a.id FROM attempts a JOIN candidates c ON c.id = a.candidate_id "
        "JOIN candidate_forms f ON f.candidate_id = c.id WHERE a.exam_id = $1 AND a.status = 'submitted'",
        exam_id,
    )
    cells, points = {}, {}
    for r in rows:
        form = json.loads(r["form"])
        for s in form["sections"]:
            for fi in s["items"]:
                score = await conn.fetchval(
                    "SELECT score FROM responses WHERE attempt_id = $1 AND item_ref = $2", r["id"], fi["ref"]
                )
                points[fi["pk"]] = float(fi["points"])
                if score is not None:
                    cells[(r["code"], fi["pk"])] = float(score)
    codes = sorted({r["code"] for r in rows})
    pks = sorted({pk for _, pk in cells})
    m = np.array([[cells.get((c, pk), np.nan) for pk in pks] for c in codes])
    return codes, pks, m, [points[pk] for pk in pks]


def close(a, b):
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, abs_tol=1e-9))


async def test_stored_statistics_equal_analyze_matrix_on_an_independent_matrix(conn, sat):
    report = await results.analyze_exam(conn, sat)
    codes, pks, m, pts = await independent_matrix(conn, sat)
    expected = analyze_matrix(m, max_points=pts)
    assert report["examinees"] == len(codes) == 8
    assert [it["pk"] for it in report["items"]] == pks
    # No item sets, no trial questions: the report is as it always was.
    assert "sets" not in report and "trial_items" not in report
    assert not any(k.startswith("testlet") for k in report["test"])
    assert not any("trial_n" in it for it in report["items"])
    for name in ("mean", "sd", "alpha", "sem"):
        assert close(report["test"][name], expected["test"][name]), name
    stored = {r["item_pk"]: r for r in await conn.fetch("SELECT * FROM item_stats WHERE exam_id = $1", sat)}
    assert sorted(stored) == pks
    for pk, exp in zip(pks, expected["items"], strict=True):
        row = stored[pk]
        for name in ("n", "p", "r_pb", "r_pb_total", "r_bis", "d_upper_lower", "alpha_if_deleted"):
            assert close(row[name], exp[name]), (pk, name)
        # p written out as the definition: mean score / points, over the candidates who had the item.
        col = m[:, pks.index(pk)]
        had = col[~np.isnan(col)]
        assert math.isclose(row["p"], had.mean() / pts[pks.index(pk)])
        assert row["n"] == had.size
    # The blank q1 of every other candidate counted as omitted.
    assert sum(r["omitted"] for r in stored.values()) == 4
    # Recompute replaces, never duplicates.
    await results.analyze_exam(conn, sat)
    assert await conn.fetchval("SELECT count(*) FROM item_stats WHERE exam_id = $1", sat) == len(pks)
    assert await conn.fetchval("SELECT count(*) FROM exam_stats") == 1


async def test_option_tables_use_the_banks_option_ids_across_forms(conn, sat):
    report = await results.analyze_exam(conn, sat)
    m = await results.exam_matrix(conn, sat)
    singles = [it for it in report["items"] if it["type"] == "single"]
    assert singles
    for it in singles:
        source = await conn.fetchval("SELECT source FROM bank_items WHERE id = $1", it["pk"])
        item = parse_text(source, "t").items[0].item
        assert [o["option"] for o in it["options"]] == [o.id for o in item.options]
        key = [o["option"] for o in it["options"] if o["is_key"]]
        assert key == list(item.correct_option_ids)
        # Choosers of the key are exactly the candidates who scored the item.
        j = m.item_pks.index(it["pk"])
        col = m.scores[:, j]
        right = int(np.sum(col[~np.isnan(col)] > 0))
        assert next(o["count"] for o in it["options"] if o["is_key"]) == right
        assert sum(o["count"] for o in it["options"]) + it["omitted"] == it["n"]


async def test_nothing_to_analyse_without_submissions(conn, signed_demo):
    await make_exam(conn, signed_demo, "THPT-X")
    exam_id = await conn.fetchval("SELECT id FROM exams")
    with pytest.raises(UserError) as info:
        await results.analyze_exam(conn, exam_id)
    assert info.value.code == "no_results"


def test_gradebook_rounds_half_up():
    assert results.gradebook_score(Decimal("3.30"), Decimal("4.00")) == Decimal("8.3")  # 8.25, round() gives 8.2
    assert round(8.25, 1) == 8.2
    assert results.gradebook_score(Decimal("3.26"), Decimal("4")) == Decimal("8.2")  # 8.15 exactly -> 8.2
    assert results.gradebook_score(Decimal("2.54"), Decimal("4")) == Decimal("6.4")  # 6.35 -> 6.4
    assert results.gradebook_score(Decimal("4"), Decimal("4")) == Decimal("10.0")


async def test_results_csv_and_xlsx(conn, sat, tmp_path):
    # A worked case: 3.30 of 4.00 is 8.25 on the 0-10 scale -> 8.3 in the gradebook.
    await conn.execute(
        "UPDATE attempts SET score = 3.3, max_score = 4 WHERE candidate_id = "
        "(SELECT id FROM candidates WHERE code = '0000000001')"
    )
    rows = await results.results_rows(conn, "TOAN-T")
    assert len(rows) == 8
    first = next(r for r in rows if r["student_code"] == "0000000001")
    assert first["score"] == Decimal("3.30") and first["gradebook_10"] == Decimal("8.3")
    assert first["subject"] == "toan" and first["class"] == "12A1" and first["provisional"] is True

    text = results.results_csv(rows)
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text[1:])))
    assert table[0] == list(results.RESULT_COLUMNS)
    line = next(r for r in table if r[0] == "0000000001")
    assert line[5:8] == ["3.30", "4.00", "8.3"]
    # submitted_at in the exam's zone (the server's default, as TOAN-T names none), with its offset.
    stamp = dt.datetime.fromisoformat(line[results.RESULT_COLUMNS.index("submitted_at")])
    assert stamp.utcoffset() == dt.timedelta(hours=7) and stamp == first["submitted_at"].replace(microsecond=0)
    assert {r[0] for r in table[1:]} == {c.code for c in STUDENTS + MORE}  # leading zeros kept

    out = tmp_path / "r.xlsx"
    results.write_results_xlsx(rows, out)
    ws = openpyxl.load_workbook(out).active
    # Without the catalogs' words (the CLI's default), English words for people.
    assert [c.value for c in ws[1]] == [results.XLSX_WORDS[c] for c in results.RESULT_COLUMNS]
    assert ws.title == "Results" and ws[1][0].value == "Candidate number"
    cell = next(r[0] for r in ws.iter_rows(min_row=2) if r[0].value == "0000000001")
    assert cell.data_type == "s" and isinstance(cell.value, str)
    assert ws.cell(row=cell.row, column=8).value == 8.3


async def test_results_csv_is_formula_safe(conn, sat):
    await conn.execute("UPDATE candidates SET full_name = '=HYPERLINK(\"x\")' WHERE code = '0000000002'")
    text = results.results_csv(await results.results_rows(conn, "TOAN-T"))
    assert "'=HYPERLINK" in text


async def test_cli_results_and_analyze(dsn, sat, tmp_path):
    from support.cli import cbt, env_for, one_line_error

    env = env_for(tmp_path / "d", CBT_DATABASE_URL=dsn)
    out = tmp_path / "results.csv"
    done = cbt("exam", "results", "TOAN-T", "--csv", str(out), env=env)
    assert done.returncode == 0, done.stderr
    header = out.read_text("utf-8-sig").splitlines()[0]
    assert header.startswith("student_code,") and header.endswith(",audit_head")
    # The exam's signed audit chain head: in the file, and printed to keep.
    assert "# signed audit chain head of TOAN-T: event " in done.stdout
    xlsx = tmp_path / "results.xlsx"
    assert cbt("exam", "results", "TOAN-T", "--xlsx", str(xlsx), env=env).returncode == 0
    book = openpyxl.load_workbook(xlsx)
    assert book.active.max_row == 9 and book.sheetnames == ["Results", "Audit"]
    # CBT_LANG=vi asks for the workbook in Vietnamese, as `cbt analyze` does.
    assert cbt("exam", "results", "TOAN-T", "--xlsx", str(xlsx), env=env | {"CBT_LANG": "vi"}).returncode == 0
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["Kết quả", "Nhật ký"] and book.active["A1"].value == "Số báo danh"
    analysed = cbt("exam", "analyze", "TOAN-T", env=env)
    assert analysed.returncode == 0 and "8 candidates" in analysed.stdout, analysed.stderr
    assert "no exam" in one_line_error(cbt("exam", "results", "NOPE", "--csv", str(out), env=env))


# -- reliability when candidates sat different forms ----------------------------------


def _forms_matrix(per_candidate: bool = False, n: int = 60, k: int = 8, seed: int = 3) -> results.ExamMatrix:
    """Right/wrong Rasch data on two fixed forms (items 0-5 and 2-7), or on a
    different random set of six items per candidate."""
    from cbt.analysis import ctt

    rng = np.random.default_rng(seed)
    theta, b = rng.normal(size=n), rng.normal(size=k)
    s = (rng.random((n, k)) < 1 / (1 + np.exp(-(theta[:, None] - b[None, :])))).astype(float)
    pks = [101 + j for j in range(k)]
    forms = []
    for i in range(n):
        on = sorted(rng.choice(k, 6, replace=False)) if per_candidate else list(range(6) if i % 2 == 0 else range(2, 8))
        s[i, [j for j in range(k) if j not in on]] = np.nan
        forms.append(tuple(pks[j] for j in on))
    return results.ExamMatrix(
        candidate_codes=[f"{i:04d}" for i in range(n)],
        item_pks=pks,
        item_labels=[f"I{j}@1" for j in range(k)],
        item_types=["numeric"] * k,
        scores=s,
        omitted=np.zeros((n, k), bool),
        max_points=np.ones(k),
        choices=np.full((n, k), ctt.NOT_PRESENTED),
        single=np.zeros(k, bool),
        key=np.zeros(k, np.int64),
        options=[[] for _ in range(k)],
        form_items=forms,
    )


def test_fixed_forms_get_alpha_per_form_equal_to_ctt_on_the_forms_rows():
    from cbt.analysis import ctt

    m = _forms_matrix()
    report = results.analyze(m)
    test = report["test"]
    assert test["alpha"] is None  # pooled: no complete rows
    assert test["form_groups"] == 2 and len(test["forms"]) == 2
    for form, first in zip(sorted(test["forms"], key=lambda f: f["form"]), (0, 2), strict=True):
        rows = np.arange(first // 2, m.scores.shape[0], 2)
        block = m.scores[np.ix_(rows, list(range(first, first + 6)))]
        rel = ctt.reliability(block)
        assert form["n"] == rows.size == 30 and form["items_count"] == 6
        assert form["alpha"] == pytest.approx(rel.alpha, abs=1e-12)
        assert form["kr20"] == pytest.approx(rel.kr20, abs=1e-12)
        sd = block.sum(axis=1).std(ddof=1)
        assert form["sem"] == pytest.approx(sd * math.sqrt(1 - rel.alpha), abs=1e-12)
    irt_rel = test["irt_reliability"]
    assert irt_rel["model"] == "rasch" and irt_rel["n"] == 60 and irt_rel["items_count"] == 8
    assert 0 <= irt_rel["marginal_reliability"] <= 1
    json.dumps(report, allow_nan=False)  # storable: undefined values are null


def test_per_candidate_forms_have_no_per_form_alpha_but_an_irt_reliability():
    report = results.analyze(_forms_matrix(per_candidate=True))
    test = report["test"]
    assert test["alpha"] is None and test["sem"] is None
    assert test["form_groups"] > 2
    assert all(f["n"] >= 2 for f in test["forms"])  # only forms shared by several candidates
    assert 0 <= test["irt_reliability"]["marginal_reliability"] <= 1


def test_irt_reliability_is_null_when_undefined():
    m = _forms_matrix(n=1)
    test = results.analyze(m)["test"]
    assert test["forms"] == [] and test["irt_reliability"]["marginal_reliability"] is None
