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
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import bench_delivery  # noqa: E402
from throwaway_pg import throwaway_postgres  # noqa: E402

from cbt import accounts  # noqa: E402

# The benchmark exam plus the two types it lacks (multiple choice, essay).
EXAM = bench_delivery.EXAM + """\
      - {{topic: ham-so, level: 4, count: 1, type: multiple}}
      - {{topic: mu-logarit, level: 4, count: 1, type: multiple}}
  - title: IV
    rows:
      - {{topic: ham-so, level: 4, count: 1, type: essay}}
"""
# users, duration (s), spawn rate (users/s; None: all within 10 s), server workers
PROFILES = {
    "lab": (40, 60, 10.0, 2),
    "school": (1000, 300, 20.0, 2),
    "storm": (1000, 120, None, 2),
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
    """The last record each attempt wrote (its highest saved_seq; `submitted` if it ever was)."""
    out: dict[int, dict] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        prev = out.get(rec["attempt_id"])
        if prev is None or rec["saved_seq"] >= prev["saved_seq"]:
            rec["submitted"] = rec["submitted"] or bool(prev and prev["submitted"])
            out[rec["attempt_id"]] = rec
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
                "SELECT count(*) FROM response_history WHERE attempt_id = $1 AND seq <= $2", attempt_id, saved)
            if stored != saved:
                lost.append(f"attempt {attempt_id}: {saved - stored} of 1..{saved} missing from the history")
            history = {r["seq"]: r for r in await conn.fetch(
                "SELECT seq, item_ref, kind, value FROM response_history WHERE attempt_id = $1", attempt_id)}
            current = {r["item_ref"]: r for r in await conn.fetch(
                "SELECT item_ref, value, value_seq, flagged, flag_seq FROM responses WHERE attempt_id = $1",
                attempt_id)}
            for key, (seq, value) in rec["acked"].items():
                kind, ref = key.split(":", 1)
                h = history.get(seq)
                if h is None or h["item_ref"] != ref or h["kind"] != kind or json.loads(h["value"]) != value:
                    lost.append(f"attempt {attempt_id} seq {seq}: history differs from what was sent")
                    continue
                row = current.get(ref)
                if row is None:
                    lost.append(f"attempt {attempt_id} {ref}: no current response")
                elif kind == "answer" and (row["value_seq"] < seq or (
                        row["value_seq"] == seq and json.loads(row["value"]) != value)):
                    lost.append(f"attempt {attempt_id} {ref}: final answer is not the last one acknowledged")
                elif kind == "flag" and (row["flag_seq"] < seq or (row["flag_seq"] == seq and row["flagged"] != value)):
                    lost.append(f"attempt {attempt_id} {ref}: final flag is not the last one acknowledged")
        submitted = [a for a, r in records.items() if r["submitted"]]
        rows = await conn.fetch("SELECT id, status, score FROM attempts WHERE id = ANY($1::bigint[])", submitted)
        unscored = [r["id"] for r in rows if r["status"] != "submitted" or r["score"] is None]
        unscored += sorted(set(submitted) - {r["id"] for r in rows})
        all_submitted_unscored = await conn.fetchval(
            "SELECT count(*) FROM attempts WHERE status = 'submitted' AND score IS NULL")
        history_rows = await conn.fetchval("SELECT count(*) FROM response_history")
    finally:
        await conn.close()
    return {"attempts_recorded": len(records), "acknowledged_changes": acked_changes, "lost": len(lost),
            "lost_detail": lost[:20], "submitted": len(submitted), "submitted_unscored": len(unscored),
            "any_submitted_unscored_in_db": all_submitted_unscored, "history_rows_in_db": history_rows}


def read_stats(prefix: Path) -> tuple[list[dict], list[dict]]:
    stats_path = Path(f"{prefix}_stats.csv")
    fails_path = Path(f"{prefix}_failures.csv")
    stats = list(csv.DictReader(stats_path.open())) if stats_path.exists() else []
    fails = list(csv.DictReader(fails_path.open())) if fails_path.exists() else []
    return stats, fails


