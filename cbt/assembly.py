"""Drawing exam forms from a blueprint (the "ma trận đề").

An exam's blueprint has sections; each section has rows ("cells") asking for
``count`` items of one topic and level (and optionally one item type), or
``count`` item *sets* of one topic (a set row, ``type: set``). A set is one
stimulus (a reading passage, a data table) shared by several child items,
drawn whole and kept together in set order. A *form* is what one candidate
sits: for every cell, ``count`` items (or sets) drawn from the pool without
replacement, items and sets shuffled within each section, options shuffled
within each item, and every option given a per-form *alias*, the only option
id the browser ever sees. A row may be unscored (trial items): its items are
delivered like the others and marked ``scored=False`` on the form.

Everything here is pure and deterministic: the same blueprint, pool and seed
give the identical form on any machine and any Python version, so the exam
board can re-derive any candidate's form years later (`form_digest` proves it
is the one served).

Where the randomness comes from
-------------------------------
Neither `random.Random` nor numpy's `Generator` promises the same shuffles
across versions (Python guarantees only ``random()`` itself; numpy's
``Generator`` streams may change between releases). So a form's random
numbers are read from SHAKE-256 (FIPS 202), an extendable-output hash, as
a stream of big-endian 64-bit words::

    words = SHAKE-256(b"cbt-form/1\\x00" + seed)

and a number below ``n`` is the next word modulo ``n`` (the bias is below
2**-50 for any pool a school has, far below anything measurable).

The algorithm, ``cbt-form/1`` (`FORM_FORMAT`), reads the words in this order:

1. Draws. Item rows naming a type, in blueprint order, then item rows of any
   type, in blueprint order. Rows of the same (topic, level, type) share one
   Fisher-Yates pass over that cell's items in pool order (topic, level,
   item_id, version): pick i reads one word w and takes position
   ``i + w mod (n - i)``. A row of any type passes over an item a typed row
   already took, reading one more word. Children of sets are never in these
   cells.
2. Set draws, after every item row: set rows naming a number of children, in
   blueprint order, then set rows of any size, in blueprint order, exactly
   as item rows are drawn, over the topic's sets in pool order (set_key):
   rows of the same (topic, children) share one pass, and a row of any size
   passes over a set a sized row already took, reading one more word.
3. Sections, in order, each in three steps:

   a. the section's *units* shuffled by Fisher-Yates, last position first,
      one word per position (unless ``shuffle_items`` is off). A standalone
      item is a unit; a set is one unit, its children kept together;
   b. the children of each set that allows it (``set_shuffle``), in
      presented order, shuffled by Fisher-Yates as in (a) (only when
      ``shuffle_items`` is on);
   c. the section's items, in presented order: an item with n options reads
      n + 1 words, one picking one of the n! orders (`itertools.permutations`
      order) and one per alias (a rare repeated or clashing alias reads one
      more); then one word for the statements' order if they are shuffled.
      An item with *fixed* options reads the same n + 1 words, the first
      picking one of the m! orders of its m movable options; fixed options
      keep their index.

Sets, set rows and fixed options extend cbt-form/1 compatibly: a blueprint
and pool without them read exactly the words they always did (step 2 reads
nothing; a section without sets has units = items; an item without fixed
options is unchanged) and a form without sets or unscored rows has the same
JSON, so forms served before re-derive bit for bit (the pinned digest test
proves it). If the algorithm ever changes otherwise it gets a new name;
forms already served keep their stored JSON, and a test pins a digest so no
change goes unnoticed.

Seeds
-----
- per-candidate forms: ``candidate_seed(secret, code)`` = HMAC-SHA256(secret,
  code), unpredictable to students and reproducible by the board;
- fixed forms ("mã đề"): ``fixed_form_seed(secret, number)``, and
  ``form_number_for(secret, code, k)`` tells which of the K forms a
  candidate sits.

Speed: `index_pool` sorts and groups the pool once per exam and caches the
per-blueprint draw plan, so drawing a form costs work proportional to the
items in the form, not the size of the bank. Pass the index instead of the
raw pool when drawing many forms.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import operator
import re
import struct
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

FORM_FORMAT = "cbt-form/1"
"""Name of the drawing algorithm and of the JSON layout of a form."""

MIN_SECRET_BYTES = 16
"""An exam secret shorter than this would let students guess the forms."""

SET_ROW = "set"
"""``BlueprintRow.type`` of a row that draws whole item sets."""

# Aliases are six letters from 16 lowercase consonants: 16**6 = 16.7 million
# possibilities, 24 random bits. No vowels, so an alias never spells a word
# (nor a rude one); no b, c or d, so the usual option ids A-D never appear
# inside an alias, even ignoring case; no l, which looks like 1.
_ALIAS_ALPHABET = "fghjkmnpqrstvwxz"
_ALIAS_CHUNKS = tuple("".join(letters) for letters in itertools.product(_ALIAS_ALPHABET, repeat=3))
# Every order of n = 2..6 things, as functions picking them in that order
# (873 in all): shuffling 4 options is then one word and one look-up.
_ORDERS: tuple[tuple[Callable[[Sequence], tuple], ...], ...] = tuple(
    tuple(operator.itemgetter(*order) for order in itertools.permutations(range(n))) if n >= 2 else () for n in range(7)
)
_XOF_DOMAIN = FORM_FORMAT.encode() + b"\x00"
_FIXED_FORM_DOMAIN = b"cbt/fixed-form/"
_FORM_NUMBER_DOMAIN = b"cbt/form-number/"


# --------------------------------------------------------------------------
# Inputs: the pool and the blueprint


@dataclass(frozen=True)
class PoolItem:
    """One approved item version the exam may draw.

    ``option_ids`` (single, multiple) and ``statement_ids`` (truefalse4) are
    the ids as written in the bank; ``shuffle`` is the item's own permission
    to shuffle them, and ``fixed_options`` the option ids that keep their
    place when the others move ("Tất cả các ý trên" stays last). ``pk`` is
    the database key of this item version.

    A child of an item set has ``set_key``, the identity of the set version
    it belongs to ("EN-R1@1"), shared by all the set's children; it is drawn
    only with its set, by a set row, never by an item row. ``set_topic`` is
    the set's topic, the one set rows ask for (None: the child's own
    ``topic``); ``set_position`` the child's place in the set (children are
    presented in this order); ``set_shuffle`` the set's permission to shuffle
    its children among themselves. Every child of one set must agree on the
    set's topic and ``set_shuffle``. The child's own ``topic``, ``level`` and
    ``points`` are still its own: a matrix counts children by their level.
    """

    pk: int
    item_id: str
    version: int
    topic: str
    level: int
    type: str
    points: Decimal
    option_ids: tuple[str, ...] = ()
    statement_ids: tuple[str, ...] = ()
    shuffle: bool = True
    fixed_options: tuple[str, ...] = ()
    set_key: str | None = None
    set_topic: str | None = None
    set_position: int = 0
    set_shuffle: bool = False


@dataclass(frozen=True)
class PoolSet:
    """One item set of the pool, as a set row draws it: its children in set order.

    Made by `index_pool` from the children's `PoolItem` fields.
    """

    key: str
    topic: str
    shuffle: bool
    children: tuple[PoolItem, ...]

    @property
    def pk(self) -> str:
        # The samplers pass over units already taken by ``pk``; a set's is its key.
        return self.key


@dataclass(frozen=True)
class BlueprintRow:
    """A cell of the blueprint: ``count`` items of this topic and level.

    With ``type`` set, only items of that type qualify; with ``points`` set,
    each drawn item is worth that much instead of the item's own points.

    A *set row* (``type`` = `SET_ROW`) draws ``count`` whole sets whose set
    topic is ``topic`` (with ``children`` set, only sets of exactly that many
    children); it has no ``level`` (None), as each child keeps its own, and
    ``points`` applies to each child. With ``scored`` False (trial items) the
    row's items are delivered like any others, and marked unscored on the form.
    """

    topic: str
    level: int | None
    count: int
    points: Decimal | None = None
    type: str | None = None
    children: int | None = None
    scored: bool = True

    def __post_init__(self) -> None:
        name = f"set row {self.topic}" if self.type == SET_ROW else f"row {self.topic} level {self.level}"
        if self.count < 0:
            raise ValueError(f"blueprint {name}: count {self.count} is negative")
        if self.points is not None and self.points < 0:
            raise ValueError(f"blueprint {name}: points {self.points} are negative")
        if self.type == SET_ROW:
            if self.level is not None:
                raise ValueError(f"blueprint {name}: a set row has no level (each child keeps its own): leave it None")
            if self.children is not None and self.children < 1:
                raise ValueError(f"blueprint {name}: children {self.children} must be at least 1")
        else:
            if self.level is None:
                raise ValueError(f"blueprint {name}: give the level (only a set row has none)")
            if self.children is not None:
                raise ValueError(f"blueprint {name}: children is only for a set row (type {SET_ROW!r})")

    @property
    def is_set(self) -> bool:
        """Whether the row draws whole sets."""
        return self.type == SET_ROW

    @property
    def questions(self) -> int:
        """The questions the row puts on a form: its count, or for a set row its
        sets times their children (a set row of any size counts each set once,
        the least it can be)."""
        return self.count * (self.children or 1) if self.is_set else self.count


@dataclass(frozen=True)
class BlueprintSection:
    title: str
    rows: tuple[BlueprintRow, ...]
    time_limit_minutes: int | None = None


@dataclass(frozen=True)
class Blueprint:
    sections: tuple[BlueprintSection, ...]


@dataclass(frozen=True)
class Shortfall:
    """A cell that asks for more items (or sets) than the pool can give it.

    ``section`` is the 0-based index into ``Blueprint.sections``; ``type`` is
    None for a row that accepts any type. ``available`` is what is left for
    this row after the rows that compete for the same items (see
    `shortfalls`). A set row's shortfall has ``type`` `SET_ROW`, no level,
    ``children`` as the row asks, and counts sets, not items.
    """

    section: int
    topic: str
    level: int | None
    type: str | None
    wanted: int
    available: int
    children: int | None = None

    def describe(self) -> str:
        """One line for an error message, e.g. for ``cbt exam create``."""
        if self.type == SET_ROW:
            noun = "set" if self.wanted == 1 else "sets"
            size = ""
            if self.children is not None:
                size = f" ({self.children} {'child' if self.children == 1 else 'children'})"
            return (
                f"section {self.section + 1}: wants {self.wanted} {noun} of topic {self.topic}{size},"
                f" only {self.available} available"
            )
        kind = f"{self.type} " if self.type else ""
        noun = "item" if self.wanted == 1 else "items"
        return (
            f"section {self.section + 1}: topic {self.topic}, level {self.level}: wants {self.wanted}"
            f" {kind}{noun}, only {self.available} available"
        )


class InfeasibleBlueprint(ValueError):
    """The pool cannot fill the blueprint; ``shortfalls`` lists every short cell."""

    def __init__(self, shortfalls: Sequence[Shortfall]):
        self.shortfalls = tuple(shortfalls)
        lines = "; ".join(s.describe() for s in self.shortfalls)
        super().__init__(f"the blueprint asks for more items than the pool has: {lines}")


# --------------------------------------------------------------------------
# Outputs: forms


@dataclass(frozen=True)
class FormItem:
    """One question as one candidate sees it.

    ``ref`` is "q1", "q2", ... across the whole form in presented order.
    ``option_order[i]`` is the bank's option id shown in position i, and
    ``option_aliases[i]`` the id the browser gets for it. ``statement_order``
    is the truefalse4 statements' ids in presented order (a-d by default).
    ``scored`` is False for a trial item (an unscored row): delivered like
    the others, never counted in the score. ``set_key`` names the set of a
    set's child (`PoolItem.set_key`); a set's children are consecutive on
    the form, so the page groups them under their stimulus by it.
    """

    ref: str
    pk: int
    points: Decimal
    option_order: tuple[str, ...] = ()
    option_aliases: tuple[str, ...] = ()
    statement_order: tuple[str, ...] = ()
    scored: bool = True
    set_key: str | None = None

    def alias_to_option(self) -> dict[str, str]:
        """Alias sent to the browser -> the bank's option id (to map answers back)."""
        return dict(zip(self.option_aliases, self.option_order, strict=True))


