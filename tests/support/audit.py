"""The audit chain and receipts: events to fill it, and ways to tamper with them."""

import base64

from cbt import audit


async def exam_id(conn) -> int:
    """A fresh exam whose chain is empty (TOAN-T's own chain already holds its
    creation, roster, opening and tickets)."""
    return await conn.fetchval(
        """INSERT INTO exams (org_id, code, title, release_id, spec, secret, duration_seconds, opens_at, closes_at,
                              late_entry_until)
           SELECT org_id, 'AUDIT-T', title, release_id, spec, secret, duration_seconds, opens_at, closes_at,
                  late_entry_until FROM exams WHERE code = 'TOAN-T' RETURNING id"""
    )


async def some_events(conn, eid, n=6) -> None:
    kinds = ["login", "start", "changes", "submit", "proctor_action", "exam_edit"]
    for i in range(n):
        await audit.append(
            conn,
            eid,
            f"candidate:000000000{i % 3 + 1}",
            kinds[i % len(kinds)],
            {"i": i, "note": "Nguyễn Văn An", "nested": {"b": [1, 2.5, None], "a": True}},
        )


async def tamper(conn, sql, *args) -> None:
    """What only the table's owner or a superuser can do: switch the guard off."""
    await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")


def flip(token: str, part: int, index: int = 10) -> str:
    """Flip one bit of the decoded payload (part 0) or signature (part 1)."""
    pieces = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
    raw[index] ^= 0x01
    pieces[part] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return ".".join(pieces)
