"""The candidate API (/api/v1): ticket login, start, state, sections, submit.

Candidates authenticate with a bearer token from ticket login (no cookie,
so no CSRF). Every request is resolved to the candidate's own attempt from
the token alone: an attempt id in a body must match it or is refused.
The server's clock is the only truth: every answer carries server_now and
the deadline. Answer changes are in autosave.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg
from aiohttp import web

from cbt import assembly, audit, lockdown, receipts, scoring, seb
from cbt.exams import spec_from_json
from cbt.notify import notify
from cbt.platform import appkeys
from cbt.platform.clientaddr import client_addr
from cbt.platform.errors import Conflict, Forbidden, NotFound, TooManyRequests, UserError
from cbt.platform.jsonio import iso, json_body, now_utc, read_json
from cbt.roster import normalise_ticket, ticket_hash
from cbt.submission import finalize

TOKEN_HOURS = 12


class Unauthorised(UserError):
    status = 401


# -- who is asking ------------------------------------------------------------------

# The candidate, exam and attempt behind a bearer token. _CANDIDATE is what
# pages and the API read; _CANDIDATE_LEAN, for autosave, leaves out the
# exam's spec and the attempt's layout (kilobytes a batch), which the worker
# keeps parsed: the layout is fixed when the attempt starts, the spec is known
# by the exams row's version (xmin). The row versions let autosave verify,
# inside its one statement, that what it checked against is still so
# (autosave.py, "the fast path"). Both are built from one column list, so a
# column added to one is in the other.
_COLUMNS = """
       c.id AS candidate_id, c.code, c.full_name, c.date_of_birth, c.class_name, c.school, c.room,
       c.time_multiplier, c.network_override, c.admitted_until, c.seb_override,
       e.id AS exam_id, e.code AS exam_code, e.title, e.subject, e.status AS exam_status,
       e.opens_at, e.closes_at, e.late_entry_until, e.duration_seconds, e.grace_seconds, e.show_score,
       a.id AS attempt_id, a.status AS attempt_status, a.deadline, a.saved_seq, a.section_index,
       a.section_deadline, a.submitted_at, a.score, a.max_score, a.provisional, a.receipt,
       a.device_hash, a.paused_at, a.voided,
       (SELECT r.token FROM receipts r WHERE r.attempt_id = a.id) AS receipt_token,
       s.token_hash, s.seb_verified_at"""
_FULL_COLUMNS = ", e.spec, a.layout"
_LEAN_COLUMNS = ", e.xmin::text AS spec_version, s.xmin::text AS session_version, c.xmin::text AS candidate_version"
_FROM = """
FROM candidate_sessions s
JOIN candidates c ON c.id = s.candidate_id
JOIN exams e ON e.id = c.exam_id
LEFT JOIN attempts a ON a.candidate_id = c.id
WHERE s.token_hash = $1 AND s.expires_at > now()
"""
_CANDIDATE = "SELECT" + _COLUMNS + _FULL_COLUMNS + _FROM
_CANDIDATE_LEAN = "SELECT" + _COLUMNS + _LEAN_COLUMNS + _FROM


def bearer_hash(request: web.Request) -> bytes:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorised("login_required", "sign in with your ticket first")
    return hashlib.sha256(header[7:].strip().encode()).digest()


async def _session_row(db, query: str, request: web.Request) -> asyncpg.Record:
    row = await db.fetchrow(query, bearer_hash(request))
    if row is None:
        raise Unauthorised("session_expired", "your sign-in has expired: sign in again with your ticket")
    return row


async def current_candidate(request: web.Request, conn=None) -> asyncpg.Record:
    return await _session_row(conn or request.app[appkeys.POOL], _CANDIDATE, request)


async def current_candidate_lean(request: web.Request, conn) -> tuple[dict, dict | None]:
    """current_candidate for the autosave path: (me, parsed layout or None before Start).

    `me` has every field of current_candidate but `layout`; its `spec` comes
    from this worker's cache."""
    me = dict(await _session_row(conn, _CANDIDATE_LEAN, request))
    cache = Cache.of(request.app)
    spec_key = (me["exam_id"], me["spec_version"])
    if spec_key not in cache.specs:
        if len(cache.specs) > 1000:
            cache.specs.clear()
        cache.specs[spec_key] = await conn.fetchval("SELECT spec FROM exams WHERE id = $1", me["exam_id"])
    me["spec"] = cache.specs[spec_key]
    layout = None
    if me["attempt_id"] is not None:
        # Kept as text (about 2 KB), parsed per batch: parsed, a layout is
        # some 13 KB of Python objects, too much for thousands of students.
        text = cache.layouts.get(me["attempt_id"])
        if text is None:
            if len(cache.layouts) > 50_000:
                cache.layouts.clear()
            text = cache.layouts[me["attempt_id"]] = await conn.fetchval(
                "SELECT layout FROM attempts WHERE id = $1", me["attempt_id"]
            )
        layout = json.loads(text)
    return me, layout


def attempt_layout(app: web.Application, attempt_id: int) -> dict | None:
    """The attempt's layout if this worker has it (from current_candidate_lean), else None."""
    text = Cache.of(app).layouts.get(attempt_id)
    return None if text is None else json.loads(text)


