"""`cbt ...`: every subcommand. Each prints one clear line on failure and
exits 1; none shows a traceback for a problem the user can fix."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cbt.platform.errors import NotFound, UserError
from cbt.roles import ORG_KINDS, ROLES

if TYPE_CHECKING:
    import asyncpg

    from cbt.platform.config import Settings

# Every command imports what it uses when it runs: `cbt --help`, `cbt bank
# validate` and the other commands that need no database must not pay for
# aiohttp, asyncpg, argon2, numpy and openpyxl (benchmarks/bench_cli.py).


def _settings(args) -> Settings:
    from cbt.platform.config import load_settings

    settings = load_settings()
    changes = {k: getattr(args, k) for k in ("host", "port", "workers") if getattr(args, k, None) is not None}
    return settings.replace(**changes) if changes else settings


def with_database(
    settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[int]], *, migrate: bool = True
) -> int:
    """Run work(conn) against cbt's database, starting the embedded one if needed."""
    import asyncio

    from cbt.platform import db

    with db.database(settings, exclusive=False) as dsn:

        async def run() -> int:
            conn = await db.connect(dsn)
            try:
                if migrate:
                    await db.migrate(conn)
                return await work(conn)
            finally:
                await conn.close()

        return asyncio.run(run())


# -- serve / demo ------------------------------------------------------------


def _workers(settings: Settings) -> int:
    return settings.workers or os.cpu_count() or 1


def cmd_serve(args) -> int:
    from cbt.platform import db
    from cbt.platform.config import ensure_secret_key
    from cbt.platform.server import serve

    settings = ensure_secret_key(_settings(args))
    with db.database(settings, exclusive=True) as dsn:
        return serve(settings, dsn, settings.host, settings.port, _workers(settings))


def cmd_demo(args) -> int:
    import asyncio

    from cbt.demo import seed_demo
    from cbt.platform import db
    from cbt.platform.config import ensure_secret_key
    from cbt.platform.server import serve

    settings = ensure_secret_key(_settings(args))
    with db.database(settings, exclusive=True) as dsn:
        report = asyncio.run(seed_demo(dsn, settings))
        print(report, flush=True)
        if args.no_serve:
            return 0
        return serve(settings, dsn, settings.host, settings.port, _workers(settings))


# -- db ----------------------------------------------------------------------


def cmd_db_status(args) -> int:
    from cbt.platform import db

    async def work(conn) -> int:
        st = await db.schema_status(conn)
        print(f"schema version {st.current}; this cbt knows {st.latest}")
        for m in st.pending:
            print(f"pending: {m.version:03d}_{m.name}")
        for v in st.changed:
            print(f"warning: migration {v:03d} was edited after it was applied")
        if st.current > st.latest:
            print("the database is newer than this cbt: upgrade cbt", file=sys.stderr)
            return 1
        return 0

    return with_database(_settings(args), work, migrate=False)


def cmd_db_upgrade(args) -> int:
    from cbt.platform import db

    async def work(conn) -> int:
        applied = await db.migrate(conn)
        st = await db.schema_status(conn)
        names = ", ".join(f"{m.version:03d}_{m.name}" for m in applied) or "nothing to do"
        print(f"schema at version {st.current} ({names})")
        return 0

    return with_database(_settings(args), work, migrate=False)


# -- org / user --------------------------------------------------------------


def cmd_org_add(args) -> int:
    from cbt import accounts

    async def work(conn) -> int:
        await accounts.add_org(conn, args.code, args.name, args.kind, args.parent)
        print(f"organisation {args.code} ({args.kind}) created")
        return 0

    return with_database(_settings(args), work)


def read_new_password(password_file: str | None) -> str:
    import getpass

    from cbt import accounts

    if password_file:
        try:
            text = Path(password_file).read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(
                "password_file", f"cannot read {password_file}: {e.strerror}", path=str(password_file)
            ) from None
        password = text.splitlines()[0] if text else ""
    else:
        if not sys.stdin.isatty():
            raise UserError("password_needed", "no terminal to ask for the password: give it with --password-file FILE")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise UserError("password_mismatch", "the two passwords differ; run the command again")
    accounts.check_password_rules(password)
    return password


