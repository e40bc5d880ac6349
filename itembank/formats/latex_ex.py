r"""Questions from LaTeX files written with ``ex_test``, the package of the
Vietnamese TeX community for tests, turned into draft items.

A question is an ``ex`` environment; ex_test numbers them Câu 1, Câu 2 ...
in the order they stand, and so do the ids here (``imp-C1``, ``imp-C2`` with
the file's prefix): the community's ID codes below are shared by many
questions, so they cannot name one::

    \begin{ex}%[Nguồn: Đề thi thử THPT 2024]%[2D1H3-1]
    Hàm số $y = x^3 - 3x$ đồng biến trên khoảng nào?
    \choice{$(-1;1)$}{\True $(1;+\infty)$}{$(-\infty;1)$}{$(-2;2)$}
    \loigiai{Ta có $y' = 3x^2 - 3 > 0 \Leftrightarrow |x| > 1$.}
    \end{ex}

- ``\choice{..}{..}..`` (2 to 6 options, A to F; a layout hint ``\choice[2]``
  is ignored): one option marked ``\True`` makes a ``single`` item, several
  a ``multiple`` one. ``\True`` may stand anywhere in the option, outside math.
- ``\choiceTF{..}{..}{..}{..}``: a ``truefalse4`` item, statement a to d
  true where it holds ``\True`` and false where it does not.
- ``\shortans{..}`` (or ``\shortans[oly]{..}``): a ``short`` item. Its key is
  ``vn-numeric`` when it fits the answer sheet (``-1,5``; ``$-1{,}5$`` and
  ``1.5`` are read as ``-1,5`` and ``1,5``), else ``number`` (``-0,25``,
  ``12345``), else ``text`` when it is plain words; a formula
  (``\dfrac{1}{2}``) is a problem, as students type the key.
- none of these: an ``essay`` item. ``\loigiai{..}`` is the explanation.
- ``bt`` environments (exercises, numbered Bài 1, Bài 2 ... apart from the
  questions, ids ``imp-CBai-1`` ...) are read the same way, so without
  choices they are essays. ``vd`` (worked examples), anything outside
  ``ex`` and ``bt``, ``\begin{comment}`` and ``\iffalse`` blocks are not
  questions and are skipped.

The comments right after ``\begin{ex}`` (and its optional argument) hold
notes in brackets. One that is an **ID code** (ID5 ``2D1H3`` or ID6
``2D1H3-1``) is read position by position; every part that cannot be read
keeps the file's default (`ImportDefaults`):

========  ==================  ================================================
position  meaning             becomes
========  ==================  ================================================
1         grade               0, 1, 2 -> grade 10, 11, 12; 6-9 -> grade 6-9
2, 3      subject, chapter    topic ``ch-`` + positions 1-3 (``ch-2D1``: grade
                              12, Đại số và Giải tích, chapter 1), which names
                              the chapter across grades; not when the subject
                              or the chapter is 0 (not classified)
4         level               N/Y Nhận biết 1, H/B Thông hiểu 2, V/K Vận dụng
                              3, C/G Vận dụng cao 4 (digits 1-4 too), the
                              legacy scheme's numbers; read only when the bank
                              uses that scheme (`levels`)
5, 6      lesson, form        kept in the tag below
========  ==================  ================================================

The whole code is also a tag (``2D1H3-1``), so lessons and forms can be
found. A note ``NB``, ``TH``, ``VD`` or ``VDC`` (``%[TH]``) gives the level
as position 4 does. Any other note is the question's source (``Nguồn: ...``)
and goes at the end of the explanation, which reviewers see and students
never do: tags hold codes, not sentences.

Text becomes Markdown: ``$..$`` and ``\(..\)`` stay cbt math ``$..$``;
``$$..$$``, ``\[..\]`` and equation/align/gather environments become display
math ``$$..$$``; ex_test's ``\heva`` and ``\hoac`` and esvect's ``\vv`` are
written out for latex2mathml. ``\textbf``, ``\textit``, ``\emph`` and
``\underline`` become bold, italic and underlined; ``\\`` and
``\newline`` line breaks; blank lines paragraphs; itemize and enumerate
lists; a plain tabular a table. Layout (spacing, centring, font sizes,
colours) is dropped. Pictures cannot come along: ``\includegraphics`` needs
its file added to the item in the workspace, and a TikZ picture drawn as an
image; each leaves ``⟦Hình chưa nhập: ...⟧`` in the text and a
``not-imported`` problem naming the question, and the item is kept for the
teacher to finish. ``\immini{text}{picture}`` keeps its text.

Problems (``file:line: Câu N: message``; every one but ``not-imported``
withholds the question's item, as nothing is guessed):

=====================  =======================================================
latex-syntax           braces, ``$`` or an environment not closed (an ``ex``
                       too), an answer block without its braces, two answer
                       blocks, ``\True`` outside an option
latex-unsupported      a command or environment cbt cannot turn into item text
no-key                 ``\choice`` with no option marked ``\True``; an empty
                       ``\shortans``
truefalse4-statements  ``\choiceTF`` without exactly four statements
short-key-syntax       a ``\shortans`` key that is a formula
not-imported           a picture (the item is kept)
no-questions           no ``ex`` or ``bt`` environment in the file
encoding               the file is not UTF-8
=====================  =======================================================

and every problem `itembank.validate.check_item` finds in the item; each is
said once a question, at most `MAX_QUESTION_PROBLEMS` of them. A file over
`LATEX_MAX_BYTES`, or of more than `MAX_QUESTIONS` questions, raises
`TooLarge`; the first before it is read.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from itembank.answers import normalise_short_answer
from itembank.errors import Problem
from itembank.formats.imported import ImportDefaults, draft
from itembank.formats.yaml_format import ParseResult, SourceItem
from itembank.levels import LEGACY, LevelScheme
from itembank.limits import TooLarge, megabytes
from itembank.model import ItemType, Option, ShortFormat, ShortKey, Statement
from itembank.validate import check_item

# A test of 50 questions with worked solutions is about 60 KB, a chapter's
# bank of 2,000 about 2 MB; the workspace takes item files of 3 MB.
LATEX_MAX_BYTES = 4 * 1024 * 1024
# Braces and environments inside each other; real questions use under ten.
MAX_NESTING = 64
# A long formula is a few hundred characters; past this a closing $ is missing.
MAX_FORMULA = 20_000
# A question with a worked solution and a TikZ picture is a few thousand
# tokens (words, commands, braces); past this an \end{ex} is missing.
MAX_QUESTION_TOKENS = 100_000
# Split a bank larger than this (a chapter's is about 2,000 questions).
MAX_QUESTIONS = 10_000
# Problems said for one question; the question gives no item anyway.
MAX_QUESTION_PROBLEMS = 50
QUESTION_ENVIRONMENTS = {"ex": "Câu", "bt": "Bài"}
OPTION_IDS = "ABCDEF"
STATEMENT_IDS = "abcd"

# Problems that still let the question give its item.
_KEEPS_ITEM = {"not-imported"}

# ---------------------------------------------------------------- the ID code

_ID_CODE = re.compile(r"([0-9])([0-9A-Z])([0-9A-Z])([0-9A-Z])([0-9A-Z])(?:-[0-9A-Z])?")
_GRADES = {"0": 10, "1": 11, "2": 12, "6": 6, "7": 7, "8": 8, "9": 9}
# ID6 letters, the older ID5 letters (yếu, bình thường, khá, giỏi) and digits: the legacy four.
_LEVELS = {"N": 1, "H": 2, "V": 3, "C": 4, "Y": 1, "B": 2, "K": 3, "G": 4, "1": 1, "2": 2, "3": 3, "4": 4}


def parse_latex(data: bytes, filename: str, defaults: ImportDefaults, *, levels: LevelScheme = LEGACY) -> ParseResult:
    """The questions of an ex_test file as draft items, and every problem.

    `levels` is the scheme of the bank the items go to: the ID code's level
    is read only for the legacy one, which is the scheme it is written in.
    Raises `TooLarge` for a file over `LATEX_MAX_BYTES`.
    """
    if len(data) > LATEX_MAX_BYTES:
        raise TooLarge(
            f"{filename}: the file is {megabytes(len(data))}, more than the {megabytes(LATEX_MAX_BYTES)}"
            " a LaTeX file may have: split the questions into several files",
            megabytes(LATEX_MAX_BYTES),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        message = (
            "not UTF-8 text: save the file as UTF-8 (files written with \\usepackage[tcvn]{vietnam}"
            " or VNI fonts must be converted to Unicode first)"
        )
        return ParseResult([], [Problem(filename, line, "encoding", message)])
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    source = _Source(text, filename)
    questions, problems = _scan(source)
    if not questions and not problems:
        problems.append(
            Problem(
                filename,
                None,
                "no-questions",
                "no questions found: write each one as \\begin{ex} ... \\end{ex} (ex_test);"
                " a file that \\input's others must be imported one file at a time",
            )
        )
    items: list[SourceItem] = []
    for question in questions:
        item, found = _import(question, source, defaults, levels)
        problems += found
        if item is not None:
            items.append(item)
    problems.sort(key=lambda p: p.line or 0)
    return ParseResult(items=items, problems=problems)


# ---------------------------------------------------------------- positions


class _Source:
    """The file's text and where each of its lines starts."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, pos: int) -> int:
        return bisect.bisect_right(self._starts, pos)


