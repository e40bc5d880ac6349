"""Shared fixtures: one real PostgreSQL per test run, a fresh database per test.

With CBT_DATABASE_URL set, the tests use that server (its user needs
CREATEDB); otherwise they start the embedded PostgreSQL in a temporary
directory and stop it at the end. Every test that needs a database gets its
own, cloned from a migrated template, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from cbt import accounts
from cbt.platform import db
from cbt.platform.app import create_app
from cbt.platform.config import Settings

# Before the first import from support/, so its helpers' failed asserts say
# what they compared, as a test module's do.
pytest.register_assert_rewrite("support")

from support.accounts import PASSWORD, STAFF_USERS  # noqa: E402
from support.database import with_database  # noqa: E402

# The fixtures that many test modules use; a test module asks for one by name
# and never imports another test module.
pytest_plugins = [
    "support.bank",
    "support.delivery",
    "support.proctor",
    "support.results",
    "support.sets",
    "support.workspace",
]


@pytest.fixture(scope="session")
def pg_admin_dsn():
    """DSN of a database on the test server from which others are created."""
    url = os.environ.get("CBT_DATABASE_URL")
    if url:
        yield url
        return
    # Not pytest's tmp_path: its parents are 0700, and as root PostgreSQL runs
    # as another user that must be able to reach its directory.
    root = Path(tempfile.mkdtemp(prefix="cbt-test-pg-"))
    root.chmod(0o755)
    pg = EmbeddedForTests(root)
    sock = pg.start()
    try:
        yield pg.dsn(sock, "postgres")
    finally:
        pg.stop()
        pg.release()
        shutil.rmtree(root, ignore_errors=True)


class EmbeddedForTests(db.EmbeddedPostgres):
    def __init__(self, root: Path):
        super().__init__(root)
        self.acquire(exclusive=True)


_counter = itertools.count()


async def _admin(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn)


async def create_database(admin_dsn: str, template: str | None = None) -> str:
    name = f"cbt_t{os.getpid()}_{next(_counter)}"
    assert re.fullmatch(r"[a-z0-9_]+", name)
    conn = await _admin(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        tpl = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{tpl}')
    finally:
        await conn.close()
    return name


async def drop_database(admin_dsn: str, name: str) -> None:
    conn = await _admin(admin_dsn)
    try:
        for attempt in range(20):
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                # A non-superuser (CBT_DATABASE_URL) cannot end an autovacuum
                # worker that is still in the database: wait for it to finish.
                if attempt == 19:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_db(pg_admin_dsn):
    name = await create_database(pg_admin_dsn)
    conn = await asyncpg.connect(with_database(pg_admin_dsn, name))
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    yield name
    await drop_database(pg_admin_dsn, name)


@pytest.fixture
async def empty_dsn(pg_admin_dsn):
    """A brand-new database with no schema at all."""
    name = await create_database(pg_admin_dsn)
    yield with_database(pg_admin_dsn, name)
    await drop_database(pg_admin_dsn, name)


@pytest.fixture(scope="session")
async def staff_template(pg_admin_dsn, template_db):
    """The migrated template plus the organisations and staff of STAFF_USERS.

    Hashing passwords with argon2 is deliberately slow, so it is done once
    per run here rather than in every test."""
    name = await create_database(pg_admin_dsn, template=template_db)
    conn = await asyncpg.connect(with_database(pg_admin_dsn, name))
    try:
        await accounts.add_org(conn, "SGD-T", "Sở thử nghiệm", "department")
        await accounts.add_org(conn, "THPT-A", "Trường A", "school", "SGD-T")
        await accounts.add_org(conn, "THPT-B", "Trường B", "school", "SGD-T")
        for username, role, org in STAFF_USERS:
            await accounts.add_user(conn, username, role, org, PASSWORD)
    finally:
        await conn.close()
    yield name
    await drop_database(pg_admin_dsn, name)


@pytest.fixture
async def dsn(request, pg_admin_dsn, template_db, staff_template):
    """A migrated database of this test's own (with the staff accounts when
    the test asks for the `staff` fixture)."""
    template = staff_template if "staff" in request.fixturenames else template_db
    name = await create_database(pg_admin_dsn, template=template)
    yield with_database(pg_admin_dsn, name)
    await drop_database(pg_admin_dsn, name)


@pytest.fixture
async def conn(dsn):
    c = await asyncpg.connect(dsn)
    yield c
    await c.close()


@pytest.fixture
def settings(dsn, tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=dsn,
        secret_key="test-secret-" + "x" * 40,
        pool_min=1,
        pool_max=4,
    )


@pytest.fixture
async def client(settings, aiohttp_client):
    # settings (and so the database) before aiohttp_client, so the app and its
    # pool close before the test database is dropped.
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def staff(dsn):
    """Ask for this to get a database that holds STAFF_USERS (see dsn)."""
    return {username: role for username, role, _ in STAFF_USERS}
