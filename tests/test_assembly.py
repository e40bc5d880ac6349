"""Form assembly: drawing forms from a blueprint ("ma trận đề"), pure functions, no database."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import random
import re
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cbt.assembly import (
    FORM_FORMAT,
    SET_ROW,
    Blueprint,
    BlueprintRow,
    BlueprintSection,
    Form,
    FormItem,
    FormSection,
    InfeasibleBlueprint,
    PoolItem,
    Shortfall,
    candidate_seed,
    canonical_form_json,
    draw_form,
    fixed_form_seed,
    fixed_forms,
    form_digest,
    form_from_json,
    form_number_for,
    form_to_json,
    index_pool,
    shortfalls,
)

SECRET = b"exam-secret-0123456789abcdef"  # 28 bytes
TOPICS = ("ham-so", "mu-logarit", "tich-phan", "oxyz")
OPTIONS = ("A", "B", "C", "D")
STATEMENTS = ("a", "b", "c", "d")


def make_item(pk: int, topic: str, level: int, item_type: str = "single", **fields) -> PoolItem:
    defaults = {
        "item_id": f"M-{pk:05d}",
        "version": 1,
        "points": Decimal("0.25"),
        "option_ids": OPTIONS if item_type in ("single", "multiple") else (),
        "statement_ids": STATEMENTS if item_type == "truefalse4" else (),
        "shuffle": True,
    }
    defaults.update(fields)
    return PoolItem(pk=pk, topic=topic, level=level, type=item_type, **defaults)


def make_pool(per_cell: int = 6) -> list[PoolItem]:
    """Every topic x level with ``per_cell`` items of each of single, truefalse4, short."""
    pool = []
    for topic, level, item_type in itertools.product(TOPICS, (1, 2, 3, 4), ("single", "truefalse4", "short")):
        for _ in range(per_cell):
            pool.append(make_item(len(pool) + 1, topic, level, item_type))
    return pool


def math_blueprint() -> Blueprint:
    """Part I 12 x 0.25, Part II 4 x 1, Part III 6 x 0.5: the Math paper's 10 points."""
    quarter, half, one = Decimal("0.25"), Decimal("0.5"), Decimal("1")
    return Blueprint(
        (
            BlueprintSection(
                "Phần I",
                tuple(
                    BlueprintRow(t, level, 3 // level + 1, quarter, "single")
                    for t, level in [("ham-so", 1), ("mu-logarit", 1), ("tich-phan", 2), ("oxyz", 2)]
                ),
            ),
            BlueprintSection("Phần II", tuple(BlueprintRow(t, 2, 1, one, "truefalse4") for t in TOPICS)),
            BlueprintSection(
                "Phần III",
                (BlueprintRow("ham-so", 3, 3, half, "short"), BlueprintRow("oxyz", 4, 3, half, "short")),
                time_limit_minutes=30,
            ),
        )
    )


def by_pk(pool: list[PoolItem]) -> dict[int, PoolItem]:
    return {item.pk: item for item in pool}


def form_pks(form: Form) -> list[int]:
    return [item.pk for item in form.items]


# --------------------------------------------------------------------------
# Determinism and seeds


def test_math_blueprint_is_twelve_four_six():
    counts = [sum(row.count for row in section.rows) for section in math_blueprint().sections]
    assert counts == [12, 4, 6]


def test_same_seed_gives_the_same_form_whatever_the_pool_order():
    pool = make_pool()
    seed = candidate_seed(SECRET, "0123456789")
    form = draw_form(math_blueprint(), pool, seed)
    shuffled = pool[:]
    random.Random(7).shuffle(shuffled)
    again = draw_form(math_blueprint(), shuffled, seed)
    assert again == form
    assert form_digest(again) == form_digest(form)
    assert draw_form(math_blueprint(), index_pool(pool), seed) == form


def test_pinned_form_digest_guards_the_algorithm():
    """A form is re-derived years later: any change of algorithm must show here.

    If this fails, forms already served would no longer re-derive: give the
    new algorithm a new FORM_FORMAT instead of changing cbt-form/1.
    """
    form = draw_form(math_blueprint(), make_pool(), candidate_seed(SECRET, "0000000001"))
    assert form.items[0].ref == "q1"
    assert form_digest(form) == PINNED_DIGEST


PINNED_DIGEST = "73c65530429b1f18299fe1e4c68be3152cac967490f297373d68fd0f81b60ec8"


def test_different_candidates_get_different_forms():
    pool = index_pool(make_pool())
    digests = {form_digest(draw_form(math_blueprint(), pool, candidate_seed(SECRET, f"{n:010d}"))) for n in range(200)}
    assert len(digests) == 200


def test_candidate_seed_is_hmac_sha256_of_the_code():
    expected = hmac.new(SECRET, b"0123456789", hashlib.sha256).digest()
    assert candidate_seed(SECRET, "0123456789") == expected
    assert candidate_seed(SECRET + b"x", "0123456789") != expected


def test_short_exam_secret_is_refused():
    with pytest.raises(ValueError, match="16 random bytes"):
        candidate_seed(b"short", "0123456789")


# --------------------------------------------------------------------------
# What a form contains


def test_form_follows_the_blueprint_cell_by_cell():
    pool = make_pool()
    items = by_pk(pool)
    blueprint = math_blueprint()
    for n in range(50):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)), shuffle_items=False)
        assert len(set(form_pks(form))) == len(form_pks(form)) == 22  # no item twice
        for section, drawn in zip(blueprint.sections, form.sections, strict=True):
            assert drawn.title == section.title and drawn.time_limit_minutes == section.time_limit_minutes
            # Without item shuffling the items come row by row.
            position = 0
            for row in section.rows:
                for form_item in drawn.items[position : position + row.count]:
                    pool_item = items[form_item.pk]
                    assert (pool_item.topic, pool_item.level, pool_item.type) == (row.topic, row.level, row.type)
                    assert form_item.points == row.points
                position += row.count
            assert position == len(drawn.items)


