"""Submission receipts signed with the server's Ed25519 key.

A receipt's payload is the canonical JSON of {v: 2, kind: "receipt", exam,
candidate, attempt, responses_sha256, submitted_at, kid, head}, head being
{seq, hash}: the exam's audit chain up to and including this submission's
event (cbt/audit.py), so every receipt a candidate keeps also anchors the
chain outside the database. Receipts issued before heads existed are v 1,
without kind and head, and still verify. The token a candidate keeps is
base64url(payload) "." base64url(signature), no padding; the short code
people read aloud is the first 20 base32 characters of SHA-256(payload),
grouped in fives. Anyone holding the token can check it on /receipt.

The same key signs the exams' chain heads (cbt/heads.py): their payload's
kind is "audit_head", so neither kind of token passes for the other.

The key lives in the server_keys table (not a file), so every worker on
every machine signs with the same one; the first use generates it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cbt import audit
from cbt.platform import appkeys, background

KEY_NAME = "receipt"
VERSION = 2
# Version 1: the receipts issued before they carried the chain head.
VERSIONS = frozenset({1, 2})
MAX_TOKEN_CHARS = 4096
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SHORT_CODE = re.compile(r"^[A-Z2-7]{5}(-[A-Z2-7]{5}){3}$")


class ReceiptError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Receipt:
    token: str
    short_code: str
    payload: dict


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def short_code_of(payload_bytes: bytes) -> str:
    code = base64.b32encode(hashlib.sha256(payload_bytes).digest()).decode("ascii")[:20]
    return "-".join(code[i : i + 5] for i in range(0, 20, 5))


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


async def server_key(conn: asyncpg.Connection) -> Ed25519PrivateKey:
    """The server's receipt key, generated on first use; concurrent workers agree on one."""
    pem = await conn.fetchval("SELECT private_pem FROM server_keys WHERE name = $1", KEY_NAME)
    if pem is None:
        fresh = (
            Ed25519PrivateKey.generate()
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            .decode("ascii")
        )
        await conn.execute(
            "INSERT INTO server_keys (name, private_pem) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            KEY_NAME,
            fresh,
        )
        pem = await conn.fetchval("SELECT private_pem FROM server_keys WHERE name = $1", KEY_NAME)
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ReceiptError("bad_key", "the stored receipt key is not an Ed25519 key")
    return key


async def public_keys(conn: asyncpg.Connection) -> list[Ed25519PublicKey]:
    return [(await server_key(conn)).public_key()]


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(private_key: Ed25519PrivateKey, payload: dict) -> Receipt:
    data = canonical(payload)
    return Receipt(_b64e(data) + "." + _b64e(private_key.sign(data)), short_code_of(data), payload)


def make_payload(
    exam_code: str,
    candidate_code: str,
    attempt_id: int,
    responses_sha256: str,
    submitted_at: dt.datetime,
    kid: str,
    head: audit.Head | None = None,
) -> dict:
    """A receipt's payload; without head, the version 1 payload (as issued
    before receipts carried the chain head)."""
    if not _SHA256_HEX.fullmatch(responses_sha256):
        raise ReceiptError("bad_hash", "responses_sha256 must be 64 lowercase hex digits")
    if submitted_at.tzinfo is None:
        raise ReceiptError("bad_time", "submitted_at must be timezone-aware")
    payload = {
        "v": 1,
        "exam": exam_code,
        "candidate": candidate_code,
        "attempt": attempt_id,
        "responses_sha256": responses_sha256,
        "submitted_at": submitted_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "kid": kid,
    }
    if head is not None:
        if head.seq is None or head.seq < 1:
            raise ReceiptError("bad_head", "a receipt's chain head names an event (seq 1 or more)")
        payload.update(v=VERSION, kind="receipt", head={"seq": head.seq, "hash": head.hash.hex()})
    return payload


def _stored(token: str) -> Receipt:
    data = _b64d(token.split(".")[0])
    return Receipt(token, short_code_of(data), json.loads(data))


async def issue(
    conn: asyncpg.Connection,
    exam_code: str,
    candidate_code: str,
    attempt_id: int,
    responses_sha256: str,
    submitted_at: dt.datetime,
    head: audit.Head | None = None,
) -> Receipt:
    """Sign and store the attempt's receipt; a second call returns the first receipt."""
    key = await server_key(conn)
    payload = make_payload(
        exam_code, candidate_code, attempt_id, responses_sha256, submitted_at, key_id(key.public_key()), head
    )
    receipt = sign(key, payload)
    await conn.execute(
        "INSERT INTO receipts (attempt_id, short_code, token) VALUES ($1, $2, $3) ON CONFLICT (attempt_id) DO NOTHING",
        attempt_id,
        receipt.short_code,
        receipt.token,
    )
    token = await conn.fetchval("SELECT token FROM receipts WHERE attempt_id = $1", attempt_id)
    if token != receipt.token:
        return _stored(token)
    return receipt


