"""The test builder: the web form of an exam turned into the exam file's
mapping, and that through exams.parse_exam, so a form and a YAML file for
the same exam give the same ExamSpec (the file stays the source of truth).

The blueprint is edited as a matrix per section: topics of the chosen bank
releases (one or several of the subject) down, levels 1-4 across, each cell the number of items. A section may
ask for one item type and a fixed number of points per item; the fields are

    section_count, s0.title, s0.time_limit, s0.type, s0.points,
    s0.c1.ham-so = 2      (section 0, level 1, topic ham-so: 2 items)

Availability is counted from the releases' approved items (summed over them), and a blueprint's
feasibility is the assembly's own check (assembly.shortfalls).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import asyncpg
import yaml

from cbt import assembly, exams
from cbt.platform.errors import Problem
from cbt.platform.inputs import whole

LEVELS = (1, 2, 3, 4)
ITEM_TYPES = exams.ITEM_TYPES
FORM_MODES = ("per-candidate", "fixed")
MAX_SECTIONS = 10
# Questions asked of one blueprint cell.
MAX_COUNT = 500
DEFAULT_TZ = "+07:00"
_CELL = re.compile(r"^s(\d+)\.c([1-4])\.(.+)$")
# The exams table's own rule for a code.
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TZ = re.compile(r"^[+-](0\d|1[0-4]):[0-5]\d$")


@dataclass
class Section:
    title: str
    time_limit: str
    type: str
    points: str
    # (topic, level) -> the count as typed; kept as text so a bad value is shown back.
    cells: dict

    def count(self, topic: str, level: int) -> str:
        return self.cells.get((topic, level), "")


def _get(form: Mapping, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default


def _checked(form: Mapping, name: str) -> bool:
    return _get(form, name) in ("1", "on", "true", "yes")


def sections_of(form: Mapping) -> list[Section]:
    """The sections as typed in the form, in page order."""
    n = max(1, min(whole(_get(form, "section_count", "1"), MAX_SECTIONS) or 1, MAX_SECTIONS))
    sections = [
        Section(
            _get(form, f"s{i}.title"),
            _get(form, f"s{i}.time_limit"),
            _get(form, f"s{i}.type"),
            _get(form, f"s{i}.points"),
            {},
        )
        for i in range(n)
    ]
    for key in form:
        m = _CELL.match(key)
        if m and int(m.group(1)) < n:
            value = _get(form, key)
            if value:
                sections[int(m.group(1))].cells[(m.group(3), int(m.group(2)))] = value
    return sections


def _whole(
    text: str, where: str, problems: list[Problem], low: int, high: int, *, field: str = "", **params
) -> int | None:
    """text as a whole number from low to high; `where` prefixes the English line,
    `field` (where, unless given) and params name the field for the page."""
    field = field or where
    try:
        value = int(text)
    except ValueError:
        problems.append(
            Problem(
                f"{where}: write a whole number from {low} to {high}, got {text!r}",
                "not_whole",
                field,
                low=low,
                high=high,
                got=text,
                **params,
            )
        )
        return None
    if not low <= value <= high:
        problems.append(
            Problem(
                f"{where}: must be from {low} to {high}, got {value}",
                "out_of_range",
                field,
                low=low,
                high=high,
                got=value,
                **params,
            )
        )
        return None
    return value


def _number(text: str, where: str, problems: list[Problem]) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        problems.append(Problem(f"{where}: {text!r} is not a number", "not_number", where, got=text))
        return None
    return value


def _time(form: Mapping, name: str, tz: str, problems: list[Problem]) -> str | None:
    text = _get(form, name)
    where = f"window.{name}"
    if not text:
        problems.append(Problem(f"{where}: give the date and time", "time_missing", where))
        return None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        problems.append(
            Problem(f"{where}: {text!r} is not a date and time like 2025-12-20T07:30", "time_invalid", where, got=text)
        )
        return None
    if t.tzinfo is None:
        t = dt.datetime.fromisoformat(t.isoformat() + tz)
    return t.isoformat()


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,;]+", text) if w]


def _networks(form: Mapping, problems: list[Problem]) -> dict | None:
    allow = _words(_get(form, "networks_allow"))
    rooms = {}
    for n, line in enumerate(_get(form, "networks_rooms").splitlines(), 1):
        if not line.strip():
            continue
        room, sep, cidrs = line.partition(":")
        if not sep or not room.strip():
            problems.append(
                Problem(
                    f"policies.networks.rooms line {n}: write ROOM: CIDR, CIDR (e.g. P01: 10.1.1.0/24),"
                    f" got {line.strip()!r}",
                    "rooms_line",
                    "policies.networks.rooms",
                    line=n,
                    got=line.strip(),
                )
            )
            continue
        rooms[room.strip()] = _words(cidrs)
    if not allow and not rooms:
        return None
    return {"allow": allow, "rooms": rooms}


def _release_field(labels: str | Sequence[str]) -> dict:
    """The exam file's release: one as `release:` (as files always had it), several as `releases:`."""
    labels = [labels] if isinstance(labels, str) else list(labels)
    return {"release": labels[0]} if len(labels) == 1 else {"releases": labels}


