"""The registry of foreign readers: which importer reads a file, by its ending
and its content; a file no reader knows is one clear problem; every reader's
result comes back the same shape."""

from __future__ import annotations

import dataclasses
import time

import pytest
from support.foreign import AIKEN, GIFT, LATEX, MOODLE, PNG, XML_BOMB, word_file
from support.qti import QTI_ITEM, foreign_package

from itembank.formats import foreign
from itembank.formats.aiken import parse_aiken
from itembank.formats.foreign import READERS, Reader, read_foreign, reader_for
from itembank.formats.gift import parse_gift
from itembank.formats.imported import ImportDefaults, ImportResult, prefix_from_name
from itembank.formats.moodle import parse_moodle
from itembank.levels import SCHEME_2025

DEFAULTS = ImportDefaults(subject="toan", id_prefix="f")
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"{=a ~b}\nANSWER: B\n" + bytes(20)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        # By the ending, when one kind alone has it: the importer says what is wrong with the rest.
        ("de.docx", word_file(), "docx"),
        ("de.DOCX", b"not a zip", "docx"),
        ("de.tex", LATEX.encode(), "latex"),
        ("ngan-hang.xml", MOODLE, "moodle"),
        ("bomb.xml", XML_BOMB, "moodle"),
        ("notes.xml", b"<root/>", "moodle"),
        ("de.gift", GIFT.encode(), "gift"),
        ("DE.GIFT", b"no braces at all", "gift"),
        # .txt: Aiken with its key line, else GIFT with answers in braces, else nothing.
        ("ak.txt", AIKEN.encode(), "aiken"),
        ("de.txt", GIFT.encode(), "gift"),
        ("ak-utf16.txt", AIKEN.encode("utf-16"), "aiken"),
        ("math.txt", "Tính $\\frac{1}{2}$\nA. 1\nB. 2\nANSWER: A\n".encode(), "aiken"),
        ("ghi-chu.txt", "Chỉ là ghi chú {không có đáp án}".encode(), None),
        ("gift-math.txt", "Tính $\\frac{1}{2}$ và $x^{2}$ nhé".encode(), None),
        # No ending cbt knows: by content alone, in the registry's order.
        ("cau-hoi", word_file(), "docx"),
        ("cau-hoi.doc.bak", LATEX.encode(), "latex"),
        ("cau-hoi", MOODLE, "moodle"),
        ("cau-hoi.bak", AIKEN.encode(), "aiken"),
        ("cau-hoi.dat", GIFT.encode(), "gift"),
        ("anh.png", PNG + b"{=a ~b}", None),
        ("tai-lieu.zip", ZIP, "qti"),  # a .zip is a QTI package, and its importer says when it is not
        ("tai-lieu.bin", ZIP, None),  # binary: whatever it happens to hold, no text kind
        ("goi-qti.zip", foreign_package(), "qti"),
        ("goi-qti", foreign_package(), "qti"),
        ("cau-1.xml", QTI_ITEM, "qti"),
        ("cau-1", QTI_ITEM, "qti"),
        ("de.pdf", b"%PDF-1.7\n", None),
    ],
)
def test_a_files_kind_comes_from_its_ending_or_else_its_content(name, content, kind):
    reader = reader_for(content, name)
    assert (reader.kind if reader else None) == kind


def test_a_file_no_reader_knows_is_one_problem_naming_the_kinds_accepted():
    for name, why in (("ghi-chu.txt", "this one is neither"), ("de.pdf", "does not know this kind of file")):
        reader, result = read_foreign(b"%PDF-1.7 ghi chu", name, DEFAULTS)
        assert reader is None and result.items == [] and result.notes == []
        (problem,) = result.problems
        assert problem.code == "unknown-kind" and problem.file == name and why in problem.message
        assert "Word (.docx), LaTeX ex_test (.tex), Moodle XML (.xml), QTI 3.0 (.zip, .xml), Aiken" in problem.message
    assert foreign.kinds() == (
        "Word (.docx), LaTeX ex_test (.tex), Moodle XML (.xml), QTI 3.0 (.zip, .xml), Aiken (.txt), GIFT (.gift, .txt)"
    )
    assert set(foreign.EXTENSIONS) == {".docx", ".tex", ".xml", ".zip", ".txt", ".gift"}


@pytest.mark.parametrize(
    ("name", "content", "parse"),
    [
        ("ngan-hang.xml", MOODLE, parse_moodle),
        ("de.gift", GIFT.encode(), parse_gift),
        ("ak.txt", AIKEN.encode(), parse_aiken),
    ],
)
def test_the_registry_gives_what_the_kinds_importer_gives(name, content, parse):
    reader, result = read_foreign(content, name, DEFAULTS, SCHEME_2025)
    assert reader.name in foreign.kinds()
    assert result == parse(content, name, DEFAULTS)
    assert result.items  # each fixture has questions to import