@dataclass(frozen=True)
class FormSection:
    title: str
    time_limit_minutes: int | None
    items: tuple[FormItem, ...]


@dataclass(frozen=True)
class Form:
    sections: tuple[FormSection, ...]
    seed_hex: str
    form_number: int | None = None

    @property
    def items(self) -> tuple[FormItem, ...]:
        """Every item of the form in presented order."""
        return tuple(item for section in self.sections for item in section.items)


# --------------------------------------------------------------------------
# The pool, indexed once


@dataclass(frozen=True)
class _Step:
    """Draw ``count`` units (items, or sets for a set row) for row ``row`` of section ``section``."""

    section: int
    row: int
    count: int
    source: tuple[PoolItem, ...] | tuple[PoolSet, ...]  # what this row may take, in pool order
    # Rows with the same key share one sampler: (topic, level, type) for item
    # rows, (SET_ROW, topic, children) for set rows; an item key's second
    # element is a level (an int), never a topic, so the two never meet.
    key: tuple
    may_collide: bool  # an any-type (any-size) row: it must pass over what a typed (sized) row took
    record_taken: bool  # a typed (sized) row whose topic (and level) also has any-type (any-size) rows
    sets: bool = False  # a set row


@dataclass(frozen=True)
class _Plan:
    """How to draw one blueprint from one pool; computed once, used per form."""

    steps: tuple[_Step, ...]
    shortfalls: tuple[Shortfall, ...]
    words: int  # random words a form needs, apart from rare alias redraws


