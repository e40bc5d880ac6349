"""A demo bank with real content: grade 11-12 math and physics in Vietnamese,
and some English, in the formats of the national graduation exam.

Math covers four topics at all four levels (for blueprint demos), every
item type appears, and every key has been worked out by hand (the working
is in each item's explanation). ``cbt demo`` signs it with a fresh key.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

from itembank.formats.yaml_format import serialise_bank_info, serialise_item, serialise_items
from itembank.model import (
    BankInfo,
    Item,
    ItemType,
    Option,
    ShortFormat,
    ShortKey,
    Statement,
    Status,
)

BANK = BankInfo(
    name="demo-thpt",
    version="2025.1",
    title="Ngân hàng câu hỏi mẫu: Toán, Vật lí, Tiếng Anh",
    subject="toan",
    description=(
        "Câu hỏi mẫu theo định dạng thi tốt nghiệp THPT từ 2025 (Phần I, II, III)."
        " Demo questions in the Vietnamese national exam format."
    ),
    publisher="cbt demo",
    topics={
        "ham-so": "Hàm số",
        "mu-logarit": "Hàm số mũ và hàm số lôgarit",
        "nguyen-ham-tich-phan": "Nguyên hàm và tích phân",
        "toa-do-oxyz": "Phương pháp toạ độ trong không gian",
        "vat-li-nhiet": "Vật lí nhiệt",
        "khi-ly-tuong": "Khí lí tưởng",
        "grammar": "Ngữ pháp",
        "vocabulary": "Từ vựng",
        "reading": "Đọc hiểu",
        "writing": "Viết",
    },
)

GRAPH = "media/do-thi-bac-ba.svg"
LETTERS = "ABCDEFGH"


def _item(item_id: str, kind: ItemType, topic: str, level: int, points: str, stem: str, **more) -> Item:
    subject, grade, lang = _SUBJECTS[item_id.split("-")[0]]
    return Item(
        id=item_id,
        version=1,
        type=kind,
        subject=subject,
        grade=grade,
        topic=topic,
        level=level,
        points=Decimal(points),
        lang=lang,
        status=Status.APPROVED,
        stem=stem,
        **more,
    )


def single(item_id: str, topic: str, level: int, stem: str, options: list[str], **more) -> Item:
    """Part I. The correct option is written first, which is easy to check;
    the options are then rotated so that keys spread over A-D."""
    turn = sum(map(ord, item_id)) % len(options)
    rotated = options[-turn:] + options[:-turn] if turn else options
    correct = rotated.index(options[0])
    opts = tuple(Option(LETTERS[i], text, i == correct) for i, text in enumerate(rotated))
    return _item(item_id, ItemType.SINGLE, topic, level, "0.25", stem, options=opts, **more)


def multiple(item_id: str, topic: str, level: int, stem: str, options: list[str], keys: str, **more) -> Item:
    opts = tuple(Option(LETTERS[i], text, LETTERS[i] in keys) for i, text in enumerate(options))
    return _item(item_id, ItemType.MULTIPLE, topic, level, "0.5", stem, options=opts, **more)


def truefalse4(item_id: str, topic: str, level: int, stem: str, statements: list[tuple[str, bool]], **more) -> Item:
    """Part II: four statements a-d, each with whether it is true."""
    rows = tuple(Statement("abcd"[i], text, answer) for i, (text, answer) in enumerate(statements))
    return _item(item_id, ItemType.TRUEFALSE4, topic, level, "1", stem, statements=rows, **more)


def short(item_id: str, topic: str, level: int, stem: str, key: str, points: str = "0.5", **more) -> Item:
    """Part III: `key` as written on the answer sheet, e.g. "-1,5"."""
    return _item(item_id, ItemType.SHORT, topic, level, points, stem, answer=ShortKey(key), **more)


def essay(item_id: str, topic: str, level: int, stem: str, explanation: str, points: str = "1") -> Item:
    return _item(item_id, ItemType.ESSAY, topic, level, points, stem, explanation=explanation)


_SUBJECTS = {
    "HS": ("toan", 12, "vi"),
    "ML": ("toan", 11, "vi"),
    "TP": ("toan", 12, "vi"),
    "OX": ("toan", 12, "vi"),
    "VL": ("vat-li", 12, "vi"),
    "EN": ("tieng-anh", 12, "en"),
}

# ---------------------------------------------------------------- Toán: hàm số

HAM_SO = [
    single(
        "HS-01",
        "ham-so",
        1,
        "Đạo hàm của hàm số $y = x^3 - 3x$ là",
        ["$y' = 3x^2 - 3$", "$y' = 3x^2 - 3x$", "$y' = x^2 - 3$", "$y' = 3x - 3$"],
    ),
    single(
        "HS-02",
        "ham-so",
        1,
        ("Cho hàm số $y = f(x)$ có $f'(x) > 0$ với mọi $x \\in (1; 3)$. Khẳng định nào sau đây đúng?"),
        [
            "Hàm số đồng biến trên khoảng $(1; 3)$.",
            "Hàm số nghịch biến trên khoảng $(1; 3)$.",
            "Hàm số đạt cực đại tại $x = 2$.",
            "Hàm số không đổi trên khoảng $(1; 3)$.",
        ],
    ),
    single(
        "HS-03",
        "ham-so",
        1,
        "Tiệm cận đứng của đồ thị hàm số $y = \\dfrac{2x + 1}{x - 1}$ là đường thẳng",
        ["$x = 1$", "$x = -1$", "$y = 2$", "$y = 1$"],
        explanation="Mẫu số bằng $0$ tại $x = 1$, tử số tại đó bằng $3 \\ne 0$.",
    ),
    single(
        "HS-04",
        "ham-so",
        2,
        "Hàm số $y = x^3 - 3x^2 + 1$ đạt cực đại tại điểm",
        ["$x = 0$", "$x = 2$", "$x = 1$", "$x = -3$"],
        explanation=(
            "$y' = 3x^2 - 6x = 3x(x - 2)$, $y'' = 6x - 6$; $y''(0) = -6 < 0$ nên"
            " hàm số đạt cực đại tại $x = 0$ (và cực tiểu tại $x = 2$)."
        ),
    ),
    single(
        "HS-05",
        "ham-so",
        2,
        "Giá trị lớn nhất của hàm số $y = x^3 - 3x + 2$ trên đoạn $[0; 2]$ bằng",
        ["$4$", "$2$", "$0$", "$8$"],
        explanation=("$y' = 3x^2 - 3 = 0 \\Leftrightarrow x = 1$; $y(0) = 2$, $y(1) = 0$, $y(2) = 4$."),
    ),
    truefalse4(
        "HS-06",
        "ham-so",
        2,
        "Cho hàm số $f(x) = x^3 - 3x + 1$.",
        [
            ("$f'(x) = 3x^2 - 3$.", True),
            ("Hàm số đồng biến trên khoảng $(-1; 1)$.", False),
            ("Giá trị cực tiểu của hàm số bằng $-1$.", True),
            ("Phương trình $f(x) = 0$ có đúng hai nghiệm thực phân biệt.", False),
        ],
        explanation=(
            "$f'(x) = 3(x^2 - 1) < 0$ trên $(-1; 1)$ nên hàm số nghịch biến ở đó."
            " $f_{CĐ} = f(-1) = 3 > 0$ và $f_{CT} = f(1) = -1 < 0$ nên phương trình"
            " $f(x) = 0$ có ba nghiệm phân biệt."
        ),
    ),
    single(
        "HS-07",
        "ham-so",
        3,
        "Có bao nhiêu giá trị nguyên của tham số $m$ để hàm số"
        " $y = x^3 - 3mx^2 + 3x + 1$ đồng biến trên $\\mathbb{R}$?",
        ["$3$", "$2$", "$1$", "Vô số"],
        explanation=(
            "$y' = 3x^2 - 6mx + 3 \\ge 0$ với mọi $x$ khi và chỉ khi"
            " $\\Delta' = 9m^2 - 9 \\le 0 \\Leftrightarrow -1 \\le m \\le 1$:"
            " ba giá trị $-1, 0, 1$."
        ),
    ),
    short(
        "HS-08",
        "ham-so",
        3,
        "Từ một tấm bìa hình vuông cạnh $12$ cm, người ta cắt bỏ ở bốn góc bốn hình vuông"
        " bằng nhau cạnh $x$ cm rồi gập lại thành một chiếc hộp không nắp. Thể tích hộp lớn"
        " nhất khi $x$ bằng bao nhiêu xentimét?",
        "2",
        explanation=(
            "$V(x) = x(12 - 2x)^2$ với $0 < x < 6$;"
            " $V'(x) = (12 - 2x)(12 - 6x) = 0 \\Leftrightarrow x = 2$, và $V' $ đổi dấu từ"
            " dương sang âm tại đó: $V_{max} = V(2) = 128$ cm³."
        ),
    ),
    truefalse4(
        "HS-09",
        "ham-so",
        3,
        "Cho hàm số $y = \\dfrac{x + 2}{x - 1}$ có đồ thị $(C)$.",
        [
            ("Đồ thị $(C)$ có tiệm cận ngang là đường thẳng $y = 1$.", True),
            ("Hàm số đồng biến trên từng khoảng xác định.", False),
            ("Đồ thị $(C)$ cắt trục tung tại điểm $(0; -2)$.", True),
            ("Tiếp tuyến của $(C)$ tại điểm có hoành độ $x = 2$ có hệ số góc bằng $3$.", False),
        ],
        explanation="$y' = \\dfrac{-3}{(x - 1)^2} < 0$, nên hàm số nghịch biến và $y'(2) = -3$.",
    ),
    short(
        "HS-10",
        "ham-so",
        4,
        "Một vật chuyển động theo quy luật $s(t) = -\\frac{1}{3}t^3 + 6t^2$, với $t$ (giây)"
        " là thời gian tính từ lúc bắt đầu chuyển động và $s$ (mét) là quãng đường đi được."
        " Trong $9$ giây đầu tiên, vận tốc lớn nhất của vật là bao nhiêu mét/giây?",
        "36",
        explanation="$v(t) = s'(t) = -t^2 + 12t$ lớn nhất tại $t = 6 \\in [0; 9]$: $v(6) = 36$.",
    ),
    multiple(
        "HS-11",
        "ham-so",
        4,
        "Cho hàm số $f(x) = x^4 - 2x^2$. Chọn **tất cả** các khẳng định đúng.",
        [
            "Hàm số có ba điểm cực trị.",
            "Giá trị cực đại của hàm số bằng $0$.",
            "Hàm số đồng biến trên khoảng $(0; 1)$.",
            "Giá trị nhỏ nhất của hàm số trên $\\mathbb{R}$ bằng $-1$.",
            "Đồ thị hàm số cắt trục hoành tại đúng hai điểm.",
        ],
        "ABD",
        explanation=(
            "$f'(x) = 4x(x^2 - 1)$ đổi dấu tại $-1, 0, 1$; $f(0) = 0$ là cực đại,"
            " $f(\\pm 1) = -1$; $f(x) = (x^2 - 1)^2 - 1 \\ge -1$. Trên $(0; 1)$,"
            " $f'(x) < 0$. $f(x) = 0 \\Leftrightarrow x \\in \\{0; \\pm\\sqrt{2}\\}$: ba giao điểm."
        ),
    ),
    essay(
        "HS-12",
        "ham-so",
        4,
        "Tìm tất cả các giá trị của tham số $m$ để phương trình $x^3 - 3x + m = 0$ có ba"
        " nghiệm thực phân biệt. Trình bày lời giải.",
        "Phương trình tương đương $x^3 - 3x = -m$. Hàm $g(x) = x^3 - 3x$ có"
        " $g'(x) = 3x^2 - 3$, đạt cực đại $g(-1) = 2$ và cực tiểu $g(1) = -2$. Đường thẳng"
        " $y = -m$ cắt đồ thị $g$ tại ba điểm khi $-2 < -m < 2$, tức là $-2 < m < 2$.",
    ),
    single(
        "HS-13",
        "ham-so",
        2,
        f"Đường cong trong hình bên là đồ thị của hàm số nào dưới đây?\n\n![Đồ thị]({GRAPH})",
        ["$y = x^3 - 3x$", "$y = -x^3 + 3x$", "$y = x^4 - 2x^2$", "$y = x^2 - 3$"],
        media=(GRAPH,),
        explanation=(
            "Đồ thị đi lên ở bên phải (hệ số của $x^3$ dương), đi qua gốc tọa độ và có"
            " hai cực trị tại $x = \\pm 1$ với giá trị $\\pm 2$."
        ),
    ),
]

# ---------------------------------------------------------------- Toán: mũ và logarit

MU_LOGARIT = [
    single(
        "ML-01",
        "mu-logarit",
        1,
        "Với $a$ là số thực dương tùy ý, $\\log_2(8a)$ bằng",
        ["$3 + \\log_2 a$", "$3\\log_2 a$", "$8 + \\log_2 a$", "$8\\log_2 a$"],
    ),
    single(
        "ML-02",
        "mu-logarit",
        1,
        "Tập xác định của hàm số $y = \\log_3(x - 2)$ là",
        ["$(2; +\\infty)$", "$[2; +\\infty)$", "$(-\\infty; 2)$", "$\\mathbb{R}$"],
    ),
    single(
        "ML-03",
        "mu-logarit",
        1,
        "Nghiệm của phương trình $2^x = 16$ là",
        ["$x = 4$", "$x = 8$", "$x = 3$", "$x = 2$"],
    ),
    single(
        "ML-04",
        "mu-logarit",
        2,
        "Nghiệm của phương trình $\\log_2(x + 1) = 3$ là",
        ["$x = 7$", "$x = 8$", "$x = 9$", "$x = 5$"],
        explanation="$x + 1 = 2^3 = 8$.",
    ),
    single(
        "ML-05",
        "mu-logarit",
        2,
        "Tập nghiệm của bất phương trình $\\left(\\frac{1}{2}\\right)^x > 4$ là",
        ["$(-\\infty; -2)$", "$(-2; +\\infty)$", "$(-\\infty; 2)$", "$(2; +\\infty)$"],
        explanation=(
            "$\\left(\\frac{1}{2}\\right)^x > \\left(\\frac{1}{2}\\right)^{-2}$ và cơ số nhỏ hơn $1$ nên $x < -2$."
        ),
    ),
    truefalse4(
        "ML-06",
        "mu-logarit",
        2,
        "Cho các số thực dương $a$, $b$ thỏa mãn $\\log_2 a = 3$ và $\\log_2 b = 5$.",
        [
            ("$a = 8$.", True),
            ("$\\log_2(ab) = 15$.", False),
            ("$\\log_2 \\frac{b}{a} = 2$.", True),
            ("$\\log_a b = \\frac{3}{5}$.", False),
        ],
        explanation=("$\\log_2(ab) = 3 + 5 = 8$ và $\\log_a b = \\frac{\\log_2 b}{\\log_2 a} = \\frac{5}{3}$."),
    ),
    single(
        "ML-07",
        "mu-logarit",
        3,
        "Tổng các nghiệm của phương trình $4^x - 5 \\cdot 2^x + 4 = 0$ bằng",
        ["$2$", "$5$", "$4$", "$0$"],
        explanation=(
            "Đặt $t = 2^x > 0$: $t^2 - 5t + 4 = 0 \\Leftrightarrow t \\in \\{1; 4\\}$, nên $x \\in \\{0; 2\\}$."
        ),
    ),
    short(
        "ML-08",
        "mu-logarit",
        3,
        "Một người gửi $100$ triệu đồng vào ngân hàng với lãi suất $6\\%$/năm theo hình thức"
        " lãi kép (lãi hằng năm được nhập vào vốn). Sau ít nhất bao nhiêu năm thì số tiền"
        " cả vốn lẫn lãi không ít hơn $150$ triệu đồng?",
        "7",
        explanation=(
            "$1{,}06^n \\ge 1{,}5 \\Leftrightarrow n \\ge \\log_{1{,}06} 1{,}5 \\approx"
            " 6{,}96$; $1{,}06^6 \\approx 1{,}419$, $1{,}06^7 \\approx 1{,}504$."
        ),
    ),
    truefalse4(
        "ML-09",
        "mu-logarit",
        3,
        "Cho phương trình $(\\log_2 x)^2 - 4\\log_2 x + 3 = 0$.",
        [
            ("Điều kiện xác định của phương trình là $x > 0$.", True),
            ("Đặt $t = \\log_2 x$, phương trình trở thành $t^2 - 4t + 3 = 0$.", True),
            ("Phương trình có hai nghiệm là $x = 1$ và $x = 3$.", False),
            ("Tích các nghiệm của phương trình bằng $16$.", True),
        ],
        explanation="$t \\in \\{1; 3\\}$ nên $x \\in \\{2; 8\\}$ và $2 \\cdot 8 = 16$.",
    ),
    short(
        "ML-10",
        "mu-logarit",
        4,
        "Có bao nhiêu số nguyên $x$ thỏa mãn $(3^x - 27)(\\log_2 x - 4) \\le 0$?",
        "14",
        explanation=(
            "Điều kiện $x > 0$. $3^x - 27 \\ge 0 \\Leftrightarrow x \\ge 3$ và"
            " $\\log_2 x - 4 \\ge 0 \\Leftrightarrow x \\ge 16$. Tích không dương khi"
            " $3 \\le x \\le 16$ (trên $(0; 3)$ cả hai thừa số âm, trên $(16; +\\infty)$ cả"
            " hai dương): có $14$ số nguyên."
        ),
    ),
    multiple(
        "ML-11",
        "mu-logarit",
        4,
        "Cho hàm số $f(x) = 2^x - 2^{-x}$. Chọn **tất cả** các khẳng định đúng.",
        [
            "$f$ là hàm số lẻ.",
            "$f$ đồng biến trên $\\mathbb{R}$.",
            "$f(1) = \\frac{3}{2}$.",
            "Phương trình $f(x) = 0$ có hai nghiệm phân biệt.",
            "Bất phương trình $f(x) > 0$ có tập nghiệm $(-\\infty; 0)$.",
        ],
        "ABC",
        explanation=(
            "$f(-x) = -f(x)$; $f'(x) = (2^x + 2^{-x})\\ln 2 > 0$; $f(1) = 2 - \\frac{1}{2}$."
            " $f(x) = 0 \\Leftrightarrow x = 0$, và $f(x) > 0 \\Leftrightarrow x > 0$."
        ),
    ),
    essay(
        "ML-12",
        "mu-logarit",
        4,
        "Giải bất phương trình $\\log_{\\frac{1}{2}}(x^2 - 3x + 2) \\ge -1$.",
        "Điều kiện: $x^2 - 3x + 2 > 0 \\Leftrightarrow x < 1$ hoặc $x > 2$. Vì cơ số"
        " $\\frac{1}{2} < 1$, bất phương trình tương đương $x^2 - 3x + 2 \\le 2"
        " \\Leftrightarrow 0 \\le x \\le 3$. Kết hợp điều kiện: $S = [0; 1) \\cup (2; 3]$.",
    ),
]

# ---------------------------------------------------------------- Toán: nguyên hàm, tích phân

TICH_PHAN = [
    single(
        "TP-01",
        "nguyen-ham-tich-phan",
        1,
        "Họ nguyên hàm của hàm số $f(x) = 3x^2$ là",
        ["$x^3 + C$", "$6x + C$", "$3x^3 + C$", "$\\frac{x^3}{3} + C$"],
    ),
    single(
        "TP-02",
        "nguyen-ham-tich-phan",
        1,
        "$\\int \\cos x \\, dx$ bằng",
        ["$\\sin x + C$", "$-\\sin x + C$", "$\\cos x + C$", "$-\\cos x + C$"],
    ),
    single(
        "TP-03",
        "nguyen-ham-tich-phan",
        1,
        "Nếu $\\int_1^3 f(x)\\,dx = 5$ thì $\\int_1^3 2f(x)\\,dx$ bằng",
        ["$10$", "$7$", "$5$", "$\\frac{5}{2}$"],
    ),
    single(
        "TP-04",
        "nguyen-ham-tich-phan",
        2,
        "$\\int_0^1 (2x + 1)\\,dx$ bằng",
        ["$2$", "$1$", "$3$", "$\\frac{3}{2}$"],
        explanation="$\\left[x^2 + x\\right]_0^1 = 2$.",
    ),
    single(
        "TP-05",
        "nguyen-ham-tich-phan",
        2,
        "Diện tích hình phẳng giới hạn bởi đồ thị hàm số $y = x^2$, trục hoành và hai đường"
        " thẳng $x = 0$, $x = 3$ bằng",
        ["$9$", "$27$", "$3$", "$6$"],
        explanation="$S = \\int_0^3 x^2\\,dx = \\frac{27}{3} = 9$.",
    ),
    truefalse4(
        "TP-06",
        "nguyen-ham-tich-phan",
        2,
        "Cho hàm số $f(x) = e^x + 2x$.",
        [
            ("$f'(x) = e^x + 2$.", True),
            ("$F(x) = e^x + x^2$ là một nguyên hàm của $f(x)$.", True),
            ("$\\int_0^1 f(x)\\,dx = e$.", True),
            ("Nguyên hàm $F(x)$ của $f(x)$ thỏa mãn $F(0) = 3$ là $F(x) = e^x + x^2 + 3$.", False),
        ],
        explanation=(
            "$\\int_0^1 f(x)\\,dx = \\left[e^x + x^2\\right]_0^1 = e + 1 - 1 = e$."
            " $F(x) = e^x + x^2 + C$ với $F(0) = 1 + C = 3$ nên $C = 2$."
        ),
    ),
    single(
        "TP-07",
        "nguyen-ham-tich-phan",
        3,
        "Cho $\\int_0^2 f(x)\\,dx = 3$ và $\\int_0^2 g(x)\\,dx = -1$. Giá trị của"
        " $\\int_0^2 \\left[f(x) - 2g(x) + x\\right]dx$ bằng",
        ["$7$", "$5$", "$3$", "$6$"],
        explanation="$3 - 2 \\cdot (-1) + \\int_0^2 x\\,dx = 3 + 2 + 2 = 7$.",
    ),
    short(
        "TP-08",
        "nguyen-ham-tich-phan",
        3,
        "Tính $I = \\int_1^e \\frac{\\ln x}{x}\\,dx$ (viết kết quả dưới dạng số thập phân).",
        "0,5",
        explanation="Đặt $t = \\ln x$: $I = \\int_0^1 t\\,dt = \\frac{1}{2}$.",
    ),
    truefalse4(
        "TP-09",
        "nguyen-ham-tich-phan",
        3,
        "Một ô tô đang chạy với vận tốc $20$ m/s thì người lái đạp phanh; từ đó ô tô chuyển"
        " động chậm dần đều với vận tốc $v(t) = 20 - 5t$ (m/s), trong đó $t$ (giây) là thời"
        " gian tính từ lúc đạp phanh.",
        [
            ("Ô tô dừng hẳn sau $4$ giây kể từ lúc đạp phanh.", True),
            (
                ("Quãng đường ô tô đi được từ lúc đạp phanh đến khi dừng là $\\int_0^4 (20 - 5t)\\,dt$."),
                True,
            ),
            ("Quãng đường đó bằng $80$ m.", False),
            ("Trong giây đầu tiên sau khi đạp phanh, ô tô đi được $17{,}5$ m.", True),
        ],
        explanation=(
            "$v(t) = 0 \\Leftrightarrow t = 4$. $\\int_0^4 (20 - 5t)\\,dt = 80 - 40 = 40$ m;"
            " $\\int_0^1 (20 - 5t)\\,dt = 20 - 2{,}5 = 17{,}5$ m."
        ),
    ),
    short(
        "TP-10",
        "nguyen-ham-tich-phan",
        4,
        "Một cổng có dạng một parabol, chân cổng rộng $4$ m và đỉnh cổng cao $4$ m so với mặt"
        " đất. Diện tích mặt cổng bằng bao nhiêu mét vuông (làm tròn đến hàng phần mười)?",
        "10,7",
        explanation=(
            "Chọn hệ trục có gốc ở trung điểm chân cổng: $y = 4 - x^2$, $-2 \\le x \\le 2$."
            " $S = \\int_{-2}^{2} (4 - x^2)\\,dx = 16 -"
            " \\frac{16}{3} = \\frac{32}{3} \\approx 10{,}67$."
        ),
    ),
    multiple(
        "TP-11",
        "nguyen-ham-tich-phan",
        4,
        "Cho hàm số $f(x)$ có đạo hàm liên tục trên $[0; 1]$, $f(1) = 2$ và"
        " $\\int_0^1 f(x)\\,dx = 1$. Chọn **tất cả** các khẳng định đúng.",
        [
            "$\\int_0^1 2f(x)\\,dx = 1$",
            "$\\int_0^1 x f'(x)\\,dx = 1$",
            "$\\int_0^1 f(1 - x)\\,dx = 1$",
            "$\\int_0^1 \\left[f(x) + 1\\right]dx = 2$",
        ],
        "BCD",
        explanation=(
            "Từng phần: $\\int_0^1 x f'(x)\\,dx = \\left[x f(x)\\right]_0^1 - \\int_0^1 f(x)\\,dx"
            " = 2 - 1 = 1$. Đổi biến $t = 1 - x$ cho"
            " $\\int_0^1 f(1 - x)\\,dx = \\int_0^1 f(t)\\,dt$."
            " Còn $\\int_0^1 2f(x)\\,dx = 2$."
        ),
    ),
    essay(
        "TP-12",
        "nguyen-ham-tich-phan",
        4,
        "Tính thể tích khối tròn xoay tạo thành khi quay hình phẳng giới hạn bởi các đường"
        " $y = \\sqrt{x}$, $y = 0$, $x = 4$ quanh trục $Ox$.",
        ("$V = \\pi \\int_0^4 (\\sqrt{x})^2\\,dx = \\pi \\int_0^4 x\\,dx = \\pi \\cdot \\frac{16}{2} = 8\\pi$."),
    ),
]

# ---------------------------------------------------------------- Toán: tọa độ Oxyz

OXYZ = [
    single(
        "OX-01",
        "toa-do-oxyz",
        1,
        "Trong không gian $Oxyz$, cho $\\vec{a} = (1; 2; -3)$. Tọa độ của vectơ $2\\vec{a}$ là",
        ["$(2; 4; -6)$", "$(3; 4; -1)$", "$(2; 4; 6)$", "$(1; 4; -6)$"],
    ),
    single(
        "OX-02",
        "toa-do-oxyz",
        1,
        "Trong không gian $Oxyz$, mặt cầu $(S): (x - 1)^2 + (y + 2)^2 + z^2 = 9$ có tâm là",
        ["$I(1; -2; 0)$", "$I(-1; 2; 0)$", "$I(1; 2; 0)$", "$I(1; -2; 9)$"],
    ),
    single(
        "OX-03",
        "toa-do-oxyz",
        1,
        "Trong không gian $Oxyz$, mặt phẳng $(P): 2x - y + 3z - 1 = 0$ có một vectơ pháp tuyến là",
        [
            "$\\vec{n} = (2; -1; 3)$",
            "$\\vec{n} = (2; 1; 3)$",
            "$\\vec{n} = (2; -1; -1)$",
            "$\\vec{n} = (-1; 3; -1)$",
        ],
    ),
    single(
        "OX-04",
        "toa-do-oxyz",
        2,
        "Trong không gian $Oxyz$, cho hai điểm $A(1; 2; 3)$ và $B(3; 0; -1)$. Trung điểm của"
        " đoạn thẳng $AB$ có tọa độ là",
        ["$(2; 1; 1)$", "$(4; 2; 2)$", "$(1; -1; -2)$", "$(2; 2; 2)$"],
    ),
    single(
        "OX-05",
        "toa-do-oxyz",
        2,
        "Trong không gian $Oxyz$, khoảng cách từ điểm $M(1; 2; 3)$ đến mặt phẳng $(P): 2x + 2y - z + 6 = 0$ bằng",
        ["$3$", "$9$", "$1$", "$2$"],
        explanation="$d = \\frac{|2 + 4 - 3 + 6|}{\\sqrt{4 + 4 + 1}} = \\frac{9}{3} = 3$.",
    ),
    truefalse4(
        "OX-06",
        "toa-do-oxyz",
        2,
        "Trong không gian $Oxyz$, cho ba điểm $A(1; 0; 0)$, $B(0; 2; 0)$, $C(0; 0; 3)$.",
        [
            ("$\\overrightarrow{AB} = (-1; 2; 0)$.", True),
            (
                ("Mặt phẳng $(ABC)$ có phương trình $\\frac{x}{1} + \\frac{y}{2} + \\frac{z}{3} = 1$."),
                True,
            ),
            ("Điểm $M(1; 2; 3)$ thuộc mặt phẳng $(ABC)$.", False),
            ("$\\overrightarrow{AB} \\cdot \\overrightarrow{AC} = 1$.", True),
        ],
        explanation=(
            "$\\frac{1}{1} + \\frac{2}{2} + \\frac{3}{3} = 3 \\ne 1$."
            " $\\overrightarrow{AC} = (-1; 0; 3)$ nên tích vô hướng bằng $1 + 0 + 0 = 1$."
        ),
    ),
    single(
        "OX-07",
        "toa-do-oxyz",
        3,
        "Trong không gian $Oxyz$, mặt phẳng đi qua $M(1; -1; 2)$ và vuông góc với đường thẳng"
        " $d: \\frac{x - 1}{2} = \\frac{y}{-1} = \\frac{z + 1}{3}$ có phương trình là",
        [
            "$2x - y + 3z - 9 = 0$",
            "$2x - y + 3z + 9 = 0$",
            "$x - y + 2z - 6 = 0$",
            "$2x - y + 3z - 1 = 0$",
        ],
        explanation="Vectơ pháp tuyến $(2; -1; 3)$: $2(x - 1) - (y + 1) + 3(z - 2) = 0$.",
    ),
    short(
        "OX-08",
        "toa-do-oxyz",
        3,
        "Trong không gian $Oxyz$, cho mặt cầu $(S): x^2 + y^2 + z^2 - 2x + 4y - 4z - 16 = 0$."
        " Bán kính của $(S)$ bằng bao nhiêu?",
        "5",
        explanation="Tâm $I(1; -2; 2)$, $R = \\sqrt{1 + 4 + 4 + 16} = 5$.",
    ),
    truefalse4(
        "OX-09",
        "toa-do-oxyz",
        3,
        "Trong không gian $Oxyz$, cho đường thẳng"
        " $d: \\begin{cases} x = 1 + t \\\\ y = 2 - t \\\\ z = 3 + 2t \\end{cases}$"
        " và mặt phẳng $(P): x + y + z - 3 = 0$.",
        [
            ("$d$ có một vectơ chỉ phương là $\\vec{u} = (1; -1; 2)$.", True),
            ("Điểm $A(1; 2; 3)$ thuộc $d$.", True),
            ("$d$ song song với $(P)$.", False),
            ("$d$ cắt $(P)$ tại điểm có hoành độ bằng $-\\frac{1}{2}$.", True),
        ],
        explanation=(
            "$\\vec{u} \\cdot \\vec{n} = 1 - 1 + 2 = 2 \\ne 0$ nên $d$ cắt $(P)$."
            " Thay vào: $(1 + t) + (2 - t) + (3 + 2t) - 3 = 0 \\Leftrightarrow t = -\\frac{3}{2}$,"
            " hoành độ $1 - \\frac{3}{2} = -\\frac{1}{2}$."
        ),
    ),
    short(
        "OX-10",
        "toa-do-oxyz",
        4,
        "Trong không gian $Oxyz$ (đơn vị: mét), một flycam bay thẳng từ $A(-4; 3; 5)$ đến"
        " $B(4; 3; 5)$. Một trạm quan sát đặt tại gốc $O$. Trên quãng đường $AB$, khoảng cách"
        " ngắn nhất từ trạm đến flycam là bao nhiêu mét (làm tròn đến hàng phần mười)?",
        "5,8",
        explanation=(
            "Điểm trên $AB$ là $M(x; 3; 5)$ với $-4 \\le x \\le 4$;"
            " $OM = \\sqrt{x^2 + 34}$ nhỏ nhất tại $x = 0$: $\\sqrt{34} \\approx 5{,}83$."
        ),
    ),
    multiple(
        "OX-11",
        "toa-do-oxyz",
        4,
        "Trong không gian $Oxyz$, cho mặt cầu $(S): (x - 1)^2 + (y - 1)^2 + (z - 1)^2 = 9$ và"
        " mặt phẳng $(P): 2x + y + 2z + 4 = 0$. Chọn **tất cả** các khẳng định đúng.",
        [
            "$(P)$ tiếp xúc với $(S)$.",
            "Khoảng cách từ tâm $I$ của $(S)$ đến $(P)$ bằng $3$.",
            "$(P)$ cắt $(S)$ theo một đường tròn bán kính $3$.",
            "Gốc tọa độ $O$ nằm trong mặt cầu $(S)$.",
            "Tiếp điểm của $(P)$ và $(S)$ là $H(3; 2; 3)$.",
        ],
        "ABD",
        explanation=(
            "$d(I, (P)) = \\frac{|2 + 1 + 2 + 4|}{3} = 3 = R$ nên $(P)$ tiếp xúc $(S)$ tại"
            " $H = I - \\frac{3}{3}(2; 1; 2) = (-1; 0; -1)$. $OI^2 = 3 < 9$."
        ),
    ),
    essay(
        "OX-12",
        "toa-do-oxyz",
        4,
        "Trong không gian $Oxyz$, cho $A(1; 2; -1)$ và $B(3; 0; 3)$. Viết phương trình mặt"
        " phẳng trung trực của đoạn $AB$ và tính khoảng cách từ $O$ đến mặt phẳng đó.",
        "Trung điểm $I(2; 1; 1)$, $\\overrightarrow{AB} = (2; -2; 4)$ cùng phương $(1; -1; 2)$:"
        " $(x - 2) - (y - 1) + 2(z - 1) = 0 \\Leftrightarrow x - y + 2z - 3 = 0$."
        " $d(O) = \\frac{3}{\\sqrt{6}} = \\frac{\\sqrt{6}}{2}$.",
    ),
]

# ---------------------------------------------------------------- Vật lí 12

VAT_LI = [
    single(
        "VL-01",
        "vat-li-nhiet",
        1,
        "Nhiệt độ $27$ °C tương ứng với bao nhiêu kelvin (lấy $T = t + 273$)?",
        ["$300$ K", "$246$ K", "$273$ K", "$327$ K"],
    ),
    single(
        "VL-02",
        "vat-li-nhiet",
        2,
        "Cần cung cấp bao nhiêu nhiệt lượng để đun nóng $2$ kg nước từ $20$ °C lên $70$ °C?"
        " Biết nhiệt dung riêng của nước là $4200$ J/(kg·K).",
        ["$420$ kJ", "$210$ kJ", "$588$ kJ", "$168$ kJ"],
        explanation="$Q = mc\\Delta t = 2 \\cdot 4200 \\cdot 50 = 420\\,000$ J.",
    ),
    multiple(
        "VL-03",
        "vat-li-nhiet",
        3,
        "Chọn **tất cả** các phát biểu đúng về nội năng.",
        [
            "Nội năng của một vật là tổng động năng và thế năng của các phân tử cấu tạo nên vật.",
            "Có thể làm thay đổi nội năng bằng cách thực hiện công hoặc truyền nhiệt.",
            "Nội năng của một lượng khí lí tưởng chỉ phụ thuộc vào nhiệt độ của nó.",
            "Vật có nhiệt độ cao hơn luôn có nội năng lớn hơn, bất kể khối lượng.",
        ],
        "ABC",
    ),
    short(
        "VL-04",
        "vat-li-nhiet",
        4,
        "Thả một miếng đồng khối lượng $0{,}5$ kg ở $100$ °C vào $2$ kg nước ở $20$ °C. Bỏ qua"
        " trao đổi nhiệt với bình và môi trường; nhiệt dung riêng của đồng là $380$ J/(kg·K),"
        " của nước là $4200$ J/(kg·K). Nhiệt độ khi cân bằng nhiệt là bao nhiêu °C (làm tròn"
        " đến hàng đơn vị)?",
        "22",
        points="0.25",
        explanation=(
            "$0{,}5 \\cdot 380 \\cdot (100 - t) = 2 \\cdot 4200 \\cdot (t - 20)"
            " \\Leftrightarrow 8590t = 187\\,000 \\Leftrightarrow t \\approx 21{,}8$ °C."
        ),
    ),
    truefalse4(
        "VL-05",
        "khi-ly-tuong",
        2,
        "Một lượng khí lí tưởng được giữ ở nhiệt độ không đổi.",
        [
            ("Áp suất của khí tỉ lệ nghịch với thể tích của nó.", True),
            ("Khi thể tích giảm một nửa thì áp suất tăng gấp đôi.", True),
            ("Tích $pV$ tăng khi nén khí.", False),
            ("Đường đẳng nhiệt trong hệ tọa độ $(V, p)$ là đường thẳng đi qua gốc tọa độ.", False),
        ],
        explanation="Định luật Boyle: $pV$ không đổi; đường đẳng nhiệt là một nhánh hypebol.",
    ),
    short(
        "VL-06",
        "khi-ly-tuong",
        3,
        "Một khối khí lí tưởng có thể tích $6$ lít ở áp suất $1$ atm. Nén đẳng nhiệt đến khi"
        " áp suất bằng $4$ atm. Thể tích của khí lúc đó là bao nhiêu lít?",
        "1,5",
        points="0.25",
        explanation="$V_2 = \\frac{p_1 V_1}{p_2} = \\frac{6}{4} = 1{,}5$ lít.",
    ),
    single(
        "VL-07",
        "khi-ly-tuong",
        3,
        "Một bình kín chứa khí lí tưởng ở $27$ °C và áp suất $2 \\cdot 10^5$ Pa. Nung nóng đẳng"
        " tích đến $127$ °C thì áp suất của khí xấp xỉ bằng",
        [
            "$2{,}67 \\cdot 10^5$ Pa",
            "$9{,}41 \\cdot 10^5$ Pa",
            "$1{,}50 \\cdot 10^5$ Pa",
            "$4{,}00 \\cdot 10^5$ Pa",
        ],
        explanation=(
            "$p_2 = p_1 \\frac{T_2}{T_1} = 2 \\cdot 10^5 \\cdot \\frac{400}{300} \\approx 2{,}67 \\cdot 10^5$ Pa."
        ),
    ),
    essay(
        "VL-08",
        "khi-ly-tuong",
        4,
        "Giải thích vì sao lốp xe bơm quá căng dễ bị nổ khi để lâu ngoài nắng gắt. Ước tính áp"
        " suất trong lốp khi nhiệt độ khí tăng từ $27$ °C lên $57$ °C, biết lúc đầu áp suất là"
        " $3$ bar và thể tích lốp coi như không đổi.",
        "Thể tích lốp gần như không đổi nên áp suất tỉ lệ với nhiệt độ tuyệt đối (định luật"
        " Charles): $p_2 = p_1 \\frac{T_2}{T_1} = 3 \\cdot \\frac{330}{300} = 3{,}3$ bar, tăng"
        " $10\\%$. Nếu lốp đã căng sát giới hạn chịu đựng, mức tăng này có thể làm lốp nổ.",
    ),
]

# ---------------------------------------------------------------- English

ENGLISH = [
    single(
        "EN-01",
        "grammar",
        1,
        "Choose the word that best completes the sentence: *She ___ to school by bus every day.*",
        ["goes", "go", "is go", "going"],
    ),
    single(
        "EN-02",
        "grammar",
        2,
        "Choose the best answer: *If I ___ you, I would accept the offer.*",
        ["were", "am", "will be", "have been"],
        explanation="Second conditional: *If + past simple, would + verb*; *were* for all persons.",
    ),
    single(
        "EN-03",
        "vocabulary",
        2,
        "Choose the word closest in meaning to **enormous**.",
        ["huge", "tiny", "ordinary", "fragile"],
    ),
    multiple(
        "EN-04",
        "vocabulary",
        3,
        "Choose **all** the words that can mean *happy*.",
        ["cheerful", "delighted", "gloomy", "content", "anxious"],
        "ABD",
    ),
    _item(
        "EN-05",
        ItemType.SHORT,
        "grammar",
        3,
        "0.25",
        "Write the past participle of the verb *write*.",
        answer=ShortKey("written", ShortFormat.TEXT),
    ),
    truefalse4(
        "EN-06",
        "reading",
        3,
        "Read the passage and decide whether each statement is true or false.\n\n"
        "> Hoi An is an ancient town in Quang Nam Province, Vietnam. It was an important"
        " trading port from the 15th to the 19th century. In 1999 it was recognised as a"
        " UNESCO World Heritage Site. Today visitors come to see its old houses, its"
        " lantern-lit streets and the Japanese Covered Bridge.",
        [
            ("Hoi An is in Quang Nam Province.", True),
            ("Hoi An was a trading port only in the 20th century.", False),
            ("Hoi An became a UNESCO World Heritage Site in 1999.", True),
            ("According to the passage, none of Hoi An's old houses remain.", False),
        ],
    ),
    essay(
        "EN-07",
        "writing",
        4,
        "Write a paragraph of about 120 words on the benefits and risks of studying online.",
        "Scoring guide: task achievement (2), organisation (2), vocabulary (3), grammar (3);"
        " the total is scaled to the item's points.",
    ),
]

ITEMS: tuple[Item, ...] = (*HAM_SO, *MU_LOGARIT, *TICH_PHAN, *OXYZ, *VAT_LI, *ENGLISH)


def graph_svg() -> str:
    """The graph of y = x^3 - 3x on [-2.2, 2.2], for item HS-13."""
    scale, cx, cy = 40, 120, 130
    points = []
    for i in range(89):
        x = -2.2 + i * 0.05
        y = x**3 - 3 * x
        points.append(f"{cx + x * scale:.1f},{cy - y * scale:.1f}")
    ticks = "".join(
        f'<line x1="{cx + k * scale}" y1="{cy - 3}" x2="{cx + k * scale}" y2="{cy + 3}"/>'
        f'<text x="{cx + k * scale - 4}" y="{cy + 16}">{k}</text>'
        for k in (-2, -1, 1, 2)
    )
    peak = math.floor(cy - 2 * scale)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="260"'
        ' viewBox="0 0 240 260" font-family="sans-serif" font-size="12">\n'
        f'<g stroke="#444"><line x1="0" y1="{cy}" x2="240" y2="{cy}"/>'
        f'<line x1="{cx}" y1="0" x2="{cx}" y2="260"/>{ticks}</g>\n'
        f'<text x="228" y="{cy - 6}">x</text><text x="{cx + 6}" y="12">y</text>\n'
        f'<text x="{cx + 4}" y="{peak + 4}">2</text>'
        f'<line x1="{cx - 3}" y1="{peak}" x2="{cx + 3}" y2="{peak}" stroke="#444"/>\n'
        f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{" ".join(points)}"/>\n'
        "</svg>\n"
    )


def write_demo_bank(folder: Path) -> int:
    """Write the demo release (unsigned) into `folder`; returns the item count.

    Math and physics items get one file each; the English items share one
    file, to show the list form.
    """
    (folder / "items").mkdir(parents=True, exist_ok=True)
    (folder / "media").mkdir(exist_ok=True)
    (folder / "bank.yaml").write_text(serialise_bank_info(BANK), encoding="utf-8")
    for item in ITEMS:
        if item.subject != "tieng-anh":
            path = folder / "items" / f"{item.id.lower()}.yaml"
            path.write_text(serialise_item(item), encoding="utf-8")
    english = [item for item in ITEMS if item.subject == "tieng-anh"]
    (folder / "items" / "tieng-anh.yaml").write_text(serialise_items(english), encoding="utf-8")
    (folder / GRAPH).write_text(graph_svg(), encoding="utf-8")
    return len(ITEMS)
