"""Aiken files (plain text, one-key multiple choice) as draft items.

``parse_aiken(data, filename, defaults)`` reads questions written as
Moodle's Aiken format has them::

    Thủ đô của Việt Nam là
    A. Hà Nội
    B) Huế
    C. Đà Nẵng
    ANSWER: A

The question comes first (a line, or several; a blank line between two of
them starts a new paragraph), then the options ``A.`` or ``A)``, each on
its line, in order A, B, C ... , then ``ANSWER:`` and the key's letter.
Each question becomes a ``single`` draft item (see
`itembank.formats.imported`) whose options keep their letters. Questions
follow one another, usually with a blank line between them.

A question is named by its number in the file (``question 3``), its id is
made from it (``imp-C3``), and its place is its first line; a problem with
an option or the key points at that line. The text is plain: ``$...$``
passes through as cbt math (``\\(...\\)`` and ``$$...$$`` become ``$...$``)
and everything else is escaped, so Markdown does not reinterpret it.

Keys are never guessed. Problem codes (no item for the question):
``no-key`` (no ``ANSWER:`` line), ``key-not-in-options`` (it names a letter
that is no option's), ``single-key-count`` (it names two letters: an Aiken
question has one key), ``options-out-of-order`` (A, B, D), ``aiken-syntax``
(a line after the options that is neither an option nor ``ANSWER:``; a
line ``ANSWER:`` without a question), ``too-few-options``, and
``too_large``, ``encoding`` for the file, and itembank's own from
`itembank.validate.check_item`, which every imported item passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from itembank.formats.imported import ImportDefaults, ImportResult, draft
from itembank.formats.moodle import OPTION_LETTERS, Collector, decode_text, markdown_text
from itembank.model import ItemType, Option

# As Moodle reads them: a capital, "." or ")", then the text.
_OPTION = re.compile(r"([A-Z])[.)](?:[ \t]+(.*))?")
_ANSWER = re.compile(r"ANSWER\s*:\s*(.*)", re.IGNORECASE)
_LETTERS = re.compile(r"[A-Za-z]")


@dataclass
class _Question:
    number: int
    line: int
    stem: list[str] = field(default_factory=list)
    options: list[tuple[str, str, int]] = field(default_factory=list)  # (letter, text, line)
    answer: tuple[str, int] | None = None  # (what follows ANSWER:, line)
    broken: bool = False  # a problem was reported already
    blank: bool = False  # a blank line since the last option

    @property
    def label(self) -> str:
        return f"question {self.number}"


def parse_aiken(data: bytes, filename: str, defaults: ImportDefaults) -> ImportResult:
    """The questions of an Aiken file as draft items; see the module's docstring."""
    text, failure = decode_text(data, filename)
    if failure is not None:
        return failure
    assert text is not None
    collector = Collector(filename, defaults)
    question: _Question | None = None
    count = 0

    def start(line: int) -> _Question:
        nonlocal count
        count += 1
        return _Question(count, line)

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if question is not None and question.options:
                question.blank = True
            elif question is not None:
                question.stem.append("")
            continue
        answer, option = _ANSWER.fullmatch(line), _OPTION.fullmatch(line)
        if answer is not None:
            if question is None:
                message = "an ANSWER: line without a question before it: remove it or add the question"
                collector.problem(number, "aiken-syntax", message)
                continue
            question.answer = (answer[1].strip(), number)
            _finish(collector, question)
            question = None
        elif question is None:
            question = start(number)
            if option is not None:
                question.options.append((option[1], option[2] or "", number))
            else:
                question.stem.append(line)
        elif option is not None:
            question.options.append((option[1], option[2] or "", number))
            question.blank = False
        elif not question.options:
            question.stem.append(line)
        elif question.blank:
            # The question before had options and no ANSWER line; this one starts here.
            _finish(collector, question)
            question = start(number)
            question.stem.append(line)
        else:
            if not question.broken:
                collector.problem(
                    number,
                    "aiken-syntax",
                    f"{question.label}: this line is neither an option (E. ...) nor the key (ANSWER: B):"
                    " write each option on one line, and the key last",
                )
            question.broken = True
    if question is not None:
        _finish(collector, question)
    return collector.result()


def _finish(collector: Collector, question: _Question) -> None:
    """Report what is wrong with the question, or add its item."""
    if question.broken:
        return
    label = question.label
    if not question.options:
        collector.problem(
            question.line, "too-few-options", f"{label} has no options: write them as A. ... B. ..., one a line"
        )
        return
    letters = [letter for letter, _, _ in question.options]
    for i, (letter, _, line) in enumerate(question.options):
        expected = OPTION_LETTERS[i]
        if letter != expected:
            written = ", ".join(letters)
            collector.problem(
                line,
                "options-out-of-order",
                f"{label}: its options go {written}: option {letter} stands where {expected} belongs;"
                " letter the options A, B, C ... in order",
            )
            return
    if question.answer is None:
        collector.problem(
            question.line,
            "no-key",
            f"{label} has no key: write ANSWER: and the right option's letter (e.g. ANSWER: B) after its options",
        )
        return
    written, line = question.answer
    named = _LETTERS.findall(written)
    if len(named) > 1:
        collector.problem(
            line,
            "single-key-count",
            f"{label}: ANSWER: {written} names {len(named)} options; an Aiken question has exactly one key",
        )
        return
    key = written.upper()
    if key not in letters:
        collector.problem(
            line,
            "key-not-in-options",
            f"{label}: ANSWER: {written or '(empty)'} names no option; its options are {', '.join(letters)}",
        )
        return
    stem = markdown_text("\n".join(question.stem).strip(), "plain", None, None).markdown
    options = tuple(
        Option(letter, markdown_text(text, "plain", None, None).markdown, letter == key)
        for letter, text, _ in question.options
    )
    item = draft(collector.defaults, str(question.number), ItemType.SINGLE, stem, options=options)
    collector.add(item, question.line, label)
