"""Aiken import: questions become single drafts with their keys; every bad
question is a problem at its line, naming it, and gives no item."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from itembank.formats.aiken import parse_aiken
from itembank.formats.imported import ImportDefaults
from itembank.formats.moodle import TEXT_MAX_BYTES
from itembank.formats.yaml_format import parse_text, serialise_items
from itembank.model import Item, ItemType, Option, Status
from itembank.render import render_markdown
from itembank.validate import check_item

DEFAULTS = ImportDefaults(subject="toan", topic="ham-so", level=2, points=Decimal("0.25"), grade=12, id_prefix="ak")

FILE = """\
Thủ đô của Việt Nam là
A. Hà Nội
B. Huế
C. Đà Nẵng
D. Cần Thơ
ANSWER: A

Cho hàm số $y = x^3 - 3x$.
Hàm số đạt cực đại tại
A) $x = -1$
B) $x = 1$
ANSWER: a
Which is 2*3*4?
A. 2*3*4 = 24
B. <b>not bold</b>
C. - 24
ANSWER:   C
"""


def single(number: str, stem: str, options: dict[str, str], key: str) -> Item:
    return Item(
        id=f"ak-C{number}",
        version=1,
        type=ItemType.SINGLE,
        subject="toan",
        topic="ham-so",
        level=2,
        points=Decimal("0.25"),
        lang="vi",
        status=Status.DRAFT,
        stem=stem,
        grade=12,
        options=tuple(Option(letter, text, letter == key) for letter, text in options.items()),
    )


def parse(text: str | bytes):
    return parse_aiken(text.encode() if isinstance(text, str) else text, "cau-hoi.txt", DEFAULTS)


def test_every_question_imports_to_a_single_draft_with_its_key():
    result = parse(FILE)
    assert result.problems == [] and result.notes == [] and result.media == {}
    assert [source.item for source in result.items] == [
        single("1", "Thủ đô của Việt Nam là", {"A": "Hà Nội", "B": "Huế", "C": "Đà Nẵng", "D": "Cần Thơ"}, "A"),
        # Lines of the question are kept as lines; math passes through.
        single("2", "Cho hàm số $y = x^3 - 3x$.\\\nHàm số đạt cực đại tại", {"A": "$x = -1$", "B": "$x = 1$"}, "A"),
        # Plain text: what Markdown would take for markup is escaped.
        single("3", "Which is 2\\*3\\*4?", {"A": "2\\*3\\*4 = 24", "B": "\\<b>not bold\\</b>", "C": "\\- 24"}, "C"),
    ]
    assert [(s.file, s.line) for s in result.items] == [("cau-hoi.txt", 1), ("cau-hoi.txt", 8), ("cau-hoi.txt", 13)]
    for source in result.items:
        assert check_item(source) == []
    third = result.items[2].item
    assert [render_markdown(o.text, inline=True).html for o in third.options] == [
        "2*3*4 = 24",
        "&lt;b&gt;not bold&lt;/b&gt;",
        "- 24",
    ]


def test_imported_items_survive_the_native_format():
    items = [source.item for source in parse(FILE).items]
    assert [s.item for s in parse_text(serialise_items(items), "x.yaml").items] == items


def test_utf16_with_its_mark_reads_as_utf8():
    assert [s.item for s in parse(FILE.encode("utf-16")).items] == [s.item for s in parse(FILE).items]
    assert [s.item for s in parse(b"\xef\xbb\xbf" + FILE.encode()).items] == [s.item for s in parse(FILE).items]


def problems_of(text: str):
    result = parse(text)
    return [(p.code, p.line, p.message) for p in result.problems], [s.item.id for s in result.items]


GOOD = "Good\nA. x\nB. y\nANSWER: B\n\n"


def test_a_question_without_an_answer_line_is_a_problem_and_the_next_one_still_imports():
    problems, ids = problems_of("Câu không có đáp án\nA. x\nB. y\n\n" + GOOD)
    assert problems == [
        (
            "no-key",
            1,
            "question 1 has no key: write ANSWER: and the right option's letter (e.g. ANSWER: B) after its options",
        )
    ]
    assert ids == ["ak-C2"]
    problems, ids = problems_of(GOOD + "Last\nA. x\nB. y\n")
    assert [(c, line) for c, line, _ in problems] == [("no-key", 6)] and ids == ["ak-C1"]


def test_a_key_naming_no_option_is_a_problem_at_the_answer_line():
    problems, ids = problems_of(GOOD + "Q\nA. x\nB. y\nC. z\nANSWER: E\n")
    assert problems == [
        ("key-not-in-options", 10, "question 2: ANSWER: E names no option; its options are A, B, C"),
    ]
    assert ids == ["ak-C1"]
    assert problems_of("Q\nA. x\nB. y\nANSWER:\n")[0][0][:2] == ("key-not-in-options", 4)
    assert problems_of("Q\nA. x\nB. y\nANSWER: 1\n")[0][0][:2] == ("key-not-in-options", 4)


def test_two_keys_on_a_single_question_are_a_problem():
    problems, ids = problems_of("Q\nA. x\nB. y\nC. z\nANSWER: A, C\n" + "\n" + GOOD)
    assert problems == [
        ("single-key-count", 5, "question 1: ANSWER: A, C names 2 options; an Aiken question has exactly one key")
    ]
    assert ids == ["ak-C2"]


def test_options_out_of_order_are_a_problem_at_the_option():
    problems, ids = problems_of("Q\nA. x\nB. y\nD. z\nANSWER: A\n")
    assert problems == [
        (
            "options-out-of-order",
            4,
            "question 1: its options go A, B, D: option D stands where C belongs;"
            " letter the options A, B, C ... in order",
        )
    ]
    assert ids == []
    assert problems_of("Q\nB. x\nA. y\nANSWER: A\n")[0][0][:2] == ("options-out-of-order", 2)


def test_fewer_than_two_options_is_a_problem():
    problems, ids = problems_of("Only one\nA. x\nANSWER: A\n\nNone at all\nANSWER: A\n")
    assert problems == [
        ("too-few-options", 1, "question 1: a single item needs at least two options"),
        ("too-few-options", 5, "question 2 has no options: write them as A. ... B. ..., one a line"),
    ]
    assert ids == []


def test_a_stray_line_among_the_options_is_a_problem_not_an_option():
    problems, ids = problems_of("Q\nA. x\ncontinued\nB. y\nANSWER: A\n\n" + GOOD)
    assert problems == [
        (
            "aiken-syntax",
            3,
            "question 1: this line is neither an option (E. ...) nor the key (ANSWER: B):"
            " write each option on one line, and the key last",
        )
    ]
    assert ids == ["ak-C2"]
    problems, ids = problems_of(GOOD + "ANSWER: A\n")
    assert [(c, line) for c, line, _ in problems] == [("aiken-syntax", 6)] and ids == ["ak-C1"]


def test_what_cbt_refuses_is_reported_with_the_question():
    problems, ids = problems_of("Q\nA. same\nB. same\nANSWER: A\n")
    assert problems == [
        ("duplicate-option-text", 1, "question 1: options A and B have the same text: make each option different")
    ]
    assert ids == []
    problems, _ = problems_of("Q $\\frac{1}{$\nA. x\nB. y\nANSWER: A\n")
    assert [c for c, _, _ in problems] == ["bad-math"]


def test_bytes_that_are_not_utf8_are_a_problem_at_their_line():
    # "Câu hỏi" saved in Windows' Vietnamese code page (â, o and a combining hook) instead of UTF-8.
    legacy = b"C\xe2u ho\xd2i\nA. x\nB. y\nANSWER: A\n"
    assert unicodedata.normalize("NFC", legacy.decode("cp1258")).startswith("Câu hỏi\n")
    result = parse(GOOD.encode() + legacy)
    assert [(p.code, p.line) for p in result.problems] == [("encoding", 6)]
    assert "save the file as UTF-8" in result.problems[0].message
    assert result.items == []


def test_a_file_over_the_limit_is_refused_before_it_is_read():
    result = parse(b"x" * (TEXT_MAX_BYTES + 1))
    assert [(p.code, p.line) for p in result.problems] == [("too_large", None)]
    assert str(result.problems[0]).startswith("cau-hoi.txt: the file is ")
    assert result.items == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["Q", "A. x", "B) y", "C. z", "D. w", "ANSWER: B", "ANSWER: E", "", "\ufeff", "$"])))
def test_no_input_escapes_as_an_exception_and_every_item_passes_the_checks(lines):
    result = parse("\n".join(lines))
    for source in result.items:
        assert check_item(source) == []
    assert len({s.item.id for s in result.items}) == len(result.items)
