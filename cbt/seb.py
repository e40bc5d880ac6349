"""Safe Exam Browser (SEB): request-hash checks, Config Keys and `.seb` files.

Pure functions; the caller (delivery) owns the database, the nonces and the
responses. Sources, checked against this code:

- SafeExamBrowser-Website ``developer/seb-config-key.html`` ("Config Key"):
  the headers, the hash over "absolute URL without fragment" + key, the SEB
  JavaScript API (``SafeExamBrowser.security.configKey`` / ``.browserExamKey``,
  "the BEK and CK hashed with the URL of the page") and the SEB-JSON rules.
- Moodle ``mod/quiz/accessrule/seb/classes/config_key.php`` and
  ``property_list.php`` (the reference server-side implementation) and their
  tests ``tests/config_key_test.php`` / ``tests/property_list_test.php``.

Request hashes
--------------
SEB sends, on every request, ``X-SafeExamBrowser-ConfigKeyHash`` =
SHA-256(url + config_key) and ``X-SafeExamBrowser-RequestHash`` =
SHA-256(url + browser_exam_key), lowercase hex, where ``url`` is the absolute
URL the browser requested, without ``#fragment``, URL first. The hash binds
the key to the exact URL: ``http`` vs ``https``, another host name, a
trailing slash or another query string all give a different hash. So the
server must rebuild the URL from the configured public URL
(``CBT_PUBLIC_URL``), never from the Host header (wrong behind a proxy and
forgeable), with the path and query exactly as sent (``request.raw_path``).
When a check fails, :func:`diagnose` says which near-miss URL the client
actually hashed (scheme, trailing slash, missing query), for the log.

JavaScript API (SEB versions that do not send headers)
------------------------------------------------------
The page reads ``SafeExamBrowser.security.configKey`` / ``.browserExamKey``
(the same hashes, over the page URL) and posts them back. A fixed page URL
would let a hash captured once be replayed forever, so the page is served at
a URL carrying a single-use server nonce (``?seb_nonce=...``, see
:func:`new_nonce`, :func:`with_nonce`). The server must:

1. on serving the page, create a nonce, store (nonce, attempt, page path
   with the nonce, issued_at) and put the URL with the nonce in the page;
2. on the POST, look the nonce up for this attempt, delete it (single use,
   whether the check passes or not), refuse it if older than
   :data:`NONCE_TTL_SECONDS`, rebuild the page URL from the public URL and
   the *stored* path (not a URL the client reports), and call
   :func:`check_js_keys`.

Expired rows can be purged by any periodic job (``issued_at < now() - TTL``).

Config Key
----------
SHA-256 (lowercase hex) over the "SEB-JSON" of the settings, see
:func:`seb_json`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import plistlib
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cbt.platform.errors import Problem

MIME_TYPE = "application/seb"
CONFIG_KEY_HEADER = "X-SafeExamBrowser-ConfigKeyHash"
REQUEST_HASH_HEADER = "X-SafeExamBrowser-RequestHash"
NONCE_PARAM = "seb_nonce"
NONCE_TTL_SECONDS = 300
TRUNCATE = 16  # hex chars of a hash kept in logs: enough to compare, useless to replay

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------- request hashes


def _strip_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def request_hash(url: str, key_hex: str) -> str:
    """Lowercase hex SHA-256 of UTF-8(url without #fragment + key): URL first, then key."""
    return hashlib.sha256((_strip_fragment(url) + key_hex).encode("utf-8")).hexdigest()


def absolute_url(public_url: str, path_qs: str) -> str:
    """The URL SEB hashed: the configured public URL's origin and path prefix + the request's path and query.

    ``path_qs`` is the path and query as sent (aiohttp: ``request.raw_path``,
    percent-encoding untouched). Scheme and host are lowercased and a default
    port dropped, as browsers do. A path in ``public_url`` (``https://h/cbt``)
    is the prefix a reverse proxy strips before the request reaches us.
    """
    p = urlsplit(public_url)
    scheme = p.scheme.lower()
    host = (p.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = p.port
    if port is not None and not ((scheme == "https" and port == 443) or (scheme == "http" and port == 80)):
        host = f"{host}:{port}"
    if not path_qs.startswith("/"):
        path_qs = "/" + path_qs
    return _strip_fragment(f"{scheme}://{host}{p.path.rstrip('/')}{path_qs}")


def url_from_request(request, public_url: str) -> str:
    """:func:`absolute_url` for an aiohttp-like request (uses only ``request.raw_path``)."""
    return absolute_url(public_url, request.raw_path)


def normalize_key(key: str) -> str:
    """A pasted Config Key / Browser Exam Key as 64 lowercase hex chars; ValueError otherwise."""
    k = re.sub(r"\s+", "", str(key)).lower()
    if not _HEX64.match(k):
        raise ValueError(f"not a SEB key (64 hex characters): {key!r}")
    return k


@dataclass
class SebCheck:
    ok: bool
    reason: str | None = None
    expected: dict = field(default_factory=dict)
    received: dict = field(default_factory=dict)

    def log_fields(self) -> dict:
        """Flat, JSON-able fields for a log line or an audit event."""
        return {
            "seb_ok": self.ok,
            "seb_reason": self.reason,
            "seb_expected": self.expected,
            "seb_received": self.received,
        }


def _as_bytes(s: str) -> bytes:
    return s.strip().lower().encode("utf-8", "replace")


def _matches_any(url: str, received: str | None, keys: list[str]) -> bool:
    """Constant time per key, and every key is tried (no early exit on a match)."""
    if received is None:
        return False
    got = _as_bytes(received)
    found = False
    for key in keys:
        found |= hmac.compare_digest(_as_bytes(request_hash(url, key.strip().lower())), got)
    return found


def _short(h: str | None) -> str | None:
    return None if h is None else h.strip()[:TRUNCATE]


def _check(
    url: str,
    ck_hash: str | None,
    bek_hash: str | None,
    accepted_config_keys: list[str],
    accepted_browser_exam_keys: list[str],
    missing_reason: str,
) -> SebCheck:
    ck_keys = [k for k in accepted_config_keys if k and k.strip()]
    bek_keys = [k for k in accepted_browser_exam_keys if k and k.strip()]
    ck_hash = ck_hash.strip() if ck_hash and ck_hash.strip() else None
    bek_hash = bek_hash.strip() if bek_hash and bek_hash.strip() else None
    expected = {
        "url": url,
        "config_key_hashes": [_short(request_hash(url, k.strip().lower())) for k in ck_keys],
        "browser_exam_key_hashes": [_short(request_hash(url, k.strip().lower())) for k in bek_keys],
    }
    received = {"config_key_hash": _short(ck_hash), "browser_exam_key_hash": _short(bek_hash)}
    if not ck_keys and not bek_keys:
        return SebCheck(False, "no_keys_configured", expected, received)
    if (ck_keys and ck_hash is None) or (bek_keys and bek_hash is None):
        return SebCheck(False, missing_reason, expected, received)
    ck_ok = _matches_any(url, ck_hash, ck_keys) if ck_keys else True
    bek_ok = _matches_any(url, bek_hash, bek_keys) if bek_keys else True
    if not ck_ok:
        received["hint"] = diagnose(url, ck_hash, ck_keys)
        return SebCheck(False, "config_key_mismatch", expected, received)
    if not bek_ok:
        received["hint"] = diagnose(url, bek_hash, bek_keys)
        return SebCheck(False, "browser_exam_key_mismatch", expected, received)
    return SebCheck(True, None, expected, received)


def check_headers(
    url: str,
    config_key_header: str | None,
    request_hash_header: str | None,
    accepted_config_keys: list[str],
    accepted_browser_exam_keys: list[str],
) -> SebCheck:
    """Check SEB's request headers for ``url`` (built by :func:`absolute_url`).

    Each non-empty list must be matched by its header (Config Key list by
    ``X-SafeExamBrowser-ConfigKeyHash``, Browser Exam Key list by
    ``X-SafeExamBrowser-RequestHash``); an empty list is not checked; both
    empty is refused (``no_keys_configured``). Reasons: ``missing_headers``,
    ``config_key_mismatch``, ``browser_exam_key_mismatch``.
    """
    return _check(
        url, config_key_header, request_hash_header, accepted_config_keys, accepted_browser_exam_keys, "missing_headers"
    )


def new_nonce() -> str:
    """A fresh URL-safe single-use nonce (192 bits) for the JavaScript-API path."""
    return secrets.token_urlsafe(24)


def with_nonce(url_or_path: str, nonce: str) -> str:
    """``url_or_path`` with ``seb_nonce=nonce`` set in its query (any earlier value replaced)."""
    p = urlsplit(url_or_path)
    q = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True) if k != NONCE_PARAM]
    q.append((NONCE_PARAM, nonce))
    return urlunsplit((p.scheme, p.netloc, p.path, urlencode(q), ""))