def attempt_id_matches(body: dict, me) -> bool:
    """An attempt id in a body, if any, is the caller's own."""
    sent = body.get("attempt_id")
    return sent is None or sent == me["attempt_id"]


def check_attempt_id(body: dict, me: asyncpg.Record) -> None:
    if not attempt_id_matches(body, me):
        raise Forbidden("not_your_attempt", "this attempt is not yours")


@functools.lru_cache(maxsize=256)
def _parsed_spec(text: str) -> dict:
    return json.loads(text)


def exam_spec(me) -> dict:
    """The exam's stored spec, parsed once per distinct text rather than on
    every autosave batch. Shared between requests: never mutate it."""
    return _parsed_spec(me["spec"])


def policies(me) -> dict:
    return exam_spec(me).get("policies") or dict(lockdown.DEFAULT_POLICIES)


def _network_ok(me, rules: dict, addr: str) -> bool:
    return bool(me["network_override"]) or lockdown.address_allowed(addr, rules, me["room"])


def _seb_refusal(request: web.Request, me, rules: dict):
    """The failed SEB check for this request, or None if SEB lets it through."""
    if me["seb_override"]:
        return None
    base = request.app[appkeys.SETTINGS].public_url
    if not base and (rules.get("seb") or {}).get("required"):
        return seb.SebCheck(False, "public_url_unset", {}, {})
    check = lockdown.check_seb(rules.get("seb"), base, request.raw_path, request.headers, me["exam_code"], me["title"])
    if check is None or check.ok:
        return None
    if (
        check.reason == "missing_headers"
        and (rules.get("seb") or {}).get("js_api", True)
        and me["seb_verified_at"] is not None
    ):
        return None  # this sign-in proved itself through SEB's JavaScript API
    return check


def _device_passes(request: web.Request, me, rules: dict) -> bool:
    """Is this request from the browser the attempt is bound to (or is the exam
    not one-device)? An attempt with no device bound passes nobody: the guard
    binds it first (see _check_device)."""
    if not rules.get("one_device", True):
        return True
    mine = lockdown.device_of(request)
    return mine is not None and mine == me["device_hash"]


def guard_passes(request: web.Request, me, addr: str) -> bool:
    """Would guard(write=True) let this request, from client address `addr`,
    through, by `me` as given? No side effects: for autosave's fast path,
    which verifies `me` in SQL."""
    rules = policies(me)
    return (
        _network_ok(me, rules, addr)
        and _seb_refusal(request, me, rules) is None
        and _device_passes(request, me, rules)
        and me["paused_at"] is None
    )


async def guard(request: web.Request, me, conn, *, write: bool) -> None:
    """The exam's policies for this request: network, SEB, device, pause.

    Reads (write=False) of a started attempt are held to its device as well:
    its answers are for the browser that sits it."""
    rules = policies(me)
    addr = client_addr(request, request.app[appkeys.SETTINGS].trusted_proxies)
    if not _network_ok(me, rules, addr):
        await audit.append(
            conn,
            me["exam_id"],
            f"candidate:{me['code']}",
            "policy_refused",
            {"policy": "network", "addr": addr},
            attempt_id=me["attempt_id"],
        )
        lockdown.check_network(addr, rules, me["room"], False)
    await _check_seb(request, me, conn, rules)
    if me["attempt_id"] is None:
        return
    await _check_device(request, me, conn, rules, addr, ask=write)
    if write and me["paused_at"] is not None and me["attempt_status"] == "in_progress":
        raise Conflict("paused", "your proctor has paused the exam: your time is stopped; wait")


async def _check_device(request: web.Request, me, conn, rules: dict, addr: str, *, ask: bool) -> None:
    """One device per attempt: refuse any browser but the attempt's. With `ask`,
    the refused browser's request to take the attempt over goes to the proctor."""
    if _device_passes(request, me, rules):
        return
    mine = lockdown.device_of(request)
    if me["device_hash"] is None and mine is not None:
        # Started with no device bound (before Start bound one always): the
        # first browser to come with its device cookie takes it.
        bound = await conn.fetchval(
            "UPDATE attempts SET device_hash = coalesce(device_hash, $2) WHERE id = $1 RETURNING device_hash",
            me["attempt_id"],
            mine,
        )
        if bound == mine:
            return
    if mine is None:
        # No device cookie: cookies are blocked, or were cleared since sign-in.
        # A new id goes out with the refusal; if the browser keeps it, the
        # proctor can move the attempt to it.
        mine = lockdown.ensure_device(request)
        refusal = Forbidden(
            "device_cookie_missing",
            "this browser did not send its exam cookie: allow cookies for this site, then ask your "
            "proctor to move the exam to this computer",
        )
    else:
        refusal = Forbidden("device_locked", "this exam is open on another computer: ask your proctor to move it here")
    if ask:
        await conn.execute(
            "INSERT INTO device_requests (attempt_id, device_hash, addr) VALUES ($1, $2, $3) "
            "ON CONFLICT (attempt_id, device_hash) DO UPDATE SET requested_at = now(), resolved_at = NULL",
            me["attempt_id"],
            mine,
            addr,
        )
        request.app[appkeys.NOTIFIER].soon(me["exam_id"])
    raise refusal