def test_refs_number_the_whole_form_in_presented_order():
    form = draw_form(math_blueprint(), make_pool(), candidate_seed(SECRET, "1"))
    assert [item.ref for item in form.items] == [f"q{n}" for n in range(1, 23)]


def test_total_points_of_the_math_paper_is_ten():
    form = draw_form(math_blueprint(), make_pool(), candidate_seed(SECRET, "1"))
    assert sum(item.points for item in form.items) == Decimal(10)


def test_without_row_points_items_keep_their_own():
    pool = [make_item(n, "ham-so", 1, points=Decimal(n)) for n in range(1, 6)]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 5),)),))
    form = draw_form(blueprint, pool, candidate_seed(SECRET, "1"))
    assert sorted(item.points for item in form.items) == [Decimal(n) for n in range(1, 6)]


def test_items_are_shuffled_within_sections_only():
    pool = make_pool()
    blueprint = math_blueprint()
    section_of = {}
    for s, section in enumerate(blueprint.sections):
        for row in section.rows:
            section_of[(row.topic, row.level, row.type)] = s
    items = by_pk(pool)
    first_topics = Counter()
    for n in range(200):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)))
        for s, section in enumerate(form.sections):
            for form_item in section.items:
                p = items[form_item.pk]
                assert section_of[(p.topic, p.level, p.type)] == s
        first_topics[items[form.sections[0].items[0].pk].topic] += 1
    # Part I's first question comes from any of its four rows, not always the first.
    assert len(first_topics) == 4


def test_without_item_shuffle_rows_keep_blueprint_order_and_pool_order():
    pool = make_pool()
    items = by_pk(pool)
    form = draw_form(math_blueprint(), pool, candidate_seed(SECRET, "1"), shuffle_items=False)
    first_row = [items[item.pk] for item in form.sections[0].items[:4]]  # ham-so level 1: 4 items
    assert [p.item_id for p in first_row] == sorted(p.item_id for p in first_row)


def test_options_are_a_permutation_with_opaque_unique_aliases():
    pool = make_pool()
    items = by_pk(pool)
    orders = set()
    for n in range(100):
        form = draw_form(math_blueprint(), pool, candidate_seed(SECRET, str(n)))
        for form_item in form.items:
            p = items[form_item.pk]
            assert sorted(form_item.option_order) == sorted(p.option_ids)
            assert len(form_item.option_aliases) == len(p.option_ids)
            assert len(set(form_item.option_aliases)) == len(form_item.option_aliases)
            for alias in form_item.option_aliases:
                assert re.fullmatch("[a-z]{6}", alias)
                assert not any(option.casefold() in alias for option in p.option_ids)
            assert form_item.alias_to_option() == dict(
                zip(form_item.option_aliases, form_item.option_order, strict=True)
            )
            if p.type == "single":
                orders.add(form_item.option_order)
    assert len(orders) == 24  # every order of A-D turns up


def test_the_key_is_not_revealed_by_position_or_by_sorting_aliases():
    """Across many forms, option A (say, the key) is in each position and each
    rank of the sorted aliases about a quarter of the time."""
    pool = [make_item(1, "ham-so", 1)]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 1),)),))
    positions, ranks = Counter(), Counter()
    forms = 4000
    for n in range(forms):
        (form_item,) = draw_form(blueprint, pool, candidate_seed(SECRET, str(n))).items
        position = form_item.option_order.index("A")
        alias = form_item.option_aliases[position]
        positions[position] += 1
        ranks[sorted(form_item.option_aliases).index(alias)] += 1
    for counts in (positions, ranks):
        assert set(counts) == {0, 1, 2, 3}
        # Expected 1000 each; 5 standard deviations is about 140.
        assert all(860 < count < 1140 for count in counts.values()), counts


def test_aliases_avoid_option_ids_made_of_alias_letters():
    options = ("f", "g", "h", "k")
    pool = [make_item(1, "ham-so", 1, option_ids=options)]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 1),)),))
    for n in range(300):
        (form_item,) = draw_form(blueprint, pool, candidate_seed(SECRET, str(n))).items
        assert sorted(form_item.option_order) == list(options)
        for alias in form_item.option_aliases:
            assert not set(alias) & set(options)


def test_item_that_forbids_shuffling_keeps_its_option_order():
    pool = [make_item(n, "ham-so", 1, shuffle=n % 2 == 0) for n in range(1, 11)]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 10),)),))
    shuffled_seen = False
    for n in range(30):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)))
        for form_item in form.items:
            if form_item.pk % 2 == 1:
                assert form_item.option_order == OPTIONS
            else:
                shuffled_seen = shuffled_seen or form_item.option_order != OPTIONS
        unshuffled = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)), shuffle_options=False)
        assert all(item.option_order == OPTIONS for item in unshuffled.items)
        assert all(len(set(item.option_aliases)) == 4 for item in unshuffled.items)
    assert shuffled_seen


def test_truefalse4_statements_keep_a_to_d_unless_asked():
    pool = make_pool()
    items = by_pk(pool)
    blueprint = math_blueprint()
    form = draw_form(blueprint, pool, candidate_seed(SECRET, "1"))
    part2 = form.sections[1].items
    assert all(item.statement_order == STATEMENTS and item.option_order == () for item in part2)
    orders = set()
    for n in range(60):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)), shuffle_statements=True)
        for form_item in form.sections[1].items:
            assert sorted(form_item.statement_order) == list(STATEMENTS)
            orders.add(form_item.statement_order)
        assert all(items[item.pk].type == "truefalse4" for item in form.sections[1].items)
    assert len(orders) > 12


def test_many_options_and_long_forms_read_more_random_words():
    # 10 options take the Fisher-Yates path; 300 items outgrow the first guess of words.
    many = tuple(f"O{n}" for n in range(10))
    pool = [make_item(n, "ham-so", 1, option_ids=many if n == 1 else OPTIONS) for n in range(1, 301)]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 300),)),))
    form = draw_form(blueprint, pool, candidate_seed(SECRET, "1"))
    (big,) = [item for item in form.items if item.pk == 1]
    assert sorted(big.option_order) == sorted(many) and big.option_order != many
    assert len(set(big.option_aliases)) == 10
    assert draw_form(blueprint, list(reversed(pool)), candidate_seed(SECRET, "1")) == form