def cmd_user_add(args) -> int:
    from cbt import accounts

    password = read_new_password(args.password_file)

    async def work(conn) -> int:
        await accounts.add_user(conn, args.username, args.role, args.org, password, args.name or "")
        print(f"user {args.username.lower()} ({args.role}) created")
        return 0

    return with_database(_settings(args), work)


def cmd_user_subjects(args) -> int:
    from cbt import authoring

    async def work(conn) -> int:
        subjects = await authoring.set_subjects(conn, args.username, args.subject)
        print(f"{args.username.lower()}: {', '.join(subjects) if subjects else 'no subjects'}")
        return 0

    return with_database(_settings(args), work)


def cmd_user_passwd(args) -> int:
    from cbt import accounts

    password = read_new_password(args.password_file)

    async def work(conn) -> int:
        done = await conn.execute(
            "UPDATE users SET password_hash = $1 WHERE lower(username) = $2",
            accounts.hash_password(password),
            args.username.lower(),
        )
        if done == "UPDATE 0":
            raise UserError("unknown_user", f"no user named {args.username!r}")
        await conn.execute(
            "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE lower(username) = $1)",
            args.username.lower(),
        )
        print(f"password of {args.username.lower()} changed; their sessions were signed out")
        return 0

    return with_database(_settings(args), work)


# -- keys / bank (database side) ------------------------------------------------


def cmd_keys_trust(args) -> int:
    from cbt import bank

    try:
        pem = args.file.read_bytes()
    except OSError as e:
        raise UserError("key_file", f"cannot read {args.file}: {e.strerror}", path=str(args.file)) from None

    async def work(conn) -> int:
        name = args.name or args.file.stem
        before = await conn.fetchrow(
            "SELECT k.revoked_at, r.username AS revoked_by FROM trusted_keys k LEFT JOIN users r ON r.id = k.revoked_by"
            " WHERE k.fingerprint = $1",
            bank.key_fingerprint(pem, name),
        )
        fp = await bank.trust_key(conn, pem, name, unrevoke=args.unrevoke)
        if before is not None and before["revoked_at"] is not None:
            who = before["revoked_by"] or "the operator"
            print(
                f"key {fp} ({name}) was revoked on {before['revoked_at']:%Y-%m-%d} by {who}; --unrevoke lifted"
                " the revocation: it is trusted again by every organisation that trusted it, and server-wide"
            )
        else:
            print(f"trusted key {fp} ({name}) for every organisation on this server")
        return 0

    return with_database(_settings(args), work)


def cmd_keys_list(args) -> int:
    from cbt import bank

    async def work(conn) -> int:
        rows = await bank.list_keys(conn)
        if not rows:
            print("no trusted keys; add one with `cbt keys trust FILE.pub`")
        for r in rows:
            if r["revoked_at"]:
                state = f"revoked {r['revoked_at']:%Y-%m-%d} by {r['revoked_by'] or 'the operator'}"
            else:
                state = "trusted"
            scope = ", ".join("every organisation" if code == "*" else code for code in r["trusted_by"]) or "nobody"
            print(f"{r['fingerprint']}  {state}  {r['name']}  (for {scope})")
        return 0

    return with_database(_settings(args), work)


def cmd_keys_revoke(args) -> int:
    from cbt import bank

    async def work(conn) -> int:
        await bank.revoke_key(conn, args.fingerprint)
        print(
            f"key {args.fingerprint} revoked for every organisation: releases it signs are no longer imported,"
            " and only `cbt keys trust FILE.pub --unrevoke` trusts it again"
        )
        return 0

    return with_database(_settings(args), work)


async def _import_org(conn, args) -> int | None:
    """Whose the imported release is: --org, --all-orgs (None), or the only organisation there is."""
    if args.all_orgs:
        return None
    if args.org:
        org_id = await conn.fetchval("SELECT id FROM orgs WHERE code = $1", args.org)
        if org_id is None:
            raise NotFound("unknown_org", f"no organisation with code {args.org!r}: see `cbt org add`", org=args.org)
        return org_id
    orgs = await conn.fetch("SELECT id FROM orgs ORDER BY id LIMIT 2")
    if len(orgs) == 1:
        return orgs[0]["id"]
    raise UserError(
        "org_required",
        "say which organisation the release is for with --org CODE (a department's releases are"
        " shared with its schools), or share it with every organisation on this server with --all-orgs"
        + ("" if orgs else "; create the organisation first with `cbt org add`"),
    )


