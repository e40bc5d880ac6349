"""Autosave: POST /api/v1/changes, the journal protocol of DESIGN.md.

The page numbers every change (seq, per attempt, from 1) and sends batches;
it may resend, reorder or duplicate them after a network drop or reload.
The server:

- refuses the whole batch, writing nothing, if any change is malformed;
- refuses changes after deadline + grace (or for a closed section) and logs
  them in refused_changes, so a dispute can be settled from the record;
- appends each change to response_history once (seq is the key);
- applies a change to the current answer only if its seq is newer than
  the one that set it (so a late old change never overwrites a new one);
- commits, then acknowledges saved_seq: the highest n such that every
  change 1..n is stored. The page drops journal entries up to saved_seq.
"""

from __future__ import annotations

import datetime as dt
import json

from aiohttp import web

from cbt import audit, keys
from cbt.clientaddr import client_addr
from cbt.delivery import (
    Cache,
    attempt_id_matches,
    attempt_layout,
    bearer_hash,
    check_attempt_id,
    close_if_expired,
    current_candidate_lean,
    guard,
    guard_passes,
    iso,
    json_body,
    now_utc,
    read_json,
    sequential,
)
from cbt.errors import Conflict, UserError

MAX_CHANGES = 500
# Candidates a worker remembers for the fast path (about 3 KB each).
MAX_SEEN = 20_000
MAX_SHORT = 100
MAX_ESSAY = 20_000

# A save is one statement, so atomic without a transaction, and one round
# trip (under load, round trips are what a save costs): the changes go to the
# history, the current answers and flags are updated, the batch's audit event
# is recorded and saved_seq advances. (The proctor consoles are woken after
# it, coalesced: see delivery.Notifier.)
#
# It writes only if `verified` finds the session, candidate, exam and attempt
# exactly as the handler checked them: the session unexpired, the same row
# versions (xmin) of session, candidate and exam, and the attempt in progress,
# unpaused, with the same deadline, section, device and void flag. Otherwise
# it writes nothing and returns no row. That lets the handler check a batch
# against the candidate as this worker last read it and save in one round
# trip (the fast path); when anything changed, it reads afresh (the slow
# path), which gives every refusal its proper answer.
#
# saved_seq moves to the end of the unbroken run of stored changes above it.
# The statement cannot see its own inserts, so "stored" is what the snapshot
# holds plus what this batch brings. A concurrent batch of the same attempt
# may be missed by the snapshot: saved_seq is then lower than it could be
# (the page resends, the protocol allows it) and greatest() keeps it from
# ever moving back.
_SAVE = """
WITH verified AS (
    SELECT 1 FROM candidate_sessions s
    JOIN candidates c ON c.id = s.candidate_id
    JOIN exams e ON e.id = c.exam_id
    JOIN attempts a ON a.candidate_id = c.id
    WHERE s.token_hash = $10 AND s.expires_at > now() AND a.id = $1
      AND s.xmin::text = $11 AND c.xmin::text = $12 AND e.xmin::text = $13
      AND a.status = 'in_progress' AND a.paused_at IS NULL AND a.voided = $14 AND a.deadline = $15
      AND a.section_index = $16 AND a.section_deadline IS NOT DISTINCT FROM $17
      AND a.device_hash IS NOT DISTINCT FROM $18
), incoming AS (
    SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS c(seq, item_ref, kind, value)
    WHERE EXISTS (SELECT 1 FROM verified)
), history AS (
    INSERT INTO response_history (attempt_id, seq, item_ref, kind, value)
    SELECT $1, seq, item_ref, kind, value::jsonb FROM incoming
    ON CONFLICT (attempt_id, seq) DO NOTHING
), audited AS (
    INSERT INTO audit_pending (exam_id, actor, kind, attempt_id, content)
    SELECT $6, $7, 'changes', $1, $8::jsonb FROM verified
), per_item AS (
    SELECT item_ref,
           max(seq) FILTER (WHERE kind = 'answer') AS value_seq,
           (array_agg(value ORDER BY seq DESC) FILTER (WHERE kind = 'answer'))[1] AS value,
           max(seq) FILTER (WHERE kind = 'flag') AS flag_seq,
           (array_agg(value ORDER BY seq DESC) FILTER (WHERE kind = 'flag'))[1] AS flag
    FROM incoming GROUP BY item_ref
), applied AS (
    INSERT INTO responses AS r (attempt_id, item_ref, value, value_seq, flagged, flag_seq)
    SELECT $1, item_ref, value::jsonb, coalesce(value_seq, 0), coalesce(flag::boolean, false), coalesce(flag_seq, 0)
    FROM per_item
    ON CONFLICT (attempt_id, item_ref) DO UPDATE SET
        value = CASE WHEN EXCLUDED.value_seq > r.value_seq THEN EXCLUDED.value ELSE r.value END,
        value_seq = greatest(r.value_seq, EXCLUDED.value_seq),
        flagged = CASE WHEN EXCLUDED.flag_seq > r.flag_seq THEN EXCLUDED.flagged ELSE r.flagged END,
        flag_seq = greatest(r.flag_seq, EXCLUDED.flag_seq),
        updated_at = now()
), before AS (
    SELECT saved_seq FROM attempts WHERE id = $1
), stored AS (
    SELECT h.seq FROM response_history h, before WHERE h.attempt_id = $1 AND h.seq > before.saved_seq
    UNION
    SELECT i.seq FROM incoming i, before WHERE i.seq > before.saved_seq
    UNION
    SELECT saved_seq FROM before
), run_end AS (
    SELECT min(s.seq) AS seq FROM stored s
    WHERE s.seq >= (SELECT saved_seq FROM before) AND NOT EXISTS (SELECT 1 FROM stored n WHERE n.seq = s.seq + 1)
), advanced AS (
    UPDATE attempts a SET last_seen = now(), last_addr = $9,
        addr_changes = addr_changes + (a.last_addr IS NOT NULL AND a.last_addr <> $9)::int,
        saved_seq = greatest(a.saved_seq, (SELECT seq FROM run_end))
    WHERE a.id = $1 AND EXISTS (SELECT 1 FROM verified)
    RETURNING saved_seq
)
SELECT saved_seq FROM advanced
"""


