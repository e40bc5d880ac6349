"""Item sets: several items sharing one stimulus, versioned and reviewed as one unit.

`broken_sets/` is a release folder in the 2025 level scheme holding one
deliberately broken set (or id clash) per check, plus a correct set; the
messages below are exactly what ``cbt bank validate`` prints for it.
"""

from __future__ import annotations

import dataclasses
import shutil
import textwrap
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from support.items import items as any_items

from itembank import package
from itembank.archive import FolderFiles
from itembank.demo import demo_2025, write_demo_bank_2025
from itembank.errors import ReleaseInvalidError, SignError, XlsxError
from itembank.formats.xlsx import read_xlsx, write_template, write_xlsx
from itembank.formats.yaml_format import parse_file, parse_text, serialise_item, serialise_items, serialise_set
from itembank.levels import SCHEME_2025
from itembank.model import ItemSet, ItemType, Status
from itembank.render import render_item, render_set
from itembank.validate import check_release, validate_path

BROKEN = Path(__file__).parent / "broken_sets"
LEVELS_2025 = "(bank.yaml says levels: 2025)"

EXPECTED = [
    "items/child-and-item.yaml:16: duplicate id: item PAIR-1 version 1 is also at"
    " items/child-and-item.yaml:11; give each item its own id, or raise the version of the newer one",
    "items/child-and-item.yaml:26: id PAIR-SET is a lone item here and set PAIR-SET at"
    " items/child-and-item.yaml:2: give each item and set its own id",
    "items/child-in-two-sets.yaml:25: id SHARED-1 is an item of set TWO-B here and an item of set TWO-A at"
    " items/child-in-two-sets.yaml:11: give each item and set its own id",
    "items/child-version-status.yaml:11: version: an item of set VERSIONED-SET takes its version from the set:"
    " remove it here (raise the set's version instead)",
    "items/child-version-status.yaml:12: status: an item of set VERSIONED-SET takes its status from the set:"
    " remove it here (a set is reviewed as one unit)",
    "items/fixed-statement.yaml:15: statement d: fixed: is for options only; to keep the statements a-d in order,"
    " write shuffle: false on the item",
    f"items/level-not-in-scheme.yaml:13: level 4 is outside 1-3 {LEVELS_2025}:"
    " use 1 (Biết / recall), 2 (Hiểu / comprehension), 3 (Vận dụng / application)",
    f"items/level-not-in-scheme.yaml:27: level 'van-dung-cao' is not a level of this bank {LEVELS_2025}:"
    " use 1 or biet (Biết), 2 or hieu (Hiểu), 3 or van-dung (Vận dụng)",
    "items/set-empty.yaml:9: set EMPTY-SET has no items: list the questions on its stimulus under items:"
    " (- id: ..., type: ..., level: ..., points: ..., stem: ...), or write a lone item instead",
    "items/set-nested.yaml:15: a set cannot hold another set: put these items directly under set OUTER-SET's"
    " items:, or make this set a separate entry of the file's list",
    "items/stimulus-missing.yaml:1: missing field 'stimulus': every set needs id, version, type, subject, topic,"
    " lang, status, stimulus and items:",
    "items/stimulus-render.yaml:8: stimulus: cannot read $\\frac{1}{$ (no available tokens): check braces and commands",
    "items/stimulus-render.yaml:8: stimulus: media file 'media/khong-co.png' not found: copy it into the"
    " release's media/ folder or correct the name",
]

EXPECTED_CODES = {
    "duplicate-id", "set-child-field", "fixed-statement", "level-range", "set-empty", "set-nested",
    "missing-field", "bad-math", "media-missing",
}  # fmt: skip


def relative(problems, root: Path) -> list[str]:
    return [str(p).replace(f"{root}/", "") for p in problems]


def yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# ---------------------------------------------------------------- bad input, all at once


def test_every_broken_set_is_reported_exactly():
    assert relative(validate_path(BROKEN), BROKEN) == EXPECTED


def test_each_check_has_its_stable_code():
    assert {p.code for p in validate_path(BROKEN)} == EXPECTED_CODES


def test_the_correct_set_alone_has_no_problem():
    # Read with the 2025 levels of the release folder it sits in (level: hieu).
    assert validate_path(BROKEN / "items" / "correct-set.yaml") == []


