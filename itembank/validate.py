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
level-range            a level the bank's scheme does not have (itembank.levels)
points-not-positive    points zero or negative
media-missing          a media file that is not in ``media/``
unsafe-content         HTML the sanitiser removed (scripts, handlers, URLs)
set-empty              an item set with no items
set-nested             a set inside a set's items
set-child-field        a set's item giving what the set gives (version, status ...)
fixed-statement        ``fixed:`` on a truefalse4 statement (only options are fixed)
bad-levels             bank.yaml's ``levels:`` is not a level scheme
=====================  ==============================================

and a few more (bad-id, bad-math, unexpected-file ...), all listed in the
checks below. A child id used twice (in two sets, or by a set and a lone
item) is a ``duplicate-id`` naming both places.

Levels are checked against the release's scheme (bank.yaml's ``levels:``);
item files checked on their own use the scheme of the release folder they
sit in, and the legacy one outside any.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from itembank.answers import short_key_problem
from itembank.archive import MANIFEST, SIGNATURE, ReleaseFiles, open_release
from itembank.errors import ItembankError, Problem
from itembank.formats.yaml_format import SourceItem, SourceSet, parse_bank_bytes, parse_bytes, parse_file
from itembank.levels import LEGACY, LevelScheme
from itembank.limits import TooLarge
from itembank.model import BankInfo, ItemType
from itembank.render import Rendered, is_media_path, render_item, render_set

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_OPTION_ID = re.compile(r"[A-Za-z0-9]{1,8}")
_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_RELEASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ITEM_SUFFIXES = (".yaml", ".yml")
STATEMENT_IDS = ("a", "b", "c", "d")

MediaExists = Callable[[str], bool]  # is "media/x.png" in the release?
Report = Callable[[str, str, str], None]  # (code, message, field)


@dataclass
class ReleaseCheck:
    """The outcome of checking a whole release."""

    info: BankInfo | None
    items: list[SourceItem]  # every item, the sets' children among them
    problems: list[Problem] = field(default_factory=list)
    sets: list[SourceSet] = field(default_factory=list)


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
    levels = _enclosing_levels(media_root)
    sources, sets, problems = [], [], []
    for file in files:
        result = parse_file(file, levels=levels)
        sources += result.items
        sets += result.sets
        problems += result.problems
    problems += check_items(sources, lambda p: (media_root / p).is_file(), levels=levels, sets=sets)
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
    # A bank.yaml with problems is reported; its items are read with the legacy levels meanwhile.
    levels = info.levels if info is not None else LEGACY
    sources: list[SourceItem] = []
    sets: list[SourceSet] = []
    for name in names:
        problem = _layout_problem(name, label)
        if problem:
            problems.append(problem)
        elif name.startswith("items/"):
            result = parse_bytes(files.read(name), f"{label}/{name}", levels=levels)
            sources += result.items
            sets += result.sets
            problems += result.problems
    if not sources and not any(p.code == "yaml-syntax" for p in problems):
        problems.append(Problem(label, None, "no-items", "the release has no items in items/"))
    present = set(names)
    problems += check_items(sources, present.__contains__, render=render, levels=levels, sets=sets)
    return ReleaseCheck(info, sources, sorted(problems, key=_position), sets)


def check_items(
    sources: Iterable[SourceItem],
    media_exists: MediaExists,
    *,
    render: bool = True,
    levels: LevelScheme = LEGACY,
    sets: Iterable[SourceSet] = (),
) -> list[Problem]:
    """Check each item and set, that no id and version appears twice, and
    that a set's child has an id of its own."""
    sources, sets = list(sources), list(sets)
    problems: list[Problem] = []
    for source_set in sets:
        problems += check_set(source_set, media_exists, render=render, levels=levels)
    seen: dict[tuple[str, int], SourceItem] = {}
    for source in sources:
        problems += check_item(source, media_exists, render=render, levels=levels)
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
    problems += _id_owners(sources, sets)
    return problems


def _id_owners(sources: list[SourceItem], sets: list[SourceSet]) -> list[Problem]:
    """Ids of sets and their children: a set's id and version once; a child's
    id its set's alone, in every version (no other set's child, no lone item,
    no set shares it); a set's id no item's.

    The same item id and version twice is reported by check_items already.
    """
    problems: list[Problem] = []
    seen_sets: dict[tuple[str, int], SourceSet] = {}
    for source_set in sets:
        first_set = seen_sets.setdefault((source_set.set.id, source_set.set.version), source_set)
        if first_set is not source_set:
            problems.append(
                source_set.problem(
                    "duplicate-id",
                    f"duplicate id: set {source_set.set.id} version {source_set.set.version} is also at"
                    f" {first_set.file}:{first_set.line}; give each set its own id,"
                    " or raise the version of the newer one",
                    "id",
                )
            )
    # id -> (what first used it, its version, where)
    first: dict[str, tuple[_Owner, int, SourceItem | SourceSet]] = {}
    everything: list[SourceItem | SourceSet] = [*sets, *sources]
    for source in everything:
        if isinstance(source, SourceSet):
            identity, version, owner = source.set.id, source.set.version, _Owner("set", source.set.id)
        else:
            item = source.item
            identity, version = item.id, item.version
            owner = _Owner("child", item.set_id) if item.set_id is not None else _Owner("item", None)
        earlier, earlier_version, where = first.setdefault(identity, (owner, version, source))
        if earlier == owner:
            continue  # versions of one set, of one set's child, or of one lone item
        if earlier.kind != "set" and owner.kind != "set" and earlier_version == version:
            continue  # the same id and version twice: check_items said so
        problems.append(
            source.problem(
                "duplicate-id",
                f"id {identity} is {owner} here and {earlier} at {where.file}:{where.line}:"
                " give each item and set its own id",
                "id",
            )
        )
    return problems


