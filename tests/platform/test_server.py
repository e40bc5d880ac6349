"""`cbt serve` and the other commands as a user runs them: real processes,
the embedded PostgreSQL, signals, and one-line errors."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import asyncpg
import pytest
from support.cli import PY, cbt, env_for, free_port, one_line_error


def postgres_pids_for(data_dir: Path) -> list[int]:
    """PostgreSQL processes whose command line names this data dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next((ln for ln in (entry / "status").read_text().splitlines() if ln.startswith("State:")), "")
        except OSError:
            continue
        if str(data_dir) in cmd and "postgres" in cmd and "zombie" not in state:
            pids.append(int(entry.name))
    return pids


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status
    except OSError:
        return 0


def wait_healthy(proc: subprocess.Popen, port: int, timeout: float = 90) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"cbt exited early ({proc.returncode}): {proc.stderr.read()}")
        if healthz(port) == 200:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError("cbt did not become healthy")


def wait_gone(pids_fn, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = pids_fn()
        if not left:
            return []
        time.sleep(0.2)
    return pids_fn()


@pytest.fixture(scope="module")
def data_dir():
    # Not pytest's tmp_path, whose 0700 parents PostgreSQL's own user cannot
    # walk when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="cbt-test-serve-"))
    root.chmod(0o755)
    yield root / "data"
    subprocess.run(["pkill", "-f", str(root)], check=False)


def start_serve(data_dir: Path, port: int, workers: int = 2, **extra) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-m", "cbt", "serve", "--port", str(port), "--workers", str(workers)],
        env=env_for(data_dir, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_serve_ctrl_c_leaves_no_postgres(data_dir):
    port = free_port()
    proc = start_serve(data_dir, port, workers=2)
    try:
        wait_healthy(proc, port)
        assert postgres_pids_for(data_dir), "the embedded PostgreSQL should be running"
        assert len(children_of(proc.pid)) >= 2  # the workers (PostgreSQL is daemonised)
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert wait_gone(lambda: postgres_pids_for(data_dir)) == []
    assert healthz(port) == 0


def test_sigterm_to_the_supervisor_stops_workers_and_postgres(data_dir):
    port = free_port()
    proc = start_serve(data_dir, port, workers=2)
    try:
        wait_healthy(proc, port)
        workers = children_of(proc.pid)
        proc.send_signal(signal.SIGTERM)  # as a service manager that signals only the main pid
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert (
        wait_gone(
            lambda: [
                p
                for p in workers
                if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()
            ]
        )
        == []
    )
    assert wait_gone(lambda: postgres_pids_for(data_dir)) == []


def test_second_server_on_the_same_data_dir_is_refused_and_a_killed_worker_is_replaced(data_dir):
    port = free_port()
    proc = start_serve(data_dir, port, workers=2)
    try:
        wait_healthy(proc, port)
        second = cbt("serve", "--port", str(free_port()), env=env_for(data_dir))
        line = one_line_error(second)
        assert "in use by another cbt server" in line and str(proc.pid) in line

        # Commands other than serve borrow the running server's PostgreSQL.
        pw = data_dir.parent / "pw.txt"
        pw.write_text("a long enough password\n")
        assert (
            cbt("org", "add", "SGD-Z", "--name", "Sở Z", "--kind", "department", env=env_for(data_dir)).returncode == 0
        )
        added = cbt("user", "add", "zadmin", "--role", "admin", "--password-file", str(pw), env=env_for(data_dir))
        assert added.returncode == 0, added.stderr
        assert healthz(port) == 200

        victim = children_of(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            kids = [k for k in children_of(proc.pid) if k != victim]
            if len(kids) >= 2:
                break
            time.sleep(0.2)
        assert len([k for k in children_of(proc.pid) if k != victim]) >= 2
        assert all(healthz(port) == 200 for _ in range(10))
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    assert wait_gone(lambda: postgres_pids_for(data_dir)) == []


def test_port_in_use_is_one_clear_line(data_dir):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = one_line_error(cbt("serve", "--port", str(port), env=env_for(data_dir)))
    assert f"port {port}" in line and "--port" in line
    assert wait_gone(lambda: postgres_pids_for(data_dir)) == []


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://cbt:secretpw@127.0.0.1:1/cbt", "nothing is listening"),
        ("mysql://cbt@127.0.0.1/cbt", "postgresql://USER:PASSWORD@HOST:PORT/DBNAME"),
        ("postgresql://cbt:secretpw@127.0.0.1:notaport/cbt", "not a valid PostgreSQL URL"),
    ],
)
def test_bad_database_url_is_one_clear_line(tmp_path, url, fragment):
    result = cbt("serve", "--port", str(free_port()), env=env_for(tmp_path / "d", CBT_DATABASE_URL=url))
    line = one_line_error(result)
    assert fragment in line
    assert "secretpw" not in line


async def test_server_refuses_a_database_newer_than_its_code(dsn, tmp_path):
    conn = await asyncpg.connect(dsn)
    await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'x')")
    await conn.close()
    env = env_for(tmp_path / "d", CBT_DATABASE_URL=dsn)
    line = one_line_error(cbt("serve", "--port", str(free_port()), env=env))
    assert "version 999" in line and "upgrade cbt" in line
    status = cbt("db", "status", env=env)
    assert status.returncode == 1 and "newer than this cbt" in status.stderr