class PoolIndex:
    """The pool sorted by (topic, level, item_id, version) and grouped by cell.

    Children of sets are kept out of the cells and grouped as sets, by set
    topic, in set_key order. Build it once per exam with `index_pool`, then
    draw any number of forms. It caches one draw plan per blueprint.
    """

    def __init__(
        self,
        items: tuple[PoolItem, ...],
        by_group: dict[tuple[str, int], tuple[PoolItem, ...]],
        by_cell: dict[tuple[str, int, str], tuple[PoolItem, ...]],
        alias_clashes: dict[int, tuple[str, ...]],
        sets_by_topic: dict[str, tuple[PoolSet, ...]] | None = None,
    ):
        self.items = items
        self._by_group = by_group
        self._by_cell = by_cell
        # Option ids that could appear inside an alias, per item pk (usually none).
        self.alias_clashes = alias_clashes
        self._sets = sets_by_topic or {}
        self._sets_by_size: dict[tuple[str, int], tuple[PoolSet, ...]] = {}
        for topic, sets in self._sets.items():
            for size in {len(s.children) for s in sets}:
                self._sets_by_size[(topic, size)] = tuple(s for s in sets if len(s.children) == size)
        self._plans: dict[Blueprint, _Plan] = {}
        self._last_plan: tuple[Blueprint, _Plan] | None = None

    def cell(self, topic: str, level: int, type: str | None = None) -> tuple[PoolItem, ...]:
        """The pool's standalone items of this topic and level (and type), in pool order."""
        if type is None:
            return self._by_group.get((topic, level), ())
        return self._by_cell.get((topic, level, type), ())

    def sets(self, topic: str, children: int | None = None) -> tuple[PoolSet, ...]:
        """The pool's sets of this set topic (with exactly ``children`` children), in set_key order."""
        if children is None:
            return self._sets.get(topic, ())
        return self._sets_by_size.get((topic, children), ())

    def plan(self, blueprint: Blueprint) -> _Plan:
        """The draw plan for ``blueprint`` (made once, then cached)."""
        last = self._last_plan  # the same blueprint object, form after form: skip hashing it
        if last is not None and last[0] is blueprint:
            return last[1]
        try:
            plan = self._plans.get(blueprint)
            if plan is None:
                plan = self._plans[blueprint] = _make_plan(self, blueprint)
        except TypeError:  # a blueprint built with lists is not hashable: plan it each time
            plan = _make_plan(self, blueprint)
        self._last_plan = (blueprint, plan)
        return plan


