"""web/static/journal.js, the exam page's autosave journal, in Chromium: the
module as the live server serves it (its CSP included), run against the
browser's own localStorage."""

from __future__ import annotations

import asyncio

from support.browser import chromium_page, live_server, require_chromium
from support.cli import free_port

# Evaluated in the page: `J` is the module, `S` the page's localStorage.
PRELUDE = "const J = await import('/static/journal.js'); const S = window.localStorage;"


def run(page, body: str, arg=None):
    return page.evaluate(f"async (arg) => {{ {PRELUDE} {body} }}", arg)


async def in_chromium(dsn, steps):
    """`steps(page, base)` in a page of a live server; returns what it returns."""
    require_chromium()

    def go():
        with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
            page.goto(base + "/")
            out = steps(page, base)
            assert problems == []
            return out

    return await asyncio.to_thread(go)


async def test_seq_numbers_only_grow_and_survive_a_reload(dsn):
    def steps(page, base):
        out = {"first": run(page, "return ['q1', 'q2', 'q1'].map((q) => J.record(S, 'A', q, 'answer', 'x').seq);")}
        out["stored"] = run(page, "return [S.getItem('cbt.seq.A'), JSON.parse(S.getItem('cbt.journal.A'))];")
        page.reload()
        out["after_reload"] = run(page, "return J.record(S, 'A', 'q3', 'flag', true).seq;")
        # The server saved more than this browser remembers (its journal was
        # cleared): the counter goes up to it, never down.
        out["raised"] = run(page, "J.nextSeq(S, 'A', 10); return J.record(S, 'A', 'q1', 'answer', 'y').seq;")
        out["not_lowered"] = run(page, "J.nextSeq(S, 'A', 5); return J.record(S, 'A', 'q1', 'answer', 'z').seq;")
        out["other_attempt"] = run(page, "return J.record(S, 'B', 'q1', 'answer', 'x').seq;")
        out["journal"] = run(page, "return J.entries(S, 'A').map((e) => e.seq);")
        return out

    out = await in_chromium(dsn, steps)
    assert out["first"] == [1, 2, 3]
    # The storage format pages have always written: a journal left by an older page is read as it is.
    assert out["stored"] == [
        "3",
        [
            {"seq": 1, "item": "q1", "kind": "answer", "value": "x"},
            {"seq": 2, "item": "q2", "kind": "answer", "value": "x"},
            {"seq": 3, "item": "q1", "kind": "answer", "value": "x"},
        ],
    ]
    assert out["after_reload"] == 4
    assert out["raised"] == 11
    assert out["not_lowered"] == 12
    assert out["other_attempt"] == 1
    assert out["journal"] == [1, 2, 3, 4, 11, 12]


async def test_a_batch_stays_within_the_request_limit(dsn):
    def steps(page, base):
        return run(
            page,
            """
            const small = Array.from({ length: 450 },
                (_, i) => ({ seq: i + 1, item: 'q1', kind: 'answer', value: 'a' }));
            const essay = (seq, n) => ({ seq, item: 'q9', kind: 'answer', value: 'x'.repeat(n) });
            const sizes = (list) => J.batchOf(list).map((e) => e.seq);
            return {
                limits: [J.MAX_BATCH_CHANGES, J.MAX_BATCH_CHARS],
                small: J.batchOf(small).length,
                first: J.batchOf(small)[0].seq,
                rest: J.batchOf(small.slice(400)).length,
                essays: sizes([essay(1, 200000), essay(2, 200000), essay(3, 200000), essay(4, 10)]),
                huge: sizes([essay(1, 600000), essay(2, 10)]),
                empty: J.batchOf([]).length,
            };""",
        )

    out = await in_chromium(dsn, steps)
    assert out["limits"] == [200, 500000]
    assert out["small"] == 200 and out["first"] == 1 and out["rest"] == 50
    assert out["essays"] == [1, 2]  # a third would pass 500,000 characters
    assert out["huge"] == [1]  # one change alone goes, however long: the server says if it is too long
    assert out["empty"] == 0


