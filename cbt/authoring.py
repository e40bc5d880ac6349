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

Every step writes a review_events row in the same transaction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg

from cbt import accounts
from cbt import subjects as subject_list
from cbt.accounts import Staff
from cbt.platform import uploads
from cbt.platform.errors import Conflict, FieldProblem, Forbidden, NotFound, UserError
from cbt.platform.uploads import MAX_IMPORT_BYTES, MAX_MEDIA_BYTES
from cbt.roles import AUTHORS
from itembank.formats.yaml_format import dump_yaml, parse_text, serialise_item, serialise_items
from itembank.model import Item, ItemType, ShortFormat, Status
from itembank.validate import check_item

STATES = ("draft", "submitted", "returned", "approved", "retired")
EDITABLE = ("draft", "returned")
OPTION_IDS = "ABCDEF"
STATEMENT_IDS = "abcd"
TYPES = tuple(t.value for t in ItemType)
SHORT_FORMATS = tuple(f.value for f in ShortFormat)
LEVELS = (1, 2, 3, 4)
MAX_COMMENT = 2000
_MEDIA_NAME = re.compile(r"[^a-z0-9._-]+")

# What the item's own status field says for each workspace state: only an
# approved item may enter a signed release.
_STATUS_OF_STATE = {"approved": Status.APPROVED, "retired": Status.RETIRED}


# ---------------------------------------------------------------- form <-> item


@dataclass
class Checked:
    """The outcome of checking editor fields: the item, or the problems per field."""

    item: Item | None
    problems: dict[str, list[FieldProblem]] = field(default_factory=dict)  # form field ("" = general) -> problems

    @property
    def ok(self) -> bool:
        return self.item is not None and not self.problems


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name, "")
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""


def _keys(fields: Mapping[str, Any]) -> list[str]:
    getall = getattr(fields, "getall", None)
    values = getall("key", []) if getall else fields.get("key", [])
    if isinstance(values, str):
        values = [values]
    return [v for v in values if isinstance(v, str) and v in OPTION_IDS]


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
) -> Checked:
    """Parse and check the editor's fields with itembank's own rules."""
    if _text(fields, "type") not in TYPES:
        return Checked(None, {"type": [FieldProblem(f"choose the item type: {', '.join(TYPES)}", "bad-type")]})
    data = fields_to_data(fields, item_id=item_id, version=version, status=status)
    return check_source(dump_yaml(data), media_paths, kind=data["type"])


def check_source(text: str, media_paths: set[str] | None, *, kind: str = "") -> Checked:
    result = parse_text(text, "item")
    problems = list(result.problems)
    item = result.items[0].item if len(result.items) == 1 else None
    if item is not None:
        exists = None if media_paths is None else media_paths.__contains__
        problems += check_item(result.items[0], exists)
    by_field: dict[str, list[str]] = {}
    for p in problems:
        by_field.setdefault(_form_field(p.field, kind or (item.type.value if item else "")), []).append(
            FieldProblem(p.message, p.code)
        )
    return Checked(item, by_field)


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


def item_from_draft(source: str) -> Item:
    """The item stored in a draft_items row (its canonical YAML)."""
    result = parse_text(source, "draft")
    if result.problems or len(result.items) != 1:
        raise UserError(
            "bad_draft_source", "the stored item cannot be read: " + "; ".join(str(p) for p in result.problems)
        )
    return result.items[0].item


def with_status(item: Item, status: Status) -> Item:
    return replace(item, status=status)


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


