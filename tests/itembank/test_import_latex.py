r"""LaTeX ex_test import: each kind of question becomes exactly its draft item,
and each fault is a problem at its line, naming the question."""

from __future__ import annotations

from decimal import Decimal

import pytest

from itembank.formats.imported import ImportDefaults
from itembank.formats.latex_ex import LATEX_MAX_BYTES, MAX_QUESTIONS, parse_latex
from itembank.formats.yaml_format import parse_text, serialise_items
from itembank.levels import SCHEME_2025
from itembank.limits import TooLarge
from itembank.model import Item, ItemType, Option, ShortFormat, ShortKey, Statement, Status
from itembank.render import render_markdown
from itembank.validate import check_item

DEFAULTS = ImportDefaults(subject="toan", id_prefix="tex")

# Written as teachers write them: the preamble, sections, comments, hidden questions.
GOOD = r"""\documentclass[12pt,a4paper]{article}
\usepackage[utf8]{vietnam}
\usepackage{amsmath,ex_test}
\begin{document}
\section*{PHẦN I}
% \begin{ex} a question commented out is no question
\begin{ex}%[Nguồn: Đề thi thử THPT Lục Ngạn 2024]%[2D1H3-1]
Hàm số $y = x^3 - 3x$ đồng biến trên khoảng nào?
\choice
{$(-1;1)$}
{\True $(1;+\infty)$}
{$(-\infty;1)$}
{$(-2;2)$}
\loigiai{Ta có $y' = 3x^2 - 3 > 0 \Leftrightarrow |x| > 1$.}
\end{ex}

\begin{ex}%[0D2N1-2]
Những số nào bằng $\dfrac{1}{2}$? Chọn mọi đáp án đúng (50\% số điểm % ghi chú: không in
cho mỗi ý).
\choice[2]
{\True $\frac{2}{4}$}
{$\{\frac{1}{2}\}$}
{\textbf{\True $0{,}5$}}
{$\sqrt{\frac{1}{2}}$}
\end{ex}

\section*{PHẦN II}
\begin{ex}%[2H3V2-1]
Cho hệ $\heva{&x + y = 3\\&x - y = 1}$. Xét tính đúng sai của các mệnh đề sau:
\choiceTF[t]
{\True Hệ có nghiệm $(2;1)$}
{Hệ vô nghiệm}
{\True $x + y = 3$}
{$x - y = 2$}
\loigiai{
\begin{itemize}
\item Cộng hai phương trình: $2x = 4$.
\item Suy ra $x = 2$, $y = 1$.
\end{itemize}
}
\end{ex}

\section*{PHẦN III}
\begin{ex}%[2D1C4-2]
Tìm giá trị nhỏ nhất của $f(x) = x^2 + 3x + \dfrac{3}{4}$.
\shortans[oly]{$-1{,}5$}
\end{ex}

\begin{ex}%[2D3V1-1]
Tính $\displaystyle\int_0^3 x^2\,\mathrm{d}x + 3{,}75$.
\shortans{12.75}
\end{ex}

\iffalse
\begin{ex} Câu đã ẩn. \choice{\True 1}{2}{3}{4} \end{ex}
\fi
\begin{comment}
\begin{ex} Câu cũng đã ẩn. \end{ex}
\end{comment}
\begin{vd} Một ví dụ, không phải câu hỏi. \end{vd}

\begin{ex}
\textbf{Bài toán}: Cho \emph{hàm số} \(f(x) = x^2\) và \underline{không} dùng máy tính.\\
Chứng minh rằng \[f(x) \ge 0\] với mọi $x$.
\begin{enumerate}[a)]
\item Tính $f(2)$.
\item Giải $f(x) = 4$.
\end{enumerate}
\begin{center}
\begin{tabular}{|c|r|}
\hline
$x$ & $|x|$\\
\hline
$-1$ & 1\\
\hline
\end{tabular}
\end{center}
\loigiai{$$f(2) = 4$$ và \textit{nghiệm} là $x = \pm 2$.}
\end{ex}

\begin{ex}
\immini{Cho hình chóp $S.ABC$ như hình bên. Thể tích khối chóp bằng
\choice{\True $1$}{$2$}{$3$}{$4$}}
{\begin{tikzpicture}
\draw (0,0)--(2,0)--(1,2)--cycle;
\end{tikzpicture}}
\loigiai{Xem hình \includegraphics[width=3cm]{hinh-1.png}}
\end{ex}

\begin{bt}%[1D2Y3]
Giải phương trình $\sin x = \dfrac{1}{2}$.
\loigiai{
\begin{align*}
x &= \dfrac{\pi}{6} + k2\pi \\
x &= \dfrac{5\pi}{6} + k2\pi
\end{align*}
}
\end{bt}
\end{document}
"""


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The line of the `nth` occurrence of `needle` in `text`."""
    at = -1
    for _ in range(nth):
        at = text.index(needle, at + 1)
    return text.count("\n", 0, at) + 1


def draft_item(id: str, type: ItemType, stem: str, **fields) -> Item:
    return Item(
        id=id,
        version=1,
        type=type,
        subject="toan",
        topic=fields.pop("topic", "chua-phan-loai"),
        level=fields.pop("level", 1),
        points=Decimal("0.25"),
        lang="vi",
        status=Status.DRAFT,
        stem=stem,
        **fields,
    )


EXPECTED = [
    draft_item(
        "tex-C1",
        ItemType.SINGLE,
        "Hàm số $y = x^3 - 3x$ đồng biến trên khoảng nào?",
        grade=12,
        topic="ch-2D1",
        level=2,
        tags=("2D1H3-1",),
        options=(
            Option("A", "$(-1;1)$", False),
            Option("B", "$(1;+\\infty)$", True),
            Option("C", "$(-\\infty;1)$", False),
            Option("D", "$(-2;2)$", False),
        ),
        explanation="Ta có $y' = 3x^2 - 3 > 0 \\Leftrightarrow |x| > 1$.\n\nNguồn: Đề thi thử THPT Lục Ngạn 2024",
    ),
    draft_item(
        "tex-C2",
        ItemType.MULTIPLE,
        # The comment took its line's end with it; \% is the character.
        "Những số nào bằng $\\dfrac{1}{2}$? Chọn mọi đáp án đúng (50% số điểm cho mỗi ý).",
        grade=10,
        topic="ch-0D2",
        level=1,
        tags=("0D2N1-2",),
        options=(
            Option("A", "$\\frac{2}{4}$", True),
            Option("B", "$\\{\\frac{1}{2}\\}$", False),
            # Bold around a formula is not Markdown's (it would not flank), so HTML's.
            Option("C", "<strong>$0{,}5$</strong>", True),
            Option("D", "$\\sqrt{\\frac{1}{2}}$", False),
        ),
    ),
    draft_item(
        "tex-C3",
        ItemType.TRUEFALSE4,
        "Cho hệ $\\left\\{\\begin{array}{rl}&x + y = 3\\\\&x - y = 1\\end{array}\\right.$."
        " Xét tính đúng sai của các mệnh đề sau:",
        grade=12,
        topic="ch-2H3",
        level=3,
        tags=("2H3V2-1",),
        statements=(
            Statement("a", "Hệ có nghiệm $(2;1)$", True),
            Statement("b", "Hệ vô nghiệm", False),
            Statement("c", "$x + y = 3$", True),
            Statement("d", "$x - y = 2$", False),
        ),
        explanation="- Cộng hai phương trình: $2x = 4$.\n- Suy ra $x = 2$, $y = 1$.",
    ),
    draft_item(
        "tex-C4",
        ItemType.SHORT,
        "Tìm giá trị nhỏ nhất của $f(x) = x^2 + 3x + \\dfrac{3}{4}$.",
        grade=12,
        topic="ch-2D1",
        level=4,
        tags=("2D1C4-2",),
        answer=ShortKey("-1,5", ShortFormat.VN_NUMERIC),
    ),
    draft_item(
        "tex-C5",
        ItemType.SHORT,
        "Tính $\\displaystyle\\int_0^3 x^2\\,\\mathrm{d}x + 3{,}75$.",
        grade=12,
        topic="ch-2D3",
        level=3,
        tags=("2D3V1-1",),
        # Five characters: more than the answer sheet's four, so a number.
        answer=ShortKey("12.75", ShortFormat.NUMBER),
    ),
    draft_item(
        "tex-C6",
        ItemType.ESSAY,
        "**Bài toán**: Cho *hàm số* $f(x) = x^2$ và <u>không</u> dùng máy tính.\\\n"
        "Chứng minh rằng $$f(x) \\ge 0$$ với mọi $x$.\n\n"
        "a) Tính $f(2)$.\n\n"
        "b) Giải $f(x) = 4$.\n\n"
        "| $x$ | $\\vert x\\vert$ |\n"
        "|:-:|--:|\n"
        "| $-1$ | 1 |",
        explanation="$$f(2) = 4$$ và *nghiệm* là $x = \\pm 2$.",
    ),
    draft_item(
        "tex-C7",
        ItemType.SINGLE,
        "Cho hình chóp $S.ABC$ như hình bên. Thể tích khối chóp bằng\n\n⟦Hình chưa nhập: TikZ⟧",
        options=(
            Option("A", "$1$", True),
            Option("B", "$2$", False),
            Option("C", "$3$", False),
            Option("D", "$4$", False),
        ),
        explanation="Xem hình ⟦Hình chưa nhập: hinh-1.png⟧",
    ),
    draft_item(
        "tex-CBai-1",
        ItemType.ESSAY,
        "Giải phương trình $\\sin x = \\dfrac{1}{2}$.",
        grade=11,
        topic="ch-1D2",
        level=1,
        tags=("1D2Y3",),
        explanation="$$\\begin{array}{rl}x &= \\dfrac{\\pi}{6} + k2\\pi \\\\"
        " x &= \\dfrac{5\\pi}{6} + k2\\pi\\end{array}$$",
    ),
]


def test_every_kind_of_question_imports_to_exactly_its_item():
    result = parse_latex(GOOD.encode(), "de.tex", DEFAULTS)
    assert [source.item for source in result.items] == EXPECTED
    # The pictures are the only problems, and they leave their questions' items in place.
    assert [(p.line, p.code) for p in result.problems] == [
        (line_of(GOOD, "\\begin{tikzpicture}"), "not-imported"),
        (line_of(GOOD, "\\includegraphics"), "not-imported"),
    ]
    assert all(p.message.startswith("Câu 7: ") for p in result.problems)
    for source in result.items:
        assert check_item(source) == []
        assert source.item.status == Status.DRAFT


def test_each_item_and_its_parts_point_at_their_lines():
    result = parse_latex(GOOD.encode(), "de.tex", DEFAULTS)
    first, multiple, truefalse = result.items[0], result.items[1], result.items[2]
    assert (first.file, first.line) == ("de.tex", line_of(GOOD, "\\begin{ex}", 2))  # the first is commented out
    assert first.line_of("options.B") == line_of(GOOD, "{\\True $(1;+\\infty)$}")
    assert first.line_of("explanation") == line_of(GOOD, "\\loigiai{Ta có")
    assert multiple.line_of("answer") == line_of(GOOD, "\\choice[2]")
    assert truefalse.line_of("statements.c.answer") == line_of(GOOD, "{\\True $x + y = 3$}")
    assert result.items[-1].line == line_of(GOOD, "\\begin{bt}")


def test_windows_line_ends_and_a_byte_order_mark_change_nothing():
    plain = parse_latex(GOOD.encode(), "de.tex", DEFAULTS)
    windows = parse_latex(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode(), "de.tex", DEFAULTS)
    assert windows.items == plain.items
    assert [(p.line, p.code) for p in windows.problems] == [(p.line, p.code) for p in plain.problems]


def test_the_items_survive_the_native_format():
    """`cbt bank convert` writes them as YAML; read back, they are the same items."""
    items = [source.item for source in parse_latex(GOOD.encode(), "de.tex", DEFAULTS).items]
    back = parse_text(serialise_items(items), "de.yaml")
    assert back.problems == []
    assert [source.item for source in back.items] == items


@pytest.mark.parametrize(
    ("notes", "grade", "topic", "level", "tags"),
    [
        ("%[2D1H3-1]", 12, "ch-2D1", 2, ("2D1H3-1",)),  # ID6
        ("%[0H2N1]", 10, "ch-0H2", 1, ("0H2N1",)),  # ID5
        ("%[1D3K2-4]", 11, "ch-1D3", 3, ("1D3K2-4",)),  # the older level letters: Y B K G
        ("%[9D1G1-1]", 9, "ch-9D1", 4, ("9D1G1-1",)),
        ("%[2D1 3-1]", None, "chua-phan-loai", 1, ()),  # not a code: a source
        # Unknown grade digit, unclassified subject, level T: each keeps the default.
        ("%[5D1T1-1]", None, "ch-5D1", 1, ("5D1T1-1",)),
        ("%[200N0-0]", 12, "chua-phan-loai", 1, ("200N0-0",)),
        ("%[Nguồn: SGK]%[TH]", None, "chua-phan-loai", 2, ()),  # a level by its initials
        ("[Đề minh họa]%[0D1V1-1]", 10, "ch-0D1", 3, ("0D1V1-1",)),  # after the optional argument
    ],
)
def test_the_id_code_gives_grade_topic_and_level_where_it_can(notes, grade, topic, level, tags):
    text = f"\\begin{{ex}}{notes}\nCâu hỏi tự luận.\n\\end{{ex}}\n"
    (source,) = parse_latex(text.encode(), "de.tex", DEFAULTS).items
    item = source.item
    assert (item.grade, item.topic, item.level, item.tags) == (grade, topic, level, tags)


def test_the_id_codes_level_is_the_legacy_schemes_and_only_read_for_it():
    text = "\\begin{ex}%[2D1C3-1]\nCâu hỏi tự luận.\n\\end{ex}\n".encode()
    (legacy,) = parse_latex(text, "de.tex", DEFAULTS).items
    (scheme_2025,) = parse_latex(text, "de.tex", DEFAULTS, levels=SCHEME_2025).items
    assert legacy.item.level == 4
    assert scheme_2025.item.level == DEFAULTS.level
    assert scheme_2025.item.topic == "ch-2D1"


def test_a_source_note_ends_the_explanation():
    text = "\\begin{ex}%[Trường THPT A]%[Tổ Toán]\nCâu hỏi.\n\\loigiai{Lời giải.}\n\\end{ex}\n"
    (source,) = parse_latex(text.encode(), "de.tex", DEFAULTS).items
    assert source.item.explanation == "Lời giải.\n\nNguồn: Trường THPT A; Tổ Toán"
    assert source.item.tags == ()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("-1,5", ShortKey("-1,5", ShortFormat.VN_NUMERIC)),
        ("$-1{,}5$", ShortKey("-1,5", ShortFormat.VN_NUMERIC)),
        ("1.5", ShortKey("1,5", ShortFormat.VN_NUMERIC)),
        ("\\(0,25\\)", ShortKey("0,25", ShortFormat.VN_NUMERIC)),
        ("1234", ShortKey("1234", ShortFormat.VN_NUMERIC)),
        ("-0,25", ShortKey("-0,25", ShortFormat.NUMBER)),
        ("12345", ShortKey("12345", ShortFormat.NUMBER)),
        ("Hà Nội", ShortKey("Hà Nội", ShortFormat.TEXT)),
    ],
)
def test_a_short_answer_key_takes_the_first_format_it_fits(key, expected):
    text = f"\\begin{{ex}}\nCâu hỏi.\n\\shortans{{{key}}}\n\\end{{ex}}\n"
    (source,) = parse_latex(text.encode(), "de.tex", DEFAULTS).items
    assert source.item.answer == expected


@pytest.mark.parametrize(
    ("latex", "markdown"),
    [
        ("\\textbf{1.}Tính", "<strong>1.</strong>Tính"),
        ("{\\bf đậm} và {\\it nghiêng} rồi \\textit{nghiêng}", "**đậm** và *nghiêng* rồi *nghiêng*"),
        ("Dòng một\\\\ dòng hai\\newline dòng ba", "Dòng một\\\ndòng hai\\\ndòng ba"),
        ("Đoạn một.\n\n  Đoạn hai.", "Đoạn một.\n\nĐoạn hai."),
        # A comment takes its line's end with it: TeX writes no space there, but a blank line after it still counts.
        ("Chữ liền%\n   nhau% ghi chú\n\nĐoạn sau.", "Chữ liềnnhau\n\nĐoạn sau."),
        ("Trước\\\\\n2. Sau", "Trước\\\n2\\. Sau"),  # a line that would start a list
        ("a\\_b * c | d \\$5 <e> \\{f\\}", "a\\_b \\* c \\| d \\$5 \\<e\\> {f}"),
        ("``Trích dẫn'' -- 1990---2000~năm\\ldots", "“Trích dẫn” – 1990—2000 năm…"),
        ("\\begin{itemize}\\item Một\n\\item Hai\\end{itemize}", "- Một\n- Hai"),
        (
            "\\begin{enumerate}\\item Một\\begin{itemize}\\item Con\\end{itemize}\\item Hai\\end{enumerate}",
            "1. Một\n\n   - Con\n2. Hai",
        ),
        ("\\begin{enumerate}[(i)]\\item Một\\item Hai\\end{enumerate}", "(i) Một\n\n(ii) Hai"),
        (
            "$\\vv{AB} = \\hoac{x=1\\\\x=2}$",
            "$\\overrightarrow{AB} = \\left[\\begin{array}{r}x=1\\\\x=2\\end{array}\\right.$",
        ),
        ("\\begin{equation}\\label{pt} x^2 = 1 \\end{equation}", "$$x^2 = 1$$"),
        ("\\begin{gather*} a \\\\ b \\end{gather*}", "$$\\begin{array}{c}a \\\\ b\\end{array}$$"),
        ("\\noindent\\hspace*{1cm}\\textcolor{red}{Đỏ}\\vspace{2mm} và \\mbox{hộp}", "Đỏ và hộp"),
        ("Giá $ 5 $ triệu", "Giá $5$ triệu"),
    ],
)
def test_text_becomes_markdown_that_shows_the_same(latex, markdown):
    text = f"\\begin{{ex}}\n{latex}\n\\end{{ex}}\n"
    result = parse_latex(text.encode(), "de.tex", DEFAULTS)
    assert result.problems == []
    (source,) = result.items
    assert source.item.stem == markdown


def test_bold_that_markdown_cannot_flank_is_still_bold_on_the_page():
    assert "<strong>1.</strong>Tính" in render_markdown("<strong>1.</strong>Tính").html
    assert "**1.**Tính" in render_markdown("**1.**Tính").html  # what Markdown alone would have shown


# Each question but Câu 6 and Câu 14 has one fault; the comment after \end{ex} says which.
BAD = r"""\begin{ex}
Không có đáp án nào được đánh dấu.
\choice{$1$}{$2$}{$3$}{$4$}
\end{ex} % no-key at the \choice
\begin{ex}
Chỉ có ba mệnh đề.
\choiceTF{\True a}{b}{c}
\end{ex} % truefalse4-statements at the \choiceTF
\begin{ex}
Một ngoặc {không đóng $x$.
\choice{\True 1}{2}
\end{ex} % latex-syntax at the {
\begin{ex}
Thừa một ngoặc } ở đây.
\end{ex} % latex-syntax at the }
\begin{ex}
Công thức $x + 1 chưa đóng.

