"""Rosters (CSV and .xlsx), login tickets and the printable ticket sheet.

cbt.roster is pure, so these tests need no database.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import math
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import jinja2
import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cbt import roster
from cbt.platform.errors import UserError
from cbt.roster import (
    MAX_ROWS,
    TICKET_ALPHABET,
    TICKET_BITS,
    Candidate,
    RosterError,
    generate_ticket,
    name_sort_key,
    normalise_ticket,
    parse_roster,
    ticket_hash,
    tickets_by_room,
    tickets_csv,
)

REPO = Path(__file__).resolve().parent.parent
TODAY = datetime.date(2025, 6, 1)
VI_HEADER = "Mã học sinh;Họ và tên;Ngày sinh;Lớp;Trường;Phòng thi;Hệ số thời gian"
EN_HEADER = "student code,full name,date of birth,class,school,room,time multiplier"
AN = Candidate("0123456789", "Nguyễn Văn An", datetime.date(2010, 3, 5), "9A1", "THCS Láng Thượng", "P.101")
BINH = Candidate(
    "0123456790", "Trần Thị Bình", datetime.date(2010, 12, 25), "9A2", "THCS Láng Thượng", "P.102", Decimal("1.5")
)


def parse(text: str, filename: str = "roster.csv", **kw) -> list[Candidate]:
    return parse_roster(text.encode("utf-8"), filename, today=TODAY, **kw)


def problems(text_or_bytes: str | bytes, filename: str = "roster.csv", **kw) -> list[str]:
    """Every problem of a bad file, as printed."""
    data = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else text_or_bytes
    with pytest.raises(RosterError) as error:
        parse_roster(data, filename, today=TODAY, **kw)
    return [str(p) for p in error.value.problems]


def one_problem(rows: list[str], header: str = VI_HEADER) -> tuple[str, str]:
    """(printed problem, code) of a semicolon file whose rows have exactly one problem."""
    with pytest.raises(RosterError) as error:
        parse("\n".join([header, *rows]) + "\n")
    assert len(error.value.problems) == 1, error.value.problems
    problem = error.value.problems[0]
    return str(problem), problem.code


GOOD_ROW = "0123456789;Nguyễn Văn An;05/03/2010;9A1;THCS Láng Thượng;P.101;"


def row(**change: str) -> str:
    """GOOD_ROW with some cells replaced."""
    names = ["code", "name", "dob", "class", "school", "room", "multiplier"]
    cells = dict(zip(names, GOOD_ROW.split(";"), strict=True))
    cells.update(change)
    return ";".join(cells[n] for n in names)


# ---------------------------------------------------------------- good files


def test_semicolon_csv_with_bom_as_vietnamese_excel_saves_it():
    binh = "0123456790;Trần Thị Bình;25/12/2010;9A2;THCS Láng Thượng;P.102;1,5"
    text = "\ufeff" + VI_HEADER + "\r\n" + GOOD_ROW + "\r\n" + binh + "\r\n"
    assert parse(text) == [AN, BINH]


def test_comma_csv_without_bom_and_english_headers():
    text = (
        EN_HEADER + "\n"
        "0123456789,Nguyễn Văn An,2010-03-05,9A1,THCS Láng Thượng,P.101,\n"
        '0123456790,Trần Thị Bình,25/12/2010,9A2,"THCS Láng Thượng",P.102,1.5\n'
        "\n,,,,,,\n\n"  # empty trailing rows are ignored
    )
    assert parse(text) == [AN, BINH]


def test_headers_ignore_case_diacritics_notes_order_and_other_columns():
    text = (
        "STT,HỌ VÀ TÊN,Ma HS,Ngay sinh (dd/mm/yyyy),Lop,Truong,PHÒNG THI,Giới tính\n"
        "1,  Nguyễn   Văn An ,0123456789,5/3/2010,9A1,THCS Láng Thượng,P.101,Nam\n"
    )
    assert parse(text) == [AN]


def test_decomposed_vietnamese_is_stored_composed():
    import unicodedata

    text = VI_HEADER + "\n" + unicodedata.normalize("NFD", GOOD_ROW) + "\n"
    assert parse(text)[0].full_name == "Nguyễn Văn An"


def test_multiplier_is_optional_and_takes_a_decimal_comma():
    header = "Mã học sinh;Họ và tên;Ngày sinh;Lớp;Trường;Phòng thi"
    assert parse(header + "\n" + GOOD_ROW.rsplit(";", 1)[0] + "\n")[0].time_multiplier == 1
    for written, value in [("1,5", "1.5"), ("2", "2"), ("1.25", "1.25"), ("3", "3"), ("x1,5", "1.5"), ("1,0", "1")]:
        assert parse(VI_HEADER + "\n" + row(multiplier=written))[0].time_multiplier == Decimal(value)


def test_title_rows_above_the_header_are_skipped_and_rows_numbered_as_shown():
    text = "DANH SÁCH THÍ SINH;;;;;;\nTrường THCS Láng Thượng;;;;;;\n\n" + VI_HEADER + "\n" + row(dob="31/02/2010")
    assert problems(text) == [
        "row 5, column 'Ngày sinh': date of birth '31/02/2010' is not a real day (dates are day/month/year): "
        "check the day and month, e.g. 25/12/2010"
    ]


@pytest.mark.parametrize("code_header", ["Số báo danh", "SBD", "Mã định danh", "so bao danh"])
def test_the_headers_schools_write_and_no_school_column(code_header):
    # What the page's own hint asks for (issue 16): no "Trường" column, the school is the exam's.
    text = f"{code_header};Họ tên;Ngày sinh;Lớp;Phòng\n0123456789;Nguyễn Văn An;05/03/2010;9A1;P.101\n"
    assert parse(text) == [Candidate("0123456789", "Nguyễn Văn An", datetime.date(2010, 3, 5), "9A1", "", "P.101")]


def test_an_empty_school_cell_is_the_exams_school_too():
    assert parse(VI_HEADER + "\n" + row(school="") + "\n" + row(code="0123456790") + "\n")[0].school == ""


def test_the_template_is_a_roster_the_import_reads():
    data = roster.template_xlsx()
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    assert [c.value for c in sheet[1]] == list(roster.TEMPLATE_HEADERS)
    assert sheet["A2"].number_format == "@" and sheet["A3"].number_format == "@"  # codes keep their zeros
    assert "Hướng dẫn" in book.sheetnames
    # Every header it offers is one the import takes, and its example row is a candidate.
    assert parse_roster(data, "danh-sach-thi-sinh.xlsx", today=TODAY) == [
        Candidate("0123456789", "Nguyễn Văn An", datetime.date(2010, 3, 5), "9A1", "", "P.101")
    ]


ROSTER_SOURCE = (REPO / "cbt" / "roster.py").read_text("utf-8")
CATALOGS = {lang: json.loads((REPO / "web" / "i18n" / f"{lang}.json").read_text("utf-8")) for lang in ("vi", "en")}


def catalog_text(lang: str, problem) -> str:
    """A problem as the web page says it: its own text, or its code's."""
    for name in (f"roster.problem.{problem.key}", f"roster.problem.{problem.code}"):
        if name in CATALOGS[lang]:
            return CATALOGS[lang][name].format(**problem.details)
    raise AssertionError(f"no {lang} text for {problem.key or problem.code}")


