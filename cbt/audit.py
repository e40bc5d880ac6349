"""The per-exam audit log: append-only and hash-chained.

Every event row holds hash = SHA-256(prev_hash || canonical JSON of
{exam_id, seq, at, actor, kind, attempt_id, content}), prev_hash being the
previous row's hash (32 zero bytes for seq 1). Canonical JSON: keys sorted,
separators (",", ":"), non-ASCII kept, UTF-8; `at` is ISO 8601 in UTC with
microseconds. Editing, deleting, inserting or reordering rows breaks the
chain at the first touched row, which `verify` names.

Appends from many worker processes serialise per exam on a transaction-level
advisory lock, so sequence numbers are gap-free and each row chains onto the
one before it.

The busiest events (every autosave batch, login, start) are not chained in
the request: holding the exam's lock inside every save transaction would let
only one save per exam commit at a time. They are written to audit_pending in
the same transaction as what they record (so none is lost), and `chain` seals
them into the chain in order, under the lock, many at a time: a background
task in every worker does so a few times a second, every synchronous `append`
does so first, and `verify`/`export` do so before reading.

A head (seq, hash) names the chain up to and including event seq: since each
hash covers the one before, no event at or before it can change without that
hash changing. Heads kept outside the database (signed, cbt/heads.py; and in
every receipt) let `verify` find a chain cut short or rewritten as a whole,
which recomputing the stored chain alone cannot.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import asyncpg
import orjson

from cbt.platform import appkeys, background

ZERO_HASH = bytes(32)

# The event kinds cbt writes. Others are refused, so a typo cannot slip in.
KINDS = frozenset(
    {
        "login",
        "start",
        "changes",
        "submit",
        "refused_changes",
        "policy_refused",
        "proctor_action",
        "exam_edit",
        "access_code_refused",
    }
)

# Advisory locks: the two-int form lives apart from the one-bigint keys used
# elsewhere (migrations); the first int says "audit chain of exam N".
_LOCK_NAMESPACE = 0x41554449  # "AUDI"
# How often each worker seals pending events into the chains.
CHAIN_SECONDS = 0.25


class AuditError(Exception):
    pass


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str = ""
    # How many heads kept outside the database the chain was checked against.
    heads: int = 0


@dataclass(frozen=True)
class Head:
    """The chain up to and including event seq, whose hash is `hash` (seq 0:
    the empty chain). seq None: only the hash is known (a hash published on
    its own), and the chain must hold an event with it."""

    seq: int | None
    hash: bytes
    # Where the head came from, to name it in a verdict ("receipt ABCDE-...").
    source: str = ""

    def __post_init__(self):
        if len(self.hash) != 32:
            raise AuditError("a chain head's hash is 32 bytes (64 hex digits)")
        if self.seq is not None and (self.seq < 0 or (self.seq == 0) != (self.hash == ZERO_HASH)):
            raise AuditError("a chain head's seq is a whole number from 0, and only seq 0 has the zero hash")


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def format_at(at: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds, e.g. 2025-06-01T07:30:00.000000+00:00."""
    if at.tzinfo is None:
        raise AuditError("audit times must be timezone-aware")
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def event_hash(
    prev_hash: bytes,
    *,
    exam_id: int,
    seq: int,
    at: dt.datetime | str,
    actor: str,
    kind: str,
    attempt_id: int | None,
    content,
) -> bytes:
    body = {
        "exam_id": exam_id,
        "seq": seq,
        "at": at if isinstance(at, str) else format_at(at),
        "actor": actor,
        "kind": kind,
        "attempt_id": attempt_id,
        "content": content,
    }
    return hashlib.sha256(bytes(prev_hash) + canonical_json(body)).digest()


def batch_digest(changes: list[dict]) -> dict:
    """The `changes` event content for one saved batch: how many changes,
    their first and last seq, and the SHA-256 of the batch's canonical JSON."""
    seqs = [c.get("seq") for c in changes if isinstance(c, dict) and isinstance(c.get("seq"), int)]
    return {
        "count": len(changes),
        "first_seq": min(seqs) if seqs else None,
        "last_seq": max(seqs) if seqs else None,
        "sha256": hashlib.sha256(canonical_json(changes)).hexdigest(),
    }


