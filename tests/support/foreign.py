"""Files of other tools' questions, as those tools write them: a GIFT file, an
Aiken file with a bad question, a Moodle XML export with an embedded picture
and a type cbt lacks, and an XML bomb; and what each must import to."""

from __future__ import annotations

import base64

from itembank.errors import Problem
from support.authoring import PNG

# Moodle's GIFT: a title, answers in braces, weights, {T}, a number with its margin.
GIFT = """\
// Kiểm tra 15 phút, chương Hàm số
$CATEGORY: $course$/top/Hàm số

::Thủ đô:: Thủ đô của Việt Nam là {=Hà Nội ~Huế ~Đà Nẵng}

::Chẵn:: Chọn các số chẵn {~%50%2 ~%50%4 ~%-100%3}

Mặt trời mọc ở hướng đông. {T}

::Tính:: Nghiệm dương của $x^2 = 2.25$ là {#1.5:0.1}
"""
# id -> (type, key as the preview's data-key says it: option letters, or the short answer)
GIFT_KEYS = {"C1": ("single", "A"), "C2": ("multiple", "AB"), "C3": ("single", "A"), "C4": ("short", "1.5")}

# Aiken as Moodle reads it; question 2 letters its options A, B, D.
AIKEN = """\
Thủ đô của Việt Nam là
A. Hà Nội
B. Huế
C. Đà Nẵng
ANSWER: A

Số nguyên tố nhỏ nhất là
A. 1
B. 2
D. 3
ANSWER: B

$2 + 2$ bằng
A) 3
B) 4
ANSWER: B
"""
AIKEN_KEYS = {"C1": ("single", "A"), "C3": ("single", "B")}
AIKEN_BAD_LINE = 10  # the option D of question 2


def _question(kind: str, name: str, body: str) -> str:
    return f'  <question type="{kind}">\n    <name><text>{name}</text></name>\n{body}  </question>\n'


def _answer(fraction: str, text: str) -> str:
    return f'    <answer fraction="{fraction}" format="html"><text><![CDATA[{text}]]></text></answer>\n'