def exam_data(form: Mapping, release_label: str | Sequence[str]) -> tuple[dict, list[Problem]]:
    """The exam file's mapping for the form, and the problems only the form can have
    (text where a number belongs, a negative count); parse_exam checks the rest."""
    problems: list[Problem] = []
    tz = _get(form, "tz") or DEFAULT_TZ
    if not _TZ.match(tz):
        problems.append(
            Problem(f"window.tz: a time zone offset like +07:00, got {tz!r}", "tz_invalid", "window.tz", got=tz)
        )
        tz = DEFAULT_TZ
    window: dict = {"opens": _time(form, "opens", tz, problems), "closes": _time(form, "closes", tz, problems)}
    late = _whole(
        _get(form, "late_entry_minutes", "15") or "15", "window.late_entry_minutes", problems, 0, 366 * 24 * 60
    )
    window["late_entry_minutes"] = late if late is not None else 15
    duration = _whole(_get(form, "duration_minutes"), "duration_minutes", problems, 1, 24 * 60)
    grace = _whole(_get(form, "grace_seconds", "30") or "30", "grace_seconds", problems, 0, 600)
    mode = _get(form, "form_mode", "per-candidate") or "per-candidate"
    forms: dict = {"mode": mode}
    if mode == "fixed":
        count = _whole(_get(form, "form_count"), "forms.count", problems, 1, 99)
        forms["count"] = count if count is not None else 1
    penalty = _number(_get(form, "single_penalty", "0") or "0", "scoring.single_penalty", problems)
    decimals = _whole(_get(form, "report_decimals", "2") or "2", "scoring.report_decimals", problems, 0, 4)

    sections = []
    for si, sec in enumerate(sections_of(form)):
        where = f"sections[{si + 1}]"
        out: dict = {"title": sec.title or f"Phần {si + 1}"}
        if sec.time_limit:
            limit = _whole(sec.time_limit, f"{where}.time_limit_minutes", problems, 1, 24 * 60)
            if limit is not None:
                out["time_limit_minutes"] = limit
        points = None
        if sec.points:
            points = _number(sec.points, f"{where}.points", problems)
            if points is not None and points <= 0:
                problems.append(
                    Problem(f"{where}.points: must be more than 0, got {sec.points}", "not_positive", f"{where}.points")
                )
                points = None
        if sec.type and sec.type not in ITEM_TYPES:
            problems.append(
                Problem(
                    f"{where}.type: one of {', '.join(ITEM_TYPES)}, got {sec.type!r}",
                    "not_one_of",
                    f"{where}.type",
                    allowed=", ".join(ITEM_TYPES),
                    got=sec.type,
                )
            )
        rows = []
        for (topic, level), text in sec.cells.items():
            count = _whole(
                text,
                f"{where}: topic {topic}, level {level}",
                problems,
                0,
                MAX_COUNT,
                field=f"{where}.cell",
                topic=topic,
                level=level,
            )
            if not count:
                continue
            row: dict = {"topic": topic, "level": level, "count": count}
            if points is not None:
                row["points"] = str(points)
            if sec.type in ITEM_TYPES:
                row["type"] = sec.type
            rows.append(row)
        out["rows"] = rows
        sections.append(out)

    policies: dict = {
        "networks": _networks(form, problems),
        "access_code": _checked(form, "access_code"),
        "one_device": _checked(form, "one_device"),
        "integrity": {
            "action": _get(form, "integrity_action", "count") or "count",
            "pause_after": _whole(
                _get(form, "integrity_pause_after", "3") or "3", "policies.integrity.pause_after", problems, 1, 1000
            )
            or 3,
        },
    }
    if policies["networks"] is None:
        del policies["networks"]
    if _checked(form, "seb_required"):
        policies["seb"] = {
            "required": True,
            "browser_exam_keys": _words(_get(form, "seb_browser_exam_keys")),
            "config_keys": _words(_get(form, "seb_config_keys")),
            "serve_config": _checked(form, "seb_serve_config"),
            "js_api": _checked(form, "seb_js_api"),
            "allow_quit": _checked(form, "seb_allow_quit"),
        }
    rate, burst = _get(form, "admission_rate"), _get(form, "admission_burst")
    if rate:
        r = _number(rate, "policies.admission.rate_per_second", problems)
        b = _number(burst, "policies.admission.burst", problems) if burst else r
        if r is not None and b is not None:
            policies["admission"] = {"rate_per_second": float(r), "burst": float(b)}

    data = {
        "code": _get(form, "code"),
        "title": _get(form, "title"),
        "subject": _get(form, "subject"),
        **_release_field(release_label),
        "duration_minutes": duration if duration is not None else 1,
        "window": window,
        "shuffle": {"items": _checked(form, "shuffle_items"), "options": _checked(form, "shuffle_options")},
        "forms": forms,
        "scoring": {
            "multiple_partial": _checked(form, "multiple_partial"),
            "single_penalty": str(penalty if penalty is not None else 0),
            "report_decimals": decimals if decimals is not None else 2,
        },
        "show_score": _checked(form, "show_score"),
        "grace_seconds": grace if grace is not None else 30,
        "instructions": _get(form, "instructions"),
        "sections": sections,
        "policies": policies,
    }
    if _get(form, "time_zone"):
        # Not asked in the form (the server's zone serves), but kept when the exam's file gave one.
        data["time_zone"] = _get(form, "time_zone")
    if not data["code"]:
        problems.append(Problem("code: give the exam a code, e.g. TOAN12-HK1", "code_missing", "code"))
    elif not _CODE.match(data["code"]):
        problems.append(
            Problem(
                f"code: only letters without accents, digits, '.', '_' and '-', at most 64, starting"
                f" with a letter or digit (e.g. TOAN12-HK1), got {data['code']!r}",
                "code_invalid",
                "code",
                got=data["code"],
            )
        )
    if not data["title"]:
        problems.append(Problem("title: give the exam a title", "title_missing", "title"))
    return data, problems