def test_a_set_with_any_problem_gives_none_of_its_items():
    for name in ("child-version-status", "set-nested", "stimulus-missing", "set-empty"):
        result = parse_file(BROKEN / "items" / f"{name}.yaml", levels=SCHEME_2025)
        assert result.problems, name
        assert (result.items, result.sets) == ([], []), name


SET_HEAD = """
    id: S
    version: 1
    type: set
    subject: toan
    topic: t
    lang: vi
    status: approved
    stimulus: Đọc.
    """


@pytest.mark.parametrize(
    ("tail", "code", "line", "message"),
    [
        ("", "set-empty", 1, "set S has no items"),
        ("items:\n", "set-empty", 9, "set S has no items"),
        ("items: {a: 1}\n", "wrong-type", 9, "items: expected a list of the set's items"),
        ("items:\n  - just text\n", "not-an-item", 10, "each entry of items: must be an item of the set"),
        (
            "items:\n  - id: C\n    type: essay\n    points: 1\n    stem: x\n",
            "missing-field",
            10,
            "missing field 'level': every item of a set needs id, type, level, points, stem",
        ),
        (
            "items:\n  - id: C\n    type: essay\n    level: 1\n    points: 1\n    stem: x\n    subject: ly\n",
            "set-child-field",
            15,
            "subject: an item of set S takes its subject from the set: remove it here (all items of a set share it)",
        ),
        (
            "items:\n  - id: C\n    type: essay\n    level: 1\n    points: 1\n    stem: x\n    stimulus: y\n",
            "unknown-field",
            15,
            "unknown field 'stimulus'",
        ),
        (
            "shufle: true\nitems:\n  - id: C\n",
            "unknown-field",
            9,
            "unknown set field 'shufle' — did you mean 'shuffle'?",
        ),
    ],
)
def test_a_set_of_the_wrong_shape_says_where_and_what(tail, code, line, message):
    result = parse_text(yaml(SET_HEAD) + tail, "s.yaml")
    assert (result.items, result.sets) == ([], [])
    [problem] = [p for p in result.problems if p.code == code]
    assert problem.line == line and problem.file == "s.yaml"
    assert message in problem.message


# ---------------------------------------------------------------- good input


def test_children_inherit_from_their_set_in_order():
    result = parse_file(BROKEN / "items" / "correct-set.yaml", "correct-set.yaml", levels=SCHEME_2025)
    assert result.problems == []
    [source_set] = result.sets
    item_set = source_set.set
    assert item_set == ItemSet(
        id="GOOD-SET",
        version=1,
        subject="toan",
        topic="thong-ke",
        lang="vi",
        status=Status.APPROVED,
        stimulus="Bảng số liệu ![bảng](media/present.gif) và $\\bar{x} = 5$.\n",
        children=("GOOD-SET-1", "GOOD-SET-2", "GOOD-SET-3"),
        grade=12,
        level=2,
        media=("media/present.gif",),
    )
    assert (source_set.file, source_set.line, source_set.line_of("stimulus")) == ("correct-set.yaml", 3, 12)
    one, two, three = (s.item for s in result.items)
    for child in (one, two, three):
        assert child.set_id == "GOOD-SET"
        assert (child.version, child.subject, child.grade, child.lang, child.status) == (
            1,
            "toan",
            12,
            "vi",
            Status.APPROVED,
        )
    # Levels by id (biet), from the set (hieu) and by number (3).
    assert [c.level for c in (one, two, three)] == [1, 2, 3]
    assert [c.topic for c in (one, two, three)] == ["thong-ke", "thong-ke", "xac-suat"]
    assert [c.type for c in (one, two, three)] == [ItemType.SINGLE, ItemType.SHORT, ItemType.TRUEFALSE4]
    assert [s.line for s in result.items] == [16, 26, 31]
    # A child's inherited field is found where the set writes it.
    assert result.items[1].line_of("level") == 9 and result.items[0].line_of("level") == 18


def test_a_file_holds_sets_and_items_side_by_side():
    text = yaml(
        """
        - id: A
          version: 1
          type: essay
          subject: toan
          topic: t
          level: 1
          points: 1
          lang: vi
          status: draft
          stem: x
        - id: S
          version: 3
          type: set
          subject: toan
          topic: t
          lang: vi
          status: draft
          shuffle: true
          stimulus: Đọc.
          items:
            - {id: S-1, type: essay, level: 2, points: 1, stem: a}
            - {id: S-2, type: essay, level: 1, points: 2, stem: b}
        - id: B
          version: 1
          type: short
          subject: toan
          topic: t
          level: 2
          points: 0.5
          lang: vi
          status: draft
          stem: y
          answer: '1'
        """
    )
    result = parse_text(text, "mix.yaml")
    assert result.problems == []
    assert [s.item.id for s in result.items] == ["A", "S-1", "S-2", "B"]
    assert [s.item.set_id for s in result.items] == [None, "S", "S", None]
    assert [s.item.version for s in result.items] == [1, 3, 3, 1]
    [source_set] = result.sets
    assert source_set.set.shuffle is True and source_set.set.children == ("S-1", "S-2")


