"""QTI 3.0 content packages: a release's items and sets out, the same subset back in.

``export_qti(items, sets, media)`` writes a QTI 3.0 content package (a zip:
``imsmanifest.xml``, one ``qti-assessment-item`` file per item under
``items/``, one ``qti-assessment-stimulus`` file per item set under
``stimuli/``, and the media files under ``media/`` as the release has them);
``export_release`` does it for a release folder or ``.cbtbank``, verified
against trusted keys when any are given. ``parse_qti(data, filename,
defaults)`` reads such a package (or one item's XML file) back into items
and sets, as the other importers do (`itembank.formats.imported`).

==============  ===============================================================
cbt item        QTI 3.0 (namespace ``QTI``)
==============  ===============================================================
single          ``qti-choice-interaction max-choices="1"``; response
                ``cardinality="single" base-type="identifier"`` with its
                ``qti-correct-response``; ``shuffle`` as the item's, a fixed
                option as ``qti-simple-choice fixed="true"``
multiple        the same with ``max-choices="0"`` and ``cardinality="multiple"``
short           ``qti-text-entry-interaction``, response ``base-type="string"``,
                the canonical key as correct response; cbt's format and
                tolerance as ``data-cbt-format`` and ``data-cbt-tolerance`` on
                the interaction
essay           ``qti-extended-text-interaction``, no correct response, SCORE
                ``external-scored="human"``
truefalse4      ``qti-match-interaction``: statements a-d (``match-max="1"``)
                against ``true`` / ``false`` (Đúng / Sai), response
                ``cardinality="multiple" base-type="directedPair"``
item set        its stimulus as a ``qti-assessment-stimulus`` file; each child
                has a ``qti-assessment-stimulus-ref`` to it, and the children
                stand in the manifest in the set's order
==============  ===============================================================

Scoring. SCORE is declared with ``normal-maximum`` = the item's points, and
response processing sets it in points. For single, multiple and short that
is the rule of the ``match_correct`` template (the response equal to the
correct response), written out rather than referenced
(``https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct.xml``
sets SCORE to 1, which would contradict a ``normal-maximum`` of 0.25
and make every item worth 1 in a test's ``qti-outcome-maximum``). A ``text``
short answer compares without case (``qti-string-match
case-sensitive="false"``); cbt's other normalisations (``-1.5`` for
``-1,5``, numeric tolerance) live in the ``data-cbt-*`` attributes, which
other players do not read, so they compare exactly. truefalse4 counts the
statements judged right with a ``qti-mapping`` (each correct pair worth 1,
``qti-map-response`` into the outcome RIGHT) and gives the Vietnamese
partial credit, `TRUEFALSE4_CREDIT` (cbt.scoring's default table): 1, 2, 3,
4 right statements give 10%, 25%, 50%, 100% of the points.

What cbt keeps for itself, so that importing its own package gives the very
same items back:

- the Markdown each text was written in, as ``data-cbt-markdown`` on the
  element that shows it rendered (HTML with MathML, by `itembank.render`):
  ``div class="cbt-stem"``, each choice, each statement, the explanation,
  ``div class="cbt-stimulus"``. HTML -> Markdown loses what the author
  wrote, so the Markdown wins on import whenever it is there;
- the item's metadata as ``data-cbt-*`` attributes on ``qti-item-body``
  (``id``, ``version``, ``subject``, ``grade``, ``topic``, ``level``,
  ``status``, ``tags`` and ``media`` as JSON lists, ``shuffle`` for types
  without an interaction to carry it) and the set's on its
  ``qti-stimulus-body`` (``level``, ``shuffle`` too); ``xml:lang`` is the
  language, SCORE's ``normal-maximum`` the points;
- the explanation as ``qti-rubric-block view="scorer tutor"`` with
  ``class="cbt-explanation"``: for whoever marks or teaches, never the
  candidate (modal feedback would be shown to the candidate).

HTML that QTI 3 does not have becomes what it has: ``<u>`` a ``span``
of the shared vocabulary's ``qti-underline``, ``<s>`` ``<del>`` ``<ins>``
``<mark>`` a ``span`` of class ``cbt-s`` (and so on), a table cell's
``text-align`` ``qti-align-left|center|right``. Media are linked relative to
the file (``../media/graph.png``).

Import reads cbt's packages as above, and plain QTI 3.0 items from other
tools with one interaction of those four kinds: their body (without the
interaction) becomes the stem in Markdown (as Moodle's HTML does,
`itembank.formats.moodle.markdown_text`), pictures come from the package
(``media/<item id>-<name>``), MathML becomes ``$TeX$`` when it carries a TeX
annotation and stays MathML otherwise (inline in the Markdown, where cbt's
renderer keeps MathML's elements and sanitises them), SCORE's ``normal-maximum`` gives the
points (else the defaults'), ``xml:lang`` the language, and a rubric block
not for the candidate the explanation. A ``qti-match-interaction`` is a
truefalse4 when it matches four statements against true and false. Such
items become drafts named from their identifier (``imp-C<identifier>``);
items sharing a stimulus become an item set. Everything else is a
``not-imported`` problem naming the interaction (``qti-hotspot-interaction``,
two interactions in one item, QTI 2.x items ...).

Safety: a package is read through `itembank.archive.ZipFiles` (no absolute
or ``..`` paths, no links, sizes and compression ratio bounded while
unpacking, within `itembank.limits.ArchiveLimits`); XML is read by expat,
which refuses any document type declaration at its first line (no entity is
ever expanded or fetched, as in `itembank.formats.moodle`), and at most
`MAX_DEPTH` elements deep; a path a file names is resolved inside the
package or refused.

Problem codes: ``too_large``, ``unsafe-archive``, ``bad-archive``,
``not-qti-package``, ``missing-file``, ``xml-syntax``, ``unsafe-xml``,
``encoding``, ``qti-syntax`` (a part QTI requires is missing or malformed,
a ``data-cbt-*`` value cbt cannot read), ``not-imported``, ``no-key``,
``key-not-in-options``, ``no-items``, ``media-not-embedded``, ``bad-media``,
``unsupported-content``, ``set-not-imported`` (a child of its set, or its
stimulus, has a problem), ``duplicate-id`` (a package holding one item
version twice) and itembank's own from `itembank.validate`, which every
imported item and set passes. Notes (the item is imported):
``feedback-not-imported``, ``answer-not-imported`` (a second accepted short
answer), ``test-not-imported``, ``content-removed``, ``link-removed``.
"""

from __future__ import annotations

import html
import json
import posixpath
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote
from xml.parsers import expat

from itembank.archive import ArchiveLimits, ZipFiles, check_name
from itembank.errors import Problem, ProblemsError, VerifyError
from itembank.formats.imported import ImportDefaults, draft, item_id
from itembank.formats.moodle import ImportResult, Media, markdown_text
from itembank.formats.yaml_format import SourceItem, SourceSet
from itembank.levels import LEGACY, LevelScheme
from itembank.limits import TOO_LARGE, TooLarge, check_zip, megabytes
from itembank.model import Item, ItemSet, ItemType, Option, ShortFormat, ShortKey, Statement, Status
from itembank.render import render_markdown
from itembank.validate import check_item, check_set

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

QTI = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
IMSCP = "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1"
MATHML = "http://www.w3.org/1998/Math/MathML"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML = "http://www.w3.org/XML/1998/namespace"
QTI_SCHEMA = "https://purl.imsglobal.org/spec/qti/v3p0/schema/xsd/imsqti_asiv3p0_v1p0.xsd"
MANIFEST_SCHEMA = "https://purl.imsglobal.org/spec/qti/v3p0/schema/xsd/imsqtiv3p0_imscpv1p2_v1p0.xsd"
ITEM_RESOURCE = "imsqti_item_xmlv3p0"
STIMULUS_RESOURCE = "imsqti_stimulus_xmlv3p0"
MANIFEST = "imsmanifest.xml"

# cbt.scoring.VIETNAMESE_TRUEFALSE4, copied (itembank never imports cbt; a test
# compares the two): the share of the points for 0, 1, 2, 3, 4 statements right.
TRUEFALSE4_CREDIT = (Decimal("0"), Decimal("0.1"), Decimal("0.25"), Decimal("0.5"), Decimal("1"))

