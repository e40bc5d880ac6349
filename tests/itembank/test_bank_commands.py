"""The keys/bank commands: one-line summaries, exit codes, no tracebacks."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from itembank.commands import register
from itembank.demo import write_demo_bank

BROKEN = Path(__file__).parent / "broken"


def make_parser():
    parser = argparse.ArgumentParser(prog="cbt")
    commands = parser.add_subparsers(dest="command", required=True)
    keys, bank = register(commands)
    return parser, keys, bank


def run(*argv: str) -> int:
    parser, _, _ = make_parser()
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_the_host_can_add_commands_next_to_ours():
    parser, keys, bank = make_parser()
    keys.add_parser("trust").set_defaults(func=lambda args: 0)
    bank.add_parser("import").set_defaults(func=lambda args: 0)
    assert parser.parse_args(["keys", "trust"]).func(None) == 0
    assert parser.parse_args(["bank", "import"]).func(None) == 0


def test_the_whole_release_workflow(tmp_path, capsys):
    bank, out = tmp_path / "bank", tmp_path / "out"
    write_demo_bank(bank)
    (tmp_path / "pass.txt").write_text("bí mật\n")

    assert run("keys", "generate", "board", "--out", tmp_path / "keys", "--passphrase-file", tmp_path / "pass.txt") == 0
    line = capsys.readouterr().out
    assert line.startswith("key ") and line.count("\n") == 1
    fingerprint = line.split()[1].rstrip(":")

    assert run("bank", "validate", bank) == 0
    assert capsys.readouterr().out == f"{bank}: no problems found\n"

    key, pub = tmp_path / "keys" / "board.key", tmp_path / "keys" / "board.pub"
    assert run("bank", "sign", bank, "--key", key, "--passphrase-file", tmp_path / "pass.txt") == 0
    assert capsys.readouterr().out == f"signed demo-thpt 2025.1: 64 items, 60 files, key {fingerprint}\n"

    assert run("bank", "pack", bank, "-o", out / "demo.cbtbank") == 0
    assert capsys.readouterr().out.startswith(f"packed {out / 'demo.cbtbank'}: 62 files, ")

    assert run("bank", "verify", out / "demo.cbtbank", "--trust", pub) == 0
    assert capsys.readouterr().out.startswith("verified demo-thpt 2025.1: 64 items, 60 files, signed by")

    assert run("bank", "seal", out / "demo.cbtbank", "-o", out / "demo.sealed") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("sealed ")
    seal_key = printed[1].strip()

    assert run("bank", "unseal", out / "demo.sealed", "--key", seal_key, "-o", out / "back.cbtbank") == 0
    assert (out / "back.cbtbank").read_bytes() == (out / "demo.cbtbank").read_bytes()
    capsys.readouterr()

    # One character changed (to another valid one: the key may already end in 0).
    mistyped = seal_key[:-1] + ("1" if seal_key.endswith("0") else "0")
    assert run("bank", "unseal", out / "demo.sealed", "--key", mistyped, "-o", out / "x") == 1
    assert capsys.readouterr().err.startswith("error: the key was mistyped")
    assert not (out / "x").exists()


def test_failures_print_messages_not_tracebacks(tmp_path, capsys):
    assert run("bank", "validate", BROKEN) == 1
    captured = capsys.readouterr()
    assert "unknown field 'optoins' — did you mean 'options'?" in captured.out
    assert captured.err == f"{BROKEN}: 21 problem(s)\n"

    assert run("bank", "verify", tmp_path / "missing.cbtbank", "--trust", tmp_path / "no.pub") == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'no.pub'}: no such public key file\n"

    assert run("bank", "sign", BROKEN, "--key", tmp_path / "none.key") == 1
    assert "no such private key file" in capsys.readouterr().err

    assert run("bank", "pack", BROKEN, "-o", tmp_path / "x.cbtbank") == 1
    assert capsys.readouterr().err.startswith(f"error: {BROKEN} is not signed: run cbt bank sign")

    (tmp_path / "plain.txt").write_text("hi")
    assert run("bank", "seal", tmp_path / "plain.txt", "-o", tmp_path / "x.sealed") == 1
    assert capsys.readouterr().err == "error: only a .cbtbank file (made by cbt bank pack) can be sealed\n"

    assert run("bank", "from-xlsx", tmp_path / "none.xlsx", "-o", tmp_path / "items") == 1
    assert "not a readable .xlsx file" in capsys.readouterr().err


def test_sign_lists_every_problem(tmp_path, capsys):
    run("keys", "generate", "k", "--out", tmp_path)
    capsys.readouterr()
    assert run("bank", "sign", BROKEN, "--key", tmp_path / "k.key") == 1
    err = capsys.readouterr().err.splitlines()
    assert run("bank", "validate", BROKEN) == 1
    assert err[:-1] == capsys.readouterr().out.splitlines()  # the same 21 problems
    assert err[-1] == f"error: {BROKEN}: not signed: fix the problems listed above"


def test_template_and_from_xlsx(tmp_path, capsys):
    assert run("bank", "template", "-o", tmp_path / "t.xlsx") == 0
    assert capsys.readouterr().out.startswith("wrote the template")
    assert run("bank", "from-xlsx", tmp_path / "t.xlsx", "-o", tmp_path / "items") == 0
    assert capsys.readouterr().out == f"wrote 5 item file(s) into {tmp_path / 'items'}\n"
    assert run("bank", "from-xlsx", tmp_path / "t.xlsx", "-o", tmp_path / "items") == 1
    assert run("bank", "from-xlsx", tmp_path / "t.xlsx", "-o", tmp_path / "items", "--force") == 0


def test_convert_writes_what_validate_accepts_and_every_problem_by_place(tmp_path, capsys):
    from support.foreign import AIKEN, AIKEN_BAD_LINE, AIKEN_KEYS, GIFT, GIFT_KEYS, MOODLE, MOODLE_PICTURE, PNG

    from itembank.formats.yaml_format import parse_file

    out = tmp_path / "items"
    (tmp_path / "kt.gift").write_text(GIFT)
    (tmp_path / "ak.txt").write_text(AIKEN)
    (tmp_path / "Ngân hàng.xml").write_bytes(MOODLE)
    common = ("-o", out, "--subject", "toan", "--grade", "12", "--topic", "ham-so", "--level", "2")

    assert run("bank", "convert", tmp_path / "kt.gift", *common, "--points", "0,5") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == f"{tmp_path / 'kt.gift'} (GIFT): wrote 4 item file(s) into {out}"
    assert printed[1].startswith(f"{tmp_path / 'kt.gift'}:6: note: question 2 (::Chẵn::): option weights")
    # A question with a problem is not written; the others are; the command says which and fails.
    assert run("bank", "convert", tmp_path / "ak.txt", *common, "--id-prefix", "ak") == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith(f"{tmp_path / 'ak.txt'}:{AIKEN_BAD_LINE}: question 2: ")
    assert captured.err == f"{tmp_path / 'ak.txt'}: 1 problem(s): their questions were not written\n"
    assert run("bank", "convert", tmp_path / "Ngân hàng.xml", *common) == 1
    assert "picture(s) into" in capsys.readouterr().out

    written = {path.name for path in out.glob("*.yaml")}
    assert written == {f"kt-{n}.yaml" for n in GIFT_KEYS} | {f"ak-{n}.yaml" for n in AIKEN_KEYS} | {
        "Ngan-hang-C1.yaml",
        "Ngan-hang-C2.yaml",
    }
    assert (out / MOODLE_PICTURE.format(prefix="Ngan-hang")).read_bytes() == PNG
    (short,) = [s.item for s in parse_file(out / "kt-C4.yaml").items]
    assert (short.type.value, short.answer.canonical, short.subject, short.grade, short.level, str(short.points)) == (
        "short",
        "1.5",
        "toan",
        12,
        2,
        "0.5",
    )
    assert run("bank", "validate", out) == 0
    assert capsys.readouterr().out == f"{out}: no problems found\n"

    # Nothing is replaced without --force; with it, the same files again.
    assert run("bank", "convert", tmp_path / "kt.gift", *common) == 1
    assert "4 file(s) already exist" in capsys.readouterr().err
    assert run("bank", "convert", tmp_path / "kt.gift", *common, "--force") == 0


def test_convert_reads_word_and_latex_too(tmp_path, capsys):
    from support.foreign import LATEX, LATEX_BAD_LINE, LATEX_KEYS, PNG, WORD_KEYS, WORD_PICTURE, word_file

    out = tmp_path / "items"
    (tmp_path / "de.docx").write_bytes(word_file())
    (tmp_path / "de.tex").write_text(LATEX)
    assert run("bank", "convert", tmp_path / "de.docx", "-o", out, "--subject", "toan", "--id-prefix", "w") == 1
    assert "(Word): wrote 3 item file(s)" in capsys.readouterr().out
    assert run("bank", "convert", tmp_path / "de.tex", "-o", out, "--subject", "toan", "--id-prefix", "t") == 1
    printed = capsys.readouterr().out
    assert f"{tmp_path / 'de.tex'}:19: note: " in printed and f"{tmp_path / 'de.tex'}:{LATEX_BAD_LINE}: " in printed
    written = {path.name for path in out.glob("*.yaml")}
    assert written == {f"w-{n}.yaml" for n in WORD_KEYS} | {f"t-{n}.yaml" for n in LATEX_KEYS}
    assert (out / WORD_PICTURE.format(prefix="w")).read_bytes() == PNG
    assert run("bank", "validate", out) == 0


def test_convert_writes_a_qti_package_s_sets_whole(tmp_path, capsys):
    """A QTI package (here the 2025 demo bank's) becomes one file a question and one a set with its
    questions in it; read back, they are the bank's items and sets, pictures byte for byte."""
    from itembank.demo import FOLDER_2025, demo_2025
    from itembank.formats.qti import export_release
    from itembank.formats.yaml_format import parse_file
    from itembank.levels import SCHEME_2025

    bank = demo_2025()
    (tmp_path / "de.zip").write_bytes(export_release(FOLDER_2025).data)
    out = tmp_path / "items"
    assert run("bank", "convert", tmp_path / "de.zip", "-o", out, "--subject", "toan") == 0
    assert f"(QTI 3.0): wrote {len(bank.items) - sum(len(s.children) for s in bank.sets) + len(bank.sets)}" in (
        capsys.readouterr().out
    )
    standalone = {i.id for i in bank.items if not i.set_id}
    assert {p.stem for p in out.glob("*.yaml")} == standalone | {s.id for s in bank.sets}
    items, sets = [], []
    for path in sorted(out.glob("*.yaml")):
        parsed = parse_file(path, levels=SCHEME_2025)
        assert parsed.problems == [], parsed.problems
        items += [s.item for s in parsed.items]
        sets += [s.set for s in parsed.sets]
    assert sorted(items, key=lambda i: i.key) == sorted(bank.items, key=lambda i: i.key)
    assert sorted(sets, key=lambda s: s.key) == sorted(bank.sets, key=lambda s: s.key)
    for path in {p for i in bank.items for p in i.media} | {p for s in bank.sets for p in s.media}:
        assert (out / path).read_bytes() == (FOLDER_2025 / path).read_bytes()


def test_convert_refuses_what_it_cannot_read_in_one_line(tmp_path, capsys):
    from support.foreign import GIFT, XML_BOMB

    (tmp_path / "ghi-chu.txt").write_text("chỉ là ghi chú")
    (tmp_path / "bomb.xml").write_bytes(XML_BOMB)
    (tmp_path / "kt.gift").write_text(GIFT)
    out = tmp_path / "out"
    assert run("bank", "convert", tmp_path / "ghi-chu.txt", "-o", out, "--subject", "toan") == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{tmp_path / 'ghi-chu.txt'}: a .txt file is read as Aiken")
    assert "Moodle XML (.xml), QTI 3.0 (.zip, .xml), Aiken (.txt), GIFT (.gift, .txt)" in captured.out
    assert run("bank", "convert", tmp_path / "bomb.xml", "-o", out, "--subject", "toan") == 1
    assert f"{tmp_path / 'bomb.xml'}:2: the file declares a document type" in capsys.readouterr().out
    assert not out.exists() or not any(out.iterdir())
    for wrong, says in (
        (("--level", "5"), "error: --level 5: level 5 is outside 1-4"),
        (("--points", "0"), "error: --points 0: write a number more than 0"),
        (("--id-prefix", "có dấu"), "error: --id-prefix có dấu: use up to 40 letters"),
    ):
        assert run("bank", "convert", tmp_path / "kt.gift", "-o", out, "--subject", "toan", *wrong) == 1
        assert capsys.readouterr().err.startswith(says)
    assert run("bank", "convert", tmp_path / "none.gift", "-o", out, "--subject", "toan") == 1
    assert "No such file" in capsys.readouterr().err


def test_convert_into_a_release_folder_takes_its_level_scheme(tmp_path, capsys):
    from support.foreign import GIFT

    release = tmp_path / "bank"
    (release / "items").mkdir(parents=True)
    (release / "bank.yaml").write_text("format: cbt-bank/1\nname: b\nversion: '1'\nlevels: 2025\n")
    (tmp_path / "kt.gift").write_text(GIFT)
    args = ("bank", "convert", tmp_path / "kt.gift", "-o", release / "items", "--subject", "toan")
    assert run(*args, "--level", "van-dung-cao") == 1
    assert "'van-dung-cao' is not a level of this bank (bank.yaml says levels: 2025)" in capsys.readouterr().err
    assert run(*args, "--level", "hieu") == 0
    assert "level: 2\n" in (release / "items" / "kt-C1.yaml").read_text()


@pytest.mark.parametrize("argv", [["bank"], ["keys"], ["bank", "verify", "x"]])
def test_missing_arguments_are_usage_errors(argv):
    parser, _, _ = make_parser()
    with pytest.raises(SystemExit) as error:
        parser.parse_args(argv)
    assert error.value.code == 2
