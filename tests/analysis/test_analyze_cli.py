"""`cbt analyze` end to end: files in, JSON/xlsx/HTML out, and one clear
line for every input problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from openpyxl import load_workbook

from cbt.analysis import OMITTED, analyze_matrix, csvfile

DATASETS = Path(__file__).parents[1] / "data"
REPO = Path(__file__).parents[2]


def need(name: str) -> Path:
    return DATASETS / name


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = csvfile.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sat12_files(tmp_path: Path) -> tuple[Path, Path]:
    """SAT12 with its omit code 8 as empty cells, plus an id column."""
    lines = need("SAT12.csv").read_text().splitlines()
    rows = ["student," + lines[0]]
    for i, line in enumerate(lines[1:], start=1):
        rows.append(f"s{i:03d}," + ",".join("" if c == "8" else c for c in line.split(",")))
    return write(tmp_path / "sat12.csv", "\n".join(rows) + "\n"), need("SAT12_key.csv")


REQUIRED_TEST = {
    "mean",
    "sd",
    "min",
    "max",
    "median",
    "alpha",
    "kr20",
    "kr21",
    "sem",
    "skewness",
    "kurtosis",
    "score_histogram",
}
REQUIRED_ITEM = {
    "id",
    "max_points",
    "p",
    "sd",
    "r_pb",
    "r_pb_total",
    "r_bis",
    "d_upper_lower",
    "alpha_if_deleted",
    "omitted",
    "flags",
}
REQUIRED_OPTION = {"option", "is_key", "count", "proportion", "r_pb_rest", "mean_total"}


def test_sat12_with_key_all_outputs(tmp_path, capsys):
    responses, key = sat12_files(tmp_path)
    out = tmp_path / "out"
    code, err = run_cli(
        capsys,
        responses,
        "--key",
        key,
        "--id-column",
        "student",
        "--irt",
        "2pl",
        "--json",
        f"{out}.json",
        "--xlsx",
        f"{out}.xlsx",
        "--html",
        f"{out}.html",
    )
    assert (code, err) == (0, "")
    report = json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))
    assert report["examinees"] == 600 and report["items_count"] == 32
    assert report["omit_policy"] == "wrong"
    assert REQUIRED_TEST <= set(report["test"])
    for item in report["items"]:
        assert REQUIRED_ITEM | {"options"} <= set(item)
        assert "trace" not in item  # chart data stays out of the JSON
        for o in item["options"]:
            assert set(o) == REQUIRED_OPTION
    assert set(report["irt"]) >= {"model", "loglik", "items", "abilities"}
    assert set(report["irt"]["items"][0]) == {"id", "a", "b", "se_a", "se_b"}
    assert report["irt"]["abilities"][0]["id"] == "s001"
    assert set(report["irt"]["abilities"][0]) == {"id", "eap", "se"}
    assert len(report["irt"]["abilities"]) == 600

    # Same numbers as the library on the arrays.
    raw = np.loadtxt(DATASETS / "SAT12.csv", delimiter=",", skiprows=1, dtype=int)
    keys = np.loadtxt(key, delimiter=",", skiprows=1, usecols=1, dtype=int)
    direct = analyze_matrix(
        choices=np.where(raw == 8, OMITTED, raw - 1), key=keys - 1, options=[[str(o) for o in range(1, 6)]] * 32
    )
    assert report["test"] == direct["test"]
    for mine, theirs in zip(report["items"], direct["items"], strict=True):
        assert {k: v for k, v in mine.items() if k != "id"} == {k: v for k, v in theirs.items() if k != "id"}

    html = Path(f"{out}.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 1 + 32 + 32 + 1  # histogram, traces, ICCs, all ICCs
    for external in ("<script", "src=", "http://", "https://", "<link"):
        assert external not in html
    assert "Item.32" in html and "possible_miskey" in html

    wb = load_workbook(f"{out}.xlsx")
    assert {"Summary", "Items", "Options", "IRT", "Abilities"} <= set(wb.sheetnames)
    items = list(wb["Items"].iter_rows(values_only=True))
    assert items[0][0] == "item" and len(items) == 33
    assert items[1][3] == pytest.approx(report["items"][0]["p"])


def test_scores_without_key(tmp_path, capsys):
    # 0/1 items get max 1; item C has partial credit and a --max-points.
    responses = write(tmp_path / "r.csv", "id;A;B;C;note\n1;1;0;1,5;x\n2;0;;2;\n3;1;1;0;\n4;1;0;0,5;\n")
    out = tmp_path / "o.json"
    code, err = run_cli(
        capsys,
        responses,
        "--id-column",
        "id",
        "--ignore",
        "note",
        "--max-points",
        "C=3",
        "--json",
        out,
        "--html",
        tmp_path / "o.html",
    )
    assert (code, err) == (0, "")
    report = json.loads(out.read_text())
    items = {it["id"]: it for it in report["items"]}
    assert [items[i]["max_points"] for i in "ABC"] == [1, 1, 3]
    assert items["C"]["p"] == pytest.approx(4 / 4 / 3)
    assert items["B"]["omitted"] == 1 and items["B"]["p"] == pytest.approx(1 / 4)
    assert "options" not in items["A"]
    missing = tmp_path / "m.json"
    code, _ = run_cli(
        capsys,
        responses,
        "--id-column",
        "id",
        "--ignore",
        "note",
        "--omit",
        "missing",
        "--max-points",
        "C=3",
        "--json",
        missing,
    )
    b = next(it for it in json.loads(missing.read_text())["items"] if it["id"] == "B")
    assert code == 0 and b["p"] == pytest.approx(1 / 3) and b["n"] == 3


def test_lsat6_rasch_through_the_cli(tmp_path, capsys):
    raw = np.loadtxt(need("LSAT6_patterns.csv"), delimiter=",", skiprows=1, dtype=int)
    rows = np.repeat(raw[:, :5], raw[:, 5], axis=0)
    text = "I1,I2,I3,I4,I5\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    out = tmp_path / "o.json"
    code, err = run_cli(capsys, write(tmp_path / "lsat6.csv", text), "--irt", "rasch", "--json", out)
    assert (code, err) == (0, "")
    r = json.loads(out.read_text())
    assert [it["p"] for it in r["items"]] == pytest.approx([0.924, 0.709, 0.553, 0.763, 0.870], abs=5e-4)
    assert [it["b"] for it in r["irt"]["items"]] == pytest.approx(
        [-2.8720, -1.0630, -0.2576, -1.3881, -2.2188], abs=0.01
    )
    assert r["irt"]["loglik"] == pytest.approx(-2473.054, abs=0.01)
    assert all(it["a"] == 1 and it["se_a"] is None for it in r["irt"]["items"])


def test_verbal_dif_through_the_cli(tmp_path, capsys):
    out = tmp_path / "v.json"
    code, err = run_cli(
        capsys,
        need("verbal.tsv"),
        "--group-column",
        "Gender",
        "--focal",
        "1",
        "--ignore",
        "Anger",
        "--json",
        out,
        "--xlsx",
        tmp_path / "v.xlsx",
    )
    assert (code, err) == (0, "")
    rows = json.loads(out.read_text())["dif"]
    assert len(rows) == 24
    assert {"id", "mh_alpha", "mh_d_dif", "chi2", "p_value", "ets_class"} <= set(rows[0])
    assert {r["ets_class"] for r in rows} <= {"A", "B", "C"}
    assert "DIF" in load_workbook(tmp_path / "v.xlsx").sheetnames


# -- input problems: one line, exit 1, exact words --------------------------------------------


def test_unparseable_cell_names_row_and_column(tmp_path, capsys):
    responses = write(tmp_path / "r.csv", "id,Q1,Q2\na,1,0\nb,1,x\n")
    code, err = run_cli(capsys, responses, "--id-column", "id", "--json", tmp_path / "o.json")
    assert code == 1
    assert err == (
        f"cbt analyze: error: {responses} row 3, column 'Q2': 'x' is not a number; "
        "without --key every item cell is a score (empty for omitted), with --key a "
        "chosen option\n"
    )
    assert not (tmp_path / "o.json").exists()


def test_unknown_key_item(tmp_path, capsys):
    responses = write(tmp_path / "r.csv", "Q1,Q2\nA,B\nC,D\n")
    key = write(tmp_path / "k.csv", "item,key\nQ1,A\nQ3,B\n")
    code, err = run_cli(capsys, responses, "--key", key, "--json", tmp_path / "o.json")
    assert code == 1
    assert err == (
        f"cbt analyze: error: {key} row 3: item 'Q3' is not a column of {responses}; fix the name or remove the line\n"
    )


def test_item_without_key(tmp_path, capsys):
    responses = write(tmp_path / "r.csv", "Q1,Q2\nA,B\nC,D\n")
    key = write(tmp_path / "k.csv", "Q1,A\n")  # no header row: also fine
    code, err = run_cli(capsys, responses, "--key", key, "--json", tmp_path / "o.json")
    assert code == 1
    assert err == (
        f"cbt analyze: error: {responses}: column 'Q2' has no key in {key}; add it to "
        "the key or name it with --ignore\n"
    )


def test_missing_group_column(tmp_path, capsys):
    responses = write(tmp_path / "r.csv", "id,Q1,Q2\na,1,0\nb,0,1\n")
    code, err = run_cli(capsys, responses, "--group-column", "Sex", "--focal", "F", "--json", tmp_path / "o.json")
    assert code == 1
    assert err == (f"cbt analyze: error: --group-column 'Sex': no such column in {responses} (columns: id, Q1, Q2)\n")


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        ("Q1,Q2\n1,0\n1\n", [], "{r} row 3: 1 fields but the header has 2; check the delimiters and quotes"),
        (
            "Q1,Q2\n1,0\n3,1\n",
            ["--max-points", "Q1=2"],
            "{r} row 3, column 'Q1': score '3' is above --max-points Q1=2; fix the cell or the maximum",
        ),
        (
            "Q1,Q2\n1,0\n-1,1\n",
            [],
            "{r} row 3, column 'Q1': negative score '-1'; scores run from 0 to the item's maximum",
        ),
        ("Q1,Q1\n1,0\n", [], "{r}: two columns are named 'Q1'; rename one"),
        ("Q1,Q2\n1,0\n", ["--max-points", "Q9=2"], "--max-points 'Q9=2': 'Q9' is not an item column of {r}"),
        (
            "Q1,G\n1,a\n0,a\n",
            ["--group-column", "G", "--focal", "b"],
            "--focal 'b': no examinee has G = 'b' in {r} (values seen: a)",
        ),
        (
            "Q1,G\n1,a\n0,a\n",
            ["--group-column", "G"],
            "--group-column and --focal go together: name the group column and the value of the focal group",
        ),
        ("Q1,Q2\n1,0\n", ["--threshold", "too_easy=high"], "--threshold 'too_easy=high': 'high' is not a number"),
        ("Q1,Q2\n1,0.5\n0,1\n", ["--irt", "2pl"], "IRT here fits right/wrong items only; partial-credit item(s): Q2"),
        ("", [], "{r}: empty file; the responses file needs a header row"),
    ],
)
def test_bad_inputs(tmp_path, capsys, text, extra, message):
    responses = write(tmp_path / "r.csv", text)
    code, err = run_cli(capsys, responses, *extra, "--json", tmp_path / "o.json")
    assert code == 1
    assert err == "cbt analyze: error: " + message.format(r=responses) + "\n"


def test_option_outside_options_list(tmp_path, capsys):
    responses = write(tmp_path / "r.csv", "Q1,Q2\na,B\nE,D\n")
    key = write(tmp_path / "k.csv", "item,key,points\nQ1,A,0.25\nQ2,B,0.25\n")
    out = tmp_path / "o.json"
    code, err = run_cli(capsys, responses, "--key", key, "--options", "A,B,C,D", "--json", out)
    assert code == 1
    assert err == (
        f"cbt analyze: error: {responses} row 3, column 'Q1': 'E' is not one of "
        "--options A,B,C,D; fix the cell or leave it empty for an omitted response\n"
    )
    write(responses, "Q1,Q2\na,B\nC,D\n")
    code, err = run_cli(capsys, responses, "--key", key, "--options", "A,B,C,D", "--json", out)
    assert (code, err) == (0, "")
    item = json.loads(out.read_text())["items"][0]
    assert item["max_points"] == 0.25 and item["p"] == 0.5
    assert [o["option"] for o in item["options"]] == ["A", "B", "C", "D"]
    assert [o["count"] for o in item["options"]] == [1, 0, 1, 0]


def test_unwritable_output_is_one_line(tmp_path, capsys):
    responses = write(tmp_path / "r.csv", "Q1,Q2\n1,0\n0,1\n")
    target = tmp_path / "no" / "such" / "o.json"
    code, err = run_cli(capsys, responses, "--json", target)
    assert code == 1
    assert err == f"cbt analyze: error: {target}: No such file or directory\n"


def test_real_process_prints_no_traceback(tmp_path):
    responses = write(tmp_path / "r.csv", "Q1,Q2\n1,zz\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cbt.analysis.csvfile", str(responses), "--json", str(tmp_path / "o.json")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("cbt analyze: error: ")


def test_the_workbook_is_english_unless_cbt_lang_asks_for_vietnamese(tmp_path, capsys, monkeypatch):
    responses, key = sat12_files(tmp_path)
    common = [responses, "--key", key, "--id-column", "student", "--json", tmp_path / "r.json"]
    monkeypatch.delenv("CBT_LANG", raising=False)
    assert run_cli(capsys, *common, "--xlsx", tmp_path / "en.xlsx") == (0, "")
    monkeypatch.setenv("CBT_LANG", "vi")
    assert run_cli(capsys, *common, "--xlsx", tmp_path / "vi.xlsx") == (0, "")
    en, vi = load_workbook(tmp_path / "en.xlsx"), load_workbook(tmp_path / "vi.xlsx")
    assert next(en["Items"].iter_rows(values_only=True))[0] == "item"
    assert next(vi["Câu hỏi"].iter_rows(values_only=True))[0] == "Câu hỏi"
    notes = [r[0] for r in vi["Ghi chú"].iter_rows(values_only=True)]
    assert any(n.startswith("có thể sai đáp án (possible_miskey): ") for n in notes)
    assert any(
        n.startswith("possible_miskey: possible miskey")
        for n in [r[0] for r in en["Notes"].iter_rows(values_only=True)]
    )


# -- item sets: --sets SETS.csv ------------------------------------------------------------------


def passage_scores(tmp_path: Path, n: int = 300, seed: int = 7) -> tuple[Path, np.ndarray]:
    """Right/wrong scores with a passage effect: P1-1..P1-4 and P2-1..P2-4
    share their passage, S1..S3 stand alone."""
    rng = np.random.default_rng(seed)
    names = [f"P{s}-{c}" for s in (1, 2) for c in range(1, 5)] + ["S1", "S2", "S3"]
    logit = rng.normal(size=(n, 1)) - rng.normal(scale=0.7, size=(1, len(names)))
    logit[:, :4] += rng.normal(size=(n, 1))
    logit[:, 4:8] += rng.normal(size=(n, 1))
    scores = (rng.random(logit.shape) < 1 / (1 + np.exp(-logit))).astype(int)
    text = ",".join(names) + "\n" + "\n".join(",".join(map(str, row)) for row in scores) + "\n"
    return write(tmp_path / "passages.csv", text), scores


def test_sets_file_adds_the_sets_and_the_testlet_alpha(tmp_path, capsys):
    responses, scores = passage_scores(tmp_path)
    sets = write(tmp_path / "sets.csv", "item,set\n" + "".join(f"P{s}-{c},P{s}\n" for s in (1, 2) for c in range(1, 5)))
    out = tmp_path / "o"
    code, err = run_cli(
        capsys, responses, "--sets", sets, "--json", f"{out}.json", "--xlsx", f"{out}.xlsx", "--html", f"{out}.html"
    )
    assert (code, err) == (0, "")
    report = json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))
    names = [f"P{s}-{c}" for s in (1, 2) for c in range(1, 5)] + ["S1", "S2", "S3"]
    direct = analyze_matrix(scores.astype(float), item_ids=names, sets=["P1"] * 4 + ["P2"] * 4 + [None] * 3)
    assert report["sets"] == direct["sets"] and report["test"] == direct["test"]
    assert [s["id"] for s in report["sets"]] == ["P1", "P2"] and report["test"]["testlet_units"] == 2 + 3
    assert report["test"]["testlet_alpha"] < report["test"]["alpha"]
    book = load_workbook(f"{out}.xlsx")
    rows = list(book["Sets"].iter_rows(values_only=True))
    assert rows[0][:3] == ("set", "items", "children") and [r[0] for r in rows[1:]] == ["P1", "P2"]
    assert rows[1][1] == "P1-1, P1-2, P1-3, P1-4"
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["testlet alpha (sets as units)"] == pytest.approx(report["test"]["testlet_alpha"], abs=1e-12)
    html = Path(f"{out}.html").read_text(encoding="utf-8")
    assert "<h2>Passages (item sets)</h2>" in html and "Children of one passage are not independent" in html
    # The same lines without the header row, in another order and with semicolons: the same report.
    bare = write(tmp_path / "bare.csv", "".join(f"P{s}-{c};P{s}\n" for s in (2, 1) for c in range(4, 0, -1)))
    assert run_cli(capsys, responses, "--sets", bare, "--json", tmp_path / "b.json") == (0, "")
    again = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    assert again["test"] == report["test"] and {s["id"] for s in again["sets"]} == {"P1", "P2"}


def test_a_report_without_sets_says_nothing_of_them(tmp_path, capsys):
    responses, _ = passage_scores(tmp_path, n=50)
    out = tmp_path / "o"
    assert run_cli(capsys, responses, "--json", f"{out}.json", "--xlsx", f"{out}.xlsx", "--html", f"{out}.html") == (
        0,
        "",
    )
    report = json.loads(Path(f"{out}.json").read_text(encoding="utf-8"))
    assert "sets" not in report and not any(k.startswith("testlet") for k in report["test"])
    assert "Sets" not in load_workbook(f"{out}.xlsx").sheetnames
    assert "Passages" not in Path(f"{out}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "item,set\nP1-1,P1\nQ9,P1\n",
            "{s} row 3: item 'Q9' is not an item column of {r}; fix the name or remove the line",
        ),
        ("P1-1,P1\nP1-2,P1,x\n", "{s} row 2: 3 fields but the header has 2; check the delimiters and quotes"),
        ("P1-1,P1,x\nP1-2,P1,y\n", "{s} row 1: expected item,set (two fields), found 3"),
        (
            "item,set\nP1-1,P1\nP1-2,P1\nP1-1,P2\nP1-3,P2\n",
            "{s} row 4: item 'P1-1' is in set 'P1' already (row 2); an item belongs to one set: remove one of"
            " the lines",
        ),
        (
            "item,set\nP1-1,P1\nP1-2,\n",
            "{s} row 3: item 'P1-2' has an empty set; name its set, or remove the line for an item in no set",
        ),
        (
            "item,set\nP1-1,P1\nP1-2,P1\nP1-3,Pl\n",
            "{s} row 4: set 'Pl' has only item 'P1-3'; a set is a passage read for several items: check the set's"
            " name, or remove the line",
        ),
        ("item,set\n", "{s}: no sets; write one line per item of a set: item,set"),
        ("\n", "{s}: no sets; write one line per item of a set: item,set"),
    ],
)
def test_bad_sets_files(tmp_path, capsys, text, message):
    responses, _ = passage_scores(tmp_path, n=20)
    sets = write(tmp_path / "sets.csv", text)
    code, err = run_cli(capsys, responses, "--sets", sets, "--json", tmp_path / "o.json")
    assert code == 1
    assert err == "cbt analyze: error: " + message.format(s=sets, r=responses) + "\n"
    assert not (tmp_path / "o.json").exists()
