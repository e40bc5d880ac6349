"""Exams: the YAML definition, creation (with the blueprint checked against
the bank), the roster, tickets, and the forms drawn when the exam opens.

An exam file looks like::

    code: TOAN12-HK1
    title: Kiểm tra học kỳ I — Toán 12
    subject: toan
    release: demo-thpt 2025.1           # bank release "name version"
    # or, to draw from several releases of the subject (a school's own items
    # next to the department's bank):
    # releases: [demo-thpt 2025.1, thpt-a-toan 2025.1]
    duration_minutes: 90
    window: {opens: 2025-12-20T07:30:00+07:00, closes: 2025-12-20T10:00:00+07:00,
             late_entry_minutes: 15}
    time_zone: Asia/Ho_Chi_Minh         # how pages show its times; default CBT_TIME_ZONE
    shuffle: {items: true, options: true}
    forms: {mode: per-candidate}        # or {mode: fixed, count: 24}  (mã đề)
    scoring: {multiple_partial: false, single_penalty: 0, report_decimals: 2}
    show_score: true
    grace_seconds: 30
    instructions: "..."
    # Optional, for the 2025 matrix: the share of points the teacher aims at
    # per level (percent, summing to 100), and the specification table (bản
    # đặc tả): per topic and level, what the questions require.
    level_targets: {1: 40, 2: 30, 3: 30}
    specification: {ham-so: {1: "Nhận ra khoảng đồng biến của hàm số từ bảng biến thiên"}}
    sections:
      - title: Phần I
        time_limit_minutes: 30          # optional; a timed section cannot be reopened
        rows:
          - {topic: ham-so, level: 1, count: 3, points: 0.25, type: single}
          - {topic: ham-so, level: 2, count: 1, scored: false}   # trial items: never counted
      - title: Phần II
        rows:
          # Whole item sets (a data table and its questions), by the set's
          # topic: no level, as each question keeps its own; children
          # (optional, 1-50) asks for sets of exactly that many questions,
          # and points (optional) is each question's.
          - {topic: thong-ke, type: set, count: 2, children: 4}
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
import yaml

from cbt import accounts, assembly, audit, bank, lockdown, times
from cbt import subjects as subject_list
from cbt.platform.errors import Conflict, NotFound, Problem, UserError
from cbt.roster import Candidate, generate_ticket, ticket_hash
from itembank.levels import MAX_LEVELS, LevelScheme

EXAM_FIELDS = {
    "code",
    "title",
    "subject",
    "release",
    "releases",
    "duration_minutes",
    "window",
    "shuffle",
    "forms",
    "scoring",
    "show_score",
    "grace_seconds",
    "instructions",
    "sections",
    "policies",
    "time_zone",
    "level_targets",
    "specification",
}
ITEM_TYPES = ("single", "multiple", "truefalse4", "short", "essay")
ROW_TYPES = (*ITEM_TYPES, assembly.SET_ROW)
ROW_FIELDS = {"topic", "level", "count", "points", "type", "children", "scored"}
MAX_SET_CHILDREN = 50


class ExamFileError(UserError):
    """The exam file (or the builder's form) has problems: every one, each a Problem."""

    def __init__(self, problems: list[Problem]):
        shown = "\n  ".join(problems)
        super().__init__(
            "bad_exam_file",
            f"the exam file has {len(problems)} problem(s):\n  {shown}",
            problems=problems,
            count=len(problems),
        )


@dataclass(frozen=True)
class ExamSpec:
    code: str
    title: str
    subject: str
    release_name: str
    release_version: str
    duration_minutes: int
    opens_at: dt.datetime
    closes_at: dt.datetime
    late_entry_minutes: int
    shuffle_items: bool
    shuffle_options: bool
    form_mode: str  # "per-candidate" or "fixed"
    form_count: int
    multiple_partial: bool
    single_penalty: Decimal
    report_decimals: int
    show_score: bool
    grace_seconds: int
    instructions: str
    blueprint: assembly.Blueprint
    # See cbt/lockdown.py: networks, access_code, one_device, integrity.
    policies: dict = dataclasses.field(default_factory=lambda: dict(lockdown.DEFAULT_POLICIES))
    # An IANA name; empty: the server's CBT_TIME_ZONE (times.exam_zone).
    time_zone: str = ""
    # Every release the exam draws from, (name, version), the first being
    # release_name/release_version; empty means that one alone.
    releases: tuple[tuple[str, str], ...] = ()
    # level -> the percent of the points the teacher aims at (summing to 100); empty: no target.
    level_targets: dict = dataclasses.field(default_factory=dict)
    # topic -> level -> what the questions require (the bản đặc tả); empty: the topics' names.
    specification: dict = dataclasses.field(default_factory=dict)

    @property
    def all_releases(self) -> tuple[tuple[str, str], ...]:
        return self.releases or ((self.release_name, self.release_version),)

    def to_json(self) -> dict:
        data = asdict(self)
        if len(self.all_releases) < 2:
            # A one-release exam is stored exactly as before there could be several.
            del data["releases"]
        for name in ("level_targets", "specification"):
            if not data[name]:
                del data[name]  # an exam without them is stored exactly as before they existed
        for section in data["blueprint"]["sections"]:
            for row in section["rows"]:
                # Likewise a row that is not a set row, or is scored (spec_from_json reads absent as these).
                if row["children"] is None:
                    del row["children"]
                if row["scored"] is True:
                    del row["scored"]
        data["opens_at"] = self.opens_at.isoformat()
        data["closes_at"] = self.closes_at.isoformat()
        return json.loads(json.dumps(data, default=str))


def _decimal(value, where: str, problems: list[Problem]) -> Decimal | None:
    try:
        d = Decimal(str(value).replace(",", "."))
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite():
        problems.append(Problem(f"{where}: {value!r} is not a number", "not_number", where, got=value))
        return None
    return d


def _int(value, where: str, problems: list[Problem], low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(
            Problem(
                f"{where}: must be a whole number from {low} to {high}, got {value!r}",
                "not_whole",
                where,
                low=low,
                high=high,
                got=value,
            )
        )
        return low
    return value


def _time(value, where: str, problems: list[Problem]) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        t = value
    else:
        try:
            t = dt.datetime.fromisoformat(str(value))
        except ValueError:
            problems.append(
                Problem(
                    f"{where}: {value!r} is not a date and time like 2025-12-20T07:30:00+07:00",
                    "time_invalid",
                    where,
                    got=value,
                )
            )
            return None
    if t.tzinfo is None:
        problems.append(
            Problem(f"{where}: give the time zone, e.g. 2025-12-20T07:30:00+07:00", "time_zone_missing", where)
        )
        return None
    return t


def parse_exam(text: str, filename: str = "exam.yaml") -> ExamSpec:
    """Parse and check an exam file; raises ExamFileError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        why = getattr(e, "problem", e)
        raise ExamFileError(
            [Problem(f"{where}: not valid YAML ({why})", "yaml_invalid", where, why=str(why))]
        ) from None
    if not isinstance(data, dict):
        raise ExamFileError(
            [
                Problem(
                    f"{filename}: the file must be a mapping of fields (code:, title:, ...)",
                    "file_not_mapping",
                    filename,
                )
            ]
        )
    problems: list[Problem] = []
    for key in data:
        if key not in EXAM_FIELDS:
            import difflib

            near = difflib.get_close_matches(str(key), EXAM_FIELDS, n=1)
            problems.append(
                Problem(
                    f"unknown field {key!r} — did you mean {near[0]!r}?",
                    "unknown_field_near",
                    field=str(key),
                    near=near[0],
                )
                if near
                else Problem(f"unknown field {key!r}", "unknown_field", field=str(key))
            )
    missing = [
        key
        for key in ("code", "title", "release", "duration_minutes", "window", "sections")
        if key not in data and not (key == "release" and "releases" in data)
    ]
    if missing:
        # Without these nothing else can be checked meaningfully.
        raise ExamFileError(
            problems + [Problem(f"missing field {key!r}", "missing_field", field=key) for key in missing]
        )

    code = str(data["code"])
    releases = _releases(data, problems)
    release = list(releases[0]) if releases else ["", ""]
    duration = _int(data["duration_minutes"], "duration_minutes", problems, 1, 24 * 60)
    window = data["window"] if isinstance(data["window"], dict) else {}
    if not window:
        problems.append(Problem("window: give opens: and closes: times", "window_missing", "window"))
    opens = _time(window.get("opens"), "window.opens", problems)
    closes = _time(window.get("closes"), "window.closes", problems)
    # Capped by the window anyway; a year is only a sanity bound.
    late = _int(window.get("late_entry_minutes", 15), "window.late_entry_minutes", problems, 0, 366 * 24 * 60)
    if opens and closes and opens >= closes:
        problems.append(Problem("window: closes must be after opens", "closes_before_opens", "window"))
    shuffle = data.get("shuffle", {}) or {}
    forms = data.get("forms", {}) or {"mode": "per-candidate"}
    mode = forms.get("mode", "per-candidate")
    if mode not in ("per-candidate", "fixed"):
        problems.append(
            Problem(
                f"forms.mode: 'per-candidate' or 'fixed', got {mode!r}",
                "not_one_of",
                "forms.mode",
                allowed="per-candidate, fixed",
                got=mode,
            )
        )
    count = _int(forms.get("count", 1), "forms.count", problems, 1, 99) if mode == "fixed" else 1
    scoring = data.get("scoring", {}) or {}
    penalty = _decimal(scoring.get("single_penalty", 0), "scoring.single_penalty", problems) or Decimal(0)
    if not Decimal(0) <= penalty <= Decimal(1):
        problems.append(
            Problem(
                "scoring.single_penalty: a fraction of the item's points from 0 to 1",
                "penalty_range",
                "scoring.single_penalty",
            )
        )
    decimals = _int(scoring.get("report_decimals", 2), "scoring.report_decimals", problems, 0, 4)

    sections = []
    raw_sections = data["sections"] if isinstance(data["sections"], list) else []
    if not raw_sections:
        problems.append(
            Problem("sections: give at least one section with rows of (topic, level, count)", "no_sections", "sections")
        )
    for si, sec in enumerate(raw_sections, 1):
        where = f"sections[{si}]"
        if not isinstance(sec, dict):
            problems.append(Problem(f"{where}: must be a mapping with title: and rows:", "section_not_mapping", where))
            continue
        limit = sec.get("time_limit_minutes")
        if limit is not None:
            limit = _int(limit, f"{where}.time_limit_minutes", problems, 1, 24 * 60)
        rows = []
        for ri, row in enumerate(sec.get("rows") or [], 1):
            parsed = _row(row, f"{where}.rows[{ri}]", problems)
            if parsed is not None:
                rows.append(parsed)
        if not rows:
            problems.append(Problem(f"{where}: has no rows", "no_rows", where))
        sections.append(
            assembly.BlueprintSection(
                title=str(sec.get("title", f"Phần {si}")), rows=tuple(rows), time_limit_minutes=limit
            )
        )
    grace = _int(data.get("grace_seconds", 30), "grace_seconds", problems, 0, 600)
    time_zone = str(data.get("time_zone") or "").strip()
    if time_zone and not times.is_zone(time_zone):
        problems.append(
            Problem(
                f"time_zone: {time_zone!r} is not a time zone: give an IANA name such as Asia/Ho_Chi_Minh",
                "time_zone_unknown",
                "time_zone",
                got=time_zone,
            )
        )
    policies = lockdown.parse_policies(data.get("policies"), problems)
    targets = _level_targets(data.get("level_targets"), problems)
    specification = _specification(data.get("specification"), problems)
    if problems:
        raise ExamFileError(problems)
    return ExamSpec(
        code=code,
        title=str(data["title"]),
        subject=str(data.get("subject", "")),
        release_name=release[0],
        release_version=release[1],
        duration_minutes=duration,
        opens_at=opens,
        closes_at=closes,
        late_entry_minutes=late,
        shuffle_items=bool(shuffle.get("items", True)),
        shuffle_options=bool(shuffle.get("options", True)),
        form_mode=mode,
        form_count=count,
        multiple_partial=bool(scoring.get("multiple_partial", False)),
        single_penalty=penalty,
        report_decimals=decimals,
        show_score=bool(data.get("show_score", False)),
        grace_seconds=grace,
        instructions=str(data.get("instructions", "")),
        blueprint=assembly.Blueprint(sections=tuple(sections)),
        policies=policies,
        time_zone=time_zone,
        releases=releases if len(releases) > 1 else (),
        level_targets=targets,
        specification=specification,
    )


def _level(value) -> int | None:
    """A level as a mapping's key may give it (1 or "1"), or None. Whether the
    bank's scheme has it is checked where the releases are known
    (scheme_problems)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LEVELS:
        return None
    return value


def _level_targets(raw, problems: list[Problem]) -> dict[int, Decimal]:
    """level_targets: {level: percent}, the percents summing to 100."""
    if raw is None:
        return {}
    where = "level_targets"
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                f"{where}: a mapping of level to percent of the points, e.g. {{1: 40, 2: 30, 3: 30}}, got {raw!r}",
                "targets_not_mapping",
                where,
                got=raw,
            )
        )
        return {}
    out: dict[int, Decimal] = {}
    for key, value in raw.items():
        level = _level(key)
        if level is None:
            problems.append(
                Problem(
                    f"{where}: {key!r} is not a level: write the level's number, 1 to {MAX_LEVELS}",
                    "not_a_level",
                    where,
                    got=key,
                    high=MAX_LEVELS,
                )
            )
            continue
        try:
            percent = None if isinstance(value, bool) else Decimal(str(value).replace(",", "."))
        except InvalidOperation:
            percent = None
        if percent is None or not percent.is_finite() or not 0 <= percent <= 100:
            problems.append(
                Problem(
                    f"{where}: level {level}: a percent from 0 to 100, got {value!r}",
                    "target_percent",
                    where,
                    level=level,
                    got=value,
                )
            )
            continue
        out[level] = percent
    total = sum(out.values(), Decimal(0))
    if out and len(out) == len(raw) and total != 100:
        problems.append(
            Problem(
                f"{where}: the percents add up to {total}, not 100: {', '.join(f'{k}: {v}' for k, v in out.items())}",
                "targets_sum",
                where,
                total=total,
            )
        )
    return out


