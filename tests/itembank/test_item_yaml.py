"""The YAML item format: round trips, line numbers, YAML 1.1 pitfalls."""

from __future__ import annotations

import dataclasses
import textwrap
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.items import items

from itembank.formats.yaml_format import (
    parse_bank_info,
    parse_text,
    serialise_bank_info,
    serialise_item,
    serialise_items,
)
from itembank.model import ItemType, Option, ShortFormat, ShortKey


@pytest.mark.parametrize("kind", list(ItemType))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_parse_of_serialise_gives_the_same_item(kind, data):
    item = data.draw(items(kind))
    text = serialise_item(item)
    result = parse_text(text, "round.yaml")
    assert result.problems == [], text
    assert [s.item for s in result.items] == [item], text


@settings(max_examples=50, deadline=None)
@given(many=st.lists(items(), min_size=1, max_size=4))
def test_a_list_of_items_round_trips_in_one_file(many):
    result = parse_text(serialise_items(many), "list.yaml")
    assert [s.item for s in result.items] == many


def yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


BASE = yaml(
    """
    id: M-001
    version: 1
    type: short
    subject: toan
    topic: ham-so
    level: 3
    points: 0,5
    lang: no
    status: approved
    stem: Tính $x$.
    answer: 0.50
    """
)


def test_values_are_read_exactly_as_written():
    # YAML 1.1 would make `lang: no` false, `points: 0,5` a string and
    # `answer: 0.50` the float 0.5; the reader keeps what the author wrote.
    [source] = parse_text(BASE, "a.yaml").items
    item = source.item
    assert item.lang == "no"
    assert item.points == Decimal("0.5")
    assert item.answer == ShortKey("0.50")


def test_every_field_knows_its_line():
    text = BASE.replace("answer: 0.50\n", "answer:\n  key: '-1,5'\n  tolerance: 0.1\n")
    [source] = parse_text(text, "a.yaml").items
    assert source.line == 1
    assert source.line_of("level") == 6
    assert source.line_of("answer.tolerance") == 13
    assert source.line_of("options.Z") == 1  # no such field: the item's line
    assert source.item.answer == ShortKey("-1,5", ShortFormat.VN_NUMERIC, Decimal("0.1"))


def test_single_answer_may_be_a_list_and_statements_accept_vietnamese_words():
    text = yaml(
        """
        - id: S-1
          version: 2
          type: multiple
          subject: toan
          topic: t
          level: 1
          points: 0.25
          lang: vi
          status: draft
          stem: s
          options: {A: x, B: y, C: z}
          answer: [A, C]
        - id: T-1
          version: 1
          type: truefalse4
          subject: toan
          topic: t
          level: 2
          points: 1
          lang: vi
          status: draft
          stem: s
          statements:
            a: {text: p, answer: Đúng}
            b: {text: q, answer: sai}
            c: {text: r, answer: true}
            d: {text: s, answer: no}
        """
    )
    result = parse_text(text, "b.yaml")
    assert result.problems == []
    multiple, truefalse = (s.item for s in result.items)
    assert multiple.correct_option_ids == ("A", "C")
    assert [s.answer for s in truefalse.statements] == [True, False, True, False]


def test_shape_problems_are_all_reported_with_lines():
    text = yaml(
        """
        id: X
        version: one
        type: single
        subject: toan
        topic: t
        level: 1
        points: lots
        lang: vi
        status: approved
        stem: s
        stem: again
        options: [A, B]
        answer: A
        """
    )
    result = parse_text(text, "c.yaml")
    assert result.items == []
    assert [str(p) for p in result.problems] == [
        "c.yaml:11: field 'stem' is given twice (first on line 10): keep one",
        "c.yaml:2: version: must be a whole number (1, 2 ...), not 'one'",
        "c.yaml:7: points: must be a number such as 0.25, not 'lots'",
        "c.yaml:12: options: write one option per line, as 'A: text'",
    ]


def test_an_empty_file_and_a_bare_word_are_not_items():
    assert [p.code for p in parse_text("", "e.yaml").problems] == ["empty-file"]
    assert [p.code for p in parse_text("hello", "e.yaml").problems] == ["not-an-item"]
    assert [p.code for p in parse_text("- 1\n- 2\n", "e.yaml").problems] == [
        "not-an-item",
        "not-an-item",
    ]


