"""Moodle XML import: every type cbt has becomes a draft with its key and
pictures, the others are reported by name, and hostile or broken files are
one clear problem each."""

from __future__ import annotations

import base64
import time
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from itembank.formats.imported import ImportDefaults, draft
from itembank.formats.moodle import MAX_BYTES, UNSUPPORTED_TYPES, Media, markdown_text, parse_moodle
from itembank.formats.yaml_format import parse_text, serialise_items
from itembank.model import ItemType, Option, ShortFormat, ShortKey
from itembank.render import render_markdown
from itembank.validate import check_item

DEFAULTS = ImportDefaults(subject="toan", topic="ham-so", level=3, grade=10, id_prefix="mdl")
GRAPH = b"\x89PNG\r\n\x1a\n graph"
ARROW = b"\x89PNG\r\n\x1a\n arrow"


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def question(kind: str, name: str, body: str) -> str:
    return f'  <question type="{kind}">\n    <name><text>{name}</text></name>\n{body}  </question>\n'


def text(tag: str, content: str, fmt: str = "html", files: str = "") -> str:
    return f'    <{tag} format="{fmt}"><text><![CDATA[{content}]]></text>{files}</{tag}>\n'


def answer(fraction: str, content: str, feedback: str = "", extra: str = "", fmt: str = "html") -> str:
    back = f'<feedback format="html"><text>{feedback}</text></feedback>' if feedback else ""
    content = f"<text><![CDATA[{content}]]></text>{back}{extra}"
    return f'    <answer fraction="{fraction}" format="{fmt}">{content}</answer>\n'


