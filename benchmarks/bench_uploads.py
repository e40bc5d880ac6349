"""Hostile uploads: what each costs to read, and what a server worker feels.

    .venv/bin/python benchmarks/bench_uploads.py [--only-parsers] [--modes process,thread,inline]

1. Parsers: each bomb (tests/bombs.py, made on the fly, never stored) is read
   by the function a route calls, in a fresh Python capped at 3 GB and 120 s;
   the time and peak memory growth are printed. It uses only functions that
   older cbt versions have too, so the same script measures a checkout from
   before the limits (`git stash`, run, `git stash pop`).
2. A real `cbt serve --workers 1` (throw-away PostgreSQL, `cbt demo` data):
   a teacher uploads each file while a second client asks /healthz every
   10 ms. Printed: the upload's time and answer, /healthz latency during the
   upload against idle, and the worker's peak RSS growth. The server reads
   uploads as cbt does (`process`: a separate process), or, to compare, on a
   thread (`thread`) or on the event loop (`inline`), by replacing
   cbt.platform.uploads.off_loop before it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

import bombs  # noqa: E402  (tests/bombs.py)

ROSTER_HEADER = ["Mã học sinh", "Họ và tên", "Ngày sinh", "Lớp", "Trường", "Phòng thi"]
ROSTER_ROW = ["0000000001", "Nguyễn Văn An", "05/03/2008", "12A1", "THPT A", "P01"]


def legit_roster(rows: int) -> bytes:
    """A real roster workbook, written by openpyxl as Excel would."""
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append([*ROSTER_HEADER, "Ghi chú"])
    for i in range(rows):
        sheet.append(
            [
                f"{i + 1:010d}",
                f"Nguyễn Văn {i}",
                datetime.date(2008, 1 + i % 12, 1 + i % 28),
                f"12A{i % 9}",
                "THPT Demo",
                f"P{i % 40:02d}",
                None,
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def item_columns() -> list[str]:
    from itembank.formats.xlsx import COLUMN_NAMES

    return list(COLUMN_NAMES)


# (label, route kind, file name, bytes)
def files() -> list[tuple[str, str, str, bytes]]:
    return [
        ("roster: dimension A1:XFD1048576", "roster", "liar.xlsx", bombs.dimension_liar(ROSTER_HEADER, [ROSTER_ROW])),
        ("roster: 300,000 empty rows", "roster", "rows.xlsx", bombs.row_bomb(300_000)),
        ("roster: 20,000 real candidates", "roster", "real.xlsx", legit_roster(20_000)),
        ("items: dimension A1:XFD1048576", "items", "liar.xlsx", bombs.dimension_liar(item_columns(), [])),
        (
            "items: 8,000 rows x XFD declared",
            "items",
            "wide.xlsx",
            bombs.xlsx(bombs.sheet([item_columns()] + [["x"]] * 8000, dimension="A1:XFD8001")),
        ),
        (
            "items: zip of 300 MB of zeros",
            "items",
            "zeros.xlsx",
            bombs.zip_of([], [(f"xl/media/i{i}.png", 60 * 1024 * 1024) for i in range(5)]),
        ),
        ("items: YAML nested 100,000 deep", "items", "deep.yaml", bombs.deep_yaml(100_000).encode()),
        ("items: YAML billion laughs", "items", "laughs.yaml", bombs.laughs_yaml(9).encode()),
        (
            "items: YAML tags aliasing a 10 KB stem",
            "items",
            "tags.yaml",
            bombs.alias_tags_yaml(10_000, 60_000).encode(),
        ),
    ]


# ---------------------------------------------------------------- 1. the parsers alone

PARSE = textwrap.dedent("""
    import json, resource, sys, time
    sys.path[:0] = {paths!r}
    import openpyxl, yaml, cbt.roster, itembank.formats.xlsx, itembank.formats.yaml_format
    from pathlib import Path
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kind, path = {kind!r}, Path({path!r})
    start = time.perf_counter()
    try:
        if kind == "roster":
            cbt.roster.parse_roster(path.read_bytes(), path.name)
        elif path.suffix == ".yaml":  # parsed, then written out as the import stores each item
            for source in itembank.formats.yaml_format.parse_text(path.read_text(), path.name).items:
                itembank.formats.yaml_format.serialise_item(source.item)
        else:
            itembank.formats.xlsx.read_xlsx(path)
        outcome = "read"
    except MemoryError:
        outcome = "MemoryError"
    except Exception as e:
        outcome = getattr(e, "code", type(e).__name__)
        problems = getattr(e, "problems", None)
        if problems:
            outcome = getattr(problems[0], "code", outcome)
    print(json.dumps({{"outcome": outcome, "seconds": time.perf_counter() - start,
                      "mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}}))
""")


def parsers(scratch: Path) -> None:
    print("1. each file read by its route's parser, in a fresh process (3 GB, 120 s caps)")
    print(f"  {'file':<38} {'size':>9} {'outcome':>20} {'seconds':>8} {'peak +MB':>9}")
    for label, kind, name, data in files():
        path = scratch / name
        path.write_bytes(data)
        code = PARSE.format(paths=[str(REPO), str(REPO / "tests")], kind=kind, path=str(path))

        def cap() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

        try:
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, preexec_fn=cap
            )
            out = (
                json.loads(done.stdout.strip().splitlines()[-1])
                if done.returncode == 0
                else {"outcome": f"exit {done.returncode}", "seconds": float("nan"), "mb": float("nan")}
            )
        except subprocess.TimeoutExpired:
            out = {"outcome": "timeout", "seconds": 120.0, "mb": float("nan")}
        print(f"  {label:<38} {len(data):>9,} {out['outcome']:>20} {out['seconds']:>8.2f} {out['mb']:>9.1f}")


# ---------------------------------------------------------------- 2. a real server

LAUNCH = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, {repo!r})
    import cbt.platform.uploads as uploads
    mode = {mode!r}
    if mode != "process":
        from concurrent.futures import ThreadPoolExecutor
        from itembank.limits import TooLarge
        thread = ThreadPoolExecutor(1)
        async def off_loop(fn, *args, **kw):
            try:
                if mode == "inline":
                    return fn(*args)
                return await asyncio.get_running_loop().run_in_executor(thread, fn, *args)
            except TooLarge as e:
                raise uploads.too_large(e) from None
        uploads.off_loop = off_loop
    from cbt.cli import main
    sys.exit(main(["serve", "--workers", "1", "--port", {port!r}]))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_of(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start_server(mode: str, env: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", LAUNCH.format(repo=str(REPO), mode=mode, port=str(port))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return server, port


async def run_server(mode: str, server: subprocess.Popen, port: int, password: str) -> None:
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    try:
        # unsafe=True: keep cookies from an IP address (127.0.0.1), as a browser does.
        async with (
            aiohttp.ClientSession() as probe,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as teacher,
        ):
            for _ in range(300):
                try:
                    if (await probe.get(base + "/healthz")).status == 200:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            worker = server.pid  # with one worker, `cbt serve` is the worker itself
            html = await (await teacher.get(base + "/login")).text()
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)
            signed_in = await teacher.post(
                base + "/login",
                data={"username": "teacher", "password": password, "csrf_token": token, "next": "/staff"},
            )
            assert 'action="/logout"' in await signed_in.text(), "the teacher could not sign in"
            idle = []
            for _ in range(50):
                start = time.perf_counter()
                await (await probe.get(base + "/healthz")).read()
                idle.append(time.perf_counter() - start)
                await asyncio.sleep(0.01)
            print(
                f"\n  mode {mode}: worker RSS {memory_of(worker)[0]:.0f} MB; /healthz idle p50"
                f" {statistics.median(idle) * 1000:.1f} ms, max {max(idle) * 1000:.1f} ms"
            )
            print(
                f"  {'file':<38} {'answer':>24} {'upload s':>9} {'/healthz p50':>13} {'max':>8} {'n':>4}"
                f" {'worker peak +MB':>16}"
            )
            for label, kind, name, data in files():
                page = "/workspace/exams/DEMO-TOAN12" if kind == "roster" else "/workspace/items/import"
                target = page + "/roster" if kind == "roster" else page
                token = re.search(
                    r'name="csrf_token" value="([0-9a-f]+)"', await (await teacher.get(base + page)).text()
                ).group(1)
                form = aiohttp.FormData()
                form.add_field("csrf_token", token)
                form.add_field("roster" if kind == "roster" else "file", data, filename=name)
                peak_before = memory_of(worker)[1]
                started = time.perf_counter()
                upload = asyncio.ensure_future(teacher.post(base + target, data=form, allow_redirects=False))
                during = []
                while not upload.done():
                    start = time.perf_counter()
                    await (await probe.get(base + "/healthz")).read()
                    during.append(time.perf_counter() - start)
                    await asyncio.sleep(0.01)
                resp = await upload
                body = await resp.text()
                seconds = time.perf_counter() - started
                code = re.search(r'data-code="([a-z_-]+)"', body)
                answer = f"{resp.status} {code.group(1) if code else ''}".strip()
                grew = memory_of(worker)[1] - peak_before
                print(
                    f"  {label:<38} {answer:>24} {seconds:>9.2f} {statistics.median(during) * 1000:>10.1f} ms"
                    f" {max(during) * 1000:>5.0f} ms {len(during):>4} {grew:>16.1f}"
                )
    finally:
        server.terminate()
        server.wait(timeout=60)


def servers(modes: list[str]) -> None:
    from throwaway_pg import throwaway_postgres

    print("\n2. uploads to a real `cbt serve --workers 1`, /healthz asked every 10 ms meanwhile")
    with throwaway_postgres("cbt-bench-uploads-") as (dsn, scratch):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
        env.update(CBT_DATABASE_URL=dsn, CBT_DATA_DIR=str(scratch / "data"), CBT_LOG_LEVEL="WARNING")
        demo = subprocess.run(
            [sys.executable, "-m", "cbt", "demo", "--no-serve"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
        password = re.search(r"teacher\s+teacher\s+password: (\S+)", demo.stdout).group(1)
        for mode in modes:
            server, port = start_server(mode, env)
            asyncio.run(run_server(mode, server, port, password))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only-parsers", action="store_true", help="part 1 only (works on older checkouts too)")
    parser.add_argument("--modes", default="process,thread,inline", help="how the server reads uploads")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="cbt-bench-uploads-") as scratch:
        parsers(Path(scratch))
    if not args.only_parsers:
        servers(args.modes.split(","))


if __name__ == "__main__":
    main()
