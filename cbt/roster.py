"""Candidates of an exam: reading the roster spreadsheet, and their login tickets.

Pure: no database, no web, no asyncio. `cbt exam roster` and the web upload
call :func:`parse_roster`; `cbt exam tickets` calls :func:`generate_ticket`,
:func:`tickets_by_room` and :func:`tickets_csv` (or renders
``web/templates/exam/tickets.html``).

Roster files
============

A CSV file (UTF-8, with or without a BOM; comma, semicolon or tab between
cells, as Vietnamese Excel saves "CSV" with semicolons) or an Excel workbook
(.xlsx, first sheet). The header row names the columns, in any order; case,
Vietnamese diacritics, punctuation and a note in parentheses are ignored
("Ngày sinh (dd/mm/yyyy)" is "ngay sinh"). Accepted names:

=================  ==========================================  ==========================================
column             Vietnamese                                  English
=================  ==========================================  ==========================================
student code       Mã học sinh, Mã HS, Mã số học sinh,          student code, student id, code
                   Mã định danh (học sinh), Mã, Số báo danh,
                   SBD
full name          Họ và tên, Họ tên, Họ và tên học sinh,       full name, name, student name
                   Họ tên học sinh
date of birth      Ngày sinh, Ngày tháng năm sinh               date of birth, birth date, birthdate, dob
class              Lớp, Tên lớp                                 class, class name
school (optional)  Trường, Tên trường, Trường học               school, school name
room               Phòng thi, Phòng                             room, exam room
time multiplier    Hệ số thời gian, Hệ số thời gian làm bài,    time multiplier, multiplier
(optional)         Hệ số
=================  ==========================================  ==========================================

Other columns (STT, Giới tính, Ghi chú ...) are ignored, unless their name is
a near miss of a missing column ("Phong thj"), which is reported. Title rows
above the header ("DANH SÁCH THÍ SINH ...") are skipped: the header is the
first of the first ten rows that names at least two known columns. Empty rows
are ignored.

Cells:

- student code: exactly 10 digits, kept as text, leading zeros included. In
  .xlsx a number cell with fewer digits has lost its leading zeros; that is
  reported, never padded (the column must be formatted as Text).
- date of birth: dd/mm/yyyy (also with - or .), yyyy-mm-dd, or a real date cell.
- school: without the column, or in an empty cell, the school is left empty
  here and :func:`cbt.exams.add_roster` names the exam's organisation.
- time multiplier: empty for 1, otherwise between 1 and 3 (1,5 = 50 % extra
  time); a decimal comma is fine.

Every problem of the whole file is collected and raised at once as a
:class:`RosterError`; nothing is returned if any row is bad. Row numbers are
those the spreadsheet shows (the header is row 1 when it is on top). Each
problem says itself in English (the CLI prints that) and carries a catalog key
and the values its text needs, so the web says it in the reader's language
(``roster.problem.<key>`` in web/i18n).

:func:`template_xlsx` is the workbook teachers fill in: the Vietnamese headers
and an example row.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import difflib
import hashlib
import io
import itertools
import re
import secrets
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal, InvalidOperation
from typing import Any

from cbt.platform.errors import UserError
from itembank.archive import ArchiveLimits
from itembank.errors import ItembankError
from itembank.limits import TooLarge, megabytes

__all__ = [
    "MAX_BYTES",
    "MAX_ROWS",
    "TICKET_ALPHABET",
    "TICKET_BITS",
    "Candidate",
    "RosterError",
    "RosterProblem",
    "generate_ticket",
    "name_sort_key",
    "normalise_ticket",
    "parse_roster",
    "room_sort_key",
    "sort_fold",
    "template_xlsx",
    "ticket_hash",
    "tickets_by_room",
    "tickets_csv",
]

MAX_ROWS = 100_000  # candidates in one file: a whole province's exam, split by school beyond that
MAX_BYTES = 5 * 1024 * 1024  # 5 MB holds ~100,000 rows of CSV, far more as .xlsx
# An .xlsx is a zip: bound what it unpacks to as well, so a small "zip bomb"
# cannot make openpyxl fill the server's memory.
MAX_UNPACKED_BYTES = 50 * MAX_BYTES
MAX_COLUMNS = 100  # cells read per row; roster exports have a dozen or two
MAX_CELLS_PER_ROW = 20  # on average, counting every cell present: bounds the work a sheet can ask for
# Entries of the workbook's zip, and what one part (the sheet, its shared
# strings) may unpack to: a 100,000-candidate sheet is about 40 MB of XML.
XLSX_ARCHIVE = ArchiveLimits(max_entries=10_000, max_entry_bytes=100 * 1024 * 1024, max_total_bytes=MAX_UNPACKED_BYTES)
HEADER_SEARCH_ROWS = 10  # title rows a school export may put above the header
MIN_AGE_YEARS = 4
MAX_AGE_YEARS = 100
MIN_MULTIPLIER = Decimal(1)
MAX_MULTIPLIER = Decimal(3)
CODE_DIGITS = 10
MAX_TEXT = {"full_name": 100, "class_name": 50, "school": 200, "room": 50}
MAX_REPORTED = 200  # problems shown in the error's message and JSON details; `problems` holds all


@dataclass(frozen=True)
class Candidate:
    """One row of the roster. `code` is the Ministry's 10-digit student code, as text."""

    code: str
    full_name: str
    date_of_birth: datetime.date
    class_name: str
    school: str  # "" when the file names none: the exam's organisation is meant
    room: str
    time_multiplier: Decimal = Decimal(1)


