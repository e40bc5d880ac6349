"""Files from outside cost what they really hold, never what they claim:
spreadsheets by their cells, zips by what they unpack to, YAML by the tree
it composes to. Past a bound, TooLarge says which and what to do."""

from __future__ import annotations

import datetime
import io
import json
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import openpyxl
import pytest
from bombs import (
    cell_bomb,
    deep_yaml,
    dimension_liar,
    laughs_yaml,
    lying_member,
    row_bomb,
    unsafe_release,
    zip_of,
)

from itembank.archive import ArchiveLimits, open_release
from itembank.errors import ItembankError, VerifyError, XlsxError
from itembank.formats import sheet, xlsx
from itembank.formats.yaml_format import parse_text
from itembank.limits import YAML_MAX_DEPTH, TooLarge, check_zip
from itembank.package import load_release, verify
from itembank.validate import validate_path

REPO = Path(__file__).resolve().parents[2]
ROSTER_HEADER = ["Mã học sinh", "Họ và tên", "Ngày sinh", "Lớp", "Trường", "Phòng thi"]
ROSTER_ROW = ["0000000001", "Nguyễn Văn An", "05/03/2008", "12A1", "THPT A", "P01"]


def run_bounded(code: str, memory_mb: int = 400) -> dict:
    """Run `code` in a fresh Python under a memory cap; it prints a JSON line, returned with its peak RSS growth."""
    script = (
        textwrap.dedent("""
        import json, resource, sys, time
        sys.path[:0] = [{tests!r}, {repo!r}]
        import openpyxl, yaml, cbt.roster, itembank.formats.xlsx  # the baseline includes the libraries
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        result = {{}}
    """).format(tests=str(REPO / "tests"), repo=str(REPO))
        + textwrap.dedent(code)
        + textwrap.dedent("""
        result["seconds"] = time.perf_counter() - start
        result["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
        print(json.dumps(result))
    """)
    )

    def cap() -> None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, preexec_fn=cap)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- spreadsheets


def test_a_sheet_that_declares_a1_to_xfd1048576_costs_only_its_real_cells(tmp_path):
    """The review's bomb: a few KB declaring A1:XFD1048576. openpyxl padded every row
    to 16,384 cells (read_xlsx: MemoryError under this cap) and filled the gap up
    to row 1,048,576 with empty rows."""
    liar = tmp_path / "items.xlsx"
    liar.write_bytes(dimension_liar(list(xlsx.COLUMN_NAMES), []))
    out = run_bounded(f"""
        from bombs import dimension_liar
        from itembank.errors import ItembankError
        from itembank.formats.xlsx import read_xlsx
        from cbt.roster import parse_roster
        header = ["Mã học sinh", "Họ và tên", "Ngày sinh", "Lớp", "Trường", "Phòng thi"]
        row = ["0000000001", "Nguyễn Văn An", "05/03/2008", "12A1", "THPT A", "P01"]
        roster = dimension_liar(header, [row])
        result["size"] = len(roster)
        result["candidates"] = len(parse_roster(roster, "r.xlsx"))
        try:
            read_xlsx(__import__("pathlib").Path({str(liar)!r}))
        except ItembankError as e:
            result["items"] = e.message
    """)
    assert out["size"] < 5000 and out["candidates"] == 1
    # Its one far cell holds a value beyond the template's columns: said, not padded to.
    assert out["items"] == (
        f"{liar}: cell XFD1048576 is beyond column IV, the last one read: delete the columns to the right of the table"
    )
    assert out["rss_growth_mb"] < 50


def test_a_lying_dimension_takes_no_longer_than_a_truthful_one():
    truthful = openpyxl.Workbook()
    for row in (ROSTER_HEADER, ROSTER_ROW):
        truthful.active.append(row)
    buffer = io.BytesIO()
    truthful.save(buffer)
    from cbt.roster import parse_roster

    def seconds(data: bytes) -> float:
        start = time.perf_counter()
        assert len(parse_roster(data, "r.xlsx")) == 1
        return time.perf_counter() - start

    honest = min(seconds(buffer.getvalue()) for _ in range(3))
    liar = min(seconds(dimension_liar(ROSTER_HEADER, [ROSTER_ROW])) for _ in range(3))
    assert liar < 20 * honest + 0.05  # before: a million empty rows walked, ~10,000 times longer


