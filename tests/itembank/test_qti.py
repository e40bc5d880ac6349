"""QTI 3.0 packages: cbt's releases out and back in unchanged, other tools' items in, hostile files refused.

The official QTI 3.0 XSD files cannot be fetched here (and no package
ships them), so the exported XML is checked structurally instead: the
namespaces, each type's interaction and response declaration, the
manifest's resources against the zip, and the response processing run by
a small interpreter of the operators it uses against cbt's own scoring.
"""

from __future__ import annotations

import argparse
import io
import itertools
import re
import zipfile
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from support.qti import (
    FOREIGN_MANIFEST,
    PNG,
    declaration,
    foreign_item,
    foreign_package,
    make_zip,
    score,
)

from cbt.scoring import VIETNAMESE_TRUEFALSE4, score_item
from itembank import keys, package
from itembank.commands import register
from itembank.demo import FOLDER, FOLDER_2025, ITEMS, demo_2025, write_demo_bank_2025
from itembank.formats.imported import ImportDefaults, draft
from itembank.formats.qti import (
    IMSCP,
    ITEM_RESOURCE,
    MATHML,
    QTI,
    STIMULUS_RESOURCE,
    TRUEFALSE4_CREDIT,
    export_qti,
    export_release,
    parse_qti,
)
from itembank.model import Item, ItemSet, ItemType, Option, ShortFormat, ShortKey, Statement, Status
from itembank.render import render_markdown

DEFAULTS = ImportDefaults(subject="toan", topic="ham-so", level=2, points=Decimal("0.25"), grade=12, id_prefix="qti")
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")
# The HTML QTI 3 item bodies take that cbt's renderer produces (after export's mapping).
QTI_HTML = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "div", "dl", "dt", "em",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
BANKS = {"demo": FOLDER, "demo-2025": FOLDER_2025}


def q(name: str) -> str:
    return f"{{{QTI}}}{name}"


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def xml(data: bytes):
    from xml.etree import ElementTree

    return ElementTree.fromstring(data)


def bank(name: str):
    if name == "demo":
        from itembank.demo import _LEGACY_BANK

        return _LEGACY_BANK
    return demo_2025()


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("name", BANKS)
def test_a_whole_demo_bank_exported_and_imported_is_the_same_items_and_sets(name):
    expected = bank(name)
    exported = export_release(BANKS[name])
    result = parse_qti(exported.data, f"{name}.zip", DEFAULTS)

    assert result.problems == [] and result.notes == []
    assert (exported.items, exported.sets) == (len(expected.items), len(expected.sets))
    got = [source.item for source in result.items]
    assert [i.key for i in got] == [i.key for i in expected.items]
    for before, after in zip(expected.items, got, strict=True):
        assert after == before, before.key
    assert [s.set for s in result.sets] == list(expected.sets)
    # The media come back byte for byte, under the paths the items name.
    named = {p for i in expected.items for p in i.media} | {p for s in expected.sets for p in s.media}
    assert named and set(result.media) == named
    for path in named:
        assert result.media[path] == (BANKS[name] / path).read_bytes()


