"""The item-analysis report for people: one printable HTML page and an xlsx.

Both take the dict of :func:`cbt.analysis.analyze_matrix`. The HTML is one
self-contained file: inline CSS, inline SVG charts (score histogram, option
trace lines, item characteristic curves), no scripts, no external links, so
it can be mailed, archived and printed as it is.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import IO, TYPE_CHECKING

import jinja2
from markupsafe import Markup, escape

from cbt.analysis import ctt, irt
from cbt.analysis.report import TESTLET_NOTE
from cbt.numbers import fmt

if TYPE_CHECKING:
    from cbt.heads import SignedHead

_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

FLAG_TEXT = {
    "possible_miskey": "possible miskey: a distractor correlates better than the key",
    "negative_discrimination": "negative discrimination: weaker examinees do better",
    "low_discrimination": "low discrimination",
    "too_easy": "too easy",
    "too_hard": "too hard",
    "nonfunctioning_distractor": "a distractor almost nobody chooses",
}


# -- SVG charts ------------------------------------------------------------------------------

_W, _H = 420, 220
_L, _R, _T, _B = 44, 12, 12, 34  # margins: room for the axis labels


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _axes(x_lo, x_hi, y_lo, y_hi, x_label, y_label, sx, sy) -> list[str]:
    out = [
        f'<line x1="{_L}" y1="{_H - _B}" x2="{_W - _R}" y2="{_H - _B}" class="ax"/>',
        f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{_H - _B}" class="ax"/>',
    ]
    for t in _ticks(x_lo, x_hi):
        x = sx(t)
        out.append(
            f'<line x1="{x:.1f}" y1="{_H - _B}" x2="{x:.1f}" y2="{_H - _B + 4}" class="ax"/>'
            f'<text x="{x:.1f}" y="{_H - _B + 15}" text-anchor="middle">{t:g}</text>'
        )
    for t in _ticks(y_lo, y_hi, 4):
        y = sy(t)
        out.append(
            f'<line x1="{_L - 4}" y1="{y:.1f}" x2="{_W - _R}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{_L - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>'
        )
    out.append(f'<text x="{(_L + _W - _R) / 2}" y="{_H - 4}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(
        f'<text x="12" y="{(_T + _H - _B) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(_T + _H - _B) / 2})">{escape(y_label)}</text>'
    )
    return out


def _svg(parts: list[str], label: str) -> Markup:
    body = "".join(parts)
    # Every interpolated text above went through escape(); the rest are numbers.
    return Markup(  # noqa: S704
        f'<svg viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" aria-label="{escape(label)}">{body}</svg>'
    )


# The charts' words; pass ``labels`` (a dict with some of these keys) to
# show them in another language. The CLI's report uses these defaults.
CHART_LABELS = {
    "total_score": "total score",
    "examinees": "examinees",
    "histogram": "score histogram",
    "group_mean_total": "mean total score of the group",
    "share_choosing": "share choosing",
    "mean_score": "mean score / max",
    "ability": "ability \u03b8",
    "p_right": "P(right)",
    "key": "key",
    "observed": "observed",
    "option_trace": "option trace lines of item {id}",
    "score_trace": "observed item curve of item {id}",
}


def _labels(labels: dict | None) -> dict:
    return CHART_LABELS if not labels else {**CHART_LABELS, **labels}


def histogram_svg(bins: list[dict], labels: dict | None = None) -> Markup:
    """Bars of the total-score distribution."""
    words = _labels(labels)
    if not bins:
        return Markup("<p>No totals.</p>")
    exact = all(b["low"] == b["high"] for b in bins)
    if exact:
        values = [b["low"] for b in bins]
        gap = min((b - a for a, b in itertools.pairwise(values)), default=1.0) or 1.0
        x_lo, x_hi = values[0] - gap / 2, values[-1] + gap / 2
    else:
        x_lo, x_hi = bins[0]["low"], bins[-1]["high"]
    y_hi = max(b["count"] for b in bins) or 1
    sx = _scale(x_lo, x_hi, _L, _W - _R)
    sy = _scale(0, y_hi, _H - _B, _T)
    parts = _axes(x_lo, x_hi, 0, y_hi, words["total_score"], words["examinees"], sx, sy)
    for b in bins:
        lo, hi = (b["low"] - gap / 2, b["low"] + gap / 2) if exact else (b["low"], b["high"])
        x0, x1 = sx(lo), sx(hi)
        y = sy(b["count"])
        parts.append(
            f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.5):.1f}" '
            f'height="{_H - _B - y:.1f}" class="bar"><title>{fmt(b["low"])}: '
            f"{b['count']}</title></rect>"
        )
    return _svg(parts, words["histogram"])


def _lines_svg(
    x: list,
    series: list[tuple[str, list, bool]],
    x_label: str,
    y_label: str,
    label: str,
    x_range: tuple[float, float] | None = None,
) -> Markup:
    """Lines on a 0-1 y axis; series = (name, y values, emphasised)."""
    xs = [v for v in x if v is not None]
    if not xs:
        return Markup("<p>Not enough data for a chart.</p>")
    x_lo, x_hi = x_range or (min(xs), max(xs))
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    sx = _scale(x_lo, x_hi, _L, _W - _R - 70)
    sy = _scale(0, 1, _H - _B, _T)
    parts = _axes(x_lo, x_hi, 0, 1, x_label, y_label, sx, sy)
    for i, (name, ys, strong) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        pts = [(sx(a), sy(b)) for a, b in zip(x, ys, strict=False) if a is not None and b is not None]
        if not pts:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        width = 2.6 if strong else 1.4
        dash = "" if strong else ' stroke-dasharray="5 3"'
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="{width}"{dash}><title>{escape(name)}</title></polyline>'
        )
        if len(pts) <= 12:
            parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.2" fill="{colour}"/>' for px, py in pts)
        if len(series) > 10:
            continue  # a legend of dozens of items says nothing; titles do
        ly = _T + 10 + 14 * i
        parts.append(
            f'<line x1="{_W - _R - 62}" y1="{ly - 4}" x2="{_W - _R - 48}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="{width}"{dash}/>'
            f'<text x="{_W - _R - 44}" y="{ly}">{escape(name)}</text>'
        )
    return _svg(parts, label)


def option_trace_svg(item: dict, trace: dict, labels: dict | None = None) -> Markup:
    """Share choosing each option by total-score group; the key in bold."""
    words = _labels(labels)
    keyed = {o["option"]: o["is_key"] for o in item.get("options", [])}
    series = [
        (name + (f" ({words['key']})" if keyed.get(name) else ""), ys, keyed.get(name, False))
        for name, ys in trace["options"].items()
    ]
    return _lines_svg(
        trace["group_mean_total"],
        series,
        words["group_mean_total"],
        words["share_choosing"],
        words["option_trace"].format(id=item["id"]),
    )


def score_trace_svg(item: dict, trace: dict, labels: dict | None = None) -> Markup:
    """Mean item score / max by total-score group (empirical item curve)."""
    words = _labels(labels)
    return _lines_svg(
        trace["group_mean_total"],
        [(words["observed"], trace["mean_score"], True)],
        words["group_mean_total"],
        words["mean_score"],
        words["score_trace"].format(id=item["id"]),
    )


def icc_svg(irt_items: list[dict], label: str, labels: dict | None = None) -> Markup:
    """Item characteristic curves P(theta) from a and b (D = 1)."""
    import numpy as np  # only for the curve grid

    theta = np.linspace(-4, 4, 81)
    series = []
    for it in irt_items:
        if it["a"] is None or it["b"] is None:
            continue
        p = irt.icc(theta, np.array([it["a"]]), np.array([it["b"]]))[:, 0]
        series.append((str(it["id"]), [float(v) for v in p], len(irt_items) == 1))
    if not series:
        return Markup("<p>No estimated items.</p>")
    words = _labels(labels)
    return _lines_svg([float(t) for t in theta], series, words["ability"], words["p_right"], label, x_range=(-4.0, 4.0))


# -- HTML ------------------------------------------------------------------------------------

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Item analysis: {{ title }}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111;
margin:1.5em auto;max-width:1100px;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;border-bottom:2px solid #333;margin-top:1.6em}
h3{font-size:1.05em;margin:.2em 0}
table{border-collapse:collapse;margin:.5em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #bbb;padding:2px 6px;text-align:right}th{background:#eee}
td.l,th.l{text-align:left}tr.flagged td{background:#fff3cd}tr.key td{font-weight:bold}
.flag{display:inline-block;background:#f8d7da;color:#721c24;border-radius:3px;padding:0 4px;
margin:1px;font-size:.85em}
.note{color:#444;font-size:.9em}.charts{display:flex;flex-wrap:wrap;gap:1em}
svg text{font-size:11px;fill:#222}svg .ax{stroke:#333}svg .grid{stroke:#ddd}svg .bar{fill:#4a78b5}
section.item{border-top:1px solid #999;padding-top:.5em;margin-top:1em;break-inside:avoid;
page-break-inside:avoid}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}section.item{break-inside:avoid}}
@page{size:A4;margin:14mm}
</style></head><body>
<h1>Item analysis: {{ title }}</h1>
<p class="note">{{ r.examinees }} examinees, {{ r.items_count }} items.
Omitted responses {{ "scored as wrong" if r.omit_policy == "wrong" else "left out (missing)" }};
items not presented or not reached are left out of every statistic.
A dash means the statistic is undefined for these data (for example a zero variance).</p>

<h2>Test</h2>
<div class="charts"><table>
{% for label, key in summary_rows %}<tr><th class="l">{{ label }}</th><td>{{ fmt(r.test[key]) }}</td></tr>
{% endfor %}</table>
<div>{{ histogram }}</div></div>
<p class="note">SD with n &minus; 1; skewness and kurtosis are the sample estimators G1 and G2.
Reliability uses the {{ r.test.reliability_n }} examinees with a score on every item; KR-20 and KR-21
only when every item is right/wrong (on the number-right score). A negative alpha is shown as it is.</p>
{% if "testlet_units" in r.test %}<p class="note"><b>Passages:</b> {{ testlet_note }} The testlet alpha
sums each item set into one unit ({{ r.test.testlet_units }} units: the sets and the standalone items).</p>{% endif %}
{% if r.get("trial_items") %}<p class="note"><b>Trial questions</b> ({{ r.trial_items }}):
{{ trial_note }}</p>{% endif %}

{% if r.get("sets") %}<h2>Passages (item sets)</h2>
<table>
<tr><th class="l">set</th><th class="l">items</th><th>children</th><th>max</th><th>mean</th><th>p</th><th>sd</th>
<th>r rest</th><th>&alpha; within</th><th>n</th><th>n partial</th></tr>
{% for st in r.sets %}<tr><td class="l">{{ st.id }}{% if st.get("trial_n") %} (trial){% endif %}</td>
<td class="l">{{ st["items"] | join(", ") }}</td><td>{{ st.children }}</td><td>{{ fmt(st.max_points) }}</td>
<td>{{ fmt(st.mean) }}</td><td>{{ fmt(st.p) }}</td><td>{{ fmt(st.sd) }}</td><td>{{ fmt(st.r_rest) }}</td>
<td>{{ fmt(st.alpha) }}</td><td>{{ st.n }}</td><td>{{ st.n_partial }}</td></tr>
{% endfor %}</table>
<p class="note">A set's score is the sum of its children, for the examinees with a score on every child
(those with only some are counted in n partial and left out). r rest: correlation of the set score with
the total without the set (the set's discrimination). &alpha; within: Cronbach's alpha of the set's
children (internal consistency within the passage).</p>{% endif %}

<h2>Items</h2>
<table>
<tr><th class="l">item</th><th>max</th><th>n</th><th>p</th><th>sd</th><th>r<sub>pb</sub> rest</th>
<th>r<sub>pb</sub> total</th><th>r<sub>bis</sub></th><th>D (27%)</th><th>&alpha; if deleted</th>
<th>omitted</th><th class="l">flags</th></tr>
{% for it in r["items"] %}<tr{% if it.flags %} class="flagged"{% endif %}>
<td class="l"><a href="#item-{{ loop.index }}">{{ it.id }}</a>{% if it.get("trial_n") %} (trial){% endif %}</td>
<td>{{ fmt(it.max_points) }}</td>
<td>{{ it.n }}</td><td>{{ fmt(it.p) }}</td><td>{{ fmt(it.sd) }}</td><td>{{ fmt(it.r_pb) }}</td>
<td>{{ fmt(it.r_pb_total) }}</td><td>{{ fmt(it.r_bis) }}</td><td>{{ fmt(it.d_upper_lower) }}</td>
<td>{{ fmt(it.alpha_if_deleted) }}</td><td>{{ it.omitted }}</td>
<td class="l">{% for f in it.flags %}<span class="flag" title="{{ flag_text[f] }}">{{ f }}</span>{% endfor %}</td></tr>
{% endfor %}</table>
<p class="note">p = mean score / maximum. r<sub>pb</sub> rest: correlation of the item with the rest score
(total without the item; the discrimination index used for flags); r<sub>pb</sub> total includes the item
and is inflated by it. r<sub>bis</sub>: biserial from r<sub>pb</sub> rest (right/wrong items). D: p in the
top 27% minus p in the bottom 27% by total score; examinees tied at a cut score share the remaining
places equally, so each group is exactly 27%. Flags: {% for f, text in flag_text.items() %}<b>{{ f }}</b>
({{ text }}{% if f in flag_rules %}: {{ flag_rules[f] }}{% endif %}){{ "; " if not loop.last else "." }}{% endfor %}</p>

{% if r.get("irt") %}<h2>IRT: {{ "Rasch (a = 1)" if r.irt.model == "rasch" else "2PL" }}</h2>
<p class="note">Marginal maximum likelihood, ability N(0, 1), quadrature on {{ r.irt.quadrature_points }}
even points in [&minus;6, 6], logistic with D = 1, P = 1 / (1 + exp(&minus;a(&theta; &minus; b))).
Log-likelihood {{ fmt(r.irt.loglik, 3) }}; {{ "converged" if r.irt.converged else "NOT converged" }}
after {{ r.irt.iterations }} iterations.</p>
<div class="charts"><table><tr><th class="l">item</th><th>a</th><th>se(a)</th><th>b</th><th>se(b)</th></tr>
{% for it in r.irt["items"] %}<tr><td class="l">{{ it.id }}</td><td>{{ fmt(it.a) }}</td><td>{{ fmt(it.se_a) }}</td>
<td>{{ fmt(it.b) }}</td><td>{{ fmt(it.se_b) }}</td></tr>{% endfor %}</table>
<div>{{ icc_all }}</div></div>{% endif %}

{% if r.get("dif") %}<h2>DIF (Mantel-Haenszel)</h2>
<p class="note">Matched on the total score (all items). MH D-DIF = &minus;2.35 ln &alpha;<sub>MH</sub>, negative when
the item favours the reference group. ETS class A if |D| &lt; 1 or the chi-square is not significant at
.05; C if |D| &ge; 1.5 and (|D| &minus; 1)/SE &gt; 1.645; otherwise B.
{% if r.get("dif") %}Reference {{ r.dif[0].n_reference }}, focal {{ r.dif[0].n_focal }} examinees.{% endif %}</p>
<table><tr><th class="l">item</th><th>&alpha;<sub>MH</sub></th><th>MH D-DIF</th><th>SE</th><th>&chi;&sup2;</th>
<th>p</th><th>class</th></tr>
{% for d in r.dif %}<tr{% if d.ets_class in ("B", "C") %} class="flagged"{% endif %}><td class="l">{{ d.id }}</td>
<td>{{ fmt(d.mh_alpha) }}</td><td>{{ fmt(d.mh_d_dif) }}</td><td>{{ fmt(d.se_d_dif) }}</td>
<td>{{ fmt(d.chi2) }}</td><td>{{ fmt(d.p_value, 4) }}</td><td>{{ d.ets_class or "\u2014" }}</td></tr>{% endfor %}
</table>{% endif %}

<h2>Item details</h2>
{% for it in r["items"] %}<section class="item" id="item-{{ loop.index }}">
<h3>{{ it.id }}{% for f in it.flags %} <span class="flag">{{ f }}</span>{% endfor %}</h3>
<p class="note">p {{ fmt(it.p) }}, r<sub>pb</sub> rest {{ fmt(it.r_pb) }}, D {{ fmt(it.d_upper_lower) }},
omitted {{ it.omitted }} of {{ it.n if r.omit_policy == "wrong" else it.n + it.omitted }}.</p>
<div class="charts">
{% if it.get("options") %}<table><tr><th class="l">option</th><th>count</th><th>share</th>
<th>r<sub>pb</sub> rest</th><th>mean total</th></tr>
{% for o in it.options %}<tr{% if o.is_key %} class="key"{% endif %}>
<td class="l">{{ o.option }}{% if o.is_key %} (key){% endif %}</td><td>{{ o.count }}</td>
<td>{{ fmt(o.proportion) }}</td><td>{{ fmt(o.r_pb_rest) }}</td><td>{{ fmt(o.mean_total, 2) }}</td></tr>
{% endfor %}</table>{% endif %}
{% if charts[loop.index0].trace %}<div>{{ charts[loop.index0].trace }}</div>{% endif %}
{% if charts[loop.index0].icc %}<div>{{ charts[loop.index0].icc }}</div>{% endif %}
</div></section>
{% endfor %}
</body></html>
"""

