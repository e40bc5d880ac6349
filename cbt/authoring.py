"""The teachers' workspace: items written in the browser and their review.

An item is edited as a set of form fields; they are turned into the native
YAML shape and read by itembank's own parser and checks, so the browser
accepts exactly what ``cbt bank validate`` accepts. The canonical YAML
(itembank's serialiser) is what is stored.

Workflow (one row of draft_items per item version)::

    draft --submit--> submitted --approve--> approved --edit--> version + 1 (draft)
      ^                   |
      +------return-------+ (with a comment; the author edits and submits again)
    any state --retire (with a comment)--> retired

Who may do what:

- teachers, reviewers and administrators write items in their organisation;
- a draft is changed only by its author or an administrator of its
  organisation (others in the school duplicate it to write their own), and
  only while it is a draft or returned;
- editing an approved item (or a version already in the bank) creates the
  next version as a new draft: approved and imported versions stay frozen;
- a reviewer approves or returns submitted items of the subjects assigned
  to them (staff_subjects) in their organisation or its schools, never
  their own.

Subjects, of items and of staff, are codes from the organisation's list
(cbt.subjects): whatever names one of them ("Toán", "toan") is stored as its
code, and anything else is refused, so an item and its reviewer always meet.

An item set (a passage and the questions on it) is a draft like an item: one
draft_items row of type 'set' whose source is the set with its children, so
it is written, submitted, reviewed, approved, versioned, retired and put
into a release as one unit, by the same steps. Its children's ids are listed
in draft_set_children: an id is one item's, one set's or one child's across
the workspace and the bank, as a release requires.

An organisation's teachers write at one level scheme (workspace_levels: the
legacy four or the 2025 three), its own choice or else its department's.
Teachers never choose a scheme: the editor's level menu names the scheme's
levels, and a release built in the workspace carries it in its bank.yaml.

Every step writes a review_events row in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import asyncpg

from cbt import accounts, releases
from cbt import subjects as subject_list
from cbt.accounts import Staff
from cbt.platform import uploads
from cbt.platform.errors import Conflict, FieldProblem, Forbidden, NotFound, UserError
from cbt.platform.inputs import has_bad_characters, whole
from cbt.platform.uploads import FOREIGN_IMPORT_BYTES, MAX_IMPORT_BYTES, MAX_MEDIA_BYTES
from cbt.roles import AUTHORS
from itembank.formats.imported import ID_PREFIX, ImportDefaults, prefix_from_name
from itembank.formats.yaml_format import dump_yaml, parse_text, serialise_item, serialise_items, serialise_set
from itembank.levels import LEGACY, SCHEME_2025, LevelError, LevelScheme
from itembank.model import Item, ItemSet, ItemType, ShortFormat, Status
from itembank.validate import check_item, check_items

STATES = ("draft", "submitted", "returned", "approved", "retired")
EDITABLE = ("draft", "returned")
OPTION_IDS = "ABCDEF"
STATEMENT_IDS = "abcd"
TYPES = tuple(t.value for t in ItemType)
SET = "set"  # a draft row's type when it holds an item set
KINDS = (*TYPES, SET)  # what the lists filter by
SHORT_FORMATS = tuple(f.value for f in ShortFormat)
MAX_COMMENT = 2000
# The level schemes a workspace writes at, by the name workspace_levels stores.
SCHEMES: dict[str, LevelScheme] = {"legacy": LEGACY, "2025": SCHEME_2025}
_MEDIA_NAME = re.compile(r"[^a-z0-9._-]+")

# What the item's own status field says for each workspace state: only an
# approved item may enter a signed release.
_STATUS_OF_STATE = {"approved": Status.APPROVED, "retired": Status.RETIRED}


# ---------------------------------------------------------------- form <-> item


@dataclass
class Checked:
    """The outcome of checking editor fields: the item (or the set and its
    children), or the problems per field."""

    item: Item | None
    problems: dict[str, list[FieldProblem]] = field(default_factory=dict)  # form field ("" = general) -> problems
    set: ItemSet | None = None  # an item set's editor: the set, and `children` in its order
    children: tuple[Item, ...] = ()

    @property
    def ok(self) -> bool:
        return (self.item is not None or self.set is not None) and not self.problems


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name, "")
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""


def _values(fields: Mapping[str, Any], name: str) -> list[str]:
    """Every value a form gives `name` (a repeated field), or a test's list."""
    getall = getattr(fields, "getall", None)
    values = getall(name, []) if getall else fields.get(name, [])
    if isinstance(values, str):
        values = [values]
    return [v for v in values if isinstance(v, str)]


def _keys(fields: Mapping[str, Any]) -> list[str]:
    return [v for v in _values(fields, "key") if v in OPTION_IDS]


def fields_to_data(fields: Mapping[str, Any], *, item_id: str, version: int, status: Status) -> dict[str, Any]:
    """The editor's fields in the native YAML shape (values as typed, for the parser to judge)."""
    kind = _text(fields, "type")
    data: dict[str, Any] = {"id": item_id, "version": version, "type": kind, "subject": _text(fields, "subject")}
    if _text(fields, "grade"):
        data["grade"] = _text(fields, "grade")
    data.update(
        topic=_text(fields, "topic"),
        level=_text(fields, "level"),
        points=_text(fields, "points"),
        lang=_text(fields, "lang") or "vi",
        status=status.value,
    )
    tags = [t.strip() for t in _text(fields, "tags").split(",") if t.strip()]
    if tags:
        data["tags"] = tags
    if not fields.get("shuffle"):
        data["shuffle"] = False
    data["stem"] = _text(fields, "stem")
    if kind in ("single", "multiple"):
        data["options"] = {i: _text(fields, f"opt_{i}") for i in OPTION_IDS if _text(fields, f"opt_{i}")}
        keys = _keys(fields)
        data["answer"] = keys[0] if kind == "single" and len(keys) == 1 else keys
    elif kind == "truefalse4":
        data["statements"] = {
            s: {"text": _text(fields, f"st_{s}"), "answer": _text(fields, f"st_{s}_answer")} for s in STATEMENT_IDS
        }
    elif kind == "short":
        answer = {"key": _text(fields, "short_key"), "format": _text(fields, "short_format") or "vn-numeric"}
        if _text(fields, "short_tolerance"):
            answer["tolerance"] = _text(fields, "short_tolerance")
        data["answer"] = answer
    if _text(fields, "explanation"):
        data["explanation"] = _text(fields, "explanation")
    media = [m.strip() for m in _text(fields, "media").split(",") if m.strip()]
    if media:
        data["media"] = media
    return data


def _form_field(problem_field: str | None, kind: str) -> str:
    """The editor field a problem belongs to ("" for the item as a whole)."""
    if not problem_field:
        return ""
    head, _, rest = problem_field.partition(".")
    if head == "options":
        return f"opt_{rest.split('.')[0]}" if rest else "key"
    if head == "statements":
        parts = rest.split(".")
        if not rest:
            return "statements"
        return f"st_{parts[0]}_answer" if parts[-1] == "answer" and len(parts) > 1 else f"st_{parts[0]}"
    if head == "answer":
        if kind == "short":
            return {"format": "short_format", "tolerance": "short_tolerance"}.get(rest, "short_key")
        return "key"
    if head in ("id", "version"):
        return ""
    return head


def check_fields(
    fields: Mapping[str, Any],
    *,
    item_id: str,
    version: int,
    status: Status = Status.DRAFT,
    media_paths: set[str] | None = None,
    levels: LevelScheme = LEGACY,
) -> Checked:
    """Parse and check the editor's fields with itembank's own rules, levels
    those of the workspace's scheme."""
    if _text(fields, "type") not in TYPES:
        return Checked(None, {"type": [FieldProblem(f"choose the item type: {', '.join(TYPES)}", "bad-type")]})
    data = fields_to_data(fields, item_id=item_id, version=version, status=status)
    return check_source(dump_yaml(data), media_paths, kind=data["type"], levels=levels, typed_level=data["level"])


def check_source(
    text: str,
    media_paths: set[str] | None,
    *,
    kind: str = "",
    levels: LevelScheme = LEGACY,
    typed_level: str = "",
) -> Checked:
    result = parse_text(text, "item", levels=levels)
    problems = list(result.problems)
    item = result.items[0].item if len(result.items) == 1 and not result.sets else None
    if item is not None:
        exists = None if media_paths is None else media_paths.__contains__
        problems += check_item(result.items[0], exists, levels=levels)
    by_field: dict[str, list[FieldProblem]] = {}
    for p in problems:
        by_field.setdefault(_form_field(p.field, kind or (item.type.value if item else "")), []).append(
            _level_problem(typed_level, levels) if p.code == "level-range" else FieldProblem(p.message, p.code)
        )
    return Checked(item, by_field)


def _level_problem(typed: str, levels: LevelScheme, where: str = "") -> FieldProblem:
    """A level the workspace's scheme lacks, saying which levels it has (not bank.yaml's, as itembank would)."""
    listing = level_listing(levels)
    return FieldProblem(
        f"level {typed} is not a level your workspace writes at ({listing}): choose one of them",
        "level-not-in-scheme",
        where=where,
        level=typed,
        levels=listing,
    )


