"""Signed releases with item sets (reading passages and their questions) in
the 2025 levels, and an exam that draws them: for the tests of sets through
the whole path and of the exam page that shows their passages."""

from __future__ import annotations

import datetime as dt

import pytest

from cbt import bank
from itembank import keys as ik
from itembank import package
from support.bank import trust

# Every reading set has this level profile (2 Biết, 2 Hiểu, 1 Vận dụng), so a
# form's points per level are the same whichever sets it draws.
PROFILE = ("biet", "biet", "hieu", "hieu", "van-dung")

# Passage 2 runs long, as real reading texts do: longer than a 1366x768
# screen's passage panel holds, so that panel has to scroll on its own.
LONG_PASSAGE = "\n".join(
    f"\n    Paragraph {p}. The canteen of school 2 threw away {40 + p} paper cups on day {p}; the students"
    " wrote each number down, asked the cook where the cups went, and compared the bins before and after lunch."
    for p in range(1, 19)
)


def reading_set(n: int, *, shuffle: bool = False, version: int = 1, extra: str = "") -> str:
    children = "\n".join(
        f"""  - id: R{n}-{c}
    type: single
    level: {level}
    points: 0.25
    stem: Câu {c} của bài đọc {n}?{extra}
    options: {{A: "đúng {c}", B: "sai", C: "sai nữa", D: "cũng sai"}}
    answer: A"""
        for c, level in enumerate(PROFILE, 1)
    )
    return f"""- id: R{n}
  version: {version}
  type: set
  subject: tieng-anh
  grade: 12
  topic: reading
  lang: en
  status: approved
  shuffle: {str(shuffle).lower()}
  stimulus: |
    **Passage {n}.** Students of school {n} counted the cups their canteen threw away.
{LONG_PASSAGE if n == 2 else ""}
  items:
{children}
"""


STANDALONE = """- id: G-{n}
  version: 1
  type: single
  subject: tieng-anh
  grade: 12
  topic: grammar
  level: {level}
  points: 0.25
  lang: en
  status: approved
  stem: Grammar question {n}?
  options: {{A: "yes", B: "no", C: "maybe", D: {{text: "All of the above", fixed: true}}}}
  answer: A
"""


def write_release(folder, key, *, version="1", sets=6, levels="2025", extra="") -> None:
    (folder / "items").mkdir(parents=True, exist_ok=True)
    (folder / "bank.yaml").write_text(
        f"format: cbt-bank/1\nname: en-2025\nversion: '{version}'\nsubject: tieng-anh\n"
        + (f"levels: {levels}\n" if levels else "")
        + "topics: {reading: Đọc hiểu, grammar: Ngữ pháp}\n",
        encoding="utf-8",
    )
    if sets:
        (folder / "items" / "reading.yaml").write_text(
            "".join(reading_set(n, shuffle=n == 1, extra=extra) for n in range(1, sets + 1)), encoding="utf-8"
        )
    level = "biet" if levels == "2025" else 1
    (folder / "items" / "grammar.yaml").write_text(
        "".join(STANDALONE.format(n=n, level=level) for n in range(1, 7)), encoding="utf-8"
    )
    package.sign(folder, key)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Signed release folders by tag, and the signer's public key ("pub"):
    "good", six reading sets and six grammar questions in the 2025 levels;
    "changed", its sets changed under the same set versions; "legacy", grammar
    only in the legacy four levels; "pair", the first two sets of "good" (the
    second with the long passage) and its grammar, so every form draws both."""
    root = tmp_path_factory.mktemp("sets")
    made = ik.generate_key_files("set-signer", root / "keys")
    key = ik.load_private_key(made.private_path)
    out = {"pub": made.public_path}
    for tag, kwargs in {
        "good": {},
        "changed": {"version": "2", "extra": " (sửa)"},
        "legacy": {"version": "3", "levels": None, "sets": 0},
        "pair": {"version": "4", "sets": 2},
    }.items():
        out[tag] = root / tag
        write_release(out[tag], key, **kwargs)
    return out


async def imported(conn, releases, *tags):
    """These releases in the bank, shared with every organisation, after
    trusting their signer; makes the department SGD-S. Their ImportResults."""
    await trust(conn, releases["pub"])
    if not await conn.fetchval("SELECT 1 FROM orgs WHERE code = 'SGD-S'"):
        await conn.execute("INSERT INTO orgs (code, name, kind) VALUES ('SGD-S', 'Sở S', 'department')")
    return [await bank.import_release(conn, releases[tag]) for tag in tags]


def passages_exam_yaml(code: str = "EN-P") -> str:
    """An open exam on the "pair" release: both passages (five questions each)
    in Part I, two grammar questions without a passage in Part II."""
    now = dt.datetime.now(dt.UTC)
    opens, closes = (now - dt.timedelta(hours=1)).isoformat(), (now + dt.timedelta(hours=3)).isoformat()
    return f"""
code: {code}
title: Tiếng Anh (đọc hiểu)
subject: tieng-anh
release: en-2025 4
duration_minutes: 50
window: {{opens: {opens}, closes: {closes}, late_entry_minutes: 120}}
show_score: true
sections:
  - title: Phần I
    rows:
      - {{topic: reading, type: set, count: 2, children: 5}}
  - title: Phần II
    rows:
      - {{topic: grammar, level: 1, count: 2}}
"""