def test_every_problem_has_a_vietnamese_and_an_english_text():
    """Each code and text key roster.py gives a problem is in both catalogs (issue 16: problems were
    shown in English on the Vietnamese page)."""
    named = set(re.findall(r'"(roster_[a-z_]+(?:\.[a-z_]+)?)"', ROSTER_SOURCE)) - {"roster_invalid"}
    assert len(named) > 25
    for lang in ("vi", "en"):
        missing = sorted(n for n in named if f"roster.problem.{n}" not in CATALOGS[lang])
        assert not missing, f"{lang}.json lacks roster.problem. {missing}"


@pytest.mark.parametrize("data", [
    b"", VI_HEADER.encode() + b"\n", b"\xd0\xcf\x11\xe0" + bytes(10), b"%PDF-1.4",
    ("Mã HS;Mã học sinh;Họ và tên;Phong thj;Ngày sinh;Lớp\n").encode(),
    "\n".join([VI_HEADER, row(code="12345"), row(code="1,23E+09"), row(code="01234x6789"), row(code=""),
               row(dob="31/02/2010"), row(dob="5/3/10"), row(dob="hôm qua"), row(dob=""), row(dob="01/01/2030"),
               row(dob="01/01/1900"), row(multiplier="nhiều"), row(multiplier="5"), row(name=""),
               row(name="x" * 101), row(), row()]).encode(),
])  # fmt: skip
def test_every_problem_reads_in_both_languages_with_its_values(data):
    with pytest.raises(RosterError) as error:
        parse_roster(data, "roster.pdf" if data.startswith(b"%PDF") else "roster.csv", today=TODAY)
    for problem in error.value.problems:
        vi, en = catalog_text("vi", problem), catalog_text("en", problem)
        assert "{" not in vi + en and vi != en
        assert problem.to_json()["details"] == problem.details
        for value in problem.details.values():
            assert str(value) in vi and str(value) in en  # the specifics are said, not only the kind


