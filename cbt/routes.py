"""The one URL table. Every route has a name and says who may use it.

Access is one of: PUBLIC, STAFF (any signed-in staff member), or a set of
roles. The access middleware refuses any route missing from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from cbt import apidoc, auth, autosave, bank_browser, board, delivery, exam_page, ops, proctor, receipts, staff
from cbt.auth import PUBLIC, STAFF

ADMIN = frozenset({"admin"})
PROCTORS = frozenset({"admin", "proctor"})
# Proctors run rooms; they have no business reading the question bank.
BANK_READERS = frozenset({"admin", "teacher", "reviewer", "board"})
# Item analysis and results are the exam board's (and an administrator's).
BOARD = frozenset({"board", "admin"})


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: object
    name: str
    access: object


ROUTES: tuple[Route, ...] = (
    Route("GET", "/", staff.home, "home", PUBLIC),
    Route("GET", "/healthz", ops.healthz, "healthz", PUBLIC),
    Route("GET", "/metrics", ops.metrics, "metrics", PUBLIC),  # guarded in the handler
    Route("GET", "/lang/{lang}", staff.set_language, "set_language", PUBLIC),
    Route("GET", "/login", auth.login_page, "login", PUBLIC),
    Route("POST", "/login", auth.login_submit, "login_submit", PUBLIC),
    Route("POST", "/logout", auth.logout, "logout", STAFF),
    Route("GET", "/staff", staff.dashboard, "staff_dashboard", STAFF),
    Route("GET", "/staff/users", staff.users_page, "staff_users", ADMIN),
    Route("POST", "/staff/users", staff.users_create, "staff_users_create", ADMIN),
    # The candidate API: bearer-token auth from ticket login, checked in each handler.
    Route("POST", "/api/v1/login", delivery.login, "api_login", PUBLIC),
    Route("GET", "/api/v1/session", delivery.session, "api_session", PUBLIC),
    Route("POST", "/api/v1/start", delivery.start, "api_start", PUBLIC),
    Route("GET", "/api/v1/state", delivery.state, "api_state", PUBLIC),
    Route("POST", "/api/v1/changes", autosave.changes, "api_changes", PUBLIC),
    Route("POST", "/api/v1/sections/next", delivery.next_section, "api_next_section", PUBLIC),
    Route("POST", "/api/v1/submit", delivery.submit, "api_submit", PUBLIC),
    Route("GET", "/api/v1/openapi.json", apidoc.openapi, "api_openapi", PUBLIC),
    Route("POST", "/api/v1/integrity", delivery.integrity, "api_integrity", PUBLIC),
    Route("POST", "/api/v1/seb/nonce", delivery.seb_nonce, "api_seb_nonce", PUBLIC),
    Route("POST", "/api/v1/seb/js-check", delivery.seb_js_check, "api_seb_js_check", PUBLIC),
    Route("GET", "/exam", exam_page.page, "exam_page", PUBLIC),
    Route("GET", "/exam/{code}/config.seb", delivery.seb_config, "exam_seb_config", PUBLIC),
    # Anyone holding a receipt may check it.
    Route("GET", "/receipt", receipts.verify_page, "receipt_verify", PUBLIC),
    Route("POST", "/receipt", receipts.verify_page, "receipt_verify_submit", PUBLIC),
    Route("GET", "/receipt/qr.svg", receipts.qr_svg, "receipt_qr", PUBLIC),
    Route("GET", "/proctor", proctor.index, "proctor_index", PROCTORS),
    Route("GET", "/proctor/exams/{code}", proctor.room_page, "proctor_room", PROCTORS),
    Route("GET", "/proctor/exams/{code}/state", proctor.state, "proctor_state", PROCTORS),
    Route("GET", "/proctor/exams/{code}/events", proctor.events, "proctor_events", PROCTORS),
    Route("POST", "/proctor/exams/{code}/actions", proctor.act, "proctor_act", PROCTORS),
    Route("GET", "/bank", bank_browser.index, "bank_index", BANK_READERS),
    Route("GET", "/bank/template.xlsx", bank_browser.template_xlsx, "bank_template", BANK_READERS),
    Route("GET", "/bank/items/{item_id}/{version}", bank_browser.item_page, "bank_item", BANK_READERS),
    Route("GET", "/bank/items/{item_id}/{version}/{path:media/.+}", bank_browser.media, "bank_media",
          BANK_READERS),
    Route("GET", "/board/exams", board.exams_list, "board_exams", BOARD),
    Route("GET", "/board/exams/{code}", board.exam_page, "board_exam", BOARD),
    Route("POST", "/board/exams/{code}/recompute", board.recompute, "board_recompute", BOARD),
    Route("GET", "/board/exams/{code}/report.xlsx", board.report_xlsx, "board_report_xlsx", BOARD),
    Route("GET", "/board/exams/{code}/items/{pk}", board.item_page, "board_item", BOARD),
)

STATIC_ROUTE = "static"

ACCESS: dict[str, object] = {r.name: r.access for r in ROUTES} | {STATIC_ROUTE: PUBLIC}


def add_routes(app: web.Application, static_dir) -> None:
    for r in ROUTES:
        app.router.add_route(r.method, r.path, r.handler, name=r.name)
    app.router.add_static("/static/", static_dir, name=STATIC_ROUTE, append_version=True)