def level_names(levels: LevelScheme) -> dict[int, str]:
    """What pages call each level: the scheme's names, except the legacy four's,
    which the catalogs name in each language (level.1 ...): {} for those."""
    return {} if levels == LEGACY else {n: levels.name(n) for n in levels.numbers}


def level_listing(levels: LevelScheme) -> str:
    """The scheme's levels for a message: "1 Biết, 2 Hiểu, 3 Vận dụng"."""
    return ", ".join(f"{n} {levels.name(n)}" for n in levels.numbers)


# ---------------------------------------------------------------- an item set's fields
#
# The set editor's form holds the set's own fields (id, subject, grade, topic,
# lang, tags, shuffle, stimulus, media) and, for each child, an item's fields
# prefixed with "c<key>_" (c0_stem, c0_opt_A, c3_key ...), the key a number the
# page gives each child once. A repeated "child" field lists the keys in the
# children's order, so reordering, adding or removing a child on the page is
# moving, adding or removing its fieldset; no field is renamed.

_CHILD_KEY = re.compile(r"[0-9]{1,4}")
# The set's own fields a problem may name, as the form calls them.
_SET_FORM_FIELDS = {"id", "subject", "grade", "topic", "lang", "tags", "shuffle", "stimulus", "media"}


class _Child:
    """One child's fields of the set editor's form, read as an item editor's fields."""

    def __init__(self, fields: Mapping[str, Any], key: str) -> None:
        self._fields, self._prefix = fields, f"c{key}_"

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(self._prefix + name, default)

    def getall(self, name: str, default: Any = ()) -> list[str]:
        return _values(self._fields, self._prefix + name) or list(default)


def child_keys(fields: Mapping[str, Any]) -> list[str]:
    """The children's keys in the order the form gives them (each once)."""
    return list(dict.fromkeys(k for k in _values(fields, "child") if _CHILD_KEY.fullmatch(k)))


def set_fields_to_data(fields: Mapping[str, Any], *, set_id: str, version: int, status: Status) -> dict[str, Any]:
    """The set editor's fields in the native YAML shape, children under ``items:`` in the form's order."""
    data: dict[str, Any] = {"id": set_id, "version": version, "type": SET, "subject": _text(fields, "subject")}
    if _text(fields, "grade"):
        data["grade"] = _text(fields, "grade")
    data.update(topic=_text(fields, "topic"), lang=_text(fields, "lang") or "vi", status=status.value)
    tags = [t.strip() for t in _text(fields, "tags").split(",") if t.strip()]
    if tags:
        data["tags"] = tags
    if fields.get("shuffle"):
        data["shuffle"] = True
    data["stimulus"] = _text(fields, "stimulus")
    media = [m.strip() for m in _text(fields, "media").split(",") if m.strip()]
    if media:
        data["media"] = media
    children = []
    for key in child_keys(fields):
        child = _Child(fields, key)
        one = fields_to_data(child, item_id=_text(child, "id"), version=version, status=status)
        for name in ("version", "subject", "grade", "lang", "status"):
            one.pop(name, None)  # the set's
        if not one["topic"]:
            del one["topic"]  # the set's topic
        children.append(one)
    data["items"] = children  # last: the children's lines follow every field of the set's
    return data


def _child_lines(text: str, count: int) -> list[int]:
    """The line each child starts on in `text`, dump_yaml's writing of set_fields_to_data
    (items: last, a block list at the left margin); [] if they cannot be told apart."""
    lines = text.split("\n")
    if "items:" not in lines:
        return []
    start = lines.index("items:")
    found = [n + 1 for n, line in enumerate(lines) if n > start and line.startswith("- ")]
    return found if len(found) == count else []


def check_set_fields(
    fields: Mapping[str, Any],
    *,
    set_id: str,
    version: int,
    status: Status = Status.DRAFT,
    media_paths: set[str] | None = None,
    levels: LevelScheme = LEGACY,
) -> Checked:
    """Parse and check the set editor's fields as one set file, with itembank's
    own rules; a child's problem belongs to that child's field (c3_stem)."""
    keys = child_keys(fields)
    data = set_fields_to_data(fields, set_id=set_id, version=version, status=status)
    text = dump_yaml(data)
    result = parse_text(text, "set", levels=levels)
    problems = list(result.problems)
    if result.sets:
        exists = None if media_paths is None else media_paths.__contains__
        problems += check_items(result.items, exists, levels=levels, sets=result.sets)
    starts = _child_lines(text, len(keys))
    by_field: dict[str, list[FieldProblem]] = {}
    for p in problems:
        place = bisect_right(starts, p.line or 0) - 1
        if place < 0:
            name = {"id": "id", "items": "children"}.get(p.field or "", p.field if p.field in _SET_FORM_FIELDS else "")
            if p.code == "set-empty":
                problem = FieldProblem("the set has no questions yet: add at least one", "set-no-questions")
            else:
                problem = FieldProblem(p.message, p.code)
        else:
            child = data["items"][place]
            name = f"c{keys[place]}_" + ("id" if p.field == "id" else _form_field(p.field, child["type"]))
            if p.code == "level-range":
                problem = _level_problem(child["level"], levels)
            elif p.code == "duplicate-id":
                problem = FieldProblem(
                    f"the id {child['id']} is used twice in this set: give each question an id of its own",
                    "child-id-twice",
                    id=child["id"],
                )
            else:
                problem = FieldProblem(p.message, p.code)
        by_field.setdefault(name, []).append(problem)
    if not result.sets:
        return Checked(None, by_field)
    return Checked(None, by_field, set=result.sets[0].set, children=tuple(s.item for s in result.items))


def item_to_fields(item: Item) -> dict[str, str]:
    """The editor's fields of a stored item."""
    out = {
        "type": item.type.value,
        "subject": item.subject,
        "grade": "" if item.grade is None else str(item.grade),
        "topic": item.topic,
        "level": str(item.level),
        "points": format(item.points, "f"),
        "lang": item.lang,
        "tags": ", ".join(item.tags),
        "shuffle": "on" if item.shuffle else "",
        "stem": item.stem,
        "explanation": item.explanation or "",
        "media": ", ".join(item.media),
    }
    for o in item.options:
        out[f"opt_{o.id}"] = o.text
    out["keys"] = ",".join(item.correct_option_ids)
    for s in item.statements:
        out[f"st_{s.id}"] = s.text
        out[f"st_{s.id}_answer"] = "true" if s.answer else "false"
    if item.answer is not None:
        out["short_key"] = item.answer.canonical
        out["short_format"] = item.answer.format.value
        out["short_tolerance"] = "" if item.answer.tolerance is None else format(item.answer.tolerance, "f")
    return out


def set_to_fields(item_set: ItemSet, children: tuple[Item, ...] | list[Item]) -> tuple[dict[str, str], list[dict]]:
    """The set editor's fields of a stored set: its own, and each child's (with its key "k")."""
    values = {
        "type": SET,
        "subject": item_set.subject,
        "grade": "" if item_set.grade is None else str(item_set.grade),
        "topic": item_set.topic,
        "lang": item_set.lang,
        "tags": ", ".join(item_set.tags),
        "shuffle": "on" if item_set.shuffle else "",
        "stimulus": item_set.stimulus,
        "media": ", ".join(item_set.media),
    }
    kids = []
    for n, child in enumerate(children):
        one = item_to_fields(child)
        for name in ("subject", "grade", "lang"):
            del one[name]
        one["topic"] = "" if child.topic == item_set.topic else child.topic
        kids.append({"k": str(n), "id": child.id, **one})
    return values, kids


