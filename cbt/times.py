"""Times as readers see them: in a named time zone, with its offset shown.

The database keeps instants (timestamptz, shown by asyncpg in UTC). An exam
has a time zone (`time_zone:` in its file, else the server's
`CBT_TIME_ZONE`); pages not tied to an exam use the server's. Every page
and export shows a time through this module, so nobody reads a UTC hour for a
local one: "07:30 02/12/2026 (GMT+7)" on a page, "2026-12-02T07:30:00+07:00"
in a file.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

from markupsafe import Markup, escape

DEFAULT_ZONE = "Asia/Ho_Chi_Minh"


class UnknownZone(ValueError):
    pass


@functools.cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone of an IANA name (Asia/Ho_Chi_Minh); UnknownZone for anything else."""
    # ZoneInfo reads a file named by its key: refuse what is not a plain name first.
    if not name or name.startswith("/") or ".." in name or "\\" in name:
        raise UnknownZone(name)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownZone(name) from None


def is_zone(name: str) -> bool:
    try:
        zone(name)
    except UnknownZone:
        return False
    return True


def exam_zone(exam, default: str) -> str:
    """The exam's time zone name: its own (exams.time_zone), else `default`
    (the server's CBT_TIME_ZONE)."""
    return (exam["time_zone"] if exam is not None else None) or default


def local(value: dt.datetime, zone_name: str) -> dt.datetime:
    if value.tzinfo is None:  # timestamptz always has one; a naive value here is UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(zone(zone_name))


def offset_label(value: dt.datetime) -> str:
    """GMT+7, GMT+5:30, GMT-3, GMT: the offset of an aware time, as people write it."""
    offset = value.utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0:
        return "GMT"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_label(zone_name: str, at: dt.datetime | None = None) -> str:
    """The offset label a zone has now (or at `at`): it can change with summer time."""
    return offset_label(local(at or dt.datetime.now(dt.UTC), zone_name))


def text(value: dt.datetime, zone_name: str, lang: str = "vi", *, seconds: bool = False) -> str:
    """07:30 02/12/2026 (GMT+7) in Vietnamese, 2026-12-02 07:30 (GMT+7) in English."""
    t = local(value, zone_name)
    clock = t.strftime("%H:%M:%S" if seconds else "%H:%M")
    day = t.strftime("%d/%m/%Y") if lang == "vi" else t.strftime("%Y-%m-%d")
    when = f"{clock} {day}" if lang == "vi" else f"{day} {clock}"
    return f"{when} ({offset_label(t)})"


def iso(value: dt.datetime | None, zone_name: str) -> str | None:
    """ISO 8601 with the zone's offset, to the second: 2026-12-02T07:30:00+07:00."""
    return None if value is None else local(value, zone_name).isoformat(timespec="seconds")


def html(value: dt.datetime | None, zone_name: str, lang: str = "vi", *, seconds: bool = False) -> Markup:
    """A <time> element: the text above, the instant with its offset, the zone's name as its title."""
    if value is None:
        return Markup("")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso(value, zone_name), zone_name, escape(text(value, zone_name, lang, seconds=seconds))
    )