async def append(
    conn: asyncpg.Connection, exam_id: int, actor: str, kind: str, content: dict, attempt_id: int | None = None
) -> int:
    """Append one event to the exam's chain and return its seq.

    Runs inside the caller's transaction when there is one (a savepoint),
    so the event commits or rolls back with the change it records. Events
    still pending for the exam are chained first, so the chain keeps order."""
    text = content_text(kind, content)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_NAMESPACE, _lock_key(exam_id))
        prev_seq, prev, _ = await _chain_pending(conn, exam_id)
        # The content as PostgreSQL stores it (jsonb normalises numbers and
        # keys), so the hash is over exactly what verify will read back.
        row = await conn.fetchrow("SELECT $1::jsonb::text AS content, clock_timestamp() AS at", text)
        await _insert(conn, exam_id, prev_seq, prev, [(row["at"], actor, kind, attempt_id, row["content"])])
    return prev_seq + 1


async def append_later(
    conn: asyncpg.Connection, exam_id: int, actor: str, kind: str, content: dict, attempt_id: int | None = None
) -> None:
    """Record an event for the chain without waiting for the exam's lock.

    One INSERT in the caller's transaction; `chain` seals it within a second."""
    await conn.execute(
        """INSERT INTO audit_pending (exam_id, actor, kind, attempt_id, content)
           VALUES ($1, $2, $3, $4, $5::jsonb)""",
        exam_id,
        actor,
        kind,
        attempt_id,
        content_text(kind, content),
    )


async def chain(conn: asyncpg.Connection, exam_id: int, wait: bool = True) -> int:
    """Seal the exam's pending events into its chain; return how many.

    wait=False gives up at once if another process holds the exam's lock
    (it is chaining them already)."""
    async with conn.transaction():
        if wait:
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_NAMESPACE, _lock_key(exam_id))
        elif not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", _LOCK_NAMESPACE, _lock_key(exam_id)):
            return 0
        _, _, sealed = await _chain_pending(conn, exam_id)
    return sealed


async def _chain_pending(conn: asyncpg.Connection, exam_id: int) -> tuple[int, bytes, int]:
    """Under the exam's lock: move its pending events into the chain, oldest
    first; return the chain's last seq and hash, and how many were sealed."""
    last = await conn.fetchrow(
        "SELECT seq, hash FROM audit_events WHERE exam_id = $1 ORDER BY seq DESC LIMIT 1", exam_id
    )
    seq, prev = (last["seq"], bytes(last["hash"])) if last is not None else (0, ZERO_HASH)
    pending = await conn.fetch(
        """DELETE FROM audit_pending WHERE id IN (SELECT id FROM audit_pending WHERE exam_id = $1)
           RETURNING id, at, actor, kind, attempt_id, content::text AS content""",
        exam_id,
    )
    rows = [
        (p["at"], p["actor"], p["kind"], p["attempt_id"], p["content"]) for p in sorted(pending, key=lambda r: r["id"])
    ]
    if rows:
        prev = await _insert(conn, exam_id, seq, prev, rows)
    return seq + len(rows), prev, len(rows)


async def _insert(conn: asyncpg.Connection, exam_id: int, last_seq: int, prev: bytes, rows: list) -> bytes:
    """Chain rows of (at, actor, kind, attempt_id, content as stored jsonb text) after last_seq; return the
    last hash."""
    out = []
    for seq, (at, actor, kind, attempt_id, content) in enumerate(rows, start=last_seq + 1):
        digest = event_hash(
            prev,
            exam_id=exam_id,
            seq=seq,
            at=at,
            actor=actor,
            kind=kind,
            attempt_id=attempt_id,
            content=json.loads(content),
        )
        out.append((exam_id, seq, at, actor, kind, attempt_id, content, prev, digest))
        prev = digest
    # One statement for the whole batch, its rows as one JSON document: asyncpg
    # encodes arrays element by element, which cost more than the hashing.
    await conn.execute(
        """INSERT INTO audit_events (exam_id, seq, at, actor, kind, attempt_id, content, prev_hash, hash)
           SELECT $1, r.seq, r.at, r.actor, r.kind, r.attempt_id, r.content::jsonb, decode(r.prev_hash, 'hex'),
                  decode(r.hash, 'hex')
           FROM jsonb_to_recordset($2::jsonb) AS r(seq bigint, at timestamptz, actor text, kind text,
                                                   attempt_id bigint, content text, prev_hash text, hash text)""",
        exam_id,
        orjson.dumps(
            [
                {
                    "seq": seq,
                    "at": at.isoformat(),
                    "actor": actor,
                    "kind": kind,
                    "attempt_id": attempt_id,
                    "content": content,
                    "prev_hash": prev_hash.hex(),
                    "hash": digest.hex(),
                }
                for _, seq, at, actor, kind, attempt_id, content, prev_hash, digest in out
            ]
        ).decode(),
    )
    return prev


