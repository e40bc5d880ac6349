"""The proctor console: a live view of the room and the proctor's actions.

Live updates work across worker processes: the candidate API sends
`pg_notify('cbt_exam', exam_id)` after starts, saves and submits (at most
twice a second per exam from each worker: notify.Notifier); each
worker keeps ONE listening connection (in cleanup_ctx) and wakes the
Server-Sent-Events streams of that exam's open consoles.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from cbt import accounts, audit, exams, lockdown, notify, submission, times
from cbt.platform import appkeys, jsonio
from cbt.platform.auth import require_user
from cbt.platform.clientaddr import client_addr
from cbt.platform.errors import NotFound, UserError
from cbt.platform.templating import language, render

log = logging.getLogger("cbt.proctor")
CHANNEL = "cbt_exam"
HEARTBEAT_SECONDS = 15
# The least time between two updates of a console while its exam changes.
# Each update re-reads the room. At 0.5 s, with a console open per room of 40
# and 5,000 students saving, PostgreSQL's CPU over a 5-minute run went from
# 122 to 177 s and the students' save p99 from 83 ms to 0.70 s (docs/design.md).
# A proctor's own action shows at once all the same: the page re-reads the room.
UPDATE_SECONDS = 2.0


class Hub:
    """Exam id -> the queues of the consoles watching it (in this process)."""

    def __init__(self) -> None:
        self.watchers: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self.closed = asyncio.Event()

    def wake(self, exam_id: str) -> None:
        for q in self.watchers.get(exam_id, ()):
            if q.empty():
                q.put_nowait(True)

    def close(self) -> None:
        """End every console's stream: the worker is stopping."""
        self.closed.set()
        for exam_id in list(self.watchers):
            self.wake(exam_id)


async def end_streams(app: web.Application) -> None:
    """on_shutdown: the open consoles' streams end at once, cleanly, and their
    browsers reconnect to another worker. Left open, each would hold the
    worker's shutdown for its whole timeout and then be cut mid-stream."""
    if appkeys.PROCTOR_HUB in app:
        app[appkeys.PROCTOR_HUB].close()


async def listener_ctx(app: web.Application):
    """cleanup_ctx: one LISTEN connection per worker, reconnecting if the database restarts."""
    hub = Hub()
    app[appkeys.PROCTOR_HUB] = hub

    def on_notify(conn, pid, channel, payload):
        hub.wake(payload)

    async def keep_listening():
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(app[appkeys.SETTINGS].database_url)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, on_notify)
                await lost.wait()
            except (OSError, asyncpg.PostgresError) as e:
                log.warning("proctor listener lost the database (%s); retrying", e)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(2)

    task = asyncio.create_task(keep_listening())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# -- data ------------------------------------------------------------------------

_STATE = """
SELECT c.id AS candidate_id, c.code, c.full_name, c.room, c.network_override, c.admitted_until,
       a.id AS attempt_id, a.status, a.deadline, a.paused_at, a.voided, a.last_seen, a.submitted_by,
       a.last_addr, a.addr_changes,
       (SELECT count(*) FROM audit_events ae WHERE ae.exam_id = c.exam_id AND ae.kind = 'policy_refused'
            AND ae.actor = 'candidate:' || c.code) AS policy_refusals,
       (SELECT count(*) FROM responses r WHERE r.attempt_id = a.id AND r.value IS NOT NULL
            AND r.value <> 'null'::jsonb) AS answered,
       (SELECT count(*) FROM jsonb_object_keys(a.layout)) AS total,
       (SELECT jsonb_object_agg(k.kind, k.n) FROM (SELECT i.kind, count(*) AS n FROM integrity_events i
            WHERE i.attempt_id = a.id GROUP BY i.kind) k) AS integrity_kinds,
       (SELECT o.dropped FROM integrity_overflow o WHERE o.attempt_id = a.id) AS integrity_dropped,
       (SELECT count(*) FROM device_requests d WHERE d.attempt_id = a.id AND d.resolved_at IS NULL)
            AS device_requests
FROM candidates c LEFT JOIN attempts a ON a.candidate_id = c.id
WHERE {where}
ORDER BY c.room, c.full_name
"""
# Two statements, not one with `$2 IS NULL OR c.room = $2`: a generic plan
# cannot use the room index (migration 014) for a condition that may be void.
_ROOM = _STATE.format(where="c.exam_id = $1 AND c.room = $2")
_EXAM = _STATE.format(where="c.exam_id = $1")


