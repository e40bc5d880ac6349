"""Essay marking: the queue of one essay item across candidates, marks with
their history, and re-scoring an attempt when its essays are marked.

Markers never see who wrote a script: a script is shown by an anonymous
number, the rank of the attempt in an order only the server can compute
(HMAC with the exam secret), so neither the number nor the order reveals the
candidate. The attempt id travels in the marking form; it names nobody
without the database.

A mark is an exact Decimal from 0 to the question's points on the form, with
no more decimals than the exam reports (``report_decimals``). Every mark,
first or re-mark, is kept in essay_mark_history and appended to the exam's
audit chain in the same transaction; essay_marks holds the current one. Each
mark re-scores the attempt with `scoring.score_attempt`; once every essay is
marked the total is no longer provisional.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import asyncpg

from cbt import audit, grading, scoring
from cbt.accounts import Staff
from cbt.platform.errors import Conflict, NotFound, UserError
from itembank.formats.yaml_format import parse_text
from itembank.model import Item

MAX_COMMENT = 4000
_NUMBER_DOMAIN = b"cbt/marking-number/"

# Every question of every form of the exam, one row each (form JSON unnested).
_FORM_ITEMS = """
SELECT a.id AS attempt_id, a.status, a.voided, fi->>'ref' AS ref, (fi->>'pk')::bigint AS pk,
       (fi->>'points')::numeric AS max_points
FROM attempts a
JOIN candidate_forms f ON f.candidate_id = a.candidate_id
CROSS JOIN LATERAL jsonb_array_elements(f.form->'sections') AS s
CROSS JOIN LATERAL jsonb_array_elements(s->'items') AS fi
WHERE a.exam_id = $1
"""
_PROGRESS = f"""
WITH q AS ({_FORM_ITEMS})
SELECT b.id AS pk, b.item_id, b.version,
       count(q.attempt_id) FILTER (WHERE q.status = 'submitted' AND NOT q.voided) AS total,
       count(m.attempt_id) FILTER (WHERE q.status = 'submitted' AND NOT q.voided) AS marked
FROM exam_items ei JOIN bank_items b ON b.id = ei.item_pk
LEFT JOIN q ON q.pk = ei.item_pk
LEFT JOIN essay_marks m ON m.attempt_id = q.attempt_id AND m.item_ref = q.ref
WHERE ei.exam_id = $1 AND ei.type = 'essay'
GROUP BY b.id, b.item_id, b.version ORDER BY b.item_id, b.version
"""  # noqa: S608 - inserts only a module constant
_SCRIPTS = f"""
WITH q AS ({_FORM_ITEMS})
SELECT q.attempt_id, q.ref, q.max_points, r.value, m.points AS mark, m.comment, m.marked_at
FROM q LEFT JOIN responses r ON r.attempt_id = q.attempt_id AND r.item_ref = q.ref
LEFT JOIN essay_marks m ON m.attempt_id = q.attempt_id AND m.item_ref = q.ref
WHERE q.pk = $2 AND q.status = 'submitted' AND NOT q.voided
"""  # noqa: S608 - inserts only a module constant
_QUESTION = f"SELECT q.ref, q.max_points FROM ({_FORM_ITEMS}) q WHERE q.attempt_id = $2 AND q.pk = $3"  # noqa: S608


@dataclass(frozen=True)
class Script:
    """One candidate's answer to one essay question, without the candidate."""

    attempt_id: int
    number: int
    ref: str
    max_points: Decimal
    answer: str | None
    mark: Decimal | None
    comment: str
    marked_at: object


@dataclass(frozen=True)
class EssayProgress:
    pk: int
    item_id: str
    version: int
    marked: int
    total: int


def report_decimals(exam: asyncpg.Record) -> int:
    return int(json.loads(exam["spec"]).get("report_decimals", 2))


def step_of(decimals: int) -> Decimal:
    """The smallest mark step the exam reports: 2 decimals -> 0.01."""
    return Decimal(1).scaleb(-decimals)


def parse_mark(raw: object, max_points: Decimal, decimals: int) -> Decimal:
    """The mark typed by a marker, checked: "0,75" and "0.75" are the same."""
    text = str(raw if raw is not None else "").strip().replace(",", ".")
    if not text:
        raise UserError("mark_missing", "enter the points for this answer")
    try:
        mark = Decimal(text)
    except InvalidOperation:
        raise UserError("bad_mark", f"{text!r} is not a number: enter points such as 0.5") from None
    if not mark.is_finite():
        raise UserError("bad_mark", f"{text!r} is not a number: enter points such as 0.5")
    if mark < 0 or mark > max_points:
        raise UserError(
            "mark_out_of_range", f"the points must be from 0 to {max_points}, not {text}", max_points=str(max_points)
        )
    if mark != mark.quantize(step_of(decimals)):
        raise UserError(
            "mark_step",
            f"this exam counts points in steps of {step_of(decimals)}: {text} has too many decimals",
            step=str(step_of(decimals)),
        )
    return mark


def anonymous_numbers(secret: bytes, attempt_ids: list[int]) -> dict[int, int]:
    """attempt id -> 1, 2, 3 ... in an order fixed by the exam secret."""

    def key(attempt_id: int) -> bytes:
        return hmac.new(bytes(secret), _NUMBER_DOMAIN + str(attempt_id).encode(), hashlib.sha256).digest()

    return {a: n for n, a in enumerate(sorted(attempt_ids, key=key), start=1)}


async def _numbers(conn: asyncpg.Connection, exam: asyncpg.Record) -> dict[int, int]:
    # Every attempt, not only the submitted ones: a late submission must not
    # renumber the scripts a marker has already seen.
    ids = [r[0] for r in await conn.fetch("SELECT id FROM attempts WHERE exam_id = $1", exam["id"])]
    return anonymous_numbers(exam["secret"], ids)