# One item's XML file alone (not a package) may be as large as a part of one.
MAX_BYTES = ArchiveLimits().max_entry_bytes
# Deeper than any item (body, table, row, cell, list ... MathML); the tree
# walks below recurse, so a hostile file must not nest without end.
MAX_DEPTH = 200

_DATA = "data-cbt-"
_RESPONSE = "RESPONSE"
_TRUE, _FALSE = "true", "false"
_OPTION_ID = re.compile(r"[A-Za-z0-9]{1,8}")
_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_TEX = {"application/x-tex", "tex", "latex", "text/x-latex", "application/x-latex"}
_VOID = {"br", "img", "hr", "col", "wbr", "area", "source", "track"}
# Tags the renderer allows that QTI 3's HTML does not have: a span of this class instead.
_AS_SPAN = {"u": "qti-underline", "s": "cbt-s", "del": "cbt-del", "ins": "cbt-ins", "mark": "cbt-mark"}
_HTML_ATTRIBUTES = {"img": ("src", "alt", "width", "height"), "a": ("href",), "ol": ("start",)}
_CELL_ALIGN = re.compile(r"text-align:\s*(left|center|right)")
_TRUTH_WORDS = {
    True: {"true", "t", "đúng", "đ", "dung", "yes", "vrai", "wahr", "1"},
    False: {"false", "f", "sai", "s", "no", "faux", "falsch", "0"},
}


def _q(name: str) -> str:
    return f"{{{QTI}}}{name}"


# ---------------------------------------------------------------- export


@dataclass(frozen=True)
class QtiPackage:
    """A QTI 3.0 content package: the zip's bytes and what it holds."""

    data: bytes
    items: int
    sets: int
    media: int


def export_release(
    source: Path | bytes,
    trusted_public_keys: Iterable[Ed25519PublicKey] | None = None,
    limits: ArchiveLimits | None = None,
) -> QtiPackage:
    """The QTI package of a release folder or ``.cbtbank`` (path or bytes).

    With trusted keys the release is verified and loaded as the server
    imports one (`itembank.package.load_release`: every file as signed,
    every item approved); without, it is only validated, so a folder being
    written can be looked at in another tool. Raises VerifyError,
    ReleaseInvalidError or ProblemsError (listing the problems) as those do.
    """
    from itembank import package
    from itembank.archive import open_release
    from itembank.validate import check_release

    if trusted_public_keys is not None:
        release = package.load_release(source, trusted_public_keys, limits)
        info, items, sets, media = release.info, release.items, release.sets, release.media
    else:
        files = open_release(source, limits)
        check = check_release(files)
        if check.problems or check.info is None:
            raise ProblemsError(
                "invalid-release", f"{files.label}: not exported: fix the problems listed above", check.problems
            )
        info, items, sets = check.info, [s.item for s in check.items], [s.set for s in check.sets]
        media = {name: files.read(name) for name in files.names() if name.startswith("media/")}
    return export_qti(items, sets, media, identifier=f"{info.name}-{info.version}")


def export_qti(
    items: Iterable[Item],
    sets: Iterable[ItemSet] = (),
    media: Mapping[str, bytes] | None = None,
    *,
    identifier: str = "cbt-items",
) -> QtiPackage:
    """A QTI 3.0 content package of `items` (a set's children with their set from `sets`).

    `media` maps each media path (``media/graph.png``) to its bytes; every
    file an item or set names, or shows, must be in it. The same arguments
    always give the same bytes. Raises ValueError for a child whose set is
    not given, or a media file that is not.
    """
    from itembank.package import pack_bytes

    media = media or {}
    items = list(items)
    by_set: dict[tuple[str, int], list[Item]] = {}
    for item in items:
        if item.set_id is not None:
            by_set.setdefault((item.set_id, item.version), []).append(item)
    sets_by_key = {(s.id, s.version): s for s in sets}
    names = _Names()
    files: dict[str, bytes] = {}
    resources = ElementTree.Element(f"{{{IMSCP}}}resources")
    written_sets: set[tuple[str, int]] = set()
    counts = {"items": 0, "sets": 0}

    def add_media(paths: Iterable[str], resource: ElementTree.Element) -> None:
        for path in dict.fromkeys(paths):
            if path not in media:
                raise ValueError(f"media file {path} is named by an item but was not given")
            files[path] = media[path]
            ElementTree.SubElement(resource, f"{{{IMSCP}}}file", {"href": path})

    def add_item(item: Item, stimulus: tuple[str, ItemSet] | None) -> None:
        name = names.name(item.id, item.version)
        path = f"items/{name}.xml"
        document, shown = _item_xml(item, name, stimulus)
        files[path] = document
        resource = ElementTree.SubElement(
            resources, f"{{{IMSCP}}}resource", {"identifier": name, "type": ITEM_RESOURCE, "href": path}
        )
        ElementTree.SubElement(resource, f"{{{IMSCP}}}file", {"href": path})
        add_media([*item.media, *shown], resource)
        if stimulus is not None:
            ElementTree.SubElement(resource, f"{{{IMSCP}}}dependency", {"identifierref": stimulus[0]})
        counts["items"] += 1

    for item in items:
        if item.set_id is None:
            add_item(item, None)
            continue
        key = (item.set_id, item.version)
        if key in written_sets:
            continue
        item_set = sets_by_key.get(key)
        if item_set is None:
            raise ValueError(f"item {item.key} is a child of set {item.set_id}, which was not given")
        written_sets.add(key)
        name = names.name(item_set.id, item_set.version)
        path = f"stimuli/{name}.xml"
        document, shown = _stimulus_xml(item_set, name)
        files[path] = document
        resource = ElementTree.SubElement(
            resources, f"{{{IMSCP}}}resource", {"identifier": name, "type": STIMULUS_RESOURCE, "href": path}
        )
        ElementTree.SubElement(resource, f"{{{IMSCP}}}file", {"href": path})
        add_media([*item_set.media, *shown], resource)
        counts["sets"] += 1
        children = {child.id: child for child in by_set[key]}
        for child_id in item_set.children:
            if child_id in children:
                add_item(children[child_id], (name, item_set))
    files[MANIFEST] = _manifest_xml(identifier, resources)
    return QtiPackage(pack_bytes(files), counts["items"], counts["sets"], sum(p.startswith("media/") for p in files))


