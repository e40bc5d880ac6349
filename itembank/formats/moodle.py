"""Moodle XML files, and the Moodle text formats that GIFT and Aiken share.

``parse_moodle(data, filename, defaults)`` reads a Moodle XML question file
(``<quiz><question type=...>``) into draft items (see
`itembank.formats.imported`):

==============  ===========================================================
Moodle type     cbt item
==============  ===========================================================
multichoice     ``single`` (``<single>true``) or ``multiple``; options A, B ...
                in the file's order, ``<shuffleanswers>`` as ``shuffle``
truefalse       ``single`` with options Đúng / Sai (``lang: vi``, else True /
                False), not shuffled: cbt has no single true/false type
shortanswer     ``short``, format text: the first answer worth 100% is the key
numerical       ``short``, format number, the key's ``<tolerance>``
essay           ``essay``
description     skipped (a text without a question), with a note naming it
category        ignored, with a note: the file's defaults give the topic
==============  ===========================================================

Every other type (cloze ``multianswer``, ``match``, ``ddwtos``,
``ddimageortext``, ``gapselect``, ``calculated`` ...) is a ``not-imported``
problem naming the type and the question. A question is named in messages
by its number in the file and its ``<name>``; its id is made from that
number (``imp-C3``), its place is the line of its ``<question>``.

Keys are never guessed. A ``single`` needs an answer worth 100% (none is
``no-key``; two are itembank's ``single-key-count``); a ``multiple``'s keys
are its answers worth more than 0%. cbt has no per-option weights: a
``multiple`` scores all-or-nothing or by the exam's partial-credit rule, so
weights that rule would not give (unequal positive weights, negative ones,
a partly right option of a ``single``) are dropped with a
``weights-not-kept`` note. A short answer has one key in cbt: other
accepted or partly right answers are dropped with an ``answer-not-imported``
note naming them, so the teacher sees what students would no longer score
with; a Moodle wildcard ``*`` in the key is a problem, as cbt would compare
it literally. ``<generalfeedback>`` (and an essay's ``<graderinfo>``) is the
explanation; per-answer and combined feedback, hints, units, penalties and
``answernumbering`` have no place in an item (feedback, hints and units
get a note). Points are the file's defaults: Moodle's ``<defaultgrade>`` is
1 on almost every question, not a teacher's choice of weight.

Text (`markdown_text`): cbt items are Markdown with ``$...$`` math. HTML
(Moodle's editor) is converted, not kept: paragraphs, line breaks, bold,
italic, lists and tables become Markdown, ``<sub> <sup> <u> <code>`` stay as
the plain tags the renderer allows, every other tag and attribute goes with
its text kept (so an item never fails ``unsafe-content`` over a ``style=``),
scripts and styles go with a note, and content cbt cannot show (video,
iframe, MathML, forms ...) is a problem. Math passes through: ``$...$`` as
it is, MathJax's ``\\(...\\)`` and Moodle's TeX filter's ``$$...$$`` become
``$...$``, ``\\[...\\]`` becomes display math ``$$...$$``. Other text is
escaped so that Markdown does not reinterpret it (``2*3*4`` stays that).
Moodle's auto-format and plain text keep their line breaks; Markdown is
taken as it is.

Pictures: ``<img src="@@PLUGINFILE@@/name.png">`` is read from the
``<file name=... encoding="base64">`` embedded beside that text, and a
``data:image/...;base64`` address is decoded; each becomes
``media/<item id>-<name>`` in the item's text and ``media``, and its bytes
are in the result's `ImportResult.media` for the caller to store with the
item. A picture the file does not hold is a ``media-not-embedded`` problem.

XML safety: a document type declaration (the only place entities are
declared, hence billion-laughs bombs and external entities) is refused at
its first line, before anything is expanded or fetched, as ``unsafe-xml``;
Moodle never writes one. The standard library's expat is told so directly
(as defusedxml does; that package is not a dependency, since openpyxl
changes how it reads every workbook when it is installed). The file may be
at most `MAX_BYTES`.

Problem codes: ``too_large``, ``encoding``, ``xml-syntax``, ``unsafe-xml``,
``not-moodle-xml``, ``moodle-syntax``, ``not-imported``, ``no-key``,
``too-many-options``, ``short-key-wildcard``, ``media-not-embedded``,
``bad-media``, ``unsupported-content``, and itembank's own from
`itembank.validate.check_item`, which every imported item passes. Notes
(`ImportResult.notes`, the item is imported): ``category-ignored``,
``description-skipped``, ``weights-not-kept``, ``answer-not-imported``,
``case-not-kept``, ``feedback-not-imported``, ``units-not-imported``,
``content-removed``, ``link-removed``.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from xml.parsers import expat

from itembank.errors import Problem
from itembank.formats.imported import ImportDefaults, ImportResult, draft, item_id
from itembank.formats.yaml_format import SourceItem
from itembank.limits import TOO_LARGE, YAML_MAX_TEXT, ArchiveLimits, megabytes
from itembank.model import Item, ItemType, Option, ShortFormat, ShortKey
from itembank.validate import check_item

# A Moodle XML file carries its pictures inside it (base64), so it may be as
# large as one part of a release; a text file of questions (GIFT, Aiken) as
# large as an item file's text.
MAX_BYTES = ArchiveLimits().max_entry_bytes
TEXT_MAX_BYTES = YAML_MAX_TEXT
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Moodle's name of each type cbt does not have, as a teacher knows it.
UNSUPPORTED_TYPES = {
    "multianswer": "embedded answers (cloze)",
    "match": "matching",
    "randomsamatch": "random short-answer matching",
    "ddwtos": "drag and drop into text",
    "ddimageortext": "drag and drop onto image",
    "ddmarker": "drag and drop markers",
    "gapselect": "select missing words",
    "calculated": "calculated",
    "calculatedsimple": "simple calculated",
    "calculatedmulti": "calculated multichoice",
    "ordering": "ordering",
    "random": "random question",
}


# ---------------------------------------------------------------- shared by the importers


class Collector:
    """What one file gives: items that pass cbt's checks, problems, notes, media."""

    def __init__(self, filename: str, defaults: ImportDefaults) -> None:
        self.filename, self.defaults = filename, defaults
        self.items: list[SourceItem] = []
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        self.media: dict[str, bytes] = {}

    def problem(self, line: int | None, code: str, message: str) -> None:
        self.problems.append(Problem(self.filename, line, code, message))

    def note(self, line: int | None, code: str, message: str) -> None:
        self.notes.append(Problem(self.filename, line, code, message))

    def add(self, item: Item, line: int, label: str, media: dict[str, bytes] | None = None) -> bool:
        """Keep `item` if cbt would accept it; else report why, naming the question."""
        media = media or {}
        source = SourceItem(item, self.filename, line)
        found = check_item(source, media.__contains__)
        for p in found:
            self.problems.append(Problem(p.file, p.line, p.code, f"{label}: {p.message}", p.field))
        if found:
            return False
        self.items.append(source)
        self.media.update(media)
        return True

    def result(self) -> ImportResult:
        return ImportResult(self.items, self.problems, media=self.media, notes=self.notes)