_SUBMITTED = """
SELECT a.exam_id, a.status, a.responses_sha256, a.submitted_at, e.code AS exam_code, c.code AS candidate_code,
       r.token
FROM attempts a JOIN exams e ON e.id = a.exam_id JOIN candidates c ON c.id = a.candidate_id
LEFT JOIN receipts r ON r.attempt_id = a.id WHERE a.id = $1
"""
# The receipt and the attempt's short code in one statement: one commit.
_STORE = """
WITH stored AS (
    INSERT INTO receipts (attempt_id, short_code, token) VALUES ($1, $2, $3)
    ON CONFLICT (attempt_id) DO NOTHING RETURNING short_code
)
UPDATE attempts SET receipt = stored.short_code FROM stored WHERE attempts.id = $1
"""


async def issue_for_attempt(conn: asyncpg.Connection, attempt_id: int) -> Receipt | None:
    """The submitted attempt's receipt, naming the chain up to its submit event;
    signed now if it has none yet (None: the attempt is not submitted).

    Called once the submission has committed, not inside its transaction: the
    receipt names the submit event's hash, which exists only once the event is
    sealed into the chain, and sealing takes the exam's chain lock, which the
    exam's other submissions must not wait for until this one commits.
    Idempotent, and two processes issuing at once store the same receipt: it is
    a deterministic (Ed25519) signature over what is already committed."""
    a = await conn.fetchrow(_SUBMITTED, attempt_id)
    if a is None:
        return None
    if a["token"] is not None:
        return _stored(a["token"])
    if a["status"] != "submitted":
        return None
    head = await audit.submission_head(conn, a["exam_id"], attempt_id)
    key = await server_key(conn)
    receipt = sign(
        key,
        make_payload(
            a["exam_code"],
            a["candidate_code"],
            attempt_id,
            a["responses_sha256"],
            a["submitted_at"],
            key_id(key.public_key()),
            head,
        ),
    )
    await conn.execute(_STORE, attempt_id, receipt.short_code, receipt.token)
    return receipt


# Submitted a while ago and still without a receipt: the worker stopped between
# the submission's commit and its receipt. Only open exams' attempts (by
# attempts_exam_idx), as only they can be submitted; no index covers the rest.
_UNRECEIPTED = """
SELECT a.id FROM exams e JOIN attempts a ON a.exam_id = e.id
WHERE e.status = 'open' AND a.status = 'submitted' AND a.receipt IS NULL
  AND a.submitted_at < now() - make_interval(secs => $1)
ORDER BY a.submitted_at LIMIT 100
"""
# Leave a submission this long to its own request before issuing for it.
REPAIR_AFTER_SECONDS = 10.0
# How often each worker looks: a stopped worker is rare, and the look reads
# every attempt of the open exams.
REPAIR_SECONDS = 60.0


async def issue_missing(pool: asyncpg.Pool) -> int:
    """Issue the receipts of submitted attempts that have none; return how many."""
    issued = 0
    async with pool.acquire() as conn:
        for row in await conn.fetch(_UNRECEIPTED, REPAIR_AFTER_SECONDS):
            issued += await issue_for_attempt(conn, row["id"]) is not None
    return issued


# cleanup_ctx: every worker issues missing receipts now and then (rarely any).
repair_ctx = background.periodic(
    lambda app: issue_missing(app[appkeys.POOL]), lambda app: REPAIR_SECONDS, "receipts repair"
)


def _as_public(k) -> Ed25519PublicKey:
    if isinstance(k, Ed25519PublicKey):
        return k
    if isinstance(k, Ed25519PrivateKey):
        return k.public_key()
    if isinstance(k, bytes) and len(k) == 32:
        return Ed25519PublicKey.from_public_bytes(k)
    loaded = serialization.load_pem_public_key(k.encode() if isinstance(k, str) else k)
    if not isinstance(loaded, Ed25519PublicKey):
        raise ReceiptError("bad_key", "not an Ed25519 public key")
    return loaded


def open_token(token: str, public_keys: Iterable) -> dict:
    """The payload of a token signed by one of the keys (a receipt or a chain
    head), else ReceiptError with code malformed (not a token at all),
    bad_signature (tampered, or signed by a key not given here) or bad_payload
    (signed but unreadable)."""
    if not isinstance(token, str):
        raise ReceiptError("malformed", "a receipt token is text")
    token = "".join(token.split())  # tolerate line breaks from copy and paste
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise ReceiptError("malformed", "this is not a receipt token")
    head, tail = token.split(".")
    try:
        data, signature = _b64d(head), _b64d(tail)
    except (ValueError, binascii.Error):
        raise ReceiptError("malformed", "this is not a receipt token") from None
    if len(signature) != 64 or not data:
        raise ReceiptError("malformed", "this is not a receipt token")
    for k in public_keys:
        try:
            _as_public(k).verify(signature, data)
            break
        except InvalidSignature:
            continue
    else:
        raise ReceiptError(
            "bad_signature", "the signature does not match: this receipt was altered or not issued by this server"
        )
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ReceiptError("bad_payload", "the receipt's content is unreadable") from None
    if not isinstance(payload, dict) or payload.get("v") not in VERSIONS:
        raise ReceiptError("bad_payload", "unknown receipt version")
    return payload


