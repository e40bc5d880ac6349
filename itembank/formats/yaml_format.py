"""The native item format: YAML, one item (a mapping) or a list of items per file.

```yaml
id: M12-HS-001
version: 1
type: single            # single | multiple | truefalse4 | short | essay (or set, below)
subject: toan
grade: 12
topic: ham-so
level: 1                # the level's number in the bank's scheme, or its id: nhan-biet
points: 0.25
lang: vi
status: approved        # draft | reviewed | approved | retired
tags: [dao-ham]
stem: Đạo hàm của hàm số $y = x^3$ là
options:
  A: $y' = 3x^2$
  B: $y' = x^2$
  C: {text: Cả A và B, fixed: true}   # stays last when the options are shuffled
answer: A               # multiple: [A, C]; short: "-1,5" or {key, format, tolerance}
```

`truefalse4` items have `statements:` with `a` .. `d`, each `{text, answer}`
(statements cannot be fixed: write ``shuffle: false`` to keep them in order).

Levels follow the release's scheme (``levels:`` in bank.yaml, see
`itembank.levels`): without it the legacy four, 1 nhan-biet (Nhận biết) ..
4 van-dung-cao (Vận dụng cao); with ``levels: 2025`` three, 1 biet (Biết),
2 hieu (Hiểu), 3 van-dung (Vận dụng). An item's level is read as that
number either way.

An item **set** is several items sharing one stimulus (a reading passage, a
data table). It is versioned and reviewed as one unit, and it may stand in a
list beside items:

```yaml
- id: EN-READ-01
  version: 1
  type: set
  subject: tieng-anh
  grade: 12
  topic: reading
  lang: en
  status: approved
  shuffle: false        # default: the children keep this order; true lets a form shuffle them
  stimulus: |           # Markdown, $math$ and media, as a stem
    Read the passage and answer the questions.
  items:
    - id: EN-READ-01-1
      type: single
      level: biet
      points: 0.25
      stem: What is the passage mainly about?
      options: {A: ..., B: ...}
      answer: A
```

A child is an item of any type but set, with its own id, type, level,
points, stem, key, tags, media and explanation. It takes version, status,
subject, grade and lang from the set, and its topic too unless it gives one;
writing version, status, subject, grade or lang on a child is a problem
(the set's are the child's: raise the set's version to change a child).
A set may give a ``level:`` that children without one take. A child's id is
the child's alone: no other set or item of the release may use it.

We read the YAML *node* tree (``yaml.compose``) rather than Python values,
for two reasons: every node knows its line, so each problem can say
``file:line``; and we can use the text exactly as written, which avoids
YAML 1.1 surprises (``lang: no`` is the boolean false, ``answer: 0,5`` a
string but ``answer: 0.50`` the float 0.5, ``id: 0012`` the integer 12).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from itembank.errors import Problem
from itembank.levels import LEGACY, MAX_LEVELS, SCHEME_2025, LevelScheme, scheme_of
from itembank.limits import YAML_MAX_DEPTH, YAML_MAX_NODES, YAML_MAX_TEXT, TooLarge
from itembank.model import (
    BankInfo,
    Item,
    ItemSet,
    ItemType,
    Option,
    ShortFormat,
    ShortKey,
    Statement,
    Status,
)

# libyaml is 10x faster when present; the pure-Python classes behave the same.
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Bound(Exception):
    """A bound of _Loader was passed at `mark`; _compose names the file."""

    def __init__(self, message: str, limit: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message, self.limit, self.mark = message, limit, mark


class _Loader(yaml.composer.Composer, _Base):
    """The safe loader, with PyYAML's own (Python) composer bounded in depth and
    in what the tree holds once aliases are expanded.

    An alias composes to the node it names, not a copy, so a small file can
    stand for a huge tree: `tags: [*s, *s, ...]` where `s` names a 100 KB
    text is read cheaply, then written out (serialise_item, as every import
    stores it) as gigabytes; ten aliases of ten aliases of ... of a list
    stand for a billion values. Here an alias counts as the nodes and text it
    repeats, and the composer stops at the first node past a bound, having
    spent time only on what came before it. Depth is bounded too: libyaml
    stops at 1,000 levels, PyYAML's pure-Python parser recurses until Python
    does not. Over libyaml's events this costs about a third more than
    libyaml's own composer.
    """

    def __init__(self, stream: str) -> None:
        _Base.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        self._depth = 0
        # Composed so far, an alias counted at the size of what it repeats.
        self._nodes = self._text = 0
        self._sizes: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, characters) of its tree

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._count(*self._sizes.get(event.anchor, (1, 0)), event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > YAML_MAX_DEPTH:
            raise _Bound(
                f"nested more than {YAML_MAX_DEPTH} levels deep; an item needs at most five:"
                " check the indentation, or put text that starts with - [ or { in quotes",
                str(YAML_MAX_DEPTH),
                event.start_mark,
            )
        nodes, text = self._nodes, self._text
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, len(event.value) if isinstance(event, yaml.ScalarEvent) else 0, event.start_mark)
        if event.anchor is not None:
            self._sizes[event.anchor] = (self._nodes - nodes, self._text - text)
        return node

    def _count(self, nodes: int, text: int, mark: yaml.Mark) -> None:
        self._nodes += nodes
        self._text += text
        if self._nodes > YAML_MAX_NODES or self._text > YAML_MAX_TEXT:
            what, limit = (
                (f"{YAML_MAX_NODES:,} values", YAML_MAX_NODES)
                if self._nodes > YAML_MAX_NODES
                else (f"{YAML_MAX_TEXT:,} characters", YAML_MAX_TEXT)
            )
            raise _Bound(
                f"the file expands to more than {what} (anchors & and aliases * repeat what they name):"
                " write each value out once, or split the file",
                str(limit),
                mark,
            )


# In the order they are written out.
ITEM_FIELDS = tuple(
    "id version type subject grade topic level points lang status tags shuffle stem options answer statements"
    " explanation media".split()
)
REQUIRED_FIELDS = ("id", "version", "type", "subject", "topic", "level", "points", "lang", "status", "stem")
# Fields that only some types use: type -> fields it must have.
TYPE_FIELDS: dict[ItemType, tuple[str, ...]] = {
    ItemType.SINGLE: ("options", "answer"),
    ItemType.MULTIPLE: ("options", "answer"),
    ItemType.TRUEFALSE4: ("statements",),
    ItemType.SHORT: ("answer",),
    ItemType.ESSAY: (),
}
_TYPE_SPECIFIC = ("options", "answer", "statements")
STATEMENT_FIELDS = ("text", "answer")
OPTION_FIELDS = ("text", "fixed")
SHORT_ANSWER_FIELDS = ("key", "format", "tolerance")
SET = "set"  # the `type:` of an item set
SET_FIELDS = tuple("id version type subject grade topic level lang status tags shuffle stimulus media items".split())
SET_REQUIRED = ("id", "version", "type", "subject", "topic", "lang", "status", "stimulus")
# A child's fields that are the set's: writing them on the child is a problem.
SET_ONLY = ("version", "status", "subject", "grade", "lang")
# A child's fields that it takes from the set unless it gives its own.
SET_DEFAULTS = ("topic", "level")
CHILD_REQUIRED = ("id", "type", "level", "points", "stem")
BANK_FIELDS = ("format", "name", "version", "title", "subject", "description", "publisher", "topics", "levels")
MAX_TOPIC_NAME = 200
MAX_LEVEL_NAME = 100
_LEVEL_ID = re.compile(r"[a-z][a-z0-9-]{0,31}")
BANK_REQUIRED = ("format", "name", "version")

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)")
_TRUE = {"true", "yes", "on", "đúng"}
_FALSE = {"false", "no", "off", "sai"}


@dataclass(frozen=True)
class SourceItem:
    """An item together with where it was written, for precise messages."""

    item: Item
    file: str
    line: int
    # "level" -> 7, "options.B" -> 12, "statements.c.answer" -> 20 ...
    field_lines: Mapping[str, int] = field(default_factory=dict, compare=False)
    # A set's child: the fields it took from its set (checked once, on the set).
    inherited: frozenset[str] = field(default=frozenset(), compare=False)

    def line_of(self, name: str) -> int:
        """The line of field `name`, or of the nearest enclosing field that has one."""
        while name:
            if name in self.field_lines:
                return self.field_lines[name]
            name = name.rpartition(".")[0]
        return self.line

    def problem(self, code: str, message: str, name: str | None = None) -> Problem:
        line = self.line_of(name) if name else self.line
        return Problem(self.file, line, code, message, field=name)


@dataclass(frozen=True)
class SourceSet:
    """An item set together with where it was written; its children are SourceItems."""

    set: ItemSet
    file: str
    line: int
    field_lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def line_of(self, name: str) -> int:
        return self.field_lines.get(name.partition(".")[0], self.line)

    def problem(self, code: str, message: str, name: str | None = None) -> Problem:
        line = self.line_of(name) if name else self.line
        return Problem(self.file, line, code, message, field=name)


@dataclass
class ParseResult:
    """What a file holds: its items, a set's children among them (in the
    set's place and order, each with ``set_id``), and its sets."""

    items: list[SourceItem]
    problems: list[Problem]
    sets: list[SourceSet] = field(default_factory=list)