# --------------------------------------------------------------------------
# Competing rows and infeasible blueprints


def test_rows_of_any_type_take_what_typed_rows_leave():
    pool = [make_item(n, "ham-so", 1, "single") for n in range(1, 4)]
    pool += [make_item(n, "ham-so", 1, "short") for n in range(4, 6)]
    blueprint = Blueprint(
        (
            BlueprintSection("any", (BlueprintRow("ham-so", 1, 2),)),
            BlueprintSection("single", (BlueprintRow("ham-so", 1, 3, type="single"),)),
        )
    )
    assert shortfalls(blueprint, pool) == []
    for n in range(40):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)))
        assert sorted(form_pks(form)) == [1, 2, 3, 4, 5]
        assert sorted(item.pk for item in form.sections[0].items) == [4, 5]


def test_rows_of_one_cell_in_two_sections_share_its_items():
    pool = [make_item(n, "ham-so", 1) for n in range(1, 6)]
    blueprint = Blueprint(
        (
            BlueprintSection("I", (BlueprintRow("ham-so", 1, 3),)),
            BlueprintSection("II", (BlueprintRow("ham-so", 1, 2),)),
        )
    )
    seen = Counter()
    for n in range(100):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)))
        assert sorted(form_pks(form)) == [1, 2, 3, 4, 5]
        seen.update(item.pk for item in form.sections[1].items)
    assert set(seen) == {1, 2, 3, 4, 5}  # section II is not always given the same leftovers


def test_infeasible_blueprint_lists_every_short_cell():
    pool = [make_item(n, "ham-so", 1, "single") for n in range(1, 5)]  # 4 single, level 1
    pool += [make_item(n, "ham-so", 2, "short") for n in range(5, 7)]  # 2 short, level 2
    pool += [make_item(n, "oxyz", 3, "single") for n in range(7, 10)]  # 3 single, oxyz 3
    blueprint = Blueprint(
        (
            BlueprintSection(
                "I",
                (
                    BlueprintRow("ham-so", 1, 3, type="single"),  # fine alone
                    BlueprintRow("ham-so", 2, 3, type="short"),  # short: 2 exist
                    BlueprintRow("tich-phan", 1, 1),  # nothing at all
                ),
            ),
            BlueprintSection(
                "II",
                (
                    BlueprintRow("ham-so", 1, 2, type="single"),  # competes with section I: 1 left
                    BlueprintRow("oxyz", 3, 2, type="single"),  # fine: 3 - 2
                    BlueprintRow("oxyz", 3, 2),  # any type, but the typed row leaves 1
                ),
            ),
        )
    )
    expected = [
        Shortfall(0, "ham-so", 2, "short", wanted=3, available=2),
        Shortfall(0, "tich-phan", 1, None, wanted=1, available=0),
        Shortfall(1, "ham-so", 1, "single", wanted=2, available=1),
        Shortfall(1, "oxyz", 3, None, wanted=2, available=1),
    ]
    assert shortfalls(blueprint, pool) == expected
    with pytest.raises(InfeasibleBlueprint) as raised:
        draw_form(blueprint, pool, candidate_seed(SECRET, "1"))
    assert list(raised.value.shortfalls) == expected
    message = str(raised.value)
    assert "section 2: topic ham-so, level 1: wants 2 single items, only 1 available" in message
    assert "section 1: topic tich-phan, level 1: wants 1 item, only 0 available" in message


def test_a_cell_asking_for_exactly_what_the_pool_has_is_feasible():
    pool = [make_item(n, "ham-so", 1) for n in range(1, 4)]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 3),)),))
    assert shortfalls(blueprint, pool) == []
    assert sorted(form_pks(draw_form(blueprint, pool, candidate_seed(SECRET, "1")))) == [1, 2, 3]
    bigger = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 4),)),))
    assert shortfalls(bigger, pool) == [Shortfall(0, "ham-so", 1, None, 4, 3)]


def test_blueprint_built_from_lists_works_too():
    as_tuples = math_blueprint()
    as_lists = Blueprint([BlueprintSection(s.title, list(s.rows), s.time_limit_minutes) for s in as_tuples.sections])
    pool = index_pool(make_pool())
    seed = candidate_seed(SECRET, "1")
    assert draw_form(as_lists, pool, seed) == draw_form(as_tuples, pool, seed)
    assert shortfalls(as_lists, pool) == []


def test_pool_holding_one_item_twice_is_refused():
    with pytest.raises(ValueError, match="item M-00001 twice"):
        index_pool([make_item(1, "ham-so", 1), make_item(2, "ham-so", 1, item_id="M-00001", version=2)])
    with pytest.raises(ValueError, match="pk 1 twice"):
        index_pool([make_item(1, "ham-so", 1), make_item(1, "ham-so", 1, item_id="other")])


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match="negative"):
        BlueprintRow("ham-so", 1, -1)


# --------------------------------------------------------------------------
# Fixed forms ("mã đề")


def test_fixed_forms_are_numbered_deterministic_and_distinct():
    pool = make_pool()
    forms = fixed_forms(math_blueprint(), pool, SECRET, 4)
    assert [form.form_number for form in forms] == [1, 2, 3, 4]
    assert forms == fixed_forms(math_blueprint(), index_pool(pool), SECRET, 4)
    assert len({form_digest(form) for form in forms}) == 4
    assert forms[2] == draw_form(math_blueprint(), pool, fixed_form_seed(SECRET, 3), form_number=3)
    assert fixed_forms(math_blueprint(), pool, b"another secret, 16+ bytes", 4) != forms