def cmd_bank_import(args) -> int:
    from cbt import bank
    from cbt.platform import uploads
    from itembank import seal
    from itembank.archive import ArchiveLimits
    from itembank.errors import ItembankError
    from itembank.limits import TooLarge, megabytes

    source: Path | bytes = args.path
    if args.path.suffix == ".sealed" or args.key:
        if not args.key:
            raise UserError("unseal_key_needed", f"{args.path} is sealed: give its key with --key", path=str(args.path))
        key_text = sys.stdin.readline().strip() if args.key == "-" else args.key
        try:
            most = ArchiveLimits().max_total_bytes
            if args.path.stat().st_size > most:  # before reading it all in
                raise uploads.too_large(
                    TooLarge(
                        f"{args.path} is larger than a release may unpack to"
                        f" ({megabytes(most)}): is it the right file?",
                        megabytes(most),
                    )
                )
            source = seal.unseal(args.path.read_bytes(), key_text)
        except OSError as e:
            raise UserError("bank_file", f"cannot read {args.path}: {e.strerror}", path=str(args.path)) from None
        except ItembankError as e:
            raise bank.bank_error(e) from None

    async def work(conn) -> int:
        org_id = await _import_org(conn, args)
        result = await bank.import_release(conn, source, org_id)
        whose = (
            "every organisation"
            if org_id is None
            else await conn.fetchval("SELECT code FROM orgs WHERE id = $1", org_id)
        )
        print(f"{result} (for {whose})")
        return 0

    return with_database(_settings(args), work)


# -- exams -------------------------------------------------------------------------


def _read(path: Path, what: str, max_bytes: int | None = None) -> bytes:
    try:
        if max_bytes is not None and (size := path.stat().st_size) > max_bytes:  # before reading it all in
            from cbt.platform import uploads
            from itembank.limits import TooLarge, megabytes

            raise uploads.too_large(
                TooLarge(
                    f"the {what} {path} is {megabytes(size)}, more than the"
                    f" {megabytes(max_bytes)} allowed: split it into several files",
                    megabytes(max_bytes),
                )
            )
        return path.read_bytes()
    except OSError as e:
        raise UserError("file_unreadable", f"cannot read the {what} {path}: {e.strerror}", path=str(path)) from None


def cmd_exam_create(args) -> int:
    from cbt import exams

    text = _read(args.file, "exam file").decode("utf-8", errors="replace")
    spec = exams.parse_exam(text, str(args.file))

    async def work(conn) -> int:
        org = args.org
        if not org:
            orgs = await conn.fetch("SELECT code FROM orgs ORDER BY id LIMIT 2")
            if len(orgs) != 1:
                raise UserError("org_required", "say which organisation holds the exam with --org CODE")
            org = orgs[0]["code"]
        await exams.create_exam(conn, spec, org)
        cells = sum(len(s.rows) for s in spec.blueprint.sections)
        count = sum(r.questions for s in spec.blueprint.sections for r in s.rows)
        print(
            f"exam {spec.code} created: {count} questions from {cells} blueprint cells, "
            f"{spec.duration_minutes} minutes; next: `cbt exam roster {spec.code} FILE`"
        )
        _warn_seb_config_only(spec.policies.get("seb"))
        return 0

    return with_database(_settings(args), work)


def cmd_exam_roster(args) -> int:
    from cbt import exams, roster

    data = _read(args.file, "roster", roster.MAX_BYTES)
    candidates = roster.parse_roster(data, args.file.name)

    async def work(conn) -> int:
        n = await exams.add_roster(conn, args.exam, candidates)
        print(f"{n} candidates added to {args.exam}; print their tickets with `cbt exam tickets {args.exam}`")
        return 0

    return with_database(_settings(args), work)


def cmd_exam_tickets(args) -> int:
    from cbt import exams, roster

    settings = _settings(args)
    address = exams.exam_address(settings)

    async def work(conn) -> int:
        exam = await exams.get_exam(conn, args.exam)
        rows = await exams.issue_tickets(conn, args.exam, args.room)
        if args.format == "csv":
            out = roster.tickets_csv(rows)
        else:
            out = exams.tickets_html(exam, rows, load_settings_lang(), address)
            if address is None:
                print(
                    f"the tickets do not say where to sit the exam: cbt listens on every address of this "
                    f"machine ({settings.host}), so which one students type is yours to say: set CBT_PUBLIC_URL "
                    "(e.g. http://192.168.1.10:8080) and print them again",
                    file=sys.stderr,
                )
        if args.out:
            args.out.write_text(out, encoding="utf-8")
            print(f"{len(rows)} new tickets written to {args.out}; earlier tickets of these candidates no longer work")
        else:
            sys.stdout.write(out)
        return 0

    return with_database(settings, work)


