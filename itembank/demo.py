"""A demo bank with real content: grade 11-12 math and physics in Vietnamese,
and some English, in the formats of the national graduation exam.

The bank itself is plain files, as a teacher or a department writes them:
``itembank/demo_bank/`` holds its ``bank.yaml``, one file per math and
physics item and one for the English items (to show the list form), and
the graph one item shows. Math covers four topics at all four levels (for
blueprint demos), every item type appears, and every key has been worked out
by hand (the working is in each item's explanation). ``cbt demo`` signs it
with a fresh key.

``itembank/demo_bank_2025/`` is a second, smaller bank in the 2025 scheme
(``levels: 2025``: Biết, Hiểu, Vận dụng): math items on two topics at the
three levels, written by level id and by number, an option that stays in
place ("Tất cả các ý trên"), and two item sets, an English reading passage
with five questions and a physics data table with a truefalse4 and two
short questions. `demo_2025` reads it (on first use) and
`write_demo_bank_2025` copies it, as `write_demo_bank` does the first.

The functions below build items the same way in code, for tests that need a
release of their own.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from itembank.formats.yaml_format import parse_bank_bytes, parse_file
from itembank.levels import LEGACY
from itembank.model import (
    BankInfo,
    Item,
    ItemSet,
    ItemType,
    Option,
    ShortKey,
    Statement,
    Status,
)

FOLDER = Path(__file__).resolve().parent / "demo_bank"
FOLDER_2025 = Path(__file__).resolve().parent / "demo_bank_2025"
GRAPH = "media/do-thi-bac-ba.svg"
LETTERS = "ABCDEFGH"


def _item(item_id: str, kind: ItemType, topic: str, level: int, points: str, stem: str, **more) -> Item:
    subject, grade, lang = _SUBJECTS[item_id.split("-")[0]]
    return Item(
        id=item_id,
        version=1,
        type=kind,
        subject=subject,
        grade=grade,
        topic=topic,
        level=level,
        points=Decimal(points),
        lang=lang,
        status=Status.APPROVED,
        stem=stem,
        **more,
    )


def single(item_id: str, topic: str, level: int, stem: str, options: list[str], **more) -> Item:
    """Part I. The correct option is written first, which is easy to check;
    the options are then rotated so that keys spread over A-D."""
    turn = sum(map(ord, item_id)) % len(options)
    rotated = options[-turn:] + options[:-turn] if turn else options
    correct = rotated.index(options[0])
    opts = tuple(Option(LETTERS[i], text, i == correct) for i, text in enumerate(rotated))
    return _item(item_id, ItemType.SINGLE, topic, level, "0.25", stem, options=opts, **more)


def multiple(item_id: str, topic: str, level: int, stem: str, options: list[str], keys: str, **more) -> Item:
    opts = tuple(Option(LETTERS[i], text, LETTERS[i] in keys) for i, text in enumerate(options))
    return _item(item_id, ItemType.MULTIPLE, topic, level, "0.5", stem, options=opts, **more)


def truefalse4(item_id: str, topic: str, level: int, stem: str, statements: list[tuple[str, bool]], **more) -> Item:
    """Part II: four statements a-d, each with whether it is true."""
    rows = tuple(Statement("abcd"[i], text, answer) for i, (text, answer) in enumerate(statements))
    return _item(item_id, ItemType.TRUEFALSE4, topic, level, "1", stem, statements=rows, **more)


def short(item_id: str, topic: str, level: int, stem: str, key: str, points: str = "0.5", **more) -> Item:
    """Part III: `key` as written on the answer sheet, e.g. "-1,5"."""
    return _item(item_id, ItemType.SHORT, topic, level, points, stem, answer=ShortKey(key), **more)


def essay(item_id: str, topic: str, level: int, stem: str, explanation: str, points: str = "1") -> Item:
    return _item(item_id, ItemType.ESSAY, topic, level, points, stem, explanation=explanation)


_SUBJECTS = {
    "HS": ("toan", 12, "vi"),
    "ML": ("toan", 11, "vi"),
    "TP": ("toan", 12, "vi"),
    "OX": ("toan", 12, "vi"),
    "VL": ("vat-li", 12, "vi"),
    "EN": ("tieng-anh", 12, "en"),
}


def graph_svg() -> str:
    """The graph of y = x^3 - 3x on [-2.2, 2.2] that item HS-13 shows."""
    return (FOLDER / GRAPH).read_text(encoding="utf-8")


@dataclass(frozen=True)
class DemoBank:
    """A demo bank as read from its files."""

    info: BankInfo
    items: tuple[Item, ...]  # every item, the sets' children among them
    sets: tuple[ItemSet, ...]


def _load(folder: Path) -> DemoBank:
    info, problems = parse_bank_bytes((folder / "bank.yaml").read_bytes(), "bank.yaml")
    levels = info.levels if info is not None else LEGACY
    items: list[Item] = []
    sets: list[ItemSet] = []
    for path in sorted((folder / "items").glob("*.yaml")):
        parsed = parse_file(path, levels=levels)
        problems += parsed.problems
        items += [s.item for s in parsed.items]
        sets += [s.set for s in parsed.sets]
    if problems or info is None:  # the package's own files: a broken install
        raise RuntimeError(f"the demo bank {folder.name} does not read: {problems}")
    return DemoBank(info, tuple(items), tuple(sets))


_LEGACY_BANK = _load(FOLDER)
BANK, ITEMS = _LEGACY_BANK.info, _LEGACY_BANK.items


@functools.cache
def demo_2025() -> DemoBank:
    """The 2025 demo bank (levels Biết, Hiểu, Vận dụng; item sets), read once."""
    return _load(FOLDER_2025)


def write_demo_bank(folder: Path) -> int:
    """Write the demo release (unsigned) into `folder`; returns the item count."""
    shutil.copytree(FOLDER, folder, dirs_exist_ok=True)
    return len(ITEMS)


def write_demo_bank_2025(folder: Path) -> int:
    """Write the 2025 demo release (unsigned) into `folder`; returns the item count, sets' children included."""
    shutil.copytree(FOLDER_2025, folder, dirs_exist_ok=True)
    return len(demo_2025().items)