def test_candidates_spread_evenly_over_fixed_forms():
    k, candidates = 4, 8000
    counts = Counter(form_number_for(SECRET, f"{n:010d}", k) for n in range(candidates))
    assert set(counts) == {1, 2, 3, 4}
    expected = candidates / k
    chi_square = sum((count - expected) ** 2 / expected for count in counts.values())
    assert chi_square < 16.3  # p = 0.001 for 3 degrees of freedom
    assert form_number_for(SECRET, "0000000001", k) == form_number_for(SECRET, "0000000001", k)
    assert form_number_for(SECRET, "0000000001", 1) == 1
    with pytest.raises(ValueError):
        form_number_for(SECRET, "0000000001", 0)


# --------------------------------------------------------------------------
# JSON and digest


def test_json_round_trip_is_exact():
    form = draw_form(math_blueprint(), make_pool(), candidate_seed(SECRET, "1"), form_number=None)
    data = form_to_json(form)
    assert data["format"] == FORM_FORMAT
    assert data["sections"][0]["items"][0]["points"] == "0.25"
    assert form_from_json(data) == form
    through_text = json.loads(json.dumps(data))
    assert through_text == data
    assert form_from_json(through_text) == form
    assert form_digest(form_from_json(through_text)) == form_digest(form)


def test_json_keeps_decimal_representation_and_digest_ignores_it():
    one = Form((FormSection("I", None, (FormItem("q1", 7, Decimal("0.50"), ("A", "B"), ("fff", "ggg")),)),), "ab")
    two = Form((FormSection("I", None, (FormItem("q1", 7, Decimal("0.5"), ("A", "B"), ("fff", "ggg")),)),), "ab")
    assert form_to_json(one)["sections"][0]["items"][0]["points"] == "0.50"
    assert str(form_from_json(form_to_json(one)).sections[0].items[0].points) == "0.50"
    assert one == two and form_digest(one) == form_digest(two)
    other = Form((FormSection("I", None, (FormItem("q1", 7, Decimal("0.5"), ("B", "A"), ("fff", "ggg")),)),), "ab")
    assert form_digest(other) != form_digest(one)


def test_canonical_json_is_json_dumps_with_sorted_keys():
    form = draw_form(math_blueprint(), make_pool(), candidate_seed(SECRET, "1"))
    text = canonical_form_json(form)
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert form_from_json(data) == form
    assert form_digest(form) == hashlib.sha256(text.encode()).hexdigest()


text_values = st.text(max_size=8)


@given(
    title=st.text(max_size=12),
    options=st.lists(text_values, max_size=4),
    aliases=st.lists(text_values, max_size=4),
    statements=st.lists(text_values, max_size=4),
    points=st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-100, max_value=100),
    time_limit=st.none() | st.integers(0, 300),
    number=st.none() | st.integers(1, 48),
    scored=st.booleans(),
    set_key=st.none() | text_values,
)
def test_canonical_json_escapes_anything(
    title, options, aliases, statements, points, time_limit, number, scored, set_key
):
    item = FormItem("q1", 3, points, tuple(options), tuple(aliases), tuple(statements), scored, set_key)
    form = Form((FormSection(title, time_limit, (item,)),), "00ff", number)
    text = canonical_form_json(form)
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert form_from_json(form_to_json(form)) == form
    assert Decimal(data["sections"][0]["items"][0]["points"]) == points


def test_malformed_json_is_refused():
    form = draw_form(math_blueprint(), make_pool(), candidate_seed(SECRET, "1"))
    data = form_to_json(form)
    with pytest.raises(ValueError, match="not a cbt-form/1 form"):
        form_from_json({**data, "format": "cbt-form/0"})
    broken = json.loads(json.dumps(data))
    del broken["sections"][0]["items"][0]["pk"]
    with pytest.raises(ValueError, match="malformed"):
        form_from_json(broken)
    broken = json.loads(json.dumps(data))
    broken["sections"][0]["items"][0]["points"] = "a quarter"
    with pytest.raises(ValueError, match="malformed"):
        form_from_json(broken)


# --------------------------------------------------------------------------
# Property: random pools and blueprints


def feasible_by_matching(blueprint: Blueprint, pool: list[PoolItem]) -> bool:
    """An independent check: can every slot of every row get its own item?

    Kuhn's augmenting paths over slots x items; fine for the small cases here.
    """
    slots = [row for section in blueprint.sections for row in section.rows for _ in range(row.count)]
    fits = [
        [i for i, p in enumerate(pool) if (p.topic, p.level) == (row.topic, row.level) and row.type in (None, p.type)]
        for row in slots
    ]
    owner: dict[int, int] = {}

    def assign(slot: int, seen: set[int]) -> bool:
        for i in fits[slot]:
            if i not in seen:
                seen.add(i)
                if i not in owner or assign(owner[i], seen):
                    owner[i] = slot
                    return True
        return False

    return all(assign(slot, set()) for slot in range(len(slots)))