def load_settings_lang() -> str:
    return os.environ.get("CBT_LANG", "vi") if os.environ.get("CBT_LANG") in ("vi", "en") else "vi"


def cmd_exam_open(args) -> int:
    from cbt import exams

    async def work(conn) -> int:
        n = await exams.open_exam(conn, args.exam)
        print(f"exam {args.exam} is open: {n} forms drawn")
        return 0

    return with_database(_settings(args), work)


def cmd_exam_form(args) -> int:
    import json

    from cbt import exams

    async def work(conn) -> int:
        form, same = await exams.rederive_form(conn, args.exam, args.candidate)
        if args.json:
            print(json.dumps(form, ensure_ascii=False, indent=1))
        if same:
            print(f"re-derived form of {args.candidate} equals the form served (seed {form['seed_hex'][:16]}...)")
            return 0
        print(f"the re-derived form of {args.candidate} DIFFERS from the form served", file=sys.stderr)
        return 1

    return with_database(_settings(args), work)


def _workbook_translator():
    """The Vietnamese catalog's translator when CBT_LANG=vi asks for it, else None (English)."""
    if os.environ.get("CBT_LANG") != "vi":
        return None
    from cbt.platform.i18n import Catalogs
    from cbt.platform.templating import web_root

    return Catalogs(web_root() / "i18n").translator("vi")


def cmd_exam_results(args) -> int:
    from cbt import heads, results

    settings = _settings(args)

    async def work(conn) -> int:
        rows = await results.results_rows(conn, args.exam, settings.time_zone)
        signed = await heads.sign_current(conn, args.exam)
        out = args.xlsx or args.csv
        try:
            if args.xlsx:
                # A workbook is for people: English, or Vietnamese with CBT_LANG=vi (as `cbt analyze`'s).
                t = _workbook_translator()
                results.write_results_xlsx(
                    rows, args.xlsx, signed, *((results.xlsx_words(t), heads.row_words(t)) if t else ())
                )
            else:
                args.csv.write_text(results.results_csv(rows, signed), encoding="utf-8", newline="")
        except OSError as e:
            raise UserError("file_unwritable", f"cannot write {out}: {e.strerror}", path=str(out)) from None
        done = sum(r["score"] is not None for r in rows)
        print(f"{len(rows)} candidates of {args.exam} written to {out} ({done} with a submitted attempt)")
        print(signed.line())
        return 0

    return with_database(settings, work)


def cmd_exam_analyze(args) -> int:
    from cbt import exams, results

    async def work(conn) -> int:
        exam = await exams.get_exam(conn, args.exam)
        report = await results.analyze_exam(conn, exam["id"])
        test = report["test"]
        flagged = sum(bool(i["flags"]) for i in report["items"])

        from cbt.numbers import fmt

        print(
            f"{args.exam}: {report['examinees']} candidates, {report['items_count']} items analysed; "
            f"mean {fmt(test['mean'])}, sd {fmt(test['sd'])}, alpha {fmt(test['alpha'])}, "
            f"{flagged} items flagged; stored for the exam board and the bank"
        )
        return 0

    return with_database(_settings(args), work)


def _warn_seb_config_only(rules: dict | None) -> None:
    from cbt import seb

    if seb.assurance(rules) == "config":
        print(f"warning: {seb.CONFIG_ONLY_WARNING}", file=sys.stderr)


def cmd_exam_seb(args) -> int:
    import json

    from cbt import exams, lockdown, seb

    settings = _settings(args)
    if not settings.public_url:
        raise UserError("public_url_needed", "set CBT_PUBLIC_URL to the address students type: SEB hashes it")

    async def work(conn) -> int:
        exam = await exams.get_exam(conn, args.exam)
        rules = (json.loads(exam["spec"]).get("policies") or {}).get("seb") or {}
        data = lockdown.seb_config_file(settings.public_url, exam["code"], exam["title"], rules)
        if args.out:
            args.out.write_bytes(data)
        print(f"Config Key of the generated configuration: {seb.config_key_for_file(data)}")
        print(f"Students open it with: {seb.seb_link(settings.public_url + '/exam/' + exam['code'] + '/config.seb')}")
        _warn_seb_config_only(rules)
        return 0

    return with_database(settings, work)