def test_rows_and_cells_are_counted_as_they_are_really_there():
    limits = sheet.SheetLimits(
        max_bytes=10**8, archive=xlsx.SHEET_LIMITS.archive, max_rows=1000, max_cells=5000, max_columns=50
    )
    with pytest.raises(TooLarge) as error:
        list(sheet.rows(row_bomb(2000), "rows.xlsx", limits))
    assert error.value.message == (
        "rows.xlsx: the first sheet has more than 1,000 rows: delete empty and unused"
        " rows, or split it into several files"
    )
    assert error.value.limit == "1000"
    with pytest.raises(TooLarge) as error:
        list(sheet.rows(cell_bomb(6000, per_row=10), "cells.xlsx", limits))
    assert "more than 5,000 cells" in error.value.message
    # Exactly at the limits is fine, and cells to the right of max_columns are not returned.
    rows = list(sheet.rows(cell_bomb(5000, per_row=100), "ok.xlsx", limits))
    assert len(rows) == 50 and {len(cells) for _, cells in rows} == {50}
    assert [number for number, _ in rows] == list(range(1, 51))


def test_cells_read_as_openpyxl_reads_them():
    """Values come through openpyxl's own cell parser: dates, numbers, booleans, formulas' cached values."""
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.append(["text", 7, 2.5, True, datetime.date(2010, 3, 5), datetime.datetime(2010, 3, 5, 7, 30), None, "=1+1"])
    ws.append([None, None, "after a gap", "0012"])
    ws["D2"].number_format = "@"
    buffer = io.BytesIO()
    workbook.save(buffer)
    data = buffer.getvalue()
    read = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
    expected = {n: row for n, row in enumerate(read.iter_rows(values_only=True), start=1)}
    got = dict(sheet.rows(data, "t.xlsx", xlsx.SHEET_LIMITS))
    assert set(got) == set(expected) == {1, 2}
    for number, cells in got.items():  # openpyxl pads rows to the sheet's width; here they end at their last cell
        assert cells == expected[number][: len(cells)] and not any(expected[number][len(cells) :])
    assert got[1][4] == datetime.datetime(2010, 3, 5) and got[2] == (None, None, "after a gap", "0012")


def test_zip_bombs_in_a_spreadsheet_are_refused_before_unpacking():
    # Five honest members of 60 MB of zeros: 300 KB that unpacks to 300 MB.
    bomb = zip_of([], [(f"xl/media/image{i}.png", 60 * 1024 * 1024) for i in range(5)])
    assert len(bomb) < 400_000
    with pytest.raises(TooLarge) as error:
        xlsx.read_xlsx_bytes(bomb, "items.xlsx")
    assert error.value.message.startswith("items.xlsx: the file unpacks to more than 256 MB, the most allowed")
    with pytest.raises(TooLarge, match=r"'xl/media/big\.png' unpacks to 100 MB, more than the 64 MB allowed"):
        xlsx.read_xlsx_bytes(zip_of([], [("xl/media/big.png", 100 * 1024 * 1024)]), "items.xlsx")
    many = zip_of([(f"xl/{i}.xml", b"") for i in range(10_001)])
    with pytest.raises(TooLarge, match="holds 10,001 files, more than the 10,000 allowed"):
        xlsx.read_xlsx_bytes(many, "items.xlsx")


def test_a_member_that_inflates_past_its_declared_size_is_cut_there():
    """zipfile returns at most the size a member declares and then fails its
    CRC, so what the directory says bounds what reading can cost."""
    lying = lying_member("xl/worksheets/sheet1.xml", b"<x>" + b" " * 20_000_000 + b"</x>", 100)
    assert check_zip(lying, "t.xlsx", xlsx.SHEET_LIMITS.archive) is None  # declares 100 bytes
    with pytest.raises(XlsxError) as error:
        xlsx.read_xlsx_bytes(lying, "t.xlsx")
    assert error.value.code == "unreadable"
    import zipfile

    with zipfile.ZipFile(io.BytesIO(lying)) as zf, pytest.raises(zipfile.BadZipFile, match="CRC"):
        zf.read("xl/worksheets/sheet1.xml")


def test_xml_entity_expansion_is_refused_by_the_parser():
    entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10))
    strings = (
        f'<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY e0 "lol">{entities}]>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&e9;</t></si></sst>'
    )
    from bombs import sheet as sheet_xml
    from bombs import xlsx as workbook

    data = workbook(sheet_xml([["x"]]), shared_strings=strings.encode())
    with pytest.raises(XlsxError) as error:  # not 10**9 "lol"s
        xlsx.read_xlsx_bytes(data, "t.xlsx")
    assert error.value.code == "unreadable" and "amplification" in error.value.message


def test_read_xlsx_refuses_a_large_file_before_reading_it(tmp_path):
    path = tmp_path / "big.xlsx"
    with path.open("wb") as f:
        f.truncate(xlsx.SHEET_LIMITS.max_bytes + 1)
    with pytest.raises(TooLarge, match=r"the file is 32\.1 MB, more than the 32 MB allowed"):
        xlsx.read_xlsx(path)


