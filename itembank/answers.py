"""Short answers: how a candidate's text is normalised and compared with the key.

The rules per `ShortFormat` are stated in `itembank.model.ShortFormat`. Both
the validator (is the key itself well-formed?) and scoring (does this
answer match?) use this one module, so they can never disagree.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from itembank.model import ShortFormat, ShortKey

VN_NUMERIC_MAX_LENGTH = 4
_VN_NUMERIC = re.compile(r"-?[0-9]+(,[0-9]+)?")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_SPACES = re.compile(r"\s+")


def normalise_short_answer(answer: str, fmt: ShortFormat = ShortFormat.VN_NUMERIC) -> str | None:
    """The answer in the canonical form of `fmt`, or None if it does not fit it.

    >>> normalise_short_answer(" -1.5 ")
    '-1,5'
    >>> normalise_short_answer("12345") is None  # Part III allows 4 characters
    True
    >>> normalise_short_answer("075", ShortFormat.NUMBER)
    '75'
    """
    if fmt == ShortFormat.TEXT:
        text = unicodedata.normalize("NFC", answer).casefold()
        return _SPACES.sub(" ", text).strip()
    compact = _SPACES.sub("", answer)
    if fmt == ShortFormat.VN_NUMERIC:
        compact = compact.replace(".", ",")
        if len(compact) > VN_NUMERIC_MAX_LENGTH or not _VN_NUMERIC.fullmatch(compact):
            return None
        return compact
    number = _number(compact)
    return None if number is None else _plain(number)


def check_short_answer(answer: str, key: ShortKey) -> bool:
    """True if `answer` scores against `key` under the key's format and tolerance."""
    given = normalise_short_answer(answer, key.format)
    expected = normalise_short_answer(key.canonical, key.format)
    if given is None or expected is None:
        return False
    if key.format == ShortFormat.TEXT:
        return given == expected
    given_value, expected_value = _number(given), _number(expected)
    if given_value is None or expected_value is None:  # pragma: no cover - normalised above
        return False
    if key.tolerance is not None:
        return abs(given_value - expected_value) <= key.tolerance
    if key.format == ShortFormat.VN_NUMERIC:
        return given == expected  # exact, as on the national answer sheet
    return given_value == expected_value


def short_key_problem(key: ShortKey) -> str | None:
    """Why the key itself is unusable (for the validator), or None."""
    if key.format == ShortFormat.TEXT:
        if key.tolerance is not None:
            return "a tolerance only makes sense for numeric answers: remove it"
        if not normalise_short_answer(key.canonical, key.format):
            return "the answer key is empty: write the expected answer"
        return None
    if key.tolerance is not None and key.tolerance < 0:
        return f"tolerance {key.tolerance} is negative: use 0 or more, e.g. 0.05"
    if normalise_short_answer(key.canonical, key.format) is not None:
        return None
    if key.format == ShortFormat.VN_NUMERIC:
        return (
            f"answer key '{key.canonical}' does not fit Part III: use at most 4 characters"
            " from digits, a leading minus and a decimal comma, e.g. 75 or -1,5"
            " (or set format: number or format: text)"
        )
    return f"answer key '{key.canonical}' is not a number: write e.g. 12.5 or -0,75"


def _number(text: str) -> Decimal | None:
    text = text.replace(",", ".")
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        return None


def _plain(number: Decimal) -> str:
    """Decimal without exponent or trailing zeros: 075.50 -> 75.5, -0 -> 0."""
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "0") else text