def seb_base_url(request: web.Request) -> str:
    """The address SEB's start and quit URLs and its hashes are built on:
    CBT_PUBLIC_URL only. Without it the Host header, which any client sets,
    would shape the .seb file and the URL every key hash covers."""
    configured = request.app[appkeys.SETTINGS].public_url
    if not configured:
        raise Conflict(
            "public_url_needed",
            "Safe Exam Browser needs this server's public address: the administrator sets "
            "CBT_PUBLIC_URL to the address students type (e.g. https://thi.truong.edu.vn) and restarts cbt",
        )
    return configured


async def _check_seb(request: web.Request, me, conn, rules: dict) -> None:
    check = _seb_refusal(request, me, rules)
    if check is None:
        return
    if check.reason == "public_url_unset":
        seb_base_url(request)  # refuses, saying what the administrator must set
    # Expected and received hashes go to the log and the audit chain, so an
    # administrator can see a proxy, http/https or key-list mismatch at once.
    logging.getLogger("cbt.seb").warning("seb refused", extra={"fields": check.log_fields()})
    await audit.append(
        conn,
        me["exam_id"],
        f"candidate:{me['code']}",
        "policy_refused",
        {"policy": "seb", **check.log_fields()},
        attempt_id=me["attempt_id"],
    )
    await notify(conn, me["exam_id"])
    raise Forbidden(
        "seb_required",
        "open this exam in Safe Exam Browser with the exam's configuration",
        reason=check.reason,
        config_url=f"{seb_base_url(request)}/exam/{me['exam_code']}/config.seb",
    )


async def seb_config(request: web.Request) -> web.Response:
    """The exam's .seb file (public: it holds only the start and quit addresses)."""
    base = seb_base_url(request)
    exam = await request.app[appkeys.POOL].fetchrow(
        "SELECT code, title, spec FROM exams WHERE code = $1", request.match_info["code"]
    )
    if exam is None:
        raise NotFound("unknown_exam", "no such exam")
    rules = (json.loads(exam["spec"]).get("policies") or {}).get("seb") or {}
    body = lockdown.seb_config_file(base, exam["code"], exam["title"], rules)
    return web.Response(
        body=body,
        content_type="application/seb",
        headers={"Content-Disposition": f'attachment; filename="{exam["code"]}.seb"'},
    )


# -- what the page is told --------------------------------------------------------------


def exam_summary(me: asyncpg.Record) -> dict:
    spec = exam_spec(me)
    return {
        "code": me["exam_code"],
        "title": me["title"],
        "subject": me["subject"],
        "duration_minutes": me["duration_seconds"] // 60,
        "time_allowed_minutes": float(Decimal(me["duration_seconds"]) * me["time_multiplier"] / 60),
        "opens_at": iso(me["opens_at"]),
        "closes_at": iso(me["closes_at"]),
        "late_entry_until": iso(me["late_entry_until"]),
        "instructions": spec.get("instructions", ""),
        "sections": [
            {
                "title": s["title"],
                "count": sum(r["count"] * (r.get("children") or 1) for r in s["rows"]),
                "time_limit_minutes": s["time_limit_minutes"],
            }
            for s in spec["blueprint"]["sections"]
        ],
        "show_score": me["show_score"],
        "access_code_required": bool((spec.get("policies") or {}).get("access_code")),
        "seb_required": bool(((spec.get("policies") or {}).get("seb") or {}).get("required")),
    }


def candidate_summary(me: asyncpg.Record) -> dict:
    return {
        "code": me["code"],
        "full_name": me["full_name"],
        "date_of_birth": me["date_of_birth"].isoformat(),
        "class_name": me["class_name"],
        "school": me["school"],
        "room": me["room"],
    }


def attempt_summary(me, now: dt.datetime) -> dict | None:
    if me["attempt_id"] is None:
        return None
    return {
        "id": me["attempt_id"],
        "status": me["attempt_status"],
        "deadline": iso(me["deadline"]),
        "section_index": me["section_index"],
        "section_deadline": iso(me["section_deadline"]),
        "saved_seq": me["saved_seq"],
        "server_now": iso(now),
        "paused": me["paused_at"] is not None,
        # The page stops its clock where the server's stopped: deadline - paused_at is the time left.
        "paused_at": iso(me["paused_at"]),
    }


def session_body(me: asyncpg.Record, token: str | None = None) -> dict:
    now = now_utc()
    body = {
        "server_now": iso(now),
        "candidate": candidate_summary(me),
        "exam": exam_summary(me),
        "attempt": attempt_summary(me, now),
    }
    if me["attempt_status"] == "submitted":
        body["result"] = result_body(me)
    if token:
        body["token"] = token
    return body


def result_body(me) -> dict:
    body = {"submitted_at": iso(me["submitted_at"]), "receipt": me["receipt"], "receipt_token": me["receipt_token"]}
    if me["show_score"] and me["score"] is not None:
        decimals = exam_spec(me).get("report_decimals", 2)
        body["score"] = {
            "total": str(scoring.round_half_up(me["score"], decimals)),
            "max": str(scoring.round_half_up(me["max_score"], decimals)),
            "provisional": me["provisional"],
        }
    return body