TYPES = ("single", "short", "truefalse4")
pools = st.lists(
    st.tuples(st.sampled_from(TOPICS[:2]), st.integers(1, 2), st.sampled_from(TYPES), st.booleans()), max_size=25
).map(
    lambda specs: [
        make_item(n + 1, topic, level, item_type, shuffle=shuffle)
        for n, (topic, level, item_type, shuffle) in enumerate(specs)
    ]
)
rows = st.builds(
    BlueprintRow,
    topic=st.sampled_from(TOPICS[:2]),
    level=st.integers(1, 2),
    count=st.integers(0, 4),
    points=st.none() | st.sampled_from([Decimal("0.25"), Decimal("1")]),
    type=st.none() | st.sampled_from(TYPES),
)
blueprints = st.lists(st.lists(rows, max_size=4).map(tuple), min_size=1, max_size=3).map(
    lambda sections: Blueprint(tuple(BlueprintSection(f"S{n}", rows) for n, rows in enumerate(sections)))
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(pool=pools, blueprint=blueprints, seed=st.binary(min_size=1, max_size=32))
def test_any_pool_and_blueprint(pool, blueprint, seed):
    found = shortfalls(blueprint, pool)
    assert (found == []) == feasible_by_matching(blueprint, pool)
    if found:
        with pytest.raises(InfeasibleBlueprint):
            draw_form(blueprint, pool, seed)
        return
    items = by_pk(pool)
    form = draw_form(blueprint, pool, seed, shuffle_items=False)
    assert form == draw_form(blueprint, list(reversed(pool)), seed, shuffle_items=False)
    pks = form_pks(form)
    assert len(pks) == len(set(pks))
    for section, drawn in zip(blueprint.sections, form.sections, strict=True):
        position = 0
        for row in section.rows:
            for form_item in drawn.items[position : position + row.count]:
                p = items[form_item.pk]
                assert (p.topic, p.level) == (row.topic, row.level)
                assert row.type in (None, p.type)
                assert form_item.points == (p.points if row.points is None else row.points)
                assert sorted(form_item.option_order) == sorted(p.option_ids)
                if not p.shuffle:
                    assert form_item.option_order == p.option_ids
                assert len(set(form_item.option_aliases)) == len(p.option_ids)
            position += row.count
        assert position == len(drawn.items)
    shuffled = draw_form(blueprint, pool, seed)
    assert sorted(form_pks(shuffled)) == sorted(pks)
    assert form_from_json(form_to_json(shuffled)) == shuffled


# --------------------------------------------------------------------------
# Item sets: a stimulus and its children, drawn whole by set rows

READING = "doc-hieu"
FOUR = (1, 2, 2, 3)  # the level profile of every four-child set below


def make_set(first_pk: int, key: str, levels: tuple[int, ...], *, shuffle=False, **fields) -> list[PoolItem]:
    """A set's children: their own topic is the set's, so an item row of that
    topic and level would draw them if the pool did not keep them apart."""
    return [
        make_item(
            first_pk + n,
            READING,
            level,
            item_id=f"{key.split('@')[0]}-{n + 1}",
            set_key=key,
            set_position=n + 1,
            set_shuffle=shuffle,
            **fields,
        )
        for n, level in enumerate(levels)
    ]


def reading_pool() -> tuple[list[PoolItem], dict[str, list[int]]]:
    """make_pool's standalone items, six doc-hieu items per level 1-3, and six
    sets: three of four children (one shuffling), two of three (one
    shuffling), one of five. Returns the pool and each set's child pks in set
    order."""
    pool = make_pool()
    pool += [make_item(len(pool) + n, READING, level) for n, level in enumerate((1, 2, 3) * 6, 1)]
    shapes = [
        ("DH-1@1", FOUR, False),
        ("DH-2@1", FOUR, True),
        ("DH-3@2", FOUR, False),
        ("DH-4@1", (1, 2, 3), False),
        ("DH-5@1", (1, 2, 3), True),
        ("DH-6@1", (1, 1, 2, 3, 4), False),
    ]
    sets = {}
    for key, levels, shuffle in shapes:
        children = make_set(len(pool) + 1, key, levels, shuffle=shuffle, points=Decimal("0.75"))
        # Listed out of set order: the pool's order must not matter.
        pool += reversed(children)
        sets[key] = [child.pk for child in children]
    return pool, sets


def reading_blueprint() -> Blueprint:
    quarter, half = Decimal("0.25"), Decimal("0.5")
    return Blueprint(
        (
            BlueprintSection(
                "Phần I",
                (
                    BlueprintRow("ham-so", 1, 4, quarter, "single"),
                    BlueprintRow(READING, 1, 3),  # any type: competes with nothing but the children
                    BlueprintRow(READING, 2, 2, quarter, "single"),
                ),
            ),
            BlueprintSection(
                "Đọc hiểu",
                (
                    BlueprintRow(READING, None, 2, half, SET_ROW, children=4),
                    BlueprintRow("tich-phan", 2, 2, quarter),
                    BlueprintRow(READING, None, 1, type=SET_ROW, children=3),  # children keep their 0.75
                ),
            ),
        )
    )


# Points per level the blueprint above implies: Phần I 4 x 0.25 (level 1),
# 3 items of doc-hieu level 1 at their own 0.25, 2 x 0.25 (level 2); Đọc hiểu
# two four-child sets (1, 2, 2, 3) at 0.5 a child, 2 x 0.25 (level 2), and
# one three-child set (1, 2, 3) at the children's own 0.75.
READING_POINTS_BY_LEVEL = {
    1: 4 * Decimal("0.25") + 3 * Decimal("0.25") + 2 * Decimal("0.5") + Decimal("0.75"),
    2: 2 * Decimal("0.25") + 4 * Decimal("0.5") + 2 * Decimal("0.25") + Decimal("0.75"),
    3: 2 * Decimal("0.5") + Decimal("0.75"),
}


def set_runs(form: Form) -> dict[str, tuple[int, list[int]]]:
    """set_key -> (section index, the pks of its children as presented), checking
    each set's children are one contiguous run within one section."""
    runs: dict[str, tuple[int, list[int]]] = {}
    for s, section in enumerate(form.sections):
        previous = None
        for item in section.items:
            if item.set_key is not None:
                if item.set_key != previous:
                    assert item.set_key not in runs, f"set {item.set_key} is split on the form"
                    runs[item.set_key] = (s, [])
                runs[item.set_key][1].append(item.pk)
            previous = item.set_key
    return runs


def test_sets_stay_whole_together_and_in_order_over_a_thousand_forms():
    pool, sets = reading_pool()
    items = by_pk(pool)
    child_of = {pk: key for key, pks in sets.items() for pk in pks}
    shuffles = {"DH-2@1", "DH-5@1"}
    index = index_pool(pool)
    blueprint = reading_blueprint()
    drawn_sets, shuffled_orders, first_in_reading = Counter(), defaultdict(set), Counter()
    for n in range(1000):
        form = draw_form(blueprint, index, candidate_seed(SECRET, f"{n:010d}"))
        assert len(set(form_pks(form))) == len(form_pks(form)) == 9 + 2 * 4 + 2 + 3
        runs = set_runs(form)
        assert sorted(len(sets[key]) for key in runs) == [3, 4, 4]
        for key, (section, pks) in runs.items():
            drawn_sets[key] += 1
            assert section == 1
            if key in shuffles:
                assert sorted(pks) == sorted(sets[key])
                shuffled_orders[key].add(tuple(pks))
            else:
                assert pks == sets[key]
        for item in form.items:
            # A child is only ever on the form as part of its set.
            assert item.set_key == child_of.get(item.pk)
        by_level = defaultdict(Decimal)
        for item in form.items:
            by_level[items[item.pk].level] += item.points
        assert dict(by_level) == READING_POINTS_BY_LEVEL
        first = form.sections[1].items[0]
        first_in_reading[first.set_key or "item"] += 1
    # Every set the rows can take is taken; the five-child set never is.
    assert set(drawn_sets) == set(sets) - {"DH-6@1"}
    # Shuffling sets show their children in many orders, and sets move among the section's units.
    assert len(shuffled_orders["DH-2@1"]) > 12 and len(shuffled_orders["DH-5@1"]) == 6
    assert first_in_reading["item"] > 100 and len(first_in_reading) >= 5


def test_item_rows_never_draw_a_child_even_when_only_children_are_left():
    pool = [*make_set(1, "DH-1@1", (1, 1, 1)), make_item(10, READING, 1)]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow(READING, 1, 2),)),))
    assert shortfalls(blueprint, pool) == [Shortfall(0, READING, 1, None, wanted=2, available=1)]
    assert index_pool(pool).cell(READING, 1) == (pool[-1],)