_ITEM_COLUMNS = (
    "id",
    "max_points",
    "n",
    "p",
    "sd",
    "r_pb",
    "r_pb_total",
    "r_bis",
    "d_upper_lower",
    "alpha_if_deleted",
    "omitted",
    "flags",
)
_SUMMARY_ROWS = [
    ("examinees with a total", "n"),
    ("mean", "mean"),
    ("SD", "sd"),
    ("min", "min"),
    ("max", "max"),
    ("median", "median"),
    ("Cronbach's alpha", "alpha"),
    ("KR-20", "kr20"),
    ("KR-21", "kr21"),
    ("SEM", "sem"),
    ("skewness (G1)", "skewness"),
    ("kurtosis (G2)", "kurtosis"),
]
# Beside alpha when the items have sets (analyze_matrix's sets=): alpha with
# each set summed into one unit, the safer figure (docs/item-analysis.md).
_TESTLET_ROWS = [
    ("testlet alpha (sets as units)", "testlet_alpha"),
    ("testlet SEM", "testlet_sem"),
]
_SET_COLUMNS = ("id", "items", "children", "max_points", "mean", "p", "sd", "r_rest", "alpha", "n", "n_partial")
TRIAL_NOTE = (
    "scored as any question, in no examinee's total: the totals, the summary and the reliability are over"
    " the questions that counted, and a trial question's r_pb is its correlation with that total"
)


