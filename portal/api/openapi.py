"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal.intake import COUNTIES, MAX_LENGTH

RECEIPT_PATTERN = "^([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}$"


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_document(config: Mapping[str, Any]) -> dict[str, Any]:
    text = {"type": "string"}
    tip_properties: dict[str, Any] = {
        "category": {"type": "string", "pattern": "^(P(0[1-9]|10)|Z0[1-7])$",
                     "description": "P01…P10 or Z01…Z07; omit when not sure"},
        "county": {"type": "string", "enum": [*COUNTIES, "unknown"],
                   "description": "where the problem is; omit or 'unknown' routes to 州本级"},
        "narrative": {**text, "maxLength": MAX_LENGTH["narrative"],
                      "description": "what happened (required)"},
        "place": {**text, "maxLength": MAX_LENGTH["place"]},
        "occurred": {**text, "maxLength": MAX_LENGTH["occurred"]},
        "responsible": {**text, "maxLength": MAX_LENGTH["responsible"]},
        "officials": {**text, "maxLength": MAX_LENGTH["officials"]},
        "keep_photo_location": {"type": "boolean", "default": False},
        "identity": {"$ref": "#/components/schemas/Identity"},
    }
    limited = {"429": _error_response("too many requests from this connection")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Qingliu (清流) tip portal API", "version": "1",
                 "description": "Anonymous by default. Content is encrypted before it is stored; "
                                "the receipt returned by POST /tips is the only key back to the "
                                "tip and cannot be recovered. Error messages follow "
                                "Accept-Language (zh, ko, en)."},
        "servers": [{"url": "/api/v1"}],
        "paths": {
            "/categories": {"get": {
                "summary": "The current 17 clue categories in three languages",
                "responses": {"200": {"description": "categories", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Categories"}}}}},
            }},
            "/tips": {"post": {
                "summary": "File a tip",
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
                    "400": _error_response("invalid fields"),
                    "413": _error_response("request larger than the portal accepts"),
                    **limited,
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
                },
            }},
            "/followup/messages": {"post": {
                "summary": "Write to the officers handling a tip",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["receipt", "body"],
                    "properties": {"receipt": text,
                                   "body": {**text, "maxLength": MAX_LENGTH["message"]}}}}}},
                "responses": {
                    "201": {"description": "sent", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {
                            "sent_at": {"type": "string", "format": "date-time"}}}}}},
                    "400": _error_response("invalid fields"),
                    "404": _error_response("no tip has this receipt"),
                    **limited,
                },
            }},
        },
        "components": {"schemas": {
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
                "received_at": {"type": "string", "format": "date-time"},
                "updates": {"type": "array", "items": {"type": "object"}},
                "messages": {"type": "array", "items": {"type": "object", "properties": {
                    "from": {"type": "string", "enum": ["reporter", "staff"]},
                    "at": {"type": "string", "format": "date-time"}, "body": text}}},
                "attachments": {"type": "array", "items": {"type": "object"}}}},
        }},
    }