def index_pool(pool: Sequence[PoolItem] | PoolIndex) -> PoolIndex:
    """Sort and group the pool once, so each form costs O(items in the form).

    Raises ValueError if two entries share a ``pk`` or an ``item_id`` (two
    versions of one item would let a form show the same question twice), if
    an item's fixed options are not among its options, or if the children of
    one set disagree on the set's topic or shuffling, or share a position.
    """
    if isinstance(pool, PoolIndex):
        return pool
    items = tuple(sorted(pool, key=lambda p: (p.topic, p.level, p.item_id, p.version, p.pk)))
    seen_pk: set[int] = set()
    seen_id: set[str] = set()
    by_group: dict[tuple[str, int], list[PoolItem]] = defaultdict(list)
    by_cell: dict[tuple[str, int, str], list[PoolItem]] = defaultdict(list)
    members: dict[str, list[PoolItem]] = defaultdict(list)
    clashes: dict[int, tuple[str, ...]] = {}
    for item in items:
        if item.pk in seen_pk:
            raise ValueError(f"the pool lists pk {item.pk} twice")
        if item.item_id in seen_id:
            raise ValueError(f"the pool holds item {item.item_id} twice: give the exam one version of each item")
        seen_pk.add(item.pk)
        seen_id.add(item.item_id)
        if item.set_key is not None:
            # A child without its stimulus makes no sense: only set rows draw it.
            members[item.set_key].append(item)
        else:
            by_group[(item.topic, item.level)].append(item)
            by_cell[(item.topic, item.level, str(item.type))].append(item)
        if item.fixed_options and not set(item.fixed_options) <= set(item.option_ids):
            stray = ", ".join(o for o in item.fixed_options if o not in item.option_ids)
            raise ValueError(f"item {item.item_id}: fixed option(s) {stray} are not among its options")
        clash = tuple(option.casefold() for option in item.option_ids if set(option.casefold()) <= set(_ALIAS_ALPHABET))
        if clash:
            clashes[item.pk] = clash
    sets_by_topic: dict[str, list[PoolSet]] = defaultdict(list)
    for key in sorted(members):
        pool_set = _pool_set(key, members[key])
        sets_by_topic[pool_set.topic].append(pool_set)
    return PoolIndex(
        items,
        {key: tuple(value) for key, value in by_group.items()},
        {key: tuple(value) for key, value in by_cell.items()},
        clashes,
        {topic: tuple(sets) for topic, sets in sets_by_topic.items()},
    )


def _pool_set(key: str, children: list[PoolItem]) -> PoolSet:
    """The set ``key`` from its children, checking they agree on what belongs to the set."""
    topics = {child.set_topic or child.topic for child in children}
    if len(topics) > 1:
        raise ValueError(f"set {key}: its children name different set topics ({', '.join(sorted(topics))})")
    if len({child.set_shuffle for child in children}) > 1:
        raise ValueError(f"set {key}: some children say the set shuffles, others that it does not")
    positions = [child.set_position for child in children]
    if len(set(positions)) < len(positions):
        raise ValueError(f"set {key}: two children share one set_position")
    ordered = tuple(sorted(children, key=lambda child: child.set_position))
    return PoolSet(key, topics.pop(), children[0].set_shuffle, ordered)


def _make_plan(index: PoolIndex, blueprint: Blueprint) -> _Plan:
    """Order the draws and find every short cell.

    Within one (topic, level), rows naming a type are drawn first, since only
    items of that type will do; rows accepting any type then take what is
    left. Rows with the same (topic, level, type) in several sections share
    one sampler, so they never get the same item twice. Set rows come after
    every item row, so a blueprint without them reads the words it always
    did, and compete among themselves the same way: rows naming a number of
    children first, then rows of any size.
    """
    typed: list[tuple[int, int, BlueprintRow]] = []
    untyped: list[tuple[int, int, BlueprintRow]] = []
    sized: list[tuple[int, int, BlueprintRow]] = []
    any_size: list[tuple[int, int, BlueprintRow]] = []
    for s, section in enumerate(blueprint.sections):
        for r, row in enumerate(section.rows):
            if row.type == SET_ROW:
                (sized if row.children is not None else any_size).append((s, r, row))
            else:
                (typed if row.type is not None else untyped).append((s, r, row))

    steps: list[_Step] = []
    short: list[Shortfall] = []
    used_typed: dict[tuple[str, int, str], int] = defaultdict(int)
    for s, r, row in typed:
        assert row.type is not None and row.level is not None
        key = (row.topic, row.level, str(row.type))
        source = index.cell(*key)
        available = max(0, len(source) - used_typed[key])
        if row.count > available:
            short.append(Shortfall(s, row.topic, row.level, row.type, row.count, available))
        used_typed[key] += row.count
        group_has_untyped = any(other.topic == row.topic and other.level == row.level for _, _, other in untyped)
        steps.append(_Step(s, r, row.count, source, key, may_collide=False, record_taken=group_has_untyped))

    # What typed rows leave of each (topic, level) for rows of any type.
    taken_by_typed: dict[tuple[str, int], int] = defaultdict(int)
    for (topic, level, type_), wanted in used_typed.items():
        taken_by_typed[(topic, level)] += min(wanted, len(index.cell(topic, level, type_)))
    used_untyped: dict[tuple[str, int], int] = defaultdict(int)
    for s, r, row in untyped:
        assert row.level is not None
        group = (row.topic, row.level)
        source = index.cell(*group)
        available = max(0, len(source) - taken_by_typed[group] - used_untyped[group])
        if row.count > available:
            short.append(Shortfall(s, row.topic, row.level, None, row.count, available))
        used_untyped[group] += row.count
        collide = taken_by_typed[group] > 0
        key = (row.topic, row.level, None)
        steps.append(_Step(s, r, row.count, source, key, may_collide=collide, record_taken=False))

    # Sets, the same way: sized rows first, then rows of any size take what is left.
    used_sized: dict[tuple[str, str, int], int] = defaultdict(int)
    for s, r, row in sized:
        assert row.children is not None
        key = (SET_ROW, row.topic, row.children)
        source = index.sets(row.topic, row.children)
        available = max(0, len(source) - used_sized[key])
        if row.count > available:
            short.append(Shortfall(s, row.topic, None, SET_ROW, row.count, available, row.children))
        used_sized[key] += row.count
        topic_has_any = any(other.topic == row.topic for _, _, other in any_size)
        steps.append(_Step(s, r, row.count, source, key, False, topic_has_any, sets=True))
    taken_by_sized: dict[str, int] = defaultdict(int)
    for (_, topic, children), wanted in used_sized.items():
        taken_by_sized[topic] += min(wanted, len(index.sets(topic, children)))
    used_any: dict[str, int] = defaultdict(int)
    for s, r, row in any_size:
        source = index.sets(row.topic)
        available = max(0, len(source) - taken_by_sized[row.topic] - used_any[row.topic])
        if row.count > available:
            short.append(Shortfall(s, row.topic, None, SET_ROW, row.count, available))
        used_any[row.topic] += row.count
        key = (SET_ROW, row.topic, None)
        steps.append(_Step(s, r, row.count, source, key, taken_by_sized[row.topic] > 0, False, sets=True))

    # Within a section, item rows' shortfalls first, as before sets existed.
    short.sort(key=lambda f: (f.section, f.type == SET_ROW, f.topic, f.level or 0, f.type or "", f.children or 0))
    # Enough random words for the usual case: per item one to draw it, one
    # for the section shuffle, one for the option order and one per alias; one
    # per item an any-type row passes over; per set one to draw it and what
    # its children need. A longer form just reads on.
    per_item = 3 + max((len(p.option_ids) for p in index.items), default=0)
    words = sum(step.count * per_item for step in steps if not step.sets) + sum(taken_by_typed.values()) + 16
    for step in steps:
        if step.sets:
            children = max((len(pool_set.children) for pool_set in step.source), default=0)
            words += step.count * (1 + children * per_item)
    words += sum(taken_by_sized.values())
    return _Plan(tuple(steps), tuple(short), words)