class _LatexError(Exception):
    """Something at `pos` that LaTeX itself would refuse."""

    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


# ---------------------------------------------------------------- tokens


class _Tok(NamedTuple):
    kind: str  # cmd sym comment space par open close dollar amp tilde lbr rbr text
    text: str
    pos: int


_TOKEN = re.compile(
    r"(?P<cmd>\\[A-Za-z@]+\*?)"
    r"|(?P<sym>\\.?)"
    r"|(?P<comment>%[^\n]*)"
    r"|(?P<space>[ \t\n\f\v]+)"
    r"|(?P<open>\{)|(?P<close>\})|(?P<dollar>\$)|(?P<amp>&)|(?P<tilde>~)|(?P<lbr>\[)|(?P<rbr>\])"
    r"|(?P<text>[^\\%{}$&~\[\] \t\n\f\v]+)",
    re.S,
)


def _tokens(text: str) -> Iterator[_Tok]:
    """TeX's reading of `text`: a comment takes its line's end and the next
    line's indent with it; a blank line is a paragraph break."""
    after_comment = False
    for m in _TOKEN.finditer(text):
        kind, value = m.lastgroup or "text", m.group()
        if kind == "space":
            newlines = value.count("\n")
            if after_comment and value.startswith("\n"):
                if newlines == 1:
                    after_comment = False
                    continue
                kind = "par"
            elif newlines >= 2:
                kind = "par"
        after_comment = kind == "comment"
        yield _Tok(kind, value, m.start())


def _without_iffalse(tokens: Iterator[_Tok]) -> Iterator[_Tok]:
    """Drops ``\\iffalse ... \\fi`` blocks, the usual way to hide a question;
    one with no ``\\fi`` becomes an "unclosed" token."""
    for tok in tokens:
        if tok.kind == "cmd" and tok.text == "\\iffalse":
            depth = 1
            for inner in tokens:
                if inner.kind == "cmd" and inner.text.startswith("\\if") and inner.text != "\\iff":
                    depth += 1
                elif inner.kind == "cmd" and inner.text == "\\fi":
                    depth -= 1
                    if depth == 0:
                        break
            else:
                yield _Tok("unclosed", tok.text, tok.pos)
            continue
        yield tok


class _Stream:
    """Tokens with room to put some back."""

    def __init__(self, tokens: Iterable[_Tok]) -> None:
        self._tokens = iter(tokens)
        self._back: list[_Tok] = []

    def next(self) -> _Tok | None:
        if self._back:
            return self._back.pop()
        return next(self._tokens, None)

    def push(self, tokens: list[_Tok]) -> None:
        self._back.extend(reversed(tokens))


def _env_name(stream: _Stream) -> tuple[str | None, list[_Tok]]:
    """After ``\\begin`` or ``\\end``: the environment's name and its tokens,
    or (None, []) with everything put back."""
    taken: list[_Tok] = []
    tok = stream.next()
    while tok is not None and tok.kind == "space":
        taken.append(tok)
        tok = stream.next()
    if tok is None or tok.kind != "open":
        stream.push([*taken, tok] if tok is not None else taken)
        return None, []
    taken.append(tok)
    name = ""
    while (tok := stream.next()) is not None and tok.kind == "text" and len(name) < 40:
        taken.append(tok)
        name += tok.text
    if tok is None or tok.kind != "close" or not name:
        stream.push([*taken, tok] if tok is not None else taken)
        return None, []
    taken.append(tok)
    return name, taken


# ---------------------------------------------------------------- finding the questions


@dataclass
class _Question:
    kind: str  # "ex" or "bt"
    number: int  # as ex_test prints it: Câu 3
    pos: int  # of \begin
    notes: list[str] = field(default_factory=list)  # the [..] after \begin{ex}
    body: list[_Tok] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{QUESTION_ENVIRONMENTS[self.kind]} {self.number}"


def _scan(source: _Source) -> tuple[list[_Question], list[Problem]]:
    """Every ex and bt environment, each with its body's tokens."""
    stream = _Stream(_without_iffalse(_tokens(source.text)))
    questions: list[_Question] = []
    problems: list[Problem] = []
    counts = dict.fromkeys(QUESTION_ENVIRONMENTS, 0)
    current: _Question | None = None

    def fail(pos: int, message: str) -> None:
        problems.append(Problem(source.filename, source.line(pos), "latex-syntax", message))

    while (tok := stream.next()) is not None:
        if tok.kind == "unclosed":
            fail(tok.pos, "\\iffalse has no \\fi: everything after it is hidden; add the \\fi")
            continue
        if tok.kind != "cmd" or tok.text not in ("\\begin", "\\end"):
            if current is not None:
                current.body.append(tok)
                if len(current.body) > MAX_QUESTION_TOKENS:
                    fail(
                        current.pos,
                        f"{current.label} is longer than {MAX_QUESTION_TOKENS:,} words and commands:"
                        f" is its \\end{{{current.kind}}} missing?",
                    )
                    _skip_to_end(stream, current.kind)
                    current = None
            continue
        name, taken = _env_name(stream)
        begins = tok.text == "\\begin"
        if current is not None:
            if name not in QUESTION_ENVIRONMENTS:
                current.body += [tok, *taken]
                continue
            if not begins and name == current.kind:
                questions.append(current)
                current = None
                continue
            fail(
                current.pos,
                f"{current.label}: \\begin{{{current.kind}}} has no \\end{{{current.kind}}} before"
                f" {tok.text}{{{name}}} at line {source.line(tok.pos)}: close it",
            )
            current = None
            if not begins:
                continue  # the \end that did not match was reported with it
        if name is None:
            continue
        if begins and name in QUESTION_ENVIRONMENTS:
            if sum(counts.values()) == MAX_QUESTIONS:
                raise TooLarge(
                    f"{source.filename}: more than {MAX_QUESTIONS:,} questions: split them into several files",
                    str(MAX_QUESTIONS),
                )
            counts[name] += 1
            current = _Question(name, counts[name], tok.pos)
            current.notes = _header_notes(stream)
        elif begins and name == "comment":
            _skip_to_end(stream, "comment")
        elif not begins and name in QUESTION_ENVIRONMENTS:
            fail(tok.pos, f"\\end{{{name}}} without its \\begin{{{name}}}: remove it or add the \\begin")
    if current is not None:
        fail(
            current.pos,
            f"{current.label}: \\begin{{{current.kind}}} is never closed: add \\end{{{current.kind}}}",
        )
    return questions, problems


