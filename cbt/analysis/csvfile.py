"""`cbt analyze`: item analysis of any responses CSV, without the server.

    cbt analyze RESPONSES.csv [--key KEY.csv] [--id-column COL]
                [--group-column COL --focal VALUE] [--irt rasch|2pl]
                [--omit wrong|missing] [--max-points ITEM=P ...]
                [--ignore COL ...] [--options A,B,C,D]
                [--threshold NAME=VALUE ...] [--sets SETS.csv]
                --json OUT.json [--xlsx OUT.xlsx] [--html OUT.html]

The xlsx and html reports are in English; with CBT_LANG=vi the workbook is in
Vietnamese (labels, flags, notes), as the exam board's download.

RESPONSES.csv has a header row and one row per examinee (comma, semicolon
or tab separated; UTF-8, a BOM is fine). Item columns hold the chosen
option with --key (letters or numbers; case and "1" vs "1.0" do not
matter) or the item score without it (a decimal comma is fine). An empty
cell is an omitted response. A CSV cannot tell "not reached" from
"omitted", so every empty cell counts as omitted.

Every other column must be the id column, the group column or named with
--ignore; anything unparseable is an error naming its row (as a
spreadsheet numbers it: the header is row 1) and column.

SETS.csv names the item sets (passages): ``item,set`` lines, with or
without an ``item,set`` header, one line per child; an item not listed is
standalone. The report then has per-set statistics and the testlet alpha.
A file rather than a naming rule for the columns (say "R1.2" for child 2
of set R1): item names come from whatever system wrote the responses, and
a rule would quietly make sets of names such as "Q1.2" that are only a
numbering; the file says which items share a passage, and its mistakes are
errors that name its row, as KEY.csv's are.

The numbers come from :func:`cbt.analysis.analyze_matrix`, the same
function the exam board's pages use.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from cbt.analysis import ctt
from cbt.analysis.report import AnalysisInputError, analyze_matrix

__all__ = ["AnalyzeError", "analyze_matrix", "build_parser", "main", "read_inputs", "register", "run"]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)")


class AnalyzeError(Exception):
    """A problem with the input the user can fix; the message says how."""


# -- command line ----------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "responses", type=Path, metavar="RESPONSES.csv", help="one row per examinee, a header row; empty cell = omitted"
    )
    p.add_argument(
        "--key",
        type=Path,
        metavar="KEY.csv",
        help="item,key[,points]: cells are then chosen options, scored by the key",
    )
    p.add_argument("--id-column", metavar="COL", help="column with the examinee id")
    p.add_argument("--group-column", metavar="COL", help="column with the DIF group")
    p.add_argument("--focal", metavar="VALUE", help="the group value of the focal group")
    p.add_argument("--irt", choices=("rasch", "2pl"), help="also fit an IRT model")
    p.add_argument(
        "--omit",
        choices=("wrong", "missing"),
        default="wrong",
        help="score an omitted response as wrong (default) or leave it out",
    )
    p.add_argument(
        "--max-points",
        nargs="+",
        action="extend",
        default=[],
        metavar="ITEM=P",
        help="maximum score of an item (without --key)",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="COL",
        help="a column that is not an item (repeat, or separate with commas)",
    )
    p.add_argument(
        "--options",
        metavar="A,B,C,D",
        help="the option labels of every item (with --key): shows options nobody chose and rejects any other answer",
    )
    p.add_argument(
        "--threshold",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME=VALUE",
        help="change a flag threshold: "
        + ", ".join(f"{f.name} (default {f.default})" for f in fields(ctt.FlagThresholds)),
    )
    p.add_argument(
        "--sets",
        type=Path,
        metavar="SETS.csv",
        help="item,set lines naming the items that share a passage (an item set); items not listed stand alone",
    )
    p.add_argument("--json", type=Path, required=True, metavar="OUT.json", help="the report")
    p.add_argument(
        "--xlsx",
        type=Path,
        metavar="OUT.xlsx",
        help="the report as a workbook, in English (with CBT_LANG=vi its labels, flags and notes are in"
        " Vietnamese, as the exam board's download)",
    )
    p.add_argument(
        "--html", type=Path, metavar="OUT.html", help="the report as one printable page with charts, in English"
    )


def register(subparsers) -> argparse.ArgumentParser:
    """Add the `analyze` subcommand to `cbt`'s subparsers."""
    p = subparsers.add_parser(
        "analyze",
        help="item analysis of a responses CSV (classical, IRT, DIF)",
        description="Item analysis of a responses CSV: classical statistics, flags, "
        "optionally IRT and DIF; writes JSON and optionally xlsx and html.",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cbt")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m cbt.analysis.csvfile ...` (same as `cbt analyze ...`)."""
    args = build_parser().parse_args(["analyze", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


def run(args: argparse.Namespace) -> int:
    """Run `cbt analyze`; returns the exit code (0 ok, 1 a problem, told on stderr)."""
    try:
        inputs = read_inputs(args)
        thresholds = _thresholds(args.threshold)
        report = analyze_matrix(
            inputs.pop("scores", None),
            irt_model=args.irt,
            omit=args.omit,
            thresholds=thresholds,
            traces=args.html is not None,
            **inputs,
        )
        traces = {item["id"]: item.pop("trace") for item in report["items"] if "trace" in item}
        _write(args.json, lambda f: json.dump(report, f, indent=1, ensure_ascii=False, allow_nan=False), "w")
        if args.xlsx is not None or args.html is not None:
            from cbt.analysis import render

            if args.xlsx is not None:
                words = _workbook_words(render)
                _write(args.xlsx, lambda f: render.write_xlsx(report, f, words=words), "wb")
            if args.html is not None:
                html = render.render_html(report, traces, title=args.responses.name)
                _write(args.html, lambda f: f.write(html), "w")
    except (AnalyzeError, AnalysisInputError) as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "))
    except MemoryError:
        return _fail("not enough memory for this file; analyse it on a larger machine")
    except Exception as e:  # a bug: still one line, never a traceback
        return _fail(
            f"internal error ({type(e).__name__}: {e}); please report it with the "
            "command line and, if you can, the input files"
        )
    return 0


def _workbook_words(render) -> dict | None:
    """The workbook's words: English (None) unless CBT_LANG=vi asks for Vietnamese."""
    if os.environ.get("CBT_LANG") != "vi":
        return None
    from cbt.platform.i18n import Catalogs
    from cbt.platform.templating import web_root

    return render.catalog_words(Catalogs(web_root() / "i18n").translator("vi"))


def _fail(message: str) -> int:
    print(f"cbt analyze: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


def _write(path: Path, write, mode: str) -> None:
    if mode == "w":
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            write(f)
    else:
        with open(path, "wb") as f:
            write(f)


def _thresholds(items: list[str]) -> ctt.FlagThresholds:
    t = ctt.FlagThresholds()
    names = {f.name for f in fields(t)}
    for spec in items:
        name, sep, value = spec.partition("=")
        if not sep or name not in names:
            raise AnalyzeError(f"--threshold {spec!r}: give NAME=VALUE with NAME one of {', '.join(sorted(names))}")
        number = _parse_number(value)
        if number is None:
            raise AnalyzeError(f"--threshold {spec!r}: {value!r} is not a number")
        t = replace(t, **{name: number})
    return t


# -- reading the files -----------------------------------------------------------------------


def _read_table(path: Path, what: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and (row number, cells) of a delimited text file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise AnalyzeError(f"{path}: not UTF-8 text (byte {e.start}); save the {what} as CSV UTF-8") from None
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if any(c in first for c in ",;\t") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise AnalyzeError(f"{path}: empty file; the {what} needs a header row")
        header = [h.strip() for h in header]
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            if len(cells) != len(header):
                raise AnalyzeError(
                    f"{path} row {reader.line_num}: {len(cells)} fields but the "
                    f"header has {len(header)}; check the delimiters and quotes"
                )
            rows.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as e:
        raise AnalyzeError(f"{path} row {reader.line_num}: {e}") from None
    return header, rows


def _parse_number(cell: str) -> float | None:
    if not _NUMBER.fullmatch(cell):
        return None
    return float(cell.replace(",", "."))


def _label(cell: str) -> str:
    """Canonical option label: "b" -> "B", "1.0" -> "1"."""
    number = _parse_number(cell)
    if number is not None:
        return str(int(number)) if number.is_integer() else repr(number)
    return cell.upper()


def _label_order(label: str):
    number = _parse_number(label)
    return (0, number, "") if number is not None else (1, 0.0, label)


def _columns(spec: list[str]) -> list[str]:
    return [c.strip() for s in spec for c in s.split(",") if c.strip()]


def read_inputs(args: argparse.Namespace) -> dict:
    """Parse RESPONSES.csv (and KEY.csv) into analyze_matrix's keyword arguments."""
    path = args.responses
    header, rows = _read_table(path, "responses file")
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            raise AnalyzeError(f"{path}: column {i + 1} of the header has no name; name it")
        if name in seen:
            raise AnalyzeError(f"{path}: two columns are named {name!r}; rename one")
        seen[name] = i

    def column(name: str, option: str) -> int:
        if name not in seen:
            raise AnalyzeError(f"{option} {name!r}: no such column in {path} (columns: {', '.join(header)})")
        return seen[name]

    if (args.group_column is None) != (args.focal is None):
        raise AnalyzeError(
            "--group-column and --focal go together: name the group column and the value of the focal group"
        )
    special = {}
    if args.id_column is not None:
        special[column(args.id_column, "--id-column")] = "id"
    if args.group_column is not None:
        special[column(args.group_column, "--group-column")] = "group"
    for name in _columns(args.ignore):
        special[column(name, "--ignore")] = "ignore"
    items = [i for i in range(len(header)) if i not in special]
    if not items:
        raise AnalyzeError(f"{path}: no item columns left after the id, group and ignored ones")
    if not rows:
        raise AnalyzeError(f"{path}: no examinee rows under the header")
    item_names = [header[i] for i in items]
    out: dict = {"item_ids": item_names}

    if args.id_column is not None:
        out["examinee_ids"] = [cells[seen[args.id_column]] for _, cells in rows]
    if args.group_column is not None:
        out["group"] = _group(path, rows, seen[args.group_column], args.group_column, args.focal)

    if args.key is not None:
        if args.max_points:
            raise AnalyzeError(
                "--max-points is for score files; with --key put the points in the third column of KEY.csv"
            )
        out.update(_read_choices(args, path, rows, items, item_names, header))
    else:
        if args.options is not None:
            raise AnalyzeError("--options needs --key (without a key the cells are scores)")
        out.update(_read_scores(args, path, rows, items, item_names, header))
    if args.sets is not None:
        out["sets"] = _read_sets(args.sets, item_names, path)
    return out


def _read_sets(path: Path, item_names: list[str], responses: Path) -> list[str | None]:
    """SETS.csv (item,set lines) as analyze_matrix's sets: [k] set name or None."""
    try:
        blank = not path.read_text(encoding="utf-8-sig").strip()
    except UnicodeDecodeError:
        blank = False  # _read_table says what is wrong with it
    if blank:  # the header row is optional here, so say what the file needs
        raise AnalyzeError(f"{path}: no sets; write one line per item of a set: item,set")
    header, rows = _read_table(path, "sets file")
    all_rows = [(1, header), *rows]
    if [h.lower() for h in header] == ["item", "set"]:
        all_rows = rows  # a header row
    if not all_rows:
        raise AnalyzeError(f"{path}: no sets; write one line per item of a set: item,set")
    where: dict[str, tuple[str, int]] = {}
    for line, cells in all_rows:
        if len(cells) != 2:
            raise AnalyzeError(f"{path} row {line}: expected item,set (two fields), found {len(cells)}")
        item, name = cells
        if item not in item_names:
            raise AnalyzeError(
                f"{path} row {line}: item {item!r} is not an item column of {responses}; "
                "fix the name or remove the line"
            )
        if not name:
            raise AnalyzeError(
                f"{path} row {line}: item {item!r} has an empty set; name its set, or remove the line "
                "for an item in no set"
            )
        if item in where:
            other, first = where[item]
            raise AnalyzeError(
                f"{path} row {line}: item {item!r} is in set {other!r} already (row {first}); "
                "an item belongs to one set: remove one of the lines"
            )
        where[item] = (name, line)
    members: dict[str, list[str]] = {}
    for item, (name, _) in where.items():
        members.setdefault(name, []).append(item)
    for name, children in members.items():
        if len(children) == 1:
            # Most likely a misspelt set name; a passage read for one item is a standalone item.
            raise AnalyzeError(
                f"{path} row {where[children[0]][1]}: set {name!r} has only item {children[0]!r}; "
                "a set is a passage read for several items: check the set's name, or remove the line"
            )
    return [where[name][0] if name in where else None for name in item_names]


def _group(path, rows, col, name, focal):
    focal_label = _label(focal.strip())
    values = [cells[col] for _, cells in rows]
    group = np.array([-1 if not v else (1 if _label(v) == focal_label else 0) for v in values], dtype=np.int8)
    if not (group == 1).any():
        shown = sorted({v for v in values if v}, key=_label_order)[:10]
        raise AnalyzeError(
            f"--focal {focal!r}: no examinee has {name} = {focal!r} in {path} "
            f"(values seen: {', '.join(shown) or 'none'})"
        )
    if not (group == 0).any():
        raise AnalyzeError(
            f"{path}: every examinee with a {name} is in the focal group {focal!r}; DIF needs a reference group too"
        )
    return group


def _read_key(path: Path, item_names: list[str], responses: Path):
    header, rows = _read_table(path, "key")
    all_rows = [(1, header), *rows]
    if header and header[0].strip().lower() == "item":
        all_rows = rows  # a header row
    if not all_rows:
        raise AnalyzeError(f"{path}: no keys; write one line per item: item,key[,points]")
    key: dict[str, tuple[str, float]] = {}
    for line, cells in all_rows:
        if len(cells) not in (2, 3):
            raise AnalyzeError(f"{path} row {line}: expected item,key[,points]")
        item, label = cells[0], cells[1]
        if item not in item_names:
            raise AnalyzeError(
                f"{path} row {line}: item {item!r} is not a column of {responses}; fix the name or remove the line"
            )
        if item in key:
            raise AnalyzeError(f"{path} row {line}: item {item!r} has a key already")
        if not label:
            raise AnalyzeError(f"{path} row {line}: item {item!r} has an empty key")
        points = 1.0
        if len(cells) == 3 and cells[2]:
            number = _parse_number(cells[2])
            if number is None or number <= 0:
                raise AnalyzeError(f"{path} row {line}: points {cells[2]!r} of item {item!r} must be a positive number")
            points = number
        key[item] = (_label(label), points)
    missing = [n for n in item_names if n not in key]
    if missing:
        raise AnalyzeError(
            f"{responses}: column {missing[0]!r} has no key in {path}; add it to the key or name it with --ignore"
        )
    return key


def _read_choices(args, path, rows, items, item_names, header) -> dict:
    key = _read_key(args.key, item_names, path)
    fixed = None
    if args.options is not None:
        fixed = [_label(o.strip()) for o in args.options.split(",") if o.strip()]
        if len(set(fixed)) != len(fixed) or not fixed:
            raise AnalyzeError(f"--options {args.options!r}: give distinct labels, e.g. A,B,C,D")
    cells_by_item = [[cells[c] for _, cells in rows] for c in items]
    labels_per_item = []
    for j, name in enumerate(item_names):
        key_label = key[name][0]
        if fixed is not None:
            if key_label not in fixed:
                raise AnalyzeError(
                    f"{args.key}: key {key_label!r} of item {name!r} is not one of --options {args.options}"
                )
            labels_per_item.append(fixed)
        else:
            found = {_label(v) for v in cells_by_item[j] if v}
            labels_per_item.append(sorted(found | {key_label}, key=_label_order))
    most = max(len(lab) for lab in labels_per_item)
    dtype = np.int8 if most < 127 else np.int32
    choices = np.empty((len(rows), len(items)), dtype=dtype)
    for j, name in enumerate(item_names):
        index = {lab: o for o, lab in enumerate(labels_per_item[j])}
        col = choices[:, j]
        for r, v in enumerate(cells_by_item[j]):
            if not v:
                col[r] = ctt.OMITTED
                continue
            o = index.get(_label(v))
            if o is None:
                raise AnalyzeError(
                    f"{path} row {rows[r][0]}, column {name!r}: {v!r} is not one of "
                    f"--options {args.options}; fix the cell or leave it empty "
                    "for an omitted response"
                )
            col[r] = o
    return {
        "choices": choices,
        "key": [labels_per_item[j].index(key[n][0]) for j, n in enumerate(item_names)],
        "options": labels_per_item,
        "max_points": [key[n][1] for n in item_names],
    }


def _read_scores(args, path, rows, items, item_names, header) -> dict:
    given: dict[str, float] = {}
    for spec in args.max_points:
        name, sep, value = spec.rpartition("=")
        number = _parse_number(value) if sep else None
        if not sep or number is None or number <= 0:
            raise AnalyzeError(f"--max-points {spec!r}: write ITEM=P with P a positive number")
        if name not in item_names:
            raise AnalyzeError(f"--max-points {spec!r}: {name!r} is not an item column of {path}")
        given[name] = number
    n_rows = len(rows)
    scores = np.empty((n_rows, len(items)))
    omitted = np.zeros((n_rows, len(items)), dtype=bool)
    cache: dict[str, float | None] = {}
    for j, c in enumerate(items):
        col = scores[:, j]
        for r, (line, cells) in enumerate(rows):
            v = cells[c]
            if not v:
                omitted[r, j] = True
                col[r] = np.nan
                continue
            number = cache[v] if v in cache else cache.setdefault(v, _parse_number(v))
            if number is None:
                raise AnalyzeError(
                    f"{path} row {line}, column {header[c]!r}: {v!r} is not a "
                    "number; without --key every item cell is a score (empty "
                    "for omitted), with --key a chosen option"
                )
            if number < 0:
                raise AnalyzeError(
                    f"{path} row {line}, column {header[c]!r}: negative score "
                    f"{v!r}; scores run from 0 to the item's maximum"
                )
            col[r] = number
    max_points = []
    for j, name in enumerate(item_names):
        col = scores[:, j]
        if name in given:
            over = np.flatnonzero(col > given[name])
            if over.size:
                r = int(over[0])
                raise AnalyzeError(
                    f"{path} row {rows[r][0]}, column {name!r}: score "
                    f"{rows[r][1][items[j]]!r} is above --max-points "
                    f"{name}={given[name]:g}; fix the cell or the maximum"
                )
            max_points.append(given[name])
        else:
            present = col[~np.isnan(col)]
            zero_one = bool(np.all((present == 0) | (present == 1)))
            top = float(present.max()) if present.size else 0.0
            max_points.append(1.0 if zero_one or top == 0 else top)
    return {"scores": scores, "omitted": omitted, "max_points": max_points}


if __name__ == "__main__":
    sys.exit(main())
