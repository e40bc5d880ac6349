"""Items from a spreadsheet: one row per item, for teachers who do not write YAML.

Columns (the first row holds these names; order does not matter, case is
ignored; the template's "help" sheet says the same in Vietnamese and English):

===============  =============================================================
id, version      item id (letters, digits, . _ -) and version (1, 2 ...)
type             single, multiple, truefalse4, short or essay
subject, grade   e.g. toan, 12
topic, level     e.g. ham-so; 1 Nhận biết, 2 Thông hiểu, 3 Vận dụng, 4 Vận dụng cao
points           e.g. 0.25
lang, status     vi / en ...; draft, reviewed, approved or retired
tags, media      separated by commas: dao-ham, cuc-tri / media/graph.png
stem             the question (Markdown, $math$)
option A .. F    the options of single and multiple items
answer           single: B; multiple: A, C; truefalse4: Đ S Đ Đ (or T F T T);
                 short: the key, e.g. -1,5 (type it as text to keep leading zeros)
statement a .. d the four statements of a truefalse4 item
answer format    short only: vn-numeric (default), number or text
tolerance        short only, optional: e.g. 0.05
shuffle          yes (default) or no
explanation      optional, never shown during an exam
===============  =============================================================

Each row is turned into the native YAML shape and read by the YAML parser,
so spreadsheet and YAML items obey exactly the same rules; problems are then
reported as ``row 7, column 'level': ...``. Item sets (a passage with its
questions) do not fit one row: a row of type ``set`` is a problem saying to
write the set in YAML.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from itembank.archive import ArchiveLimits, write_atomic
from itembank.errors import ItembankError, Problem, XlsxError
from itembank.formats import sheet
from itembank.formats.yaml_format import SET, dump_yaml, parse_text, serialise_item
from itembank.levels import LEGACY, LevelScheme
from itembank.limits import TooLarge, megabytes
from itembank.model import Item, ItemType, Option, ShortFormat, ShortKey, Statement, Status
from itembank.validate import check_items

OPTION_IDS = "ABCDEF"
STATEMENT_IDS = "abcd"
# (column name, what goes in it), in template order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "Mã câu hỏi / item id: M12-HS-001"),
    ("version", "Phiên bản / version: 1"),
    ("type", "single | multiple | truefalse4 | short | essay"),
    ("subject", "Môn / subject: toan, vat-li ..."),
    ("grade", "Lớp / grade: 10, 11, 12 (không bắt buộc / optional)"),
    ("topic", "Chủ đề / topic: ham-so ..."),
    ("level", "1 Nhận biết, 2 Thông hiểu, 3 Vận dụng, 4 Vận dụng cao"),
    ("points", "Điểm / points: 0.25"),
    ("lang", "Ngôn ngữ / language: vi, en"),
    ("status", "draft | reviewed | approved | retired"),
    ("tags", "Nhãn, cách nhau bởi dấu phẩy / tags, comma-separated"),
    ("stem", "Đề bài (Markdown, công thức $...$) / the question"),
    *((f"option {i}", f"Phương án {i} / option {i} (single, multiple)") for i in OPTION_IDS),
    (
        "answer",
        "single: B; multiple: A, C; truefalse4: Đ S Đ Đ (or T F T T); short: -1,5",
    ),
    *((f"statement {s}", f"Ý {s}) / statement {s} (truefalse4)") for s in STATEMENT_IDS),
    ("answer format", "short: vn-numeric (mặc định / default) | number | text"),
    ("tolerance", "short: sai số cho phép / tolerance, e.g. 0.05 (không bắt buộc)"),
    ("shuffle", "Đảo phương án? / shuffle options? yes | no"),
    ("explanation", "Lời giải (không hiện khi thi) / explanation, never shown in exams"),
    ("media", "Tệp trong media/, cách nhau bởi dấu phẩy / media files"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
REQUIRED_COLUMNS = ("id", "type", "stem")
# Columns copied as they are into the item's YAML.
PLAIN_FIELDS = (
    "id", "version", "type", "subject", "grade", "topic", "level", "points", "lang", "status",
    "stem", "explanation",
)  # fmt: skip
_TYPES = {t.value for t in ItemType}
# The template has 28 columns and room for 5,000 items; a spreadsheet of
# items is a few MB. Beyond these, split it (see itembank.limits).
SHEET_LIMITS = sheet.SheetLimits(
    max_bytes=32 * 1024 * 1024,
    archive=ArchiveLimits(max_entries=10_000, max_entry_bytes=64 * 1024 * 1024, max_total_bytes=256 * 1024 * 1024),
    max_rows=50_000,
    max_cells=2_000_000,
    max_columns=256,
    refuse_wider=True,
)
_SPLIT = re.compile(r"\s*[,;]\s*|\s+")
_TRUE_WORDS = {"đ", "đúng", "t", "true", "yes", "y", "có", "1"}
_FALSE_WORDS = {"s", "sai", "f", "false", "no", "n", "không", "0"}


def read_xlsx(path: Path, *, levels: LevelScheme = LEGACY) -> list[Item]:
    """The items of a spreadsheet; raises XlsxError listing every problem, TooLarge past a limit.

    `levels` is the scheme of the bank the items are for (levels by id: ``hieu``).
    """
    try:
        size = path.stat().st_size
    except OSError as e:
        raise XlsxError("unreadable", sheet.unreadable(str(path), e.strerror).message, []) from None
    if size > SHEET_LIMITS.max_bytes:  # before reading it into memory
        raise TooLarge(
            f"{path}: the file is {megabytes(size)}, more than the {megabytes(SHEET_LIMITS.max_bytes)} allowed:"
            " split the items into several spreadsheets",
            megabytes(SHEET_LIMITS.max_bytes),
        )
    return read_xlsx_bytes(path.read_bytes(), path.name, str(path), levels=levels)


def read_xlsx_bytes(
    content: bytes, label: str, where: str | None = None, *, levels: LevelScheme = LEGACY
) -> list[Item]:
    """The items of a spreadsheet's bytes; problems name the file `label`, messages `where` (default: label)."""
    where = where or label
    try:
        rows = dict(sheet.rows(content, where, SHEET_LIMITS))
    except TooLarge:
        raise
    except ItembankError as e:
        raise XlsxError("unreadable", e.message, []) from None
    if not rows:
        raise XlsxError("empty", f"{where}: the first sheet is empty", [])
    columns, problems = _header(list(rows.pop(1, ())), label)  # the header is row 1, as in the template
    if problems:
        raise XlsxError("bad-header", f"{where}: the header row has problems", problems)
    sources = []
    for number, row in sorted(rows.items()):
        cells = {name: _cell(row[i]) for name, i in columns.items() if i < len(row)}
        if not any(cells.values()):
            continue  # blank row
        if (cells.get("type") or "").strip().lower() == SET:
            problems.append(
                _problem(
                    label,
                    number,
                    "type",
                    "set-not-in-xlsx",
                    "an item set (a passage or table with its questions) does not fit one row:"
                    " write sets in YAML (cbt bank validate checks them), and keep the spreadsheet for lone items",
                )
            )
            continue
        data, row_problems = _row_to_item_data(cells, label, number)
        result = parse_text(dump_yaml(data), label, levels=levels)
        # A cell already reported by the row reader would only echo here.
        reported = {p.column for p in row_problems} | {"statement a", "option A"}
        echoes = [_at_row(p, number) for p in result.problems]
        problems += row_problems
        problems += [p for p in echoes if not (row_problems and p.column in reported)]
        if row_problems:
            continue
        for source in result.items:
            # Every field of this item lives on the same row.
            lines = dict.fromkeys(source.field_lines, number)
            sources.append(type(source)(source.item, label, number, lines))
    problems += [_at_row(p, p.line or 0) for p in check_items(sources, lambda _: True, levels=levels)]
    problems.sort(key=lambda p: p.line or 0)
    if problems:
        raise XlsxError("invalid-rows", f"{where}: {len(problems)} problem(s)", problems)
    return [source.item for source in sources]