async def essay_progress(conn: asyncpg.Connection, exam_id: int) -> list[EssayProgress]:
    """Each essay item of the exam with its marked / total scripts (submitted, not voided)."""
    rows = await conn.fetch(_PROGRESS, exam_id)
    return [EssayProgress(r["pk"], r["item_id"], r["version"], r["marked"], r["total"]) for r in rows]


async def essay_item(conn: asyncpg.Connection, exam_id: int, pk: int) -> tuple[asyncpg.Record, Item]:
    """The bank row and item of an essay question of this exam."""
    row = await conn.fetchrow(
        "SELECT b.id, b.item_id, b.version, b.type, b.source FROM exam_items ei "
        "JOIN bank_items b ON b.id = ei.item_pk WHERE ei.exam_id = $1 AND ei.item_pk = $2",
        exam_id,
        pk,
    )
    if row is None:
        raise NotFound("unknown_item", f"item {pk} is not a question of this exam")
    if row["type"] != "essay":
        raise UserError(
            "not_essay",
            f"item {row['item_id']} is a {row['type']} question, scored automatically: only essays are marked by hand",
        )
    return row, parse_text(row["source"], "bank").items[0].item


async def scripts(conn: asyncpg.Connection, exam: asyncpg.Record, pk: int) -> list[Script]:
    """Every submitted answer to essay item ``pk``, by anonymous number."""
    rows = await conn.fetch(_SCRIPTS, exam["id"], pk)
    numbers = await _numbers(conn, exam)
    out = []
    for r in rows:
        value = json.loads(r["value"]) if r["value"] is not None else None
        out.append(
            Script(
                r["attempt_id"],
                numbers[r["attempt_id"]],
                r["ref"],
                r["max_points"],
                value if isinstance(value, str) else None,
                r["mark"],
                r["comment"] or "",
                r["marked_at"],
            )
        )
    return sorted(out, key=lambda s: s.number)


async def record_mark(
    conn: asyncpg.Connection,
    exam: asyncpg.Record,
    pk: int,
    attempt_id: object,
    raw_points: object,
    comment: str,
    staff: Staff,
) -> scoring.AttemptScore:
    """Store a mark (replacing an earlier one, keeping it in the history),
    audit it and re-score the attempt, all in one transaction."""
    await essay_item(conn, exam["id"], pk)
    try:
        attempt_id = int(str(attempt_id))
    except ValueError:
        raise NotFound("unknown_attempt", "no such script in this exam") from None
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise UserError(
            "comment_too_long", f"the comment has {len(comment)} characters: keep it to {MAX_COMMENT}", max=MAX_COMMENT
        )
    async with conn.transaction():
        # Locked: two markers on two essays of one attempt re-score one after the other.
        attempt = await conn.fetchrow(
            "SELECT id, status, voided FROM attempts WHERE id = $1 AND exam_id = $2 FOR NO KEY UPDATE",
            attempt_id,
            exam["id"],
        )
        if attempt is None:
            raise NotFound("unknown_attempt", "no such script in this exam")
        if attempt["status"] != "submitted" or attempt["voided"]:
            raise Conflict("attempt_not_marked", "this attempt is not submitted (or was voided): nothing to mark")
        question = await conn.fetchrow(_QUESTION, exam["id"], attempt_id, pk)
        if question is None:
            raise NotFound("unknown_attempt", "this script does not have that question on its form")
        mark = parse_mark(raw_points, question["max_points"], report_decimals(exam))
        previous = await conn.fetchval(
            "SELECT points FROM essay_marks WHERE attempt_id = $1 AND item_ref = $2", attempt_id, question["ref"]
        )
        await conn.execute(
            """
            INSERT INTO essay_marks (attempt_id, item_ref, points, comment, marker_id) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (attempt_id, item_ref) DO UPDATE SET points = EXCLUDED.points, comment = EXCLUDED.comment,
                marker_id = EXCLUDED.marker_id, marked_at = now()
            """,
            attempt_id,
            question["ref"],
            mark,
            comment,
            staff.id,
        )
        await conn.execute(
            "INSERT INTO essay_mark_history (attempt_id, item_ref, points, comment, marker_id) "
            "VALUES ($1, $2, $3, $4, $5)",
            attempt_id,
            question["ref"],
            mark,
            comment,
            staff.id,
        )
        await audit.append(
            conn,
            exam["id"],
            f"staff:{staff.username}",
            "exam_edit",
            {
                "edit": "essay_mark",
                "item_ref": question["ref"],
                "item_pk": pk,
                "points": str(mark),
                "previous": None if previous is None else str(previous),
                "comment": comment,
            },
            attempt_id=attempt_id,
        )
        return await rescore(conn, attempt_id)


async def rescore(conn: asyncpg.Connection, attempt_id: int) -> scoring.AttemptScore:
    """Score a submitted attempt again with its essay marks and store the
    result: per-question scores, total, and provisional while any essay is unmarked."""
    async with conn.transaction():
        return (await grading.score_attempt(conn, attempt_id)).result


async def mark_history(conn: asyncpg.Connection, attempt_id: int, ref: str) -> list[asyncpg.Record]:
    """Every mark given to one answer, oldest first, with the marker's name."""
    return await conn.fetch(
        "SELECT h.points, h.comment, h.marked_at, u.username FROM essay_mark_history h "
        "JOIN users u ON u.id = h.marker_id WHERE h.attempt_id = $1 AND h.item_ref = $2 ORDER BY h.id",
        attempt_id,
        ref,
    )
