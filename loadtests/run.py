"""Run a Locust load profile against a fresh cbt and check that no acknowledged answer was lost.

    python -m loadtests.run --profile lab|school|storm [--users N] [--duration S] [--workers W]

On a throw-away embedded PostgreSQL (benchmarks/throwaway_pg.py): the demo bank, an exam with
every question type, a roster and its tickets (benchmarks/bench_delivery.prepare), one proctor;
then `cbt serve --workers W` on a free loopback port and Locust headless against it. Afterwards
it checks every acknowledged change against the database, and every submitted attempt for a score,
prints the figures, writes a JSON summary, and exits non-zero on any error or loss.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import bench_delivery  # noqa: E402
from throwaway_pg import throwaway_postgres  # noqa: E402

from cbt import accounts  # noqa: E402
from cbt.delivery import autosave  # noqa: E402
from cbt.platform import db  # noqa: E402

# The benchmark exam plus the two types it lacks (multiple choice, essay).
EXAM = (
    bench_delivery.EXAM
    + """\
      - {{topic: ham-so, level: 4, count: 1, type: multiple}}
      - {{topic: mu-logarit, level: 4, count: 1, type: multiple}}
  - title: IV
    rows:
      - {{topic: ham-so, level: 4, count: 1, type: essay}}
"""
)


@dataclass(frozen=True)
class Profile:
    users: int
    duration: int  # seconds of load
    spawn_rate: float | None  # users a second; None: everyone within 10 s
    workers: int = 2  # cbt serve workers
    think: float | None = None  # mean seconds per question; None: a sitting ends at ~60% of the run
    flaky: float = 0.0  # the share of students who lose the network once for 10-60 s
    locust_workers: int = 0  # 0: one Locust process; K: Locust's distributed mode, a master and K workers
    passes: int = 1  # times a student goes over the paper: more makes sittings outlast the run
    description: str = ""


# A batch carries 3 changes and a question makes about 1.3 (answer, change of mind, flag):
# a think time of 4.3 s a question is one batch every 10 s per student.
PROFILES = {
    "lab": Profile(40, 60, 10.0, description="a computer lab: 40 students"),
    "school": Profile(1000, 300, 20.0, description="a school: 1,000 students"),
    # After the storm they answer at the steady pace: a student reads a question before answering.
    "storm": Profile(1000, 90, None, think=4.3, description="1,000 students press Start within 10 s"),
    # Three passes over the paper: nobody finishes within the run, so all 5,000 sit from the end of
    # spawning (50 s) to the end, and the "all seated" figures cover some 240 s.
    "steady": Profile(
        5000, 300, 100.0, think=4.3, passes=3, description="5,000 concurrent students, one change batch each every 10 s"
    ),
    "district": Profile(
        10000,
        360,
        100.0,
        think=8.6,
        locust_workers=2,
        description="a district: 10,000 students, one batch each every 20 s, distributed Locust",
    ),
    "flaky": Profile(
        200,
        180,
        20.0,
        think=3.0,
        flaky=0.3,
        description="30% of 200 students lose the network for 10-60 s and replay their journal",
    ),
}
PROCTOR = ("proctor1", "Load-test-proctor-1!")


async def prepare(dsn: str, root: Path, n: int) -> tuple[list[str], float]:
    bench_delivery.EXAM = EXAM
    tickets, opened = await bench_delivery.prepare(dsn, root, n)
    conn = await asyncpg.connect(dsn)
    try:
        await accounts.add_user(conn, PROCTOR[0], "proctor", "B", PROCTOR[1])
    finally:
        await conn.close()
    return tickets, opened


def latest_records(path: Path) -> dict[int, dict]:
    """Per attempt, what its lines say together: the highest saved_seq, per question the acknowledged
    entry with the highest seq, and `submitted` if any line says so.

    Every Locust process writes its own PATH.PID file; each line holds only what that
    acknowledgement newly covered."""
    out: dict[int, dict] = {}
    for part in sorted(path.parent.glob(path.name + ".*")):
        for line in part.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            merged = out.setdefault(
                rec["attempt_id"], {"attempt_id": rec["attempt_id"], "saved_seq": 0, "acked": {}, "submitted": False}
            )
            merged["saved_seq"] = max(merged["saved_seq"], rec["saved_seq"])
            merged["submitted"] = merged["submitted"] or rec["submitted"]
            for key, entry in rec["acked"].items():
                if key not in merged["acked"] or entry[0] > merged["acked"][key][0]:
                    merged["acked"][key] = entry
    return out


async def check(dsn: str, records: dict[int, dict]) -> dict:
    """Every acknowledged change stored, with its final value; every submitted attempt scored."""
    lost: list[str] = []
    unscored: list[int] = []
    acked_changes = 0
    conn = await asyncpg.connect(dsn)
    try:
        for attempt_id, rec in records.items():
            saved = rec["saved_seq"]
            acked_changes += saved
            stored = await conn.fetchval(
                "SELECT count(*) FROM response_history WHERE attempt_id = $1 AND seq <= $2", attempt_id, saved
            )
            if stored != saved:
                lost.append(f"attempt {attempt_id}: {saved - stored} of 1..{saved} missing from the history")
            history = {
                r["seq"]: r
                for r in await conn.fetch(
                    "SELECT seq, item_ref, kind, value FROM response_history WHERE attempt_id = $1", attempt_id
                )
            }
            current = {
                r["item_ref"]: r
                for r in await conn.fetch(
                    "SELECT item_ref, value, value_seq, flagged, flag_seq FROM responses WHERE attempt_id = $1",
                    attempt_id,
                )
            }
            for key, (seq, value) in rec["acked"].items():
                kind, ref = key.split(":", 1)
                h = history.get(seq)
                if h is None or h["item_ref"] != ref or h["kind"] != kind or json.loads(h["value"]) != value:
                    lost.append(f"attempt {attempt_id} seq {seq}: history differs from what was sent")
                    continue
                row = current.get(ref)
                if row is None:
                    lost.append(f"attempt {attempt_id} {ref}: no current response")
                elif kind == "answer" and (
                    row["value_seq"] < seq or (row["value_seq"] == seq and json.loads(row["value"]) != value)
                ):
                    lost.append(f"attempt {attempt_id} {ref}: final answer is not the last one acknowledged")
                elif kind == "flag" and (row["flag_seq"] < seq or (row["flag_seq"] == seq and row["flagged"] != value)):
                    lost.append(f"attempt {attempt_id} {ref}: final flag is not the last one acknowledged")
        submitted = [a for a, r in records.items() if r["submitted"]]
        rows = await conn.fetch("SELECT id, status, score FROM attempts WHERE id = ANY($1::bigint[])", submitted)
        unscored = [r["id"] for r in rows if r["status"] != "submitted" or r["score"] is None]
        unscored += sorted(set(submitted) - {r["id"] for r in rows})
        all_submitted_unscored = await conn.fetchval(
            "SELECT count(*) FROM attempts WHERE status = 'submitted' AND score IS NULL"
        )
        history_rows = await conn.fetchval("SELECT count(*) FROM response_history")
    finally:
        await conn.close()
    return {
        "attempts_recorded": len(records),
        "acknowledged_changes": acked_changes,
        "lost": len(lost),
        "lost_detail": lost[:20],
        "submitted": len(submitted),
        "submitted_unscored": len(unscored),
        "any_submitted_unscored_in_db": all_submitted_unscored,
        "history_rows_in_db": history_rows,
    }


def read_stats(prefix: Path) -> tuple[list[dict], list[dict]]:
    stats_path = Path(f"{prefix}_stats.csv")
    fails_path = Path(f"{prefix}_failures.csv")
    stats = list(csv.DictReader(stats_path.open())) if stats_path.exists() else []
    fails = list(csv.DictReader(fails_path.open())) if fails_path.exists() else []
    return stats, fails


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    ppid: int
    pgid: int
    cpu: float  # seconds used so far (user + system)


def processes() -> list[Proc]:
    """Every process now, from /proc/PID/stat (those gone while reading are skipped)."""
    tick, out = os.sysconf("SC_CLK_TCK"), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name, rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
            f = rest.split()
            out.append(Proc(int(pid), name.split("(", 1)[1], int(f[1]), int(f[2]), (int(f[11]) + int(f[12])) / tick))
        except (OSError, ValueError, IndexError):
            continue
    return out


class ServerSampler(threading.Thread):
    """CPU seconds and resident memory of the server's process group, from /proc, once a second."""

    def __init__(self, pgid: int) -> None:
        super().__init__(daemon=True)
        self.pgid, self.peak_rss, self.cpu, self.stop = pgid, 0, 0.0, threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> tuple[int, float]:
        rss, cpu = 0, 0.0
        for p in processes():
            if p.pgid != self.pgid:
                continue
            cpu += p.cpu
            try:
                rss += int(Path(f"/proc/{p.pid}/statm").read_text().split()[1]) * self.page
            except (OSError, IndexError, ValueError):
                continue
        return rss, cpu

    def run(self) -> None:
        while not self.stop.wait(1.0):
            rss, cpu = self.sample()
            self.peak_rss, self.cpu = max(self.peak_rss, rss), max(self.cpu, cpu)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"cbt serve exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("cbt serve did not listen within 30 s")