# ---------------------------------------------------------------- problems


@dataclass(frozen=True)
class RosterProblem:
    """One thing wrong in the file, printed ``row 7, column 'Ngày sinh': ...``.

    `row` is None for a problem of the whole file (empty, too large ...);
    `column` is the header as written in the file, or the expected name of a
    missing column. `code` is stable, for scripts and the page's JS. `message`
    is English; `key` (``roster.problem.<key>`` in the catalogs, the code
    itself unless one code has several texts) and `details` (the values its
    text quotes) give it in the reader's language.
    """

    row: int | None
    column: str | None
    code: str
    message: str
    key: str = ""
    details: dict[str, Any] = dataclass_field(default_factory=dict)

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return ", ".join(where) + ": " + self.message if where else self.message

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "code": self.code,
            "message": self.message,
            "key": self.key or self.code,
            "details": self.details,
        }


class RosterError(UserError):
    """The roster has problems; nothing was imported. `problems` lists every one."""

    def __init__(self, problems: Iterable[RosterProblem]) -> None:
        self.problems = list(problems)
        shown = [str(p) for p in self.problems[:MAX_REPORTED]]
        more = len(self.problems) - len(shown)
        if more:
            shown.append(f"... and {more} more")
        count = len(self.problems)
        message = (
            f"The roster has {count} problem{'s' if count != 1 else ''}; nothing was imported. "
            "Fix the file and import it again:\n" + "\n".join(shown)
        )
        super().__init__(
            "roster_invalid",
            message,
            problems=[p.to_json() for p in self.problems[:MAX_REPORTED]],
            problem_count=count,
        )

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple:
        # Sent from the reading process (cbt.platform.uploads) with the problems shown, not every one of a bad file:
        # the message and details already count them all.
        rebuild, (cls, state) = super().__reduce__()
        return rebuild, (cls, {**state, "problems": self.problems[:MAX_REPORTED]})


# ---------------------------------------------------------------- columns


