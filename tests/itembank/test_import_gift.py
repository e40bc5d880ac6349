"""GIFT import: every type cbt has becomes a draft with its key, the others
are reported by name, and bad questions are problems at their line."""

from __future__ import annotations

import base64
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from itembank.formats.gift import parse_gift
from itembank.formats.imported import ImportDefaults, draft
from itembank.formats.moodle import TEXT_MAX_BYTES
from itembank.formats.yaml_format import parse_text, serialise_items
from itembank.model import ItemType, Option, ShortFormat, ShortKey
from itembank.validate import check_item

DEFAULTS = ImportDefaults(subject="toan", topic="ham-so", points=Decimal("0.5"), grade=12, id_prefix="gift")

FILE = r"""// Đề kiểm tra viết tay theo GIFT
$CATEGORY: $course$/top/Hàm số

::Thủ đô::Thủ đô của Việt Nam là {
  =Hà Nội#Đúng rồi
  ~Huế
  ~Đà Nẵng
  ####Hà Nội là thủ đô từ năm 1010.
}

::Chẵn:: Chọn các số chẵn {~%50%2 ~%50%4 ~%-100%3}

// A comment inside a question is left out.
Mặt trời mọc ở hướng đông.
{T}

::Tính:: Nghiệm của $x^2 = 2.25$ với $x > 0$ {#1.5:0.1}

Một số trong khoảng \[ 1 \le x \le 2 \] {#1..2}

::Thủ đô Pháp:: Thủ đô của Pháp là {=Paris =%50%Pari}

Viết đoạn văn về mùa thu. {}

[markdown]Chọn **số nguyên tố** {=2 ~4 ~6}

[html]<p dir="ltr" style="text-align: left">Giá trị <b>lớn nhất</b> của \(\sin x\) là</p> {=[html]<i>1</i> ~$$2$$ ~0}

Biểu thức \{a\} có dấu \= và \~ \: \# và $x \neq 0$\nxuống dòng {=đúng ~sai}

Braces in math need no escape: $\frac{1}{2} = 0.5$ {=$\frac{1}{2}$ ~$\frac{1}{3}$}
"""


def line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if line.startswith(start))


def options(*texts: str, keys: str) -> tuple[Option, ...]:
    return tuple(Option("ABCDEFGH"[i], text, "ABCDEFGH"[i] in keys) for i, text in enumerate(texts))


def parse(text: str | bytes, defaults: ImportDefaults = DEFAULTS):
    return parse_gift(text.encode() if isinstance(text, str) else text, "de.gift", defaults)


def test_every_supported_type_imports_to_the_expected_draft():
    result = parse(FILE)
    assert result.problems == []
    d = DEFAULTS
    assert [source.item for source in result.items] == [
        draft(
            d,
            "1",
            ItemType.SINGLE,
            "Thủ đô của Việt Nam là",
            options=options("Hà Nội", "Huế", "Đà Nẵng", keys="A"),
            explanation="Hà Nội là thủ đô từ năm 1010.",
        ),
        draft(d, "2", ItemType.MULTIPLE, "Chọn các số chẵn", options=options("2", "4", "3", keys="AB")),
        # cbt has no single true/false type: a single with Đúng / Sai, in that order.
        draft(
            d,
            "3",
            ItemType.SINGLE,
            "Mặt trời mọc ở hướng đông.",
            options=options("Đúng", "Sai", keys="A"),
            shuffle=False,
        ),
        draft(
            d,
            "4",
            ItemType.SHORT,
            "Nghiệm của $x^2 = 2.25$ với $x > 0$",
            answer=ShortKey("1.5", ShortFormat.NUMBER, Decimal("0.1")),
        ),
        draft(
            d,
            "5",
            ItemType.SHORT,
            "Một số trong khoảng $$1 \\le x \\le 2$$",
            answer=ShortKey("1.5", ShortFormat.NUMBER, Decimal("0.5")),
        ),
        draft(d, "6", ItemType.SHORT, "Thủ đô của Pháp là", answer=ShortKey("Paris", ShortFormat.TEXT)),
        draft(d, "7", ItemType.ESSAY, "Viết đoạn văn về mùa thu."),
        draft(d, "8", ItemType.SINGLE, "Chọn **số nguyên tố**", options=options("2", "4", "6", keys="A")),
        draft(
            d,
            "9",
            ItemType.SINGLE,
            "Giá trị **lớn nhất** của $\\sin x$ là",
            options=options("*1*", "$2$", "0", keys="A"),
        ),
        draft(
            d,
            "10",
            ItemType.SINGLE,
            "Biểu thức {a} có dấu = và ~ : # và $x \\neq 0$\\\nxuống dòng",
            options=options("đúng", "sai", keys="A"),
        ),
        draft(
            d,
            "11",
            ItemType.SINGLE,
            "Braces in math need no escape: $\\frac{1}{2} = 0.5$",
            options=options("$\\frac{1}{2}$", "$\\frac{1}{3}$", keys="A"),
        ),
    ]
    places = ["::Thủ đô::", "::Chẵn::", "Mặt trời", "::Tính::", "Một số", "::Thủ đô Pháp::", "Viết", "[markdown]"]
    places += ["[html]", "Biểu thức", "Braces"]
    assert [s.line for s in result.items] == [line_of(FILE, p) for p in places]
    assert {s.item.points for s in result.items} == {Decimal("0.5")}
    for source in result.items:
        assert check_item(source) == []


