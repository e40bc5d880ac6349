"""Organisations, staff accounts and who sees whose data."""

import asyncio
import subprocess
import sys
import threading
import time

import pytest
from support.accounts import PASSWORD, csrf_of, login

from cbt import accounts
from cbt.platform.errors import Conflict, NotFound, UserError


async def staff_of(conn, username):
    row = await conn.fetchrow(
        "SELECT u.id, u.username, u.display_name, u.role, u.org_id, o.code, o.kind "
        "FROM users u JOIN orgs o ON o.id = u.org_id WHERE username = $1",
        username,
    )
    return accounts.Staff(*row.values())


async def test_department_sees_its_schools_school_sees_only_itself(conn, staff):
    dept = await staff_of(conn, "sgd-admin")
    school_a = await staff_of(conn, "admin")
    dept_users = {r["username"] for r in await accounts.list_users(conn, dept)}
    a_users = {r["username"] for r in await accounts.list_users(conn, school_a)}
    assert {"sgd-admin", "teacher", "b-teacher"} <= dept_users
    assert "teacher" in a_users
    assert "b-teacher" not in a_users and "sgd-admin" not in a_users
    assert {r["code"] for r in await accounts.list_orgs(conn, dept)} == {"SGD-T", "THPT-A", "THPT-B"}
    assert {r["code"] for r in await accounts.list_orgs(conn, school_a)} == {"THPT-A"}


async def test_users_page_shows_only_visible_accounts(client, staff):
    await login(client, "b-admin")
    html = await (await client.get("/staff/users")).text()
    assert "b-teacher" in html
    assert ">teacher<" not in html and "sgd-admin" not in html


async def test_admin_creates_account_in_own_school(client, staff, conn):
    await login(client, "admin")
    token = await csrf_of(client, "/staff/users")
    resp = await client.post(
        "/staff/users",
        data={
            "csrf_token": token,
            "username": "New.Teacher",
            "display_name": "Phạm Thị Mới",
            "role": "teacher",
            "org": "THPT-A",
            "password": "a long password",
        },
        allow_redirects=False,
    )
    assert resp.status == 303
    row = await conn.fetchrow("SELECT role, display_name FROM users WHERE username = 'new.teacher'")
    assert row["role"] == "teacher" and row["display_name"] == "Phạm Thị Mới"
    assert (await login(client, "new.teacher", "a long password")).status == 303


async def test_school_admin_cannot_create_account_in_another_school(client, staff, conn):
    await login(client, "admin")
    token = await csrf_of(client, "/staff/users")
    resp = await client.post(
        "/staff/users",
        data={
            "csrf_token": token,
            "username": "intruder",
            "role": "admin",
            "org": "THPT-B",
            "password": "a long password",
        },
    )
    assert resp.status == 400
    assert 'data-code="unknown_org"' in await resp.text()
    assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'intruder'") == 0


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"username": "x", "role": "teacher", "password": "a long password"}, "bad_username"),
        ({"username": "ok-name", "role": "superuser", "password": "a long password"}, "bad_role"),
        ({"username": "ok-name", "role": "teacher", "password": "short"}, "weak_password"),
        ({"username": "teacher", "role": "teacher", "password": "a long password"}, "user_exists"),
    ],
)
async def test_bad_account_form_says_what_to_fix(client, staff, conn, fields, code):
    await login(client, "admin")
    token = await csrf_of(client, "/staff/users")
    before = await conn.fetchval("SELECT count(*) FROM users")
    resp = await client.post("/staff/users", data={"csrf_token": token, "org": "THPT-A", **fields})
    assert resp.status in (400, 409)
    html = await resp.text()
    assert f'data-code="{code}"' in html
    assert "a long password" not in html  # the password is never echoed back
    assert await conn.fetchval("SELECT count(*) FROM users") == before


