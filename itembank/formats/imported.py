"""What the importers of other tools' files share (Word, LaTeX ex_test,
Moodle XML, GIFT, Aiken, QTI).

Such a file says what a question asks and which answer is right, but rarely
what cbt also needs: the subject, grade, topic and level of each question.
The teacher gives those once for the file (`ImportDefaults`); every question
becomes a **draft** item carrying them, to be classified and reviewed in the
workspace like any other. A question's id is made from the file's prefix
and the question number as the teacher wrote it (``word-ly12-C7``), so a
problem and an item both point back to the question in the file.

Every importer returns an `ImportResult`, the native format's `ParseResult`
with the file's pictures and notes: the items, each a `SourceItem` whose
``line`` is the place in the file (a line, or for Word a paragraph number),
and every problem as ``file:place: message``, never a guess. A question
with a problem gives no item. Which importer reads a file is
`itembank.formats.foreign`'s to say.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath

from itembank.errors import Problem
from itembank.formats.yaml_format import ParseResult, SourceItem
from itembank.model import Item, ItemType, Option, ShortKey, Statement, Status

_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")
# An id prefix leaves room in an id's 64 characters for "-C" and the question's number.
ID_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_NOT_PREFIX = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ImportResult(ParseResult):
    """A `ParseResult` with what a foreign file brings besides items.

    `media` maps each picture's path as the items name it
    (``media/imp-C3-graph.png``) to its bytes: the caller stores them with
    the items (a release's ``media/`` folder). Only pictures of imported
    items are in it. `notes` are ``file:place: message`` lines about what
    an imported item leaves behind (feedback, weights, a second accepted
    answer ...) or what was skipped on purpose (a category, a description):
    the item is imported all the same, and the notes belong in the preview
    beside it.
    """

    media: dict[str, bytes] = field(default_factory=dict)
    notes: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class ImportDefaults:
    """What the file does not say, given once for all its questions."""

    subject: str
    topic: str = "chua-phan-loai"
    level: int = 1
    points: Decimal = Decimal("0.25")
    lang: str = "vi"
    grade: int | None = None
    # The start of every item id from this file: "word-ly12" makes "word-ly12-C7".
    id_prefix: str = "imp"


def _ascii(text: str) -> str:
    """Vietnamese letters folded to ASCII: "Đề" -> "De"."""
    folded = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in folded if not unicodedata.combining(c))


def prefix_from_name(filename: str) -> str:
    """An id prefix from a file's name, for when none is given: "Đề kiểm tra 1.gift" -> "De-kiem-tra-1"."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    prefix = _NOT_PREFIX.sub("-", _ascii(stem)).strip("-._")[:40].strip("-._")
    return prefix if ID_PREFIX.fullmatch(prefix) else "imp"


def item_id(defaults: ImportDefaults, number: str) -> str:
    """The id of question `number` ("7", "II.3", "Câu 12") of the file.

    Vietnamese letters are folded to ASCII (ids are ASCII), anything else
    becomes "-": ``item_id(d, "II.3")`` is ``imp-CII-3``.
    """
    tail = _NOT_ID.sub("-", _ascii(number)).strip("-") or "x"
    return f"{defaults.id_prefix}-C{tail}"


def draft(
    defaults: ImportDefaults,
    number: str,
    type: ItemType,
    stem: str,
    *,
    options: tuple[Option, ...] = (),
    statements: tuple[Statement, ...] = (),
    answer: ShortKey | None = None,
    points: Decimal | None = None,
    explanation: str | None = None,
    media: tuple[str, ...] = (),
    shuffle: bool = True,
) -> Item:
    """A draft item of the file's defaults, version 1."""
    return Item(
        id=item_id(defaults, number),
        version=1,
        type=type,
        subject=defaults.subject,
        topic=defaults.topic,
        level=defaults.level,
        points=points if points is not None else defaults.points,
        lang=defaults.lang,
        status=Status.DRAFT,
        stem=stem,
        grade=defaults.grade,
        options=options,
        statements=statements,
        answer=answer,
        shuffle=shuffle,
        explanation=explanation,
        media=media,
    )


def problem(file: str, place: int | None, code: str, message: str) -> Problem:
    """A problem at `place` (a line, or a Word paragraph number) of `file`."""
    return Problem(file, place, code, message)


def result(items: list[tuple[Item, str, int]], problems: list[Problem]) -> ParseResult:
    """The ParseResult of an import: items as (item, file, place)."""
    return ParseResult(items=[SourceItem(item, file, place) for item, file, place in items], problems=problems)
