"""One scoring path: every caller that scores an attempt goes through
grading.score_attempt, which scores the same stored responses the same way
whoever submits (the student, the deadline sweep, a proctor) and whenever
(at submit, or again after an essay mark)."""

import ast
import json

import pytest
from support.delivery import changes_of, correct_answers, started
from support.paths import REPO
from support.results import make_exam, sit_all

from cbt import grading, marking, submission
from cbt.platform.errors import Conflict

CBT = REPO / "cbt"


def _calls(tree: ast.AST, module: str, name: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == module
    ]


def test_only_grading_scores_attempts():
    # scoring.score_attempt is the pure rule; reading what to score and
    # storing the result around it is grading's alone, so it cannot drift.
    callers = {}
    for path in CBT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if lines := _calls(tree, "scoring", "score_attempt"):
            callers[path.relative_to(CBT).as_posix()] = lines
    assert set(callers) == {"grading.py"}, callers


def test_bank_items_are_read_by_key_everywhere():
    # `id = ANY($1)` gets a generic plan that scans bank_items when a
    # connection first planned it on a small bank; bank.item_sources does not.
    offenders = [
        path.relative_to(CBT).as_posix()
        for path in CBT.rglob("*.py")
        if "bank_items WHERE id = ANY" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


async def _scores(conn) -> list[tuple]:
    return [
        tuple(r)
        for r in await conn.fetch(
            "SELECT a.id, a.score, a.max_score, a.provisional, a.section_scores, "
            "(SELECT json_agg(json_build_array(item_ref, score) ORDER BY item_ref) FROM responses r "
            " WHERE r.attempt_id = a.id) FROM attempts a ORDER BY a.id"
        )
    ]


async def test_scoring_again_gives_what_the_submit_stored(client, conn, signed_demo):
    await sit_all(client, conn, await make_exam(conn, signed_demo, "THPT-G"))
    submitted = await _scores(conn)
    assert len({row[1] for row in submitted}) > 2  # the candidates' totals differ
    for attempt_id, *_ in submitted:
        async with conn.transaction():
            graded = await grading.score_attempt(conn, attempt_id)
        assert graded.responses_sha256 is None  # a re-score submits nothing
    assert await _scores(conn) == submitted
    # marking's re-score is the same function
    for attempt_id, *_ in submitted:
        await marking.rescore(conn, attempt_id)
    assert await _scores(conn) == submitted


async def test_every_submitter_stores_the_same_score_for_the_same_answers(client, conn, signed_demo):
    tickets = await make_exam(conn, signed_demo, "THPT-G")
    codes = sorted(tickets)[:3]
    for code in codes:
        headers, body = await started(client, tickets[code])
        answers = await correct_answers(conn, body)  # forms differ in order; every answer is right
        resp = await client.post("/api/v1/changes", json={"changes": changes_of(answers)}, headers=headers)
        assert resp.status == 200
    ids = {
        code: await conn.fetchval(
            "SELECT a.id FROM attempts a JOIN candidates c ON c.id = a.candidate_id WHERE c.code = $1", code
        )
        for code in codes
    }
    # the student, the deadline sweep and a proctor submit one each
    headers, _ = await started(client, tickets[codes[0]])
    assert (await client.post("/api/v1/submit", json={}, headers=headers)).status == 200
    await conn.execute("UPDATE attempts SET deadline = now() - interval '1 hour' WHERE id = $1", ids[codes[1]])
    assert await submission.close_expired_attempts(client.server.app) == 1
    await submission.finalize(client.server.app, conn, ids[codes[2]], "proctor")
    rows = await conn.fetch(
        "SELECT id, submitted_by, score, max_score, provisional, responses_sha256 "
        "FROM attempts WHERE id = ANY($1::bigint[])",
        list(ids.values()),
    )
    assert sorted(r["submitted_by"] for r in rows) == ["candidate", "deadline", "proctor"]
    assert len({(r["score"], r["max_score"], r["provisional"]) for r in rows}) == 1
    # The essay waits for its marker: the same provisional score, below the maximum, for all three.
    assert all(r["provisional"] and r["score"] < r["max_score"] and len(r["responses_sha256"]) == 64 for r in rows)
    # each submission's audit event names the digest it stored
    events = await conn.fetch(
        "SELECT attempt_id, content FROM audit_events WHERE kind = 'submit' UNION ALL "
        "SELECT attempt_id, content FROM audit_pending WHERE kind = 'submit'"
    )
    named = {e["attempt_id"]: json.loads(e["content"])["responses_sha256"] for e in events}
    assert named == {r["id"]: r["responses_sha256"] for r in rows}


async def test_a_submit_scores_once_and_a_rescore_needs_a_submitted_attempt(client, conn, signed_demo):
    tickets = await make_exam(conn, signed_demo, "THPT-G")
    await started(client, tickets[sorted(tickets)[0]])
    attempt_id = await conn.fetchval("SELECT id FROM attempts")
    with pytest.raises(RuntimeError, match="transaction"):
        await grading.score_attempt(conn, attempt_id, submit_by="candidate")
    async with conn.transaction():
        with pytest.raises(Conflict) as info:
            await grading.score_attempt(conn, attempt_id)
    assert info.value.code == "attempt_not_marked"
    async with conn.transaction():
        first = await grading.score_attempt(conn, attempt_id, submit_by="candidate")
    async with conn.transaction():
        again = await grading.score_attempt(conn, attempt_id, submit_by="deadline")
    assert first is not None and again is None
    assert await conn.fetchval("SELECT submitted_by FROM attempts WHERE id = $1", attempt_id) == "candidate"