def test_problems_that_leave_their_item_imported_come_back_as_notes():
    """A problem always means a question left out: Word's warnings and a LaTeX picture to add by
    hand leave their question's item in, so the registry gives them as notes, by their codes."""
    from itembank.formats import docx, latex_ex

    assert READERS[0].keeps == docx.WARNINGS and READERS[1].keeps == latex_ex._KEEPS_ITEM
    direct = latex_ex.parse_latex(LATEX.encode(), "de.tex", DEFAULTS, levels=SCHEME_2025)
    reader, result = read_foreign(LATEX.encode(), "de.tex", DEFAULTS, SCHEME_2025)
    assert reader.kind == "latex" and result.items == direct.items and result.media == {}
    assert [(p.line, p.code) for p in direct.problems] == [(19, "not-imported"), (24, "no-key")]
    assert [(p.line, p.code) for p in result.problems] == [(24, "no-key")]
    assert [(p.line, p.code) for p in result.notes] == [(19, "not-imported")]
    # Word: its pictures come along; a question with no key marked is left out.
    reader, result = read_foreign(word_file(), "de.docx", DEFAULTS)
    assert reader.kind == "docx"
    assert [s.item.id for s in result.items] == ["f-CI-1", "f-CI-2", "f-CI-3"]
    assert result.media == {"media/f-CI-2-1.png": PNG} and result.items[1].item.media == ("media/f-CI-2-1.png",)
    assert [(p.line, p.code) for p in result.problems] == [(9, "no-key")] and result.notes == []


def test_a_registry_line_names_its_importer_and_may_ask_for_the_scheme():
    # An importer that reads levels (LaTeX ID codes) is given the bank's scheme; one that
    # returns a plain ParseResult comes back as an ImportResult, without pictures or notes.
    reader = Reader("test", "Test", (".test",), "support.foreign:parse_with_levels", lambda d: False, takes_levels=True)
    result = reader.parse(b"12345", "a.test", DEFAULTS, SCHEME_2025)
    assert isinstance(result, ImportResult) and result.media == {} and result.notes == []
    assert [p.message for p in result.problems] == ["5 bytes at 3 levels"]
    # Every line of the registry names an importer that exists, of the importers' signature.
    for line in READERS:
        assert line.parse(b"", f"x{line.extensions[0]}", DEFAULTS, SCHEME_2025).items == []


def test_adding_a_kind_is_one_line():
    def looks_like(data: bytes) -> bool:
        return data.startswith(b"TEST")

    added = Reader("test", "Test", (".test",), "support.foreign:parse_with_levels", looks_like, takes_levels=True)
    original = foreign.READERS
    foreign.READERS = (*original, added)
    try:
        assert reader_for(b"TEST 1", "de.test") is added and reader_for(b"TEST 1", "de") is added
        assert foreign.kinds().endswith(", Test (.test)")
        reader, result = read_foreign(b"TEST 1", "de.test", DEFAULTS, SCHEME_2025)
        assert reader is added and [p.message for p in result.problems] == ["6 bytes at 3 levels"]
    finally:
        foreign.READERS = original


def test_the_word_and_latex_sniffers():
    assert foreign.is_ex_test("%[2D1H3-1]\n\\begin{ex}%[TH]\nHàm ...\\end{ex}".encode())
    assert foreign.is_ex_test(b"\\begin {bt} ...") and not foreign.is_ex_test(b"\\begin{document}")
    word = b"PK\x03\x04" + b"\x00" * 26 + b"word/document.xml" + b"\x00" * 10
    assert foreign.is_word(word) and not foreign.is_word(ZIP) and not foreign.is_word(b"word/document.xml")


@pytest.mark.parametrize(
    "head",
    [
        b"<!-- a -->" * 6000 + b"<root>",  # comments the Moodle sniffer must not backtrack over
        b"{" + b"\\{" * 30000,  # escaped braces after an open one
        b"{" * 60000,
        b"ANSWER: " * 8000,
    ],
)
def test_sniffing_reads_a_hostile_head_in_linear_time(head):
    start = time.perf_counter()
    for reader in READERS:
        reader.looks_like(head)
    assert time.perf_counter() - start < 0.5


def test_an_id_prefix_is_made_from_the_files_name_when_none_is_given():
    assert prefix_from_name("Đề kiểm tra 15 phút.gift") == "De-kiem-tra-15-phut"
    assert prefix_from_name("C:\\Users\\gv\\Câu hỏi (chương 1).xml") == "Cau-hoi-chuong-1"
    assert prefix_from_name("....txt") == prefix_from_name("") == "imp"
    assert len(prefix_from_name("x" * 100 + ".txt")) == 40


def test_the_result_pickles_whole_for_the_reading_process():
    import pickle

    _, result = read_foreign(MOODLE, "ngan-hang.xml", DEFAULTS)
    assert result.media and result.notes
    again = pickle.loads(pickle.dumps(result))
    assert dataclasses.asdict(again) == dataclasses.asdict(result)