def _state_of(r) -> str:
    if r["attempt_id"] is None:
        return "not_started"
    if r["voided"]:
        return "voided"
    if r["status"] == "submitted":
        return "submitted"
    return "paused" if r["paused_at"] is not None else "in_progress"


async def room_state(conn, exam, room: str | None, zone: str = times.DEFAULT_ZONE) -> dict:
    """`zone`: the exam's time zone (times.exam_zone), in which the page shows times."""
    now = jsonio.now_utc()
    rows = await (conn.fetch(_ROOM, exam["id"], room) if room is not None else conn.fetch(_EXAM, exam["id"]))
    rooms = await conn.fetch(
        "SELECT room, access_code, rotated_at FROM exam_rooms WHERE exam_id = $1 ORDER BY room", exam["id"]
    )
    candidates = []
    for r in rows:
        kinds = json.loads(r["integrity_kinds"]) if r["integrity_kinds"] else {}
        left = None
        if r["attempt_id"] is not None and r["status"] == "in_progress":
            end = r["deadline"] + (now - r["paused_at"] if r["paused_at"] else dt.timedelta())
            left = max(0, int((end - now).total_seconds()))
        candidates.append(
            {
                "code": r["code"],
                "full_name": r["full_name"],
                "room": r["room"],
                "state": _state_of(r),
                "answered": r["answered"],
                "total": r["total"],
                "seconds_left": left,
                "last_seen": jsonio.iso(r["last_seen"]),
                # Until when a late admission lets a candidate who has not started in.
                "admitted_until": jsonio.iso(r["admitted_until"])
                if r["attempt_id"] is None and r["admitted_until"] is not None and r["admitted_until"] > now
                else None,
                # Past the caps of what is stored, events are only counted (delivery.integrity).
                "integrity_events": sum(kinds.values()) + (r["integrity_dropped"] or 0),
                "integrity_not_recorded": r["integrity_dropped"] or 0,
                # How many of each kind (lockdown.INTEGRITY_KINDS): leaving the page is not pasting.
                "integrity_kinds": kinds,
                "device_requests": r["device_requests"],
                "network_override": r["network_override"],
                "addr": r["last_addr"],
                "addr_changes": r["addr_changes"] or 0,
                # Network or Safe Exam Browser refusals (details in the audit chain).
                "policy_refusals": r["policy_refusals"],
            }
        )
    return {
        "exam": {"code": exam["code"], "title": exam["title"], "status": exam["status"]},
        "server_now": jsonio.iso(now),
        # The page formats times in the exam's zone (Intl.DateTimeFormat) and labels them with its offset.
        "time_zone": {"name": zone, "label": times.zone_label(zone, now)},
        "rooms": [
            {"room": r["room"], "access_code": r["access_code"]} for r in rooms if room is None or r["room"] == room
        ],
        "candidates": candidates,
    }


# -- handlers ----------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    staff = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        rows = await conn.fetch(
            "SELECT code, title, status, opens_at, closes_at, time_zone FROM exams "
            "WHERE org_id = ANY($1::bigint[]) AND status = 'open' ORDER BY opens_at",
            await accounts.visible_org_ids(conn, staff),
        )
    return render(request, "proctor/index.html", {"exams": rows})


