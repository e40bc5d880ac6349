"""Uploaded files: how big a request may be, and where its file is read.

Every file a user uploads (a roster, items as .xlsx or .yaml, a signed
release, a signing key) is read in a separate process, never on a worker's
event loop. Reading is pure Python (openpyxl, csv, the YAML composer,
markdown and math rendering for the item checks), so in a thread it would
still hold the GIL against every other request of the worker; in a process
it costs that worker nothing but the hand-over. benchmarks/bench_uploads.py
measures both (figures in docs/design.md). The readers bound what a file may
ask of them (itembank.limits); the process is the second line: its memory
and processor time are capped, so a shape no reader foresaw still ends in a
clear `too_large` refusal rather than a worker that stalls or swells.

The request itself is bounded per route (Route.max_body in routes.py, the body limit
middleware), and a body over its route's limit gets the `too_large` page
saying how much the page takes, instead of aiohttp's bare 413.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from cbt.platform.errors import FieldProblem, UserError
from itembank.limits import TooLarge, megabytes

T = TypeVar("T")
log = logging.getLogger("cbt.uploads")

# Room for the form's other fields and the multipart framing around the file.
FORM_SLACK = 64 * 1024
MAX_MEDIA_BYTES = 2 * 1024 * 1024  # an image in an item
MAX_IMPORT_BYTES = 3 * 1024 * 1024  # an item file (YAML or xlsx) imported in the workspace
# Questions from another tool (Word, LaTeX, Moodle XML, GIFT, Aiken): a Word file or
# a Moodle export carries its pictures inside, so it may be larger than an item file.
FOREIGN_IMPORT_BYTES = 16 * 1024 * 1024
# The import's preview shows every question; more than this in one file is split.
FOREIGN_MAX_QUESTIONS = 2000
# The preview's form sends the file back in base64 (cbt.authoring says why).
FOREIGN_CONFIRM_BYTES = (FOREIGN_IMPORT_BYTES + 2) // 3 * 4 + FORM_SLACK
RELEASE_UPLOAD_BYTES = 32 * 1024 * 1024  # a signed .cbtbank built in the workspace, media included
KEY_UPLOAD_BYTES = 64 * 1024  # a PEM key file is under 1 KB


# What one read may cost the process that does it. Well above what a real
# file needs (a 100,000-candidate roster workbook: 9.3 s of processor time
# and 59 MB on the 2-core test machine), well below what would hurt the server.
CPU_SECONDS = 60
MEMORY_BYTES = 2 * 1024 * 1024 * 1024


def too_large(e: TooLarge) -> UserError:
    return UserError("too_large", e.message, status=413, limit=e.limit)


def body_too_large(limit: int) -> UserError:
    return UserError(
        "too_large",
        f"the upload is larger than {megabytes(limit)}, the most this page accepts: choose a smaller file,"
        " or split it (a roster by school, items into several spreadsheets)",
        status=413,
        limit=megabytes(limit),
    )


def body_limit_middleware(limits: dict[str, int]):
    """Give each upload route its own body limit; turn any 413 into the `too_large` page.

    Placed before every middleware that may read a body (the input check, CSRF).
    """

    @web.middleware
    async def middleware(request: web.Request, handler):
        limit = limits.get(request.match_info.route.name or "")
        if limit is not None and request.method == "POST":
            if request.content_length is not None and request.content_length > limit:
                raise body_too_large(limit)  # said before a byte of it is read
            request = request.clone(client_max_size=limit)
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            raise body_too_large(request.client_max_size) from None

    return middleware


# ---------------------------------------------------------------- reading in a separate process

_executor: tuple[int, ProcessPoolExecutor] | None = None
_serving = 0  # web applications running in this process


async def serving_ctx(app: web.Application) -> AsyncIterator[None]:
    """While a web application runs here, files are read in the reading process."""
    global _serving
    _serving += 1
    try:
        yield
    finally:
        _serving -= 1


def _pool() -> ProcessPoolExecutor:
    global _executor
    # Per process: a worker forked from `cbt serve` (or after `cbt demo`
    # imported its bank) must not use its parent's executor, whose threads
    # did not come along.
    if _executor is None or _executor[0] != os.getpid():
        # spawn, not fork: a worker has threads that a fork would copy half-way.
        # One read per process: a read's memory goes back to the system when it
        # ends, and the next read finds a fresh process already started, its
        # readers imported.
        _executor = (
            os.getpid(),
            ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_warm, max_tasks_per_child=1
            ),
        )
    return _executor[1]


_READERS = (
    "cbt.exams",  # student_view, for the preview of a foreign file
    "cbt.roster",
    "cbt.releases",
    "itembank.formats.aiken",
    "itembank.formats.docx",
    "itembank.formats.foreign",
    "itembank.formats.gift",
    "itembank.formats.latex_ex",
    "itembank.formats.moodle",
    "itembank.formats.sheet",
    "itembank.formats.xlsx",
    "itembank.package",
    "openpyxl.reader.excel",
)


def _warm() -> None:
    import importlib

    for name in _READERS:
        importlib.import_module(name)


async def off_loop(
    fn: Callable[..., T], *args: Any, cpu_seconds: int = CPU_SECONDS, memory_bytes: int = MEMORY_BYTES
) -> T:
    """fn(*args) in this worker's reading process; its result, or its exception raised here.

    fn and its arguments and result must pickle (module-level functions,
    bytes, dataclasses). A TooLarge comes back as the `too_large` UserError.
    Outside a web server (the CLI, `cbt demo` before it serves) there is no
    event loop to keep free, and fn runs here, within the readers' bounds.
    """
    global _executor
    try:
        if not _serving:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_pool(), _limited, fn, args, cpu_seconds, memory_bytes)
    except TooLarge as e:
        raise too_large(e) from None
    except BrokenProcessPool as e:
        # The process ended mid-read: killed past its hard processor limit inside C code, or by the
        # system when memory ran out (or it could not start: the log says which).
        log.error("the process reading an upload ended: %s", e)
        _executor = None
        raise UserError(
            "too_large",
            f"reading the file was stopped: it needed more than {cpu_seconds} s of processor time or more"
            " memory than allowed; split it into smaller files",
            status=413,
            limit=f"{cpu_seconds} s",
        ) from None


class _OutOfTime(Exception):
    pass


def _out_of_time(signum: int, frame: Any) -> None:
    raise _OutOfTime


def _limited(fn: Callable[..., T], args: tuple, cpu_seconds: int, memory_bytes: int) -> T:
    """In the reading process: fn(*args) under caps on processor time and memory."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(used.ru_utime + used.ru_stime) + 1
    # The soft limit interrupts Python code (SIGXCPU -> _OutOfTime); if a C
    # library holds on past the hard limit, the system kills the process.
    signal.signal(signal.SIGXCPU, _out_of_time)
    resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu_seconds, spent + cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, resource.RLIM_INFINITY))
    try:
        return fn(*args)
    except _OutOfTime:
        raise TooLarge(
            f"reading the file took more than {cpu_seconds} s of processor time: split it into smaller files",
            f"{cpu_seconds} s",
        ) from None
    except MemoryError:
        raise TooLarge(
            f"reading the file needs more than {megabytes(memory_bytes)} of memory: split it into smaller files",
            megabytes(memory_bytes),
        ) from None