def nonce_of(url: str) -> str | None:
    """The ``seb_nonce`` in a URL's query (the last one), or None."""
    values = [v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True) if k == NONCE_PARAM]
    return values[-1] if values else None


def check_js_keys(
    page_url: str,
    config_key_hash: str | None,
    browser_exam_key_hash: str | None,
    nonce: str,
    accepted_config_keys: list[str],
    accepted_browser_exam_keys: list[str],
) -> SebCheck:
    """Check the keys read from ``SafeExamBrowser.security`` on the page at ``page_url``.

    ``page_url`` is the absolute page URL rebuilt by the server from the
    stored path (it must carry ``seb_nonce=nonce``); ``nonce`` is the one
    the server issued and is now consuming. Reasons: ``nonce_mismatch``,
    ``missing_js_keys``, and those of :func:`check_headers`. A hash computed
    for another URL or another nonce does not verify, because the URL (with
    its nonce) is part of what is hashed.
    """
    got = nonce_of(page_url)
    if not nonce or got is None or not hmac.compare_digest(got.encode(), nonce.encode()):
        return SebCheck(False, "nonce_mismatch", {"url": _strip_fragment(page_url)}, {"nonce": (got or "")[:8] or None})
    return _check(
        _strip_fragment(page_url),
        config_key_hash,
        browser_exam_key_hash,
        accepted_config_keys,
        accepted_browser_exam_keys,
        "missing_js_keys",
    )