def _summary_rows(report: dict) -> list[tuple[str, str]]:
    """The summary's (label, key) rows: the testlet rows after alpha's when present."""
    if "testlet_units" not in report["test"]:
        return _SUMMARY_ROWS
    at = [key for _, key in _SUMMARY_ROWS].index("sem") + 1
    return _SUMMARY_ROWS[:at] + _TESTLET_ROWS + _SUMMARY_ROWS[at:]


# The workbook's words for people, in English: the CLI's workbook. The board
# passes its reader's language (board.report_words, from the catalogs'
# "report.*", "stat.*" and "flag.*"), sheet names and every header included:
# the workbook is for people, and scripts read the JSON report. The English
# defaults keep the statistics' own names, as the CLI's workbook always had.
_SHEETS = ("summary", "items", "sets", "options", "irt", "abilities", "dif", "notes", "audit")
_OPTION_COLUMNS = ("item", "option", "is_key", "count", "proportion", "r_pb_rest", "mean_total")
_IRT_COLUMNS = ("item", "a", "se_a", "b", "se_b")
_IRT_FIT = ("model", "loglik", "converged")
_ABILITY_COLUMNS = ("examinee", "eap", "se")
_DIF_COLUMNS = ("item", "mh_alpha", "mh_d_dif", "se_d_dif", "chi2", "p_value", "ets_class")
XLSX_WORDS = {
    **{f"sheet.{name}": {"irt": "IRT", "dif": "DIF"}.get(name, name.capitalize()) for name in _SHEETS},
    **{f"sets.{c}": {"id": "set", "r_rest": "r_rest (set)", "alpha": "alpha within"}.get(c, c) for c in _SET_COLUMNS},
    "sets.trial_n": "trial for (examinees)",
    **{f"options.{c}": c for c in _OPTION_COLUMNS},
    **{f"irt.{c}": c for c in (*_IRT_COLUMNS, *_IRT_FIT)},
    **{f"abilities.{c}": c for c in _ABILITY_COLUMNS},
    **{f"dif.{c}": c for c in _DIF_COLUMNS},
    **{f"summary.{key}": label for label, key in _SUMMARY_ROWS + _TESTLET_ROWS},
    "summary.testlet_units": "testlet units (sets and standalone items)",
    "summary.trial_items": "trial questions (in no total)",
    "summary.examinees": "examinees",
    "summary.items": "items",
    "summary.omit_policy": "omit policy",
    "summary.reliability_n": "examinees in reliability (every item)",
    "summary.score_from": "score from",
    "summary.score_to": "score to",
    "summary.score_examinees": "examinees",
    "omit.wrong": "wrong",
    "omit.missing": "missing",
    "items.id": "item",
    "items.max_points": "max_points",
    "items.n": "n",
    "items.p": "p",
    "items.sd": "sd",
    "items.r_pb": "r_pb (rest)",
    "items.r_pb_total": "r_pb_total",
    "items.r_bis": "r_bis",
    "items.d_upper_lower": "d_upper_lower",
    "items.alpha_if_deleted": "alpha_if_deleted",
    "items.omitted": "omitted",
    "items.trial_n": "trial for (examinees)",
    "items.flags": "flags",
    "note.empty": "Empty cells are undefined statistics (e.g. zero variance), not zeros.",
    "note.p": "p = mean score / max points; r_pb (rest) = correlation with the total without the item.",
    "note.d": "D: top minus bottom 27% by total; examinees tied at a cut share the places equally.",
    "note.reliability": "Reliability uses examinees with a score on every item; negative alpha is kept.",
    "note.testlet": "Passages: " + TESTLET_NOTE + ".",
    "note.sets": "A set's score sums its children, for examinees with every child; r_rest (set): with the total"
    " without the set.",
    "note.trial": "Trial questions: " + TRIAL_NOTE + ".",
    "note.flag": "{flag}: {text} ({rule})",
    **{f"flag.{code}": text for code, text in FLAG_TEXT.items()},
    "rule.possible_miskey": "a distractor's r_pb rest above {miskey_min_r:g} and the key's",
    "rule.negative_discrimination": "r_pb rest below {negative_discrimination:g}",
    "rule.low_discrimination": "r_pb rest below {low_discrimination:g}",
    "rule.too_easy": "p above {too_easy:g}",
    "rule.too_hard": "p below {too_hard:g}",
    "rule.nonfunctioning_distractor": "chosen by under {nonfunctioning_distractor:.0%}",
}


