"""Numbers for people: how every page, report and command writes a
statistic or a score. Kept free of imports, so that any module may use it."""

from __future__ import annotations

# The one rule for writing a score or points: the templates' num() and the
# exam page's script (sent as its "decimal_mark") both follow it.
DECIMAL_MARK = {"vi": ",", "en": "."}


def local_number(value, lang: str) -> str:
    """A number as readers of lang write it: Vietnamese uses a decimal comma (0,5 điểm)."""
    return str(value).replace(".", DECIMAL_MARK.get(lang, "."))


def fmt(x, digits: int = 3) -> str:
    """A statistic for people, the one way every page, report and command
    writes one: fixed decimals, whole numbers as such, an em dash for
    undefined (null). Pages then put the reader's decimal mark in (num())."""
    if x is None:
        return "\u2014"
    if isinstance(x, bool):
        return "yes" if x else ""
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.{digits}f}"
