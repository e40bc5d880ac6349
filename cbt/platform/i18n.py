"""UI strings in Vietnamese (the default) and English.

Templates never hold UI text: they call `t("key")`, and the catalogs in
web/i18n/{vi,en}.json hold the words. A key missing from English falls back
to Vietnamese; a key missing from Vietnamese is a bug the tests catch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANG_COOKIE = "cbt_lang"


@dataclass
class Catalogs:
    root: Path
    _loaded: dict[str, dict[str, str]] = field(default_factory=dict)

    def catalog(self, lang: str) -> dict[str, str]:
        # Loaded on first use, not in create_app, which does no I/O.
        if lang not in self._loaded:
            path = self.root / f"{lang}.json"
            self._loaded[lang] = json.loads(path.read_text(encoding="utf-8"))
        return self._loaded[lang]

    def lookup(self, lang: str, key: str) -> str | None:
        text = self.catalog(lang).get(key)
        return text if text is not None else self.catalog(DEFAULT_LANGUAGE).get(key)

    def translate(self, lang: str, key: str, **values) -> str:
        text = self.catalog(lang).get(key)
        if text is None:
            text = self.catalog(DEFAULT_LANGUAGE).get(key, key)
        return text.format(**values) if values else text

    def error_message(self, lang: str, code: str, fallback: str, details: dict | None = None) -> str:
        """A UserError's message in lang: the catalog's "error.<code>" formatted
        with the error's details. An empty entry means the raised (English)
        message, which names the specifics; so does a text whose placeholders
        the details cannot fill (tests/platform/test_i18n.py sees that none is)."""
        text = self.lookup(lang, "error." + code)
        if not text:
            return fallback
        try:
            return text.format(**(details or {}))
        except (KeyError, IndexError):
            return fallback

    def field_problem(self, lang: str, problem) -> str:
        """A form field's problem in lang: "item_problem.<code>" formatted with its
        values; the problem's own (English) line where the catalog has no text."""
        code = getattr(problem, "code", "")
        text = self.lookup(lang, "item_problem." + code) if code else None
        if not text:
            return str(problem)
        try:
            text = text.format(**getattr(problem, "params", {}))
        except (KeyError, IndexError):
            return str(problem)
        where = getattr(problem, "where", "")
        return f"{where}: {text}" if where else text

    def translator(self, lang: str):
        def t(key: str, **values) -> str:
            return self.translate(lang, key, **values)

        return t


def request_language(cookie_value: str | None) -> str:
    """Vietnamese unless the reader chose English.

    The browser's Accept-Language is deliberately ignored: lab computers in
    Vietnamese schools often run an English-language Windows, and their
    students and proctors still expect Vietnamese.
    """
    return cookie_value if cookie_value in LANGUAGES else DEFAULT_LANGUAGE
