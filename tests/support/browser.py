"""A real cbt server process and a real Chromium, for page tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import pytest

from support.cli import free_port
from support.paths import REPO

# Screenshots of the pages under test, for a person to look at after a run.
SCREENSHOTS = REPO / "test-results"
SCREENSHOTS.mkdir(exist_ok=True)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's services, which this
# closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if os.environ.get("CBT_SKIP_BROWSER_TESTS"):
        # .ci/run's second pass (PostgreSQL 15): the pages were tested in the first.
        pytest.skip("browser tests skipped in this pass (CBT_SKIP_BROWSER_TESTS)")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


@contextmanager
def live_server(dsn: str, port: int, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
    env.update(
        CBT_DATABASE_URL=dsn, CBT_SECRET_KEY="browser-test-secret-" + "y" * 30, CBT_LOG_LEVEL="WARNING", **env_extra
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cbt", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"cbt serve exited: {proc.stderr.read()}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("cbt serve did not become healthy") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def chromium_page(viewport=(1366, 768), **context_options):
    """`context_options`: Playwright's new_context options besides the viewport (timezone_id, locale)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, **context_options)
            page = context.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            yield page, problems
        finally:
            browser.close()


async def on_live_server(dsn: str, scenario, *args, **server_env):
    """scenario(base, *args) in a thread, against a fresh `cbt serve` on dsn
    (server_env: extra CBT_* settings); skipped where Chromium cannot run.
    The scenario drives Chromium synchronously (Playwright's sync API), so
    it runs beside the test's event loop, not on it."""
    require_chromium()

    def run():
        with live_server(dsn, free_port(), **server_env) as base:
            return scenario(base, *args)

    return await asyncio.to_thread(run)
