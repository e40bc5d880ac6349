"""Locust scenarios for cbt: students sitting an exam through the candidate API, proctors watching.

Driven by `python -m loadtests.run`, which sets these environment variables:

- CBT_LOAD_TICKETS: a file with one ticket a line; every StudentUser claims its own through a
  counter file under an flock, so it holds across Locust worker processes; a ticket is never reused.
- CBT_LOAD_RECORD: a JSON-lines file (one per process: ``.PID`` is appended); after every
  acknowledged batch the user appends {attempt_id, saved_seq, acked: {"answer:q1": [seq, value],
  "flag:q1": [seq, bool]}, submitted}. `acked` holds what this acknowledgement newly covers: per
  question, the last value sent with seq <= saved_seq (run.latest_records merges the lines, the
  highest seq per question winning). Only the news, so the load generator does not re-encode a
  whole sitting per batch.
- CBT_LOAD_THINK: mean think time per question in seconds (default 3).
- CBT_LOAD_PASSES: how many times a student goes over the whole paper (default 1), to make sittings
  outlast a run.
- CBT_LOAD_FLAKY: the share of students (0..1) who lose the network once for 10-60 s: they keep
  answering, the batch in flight when the network drops reaches the server but its answer is lost,
  and on reconnecting they replay their journal.
- CBT_LOAD_PROCTOR: "username:password" of a proctor; CBT_LOAD_EXAM: the exam code.
  Each ProctorUser follows one room (P00, P01, ...), as a proctor's console does.

While every student is seated (from 10 s after the last one has spawned and got through login and
Start, until the first one stops answering), each acknowledged batch's time is also counted under
"SEATED POST /api/v1/changes": the steady-state figure, apart from the arrival of the students and the
end of the sittings.

Transient failures (no connection, 502/503/504, 429 admission_wait) are retried the way the exam
page retries them, with back-off, for up to CBT_LOAD_RETRY_BUDGET seconds (default 120); each retry
is counted under the request name "(retried) ..." as a success, so a run shows how often students had
to retry, and only what still failed after the budget is an error.

User classes: StudentUser and ProctorUser for the profiles; SaturatingStudent (no think time, batches
back to back) and BareUser (the bare aiohttp + asyncpg endpoint of loadtests/bare.py) for the
ceiling measurement, chosen by class name on the Locust command line.
"""

from __future__ import annotations

import fcntl
import gc
import itertools
import json
import os
import random
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from gevent.monkey import get_original
from geventhttpclient.connectionpool import ConnectionPool
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

BATCH = 3  # the page sends unacknowledged entries every few changes
TRANSIENT = {0, 429, 502, 503, 504}


_poll = get_original("select", "poll")


def _idle_socket_alive(self, sock) -> bool:
    """Whether a pooled keep-alive connection may be reused: nothing to read on it (no FIN, no stray bytes).

    geventhttpclient 2.6 asks select(), which fails for descriptors of 1024 and over (FD_SETSIZE); it
    then takes the connection for dead. So with more than about 1,000 users in one Locust process,
    most users opened a new connection for every request (measured in 75 s of the 5,000-student
    profile: 17,522 connections for 27,962 requests, 12,521 of them replacing one taken for dead),
    a cost on both sides that a browser, which keeps its connection, does not put on the server.
    poll() has no such limit; a zero timeout never blocks."""
    if sock is None or sock.fileno() < 0:
        return False
    poller = _poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


ConnectionPool._is_socket_alive = _idle_socket_alive


def claim_ticket() -> str | None:
    """The next unclaimed ticket: a counter file under an exclusive flock, O(1) per claim."""
    path = Path(os.environ["CBT_LOAD_TICKETS"])
    with open(path.with_suffix(".next"), "a+") as counter:
        fcntl.flock(counter, fcntl.LOCK_EX)
        counter.seek(0)
        index = int(counter.read() or 0)
        counter.seek(0)
        counter.truncate()
        counter.write(str(index + 1))
    tickets = _tickets(path)
    return tickets[index] if index < len(tickets) else None


_TICKETS: list[str] = []


def _tickets(path: Path) -> list[str]:
    if not _TICKETS:
        _TICKETS.extend(path.read_text().split())
    return _TICKETS