async def room_page(request: web.Request) -> web.Response:
    staff = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await exams.visible_exam(conn, staff, request.match_info["code"])
    strings = {
        k[len("proctor.") :]: request.app[appkeys.CATALOGS].translate(language(request), k)
        for k in request.app[appkeys.CATALOGS].catalog("vi")
        if k.startswith("proctor.")
    }
    return render(
        request, "proctor/room.html", {"exam": exam, "strings": strings, "room": request.query.get("room", "")}
    )


def _zone(request: web.Request, exam) -> str:
    return times.exam_zone(exam, request.app[appkeys.SETTINGS].time_zone)


async def state(request: web.Request) -> web.Response:
    staff = require_user(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await exams.visible_exam(conn, staff, request.match_info["code"])
        body = await room_state(conn, exam, request.query.get("room") or None, _zone(request, exam))
    return jsonio.json_body(body)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: the room's state now, then again whenever it changes."""
    staff = require_user(request)
    pool = request.app[appkeys.POOL]
    room = request.query.get("room") or None
    async with pool.acquire() as conn:
        exam = await exams.visible_exam(conn, staff, request.match_info["code"])
    zone = _zone(request, exam)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    queue: asyncio.Queue = asyncio.Queue(maxsize=1)
    hub = request.app[appkeys.PROCTOR_HUB]
    hub.watchers[str(exam["id"])].add(queue)
    try:
        while not hub.closed.is_set():
            async with pool.acquire() as conn:
                body = await room_state(conn, exam, room, zone)
            await response.write(b"data: " + jsonio.json_bytes(body) + b"\n\n")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.closed.wait(), UPDATE_SECONDS)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.watchers[str(exam["id"])].discard(queue)
    return response


async def act(request: web.Request) -> web.Response:
    """One proctor action, confirmed in the page; recorded in proctor_actions."""
    staff = require_user(request)
    body = await jsonio.read_json(request)
    if _holds_nul(body):
        # Its text goes to the audit chain and proctor_actions, as jsonb, which cannot hold it.
        raise UserError("unstorable_text", "the text holds a NUL character, which cannot be saved: remove it")
    action = body.get("action")
    if action not in ACTIONS:
        raise UserError("bad_action", f"action must be one of {', '.join(ACTIONS)}")
    async with request.app[appkeys.POOL].acquire() as conn:
        exam = await exams.visible_exam(conn, staff, request.match_info["code"])
        async with conn.transaction():
            result = await _apply(
                request.app,
                conn,
                exam,
                staff,
                action,
                body,
                client_addr(request, request.app[appkeys.SETTINGS].trusted_proxies),
            )
        await notify.notify(conn, exam["id"])
    return jsonio.json_body({"ok": True, "action": action, **result})


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


async def _candidate(conn, exam, code) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT c.id, c.code, a.id AS attempt_id, a.status, a.paused_at FROM candidates c "
        "LEFT JOIN attempts a ON a.candidate_id = c.id WHERE c.exam_id = $1 AND c.code = $2",
        exam["id"],
        str(code),
    )
    if row is None:
        raise NotFound("unknown_candidate", f"no candidate {code!r} in this exam", candidate=str(code))
    return row


def _minutes(body) -> int:
    m = body.get("minutes")
    if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 600:
        raise UserError("bad_minutes", "minutes: a whole number from 1 to 600")
    return m


# Where a room's (or, without $2, the exam's) candidates were seen: signing
# in, saving, asking for their attempt from another computer.
_SEEN_AT = """
SELECT DISTINCT x.addr FROM candidates c
CROSS JOIN LATERAL (SELECT s.addr FROM candidate_sessions s WHERE s.candidate_id = c.id
                    UNION SELECT a.last_addr FROM attempts a WHERE a.candidate_id = c.id
                    UNION SELECT d.addr FROM attempts a JOIN device_requests d ON d.attempt_id = a.id
                    WHERE a.candidate_id = c.id) x
WHERE c.exam_id = $1 AND (c.room = $2 OR $2 IS NULL) AND x.addr <> ''
"""