# -- handlers ---------------------------------------------------------------------------


# The session and its audit event in one statement: atomic, and one round
# trip instead of four (BEGIN, two inserts, COMMIT) when a room signs in at once.
_SIGN_IN = """
WITH session AS (
    INSERT INTO candidate_sessions (token_hash, candidate_id, expires_at, addr)
    VALUES ($1, $2, now() + $3::interval, $7)
)
INSERT INTO audit_pending (exam_id, actor, kind, content) VALUES ($4, $5, 'login', $6::jsonb)
"""


_TICKET = """
SELECT c.id, c.code, e.id AS exam_id, e.status, e.closes_at
FROM candidates c JOIN exams e ON e.id = c.exam_id
WHERE c.ticket_hash = $1
"""

# A ticket is 19 characters; longer text is not one, and is not normalised at length.
MAX_TICKET_LENGTH = 64

# Wrong tickets and access codes are counted in login_failures per (scope,
# key). For each (scope, key, most allowed) given, a row if it is locked now:
# when the lock ends, which is when the most-th latest failure leaves the
# window. Each key by its index, whatever the table's size (generic plans).
_LOCKED_UNTIL = """
SELECT k.i, l.until FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS k(scope, key, most, i)
CROSS JOIN LATERAL (SELECT f.failed_at + make_interval(mins => $4) AS until FROM login_failures f
                    WHERE f.scope = k.scope AND f.key = k.key AND f.failed_at > now() - make_interval(mins => $4)
                    ORDER BY f.failed_at DESC OFFSET k.most - 1 LIMIT 1) l
"""


async def locked_until(db, checks: list[tuple[str, str, int]], window_minutes: int) -> list[dt.datetime | None]:
    """For each (scope, key, failures allowed) in `checks`: when its lock ends, or None if not locked."""
    rows = await db.fetch(
        _LOCKED_UNTIL, [c[0] for c in checks], [c[1] for c in checks], [c[2] for c in checks], window_minutes
    )
    until = {r["i"]: r["until"] for r in rows}
    return [until.get(i) for i in range(1, len(checks) + 1)]


async def record_failures(db, failures: list[tuple[str, str]]) -> None:
    await db.execute(
        "INSERT INTO login_failures (scope, key) SELECT * FROM unnest($1::text[], $2::text[])",
        [f[0] for f in failures],
        [f[1] for f in failures],
    )
    # Keep the table small, as the staff sign-in does: a day-old failure no longer counts.
    await db.execute("DELETE FROM login_failures WHERE failed_at < now() - interval '1 day'")


