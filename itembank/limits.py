"""Bounds on what reading an uploaded file may cost.

A file that arrives from a browser, a USB stick or an e-mail is hostile
until read: a few kilobytes can declare a million-row sheet, a zip can
unpack to gigabytes, a YAML file can nest or alias itself into a huge tree.
Each reader checks the shape it is given against these bounds *before*
doing the work the shape asks for, and refuses with :class:`TooLarge`,
whose message says which limit was reached and what to do about it.

What is counted is what is really there: the bytes a zip's directory says
its members unpack to (Python's zipfile never returns more than that, and
fails on a member that inflates to more), the rows and cells present in a
sheet (not its declared dimension), the YAML nodes as composed (an alias
counts as many nodes as the tree it repeats).
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from dataclasses import dataclass

from itembank.errors import ItembankError


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what a ``.cbtbank`` may unpack to."""

    max_entries: int = 200_000
    max_entry_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 2 * 1024 * 1024 * 1024
    # Text compresses about 5:1; only a bomb goes past a few hundred to one.
    max_ratio: int = 200
    ratio_applies_above: int = 1024 * 1024  # tiny files can have any ratio


# What zipfile raises on a damaged or hostile archive, besides BadZipFile: a
# flipped byte in a directory entry can claim "zip file version 8.4", which
# zipfile answers with NotImplementedError.
UNREADABLE_ZIP = (zipfile.BadZipFile, ValueError, OSError, EOFError, struct.error, NotImplementedError)

# The same code as the web's refusal of a request body over its limit.
TOO_LARGE = "too_large"

# YAML: an item is at most five levels deep (list, item, statements, statement,
# text), so 32 is generous; a document of more nodes or text than this, once
# aliases are counted at the size they expand to, is not an item file (a
# release of 10,000 items in one file is about 400,000 nodes and 10 million
# characters).
YAML_MAX_DEPTH = 32
YAML_MAX_NODES = 2_000_000
YAML_MAX_TEXT = 50_000_000


class TooLarge(ItembankError):
    """A file is larger, or unpacks or expands to more, than a reader accepts.

    `limit` is the bound that was reached in a form any language can show
    ("64 MB", "60 s", or a plain count such as "50000"); the web's
    translated message quotes it, the English `message` says what it counts.
    """

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(TOO_LARGE, message)
        self.limit = limit


def megabytes(size: int) -> str:
    """5242880 -> "5 MB"; rounded up, so that a size just over a limit never reads as the limit."""
    return f"{math.ceil(size * 10 / (1024 * 1024)) / 10:g} MB"


_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
# A central directory entry is 46 bytes plus its name and extra fields; a
# real one rarely passes 200. More than this per declared entry is padding
# that would only make zipfile build objects for nothing.
_DIRECTORY_BYTES_PER_ENTRY = 1024


def directory_size(data: bytes) -> tuple[int, int] | None:
    """(entries, central directory bytes) as the end record declares them; None if there is none.

    Read here, before zipfile builds an object per entry of a directory that
    may declare millions of them.
    """
    end = data.rfind(_EOCD, max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or len(data) < end + 22:
        return None
    entries, size = struct.unpack_from("<HL", data, end + 10)
    locator = end - 20
    if (entries == 0xFFFF or size == 0xFFFFFFFF) and locator >= 0 and data[locator : locator + 4] == _ZIP64_LOCATOR:
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if offset + 56 <= len(data) and data[offset : offset + 4] == _ZIP64_EOCD:
            entries, size = struct.unpack_from("<QQ", data, offset + 32)
    return entries, size


def declared_total(data: bytes) -> int | None:
    """What a zip's files unpack to, by its directory; None if it is not a readable zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(info.file_size for info in archive.infolist())
    except UNREADABLE_ZIP:
        return None


def check_zip(data: bytes, label: str, limits: ArchiveLimits) -> None:
    """Refuse a zip whose directory declares more than `limits` allow
    (entries, bytes of one member, bytes in all), before anything is unpacked.

    The ratio of `limits` is left to :class:`itembank.archive.ZipFiles`.
    Raises :class:`TooLarge`; a file that is not a zip at all passes, for
    the reader to refuse in its own words.
    """
    declared = directory_size(data)
    if declared is None:
        return
    entries, directory_bytes = declared
    if entries > limits.max_entries or directory_bytes > limits.max_entries * _DIRECTORY_BYTES_PER_ENTRY:
        raise TooLarge(
            f"{label}: the archive holds {entries:,} files, more than the {limits.max_entries:,} allowed:"
            " remove what does not belong in it, or split it",
            str(limits.max_entries),
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except UNREADABLE_ZIP:
        return  # not a readable zip: the reader says so
    for info in infos:
        if info.file_size > limits.max_entry_bytes:
            raise TooLarge(
                f"{label}: '{info.filename}' unpacks to {megabytes(info.file_size)}, more than the"
                f" {megabytes(limits.max_entry_bytes)} allowed for one part: leave out what does not belong"
                " in it (unused sheets, rows and columns, large pictures), or split the file",
                megabytes(limits.max_entry_bytes),
            )
    check_total(sum(info.file_size for info in infos), label, limits)


def check_total(unpacked: int, label: str, limits: ArchiveLimits) -> None:
    if unpacked > limits.max_total_bytes:
        raise TooLarge(
            f"{label}: the file unpacks to more than {megabytes(limits.max_total_bytes)}, the most"
            " allowed: leave out what does not belong in it (unused sheets, rows and columns, large pictures),"
            " or split it",
            megabytes(limits.max_total_bytes),
        )