async def test_a_refused_change_is_withdrawn_keeping_its_seq(dsn):
    def steps(page, base):
        return run(
            page,
            """
            for (const [q, v] of [['q1', 'A'], ['q2', '\\u0007bad'], ['q3', 'C'], ['gone', 'D']]) {
                J.record(S, 'A', q, 'answer', v);
            }
            const onForm = (ref) => ref !== 'gone';
            const err = (code, details) => ({ code, details, message: 'refused: ' + code });
            J.withdraw(S, 'A', J.batchOf(J.entries(S, 'A')), err('bad_change', { seq: 2 }), onForm);
            const named = { journal: J.entries(S, 'A'), refused: J.refused(S, 'A') };
            // No seq named (a batch too large as a whole): every change of it goes.
            J.withdraw(S, 'A', J.entries(S, 'A').slice(2), err('bad_json', {}), onForm);
            const whole = { journal: J.entries(S, 'A'), refused: J.refused(S, 'A').map((e) => [e.seq, e.code]) };
            // A withdrawal refused in turn leaves the journal and is not kept as refused.
            J.withdraw(S, 'A', J.entries(S, 'A').slice(1, 2), err('bad_change', { seq: 2 }), onForm);
            const again = { journal: J.entries(S, 'A').map((e) => e.seq), refused: J.refused(S, 'A').length };
            return { named, whole, again, stored: JSON.parse(S.getItem('cbt.refused.A')).length };""",
        )

    out = await in_chromium(dsn, steps)
    assert out["named"]["journal"] == [
        {"seq": 1, "item": "q1", "kind": "answer", "value": "A"},
        {"seq": 2, "item": "q2", "kind": "withdrawn", "value": None},
        {"seq": 3, "item": "q3", "kind": "answer", "value": "C"},
        {"seq": 4, "item": "gone", "kind": "answer", "value": "D"},
    ]
    assert out["named"]["refused"] == [
        {
            "seq": 2,
            "item": "q2",
            "kind": "answer",
            "value": "\x07bad",
            "code": "bad_change",
            "reason": "refused: bad_change",
        }
    ]
    assert out["whole"]["journal"] == [
        {"seq": 1, "item": "q1", "kind": "answer", "value": "A"},
        {"seq": 2, "item": "q2", "kind": "withdrawn", "value": None},
        {"seq": 3, "item": "q3", "kind": "withdrawn", "value": None},
        {"seq": 4, "item": None, "kind": "withdrawn", "value": None},
    ]  # not on the form: names no item
    assert out["whole"]["refused"] == [[2, "bad_change"], [3, "bad_json"], [4, "bad_json"]]
    assert out["again"] == {"journal": [1, 3, 4], "refused": 3}
    assert out["stored"] == 3