# ---------------------------------------------------------------- readers run in that process
#
# Kept here, or in modules as light (cbt.roster, cbt.releases,
# itembank): the reading process imports what it runs, and cbt.authoring
# (by way of cbt.accounts) would cost it an argon2 hash.


# Problems listed on the import page; the count says how many there were.
# Sent back whole, a spreadsheet with a problem in each of 50,000 rows cost
# the worker 27 MB and a 0.26 s stall to render.
MAX_LISTED = 200


def import_failed(problems: list) -> UserError:
    """import_failed listing the problems: itembank's keep their place and code,
    so that a page says each in its reader's language."""
    lines = [
        FieldProblem(p.message, p.code, where=p.where) if hasattr(p, "code") else str(p) for p in problems[:MAX_LISTED]
    ]
    if len(problems) > MAX_LISTED:
        lines.append(
            FieldProblem(
                f"... and {len(problems) - MAX_LISTED:,} more: fix these first, then import again",
                "more-problems",
                n=len(problems) - MAX_LISTED,
            )
        )
    return UserError(
        "import_failed", f"nothing was imported: {len(problems)} problem(s)", problems=lines, count=len(problems)
    )


def read_xlsx_items(data: bytes, name: str) -> list[tuple[Any, str]]:
    """(item, where it was written) of each row of an uploaded spreadsheet, or import_failed with its problems."""
    from itembank.errors import XlsxError
    from itembank.formats.xlsx import read_xlsx_bytes

    try:
        items = read_xlsx_bytes(data, name)
    except XlsxError as e:
        raise (import_failed(e.problems) if e.problems else import_failed([e.message])) from None
    if not items:
        raise UserError(
            "import_failed",
            "nothing was imported: the spreadsheet has no item rows",
            problems=[f"{name}: fill in one row per item below the header"],
            count=1,
        )
    return [(item, f"{name}: item {item.id}") for item in items]


def load_release(source: Path | bytes, public_keys: list[bytes]) -> Any:
    """itembank.package.load_release, given the trusted keys as raw bytes (keys do not pickle)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from itembank import package

    return package.load_release(source, [Ed25519PublicKey.from_public_bytes(raw) for raw in public_keys])


def raw_public_keys(keys: list) -> list[bytes]:
    from cryptography.hazmat.primitives import serialization

    return [key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) for key in keys]
