"""Migrations: fresh, repeated, concurrent, and refusal of a newer schema."""

import asyncio
import re

import asyncpg
import pytest
from support.paths import REPO

from cbt.platform import db


async def test_fresh_database_migrates_to_latest(empty_dsn):
    conn = await asyncpg.connect(empty_dsn)
    try:
        applied = await db.migrate(conn)
        assert [m.version for m in applied] == [m.version for m in db.migrations()]
        status = await db.schema_status(conn)
        assert status.current == status.latest and not status.pending
        tables = {
            r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"orgs", "users", "sessions", "login_failures", "schema_migrations"} <= tables
    finally:
        await conn.close()


async def test_repeated_migrate_is_a_no_op(conn):
    before = await conn.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert await db.migrate(conn) == []
    after = await conn.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert before == after


async def test_concurrent_start_applies_each_migration_once(empty_dsn):
    conns = [await asyncpg.connect(empty_dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.migrate(c) for c in conns))
        applied = [m.version for r in results for m in r]
        assert sorted(applied) == [m.version for m in db.migrations()]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(db.migrations())
    finally:
        for c in conns:
            await c.close()


async def test_newer_database_is_refused(conn):
    await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'future', 'x')")
    with pytest.raises(db.SchemaTooNew, match=r"version 999.*upgrade cbt"):
        await db.migrate(conn)
    with pytest.raises(db.SchemaTooNew):
        await db.check_schema(conn)


async def test_schema_behind_the_code_is_reported_by_check(empty_dsn):
    conn = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(db.DatabaseError, match="cbt db upgrade"):
            await db.check_schema(conn)
    finally:
        await conn.close()


async def test_failed_migration_leaves_nothing_half_applied(empty_dsn, monkeypatch):
    good = db.migrations()
    broken = db.Migration(len(good) + 1, "broken", "CREATE TABLE half_done (x int); SELECT 1/0;")
    monkeypatch.setattr(db, "migrations", lambda: [*good, broken])
    conn = await asyncpg.connect(empty_dsn)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await db.migrate(conn)
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") == len(good)
        # The lock was released: another migrate can run (and fails the same way).
        with pytest.raises(asyncpg.DivisionByZeroError):
            await asyncio.wait_for(db.migrate(conn), 10)
    finally:
        await conn.close()


def test_migration_files_are_numbered_without_gaps():
    versions = [m.version for m in db.migrations()]
    assert versions == list(range(1, len(versions) + 1))


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://cbt:pw@127.0.0.1:1/cbt", "nothing is listening"),
        ("postgresql://cbt:pw@[::1]:1/cbt", "nothing is listening"),
        ("postgresql://cbt:pw@127.0.0.1:notaport/cbt", "not a valid PostgreSQL URL"),
    ],
)
async def test_connect_errors_are_one_clear_line(url, fragment):
    with pytest.raises(db.DatabaseError) as info:
        await db.connect(url)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert "pw@" not in message  # the password is never printed


async def test_wrong_database_name_is_explained(pg_admin_dsn):
    from support.database import with_database

    with pytest.raises(db.DatabaseError, match="does not exist"):
        await db.connect(with_database(pg_admin_dsn, "no_such_db_here"))


async def test_pooled_connections_skip_the_reset_round_trip_but_not_a_rollback(dsn):
    """The pool sends no reset query on release (one round trip fewer per
    request), so nothing may leave session state behind: what cbt uses is
    transaction-scoped, and an open transaction is still rolled back."""
    pool = await db.create_pool(dsn, 1, 1)  # one connection: every acquire gets the same one
    try:
        async with pool.acquire() as conn:
            assert isinstance(conn, db.PooledConnection)
            assert conn.get_reset_query() == ""
            pid = conn.get_server_pid()
            async with conn.transaction():
                assert await conn.fetchval("SELECT pg_try_advisory_xact_lock(1, 2)")
            # A transaction left open, as a request failing half-way would leave it.
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE leftover (x int) ON COMMIT DROP")
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == pid
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT to_regclass('pg_temp.leftover')") is None
            locks = await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            assert locks == 0
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
    finally:
        await pool.close()


def test_no_session_state_on_pooled_connections():
    """Session-level locks, LISTEN and SET would outlive a request on a pooled
    connection now that release does not reset it: only the migrator (own
    connection) and the proctor listener (own connection) may use them."""
    allowed = {"db.py": "pg_advisory_lock", "proctor.py": "add_listener"}
    pattern = re.compile(r"pg_advisory_lock\(|add_listener\(|['\"](?:LISTEN|SET (?!LOCAL))|set_config\(")
    for path in sorted((REPO / "cbt").rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            found = pattern.search(line)
            if found and allowed.get(path.name, "\0") not in line:
                raise AssertionError(f"{path.name}: session state on a pooled connection? {line.strip()}")


async def test_the_tables_every_save_writes_are_kept_cheap_to_vacuum(conn):
    # Migration 013: no statistics on answer and event bodies (ANALYZE sorted
    # sampled jsonb for nothing, stalling saves once a minute under load), and
    # no truncation of the audit queue (an exclusive lock every save waits on).
    targets = {
        (r["table"], r["column"]): r["target"]
        for r in await conn.fetch(
            """SELECT c.relname AS table, a.attname AS column, a.attstattarget AS target
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           WHERE c.relname IN ('response_history', 'responses', 'audit_events', 'audit_pending', 'attempts')
             AND a.attname IN ('value', 'content', 'layout')"""
        )
    }
    assert targets == {
        ("response_history", "value"): 0,
        ("responses", "value"): 0,
        ("audit_events", "content"): 0,
        ("audit_pending", "content"): 0,
        ("attempts", "layout"): 0,
    }
    # ANALYZE samples 300 rows per unit of the largest target: 3,000 on the tables that grow with every save.
    largest = {
        r["table"]: r["target"]
        for r in await conn.fetch(
            """SELECT c.relname AS table, max(a.attstattarget) AS target FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           WHERE c.relname IN ('response_history', 'responses', 'audit_events') AND a.attnum > 0
             AND NOT a.attisdropped GROUP BY c.relname"""
        )
    }
    assert largest == {"response_history": 10, "responses": 10, "audit_events": 10}
    options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'audit_pending'")
    assert options == ["vacuum_truncate=off"]