async def test_acknowledged_changes_leave_the_journal_and_the_rest_stays(dsn):
    def steps(page, base):
        out = {
            "left": run(
                page,
                """
            for (let i = 1; i <= 5; i++) J.record(S, 'A', 'q' + i, 'answer', String(i));
            return J.acknowledge(S, 'A', 3).map((e) => e.seq);""",
            )
        }
        page.reload()
        out["after_reload"] = run(page, "return J.entries(S, 'A').map((e) => e.seq);")
        # An answer to a section that has ended: withdrawn, keeping its seq, and kept among the refused.
        out["section"] = run(
            page,
            """
            J.withdrawWhere(S, 'A', (e) => e.item === 'q4', {code: 'section_closed', message: 'not open'});
            J.withdrawWhere(S, 'A', (e) => e.item === 'q4', {code: 'section_closed', message: 'not open'});
            return [J.entries(S, 'A').map((e) => [e.seq, e.item, e.kind, e.value]),
                    J.refused(S, 'A').map((e) => [e.seq, e.code, e.value])];""",
        )
        out["all_saved"] = run(page, "return [J.acknowledge(S, 'A', 5).length, J.entries(S, 'A').length];")
        out["handed_in"] = run(
            page,
            """
            J.record(S, 'A', 'q1', 'answer', 'late');
            S.setItem('cbt.refused.A', '[{"seq": 1}]');
            J.forget(S, 'A');
            return [S.getItem('cbt.journal.A'), S.getItem('cbt.refused.A'),
                    J.record(S, 'A', 'q1', 'answer', 'x').seq];""",
        )
        return out

    out = await in_chromium(dsn, steps)
    assert out["left"] == [4, 5]
    assert out["after_reload"] == [4, 5]
    assert out["section"] == [
        [[4, "q4", "withdrawn", None], [5, "q5", "answer", "5"]],
        [[4, "section_closed", "4"]],  # once, though asked twice
    ]
    assert out["all_saved"] == [0, 0]
    assert out["handed_in"] == [None, None, 7]  # nothing of the answers stays; seq numbers are not reused


async def test_a_corrupt_journal_is_recovered(dsn):
    def steps(page, base):
        out = {}
        for stored in ['[{"seq": 1, "item": "q1"', "null", '{"seq": 1}', '"text"', "[null, 3]"]:
            out[stored] = run(
                page,
                """
                S.setItem('cbt.journal.A', arg);
                const read = J.entries(S, 'A').length;
                J.record(S, 'A', 'q1', 'answer', 'x');
                return [read, J.entries(S, 'A').length];""",
                stored,
            )
        # The counter unreadable: no seq still in the journal is handed out again.
        out["seq"] = run(
            page,
            """
            S.setItem('cbt.journal.A', JSON.stringify([{ seq: 7, item: 'q1', kind: 'answer', value: 'x' }]));
            S.setItem('cbt.seq.A', 'seven');
            return [J.lastSeq(S, 'A'), J.record(S, 'A', 'q2', 'answer', 'y').seq, S.getItem('cbt.seq.A')];""",
        )
        out["refused"] = run(
            page,
            """
            S.setItem('cbt.refused.A', '{broken');
            const read = J.refused(S, 'A').length;
            const err = { code: 'bad_change', details: { seq: 7 }, message: 'm' };
            J.withdraw(S, 'A', J.entries(S, 'A').slice(0, 1), err, () => true);
            return [read, J.refused(S, 'A').map((e) => e.seq)];""",
        )
        return out

    out = await in_chromium(dsn, steps)
    for stored in ['[{"seq": 1, "item": "q1"', "null", '{"seq": 1}', '"text"', "[null, 3]"]:
        assert out[stored] == [0, 1], stored
    assert out["seq"] == [7, 8, "8"]
    assert out["refused"] == [0, [7]]


async def test_the_modules_exam_js_imports_are_never_older_than_it(dsn):
    def steps(page, base):
        out = {}
        for name in ("exam.js", "journal.js", "questions.js"):
            # As exam.js imports them: no version in the address.
            resp = page.request.get(f"{base}/static/{name}")
            # A module must come as JavaScript (the page asks for nosniff).
            kind = resp.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript")
            out[name] = [resp.status, kind, resp.headers.get("cache-control")]
        page.goto(base + "/exam")
        versioned = page.locator("script[type=module]").get_attribute("src")
        out["versioned"] = [versioned.split("?")[0], page.request.get(base + versioned).headers.get("cache-control")]
        return out

    out = await in_chromium(dsn, steps)
    # A browser keeps a file without Cache-Control as long as it guesses fit:
    # after an upgrade, an old journal.js under a new exam.js.
    for name in ("exam.js", "journal.js", "questions.js"):
        assert out[name] == [200, True, "no-cache"], name
    assert out["versioned"] == ["/static/exam.js", None]
