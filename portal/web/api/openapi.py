"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal.intake.filing import COUNTIES, MAX_LENGTH

RECEIPT_PATTERN = "^([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}$"


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


TEXT = {"type": "string"}
TIP_PROPERTIES: dict[str, Any] = {
    "category": {"type": "string", "pattern": "^(P(0[1-9]|10)|Z0[1-7])$",
                 "description": "P01…P10 or Z01…Z07; omit when not sure"},
    "county": {"type": "string", "enum": [*COUNTIES, "unknown"],
               "description": "where the problem is; omit or 'unknown' routes to 州本级"},
    "narrative": {**TEXT, "maxLength": MAX_LENGTH["narrative"],
                  "description": "what happened (required)"},
    "place": {**TEXT, "maxLength": MAX_LENGTH["place"]},
    "occurred": {**TEXT, "maxLength": MAX_LENGTH["occurred"]},
    "responsible": {**TEXT, "maxLength": MAX_LENGTH["responsible"]},
    "officials": {**TEXT, "maxLength": MAX_LENGTH["officials"]},
    "keep_photo_location": {"type": "boolean", "default": False},
    "identity": {"$ref": "#/components/schemas/Identity"},
    "language": {"type": "string", "enum": ["zh", "ko", "en"],
                 "description": "the language the tip is written in; omitted: the request's "
                                "(?lang= or Accept-Language), else unknown"},
}
LIMITED = {"429": _error_response("too many requests from this connection")}
# The receipt hash is bounded (portal/web/hashgate.py): beyond it, nothing is stored and the client
# is told when to try again.
BUSY = {"503": {**_error_response("the portal is too busy to take this now: nothing was stored; "
                                  "send the same request again after Retry-After seconds"),
                "headers": {"Retry-After": {
                    "description": "seconds to wait before sending the request again",
                    "schema": {"type": "integer"}}}}}


def openapi_document(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Qingliu (清流) tip portal API", "version": "1",
                 "description": "Anonymous by default. Content is encrypted before it is stored; "
                                "the receipt returned by POST /tips is the only key back to the "
                                "tip and cannot be recovered. Error messages follow "
                                "Accept-Language (zh, ko, en)."},
        "servers": [{"url": "/api/v1"}],
        "paths": {**citizen_paths(config), **staff_paths(), **referral_paths()},
        "components": components(),
    }


