"""Every typed web.AppKey of the application, in one place.

(Named appkeys, not keys: "keys" in cbt also means signing keys and answer keys.)
The keys of objects made by the modules that use them are typed for the type
checker only: importing those modules here would make them import each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import jinja2
from aiohttp import web

from cbt.platform.config import Settings
from cbt.platform.i18n import Catalogs
from cbt.platform.metrics import Metrics

if TYPE_CHECKING:
    from cbt.accounts import Staff
    from cbt.delivery.autosave import GroupCommit
    from cbt.delivery.candidate import Cache
    from cbt.delivery.proctor import Hub
    from cbt.notify import Notifier

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
JINJA = web.AppKey("jinja", jinja2.Environment)
CATALOGS = web.AppKey("catalogs", Catalogs)
METRICS = web.AppKey("metrics", Metrics)
# Names of the routes that take no CSRF token (Route.csrf is False in routes.py).
CSRF_EXEMPT = web.AppKey("csrf_exempt", frozenset)
# In-process caches of immutable exam data (rendered items, parsed items).
DELIVERY_CACHE: web.AppKey[Cache] = web.AppKey("delivery_cache")
# This worker's subscribers to live exam updates (proctor consoles).
PROCTOR_HUB: web.AppKey[Hub] = web.AppKey("proctor_hub")
# Coalesces this worker's wake-ups of proctor consoles (notify.Notifier).
NOTIFIER: web.AppKey[Notifier] = web.AppKey("notifier")
# Sends this worker's fast-path saves that arrive together as one statement (autosave.GroupCommit).
SAVES: web.AppKey[GroupCommit] = web.AppKey("saves")

# Per-request values set by the middlewares.
USER: web.RequestKey[Staff | None] = web.RequestKey("user")
SESSION_TOKEN = web.RequestKey("session_token", str)
CSRF_TOKEN = web.RequestKey("csrf_token", str)
CSRF_BASIS_MISSING = web.RequestKey("csrf_basis_missing", bool)
LANG = web.RequestKey("lang", str)
REQUEST_ID = web.RequestKey("request_id", str)
# A device id issued to a browser that sent none (lockdown.ensure_device), set as its cookie on the response.
DEVICE_ISSUED = web.RequestKey("device_issued", str)
