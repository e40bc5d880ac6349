"""Which importer reads a file of questions from another tool.

`READERS` is the registry: one line per kind of file, naming the kind (a
stable code), how teachers know it, the file name endings it has, the
importer that reads it (``module:function``, imported only when a file of
that kind is read) and how its content is recognised. Every importer has
the signature ``parse(data, filename, defaults) -> ImportResult`` (see
`itembank.formats.imported`); one that reads levels from the file (LaTeX
ID codes) says ``takes_levels`` and is given the bank's scheme as
``levels=``; one whose problems of some codes leave their question's item
imported (a MathType equation kept as its picture, a LaTeX picture to add
by hand) names them in ``keeps``, and those come back as notes, so that a
problem always means a question left out. Adding a kind is adding its
line; the workspace's import page and ``cbt bank convert`` take it from
here.

How a file's kind is chosen (`reader_for`):

- By its ending, when one kind alone has it: ``.docx`` is Word, ``.tex``
  LaTeX (ex_test), ``.gift`` GIFT, ``.zip`` a QTI package. A file with the
  ending but not the content (a ``.tex`` without ``\\begin{ex}``) goes to
  that importer all the same, which says what is wrong with it in its own
  words.
- By its content, when several kinds share the ending: ``.xml`` is Moodle
  XML or a QTI item by its root element (see above; a ``.xml`` that is
  neither goes to Moodle's importer, which says what is wrong); ``.txt`` is Aiken
  when a line of it is Aiken's key line (``ANSWER: B``: a letter alone
  after ``ANSWER:``, which GIFT never writes), else GIFT when it has GIFT's
  answers in braces (``{=right ~wrong}``, ``{T}``, ``{#1.5}``, ``{}``);
  braces in ``$...$`` math (``$\\frac{1}{2}$``) hold none of ``= ~ #`` and
  do not count.
- By its content alone, in the registry's order, when the ending is none
  of these (``cau-hoi``, ``de.doc.txt.bak``).

QTI 3.0 (`itembank.formats.qti`) is the one kind whose files hold item sets
(a passage and its questions): its result's ``sets`` name them, their
children are among its items with ``set_id``, and whoever stores the result
stores each set whole. A ``.zip`` is a QTI package (its ``imsmanifest.xml``);
a ``.xml`` is Moodle's when its root is ``<quiz>``, QTI's when it is
``<qti-assessment-item>``.

A file no kind recognises gets one ``unknown-kind`` problem naming the
kinds accepted and what each looks like; nothing is guessed.

`convert` is ``cbt bank convert``: the questions of a file as native YAML
item files, one a question (``<id>.yaml``, as ``cbt bank from-xlsx`` writes
them) and one a set with its questions in it, and their pictures in ``media/`` beside them, which is where ``cbt
bank validate`` looks for a folder's pictures. A question with a problem is
not written; the others are.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from itembank.archive import write_atomic
from itembank.errors import Problem, ProblemsError
from itembank.formats.imported import ImportDefaults, ImportResult
from itembank.formats.yaml_format import serialise_item, serialise_set
from itembank.levels import LEGACY, LevelScheme
from itembank.limits import ArchiveLimits, TooLarge, megabytes

# What sniffing reads of a file: the first question of any kind fits in it.
SNIFF_BYTES = 64 * 1024
# The most any importer reads (a Moodle export with its pictures, as one part of a
# release); `convert` refuses a larger file before reading it.
MAX_BYTES = ArchiveLimits().max_entry_bytes
_MEDIA_PATH = re.compile(r"media/[A-Za-z0-9][A-Za-z0-9._-]*")

# A comment cannot hold "-->", so the file's start is read one way only (no backtracking over comments).
_XML_START = re.compile(rb"\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--(?:(?!-->).)*-->\s*)*<quiz[\s>/]", re.S)
_AIKEN_KEY = re.compile(r"^[ \t]*ANSWER[ \t]*:[ \t]*[A-Za-z][ \t]*$", re.M)
# A GIFT answer block: {} (essay), {T} / {FALSE}, or braces holding = ~ or # (not escaped).
_GIFT_ANSWERS = re.compile(r"(?<!\\)\{(?:\s*\}|\s*(?:T|F|TRUE|FALSE)\s*\}|(?:[^{}\\]|\\.)*?(?<!\\)[=~#])", re.I)
_EX_TEST = re.compile(r"\\begin\s*\{(?:ex|bt)\}")
_QTI_ITEM_START = re.compile(
    rb"\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--(?:(?!-->).)*-->\s*)*<(?:[A-Za-z_][\w.-]*:)?qti-assessment-item[\s>/]", re.S
)


def _head_text(data: bytes) -> str:
    """The start of a text file, decoded as its importer would (UTF-8, or UTF-16 with its BOM);
    nothing for a binary file (a zip, a picture: bytes 0 in it), whatever it happens to hold."""
    head = data[:SNIFF_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    if b"\x00" in head:
        return ""
    return head.decode("utf-8-sig", errors="replace")


def is_moodle_xml(data: bytes) -> bool:
    """An XML document whose root is Moodle's ``<quiz>``."""
    head = data[:SNIFF_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="replace").encode("utf-8")
    return _XML_START.match(head.removeprefix(b"\xef\xbb\xbf")) is not None


