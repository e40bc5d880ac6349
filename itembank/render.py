"""Item text (Markdown with $math$) -> HTML that is safe to put in an exam page.

Math is turned into MathML here, on the server, so exam labs need no math
JavaScript and the page shows the same thing in every browser. All HTML,
whether the author wrote it or Markdown produced it, then goes through an
allow-list sanitiser (nh3): no scripts, no event handlers, no styles, no
URLs except files of the release's own ``media/`` folder. Everything that
was taken out is reported, so that ``cbt bank validate`` can tell the
author before students ever see the item.
"""

from __future__ import annotations

import functools
import html
import re
import secrets
import xml.etree.ElementTree
import xml.sax.saxutils
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

import latex2mathml.converter
import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from itembank.model import Item, ItemSet

MediaUrl = Callable[[str], str]
"""Turns a release path such as ``media/graph.png`` into the URL the page uses."""

# A media path: under media/, plain ASCII names, no "." or ".." segments.
_MEDIA_PATH = re.compile(r"media(/(?!\.\.?(/|$))[A-Za-z0-9._-]+)+")
_UNKNOWN_COMMAND = re.compile(r"<m[io][^>]*>(\\[A-Za-z]+)</m[io]>")
# Marks where a formula goes: private-use characters around a per-process
# nonce and an index. Authors cannot produce it by chance, and if one did,
# it would only place one of their own sanitised formulas.
_MARK = f"\ue000{secrets.token_hex(6)}\ue001"
_PLACEHOLDER = re.compile(re.escape(_MARK) + r"([0-9]+)" + re.escape(_MARK))

HTML_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd",
    "del", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "s", "small",
    "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr",
    "u", "ul",
}  # fmt: skip
# Everything latex2mathml produces, plus the few other presentation elements.
MATHML_TAGS = {
    "math", "mi", "mn", "mo", "ms", "mtext", "mspace", "mrow", "mfrac", "msqrt", "mroot",
    "mstyle", "merror", "mpadded", "mphantom", "menclose", "msub", "msup", "msubsup",
    "munder", "mover", "munderover", "mmultiscripts", "mprescripts", "none", "mtable",
    "mtr", "mtd", "semantics", "annotation",
}  # fmt: skip
MATHML_ATTRIBUTES = {
    "display", "xmlns", "mathvariant", "mathsize", "mathcolor", "mathbackground",
    "stretchy", "fence", "separator", "form", "lspace", "rspace", "largeop",
    "movablelimits", "accent", "accentunder", "minsize", "maxsize", "symmetric", "width",
    "height", "depth", "voffset", "linethickness", "columnalign", "columnlines",
    "columnspacing", "columnspan", "rowalign", "rowlines", "rowspacing", "rowspan",
    "frame", "framespacing", "displaystyle", "scriptlevel", "notation", "encoding",
}  # fmt: skip
ATTRIBUTES: dict[str, set[str]] = {
    "img": {"src", "alt", "title", "width", "height"},
    "a": {"href", "title"},
    "ol": {"start"},
    # Markdown tables align columns with style="text-align: ..."; only that
    # property survives (see filter_style_properties below).
    "td": {"colspan", "rowspan", "style"},
    "th": {"colspan", "rowspan", "style"},
    **{tag: MATHML_ATTRIBUTES for tag in MATHML_TAGS},
}
# Removed together with everything inside them.
DROPPED_WITH_CONTENT = {
    "script", "style", "iframe", "object", "embed", "noscript", "template", "textarea",
    "select", "svg", "title",
}  # fmt: skip
URL_ATTRIBUTES = {"src", "href"}


@dataclass(frozen=True)
class Rendered:
    html: str
    removed: tuple[str, ...] = ()  # what the sanitiser took out, and how to fix it
    math_errors: tuple[str, ...] = ()  # formulas that could not be read
    media: tuple[str, ...] = ()  # media paths the text refers to


@dataclass(frozen=True)
class RenderedItem:
    """An item's texts as safe HTML. Never contains the key."""

    stem: Rendered
    options: tuple[tuple[str, Rendered], ...]  # (option id, text)
    statements: tuple[tuple[str, Rendered], ...]  # (statement id, text)
    explanation: Rendered | None

    def all_parts(self) -> list[tuple[str, Rendered]]:
        """(field name, rendered text) for every part, e.g. ("options.B", ...)."""
        parts = [("stem", self.stem)]
        parts += [(f"options.{i}", r) for i, r in self.options]
        parts += [(f"statements.{i}", r) for i, r in self.statements]
        if self.explanation is not None:
            parts.append(("explanation", self.explanation))
        return parts


