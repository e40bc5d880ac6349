"""Organisations and staff accounts.

Staff belong to an organisation: an education department or one of its
schools. They see their own organisation's data; a department's staff also
see its schools'.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cbt import subjects
from cbt.platform.errors import Conflict, NotFound, UserError
from cbt.roles import ORG_KINDS, ROLES

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
_ORG_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_PASSWORD = 10

# argon2id with the library's defaults (RFC 9106 low-memory profile).
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both paths cost the same
    and response time does not reveal which accounts exist. Made on first need,
    not at import: every CLI command imports this module, and a hash costs it
    a quarter of a second or more."""
    return _hasher.hash("not a real password, only for equal timing")


@dataclass(frozen=True)
class Staff:
    id: int
    username: str
    display_name: str
    role: str
    org_id: int
    org_code: str
    org_kind: str


# argon2 takes 64 MiB and tens of milliseconds of CPU a hash: off the event
# loop, and one at a time per process. On the default thread pool, 125
# proctors signing in at once under load ran six hashes per worker together:
# 937 MB of server memory, where the same run without them peaked at 383 MB,
# and seconds added to every student's save.
_argon2: tuple[int, ThreadPoolExecutor] | None = None


async def off_loop(fn, *args):
    """fn(*args) on this process's one password-hashing thread."""
    global _argon2
    # Per process: a worker forked after `cbt demo` hashed in the supervisor
    # would inherit an executor whose thread did not come along, and wait forever.
    if _argon2 is None or _argon2[0] != os.getpid():
        _argon2 = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2"))
    return await asyncio.get_running_loop().run_in_executor(_argon2[1], fn, *args)


_turns: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hash_turn() -> asyncio.Lock:
    """Held for one sign-in's check, from counting the attempt to its hash, so
    that a process checks one at a time (as its one hashing thread would anyway)."""
    # One per event loop: a lock belongs to the loop that first waits on it.
    loop = asyncio.get_running_loop()
    lock = _turns.get(loop)
    if lock is None:
        lock = _turns[loop] = asyncio.Lock()
    return lock


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError("weak_password", f"the password must have at least {MIN_PASSWORD} characters", min=MIN_PASSWORD)


def verify_password(stored_hash: str | None, password: str) -> bool:
    # Made (once) whether or not the account exists, so that the first sign-in
    # costs the same either way too.
    dummy = _dummy_hash()
    try:
        return _hasher.verify(stored_hash or dummy, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


async def add_org(conn: asyncpg.Connection, code: str, name: str, kind: str, parent_code: str | None = None) -> int:
    if not _ORG_CODE.match(code):
        raise UserError(
            "bad_org_code", f"organisation code {code!r} must be letters, digits, '.', '_' or '-' (up to 64)", org=code
        )
    if kind not in ORG_KINDS:
        raise UserError(
            "bad_org_kind",
            f"organisation kind must be one of {', '.join(ORG_KINDS)}, not {kind!r}",
            kind=kind,
            kinds=", ".join(ORG_KINDS),
        )
    if not name.strip():
        raise UserError("bad_org_name", "give the organisation a name (--name)")
    parent_id = None
    if parent_code:
        if kind != "school":
            raise UserError("bad_org_parent", "only a school can belong to a department (--parent)")
        parent = await conn.fetchrow("SELECT id, kind FROM orgs WHERE code = $1", parent_code)
        if parent is None:
            raise NotFound(
                "unknown_org",
                f"no organisation with code {parent_code!r}: create it first with `cbt org add`",
                org=parent_code,
            )
        if parent["kind"] != "department":
            raise UserError(
                "bad_org_parent",
                f"{parent_code!r} is a school; a school's parent must be a department",
                org=parent_code,
            )
        parent_id = parent["id"]
    try:
        async with conn.transaction():
            org_id = await conn.fetchval(
                "INSERT INTO orgs (code, name, kind, parent_id) VALUES ($1, $2, $3, $4) RETURNING id",
                code,
                name.strip(),
                kind,
                parent_id,
            )
            if parent_id is None:  # a department's schools use its subjects
                await subjects.seed(conn, org_id)
            return org_id
    except asyncpg.UniqueViolationError:
        raise Conflict("org_exists", f"an organisation with code {code!r} already exists", org=code) from None


async def add_user(
    conn: asyncpg.Connection, username: str, role: str, org_code: str | None, password: str, display_name: str = ""
) -> int:
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise UserError("bad_username", "a username is 2-64 characters: lower-case letters, digits, '.', '_', '-'")
    if role not in ROLES:
        raise UserError(
            "bad_role", f"role must be one of {', '.join(ROLES)}, not {role!r}", role=role, roles=", ".join(ROLES)
        )
    check_password_rules(password)
    if org_code:
        org_id = await conn.fetchval("SELECT id FROM orgs WHERE code = $1", org_code)
        if org_id is None:
            raise NotFound(
                "unknown_org",
                f"no organisation with code {org_code!r}: create it with `cbt org add` or check --org",
                org=org_code,
            )
    else:
        rows = await conn.fetch("SELECT id FROM orgs ORDER BY id LIMIT 2")
        if len(rows) != 1:
            raise UserError(
                "org_required",
                "say which organisation the user belongs to with --org CODE"
                + (" (create one first with `cbt org add`)" if not rows else ""),
            )
        org_id = rows[0]["id"]
    password_hash = await off_loop(hash_password, password)
    try:
        return await conn.fetchval(
            "INSERT INTO users (username, display_name, role, org_id, password_hash)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            username,
            display_name.strip(),
            role,
            org_id,
            password_hash,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(
            "user_exists", f"the username {username!r} is taken; choose another", username=username
        ) from None


# The org itself, and its schools when it is a department.
_VISIBLE_ORGS = "SELECT id FROM orgs WHERE id = $1 OR parent_id = $1"

_LIST_USERS = """
SELECT u.id, u.username, u.display_name, u.role, u.active, o.code AS org_code, o.name AS org_name
FROM users u JOIN orgs o ON o.id = u.org_id
WHERE o.id = $1 OR o.parent_id = $1
ORDER BY o.code, u.username
"""


async def visible_org_ids(conn: asyncpg.Connection, staff: Staff) -> list[int]:
    """The organisations whose data this staff member may see."""
    return [r["id"] for r in await conn.fetch(_VISIBLE_ORGS, staff.org_id)]


async def list_users(conn: asyncpg.Connection, staff: Staff) -> list[asyncpg.Record]:
    return await conn.fetch(_LIST_USERS, staff.org_id)


async def list_orgs(conn: asyncpg.Connection, staff: Staff) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, code, name, kind FROM orgs WHERE id = $1 OR parent_id = $1 ORDER BY kind, code",
        staff.org_id,
    )
