"""A Word .docx read safely into lines of styled characters, in document order.

`read_document` gives the body as `Line`s and `Table`s, each character with
its `Style` (bold, italic, underline, red, superscript or subscript), and in
place of one character (`OBJECT`) an equation (`Math`, as TeX) or a picture
(`Picture`). `itembank.formats.docx` reads the teachers' conventions from
that; this module knows WordprocessingML, not questions.

Document model: python-docx opens the package (parts, relationships,
styles) and gives its lxml tree, which is walked here in document order,
because its paragraph and run API leaves out what questions are made of:
equations, pictures inside runs, content controls, hyperlinks' runs, the
red colour of a run. Equations (OMML) go to pandoc (the PyPI wheel
pypandoc-binary ships its binary, so `pip install` is all it takes), whose
texmath is a well-kept OMML-to-TeX converter: fractions, roots, n-ary
operators, accents, delimiters, matrices and equation arrays come out as
TeX that cbt's math (latex2mathml) renders. Pandoc alone would do for the
text too, but it drops run colours, and red is how many teachers mark the
key; so pandoc converts only the equations, all of one file in one call
(about 0.1 s), from a small document made of them.

A file is hostile until read: its size, and what its zip unpacks to, are
bounded (`LIMITS`, through `itembank.archive.ZipFiles`, which counts what
really comes out of each member), and every XML part is parsed without
resolving entities and refused if it has a document type declaration
(Word never writes one; it is how billion-laughs bombs and external
entities are declared), before python-docx or pandoc sees any of it.

Places: every paragraph of the body counts, in document order, those in
tables and empty ones included; a `Line` is one paragraph, or one of its
lines where it has line breaks (Shift+Enter), and carries its paragraph's
number.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
import unicodedata
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import docx
from lxml import etree

from itembank.archive import ZipFiles
from itembank.errors import ItembankError, Problem
from itembank.limits import TOO_LARGE, ArchiveLimits, TooLarge, check_zip, megabytes

# A Word file of a few hundred questions with pictures is a few MB; one of
# 64 MB is a scanned book, not an exam.
MAX_BYTES = 64 * 1024 * 1024
LIMITS = ArchiveLimits(
    max_entries=10_000, max_entry_bytes=64 * 1024 * 1024, max_total_bytes=256 * 1024 * 1024, max_ratio=200
)
PANDOC_SECONDS = 60
OBJECT = "\ufffc"  # the character that stands for an equation or a picture
DOCUMENT_PART = "word/document.xml"

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_V = "urn:schemas-microsoft-com:vml"
_O = "urn:schemas-microsoft-com:office:office"
_WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"


def _w(name: str) -> str:
    return f"{{{_W}}}{name}"


def _m(name: str) -> str:
    return f"{{{_M}}}{name}"


# Containers whose children are read as if they stood in their place.
_TRANSPARENT = {_w(n) for n in ("hyperlink", "smartTag", "ins", "fldSimple", "customXml", "moveTo", "dir", "bdo")}
# Gone from the text: deletions (tracked changes), and field codes (their result is kept).
_SKIPPED = {_w(n) for n in ("del", "moveFrom", "pPr", "rPr", "instrText", "delText", "proofErr")}
_BREAKS = {_w("br"), _w("cr")}
_OFF = {"0", "false", "off", "none"}
# Pictures a web page can show; a MathType preview is often a Windows metafile, which it cannot.
WEB_PICTURES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp"}


@dataclass(frozen=True)
class Style:
    bold: bool = False
    italic: bool = False
    underline: bool = False
    red: bool = False
    vert: str = ""  # "sup", "sub" or ""


PLAIN = Style()


@dataclass
class Math:
    """An equation; `tex` is filled in once pandoc has read them all (None: it could not)."""

    display: bool  # a paragraph of its own (Word's "display" equation)
    style: Style  # how every run of it is formatted (a key can be marked on an equation)
    tex: str | None = None


@dataclass(frozen=True)
class Picture:
    name: str  # the part's file name in the package, e.g. "image3.png"
    data: bytes | None  # None: linked from outside the file, or its part is missing
    alt: str = ""
    mathtype: bool = False  # an OLE object's preview (MathType, Equation Editor 3.0)


@dataclass
class Line:
    place: int  # the paragraph's number
    text: str = ""  # OBJECT where `objects` holds an equation or a picture
    styles: list[Style] = field(default_factory=list)  # one per character of `text`
    objects: dict[int, Math | Picture] = field(default_factory=dict)

    def add(self, text: str, style: Style) -> None:
        # Composed (NFC) per run, as Vietnamese typed in "tổ hợp" mode arrives decomposed.
        text = unicodedata.normalize("NFC", text)
        self.text += text
        self.styles.extend([style] * len(text))

    def add_object(self, thing: Math | Picture, style: Style = PLAIN) -> None:
        self.objects[len(self.text)] = thing
        self.add(OBJECT, style)

    def is_blank(self) -> bool:
        return not self.text.strip()


@dataclass
class Table:
    place: int  # the number of its first paragraph
    rows: list[list[list[Line]]]  # rows of cells, each cell its lines


Block = Line | Table


@dataclass
class Document:
    blocks: list[Block]
    equations: list[Math]
    # Why the equations could not be read (pandoc missing or failing); None when they were.
    math_failure: str | None = None


def read_document(data: bytes, filename: str) -> tuple[Document | None, list[Problem]]:
    """The body of a .docx file's bytes; (None, [the problem]) when it cannot be read."""

    def refuse(code: str, message: str) -> tuple[None, list[Problem]]:
        return None, [Problem(filename, None, code, message)]

    if len(data) > MAX_BYTES:
        return refuse(
            TOO_LARGE,
            f"the file is {megabytes(len(data))}, more than the {megabytes(MAX_BYTES)} allowed:"
            " make the pictures smaller (Word: Compress Pictures) or split the questions into several files",
        )
    if not data.startswith(b"PK"):
        hint = (
            " (it is an old Word .doc: open it in Word and Save As .docx)"
            if data.startswith(b"\xd0\xcf\x11\xe0")
            else ""
        )
        return refuse("not-docx", f"not a Word .docx file{hint}: save it from Word as .docx and import it again")
    try:
        check_zip(data, filename, LIMITS)
        files = ZipFiles(data, filename, LIMITS)
        names = files.names()
        if DOCUMENT_PART not in names:
            return refuse(
                "not-docx",
                f"the file is a zip but holds no {DOCUMENT_PART}, so it is not a Word document:"
                " save it from Word as .docx and import it again",
            )
        for name in names:
            if name.lower().endswith((".xml", ".rels")):
                problem = _unsafe_xml(files.read(name), name, filename)
                if problem is not None:
                    return None, [problem]
    except TooLarge as e:
        return refuse(TOO_LARGE, e.message.removeprefix(f"{filename}: "))
    except ItembankError as e:
        code = "not-docx" if e.code == "bad-archive" else e.code
        reason = e.message.removeprefix(f"{filename}: ")
        return refuse(code, f"{reason}: save the file from Word as .docx and import it again")
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as e:  # python-docx raises KeyError, ValueError ... on a broken package
        return refuse(
            "not-docx",
            f"Word cannot have written this file ({type(e).__name__}: {e}): open it in Word, Save As .docx,"
            " and import it again",
        )
    root = document.element
    if root.tag != _w("document") or root.find(_w("body")) is None:
        return refuse(
            "not-docx",
            f"{DOCUMENT_PART} holds no document body (<w:body>): the file is damaged or not from Word;"
            " open it in Word, Save As .docx, and import it again",
        )
    return _Walker(document).read(), []


