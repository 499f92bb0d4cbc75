"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json, generated from the
routes and the schemas rather than written by hand.

Every API view declares its operation with `@documented(...)`: a summary, the request body's
model, the parameters and the answers it gives. `openapi_document` walks the app's URL map for
the API blueprint, so a route without a declaration fails tests/functional/test_openapi.py, and
a path in the document always has its route. Request bodies are the pydantic models of
portal/intake/schema.py and portal/web/action_params.py (model_json_schema): the document checks
what the code checks. Each action on a tip is an operation of its own, with its own body.

Answers every operation may give are added here once: 503 (busy or down: send again after
Retry-After), 429 (throttled), 401 where a bearer token is required, 404 where the path names an
object, 400 and 413 where there is a body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import AnyConverter, IntegerConverter

from models import Category, Channel, TipStatus
from portal.intake.schema import (
    COUNTIES,
    LANGUAGES,
    MAX_LENGTH,
    FollowupMessage,
    FollowupRequest,
    HotlineFields,
    TipFields,
    caseless,
)
from portal.web.action_params import ACTION_PARAMS
from portal.web.http import MAX_ROW_ID

RECEIPT_PATTERN = "^([0-9A-HJKMNP-TV-Z]{4}-){4}[0-9A-HJKMNP-TV-Z]{4}$"
IDEMPOTENCY_PATTERN = "^[A-Za-z0-9._~+/=-]{32,128}$"
# The queue's cursor is opaque (the `next` of the page before); tests/fuzzing_api.py tells
# Schemathesis what a valid one is.
CURSOR_FORMAT = "queue-cursor"
TEXT = {"type": "string"}
ROW_ID = {"type": "integer", "minimum": 0, "maximum": MAX_ROW_ID}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
MODELS: tuple[type[BaseModel], ...] = (TipFields, HotlineFields, FollowupRequest,
                                       FollowupMessage, *dict.fromkeys(ACTION_PARAMS.values()))

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    """What one API view takes and answers. `body`: a pydantic model or a JSON schema of a JSON
    body; `multipart`: the schema of a multipart body too; `responses`: status → description,
    or → (description, JSON schema of the answer); `path`: schemas of path variables (an int
    converter is documented by itself); `variants`: a path variable whose values are operations
    of their own."""

    summary: str
    responses: Mapping[str, str | tuple[str, dict[str, Any]]]
    body: type[BaseModel] | dict[str, Any] | None = None
    body_required: bool = True
    multipart: dict[str, Any] | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    path: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    bearer: bool = False
    description: str | None = None
    # One operation per value of a path variable, each with its own body: {variable: {value:
    # model}} (the tip actions: /staff/tips/{tip_id}/classify, …/priority …).
    variants: Mapping[str, Mapping[str, type[BaseModel]]] = field(default_factory=dict)
    fixed: Mapping[str, str] = field(default_factory=dict)  # the variable a variant fills in


def documented(operation: Operation) -> Callable[[View], View]:
    """Declare a view's operation in the document."""
    def mark(view: View) -> View:
        view.openapi = operation  # type: ignore[attr-defined]  # a mark on the function
        return view
    return mark


def error(description: str) -> tuple[str, dict[str, Any]]:
    return description, ERROR_REF


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def header(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema,
            "description": description}


def choice(values: list[str] | tuple[str, ...], *, empty: bool = True) -> dict[str, Any]:
    return {"type": "string", "enum": [*([""] if empty else []), *values]}


# ---------------------------------------------------------------------------------------------
# Declarations that several views share (the views declare themselves with @documented)

SIGN_IN = {"type": "object", "required": ["username", "password", "otp"],
           "properties": {"username": TEXT, "password": TEXT, "otp": TEXT}}
TOKEN = {"type": "object", "properties": {"token": TEXT,
                                          "expires_at": {**TEXT, "format": "date-time"}}}


