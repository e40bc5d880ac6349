"""The test builder: the web form of an exam turned into the exam file's
mapping, and that through exams.parse_exam, so a form and a YAML file for
the same exam give the same ExamSpec (the file stays the source of truth).

The blueprint is edited as a matrix per section: topics of the chosen bank
releases (one or several of the subject) down, the levels of their scheme
across (Biết, Hiểu, Vận dụng for a 2025 bank; the legacy four otherwise),
each cell the number of items; a topic with item sets has one more cell, the
number of whole sets (and, optionally, how many questions each). A section
may ask for one item type and a fixed number of points per item; the fields
are

    section_count, s0.title, s0.time_limit, s0.type, s0.points,
    s0.c1.ham-so = 2      (section 0, level 1, topic ham-so: 2 items)
    s0.sets.reading = 2, s0.children.reading = 5   (2 sets of 5 questions)
    target.1 = 40         (the share of points aimed at level 1, percent)
    specification.1.ham-so = ...   (the bản đặc tả: what level 1 of ham-so requires)

Availability is counted from the releases' approved items (summed over them), and a blueprint's
feasibility is the assembly's own check (assembly.shortfalls).

The whole exam reads as the 2025 template does (`matrix`): topics down,
question formats (Part I multiple choice, Part II true/false, Part III short
answer, essay) and the levels across, the number of questions in each cell,
with totals of questions and points and each level's share of the points
beside the teacher's target. `matrix_xlsx` writes it, with the bản đặc tả,
in the layout schools hand to the department.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import asyncpg
import yaml

from cbt import assembly, exams
from cbt.numbers import local_number
from cbt.platform.errors import Problem
from cbt.platform.inputs import whole
from itembank.levels import LEGACY, LevelScheme

ITEM_TYPES = exams.ITEM_TYPES
FORM_MODES = ("per-candidate", "fixed")
MAX_SECTIONS = 10
# Questions asked of one blueprint cell.
MAX_COUNT = 500
DEFAULT_TZ = "+07:00"
# A level as a field name may carry it; the bank's scheme says which exist.
_CELL = re.compile(r"^s(\d+)\.c([1-9]\d?)\.(.+)$")
_SET_FIELD = re.compile(r"^s(\d+)\.(sets|children)\.(.+)$")
_TARGET = re.compile(r"^target\.([1-9]\d?)$")
_SPECIFICATION = re.compile(r"^specification\.([1-9]\d?)\.(.+)$")
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
    # topic -> the number of whole item sets as typed, and the questions each must have.
    sets: dict = field(default_factory=dict)
    children: dict = field(default_factory=dict)

    def count(self, topic: str, level: int) -> str:
        return self.cells.get((topic, level), "")

    def set_count(self, topic: str) -> str:
        return self.sets.get(topic, "")

    def set_children(self, topic: str) -> str:
        return self.children.get(topic, "")


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
        value = _get(form, key)
        if not value:
            continue
        if (m := _CELL.match(key)) and int(m.group(1)) < n:
            sections[int(m.group(1))].cells[(m.group(3), int(m.group(2)))] = value
        elif (m := _SET_FIELD.match(key)) and int(m.group(1)) < n:
            getattr(sections[int(m.group(1))], m.group(2))[m.group(3)] = value
    return sections


def targets_of(form: Mapping) -> dict[int, Decimal]:
    """The level targets as typed (level -> percent), what is not a number left out:
    for the live matrix, which must not fail on a half-typed form."""
    out = {}
    for key in form:
        m = _TARGET.match(key)
        if m:
            try:
                value = Decimal(_get(form, key).replace(",", "."))
            except InvalidOperation:
                continue
            if value.is_finite():
                out[int(m.group(1))] = value
    return out


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
        rows += _set_rows(sec, where, points, problems)
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
    # Written only when given, so an exam without them has the file it always had.
    targets = {int(m[1]): _as_typed(_get(form, k)) for k in form if (m := _TARGET.match(k)) and _get(form, k)}
    if targets:
        data["level_targets"] = dict(sorted(targets.items()))
    specification: dict = {}
    for key in sorted(form):
        if (m := _SPECIFICATION.match(key)) and _get(form, key):
            specification.setdefault(m[2], {})[int(m[1])] = _get(form, key)
    if specification:
        data["specification"] = {topic: dict(sorted(levels.items())) for topic, levels in specification.items()}
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


def _set_rows(sec: Section, where: str, points: Decimal | None, problems: list[Problem]) -> list[dict]:
    """The section's set rows: whole item sets of a topic, each child keeping its own level and type."""
    rows = []
    for topic, text in sec.sets.items():
        count = _whole(
            text, f"{where}: item sets of topic {topic}", problems, 0, MAX_COUNT, field=f"{where}.set_cell", topic=topic
        )
        if not count:
            continue
        row: dict = {"topic": topic, "type": assembly.SET_ROW, "count": count}
        if sec.set_children(topic):
            children = _whole(
                sec.set_children(topic),
                f"{where}: questions in each set of topic {topic}",
                problems,
                1,
                exams.MAX_SET_CHILDREN,
                field=f"{where}.set_children",
                topic=topic,
            )
            if children is not None:
                row["children"] = children
        if points is not None:
            row["points"] = str(points)
        rows.append(row)
    return rows


