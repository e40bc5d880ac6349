"""Submission receipts: signed by the server's Ed25519 key, checked by
anyone on /receipt; a tampered, foreign or garbled receipt is refused."""

import asyncio
import base64
import datetime as dt
import hashlib
import io
import json

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.accounts import csrf_of
from support.audit import flip
from support.delivery import started

from cbt import receipts
from cbt.platform.app import create_app
from cbt.receipts import ReceiptError

RESPONSES = hashlib.sha256(b"the final responses").hexdigest()
WHEN = dt.datetime(2025, 6, 26, 1, 30, 5, 123456, tzinfo=dt.UTC)


@pytest.fixture
async def receipt_client(settings, aiohttp_client):
    """The app, whose /receipt page is public."""
    return await aiohttp_client(create_app(settings))


async def an_attempt(client, conn, exam, code="0000000001") -> int:
    await started(client, exam[code])
    return await conn.fetchval(
        "SELECT a.id FROM attempts a JOIN candidates c ON c.id = a.candidate_id WHERE c.code = $1", code
    )


async def test_issue_then_verify(receipt_client, conn, exam):
    attempt_id = await an_attempt(receipt_client, conn, exam)
    r = await receipts.issue(conn, "TOAN-T", "0000000001", attempt_id, RESPONSES, WHEN)
    payload = receipts.verify_token(r.token, await receipts.public_keys(conn))
    assert payload == r.payload
    assert payload["exam"] == "TOAN-T" and payload["candidate"] == "0000000001"
    assert payload["attempt"] == attempt_id and payload["responses_sha256"] == RESPONSES
    assert payload["submitted_at"] == "2025-06-26T01:30:05.123456+00:00"
    # The short code: 20 base32 characters of SHA-256(payload) in groups of five.
    data = base64.urlsafe_b64decode(r.token.split(".")[0] + "==")
    assert json.loads(data) == payload
    expect = base64.b32encode(hashlib.sha256(data).digest()).decode()[:20]
    assert r.short_code == "-".join(expect[i : i + 5] for i in range(0, 20, 5))
    # A retried submit gets the very same receipt back.
    again = await receipts.issue(conn, "TOAN-T", "0000000001", attempt_id, RESPONSES, WHEN + dt.timedelta(seconds=9))
    assert again == r
    # Copy and paste may break the token across lines.
    assert receipts.verify_token(r.token[:30] + "\n " + r.token[30:], await receipts.public_keys(conn)) == payload


@pytest.mark.parametrize("part", [0, 1])
async def test_a_flipped_bit_is_refused(receipt_client, conn, exam, part):
    attempt_id = await an_attempt(receipt_client, conn, exam)
    r = await receipts.issue(conn, "TOAN-T", "0000000001", attempt_id, RESPONSES, WHEN)
    keys = await receipts.public_keys(conn)
    for index in (0, 10, 40):
        with pytest.raises(ReceiptError) as e:
            receipts.verify_token(flip(r.token, part, index), keys)
        assert e.value.code == "bad_signature"


async def test_a_receipt_signed_by_another_key_is_refused(receipt_client, conn, exam):
    attempt_id = await an_attempt(receipt_client, conn, exam)
    forger = Ed25519PrivateKey.generate()
    payload = receipts.make_payload(
        "TOAN-T",
        "0000000001",
        attempt_id,
        RESPONSES,
        WHEN,
        receipts.key_id((await receipts.server_key(conn)).public_key()),
    )
    forged = receipts.sign(forger, payload)
    assert receipts.verify_token(forged.token, [forger.public_key()]) == payload
    with pytest.raises(ReceiptError) as e:
        receipts.verify_token(forged.token, await receipts.public_keys(conn))
    assert e.value.code == "bad_signature"


@pytest.mark.parametrize("garbage", ["", "hello", "a.b.c", "!!!!.????", "AAAA.AAAA", "x" * 5000, None, "é.é"])
def test_garbage_is_malformed(garbage):
    with pytest.raises(ReceiptError) as e:
        receipts.verify_token(garbage, [Ed25519PrivateKey.generate().public_key()])
    assert e.value.code == "malformed"


