"""Signed chain heads: the exam's audit chain anchored outside the database.

Recomputing the chain stored in the database (`cbt audit verify`) finds an
edited, deleted or reordered event, but not events cut off the chain's end,
nor a chain rewritten whole and consistently: both leave a chain that
recomputes. A head (audit.Head: an event's seq and hash) kept where the
database's writers cannot reach it catches both, for every event at or
before it: the chain must still hold that event with that hash, and the hash
covers every event before it. Heads leave the database

- signed with the server's receipt key (receipts.sign_head) on the results
  page, in the results and item-analysis exports, and from `cbt audit head`;
- in every receipt, naming the chain up to that candidate's submission.

`cbt audit verify EXAM --head ...` checks the chain against any number of
them. A head is given as a signed head token, a receipt token, a hash alone
(64 hex digits: some event must have it), SEQ:HASH, or a file of them: every
token in the file (so a head file, a list of receipts, or an exported
results.csv), and every line that is a hash or SEQ:HASH.

The head file (`cbt audit head EXAM -o FILE`) is the token with what it says
in comment lines, for people:

    # Signed audit chain head of exam TOAN-T
    # event: 1234
    # hash: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    # signed at: 2025-06-26T09:00:00+00:00 with receipt key 1f0e33a2b8c94d5e
    eyJ2IjoyLC...In0.dGhlIHNpZ25hdHVyZQ
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from cbt import audit, receipts
from cbt.platform.errors import UserError
from cbt.roster import safe_cell

_HASH = re.compile(r"[0-9a-fA-F]{64}")
_SEQ_HASH = re.compile(r"(\d{1,18}):([0-9a-fA-F]{64})")
# A token: base64url(payload) "." base64url(64-byte signature), 86 characters.
_TOKEN = re.compile(r"(?<![A-Za-z0-9_.-])[A-Za-z0-9_-]{20,4000}\.[A-Za-z0-9_-]{86}(?![A-Za-z0-9_.-])")


@dataclass(frozen=True)
class SignedHead:
    exam: str
    head: audit.Head
    signed_at: dt.datetime
    kid: str
    token: str

    def text(self) -> str:
        """The head file: comment lines for people, then the token."""
        return (
            f"# Signed audit chain head of exam {self.exam}\n"
            f"# event: {self.head.seq}\n"
            f"# hash: {self.head.hash.hex()}\n"
            f"# signed at: {self.signed_at.astimezone(dt.UTC).isoformat(timespec='seconds')} "
            f"with receipt key {self.kid}\n"
            f"{self.token}\n"
        )

    def line(self) -> str:
        """One line, for a terminal."""
        return (
            f"# signed audit chain head of {self.exam}: event {self.head.seq}; hash {self.head.hash.hex()}; "
            f"token {self.token}"
        )

    def rows(self, words: dict | None = None) -> list[list]:
        """Label and value rows, for a spreadsheet's sheet; words: ROW_WORDS in
        the reader's language (English without them)."""
        w = {**ROW_WORDS, **(words or {})}
        return [
            [w["title"], ""],
            [w["exam"], self.exam],
            [w["event"], self.head.seq],
            [w["hash"], self.head.hash.hex()],
            [w["signed_at"], self.signed_at.astimezone(dt.UTC).isoformat(timespec="seconds")],
            [w["key"], self.kid],
            [w["token"], self.token],
            ["", ""],
            [w["proves"], w["proves_text"]],
        ]

    def add_sheet(self, wb, title: str, words: dict | None = None) -> None:
        """A sheet of an openpyxl workbook holding rows()."""
        ws = wb.create_sheet(title)
        for label, value in self.rows(words):
            ws.append([label, safe_cell(value) if isinstance(value, str) else value])
        ws.column_dimensions["A"].width = 26
        ws.column_dimensions["B"].width = 100


# The labels of a head's sheet in a workbook, in English; "head.sheet.<key>"
# in web/i18n says them in the reader's language.
ROW_WORDS = {
    "title": "signed audit chain head",
    "exam": "exam",
    "event": "event (seq)",
    "hash": "hash",
    "signed_at": "signed at (UTC)",
    "key": "receipt key",
    "token": "token",
    "proves": "what it proves",
    "proves_text": "`cbt audit verify EXAM --head TOKEN` fails if any event up to this one was later removed or"
    " altered",
}


def row_words(t) -> dict:
    """ROW_WORDS from the catalogs, with t a cbt.platform.i18n translator."""
    return {key: t("head.sheet." + key) for key in ROW_WORDS}


async def sign_current(conn: asyncpg.Connection, exam_code: str) -> SignedHead:
    """The exam's chain head now (pending events sealed first), signed."""
    head = await audit.current_head(conn, await audit.exam_id_of(conn, exam_code))
    key = await receipts.server_key(conn)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    token = receipts.sign_head(key, exam_code, head, now)
    return SignedHead(exam_code, head, now, receipts.key_id(key.public_key()), token)