# ---------------------------------------------------------------- reading


def parse_file(path: Path, display_name: str | None = None, *, levels: LevelScheme = LEGACY) -> ParseResult:
    """Parse an item file; `display_name` is how messages name it, `levels` the bank's scheme."""
    name = display_name or str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        return ParseResult([], [Problem(name, None, "unreadable", f"cannot read file: {e}")])
    return parse_bytes(data, name, levels=levels)


def parse_bytes(data: bytes, filename: str, *, levels: LevelScheme = LEGACY) -> ParseResult:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        message = "not UTF-8 text: save the file with UTF-8 encoding"
        return ParseResult([], [Problem(filename, line, "encoding", message)])
    return parse_text(text, filename, levels=levels)


def parse_text(text: str, filename: str, *, levels: LevelScheme = LEGACY) -> ParseResult:
    """Parse YAML text holding one item or set, or a list of them.

    `levels` is the scheme of the bank the file belongs to: it says which
    level ids (``level: hieu``) mean which number. A set comes back as its
    children in `items` and the set in `sets`; a set with any problem gives
    neither, so nothing of it is half-accepted.
    """
    root, problem = _compose(text, filename)
    if problem:
        return ParseResult([], [problem])
    reader = _Reader(filename, levels)
    items: list[SourceItem] = []
    sets: list[SourceSet] = []

    def entry(node: yaml.MappingNode) -> None:
        if _type_of(node) == SET:
            source_set, children = reader.item_set(node)
            if source_set is not None:
                sets.append(source_set)
                items.extend(children)
        elif (source := reader.item(node)) is not None:
            items.append(source)

    if root is None:
        reader.report(1, "empty-file", "the file holds no item")
    elif isinstance(root, yaml.MappingNode):
        entry(root)
    elif isinstance(root, yaml.SequenceNode):
        for node in root.value:
            if isinstance(node, yaml.MappingNode):
                entry(node)
            else:
                reader.report(
                    _line(node),
                    "not-an-item",
                    "each entry of the list must be an item (a mapping of fields such as id:)",
                )
    else:
        reader.report(
            _line(root),
            "not-an-item",
            "the file must hold one item (fields such as id: and type:) or a list of items",
        )
    return ParseResult(items, reader.problems, sets)