def citizen_paths(config: Mapping[str, Any]) -> dict[str, Any]:
    text, tip_properties, limited = TEXT, TIP_PROPERTIES, LIMITED
    return {
            "/categories": {"get": {
                "summary": "The current 17 clue categories in three languages",
                "responses": {"200": {"description": "categories", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Categories"}}}}},
            }},
            "/tips": {"post": {
                "summary": "File a tip",
                "parameters": [{
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~+/=-]{32,128}$"},
                    "description": "Optional. A random value of at least 128 bits made by the "
                                   "client for this one tip (e.g. a UUID v4 or 32 hex digits) "
                                   "and kept secret like the receipt. Sending the same key "
                                   "again with the same content files nothing: within an hour "
                                   "of filing the answer is "
                                   "200 with the same receipt (header Idempotent-Replayed: "
                                   "true), later 409. The key is never stored, only a keyed "
                                   "hash of it; the receipt is derived from it.",
                }],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Tip"}},
                    "multipart/form-data": {"schema": {
                        "type": "object",
                        "properties": {
                            **{k: v for k, v in tip_properties.items() if k != "identity"},
                            "identity": {"type": "string",
                                         "description": "the Identity object as JSON text"},
                            "attachments": {"type": "array", "maxItems": config["MAX_FILES"],
                                            "items": {"type": "string", "format": "binary"}},
                        },
                        "required": ["narrative"],
                    }},
                }},
                "responses": {
                    "201": {"description": "filed", "content": {"application/json": {
                        "schema": {"type": "object", "required": ["receipt"], "properties": {
                            "receipt": {"type": "string", "pattern": RECEIPT_PATTERN}
                        }}}}},
                    "200": {"description": "filed before with this Idempotency-Key: the same "
                                           "receipt, nothing new filed",
                            "content": {"application/json": {"schema": {
                                "type": "object", "required": ["receipt"], "properties": {
                                    "receipt": {"type": "string",
                                                "pattern": RECEIPT_PATTERN}}}}}},
                    "409": _error_response("filed before with this Idempotency-Key, more than "
                                           "an hour ago: nothing new filed, receipt not shown"),
                    "422": _error_response("this Idempotency-Key filed a tip with other "
                                           "content: nothing filed; use a new key"),
                    "400": _error_response("invalid fields"),
                    "413": _error_response("request larger than the portal accepts"),
                    **limited,
                    **BUSY,
                },
            }},
            "/followup": {"post": {
                "summary": "Status and messages of a tip",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["receipt"],
                    "properties": {"receipt": text}}}}},
                "responses": {
                    "200": {"description": "the tip's progress", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Followup"}}}},
                    "400": _error_response("invalid fields"),
                    "404": _error_response("no tip has this receipt"),
                    **limited,
                    **BUSY,
                },
            }},
            "/followup/messages": {"post": {
                "summary": "Write to the officers handling a tip",
                "parameters": [{
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~+/=-]{32,128}$"},
                    "description": "Optional. A random value made by the client for this one "
                                   "message: sending it again adds nothing and answers 200 "
                                   "with the first message's time (Idempotent-Replayed: true).",
                }],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["receipt", "body"],
                    "properties": {"receipt": text,
                                   "body": {**text, "maxLength": MAX_LENGTH["message"]}}}}}},
                "responses": {
                    "201": {"description": "sent", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {
                            "sent_at": {"type": "string", "format": "date-time"}}}}}},
                    "200": {"description": "sent before with this Idempotency-Key: nothing "
                                           "added", "content": {"application/json": {"schema": {
                                               "type": "object", "properties": {
                                                   "sent_at": {"type": "string",
                                                               "format": "date-time"}}}}}},
                    "400": _error_response("invalid fields"),
                    "404": _error_response("no tip has this receipt"),
                    **limited,
                    **BUSY,
                },
            }},
    }


def components() -> dict[str, Any]:
    text, tip_properties = TEXT, TIP_PROPERTIES
    return {"securitySchemes": {"staffToken": {
            "type": "http", "scheme": "bearer",
            "description": "from POST /staff/token; expires, and DELETE /staff/token revokes it"}},
            "schemas": {
            "Identity": {"type": "object", "additionalProperties": False,
                         "description": "present only for a real-name tip",
                         "required": ["name"],
                         "properties": {
                             "name": {**text, "maxLength": MAX_LENGTH["name"]},
                             "phone": {**text, "maxLength": MAX_LENGTH["phone"]},
                             "id_number": {**text, "pattern": "^[0-9]{17}[0-9Xx]$"},
                             "address": {**text, "maxLength": MAX_LENGTH["address"]},
                             "contact_ok": {"type": "boolean"},
                             "reward": {"type": "boolean"}}},
            "Tip": {"type": "object", "additionalProperties": False, "required": ["narrative"],
                    "properties": tip_properties},
            "Error": {"type": "object", "properties": {
                "errors": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "field name → message in the caller's language"},
                "error": text, "status": {"type": "integer"}}},
            "Categories": {"type": "object", "properties": {"categories": {
                "type": "array", "items": {"type": "object", "properties": {
                    "code": text, "version": {"type": "integer"}, "scope": text,
                    "name": {"type": "object"}, "description": {"type": "object"}}}}}},
            "Followup": {"type": "object", "properties": {
                "status": {"type": "string", "enum": ["received", "accepted", "declined",
                                                      "verifying", "referred", "closed"]},
                "status_text": text,
                "archived": {"type": "boolean", "description": "content destroyed under the "
                             "retention rules: no messages, files or notes remain"},
                "archived_text": {"type": ["string", "null"]},
                "received_at": {"type": "string", "format": "date-time"},
                "updates": {"type": "array", "items": {"type": "object"}},
                "messages": {"type": "array", "items": {"type": "object", "properties": {
                    "from": {"type": "string", "enum": ["reporter", "staff"]},
                    "at": {"type": "string", "format": "date-time"}, "body": text}}},
                "attachments": {"type": "array", "items": {"type": "object"}}}},
        }}