def test_every_type_and_every_field_comes_back():
    """What the demo banks do not have: each field away from its default, ids
    that are no XML name, two versions of one id, texts with tabs and blank lines."""
    items = [
        Item(
            id="1-lead-digit",
            version=3,
            type=ItemType.SINGLE,
            subject="toan",
            topic="ham-so",
            level=4,
            points=Decimal("0.75"),
            lang="vi",
            status=Status.REVIEWED,
            stem="Dòng một\n\n\tthụt lề & <u>gạch</u> ~~bỏ~~ $\\frac{1}{2}$\n",
            tags=("đạo hàm", "có khoảng trắng"),
            options=(
                Option("A", "$x$\tvà  $y$", False),
                Option("B", "*y*", True),
                Option("C", "Tất cả các ý trên", False, fixed=True),
            ),
            shuffle=False,
            explanation="",
        ),
        Item(
            id="SH",
            version=1,
            type=ItemType.SHORT,
            subject="vat-li",
            topic="co",
            level=1,
            points=Decimal("0.5"),
            lang="en",
            status=Status.DRAFT,
            stem="g?",
            answer=ShortKey("9.81", ShortFormat.NUMBER, Decimal("0.05")),
            shuffle=False,
        ),
        Item(
            id="SH",
            version=2,
            type=ItemType.SHORT,
            subject="vat-li",
            topic="co",
            level=1,
            points=Decimal("0.5"),
            lang="en",
            status=Status.APPROVED,
            stem="Word?",
            answer=ShortKey("Photosynthesis", ShortFormat.TEXT),
        ),
        Item(
            id="ES",
            version=1,
            type=ItemType.ESSAY,
            subject="van",
            topic="nghi-luan",
            level=3,
            points=Decimal("2"),
            lang="vi",
            status=Status.RETIRED,
            stem="Viết.",
            explanation="Thang điểm:\n\n- ý 1\n- ý 2\n",
        ),
        Item(
            id="sh",  # another item's id in other capitals: its own file name
            version=1,
            type=ItemType.MULTIPLE,
            subject="toan",
            topic="t",
            level=2,
            points=Decimal("1"),
            lang="vi",
            status=Status.APPROVED,
            stem="Chọn.",
            options=(Option("A", "a", True), Option("B", "b", False), Option("C", "c", True)),
        ),
    ]
    exported = export_qti(items)
    files = unzip(exported.data)
    assert {"items/id-1-lead-digit.xml", "items/SH.xml", "items/SH-v2.xml", "items/sh-v1.xml"} <= set(files)
    result = parse_qti(exported.data, "x.zip", DEFAULTS)
    assert result.problems == []
    assert [s.item for s in result.items] == items


def test_exporting_twice_gives_the_same_bytes_and_a_verified_release_the_same_package(tmp_path):
    folder = tmp_path / "bank"
    write_demo_bank_2025(folder)
    made = keys.generate_key_files("board", tmp_path)
    package.sign(folder, keys.load_private_key(made.private_path))
    package.pack(folder, tmp_path / "bank.cbtbank")
    trusted = [keys.load_public_key(made.public_path)]

    first = export_release(tmp_path / "bank.cbtbank", trusted).data
    assert export_release(tmp_path / "bank.cbtbank", trusted).data == first
    assert export_release(FOLDER_2025).data == first


def test_export_refuses_a_child_without_its_set_and_media_it_was_not_given():
    child = next(i for i in demo_2025().items if i.set_id is not None)
    with pytest.raises(ValueError, match=f"child of set {child.set_id}, which was not given"):
        export_qti([child])
    pictured = next(i for i in ITEMS if i.media)
    with pytest.raises(ValueError, match=f"media file {pictured.media[0]} is named by an item but was not given"):
        export_qti([pictured], media={})


def test_truefalse4_credit_is_cbt_scoring_s_table():
    assert TRUEFALSE4_CREDIT == VIETNAMESE_TRUEFALSE4


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("name", BANKS)
def test_the_manifest_lists_every_file_and_each_resource_points_into_the_zip(name):
    files = unzip(export_release(BANKS[name]).data)
    manifest = xml(files["imsmanifest.xml"])
    assert manifest.tag == f"{{{IMSCP}}}manifest"
    assert manifest.get(f"{{{XSI}}}schemaLocation").startswith(IMSCP + " https://purl.imsglobal.org/")
    assert manifest.findtext(f"{{{IMSCP}}}metadata/{{{IMSCP}}}schemaversion") == "3.0.0"
    resources = manifest.findall(f"{{{IMSCP}}}resources/{{{IMSCP}}}resource")
    identifiers = [r.get("identifier") for r in resources]
    assert len(set(identifiers)) == len(identifiers) and all(NCNAME.fullmatch(i) for i in identifiers)
    listed = set()
    for resource in resources:
        assert resource.get("type") in (ITEM_RESOURCE, STIMULUS_RESOURCE)
        hrefs = [f.get("href") for f in resource.findall(f"{{{IMSCP}}}file")]
        assert resource.get("href") == hrefs[0] and all(h in files for h in hrefs), hrefs
        listed |= set(hrefs)
        for dependency in resource.findall(f"{{{IMSCP}}}dependency"):
            assert dependency.get("identifierref") in identifiers
    assert listed == set(files) - {"imsmanifest.xml"}
    expected = bank(name)
    assert sum(r.get("type") == ITEM_RESOURCE for r in resources) == len(expected.items)
    assert sum(r.get("type") == STIMULUS_RESOURCE for r in resources) == len(expected.sets)