def file_problem(filename: str, line: int | None, code: str, message: str) -> ImportResult:
    """The result of a file that could not be read at all."""
    return ImportResult([], [Problem(filename, line, code, message)])


def too_large(filename: str, size: int, limit: int) -> ImportResult:
    return file_problem(
        filename,
        None,
        TOO_LARGE,
        f"the file is {megabytes(size)}, more than the {megabytes(limit)} allowed: split it into several files",
    )


def decode_text(data: bytes, filename: str) -> tuple[str, None] | tuple[None, ImportResult]:
    """The text of a GIFT or Aiken file: UTF-8 (with or without BOM), or UTF-16 with its BOM."""
    if len(data) > TEXT_MAX_BYTES:
        return None, too_large(filename, len(data), TEXT_MAX_BYTES)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Windows Notepad's "Unicode"
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError:
            pass
    else:
        try:
            return data.decode("utf-8-sig"), None
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            return None, file_problem(
                filename,
                line,
                "encoding",
                "not UTF-8 text (this line has a byte UTF-8 does not allow): save the file as UTF-8"
                " (Notepad: Save as, Encoding UTF-8) and import it again",
            )
    return None, file_problem(filename, 1, "encoding", "not readable UTF-16 text: save the file as UTF-8")


def option_letter(index: int) -> str | None:
    return OPTION_LETTERS[index] if index < len(OPTION_LETTERS) else None


def truefalse_options(lang: str, key: bool) -> tuple[Option, ...]:
    """cbt has no single true/false type: a `single` of two options, in the file's language."""
    true, false = ("Đúng", "Sai") if lang.split("-")[0] == "vi" else ("True", "False")
    return (Option("A", true, key), Option("B", false, not key))


def number_text(text: str) -> str | None:
    """A number as cbt's number format writes it (``1.50`` -> ``1.5``, ``1e3`` -> ``1000``); None if not one."""
    text = text.strip()
    if not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        return None
    plain = format(value.normalize(), "f")
    return "0" if plain in ("-0", "0") else plain


# ---------------------------------------------------------------- Moodle text -> Markdown


@dataclass
class Text:
    """A text converted to cbt's Markdown; `errors` and `notes` are (code, message)."""

    markdown: str
    errors: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)