_CLEAR_LOCKS = """
WITH cleared AS (
    DELETE FROM login_failures
    WHERE (scope IN ('ticket_addr', 'access_code_addr') AND key = ANY($1::text[]))
       OR (scope = 'access_code' AND key IN (SELECT c.id::text FROM candidates c
                                             WHERE c.exam_id = $2 AND (c.room = $3 OR $3 IS NULL)))
    RETURNING 1
)
SELECT count(*) FROM cleared
"""


async def clear_sign_in_lock(conn, exam, room: str | None, proctor_addr: str) -> dict:
    """Forget the wrong tickets and access codes counted against the addresses
    a room (or the exam) signs in from, and the proctor's own (in a lab behind
    one NAT, the same), and the access codes its candidates got wrong."""
    seen = [r["addr"] for r in await conn.fetch(_SEEN_AT, exam["id"], room)]
    addresses = sorted({*seen, proctor_addr} - {""})
    cleared = await conn.fetchval(_CLEAR_LOCKS, addresses, exam["id"], room)
    return {"addresses": addresses, "cleared": cleared}


@dataclass
class Act:
    """One proctor action as it is applied: what it acts on, and what it says back."""

    app: web.Application
    conn: asyncpg.Connection
    exam: asyncpg.Record
    body: dict
    addr: str  # the proctor's address
    cand: asyncpg.Record | None  # the candidate named, if any
    result: dict = field(default_factory=dict)


async def _admit(a: Act) -> None:
    # 15 minutes unless the proctor says otherwise; a malformed value is refused, as for extend.
    minutes = _minutes(a.body) if "minutes" in a.body else 15
    until = await a.conn.fetchval(
        "UPDATE candidates SET admitted_until = now() + make_interval(mins => $2) "
        "WHERE id = $1 RETURNING admitted_until",
        a.cand["id"],
        minutes,
    )
    # The page says until when, in the exam's time zone.
    a.result["admitted_until"] = jsonio.iso(until)


async def _pause(a: Act) -> None:
    await a.conn.execute(
        "UPDATE attempts SET paused_at = now() WHERE id = $1 AND status = 'in_progress' AND paused_at IS NULL",
        a.cand["attempt_id"],
    )


async def _resume(a: Act) -> None:
    # Time stops while paused: the deadline moves by exactly the paused time.
    await a.conn.execute(
        "UPDATE attempts SET deadline = deadline + (now() - paused_at), "
        "section_deadline = section_deadline + (now() - paused_at), paused_at = NULL "
        "WHERE id = $1 AND paused_at IS NOT NULL",
        a.cand["attempt_id"],
    )


async def _extend(a: Act) -> None:
    minutes = _minutes(a.body)
    if a.cand is not None:
        ids = [a.cand["attempt_id"]] if a.cand["attempt_id"] else []
    else:  # the whole room, e.g. after a power cut
        ids = [
            r[0]
            for r in await a.conn.fetch(
                "SELECT a.id FROM attempts a JOIN candidates c ON c.id = a.candidate_id "
                "WHERE c.exam_id = $1 AND c.room = $2 AND a.status = 'in_progress'",
                a.exam["id"],
                str(a.body.get("room")),
            )
        ]
    await a.conn.execute(
        "UPDATE attempts SET deadline = deadline + make_interval(mins => $2), "
        "section_deadline = section_deadline + make_interval(mins => $2) "
        "WHERE id = ANY($1::bigint[]) AND status = 'in_progress'",
        ids,
        minutes,
    )
    a.result["attempts"] = len(ids)


async def _unlock(a: Act) -> None:
    attempt_id = a.cand["attempt_id"]
    req = await a.conn.fetchrow(
        "SELECT id, device_hash FROM device_requests WHERE attempt_id = $1 "
        "AND resolved_at IS NULL ORDER BY requested_at DESC LIMIT 1",
        attempt_id,
    )
    if req is None:
        raise UserError("no_device_request", "no other computer has asked for this attempt")
    await a.conn.execute("UPDATE attempts SET device_hash = $2 WHERE id = $1", attempt_id, req["device_hash"])
    await a.conn.execute(
        "UPDATE device_requests SET resolved_at = now() WHERE attempt_id = $1 AND resolved_at IS NULL", attempt_id
    )