async def test_concurrent_workers_agree_on_one_key(dsn, conn):
    conns = [await asyncpg.connect(dsn) for _ in range(4)]
    try:
        found = await asyncio.gather(*(receipts.server_key(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    ids = {receipts.key_id(k.public_key()) for k in found}
    assert len(ids) == 1
    assert await conn.fetchval("SELECT count(*) FROM server_keys") == 1


async def test_the_page_says_valid_for_a_real_receipt_and_invalid_for_a_tampered_one(receipt_client, conn, exam):
    attempt_id = await an_attempt(receipt_client, conn, exam)
    r = await receipts.issue(conn, "TOAN-T", "0000000001", attempt_id, RESPONSES, WHEN)
    client = receipt_client

    resp = await client.get("/receipt")
    assert resp.status == 200
    html = await resp.text()
    assert 'lang="vi"' in html and "<textarea" in html and "data-result" not in html

    token = await csrf_of(client, "/receipt")
    resp = await client.post("/receipt", data={"token": r.token, "csrf_token": token})
    html = await resp.text()
    assert resp.status == 200 and 'data-result="valid"' in html
    for shown in ("TOAN-T", "0000000001", RESPONSES, r.short_code):
        assert shown in html
    # The time in the exam's zone (the server's, Asia/Ho_Chi_Minh, as the exam names none), labelled: not the raw
    # UTC of the signed receipt.
    assert (
        '<dd class="submitted-at"><time datetime="2025-06-26T08:30:05+07:00" title="Asia/Ho_Chi_Minh">'
        "08:30:05 26/06/2025 (GMT+7)</time></dd>" in html
    )
    assert "01:30:05" not in html
    # An exam of its own zone shows it in that one.
    await conn.execute("UPDATE exams SET time_zone = 'Asia/Tokyo' WHERE code = 'TOAN-T'")
    html = await (await client.get("/receipt", params={"token": r.token})).text()
    assert "10:30:05 26/06/2025 (GMT+9)" in html
    await client.get("/lang/en?next=/")
    html = await (await client.get("/receipt", params={"token": r.token})).text()
    assert "2025-06-26 10:30:05 (GMT+9)" in html and "Submitted at" in html
    await client.get("/lang/vi?next=/")

    resp = await client.post("/receipt", data={"token": flip(r.token, 0), "csrf_token": token})
    html = await resp.text()
    assert 'data-result="invalid"' in html and 'data-code="bad_signature"' in html
    assert RESPONSES not in html.split("<form")[0]

    # A link (from a QR code, say) checks by GET; the short code finds the stored receipt.
    resp = await client.get("/receipt", params={"token": r.token})
    assert 'data-result="valid"' in await resp.text()
    resp = await client.post("/receipt", data={"token": r.short_code.lower(), "csrf_token": token})
    assert 'data-result="valid"' in await resp.text()
    resp = await client.post("/receipt", data={"token": "AAAAA-BBBBB-CCCCC-DDDDD", "csrf_token": token})
    assert 'data-code="unknown_code"' in await resp.text()
    resp = await client.post("/receipt", data={"token": "<script>", "csrf_token": token})
    html = await resp.text()
    assert 'data-code="malformed"' in html and "<script>" not in html


async def test_command_line_verify_online_and_offline(receipt_client, conn, exam):
    attempt_id = await an_attempt(receipt_client, conn, exam)
    r = await receipts.issue(conn, "TOAN-T", "0000000001", attempt_id, RESPONSES, WHEN)
    out = io.StringIO()
    assert await receipts.verify_command(conn, r.token, out) == 0
    assert r.short_code in out.getvalue() and RESPONSES in out.getvalue()
    out = io.StringIO()
    assert await receipts.public_key_command(conn, out) == 0
    pem = out.getvalue()
    out = io.StringIO()
    assert await receipts.verify_command(None, r.token, out, key_pem=pem) == 0
    out = io.StringIO()
    assert await receipts.verify_command(None, flip(r.token, 1), out, key_pem=pem) == 1
    assert "INVALID (bad_signature)" in out.getvalue()
    out = io.StringIO()
    assert await receipts.verify_command(conn, "nonsense", out) == 1


async def test_qr_code_of_the_verification_link(receipt_client):
    resp = await receipt_client.get("/receipt/qr.svg?token=abc.def")
    assert resp.status == 200 and resp.headers["Content-Type"] == "image/svg+xml"
    svg = await resp.text()
    assert svg.startswith("<svg") and "<script" not in svg
    assert (await receipt_client.get("/receipt/qr.svg")).status == 400