def is_media_path(path: str) -> bool:
    """True for a path inside the release's media folder, e.g. ``media/fig-1.png``."""
    return _MEDIA_PATH.fullmatch(path) is not None


def render_markdown(text: str, media_url: MediaUrl | None = None, *, inline: bool = False) -> Rendered:
    """Markdown with ``$...$`` and ``$$...$$`` math -> sanitised HTML.

    `media_url` maps ``media/x.png`` to the URL the page should load; by
    default the relative path is kept. With `inline`, no ``<p>`` is wrapped
    around the text (for options, which sit inside a ``<label>``).
    """
    env: dict[str, list] = {"math": [], "math_errors": []}
    if inline:
        tokens = _MD.parseInline(text, env)
    else:
        tokens = _MD.parse(text, env)
        for token in tokens:
            if token.type == "fence":
                token.info = ""  # else markdown-it adds class="language-..."
    # Formulas come out of the renderer as placeholders: each one is turned
    # into MathML and sanitised once (and cached), instead of pushing large
    # MathML through the whole-page sanitiser again for every text.
    raw_html = _MD.renderer.render(tokens, _MD.options, env)
    safe, removed, media = _sanitise(raw_html, media_url)
    formulas: list[_Formula] = env["math"]
    for formula in formulas:
        removed += formula.removed
    if formulas:
        safe = _PLACEHOLDER.sub(lambda m: formulas[int(m.group(1))].mathml, safe)
    return Rendered(safe, tuple(removed), tuple(env["math_errors"]), tuple(media))


def render_item(item: Item, media_url: MediaUrl | None = None) -> RenderedItem:
    """Every text of an item, rendered. The explanation is included for
    review pages; exam pages must not show it."""
    return RenderedItem(
        stem=render_markdown(item.stem, media_url),
        options=tuple((o.id, render_markdown(o.text, media_url, inline=True)) for o in item.options),
        statements=tuple((s.id, render_markdown(s.text, media_url, inline=True)) for s in item.statements),
        explanation=(render_markdown(item.explanation, media_url) if item.explanation is not None else None),
    )


@dataclass(frozen=True)
class RenderedSet:
    """A set's own text as safe HTML; its children are rendered as items (`render_item`)."""

    stimulus: Rendered

    def all_parts(self) -> list[tuple[str, Rendered]]:
        return [("stimulus", self.stimulus)]


def render_set(item_set: ItemSet, media_url: MediaUrl | None = None) -> RenderedSet:
    """A set's stimulus, rendered as a stem is (Markdown, math, media)."""
    return RenderedSet(stimulus=render_markdown(item_set.stimulus, media_url))


def math_to_mathml(latex: str, *, display: bool = False) -> str:
    """One formula as sanitised MathML; raises ValueError with a readable reason."""
    formula = _formula(latex, display)
    if formula.error:
        raise ValueError(formula.error)
    return formula.mathml


# ---------------------------------------------------------------- math in Markdown


@dataclass(frozen=True)
class _Formula:
    mathml: str  # sanitised; empty if the formula could not be read
    error: str | None
    removed: tuple[str, ...]


@functools.lru_cache(maxsize=16384)  # the same formulas recur across items and forms
def _formula(latex: str, display: bool) -> _Formula:
    mathml, error = _convert(latex, display)
    if not mathml:
        return _Formula("", error, ())
    # latex2mathml passes \href, \style and \class through as attributes:
    # formulas are sanitised like any other HTML. Explaining what was removed
    # takes a slow Python parse, needed only if something unusual is there.
    if _MATHML_TAG.fullmatch(mathml):
        return _Formula(_CLEANER.clean(mathml), error, ())
    safe, removed, _ = _sanitise(mathml, None)
    return _Formula(safe, error, tuple(removed))