def exam_yaml(data: dict) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def build_spec(form: Mapping, release_label: str | Sequence[str]) -> tuple[str, exams.ExamSpec]:
    """(exam file text, spec) for the form; ExamFileError lists every problem."""
    data, problems = exam_data(form, release_label)
    text = exam_yaml(data)
    try:
        spec = exams.parse_exam(text, "builder")
    except exams.ExamFileError as e:
        # A field the form already faulted need not be faulted twice.
        faulted = {p.split(":")[0] for p in problems}
        raise exams.ExamFileError(
            problems + [p for p in e.details["problems"] if p.split(":")[0] not in faulted]
        ) from None
    if problems:
        raise exams.ExamFileError(problems)
    return text, spec


# -- problems in the reader's language ----------------------------------------------

# The form's own labels for the exam file's fields, so that a problem names
# the field as the teacher sees it on the page (the file's path is the
# fallback, for fields only a YAML file has).
FIELD_LABELS = {
    "code": "ws.exams.code",
    "title": "ws.exams.exam_title",
    "subject": "ws.exams.subject",
    "release": "ws.exams.release",
    "releases": "ws.exams.release",
    "instructions": "ws.exams.instructions",
    "duration_minutes": "ws.exams.duration",
    "window": "ws.exams.window",
    "window.opens": "ws.exams.opens",
    "window.closes": "ws.exams.closes",
    "window.tz": "ws.exams.tz",
    "window.late_entry_minutes": "ws.exams.late_entry",
    "grace_seconds": "ws.exams.grace",
    "forms.mode": "ws.exams.form_mode",
    "forms.count": "ws.exams.form_count",
    "scoring.single_penalty": "ws.exams.single_penalty",
    "scoring.report_decimals": "ws.exams.report_decimals",
    "sections": "ws.exams.blueprint",
    "policies": "ws.exams.policies",
    "policies.networks": "ws.exams.networks_allow",
    "policies.networks.allow": "ws.exams.networks_allow",
    "policies.networks.rooms": "ws.exams.networks_rooms",
    "policies.access_code": "ws.exams.access_code",
    "policies.one_device": "ws.exams.one_device",
    "policies.integrity.action": "ws.exams.integrity_action",
    "policies.integrity.pause_after": "ws.exams.pause_after",
    "policies.admission.rate_per_second": "ws.exams.admission_rate",
    "policies.admission.burst": "ws.exams.admission_burst",
    "policies.seb": "ws.exams.seb",
    "policies.seb.required": "ws.exams.seb_required",
    "policies.seb.browser_exam_keys": "ws.exams.seb_bek",
    "policies.seb.config_keys": "ws.exams.seb_ck",
    "policies.seb.serve_config": "ws.exams.seb_serve_config",
    "policies.seb.js_api": "ws.exams.seb_js_api",
    "policies.seb.allow_quit": "ws.exams.seb_allow_quit",
}
SECTION_FIELD_LABELS = {
    "title": "ws.exams.section_title",
    "time_limit_minutes": "ws.exams.section_limit",
    "points": "ws.exams.points_each",
    "type": "ws.exams.item_type",
    "cell": "ws.exams.cell_label",
}
_SECTION_FIELD = re.compile(r"sections\[(\d+)\](?:\.(.+))?")