async def _allow_network(a: Act) -> None:
    await a.conn.execute("UPDATE candidates SET network_override = true WHERE id = $1", a.cand["id"])


async def _allow_without_seb(a: Act) -> None:
    await a.conn.execute("UPDATE candidates SET seb_override = true WHERE id = $1", a.cand["id"])


async def _terminate(a: Act) -> None:
    if a.cand["status"] != "submitted":
        await submission.finalize(a.app, a.conn, a.cand["attempt_id"], "proctor")


async def _void(a: Act) -> None:
    await _terminate(a)
    await a.conn.execute("UPDATE attempts SET voided = true WHERE id = $1", a.cand["attempt_id"])


async def _rotate_code(a: Act) -> None:
    a.result["access_code"] = await lockdown.rotate_code(a.conn, a.exam["id"], str(a.body.get("room")))


async def _clear_sign_in_lock(a: Act) -> None:
    room = a.body.get("room")
    a.result.update(await clear_sign_in_lock(a.conn, a.exam, str(room) if room else None, a.addr))


async def _note(a: Act) -> None:
    if not str(a.body.get("note", ""))[:2000].strip():
        raise UserError("empty_note", "write the note")


@dataclass(frozen=True)
class Action:
    apply: Callable[[Act], Awaitable[None]]
    # On the candidate the body names; when False, on a room or the whole exam unless one is named.
    per_candidate: bool = True
    # Only for a candidate who has started.
    needs_attempt: bool = False
    # What the record keeps besides the request: clear_sign_in_lock's addresses.
    records_result: bool = False


# Every proctor action, by the name the console sends.
ACTION_TABLE: dict[str, Action] = {
    "admit": Action(_admit),
    "pause": Action(_pause, needs_attempt=True),
    "resume": Action(_resume, needs_attempt=True),
    "extend": Action(_extend, per_candidate=False),
    "unlock": Action(_unlock, needs_attempt=True),
    "allow_network": Action(_allow_network),
    "allow_without_seb": Action(_allow_without_seb),
    "terminate": Action(_terminate, needs_attempt=True),
    "void": Action(_void, needs_attempt=True),
    "rotate_code": Action(_rotate_code, per_candidate=False),
    "clear_sign_in_lock": Action(_clear_sign_in_lock, per_candidate=False, records_result=True),
    "note": Action(_note, per_candidate=False),
}
ACTIONS = tuple(ACTION_TABLE)


async def _apply(app, conn, exam, staff: accounts.Staff, action: str, body: dict, addr: str) -> dict:
    """Apply one action of ACTION_TABLE; record it in the audit chain and proctor_actions."""
    spec = ACTION_TABLE[action]
    named = body.get("candidate")
    cand = await _candidate(conn, exam, named) if spec.per_candidate or named else None
    if spec.needs_attempt and (cand is None or cand["attempt_id"] is None):
        raise UserError("not_started", "this candidate has not started")
    act = Act(app, conn, exam, body, addr, cand)
    await spec.apply(act)
    detail = {k: v for k, v in body.items() if k != "action"}
    if spec.records_result:
        detail = {**detail, **act.result}
    await audit.append(
        conn,
        exam["id"],
        f"staff:{staff.username}",
        "proctor_action",
        {"action": action, **detail},
        attempt_id=cand["attempt_id"] if cand else None,
    )
    await conn.execute(
        "INSERT INTO proctor_actions (exam_id, candidate_id, staff_id, action, detail) VALUES ($1, $2, $3, $4, $5)",
        exam["id"],
        cand["id"] if cand else None,
        staff.id,
        action,
        json.dumps(detail, ensure_ascii=False, default=str),
    )
    return act.result