def test_tab_separated_and_utf16_text_from_excel():
    text = VI_HEADER.replace(";", "\t") + "\n" + GOOD_ROW.replace(";", "\t") + "\n"
    assert parse_roster(text.encode("utf-16"), "roster.txt", today=TODAY) == [AN]


def xlsx_bytes(rows: list[list[object]], *, text_columns: tuple[int, ...] = (1,)) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for cells in rows:
        sheet.append(cells)
    for index in text_columns:  # as a careful teacher does: the code column formatted as Text
        for (cell,) in sheet.iter_rows(min_col=index, max_col=index):
            if isinstance(cell.value, str):
                cell.number_format = "@"
    workbook.create_sheet("other").append(["ignored"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


XLSX_HEADER = ["Mã học sinh", "Họ và tên", "Ngày sinh", "Lớp", "Trường", "Phòng thi", "Hệ số thời gian"]


def test_good_xlsx_with_date_cells_number_cells_and_a_title_row():
    data = xlsx_bytes([
        ["DANH SÁCH THÍ SINH"],
        XLSX_HEADER,
        ["0123456789", "Nguyễn Văn An", datetime.datetime(2010, 3, 5), "9A1", "THCS Láng Thượng", "P.101", None],
        ["0123456790", "Trần Thị Bình", "25/12/2010", "9A2", "THCS Láng Thượng", "P.102", 1.5],
        ["1234567890", "Lê Văn Cường", datetime.date(2011, 1, 2), 9, "THCS Láng Thượng", 103, 2],
        [None] * 7,
        [None, None, None],
    ])  # fmt: skip
    cuong = Candidate("1234567890", "Lê Văn Cường", datetime.date(2011, 1, 2), "9", "THCS Láng Thượng", "103",
                      Decimal(2))  # fmt: skip
    assert parse_roster(data, "roster.xlsx", today=TODAY) == [AN, BINH, cuong]
    # The content decides, not the name: an .xlsx uploaded as "roster.csv" is still read.
    assert parse_roster(data, "roster.csv", today=TODAY) == [AN, BINH, cuong]


# ---------------------------------------------------------------- bad rows: exact messages


@pytest.mark.parametrize(
    ("changes", "message", "code"),
    [
        (
            {"code": "012345678"},
            "row 2, column 'Mã học sinh': student code '012345678' has 9 digits; it must have exactly 10; "
            "if it began with 0, the spreadsheet program dropped the zero: format the column as Text and type "
            "the code again",
            "roster_code_length",
        ),
        (
            {"code": "01234567891"},
            "row 2, column 'Mã học sinh': student code '01234567891' has 11 digits; it must have exactly 10",
            "roster_code_length",
        ),
        (
            {"code": "01234A678B"},
            "row 2, column 'Mã học sinh': student code '01234A678B' must contain only digits 0-9, not 'AB': "
            "type the 10-digit student code",
            "roster_code_not_digits",
        ),
        (
            {"code": "1,23457E+11"},
            "row 2, column 'Mã học sinh': student code '1,23457E+11' was turned into a number by a spreadsheet "
            "program: format the column as Text and type the 10-digit code again",
            "roster_code_number",
        ),
        (
            {"code": ""},
            "row 2, column 'Mã học sinh': the student code is empty: type the 10-digit student code",
            "roster_code_missing",
        ),
        ({"name": " "}, "row 2, column 'Họ và tên': the full name is empty: fill it in", "roster_value_missing"),
        (
            {"room": "P" * 51},
            "row 2, column 'Phòng thi': the room is 51 characters long; at most 50 are allowed: shorten it",
            "roster_value_too_long",
        ),
        (
            {"dob": "31/02/2010"},
            "row 2, column 'Ngày sinh': date of birth '31/02/2010' is not a real day (dates are day/month/year): "
            "check the day and month, e.g. 25/12/2010",
            "roster_date_invalid",
        ),
        (
            {"dob": "12/25/2010"},
            "row 2, column 'Ngày sinh': date of birth '12/25/2010' is not a real day (dates are day/month/year): "
            "check the day and month, e.g. 25/12/2010",
            "roster_date_invalid",
        ),
        (
            {"dob": "5 March 2010"},
            "row 2, column 'Ngày sinh': date of birth '5 March 2010' is not a date: write it as dd/mm/yyyy, day "
            "first, e.g. 25/12/2010",
            "roster_date_invalid",
        ),
        (
            {"dob": "05/03/10"},
            "row 2, column 'Ngày sinh': date of birth '05/03/10' needs a 4-digit year: write it as dd/mm/yyyy, "
            "day first, e.g. 25/12/2010",
            "roster_date_invalid",
        ),
        (
            {"dob": ""},
            "row 2, column 'Ngày sinh': the date of birth is empty: write it as dd/mm/yyyy, day first, e.g. 25/12/2010",
            "roster_date_missing",
        ),
        (
            {"dob": "05/03/2030"},
            "row 2, column 'Ngày sinh': date of birth 05/03/2030 is in the future: check the year",
            "roster_date_future",
        ),
        (
            {"dob": "05/03/1910"},
            "row 2, column 'Ngày sinh': date of birth 05/03/1910 makes the candidate 115 years old: check the "
            "year (candidates are 4 to 100 years old)",
            "roster_date_implausible",
        ),
        (
            {"dob": "05/03/2024"},
            "row 2, column 'Ngày sinh': date of birth 05/03/2024 makes the candidate 1 years old: check the "
            "year (candidates are 4 to 100 years old)",
            "roster_date_implausible",
        ),
        (
            {"multiplier": "3,5"},
            "row 2, column 'Hệ số thời gian': time multiplier 3,5 must be between 1 and 3: write 1 (or leave it "
            "empty) for normal time, e.g. 1,5 for 50% extra",
            "roster_multiplier_range",
        ),
        (
            {"multiplier": "0,5"},
            "row 2, column 'Hệ số thời gian': time multiplier 0,5 must be between 1 and 3: write 1 (or leave it "
            "empty) for normal time, e.g. 1,5 for 50% extra",
            "roster_multiplier_range",
        ),
        (
            {"multiplier": "150%"},
            "row 2, column 'Hệ số thời gian': time multiplier '150%' is not a number: write e.g. 1,5 for 50% "
            "extra time, or leave it empty for normal time",
            "roster_multiplier_invalid",
        ),
    ],
)
def test_bad_cell(changes, message, code):
    assert one_problem([row(**changes)]) == (message, code)


def test_duplicate_code_names_both_rows():
    assert one_problem([GOOD_ROW, row(code="0123456790", name="Trần Thị Bình"), row(name="Lê Văn Cường")]) == (
        "row 4, column 'Mã học sinh': student code 0123456789 is also in row 2: each candidate may appear only "
        "once; delete or correct one of the two rows",
        "roster_code_duplicate",
    )


def test_duplicates_are_found_even_in_rows_with_other_problems():
    assert problems(VI_HEADER + "\n" + GOOD_ROW + "\n" + row(dob="x") + "\n") == [
        "row 3, column 'Ngày sinh': date of birth 'x' is not a date: write it as dd/mm/yyyy, day first, e.g. "
        "25/12/2010",
        "row 3, column 'Mã học sinh': student code 0123456789 is also in row 2: each candidate may appear only "
        "once; delete or correct one of the two rows",
    ]


def test_every_problem_of_every_row_is_reported_and_nothing_returned():
    rows = [GOOD_ROW, row(code="123", dob="1/13/2010"), row(code="0123456791"), row(code="0123456792", room="")]
    with pytest.raises(RosterError) as error:
        parse("\n".join([VI_HEADER, *rows]))
    found = [(p.row, p.column, p.code) for p in error.value.problems]
    assert found == [
        (3, "Mã học sinh", "roster_code_length"),
        (3, "Ngày sinh", "roster_date_invalid"),
        (5, "Phòng thi", "roster_value_missing"),
    ]
    # A user error: a stable code, a message listing the problems, JSON details for the page.
    assert isinstance(error.value, UserError) and error.value.status == 400
    body = error.value.to_json()["error"]
    assert body["code"] == "roster_invalid" and body["details"]["problem_count"] == 3
    assert body["message"].startswith("The roster has 3 problems; nothing was imported.")
    assert "row 5, column 'Phòng thi': the room is empty: fill it in" in body["message"]


def test_xlsx_number_cell_that_lost_its_leading_zero_is_reported_not_padded():
    data = xlsx_bytes([
        XLSX_HEADER,
        [123456789, "Nguyễn Văn An", "05/03/2010", "9A1", "THCS Láng Thượng", "P.101", None],
        [12345678.0, "Trần Thị Bình", "25/12/2010", "9A2", "THCS Láng Thượng", "P.102", None],
        [45678.5, "Lê Văn Cường", 40000, "9A2", "THCS Láng Thượng", "P.102", 3.5],
    ])  # fmt: skip
    assert problems(data, "roster.xlsx") == [
        "row 2, column 'Mã học sinh': student code 123456789 is stored as a number and has lost its leading "
        "zero? format the column as Text and type the 10-digit code again",
        "row 3, column 'Mã học sinh': student code 12345678 is stored as a number and has lost its leading "
        "zero? format the column as Text and type the 10-digit code again",
        "row 4, column 'Mã học sinh': student code 45678.5 is stored as a number, not as text: format the "
        "column as Text and type the 10-digit code again",
        "row 4, column 'Ngày sinh': date of birth 40000 is a number, not a date: format the cell as a date or "
        "write it as dd/mm/yyyy, day first, e.g. 25/12/2010",
        "row 4, column 'Hệ số thời gian': time multiplier 3.5 must be between 1 and 3: write 1 (or leave it "
        "empty) for normal time, e.g. 1,5 for 50% extra",
    ]


# ---------------------------------------------------------------- bad files


def test_missing_columns_are_listed_in_the_header_row():
    assert problems("Mã học sinh,Họ và tên,Lớp,Trường\n0123456789,Nguyễn Văn An,9A1,THCS\n") == [
        "row 1, column 'Ngày sinh': this column is missing: add a column headed 'Ngày sinh' (or 'date of birth') "
        "to the header row",
        "row 1, column 'Phòng thi': this column is missing: add a column headed 'Phòng thi' (or 'room') to the "
        "header row",
    ]


def test_a_misspelt_column_is_reported_rather_than_ignored():
    # Ignoring "Hệ số thời gan" would silently take a student's extra time away.
    header = VI_HEADER.replace("Hệ số thời gian", "Hệ số thời gan").replace("Phòng thi", "Phong thj")
    with pytest.raises(RosterError) as error:
        parse(header + "\n" + row(multiplier="1,5"))
    assert [(str(p), p.code) for p in error.value.problems] == [
        ("row 1, column 'Phong thj': column name not recognised: if it is meant to be 'Phòng thi' (room), "
         "correct its spelling", "roster_column_unknown"),
        ("row 1, column 'Hệ số thời gan': column name not recognised: if it is meant to be 'Hệ số thời gian' "
         "(time multiplier), correct its spelling", "roster_column_unknown"),
    ]  # fmt: skip


def test_a_column_given_twice():
    assert problems("Mã HS;Mã học sinh;" + VI_HEADER.split(";", 1)[1] + "\n") == [
        "row 1, column 'Mã học sinh': this is the same column as 'Mã HS' (Số báo danh): delete one of the two columns"
    ]


@pytest.mark.parametrize(
    ("data", "message", "code"),
    [
        (b"", "the file is empty: choose the roster file (CSV or .xlsx with a header row and one row per "
         "candidate)", "roster_empty"),
        (b"\xef\xbb\xbf\r\n;;;\r\n", "the file has no rows: put a header row (Số báo danh, Họ và tên, Ngày sinh, "
         "Lớp, Trường, Phòng thi) and one row per candidate", "roster_empty"),
        ((VI_HEADER + "\n\n").encode(), "the file has a header row but no candidates: add one row per candidate "
         "below the header", "roster_no_candidates"),
        ((VI_HEADER + "\n").encode() + b"0123456789;Thu H\xe0;05/03/2010;9A1;THCS;P.101;\n", "row 2: the file "
         "is not UTF-8 text: in Excel choose File > Save As > 'CSV UTF-8 (Comma delimited)' or save it as .xlsx, "
         "then import that", "roster_encoding"),
    ],
)  # fmt: skip
def test_empty_or_unreadable_csv(data, message, code):
    with pytest.raises(RosterError) as error:
        parse_roster(data, "roster.csv", today=TODAY)
    assert [(str(p), p.code) for p in error.value.problems] == [(message, code)]


@pytest.mark.parametrize(
    ("data", "filename", "message", "code"),
    [
        (b"\xd0\xcf\x11\xe0" + bytes(100), "roster.xls", "this is an old Excel .xls file: open it in Excel and "
         "save it as .xlsx (Excel Workbook), then import that", "roster_file_type"),
        (b"PK\x03\x04 not really a zip", "roster.xlsx", "the file is not a readable .xlsx workbook: open it in "
         "Excel, save it again as .xlsx and import that", "roster_xlsx_unreadable"),
        (b"garbage", "roster.xlsx", "the file is not a readable .xlsx workbook: open it in Excel, save it again "
         "as .xlsx and import that", "roster_xlsx_unreadable"),
        (b"%PDF-1.4", "roster.pdf", "cannot read 'roster.pdf': import the roster as CSV (UTF-8) or as an Excel "
         ".xlsx workbook", "roster_file_type"),
    ],
)  # fmt: skip
def test_files_of_the_wrong_kind(data, filename, message, code):
    with pytest.raises(RosterError) as error:
        parse_roster(data, filename, today=TODAY)
    assert [(str(p), p.code) for p in error.value.problems] == [(message, code)]


def test_an_xlsx_with_only_a_header():
    assert problems(xlsx_bytes([XLSX_HEADER, [None] * 7]), "r.xlsx") == [
        "the file has a header row but no candidates: add one row per candidate below the header"
    ]


def synthetic_rows(count: int) -> str:
    return "".join(f"{i:010d};An {i};01/01/2010;A;B;C\n" for i in range(count))


def test_too_many_rows_at_the_default_limit():
    text = "Mã học sinh;Họ và tên;Ngày sinh;Lớp;Trường;Phòng thi\n" + synthetic_rows(MAX_ROWS + 1)
    assert len(text.encode()) <= roster.MAX_BYTES  # the row limit, not the size limit, is what stops this file
    assert problems(text) == [
        "the file has more than 100,000 candidates: split it into several files (for example one per school) "
        "and import each"
    ]


def test_too_many_rows_is_checked_before_row_problems_pile_up():
    text = VI_HEADER + "\n" + "\n".join(row(code=str(i)) for i in range(5)) + "\n"
    with pytest.raises(RosterError) as error:
        parse(text, max_rows=3)
    assert [p.code for p in error.value.problems] == ["roster_too_many_rows"]
    text = VI_HEADER + "\n" + "\n".join(row(code=f"{i:010d}") for i in range(3)) + "\n\n\n"
    assert len(parse(text, max_rows=3)) == 3  # exactly at the limit is fine; empty rows do not count


def test_too_large_a_file():
    data = (VI_HEADER + "\n" + GOOD_ROW + "\n").encode() + b" " * (5 * 1024 * 1024)
    assert problems(data) == [
        "the file is 5.1 MB, more than the 5 MB allowed: delete unused sheets and columns, or split the roster "
        "into several files"
    ]


def test_xlsx_rows_beyond_the_limit():
    rows = [XLSX_HEADER] + [[f"{i:010d}", "An", "01/01/2010", "A", "B", "C", None] for i in range(4)]
    assert problems(xlsx_bytes(rows), "r.xlsx", max_rows=3) == [
        "the file has more than 3 candidates: split it into several files (for example one per school) and import each"
    ]


# ---------------------------------------------------------------- tickets

CONFUSABLE = "0O1IL5S2Z8BQDGUVWY"


def test_ticket_shape_alphabet_and_entropy():
    assert len(set(TICKET_ALPHABET)) == len(TICKET_ALPHABET) == 16
    assert not set(CONFUSABLE) & set(TICKET_ALPHABET)
    # No vowels: a Vietnamese input method (Telex, VNI) left on changes nothing typed.
    assert not set("AEIOUYW") & set(TICKET_ALPHABET)
    assert TICKET_BITS == 64 and math.log2(len(TICKET_ALPHABET)) * 16 >= 60
    pattern = re.compile(f"[{TICKET_ALPHABET}]{{4}}(-[{TICKET_ALPHABET}]{{4}}){{3}}")
    tickets = [generate_ticket() for _ in range(2000)]
    assert all(pattern.fullmatch(t) for t in tickets)
    assert set("".join(tickets)) - {"-"} == set(TICKET_ALPHABET)  # every symbol is used


def test_100000_tickets_are_all_different():
    tickets = {generate_ticket() for _ in range(100_000)}
    assert len(tickets) == 100_000


@given(
    st.data(),
    st.lists(st.sampled_from(["", "", "-", " ", "  ", "--", " - ", "–", "\t"]), min_size=17, max_size=17),
)
def test_normalise_undoes_case_and_spacing(data, separators):
    drawn = data.draw(st.text(alphabet=TICKET_ALPHABET, min_size=16, max_size=16))
    ticket = "-".join(drawn[i : i + 4] for i in range(0, 16, 4))
    symbols = ticket.replace("-", "")
    cases = data.draw(st.lists(st.booleans(), min_size=16, max_size=16))
    typed = separators[0] + "".join(
        (ch.lower() if low else ch) + sep for ch, low, sep in zip(symbols, cases, separators[1:], strict=True)
    )
    assert normalise_ticket(typed) == ticket
    assert ticket_hash(typed) == ticket_hash(ticket)


def test_normalise_maps_lookalikes_and_full_width_characters():
    assert normalise_ticket("gX7m pC4r ht9j n6fx") == "6X7M-PC4R-HT9J-N6FX"
    assert normalise_ticket("ＫＸ７Ｍ－ＰＣ４Ｒ－ＨＴ９Ｊ－Ｎ６ＦＸ") == "KX7M-PC4R-HT9J-N6FX"
    assert normalise_ticket("KX7MPC4RHT9JN6FX") == "KX7M-PC4R-HT9J-N6FX"


def test_what_cannot_be_a_ticket_matches_no_ticket():
    assert normalise_ticket("hello world") == "HELLOWORLD"
    assert normalise_ticket("KX7M-PC4R-HT9J") == "KX7MPC4RHT9J"  # too short: not grouped, never equal to a ticket
    assert normalise_ticket("") == ""
    assert ticket_hash("KX7M-PC4R-HT9J-N6F") != ticket_hash("KX7M-PC4R-HT9J-N6FX")


def test_ticket_hash_is_sha256_of_the_normalised_ticket():
    assert ticket_hash(" kx7m-pc4r-ht9j-n6fx ") == hashlib.sha256(b"KX7M-PC4R-HT9J-N6FX").digest()
    assert len(ticket_hash(generate_ticket())) == 32


# ---------------------------------------------------------------- sorting and ticket sheets


def test_vietnamese_names_sort_by_given_name_then_family_and_middle_names():
    names = ["Trần Thị Bình", "Nguyễn Văn An", "Lê Đức", "Phạm Văn Dũng", "Vũ Ánh", "Nguyễn Thị Bình",
             "Hoàng Anh", "Đỗ Văn Dũng", "Bùi Thị Ân", "Nguyễn Văn Ân"]  # fmt: skip
    assert sorted(names, key=name_sort_key) == [
        "Bùi Thị Ân",  # An = Ân at first, so the family name decides: Bui before Nguyen
        "Nguyễn Văn An",  # all else equal, accents break the tie
        "Nguyễn Văn Ân",
        "Hoàng Anh",
        "Vũ Ánh",
        "Nguyễn Thị Bình",
        "Trần Thị Bình",
        "Đỗ Văn Dũng",  # same given name: "Do Van" before "Pham Van"
        "Phạm Văn Dũng",
        "Lê Đức",  # Đ is its own letter, after every D
    ]


def ticket_rows() -> list[SimpleNamespace]:
    people = [
        ("0000000003", "Trần Thị Bình", "9A2", "P.10"),
        ("0000000001", "Nguyễn Văn An", "9A1", "P.2"),
        ("0000000002", "Lê Văn Cường", "9A1", "P.2"),
        ("0000000004", '=HYPERLINK("http://x")', "9A3", "P.10"),
        ("0000000005", "Hoàng An", "9A1", "P.2"),
    ]
    return [SimpleNamespace(code=c, full_name=n, class_name=k, room=r, ticket=generate_ticket())
            for c, n, k, r in people]  # fmt: skip


def test_tickets_by_room_sorts_rooms_naturally_and_names_vietnamese_style():
    rows = ticket_rows()
    grouped = tickets_by_room(rows)
    assert [(room, [r.full_name for r in members]) for room, members in grouped] == [
        ("P.2", ["Hoàng An", "Nguyễn Văn An", "Lê Văn Cường"]),
        ("P.10", ['=HYPERLINK("http://x")', "Trần Thị Bình"]),
    ]
    # Mappings (database records) work as well as objects.
    assert tickets_by_room([vars(r) for r in rows])[0][1][0]["full_name"] == "Hoàng An"


def test_tickets_csv_is_sorted_excel_friendly_and_formula_safe():
    rows = ticket_rows()
    text = tickets_csv(rows)
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text[1:])))
    assert table[0] == ["Phòng thi", "Số báo danh", "Họ và tên", "Lớp", "Mã dự thi"]
    assert [r[1] for r in table[1:]] == ["0000000005", "0000000001", "0000000002", "0000000004", "0000000003"]
    assert table[4][2] == '\'=HYPERLINK("http://x")'  # would otherwise run as a formula in Excel
    by_code = {r.code: r.ticket for r in rows}
    assert all(line[4] == by_code[line[1]] for line in table[1:])
    assert tickets_csv(rows, lang="en").splitlines()[0] == "\ufeffRoom,Student code,Full name,Class,Ticket"