async def test_db_status_and_upgrade_on_an_external_database(empty_dsn, tmp_path):
    env = env_for(tmp_path / "d", CBT_DATABASE_URL=empty_dsn)
    status = cbt("db", "status", env=env)
    assert status.returncode == 0 and "schema version 0" in status.stdout
    assert "pending: 001_accounts" in status.stdout
    upgrade = cbt("db", "upgrade", env=env)
    assert upgrade.returncode == 0 and "001_accounts" in upgrade.stdout
    again = cbt("db", "upgrade", env=env)
    assert "nothing to do" in again.stdout


async def test_user_and_org_commands(dsn, tmp_path):
    env = env_for(tmp_path / "d", CBT_DATABASE_URL=dsn)
    pw = tmp_path / "pw"
    pw.write_text("mật khẩu đủ dài\n")
    assert cbt("org", "add", "SGD-Q", "--name", "Sở Q", "--kind", "department", env=env).returncode == 0
    assert cbt("org", "add", "THPT-Q", "--name", "Trường Q", "--parent", "SGD-Q", env=env).returncode == 0
    ok = cbt("user", "add", "qteacher", "--role", "teacher", "--org", "THPT-Q", "--password-file", str(pw), env=env)
    assert ok.returncode == 0 and "qteacher (teacher) created" in ok.stdout
    assert "exists" in one_line_error(cbt("org", "add", "SGD-Q", "--name", "again", "--kind", "department", env=env))
    assert "taken" in one_line_error(
        cbt("user", "add", "qteacher", "--role", "teacher", "--org", "THPT-Q", "--password-file", str(pw), env=env)
    )
    assert "no organisation with code 'NOPE'" in one_line_error(
        cbt("user", "add", "x2", "--role", "teacher", "--org", "NOPE", "--password-file", str(pw), env=env)
    )
    assert "--password-file" in one_line_error(
        cbt("user", "add", "x3", "--role", "teacher", "--org", "THPT-Q", env=env, input="")
    )
    short = tmp_path / "short"
    short.write_text("abc\n")
    assert "at least 10 characters" in one_line_error(
        cbt("user", "add", "x4", "--role", "teacher", "--org", "THPT-Q", "--password-file", str(short), env=env)
    )
    assert "cannot read" in one_line_error(
        cbt("user", "add", "x5", "--role", "teacher", "--password-file", str(tmp_path / "nope"), env=env)
    )
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == 1
        assert await conn.fetchval("SELECT count(*) FROM orgs") == 2
    finally:
        await conn.close()
    bad_role = cbt("user", "add", "x6", "--role", "superuser", env=env)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr


