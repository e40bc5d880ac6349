"""Autosave: POST /api/v1/changes, the journal protocol of docs/design.md.

The page numbers every change (seq, per attempt, from 1) and sends batches;
it may resend, reorder or duplicate them after a network drop or reload.
The server:

- refuses the whole batch, writing nothing, if any change is malformed
  (naming its seq); the page then withdraws that change (kind "withdrawn":
  it fills the seq and changes no answer) and the rest of its journal goes on;
- refuses changes after deadline + grace (or for a closed section) and logs
  them in refused_changes, so a dispute can be settled from the record;
- appends each change to response_history once (seq is the key);
- applies a change to the current answer only if its seq is newer than
  the one that set it (so a late old change never overwrites a new one);
- commits, then acknowledges saved_seq: the highest n such that every
  change 1..n is stored. The page drops journal entries up to saved_seq.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from cbt import audit
from cbt.delivery.candidate import (
    Cache,
    attempt_id_matches,
    attempt_layout,
    bearer_hash,
    check_attempt_id,
    close_if_expired,
    current_candidate_lean,
    guard,
    guard_passes,
    sequential,
)
from cbt.platform import appkeys, db
from cbt.platform.clientaddr import client_addr
from cbt.platform.errors import Conflict, UserError
from cbt.platform.jsonio import iso, json_body, json_bytes, now_utc, read_json_lone_surrogates
from cbt.platform.metrics import Metrics

MAX_CHANGES = 500
# Save statements a worker runs at once (GroupCommit), each on a connection of
# its own. One: saves that arrive meanwhile go together in the next statement.
# Flat out, two in flight saved about 3 batches a statement and one about 5,
# and PostgreSQL and the worker spent 1.17 ms a batch instead of 1.43 (the
# harness's ceiling, same machine); a statement takes 1-2 ms, so a lone save
# waits at most that long.
MAX_INFLIGHT = 1
# Settings of GroupCommit's connections: see PLANS above _SAVE.
SAVE_SETTINGS = {"enable_seqscan": "off"}
# Candidates a worker remembers for the fast path (about 3 KB each).
MAX_SEEN = 20_000
MAX_SHORT = 100
MAX_ESSAY = 20_000

# A save is one statement, so atomic without a transaction, and one round
# trip (under load, round trips are what a save costs): the changes go to the
# history, the current answers and flags are updated, the batch's audit event
# is recorded and saved_seq advances. (The proctor consoles are woken after
# it, coalesced: see notify.Notifier.) One statement carries the saves of
# several candidates when they arrive together (GroupCommit below): `req` has
# a row per save, i its position; the changes carry the i of their save.
#
# A save writes only if `verified` finds the session, candidate, exam and
# attempt exactly as the handler checked them: the session unexpired, the same
# row versions (xmin) of session, candidate and exam, and the attempt in
# progress, unpaused, with the same deadline, section, device and void flag.
# Otherwise that save writes nothing and returns no row; the others in the
# statement are not affected. That lets the handler check a batch against the
# candidate as this worker last read it and save in one round trip (the fast
# path); when anything changed, it reads afresh (the slow path), which gives
# every refusal its proper answer.
#
# PLANS. The pool runs generic plans (db.create_pool): made at a statement's
# first use on a connection, from the tables as they are then, and kept. When
# an exam starts, the tables a save touches are nearly empty, and a plan made
# then went on scanning them whole, or hash-joining them, as they grew: after
# 30 s of saves flat out, each statement read all 61,000 rows of
# response_history (PostgreSQL 1.3-1.7 ms a save, against 0.5 with lookups).
# So every table is reached by a key from a row of `req` or `verified`, in a
# LATERAL that OFFSET 0 keeps the planner from flattening into a join, and
# GroupCommit's connections run with sequential scans off (SAVE_SETTINGS):
# an index lookup is then the only way in, whatever the tables' size.
#
# saved_seq moves to the end of the unbroken run of stored changes above it.
# The statement cannot see its own inserts, so "stored" is what the snapshot
# holds plus what this batch brings. A concurrent batch of the same attempt
# may be missed by the snapshot: saved_seq is then lower than it could be
# (the page resends, the protocol allows it) and greatest() keeps it from
# ever moving back. Two saves of one attempt in one statement are allowed (they
# get the same saved_seq) but GroupCommit never sends them together.
_SAVE = """
WITH req AS (
    SELECT r.i, r.attempt_id, decode(r.token_hash, 'hex') AS token_hash, r.session_version, r.candidate_version,
           r.exam_version, r.voided, r.deadline, r.section_index, r.section_deadline,
           decode(r.device_hash, 'hex') AS device_hash, r.exam_id, r.actor, r.content, r.addr, r.candidate_id
    FROM jsonb_to_recordset($1::jsonb) AS r(i int, attempt_id bigint, token_hash text, session_version text,
        candidate_version text, exam_version text, voided boolean, deadline timestamptz, section_index integer,
        section_deadline timestamptz, device_hash text, exam_id bigint, actor text, content text, addr text,
        candidate_id bigint)
), verified AS (
    -- Each row by its key alone, the checks made on what comes back (see PLANS).
    SELECT r.i, r.attempt_id, r.exam_id, r.actor, r.content, r.addr, a.saved_seq FROM req r
    CROSS JOIN LATERAL (SELECT candidate_id, expires_at, xmin::text AS version FROM candidate_sessions
                        WHERE token_hash = r.token_hash OFFSET 0) s
    CROSS JOIN LATERAL (SELECT xmin::text AS version FROM candidates WHERE id = r.candidate_id OFFSET 0) c
    CROSS JOIN LATERAL (SELECT xmin::text AS version FROM exams WHERE id = r.exam_id OFFSET 0) e
    CROSS JOIN LATERAL (SELECT candidate_id, status, paused_at, voided, deadline, section_index, section_deadline,
                               device_hash, saved_seq FROM attempts WHERE id = r.attempt_id OFFSET 0) a
    WHERE s.candidate_id = r.candidate_id AND s.expires_at > now() AND s.version = r.session_version
      AND c.version = r.candidate_version AND e.version = r.exam_version
      AND a.candidate_id = r.candidate_id AND a.status = 'in_progress' AND a.paused_at IS NULL
      AND a.voided = r.voided AND a.deadline = r.deadline AND a.section_index = r.section_index
      AND a.section_deadline IS NOT DISTINCT FROM r.section_deadline
      AND a.device_hash IS NOT DISTINCT FROM r.device_hash
), incoming AS (
    SELECT v.attempt_id, c.seq, c.item_ref, c.kind, c.value
    FROM jsonb_to_recordset($2::jsonb) AS c(i int, seq bigint, item_ref text, kind text, value text)
    JOIN verified v ON v.i = c.i
), history AS (
    INSERT INTO response_history (attempt_id, seq, item_ref, kind, value)
    SELECT attempt_id, seq, item_ref, kind, value::jsonb FROM incoming
    ON CONFLICT (attempt_id, seq) DO NOTHING
), audited AS (
    INSERT INTO audit_pending (exam_id, actor, kind, attempt_id, content)
    SELECT exam_id, actor, 'changes', attempt_id, content::jsonb FROM verified ORDER BY i
), per_item AS (
    SELECT attempt_id, item_ref,
           max(seq) FILTER (WHERE kind = 'answer') AS value_seq,
           (array_agg(value ORDER BY seq DESC) FILTER (WHERE kind = 'answer'))[1] AS value,
           max(seq) FILTER (WHERE kind = 'flag') AS flag_seq,
           (array_agg(value ORDER BY seq DESC) FILTER (WHERE kind = 'flag'))[1] AS flag
    FROM incoming WHERE kind <> 'withdrawn' GROUP BY attempt_id, item_ref
), applied AS (
    INSERT INTO responses AS r (attempt_id, item_ref, value, value_seq, flagged, flag_seq)
    SELECT attempt_id, item_ref, value::jsonb, coalesce(value_seq, 0), coalesce(flag::boolean, false),
           coalesce(flag_seq, 0)
    FROM per_item
    ON CONFLICT (attempt_id, item_ref) DO UPDATE SET
        value = CASE WHEN EXCLUDED.value_seq > r.value_seq THEN EXCLUDED.value ELSE r.value END,
        value_seq = greatest(r.value_seq, EXCLUDED.value_seq),
        flagged = CASE WHEN EXCLUDED.flag_seq > r.flag_seq THEN EXCLUDED.flagged ELSE r.flagged END,
        flag_seq = greatest(r.flag_seq, EXCLUDED.flag_seq),
        updated_at = now()
), before AS (
    SELECT DISTINCT attempt_id, saved_seq FROM verified
), stored AS (
    -- Per attempt by key: the history above saved_seq that the snapshot holds.
    SELECT b.attempt_id, h.seq FROM before b
    CROSS JOIN LATERAL (SELECT h.seq FROM response_history h
                        WHERE h.attempt_id = b.attempt_id AND h.seq > b.saved_seq OFFSET 0) h
    UNION
    SELECT i.attempt_id, i.seq FROM before b JOIN incoming i ON i.attempt_id = b.attempt_id AND i.seq > b.saved_seq
    UNION
    SELECT attempt_id, saved_seq FROM before
), numbered AS (
    -- In an unbroken run, seq less its rank is the same for every member.
    SELECT attempt_id, seq, seq - row_number() OVER (PARTITION BY attempt_id ORDER BY seq) AS run FROM stored
), run_end AS (
    -- The first run starts at saved_seq (the least seq): its end is the new saved_seq.
    SELECT attempt_id, max(seq) AS seq
    FROM (SELECT attempt_id, seq, run, min(run) OVER (PARTITION BY attempt_id) AS first_run FROM numbered) n
    WHERE run = first_run GROUP BY attempt_id
), latest AS (
    SELECT DISTINCT ON (attempt_id) attempt_id, addr FROM verified ORDER BY attempt_id, i DESC
), advanced AS (
    UPDATE attempts a SET last_seen = now(), last_addr = l.addr,
        addr_changes = a.addr_changes + (a.last_addr IS NOT NULL AND a.last_addr <> l.addr)::int,
        saved_seq = greatest(a.saved_seq, e.seq)
    FROM latest l JOIN run_end e ON e.attempt_id = l.attempt_id
    WHERE a.id = l.attempt_id AND a.id = ANY($3::bigint[])
    RETURNING a.id, a.saved_seq
)
SELECT v.i, d.saved_seq FROM verified v JOIN advanced d ON d.id = v.attempt_id
"""


def _bad(seq, why: str) -> UserError:
    # `reason` keeps the specifics for scripts and logs when the message is in the reader's language.
    return UserError("bad_change", f"change {seq}: {why}", seq=seq, reason=why)


# Text PostgreSQL cannot hold: NUL (jsonb refuses "\u0000"), and UTF-16
# surrogates, which in a Python str are only ever unpaired ones and have no
# UTF-8 form. Only a body the strict parser refused can hold those
# (read_json_lone_surrogates): a scan of every essay for them on each save
# would cost more than the rest of the check.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_value(seq, kind: str, value, entry: dict, lone_surrogates: bool = False) -> str:
    """Validate one answer against the question's layout; return it as JSON text.
    `lone_surrogates`: the body may hold unpaired surrogates (see _SURROGATE)."""
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
        if not isinstance(value, dict) or any(
            k not in entry["s"] or not isinstance(v, bool | None) for k, v in value.items()
        ):
            raise _bad(seq, "statements a-d, each true, false or null")
    elif t == "short":
        if not isinstance(value, str) or len(value) > MAX_SHORT:
            raise _bad(seq, f"a short answer is text of at most {MAX_SHORT} characters")
    elif t == "essay":
        if not isinstance(value, str) or len(value) > MAX_ESSAY:
            raise _bad(seq, f"an essay is text of at most {MAX_ESSAY} characters")
    if isinstance(value, str) and ("\x00" in value or (lone_surrogates and _SURROGATE.search(value))):
        raise _bad(seq, "the text holds a character that cannot be saved (NUL or a broken surrogate): remove it")
    return json.dumps(value, ensure_ascii=False)


def parse_changes(body: dict, layout: dict, lone_surrogates: bool = False) -> list[tuple[int, str, str, str]]:
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
        if kind == "withdrawn":
            # The page gives up a change this server refused: it holds the seq
            # and changes no answer. Its question may be one the form lacks
            # (that may be why the change was refused): stored as "".
            if c.get("value") is not None:
                raise _bad(seq, "a withdrawn change has no value")
            rows.append((seq, item if isinstance(item, str) and item in layout else "", kind, "null"))
            continue
        if not isinstance(item, str) or item not in layout:
            raise _bad(seq, f"no question {item!r} on this form")
        if kind not in ("answer", "flag"):
            raise _bad(seq, "kind is 'answer', 'flag' or 'withdrawn'")
        rows.append((seq, item, kind, check_value(seq, kind, c.get("value"), layout[item], lone_surrogates)))
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


@dataclass(frozen=True)
class Save:
    """One checked batch (parse_changes rows) for `me` (current_candidate_lean,
    read by the bearer-token hash `token`), sent from `addr`."""

    me: dict
    token: bytes
    rows: list
    changes: list
    addr: str


async def save_many(conn, saves: list[Save]) -> list[int | None]:
    """Store the saves in one statement (see _SAVE): for each, the new
    saved_seq, or None, with nothing of it written, if its `me` no longer holds."""
    # Two JSON documents (orjson) rather than an array per column: asyncpg's
    # array encoding cost a worker more than PostgreSQL's JSON parsing does.
    req = []
    for i, s in enumerate(saves, 1):
        m = s.me
        req.append(
            {
                "i": i,
                "attempt_id": m["attempt_id"],
                "token_hash": s.token.hex(),
                "session_version": m["session_version"],
                "candidate_version": m["candidate_version"],
                "exam_version": m["spec_version"],
                "voided": m["voided"],
                "deadline": m["deadline"].isoformat(),
                "section_index": m["section_index"],
                "section_deadline": m["section_deadline"] and m["section_deadline"].isoformat(),
                "device_hash": m["device_hash"] and m["device_hash"].hex(),
                "exam_id": m["exam_id"],
                "candidate_id": m["candidate_id"],
                "actor": f"candidate:{m['code']}",
                "addr": s.addr,
                "content": audit.content_text("changes", audit.batch_digest(s.changes)),
            }
        )
    changes = [
        {"i": i, "seq": r[0], "item_ref": r[1], "kind": r[2], "value": r[3]}
        for i, s in enumerate(saves, 1)
        for r in s.rows
    ]
    result = await conn.fetch(
        _SAVE, json_bytes(req).decode(), json_bytes(changes).decode(), [s.me["attempt_id"] for s in saves]
    )
    saved = dict(result)
    return [saved.get(i) for i in range(1, len(saves) + 1)]


async def save_plan(conn) -> list[str]:
    """The save statement's generic plan (EXPLAIN lines) with SAVE_SETTINGS, as GroupCommit runs it."""
    return await db.generic_plan(conn, _SAVE, SAVE_SETTINGS)