def record(line: dict) -> None:
    target = os.environ.get("CBT_LOAD_RECORD")
    if not target:
        return
    # One file per process and one write() per line: concurrent users never interleave.
    fd = os.open(f"{target}.{os.getpid()}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


class Question(NamedTuple):
    """What a simulated student keeps of a question: a tuple of strings, which the garbage collector stops
    tracking. (Keeping the parsed form, some 150 objects a student, made Locust's full collections take up
    to 0.9 s with 5,000 students, and every request in flight was timed through the pause.)"""

    ref: str
    type: str
    options: tuple[str, ...]
    statements: tuple[str, ...]

    @classmethod
    def of(cls, item: dict) -> Question:
        return cls(
            item["ref"],
            item["type"],
            tuple(o["id"] for o in item.get("options") or ()),
            tuple(s["id"] for s in item.get("statements") or ()),
        )


def value_for(q: Question, rng: random.Random):
    kind = q.type
    if kind == "single":
        return rng.choice(q.options)
    if kind == "multiple":
        return rng.sample(q.options, rng.randint(1, len(q.options)))
    if kind == "truefalse4":
        return {s: rng.choice([True, False, None]) for s in q.statements}
    if kind == "short":
        return rng.choice(["1,5", "-2", "36", "0,25", "12"])
    if kind == "essay":
        return "Lời giải: " + " ".join(rng.choice(["x", "m", "=", "2", "<", "f(x)", "suy ra"]) for _ in range(40))
    raise ValueError(kind)


# The steady window: opens SETTLE_SECONDS after every student of this process has been spawned and has
# got through login and Start (under an arrival backlog that is well after Locust stops spawning), and
# closes when the first student of this process finishes answering, or when the run stops. Its span,
# count and every batch's (time, ms) go to CBT_LOAD_RECORD-window.PID, so the harness can give the rate
# and the latency, 10 s by 10 s, while every student sits.
SEATED_NAME = "POST /api/v1/changes"
_SEATED = {
    "spawned_at": None,
    "arriving": 0,
    "last_arrived": 0.0,
    "from": None,
    "closed_at": None,
    "count": 0,
    "samples": [],
}
SETTLE_SECONDS = 10.0


@events.spawning_complete.add_listener
def _all_spawned(user_count: int, **_kw) -> None:
    if _SEATED["spawned_at"] is None:
        _SEATED["spawned_at"] = time.time()


def _arriving(delta: int) -> None:
    """A student starts (+1) or ends (-1) its arrival: login and Start, retries included."""
    _SEATED["arriving"] += delta
    if delta < 0:
        _SEATED["last_arrived"] = time.time()


def seated() -> bool:
    now = time.time()
    if _SEATED["from"] is None:
        spawned = _SEATED["spawned_at"]
        # A second's grace: the last users spawned may not have run their on_start yet.
        if spawned is None or _SEATED["arriving"] or now < spawned + 1.0:
            return False
        _SEATED["from"] = max(spawned, _SEATED["last_arrived"]) + SETTLE_SECONDS
        # What every student keeps for the rest of the run exists now: out of the collector's way, so its
        # full collections do not pause this process (and the timing of every request in flight).
        gc.freeze()
    return _SEATED["closed_at"] is None and now >= _SEATED["from"]


def close_window() -> None:
    if _SEATED["closed_at"] is not None or _SEATED["from"] is None:
        return
    _SEATED["closed_at"] = time.time()
    target = os.environ.get("CBT_LOAD_RECORD")
    if target and _SEATED["count"]:
        Path(f"{target}-window.{os.getpid()}").write_text(
            json.dumps(
                {
                    "from": _SEATED["from"],
                    "to": _SEATED["closed_at"],
                    "batches": _SEATED["count"],
                    "samples": _SEATED["samples"],
                }
            )
        )


@events.test_stopping.add_listener
def _stopping(**_kw) -> None:
    close_window()


def _count(kind: str, name: str, ms: float, length: int = 0) -> None:
    """Something that is not a request, counted in Locust's table (as a success) under kind and name."""
    events.request.fire(
        request_type=kind, name=name, response_time=ms, response_length=length, exception=None, context={}
    )


def _fail(kind: str, name: str, message: str) -> None:
    """A failure that is not a request's, counted in Locust's table as an error under kind and name."""
    events.request.fire(
        request_type=kind, name=name, response_time=0, response_length=0, exception=RuntimeError(message), context={}
    )


def _count_retry(name: str, elapsed_ms: float) -> None:
    _count("RETRY", f"(retried) {name}", elapsed_ms)


class Candidate(FastHttpUser):
    """What every simulated candidate shares: retrying requests, the journal, acknowledgements."""

    abstract = True
    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.retry_budget = float(os.environ.get("CBT_LOAD_RETRY_BUDGET", "120"))
        self.ticket = claim_ticket()
        if self.ticket is None:
            raise StopUser()
        self.token = None
        self.attempt_id = None
        self.seq = 0
        self.saved_seq = 0
        self.pending: list[dict] = []
        self.sent: dict[int, dict] = {}  # seq -> entry, until acknowledged

    def _auth(self) -> dict | None:
        return {"Authorization": f"Bearer {self.token}"} if self.token else None

    def _request(
        self, method: str, path: str, body: dict | None = None, name: str | None = None, retry: bool = True
    ) -> dict | None:
        """One API call, retried on transient failures as the exam page does; None if it failed for good."""
        name = name or path
        waited, attempt = 0.0, 0
        while True:
            kwargs = {"json": body} if method == "POST" else {}
            with self.client.request(method, path, headers=self._auth(), name=name, catch_response=True, **kwargs) as r:
                if r.status_code == 200:
                    return r.json()
                transient = r.status_code in TRANSIENT
                if not (retry and transient and waited < self.retry_budget):
                    r.failure(f"{r.status_code} {(r.text or '')[:200]}")
                    return None
                r.success()
                pause = min(8.0, 0.5 * 2**attempt) * (0.5 + self.rng.random())
                if r.status_code == 429:
                    try:
                        pause = max(0.5, float(r.json()["error"]["details"]["retry_after"]))
                    except (ValueError, KeyError, TypeError):
                        pass
            _count_retry(name, pause * 1000)
            time.sleep(pause)
            waited += pause
            attempt += 1

    def _login_and_start(self) -> dict | None:
        self.token = None
        body = self._request("POST", "/api/v1/login", {"ticket": self.ticket})
        if body is None:
            return None
        self.token = body["token"]
        return self._request("POST", "/api/v1/start", {})

    def _begin(self) -> list[Question]:
        _arriving(+1)
        try:
            started = self._login_and_start()
        finally:
            _arriving(-1)
        if started is None:
            raise StopUser()
        self.attempt_id = started["attempt"]["id"]
        self._ack(int(started["attempt"].get("saved_seq") or 0))
        self.seq = max(self.seq, self.saved_seq)
        self.pending = [self.sent[s] for s in sorted(self.sent)]
        return [Question.of(q) for s in started["form"]["sections"] for q in s["items"]]

    def _send(self, batch: list[dict], retry: bool = True) -> dict | None:
        in_window, t0 = seated(), time.perf_counter()
        body = self._request("POST", "/api/v1/changes", {"changes": batch}, retry=retry)
        if body is not None and in_window and seated():
            ms = (time.perf_counter() - t0) * 1000
            _SEATED["count"] += 1
            _SEATED["samples"].append((round(time.time(), 2), round(ms, 1)))
            _count("SEATED", SEATED_NAME, ms)
        return body

    def _flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        body = self._send(batch)
        if body is None:
            self.pending = batch + self.pending  # resend next time, as the page does
            return
        self._ack(body["saved_seq"])

    def _ack(self, saved_seq: int) -> None:
        if saved_seq > self.saved_seq:
            self.saved_seq = saved_seq
        news = {}
        for seq in sorted(s for s in self.sent if s <= self.saved_seq):
            e = self.sent.pop(seq)
            news[f"{e['kind']}:{e['item']}"] = [seq, e["value"]]
        record({"attempt_id": self.attempt_id, "saved_seq": self.saved_seq, "acked": news, "submitted": False})

    def _queue(self, ref: str, kind: str, value) -> None:
        self.seq += 1
        entry = {"seq": self.seq, "item": ref, "kind": kind, "value": value}
        self.pending.append(entry)
        self.sent[self.seq] = entry


class StudentUser(Candidate):
    """One candidate's sitting: login, start, answer with think time, autosave in batches, submit."""

    weight = 20

    def on_start(self) -> None:
        super().on_start()
        self.think = float(os.environ.get("CBT_LOAD_THINK", "3"))
        self.offline_until = 0.0
        self.flaky = self.rng.random() < float(os.environ.get("CBT_LOAD_FLAKY", "0"))

    def _change(self, ref: str, kind: str, value) -> None:
        self._queue(ref, kind, value)
        if len(self.pending) >= BATCH and time.monotonic() >= self.offline_until:
            self._back_online()
            self._flush()

    def _lose_network(self) -> None:
        """The network drops while a batch is in flight: the server saves it but its answer is lost."""
        if self.pending:
            self._send(list(self.pending), retry=False)  # reached the server; the reply is "lost"
        seconds = self.rng.uniform(10, 60)
        self.offline_until = time.monotonic() + seconds
        self.was_offline = True
        _count("FLAKY", "network lost for (ms)", seconds * 1000)

    def _back_online(self) -> None:
        """Counted once per outage: how many journal entries the student replays."""
        if getattr(self, "was_offline", False):
            self.was_offline = False
            self.pending = [self.sent[s] for s in sorted(self.sent)]
            _count("FLAKY", "journal entries replayed on reconnecting (length)", 0, len(self.pending))

    def _reload(self) -> None:
        """The page is reloaded: session, start again, state; journal entries not yet saved are replayed."""
        self._request("GET", "/api/v1/session")
        self._request("POST", "/api/v1/start", {}, name="/api/v1/start (resume)")
        body = self._request("GET", "/api/v1/state")
        if body is None:
            return
        saved = int(body.get("saved_seq", (body.get("attempt") or {}).get("saved_seq", 0)))
        self._ack(saved)
        self.seq = max(self.seq, saved)
        self.pending = [self.sent[s] for s in sorted(self.sent)]  # replay from the journal

    @task
    def sit(self) -> None:
        questions = self._begin()
        order = questions + self.rng.sample(questions, k=len(questions) // 4)  # revisit a few
        for _ in range(int(os.environ.get("CBT_LOAD_PASSES", "1")) - 1):  # go over the whole paper again
            order += self.rng.sample(questions, k=len(questions))
        drop_at = self.rng.randrange(len(order)) if self.flaky else -1
        for i, q in enumerate(order):
            time.sleep(self.rng.expovariate(1 / self.think) if self.think > 0 else 0)
            if i == drop_at:
                self._lose_network()
            self._change(q.ref, "answer", value_for(q, self.rng))
            if self.rng.random() < 0.2:  # changes their mind
                self._change(q.ref, "answer", value_for(q, self.rng))
            if self.rng.random() < 0.08:
                self._change(q.ref, "flag", self.rng.random() < 0.7)
            if self.rng.random() < 0.03 and time.monotonic() >= self.offline_until:
                self._reload()
        close_window()  # from now on, not every student is answering
        if time.monotonic() < self.offline_until:
            time.sleep(self.offline_until - time.monotonic())
        # Back online: replay everything the server has not acknowledged, then submit.
        self._back_online()
        self.pending = [self.sent[s] for s in sorted(self.sent)]
        for _ in range(5):
            self._flush()
            if not self.pending:
                break
            time.sleep(1)
        body = self._request("POST", "/api/v1/submit", {})
        if body is not None:
            record({"attempt_id": self.attempt_id, "saved_seq": self.saved_seq, "acked": {}, "submitted": True})
        raise StopUser()


class SaturatingStudent(Candidate):
    """Sends answer batches back to back, without thinking: cbt's autosave throughput ceiling."""

    @task
    def hammer(self) -> None:
        questions = self._begin()
        while True:
            for q in self.rng.sample(questions, BATCH):
                self._queue(q.ref, "answer", value_for(q, self.rng))
            self._flush()


class BareUser(FastHttpUser):
    """The same size of request to loadtests/bare.py: one upsert per request, nothing else."""

    wait_time = between(0, 0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.key = self.rng.getrandbits(62)
        self.seq = 0

    @task
    def save(self) -> None:
        self.seq += BATCH
        changes = [
            {
                "seq": self.seq - i,
                "item": f"q{self.rng.randrange(30)}",
                "kind": "answer",
                "value": self.rng.choice("ABCD"),
            }
            for i in range(BATCH)
        ]
        with self.client.post("/bare", json={"key": self.key, "changes": changes}, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code} {(r.text or '')[:200]}")


class ProctorUser(FastHttpUser):
    """A proctor following their room's live view as the console does: the Server-Sent Events
    stream `/proctor/exams/BENCH/events?room=P00` (the next proctor P01, and so on; the roster seats
    40 students a room, as benchmarks/bench_delivery.py does). The server re-reads the room and sends
    it when the exam changes, at most every 2 s (proctor.UPDATE_SECONDS), else every 15 s.

    Each update is counted as `SSE room update`, its time being the gap since the previous update:
    how stale the proctor's screen got. A server too busy to keep consoles fresh shows as long gaps."""

    wait_time = between(1, 3)  # before reconnecting, as a browser's EventSource waits
    weight = 1
    fixed_count = int(os.environ.get("CBT_LOAD_PROCTORS", "1"))

    rooms = itertools.count()

    def on_start(self) -> None:
        username, password = os.environ["CBT_LOAD_PROCTOR"].split(":", 1)
        self.code = os.environ.get("CBT_LOAD_EXAM", "BENCH")
        self.room = f"P{next(ProctorUser.rooms):02d}"
        page = self.client.get("/login", name="/login (page)")
        marker = 'name="csrf_token" value="'
        at = page.text.find(marker)
        csrf = page.text[at + len(marker) : page.text.find('"', at + len(marker))] if at >= 0 else ""
        with self.client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": csrf, "next": "/proctor"},
            allow_redirects=False,
            catch_response=True,
        ) as r:
            if r.status_code not in (302, 303):
                r.failure(f"proctor login: {r.status_code}")
                raise StopUser()

    @task
    def follow(self) -> None:
        name = "/proctor/exams/[code]/events"
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.client.cookiejar)
        started = last = time.perf_counter()
        updates = 0
        try:
            for data in sse_data(self.host, f"/proctor/exams/{self.code}/events?room={self.room}", cookie):
                now = time.perf_counter()
                state = json.loads(data)
                # A room may be empty (more proctors than rooms), never hold another room's students.
                strangers = [c["code"] for c in state["candidates"] if c["room"] != self.room]
                if strangers:
                    _fail(
                        "SSE",
                        "room update",
                        f"room {self.room}: {len(strangers)} of "
                        f"{len(state['candidates'])} candidates are of other rooms",
                    )
                    return
                _count("SSE", "room update" if updates else f"{name} (first update)", (now - last) * 1000, len(data))
                updates += 1
                last = now
        except SSERefused as e:
            _fail("SSE", name, str(e))
            return
        except OSError:
            pass
        # The stream ended: a worker went away or the database did (a fault run). The console's
        # EventSource reconnects by itself; so does this proctor, after wait_time.
        _count_retry(name, (time.perf_counter() - started) * 1000)


class SSERefused(Exception):
    """The events stream answered with something other than a 200 event stream."""


def sse_data(base: str, path: str, cookie: str) -> Iterator[bytes]:
    """The `data:` of each event of a Server-Sent Events stream, as soon as the event is whole.

    A socket of its own, not geventhttpclient: its read(n) waits for n bytes, so an update would
    be seen only when the next one pushed the buffer over n. aiohttp sends each event as one
    chunk of a chunked response; a buffered reader's read(size) waits for exactly that chunk."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port or 80), timeout=60)
    try:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {cookie}\r\n\r\n".encode()
        )
        stream = sock.makefile("rb")
        status = stream.readline()
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip().lower()
        code = status.split(b" ")[1] if status.count(b" ") else b""
        if code != b"200" or "chunked" not in headers.get("transfer-encoding", ""):
            if not code.isdigit() or int(code) in TRANSIENT:
                raise OSError(status.decode("latin-1").strip() or "the connection closed")
            raise SSERefused(f"{status.decode('latin-1').strip()} {headers.get('content-type', '')}")
        pending = b""
        while size := int(stream.readline().split(b";")[0] or b"0", 16):
            pending += stream.read(size)
            stream.readline()  # the CRLF after each chunk
            while b"\n\n" in pending:
                event, pending = pending.split(b"\n\n", 1)
                data = b"\n".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))
                if data:
                    yield data
    finally:
        sock.close()