def sign_in(who: str) -> Operation:
    return Operation(
        summary=f"Sign in{who} (password and TOTP code, or a recovery code) for a bearer token",
        body=SIGN_IN,
        responses={"201": ("the token", TOKEN),
                   "400": error("the body is not a JSON object"),
                   "401": error("wrong name, password or code (the same answer for each)"),
                   "429": error("throttled; retry_after in seconds")})


def referral_list(who: str) -> Operation:
    return Operation(
        summary=f"Referrals {who}, newest first, a page at a time", bearer=True,
        parameters=(query("before", "the `next` of the previous page: referrals older than "
                                    "this id", ROW_ID),),
        responses={"200": "a page of referrals, how many there are in all, and `next` (null "
                          "on the last page)",
                   "400": error("a `before` that is not an id")})


def referral_detail() -> Operation:
    return Operation(
        summary="A referral, its history and the next steps the table allows (each with its "
                "legal basis: the citation as data, basis_text in the caller's language)",
        bearer=True, responses={"200": "the referral"})


def referral_step() -> Operation:
    step_body: dict[str, Any] = {"type": "object", "properties": {
        "reason": TEXT, "period": {"type": "string", "enum": ["normal", "check", "major"],
                                   "description": "with sign_receipt: 3, 7 or 30 days"},
        "contact_phone": {**TEXT, "description": "with hand_over: printed on the 移送书"},
        "document_kind": TEXT,
        "tip_files": {"type": "array", "items": ROW_ID,
                      "description": "with submit: ids of the case's tips' own files to put "
                                     "into the package; replaces the earlier choice"},
        "tip_texts": {"type": "array", "items": ROW_ID,
                      "description": "with submit: ids of the case's tips whose statements go "
                                     "into the package as text files (never the reporter's "
                                     "identity); replaces the earlier choice"}}}
    documents = {**step_body, "properties": {**step_body["properties"], "documents": {
        "type": "array", "items": {"type": "string", "format": "binary"}}}}
    return Operation(
        summary="Take a step of the referral procedure (refused steps change nothing)",
        bearer=True, body=step_body, body_required=False, multipart=documents,
        responses={"200": "the referral after the step",
                   "400": error("bad input, or the 移送书 cannot be written (code "
                                "letter_materials, letter_facts …)"),
                   "403": error("the caller holds no key that opens the case"),
                   "409": error("the transition table does not allow this step now "
                                "(code, state)")})


def referral_package() -> Operation:
    return Operation(
        summary="The referral package as stored: age-encrypted ZIP (open with the body's key)",
        bearer=True, responses={"200": "application/octet-stream",
                                "403": error("the caller holds no key of the referral")})


def queue_parameters() -> tuple[dict[str, Any], ...]:
    day = {"type": "string", "anyOf": [{"enum": [""]}, {
        "format": "date", "pattern": "^(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$"}]}
    return (
        query("status", "the tip's state", choice(tuple(TipStatus))),
        query("category", "a category's code, or unclassified", {"type": "string"}),
        query("county", "a county, or unknown", choice((*COUNTIES, "unknown"))),
        query("channel", "intake channel", choice(tuple(Channel))),
        query("language", "the language the tip was filed in; unknown: not recorded",
              choice((*LANGUAGES, "unknown"))),
        query("from", "received on or after (YYYY-MM-DD)", day),
        query("to", "received on or before (YYYY-MM-DD)", day),
        query("real_name", "yes or no", choice(("yes", "no"))),
        query("attachments", "yes or no", choice(("yes", "no"))),
        query("deadline", "due within a working day, or overdue", choice(("due_soon",
                                                                           "overdue"))),
        query("sort", "order", choice(("received", "deadline", "priority"))),
        query("after", "the `next` cursor of the previous page",
              {"type": "string", "format": CURSOR_FORMAT}),
    )


# ---------------------------------------------------------------------------------------------
# The generator