def _bad(seq, why: str) -> UserError:
    return UserError("bad_change", f"change {seq}: {why}", seq=seq)


def check_value(seq, kind: str, value, entry: dict) -> str:
    """Validate one answer against the question's layout; return it as JSON text."""
    if kind == "flag":
        if not isinstance(value, bool):
            raise _bad(seq, "a flag is true or false")
        return json.dumps(value)
    t = entry["t"]
    if value is None:
        return "null"
    if t == "single":
        if value not in entry["o"]:
            raise _bad(seq, "not one of this question's options")
    elif t == "multiple":
        if not isinstance(value, list) or any(v not in entry["o"] for v in value) or len(set(value)) != len(value):
            raise _bad(seq, "a list of this question's options, each once")
    elif t == "truefalse4":
        if not isinstance(value, dict) or any(k not in entry["s"] or not isinstance(v, bool | None)
                                              for k, v in value.items()):
            raise _bad(seq, "statements a-d, each true, false or null")
    elif t == "short":
        if not isinstance(value, str) or len(value) > MAX_SHORT:
            raise _bad(seq, f"a short answer is text of at most {MAX_SHORT} characters")
    elif t == "essay":
        if not isinstance(value, str) or len(value) > MAX_ESSAY:
            raise _bad(seq, f"an essay is text of at most {MAX_ESSAY} characters")
    return json.dumps(value, ensure_ascii=False)


def parse_changes(body: dict, layout: dict) -> list[tuple[int, str, str, str]]:
    changes = body.get("changes")
    if not isinstance(changes, list) or not changes:
        raise UserError("bad_change", "send changes: a non-empty list of {seq, item, kind, value}")
    if len(changes) > MAX_CHANGES:
        raise UserError("bad_change", f"at most {MAX_CHANGES} changes per batch")
    rows, seen = [], set()
    for c in changes:
        if not isinstance(c, dict):
            raise UserError("bad_change", "each change is an object {seq, item, kind, value}")
        seq, item, kind = c.get("seq"), c.get("item"), c.get("kind", "answer")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < 2**62:
            raise _bad(seq, "seq must be a positive whole number")
        if seq in seen:
            raise _bad(seq, "the same seq twice in one batch")
        seen.add(seq)
        if item not in layout:
            raise _bad(seq, f"no question {item!r} on this form")
        if kind not in ("answer", "flag"):
            raise _bad(seq, "kind is 'answer' or 'flag'")
        rows.append((seq, item, kind, check_value(seq, kind, c.get("value"), layout[item])))
    return rows


def fast_rows(request: web.Request, body: dict, me: dict, addr: str) -> list | None:
    """The batch's rows if, by `me` as last read, it would be saved as it is;
    None if anything would need an answer other than "saved" (the slow path
    reads the candidate afresh and gives it). No side effects."""
    if me["attempt_id"] is None or me["attempt_status"] != "in_progress" or not attempt_id_matches(body, me):
        return None
    now = now_utc()
    grace = dt.timedelta(seconds=me["grace_seconds"])
    if now > me["deadline"] + grace or (me["section_deadline"] is not None and now > me["section_deadline"] + grace):
        return None
    if not guard_passes(request, me, addr):
        return None
    layout = attempt_layout(request.app, me["attempt_id"])
    if layout is None:
        return None
    try:
        rows = parse_changes(body, layout)
    except UserError:
        return None
    if sequential(me) and any(r[2] == "answer" and layout[r[1]]["sec"] != me["section_index"] for r in rows):
        return None
    return rows