def _skip_to_end(stream: _Stream, name: str) -> None:
    while (tok := stream.next()) is not None:
        if tok.kind == "cmd" and tok.text == "\\end":
            found, _ = _env_name(stream)
            if found == name:
                return


_NOTE = re.compile(r"\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]")


def _header_notes(stream: _Stream) -> list[str]:
    """The bracketed notes after ``\\begin{ex}``: its optional argument and
    the ``%[..]`` comments before the question's text."""
    notes: list[str] = []
    taken: list[_Tok] = []
    while (tok := stream.next()) is not None:
        if tok.kind == "space":
            continue
        if tok.kind == "comment":
            notes += [n.strip() for n in _NOTE.findall(tok.text) if n.strip()]
            continue
        if tok.kind == "lbr" and not taken:
            # The optional argument, as LaTeX reads it: up to the first ] outside braces.
            taken = [tok]
            depth = 0
            while (inner := stream.next()) is not None and len(taken) < 200:
                taken.append(inner)
                depth += {"open": 1, "close": -1}.get(inner.kind, 0)
                if inner.kind == "rbr" and depth == 0:
                    break
            if taken[-1].kind == "rbr" and len(taken) < 200:
                note = "".join(
                    " " if t.kind in ("space", "par") else t.text for t in taken[1:-1] if t.kind != "comment"
                )
                if note.strip():
                    notes.append(note.strip())
                continue
            stream.push(taken)
            break
        stream.push([tok])
        break
    return notes


# ---------------------------------------------------------------- the tree of a question


@dataclass(eq=False, slots=True)
class _Node:
    kind: str  # text space par cmd group env math amp tilde
    text: str = ""  # the text; a command's name (\textbf); an environment's name; a formula
    pos: int = 0
    children: list[_Node] = field(default_factory=list)
    end: int = 0  # group: where its } is; "[": where the ] that closes it is (0: none does)
    display: bool = False  # math: $$ .. $$


# Display environments, as the aligned form latex2mathml reads inside $$ .. $$ (None: as they are).
_MATH_ENVIRONMENTS: dict[str, str | None] = {
    "equation": None,
    "equation*": None,
    "displaymath": None,
    "align": "aligned",
    "align*": "aligned",
    "flalign": "aligned",
    "flalign*": "aligned",
    "eqnarray": "aligned",
    "eqnarray*": "aligned",
    "gather": "gathered",
    "gather*": "gathered",
    "multline": "gathered",
    "multline*": "gathered",
}
# Read to their \end without looking inside: pictures and text that is not the question's.
_PICTURES = {"tikzpicture": "TikZ", "pspicture": "PSTricks", "picture": "LaTeX picture"}
_SKIPPED = {"comment"}
_CLOSERS = {"\\(": "\\)", "\\[": "\\]"}


class _Builder:
    """A question's tokens -> nodes, braces and environments matched as LaTeX does."""

    def __init__(self, tokens: list[_Tok], source: _Source) -> None:
        self.tokens = tokens
        self.i = 0
        self.source = source

    def build(self) -> list[_Node]:
        return self._nodes(None, 0, 0)

    def _next(self) -> _Tok | None:
        if self.i >= len(self.tokens):
            return None
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _nodes(self, closer: str | None, opened: int, depth: int) -> list[_Node]:
        """Nodes up to `closer` ("}" or an environment's name), which opened at `opened`."""
        if depth > MAX_NESTING:
            raise _LatexError(opened, f"braces and environments nested more than {MAX_NESTING} deep")
        nodes: list[_Node] = []
        brackets: list[_Node] = []  # the [ not yet closed, at this level
        previous: _Tok | None = None
        while (tok := self._next()) is not None:
            kind = tok.kind
            if kind == "open":
                group = _Node("group", pos=tok.pos)
                group.children = self._nodes("}", tok.pos, depth + 1)
                group.end = self.tokens[self.i - 1].pos
                nodes.append(group)
            elif kind == "close":
                if closer == "}":
                    return nodes
                where = f" inside \\begin{{{closer}}} at line {self.source.line(opened)}" if closer else ""
                raise _LatexError(tok.pos, f"}} closes no {{{where}: remove it or add the {{ it closes")
            elif kind == "dollar":
                nodes.append(self._math(tok))
            elif kind == "sym" and tok.text in _CLOSERS:
                nodes.append(self._math(tok))
            elif kind == "sym" and tok.text in ("\\)", "\\]"):
                raise _LatexError(tok.pos, f"{tok.text} closes no formula: remove it or open the formula")
            elif kind == "cmd" and tok.text == "\\begin":
                nodes.append(self._environment(tok, depth))
            elif kind == "cmd" and tok.text == "\\end":
                name = self._name(tok)
                if name == closer:
                    return nodes
                where = self.source.line(opened)
                if closer == "}":
                    message = f"\\end{{{name}}} comes before the }} of the {{ at line {where}: close the brace first"
                elif closer:
                    message = f"\\end{{{name}}} does not close \\begin{{{closer}}} at line {where}: check their order"
                else:
                    message = f"\\end{{{name}}} without its \\begin{{{name}}}: remove it or add the \\begin"
                raise _LatexError(tok.pos, message)
            elif kind == "comment":
                continue  # not `previous`: a control word's spaces are taken after it too
            elif kind == "space":
                if not (previous is not None and previous.kind == "cmd"):  # TeX skips spaces after \word
                    nodes.append(_Node("space", pos=tok.pos))
            elif kind in ("text", "lbr", "rbr"):
                nodes.append(_Node("text", tok.text, tok.pos))
                if kind == "lbr":
                    brackets.append(nodes[-1])
                elif kind == "rbr" and brackets:
                    brackets.pop().end = tok.pos
            elif kind in ("cmd", "sym"):
                nodes.append(_Node("cmd", tok.text, tok.pos))
            else:  # par, amp, tilde
                nodes.append(_Node(kind, tok.text, tok.pos))
            previous = tok
        if closer == "}":
            raise _LatexError(opened, "{ is never closed: add the } that closes it")
        if closer is not None:
            raise _LatexError(opened, f"\\begin{{{closer}}} is never closed: add \\end{{{closer}}}")
        return nodes

    def _name(self, tok: _Tok) -> str:
        """The {name} after \\begin or \\end."""
        parts: list[str] = []
        at = self.i
        while at < len(self.tokens) and self.tokens[at].kind == "space":
            at += 1
        if at < len(self.tokens) and self.tokens[at].kind == "open":
            at += 1
            while at < len(self.tokens) and self.tokens[at].kind == "text":
                parts.append(self.tokens[at].text)
                at += 1
            if at < len(self.tokens) and self.tokens[at].kind == "close" and parts:
                self.i = at + 1
                return "".join(parts)
        raise _LatexError(tok.pos, f"{tok.text} needs the environment's name in braces, e.g. {tok.text}{{center}}")

    def _environment(self, tok: _Tok, depth: int) -> _Node:
        name = self._name(tok)
        if name in _MATH_ENVIRONMENTS:
            source = self._math_source(tok, ("env", name))
            source = _MATH_LABELS.sub("", source).strip()
            wrapper = _MATH_ENVIRONMENTS[name]
            if wrapper:
                source = f"\\begin{{{wrapper}}}{source}\\end{{{wrapper}}}"
            return _Node("math", _math_macros(source), tok.pos, display=True)
        if name in _PICTURES or name in _SKIPPED:
            self._skip(tok, name)
            return _Node("env", name, tok.pos)
        return _Node("env", name, tok.pos, children=self._nodes(name, tok.pos, depth + 1))

    def _skip(self, tok: _Tok, name: str) -> None:
        while (inner := self._next()) is not None:
            if inner.kind == "cmd" and inner.text == "\\end":
                try:
                    if self._name(inner) == name:
                        return
                except _LatexError:
                    continue  # an \end without a name: TikZ code, not the picture's end
        raise _LatexError(tok.pos, f"\\begin{{{name}}} is never closed: add \\end{{{name}}}")

    def _math(self, tok: _Tok) -> _Node:
        display = False
        if tok.kind == "dollar":
            following = self.tokens[self.i] if self.i < len(self.tokens) else None
            display = following is not None and following.kind == "dollar" and following.pos == tok.pos + 1
            if display:
                self.i += 1
            closer = ("$$", "") if display else ("$", "")
        else:
            display = tok.text == "\\["
            closer = ("sym", _CLOSERS[tok.text])
        return _Node("math", _math_macros(self._math_source(tok, closer).strip()), tok.pos, display=display)

    def _math_source(self, tok: _Tok, closer: tuple[str, str]) -> str:
        """The formula's source up to `closer`; its braces must balance."""
        parts: list[str] = []
        depth = 0
        what = f"\\begin{{{closer[1]}}}" if closer[0] == "env" else tok.text + ("$" if closer[0] == "$$" else "")
        while (inner := self._next()) is not None:
            kind = inner.kind
            if closer[0] in ("$", "$$") and kind == "dollar":
                if closer[0] == "$$":
                    following = self.tokens[self.i] if self.i < len(self.tokens) else None
                    if following is None or following.kind != "dollar" or following.pos != inner.pos + 1:
                        raise _LatexError(inner.pos, "a formula opened with $$ is closed with a single $: write $$")
                    self.i += 1
                break
            if closer[0] == "sym" and kind == "sym" and inner.text == closer[1]:
                break
            if closer[0] == "env" and kind == "cmd" and inner.text == "\\end":
                name = self._name(inner)
                if name == closer[1]:
                    break
                parts.append(f"\\end{{{name}}}")
                continue
            if kind == "par":
                raise _LatexError(
                    tok.pos,
                    f"the formula opened with {what} is not closed before the blank line at line"
                    f" {self.source.line(inner.pos) + 1}: close it (a blank line cannot stand in a formula)",
                )
            if kind == "comment":
                continue
            if kind == "open":
                depth += 1
                if depth > MAX_NESTING:
                    raise _LatexError(inner.pos, f"braces in a formula nested more than {MAX_NESTING} deep")
            elif kind == "close":
                depth -= 1
                if depth < 0:
                    raise _LatexError(inner.pos, f"}} closes no {{ in the formula opened with {what}: remove it")
            parts.append(" " if kind == "space" else inner.text)
        else:
            raise _LatexError(tok.pos, f"the formula opened with {what} is never closed")
        if depth > 0:
            raise _LatexError(tok.pos, f"a {{ in the formula opened with {what} is never closed: add its }}")
        formula = "".join(parts)
        if len(formula) > MAX_FORMULA:
            raise _LatexError(
                tok.pos,
                f"the formula opened with {what} runs over {MAX_FORMULA:,} characters: is a closing $ missing?",
            )
        return formula


