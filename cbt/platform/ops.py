"""Operations endpoints: /healthz for load balancers, /metrics for Prometheus."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from aiohttp import web

from cbt.platform import appkeys


async def healthz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(2):
            await request.app[appkeys.POOL].fetchval("SELECT 1")
    except Exception as e:
        return web.json_response(
            {"status": "unavailable", "database": f"{e.__class__.__name__}: {e}"[:200]},
            status=503,
        )
    return web.json_response({"status": "ok", "database": "ok"})


def _is_loopback(addr: str | None) -> bool:
    try:
        return ipaddress.ip_address((addr or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def metrics_allowed(remote: str | None, authorization: str, token: str) -> bool:
    """Open on loopback (a local Prometheus or exporter); elsewhere only with
    the configured bearer token."""
    if _is_loopback(remote):
        return True
    return bool(token) and hmac.compare_digest(authorization, f"Bearer {token}")


async def metrics(request: web.Request) -> web.Response:
    token = request.app[appkeys.SETTINGS].metrics_token
    if not metrics_allowed(request.remote, request.headers.get("Authorization", ""), token):
        return web.json_response(
            {
                "error": {
                    "code": "metrics_forbidden",
                    "message": "metrics are served to loopback, or with CBT_METRICS_TOKEN as a bearer token",
                }
            },
            status=403,
        )
    body = request.app[appkeys.METRICS].render()
    return web.Response(
        body=body, content_type="text/plain", charset="utf-8", headers={"X-Content-Type-Options": "nosniff"}
    )