INTERACTION = {
    ItemType.SINGLE: "qti-choice-interaction",
    ItemType.MULTIPLE: "qti-choice-interaction",
    ItemType.SHORT: "qti-text-entry-interaction",
    ItemType.ESSAY: "qti-extended-text-interaction",
    ItemType.TRUEFALSE4: "qti-match-interaction",
}
DECLARED = {  # (cardinality, base-type) of RESPONSE
    ItemType.SINGLE: ("single", "identifier"),
    ItemType.MULTIPLE: ("multiple", "identifier"),
    ItemType.SHORT: ("single", "string"),
    ItemType.ESSAY: ("single", "string"),
    ItemType.TRUEFALSE4: ("multiple", "directedPair"),
}
# The order QTI 3 gives qti-assessment-item's children.
ITEM_ORDER = [
    "qti-response-declaration",
    "qti-outcome-declaration",
    "qti-assessment-stimulus-ref",
    "qti-item-body",
    "qti-response-processing",
]


def item_documents(name: str):
    """(item, its document, every file of the package) for each item of bank `name`."""
    files = unzip(export_release(BANKS[name]).data)
    manifest = xml(files["imsmanifest.xml"])
    by_id = {i.key: i for i in bank(name).items}
    for resource in manifest.iter(f"{{{IMSCP}}}resource"):
        if resource.get("type") == ITEM_RESOURCE:
            root = xml(files[resource.get("href")])
            body = root.find(q("qti-item-body"))
            key = f"{body.get('data-cbt-id')}@{body.get('data-cbt-version')}"
            yield by_id[key], root, resource.get("href"), files


@pytest.mark.parametrize("name", BANKS)
def test_each_item_has_its_type_s_interaction_and_response_declaration(name):
    seen = set()
    for item, root, path, files in item_documents(name):
        seen.add(item.type)
        assert root.tag == q("qti-assessment-item"), path
        assert NCNAME.fullmatch(root.get("identifier")) and root.get("title") == item.id
        assert root.get("time-dependent") == "false" and root.get("{http://www.w3.org/XML/1998/namespace}lang")
        order = [c.tag.removeprefix(f"{{{QTI}}}") for c in root]
        assert order == sorted(order, key=ITEM_ORDER.index), path
        (declaration,) = root.findall(q("qti-response-declaration"))
        assert (declaration.get("cardinality"), declaration.get("base-type")) == DECLARED[item.type], path
        correct = [v.text for v in declaration.iter(q("qti-value"))]
        score = next(o for o in root.findall(q("qti-outcome-declaration")) if o.get("identifier") == "SCORE")
        assert Decimal(score.get("normal-maximum")) == item.points
        interactions = [e for e in root.iter() if e.tag.endswith("-interaction")]
        assert [e.tag for e in interactions] == [q(INTERACTION[item.type])], path
        (interaction,) = interactions
        assert interaction.get("response-identifier") == declaration.get("identifier")
        if item.type in (ItemType.SINGLE, ItemType.MULTIPLE):
            assert interaction.get("max-choices") == ("1" if item.type == ItemType.SINGLE else "0")
            assert interaction.get("shuffle") == str(item.shuffle).lower()
            choices = interaction.findall(q("qti-simple-choice"))
            assert [c.get("identifier") for c in choices] == [o.id for o in item.options]
            assert [c.get("fixed") == "true" for c in choices] == [o.fixed for o in item.options]
            assert correct == list(item.correct_option_ids)
        elif item.type == ItemType.TRUEFALSE4:
            statements, values = interaction.findall(q("qti-simple-match-set"))
            assert [c.get("identifier") for c in statements] == ["a", "b", "c", "d"]
            assert [c.get("match-max") for c in statements] == ["1"] * 4
            assert [c.get("identifier") for c in values] == ["true", "false"]
            assert correct == [f"{s.id} {str(s.answer).lower()}" for s in item.statements]
        elif item.type == ItemType.SHORT:
            assert correct == [item.answer.canonical]
            assert interaction.get("data-cbt-format") == item.answer.format.value
        else:
            assert correct == [] and score.get("external-scored") == "human"
            assert root.find(q("qti-response-processing")) is None
        if item.explanation is not None:
            (rubric,) = root.iter(q("qti-rubric-block"))
            assert rubric.get("view") == "scorer tutor" and "candidate" not in rubric.get("view")
        check_content(root, path, files)
    assert seen == set(ItemType) if name == "demo" else seen