def _convert(latex: str, display: bool) -> tuple[str, str | None]:
    try:
        tree = latex2mathml.converter.convert_to_element(latex, display="block" if display else "inline")
        _typeset_signs(tree)
        # Serialised as latex2mathml.converter.convert does.
        mathml = xml.sax.saxutils.unescape(xml.etree.ElementTree.tostring(tree, encoding="unicode"))
    except Exception as e:  # latex2mathml raises many exception types for bad input
        # Their messages are often empty; the class name says it well enough:
        # MissingSuperScriptOrSubscriptError -> "missing super script or subscript".
        reason = str(e) or re.sub(r"(?<!^)(?=[A-Z])", " ", type(e).__name__).lower()
        reason = reason.removesuffix(" error")
        return "", f"cannot read ${latex}$ ({reason}): check braces and commands"
    unknown = _UNKNOWN_COMMAND.search(mathml)
    if unknown:
        return mathml, f"unknown command {unknown.group(1)} in ${latex}$: check its spelling"
    return mathml, None


# Containers whose children are read as one row of symbols, left to right.
_ROWS = {"math", "mrow", "mstyle", "msqrt", "mtd", "mpadded", "mphantom", "menclose"}
# Signs that are unary where nothing stands to their left to operate on.
_SIGNS = {"\u2212", "+", "\u00b1", "\u2213"}
# Operators after which a sign is binary: closings, and postfixes such as 5!.
_AFTER_OPERAND = {")", "]", "}", "\u27e9", "!", "\u2032", "\u2033", "%"}
_BARS = {"|", "\u2016"}
# Function names latex2mathml writes as <mi>: "\\sin -x" is the sine of -x.
_FUNCTIONS = {"sin", "cos", "tan", "tg", "cot", "cotg", "log", "ln", "lg", "exp", "arcsin", "arccos", "arctan"}


def _typeset_signs(tree) -> None:
    """Mark what latex2mathml leaves for the browser to guess, so a lab screen
    shows (−∞; 2) rather than ( − ∞ ;2). A browser spaces an <mo>
    in the middle of a row as a binary operator: a minus after "(" or "=" is
    unary (form="prefix", no space). latex2mathml writes \\infty as an <mo>
    (spaced like an unknown operator), ";" as an <mi> (no space after it) and
    \\pm as an <mi>: the first is a symbol, the second a separator, as in
    Vietnamese intervals, the third a sign like the others."""
    for node in tree.iter():
        if node.tag == "mo" and _text(node) == "\u221e":
            node.tag = "mi"
        elif node.tag == "mi" and _text(node) == ";":
            node.tag = "mo"
            node.set("separator", "true")
        elif node.tag == "mi" and _text(node) in ("\u00b1", "\u2213"):
            node.tag = "mo"  # written as <mi>, so a \\pm b was not spaced as a binary sign
    for row in tree.iter():
        if row.tag not in _ROWS:
            continue
        before = None
        bars = 0  # bars so far in the row: an odd count means the last one opened
        for node in row:
            if node.tag == "mo" and _text(node) in _SIGNS and "form" not in node.attrib and _unary_after(before, bars):
                node.set("form", "prefix")
            if node.tag == "mo" and _text(node) in _BARS:
                bars += 1
            before = node


def _unary_after(before, bars: int) -> bool:
    if before is None:
        return True
    if before.tag == "mo":
        if _text(before) in _BARS:
            return bars % 2 == 1
        return _text(before) not in _AFTER_OPERAND
    return before.tag == "mi" and _text(before) in _FUNCTIONS


def _text(node) -> str:
    # latex2mathml keeps symbols as character references until it serialises.
    return html.unescape(node.text or "")


def _find_closing(src: str, pos: int, end: int, delimiter: str) -> int:
    while pos < end:
        if src[pos] == "\\":
            pos += 2
        elif src.startswith(delimiter, pos):
            return pos
        else:
            pos += 1
    return -1


def _math_rule(state: StateInline, silent: bool) -> bool:
    """``$$...$$`` (display) and ``$...$`` (inline) math.

    As in Pandoc, an inline ``$`` opens only before a non-space and closes
    only after a non-space and before a non-digit, so "giá 5$ và 6$" stays text.
    """
    src, start, end = state.src, state.pos, state.posMax
    if src[start] != "$":
        return False
    if src.startswith("$$", start):
        close = _find_closing(src, start + 2, end, "$$")
        if close < 0 or not src[start + 2 : close].strip():
            return False
        kind, content, after = "math_display", src[start + 2 : close], close + 2
    else:
        if start + 1 >= end or src[start + 1].isspace():
            return False
        close = _find_closing(src, start + 1, end, "$")
        if close < 0 or src[close - 1].isspace():
            return False
        if close + 1 < end and src[close + 1].isdigit():
            return False
        kind, content, after = "math_inline", src[start + 1 : close], close + 1
    if not silent:
        token = state.push(kind, "math", 0)
        token.content = content
    state.pos = after
    return True


