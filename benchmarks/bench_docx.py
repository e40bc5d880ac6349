"""Importing a 200-question Word file (target: under 5 s).

    .venv/bin/python benchmarks/bench_docx.py [--questions 200] [--runs 7]

The file is built with python-docx as the tests build theirs (and as Word
writes them): a Part I of single-choice questions (keys underlined, red or
bold, all option letters bold as many teachers write them, an equation in
every stem and in every option, a picture in one question of ten, a table
in another, a worked solution with an equation in each), a Part II of
true/false-4 questions (true statements underlined), a Part III of short
answers (``Đáp án: -1,5``), and an answer table at the end giving the keys
of one Part I question in five. It prints the file's size, then the median
(and range) of several runs of `parse_docx` (and the first run's time, before the
renderer's formula cache is warm), and of the part of it that
reads the document (`wordml.read_document`, pandoc's one run over the
equations included); every run must give every question as an item.
"""

from __future__ import annotations

import argparse
import io
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import docx  # noqa: E402
from docx.oxml import parse_xml  # noqa: E402
from docx.shared import RGBColor  # noqa: E402

from itembank.formats import wordml  # noqa: E402
from itembank.formats.docx import WARNINGS, parse_docx  # noqa: E402
from itembank.formats.imported import ImportDefaults  # noqa: E402

M = "http://schemas.openxmlformats.org/officeDocument/2006/math"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def png(seed: int) -> bytes:
    """An 8x8 PNG, different for each seed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes((seed * 7 + x * 3 + y) % 256 for x in range(24)) for y in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def mr(text: str) -> str:
    return f'<m:r><w:rPr><w:rFonts w:ascii="Cambria Math" w:hAnsi="Cambria Math"/></w:rPr><m:t>{text}</m:t></m:r>'


def equation(paragraph, n: int) -> None:
    inner = (
        f"<m:f><m:num>{mr(str(n))}</m:num><m:den>{mr('x+1')}</m:den></m:f>"
        f"<m:sSup><m:e>{mr('x')}</m:e><m:sup>{mr(str(n % 5 + 2))}</m:sup></m:sSup>"
        f'<m:rad><m:radPr><m:degHide m:val="1"/></m:radPr><m:deg/><m:e>{mr(str(n))}</m:e></m:rad>'
    )
    paragraph._p.append(parse_xml(f'<m:oMath xmlns:m="{M}" xmlns:w="{W}">{inner}</m:oMath>'))


def build(questions: int) -> bytes:
    d = docx.Document()
    d.add_paragraph("SỞ GIÁO DỤC VÀ ĐÀO TẠO — ĐỀ THI THỬ")
    part1, part2 = questions * 3 // 5, questions * 4 // 5
    in_table: dict[int, str] = {}
    d.add_paragraph().add_run("PHẦN I. Trắc nghiệm nhiều phương án lựa chọn.").bold = True
    for n in range(1, part1 + 1):
        stem = d.add_paragraph()
        stem.add_run(f"Câu {n}.").bold = True
        stem.add_run(" Giá trị của biểu thức ")
        equation(stem, n)
        stem.add_run(" bằng bao nhiêu khi x thoả mãn điều kiện của đề bài?")
        if n % 10 == 3:
            d.add_paragraph().add_run().add_picture(io.BytesIO(png(n)))
        if n % 10 == 7:
            table = d.add_table(rows=2, cols=4)
            for c in range(4):
                table.cell(0, c).text = f"x{c}"
                table.cell(1, c).text = str(n + c)
        key = "ABCD"[n % 4]
        options = d.add_paragraph()
        for letter in "ABCD":
            label = options.add_run(f"{letter}.")
            label.bold = True
            if n % 5 != 0 and letter == key:
                if n % 3 == 0:
                    label.underline = True
                else:
                    label.font.color.rgb = RGBColor(0xFF, 0, 0)
            options.add_run(" ")
            equation(options, n * 4 + ord(letter))
            options.add_run("\t")
        if n % 5 == 0:
            in_table[n] = key
        d.add_paragraph("Lời giải")
        solution = d.add_paragraph("Ta có ")
        equation(solution, n + 1)
        solution.add_run(f" nên chọn {key}.")
    d.add_paragraph().add_run("PHẦN II. Trắc nghiệm đúng sai.").bold = True
    for n in range(1, part2 - part1 + 1):
        d.add_paragraph(f"Câu {n}. Cho hàm số bậc {n % 3 + 2}. Xét các mệnh đề sau.")
        for i, letter in enumerate("abcd"):
            statement = d.add_paragraph()
            statement.add_run(f"{letter})").underline = (n + i) % 2 == 0
            statement.add_run(f" Mệnh đề thứ {i + 1} về hàm số số {n}.")
    d.add_paragraph().add_run("PHẦN III. Trắc nghiệm trả lời ngắn.").bold = True
    for n in range(1, questions - part2 + 1):
        stem = d.add_paragraph(f"Câu {n}. Tính giá trị của ")
        equation(stem, n)
        d.add_paragraph(f"Đáp án: -{n % 9 + 1},5")
    d.add_paragraph().add_run("BẢNG ĐÁP ÁN").bold = True
    d.add_paragraph("PHẦN I")
    d.add_paragraph("  ".join(f"{n}-{key}" for n, key in in_table.items()))
    buffer = io.BytesIO()
    d.save(buffer)
    return buffer.getvalue()


def timed(function, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    data = build(args.questions)
    defaults = ImportDefaults(subject="toan", grade=12, id_prefix="bench")
    start = time.perf_counter()
    result = parse_docx(data, "bench.docx", defaults)
    cold = time.perf_counter() - start
    problems = [p for p in result.problems if p.code not in WARNINGS]
    assert not problems, "\n".join(map(str, problems[:10]))
    assert len(result.items) == args.questions, len(result.items)
    document, _ = wordml.read_document(data, "bench.docx")
    assert document is not None
    print(
        f"{args.questions} questions, {len(document.equations)} equations, {len(result.media)} pictures:"
        f" {len(data) / 1024:.0f} KB"
    )
    # The renderer caches each formula's MathML, so later runs check the items faster than the first.
    print(f"parse_docx, first run in this process (formula cache cold): {cold:.2f} s")
    for name, function in (
        ("read the document (wordml, pandoc included)", lambda: wordml.read_document(data, "bench.docx")),
        ("parse_docx (all of it, check_item on each item)", lambda: parse_docx(data, "bench.docx", defaults)),
    ):
        times = timed(function, args.runs)
        print(
            f"{name}: median {statistics.median(times):.2f} s"
            f" (min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)"
        )


if __name__ == "__main__":
    main()