async def save(conn, me: dict, token: bytes, rows: list, changes: list, addr: str) -> int | None:
    """One save on `conn` (see save_many)."""
    return (await save_many(conn, [Save(me, token, rows, changes, addr)]))[0]


class GroupCommit:
    """This worker's fast-path saves: those that arrive together go to
    PostgreSQL as one statement.

    Why: under load what a save costs is mostly per statement, not per row:
    the round trip, starting the executor, and the commit with its WAL flush.
    A save is sent at once while fewer than `max_inflight` statements are
    running; saves that arrive meanwhile wait for one to finish and then go
    together (at most `max_saves`, one per attempt). So a lightly loaded
    worker adds no wait, and a busy one sends fewer, larger statements. Each
    save still writes or not on its own (see _SAVE)."""

    def __init__(
        self, pool: asyncpg.Pool, metrics: Metrics | None = None, max_inflight: int = MAX_INFLIGHT, max_saves: int = 64
    ) -> None:
        self.pool, self.metrics = pool, metrics
        self.max_inflight, self.max_saves = max_inflight, max_saves
        self.queue: list[tuple[Save, asyncio.Future]] = []
        self.inflight: set[asyncio.Task] = set()

    async def save(self, item: Save) -> int | None:
        future = asyncio.get_running_loop().create_future()
        self.queue.append((item, future))
        self._send()
        return await future

    def _send(self) -> None:
        while self.queue and len(self.inflight) < self.max_inflight:
            batch, later, attempts = [], [], set()
            for entry in self.queue:
                attempt = entry[0].me["attempt_id"]
                if attempt in attempts or len(batch) >= self.max_saves:
                    later.append(entry)
                else:
                    attempts.add(attempt)
                    batch.append(entry)
            self.queue = later
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self.inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self.inflight.discard(task)
        self._send()

    async def _run(self, batch: list[tuple[Save, asyncio.Future]]) -> None:
        if self.metrics is not None:
            self.metrics.save_group(len(batch))
        try:
            async with self.pool.acquire() as conn:
                results = await save_many(conn, [item for item, _ in batch])
        except Exception as e:  # handed to the requests that wait for it
            if len(batch) == 1:
                _settle(batch[0][1], error=e)
                return
            # Something the statement as a whole met (a deadlock with another
            # worker, say): each save on its own, so each gets its own answer.
            for item, future in batch:
                try:
                    async with self.pool.acquire() as conn:
                        _settle(future, (await save_many(conn, [item]))[0])
                except Exception as one:
                    _settle(future, error=one)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    async def close(self) -> None:
        """Wait for the statements in flight (and what queues behind them)."""
        while self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)