# -- audit and receipts ------------------------------------------------------------------


def cmd_audit_verify(args) -> int:
    from cbt import audit, heads

    # Files and tokens are read before the database starts: a typo fails at once.
    found = [item for arg in args.head or () for item in heads.parse_heads(arg)]
    key_pem = _read(args.key, "public key").decode("utf-8", errors="replace") if args.key else None

    async def work(conn) -> int:
        try:
            return await heads.verify_command(conn, args.exam, sys.stdout, found, key_pem)
        except audit.AuditError as e:
            raise UserError("no_exam", str(e), exam=args.exam) from None

    return with_database(_settings(args), work)


def cmd_audit_head(args) -> int:
    from cbt import audit, heads

    async def work(conn) -> int:
        try:
            signed = await heads.sign_current(conn, args.exam)
        except audit.AuditError as e:
            raise UserError("no_exam", str(e), exam=args.exam) from None
        if args.output is None:
            sys.stdout.write(signed.text())
            return 0
        try:
            args.output.write_text(signed.text(), encoding="utf-8")
        except OSError as e:
            raise UserError(
                "file_unwritable", f"cannot write {args.output}: {e.strerror}", path=str(args.output)
            ) from None
        print(
            f"signed audit chain head of {args.exam} (event {signed.head.seq}, hash {signed.head.hash.hex()}) "
            f"written to {args.output}; keep it apart from the server: `cbt audit verify {args.exam} --head "
            f"{args.output}` checks the chain against it"
        )
        return 0

    return with_database(_settings(args), work)


def cmd_audit_export(args) -> int:
    from cbt import audit

    async def work(conn) -> int:
        try:
            if args.output:
                with args.output.open("w", encoding="utf-8", newline="\n") as out:
                    return await audit.export_command(conn, args.exam, out)
            return await audit.export_command(conn, args.exam, sys.stdout)
        except audit.AuditError as e:
            raise UserError("no_exam", str(e), exam=args.exam) from None

    return with_database(_settings(args), work)


def cmd_receipt_verify(args) -> int:
    import asyncio

    from cbt import receipts

    text = sys.stdin.read() if args.token == "-" else args.token  # noqa: S105 - "-" means stdin
    if args.key:
        return asyncio.run(receipts.verify_command(None, text, sys.stdout, key_pem=args.key.read_text("utf-8")))
    return with_database(_settings(args), lambda conn: receipts.verify_command(conn, text, sys.stdout))


def cmd_receipt_public_key(args) -> int:
    from cbt import receipts

    return with_database(_settings(args), lambda conn: receipts.public_key_command(conn, sys.stdout))


# -- the parser --------------------------------------------------------------

