"""The demo bank: clean, large enough, covering every type and the 4x4 grid,
and with keys that are right (recomputed here numerically, independently)."""

from __future__ import annotations

import math
from collections import Counter

from itembank.answers import check_short_answer
from itembank.demo import ITEMS, write_demo_bank
from itembank.formats.yaml_format import parse_file
from itembank.model import ItemType, Status
from itembank.validate import validate_path

BY_ID = {item.id: item for item in ITEMS}


def test_the_demo_bank_validates_clean(tmp_path):
    assert write_demo_bank(tmp_path) == len(ITEMS)
    assert validate_path(tmp_path) == []
    parsed = [s.item for f in sorted((tmp_path / "items").glob("*.yaml")) for s in parse_file(f).items]
    assert sorted(parsed, key=lambda i: i.id) == sorted(ITEMS, key=lambda i: i.id)


def test_size_types_languages_and_status():
    assert len(ITEMS) >= 60
    assert len(BY_ID) == len(ITEMS)
    assert {item.type for item in ITEMS} == set(ItemType)
    assert {item.status for item in ITEMS} == {Status.APPROVED}
    languages = Counter(item.lang for item in ITEMS)
    assert languages["vi"] > languages["en"] > 0
    assert {"toan", "vat-li", "tieng-anh"} <= {item.subject for item in ITEMS}


def test_math_covers_four_topics_at_four_levels_with_every_part():
    math_items = [item for item in ITEMS if item.subject == "toan"]
    cells = Counter((item.topic, item.level) for item in math_items)
    topics = {topic for topic, _ in cells}
    assert len(topics) == 4
    assert all(cells[(topic, level)] >= 3 for topic in topics for level in range(1, 5))
    for topic in topics:
        kinds = {item.type for item in math_items if item.topic == topic}
        assert {ItemType.SINGLE, ItemType.TRUEFALSE4, ItemType.SHORT} <= kinds, topic


def test_national_exam_points_per_part():
    for item in ITEMS:
        if item.type == ItemType.SINGLE:
            assert str(item.points) == "0.25"
        if item.type == ItemType.TRUEFALSE4:
            assert [s.id for s in item.statements] == list("abcd")
            assert str(item.points) == "1"
        if item.type == ItemType.SHORT and item.subject == "toan":
            assert str(item.points) == "0.5"


def integral(f, a, b, n=20000):
    """Simpson's rule."""
    h = (b - a) / n
    total = f(a) + f(b) + sum((4 if i % 2 else 2) * f(a + i * h) for i in range(1, n))
    return total * h / 3


def key_of(item_id: str) -> str:
    item = BY_ID[item_id]
    if item.type == ItemType.SHORT:
        return item.answer.canonical
    [option] = [o for o in item.options if o.correct]
    return option.text


def short_matches(item_id: str, value: float, places: int) -> bool:
    text = f"{value:.{places}f}".replace(".", ",")
    return check_short_answer(text, BY_ID[item_id].answer)


def test_short_answer_keys_recomputed():
    # HS-08: box from a 12 cm square, V(x) = x(12 - 2x)^2 is largest at x = 2.
    best = max((x / 1000 for x in range(1, 6000)), key=lambda x: x * (12 - 2 * x) ** 2)
    assert short_matches("HS-08", best, 0)
    # HS-10: v(t) = -t^2 + 12t on [0, 9].
    assert short_matches("HS-10", max(-((t / 100) ** 2) + 12 * t / 100 for t in range(901)), 0)
    # ML-08: first n with 1.06^n >= 1.5.
    assert short_matches("ML-08", next(n for n in range(1, 50) if 1.06**n >= 1.5), 0)
    # ML-10: integers x > 0 with (3^x - 27)(log2 x - 4) <= 0.
    count = sum(1 for x in range(1, 200) if (3**x - 27) * (math.log2(x) - 4) <= 0)
    assert short_matches("ML-10", count, 0)
    # TP-08: integral of ln x / x from 1 to e.
    assert short_matches("TP-08", integral(lambda x: math.log(x) / x, 1, math.e), 1)
    # TP-10: parabolic gate 4 m wide and 4 m high.
    assert short_matches("TP-10", integral(lambda x: 4 - x * x, -2, 2), 1)
    # OX-08: radius of x^2 + y^2 + z^2 - 2x + 4y - 4z - 16 = 0.
    assert short_matches("OX-08", math.sqrt(1 + 4 + 4 + 16), 0)
    # OX-10: closest point of the segment from (-4, 3, 5) to (4, 3, 5) to the origin.
    distance = min(math.dist((0, 0, 0), (-4 + 8 * k / 1000, 3, 5)) for k in range(1001))
    assert short_matches("OX-10", distance, 1)
    # VL-04: copper 0.5 kg at 100 °C into water 2 kg at 20 °C.
    t = (0.5 * 380 * 100 + 2 * 4200 * 20) / (0.5 * 380 + 2 * 4200)
    assert short_matches("VL-04", t, 0)
    # VL-06: Boyle, 6 L at 1 atm compressed to 4 atm.
    assert short_matches("VL-06", 6 * 1 / 4, 1)
    assert key_of("EN-05") == "written"


