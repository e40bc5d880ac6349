"""Submission receipts signed with the server's Ed25519 key.

A receipt's payload is the canonical JSON of {v, exam, candidate, attempt,
responses_sha256, submitted_at}. The token a candidate keeps is
base64url(payload) "." base64url(signature), no padding; the short code
people read aloud is the first 20 base32 characters of SHA-256(payload),
grouped in fives. Anyone holding the token can check it on /receipt.

The key lives in the server_keys table (not a file), so every worker on
every machine signs with the same one; the first use generates it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import segno
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cbt import keys
from cbt.templating import render

KEY_NAME = "receipt"
VERSION = 1
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
    return "-".join(code[i:i + 5] for i in range(0, 20, 5))


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


async def server_key(conn: asyncpg.Connection) -> Ed25519PrivateKey:
    """The server's receipt key, generated on first use; concurrent workers agree on one."""
    pem = await conn.fetchval("SELECT private_pem FROM server_keys WHERE name = $1", KEY_NAME)
    if pem is None:
        fresh = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
        ).decode("ascii")
        await conn.execute(
            "INSERT INTO server_keys (name, private_pem) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            KEY_NAME, fresh,
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


def make_payload(exam_code: str, candidate_code: str, attempt_id: int, responses_sha256: str,
                 submitted_at: dt.datetime, kid: str) -> dict:
    if not _SHA256_HEX.fullmatch(responses_sha256):
        raise ReceiptError("bad_hash", "responses_sha256 must be 64 lowercase hex digits")
    if submitted_at.tzinfo is None:
        raise ReceiptError("bad_time", "submitted_at must be timezone-aware")
    return {
        "v": VERSION,
        "exam": exam_code,
        "candidate": candidate_code,
        "attempt": attempt_id,
        "responses_sha256": responses_sha256,
        "submitted_at": submitted_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "kid": kid,
    }


async def issue(conn: asyncpg.Connection, exam_code: str, candidate_code: str, attempt_id: int,
                responses_sha256: str, submitted_at: dt.datetime) -> Receipt:
    """Sign and store the attempt's receipt; a second call returns the first receipt."""
    key = await server_key(conn)
    payload = make_payload(exam_code, candidate_code, attempt_id, responses_sha256, submitted_at,
                           key_id(key.public_key()))
    receipt = sign(key, payload)
    await conn.execute(
        "INSERT INTO receipts (attempt_id, short_code, token) VALUES ($1, $2, $3) ON CONFLICT (attempt_id) DO NOTHING",
        attempt_id, receipt.short_code, receipt.token,
    )
    token = await conn.fetchval("SELECT token FROM receipts WHERE attempt_id = $1", attempt_id)
    if token != receipt.token:
        return Receipt(token, short_code_of(_b64d(token.split(".")[0])), json.loads(_b64d(token.split(".")[0])))
    return receipt


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


def verify_token(token: str, public_keys: Iterable) -> dict:
    """The payload of a genuine token, else ReceiptError with code
    malformed (not a token at all), bad_signature (tampered, or signed by a
    key not given here) or bad_payload (signed but unreadable)."""
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
        raise ReceiptError("bad_signature", "the signature does not match: this receipt was altered or not issued "
                                            "by this server")
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ReceiptError("bad_payload", "the receipt's content is unreadable") from None
    if not isinstance(payload, dict) or payload.get("v") != VERSION:
        raise ReceiptError("bad_payload", "unknown receipt version")
    return payload


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


async def verify_page(request: web.Request) -> web.Response:
    """GET/POST /receipt: anyone holding a receipt can check it (GET ?token=... for a QR link)."""
    if request.method == "POST":
        form = await request.post()
        text = form.get("token", "")
        text = text if isinstance(text, str) else ""
    else:
        text = request.query.get("token", "")
    result = None
    if text.strip():
        async with request.app[keys.POOL].acquire() as conn:
            try:
                payload, short = await verify_any(conn, text)
                result = {"ok": True, "payload": payload, "short_code": short}
            except ReceiptError as e:
                result = {"ok": False, "code": e.code}
    return render(request, "receipt/verify.html", {"token": text, "result": result})


# -- for the command line (cbt receipt verify / public-key) ------------------


def print_payload(payload: dict, out) -> None:
    print(f"receipt valid: {short_code_of(canonical(payload))}", file=out)
    for name in ("exam", "candidate", "attempt", "submitted_at", "responses_sha256"):
        print(f"  {name}: {payload.get(name)}", file=out)


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


async def qr_svg(request: web.Request) -> web.Response:
    """GET /receipt/qr.svg?token=...: a QR code of the verification link, for the
    closing page (a phone can check the receipt later)."""
    from cbt.delivery import public_url  # delivery imports this module: import late

    token = request.query.get("token", "")
    if not token or len(token) > 2000:
        return web.json_response({"error": {"code": "bad_token", "message": "give the receipt token"}}, status=400)
    link = f"{public_url(request)}/receipt?token={urllib.parse.quote(token, safe='')}"
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return web.Response(body=out.getvalue(), content_type="image/svg+xml",
                        headers={"Cache-Control": "private, max-age=86400"})