# Words the board pages already say: the same catalog texts in the workbook.
_CATALOG_KEYS = {
    "items.max_points": "board.max_points",
    "items.sd": "board.sd",
    **{f"items.{key}": f"stat.{key}" for key in _ITEM_COLUMNS if key not in ("max_points", "sd")},
    **{f"flag.{code}": f"flag.{code}" for code in FLAG_TEXT},
    "sheet.sets": "board.sets_h",
    "sets.id": "board.set",
    "sets.items": "board.set_items",
    "sets.children": "board.set_children",
    "sets.max_points": "board.max_points",
    "sets.mean": "board.mean",
    "sets.p": "stat.p",
    "sets.sd": "board.sd",
    "sets.r_rest": "board.set_r_rest",
    "sets.alpha": "board.set_alpha",
    "sets.n": "stat.n",
    "sets.n_partial": "board.set_n_partial",
    "sets.trial_n": "board.trial_n",
    "items.trial_n": "board.trial_n",
    "summary.testlet_alpha": "board.testlet_alpha",
    "summary.testlet_sem": "board.testlet_sem",
    "summary.trial_items": "board.trial_items",
    "note.testlet": "board.testlet_note",
    "note.sets": "board.sets_note",
    "note.trial": "board.trial_note",
}


def catalog_words(t) -> dict:
    """XLSX_WORDS from the catalogs, with t a cbt.platform.i18n translator (the reader's language)."""
    return {key: t(_CATALOG_KEYS.get(key, "report." + key)) for key in XLSX_WORDS}