def wait_details(until: dt.datetime) -> dict:
    """How long a lock has to run, for the refusal's message and the page."""
    seconds = max(1, int((until - now_utc()).total_seconds() + 0.999))
    return {"minutes": -(-seconds // 60), "retry_after": seconds}


async def login(request: web.Request) -> web.Response:
    body = await read_json(request)
    settings = request.app[appkeys.SETTINGS]
    sent = body.get("ticket")
    ticket = normalise_ticket(sent) if isinstance(sent, str) and len(sent) <= MAX_TICKET_LENGTH else ""
    pool = request.app[appkeys.POOL]
    addr = client_addr(request, settings.trusted_proxies)
    # Per address, with a limit a lab behind one NAT does not reach by typing
    # mistakes (a proctor can clear it: proctor.clear_sign_in_lock); per exact
    # ticket typed, by its hash: the typed text is never stored.
    typed = ticket_hash(ticket)
    by_addr, by_ticket = await locked_until(
        pool,
        [("ticket_addr", addr, settings.ticket_max_per_ip), ("ticket", typed.hex(), settings.ticket_max_per_ticket)],
        settings.login_window_minutes,
    )
    if by_addr:
        raise TooManyRequests(
            "sign_in_locked",
            "too many wrong tickets were typed on this network: ask your proctor to clear the sign-in lock, or wait",
            **wait_details(by_addr),
        )
    if by_ticket:
        raise TooManyRequests(
            "ticket_locked",
            "this ticket was typed wrong too many times: check it against your slip, or ask your proctor",
            **wait_details(by_ticket),
        )
    row = await pool.fetchrow(_TICKET, typed) if ticket else None
    if row is None:
        await record_failures(pool, [("ticket_addr", addr), ("ticket", typed.hex())])
        raise Unauthorised("bad_ticket", "this ticket is not valid: check each character, or ask your proctor")
    if row["status"] == "closed" or row["closes_at"] <= now_utc():
        raise Forbidden("exam_closed", "this exam has closed")
    token = secrets.token_urlsafe(32)
    await pool.execute(
        _SIGN_IN,
        hashlib.sha256(token.encode()).digest(),
        row["id"],
        dt.timedelta(hours=TOKEN_HOURS),
        row["exam_id"],
        f"candidate:{row['code']}",
        audit.content_text("login", {"addr": addr}),
        addr,
    )
    me = await current_candidate_by_token(request, token)
    # A device id for the one-device rule, if this browser has none yet.
    lockdown.ensure_device(request)
    return json_body(session_body(me, token))


async def current_candidate_by_token(request: web.Request, token: str) -> asyncpg.Record:
    return await request.app[appkeys.POOL].fetchrow(_CANDIDATE, hashlib.sha256(token.encode()).digest())


async def session(request: web.Request) -> web.Response:
    me = await current_candidate(request)
    me = await close_if_expired(request, me)
    return json_body(session_body(me))


@dataclass
class Cache:
    """Things read on hot paths: rendered items, parsed items, exam specs by
    (exam id, row version), attempts' layouts (fixed at Start, as text), and
    the candidates autosave last saw."""

    rendered: dict
    items: dict
    specs: dict = field(default_factory=dict)
    layouts: dict = field(default_factory=dict)
    # Autosave's fast path: bearer-token hash -> the candidate as last read
    # (current_candidate_lean); only ever trusted after verification in SQL.
    seen: dict = field(default_factory=dict)

    @classmethod
    def of(cls, app: web.Application) -> Cache:
        cache = app.get(appkeys.DELIVERY_CACHE)
        if cache is None:  # pragma: no cover - set in create_app
            raise RuntimeError("delivery cache missing")
        return cache


async def _rendered(conn, exam_id: int, pks: list[int], cache: dict) -> dict[int, dict]:
    missing = [pk for pk in pks if (exam_id, pk) not in cache]
    if missing:
        for r in await conn.fetch(
            "SELECT item_pk, type, rendered FROM exam_items WHERE exam_id = $1 AND item_pk = ANY($2::bigint[])",
            exam_id,
            missing,
        ):
            cache[(exam_id, r["item_pk"])] = (r["type"], json.loads(r["rendered"]))
    return {pk: cache[(exam_id, pk)] for pk in pks}


# The attempt and its audit event in one statement. ON CONFLICT: two Start
# presses at once create one attempt, and only its creator records "start".
_START = """
WITH started AS (
    INSERT INTO attempts (exam_id, candidate_id, started_at, deadline, section_deadline, layout, device_hash,
                          last_seen)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $3) ON CONFLICT (candidate_id) DO NOTHING
    RETURNING id
), audited AS (
    INSERT INTO audit_pending (exam_id, actor, kind, attempt_id, content)
    SELECT $1, $8, 'start', id, $9::jsonb FROM started
)
SELECT id FROM started
"""


async def start(request: web.Request) -> web.Response:
    """Start (or resume) the attempt: one read of the pre-drawn form, one insert."""
    body = await read_json(request) if request.can_read_body else {}
    pool = request.app[appkeys.POOL]
    cache = Cache.of(request.app)
    async with pool.acquire() as conn:
        me = await current_candidate(request, conn)
        check_attempt_id(body, me)
        await guard(request, me, conn, write=True)
        now = now_utc()
        created = None  # the attempt's id if this request creates it
        if me["attempt_id"] is None:
            if me["exam_status"] != "open":
                raise Forbidden(
                    "exam_not_open", "this exam is not open yet: wait for your proctor", opens_at=iso(me["opens_at"])
                )
            if now < me["opens_at"]:
                raise Forbidden("exam_not_open", "this exam has not started yet", opens_at=iso(me["opens_at"]))
            admitted = me["admitted_until"] is not None and now <= me["admitted_until"]
            if now > me["late_entry_until"] and not admitted:
                raise Forbidden("late_entry_closed", "the time to enter this exam has passed: ask your proctor")
            if lockdown.device_of(request) is None and policies(me).get("one_device", True):
                # The attempt is bound to the browser that starts it, so it needs
                # the device cookie (set at sign-in). Refused before the clock
                # starts, with a new cookie: the page presses Start once more.
                lockdown.ensure_device(request)
                raise Forbidden(
                    "device_cookie_missing",
                    "this browser did not send its exam cookie: allow cookies for this site and press Start again",
                )
            if policies(me).get("access_code"):
                await _check_access_code(request, conn, me, body)
        form_row = await conn.fetchrow("SELECT form FROM candidate_forms WHERE candidate_id = $1", me["candidate_id"])
        if form_row is None:
            raise NotFound("no_form", "there is no form for you yet: ask your proctor")
        form = assembly.form_from_json(json.loads(form_row["form"]))
        pks = [fi.pk for s in form.sections for fi in s.items]
        rendered = await _rendered(conn, me["exam_id"], pks, cache.rendered)
        payload, layout = assembly.build_form_payload(form, rendered)
        if me["attempt_id"] is None and policies(me).get("admission"):
            # A whole province pressing Start at once waits in line; each
            # candidate's time starts when they are admitted, not when they clicked.
            async with conn.transaction():
                admitted, place, wait = await lockdown.admit(
                    conn, me["exam_id"], me["candidate_id"], policies(me)["admission"]
                )
            if not admitted:
                raise TooManyRequests(
                    "admission_wait",
                    "many candidates are starting: you are in line",
                    place=place,
                    retry_after=round(wait, 1),
                )
            now = now_utc()
        if me["attempt_id"] is None:
            allowed = dt.timedelta(seconds=float(Decimal(me["duration_seconds"]) * me["time_multiplier"]))
            deadline = min(now + allowed, me["closes_at"])
            first = form.sections[0]
            section_deadline = (
                min(now + dt.timedelta(minutes=float(first.time_limit_minutes * me["time_multiplier"])), deadline)
                if first.time_limit_minutes
                else None
            )
            created = await conn.fetchval(
                _START,
                me["exam_id"],
                me["candidate_id"],
                now,
                deadline,
                section_deadline,
                json.dumps(layout),
                lockdown.ensure_device(request),
                f"candidate:{me['code']}",
                audit.content_text("start", {"deadline": iso(deadline)}),
            )
            me = await current_candidate(request, conn)
            request.app[appkeys.NOTIFIER].soon(me["exam_id"])
        me = await close_if_expired(request, me, conn)
        # An attempt created just now has no answers yet: no need to ask.
        answers = {} if created is not None and me["attempt_id"] == created else await _answers(conn, me["attempt_id"])
    result = session_body(me)
    result["form"] = payload
    result["answers"] = answers
    return json_body(result)


async def _check_access_code(request: web.Request, conn, me, body: dict) -> None:
    """The room's access code, with wrong codes limited per candidate and per
    address (a lab behind one NAT shares one: a much higher limit) and each
    recorded in the audit chain."""
    settings = request.app[appkeys.SETTINGS]
    addr = client_addr(request, settings.trusted_proxies)
    window = settings.login_window_minutes
    scopes = [
        ("access_code", str(me["candidate_id"]), settings.access_code_max_per_candidate),
        ("access_code_addr", addr, settings.access_code_max_per_ip),
    ]
    locked = [u for u in await locked_until(conn, scopes, window) if u is not None]
    if locked:
        # Not audited one by one: the wrong code that began the lock was, and
        # a script kept waiting would otherwise write the chain without end.
        raise TooManyRequests(
            "access_code_locked",
            "too many wrong access codes: wait, or ask your proctor to clear the lock",
            **wait_details(max(locked)),
        )
    code = await conn.fetchval(
        "SELECT access_code FROM exam_rooms WHERE exam_id = $1 AND room = $2", me["exam_id"], me["room"]
    )
    sent = body.get("access_code")
    sent = sent.strip().upper() if isinstance(sent, str) else ""
    if not sent:
        raise Forbidden("bad_access_code", "enter the access code your proctor reads out in the room")
    # As bytes: compare_digest refuses str with non-ASCII characters, which a Vietnamese keyboard types.
    if code and hmac.compare_digest(sent.encode(), code.encode()):
        return
    async with conn.transaction():
        await record_failures(conn, [(scope, key) for scope, key, _ in scopes])
        failures = await conn.fetchval(
            "SELECT count(*) FROM login_failures WHERE scope = 'access_code' AND key = $1 "
            "AND failed_at > now() - make_interval(mins => $2)",
            scopes[0][1],
            window,
        )
        left = max(0, settings.access_code_max_per_candidate - failures)
        await audit.append_later(
            conn,
            me["exam_id"],
            f"candidate:{me['code']}",
            "access_code_refused",
            {"addr": addr, "failures": failures, "locked": left == 0},
        )
    request.app[appkeys.NOTIFIER].soon(me["exam_id"])
    raise Forbidden(
        "bad_access_code", "that access code is not right: enter the code your proctor reads out", tries_left=left
    )


async def _answers(conn, attempt_id: int) -> dict:
    rows = await conn.fetch("SELECT item_ref, value, flagged FROM responses WHERE attempt_id = $1", attempt_id)
    return {
        r["item_ref"]: {"value": json.loads(r["value"]) if r["value"] is not None else None, "flagged": r["flagged"]}
        for r in rows
    }


async def state(request: web.Request) -> web.Response:
    async with request.app[appkeys.POOL].acquire() as conn:
        me = await current_candidate(request, conn)
        if me["attempt_id"] is None:
            raise Conflict("not_started", "this attempt has not started: press Start")
        await guard(request, me, conn, write=False)
        me = await close_if_expired(request, me, conn)
        body = session_body(me)
        body["answers"] = await _answers(conn, me["attempt_id"])
    return json_body(body)


async def next_section(request: web.Request) -> web.Response:
    """Close the current timed section and open the next (it cannot be reopened)."""
    body = await read_json(request)
    async with request.app[appkeys.POOL].acquire() as conn:
        me = await current_candidate(request, conn)
        check_attempt_id(body, me)
        await guard(request, me, conn, write=True)
        me = await close_if_expired(request, me, conn)
        if me["attempt_status"] != "in_progress":
            raise Conflict("attempt_closed", "this attempt is already submitted")
        sent = body.get("from_section")
        if isinstance(sent, bool) or not isinstance(sent, int):
            raise UserError("bad_section", "from_section: the number of the section you are in (0 for the first)")
        if sent != me["section_index"]:
            # Idempotent: the page retries after a network drop; only the first moves on.
            return json_body(session_body(me))
        spec = spec_from_json(exam_spec(me))
        sections = spec.blueprint.sections
        if me["section_index"] + 1 >= len(sections):
            raise Conflict("last_section", "this is the last section: submit instead")
        nxt = sections[me["section_index"] + 1]
        now = now_utc()
        limit = (
            min(now + dt.timedelta(minutes=float(nxt.time_limit_minutes * me["time_multiplier"])), me["deadline"])
            if nxt.time_limit_minutes
            else None
        )
        await conn.execute(
            "UPDATE attempts SET section_index = section_index + 1, section_deadline = $2 "
            "WHERE id = $1 AND section_index = $3",
            me["attempt_id"],
            limit,
            me["section_index"],
        )
        me = await current_candidate(request, conn)
    return json_body(session_body(me))


async def submit(request: web.Request) -> web.Response:
    body = await read_json(request) if request.can_read_body else {}
    async with request.app[appkeys.POOL].acquire() as conn:
        me = await current_candidate(request, conn)
        check_attempt_id(body, me)
        if me["attempt_id"] is None:
            raise Conflict("not_started", "this attempt has not started")
        if me["attempt_status"] != "submitted":
            await guard(request, me, conn, write=True)
            await finalize(request.app, conn, me["attempt_id"], "candidate")
            request.app[appkeys.NOTIFIER].soon(me["exam_id"])
        elif me["receipt_token"] is None:
            # The worker that took the submission stopped before signing its receipt.
            await receipts.issue_for_attempt(conn, me["attempt_id"])
        me = await current_candidate(request, conn)
    result = session_body(me)
    return json_body(result)


# -- closing and scoring ------------------------------------------------------------------


def sequential(me) -> bool:
    """Does the exam run timed sections one after another?"""
    return any(s["time_limit_minutes"] for s in exam_spec(me)["blueprint"]["sections"])


async def _advance_expired_section(conn, me) -> bool:
    """A timed section whose time (and grace) is over closes; the next one opens."""
    if (
        me["attempt_status"] != "in_progress"
        or me["section_deadline"] is None
        or me["paused_at"] is not None
        or now_utc() <= me["section_deadline"] + dt.timedelta(seconds=me["grace_seconds"])
    ):
        return False
    sections = exam_spec(me)["blueprint"]["sections"]
    if me["section_index"] + 1 >= len(sections):
        return False  # the last section ends with the attempt
    nxt = sections[me["section_index"] + 1]
    limit = None
    if nxt["time_limit_minutes"]:
        # The next section's clock starts when the previous one ended.
        limit = min(
            me["section_deadline"] + dt.timedelta(minutes=float(nxt["time_limit_minutes"] * me["time_multiplier"])),
            me["deadline"],
        )
    await conn.execute(
        "UPDATE attempts SET section_index = section_index + 1, section_deadline = $2 "
        "WHERE id = $1 AND section_index = $3",
        me["attempt_id"],
        limit,
        me["section_index"],
    )
    return True


async def close_if_expired(request: web.Request, me, conn=None):
    """An attempt past its deadline and grace is submitted by the deadline;
    a timed section past its time moves on to the next."""
    if conn is not None and me["attempt_id"] is not None and await _advance_expired_section(conn, me):
        me = await current_candidate(request, conn)
    if (
        me["attempt_id"] is not None
        and me["attempt_status"] == "in_progress"
        and me["paused_at"] is None
        and now_utc() > me["deadline"] + dt.timedelta(seconds=me["grace_seconds"])
    ):
        if conn is None:
            async with request.app[appkeys.POOL].acquire() as c:
                await finalize(request.app, c, me["attempt_id"], "deadline")
                return await current_candidate(request, c)
        await finalize(request.app, conn, me["attempt_id"], "deadline")
        return await current_candidate(request, conn)
    return me


async def integrity(request: web.Request) -> web.Response:
    """Page-integrity events (left the page, left fullscreen, copy/paste, a second tab).

    Recorded and shown to the proctor; the exam decides whether they only
    count, warn the student, or pause the attempt after N of them. Past the
    caps (lockdown.INTEGRITY_MAX_*) events are counted, not stored: the
    proctor sees how many were not recorded, and the page gets 200 all the same."""
    body = await read_json(request)
    events = body.get("events")
    if not isinstance(events, list) or not 0 < len(events) <= 50:
        raise UserError("bad_events", "send events: a list of 1 to 50 {kind}")
    kinds = [e.get("kind") if isinstance(e, dict) else None for e in events]
    if any(k not in lockdown.INTEGRITY_KINDS for k in kinds):
        raise UserError("bad_events", f"kind must be one of {', '.join(lockdown.INTEGRITY_KINDS)}")
    async with request.app[appkeys.POOL].acquire() as conn:
        me = await current_candidate(request, conn)
        if me["attempt_id"] is None or me["attempt_status"] != "in_progress":
            return json_body({"recorded": 0, "action": "none"})
        await guard(request, me, conn, write=False)
        rule = policies(me).get("integrity") or {"action": "count", "pause_after": 3}
        attempt_id = me["attempt_id"]
        async with conn.transaction():
            # The upsert locks the attempt's overflow row: two reports at once
            # cannot both take the last places under the caps.
            dropped_before = await conn.fetchval(
                "INSERT INTO integrity_overflow AS o (attempt_id) VALUES ($1) ON CONFLICT (attempt_id) "
                "DO UPDATE SET dropped = o.dropped RETURNING dropped",
                attempt_id,
            )
            stored, last_minute = await conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE at > now() - interval '1 minute') FROM integrity_events "
                "WHERE attempt_id = $1",
                attempt_id,
            )
            places = max(
                0, min(lockdown.INTEGRITY_MAX_PER_ATTEMPT - stored, lockdown.INTEGRITY_MAX_PER_MINUTE - last_minute)
            )
            kept, dropped = kinds[:places], len(kinds[places:])
            if kept:
                await conn.executemany(
                    "INSERT INTO integrity_events (attempt_id, kind) VALUES ($1, $2)", [(attempt_id, k) for k in kept]
                )
            if dropped:
                await conn.execute(
                    "UPDATE integrity_overflow SET dropped = dropped + $2, last_dropped_at = now() "
                    "WHERE attempt_id = $1",
                    attempt_id,
                    dropped,
                )
            total = stored + len(kept) + dropped_before + dropped
            action = rule["action"]
            if action == "pause" and total >= rule["pause_after"]:
                await conn.execute(
                    "UPDATE attempts SET paused_at = now() WHERE id = $1 AND paused_at IS NULL", attempt_id
                )
    request.app[appkeys.NOTIFIER].soon(me["exam_id"])
    return json_body(
        {
            "recorded": len(kept),
            "not_recorded": dropped,
            "total": total,
            "action": action if action != "count" else "none",
        }
    )