def test_without_item_shuffle_sets_come_in_row_and_key_order_children_unmoved():
    pool, sets = reading_pool()
    blueprint = Blueprint((BlueprintSection("R", (BlueprintRow(READING, None, 3, type=SET_ROW, children=4),)),))
    for n in range(50):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)), shuffle_items=False)
        assert form_pks(form) == sets["DH-1@1"] + sets["DH-2@1"] + sets["DH-3@2"]
        assert [item.ref for item in form.items] == [f"q{k}" for k in range(1, 13)]


def test_a_pool_with_sets_draws_a_blueprint_without_set_rows_exactly_as_before():
    pool, _ = reading_pool()
    seed = candidate_seed(SECRET, "0000000001")
    plain = [item for item in pool if item.set_key is None and item.topic != READING]
    assert draw_form(math_blueprint(), pool, seed) == draw_form(math_blueprint(), plain, seed)
    assert form_digest(draw_form(math_blueprint(), pool, seed)) == PINNED_DIGEST
    assert "set_key" not in canonical_form_json(draw_form(math_blueprint(), pool, seed))


def test_set_rows_of_one_topic_compete_sized_rows_first():
    pool, sets = reading_pool()  # four-child sets: 3; three-child: 2; five-child: 1
    blueprint = Blueprint(
        (
            BlueprintSection("any", (BlueprintRow(READING, None, 3, type=SET_ROW),)),
            BlueprintSection("four", (BlueprintRow(READING, None, 2, type=SET_ROW, children=4),)),
            BlueprintSection("three", (BlueprintRow(READING, None, 1, type=SET_ROW, children=3),)),
        )
    )
    assert shortfalls(blueprint, pool) == []
    taken_by_any = Counter()
    for n in range(300):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)))
        runs = set_runs(form)
        assert len(runs) == 6  # every set, each once
        by_section = defaultdict(list)
        for key, (section, _) in runs.items():
            by_section[section].append(len(sets[key]))
        assert sorted(by_section[1]) == [4, 4] and by_section[2] == [3]
        taken_by_any.update(key for key, (section, _) in runs.items() if section == 0)
    # The any-size row gets whatever the sized rows leave, not always the same sets.
    assert set(taken_by_any) == set(sets)
    one_more = Blueprint(
        (*blueprint.sections, BlueprintSection("more", (BlueprintRow(READING, None, 1, type=SET_ROW),)))
    )
    assert shortfalls(one_more, pool) == [Shortfall(3, READING, None, SET_ROW, wanted=1, available=0)]


def test_a_set_row_asking_for_more_sets_than_exist_is_a_shortfall():
    pool = make_set(1, "DH-1@1", FOUR) + make_set(5, "DH-2@1", FOUR) + make_set(9, "DH-3@1", (1, 2))
    pool += [make_item(20, "ham-so", 1)]
    blueprint = Blueprint(
        (
            BlueprintSection(
                "I",
                (
                    BlueprintRow("ham-so", 1, 2),
                    BlueprintRow(READING, None, 3, type=SET_ROW, children=4),
                    BlueprintRow("nghi-luan", None, 1, type=SET_ROW),
                ),
            ),
        )
    )
    expected = [
        Shortfall(0, "ham-so", 1, None, wanted=2, available=1),
        Shortfall(0, READING, None, SET_ROW, wanted=3, available=2, children=4),
        Shortfall(0, "nghi-luan", None, SET_ROW, wanted=1, available=0),
    ]
    assert shortfalls(blueprint, pool) == expected
    with pytest.raises(InfeasibleBlueprint) as raised:
        draw_form(blueprint, pool, candidate_seed(SECRET, "1"))
    message = str(raised.value)
    assert "section 1: wants 3 sets of topic doc-hieu (4 children), only 2 available" in message
    assert "section 1: wants 1 set of topic nghi-luan, only 0 available" in message
    # Exactly what exists is enough.
    enough = Blueprint((BlueprintSection("I", (BlueprintRow(READING, None, 2, type=SET_ROW, children=4),)),))
    assert shortfalls(enough, pool) == []