async def test_add_org_rules(conn):
    await accounts.add_org(conn, "SGD-X", "Sở X", "department")
    await accounts.add_org(conn, "THPT-X", "Trường X", "school", "SGD-X")
    with pytest.raises(Conflict):
        await accounts.add_org(conn, "SGD-X", "again", "department")
    with pytest.raises(NotFound):
        await accounts.add_org(conn, "THPT-Y", "Y", "school", "NOPE")
    with pytest.raises(UserError, match="parent must be a department"):
        await accounts.add_org(conn, "THPT-Z", "Z", "school", "THPT-X")
    with pytest.raises(UserError, match="only a school"):
        await accounts.add_org(conn, "SGD-Y", "Y", "department", "SGD-X")
    with pytest.raises(UserError, match="kind"):
        await accounts.add_org(conn, "Q", "Q", "university")
    with pytest.raises(UserError, match="code"):
        await accounts.add_org(conn, "bad code!", "Q", "school")


async def test_add_user_needs_org_when_there_are_several(conn):
    with pytest.raises(UserError, match="cbt org add"):
        await accounts.add_user(conn, "lonely", "admin", None, PASSWORD)
    await accounts.add_org(conn, "ONLY", "Only", "department")
    await accounts.add_user(conn, "lonely", "admin", None, PASSWORD)  # the only org is implied
    await accounts.add_org(conn, "SECOND", "Second", "department")
    with pytest.raises(UserError, match="--org"):
        await accounts.add_user(conn, "another", "admin", None, PASSWORD)


async def test_username_is_case_insensitive_and_unique(conn):
    await accounts.add_org(conn, "ONLY", "Only", "department")
    await accounts.add_user(conn, "Nguyen.An", "teacher", "ONLY", PASSWORD)
    with pytest.raises(Conflict):
        await accounts.add_user(conn, "nguyen.an", "teacher", "ONLY", PASSWORD)


def test_password_hashes_are_argon2_and_verify():
    h = accounts.hash_password("một mật khẩu dài")
    assert h.startswith("$argon2id$")
    assert accounts.verify_password(h, "một mật khẩu dài")
    assert not accounts.verify_password(h, "một mật khẩu sai")
    assert not accounts.verify_password(None, "anything")
    assert not accounts.verify_password("not a hash", "anything")


async def test_passwords_are_hashed_one_at_a_time_off_the_event_loop():
    # argon2 takes 64 MiB a hash: a room of proctors signing in at once must
    # not run a hash per thread of the default pool.
    inside = most = 0
    lock = threading.Lock()

    def work() -> str:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)
        with lock:
            inside -= 1
        return threading.current_thread().name

    names = await asyncio.gather(*(accounts.off_loop(work) for _ in range(4)))
    assert most == 1
    assert len(set(names)) == 1 and names[0].startswith("argon2") and names[0] != threading.current_thread().name


# Every CLI command imports cbt.accounts; a hash there cost each one ~0.6 s.
LAZY = """
import argon2
hashed = []
real = argon2.PasswordHasher.hash
argon2.PasswordHasher.hash = lambda self, *args, **kw: hashed.append(1) or real(self, *args, **kw)
import cbt.cli
from cbt import accounts
print(len(hashed))
# An unknown username is still checked against a hash, as costly as a real one.
assert not accounts.verify_password(None, "whatever")
assert not accounts.verify_password(accounts.hash_password("a real one"), "whatever")
print(len(hashed))
"""


def test_nothing_is_hashed_at_import_and_unknown_users_still_cost_a_hash():
    done = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "2"]  # the dummy on first need, then the real one


# `cbt demo` hashes the demo passwords in the supervisor, then forks the workers.
FORKED = """
import asyncio, os
from cbt import accounts
assert asyncio.run(accounts.off_loop(accounts.hash_password, "before the fork")).startswith("$argon2")
pid = os.fork()
if pid == 0:
    ok = asyncio.run(asyncio.wait_for(accounts.off_loop(accounts.verify_password, None, "x"), 20)) is False
    os._exit(0 if ok else 1)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_forked_worker_hashes_on_a_thread_of_its_own():
    done = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr
