"""Finding the web assets and rendering pages in the one base layout."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import jinja2
from aiohttp import web
from markupsafe import Markup

from cbt import times
from cbt.numbers import DECIMAL_MARK, fmt, local_number
from cbt.platform import appkeys
from cbt.platform.i18n import LANG_COOKIE, request_language


def web_root() -> Path:
    """The web/ folder: cbt.web when installed, ./web beside the package in a checkout."""
    try:
        root = Path(str(importlib.resources.files("cbt.web")))
        if (root / "templates").is_dir():
            return root
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "web"


def make_jinja(root: Path) -> jinja2.Environment:
    # FileSystemLoader reads templates lazily, so this does no I/O.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def language(request: web.Request) -> str:
    """The reader's language (the cbt_lang cookie), read when first needed: most
    API calls never need it, and parsing cookies was a few percent of a busy worker."""
    lang = request.get(appkeys.LANG)
    if lang is None:
        lang = request[appkeys.LANG] = request_language(request.cookies.get(LANG_COOKIE))
    return lang


def error_text(request: web.Request, error) -> str:
    """A UserError's message in the reader's language, for a handler that shows it inside its page."""
    return request.app[appkeys.CATALOGS].error_message(language(request), error.code, error.message, error.details)


def render(request: web.Request, template: str, context: dict | None = None, *, status: int = 200) -> web.Response:
    app = request.app
    lang = language(request)
    catalogs = app[appkeys.CATALOGS]
    default_zone = app[appkeys.SETTINGS].time_zone
    ctx = {
        "t": catalogs.translator(lang),
        # A UserError shown inside a page (not as the error page) speaks the reader's language too.
        "error_text": lambda e: catalogs.error_message(lang, e.code, e.message, e.details),
        # An item field's problem (cbt.authoring.FieldProblem), likewise.
        "problem_text": lambda p: catalogs.field_problem(lang, p),
        "lang": lang,
        "user": request.get(appkeys.USER),
        "csrf_token": request.get(appkeys.CSRF_TOKEN, ""),
        # Every form that changes something carries the token: {{ csrf_field() }}.
        "csrf_field": lambda: Markup('<input type="hidden" name="csrf_token" value="{}">').format(
            request.get(appkeys.CSRF_TOKEN, "")
        ),
        "path": request.path_qs,
        "url": lambda name, **parts: str(app.router[name].url_for(**parts)),
        "num": lambda value: local_number(value, lang),
        "fmt": fmt,  # a statistic: num(fmt(x)) in the reader's decimal mark
        "decimal_mark": DECIMAL_MARK.get(lang, "."),  # for a page's script that writes numbers
        # Every time on a page: when(t) in the server's zone, when(t, exam.time_zone) in an exam's (None: the
        # server's), when(t, zone, seconds=True) to the second.
        "when": lambda value, zone=None, seconds=False: times.html(value, zone or default_zone, lang, seconds=seconds),
        # The same as text, for a time inside a sentence of the catalog.
        "when_text": lambda value, zone=None, seconds=False: times.text(
            value, zone or default_zone, lang, seconds=seconds
        ),
        "time_zone": default_zone,
    }
    if context:
        ctx.update(context)
    html = app[appkeys.JINJA].get_template(template).render(ctx)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