def shortfalls(blueprint: Blueprint, pool: Sequence[PoolItem] | PoolIndex) -> list[Shortfall]:
    """Every cell of the blueprint that the pool cannot fill; empty if feasible.

    Items never repeat within a form, so rows compete: rows with the same
    topic, level and type (in any sections) share that cell's items, taken
    in blueprint order; rows of any type share what the typed rows of their
    topic and level leave. Each short row is reported with what was left for
    it, e.g. a pool of 4 items and two sections asking for 3 and 2 gives one
    shortfall: the second section wants 2, 1 available. Set rows compete for
    sets the same way: rows of one topic and number of children share those
    sets, rows of any size what the sized rows leave.
    """
    return list(index_pool(pool).plan(blueprint).shortfalls)


# --------------------------------------------------------------------------
# Seeds


def _check_secret(exam_secret: bytes) -> None:
    if len(exam_secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the exam secret must have at least {MIN_SECRET_BYTES} random bytes")


def candidate_seed(exam_secret: bytes, candidate_code: str) -> bytes:
    """HMAC-SHA256(exam_secret, candidate_code): the seed of a candidate's form.

    The code is used exactly as given (UTF-8), so pass it as stored.
    """
    _check_secret(exam_secret)
    return hmac.new(exam_secret, candidate_code.encode("utf-8"), hashlib.sha256).digest()


def fixed_form_seed(exam_secret: bytes, form_number: int) -> bytes:
    """The seed of fixed form ``form_number`` ("mã đề" mode)."""
    _check_secret(exam_secret)
    message = _FIXED_FORM_DOMAIN + str(form_number).encode()
    return hmac.new(exam_secret, message, hashlib.sha256).digest()


def form_number_for(exam_secret: bytes, candidate_code: str, k: int) -> int:
    """Which of the K fixed forms (1..K) this candidate sits, uniformly by HMAC.

    Independent of `candidate_seed` (a different HMAC message), so knowing
    one tells nothing about the other.
    """
    if k < 1:
        raise ValueError(f"the number of forms must be at least 1, not {k}")
    _check_secret(exam_secret)
    digest = hmac.new(exam_secret, _FORM_NUMBER_DOMAIN + candidate_code.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest, "big") % k + 1  # 256 bits mod K: no measurable bias


# --------------------------------------------------------------------------
# Drawing


class _Stream:
    """Uniform random integers read from SHAKE-256(domain + seed)."""

    __slots__ = ("_next", "_source", "_words")

    def __init__(self, seed: bytes, words: int):
        self._source = _XOF_DOMAIN + seed
        self._words: tuple[int, ...] = ()
        self._next = 0
        self._grow(words)

    def _grow(self, words: int) -> None:
        # SHAKE output of length n is a prefix of any longer output, so growing
        # keeps every word already used: the form is the same whatever the
        # first guess of the length was.
        data = hashlib.shake_256(self._source).digest(8 * words)
        self._words = struct.unpack(f">{words}Q", data)

    def take(self, n: int) -> tuple[int, ...]:
        """The next ``n`` 64-bit words."""
        start, stop = self._next, self._next + n
        if stop > len(self._words):
            self._grow(max(stop, 2 * len(self._words)))
        self._next = stop
        return self._words[start:stop]

    def below(self, n: int) -> int:
        """A number in range(n)."""
        i = self._next
        if i == len(self._words):
            self._grow(2 * len(self._words))
        self._next = i + 1
        return self._words[i] % n


def _shuffled(values: Sequence, stream: _Stream) -> list:
    """A copy of ``values`` in random order (Fisher-Yates, last position first)."""
    out = list(values)
    if len(out) < 2:
        return out
    for i, word in zip(range(len(out) - 1, 0, -1), stream.take(len(out) - 1), strict=True):
        j = word % (i + 1)
        out[i], out[j] = out[j], out[i]
    return out


def _permuted(values: tuple[str, ...], stream: _Stream) -> tuple[str, ...]:
    """``values`` (options or statements) in one of their n! orders, uniformly.

    One word picks the order from a list made once (`_ORDERS`), so a shuffle
    is a single look-up; longer lists (rare) use Fisher-Yates.
    """
    n = len(values)
    if n < 2:
        return values
    if n >= len(_ORDERS):
        return tuple(_shuffled(values, stream))
    orders = _ORDERS[n]
    return orders[stream.below(len(orders))](values)


def _present_options(
    options: tuple[str, ...],
    shuffle: bool,
    stream: _Stream,
    clashes: tuple[str, ...],
    fixed: tuple[str, ...] = (),
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The options in presented order, and their aliases.

    An item with n options reads n + 1 words: the first picks one of the n!
    orders (unused when the options keep their order), the others make one
    alias each. More than 6 options (rare) are shuffled by Fisher-Yates.
    With ``fixed`` options, the first word picks an order of the others
    only, and the fixed ones keep their index.
    """
    n = len(options)
    if n == 0:
        return (), ()
    words = stream.take(n + 1)
    if shuffle and n > 1:
        if fixed:
            options = _around_fixed(options, fixed, words[0], stream)
        elif n < len(_ORDERS):
            orders = _ORDERS[n]
            options = orders[words[0] % len(orders)](options)
        else:
            options = tuple(_shuffled(options, stream))
    return options, _aliases(words[1:], stream, clashes)


def _around_fixed(options: tuple[str, ...], fixed: tuple[str, ...], word: int, stream: _Stream) -> tuple[str, ...]:
    """``options`` with the ``fixed`` ones at their index and the m others in one of their m! orders.

    ``word`` picks the order, as for an item without fixed options; more
    than 6 movable options are shuffled by Fisher-Yates, reading on.
    """
    movable = tuple(option for option in options if option not in fixed)
    m = len(movable)
    if m < 2:
        return options
    if m < len(_ORDERS):
        orders = _ORDERS[m]
        moved = iter(orders[word % len(orders)](movable))
    else:
        moved = iter(_shuffled(movable, stream))
    return tuple(option if option in fixed else next(moved) for option in options)


def _aliases(words: Sequence[int], stream: _Stream, clashes: tuple[str, ...]) -> tuple[str, ...]:
    """One alias per word, distinct, none containing any of the item's option ids.

    Each alias is six letters from the low 24 bits of its word. In the rare
    case that one repeats an earlier alias or contains an option id, it is
    passed over and the stream gives one more word. The same rule applies to
    every option of the item, so a redraw says nothing about which option
    an alias stands for; and SHAKE-256 words tell nothing about other words
    of the stream, so aliases tell nothing about the form's other choices.
    """
    chunks = _ALIAS_CHUNKS
    aliases = [chunks[(word >> 12) & 0xFFF] + chunks[word & 0xFFF] for word in words]
    n = len(aliases)
    if len(set(aliases)) == n and not (clashes and any(option in alias for alias in aliases for option in clashes)):
        return tuple(aliases)  # the usual case: nothing to pass over
    accepted: list[str] = []
    pending = iter(aliases)
    while len(accepted) < n:
        alias = next(pending, None)
        if alias is None:
            word = stream.below(1 << 24)
            alias = chunks[word >> 12] + chunks[word & 0xFFF]
        if alias not in accepted and not any(option in alias for option in clashes):
            accepted.append(alias)
    return tuple(accepted)


class _Sampler:
    """Draws from ``source`` (items, or sets) without replacement: Fisher-Yates kept in a dict.

    Only the positions already swapped are stored, so each draw costs O(1)
    whatever the size of the cell.
    """

    __slots__ = ("_drawn", "_source", "_swapped")

    def __init__(self, source: tuple[PoolItem, ...] | tuple[PoolSet, ...]):
        self._source = source
        self._swapped: dict[int, int] = {}
        self._drawn = 0

    def draw(self, count: int, stream: _Stream, skip: set | None = None) -> list:
        """``count`` more items (or sets), passing over any whose pk is in ``skip``.

        One word per item looked at, in order; an item passed over costs one
        more word. Feasibility was checked first, so the cell never runs dry.
        """
        source, swapped, i = self._source, self._swapped, self._drawn
        n = len(source)
        picked: list = []
        while len(picked) < count:
            for word in stream.take(count - len(picked)):
                # Position i takes a random one of positions i..n-1 (a
                # position not in `swapped` still holds its own item).
                j = i + word % (n - i)
                item = source[swapped.get(j, j)]
                swapped[j] = swapped.get(i, i)
                i += 1
                if skip is None or item.pk not in skip:
                    picked.append(item)
        self._drawn = i
        return picked


def draw_form(
    blueprint: Blueprint,
    pool: Sequence[PoolItem] | PoolIndex,
    seed: bytes,
    *,
    shuffle_items: bool = True,
    shuffle_options: bool = True,
    shuffle_statements: bool = False,
    form_number: int | None = None,
) -> Form:
    """The form for ``seed``: every cell drawn without replacement, then shuffled.

    1. Item rows naming a type are drawn first, then rows of any type (which
       skip items already taken), each group in blueprint order; no item
       appears twice in the form. Set rows are drawn after them, the same
       way: a set appears at most once, whole.
    2. Within each section, units are shuffled (``shuffle_items``): a
       standalone item is a unit, a set is one unit whose children stay
       together in set order, unless the set allows shuffling them
       (``PoolItem.set_shuffle``), when they are shuffled among themselves.
       Without ``shuffle_items`` units appear row by row in blueprint order,
       and within a row in pool order (items by item id, sets by set key),
       like a printed paper, and no set's children move.
    3. Each item's options are shuffled when ``shuffle_options`` and the item
       allows it (``PoolItem.shuffle``), its fixed options staying where they
       are; each option gets a random alias.
    4. Truefalse4 statements keep the order a-d, as on the Vietnamese paper,
       unless ``shuffle_statements`` (and the item allows it); their ids stay
       a-d either way.

    An item is worth its row's ``points`` if the row gives them (each child,
    for a set row), else its own; the items of an unscored row are marked
    ``scored=False``. Raises `InfeasibleBlueprint` listing every short cell.
    """
    index = index_pool(pool)
    plan = index.plan(blueprint)
    if plan.shortfalls:
        raise InfeasibleBlueprint(plan.shortfalls)
    stream = _Stream(seed, plan.words)

    # drawn[section][row] = the items (or, for a set row, the sets) drawn for that row
    drawn: list[list[list]] = [[[] for _ in section.rows] for section in blueprint.sections]
    samplers: dict[tuple, _Sampler] = {}
    taken_items: set[int] = set()
    taken_sets: set[str] = set()
    for step in plan.steps:
        sampler = samplers.get(step.key)
        if sampler is None:
            sampler = samplers[step.key] = _Sampler(step.source)
        # Passing over taken units keeps the draw uniform over the rest: the
        # first k untaken units of a random order are a random k-subset.
        taken = taken_sets if step.sets else taken_items
        units = sampler.draw(step.count, stream, taken if step.may_collide else None)
        if step.record_taken:
            taken.update(unit.pk for unit in units)
        drawn[step.section][step.row] = units

    clashes = index.alias_clashes
    sections: list[FormSection] = []
    number = 0
    for section, rows_drawn in zip(blueprint.sections, drawn, strict=True):
        units: list[tuple[PoolItem | PoolSet, BlueprintRow]] = []
        for row, row_units in zip(section.rows, rows_drawn, strict=True):
            if not shuffle_items:
                row_units.sort(key=_set_order if row.type == SET_ROW else _item_order)
            units.extend((unit, row) for unit in row_units)
        if shuffle_items:
            units = _shuffled(units, stream)
        # entries: (item, row, set key) in presented order, sets unfolded.
        entries: list[tuple[PoolItem, BlueprintRow, str | None]] = []
        for unit, row in units:
            if type(unit) is PoolSet:
                children = unit.children
                if shuffle_items and unit.shuffle:
                    children = _shuffled(children, stream)
                entries.extend((child, row, unit.key) for child in children)
            else:
                entries.append((unit, row, None))
        form_items = []
        for item, row, set_key in entries:
            number += 1
            options = aliases = ()
            if item.option_ids:
                options, aliases = _present_options(
                    item.option_ids,
                    shuffle_options and item.shuffle,
                    stream,
                    clashes.get(item.pk, ()),
                    item.fixed_options,
                )
            statements = item.statement_ids
            if shuffle_statements and item.shuffle:
                statements = _permuted(statements, stream)
            points = item.points if row.points is None else row.points
            form_items.append(
                FormItem(f"q{number}", item.pk, points, options, aliases, statements, row.scored, set_key)
            )
        sections.append(FormSection(section.title, section.time_limit_minutes, tuple(form_items)))
    return Form(tuple(sections), seed.hex(), form_number)


def _item_order(item: PoolItem) -> tuple[str, int]:
    """An item's place in its row on a paper that is not shuffled: by item id."""
    return item.item_id, item.version


def _set_order(pool_set: PoolSet) -> str:
    """A set's place in its row on a paper that is not shuffled: by set key."""
    return pool_set.key


def fixed_forms(
    blueprint: Blueprint,
    pool: Sequence[PoolItem] | PoolIndex,
    exam_secret: bytes,
    k: int,
    *,
    shuffle_items: bool = True,
    shuffle_options: bool = True,
    shuffle_statements: bool = False,
) -> list[Form]:
    """K numbered forms ("mã đề"), numbers 1..K, seeds from `fixed_form_seed`.

    Candidates are assigned with `form_number_for`.
    """
    if k < 1:
        raise ValueError(f"the number of forms must be at least 1, not {k}")
    index = index_pool(pool)
    return [
        draw_form(
            blueprint,
            index,
            fixed_form_seed(exam_secret, number),
            shuffle_items=shuffle_items,
            shuffle_options=shuffle_options,
            shuffle_statements=shuffle_statements,
            form_number=number,
        )
        for number in range(1, k + 1)
    ]


# --------------------------------------------------------------------------
# JSON


def form_to_json(form: Form) -> dict[str, Any]:
    """The form as JSON-ready data; Decimals as strings, exactly as they are.

    This is the server's record of the form (it holds the seed, item pks and
    the bank's option ids); it is not for the browser, which gets only refs,
    aliases and rendered content. An item's ``scored`` and ``set_key`` are
    written only when they are not the defaults (True, None), so a form
    without sets or trial items is written exactly as before they existed.
    """
    return _form_data(form, str, list)


def _form_data(form: Form, decimal_text: Callable[[Decimal], str], array: type[list] | type[tuple]) -> dict[str, Any]:
    """The JSON-ready form; ``array`` is list, or tuple where the data is only dumped."""
    return {
        "format": FORM_FORMAT,
        "seed_hex": form.seed_hex,
        "form_number": form.form_number,
        "sections": [
            {
                "title": section.title,
                "time_limit_minutes": section.time_limit_minutes,
                "items": [_item_data(item, decimal_text, array) for item in section.items],
            }
            for section in form.sections
        ],
    }


def _item_data(item: FormItem, decimal_text: Callable[[Decimal], str], array: type[list] | type[tuple]) -> dict:
    data = {
        "ref": item.ref,
        "pk": item.pk,
        "points": decimal_text(item.points),
        "option_order": array(item.option_order),
        "option_aliases": array(item.option_aliases),
        "statement_order": array(item.statement_order),
    }
    if not item.scored:
        data["scored"] = False
    if item.set_key is not None:
        data["set_key"] = item.set_key
    return data


def form_from_json(data: dict[str, Any]) -> Form:
    """The inverse of `form_to_json`; ValueError if ``data`` is not a form."""
    if data.get("format") != FORM_FORMAT:
        raise ValueError(f"not a {FORM_FORMAT} form: format is {data.get('format')!r}")
    try:
        return Form(
            sections=tuple(
                FormSection(
                    title=section["title"],
                    time_limit_minutes=section["time_limit_minutes"],
                    items=tuple(_form_item(item) for item in section["items"]),
                )
                for section in data["sections"]
            ),
            seed_hex=data["seed_hex"],
            form_number=data["form_number"],
        )
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"malformed form JSON: {exc!r}") from exc