def operations(app: Flask) -> Iterator[tuple[str, str, Any, Operation | None]]:
    """(path in the document, method, rule, declaration) for every API route and method; a
    route whose declaration has variants gives one path per variant."""
    prefix = "/api/v1"
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        declared = getattr(app.view_functions[rule.endpoint], "openapi", None)
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix(prefix))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if declared is None or not declared.variants:
                yield path, method.lower(), rule, declared
                continue
            for name, bodies in declared.variants.items():
                for value, model in bodies.items():
                    yield (path.replace("{" + name + "}", value), method.lower(), rule,
                           replace(declared, summary=f"{declared.summary}: {value}",
                                   body=model, body_required=_has_required(model),
                                   variants={}, fixed={name: value}))


def _has_required(model: type[BaseModel]) -> bool:
    return any(info.is_required() for info in model.model_fields.values())


def _body(operation: Operation) -> dict[str, Any] | None:
    if operation.body is None:
        return None
    schema = operation.body if isinstance(operation.body, dict) else {
        "$ref": f"#/components/schemas/{operation.body.model_config.get('title')}"}
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if operation.multipart is not None:
        content["multipart/form-data"] = {"schema": operation.multipart}
    return {"required": operation.body_required, "content": content}


def _answer(status: str, value: str | tuple[str, dict[str, Any]]) -> dict[str, Any]:
    if isinstance(value, str):
        return {"description": value}
    description, schema = value
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(app: Flask, rule: Any, operation: Operation) -> dict[str, Any]:
    parameters = [*operation.parameters]
    for name, converter in rule._converters.items():  # in the order of the path
        if name in operation.fixed:
            continue
        schema = operation.path.get(name) or (
            {"type": "integer", "minimum": 0, **({"maximum": converter.max} if converter.max
                                                 else {})}
            if isinstance(converter, IntegerConverter)
            else choice(sorted(converter.items), empty=False)
            if isinstance(converter, AnyConverter)
            else {"type": "string", "pattern": "^[^/]+$"})
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    responses = {status: _answer(status, value) for status, value in
                 operation.responses.items()}
    common: dict[str, tuple[str, dict[str, Any]]] = {
        "429": error("too many requests from this connection"),
        "503": error("the portal is busy or cannot store now: nothing was stored; send the "
                     "same request again after Retry-After seconds")}
    if operation.bearer:
        common["401"] = error("no valid bearer token")
    if rule._converters:
        common["404"] = error("not found, or not among the caller's")
    if operation.body is not None:
        common["400"] = error("invalid fields (each named, in the caller's language)")
        common["413"] = error("request larger than the portal accepts")
    for status, value in common.items():
        responses.setdefault(status, _answer(status, value))
    responses["503"]["headers"] = {"Retry-After": {
        "description": "seconds to wait before sending the request again",
        "schema": {"type": "integer"}}}
    result: dict[str, Any] = {"summary": operation.summary, "responses": dict(
        sorted(responses.items()))}
    if operation.description:
        result["description"] = operation.description
    if parameters:
        result["parameters"] = parameters
    body = _body(operation)
    if body is not None:
        form = body["content"].get("multipart/form-data", {}).get("schema", {})
        files = form.get("properties", {}).get("attachments")
        if files is not None:  # as many files as this portal takes
            files["maxItems"] = app.config["MAX_FILES"]
        result["requestBody"] = body
    if operation.bearer:
        result["security"] = [{"staffToken": []}]
    return result