def test_demo_twice_duplicates_nothing(data_dir):
    first = cbt("demo", "--no-serve", env=env_for(data_dir))
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("password: ") == 5
    # The demo teacher and reviewer write and review the demo bank's subject, so review works at once.
    assert first.stdout.count("(subject toan)") == 2
    assert "Demo bank: imported demo-thpt" in first.stdout
    # The department's key on the server, for the school's reviewer to sign with (its passphrase shown once).
    assert first.stdout.count("passphrase: ") == 1
    second = cbt("demo", "--no-serve", env=env_for(data_dir))
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("password: ") == 0 and second.stdout.count("(exists") == 5
    assert "already imported" in second.stdout
    assert second.stdout.count("passphrase: ") == 0 and "Demo signing key" in second.stdout
    keys = cbt("keys", "list", env=env_for(data_dir))
    assert keys.stdout.count("trusted") == 2 and "(for DEMO-SGD)" in keys.stdout
    assert wait_gone(lambda: postgres_pids_for(data_dir)) == []


# A worker's stop, slowed down, with a second SIGTERM arriving in the middle of
# it (a worker gets one from the supervisor and one from a process-group kill).
STOPPED_TWICE = """
import asyncio, os, signal
from aiohttp import web
from cbt.platform.server import run_app

async def signal_me(app):
    asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), signal.SIGTERM)

async def slow_cleanup(app):
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.5)
    print("cleanup finished", flush=True)

app = web.Application()
app.on_startup.append(signal_me)
app.on_cleanup.append(slow_cleanup)
run_app(app, "127.0.0.1", {port}, reuse_port=False)
"""


def test_a_second_stop_signal_does_not_cut_the_stop_short():
    result = subprocess.run(
        [PY, "-c", STOPPED_TWICE.format(port=free_port())], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["cleanup finished"], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the PostgreSQL-user path runs only as root (CI runs as root)")
@pytest.mark.parametrize("where", ["mktemp-data-dir", "home-0700"])
def test_first_command_as_root_in_a_private_folder(where):
    """As root, `cbt demo --no-serve` then `cbt serve` work with the data dir in a
    0700 folder: `mktemp -d` as the data dir, or ./cbt-data in a 0700 home."""
    outer = Path(tempfile.mkdtemp(prefix="cbt-test-root-"))
    outer.chmod(0o755)
    try:
        if where == "mktemp-data-dir":
            private = Path(tempfile.mkdtemp(dir=outer))  # 0700, as mktemp -d makes it
            data_dir, cwd, home = private, outer, outer
        else:
            private = outer / "home"
            private.mkdir(mode=0o700)
            data_dir, cwd, home = private / "cbt-data", private, private
        assert private.stat().st_mode & 0o777 == 0o700
        env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
        env.update(HOME=str(home), CBT_LOG_LEVEL="WARNING")
        if where == "mktemp-data-dir":
            env["CBT_DATA_DIR"] = str(data_dir)

        first = subprocess.run(
            [PY, "-m", "cbt", "demo", "--no-serve"], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
        )
        assert first.returncode == 0, first.stderr
        # The one folder PostgreSQL's user could not pass got search permission for
        # others, nothing more, and the person running cbt was told in one line.
        assert private.stat().st_mode & 0o777 == 0o701
        told = [ln for ln in first.stderr.splitlines() if "chmod o+x" in ln]
        assert len(told) == 1 and str(private) in told[0], first.stderr
        again = subprocess.run(
            [PY, "-m", "cbt", "demo", "--no-serve"], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
        )
        assert again.returncode == 0, again.stderr
        assert "chmod" not in again.stderr

        port = free_port()
        proc = subprocess.Popen(
            [PY, "-m", "cbt", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            wait_healthy(proc, port)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        assert proc.returncode == 0
        assert wait_gone(lambda: postgres_pids_for(data_dir)) == []
    finally:
        subprocess.run(["pkill", "-f", str(outer)], check=False)
        shutil.rmtree(outer, ignore_errors=True)
