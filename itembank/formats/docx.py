"""Questions from a Word (.docx) file written the Vietnamese way.

``parse_docx(data, filename, defaults)`` reads the conventions of the tools
teachers already use (Azota's "cấu trúc đề thi chuẩn", McMIX, HC-Mix) into
draft items (`itembank.formats.imported`); `DocxResult.media` holds the
pictures the items refer to. The document model is `itembank.formats.wordml`
(python-docx for the package, pandoc for the equations: why, there).

The conventions read:

- A question starts a paragraph with ``Câu N`` (or ``Bài N``, ``Question N``)
  and ``.``, ``:``, ``)`` or a space; its stem runs over the paragraphs,
  tables and pictures up to the options. Sections ``Phần I``, ``PHẦN II``,
  ``Part 1`` may restart the numbering: a question in a section is named
  ``Câu 3 (PHẦN II)`` and its id is ``<prefix>-CII-3``.
- Options ``A.`` .. ``F.`` (or ``A)``, ``A:``) start a paragraph; several may
  share one, separated by tabs (or two spaces); they may also sit in the
  cells of a table. Lines after an option belong to it (a picture).
- True/false-4 statements ``a)`` .. ``d)``, each starting a paragraph (or a
  table row whose other cells say Đ/S, or X under a "Đúng"/"Sai" header).
- The key of an option, or the truth of a statement: its letter, or all of
  its text, underlined, bold or red (``FF0000`` and near reds such as Word's
  Dark Red ``C00000``). A formatting that marks *every* option (all the
  letters bold, a common style) is formatting, not a key; for statements
  this holds for bold only, so all four true is marked by underline or red.
- ``Đáp án: -1,5`` in a question: a short answer's key (cbt's short-answer
  syntax), or the letter of the key (``Đáp án: B``), or ``ĐSĐS``.
- An answer table at the end, after a paragraph "Bảng đáp án" or "ĐÁP ÁN":
  ``1-A``, ``1.A``, ``1A``, ``Câu 1: A`` in paragraphs or cells, a row of
  numbers over a row of answers, or rows of number and answer; Đ/S strings
  (``ĐSĐS``, ``a) Đ b) S ...``) for true/false-4, and ``Câu 5: -1,5`` for a
  short answer. Section headings inside it say which part the numbers are
  of. After the table, a "Hướng dẫn giải" / "Lời giải chi tiết" heading
  starts worked solutions: each ``Câu N`` block there is question N's
  explanation.
- ``Lời giải``, ``Hướng dẫn giải`` (alone or followed by ``:`` / ``.``) or
  ``Giải thích:`` in a question: the rest of the question is its worked
  solution, the item's explanation.
- Not read: text boxes and shapes, footnotes, comments, and Word's
  automatic numbering (a question numbered by a numbered list has no
  ``Câu N`` text: type the numbers); a key shown only by highlighting.
- Equations (OMML) become ``$...$`` (``$$...$$`` where Word shows one on its
  own line); pictures become ``![](media/<id>-N.png)`` in the item and its
  `media`; MathType objects fall back to their preview picture.
- Bold, italic, superscript and subscript survive in stems and explanations
  (Markdown, ``<sup>``); options and statements keep only superscript and
  subscript, since their bold or underline is the key. Text is escaped so
  Markdown never reinterprets it (``2*3*4``, ``<b``, ``$5``).
- A question with options is ``single``; it is ``multiple`` only when its
  stem says so ("chọn nhiều đáp án", "nhiều đáp án đúng", "select all that
  apply"): Part I is single, so two keys elsewhere are a problem. Statements
  make ``truefalse4``; a ``Đáp án:`` value without options ``short``; a
  question in a section called "Tự luận" (or "Essay") without any of these
  ``essay``. Paragraphs before the first question (the school, the exam's
  title, the time allowed) are not read.

Keys are never guessed. Every problem is ``file:paragraph: message``, the
paragraph counted in document order (those in tables and empty ones
included) and the message naming the question as written. A question with
a problem gives no item. Problem codes: ``too_large``, ``not-docx``,
``unsafe-archive``, ``unsafe-xml``, ``no-questions``, ``no-key``,
``two-keys``, ``key-conflict``, ``answer-value``, ``options-order``,
``statements-order``, ``mixed-question``, ``duplicate-question``,
``table-after-options``, ``bad-equation``, ``picture-missing``,
``answer-unknown-question``, ``answer-ambiguous``, ``answer-table-syntax``,
and itembank's own from `itembank.validate.check_item`, which every item
passes. Two codes are **warnings** (`WARNINGS`): the item is imported all
the same, and the warning belongs beside it in the preview:
``mathtype-image`` (a MathType equation kept as its picture, not as text)
and ``picture-format`` (a picture a browser cannot show, such as .wmf).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from itembank.errors import Problem
from itembank.formats.imported import ImportDefaults, draft, item_id
from itembank.formats.wordml import OBJECT, WEB_PICTURES, Line, Math, Picture, Table, read_document
from itembank.formats.yaml_format import ParseResult, SourceItem
from itembank.model import ItemType, Option, ShortKey, Statement
from itembank.validate import check_item

WARNINGS = frozenset({"mathtype-image", "picture-format"})
OPTION_LETTERS = "ABCDEF"
STATEMENT_LETTERS = "abcd"
MARKS = ("underline", "red", "bold")  # how a key is marked, in the order messages name them
_MARK_WORDS = {"underline": "underlined", "red": "red", "bold": "bold"}

_QUESTION = re.compile(r"\s*((?:câu|bài|question)\s*(\d{1,3}))\s*(?:[.:)]|(?=\s)|$)", re.I)
# "PHẦN II ..." in capitals, or "Phần 2." / "Part 1:" / "Phần I" alone: not "Phần 2 của bài ..." in a stem.
_SECTION = re.compile(r"\s*(phần|part)\s+([IVX]+|\d{1,2})(?![\w])\s*([.:\-–]|$)?", re.I)
_OPTION = re.compile(r"\s*([A-F])[.):]")
_NEXT_OPTION = re.compile(r"(?:\t|\s{2,})\s*([A-F])[.):]")
_STATEMENT = re.compile(r"\s*([a-d])\)")
_EXPLANATION = re.compile(
    r"\s*(?:(?:lời\s+giải|hướng\s+dẫn\s+giải)(?:\s+chi\s+tiết)?\s*(?:[:.]|$)|giải\s+thích\s*:)", re.I
)
_ANSWER_HEADING = re.compile(r"\s*(bảng\s+đáp\s+án|đáp\s+án)", re.I)
_ANSWER_VALUE = re.compile(r"\s*đáp\s+án\s*[:.]\s*(\S.*)", re.I)
_SOLUTIONS_HEADING = re.compile(r"\s*(?:hướng\s+dẫn\s+giải|lời\s+giải|giải\s+chi\s+tiết)", re.I)
_ESSAY_SECTION = re.compile(r"tự\s+luận|essay", re.I)
_MULTIPLE = re.compile(
    r"chọn\s+nhiều\s+(?:đáp\s+án|phương\s+án)|nhiều\s+(?:đáp\s+án|phương\s+án)\s+đúng|select\s+all\s+that\s+apply",
    re.I,
)
# An answer-table entry: "1-A", "1.A", "1A", "Câu 1: A", "1: ĐSĐS", "Câu 5: -1,5".
_ENTRY_HEAD = re.compile(r"[\s,;|]*(?:(câu|question)\s*)?(\d{1,3})\s*([-–.:)]?)\s*", re.I)
_TF_ONE = r"(?:[a-d]\s*[).:-]?\s*)?(?:đúng|sai|đ|s)"
_TF_VALUE = re.compile(rf"{_TF_ONE}(?:\s*[,;/-]?\s*{_TF_ONE}){{3}}(?![\w])", re.I)
_LETTERS_VALUE = re.compile(r"[A-F](?:\s*[,;]\s*[A-F])*(?![\w])")
_NUMBER_VALUE = re.compile(r"-?\d+(?:[.,]\d+)?(?![\w])")
_TF_WORD = re.compile(r"(đúng|sai|đ|s)", re.I)
_HEADER_WORDS = re.compile(r"\s*(câu|câu\s+hỏi|câu\s+số|đáp\s+án|đa|question|answer|key|phần|part)?\s*", re.I)
_ROMAN = {"I": 1, "V": 5, "X": 10}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]$~|])")
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_MD_ENTITY = re.compile(r"&(?=#?\w+;)")
_MD_LINE_START = re.compile(r"(\d{1,9})([.)])|([#>+=-])")
_NOT_EXT = re.compile(r"[^a-z0-9]")
_Refuse = Callable[[int, str, str], None]  # (place, code, message): a problem that drops the question


@dataclass
class DocxResult(ParseResult):
    """The items of a Word file, its problems, and the pictures the items use.

    `media` maps each path the items name (``media/word-ly12-C7-1.png``) to
    the picture's bytes, for the caller to store with the items; only
    pictures of imported items are in it. Problems with a code in `WARNINGS`
    leave their item imported (`warnings`); every other problem is about
    something that gave no item.
    """

    media: dict[str, bytes] = field(default_factory=dict)

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.code in WARNINGS]


def parse_docx(data: bytes, filename: str, defaults: ImportDefaults) -> DocxResult:
    """The questions of a .docx file's bytes as draft items; see the module's docstring."""
    document, problems = read_document(data, filename)
    if document is None:
        return DocxResult([], problems)
    reader = _Reader(filename, defaults, document.math_failure)
    for block in document.blocks:
        if isinstance(block, Table):
            reader.table(block)
        else:
            reader.line(block)
    return reader.finish()


# ---------------------------------------------------------------- what is read


@dataclass(frozen=True)
class _Section:
    label: str  # its number as written, for ids: "II", "1"
    name: str  # as written, for messages: "PHẦN II", "Part 1"
    number: int
    essay: bool


@dataclass
class _Choice:
    """An option (A-F) or a statement (a-d): its letter, where its text lies, its Markdown."""

    letter: str
    place: int
    label: tuple[Line, int]  # the line and index of the letter
    spans: list[tuple[Line, int, int]]  # the text: (line, start, end)
    text: str = ""

    def marked(self, mark: str) -> bool:
        """Is the letter, or every character of the text, `mark`ed (underline, red, bold)?"""
        line, index = self.label
        if getattr(line.styles[index], mark):
            return True
        seen = False
        for span_line, start, end in self.spans:
            for i in range(start, end):
                char = span_line.text[i]
                if char.isspace() or isinstance(span_line.objects.get(i), Picture):
                    continue
                if not getattr(span_line.styles[i], mark):
                    return False
                seen = True
        return seen


@dataclass
class _Written:
    """A key written out: a "Đáp án:" line, an answer-table entry or a Đ/S column."""

    value: str
    place: int
    where: str  # "the answer table", "its Đáp án: line" ...


@dataclass
class _Question:
    label: str  # as written, for messages: "Câu 7", "Câu 3 (PHẦN II)"
    key: tuple[int | None, int]  # (section number, question number)
    number: str  # for the id: "7", or "II.7" in a section
    id: str
    place: int
    section: _Section | None
    stem: list[str] = field(default_factory=list)
    options: list[_Choice] = field(default_factory=list)
    statements: list[_Choice] = field(default_factory=list)
    written: list[_Written] = field(default_factory=list)
    truths: dict[str, bool] = field(default_factory=dict)  # from a statements table's Đ/S cells
    explanation: list[str] = field(default_factory=list)
    phase: str = "stem"  # stem, options, statements, explanation
    media: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    mixed: bool = False


@dataclass
class _Entry:
    """One answer of an answer table."""

    section: int | None
    number: int
    value: str
    place: int


class _Reader:
    """Reads blocks in order: preamble, questions, then an answer table and worked solutions."""

    def __init__(self, filename: str, defaults: ImportDefaults, math_failure: str | None) -> None:
        self.filename, self.defaults, self.math_failure = filename, defaults, math_failure
        self.mode = "questions"  # then "answers", then "solutions"
        self.section: _Section | None = None
        self.questions: list[_Question] = []
        self.by_key: dict[tuple[int | None, int], _Question] = {}
        self.current: _Question | None = None  # the question lines go to (a solution's, in "solutions")
        self.entries: list[_Entry] = []
        self.problems: list[Problem] = []
        self.sections_seen = False

    def problem(self, place: int | None, code: str, message: str) -> None:
        self.problems.append(Problem(self.filename, place, code, message))

    # -- lines

    def line(self, line: Line) -> None:
        text = line.text
        if line.is_blank() and not line.objects:
            return
        if (section := _SECTION.match(text)) and (section[1].isupper() or section[3] is not None):
            self._section(section, line)
            return
        if self.mode == "questions" and self._answer_heading(line):
            return
        if self.mode == "answers":
            if _SOLUTIONS_HEADING.match(text):
                self.mode, self.current, self.section = "solutions", None, None
            else:
                self._answer_text(text, line.place)
            return
        if start := _QUESTION.match(text):
            self._start(start, line)
            return
        q = self.current
        if q is None:
            return  # the preamble, or a solution for no question
        if self.mode == "solutions" or q.phase == "explanation":
            marker = _EXPLANATION.match(text)
            self._explain(q, line, marker.end() if marker else 0)
        elif explanation := _EXPLANATION.match(text):
            q.phase = "explanation"
            self._explain(q, line, explanation.end())
        elif value := _ANSWER_VALUE.match(text):
            q.written.append(_Written(value[1].strip(), line.place, "its Đáp án: line"))
        elif statement := _STATEMENT.match(text):
            self._statement(q, line, statement)
        elif _OPTION.match(text):
            self._options(q, line)
        elif q.phase == "options" and q.options:
            self._continue(q, q.options[-1], line)
        elif q.phase == "statements" and q.statements:
            self._continue(q, q.statements[-1], line)
        else:
            q.stem.append(self.markdown(q, line, 0, len(text), emphasis=True))

    def _section(self, match: re.Match[str], line: Line) -> None:
        label = match[2].upper()
        number = int(label) if label.isdigit() else _roman(label)
        name = f"{match[1]} {label}"
        self.section = _Section(label, name, number, bool(_ESSAY_SECTION.search(line.text)))
        self.sections_seen = True
        if self.mode != "answers":
            self.current = None

    def _answer_heading(self, line: Line) -> bool:
        """Does this line open the answer table (reading any answers on it)?"""
        heading = _ANSWER_HEADING.match(line.text)
        if heading is None:
            return False
        rest = line.text[heading.end() :]
        entries, _ = _text_entries(rest.lstrip(" :."))
        if self.current is not None and len(entries) < 2:
            if _ANSWER_VALUE.match(line.text):
                return False  # "Đáp án: -1,5" inside a question
            word, bare = heading[1], not rest.strip(" :.\t")
            if not (bare or word.isupper() or word.lower().startswith("bảng")):
                return False  # "Đáp án nào sau đây đúng?" is a stem
        self.mode, self.current, self.section = "answers", None, None
        rest = rest.strip(" :.\t")
        if section := _SECTION.match(rest):
            self._section(section, Line(line.place, rest))
        elif entries:
            self._answer_text(rest, line.place)
        return True

    def _start(self, match: re.Match[str], line: Line) -> None:
        number = int(match[2])
        section = self.section
        key = (section.number if section else None, number)
        label = match[1].strip() + (f" ({section.name})" if section else "")
        if self.mode == "solutions":
            self.current = self._question_for(key, label, line.place, "the worked solutions")
            if self.current is not None:
                explanation = _EXPLANATION.match(line.text, match.end())
                self._explain(self.current, line, explanation.end() if explanation else match.end())
            return
        written_number = f"{section.label}.{number}" if section else str(number)
        q = _Question(label, key, written_number, item_id(self.defaults, written_number), line.place, section)
        if key in self.by_key:
            # Its own problem is its only one: the first question of that number keeps the answers.
            q.problems.append(
                Problem(
                    self.filename,
                    line.place,
                    "duplicate-question",
                    f"{label} is written twice (first at paragraph {self.by_key[key].place}): number the questions"
                    " 1, 2, 3 ... once each (or put a section heading such as PHẦN II between the parts)",
                )
            )
        else:
            self.by_key[key] = q
        self.questions.append(q)
        self.current = q
        rest = match.end()
        if rest < len(line.text) and not line.text[rest:].isspace():
            # "Câu 1. A. ..." is rare; the rest of the line is the stem's first paragraph.
            q.stem.append(self.markdown(q, line, rest, len(line.text), emphasis=True))

    def _explain(self, q: _Question, line: Line, start: int) -> None:
        text = self.markdown(q, line, start, len(line.text), emphasis=True)
        if text:
            q.explanation.append(text)

    def _statement(self, q: _Question, line: Line, match: re.Match[str]) -> None:
        if q.options:
            q.mixed = True
        q.phase = "statements"
        q.statements.append(self._choice(q, match[1], line, match.start(1), match.end(), len(line.text)))

    def _options(self, q: _Question, line: Line) -> None:
        if q.statements:
            q.mixed = True
        q.phase = "options"
        text = line.text
        first = _OPTION.match(text)
        assert first is not None
        found = [(first[1], first.start(1), first.end())]
        found += [(m[1], m.start(1), m.end()) for m in _NEXT_OPTION.finditer(text, first.end())]
        for i, (letter, at, start) in enumerate(found):
            end = found[i + 1][1] if i + 1 < len(found) else len(text)
            q.options.append(self._choice(q, letter, line, at, start, end))

    def _choice(self, q: _Question, letter: str, line: Line, at: int, start: int, end: int) -> _Choice:
        choice = _Choice(letter, line.place, (line, at), [(line, start, end)])
        choice.text = self.markdown(q, line, start, end, emphasis=False)
        return choice

    def _continue(self, q: _Question, choice: _Choice, line: Line) -> None:
        choice.spans.append((line, 0, len(line.text)))
        more = self.markdown(q, line, 0, len(line.text), emphasis=False)
        if more:
            choice.text = f"{choice.text}<br>{more}" if choice.text else more

    # -- tables

    def table(self, table: Table) -> None:
        if self.mode == "answers":
            self._answer_table(table)
            return
        q = self.current
        if q is None:
            return
        if self.mode == "solutions" or q.phase == "explanation":
            q.explanation.append(self._markdown_table(q, table))
        elif q.phase in ("stem", "options") and _is_options_table(table):
            for row in table.rows:
                for cell in row:
                    lines = [line for line in cell if not line.is_blank() or line.objects]
                    if lines and _OPTION.match(lines[0].text):
                        self._options(q, lines[0])
                        for line in lines[1:]:
                            self._continue(q, q.options[-1], line)
        elif q.phase in ("stem", "statements") and _is_statements_table(table):
            self._statements_table(q, table)
        elif q.phase == "stem":
            q.stem.append(self._markdown_table(q, table))
        else:
            q.problems.append(
                Problem(
                    self.filename,
                    table.place,
                    "table-after-options",
                    f"{q.label}: a table after the options: put it in the stem, before option A"
                    " (or after Lời giải: for the worked solution)",
                )
            )

    def _statements_table(self, q: _Question, table: Table) -> None:
        true_column = false_column = None
        for row in table.rows:
            words = [_cell_text(cell).casefold() for cell in row]
            if "đúng" in words and "sai" in words:
                true_column, false_column = words.index("đúng"), words.index("sai")
                continue
            lines = [line for line in row[0] if not line.is_blank()] if row else []
            match = _STATEMENT.match(lines[0].text) if lines else None
            if match is None:
                continue
            self._statement(q, lines[0], match)
            for line in lines[1:]:
                self._continue(q, q.statements[-1], line)
            truth = _truth_of_row([_cell_text(cell) for cell in row], true_column, false_column)
            if truth is not None:
                q.truths[match[1]] = truth

    def _markdown_table(self, q: _Question, table: Table) -> str:
        rows = [
            [
                "<br>".join(
                    text
                    for line in cell
                    if (text := self.markdown(q, line, 0, len(line.text), emphasis=True).replace("\n", " "))
                )
                for cell in row
            ]
            for row in table.rows
        ]
        width = max((len(row) for row in rows), default=0)
        if width == 0:
            return ""
        rows = [row + [""] * (width - len(row)) for row in rows]
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return "\n".join(lines)

    # -- the answer table

    def _answer_text(self, text: str, place: int) -> None:
        entries, leftover = _text_entries(text)
        section = self.section.number if self.section else None
        self.entries += [_Entry(section, number, value, place) for number, value in entries]
        if leftover.strip(" \t,;.|:-"):
            self.problem(
                place,
                "answer-table-syntax",
                f"cannot read '{leftover.strip()[:60]}' in the answer table: write each answer as 1-A, 2.B, 3C,"
                " Câu 4: D, Câu 5: ĐSĐS or Câu 6: -1,5",
            )

    def _answer_table(self, table: Table) -> None:
        rows = [[_cell_text(cell) for cell in row] for row in table.rows]
        i = 0
        while i < len(rows):
            row = rows[i]
            filled = [c for c in row if c]
            if len(filled) == 1 and (section := _SECTION.match(filled[0])):
                self._section(section, Line(table.place, filled[0]))
            elif _numbers_row(row) is not None and i + 1 < len(rows) and _numbers_row(rows[i + 1]) is None:
                # A row of question numbers over a row of answers.
                section = self.section.number if self.section else None
                for column, number in _numbers_row(row) or []:
                    value = rows[i + 1][column] if column < len(rows[i + 1]) else ""
                    if value:
                        self.entries.append(_Entry(section, number, value, table.place))
                i += 1
            elif (pairs := _pairs_row(row)) is not None:
                section = self.section.number if self.section else None
                self.entries += [_Entry(section, number, value, table.place) for number, value in pairs]
            elif not all(_HEADER_WORDS.fullmatch(c) for c in row):
                for cell in row:
                    if cell and not _HEADER_WORDS.fullmatch(cell):
                        self._answer_text(cell, table.place)
            i += 1

    def _question_for(self, key: tuple[int | None, int], label: str, place: int, where: str) -> _Question | None:
        """The question an answer (or a worked solution) names; reports one that is not there."""
        section, number = key
        q = self.by_key.get(key)
        if q is None and section is None:
            same = [q for (_, n), q in self.by_key.items() if n == number]
            if len(same) > 1:
                self.problem(
                    place,
                    "answer-ambiguous",
                    f"{where} names question {number}, which is in several parts ("
                    + ", ".join(q.label for q in same)
                    + "): put each part's heading (PHẦN I, PHẦN II ...) above its answers",
                )
                return None
            q = same[0] if same else None
        if q is None:
            self.problem(
                place,
                "answer-unknown-question",
                f"{where} names {label}, which the file does not have: correct the number"
                + (" or the part (PHẦN ...) above it" if self.sections_seen else ""),
            )
        return q

    # -- Markdown

    def markdown(self, q: _Question, line: Line, start: int, end: int, *, emphasis: bool) -> str:
        """Characters start..end of a line as Markdown: escaped text, $math$, pictures."""
        text = line.text
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        pieces: list[str] = []
        chars: list[str] = []
        kind: tuple[bool, bool, str] | None = None
        last_math = False

        def flush() -> None:
            nonlocal last_math
            if not chars:
                return
            piece = _emphasise(_escape("".join(chars).replace("\t", " ")), kind)
            if last_math and piece[:1].isdigit():
                piece = " " + piece  # "$x$2" would not close the math
            pieces.append(piece)
            chars.clear()
            last_math = False

        for i in range(start, end):
            thing = line.objects.get(i) if text[i] == OBJECT else None
            if thing is not None:
                flush()
                made = self._object(q, thing, line.place, emphasis)
                if made:
                    if last_math and isinstance(thing, Math):
                        pieces.append(" ")
                    pieces.append(made)
                    last_math = isinstance(thing, Math)
                continue
            style = line.styles[i]
            this = (emphasis and style.bold, emphasis and style.italic, style.vert)
            if this != kind:
                flush()
                kind = this
            chars.append(text[i])
        flush()
        result = "".join(pieces)
        start_match = _MD_LINE_START.match(result)
        if start_match:
            if start_match[1]:  # "1." or "2)" would start a numbered list
                result = f"{start_match[1]}\\{start_match[2]}{result[start_match.end() :]}"
            else:
                result = "\\" + result
        return result

    def _object(self, q: _Question, thing: Math | Picture, place: int, block: bool) -> str:
        if isinstance(thing, Math):
            if thing.tex is None:
                reason = self.math_failure or "pandoc could not convert it"
                q.problems.append(
                    Problem(
                        self.filename,
                        place,
                        "bad-equation",
                        f"{q.label}: an equation could not be read ({reason}): write it again with Insert > Equation",
                    )
                )
                return ""
            return f"$${thing.tex}$$" if thing.display and block else f"${thing.tex}$"
        if thing.data is None:
            q.problems.append(
                Problem(
                    self.filename,
                    place,
                    "picture-missing",
                    f"{q.label}: the picture '{thing.name}' is linked from outside the file, not inside it:"
                    " insert it into the document (Insert > Pictures > This Device) and import again",
                )
            )
            return ""
        extension = "." + _NOT_EXT.sub("", thing.name.rpartition(".")[2].lower()) if "." in thing.name else ""
        path = f"media/{q.id}-{len(q.media) + 1}{extension}"
        q.media[path] = thing.data
        if thing.mathtype:
            shown = "" if extension in WEB_PICTURES else f"; its picture is {extension}, which browsers do not show"
            q.warnings.append(
                Problem(
                    self.filename,
                    place,
                    "mathtype-image",
                    f"{q.label}: a MathType equation is kept as its picture ({path}){shown}:"
                    " to make it text, write it again with Insert > Equation",
                )
            )
        elif extension not in WEB_PICTURES:
            q.warnings.append(
                Problem(
                    self.filename,
                    place,
                    "picture-format",
                    f"{q.label}: the picture {path} is {extension or 'of no known type'}, which browsers do not show:"
                    " save it as PNG or JPEG and insert it again",
                )
            )
        alt = _escape(thing.alt.replace("\n", " "))
        return f"![{alt}]({path})"

    # -- the end

    def finish(self) -> DocxResult:
        for entry in self.entries:
            label = f"question {entry.number}"
            q = self._question_for((entry.section, entry.number), label, entry.place, "the answer table")
            if q is not None:
                q.written.append(_Written(entry.value, entry.place, "the answer table"))
        if not self.questions:
            self.problem(
                None,
                "no-questions",
                "found no question: start each question with Câu 1., Câu 2. ... at the beginning of a paragraph",
            )
        result = DocxResult([], self.problems)
        for q in self.questions:
            self._item(q, result)
        result.problems.sort(key=lambda p: p.line or 0)
        return result

    def _item(self, q: _Question, result: DocxResult) -> None:
        result.problems.extend(q.warnings)
        if any(p.code == "duplicate-question" for p in q.problems):
            result.problems.extend(q.problems)
            return
        problems = list(q.problems)

        def refuse(place: int, code: str, message: str) -> None:
            problems.append(Problem(self.filename, place, code, f"{q.label}: {message}"))

        stem = "\n\n".join(part for part in q.stem if part)
        explanation = "\n\n".join(part for part in q.explanation if part) or None
        kind: ItemType | None = None
        options: tuple[Option, ...] = ()
        statements: tuple[Statement, ...] = ()
        answer: ShortKey | None = None
        if q.mixed:
            refuse(
                q.place,
                "mixed-question",
                "it has both options A-D and statements a)-d): a question has one or the other;"
                " start the next question with Câu N",
            )
        elif q.statements:
            kind = ItemType.TRUEFALSE4
            statements = self._statements(q, refuse)
        elif q.options:
            kind = ItemType.MULTIPLE if _MULTIPLE.search(stem) else ItemType.SINGLE
            options = self._options_key(q, kind, refuse)
        elif q.written:
            kind = ItemType.SHORT
            values = {w.value for w in q.written}
            if len(values) > 1:
                refuse(q.place, "key-conflict", "two different answers are given: " + _sources(q.written))
            else:
                answer = ShortKey(q.written[0].value)
        elif q.section is not None and q.section.essay:
            kind = ItemType.ESSAY
        else:
            refuse(
                q.place,
                "no-key",
                "no options A-D, statements a)-d) or 'Đáp án: ...' line found, so neither the kind of question"
                " nor its key is known: add them (an essay question belongs in a section headed Tự luận)",
            )
        if kind is None or problems:
            result.problems.extend(problems)
            return
        item = draft(
            self.defaults,
            q.number,
            kind,
            stem,
            options=options,
            statements=statements,
            answer=answer,
            explanation=explanation,
            media=tuple(q.media),
        )
        source = SourceItem(item, self.filename, q.place)
        found = check_item(source, q.media.__contains__)
        if found:
            result.problems.extend(Problem(p.file, p.line, p.code, f"{q.label}: {p.message}", p.field) for p in found)
            return
        result.items.append(source)
        result.media.update(q.media)

    def _options_key(self, q: _Question, kind: ItemType, refuse: _Refuse) -> tuple[Option, ...]:
        letters = "".join(o.letter for o in q.options)
        if letters != OPTION_LETTERS[: len(letters)]:
            expected = OPTION_LETTERS[: len(letters)]
            wrong = next(o for o, e in zip(q.options, expected, strict=False) if o.letter != e)
            refuse(
                wrong.place,
                "options-order",
                f"the options are {', '.join(letters)}: letter them {', '.join(expected)} in order,"
                " each once (a missing or mistyped letter?)",
            )
            return ()
        marked = _marks(q.options, ignore_all=MARKS)
        keys = set().union(*marked.values())
        by_written: list[tuple[_Written, set[str]]] = []
        for written in q.written:
            value = _LETTERS_VALUE.fullmatch(written.value.strip().upper())
            if value is None or not set(re.findall("[A-F]", value[0])) <= set(letters):
                refuse(
                    written.place,
                    "answer-value",
                    f"{written.where} gives '{written.value}', but the question has options {', '.join(letters)}:"
                    " give the letter of the key",
                )
                return ()
            by_written.append((written, set(re.findall("[A-F]", value[0]))))
        for written, written_keys in by_written:
            if keys and written_keys != keys:
                refuse(
                    written.place,
                    "key-conflict",
                    f"{written.where} gives {', '.join(sorted(written_keys))} but {', '.join(sorted(keys))} is marked"
                    " in the text: make them agree",
                )
                return ()
        if not keys and by_written:
            keys = by_written[0][1]
            for written, written_keys in by_written[1:]:
                if written_keys != keys:
                    refuse(written.place, "key-conflict", "two different answers are given: " + _sources(q.written))
                    return ()
        if not keys:
            refuse(
                q.place,
                "no-key",
                "no key found: underline, bold or colour red the letter of the right option, or give it in an"
                f" answer table at the end ({q.key[1]}-A)",
            )
            return ()
        if kind == ItemType.SINGLE and len(keys) > 1:
            how = ", ".join(f"{_MARK_WORDS[m]} {'/'.join(sorted(marked[m]))}" for m in MARKS if marked[m])
            refuse(
                q.place,
                "two-keys",
                f"options {' and '.join(sorted(keys))} are both marked as the key ({how or 'written'}): mark only"
                " one; if several are right, say so in the stem (chọn nhiều đáp án) to make it a multiple item",
            )
            return ()
        return tuple(Option(o.letter, o.text, o.letter in keys) for o in q.options)

    def _statements(self, q: _Question, refuse: _Refuse) -> tuple[Statement, ...]:
        letters = "".join(s.letter for s in q.statements)
        if letters != STATEMENT_LETTERS:
            wrong = next(
                (s for s, e in zip(q.statements, STATEMENT_LETTERS, strict=False) if s.letter != e), q.statements[-1]
            )
            refuse(
                wrong.place,
                "statements-order",
                f"the statements are {', '.join(letters)}: a true/false question has four, a) b) c) d) in order",
            )
            return ()
        # Bold on all four labels is a style; underline or red on all four says all four are true.
        marked = _marks(q.statements, ignore_all=("bold",))
        true = set().union(*marked.values())
        written: list[tuple[str, int, dict[str, bool]]] = []
        if q.truths:
            if set(q.truths) != set(STATEMENT_LETTERS):
                missing = ", ".join(s for s in STATEMENT_LETTERS if s not in q.truths)
                refuse(q.place, "answer-value", f"the table says Đ or S for some statements but not for {missing}")
                return ()
            written.append(("the statements' Đ/S column", q.place, dict(q.truths)))
        for w in q.written:
            truths = _truths(w.value)
            if truths is None:
                refuse(
                    w.place,
                    "answer-value",
                    f"{w.where} gives '{w.value}': for statements a)-d) write four of Đ or S, e.g. ĐSĐS",
                )
                return ()
            written.append((w.where, w.place, truths))
        for where, place, truths in written:
            given = {s for s, t in truths.items() if t}
            if true and given != true:
                refuse(
                    place,
                    "key-conflict",
                    f"{where} says {_tf(truths)} but the marked statements say"
                    f" {_tf({s: s in true for s in STATEMENT_LETTERS})}: make them agree",
                )
                return ()
        if not true and written:
            first = written[0][2]
            for where, place, truths in written[1:]:
                if truths != first:
                    message = f"{where} says {_tf(truths)}, elsewhere {_tf(first)}: make them agree"
                    refuse(place, "key-conflict", message)
                    return ()
            truth = first
        elif true:
            truth = {s: s in true for s in STATEMENT_LETTERS}
        else:
            refuse(
                q.place,
                "no-key",
                "no statement is marked true: underline or colour red the true statements (their letter a) b) ...),"
                f" or give them in the answer table ({q.key[1]}: ĐSĐS)",
            )
            return ()
        return tuple(Statement(s.letter, s.text, truth[s.letter]) for s in q.statements)


# ---------------------------------------------------------------- helpers


def _marks(choices: list[_Choice], ignore_all: Iterable[str]) -> dict[str, set[str]]:
    """mark -> the letters it marks; a mark in `ignore_all` on every choice is formatting, not a key."""
    marked = {mark: {c.letter for c in choices if c.marked(mark)} for mark in MARKS}
    for mark in ignore_all:
        if len(choices) > 1 and len(marked[mark]) == len(choices):
            marked[mark] = set()
    return marked


def _sources(written: list[_Written]) -> str:
    return "; ".join(f"{w.where} (paragraph {w.place}) gives '{w.value}'" for w in written)


def _truths(value: str) -> dict[str, bool] | None:
    """'ĐSĐS', 'a) Đ b) S c) Đ d) S', 'Đúng, Sai, Đúng, Sai' -> {a: True, b: False ...}; None if not that."""
    if _TF_VALUE.fullmatch(value.strip()) is None:
        return None
    words = _TF_WORD.findall(re.sub(r"(?<![\w])[a-d]\s*[).:-]", " ", value))
    if len(words) != 4:
        return None
    return {s: w.casefold() in ("đ", "đúng") for s, w in zip(STATEMENT_LETTERS, words, strict=True)}


def _tf(truths: dict[str, bool]) -> str:
    return "".join("Đ" if truths[s] else "S" for s in STATEMENT_LETTERS)


def _truth_of_row(cells: list[str], true_column: int | None, false_column: int | None) -> bool | None:
    ticks = {"x", "✓", "✔", "đ", "đúng"}
    if true_column is not None and false_column is not None:
        if true_column < len(cells) and cells[true_column].casefold() in ticks:
            return True
        if false_column < len(cells) and cells[false_column].casefold() in ticks | {"s", "sai"}:
            return False
    for cell in cells[1:]:
        word = cell.casefold()
        if word in ("đ", "đúng"):
            return True
        if word in ("s", "sai"):
            return False
    return None


def _text_entries(text: str) -> tuple[list[tuple[int, str]], str]:
    """The answers written in a line ("1-A 2.B Câu 3: ĐSĐS"), and what is left unread."""
    entries: list[tuple[int, str]] = []
    leftover: list[str] = []
    pos = 0
    while pos < len(text):
        head = _ENTRY_HEAD.match(text, pos)
        value = None
        if head is not None:
            at = head.end()
            value = _TF_VALUE.match(text, at) or _LETTERS_VALUE.match(text, at)
            if value is None and (head[1] or head[3] == ":"):
                value = _NUMBER_VALUE.match(text, at)
        if head is None or value is None:
            # Skip to the next separator and keep what could not be read.
            stop = re.compile(r"[\s,;|]").search(text, pos + 1)
            end = stop.start() if stop else len(text)
            leftover.append(text[pos:end])
            pos = end
            continue
        entries.append((int(head[2]), value[0].strip()))
        pos = value.end()
    return entries, " ".join(leftover)


def _numbers_row(row: list[str]) -> list[tuple[int, int]] | None:
    """(column, number) for a row of question numbers, its first cell perhaps a word such as "Câu"."""
    found = [(i, int(c)) for i, c in enumerate(row) if c.isdigit()]
    others = [c for i, c in enumerate(row) if c and not c.isdigit()]
    if len(found) < 2 or len(others) > 1 or (others and not _HEADER_WORDS.fullmatch(others[0])):
        return None
    return found


def _pairs_row(row: list[str]) -> list[tuple[int, str]] | None:
    """A row of number, answer, number, answer ...; None if it is not one."""
    cells = [c for c in row if c]
    if len(cells) < 2 or len(cells) % 2:
        return None
    pairs = [(cells[i], cells[i + 1]) for i in range(0, len(cells), 2)]
    if not all(number.rstrip(".:)").isdigit() and not value.isdigit() for number, value in pairs):
        return None
    return [(int(number.rstrip(".:)")), value) for number, value in pairs]


def _cell_text(cell: list[Line]) -> str:
    return " ".join(line.text.replace(OBJECT, " ").strip() for line in cell).strip()


def _is_options_table(table: Table) -> bool:
    firsts = [next((line for line in cell if not line.is_blank()), None) for row in table.rows for cell in row]
    filled = [line for line in firsts if line is not None]
    return len(filled) >= 2 and all(_OPTION.match(line.text) for line in filled)


def _is_statements_table(table: Table) -> bool:
    firsts = [_cell_text(row[0]) for row in table.rows if row]
    return sum(1 for text in firsts if _STATEMENT.match(text)) >= 2


def _roman(text: str) -> int:
    values = [_ROMAN[c] for c in text]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _escape(text: str) -> str:
    """Text that Markdown shows as it is: no emphasis, links, math, tags or entities made of it."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_TAG.sub(r"\\<", text)
    return _MD_ENTITY.sub(r"\\&", text)


def _emphasise(text: str, kind: tuple[bool, bool, str] | None) -> str:
    if kind is None:
        return text
    bold, italic, vert = kind
    core = text.strip()
    if not core:
        return text
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    if vert:
        core = f"<{vert}>{core}</{vert}>"
    marker = "*" * ((2 if bold else 0) + (1 if italic else 0))
    return f"{lead}{marker}{core}{marker}{trail}"