def _components(categories: list[str]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in MODELS:
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(generated.pop("$defs", {}))
        schemas[str(model.model_config.get("title"))] = generated
    for schema in schemas.values():  # a required field has no default
        for name in schema.get("required", []):
            schema["properties"][name].pop("default", None)
    # The category is checked against the database's current codes: named here from it.
    category = {"anyOf": [{"type": "string", "pattern": caseless(["", *categories])},
                          {"type": "null"}],
                "description": "a current category's code (GET /categories); omit when not "
                               "sure"}
    for name in ("Tip", "HotlineTip"):
        schemas[name]["properties"]["category"] = category
    schemas["TipActionClassify"]["properties"]["category"] = {
        "type": "string", "pattern": caseless(categories),
        "description": "a current category's code (GET /categories)"}
    schemas.update({
        "Error": {"type": "object", "properties": {
            "errors": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "field name → message in the caller's language"},
            "error": TEXT, "status": {"type": "integer"}}},
        "Categories": {"type": "object", "properties": {"categories": {
            "type": "array", "items": {"type": "object", "properties": {
                "code": TEXT, "version": {"type": "integer"}, "scope": TEXT,
                "name": {"type": "object"}, "description": {"type": "object"}}}}}},
        "Followup": {"type": "object", "properties": {
            "status": {"type": "string", "enum": list(TipStatus)},
            "status_text": TEXT,
            "archived": {"type": "boolean", "description": "content destroyed under the "
                         "retention rules: no messages, files or notes remain"},
            "archived_text": {"type": ["string", "null"]},
            "received_at": {"type": "string", "format": "date-time"},
            "updates": {"type": "array", "items": {"type": "object"}},
            "messages": {"type": "array", "items": {"type": "object", "properties": {
                "from": {"type": "string", "enum": ["reporter", "staff"]},
                "at": {"type": "string", "format": "date-time"}, "body": TEXT}}},
            "attachments": {"type": "array", "items": {"type": "object"}}}},
    })
    return {"securitySchemes": {"staffToken": {
        "type": "http", "scheme": "bearer",
        "description": "from POST /staff/token; expires, and DELETE /staff/token revokes it"}},
        "schemas": schemas}


def current_categories(session: Session) -> list[str]:
    return list(session.scalars(select(Category.code).where(Category.current.is_(True))
                                .order_by(Category.sort_order)))


def openapi_document(app: Flask, categories: list[str]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, method, rule, declared in operations(app):
        if declared is None:
            continue  # tests/functional/test_openapi.py names it
        paths.setdefault(path, {})[method] = _operation(app, rule, declared)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Qingliu (清流) tip portal API", "version": "1",
                 "description": "Anonymous by default. Content is encrypted before it is stored; "
                                "the receipt returned by POST /tips is the only key back to the "
                                "tip and cannot be recovered. Error messages follow "
                                "Accept-Language (zh, ko, en)."},
        "servers": [{"url": "/api/v1"}],
        "paths": dict(sorted(paths.items())),
        "components": _components(categories),
    }


def tip_multipart() -> dict[str, Any]:
    """POST /tips as a multipart form: the Tip's fields as text, the identity as JSON text,
    and the files."""
    tip = TipFields.model_json_schema(ref_template="#/components/schemas/{model}")
    properties = {name: _as_text(schema) for name, schema in tip["properties"].items()
                  if name != "identity"}
    properties["identity"] = {"type": "string", "contentMediaType": "application/json",
                              "description": "the Identity object as JSON text"}
    properties["attachments"] = {"type": "array",
                                 "items": {"type": "string", "format": "binary"}}
    return {"type": "object", "properties": properties, "required": ["narrative"],
            "additionalProperties": False}


def _as_text(schema: dict[str, Any]) -> dict[str, Any]:
    """A form part is text: the JSON schema's string variant of a field."""
    schema = {k: v for k, v in schema.items() if k != "default"}
    if "anyOf" in schema:
        strings = [s for s in schema["anyOf"] if s.get("type") == "string"]
        return {**{k: v for k, v in schema.items() if k != "anyOf"}, **strings[0]}
    if schema.get("type") == ["string", "null"]:
        return {**schema, "type": "string"}
    return schema


__all__ = ["MAX_LENGTH", "Operation", "documented", "error", "header", "openapi_document"]
