"""Addresses: the client's, believing X-Forwarded-For only from trusted
proxies, and the server's as its users type it."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from aiohttp import web

from cbt.platform import appkeys


@lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _parse(addr: str | None):
    if not addr:
        return None
    try:
        return ipaddress.ip_address(addr.strip().split("%")[0])
    except ValueError:
        return None


def client_addr(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """The address of the browser, as text ('' if unknown).

    X-Forwarded-For is walked from the right (the hop nearest to us), skipping
    trusted proxies; the first untrusted hop is the client. From an untrusted
    peer the header is ignored entirely, so a student cannot forge a lab
    address by sending it.
    """
    peer = _parse(request.remote)
    if peer is None:
        return request.remote or ""
    nets = _networks(trusted_proxies)
    if not nets or not any(peer in n for n in nets):
        return str(peer)
    hops = [h for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            break
        if not any(addr in n for n in nets):
            return str(addr)
    return str(peer)


def public_url(request: web.Request) -> str:
    """The address users type: the configured CBT_PUBLIC_URL; without it, what
    this server was asked for (fine for links on a page, never for SEB)."""
    configured = request.app[appkeys.SETTINGS].public_url
    return configured or f"{request.scheme}://{request.host}"
