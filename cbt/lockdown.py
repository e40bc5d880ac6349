"""Exam policies a candidate request must pass: allowed networks, the room's
access code, one device per attempt (and, in seb.py, Safe Exam Browser).

In the exam YAML::

    policies:
      networks:                      # absent = any address
        allow: [10.0.0.0/8, "2001:db8::/48"]
        rooms: {P01: [10.1.1.0/24]}  # a room's own list replaces `allow`
      access_code: true              # a code read out in the room, needed to start
      one_device: true               # default: an attempt stays on the browser that started it
      integrity: {action: count, pause_after: 3}   # count | warn | pause
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from functools import lru_cache

import asyncpg

from cbt.errors import Forbidden

DEVICE_COOKIE = "cbt_device"
INTEGRITY_ACTIONS = ("count", "warn", "pause")
INTEGRITY_KINDS = ("visibility_hidden", "blur", "fullscreen_exit", "copy", "paste", "contextmenu", "second_tab")
# Easy to read aloud in a room: no vowels (Vietnamese input methods), no look-alikes.
_CODE_ALPHABET = "34679CFHJKMNPRTX"

DEFAULT_POLICIES = {"networks": None, "access_code": False, "one_device": True,
                    "integrity": {"action": "count", "pause_after": 3}}


def parse_policies(raw, problems: list[str]) -> dict:
    """Check the `policies:` of an exam file; add a line to problems for each fault."""
    if raw is None:
        return dict(DEFAULT_POLICIES)
    if not isinstance(raw, dict):
        problems.append("policies: must be a mapping (networks:, access_code:, one_device:, integrity:)")
        return dict(DEFAULT_POLICIES)
    out = dict(DEFAULT_POLICIES)
    unknown = set(raw) - set(DEFAULT_POLICIES)
    if unknown:
        problems.append(f"policies: unknown field(s) {', '.join(sorted(unknown))}")
    nets = raw.get("networks")
    if nets is not None:
        if not isinstance(nets, dict):
            problems.append("policies.networks: give allow: [CIDR, ...] and/or rooms: {ROOM: [CIDR, ...]}")
        else:
            allow = [str(c) for c in nets.get("allow") or []]
            rooms = {str(k): [str(c) for c in v or []] for k, v in (nets.get("rooms") or {}).items()}
            for where, cidrs in [("allow", allow), *((f"rooms.{k}", v) for k, v in rooms.items())]:
                for cidr in cidrs:
                    try:
                        ipaddress.ip_network(cidr, strict=False)
                    except ValueError:
                        problems.append(f"policies.networks.{where}: {cidr!r} is not an address or CIDR network")
            out["networks"] = {"allow": allow, "rooms": rooms}
    for flag in ("access_code", "one_device"):
        if flag in raw:
            if not isinstance(raw[flag], bool):
                problems.append(f"policies.{flag}: true or false")
            else:
                out[flag] = raw[flag]
    integrity = raw.get("integrity")
    if integrity is not None:
        action = (integrity or {}).get("action", "count")
        after = (integrity or {}).get("pause_after", 3)
        if action not in INTEGRITY_ACTIONS:
            problems.append(f"policies.integrity.action: one of {', '.join(INTEGRITY_ACTIONS)}, got {action!r}")
        if not isinstance(after, int) or isinstance(after, bool) or after < 1:
            problems.append("policies.integrity.pause_after: a whole number of events, 1 or more")
        out["integrity"] = {"action": action, "pause_after": after}
    return out


@lru_cache(maxsize=256)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def address_allowed(addr: str, policies: dict, room: str) -> bool:
    nets = policies.get("networks")
    if not nets:
        return True
    cidrs = nets["rooms"].get(room) if room in nets["rooms"] else nets["allow"]
    try:
        ip = ipaddress.ip_address(addr.split("%")[0])
    except ValueError:
        return False
    return any(ip in n for n in _networks(tuple(cidrs)))


def check_network(addr: str, policies: dict, room: str, override: bool) -> None:
    if override or address_allowed(addr, policies, room):
        return
    raise Forbidden("network_refused",
                    "this computer is not on the exam room's network: sit the exam from a lab computer, "
                    "or ask your proctor", addr=addr)


def device_hash(cookie: str | None) -> bytes | None:
    return hashlib.sha256(cookie.encode()).digest() if cookie else None


def new_device_id() -> str:
    return secrets.token_urlsafe(24)


def new_access_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


async def ensure_room_codes(conn: asyncpg.Connection, exam_id: int) -> None:
    """Give every room of the roster an access code (rooms added later too)."""
    rooms = [r[0] for r in await conn.fetch(
        "SELECT DISTINCT room FROM candidates WHERE exam_id = $1 AND room NOT IN "
        "(SELECT room FROM exam_rooms WHERE exam_id = $1)", exam_id)]
    await conn.executemany("INSERT INTO exam_rooms (exam_id, room, access_code) VALUES ($1, $2, $3) "
                           "ON CONFLICT DO NOTHING", [(exam_id, room, new_access_code()) for room in rooms])


async def rotate_code(conn: asyncpg.Connection, exam_id: int, room: str) -> str:
    code = new_access_code()
    done = await conn.execute("UPDATE exam_rooms SET access_code = $3, rotated_at = now() "
                              "WHERE exam_id = $1 AND room = $2", exam_id, room, code)
    if done == "UPDATE 0":
        raise Forbidden("unknown_room", f"no room {room!r} in this exam")
    return code