_SEARCH = """
SELECT d.id, d.item_id, d.version, d.type, d.subject, d.grade, d.topic, d.level, d.points, d.state,
       d.author_id, u.username AS author, o.code AS org_code, left(d.stem, 120) AS stem_start, d.updated_at,
       st.exams, st.n, st.p, st.r_pb
FROM draft_items d JOIN users u ON u.id = d.author_id JOIN orgs o ON o.id = d.org_id
LEFT JOIN LATERAL (
    -- Statistics of this very version in the exams the viewer may see.
    SELECT count(*) AS exams, sum(s.n) AS n, avg(s.p) AS p, avg(s.r_pb) AS r_pb
    FROM bank_items b JOIN item_stats s ON s.item_pk = b.id JOIN exams e ON e.id = s.exam_id
    WHERE b.item_id = d.item_id AND b.version = d.version AND e.org_id = ANY($1::bigint[])
) st ON true
WHERE d.org_id = ANY($1::bigint[])
  AND ($2 = '' OR d.subject = $2) AND ($3::int IS NULL OR d.grade = $3) AND ($4 = '' OR d.topic = $4)
  AND ($5::int IS NULL OR d.level = $5) AND ($6 = '' OR d.type = $6) AND ($7 = '' OR d.state = $7)
  AND ($8 = '' OR d.item_id ILIKE '%' || $8 || '%' OR d.stem ILIKE '%' || $8 || '%'
       OR d.topic ILIKE '%' || $8 || '%')
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
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM draft_items WHERE item_id = $1)"
            " OR EXISTS (SELECT 1 FROM bank_items WHERE item_id = $1)",
            item_id,
        )
    )


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


async def _listed_subject(conn: asyncpg.Connection, org_id: int, checked: Checked, keep: str | None = None) -> Checked:
    """The item with its subject as the code of the organisation's list; a subject the
    list lacks is a problem of the subject field, unless the item already had it
    (one from before the list keeps its subject until someone changes it)."""
    if checked.item is None or checked.problems.get("subject"):
        return checked
    typed = checked.item.subject
    found = subject_list.find(await subject_list.list_for(conn, org_id), typed)
    if found is not None:
        checked.item = replace(checked.item, subject=found.code)
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


async def create_item(conn: asyncpg.Connection, user: Staff, fields: Mapping[str, Any]) -> int:
    """A new item (version 1, draft) from the editor's fields."""
    _require_author_role(user)
    item_id = _valid_id(_text(fields, "id"))
    checked = await _listed_subject(
        conn, user.org_id, check_fields(fields, item_id=item_id, version=1, media_paths=set())
    )
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
        pk = await _insert(conn, user, user.org_id, checked.item)
        await _event(conn, pk, user, "create")
    return pk


def _frozen(row: asyncpg.Record, in_bank: bool) -> bool:
    return row["state"] in ("approved", "submitted", "retired") or in_bank


