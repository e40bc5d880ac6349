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


@pytest.mark.parametrize("argv", [["bank"], ["keys"], ["bank", "verify", "x"]])
def test_missing_arguments_are_usage_errors(argv):
    parser, _, _ = make_parser()
    with pytest.raises(SystemExit) as error:
        parser.parse_args(argv)
    assert error.value.code == 2