def content_text(kind: str, content: dict) -> str:
    """An event's content as the canonical JSON text stored and hashed (kind checked)."""
    if kind not in KINDS:
        raise AuditError(f"unknown audit event kind {kind!r}")
    if not isinstance(content, dict):
        raise AuditError("audit content must be a JSON object")
    return canonical_json(content).decode("utf-8")


async def chain_all(pool: asyncpg.Pool) -> int:
    """Chain every exam's pending events (skipping exams another process is chaining)."""
    sealed = 0
    async with pool.acquire() as conn:
        for exam_id in [r["exam_id"] for r in await conn.fetch("SELECT DISTINCT exam_id FROM audit_pending")]:
            sealed += await chain(conn, exam_id, wait=False)
    return sealed


# cleanup_ctx: every worker seals pending audit events a few times a second.
chainer_ctx = background.periodic(lambda app: chain_all(app[appkeys.POOL]), lambda app: CHAIN_SECONDS, "audit chaining")


def _lock_key(exam_id: int) -> int:
    # pg_advisory_xact_lock(int, int): fold a bigint id into the int4 range.
    return ((exam_id + 2**31) % 2**32) - 2**31


def check_chain(records: Iterable[dict], heads: Iterable[Head] = ()) -> VerifyResult:
    """Check records (dicts with the row's fields, hashes as bytes) in seq order,
    then that the chain reaches every head: the event at the head's seq is there
    and has the head's hash (for a hash-only head: some event has it)."""
    heads = list(heads)
    by_seq = {h.seq for h in heads if h.seq is not None}
    by_hash = {h.hash for h in heads if h.seq is None}
    seen: dict[int, bytes] = {0: ZERO_HASH}
    found: set[bytes] = set()
    expected_seq = 1
    prev = ZERO_HASH
    count = 0
    exam_id = None
    for r in records:
        count += 1
        seq = r["seq"]
        if exam_id is None:
            exam_id = r["exam_id"]
        if r["exam_id"] != exam_id:
            return VerifyResult(False, count, seq, f"row {seq} belongs to exam {r['exam_id']}, not {exam_id}")
        if seq != expected_seq:
            if seq > expected_seq:
                return VerifyResult(False, count, expected_seq, f"row {expected_seq} is missing (next row is {seq})")
            return VerifyResult(False, count, seq, f"row {seq} is out of order (expected {expected_seq})")
        if bytes(r["prev_hash"]) != prev:
            return VerifyResult(False, count, seq, f"row {seq} does not chain onto row {seq - 1}")
        digest = event_hash(
            prev,
            exam_id=r["exam_id"],
            seq=seq,
            at=r["at"],
            actor=r["actor"],
            kind=r["kind"],
            attempt_id=r["attempt_id"],
            content=r["content"],
        )
        if digest != bytes(r["hash"]):
            return VerifyResult(False, count, seq, f"row {seq} was altered: its content does not match its hash")
        if seq in by_seq:
            seen[seq] = digest
        if digest in by_hash:
            found.add(digest)
        prev = digest
        expected_seq += 1
    for h in heads:
        problem = _unreached(h, count, seen, found)
        if problem:
            return VerifyResult(False, count, h.seq, problem, len(heads))
    return VerifyResult(True, count, heads=len(heads))


def _unreached(h: Head, count: int, seen: dict[int, bytes], found: set[bytes]) -> str:
    """Why an intact chain of `count` events does not reach head h ('' if it does)."""
    named = f"{h.source}: " if h.source else ""
    if h.seq is None:
        if h.hash in found:
            return ""
        return (
            f"{named}no event has the published hash {h.hash.hex()}: the chain of {count} events was cut "
            "short or rewritten after that hash was published"
        )
    if h.seq > count:
        return (
            f"{named}the published head names event {h.seq}, but the chain ends at event {count}: "
            "events were removed from its end"
        )
    if seen[h.seq] != h.hash:
        return (
            f"{named}event {h.seq} has hash {seen[h.seq].hex()}, not the published {h.hash.hex()}: "
            "the chain was rewritten"
        )
    return ""


_SELECT = """SELECT exam_id, seq, at, actor, kind, attempt_id, content::text AS content, prev_hash, hash
             FROM audit_events WHERE exam_id = $1 ORDER BY seq"""


def _record(row) -> dict:
    r = dict(row)
    r["content"] = json.loads(r["content"])
    return r