def unverified_payload(token: str) -> dict:
    """What a token says, signature unchecked ({} if unreadable): only to
    explain why a token was refused."""
    try:
        payload = json.loads(_b64d(token.split(".")[0]).decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def verify_token(token: str, public_keys: Iterable) -> dict:
    """The payload of a genuine receipt (see open_token for the error codes;
    not_a_receipt: a signed chain head)."""
    payload = open_token(token, public_keys)
    kind = payload.get("kind", "receipt" if payload["v"] == 1 else None)
    if kind == HEAD_KIND:
        raise ReceiptError(
            "not_a_receipt",
            "this is an exam's signed audit chain head, not a receipt: check it "
            "with `cbt audit verify EXAM --head TOKEN`",
        )
    if kind != "receipt" or (payload["v"] == VERSION and receipt_head(payload) is None):
        raise ReceiptError("bad_payload", "the receipt's content is unreadable")
    return payload


def receipt_head(payload: dict) -> audit.Head | None:
    """The chain head a receipt names (None: a version 1 receipt, or a head
    that is not {seq >= 1, hash of 64 hex digits})."""
    head = payload.get("head")
    if not isinstance(head, dict):
        return None
    seq, digest = head.get("seq"), head.get("hash")
    if (
        isinstance(seq, bool)
        or not isinstance(seq, int)
        or seq < 1
        or not isinstance(digest, str)
        or not _SHA256_HEX.fullmatch(digest)
    ):
        return None
    return audit.Head(seq, bytes.fromhex(digest), f"receipt {short_code_of(canonical(payload))}")


# -- signed chain heads (cbt/heads.py reads them) ------------------------------------

HEAD_KIND = "audit_head"


def sign_head(private_key: Ed25519PrivateKey, exam_code: str, head: audit.Head, signed_at: dt.datetime) -> str:
    """A token for the exam's chain head: {v, kind: audit_head, exam, seq, hash, signed_at, kid}."""
    if head.seq is None:
        raise ReceiptError("bad_head", "a signed head names its seq")
    return sign(
        private_key,
        {
            "v": VERSION,
            "kind": HEAD_KIND,
            "exam": exam_code,
            "seq": head.seq,
            "hash": head.hash.hex(),
            "signed_at": signed_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
            "kid": key_id(private_key.public_key()),
        },
    ).token


async def verify_any(conn: asyncpg.Connection, text: str) -> tuple[dict, str]:
    """Check a full token, or a short code the server issued; returns (payload, short code)."""
    text = text.strip()
    if _SHORT_CODE.fullmatch(text.upper()):
        token = await conn.fetchval("SELECT token FROM receipts WHERE short_code = $1", text.upper())
        if token is None:
            raise ReceiptError("unknown_code", "no receipt with this code was issued here")
        text = token
    payload = verify_token(text, await public_keys(conn))
    return payload, short_code_of(canonical(payload))


# -- for the command line (cbt receipt verify / public-key) ------------------


def print_payload(payload: dict, out) -> None:
    print(f"receipt valid: {short_code_of(canonical(payload))}", file=out)
    for name in ("exam", "candidate", "attempt", "submitted_at", "responses_sha256"):
        print(f"  {name}: {payload.get(name)}", file=out)
    head = receipt_head(payload)
    if head is not None:
        print(
            f"  audit chain head: event {head.seq}, hash {head.hash.hex()} (check it with "
            f"`cbt audit verify {payload.get('exam')} --head TOKEN`)",
            file=out,
        )
    else:
        print("  audit chain head: none (a receipt issued before receipts carried it)", file=out)


async def verify_command(conn: asyncpg.Connection | None, text: str, out, key_pem: str | None = None) -> int:
    """0 for a genuine receipt (printing what it says), 1 otherwise. With
    key_pem (a public key in PEM) it checks offline and conn may be None."""
    try:
        if key_pem is not None:
            payload = verify_token(text, [key_pem])
        else:
            payload, _ = await verify_any(conn, text)
    except ReceiptError as e:
        print(f"receipt INVALID ({e.code}): {e.message}", file=out)
        return 1
    print_payload(payload, out)
    return 0


async def public_key_command(conn: asyncpg.Connection, out) -> int:
    key = (await server_key(conn)).public_key()
    out.write(public_key_pem(key))
    return 0