@dataclass(frozen=True)
class _Owner:
    """What an id names: a set, a child of set `set_id`, or a lone item."""

    kind: str  # "set", "child" or "item"
    set_id: str | None

    def __str__(self) -> str:
        if self.kind == "set":
            return f"set {self.set_id}"
        return f"an item of set {self.set_id}" if self.kind == "child" else "a lone item"


# ---------------------------------------------------------------- one item


def check_item(
    source: SourceItem,
    media_exists: MediaExists | None = None,
    *,
    render: bool = True,
    levels: LevelScheme = LEGACY,
) -> list[Problem]:
    """Every rule an item must meet beyond its shape (which the parser checked).

    `media_exists` says whether a path such as ``media/fig.png`` is in the
    release; without it, media files are not looked for. `render` runs the
    checks that render every text (unsafe HTML, math, images in the text):
    they take most of the time, and importing a signed release may skip
    them, because signing ran them and every text is sanitised again
    whenever it is shown. `levels` is the release's level scheme. A set's
    child is not checked again for what it took from its set (`check_set`
    checks that once).
    """
    item = source.item
    own = _own(source)
    problems: list[Problem] = []

    def report(code: str, message: str, name: str) -> None:
        problems.append(source.problem(code, message, name))

    if not _ID.fullmatch(item.id):
        report(
            "bad-id",
            f"id '{item.id}': use up to 64 letters, digits, . _ or - (no spaces), e.g. M12-HS-001",
            "id",
        )
    if own("version") and item.version < 1:
        report("bad-version", f"version must be 1 or more, not {item.version}", "version")
    for name in ("subject", "topic", "stem"):
        if own(name) and not getattr(item, name).strip():
            report("empty-field", f"{name} must not be empty", name)
    if own("level") and item.level not in levels.numbers:
        report("level-range", levels.range_message(item.level), "level")
    if not item.points > 0:
        report(
            "points-not-positive",
            f"points must be more than 0, not {item.points}: e.g. 0.25 for a Part I item",
            "points",
        )
    if own("grade") and item.grade is not None and not 1 <= item.grade <= 12:
        report(
            "bad-grade",
            f"grade {item.grade} is not a school grade 1-12: fix it or remove it",
            "grade",
        )
    if own("lang") and not _LANG.fullmatch(item.lang):
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

    _check_media(item.media, media_exists, report)
    if render:
        for name, part in render_item(item).all_parts():
            _check_rendered(name, part, media_exists, report)
    return problems


def check_set(
    source: SourceSet,
    media_exists: MediaExists | None = None,
    *,
    render: bool = True,
    levels: LevelScheme = LEGACY,
) -> list[Problem]:
    """The rules for a set's own fields, which its children share; the
    children are items, checked by `check_item`."""
    item_set = source.set
    problems: list[Problem] = []

    def report(code: str, message: str, name: str) -> None:
        problems.append(source.problem(code, message, name))

    if not _ID.fullmatch(item_set.id):
        report(
            "bad-id",
            f"id '{item_set.id}': use up to 64 letters, digits, . _ or - (no spaces), e.g. EN-DOC-01",
            "id",
        )
    if item_set.version < 1:
        report("bad-version", f"version must be 1 or more, not {item_set.version}", "version")
    for name in ("subject", "topic", "stimulus"):
        if not getattr(item_set, name).strip():
            report("empty-field", f"{name} must not be empty", name)
    if item_set.level is not None and item_set.level not in levels.numbers:
        report("level-range", levels.range_message(item_set.level), "level")
    if item_set.grade is not None and not 1 <= item_set.grade <= 12:
        report("bad-grade", f"grade {item_set.grade} is not a school grade 1-12: fix it or remove it", "grade")
    if not _LANG.fullmatch(item_set.lang):
        report("bad-lang", f"lang '{item_set.lang}' is not a language code such as vi or en", "lang")
    for tag in item_set.tags:
        if not tag.strip():
            report("empty-field", "tags: remove the empty tag", "tags")
    _check_media(item_set.media, media_exists, report)
    if render:
        _check_rendered("stimulus", render_set(item_set).stimulus, media_exists, report)
    return problems


def _own(source: SourceItem) -> Callable[[str], bool]:
    """Is field `name` the item's own (not taken from its set, where it is checked)?"""
    return lambda name: name not in source.inherited


def _check_media(paths: Iterable[str], media_exists: MediaExists | None, report: Report) -> None:
    for path in paths:
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


def _check_rendered(name: str, part: Rendered, media_exists: MediaExists | None, report: Report) -> None:
    for removed in part.removed:
        report("unsafe-content", f"{name}: unsafe content removed: {removed}", name)
    for error in part.math_errors:
        report("bad-math", f"{name}: {error}", name)
    for path in part.media:
        if media_exists is not None and not media_exists(path):
            report(
                "media-missing",
                f"{name}: media file '{path}' not found: copy it into the release's media/ folder or correct the name",
                name,
            )


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


def _enclosing_levels(root: Path) -> LevelScheme:
    """The level scheme of the release folder `root`, if it is one; else the legacy one."""
    bank = root / "bank.yaml"
    if not bank.is_file():
        return LEGACY
    info, _ = parse_bank_bytes(bank.read_bytes(), str(bank))
    return info.levels if info is not None else LEGACY


def _media_root(path: Path) -> Path:
    """Where media/ paths of loose item files point: the enclosing release, if any."""
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / "bank.yaml").is_file() or (folder / "media").is_dir():
            return folder
    return start
