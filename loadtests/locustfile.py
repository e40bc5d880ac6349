"""Locust scenarios for cbt: students sitting an exam through the candidate API, proctors watching.

Driven by `python -m loadtests.run`, which sets these environment variables:

- CBT_LOAD_TICKETS: a file with one ticket a line; every StudentUser claims its own
  (an O_EXCL claim file per line, so it holds across processes), never reused.
- CBT_LOAD_RECORD: a JSON-lines file; after every acknowledged batch the user appends
  {attempt_id, saved_seq, acked: {"answer:q1": [seq, value], "flag:q1": [seq, bool]}, submitted}.
  `acked` holds, per question, the last value sent with seq <= saved_seq.
- CBT_LOAD_THINK: mean think time per question in seconds (default 3).
- CBT_LOAD_PROCTOR: "username:password" of a proctor; CBT_LOAD_EXAM: the exam code.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from pathlib import Path

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

BATCH = 3  # the page sends unacknowledged entries every few changes
_write_lock = threading.Lock()


def claim_ticket() -> str | None:
    path = Path(os.environ["CBT_LOAD_TICKETS"])
    claims = path.with_suffix(".claims")
    claims.mkdir(exist_ok=True)
    for i, line in enumerate(path.read_text().split()):
        try:
            os.close(os.open(claims / str(i), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return line
    return None


def record(line: dict) -> None:
    target = os.environ.get("CBT_LOAD_RECORD")
    if not target:
        return
    data = json.dumps(line, ensure_ascii=False) + "\n"
    with _write_lock, open(target, "a", encoding="utf-8") as f:
        f.write(data)


def value_for(q: dict, rng: random.Random):
    kind = q["type"]
    if kind == "single":
        return rng.choice(q["options"])["id"]
    if kind == "multiple":
        ids = [o["id"] for o in q["options"]]
        return rng.sample(ids, rng.randint(1, len(ids)))
    if kind == "truefalse4":
        return {s["id"]: rng.choice([True, False, None]) for s in q["statements"]}
    if kind == "short":
        return rng.choice(["1,5", "-2", "36", "0,25", "12"])
    if kind == "essay":
        return "Lời giải: " + " ".join(rng.choice(["x", "m", "=", "2", "<", "f(x)", "suy ra"]) for _ in range(40))
    raise ValueError(kind)


class StudentUser(FastHttpUser):
    """One candidate's sitting: login, start, answer with think time, autosave in batches, submit."""

    wait_time = between(0, 0)
    weight = 20

    def on_start(self) -> None:
        self.rng = random.Random()
        self.think = float(os.environ.get("CBT_LOAD_THINK", "3"))
        self.ticket = claim_ticket()
        if self.ticket is None:
            raise StopUser()
        self.token = None
        self.seq = 0
        self.saved_seq = 0
        self.pending: list[dict] = []
        self.sent: dict[int, dict] = {}  # seq -> entry, until acknowledged
        self.acked: dict[str, list] = {}  # "kind:ref" -> [seq, value], last acknowledged per question

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def _post(self, path: str, body: dict, name: str | None = None) -> dict | None:
        with self.client.post(path, json=body, headers=self._auth() if self.token else None, name=name,
                              catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code} {(r.text or '')[:200]}")
                return None
            return r.json()

    def _login_and_start(self) -> dict | None:
        self.token = None
        body = self._post("/api/v1/login", {"ticket": self.ticket})
        if body is None:
            return None
        self.token = body["token"]
        return self._post("/api/v1/start", {})

    def _flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        body = self._post("/api/v1/changes", {"changes": batch})
        if body is None:
            self.pending = batch + self.pending  # resend next time, as the page does
            return
        self._ack(body["saved_seq"])

    def _ack(self, saved_seq: int) -> None:
        if saved_seq > self.saved_seq:
            self.saved_seq = saved_seq
        for seq in sorted(s for s in self.sent if s <= self.saved_seq):
            e = self.sent.pop(seq)
            self.acked[f"{e['kind']}:{e['item']}"] = [seq, e["value"]]
        record({"attempt_id": self.attempt_id, "saved_seq": self.saved_seq, "acked": self.acked, "submitted": False})

    def _change(self, ref: str, kind: str, value) -> None:
        self.seq += 1
        entry = {"seq": self.seq, "item": ref, "kind": kind, "value": value}
        self.pending.append(entry)
        self.sent[self.seq] = entry
        if len(self.pending) >= BATCH:
            self._flush()

    def _reload(self) -> None:
        """The page is reloaded: session, start again, state; journal entries not yet saved are replayed."""
        self.client.get("/api/v1/session", headers=self._auth(), name="/api/v1/session")
        self._post("/api/v1/start", {}, name="/api/v1/start (resume)")
        with self.client.get("/api/v1/state", headers=self._auth(), catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code} {(r.text or '')[:200]}")
                return
            body = r.json()
            saved = int(body.get("saved_seq", (body.get("attempt") or {}).get("saved_seq", 0)))
        self._ack(saved)
        self.seq = max(self.seq, saved)
        self.pending = [self.sent[s] for s in sorted(self.sent)]  # replay from the journal

    @task
    def sit(self) -> None:
        started = self._login_and_start()
        if started is None:
            raise StopUser()
        self.attempt_id = started["attempt"]["id"]
        # A rerun of this task (after an error) is a reload: continue the journal after saved_seq.
        self._ack(int(started["attempt"].get("saved_seq") or 0))
        self.seq = max(self.seq, self.saved_seq)
        self.pending = [self.sent[s] for s in sorted(self.sent)]
        questions = [q for s in started["form"]["sections"] for q in s["items"]]
        order = questions + self.rng.sample(questions, k=len(questions) // 4)  # revisit a few
        for q in order:
            time.sleep(self.rng.expovariate(1 / self.think) if self.think > 0 else 0)
            self._change(q["ref"], "answer", value_for(q, self.rng))
            if self.rng.random() < 0.2:  # changes their mind
                self._change(q["ref"], "answer", value_for(q, self.rng))
            if self.rng.random() < 0.08:
                self._change(q["ref"], "flag", self.rng.random() < 0.7)
            if self.rng.random() < 0.03:
                self._reload()
        for _ in range(5):
            self._flush()
            if not self.pending:
                break
            time.sleep(1)
        body = self._post("/api/v1/submit", {})
        if body is not None:
            record({"attempt_id": self.attempt_id, "saved_seq": self.saved_seq, "acked": self.acked,
                    "submitted": True})
        raise StopUser()


class ProctorUser(FastHttpUser):
    """A proctor following the room's live view by polling its state."""

    wait_time = between(2, 4)
    weight = 1
    fixed_count = int(os.environ.get("CBT_LOAD_PROCTORS", "1"))

    def on_start(self) -> None:
        username, password = os.environ["CBT_LOAD_PROCTOR"].split(":", 1)
        self.code = os.environ.get("CBT_LOAD_EXAM", "BENCH")
        page = self.client.get("/login", name="/login (page)")
        marker = 'name="csrf_token" value="'
        at = page.text.find(marker)
        csrf = page.text[at + len(marker):page.text.find('"', at + len(marker))] if at >= 0 else ""
        with self.client.post("/login", data={"username": username, "password": password, "csrf_token": csrf,
                                              "next": "/proctor"},
                              allow_redirects=False, catch_response=True) as r:
            if r.status_code not in (302, 303):
                r.failure(f"proctor login: {r.status_code}")
                raise StopUser()

    @task
    def poll(self) -> None:
        self.client.get(f"/proctor/exams/{self.code}/state", name="/proctor/exams/[code]/state")

