"""The ``keys`` and ``bank`` command-line commands, attached to a host CLI.

The ``cbt`` CLI calls ``register(subparsers)``; it gets back the ``keys``
and ``bank`` sub-command sets, so that commands needing the database
(``keys trust``, ``bank import`` ...) can be added next to these. Every
handler takes the parsed arguments and returns an exit code: it prints a
one-line summary on success, and on failure a message saying what to fix
(never a traceback) and returns 1.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itembank.errors import ItembankError, KeyFileError, ProblemsError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# Each handler imports what it uses (cryptography, the validator, openpyxl):
# building the parser for `cbt --help` must not pay for every command's imports.

Handler = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse's _SubParsersAction, which has no public name


def register(subparsers: SubParsers) -> tuple[SubParsers, SubParsers]:
    """Add ``keys`` and ``bank`` to `subparsers`; return their own subparsers."""
    keys_parser = subparsers.add_parser("keys", help="signing keys for bank releases")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    command = keys_commands.add_parser(
        "generate", help="make an Ed25519 key pair: NAME.key (secret) and NAME.pub (to share)"
    )
    command.add_argument("name", help="file name for the pair, e.g. exam-board-2025")
    command.add_argument("--out", type=Path, default=Path("."), help="folder (default: here)")
    command.add_argument("--passphrase-file", type=Path, help="encrypt the key with this passphrase")
    command.set_defaults(func=_guarded(keys_generate))

    bank_parser = subparsers.add_parser("bank", help="item bank releases: check, sign, verify, seal")
    bank = bank_parser.add_subparsers(dest="bank_command", metavar="COMMAND", required=True)
    command = bank.add_parser("validate", help="check item files or a release folder")
    command.add_argument("path", type=Path, help="an item file, a folder of them, or a release")
    command.set_defaults(func=_guarded(bank_validate))

    command = bank.add_parser("sign", help="write MANIFEST.json and MANIFEST.sig into a release")
    command.add_argument("folder", type=Path)
    command.add_argument("--key", type=Path, required=True, help="private key file (NAME.key)")
    command.add_argument("--passphrase-file", type=Path, help="file holding the key's passphrase")
    command.set_defaults(func=_guarded(bank_sign))

    command = bank.add_parser("pack", help="zip a signed release into a .cbtbank file")
    command.add_argument("folder", type=Path)
    command.add_argument("-o", "--out", type=Path, required=True, help="FILE.cbtbank")
    command.set_defaults(func=_guarded(bank_pack))

    command = bank.add_parser("verify", help="prove a release is exactly what a trusted key signed")
    command.add_argument("path", type=Path, help="release folder or .cbtbank file")
    command.add_argument(
        "--trust",
        type=Path,
        action="append",
        required=True,
        metavar="FILE.pub",
        help="a public key to trust (repeat for several)",
    )
    command.set_defaults(func=_guarded(bank_verify))

    command = bank.add_parser("seal", help="encrypt a .cbtbank until exam day; prints the key")
    command.add_argument("file", type=Path, help="FILE.cbtbank")
    command.add_argument("-o", "--out", type=Path, required=True, help="FILE.sealed")
    command.set_defaults(func=_guarded(bank_seal))

    command = bank.add_parser("unseal", help="decrypt a sealed release with its key")
    command.add_argument("file", type=Path, help="FILE.sealed")
    command.add_argument("--key", required=True, help="the key as printed by seal ('-': read stdin)")
    command.add_argument("-o", "--out", type=Path, required=True, help="FILE.cbtbank")
    command.set_defaults(func=_guarded(bank_unseal))

    command = bank.add_parser("from-xlsx", help="turn a filled-in spreadsheet into item files")
    command.add_argument("file", type=Path, help="FILE.xlsx made from the template")
    command.add_argument("-o", "--out", type=Path, required=True, help="folder for the .yaml files")
    command.add_argument("--force", action="store_true", help="replace existing item files")
    command.set_defaults(func=_guarded(bank_from_xlsx))

    command = bank.add_parser(
        "convert", help="another tool's questions (Word, LaTeX, Moodle XML, GIFT, Aiken) as draft item files"
    )
    command.add_argument("file", type=Path, help="the file of questions (.docx, .tex, .xml, .gift, .txt)")
    command.add_argument("-o", "--out", type=Path, required=True, help="folder for the .yaml files and media/")
    command.add_argument("--subject", required=True, help="the subject of every question, as a code (toan)")
    command.add_argument("--grade", type=int, choices=range(1, 13), metavar="1-12", help="their grade")
    command.add_argument("--topic", default="chua-phan-loai", help="their topic (default: chua-phan-loai)")
    command.add_argument(
        "--level", default="1", help="their level: a number or an id of the enclosing release's scheme (default: 1)"
    )
    command.add_argument("--points", default="0.25", help="the points of each (default: 0.25)")
    command.add_argument("--id-prefix", help="the ids' start: PREFIX-C1, PREFIX-C2 ... (default: from the file name)")
    command.add_argument("--force", action="store_true", help="replace existing item files")
    command.set_defaults(func=_guarded(bank_convert))

    command = bank.add_parser("template", help="write the spreadsheet template for from-xlsx")
    command.add_argument("-o", "--out", type=Path, required=True, help="FILE.xlsx")
    command.set_defaults(func=_guarded(bank_template))

    command = bank.add_parser("export-qti", help="write a release's items and sets as a QTI 3.0 content package")
    command.add_argument("path", type=Path, help="release folder or .cbtbank file")
    command.add_argument("-o", "--out", type=Path, required=True, help="FILE.zip")
    command.add_argument(
        "--trust",
        type=Path,
        action="append",
        metavar="FILE.pub",
        help="verify the release against this public key first, as bank verify does (repeat for several)",
    )
    command.set_defaults(func=_guarded(bank_export_qti))
    return keys_commands, bank


# ---------------------------------------------------------------- handlers


def keys_generate(args: argparse.Namespace) -> int:
    from itembank import keys

    passphrase = _passphrase(args.passphrase_file)
    made = keys.generate_key_files(args.name, args.out, passphrase)
    print(
        f"key {made.fingerprint}: private {made.private_path} (keep it secret),"
        f" public {made.public_path} (give it to schools)"
    )
    return 0


def bank_validate(args: argparse.Namespace) -> int:
    from itembank.validate import validate_path

    problems = validate_path(args.path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{args.path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.path}: no problems found")
    return 0


def bank_sign(args: argparse.Namespace) -> int:
    from itembank import package

    private_key = _load_private_key(args.key, args.passphrase_file)
    manifest = package.sign(args.folder, private_key)
    print(
        f"signed {manifest.name} {manifest.version}: {manifest.item_count} items,"
        f" {len(manifest.files)} files, key {manifest.signer}"
    )
    return 0


def bank_pack(args: argparse.Namespace) -> int:
    from itembank import package

    count = package.pack(args.folder, args.out)
    data = args.out.read_bytes()
    print(f"packed {args.out}: {count} files, {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


def bank_verify(args: argparse.Namespace) -> int:
    from itembank import keys, package

    trusted = [keys.load_public_key(path) for path in args.trust]
    summary = package.verify(args.path, trusted)
    print(f"verified {summary}")
    return 0


def bank_seal(args: argparse.Namespace) -> int:
    from itembank import seal

    key_text = seal.seal_file(args.file, args.out)
    print(f"sealed {args.file} -> {args.out}; the key, shown only this once:")
    print(f"  {key_text}")
    return 0


def bank_unseal(args: argparse.Namespace) -> int:
    from itembank import seal

    key_text = sys.stdin.readline() if args.key == "-" else args.key
    seal.unseal_file(args.file, key_text, args.out)
    print(f"unsealed {args.file} -> {args.out}")
    return 0


def bank_from_xlsx(args: argparse.Namespace) -> int:
    from itembank.formats import xlsx  # openpyxl is slow to import; only these commands need it

    written = xlsx.xlsx_to_yaml(args.file, args.out, overwrite=args.force)
    print(f"wrote {len(written)} item file(s) into {args.out}")
    return 0


def bank_convert(args: argparse.Namespace) -> int:
    """Every problem and note as file:place: message; exit 1 when there was a problem."""
    from decimal import Decimal, InvalidOperation

    from itembank.formats import foreign
    from itembank.formats.imported import ID_PREFIX, ImportDefaults, prefix_from_name
    from itembank.levels import LevelError

    levels = _scheme_around(args.out)
    try:
        level = levels.number(args.level)
    except LevelError as e:
        return _usage_error(f"--level {args.level}: {e}")
    try:
        points = Decimal(args.points.replace(",", "."))
    except InvalidOperation:
        points = Decimal(0)
    if not points.is_finite() or points <= 0:
        return _usage_error(f"--points {args.points}: write a number more than 0, e.g. 0.25")
    prefix = args.id_prefix or prefix_from_name(args.file.name)
    if not ID_PREFIX.fullmatch(prefix):
        return _usage_error(f"--id-prefix {prefix}: use up to 40 letters, digits, . _ or - (no spaces)")
    defaults = ImportDefaults(
        subject=args.subject, topic=args.topic, level=level, points=points, grade=args.grade, id_prefix=prefix
    )
    done = foreign.convert(args.file, args.out, defaults, levels=levels, overwrite=args.force)
    lines = [(p.line or 0, str(p)) for p in done.problems]
    lines += [(n.line or 0, f"{n.where}: note: {n.message}") for n in done.notes]
    for _, line in sorted(lines, key=lambda pair: pair[0]):
        print(line)
    kind = f" ({done.kind})" if done.kind else ""
    pictures = f" and {len(done.pictures)} picture(s) into {args.out / 'media'}" if done.pictures else ""
    print(f"{args.file}{kind}: wrote {len(done.written)} item file(s) into {args.out}{pictures}")
    if done.problems:
        print(f"{args.file}: {len(done.problems)} problem(s): their questions were not written", file=sys.stderr)
        return 1
    return 0


def _usage_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _scheme_around(folder: Path):
    """The level scheme of the release `folder` is in (its bank.yaml's), else the legacy one."""
    from itembank.formats.yaml_format import parse_bank_bytes
    from itembank.levels import LEGACY

    for place in (folder, *folder.resolve().parents):
        bank = place / "bank.yaml"
        if bank.is_file():
            info, _ = parse_bank_bytes(bank.read_bytes(), str(bank))
            return info.levels if info is not None else LEGACY
    return LEGACY


def bank_template(args: argparse.Namespace) -> int:
    from itembank.formats import xlsx

    xlsx.write_template(args.out)
    print(f"wrote the template {args.out}: fill one row per item, then run cbt bank from-xlsx")
    return 0


def bank_export_qti(args: argparse.Namespace) -> int:
    from itembank import keys
    from itembank.archive import write_atomic
    from itembank.formats import qti

    trusted = [keys.load_public_key(path) for path in args.trust] if args.trust else None
    package = qti.export_release(args.path, trusted)
    write_atomic(args.out, package.data)
    checked = "verified and exported" if trusted else "exported (not verified: give --trust to check the signature)"
    print(
        f"{checked} {args.path} -> {args.out}: {package.items} items, {package.sets} sets,"
        f" {package.media} media files, QTI 3.0"
    )
    return 0


# ---------------------------------------------------------------- helpers


def _guarded(handler: Handler) -> Handler:
    """Turn every failure into a message on stderr and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        stream = sys.stderr
        try:
            return handler(args)
        except ProblemsError as e:
            for problem in e.problems:
                print(problem, file=stream)
            print(f"error: {e.message}", file=stream)
        except ItembankError as e:
            print(f"error: {e.message}", file=stream)
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            print(f"error: {where}{e.strerror or e}", file=stream)
        except Exception as e:  # a bug: still no traceback for the user, but say so
            print(f"error: unexpected {type(e).__name__}: {e} (please report this)", file=stream)
        return 1

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def _passphrase(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        text = path.read_bytes().rstrip(b"\r\n")
    except OSError as e:
        raise KeyFileError("passphrase-file", f"{path}: cannot read ({e.strerror})") from None
    if not text:
        raise KeyFileError("passphrase-file", f"{path} is empty: put the passphrase in it")
    return text


def _load_private_key(path: Path, passphrase_file: Path | None) -> Ed25519PrivateKey:
    from itembank import keys

    passphrase = _passphrase(passphrase_file)
    try:
        return keys.load_private_key(path, passphrase)
    except KeyFileError as e:
        if e.code != "passphrase-needed" or not sys.stdin.isatty():
            raise
    typed = getpass.getpass(f"passphrase for {path}: ").encode("utf-8")
    return keys.load_private_key(path, typed)