def test_the_set_topic_may_differ_from_the_childrens_own_topics():
    children = [
        make_item(1, "ngu-phap", 1, set_key="EN-R1@1", set_topic="reading", set_position=2),
        make_item(2, "tu-vung", 2, set_key="EN-R1@1", set_topic="reading", set_position=1),
    ]
    index = index_pool(children)
    assert [s.key for s in index.sets("reading")] == ["EN-R1@1"] and index.sets("ngu-phap") == ()
    blueprint = Blueprint((BlueprintSection("R", (BlueprintRow("reading", None, 1, type=SET_ROW),)),))
    form = draw_form(blueprint, index, candidate_seed(SECRET, "1"))
    assert form_pks(form) == [2, 1] and {item.set_key for item in form.items} == {"EN-R1@1"}


@pytest.mark.parametrize(
    ("children", "message"),
    [
        (
            [make_item(1, "a", 1, set_key="S@1", set_topic="x"), make_item(2, "a", 1, set_key="S@1", set_topic="y")],
            "set S@1: its children name different set topics",
        ),
        (
            [make_item(1, "a", 1, set_key="S@1", set_shuffle=True), make_item(2, "a", 1, set_key="S@1")],
            "set S@1: some children say the set shuffles",
        ),
        (
            [make_item(1, "a", 1, set_key="S@1"), make_item(2, "a", 1, set_key="S@1")],
            "set S@1: two children share one set_position",
        ),
        ([make_item(1, "a", 1, fixed_options=("E",))], "item M-00001: fixed option"),
    ],
)
def test_a_pool_with_inconsistent_sets_or_fixed_options_is_refused(children, message):
    with pytest.raises(ValueError, match=message):
        index_pool(children)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"level": 2, "type": SET_ROW}, "a set row has no level"),
        ({"level": None, "type": SET_ROW, "children": 0}, "children 0 must be at least 1"),
        ({"level": None}, "give the level"),
        ({"level": 1, "children": 3}, "children is only for a set row"),
    ],
)
def test_set_rows_have_no_level_and_only_set_rows_have_children(fields, message):
    with pytest.raises(ValueError, match=message):
        BlueprintRow(topic=READING, count=1, **fields)


# --------------------------------------------------------------------------
# Fixed options


def test_fixed_options_stay_in_place_over_a_thousand_forms_while_the_others_move():
    five = ("A", "B", "C", "D", "E")
    pool = [
        make_item(1, "ham-so", 1, option_ids=five, fixed_options=("E",)),  # "Tất cả các ý trên"
        make_item(2, "ham-so", 1, fixed_options=("B",)),
        make_item(3, "ham-so", 1, fixed_options=("A", "B", "C")),  # only one left to move
    ]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 3),)),))
    index = index_pool(pool)
    orders = defaultdict(set)
    for n in range(1000):
        for item in draw_form(blueprint, index, candidate_seed(SECRET, f"{n:010d}")).items:
            orders[item.pk].add(item.option_order)
            assert len(set(item.option_aliases)) == len(item.option_order)
    assert {order[4] for order in orders[1]} == {"E"}
    assert {order[:4] for order in orders[1]} == set(itertools.permutations("ABCD"))
    assert {order[1] for order in orders[2]} == {"B"} and len(orders[2]) == 6
    assert orders[3] == {OPTIONS}
    unshuffled = draw_form(blueprint, index, candidate_seed(SECRET, "1"), shuffle_options=False)
    assert {item.pk: item.option_order for item in unshuffled.items} == {1: five, 2: OPTIONS, 3: OPTIONS}


def test_fixed_options_read_the_same_words_so_the_rest_of_the_form_is_unchanged():
    plain = make_pool()
    fixed = [
        make_item(item.pk, item.topic, item.level, item.type, fixed_options=("D",)) if item.pk == 1 else item
        for item in plain
    ]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 6, type="single"),)),))
    moved = 0
    for n in range(100):
        seed = candidate_seed(SECRET, str(n))
        one, two = draw_form(blueprint, plain, seed), draw_form(blueprint, fixed, seed)
        assert form_pks(one) == form_pks(two)
        for a, b in zip(one.items, two.items, strict=True):
            assert a.option_aliases == b.option_aliases
            if a.pk == 1:
                assert b.option_order[3] == "D"
                moved += a.option_order != b.option_order
            else:
                assert a == b
    assert moved > 0


def test_many_options_with_a_fixed_one_use_fisher_yates_for_the_rest():
    many = tuple(f"O{n}" for n in range(9))
    pool = [make_item(1, "ham-so", 1, option_ids=many, fixed_options=("O8",))]
    blueprint = Blueprint((BlueprintSection("I", (BlueprintRow("ham-so", 1, 1),)),))
    seen = set()
    for n in range(20):
        (item,) = draw_form(blueprint, pool, candidate_seed(SECRET, str(n))).items
        assert item.option_order[8] == "O8" and sorted(item.option_order) == sorted(many)
        seen.add(item.option_order)
    assert len(seen) == 20


# --------------------------------------------------------------------------
# Unscored (trial) rows


def test_unscored_rows_mark_their_items_and_json_keeps_it():
    pool, _ = reading_pool()
    blueprint = Blueprint(
        (
            BlueprintSection(
                "I",
                (
                    BlueprintRow("ham-so", 1, 3, type="single"),
                    BlueprintRow("ham-so", 2, 2, scored=False),
                    BlueprintRow(READING, None, 1, type=SET_ROW, children=3, scored=False),
                ),
            ),
        )
    )
    items = by_pk(pool)
    for n in range(30):
        form = draw_form(blueprint, pool, candidate_seed(SECRET, str(n)))
        trial = [item for item in form.items if not item.scored]
        assert len(trial) == 5 and len(form.items) == 8
        assert all(items[item.pk].level == 2 or item.set_key is not None for item in trial)
        assert all(items[item.pk].level == 1 and item.set_key is None for item in form.items if item.scored)
        data = form_to_json(form)
        written = [item for section in data["sections"] for item in section["items"]]
        assert [item.get("scored", True) for item in written] == [item.scored for item in form.items]
        assert all("scored" not in item for item in written if item.get("scored", True))
        through_text = json.loads(json.dumps(data))
        assert form_from_json(through_text) == form
        text = canonical_form_json(form)
        assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert form_digest(form_from_json(through_text)) == form_digest(form)
    # A default form is written exactly as before: no scored, no set_key.
    plain = form_to_json(draw_form(math_blueprint(), make_pool(), candidate_seed(SECRET, "1")))
    assert all(
        set(item) == {"ref", "pk", "points", "option_order", "option_aliases", "statement_order"}
        for section in plain["sections"]
        for item in section["items"]
    )