class _Names:
    """A file and resource name for each item and set: its id where that is an
    XML name (NCName) not yet taken, ignoring case (zip names must differ so)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def name(self, identity: str, version: int) -> str:
        base = identity if re.match(r"[A-Za-z_]", identity) else f"id-{identity}"
        candidates = [base, f"{base}-v{version}"] + [f"{base}-v{version}-{n}" for n in range(2, len(self.taken) + 3)]
        for candidate in candidates:
            if candidate.casefold() not in self.taken:
                self.taken.add(candidate.casefold())
                return candidate
        raise AssertionError("unreachable: a free name is always found")  # pragma: no cover


def _number(value: Decimal) -> str:
    """An exact decimal as XML writes a double: 0.25, 1, 0.025 (never 1E+1)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _item_xml(item: Item, name: str, stimulus: tuple[str, ItemSet] | None) -> tuple[bytes, list[str]]:
    """The item's qti-assessment-item document, and the media files its texts show."""
    root = ElementTree.Element(
        _q("qti-assessment-item"),
        {
            f"{{{XSI}}}schemaLocation": f"{QTI} {QTI_SCHEMA}",
            "identifier": name,
            "title": item.id,
            "adaptive": "false",
            "time-dependent": "false",
            "tool-name": "cbt",
            f"{{{XML}}}lang": item.lang,
        },
    )
    shown: list[str] = []
    kind = item.type
    declaration = ElementTree.SubElement(root, _q("qti-response-declaration"), {"identifier": _RESPONSE})
    if kind in (ItemType.SINGLE, ItemType.MULTIPLE):
        declaration.attrib |= {
            "cardinality": "single" if kind == ItemType.SINGLE else "multiple",
            "base-type": "identifier",
        }
        _correct(declaration, item.correct_option_ids)
    elif kind == ItemType.TRUEFALSE4:
        declaration.attrib |= {"cardinality": "multiple", "base-type": "directedPair"}
        pairs = [f"{s.id} {_TRUE if s.answer else _FALSE}" for s in item.statements]
        _correct(declaration, pairs)
        mapping = ElementTree.SubElement(declaration, _q("qti-mapping"), {"default-value": "0"})
        for pair in pairs:
            ElementTree.SubElement(mapping, _q("qti-map-entry"), {"map-key": pair, "mapped-value": "1"})
    else:
        declaration.attrib |= {"cardinality": "single", "base-type": "string"}
        if kind == ItemType.SHORT and item.answer is not None:
            _correct(declaration, [item.answer.canonical])
    score = {
        "identifier": "SCORE",
        "cardinality": "single",
        "base-type": "float",
        "normal-maximum": _number(item.points),
    }
    if kind == ItemType.ESSAY:
        score["external-scored"] = "human"
    ElementTree.SubElement(root, _q("qti-outcome-declaration"), score)
    if kind == ItemType.TRUEFALSE4:
        ElementTree.SubElement(
            root, _q("qti-outcome-declaration"), {"identifier": "RIGHT", "cardinality": "single", "base-type": "float"}
        )
    if stimulus is not None:
        stimulus_name, item_set = stimulus
        ElementTree.SubElement(
            root,
            _q("qti-assessment-stimulus-ref"),
            {"identifier": stimulus_name, "href": f"../stimuli/{stimulus_name}.xml", "title": item_set.id},
        )

    body = ElementTree.SubElement(root, _q("qti-item-body"), _item_data(item))
    shown += _content(body, "div", {"class": "cbt-stem"}, item.stem)
    shuffle = "true" if item.shuffle else "false"
    if kind in (ItemType.SINGLE, ItemType.MULTIPLE):
        interaction = ElementTree.SubElement(
            body,
            _q("qti-choice-interaction"),
            {
                "response-identifier": _RESPONSE,
                "shuffle": shuffle,
                "max-choices": "1" if kind == ItemType.SINGLE else "0",
            },
        )
        for option in item.options:
            attributes = {"identifier": option.id}
            if option.fixed:
                attributes["fixed"] = "true"
            shown += _content(interaction, "qti-simple-choice", attributes, option.text, inline=True)
    elif kind == ItemType.TRUEFALSE4:
        interaction = ElementTree.SubElement(
            body,
            _q("qti-match-interaction"),
            {"response-identifier": _RESPONSE, "shuffle": shuffle, "max-associations": str(len(item.statements))},
        )
        statements = ElementTree.SubElement(interaction, _q("qti-simple-match-set"))
        for statement in item.statements:
            shown += _content(
                statements,
                "qti-simple-associable-choice",
                {"identifier": statement.id, "match-max": "1"},
                statement.text,
                inline=True,
            )
        values = ElementTree.SubElement(interaction, _q("qti-simple-match-set"))
        true_text, false_text = ("Đúng", "Sai") if item.lang.split("-")[0] == "vi" else ("True", "False")
        for identifier, text in ((_TRUE, true_text), (_FALSE, false_text)):
            choice = ElementTree.SubElement(
                values,
                _q("qti-simple-associable-choice"),
                {"identifier": identifier, "match-max": str(len(item.statements)), "fixed": "true"},
            )
            choice.text = text
    elif kind == ItemType.SHORT:
        answer = ElementTree.SubElement(body, _q("div"), {"class": "cbt-answer"})
        attributes = {"response-identifier": _RESPONSE}
        if item.answer is not None:
            attributes[_DATA + "format"] = item.answer.format.value
            if item.answer.tolerance is not None:
                attributes[_DATA + "tolerance"] = str(item.answer.tolerance)
        ElementTree.SubElement(answer, _q("qti-text-entry-interaction"), attributes)
    else:
        ElementTree.SubElement(body, _q("qti-extended-text-interaction"), {"response-identifier": _RESPONSE})
    if item.explanation is not None:
        rubric = ElementTree.SubElement(
            body, _q("qti-rubric-block"), {"view": "scorer tutor", "class": "cbt-explanation"}
        )
        shown += _content(rubric, "qti-content-body", {}, item.explanation)
    _response_processing(root, item)
    _layout(root)
    return _serialise(root), shown


def _correct(declaration: ElementTree.Element, values: Iterable[str]) -> None:
    correct = ElementTree.SubElement(declaration, _q("qti-correct-response"))
    for value in values:
        ElementTree.SubElement(correct, _q("qti-value")).text = value


def _item_data(item: Item) -> dict[str, str]:
    """The item's own fields QTI has no place for, as data-cbt-* attributes."""
    data = {
        "id": item.id,
        "version": str(item.version),
        "subject": item.subject,
        "topic": item.topic,
        "level": str(item.level),
        "status": item.status.value,
    }
    if item.grade is not None:
        data["grade"] = str(item.grade)
    if item.tags:
        data["tags"] = json.dumps(list(item.tags), ensure_ascii=False)
    if item.media:
        data["media"] = json.dumps(list(item.media), ensure_ascii=False)
    if item.type in (ItemType.SHORT, ItemType.ESSAY) and not item.shuffle:
        data["shuffle"] = "false"  # no interaction of theirs has a shuffle attribute
    return {_DATA + k: v for k, v in data.items()}


def _response_processing(root: ElementTree.Element, item: Item) -> None:
    """SCORE in points: match_correct's rule for single, multiple and short;
    the Vietnamese partial credit for truefalse4; nothing for an essay."""
    if item.type == ItemType.ESSAY:
        return
    processing = ElementTree.SubElement(root, _q("qti-response-processing"))
    condition = ElementTree.Element(_q("qti-response-condition"))
    if item.type == ItemType.TRUEFALSE4:
        right = ElementTree.SubElement(processing, _q("qti-set-outcome-value"), {"identifier": "RIGHT"})
        ElementTree.SubElement(right, _q("qti-map-response"), {"identifier": _RESPONSE})
        processing.append(condition)
        branches = [
            (count, item.points * TRUEFALSE4_CREDIT[count]) for count in range(len(TRUEFALSE4_CREDIT) - 1, 0, -1)
        ]
        for i, (count, points) in enumerate(branches):
            branch = ElementTree.SubElement(condition, _q("qti-response-if" if i == 0 else "qti-response-else-if"))
            test = ElementTree.SubElement(branch, _q("qti-gte"))
            ElementTree.SubElement(test, _q("qti-variable"), {"identifier": "RIGHT"})
            ElementTree.SubElement(test, _q("qti-base-value"), {"base-type": "float"}).text = str(count)
            _set_score(branch, points)
    else:
        processing.append(condition)
        branch = ElementTree.SubElement(condition, _q("qti-response-if"))
        text = item.type == ItemType.SHORT and item.answer is not None and item.answer.format == ShortFormat.TEXT
        if text:
            test = ElementTree.SubElement(branch, _q("qti-string-match"), {"case-sensitive": "false"})
        else:
            test = ElementTree.SubElement(branch, _q("qti-match"))
        ElementTree.SubElement(test, _q("qti-variable"), {"identifier": _RESPONSE})
        ElementTree.SubElement(test, _q("qti-correct"), {"identifier": _RESPONSE})
        _set_score(branch, item.points)
    _set_score(ElementTree.SubElement(condition, _q("qti-response-else")), Decimal(0))


def _set_score(parent: ElementTree.Element, points: Decimal) -> None:
    rule = ElementTree.SubElement(parent, _q("qti-set-outcome-value"), {"identifier": "SCORE"})
    ElementTree.SubElement(rule, _q("qti-base-value"), {"base-type": "float"}).text = _number(points)


def _stimulus_xml(item_set: ItemSet, name: str) -> tuple[bytes, list[str]]:
    root = ElementTree.Element(
        _q("qti-assessment-stimulus"),
        {
            f"{{{XSI}}}schemaLocation": f"{QTI} {QTI_SCHEMA}",
            "identifier": name,
            "title": item_set.id,
            f"{{{XML}}}lang": item_set.lang,
        },
    )
    data = {
        "id": item_set.id,
        "version": str(item_set.version),
        "subject": item_set.subject,
        "topic": item_set.topic,
        "status": item_set.status.value,
        "shuffle": "true" if item_set.shuffle else "false",
    }
    if item_set.grade is not None:
        data["grade"] = str(item_set.grade)
    if item_set.level is not None:
        data["level"] = str(item_set.level)
    if item_set.tags:
        data["tags"] = json.dumps(list(item_set.tags), ensure_ascii=False)
    if item_set.media:
        data["media"] = json.dumps(list(item_set.media), ensure_ascii=False)
    body = ElementTree.SubElement(root, _q("qti-stimulus-body"), {_DATA + k: v for k, v in data.items()})
    shown = _content(body, "div", {"class": "cbt-stimulus"}, item_set.stimulus)
    _layout(root)
    return _serialise(root), shown


