"""Form assembly: drawing forms from a blueprint ("ma trận đề"), pure functions, no database."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import re
from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cbt.assembly import (
    FORM_FORMAT,
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
)
def test_canonical_json_escapes_anything(title, options, aliases, statements, points, time_limit, number):
    item = FormItem("q1", 3, points, tuple(options), tuple(aliases), tuple(statements))
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