def check_content(root, path: str, files: dict[str, bytes]) -> None:
    """Every element QTI's or MathML's (HTML in QTI's namespace, from QTI's subset), every picture in the zip."""
    for element in root.iter():
        namespace, _, local = element.tag[1:].partition("}")
        assert namespace in (QTI, MATHML), (path, element.tag)
        if namespace == QTI and not local.startswith("qti-"):
            assert local in QTI_HTML, (path, local)
        if local == "img":
            target = (Path(path).parent / element.get("src")).as_posix()
            target = re.sub(r"[^/]+/\.\./", "", target)
            assert target in files and element.get("alt") is not None, (path, target)


def test_math_stays_mathml_in_mathml_s_namespace():
    item = next(i for i in ITEMS if "$" in i.stem and i.type == ItemType.SINGLE)
    root = xml(unzip(export_qti([item]).data)[f"items/{item.id}.xml"])
    stem = next(e for e in root.iter() if e.get("class") == "cbt-stem")
    formulas = stem.findall(f".//{{{MATHML}}}math")
    assert formulas and all(f.find(f"{{{MATHML}}}mrow") is not None for f in formulas)
    assert stem.get("data-cbt-markdown") == item.stem
    assert render_markdown(item.stem).html.count("<math") == len(formulas)


def test_stimulus_refs_point_to_the_set_s_stimulus_file():
    files = unzip(export_release(FOLDER_2025).data)
    item_sets = {s.id: s for s in demo_2025().sets}
    children = 0
    for item in demo_2025().items:
        if item.set_id is None:
            continue
        children += 1
        root = xml(files[f"items/{item.id}.xml"])
        (ref,) = root.findall(q("qti-assessment-stimulus-ref"))
        stimulus = xml(files["stimuli/" + ref.get("href").removeprefix("../stimuli/")])
        assert stimulus.tag == q("qti-assessment-stimulus") and stimulus.get("identifier") == ref.get("identifier")
        body = stimulus.find(q("qti-stimulus-body"))
        assert body.get("data-cbt-id") == item.set_id
        assert body.find(q("div")).get("data-cbt-markdown") == item_sets[item.set_id].stimulus
        check_content(stimulus, "stimuli/x.xml", files)
    assert children == sum(len(s.children) for s in item_sets.values()) > 0


# ---------------------------------------------------------------- response processing