class Media:
    """One question's pictures as cbt stores them: `stored` maps each media path to its bytes."""

    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id
        self.stored: dict[str, bytes] = {}

    def store(self, name: str, content: bytes) -> str:
        """The media path for `content`, ``media/<item id>-<name>`` in ASCII; the same path for the same bytes."""
        folded = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
        folded = "".join(c for c in folded if not unicodedata.combining(c))
        stem, dot, suffix = re.sub(r"[^A-Za-z0-9._-]+", "-", folded).strip("-.").rpartition(".")
        stem, suffix = (stem, suffix) if dot else (suffix, "")
        stem = stem.strip("-.")[:40] or "image"
        ending = f".{suffix[:10]}" if suffix else ""
        for n in range(1, len(self.stored) + 2):
            path = f"media/{self.owner_id}-{stem}{'' if n == 1 else f'-{n}'}{ending}"
            if self.stored.setdefault(path, content) == content:
                return path
        raise AssertionError("unreachable: a free name is always found")  # pragma: no cover


ImageSource = Callable[[str], tuple[str, bytes] | None]
"""Resolves an <img src> to (file name, bytes), or None when the file does not hold it."""

_DATA_URL = re.compile(r"data:image/([a-z0-9.+-]+);base64,(.*)", re.S | re.I)
# Where a formula may start; $...$ as cbt's renderer reads it: it opens before a
# non-space, closes after one (not after a backslash) and not before a digit.
_MATH_OPENER = re.compile(r"\$\$|\\\(|\\\[|\$")
_INLINE_DOLLARS = re.compile(r"\$([^\s$](?:[^$]*?[^\s$\\])?)\$(?!\d)")
_MATH_CLOSER = {"$$": "$$", "\\(": "\\)", "\\[": "\\]"}
# What Markdown would read as markup anywhere in a line: its punctuation, < before
# a tag, & before a character reference (&copy;), ~~. Only where it matters, so
# that the text stays readable in the editor.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]]|<(?=[A-Za-z/!?])|&(?=#?[A-Za-z0-9]+;)|~(?=~))")
# What it would read as markup at the start of a line: a heading, quote, list, rule or table.
_LINE_START = re.compile(r"([-+=#>|])|([0-9]+)([.)])(?=\s|$)")
_SPACE = re.compile(r"[ \t\r\n\f\v\xa0]+")
_SPACES = re.compile(r" {2,}")
_BARE_BAR = re.compile(r"(?<!\\)\|")
_BREAK = "\ue010"  # a line break inside the text being built
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
# Dropped with their content, with a note: they hold nothing a student reads.
_SILENT = {"script", "style", "head", "title", "template", "noscript"}
# Content cbt cannot show: the question would lose part of what it asks.
_UNSHOWABLE = {
    "iframe", "frame", "video", "audio", "object", "embed", "applet", "svg", "math", "canvas", "form",
    "input", "select", "textarea", "button", "map",
}  # fmt: skip
_BLOCKS = {
    "p", "div", "blockquote", "center", "section", "article", "header", "footer", "aside", "address",
    "figure", "figcaption", "caption", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_MARKS = {
    "b": ("**", "**"), "strong": ("**", "**"), "i": ("*", "*"), "em": ("*", "*"),
    "s": ("~~", "~~"), "del": ("~~", "~~"), "strike": ("~~", "~~"),
    "u": ("<u>", "</u>"), "sub": ("<sub>", "</sub>"), "sup": ("<sup>", "</sup>"), "code": ("<code>", "</code>"),
    "h1": ("**", "**"), "h2": ("**", "**"), "h3": ("**", "**"), "h4": ("**", "**"), "h5": ("**", "**"),
    "h6": ("**", "**"),
}  # fmt: skip


def markdown_text(text: str, fmt: str, images: ImageSource | None, media: Media | None) -> Text:
    """Moodle text of format `fmt` (``html``, ``moodle``, ``plain`` or ``markdown``) as cbt Markdown.

    `images` finds the bytes of a picture the text shows and `media` stores
    them; without them every picture is a ``media-not-embedded`` error.
    """
    if fmt == "markdown":
        return Text(text.strip())
    if fmt == "plain":
        text = html.escape(text).replace("\n", "<br>")
    elif fmt == "moodle":  # Moodle's auto-format: HTML, and a new line is a line break
        text = text.replace("\r\n", "\n").replace("\n", "<br>")
    converter = _HtmlToMarkdown(images, media)
    converter.feed(text)
    converter.close()
    return converter.finish()


def math_spans(text: str, start: int = 0) -> Iterator[tuple[int, int, str]]:
    """(start, end, the formula in cbt's delimiters) of each formula in `text` from `start`.

    ``$...$`` as it is, ``\\(...\\)`` and ``$$...$$`` as ``$...$``,
    ``\\[...\\]`` as ``$$...$$``; inline formulas have their spaces trimmed
    (``$ x$`` would not open). Linear in the text, whatever it holds: each
    closer is looked for once past where it was last found, so openers
    without closers cost nothing more.
    """
    closer_at: dict[str, int] = {}
    at = start
    while (opener := _MATH_OPENER.search(text, at)) is not None:
        begin, inside = opener.start(), opener.end()
        if opener[0] == "$":
            inline = _INLINE_DOLLARS.match(text, begin)  # it stops at the next $
            if inline is None:
                at = begin + 1
                continue
            yield begin, inline.end(), f"${' '.join(inline[1].split())}$"
            at = inline.end()
            continue
        closer = _MATH_CLOSER[opener[0]]
        found = closer_at.get(closer, 0)
        if found != -1 and found < inside:
            found = closer_at[closer] = text.find(closer, inside)
        content = text[inside:found] if found != -1 else ""
        if not content.strip():
            at = begin + 1
            continue
        formula = f"$${content.strip()}$$" if opener[0] == "\\[" else f"${' '.join(content.split())}$"
        yield begin, found + len(closer), formula
        at = found + len(closer)


def escape_markdown(text: str) -> str:
    """Plain text with its formulas as cbt math and everything else escaped for Markdown."""
    out, at = [], 0
    for begin, end, formula in math_spans(text):
        out.append(_MARKDOWN_SPECIAL.sub(r"\\\1", text[at:begin]))
        out.append(formula)
        at = end
    out.append(_MARKDOWN_SPECIAL.sub(r"\\\1", text[at:]))
    return "".join(out)


def escape_line_start(line: str) -> str:
    """A line that Markdown would read as a heading, list or rule, escaped: ``- 5`` -> ``\\- 5``."""
    match = _LINE_START.match(line)
    if match is None:
        return line
    if match[1]:
        return "\\" + line
    return f"{match[2]}\\{match[3]}{line[match.end() :]}"


class _HtmlToMarkdown(HTMLParser):
    """HTML -> Markdown, in one pass over the tags (no tree, so no depth limit)."""

    def __init__(self, images: ImageSource | None, media: Media | None) -> None:
        super().__init__(convert_charrefs=True)
        self.images, self.media = images, media
        self.lines: list[str] = []  # Markdown written so far
        self.last = ""  # what the last written lines were: "block" or "list"
        self.buf: list[str] = []  # the inline text of the block (or table cell) being read
        self.marks: list[tuple[str, int]] = []  # open inline marks: (tag, index in buf)
        self.lists: list[list] = []  # [tag, next number] of each open list
        self.item_start = False  # the next text written starts a list item
        self.rows: list[list[str]] | None = None  # the table being read
        self.cell: list[str] | None = None
        # The block's buffer and marks while a cell's are current.
        self.outside: tuple[list[str], list[tuple[str, int]]] = ([], [])
        self.skip: list[str] = []  # open elements whose content is dropped
        self.pre = 0
        self.errors: list[tuple[str, str]] = []
        self.notes: list[tuple[str, str]] = []

    # -- events

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip:
            if tag not in _VOID:
                self.skip.append(tag)
            return
        if tag in _SILENT or tag in _UNSHOWABLE:
            self._dropped(tag)
            if tag not in _VOID:
                self.skip.append(tag)
            return
        if tag == "br":
            self.buf.append(_BREAK)
        elif tag == "img":
            self._image(dict(attrs))
        elif tag == "a" and dict(attrs).get("href"):
            self.notes.append(("link-removed", f"link to '{dict(attrs)['href']}' removed, its text kept"))
        elif tag == "table":
            self._block()
            self.rows = []
        elif tag == "tr" and self.rows is not None:
            self._end_cell()
            self.rows.append([])
        elif tag in ("td", "th") and self.rows is not None:
            self._end_cell()
            if not self.rows:
                self.rows.append([])
            self.outside = (self.buf, self.marks)
            self.buf, self.marks, self.cell = [], [], []
        elif tag in ("ul", "ol"):
            self._block()
            self.lists.append([tag, 1])
        elif tag == "li":
            self._block()
            self.item_start = bool(self.lists)
        elif tag == "hr":
            self._block()
            self._write("---", "block")
        elif tag == "pre":
            self._block()
            self.pre += 1
        elif tag in _BLOCKS:
            self._block()
        if tag in _MARKS:
            self.marks.append((tag, len(self.buf)))
            self.buf.append(_MARKS[tag][0])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag in self.skip:
                while self.skip.pop() != tag:
                    pass
            return
        if tag in _MARKS:
            self._close_mark(tag)
        if tag in ("td", "th"):
            self._end_cell()
        elif tag == "table" and self.rows is not None:
            self._end_cell()
            rows, self.rows = self.rows, None
            self._table(rows)
        elif tag in ("ul", "ol"):
            self._block()
            if self.lists:
                self.lists.pop()
        elif tag == "li":
            self._block()
        elif tag == "pre":
            self._block()
            self.pre = max(0, self.pre - 1)
        elif tag in _BLOCKS:
            self._block()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self.buf.append(escape_markdown(data).replace("\n", _BREAK))
            return
        self.buf.append(escape_markdown(_SPACE.sub(" ", data)))

    def finish(self) -> Text:
        self._end_cell()
        if self.rows is not None:
            rows, self.rows = self.rows, None
            self._table(rows)
        self._block()
        return Text("\n".join(self.lines).strip(), self.errors, self.notes)

    # -- pieces

    def _dropped(self, tag: str) -> None:
        if tag in _SILENT:
            if tag in ("script", "style"):
                self.notes.append(("content-removed", f"<{tag}> removed: items hold no scripts or styles"))
        else:
            self.errors.append(
                (
                    "unsupported-content",
                    f"it holds <{tag}>, which cbt items cannot show: replace it with text or a picture",
                )
            )

    def _image(self, attrs: dict[str, str | None]) -> None:
        src, alt = (attrs.get("src") or "").strip(), attrs.get("alt") or ""
        found = self.images(src) if self.images is not None else None
        if found is None:
            data = _DATA_URL.fullmatch(src)
            if data is not None:
                try:
                    found = (f"image.{data[1].split('+')[0]}", base64.b64decode(data[2], validate=False))
                except (binascii.Error, ValueError):
                    self.errors.append(("bad-media", "a picture written into the text is not valid base64"))
                    return
        if found is None or self.media is None:
            shown = src if len(src) < 80 else src[:77] + "..."
            self.errors.append(
                (
                    "media-not-embedded",
                    f"picture '{shown}' is not in the file: export the questions from Moodle as Moodle XML"
                    " (which carries the pictures), or add the picture to the item in the workspace",
                )
            )
            return
        path = self.media.store(*found)
        label = _MARKDOWN_SPECIAL.sub(r"\\\1", _SPACE.sub(" ", alt).strip())
        self.buf.append(f"![{label}]({path})")

    def _close_mark(self, tag: str) -> None:
        for i in range(len(self.marks) - 1, -1, -1):
            if self.marks[i][0] == tag:
                break
        else:
            return
        _, at = self.marks.pop(i)
        del self.marks[i:]
        opening, closing = _MARKS[tag]
        inner = "".join(self.buf[at + 1 :])
        core = inner.strip(" " + _BREAK)
        if not core:  # <b> </b>: nothing to mark
            self.buf[at:] = [inner]
            return
        lead, trail = inner[: len(inner) - len(inner.lstrip(" "))], inner[len(inner.rstrip(" ")) :]
        # Markdown's ** must touch the text it marks: spaces go outside.
        self.buf[at:] = [lead, opening, inner.strip(" "), closing, trail]

    def _inline(self) -> list[list[str]]:
        """The current buffer as paragraphs of lines; open marks are dropped here and reopened after."""
        reopen = [tag for tag, _ in self.marks]
        for _, at in self.marks:
            self.buf[at] = ""
        text = "".join(self.buf)
        self.buf, self.marks = [], []
        for tag in reopen:
            self.marks.append((tag, len(self.buf)))
            self.buf.append(_MARKS[tag][0])
        paragraphs: list[list[str]] = [[]]
        for line in text.split(_BREAK):
            line = line.strip() if self.pre else _SPACES.sub(" ", line.strip())
            if line:
                paragraphs[-1].append(line)
            elif paragraphs[-1]:  # two breaks in a row: a new paragraph, as Moodle shows it
                paragraphs.append([])
        return [p for p in paragraphs if p]

    def _block(self) -> None:
        if self.cell is not None:  # a block inside a table cell: a line break there
            self.buf.append(_BREAK)
            return
        paragraphs = self._inline()
        if not paragraphs:
            return
        if self.lists:
            depth = len(self.lists) - 1
            kind = self.lists[-1]
            lines = [escape_line_start(line) for p in paragraphs for line in p]
            if self.item_start:
                marker = "-" if kind[0] == "ul" else f"{kind[1]}."
                kind[1] += 1
                self.item_start = False
            else:
                marker = ""
            indent = "    " * depth
            first = f"{indent}{marker} {lines[0]}" if marker else f"{indent}    {lines[0]}"
            rest = [f"{indent}    {line}" for line in lines[1:]]
            self._write("\\\n".join([first, *rest]), "list")
            return
        for paragraph in paragraphs:
            self._write("\\\n".join(escape_line_start(line) for line in paragraph), "block")

    def _write(self, text: str, kind: str) -> None:
        if self.lines and not (kind == "list" and self.last == "list"):
            self.lines.append("")
        self.lines.append(text)
        self.last = kind

    def _end_cell(self) -> None:
        if self.cell is None or self.rows is None:
            return
        paragraphs = self._inline()
        # A table row is split at every | before its cells are read, math too: $\|x\|$ keeps |x|.
        cell = "<br>".join(line for p in paragraphs for line in p)
        self.rows[-1].append(_BARE_BAR.sub(r"\\|", cell))
        (self.buf, self.marks), self.cell = self.outside, None

    def _table(self, rows: list[list[str]]) -> None:
        rows = [row for row in rows if row]
        if not rows:
            return
        width = max(len(row) for row in rows)
        rows = [row + [""] * (width - len(row)) for row in rows]
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        self._write("\n".join(lines), "block")


# ---------------------------------------------------------------- Moodle XML


def parse_moodle(data: bytes, filename: str, defaults: ImportDefaults) -> ImportResult:
    """The questions of a Moodle XML file as draft items; see the module's docstring."""
    if len(data) > MAX_BYTES:
        return too_large(filename, len(data), MAX_BYTES)
    declared = re.match(rb"\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)", data[:300])
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16 and (declared is None or declared[1].lower().replace(b"_", b"-") in (b"utf-8", b"utf8")):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            return file_problem(
                filename,
                line,
                "encoding",
                "not UTF-8 text (this line has a byte UTF-8 does not allow): export the file from Moodle again,"
                " or save it as UTF-8",
            )
    root, lines, failure = _read_xml(data, filename)
    if failure is not None:
        return failure
    assert root is not None
    if root.tag != "quiz":
        return file_problem(
            filename,
            lines.get(root, 1),
            "not-moodle-xml",
            f"the file's root element is <{root.tag}>, not Moodle's <quiz>: export the questions from Moodle's"
            " question bank as Moodle XML",
        )
    collector = Collector(filename, defaults)
    number = 0
    for element in root:
        line = lines.get(element, 1)
        if element.tag != "question":
            collector.problem(
                line,
                "moodle-syntax",
                f"<{element.tag}> inside <quiz>: a Moodle XML file holds only <question> elements; it was skipped",
            )
            continue
        kind = (element.get("type") or "").strip()
        if kind == "category":
            category = (element.findtext("category/text") or "").strip()
            collector.note(
                line,
                "category-ignored",
                f"Moodle category '{category}' ignored: the items take the topic chosen for the import",
            )
            continue
        number += 1
        _Question(collector, element, number, line).read(kind)
    return collector.result()


def _read_xml(
    data: bytes, filename: str
) -> tuple[ElementTree.Element | None, dict[ElementTree.Element, int], ImportResult | None]:
    """(root, line of each element, None), or (None, {}, the problem)."""
    builder = ElementTree.TreeBuilder()
    lines: dict[ElementTree.Element, int] = {}
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    def refuse(*_: object) -> None:
        raise _UnsafeXml

    # A DTD is where entities are declared: refusing it at its first line means no
    # entity is ever expanded (billion laughs) or fetched (an external entity).
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        message = f"the XML is broken here ({expat.errors.messages.get(e.code, 'unreadable')}): {_XML_HINT}"
        return None, {}, file_problem(filename, e.lineno, "xml-syntax", message)
    except LookupError as e:  # expat asks Python's codecs for an encoding it does not know itself
        message = f"{e}: export the file from Moodle again, or save it as UTF-8"
        return None, {}, file_problem(filename, 1, "encoding", message)
    except _UnsafeXml:
        message = (
            "the file declares a document type (<!DOCTYPE ...>), which Moodle never writes and which can make a file"
            " expand without end or read other files: it was not read; export the questions from Moodle again"
        )
        return None, {}, file_problem(filename, parser.CurrentLineNumber, "unsafe-xml", message)
    return builder.close(), lines, None


class _UnsafeXml(Exception):
    """The file declares a DTD; raised from inside the parser to stop it there."""


_XML_HINT = "export the questions from Moodle again (the file may have been cut short or edited)"


_FORMATS = {"html": "html", "moodle_auto_format": "moodle", "plain_text": "plain", "markdown": "markdown"}


@dataclass
class _Answer:
    text: str  # as written in the file
    fmt: str
    fraction: Decimal
    feedback: str
    files: dict[str, bytes]
    element: ElementTree.Element


class _Question:
    """One <question> being read; reports through the collector, naming the question."""

    def __init__(self, collector: Collector, element: ElementTree.Element, number: int, line: int) -> None:
        self.c, self.element, self.number, self.line = collector, element, number, line
        self.defaults = collector.defaults
        name = " ".join((element.findtext("name/text") or "").split())
        self.label = f"question {number} '{name}'" if name else f"question {number}"
        self.id = item_id(self.defaults, str(number))
        self.media = Media(self.id)
        self.failed = False

    # -- reporting

    def problem(self, code: str, message: str) -> None:
        self.failed = True
        self.c.problem(self.line, code, f"{self.label}: {message}")

    def note(self, code: str, message: str) -> None:
        self.c.note(self.line, code, f"{self.label}: {message}")

    # -- reading

    def read(self, kind: str) -> None:
        reader = {
            "multichoice": self.multichoice,
            "truefalse": self.truefalse,
            "shortanswer": self.shortanswer,
            "numerical": self.numerical,
            "essay": self.essay,
        }.get(kind)
        if kind == "description":
            self.note("description-skipped", "a description (text without a question) is not an item: skipped")
            return
        if reader is None:
            what = UNSUPPORTED_TYPES.get(kind, f"type '{kind}'")
            self.c.problem(
                self.line,
                "not-imported",
                f"{self.label} is a Moodle {what} question (type {kind or 'not given'}), which cbt does not"
                " have: not imported",
            )
            return
        item = reader()
        if item is not None and not self.failed:
            self.c.add(item, self.line, self.label, self.media.stored)

    def text(self, path: str, what: str) -> str:
        """The Markdown of the text at `path` (``questiontext``), with its pictures."""
        node = self.element.find(path)
        if node is None:
            return ""
        return self.convert(node.findtext("text") or "", node.get("format", "html"), self.files(node), what)

    def convert(self, raw: str, fmt: str, files: dict[str, bytes], what: str) -> str:
        def image(src: str) -> tuple[str, bytes] | None:
            if not src.startswith("@@PLUGINFILE@@/"):
                return None
            name = urllib.parse.unquote(src.removeprefix("@@PLUGINFILE@@/").split("?")[0])
            content = files.get(name)
            return None if content is None else (name.rpartition("/")[2], content)

        converted = markdown_text(raw, _FORMATS.get(fmt, "html"), image, self.media)
        for code, message in converted.errors:
            self.problem(code, f"{what}: {message}")
        for code, message in converted.notes:
            self.note(code, f"{what}: {message}")
        return converted.markdown

    def files(self, node: ElementTree.Element) -> dict[str, bytes]:
        """The files embedded beside a text, by their path as @@PLUGINFILE@@ names them."""
        found = {}
        for file in node.findall("file"):
            name = file.get("name") or ""
            path = (file.get("path") or "/").strip("/")
            try:
                content = base64.b64decode("".join((file.text or "").split()), validate=True)
            except (binascii.Error, ValueError):
                self.problem("bad-media", f"embedded file '{name}' is not valid base64: export the file again")
                continue
            found[f"{path}/{name}" if path else name] = content
        return found

    def answers(self) -> list[_Answer]:
        found = []
        for node in self.element.findall("answer"):
            raw = node.get("fraction", "0")
            try:
                fraction = Decimal(raw.strip())
                if not fraction.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                self.problem("moodle-syntax", f"an answer's fraction '{raw}' is not a number")
                fraction = Decimal(0)
            found.append(
                _Answer(
                    node.findtext("text") or "",
                    node.get("format", "moodle_auto_format"),
                    fraction,
                    (node.findtext("feedback/text") or "").strip(),
                    self.files(node),
                    node,
                )
            )
        return found

    def explanation(self) -> str | None:
        parts = [self.text("generalfeedback", "general feedback")]
        if self.element.get("type") == "essay":
            parts.append(self.text("graderinfo", "information for graders"))
        text = "\n\n".join(p for p in parts if p)
        return text or None

    def feedback_note(self, answers: list[_Answer]) -> None:
        combined = ("correctfeedback", "partiallycorrectfeedback", "incorrectfeedback")
        has = any(a.feedback for a in answers)
        has = has or any((self.element.findtext(f"{name}/text") or "").strip() for name in combined)
        has = has or any((hint.findtext("text") or "").strip() for hint in self.element.findall("hint"))
        if has:
            self.note("feedback-not-imported", "feedback on answers and hints are not imported: cbt items have none")

    def flag(self, name: str, default: bool) -> bool:
        value = (self.element.findtext(name) or "").strip().lower()
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        return default

    # -- types

    def multichoice(self) -> Item | None:
        stem = self.text("questiontext", "question text")
        single = self.flag("single", True)
        answers = self.answers()
        options = []
        for i, answer in enumerate(answers):
            letter = option_letter(i)
            if letter is None:
                self.problem("too-many-options", f"{len(answers)} answers: cbt takes at most {len(OPTION_LETTERS)}")
                return None
            text = self.convert(answer.text, answer.fmt, answer.files, f"answer {letter}")
            correct = answer.fraction >= 100 if single else answer.fraction > 0
            options.append(Option(letter, text, correct))
        keys = [o.id for o in options if o.correct]
        if not keys and options:
            self.problem(
                "no-key",
                "no answer is worth 100%: mark the right answer in Moodle and export again"
                if single
                else "no answer is worth more than 0%: mark the right answers in Moodle and export again",
            )
            return None
        weights_note(self.note, single, [(o.id, a.fraction) for o, a in zip(options, answers, strict=True)])
        self.feedback_note(answers)
        return draft(
            self.defaults,
            str(self.number),
            ItemType.SINGLE if single else ItemType.MULTIPLE,
            stem,
            options=tuple(options),
            explanation=self.explanation(),
            media=tuple(self.media.stored),
            shuffle=self.flag("shuffleanswers", True),
        )

    def truefalse(self) -> Item | None:
        stem = self.text("questiontext", "question text")
        answers = self.answers()
        values = {}
        for answer in answers:
            word = answer.text.strip().lower()
            if word not in ("true", "false"):
                self.problem("moodle-syntax", f"a true/false answer reads '{answer.text.strip()}', not true or false")
                return None
            values[word == "true"] = answer.fraction
        keys = [value for value, fraction in values.items() if fraction >= 100]
        if len(keys) != 1:
            self.problem(
                "no-key" if not keys else "single-key-count",
                "neither true nor false is worth 100%" if not keys else "both true and false are worth 100%",
            )
            return None
        self.feedback_note(answers)
        return draft(
            self.defaults,
            str(self.number),
            ItemType.SINGLE,
            stem,
            options=truefalse_options(self.defaults.lang, keys[0]),
            explanation=self.explanation(),
            media=tuple(self.media.stored),
            shuffle=False,
        )

    def shortanswer(self) -> Item | None:
        stem = self.text("questiontext", "question text")
        answers = self.answers()
        key = self.accepted(answers, "short answer")
        if key is None:
            return None
        if "*" in key:
            self.problem(
                "short-key-wildcard",
                f"the answer '{key}' uses Moodle's wildcard *, which cbt's short answers do not have:"
                " write the exact answer",
            )
            return None
        if self.flag("usecase", False):
            self.note("case-not-kept", "Moodle compared this answer's capitals; cbt's text answers ignore them")
        self.feedback_note(answers)
        return draft(
            self.defaults,
            str(self.number),
            ItemType.SHORT,
            stem,
            answer=ShortKey(" ".join(key.split()), ShortFormat.TEXT),
            explanation=self.explanation(),
            media=tuple(self.media.stored),
        )

    def numerical(self) -> Item | None:
        stem = self.text("questiontext", "question text")
        answers = self.answers()
        key = self.accepted(answers, "number")
        if key is None:
            return None
        chosen = next(a for a in answers if a.fraction >= 100)
        canonical = number_text(key)
        tolerance_text = (chosen.element.findtext("tolerance") or "0").strip()
        tolerance = number_text(tolerance_text)
        if canonical is None or tolerance is None:
            wrong = f"the answer '{key}'" if canonical is None else f"tolerance '{tolerance_text}'"
            self.problem("moodle-syntax", f"{wrong} is not a number")
            return None
        units = [(u.text or "").strip() for u in self.element.findall("units/unit/unit_name")]
        units = [u for u in units if u]
        if units:
            self.note("units-not-imported", f"units ({', '.join(units)}) are not imported: students answer the number")
        self.feedback_note(answers)
        return draft(
            self.defaults,
            str(self.number),
            ItemType.SHORT,
            stem,
            answer=ShortKey(canonical, ShortFormat.NUMBER, Decimal(tolerance) if Decimal(tolerance) else None),
            explanation=self.explanation(),
            media=tuple(self.media.stored),
        )

    def accepted(self, answers: list[_Answer], what: str) -> str | None:
        """The key of a short or numerical question: its first answer worth 100%; the others are noted."""
        full = [a for a in answers if a.fraction >= 100]
        if not full:
            self.problem("no-key", f"no {what} is worth 100%: mark the right answer in Moodle and export again")
            return None
        key = full[0].text.strip()
        if key == "*":
            self.problem("short-key-wildcard", "the answer worth 100% is *, any answer: cbt needs the exact answer")
            return None
        others = [a.text.strip() for a in full[1:]]
        partial = [f"{a.text.strip()} ({a.fraction.normalize():f}%)" for a in answers if 0 < a.fraction < 100]
        if others or partial:
            self.note(
                "answer-not-imported",
                f"cbt keeps one answer, '{key}'; not imported: {', '.join(others + partial)}"
                " (students answering these would score 0)",
            )
        return key

    def essay(self) -> Item | None:
        stem = self.text("questiontext", "question text")
        return draft(
            self.defaults,
            str(self.number),
            ItemType.ESSAY,
            stem,
            explanation=self.explanation(),
            media=tuple(self.media.stored),
        )


def weights_note(note: Callable[[str, str], None], single: bool, weights: list[tuple[str, Decimal]]) -> None:
    """Say which option weights cbt does not keep (`weights`: option id, percent)."""

    def percent(value: Decimal) -> str:
        return f"{value.normalize():f}%"

    if single:
        partial = [f"{letter} ({percent(w)})" for letter, w in weights if 0 < w < 100]
        if partial:
            note(
                "weights-not-kept",
                f"partly right answers score 0 in cbt: {', '.join(partial)}",
            )
        return
    positive = {w for _, w in weights if w > 0}
    negative = [letter for letter, w in weights if w < 0]
    if len(positive) > 1 or negative:
        listed = ", ".join(f"{letter} {percent(w)}" for letter, w in weights if w)
        note(
            "weights-not-kept",
            f"option weights ({listed}) are not kept: cbt scores a multiple question all-or-nothing,"
            " or by the exam's partial credit ((right - wrong) / keys); the keys are the options above 0%",
        )