def parse_heads(arg: str) -> list[str | audit.Head]:
    """What one --head argument holds: tokens still to check, and plain heads."""
    text = arg.strip()
    single = _parse_one(text)
    if single is not None:
        return [single]
    path = Path(arg)
    if not path.is_file():
        raise UserError(
            "bad_head",
            f"{arg[:80]!r} is neither a file nor a chain head: give a head file, a signed "
            "head or receipt token, a hash (64 hex digits) or SEQ:HASH",
        )
    try:
        content = path.read_text("utf-8", errors="replace")
    except OSError as e:
        raise UserError("file_unreadable", f"cannot read the head file {path}: {e.strerror}", path=str(path)) from None
    # Once each: a results.csv repeats its head in every row.
    found: list[str | audit.Head] = list(dict.fromkeys(_TOKEN.findall(content)))
    for n, line in enumerate(content.splitlines(), start=1):
        line = line.strip().strip('"')
        if _HASH.fullmatch(line) or _SEQ_HASH.fullmatch(line):
            found.append(_plain(line, f"{path.name}:{n}"))
    if not found:
        raise UserError(
            "no_heads",
            f"{path} holds no chain head: no signed head or receipt token, and no line that is a hash or SEQ:HASH",
        )
    return found


def _parse_one(text: str) -> str | audit.Head | None:
    if _HASH.fullmatch(text) or _SEQ_HASH.fullmatch(text):
        return _plain(text, "")
    joined = "".join(text.split())  # a token pasted across lines
    if _TOKEN.fullmatch(joined):
        return joined
    return None


def _plain(text: str, where: str) -> audit.Head:
    m = _SEQ_HASH.fullmatch(text)
    try:
        if m:
            return audit.Head(int(m[1]), bytes.fromhex(m[2]), f"head {where or text[:12]}")
        return audit.Head(None, bytes.fromhex(text), f"hash {where or text[:12] + '...'}")
    except audit.AuditError as e:
        raise UserError("bad_head", f"{where or text[:80]}: {e}") from None


async def resolve(
    conn: asyncpg.Connection, exam_code: str, items: Iterable[str | audit.Head], key_pem: str | None = None
) -> list[audit.Head]:
    """The heads parse_heads found, tokens checked: signed by this server's
    receipt key (or by key_pem, a public key kept apart from the database),
    and of this exam."""
    server = (await receipts.server_key(conn)).public_key()
    keys = [key_pem] if key_pem is not None else [server]
    return [item if isinstance(item, audit.Head) else _from_token(item, exam_code, keys, server) for item in items]


def _from_token(token: str, exam_code: str, keys: list, server) -> audit.Head:
    named = f"token {token[:12]}..."
    try:
        payload = receipts.open_token(token, keys)
    except receipts.ReceiptError as e:
        if e.code != "bad_signature":
            raise UserError("bad_head", f"{named} is not a chain head: {e.message}") from None
        kid = _claimed_kid(token)
        why = (
            f"it says it was signed with key {kid}, and the database's receipt key is {receipts.key_id(server)}: "
            "the key was replaced, or the head comes from another server"
            if kid and kid != receipts.key_id(server)
            else "it was altered, or not signed by this server"
        )
        raise UserError("head_bad_signature", f"{named} is refused: its signature does not match ({why})") from None
    if payload.get("kind") == receipts.HEAD_KIND:
        seq, digest = payload.get("seq"), payload.get("hash")
        if (
            isinstance(seq, bool)
            or not isinstance(seq, int)
            or not isinstance(digest, str)
            or not _HASH.fullmatch(digest)
        ):
            raise UserError("bad_head", f"{named}: its head is unreadable")
        head = audit.Head(seq, bytes.fromhex(digest), f"head signed {payload.get('signed_at')}")
    else:
        head = receipts.receipt_head(payload)
        if head is None:
            raise UserError(
                "receipt_without_head",
                f"{named} is a receipt issued before receipts carried the chain head: it anchors nothing; leave it out",
            )
    if payload.get("exam") != exam_code:
        raise UserError(
            "head_other_exam",
            f"{head.source or named} is of exam {payload.get('exam')}, not {exam_code}: give the heads of {exam_code}",
            exam=exam_code,
        )
    return head


def _claimed_kid(token: str) -> str | None:
    """The key id a token's (unverified) payload names, to explain a refusal."""
    kid = receipts.unverified_payload(token).get("kid")
    return kid if isinstance(kid, str) and re.fullmatch(r"[0-9a-f]{16}", kid) else None


# -- for the command line (cbt audit verify --head / cbt audit head) ------------------


async def verify_command(
    conn: asyncpg.Connection, code: str, out, items: Iterable[str | audit.Head] = (), key_pem: str | None = None
) -> int:
    """audit.verify_command against the heads parse_heads found."""
    return await audit.verify_command(conn, code, out, await resolve(conn, code, items, key_pem))