def run_processing(root, response) -> Decimal:
    """SCORE after the item's response processing, for the operators cbt writes."""
    declaration = root.find(q("qti-response-declaration"))
    multiple = declaration.get("cardinality") == "multiple"
    correct = [v.text for v in declaration.iter(q("qti-value"))]
    mapping = {e.get("map-key"): Decimal(e.get("mapped-value")) for e in declaration.iter(q("qti-map-entry"))}
    outcomes: dict[str, Decimal | None] = {"SCORE": Decimal(0), "RIGHT": Decimal(0)}

    def value(element):
        tag = element.tag.removeprefix(f"{{{QTI}}}")
        operands = [value(child) for child in element]
        if tag == "qti-variable":
            name = element.get("identifier")
            return response if name == "RESPONSE" else outcomes[name]
        if tag == "qti-correct":
            return frozenset(correct) if multiple else correct[0]
        if tag == "qti-base-value":
            return Decimal(element.text)
        if tag == "qti-map-response":
            return sum((mapping.get(pair, Decimal(0)) for pair in response or ()), Decimal(0))
        if tag == "qti-match":
            return None if None in operands else operands[0] == operands[1]
        if tag == "qti-string-match":
            a, b = operands
            insensitive = element.get("case-sensitive") == "false"
            return None if a is None else (a.casefold() == b.casefold() if insensitive else a == b)
        if tag == "qti-gte":
            return operands[0] >= operands[1]
        raise AssertionError(f"operator {tag} not expected")

    def rules(parent) -> None:
        for rule in parent:
            tag = rule.tag.removeprefix(f"{{{QTI}}}")
            if tag == "qti-set-outcome-value":
                outcomes[rule.get("identifier")] = value(rule[0])
            elif tag == "qti-response-condition":
                for branch in rule:
                    if branch.tag == q("qti-response-else"):
                        rules(branch)
                        break
                    if value(branch[0]) is True:
                        rules(list(branch)[1:])
                        break
            else:
                raise AssertionError(f"rule {tag} not expected")

    rules(root.find(q("qti-response-processing")))
    return outcomes["SCORE"]


def responses(item: Item):
    """(cbt's response, the same as a QTI response) for every answer worth trying."""
    if item.type == ItemType.SINGLE:
        yield None, None
        for option in item.options:
            yield option.id, option.id
    elif item.type == ItemType.MULTIPLE:
        ids = [o.id for o in item.options]
        for n in range(len(ids) + 1):
            for chosen in itertools.combinations(ids, n):
                yield list(chosen) or None, frozenset(chosen) or None
    elif item.type == ItemType.TRUEFALSE4:
        for judged in itertools.product((None, True, False), repeat=4):
            answer = {s.id: j for s, j in zip(item.statements, judged, strict=True) if j is not None}
            pairs = frozenset(f"{k} {str(v).lower()}" for k, v in answer.items())
            yield answer or None, pairs or None
    elif item.type == ItemType.SHORT:
        key = item.answer.canonical
        for answer in (key, key.upper(), key + "9", None):
            yield answer, answer


@pytest.mark.parametrize("name", BANKS)
def test_response_processing_scores_as_cbt_does(name):
    tried = 0
    for item, root, path, _ in item_documents(name):
        if item.type == ItemType.ESSAY:
            continue
        for cbt_response, qti_response in responses(item):
            expected = score_item(item, cbt_response, item.points)
            assert run_processing(root, qti_response) == expected, (path, cbt_response)
            tried += 1
    assert tried > 100


def test_partial_credit_of_a_truefalse4_item_worth_two_points():
    item = next(i for i in ITEMS if i.type == ItemType.TRUEFALSE4)
    item = replace(item, points=Decimal("2"))
    root = xml(unzip(export_qti([item]).data)[f"items/{item.id}.xml"])
    right = [f"{s.id} {str(s.answer).lower()}" for s in item.statements]
    wrong = [f"{s.id} {str(not s.answer).lower()}" for s in item.statements]
    scores = [run_processing(root, frozenset(right[:k] + wrong[k:])) for k in range(5)]
    assert scores == [Decimal("0"), Decimal("0.2"), Decimal("0.5"), Decimal("1"), Decimal("2")]


# ---------------------------------------------------------------- other tools' packages