# ---------------------------------------------------------------- writing back


@st.composite
def item_sets(draw: st.DrawFn) -> tuple[ItemSet, list]:
    """A set and its children, as any_items makes items (any text, any values)."""
    head = draw(any_items())
    children = []
    for number in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(list(ItemType)))
        child = draw(any_items(kind))
        children.append(
            dataclasses.replace(
                child,
                id=f"{head.id}-{number}",
                version=head.version,
                subject=head.subject,
                grade=head.grade,
                lang=head.lang,
                status=head.status,
                topic=draw(st.sampled_from([head.topic, child.topic])),
                set_id=head.id,
            )
        )
    item_set = ItemSet(
        id=head.id,
        version=head.version,
        subject=head.subject,
        topic=head.topic,
        lang=head.lang,
        status=head.status,
        stimulus=head.stem,
        children=tuple(c.id for c in children),
        grade=head.grade,
        level=draw(st.none() | st.sampled_from([c.level for c in children])),
        shuffle=draw(st.booleans()),
        media=head.media,
        tags=head.tags,
    )
    return item_set, children


@settings(max_examples=150, deadline=None)
@given(drawn=item_sets())
def test_parse_of_serialise_set_gives_the_same_set_and_children(drawn):
    item_set, children = drawn
    text = serialise_set(item_set, children)
    result = parse_text(text, "set.yaml")
    assert result.problems == [], text
    assert [s.set for s in result.sets] == [item_set], text
    assert [s.item for s in result.items] == children, text


@settings(max_examples=50, deadline=None)
@given(drawn=item_sets(), before=any_items(), after=any_items())
def test_serialise_items_writes_children_inside_their_set(drawn, before, after):
    item_set, children = drawn
    everything = [before, *children, after]
    result = parse_text(serialise_items(everything, [item_set]), "all.yaml")
    assert result.problems == []
    assert [s.item for s in result.items] == everything
    assert [s.set for s in result.sets] == [item_set]


def test_a_child_written_alone_is_a_lone_item_with_all_it_took():
    [_, child, _] = (s.item for s in parse_file(BROKEN / "items" / "correct-set.yaml", levels=SCHEME_2025).items)
    [again] = parse_text(serialise_item(child), "one.yaml").items
    assert again.item == dataclasses.replace(child, set_id=None)


def test_a_set_is_written_only_with_its_own_children():
    item_set = next(s for s in demo_2025().sets if s.id == "EN-DOC-01")
    children = [i for i in demo_2025().items if i.set_id == item_set.id]
    assert parse_text(serialise_set(item_set, children), "en.yaml").sets[0].set == item_set
    with pytest.raises(ValueError, match="not its children"):
        serialise_set(item_set, children[::-1])
    with pytest.raises(ValueError, match="was not given"):
        serialise_items(children)


# ---------------------------------------------------------------- releases


def test_a_release_with_sets_and_2025_levels_signs_verifies_and_loads(tmp_path):
    folder = tmp_path / "bank"
    count = write_demo_bank_2025(folder)
    key = Ed25519PrivateKey.generate()
    manifest = package.sign(folder, key)
    assert manifest.item_count == count == len(demo_2025().items)
    package.pack(folder, tmp_path / "demo.cbtbank")
    data = (tmp_path / "demo.cbtbank").read_bytes()
    assert package.verify(data, [key.public_key()]).item_count == count
    release = package.load_release(data, [key.public_key()])
    assert release.info.levels == SCHEME_2025
    assert release.sets == demo_2025().sets
    assert set(release.items) == set(demo_2025().items)
    by_id = {item.id: item for item in release.items}
    for item_set in release.sets:
        assert [by_id[c].set_id for c in item_set.children] == [item_set.id] * len(item_set.children)