def children_values(fields: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each child's fields as typed (without the prefix), to show the set editor again."""
    out = []
    for key in child_keys(fields):
        prefix = f"c{key}_"
        one = {name[len(prefix) :]: v for name, v in fields.items() if name.startswith(prefix) and isinstance(v, str)}
        one.pop("key", None)
        one["keys"] = ",".join(_keys(_Child(fields, key)))
        out.append({**one, "k": key})
    return out


def item_from_draft(source: str) -> Item:
    """The item stored in a draft_items row (its canonical YAML)."""
    result = parse_text(source, "draft")
    if result.problems or len(result.items) != 1 or result.sets:
        raise UserError(
            "bad_draft_source", "the stored item cannot be read: " + "; ".join(str(p) for p in result.problems)
        )
    return result.items[0].item


def set_from_draft(source: str) -> tuple[ItemSet, tuple[Item, ...]]:
    """The set and its children stored in a draft_items row of type 'set'."""
    result = parse_text(source, "draft")
    if result.problems or len(result.sets) != 1:
        raise UserError(
            "bad_draft_source", "the stored item cannot be read: " + "; ".join(str(p) for p in result.problems)
        )
    return result.sets[0].set, tuple(s.item for s in result.items)


def with_status(item: Item, status: Status) -> Item:
    return replace(item, status=status)


def _source_with_status(row: asyncpg.Record, status: Status) -> str:
    """A row's source with its status (a set's, and its children's) set."""
    if row["type"] == SET:
        item_set, children = set_from_draft(row["source"])
        return serialise_set(replace(item_set, status=status), [replace(c, status=status) for c in children])
    return serialise_item(with_status(item_from_draft(row["source"]), status))


# ---------------------------------------------------------------- level schemes

_SCHEME = """
SELECT w.scheme FROM orgs o JOIN workspace_levels w ON w.org_id = o.id OR w.org_id = o.parent_id
WHERE o.id = $1 ORDER BY w.org_id = o.id DESC LIMIT 1
"""


async def level_scheme(conn: asyncpg.Connection, org_id: int) -> LevelScheme:
    """The levels this organisation's teachers write at: its own choice, else its
    department's, else the legacy four."""
    return SCHEMES[await conn.fetchval(_SCHEME, org_id) or "legacy"]


def scheme_name(levels: LevelScheme) -> str:
    """The name workspace_levels stores for a scheme: "legacy" or "2025"."""
    return next(name for name, scheme in SCHEMES.items() if scheme == levels)


async def own_level_scheme(conn: asyncpg.Connection, org_id: int) -> str:
    """The scheme this organisation chose itself ("" where it takes its department's)."""
    return await conn.fetchval("SELECT scheme FROM workspace_levels WHERE org_id = $1", org_id) or ""


async def set_level_scheme(conn: asyncpg.Connection, user: Staff, name: str) -> None:
    """An administrator chooses the scheme their organisation writes at ("" : its department's)."""
    name = (name or "").strip()
    if name and name not in SCHEMES:
        raise UserError(
            "bad_level_scheme",
            f"level scheme {name!r}: choose {' or '.join(SCHEMES)} (or your department's)",
            scheme=name,
        )
    if not name:
        await conn.execute("DELETE FROM workspace_levels WHERE org_id = $1", user.org_id)
        return
    await conn.execute(
        "INSERT INTO workspace_levels (org_id, scheme, set_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (org_id) DO UPDATE SET scheme = EXCLUDED.scheme, set_by = EXCLUDED.set_by, set_at = now()",
        user.org_id,
        name,
        user.id,
    )


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class DraftFilter:
    subject: str = ""
    grade: int | None = None
    topic: str = ""
    level: int | None = None
    type: str = ""
    state: str = ""
    text: str = ""


# A set's row also gives its children's ids and (distinct) levels, in order; a
# set matches a level when a child has it, and a text when a child's id has it.
_SEARCH = """
SELECT d.id, d.item_id, d.version, d.type, d.subject, d.grade, d.topic, d.level, d.points, d.state,
       d.author_id, u.username AS author, o.code AS org_code, left(d.stem, 120) AS stem_start, d.updated_at,
       st.exams, st.n, st.p, st.r_pb,
       array(SELECT k.child_id FROM draft_set_children k WHERE k.draft_pk = d.id ORDER BY k.position) AS children,
       array(SELECT DISTINCT k.level FROM draft_set_children k WHERE k.draft_pk = d.id ORDER BY 1) AS child_levels
FROM draft_items d JOIN users u ON u.id = d.author_id JOIN orgs o ON o.id = d.org_id
LEFT JOIN LATERAL (
    -- Statistics of this very version in the exams the viewer may see.
    SELECT count(*) AS exams, sum(s.n) AS n, avg(s.p) AS p, avg(s.r_pb) AS r_pb
    FROM bank_items b JOIN item_stats s ON s.item_pk = b.id JOIN exams e ON e.id = s.exam_id
    WHERE b.item_id = d.item_id AND b.version = d.version AND e.org_id = ANY($1::bigint[])
) st ON true
WHERE d.org_id = ANY($1::bigint[])
  AND ($2 = '' OR d.subject = $2) AND ($3::int IS NULL OR d.grade = $3) AND ($4 = '' OR d.topic = $4)
  AND ($5::int IS NULL OR d.level = $5
       OR EXISTS (SELECT 1 FROM draft_set_children k WHERE k.draft_pk = d.id AND k.level = $5))
  AND ($6 = '' OR d.type = $6) AND ($7 = '' OR d.state = $7)
  AND ($8 = '' OR d.item_id ILIKE '%' || $8 || '%' OR d.stem ILIKE '%' || $8 || '%'
       OR d.topic ILIKE '%' || $8 || '%'
       OR EXISTS (SELECT 1 FROM draft_set_children k WHERE k.draft_pk = d.id AND k.child_id ILIKE '%' || $8 || '%'))
ORDER BY d.item_id, d.version DESC
LIMIT 500
"""


async def search(conn: asyncpg.Connection, user: Staff, f: DraftFilter) -> list[asyncpg.Record]:
    orgs = await accounts.visible_org_ids(conn, user)
    text = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return await conn.fetch(_SEARCH, orgs, f.subject, f.grade, f.topic, f.level, f.type, f.state, text)


async def facets(conn: asyncpg.Connection, user: Staff) -> dict[str, list]:
    orgs = await accounts.visible_org_ids(conn, user)
    row = await conn.fetchrow(
        "SELECT array(SELECT DISTINCT subject FROM draft_items WHERE org_id = ANY($1::bigint[]) ORDER BY 1) AS s,"
        " array(SELECT DISTINCT topic FROM draft_items WHERE org_id = ANY($1::bigint[]) ORDER BY 1) AS t,"
        " array(SELECT DISTINCT grade FROM draft_items WHERE org_id = ANY($1::bigint[]) AND grade IS NOT NULL"
        " ORDER BY 1) AS g",
        orgs,
    )
    return {"subjects": list(row["s"]), "topics": list(row["t"]), "grades": list(row["g"])}


_GET = (
    "SELECT d.*, u.username AS author FROM draft_items d JOIN users u ON u.id = d.author_id"
    " WHERE d.id = $1 AND d.org_id = ANY($2::bigint[])"
)
_GET_LOCKED = _GET + " FOR UPDATE OF d"


async def get_draft(conn: asyncpg.Connection, user: Staff, pk: int, *, lock: bool = False) -> asyncpg.Record:
    """One draft row the user's organisation may see; 404 otherwise (another school's items do not exist)."""
    orgs = await accounts.visible_org_ids(conn, user)
    row = await conn.fetchrow(_GET_LOCKED if lock else _GET, pk, orgs)
    if row is None:
        raise NotFound("unknown_item", "no such item in your organisation's workspace")
    return row


async def events(conn: asyncpg.Connection, pk: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT e.action, e.comment, e.at, u.username FROM review_events e JOIN users u ON u.id = e.actor_id"
        " WHERE e.draft_pk = $1 ORDER BY e.at, e.id",
        pk,
    )


async def versions(conn: asyncpg.Connection, user: Staff, item_id: str) -> list[asyncpg.Record]:
    orgs = await accounts.visible_org_ids(conn, user)
    return await conn.fetch(
        "SELECT id, version, state FROM draft_items WHERE item_id = $1 AND org_id = ANY($2::bigint[]) ORDER BY version",
        item_id,
        orgs,
    )


async def media_of(conn: asyncpg.Connection, pk: int) -> dict[str, bytes]:
    rows = await conn.fetch(
        "SELECT dm.path, m.content FROM draft_media dm JOIN media_blobs m ON m.sha256 = dm.sha256"
        " WHERE dm.draft_pk = $1 ORDER BY dm.path",
        pk,
    )
    return {r["path"]: bytes(r["content"]) for r in rows}


async def bank_pk(conn: asyncpg.Connection, item_id: str, version: int) -> int | None:
    """The bank's row of this version, if a signed release brought it in."""
    return await conn.fetchval("SELECT id FROM bank_items WHERE item_id = $1 AND version = $2", item_id, version)


async def in_bank(conn: asyncpg.Connection, row: asyncpg.Record) -> bool:
    """Did a signed release bring this draft's version (an item's, or a set's) into the bank?"""
    if row["type"] == SET:
        return bool(
            await conn.fetchval(
                "SELECT 1 FROM bank_sets WHERE set_id = $1 AND version = $2", row["item_id"], row["version"]
            )
        )
    return await bank_pk(conn, row["item_id"], row["version"]) is not None


# ---------------------------------------------------------------- writing


def _require_author_role(user: Staff) -> None:
    if user.role not in AUTHORS:
        raise Forbidden(
            "role_refused",
            f"your role ({user.role}) cannot write items",
            role=user.role,
            allowed=", ".join(sorted(AUTHORS)),
        )


def _comment(comment: str, *, required: bool, what: str) -> str:
    comment = (comment or "").strip()
    if required and not comment:
        raise UserError("comment_required", f"write a comment saying why you {what} it")
    if len(comment) > MAX_COMMENT:
        raise UserError("comment_too_long", f"a comment may have at most {MAX_COMMENT} characters", max=MAX_COMMENT)
    return comment


async def _event(conn: asyncpg.Connection, pk: int, user: Staff, action: str, comment: str = "") -> None:
    await conn.execute(
        "INSERT INTO review_events (draft_pk, actor_id, action, comment) VALUES ($1, $2, $3, $4)",
        pk,
        user.id,
        action,
        comment,
    )


async def id_taken(conn: asyncpg.Connection, item_id: str) -> bool:
    """Is the id an item's, a set's or a set's child's, in the workspace or the bank?"""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM draft_items WHERE item_id = $1)"
            " OR EXISTS (SELECT 1 FROM draft_set_children WHERE child_id = $1)"
            " OR EXISTS (SELECT 1 FROM bank_items WHERE item_id = $1)"
            " OR EXISTS (SELECT 1 FROM bank_sets WHERE set_id = $1)",
            item_id,
        )
    )