def _variants(url: str) -> list[tuple[str, str]]:
    p = urlsplit(url)
    out = []
    other = {"http": "https", "https": "http"}.get(p.scheme)
    if other:
        out.append((f"scheme {other} instead of {p.scheme}", urlunsplit((other, *p[1:]))))
    path = p.path[:-1] if p.path.endswith("/") and p.path != "/" else p.path + "/"
    out.append(("trailing slash differs", urlunsplit((p.scheme, p.netloc, path, p.query, ""))))
    if p.query:
        out.append(("query string missing", urlunsplit((p.scheme, p.netloc, p.path, "", ""))))
    if p.port is None and p.hostname:
        for port in ("80", "443", "8080", "8443"):
            out.append((f"port {port} in URL", urlunsplit((p.scheme, f"{p.netloc}:{port}", *p[2:]))))
    return out


def diagnose(url: str, received_hash: str | None, keys: list[str]) -> str | None:
    """For the log only (never to accept): which near-miss of ``url`` the client's hash matches.

    Typical causes: TLS ends at a proxy but CBT_PUBLIC_URL says http (or the
    reverse), a proxy rewriting the path, a port in the URL students use.
    """
    if not received_hash:
        return None
    got = received_hash.strip().lower()
    for what, variant in _variants(url):
        for key in keys:
            if request_hash(variant, key.strip().lower()) == got:
                return f"client hashed {variant} ({what}); check CBT_PUBLIC_URL and the proxy"
    return "no accepted key matches (wrong .seb file, other SEB version, or not SEB)"


