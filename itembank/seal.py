"""Sealed releases: a ``.cbtbank`` encrypted so schools can hold it before exam day.

The release is encrypted with AES-256-GCM under a fresh random key, which
the exam board reads out or publishes at the start of the exam. People
type that key in under pressure, so its text form is built to be typed:
Crockford base32 (no I, L, O, U; case and dashes ignored) in groups of
four, with three check bytes, so that a typo is reported as a typo rather
than as a wrong key.

Sealed file layout (all sizes in bytes)::

    magic "CBTSEAL" (7) | version 1 (1) | key id (16) | nonce (12)
    | AES-GCM ciphertext and tag | SHA-256 of everything before (32)

The header is authenticated as GCM associated data. The key id (a hash of
the key) tells "wrong key" apart from "damaged file", and the trailing
SHA-256 tells a damaged file apart from a wrong key before any decryption.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from itembank.archive import write_atomic
from itembank.errors import SealError

MAGIC = b"CBTSEAL"
VERSION = 1
KEY_BYTES = 32
CHECK_BYTES = 3
KEY_ID_BYTES = 16
NONCE_BYTES = 12
DIGEST_BYTES = 32
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + 1 + KEY_ID_BYTES + NONCE_BYTES

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
KEY_CHARS = (KEY_BYTES + CHECK_BYTES) * 8 // 5  # 56
GROUP = 4
_READS_AS = {"O": "0", "I": "1", "L": "1"}  # letters people type for digits


def seal(cbtbank: bytes) -> tuple[bytes, str]:
    """Encrypt a ``.cbtbank``; returns the sealed bytes and the key to print once."""
    if not cbtbank.startswith(b"PK\x03\x04"):
        raise SealError("not-a-cbtbank", "only a .cbtbank file (made by cbt bank pack) can be sealed")
    key = os.urandom(KEY_BYTES)
    nonce = os.urandom(NONCE_BYTES)
    header = MAGIC + bytes([VERSION]) + _key_id(key) + nonce
    body = header + AESGCM(key).encrypt(nonce, cbtbank, header)
    return body + hashlib.sha256(body).digest(), format_key(key)


def unseal(sealed: bytes, key_text: str) -> bytes:
    """Decrypt; raises SealError saying whether the key is mistyped, wrong,
    or the file damaged."""
    key = parse_key(key_text)
    if len(sealed) < HEADER_BYTES + TAG_BYTES + DIGEST_BYTES or not sealed.startswith(MAGIC):
        raise SealError("not-sealed", "this is not a sealed release (it does not start with CBTSEAL)")
    if sealed[len(MAGIC)] != VERSION:
        raise SealError(
            "unsupported-version",
            f"sealed with format version {sealed[len(MAGIC)]}, but this cbt reads version {VERSION}: update cbt",
        )
    body, digest = sealed[:-DIGEST_BYTES], sealed[-DIGEST_BYTES:]
    if not hmac.compare_digest(hashlib.sha256(body).digest(), digest):
        raise _damaged()
    header = body[:HEADER_BYTES]
    key_id = header[len(MAGIC) + 1 : len(MAGIC) + 1 + KEY_ID_BYTES]
    if not hmac.compare_digest(key_id, _key_id(key)):
        raise SealError(
            "wrong-key",
            "this key does not open this file: it was sealed with another key."
            " Check that the key is the one given for this exam and this file",
        )
    nonce = header[-NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, body[HEADER_BYTES:], header)
    except InvalidTag:
        raise _damaged() from None


def seal_file(source: Path, out: Path) -> str:
    """Seal ``source`` into ``out``; returns the key text."""
    sealed, key_text = seal(_read(source))
    write_atomic(out, sealed)
    return key_text


def unseal_file(source: Path, key_text: str, out: Path) -> None:
    """Unseal into ``out``. Nothing is written unless decryption fully succeeds."""
    write_atomic(out, unseal(_read(source), key_text))


def format_key(key: bytes) -> str:
    """32 key bytes + 3 check bytes as 56 base32 characters, dash every 4."""
    data = key + _check(key)
    number = int.from_bytes(data, "big")
    chars = [ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(KEY_CHARS))]
    text = "".join(chars)
    return "-".join(text[i : i + GROUP] for i in range(0, KEY_CHARS, GROUP))


def parse_key(text: str) -> bytes:
    """The key bytes from typed text; SealError("mistyped-key") says what is off."""
    compact = "".join(text.split()).replace("-", "").upper()
    compact = "".join(_READS_AS.get(c, c) for c in compact)
    for position, char in enumerate(compact, 1):
        if char not in ALPHABET:
            raise SealError(
                "mistyped-key",
                f"the key was mistyped: character {position} '{char}' never appears in keys"
                " (keys use digits and letters other than I, L, O, U)",
            )
    if len(compact) != KEY_CHARS:
        raise SealError(
            "mistyped-key",
            f"the key was mistyped: it has {len(compact)} characters, a key has {KEY_CHARS}"
            f" ({KEY_CHARS // GROUP} groups of {GROUP}); a group is missing or extra",
        )
    number = 0
    for char in compact:
        number = number * 32 + ALPHABET.index(char)
    data = number.to_bytes(KEY_BYTES + CHECK_BYTES, "big")
    key, check = data[:KEY_BYTES], data[KEY_BYTES:]
    if not hmac.compare_digest(check, _check(key)):
        raise SealError(
            "mistyped-key",
            "the key was mistyped: its check characters do not match;"
            " compare it again, group by group, with the key you were given",
        )
    return key


def _check(key: bytes) -> bytes:
    return hashlib.sha256(b"cbt-seal-key-check\0" + key).digest()[:CHECK_BYTES]


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"cbt-seal-key-id\0" + key).digest()[:KEY_ID_BYTES]


def _damaged() -> SealError:
    return SealError(
        "damaged",
        "the sealed file was changed or damaged: copy it again from the original",
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SealError("unreadable", f"{path}: cannot read ({e.strerror})") from None