# -- Safe Exam Browser's JavaScript-API path ----------------------------------------------

# Sign-ins, not attempts, are what these check: like /session they serve a
# second browser too, which must sign in to ask its proctor to move the exam.

MAX_SEB_NONCES = 5
_NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


async def seb_nonce(request: web.Request) -> web.Response:
    """A single-use nonce and the exam page URL that carries it: SEB computes its
    keys over that exact URL, so a hash seen once cannot be replayed."""
    async with request.app[appkeys.POOL].acquire() as conn:
        me = await current_candidate(request, conn)
        nonce = seb.new_nonce()
        page = seb.with_nonce("/exam", nonce)
        await conn.execute(
            "DELETE FROM seb_nonces WHERE issued_at < now() - make_interval(secs => $1)", seb.NONCE_TTL_SECONDS
        )
        # A page needs one at a time; a script asking without end keeps only the latest few.
        await conn.execute(
            "DELETE FROM seb_nonces WHERE candidate_id = $1 AND nonce NOT IN "
            "(SELECT nonce FROM seb_nonces WHERE candidate_id = $1 ORDER BY issued_at DESC LIMIT $2)",
            me["candidate_id"],
            MAX_SEB_NONCES - 1,
        )
        await conn.execute(
            "INSERT INTO seb_nonces (nonce, candidate_id, path) VALUES ($1, $2, $3)", nonce, me["candidate_id"], page
        )
    return json_body({"nonce": nonce, "page": page})


