"""The rows of a workbook's first sheet, read within bounds on what is really there.

openpyxl's read-only sheets trust the sheet's declared dimension: a 5 KB
workbook that declares A1:XFD1048576 makes them pad every row to 16,384
cells and every gap between rows with empty rows (125 KB of memory a row,
seconds of CPU). Its parser also holds a whole ``<row>`` in memory before
giving out any cell. So the cells are streamed here, one element at a time,
through openpyxl's own cell parser (shared strings, dates, numbers come out
exactly as openpyxl gives them), counting the rows and cells the file
really contains; missing rows are skipped rather than made up.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import iterparse

from itembank.archive import ArchiveLimits
from itembank.errors import ItembankError
from itembank.limits import TooLarge, check_zip, megabytes

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_SHEET_DATA, _ROW, _CELL = _MAIN + "sheetData", _MAIN + "row", _MAIN + "c"


@dataclass(frozen=True)
class SheetLimits:
    max_bytes: int  # the .xlsx file itself
    archive: ArchiveLimits  # what it unpacks to, by its zip directory
    max_rows: int  # <row> elements present, empty ones included
    max_cells: int  # <c> elements present, in all rows
    max_columns: int  # cells further right are not returned ...
    refuse_wider: bool = False  # ... or, if set, refused when they hold a value


def unreadable(label: str, reason: object) -> ItembankError:
    return ItembankError("unreadable", f"{label}: not a readable .xlsx file ({reason})")


def rows(data: bytes, label: str, limits: SheetLimits) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(row number as the spreadsheet shows it, cell values) for each row present in the first sheet.

    A row's values run from column A to its last cell present (at most
    `limits.max_columns`), None where a cell is empty. Raises
    :class:`TooLarge` past a limit, ItembankError("unreadable") for a file
    that is not a workbook.
    """
    # openpyxl is slow to import; only spreadsheets need it.
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.styles.stylesheet import apply_stylesheet
    from openpyxl.worksheet._reader import WorkSheetParser

    if len(data) > limits.max_bytes:
        raise TooLarge(
            f"{label}: the file is {megabytes(len(data))}, more than the {megabytes(limits.max_bytes)} allowed:"
            " delete unused sheets, rows and columns, or split it into several files",
            megabytes(limits.max_bytes),
        )
    check_zip(data, label, limits.archive)
    # The parts of openpyxl's load_workbook(read_only=True) that the cells
    # need, and not the rest: it also reads every sheet once to learn its
    # size, and when a sheet declares none, that reads all of its cells.
    try:
        reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for files it cannot read
        raise unreadable(label, e) from None
    try:
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
        path = next(
            (
                rel.target
                for _, rel in reader.parser.find_sheets()
                if rel.target in reader.valid_files and "chartsheet" not in rel.Type
            ),
            None,
        )
        if path is None:
            raise unreadable(label, "it has no worksheet")
        # What openpyxl's own read-only sheet gives this parser (names of
        # openpyxl 3.1; tests/itembank/test_sheet.py compares the values
        # with what openpyxl reads from the same workbook).
        parser = WorkSheetParser(
            None,
            reader.shared_strings,
            data_only=True,
            epoch=reader.wb.epoch,
            date_formats=reader.wb._date_formats,
            timedelta_formats=reader.wb._timedelta_formats,
        )
        with reader.archive.open(path) as source:
            yield from _stream(source, parser, label, limits)
    except (TooLarge, ItembankError):
        raise
    except Exception as e:  # a damaged part inside a valid zip
        raise unreadable(label, e) from None
    finally:
        reader.archive.close()


def _stream(source: Any, parser: Any, label: str, limits: SheetLimits) -> Iterator[tuple[int, tuple[Any, ...]]]:
    from openpyxl.utils import get_column_letter

    row_count = cell_count = number = depth = 0
    root = sheet_data = row = None
    values: dict[int, Any] = {}
    # Python's expat (2.4 and later) refuses entity expansion past a small
    # factor of the input, and ElementTree resolves no external entity.
    for event, element in iterparse(source, events=("start", "end")):  # noqa: S314
        if event == "start":
            depth += 1
            if depth == 1:
                root = element
            elif element.tag == _SHEET_DATA and depth == 2:
                sheet_data = element
            elif element.tag == _ROW and depth == 3:
                row_count += 1
                if row_count > limits.max_rows:
                    raise TooLarge(
                        f"{label}: the first sheet has more than {limits.max_rows:,} rows: delete empty"
                        " and unused rows, or split it into several files",
                        str(limits.max_rows),
                    )
                row, values = element, {}
                r = element.get("r")
                number = int(float(r)) if r else number + 1
                parser.row_counter, parser.col_counter = number, 0
            continue
        depth -= 1
        if depth == 3 and element.tag == _CELL:
            cell_count += 1
            if cell_count > limits.max_cells:
                raise TooLarge(
                    f"{label}: the first sheet has more than {limits.max_cells:,} cells: delete unused rows"
                    " and columns, or split it into several files",
                    str(limits.max_cells),
                )
            cell = parser.parse_cell(element)
            column, value = cell["column"], cell["value"]
            if column <= limits.max_columns:
                values[column] = value
            elif value is not None and limits.refuse_wider:
                where = f"{get_column_letter(column)}{number}"
                raise TooLarge(
                    f"{label}: cell {where} is beyond column {get_column_letter(limits.max_columns)}, the last"
                    " one read: delete the columns to the right of the table",
                    str(limits.max_columns),
                )
        if depth == 3 and row is not None:
            del row[-1]  # a cell, once read, is not kept
        elif depth == 2 and element.tag == _ROW:
            yield number, tuple(values.get(column) for column in range(1, max(values, default=0) + 1))
            row = None
            del sheet_data[-1]  # type: ignore[index]
        elif depth == 1:
            if element is sheet_data:
                return  # nothing after the cells matters here
            root.clear()  # type: ignore[union-attr]