async def _rows(conn: asyncpg.Connection, exam_id: int) -> AsyncIterator[dict]:
    async with (
        conn.transaction(readonly=True, isolation="repeatable_read")
        if not conn.is_in_transaction()
        else conn.transaction()
    ):
        async for row in conn.cursor(_SELECT, exam_id, prefetch=500):
            yield _record(row)


async def verify(conn: asyncpg.Connection, exam_id: int, heads: Iterable[Head] = ()) -> VerifyResult:
    """Recompute the exam's chain from the first row; name the first broken one,
    or the first head (kept outside the database) the chain does not reach."""
    await chain(conn, exam_id)
    records = [r async for r in _rows(conn, exam_id)]
    return check_chain(records, heads)


async def current_head(conn: asyncpg.Connection, exam_id: int) -> Head:
    """The exam's chain head now, after sealing its pending events."""
    await chain(conn, exam_id)
    row = await conn.fetchrow(
        "SELECT seq, hash FROM audit_events WHERE exam_id = $1 ORDER BY seq DESC LIMIT 1", exam_id
    )
    return Head(row["seq"], bytes(row["hash"])) if row is not None else Head(0, ZERO_HASH)


# By the attempt's index: a few hundred events at most (its saved batches).
_SUBMIT_EVENT = """SELECT seq, hash FROM audit_events WHERE attempt_id = $1 AND kind = 'submit'
                   ORDER BY seq LIMIT 1"""


async def submission_head(conn: asyncpg.Connection, exam_id: int, attempt_id: int) -> Head:
    """The chain up to and including the attempt's submit event, sealing it
    first if the chainer has not yet: the head a receipt may honestly claim."""
    row = await conn.fetchrow(_SUBMIT_EVENT, attempt_id)
    if row is None:
        # The event is committed (or in this transaction), so once the exam's
        # lock is ours, chaining seals it if no other process has.
        await chain(conn, exam_id)
        row = await conn.fetchrow(_SUBMIT_EVENT, attempt_id)
    if row is None:
        raise AuditError(f"attempt {attempt_id} has no submit event in the audit chain")
    return Head(row["seq"], bytes(row["hash"]))


async def export(conn: asyncpg.Connection, exam_id: int) -> AsyncIterator[str]:
    """The exam's events as JSON Lines (one line each, no newline), hashes in hex."""
    await chain(conn, exam_id)
    async for r in _rows(conn, exam_id):
        yield json.dumps(
            {
                "exam_id": r["exam_id"],
                "seq": r["seq"],
                "at": format_at(r["at"]),
                "actor": r["actor"],
                "kind": r["kind"],
                "attempt_id": r["attempt_id"],
                "content": r["content"],
                "prev_hash": bytes(r["prev_hash"]).hex(),
                "hash": bytes(r["hash"]).hex(),
            },
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )


def check_export(lines: Iterable[str], heads: Iterable[Head] = ()) -> VerifyResult:
    """Verify an exported JSON Lines file on its own, without the database
    (and against heads kept apart from it)."""

    def records():
        for line in lines:
            if not line.strip():
                continue
            r = json.loads(line)
            r["prev_hash"] = bytes.fromhex(r["prev_hash"])
            r["hash"] = bytes.fromhex(r["hash"])
            yield r

    return check_chain(records(), heads)


async def exam_id_of(conn: asyncpg.Connection, code: str) -> int:
    exam_id = await conn.fetchval("SELECT id FROM exams WHERE code = $1", code)
    if exam_id is None:
        raise AuditError(f"no exam {code!r}")
    return exam_id


# -- for the command line (cbt audit verify / export) ------------------------


async def verify_command(conn: asyncpg.Connection, code: str, out, heads: Iterable[Head] = ()) -> int:
    """Print the verdict; 0 when the chain is intact and reaches every head,
    1 (one line) naming the first broken row or the first head not reached."""
    heads = list(heads)
    result = await verify(conn, await exam_id_of(conn, code), heads)
    if result.ok:
        reached = ""
        if heads:
            latest = max((h.seq for h in heads if h.seq is not None), default=None)
            reached = f"; reaches all {len(heads)} heads kept outside the database" + (
                f" (the latest: event {latest})" if latest is not None else ""
            )
        print(f"audit log of {code} intact: {result.count} events{reached}", file=out)
        return 0
    if result.heads:
        print(f"audit log of {code} does NOT reach a published head: {result.reason}", file=out)
    else:
        print(f"audit log of {code} BROKEN at row {result.first_bad_seq}: {result.reason}", file=out)
    return 1


async def export_command(conn: asyncpg.Connection, code: str, out) -> int:
    async for line in export(conn, await exam_id_of(conn, code)):
        out.write(line + "\n")
    return 0
