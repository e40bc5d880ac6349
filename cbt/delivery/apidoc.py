"""The OpenAPI document of the candidate API, served at /api/v1/openapi.json.

docs/api.md explains the protocol in prose; this is the machine-readable
contract the exam page and the load tests are written against."""

from __future__ import annotations

from aiohttp import web

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
        }
    },
}
TIME = {"type": "string", "format": "date-time"}
ATTEMPT = {
    "type": ["object", "null"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": ["in_progress", "submitted"]},
        "deadline": TIME,
        "section_index": {"type": "integer"},
        "section_deadline": {"type": ["string", "null"], "format": "date-time"},
        "saved_seq": {"type": "integer"},
        "server_now": TIME,
        "paused": {"type": "boolean"},
        "paused_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "while a proctor has paused the attempt: its time left is deadline - paused_at",
        },
    },
}
SESSION = {
    "type": "object",
    "required": ["server_now", "candidate", "exam", "attempt"],
    "properties": {
        "server_now": TIME,
        "token": {"type": "string", "description": "only in the login response"},
        "candidate": {
            "type": "object",
            "properties": {
                k: {"type": "string"} for k in ("code", "full_name", "date_of_birth", "class_name", "school", "room")
            },
        },
        "exam": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "title": {"type": "string"},
                "duration_minutes": {"type": "integer"},
                "time_allowed_minutes": {"type": "number"},
                "opens_at": TIME,
                "closes_at": TIME,
                "late_entry_until": TIME,
                "instructions": {"type": "string"},
                "show_score": {"type": "boolean"},
                "sections": {"type": "array", "items": {"type": "object"}},
            },
        },
        "attempt": ATTEMPT,
        "result": {
            "type": "object",
            "properties": {
                "submitted_at": TIME,
                "receipt": {"type": "string"},
                "score": {
                    "type": "object",
                    "properties": {
                        "total": {"type": "string"},
                        "max": {"type": "string"},
                        "provisional": {"type": "boolean"},
                    },
                },
            },
        },
    },
}
ITEM = {
    "type": "object",
    "required": ["ref", "type", "points", "stem"],
    "properties": {
        "ref": {"type": "string", "example": "q1"},
        "type": {"enum": ["single", "multiple", "truefalse4", "short", "essay"]},
        "points": {"type": "string"},
        "stem": {"type": "string", "description": "safe HTML with MathML"},
        "options": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "string", "description": "per-form alias"}, "html": {"type": "string"}},
            },
        },
        "statements": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"enum": ["a", "b", "c", "d"]}, "html": {"type": "string"}},
            },
        },
    },
}
CHANGE = {
    "type": "object",
    "required": ["seq", "item"],
    "properties": {
        "seq": {"type": "integer", "minimum": 1},
        "item": {"type": "string"},
        "kind": {"enum": ["answer", "flag", "withdrawn"], "default": "answer"},
        "value": {
            "description": "single: alias|null; multiple: [alias]; truefalse4: {a: bool|null}; "
            "short/essay: string|null; flag: bool; withdrawn (a change refused as "
            "bad_change, given up): null"
        },
    },
}


def _op(summary: str, response: dict, body: dict | None = None, auth: bool = True) -> dict:
    op = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": response}}},
            "4XX": {"description": "refused; see error.code", "content": {"application/json": {"schema": ERROR}}},
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if auth:
        op["security"] = [{"ticketToken": []}]
    return op


START = {
    **SESSION,
    "properties": {
        **SESSION["properties"],
        "form": {
            "type": "object",
            "properties": {
                "sections": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "title": {"type": "string"},
                            "time_limit_minutes": {"type": ["integer", "null"]},
                            "items": {"type": "array", "items": ITEM},
                        },
                    },
                }
            },
        },
        "answers": {"type": "object", "additionalProperties": {"type": "object"}},
    },
}
ATTEMPT_ID = {"type": "object", "properties": {"attempt_id": {"type": "integer"}}}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "cbt candidate API",
        "version": "1",
        "description": "The API the exam page uses. See docs/api.md.",
    },
    "components": {"securitySchemes": {"ticketToken": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/api/v1/login": {
            "post": _op(
                "Sign in with a ticket",
                SESSION,
                {"type": "object", "required": ["ticket"], "properties": {"ticket": {"type": "string"}}},
                auth=False,
            )
        },
        "/api/v1/session": {"get": _op("Who am I, which exam, which attempt", SESSION)},
        "/api/v1/start": {
            "post": _op("Start or resume: the form (aliases, no key) and saved answers", START, ATTEMPT_ID)
        },
        "/api/v1/state": {"get": _op("Saved answers and the time", START)},
        "/api/v1/changes": {
            "post": _op(
                "Save a batch of journal entries",
                {
                    "type": "object",
                    "properties": {
                        "saved_seq": {"type": "integer"},
                        "server_now": TIME,
                        "deadline": TIME,
                        "section_index": {"type": "integer"},
                        "section_deadline": {"type": ["string", "null"]},
                    },
                },
                {
                    "type": "object",
                    "required": ["changes"],
                    "properties": {
                        "attempt_id": {"type": "integer"},
                        "changes": {"type": "array", "items": CHANGE, "maxItems": 500},
                    },
                },
            )
        },
        "/api/v1/sections/next": {
            "post": _op(
                "Close the current timed section and open the next",
                SESSION,
                {
                    "type": "object",
                    "required": ["from_section"],
                    "properties": {"attempt_id": {"type": "integer"}, "from_section": {"type": "integer"}},
                },
            )
        },
        "/api/v1/submit": {"post": _op("Submit (idempotent); returns the receipt", SESSION, ATTEMPT_ID)},
    },
}


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
