"""What reading one scanned answer sheet gives: the contract between the
sheet reader (`cbt.paper.omr`) and what records sheets as attempts
(`cbt.paper.intake`), and what a scanner's CSV becomes too.

A sheet has three parts, as the 2025 THPT answer sheet does:

- part 1: one row of bubbles A-D per question (single choice; a
  ``multiple`` question may have several bubbles filled);
- part 2: one row per question, a Đúng/Sai pair for each statement a-d;
- part 3: one grid per question, four columns of ``-``, ``,`` and 0-9.

Rows are numbered 1.. within their part, as printed. Which question of a
form a row answers is `cbt.paper.forms`' business (the k-th question of the
part's types, in the form's order), not the reader's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PART_CHOICE = 1
PART_TRUEFALSE = 2
PART_SHORT = 3

# Why a row (or a sheet) is not certain; the review queue shows the reason.
TWO_MARKS = "two-marks"  # two bubbles where one is allowed
FAINT = "faint"  # a mark lighter than a pencil's fill, darker than paper
ERASED = "erased"  # a rubbed-out mark beside (or instead of) a clear one
BAD_SHORT = "bad-short"  # a part-3 grid that spells no number (e.g. "1-,")


@dataclass(frozen=True)
class RowReading:
    """One printed row as read.

    value: part 1, the letters filled ("B", "AC"; "" none); part 2, a dict
    statement letter -> True (Đúng) / False (Sai) for the statements
    marked; part 3, the characters filled left to right ("-1,5"; "" none).
    certain: False sends the row to the review queue with `reason` and its
    cropped picture (`crop_png`), where a person decides its value.
    """

    part: int
    row: int
    value: str | dict[str, bool]
    certain: bool = True
    reason: str = ""
    crop_png: bytes | None = None


@dataclass(frozen=True)
class SheetReading:
    """One sheet (one image, or one page of a PDF) as read.

    source: the file's name as uploaded (and ", page N" for a PDF's page);
    sha256: of the uploaded file's bytes (the audit chain records it);
    exam_code, form_number, candidate_code: from the QR code, or for a
    blank sheet from its bubbled columns (candidate_code is the số báo
    danh; None where not read); problem: a code (``not-a-sheet``,
    ``cannot-align``, ``qr-invalid`` ...) and `message` when the sheet
    could not be read at all, rows then empty.
    """

    source: str
    sha256: str
    exam_code: str | None = None
    form_number: int | None = None
    candidate_code: str | None = None
    rows: tuple[RowReading, ...] = field(default_factory=tuple)
    problem: str = ""
    message: str = ""
    preprinted: bool = False  # the QR named the candidate (a personalised sheet)


def form_code(form_number: int) -> str:
    """A fixed form's number as paper shows it, the mã đề: three digits ("001"),
    as the test's header prints it and the answer sheet's mã đề columns bubble it."""
    return f"{form_number:03d}"