def test_tabs_get_their_own_hint():
    [problem] = parse_text("id: x\n\tversion: 1\n", "t.yaml").problems
    assert problem.code == "yaml-syntax"
    assert problem.line == 2
    assert "indent with spaces, not tabs" in problem.message


def test_bank_yaml_names_its_topics_and_round_trips():
    text = textwrap.dedent("""\
        format: cbt-bank/1
        name: thpt-toan
        version: "1"
        topics:
          ham-so: Hàm số
          mu-logarit: "Hàm số mũ và lôgarit"
        """)
    info, problems = parse_bank_info(text, "bank.yaml")
    assert problems == [] and dict(info.topics) == {"ham-so": "Hàm số", "mu-logarit": "Hàm số mũ và lôgarit"}
    again, problems = parse_bank_info(serialise_bank_info(info), "bank.yaml")
    assert problems == [] and again == info
    assert parse_bank_info("format: cbt-bank/1\nname: a\nversion: '1'\n", "bank.yaml")[0].topics is None


@pytest.mark.parametrize(
    ("topics", "code"),
    [
        ("topics: [ham-so, mu-logarit]", "wrong-type"),
        ("topics:\n  ham-so: [Hàm số]", "wrong-type"),
        ("topics:\n  ham-so: '  '", "bad-topic-name"),
        ("topics:\n  ham-so: " + "x" * 201, "bad-topic-name"),
        ("topics:\n  ham-so: Hàm số\n  ham-so: Hàm", "duplicate-field"),
    ],
)
def test_bad_topic_names_say_what_to_fix(topics, code):
    info, problems = parse_bank_info(f"format: cbt-bank/1\nname: a\nversion: '1'\n{topics}\n", "bank.yaml")
    assert info is None and [p.code for p in problems] == [code]
    assert all("topics" in p.message for p in problems)


# ---------------------------------------------------------------- fixed options


def test_an_option_may_be_fixed_and_that_round_trips():
    text = yaml(
        """
        id: F-1
        version: 1
        type: single
        subject: toan
        topic: t
        level: 1
        points: 0.25
        lang: vi
        status: draft
        stem: s
        options:
          A: x
          B: {text: y}
          C: {text: Tất cả các ý trên, fixed: true}
          D: {text: z, fixed: no}
        answer: C
        """
    )
    result = parse_text(text, "f.yaml")
    assert result.problems == []
    [source] = result.items
    options = source.item.options
    assert [(o.id, o.text, o.fixed) for o in options] == [
        ("A", "x", False),
        ("B", "y", False),
        ("C", "Tất cả các ý trên", True),
        ("D", "z", False),
    ]
    assert options[2].correct and source.line_of("options.C") == 14
    written = serialise_item(source.item)
    # Only the fixed option is written as a mapping; the others as before.
    assert "  A: x\n  B: y\n  C:\n    text: Tất cả các ý trên\n    fixed: true\n  D: z\n" in written
    assert [s.item for s in parse_text(written, "again.yaml").items] == [source.item]


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_items_with_fixed_options_round_trip(data):
    item = data.draw(items(ItemType.SINGLE) | items(ItemType.MULTIPLE))
    flags = data.draw(st.lists(st.booleans(), min_size=len(item.options), max_size=len(item.options)))
    options = tuple(Option(o.id, o.text, o.correct, f) for o, f in zip(item.options, flags, strict=True))
    fixed = dataclasses.replace(item, options=options)
    result = parse_text(serialise_item(fixed), "f.yaml")
    assert [s.item for s in result.items] == [fixed]


@pytest.mark.parametrize(
    ("options", "code", "line"),
    [
        ("  A: {fixed: true}\n  B: y\n", "missing-field", 12),
        ("  A: {text: x, fixed: maybe}\n  B: y\n", "not-boolean", 12),
        ("  A: {text: x, fixd: true}\n  B: y\n", "unknown-field", 12),
    ],
)
def test_a_badly_written_fixed_option_says_where(options, code, line):
    head = BASE.replace("type: short", "type: single").replace("answer: 0.50\n", "")
    result = parse_text(head + "options:\n" + options + "answer: B\n", "f.yaml")
    assert result.items == []
    assert [(p.code, p.line) for p in result.problems] == [(code, line)]
