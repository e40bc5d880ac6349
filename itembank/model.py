"""What an item is: plain, frozen data with no behaviour beyond a few helpers.

The model does not enforce exam rules (one key for `single`, four statements
for `truefalse4` ...): a teacher's broken item must still be representable
so that `validate.py` can report every problem at once instead of failing
on the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from itembank.levels import LEGACY, LevelScheme


class ItemType(StrEnum):
    SINGLE = "single"  # one key among options (Vietnamese Part I)
    MULTIPLE = "multiple"  # one or more keys among options
    TRUEFALSE4 = "truefalse4"  # statements a-d, each true or false (Part II)
    SHORT = "short"  # short numeric or text answer (Part III)
    ESSAY = "essay"  # scored by a person


class Status(StrEnum):
    DRAFT = "draft"
    REVIEWED = "reviewed"
    APPROVED = "approved"
    RETIRED = "retired"


class ShortFormat(StrEnum):
    """How a short answer is normalised before it is compared with the key.

    - ``vn-numeric`` (default; Vietnamese Part III): spaces are removed and
      ``.`` becomes ``,``; the answer must then be at most 4 characters from
      digits, one leading minus and one decimal comma (``75``, ``-1,5``,
      ``0,25``; ``-0,25`` is too long). Equal strings score, so ``075`` is
      not ``75`` and ``1,50`` is not ``1,5``, as on the national answer sheet.
    - ``number``: any decimal number, ``.`` or ``,`` as the decimal mark,
      spaces ignored; compared as numbers, so ``075``, ``75,0`` and ``75``
      are equal.
    - ``text``: compared after Unicode NFC, case folding and collapsing runs
      of spaces; for one-word answers in language exams.

    Both numeric formats accept an optional tolerance: the answer scores if
    its value is within the tolerance of the key.
    """

    VN_NUMERIC = "vn-numeric"
    NUMBER = "number"
    TEXT = "text"


@dataclass(frozen=True)
class Option:
    id: str  # "A", "B" ... as written; the server sends per-form aliases instead
    text: str  # Markdown with $math$
    correct: bool
    # Stays at its place when the options are shuffled: "Tất cả các ý trên" last.
    fixed: bool = False


@dataclass(frozen=True)
class Statement:
    id: str  # "a" .. "d"
    text: str
    answer: bool  # True if the statement is true


@dataclass(frozen=True)
class ShortKey:
    canonical: str  # the key as written by the author, e.g. "-1,5"
    format: ShortFormat = ShortFormat.VN_NUMERIC
    tolerance: Decimal | None = None  # numeric formats only


@dataclass(frozen=True)
class Item:
    id: str
    version: int
    type: ItemType
    subject: str
    topic: str
    level: int  # 1-based position in the bank's level scheme (itembank.levels)
    points: Decimal
    lang: str  # "vi", "en" ...
    status: Status
    stem: str
    grade: int | None = None
    tags: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()  # single, multiple
    statements: tuple[Statement, ...] = ()  # truefalse4
    answer: ShortKey | None = None  # short
    shuffle: bool = True  # may the options (or statements) be shuffled?
    explanation: str | None = None  # never shown during an exam
    media: tuple[str, ...] = ()  # paths like "media/graph.png"
    # The ItemSet this item is a child of; its subject, grade, lang, status
    # and version are the set's.
    set_id: str | None = None

    @property
    def key(self) -> str:
        """The identity of this item version, e.g. ``M12-001@2``."""
        return f"{self.id}@{self.version}"

    @property
    def correct_option_ids(self) -> tuple[str, ...]:
        return tuple(option.id for option in self.options if option.correct)


@dataclass(frozen=True)
class ItemSet:
    """Items sharing one stimulus (a reading passage, a data table), kept together.

    The set is versioned and reviewed as one unit: its children are `Item`s
    with ``set_id`` = this id and the set's subject, grade, lang, status and
    version. `children` lists their ids in the order they are presented,
    unless `shuffle` lets a form put them in another order among themselves.
    """

    id: str
    version: int
    subject: str
    topic: str
    lang: str
    status: Status
    stimulus: str  # Markdown with $math$ and media, as a stem
    children: tuple[str, ...]  # child item ids, in order
    grade: int | None = None
    # The level children take when they give none; None when each gives its own.
    level: int | None = None
    shuffle: bool = False  # may a form shuffle the children among themselves?
    media: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The identity of this set version, e.g. ``EN-READ-01@1``."""
        return f"{self.id}@{self.version}"


@dataclass(frozen=True)
class BankInfo:
    """The contents of a release's ``bank.yaml``."""

    name: str  # e.g. "thpt-toan-2025"; the release's identity with `version`
    version: str  # e.g. "2025.1"; a string, so "1.10" is not 1.1
    format: str = "cbt-bank/1"
    title: str | None = None
    subject: str | None = None
    description: str | None = None
    publisher: str | None = None
    # What each topic code of the items is called, for people: {"ham-so": "Hàm số"}.
    # A topic the release does not name is shown by its code.
    topics: Mapping[str, str] | None = None
    # The cognitive levels the items are written at; absent from bank.yaml: the legacy four.
    levels: LevelScheme = LEGACY
