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
      seb: {required: true, browser_exam_keys: [...]} # Safe Exam Browser, see cbt/seb.py
      admission: {rate_per_second: 20, burst: 40}    # start storms: the rest wait in line
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from functools import lru_cache
from http.cookies import SimpleCookie

import asyncpg
from aiohttp import hdrs, web

from cbt import seb
from cbt.platform import appkeys
from cbt.platform.errors import Forbidden, Problem

DEVICE_COOKIE = "cbt_device"
INTEGRITY_ACTIONS = ("count", "warn", "pause")
INTEGRITY_KINDS = ("visibility_hidden", "blur", "fullscreen_exit", "copy", "paste", "contextmenu", "second_tab")
# Integrity reports one attempt may store, in all and in any minute; the rest
# are only counted (integrity_overflow), so the proctor still sees how many
# came. A student who leaves the page does so a few times an exam (a blur and
# a visibility event each time); a script sent 5,000 rows in 1.5 s.
INTEGRITY_MAX_PER_ATTEMPT = 500
INTEGRITY_MAX_PER_MINUTE = 30
# Easy to read aloud in a room: no vowels (Vietnamese input methods), no look-alikes.
_CODE_ALPHABET = "34679CFHJKMNPRTX"

DEFAULT_POLICIES = {
    "networks": None,
    "access_code": False,
    "one_device": True,
    "integrity": {"action": "count", "pause_after": 3},
    "seb": None,
    "admission": None,
}


def parse_policies(raw, problems: list[Problem]) -> dict:
    """Check the `policies:` of an exam file; add a Problem to problems for each fault."""
    if raw is None:
        return dict(DEFAULT_POLICIES)
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                "policies: must be a mapping (networks:, access_code:, one_device:, integrity:)",
                "policies_not_mapping",
                "policies",
            )
        )
        return dict(DEFAULT_POLICIES)
    out = dict(DEFAULT_POLICIES)
    unknown = set(raw) - set(DEFAULT_POLICIES)
    if unknown:
        problems.append(
            Problem(
                f"policies: unknown field(s) {', '.join(sorted(unknown))}",
                "unknown_fields",
                "policies",
                fields=", ".join(sorted(unknown)),
            )
        )
    nets = raw.get("networks")
    if nets is not None:
        if not isinstance(nets, dict):
            problems.append(
                Problem(
                    "policies.networks: give allow: [CIDR, ...] and/or rooms: {ROOM: [CIDR, ...]}",
                    "networks_shape",
                    "policies.networks",
                )
            )
        else:
            allow = [str(c) for c in nets.get("allow") or []]
            rooms = {str(k): [str(c) for c in v or []] for k, v in (nets.get("rooms") or {}).items()}
            for where, cidrs in [("allow", allow), *((f"rooms.{k}", v) for k, v in rooms.items())]:
                for cidr in cidrs:
                    try:
                        ipaddress.ip_network(cidr, strict=False)
                    except ValueError:
                        problems.append(
                            Problem(
                                f"policies.networks.{where}: {cidr!r} is not an address or CIDR network",
                                "not_network",
                                f"policies.networks.{where}",
                                got=cidr,
                            )
                        )
            out["networks"] = {"allow": allow, "rooms": rooms}
    for flag in ("access_code", "one_device"):
        if flag in raw:
            if not isinstance(raw[flag], bool):
                problems.append(Problem(f"policies.{flag}: true or false", "not_bool", f"policies.{flag}"))
            else:
                out[flag] = raw[flag]
    admission = raw.get("admission")
    if admission is not None:
        rate = (admission or {}).get("rate_per_second") if isinstance(admission, dict) else None
        burst = (admission or {}).get("burst", rate) if isinstance(admission, dict) else None
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 < rate <= 10_000:
            problems.append(
                Problem(
                    "policies.admission.rate_per_second: how many Starts per second to let through, e.g. 20",
                    "admission_rate",
                    "policies.admission.rate_per_second",
                )
            )
        elif not isinstance(burst, int | float) or isinstance(burst, bool) or burst < 1:
            problems.append(
                Problem(
                    "policies.admission.burst: how many Starts may pass at once, 1 or more",
                    "admission_burst",
                    "policies.admission.burst",
                )
            )
        else:
            out["admission"] = {"rate_per_second": float(rate), "burst": float(burst)}
    if raw.get("seb") is not None:
        out["seb"] = seb.parse_seb_policy(raw.get("seb"), problems)
    integrity = raw.get("integrity")
    if integrity is not None:
        action = (integrity or {}).get("action", "count")
        after = (integrity or {}).get("pause_after", 3)
        if action not in INTEGRITY_ACTIONS:
            problems.append(
                Problem(
                    f"policies.integrity.action: one of {', '.join(INTEGRITY_ACTIONS)}, got {action!r}",
                    "not_one_of",
                    "policies.integrity.action",
                    allowed=", ".join(INTEGRITY_ACTIONS),
                    got=action,
                )
            )
        if not isinstance(after, int) or isinstance(after, bool) or after < 1:
            problems.append(
                Problem(
                    "policies.integrity.pause_after: a whole number of events, 1 or more",
                    "pause_after",
                    "policies.integrity.pause_after",
                )
            )
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
    raise Forbidden(
        "network_refused",
        "this computer is not on the exam room's network: sit the exam from a lab computer, or ask your proctor",
        addr=addr,
    )


def device_hash(cookie: str | None) -> bytes | None:
    return hashlib.sha256(cookie.encode()).digest() if cookie else None


def new_device_id() -> str:
    return secrets.token_urlsafe(24)