def test_sign_reports_an_unapproved_set_once_where_its_status_is(tmp_path):
    folder = tmp_path / "bank"
    write_demo_bank_2025(folder)
    path = folder / "items" / "vl-bang-01.yaml"
    text = path.read_text()
    path.write_text(text.replace("status: approved", "status: reviewed", 1))
    line = text.splitlines().index("status: approved") + 1
    with pytest.raises(SignError) as error:
        package.sign(folder, Ed25519PrivateKey.generate())
    assert relative(error.value.problems, folder) == [
        f"items/vl-bang-01.yaml:{line}: set VL-BANG-01 version 1 is reviewed: only approved items may enter"
        " a release; approve it after review, or move it out of items/"
    ]


def test_load_release_refuses_a_signed_release_whose_set_breaks_the_rules(tmp_path):
    # Signed by a tool that did not check: the set's child writes a version.
    folder = tmp_path / "bank"
    shutil.copytree(BROKEN, folder)
    for path in (folder / "items").iterdir():
        if path.name not in ("correct-set.yaml", "child-version-status.yaml"):
            path.unlink()
    files = FolderFiles(folder)
    key = Ed25519PrivateKey.generate()
    info = check_release(files).info
    data, signature = package.sign_manifest(package.build_manifest(files, info, 3, key), key)
    (folder / "MANIFEST.json").write_bytes(data)
    (folder / "MANIFEST.sig").write_bytes(signature)
    with pytest.raises(ReleaseInvalidError) as error:
        package.load_release(folder, [key.public_key()])
    assert {p.code for p in error.value.problems} == {"set-child-field"}


# ---------------------------------------------------------------- rendering


def test_a_stimulus_renders_as_a_stem_and_children_as_items():
    item_set = next(s for s in demo_2025().sets if s.id == "VL-BANG-01")
    rendered = render_set(item_set, media_url=lambda path: f"/m/{path}")
    assert '<img src="/m/media/xi-lanh.svg"' in rendered.stimulus.html
    assert "<table>" in rendered.stimulus.html and "<math" in rendered.stimulus.html
    assert rendered.stimulus.removed == () and rendered.stimulus.math_errors == ()
    assert [name for name, _ in rendered.all_parts()] == ["stimulus"]
    for child_id in item_set.children:
        child = next(i for i in demo_2025().items if i.id == child_id)
        parts = render_item(child).all_parts()
        assert parts[0][0] == "stem"
        assert all(part.removed == () and part.math_errors == () for _, part in parts)


def test_a_stimulus_is_sanitised_and_its_problems_reported():
    item_set = ItemSet(
        id="X",
        version=1,
        subject="toan",
        topic="t",
        lang="vi",
        status=Status.DRAFT,
        stimulus="Đọc <script>alert(1)</script> $x^$",
        children=("X-1",),
    )
    rendered = render_set(item_set).stimulus
    assert "script" not in rendered.html and "alert" not in rendered.html
    assert rendered.removed == ("<script> element: script elements are not allowed in items",)
    assert rendered.math_errors


# ---------------------------------------------------------------- spreadsheets


def test_a_spreadsheet_row_of_type_set_says_to_write_sets_in_yaml(tmp_path):
    path = tmp_path / "items.xlsx"
    write_template(path)
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["items"]
    header = [c.value for c in sheet[1]]
    sheet.cell(row=3, column=header.index("type") + 1, value="set")
    workbook.save(path)
    with pytest.raises(XlsxError) as error:
        read_xlsx(path)
    assert [(p.code, p.line, p.column) for p in error.value.problems] == [("set-not-in-xlsx", 3, "type")]
    assert "write sets in YAML" in error.value.problems[0].message


def test_a_spreadsheet_is_not_written_with_what_it_cannot_hold(tmp_path):
    items = demo_2025().items
    child = next(i for i in items if i.set_id == "EN-DOC-01")
    fixed = next(i for i in items if any(o.fixed for o in i.options))
    with pytest.raises(ValueError, match="EN-DOC-01-1@1 is a child of set EN-DOC-01"):
        write_xlsx(tmp_path / "a.xlsx", [child])
    with pytest.raises(ValueError, match="XS25-02@1 has a fixed option"):
        write_xlsx(tmp_path / "b.xlsx", [fixed])
    assert not (tmp_path / "a.xlsx").exists() and not (tmp_path / "b.xlsx").exists()


def test_points_of_children_are_their_own():
    result = parse_file(BROKEN / "items" / "correct-set.yaml", levels=SCHEME_2025)
    assert [s.item.points for s in result.items] == [Decimal("0.25"), Decimal("0.5"), Decimal("1")]