def moodle_export(picture: bytes = PNG) -> bytes:
    """A Moodle XML export: a category, a multichoice with `picture` embedded as
    @@PLUGINFILE@@, a true/false, a matching question (Moodle's type match: not imported)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<quiz>\n'
        + _question("category", "", "    <category><text>$course$/top/Hàm số</text></category>\n")
        + _question(
            "multichoice",
            "Đồ thị",
            '    <questiontext format="html"><text><![CDATA[<p>Đồ thị của hàm số \\(y = x^2\\) là'
            ' <img src="@@PLUGINFILE@@/do%20thi.png" alt="Đồ thị"></p>]]></text>'
            f'<file name="do thi.png" path="/" encoding="base64">{base64.b64encode(picture).decode()}</file>'
            "</questiontext>\n"
            "    <single>true</single>\n    <shuffleanswers>true</shuffleanswers>\n"
            + _answer("0", "Đường thẳng")
            + _answer("100", "Parabol")
            + _answer("0", "Đường tròn"),
        )
        + _question(
            "truefalse",
            "Đúng sai",
            '    <questiontext format="html"><text>2 &gt; 1</text></questiontext>\n'
            + _answer("0", "true")
            + _answer("100", "false"),
        )
        + _question(
            "match",
            "Ghép đôi",
            '    <questiontext format="html"><text>Ghép thủ đô với nước</text></questiontext>\n',
        )
        + "</quiz>\n"
    ).encode()


MOODLE = moodle_export()
MOODLE_KEYS = {"C1": ("single", "B"), "C2": ("single", "B")}
MOODLE_PICTURE = "media/{prefix}-C1-do-thi.png"

# Billion laughs: refused at its DOCTYPE, before anything is expanded.
_ENTITIES = "".join(f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
XML_BOMB = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol0 "lol">\n' + _ENTITIES + "]>\n<quiz>&lol9;</quiz>\n"
).encode()


def parse_with_levels(data: bytes, filename: str, defaults, *, levels):
    """An importer as a registry line may name one: it reads levels, and returns a plain ParseResult."""
    from itembank.formats.yaml_format import ParseResult

    return ParseResult([], [Problem(filename, 1, "seen", f"{len(data)} bytes at {levels.count} levels")])


# ex_test LaTeX as teachers write it: a single choice with its ID code (grade 12, level Thông hiểu),
# a true/false-4, a short answer, a question whose picture cannot come along (kept, with a note),
# and one with no key (left out).
LATEX = r"""\documentclass{article}
\usepackage{amsmath,ex_test}
\begin{document}
\begin{ex}%[2D1H3-1]
Hàm số $y = x^3 - 3x$ đồng biến trên khoảng nào?
\choice{$(-1;1)$}{\True $(1;+\infty)$}{$(-\infty;1)$}{$(-2;2)$}
\loigiai{Ta có $y' = 3x^2 - 3$.}
\end{ex}
\begin{ex}
Cho hàm số $y = x^2$. Xét tính đúng sai:
\choiceTF{\True Hàm số chẵn.}{Đồng biến trên $\mathbb{R}$.}{\True Có cực tiểu.}{Có cực đại.}
\end{ex}
\begin{ex}
Nghiệm của $2x + 3 = 0$ là
\shortans{$-1{,}5$}
\end{ex}
\begin{ex}
Đồ thị nào dưới đây?
\includegraphics[width=3cm]{do-thi.png}
\choice{\True Parabol}{Đường thẳng}
\end{ex}
\begin{ex}
Câu này quên đánh dấu đáp án.
\choice{1}{2}
\end{ex}
\end{document}
"""
# id -> (type, the preview's data-key); the ID code's grade and level where it gives them.
LATEX_KEYS = {"C1": ("single", "B"), "C2": ("truefalse4", "aTbFcTdF"), "C3": ("short", "-1,5"), "C4": ("single", "A")}
LATEX_BAD_LINE = 24


def word_file() -> bytes:
    """A Word file the Vietnamese way (python-docx, as Word writes it): a key underlined, a key in red
    with a picture in the stem, a key given only in the answer table, and a question with no key."""
    import io

    import docx
    from docx.shared import RGBColor

    document = docx.Document()

    def line(*parts):
        paragraph = document.add_paragraph()
        for part in parts:
            text, how = (part, {}) if isinstance(part, str) else part
            run = paragraph.add_run(text)
            run.underline = how.get("underline")
            if "red" in how:
                run.font.color.rgb = RGBColor.from_string("FF0000")
        return paragraph

    line("PHẦN I. Câu trắc nghiệm nhiều phương án lựa chọn")
    line("Câu 1. Thủ đô của Việt Nam là")
    line(("A.", {"underline": True}), " Hà Nội\t", "B. Huế\t", "C. Đà Nẵng\t", "D. Cần Thơ")
    line("Câu 2. Đồ thị dưới đây là của hàm số nào?")
    document.add_paragraph().add_run().add_picture(io.BytesIO(PNG))
    line("A. y = x\t", ("B.", {"red": True}), " y = x²\t", "C. y = 1\t", "D. y = −x")
    line("Câu 3. Số nguyên tố nhỏ nhất là")
    line("A. 1\t", "B. 2\t", "C. 3\t", "D. 4")
    line("Câu 4. Câu này không có đáp án nào được đánh dấu.")
    line("A. một\t", "B. hai\t", "C. ba\t", "D. bốn")
    line("ĐÁP ÁN")
    line("3-B")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# Ids carry the section: Câu 1 of PHẦN I is CI-1.
WORD_KEYS = {"CI-1": ("single", "A"), "CI-2": ("single", "B"), "CI-3": ("single", "B")}
WORD_BAD_PARAGRAPH = 9
WORD_PICTURE = "media/{prefix}-CI-2-1.png"
