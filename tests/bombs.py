"""Hostile files, made small and fast: spreadsheets whose XML is written by
hand (so their dimension can lie), zip bombs from one deflate stream reused
for every member, YAML that nests or aliases itself. Nothing big is ever
held in memory or committed; tests and benchmarks/bench_uploads.py use them.
"""

from __future__ import annotations

import functools
import io
import struct
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_SHARED_STRINGS = (
    '<Override PartName="/xl/sharedStrings.xml"'
    ' ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN_NS}"'
    ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)


def xlsx(sheet_xml: Iterable[bytes], *, shared_strings: bytes | None = None) -> bytes:
    """A workbook of one sheet whose XML is given in chunks (streamed into the zip, never joined)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        types = _CONTENT_TYPES.replace("</Types>", _SHARED_STRINGS + "</Types>") if shared_strings else _CONTENT_TYPES
        zf.writestr("[Content_Types].xml", types)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("xl/workbook.xml", _WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            for chunk in sheet_xml:
                out.write(chunk)
        if shared_strings:
            zf.writestr("xl/sharedStrings.xml", shared_strings)
    return buffer.getvalue()


def _text_cell(ref: str, text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;")
    return f'<c r="{ref}" t="inlineStr"><is><t>{escaped}</t></is></c>'


def _column(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def sheet(rows: list[list[str]], *, dimension: str | None = None, far_cell: str | None = None) -> Iterator[bytes]:
    """Sheet XML with these text rows from row 1; `dimension` as declared, true or not;
    `far_cell` a reference such as XFD1048576 given one more cell."""
    yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}">'.encode()
    if dimension:
        yield f'<dimension ref="{dimension}"/>'.encode()
    yield b"<sheetData>"
    for number, cells in enumerate(rows, start=1):
        body = "".join(_text_cell(f"{_column(i)}{number}", text) for i, text in enumerate(cells, start=1) if text)
        yield f'<row r="{number}">{body}</row>'.encode()
    if far_cell:
        row = "".join(ch for ch in far_cell if ch.isdigit())
        yield f'<row r="{row}">{_text_cell(far_cell, "x")}</row>'.encode()
    yield b"</sheetData></worksheet>"


def dimension_liar(header: list[str], rows: list[list[str]]) -> bytes:
    """A few real rows in a sheet that declares A1:XFD1048576, and one cell at its far corner."""
    return xlsx(sheet([header, *rows], dimension="A1:XFD1048576", far_cell="XFD1048576"))


def cell_bomb(cells: int, per_row: int = 100, *, header: list[str] | None = None) -> bytes:
    """`cells` real cells, `per_row` to a row: tens of MB of XML in a zip of tens of KB."""

    def chunks() -> Iterator[bytes]:
        yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>'.encode()
        if header:
            yield (
                "<row>" + "".join(_text_cell(f"{_column(i)}1", h) for i, h in enumerate(header, 1)) + "</row>"
            ).encode()
        row = b"<row>" + b"<c><v>1</v></c>" * per_row + b"</row>"
        for _ in range(-(-cells // per_row)):
            yield row
        yield b"</sheetData></worksheet>"

    return xlsx(chunks())


def row_bomb(rows: int) -> bytes:
    """`rows` empty <row/> elements: nothing to read, a lot to walk through."""

    def chunks() -> Iterator[bytes]:
        yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>'.encode()
        for _ in range(rows // 1000):
            yield b"<row/>" * 1000
        yield b"</sheetData></worksheet>"

    return xlsx(chunks())


# ---------------------------------------------------------------- zips


@functools.cache
def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """(raw deflate stream, CRC-32) of `size` zero bytes, made once."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts, crc, left = [], 0, size
    while left:
        piece = chunk[: min(left, len(chunk))]
        parts.append(compressor.compress(piece))
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    parts.append(compressor.flush())
    return b"".join(parts), crc