class ServerSampler(threading.Thread):
    """CPU seconds and resident memory of the server's process group, from /proc, once a second."""

    def __init__(self, pgid: int) -> None:
        super().__init__(daemon=True)
        self.pgid, self.peak_rss, self.cpu, self.stop = pgid, 0, 0.0, threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> tuple[int, float]:
        rss, cpu = 0, 0.0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) != self.pgid:
                    continue
                cpu += (int(fields[11]) + int(fields[12])) / self.tick
                rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self.page
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="lab")
    ap.add_argument("--users", type=int, help="students (default: the profile's)")
    ap.add_argument("--duration", type=int, help="seconds of load (default: the profile's)")
    ap.add_argument("--workers", type=int, help="cbt serve workers (default: the profile's)")
    ap.add_argument("--proctors", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("loadtest-results"), help="folder for CSVs and summary")
    args = ap.parse_args()
    users, duration, rate, workers = PROFILES[args.profile]
    users, duration, workers = args.users or users, args.duration or duration, args.workers or workers
    rate = rate if rate is not None else max(1.0, users / 9)  # storm: everyone within 10 s
    spawn_seconds = users / rate
    # A sitting (about 27 answers, with revisits) should end well inside the run, spawn time included.
    think = max(0.0, (duration - spawn_seconds) * 0.6 / 27)
    out = args.out.resolve() / f"{args.profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    server = None
    with throwaway_postgres("cbt-loadtest-") as (dsn, root):
        try:
            tickets, opened = asyncio.run(prepare(dsn, root, users))
            print(f"exam opened: {users} forms drawn in {opened:.2f} s")
            ticket_file = root / "tickets.txt"
            ticket_file.write_text("\n".join(tickets) + "\n")
            record_file = out / "acked.jsonl"
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
            env.update(CBT_DATABASE_URL=dsn, CBT_SECRET_KEY="loadtest-" + "z" * 40, CBT_LOG_LEVEL="WARNING")
            server = subprocess.Popen([sys.executable, "-m", "cbt", "serve", "--host", "127.0.0.1", "--port",
                                       str(port), "--workers", str(workers)], env=env, start_new_session=True)
            wait_for_port(port, server)
            time.sleep(1)
            sampler = ServerSampler(server.pid)
            rss0, cpu0 = sampler.sample()
            sampler.start()
            locust_bin = Path(sys.executable).with_name("locust")
            cmd = [str(locust_bin) if locust_bin.exists() else "locust", "-f", str(ROOT / "loadtests/locustfile.py"),
                   "--headless", "-u", str(users + args.proctors), "-r", f"{rate:g}", "-t", f"{duration}s",
                   "--host", f"http://127.0.0.1:{port}", "--csv", str(out / "locust"), "--only-summary",
                   "--stop-timeout", "5", "--loglevel", "WARNING"]
            lenv = dict(os.environ, CBT_LOAD_TICKETS=str(ticket_file), CBT_LOAD_RECORD=str(record_file),
                        CBT_LOAD_THINK=f"{think:.3f}", CBT_LOAD_PROCTORS=str(args.proctors),
                        CBT_LOAD_PROCTOR=":".join(PROCTOR), CBT_LOAD_EXAM="BENCH")
            print(f"locust: {users} students + {args.proctors} proctor(s), spawn {rate:g}/s, {duration} s, "
                  f"think {think:.2f} s/question, cbt serve --workers {workers} on 127.0.0.1:{port}")
            t0 = time.perf_counter()
            locust = subprocess.run(cmd, env=lenv, cwd=ROOT, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            sampler.stop.set()
            sampler.join()
            (out / "locust.log").write_text(locust.stdout + locust.stderr)
            result = asyncio.run(check(dsn, latest_records(record_file)))
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)

    stats, fails = read_stats(out / "locust")
    per_type = {}
    print(f"\n{'request':<34}{'count':>8}{'fail':>6}{'req/s':>8}{'p50':>7}{'p95':>7}{'p99':>7}  ms")
    for row in stats:
        name = row["Name"] if row["Type"] else "Aggregated"
        name = f"{row['Type']} {name}".strip()
        def ms(col: str, row: dict = row) -> float | None:
            return None if row[col] in ("N/A", "") else float(row[col])
        per_type[name] = {"count": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                          "rps": float(row["Requests/s"]), "p50_ms": ms("50%"), "p95_ms": ms("95%"),
                          "p99_ms": ms("99%")}
        d = per_type[name]
        print(f"{name:<34}{d['count']:>8}{d['failures']:>6}{d['rps']:>8.1f}{d['p50_ms'] or 0:>7.0f}"
              f"{d['p95_ms'] or 0:>7.0f}{d['p99_ms'] or 0:>7.0f}")
    errors = per_type.get("Aggregated", {}).get("failures", 0)
    changes = per_type.get("POST /api/v1/changes", {})
    summary = {
        "profile": args.profile, "users": users, "duration_s": duration, "workers": workers,
        "spawn_rate": rate, "think_s": think, "exam_open_s": opened, "locust_exit": locust.returncode,
        "locust_wall_s": elapsed, "requests": per_type, "errors": errors,
        "failures": [{k: f[k] for k in ("Method", "Name", "Error", "Occurrences")} for f in fails][:20],
        "server_peak_rss_mb": sampler.peak_rss / 2**20, "server_rss_before_mb": rss0 / 2**20,
        "server_cpu_s": sampler.cpu - cpu0, **result,
    }
    print(f"\nerrors: {errors}" + "".join(f"\n  {f['Occurrences']}x {f['Method']} {f['Name']}: {f['Error'][:150]}"
                                     for f in fails[:10]))
    print(f"autosave: {changes.get('count', 0)} batches, {changes.get('rps', 0):.1f} batches/s")
    print(f"acknowledged changes: {result['acknowledged_changes']} in {result['attempts_recorded']} attempts; "
          f"lost: {result['lost']}" + "".join(f"\n  {x}" for x in result["lost_detail"][:10]))
    print(f"submitted: {result['submitted']}, of which unscored: {result['submitted_unscored']}")
    print(f"server: peak RSS {summary['server_peak_rss_mb']:.0f} MB (idle {summary['server_rss_before_mb']:.0f} MB), "
          f"CPU {summary['server_cpu_s']:.1f} s over {elapsed:.0f} s")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"summary: {out / 'summary.json'}")
    bad = errors or result["lost"] or result["submitted_unscored"] or result["any_submitted_unscored_in_db"] \
        or not result["acknowledged_changes"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
