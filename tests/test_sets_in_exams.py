"""Item sets through the whole path: a signed release with passages and the
2025 levels imports; an exam draws whole sets, in order, on every form; the
page gets each passage once under a per-form name; trial rows score but
never count; and bad input is refused with nothing half-written."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from support.accounts import login
from support.delivery import changes_of, started
from support.sets import imported, passages_exam_yaml

from cbt import assembly, bank, exams
from cbt.platform.errors import Conflict, UserError
from cbt.roster import Candidate

NOW = dt.datetime.now(dt.UTC)
OPENS, CLOSES = (NOW - dt.timedelta(hours=1)).isoformat(), (NOW + dt.timedelta(hours=3)).isoformat()


def exam_yaml(code="EN-S", release="release: en-2025 1", set_count=2, extra_section="") -> str:
    return f"""
code: {code}
title: Tiếng Anh (thử)
subject: tieng-anh
{release}
duration_minutes: 50
window: {{opens: {OPENS}, closes: {CLOSES}, late_entry_minutes: 120}}
show_score: true
sections:
  - title: Reading
    rows:
      - {{topic: reading, type: set, count: {set_count}, children: 5}}
  - title: Grammar
    rows:
      - {{topic: grammar, level: 1, count: 2}}
{extra_section}"""


async def test_a_release_with_sets_and_the_2025_levels_imports_once(conn, releases):
    (result,) = await imported(conn, releases, "good")
    assert result.items == 36 and not result.already_imported
    assert await conn.fetchval("SELECT count(*) FROM bank_sets") == 6
    children = await conn.fetch(
        "SELECT b.item_id, b.level, b.set_position, s.set_id FROM bank_items b JOIN bank_sets s ON s.id = b.set_pk"
        " ORDER BY s.set_id, b.set_position"
    )
    assert [(r["item_id"], r["set_position"]) for r in children[:5]] == [(f"R1-{c}", c - 1) for c in range(1, 6)]
    # Levels are stored as their place in the release's scheme: biet 1, hieu 2, van-dung 3.
    assert [r["level"] for r in children[:5]] == [1, 1, 2, 2, 3]
    scheme = await bank.level_scheme(conn, [result.release_id])
    assert scheme.names == ("Biết", "Hiểu", "Vận dụng")
    assert await conn.fetchval("SELECT count(*) FROM bank_items WHERE set_pk IS NULL") == 6
    again = await bank.import_release(conn, releases["good"])
    assert again.already_imported and await conn.fetchval("SELECT count(*) FROM bank_sets") == 6


async def test_a_set_changed_under_the_same_version_is_refused_and_nothing_is_written(conn, releases):
    await imported(conn, releases, "good")
    before = [await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("bank_releases", "bank_sets", "bank_items")]
    with pytest.raises(Conflict) as e:
        await bank.import_release(conn, releases["changed"])
    assert e.value.code == "set_version_conflict" and "R1@1" in e.value.message
    after = [await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("bank_releases", "bank_sets", "bank_items")]
    assert after == before


async def test_every_form_keeps_each_set_whole_and_in_order_and_the_levels_add_up(conn, releases):
    await imported(conn, releases, "good")
    await exams.create_exam(conn, exams.parse_exam(exam_yaml()), "SGD-S")
    roster = [
        Candidate(f"{n:010d}", f"Học sinh {n}", dt.date(2008, 1, 1), "12A", "THPT S", f"P{n % 20:02d}")
        for n in range(1000)
    ]
    await exams.add_roster(conn, "EN-S", roster)
    await exams.open_exam(conn, "EN-S")
    rows = await conn.fetch(
        "SELECT f.form FROM candidate_forms f JOIN candidates c ON c.id = f.candidate_id"
        " JOIN exams e ON e.id = c.exam_id WHERE e.code = 'EN-S'"
    )
    assert len(rows) == 1000
    items = {
        r["id"]: r
        for r in await conn.fetch(
            "SELECT b.id, b.item_id, b.level, b.points, b.set_position, s.set_id"
            " FROM bank_items b LEFT JOIN bank_sets s ON s.id = b.set_pk"
        )
    }
    drawn, orders = Counter(), Counter()
    for row in rows:
        form = assembly.form_from_json(json.loads(row["form"]))
        reading, grammar = form.sections
        assert len(reading.items) == 10 and len(grammar.items) == 2
        assert all(items[fi.pk]["set_id"] is None for fi in grammar.items)  # no child drawn alone
        sets_in_order = []
        for fi in reading.items:
            name = items[fi.pk]["set_id"]
            assert name is not None and fi.set_key == f"{name}@1"
            if not sets_in_order or sets_in_order[-1] != name:
                sets_in_order.append(name)
        # Two sets, each once and contiguous: its five children side by side.
        assert len(sets_in_order) == 2 and len(set(sets_in_order)) == 2
        for name in sets_in_order:
            places = [items[fi.pk]["set_position"] for fi in reading.items if items[fi.pk]["set_id"] == name]
            if name == "R1":  # R1 lets forms shuffle its children among themselves
                assert sorted(places) == list(range(5))
                orders[tuple(places)] += 1
            else:
                assert places == list(range(5))
            drawn[name] += 1
        # The matrix: per form 1 point of Biết, 1 of Hiểu and 0.5 of Vận dụng from the passages.
        per_level = Counter()
        for fi in reading.items:
            per_level[items[fi.pk]["level"]] += fi.points
        assert per_level == {1: Decimal("1.00"), 2: Decimal("1.00"), 3: Decimal("0.50")}
    assert set(drawn) == {f"R{n}" for n in range(1, 7)}  # every set is drawn by some form
    assert len(orders) > 1  # and R1's children come in more than one order


async def test_the_page_gets_each_passage_once_by_a_name_of_its_form(conn, client, releases):
    await imported(conn, releases, "good")
    trial = "  - title: Trial\n    rows:\n      - {topic: grammar, level: 1, count: 1, scored: false}\n"
    spec = exams.parse_exam(exam_yaml(extra_section=trial))
    await exams.create_exam(conn, spec, "SGD-S")
    await exams.add_roster(conn, "EN-S", [Candidate("0000000001", "An", dt.date(2008, 1, 1), "12A", "S", "P1")])
    await exams.open_exam(conn, "EN-S")
    ticket = (await exams.issue_tickets(conn, "EN-S"))[0]["ticket"]
    headers, body = await started(client, ticket)
    form = body["form"]
    assert set(form["passages"]) == {"p1", "p2"}
    reading = form["sections"][0]["items"]
    assert [q["passage"] for q in reading] == ["p1"] * 5 + ["p2"] * 5
    assert all("passage" not in q for s in form["sections"][1:] for q in s["items"])
    assert "Passage" in form["passages"]["p1"] and "<strong>" in form["passages"]["p1"]
    text = json.dumps(body)
    assert '"R1' not in text and '"R2' not in text and "@1" not in text  # no bank id reaches the page
    # The fixed option ("All of the above") stays last on every grammar question.
    for q in form["sections"][1]["items"]:
        assert "All of the above" in q["options"][-1]["html"]
    # Answer everything right: the trial question scores but counts in no total.
    answers = {}
    for q in reading + form["sections"][1]["items"] + form["sections"][2]["items"]:
        right = next(o["id"] for o in q["options"] if "đúng" in o["html"] or o["html"].strip() == "yes")
        answers[q["ref"]] = right
    resp = await client.post(
        "/api/v1/changes", json={"attempt_id": body["attempt"]["id"], "changes": changes_of(answers)}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    resp = await client.post("/api/v1/submit", json={"attempt_id": body["attempt"]["id"]}, headers=headers)
    assert resp.status == 200, await resp.text()
    attempt = await conn.fetchrow("SELECT id, score, max_score FROM attempts")
    assert attempt["score"] == attempt["max_score"] == Decimal("3.00")  # 12 questions of 0.25, not 13
    trial_ref = form["sections"][2]["items"][0]["ref"]
    stored = await conn.fetchval(
        "SELECT score FROM responses WHERE attempt_id = $1 AND item_ref = $2", attempt["id"], trial_ref
    )
    assert stored == Decimal("0.25")  # scored, for the item analysis


async def test_an_exam_asking_for_more_sets_than_exist_is_refused_with_nothing_written(conn, releases):
    await imported(conn, releases, "good")
    with pytest.raises(UserError) as e:
        await exams.create_exam(conn, exams.parse_exam(exam_yaml(set_count=7)), "SGD-S")
    assert e.value.code == "infeasible_blueprint"
    assert e.value.details["count"] == 1
    assert "wants 7 sets of topic reading with 5 questions each, the release has 6" in e.value.message
    assert await conn.fetchval("SELECT count(*) FROM exams") == 0


async def test_releases_of_two_level_schemes_make_no_exam(conn, releases):
    await imported(conn, releases, "good", "legacy")
    spec = exams.parse_exam(exam_yaml(release="releases: [en-2025 1, en-2025 3]"))
    with pytest.raises(UserError) as e:
        await exams.create_exam(conn, spec, "SGD-S")
    assert e.value.code == "release_levels_mismatch"
    assert await conn.fetchval("SELECT count(*) FROM exams") == 0


class PreviewReader(HTMLParser):
    """What a preview page says, each text with the passage group (preview-set) it stands in."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, dict]] = []
        self.texts: list[tuple[str | None, str]] = []  # (the group's passage name or None, text)

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if data.strip():
            group = next((a.get("data-passage") for t, a in self.open if "preview-set" in a.get("class", "")), None)
            self.texts.append((group, data.strip()))