# A child's id is its set's alone, in every version of that set: anything
# else with the id (an item, a set, another set's child) takes it.
_CHILD_IDS_TAKEN = """
SELECT c FROM unnest($1::text[]) AS c
WHERE EXISTS (SELECT 1 FROM draft_items d WHERE d.item_id = c)
   OR EXISTS (SELECT 1 FROM draft_set_children k JOIN draft_items d ON d.id = k.draft_pk
              WHERE k.child_id = c AND d.item_id <> $2)
   OR EXISTS (SELECT 1 FROM bank_items b LEFT JOIN bank_sets s ON s.id = b.set_pk
              WHERE b.item_id = c AND s.set_id IS DISTINCT FROM $2)
   OR EXISTS (SELECT 1 FROM bank_sets s WHERE s.set_id = c)
"""


async def child_ids_taken(conn: asyncpg.Connection, set_id: str, child_ids: list[str]) -> set[str]:
    """The ids among `child_ids` that something other than set `set_id` already has."""
    return {r[0] for r in await conn.fetch(_CHILD_IDS_TAKEN, child_ids, set_id)}


async def suggest_id(conn: asyncpg.Connection, subject: str = "", grade: int | None = None, base: str = "") -> str:
    """A free item id such as TOAN12-001 (or BASE-2 for a copy)."""
    if base:
        stem, n, width = base, 2, 1
    else:
        stem = (re.sub(r"[^A-Z0-9]", "", subject.upper())[:8] or "Q") + str(grade or "")
        n = 1 + await conn.fetchval("SELECT count(*) FROM draft_items WHERE item_id LIKE $1 || '-%'", stem)
        width = 3
    while await id_taken(conn, f"{stem}-{n:0{width}d}"):
        n += 1
    return f"{stem}-{n:0{width}d}"


async def _insert(conn: asyncpg.Connection, user: Staff, org_id: int, item: Item, state: str = "draft") -> int:
    item = with_status(item, _STATUS_OF_STATE.get(state, Status.DRAFT))
    try:
        return await conn.fetchval(
            "INSERT INTO draft_items (org_id, item_id, version, type, subject, grade, topic, level, points, stem,"
            " source, state, author_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            org_id,
            item.id,
            item.version,
            item.type.value,
            item.subject,
            item.grade,
            item.topic,
            item.level,
            item.points,
            item.stem,
            serialise_item(item),
            state,
            user.id,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            "item_exists",
            f"item {item.id} version {item.version} already exists: choose another id",
            field="id",
            item=item.id,
        ) from None


async def _insert_set(
    conn: asyncpg.Connection,
    user: Staff,
    org_id: int,
    item_set: ItemSet,
    children: tuple[Item, ...] | list[Item],
    state: str = "draft",
) -> int:
    """A set's row (the set and its children in its source) and its children's ids."""
    status = _STATUS_OF_STATE.get(state, Status.DRAFT)
    item_set = replace(item_set, status=status)
    children = [replace(c, status=status) for c in children]
    try:
        pk = await conn.fetchval(
            "INSERT INTO draft_items (org_id, item_id, version, type, subject, grade, topic, level, points, stem,"
            " source, state, author_id) VALUES ($1, $2, $3, 'set', $4, $5, $6, NULL, $7, $8, $9, $10, $11)"
            " RETURNING id",
            org_id,
            item_set.id,
            item_set.version,
            item_set.subject,
            item_set.grade,
            item_set.topic,
            sum(c.points for c in children),
            item_set.stimulus,
            serialise_set(item_set, children),
            state,
            user.id,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            "item_exists",
            f"item {item_set.id} version {item_set.version} already exists: choose another id",
            field="id",
            item=item_set.id,
        ) from None
    await _write_children(conn, pk, children)
    return pk


async def _write_children(conn: asyncpg.Connection, pk: int, children: list[Item] | tuple[Item, ...]) -> None:
    await conn.execute("DELETE FROM draft_set_children WHERE draft_pk = $1", pk)
    await conn.executemany(
        "INSERT INTO draft_set_children (draft_pk, position, child_id, type, level, points)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [(pk, n, c.id, c.type.value, c.level, c.points) for n, c in enumerate(children)],
    )


async def _listed_subject(conn: asyncpg.Connection, org_id: int, checked: Checked, keep: str | None = None) -> Checked:
    """The item (or set, and its children) with its subject as the code of the
    organisation's list; a subject the list lacks is a problem of the subject
    field, unless the item already had it (one from before the list keeps its
    subject until someone changes it)."""
    written = checked.item or checked.set
    if written is None or checked.problems.get("subject"):
        return checked
    typed = written.subject
    found = subject_list.find(await subject_list.list_for(conn, org_id), typed)
    if found is not None:
        if checked.item is not None:
            checked.item = replace(checked.item, subject=found.code)
        else:
            checked.set = replace(written, subject=found.code)
            checked.children = tuple(replace(c, subject=found.code) for c in checked.children)
    elif typed != keep:
        checked.problems.setdefault("subject", []).append(
            FieldProblem(
                f"the subject {typed!r} is not in the list of subjects: choose one from the list (an administrator"
                " adds subjects on the Subjects page)",
                "subject-not-listed",
                subject=typed,
            )
        )
    return checked


class InvalidItem(UserError):
    """The editor's content has problems; `checked.problems` says where."""

    def __init__(self, checked: Checked):
        count = sum(len(v) for v in checked.problems.values())
        super().__init__("invalid_item", f"the item has {count} problem(s): fix them and save again", count=count)
        self.checked = checked


