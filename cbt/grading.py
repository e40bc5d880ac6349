"""Scoring an attempt in the database: the one path from stored responses to
stored scores, used by every caller that scores.

A student's submit, the deadline sweep, a proctor's or a close's submit
(submission.finalize) and an essay mark (marking.record_mark) all come here, so
a rule about how an attempt is scored lives in one place: the form's items
read by key, the page's option aliases turned back into the item's own
option ids, `scoring.score_attempt` with the exam's rules and any essay marks,
then per-question scores and totals written in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import asyncpg

from cbt import assembly, bank, scoring
from cbt.exams import spec_from_json
from cbt.platform.errors import Conflict
from itembank.model import Item, ItemType

# Locked as FOR NO KEY UPDATE, not FOR UPDATE: that would block the audit
# chainer's foreign-key check on this attempt, and with it the exam's whole
# chain, until the scoring transaction commits. Two markers of one attempt's
# essays score one after the other.
_ATTEMPT = """
SELECT a.id, a.status, a.layout, a.exam_id, e.spec, c.code AS candidate_code, f.form
FROM attempts a JOIN exams e ON e.id = a.exam_id JOIN candidates c ON c.id = a.candidate_id
JOIN candidate_forms f ON f.candidate_id = a.candidate_id
WHERE a.id = $1 FOR NO KEY UPDATE OF a
"""

_STORE_ITEMS = """
INSERT INTO responses (attempt_id, item_ref, score) VALUES ($1, $2, $3)
ON CONFLICT (attempt_id, item_ref) DO UPDATE SET score = EXCLUDED.score
"""

_STORE_SCORE = """
UPDATE attempts SET score = $2, max_score = $3, provisional = $4, section_scores = $5 WHERE id = $1
"""

_STORE_SUBMISSION = """
UPDATE attempts SET status = 'submitted', submitted_at = $8, submitted_by = $6, score = $2,
       max_score = $3, provisional = $4, section_scores = $5, responses_sha256 = $7
WHERE id = $1
"""


@dataclass(frozen=True)
class Graded:
    """What scoring an attempt stored: the score, and for a submission the
    digest of the final responses (as the page sent them) that its audit
    event and receipt name."""

    attempt: asyncpg.Record
    result: scoring.AttemptScore
    responses_sha256: str | None = None


def unalias(value, layout_entry: dict, form_item: assembly.FormItem):
    """A response as the page sent it (option aliases) in the item's own option ids."""
    back = dict(zip(form_item.option_aliases, form_item.option_order, strict=True))
    kind = layout_entry["t"]
    if value is None:
        return None
    if kind == "single":
        return back.get(value)
    if kind == "multiple":
        return [back[v] for v in value if v in back]
    return value


async def form_items(conn, pks: list[int], cache: dict | None = None) -> dict[int, Item]:
    """The parsed bank items ``pks``, from ``cache`` (filled as a side effect)
    where a worker already holds them, else read by key."""
    cache = {} if cache is None else cache
    missing = [pk for pk in dict.fromkeys(pks) if pk not in cache]
    if missing:
        for pk, source in (await bank.item_sources(conn, missing)).items():
            cache[pk] = bank.item_from_source(source)
    return {pk: cache[pk] for pk in pks}


async def score_attempt(
    conn, attempt_id: int, *, submit_by: str | None = None, items: dict | None = None
) -> Graded | None:
    """Score attempt ``attempt_id`` from its stored responses and essay marks,
    and store the result (per-question scores, total, max, provisional while
    an essay is unmarked, section totals).

    ``submit_by`` (candidate, deadline, proctor, close) also submits it: an
    attempt already submitted is left as it is and None is returned, so two
    submits racing score once. Without ``submit_by`` the attempt must be
    submitted already (a re-score after an essay mark). ``items`` is a
    worker's cache of parsed items by bank item id. Runs in the caller's
    transaction, which must be open: the caller adds its audit event to it.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("grading.score_attempt runs inside the caller's transaction")
    attempt = await conn.fetchrow(_ATTEMPT, attempt_id)
    if submit_by is not None:
        if attempt is None or attempt["status"] == "submitted":
            return None
    elif attempt is None or attempt["status"] != "submitted":
        raise Conflict("attempt_not_marked", "only a submitted attempt is scored")
    spec = spec_from_json(json.loads(attempt["spec"]))
    form = assembly.form_from_json(json.loads(attempt["form"]))
    layout = json.loads(attempt["layout"])
    parsed = await form_items(conn, [fi.pk for s in form.sections for fi in s.items], items)
    raw = {
        r["item_ref"]: json.loads(r["value"]) if r["value"] is not None else None
        for r in await conn.fetch("SELECT item_ref, value FROM responses WHERE attempt_id = $1", attempt_id)
    }
    # Only a form with essays has marks to read: most submits skip the query.
    marks = {}
    if any(item.type == ItemType.ESSAY for item in parsed.values()):
        marks = {
            r["item_ref"]: r["points"]
            for r in await conn.fetch("SELECT item_ref, points FROM essay_marks WHERE attempt_id = $1", attempt_id)
        }
    responses, sections = {}, []
    for s in form.sections:
        entries = []
        for fi in s.items:
            responses[fi.ref] = unalias(raw.get(fi.ref), layout[fi.ref], fi)
            entries.append((fi.ref, parsed[fi.pk], fi.points))
        sections.append(entries)
    rules = scoring.ScoringRules(multiple_partial=spec.multiple_partial, single_penalty=spec.single_penalty)
    unscored = {fi.ref for fi in form.items if not fi.scored}
    result = scoring.score_attempt(sections, responses, rules, essay_marks=marks, unscored=unscored)
    section_scores = json.dumps([{"total": str(s.total), "max": str(s.max_total)} for s in result.sections])
    await conn.executemany(_STORE_ITEMS, [(attempt_id, ref, s) for ref, s in result.items.items()])
    if submit_by is None:
        await conn.execute(_STORE_SCORE, attempt_id, result.total, result.max_total, result.provisional, section_scores)
        return Graded(attempt, result)
    final = {ref: raw.get(ref) for ref in sorted(layout)}
    digest = hashlib.sha256(json.dumps(final, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    await conn.execute(
        _STORE_SUBMISSION,
        attempt_id,
        result.total,
        result.max_total,
        result.provisional,
        section_scores,
        submit_by,
        digest,
        dt.datetime.now(dt.UTC),
    )
    return Graded(attempt, result, digest)