def _unsafe_xml(data: bytes, name: str, filename: str) -> Problem | None:
    unsafe = Problem(
        filename,
        None,
        "unsafe-xml",
        f"the part {name} declares a document type or entities, which Word never writes and which can make"
        " a file expand without end or read other files: it was not read; save the questions from Word again",
    )
    # Found before parsing (libxml2 would refuse a bomb too, but as a syntax error); UTF-16 either way round.
    if any(mark in data for mark in _DOCTYPE):
        return unsafe
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        return Problem(
            filename,
            None,
            "not-docx",
            f"the part {name} is not well-formed XML ({e.msg}): the file is damaged;"
            " open it in Word, Save As .docx, and import it again",
        )
    info = root.getroottree().docinfo
    if info.internalDTD is not None or info.externalDTD is not None or info.doctype:
        return unsafe
    return None


_DOCTYPE = tuple("<!DOCTYPE".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")) + tuple(
    "<!ENTITY".encode(encoding) for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)


class _Walker:
    """Walks python-docx's element tree into Lines and Tables, counting paragraphs."""

    def __init__(self, document: docx.document.Document) -> None:
        self.document = document
        self.part = document.part
        self.place = 0
        self.equations: list[Math] = []
        self._omml: list[etree._Element] = []
        self._char_styles = self._character_styles()

    def read(self) -> Document:
        blocks: list[Block] = []
        self._blocks(self.document.element.find(_w("body")), blocks)
        failure = None
        if self._omml:
            texs, failure = equations_to_tex(self._omml)
            for math, tex in zip(self.equations, texs, strict=True):
                math.tex = tex
        return Document(blocks, self.equations, failure)

    # -- blocks

    def _blocks(self, parent: etree._Element, out: list[Block]) -> None:
        for child in parent:
            if child.tag == _w("p"):
                out.extend(self._paragraph(child))
            elif child.tag == _w("tbl"):
                out.append(self._table(child))
            elif child.tag == _w("sdt"):
                content = child.find(_w("sdtContent"))
                if content is not None:
                    self._blocks(content, out)
            elif child.tag == _w("customXml"):
                self._blocks(child, out)

    def _table(self, tbl: etree._Element) -> Table:
        table = Table(self.place + 1, [])
        for tr in tbl.iter(_w("tr")):
            if _nearest_table(tr) is not tbl:
                continue  # a row of a table inside a cell: read with its cell
            row: list[list[Line]] = []
            for tc in tr.iter(_w("tc")):
                if _nearest_row(tc) is not tr:
                    continue  # a cell of a table inside a cell
                cell: list[Block] = []
                self._blocks(tc, cell)
                # A table inside a cell is flattened into the cell's lines.
                row.append([line for block in cell for line in _lines_of(block)])
            table.rows.append(row)
        return table

    def _paragraph(self, p: etree._Element) -> list[Line]:
        self.place += 1
        lines = [Line(self.place)]
        self._inline(p, lines)
        return lines

    # -- inline content

    def _inline(self, parent: etree._Element, lines: list[Line]) -> None:
        for child in parent:
            tag = child.tag
            if tag == _w("r"):
                self._run(child, lines)
            elif tag == _m("oMathPara"):
                for math in child.iter(_m("oMath")):
                    self._math(math, lines, display=True)
            elif tag == _m("oMath"):
                self._math(child, lines, display=False)
            elif tag in _TRANSPARENT:
                self._inline(child, lines)
            elif tag == _w("sdt"):
                content = child.find(_w("sdtContent"))
                if content is not None:
                    self._inline(content, lines)

    def _run(self, r: etree._Element, lines: list[Line]) -> None:
        style = self._style(r.find(_w("rPr")))
        for child in r:
            tag = child.tag
            if tag == _w("t"):
                lines[-1].add(child.text or "", style)
            elif tag == _w("tab"):
                lines[-1].add("\t", style)
            elif tag in _BREAKS:
                lines.append(Line(self.place))
            elif tag == _w("noBreakHyphen"):
                lines[-1].add("-", style)
            elif tag == _w("sym"):
                lines[-1].add(_symbol(child), style)
            elif tag == _w("drawing"):
                for blip in child.iter(f"{{{_A}}}blip"):
                    lines[-1].add_object(self._picture(blip.get(f"{{{_R}}}embed") or blip.get(f"{{{_R}}}link"), child))
            elif tag in (_w("pict"), _w("object")):
                self._vml(child, lines)
            elif tag == f"{{{_MC}}}AlternateContent":
                choice = child.find(f"{{{_MC}}}Choice")
                if choice is not None:
                    self._run(_as_run(choice), lines)

    def _vml(self, element: etree._Element, lines: list[Line]) -> None:
        ole = element.find(f"{{{_O}}}OLEObject")
        mathtype = ole is not None and (ole.get("ProgID") or "").startswith("Equation.")
        for data in element.iter(f"{{{_V}}}imagedata"):
            picture = self._picture(data.get(f"{{{_R}}}id"), element)
            if mathtype:
                picture = Picture(picture.name, picture.data, picture.alt, mathtype=True)
            lines[-1].add_object(picture)

    def _picture(self, rid: str | None, element: etree._Element) -> Picture:
        doc_pr = next(element.iter(f"{{{_WP}}}docPr"), None)
        alt = (doc_pr.get("descr") or "") if doc_pr is not None else ""
        rel = self.part.rels.get(rid) if rid else None
        if rel is None or rel.is_external:
            target = rel.target_ref if rel is not None else "?"
            return Picture(PurePosixPath(target).name or "picture", None, alt)
        part = rel.target_part
        return Picture(PurePosixPath(str(part.partname)).name, part.blob, alt)

    def _math(self, omath: etree._Element, lines: list[Line], display: bool) -> None:
        runs = [self._style(r.find(_w("rPr"))) for r in omath.iter(_m("r"))]
        # The equation is marked as a key only if every run of it is.
        style = Style(
            bold=bool(runs) and all(s.bold for s in runs),
            underline=bool(runs) and all(s.underline for s in runs),
            red=bool(runs) and all(s.red for s in runs),
        )
        math = Math(display, style)
        self.equations.append(math)
        self._omml.append(omath)
        lines[-1].add_object(math, style)

    # -- formatting

    def _character_styles(self) -> dict[str, Style]:
        styles: dict[str, Style] = {}
        try:
            root = self.document.styles.element
        except Exception:  # a package without styles.xml: python-docx may make or miss one
            return styles
        for style in root.iter(_w("style")):
            if style.get(_w("type")) == "character" and style.get(_w("styleId")):
                styles[style.get(_w("styleId"))] = self._style(style.find(_w("rPr")), plain=True)
        return styles

    def _style(self, rpr: etree._Element | None, *, plain: bool = False) -> Style:
        if rpr is None:
            return PLAIN
        base = PLAIN
        if not plain:
            ref = rpr.find(_w("rStyle"))
            if ref is not None:
                base = self._char_styles.get(ref.get(_w("val")) or "", PLAIN)

        def flag(name: str, default: bool) -> bool:
            element = rpr.find(_w(name))
            if element is None:
                return default
            return (element.get(_w("val")) or "true").lower() not in _OFF

        color = rpr.find(_w("color"))
        red = _is_red(color.get(_w("val")) or "") if color is not None else base.red
        vert_align = rpr.find(_w("vertAlign"))
        vert = base.vert
        if vert_align is not None:
            value = vert_align.get(_w("val"))
            vert = {"superscript": "sup", "subscript": "sub"}.get(value or "", "")
        return Style(
            bold=flag("b", base.bold),
            italic=flag("i", base.italic),
            underline=flag("u", base.underline),
            red=red,
            vert=vert,
        )


