"""Vietnamese first, English on request; no UI text outside the catalogs."""

import ast
import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from support.accounts import login
from support.i18n import VIETNAMESE
from support.paths import REPO

from cbt.platform.i18n import request_language

TEMPLATES = REPO / "web" / "templates"
CATALOGS = {lang: json.loads((REPO / "web" / "i18n" / f"{lang}.json").read_text("utf-8")) for lang in ("vi", "en")}


def test_catalogs_have_the_same_keys():
    assert set(CATALOGS["vi"]) == set(CATALOGS["en"])


def test_every_key_used_in_templates_exists():
    used = set()
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text("utf-8")
        used |= set(re.findall(r"""(?<![\w.])t\(["']([a-z0-9_.]*[a-z0-9_])["']""", text))
        # Dynamic keys ("role." ~ x) are checked by prefix below.
        for prefix in re.findall(r"""(?<![\w.])t\(["']([a-z0-9_.]+\.)["'] ~""", text):
            assert any(k.startswith(prefix) for k in CATALOGS["vi"]), prefix
    missing = {k for k in used if k not in CATALOGS["vi"]}
    assert not missing, f"keys used in templates but missing from vi.json: {sorted(missing)}"
    assert len(used) > 30


def test_templates_hold_no_bare_text():
    """Text between tags must come from t(...): strip tags and expressions and
    see that no letters remain."""
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text("utf-8")
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", text, flags=re.S)
        text = re.sub(r"<[^>]*>", "", text, flags=re.S)
        leftovers = [w for w in re.findall(r"[^\W\d_]{2,}", text) if w not in ("cbt",)]
        assert not leftovers, f"{path.name}: bare UI text {leftovers[:5]}"


async def test_vietnamese_is_the_default(client):
    html = await (await client.get("/login")).text()
    assert '<html lang="vi">' in html
    assert "Đăng nhập cán bộ" in html


async def test_switch_to_english_and_back(client, staff):
    resp = await client.get("/lang/en?next=/login", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    html = await (await client.get("/login")).text()
    assert '<html lang="en">' in html and "Staff sign-in" in html
    await login(client, "teacher")
    html = await (await client.get("/staff")).text()
    assert "Hello, teacher" in html and "Role: Teacher" in html
    await client.get("/lang/vi")
    html = await (await client.get("/staff")).text()
    assert "Xin chào, teacher" in html


async def test_language_switch_refuses_unknown_language_and_foreign_redirects(client):
    assert (await client.get("/lang/fr")).status == 404
    resp = await client.get("/lang/en?next=https://evil.example/", allow_redirects=False)
    assert resp.headers["Location"] == "/"


async def test_error_pages_speak_english_after_the_switch(client):
    await client.get("/lang/en")
    html = await (await client.get("/nowhere")).text()
    assert "Page not found" in html


def test_language_is_vietnamese_unless_chosen():
    assert request_language(None) == "vi"
    assert request_language("en") == "en"
    assert request_language("xx") == "vi"


async def test_english_browser_still_gets_vietnamese(client):
    html = await (await client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})).text()
    assert '<html lang="vi">' in html


# -- every error code speaks both languages ---------------------------------------------------
#
# The codes are collected from the source, so a new raise site, a new code or
# a new subclass of UserError is covered without anyone listing it here.

CBT, ITEMBANK = REPO / "cbt", REPO / "itembank"
TREES = {
    path: ast.parse(path.read_text("utf-8"), str(path))
    for root in (CBT, ITEMBANK)
    for path in sorted(root.rglob("*.py"))
}


@dataclass(frozen=True)
class Site:
    """A place that raises a code, and the names of the details it passes."""

    where: str
    details: frozenset


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{node.lineno}"


def error_classes(base: str) -> set[str]:
    """base and every class deriving from it, however indirectly."""
    names, grew = {base}, True
    while grew:
        grew = False
        for tree in TREES.values():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ClassDef)
                    and node.name not in names
                    and any(_name(b) in names for b in node.bases)
                ):
                    names.add(node.name)
                    grew = True
    return names


