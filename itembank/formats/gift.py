"""GIFT files (Moodle's text format for questions) as draft items.

``parse_gift(data, filename, defaults)`` reads the questions as Moodle does
(one question a block, blocks separated by blank lines, lines starting
with ``//`` are comments) into draft items (see `itembank.formats.imported`):

=================================  ===========================================
GIFT                               cbt item
=================================  ===========================================
``{=right ~wrong ~wrong}``         ``single``; options A, B ... in the file's order
``{~%50%a ~%50%b ~%-100%c}``       ``multiple`` (no ``=``): the keys are the
                                   answers weighted above 0%
``{T}`` ``{F}`` ``{TRUE}``         ``single`` with options Đúng / Sai (``lang: vi``,
``{FALSE}``                        else True / False), not shuffled: cbt has no
                                   single true/false type
``{=Paris =paris}``                ``short``, format text, the first answer the key
``{#1.5:0.1}`` ``{#1..2}``         ``short``, format number, with the tolerance
``{}``                             ``essay``
``::title::``                      names the question in messages
``####feedback`` (in the braces)   the explanation
=================================  ===========================================

A question is named in messages by its number in the file (categories not
counted) and its ``::title::``, and its id is made from that number
(``imp-C3``): titles are often sentences, and need not be unique. Its place
is its first line.

Not imported, each a ``not-imported`` problem naming the question and the
kind: matching (``{=a -> b}``) and missing word (text after the braces,
``The {=sun ~moon} rises``), which cbt has no type for. A block with no
braces is a description: skipped, with a note. ``$CATEGORY:`` is ignored,
with a note (the file's defaults give the topic).

Keys are never guessed, and weights are as in Moodle XML
(`itembank.formats.moodle`): a ``single`` needs one answer worth 100% (two
``=`` are itembank's ``single-key-count``, none is ``no-key``), weights cbt
cannot keep are dropped with a ``weights-not-kept`` note. A short answer
has one key in cbt: the first full-credit answer is the key, and every
other accepted (or partly right) answer is listed in an
``answer-not-imported`` note, never dropped in silence; a wildcard ``*``
in the key is a problem. Per-answer feedback gets a note.

Text: Moodle's escapes ``\\~ \\= \\# \\{ \\} \\:`` and ``\\\\`` mean the
character, ``\\n`` a new line. Two liberties, for files written for cbt by
hand: braces and ``= ~ #`` inside ``$...$`` math need no escape (a GIFT
file written for Moodle has them escaped, and reads the same), and inside
math ``\\n`` followed by a letter is TeX (``$x \\neq 0$``), not a new line.
Format tags ``[moodle]`` (the default: HTML allowed, a new line is a line
break), ``[html]``, ``[plain]`` and ``[markdown]`` are read as
`itembank.formats.moodle.markdown_text` says: HTML becomes Markdown,
``$...$`` passes through as cbt math, ``\\(...\\)`` and ``$$...$$`` become
``$...$``. GIFT carries no pictures: an ``<img>`` is a
``media-not-embedded`` problem unless it is a ``data:`` address.

Problem codes: ``too_large``, ``encoding``, ``gift-syntax``,
``not-imported``, ``no-key``, ``too-many-options``,
``short-key-wildcard``, ``media-not-embedded``, ``unsupported-content``,
and itembank's own from `itembank.validate.check_item`, which every
imported item passes. Notes: ``category-ignored``,
``description-skipped``, ``weights-not-kept``, ``answer-not-imported``,
``feedback-not-imported``, ``content-removed``, ``link-removed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from itembank.formats.imported import ImportDefaults, ImportResult, draft, item_id
from itembank.formats.moodle import (
    Collector,
    Media,
    decode_text,
    markdown_text,
    math_spans,
    number_text,
    option_letter,
    truefalse_options,
    weights_note,
)
from itembank.model import Item, ItemType, Option, ShortFormat, ShortKey

# Each escape becomes a private-use character while the question's structure
# is read, so that an escaped brace is never a brace (as Moodle does).
_ESCAPES = {"\\\\": "\ue020", "\\:": "\ue021", "\\#": "\ue022", "\\=": "\ue023", "\\{": "\ue024"}
_ESCAPES |= {"\\}": "\ue025", "\\~": "\ue026", "\\n": "\ue027"}
_ESCAPED = re.compile("|".join(re.escape(e) for e in _ESCAPES))
_NEW_LINE = "\ue027"
_CHARACTER = {mark: escape[1] for escape, mark in _ESCAPES.items()} | {_NEW_LINE: "\n"}
_PLACEHOLDER = re.compile("[\ue020-\ue027]")
_FORMAT = re.compile(r"\s*\[(moodle|html|plain|markdown)\]")
_WEIGHT = re.compile(r"%(-?[0-9]+(?:\.[0-9]+)?)%")
_TRUEFALSE = {"T": True, "TRUE": True, "F": False, "FALSE": False}


def parse_gift(data: bytes, filename: str, defaults: ImportDefaults) -> ImportResult:
    """The questions of a GIFT file as draft items; see the module's docstring."""
    text, failure = decode_text(data, filename)
    if failure is not None:
        return failure
    assert text is not None
    collector = Collector(filename, defaults)
    number = 0
    for line, block in _blocks(text):
        protected = _ESCAPED.sub(lambda m: _ESCAPES[m[0]], block)
        if protected.startswith("$CATEGORY:"):
            category = _restore(protected.removeprefix("$CATEGORY:")).strip()
            message = f"category '{category}' ignored: the items take the topic chosen for the import"
            collector.note(line, "category-ignored", message)
            continue
        number += 1
        _Question(collector, number, line).read(protected)
    return collector.result()