def _manifest_xml(identifier: str, resources: ElementTree.Element) -> bytes:
    name = _NOT_NAME.sub("-", identifier)
    root = ElementTree.Element(
        f"{{{IMSCP}}}manifest",
        {
            f"{{{XSI}}}schemaLocation": f"{IMSCP} {MANIFEST_SCHEMA}",
            "identifier": name if re.match(r"[A-Za-z_]", name) else f"id-{name}",
        },
    )
    metadata = ElementTree.SubElement(root, f"{{{IMSCP}}}metadata")
    ElementTree.SubElement(metadata, f"{{{IMSCP}}}schema").text = "QTI Package"
    ElementTree.SubElement(metadata, f"{{{IMSCP}}}schemaversion").text = "3.0.0"
    ElementTree.SubElement(root, f"{{{IMSCP}}}organizations")  # required, and empty: a bank has no order
    root.append(resources)
    _layout(root, lambda element: True)
    return _serialise(root)


def _content(
    parent: ElementTree.Element, tag: str, attributes: dict[str, str], markdown: str, *, inline: bool = False
) -> list[str]:
    """Append `tag` showing `markdown` rendered, the Markdown kept beside it; returns the media it shows."""
    element = ElementTree.SubElement(parent, _q(tag), {**attributes, _DATA + "markdown": markdown})
    rendered = render_markdown(markdown, lambda path: "../" + path, inline=inline)
    builder = _HtmlInto(element)
    builder.feed(rendered.html)
    builder.close()
    return list(rendered.media)


class _HtmlInto(HTMLParser):
    """The renderer's HTML as QTI 3 content under `parent`: HTML elements in QTI's
    namespace (those QTI lacks as spans), MathML in MathML's."""

    def __init__(self, parent: ElementTree.Element) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[ElementTree.Element, str, str]] = [(parent, QTI, "")]  # (element, namespace, tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent, namespace, _ = self.stack[-1]
        given = {name: value or "" for name, value in attrs}
        if tag == "math":
            namespace = MATHML
        if namespace == MATHML:
            element = ElementTree.SubElement(
                parent, f"{{{MATHML}}}{tag}", {k: v for k, v in given.items() if k != "xmlns"}
            )
        else:
            name, attributes = tag, {k: given[k] for k in _HTML_ATTRIBUTES.get(tag, ()) if k in given}
            if tag in _AS_SPAN:
                name, attributes = "span", {"class": _AS_SPAN[tag]}
            elif tag in ("td", "th"):
                attributes = {k: given[k] for k in ("colspan", "rowspan") if k in given}
                align = _CELL_ALIGN.search(given.get("style", ""))
                if align:
                    attributes["class"] = f"qti-align-{align[1]}"
            elif tag == "img":
                attributes.setdefault("alt", "")
            element = ElementTree.SubElement(parent, _q(name), attributes)
            if tag in _VOID:
                return
        self.stack.append((element, namespace, tag))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        depth = len(self.stack)
        self.handle_starttag(tag, attrs)
        if len(self.stack) > depth:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i][2] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        parent = self.stack[-1][0]
        if len(parent):
            last = parent[-1]
            last.tail = (last.tail or "") + data
        else:
            parent.text = (parent.text or "") + data


_STRUCTURE = {
    _q(n)
    for n in (
        "qti-assessment-item", "qti-assessment-stimulus", "qti-response-declaration", "qti-correct-response",
        "qti-mapping", "qti-item-body", "qti-stimulus-body", "qti-choice-interaction", "qti-match-interaction",
        "qti-simple-match-set", "qti-response-processing", "qti-response-condition", "qti-response-if",
        "qti-response-else-if", "qti-response-else", "qti-rubric-block", "qti-set-outcome-value", "qti-gte",
        "qti-match", "qti-string-match",
    )
}  # fmt: skip


def _structural(element: ElementTree.Element) -> bool:
    if element.tag == _q("div"):
        return element.get("class") == "cbt-answer"
    return element.tag in _STRUCTURE