def render_tickets(rooms) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "web" / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("exam/tickets.html").render(
        t=lambda key, **values: key,
        url=lambda name, **parts: "/",
        user=None,
        lang="vi",
        csrf_token="",
        path="/",
        exam=SimpleNamespace(title="Kiểm tra giữa kỳ Toán 9"),
        rooms=rooms,
    )


def test_ticket_sheet_has_one_section_per_room_with_its_candidates_tickets():
    rows = ticket_rows()
    html = render_tickets(tickets_by_room(rows))
    sections = html.split('<section class="ticket-room"')[1:]
    assert len(sections) == 2
    for section, (room, members) in zip(sections, tickets_by_room(rows), strict=True):
        assert f'data-room="{room}"' in section
        for member in members:
            assert member.ticket in section and member.code in section and member.class_name in section
        others = [r for r in rows if r.room != room]
        assert not any(other.ticket in section for other in others)
    assert html.count('class="ticket-slip"') == len(rows)
    assert html.count("Kiểm tra giữa kỳ Toán 9") >= len(rows)
    assert "=HYPERLINK(&#34;http://x&#34;)" in html  # escaped
    assert "tickets.none" not in html


def test_ticket_sheet_without_candidates():
    assert "tickets.none" in render_tickets([])


def test_blank_lines_before_the_header_do_not_hide_the_separator():
    assert parse("\n" * 20 + VI_HEADER + "\n" + GOOD_ROW + "\n") == [AN]