def xlsx_to_yaml(path: Path, out_dir: Path, *, overwrite: bool = False, levels: LevelScheme = LEGACY) -> list[Path]:
    """Write one YAML file per spreadsheet row into `out_dir`; all or nothing."""
    items = read_xlsx(path, levels=levels)
    targets = [out_dir / _file_name(item) for item in items]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        problems = [Problem(str(t), None, "exists", "already exists (use --force to replace it)") for t in existing]
        raise XlsxError("exists", f"{len(existing)} file(s) already exist in {out_dir}", problems)
    for item, target in zip(items, targets, strict=True):
        write_atomic(target, serialise_item(item).encode("utf-8"))
    return targets


def write_xlsx(path: Path, items: Iterable[Item]) -> None:
    """A spreadsheet with one row per item, in the template's layout.

    The layout has no place for a set or a fixed option: an item that is a
    set's child or has a fixed option is refused (ValueError) rather than
    written without it.
    """
    items = list(items)
    for item in items:
        if item.set_id is not None or any(option.fixed for option in item.options):
            what = f"is a child of set {item.set_id}" if item.set_id is not None else "has a fixed option"
            raise ValueError(f"item {item.key} {what}, which a spreadsheet cannot hold: write it in YAML")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "items"
    sheet.append(list(COLUMN_NAMES))
    for cell, (_, help_text) in zip(sheet[1], COLUMNS, strict=True):
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.comment = Comment(help_text, "cbt")
    for item in items:
        sheet.append([_item_cells(item).get(name) for name in COLUMN_NAMES])
    sheet.freeze_panes = "B2"
    wide = {"stem": 60, "explanation": 40, "answer": 14}
    for cell in sheet[1]:
        sheet.column_dimensions[cell.column_letter].width = wide.get(cell.value, 16)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    _add_choices(sheet, "type", [t.value for t in ItemType])
    _add_choices(sheet, "status", [s.value for s in Status])
    _add_choices(sheet, "level", ["1", "2", "3", "4"])
    _add_choices(sheet, "answer format", [f.value for f in ShortFormat])
    _add_choices(sheet, "shuffle", ["yes", "no"])
    help_sheet = workbook.create_sheet("help")
    help_sheet.append(["column", "meaning / ý nghĩa"])
    for name, help_text in COLUMNS:
        help_sheet.append([name, help_text])
    help_sheet.column_dimensions["A"].width = 16
    help_sheet.column_dimensions["B"].width = 90
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)


