"""Word files written the Vietnamese way, built here with python-docx as
Word writes them, import to exactly the expected items; bad files give
their problem, naming the paragraph and the question."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import docx
import pytest
from docx.oxml import parse_xml
from docx.shared import RGBColor

from itembank.formats.docx import WARNINGS, DocxResult, parse_docx
from itembank.formats.imported import ImportDefaults, draft
from itembank.formats.wordml import MAX_BYTES
from itembank.model import ItemType, Option, ShortKey, Statement
from itembank.render import render_item

DEFAULTS = ImportDefaults(subject="toan", grade=12, id_prefix="word-t12")
M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


# ---------------------------------------------------------------- building documents


def png(red: int = 0) -> bytes:
    """A 1x1 PNG (python-docx reads its header for the size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, 0, 0]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def runs(paragraph, *parts):
    """Add runs: a string, or (text, {"bold": True, "underline": True, "red": "FF0000", "italic": True ...})."""
    for part in parts:
        text, how = (part, {}) if isinstance(part, str) else part
        run = paragraph.add_run(text)
        run.bold = how.get("bold")
        run.italic = how.get("italic")
        run.underline = how.get("underline")
        if "red" in how:
            run.font.color.rgb = RGBColor.from_string(how["red"])
        if how.get("sup"):
            run.font.superscript = True
    return paragraph


def para(doc, *parts):
    return runs(doc.add_paragraph(), *parts)


def mr(text: str, color: str | None = None) -> str:
    """An equation's run, as Word writes it (Cambria Math)."""
    rpr = '<w:rFonts w:ascii="Cambria Math" w:hAnsi="Cambria Math"/>'
    if color:
        rpr += f'<w:color w:val="{color}"/>'
    return f"<m:r><w:rPr>{rpr}</w:rPr><m:t>{text}</m:t></m:r>"


def equation(paragraph, inner: str, *, display: bool = False):
    """Insert OMML into the paragraph: python-docx has no API for equations."""
    math = f'<m:oMath xmlns:m="{M}" xmlns:w="{W}">{inner}</m:oMath>'
    if display:
        math = f'<m:oMathPara xmlns:m="{M}" xmlns:w="{W}">{math}</m:oMathPara>'
    paragraph._p.append(parse_xml(math))
    return paragraph


def fraction(num: str, den: str) -> str:
    return f"<m:f><m:num>{mr(num)}</m:num><m:den>{mr(den)}</m:den></m:f>"


def power(base: str, exponent: str) -> str:
    return f"<m:sSup><m:e>{mr(base)}</m:e><m:sup>{mr(exponent)}</m:sup></m:sSup>"


def picture(paragraph, data: bytes):
    paragraph.add_run().add_picture(io.BytesIO(data))
    return paragraph


def mathtype(doc, paragraph, preview: bytes):
    """A MathType equation as Word stores it: an OLE object whose preview is a picture."""
    rid, _ = doc.part.get_or_add_image(io.BytesIO(preview))
    paragraph._p.append(
        parse_xml(
            f'<w:r xmlns:w="{W}" xmlns:v="urn:schemas-microsoft-com:vml"'
            ' xmlns:o="urn:schemas-microsoft-com:office:office"'
            ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<w:object w:dxaOrig="1440" w:dyaOrig="620">'
            '<v:shape id="_x0000_i1025" type="#_x0000_t75" style="width:72pt;height:31pt" o:ole="">'
            f'<v:imagedata r:id="{rid}" o:title=""/></v:shape>'
            '<o:OLEObject Type="Embed" ProgID="Equation.DSMT4" ShapeID="_x0000_i1025" DrawAspect="Content"'
            ' ObjectID="_1700000001" r:id="rId999"/></w:object></w:r>'
        )
    )
    return paragraph