def _valid_id(item_id: str) -> str:
    item_id = (item_id or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", item_id):
        raise InvalidItem(
            Checked(
                None,
                {
                    "id": [
                        FieldProblem(
                            f"id '{item_id}': use up to 64 letters, digits, . _ or - (no spaces), e.g. M12-HS-001",
                            "bad-id",
                        )
                    ]
                },
            )
        )
    return item_id


async def _children_free(conn: asyncpg.Connection, checked: Checked, fields: Mapping[str, Any]) -> None:
    """Each child's id is the set's alone: an id something else has is a problem of that child's id field."""
    if checked.set is None:
        return
    taken = await child_ids_taken(conn, checked.set.id, [c.id for c in checked.children])
    for key, child in zip(child_keys(fields), checked.children, strict=True):
        if child.id in taken:
            suggested = await suggest_id(conn, base=child.id)
            checked.problems.setdefault(f"c{key}_id", []).append(
                FieldProblem(
                    f"the id {child.id} is already used in the workspace or the bank: choose another"
                    f" (e.g. {suggested})",
                    "id-taken",
                    id=child.id,
                    suggested=suggested,
                )
            )


async def create_item(conn: asyncpg.Connection, user: Staff, fields: Mapping[str, Any]) -> int:
    """A new item or item set (version 1, draft) from the editor's fields."""
    _require_author_role(user)
    item_id = _valid_id(_text(fields, "id"))
    levels = await level_scheme(conn, user.org_id)
    if _text(fields, "type") == SET:
        checked = check_set_fields(fields, set_id=item_id, version=1, media_paths=set(), levels=levels)
    else:
        checked = check_fields(fields, item_id=item_id, version=1, media_paths=set(), levels=levels)
    checked = await _listed_subject(conn, user.org_id, checked)
    await _children_free(conn, checked, fields)
    if await id_taken(conn, item_id):
        suggested = await suggest_id(conn, base=item_id)
        checked.problems.setdefault("id", []).append(
            FieldProblem(
                f"the id {item_id} is already used: choose another (e.g. {suggested})",
                "id-taken",
                id=item_id,
                suggested=suggested,
            )
        )
    if not checked.ok:
        raise InvalidItem(checked)
    async with conn.transaction():
        if checked.set is not None:
            pk = await _insert_set(conn, user, user.org_id, checked.set, checked.children)
        else:
            pk = await _insert(conn, user, user.org_id, checked.item)
        await _event(conn, pk, user, "create")
    return pk


def _frozen(row: asyncpg.Record, in_bank: bool) -> bool:
    return row["state"] in ("approved", "submitted", "retired") or in_bank


async def _next_version(conn: asyncpg.Connection, item_id: str) -> int:
    return 1 + await conn.fetchval(
        "SELECT greatest((SELECT coalesce(max(version), 0) FROM draft_items WHERE item_id = $1),"
        " (SELECT coalesce(max(version), 0) FROM bank_items WHERE item_id = $1),"
        " (SELECT coalesce(max(version), 0) FROM bank_sets WHERE set_id = $1))",
        item_id,
    )


def _check_may_change(user: Staff, row: asyncpg.Record) -> None:
    if row["author_id"] != user.id and user.role != "admin":
        raise Forbidden(
            "not_your_item",
            "only its author or an administrator may change this draft; duplicate it to write your own version",
        )


async def save_item(conn: asyncpg.Connection, user: Staff, pk: int, fields: Mapping[str, Any]) -> int:
    """Save the editor's fields over a draft, or as the next version of an
    approved (or already imported) one; returns the row that holds them.
    A set's row takes the set editor's fields: the set is saved whole."""
    _require_author_role(user)
    async with conn.transaction():
        row = await get_draft(conn, user, pk, lock=True)
        if row["state"] in ("submitted", "retired"):
            raise Conflict(
                "item_not_editable",
                f"this item is {row['state']}: "
                + (
                    "wait for the review, or ask the reviewer to return it"
                    if row["state"] == "submitted"
                    else "duplicate it to write a new item"
                ),
            )
        new_version = _frozen(row, await in_bank(conn, row))
        if not new_version:
            _check_may_change(user, row)
        media = await media_of(conn, pk)
        version = await _next_version(conn, row["item_id"]) if new_version else row["version"]
        levels = await level_scheme(conn, row["org_id"])
        if row["type"] == SET:
            checked = check_set_fields(
                fields, set_id=row["item_id"], version=version, media_paths=set(media), levels=levels
            )
        else:
            checked = check_fields(
                fields, item_id=row["item_id"], version=version, media_paths=set(media), levels=levels
            )
        checked = await _listed_subject(conn, row["org_id"], checked, keep=row["subject"])
        await _children_free(conn, checked, fields)
        if not checked.ok:
            raise InvalidItem(checked)
        if new_version:
            if checked.set is not None:
                new_pk = await _insert_set(conn, user, row["org_id"], checked.set, checked.children)
            else:
                new_pk = await _insert(conn, user, row["org_id"], checked.item)
            await _copy_media(conn, pk, new_pk)
            await _event(conn, new_pk, user, "edit", f"version {version} from version {row['version']}")
            return new_pk
        if checked.set is not None:
            item_set = replace(checked.set, status=Status.DRAFT)
            children = [replace(c, status=Status.DRAFT) for c in checked.children]
            await conn.execute(
                "UPDATE draft_items SET subject = $2, grade = $3, topic = $4, points = $5, stem = $6, source = $7,"
                " updated_at = now() WHERE id = $1",
                pk,
                item_set.subject,
                item_set.grade,
                item_set.topic,
                sum(c.points for c in children),
                item_set.stimulus,
                serialise_set(item_set, children),
            )
            await _write_children(conn, pk, children)
            await _event(conn, pk, user, "edit")
            return pk
        item = checked.item
        # A returned item edited stays returned until it is submitted again.
        await conn.execute(
            "UPDATE draft_items SET type = $2, subject = $3, grade = $4, topic = $5, level = $6, points = $7,"
            " stem = $8, source = $9, updated_at = now() WHERE id = $1",
            pk,
            item.type.value,
            item.subject,
            item.grade,
            item.topic,
            item.level,
            item.points,
            item.stem,
            serialise_item(with_status(item, Status.DRAFT)),
        )
        await _event(conn, pk, user, "edit")
        return pk


async def _copy_media(conn: asyncpg.Connection, from_pk: int, to_pk: int) -> None:
    await conn.execute(
        "INSERT INTO draft_media (draft_pk, path, sha256) SELECT $2, path, sha256 FROM draft_media WHERE draft_pk = $1",
        from_pk,
        to_pk,
    )


async def duplicate_item(conn: asyncpg.Connection, user: Staff, pk: int, new_id: str = "") -> int:
    """A copy under a new id, version 1, as a draft of the user's own."""
    _require_author_role(user)
    async with conn.transaction():
        row = await get_draft(conn, user, pk)
        item_id = _valid_id(new_id) if new_id.strip() else await suggest_id(conn, base=row["item_id"])
        if await id_taken(conn, item_id):
            raise Conflict("item_exists", f"the id {item_id} is already used: choose another", field="id", item=item_id)
        if row["type"] == SET:
            # The copy's children need ids of their own too: the new set's id, then -1, -2 ...
            item_set, children = set_from_draft(row["source"])
            ids: list[str] = []
            for n in range(1, len(children) + 1):
                child_id = f"{item_id}-{n}"
                while child_id in ids or await id_taken(conn, child_id):
                    child_id = await suggest_id(conn, base=child_id)
                ids.append(child_id)
            copy = replace(item_set, id=item_id, version=1, children=tuple(ids))
            kids = [replace(c, id=i, version=1, set_id=item_id) for c, i in zip(children, ids, strict=True)]
            new_pk = await _insert_set(conn, user, row["org_id"], copy, kids)
        else:
            item = replace(item_from_draft(row["source"]), id=item_id, version=1)
            new_pk = await _insert(conn, user, row["org_id"], item)
        await _copy_media(conn, pk, new_pk)
        await _event(conn, new_pk, user, "duplicate", f"copy of {row['item_id']}@{row['version']}")
        return new_pk


async def retire_item(conn: asyncpg.Connection, user: Staff, pk: int, comment: str) -> None:
    _require_author_role(user)
    comment = _comment(comment, required=True, what="retire")
    async with conn.transaction():
        row = await get_draft(conn, user, pk, lock=True)
        _check_may_change(user, row)
        if row["state"] == "retired":
            raise Conflict("already_retired", "this item is already retired")
        await conn.execute(
            "UPDATE draft_items SET state = 'retired', source = $2, updated_at = now() WHERE id = $1",
            pk,
            _source_with_status(row, Status.RETIRED),
        )
        await _event(conn, pk, user, "retire", comment)


async def submit_items(conn: asyncpg.Connection, user: Staff, pks: list[int]) -> int:
    """Send drafts (or returned items) for review; all of them or none."""
    if not pks:
        raise UserError("nothing_chosen", "choose at least one item to submit")
    async with conn.transaction():
        for pk in pks:
            row = await get_draft(conn, user, pk, lock=True)
            _check_may_change(user, row)
            if row["state"] not in EDITABLE:
                raise Conflict(
                    "bad_state",
                    f"{row['item_id']}@{row['version']} is {row['state']}:"
                    " only drafts and returned items can be submitted",
                    item=f"{row['item_id']}@{row['version']}",
                )
            await conn.execute(
                "UPDATE draft_items SET state = 'submitted', reviewer_id = NULL, updated_at = now() WHERE id = $1", pk
            )
            await _event(conn, pk, user, "submit")
    return len(pks)


async def review_item(conn: asyncpg.Connection, user: Staff, pk: int, decision: str, comment: str) -> None:
    """A reviewer approves or returns a submitted item; a set is approved or
    returned whole, its passage with every child."""
    if decision not in ("approve", "return"):
        raise UserError("bad_decision", "choose approve or return")
    comment = _comment(comment, required=decision == "return", what="return")
    async with conn.transaction():
        row = await get_draft(conn, user, pk, lock=True)
        if user.role != "reviewer":
            raise Forbidden("not_a_reviewer", "only a reviewer of the item's subject can approve or return it")
        if row["author_id"] == user.id:
            raise Forbidden("own_item", "you wrote this item: another reviewer of the subject must review it")
        if row["subject"] not in await subjects_of(conn, user.id):
            raise Forbidden(
                "not_your_subject",
                f"you do not review the subject {row['subject']}: ask an administrator to assign it to you",
            )
        if row["state"] != "submitted":
            raise Conflict(
                "bad_state",
                f"this item is {row['state']}, not waiting for review",
                item=f"{row['item_id']}@{row['version']}",
            )
        if decision == "approve":
            await conn.execute(
                "UPDATE draft_items SET state = 'approved', reviewer_id = $2, source = $3,"
                " updated_at = now() WHERE id = $1",
                pk,
                user.id,
                _source_with_status(row, Status.APPROVED),
            )
        else:
            await conn.execute(
                "UPDATE draft_items SET state = 'returned', reviewer_id = NULL, updated_at = now() WHERE id = $1", pk
            )
        await _event(conn, pk, user, decision, comment)


_QUEUE = """
SELECT d.id, d.item_id, d.version, d.subject, d.topic, d.level, d.type, d.state, d.updated_at,
       u.username AS author, left(d.stem, 120) AS stem_start,
       -- A set is reviewed whole: the page shows its passage and children from its source.
       CASE WHEN d.type = 'set' THEN d.source END AS set_source,
       (SELECT e.comment FROM review_events e WHERE e.draft_pk = d.id AND e.action = 'return'
        ORDER BY e.at DESC, e.id DESC LIMIT 1) AS last_comment,
       array(SELECT k.child_id FROM draft_set_children k WHERE k.draft_pk = d.id ORDER BY k.position) AS children,
       array(SELECT DISTINCT k.level FROM draft_set_children k WHERE k.draft_pk = d.id ORDER BY 1) AS child_levels
FROM draft_items d JOIN users u ON u.id = d.author_id
"""
_TO_REVIEW = _QUEUE + (  # noqa: S608 - module constants only
    "WHERE d.state = 'submitted' AND d.org_id = ANY($1::bigint[]) AND d.author_id <> $2"
    " AND d.subject IN (SELECT subject FROM staff_subjects WHERE user_id = $2) ORDER BY d.updated_at"
)
_MINE = _QUEUE + "WHERE d.author_id = $1 AND d.state IN ('returned', 'submitted') ORDER BY d.state, d.updated_at"


async def review_queue(conn: asyncpg.Connection, user: Staff) -> dict[str, list[asyncpg.Record]]:
    """What waits for this user: items to review, and their own returned and submitted items."""
    orgs = await accounts.visible_org_ids(conn, user)
    to_review: list[asyncpg.Record] = []
    if user.role == "reviewer":
        to_review = await conn.fetch(_TO_REVIEW, orgs, user.id)
    mine = await conn.fetch(_MINE, user.id)
    return {
        "to_review": to_review,
        "returned": [r for r in mine if r["state"] == "returned"],
        "waiting": [r for r in mine if r["state"] == "submitted"],
    }


# ---------------------------------------------------------------- subjects


async def subjects_of(conn: asyncpg.Connection, user_id: int) -> list[str]:
    return [r[0] for r in await conn.fetch("SELECT subject FROM staff_subjects WHERE user_id = $1 ORDER BY 1", user_id)]


def parse_subjects(subjects: list[str] | str) -> list[str]:
    """The subjects named: a list as given, or a text split at commas, semicolons and spaces."""
    if isinstance(subjects, str):
        subjects = re.split(r"[\s,;]+", subjects)
    return list(dict.fromkeys(s.strip() for s in subjects if s.strip()))


async def set_subjects(
    conn: asyncpg.Connection, username: str, subjects: list[str] | str, by: Staff | None = None
) -> list[str]:
    """Replace the subjects a staff member writes and reviews (`by`: the administrator
    doing it on the web, who may only touch their own organisation's staff; None from the CLI).

    Each is named by its code or name in the staff member's list of subjects."""
    user = await conn.fetchrow("SELECT id, org_id FROM users WHERE lower(username) = lower($1)", username.strip())
    if user is not None and by is not None and user["org_id"] not in await accounts.visible_org_ids(conn, by):
        user = None
    if user is None:
        raise NotFound("unknown_user", f"no staff member {username!r} in your organisation")
    wanted = sorted({await subject_list.resolve(conn, user["org_id"], s) for s in parse_subjects(subjects)})
    async with conn.transaction():
        await conn.execute("DELETE FROM staff_subjects WHERE user_id = $1", user["id"])
        await conn.executemany(
            "INSERT INTO staff_subjects (user_id, subject) VALUES ($1, $2)", [(user["id"], s) for s in wanted]
        )
    return wanted


async def staff_with_subjects(conn: asyncpg.Connection, by: Staff) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT u.username, u.role, o.code AS org_code,"
        " array(SELECT subject FROM staff_subjects s WHERE s.user_id = u.id ORDER BY 1) AS subjects"
        " FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.org_id = ANY($1::bigint[])"
        " AND u.role IN ('teacher', 'reviewer', 'admin') AND u.active ORDER BY o.code, u.username",
        await accounts.visible_org_ids(conn, by),
    )