def _specification(raw, problems: list[Problem]) -> dict[str, dict[int, str]]:
    """specification: {topic: {level: text}}, the requirement of each topic at each level."""
    if raw is None:
        return {}
    where = "specification"
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        problems.append(
            Problem(
                f"{where}: a mapping of topic to {{level: requirement}}, e.g."
                " {ham-so: {1: Nhận ra khoảng đồng biến}}",
                "specification_shape",
                where,
            )
        )
        return {}
    out: dict[str, dict[int, str]] = {}
    for topic, levels in raw.items():
        for key, text in levels.items():
            level = _level(key)
            if level is None:
                problems.append(
                    Problem(
                        f"{where}.{topic}: {key!r} is not a level: write the level's number, 1 to {MAX_LEVELS}",
                        "not_a_level",
                        where,
                        got=key,
                        high=MAX_LEVELS,
                    )
                )
            elif text is not None and str(text).strip():
                out.setdefault(str(topic), {})[level] = str(text).strip()
    return out


def _row(row, rw: str, problems: list[Problem]) -> assembly.BlueprintRow | None:
    """One blueprint row of the exam file, or None (with its problems added) if it cannot be one.

    An item row is {topic, level, count, points?, type?}; a set row
    {topic, type: set, count, children?, points?}: whole sets of that topic,
    no level since each question of a set keeps its own. Any row may say
    ``scored: false`` (trial items, never counted in the score)."""
    is_set = isinstance(row, dict) and row.get("type") == assembly.SET_ROW
    if is_set and not {"topic", "count"} <= row.keys():
        problems.append(Problem(f"{rw}: a set row needs topic and count", "set_row_incomplete", rw))
        return None
    if not is_set and (not isinstance(row, dict) or not {"topic", "level", "count"} <= row.keys()):
        problems.append(Problem(f"{rw}: each row needs topic, level and count", "row_incomplete", rw))
        return None
    unknown = set(row) - ROW_FIELDS
    if unknown:
        problems.append(
            Problem(
                f"{rw}: unknown field(s) {', '.join(sorted(unknown))}",
                "unknown_fields",
                rw,
                fields=", ".join(sorted(unknown)),
            )
        )
    kind = row.get("type")
    if kind is not None and kind not in ROW_TYPES:
        problems.append(
            Problem(
                f"{rw}.type: one of {', '.join(ROW_TYPES)}, got {kind!r}",
                "not_one_of",
                f"{rw}.type",
                allowed=", ".join(ROW_TYPES),
                got=kind,
            )
        )
    points = None
    if row.get("points") is not None:
        points = _decimal(row["points"], f"{rw}.points", problems)
        if points is not None and points <= 0:
            problems.append(Problem(f"{rw}.points: must be more than 0", "not_positive", f"{rw}.points"))
    scored = row.get("scored", True)
    if not isinstance(scored, bool):
        problems.append(
            Problem(
                f"{rw}.scored: true or false (false: trial items, never counted), got {scored!r}",
                "not_bool",
                f"{rw}.scored",
            )
        )
    level = children = None
    if is_set:
        if row.get("level") is not None:
            problems.append(
                Problem(
                    f"{rw}.level: a set row has no level, as each question of a set keeps its own level;"
                    " remove level from this row",
                    "set_row_level",
                    f"{rw}.level",
                )
            )
        if row.get("children") is not None:
            children = _int(row["children"], f"{rw}.children", problems, 1, MAX_SET_CHILDREN)
    else:
        level = _int(row["level"], f"{rw}.level", problems, 1, 4)
        if row.get("children") is not None:
            problems.append(
                Problem(
                    f"{rw}.children: only a set row (type: set) has children; remove children,"
                    " or make the row a set row",
                    "children_not_set",
                    f"{rw}.children",
                )
            )
    # With problems the exam is refused anyway; the row still counts as one,
    # so its section is not also said to have none.
    return assembly.BlueprintRow(
        topic=str(row["topic"]),
        level=level,
        count=_int(row["count"], f"{rw}.count", problems, 1, 500),
        points=points,
        type=kind,
        children=children,
        scored=scored if isinstance(scored, bool) else True,
    )


