"""The demo bank: clean, large enough, covering every type and the 4x4 grid,
and with keys that are right (recomputed here numerically, independently)."""

from __future__ import annotations

import math
import re
from collections import Counter
from fractions import Fraction

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from itembank import package
from itembank.answers import check_short_answer
from itembank.archive import FolderFiles
from itembank.demo import ITEMS, demo_2025, write_demo_bank, write_demo_bank_2025
from itembank.formats.yaml_format import parse_file
from itembank.levels import SCHEME_2025
from itembank.model import ItemType, Status
from itembank.validate import check_release, validate_path

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


# ---------------------------------------------------------------- the 2025 demo bank


def test_the_2025_demo_bank_validates_clean_and_reads_back(tmp_path):
    bank = demo_2025()
    assert write_demo_bank_2025(tmp_path) == len(bank.items)
    assert validate_path(tmp_path) == []
    check = check_release(FolderFiles(tmp_path))
    assert check.problems == [] and check.info == bank.info
    assert [s.item for s in check.items] == list(bank.items)
    assert [s.set for s in check.sets] == list(bank.sets)


def test_the_2025_demo_bank_signs_and_verifies(tmp_path):
    write_demo_bank_2025(tmp_path / "bank")
    key = Ed25519PrivateKey.generate()
    manifest = package.sign(tmp_path / "bank", key)
    assert (manifest.name, manifest.item_count) == ("demo-2025", len(demo_2025().items))
    summary = package.verify(tmp_path / "bank", [key.public_key()])
    assert (summary.name, summary.version, summary.item_count) == ("demo-2025", "2025.1", 23)
    assert package.load_release(tmp_path / "bank", [key.public_key()]).sets == demo_2025().sets


def test_the_2025_demo_bank_covers_the_three_levels_sets_and_a_fixed_option():
    bank = demo_2025()
    assert bank.info.levels == SCHEME_2025
    assert {item.status for item in bank.items} == {Status.APPROVED}
    alone = [item for item in bank.items if item.set_id is None]
    math_cells = Counter((item.topic, item.level) for item in alone if item.subject == "toan")
    assert {topic for topic, _ in math_cells} == {"ham-so", "xac-suat"}
    assert all(math_cells[(topic, level)] >= 2 for topic in ("ham-so", "xac-suat") for level in (1, 2, 3))
    assert {item.level for item in bank.items if item.subject == "tieng-anh" and item.set_id is None} == {1, 2, 3}
    children = {s.id: [i for i in bank.items if i.set_id == s.id] for s in bank.sets}
    english = children["EN-DOC-01"]
    assert 4 <= len(english) <= 5 and {c.type for c in english} == {ItemType.SINGLE}
    assert {c.lang for c in english} == {"en"}
    physics = children["VL-BANG-01"]
    assert {ItemType.TRUEFALSE4, ItemType.SHORT} <= {c.type for c in physics}
    assert [c.id for c in physics] == list(next(s for s in bank.sets if s.id == "VL-BANG-01").children)
    fixed = [(item.id, o.text) for item in bank.items for o in item.options if o.fixed]
    assert fixed == [("XS25-02", "Tất cả các ý trên.")]


def test_the_2025_demo_bank_keys_recomputed():
    bank = demo_2025()
    by_id = {item.id: item for item in bank.items}

    def short(item_id: str, value: float, places: int) -> bool:
        return check_short_answer(f"{value:.{places}f}".replace(".", ","), by_id[item_id].answer)

    def truths(item_id: str) -> list[bool]:
        return [s.answer for s in by_id[item_id].statements]

    # VL-BANG-01: the table in the stimulus, read back: pV is the same in every row.
    stimulus = next(s for s in bank.sets if s.id == "VL-BANG-01").stimulus
    rows = [
        (float(v.replace(",", ".")), float(p))
        for v, p in re.findall(r"\|\s*\d\s*\|\s*([\d,]+)\s*\|\s*(\d+)\s*\|", stimulus)
    ]
    assert len(rows) == 4
    products = {v * p for v, p in rows}
    assert products == {1200.0}
    (v1, p1), (v4, p4) = rows[0], rows[-1]
    on_a_line_through_the_origin = len({p / v for v, p in rows}) == 1
    assert truths("VL-BANG-01-1") == [
        True,
        products == {1200.0},
        v4 == v1 / 2 and p4 == 4 * p1,
        on_a_line_through_the_origin,
    ]
    assert short("VL-BANG-01-2", 1200 / 4.0, 0)
    assert short("VL-BANG-01-3", 1200 / (8.31 * 300), 2)
    # HS25-05: the largest value of x^3 - 3x^2 + m on [1, 3] is m, so m = 5.
    assert short("HS25-05", 5 - max(x**3 - 3 * x**2 for x in (1 + k / 1000 for k in range(2001))), 0)
    # HS25-06: the least speed of v(t) = 3t^2 - 12t + 15.
    assert short("HS25-06", min(3 * t * t - 12 * t + 15 for t in (k / 1000 for k in range(10_001))), 0)

    def f(x: float) -> float:  # HS25-04
        return x**3 - 3 * x

    assert truths("HS25-04") == [True, f(-1) > f(-1.01) and f(-1) > f(-0.99), f(1) == -2, max(map(f, (0, 1, 2))) == 0]
    # XS25-05: at least one blue marble among 3 of 5 red and 3 blue.
    assert short("XS25-05", 1 - math.comb(5, 3) / math.comb(8, 3), 2)
    # XS25-06: two shooters, 0.8 and 0.7, independent.
    p, q = 0.8, 0.7
    assert truths("XS25-06") == [
        math.isclose(p * q, 0.56),
        math.isclose((1 - p) * (1 - q), 0.06),
        math.isclose(p * (1 - q) + (1 - p) * q, 0.38),
        math.isclose(1 - (1 - p) * (1 - q), 0.96),
    ]

    # Part I keys.
    def key(item_id: str) -> str:
        [option] = [o for o in by_id[item_id].options if o.correct]
        return option.text

    red_pair = Fraction(math.comb(4, 2), math.comb(10, 2))
    assert key("XS25-04") == f"$\\dfrac{{{red_pair.numerator}}}{{{red_pair.denominator}}}$"
    assert key("XS25-01") == "$\\dfrac{1}{2}$" and key("XS25-03") == "$\\dfrac{1}{4}$"
    assert key("HS25-01") == "$y' = 3x^2 - 3$"
