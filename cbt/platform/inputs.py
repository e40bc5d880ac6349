"""Values from requests: the checks every field shares, so that no handler
passes PostgreSQL a value it cannot hold (and answers 500)."""

from __future__ import annotations

from aiohttp import web

from cbt.platform.errors import NotFound

# PostgreSQL's bigint, the type of every id.
MAX_ID = 2**63 - 1


def has_bad_characters(text: str) -> bool:
    """A NUL (which no PostgreSQL text or jsonb holds) or half of a UTF-16 pair
    (which no UTF-8 holds): never part of a real answer, name or address."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def whole(raw: str | None, high: int = MAX_ID, low: int = 0) -> int | None:
    """raw as a whole number in low..high, or None: ASCII digits only ("²" and
    "٣" are digits to str.isdigit, but not to int), and no number past bigint."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(high)):
        return None
    n = int(raw)
    return n if low <= n <= high else None


def path_id(request: web.Request, name: str, not_found: NotFound, high: int = MAX_ID) -> int:
    """The whole number in the URL's ``{name}``; anything else names no row,
    so it is ``not_found`` (404), as an id nobody has would be."""
    n = whole(request.match_info[name], high)
    if n is None:
        raise not_found
    return n