_MATH_LABELS = re.compile(r"\\(?:label|tag\*?)\s*\{[^{}]*\}|\\(?:nonumber|notag)(?![A-Za-z])")


def _math_macros(source: str) -> str:
    r"""A formula as latex2mathml reads it well.

    The Vietnamese preamble's ``\heva{..}`` (a system), ``\hoac{..}``
    (alternatives) and esvect's ``\vv{AB}`` are written out. ``aligned``,
    ``gathered`` and ``split`` become an ``array``: latex2mathml writes
    their rows as one line with ``<mspace linebreak>``, which item text does
    not keep (and their ``&`` as a character); an array is a table of rows.
    """
    if "\\heva" in source or "\\hoac" in source or "\\vv" in source:
        source = _expand(source)
    for _ in range(MAX_NESTING):  # innermost first, one level a pass
        source, changed = _ALIGNED.subn(lambda m: _array(m.group(3), m.group(1)), source)
        if not changed:
            break
    return source


def _expand(source: str) -> str:
    out: list[str] = []
    i = 0
    for m in _MACRO.finditer(source):
        if m.start() < i:
            continue
        argument, after = _braced(source, m.end())
        if argument is None:
            continue
        out.append(source[i : m.start()])
        inner = _expand(argument)
        name = m.group(1)
        if name == "vv":
            out.append(f"\\overrightarrow{{{inner}}}")
        else:
            bracket = "\\{" if name == "heva" else "["
            out.append(f"\\left{bracket}\\begin{{aligned}}{inner}\\end{{aligned}}\\right.")
        i = after
    out.append(source[i:])
    return "".join(out)


# The innermost aligned-like environment: no other of its name inside it.
_ALIGNED = re.compile(
    r"\\begin\{(aligned|gathered|split|alignedat)\}(\{[0-9]*\})?((?:(?!\\begin\{\1\}).)*?)\\end\{\1\}", re.S
)


def _array(content: str, name: str) -> str:
    """An aligned-like environment's rows as an array: columns right, left,
    right ... as amsmath aligns them (gathered: centred)."""
    columns = 1
    depth = cells = 0
    i = 0
    while i < len(content):
        c = content[i]
        if c == "\\":
            if content.startswith("\\\\", i):
                cells = 0
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "&" and depth == 0:
            cells += 1
            columns = max(columns, cells + 1)
        i += 1
    spec = "c" * columns if name == "gathered" else "".join("rl"[k % 2] for k in range(columns))
    return f"\\begin{{array}}{{{spec}}}{content}\\end{{array}}"


_MACRO = re.compile(r"\\(heva|hoac|vv)(?![A-Za-z])\s*")


def _braced(source: str, at: int) -> tuple[str | None, int]:
    """The {..} group starting at `at`: (its content, the index after it), or (None, at)."""
    if at >= len(source) or source[at] != "{":
        return None, at
    depth = 0
    i = at
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return source[at + 1 : i], i + 1
        i += 1
    return None, at


# ---------------------------------------------------------------- answer blocks

# ex_test's commands that are not text: what they hold is the key or the explanation.
_BLOCKS = {
    "\\choice": "choice",
    "\\choiceTF": "truefalse",
    "\\choiceTFt": "truefalse",
    "\\shortans": "short",
    "\\loigiai": "solution",
}


@dataclass
class _Block:
    kind: str  # choice truefalse short solution
    name: str  # as written: \choice
    pos: int
    args: list[_Node]  # its {..} groups


def _take_blocks(nodes: list[_Node], blocks: list[_Block]) -> list[_Node]:
    """`nodes` without the answer blocks, which go to `blocks`.

    Blocks are looked for inside groups and environments too: ex_test
    writers put a question's \\choice inside \\immini{..}{picture}.
    """
    out: list[_Node] = []
    i = 0
    while i < len(nodes):
        node = nodes[i]
        if node.kind == "cmd" and node.text in _BLOCKS:
            kind = _BLOCKS[node.text]
            i, args = _block_args(nodes, i + 1, node, kind)
            blocks.append(_Block(kind, node.text, node.pos, args))
            continue
        if node.kind in ("group", "env"):
            node.children = _take_blocks(node.children, blocks)
        out.append(node)
        i += 1
    return out


