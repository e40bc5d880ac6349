"""Essay marks: checking what a marker types, anonymous numbers, re-scoring
to a final total, re-marking with history and audit, and refusals that
change nothing."""

import json
from decimal import Decimal

import pytest
from support.delivery import STUDENTS, changes_of, correct_answers, exam_yaml, started
from support.results import essay_pk, make_exam, sit_all

from cbt import accounts, audit, exams, marking, results
from cbt.platform.errors import UserError


async def staff_member(conn, username: str) -> accounts.Staff:
    r = await conn.fetchrow(
        "SELECT u.id, u.username, u.display_name, u.role, u.org_id, o.code AS org_code, o.kind AS org_kind "
        "FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.username = $1",
        username,
    )
    return accounts.Staff(**dict(r))


@pytest.fixture
async def sat_exam(client, conn, staff, signed_demo):
    """TOAN-T of THPT-A, sat and submitted by eight candidates (essays unmarked)."""
    tickets = await make_exam(conn, signed_demo, "THPT-A")
    await sit_all(client, conn, tickets)
    return await exams.get_exam(conn, "TOAN-T")


async def snapshot(conn) -> dict:
    """Everything a refused mark must leave as it was."""
    return {
        "attempts": [
            tuple(r)
            for r in await conn.fetch("SELECT id, score, provisional, section_scores FROM attempts ORDER BY id")
        ],
        "scores": [
            tuple(r) for r in await conn.fetch("SELECT attempt_id, item_ref, score FROM responses ORDER BY 1, 2")
        ],
        "marks": await conn.fetchval("SELECT count(*) FROM essay_marks"),
        "history": await conn.fetchval("SELECT count(*) FROM essay_mark_history"),
        # Submits queue their events for the audit chainer, which may move them into audit_events
        # between two snapshots; the sum, read in one statement, is what a refused mark must not change.
        "audit": await conn.fetchval(
            "SELECT (SELECT count(*) FROM audit_events) + (SELECT count(*) FROM audit_pending)"
        ),
    }


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("0.75", Decimal("0.75")),
        ("0,75", Decimal("0.75")),
        (" 1 ", Decimal("1")),
        ("0", Decimal("0")),
        ("1.00", Decimal("1")),
    ],
)
def test_marks_are_exact_decimals(typed, expected):
    mark = marking.parse_mark(typed, Decimal("1"), 2)
    assert isinstance(mark, Decimal) and mark == expected


@pytest.mark.parametrize(
    ("typed", "decimals", "code"),
    [
        ("-0.25", 2, "mark_out_of_range"),
        ("1.25", 2, "mark_out_of_range"),
        ("abc", 2, "bad_mark"),
        ("NaN", 2, "bad_mark"),
        ("Infinity", 2, "bad_mark"),
        ("", 2, "mark_missing"),
        (None, 2, "mark_missing"),
        ("0.125", 2, "mark_step"),
        ("0.5", 0, "mark_step"),
        ("1e400", 2, "mark_out_of_range"),
    ],
)
def test_bad_marks_are_refused_with_a_code(typed, decimals, code):
    with pytest.raises(UserError) as info:
        marking.parse_mark(typed, Decimal("1"), decimals)
    assert info.value.code == code
    assert info.value.message  # says what to fix


def test_anonymous_numbers_are_a_stable_permutation():
    secret = b"s" * 32
    ids = [11, 12, 13, 14, 15]
    numbers = marking.anonymous_numbers(secret, ids)
    assert sorted(numbers.values()) == [1, 2, 3, 4, 5]
    assert marking.anonymous_numbers(secret, list(reversed(ids))) == numbers
    # Another exam's secret orders the same attempts differently (not by id, not by start order).
    others = [marking.anonymous_numbers(bytes([i]) * 32, ids) for i in range(5)]
    assert any(o != numbers for o in others)


async def test_marking_every_essay_makes_totals_final_and_exact(conn, sat_exam):
    pk = await essay_pk(conn)
    teacher = await staff_member(conn, "teacher")
    before = {r["id"]: r["score"] for r in await conn.fetch("SELECT id, score FROM attempts")}
    assert all(r["provisional"] for r in await conn.fetch("SELECT provisional FROM attempts"))
    queue = await marking.scripts(conn, sat_exam, pk)
    assert len(queue) == 8 and [s.number for s in queue] == sorted(s.number for s in queue)
    assert all(s.answer == "Bài làm tự luận." and s.mark is None and s.max_points == 1 for s in queue)
    progress = await marking.essay_progress(conn, sat_exam["id"])
    assert [(p.pk, p.marked, p.total) for p in progress] == [(pk, 0, 8)]

    for i, script in enumerate(queue):
        mark = Decimal("0.25") * (i % 5)  # 0, 0.25, ... 1
        result = await marking.record_mark(conn, sat_exam, pk, script.attempt_id, str(mark), "Ý đúng.", teacher)
        assert result.provisional is False
        row = await conn.fetchrow("SELECT score, max_score, provisional FROM attempts WHERE id = $1", script.attempt_id)
        assert row["provisional"] is False
        assert row["score"] == before[script.attempt_id] + mark  # exact, not a float
        assert (
            await conn.fetchval(
                "SELECT score FROM responses WHERE attempt_id = $1 AND item_ref = $2", script.attempt_id, script.ref
            )
            == mark
        )
        sections = json.loads(
            await conn.fetchval("SELECT section_scores FROM attempts WHERE id = $1", script.attempt_id)
        )
        assert sum(Decimal(s["total"]) for s in sections) == row["score"]
    progress = await marking.essay_progress(conn, sat_exam["id"])
    assert [(p.marked, p.total) for p in progress] == [(8, 8)]
    # The gradebook export reflects the marks at once.
    rows = await results.results_rows(conn, "TOAN-T")
    assert all(r["provisional"] is False for r in rows)
    first = next(r for r in rows if r["student_code"] == "0000000001")
    score = await conn.fetchval(
        "SELECT a.score FROM attempts a JOIN candidates c ON c.id = a.candidate_id WHERE c.code = '0000000001'"
    )
    assert first["score"] == score.quantize(Decimal("0.01"))
    assert first["gradebook_10"] == results.gradebook_score(score, Decimal(4))