def _is_red(value: str) -> bool:
    """FF0000 and the near-reds teachers pick (Word's Dark Red C00000, E00000, FF3333 ...)."""
    if len(value) != 6:
        return False
    try:
        r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return False
    return r >= 0xA0 and g <= 0x70 and b <= 0x70 and r - max(g, b) >= 0x80


def _symbol(sym: etree._Element) -> str:
    """A w:sym character; Symbol-font code points (F0xx) are mapped where they are common."""
    try:
        code = int(sym.get(_w("char")) or "", 16)
    except ValueError:
        return ""
    if 0xF000 <= code <= 0xF0FF:
        code -= 0xF000
        return _SYMBOL_FONT.get(code, chr(code) if 0x20 <= code < 0x7F else "")
    return chr(code)


# The Symbol font's letters and signs at their ASCII places (the common ones).
_SYMBOL_FONT = {
    **dict(zip(range(0x41, 0x5B), "ΑΒΧΔΕΦΓΗΙϑΚΛΜΝΟΠΘΡΣΤΥςΩΞΨΖ", strict=True)),
    **dict(zip(range(0x61, 0x7B), "αβχδεφγηιϕκλμνοπθρστυϖωξψζ", strict=True)),
    0xA3: "≤", 0xB3: "≥", 0xB1: "±", 0xB4: "×", 0xB8: "÷", 0xB9: "≠", 0xBB: "≈", 0xA5: "∞",
    0xAE: "→", 0xDE: "⇒", 0xDB: "⇔", 0xCE: "∈", 0xCF: "∉", 0xC7: "∩", 0xC8: "∪", 0xD6: "√",
    0xB0: "°", 0xD0: "∠", 0x5E: "⊥", 0x22: "∀", 0x24: "∃", 0xC6: "∅", 0xCC: "⊂", 0xCD: "⊆",
}  # fmt: skip