def zip_of(members: list[tuple[str, bytes]], zeros: list[tuple[str, int]] = ()) -> bytes:
    """A zip of these files, plus members of that many zero bytes, each honestly declared.

    The zeros are deflated once per size and the same stream reused, so a
    zip that unpacks to gigabytes takes a fraction of a second to make.
    """
    out = io.BytesIO()
    directory = []

    def add(name: str, method: int, data: bytes, crc: int, size: int) -> None:
        encoded = name.encode()
        offset = out.tell()
        out.write(
            struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(encoded), 0)
            + encoded
            + data
        )
        directory.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                method,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )

    for name, data in members:
        add(name, 0, data, zlib.crc32(data), len(data))
    for name, size in zeros:
        stream, crc = _deflated_zeros(size)
        add(name, 8, stream, crc, size)
    start = out.tell()
    for entry in directory:
        out.write(entry)
    out.write(
        struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(directory), len(directory), out.tell() - start, start, 0)
    )
    return out.getvalue()


def lying_member(name: str, real: bytes, declared: int) -> bytes:
    """A zip whose one member declares `declared` bytes but inflates to all of `real`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, real)
    data = bytearray(buffer.getvalue())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        struct.pack_into("<L", data, at + offset, declared)
    return bytes(data)


# ---------------------------------------------------------------- YAML


def deep_yaml(levels: int) -> str:
    """A list in a list in a list ... on one line (libyaml stops at 1,000 levels; PyYAML's
    pure-Python parser recurses until Python's recursion limit, an uncaught RecursionError)."""
    return "- " * levels + "x\n"


def laughs_yaml(levels: int = 9) -> str:
    """Ten aliases of ten aliases of ...: a small file that stands for 10**levels values."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append(f"stem: *a{levels - 1}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- for the reading process's caps


def spin(seconds: float) -> int:
    """Pure-Python work for about `seconds` of processor time; returns 0."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return 0


def allocate(size: int) -> int:
    return len(bytearray(size))


# ---------------------------------------------------------------- releases


def sign_unchecked(folder: Path, key: Any) -> None:
    """Sign a release folder as another tool (or an older cbt) might: without cbt's checks."""
    from itembank import package
    from itembank.archive import MANIFEST, SIGNATURE, FolderFiles
    from itembank.validate import check_release

    files = FolderFiles(folder)
    check = check_release(files, render=False)
    assert check.info is not None
    manifest = package.build_manifest(files, check.info, len(check.items), key)
    data, signature = package.sign_manifest(manifest, key)
    (folder / MANIFEST).write_bytes(data)
    (folder / SIGNATURE).write_bytes(signature)


UNSAFE_STEM = 'Xem hình <img src="x" onerror="alert(1)"> và <script>alert(2)</script> [đáp án](javascript:alert(3))'


def unsafe_release(root: Path) -> tuple[Path, Path, Any]:
    """The demo bank with one stem full of HTML the sanitiser strips, signed without checks:
    (folder, .cbtbank path, key)."""
    import re

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from itembank import package
    from itembank.demo import write_demo_bank

    folder = root / "unsafe"
    write_demo_bank(folder)
    first = sorted((folder / "items").iterdir())[0]
    text = first.read_text(encoding="utf-8")
    first.write_text(re.sub(r"^stem: .*$", "stem: '" + UNSAFE_STEM + "'", text, count=1, flags=re.M), encoding="utf-8")
    key = Ed25519PrivateKey.generate()
    sign_unchecked(folder, key)
    package.pack(folder, root / "unsafe.cbtbank")
    return folder, root / "unsafe.cbtbank", key


def alias_tags_yaml(text_chars: int = 100_000, tags: int = 100_000) -> str:
    """A valid item whose stem is named once and repeated as every tag: ~0.5 MB that stands for 10 GB of text."""
    return (
        "id: ALIAS-1\nversion: 1\ntype: essay\nsubject: toan\ntopic: ham-so\nlevel: 1\npoints: 1\nlang: vi\n"
        f"status: draft\nstem: &s {'x' * text_chars}\ntags: [" + ", ".join(["*s"] * tags) + "]\n"
    )


def die() -> None:
    """As the kernel ends a process past its hard processor limit, or out of memory."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