# --------------------------------------------------------------------------- Config Key


def _sort_key(k: str):
    # Case-insensitive, culture-invariant; on a tie lower case first (allowWlan before allowWLAN),
    # as in the SEB page and Moodle's Collator('root').
    return (k.lower(), k.swapcase())


def _iso8601(d: dt.datetime) -> str:
    if d.tzinfo is not None:
        d = d.astimezone(dt.UTC).replace(tzinfo=None)
    return d.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _is_empty_dict(v) -> bool:
    return isinstance(v, dict) and not _prune(v)


def _prune(d: dict) -> dict:
    return {k: v for k, v in d.items() if not _is_empty_dict(v)}


def _enc(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v + '"'  # no escaping at all (SEB rule), see seb_json
    if isinstance(v, (bytes, bytearray)):
        return '"' + base64.b64encode(bytes(v)).decode("ascii") + '"'
    if isinstance(v, dt.datetime):
        return '"' + _iso8601(v) + '"'
    if isinstance(v, dict):
        items = _prune(v)
        return "{" + ",".join('"' + k + '":' + _enc(items[k]) for k in sorted(items, key=_sort_key)) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_enc(x) for x in v if not _is_empty_dict(x)) + "]"
    raise TypeError(f"SEB settings cannot hold {type(v).__name__}: {v!r}")


def seb_json(settings: dict) -> str:
    """The "SEB-JSON" string of a settings dict (as plistlib loads a .seb).

    - ``originatorVersion`` (top level) removed;
    - dict keys sorted case-insensitively, recursively (also dicts inside
      arrays); arrays keep their order; empty dicts removed (also ones that
      become empty), empty arrays kept;
    - no whitespace and no escaping: strings go in as they are, with UTF-8
      non-ASCII, ``/`` and ``\\`` unescaped (Moodle's json_encode still
      escapes ``"`` and control characters: :func:`seb_config` keeps both
      out of the settings it generates, so the two agree);
    - booleans ``true``/``false``, integers in decimal; ``<data>`` as Base64;
      ``<date>`` as ISO 8601 in UTC, ``1940-10-09T22:13:56+00:00`` (Moodle's
      form); reals as Python ``repr`` (SEB files practically never hold one);
    - an empty settings dict gives ``{}`` (Moodle gives ``[]``, a PHP
      artefact).
    """
    s = {k: v for k, v in settings.items() if k != "originatorVersion"}
    return _enc(s)


def config_key(seb_settings: dict) -> str:
    """The Config Key: lowercase hex SHA-256 of :func:`seb_json`."""
    return hashlib.sha256(seb_json(seb_settings).encode("utf-8")).hexdigest()


def config_key_for_file(plist_bytes: bytes) -> str:
    """The Config Key of an unencrypted .seb file (XML or binary plist)."""
    settings = plistlib.loads(plist_bytes)
    if not isinstance(settings, dict):
        raise ValueError("a .seb file holds a dictionary at the top")
    return config_key(settings)


# --------------------------------------------------------------------------- .seb files and links

_UNSAFE_TEXT = re.compile(r'["\\\x00-\x1f\x7f]')


def _safe_text(s: str) -> str:
    return _UNSAFE_TEXT.sub(lambda m: "'" if m.group() == '"' else " ", s).strip()