async def _next_version(conn: asyncpg.Connection, item_id: str) -> int:
    return 1 + await conn.fetchval(
        "SELECT greatest((SELECT coalesce(max(version), 0) FROM draft_items WHERE item_id = $1),"
        " (SELECT coalesce(max(version), 0) FROM bank_items WHERE item_id = $1))",
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
    approved (or already imported) one; returns the row that holds them."""
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
        in_bank = await bank_pk(conn, row["item_id"], row["version"]) is not None
        new_version = _frozen(row, in_bank)
        if not new_version:
            _check_may_change(user, row)
        media = await media_of(conn, pk)
        version = await _next_version(conn, row["item_id"]) if new_version else row["version"]
        checked = await _listed_subject(
            conn,
            row["org_id"],
            check_fields(fields, item_id=row["item_id"], version=version, media_paths=set(media)),
            keep=row["subject"],
        )
        if not checked.ok:
            raise InvalidItem(checked)
        item = checked.item
        if new_version:
            new_pk = await _insert(conn, user, row["org_id"], item)
            await _copy_media(conn, pk, new_pk)
            await _event(conn, new_pk, user, "edit", f"version {version} from version {row['version']}")
            return new_pk
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
        item = with_status(item_from_draft(row["source"]), Status.RETIRED)
        await conn.execute(
            "UPDATE draft_items SET state = 'retired', source = $2, updated_at = now() WHERE id = $1",
            pk,
            serialise_item(item),
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
    """A reviewer approves or returns a submitted item."""
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
            item = with_status(item_from_draft(row["source"]), Status.APPROVED)
            await conn.execute(
                "UPDATE draft_items SET state = 'approved', reviewer_id = $2, source = $3,"
                " updated_at = now() WHERE id = $1",
                pk,
                user.id,
                serialise_item(item),
            )
        else:
            await conn.execute(
                "UPDATE draft_items SET state = 'returned', reviewer_id = NULL, updated_at = now() WHERE id = $1", pk
            )
        await _event(conn, pk, user, decision, comment)


_QUEUE = """
SELECT d.id, d.item_id, d.version, d.subject, d.topic, d.level, d.type, d.state, d.updated_at,
       u.username AS author, left(d.stem, 120) AS stem_start,
       (SELECT e.comment FROM review_events e WHERE e.draft_pk = d.id AND e.action = 'return'
        ORDER BY e.at DESC, e.id DESC LIMIT 1) AS last_comment
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


async def _import_items(conn: asyncpg.Connection, user: Staff, items: list[tuple[Item, str]]) -> list[int]:
    """Store parsed items as drafts (all or none); `where` says where each came from, for messages.

    Each item's subject is named by a code or name of the user's list of subjects, and stored as its code."""
    problems = []
    listed = await subject_list.list_for(conn, user.org_id)
    coded = []
    for item, where in items:
        if await id_taken(conn, item.id):
            suggested = await suggest_id(conn, base=item.id)
            problems.append(
                FieldProblem(
                    f"the id {item.id} is already used in the workspace or the bank:"
                    f" give the item another id (e.g. {suggested})",
                    "id-taken",
                    where=where,
                    id=item.id,
                    suggested=suggested,
                )
            )
        found = subject_list.find(listed, item.subject)
        if found is None:
            problems.append(
                FieldProblem(
                    f"the subject {item.subject!r} is not in the list of subjects: write one of"
                    f" {', '.join(s.code for s in listed)}",
                    "subject-not-listed",
                    where=where,
                    subject=item.subject,
                )
            )
        else:
            coded.append(replace(item, subject=found.code))
    if problems:
        raise UserError(
            "import_failed", f"nothing was imported: {len(problems)} problem(s)", problems=problems, count=len(problems)
        )
    pks = []
    async with conn.transaction():
        for item in coded:
            pk = await _insert(conn, user, user.org_id, item)
            await _event(conn, pk, user, "create", "imported")
            pks.append(pk)
    return pks


async def import_yaml(conn: asyncpg.Connection, user: Staff, data: bytes, filename: str) -> list[int]:
    """Items from a YAML file (one item or a list); every problem with its line, and nothing stored if any."""
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
    return await _import_items(conn, user, await uploads.off_loop(uploads.read_yaml_items, text, filename))


async def import_xlsx(conn: asyncpg.Connection, user: Staff, data: bytes, filename: str) -> list[int]:
    """Items from the spreadsheet template; every problem with its row and column, nothing stored if any."""
    _require_author_role(user)
    if len(data) > MAX_IMPORT_BYTES:
        raise UserError("file_too_large", "the file is larger than 3 MB: split it into several files")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(filename or "items.xlsx").name) or "items.xlsx"
    return await _import_items(conn, user, await uploads.off_loop(uploads.read_xlsx_items, data, name))


async def export_yaml(conn: asyncpg.Connection, user: Staff, pks: list[int] | None = None) -> str:
    """The chosen items (or every item the user may see) as one YAML file."""
    orgs = await accounts.visible_org_ids(conn, user)
    rows = await conn.fetch(
        "SELECT source FROM draft_items WHERE org_id = ANY($1::bigint[])"
        " AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[])) ORDER BY item_id, version",
        orgs,
        pks,
    )
    if not rows:
        raise UserError("nothing_chosen", "there is no item to export: choose items in the list")
    return serialise_items(item_from_draft(r["source"]) for r in rows)
