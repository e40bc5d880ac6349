"""Cognitive level schemes: which levels a bank's items are written at.

A release's ``bank.yaml`` says which scheme its items use with ``levels:``:

- absent: the legacy scheme, four levels (Nhận biết, Thông hiểu, Vận dụng,
  Vận dụng cao), which every bank used before 2025;
- ``levels: 2025``: the three levels of Công văn 7991/BGDĐT-GDTrH (Biết,
  Hiểu, Vận dụng), for tests of grades 6-12 from 2025;
- a list, for any other scheme: each entry a level id (``[biet, hieu,
  van-dung]``) or a one-entry mapping of id to name (``- de: Dễ``). A bare
  id that a built-in scheme knows takes its name there (``hieu`` is
  "Hiểu"), any other is its own name; a list that comes out equal to a
  built-in scheme is that scheme.

An item's level stays a whole number, its 1-based position in the scheme
(the server stores and counts levels as numbers); in the item's YAML it may
be written as the number or as the scheme's level id (``level: hieu``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class LevelScheme:
    """The levels of a bank, in order: level n is ``ids[n - 1]``, shown as ``names[n - 1]``."""

    ids: tuple[str, ...]  # as items may write them: "nhan-biet", "biet" ...
    names: tuple[str, ...]  # as people read them: "Nhận biết", "Biết" ...
    # English words for the built-in levels, for messages; not part of the scheme's identity.
    glosses: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.ids) or len(set(self.ids)) != len(self.ids) or not self.ids:
            raise ValueError(f"a level scheme needs distinct ids and one name per id: {self.ids}, {self.names}")

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def numbers(self) -> range:
        """The valid levels: 1 .. count."""
        return range(1, len(self.ids) + 1)

    def number(self, level: int | str) -> int:
        """The level's number from its number or its id (``2``, ``"2"`` or ``"hieu"``).

        Raises LevelError (code ``level-range``) when the scheme has no such level.
        """
        if isinstance(level, str) and _NUMBER.fullmatch(level.strip()):
            level = int(level)
        if isinstance(level, int) and not isinstance(level, bool) and level in self.numbers:
            return level
        if isinstance(level, str) and level.strip() in self.ids:
            return self.ids.index(level.strip()) + 1
        raise LevelError(self.range_message(level))

    def range_message(self, level: int | str) -> str:
        """Why `level` is not one of this scheme's, naming the scheme's levels."""
        if isinstance(level, int):
            which = "" if self == LEGACY else f" ({self.source})"
            return f"level {level} is outside 1-{self.count}{which}: use {self.listing()}"
        return f"level '{level}' is not a level of this bank ({self.source}): use {self.listing(ids=True)}"

    @property
    def source(self) -> str:
        """Where the scheme comes from, for messages: "bank.yaml says levels: 2025"."""
        if self == LEGACY:
            return "bank.yaml has no levels:, so the legacy four"
        if self == SCHEME_2025:
            return "bank.yaml says levels: 2025"
        return f"bank.yaml says levels: [{', '.join(self.ids)}]"

    def name(self, number: int) -> str:
        """What level `number` is called: "Hiểu"."""
        return self.names[self._index(number)]

    def id_of(self, number: int) -> str:
        """The id items may write for level `number`: "hieu"."""
        return self.ids[self._index(number)]

    def describe(self, number: int) -> str:
        """Level `number` for a message: "2 (Thông hiểu / comprehension)"."""
        index = self._index(number)
        gloss = f" / {self.glosses[index]}" if index < len(self.glosses) else ""
        return f"{number} ({self.names[index]}{gloss})"

    def listing(self, *, ids: bool = False) -> str:
        """Every level for a message; with `ids`, the id an item may write after each number."""
        if not ids:
            return ", ".join(self.describe(n) for n in self.numbers)
        return ", ".join(f"{n} or {self.id_of(n)} ({self.name(n)})" for n in self.numbers)

    @property
    def spec(self) -> str | list[str | dict[str, str]] | None:
        """What bank.yaml's ``levels:`` says for this scheme: None (absent) for the legacy one."""
        if self == LEGACY:
            return None
        if self == SCHEME_2025:
            return "2025"
        return [i if n == _known_name(i) else {i: n} for i, n in zip(self.ids, self.names, strict=True)]

    def _index(self, number: int) -> int:
        if number not in self.numbers:
            raise LevelError(self.range_message(number))
        return number - 1


class LevelError(ValueError):
    """A level that the bank's scheme does not have; `code` is the item problem's."""

    code = "level-range"


LEGACY = LevelScheme(
    ids=("nhan-biet", "thong-hieu", "van-dung", "van-dung-cao"),
    names=("Nhận biết", "Thông hiểu", "Vận dụng", "Vận dụng cao"),
    glosses=("recall", "comprehension", "application", "high application"),
)
SCHEME_2025 = LevelScheme(
    ids=("biet", "hieu", "van-dung"),
    names=("Biết", "Hiểu", "Vận dụng"),
    glosses=("recall", "comprehension", "application"),
)
MAX_LEVELS = 10  # more levels than anyone distinguishes: a list that long is a mistake


def _known_name(level_id: str) -> str:
    for scheme in (LEGACY, SCHEME_2025):
        if level_id in scheme.ids:
            return scheme.names[scheme.ids.index(level_id)]
    return level_id


def scheme_of(entries: list[tuple[str, str | None]]) -> LevelScheme:
    """The scheme of a ``levels:`` list, given as (id, name or None); a built-in one if it equals one.

    The caller has checked the ids (distinct, not numbers) and names.
    """
    scheme = LevelScheme(
        ids=tuple(i for i, _ in entries),
        names=tuple(n if n is not None else _known_name(i) for i, n in entries),
    )
    for built_in in (LEGACY, SCHEME_2025):
        if scheme == built_in:
            return built_in  # with its glosses
    return scheme