def _seb_key_hash(value) -> str | None:
    """A key hash as SafeExamBrowser.security gives it (64 hex digits), or None:
    anything else cannot match, and must not reach the audit chain as it came."""
    return value if isinstance(value, str) and _HEX64.fullmatch(value) else None


async def seb_js_check(request: web.Request) -> web.Response:
    body = await read_json(request)
    nonce = body.get("nonce")
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise Forbidden("seb_nonce", "this check has expired or was used: reload the page")
    async with request.app[appkeys.POOL].acquire() as conn:
        me = await current_candidate(request, conn)
        rules = policies(me).get("seb") or {}
        # Consumed whether or not the check passes: a nonce is good once.
        row = await conn.fetchrow(
            "DELETE FROM seb_nonces WHERE nonce = $1 AND candidate_id = $2 "
            "AND issued_at > now() - make_interval(secs => $3) RETURNING path",
            nonce,
            me["candidate_id"],
            seb.NONCE_TTL_SECONDS,
        )
        if row is None:
            raise Forbidden("seb_nonce", "this check has expired or was used: reload the page")
        base = seb_base_url(request)
        config_keys = list(rules.get("config_keys") or [])
        if rules.get("serve_config", True):
            config_keys.append(
                seb.config_key_for_file(lockdown.seb_config_file(base, me["exam_code"], me["title"], rules))
            )
        check = seb.check_js_keys(
            seb.absolute_url(base, row["path"]),
            _seb_key_hash(body.get("config_key")),
            _seb_key_hash(body.get("browser_exam_key")),
            nonce,
            config_keys,
            list(rules.get("browser_exam_keys") or []),
        )
        if not check.ok:
            await audit.append(
                conn,
                me["exam_id"],
                f"candidate:{me['code']}",
                "policy_refused",
                {"policy": "seb_js", **check.log_fields()},
                attempt_id=me["attempt_id"],
            )
            raise Forbidden("seb_required", "Safe Exam Browser's keys did not match this exam", reason=check.reason)
        await conn.execute(
            "UPDATE candidate_sessions SET seb_verified_at = now() WHERE token_hash = $1", me["token_hash"]
        )
    return json_body({"ok": True})