def quiz(*questions: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<quiz>\n' + "".join(questions) + "</quiz>\n").encode()


FILE = quiz(
    question("category", "", "    <category><text>$course$/top/Đại số 10</text></category>\n"),
    question(
        "multichoice",
        "Đồ thị",
        text(
            "questiontext",
            '<p dir="ltr" style="text-align: left;">Đồ thị của hàm số \\(y = x^2\\) là'
            ' <img src="@@PLUGINFILE@@/do%20thi.png" alt="Đồ thị" width="200" class="img-fluid"></p>',
            files=f'<file name="do thi.png" path="/" encoding="base64">{b64(GRAPH)}</file>',
        )
        + text("generalfeedback", "<p>Vì $$a = 1 &gt; 0$$, parabol quay lên.</p>")
        + "    <defaultgrade>1.0000000</defaultgrade>\n    <single>true</single>\n"
        + "    <shuffleanswers>false</shuffleanswers>\n    <answernumbering>ABCD</answernumbering>\n"
        + answer("100", "<p>Parabol quay lên</p>", feedback="Đúng")
        + answer("0", "Parabol quay xuống")
        + answer(
            "0",
            'Đường thẳng <img src="@@PLUGINFILE@@/arrow.png">',
            extra=f'<file name="arrow.png" path="/" encoding="base64">{b64(ARROW)}</file>',
        ),
    ),
    question(
        "multichoice",
        "Số chẵn",
        text("questiontext", "Chọn các số <b>chẵn</b>:")
        + "    <single>false</single>\n"
        + answer("50", "2")
        + answer("50", "4")
        + answer("-100", "3"),
    ),
    question(
        "truefalse",
        "Đúng sai",
        text("questiontext", "2 > 1\nvà 3 > 2", fmt="moodle_auto_format")
        + answer("100", "true", fmt="moodle_auto_format")
        + answer("0", "false", fmt="moodle_auto_format"),
    ),
    question(
        "shortanswer",
        "Thủ đô",
        text("questiontext", "Thủ đô của Việt Nam là thành phố nào?")
        + "    <usecase>0</usecase>\n"
        + answer("100", "Hà Nội", fmt="moodle_auto_format")
        + answer("100", "Ha Noi", fmt="moodle_auto_format")
        + answer("0", "Huế", fmt="moodle_auto_format"),
    ),
    question(
        "numerical",
        "Căn hai",
        text("questiontext", "<p>Tính \\(\\sqrt{2}\\) (làm tròn)</p>")
        + answer("100", "1.414", extra="<tolerance>0.001</tolerance>")
        + answer("0", "*", feedback="Sai"),
    ),
    question(
        "numerical",
        "Số nguyên",
        text("questiontext", "Số nguyên dương nhỏ nhất?") + answer("100", "1", extra="<tolerance>0</tolerance>"),
    ),
    question(
        "essay",
        "Nghị luận",
        text("questiontext", "<h3>Đề</h3><ul><li>Nêu <i>ý kiến</i></li><li>Chứng minh</li></ul>")
        + text("generalfeedback", "")
        + text("graderinfo", "<p>Chấm theo ý.</p>")
        + "    <responseformat>editor</responseformat>\n",
    ),
    question("description", "Hướng dẫn", text("questiontext", "Đọc kỹ đề.")),
    question(
        "multichoice",
        "Bảng",
        text(
            "questiontext",
            "<table><tr><th>x</th><th>y</th></tr><tr><td>$|x|$</td><td>2 | 3</td></tr></table>"
            "<p>- Giá trị nào đúng?<script>alert(1)</script></p>",
        )
        + answer("100", "# một", feedback="")
        + answer("0", "1. hai"),
    ),
)


def options(*texts: str, keys: str) -> tuple[Option, ...]:
    return tuple(Option("ABCDEFGH"[i], t, "ABCDEFGH"[i] in keys) for i, t in enumerate(texts))


def parse(data: bytes, defaults: ImportDefaults = DEFAULTS):
    return parse_moodle(data, "ngan-hang.xml", defaults)


def line_of(data: bytes, name: str) -> int:
    lines = data.decode().splitlines()
    at = next(i for i, line in enumerate(lines) if f"<name><text>{name}</text></name>" in line)
    return at  # the <question> line is the one before its <name>


def test_every_supported_type_imports_to_the_expected_draft():
    result = parse(FILE)
    assert result.problems == []
    d = DEFAULTS
    assert [source.item for source in result.items] == [
        draft(
            d,
            "1",
            ItemType.SINGLE,
            "Đồ thị của hàm số $y = x^2$ là ![Đồ thị](media/mdl-C1-do-thi.png)",
            options=options(
                "Parabol quay lên", "Parabol quay xuống", "Đường thẳng ![](media/mdl-C1-arrow.png)", keys="A"
            ),
            explanation="Vì $a = 1 > 0$, parabol quay lên.",
            media=("media/mdl-C1-do-thi.png", "media/mdl-C1-arrow.png"),
            shuffle=False,
        ),
        draft(d, "2", ItemType.MULTIPLE, "Chọn các số **chẵn**:", options=options("2", "4", "3", keys="AB")),
        # cbt has no single true/false type: a single with Đúng / Sai, in that order.
        draft(
            d,
            "3",
            ItemType.SINGLE,
            "2 > 1\\\nvà 3 > 2",
            options=options("Đúng", "Sai", keys="A"),
            shuffle=False,
        ),
        draft(
            d,
            "4",
            ItemType.SHORT,
            "Thủ đô của Việt Nam là thành phố nào?",
            answer=ShortKey("Hà Nội", ShortFormat.TEXT),
        ),
        draft(
            d,
            "5",
            ItemType.SHORT,
            "Tính $\\sqrt{2}$ (làm tròn)",
            answer=ShortKey("1.414", ShortFormat.NUMBER, Decimal("0.001")),
        ),
        draft(d, "6", ItemType.SHORT, "Số nguyên dương nhỏ nhất?", answer=ShortKey("1", ShortFormat.NUMBER)),
        draft(d, "7", ItemType.ESSAY, "**Đề**\n\n- Nêu *ý kiến*\n- Chứng minh", explanation="Chấm theo ý."),
        draft(
            d,
            "9",
            ItemType.SINGLE,
            "| x | y |\n| --- | --- |\n| $\\|x\\|$ | 2 \\| 3 |\n\n\\- Giá trị nào đúng?",
            options=options("\\# một", "1\\. hai", keys="A"),
        ),
    ]
    names = ["Đồ thị", "Số chẵn", "Đúng sai", "Thủ đô", "Căn hai", "Số nguyên", "Nghị luận", "Bảng"]
    assert [s.line for s in result.items] == [line_of(FILE, n) for n in names]
    assert result.media == {"media/mdl-C1-do-thi.png": GRAPH, "media/mdl-C1-arrow.png": ARROW}
    for source in result.items:
        assert check_item(source, result.media.__contains__) == []


def test_the_converted_text_renders_as_the_teacher_wrote_it():
    items = {s.item.id: s.item for s in parse(FILE).items}
    table = render_markdown(items["mdl-C9"].stem).html
    assert "<td>2 | 3</td>" in table and '<mo stretchy="false">|</mo><mi>x</mi>' in table
    assert "<p>- Giá trị nào đúng?</p>" in table and "alert" not in table
    assert [render_markdown(o.text, inline=True).html for o in items["mdl-C9"].options] == ["# một", "1. hai"]
    essay = render_markdown(items["mdl-C7"].stem).html
    assert essay == "<p><strong>Đề</strong></p>\n<ul>\n<li>Nêu <em>ý kiến</em></li>\n<li>Chứng minh</li>\n</ul>\n"


def test_what_an_item_leaves_behind_is_noted():
    notes = [(n.code, n.line, n.message) for n in parse(FILE).notes]
    assert notes == [
        (
            "category-ignored",
            3,
            "Moodle category '$course$/top/Đại số 10' ignored: the items take the topic chosen for the import",
        ),
        (
            "feedback-not-imported",
            line_of(FILE, "Đồ thị"),
            "question 1 'Đồ thị': feedback on answers and hints are not imported: cbt items have none",
        ),
        (
            "weights-not-kept",
            line_of(FILE, "Số chẵn"),
            "question 2 'Số chẵn': option weights (A 50%, B 50%, C -100%) are not kept: cbt scores a multiple"
            " question all-or-nothing, or by the exam's partial credit ((right - wrong) / keys);"
            " the keys are the options above 0%",
        ),
        (
            "answer-not-imported",
            line_of(FILE, "Thủ đô"),
            "question 4 'Thủ đô': cbt keeps one answer, 'Hà Nội'; not imported: Ha Noi"
            " (students answering these would score 0)",
        ),
        (
            "feedback-not-imported",
            line_of(FILE, "Căn hai"),
            "question 5 'Căn hai': feedback on answers and hints are not imported: cbt items have none",
        ),
        (
            "description-skipped",
            line_of(FILE, "Hướng dẫn"),
            "question 8 'Hướng dẫn': a description (text without a question) is not an item: skipped",
        ),
        (
            "content-removed",
            line_of(FILE, "Bảng"),
            "question 9 'Bảng': question text: <script> removed: items hold no scripts or styles",
        ),
    ]


def test_imported_items_survive_the_native_format():
    items = [source.item for source in parse(FILE).items]
    assert [s.item for s in parse_text(serialise_items(items), "x.yaml").items] == items


def test_true_and_false_speak_the_files_language():
    body = text("questiontext", "Water boils at 50 °C.") + answer("0", "true") + answer("100", "false")
    data = quiz(question("truefalse", "TF", body))
    (source,) = parse(data, ImportDefaults(subject="vat-li", lang="en")).items
    assert source.item.options == (Option("A", "True", False), Option("B", "False", True))


def test_every_type_cbt_lacks_is_reported_by_name():
    kinds = [*UNSUPPORTED_TYPES, "mystery"]
    data = quiz(*(question(kind, f"Câu {kind}", text("questiontext", "?")) for kind in kinds))
    result = parse(data)
    assert result.items == []
    assert [(p.code, p.line) for p in result.problems] == [("not-imported", line_of(data, f"Câu {k}")) for k in kinds]
    messages = [p.message for p in result.problems]
    assert messages[0] == (
        "question 1 'Câu multianswer' is a Moodle embedded answers (cloze) question (type multianswer),"
        " which cbt does not have: not imported"
    )
    assert messages[1].startswith("question 2 'Câu match' is a Moodle matching question (type match)")
    assert messages[-1].startswith(f"question {len(kinds)} 'Câu mystery' is a Moodle type 'mystery' question")


def problems_of(*questions: str):
    result = parse(quiz(*questions))
    return [(p.code, p.message) for p in result.problems], [s.item.id for s in result.items]


OK = question("multichoice", "OK", text("questiontext", "?") + answer("100", "a") + answer("0", "b"))


def test_no_key_and_two_keys_are_problems_and_the_other_questions_import():
    problems, ids = problems_of(
        question("multichoice", "Không đáp án", text("questiontext", "?") + answer("50", "a") + answer("0", "b")),
        question("multichoice", "Hai đáp án", text("questiontext", "?") + answer("100", "a") + answer("100", "b")),
        question("shortanswer", "SA", text("questiontext", "?") + answer("50", "a")),
        question("truefalse", "TF", text("questiontext", "?") + answer("0", "true") + answer("0", "false")),
        OK,
    )
    assert problems == [
        (
            "no-key",
            "question 1 'Không đáp án': no answer is worth 100%: mark the right answer in Moodle and export again",
        ),
        (
            "single-key-count",
            "question 2 'Hai đáp án': a single item needs exactly one key, found 2 (A, B):"
            " give one option id in answer:, or make it type: multiple",
        ),
        ("no-key", "question 3 'SA': no short answer is worth 100%: mark the right answer in Moodle and export again"),
        ("no-key", "question 4 'TF': neither true nor false is worth 100%"),
    ]
    assert ids == ["mdl-C5"]


def test_a_wildcard_key_and_a_broken_answer_are_problems():
    problems, ids = problems_of(
        question("shortanswer", "W", text("questiontext", "?") + answer("100", "Hà*")),
        question("numerical", "N", text("questiontext", "?") + answer("100", "một")),
        question("multichoice", "F", text("questiontext", "?") + answer("abc", "a") + answer("100", "b")),
    )
    assert [code for code, _ in problems] == ["short-key-wildcard", "moodle-syntax", "moodle-syntax"]
    assert problems[1][1] == "question 2 'N': the answer 'một' is not a number"
    assert problems[2][1] == "question 3 'F': an answer's fraction 'abc' is not a number"
    assert ids == []


def test_a_picture_the_file_does_not_hold_is_a_problem_and_so_is_bad_base64():
    problems, ids = problems_of(
        question("essay", "Ảnh", text("questiontext", '<img src="@@PLUGINFILE@@/missing.png">')),
        question(
            "essay",
            "Hỏng",
            text("questiontext", "x", files='<file name="a.png" path="/" encoding="base64">!!!</file>'),
        ),
        question("essay", "Video", text("questiontext", '<video src="@@PLUGINFILE@@/v.mp4"></video>')),
        OK,
    )
    assert [code for code, _ in problems] == ["media-not-embedded", "bad-media", "unsupported-content"]
    assert problems[0][1].startswith("question 1 'Ảnh': question text: picture '@@PLUGINFILE@@/missing.png' is not in")
    assert ids == ["mdl-C4"]


def test_pictures_of_the_same_name_keep_apart():
    media = Media("mdl-C1")
    result = markdown_text(
        '<img src="@@PLUGINFILE@@/a/x.png"><img src="@@PLUGINFILE@@/b/x.png"><img src="@@PLUGINFILE@@/a/x.png">',
        "html",
        lambda src: ("x.png", src.encode()),
        media,
    )
    assert result.markdown == "![](media/mdl-C1-x.png)![](media/mdl-C1-x-2.png)![](media/mdl-C1-x.png)"
    assert media.stored == {
        "media/mdl-C1-x.png": b"@@PLUGINFILE@@/a/x.png",
        "media/mdl-C1-x-2.png": b"@@PLUGINFILE@@/b/x.png",
    }


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE quiz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<quiz><question type="essay"><name><text>&lol9;</text></name></question></quiz>
"""


def test_an_entity_bomb_is_refused_before_it_expands():
    started = time.perf_counter()
    result = parse(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1
    assert [(p.code, p.line) for p in result.problems] == [("unsafe-xml", 2)]
    assert result.problems[0].message.startswith("the file declares a document type (<!DOCTYPE ...>), which Moodle")
    assert result.items == [] and result.notes == []


def test_an_external_entity_is_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("mật khẩu của trường")
    data = (
        f'<?xml version="1.0"?>\n<!DOCTYPE quiz [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        '<quiz><question type="essay"><name><text>&x;</text></name>'
        '<questiontext format="html"><text>&x;</text></questiontext></question></quiz>'
    ).encode()
    result = parse(data)
    assert [(p.code, p.line) for p in result.problems] == [("unsafe-xml", 2)]
    assert result.items == [] and "mật khẩu" not in repr(result)


def test_a_cut_off_file_is_a_syntax_problem_at_its_end():
    cut = FILE[: len(FILE) // 2]
    result = parse(cut)
    assert [(p.code, p.line) for p in result.problems] == [("xml-syntax", cut.count(b"\n") + 1)]
    message = result.problems[0].message
    assert message.startswith("the XML is broken here (") and message.endswith(
        "(the file may have been cut short or edited)"
    )
    cut = FILE[: FILE.index(b"</question>") + len(b"</question>\n")]
    last = cut.count(b"\n") + 1
    assert [str(p) for p in parse(cut).problems] == [
        f"ngan-hang.xml:{last}: the XML is broken here (no element found): export the questions"
        " from Moodle again (the file may have been cut short or edited)"
    ]
    assert result.items == []


def test_other_files_are_one_clear_problem():
    assert [(p.code, p.line) for p in parse(b"Q {=a ~b}").problems] == [("xml-syntax", 1)]
    result = parse(b'<?xml version="1.0"?>\n<assessment/>')
    assert [(p.code, p.line) for p in result.problems] == [("not-moodle-xml", 2)]
    result = parse(quiz(OK).replace(b"<quiz>\n", b"<quiz>\n<comment>x</comment>\n"))
    assert [(p.code, p.line) for p in result.problems] == [("moodle-syntax", 3)]
    assert [s.item.id for s in result.items] == ["mdl-C1"]


def test_bytes_that_are_not_utf8_are_a_problem_at_their_line():
    data = quiz(OK, question("essay", "X", text("questiontext", "?"))).replace(b"<text>X</text>", b"<text>\xc0X</text>")
    result = parse(data)
    bad_line = next(i for i, line in enumerate(data.split(b"\n"), start=1) if b"\xc0" in line)
    assert [(p.code, p.line) for p in result.problems] == [("encoding", bad_line)]
    assert "export the file from Moodle again, or save it as UTF-8" in result.problems[0].message
    assert result.items == []
    result = parse(quiz(OK).replace(b"UTF-8", b"klingon"))
    assert [(p.code, p.line, p.message) for p in result.problems] == [
        ("encoding", 1, "unknown encoding: klingon: export the file from Moodle again, or save it as UTF-8")
    ]


def test_an_encoding_the_file_declares_is_honoured():
    data = quiz(question("essay", "Cafe", text("questiontext", "Un café?"))).replace(b"UTF-8", b"ISO-8859-1")
    result = parse(data.replace("é".encode(), b"\xe9"))
    assert result.problems == [] and [s.item.stem for s in result.items] == ["Un café?"]


def test_a_file_over_the_limit_is_refused_before_it_is_read():
    result = parse(b" " * (MAX_BYTES + 1))
    assert [(p.code, p.line) for p in result.problems] == [("too_large", None)]
    assert result.problems[0].message == "the file is 64.1 MB, more than the 64 MB allowed: split it into several files"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<quiz>",
                "</quiz>",
                '<question type="multichoice">',
                '<question type="truefalse">',
                '<question type="numerical">',
                '<question type="shortanswer">',
                "</question>",
                "<questiontext format='html'><text>",
                "</text></questiontext>",
                '<answer fraction="100"><text>',
                '<answer fraction="-5"><text>',
                "</text></answer>",
                "a",
                "true",
                "1.5",
                "*",
                "&lt;b&gt;",
                "&amp;",
                "<single>false</single>",
                "<!DOCTYPE x>",
                "\xff",
                "<![CDATA[<img src=x>]]>",
            ]
        ),
        max_size=40,
    )
)
def test_no_input_escapes_as_an_exception_and_every_item_passes_the_checks(parts):
    result = parse("".join(parts).encode("utf-8", "surrogateescape"))
    for source in result.items:
        assert check_item(source, result.media.__contains__) == []