def seb_settings(
    start_url: str,
    quit_url: str,
    *,
    exam_title: str,
    allow_quit: bool = True,
    quit_password: str | None = None,
    url_filter_hosts: list[str] | None = None,
    browser_view_mode: int = 1,
    web_view_policy: int | None = None,
) -> dict:
    """The settings dict behind :func:`seb_config` (handy for :func:`config_key`).

    Lockdown defaults: fullscreen, no switching to other applications, no
    print screen, screen sharing, virtual machines, spell check, dictionary,
    right mouse button, downloads or preferences window; private clipboard.
    ``quit_password`` is stored as SEB expects (SHA-256 hex, ``hashedQuitPassword``).
    ``url_filter_hosts`` (e.g. ``["exam.school.edu.vn"]``) turns on SEB's URL
    filter allowing only those hosts. ``web_view_policy`` sets
    ``browserWindowWebView`` (3 = modern WebView, JavaScript API only).
    """
    for u in (start_url, quit_url):
        if urlsplit(u).scheme not in ("http", "https"):
            raise ValueError(f"SEB start/quit URLs must be http(s): {u!r}")
    s: dict = {
        "originatorVersion": "cbt",
        "startURL": start_url,
        "quitURL": quit_url,
        "quitURLConfirm": False,
        "sendBrowserExamKey": True,
        "sebConfigPurpose": 0,  # starting an exam (1 would be configuring a client)
        "allowQuit": bool(allow_quit),
        "browserWindowTitleSuffix": _safe_text(exam_title),
        "browserViewMode": int(browser_view_mode),
        "allowSwitchToApplications": False,
        "allowFlashFullscreen": False,
        "allowPreferencesWindow": False,
        "allowScreenSharing": False,
        "allowVirtualMachine": False,
        "allowSpellCheck": False,
        "allowDictionaryLookup": False,
        "allowDownUploads": False,
        "allowBrowsingBackForward": False,
        "enablePrintScreen": False,
        "enableRightMouse": False,
        "enablePrivateClipboard": True,
        "enableAltTab": False,
        "enableAltF4": False,
        "enableCtrlEsc": False,
        "enableAltEsc": False,
        "enableStartMenu": False,
        "killExplorerShell": False,
        "showTaskBar": True,
        "showReloadButton": True,
        "showTime": True,
        "browserWindowAllowReload": True,
        "newBrowserWindowByLinkPolicy": 0,  # links that would open a new window are blocked
        "newBrowserWindowByScriptPolicy": 0,
        "examSessionClearSessionCookies": True,
    }
    if quit_password:
        s["hashedQuitPassword"] = hashlib.sha256(quit_password.encode("utf-8")).hexdigest()
    if url_filter_hosts:
        rules = []
        for host in url_filter_hosts:
            h = _safe_text(host)
            rules += [
                {"action": 1, "active": True, "expression": h, "regex": False},
                {"action": 1, "active": True, "expression": f"{h}/*", "regex": False},
            ]
        s["URLFilterEnable"] = True
        s["URLFilterEnableContentFilter"] = False
        s["URLFilterRules"] = rules
    if web_view_policy is not None:
        s["browserWindowWebView"] = int(web_view_policy)
    return s


def seb_config(start_url: str, quit_url: str, *, exam_title: str, allow_quit: bool = True, **kw) -> bytes:
    """A minimal unencrypted `.seb` file (XML plist, serve as :data:`MIME_TYPE`).

    Its Config Key is ``config_key_for_file(result)`` (= ``config_key(seb_settings(...))``);
    it only depends on the arguments, so it is stable for an exam.
    """
    settings = seb_settings(start_url, quit_url, exam_title=exam_title, allow_quit=allow_quit, **kw)
    return plistlib.dumps(settings, fmt=plistlib.FMT_XML, sort_keys=True)


def seb_link(url: str) -> str:
    """``http://`` → ``seb://``, ``https://`` → ``sebs://`` (opens the URL's .seb in SEB)."""
    p = urlsplit(url)
    scheme = {"http": "seb", "https": "sebs"}.get(p.scheme.lower())
    if scheme is None:
        raise ValueError(f"only http(s) URLs have a seb:// form: {url!r}")
    return scheme + url[len(p.scheme) :]


def http_link(seb_url: str) -> str:
    """The inverse of :func:`seb_link`."""
    p = urlsplit(seb_url)
    scheme = {"seb": "http", "sebs": "https"}.get(p.scheme.lower())
    if scheme is None:
        raise ValueError(f"not a seb:// or sebs:// URL: {seb_url!r}")
    return scheme + seb_url[len(p.scheme) :]