def test_another_tool_s_package_imports_as_these_drafts():
    result = parse_qti(foreign_package(), "de.zip", DEFAULTS)
    assert [(p.code, p.file) for p in result.problems] == [
        ("not-imported", "de.zip/items/hotspot.xml"),
        ("not-imported", "de.zip/items/two.xml"),
        ("not-imported", "de.zip/imsmanifest.xml"),
    ]
    assert "qti-hotspot-interaction" in result.problems[0].message
    assert "2 interactions (qti-choice-interaction, qti-text-entry-interaction)" in result.problems[1].message
    assert "QTI 2 item" in result.problems[2].message
    assert sorted(n.code for n in result.notes) == ["feedback-not-imported", "test-not-imported"]

    def made(number, kind, stem, **fields):
        lang = fields.pop("lang", "en")
        return replace(draft(DEFAULTS, number, kind, stem, **fields), lang=lang)

    passage = ItemSet(
        id="qti-Cpassage",
        version=1,
        subject="toan",
        topic="ham-so",
        lang="en",
        status=Status.DRAFT,
        stimulus="Nam walks to school.\n\nIt takes *ten* minutes.",
        children=("qti-Cread-1", "qti-Cread-2"),
        grade=12,
    )
    read = {"set_id": "qti-Cpassage"}
    expected = [
        made(
            "capital",
            ItemType.SINGLE,
            "Look at the map: ![A map](media/qti-Ccapital-map.png)\n\nWhich city is the **capital** of Viet Nam?",
            options=(
                Option("ChoiceA", "Huế", False),
                Option("ChoiceB", "Hà Nội", True),
                Option("ChoiceC", "None of these", False, fixed=True),
            ),
            media=("media/qti-Ccapital-map.png",),
        ),
        made(
            "squares",
            ItemType.MULTIPLE,
            "Which are equal to $x^2$?",
            options=(
                Option("A", "<math><mi>x</mi><mo>·</mo><mi>x</mi></math>", True),
                Option("B", "2x", False),
                Option("C", "x times x", True),
            ),
            points=Decimal("2"),
            shuffle=False,
        ),
        made(
            "length",
            ItemType.SHORT,
            "The rod is …… m long.",
            answer=ShortKey("1.50", ShortFormat.NUMBER),
            points=Decimal("0.5"),
        ),
        made(
            "essay",
            ItemType.ESSAY,
            "Describe your school.",
            explanation="Three ideas: 1 point each.",
            points=Decimal("3"),
        ),
        made(
            "tf",
            ItemType.TRUEFALSE4,
            "Cho hàm số y = x.",
            statements=(
                Statement("a", "Ý 1", True),
                Statement("b", "Ý 2", False),
                Statement("c", "Ý 3", False),
                Statement("d", "Ý 4", True),
            ),
            points=Decimal("1"),
            shuffle=False,
            lang="vi",
        ),
        replace(made("read-1", ItemType.SINGLE, "How does Nam go to school?", shuffle=False), **read),
        replace(made("read-2", ItemType.SINGLE, "How long?", shuffle=False), **read),
    ]
    expected[5] = replace(expected[5], options=(Option("A", "On foot", True), Option("B", "By bus", False)))
    expected[6] = replace(expected[6], options=(Option("A", "Five minutes", False), Option("B", "Ten minutes", True)))
    got = [s.item for s in result.items]
    for before, after in zip(expected, got, strict=True):
        assert after == before, before.id
    assert [s.set for s in result.sets] == [passage]
    assert result.media == {"media/qti-Ccapital-map.png": PNG}


def test_one_item_s_xml_file_alone_imports():
    text = foreign_item(
        "alone",
        declaration("single", "identifier", "A") + score(),
        '<qti-choice-interaction response-identifier="RESPONSE" max-choices="1">'
        '<qti-simple-choice identifier="A">yes</qti-simple-choice>'
        '<qti-simple-choice identifier="B">no</qti-simple-choice></qti-choice-interaction>'
        "<p>Is it?</p>",
    )
    result = parse_qti(text.encode(), "alone.xml", DEFAULTS)
    assert result.problems == []
    ((source),) = result.items
    assert (source.item.id, source.item.stem, source.file) == ("qti-Calone", "Is it?", "alone.xml")