async def save(conn, me: dict, token: bytes, rows: list, changes: list, addr: str) -> int | None:
    """Store checked rows (parse_changes) for `me` (current_candidate_lean, with
    the bearer-token hash it was read by); the new saved_seq, or None, with
    nothing written, if `me` no longer holds (see _SAVE)."""
    return await conn.fetchval(
        _SAVE, me["attempt_id"], [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [r[3] for r in rows], me["exam_id"], f"candidate:{me['code']}",
        audit.content_text("changes", audit.batch_digest(changes)), addr,
        token, me["session_version"], me["candidate_version"], me["spec_version"], me["voided"], me["deadline"],
        me["section_index"], me["section_deadline"], me["device_hash"])


def _saved(request: web.Request, me: dict, saved: int) -> web.Response:
    request.app[keys.NOTIFIER].soon(me["exam_id"])
    return json_body({"saved_seq": saved, "server_now": iso(now_utc()), "deadline": iso(me["deadline"]),
                      "section_index": me["section_index"], "section_deadline": iso(me["section_deadline"])})


async def changes(request: web.Request) -> web.Response:
    body = await read_json(request)
    token = bearer_hash(request)
    addr = client_addr(request, request.app[keys.SETTINGS].trusted_proxies)
    seen = Cache.of(request.app).seen
    async with request.app[keys.POOL].acquire() as conn:
        me = seen.get(token)
        if me is not None:
            rows = fast_rows(request, body, me, addr)
            if rows is not None:
                saved = await save(conn, me, token, rows, body["changes"], addr)
                if saved is not None:
                    return _saved(request, me, saved)
            seen.pop(token, None)
        # The slow path. Its own save can find the attempt changed in between
        # (a proctor's pause, say): then it reads again.
        for _ in range(3):
            me, rows = await _checked(request, conn, body)
            saved = await save(conn, me, token, rows, body["changes"], addr)
            if saved is not None:
                if len(seen) > MAX_SEEN:
                    seen.clear()  # all take the slow path once, then the worker knows them again
                seen[token] = me
                return _saved(request, me, saved)
    raise UserError("save_contended", "the exam changed while saving: the page sends the change again by itself",
                    status=503)


async def _checked(request: web.Request, conn, body: dict) -> tuple[dict, list]:
    """Read the candidate afresh and check the batch: (me, rows) to save, or
    the refusal (recorded in refused_changes and the audit chain if late)."""
    me, layout = await current_candidate_lean(request, conn)
    check_attempt_id(body, me)
    if me["attempt_id"] is None:
        raise Conflict("not_started", "this attempt has not started: press Start")
    await guard(request, me, conn, write=True)
    if await close_if_expired(request, me, conn) is not me:
        # It closed a section or the attempt: read the candidate as it is now.
        me, layout = await current_candidate_lean(request, conn)
    rows = parse_changes(body, layout)
    late = now_utc() > me["deadline"] + dt.timedelta(seconds=me["grace_seconds"])
    section_closed = False
    if sequential(me):
        # Timed sections run one after another: only the current one takes answers.
        section_closed = any(r[2] == "answer" and layout[r[1]]["sec"] != me["section_index"] for r in rows)
    if me["attempt_status"] != "in_progress" or late or section_closed:
        reason = ("after_deadline" if late else "attempt_submitted" if me["attempt_status"] != "in_progress"
                  else "section_closed")
        await conn.execute("INSERT INTO refused_changes (attempt_id, reason, body) VALUES ($1, $2, $3)",
                           me["attempt_id"], reason, json.dumps(body, ensure_ascii=False)[:100_000])
        await audit.append(conn, me["exam_id"], f"candidate:{me['code']}", "refused_changes",
                           {"reason": reason, **audit.batch_digest(body["changes"])},
                           attempt_id=me["attempt_id"])
        me = await close_if_expired(request, me, conn)
        if reason == "section_closed":
            raise Conflict("section_closed", "that question's section is not open: changes were not saved",
                           saved_seq=me["saved_seq"])
        raise Conflict("attempt_closed", "time is up: this attempt is closed and the change was not saved",
                       saved_seq=me["saved_seq"], deadline=iso(me["deadline"]))
    return me, rows