def field_label(t, where: str, params: dict) -> str:
    """The form's label for an exam file's field ("sections[2].points": "Phần 2 · Điểm mỗi câu")."""
    m = _SECTION_FIELD.fullmatch(where)
    if m:
        label = t("ws.exams.section_n", n=m[1])
        if m[2]:
            key = SECTION_FIELD_LABELS.get(m[2])
            label += " · " + (t(key, **params) if key else m[2])
        return label
    if where in FIELD_LABELS:
        return t(FIELD_LABELS[where])
    parent, _, name = where.rpartition(".")
    return f"{t(FIELD_LABELS[parent])} {name}" if parent in FIELD_LABELS else where


def problem_text(catalogs, lang: str, problem) -> str:
    """A problem in the reader's language: the field's label on the form, then what
    is wrong ("problem.<code>"). An empty catalog text means the English line
    itself, as for error messages; anything not a Problem is shown as it is."""
    text = catalogs.lookup(lang, "problem." + problem.code) if isinstance(problem, Problem) else None
    if not text:
        return str(problem)
    t = catalogs.translator(lang)
    params = dict(problem.params)
    if params.get("type") in ITEM_TYPES:
        params["type"] = t("ws.exams.type." + params["type"])
    try:
        text = text.format(**params)
    except (KeyError, IndexError):
        return str(problem)
    label = field_label(t, problem.where, problem.params) if problem.where else ""
    return f"{label}: {text}" if label else text