def test_printed_tickets_say_where_to_sit_the_exam():
    from cbt.exams import exam_address, tickets_html
    from cbt.platform.config import Settings

    assert exam_address(Settings(public_url="https://thi.truong.edu.vn")) == "https://thi.truong.edu.vn/exam"
    assert exam_address(Settings(host="192.168.1.10", port=8080)) == "http://192.168.1.10:8080/exam"
    assert exam_address(Settings(host="fd00::10", port=80)) == "http://[fd00::10]:80/exam"
    assert exam_address(Settings()) == "http://127.0.0.1:8080/exam"  # cbt demo: the same machine
    # Listening everywhere names no one address: the operator says which (CBT_PUBLIC_URL).
    assert exam_address(Settings(host="0.0.0.0")) is None and exam_address(Settings(host="::")) is None
    rows = ticket_rows()
    html = tickets_html({"title": "Kiểm tra giữa kỳ Toán 9"}, rows, address="https://thi.truong.edu.vn/exam")
    assert html.count("https://thi.truong.edu.vn/exam") == len(rows) and "Địa chỉ vào thi" in html
    assert "Địa chỉ vào thi" not in tickets_html({"title": "Kiểm tra"}, rows)
    assert "Exam address" in tickets_html({"title": "Test"}, rows, "en", "http://10.0.0.5:8080/exam")