def is_qti(data: bytes) -> bool:
    """A QTI 3.0 content package (a zip with ``imsmanifest.xml``) or one item's XML file.

    As for Word, the manifest's name is looked for in the zip's bytes."""
    if data.startswith(b"PK\x03\x04"):
        return b"imsmanifest.xml" in data and b"word/document.xml" not in data
    return _QTI_ITEM_START.match(data[:SNIFF_BYTES].removeprefix(b"\xef\xbb\xbf")) is not None


def is_aiken(data: bytes) -> bool:
    """Text with Aiken's key line, ``ANSWER: B``."""
    return _AIKEN_KEY.search(_head_text(data)) is not None


def is_gift(data: bytes) -> bool:
    """Text with GIFT's answers in braces."""
    return _GIFT_ANSWERS.search(_head_text(data)) is not None


def is_ex_test(data: bytes) -> bool:
    """LaTeX with ex_test's questions (``\\begin{ex}``, ``\\begin{bt}``)."""
    return _EX_TEST.search(_head_text(data)) is not None


def is_word(data: bytes) -> bool:
    """A zip holding a Word document's body (``word/document.xml``): a .docx.

    The name is looked for in the bytes (a zip stores each name plainly),
    not by opening the zip: sniffing must cost nothing whatever the file.
    """
    return data.startswith(b"PK\x03\x04") and b"word/document.xml" in data


@dataclass(frozen=True)
class Reader:
    """One kind of file and the importer that reads it."""

    kind: str  # a stable code: "moodle", "gift" ...
    name: str  # how teachers know it, for messages and pages
    extensions: tuple[str, ...]  # lower case, with the dot
    parser: str  # "module:function", imported when used
    looks_like: Callable[[bytes], bool]
    takes_levels: bool = False
    keeps: frozenset[str] = frozenset()  # codes of problems that leave their question's item imported

    def parse(self, data: bytes, filename: str, defaults: ImportDefaults, levels: LevelScheme) -> ImportResult:
        module, _, function = self.parser.partition(":")
        parse = getattr(importlib.import_module(module), function)
        result = (
            parse(data, filename, defaults, levels=levels) if self.takes_levels else parse(data, filename, defaults)
        )
        # An importer with no pictures or notes to give may return a plain ParseResult.
        kept = [p for p in result.problems if p.code in self.keeps]
        return ImportResult(
            result.items,
            [p for p in result.problems if p.code not in self.keeps],
            result.sets,
            media=getattr(result, "media", {}),
            notes=sorted([*getattr(result, "notes", []), *kept], key=lambda p: p.line or 0),
        )

    @property
    def label(self) -> str:
        """The kind for messages: "GIFT (.gift, .txt)"."""
        return f"{self.name} ({', '.join(self.extensions)})"


# Aiken before GIFT: both are .txt, and only Aiken writes ANSWER: lines.
READERS: tuple[Reader, ...] = (
    Reader(
        "docx",
        "Word",
        (".docx",),
        "itembank.formats.docx:parse_docx",
        is_word,
        keeps=frozenset({"mathtype-image", "picture-format"}),
    ),
    Reader(
        "latex",
        "LaTeX ex_test",
        (".tex",),
        "itembank.formats.latex_ex:parse_latex",
        is_ex_test,
        takes_levels=True,
        keeps=frozenset({"not-imported"}),
    ),
    Reader("moodle", "Moodle XML", (".xml",), "itembank.formats.moodle:parse_moodle", is_moodle_xml),
    Reader("qti", "QTI 3.0", (".zip", ".xml"), "itembank.formats.qti:parse_qti", is_qti, takes_levels=True),
    Reader("aiken", "Aiken", (".txt",), "itembank.formats.aiken:parse_aiken", is_aiken),
    Reader("gift", "GIFT", (".gift", ".txt"), "itembank.formats.gift:parse_gift", is_gift),
)