def children(pid: int) -> list[int]:
    """The processes whose parent is pid (cbt serve's workers), from /proc."""
    return sorted(p.pid for p in processes() if p.ppid == pid)


def healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


class Fault(threading.Thread):
    """At `at` seconds into the load: kill -9 one server worker, or restart PostgreSQL."""

    def __init__(
        self,
        kind: str,
        at: float,
        downtime: float,
        server: subprocess.Popen,
        root: Path,
        port: int,
        pg_options: str = "",
    ) -> None:
        super().__init__(daemon=True)
        self.kind, self.at, self.downtime, self.server, self.root, self.port = kind, at, downtime, server, root, port
        self.pg_options = pg_options  # the restarted server keeps the run's settings (--statements)
        self.events: list[str] = []
        self.t0 = time.monotonic()

    def note(self, text: str) -> None:
        line = f"t={time.monotonic() - self.t0:6.1f} s  {text}"
        self.events.append(line)
        print(f"fault: {line}", flush=True)

    def run(self) -> None:
        time.sleep(self.at)
        if self.kind == "kill-worker":
            before = children(self.server.pid)
            victim = before[0]
            os.kill(victim, signal.SIGKILL)
            self.note(f"kill -9 worker {victim} (workers were {before})")
            for _ in range(600):
                now = [p for p in children(self.server.pid) if p != victim]
                if len(now) >= len(before):
                    self.note(f"the supervisor started a replacement: workers now {now}")
                    break
                time.sleep(0.1)
        else:
            pg = db.EmbeddedPostgres(self.root / "data", self.pg_options)
            pg.started_here = True
            self.note("stopping PostgreSQL (pg_ctl stop -m fast)")
            pg.stop()
            self.note(f"PostgreSQL is down; starting it again in {self.downtime:g} s")
            time.sleep(self.downtime)
            pg.start()
            self.note("PostgreSQL started again")
        for _ in range(1200):
            if healthy(self.port):
                self.note("/healthz answers 200 (no server restart)")
                return
            time.sleep(0.1)
        self.note("/healthz still not 200 after 120 s")


