"""Validation reports every problem at once, each with file:line and a fix.

`broken/` is a release folder holding one deliberately broken item per
check (plus a correct one and a stray file); the messages below are exactly
what ``cbt bank validate`` prints for it.
"""

from __future__ import annotations

from pathlib import Path

from itembank.validate import validate_path

BROKEN = Path(__file__).parent / "broken"

EXPECTED = [
    "items/duplicate-id.yaml:1: duplicate id: item GOOD-1 version 1 is also at"
    " items/correct.yaml:2; give each item its own id, or raise the version of the newer one",
    "items/key-not-in-options.yaml:16: answer 'E' is not among the options (A, B, C, D): use one of their ids",
    "items/level-range.yaml:6: level 5 is outside 1-4: use 1 (Nhận biết / recall),"
    " 2 (Thông hiểu / comprehension), 3 (Vận dụng / application),"
    " 4 (Vận dụng cao / high application)",
    "items/media-missing.yaml:10: stem: media file 'media/do-thi.png' not found: copy it"
    " into the release's media/ folder or correct the name",
    "items/media-missing.yaml:14: media file 'media/hinh-1.png' not found: copy it into"
    " the release's media/ folder or correct the name",
    "items/missing-field.yaml:1: missing field 'topic': every item needs id, version, type,"
    " subject, topic, level, points, lang, status, stem",
    "items/multiple-no-key.yaml:14: a multiple item needs at least one key: write e.g. answer: [A, C]",
    "items/points-not-positive.yaml:7: points must be more than 0, not 0: e.g. 0.25 for a Part I item",
    "items/short-key-syntax.yaml:11: answer key '12345' does not fit Part III: use at most"
    " 4 characters from digits, a leading minus and a decimal comma, e.g. 75 or -1,5"
    " (or set format: number or format: text)",
    "items/single-two-keys.yaml:15: a single item needs exactly one key, found 2 (A, C):"
    " give one option id in answer:, or make it type: multiple",
    "items/truefalse4-not-boolean.yaml:13: statements.b.answer: must be true or false, not 'maybe'",
    "items/truefalse4-not-boolean.yaml:15: statement d has no answer: give text: and answer: true or false",
    "items/truefalse4-three.yaml:11: a truefalse4 item needs exactly four statements"
    " a, b, c, d in that order, each with text: and answer: true or false (found a, b, c)",
    "items/unknown-field.yaml:1: missing field 'options': a single item needs 'options' and 'answer'",
    "items/unknown-field.yaml:11: unknown field 'optoins' — did you mean 'options'?",
    "items/unsafe-content.yaml:10: stem: unsafe content removed: <script> element:"
    " script elements are not allowed in items",
    "items/unsafe-content.yaml:10: stem: unsafe content removed: image"
    " 'https://example.com/x.png' from outside the release: copy the file into media/"
    " and write ![description](media/NAME.png)",
    "items/unsafe-content.yaml:15: options.A: unsafe content removed: event handler"
    " onclick= on <b>: scripts are not allowed",
    "items/unsafe-content.yaml:16: options.B: unsafe content removed: link to"
    " 'javascript:alert(1)': items may only link to files in media/; remove the link",
    "items/yaml-syntax.yaml:4: YAML syntax error: mapping values are not allowed in this"
    " context; check the indentation, and put text that contains ': ' or starts with a"
    " special character such as [ { * & ! | > ' \" % @ in quotes",
    "notes.txt: a release holds only bank.yaml, items/*.yaml and media/; move this file out of the release folder",
]

EXPECTED_CODES = {
    "duplicate-id", "key-not-in-options", "level-range", "media-missing", "missing-field",
    "multiple-no-key", "points-not-positive", "short-key-syntax", "single-key-count",
    "not-boolean", "truefalse4-statements", "unknown-field", "unsafe-content", "yaml-syntax",
    "unexpected-file",
}  # fmt: skip


def relative(problems, root: Path) -> list[str]:
    return [str(p).replace(f"{root}/", "") for p in problems]


def test_every_broken_item_is_reported_exactly():
    assert relative(validate_path(BROKEN), BROKEN) == EXPECTED


def test_each_check_has_its_stable_code():
    assert {p.code for p in validate_path(BROKEN)} == EXPECTED_CODES


def test_the_correct_item_alone_has_no_problem():
    assert validate_path(BROKEN / "items" / "correct.yaml") == []


def test_a_single_file_is_checked_against_the_enclosing_release_media():
    problems = validate_path(BROKEN / "items" / "media-missing.yaml")
    assert [p.code for p in problems] == ["media-missing", "media-missing"]


def test_a_loose_folder_of_items_is_checked_too(tmp_path):
    (tmp_path / "a.yaml").write_text((BROKEN / "items" / "level-range.yaml").read_text())
    (tmp_path / "b.yaml").write_text((BROKEN / "items" / "level-range.yaml").read_text())
    codes = [p.code for p in validate_path(tmp_path)]
    assert codes == ["level-range", "duplicate-id", "level-range"]


def test_a_missing_path_and_an_empty_folder(tmp_path):
    assert [str(p) for p in validate_path(tmp_path / "nope")] == [f"{tmp_path / 'nope'}: no such file or folder"]
    assert [p.code for p in validate_path(tmp_path)] == ["no-items"]


def test_bank_yaml_is_checked(tmp_path):
    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "x.yaml").write_text((BROKEN / "items" / "correct.yaml").read_text())
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "present.gif").write_bytes(b"GIF89a")
    (tmp_path / "bank.yaml").write_text("format: cbt-bank/2\nname: x\nversoin: 1\n")
    assert relative(validate_path(tmp_path), tmp_path) == [
        "bank.yaml:1: missing field 'version': bank.yaml needs format: cbt-bank/1, name: and version:",
        "bank.yaml:3: unknown field 'versoin' — did you mean 'version'?",
    ]
    (tmp_path / "bank.yaml").write_text("format: cbt-bank/2\nname: x\nversion: 1\n")
    assert relative(validate_path(tmp_path), tmp_path) == [
        "bank.yaml:1: format 'cbt-bank/2' is not supported: write format: cbt-bank/1"
    ]
    (tmp_path / "bank.yaml").write_text("format: cbt-bank/1\nname: x\nversion: 1\n")
    assert validate_path(tmp_path) == []
