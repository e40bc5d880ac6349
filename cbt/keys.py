"""Every typed web.AppKey of the application, in one place."""

from __future__ import annotations

import asyncpg
import jinja2
from aiohttp import web

from cbt.config import Settings
from cbt.i18n import Catalogs
from cbt.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
JINJA = web.AppKey("jinja", jinja2.Environment)
CATALOGS = web.AppKey("catalogs", Catalogs)
METRICS = web.AppKey("metrics", Metrics)
# Names of the routes that take no CSRF token (Route.csrf is False in routes.py).
CSRF_EXEMPT = web.AppKey("csrf_exempt", frozenset)
# In-process caches of immutable exam data (rendered items, parsed items).
DELIVERY_CACHE = web.AppKey("delivery_cache", object)
# This worker's subscribers to live exam updates (proctor consoles).
PROCTOR_HUB = web.AppKey("proctor_hub", object)
# Coalesces this worker's wake-ups of proctor consoles (delivery.Notifier).
NOTIFIER = web.AppKey("notifier", object)
# Sends this worker's fast-path saves that arrive together as one statement (autosave.GroupCommit).
SAVES = web.AppKey("saves", object)

# Per-request values set by the middlewares.
USER = web.RequestKey("user", object)  # accounts.Staff or None
SESSION_TOKEN = web.RequestKey("session_token", str)
CSRF_TOKEN = web.RequestKey("csrf_token", str)
CSRF_BASIS_MISSING = web.RequestKey("csrf_basis_missing", bool)
LANG = web.RequestKey("lang", str)
REQUEST_ID = web.RequestKey("request_id", str)
# A device id issued to a browser that sent none (lockdown.ensure_device), set as its cookie on the response.
DEVICE_ISSUED = web.RequestKey("device_issued", str)