def _form_item(item: dict[str, Any]) -> FormItem:
    scored, set_key = item.get("scored", True), item.get("set_key")
    if type(scored) is not bool or not (set_key is None or type(set_key) is str):
        raise TypeError(f"item {item.get('ref')!r}: scored {scored!r} or set_key {set_key!r} of the wrong type")
    return FormItem(
        ref=item["ref"],
        pk=item["pk"],
        points=Decimal(item["points"]),
        option_order=tuple(item["option_order"]),
        option_aliases=tuple(item["option_aliases"]),
        statement_order=tuple(item["statement_order"]),
        scored=scored,
        set_key=set_key,
    )


def form_digest(form: Form) -> str:
    """SHA-256 (hex) of the form's canonical JSON (`canonical_form_json`)."""
    return hashlib.sha256(canonical_form_json(form).encode("utf-8")).hexdigest()


def canonical_form_json(form: Form) -> str:
    """`form_to_json` as canonical JSON text: what `form_digest` hashes.

    Canonical: keys sorted, no spaces, non-ASCII as is (UTF-8 when hashed),
    points normalised (``0.50`` and ``0.5`` are the same points, ``1E+1`` is
    ``10``), so two forms have the same text exactly when they are equal.
    It equals ``json.dumps(data, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``; items are written directly (a test holds the two
    equal), which is several times faster than the json module for the
    10,000 forms made when an exam opens.
    """
    fast = _fast_canonical_json(form)
    if fast is not None:
        return fast
    data = _form_data(form, _canonical_decimal, tuple)  # tuple(t) is t: no copies
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Characters json.dumps(ensure_ascii=False) would escape in a string.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _fast_canonical_json(form: Form) -> str | None:
    """The canonical JSON, or None if a string in an item would need escaping.

    Keys are written in sorted order by hand. Values that repeat from form to
    form (refs, option and statement orders, points) go through cached
    encoders; aliases, different in every form, are checked and written as
    they are.
    """
    sections = []
    for section in form.sections:
        items = []
        for item in section.items:
            if type(item.pk) is not int or _NEEDS_ESCAPE.search("".join(item.option_aliases)):
                return None  # the slow path escapes whatever needs it
            alias_list = '["' + '","'.join(item.option_aliases) + '"]' if item.option_aliases else "[]"
            # Keys in sorted order: "scored" and "set_key" sort between "ref" and
            # "statement_order", and are written only when not the defaults.
            extra = "" if item.scored else ',"scored":false'
            if item.set_key is not None:
                extra += f',"set_key":{_json_value(item.set_key)}'
            items.append(
                f'{{"option_aliases":{alias_list},"option_order":{_json_value(item.option_order)},'
                f'"pk":{item.pk},"points":"{_canonical_decimal(item.points)}","ref":{_json_value(item.ref)}'
                f'{extra},"statement_order":{_json_value(item.statement_order)}}}'
            )
        sections.append(
            f'{{"items":[{",".join(items)}],"time_limit_minutes":{_json_value(section.time_limit_minutes)},'
            f'"title":{_json_value(section.title)}}}'
        )
    return (
        f'{{"form_number":{_json_value(form.form_number)},"format":{_json_value(FORM_FORMAT)},'
        f'"sections":[{",".join(sections)}],"seed_hex":{_json_value(form.seed_hex)}}}'
    )