def _block_args(nodes: list[_Node], i: int, command: _Node, kind: str) -> tuple[int, list[_Node]]:
    _, i = _optional(nodes, i)  # \choice[2], \shortans[oly], \loigiai[4]: layout only
    args: list[_Node] = []
    while True:
        j = _skip_spaces(nodes, i, paragraphs=True)
        if j < len(nodes) and nodes[j].kind == "group":
            args.append(nodes[j])
            i = j + 1
            if kind in ("short", "solution"):
                break
            continue
        if j < len(nodes) and nodes[j].kind == "cmd" and nodes[j].text == "\\True" and kind != "solution":
            raise _LatexError(
                nodes[j].pos, "\\True stands between the options: put it inside the option's braces, {\\True ...}"
            )
        break
    if not args:
        what = {"short": "the key", "solution": "the solution"}.get(kind, "each option")
        raise _LatexError(command.pos, f"{command.text} needs {what} in braces: {command.text}{{...}}")
    return i, args


def _skip_spaces(nodes: list[_Node], i: int, *, paragraphs: bool = False) -> int:
    kinds = ("space", "par") if paragraphs else ("space",)
    while i < len(nodes) and nodes[i].kind in kinds:
        i += 1
    return i


# An optional argument is a few words: a [ whose ] is farther is text.
_MAX_OPTIONAL = 500


def _optional(nodes: list[_Node], i: int) -> tuple[list[_Node] | None, int]:
    """An optional argument [..] at `i` (after spaces): (its nodes, the index after it), or (None, i)."""
    j = _skip_spaces(nodes, i)
    if j >= len(nodes) or nodes[j].kind != "text" or nodes[j].text != "[":
        return None, i
    opener = nodes[j]
    if not opener.pos < opener.end <= opener.pos + _MAX_OPTIONAL:
        return None, i
    k = j + 1
    while k < len(nodes) and nodes[k].pos < opener.end:
        k += 1
    if k < len(nodes) and nodes[k].pos == opener.end:
        return nodes[j + 1 : k], k + 1
    return None, i


def _strip_true(nodes: list[_Node]) -> tuple[list[_Node], bool]:
    """`nodes` without \\True (outside formulas), and whether there was one."""
    out: list[_Node] = []
    found = False
    previous_true = False
    for node in nodes:
        if node.kind == "cmd" and node.text == "\\True":
            found = previous_true = True
            continue
        if node.kind == "space" and previous_true:
            continue
        previous_true = False
        if node.kind in ("group", "env"):
            node.children, inner = _strip_true(node.children)
            found = found or inner
        out.append(node)
    return out, found


def _plain(nodes: Iterable[_Node]) -> str:
    """The characters of `nodes`, commands by name: for labels and column specifications."""
    parts: list[str] = []
    for node in nodes:
        if node.kind in ("group", "env"):
            parts.append(_plain(node.children))
        elif node.kind in ("space", "par", "tilde"):
            parts.append(" ")
        elif node.kind == "math":
            parts.append(f"${node.text}$")
        elif node.kind == "amp":
            parts.append("&")
        else:
            parts.append(node.text)
    return "".join(parts)


# ---------------------------------------------------------------- Markdown

_SPACE, _BREAK, _PARA = " ", "\\\n", "\n\n"
_RANK = {"": 0, _SPACE: 1, _BREAK: 2, _PARA: 3}
_INLINE_SPECIAL = re.compile(r"[\\`*_\[\]<>|$~]|&(?=#?[A-Za-z0-9]+;)")
# What starts a Markdown block at the start of a line: a heading, a list item, a setext line.
_LINE_START = re.compile(r"#|[-+](?=\s|$)|=+$|[0-9]{1,9}(?=[.)](?:\s|$))")


def _escape(text: str, line_start: bool) -> str:
    """Text as Markdown that shows exactly it."""
    escaped = _INLINE_SPECIAL.sub(lambda m: "\\" + m.group(), text)
    if line_start:
        m = _LINE_START.match(escaped)
        if m and m.group()[:1].isdigit():
            escaped = escaped[: m.end()] + "\\" + escaped[m.end() :]
        elif m:
            escaped = "\\" + escaped
    return escaped


class _Out:
    """Markdown being written: whitespace is collapsed as TeX does, and a
    separator is written only between two pieces of content."""

    def __init__(self, *, line_start: bool = True) -> None:
        self.parts: list[str] = []
        self.pending = ""
        self.line_start = line_start

    def sep(self, kind: str) -> None:
        if _RANK[kind] > _RANK[self.pending]:
            self.pending = kind

    def _flush(self) -> None:
        if self.pending and self.parts:
            self.parts.append(self.pending)
            self.line_start = self.pending != _SPACE
        self.pending = ""

    def text(self, text: str) -> None:
        if text:
            self._flush()
            self.parts.append(_escape(text, self.line_start))
            self.line_start = False

    def markup(self, markdown: str) -> None:
        if markdown:
            self._flush()
            self.parts.append(markdown)
            self.line_start = False

    def block(self, markdown: str) -> None:
        """Lines of their own (a list, a table): a paragraph before and after."""
        if markdown:
            self.sep(_PARA)
            self.markup(markdown)
            self.sep(_PARA)

    def value(self) -> str:
        return "".join(self.parts)


_TYPOGRAPHY = re.compile(r"---|--|``|''")
_TYPOGRAPHY_CHARS = {"---": "—", "--": "–", "``": "“", "''": "”"}
# Control words and symbols that stand for a character.
_CHARACTERS = {
    "\\%": "%", "\\&": "&", "\\#": "#", "\\_": "_", "\\{": "{", "\\}": "}", "\\$": "$",
    "\\ldots": "…", "\\dots": "…", "\\textellipsis": "…", "\\textbackslash": "\\", "\\S": "§",
    "\\P": "¶", "\\textdegree": "°", "\\degree": "°", "\\copyright": "©", "\\textasciitilde": "~",
    "\\textbar": "|", "\\textless": "<", "\\textgreater": ">", "\\textendash": "–",
    "\\textemdash": "—", "\\textquotedblleft": "“", "\\textquotedblright": "”", "\\LaTeX": "LaTeX",
    "\\TeX": "TeX", "\\dag": "†", "\\textbullet": "•", "\\dotfill": "…", "\\ldotp": ".",
}  # fmt: skip
_SPACES = {"\\quad", "\\qquad", "\\ ", "\\\n", "\\,", "\\;", "\\:", "\\>", "\\enskip", "\\enspace", "\\space"}
_BREAKS = {"\\\\", "\\newline", "\\linebreak", "\\tabularnewline"}
# Layout, with nothing to show: spacing, page breaks, font sizes and families, table rules.
_LAYOUT = {
    "\\noindent", "\\indent", "\\centering", "\\raggedright", "\\raggedleft", "\\relax", "\\null",
    "\\strut", "\\allowbreak", "\\nobreak", "\\smallskip", "\\medskip", "\\bigskip", "\\newpage",
    "\\clearpage", "\\pagebreak", "\\nopagebreak", "\\vfill", "\\hfill", "\\hfil", "\\!", "\\/",
    "\\-", "\\@", "\\protect", "\\leavevmode", "\\unskip", "\\ignorespaces", "\\selectfont",
    "\\tiny", "\\scriptsize", "\\footnotesize", "\\small", "\\normalsize", "\\large", "\\Large",
    "\\LARGE", "\\huge", "\\Huge", "\\rmfamily", "\\sffamily", "\\ttfamily", "\\normalfont",
    "\\upshape", "\\mdseries", "\\columnbreak", "\\break", "\\hline", "\\toprule", "\\midrule",
    "\\bottomrule", "\\displaystyle",
}  # fmt: skip
# Layout commands and how many {..} arguments they take (and drop).
_LAYOUT_ARGS = {
    "\\vspace": 1, "\\vspace*": 1, "\\hspace": 1, "\\hspace*": 1, "\\label": 1, "\\color": 1,
    "\\setlength": 2, "\\addtolength": 2, "\\phantom": 1, "\\hphantom": 1, "\\vphantom": 1,
    "\\index": 1, "\\setcounter": 2, "\\addtocounter": 2, "\\fontsize": 2, "\\linespread": 1,
    "\\cline": 1, "\\cmidrule": 1, "\\pagestyle": 1, "\\thispagestyle": 1,
}  # fmt: skip
# Commands whose last argument is their text: (arguments, of which the last is shown).
_TEXT_ARGS = {
    "\\textrm": 1, "\\textsf": 1, "\\texttt": 1, "\\textup": 1, "\\textnormal": 1, "\\textmd": 1,
    "\\textsc": 1, "\\mbox": 1, "\\hbox": 1, "\\text": 1, "\\fbox": 1, "\\framebox": 1,
    "\\makebox": 1, "\\centerline": 1, "\\textcolor": 2, "\\colorbox": 2, "\\fcolorbox": 3,
    "\\parbox": 2,
}  # fmt: skip
# Markdown (when CommonMark lets it be) and the HTML element otherwise.
_STYLES = {
    "\\textbf": ("**", "strong"), "\\textit": ("*", "em"), "\\emph": ("*", "em"),
    "\\textsl": ("*", "em"), "\\underline": ("", "u"), "\\uline": ("", "u"),
    "\\textsuperscript": ("", "sup"), "\\textsubscript": ("", "sub"),
}  # fmt: skip
# Declarations that style the rest of their group: {\bf text}.
_DECLARATIONS = {
    "\\bf": "\\textbf", "\\bfseries": "\\textbf", "\\it": "\\textit", "\\itshape": "\\textit",
    "\\em": "\\emph", "\\sl": "\\textit", "\\slshape": "\\textit",
}  # fmt: skip
# Environments that are only layout around their text, and how many {..} arguments they take.
_TEXT_ENVIRONMENTS = {
    "center": 0, "flushleft": 0, "flushright": 0, "quote": 0, "quotation": 0, "figure": 0,
    "figure*": 0, "table": 0, "minipage": 1, "multicols": 1, "multicols*": 1, "varwidth": 1,
}  # fmt: skip
_TABLES = {"tabular": 0, "tabular*": 1, "tabularx": 1}
_LISTS = {"itemize", "enumerate"}
_ROMAN = ((10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))