def parse_bank_bytes(data: bytes, filename: str) -> tuple[BankInfo | None, list[Problem]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, [Problem(filename, None, "encoding", "not UTF-8 text: save it as UTF-8")]
    return parse_bank_info(text, filename)


def parse_bank_info(text: str, filename: str) -> tuple[BankInfo | None, list[Problem]]:
    """Parse a release's ``bank.yaml``."""
    root, problem = _compose(text, filename)
    if problem:
        return None, [problem]
    reader = _Reader(filename)
    if not isinstance(root, yaml.MappingNode):
        line = _line(root) if root is not None else 1
        reader.report(line, "not-a-mapping", "bank.yaml must be a mapping with format, name, version")
        return None, reader.problems
    fields = reader.fields(root, BANK_FIELDS, "field")
    values: dict = {}
    for name in BANK_FIELDS:
        if name == "topics" and name in fields:
            values[name] = reader.topic_names(fields[name])
        elif name == "levels" and name in fields:
            values[name] = reader.level_scheme(fields[name])
        elif name in fields:
            values[name] = reader.text(fields[name], name)
        elif name in BANK_REQUIRED:
            reader.report(
                _line(root),
                "missing-field",
                f"missing field '{name}': bank.yaml needs format: cbt-bank/1, name: and version:",
                name,
            )
    if reader.problems:
        return None, reader.problems
    info = BankInfo(**values)  # type: ignore[arg-type]
    if info.format != "cbt-bank/1":
        reader.report(
            _line(fields["format"]),
            "unknown-format",
            f"format '{info.format}' is not supported: write format: cbt-bank/1",
            "format",
        )
        return None, reader.problems
    return info, []


def _compose(text: str, filename: str) -> tuple[yaml.Node | None, Problem | None]:
    loader = _Loader(text)
    try:
        return loader.get_single_node(), None
    except _Bound as e:
        where = f"{filename}:{e.mark.line + 1}" if e.mark else filename
        raise TooLarge(f"{where}: {e.message}", e.limit) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        return None, Problem(filename, line, "yaml-syntax", _syntax_message(e))
    except yaml.YAMLError as e:  # e.g. a control character the reader refuses
        return None, Problem(filename, None, "yaml-syntax", f"YAML syntax error: {e}")
    finally:
        loader.dispose()


def _syntax_message(e: yaml.MarkedYAMLError) -> str:
    what = e.problem or e.context or "unreadable YAML"
    if "tab" in what or "'\\t'" in what:
        hint = "indent with spaces, not tabs"
    elif "single document" in what:
        hint = "write a list of items (each starting with '- ') instead of several documents"
    else:
        hint = (
            "check the indentation, and put text that contains ': ' or starts with"
            " a special character such as [ { * & ! | > ' \" % @ in quotes"
        )
    return f"YAML syntax error: {what}; {hint}"


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _type_of(node: yaml.MappingNode) -> str | None:
    """What the mapping's ``type:`` says, if it is plain text."""
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "type":
            return value_node.value if isinstance(value_node, yaml.ScalarNode) else None
    return None


class _Reader:
    """Turns node trees into model objects, collecting problems as it goes."""

    def __init__(self, filename: str, levels: LevelScheme = LEGACY) -> None:
        self.filename = filename
        self.levels = levels
        self.problems: list[Problem] = []
        self.field_lines: dict[str, int] = {}
        self.failed = False  # the current item cannot be built

    def report(self, line: int | None, code: str, message: str, name: str | None = None) -> None:
        self.problems.append(Problem(self.filename, line, code, message, field=name))
        self.failed = True

    def fields(
        self, node: yaml.MappingNode, allowed: Iterable[str], what: str, prefix: str = ""
    ) -> dict[str, yaml.Node]:
        """Map field name -> value node, reporting unknown and repeated fields."""
        allowed = tuple(allowed)
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = _line(key_node)
            if name not in allowed:
                self.report(line, "unknown-field", _unknown(what, str(name), allowed))
                continue
            if name in found:
                first = self.field_lines[prefix + name]
                message = f"{what} '{name}' is given twice (first on line {first}): keep one"
                self.report(line, "duplicate-field", message, prefix + name)
                continue
            found[name] = value_node
            self.field_lines[prefix + name] = line
        return found

    # -- scalars: each returns None after reporting a problem

    def text(self, node: yaml.Node, name: str, *, optional: bool = False) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _NULL and node.style is None:
                if not optional:
                    self.report(_line(node), "empty-field", f"{name}: must not be empty", name)
                return None
            return node.value
        kind = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
        self.report(
            _line(node),
            "wrong-type",
            f"{name}: expected text but found {kind}; put the text in quotes if it starts with - [ or {{",
            name,
        )
        return None

    def whole(self, node: yaml.Node, name: str, hint: str) -> int | None:
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
            return int(value)
        self.report(_line(node), "wrong-type", f"{name}: must be {hint}, not {_show(node)}", name)
        return None

    def decimal(self, node: yaml.Node, name: str, hint: str) -> Decimal | None:
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            return Decimal(value.strip().replace(",", "."))
        self.report(_line(node), "wrong-type", f"{name}: must be {hint}, not {_show(node)}", name)
        return None

    def boolean(self, node: yaml.Node, name: str) -> bool | None:
        if isinstance(node, yaml.ScalarNode):
            word = unicodedata.normalize("NFC", node.value).casefold()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
        self.report(_line(node), "not-boolean", f"{name}: must be true or false, not {_show(node)}", name)
        return None

    def choice(self, node: yaml.Node, name: str, enum: type[Any]) -> Any:
        value = self.text(node, name)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            choices = ", ".join(e.value for e in enum)
            self.report(_line(node), f"bad-{name}", f"{name}: '{value}' is not one of {choices}", name)
            return None

    def text_list(self, node: yaml.Node, name: str) -> tuple[str, ...] | None:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _NULL and node.style is None:
                return ()
            return (node.value,)  # a lone value is a list of one
        if isinstance(node, yaml.SequenceNode):
            values = [self.text(child, name) for child in node.value]
            if any(v is None for v in values):
                return None
            return tuple(values)  # type: ignore[arg-type]
        self.report(_line(node), "wrong-type", f"{name}: expected a list like [a, b]", name)
        return None

    def topic_names(self, node: yaml.Node) -> dict[str, str] | None:
        """bank.yaml's ``topics:``, a mapping of topic code to its name."""
        if not isinstance(node, yaml.MappingNode):
            self.report(_line(node), "wrong-type", "topics: expected a mapping like {ham-so: Hàm số}", "topics")
            return None
        names: dict[str, str] = {}
        for key_node, value_node in node.value:
            code = self.text(key_node, "topics")
            name = self.text(value_node, f"topics.{code}")
            if code is None or name is None:
                continue
            if code in names:
                self.report(_line(key_node), "duplicate-field", f"topics: '{code}' is named twice: keep one", "topics")
            elif not name.strip() or len(name) > MAX_TOPIC_NAME:
                self.report(
                    _line(value_node),
                    "bad-topic-name",
                    f"topics.{code}: a name of 1 to {MAX_TOPIC_NAME} characters",
                    "topics",
                )
            else:
                names[code] = name.strip()
        return names

    def level(self, node: yaml.Node, name: str = "level") -> int | None:
        """A level as its number or its id in the bank's scheme.

        A number out of range is kept, for validate to report (an item as
        the teacher wrote it must be representable); an id of a scheme other
        than the bank's cannot be turned into a number and is reported here.
        """
        scheme = self.levels
        text = node.value.strip() if isinstance(node, yaml.ScalarNode) and node.tag != _NULL else None
        if text is not None and _WHOLE.fullmatch(text):
            return int(text)
        if text in scheme.ids:
            return scheme.ids.index(text) + 1
        if text is not None and any(text in other.ids for other in (LEGACY, SCHEME_2025)):
            self.report(_line(node), "level-range", scheme.range_message(text), name)
            return None
        hint = f"a whole number from 1 to {scheme.count}"
        if scheme != LEGACY:
            hint += f" or a level id ({', '.join(scheme.ids)})"
        self.report(_line(node), "wrong-type", f"{name}: must be {hint}, not {_show(node)}", name)
        return None

    def level_scheme(self, node: yaml.Node) -> LevelScheme | None:
        """bank.yaml's ``levels:``: ``2025``, or a list of ids and ``{id: name}`` mappings."""
        how = (
            "write levels: 2025 (Biết, Hiểu, Vận dụng), or a list of level ids such as"
            " [biet, hieu, van-dung], each id optionally with its name (- biet: Biết);"
            " leave levels: out for the four legacy levels"
        )
        if isinstance(node, yaml.ScalarNode) and node.tag != _NULL and node.value.strip() == "2025":
            return SCHEME_2025
        before = len(self.problems)
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.report(_line(node), "bad-levels", f"levels: {_show(node)} is not a level scheme: {how}", "levels")
            return None
        entries: list[tuple[str, str | None]] = []
        for entry in node.value:
            if isinstance(entry, yaml.MappingNode) and len(entry.value) == 1:
                key_node, name_node = entry.value[0]
                level_id, name = self.text(key_node, "levels"), self.text(name_node, "levels")
                if name is not None and not 1 <= len(name.strip()) <= MAX_LEVEL_NAME:
                    self.report(
                        _line(name_node), "bad-levels", f"levels: a name of 1 to {MAX_LEVEL_NAME} characters", "levels"
                    )
                    continue
                name = name.strip() if name is not None else None
            elif isinstance(entry, yaml.ScalarNode):
                level_id, name = self.text(entry, "levels"), None
            else:
                self.report(_line(entry), "bad-levels", f"levels: {_show(entry)} is not a level: {how}", "levels")
                continue
            if level_id is None:
                continue
            if not _LEVEL_ID.fullmatch(level_id):
                self.report(
                    _line(entry),
                    "bad-levels",
                    f"levels: '{level_id}' is not a level id: start with a letter and use a-z, digits and -"
                    " (items may write level: 2 for the second level, so an id is never a number)",
                    "levels",
                )
            elif level_id in (i for i, _ in entries):
                self.report(_line(entry), "bad-levels", f"levels: '{level_id}' is listed twice: keep one", "levels")
            else:
                entries.append((level_id, name))
        if len(node.value) > MAX_LEVELS:
            self.report(
                _line(node), "bad-levels", f"levels: {len(node.value)} levels, more than {MAX_LEVELS}: {how}", "levels"
            )
        if len(self.problems) > before:
            return None
        return scheme_of(entries)

    # -- items

    def item(self, node: yaml.MappingNode, parent: _Parent | None = None) -> SourceItem | None:
        """An item, or with `parent` a child of that set."""
        self.field_lines = {}
        self.failed = False
        start = _line(node)
        fields = self.fields(node, ITEM_FIELDS, "field")
        values: dict[str, Any] = {}
        if parent is None:
            for name in REQUIRED_FIELDS:
                if name not in fields:
                    self.report(
                        start,
                        "missing-field",
                        f"missing field '{name}': every item needs {', '.join(REQUIRED_FIELDS)}",
                        name,
                    )
        else:
            for name in SET_ONLY:
                if name in fields:
                    fields.pop(name)
                    how = {
                        "version": "raise the set's version instead",
                        "status": "a set is reviewed as one unit",
                    }.get(name, "all items of a set share it")
                    self.report(
                        self.field_lines[name],
                        "set-child-field",
                        f"{name}: an item of set {parent.name} takes its {name} from the set: remove it here ({how})",
                        name,
                    )
            given = {name for name in SET_DEFAULTS if parent.values.get(name) is not None}
            for name in CHILD_REQUIRED:
                if name not in fields and name not in given:
                    self.report(
                        start,
                        "missing-field",
                        f"missing field '{name}': every item of a set needs {', '.join(CHILD_REQUIRED)}"
                        f" (the set gives {', '.join(SET_ONLY)} and topic)",
                        name,
                    )
        simple = {
            "id": lambda n: self.text(n, "id"),
            "version": lambda n: self.whole(n, "version", "a whole number (1, 2 ...)"),
            "type": lambda n: self.choice(n, "type", ItemType),
            "subject": lambda n: self.text(n, "subject"),
            "grade": lambda n: self.whole(n, "grade", "a whole number such as 12"),
            "topic": lambda n: self.text(n, "topic"),
            "level": lambda n: self.level(n),
            "points": lambda n: self.decimal(n, "points", "a number such as 0.25"),
            "lang": lambda n: self.text(n, "lang"),
            "status": lambda n: self.choice(n, "status", Status),
            "tags": lambda n: self.text_list(n, "tags"),
            "shuffle": lambda n: self.boolean(n, "shuffle"),
            "stem": lambda n: self.text(n, "stem"),
            "explanation": lambda n: self.text(n, "explanation", optional=True),
            "media": lambda n: self.text_list(n, "media"),
        }
        for name, convert in simple.items():
            if name in fields:
                values[name] = convert(fields[name])
        item_type = values.get("type")
        if item_type is not None:
            self._type_fields(item_type, fields, values, start)
        inherited: set[str] = set()
        if parent is not None:
            for name in (*SET_ONLY, *SET_DEFAULTS):
                if name not in fields and parent.values.get(name) is not None:
                    values[name] = parent.values[name]
                    inherited.add(name)
                    if name in parent.lines:
                        self.field_lines[name] = parent.lines[name]
            values["set_id"] = parent.id
        values = {k: v for k, v in values.items() if v is not None}
        # A child of a set whose own fields failed lacks what the set had to
        # give: the set's problems are reported, and the child is not built.
        if self.failed or any(name not in values for name in REQUIRED_FIELDS):
            return None
        return SourceItem(Item(**values), self.filename, start, dict(self.field_lines), frozenset(inherited))

    def item_set(self, node: yaml.MappingNode) -> tuple[SourceSet | None, list[SourceItem]]:
        """A set and its children; (None, []) if anything in it has a problem."""
        self.field_lines = {}
        self.failed = False
        start = _line(node)
        fields = self.fields(node, SET_FIELDS, "set field")
        for name in SET_REQUIRED:
            if name not in fields:
                self.report(
                    start,
                    "missing-field",
                    f"missing field '{name}': every set needs {', '.join(SET_REQUIRED)} and items:",
                    name,
                )
        convert = {
            "id": lambda n: self.text(n, "id"),
            "version": lambda n: self.whole(n, "version", "a whole number (1, 2 ...)"),
            "subject": lambda n: self.text(n, "subject"),
            "grade": lambda n: self.whole(n, "grade", "a whole number such as 12"),
            "topic": lambda n: self.text(n, "topic"),
            "level": lambda n: self.level(n),
            "lang": lambda n: self.text(n, "lang"),
            "status": lambda n: self.choice(n, "status", Status),
            "tags": lambda n: self.text_list(n, "tags"),
            "shuffle": lambda n: self.boolean(n, "shuffle"),
            "stimulus": lambda n: self.text(n, "stimulus"),
            "media": lambda n: self.text_list(n, "media"),
        }
        values = {name: read(fields[name]) for name, read in convert.items() if name in fields}
        set_failed = self.failed
        lines = dict(self.field_lines)
        set_id = values.get("id")
        name = set_id if set_id is not None else "?"  # for messages
        children: list[SourceItem] = []
        items = fields.get("items")
        if items is None or _empty(items):
            self.report(
                lines.get("items", start),
                "set-empty",
                f"set {name} has no items: list the questions on its stimulus under items:"
                " (- id: ..., type: ..., level: ..., points: ..., stem: ...), or write a lone item instead",
                "items",
            )
            set_failed = True
        elif not isinstance(items, yaml.SequenceNode):
            self.report(
                _line(items),
                "wrong-type",
                "items: expected a list of the set's items, each starting with '- id:'",
                "items",
            )
            set_failed = True
        else:
            parent = _Parent(set_id, values, lines)
            for child_node in items.value:
                child = None
                if not isinstance(child_node, yaml.MappingNode):
                    self.report(
                        _line(child_node),
                        "not-an-item",
                        "each entry of items: must be an item of the set (a mapping of fields such as id:)",
                    )
                elif _type_of(child_node) == SET:
                    self.report(
                        _line(child_node),
                        "set-nested",
                        f"a set cannot hold another set: put these items directly under set {name}'s items:,"
                        " or make this set a separate entry of the file's list",
                        "items",
                    )
                else:
                    child = self.item(child_node, parent)
                if child is None:
                    set_failed = True
                else:
                    children.append(child)
        if set_failed:
            return None, []
        values = {k: v for k, v in values.items() if v is not None}
        item_set = ItemSet(children=tuple(c.item.id for c in children), **values)
        return SourceSet(item_set, self.filename, start, lines), children

    def _type_fields(
        self, item_type: ItemType, fields: dict[str, yaml.Node], values: dict[str, Any], start: int
    ) -> None:
        needed = TYPE_FIELDS[item_type]
        for name in _TYPE_SPECIFIC:
            if name in fields and name not in needed:
                message = f"field '{name}' is not used by {item_type} items: remove it"
                if item_type == ItemType.ESSAY and name == "answer":
                    message += " (put a model answer in explanation:)"
                self.report(self.field_lines[name], "field-not-for-type", message, name)
            elif name not in fields and name in needed:
                want = " and ".join(f"'{n}'" for n in needed)
                self.report(
                    start,
                    "missing-field",
                    f"missing field '{name}': a {item_type} item needs {want}",
                    name,
                )
        if any(name not in fields for name in needed):
            return
        if item_type in (ItemType.SINGLE, ItemType.MULTIPLE):
            values["options"] = self._options(fields["options"], fields["answer"])
        elif item_type == ItemType.TRUEFALSE4:
            values["statements"] = self._statements(fields["statements"])
        elif item_type == ItemType.SHORT:
            values["answer"] = self._short_key(fields["answer"])

    def _options(self, node: yaml.Node, answer_node: yaml.Node) -> tuple[Option, ...] | None:
        if not isinstance(node, yaml.MappingNode):
            self.report(
                _line(node),
                "wrong-type",
                "options: write one option per line, as 'A: text'",
                "options",
            )
            return None
        texts: dict[str, str] = {}
        fixed: set[str] = set()
        for key_node, value_node in node.value:
            option_id = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            name = f"options.{option_id}"
            if option_id in texts:
                self.report(_line(key_node), "duplicate-option", f"option {option_id} is given twice", name)
                continue
            self.field_lines[name] = _line(key_node)
            if isinstance(value_node, yaml.MappingNode):  # A: {text: ..., fixed: true}
                parts = self.fields(value_node, OPTION_FIELDS, "option field", name + ".")
                if "text" not in parts:
                    message = f"option {option_id} has no text: write {option_id}: {{text: ..., fixed: true}}"
                    self.report(_line(value_node), "missing-field", message, name)
                    continue
                text = self.text(parts["text"], name)
                if "fixed" in parts and self.boolean(parts["fixed"], name + ".fixed"):
                    fixed.add(option_id)
            else:
                text = self.text(value_node, name)
            if text is not None:
                texts[option_id] = text
        keys = self._answer_ids(answer_node)
        if keys is None:
            return None
        for key, line in keys.items():
            if key not in texts:
                listed = ", ".join(texts) or "none"
                self.report(
                    line,
                    "key-not-in-options",
                    f"answer '{key}' is not among the options ({listed}): use one of their ids",
                    "answer",
                )
        return tuple(Option(i, t, i in keys, i in fixed) for i, t in texts.items())

    def _answer_ids(self, node: yaml.Node) -> dict[str, int] | None:
        """The keys named by `answer:` (one id or a list) with their lines."""
        children = node.value if isinstance(node, yaml.SequenceNode) else [node]
        keys: dict[str, int] = {}
        for child in children:
            if not isinstance(child, yaml.ScalarNode) or child.tag == _NULL:
                self.report(
                    _line(child),
                    "wrong-type",
                    "answer: name the correct option, e.g. 'answer: B' or 'answer: [A, C]'",
                    "answer",
                )
                return None
            if child.value in keys:
                self.report(
                    _line(child),
                    "duplicate-key",
                    f"answer '{child.value}' is listed twice",
                    "answer",
                )
            keys[child.value] = _line(child)
        return keys

    def _statements(self, node: yaml.Node) -> tuple[Statement, ...] | None:
        if not isinstance(node, yaml.MappingNode):
            self.report(
                _line(node),
                "wrong-type",
                "statements: write a: b: c: d:, each with text: and answer: true or false",
                "statements",
            )
            return None
        statements = []
        seen: set[str] = set()
        for key_node, value_node in node.value:
            sid = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
            name = f"statements.{sid}"
            if sid in seen:
                self.report(_line(key_node), "duplicate-statement", f"statement {sid} is given twice", name)
                continue
            seen.add(sid)
            self.field_lines[name] = _line(key_node)
            if not isinstance(value_node, yaml.MappingNode):
                self.report(
                    _line(value_node),
                    "truefalse4-statements",
                    f"statement {sid}: give text: and answer: true or false",
                    name,
                )
                continue
            keys = [k for k, _ in value_node.value if isinstance(k, yaml.ScalarNode)]
            fixed = next((k for k in keys if k.value == "fixed"), None)
            if fixed is not None:
                self.report(
                    _line(fixed),
                    "fixed-statement",
                    f"statement {sid}: fixed: is for options only; to keep the statements a-d in order,"
                    " write shuffle: false on the item",
                    name + ".fixed",
                )
                kept = [(k, v) for k, v in value_node.value if k is not fixed]
                value_node = yaml.MappingNode(value_node.tag, kept, value_node.start_mark, value_node.end_mark)
            parts = self.fields(value_node, STATEMENT_FIELDS, "statement field", name + ".")
            text = self.text(parts["text"], name + ".text") if "text" in parts else None
            answer = self.boolean(parts["answer"], name + ".answer") if "answer" in parts else None
            for part in STATEMENT_FIELDS:
                if part not in parts:
                    message = f"statement {sid} has no {part}: give text: and answer: true or false"
                    self.report(_line(value_node), "truefalse4-statements", message, name)
            if text is not None and answer is not None:
                statements.append(Statement(sid, text, answer))
        return tuple(statements)

    def _short_key(self, node: yaml.Node) -> ShortKey | None:
        if isinstance(node, yaml.ScalarNode):
            key = self.text(node, "answer")
            return ShortKey(key) if key is not None else None
        if not isinstance(node, yaml.MappingNode):
            self.report(
                _line(node),
                "wrong-type",
                "answer: write the key, e.g. answer: '-1,5', or {key: ..., format: ..., tolerance: ...}",
                "answer",
            )
            return None
        parts = self.fields(node, SHORT_ANSWER_FIELDS, "answer field", "answer.")
        if "key" not in parts:
            self.report(_line(node), "missing-field", "missing field 'key' in answer", "answer.key")
            return None
        key = self.text(parts["key"], "answer.key")
        fmt = ShortFormat.VN_NUMERIC
        if "format" in parts:
            fmt = self.choice(parts["format"], "format", ShortFormat)
        tolerance = None
        if "tolerance" in parts:
            tolerance = self.decimal(parts["tolerance"], "answer.tolerance", "a number such as 0.05")
        if key is None or fmt is None:
            return None
        return ShortKey(key, fmt, tolerance)


@dataclass(frozen=True)
class _Parent:
    """What a set's children are read with: its id, its values as read (None
    where they failed) and the lines of its fields."""

    id: str | None  # None when the set's id failed: then the set and its children are dropped
    values: Mapping[str, Any]
    lines: Mapping[str, int]

    @property
    def name(self) -> str:
        """The set's id for messages."""
        return self.id if self.id is not None else "?"


def _empty(node: yaml.Node) -> bool:
    if isinstance(node, yaml.ScalarNode):
        return node.tag == _NULL and not node.style  # libyaml's composer gives "", PyYAML's None
    return isinstance(node, yaml.SequenceNode | yaml.MappingNode) and not node.value


def _unknown(what: str, name: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown {what} '{name}' — did you mean '{close[0]}'?"
    return f"unknown {what} '{name}': the valid names are {', '.join(allowed)}"


def _show(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return f"'{node.value}'" if node.value else "empty"
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


# ---------------------------------------------------------------- writing


class _FlowList(list):  # type: ignore[type-arg]
    """A list written on one line: tags: [a, b]."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    # Multi-line text reads best as a literal block; PyYAML falls back to a
    # quoted style by itself when the text cannot be a block.
    style = "|" if "\n" in text else None
    return dumper.represent_scalar(_STR, text, style=style)


def _represent_decimal(dumper: yaml.SafeDumper, number: Decimal) -> yaml.Node:
    text = format(number, "f")
    # Tag it as whatever YAML would read the plain text as (int or float), so
    # the emitter writes `points: 1` rather than `points: !!float 1`.
    tag = dumper.resolve(yaml.ScalarNode, text, (True, False))
    return dumper.represent_scalar(tag, text)


def _represent_flow_list(dumper: yaml.SafeDumper, values: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", values, flow_style=True)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(Decimal, _represent_decimal)
_Dumper.add_representer(_FlowList, _represent_flow_list)


def item_to_dict(item: Item) -> dict[str, Any]:
    """The item as the plain mapping written to YAML (fields in reading order)."""
    data: dict[str, Any] = {
        "id": item.id,
        "version": item.version,
        "type": item.type.value,
        "subject": item.subject,
    }
    if item.grade is not None:
        data["grade"] = item.grade
    data.update(
        topic=item.topic,
        level=item.level,
        points=item.points,
        lang=item.lang,
        status=item.status.value,
    )
    if item.tags:
        data["tags"] = _FlowList(item.tags)
    if not item.shuffle:
        data["shuffle"] = False
    data["stem"] = item.stem
    if item.type in (ItemType.SINGLE, ItemType.MULTIPLE):
        data["options"] = {
            option.id: {"text": option.text, "fixed": True} if option.fixed else option.text for option in item.options
        }
        keys = list(item.correct_option_ids)
        single_key = item.type == ItemType.SINGLE and len(keys) == 1
        data["answer"] = keys[0] if single_key else _FlowList(keys)
    elif item.type == ItemType.TRUEFALSE4:
        data["statements"] = {s.id: {"text": s.text, "answer": s.answer} for s in item.statements}
    elif item.type == ItemType.SHORT and item.answer is not None:
        key = item.answer
        if key.format == ShortFormat.VN_NUMERIC and key.tolerance is None:
            data["answer"] = key.canonical
        else:
            data["answer"] = {"key": key.canonical, "format": key.format.value}
            if key.tolerance is not None:
                data["answer"]["tolerance"] = key.tolerance
    if item.explanation is not None:
        data["explanation"] = item.explanation
    if item.media:
        data["media"] = _FlowList(item.media)
    return data


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=4096, indent=2)


def serialise_item(item: Item) -> str:
    """YAML text for one item; ``parse_text(serialise_item(x))`` gives back x.

    A set's child is written as a lone item with everything it took from its
    set, and comes back without ``set_id``: a set is written whole, by
    `serialise_set`.
    """
    return dump_yaml(item_to_dict(item))


def set_to_dict(item_set: ItemSet, children: Iterable[Item]) -> dict[str, Any]:
    """The set as the plain mapping written to YAML, its children under ``items:``.

    `children` are the set's items in its order; a child gives only what it
    does not take from the set.
    """
    children = list(children)
    if tuple(c.id for c in children) != item_set.children or any(
        (c.set_id, c.version) != (item_set.id, item_set.version) for c in children
    ):
        raise ValueError(f"set {item_set.key}: the children given are not its children {item_set.children}")
    data: dict[str, Any] = {"id": item_set.id, "version": item_set.version, "type": SET, "subject": item_set.subject}
    if item_set.grade is not None:
        data["grade"] = item_set.grade
    data["topic"] = item_set.topic
    if item_set.level is not None:
        data["level"] = item_set.level
    data.update(lang=item_set.lang, status=item_set.status.value)
    if item_set.tags:
        data["tags"] = _FlowList(item_set.tags)
    if item_set.shuffle:
        data["shuffle"] = True
    data["stimulus"] = item_set.stimulus
    if item_set.media:
        data["media"] = _FlowList(item_set.media)
    data["items"] = [_child_to_dict(child, item_set) for child in children]
    return data


def _child_to_dict(child: Item, item_set: ItemSet) -> dict[str, Any]:
    data = item_to_dict(child)
    for name in ("version", "subject", "grade", "lang", "status"):
        data.pop(name, None)
    if child.topic == item_set.topic:
        del data["topic"]
    if child.level == item_set.level:
        del data["level"]
    return data


def serialise_set(item_set: ItemSet, children: Iterable[Item]) -> str:
    """YAML text for one set; `parse_text` gives back the set and `children`."""
    return dump_yaml(set_to_dict(item_set, children))


def serialise_items(items: Iterable[Item], sets: Iterable[ItemSet] = ()) -> str:
    """YAML text for a list of items in one file.

    Children of `sets` (items with ``set_id``) are written inside their set,
    where the first of them stands in `items`.
    """
    by_key = {(s.id, s.version): s for s in sets}
    items = list(items)
    entries: list[dict[str, Any]] = []
    written: set[tuple[str, int]] = set()
    for item in items:
        if item.set_id is None:
            entries.append(item_to_dict(item))
            continue
        key = (item.set_id, item.version)
        if key not in by_key:
            raise ValueError(f"item {item.key} is a child of set {item.set_id}, which was not given")
        if key not in written:
            written.add(key)
            item_set = by_key[key]
            place = {child_id: i for i, child_id in enumerate(item_set.children)}
            children = sorted(
                (c for c in items if (c.set_id, c.version) == key), key=lambda c: place.get(c.id, len(place))
            )
            entries.append(set_to_dict(item_set, children))  # which refuses children not the set's
    return dump_yaml(entries)


def serialise_bank_info(info: BankInfo) -> str:
    data = {k: getattr(info, k) for k in BANK_FIELDS if k != "levels" and getattr(info, k) is not None}
    if "topics" in data:
        data["topics"] = dict(data["topics"])
    if info.levels.spec is not None:
        data["levels"] = info.levels.spec
    return dump_yaml(data)