ANALYZE_HELP = "item analysis of a responses CSV (classical, IRT, DIF)"


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for argv (sys.argv[1:] by default): `cbt analyze`'s own options
    are described with numpy's help, so they are built only when it is the command."""
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="cbt", description="cbt: computer-based testing engine")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def server_opts(sp):
        sp.add_argument("--host", help="address to listen on (CBT_HOST, default 127.0.0.1)")
        sp.add_argument("--port", type=int, help="port (CBT_PORT, default 8080)")
        sp.add_argument("--workers", type=int, help="worker processes (CBT_WORKERS, default: one per core)")

    sp = sub.add_parser("serve", help="run the server")
    server_opts(sp)
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("demo", help="create demo accounts and content, then serve")
    server_opts(sp)
    sp.add_argument("--no-serve", action="store_true", help="only create the demo data")
    sp.set_defaults(func=cmd_demo)

    dbp = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    dbp.add_parser("status", help="show the schema version").set_defaults(func=cmd_db_status)
    dbp.add_parser("upgrade", help="apply pending migrations").set_defaults(func=cmd_db_upgrade)

    orgp = sub.add_parser("org", help="organisations").add_subparsers(dest="org_command", required=True)
    sp = orgp.add_parser("add", help="add a department or school")
    sp.add_argument("code", help="short code, e.g. SGD-HN or THPT-CHUVANAN")
    sp.add_argument("--name", required=True, help="full name")
    sp.add_argument("--kind", choices=ORG_KINDS, default="school")
    sp.add_argument("--parent", help="code of the department a school belongs to")
    sp.set_defaults(func=cmd_org_add)

    userp = sub.add_parser("user", help="staff accounts").add_subparsers(dest="user_command", required=True)
    sp = userp.add_parser("add", help="add a staff account")
    sp.add_argument("username")
    sp.add_argument("--role", required=True, choices=ROLES)
    sp.add_argument("--org", help="organisation code (may be left out when there is only one)")
    sp.add_argument("--name", help="full name shown in the UI")
    sp.add_argument("--password-file", help="read the password from the first line of this file")
    sp.set_defaults(func=cmd_user_add)
    sp = userp.add_parser("passwd", help="set a new password")
    sp.add_argument("username")
    sp.add_argument("--password-file", help="read the password from the first line of this file")
    sp.set_defaults(func=cmd_user_passwd)
    sp = userp.add_parser("subjects", help="set the subjects a teacher writes for or a reviewer reviews")
    sp.add_argument("username")
    sp.add_argument(
        "subject",
        nargs="*",
        help='codes or names from the organisation\'s list of subjects, e.g. toan "Vật lí"; none removes them all',
    )
    sp.set_defaults(func=cmd_user_subjects)

    _register_bank(sub)
    if argv[:1] == ["analyze"]:
        from cbt.analysis import csvfile

        csvfile.register(sub)
    else:
        sub.add_parser("analyze", help=ANALYZE_HELP)

    examp = sub.add_parser("exam", help="exams: create, roster, tickets, open, results, analyze").add_subparsers(
        dest="exam_command", required=True, metavar="COMMAND"
    )
    sp = examp.add_parser("create", help="create an exam from its YAML file")
    sp.add_argument("file", type=Path)
    sp.add_argument("--org", help="organisation code (may be left out when there is only one)")
    sp.set_defaults(func=cmd_exam_create)
    sp = examp.add_parser("roster", help="add candidates from a CSV or .xlsx file")
    sp.add_argument("exam")
    sp.add_argument("file", type=Path)
    sp.set_defaults(func=cmd_exam_roster)
    sp = examp.add_parser("tickets", help="issue login tickets (new ones: old ones stop working)")
    sp.add_argument("exam")
    sp.add_argument("--format", choices=("csv", "html"), default="html")
    sp.add_argument("--room", help="only this room")
    sp.add_argument("-o", "--out", type=Path, help="write to this file (default: standard output)")
    sp.set_defaults(func=cmd_exam_tickets)
    sp = examp.add_parser("open", help="draw every candidate's form and open the exam")
    sp.add_argument("exam")
    sp.set_defaults(func=cmd_exam_open)
    sp = examp.add_parser("form", help="re-derive a candidate's form and compare it with the one served")
    sp.add_argument("exam")
    sp.add_argument("candidate", help="student code")
    sp.add_argument("--json", action="store_true", help="print the form")
    sp.set_defaults(func=cmd_exam_form)
    sp = examp.add_parser("seb", help="the exam's Safe Exam Browser configuration and its Config Key")
    sp.add_argument("exam")
    sp.add_argument("-o", "--out", type=Path, help="write the .seb file here")
    sp.set_defaults(func=cmd_exam_seb)

    auditp = sub.add_parser("audit", help="the exam's hash-chained audit log").add_subparsers(
        dest="audit_command", required=True, metavar="COMMAND"
    )
    sp = auditp.add_parser(
        "verify",
        help="check the chain, and that it reaches the heads kept outside the "
        "database; exit 1 naming the first problem",
    )
    sp.add_argument("exam", help="exam code")
    sp.add_argument(
        "--head",
        action="append",
        metavar="FILE|HASH|TOKEN",
        help="a published head: a head file (every head and receipt token in it), a signed head or "
        "receipt token, a hash, or SEQ:HASH; repeatable",
    )
    sp.add_argument(
        "--key",
        type=Path,
        metavar="PUB.pem",
        help="check head tokens against this public key (`cbt receipt public-key`, kept apart) instead "
        "of the database's",
    )
    sp.set_defaults(func=cmd_audit_verify)
    sp = auditp.add_parser("head", help="print (or write) the exam's current chain head, signed")
    sp.add_argument("exam", help="exam code")
    sp.add_argument("-o", "--output", type=Path, help="write the head file here (default: standard output)")
    sp.set_defaults(func=cmd_audit_head)
    sp = auditp.add_parser("export", help="write the events as JSON Lines")
    sp.add_argument("exam", help="exam code")
    sp.add_argument("-o", "--output", type=Path, help="file (default: standard output)")
    sp.set_defaults(func=cmd_audit_export)

    receiptp = sub.add_parser("receipt", help="submission receipts").add_subparsers(
        dest="receipt_command", required=True, metavar="COMMAND"
    )
    sp = receiptp.add_parser("verify", help="check a receipt token or short code (exit 1 if invalid)")
    sp.add_argument("token", help="the token, a short code, or - to read standard input")
    sp.add_argument("--key", type=Path, help="the server's public key (PEM): check offline, no database")
    sp.set_defaults(func=cmd_receipt_verify)
    receiptp.add_parser("public-key", help="print the server's receipt public key (PEM)").set_defaults(
        func=cmd_receipt_public_key
    )
    sp = examp.add_parser("results", help="export results for gradebooks (keyed by student code)")
    sp.add_argument("exam")
    fmt = sp.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--xlsx", type=Path, metavar="FILE", help="write an .xlsx workbook")
    fmt.add_argument("--csv", type=Path, metavar="FILE", help="write a CSV (UTF-8 with BOM)")
    sp.set_defaults(func=cmd_exam_results)
    sp = examp.add_parser("analyze", help="item analysis of the submitted attempts, stored for the board")
    sp.add_argument("exam")
    sp.set_defaults(func=cmd_exam_analyze)
    return p


