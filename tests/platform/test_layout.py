"""The shape of the code: which module may import which. Read from the
source, so a cycle is caught the day it is written, whether the import sits
at the top of a module or inside a function (an import inside a function
is still a dependency, only a hidden one). Imports for the type checker
alone (`if TYPE_CHECKING:`) never run, and are no dependency."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from support.paths import REPO

ROOT = REPO
PACKAGES = ("cbt", "itembank")


def module_names() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # Names imported for the type checker only (under `if TYPE_CHECKING:`) are not run.
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
                elif base in known:
                    found.add(base)
    found.discard(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_one_that_imports_it_back():
    known = module_names()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    # The parser sees imports, top-level and inside functions.
    assert graph["cbt.delivery.candidate"] and graph["cbt.cli"]
    assert cycles(graph) == []


def test_the_domain_does_not_depend_on_the_question_bank_tools_the_other_way():
    # itembank is the bank's file format and signing, usable without a server:
    # it must never import cbt.
    known = module_names()
    offenders = {
        name: sorted(d for d in imports_of(name, path, known) if d.startswith("cbt"))
        for name, path in known.items()
        if name.startswith("itembank")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_handlers_send_the_browser_on_by_route_name():
    # A path written by hand in a redirect breaks silently when the URL table
    # changes; auth.redirect builds it from the route's name. see_other is
    # left for a `next` target that safe_next has checked.
    by_hand = re.compile(r"see_other\((?!safe_next\()")
    offenders = [
        f"{path.name}:{n}"
        for path in (ROOT / "cbt").rglob("*.py")
        if path.name != "auth.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if by_hand.search(line)
    ]
    assert offenders == []


def test_numbers_for_people_are_written_one_way():
    # Three formatters once wrote "no value" with three different dashes.
    defined = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in (ROOT / "cbt").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name in ("fmt", "local_number")
    ]
    assert defined == ["cbt/numbers.py:11", "cbt/numbers.py:16"]


def test_forms_carry_the_csrf_token_through_one_helper():
    # 29 forms once wrote the hidden input by hand; csrf_field() writes it for all.
    by_hand = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "web" / "templates").rglob("*.html")
        if 'name="csrf_token"' in path.read_text(encoding="utf-8")
    ]
    assert by_hand == []
    forms = sum(
        path.read_text(encoding="utf-8").count("csrf_field()") for path in (ROOT / "web" / "templates").rglob("*.html")
    )
    assert forms >= 29


TESTS = ROOT / "tests"


def imports_of_test_modules(path: Path) -> list[str]:
    """The test modules (test_*.py) and conftest that ``path`` imports,
    anywhere in its source."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
        found += [n for n in names if re.fullmatch(r"(tests\.)?(test_\w+|conftest)(\..+)?", n)]
    return found


def test_the_test_import_finder_finds_one(tmp_path):
    path = tmp_path / "test_x.py"
    path.write_text(
        "import os\nfrom aiohttp.test_utils import TestClient\nfrom support.cli import cbt\n\n"
        "def test_y():\n    from test_server import free_port\n    import conftest\n"
    )
    assert imports_of_test_modules(path) == ["test_server", "conftest"]


def test_no_test_module_imports_another():
    """What tests share lives in tests/support (fixtures through conftest's
    pytest_plugins); a test module that imported another would run that
    module's fixtures under its own name and tie the two together."""
    found = {
        str(p.relative_to(TESTS)): names for p in sorted(TESTS.rglob("*.py")) if (names := imports_of_test_modules(p))
    }
    assert found == {}


def _package_of(name: str) -> str:
    """cbt.workspace.exams -> workspace; cbt.exams -> domain; itembank.x -> itembank."""
    parts = name.split(".")
    if parts[0] != "cbt":
        return parts[0]
    if len(parts) > 2 and parts[1] in {"analysis", "delivery", "platform", "workspace"}:
        return parts[1]
    return "entry" if parts[-1] in {"cli", "demo", "__main__"} else "domain"


def test_handlers_stand_on_the_domain_and_the_platform_never_on_each_other():
    # What the README's Layout promises: the exam day's handlers (delivery/) and
    # the staff pages (workspace/) share code only through the domain modules
    # and platform/; no domain module reaches up into a handler package; and of
    # platform/ only the two modules that assemble the application (app, routes)
    # know the handlers.
    known = module_names()
    allowed = {
        "domain": {"domain", "analysis", "platform", "itembank"},
        "analysis": {"analysis", "platform", "domain"},
        "delivery": {"delivery", "domain", "analysis", "platform", "itembank"},
        "workspace": {"workspace", "domain", "analysis", "platform", "itembank"},
        "platform": {"platform", "domain", "analysis", "itembank"},
    }
    assemblers = {"cbt.platform.app", "cbt.platform.routes"}
    offenders = sorted(
        f"{name} -> {dep}"
        for name, path in known.items()
        if name.startswith("cbt.") and name not in assemblers and _package_of(name) in allowed
        for dep in imports_of(name, path, known)
        if _package_of(dep) not in allowed[_package_of(name)]
    )
    assert offenders == []


def test_the_numbers_of_the_analysis_need_only_numpy():
    # `cbt analyze` and the benchmarks run the statistics without a server:
    # ctt, irt, dif and report import nothing of cbt outside cbt.analysis.
    known = module_names()
    numeric = [n for n in known if n.startswith("cbt.analysis.") and n.split(".")[-1] not in {"render", "csvfile"}]
    assert "cbt.analysis.ctt" in numeric
    offenders = {
        name: sorted(d for d in imports_of(name, known[name], known) if not d.startswith("cbt.analysis"))
        for name in numeric
    }
    assert {k: v for k, v in offenders.items() if v} == {}
