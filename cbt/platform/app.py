"""create_app(settings): the aiohttp application. No I/O here: the pool and
any background work start in cleanup_ctx when the app runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from cbt import audit, lockdown, notify, receipts, submission
from cbt.delivery import autosave, candidate, proctor
from cbt.platform import appkeys, auth, db, middleware, uploads
from cbt.platform.config import Settings
from cbt.platform.i18n import Catalogs
from cbt.platform.metrics import Metrics
from cbt.platform.routes import ACCESS, BODY_LIMITS, CSRF_EXEMPT, add_routes
from cbt.platform.templating import make_jinja, web_root

# Forms and JSON calls of the staff pages; upload routes have their own (cbt.platform.uploads).
CLIENT_MAX_SIZE = 4 * 1024 * 1024


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    async with db.pool_context(settings.database_url, settings) as pool:
        app[appkeys.POOL] = pool
        yield


def create_app(settings: Settings) -> web.Application:
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url (cbt serve fills it in)")
    if not settings.secret_key:
        raise ValueError("create_app needs settings.secret_key (load_settings generates one)")
    root = web_root()
    app = web.Application(
        middlewares=[
            middleware.observe_middleware,
            middleware.error_middleware,
            # Before anything reads a body: it sets the route's own body limit.
            uploads.body_limit_middleware(BODY_LIMITS),
            middleware.input_middleware,
            auth.session_middleware,
            auth.access_middleware(ACCESS),
            auth.csrf_middleware,
        ],
        client_max_size=CLIENT_MAX_SIZE,
    )
    app[appkeys.SETTINGS] = settings
    app[appkeys.CSRF_EXEMPT] = CSRF_EXEMPT
    app.on_response_prepare.append(middleware.security_headers)
    app[appkeys.JINJA] = make_jinja(root)
    app[appkeys.CATALOGS] = Catalogs(root / "i18n")
    metrics = Metrics()
    metrics.watch_pool(lambda: app.get(appkeys.POOL))
    app[appkeys.METRICS] = metrics
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(notify.notifier_ctx)
    app.cleanup_ctx.append(autosave.group_commit_ctx)
    app.cleanup_ctx.append(submission.deadline_sweeper)
    app.cleanup_ctx.append(proctor.listener_ctx)
    app.on_shutdown.append(proctor.end_streams)
    app.on_response_prepare.append(lockdown.set_device_cookie)
    app.cleanup_ctx.append(audit.chainer_ctx)
    app.cleanup_ctx.append(receipts.repair_ctx)
    app.cleanup_ctx.append(uploads.serving_ctx)
    app[appkeys.DELIVERY_CACHE] = candidate.Cache(rendered={}, items={})
    add_routes(app, root / "static")
    return app