def _as_typed(text: str) -> int | str:
    """A number for the exam file as the teacher typed it: 40 stays a number
    there, 33,5 becomes "33.5", and anything else is left for parse_exam to fault."""
    text = text.replace(",", ".")
    return int(text) if text.isdigit() else text


def exam_yaml(data: dict) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def build_spec(
    form: Mapping, release_label: str | Sequence[str], scheme: LevelScheme = LEGACY
) -> tuple[str, exams.ExamSpec]:
    """(exam file text, spec) for the form, whose releases write levels in
    `scheme`; ExamFileError lists every problem."""
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
    problems += exams.scheme_problems(spec, scheme)
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
    "level_targets": "ws.exams.level_targets",
    "specification": "ws.exams.specification",
}
SECTION_FIELD_LABELS = {
    "title": "ws.exams.section_title",
    "time_limit_minutes": "ws.exams.section_limit",
    "points": "ws.exams.points_each",
    "type": "ws.exams.item_type",
    "cell": "ws.exams.cell_label",
    "set_cell": "ws.exams.set_cell_label",
    "set_children": "ws.exams.set_children_label",
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
    form.update({f"target.{level}": _plain(percent) for level, percent in spec.level_targets.items()})
    for topic, by_level in spec.specification.items():
        form.update({f"specification.{level}.{topic}": text for level, text in by_level.items()})
    for si, sec in enumerate(spec.blueprint.sections):
        items = [r for r in sec.rows if not r.is_set]
        sets = [r.topic for r in sec.rows if r.is_set]
        types = {r.type for r in items}
        points = {r.points for r in sec.rows}
        cells = [(r.topic, r.level) for r in items]
        if len(types) > 1 or len(points) > 1 or len(set(cells)) != len(cells) or len(set(sets)) != len(sets):
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
        if not all(r.scored for r in sec.rows):
            # Saved from the form, trial rows would come back scored.
            raise exams.ExamFileError(
                [
                    Problem(
                        f"sections[{si + 1}]: has trial rows (scored: false), which the matrix cannot show;"
                        " edit this exam with its YAML file (cbt exam create)",
                        "matrix_trial_rows",
                        f"sections[{si + 1}]",
                    )
                ]
            )
        form[f"s{si}.title"] = sec.title
        form[f"s{si}.time_limit"] = str(sec.time_limit_minutes or "")
        form[f"s{si}.type"] = next(iter(types), None) or ""
        point = next(iter(points))
        form[f"s{si}.points"] = "" if point is None else str(point)
        for r in sec.rows:
            if r.is_set:
                form[f"s{si}.sets.{r.topic}"] = str(r.count)
                if r.children is not None:
                    form[f"s{si}.children.{r.topic}"] = str(r.children)
            else:
                form[f"s{si}.c{r.level}.{r.topic}"] = str(r.count)
    return form


def _plain(value) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


# -- what the release can give ------------------------------------------------------

# An item version in two of the releases counts once, as it is drawn once. A
# set's children are drawn only with their set, never by an item row.
_CELLS = """
SELECT b.topic, min(b.subject) AS subject, b.level, b.type, b.points, count(*) AS n
FROM bank_items b
WHERE b.status = 'approved' AND b.set_pk IS NULL
  AND b.id IN (SELECT ri.item_pk FROM release_items ri WHERE ri.release_id = ANY($1::bigint[]))
GROUP BY b.topic, b.level, b.type, b.points
ORDER BY b.topic, b.level, b.type
"""
# Each set version once, with its approved children in set order.
_SETS = """
SELECT s.set_id || '@' || s.version AS set_key, s.topic, s.subject,
       array_agg(b.type ORDER BY b.set_position) AS types,
       array_agg(b.level ORDER BY b.set_position) AS levels,
       array_agg(b.points ORDER BY b.set_position) AS points
FROM bank_items b JOIN bank_sets s ON s.id = b.set_pk
WHERE b.status = 'approved'
  AND b.id IN (SELECT ri.item_pk FROM release_items ri WHERE ri.release_id = ANY($1::bigint[]))
GROUP BY s.id
ORDER BY s.topic, set_key
"""

# The question formats of the 2025 template, in its order: Part I (multiple
# choice, one or several keys), Part II (true/false, four statements), Part
# III (short answer), and essay.
FORMATS = {"mcq": ("single", "multiple"), "truefalse": ("truefalse4",), "short": ("short",), "essay": ("essay",)}
FORMAT_OF = {kind: name for name, kinds in FORMATS.items() for kind in kinds}
# The format of a row that takes items of any type, where the release's items
# of its cell are of several formats: a form may get any of them.
ANY_FORMAT = "any"
# How far (in points of percentage) a level's share of the points may miss
# the teacher's target before the builder says so.
TARGET_TOLERANCE = Decimal(5)


@dataclass(frozen=True)
class SetInfo:
    """An item set of the releases as the builder counts it: its children's
    (type, level, points), in set order."""

    key: str
    topic: str
    subject: str
    children: tuple[tuple[str, int, Decimal], ...]

    @property
    def profile(self) -> tuple[tuple[tuple[str, int], int], ...]:
        """The questions a form gets from the set, per (format, level), in a fixed order:
        two sets with equal profiles fill a matrix alike."""
        return tuple(sorted(Counter((FORMAT_OF[kind], level) for kind, level, _ in self.children).items()))

    def points_at(self, fmt: str, level: int) -> Decimal:
        return sum((p for kind, lv, p in self.children if FORMAT_OF[kind] == fmt and lv == level), Decimal(0))

    @property
    def points(self) -> Decimal:
        return sum((p for *_, p in self.children), Decimal(0))


@dataclass(frozen=True)
class Availability:
    """The approved items of the releases, counted per topic, level, type and
    points (`groups`, children of sets left out), and their item sets."""

    groups: tuple  # (topic, subject, level, type, points, n)
    sets: tuple[SetInfo, ...] = ()

    @property
    def topics(self) -> list[tuple[str, str]]:
        seen = {}
        for topic, subject, *_ in self.groups:
            seen.setdefault(topic, subject)
        for s in self.sets:
            seen.setdefault(s.topic, s.subject)
        return sorted(seen.items(), key=lambda ts: (ts[1], ts[0]))

    @property
    def set_topics(self) -> set[str]:
        return {s.topic for s in self.sets}

    def _matching(self, topic: str, level: int, kind: str | None) -> list[tuple[Decimal, int]]:
        return [(p, n) for t, _, lv, ty, p, n in self.groups if t == topic and lv == level and (not kind or ty == kind)]

    def count(self, topic: str, level: int, kind: str | None) -> int:
        return sum(n for _, n in self._matching(topic, level, kind))

    def formats(self, topic: str, level: int) -> set[str]:
        """The formats of the items a row of any type may draw in this cell."""
        return {FORMAT_OF[ty] for t, _, lv, ty, _, _ in self.groups if t == topic and lv == level}

    def mean_points(self, topic: str, level: int, kind: str | None) -> tuple[Decimal | None, bool]:
        """The items' own points in a cell: (mean, whether they are all equal)."""
        found = self._matching(topic, level, kind)
        total = sum(n for _, n in found)
        if not total:
            return None, True
        return sum(p * n for p, n in found) / total, len({p for p, _ in found}) == 1

    def sets_of(self, topic: str, children: int | None = None) -> list[SetInfo]:
        """The sets a set row of this topic (and number of questions, if it names one) may draw."""
        return [s for s in self.sets if s.topic == topic and (children is None or len(s.children) == children)]

    def set_count(self, topic: str, children: int | None = None) -> int:
        return len(self.sets_of(topic, children))

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
        for s in self.sets:
            for place, (kind, level, points) in enumerate(s.children):
                pk += 1
                out.append(
                    assembly.PoolItem(
                        pk=pk,
                        item_id=f"{pk:08d}",
                        version=1,
                        topic=s.topic,
                        level=level,
                        type=kind,
                        points=points,
                        set_key=s.key,
                        set_topic=s.topic,
                        set_position=place,
                    )
                )
        return out


async def availability(conn: asyncpg.Connection, release_ids: Sequence[int]) -> Availability:
    rows = await conn.fetch(_CELLS, list(release_ids))
    sets = await conn.fetch(_SETS, list(release_ids))
    return Availability(
        tuple((r["topic"], r["subject"], r["level"], r["type"], r["points"], r["n"]) for r in rows),
        tuple(
            SetInfo(
                s["set_key"], s["topic"], s["subject"], tuple(zip(s["types"], s["levels"], s["points"], strict=True))
            )
            for s in sets
        ),
    )


def _section_points(sec: Section) -> Decimal | None:
    """The section's points per question if the field holds a usable number (the live status never fails)."""
    try:
        points = Decimal(sec.points.replace(",", ".")) if sec.points else None
    except InvalidOperation:
        return None
    return points if points is not None and points.is_finite() and points > 0 else None


def _children(sec: Section, topic: str) -> int | None:
    return whole(sec.set_children(topic), exams.MAX_SET_CHILDREN, low=1)


def form_blueprint(sections: list[Section]) -> tuple[assembly.Blueprint, list[tuple[int, str]]]:
    """The blueprint the form asks for, as far as it reads (a count that is no
    number is no row), and for each row its (section index, cell key). Each row
    is a section of its own, so that a shortfall's index names its cell."""
    rows, where = [], []
    for si, sec in enumerate(sections):
        kind = sec.type if sec.type in ITEM_TYPES else None
        points = _section_points(sec)
        for (topic, level), text in sec.cells.items():
            if count := whole(text, MAX_COUNT):
                rows.append(assembly.BlueprintRow(topic=topic, level=level, count=count, type=kind, points=points))
                where.append((si, f"{level}.{topic}"))
        for topic, text in sec.sets.items():
            if count := whole(text, MAX_COUNT):
                row = assembly.BlueprintRow(
                    topic=topic,
                    level=None,
                    count=count,
                    type=assembly.SET_ROW,
                    children=_children(sec, topic),
                    points=points,
                )
                rows.append(row)
                where.append((si, f"set.{topic}"))
    return assembly.Blueprint(sections=tuple(assembly.BlueprintSection(title="", rows=(r,)) for r in rows)), where


def blueprint_status(sections: list[Section], avail: Availability, scheme: LevelScheme = LEGACY) -> dict:
    """Per cell what the release has and whether the blueprint can be filled, plus totals.

    Cells that cannot be filled are the assembly's own shortfalls (rows of the
    same cell in several sections compete for the same items); a set cell
    ("set.reading") counts whole sets."""
    blueprint, where = form_blueprint(sections)
    out_sections = []
    for sec in sections:
        kind = sec.type if sec.type in ITEM_TYPES else None
        cells = {}
        for topic, _ in avail.topics:
            for level in scheme.numbers:
                cells[f"{level}.{topic}"] = {"available": avail.count(topic, level, kind), "wanted": 0, "short": False}
        for topic in sorted(avail.set_topics):
            cells[f"set.{topic}"] = {
                "available": avail.set_count(topic, _children(sec, topic)),
                "wanted": 0,
                "short": False,
            }
        out_sections.append({"cells": cells})
    for (si, key), section in zip(where, blueprint.sections, strict=True):
        row = section.rows[0]
        if row.is_set:
            available = avail.set_count(row.topic, row.children)
        else:
            available = avail.count(row.topic, row.level, row.type)
        cell = out_sections[si]["cells"].setdefault(key, {"available": available, "wanted": 0, "short": False})
        cell["wanted"] = row.count
    problems = []
    for s in assembly.shortfalls(blueprint, avail.pool()):
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
                "children": s.children,
                "wanted": s.wanted,
                "available": s.available,
            }
        )
    summary = matrix(blueprint, avail, scheme)
    return {
        "sections": out_sections,
        "total_items": summary.total_questions,
        "total_points": points_text(summary.total_points),
        "points_exact": summary.exact,
        "shortfalls": problems,
    }