def _fixed_code(classdef: ast.ClassDef) -> ast.Call | None:
    """The super().__init__(code, ...) call of a subclass that gives its own code."""
    init = next((f for f in classdef.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
    if init is None or "code" in [a.arg for a in init.args.args]:
        return None
    for node in ast.walk(init):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
            and isinstance(node.func.value, ast.Call)
            and _name(node.func.value.func) == "super"
        ):
            return node
    return None


def _detail_names(call: ast.Call, tree: ast.Module, where: str) -> frozenset:
    names = set()
    for kw in call.keywords:
        if kw.arg is not None:
            names.add(kw.arg)
            continue
        # **helper(...): the keys of the dict the helper returns.
        helper = _name(kw.value.func) if isinstance(kw.value, ast.Call) else None
        returns = [
            r.value
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef) and f.name == helper
            for r in ast.walk(f)
            if isinstance(r, ast.Return)
        ]
        assert returns and all(isinstance(r, ast.Dict) for r in returns), f"{where}: cannot see the details"
        names |= {k.value for r in returns for k in r.keys}
    return frozenset(names - {"status"})


def _code_values(arg: ast.AST, tree: ast.Module, where: str) -> list[str] | None:
    """The codes a constructor's first argument can hold; None for `e.code`, another error's code passed on."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.Attribute) and arg.attr == "code":
        return None
    assert isinstance(arg, ast.Name), f"{where}: a code this test cannot read: {ast.unparse(arg)}"
    # A name: every string its assignments in the module can give it.
    values = [
        n.value
        for a in ast.walk(tree)
        if isinstance(a, ast.Assign) and any(_name(t) == arg.id for t in a.targets)
        for n in ast.walk(a.value)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    assert values, f"{where}: cannot see what {arg.id} holds"
    return values


def raised(base: str, but: str | None = None) -> tuple[dict[str, list[Site]], list[Site]]:
    """code -> the sites that construct an error of base's family (but not of but's) with
    it; and the sites that pass another error's code on."""
    classes = error_classes(base) - (error_classes(but) if but else set())
    fixed = {
        node.name: (call, tree)
        for tree in TREES.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name in classes and (call := _fixed_code(node))
    }
    codes: dict[str, list[Site]] = {}
    passed_on = []
    for path, tree in TREES.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _name(node.func) not in classes:
                continue
            where = _where(path, node)
            call, home = fixed.get(_name(node.func), (node, tree))
            assert call.args, f"{where}: an error without a code"
            site = Site(where, _detail_names(call, home, where))
            values = _code_values(call.args[0], home, where)
            if values is None:
                passed_on.append(site)
            for code in values or ():
                codes.setdefault(code, []).append(site)
    return codes, passed_on


def middleware_codes() -> dict[str, list[Site]]:
    """The codes the error middleware gives HTTP errors and its own failures (no details)."""
    path = CBT / "platform" / "middleware.py"
    codes: dict[str, list[Site]] = {}
    for node in ast.walk(TREES[path]):
        found = []
        if isinstance(node, ast.Assign) and any(_name(t) == "_HTTP_CODES" for t in node.targets):
            found = node.value.values
        elif isinstance(node, ast.Call) and _name(node.func) == "_error_response":
            found = [node.args[2]]
        elif isinstance(node, ast.Call) and _name(node.func) == "get" and _name(node.func.value) == "_HTTP_CODES":
            found = [node.args[1]]
        for arg in found:
            if isinstance(arg, ast.Constant):
                codes.setdefault(arg.value, []).append(Site(_where(path, node), frozenset()))
    return codes


def all_error_codes() -> dict[str, list[Site]]:
    codes, passed_on = raised("UserError")
    # bank.bank_error raises an itembank error's code as a UserError, with details of its own;
    # a TooLarge it turns into uploads.too_large, which is seen above with its `limit`.
    assert [s.where.split(":")[0] for s in passed_on] == ["cbt/bank.py"], passed_on
    for code, sites in raised("ItembankError", but="TooLarge")[0].items():
        codes.setdefault(code, []).extend(
            Site(f"{s.where} via {passed_on[0].where}", passed_on[0].details) for s in sites
        )
    for code, sites in middleware_codes().items():
        codes.setdefault(code, []).extend(sites)
    return codes