# ---------------------------------------------------------------- YAML


def test_yaml_nested_deeper_than_an_item_can_be_is_refused_at_once():
    start = time.perf_counter()
    with pytest.raises(TooLarge) as error:
        parse_text(deep_yaml(100_000), "deep.yaml")
    assert time.perf_counter() - start < 5
    assert error.value.message.startswith(f"deep.yaml:1: nested more than {YAML_MAX_DEPTH} levels deep")


def test_yaml_aliases_count_at_the_text_they_repeat():
    """0.5 MB that parsed in 0.04 s, then took all memory when the item was written out (as every import does)."""
    from bombs import alias_tags_yaml

    text = alias_tags_yaml(100_000, 100_000)
    assert len(text) < 600_000
    with pytest.raises(TooLarge) as error:
        parse_text(text, "tags.yaml")
    assert error.value.message.startswith("tags.yaml:11: the file expands to more than 50,000,000 characters")


def test_yaml_aliases_count_at_the_size_they_expand_to():
    with pytest.raises(TooLarge) as error:
        parse_text(laughs_yaml(9), "lol.yaml")
    assert error.value.message.startswith("lol.yaml:")
    assert "expands to more than 2,000,000 values (anchors & and aliases * repeat what they name)" in (
        error.value.message
    )
    # A few aliases are still fine.
    result = parse_text("id: &i A-1\nversion: 1\ntopic: *i\n", "few.yaml")
    assert all(p.code != "too_large" for p in result.problems)


# ---------------------------------------------------------------- releases


def test_a_release_that_unpacks_past_its_limit_is_refused_before_unpacking(tmp_path):
    bomb = zip_of(
        [("bank.yaml", b"format: cbt-bank/1\nname: x\nversion: '1'\n")],
        [(f"media/zeros-{i}.bin", 60 * 1024 * 1024) for i in range(40)],
    )
    assert len(bomb) < 3_000_000
    with pytest.raises(TooLarge) as error:
        load_release(bomb, [], ArchiveLimits(max_total_bytes=2 * 1024 * 1024 * 1024))
    assert error.value.message.startswith("release archive: the file unpacks to more than 2048 MB")
    path = tmp_path / "bomb.cbtbank"
    path.write_bytes(bomb)
    with pytest.raises(TooLarge):
        verify(path, [])
    with pytest.raises(TooLarge):
        validate_path(path)


def test_a_release_file_larger_than_it_may_unpack_to_is_not_read(tmp_path):
    path = tmp_path / "big.cbtbank"
    with path.open("wb") as f:
        f.truncate(10_001)
    with pytest.raises(TooLarge, match=r"larger than 0\.1 MB, the most a release may unpack to"):
        open_release(path, ArchiveLimits(max_total_bytes=10_000))


def test_a_directory_that_declares_more_entries_than_allowed_is_refused_from_its_end_record():
    data = bytearray(zip_of([("bank.yaml", b"x")]))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (60_000).to_bytes(2, "little") * 2  # declares 60,000 entries
    with pytest.raises(VerifyError) as error:
        verify(bytes(data), [], ArchiveLimits(max_entries=50_000))
    assert error.value.code == "unsafe-archive" and "60000 entries" in error.value.message


def test_too_large_errors_travel_between_processes_whole():
    import pickle

    error = pickle.loads(pickle.dumps(TooLarge("t: too big", "5 MB")))
    assert (type(error), error.code, error.message, error.limit) == (TooLarge, "too_large", "t: too big", "5 MB")
    problems = pickle.loads(pickle.dumps(XlsxError("invalid-rows", "m", [])))
    assert isinstance(problems, ItembankError) and problems.problems == []


def test_unsafe_html_in_a_signed_release_is_a_validation_problem(tmp_path):
    """The same check as the workspace import (check_item's rendering), now run on every import:
    a signature says who vouches for a release, not that cbt's own sign checked it."""

    from itembank.errors import ReleaseInvalidError

    _, archive, key = unsafe_release(tmp_path)
    with pytest.raises(ReleaseInvalidError) as error:
        load_release(archive, [key.public_key()])
    messages = [str(p) for p in error.value.problems]
    assert messages == [
        f"{archive}/items/hs-01.yaml:11: stem: unsafe content removed: {what}"
        for what in (
            "image 'x' from outside the release: copy the file into media/ and write ![description](media/NAME.png)",
            "event handler onerror= on <img>: scripts are not allowed",
            "<script> element: script elements are not allowed in items",
            "link to 'javascript:alert(3)': items may only link to files in media/; remove the link",
        )
    ]
    assert {p.code for p in error.value.problems} == {"unsafe-content"}
    assert [str(p) for p in validate_path(archive)] == messages  # bank validate FILE.cbtbank, the same list
