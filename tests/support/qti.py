"""QTI 3.0 files as other tools write them, for the importer's tests and the workspace's."""

from __future__ import annotations

import io
import zipfile

from itembank.formats.qti import MATHML, QTI


def make_zip(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content.encode() if isinstance(content, str) else content)
    return buffer.getvalue()


FOREIGN_MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" identifier="M1">
  <organizations/>
  <resources>
    <resource identifier="test" type="imsqti_test_xmlv3p0" href="test.xml"><file href="test.xml"/></resource>
    <resource identifier="capital" type="imsqti_item_xmlv3p0" href="items/capital.xml"/>
    <resource identifier="squares" type="imsqti_item_xmlv3p0" href="items/squares.xml"/>
    <resource identifier="length" type="imsqti_item_xmlv3p0" href="items/length.xml"/>
    <resource identifier="essay" type="imsqti_item_xmlv3p0" href="items/essay.xml"/>
    <resource identifier="tf" type="imsqti_item_xmlv3p0" href="items/tf.xml"/>
    <resource identifier="read-1" type="imsqti_item_xmlv3p0" href="items/read-1.xml"/>
    <resource identifier="hotspot" type="imsqti_item_xmlv3p0" href="items/hotspot.xml"/>
    <resource identifier="read-2" type="imsqti_item_xmlv3p0" href="items/read-2.xml"/>
    <resource identifier="two" type="imsqti_item_xmlv3p0" href="items/two.xml"/>
    <resource identifier="old" type="imsqti_item_xmlv2p1" href="items/old.xml"/>
    <resource identifier="passage" type="imsqti_stimulus_xmlv3p0" href="stimuli/passage.xml"/>
  </resources>
</manifest>
"""


def foreign_item(identifier: str, declarations: str, body: str, more: str = "", lang: str = "en") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<qti-assessment-item xmlns="{QTI}" xmlns:m="{MATHML}" identifier="{identifier}" title="{identifier}"
    adaptive="false" time-dependent="false" xml:lang="{lang}">
  {declarations}
  <qti-item-body>{body}</qti-item-body>
  <qti-response-processing template="https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct.xml"/>
  {more}
</qti-assessment-item>
"""


def declaration(cardinality: str, base_type: str, *values: str) -> str:
    correct = "".join(f"<qti-value>{v}</qti-value>" for v in values)
    correct = f"<qti-correct-response>{correct}</qti-correct-response>" if values else ""
    return (
        f'<qti-response-declaration identifier="RESPONSE" cardinality="{cardinality}" base-type="{base_type}">'
        f"{correct}</qti-response-declaration>"
    )


def score(maximum: str | None = None) -> str:
    extra = f' normal-maximum="{maximum}"' if maximum else ""
    return f'<qti-outcome-declaration identifier="SCORE" cardinality="single" base-type="float"{extra}/>'


PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
READ_ITEM = (
    '<qti-assessment-stimulus-ref identifier="passage" href="../stimuli/passage.xml"/>',
    '<qti-choice-interaction response-identifier="RESPONSE" max-choices="1">'
    '<qti-prompt>{question}</qti-prompt><qti-simple-choice identifier="A">{a}</qti-simple-choice>'
    '<qti-simple-choice identifier="B">{b}</qti-simple-choice></qti-choice-interaction>',
)