# ---------------------------------------------------------------- media

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def sniff_image(data: bytes) -> str | None:
    """The image kind from its first bytes (never from the file name)."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head:
        return "svg"
    return None


async def add_media(conn: asyncpg.Connection, user: Staff, pk: int, filename: str, data: bytes) -> str:
    """Store an uploaded image for a draft; returns its path (media/NAME) for the Markdown."""
    if not data:
        raise UserError("empty_file", "choose an image file to upload")
    if len(data) > MAX_MEDIA_BYTES:
        raise UserError(
            "media_too_large",
            f"the image is larger than {MAX_MEDIA_BYTES // (1024 * 1024)} MB: make it smaller and upload it again",
            limit=f"{MAX_MEDIA_BYTES // (1024 * 1024)} MB",
        )
    kind = sniff_image(data)
    if kind == "svg":
        # An SVG can carry script; rather than trust a sanitiser with it, ask for a raster image.
        raise UserError("svg_refused", "SVG images are not accepted: export the drawing as PNG and upload that")
    if kind is None:
        raise UserError("not_an_image", "the file is not a PNG, JPEG, GIF or WebP image")
    stem = _MEDIA_NAME.sub("-", Path(filename or "image").stem.lower()).strip("-._")[:48] or "image"
    path = f"media/{stem}.{kind}"
    digest = hashlib.sha256(data).hexdigest()
    async with conn.transaction():
        row = await get_draft(conn, user, pk, lock=True)
        _check_may_change(user, row)
        if row["state"] not in EDITABLE:
            raise Conflict(
                "item_not_editable", f"this item is {row['state']}: save a new version first, then add images to it"
            )
        await conn.execute(
            "INSERT INTO media_blobs (sha256, content) VALUES ($1, $2) ON CONFLICT DO NOTHING", digest, data
        )
        await conn.execute(
            "INSERT INTO draft_media (draft_pk, path, sha256) VALUES ($1, $2, $3)"
            " ON CONFLICT (draft_pk, path) DO UPDATE SET sha256 = EXCLUDED.sha256",
            pk,
            path,
            digest,
        )
    return path


async def draft_media_files(conn: asyncpg.Connection, draft_pks: list[int]) -> dict[str, bytes]:
    """Every media file of these drafts (path -> content), for a release.

    Two items may use the same path only for the same content."""
    rows = await conn.fetch(
        "SELECT DISTINCT dm.path, dm.sha256, m.content FROM draft_media dm JOIN media_blobs m ON m.sha256 = dm.sha256"
        " WHERE dm.draft_pk = ANY($1::bigint[]) ORDER BY dm.path",
        draft_pks,
    )
    out: dict[str, bytes] = {}
    seen: dict[str, str] = {}
    for r in rows:
        if seen.setdefault(r["path"], r["sha256"]) != r["sha256"]:
            raise Conflict(
                "media_conflict",
                f"two items use different images named {r['path']}: rename one of them (upload it under another name)",
                path=r["path"],
            )
        out[r["path"]] = bytes(r["content"])
    return out


# ---------------------------------------------------------------- releases


async def approved_items(
    conn: asyncpg.Connection, org_ids: list[int], subject: str | None = None
) -> list[asyncpg.Record]:
    """The approved item versions of these organisations (for the release builder)."""
    return await conn.fetch(
        "SELECT id, item_id, version, subject, topic, level, type, source FROM draft_items"
        " WHERE state = 'approved' AND org_id = ANY($1::bigint[]) AND ($2::text IS NULL OR subject = $2)"
        " ORDER BY subject, topic, level, item_id, version",
        org_ids,
        subject,
    )


# ---------------------------------------------------------------- import / export


async def _import_items(
    conn: asyncpg.Connection, user: Staff, entries: list[tuple[Item, str] | releases.ReadSet]
) -> list[int]:
    """Store parsed items and sets as drafts (all or none); each entry says where it
    came from, for messages.

    Each subject is named by a code or name of the user's list of subjects, and
    stored as its code; each id is free (a set's children's too: see
    child_ids_taken); each level is one of the workspace's scheme."""
    problems = []
    listed = await subject_list.list_for(conn, user.org_id)
    levels = await level_scheme(conn, user.org_id)
    coded: list[Item | tuple[ItemSet, list[Item]]] = []

    async def taken(item_id: str, where: str) -> None:
        suggested = await suggest_id(conn, base=item_id)
        problems.append(
            FieldProblem(
                f"the id {item_id} is already used in the workspace or the bank:"
                f" give the item another id (e.g. {suggested})",
                "id-taken",
                where=where,
                id=item_id,
                suggested=suggested,
            )
        )

    def level_outside(item: Item, where: str) -> None:
        # The spreadsheet is read at the legacy four; a YAML file at the scheme already.
        if item.level not in levels.numbers:
            problems.append(_level_problem(str(item.level), levels, where))

    for entry in entries:
        if isinstance(entry, releases.ReadSet):
            written, where = entry.set, entry.where
            if await id_taken(conn, written.id):
                await taken(written.id, where)
            free = await child_ids_taken(conn, written.id, [c.id for c in entry.children])
            for child, child_where in zip(entry.children, entry.child_wheres, strict=True):
                if child.id in free:
                    await taken(child.id, child_where)
                level_outside(child, child_where)
        else:
            written, where = entry
            if await id_taken(conn, written.id):
                await taken(written.id, where)
            level_outside(written, where)
        found = subject_list.find(listed, written.subject)
        if found is None:
            problems.append(
                FieldProblem(
                    f"the subject {written.subject!r} is not in the list of subjects: write one of"
                    f" {', '.join(s.code for s in listed)}",
                    "subject-not-listed",
                    where=where,
                    subject=written.subject,
                )
            )
        elif isinstance(entry, releases.ReadSet):
            coded.append(
                (replace(entry.set, subject=found.code), [replace(c, subject=found.code) for c in entry.children])
            )
        else:
            coded.append(replace(written, subject=found.code))
    if problems:
        raise UserError(
            "import_failed", f"nothing was imported: {len(problems)} problem(s)", problems=problems, count=len(problems)
        )
    pks = []
    async with conn.transaction():
        for one in coded:
            if isinstance(one, tuple):
                pk = await _insert_set(conn, user, user.org_id, *one)
            else:
                pk = await _insert(conn, user, user.org_id, one)
            await _event(conn, pk, user, "create", "imported")
            pks.append(pk)
    return pks