Report = Callable[[int, str, str], None]  # (position, code, message)


class _Render:
    """A question's nodes -> Markdown with $math$, reporting what cannot come along."""

    def __init__(self, lang: str, report: Report) -> None:
        self.lang = lang
        self.report = report
        self.in_table = False
        self.styles = 0  # styles inside each other, bounded as braces are

    def markdown(self, nodes: list[_Node]) -> str:
        out = _Out()
        self._emit(nodes, out)
        return out.value().strip()

    def _emit(self, nodes: list[_Node], out: _Out, start: int = 0) -> None:
        i = start
        while i < len(nodes):
            node = nodes[i]
            i += 1
            kind = node.kind
            if kind == "text":
                out.text(_TYPOGRAPHY.sub(lambda m: _TYPOGRAPHY_CHARS[m.group()], node.text))
            elif kind in ("space", "tilde"):
                out.sep(_SPACE)
            elif kind == "par":
                out.sep(_PARA)
            elif kind == "math":
                out.markup(self._math(node))
            elif kind == "group":
                self._emit(node.children, out)
            elif kind == "env":
                self._environment(node, out)
            elif kind == "amp":
                self.report(node.pos, "latex-syntax", "& outside a table: write \\& for the character")
            elif node.text in _DECLARATIONS:
                self._styled(_DECLARATIONS[node.text], nodes, out, i)  # the rest of the group
                return
            else:
                i = self._command(node, nodes, i, out)

    def _math(self, node: _Node) -> str:
        source = node.text
        if self.in_table:  # a | would split the table's cell
            source = source.replace("\\|", "\\Vert ").replace("|", "\\vert ")
        source = " ".join(source.split())
        while source.endswith("\\"):  # a \ before the closing $ would hide it
            source = source[:-1].rstrip()
        if not source:
            return ""
        return f"$${source}$$" if node.display else f"${source}$"

    def _command(self, node: _Node, nodes: list[_Node], i: int, out: _Out) -> int:
        """Writes command `node`, whose arguments follow at `i`; returns the index after them."""
        name = node.text
        if name in _CHARACTERS:
            out.text(_CHARACTERS[name])
        elif name in _SPACES:
            out.sep(_SPACE)
        elif name in _BREAKS:
            _, i = _optional(nodes, i)  # \\[2mm]
            out.sep(_BREAK)
        elif name == "\\par":
            out.sep(_PARA)
        elif name in _LAYOUT:
            pass
        elif name in _LAYOUT_ARGS:
            _, i = _optional(nodes, i)
            for _ in range(_LAYOUT_ARGS[name]):
                _, i = self._argument(nodes, i, node)
        elif name in _STYLES:
            argument, i = self._argument(nodes, i, node)
            self._styled(name, argument, out)
        elif name in _TEXT_ARGS:
            for _ in range(_TEXT_ARGS[name]):
                optional = True
                while optional is not None:  # \makebox[3cm][c]{..}
                    optional, i = _optional(nodes, i)
                argument, i = self._argument(nodes, i, node)
            self._emit(argument, out)
        elif name == "\\includegraphics":
            _, i = _optional(nodes, i)
            argument, i = self._argument(nodes, i, node)
            file = _plain(argument).strip()
            self._picture(
                node.pos,
                file,
                f"the picture {file} (\\includegraphics) was not imported: add its file to the item in the workspace",
                out,
            )
        elif name in ("\\immini", "\\imminiL"):
            # ex_test's text beside a picture: both are written, one after the other.
            _, i = _optional(nodes, i)
            for _ in range(2):
                argument, i = self._argument(nodes, i, node)
                out.sep(_PARA)
                self._emit(argument, out)
            out.sep(_PARA)
        elif name == "\\True":
            self.report(node.pos, "latex-syntax", "\\True outside the options of \\choice or \\choiceTF: remove it")
        elif name == "\\item":
            self.report(node.pos, "latex-syntax", "\\item outside itemize or enumerate")
        elif name in ("\\multicolumn", "\\multirow"):
            self.report(
                node.pos,
                "latex-unsupported",
                f"{name}: a table of the item has one cell to a column and a row; write the table without"
                " merged cells, or make it an image",
            )
        else:
            self.report(
                node.pos,
                "latex-unsupported",
                f"{name} is not something cbt can turn into item text: write it as text or math, or remove it",
            )
        return i

    def _argument(self, nodes: list[_Node], i: int, command: _Node) -> tuple[list[_Node], int]:
        """A command's {..} argument at `i` (or the single token TeX takes without braces)."""
        j = _skip_spaces(nodes, i)
        if j >= len(nodes) or nodes[j].kind in ("par", "amp") or (nodes[j].kind == "text" and nodes[j].text == "]"):
            raise _LatexError(command.pos, f"{command.text} needs its argument in braces: {command.text}{{...}}")
        node = nodes[j]
        if node.kind == "group":
            return node.children, j + 1
        if node.kind == "text" and len(node.text) > 1:
            rest = _Node("text", node.text[1:], node.pos + 1)
            nodes[j] = rest
            return [_Node("text", node.text[0], node.pos)], j
        return [node], j + 1

    def _styled(self, name: str, nodes: list[_Node], out: _Out, start: int = 0) -> None:
        """`nodes` from `start` in style `name` (\\textbf ...)."""
        if start >= len(nodes):
            return
        if self.styles >= MAX_NESTING:
            raise _LatexError(nodes[start].pos, f"more than {MAX_NESTING} styles inside each other")
        inner = _Out(line_start=False)
        self.styles += 1
        try:
            self._emit(nodes, inner, start)
        finally:
            self.styles -= 1
        text = inner.value().strip()
        if not text:
            return
        if nodes[start].kind == "space":
            out.sep(_SPACE)
        markdown, element = _STYLES[name]
        if markdown and "\n" not in text and _flanks(text):
            out.markup(f"{markdown}{text}{markdown}")
        else:
            out.markup(f"<{element}>{text}</{element}>")
        if nodes[-1].kind == "space":
            out.sep(_SPACE)

    def _picture(self, pos: int, name: str, message: str, out: _Out) -> None:
        marker = f"⟦{'Hình chưa nhập' if self.lang == 'vi' else 'Picture not imported'}: {name}⟧"
        out.sep(_SPACE)
        out.text(marker)
        out.sep(_SPACE)
        self.report(pos, "not-imported", f"{message}; {marker} marks its place")

    def _environment(self, node: _Node, out: _Out) -> None:
        name = node.text
        if name in _PICTURES:
            kind = _PICTURES[name]
            self._picture(
                node.pos,
                kind,
                f"a {kind} picture was not imported: cbt cannot draw it; make it an image (PNG)"
                " and add it to the item in the workspace",
                out,
            )
        elif name in _SKIPPED:
            pass
        elif name in _LISTS:
            out.block(self._list(node))
        elif name in _TABLES and self.in_table:
            self.report(
                node.pos,
                "latex-unsupported",
                "a table inside a table's cell: a cell holds text and formulas; write it out, or make it an image",
            )
        elif name in _TABLES:
            out.block(self._table(node))
        elif name in _TEXT_ENVIRONMENTS:
            _, i = _optional(node.children, 0)
            for _ in range(_TEXT_ENVIRONMENTS[name]):
                _, i = self._argument(node.children, i, node)
            out.sep(_PARA)
            self._emit(node.children[i:], out)
            out.sep(_PARA)
        else:
            self.report(
                node.pos,
                "latex-unsupported",
                f"\\begin{{{name}}} is not something cbt can turn into item text: write its content as text,"
                " a list or a table, or remove it",
            )

    def _list(self, node: _Node) -> str:
        label, i = _optional(node.children, 0) if node.text == "enumerate" else (None, 0)
        style = _label_style(_plain(label)) if label is not None else None
        items: list[tuple[str | None, list[_Node]]] = []
        nodes = node.children
        while i < len(nodes):
            child = nodes[i]
            i += 1
            if child.kind == "cmd" and child.text == "\\item":
                own, i = _optional(nodes, i)
                items.append((_plain(own).strip() if own is not None else None, []))
            elif items:
                items[-1][1].append(child)
            elif child.kind not in ("space", "par"):
                self.report(
                    child.pos, "latex-syntax", f"text before the first \\item of {node.text}: start with \\item"
                )
        labelled = style is not None or any(own is not None for own, _ in items)
        lines: list[str] = []
        for number, (own, children) in enumerate(items, 1):
            text = self.markdown(children)
            if labelled:
                if own is not None:
                    mark = own
                elif style is not None:
                    mark = _label(style, number)
                else:
                    mark = f"{number}." if node.text == "enumerate" else "•"
                lines.append(f"{_escape(mark, True)} {text}".rstrip())
            else:
                marker = f"{number}. " if node.text == "enumerate" else "- "
                lines.append(marker + _indent(text, len(marker)))
        return (_PARA if labelled else "\n").join(lines)

    def _table(self, node: _Node) -> str:
        nodes = node.children
        _, i = _optional(nodes, 0)
        for _ in range(_TABLES[node.text]):
            _, i = self._argument(nodes, i, node)
        spec, i = self._argument(nodes, i, node)
        rows: list[list[list[_Node]]] = [[[]]]
        while i < len(nodes):
            child = nodes[i]
            i += 1
            if child.kind == "cmd" and child.text in _BREAKS:
                _, i = _optional(nodes, i)
                rows.append([[]])
            elif child.kind == "amp":
                rows[-1].append([])
            else:
                rows[-1][-1].append(child)
        outer, self.in_table = self.in_table, True
        try:
            cells = [[self._cell(cell) for cell in row] for row in rows]
        finally:
            self.in_table = outer
        while cells and not any(cells[-1]):
            cells.pop()  # after the last \\, or only rules
        if not cells:
            return ""
        width = max(len(row) for row in cells)
        aligns = _aligns(_plain(spec), width)
        lines = ["| " + " | ".join(row + [""] * (width - len(row))) + " |" for row in cells]
        lines.insert(1, "|" + "|".join(aligns) + "|")
        return "\n".join(lines)

    def _cell(self, nodes: list[_Node]) -> str:
        out = _Out()
        self._emit(nodes, out)
        text = out.value().strip()
        return text.replace(_BREAK, "<br>").replace(_PARA, "<br>").replace("\n", " ")