def points_text(value: Decimal) -> str:
    value = value.quantize(Decimal("0.01"))
    text = format(value, "f").rstrip("0").rstrip(".")
    return text or "0"


def percent_text(value: Decimal | None) -> str:
    """A share of the points for people: one decimal at most ("37.5", "40")."""
    if value is None:
        return ""
    text = format(value.quantize(Decimal("0.1"), ROUND_HALF_UP), "f").rstrip("0").rstrip(".")
    return text or "0"


def describe(shortfall: dict) -> str:
    if shortfall["type"] == assembly.SET_ROW:
        size = f" of {shortfall['children']} questions" if shortfall.get("children") else ""
        return (
            f"section {shortfall['section'] + 1}: topic {shortfall['topic']}: wants {shortfall['wanted']}"
            f" item sets{size}, the release has {shortfall['available']}"
        )
    kind = f", type {shortfall['type']}" if shortfall["type"] else ""
    return (
        f"section {shortfall['section'] + 1}: topic {shortfall['topic']}, level {shortfall['level']}{kind}: "
        f"wants {shortfall['wanted']} approved items, the release has {shortfall['available']}"
    )


# -- the matrix as the 2025 template reads it ---------------------------------------


@dataclass(frozen=True)
class Matrix:
    """The whole exam as the 2025 template (Công văn 7991/BGDĐT-GDTrH) reads it.

    counts: (topic, format, level) -> the questions every form has there;
    points: (topic, format, level) -> their points (a mean where the cell's
    items differ in points, and then `exact` is False). A set row puts each
    child in its own format and level when every set it may draw has the same
    profile (`SetInfo.profile`); otherwise its sets vary, and `varies` holds,
    per topic, [sets, questions, points] that no cell can hold (questions: the
    fewest the sets can give). Trial rows (scored: false) count in no cell:
    `trial_questions`. targets: level -> the percent of the points aimed at.
    """

    levels: tuple[int, ...]
    formats: tuple[str, ...]
    topics: tuple[str, ...]
    counts: dict
    points: dict
    varies: dict
    exact: bool
    trial_questions: int
    targets: dict

    def count(self, topic: str | None = None, fmt: str | None = None, level: int | None = None) -> int:
        """Questions in the cells that match (None: any)."""
        return sum(n for key, n in self.counts.items() if _matches(key, topic, fmt, level))

    def points_of(self, topic: str | None = None, fmt: str | None = None, level: int | None = None) -> Decimal:
        found = sum((p for key, p in self.points.items() if _matches(key, topic, fmt, level)), Decimal(0))
        if topic is not None and fmt is None and level is None and topic in self.varies:
            found += self.varies[topic][2]
        return found

    @property
    def total_questions(self) -> int:
        return self.count() + sum(v[1] for v in self.varies.values())

    @property
    def total_points(self) -> Decimal:
        return self.points_of() + sum((v[2] for v in self.varies.values()), Decimal(0))

    def topic_questions(self, topic: str) -> int:
        return self.count(topic) + (self.varies[topic][1] if topic in self.varies else 0)

    def percent(self, level: int | None = None, fmt: str | None = None) -> Decimal | None:
        """The share of all the points at this level (and/or format), in percent; None for no points."""
        total = self.total_points
        return self.points_of(fmt=fmt, level=level) * 100 / total if total else None

    @property
    def checkable(self) -> bool:
        """Whether the shares can be set beside the targets: some points, every one at a known level."""
        return bool(self.targets) and bool(self.total_points) and not self.varies

    def off_target(self) -> list[tuple[int, Decimal, Decimal]]:
        """(level, percent, target) for each level whose share misses its target by more than TARGET_TOLERANCE."""
        if not self.checkable:
            return []
        out = []
        for level in sorted(set(self.levels) | set(self.targets)):
            share, aim = self.percent(level), self.targets.get(level, Decimal(0))
            if abs(share - aim) > TARGET_TOLERANCE:
                out.append((level, share, aim))
        return out


