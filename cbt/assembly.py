"""Drawing exam forms from a blueprint (the "ma trận đề").

An exam's blueprint has sections; each section has rows ("cells") asking for
``count`` items of one topic and level (and optionally one item type). A
*form* is what one candidate sits: for every cell, ``count`` items drawn from
the pool without replacement, items shuffled within each section, options
shuffled within each item, and every option given a per-form *alias*, the
only option id the browser ever sees.

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

1. Draws. Rows naming a type, in blueprint order, then rows of any type, in
   blueprint order. Rows of the same (topic, level, type) share one
   Fisher-Yates pass over that cell's items in pool order (topic, level,
   item_id, version): pick i reads one word w and takes position
   ``i + w mod (n - i)``. A row of any type passes over an item a typed row
   already took, reading one more word.
2. Sections, in order: the section's items shuffled by Fisher-Yates, last
   position first, one word per position (unless ``shuffle_items`` is off).
3. Items, in presented order: an item with n options reads n + 1 words, one
   picking one of the n! orders (`itertools.permutations` order) and one
   per alias (a rare repeated or clashing alias reads one more); then one
   word for the statements' order if they are shuffled.

If the algorithm ever changes it gets a new name; forms already served keep
their stored JSON, and a test pins a digest so no change goes unnoticed.

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
    to shuffle them. ``pk`` is the database key of this item version.
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


@dataclass(frozen=True)
class BlueprintRow:
    """A cell of the blueprint: ``count`` items of this topic and level.

    With ``type`` set, only items of that type qualify; with ``points`` set,
    each drawn item is worth that much instead of the item's own points.
    """

    topic: str
    level: int
    count: int
    points: Decimal | None = None
    type: str | None = None

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError(f"blueprint row {self.topic} level {self.level}: count {self.count} is negative")
        if self.points is not None and self.points < 0:
            raise ValueError(f"blueprint row {self.topic} level {self.level}: points {self.points} are negative")


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
    """A cell that asks for more items than the pool can give it.

    ``section`` is the 0-based index into ``Blueprint.sections``; ``type`` is
    None for a row that accepts any type. ``available`` is what is left for
    this row after the rows that compete for the same items (see
    `shortfalls`).
    """

    section: int
    topic: str
    level: int
    type: str | None
    wanted: int
    available: int

    def describe(self) -> str:
        """One line for an error message, e.g. for ``cbt exam create``."""
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
    """

    ref: str
    pk: int
    points: Decimal
    option_order: tuple[str, ...] = ()
    option_aliases: tuple[str, ...] = ()
    statement_order: tuple[str, ...] = ()

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
    """Draw ``count`` items for row ``row`` of section ``section``."""

    section: int
    row: int
    count: int
    source: tuple[PoolItem, ...]  # the items this row may take, in pool order
    key: tuple[str, int, str | None]  # rows with the same key share one sampler
    may_collide: bool  # an any-type row: it must pass over items a typed row took
    record_taken: bool  # a typed row whose topic and level also has any-type rows


@dataclass(frozen=True)
class _Plan:
    """How to draw one blueprint from one pool; computed once, used per form."""

    steps: tuple[_Step, ...]
    shortfalls: tuple[Shortfall, ...]
    words: int  # random words a form needs, apart from rare alias redraws