def _as_run(choice: etree._Element) -> etree._Element:
    """mc:Choice holds what a run holds (a drawing); read it as a run without properties."""
    run = etree.Element(_w("r"))
    for child in choice:
        run.append(copy.deepcopy(child))
    return run


def _nearest_table(element: etree._Element) -> etree._Element | None:
    return next(element.iterancestors(_w("tbl")), None)


def _nearest_row(element: etree._Element) -> etree._Element | None:
    return next(element.iterancestors(_w("tr")), None)


def _lines_of(block: Block) -> list[Line]:
    if isinstance(block, Line):
        return [block]
    return [line for row in block.rows for cell in row for line in cell]


# ---------------------------------------------------------------- equations


def equations_to_tex(equations: list[etree._Element]) -> tuple[list[str | None], str | None]:
    """TeX for each OMML m:oMath element, by one pandoc run; (texs, None) or ([None ...], why not).

    Each equation goes into a paragraph of a small document of its own,
    after a marker naming its index, so an equation pandoc cannot read (or
    leaves empty) is None without shifting the others.
    """
    holder = docx.Document()
    for index, omath in enumerate(equations):
        paragraph = holder.add_paragraph(f"cbteq{index} ")
        paragraph._p.append(copy.deepcopy(omath))
    buffer = io.BytesIO()
    holder.save(buffer)
    nothing: list[str | None] = [None] * len(equations)
    try:
        import pypandoc  # here, so that a file without equations needs no pandoc

        pandoc = pypandoc.get_pandoc_path()
        done = subprocess.run(
            [pandoc, "--from", "docx", "--to", "json", "-"],
            input=buffer.getvalue(),
            capture_output=True,
            timeout=PANDOC_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return nothing, f"pandoc took more than {PANDOC_SECONDS} s over the equations"
    except (OSError, ImportError) as e:
        return nothing, f"pandoc, which reads Word's equations, is not installed ({e}): pip install pypandoc-binary"
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no reason given"]
        return nothing, f"pandoc could not read the equations ({reason[0]})"
    texs = list(nothing)
    for block in json.loads(done.stdout).get("blocks", []):
        index = None
        for inline in block.get("c", []) if block.get("t") in ("Para", "Plain") else []:
            if inline.get("t") == "Str" and inline["c"].startswith("cbteq") and inline["c"][5:].isdigit():
                index = int(inline["c"][5:])
            elif inline.get("t") == "Math" and index is not None and index < len(texs):
                tex = clean_tex(inline["c"][1])
                if tex:
                    texs[index] = f"{texs[index]} {tex}" if texs[index] else tex
    return texs, None


def clean_tex(tex: str) -> str:
    """Pandoc's TeX on one line, without the spacing it leaves at either end
    (``\\right.\\ ``), which would stop ``$...$`` from closing in Markdown."""
    tex = " ".join(tex.split())
    while tex.endswith("\\"):  # "\\ " at the end, its space gone with the split
        tex = tex[:-1].rstrip()
    return tex
