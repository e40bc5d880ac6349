"""Start-up and shutdown time of `cbt serve` on the embedded PostgreSQL.

    python benchmarks/bench_startup.py [--runs 5] [--workers 2]

The first start initialises a new data dir (initdb); the following starts
reuse it, which is what an operator sees every morning. Reports the time
from launching the command to the first 200 from /healthz, and from Ctrl-C
to the process exiting with no PostgreSQL left.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(data_dir: Path, workers: int) -> tuple[float, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
    env.update(CBT_DATA_DIR=str(data_dir), CBT_LOG_LEVEL="WARNING")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cbt", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"cbt serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.02)
    up = time.perf_counter() - start
    stop = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    down = time.perf_counter() - stop
    return up, down


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cbt-bench-startup-"))
    root.chmod(0o755)
    data_dir = root / "data"
    first_up, first_down = one_run(data_dir, args.workers)
    print(f"new data dir (initdb + migrate): start {first_up:.2f} s, stop {first_down:.2f} s")
    ups, downs = [], []
    for _ in range(args.runs):
        up, down = one_run(data_dir, args.workers)
        ups.append(up)
        downs.append(down)
    print(
        f"existing data dir, {args.runs} runs, {args.workers} workers: "
        f"start median {statistics.median(ups):.2f} s (min {min(ups):.2f}, max {max(ups):.2f}); "
        f"stop median {statistics.median(downs):.2f} s"
    )
    subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