class PoolIndex:
    """The pool sorted by (topic, level, item_id, version) and grouped by cell.

    Build it once per exam with `index_pool`, then draw any number of forms.
    It caches one draw plan per blueprint.
    """

    def __init__(
        self,
        items: tuple[PoolItem, ...],
        by_group: dict[tuple[str, int], tuple[PoolItem, ...]],
        by_cell: dict[tuple[str, int, str], tuple[PoolItem, ...]],
        alias_clashes: dict[int, tuple[str, ...]],
    ):
        self.items = items
        self._by_group = by_group
        self._by_cell = by_cell
        # Option ids that could appear inside an alias, per item pk (usually none).
        self.alias_clashes = alias_clashes
        self._plans: dict[Blueprint, _Plan] = {}
        self._last_plan: tuple[Blueprint, _Plan] | None = None

    def cell(self, topic: str, level: int, type: str | None = None) -> tuple[PoolItem, ...]:
        """The pool's items of this topic and level (and type), in pool order."""
        if type is None:
            return self._by_group.get((topic, level), ())
        return self._by_cell.get((topic, level, type), ())

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

    Raises ValueError if two entries share a ``pk`` or an ``item_id``: two
    versions of one item would let a form show the same question twice.
    """
    if isinstance(pool, PoolIndex):
        return pool
    items = tuple(sorted(pool, key=lambda p: (p.topic, p.level, p.item_id, p.version, p.pk)))
    seen_pk: set[int] = set()
    seen_id: set[str] = set()
    by_group: dict[tuple[str, int], list[PoolItem]] = defaultdict(list)
    by_cell: dict[tuple[str, int, str], list[PoolItem]] = defaultdict(list)
    clashes: dict[int, tuple[str, ...]] = {}
    for item in items:
        if item.pk in seen_pk:
            raise ValueError(f"the pool lists pk {item.pk} twice")
        if item.item_id in seen_id:
            raise ValueError(f"the pool holds item {item.item_id} twice: give the exam one version of each item")
        seen_pk.add(item.pk)
        seen_id.add(item.item_id)
        by_group[(item.topic, item.level)].append(item)
        by_cell[(item.topic, item.level, str(item.type))].append(item)
        clash = tuple(option.casefold() for option in item.option_ids if set(option.casefold()) <= set(_ALIAS_ALPHABET))
        if clash:
            clashes[item.pk] = clash
    return PoolIndex(
        items,
        {key: tuple(value) for key, value in by_group.items()},
        {key: tuple(value) for key, value in by_cell.items()},
        clashes,
    )


def _make_plan(index: PoolIndex, blueprint: Blueprint) -> _Plan:
    """Order the draws and find every short cell.

    Within one (topic, level), rows naming a type are drawn first, since only
    items of that type will do; rows accepting any type then take what is
    left. Rows with the same (topic, level, type) in several sections share
    one sampler, so they never get the same item twice.
    """
    typed: list[tuple[int, int, BlueprintRow]] = []
    untyped: list[tuple[int, int, BlueprintRow]] = []
    for s, section in enumerate(blueprint.sections):
        for r, row in enumerate(section.rows):
            (typed if row.type is not None else untyped).append((s, r, row))

    steps: list[_Step] = []
    short: list[Shortfall] = []
    used_typed: dict[tuple[str, int, str], int] = defaultdict(int)
    for s, r, row in typed:
        assert row.type is not None
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
        group = (row.topic, row.level)
        source = index.cell(*group)
        available = max(0, len(source) - taken_by_typed[group] - used_untyped[group])
        if row.count > available:
            short.append(Shortfall(s, row.topic, row.level, None, row.count, available))
        used_untyped[group] += row.count
        collide = taken_by_typed[group] > 0
        key = (row.topic, row.level, None)
        steps.append(_Step(s, r, row.count, source, key, may_collide=collide, record_taken=False))

    short.sort(key=lambda f: (f.section, f.topic, f.level, f.type or ""))
    # Enough random words for the usual case: per item one to draw it, one
    # for the section shuffle, one for the option order and one per alias; one
    # per item an any-type row passes over. A longer form just reads on.
    per_item = 3 + max((len(p.option_ids) for p in index.items), default=0)
    words = sum(step.count * per_item for step in steps) + sum(taken_by_typed.values()) + 16
    return _Plan(tuple(steps), tuple(short), words)


def shortfalls(blueprint: Blueprint, pool: Sequence[PoolItem] | PoolIndex) -> list[Shortfall]:
    """Every cell of the blueprint that the pool cannot fill; empty if feasible.

    Items never repeat within a form, so rows compete: rows with the same
    topic, level and type (in any sections) share that cell's items, taken
    in blueprint order; rows of any type share what the typed rows of their
    topic and level leave. Each short row is reported with what was left for
    it, e.g. a pool of 4 items and two sections asking for 3 and 2 gives one
    shortfall: the second section wants 2, 1 available.
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
    options: tuple[str, ...], shuffle: bool, stream: _Stream, clashes: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The options in presented order, and their aliases.

    An item with n options reads n + 1 words: the first picks one of the n!
    orders (unused when the options keep their order), the others make one
    alias each. More than 6 options (rare) are shuffled by Fisher-Yates.
    """
    n = len(options)
    if n == 0:
        return (), ()
    words = stream.take(n + 1)
    if shuffle and n > 1:
        if n < len(_ORDERS):
            orders = _ORDERS[n]
            options = orders[words[0] % len(orders)](options)
        else:
            options = tuple(_shuffled(options, stream))
    return options, _aliases(words[1:], stream, clashes)


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
    """Draws from ``source`` without replacement: Fisher-Yates kept in a dict.

    Only the positions already swapped are stored, so each draw costs O(1)
    whatever the size of the cell.
    """

    __slots__ = ("_drawn", "_source", "_swapped")

    def __init__(self, source: tuple[PoolItem, ...]):
        self._source = source
        self._swapped: dict[int, int] = {}
        self._drawn = 0

    def draw(self, count: int, stream: _Stream, skip: set[int] | None = None) -> list[PoolItem]:
        """``count`` more items, passing over any whose pk is in ``skip``.

        One word per item looked at, in order; an item passed over costs one
        more word. Feasibility was checked first, so the cell never runs dry.
        """
        source, swapped, i = self._source, self._swapped, self._drawn
        n = len(source)
        picked: list[PoolItem] = []
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

    1. Rows naming a type are drawn first, then rows of any type (which skip
       items already taken), each group in blueprint order; no item appears
       twice in the form.
    2. Within each section, items are shuffled (``shuffle_items``); without
       it they appear row by row in blueprint order, and within a row in pool
       order (by item id), like a printed paper.
    3. Each item's options are shuffled when ``shuffle_options`` and the item
       allows it (``PoolItem.shuffle``); each option gets a random alias.
    4. Truefalse4 statements keep the order a-d, as on the Vietnamese paper,
       unless ``shuffle_statements`` (and the item allows it); their ids stay
       a-d either way.

    Raises `InfeasibleBlueprint` listing every short cell.
    """
    index = index_pool(pool)
    plan = index.plan(blueprint)
    if plan.shortfalls:
        raise InfeasibleBlueprint(plan.shortfalls)
    stream = _Stream(seed, plan.words)

    # drawn[section][row] = items drawn for that row
    drawn: list[list[list[PoolItem]]] = [[[] for _ in section.rows] for section in blueprint.sections]
    samplers: dict[tuple[str, int, str | None], _Sampler] = {}
    taken: set[int] = set()
    for step in plan.steps:
        sampler = samplers.get(step.key)
        if sampler is None:
            sampler = samplers[step.key] = _Sampler(step.source)
        # Passing over taken items keeps the draw uniform over the rest: the
        # first k untaken items of a random order are a random k-subset.
        items = sampler.draw(step.count, stream, taken if step.may_collide else None)
        if step.record_taken:
            taken.update(item.pk for item in items)
        drawn[step.section][step.row] = items

    clashes = index.alias_clashes
    sections: list[FormSection] = []
    number = 0
    for section, rows_drawn in zip(blueprint.sections, drawn, strict=True):
        entries: list[tuple[PoolItem, Decimal]] = []
        for row, items in zip(section.rows, rows_drawn, strict=True):
            if not shuffle_items:
                items.sort(key=lambda p: (p.item_id, p.version))
            entries.extend((item, item.points if row.points is None else row.points) for item in items)
        if shuffle_items:
            entries = _shuffled(entries, stream)
        form_items = []
        for item, points in entries:
            number += 1
            options = aliases = ()
            if item.option_ids:
                options, aliases = _present_options(
                    item.option_ids, shuffle_options and item.shuffle, stream, clashes.get(item.pk, ())
                )
            statements = item.statement_ids
            if shuffle_statements and item.shuffle:
                statements = _permuted(statements, stream)
            form_items.append(FormItem(f"q{number}", item.pk, points, options, aliases, statements))
        sections.append(FormSection(section.title, section.time_limit_minutes, tuple(form_items)))
    return Form(tuple(sections), seed.hex(), form_number)


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
    aliases and rendered content.
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
                "items": [
                    {
                        "ref": item.ref,
                        "pk": item.pk,
                        "points": decimal_text(item.points),
                        "option_order": array(item.option_order),
                        "option_aliases": array(item.option_aliases),
                        "statement_order": array(item.statement_order),
                    }
                    for item in section.items
                ],
            }
            for section in form.sections
        ],
    }


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
                    items=tuple(
                        FormItem(
                            ref=item["ref"],
                            pk=item["pk"],
                            points=Decimal(item["points"]),
                            option_order=tuple(item["option_order"]),
                            option_aliases=tuple(item["option_aliases"]),
                            statement_order=tuple(item["statement_order"]),
                        )
                        for item in section["items"]
                    ),
                )
                for section in data["sections"]
            ),
            seed_hex=data["seed_hex"],
            form_number=data["form_number"],
        )
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"malformed form JSON: {exc!r}") from exc


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
            items.append(
                f'{{"option_aliases":{alias_list},"option_order":{_json_value(item.option_order)},'
                f'"pk":{item.pk},"points":"{_canonical_decimal(item.points)}","ref":{_json_value(item.ref)},'
                f'"statement_order":{_json_value(item.statement_order)}}}'
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
    """The form as the page gets it (aliases, no key), and the layout autosave checks against."""
    sections, layout = [], {}
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
            items.append(entry)
            layout[fi.ref] = {"t": kind, "o": list(fi.option_aliases), "s": list(fi.statement_order), "sec": si}
        sections.append(
            {"index": si, "title": section.title, "time_limit_minutes": section.time_limit_minutes, "items": items}
        )
    return {"sections": sections}, layout
