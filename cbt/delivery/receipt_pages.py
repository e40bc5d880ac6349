"""The public receipt pages: anyone holding a receipt checks it (/receipt),
and the closing page shows a QR code of that check's link (/receipt/qr.svg).
The signing and checking themselves are receipts.py's."""

from __future__ import annotations

import datetime as dt
import io
import urllib.parse

import segno
from aiohttp import web

from cbt.platform import appkeys
from cbt.platform.clientaddr import public_url
from cbt.platform.templating import render
from cbt.receipts import ReceiptError, receipt_head, verify_any


def _instant(text) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None


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
        async with request.app[appkeys.POOL].acquire() as conn:
            try:
                payload, short = await verify_any(conn, text)
                # Shown in the exam's time zone; a receipt of an exam this server does not hold, in its own.
                zone = await conn.fetchval("SELECT time_zone FROM exams WHERE code = $1", payload["exam"])
                result = {
                    "ok": True,
                    "payload": payload,
                    "short_code": short,
                    "head": receipt_head(payload),
                    "submitted_at": _instant(payload["submitted_at"]),
                    "zone": zone,
                }
            except ReceiptError as e:
                result = {"ok": False, "code": e.code}
    return render(request, "receipt/verify.html", {"token": text, "result": result})


async def qr_svg(request: web.Request) -> web.Response:
    """GET /receipt/qr.svg?token=...: a QR code of the verification link, for the
    closing page (a phone can check the receipt later)."""
    token = request.query.get("token", "")
    if not token or len(token) > 2000:
        return web.json_response({"error": {"code": "bad_token", "message": "give the receipt token"}}, status=400)
    link = f"{public_url(request)}/receipt?token={urllib.parse.quote(token, safe='')}"
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return web.Response(
        body=out.getvalue(), content_type="image/svg+xml", headers={"Cache-Control": "private, max-age=86400"}
    )