def test_what_an_item_leaves_behind_is_noted_never_dropped_in_silence():
    notes = [(n.code, n.line, n.message) for n in parse(FILE).notes]
    assert notes == [
        (
            "category-ignored",
            2,
            "category '$course$/top/Hàm số' ignored: the items take the topic chosen for the import",
        ),
        (
            "feedback-not-imported",
            4,
            "question 1 (::Thủ đô::): feedback on answers is not imported: cbt items have none",
        ),
        (
            "weights-not-kept",
            11,
            "question 2 (::Chẵn::): option weights (A 50%, B 50%, C -100%) are not kept: cbt scores a multiple"
            " question all-or-nothing, or by the exam's partial credit ((right - wrong) / keys);"
            " the keys are the options above 0%",
        ),
        (
            "answer-not-imported",
            21,
            "question 6 (::Thủ đô Pháp::): cbt keeps one answer, 'Paris'; not imported: Pari (50%)"
            " (students answering these would score 0)",
        ),
    ]


def test_equal_weights_need_no_note_and_several_accepted_answers_are_all_named():
    result = parse("Chọn {~%50%a ~%50%b ~c}\n\nThủ đô {=Hà Nội =Ha Noi =HN}\n")
    assert [n.message for n in result.notes] == [
        "question 2: cbt keeps one answer, 'Hà Nội'; not imported: Ha Noi, HN (students answering these would score 0)"
    ]
    assert result.items[0].item.correct_option_ids == ("A", "B")


def test_true_and_false_speak_the_files_language():
    result = parse("The sun rises in the west. {FALSE#It does not.}\n", ImportDefaults(subject="vat-li", lang="en"))
    (source,) = result.items
    assert source.item.options == (Option("A", "True", False), Option("B", "False", True))
    assert [n.code for n in result.notes] == ["feedback-not-imported"]


def test_imported_items_survive_the_native_format():
    items = [source.item for source in parse(FILE).items]
    assert [s.item for s in parse_text(serialise_items(items), "x.yaml").items] == items


def test_matching_and_missing_word_are_reported_by_name():
    matching = "::Ghép:: Ghép cặp {=Hà Nội -> Việt Nam =Paris -> Pháp}\n\n"
    result = parse(matching + "Mặt trời {=mọc ~lặn} ở hướng đông.\n\nOK {=a ~b}\n")
    assert [(p.code, p.line, p.message) for p in result.problems] == [
        ("not-imported", 1, "question 1 (::Ghép::) is a matching question, which cbt does not have: not imported"),
        (
            "not-imported",
            3,
            "question 2 is a missing-word question (text after the answers in braces), which cbt does not have:"
            " not imported",
        ),
    ]
    assert [s.item.id for s in result.items] == ["gift-C3"]


def test_a_description_is_skipped_with_a_note():
    result = parse("Đọc kỹ đề trước khi làm bài.\n\nOK {=a ~b}\n")
    assert [(n.code, n.line) for n in result.notes] == [("description-skipped", 1)]
    assert [s.item.id for s in result.items] == ["gift-C2"]


