"""The one URL table. Every route has a name and says who may use it.

Access is one of: PUBLIC, STAFF (any signed-in staff member), or a set of
roles. The access middleware refuses any route missing from this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from cbt import roster
from cbt.delivery import apidoc, autosave, candidate, exam_page, proctor, receipt_pages
from cbt.platform import auth, ops, uploads
from cbt.platform.auth import PUBLIC, STAFF
from cbt.platform.middleware import STATIC_ROUTE
from cbt.roles import (
    ADMIN,
    AUTHORS,
    BANK_READERS,
    BOARD,
    PROCTORS,
    RESULTS_READERS,
    REVIEWERS,
    SIGNERS,
    TEACHERS,
)
from cbt.workspace import bank_browser, board, exams, items, releases, results, staff


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: object
    name: str
    access: object
    # False only where a form from another site cannot act: the candidate API
    # authenticates by an Authorization header, which another site cannot send.
    csrf: bool = True
    # The most the request body may hold, in bytes, where a route takes more
    # than the server's default (an upload); see uploads.body_limit_middleware.
    max_body: int | None = None


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
    Route("POST", "/api/v1/login", candidate.login, "api_login", PUBLIC, csrf=False),
    Route("GET", "/api/v1/session", candidate.session, "api_session", PUBLIC),
    Route("POST", "/api/v1/start", candidate.start, "api_start", PUBLIC, csrf=False),
    Route("GET", "/api/v1/state", candidate.state, "api_state", PUBLIC),
    Route("POST", "/api/v1/changes", autosave.changes, "api_changes", PUBLIC, csrf=False),
    Route("POST", "/api/v1/sections/next", candidate.next_section, "api_next_section", PUBLIC, csrf=False),
    Route("POST", "/api/v1/submit", candidate.submit, "api_submit", PUBLIC, csrf=False),
    Route("GET", "/api/v1/openapi.json", apidoc.openapi, "api_openapi", PUBLIC),
    Route("POST", "/api/v1/integrity", candidate.integrity, "api_integrity", PUBLIC, csrf=False),
    Route("POST", "/api/v1/seb/nonce", candidate.seb_nonce, "api_seb_nonce", PUBLIC, csrf=False),
    Route("POST", "/api/v1/seb/js-check", candidate.seb_js_check, "api_seb_js_check", PUBLIC, csrf=False),
    Route("GET", "/exam", exam_page.page, "exam_page", PUBLIC),
    Route("GET", "/exam/{code}/config.seb", candidate.seb_config, "exam_seb_config", PUBLIC),
    # Anyone holding a receipt may check it.
    Route("GET", "/receipt", receipt_pages.verify_page, "receipt_verify", PUBLIC),
    Route("POST", "/receipt", receipt_pages.verify_page, "receipt_verify_submit", PUBLIC),
    Route("GET", "/receipt/qr.svg", receipt_pages.qr_svg, "receipt_qr", PUBLIC),
    Route("GET", "/proctor", proctor.index, "proctor_index", PROCTORS),
    Route("GET", "/proctor/exams/{code}", proctor.room_page, "proctor_room", PROCTORS),
    Route("GET", "/proctor/exams/{code}/state", proctor.state, "proctor_state", PROCTORS),
    Route("GET", "/proctor/exams/{code}/events", proctor.events, "proctor_events", PROCTORS),
    Route("POST", "/proctor/exams/{code}/actions", proctor.act, "proctor_act", PROCTORS),
    Route("GET", "/bank", bank_browser.index, "bank_index", BANK_READERS),
    Route("GET", "/bank/template.xlsx", bank_browser.template_xlsx, "bank_template", BANK_READERS),
    Route("GET", "/bank/items/{item_id}/{version}", bank_browser.item_page, "bank_item", BANK_READERS),
    Route("GET", "/bank/items/{item_id}/{version}/{path:media/.+}", bank_browser.media, "bank_media", BANK_READERS),
    Route("GET", "/board/exams", board.exams_list, "board_exams", BOARD),
    Route("GET", "/board/exams/{code}", board.exam_page, "board_exam", BOARD),
    Route("POST", "/board/exams/{code}/recompute", board.recompute, "board_recompute", BOARD),
    Route("GET", "/board/exams/{code}/report.xlsx", board.report_xlsx, "board_report_xlsx", BOARD),
    Route("GET", "/board/exams/{code}/items/{pk}", board.item_page, "board_item", BOARD),
    # Workspace: essay marking (teachers, admins) and results (also the exam board, read-only).
    Route("GET", "/workspace/marking", results.marking_index, "ws_marking", TEACHERS),
    Route("GET", "/workspace/marking/{code}", results.marking_exam, "ws_marking_exam", TEACHERS),
    Route("GET", "/workspace/marking/{code}/items/{pk}", results.marking_item, "ws_marking_item", TEACHERS),
    Route("POST", "/workspace/marking/{code}/items/{pk}", results.marking_save, "ws_marking_save", TEACHERS),
    Route("GET", "/workspace/results", results.results_index, "ws_results", RESULTS_READERS),
    Route("GET", "/workspace/results/{code}", results.results_exam, "ws_results_exam", RESULTS_READERS),
    Route("GET", "/workspace/results/{code}/results.csv", results.results_csv, "ws_results_csv", RESULTS_READERS),
    Route(
        "GET",
        "/workspace/results/{code}/results.xlsx",
        results.results_xlsx,
        "ws_results_xlsx",
        RESULTS_READERS,
    ),
    Route(
        "GET",
        "/workspace/results/{code}/audit-head.txt",
        results.results_head,
        "ws_results_head",
        RESULTS_READERS,
    ),
    # Workspace releases: build from approved items, sign offline or on the server, import; signing keys.
    Route("GET", "/workspace/releases", releases.index, "ws_releases", AUTHORS),
    Route("POST", "/workspace/releases", releases.create, "ws_releases_create", AUTHORS),
    Route("GET", "/workspace/releases/{release_id}", releases.page, "ws_release", AUTHORS),
    Route(
        "GET",
        "/workspace/releases/{release_id}/unsigned.zip",
        releases.download_unsigned,
        "ws_release_unsigned",
        AUTHORS,
    ),
    Route(
        "GET",
        "/workspace/releases/{release_id}/signed.cbtbank",
        releases.download_signed,
        "ws_release_signed",
        AUTHORS,
    ),
    Route(
        "POST",
        "/workspace/releases/{release_id}/signature",
        releases.upload_signature,
        "ws_release_upload",
        AUTHORS,
        max_body=uploads.RELEASE_UPLOAD_BYTES + uploads.FORM_SLACK,
    ),
    Route("POST", "/workspace/releases/{release_id}/sign", releases.sign, "ws_release_sign", SIGNERS),
    Route("GET", "/workspace/keys", releases.keys_page, "ws_keys", ADMIN),
    Route("POST", "/workspace/keys", releases.keys_create, "ws_keys_create", ADMIN),
    Route(
        "POST",
        "/workspace/keys/upload",
        releases.keys_upload,
        "ws_keys_upload",
        ADMIN,
        max_body=uploads.KEY_UPLOAD_BYTES,
    ),
    Route("POST", "/workspace/keys/{fp}/trust", releases.keys_trust, "ws_keys_trust", ADMIN),
    Route("POST", "/workspace/keys/{fp}/revoke", releases.keys_revoke, "ws_keys_revoke", ADMIN),
    # Workspace items: writing items in the browser, their review, subjects of staff.
    Route("GET", "/workspace/items", items.index, "ws_items", AUTHORS),
    Route("GET", "/workspace/items/new", items.new_page, "ws_item_new", AUTHORS),
    Route("POST", "/workspace/items/new", items.create, "ws_item_create", AUTHORS),
    Route("POST", "/workspace/items/preview", items.preview, "ws_item_preview", AUTHORS),
    Route("GET", "/workspace/items/import", items.import_page, "ws_items_import", AUTHORS),
    Route(
        "POST",
        "/workspace/items/import",
        items.import_submit,
        "ws_items_import_submit",
        AUTHORS,
        max_body=max(uploads.MAX_IMPORT_BYTES, uploads.FOREIGN_IMPORT_BYTES) + uploads.FORM_SLACK,
    ),
    Route(
        "POST",
        "/workspace/items/import/confirm",
        items.import_confirm,
        "ws_items_import_confirm",
        AUTHORS,
        max_body=uploads.FOREIGN_CONFIRM_BYTES,
    ),
    Route("POST", "/workspace/items/submit", items.submit, "ws_items_submit", AUTHORS),
    Route("POST", "/workspace/items/export", items.export, "ws_items_export", AUTHORS),
    Route("GET", "/workspace/items/{pk}", items.item_page, "ws_item", AUTHORS),
    Route("POST", "/workspace/items/{pk}", items.save, "ws_item_save", AUTHORS),
    Route(
        "POST",
        "/workspace/items/{pk}/media",
        items.upload_media,
        "ws_item_media",
        AUTHORS,
        max_body=uploads.MAX_MEDIA_BYTES + uploads.FORM_SLACK,
    ),
    Route("POST", "/workspace/items/{pk}/duplicate", items.duplicate, "ws_item_duplicate", AUTHORS),
    Route("POST", "/workspace/items/{pk}/retire", items.retire, "ws_item_retire", AUTHORS),
    Route("GET", "/workspace/review", items.review_queue, "ws_review", AUTHORS),
    Route("POST", "/workspace/review/{pk}", items.review_decide, "ws_review_decide", REVIEWERS),
    Route("GET", "/workspace/subjects", items.subjects_page, "ws_subjects", ADMIN),
    Route("POST", "/workspace/subjects", items.subjects_submit, "ws_subjects_submit", ADMIN),
    Route("POST", "/workspace/subjects/list", items.subject_list_submit, "ws_subject_list", ADMIN),
    # Workspace: the test builder and scheduling (teachers, admins of the exam's organisation).
    Route("GET", "/workspace/exams", exams.index, "ws_exams", TEACHERS),
    Route("GET", "/workspace/exams/new", exams.new_page, "ws_exam_new", TEACHERS),
    Route("POST", "/workspace/exams/new", exams.create, "ws_exam_create", TEACHERS),
    Route("GET", "/workspace/exams/blueprint.json", exams.blueprint_json, "ws_exam_blueprint", TEACHERS),
    Route("GET", "/workspace/roster-template.xlsx", exams.roster_template, "ws_roster_template", TEACHERS),
    Route("GET", "/workspace/exams/{code}", exams.exam_page, "ws_exam", TEACHERS),
    Route("GET", "/workspace/exams/{code}/edit", exams.edit_page, "ws_exam_edit", TEACHERS),
    Route("POST", "/workspace/exams/{code}/edit", exams.update, "ws_exam_update", TEACHERS),
    Route("GET", "/workspace/exams/{code}/preview", exams.preview, "ws_exam_preview", TEACHERS),
    Route("GET", "/workspace/exams/{code}/matrix.xlsx", exams.matrix_xlsx, "ws_exam_matrix", TEACHERS),
    Route(
        "POST",
        "/workspace/exams/{code}/roster",
        exams.roster_upload,
        "ws_exam_roster",
        TEACHERS,
        max_body=roster.MAX_BYTES + uploads.FORM_SLACK,
    ),
    Route("POST", "/workspace/exams/{code}/tickets", exams.tickets, "ws_exam_tickets", TEACHERS),
    Route("GET", "/workspace/exams/{code}/tickets/{sheet}", exams.ticket_sheet, "ws_exam_ticket_sheet", TEACHERS),
    Route("POST", "/workspace/exams/{code}/open", exams.open_, "ws_exam_open", TEACHERS),
    Route("POST", "/workspace/exams/{code}/close", exams.close, "ws_exam_close", TEACHERS),
)


ACCESS: dict[str, object] = {r.name: r.access for r in ROUTES} | {STATIC_ROUTE: PUBLIC}
CSRF_EXEMPT: frozenset[str] = frozenset(r.name for r in ROUTES if not r.csrf)
BODY_LIMITS: dict[str, int] = {r.name: r.max_body for r in ROUTES if r.max_body is not None}


def add_routes(app: web.Application, static_dir) -> None:
    for r in ROUTES:
        app.router.add_route(r.method, r.path, r.handler, name=r.name)
    app.router.add_static("/static/", static_dir, name=STATIC_ROUTE, append_version=True)
