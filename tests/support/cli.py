"""`cbt` as a user runs it: a real process, its environment, its one-line errors."""

import os
import socket
import subprocess
import sys
from pathlib import Path

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(data_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
    env.update({"CBT_DATA_DIR": str(data_dir), "CBT_LOG_LEVEL": "WARNING"}, **extra)
    return env


def cbt(*args, env, timeout=120, input=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "cbt", *args], env=env, capture_output=True, text=True, timeout=timeout, input=input
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("{")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cbt: error: ")
    return lines[0]