def _bearer(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None,
            parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary, "security": [{"staffToken": []}],
        "responses": {**responses, "401": _error_response("no valid bearer token")}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": body}}}
    if parameters:
        operation["parameters"] = parameters
    if any(p.get("in") == "path" for p in parameters or []):  # an id no row has (or may see)
        operation["responses"].setdefault("404", _error_response("not found"))
    return operation


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _query(name: str, description: str, enum: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if enum:
        schema["enum"] = enum
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


STAFF_ACTIONS = ["classify", "priority", "accept", "decline", "verify", "close", "extend",
                 "transfer", "duplicate", "assign", "message"]


def staff_paths() -> dict[str, Any]:
    ok = {"200": {"description": "done"}}
    return {
        "/staff/token": {
            "post": {"summary": "Sign in (password and TOTP code) for a bearer token",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"type": "object", "required": ["username", "password", "otp"],
                                    "properties": {"username": TEXT, "password": TEXT,
                                                   "otp": TEXT}}}}},
                     "responses": {"201": {"description": "token", "content": {
                         "application/json": {"schema": {"type": "object", "properties": {
                             "token": TEXT, "expires_at": {**TEXT, "format": "date-time"}}}}}},
                         "400": _error_response("the body is not a JSON object"),
                         "401": _error_response("wrong name, password or code (same answer)"),
                         "429": _error_response("throttled; retry_after in seconds")}},
            "delete": _bearer("Revoke this token", {"204": {"description": "revoked"}}),
        },
        "/staff/tips": {"get": _bearer("The queue: tips of the caller's units (metadata only)",
                                       {"200": {"description": "one page and the next cursor"},
                                        "400": _error_response("a filter value that is not "
                                                               "one of its choices")},
                                       parameters=[
            _query("status", "received, accepted, declined, verifying, referred, closed"),
            _query("category", "P01…Z07 or unclassified"),
            _query("county", "a county code or unknown"), _query("channel", "intake channel"),
            _query("language", "the language the tip was filed in; unknown: not recorded",
                   ["zh", "ko", "en", "unknown"]),
            _query("from", "received on or after (YYYY-MM-DD)"),
            _query("to", "received on or before (YYYY-MM-DD)"),
            _query("real_name", "yes or no", ["yes", "no"]),
            _query("attachments", "yes or no", ["yes", "no"]),
            _query("deadline", "due within a working day, or overdue", ["due_soon", "overdue"]),
            _query("sort", "order", ["received", "deadline", "priority"]),
            _query("after", "the `next` cursor of the previous page")])},
        "/staff/counts": {"get": _bearer("Open tips per category", ok)},
        "/staff/tips/{tip_id}": {"get": _bearer(
            "A tip, decrypted with the caller's unit key (audited)",
            {"200": {"description": "the tip"}, "403": _error_response("no key granted"),
             "404": _error_response("no such tip among the caller's")},
            parameters=[_path_id("tip_id")])},
        "/staff/tips/{tip_id}/{action}": {"post": _bearer(
            "An action on a tip", {**ok, "400": _error_response("bad input"),
                                   "403": _error_response("the caller's role may not"),
                                   "404": _error_response("no such tip or action"),
                                   "409": _error_response("not possible in the tip's state")},
            body={"type": "object", "properties": {
                "category": TEXT, "priority": {"type": "integer", "minimum": 0, "maximum": 3},
                "reason": TEXT, "body": TEXT, "days": {"type": "integer", "maximum": 30},
                "unit": TEXT, "user_id": {"type": "integer"},
                "original_id": {"type": "integer"}}},
            parameters=[_path_id("tip_id"), {"name": "action", "in": "path", "required": True,
                                             "schema": {"type": "string",
                                                        "enum": STAFF_ACTIONS}}])},
        "/staff/attachments/{attachment_id}": {"get": _bearer(
            "A file, decrypted, as stored after cleaning (audited as a download): its true "
            "type as Content-Type, its original name in Content-Disposition (RFC 5987)",
            {"200": {"description": "the file"}, "403": _error_response("no key granted")},
            parameters=[_path_id("attachment_id")])},
        "/staff/hotline": {"post": _bearer(
            "Enter a tip for a caller (hotline, petition …); returns the receipt to read back",
            {"201": {"description": "filed"}, "400": _error_response("invalid fields"),
             "403": _error_response("the caller does not take hotline calls")},
            body={"type": "object", "required": ["narrative", "channel"], "properties": {
                **TIP_PROPERTIES, "channel": {"type": "string", "enum": [
                    "hotline", "petition", "inspection_rectification", "enforcement",
                    "routine_inspection", "transfer"]}}})},
    }