def _matches(key: tuple, topic, fmt, level) -> bool:
    t, f, lv = key
    return (topic is None or t == topic) and (fmt is None or f == fmt) and (level is None or lv == level)


def matrix(
    blueprint: assembly.Blueprint,
    avail: Availability,
    scheme: LevelScheme = LEGACY,
    targets: Mapping[int, Decimal] | None = None,
) -> Matrix:
    """The blueprint as the 2025 template reads it (see Matrix), counted over what the releases hold."""
    counts: Counter = Counter()
    points: dict = {}
    varies: dict = {}
    exact, trial = True, 0

    def add(key: tuple, n: int, worth: Decimal) -> None:
        counts[key] += n
        points[key] = points.get(key, Decimal(0)) + worth

    for section in blueprint.sections:
        for row in section.rows:
            if not row.scored:
                trial += row.questions
            elif not row.is_set:
                if row.type:
                    fmt = FORMAT_OF[row.type]
                else:
                    found = avail.formats(row.topic, row.level)
                    fmt = next(iter(found)) if len(found) == 1 else ANY_FORMAT
                if row.points is not None:
                    worth = row.points * row.count
                else:
                    mean, same = avail.mean_points(row.topic, row.level, row.type)
                    exact = exact and same and mean is not None
                    worth = (mean or Decimal(0)) * row.count
                add((row.topic, fmt, row.level), row.count, worth)
            elif sets := avail.sets_of(row.topic, row.children):
                if len({s.profile for s in sets}) == 1:
                    for (fmt, level), n in sets[0].profile:
                        if row.points is not None:
                            each = [row.points * n]
                        else:
                            each = [s.points_at(fmt, level) for s in sets]
                            exact = exact and len(set(each)) == 1
                        add((row.topic, fmt, level), row.count * n, row.count * sum(each) / len(each))
                else:
                    sizes = [len(s.children) for s in sets]
                    worths = [s.points if row.points is None else row.points * len(s.children) for s in sets]
                    exact = exact and len(set(sizes)) == 1 and len(set(worths)) == 1
                    entry = varies.setdefault(row.topic, [0, 0, Decimal(0)])
                    entry[0] += row.count
                    entry[1] += row.count * min(sizes)
                    entry[2] += row.count * sum(worths) / len(worths)
            # A set row with no set to draw adds nothing here: it is a shortfall, said apart.
    levels = tuple(sorted(set(scheme.numbers) | {level for _, _, level in counts}))
    used = {fmt for _, fmt, _ in counts}
    formats = tuple(FORMATS) + ((ANY_FORMAT,) if ANY_FORMAT in used else ())
    order = [topic for topic, _ in avail.topics]
    asked = {topic for topic, _, _ in counts} | set(varies)
    topics = tuple(t for t in order if t in asked) + tuple(sorted(asked - set(order)))
    return Matrix(
        levels=levels,
        formats=formats,
        topics=topics,
        counts=dict(counts),
        points=points,
        varies=varies,
        exact=exact,
        trial_questions=trial,
        targets=dict(targets or {}),
    )