def test_an_item_whose_key_names_no_choice_or_has_none_is_a_problem():
    body = (
        '<qti-choice-interaction response-identifier="RESPONSE" max-choices="1">'
        '<qti-simple-choice identifier="A">a</qti-simple-choice><qti-simple-choice identifier="B">b</qti-simple-choice>'
        "</qti-choice-interaction>"
    )
    wrong = parse_qti(foreign_item("w", declaration("single", "identifier", "Z"), body).encode(), "w.xml", DEFAULTS)
    none = parse_qti(foreign_item("n", declaration("single", "identifier"), body).encode(), "n.xml", DEFAULTS)
    assert [p.code for p in wrong.problems] == ["key-not-in-options"] and wrong.items == []
    assert [p.code for p in none.problems] == ["no-key"] and none.items == []
    assert none.problems[0].message.startswith("item n: ")


def test_a_set_with_a_broken_child_is_not_imported_at_all():
    data = unzip(foreign_package())
    data["items/read-2.xml"] = data["items/read-2.xml"].replace(b"<qti-value>B</qti-value>", b"")
    result = parse_qti(make_zip(data), "de.zip", DEFAULTS)
    codes = [p.code for p in result.problems]
    assert "no-key" in codes and "set-not-imported" in codes
    assert result.sets == [] and not any(s.item.set_id for s in result.items)


# ---------------------------------------------------------------- hostile and broken files


def codes(data: bytes, filename: str = "x.zip") -> list[str]:
    result = parse_qti(data, filename, DEFAULTS)
    assert result.items == [] or result.problems
    return [p.code for p in result.problems]


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    bomb = make_zip({"imsmanifest.xml": FOREIGN_MANIFEST, "items/capital.xml": b"<a>" + b" " * (20 << 20) + b"</a>"})
    assert len(bomb) < 100_000
    result = parse_qti(bomb, "bomb.zip", DEFAULTS)
    assert [p.code for p in result.problems] == ["unsafe-archive"] and result.items == []
    assert "zip bomb" in result.problems[0].message


def test_a_package_larger_than_its_limits_is_too_large():
    from itembank.archive import ArchiveLimits

    data = make_zip({"imsmanifest.xml": FOREIGN_MANIFEST, "big.bin": bytes(range(256)) * 8192})
    result = parse_qti(data, "big.zip", DEFAULTS, limits=ArchiveLimits(max_total_bytes=1 << 20))
    assert [p.code for p in result.problems] == ["too_large"]


def test_xml_with_a_doctype_is_refused_unread():
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'
        "<qti-assessment-item>&lol2;</qti-assessment-item>"
    )
    assert codes(laughs.encode(), "item.xml") == ["unsafe-xml"]
    external = '<?xml version="1.0"?>\n<!DOCTYPE item SYSTEM "file:///etc/passwd">\n<qti-assessment-item/>'
    assert codes(external.encode(), "item.xml") == ["unsafe-xml"]
    package_data = make_zip({"imsmanifest.xml": laughs.replace("qti-assessment-item", "manifest")})
    result = parse_qti(package_data, "x.zip", DEFAULTS)
    assert [(p.code, p.file, p.line) for p in result.problems] == [("unsafe-xml", "x.zip/imsmanifest.xml", 2)]


def test_a_manifest_naming_a_missing_file_is_a_problem_naming_it():
    data = unzip(foreign_package())
    del data["items/tf.xml"]
    result = parse_qti(make_zip(data), "de.zip", DEFAULTS)
    missing = [p for p in result.problems if p.code == "missing-file"]
    assert len(missing) == 1 and "'items/tf.xml'" in missing[0].message
    assert missing[0].file == "de.zip/imsmanifest.xml" and missing[0].line == 10
    assert len(result.items) == 6


def test_paths_that_leave_the_package_are_refused():
    manifest = FOREIGN_MANIFEST.replace('href="items/capital.xml"', 'href="../../etc/passwd"')
    data = {**unzip(foreign_package()), "imsmanifest.xml": manifest.encode()}
    result = parse_qti(make_zip(data), "de.zip", DEFAULTS)
    assert "unsafe-archive" in [p.code for p in result.problems]
    outside = make_zip({"../evil.xml": "<a/>", "imsmanifest.xml": FOREIGN_MANIFEST})
    assert codes(outside) == ["unsafe-archive"]


