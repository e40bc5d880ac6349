"""The load-test harness: its zero-loss check finds a lost answer, and a short
`lab` run (the CI smoke test) ends with no error and nothing lost. Timing is
never asserted: these machines are shared."""

import json
import os
import subprocess
import sys

import pytest
from support.delivery import STUDENTS, started
from support.paths import REPO

from loadtests import run


async def test_the_check_finds_a_lost_or_changed_answer(client, conn, dsn, exam):
    headers, body = await started(client, exam[STUDENTS[0].code])
    attempt_id = body["attempt"]["id"]
    refs = [q["ref"] for s in body["form"]["sections"] for q in s["items"]][:3]
    # Flags are valid on every question type, whatever the form's option letters are.
    sent = [{"seq": i + 1, "item": ref, "kind": "flag", "value": True} for i, ref in enumerate(refs)]
    resp = await client.post("/api/v1/changes", json={"changes": sent}, headers=headers)
    assert resp.status == 200 and (await resp.json())["saved_seq"] == 3
    acked = {f"flag:{c['item']}": [c["seq"], c["value"]] for c in sent}
    records = {attempt_id: {"attempt_id": attempt_id, "saved_seq": 3, "acked": acked, "submitted": False}}
    assert (await run.check(dsn, records))["lost"] == 0

    # The server said 3 were saved but one is gone: the check must say so.
    await conn.execute("DELETE FROM response_history WHERE attempt_id = $1 AND seq = 2", attempt_id)
    result = await run.check(dsn, records)
    assert result["lost"] == 2 and "missing from the history" in result["lost_detail"][0]

    # A value acknowledged but not the one stored is a loss too.
    acked[f"flag:{refs[0]}"] = [1, False]
    assert any("differs" in x for x in (await run.check(dsn, records))["lost_detail"])

    # An attempt reported submitted but not scored is caught.
    records[attempt_id]["submitted"] = True
    assert (await run.check(dsn, records))["submitted_unscored"] == 1


def test_latest_records_merges_every_process_file(tmp_path):
    """Each line holds what one acknowledgement newly covered; a student may have moved between
    Locust processes (files), so per question the highest seq wins, whatever the file order."""
    base = tmp_path / "acked.jsonl"

    def line(attempt, saved, acked, submitted=False):
        return json.dumps({"attempt_id": attempt, "saved_seq": saved, "acked": acked, "submitted": submitted}) + "\n"

    (tmp_path / "acked.jsonl.1").write_text(
        line(7, 9, {"answer:q1": [9, "C"], "flag:q1": [8, True]}) + line(8, 1, {"answer:q5": [1, "D"]})
    )
    (tmp_path / "acked.jsonl.2").write_text(
        line(7, 4, {"answer:q1": [2, "A"], "answer:q2": [4, "B"]}) + line(7, 9, {}, submitted=True)
    )
    got = run.latest_records(base)
    assert got[7] == {
        "attempt_id": 7,
        "saved_seq": 9,
        "submitted": True,
        "acked": {"answer:q1": [9, "C"], "flag:q1": [8, True], "answer:q2": [4, "B"]},
    }
    assert got[8] == {"attempt_id": 8, "saved_seq": 1, "submitted": False, "acked": {"answer:q5": [1, "D"]}}


def test_seated_latency_is_exact_and_split_by_ten_seconds():
    # Two Locust processes' windows; the first bucket holds a stall the whole window's p99 would hide
    # the time of.
    a = {"from": 1000.0, "to": 1030.0, "batches": 3, "samples": [[1001.0, 10.0], [1002.0, 900.0], [1025.0, 20.0]]}
    b = {"from": 1000.5, "to": 1030.0, "batches": 2, "samples": [[1012.0, 30.0], [1029.9, 40.0]]}
    got = run.seated_latency([a, b])
    assert got["count"] == 5 and got["p50_ms"] == 30.0 and got["max_ms"] == 900.0
    assert [(x["from_s"], x["count"], x["max_ms"]) for x in got["buckets"]] == [
        (0, 2, 900.0),
        (10, 1, 30.0),
        (20, 2, 40.0),
    ]
    assert run.seated_latency([{"from": 1.0, "to": 2.0, "batches": 0}]) == {}


def test_the_server_logs_errors_are_found(tmp_path):
    log = tmp_path / "server.log"
    log.write_text(
        "cbt is serving on http://127.0.0.1:1/ with 2 worker(s); Ctrl-C stops it\n"
        '{"level": "warning", "logger": "cbt.platform.server", "msg": "worker 7 exited (-9); starting another"}\n'
        '{"level": "error", "logger": "asyncio", "msg": "an error occurred during closing"}\n'
        'Traceback (most recent call last):\n  File "x.py", line 1\n'
    )
    assert run.logged_errors(log) == ["asyncio: an error occurred during closing", "Traceback (most recent call last):"]
    assert run.logged_errors(tmp_path / "missing.log") == []


@pytest.mark.skipif(
    bool(os.environ.get("CBT_DATABASE_URL")),
    reason="the smoke run starts its own embedded PostgreSQL; it runs once, in the embedded pass",
)
@pytest.mark.slow
def test_lab_profile_smoke_run_loses_nothing(tmp_path):
    """What CI runs: `python -m loadtests.run --profile lab --duration 30`, failing only on errors or loss."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CBT_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests.run",
            "--profile",
            "lab",
            "--duration",
            "30",
            "--ceiling",
            "0",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(next(tmp_path.glob("lab-*/summary.json")).read_text())
    assert summary["errors"] == 0 and summary["lost"] == 0
    assert summary["acknowledged_changes"] > 0 and summary["submitted"] == 40
    assert summary["submitted_unscored"] == 0 and summary["any_submitted_unscored_in_db"] == 0
    # The proctor followed the room's live view, and the server logged no error, its stop included.
    assert summary["proctor_updates"]["count"] > 0 and summary["server_log_errors"] == 0


# Run in a child: importing Locust monkey-patches the whole process for gevent.
KEEP_ALIVE_CHECK = """
import fcntl, os, socket
from loadtests import locustfile  # installs the check on geventhttpclient's pool
from geventhttpclient.connectionpool import ConnectionPool
pool = ConnectionPool.__new__(ConnectionPool)
ours, server = socket.socketpair()
high = socket.socket(fileno=fcntl.fcntl(ours.fileno(), fcntl.F_DUPFD, 1500))
ours.close()
print(high.fileno() >= 1024, pool._is_socket_alive(high), end=" ")
server.close()  # the server hangs up: the idle connection must not be reused
print(pool._is_socket_alive(high))
"""


def test_an_idle_connection_above_descriptor_1024_is_reused():
    done = subprocess.run(
        [sys.executable, "-c", KEEP_ALIVE_CHECK],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "CBT_LOAD_TICKETS": "unused"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "False"]