def table(doc, rows):
    """A table of cells; a cell is a string, or a list of run parts for one paragraph."""
    made = doc.add_table(rows=len(rows), cols=max(len(r) for r in rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            cell = made.cell(r, c)
            parts = [value] if isinstance(value, str) else value
            runs(cell.paragraphs[0], *parts)
    return made


def save(doc) -> bytes:
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()


def parse(doc_or_bytes, defaults: ImportDefaults = DEFAULTS) -> DocxResult:
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else save(doc_or_bytes)
    return parse_docx(data, "de.docx", defaults)


def options_line(doc, texts, keys=(), *, mark="underline", bold_letters=False):
    """Options on one line separated by tabs; the letters of `keys` marked."""
    p = doc.add_paragraph()
    for i, (letter, text) in enumerate(zip("ABCDEF", texts, strict=False)):
        how = {"bold": True} if bold_letters else {}
        if letter in keys:
            how[mark] = "FF0000" if mark == "red" else True
        runs(p, (f"{letter}.", how), f" {text}" + ("\t" if i + 1 < len(texts) else ""))
    return p


def problems(result: DocxResult) -> list[tuple[int | None, str]]:
    return [(p.line, p.code) for p in result.problems]


def item(number, kind, stem, **fields):
    return draft(DEFAULTS, number, kind, stem, **fields)


def options(texts, keys):
    return tuple(Option(letter, text, letter in keys) for letter, text in zip("ABCDEF", texts, strict=False))


# ---------------------------------------------------------------- a whole exam


@pytest.fixture(scope="module")
def exam() -> tuple[DocxResult, bytes, bytes]:
    figure, preview = png(1), png(2)
    d = docx.Document()
    para(d, ("SỞ GIÁO DỤC VÀ ĐÀO TẠO", {"bold": True}))  # 1
    para(d, "ĐỀ THI THỬ TỐT NGHIỆP THPT 2025 — Thời gian: 90 phút")  # 2
    para(d, ("PHẦN I. Câu trắc nghiệm nhiều phương án lựa chọn.", {"bold": True}))  # 3
    # Câu 1: the letters bold (a style), the key's letter underlined; options on one line.
    para(d, ("Câu 1.", {"bold": True}), " Phát biểu nào sau đây ", ("KHÔNG", {"bold": True}), " đúng?")  # 4
    options_line(d, ["2*3*4 = 24", "1 < 2", "a<b và c>d", "Hai"], keys="C", bold_letters=True)  # 5
    # Câu 2: equations; the whole option C in Word's Dark Red.
    equation(para(d, ("Câu 2:", {"bold": True}), " Đạo hàm của hàm số "), "<m:r><m:t>y=</m:t></m:r>" + power("x", "3"))
    for letter, exp in zip("ABCD", ["2", "3", "4", "5"], strict=True):  # 7-10
        p = para(d, f"{letter}. ")
        if letter == "C":
            equation(
                p,
                mr("y'=3", "C00000") + f"<m:sSup><m:e>{mr('x', 'C00000')}</m:e><m:sup>{mr('2', 'C00000')}"
                "</m:sup></m:sSup>",
            )
        else:
            equation(p, mr("y'=") + power("x", exp))
    # Câu 3: a table in the stem, options in a 2x2 table, the key's letter bold.
    para(d, "Câu 3) Cho bảng số liệu:")  # 11
    table(d, [["x", "1", "2"], ["y", "3", "5"]])  # 12-17
    para(d, "Giá trị của y tại x = 2 là")  # 18
    table(d, [[[("A.", {"bold": True}), " 5"], "B. 3"], ["C. 1", "D. 2"]])  # 19-22
    # Câu 4: a picture in the stem; the key in the answer table.
    para(d, "Câu 4 Quan sát hình vẽ.")  # 23
    picture(d.add_paragraph(), figure)  # 24
    para(d, "Hình trên là đồ thị của hàm số nào?")  # 25
    options_line(d, ["Bậc nhất", "Bậc hai", "Bậc ba", "Mũ"])  # 26
    # Câu 5: several right, said in the stem: a multiple item.
    para(d, "Câu 5. Những số nào là số nguyên tố (chọn nhiều đáp án)?")  # 27
    options_line(d, ["2", "4", "5", "9"], keys="AC")  # 28
    # Câu 6: the key in the answer table's row layout; a MathType equation in the stem.
    mathtype(d, para(d, "Câu 6. Giá trị của "), preview)  # 29
    options_line(d, ["0", "1", "2", "3"])  # 30
    # Câu 7: "Đáp án: D" and a worked solution.
    para(d, "Câu 7. Số nào chia hết cho 3?")  # 31
    options_line(d, ["10", "11", "13", "12"])  # 32
    para(d, "Đáp án: D")  # 33
    para(d, ("Hướng dẫn giải:", {"bold": True}))  # 34
    equation(para(d, "Ta có "), mr("12=3·4"))  # 35
    para(d, ("PHẦN II. Câu trắc nghiệm đúng sai.", {"bold": True}))  # 36
    para(d, "Câu 1. Cho hàm số f(x) = x", ("2", {"sup": True}), ".")  # 37
    for letter, text, true in zip(
        "abcd", ["f(0) = 0", "f(1) = 2", "f là hàm chẵn", "f(−1) = −1"], [1, 0, 1, 0], strict=True
    ):
        para(d, (f"{letter})", {"underline": bool(true)}), f" {text}")  # 38-41
    para(d, "Câu 2. Xét các mệnh đề sau.")  # 42
    for letter, text in zip("abcd", ["2 > 1", "3 < 1", "1 = 2", "0 = 0"], strict=True):
        para(d, f"{letter}) {text}")  # 43-46
    para(d, "Câu 3. Đánh dấu X vào ô thích hợp.")  # 47
    table(
        d,
        [
            ["Mệnh đề", "Đúng", "Sai"],
            ["a) Hà Nội ở miền Bắc", "X", ""],
            ["b) Huế ở miền Nam", "", "X"],
            ["c) 1 + 1 = 2", "X", ""],
            ["d) 2 + 2 = 5", "", "X"],
        ],
    )
    para(d, ("PHẦN III. Câu trắc nghiệm trả lời ngắn.", {"bold": True}))  # 63
    equation(para(d, "Câu 1. Tính "), fraction("-3", "2"))  # 64
    para(d, "Đáp án: -1,5")  # 65
    para(d, "Câu 2. Tính 1/4.")  # 66
    para(d, ("PHẦN IV. Tự luận", {"bold": True}))  # 67
    para(d, "Bài 1. Chứng minh rằng tổng ba góc của một tam giác bằng 180°.")  # 68
    para(d, "Lời giải")  # 69
    para(d, "Kẻ đường thẳng song song với một cạnh.")  # 70
    para(d, ("BẢNG ĐÁP ÁN", {"bold": True}))  # 71
    para(d, "PHẦN I")  # 72
    table(d, [["Câu", "4", "6"], ["Đáp án", "B", "A"]])  # 73-78
    para(d, "Phần II")  # 79
    para(d, "Câu 2: ĐSSĐ")  # 80
    para(d, "PHẦN III")  # 81
    para(d, "Câu 2: 0,25")  # 82
    return parse(d), figure, preview


def test_a_whole_exam_imports_to_exactly_the_expected_items(exam):
    result, figure, preview = exam
    assert [p for p in result.problems if p.code not in WARNINGS] == []
    expected = [
        item(
            "I.1",
            ItemType.SINGLE,
            "Phát biểu nào sau đây **KHÔNG** đúng?",
            options=options(["2\\*3\\*4 = 24", "1 < 2", "a\\<b và c>d", "Hai"], "C"),
        ),
        item(
            "I.2",
            ItemType.SINGLE,
            "Đạo hàm của hàm số $y = x^{3}$",
            options=options(["$y' = x^{2}$", "$y' = x^{3}$", "$y' = 3x^{2}$", "$y' = x^{5}$"], "C"),
        ),
        item(
            "I.3",
            ItemType.SINGLE,
            "Cho bảng số liệu:\n\n| x | 1 | 2 |\n| --- | --- | --- |\n| y | 3 | 5 |\n\nGiá trị của y tại x = 2 là",
            options=options(["5", "3", "1", "2"], "A"),
        ),
        item(
            "I.4",
            ItemType.SINGLE,
            "Quan sát hình vẽ.\n\n![](media/word-t12-CI-4-1.png)\n\nHình trên là đồ thị của hàm số nào?",
            options=options(["Bậc nhất", "Bậc hai", "Bậc ba", "Mũ"], "B"),
            media=("media/word-t12-CI-4-1.png",),
        ),
        item(
            "I.5",
            ItemType.MULTIPLE,
            "Những số nào là số nguyên tố (chọn nhiều đáp án)?",
            options=options(["2", "4", "5", "9"], "AC"),
        ),
        item(
            "I.6",
            ItemType.SINGLE,
            "Giá trị của ![](media/word-t12-CI-6-1.png)",
            options=options(["0", "1", "2", "3"], "A"),
            media=("media/word-t12-CI-6-1.png",),
        ),
        item(
            "I.7",
            ItemType.SINGLE,
            "Số nào chia hết cho 3?",
            options=options(["10", "11", "13", "12"], "D"),
            explanation="Ta có $12 = 3 \\cdot 4$",
        ),
        item(
            "II.1",
            ItemType.TRUEFALSE4,
            "Cho hàm số f(x) = x<sup>2</sup>.",
            statements=(
                Statement("a", "f(0) = 0", True),
                Statement("b", "f(1) = 2", False),
                Statement("c", "f là hàm chẵn", True),
                Statement("d", "f(−1) = −1", False),
            ),
        ),
        item(
            "II.2",
            ItemType.TRUEFALSE4,
            "Xét các mệnh đề sau.",
            statements=(
                Statement("a", "2 > 1", True),
                Statement("b", "3 < 1", False),
                Statement("c", "1 = 2", False),
                Statement("d", "0 = 0", True),
            ),
        ),
        item(
            "II.3",
            ItemType.TRUEFALSE4,
            "Đánh dấu X vào ô thích hợp.",
            statements=(
                Statement("a", "Hà Nội ở miền Bắc", True),
                Statement("b", "Huế ở miền Nam", False),
                Statement("c", "1 + 1 = 2", True),
                Statement("d", "2 + 2 = 5", False),
            ),
        ),
        item("III.1", ItemType.SHORT, "Tính $\\frac{- 3}{2}$", answer=ShortKey("-1,5")),
        item("III.2", ItemType.SHORT, "Tính 1/4.", answer=ShortKey("0,25")),
        item(
            "IV.1",
            ItemType.ESSAY,
            "Chứng minh rằng tổng ba góc của một tam giác bằng 180°.",
            explanation="Kẻ đường thẳng song song với một cạnh.",
        ),
    ]
    got = [source.item for source in result.items]
    assert [i.id for i in got] == [i.id for i in expected]
    for got_item, want in zip(got, expected, strict=True):
        assert got_item == want, want.id
    assert [s.line for s in result.items] == [4, 6, 11, 23, 27, 29, 31, 37, 42, 47, 64, 66, 68]
    assert result.media == {"media/word-t12-CI-4-1.png": figure, "media/word-t12-CI-6-1.png": preview}


def test_the_stem_keeps_its_emphasis_and_every_item_renders(exam):
    result, _, _ = exam
    first = result.items[0].item
    assert first.stem == "Phát biểu nào sau đây **KHÔNG** đúng?"
    for source in result.items:
        rendered = render_item(source.item)
        assert all(not part.math_errors and not part.removed for _, part in rendered.all_parts()), source.item.id
    assert "<strong>KHÔNG</strong>" in render_item(first).stem.html
    assert "<math" in render_item(result.items[1].item).options[2][1].html


def test_a_mathtype_equation_is_kept_as_its_picture_with_a_warning(exam):
    result, _, _ = exam
    [warning] = result.warnings
    assert (warning.line, warning.code) == (29, "mathtype-image")
    assert str(warning).startswith("de.docx:29: Câu 6 (PHẦN I): a MathType equation is kept as its picture")
    assert any(s.item.id == "word-t12-CI-6" for s in result.items)


# ---------------------------------------------------------------- conventions, one by one


def one_question(options_texts=("1", "2", "3", "4"), **how):
    d = docx.Document()
    para(d, "Câu 1. Chọn một số.")
    options_line(d, options_texts, **how)
    return d


@pytest.mark.parametrize("mark", ["underline", "bold", "red"])
def test_the_key_is_the_marked_letter(mark):
    [source] = parse(one_question(keys="B", mark=mark)).items
    assert source.item.correct_option_ids == ("B",)
    assert source.item.id == "word-t12-C1"


@pytest.mark.parametrize(
    ("color", "key"),
    [("FF0000", True), ("C00000", True), ("E53935", True), ("FF8000", False), ("800080", False), ("0000FF", False)],
)
def test_near_reds_mark_the_key_and_other_colours_do_not(color, key):
    d = docx.Document()
    para(d, "Câu 1. Chọn.")
    for letter in "ABCD":
        para(d, f"{letter}. ", (f"số {letter}", {"red": color} if letter == "D" else {}))
    result = parse(d)
    if key:
        assert result.items[0].item.correct_option_ids == ("D",)
    else:
        assert problems(result) == [(1, "no-key")]
        assert str(result.problems[0]) == (
            "de.docx:1: Câu 1: no key found: underline, bold or colour red the letter of the right option,"
            " or give it in an answer table at the end (1-A)"
        )


def test_options_separated_by_two_spaces_and_other_label_styles():
    d = docx.Document()
    para(d, "Question 3: Pick one.")
    para(d, "A) one  ", ("B)", {"underline": True}), " two")
    para(d, "C: three")
    para(d, "D: four")
    [source] = parse(d).items
    assert source.item.options == options(["one", "two", "three", "four"], "B")
    assert source.item.id == "word-t12-C3"


def test_an_option_continues_on_the_next_paragraph_with_its_picture():
    d = docx.Document()
    para(d, "Câu 1. Hình nào là hình vuông?")
    para(d, ("A.", {"underline": True}))
    picture(d.add_paragraph(), png(5))
    para(d, "B. Hình tròn")
    [source] = parse(d).items
    assert source.item.options[0] == Option("A", "![](media/word-t12-C1-1.png)", True)
    assert source.item.media == ("media/word-t12-C1-1.png",)


@pytest.mark.parametrize(
    "written",
    ["1-B 2-A", "1.B 2.A", "1B 2A", "Câu 1: B, Câu 2: A", "1. B; 2. A", "Câu 1. B   Câu 2. A"],
)
def test_answer_table_entries_in_text(written):
    d = docx.Document()
    for n in (1, 2):
        para(d, f"Câu {n}. Chọn.")
        options_line(d, ["x", "y", "z", "t"])
    para(d, "ĐÁP ÁN")
    para(d, written)
    result = parse(d)
    assert problems(result) == []
    assert [s.item.correct_option_ids for s in result.items] == [("B",), ("A",)]


@pytest.mark.parametrize(
    "rows",
    [
        [["1-B", "2-A"]],
        [["Câu", "Đáp án"], ["1", "B"], ["2", "A"]],
        [["1", "B", "2", "A"]],
        [["1", "2"], ["B", "A"]],
    ],
)
def test_answer_tables_in_their_usual_layouts(rows):
    d = docx.Document()
    for n in (1, 2):
        para(d, f"Câu {n}. Chọn.")
        options_line(d, ["x", "y", "z", "t"])
    para(d, "Bảng đáp án")
    table(d, rows)
    result = parse(d)
    assert problems(result) == []
    assert [s.item.correct_option_ids for s in result.items] == [("B",), ("A",)]


def test_true_false_statements_marked_red_and_in_the_answer_table_words():
    d = docx.Document()
    para(d, "Câu 1. Xét.")
    for letter in "abcd":
        para(d, (f"{letter}) mệnh đề {letter}", {"red": "FF0000"} if letter in "bd" else {}))
    para(d, "Câu 2. Xét.")
    for letter in "abcd":
        para(d, f"{letter}) mệnh đề {letter}")
    para(d, "ĐÁP ÁN")
    para(d, "Câu 2: a) Đúng b) Sai c) Sai d) Đúng")
    result = parse(d)
    assert problems(result) == []
    assert [tuple(s.answer for s in source.item.statements) for source in result.items] == [
        (False, True, False, True),
        (True, False, False, True),
    ]


def test_worked_solutions_after_the_answer_table_become_explanations():
    d = docx.Document()
    para(d, "Câu 1. Tính 2 + 2.")
    options_line(d, ["3", "4", "5", "6"])
    para(d, "BẢNG ĐÁP ÁN")
    para(d, "1-B")
    para(d, "HƯỚNG DẪN GIẢI CHI TIẾT")
    para(d, "Câu 1. Lời giải: 2 + 2 = 4.")
    para(d, "Vậy chọn B.")
    [source] = parse(d).items
    assert source.item.explanation == "2 + 2 = 4.\n\nVậy chọn B."


def test_text_is_escaped_so_markdown_never_reinterprets_it():
    d = docx.Document()
    para(d, "Câu 1. # Giá $5 và $6, [x](y), <script>alert(1)</script>, &amp; 1. không là danh sách")
    para(d, "1. Dòng này không là danh sách")
    options_line(d, ["_a_", "`b`", "~~c~~", "|d|"], keys="A")
    [source] = parse(d).items
    assert source.item.stem.startswith("\\# Giá \\$5 và \\$6, \\[x\\](y), \\<script>")
    assert "\n\n1\\. Dòng" in source.item.stem
    rendered = render_item(source.item)
    assert "Giá $5 và $6, [x](y), &lt;script&gt;alert(1)&lt;/script&gt;, &amp;amp; 1." in rendered.stem.html
    assert [o.text for o in source.item.options] == ["\\_a\\_", "\\`b\\`", "\\~\\~c\\~\\~", "\\|d\\|"]


def test_display_equations_and_superscripts():
    d = docx.Document()
    para(d, "Câu 1. Diện tích hình tròn bán kính r là")
    equation(d.add_paragraph(), mr("S=π") + power("r", "2"), display=True)
    para(d, "A. 2πr\t", ("B.", {"bold": True}), " πr", ("2", {"sup": True}))
    [source] = parse(d).items
    assert source.item.stem == "Diện tích hình tròn bán kính r là\n\n$$S = \\pi r^{2}$$"
    assert source.item.options[1] == Option("B", "πr<sup>2</sup>", True)


# ---------------------------------------------------------------- bad input


def test_two_keys_on_a_single_choice_question():
    result = parse(one_question(keys="BC"))
    assert problems(result) == [(1, "two-keys")]
    assert "options B and C are both marked as the key (underlined B/C)" in str(result.problems[0])
    assert result.items == []


def test_every_letter_bold_is_formatting_not_four_keys():
    result = parse(one_question(bold_letters=True))
    assert problems(result) == [(1, "no-key")]


def test_options_out_of_order():
    d = docx.Document()
    para(d, "Câu 1. Chọn.")
    para(d, ("A.", {"underline": True}), " x")
    para(d, "B. y")
    para(d, "D. z")
    result = parse(d)
    assert problems(result) == [(4, "options-order")]
    assert str(result.problems[0]) == (
        "de.docx:4: Câu 1: the options are A, B, D: letter them A, B, C in order, each once"
        " (a missing or mistyped letter?)"
    )


def test_statements_out_of_order_and_mixed_questions():
    d = docx.Document()
    para(d, "Câu 1. Xét.")
    for letter in "abd":
        para(d, (f"{letter})", {"underline": True}), " x")
    para(d, "Câu 2. Xét.")
    para(d, "A. x")
    para(d, "a) y")
    assert problems(parse(d)) == [(4, "statements-order"), (5, "mixed-question")]


def test_answer_table_naming_a_question_that_does_not_exist():
    d = docx.Document()
    para(d, "Câu 1. Chọn.")
    options_line(d, ["x", "y", "z", "t"])
    para(d, "ĐÁP ÁN")
    para(d, "1-A 9-B")
    result = parse(d)
    assert problems(result) == [(4, "answer-unknown-question")]
    assert str(result.problems[0]) == (
        "de.docx:4: the answer table names question 9, which the file does not have: correct the number"
    )
    assert [s.item.correct_option_ids for s in result.items] == [("A",)]


def test_an_unreadable_answer_table_entry_is_reported():
    d = docx.Document()
    para(d, "Câu 1. Chọn.")
    options_line(d, ["x", "y", "z", "t"])
    para(d, "Bảng đáp án")
    para(d, "1-A  hai-B")
    assert problems(parse(d)) == [(4, "answer-table-syntax")]


def test_the_marked_key_and_the_answer_table_must_agree():
    d = one_question(keys="A")
    para(d, "ĐÁP ÁN")
    para(d, "1-C")
    result = parse(d)
    assert problems(result) == [(4, "key-conflict")]
    assert "the answer table gives C but A is marked in the text" in str(result.problems[0])


def test_a_question_without_options_or_answer_and_a_short_answer_outside_the_syntax():
    d = docx.Document()
    para(d, "Câu 1. Tính 2 + 2.")
    para(d, "Câu 2. Tính 1/3.")
    para(d, "Đáp án: 0,3333")
    result = parse(d)
    assert problems(result) == [(1, "no-key"), (2, "short-key-syntax")]
    assert str(result.problems[1]).startswith("de.docx:2: Câu 2: answer key '0,3333' does not fit Part III")


def test_a_question_number_written_twice():
    d = one_question(keys="A")
    para(d, "Câu 1. Lại câu 1.")
    options_line(d, ["x", "y", "z", "t"], keys="B")
    result = parse(d)
    assert ("duplicate-question" in {p.code for p in result.problems}) and len(result.items) == 1


def test_a_file_without_questions():
    d = docx.Document()
    para(d, "Chỉ có lời dặn.")
    assert problems(parse(d)) == [(None, "no-questions")]


@pytest.mark.parametrize(
    ("data", "code", "says"),
    [
        (b"hello, not a document", "not-docx", "not a Word .docx file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "not-docx", "old Word .doc"),
        (b"PK\x03\x04 broken zip", "not-docx", "not a readable"),
    ],
)
def test_corrupt_files(data, code, says):
    result = parse(data)
    assert problems(result) == [(None, code)] and says in result.problems[0].message


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def members_of(doc) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(save(doc))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_zip_without_a_word_document():
    result = parse(zipped({"hello.txt": b"hi"}))
    assert problems(result) == [(None, "not-docx")]
    assert "holds no word/document.xml" in result.problems[0].message


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    members = members_of(one_question(keys="A"))
    members["word/media/bomb.png"] = b"\0" * (20 * 1024 * 1024)
    result = parse(zipped(members))
    assert problems(result) == [(None, "unsafe-archive")]
    assert "compressed suspiciously well" in result.problems[0].message


def test_a_huge_file_is_refused_unread():
    result = parse(b"PK" + b"\0" * MAX_BYTES)
    assert problems(result) == [(None, "too_large")]
    assert "more than the 64 MB allowed" in result.problems[0].message


def test_an_xml_bomb_in_the_document_is_refused():
    members = members_of(one_question(keys="A"))
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    xml = members["word/document.xml"].decode()
    head, _, body = xml.partition("?>")
    members["word/document.xml"] = (
        f'{head}?><!DOCTYPE w:document [<!ENTITY l0 "lol">{lol}]>{body.replace("Chọn", "&l9;", 1)}'
    ).encode()
    result = parse(zipped(members))
    assert problems(result) == [(None, "unsafe-xml")]
    assert "word/document.xml declares a document type or entities" in result.problems[0].message


def test_a_picture_linked_from_outside_the_file():
    d = docx.Document()
    para(d, "Câu 1. Hình:")
    p = picture(d.add_paragraph(), png())
    blip = next(p._p.iter("{http://schemas.openxmlformats.org/drawingml/2006/main}blip"))
    rid = d.part.relate_to("http://example.invalid/h.png", docx.opc.constants.RELATIONSHIP_TYPE.IMAGE, True)
    r = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
    del blip.attrib[r + "embed"]
    blip.set(r + "link", rid)
    options_line(d, ["x", "y"], keys="A")
    result = parse(d)
    assert problems(result) == [(2, "picture-missing")] and result.media == {}


def test_the_whole_option_marked_is_the_key_and_bold_words_in_an_option_are_not():
    d = docx.Document()
    para(d, "Câu 1. Chọn.")
    para(d, "A. một ", ("hai", {"bold": True}))
    para(d, "B. ", ("ba bốn", {"underline": True}))
    para(d, "C. năm")
    [source] = parse(d).items
    assert source.item.correct_option_ids == ("B",)
    assert [o.text for o in source.item.options] == ["một hai", "ba bốn", "năm"]


def test_english_parts_restart_the_numbering_and_problems_name_the_part():
    d = docx.Document()
    para(d, "Part 1")
    para(d, "Question 1. Pick.")
    options_line(d, ["x", "y"], keys="A")
    para(d, "Part 2:")
    para(d, "Question 1. Pick again; Phần 2 của bài is not a heading.")
    para(d, "Phần 2 của bài vẫn là đề.")
    options_line(d, ["x", "y"])
    result = parse(d)
    assert [s.item.id for s in result.items] == ["word-t12-C1-1"]
    assert [str(p) for p in result.problems] == [
        "de.docx:5: Question 1 (Part 2): no key found: underline, bold or colour red the letter of the right"
        " option, or give it in an answer table at the end (1-A)"
    ]


def test_the_answer_table_must_say_which_part_when_numbers_repeat():
    d = docx.Document()
    for part in ("I", "II"):
        para(d, f"PHẦN {part}")
        para(d, "Câu 1. Chọn.")
        options_line(d, ["x", "y"])
    para(d, "ĐÁP ÁN")
    para(d, "1-A")
    result = parse(d)
    assert problems(result) == [(2, "no-key"), (5, "no-key"), (8, "answer-ambiguous")]
    assert "Câu 1 (PHẦN I), Câu 1 (PHẦN II)" in str(result.problems[2])


def test_a_damaged_file_is_a_problem_never_an_exception():
    data = save(one_question(keys="A"))
    for end in range(0, len(data), len(data) // 40):
        result = parse(data[:end])
        assert result.items == [] and {p.code for p in result.problems} <= {"not-docx", "unsafe-archive"}, end
    members = members_of(one_question(keys="A"))
    members["word/document.xml"] = members["word/document.xml"].replace(b"<w:body>", b"<w:bodx>", 1)
    members["word/document.xml"] = members["word/document.xml"].replace(b"</w:body>", b"</w:bodx>", 1)
    result = parse(zipped(members))
    assert problems(result) == [(None, "not-docx")] and "holds no document body" in result.problems[0].message


def test_a_stem_line_starting_with_dap_an_is_not_the_answer_table():
    d = docx.Document()
    para(d, "Câu 1.")
    para(d, "Đáp án nào sau đây đúng?")
    options_line(d, ["x", "y"], keys="B")
    [source] = parse(d).items
    assert source.item.stem == "Đáp án nào sau đây đúng?"
