"""Spreadsheet import: the template round trips, and errors name row and column."""

from __future__ import annotations

import openpyxl
import pytest

from itembank.demo import ITEMS
from itembank.errors import XlsxError
from itembank.formats.xlsx import COLUMN_NAMES, EXAMPLES, read_xlsx, write_template, write_xlsx, xlsx_to_yaml
from itembank.model import ItemType
from itembank.validate import validate_path


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "template.xlsx"
    write_template(path)
    return path


def test_the_template_has_a_header_and_an_example_of_each_type(template):
    workbook = openpyxl.load_workbook(template)
    sheet = workbook["items"]
    assert [c.value for c in sheet[1]] == list(COLUMN_NAMES)
    assert {row[2] for row in sheet.iter_rows(min_row=2, values_only=True)} == {t.value for t in ItemType}
    assert workbook.sheetnames == ["items", "help"]


def test_template_round_trip(template):
    assert read_xlsx(template) == list(EXAMPLES)


def test_every_demo_item_survives_a_spreadsheet(tmp_path):
    write_xlsx(tmp_path / "demo.xlsx", ITEMS)
    assert read_xlsx(tmp_path / "demo.xlsx") == list(ITEMS)


def test_from_xlsx_writes_item_files_that_validate(template, tmp_path):
    written = xlsx_to_yaml(template, tmp_path / "items")
    assert sorted(p.name for p in written) == [
        "VD-ESSAY.yaml",
        "VD-MULTIPLE.yaml",
        "VD-SHORT.yaml",
        "VD-SINGLE.yaml",
        "VD-TRUEFALSE4.yaml",
    ]
    assert validate_path(tmp_path / "items") == []
    with pytest.raises(XlsxError) as error:
        xlsx_to_yaml(template, tmp_path / "items")
    assert error.value.code == "exists"
    assert len(xlsx_to_yaml(template, tmp_path / "items", overwrite=True)) == 5


def edit(path, changes: dict[tuple[int, str], object]):
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["items"]
    header = [c.value for c in sheet[1]]
    for (row, column), value in changes.items():
        sheet.cell(row=row, column=header.index(column) + 1, value=value)
    workbook.save(path)


def test_errors_name_the_row_and_column(template):
    edit(
        template,
        {
            (2, "answer"): "E",
            (3, "level"): "abc",
            (4, "answer"): "Đ S",
            (5, "answer"): "12345",
            (6, "points"): -1,
            (7, "id"): "VD-SINGLE",
            (7, "type"): "truefalse5",
            (7, "stem"): "x",
            (7, "version"): 1,
        },
    )
    with pytest.raises(XlsxError) as error:
        read_xlsx(template)
    everyone = "every item needs id, version, type, subject, topic, level, points, lang, status, stem"
    assert [str(p) for p in error.value.problems] == [
        "template.xlsx: row 2, column 'answer': answer 'E' is not among the options (A, B, C, D): use one of their ids",
        "template.xlsx: row 3, column 'level': must be a whole number from 1 to 4, not 'abc'",
        "template.xlsx: row 4, column 'answer': give one answer for each of the 4 statements, each Đ or S"
        " (or T or F), e.g. Đ S Đ Đ",
        "template.xlsx: row 5, column 'answer': answer key '12345' does not fit Part III: use at most 4"
        " characters from digits, a leading minus and a decimal comma, e.g. 75 or -1,5"
        " (or set format: number or format: text)",
        "template.xlsx: row 6, column 'points': points must be more than 0, not -1: e.g. 0.25 for a Part I item",
        *(
            f"template.xlsx: row 7, column '{name}': this cell is empty: {everyone}"
            for name in ("subject", "topic", "level", "points", "lang", "status")
        ),
        "template.xlsx: row 7, column 'type': 'truefalse5' is not one of single, multiple, truefalse4, short, essay",
    ]


def test_unknown_and_missing_columns(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.append(["id", "tpye", "stem", "levle", "stem"])
    workbook.save(tmp_path / "bad.xlsx")
    with pytest.raises(XlsxError) as error:
        read_xlsx(tmp_path / "bad.xlsx")
    assert [str(p) for p in error.value.problems] == [
        "bad.xlsx: row 1, column 'tpye': unknown column — did you mean 'type'?",
        "bad.xlsx: row 1, column 'levle': unknown column — did you mean 'level'?",
        "bad.xlsx: row 1, column 'stem': this column appears twice",
        "bad.xlsx: row 1, column 'type': missing column: add it to the header row",
    ]


def test_not_a_spreadsheet(tmp_path):
    (tmp_path / "x.xlsx").write_text("hello")
    with pytest.raises(XlsxError) as error:
        read_xlsx(tmp_path / "x.xlsx")
    assert error.value.code == "unreadable"