def _indent(text: str, width: int) -> str:
    """A list item's lines after the first, under its text."""
    return "\n".join(line if i == 0 or not line else " " * width + line for i, line in enumerate(text.split("\n")))


def _flanks(text: str) -> bool:
    """Can ``**text**`` be bold in CommonMark wherever it stands? Only if it
    neither starts nor ends with punctuation or space: ``**1.**Tính`` is not bold."""
    first, last = text[0], text[-1]
    return not any(unicodedata.category(c)[0] in "PSZ" or c.isspace() for c in (first, last))


def _label_style(raw: str) -> tuple[str, str, str] | None:
    """An enumerate label such as ``a)``, ``(A)``, ``\\alph*)`` or ``label=\\roman*.``:
    (before, counter a A i I 1, after); None for a plain ``1.``, Markdown's own."""
    raw = raw.replace("label=", "")
    raw = re.sub(
        r"\\(alph|Alph|arabic|roman|Roman)\*",
        lambda m: {"alph": "a", "Alph": "A", "arabic": "1", "roman": "i", "Roman": "I"}[m.group(1)],
        raw,
    )
    raw = re.sub(r"\\[A-Za-z]+\s*|[{}]", "", raw).strip()
    m = re.search(r"[aAiI1]", raw)
    if m is None:
        return (raw, "", "") if raw else None
    if raw == "1.":
        return None
    return raw[: m.start()], m.group(), raw[m.end() :]


def _label(style: tuple[str, str, str], number: int) -> str:
    before, counter, after = style
    if counter in ("a", "A"):
        value = chr(ord(counter) + (number - 1) % 26)
    elif counter in ("i", "I"):
        value = ""
        rest = number
        for amount, letters in _ROMAN:
            while rest >= amount:
                value += letters
                rest -= amount
        value = value.upper() if counter == "I" else value
    elif counter == "1":
        value = str(number)
    else:
        value = ""
    return f"{before}{value}{after}"


def _aligns(spec: str, width: int) -> list[str]:
    """Markdown's alignment row from a column specification such as ``|c|l|p{3cm}|``."""
    spec = re.sub(r"\{[^{}]*\}", "", spec)  # p{3cm}, @{}, *{3}{c}'s counts
    found = [{"l": ":--", "c": ":-:", "r": "--:"}.get(c, ":--") for c in spec if c in "lcrpmbX"]
    return (found + ["---"] * width)[:width]


# ---------------------------------------------------------------- one question -> one item

# check_item's words for what this importer has already said in its own.
_SAID_ALREADY = {
    "no-key": {"single-key-count", "multiple-no-key"},
    "truefalse4-statements": {"truefalse4-statements"},
    "latex-syntax": {"too-few-options"},
}
# Notes that give the level by its Vietnamese initials: %[TH].
_LEVEL_NOTES = {"NB": 1, "TH": 2, "VD": 3, "VDC": 4}