def referral_paths() -> dict[str, Any]:
    """The liaison API (a receiving body's own system) and the bureau's referral API."""
    from referral.workflow import TRANSITIONS

    actions = sorted({t.action for t in TRANSITIONS})
    step_body = {"type": "object", "properties": {
        "reason": TEXT, "period": {"type": "string", "enum": ["normal", "check", "major"],
                                   "description": "with sign_receipt: 3, 7 or 30 days"},
        "contact_phone": {**TEXT, "description": "with hand_over: printed on the 移送书"},
        "document_kind": TEXT,
        "tip_files": {"type": "array", "items": {"type": "integer"},
                      "description": "with submit: ids of the case's tips' own files to put "
                                     "into the package (as stored: name, true type, and the "
                                     "location and time a reporter chose to keep); replaces "
                                     "the earlier choice"},
        "tip_texts": {"type": "array", "items": {"type": "integer"},
                      "description": "with submit: ids of the case's tips whose statements go "
                                     "into the package as text files (place, time, who is "
                                     "responsible, what happened; never the reporter's "
                                     "identity); replaces the earlier choice"}}}
    step = {
        "summary": "Take a step of the referral procedure (refused steps change nothing)",
        "requestBody": {"content": {
            "application/json": {"schema": step_body},
            "multipart/form-data": {"schema": {**step_body, "properties": {
                **step_body["properties"],
                "documents": {"type": "array", "items": {"type": "string",
                                                         "format": "binary"}}}}}}},
        "responses": {"200": {"description": "the referral after the step"},
                      "400": _error_response("bad input, or the 移送书 cannot be written "
                                             "(code letter_materials, letter_facts …)"),
                      "403": _error_response("the caller holds no key that opens the case"),
                      "404": _error_response("not a referral the caller may see"),
                      "409": _error_response("the transition table does not allow this step "
                                             "now (code, state)"),
                      "401": _error_response("no valid bearer token")},
    }
    id_param = _path_id("referral_id")
    action_param = {"name": "action", "in": "path", "required": True,
                    "schema": {"type": "string", "enum": actions}}
    paths: dict[str, Any] = {
        "/liaison/token": {"post": {
            "summary": "Sign in as a liaison (same as /staff/token)",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["username", "password", "otp"],
                "properties": {"username": TEXT, "password": TEXT, "otp": TEXT}}}}},
            "responses": {"201": {"description": "token"},
                          "400": _error_response("the body is not a JSON object"),
                          "401": _error_response("wrong name, password or code"),
                          "429": _error_response("throttled; retry_after in seconds")}}},
    }
    for prefix, who in (("/liaison", "addressed to the caller's body"),
                        ("/staff", "of the caller's units")):
        paths[f"{prefix}/referrals"] = {"get": _bearer(
            f"Referrals {who}", {"200": {"description": "referrals"}})}
        paths[f"{prefix}/referrals/{{referral_id}}"] = {"get": _bearer(
            "A referral, its history and the next steps the table allows (each with its legal "
            "basis: the citation as data, basis_text in the caller's language)",
            {"200": {"description": "the referral"}, "404": _error_response("not found")},
            parameters=[id_param])}
        paths[f"{prefix}/referrals/{{referral_id}}/{{action}}"] = {"post": {
            **step, "security": [{"staffToken": []}],
            "parameters": [id_param, action_param]}}
        paths[f"{prefix}/referrals/{{referral_id}}/package"] = {"get": _bearer(
            "The referral package as stored: age-encrypted ZIP (open with the body's key)",
            {"200": {"description": "application/octet-stream"},
             "403": _error_response("the caller holds no key of the referral")},
            parameters=[id_param])}
    return paths