def _flag_rules(report: dict, words: dict | None = None) -> dict[str, str]:
    thresholds = dataclasses.asdict(ctt.FlagThresholds(**report.get("flag_thresholds", {})))
    words = words or XLSX_WORDS
    return {code: words[f"rule.{code}"].format(**thresholds) for code in FLAG_TEXT}


def render_html(report: dict, traces: dict | None = None, title: str = "responses") -> str:
    """One self-contained HTML page for the report.

    traces: item id -> the "trace" dict analyze_matrix adds with traces=True
    (option trace lines / observed item curves); without it those charts
    are left out.
    """
    traces = traces or {}
    irt_items = {it["id"]: it for it in report.get("irt", {}).get("items", [])}
    charts = []
    for it in report["items"]:
        tr = traces.get(it["id"])
        chart = {"trace": None, "icc": None}
        if tr is not None:
            chart["trace"] = option_trace_svg(it, tr) if "options" in tr else score_trace_svg(it, tr)
        if it["id"] in irt_items:
            chart["icc"] = icc_svg([irt_items[it["id"]]], f"item characteristic curve of {it['id']}")
        charts.append(chart)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    rules = _flag_rules(report)
    return env.from_string(_TEMPLATE).render(
        r=report,
        title=title,
        fmt=fmt,
        summary_rows=_summary_rows(report),
        testlet_note=TESTLET_NOTE[0].upper() + TESTLET_NOTE[1:] + ".",
        trial_note=TRIAL_NOTE + ".",
        histogram=histogram_svg(report["test"]["score_histogram"]),
        icc_all=icc_svg(report["irt"]["items"], "item characteristic curves") if "irt" in report else None,
        charts=charts,
        flag_text=FLAG_TEXT,
        flag_rules=rules,
    )