def _import(
    question: _Question, source: _Source, defaults: ImportDefaults, levels: LevelScheme
) -> tuple[SourceItem | None, list[Problem]]:
    """The question's item (None if it has a problem that withholds it) and its problems."""
    problems: list[Problem] = []

    def report(pos: int, code: str, message: str) -> None:
        found = Problem(source.filename, source.line(pos), code, f"{question.label}: {message}")
        if len(problems) < MAX_QUESTION_PROBLEMS and found not in problems:
            problems.append(found)

    try:
        blocks: list[_Block] = []
        stem_nodes = _take_blocks(_Builder(question.body, source).build(), blocks)
    except _LatexError as e:
        report(e.pos, "latex-syntax", e.message)
        return None, problems
    render = _Render(defaults.lang, report)
    line = source.line
    first = next((node for node in stem_nodes if node.kind not in ("space", "par")), None)
    fields = {"stem": line(first.pos if first is not None else question.pos)}
    answers = [b for b in blocks if b.kind != "solution"]
    solutions = [b for b in blocks if b.kind == "solution"]
    for same, what in ((answers, "answer"), (solutions, "solution")):
        for block in same[1:]:
            report(
                block.pos,
                "latex-syntax",
                f"a second {what} block ({block.name}; the first is {same[0].name} at line {line(same[0].pos)}):"
                " a question has one; split it into two questions",
            )
    try:
        stem = render.markdown(stem_nodes)
        explanation = render.markdown(solutions[0].args[0].children) if solutions else ""
        if solutions:
            fields["explanation"] = line(solutions[0].pos)
        type_, options, statements, answer = ItemType.ESSAY, (), (), None
        if answers:
            block = answers[0]
            fields["answer"] = line(block.pos)
            if block.kind == "choice":
                type_, options = _choice(block, render, report, fields, line)
            elif block.kind == "truefalse":
                type_, statements = ItemType.TRUEFALSE4, _statements(block, render, report, fields, line)
            else:
                type_, answer = ItemType.SHORT, _short_key(block, source, report)
    except _LatexError as e:
        report(e.pos, "latex-syntax", e.message)
        return None, problems

    grade, topic, level, tags, notes = _classify(question.notes, defaults, levels)
    if notes:
        explanation = "\n\n".join(part for part in (explanation, _source_note(notes, defaults.lang)) if part)
    number = (
        str(question.number) if question.kind == "ex" else f"{QUESTION_ENVIRONMENTS[question.kind]} {question.number}"
    )
    item = draft(
        defaults,
        number,
        type_,
        stem,
        options=options,
        statements=statements,
        answer=answer,
        explanation=explanation or None,
    )
    item = dataclasses.replace(item, grade=grade, topic=topic, level=level, tags=tags)
    placed = SourceItem(item, source.filename, line(question.pos), fields)
    said = {code for p in problems for code in _SAID_ALREADY.get(p.code, ())}
    for found in check_item(placed, levels=levels):
        if found.code not in said:
            problems.append(dataclasses.replace(found, message=f"{question.label}: {found.message}"))
    if any(p.code not in _KEEPS_ITEM for p in problems):
        return None, problems
    return placed, problems


def _choice(
    block: _Block, render: _Render, report: Report, fields: dict[str, int], line: Callable[[int], int]
) -> tuple[ItemType, tuple[Option, ...]]:
    if not 2 <= len(block.args) <= len(OPTION_IDS):
        report(
            block.pos,
            "latex-syntax",
            f"\\choice has {len(block.args)} option(s): write 2 to {len(OPTION_IDS)}, each in its braces {{...}}",
        )
    options = []
    for option_id, group in zip(OPTION_IDS, block.args, strict=False):
        children, correct = _strip_true(group.children)
        options.append(Option(option_id, render.markdown(children), correct))
        fields[f"options.{option_id}"] = line(group.pos)
    keys = sum(option.correct for option in options)
    if not keys:
        report(
            block.pos,
            "no-key",
            "no option of \\choice is marked \\True: put \\True in the right one, e.g. {\\True $x = 2$}",
        )
    return (ItemType.MULTIPLE if keys > 1 else ItemType.SINGLE), tuple(options)


def _statements(
    block: _Block, render: _Render, report: Report, fields: dict[str, int], line: Callable[[int], int]
) -> tuple[Statement, ...]:
    if len(block.args) != len(STATEMENT_IDS):
        report(
            block.pos,
            "truefalse4-statements",
            f"{block.name} has {len(block.args)} statement(s): a true/false question has exactly four,"
            " a to d, each in its braces, the true ones marked \\True",
        )
    statements = []
    for statement_id, group in zip(STATEMENT_IDS, block.args, strict=False):
        children, true = _strip_true(group.children)
        statements.append(Statement(statement_id, render.markdown(children), true))
        fields[f"statements.{statement_id}"] = line(group.pos)
    return tuple(statements)


_KEY_SPACING = re.compile(r"\\[,;:!> ]|\\q?quad(?![A-Za-z])|~|\s+")
_KEY_DELIMITERS = re.compile(r"\$|\\[()\[\]]")
_FORMULA = re.compile(r"[\\^_{}]")


def _short_key(block: _Block, source: _Source, report: Report) -> ShortKey | None:
    """The key of \\shortans as the answer sheet compares it, or None (reported)."""
    group = block.args[0]
    raw = re.sub(r"(?<!\\)%[^\n]*", "", source.text[group.pos + 1 : group.end])
    key = raw.replace("{,}", ",").replace("{.}", ".").replace("\u2212", "-")
    key = _KEY_DELIMITERS.sub("", key)
    compact = _KEY_SPACING.sub("", key)
    if re.fullmatch(r"[-+]?\{?[0-9.,]+\}?", compact):
        compact = compact.replace("{", "").replace("}", "")
    if not compact:
        report(block.pos, "no-key", f"{block.name} is empty: write the key, e.g. {block.name}{{-1,5}}")
        return None
    vn = normalise_short_answer(compact, ShortFormat.VN_NUMERIC)
    if vn is not None:
        return ShortKey(vn, ShortFormat.VN_NUMERIC)
    if normalise_short_answer(compact, ShortFormat.NUMBER) is not None:
        return ShortKey(compact, ShortFormat.NUMBER)
    if not _FORMULA.search(key):
        return ShortKey(" ".join(key.split()), ShortFormat.TEXT)
    report(
        block.pos,
        "short-key-syntax",
        f"the key {raw.strip()} is a formula, but students type their answer: write it as a number"
        " (e.g. 0,5 for \\dfrac{1}{2}) or as plain words",
    )
    return None


def _classify(
    notes: list[str], defaults: ImportDefaults, levels: LevelScheme
) -> tuple[int | None, str, int, tuple[str, ...], list[str]]:
    """(grade, topic, level, tags, sources) from the question's notes; see the module's table."""
    grade, topic, level = defaults.grade, defaults.topic, defaults.level
    codes = [note for note in notes if _ID_CODE.fullmatch(note)]
    level_notes = [note for note in notes if note.upper() in _LEVEL_NOTES]
    sources = [note for note in notes if note not in codes and note not in level_notes]
    legacy = levels == LEGACY
    if codes:
        code = codes[0]
        grade = _GRADES.get(code[0], grade)
        if code[1] != "0" and code[2] != "0":
            topic = f"ch-{code[:3]}"
        if legacy and code[3] in _LEVELS:
            level = _LEVELS[code[3]]
    if legacy and level_notes:
        level = _LEVEL_NOTES[level_notes[0].upper()]
    return grade, topic, level, tuple(dict.fromkeys(codes)), sources


def _source_note(sources: list[str], lang: str) -> str:
    """The explanation's last paragraph, saying where the question comes from."""
    text = "; ".join(sources)
    if not re.match(r"(?i)(ngu[ồo]n|source)\b", text):
        text = f"{'Nguồn' if lang == 'vi' else 'Source'}: {text}"
    return _escape(text, True)