def _fold(text: str) -> str:
    """Lower case without diacritics: "Họ và TÊN" -> "ho va ten" (đ -> d)."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("đ", "d"))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def _header_key(value: Any) -> str:
    """How a header cell is compared: folded, notes in parentheses and punctuation dropped."""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", str(value))
    return " ".join(re.sub(r"[^0-9a-z]+", " ", _fold(text)).split())


@dataclass(frozen=True)
class _Column:
    field: str
    label: str  # how a message names the column when the file lacks it
    english: str
    names: tuple[str, ...]  # accepted headers, as _header_key gives them
    required: bool = True


COLUMNS: tuple[_Column, ...] = (
    _Column("code", "Số báo danh", "student code", (
        "ma hoc sinh", "ma hs", "ma so hoc sinh", "ma so hs", "ma dinh danh", "ma dinh danh hoc sinh", "ma",
        "so bao danh", "sbd", "so bd",
        "student code", "student id", "code",
    )),
    _Column("full_name", "Họ và tên", "full name", (
        "ho va ten", "ho ten", "ho va ten hoc sinh", "ho ten hoc sinh", "full name", "name", "student name",
    )),
    _Column("date_of_birth", "Ngày sinh", "date of birth", (
        "ngay sinh", "ngay thang nam sinh", "date of birth", "birth date", "birthdate", "dob",
    )),
    _Column("class_name", "Lớp", "class", ("lop", "ten lop", "class", "class name")),
    # Optional: most rosters are one school's, and the exam's organisation is that school.
    _Column("school", "Trường", "school", ("truong", "ten truong", "truong hoc", "school", "school name"),
            required=False),
    _Column("room", "Phòng thi", "room", ("phong thi", "phong", "room", "exam room")),
    _Column("time_multiplier", "Hệ số thời gian", "time multiplier", (
        "he so thoi gian", "he so thoi gian lam bai", "he so", "time multiplier", "multiplier",
    ), required=False),
)  # fmt: skip
_BY_NAME = {name: column for column in COLUMNS for name in column.names}
_ALL_NAMES = tuple(_BY_NAME)


def _find_header(rows: Sequence[tuple[int, Sequence[Any]]]) -> tuple[int, Sequence[Any]] | None:
    """The header row among the first non-empty rows: the first naming two known columns."""
    candidates = [(number, cells) for number, cells in rows if not _is_empty(cells)][:HEADER_SEARCH_ROWS]
    for number, cells in candidates:
        if sum(1 for cell in cells if cell is not None and _header_key(cell) in _BY_NAME) >= 2:
            return number, cells
    return candidates[0] if candidates else None


def _map_header(number: int, cells: Sequence[Any]) -> tuple[dict[str, tuple[int, str]], list[RosterProblem]]:
    """field -> (index, header as written), and the header's problems."""
    found: dict[str, tuple[int, str]] = {}
    unknown: list[tuple[str, str]] = []  # (header as written, key)
    problems = []
    for index, cell in enumerate(cells):
        if cell is None or not str(cell).strip():
            continue
        shown = " ".join(str(cell).split())
        key = _header_key(cell)
        column = _BY_NAME.get(key)
        if column is None:
            unknown.append((shown, key))
        elif column.field in found:
            first = found[column.field][1]
            problems.append(RosterProblem(
                number, shown, "roster_column_twice",
                f"this is the same column as '{first}' ({column.label}): delete one of the two columns",
                details={"first": first, "label": column.label},
            ))  # fmt: skip
        else:
            found[column.field] = (index, shown)
    near_misses = set()
    for shown, key in unknown:
        # A typo in a column name must not silently drop the column (a typo in
        # "Hệ số thời gian" would give a student entitled to extra time none).
        close = difflib.get_close_matches(key, _ALL_NAMES, n=1, cutoff=0.8) if key else []
        if close and _BY_NAME[close[0]].field not in found:
            column = _BY_NAME[close[0]]
            near_misses.add(column.field)
            problems.append(RosterProblem(
                number, shown, "roster_column_unknown",
                f"column name not recognised: if it is meant to be '{column.label}' ({column.english}), "
                "correct its spelling",
                details={"label": column.label},
            ))  # fmt: skip
    for column in COLUMNS:
        if column.required and column.field not in found and column.field not in near_misses:
            problems.append(RosterProblem(
                number, column.label, "roster_column_missing",
                f"this column is missing: add a column headed '{column.label}' (or '{column.english}') "
                "to the header row",
                key=f"roster_column_missing.{column.field}", details={"label": column.label},
            ))  # fmt: skip
    return found, problems


# ---------------------------------------------------------------- reading the file


def parse_roster(
    data: bytes,
    filename: str,
    *,
    today: datetime.date | None = None,
    max_rows: int = MAX_ROWS,
    max_bytes: int = MAX_BYTES,
) -> list[Candidate]:
    """The candidates of a roster file (CSV or .xlsx, chosen by its content and name).

    Raises :class:`RosterError` listing every problem if anything is wrong;
    then nothing is returned. `today` (default: the local date) bounds
    plausible dates of birth.
    """
    today = today or datetime.date.today()
    if not data:
        raise _file_error(
            "roster_empty",
            "the file is empty: choose the roster file (CSV or .xlsx with a header row and one row per candidate)",
        )
    if len(data) > max_bytes:
        raise _file_error(
            "roster_too_large",
            f"the file is {megabytes(len(data))}, more than the "
            f"{megabytes(max_bytes)} allowed: delete unused sheets and columns, or split the roster "
            "into several files",
            size=megabytes(len(data)),
            limit=megabytes(max_bytes),
        )
    rows = _read_rows(data, filename, max_rows)
    return _parse_rows(rows, today=today, max_rows=max_rows)


def _file_error(code: str, message: str, *, key: str = "", **details: Any) -> RosterError:
    """An error about the whole file rather than one of its cells."""
    return RosterError([RosterProblem(None, None, code, message, key, details)])


_UNREADABLE_XLSX = "the file is not a readable .xlsx workbook: open it in Excel, save it again as .xlsx and import that"


def _rows_allowed(max_rows: int) -> int:
    """Rows a file may have, blank ones included: as many blank or formatted rows as candidates, and some."""
    return 2 * max_rows + HEADER_SEARCH_ROWS + 1000


def _too_many_rows(limit: int) -> RosterError:
    return _file_error(
        "roster_too_large",
        f"the file has more than {limit:,} rows, counting empty ones: delete "
        "the empty rows below the candidates, or split the roster into several files",
        key="roster_too_large.rows",
        limit=limit,
    )


