"""How fast `cbt` answers commands that need no database.

    python benchmarks/bench_cli.py [--runs 7]

Runs each command below `--runs` times in a fresh interpreter (as a person
at a terminal does) and reports the median and the fastest wall time, with
`python` alone (`-c pass`) as the floor of the same run. Then lists the
modules that `python -X importtime -m cbt --help` spends most of its time
importing, so a slow import can be found at once.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A small release with 21 problems (tests/itembank): validation prints every one.
BROKEN = REPO / "tests" / "itembank" / "broken"


def commands(tmp: Path) -> dict[str, list[str]]:
    return {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "cbt --help": [sys.executable, "-m", "cbt", "--help"],
        "cbt exam --help": [sys.executable, "-m", "cbt", "exam", "--help"],
        "cbt bank validate --help": [sys.executable, "-m", "cbt", "bank", "validate", "--help"],
        "cbt keys generate": [
            sys.executable,
            "-m",
            "cbt",
            "keys",
            "generate",
            "bench",
            "--out",
            str(tmp / "k"),
            "--passphrase-file",
            str(tmp / "pass"),
        ],
        "cbt bank validate (21 problems)": [sys.executable, "-m", "cbt", "bank", "validate", str(BROKEN)],
    }


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "pass").write_text("a passphrase for the benchmark only\n")
        print(f"{'command':34} {'median':>8} {'fastest':>8}")
        for name, cmd in commands(tmp).items():
            times = []
            for i in range(args.runs):
                if name == "cbt keys generate":
                    cmd[-3] = str(tmp / f"k{i}")
                times.append(timed(cmd, env))
            print(f"{name:34} {statistics.median(times):7.3f}s {min(times):7.3f}s")
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cbt", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    rows = []
    for line in trace.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append((int(m.group(2)), len(m.group(3)), m.group(4)))
    print("\nslowest imports of `cbt --help` (cumulative; cbt.cli and what it imports directly):")
    for total, _, name in sorted((r for r in rows if r[1] <= 3), reverse=True)[:14]:
        print(f"  {total / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