def level_names(scheme: LevelScheme, lang: str) -> dict[int, str]:
    """What the pages call each level: the scheme's own names, which are
    Vietnamese; in English its glosses ("Recall") where it has them."""
    out = {}
    for n in scheme.numbers:
        gloss = scheme.glosses[n - 1] if n <= len(scheme.glosses) else ""
        out[n] = gloss[:1].upper() + gloss[1:] if lang != "vi" and gloss else scheme.name(n)
    return out


def target_notes(m: Matrix, t: Callable[..., str], names: Mapping[int, str], lang: str) -> list[str]:
    """What the page says of the shares beside the targets, in lang: each level
    that misses its target by more than TARGET_TOLERANCE, or why they cannot be
    set side by side; nothing when there is no target, or every level meets it."""
    notes = [
        t(
            "ws.exams.off_target",
            level=names.get(level, str(level)),
            percent=local_number(percent_text(got), lang),
            target=local_number(percent_text(aim), lang),
            tolerance=local_number(percent_text(TARGET_TOLERANCE), lang),
        )
        for level, got, aim in m.off_target()
    ]
    if m.targets and m.total_points and not m.checkable:
        notes.append(t("ws.exams.target_unknown"))
    return notes


def set_profiles(avail: Availability, names: Mapping[int, str]) -> dict[str, str | None]:
    """Per topic with sets, the questions each set gives per level ("2 Biết, 2 Hiểu,
    1 Vận dụng"), or None where its sets differ."""
    out = {}
    for topic in sorted(avail.set_topics):
        profiles = {tuple(sorted(Counter(lv for _, lv, _ in s.children).items())) for s in avail.sets_of(topic)}
        only = next(iter(profiles)) if len(profiles) == 1 else None
        out[topic] = None if only is None else ", ".join(f"{n} {names.get(lv, str(lv))}" for lv, n in only)
    return out