# -- xlsx ------------------------------------------------------------------------------------


def write_xlsx(
    report: dict,
    out: IO[bytes] | str,
    head: SignedHead | None = None,
    words: dict | None = None,
    head_words: dict | None = None,
) -> None:
    """The report as a workbook: Summary, Items, Sets (with item sets),
    Options, IRT, Abilities, DIF, Notes; and Audit, the exam's signed chain
    head, when given (cbt.heads).

    words: XLSX_WORDS in the reader's language. With them the Items sheet's
    flags column says each flag in words; in English (the default) it keeps
    the flags' codes, as the JSON report has them. head_words: the Audit
    sheet's labels (cbt.heads.row_words)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    w = XLSX_WORDS if not words else {**XLSX_WORDS, **words}
    flag_words = {code: w[f"flag.{code}"] for code in FLAG_TEXT} if words else {code: code for code in FLAG_TEXT}

    bold = Font(bold=True)
    flagged = PatternFill("solid", fgColor="FFF3CD")
    wb = Workbook()

    def sheet(title: str, header: list[str], rows: list[list], highlight=None):
        ws = wb.create_sheet(title)
        ws.append(header)
        for cell in ws[1]:
            cell.font = bold
        for i, row in enumerate(rows):
            ws.append(row)
            if highlight is not None and highlight(i):
                for cell in ws[ws.max_row]:
                    cell.fill = flagged
        ws.freeze_panes = "B2"
        for col, name in zip(ws.columns, header, strict=False):
            ws.column_dimensions[col[0].column_letter].width = max(10, min(40, len(name) + 2))
        return ws

    ws = wb.active
    ws.title = w["sheet.summary"]
    t = report["test"]
    rows = [
        [w["summary.examinees"], report["examinees"]],
        [w["summary.items"], report["items_count"]],
        [w["summary.omit_policy"], w.get(f"omit.{report['omit_policy']}", report["omit_policy"])],
    ]
    rows += [[w[f"summary.{key}"], t[key]] for _, key in _summary_rows(report)]
    rows += [[w["summary.reliability_n"], t["reliability_n"]]]
    if "testlet_units" in t:
        rows += [[w["summary.testlet_units"], t["testlet_units"]]]
    if report.get("trial_items"):
        rows += [[w["summary.trial_items"], report["trial_items"]]]
    for row in rows:
        ws.append(row)
    ws.column_dimensions["A"].width = 38
    ws.append([])
    ws.append([w["summary.score_from"], w["summary.score_to"], w["summary.score_examinees"]])
    for b in t["score_histogram"]:
        ws.append([b["low"], b["high"], b["count"]])

    items = report["items"]
    # A trial column only when there are trial questions: other reports keep their columns.
    trials = bool(report.get("trial_items"))
    columns = [*_ITEM_COLUMNS[:-1], *(("trial_n",) if trials else ()), _ITEM_COLUMNS[-1]]
    sheet(
        w["sheet.items"],
        [w[f"items.{key}"] for key in columns],
        [
            [", ".join(flag_words.get(f, f) for f in it["flags"]) if key == "flags" else it.get(key) for key in columns]
            for it in items
        ],
        highlight=lambda i: bool(items[i]["flags"]),
    )
    if report.get("sets"):
        sets = report["sets"]
        set_columns = [*_SET_COLUMNS, *(("trial_n",) if any("trial_n" in st for st in sets) else ())]
        sheet(
            w["sheet.sets"],
            [w[f"sets.{c}"] for c in set_columns],
            [[", ".join(st[c]) if c == "items" else st.get(c) for c in set_columns] for st in sets],
        )
    if any("options" in it for it in items):
        opt_rows = [
            [it["id"], o["option"], o["is_key"], o["count"], o["proportion"], o["r_pb_rest"], o["mean_total"]]
            for it in items
            for o in it.get("options", [])
        ]
        sheet(
            w["sheet.options"],
            [w[f"options.{c}"] for c in _OPTION_COLUMNS],
            opt_rows,
            highlight=lambda i: bool(opt_rows[i][2]),
        )
    if "irt" in report:
        r = report["irt"]
        ws = sheet(
            w["sheet.irt"],
            [w[f"irt.{c}"] for c in _IRT_COLUMNS],
            [[it["id"], it["a"], it["se_a"], it["b"], it["se_b"]] for it in r["items"]],
        )
        ws.append([])
        for name in _IRT_FIT:
            ws.append([w[f"irt.{name}"], r[name]])
        sheet(
            w["sheet.abilities"],
            [w[f"abilities.{c}"] for c in _ABILITY_COLUMNS],
            [[a["id"], a["eap"], a["se"]] for a in r["abilities"]],
        )
    if "dif" in report:
        d = report["dif"]
        sheet(
            w["sheet.dif"],
            [w[f"dif.{c}"] for c in _DIF_COLUMNS],
            [
                [x["id"], x["mh_alpha"], x["mh_d_dif"], x["se_d_dif"], x["chi2"], x["p_value"], x["ets_class"]]
                for x in d
            ],
            highlight=lambda i: d[i]["ets_class"] in ("B", "C"),
        )
    notes = wb.create_sheet(w["sheet.notes"])
    for line in [
        w["note.empty"],
        w["note.p"],
        w["note.d"],
        w["note.reliability"],
        *([w["note.testlet"]] if "testlet_units" in t else []),
        *([w["note.sets"]] if report.get("sets") else []),
        *([w["note.trial"]] if report.get("trial_items") else []),
        *[w["note.flag"].format(flag=k, text=w[f"flag.{k}"], rule=v) for k, v in _flag_rules(report, w).items()],
    ]:
        notes.append([line])
    notes.column_dimensions["A"].width = 110
    if head is not None:
        head.add_sheet(wb, w["sheet.audit"], head_words)
    wb.save(out)