def _settle(future: asyncio.Future, saved: int | None = None, error: BaseException | None = None) -> None:
    # The request may be gone (the client hung up): its save stands all the same.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(saved)


async def group_commit_ctx(app: web.Application):
    """cleanup_ctx: this worker's GroupCommit, on a pool of its own (SAVE_SETTINGS)."""
    pool = await db.create_pool(app[appkeys.SETTINGS].database_url, 1, MAX_INFLIGHT, SAVE_SETTINGS)
    app[appkeys.SAVES] = saves = GroupCommit(pool, app[appkeys.METRICS])
    try:
        yield
    finally:
        await saves.close()
        await pool.close()


def _saved(request: web.Request, me: dict, saved: int) -> web.Response:
    request.app[appkeys.NOTIFIER].soon(me["exam_id"])
    return json_body(
        {
            "saved_seq": saved,
            "server_now": iso(now_utc()),
            "deadline": iso(me["deadline"]),
            "section_index": me["section_index"],
            "section_deadline": iso(me["section_deadline"]),
        }
    )


async def changes(request: web.Request) -> web.Response:
    # An unpaired surrogate in an answer is then refused as a bad change with
    # its seq, like a NUL, instead of the whole body as bad JSON.
    body, lone_surrogates = await read_json_lone_surrogates(request)
    token = bearer_hash(request)
    addr = client_addr(request, request.app[appkeys.SETTINGS].trusted_proxies)
    seen = Cache.of(request.app).seen
    me = seen.get(token)
    if me is not None and not lone_surrogates:
        rows = fast_rows(request, body, me, addr)
        if rows is not None:
            saved = await request.app[appkeys.SAVES].save(Save(me, token, rows, body["changes"], addr))
            if saved is not None:
                return _saved(request, me, saved)
        seen.pop(token, None)
    # The slow path. Its own save can find the attempt changed in between
    # (a proctor's pause, say): then it reads again.
    async with request.app[appkeys.POOL].acquire() as conn:
        for _ in range(3):
            me, rows = await _checked(request, conn, body, lone_surrogates)
            saved = await request.app[appkeys.SAVES].save(Save(me, token, rows, body["changes"], addr))
            if saved is not None:
                if len(seen) > MAX_SEEN:
                    seen.clear()  # all take the slow path once, then the worker knows them again
                seen[token] = me
                return _saved(request, me, saved)
    raise UserError(
        "save_contended", "the exam changed while saving: the page sends the change again by itself", status=503
    )