# -- the matrix and the bản đặc tả as a workbook ---------------------------------


@dataclass(frozen=True)
class Heading:
    """The title block of the exported matrix: who sets the exam and what it is."""

    school: str
    title: str
    code: str
    subject: str
    grade: str
    minutes: int


def matrix_xlsx(
    m: Matrix,
    heading: Heading,
    t: Callable[..., str],
    names: Mapping[int, str],
    topic_names: Mapping[str, str],
    specification: Mapping[str, Mapping[int, str]],
    lang: str,
) -> bytes:
    """The matrix and the bản đặc tả as schools hand them to the department, one sheet each.

    Both start with a title block (school, exam, subject, grade, time). The
    matrix: topics down; each question format a group of merged header cells
    over the levels, then the total per level, the topic's questions, points
    and share of the points; below, the totals of questions and points per
    column, each level's share beside its target. The bản đặc tả: per topic
    and level, what is required (the exam file's `specification`, else the
    topic's name) and the questions of each format. t is a translator of the
    reader's language lang (cbt.platform.i18n), names the levels' names in it.
    """
    from openpyxl import Workbook  # only the export needs it; keeps importing this module cheap
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    from cbt.roster import safe_cell

    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    bold = Font(bold=True)

    def put(ws, row: int, col: int, value, *, strong=False, number_format=None, align=centre, border=True):
        cell = ws.cell(row=row, column=col, value=safe_cell(value) if isinstance(value, str) else value)
        cell.alignment = align
        if strong:
            cell.font = bold
        if border:
            cell.border = box
        if number_format:
            cell.number_format = number_format
        return cell

    def title_block(ws, title: str, width: int) -> int:
        """The heading rows; returns the first row after them."""
        lines = [
            (heading.school, False),
            (title, True),
            (t("ws.exams.xlsx.exam", title=heading.title, code=heading.code), True),
            (t("ws.exams.xlsx.facts", subject=heading.subject, grade=heading.grade, minutes=heading.minutes), False),
        ]
        for r, (text, strong) in enumerate(lines, 1):
            put(ws, r, 1, text, strong=strong, border=False)
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=width)
        return len(lines) + 2

    def number(value: Decimal) -> float:
        return float(value.quantize(Decimal("0.01"), ROUND_HALF_UP))

    def share(value: Decimal | None) -> float | None:
        return None if value is None else float(value.quantize(Decimal("0.1"), ROUND_HALF_UP))

    book = Workbook()
    ws = book.active
    ws.title = t("ws.exams.xlsx.matrix_sheet")
    levels, formats, n = m.levels, m.formats, len(m.levels)
    first = 3  # columns: TT, topic, then the format groups
    total_col = first + n * len(formats)
    varies_col = total_col + n if m.varies else None
    tail = (varies_col or total_col + n - 1) + 1  # questions, points, share
    width = tail + 2
    top = title_block(ws, t("ws.exams.xlsx.matrix_title"), width)
    h1, h2 = top, top + 1
    for col, key in ((1, "ws.exams.xlsx.number"), (2, "ws.exams.topic")):
        put(ws, h1, col, t(key), strong=True)
        ws.merge_cells(start_row=h1, start_column=col, end_row=h2, end_column=col)
    groups = [(t("ws.exams.format." + f), first + i * n) for i, f in enumerate(formats)]
    groups.append((t("ws.exams.xlsx.total_group"), total_col))
    for label, col in groups:
        put(ws, h1, col, label, strong=True)
        ws.merge_cells(start_row=h1, start_column=col, end_row=h1, end_column=col + n - 1)
        for i, level in enumerate(levels):
            put(ws, h2, col + i, names.get(level, str(level)), strong=True)
    ends = [("ws.exams.varies", varies_col)] if varies_col else []
    ends += [("ws.exams.total_items", tail), ("ws.exams.total_points", tail + 1), ("ws.exams.xlsx.percent", tail + 2)]
    for key, col in ends:
        put(ws, h1, col, t(key), strong=True)
        ws.merge_cells(start_row=h1, start_column=col, end_row=h2, end_column=col)
    row = h2 + 1
    for number_in_list, topic in enumerate(m.topics, 1):
        put(ws, row, 1, number_in_list)
        put(ws, row, 2, topic_names.get(topic, topic), align=Alignment(vertical="center", wrap_text=True))
        for gi, f in enumerate(formats):
            for i, level in enumerate(levels):
                put(ws, row, first + gi * n + i, m.count(topic, f, level) or None)
        for i, level in enumerate(levels):
            put(ws, row, total_col + i, m.count(topic, None, level) or None)
        if varies_col:
            put(ws, row, varies_col, m.varies[topic][0] if topic in m.varies else None)
        put(ws, row, tail, m.topic_questions(topic))
        put(ws, row, tail + 1, number(m.points_of(topic)), number_format="0.00")
        topic_share = m.points_of(topic) * 100 / m.total_points if m.total_points else None
        put(ws, row, tail + 2, share(topic_share), number_format="0.0")
        row += 1
    # The totals: questions and points per column, then each level's share beside its target.
    put(ws, row, 1, t("ws.exams.total_items"), strong=True)
    put(ws, row + 1, 1, t("ws.exams.total_points"), strong=True)
    put(ws, row + 2, 1, t("ws.exams.xlsx.percent"), strong=True)
    put(ws, row + 3, 1, t("ws.exams.xlsx.target"), strong=True)
    for r in range(row, row + 4):
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=2)
    columns = [(first + gi * n + i, f, level) for gi, f in enumerate(formats) for i, level in enumerate(levels)]
    columns += [(total_col + i, None, level) for i, level in enumerate(levels)]
    for col, f, level in columns:
        put(ws, row, col, m.count(None, f, level), strong=f is None)
        put(ws, row + 1, col, number(m.points_of(None, f, level)), strong=f is None, number_format="0.00")
    for gi, f in enumerate(formats):
        # A format's share of the points, over its group of columns.
        col = first + gi * n
        put(ws, row + 2, col, share(m.percent(fmt=f)), number_format="0.0")
        ws.merge_cells(start_row=row + 2, start_column=col, end_row=row + 2, end_column=col + n - 1)
    for i, level in enumerate(levels):
        put(ws, row + 2, total_col + i, share(m.percent(level)), strong=True, number_format="0.0")
        aim = m.targets.get(level)
        put(ws, row + 3, total_col + i, None if aim is None else float(aim), number_format="0.0")
    if varies_col:
        put(ws, row, varies_col, sum(v[0] for v in m.varies.values()), strong=True)
        put(ws, row + 1, varies_col, number(sum((v[2] for v in m.varies.values()), Decimal(0))), number_format="0.00")
    put(ws, row, tail, m.total_questions, strong=True)
    put(ws, row + 1, tail + 1, number(m.total_points), strong=True, number_format="0.00")
    put(ws, row + 2, tail + 2, share(Decimal(100)) if m.total_points else None, strong=True, number_format="0.0")
    notes = target_notes(m, t, names, lang)
    if not m.exact:
        notes.append(t("ws.exams.points_approx"))
    if m.trial_questions:
        notes.append(t("ws.exams.trial_questions", n=m.trial_questions))
    for r, text in enumerate(notes, row + 5):
        put(ws, r, 1, text, border=False, align=Alignment(wrap_text=False))
    ws.column_dimensions["A"].width = 6
    ws.column_dimensions["B"].width = 28
    for col in range(first, width + 1):
        ws.column_dimensions[get_column_letter(col)].width = 9
    ws.freeze_panes = ws.cell(row=h2 + 1, column=first)

    # The bản đặc tả: a row per topic and level.
    spec = book.create_sheet(t("ws.exams.xlsx.specification_sheet"))
    sw = 4 + len(formats)
    top = title_block(spec, t("ws.exams.xlsx.specification_title"), sw)
    h1, h2 = top, top + 1
    for col, key in (
        (1, "ws.exams.xlsx.number"),
        (2, "ws.exams.topic"),
        (3, "ws.exams.level"),
        (4, "ws.exams.xlsx.requirement"),
    ):
        put(spec, h1, col, t(key), strong=True)
        spec.merge_cells(start_row=h1, start_column=col, end_row=h2, end_column=col)
    put(spec, h1, 5, t("ws.exams.xlsx.questions_by_format"), strong=True)
    spec.merge_cells(start_row=h1, start_column=5, end_row=h1, end_column=sw)
    for i, f in enumerate(formats):
        put(spec, h2, 5 + i, t("ws.exams.format." + f), strong=True)
    row = h2 + 1
    wrap = Alignment(vertical="top", wrap_text=True)
    for number_in_list, topic in enumerate(m.topics, 1):
        name = topic_names.get(topic, topic)
        put(spec, row, 1, number_in_list)
        put(spec, row, 2, name, align=wrap)
        for i, level in enumerate(levels):
            put(spec, row + i, 3, names.get(level, str(level)))
            put(spec, row + i, 4, specification.get(topic, {}).get(level) or name, align=wrap)
            for fi, f in enumerate(formats):
                put(spec, row + i, 5 + fi, m.count(topic, f, level) or None)
        spec.merge_cells(start_row=row, start_column=1, end_row=row + n - 1, end_column=1)
        spec.merge_cells(start_row=row, start_column=2, end_row=row + n - 1, end_column=2)
        row += n
    put(spec, row, 1, t("ws.exams.total_items"), strong=True)
    spec.merge_cells(start_row=row, start_column=1, end_row=row, end_column=4)
    for fi, f in enumerate(formats):
        put(spec, row, 5 + fi, m.count(None, f), strong=True)
    for col, size in (("A", 6), ("B", 22), ("C", 12), ("D", 60)):
        spec.column_dimensions[col].width = size
    for fi in range(len(formats)):
        spec.column_dimensions[get_column_letter(5 + fi)].width = 14
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


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