def write_template(path: Path) -> None:
    """The blank template: the header and one example row per item type."""
    write_xlsx(path, EXAMPLES)


def _example(item_id: str, kind: ItemType, level: int, points: str, stem: str, **more: Any) -> Item:
    return Item(
        id=item_id,
        version=1,
        type=kind,
        subject="toan",
        grade=12,
        topic="ham-so",
        level=level,
        points=Decimal(points),
        lang="vi",
        status=Status.DRAFT,
        stem=stem,
        **more,
    )


# One example row per type. Their status is draft, so that an example left
# in by mistake can never be signed into a release.
EXAMPLES: tuple[Item, ...] = (
    _example(
        "VD-SINGLE",
        ItemType.SINGLE,
        1,
        "0.25",
        "Đạo hàm của hàm số $y = x^2$ là",
        options=(
            Option("A", "$y' = 2x$", True),
            Option("B", "$y' = x$", False),
            Option("C", "$y' = 2$", False),
            Option("D", "$y' = x^2$", False),
        ),
        tags=("dao-ham",),
    ),
    _example(
        "VD-MULTIPLE",
        ItemType.MULTIPLE,
        2,
        "0.5",
        "Chọn **tất cả** các hàm số đồng biến trên $\\mathbb{R}$.",
        options=(
            Option("A", "$y = x^3$", True),
            Option("B", "$y = -x$", False),
            Option("C", "$y = 2x + 1$", True),
            Option("D", "$y = x^2$", False),
        ),
    ),
    _example(
        "VD-TRUEFALSE4",
        ItemType.TRUEFALSE4,
        2,
        "1",
        "Cho hàm số $f(x) = x^2 - 4x + 3$.",
        statements=(
            Statement("a", "$f(1) = 0$.", True),
            Statement("b", "Hàm số đồng biến trên $(-\\infty; 2)$.", False),
            Statement("c", "Giá trị nhỏ nhất của $f$ bằng $-1$.", True),
            Statement("d", "Đồ thị cắt trục tung tại $(0; 4)$.", False),
        ),
        explanation="$f(x) = (x - 2)^2 - 1$.",
    ),
    _example(
        "VD-SHORT",
        ItemType.SHORT,
        3,
        "0.5",
        "Giải phương trình $2x + 3 = 0$.",
        answer=ShortKey("-1,5"),
    ),
    _example(
        "VD-ESSAY",
        ItemType.ESSAY,
        4,
        "1",
        "Chứng minh rằng $x^2 - 2x + 2 > 0$ với mọi $x$.",
        explanation="$x^2 - 2x + 2 = (x - 1)^2 + 1 \\ge 1 > 0$.",
    ),
)