def device_of(request: web.Request) -> bytes | None:
    """This browser's device hash: its cookie's, or the one issued to it in this request."""
    return device_hash(request.cookies.get(DEVICE_COOKIE) or request.get(appkeys.DEVICE_ISSUED))


def ensure_device(request: web.Request) -> bytes:
    """device_of, giving a browser that has no device id a new one (the
    response sets it as a cookie: set_device_cookie)."""
    if device_of(request) is None:
        request[appkeys.DEVICE_ISSUED] = new_device_id()
    return device_of(request)


async def set_device_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the device id issued in this request, if any, goes
    out as a cookie, on a refusal as well as on success (the next request then
    carries it, and a proctor can move the attempt to it)."""
    issued = request.get(appkeys.DEVICE_ISSUED)
    if issued:
        # Identifies this browser for the one-device rule; no personal data.
        # The header itself: aiohttp has made headers of set_cookie() already.
        cookie = SimpleCookie()
        cookie[DEVICE_COOKIE] = issued
        morsel = cookie[DEVICE_COOKIE]
        morsel.update({"httponly": True, "samesite": "Strict", "path": "/api/", "max-age": str(7 * 24 * 3600)})
        if request.app[appkeys.SETTINGS].secure_cookies or request.secure:
            morsel["secure"] = True
        response.headers.add(hdrs.SET_COOKIE, morsel.OutputString())


def new_access_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


async def ensure_room_codes(conn: asyncpg.Connection, exam_id: int) -> None:
    """Give every room of the roster an access code (rooms added later too)."""
    rooms = [
        r[0]
        for r in await conn.fetch(
            "SELECT DISTINCT room FROM candidates WHERE exam_id = $1 AND room NOT IN "
            "(SELECT room FROM exam_rooms WHERE exam_id = $1)",
            exam_id,
        )
    ]
    await conn.executemany(
        "INSERT INTO exam_rooms (exam_id, room, access_code) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(exam_id, room, new_access_code()) for room in rooms],
    )


async def rotate_code(conn: asyncpg.Connection, exam_id: int, room: str) -> str:
    code = new_access_code()
    done = await conn.execute(
        "UPDATE exam_rooms SET access_code = $3, rotated_at = now() WHERE exam_id = $1 AND room = $2",
        exam_id,
        room,
        code,
    )
    if done == "UPDATE 0":
        raise Forbidden("unknown_room", f"no room {room!r} in this exam", room=room)
    return code


def seb_config_file(public_url: str, exam_code: str, title: str, rules: dict) -> bytes:
    """The .seb settings cbt offers for this exam (its Config Key is accepted)."""
    return seb.seb_config(
        f"{public_url}/exam",
        f"{public_url}/exam/done",
        exam_title=title,
        allow_quit=(rules or {}).get("allow_quit", True),
    )


@lru_cache(maxsize=64)
def _served_config_key(public_url: str, exam_code: str, title: str, allow_quit: bool) -> str:
    return seb.config_key_for_file(seb_config_file(public_url, exam_code, title, {"allow_quit": allow_quit}))


def check_seb(
    rules: dict | None, public_url: str, raw_path: str, headers, exam_code: str, title: str
) -> seb.SebCheck | None:
    """None when the exam does not require SEB; else the check of this request's headers."""
    if not rules or not rules.get("required"):
        return None
    config_keys = list(rules.get("config_keys") or [])
    if rules.get("serve_config", True):
        config_keys.append(_served_config_key(public_url, exam_code, title, rules.get("allow_quit", True)))
    url = seb.absolute_url(public_url, raw_path)
    return seb.check_headers(
        url,
        headers.get(seb.CONFIG_KEY_HEADER),
        headers.get(seb.REQUEST_HASH_HEADER),
        config_keys,
        list(rules.get("browser_exam_keys") or []),
    )


_REFILL_BUCKET = """
WITH bucket AS (
    INSERT INTO admission_buckets (exam_id, tokens) VALUES ($1, $3)
    ON CONFLICT (exam_id) DO UPDATE SET
        tokens = least($3, admission_buckets.tokens
                 + $2 * extract(epoch FROM clock_timestamp() - admission_buckets.updated_at)),
        updated_at = clock_timestamp()
    RETURNING tokens
)
SELECT tokens FROM bucket
"""


async def admit(conn: asyncpg.Connection, exam_id: int, candidate_id: int, rule: dict) -> tuple[bool, int, float]:
    """Token-bucket admission for Start, first come first served.

    Returns (admitted, place in line (1 = next), seconds to wait). Call inside
    a transaction: the bucket row lock orders concurrent Starts.
    """
    rate, burst = rule["rate_per_second"], rule["burst"]
    await conn.execute(
        "INSERT INTO admission_queue (exam_id, candidate_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        exam_id,
        candidate_id,
    )
    tokens = await conn.fetchval(_REFILL_BUCKET, exam_id, rate, burst)
    place = await conn.fetchval(
        "SELECT count(*) FROM admission_queue q WHERE q.exam_id = $1 AND q.enqueued_at <= "
        "(SELECT enqueued_at FROM admission_queue WHERE exam_id = $1 AND candidate_id = $2)",
        exam_id,
        candidate_id,
    )
    if place <= int(tokens):
        await conn.execute("UPDATE admission_buckets SET tokens = tokens - 1 WHERE exam_id = $1", exam_id)
        await conn.execute(
            "DELETE FROM admission_queue WHERE exam_id = $1 AND candidate_id = $2", exam_id, candidate_id
        )
        return True, 0, 0.0
    wait = max(0.5, (place - tokens) / rate)
    return False, place, wait