def _blocks(text: str) -> list[tuple[int, str]]:
    """(line of its first line, text) of each question: lines between blank lines, comments left out."""
    blocks: list[tuple[int, str]] = []
    lines: list[str] = []
    first = 0
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if not line.strip():
            if lines:
                blocks.append((first, "\n".join(lines).strip()))
            lines = []
        elif not line.lstrip().startswith("//"):
            if not lines:
                first = number
            lines.append(line)
    return blocks


def _restore(text: str) -> str:
    """The text with its escapes back as the characters they stand for.

    Inside math, ``\\n`` before a letter stays TeX (``\\neq``); elsewhere it is a new line.
    """
    out, at = [], 0
    for begin, end, _ in math_spans(text):
        out.append(text[at:begin])
        out.append(re.sub(_NEW_LINE + "(?=[A-Za-z])", r"\\n", text[begin:end]))
        at = end
    out.append(text[at:])
    return _PLACEHOLDER.sub(lambda m: _CHARACTER[m[0]], "".join(out))


def _outside_math(text: str, characters: str, start: int = 0) -> list[int]:
    """Where each of `characters` stands in `text` from `start`, outside math."""
    wanted = re.compile(f"[{re.escape(characters)}]")
    found, at = [], start
    for begin, end, _ in math_spans(text, start):
        found += [m.start() for m in wanted.finditer(text, at, begin)]
        at = end
    return found + [m.start() for m in wanted.finditer(text, at)]


@dataclass
class _Answer:
    marker: str  # "=", "~" or "" (a first answer written without one)
    weight: Decimal | None  # the %n% written, if any
    text: str  # as written, escapes still protected
    feedback: str