@functools.lru_cache(maxsize=4096, typed=True)
def _json_value(value: str | int | tuple[str, ...] | None) -> str:
    """``json.dumps`` of a value that recurs across forms, cached."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def _canonical_decimal(value: Decimal) -> str:
    """``value`` without exponent or trailing zeros: 0.50 -> 0.5, 1E+1 -> 10.

    Cached: an exam has only a handful of distinct point values. Equal
    Decimals share a cache entry, which is right, since they share the result.
    """
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def build_form_payload(form: Form, rendered: dict[int, tuple[str, dict]]) -> tuple[dict, dict]:
    """The form as the page gets it (aliases, no key), and the layout autosave checks against.

    A set's children name their passage by a per-form number ("p1", "p2" in
    the order they first appear), never by the bank's set id, and the
    passage's HTML is sent once under ``passages``."""
    sections, layout, passages, passage_refs = [], {}, {}, {}
    for si, section in enumerate(form.sections):
        items = []
        for fi in section.items:
            kind, view = rendered[fi.pk]
            entry = {"ref": fi.ref, "type": kind, "points": str(fi.points), "stem": view["stem"]}
            if view.get("format"):
                entry["format"] = view["format"]
            if fi.option_order:
                entry["options"] = [
                    {"id": alias, "html": view["options"][orig]}
                    for orig, alias in zip(fi.option_order, fi.option_aliases, strict=True)
                ]
            if fi.statement_order:
                entry["statements"] = [{"id": sid, "html": view["statements"][sid]} for sid in fi.statement_order]
            if fi.set_key is not None and "passage" in view:
                ref = passage_refs.setdefault(fi.set_key, f"p{len(passage_refs) + 1}")
                entry["passage"] = ref
                passages[ref] = view["passage"]
            items.append(entry)
            layout[fi.ref] = {"t": kind, "o": list(fi.option_aliases), "s": list(fi.statement_order), "sec": si}
        sections.append(
            {"index": si, "title": section.title, "time_limit_minutes": section.time_limit_minutes, "items": items}
        )
    return ({"sections": sections, "passages": passages} if passages else {"sections": sections}), layout