def test_the_collector_sees_every_error_class_and_code():
    # A regex over the source finds the same subclasses as the syntax tree,
    # so no way of writing a class hides one from the test below.
    text = "\n".join(path.read_text("utf-8") for path in TREES)
    for base in ("UserError", "ItembankError"):
        classes = error_classes(base)
        by_regex = {base} | {
            name
            for name, bases in re.findall(r"^class (\w+)\(([^)]*)\)", text, re.M)
            if any(b.strip().split(".")[-1] in classes for b in bases.split(","))
        }
        assert by_regex == classes
    codes = all_error_codes()
    assert {
        "weak_password",
        "infeasible_blueprint",
        "roster_invalid",
        "bad_exam_file",
        "invalid_item",
        "bad-signature",
        "changed-file",
        "too_large",
        "bad_request",
        "http_error",
        "internal_error",
    } <= set(codes)
    assert len(codes) > 150


def _formats(text: str, details: frozenset) -> str | None:
    """None if text formats with these details; otherwise what goes wrong."""
    try:
        text.format(**{name: "x" for name in details})
    except (KeyError, IndexError, ValueError) as e:
        return f"{type(e).__name__} {e}"
    return None


def test_every_error_code_has_a_vietnamese_and_an_english_text():
    http = set(middleware_codes())
    faults = []
    for code, sites in sorted(all_error_codes().items()):
        key = "error." + code
        vi, en = CATALOGS["vi"].get(key), CATALOGS["en"].get(key)
        if not vi:
            faults.append(f"{key}: no Vietnamese text ({sites[0].where})")
        elif not VIETNAMESE.search(vi):
            faults.append(f"{key}: the Vietnamese text is not Vietnamese: {vi!r}")
        if en is None:
            faults.append(f"{key}: no English entry ({sites[0].where})")
        elif not en and code in http:
            # Empty means "the raised English message"; an HTTP error has only its reason phrase.
            faults.append(f"{key}: an HTTP error's code needs its English text")
        for lang, text in (("vi", vi), ("en", en)):
            for site in sites if text else ():
                if fault := _formats(text, site.details):
                    faults.append(f"{key} ({lang}): {fault}: {site.where} passes only {sorted(site.details)}")
    assert not faults, f"{len(faults)} faults:\n" + "\n".join(faults)


def problem_sites() -> dict[str, list[Site]]:
    """code -> the places that make a Problem (an exam file's or the builder form's) with it."""
    codes: dict[str, list[Site]] = {}
    # cbt.platform.errors only rebuilds a pickled one; itembank's Problem is another type.
    for path, tree in TREES.items():
        if not path.is_relative_to(CBT) or path == CBT / "platform" / "errors.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) == "Problem":
                where = _where(path, node)
                assert len(node.args) >= 2 and isinstance(node.args[1], ast.Constant), f"{where}: no code to see"
                # A **splat (the builder's cell names) can only add to what is named here.
                names = frozenset(kw.arg for kw in node.keywords if kw.arg is not None)
                codes.setdefault(node.args[1].value, []).append(Site(where, names))
    return codes


def test_every_problem_code_has_a_vietnamese_text_and_every_field_a_label():
    from cbt import builder

    sites = problem_sites()
    assert {"closes_before_opens", "out_of_range", "tz_invalid", "cell_short", "not_network"} <= set(sites)
    faults = []
    for code, where in sorted(sites.items()):
        key = "problem." + code
        vi, en = CATALOGS["vi"].get(key), CATALOGS["en"].get(key)
        if not vi or not VIETNAMESE.search(vi):
            faults.append(f"{key}: no Vietnamese text ({where[0].where})")
        if en is None:
            faults.append(f"{key}: no English entry (empty: the English line itself)")
        for lang, text in (("vi", vi), ("en", en)):
            for site in where if text else ():
                if fault := _formats(text, site.details):
                    faults.append(f"{key} ({lang}): {fault}: {site.where} passes only {sorted(site.details)}")
    for key in [*builder.FIELD_LABELS.values(), *builder.SECTION_FIELD_LABELS.values()]:
        if not (CATALOGS["vi"].get(key) and CATALOGS["en"].get(key)):
            faults.append(f"{key}: a field label without its texts")
    assert not faults, f"{len(faults)} faults:\n" + "\n".join(faults)