def run_locust(
    classes: list[str],
    users: int,
    rate: float,
    duration: int,
    host: str,
    prefix: Path,
    env: dict,
    locust_workers: int = 0,
) -> tuple[int, float, str]:
    """Locust headless (one process, or a master and `locust_workers` worker processes)."""
    locust_bin = Path(sys.executable).with_name("locust")
    base = [str(locust_bin) if locust_bin.exists() else "locust", "-f", str(ROOT / "loadtests/locustfile.py")]
    run = [
        "--headless",
        "-u",
        str(users),
        "-r",
        f"{rate:g}",
        "-t",
        f"{duration}s",
        "--host",
        host,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    t0 = time.perf_counter()
    if not locust_workers:
        proc = subprocess.run(base + run + classes, env=env, cwd=ROOT, capture_output=True, text=True)
        return proc.returncode, time.perf_counter() - t0, proc.stdout + proc.stderr
    port = free_port()
    master = subprocess.Popen(
        base
        + run
        + [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(locust_workers),
        ]
        + classes,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker_cmd = [
        *base,
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(port),
        "--loglevel",
        "WARNING",
        *classes,
    ]
    workers = [
        subprocess.Popen(worker_cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(locust_workers)
    ]
    output, _ = master.communicate()
    for w in workers:
        try:
            w.wait(timeout=30)
        except subprocess.TimeoutExpired:
            w.kill()
    return master.returncode, time.perf_counter() - t0, output


def logged_errors(path: Path) -> list[str]:
    """The errors in cbt serve's log (JSON lines at level error or critical, or a bare traceback)."""
    found = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        try:
            entry = json.loads(line)
        except ValueError:
            if line.startswith("Traceback"):
                found.append(line)
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
            found.append(f"{entry.get('logger')}: {entry.get('msg')}")
    return found


def per_request(prefix: Path) -> tuple[dict, list[dict]]:
    stats, fails = read_stats(prefix)
    out = {}
    for row in stats:
        name = f"{row['Type']} {row['Name']}".strip() if row["Type"] else "Aggregated"

        def ms(col: str, row: dict = row) -> float | None:
            return None if row[col] in ("N/A", "") else float(row[col])

        out[name] = {
            "count": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "rps": float(row["Requests/s"]),
            "p50_ms": ms("50%"),
            "p95_ms": ms("95%"),
            "p99_ms": ms("99%"),
            "max_ms": ms("Max Response Time"),
            "avg_size": float(row["Average Content Size"] or 0),
        }
    return out, [{k: f[k] for k in ("Method", "Name", "Error", "Occurrences")} for f in fails]


def seated_latency(windows: list[dict], bucket_s: float = 10.0) -> dict:
    """Autosave latency while every student sits, from the window files of every Locust process: exact
    percentiles over the window and per bucket_s seconds from its start (an arrival backlog or a stall
    shows as a bad bucket, where the percentiles of the whole window cannot say when)."""
    samples = np.array([s for w in windows for s in w.get("samples", [])], dtype=float).reshape(-1, 2)
    if not len(samples):
        return {}

    def stats(ms: np.ndarray) -> dict:
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return {
            "count": len(ms),
            "p50_ms": round(p50, 1),
            "p95_ms": round(p95, 1),
            "p99_ms": round(p99, 1),
            "max_ms": round(float(ms.max()), 1),
        }

    start = min(w["from"] for w in windows)
    which = ((samples[:, 0] - start) // bucket_s).astype(int)
    return {
        **stats(samples[:, 1]),
        "buckets": [{"from_s": int(b * bucket_s), **stats(samples[which == b, 1])} for b in np.unique(which)],
    }


def print_table(per_type: dict) -> None:
    print(f"\n{'request':<40}{'count':>8}{'fail':>6}{'req/s':>8}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}  ms")
    for name, d in per_type.items():
        print(
            f"{name:<40}{d['count']:>8}{d['failures']:>6}{d['rps']:>8.1f}{d['p50_ms'] or 0:>7.0f}"
            f"{d['p95_ms'] or 0:>7.0f}{d['p99_ms'] or 0:>7.0f}{d['max_ms'] or 0:>7.0f}"
        )


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the Locust processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pgid: int | None = None, comm: str | None = None) -> float:
    """CPU seconds used so far by a process group, or by every process named comm (PostgreSQL's)."""
    return sum(p.cpu for p in processes() if p.pgid == pgid or p.comm == comm)


def measure_ceiling(
    dsn: str, host: str, workers: int, users: int, seconds: int, out: Path, lenv: dict, server_pgid: int
) -> dict:
    """cbt's autosave flat out, then the bare endpoint flat out, with the same client and users.

    Also the CPU each request costs the application processes and PostgreSQL (ms per request),
    which says where the difference goes."""
    app0, db0 = cpu_seconds(pgid=server_pgid), cpu_seconds(comm="postgres")
    _, _, log_cbt = run_locust(["SaturatingStudent"], users, users, seconds, host, out / "ceiling-cbt", lenv)
    app1, db1 = cpu_seconds(pgid=server_pgid), cpu_seconds(comm="postgres")
    cbt_stats, cbt_fails = per_request(out / "ceiling-cbt")
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "loadtests.bare", "--dsn", dsn, "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, bare)
        time.sleep(1)
        bare0, bdb0 = cpu_seconds(pgid=bare.pid), cpu_seconds(comm="postgres")
        _, _, log_bare = run_locust(
            ["BareUser"], users, users, seconds, f"http://127.0.0.1:{port}", out / "ceiling-bare", lenv
        )
        bare1, bdb1 = cpu_seconds(pgid=bare.pid), cpu_seconds(comm="postgres")
    finally:
        os.killpg(bare.pid, signal.SIGTERM)
        bare.wait(timeout=30)
    (out / "ceiling.log").write_text(log_cbt + log_bare)
    bare_stats, bare_fails = per_request(out / "ceiling-bare")
    c = cbt_stats.get("POST /api/v1/changes", {})
    b = bare_stats.get("POST /bare", {})
    ratio = c.get("rps", 0) / b["rps"] if b.get("rps") else None

    def per_request_ms(cpu: float, stats: dict) -> float | None:
        return 1000 * cpu / stats["count"] if stats.get("count") else None

    cpu = {
        "cbt_app_ms": per_request_ms(app1 - app0, c),
        "cbt_db_ms": per_request_ms(db1 - db0, c),
        "bare_app_ms": per_request_ms(bare1 - bare0, b),
        "bare_db_ms": per_request_ms(bdb1 - bdb0, b),
    }
    # A half that saved nothing is a broken measurement, not a ratio of 0: counted as an error.
    empty = int(not c.get("count")) + int(not b.get("count"))
    return {
        "users": users,
        "seconds": seconds,
        "cbt_changes": c,
        "bare": b,
        "ratio": ratio,
        "cpu_per_request": cpu,
        "errors": cbt_stats.get("Aggregated", {}).get("failures", 0)
        + bare_stats.get("Aggregated", {}).get("failures", 0)
        + empty,
        "failures": (cbt_fails + bare_fails)[:10],
    }


async def print_save_plan(dsn: str) -> None:
    """The plan PostgreSQL uses for the save statement now (generic, as GroupCommit runs it)."""
    conn = await asyncpg.connect(dsn)
    try:
        plan = await autosave.save_plan(conn)
    finally:
        await conn.close()
    print("\nthe save's generic plan (EXPLAIN):")
    for line in plan:
        print("  " + line)


async def print_statements(dsn: str, top: int = 12) -> None:
    """The statements PostgreSQL spent the most time on (planning + execution), from pg_stat_statements."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rows = await conn.fetch(
            r"""SELECT calls, plans, total_plan_time + total_exec_time AS total_ms, mean_plan_time, mean_exec_time,
                       regexp_replace(left(query, 110), '\s+', ' ', 'g') AS query
               FROM pg_stat_statements ORDER BY total_plan_time + total_exec_time DESC LIMIT $1""",
            top,
        )
    finally:
        await conn.close()
    print(
        f"\n{'calls':>8}{'plans':>8}{'total ms':>10}{'plan ms':>9}{'exec ms':>9}  statement (pg_stat_statements; "
        "plan ms is per planning, exec ms per call)"
    )
    for r in rows:
        print(
            f"{r['calls']:>8}{r['plans']:>8}{r['total_ms']:>10.0f}{r['mean_plan_time']:>9.3f}{r['mean_exec_time']:>9.3f}"
            f"  {r['query']}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="lab")
    ap.add_argument("--users", type=int, help="students (default: the profile's)")
    ap.add_argument("--duration", type=int, help="seconds of load (default: the profile's)")
    ap.add_argument("--workers", type=int, help="cbt serve workers (default: the profile's)")
    ap.add_argument("--locust-workers", type=int, help="Locust worker processes (default: the profile's)")
    ap.add_argument("--proctors", type=int, default=1)
    ap.add_argument("--fault", choices=("kill-worker", "restart-db"), help="inject a fault mid-run")
    ap.add_argument("--fault-at", type=float, help="seconds into the load (default: half the duration)")
    ap.add_argument("--fault-downtime", type=float, default=10.0, help="seconds PostgreSQL stays down")
    ap.add_argument(
        "--ceiling",
        type=int,
        default=20,
        help="seconds for each half of the ceiling measurement (cbt flat out, bare flat out); 0: skip",
    )
    ap.add_argument("--ceiling-users", type=int, default=50)
    ap.add_argument(
        "--statements",
        action="store_true",
        help="load pg_stat_statements and print the statements that cost PostgreSQL the most",
    )
    ap.add_argument("--out", type=Path, default=Path("loadtest-results"), help="folder for CSVs and summary")
    args = ap.parse_args()
    prof = PROFILES[args.profile]
    users, duration = args.users or prof.users, args.duration or prof.duration
    workers = args.workers or prof.workers
    locust_workers = prof.locust_workers if args.locust_workers is None else args.locust_workers
    rate = prof.spawn_rate if prof.spawn_rate is not None else max(1.0, users / 9)  # storm: all within 10 s
    spawn_seconds = users / rate
    # By default a sitting (about 37 answers with revisits) ends at about 60% of the run.
    think = prof.think if prof.think is not None else max(0.0, (duration - spawn_seconds) * 0.6 / 37)
    if args.fault == "restart-db" and os.environ.get("CBT_DATABASE_URL"):
        raise SystemExit("--fault restart-db restarts the embedded PostgreSQL: unset CBT_DATABASE_URL")
    ceiling_users = args.ceiling_users if args.ceiling else 0
    label = f"{args.profile}-{args.fault}" if args.fault else args.profile
    out = args.out.resolve() / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    server = fault = None
    ceiling = None
    pg_options = (
        "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"
        if args.statements
        else ""
    )
    with throwaway_postgres("cbt-loadtest-", pg_options) as (dsn, root):
        try:
            tickets, opened = asyncio.run(prepare(dsn, root, users + ceiling_users))
            print(f"{args.profile}: {prof.description}")
            print(f"exam opened: {len(tickets)} forms drawn in {opened:.2f} s")
            # The ceiling's students have tickets of their own: Locust may start more users than asked
            # during a run (a replacement for one that stopped), and those must not use up the ceiling's.
            ticket_file, ceiling_tickets = root / "tickets.txt", root / "ceiling-tickets.txt"
            ticket_file.write_text("\n".join(tickets[:users]) + "\n")
            ceiling_tickets.write_text("\n".join(tickets[users:]) + "\n")
            record_file = out / "acked.jsonl"
            port = free_port()
            host = f"http://127.0.0.1:{port}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
            env.update(CBT_DATABASE_URL=dsn, CBT_SECRET_KEY="loadtest-" + "z" * 40, CBT_LOG_LEVEL="WARNING")
            server_log = (out / "server.log").open("w")
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cbt",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                ],
                env=env,
                start_new_session=True,
                stderr=server_log,
            )
            server_log.close()  # the server has its own copy
            wait_for_port(port, server)
            time.sleep(1)
            sampler = ServerSampler(server.pid)
            rss0, cpu0 = sampler.sample()
            sampler.start()
            lenv = dict(
                os.environ,
                CBT_LOAD_TICKETS=str(ticket_file),
                CBT_LOAD_RECORD=str(record_file),
                CBT_LOAD_THINK=f"{think:.3f}",
                CBT_LOAD_PROCTORS=str(args.proctors),
                CBT_LOAD_PROCTOR=":".join(PROCTOR),
                CBT_LOAD_EXAM="BENCH",
                CBT_LOAD_FLAKY=str(prof.flaky),
                CBT_LOAD_PASSES=str(prof.passes),
            )
            print(
                f"locust: {users} students + {args.proctors} proctor(s), spawn {rate:g}/s, {duration} s, "
                f"think {think:.2f} s/question, flaky {prof.flaky:.0%}, "
                f"{f'{locust_workers} Locust workers, ' if locust_workers else ''}"
                f"cbt serve --workers {workers} on 127.0.0.1:{port}",
                flush=True,
            )
            if args.fault:
                fault = Fault(
                    args.fault,
                    args.fault_at if args.fault_at is not None else duration / 2,
                    args.fault_downtime,
                    server,
                    root,
                    port,
                    pg_options,
                )
                fault.start()
            pg_cpu0, gen_cpu0 = cpu_seconds(comm="postgres"), children_cpu()
            code, elapsed, log = run_locust(
                ["StudentUser", "ProctorUser"],
                users + args.proctors,
                rate,
                duration,
                host,
                out / "locust",
                lenv,
                locust_workers,
            )
            cpu_split = {"postgres_s": cpu_seconds(comm="postgres") - pg_cpu0, "locust_s": children_cpu() - gen_cpu0}
            # Read now: the ceiling's Locust processes write window files of their own later.
            windows = [json.loads(p.read_text()) for p in out.glob("acked.jsonl-window.*")]
            sampler.stop.set()
            sampler.join()
            (out / "locust.log").write_text(log)
            if fault is not None:
                fault.join(timeout=150)
            if ceiling_users:
                print(
                    f"ceiling: {ceiling_users} users flat out for {args.ceiling} s against cbt, then against "
                    f"the bare aiohttp + asyncpg endpoint",
                    flush=True,
                )
                ceiling = measure_ceiling(
                    dsn,
                    host,
                    workers,
                    ceiling_users,
                    args.ceiling,
                    out,
                    dict(lenv, CBT_LOAD_TICKETS=str(ceiling_tickets)),
                    server.pid,
                )
            result = asyncio.run(check(dsn, latest_records(record_file)))
            if args.statements:
                asyncio.run(print_statements(dsn))
                asyncio.run(print_save_plan(dsn))
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)

    server_errors = logged_errors(out / "server.log")
    per_type, fails = per_request(out / "locust")
    print_table(per_type)
    errors = per_type.get("Aggregated", {}).get("failures", 0)
    retried = sum(d["count"] for n, d in per_type.items() if n.startswith("RETRY"))
    changes = per_type.get("POST /api/v1/changes", {})
    seated = dict(per_type.get("SEATED POST /api/v1/changes", {}))
    if seated:
        # Locust's own rate for this row counts from the start of the run; the window's is what matters.
        seated["rps"] = sum(w["batches"] / max(1e-9, w["to"] - w["from"]) for w in windows)
        seated["window_s"] = max((w["to"] - w["from"] for w in windows), default=0.0)
        seated["exact"] = seated_latency(windows)
    starts = per_type.get("POST /api/v1/start", {})
    peak_mb, idle_mb = sampler.peak_rss / 2**20, rss0 / 2**20
    summary = {
        "profile": args.profile,
        "description": prof.description,
        "users": users,
        "duration_s": duration,
        "workers": workers,
        "locust_workers": locust_workers,
        "spawn_rate": rate,
        "think_s": think,
        "flaky": prof.flaky,
        "exam_open_s": opened,
        "locust_exit": code,
        "locust_wall_s": elapsed,
        "requests": per_type,
        "errors": errors,
        "retried_requests": retried,
        "failures": fails[:20],
        "starts_ok": starts.get("count", 0) - starts.get("failures", 0),
        "server_peak_rss_mb": peak_mb,
        "server_rss_before_mb": idle_mb,
        "server_rss_mb_per_1000_students": peak_mb / users * 1000,
        "server_cpu_s": sampler.cpu - cpu0,
        "postgres_cpu_s": cpu_split["postgres_s"],
        "locust_cpu_s": cpu_split["locust_s"],
        "autosave_all_seated": seated,
        "fault": args.fault,
        "fault_events": fault.events if fault else [],
        "ceiling": ceiling,
        "load_average_1m_after": os.getloadavg()[0],
        **result,
        "server_log_errors": len(server_errors),
        "proctor_updates": per_type.get("SSE room update", {}),
    }
    print(
        f"\nerrors: {errors}"
        + "".join(f"\n  {f['Occurrences']}x {f['Method']} {f['Name']}: {f['Error'][:150]}" for f in fails[:10])
    )
    print(f"retried requests (transient failures a student retried): {retried}")
    print(
        f"starts: {summary['starts_ok']} Start requests succeeded for {users} students; "
        f"p50 {starts.get('p50_ms')} ms, p99 {starts.get('p99_ms')} ms"
    )
    print(
        f"autosave: {changes.get('count', 0)} batches, {changes.get('rps', 0):.1f} batches/s, "
        f"p50 {changes.get('p50_ms')} ms, p99 {changes.get('p99_ms')} ms"
    )
    if seated:
        print(
            f"autosave while all {users} students sit ({seated['window_s']:.0f} s): {seated['count']} batches, "
            f"{seated['rps']:.1f} batches/s, "
            f"p50 {seated['p50_ms']} ms, p95 {seated['p95_ms']} ms, p99 {seated['p99_ms']} ms"
        )
        exact = seated["exact"]
        if exact:
            print(
                f"  exact: p50 {exact['p50_ms']} ms, p95 {exact['p95_ms']} ms, p99 {exact['p99_ms']} ms, "
                f"max {exact['max_ms']} ms; by 10 s from the window's start (s: batches p50/p99/max ms):"
            )
            print(
                "   "
                + "  ".join(
                    f"{b['from_s']}: {b['count']} {b['p50_ms']:.0f}/{b['p99_ms']:.0f}/{b['max_ms']:.0f}"
                    for b in exact["buckets"]
                )
            )
    print(
        f"acknowledged changes: {result['acknowledged_changes']} in {result['attempts_recorded']} attempts; "
        f"lost: {result['lost']}" + "".join(f"\n  {x}" for x in result["lost_detail"][:10])
    )
    print(f"submitted: {result['submitted']}, of which unscored: {result['submitted_unscored']}")
    print(
        f"server: peak RSS {peak_mb:.0f} MB (idle {idle_mb:.0f} MB; {summary['server_rss_mb_per_1000_students']:.0f} "
        f"MB per 1,000 students), CPU {summary['server_cpu_s']:.1f} s over {elapsed:.0f} s"
    )
    cores = os.cpu_count() or 1
    print(
        f"CPU over the run ({cores} cores = {cores * elapsed:.0f} s): cbt {summary['server_cpu_s']:.0f} s, "
        f"PostgreSQL {cpu_split['postgres_s']:.0f} s, Locust {cpu_split['locust_s']:.0f} s"
    )
    outages = per_type.get("FLAKY network lost for (ms)")
    replays = per_type.get("FLAKY journal entries replayed on reconnecting (length)")
    if outages:
        print(
            f"flaky: {outages['count']} students lost the network (median {outages['p50_ms'] / 1000:.0f} s, longest "
            f"{outages['max_ms'] / 1000:.0f} s); on reconnecting they replayed "
            f"{replays['avg_size'] if replays else 0:.1f} journal entries on average"
        )
    updates = summary["proctor_updates"]
    if updates:
        print(
            f"proctor consoles: {updates['count']} room updates over SSE; time between updates p50 "
            f"{updates['p50_ms']} ms, p99 {updates['p99_ms']} ms, max {updates['max_ms']} ms"
        )
    print(f"server log: {len(server_errors)} errors" + "".join(f"\n  {e[:300]}" for e in server_errors[:5]))
    for line in summary["fault_events"]:
        print(f"fault: {line}")
    if ceiling:
        c, b = ceiling["cbt_changes"], ceiling["bare"]
        print(
            f"ceiling ({ceiling['users']} users flat out, {ceiling['seconds']} s each): cbt autosave "
            f"{c.get('rps', 0):.0f} batches/s (p99 {c.get('p99_ms')} ms) vs bare aiohttp + asyncpg upsert "
            f"{b.get('rps', 0):.0f} req/s (p99 {b.get('p99_ms')} ms): ratio "
            f"{(ceiling['ratio'] or 0):.0%}; errors {ceiling['errors']}"
        )
        cpu = ceiling["cpu_per_request"]
        if None not in cpu.values():
            print(
                f"  CPU per request: cbt {cpu['cbt_app_ms']:.2f} ms app + {cpu['cbt_db_ms']:.2f} ms PostgreSQL; "
                f"bare {cpu['bare_app_ms']:.2f} ms app + {cpu['bare_db_ms']:.2f} ms PostgreSQL"
            )
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"summary: {out / 'summary.json'}")
    # A fault makes the server log what it went through; without one, any error it logs is a defect.
    bad = (
        errors
        or result["lost"]
        or result["submitted_unscored"]
        or result["any_submitted_unscored_in_db"]
        or not result["acknowledged_changes"]
        or (ceiling and ceiling["errors"])
        or (server_errors and not args.fault)
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