class _Question:
    """One GIFT question being read; reports through the collector, naming the question."""

    def __init__(self, collector: Collector, number: int, line: int) -> None:
        self.c, self.number, self.line = collector, number, line
        self.defaults = collector.defaults
        self.label = f"question {number}"
        self.id = item_id(self.defaults, str(number))
        self.media = Media(self.id)
        self.fmt = "moodle"
        self.failed = False

    def problem(self, code: str, message: str) -> None:
        self.failed = True
        self.c.problem(self.line, code, f"{self.label}: {message}")

    def note(self, code: str, message: str) -> None:
        self.c.note(self.line, code, f"{self.label}: {message}")

    def read(self, text: str) -> None:
        if text.startswith("::"):
            end = text.find("::", 2)
            if end < 0:
                self.problem("gift-syntax", "its title has no closing '::': write ::title:: before the question")
                return
            title = " ".join(_restore(text[2:end]).split())
            self.label = f"question {self.number} (::{title}::)" if title else self.label
            text = text[end + 2 :].strip()
        opening = _outside_math(text, "{")
        if not opening:
            if "}" in text:
                self.problem("gift-syntax", "a '}' without its '{': write \\} for a brace in the text")
            else:
                self.note("description-skipped", "no answers in braces { }: a description, not a question; skipped")
            return
        start = opening[0]
        closing = _outside_math(text, "}", start)
        if not closing:
            self.problem("gift-syntax", "its answers have no closing '}': close the braces (write \\{ for a brace)")
            return
        end = closing[0]
        if text[end + 1 :].strip():
            self.c.problem(
                self.line,
                "not-imported",
                f"{self.label} is a missing-word question (text after the answers in braces), which cbt does not"
                " have: not imported",
            )
            return
        stem_text = text[:start]
        fmt = _FORMAT.match(stem_text)
        if fmt:
            self.fmt, stem_text = fmt[1], stem_text[fmt.end() :]
        answers = text[start + 1 : end]
        explanation = None
        feedback = answers.rfind("####")
        if feedback >= 0:
            explanation = self.convert(answers[feedback + 4 :], "general feedback") or None
            answers = answers[:feedback]
        answers = answers.strip()
        stem = self.convert(stem_text, "question text")
        item = self.item(answers, stem, explanation)
        if item is not None and not self.failed:
            self.c.add(item, self.line, self.label, self.media.stored)

    def item(self, answers: str, stem: str, explanation: str | None) -> Item | None:
        """The item the answers in braces make, by Moodle's order of tests."""
        number = str(self.number)
        if not answers:
            return draft(
                self.defaults, number, ItemType.ESSAY, stem, explanation=explanation, media=tuple(self.media.stored)
            )
        if answers.startswith("#"):
            return self.numerical(answers[1:], stem, explanation)
        if _outside_math(answers, "~"):
            return self.multichoice(answers, stem, explanation)
        if _outside_math(answers, "=") and "->" in answers:
            self.c.problem(
                self.line, "not-imported", f"{self.label} is a matching question, which cbt does not have: not imported"
            )
            return None
        head = answers.split("#", 1)[0].strip() if answers.find("#") > 0 else answers
        if head in _TRUEFALSE:
            if head != answers:
                self.note("feedback-not-imported", "feedback on answers is not imported: cbt items have none")
            return draft(
                self.defaults,
                number,
                ItemType.SINGLE,
                stem,
                options=truefalse_options(self.defaults.lang, _TRUEFALSE[head]),
                explanation=explanation,
                media=tuple(self.media.stored),
                shuffle=False,
            )
        return self.shortanswer(answers, stem, explanation)

    # -- pieces

    def convert(self, text: str, what: str) -> str:
        fmt = _FORMAT.match(text)
        fmt_name = self.fmt
        if fmt:
            fmt_name, text = fmt[1], text[fmt.end() :]
        converted = markdown_text(_restore(text.strip()), fmt_name, None, self.media)
        for code, message in converted.errors:
            self.problem(code, f"{what}: {message}")
        for code, message in converted.notes:
            self.note(code, f"{what}: {message}")
        return converted.markdown

    def split(self, answers: str, markers: str) -> list[_Answer] | None:
        """The answers, cut before each marker outside math; None if a weight is malformed."""
        cuts = _outside_math(answers, markers)
        pieces = []
        if not cuts or answers[: cuts[0]].strip():
            pieces.append(("", answers[: cuts[0]] if cuts else answers))
        for i, cut in enumerate(cuts):
            pieces.append((answers[cut], answers[cut + 1 : cuts[i + 1] if i + 1 < len(cuts) else len(answers)]))
        found = []
        for marker, piece in pieces:
            piece = piece.strip()
            weight = None
            if piece.startswith("%"):
                match = _WEIGHT.match(piece)
                if match is None:
                    shown = _restore(piece.split()[0] if piece.split() else piece)
                    self.problem("gift-syntax", f"'{shown}' is not a weight: write it as %50% or %-25%")
                    return None
                weight, piece = Decimal(match[1]), piece[match.end() :]
            hashes = _outside_math(piece, "#")
            text, feedback = (piece[: hashes[0]], piece[hashes[0] + 1 :]) if hashes else (piece, "")
            found.append(_Answer(marker, weight, text.strip(), feedback.strip()))
        return found

    def multichoice(self, answers: str, stem: str, explanation: str | None) -> Item | None:
        parts = self.split(answers, "=~")
        if parts is None:
            return None
        single = any(a.marker == "=" for a in parts)
        options, weights = [], []
        for i, answer in enumerate(parts):
            letter = option_letter(i)
            if letter is None:
                self.problem("too-many-options", f"{len(parts)} answers: cbt takes at most 26")
                return None
            weight = answer.weight if answer.weight is not None else Decimal(100 if answer.marker == "=" else 0)
            correct = weight >= 100 if single else weight > 0
            options.append(Option(letter, self.convert(answer.text, f"answer {letter}"), correct))
            weights.append((letter, weight))
        if not any(o.correct for o in options):
            self.problem(
                "no-key",
                "no answer is marked right: mark it with = (one right answer) or give the right answers"
                " weights such as ~%50%",
            )
            return None
        weights_note(self.note, single, weights)
        self.feedback_note(parts)
        return draft(
            self.defaults,
            str(self.number),
            ItemType.SINGLE if single else ItemType.MULTIPLE,
            stem,
            options=tuple(options),
            explanation=explanation,
            media=tuple(self.media.stored),
        )

    def feedback_note(self, parts: list[_Answer]) -> None:
        if any(a.feedback for a in parts):
            self.note("feedback-not-imported", "feedback on answers is not imported: cbt items have none")

    def accepted(self, parts: list[_Answer], what: str) -> _Answer | None:
        """The first full-credit answer; the other accepted or partly right ones are noted."""
        full = [a for a in parts if a.weight is None or a.weight >= 100]
        if not full:
            self.problem("no-key", f"no {what} is worth 100%: write the right answer as =answer")
            return None
        key = full[0]
        dropped = [_restore(a.text) for a in full[1:]]
        dropped += [f"{_restore(a.text)} ({a.weight.normalize():f}%)" for a in parts if a.weight and 0 < a.weight < 100]
        if dropped:
            self.note(
                "answer-not-imported",
                f"cbt keeps one answer, '{_restore(key.text)}'; not imported: {', '.join(dropped)}"
                " (students answering these would score 0)",
            )
        self.feedback_note(parts)
        return key

    def shortanswer(self, answers: str, stem: str, explanation: str | None) -> Item | None:
        parts = self.split(answers, "=")
        if parts is None:
            return None
        key = self.accepted(parts, "answer")
        if key is None:
            return None
        canonical = " ".join(_restore(key.text).split())
        if "*" in canonical:
            self.problem(
                "short-key-wildcard",
                f"the answer '{canonical}' uses Moodle's wildcard *, which cbt's short answers do not have:"
                " write the exact answer",
            )
            return None
        return draft(
            self.defaults,
            str(self.number),
            ItemType.SHORT,
            stem,
            answer=ShortKey(canonical, ShortFormat.TEXT),
            explanation=explanation,
            media=tuple(self.media.stored),
        )

    def numerical(self, answers: str, stem: str, explanation: str | None) -> Item | None:
        wrong = _outside_math(answers, "~")
        if wrong:  # Moodle's feedback for any other number
            answers = answers[: wrong[0]]
        parts = self.split(answers, "=")
        if parts is None:
            return None
        key = self.accepted(parts, "number")
        if key is None:
            return None
        written = _restore(key.text)
        if ".." in written:
            low, high = (number_text(v) for v in written.split("..", 1))
            if low is None or high is None:
                self.problem("gift-syntax", f"'{written}' is not a range of numbers: write it as {{#1..2}}")
                return None
            middle = (Decimal(low) + Decimal(high)) / 2
            canonical, tolerance = number_text(str(middle)), abs(Decimal(high) - middle)
        else:
            value, _, margin = written.partition(":")
            canonical, tolerance_text = number_text(value), number_text(margin or "0")
            if canonical is None or tolerance_text is None:
                self.problem("gift-syntax", f"'{written}' is not a number with its margin: write it as {{#1.5:0.1}}")
                return None
            tolerance = Decimal(tolerance_text)
        assert canonical is not None
        return draft(
            self.defaults,
            str(self.number),
            ItemType.SHORT,
            stem,
            answer=ShortKey(canonical, ShortFormat.NUMBER, tolerance if tolerance else None),
            explanation=explanation,
            media=tuple(self.media.stored),
        )