def _read_rows(data: bytes, filename: str, max_rows: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """(row number as the spreadsheet shows it, cells) for every row of the file."""
    name = filename.lower()
    if data.startswith(b"PK\x03\x04"):  # a zip: an .xlsx, whatever its name says
        return _xlsx_rows(data, filename, max_rows)
    if data.startswith(b"\xd0\xcf\x11\xe0") or name.endswith(".xls"):  # the old binary Excel format
        raise _file_error(
            "roster_file_type",
            "this is an old Excel .xls file: open it in Excel and save it as .xlsx (Excel Workbook), then import that",
            key="roster_file_type.xls",
        )
    if name.endswith((".xlsx", ".xlsm")):
        raise _file_error("roster_xlsx_unreadable", _UNREADABLE_XLSX)
    if not name.endswith((".csv", ".txt")) and "." in name.rsplit("/", 1)[-1]:
        raise _file_error(
            "roster_file_type",
            f"cannot read '{_clip(filename)}': import the roster as CSV (UTF-8) or as an Excel .xlsx workbook",
            filename=_clip(filename),
        )
    return _csv_rows(data, max_rows)


def _csv_rows(data: bytes, max_rows: int) -> Iterator[tuple[int, Sequence[Any]]]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode Text"
        text = data.decode("utf-16", errors="replace")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            row = data[: e.start].count(b"\n") + 1
            problem = RosterProblem(
                row,
                None,
                "roster_encoding",
                "the file is not UTF-8 text: in Excel choose "
                "File > Save As > 'CSV UTF-8 (Comma delimited)' or save it as .xlsx, then "
                "import that",
            )
            raise RosterError([problem]) from None
    delimiter = _guess_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    number, limit = 0, _rows_allowed(max_rows)
    try:
        for number, cells in enumerate(reader, start=1):  # number names the bad row below
            if number > limit:
                raise _too_many_rows(limit)
            yield number, cells[:MAX_COLUMNS]
    except csv.Error as e:
        problem = RosterProblem(
            number + 1,
            None,
            "roster_csv_malformed",
            f"this row cannot be read as CSV ({e}): check its quotes, or save the file again from Excel",
            details={"error": str(e)},
        )
        raise RosterError([problem]) from None


def _guess_delimiter(text: str) -> str:
    """The cell separator: whichever of , ; and tab the first non-empty lines use most."""
    sample = list(itertools.islice((line for line in io.StringIO(text) if line.strip()), HEADER_SEARCH_ROWS + 1))
    counts = {d: sum(line.count(d) for line in sample) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _xlsx_rows(data: bytes, filename: str, max_rows: int) -> Iterator[tuple[int, Sequence[Any]]]:
    from itembank.formats import sheet  # only the xlsx path needs openpyxl; keeps importing this module cheap

    # Rows and cells as the sheet really has them, not as its dimension
    # declares: room for as many blank or formatted rows as candidates.
    limits = sheet.SheetLimits(
        max_bytes=len(data),
        archive=XLSX_ARCHIVE,
        max_rows=_rows_allowed(max_rows),
        max_cells=MAX_CELLS_PER_ROW * max_rows + 10_000,
        max_columns=MAX_COLUMNS,
    )
    try:
        yield from sheet.rows(data, _clip(filename), limits)
    except TooLarge as e:
        raise _file_error("roster_too_large", e.message, key="roster_too_large.sheet", limit=e.limit) from None
    except ItembankError:  # not a workbook, or a damaged sheet
        raise _file_error("roster_xlsx_unreadable", _UNREADABLE_XLSX) from None


def _is_empty(cells: Sequence[Any]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def _parse_rows(rows: Iterator[tuple[int, Sequence[Any]]], *, today: datetime.date, max_rows: int) -> list[Candidate]:
    # The header is looked for among the first rows; keep them to parse after it.
    head: list[tuple[int, Sequence[Any]]] = []
    filled = 0
    for number, cells in rows:
        if _is_empty(cells):
            continue  # not kept: a file of blank rows would fill memory before its header is found
        head.append((number, cells))
        filled += 1
        if filled >= HEADER_SEARCH_ROWS:
            break
    header = _find_header(head)
    if header is None:
        raise _file_error(
            "roster_empty",
            "the file has no rows: put a header row (Số báo danh, Họ và tên, "
            "Ngày sinh, Lớp, Trường, Phòng thi) and one row per candidate",
            key="roster_empty.no_rows",
        )
    header_row, header_cells = header
    columns, problems = _map_header(header_row, header_cells)
    if problems:
        raise RosterError(problems)  # rows cannot be read without their columns

    candidates: list[Candidate] = []
    seen: dict[str, int] = {}  # student code -> first row
    count = 0

    def after_header() -> Iterator[tuple[int, Sequence[Any]]]:
        yield from (row for row in head if row[0] > header_row)
        yield from rows

    for number, cells in after_header():
        if _is_empty(cells):
            continue
        count += 1
        if count > max_rows:
            raise _file_error(
                "roster_too_many_rows",
                f"the file has more than {max_rows:,} candidates: split it "
                "into several files (for example one per school) and import each",
                limit=max_rows,
            )
        values, row_problems = _parse_row(number, cells, columns, today)
        if "code" in values:
            first = seen.setdefault(values["code"], number)
            if first != number:
                row_problems.append(RosterProblem(
                    number, columns["code"][1], "roster_code_duplicate",
                    f"student code {values['code']} is also in row {first}: each candidate may appear only once; "
                    "delete or correct one of the two rows",
                    details={"code": values["code"], "first": first},
                ))  # fmt: skip
        if row_problems:
            problems.extend(row_problems)
        elif not problems:  # once a row is bad nothing is returned: stop building candidates
            candidates.append(Candidate(**values))
    if problems:
        raise RosterError(problems)
    if not candidates:
        raise _file_error(
            "roster_no_candidates",
            "the file has a header row but no candidates: add one row per candidate below the header",
        )
    return candidates


def _parse_row(
    number: int, cells: Sequence[Any], columns: dict[str, tuple[int, str]], today: datetime.date
) -> tuple[dict[str, Any], list[RosterProblem]]:
    """The row's good values by field, and a problem for each bad cell."""
    problems: list[RosterProblem] = []
    values: dict[str, Any] = {"school": ""}  # a file without the column: the exam's organisation
    for field, (index, shown) in columns.items():
        value = cells[index] if index < len(cells) else None
        try:
            if field == "code":
                values[field] = _code(value)
            elif field == "date_of_birth":
                values[field] = _date_of_birth(value, today)
            elif field == "time_multiplier":
                values[field] = _time_multiplier(value)
            else:
                values[field] = _text(field, value)
        except _CellError as e:
            problems.append(RosterProblem(number, shown, e.code, e.message, e.key, e.details))
    return values, problems


class _CellError(Exception):
    def __init__(self, code: str, message: str, *, key: str = "", **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key
        self.details = details


def _clip(text: str, limit: int = 40) -> str:
    """A cell quoted in a message: long cells are shortened."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell_text(value: Any) -> str:
    """A cell as trimmed text; whole numbers ("101" rooms in .xlsx) lose their ".0"."""
    if type(value) is str:  # every CSV cell: the fast path
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date):
        return value.strftime("%d/%m/%Y")
    return str(value).strip()


_WHAT = {"full_name": "full name", "class_name": "class", "school": "school", "room": "room"}


def _text(field: str, value: Any) -> str:
    """Name, class, school or room: required, spaces tidied, composed Unicode.

    NFC because Vietnamese text arrives both composed and decomposed (from
    Mac or web copies), and "Nguyễn" must compare and sort as one name.
    """
    text = unicodedata.normalize("NFC", " ".join(_cell_text(value).split()))
    if not text and field != "school":  # no school: the exam's organisation (see add_roster)
        raise _CellError("roster_value_missing", f"the {_WHAT[field]} is empty: fill it in")
    if len(text) > MAX_TEXT[field]:
        raise _CellError(
            "roster_value_too_long",
            f"the {_WHAT[field]} is {len(text)} characters long; at most {MAX_TEXT[field]} are allowed: shorten it",
            length=len(text),
            limit=MAX_TEXT[field],
        )
    return text


_SCIENTIFIC = re.compile(r"\d(?:[.,]\d+)?E\+?\d+", re.IGNORECASE)
_TEXT_ADVICE = "format the column as Text and type the 10-digit code again"


def _code(value: Any) -> str:
    """The 10-digit student code, as text; number cells are never padded back."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        # An .xlsx number cell. Ten digits lost nothing; fewer means the
        # spreadsheet dropped leading zeros, which we must not guess back.
        if isinstance(value, int) or value.is_integer():
            digits = str(int(value))
            if len(digits) == CODE_DIGITS:
                return digits
            if len(digits) < CODE_DIGITS:
                raise _CellError(
                    "roster_code_number",
                    f"student code {digits} is stored as a number and has lost its leading zero? {_TEXT_ADVICE}",
                    key="roster_code_number.lost_zero",
                    value=digits,
                )
        raise _CellError(
            "roster_code_number",
            f"student code {_cell_text(value)} is stored as a number, not as text: {_TEXT_ADVICE}",
            value=_cell_text(value),
        )
    text = _cell_text(value)
    if not text:
        raise _CellError("roster_code_missing", "the student code is empty: type the 10-digit student code")
    if _SCIENTIFIC.fullmatch(text):
        raise _CellError(
            "roster_code_number",
            f"student code '{_clip(text)}' was turned into a number by a spreadsheet program: {_TEXT_ADVICE}",
            key="roster_code_number.scientific",
            value=_clip(text),
        )
    if not text.isascii() or not text.isdigit():
        bad = "".join(dict.fromkeys(ch for ch in text if not ("0" <= ch <= "9")))
        raise _CellError(
            "roster_code_not_digits",
            f"student code '{_clip(text)}' must contain only digits 0-9, "
            f"not '{_clip(bad, 10)}': type the 10-digit student code",
            value=_clip(text),
            bad=_clip(bad, 10),
        )
    if len(text) != CODE_DIGITS:
        short = len(text) < CODE_DIGITS
        hint = (
            (
                "; if it began with 0, the spreadsheet program dropped the zero: format the column as Text "
                "and type the code again"
            )
            if short
            else ""
        )
        raise _CellError(
            "roster_code_length",
            f"student code '{_clip(text)}' has {len(text)} digits; it must have exactly {CODE_DIGITS}{hint}",
            key="roster_code_length.short" if short else "",
            value=_clip(text),
            length=len(text),
            digits=CODE_DIGITS,
        )
    return text


_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{1,4})")
# Also what Excel writes for a date cell saved as CSV by some locales.
_YMD = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]0?0:00(?::00)?)?")
_DATE_ADVICE = "write it as dd/mm/yyyy, day first, e.g. 25/12/2010"


def _date_of_birth(value: Any, today: datetime.date) -> datetime.date:
    if isinstance(value, datetime.datetime):
        day = value.date()
    elif isinstance(value, datetime.date):
        day = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        raise _CellError(
            "roster_date_invalid",
            f"date of birth {_cell_text(value)} is a number, not a date: format the cell as a date or {_DATE_ADVICE}",
            key="roster_date_invalid.number",
            value=_cell_text(value),
        )
    else:
        text = _cell_text(value)
        if not text:
            raise _CellError("roster_date_missing", f"the date of birth is empty: {_DATE_ADVICE}")
        if m := _YMD.fullmatch(text):
            year, month, dd = (int(g) for g in m.groups())
        elif m := _DMY.fullmatch(text):
            dd, month, year = (int(g) for g in m.groups())
            if len(m.group(3)) != 4:
                raise _CellError(
                    "roster_date_invalid",
                    f"date of birth '{_clip(text)}' needs a 4-digit year: {_DATE_ADVICE}",
                    key="roster_date_invalid.year",
                    value=_clip(text),
                )
        else:
            raise _CellError(
                "roster_date_invalid", f"date of birth '{_clip(text)}' is not a date: {_DATE_ADVICE}", value=_clip(text)
            )
        try:
            day = datetime.date(year, month, dd)
        except ValueError:
            raise _CellError(
                "roster_date_invalid",
                f"date of birth '{_clip(text)}' is not a real day (dates are "
                "day/month/year): check the day and month, e.g. 25/12/2010",
                key="roster_date_invalid.day",
                value=_clip(text),
            ) from None
    if day > today:
        raise _CellError(
            "roster_date_future",
            f"date of birth {day:%d/%m/%Y} is in the future: check the year",
            date=f"{day:%d/%m/%Y}",
        )
    age = today.year - day.year - ((today.month, today.day) < (day.month, day.day))
    if not MIN_AGE_YEARS <= age <= MAX_AGE_YEARS:
        raise _CellError(
            "roster_date_implausible",
            f"date of birth {day:%d/%m/%Y} makes the candidate {age} "
            f"years old: check the year (candidates are {MIN_AGE_YEARS} to {MAX_AGE_YEARS} years old)",
            date=f"{day:%d/%m/%Y}",
            age=age,
            min=MIN_AGE_YEARS,
            max=MAX_AGE_YEARS,
        )
    return day


_MULTIPLIER = re.compile(r"\d+(?:[.,]\d+)?")


def _time_multiplier(value: Any) -> Decimal:
    """Empty for 1; 1.5 gives 50 % more time. A decimal comma is fine (Vietnamese 1,5)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value) if isinstance(value, float) else str(value)  # repr: 1.5, never 1.5000000001
    else:
        text = _cell_text(value).strip("xX×* ")
    if not text:
        return Decimal(1)
    if not _MULTIPLIER.fullmatch(text):
        raise _CellError(
            "roster_multiplier_invalid",
            f"time multiplier '{_clip(text)}' is not a number: write "
            "e.g. 1,5 for 50% extra time, or leave it empty for normal time",
            value=_clip(text),
        )
    try:
        multiplier = Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain numbers
        raise _CellError("roster_multiplier_invalid", f"time multiplier '{_clip(text)}' is not a number") from None
    if not MIN_MULTIPLIER <= multiplier <= MAX_MULTIPLIER:
        raise _CellError(
            "roster_multiplier_range",
            f"time multiplier {text} must be between {MIN_MULTIPLIER} and "
            f"{MAX_MULTIPLIER}: write 1 (or leave it empty) for normal time, e.g. 1,5 for 50% extra",
            value=_clip(text),
            min=str(MIN_MULTIPLIER),
            max=str(MAX_MULTIPLIER),
        )
    return multiplier.normalize()


# ---------------------------------------------------------------- the template

# The headers the template offers, each one the parser takes (tests/test_roster.py reads the template back).
TEMPLATE_HEADERS = ("Số báo danh", "Họ và tên", "Ngày sinh", "Lớp", "Phòng thi", "Trường", "Hệ số thời gian")
TEMPLATE_EXAMPLE = ("0123456789", "Nguyễn Văn An", datetime.date(2010, 3, 5), "9A1", "P.101", "", None)
# What each column asks for, on the workbook's second sheet.
TEMPLATE_NOTES = (
    (
        "Số báo danh",
        "Bắt buộc. Đúng 10 chữ số (mã học sinh của Bộ), giữ cả số 0 ở đầu: cột này đã định dạng "
        "là Văn bản (Text). Cũng nhận tiêu đề Mã học sinh, SBD, Mã định danh.",
    ),
    ("Họ và tên", "Bắt buộc. Cũng nhận tiêu đề Họ tên."),
    ("Ngày sinh", "Bắt buộc. Ngày/tháng/năm, ví dụ 25/12/2010, hoặc ô kiểu ngày."),
    ("Lớp", "Bắt buộc."),
    ("Phòng thi", "Bắt buộc. Phiếu dự thi được in theo từng phòng. Cũng nhận tiêu đề Phòng."),
    ("Trường", "Không bắt buộc: để trống thì lấy tên trường (đơn vị) của kỳ thi. Có thể xoá cả cột."),
    ("Hệ số thời gian", "Không bắt buộc: để trống là thời gian bình thường; 1,5 là thêm 50% thời gian (từ 1 đến 3)."),
)


def template_xlsx() -> bytes:
    """The roster workbook to fill in: the Vietnamese headers, one example row
    (to be replaced), the code column formatted as text, and a sheet of notes."""
    import openpyxl  # only the template needs it here; keeps importing this module cheap
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Danh sách thí sinh"
    sheet.append(TEMPLATE_HEADERS)
    sheet.append(TEMPLATE_EXAMPLE)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    # Text, so that a typed 0123456789 keeps its leading zero (the parser refuses number cells that lost it).
    for row in range(2, 1001):
        sheet.cell(row=row, column=1).number_format = "@"
        sheet.cell(row=row, column=3).number_format = "DD/MM/YYYY"
    for letter, width in zip("ABCDEFG", (14, 28, 12, 8, 10, 28, 16), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    notes = book.create_sheet("Hướng dẫn")
    notes.append(("Cột", "Cách điền"))
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for line in TEMPLATE_NOTES:
        notes.append(line)
    notes.append(())
    notes.append(("Dòng 2", "là dòng ví dụ: hãy thay bằng thí sinh thật hoặc xoá đi trước khi nhập."))
    notes.column_dimensions["A"].width = 18
    notes.column_dimensions["B"].width = 100
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ---------------------------------------------------------------- tickets
#
# A ticket is typed once by a student at the start of an exam, often with a
# Vietnamese input method (Unikey, Telex or VNI) switched on. The alphabet
# therefore has:
#   - no character that looks like another: no 0 O Q D, 1 I L, 2 Z, 5 S, 8 B,
#     G (6), U V W Y;
#   - no vowel (A E I O U Y) and no W or D: Telex and VNI turn "ax" into "ã",
#     "e6" into "ê", "w" into "ư", "dd" into "đ"; without vowels, W and D an
#     input method leaves a ticket exactly as typed;
#   - 16 symbols, so each is exactly 4 bits: 16 symbols give 64 bits.
TICKET_ALPHABET = "34679CFHJKMNPRTX"
TICKET_GROUP = 4
TICKET_GROUPS = 4
TICKET_LENGTH = TICKET_GROUP * TICKET_GROUPS
TICKET_BITS = TICKET_LENGTH * 4  # log2(16) bits per symbol
# Characters a reader may type for one printed symbol, where only one symbol
# is meant: G for 6 (the other confusables have no partner in the alphabet).
TICKET_LOOKALIKES = {"G": "6"}
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−_.·/]+")


def generate_ticket() -> str:
    """A fresh login ticket such as ``KX7M-PC4R-HT9J-N6FX``: 64 random bits from `secrets`."""
    value = secrets.randbits(TICKET_BITS)
    symbols = "".join(TICKET_ALPHABET[(value >> (4 * i)) & 0xF] for i in range(TICKET_LENGTH))
    return _group(symbols)


def _group(symbols: str) -> str:
    return "-".join(symbols[i : i + TICKET_GROUP] for i in range(0, len(symbols), TICKET_GROUP))


def normalise_ticket(text: str) -> str:
    """The canonical form of a typed ticket: upper case, grouped by dashes.

    Lower case, spaces, missing, extra or odd dashes, full-width characters
    and G for 6 are all accepted. Text that cannot be a ticket comes back
    cleaned but otherwise unchanged, so it simply matches no ticket's hash.
    """
    cleaned = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    cleaned = "".join(TICKET_LOOKALIKES.get(ch, ch) for ch in cleaned)
    if len(cleaned) == TICKET_LENGTH and all(ch in TICKET_ALPHABET for ch in cleaned):
        return _group(cleaned)
    return cleaned


def ticket_hash(ticket: str) -> bytes:
    """SHA-256 of the normalised ticket: what the server stores and looks up.

    A fast, unsalted hash is deliberate. Passwords need a slow hash because
    people choose guessable ones; a ticket is 64 random bits, so even a
    stolen table of hashes leaves ~2**64 / (roster size) guesses per ticket,
    and tickets expire with their exam. Being fast and deterministic, it lets
    a whole lab log in at the same second for microseconds of CPU each and
    lets the database find the candidate through a unique index on the hash.
    """
    return hashlib.sha256(normalise_ticket(ticket).encode("utf-8")).digest()


# ---------------------------------------------------------------- ticket sheets


def sort_fold(text: str) -> str:
    """Accent-insensitive key, with Đ as its own letter after D as in the Vietnamese alphabet."""
    text = unicodedata.normalize("NFD", text.casefold()).replace("đ", "d\x7f")
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def name_sort_key(full_name: str) -> tuple[str, str, str, str]:
    """Vietnamese order: by given name (the last word), then family and middle names.

    "Nguyễn Văn An" sorts before "Trần Thị Bình"; accents are ignored first
    and break ties after (a simple key, not full Vietnamese collation).
    """
    words = full_name.split()
    given, rest = (words[-1], " ".join(words[:-1])) if words else ("", "")
    return sort_fold(given), sort_fold(rest), given, rest


def room_sort_key(room: str) -> tuple[tuple[int, int, str], ...]:
    """Natural order: room "P.2" before "P.10"."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, sort_fold(part))
                 for part in re.split(r"(\d+)", room) if part)  # fmt: skip