def test_unscored_changes_nothing_but_the_mark():
    pool = make_pool()
    scored = math_blueprint()
    trial = Blueprint(
        tuple(
            BlueprintSection(s.title, tuple(dataclasses.replace(r, scored=False) for r in s.rows), s.time_limit_minutes)
            for s in scored.sections
        )
    )
    seed = candidate_seed(SECRET, "7")
    one, two = draw_form(scored, pool, seed), draw_form(trial, pool, seed)
    assert [dataclasses.replace(item, scored=True) for item in two.items] == list(one.items)
    assert form_digest(one) != form_digest(two)


def test_malformed_scored_or_set_key_is_refused():
    data = form_to_json(draw_form(math_blueprint(), make_pool(), candidate_seed(SECRET, "1")))
    for field, value in (("scored", "no"), ("scored", 0), ("set_key", 5)):
        broken = json.loads(json.dumps(data))
        broken["sections"][0]["items"][0][field] = value
        with pytest.raises(ValueError, match="malformed"):
            form_from_json(broken)


# --------------------------------------------------------------------------
# Property: random set pools and set rows


def feasible_sets_by_matching(blueprint: Blueprint, pool_sets: dict[str, tuple[str, int]]) -> bool:
    """An independent check for set rows: can every slot get its own set? (Kuhn, as above)."""
    slots = [row for section in blueprint.sections for row in section.rows for _ in range(row.count)]
    keys = sorted(pool_sets)
    fits = [
        [k for k in keys if pool_sets[k][0] == row.topic and row.children in (None, pool_sets[k][1])] for row in slots
    ]
    owner: dict[str, int] = {}

    def assign(slot: int, seen: set[str]) -> bool:
        for k in fits[slot]:
            if k not in seen:
                seen.add(k)
                if k not in owner or assign(owner[k], seen):
                    owner[k] = slot
                    return True
        return False

    return all(assign(slot, set()) for slot in range(len(slots)))


set_shapes = st.lists(st.tuples(st.sampled_from(("r1", "r2")), st.integers(1, 4), st.booleans()), max_size=8)
set_rows = st.builds(
    BlueprintRow,
    topic=st.sampled_from(("r1", "r2")),
    level=st.none(),
    count=st.integers(0, 3),
    type=st.just(SET_ROW),
    children=st.none() | st.integers(1, 4),
    scored=st.booleans(),
)
set_blueprints = st.lists(st.lists(set_rows | rows, max_size=3).map(tuple), min_size=1, max_size=3).map(
    lambda sections: Blueprint(tuple(BlueprintSection(f"S{n}", rows) for n, rows in enumerate(sections)))
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=set_shapes, blueprint=set_blueprints, seed=st.binary(min_size=1, max_size=32))
def test_any_sets_and_set_rows(shapes, blueprint, seed):
    pool = make_pool(per_cell=1)
    pool_sets: dict[str, tuple[str, int]] = {}
    members: dict[str, list[int]] = {}
    for n, (topic, size, shuffle) in enumerate(shapes):
        key = f"S{n}@1"
        children = [
            make_item(
                1000 + 10 * n + k,
                "ham-so",
                1,
                item_id=f"S{n}-{k}",
                set_key=key,
                set_topic=topic,
                set_position=k,
                set_shuffle=shuffle,
            )
            for k in range(size)
        ]
        pool += children
        pool_sets[key] = (topic, size)
        members[key] = [child.pk for child in children]
    set_only = Blueprint(
        tuple(BlueprintSection(s.title, tuple(r for r in s.rows if r.type == SET_ROW)) for s in blueprint.sections)
    )
    items_only = Blueprint(
        tuple(BlueprintSection(s.title, tuple(r for r in s.rows if r.type != SET_ROW)) for s in blueprint.sections)
    )
    found = shortfalls(blueprint, pool)
    assert [f for f in found if f.type == SET_ROW] == shortfalls(set_only, pool)
    assert (shortfalls(set_only, pool) == []) == feasible_sets_by_matching(set_only, pool_sets)
    assert [f for f in found if f.type != SET_ROW] == shortfalls(items_only, pool)
    if found:
        return
    form = draw_form(blueprint, pool, seed, shuffle_items=False)
    assert form == draw_form(blueprint, list(reversed(pool)), seed, shuffle_items=False)
    set_runs(form)  # each set one contiguous run
    # Unshuffled, the form follows the rows: item rows' items, then set rows' sets in key order.
    for section, drawn in zip(blueprint.sections, form.sections, strict=True):
        position = 0
        for row in section.rows:
            if row.type != SET_ROW:
                for item in drawn.items[position : position + row.count]:
                    assert item.set_key is None and item.scored == row.scored
                position += row.count
                continue
            keys = []
            for _ in range(row.count):
                key = drawn.items[position].set_key
                topic, size = pool_sets[key]
                assert topic == row.topic and row.children in (None, size)
                run = drawn.items[position : position + size]
                assert [item.pk for item in run] == members[key]  # in set order, even if it shuffles
                assert all(item.set_key == key and item.scored == row.scored for item in run)
                keys.append(key)
                position += size
            assert keys == sorted(keys)
        assert position == len(drawn.items)
    shuffled = draw_form(blueprint, pool, seed)
    assert sorted(form_pks(shuffled)) == sorted(form_pks(form))
    for key, (_, pks) in set_runs(shuffled).items():
        assert sorted(pks) == sorted(members[key])
    assert form_from_json(form_to_json(shuffled)) == shuffled