async def import_yaml(conn: asyncpg.Connection, user: Staff, data: bytes, filename: str) -> list[int]:
    """Items and item sets from a YAML file (one, or a list); every problem with its
    line, and nothing stored if any."""
    _require_author_role(user)
    if len(data) > MAX_IMPORT_BYTES:
        raise UserError("file_too_large", "the file is larger than 3 MB: split it into several files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(
            "import_failed",
            "nothing was imported: the file is not UTF-8 text",
            problems=[f"{filename}: save the file with UTF-8 encoding"],
            count=1,
        ) from None
    levels = await level_scheme(conn, user.org_id)
    return await _import_items(conn, user, await uploads.off_loop(releases.read_item_file, text, filename, levels))


async def import_xlsx(conn: asyncpg.Connection, user: Staff, data: bytes, filename: str) -> list[int]:
    """Items from the spreadsheet template; every problem with its row and column, nothing stored if any."""
    _require_author_role(user)
    if len(data) > MAX_IMPORT_BYTES:
        raise UserError("file_too_large", "the file is larger than 3 MB: split it into several files")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename or "items.xlsx").name) or "items.xlsx"
    return await _import_items(conn, user, await uploads.off_loop(uploads.read_xlsx_items, data, name))


# ---------------------------------------------------------------- questions from other tools
#
# A file of another tool's questions (Moodle XML, GIFT, Aiken: the kinds of
# itembank.formats.foreign) says what each question asks and its key, not what
# the workspace also needs; the teacher gives that once for the file
# (`foreign_defaults`). The first post shows a preview (`preview_foreign`):
# every question as a student sees it with its key, the file's problems and
# notes, and the workspace's own (an id already used, a level the scheme
# lacks, a picture the workspace refuses); nothing is stored. Saving
# (`import_foreign`) reads the same file again, sent back with the preview's
# form, and stores the questions without problems as drafts in one
# transaction, but only if they are exactly those the preview showed (its
# digest): the file, the values given and the workspace all make the items,
# and any of them may have changed in between.
#
# The file travels back with the form rather than waiting on the server: no
# store to bound, expire and keep per user (a worker's memory is not shared
# with the worker the next request reaches, and the database would need a
# table for bytes that live a minute), and a teacher may save only what they
# could import anyway, as everything is read and checked again.

FOREIGN_TOPIC = "chua-phan-loai"  # a topic that says the questions are still to be classified
MAX_POINTS = Decimal(100)


class InvalidDefaults(UserError):
    """The values given for a foreign file's questions have problems; `problems` per form field."""

    def __init__(self, problems: dict[str, list[FieldProblem]]):
        count = sum(len(v) for v in problems.values())
        super().__init__(
            "import_defaults_invalid",
            f"{count} of the values given for the file's questions are not valid: fix them and import again",
            count=count,
        )
        self.problems = problems


class ImportChanged(UserError):
    """The questions to save are not those the preview showed; `preview` is what they are now."""

    def __init__(self, preview: ForeignPreview):
        super().__init__(
            "import_changed",
            "the questions to save are not those the preview showed (the values given, or the workspace, changed):"
            " check this preview and save again",
            status=409,
        )
        self.preview = preview


async def foreign_prefill(conn: asyncpg.Connection, user: Staff) -> dict[str, str]:
    """What the import form offers for a foreign file's questions before the teacher changes it."""
    listed = await subject_list.list_for(conn, user.org_id)
    mine = await subjects_of(conn, user.id)
    levels = await level_scheme(conn, user.org_id)
    return {
        "subject": next((s.code for s in listed if s.code in mine), listed[0].code if listed else ""),
        "grade": "",
        "topic": FOREIGN_TOPIC,
        "level": str(levels.numbers[0]),
        "points": "0.25",
        "id_prefix": "",
    }


async def foreign_defaults(
    conn: asyncpg.Connection, user: Staff, fields: Mapping[str, Any], filename: str
) -> ImportDefaults:
    """The values given for a foreign file's questions, checked (InvalidDefaults);
    the id prefix, when none is given, made from the file's name."""
    problems: dict[str, list[FieldProblem]] = {}

    def fault(name: str, message: str, code: str, **params) -> None:
        problems.setdefault(name, []).append(FieldProblem(message, code, **params))

    listed = await subject_list.list_for(conn, user.org_id)
    subject = subject_list.find(listed, _text(fields, "subject")[:64])
    if subject is None:
        typed = _text(fields, "subject")[:64]
        fault(
            "subject",
            f"the subject {typed!r} is not in the list of subjects: choose one from the list",
            "subject-not-listed",
            subject=typed,
        )
    grade = None
    if _text(fields, "grade"):
        grade = whole(_text(fields, "grade"), 12, 1)
        if grade is None:
            fault("grade", "the grade must be a number from 1 to 12, or left empty", "bad-grade")
    topic = _text(fields, "topic") or FOREIGN_TOPIC
    if len(topic) > 100 or has_bad_characters(topic):
        fault("topic", "a topic is text of at most 100 characters", "bad-topic")
    levels = await level_scheme(conn, user.org_id)
    level = levels.numbers[0]
    try:
        level = levels.number(_text(fields, "level"))
    except LevelError:
        problems.setdefault("level", []).append(_level_problem(_text(fields, "level") or "-", levels))
    points = None
    try:
        points = Decimal(_text(fields, "points").replace(",", "."))
    except InvalidOperation:
        pass
    if points is None or not points.is_finite() or not 0 < points <= MAX_POINTS or points.as_tuple().exponent < -4:
        points = None
        fault("points", f"points must be a number more than 0 and at most {MAX_POINTS}, e.g. 0.25", "bad-points")
    prefix = _text(fields, "id_prefix") or prefix_from_name(filename)
    if not ID_PREFIX.fullmatch(prefix):
        fault(
            "id_prefix",
            f"id prefix '{prefix[:60]}': use up to 40 letters, digits, . _ or - (no spaces), e.g. de-giua-ky-12",
            "bad-id-prefix",
        )
    if problems:
        raise InvalidDefaults(problems)
    assert subject is not None and points is not None
    return ImportDefaults(subject=subject.code, topic=topic, level=level, points=points, grade=grade, id_prefix=prefix)


def defaults_fields(defaults: ImportDefaults) -> dict[str, str]:
    """The form's fields that give these defaults (the preview's form shows them again)."""
    return {
        "subject": defaults.subject,
        "grade": str(defaults.grade or ""),
        "topic": defaults.topic,
        "level": str(defaults.level),
        "points": str(defaults.points),
        "id_prefix": defaults.id_prefix,
    }


@dataclass
class ForeignItem:
    """A question of a foreign file that saving stores: the draft, where it was written, its student view."""

    item: Item
    where: str
    view: dict


@dataclass
class ForeignSet:
    """A set of a foreign file (QTI's passage and its questions) that saving stores whole."""

    item_set: ItemSet
    where: str
    passage: str  # the stimulus as students see it (safe HTML)
    children: list[ForeignItem]


@dataclass
class ForeignPreview:
    """What saving a foreign file would store, and what it leaves out and why."""

    filename: str
    kind: str | None  # the file's kind as teachers know it ("GIFT"); None when cbt reads no such file
    defaults: ImportDefaults
    items: list[ForeignItem]
    sets: list[ForeignSet]
    media: dict[str, bytes]  # the pictures of `items`, by path
    problems: list[FieldProblem]  # the first uploads.MAX_LISTED
    problem_count: int
    notes: list[FieldProblem]  # likewise
    note_count: int
    left_out: int  # questions (places in the file) that give no draft
    digest: str  # of what saving stores: the form sends it back

    @property
    def questions(self) -> int:
        """How many questions saving stores: the items and every set's children."""
        return len(self.items) + sum(len(one.children) for one in self.sets)


_IDS_TAKEN = """
SELECT c FROM unnest($1::text[]) AS c
WHERE EXISTS (SELECT 1 FROM draft_items WHERE item_id = c)
   OR EXISTS (SELECT 1 FROM draft_set_children WHERE child_id = c)
   OR EXISTS (SELECT 1 FROM bank_items WHERE item_id = c)
   OR EXISTS (SELECT 1 FROM bank_sets WHERE set_id = c)
"""