# ---------------------------------------------------------------- reading rows


def _header(row: list[Any], label: str) -> tuple[dict[str, int], list[Problem]]:
    """Column name -> index, with problems for unknown, repeated or missing columns."""
    columns: dict[str, int] = {}
    problems = []
    for index, value in enumerate(row):
        if value is None or not str(value).strip():
            continue
        name = " ".join(str(value).split()).lower()
        name = name.replace("_", " ")
        for letter in OPTION_IDS + STATEMENT_IDS:  # "option a" -> "option A"
            if name == f"option {letter.lower()}":
                name = f"option {letter.upper()}"
        shown = str(value).strip()
        if name not in COLUMN_NAMES:
            close = difflib.get_close_matches(name, COLUMN_NAMES, n=1, cutoff=0.6)
            hint = f" — did you mean '{close[0]}'?" if close else ": see the help sheet of the template"
            problems.append(_problem(label, 1, shown, "unknown-column", f"unknown column{hint}"))
        elif name in columns:
            problems.append(_problem(label, 1, shown, "duplicate-column", "this column appears twice"))
        else:
            columns[name] = index
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            problems.append(_problem(label, 1, name, "missing-column", "missing column: add it to the header row"))
    return columns, problems


def _cell(value: Any) -> str | None:
    """A cell as text, or None if empty. Whole numbers lose their ".0"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _row_to_item_data(cells: dict[str, str | None], label: str, row: int) -> tuple[dict[str, Any], list[Problem]]:
    """The row in the native YAML shape, ready for the YAML parser."""
    problems: list[Problem] = []

    def report(column: str, code: str, message: str) -> None:
        problems.append(_problem(label, row, column, code, message))

    data: dict[str, Any] = {name: cells[name] for name in PLAIN_FIELDS if cells.get(name)}
    for name in ("tags", "media"):
        if cells.get(name):
            data[name] = [part for part in re.split(r"\s*[,;]\s*", cells[name] or "") if part]
    if cells.get("shuffle"):
        shuffle = _truth(cells["shuffle"] or "")
        if shuffle is None:
            report("shuffle", "wrong-type", "write yes or no")
        else:
            data["shuffle"] = shuffle

    kind = cells.get("type") or ""
    answer = cells.get("answer")
    options = {i: cells[f"option {i}"] for i in OPTION_IDS if cells.get(f"option {i}")}
    statements = {s: cells[f"statement {s}"] for s in STATEMENT_IDS if cells.get(f"statement {s}")}
    if kind in (ItemType.SINGLE, ItemType.MULTIPLE):
        data["options"] = options
        if answer:
            keys = [key.upper() for key in _SPLIT.split(answer) if key]
            data["answer"] = keys[0] if kind == ItemType.SINGLE and len(keys) == 1 else keys
    elif options and kind in _TYPES:
        report("option A", "field-not-for-type", f"a {kind} item has no options: clear these cells")
    if kind == ItemType.TRUEFALSE4:
        truths = [_truth(word) for word in _truth_words(answer or "")]
        if len(truths) != len(statements) or None in truths:
            report(
                "answer",
                "truefalse4-statements",
                f"give one answer for each of the {len(statements)} statements, each Đ or S (or T or F), e.g. Đ S Đ Đ",
            )
        else:
            data["statements"] = {
                sid: {"text": text, "answer": truth}
                for (sid, text), truth in zip(statements.items(), truths, strict=True)
            }
    elif statements and kind in _TYPES:
        report(
            "statement a",
            "field-not-for-type",
            f"a {kind} item has no statements: clear these cells",
        )
    if kind == ItemType.SHORT and answer:
        fmt, tolerance = cells.get("answer format"), cells.get("tolerance")
        data["answer"] = answer
        if fmt or tolerance:
            data["answer"] = {"key": answer, "format": fmt or ShortFormat.VN_NUMERIC.value}
            if tolerance:
                data["answer"]["tolerance"] = tolerance
    return data, problems


def _truth_words(answer: str) -> list[str]:
    words = [w for w in _SPLIT.split(answer.casefold()) if w]
    if len(words) == 1 and _truth(words[0]) is None:
        return list(words[0])  # "ĐSĐĐ" or "TFTT" written together
    return words


def _truth(word: str) -> bool | None:
    word = word.casefold()
    return True if word in _TRUE_WORDS else False if word in _FALSE_WORDS else None


# Which column holds each item field, for messages.
def _column_of(field: str | None) -> str:
    if not field:
        return ""
    head, _, rest = field.partition(".")
    if head == "options":
        return f"option {rest.split('.')[0]}" if rest else "option A"
    if head == "statements":
        return f"statement {rest.split('.')[0]}" if rest else "statement a"
    if field in ("answer.format", "format"):
        return "answer format"
    if field == "answer.tolerance":
        return "tolerance"
    return head


def _at_row(problem: Problem, row: int) -> Problem:
    column = _column_of(problem.field)
    message = problem.message
    if problem.field and message.startswith(f"{problem.field}: "):
        message = message[len(problem.field) + 2 :]  # the column already says it
    if problem.code == "missing-field":  # in a spreadsheet, a missing field is an empty cell
        message = "this cell is empty: " + message.partition(": ")[2]
    return Problem(problem.file, row, problem.code, message, problem.field, column)


def _problem(label: str, row: int, column: str, code: str, message: str) -> Problem:
    return Problem(label, row, code, message, None, column)


def _file_name(item: Item) -> str:
    return f"{item.id}.yaml" if item.version == 1 else f"{item.id}-v{item.version}.yaml"


# ---------------------------------------------------------------- writing rows


def _item_cells(item: Item) -> dict[str, Any]:
    cells: dict[str, Any] = {
        "id": item.id,
        "version": item.version,
        "type": item.type.value,
        "subject": item.subject,
        "grade": item.grade,
        "topic": item.topic,
        "level": item.level,
        "points": str(item.points),
        "lang": item.lang,
        "status": item.status.value,
        "tags": ", ".join(item.tags) or None,
        "stem": item.stem,
        "shuffle": None if item.shuffle else "no",
        "explanation": item.explanation,
        "media": ", ".join(item.media) or None,
    }
    for option in item.options:
        cells[f"option {option.id}"] = option.text
    if item.type in (ItemType.SINGLE, ItemType.MULTIPLE):
        cells["answer"] = ", ".join(item.correct_option_ids)
    for statement in item.statements:
        cells[f"statement {statement.id}"] = statement.text
    if item.statements:
        cells["answer"] = " ".join("Đ" if s.answer else "S" for s in item.statements)
    if item.answer is not None:
        cells["answer"] = item.answer.canonical
        if item.answer.format != ShortFormat.VN_NUMERIC:
            cells["answer format"] = item.answer.format.value
        if item.answer.tolerance is not None:
            cells["tolerance"] = str(item.answer.tolerance)
    return cells


def _add_choices(sheet: Any, column: str, choices: list[str]) -> None:
    """A drop-down list on a column, so typos cannot happen."""
    letter = openpyxl.utils.get_column_letter(COLUMN_NAMES.index(column) + 1)
    rule = DataValidation(type="list", formula1=f'"{",".join(choices)}"', allow_blank=True)
    sheet.add_data_validation(rule)
    rule.add(f"{letter}2:{letter}5000")
