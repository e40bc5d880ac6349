"""Vietnamese first, English on request; no UI text outside the catalogs."""

import json
import re

from conftest import REPO, login

from cbt.i18n import request_language

TEMPLATES = REPO / "web" / "templates"
CATALOGS = {lang: json.loads((REPO / "web" / "i18n" / f"{lang}.json").read_text("utf-8"))
            for lang in ("vi", "en")}


def test_catalogs_have_the_same_keys():
    assert set(CATALOGS["vi"]) == set(CATALOGS["en"])


def test_every_key_used_in_templates_exists():
    used = set()
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text("utf-8")
        used |= set(re.findall(r"""(?<![\w.])t\(["']([a-z0-9_.]*[a-z0-9_])["']""", text))
        # Dynamic keys ("role." ~ x) are checked by prefix below.
        for prefix in re.findall(r"""(?<![\w.])t\(["']([a-z0-9_.]+\.)["'] ~""", text):
            assert any(k.startswith(prefix) for k in CATALOGS["vi"]), prefix
    missing = {k for k in used if k not in CATALOGS["vi"]}
    assert not missing, f"keys used in templates but missing from vi.json: {sorted(missing)}"
    assert len(used) > 30


def test_templates_hold_no_bare_text():
    """Text between tags must come from t(...): strip tags and expressions and
    see that no letters remain."""
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text("utf-8")
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", text, flags=re.S)
        text = re.sub(r"<[^>]*>", "", text, flags=re.S)
        leftovers = [w for w in re.findall(r"[^\W\d_]{2,}", text) if w not in ("cbt",)]
        assert not leftovers, f"{path.name}: bare UI text {leftovers[:5]}"


async def test_vietnamese_is_the_default(client):
    html = await (await client.get("/login")).text()
    assert '<html lang="vi">' in html
    assert "Đăng nhập cán bộ" in html


async def test_switch_to_english_and_back(client, staff):
    resp = await client.get("/lang/en?next=/login", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    html = await (await client.get("/login")).text()
    assert '<html lang="en">' in html and "Staff sign-in" in html
    await login(client, "teacher")
    html = await (await client.get("/staff")).text()
    assert "Hello, teacher" in html and "Role: Teacher" in html
    await client.get("/lang/vi")
    html = await (await client.get("/staff")).text()
    assert "Xin chào, teacher" in html


async def test_language_switch_refuses_unknown_language_and_foreign_redirects(client):
    assert (await client.get("/lang/fr")).status == 404
    resp = await client.get("/lang/en?next=https://evil.example/", allow_redirects=False)
    assert resp.headers["Location"] == "/"


async def test_error_pages_speak_english_after_the_switch(client):
    await client.get("/lang/en")
    html = await (await client.get("/nowhere")).text()
    assert "Page not found" in html


def test_language_is_vietnamese_unless_chosen():
    assert request_language(None) == "vi"
    assert request_language("en") == "en"
    assert request_language("xx") == "vi"


async def test_english_browser_still_gets_vietnamese(client):
    html = await (await client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})).text()
    assert '<html lang="vi">' in html