# -- errors shown inside a page speak the reader's language too --------------------------------


async def test_an_error_shown_inside_a_page_speaks_the_readers_language(client, conn, staff):
    from support.releases import approved, build

    await approved(conn)
    await login(client, "teacher")
    html = await (await build(client, [])).text()
    assert 'data-code="no_items_chosen"' in html and "Chưa chọn câu hỏi nào cho bản phát hành." in html
    await client.get("/lang/en")
    html = await (await build(client, [])).text()
    assert "choose at least one approved item for the release" in html


async def test_a_new_account_refused_on_the_users_page_says_why_in_vietnamese(client, staff):
    await login(client, "admin")
    html = await (await client.get("/staff/users")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    fields = {"csrf_token": token, "username": "moi", "display_name": "", "role": "teacher", "org": "THPT-A"}
    html = await (await client.post("/staff/users", data=fields | {"password": "ngan"})).text()
    assert 'data-code="weak_password"' in html and "Mật khẩu phải có ít nhất 10 ký tự." in html
    html = await (
        await client.post("/staff/users", data=fields | {"username": "teacher", "password": "mat khau du dai"})
    ).text()
    assert 'data-code="user_exists"' in html and "Tên đăng nhập teacher đã có người dùng" in html


async def test_a_form_past_the_servers_limit_is_refused_in_vietnamese(client):
    # Read by the input check before any upload route's own limit: the same
    # too_large refusal, naming the limit, not the HTTP reason phrase.
    resp = await client.post("/login", data={"username": "x" * (5 * 1024 * 1024)})
    html = await resp.text()
    assert resp.status == 413 and 'data-code="too_large"' in html
    assert "(giới hạn: 4 MB)" in html and "Request Entity Too Large" not in html


async def test_the_candidate_api_answers_in_the_readers_language(client):
    resp = await client.post("/api/v1/login", json={"ticket": "KHONG-CO"})
    err = (await resp.json())["error"]
    assert err["code"] == "bad_ticket" and err["message"].startswith("Mã dự thi không đúng")
    client.session.cookie_jar.update_cookies({"cbt_lang": "en"})
    err = (await (await client.post("/api/v1/login", json={"ticket": "KHONG-CO"})).json())["error"]
    assert err["message"] == "this ticket is not valid: check each character, or ask your proctor"


def test_the_report_workbook_has_its_words_in_both_catalogs():
    from cbt.analysis import render
    from cbt.analysis.ctt import FlagThresholds

    keys = {key: render._CATALOG_KEYS.get(key, "report." + key) for key in render.XLSX_WORDS}
    missing = [k for k in keys.values() for lang in ("vi", "en") if not CATALOGS[lang].get(k)]
    assert not missing
    thresholds = dataclasses.asdict(FlagThresholds())
    for lang in ("vi", "en"):
        for key in keys.values():
            if key.startswith("report.rule."):
                CATALOGS[lang][key].format(**thresholds)
        CATALOGS[lang]["report.note.flag"].format(flag="x", text="x", rule="x")


# -- one word for each thing (docs/glossary.md) -------------------------------------------------

REJECTED = {
    r"\b[Kk]ì\b": "Kỳ",
    r"\b[Kk]hóa\b": "Khoá",
    r"\b[Xx]óa\b": "Xoá",
    r"\b[Hh]óa\b": "Hoá",
    r"\b[Tt]ùy\b": "Tuỳ",
    r"\bMột đáp án\b": "Một lựa chọn",
    r"(?i)\bmã học sinh\b": "Số báo danh",
}
# These list the headers a roster may have, which schools write in many ways.
ROSTER_ALIASES = {"ws.exams.roster_help", "roster.problem.roster_column_missing.code"}


def test_the_vietnamese_interface_says_each_thing_with_one_word():
    from cbt import roster

    texts = [(f"vi.json {key}", text) for key, text in CATALOGS["vi"].items() if key not in ROSTER_ALIASES]
    texts += [(str(path.relative_to(REPO)), path.read_text("utf-8")) for path in TEMPLATES.rglob("*.html")]
    texts += [
        ("roster.TICKET_CSV_HEADERS", " ".join(roster.TICKET_CSV_HEADERS["vi"])),
        ("roster.TEMPLATE_HEADERS", " ".join(roster.TEMPLATE_HEADERS)),
        ("roster.COLUMNS", " ".join(c.label for c in roster.COLUMNS)),
    ]
    faults = [
        f"{where}: {re.search(pattern, text).group(0)!r}, say {word}"
        for where, text in texts
        for pattern, word in REJECTED.items()
        if re.search(pattern, text)
    ]
    assert not faults, "\n".join(faults)
    assert CATALOGS["vi"]["type.single"] == CATALOGS["vi"]["ws.exams.type.single"] == "Một lựa chọn"


def test_scores_and_points_on_pages_go_through_num():
    """A score, a mark or points shown on a page is written by num() (0,25 in Vietnamese);
    a form field's value is what the reader typed, and is left as it is."""
    number = r"\b(points|score|mark|max_points|max_score|total_points|fmt)\b"
    shown = re.compile(r"\{\{[^}]*" + number + r"[^}]*\}\}")
    faults = []
    for path in TEMPLATES.rglob("*.html"):
        text = re.sub(r'value="[^"]*"|max="[^"]*"|step="[^"]*"', "", path.read_text("utf-8"))
        for m in shown.finditer(text):
            # What is written: not the names in quotes, nor a condition (x if cond else y).
            written = re.sub(r"\bif\b.*?(\belse\b|\}\})", r"\1", re.sub(r"(['\"]).*?\1", "", m.group(0)))
            if re.search(number, written) and "num(" not in written:
                faults.append(f"{path.name}: {m.group(0)}")
    assert not faults, "\n".join(faults)


_CODE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)+")