# A .xml that is neither kind's goes to Moodle's importer (the commoner kind), which says what is
# wrong with it (a DOCTYPE, another root) in its own words rather than "unknown kind".
_SHARED_ENDING_FALLBACK = {".xml": "moodle"}

EXTENSIONS: tuple[str, ...] = tuple(dict.fromkeys(e for r in READERS for e in r.extensions))


def kinds() -> str:
    """Every kind accepted, for messages: "Moodle XML (.xml), Aiken (.txt), GIFT (.gift, .txt)"."""
    return ", ".join(r.label for r in READERS)


def extension(filename: str) -> str:
    """The file name's ending, lower case ("de.GIFT" -> ".gift"; none: "")."""
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def reader_for(data: bytes, filename: str) -> Reader | None:
    """The reader of this file by its ending and content (see the module's docstring), or None."""
    ending = extension(filename)
    by_name = [r for r in READERS if ending in r.extensions]
    if len(by_name) == 1:
        return by_name[0]
    found = next((r for r in by_name or READERS if r.looks_like(data)), None)
    if found is None and ending in _SHARED_ENDING_FALLBACK:
        return next(r for r in READERS if r.kind == _SHARED_ENDING_FALLBACK[ending])
    return found


def unknown_kind(filename: str) -> Problem:
    """The problem of a file no reader recognises."""
    if extension(filename) == ".txt":
        why = (
            "a .txt file is read as Aiken (each question's options A. B. ... then a line ANSWER: B) or as GIFT"
            " (answers in braces, {=right ~wrong}), and this one is neither"
        )
    else:
        why = "cbt does not know this kind of file"
    return Problem(
        filename,
        None,
        "unknown-kind",
        f"{why}: import questions as {kinds()}, or items as a spreadsheet (.xlsx) or YAML",
    )


def read_foreign(
    data: bytes, filename: str, defaults: ImportDefaults, levels: LevelScheme = LEGACY
) -> tuple[Reader | None, ImportResult]:
    """The reader of a file and what it reads: the items as drafts of `defaults`, problems and notes.

    Raises what the reader raises for a file past its bounds
    (`itembank.limits.TooLarge`).
    """
    reader = reader_for(data, filename)
    if reader is None:
        return None, ImportResult([], [unknown_kind(filename)])
    return reader, reader.parse(data, filename, defaults, levels)


@dataclass
class Converted:
    """What `convert` wrote, and what it did not and why."""

    kind: str | None  # the file's kind as teachers know it; None when no reader knows it
    written: list[Path] = field(default_factory=list)  # item files
    pictures: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)


def convert(
    path: Path, out: Path, defaults: ImportDefaults, *, levels: LevelScheme = LEGACY, overwrite: bool = False
) -> Converted:
    """Write the questions of `path` without problems as item files into `out`
    (see the module's docstring); files already there are refused (ProblemsError,
    code ``exists``, nothing written) unless `overwrite`."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise TooLarge(
            f"{path}: the file is {megabytes(size)}, more than the {megabytes(MAX_BYTES)} a file of questions"
            " may be: split it into several files",
            megabytes(MAX_BYTES),
        )
    reader, result = read_foreign(path.read_bytes(), str(path), defaults, levels)
    done = Converted(reader.name if reader else None, problems=result.problems, notes=result.notes)
    files = {
        out / f"{s.item.id}.yaml": serialise_item(s.item).encode("utf-8") for s in result.items if not s.item.set_id
    }
    for source_set in result.sets:
        children = [s.item for s in result.items if s.item.set_id == source_set.set.id]
        files[out / f"{source_set.set.id}.yaml"] = serialise_set(source_set.set, children).encode("utf-8")
    for media_path in result.media:
        # The importers name pictures so; anything else would write outside `out`.
        if not _MEDIA_PATH.fullmatch(media_path):
            raise ValueError(f"an importer named a picture {media_path!r}")
    pictures = {out / media_path: content for media_path, content in result.media.items()}
    existing = [target for target in [*files, *pictures] if target.exists()]
    if existing and not overwrite:
        raise ProblemsError(
            "exists",
            f"{len(existing)} file(s) already exist in {out}: use --force to replace them, or another folder",
            [Problem(str(t), None, "exists", "already exists (use --force to replace it)") for t in existing],
        )
    for target, data in [*files.items(), *pictures.items()]:
        write_atomic(target, data)
    done.written, done.pictures = list(files), list(pictures)
    return done