def _releases(data: dict, problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    """The exam's releases as (name, version): `release:` one, or `releases:` a list."""
    if "release" in data and "releases" in data:
        problems.append(
            Problem(
                "release, releases: give one release with release: or a list with releases:, not both",
                "release_and_releases",
                "releases",
            )
        )
        return ()
    if "release" in data:
        entries = [("release", data["release"])]
    elif isinstance(data["releases"], list) and data["releases"]:
        entries = [(f"releases[{i}]", value) for i, value in enumerate(data["releases"], 1)]
    else:
        problems.append(
            Problem(
                "releases: a list of bank releases 'NAME VERSION', e.g. [demo-thpt 2025.1,"
                f" thpt-a-toan 2025.1], got {data['releases']!r}",
                "releases_list",
                "releases",
                got=data["releases"],
            )
        )
        return ()
    out: list[tuple[str, str]] = []
    for where, value in entries:
        words = str(value).split()
        if len(words) != 2:
            problems.append(
                Problem(
                    f"{where}: write the bank release as 'NAME VERSION', e.g. 'demo-thpt 2025.1', got {value!r}",
                    "release_format",
                    where,
                    got=value,
                )
            )
        elif tuple(words) in out:
            problems.append(
                Problem(f"{where}: {value} is listed twice", "release_twice", where, release=" ".join(words))
            )
        else:
            out.append((words[0], words[1]))
    return tuple(out)


def spec_from_json(data: dict) -> ExamSpec:
    """Rebuild the spec stored with an exam."""
    bp = assembly.Blueprint(
        sections=tuple(
            assembly.BlueprintSection(
                title=s["title"],
                time_limit_minutes=s["time_limit_minutes"],
                rows=tuple(
                    assembly.BlueprintRow(
                        topic=r["topic"],
                        level=r["level"],
                        count=r["count"],
                        points=Decimal(r["points"]) if r["points"] is not None else None,
                        type=r["type"],
                        # Absent in exams stored before set rows and trial rows.
                        children=r.get("children"),
                        scored=r.get("scored", True),
                    )
                    for r in s["rows"]
                ),
            )
            for s in data["blueprint"]["sections"]
        )
    )
    fields = dict(data)
    fields["blueprint"] = bp
    fields["opens_at"] = dt.datetime.fromisoformat(data["opens_at"])
    fields["closes_at"] = dt.datetime.fromisoformat(data["closes_at"])
    fields["single_penalty"] = Decimal(data["single_penalty"])
    fields["releases"] = tuple((name, version) for name, version in data.get("releases", ()))
    # JSON keeps a mapping's keys as text: the levels come back as numbers.
    fields["level_targets"] = {int(k): Decimal(v) for k, v in data.get("level_targets", {}).items()}
    fields["specification"] = {
        topic: {int(k): text for k, text in levels.items()} for topic, levels in data.get("specification", {}).items()
    }
    return ExamSpec(**fields)


# -- the pool ------------------------------------------------------------------

# An item version in two of the releases is one row of bank_items: drawn once.
_POOL = """
SELECT b.id, b.item_id, b.version, b.topic, b.level, b.type, b.points, b.source, b.set_position,
       s.set_id || '@' || s.version AS set_key, s.topic AS set_topic, s.shuffle AS set_shuffle
FROM bank_items b LEFT JOIN bank_sets s ON s.id = b.set_pk
WHERE b.status = 'approved'
  AND b.id IN (SELECT ri.item_pk FROM release_items ri WHERE ri.release_id = ANY($1::bigint[]))
"""

# Items that two of the releases hold at different versions.
_CONFLICTS = """
SELECT b.item_id, array_agg(DISTINCT b.version ORDER BY b.version) AS versions
FROM bank_items b
WHERE b.status = 'approved'
  AND b.id IN (SELECT ri.item_pk FROM release_items ri WHERE ri.release_id = ANY($1::bigint[]))
GROUP BY b.item_id HAVING count(*) > 1
ORDER BY b.item_id LIMIT 10
"""


# The C YAML loader when PyYAML has it: a 5,000-item pool is read at every open.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


async def release_ids(conn: asyncpg.Connection, exam_id: int) -> list[int]:
    """The releases an exam draws from, in the order the exam names them."""
    return [
        r[0]
        for r in await conn.fetch("SELECT release_id FROM exam_releases WHERE exam_id = $1 ORDER BY position", exam_id)
    ]


async def check_releases(conn: asyncpg.Connection, releases: list, subject: str) -> None:
    """Several releases (records of bank_releases) may make one exam only if
    they are of one subject, the exam's when it names one, and hold no item at
    two versions: a form has one version of each item, and which one is meant
    is the teacher's to say (by leaving a release out), not the engine's to
    guess. One release is taken as it is, as before there could be several."""
    if len(releases) < 2:
        return
    first = releases[0]
    expected = subject if subject_list.key(subject or "") else first["subject"] or ""
    for r in releases:
        if not subject_list.key(r["subject"] or "") or subject_list.key(r["subject"]) != subject_list.key(expected):
            label, got = f"{r['name']} {r['version']}", r["subject"] or "(none)"
            raise UserError(
                "release_subject_mismatch",
                f"release {label} is of subject {got}, the exam of {expected or '(none)'}:"
                " an exam draws only from releases of its own subject; leave that release out",
                release=label,
                subject=r["subject"] or "-",
                expected=expected or "-",
            )
    schemes = await conn.fetch(
        "SELECT DISTINCT coalesce(levels::text, '') AS levels FROM bank_releases WHERE id = ANY($1::bigint[])",
        [r["id"] for r in releases],
    )
    if len(schemes) > 1:
        raise UserError(
            "release_levels_mismatch",
            "these releases write levels in different schemes (the 2025 three levels and the legacy four):"
            " an exam's matrix counts one scheme; choose releases of one scheme",
        )
    conflicts = await conn.fetch(_CONFLICTS, [r["id"] for r in releases])
    if conflicts:
        listed = ", ".join(f"{c['item_id']} ({', '.join(map(str, c['versions']))})" for c in conflicts)
        raise UserError(
            "release_item_conflict",
            f"these items are in the chosen releases at different versions: {listed}; an exam holds one"
            " version of each item: leave out the release with the version you do not want",
            items=listed,
            count=len(conflicts),
        )


async def load_pool(conn: asyncpg.Connection, release_ids: list[int]) -> list[assembly.PoolItem]:
    pool = []
    for r in await conn.fetch(_POOL, list(release_ids)):
        # The stored source is itembank's canonical YAML of a validated item,
        # so the plain mapping is enough here (no need for itembank's checks).
        data = yaml.load(r["source"], Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
        pool.append(
            assembly.PoolItem(
                pk=r["id"],
                item_id=r["item_id"],
                version=r["version"],
                topic=r["topic"],
                level=r["level"],
                type=r["type"],
                points=r["points"],
                option_ids=tuple(str(k) for k in data.get("options") or {}),
                statement_ids=tuple(str(k) for k in data.get("statements") or {}),
                shuffle=data.get("shuffle", True),
                fixed_options=tuple(
                    str(k) for k, v in (data.get("options") or {}).items() if isinstance(v, dict) and v.get("fixed")
                ),
                set_key=r["set_key"],
                set_topic=r["set_topic"],
                set_position=r["set_position"] or 0,
                set_shuffle=bool(r["set_shuffle"]),
            )
        )
    return pool


def describe_shortfalls(shortfalls) -> list[Problem]:
    return [_shortfall(s) for s in shortfalls]


def _shortfall(s: assembly.Shortfall) -> Problem:
    where, wants = f"sections[{s.section + 1}]", f"wants {s.wanted} approved items, the release has {s.available}"
    if s.type == assembly.SET_ROW:
        sets = f"{s.wanted} {'set' if s.wanted == 1 else 'sets'} of topic {s.topic}"
        has = f"the release has {s.available} approved"
        if s.children is not None:
            return Problem(
                f"section {s.section + 1}: wants {sets} with {s.children} questions each, {has}",
                "sets_short_size",
                where,
                topic=s.topic,
                children=s.children,
                wanted=s.wanted,
                available=s.available,
            )
        return Problem(
            f"section {s.section + 1}: wants {sets}, {has}",
            "sets_short",
            where,
            topic=s.topic,
            wanted=s.wanted,
            available=s.available,
        )
    if s.type:
        return Problem(
            f"section {s.section + 1}: topic {s.topic}, level {s.level}, type {s.type}: {wants}",
            "cell_short_type",
            where,
            topic=s.topic,
            level=s.level,
            type=s.type,
            wanted=s.wanted,
            available=s.available,
        )
    return Problem(
        f"section {s.section + 1}: topic {s.topic}, level {s.level}: {wants}",
        "cell_short",
        where,
        topic=s.topic,
        level=s.level,
        wanted=s.wanted,
        available=s.available,
    )


def _level_listing(scheme: LevelScheme) -> str:
    return ", ".join(f"{n} {scheme.name(n)}" for n in scheme.numbers)


def scheme_problems(spec: ExamSpec, scheme: LevelScheme) -> list[Problem]:
    """Where the exam names a level its bank's scheme does not have: a row
    (level 4 of a 2025 bank), a target, a requirement of the specification."""
    problems = []
    levels = _level_listing(scheme)
    for si, section in enumerate(spec.blueprint.sections, 1):
        for row in section.rows:
            if row.level is not None and row.level not in scheme.numbers:
                problems.append(
                    Problem(
                        f"sections[{si}]: topic {row.topic}, level {row.level}: the bank's levels are {levels}"
                        f" ({scheme.source})",
                        "row_level_not_in_scheme",
                        f"sections[{si}].cell",
                        topic=row.topic,
                        level=row.level,
                        levels=levels,
                    )
                )
    named = [("level_targets", level) for level in spec.level_targets]
    named += [("specification", level) for by_level in spec.specification.values() for level in by_level]
    for where, level in dict.fromkeys(named):
        if level not in scheme.numbers:
            problems.append(
                Problem(
                    f"{where}: level {level} is not a level of the bank: its levels are {levels} ({scheme.source})",
                    "level_not_in_scheme",
                    where,
                    level=level,
                    levels=levels,
                )
            )
    return problems


# -- creating, roster, opening ------------------------------------------------------


async def create_exam(conn: asyncpg.Connection, spec: ExamSpec, org_code: str) -> int:
    org_id = await conn.fetchval("SELECT id FROM orgs WHERE code = $1", org_code)
    if org_id is None:
        raise NotFound("unknown_org", f"no organisation with code {org_code!r}: see `cbt org add`", org=org_code)
    # Only a release the exam's organisation may use; another school's is
    # answered exactly as one that does not exist.
    org_ids = await bank.release_org_ids(conn, org_id)
    found = []
    for name, version in spec.all_releases:
        release = await bank.find_release(conn, name, version, org_ids)
        if release is None:
            raise NotFound(
                "unknown_release",
                f"no bank release {name} {version} for {org_code}: import it with"
                f" `cbt bank import --org {org_code}` (or into its department)",
                release=f"{name} {version}",
            )
        found.append(release)
    await check_releases(conn, found, spec.subject)
    ids = [r["id"] for r in found]
    wrong_levels = scheme_problems(spec, await bank.level_scheme(conn, ids))
    if wrong_levels:
        raise ExamFileError(wrong_levels)
    pool = await load_pool(conn, ids)
    short = assembly.shortfalls(spec.blueprint, pool)
    if short:
        raise UserError(
            "infeasible_blueprint",
            "the blueprint asks for more approved items than the release has:\n  "
            + "\n  ".join(describe_shortfalls(short)),
            shortfalls=describe_shortfalls(short),
            count=len(short),
        )
    late_until = min(spec.opens_at + dt.timedelta(minutes=spec.late_entry_minutes), spec.closes_at)
    try:
        async with conn.transaction():
            exam_id = await conn.fetchval(
                """
                INSERT INTO exams (org_id, code, title, subject, release_id, spec, secret, duration_seconds,
                                   opens_at, closes_at, late_entry_until, grace_seconds, show_score, time_zone)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id
                """,
                org_id,
                spec.code,
                spec.title,
                spec.subject,
                ids[0],
                json.dumps(spec.to_json()),
                secrets.token_bytes(32),
                spec.duration_minutes * 60,
                spec.opens_at,
                spec.closes_at,
                late_until,
                spec.grace_seconds,
                spec.show_score,
                spec.time_zone or None,
            )
            await set_releases(conn, exam_id, ids)
            # The exam's own history starts its audit chain.
            await audit.append(
                conn, exam_id, "staff", "exam_edit", {"edit": "create", "spec_sha256": sha256_hex(spec.to_json())}
            )
            return exam_id
    except asyncpg.UniqueViolationError:
        raise Conflict(
            "exam_exists", f"an exam with code {spec.code!r} already exists; choose another code", exam=spec.code
        ) from None


async def set_releases(conn: asyncpg.Connection, exam_id: int, ids: list[int]) -> None:
    """Record the releases a (draft) exam draws from; exams.release_id is the first."""
    await conn.execute("DELETE FROM exam_releases WHERE exam_id = $1", exam_id)
    await conn.executemany(
        "INSERT INTO exam_releases (exam_id, release_id, position) VALUES ($1, $2, $3)",
        [(exam_id, rid, n) for n, rid in enumerate(ids)],
    )


async def get_exam(conn: asyncpg.Connection, code: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM exams WHERE code = $1", code)
    if row is None:
        raise NotFound("unknown_exam", f"no exam with code {code!r}")
    return row


_VISIBLE_EXAM = """
SELECT e.*, o.code AS org_code, o.name AS org_name FROM exams e JOIN orgs o ON o.id = e.org_id
WHERE e.code = $1 AND e.org_id = ANY($2::bigint[])
"""


async def visible_exam(conn: asyncpg.Connection, staff: accounts.Staff, code: str) -> asyncpg.Record:
    """The exam ``code`` if ``staff`` may see it: one of their organisation's,
    or of its schools for a department (accounts.visible_org_ids). Every
    exam-scoped staff page finds its exam here; another organisation's exam
    is not found, so its existence is not told either. Lists of exams filter
    on accounts.visible_org_ids, the same rule."""
    row = await conn.fetchrow(_VISIBLE_EXAM, code, await accounts.visible_org_ids(conn, staff))
    if row is None:
        raise NotFound("unknown_exam", f"no exam {code!r} in your organisation: check the code in the exam list")
    return row


async def add_roster(conn: asyncpg.Connection, exam_code: str, candidates: list[Candidate]) -> int:
    """Add candidates (all or none); draws their forms at once if the exam is open.

    A candidate whose school the roster leaves out is of the exam's organisation."""
    exam = await get_exam(conn, exam_code)
    org_name = await conn.fetchval("SELECT name FROM orgs WHERE id = $1", exam["org_id"])
    async with conn.transaction():
        existing = {
            r["code"]
            for r in await conn.fetch(
                "SELECT code FROM candidates WHERE exam_id = $1 AND code = ANY($2::text[])",
                exam["id"],
                [c.code for c in candidates],
            )
        }
        if existing:
            listed = ", ".join(sorted(existing)[:10])
            raise Conflict(
                "candidate_exists",
                f"already on this exam's roster: {listed}; remove them from the file",
                candidates=listed,
            )
        await conn.copy_records_to_table(
            "candidates",
            records=[
                (
                    exam["id"],
                    c.code,
                    c.full_name,
                    c.date_of_birth,
                    c.class_name,
                    c.school or org_name,
                    c.room,
                    c.time_multiplier,
                )
                for c in candidates
            ],
            columns=[
                "exam_id",
                "code",
                "full_name",
                "date_of_birth",
                "class_name",
                "school",
                "room",
                "time_multiplier",
            ],
        )
        if exam["status"] == "open":
            await generate_forms(conn, exam)
            await render_exam_items(conn, exam)
            await lockdown.ensure_room_codes(conn, exam["id"])
        await audit.append(
            conn,
            exam["id"],
            "staff",
            "exam_edit",
            {"edit": "roster_add", "candidates": sorted(c.code for c in candidates)},
        )
    return len(candidates)


async def issue_tickets(
    conn: asyncpg.Connection, exam_code: str, room: str | None = None, *, reissue: bool = True
) -> list[dict]:
    """New tickets for candidates who have not started; old tickets stop working.

    Tickets are stored only as hashes, so printing them again means issuing
    new ones. With reissue False, candidates who have a ticket already are
    not given a new one silently: the caller must say it means it (the web
    asks the teacher to confirm). Nobody to issue a ticket for is refused,
    saying why: no roster, an empty room, or everyone started or submitted."""
    exam = await get_exam(conn, exam_code)
    async with conn.transaction():
        # Locked: two issues at once would each show tickets the other one replaced.
        rows = await conn.fetch(
            """
            SELECT c.id, c.code, c.full_name, c.class_name, c.room, c.ticket_hash IS NOT NULL AS has_ticket,
                   (SELECT a.status FROM attempts a WHERE a.candidate_id = c.id ORDER BY a.id DESC LIMIT 1)
                       AS attempt
            FROM candidates c
            WHERE c.exam_id = $1 AND ($2::text IS NULL OR c.room = $2)
            ORDER BY c.room, c.full_name
            FOR UPDATE OF c
            """,
            exam["id"],
            room,
        )
        waiting = [r for r in rows if r["attempt"] is None]
        if not waiting:
            _nobody_waits(rows, room)
        ticketed = sum(r["has_ticket"] for r in waiting)
        if ticketed and not reissue:
            raise Conflict(
                "tickets_reissue_unconfirmed",
                f"{ticketed} of these candidates already have tickets: issuing again makes their old"
                " tickets stop working; confirm that you mean it",
                count=ticketed,
            )
        issued, updates = [], []
        for r in waiting:
            ticket = generate_ticket()
            updates.append((r["id"], ticket_hash(ticket)))
            issued.append(
                {
                    "code": r["code"],
                    "full_name": r["full_name"],
                    "class_name": r["class_name"],
                    "room": r["room"],
                    "ticket": ticket,
                }
            )
        await conn.executemany("UPDATE candidates SET ticket_hash = $2 WHERE id = $1", updates)
        await audit.append(
            conn,
            exam["id"],
            "staff",
            "exam_edit",
            {"edit": "tickets_issued", "candidates": [i["code"] for i in issued]},
        )
    return issued


def _nobody_waits(rows, room: str | None) -> None:
    """Say why no candidate gets a ticket: none on the roster (or in the room), or all have begun."""
    if not rows:
        if room is None:
            raise UserError("no_candidates", "nobody to print a ticket for: import the roster first")
        raise UserError(
            "no_candidates_in_room", f"room {room} has no candidates: choose another room, or all rooms", room=room
        )
    submitted = sum(r["attempt"] == "submitted" for r in rows)
    if submitted == len(rows):
        raise UserError(
            "all_submitted", f"all {len(rows)} candidates have submitted: no ticket is needed", count=len(rows)
        )
    raise UserError(
        "all_started",
        f"all {len(rows)} candidates have started ({submitted} have submitted): no new"
        " tickets are issued, and the tickets they have stay as they are",
        count=len(rows),
        submitted=submitted,
    )


def _form_for(exam, spec: ExamSpec, index, code: str, fixed: list | None):
    if fixed is not None:
        number = assembly.form_number_for(exam["secret"], code, spec.form_count)
        return fixed[number - 1]
    return assembly.draw_form(
        spec.blueprint,
        index,
        assembly.candidate_seed(exam["secret"], code),
        shuffle_items=spec.shuffle_items,
        shuffle_options=spec.shuffle_options,
    )


# Below this many candidates, starting worker processes costs more than it saves.
PARALLEL_FORMS_FROM = 2000


def draw_forms(exam: dict, spec_json: dict, pool: list[assembly.PoolItem], codes: list[str]) -> list[tuple]:
    """(form_number, form JSON text, digest) for each code. Pure; runs in worker processes too."""
    spec = spec_from_json(spec_json)
    index = assembly.index_pool(pool)
    fixed = (
        assembly.fixed_forms(spec.blueprint, pool, exam["secret"], spec.form_count)
        if spec.form_mode == "fixed"
        else None
    )
    out = []
    for code in codes:
        form = _form_for(exam, spec, index, code, fixed)
        out.append((form.form_number, json.dumps(assembly.form_to_json(form)), assembly.form_digest(form)))
    return out


async def _draw_in_processes(exam: dict, spec_json: dict, pool: list, codes: list[str]) -> list[tuple]:
    import asyncio
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or len(codes) < PARALLEL_FORMS_FROM:
        return draw_forms(exam, spec_json, pool, codes)
    size = -(-len(codes) // workers)
    chunks = [codes[i : i + size] for i in range(0, len(codes), size)]
    loop = asyncio.get_running_loop()
    # spawn, not fork: this may run inside the server, whose threads a fork would copy half-way.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
        parts = await asyncio.gather(
            *(loop.run_in_executor(ex, draw_forms, exam, spec_json, pool, chunk) for chunk in chunks)
        )
    return [row for part in parts for row in part]


async def generate_forms(conn: asyncpg.Connection, exam: asyncpg.Record) -> int:
    """Draw a form for every candidate of the exam who has none yet (in several
    processes for a large roster: 10,000 forms from a 5,000-item bank)."""
    pool = await load_pool(conn, await release_ids(conn, exam["id"]))
    todo = await conn.fetch(
        "SELECT c.id, c.code FROM candidates c LEFT JOIN candidate_forms f ON f.candidate_id = c.id "
        "WHERE c.exam_id = $1 AND f.candidate_id IS NULL ORDER BY c.id",
        exam["id"],
    )
    drawn = await _draw_in_processes(
        {"secret": bytes(exam["secret"])}, json.loads(exam["spec"]), pool, [r["code"] for r in todo]
    )
    records = [(r["id"], *row) for r, row in zip(todo, drawn, strict=True)]
    await conn.copy_records_to_table(
        "candidate_forms", records=records, columns=["candidate_id", "form_number", "form", "digest"]
    )
    return len(records)


async def open_exam(conn: asyncpg.Connection, exam_code: str) -> int:
    exam = await get_exam(conn, exam_code)
    if exam["status"] == "closed":
        raise Conflict("exam_closed", f"exam {exam_code} is closed and cannot be opened again")
    async with conn.transaction():
        count = await generate_forms(conn, exam)
        await render_exam_items(conn, exam)
        await lockdown.ensure_room_codes(conn, exam["id"])
        await conn.execute("UPDATE exams SET status = 'open' WHERE id = $1", exam["id"])
        await audit.append(conn, exam["id"], "staff", "exam_edit", {"edit": "open", "forms_drawn": count})
    return count


async def rederive_form(conn: asyncpg.Connection, exam_code: str, candidate_code: str) -> tuple[dict, bool]:
    """Draw the candidate's form again from the exam secret; compare with the one served."""
    exam = await get_exam(conn, exam_code)
    row = await conn.fetchrow(
        "SELECT c.id, f.digest, f.form FROM candidates c LEFT JOIN candidate_forms f ON f.candidate_id = c.id "
        "WHERE c.exam_id = $1 AND c.code = $2",
        exam["id"],
        candidate_code,
    )
    if row is None:
        raise NotFound(
            "unknown_candidate", f"no candidate {candidate_code} on exam {exam_code}", candidate=candidate_code
        )
    if row["digest"] is None:
        raise NotFound("no_form", f"candidate {candidate_code} has no form yet: open the exam first")
    spec = spec_from_json(json.loads(exam["spec"]))
    pool = await load_pool(conn, await release_ids(conn, exam["id"]))
    fixed = (
        assembly.fixed_forms(spec.blueprint, pool, exam["secret"], spec.form_count)
        if spec.form_mode == "fixed"
        else None
    )
    form = _form_for(exam, spec, assembly.index_pool(pool), candidate_code, fixed)
    return assembly.form_to_json(form), assembly.form_digest(form) == row["digest"]


def sha256_hex(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# -- rendering for candidates ----------------------------------------------------------


def _data_uri(path: str, content: bytes) -> str:
    import base64
    import mimetypes

    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(content).decode()}"


def student_view(item, media: dict[str, bytes]) -> dict:
    """What a student may see of an item, as safe HTML: never the key or the explanation.

    Images are inlined as data: URIs, so the exam page needs no further
    request (and keeps working offline once started).
    """
    from itembank.render import render_markdown

    def media_url(path: str) -> str:
        return _data_uri(path, media[path]) if path in media else ""

    return {
        "stem": render_markdown(item.stem, media_url).html,
        "options": {o.id: render_markdown(o.text, media_url, inline=True).html for o in item.options},
        "statements": {s.id: render_markdown(s.text, media_url, inline=True).html for s in item.statements},
        # How the answer box behaves (Part III digits-only, or free text): public, not the key.
        "format": item.answer.format.value if item.answer is not None else None,
    }


def passage_view(item_set, media: dict[str, bytes]) -> str:
    """A set's stimulus as safe HTML, images inlined as a stem's are."""
    from itembank.render import render_set

    return render_set(item_set, lambda path: _data_uri(path, media[path]) if path in media else "").stimulus.html


async def render_exam_items(conn: asyncpg.Connection, exam: asyncpg.Record) -> int:
    """Render every item that appears on some form of the exam, once."""
    pks = [
        r[0]
        for r in await conn.fetch(
            """
        SELECT DISTINCT (jsonb_array_elements(jsonb_path_query_array(f.form, '$.sections[*].items[*].pk')))::bigint
        FROM candidate_forms f JOIN candidates c ON c.id = f.candidate_id
        WHERE c.exam_id = $1
        EXCEPT SELECT item_pk FROM exam_items WHERE exam_id = $1
        """,
            exam["id"],
        )
    ]
    if not pks:
        return 0
    rendered = await render_items(conn, await release_ids(conn, exam["id"]), pks)
    records = [(exam["id"], pk, kind, json.dumps(view)) for pk, (kind, view) in rendered.items()]
    await conn.copy_records_to_table("exam_items", records=records, columns=["exam_id", "item_pk", "type", "rendered"])
    return len(records)


async def render_items(conn: asyncpg.Connection, release_ids: list[int], pks: list[int]) -> dict[int, tuple]:
    """pk -> (type, student_view) for these items of the releases, each with
    its media as the first of the releases that holds it has them."""
    holder = {
        r["item_pk"]: r["release_id"]
        for r in await conn.fetch(
            "SELECT DISTINCT ON (ri.item_pk) ri.item_pk, ri.release_id FROM release_items ri"
            " JOIN unnest($1::bigint[]) WITH ORDINALITY AS o(release_id, position) ON o.release_id = ri.release_id"
            " WHERE ri.item_pk = ANY($2::bigint[]) ORDER BY ri.item_pk, o.position",
            list(release_ids),
            pks,
        )
    }
    media: dict[int, dict[str, bytes]] = {}
    for r in await conn.fetch(
        "SELECT rm.release_id, rm.path, m.content FROM release_media rm JOIN media_blobs m ON m.sha256 = rm.sha256"
        " WHERE rm.release_id = ANY($1::bigint[])",
        sorted(set(holder.values())),
    ):
        media.setdefault(r["release_id"], {})[r["path"]] = r["content"]
    items = {pk: bank.item_from_source(source) for pk, source in (await bank.item_sources(conn, pks)).items()}
    views = {pk: (item.type.value, student_view(item, media.get(holder.get(pk), {}))) for pk, item in items.items()}
    # A set's child carries its set's passage (the stimulus), rendered once per set.
    passages: dict[int, str] = {}
    for r in await conn.fetch(
        "SELECT b.id, b.set_pk, s.source FROM bank_items b JOIN bank_sets s ON s.id = b.set_pk"
        " WHERE b.id = ANY($1::bigint[])",
        pks,
    ):
        if r["set_pk"] not in passages:
            passages[r["set_pk"]] = passage_view(
                bank.set_with_children(r["source"])[0], media.get(holder.get(r["id"]), {})
            )
        views[r["id"]][1]["passage"] = passages[r["set_pk"]]
    return views


def exam_address(settings) -> str | None:
    """The exam page's address as students type it, for tickets printed outside
    a request: CBT_PUBLIC_URL, else the address cbt serves on (`cbt demo` on
    127.0.0.1 is reached at 127.0.0.1); None when cbt listens on every address
    (0.0.0.0), as which of them students reach it by is not cbt's to guess."""
    if settings.public_url:
        return settings.public_url + "/exam"
    host = settings.host
    try:
        everywhere = ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        everywhere = not host
    if everywhere:
        return None
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/exam"


def tickets_html(exam: asyncpg.Record, rows: list[dict], lang: str = "vi", address: str | None = None) -> str:
    """The printable ticket sheet (one page per room), outside any web request.
    `address`: the exam page's address to print on every slip (exam_address)."""
    from cbt.platform.i18n import Catalogs
    from cbt.platform.templating import make_jinja, web_root
    from cbt.roster import tickets_by_room

    root = web_root()
    env = make_jinja(root)
    t = Catalogs(root / "i18n").translator(lang)
    css = (root / "static" / "cbt.css").read_text(encoding="utf-8")
    html = env.get_template("exam/tickets.html").render(
        t=t,
        lang=lang,
        user=None,
        csrf_token="",
        path="/",
        url=lambda name, **kw: "",
        exam={"title": exam["title"]},
        rooms=tickets_by_room(rows),
        address=address,
    )
    # A file opened straight from disk has no server for /static/: carry the CSS along.
    return html.replace('<link rel="stylesheet" href="">', f"<style>{css}</style>", 1)