def _codes_in(node: ast.AST) -> list[str]:
    """The problem codes an argument can be: a code, either of `a if c else b`, or a
    (code, message) pair's first (the foreign importers' text converter collects those)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and _CODE.fullmatch(node.value):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _codes_in(node.body) + _codes_in(node.orelse)
    if isinstance(node, ast.Tuple) and node.elts:
        return _codes_in(node.elts[0])
    return []


def test_every_item_problem_the_editor_can_show_has_a_vietnamese_text():
    """The item editor and the list of an import's problems (and notes) say itembank's
    problems (and cbt's own) through "item_problem.<code>"; so does an import of another
    tool's file, whatever its importer (every module of itembank/formats)."""
    codes = {"bad-type", "bad-status"}  # the parser's f"bad-{name}" for its two choices
    # One-word codes, which the pattern cannot tell from a column's name (xlsx's report(column, code, ...)),
    # and the Word reader's too_large (itembank.limits.TOO_LARGE, the web's code).
    codes |= {"encoding", "unreadable", "exists", "too_large"}
    makers = {"report", "problem", "note", "refuse", "fail", "file_problem", "FieldProblem", "Problem", "_problem"}
    makers.add("append")  # the Moodle text converter's (code, message) pairs
    for path in (
        ITEMBANK / "validate.py",
        *sorted((ITEMBANK / "formats").glob("*.py")),
        CBT / "authoring.py",
        CBT / "platform" / "uploads.py",
    ):
        for node in ast.walk(TREES[path]):
            if isinstance(node, ast.Call) and _name(node.func) in makers:
                # The first argument that is a code (both of a choice between two).
                codes |= set(next((found for a in node.args if (found := _codes_in(a))), []))
    assert {
        "points-not-positive",
        "single-key-count",
        "wrong-type",
        "subject-not-listed",
        "id-taken",
        "unknown-column",
        "missing-column",
        # The foreign importers': a problem, a choice between two, a note, a (code, message) pair.
        "two-keys",
        "latex-syntax",
        "unsafe-xml",
        "no-key",
        "gift-syntax",
        "options-out-of-order",
        "weights-not-kept",
        "media-not-embedded",
        "unknown-kind",
        "prefix-taken",
    } <= codes
    missing = [
        c
        for c in sorted(codes)
        if not VIETNAMESE.search(CATALOGS["vi"].get("item_problem." + c, ""))
        or "item_problem." + c not in CATALOGS["en"]
    ]
    assert not missing, missing
