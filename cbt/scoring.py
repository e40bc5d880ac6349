"""Exact scores: every item type's rule, section and attempt totals, rounding.

All arithmetic is `Decimal` in a fixed local context (28 significant digits,
the Python default, whatever context the caller has set), so a score is the
same on every machine and a Math paper's 12 x 0.25 + 4 x 1 + 6 x 0.5 is
exactly 10. Scores are rounded only when reported (`round_half_up`).

The rules, for an item worth P points (P comes from the exam's blueprint,
not necessarily the item's own ``points``):

- ``single``: P for the key, 0 when omitted (None or ""). A wrong answer
  scores ``-P x single_penalty`` (negative marking; 0 turns it off).
- ``multiple``: all-or-nothing by default: P when the chosen set equals the
  key set exactly, else 0. With ``multiple_partial``:
  ``P x max(0, (right - wrong) / number of keys)``, where right = keys
  chosen and wrong = non-keys chosen. Omitted (None or []) scores 0.
- ``truefalse4`` (Vietnamese Part II): ``P x table[k]`` where k is the
  number of statements judged right and the default table is
  0, 0.1, 0.25, 0.5, 1 for k = 0..4; the national exam's items are worth
  1 point, so P = 1 gives its figures exactly, and an item worth 2 points
  gives twice them. An unanswered statement is not right.
- ``short`` (Part III): P when `itembank.answers.check_short_answer` accepts
  the answer (``-1.5`` matches ``-1,5``; under ``vn-numeric`` ``075`` does
  not match ``75``, as on the national answer sheet), else 0.
- ``essay``: None until a person marks it (see `score_attempt`).

Response values are what the server holds after mapping the browser's
option aliases back to the bank's option ids: single, an option id or None;
multiple, a list of option ids or None; truefalse4, a dict statement id ->
bool (a missing key is unanswered); short and essay, a string or None.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from types import MappingProxyType

from itembank.answers import check_short_answer
from itembank.model import Item, ItemType

# The context every score is computed in, independent of the caller's.
_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)
_ZERO = Decimal(0)

VIETNAMESE_TRUEFALSE4 = (Decimal("0"), Decimal("0.1"), Decimal("0.25"), Decimal("0.5"), Decimal("1"))
"""Points of a 1-point Part II item for 0, 1, 2, 3, 4 statements right."""


@dataclass(frozen=True)
class ScoringRules:
    """How an exam scores its items (see the module docstring for each rule).

    - ``multiple_partial``: partial credit for ``multiple`` items.
    - ``single_penalty``: fraction of a ``single`` item's points taken off
      for a wrong (not omitted) answer, e.g. ``Decimal("0.25")``; 0 = off.
    - ``truefalse4_table``: the fraction of the points for 0, 1, ... 4
      statements right.
    """

    multiple_partial: bool = False
    single_penalty: Decimal = _ZERO
    truefalse4_table: tuple[Decimal, ...] = VIETNAMESE_TRUEFALSE4

    def __post_init__(self) -> None:
        if not isinstance(self.single_penalty, Decimal) or not 0 <= self.single_penalty <= 1:
            raise ValueError(f"single_penalty {self.single_penalty!r}: use a Decimal from 0 to 1, e.g. 0.25")
        table = self.truefalse4_table
        if len(table) != 5 or not all(isinstance(v, Decimal) and 0 <= v <= 1 for v in table):
            raise ValueError(
                f"truefalse4_table {table!r}: give 5 Decimal fractions from 0 to 1,"
                " for 0, 1, 2, 3 and 4 statements right"
            )


DEFAULT_RULES = ScoringRules()
"""All-or-nothing ``multiple``, no negative marking, the Vietnamese Part II table."""


@dataclass(frozen=True)
class SectionScore:
    total: Decimal  # never below 0, even with negative marking
    max_total: Decimal


@dataclass(frozen=True)
class AttemptScore:
    """An attempt's scores, exact (round with `round_half_up` to report).

    ``items`` maps each ref to its score, None for an essay not yet marked;
    ``provisional`` is True while any essay is unmarked (such essays count 0
    in the totals). ``total`` is the sum of the section totals.
    """

    total: Decimal
    max_total: Decimal
    sections: tuple[SectionScore, ...]
    items: Mapping[str, Decimal | None]
    provisional: bool


def score_item(item: Item, response: object, points: Decimal, rules: ScoringRules = DEFAULT_RULES) -> Decimal | None:
    """The score of one response to ``item`` worth ``points``; None for an essay.

    Raises ValueError for an item that cannot be scored (a ``short`` item
    without a key, a ``truefalse4`` item without four statements): release
    validation refuses such items, so reaching one is a bug worth hearing of.
    """
    if not isinstance(points, Decimal):
        raise TypeError(f"points must be a Decimal, not {type(points).__name__}: floats are not exact")
    with localcontext(_CONTEXT):
        if item.type == ItemType.SINGLE:
            return _single(item, response, points, rules)
        if item.type == ItemType.MULTIPLE:
            return _multiple(item, response, points, rules)
        if item.type == ItemType.TRUEFALSE4:
            return _truefalse4(item, response, points, rules)
        if item.type == ItemType.SHORT:
            return _short(item, response, points)
        if item.type == ItemType.ESSAY:
            return None
    raise ValueError(f"item {item.key}: unknown type {item.type!r}")


def _single(item: Item, response: object, points: Decimal, rules: ScoringRules) -> Decimal:
    if response is None or response == "":
        return _ZERO  # omitted: never penalised
    if response in item.correct_option_ids:
        return points
    # Wrong, including an id that is not an option at all: a chosen answer.
    return -(points * rules.single_penalty)


def _multiple(item: Item, response: object, points: Decimal, rules: ScoringRules) -> Decimal:
    if not response:
        return _ZERO
    if isinstance(response, str) or not isinstance(response, (list, tuple, set, frozenset)):
        raise ValueError(f"item {item.key}: a multiple answer is a list of option ids, not {response!r}")
    chosen = set(response)
    keys = set(item.correct_option_ids)
    if not rules.multiple_partial:
        return points if chosen == keys else _ZERO
    if not keys:
        raise ValueError(f"item {item.key}: a multiple item without keys cannot be scored")
    right = len(chosen & keys)
    wrong = len(chosen - keys)
    return points * max(_ZERO, Decimal(right - wrong) / len(keys))


def _truefalse4(item: Item, response: object, points: Decimal, rules: ScoringRules) -> Decimal:
    if len(item.statements) != len(rules.truefalse4_table) - 1:
        raise ValueError(f"item {item.key}: a truefalse4 item needs 4 statements, it has {len(item.statements)}")
    if response is None:
        return _ZERO
    if not isinstance(response, Mapping):
        raise ValueError(f"item {item.key}: a truefalse4 answer maps statement ids to true/false, not {response!r}")
    right = 0
    for statement in item.statements:
        judged = response.get(statement.id)
        # Only a real bool counts: "true", 1 or None are not a judgement.
        if isinstance(judged, bool) and judged == statement.answer:
            right += 1
    return points * rules.truefalse4_table[right]


def _short(item: Item, response: object, points: Decimal) -> Decimal:
    if item.answer is None:
        raise ValueError(f"item {item.key}: a short item without an answer key cannot be scored")
    if not isinstance(response, str):
        return _ZERO  # None (omitted) or anything that is not an answer
    return points if check_short_answer(response, item.answer) else _ZERO


def score_attempt(
    sections: Sequence[Sequence[tuple[str, Item, Decimal]]],
    responses: Mapping[str, object],
    rules: ScoringRules = DEFAULT_RULES,
    essay_marks: Mapping[str, Decimal] | None = None,
    unscored: Collection[str] = (),
) -> AttemptScore:
    """Score a whole attempt.

    ``sections`` lists, per section of the form, (ref, item, points) for each
    question; ``responses`` maps refs to response values (a ref missing from
    it is omitted); ``essay_marks`` maps essay refs to the marks a person
    gave (0 to the item's points). ``unscored`` names trial questions (a
    blueprint row with ``scored: false``): each is scored as any other, so
    item analysis can calibrate it, but counts in no total, no maximum, and
    never leaves the attempt provisional.

    Each section total is the sum of its items, but never below 0: negative
    marking can lower a section to 0, not beyond, so it cannot eat into
    points earned in another section. The attempt total is the sum of the
    section totals; ``max_total`` the sum of all points.
    """
    marks = essay_marks or {}
    items: dict[str, Decimal | None] = {}
    section_scores: list[SectionScore] = []
    provisional = False
    with localcontext(_CONTEXT):
        for section in sections:
            total = max_total = _ZERO
            for ref, item, points in section:
                if ref in items:
                    raise ValueError(f"ref {ref} appears twice in the form")
                if item.type == ItemType.ESSAY:
                    score = _essay_mark(ref, marks.get(ref), points)
                    provisional = provisional or (score is None and ref not in unscored)
                else:
                    score = score_item(item, responses.get(ref), points, rules)
                items[ref] = score
                if ref in unscored:
                    continue
                total += score or _ZERO
                max_total += points
            section_scores.append(SectionScore(max(total, _ZERO), max_total))
        return AttemptScore(
            total=sum((s.total for s in section_scores), _ZERO),
            max_total=sum((s.max_total for s in section_scores), _ZERO),
            sections=tuple(section_scores),
            items=MappingProxyType(items),
            provisional=provisional,
        )


def _essay_mark(ref: str, mark: Decimal | None, points: Decimal) -> Decimal | None:
    if mark is None:
        return None
    if not isinstance(mark, Decimal) or not 0 <= mark <= points:
        raise ValueError(f"essay {ref}: mark {mark!r} must be a Decimal from 0 to {points}")
    return mark


def round_half_up(value: Decimal | int, places: int) -> Decimal:
    """``value`` rounded to ``places`` decimals, halves away from zero.

    Python's ``round(8.25, 1)`` gives 8.2 (halves go to the even digit, and
    a float like 6.35 is really 6.3499...); exam scores want 8.3. Negative
    values round symmetrically: -8.25 gives -8.3. Floats are refused: they
    are not exact.
    """
    if isinstance(value, float) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"round_half_up takes a Decimal, not {type(value).__name__}")
    if places < 0:
        raise ValueError(f"places must be 0 or more, not {places}")
    with localcontext(_CONTEXT) as context:
        context.prec = max(context.prec, len(str(abs(int(value)))) + places + 1)
        return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