def problems_of(text: str):
    result = parse(text)
    return [(p.code, p.line, p.message) for p in result.problems], [s.item.id for s in result.items]


def test_no_key_and_two_keys_are_problems_naming_the_question():
    problems, ids = problems_of("::K:: Q {~a ~b ~c}\n\nQ {=a =b ~c}\n\nOK {=a ~b}\n")
    assert problems == [
        (
            "no-key",
            1,
            "question 1 (::K::): no answer is marked right: mark it with = (one right answer)"
            " or give the right answers weights such as ~%50%",
        ),
        (
            "single-key-count",
            3,
            "question 2: a single item needs exactly one key, found 2 (A, B):"
            " give one option id in answer:, or make it type: multiple",
        ),
    ]
    assert ids == ["gift-C3"]
    assert problems_of("Q {=%50%a =%50%b}\n")[0][0][:2] == ("no-key", 1)


def test_broken_syntax_is_a_problem_at_the_question():
    cases = {
        "Q {=a ~b\n": "its answers have no closing '}'",
        "Q } x\n": "a '}' without its '{'",
        "::Tên Q {=a ~b}\n": "its title has no closing '::'",
        "Q {~%5O%a ~b =c}\n": "'%5O%a' is not a weight",
        "Q {#abc}\n": "'abc' is not a number with its margin",
        "Q {#1..x}\n": "'1..x' is not a range of numbers",
    }
    for text, message in cases.items():
        problems, ids = problems_of(text)
        assert [(c, line) for c, line, _ in problems] == [("gift-syntax", 1)], text
        assert message in problems[0][2] and ids == []


def test_a_wildcard_key_is_a_problem_not_a_literal_star():
    problems, ids = problems_of("Thủ đô {=Hà*}\n")
    assert problems == [
        (
            "short-key-wildcard",
            1,
            "question 1: the answer 'Hà*' uses Moodle's wildcard *, which cbt's short answers do not have:"
            " write the exact answer",
        )
    ]
    assert ids == []


def test_pictures_come_only_from_the_file():
    problems, ids = problems_of('[html]<p>Hình <img src="https://example.org/x.png"></p> {=a ~b}\n')
    assert [(c, line) for c, line, _ in problems] == [("media-not-embedded", 1)] and ids == []
    assert "picture 'https://example.org/x.png' is not in the file" in problems[0][2]
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    result = parse(f'[html]Hình <img alt="Hình 1" src="data:image/png;base64,{png}"> {{=a ~b}}\n')
    (source,) = result.items
    assert source.item.stem == "Hình ![Hình 1](media/gift-C1-image.png)"
    assert source.item.media == ("media/gift-C1-image.png",)
    assert result.media == {"media/gift-C1-image.png": b"\x89PNG\r\n\x1a\n"}


def test_content_cbt_cannot_show_is_a_problem():
    problems, ids = problems_of('[html]Xem <iframe src="https://video">x</iframe> {=a ~b}\n')
    assert [(c, line) for c, line, _ in problems] == [("unsupported-content", 1)] and ids == []


def test_bytes_that_are_not_utf8_and_a_huge_file_are_problems():
    result = parse(b"OK {=a ~b}\n\nQ {=\xe0 ~b}\n")
    assert [(p.code, p.line) for p in result.problems] == [("encoding", 3)] and result.items == []
    result = parse(b"Q {=a ~b}\n\n" * (TEXT_MAX_BYTES // 10))
    assert [(p.code, p.line) for p in result.problems] == [("too_large", None)] and result.items == []


TOKENS = ["::t::", "{", "}", "=", "~", "#", "####", "%50%", "%x%", "->", "a", "$", "$x$", "\\", "\n", "\n\n", "[html]"]
TOKENS += ["<b>", "<img src=x>", "T", "1..2", ":", "//", "\\n", "\\{", "$CATEGORY:", "<iframe>"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_no_input_escapes_as_an_exception_and_every_item_passes_the_checks(tokens):
    result = parse(" ".join(tokens))
    for source in result.items:
        assert check_item(source, result.media.__contains__) == []