async def test_remarking_overwrites_keeps_history_and_is_audited(conn, sat_exam):
    pk = await essay_pk(conn)
    teacher, admin = await staff_member(conn, "teacher"), await staff_member(conn, "admin")
    script = (await marking.scripts(conn, sat_exam, pk))[0]
    base = await conn.fetchval("SELECT score FROM attempts WHERE id = $1", script.attempt_id)
    await marking.record_mark(conn, sat_exam, pk, script.attempt_id, "0.5", "Thiếu lập luận.", teacher)
    await marking.record_mark(conn, sat_exam, pk, script.attempt_id, "1", "Chấm lại: đủ ý.", admin)
    current = await conn.fetch("SELECT points, comment, marker_id FROM essay_marks")
    assert [(r["points"], r["comment"], r["marker_id"]) for r in current] == [
        (Decimal("1"), "Chấm lại: đủ ý.", admin.id)
    ]
    history = await marking.mark_history(conn, script.attempt_id, script.ref)
    assert [(h["points"], h["username"]) for h in history] == [(Decimal("0.5"), "teacher"), (Decimal("1"), "admin")]
    assert await conn.fetchval("SELECT score FROM attempts WHERE id = $1", script.attempt_id) == base + 1
    events = await conn.fetch(
        "SELECT actor, content::text AS content FROM audit_events WHERE exam_id = $1 AND kind = 'exam_edit' "
        "AND attempt_id = $2 ORDER BY seq",
        sat_exam["id"],
        script.attempt_id,
    )
    contents = [json.loads(e["content"]) for e in events]
    assert [e["actor"] for e in events] == ["staff:teacher", "staff:admin"]
    assert [(c["edit"], c["points"], c["previous"]) for c in contents] == [
        ("essay_mark", "0.5", None),
        ("essay_mark", "1", "0.5"),
    ]
    assert (await audit.verify(conn, sat_exam["id"])).ok


async def test_refused_marks_change_nothing(client, conn, sat_exam):
    pk = await essay_pk(conn)
    teacher = await staff_member(conn, "teacher")
    script = (await marking.scripts(conn, sat_exam, pk))[0]
    single_pk = await conn.fetchval(
        "SELECT item_pk FROM exam_items WHERE exam_id = $1 AND type = 'single' ORDER BY item_pk LIMIT 1", sat_exam["id"]
    )
    # An attempt of another exam (same school), sat and submitted.
    await exams.create_exam(conn, exams.parse_exam(exam_yaml(code="TOAN-U")), "THPT-A")
    await exams.add_roster(conn, "TOAN-U", STUDENTS[:1])
    await exams.open_exam(conn, "TOAN-U")
    ticket = (await exams.issue_tickets(conn, "TOAN-U"))[0]["ticket"]
    headers, body = await started(client, ticket)
    await client.post(
        "/api/v1/changes", json={"changes": changes_of(await correct_answers(conn, body))}, headers=headers
    )
    await client.post("/api/v1/submit", json={}, headers=headers)
    other_attempt = body["attempt"]["id"]
    before = await snapshot(conn)

    cases = [
        (pk, script.attempt_id, "-1", "", "mark_out_of_range"),
        (pk, script.attempt_id, "1.5", "", "mark_out_of_range"),
        (pk, script.attempt_id, "một", "", "bad_mark"),
        (pk, script.attempt_id, "0.005", "", "mark_step"),
        (pk, script.attempt_id, "0.5", "x" * 4001, "comment_too_long"),
        (pk, other_attempt, "0.5", "", "unknown_attempt"),
        (pk, 999999, "0.5", "", "unknown_attempt"),
        (pk, "abc", "0.5", "", "unknown_attempt"),
        (single_pk, script.attempt_id, "0.25", "", "not_essay"),
        (999999, script.attempt_id, "0.5", "", "unknown_item"),
    ]
    for item_pk, attempt_id, points, comment, code in cases:
        with pytest.raises(UserError) as info:
            await marking.record_mark(conn, sat_exam, item_pk, attempt_id, points, comment, teacher)
        assert info.value.code == code, (points, info.value.code)
    assert await snapshot(conn) == before