def form_from_spec(spec: exams.ExamSpec) -> dict:
    """The form's fields for a stored exam, for editing it again."""
    tz = spec.opens_at.strftime("%z")
    tz = f"{tz[:3]}:{tz[3:]}" if tz else DEFAULT_TZ
    p = spec.policies
    nets = p.get("networks") or {"allow": [], "rooms": {}}
    seb = p.get("seb") or {}
    admission = p.get("admission") or {}
    form = {
        "code": spec.code,
        "title": spec.title,
        "subject": spec.subject,
        "duration_minutes": str(spec.duration_minutes),
        "tz": tz,
        "time_zone": spec.time_zone,
        "opens": spec.opens_at.strftime("%Y-%m-%dT%H:%M"),
        "closes": spec.closes_at.strftime("%Y-%m-%dT%H:%M"),
        "late_entry_minutes": str(spec.late_entry_minutes),
        "grace_seconds": str(spec.grace_seconds),
        "instructions": spec.instructions,
        "form_mode": spec.form_mode,
        "form_count": str(spec.form_count),
        "single_penalty": str(spec.single_penalty),
        "report_decimals": str(spec.report_decimals),
        "networks_allow": "\n".join(nets["allow"]),
        "networks_rooms": "\n".join(f"{room}: {', '.join(c)}" for room, c in nets["rooms"].items()),
        "integrity_action": p["integrity"]["action"],
        "integrity_pause_after": str(p["integrity"]["pause_after"]),
        "seb_browser_exam_keys": "\n".join(seb.get("browser_exam_keys") or []),
        "seb_config_keys": "\n".join(seb.get("config_keys") or []),
        "admission_rate": _plain(admission.get("rate_per_second")),
        "admission_burst": _plain(admission.get("burst")),
        "section_count": str(len(spec.blueprint.sections)),
    }
    flags = {
        "shuffle_items": spec.shuffle_items,
        "shuffle_options": spec.shuffle_options,
        "multiple_partial": spec.multiple_partial,
        "show_score": spec.show_score,
        "access_code": p["access_code"],
        "one_device": p["one_device"],
        "seb_required": bool(seb.get("required")),
        "seb_serve_config": bool(seb.get("serve_config")),
        "seb_js_api": bool(seb.get("js_api")),
        "seb_allow_quit": bool(seb.get("allow_quit")),
    }
    form.update({k: "1" for k, v in flags.items() if v})
    for si, sec in enumerate(spec.blueprint.sections):
        types = {r.type for r in sec.rows}
        points = {r.points for r in sec.rows}
        cells = [(r.topic, r.level) for r in sec.rows]
        if len(types) > 1 or len(points) > 1 or len(set(cells)) != len(cells):
            raise exams.ExamFileError(
                [
                    Problem(
                        f"sections[{si + 1}]: its rows differ in type or points, or repeat a cell, which the "
                        "matrix cannot show; edit this exam with its YAML file (cbt exam create)",
                        "matrix_cannot_show",
                        f"sections[{si + 1}]",
                    )
                ]
            )
        form[f"s{si}.title"] = sec.title
        form[f"s{si}.time_limit"] = str(sec.time_limit_minutes or "")
        form[f"s{si}.type"] = next(iter(types)) or ""
        point = next(iter(points))
        form[f"s{si}.points"] = "" if point is None else str(point)
        for r in sec.rows:
            form[f"s{si}.c{r.level}.{r.topic}"] = str(r.count)
    return form


def _plain(value) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


# -- what the release can give ------------------------------------------------------

# An item version in two of the releases counts once, as it is drawn once.
_CELLS = """
SELECT b.topic, min(b.subject) AS subject, b.level, b.type, b.points, count(*) AS n
FROM bank_items b
WHERE b.status = 'approved'
  AND b.id IN (SELECT ri.item_pk FROM release_items ri WHERE ri.release_id = ANY($1::bigint[]))
GROUP BY b.topic, b.level, b.type, b.points
ORDER BY b.topic, b.level, b.type
"""


@dataclass(frozen=True)
class Availability:
    """The approved items of the releases, counted per topic, level, type and points."""

    groups: tuple  # (topic, subject, level, type, points, n)

    @property
    def topics(self) -> list[tuple[str, str]]:
        seen = {}
        for topic, subject, *_ in self.groups:
            seen.setdefault(topic, subject)
        return sorted(seen.items(), key=lambda ts: (ts[1], ts[0]))

    def _matching(self, topic: str, level: int, kind: str | None) -> list[tuple[Decimal, int]]:
        return [(p, n) for t, _, lv, ty, p, n in self.groups if t == topic and lv == level and (not kind or ty == kind)]

    def count(self, topic: str, level: int, kind: str | None) -> int:
        return sum(n for _, n in self._matching(topic, level, kind))

    def mean_points(self, topic: str, level: int, kind: str | None) -> tuple[Decimal | None, bool]:
        """The items' own points in a cell: (mean, whether they are all equal)."""
        found = self._matching(topic, level, kind)
        total = sum(n for _, n in found)
        if not total:
            return None, True
        return sum(p * n for p, n in found) / total, len({p for p, _ in found}) == 1

    def pool(self) -> list[assembly.PoolItem]:
        """Stand-ins for the items, enough for assembly.shortfalls (which only counts)."""
        out, pk = [], 0
        for topic, _, level, kind, points, n in self.groups:
            for _ in range(n):
                pk += 1
                out.append(
                    assembly.PoolItem(
                        pk=pk, item_id=f"{pk:08d}", version=1, topic=topic, level=level, type=kind, points=points
                    )
                )
        return out