def _get(row: Any, name: str) -> Any:
    """A field of a row that is a mapping (asyncpg Record, dict) or an object (Candidate)."""
    try:
        return row[name]
    except (TypeError, KeyError, IndexError):
        return getattr(row, name)


def tickets_by_room(rows: Iterable[Any]) -> list[tuple[str, list[Any]]]:
    """Rows grouped by `room`, rooms in natural order, each sorted by name then code.

    A row has `room`, `full_name` and `code` (and whatever the sheet shows:
    `class_name`, `ticket`), as attributes or keys. The ticket template takes
    this as its `rooms`.
    """
    rooms: dict[str, list[Any]] = {}
    for row in rows:
        rooms.setdefault(str(_get(row, "room")), []).append(row)
    return [
        (room, sorted(members, key=lambda r: (name_sort_key(str(_get(r, "full_name"))), str(_get(r, "code")))))
        for room, members in sorted(rooms.items(), key=lambda item: (room_sort_key(item[0]), item[0]))
    ]


TICKET_CSV_HEADERS = {
    "vi": ("Phòng thi", "Số báo danh", "Họ và tên", "Lớp", "Mã dự thi"),
    "en": ("Room", "Student code", "Full name", "Class", "Ticket"),
}


def safe_cell(text: str) -> str:
    # A name from an uploaded roster such as "=HYPERLINK(...)" would run as a
    # formula when the sheet is opened in Excel (CSV injection): quote it.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def tickets_csv(rows: Iterable[Any], *, lang: str = "vi") -> str:
    """The tickets as CSV: room, code, name, class, ticket; sorted as :func:`tickets_by_room`.

    Starts with a BOM so that Excel reads the Vietnamese names as UTF-8.
    Excel still shows codes as numbers (dropping leading zeros) unless the
    column is imported as Text; a mail merge reads them correctly.
    """
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(TICKET_CSV_HEADERS.get(lang, TICKET_CSV_HEADERS["vi"]))
    for room, members in tickets_by_room(rows):
        for row in members:
            writer.writerow([safe_cell(str(v)) for v in (
                room, _get(row, "code"), _get(row, "full_name"), _get(row, "class_name"), _get(row, "ticket"),
            )])  # fmt: skip
    return out.getvalue()