def test_an_unknown_interaction_is_not_imported_by_name():
    text = foreign_item(
        "order",
        declaration("ordered", "identifier", "A", "B"),
        '<qti-order-interaction response-identifier="RESPONSE"><qti-simple-choice identifier="A">a</qti-simple-choice>'
        "</qti-order-interaction>",
    )
    result = parse_qti(text.encode(), "order.xml", DEFAULTS)
    assert [p.code for p in result.problems] == ["not-imported"]
    assert "qti-order-interaction" in result.problems[0].message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PK\x03\x04 not really a zip", "bad-archive"),
        (make_zip({"items/a.xml": "<a/>"}), "not-qti-package"),
        (b"<qti-assessment-item", "xml-syntax"),
        (b"\xff\xfe\x00garbage", "xml-syntax"),
        (b"<a>" * 300 + b"</a>" * 300, "xml-syntax"),  # deeper than any item
        (b'<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1"/>', "not-imported"),
        (b"<manifest/>", "not-qti-package"),
        (make_zip({"imsmanifest.xml": "<manifest><resources/></manifest>"}), "no-items"),
    ],
)
def test_broken_files_are_one_clear_problem(data, expected):
    assert codes(data) == [expected]


def test_bad_cbt_data_is_a_problem_not_an_exception():
    item = next(i for i in ITEMS if i.type == ItemType.SHORT)
    files = unzip(export_qti([item]).data)
    path = f"items/{item.id}.xml"
    files[path] = (
        files[path]
        .replace(b'data-cbt-level="', b'data-cbt-level="x')
        .replace(b'data-cbt-format="vn-numeric"', b'data-cbt-format="roman"')
    )
    result = parse_qti(make_zip(files), "x.zip", DEFAULTS)
    assert [p.code for p in result.problems] == ["qti-syntax"] and result.items == []
    assert 'data-cbt-format="roman"' in result.problems[0].message


# ---------------------------------------------------------------- the command


def run(*argv) -> int:
    parser = argparse.ArgumentParser(prog="cbt")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_cbt_bank_export_qti_verifies_with_trust_and_writes_the_package(tmp_path, capsys):
    folder = tmp_path / "bank"
    write_demo_bank_2025(folder)
    made = keys.generate_key_files("board", tmp_path)
    other = keys.generate_key_files("other", tmp_path)

    assert run("bank", "export-qti", folder, "-o", tmp_path / "unsigned.zip") == 0
    assert capsys.readouterr().out.startswith(f"exported (not verified: give --trust to check the signature) {folder}")
    assert run("bank", "export-qti", folder, "-o", tmp_path / "x.zip", "--trust", made.public_path) == 1
    assert "not signed" in capsys.readouterr().err

    package.sign(folder, keys.load_private_key(made.private_path))
    assert run("bank", "export-qti", folder, "-o", tmp_path / "out" / "x.zip", "--trust", other.public_path) == 1
    assert "not trusted here" in capsys.readouterr().err
    assert not (tmp_path / "out" / "x.zip").exists()
    assert run("bank", "export-qti", folder, "-o", tmp_path / "out" / "x.zip", "--trust", made.public_path) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"verified and exported {folder} -> {tmp_path / 'out' / 'x.zip'}: ")
    assert out.endswith(": 23 items, 2 sets, 1 media files, QTI 3.0\n")
    assert (tmp_path / "out" / "x.zip").read_bytes() == (tmp_path / "unsigned.zip").read_bytes()


def test_cbt_bank_export_qti_lists_a_release_s_problems(tmp_path, capsys):
    folder = tmp_path / "bank"
    write_demo_bank_2025(folder)
    path = folder / "items" / "toan-ham-so.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("points: 0.25", "points: 0", 1), encoding="utf-8")
    assert run("bank", "export-qti", folder, "-o", tmp_path / "x.zip") == 1
    err = capsys.readouterr().err
    assert "points must be more than 0" in err and err.rstrip().endswith("fix the problems listed above")
    assert not (tmp_path / "x.zip").exists()
