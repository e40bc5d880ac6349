"""`cbt serve`: N worker processes on one port (SO_REUSEPORT), each with its own
pool, supervised by the process that owns the embedded PostgreSQL.

The supervisor starts PostgreSQL (or uses CBT_DATABASE_URL), migrates once,
forks the workers, restarts a worker that dies, and on SIGINT/SIGTERM stops
the workers and then PostgreSQL, so Ctrl-C leaves nothing running.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import signal
import socket
import sys
import time

from aiohttp import web

from cbt.platform import db
from cbt.platform.app import create_app
from cbt.platform.config import Settings

log = logging.getLogger("cbt.server")

SHUTDOWN_TIMEOUT = 10  # seconds a worker may spend finishing requests
# A worker that dies this soon after starting, this many times in a row, is
# failing for a reason restarts will not fix.
FAST_CRASH_SECONDS = 5
FAST_CRASH_LIMIT = 3


class ServeError(Exception):
    pass


def check_port_free(host: str, port: int) -> None:
    """Fail early with a clear line if something else holds the port.

    The probe binds without SO_REUSEPORT so it also detects another cbt.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ServeError(
                    f"port {port} on {host} is already in use: stop the program using it or choose "
                    "another with --port (or CBT_PORT)"
                ) from None
            raise ServeError(f"cannot listen on {host}:{port}: {e.strerror}; check --host and --port") from None


async def prepare_database(settings: Settings) -> None:
    """Migrate once in the supervisor, so a bad database fails before any fork."""
    conn = await db.connect(settings.database_url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux and macOS; a dependency there), else asyncio's own.

    Under 5,000 students a worker spends much of its time in the event loop and
    its socket writes; uvloop's are in C (measured in docs/design.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows, or installed without it
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_worker(settings: Settings, host: str, port: int, reuse_port: bool) -> None:
    app = create_app(settings.replace(migrate_on_start=False))
    # The modules and the app live as long as the worker: out of the garbage
    # collector's way, so its full collections (tens of ms each under load)
    # scan only what requests leave behind.
    gc.collect()
    gc.freeze()
    # Young collections every 50,000 allocations, not 700: under load a
    # request's objects then mostly die before one, instead of being promoted
    # and making full collections (up to 0.3 s under load) frequent.
    gc.set_threshold(50_000, 20, 100)
    run_app(app, host, port, reuse_port)


def run_app(app: web.Application, host: str, port: int, reuse_port: bool) -> None:
    """aiohttp's run_app on our event loop, stopped gracefully by the first SIGINT or SIGTERM."""
    loop = event_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stop_once, loop)
    web.run_app(
        app,
        host=host,
        port=port,
        reuse_port=reuse_port,
        access_log=None,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handle_signals=False,
        loop=loop,
    )


def _stop_once(loop: asyncio.AbstractEventLoop) -> None:
    """Begin a graceful stop, and ignore the stop signals that follow.

    A worker commonly gets two: one from the supervisor and one from a
    process-group kill (Ctrl-C in a terminal, systemd's default KillMode). With
    aiohttp's own handlers the second raised again inside the shutdown and cut
    it short, leaving the pools and the save queue half-closed."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.remove_signal_handler(signum)
        signal.signal(signum, signal.SIG_IGN)
    raise web.GracefulExit()


def _worker_main(settings: Settings, host: str, port: int) -> None:
    # A fresh process image as far as signals go: run_app installs its own.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 0
    try:
        run_worker(settings, host, port, reuse_port=True)
    except db.DatabaseError as e:
        log.error("worker cannot start: %s", e)
        code = 3
    except Exception:
        log.exception("worker crashed")
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


def serve(settings: Settings, dsn: str, host: str, port: int, workers: int) -> int:
    """Serve until SIGINT/SIGTERM. dsn is the database to use (embedded or external)."""
    settings = settings.replace(database_url=dsn)
    check_port_free(host, port)
    asyncio.run(prepare_database(settings))
    url_host = f"[{host}]" if ":" in host else host
    log.info("serving", extra={"fields": {"url": f"http://{url_host}:{port}/", "workers": workers}})
    print(
        f"cbt is serving on http://{url_host}:{port}/ with {workers} worker(s); Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    if workers == 1:
        run_worker(settings, host, port, reuse_port=False)
        return 0
    return _supervise(settings, host, port, workers)


def _supervise(settings: Settings, host: str, port: int, workers: int) -> int:
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    children: dict[int, float] = {}
    fast_crashes = 0

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            _worker_main(settings, host, port)
        children[pid] = time.monotonic()

    try:
        for _ in range(workers):
            spawn()
        while not stopping:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid, status = 0, 0
            if pid == 0:
                time.sleep(0.2)
                continue
            started = children.pop(pid, None)
            if started is None or stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            log.warning("worker %d exited (%s); starting another", pid, code)
            if code == 3:
                raise ServeError("a worker could not reach the database; see the log above")
            fast_crashes = fast_crashes + 1 if time.monotonic() - started < FAST_CRASH_SECONDS else 0
            if fast_crashes >= FAST_CRASH_LIMIT:
                raise ServeError("workers keep crashing right after start; see the log above")
            spawn()
        return 0
    finally:
        _stop_children(children)
        for s, handler in old.items():
            signal.signal(s, handler)


def _stop_children(children: dict[int, float]) -> None:
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            children.pop(pid, None)
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT + 5
    while children and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            children.pop(pid, None)
        else:
            time.sleep(0.1)
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