def _register_bank(sub) -> None:
    """itembank's file commands, plus those that need the server's database."""
    from itembank import commands as itembank_commands

    keys_commands, bank_commands = itembank_commands.register(sub)

    sp = keys_commands.add_parser("trust", help="trust a public key for bank imports, for every organisation")
    sp.add_argument("file", type=Path, help="FILE.pub")
    sp.add_argument("--name", help="a label, e.g. the exam board's name (default: the file name)")
    sp.add_argument(
        "--unrevoke",
        action="store_true",
        help="trust a revoked key again (a revocation is otherwise final: make a new key)",
    )
    sp.set_defaults(func=cmd_keys_trust)
    keys_commands.add_parser("list", help="the trusted keys").set_defaults(func=cmd_keys_list)
    sp = keys_commands.add_parser("revoke", help="stop trusting a key, for every organisation, for good")
    sp.add_argument("fingerprint")
    sp.set_defaults(func=cmd_keys_revoke)

    sp = bank_commands.add_parser("import", help="verify and store a release in the database")
    sp.add_argument("path", type=Path, help="release folder, FILE.cbtbank, or FILE.sealed with --key")
    sp.add_argument("--key", help="the unseal key of a .sealed file ('-': read it from stdin)")
    whose = sp.add_mutually_exclusive_group()
    whose.add_argument("--org", help="the organisation the release is for (may be left out when there is only one)")
    whose.add_argument("--all-orgs", action="store_true", help="share the release with every organisation")
    sp.set_defaults(func=cmd_bank_import)


# The errors a user can fix, by module: one line, exit 1. A module this
# command never imported raised none of them.
_USER_ERRORS = (
    ("cbt.platform.errors", "UserError"),
    ("cbt.platform.config", "ConfigError"),
    ("cbt.platform.db", "DatabaseError"),
    ("cbt.platform.server", "ServeError"),
)


def _users_to_fix(e: Exception) -> bool:
    return any(
        module in sys.modules and isinstance(e, getattr(sys.modules[module], name)) for module, name in _USER_ERRORS
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    try:
        from cbt.platform.logs import setup_logging

        settings_level = os.environ.get("CBT_LOG_LEVEL", "INFO").upper()
        setup_logging(settings_level if args.command in ("serve", "demo") else "WARNING")
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if _users_to_fix(e):
            print(f"cbt: error: {getattr(e, 'message', None) or e}", file=sys.stderr)
            return 1
        if os.environ.get("CBT_DEBUG"):
            raise
        # A bug, not a user mistake: still one line, with a way to see more.
        print(
            f"cbt: internal error ({e.__class__.__name__}: {e}); run again with CBT_DEBUG=1 "
            "for the details and report them",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