# The most of a refused batch kept in refused_changes, in characters.
MAX_REFUSED_RECORD = 100_000


def refused_record(rows: list, changes: list) -> str:
    """A refused batch as refused_changes keeps it: its checked changes (so
    jsonb can hold every value), as many as fit, and the digest of all of it."""
    kept, size = [], 0
    for seq, item, kind, value in rows:
        size += len(value) + len(item) + 50
        if size > MAX_REFUSED_RECORD:
            break
        kept.append({"seq": seq, "item": item, "kind": kind, "value": json.loads(value)})
    return json.dumps(
        {"changes": kept, "omitted": len(rows) - len(kept), **audit.batch_digest(changes)}, ensure_ascii=False
    )


async def _checked(request: web.Request, conn, body: dict, lone_surrogates: bool) -> tuple[dict, list]:
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
    rows = parse_changes(body, layout, lone_surrogates)
    late = now_utc() > me["deadline"] + dt.timedelta(seconds=me["grace_seconds"])
    section_closed = False
    if sequential(me):
        # Timed sections run one after another: only the current one takes answers.
        section_closed = any(r[2] == "answer" and layout[r[1]]["sec"] != me["section_index"] for r in rows)
    if me["attempt_status"] != "in_progress" or late or section_closed:
        reason = (
            "after_deadline"
            if late
            else "attempt_submitted"
            if me["attempt_status"] != "in_progress"
            else "section_closed"
        )
        await conn.execute(
            "INSERT INTO refused_changes (attempt_id, reason, body) VALUES ($1, $2, $3)",
            me["attempt_id"],
            reason,
            refused_record(rows, body["changes"]),
        )
        await audit.append(
            conn,
            me["exam_id"],
            f"candidate:{me['code']}",
            "refused_changes",
            {"reason": reason, **audit.batch_digest(body["changes"])},
            attempt_id=me["attempt_id"],
        )
        me = await close_if_expired(request, me, conn)
        if reason == "section_closed":
            raise Conflict(
                "section_closed",
                "that question's section is not open: changes were not saved",
                saved_seq=me["saved_seq"],
            )
        raise Conflict(
            "attempt_closed",
            "time is up: this attempt is closed and the change was not saved",
            saved_seq=me["saved_seq"],
            deadline=iso(me["deadline"]),
        )
    return me, rows
