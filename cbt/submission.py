"""Submitting an attempt: scored once (grading.score_attempt), recorded in the
audit chain, then its receipt signed. The candidate's submit, the deadline
sweep, a proctor's terminate and void and the close of an exam all come here,
so an attempt is submitted the same way whoever ends it."""

from __future__ import annotations

from aiohttp import web

from cbt import audit, grading, receipts
from cbt.platform import appkeys, background


async def finalize(app: web.Application, conn, attempt_id: int, by: str) -> None:
    """Score and submit an attempt, once, then sign its receipt. Safe to call twice or concurrently."""
    await _submit(app, conn, attempt_id, by)
    # After the submission commits: the receipt names the chain up to its submit event.
    await receipts.issue_for_attempt(conn, attempt_id)


async def _submit(app: web.Application, conn, attempt_id: int, by: str) -> None:
    async with conn.transaction():
        graded = await grading.score_attempt(conn, attempt_id, submit_by=by, items=app[appkeys.DELIVERY_CACHE].items)
        if graded is None:
            return
        attempt = graded.attempt
        actor = {"candidate": f"candidate:{attempt['candidate_code']}", "deadline": "system", "close": "staff"}.get(
            by, "proctor"
        )
        # Pending, in this transaction: the chainer seals it within a second. With
        # append, every submission of an exam would wait for the chain's lock until
        # its transaction committed, so an exam's submissions would go one at a time.
        # No receipt code in it: the receipt, signed after this commits, names this
        # event's hash.
        await audit.append_later(
            conn,
            attempt["exam_id"],
            actor,
            "submit",
            {"by": by, "responses_sha256": graded.responses_sha256},
            attempt_id=attempt_id,
        )


async def close_expired_attempts(app: web.Application) -> int:
    """Submit every attempt whose deadline and grace have passed (the page may be
    gone), and any left in progress in a closed exam (one started as it closed)."""
    pool = app[appkeys.POOL]
    ids = [
        tuple(r)
        for r in await pool.fetch(
            "SELECT a.id, e.status = 'closed' AS exam_closed FROM attempts a JOIN exams e ON e.id = a.exam_id "
            "WHERE a.status = 'in_progress' AND (e.status = 'closed' "
            "OR a.paused_at IS NULL AND a.deadline + make_interval(secs => e.grace_seconds) < now()) LIMIT 500"
        )
    ]
    for attempt_id, exam_closed in ids:
        async with pool.acquire() as conn:
            await finalize(app, conn, attempt_id, "close" if exam_closed else "deadline")
    return len(ids)


# cleanup_ctx: close expired attempts every few seconds in the background.
deadline_sweeper = background.periodic(
    close_expired_attempts, lambda app: app[appkeys.SETTINGS].sweep_seconds, "delivery deadline sweep"
)