def _render_math(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    formula = _formula(token.content, token.type == "math_display")
    if formula.error:
        env["math_errors"].append(formula.error)
    if not formula.mathml:
        # Show the source so the page still says something sensible.
        return f"<code>{html.escape(token.content)}</code>"
    env["math"].append(formula)
    return f"{_MARK}{len(env['math']) - 1}{_MARK}"


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    md.inline.ruler.before("escape", "math", _math_rule)
    md.add_render_rule("math_inline", _render_math)
    md.add_render_rule("math_display", _render_math)
    # Let every link through to the sanitiser, which removes *and reports*
    # the unsafe ones (markdown-it would silently print javascript: links as text).
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


_MD = _markdown()


# ---------------------------------------------------------------- sanitising


def _sanitise(raw_html: str, media_url: MediaUrl | None) -> tuple[str, list[str], list[str]]:
    """(safe HTML, what was removed, media paths referred to)."""
    scan = _Scanner()
    scan.feed(raw_html)
    scan.close()
    safe = _CLEANER.clean(raw_html)
    if media_url is not None:
        # After cleaning, the only URLs left are media paths, inside <img> or <a>.
        safe = _TAG_WITH_URL.sub(lambda tag: _URL_ATTRIBUTE.sub(lambda a: _rewrite(a, media_url), tag[0]), safe)
    return safe, scan.removed, scan.media


def _keep_media_urls(tag: str, attribute: str, value: str) -> str | None:
    """nh3 calls this for every allowed attribute; URLs survive only as media paths."""
    if attribute in URL_ATTRIBUTES and not is_media_path(value):
        return None
    return value


def _rewrite(attribute: re.Match[str], media_url: MediaUrl) -> str:
    url = media_url(html.unescape(attribute[2]))
    return f'{attribute[1]}="{html.escape(url, quote=True)}"'


# Built once: the module-level nh3.clean() converts all its options on every call.
_CLEANER = nh3.Cleaner(
    tags=HTML_TAGS | MATHML_TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes=ATTRIBUTES,
    attribute_filter=_keep_media_urls,
    url_schemes=set(),  # no absolute URL of any scheme survives
    link_rel=None,
    filter_style_properties={"text-align"},
    strip_comments=True,
)
# MathML made only of allowed elements and attributes with plain values.
_MATHML_TAG = re.compile(
    r"(?:[^<]+|</?(?:{tags})(?:\s(?:{attributes})=\"[^\"<>&]*\")*\s?/?>)*".format(
        tags="|".join(sorted(MATHML_TAGS, key=len, reverse=True)),
        attributes="|".join(sorted(MATHML_ATTRIBUTES, key=len, reverse=True)),
    )
)
_TAG_WITH_URL = re.compile(r"<(?:img|a)\s[^>]*>")
_URL_ATTRIBUTE = re.compile(r'\b(src|href)="([^"]*)"')


class _Scanner(HTMLParser):
    """Lists what the sanitiser will remove, with the same allow-list as nh3.

    nh3 does the actual cleaning; this pass only explains it to the author.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.removed: list[str] = []
        self.media: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.removed.append(f"<{tag}> element: {tag} elements are not allowed in items")
            return
        if tag not in HTML_TAGS and tag not in MATHML_TAGS:
            self.removed.append(f"<{tag}> tag (its text is kept): use Markdown instead")
            return
        allowed = ATTRIBUTES.get(tag, set())
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.removed.append(f"event handler {name}= on <{tag}>: scripts are not allowed")
            elif name not in allowed:
                self.removed.append(f"attribute {name}= on <{tag}>: remove it")
            elif name in URL_ATTRIBUTES:
                self._url(tag, name, value)

    handle_startendtag = handle_starttag

    def _url(self, tag: str, attribute: str, value: str) -> None:
        if is_media_path(value):
            self.media.append(value)
        elif tag == "img":
            self.removed.append(
                f"image '{value}' from outside the release: copy the file into media/"
                " and write ![description](media/NAME.png)"
            )
        else:
            self.removed.append(f"link to '{value}': items may only link to files in media/; remove the link")