def _layout(root: ElementTree.Element, structural: Callable[[ElementTree.Element], bool] = _structural) -> None:
    """Indent the structure (declarations, interactions, rules) for people who
    read the file; never inside a text, where whitespace would show."""

    def indent(element: ElementTree.Element, level: int) -> None:
        if len(element) == 0 or (element.text or "").strip() or not structural(element):
            return
        if any((child.tail or "").strip() for child in element):
            return
        pad = "\n" + "  " * (level + 1)
        element.text = pad
        for child in element:
            child.tail = pad
            indent(child, level + 1)
        element[-1].tail = "\n" + "  " * level

    indent(root, 0)


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _serialise(root: ElementTree.Element) -> bytes:
    """UTF-8 XML with QTI (or IMS CP) as the default namespace and MathML as
    its own default where it starts, so that every element reads unprefixed."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']

    def text(value: str) -> str:
        return _XML_INVALID.sub("\ufffd", value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def attribute(value: str) -> str:
        # Newlines and tabs as references: an XML reader turns literal ones into spaces.
        escaped = text(value).replace('"', "&quot;")
        return escaped.replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#9;")

    def write(element: ElementTree.Element, default: str | None) -> None:
        namespace, _, local = element.tag[1:].partition("}")
        parts = [local]
        if namespace != default:
            parts.append(f'xmlns="{namespace}"')
            if default is None and any(k.startswith(f"{{{XSI}}}") for k in element.attrib):
                parts.append(f'xmlns:xsi="{XSI}"')
        for key, value in element.attrib.items():
            if key.startswith("{"):
                space, _, name = key[1:].partition("}")
                key = {XML: "xml", XSI: "xsi"}[space] + ":" + name
            parts.append(f'{key}="{attribute(value)}"')
        out.append("<" + " ".join(parts))
        if len(element) == 0 and not element.text:
            out.append("/>")
        else:
            out.append(">")
            out.append(text(element.text or ""))
            for child in element:
                write(child, namespace)
                out.append(text(child.tail or ""))
            out.append(f"</{local}>")

    write(root, None)
    out.append("\n")
    return "".join(out).encode("utf-8")


# ---------------------------------------------------------------- import


def parse_qti(
    data: bytes,
    filename: str,
    defaults: ImportDefaults,
    *,
    levels: LevelScheme = LEGACY,
    limits: ArchiveLimits | None = None,
) -> ImportResult:
    """The items and sets of a QTI 3.0 package (or of one item's XML file); see the module's docstring.

    cbt's own packages give their items and sets back exactly (status and
    version included: the caller decides what to store them as); other
    tools' items become drafts of `defaults`. `levels` is the scheme the
    items' levels are checked against, `limits` what the zip may unpack to.
    """
    reader = _Reader(filename, defaults, levels, limits or ArchiveLimits())
    try:
        if data[:2] == b"PK":
            reader.package(data)
        else:
            reader.single(data)
    except _Abort as stop:
        return ImportResult([], [stop.problem])
    return reader.result()


class _Abort(Exception):
    """The file cannot be read any further (a hostile zip, an unreadable manifest)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _boolean(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return {"true": True, "1": True, "false": False, "0": False}.get(value.strip(), default)


@dataclass
class _Document:
    root: ElementTree.Element
    lines: dict[ElementTree.Element, int]
    path: str  # inside the package ("" for a file alone)
    where: str  # how problems name the file

    def line(self, element: ElementTree.Element) -> int:
        return self.lines.get(element, 1)


@dataclass
class _Stimulus:
    """A stimulus read for the items that refer to it: the set it becomes."""

    item_set: ItemSet | None  # None if it has problems (reported)
    source: SourceSet | None
    media: dict[str, bytes]
    cbt: bool  # written by cbt (its children take version, status ... from it)
    children: list[SourceItem]


class _Reader:
    def __init__(self, filename: str, defaults: ImportDefaults, levels: LevelScheme, limits: ArchiveLimits) -> None:
        self.filename, self.defaults, self.levels, self.limits = filename, defaults, levels, limits
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []
        self.files: ZipFiles | None = None
        self.names: set[str] = set()
        # (item or set's place in the result, or the set it belongs to)
        self.entries: list[SourceItem | _Stimulus] = []
        self.media: dict[str, bytes] = {}
        self.stimuli: dict[str, _Stimulus] = {}  # path -> the set it makes
        self.ids: set[str] = set()  # ids given to other tools' items and sets
        self.seen: dict[tuple[str, int], str] = {}  # (id, version) -> where it was read first

    # -- reporting

    def problem(self, where: str, line: int | None, code: str, message: str) -> None:
        self.problems.append(Problem(where, line, code, message))

    def note(self, where: str, line: int | None, code: str, message: str) -> None:
        self.notes.append(Problem(where, line, code, message))

    def result(self) -> ImportResult:
        items: list[SourceItem] = []
        sets: list[SourceSet] = []
        placed: set[int] = set()
        for entry in self.entries:
            if isinstance(entry, SourceItem):
                items.append(entry)
                continue
            if id(entry) in placed or entry.source is None or entry.item_set is None:
                continue
            placed.add(id(entry))
            children = self._set_children(entry)
            if children is None:
                continue
            sets.append(entry.source)
            items += children
            self.media.update(entry.media)
        if not items and not self.problems:
            self.problem(self.filename, None, "no-items", "the file holds no QTI 3.0 item: export the questions again")
        return ImportResult(items, self.problems, sets, media=self.media, notes=self.notes)

    def _set_children(self, stimulus: _Stimulus) -> list[SourceItem] | None:
        """The set's children in order, if the set and every child passed; else a problem."""
        assert stimulus.item_set is not None and stimulus.source is not None
        item_set = replace(stimulus.item_set, children=tuple(c.item.id for c in stimulus.children))
        source = replace(stimulus.source, set=item_set)
        stimulus.source, stimulus.item_set = source, item_set
        found = check_set(source, self._media_exists(stimulus.media), levels=self.levels)
        for p in found:
            self.problems.append(replace(p, message=f"set {item_set.id}: {p.message}"))
        if found:
            return None
        return stimulus.children

    def _media_exists(self, media: Mapping[str, bytes]) -> Callable[[str], bool]:
        return lambda path: path in media or path in self.media

    # -- files

    def package(self, data: bytes) -> None:
        label = self.filename
        try:
            check_zip(data, label, self.limits)  # what its directory declares, before anything is unpacked
            self.files = ZipFiles(data, label, self.limits)
        except TooLarge as e:
            raise _Abort(Problem(label, None, TOO_LARGE, e.message)) from None
        except VerifyError as e:
            if e.code == "bad-archive":
                message = "not a readable zip file: export the QTI package again (the file may be cut short)"
                raise _Abort(Problem(label, None, "bad-archive", message)) from None
            raise _Abort(Problem(label, None, e.code, e.message)) from None
        self.names = set(self.files.names())
        if MANIFEST not in self.names:
            raise _Abort(
                Problem(
                    label,
                    None,
                    "not-qti-package",
                    f"no {MANIFEST} at the top of the zip, so it is not a QTI content package:"
                    " export the questions as a QTI 3.0 package (.zip)",
                )
            )
        manifest = self.xml(MANIFEST)
        if manifest is None:
            return
        if _local(manifest.root.tag) != "manifest":
            raise _Abort(
                Problem(
                    manifest.where,
                    1,
                    "not-qti-package",
                    f"the root element is <{_local(manifest.root.tag)}>, not an IMS content package's <manifest>",
                )
            )
        number = 0
        for resource in manifest.root.iter():
            if _local(resource.tag) != "resource":
                continue
            kind = resource.get("type") or ""
            line = manifest.line(resource)
            href = resource.get("href") or ""
            name = resource.get("identifier") or href
            if kind.startswith("imsqti_item_xmlv2"):
                self.problem(
                    manifest.where,
                    line,
                    "not-imported",
                    f"resource {name} is a QTI 2 item ({kind}): export the questions as QTI 3.0",
                )
            elif kind.startswith(("imsqti_test_xml", "imsqti_section_xml")):
                self.note(
                    manifest.where,
                    line,
                    "test-not-imported",
                    f"resource {name} is an assessment test: its items are imported, its order and"
                    " scoring are not (cbt builds exams from a blueprint)",
                )
            elif kind == ITEM_RESOURCE or kind.startswith("imsqti_item_xmlv3"):
                number += 1
                path = self.resolve("", href, manifest.where, line, f"resource {name}")
                if path is not None:
                    self.item_file(path, number)

    def single(self, data: bytes) -> None:
        if len(data) > MAX_BYTES:
            raise _Abort(
                Problem(
                    self.filename,
                    None,
                    TOO_LARGE,
                    f"the file is {megabytes(len(data))}, more than the {megabytes(MAX_BYTES)} allowed:"
                    " split it into several files",
                )
            )
        document = self.parse(data, "", self.filename)
        if document is not None:
            if _local(document.root.tag) == "manifest":
                message = f"this is a package's {MANIFEST} alone: import the whole package (.zip)"
                self.problem(document.where, 1, "not-qti-package", message)
                return
            self.item(document, 1)

    def resolve(self, base: str, href: str, where: str, line: int, what: str) -> str | None:
        """The package path `href` names from file `base`, if it is in the package; else a problem."""
        path = _join(base, href)
        if path is None:
            self.problem(where, line, "unsafe-archive", f"{what} names '{href}', outside the package: refused")
            return None
        if path not in self.names:
            self.problem(
                where,
                line,
                "missing-file",
                f"{what} names '{href}', which is not in the package: export the package again, whole",
            )
            return None
        return path

    def read(self, path: str) -> bytes:
        assert self.files is not None
        try:
            return self.files.read(path)
        except VerifyError as e:
            # Past a limit while unpacking, or damaged: nothing more of it is read.
            raise _Abort(Problem(f"{self.filename}/{path}", None, e.code, e.message)) from None

    def xml(self, path: str) -> _Document | None:
        return self.parse(self.read(path), path, f"{self.filename}/{path}")

    def parse(self, data: bytes, path: str, where: str) -> _Document | None:
        root, lines, failure = _read_xml(data, where)
        if failure is not None:
            self.problems.append(failure)
            return None
        assert root is not None
        return _Document(root, lines, path, where)

    def item_file(self, path: str, number: int) -> None:
        document = self.xml(path)
        if document is not None:
            self.item(document, number)

    # -- items

    def item(self, document: _Document, number: int) -> None:
        root = document.root
        where, line = document.where, document.line(root)
        if root.tag != _q("qti-assessment-item"):
            ns = _namespace(root.tag)
            if _local(root.tag) == "assessmentItem" or "imsqti_v2" in ns:
                self.problem(where, line, "not-imported", "a QTI 2 item: export the questions as QTI 3.0")
            else:
                self.problem(
                    where,
                    line,
                    "qti-syntax",
                    f"the root element is <{_local(root.tag)}>, not QTI 3.0's <qti-assessment-item>"
                    + (f" (namespace {ns})" if ns and ns != QTI else ""),
                )
            return
        identifier = root.get("identifier") or str(number)
        reading = _ItemReading(self, document, identifier)
        built = reading.read()
        if built is None:
            return
        item, stimulus = built
        if stimulus is None:
            kept = self._check(reading, item, frozenset(), None)
            if kept is not None:
                self.entries.append(SourceItem(kept, where, line))
                self.media.update(reading.media.stored)
            return
        if stimulus.item_set is None:
            self.problem(
                where,
                line,
                "set-not-imported",
                f"{reading.label} is not imported: the stimulus it shows has problems (above), and a set comes whole",
            )
            return
        inherited = frozenset(("version", "status", "subject", "grade", "lang"))
        item = replace(
            item,
            set_id=stimulus.item_set.id,
            version=stimulus.item_set.version,
            status=stimulus.item_set.status,
            subject=stimulus.item_set.subject,
            grade=stimulus.item_set.grade,
            lang=stimulus.item_set.lang,
        )
        if not stimulus.cbt:
            item = replace(item, topic=stimulus.item_set.topic)
            inherited |= {"topic"}
        kept = self._check(reading, item, inherited, stimulus)
        if kept is not None:
            stimulus.children.append(SourceItem(kept, where, line, inherited=inherited))
            stimulus.media.update(reading.media.stored)
            self.entries.append(stimulus)

    def _check(
        self, reading: _ItemReading, item: Item, inherited: frozenset[str], stimulus: _Stimulus | None
    ) -> Item | None:
        """`item` (another tool's with an id of its own) if cbt accepts it; else
        None, and why, naming the item (and the set it takes down with it)."""
        where, line = reading.document.where, reading.document.line(reading.document.root)
        if not reading.cbt:
            item = replace(item, id=self._free_id(item.id))
        source = SourceItem(item, where, line, inherited=inherited)
        media = {**reading.media.stored, **(stimulus.media if stimulus else {})}
        found = check_item(source, self._media_exists(media), levels=self.levels)
        for p in found:
            self.problems.append(replace(p, message=f"{reading.label}: {p.message}"))
        first = self.seen.setdefault((item.id, item.version), f"{where}:{line}")
        if not found and first != f"{where}:{line}":
            found = [
                source.problem(
                    "duplicate-id",
                    f"{reading.label}: item {item.id} version {item.version} is also at {first}:"
                    " the package holds it twice",
                )
            ]
            self.problems += found
        if not found:
            return item
        if stimulus is not None:
            self.drop_set(stimulus, reading)
        return None

    def drop_set(self, stimulus: _Stimulus, reading: _ItemReading) -> None:
        """A child of `stimulus` has problems: its set is not imported (once said)."""
        if stimulus.item_set is None:
            return
        self.problem(
            reading.document.where,
            reading.document.line(reading.document.root),
            "set-not-imported",
            f"set {stimulus.item_set.id} is not imported either: a set comes whole, so fix {reading.label} first",
        )
        stimulus.item_set = None

    def _free_id(self, wanted: str) -> str:
        for n in range(1, len(self.ids) + 2):
            candidate = wanted if n == 1 else f"{wanted}-{n}"
            if candidate not in self.ids:
                self.ids.add(candidate)
                return candidate
        raise AssertionError("unreachable: a free id is always found")  # pragma: no cover

    def stimulus(self, reading: _ItemReading, ref: ElementTree.Element) -> _Stimulus | None:
        document = reading.document
        line = document.line(ref)
        href = ref.get("href") or ""
        if self.files is None:
            self.problem(
                document.where,
                line,
                "missing-file",
                f"{reading.label} shows stimulus '{href}', a file of its package: import the whole package (.zip)",
            )
            return None
        path = self.resolve(posixpath.dirname(document.path), href, document.where, line, reading.label)
        if path is None:
            return None
        if path not in self.stimuli:
            stimulus_document = self.xml(path)
            failed = _Stimulus(None, None, {}, False, [])
            self.stimuli[path] = failed if stimulus_document is None else _stimulus(self, stimulus_document)
        return self.stimuli[path]


def _join(base: str, href: str) -> str | None:
    """`href` (a relative URL) from the folder `base`, as a path inside the package; None if it leaves it."""
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", href) or href.startswith(("/", "\\")):
        return None
    path = posixpath.normpath(posixpath.join(base, unquote(href.split("#")[0].split("?")[0])))
    try:
        check_name(path, "package")
    except VerifyError:
        return None
    return path


def _stimulus(reader: _Reader, document: _Document) -> _Stimulus:
    """The set a stimulus file makes; one without a set (item_set None) if it has problems, reported."""
    root = document.root
    where, line = document.where, document.line(root)
    failed = _Stimulus(None, None, {}, False, [])
    if root.tag != _q("qti-assessment-stimulus"):
        message = f"the root element is <{_local(root.tag)}>, not <qti-assessment-stimulus>"
        reader.problem(where, line, "qti-syntax", message)
        return failed
    body = root.find(_q("qti-stimulus-body"))
    if body is None:
        reader.problem(where, line, "qti-syntax", "the stimulus has no <qti-stimulus-body>")
        return failed
    identifier = root.get("identifier") or posixpath.basename(document.path)
    label = f"stimulus {identifier}"
    data = {k[len(_DATA) :]: v for k, v in body.attrib.items() if k.startswith(_DATA)}
    lang = root.get(f"{{{XML}}}lang") or ""
    errors: list[tuple[str, str]] = []
    cbt = "id" in data
    if cbt:
        media = Media(data["id"])
        messages: list[str] = []
        fields = _Fields(data, messages)
        text_element = next((e for e in body if e.get(_DATA + "markdown") is not None), None)
        item_set = ItemSet(
            id=data["id"],
            version=fields.whole("version", required=True) or 0,
            subject=data.get("subject", ""),
            topic=data.get("topic", ""),
            lang=lang,
            status=fields.status(),
            stimulus=text_element.get(_DATA + "markdown", "") if text_element is not None else "",
            children=(),
            grade=fields.whole("grade"),
            level=fields.whole("level"),
            shuffle=_boolean(data.get("shuffle"), False),
            media=fields.texts("media"),
            tags=fields.texts("tags"),
        )
        errors += [("qti-syntax", m) for m in messages]
        for path in (*item_set.media, *_shown_media(item_set.stimulus)):
            if path in reader.names:
                media.stored[path] = reader.read(path)
    else:
        defaults = reader.defaults
        media = Media(item_id(defaults, identifier))
        converter = _Converter(reader, document, media, label)
        stimulus_text = converter.markdown(body)
        item_set = ItemSet(
            id=reader._free_id(item_id(defaults, identifier)),
            version=1,
            subject=defaults.subject,
            topic=defaults.topic,
            lang=lang if _LANG.fullmatch(lang) else defaults.lang,
            status=Status.DRAFT,
            stimulus=stimulus_text,
            children=(),
            grade=defaults.grade,
            media=tuple(media.stored),
        )
        errors += converter.errors
    for code, message in errors:
        reader.problem(where, line, code, f"{label}: {message}")
    if errors:
        return failed
    return _Stimulus(item_set, SourceSet(item_set, where, line), dict(media.stored), cbt, [])


def _shown_media(markdown: str) -> list[str]:
    return list(render_markdown(markdown).media)


class _Fields:
    """cbt's data-cbt-* values, read with a message for each that cannot be."""

    def __init__(self, data: Mapping[str, str], errors: list[str]) -> None:
        self.data, self.errors = data, errors

    def whole(self, name: str, *, required: bool = False) -> int | None:
        """The number data-cbt-`name` holds; None without one (a message if it is `required`)."""
        value = self.data.get(name)
        if value is None:
            if required:
                self.errors.append(f"{_DATA}{name} is missing")
            return None
        if not re.fullmatch(r"[0-9]{1,9}", value.strip()):
            self.errors.append(f'{_DATA}{name}="{value}" is not a whole number')
            return None
        return int(value)

    def status(self) -> Status:
        value = self.data.get("status", "draft")
        try:
            return Status(value)
        except ValueError:
            self.errors.append(f'{_DATA}status="{value}" is not one of {", ".join(s.value for s in Status)}')
            return Status.DRAFT

    def texts(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name)
        if value is None:
            return ()
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not (isinstance(parsed, list) and all(isinstance(v, str) for v in parsed)):
            self.errors.append(f"{_DATA}{name} is not a JSON list of texts")
            return ()
        return tuple(parsed)


_INTERACTIONS = {"qti-choice-interaction", "qti-text-entry-interaction", "qti-extended-text-interaction"}
_FEEDBACK = {"qti-feedback-block", "qti-feedback-inline", "qti-modal-feedback"}


class _ItemReading:
    """One qti-assessment-item being read into an item."""

    def __init__(self, reader: _Reader, document: _Document, identifier: str) -> None:
        self.reader, self.document, self.identifier = reader, document, identifier
        self.label = f"item {identifier}"
        self.root = document.root
        self.body = self.root.find(_q("qti-item-body"))
        self.data = (
            {k[len(_DATA) :]: v for k, v in self.body.attrib.items() if k.startswith(_DATA)}
            if self.body is not None
            else {}
        )
        self.cbt = "id" in self.data
        self.media = Media(self.data["id"] if self.cbt else item_id(reader.defaults, identifier))
        self.errors: list[tuple[str, str]] = []  # (code, message)
        self.converter = _Converter(reader, document, self.media, self.label)

    def fail(self, code: str, message: str) -> None:
        self.errors.append((code, message))

    def report(self) -> None:
        line = self.document.line(self.root)
        for code, message in self.errors:
            self.reader.problem(self.document.where, line, code, f"{self.label}: {message}")

    def read(self) -> tuple[Item, _Stimulus | None] | None:
        refs = self.root.findall(_q("qti-assessment-stimulus-ref"))
        if len(refs) > 1:
            self.fail("not-imported", f"it shows {len(refs)} stimuli; a cbt item belongs to one set at most")
            self.report()
            return None
        stimulus = self.reader.stimulus(self, refs[0]) if refs else None
        if refs and stimulus is None:
            return None  # the stimulus' file was reported missing
        item = self._read()
        self.errors += self.converter.errors
        for code, message in self.converter.notes:
            self.reader.note(self.document.where, self.document.line(self.root), code, f"{self.label}: {message}")
        if self.errors or item is None:
            self.report()
            if stimulus is not None:
                self.reader.drop_set(stimulus, self)
            return None
        return item, stimulus

    def _read(self) -> Item | None:
        if self.body is None:
            self.fail("qti-syntax", "it has no <qti-item-body>")
            return None
        interactions = [
            e for e in self.body.iter() if e.tag.startswith(f"{{{QTI}}}") and e.tag.endswith("-interaction")
        ]
        if not interactions:
            self.fail("not-imported", "it has no interaction, so nothing to answer: not imported")
            return None
        if len(interactions) > 1:
            named = ", ".join(dict.fromkeys(_local(e.tag) for e in interactions))
            self.fail(
                "not-imported",
                f"it has {len(interactions)} interactions ({named}); a cbt item asks one question: not imported",
            )
            return None
        interaction = interactions[0]
        kind = _local(interaction.tag)
        if kind not in _INTERACTIONS and kind != "qti-match-interaction":
            self.fail(
                "not-imported",
                f"it is a {kind}, which cbt does not have (it has choice, text entry, extended text,"
                " and match as true/false): not imported",
            )
            return None
        for element in self.body.iter():
            if _local(element.tag) in _FEEDBACK:
                self.reader.note(
                    self.document.where,
                    self.document.line(element),
                    "feedback-not-imported",
                    f"{self.label}: its feedback is not imported: cbt items have none",
                )
                break
        for element in self.root:
            if _local(element.tag) == "qti-modal-feedback":
                self.reader.note(
                    self.document.where,
                    self.document.line(element),
                    "feedback-not-imported",
                    f"{self.label}: its modal feedback is not imported: cbt items have none",
                )
                break
        declaration = self._declaration(interaction)
        if declaration is None:
            return None
        if kind == "qti-choice-interaction":
            return self._choice(interaction, declaration)
        if kind == "qti-text-entry-interaction":
            return self._short(interaction, declaration)
        if kind == "qti-extended-text-interaction":
            return self._build(ItemType.ESSAY, interaction)
        return self._match(interaction, declaration)

    def _declaration(self, interaction: ElementTree.Element) -> ElementTree.Element | None:
        name = interaction.get("response-identifier")
        for declaration in self.root.findall(_q("qti-response-declaration")):
            if declaration.get("identifier") == name:
                return declaration
        self.fail("qti-syntax", f'no <qti-response-declaration identifier="{name}"> for its {_local(interaction.tag)}')
        return None

    def _correct(self, declaration: ElementTree.Element) -> list[str]:
        return [(v.text or "").strip() for v in declaration.findall(f"{_q('qti-correct-response')}/{_q('qti-value')}")]

    def _text(self, element: ElementTree.Element, *, inline: bool = False) -> str:
        """The Markdown of a text: cbt's own, or the element's content converted."""
        markdown = element.get(_DATA + "markdown")
        if markdown is not None and self.cbt:
            return markdown
        return self.converter.markdown(element, inline=inline)

    def _stem(self, interaction: ElementTree.Element) -> str:
        assert self.body is not None
        if self.cbt:
            stem = next((e for e in self.body if e.get("class") == "cbt-stem"), None)
            if stem is not None and stem.get(_DATA + "markdown") is not None:
                return stem.get(_DATA + "markdown", "")
        stem = self.converter.markdown(self.body, skip=interaction)
        prompt = interaction.find(_q("qti-prompt"))
        if prompt is not None:
            stem = "\n\n".join(p for p in (stem, self.converter.markdown(prompt)) if p)
        return stem

    def _explanation(self) -> str | None:
        assert self.body is not None
        parts = []
        for rubric in self.body.iter(_q("qti-rubric-block")):
            if "candidate" in (rubric.get("view") or "").split():
                continue  # for the candidate: part of the stem
            content = rubric.find(_q("qti-content-body"))
            parts.append(self._text(content if content is not None else rubric))
        text = "\n\n".join(p for p in parts if p)
        if not text:
            return "" if parts and self.cbt else None
        return text

    def _build(self, kind: ItemType, interaction: ElementTree.Element, **fields) -> Item | None:
        stem = self._stem(interaction)
        explanation = self._explanation()
        points = self._points()
        lang = self.root.get(f"{{{XML}}}lang") or ""
        if not self.cbt:
            item = draft(
                self.reader.defaults,
                self.identifier,
                kind,
                stem,
                points=points,
                explanation=explanation,
                media=tuple(self.media.stored),
                **fields,
            )
            return replace(item, lang=lang) if _LANG.fullmatch(lang) else item
        errors: list[str] = []
        values = _Fields(self.data, errors)
        item = Item(
            id=self.data["id"],
            version=values.whole("version", required=True) or 0,
            type=kind,
            subject=self.data.get("subject", ""),
            topic=self.data.get("topic", ""),
            level=values.whole("level", required=True) or 0,
            points=points if points is not None else self.reader.defaults.points,
            lang=lang,
            status=values.status(),
            stem=stem,
            grade=values.whole("grade"),
            tags=values.texts("tags"),
            explanation=explanation,
            media=values.texts("media"),
            **{"shuffle": _boolean(self.data.get("shuffle"), True), **fields},
        )
        for message in errors:
            self.fail("qti-syntax", message)
        for path in (*item.media, *(p for text in _texts(item) for p in _shown_media(text))):
            if path in self.reader.names and path not in self.media.stored:
                self.media.stored[path] = self.reader.read(path)
        return item

    def _points(self) -> Decimal | None:
        for outcome in self.root.findall(_q("qti-outcome-declaration")):
            if outcome.get("identifier") == "SCORE" and outcome.get("normal-maximum"):
                try:
                    points = Decimal(outcome.get("normal-maximum", ""))
                except InvalidOperation:
                    self.fail("qti-syntax", f"SCORE's normal-maximum '{outcome.get('normal-maximum')}' is not a number")
                    return None
                return points if points.is_finite() else None
        return None

    def _choice(self, interaction: ElementTree.Element, declaration: ElementTree.Element) -> Item | None:
        single = declaration.get("cardinality") == "single"
        choices = interaction.findall(_q("qti-simple-choice"))
        written = [c.get("identifier") or "" for c in choices]
        keep = all(_OPTION_ID.fullmatch(w) for w in written) and len(set(written)) == len(written)
        ids = written if keep else [_letter(i) for i in range(len(choices))]
        correct = self._correct(declaration)
        if not correct:
            self.fail("no-key", "its response declaration has no <qti-correct-response>: mark the right answer")
            return None
        unknown = [c for c in correct if c not in written]
        if unknown:
            self.fail(
                "key-not-in-options",
                f"its correct response names {', '.join(unknown)}, which no choice is"
                f" (the choices are {', '.join(written)})",
            )
            return None
        options = tuple(
            Option(
                ids[i],
                self._text(choice, inline=True),
                written[i] in correct,
                _boolean(choice.get("fixed"), False),
            )
            for i, choice in enumerate(choices)
        )
        return self._build(
            ItemType.SINGLE if single else ItemType.MULTIPLE,
            interaction,
            options=options,
            shuffle=_boolean(interaction.get("shuffle"), False),
        )

    def _short(self, interaction: ElementTree.Element, declaration: ElementTree.Element) -> Item | None:
        correct = self._correct(declaration)
        if not correct or not correct[0]:
            self.fail("no-key", "its response declaration has no <qti-correct-response>: write the right answer")
            return None
        chosen = interaction.get(_DATA + "format")
        numeric = declaration.get("base-type") in ("float", "integer")
        try:
            answer_format = ShortFormat(chosen) if chosen else ShortFormat.NUMBER if numeric else ShortFormat.TEXT
        except ValueError:
            self.fail("qti-syntax", f'{_DATA}format="{chosen}" is not one of {", ".join(f.value for f in ShortFormat)}')
            return None
        tolerance_text = interaction.get(_DATA + "tolerance")
        tolerance = None
        if tolerance_text is not None:
            try:
                tolerance = Decimal(tolerance_text)
            except InvalidOperation:
                self.fail("qti-syntax", f'{_DATA}tolerance="{tolerance_text}" is not a number')
                return None
        if len(correct) > 1:
            self.reader.note(
                self.document.where,
                self.document.line(declaration),
                "answer-not-imported",
                f"{self.label}: cbt keeps one answer, '{correct[0]}'; not imported: {', '.join(correct[1:])}",
            )
        return self._build(ItemType.SHORT, interaction, answer=ShortKey(correct[0], answer_format, tolerance))

    def _match(self, interaction: ElementTree.Element, declaration: ElementTree.Element) -> Item | None:
        """truefalse4: four statements matched against true and false; any other matching is not imported."""
        sets = interaction.findall(_q("qti-simple-match-set"))
        not_truefalse = (
            "it is a qti-match-interaction that is not four statements judged true or false"
            " (cbt's truefalse4): not imported"
        )
        if len(sets) != 2:
            self.fail("not-imported", not_truefalse)
            return None
        statements = sets[0].findall(_q("qti-simple-associable-choice"))
        values = sets[1].findall(_q("qti-simple-associable-choice"))
        truth: dict[str, bool] = {}
        for value in values:
            word = " ".join("".join(value.itertext()).split()).casefold()
            for meaning, words in _TRUTH_WORDS.items():
                if word in words or (value.get("identifier") or "").casefold() in words:
                    truth[value.get("identifier") or ""] = meaning
                    break
        if len(statements) != 4 or len(values) != 2 or sorted(truth.values()) != [False, True]:
            self.fail("not-imported", not_truefalse)
            return None
        judged: dict[str, bool] = {}
        for pair in self._correct(declaration):
            source, _, target = pair.partition(" ")
            if target.strip() in truth:
                judged[source] = truth[target.strip()]
        written = [s.get("identifier") or "" for s in statements]
        missing = [w for w in written if w not in judged]
        if missing:
            self.fail(
                "no-key",
                f"its correct response does not say whether statement {', '.join(missing)} is true or false",
            )
            return None
        rows = tuple(
            Statement("abcd"[i] if not self.cbt else written[i], self._text(s, inline=True), judged[written[i]])
            for i, s in enumerate(statements)
        )
        return self._build(
            ItemType.TRUEFALSE4, interaction, statements=rows, shuffle=_boolean(interaction.get("shuffle"), False)
        )


def _letter(index: int) -> str:
    return "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[index] if index < 26 else f"O{index + 1}"


def _texts(item: Item) -> list[str]:
    texts = [item.stem, *(o.text for o in item.options), *(s.text for s in item.statements)]
    return texts + ([item.explanation] if item.explanation else [])


class _Converter:
    """Another tool's QTI content -> cbt Markdown (through moodle's HTML reader),
    with pictures from the package and MathML as TeX where it says its TeX."""

    def __init__(self, reader: _Reader, document: _Document, media: Media, label: str) -> None:
        self.reader, self.document, self.media, self.label = reader, document, media, label
        self.errors: list[tuple[str, str]] = []  # (code, message)
        self.notes: list[tuple[str, str]] = []

    def markdown(
        self, element: ElementTree.Element, *, inline: bool = False, skip: ElementTree.Element | None = None
    ) -> str:
        formulas: list[str] = []
        html_text = _inner_html(element, formulas, skip)
        converted = markdown_text(html_text, "html", self._image, self.media)
        for code, message in converted.errors:
            if code == "media-not-embedded":
                message = message.split(" is not in the file")[0] + " is not in the package: export it again, whole"
            self.errors.append((code, message))
        self.notes += converted.notes
        text = converted.markdown
        for i, formula in enumerate(formulas):
            text = text.replace(_formula_mark(i), formula)
        return " ".join(text.split()) if inline else text

    def _image(self, src: str) -> tuple[str, bytes] | None:
        if self.reader.files is None:
            return None
        path = _join(posixpath.dirname(self.document.path), src)
        if path is None or path not in self.reader.names:
            return None
        return posixpath.basename(path), self.reader.read(path)


def _formula_mark(index: int) -> str:
    # Private-use characters: nothing in a converted text is one, and Markdown leaves them alone.
    return f"\ue030{index}\ue031"


def _inner_html(element: ElementTree.Element, formulas: list[str], skip: ElementTree.Element | None = None) -> str:
    """The content of `element` as HTML without namespaces: `skip` (the
    interaction), feedback and rubric blocks not for the candidate left out,
    each <math> a mark for its formula, appended to `formulas`."""
    out: list[str] = [html.escape(element.text or "", quote=False)]
    for child in element:
        local = _local(child.tag)
        if child is skip:
            if local == "qti-text-entry-interaction" and "".join(element.itertext()).strip():
                out.append(" …… ")  # the blank the answer goes in, in a sentence
        elif local in _FEEDBACK:
            pass
        elif local == "qti-rubric-block":
            if "candidate" in (child.get("view") or "").split():
                out.append(_inner_html(child, formulas, skip))
        elif _namespace(child.tag) == MATHML and local == "math":
            formulas.append(_formula(child))
            out.append(_formula_mark(len(formulas) - 1))
        else:
            attributes = "".join(f' {k}="{html.escape(v)}"' for k, v in child.attrib.items() if k in ("src", "alt"))
            out.append(f"<{local}{attributes}>{_inner_html(child, formulas, skip)}</{local}>")
        out.append(html.escape(child.tail or "", quote=False))
    return "".join(out)


def _formula(math: ElementTree.Element) -> str:
    """A MathML formula as cbt writes it: its TeX annotation, or the MathML itself."""
    block = math.get("display") == "block"
    for annotation in math.iter(f"{{{MATHML}}}annotation"):
        if (annotation.get("encoding") or "").strip().casefold() in _TEX and (annotation.text or "").strip():
            tex = " ".join((annotation.text or "").split())
            return f"$${tex}$$" if block else f"${tex}$"
    return _mathml(math)


def _mathml(element: ElementTree.Element) -> str:
    local = _local(element.tag)
    attributes = "".join(f' {_local(k)}="{html.escape(v)}"' for k, v in element.attrib.items())
    inner = html.escape(" ".join((element.text or "").split()), quote=False)
    inner += "".join(
        _mathml(child) + html.escape(" ".join((child.tail or "").split()), quote=False) for child in element
    )
    return f"<{local}{attributes}>{inner}</{local}>"


# ---------------------------------------------------------------- XML


class _UnsafeXml(Exception):
    """The file declares a DTD; raised from inside the parser to stop it there."""


class _TooDeep(Exception):
    """Elements nest deeper than MAX_DEPTH."""


def _read_xml(
    data: bytes, where: str
) -> tuple[ElementTree.Element | None, dict[ElementTree.Element, int], Problem | None]:
    """(root, line of each element, None), or (None, {}, the problem); names as ``{namespace}local``."""
    builder = ElementTree.TreeBuilder()
    lines: dict[ElementTree.Element, int] = {}
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    depth = 0

    def name(raw: str) -> str:
        return "{" + raw if "}" in raw else raw

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise _TooDeep
        lines[builder.start(name(tag), {name(k): v for k, v in attrs.items()})] = parser.CurrentLineNumber

    def end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(name(tag))

    def refuse(*_: object) -> None:
        raise _UnsafeXml

    # A DTD is where entities are declared: refusing it at its first line means no
    # entity is ever expanded (billion laughs) or fetched (an external entity).
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        reason = expat.errors.messages.get(e.code, "unreadable")
        message = (
            f"the XML is broken here ({reason}): export the package again (the file may have been cut short or edited)"
        )
        return None, {}, Problem(where, e.lineno, "xml-syntax", message)
    except LookupError as e:  # an encoding expat and Python's codecs do not know
        return None, {}, Problem(where, 1, "encoding", f"{e}: save the file as UTF-8")
    except _UnsafeXml:
        message = (
            "the file declares a document type (<!DOCTYPE ...>), which QTI never needs and which can make a file"
            " expand without end or read other files: it was not read; export the package again"
        )
        return None, {}, Problem(where, parser.CurrentLineNumber, "unsafe-xml", message)
    except _TooDeep:
        message = f"elements nest more than {MAX_DEPTH} deep here, which no question needs: it was not read"
        return None, {}, Problem(where, parser.CurrentLineNumber, "xml-syntax", message)
    return builder.close(), lines, None