# --------------------------------------------------------------------------- exam policy

DEFAULT_SEB_POLICY = {
    "required": False,
    "config_keys": [],
    "browser_exam_keys": [],
    "serve_config": True,
    "js_api": True,
    "allow_quit": True,
}


# A Config Key is SHA-256 over the settings in the .seb file, and cbt serves that
# file to anyone who asks (students need it): so anyone can compute the key and
# send its header from any browser. Only the Browser Exam Key, which SEB derives
# from its own build as well as the settings, shows that the client is SEB.
CONFIG_ONLY_WARNING = (
    "this exam checks only the Config Key: a configuration check, not proof that the client is "
    "Safe Exam Browser (anyone can compute that key from the public .seb file); to require SEB itself, "
    "list the Browser Exam Key of each SEB version in the lab under policies.seb.browser_exam_keys "
    "(open the exam's .seb file in SEB's configuration tool on a lab computer: its Exam tab shows "
    "the Browser Exam Key)"
)


def assurance(policy: dict | None) -> str:
    """What an exam's SEB policy can show about the client.

    "none": SEB is not required; "client": a Browser Exam Key is required
    (with the JavaScript-API path too, only a key list match passes), which proves
    the SEB build; "config": Config Keys only, a configuration check that
    any browser can pass by sending the right header."""
    policy = policy or {}
    if not policy.get("required"):
        return "none"
    return "client" if policy.get("browser_exam_keys") else "config"


def parse_seb_policy(raw, problems: list[Problem]) -> dict:
    """Check ``policies.seb`` of an exam file (same style as lockdown.parse_policies)::

        seb:
          required: true
          config_keys: [64 hex, ...]        # pasted from SEB's config tool (optional)
          browser_exam_keys: [64 hex, ...]  # one per SEB build allowed (optional)
          serve_config: true                # offer cbt's generated .seb; its key is accepted too
          js_api: true                      # accept the JavaScript-API path (nonce) as well
          allow_quit: true

    ``seb: true`` is short for ``{required: true}``.
    """
    out = {k: (list(v) if isinstance(v, list) else v) for k, v in DEFAULT_SEB_POLICY.items()}
    if raw is None or raw is False:
        return out
    if raw is True:
        raw = {"required": True}
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                "policies.seb: give true or a mapping (required:, config_keys:, browser_exam_keys:, ...)",
                "seb_shape",
                "policies.seb",
            )
        )
        return out
    unknown = set(raw) - set(DEFAULT_SEB_POLICY)
    if unknown:
        problems.append(
            Problem(
                f"policies.seb: unknown field(s) {', '.join(sorted(unknown))}",
                "unknown_fields",
                "policies.seb",
                fields=", ".join(sorted(unknown)),
            )
        )
    for name in ("required", "serve_config", "js_api", "allow_quit"):
        if name in raw:
            if not isinstance(raw[name], bool):
                problems.append(
                    Problem(f"policies.seb.{name}: must be true or false", "not_bool", f"policies.seb.{name}")
                )
            else:
                out[name] = raw[name]
    for name in ("config_keys", "browser_exam_keys"):
        vals = raw.get(name) or []
        if isinstance(vals, str):
            vals = [vals]
        if not isinstance(vals, list):
            problems.append(
                Problem(
                    f"policies.seb.{name}: must be a list of 64-hex-character keys",
                    "seb_keys_list",
                    f"policies.seb.{name}",
                )
            )
            continue
        for v in vals:
            try:
                out[name].append(normalize_key(v))
            except ValueError as e:
                problems.append(Problem(f"policies.seb.{name}: {e}", "seb_key_invalid", f"policies.seb.{name}", got=v))
    if out["required"] and not (out["config_keys"] or out["browser_exam_keys"] or out["serve_config"]):
        problems.append(
            Problem(
                "policies.seb: required but no key to check (give config_keys, browser_exam_keys "
                "or serve_config: true)",
                "seb_no_key",
                "policies.seb",
            )
        )
    return out