async def availability(conn: asyncpg.Connection, release_ids: Sequence[int]) -> Availability:
    rows = await conn.fetch(_CELLS, list(release_ids))
    return Availability(tuple((r["topic"], r["subject"], r["level"], r["type"], r["points"], r["n"]) for r in rows))


def blueprint_status(sections: list[Section], avail: Availability) -> dict:
    """Per cell what the release has and whether the blueprint can be filled, plus totals.

    Cells that cannot be filled are the assembly's own shortfalls (rows of the
    same cell in several sections compete for the same items)."""
    rows, where = [], []
    total_items, total_points, exact = 0, Decimal(0), True
    out_sections = []
    for si, sec in enumerate(sections):
        kind = sec.type if sec.type in ITEM_TYPES else None
        try:
            points = Decimal(sec.points.replace(",", ".")) if sec.points else None
            if points is not None and (not points.is_finite() or points <= 0):
                points = None
        except InvalidOperation:
            points = None
        cells = {}
        for topic, _ in avail.topics:
            for level in LEVELS:
                cells[f"{level}.{topic}"] = {"available": avail.count(topic, level, kind), "wanted": 0, "short": False}
        for (topic, level), text in sec.cells.items():
            key = f"{level}.{topic}"
            count = whole(text, MAX_COUNT) or 0
            cell = cells.setdefault(key, {"available": avail.count(topic, level, kind), "wanted": 0, "short": False})
            cell["wanted"] = count
            if not count:
                continue
            total_items += count
            if points is not None:
                total_points += points * count
            else:
                mean, same = avail.mean_points(topic, level, kind)
                exact = exact and same and mean is not None
                total_points += (mean or 0) * count
            rows.append(assembly.BlueprintRow(topic=topic, level=level, count=count, type=kind))
            where.append((si, key))
        bad = [k for k, v in sec.cells.items() if whole(v, MAX_COUNT) is None]
        out_sections.append({"cells": cells, "bad_count": bad})
    problems = []
    if rows:
        # One section per row keeps a shortfall's index pointing at its cell.
        bp = assembly.Blueprint(sections=tuple(assembly.BlueprintSection(title="", rows=(r,)) for r in rows))
        for s in assembly.shortfalls(bp, avail.pool()):
            si, key = where[s.section]
            cell = out_sections[si]["cells"][key]
            cell["short"] = True
            cell["left"] = s.available
            problems.append(
                {
                    "section": si,
                    "cell": key,
                    "topic": s.topic,
                    "level": s.level,
                    "type": s.type,
                    "wanted": s.wanted,
                    "available": s.available,
                }
            )
    for sec in out_sections:
        del sec["bad_count"]
    return {
        "sections": out_sections,
        "total_items": total_items,
        "total_points": _points_text(total_points),
        "points_exact": exact,
        "shortfalls": problems,
    }


def _points_text(value: Decimal) -> str:
    value = value.quantize(Decimal("0.01"))
    text = format(value, "f").rstrip("0").rstrip(".")
    return text or "0"


def describe(shortfall: dict) -> str:
    kind = f", type {shortfall['type']}" if shortfall["type"] else ""
    return (
        f"section {shortfall['section'] + 1}: topic {shortfall['topic']}, level {shortfall['level']}{kind}: "
        f"wants {shortfall['wanted']} approved items, the release has {shortfall['available']}"
    )


def default_form(subject: str = "") -> dict:
    """A new exam: tomorrow morning, 45 minutes, Vietnamese time."""
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    return {
        "subject": subject,
        "duration_minutes": "45",
        "tz": DEFAULT_TZ,
        "opens": f"{tomorrow.isoformat()}T07:30",
        "closes": f"{tomorrow.isoformat()}T10:00",
        "late_entry_minutes": "15",
        "grace_seconds": "30",
        "form_mode": "per-candidate",
        "form_count": "4",
        "single_penalty": "0",
        "report_decimals": "2",
        "integrity_action": "count",
        "integrity_pause_after": "3",
        "shuffle_items": "1",
        "shuffle_options": "1",
        "one_device": "1",
        "section_count": "1",
        "s0.title": "Phần I",
    }
