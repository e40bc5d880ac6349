"""Every check on items and releases, reporting all problems at once.

`validate_path` is what ``cbt bank validate`` runs. It accepts one item
file, a folder of item files, or a release folder (``bank.yaml``,
``items/``, ``media/``). Each problem names its file and line and says how
to fix it; its `code` is stable (tests and pages rely on it):

=====================  ==============================================
yaml-syntax            the file is not valid YAML
unknown-field          a misspelt or unsupported field (nearest name suggested)
missing-field          a required field is absent
duplicate-id           the same id and version twice in a release
key-not-in-options     `answer` names an option that does not exist
single-key-count       a `single` item without exactly one key
multiple-no-key        a `multiple` item with no key
truefalse4-statements  not exactly statements a-d, each true or false
short-key-syntax       a `short` key outside its format (Part III: ``-1,5``)
level-range            level outside 1-4
points-not-positive    points zero or negative
media-missing          a media file that is not in ``media/``
unsafe-content         HTML the sanitiser removed (scripts, handlers, URLs)
=====================  ==============================================

and a few more (bad-id, bad-math, unexpected-file ...), all listed in the
checks below.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from itembank.answers import short_key_problem
from itembank.archive import MANIFEST, SIGNATURE, ReleaseFiles, open_release
from itembank.errors import ItembankError, Problem
from itembank.formats.yaml_format import SourceItem, parse_bank_bytes, parse_bytes, parse_file
from itembank.limits import TooLarge
from itembank.model import BankInfo, ItemType
from itembank.render import is_media_path, render_item

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_OPTION_ID = re.compile(r"[A-Za-z0-9]{1,8}")
_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_RELEASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ITEM_SUFFIXES = (".yaml", ".yml")
LEVEL_NAMES = {
    1: "1 (Nhận biết / recall)",
    2: "2 (Thông hiểu / comprehension)",
    3: "3 (Vận dụng / application)",
    4: "4 (Vận dụng cao / high application)",
}
STATEMENT_IDS = ("a", "b", "c", "d")

MediaExists = Callable[[str], bool]  # is "media/x.png" in the release?
Report = Callable[[str, str, str], None]  # (code, message, field)


@dataclass
class ReleaseCheck:
    """The outcome of checking a whole release."""

    info: BankInfo | None
    items: list[SourceItem]
    problems: list[Problem] = field(default_factory=list)


# ---------------------------------------------------------------- entry points


def validate_path(path: Path | str) -> list[Problem]:
    """Check a file, a folder of item files, or a release (folder or .cbtbank).

    Raises itembank.limits.TooLarge for a file past what may be read.
    """
    path = Path(path)
    if not path.exists():
        return [Problem(str(path), None, "not-found", "no such file or folder")]
    if (path.is_dir() and (path / "bank.yaml").is_file()) or _is_zip(path):
        try:
            return check_release(open_release(path)).problems
        except TooLarge:
            raise
        except ItembankError as e:
            return [Problem(str(path), None, e.code, e.message)]
    files = [path] if path.is_file() else sorted(_item_files(path))
    if not files:
        return [Problem(str(path), None, "no-items", "no .yaml item files found here")]
    media_root = _media_root(path)
    sources, problems = [], []
    for file in files:
        result = parse_file(file)
        sources += result.items
        problems += result.problems
    problems += check_items(sources, lambda p: (media_root / p).is_file())
    return sorted(problems, key=_position)


def check_release(files: ReleaseFiles, *, render: bool = True) -> ReleaseCheck:
    """Check a release's layout, ``bank.yaml`` and every item.

    With ``render=False`` the checks that need each text rendered (unsafe
    HTML, math syntax, images named in the text) are skipped; see `check_item`.
    """
    label = files.label
    names = files.names()
    problems: list[Problem] = []
    info = None
    if "bank.yaml" in names:
        info, bank_problems = parse_bank_bytes(files.read("bank.yaml"), f"{label}/bank.yaml")
        problems += bank_problems
        if info is not None and not _RELEASE_NAME.fullmatch(info.name):
            problems.append(
                Problem(
                    f"{label}/bank.yaml",
                    None,
                    "bad-release-name",
                    f"release name '{info.name}' may use only letters, digits, . _ and -",
                )
            )
    else:
        problems.append(
            Problem(
                label,
                None,
                "missing-file",
                "bank.yaml not found: a release needs bank.yaml (format, name, version), items/ and media/",
            )
        )
    sources: list[SourceItem] = []
    for name in names:
        problem = _layout_problem(name, label)
        if problem:
            problems.append(problem)
        elif name.startswith("items/"):
            result = parse_bytes(files.read(name), f"{label}/{name}")
            sources += result.items
            problems += result.problems
    if not sources and not any(p.code == "yaml-syntax" for p in problems):
        problems.append(Problem(label, None, "no-items", "the release has no items in items/"))
    present = set(names)
    problems += check_items(sources, present.__contains__, render=render)
    return ReleaseCheck(info, sources, sorted(problems, key=_position))


def check_items(sources: Iterable[SourceItem], media_exists: MediaExists, *, render: bool = True) -> list[Problem]:
    """Check each item, and that no id and version appears twice."""
    problems: list[Problem] = []
    seen: dict[tuple[str, int], SourceItem] = {}
    for source in sources:
        problems += check_item(source, media_exists, render=render)
        identity = (source.item.id, source.item.version)
        first = seen.setdefault(identity, source)
        if first is not source:
            problems.append(
                source.problem(
                    "duplicate-id",
                    f"duplicate id: item {source.item.id} version {source.item.version}"
                    f" is also at {first.file}:{first.line}; give each item its own id,"
                    " or raise the version of the newer one",
                    "id",
                )
            )
    return problems


# ---------------------------------------------------------------- one item


def check_item(source: SourceItem, media_exists: MediaExists | None = None, *, render: bool = True) -> list[Problem]:
    """Every rule an item must meet beyond its shape (which the parser checked).

    `media_exists` says whether a path such as ``media/fig.png`` is in the
    release; without it, media files are not looked for. `render` runs the
    checks that render every text (unsafe HTML, math, images in the text):
    they take most of the time, and importing a signed release may skip
    them, because signing ran them and every text is sanitised again
    whenever it is shown.
    """
    item = source.item
    problems: list[Problem] = []

    def report(code: str, message: str, name: str) -> None:
        problems.append(source.problem(code, message, name))

    if not _ID.fullmatch(item.id):
        report(
            "bad-id",
            f"id '{item.id}': use up to 64 letters, digits, . _ or - (no spaces), e.g. M12-HS-001",
            "id",
        )
    if item.version < 1:
        report("bad-version", f"version must be 1 or more, not {item.version}", "version")
    for name in ("subject", "topic", "stem"):
        if not getattr(item, name).strip():
            report("empty-field", f"{name} must not be empty", name)
    if item.level not in LEVEL_NAMES:
        report(
            "level-range",
            f"level {item.level} is outside 1-4: use " + ", ".join(LEVEL_NAMES.values()),
            "level",
        )
    if not item.points > 0:
        report(
            "points-not-positive",
            f"points must be more than 0, not {item.points}: e.g. 0.25 for a Part I item",
            "points",
        )
    if item.grade is not None and not 1 <= item.grade <= 12:
        report(
            "bad-grade",
            f"grade {item.grade} is not a school grade 1-12: fix it or remove it",
            "grade",
        )
    if not _LANG.fullmatch(item.lang):
        report("bad-lang", f"lang '{item.lang}' is not a language code such as vi or en", "lang")
    for tag in item.tags:
        if not tag.strip():
            report("empty-field", "tags: remove the empty tag", "tags")

    if item.type in (ItemType.SINGLE, ItemType.MULTIPLE):
        _check_options(source, report)
    elif item.type == ItemType.TRUEFALSE4:
        found = tuple(s.id for s in item.statements)
        if found != STATEMENT_IDS:
            report(
                "truefalse4-statements",
                "a truefalse4 item needs exactly four statements a, b, c, d in that order,"
                f" each with text: and answer: true or false (found {', '.join(found) or 'none'})",
                "statements",
            )
    elif item.type == ItemType.SHORT and item.answer is not None:
        problem = short_key_problem(item.answer)
        if problem:
            report("short-key-syntax", problem, "answer")

    for path in item.media:
        if not is_media_path(path):
            report(
                "bad-media-path",
                f"media '{path}' must be a path in media/ such as media/graph-1.png (letters, digits, . _ -)",
                "media",
            )
        elif media_exists is not None and not media_exists(path):
            report(
                "media-missing",
                f"media file '{path}' not found: copy it into the release's media/ folder or correct the name",
                "media",
            )

    if not render:
        return problems
    for name, part in render_item(item).all_parts():
        for removed in part.removed:
            report("unsafe-content", f"{name}: unsafe content removed: {removed}", name)
        for error in part.math_errors:
            report("bad-math", f"{name}: {error}", name)
        for path in part.media:
            if media_exists is not None and not media_exists(path):
                report(
                    "media-missing",
                    f"{name}: media file '{path}' not found: copy it into"
                    " the release's media/ folder or correct the name",
                    name,
                )
    return problems


def _check_options(source: SourceItem, report: Report) -> None:
    item = source.item
    if len(item.options) < 2:
        report("too-few-options", f"a {item.type} item needs at least two options", "options")
    for option in item.options:
        if not _OPTION_ID.fullmatch(option.id):
            report(
                "bad-option-id",
                f"option id '{option.id}': use up to 8 letters or digits, e.g. A, B, C, D",
                f"options.{option.id}",
            )
        if not option.text.strip():
            report("empty-field", f"option {option.id} has no text", f"options.{option.id}")
    texts: dict[str, str] = {}
    for option in item.options:
        other = texts.setdefault(option.text.strip(), option.id)
        if other != option.id and option.text.strip():
            report(
                "duplicate-option-text",
                f"options {other} and {option.id} have the same text: make each option different",
                f"options.{option.id}",
            )
    keys = item.correct_option_ids
    if item.type == ItemType.SINGLE and len(keys) != 1:
        found = f"{len(keys)} ({', '.join(keys)})" if keys else "none"
        report(
            "single-key-count",
            f"a single item needs exactly one key, found {found}:"
            " give one option id in answer:, or make it type: multiple",
            "answer",
        )
    if item.type == ItemType.MULTIPLE and not keys:
        report(
            "multiple-no-key",
            "a multiple item needs at least one key: write e.g. answer: [A, C]",
            "answer",
        )


# ---------------------------------------------------------------- helpers


def _position(problem: Problem) -> tuple[str, int]:
    return problem.file, problem.line or 0


def _layout_problem(name: str, label: str) -> Problem | None:
    """A release holds bank.yaml, items/*.yaml, media/* and the manifest: nothing else."""
    if name in ("bank.yaml", MANIFEST, SIGNATURE):
        return None
    where = f"{label}/{name}"
    parts = name.split("/")
    if not all(_FILE_NAME.fullmatch(part) for part in parts):
        return Problem(
            where,
            None,
            "file-name",
            "rename it using only letters a-z, digits,"
            " . _ and - (no spaces or accents), so that it works on every system",
        )
    if parts[0] == "items" and len(parts) > 1 and name.endswith(ITEM_SUFFIXES):
        return None
    if parts[0] == "media" and len(parts) > 1:
        return None
    return Problem(
        where,
        None,
        "unexpected-file",
        "a release holds only bank.yaml, items/*.yaml and media/; move this file out of the release folder",
    )


def _is_zip(path: Path) -> bool:
    """A packed release (.cbtbank), whatever its name."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _item_files(folder: Path) -> Iterable[Path]:
    for path in folder.rglob("*"):
        if path.suffix in ITEM_SUFFIXES and path.is_file() and path.name != "bank.yaml":
            yield path


def _media_root(path: Path) -> Path:
    """Where media/ paths of loose item files point: the enclosing release, if any."""
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / "bank.yaml").is_file() or (folder / "media").is_dir():
            return folder
    return start