\choice{\True 1}{2}
\end{ex} % latex-syntax at the $
\begin{ex}
Câu đúng giữa các câu sai.
\choice{\True $\frac{1}{2}$}{$\frac{1}{3}$}
\end{ex} % Câu 6 imports
\begin{ex}
Lệnh lạ \foo{x} trong đề.
\end{ex} % latex-unsupported at \foo
\begin{ex}
Công thức sai trong phương án.
\choice{\True $1$}
{$\sqrtt{2}$}
\end{ex} % bad-math at option B's line
\begin{ex}
Đáp số là công thức.
\shortans{$\dfrac{1}{2}$}
\end{ex} % short-key-syntax at the \shortans
\begin{ex}
Đáp số rỗng. \shortans{ }
\end{ex} % no-key at the \shortans
\begin{ex}
Dấu đúng ngoài ngoặc. \choice{\True A}\True{B}
\end{ex} % latex-syntax at the second \True
\begin{ex}
Đề có \True ở ngoài phương án.
\choice{\True A}{B}
\end{ex} % latex-syntax at that \True
\begin{ex}
Quên đóng câu này.
\choice{\True 1}{2}
\begin{ex}
Câu sau vẫn nhập được.
\choice{1}{\True 2}
\end{ex} % Câu 13 is never closed (at its \begin); Câu 14 imports
\begin{ex}
Hai khối đáp án.
\choice{\True 1}{2}
\shortans{3}
\end{ex} % latex-syntax at the \shortans
\begin{ex}
Một phương án. \choice{\True 1}
\end{ex} % latex-syntax at the \choice
\begin{ex}
\begin{itemize}
\item Danh sách không đóng.
\end{ex} % latex-syntax at the itemize
\begin{ex}
Hai dấu đô la $$x^2$ lệch nhau.
\end{ex} % latex-syntax at the $$
\end{ex} % latex-syntax: no \begin
\begin{ex}
Câu cuối không bao giờ đóng.
"""

BAD_PROBLEMS = [
    ("\\choice{$1$}", "no-key", 1),
    ("\\choiceTF{\\True a}", "truefalse4-statements", 2),
    ("{không đóng", "latex-syntax", 3),
    ("} ở đây", "latex-syntax", 4),
    ("$x + 1 chưa", "latex-syntax", 5),
    ("\\foo{x}", "latex-unsupported", 7),
    ("{$\\sqrtt{2}$}", "bad-math", 8),
    ("\\shortans{$\\dfrac", "short-key-syntax", 9),
    ("\\shortans{ }", "no-key", 10),
    ("}\\True{B}", "latex-syntax", 11),
    ("Đề có \\True", "latex-syntax", 12),
    ("Quên đóng", "latex-syntax", 13),  # at the line before, its \begin{ex}
    ("\\shortans{3}", "latex-syntax", 15),
    ("Một phương án. \\choice", "latex-syntax", 16),
    ("\\begin{itemize}", "latex-syntax", 17),
    ("$$x^2$", "latex-syntax", 18),
    ("\\end{ex} % latex-syntax: no \\begin", "latex-syntax", None),
    ("Câu cuối", "latex-syntax", 19),  # at the line before, its \begin{ex}
]


def test_each_fault_is_a_problem_at_its_line_and_its_question_gives_no_item():
    result = parse_latex(BAD.encode(), "bad.tex", DEFAULTS)
    expected = []
    for needle, code, question in BAD_PROBLEMS:
        # A question never closed is reported at its \begin{ex}, the line before.
        line = line_of(BAD, needle) - (needle in ("Quên đóng", "Câu cuối"))
        expected.append((line, code, f"Câu {question}" if question else None))
    found = [
        (p.line, p.code, p.message.split(":")[0] if p.message.startswith("Câu") else None) for p in result.problems
    ]
    assert found == expected
    assert all(p.file == "bad.tex" for p in result.problems)
    assert [source.item.id for source in result.items] == ["tex-C6", "tex-C14"]
    assert result.items[1].item.correct_option_ids == ("B",)


def test_a_question_with_an_unread_picture_is_kept_and_the_picture_named():
    text = "\\begin{ex}\nĐồ thị:\n\\includegraphics[scale=0.5]{do_thi.png}\n\\choice{\\True A}{B}\n\\end{ex}\n"
    result = parse_latex(text.encode(), "de.tex", DEFAULTS)
    (problem,) = result.problems
    assert (problem.line, problem.code) == (3, "not-imported")
    assert "do_thi.png" in problem.message and problem.message.startswith("Câu 1: ")
    (source,) = result.items
    assert source.item.stem == "Đồ thị: ⟦Hình chưa nhập: do\\_thi.png⟧"
    assert "⟦Hình chưa nhập: do_thi.png⟧" in render_markdown(source.item.stem).html


def test_a_file_that_is_not_utf8_is_one_clear_problem():
    result = parse_latex(b"\\begin{ex}\nC\xe2u 1 vi\xeat b\xe8ng TCVN3\n\\end{ex}\n", "cu.tex", DEFAULTS)
    assert result.items == []
    (problem,) = result.problems
    assert (problem.file, problem.line, problem.code) == ("cu.tex", 2, "encoding")
    assert "UTF-8" in problem.message


def test_a_file_without_questions_says_so():
    result = parse_latex(
        b"\\documentclass{article}\n\\begin{document}\n\\input{chuong1}\n\\end{document}\n", "x.tex", DEFAULTS
    )
    assert [p.code for p in result.problems] == ["no-questions"]
    assert result.items == []


def test_a_huge_file_is_refused_before_it_is_read():
    with pytest.raises(TooLarge) as refused:
        parse_latex(b"%" * (LATEX_MAX_BYTES + 1), "lon.tex", DEFAULTS)
    assert refused.value.code == "too_large"
    assert "lon.tex" in refused.value.message and "split" in refused.value.message
    with pytest.raises(TooLarge):
        parse_latex(b"\\begin{ex}x\\end{ex}\n" * (MAX_QUESTIONS + 1), "nhieu.tex", DEFAULTS)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{" * 5000 + "x" + "}" * 5000, "latex-syntax"),  # deeper than any question
        ("\\bf a " * 5000, "latex-syntax"),  # styles inside styles
        ("$" + "x+" * 20000 + "$", "latex-syntax"),  # a formula that swallowed the text
        ("$" + "\\heva{" * 70 + "x" + "}" * 70 + "$", "latex-syntax"),  # systems inside systems
        ("\\begin{tabular}{cc}\\begin{tabular}{c}a\\end{tabular} & b\\end{tabular}", "latex-unsupported"),
        ("x \\foo " * 5000, "latex-unsupported"),  # said once, not 5,000 times
        ("\\\\[" * 20000, None),  # [ that nothing closes: text, after line breaks
    ],
)
def test_hostile_shapes_end_in_one_problem_or_an_item_not_a_crash(body, code):
    result = parse_latex(f"\\begin{{ex}}\n{body}\n\\end{{ex}}\n".encode(), "x.tex", DEFAULTS)
    assert [p.code for p in result.problems] == ([code] if code else [])
    assert len(result.items) == (0 if code else 1)