def test_part_one_keys_recomputed():
    assert key_of("HS-05") == f"${max(x**3 - 3 * x + 2 for x in (0, 1, 2))}$"
    assert key_of("ML-04") == f"$x = {2**3 - 1}$"
    assert key_of("ML-07") == "$2$"  # 4^x - 5*2^x + 4 = 0 at x = 0 and x = 2
    assert all(4**x - 5 * 2**x + 4 == 0 for x in (0, 2))
    assert key_of("TP-04") == f"${round(integral(lambda x: 2 * x + 1, 0, 1))}$"
    assert key_of("TP-05") == f"${round(integral(lambda x: x * x, 0, 3))}$"
    assert key_of("TP-07") == f"${3 - 2 * -1 + round(integral(lambda x: x, 0, 2))}$"
    assert key_of("OX-05") == f"${abs(2 * 1 + 2 * 2 - 3 + 6) // 3}$"
    assert key_of("VL-02") == f"${2 * 4200 * 50 // 1000}$ kJ"
    p2 = 2e5 * (127 + 273) / (27 + 273)
    assert key_of("VL-07").startswith(f"${p2 / 1e5:.2f}".replace(".", "{,}"))
    # HS-07: integers m with 9m^2 - 9 <= 0.
    assert key_of("HS-07") == f"${sum(1 for m in range(-10, 11) if 9 * m * m - 9 <= 0)}$"


def test_truefalse_statements_recomputed():
    def answers(item_id):
        return [s.answer for s in BY_ID[item_id].statements]

    f = lambda x: x**3 - 3 * x + 1  # noqa: E731  HS-06
    roots = sum(1 for a, b in ((-3, -1), (-1, 1), (1, 3)) if f(a) * f(b) < 0)
    assert answers("HS-06") == [True, False, f(1) == -1, roots == 2]
    # TP-06: integral of e^x + 2x over [0, 1] is e.
    assert math.isclose(integral(lambda x: math.exp(x) + 2 * x, 0, 1), math.e)
    assert answers("TP-06")[2] is True
    # TP-09: v = 20 - 5t stops at t = 4 after 40 m; 17.5 m in the first second.
    assert answers("TP-09") == [True, True, integral(lambda t: 20 - 5 * t, 0, 4) == 80, True]
    assert math.isclose(integral(lambda t: 20 - 5 * t, 0, 1), 17.5)
    # OX-06: A(1,0,0), B(0,2,0), C(0,0,3); M(1,2,3) on x/1 + y/2 + z/3 = 1? AB.AC = 1.
    ab, ac = (-1, 2, 0), (-1, 0, 3)
    dot = sum(p * q for p, q in zip(ab, ac, strict=True))
    assert answers("OX-06") == [True, True, 1 / 1 + 2 / 2 + 3 / 3 == 1, dot == 1]
    # OX-09: d through (1,2,3) along (1,-1,2) meets x + y + z = 3 where x = -1/2.
    t = -3 / 2
    assert math.isclose((1 + t) + (2 - t) + (3 + 2 * t), 3)
    assert answers("OX-09") == [True, True, False, 1 + t == -0.5]


def test_multiple_keys_recomputed():
    def keys(item_id):
        return "".join(BY_ID[item_id].correct_option_ids)

    # OX-11: distance from I(1,1,1) to 2x + y + 2z + 4 = 0 equals R = 3; |OI|^2 = 3 < 9.
    assert abs(2 + 1 + 2 + 4) / 3 == 3
    assert keys("OX-11") == "ABD"
    # HS-11: f = x^4 - 2x^2 has min -1, max 0 at x = 0, decreasing on (0, 1), 3 zeros.
    g = lambda x: x**4 - 2 * x * x  # noqa: E731
    assert min(g(x / 1000) for x in range(-3000, 3000)) == -1
    assert g(0.5) < g(0.25)  # decreasing on (0, 1): C is false
    assert keys("HS-11") == "ABD"
    assert keys("ML-11") == "ABC"
    assert keys("TP-11") == "BCD"