async def test_the_staff_preview_shows_each_passage_once_before_its_questions(client, conn, staff, releases):
    await imported(conn, releases, "pair")
    await exams.create_exam(conn, exams.parse_exam(passages_exam_yaml()), "THPT-A")
    await login(client, "teacher")
    resp = await client.get("/workspace/exams/EN-P/preview?seed=2")
    assert resp.status == 200
    page = await resp.text()
    reader = PreviewReader()
    reader.feed(page)
    said = []  # what the page says in order, as (group, what): a passage, a passage's question, a grammar question
    for group, text in reader.texts:
        if m := re.search(r"Students of school (\d) counted", text):
            said.append((group, f"passage {m.group(1)}"))
        elif m := re.search(r"Câu \d của bài đọc (\d)\?", text):
            said.append((group, f"question of {m.group(1)}"))
        elif text.startswith("Grammar question"):
            said.append((group, "grammar"))
    first, second = said[0][1][-1], said[6][1][-1]
    assert {first, second} == {"1", "2"}
    # Each passage once, then its five questions, all inside its group; the grammar questions in none.
    assert said == [
        ("p1", f"passage {first}"),
        *[("p1", f"question of {first}")] * 5,
        ("p2", f"passage {second}"),
        *[("p2", f"question of {second}")] * 5,
        (None, "grammar"),
        (None, "grammar"),
    ]
    assert page.count("Paragraph 18.") == 1
    # Named as the exam page names them, each passage a region with that name, the questions numbered on.
    titles = [t for _, t in reader.texts if t.startswith(("Ngữ liệu", "· Dùng cho"))]
    assert titles == ["Ngữ liệu 1", "· Dùng cho câu 1–5", "Ngữ liệu 2", "· Dùng cho câu 6–10"]
    assert page.count('<section class="passage" aria-labelledby="preview-passage-') == 2
    assert re.findall(r'<li class="question" data-ref="[^"]+" value="(\d+)"', page) == [
        *map(str, range(1, 11)),
        "1",
        "2",
    ]


async def test_an_exam_file_naming_a_level_its_bank_lacks_is_refused_with_nothing_written(conn, releases):
    # Level 4 (Vận dụng cao) is of the legacy scheme; a 2025 bank has three levels.
    await imported(conn, releases, "good")
    text = exam_yaml().replace("{topic: grammar, level: 1, count: 2}", "{topic: grammar, level: 4, count: 2}")
    with pytest.raises(UserError) as e:
        await exams.create_exam(conn, exams.parse_exam(text + "level_targets: {1: 50, 4: 50}\n"), "SGD-S")
    assert e.value.code == "bad_exam_file" and e.value.details["count"] == 2
    assert {p.code for p in e.value.details["problems"]} == {"row_level_not_in_scheme", "level_not_in_scheme"}
    assert "level 4" in e.value.message and "Biết" in e.value.message
    assert await conn.fetchval("SELECT count(*) FROM exams") == 0