async def ids_taken(conn: asyncpg.Connection, item_ids: list[str]) -> set[str]:
    """The ids among `item_ids` that an item, a set or a set's child has, in the workspace or the bank."""
    return {r[0] for r in await conn.fetch(_IDS_TAKEN, item_ids)}


async def _free_prefix(conn: asyncpg.Connection, prefix: str, item_ids: list[str]) -> str:
    """A prefix (prefix-2, prefix-3 ...) under which none of these ids (all of `prefix`) is taken."""
    tails = [i.removeprefix(prefix) for i in item_ids]
    for n in range(2, 50):
        candidate = f"{prefix[:36]}-{n}"
        if not await ids_taken(conn, [candidate + tail for tail in tails]):
            return candidate
    return f"{prefix[:32]}-{hashlib.sha256(prefix.encode()).hexdigest()[:6]}"


def _picture_problem(path: str, content: bytes | None, where: str) -> FieldProblem | None:
    """Why the workspace would not store this picture (as add_media would not), or None."""
    if content is None:
        return FieldProblem(f"the picture {path} is not in the file", "media-missing", where=where)
    if len(content) > MAX_MEDIA_BYTES:
        limit = f"{MAX_MEDIA_BYTES // (1024 * 1024)} MB"
        return FieldProblem(
            f"the picture {path} is larger than {limit}: make it smaller in the file and import again",
            "picture-too-large",
            where=where,
            path=path,
            limit=limit,
        )
    if sniff_image(content) in (None, "svg"):
        return FieldProblem(
            f"the picture {path} is not a PNG, JPEG, GIF or WebP image: put it in the file as one of those"
            " and import again",
            "picture-not-image",
            where=where,
            path=path,
        )
    return None


def _listed(problem) -> FieldProblem:
    """An itembank problem of the file, as the page lists it (its place first)."""
    return FieldProblem(problem.message, problem.code, where=problem.where)


async def preview_foreign(
    conn: asyncpg.Connection, user: Staff, data: bytes, filename: str, defaults: ImportDefaults
) -> ForeignPreview:
    """What importing this foreign file would store as drafts, and what not and why; stores nothing.

    The file is read off the event loop (cbt.platform.uploads.off_loop), within its bounds."""
    _require_author_role(user)
    if len(data) > FOREIGN_IMPORT_BYTES:
        raise uploads.body_too_large(FOREIGN_IMPORT_BYTES)
    levels = await level_scheme(conn, user.org_id)
    read = await uploads.off_loop(releases.read_foreign_file, data, filename, defaults, levels)
    # (line, problem) so that the workspace's problems take their places among the file's.
    placed: list[tuple[int, FieldProblem]] = [(p.line or 0, _listed(p)) for p in read.problems]
    questions = [*read.items, *(c for _, _, _, children in read.sets for c in children)]
    all_ids = [item.id for item, _, _ in questions] + [item_set.id for item_set, _, _, _ in read.sets]
    taken = await ids_taken(conn, all_ids)
    prefixed = [i for i in all_ids if i.startswith(defaults.id_prefix)]
    suggested = await _free_prefix(conn, defaults.id_prefix, prefixed) if taken & set(prefixed) else ""
    seen: set[str] = set()

    def problems_of(thing: Item | ItemSet, where: str) -> list[FieldProblem]:
        why: list[FieldProblem] = []
        if thing.id in seen:
            why.append(
                FieldProblem(f"the id {thing.id} is another question's of this file", "duplicate-id", where=where)
            )
        elif thing.id in taken and thing.id.startswith(defaults.id_prefix):
            why.append(
                FieldProblem(
                    f"the id {thing.id} is already used in the workspace or the bank: change the id prefix"
                    f" ({defaults.id_prefix}) and preview again, e.g. to {suggested}",
                    "prefix-taken",
                    where=where,
                    id=thing.id,
                    prefix=defaults.id_prefix,
                    suggested=suggested,
                )
            )
        elif thing.id in taken:
            # A cbt package keeps its items' own ids: the same package imported twice, or into the
            # workspace its bank came from, finds them here already.
            why.append(
                FieldProblem(
                    f"the id {thing.id} is already used in the workspace or the bank: it is there already;"
                    " to import it as another item, change its id in the file",
                    "already-here",
                    where=where,
                    id=thing.id,
                )
            )
        seen.add(thing.id)
        if isinstance(thing, Item) and thing.level not in levels.numbers:
            why.append(_level_problem(str(thing.level), levels, where))
        why += [p for path in thing.media if (p := _picture_problem(path, read.media.get(path), where))]
        return why

    kept: list[ForeignItem] = []
    kept_sets: list[ForeignSet] = []
    left_out = read.left_out
    for item, where, view in read.items:
        if why := problems_of(item, where):
            placed += [(_line_of(where), p) for p in why]
            left_out += 1
        else:
            kept.append(ForeignItem(item, where, view))
    for item_set, where, passage, children in read.sets:
        why = problems_of(item_set, where)
        for child, child_where, _ in children:
            why += problems_of(child, child_where)
        if why:
            # A set is stored whole or not at all, as the bank delivers it.
            placed += [(_line_of(where), p) for p in why]
            left_out += len(children)
        else:
            kept_sets.append(ForeignSet(item_set, where, passage, [ForeignItem(*c) for c in children]))
    placed.sort(key=lambda pair: pair[0])
    stored = [one.item for one in kept] + [c.item for one in kept_sets for c in one.children]
    media = {
        path: read.media[path] for thing in [*stored, *(one.item_set for one in kept_sets)] for path in thing.media
    }
    digest = hashlib.sha256(
        json.dumps(
            [
                [serialise_item(one.item) for one in kept],
                [serialise_set(one.item_set, [c.item for c in one.children]) for one in kept_sets],
                {p: hashlib.sha256(c).hexdigest() for p, c in media.items()},
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    count = read.problem_count + len(placed) - len(read.problems)
    return ForeignPreview(
        filename=filename,
        kind=read.kind,
        defaults=defaults,
        items=kept,
        sets=kept_sets,
        media=media,
        problems=[p for _, p in placed[: uploads.MAX_LISTED]],
        problem_count=count,
        notes=[_listed(n) for n in read.notes],
        note_count=read.note_count,
        left_out=left_out,
        digest=digest,
    )


def _line_of(where: str) -> int:
    """The place of "file:12" (0 for none), to sort problems by."""
    tail = where.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


async def import_foreign(
    conn: asyncpg.Connection, user: Staff, data: bytes, filename: str, defaults: ImportDefaults, digest: str
) -> tuple[list[int], ForeignPreview]:
    """Store a foreign file's questions without problems as drafts, their pictures with them, in one
    transaction; only if they are those of the preview whose digest this is (else ImportChanged)."""
    preview = await preview_foreign(conn, user, data, filename, defaults)
    if preview.digest != digest:
        raise ImportChanged(preview)
    if not preview.questions:
        raise UserError("nothing_to_import", "no question of the file can be imported: fix the problems listed")
    pks = []

    async def store_media(pk: int, paths: Iterable[str]) -> None:
        for path in dict.fromkeys(paths):
            content = preview.media[path]
            sha = hashlib.sha256(content).hexdigest()
            await conn.execute(
                "INSERT INTO media_blobs (sha256, content) VALUES ($1, $2) ON CONFLICT DO NOTHING", sha, content
            )
            await conn.execute("INSERT INTO draft_media (draft_pk, path, sha256) VALUES ($1, $2, $3)", pk, path, sha)

    async with conn.transaction():
        for one in preview.items:
            pk = await _insert(conn, user, user.org_id, one.item)
            await _event(conn, pk, user, "create", "imported")
            await store_media(pk, one.item.media)
            pks.append(pk)
        for one in preview.sets:
            children = [c.item for c in one.children]
            pk = await _insert_set(conn, user, user.org_id, one.item_set, children)
            await _event(conn, pk, user, "create", "imported")
            # A set's draft holds its passage's pictures and its questions', as the set editor keeps them.
            await store_media(pk, [*one.item_set.media, *(path for c in children for path in c.media)])
            pks.append(pk)
    return pks, preview


async def export_yaml(conn: asyncpg.Connection, user: Staff, pks: list[int] | None = None) -> str:
    """The chosen items and sets (or every one the user may see) as one YAML file, each set whole."""
    orgs = await accounts.visible_org_ids(conn, user)
    rows = await conn.fetch(
        "SELECT type, source FROM draft_items WHERE org_id = ANY($1::bigint[])"
        " AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[])) ORDER BY item_id, version",
        orgs,
        pks,
    )
    if not rows:
        raise UserError("nothing_chosen", "there is no item to export: choose items in the list")
    items: list[Item] = []
    sets: list[ItemSet] = []
    for r in rows:
        if r["type"] == SET:
            item_set, children = set_from_draft(r["source"])
            sets.append(item_set)
            items += children
        else:
            items.append(item_from_draft(r["source"]))
    return serialise_items(items, sets)
