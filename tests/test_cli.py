"""The command line as a whole: what a command costs before it does anything.
(Each command's behaviour is tested beside its module.)"""

import re
import subprocess
import sys

import pytest

# What makes a command slow to start (argon2 hashed a dummy password at import).
HEAVY = ("aiohttp", "asyncpg", "argon2", "numpy", "openpyxl", "jinja2", "cryptography")


def imported_by(*args: str) -> set[str]:
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cbt", *args], capture_output=True, text=True, check=False
    ).stderr
    return {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\|\s*([\w.]+)$", trace, flags=re.M)}


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("exam", "--help"),
        ("bank", "validate", "--help"),
        ("bank", "convert", "--help"),
        ("audit", "verify", "--help"),
        ("keys", "--help"),
    ],
)
def test_help_loads_no_heavy_library(args):
    loaded = imported_by(*args)
    assert "cbt" in loaded  # the trace was read
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_analyze_help_still_describes_its_options():
    out = subprocess.run(
        [sys.executable, "-m", "cbt", "analyze", "--help"], capture_output=True, text=True, check=False
    ).stdout
    assert "--threshold" in out and "default" in out
    listed = subprocess.run([sys.executable, "-m", "cbt", "--help"], capture_output=True, text=True, check=False).stdout
    assert re.search(r"analyze\s+item analysis of a responses CSV", listed)