def foreign_package() -> bytes:
    single = declaration("single", "identifier", "ChoiceB")
    files = {
        "imsmanifest.xml": FOREIGN_MANIFEST,
        "test.xml": "<qti-assessment-test/>",
        "images/map.png": PNG,
        "items/capital.xml": foreign_item(
            "capital",
            single + score(),
            '<p>Look at the map: <img src="../images/map.png" alt="A map"/></p>'
            '<qti-choice-interaction response-identifier="RESPONSE" shuffle="true" max-choices="1">'
            "<qti-prompt>Which city is the <strong>capital</strong> of Viet Nam?</qti-prompt>"
            '<qti-simple-choice identifier="ChoiceA">Huế</qti-simple-choice>'
            '<qti-simple-choice identifier="ChoiceB">Hà   Nội</qti-simple-choice>'
            '<qti-simple-choice identifier="ChoiceC" fixed="true">None of these</qti-simple-choice>'
            "</qti-choice-interaction>",
            '<qti-modal-feedback outcome-identifier="FEEDBACK" identifier="C" show-hide="show">'
            "Yes</qti-modal-feedback>",
        ),
        "items/squares.xml": foreign_item(
            "squares",
            declaration("multiple", "identifier", "choice_1", "choice_3") + score("2"),
            "<p>Which are equal to <m:math><m:semantics><m:msup><m:mi>x</m:mi><m:mn>2</m:mn></m:msup>"
            '<m:annotation encoding="application/x-tex">x^2</m:annotation></m:semantics></m:math>?</p>'
            '<qti-choice-interaction response-identifier="RESPONSE" max-choices="0">'
            '<qti-simple-choice identifier="choice_1"><m:math><m:mi>x</m:mi><m:mo>·</m:mo><m:mi>x</m:mi>'
            "</m:math></qti-simple-choice>"
            '<qti-simple-choice identifier="choice_2">2x</qti-simple-choice>'
            '<qti-simple-choice identifier="choice_3">x times x</qti-simple-choice>'
            "</qti-choice-interaction>",
        ),
        "items/length.xml": foreign_item(
            "length",
            declaration("single", "float", "1.50") + score("0.5"),
            '<p>The rod is <qti-text-entry-interaction response-identifier="RESPONSE"/> m long.</p>',
        ),
        "items/essay.xml": foreign_item(
            "essay",
            declaration("single", "string") + score("3"),
            "<p>Describe your school.</p>"
            '<qti-extended-text-interaction response-identifier="RESPONSE"/>'
            '<qti-rubric-block view="scorer"><qti-content-body><p>Three ideas: 1 point each.</p>'
            "</qti-content-body></qti-rubric-block>",
        ),
        "items/tf.xml": foreign_item(
            "tf",
            declaration("multiple", "directedPair", "s1 T", "s2 F", "s3 F", "s4 T") + score("1"),
            "<p>Cho hàm số y = x.</p>"
            '<qti-match-interaction response-identifier="RESPONSE" shuffle="false" max-associations="4">'
            "<qti-simple-match-set>"
            + "".join(
                f'<qti-simple-associable-choice identifier="s{n}" match-max="1">Ý {n}</qti-simple-associable-choice>'
                for n in range(1, 5)
            )
            + "</qti-simple-match-set><qti-simple-match-set>"
            '<qti-simple-associable-choice identifier="T" match-max="4">Đúng</qti-simple-associable-choice>'
            '<qti-simple-associable-choice identifier="F" match-max="4">Sai</qti-simple-associable-choice>'
            "</qti-simple-match-set></qti-match-interaction>",
            lang="vi",
        ),
        "stimuli/passage.xml": f"""<qti-assessment-stimulus xmlns="{QTI}" identifier="passage" title="P" xml:lang="en">
  <qti-stimulus-body><p>Nam walks to school.</p><p>It takes <em>ten</em> minutes.</p></qti-stimulus-body>
</qti-assessment-stimulus>""",
        "items/read-1.xml": foreign_item(
            "read-1",
            declaration("single", "identifier", "A") + score() + READ_ITEM[0],
            READ_ITEM[1].format(question="How does Nam go to school?", a="On foot", b="By bus"),
        ),
        "items/read-2.xml": foreign_item(
            "read-2",
            declaration("single", "identifier", "B") + score() + READ_ITEM[0],
            READ_ITEM[1].format(question="How long?", a="Five minutes", b="Ten minutes"),
        ),
        "items/hotspot.xml": foreign_item(
            "hotspot",
            declaration("single", "identifier", "H1"),
            '<qti-hotspot-interaction response-identifier="RESPONSE" max-choices="1"/>',
        ),
        "items/two.xml": foreign_item(
            "two",
            declaration("single", "identifier", "A"),
            '<qti-choice-interaction response-identifier="RESPONSE"/>'
            '<p><qti-text-entry-interaction response-identifier="R2"/></p>',
        ),
    }
    return make_zip(files)


QTI_ITEM = foreign_item(
    "alone",
    declaration("single", "identifier", "A") + score(),
    '<qti-choice-interaction response-identifier="RESPONSE" max-choices="1">'
    '<qti-simple-choice identifier="A">yes</qti-simple-choice>'
    '<qti-simple-choice identifier="B">no</qti-simple-choice></qti-choice-interaction>'
    "<p>Is it?</p>",
).encode()
