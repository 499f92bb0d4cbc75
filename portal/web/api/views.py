"""/api/v1: categories, tips, follow-up. Thin: parse with the schema, call the domain, answer."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request
from flask_babel import gettext
from sqlalchemy import select

from models import Category, Channel
from portal.intake import filing, followup, receipts
from portal.intake.filing import FieldError, IntakeRejected
from portal.intake.schema import (
    FollowupMessage,
    FollowupRequest,
    SchemaError,
    TipFields,
    receipt_and_body,
    tip_draft,
)
from portal.web import limits, uploads_from
from portal.web.api import bp
from portal.web.api.openapi import (
    IDEMPOTENCY_PATTERN,
    RECEIPT_PATTERN,
    Operation,
    current_categories,
    documented,
    error,
    header,
    openapi_document,
    tip_multipart,
)
from portal.web.extensions import db
from portal.web.http import LOCALES
from portal.web.messages import error_text, status_text


def _errors(errors: dict[str, FieldError]) -> tuple[Response, int]:
    return jsonify({"errors": {k: error_text(v) for k, v in errors.items()}}), 400


def _json_body() -> Any:
    data = request.get_json(silent=True)
    if data is None:
        raise SchemaError({"_request": FieldError("invalid_json")})
    return data


@bp.get("/openapi.json")
@documented(Operation(summary="This document", responses={"200": "the OpenAPI document"}))
def openapi() -> Response:
    return jsonify(openapi_document(current_app, current_categories(db.session())))


@bp.get("/categories")
@documented(Operation(summary="The current clue categories in three languages", responses={
    "200": ("the categories", {"$ref": "#/components/schemas/Categories"})}))
def categories() -> Response:
    rows = db.session.scalars(
        select(Category).where(Category.current.is_(True)).order_by(Category.sort_order)
    )
    return jsonify({"categories": [
        {"code": c.code, "version": c.version, "scope": c.scope,
         "name": {"zh": c.name_zh, "ko": c.name_ko, "en": c.name_en},
         "description": {"zh": c.description_zh, "ko": c.description_ko,
                         "en": c.description_en}}
        for c in rows
    ]})


def _request_language() -> str | None:
    """Without an explicit "language" field, a tip is in the language the client asked to be
    answered in (?lang= or Accept-Language); None (unknown) when it named none we speak."""
    chosen = request.args.get("lang")
    if chosen in LOCALES:
        return chosen
    return request.accept_languages.best_match(list(LOCALES))


RECEIPT = {"type": "object", "required": ["receipt"],
           "properties": {"receipt": {"type": "string", "pattern": RECEIPT_PATTERN}}}
SENT_AT = {"type": "object", "properties": {"sent_at": {"type": "string", "format": "date-time"}}}


@bp.post("/tips")
@documented(Operation(
    summary="File a tip", body=TipFields, multipart=tip_multipart(),
    parameters=(header("Idempotency-Key", "Optional. A random value of at least 128 bits made "
                       "by the client for this one tip (e.g. a UUID v4 or 32 hex digits) and "
                       "kept secret like the receipt. Sending the same key again with the same "
                       "content files nothing: within an hour of filing the answer is 200 with "
                       "the same receipt (header Idempotent-Replayed: true), later 409. The key "
                       "is never stored, only a keyed hash of it; the receipt is derived from "
                       "it.", {"type": "string", "pattern": IDEMPOTENCY_PATTERN}),),
    responses={"201": ("filed", RECEIPT),
               "200": ("filed before with this Idempotency-Key: the same receipt, nothing new "
                       "filed", RECEIPT),
               "409": error("filed before with this Idempotency-Key, more than an hour ago: "
                            "nothing new filed, receipt not shown"),
               "422": error("this Idempotency-Key filed a tip with other content: nothing "
                            "filed; use a new key")}))
def create_tip() -> tuple[Response, int]:
    try:
        if request.mimetype == "multipart/form-data":
            fields = request.form.to_dict()
            if None in fields:  # a part without a name: unknown too, named as text
                fields["None"] = fields.pop(None)  # type: ignore[call-overload]  # werkzeug's key for it
            if "attachments" in fields:  # files are file parts, not text
                raise SchemaError({"attachments": FieldError("invalid_type")})
            draft = tip_draft(fields, Channel.API, text_identity=True)
            uploads = uploads_from(request.files.getlist("attachments"))
        else:
            data = _json_body()
            if not isinstance(data, dict):
                raise SchemaError({"_request": FieldError("invalid_json")})
            if "attachments" in data:  # files come only in a multipart form
                raise SchemaError({"attachments": FieldError("invalid_type")})
            draft = tip_draft(data, Channel.API)
            uploads = []
        draft.language = draft.language or _request_language()
        once = _idempotency()
        filed = filing.file_tip(db.session(), draft, uploads, limits=limits(),
                                receipt_cost=current_app.config["RECEIPT_ARGON2"], once=once)
    except (SchemaError, IntakeRejected) as rejected:
        return _errors(rejected.errors)
    except filing.AlreadyFiled as earlier:
        # The same Idempotency-Key again (a retry after a lost answer): nothing new is filed.
        if earlier.receipt is None:
            return jsonify({"error": "already_filed", "status": 409}), 409
        response = jsonify({"receipt": earlier.receipt})
        response.headers["Idempotent-Replayed"] = "true"
        return response, 200
    except filing.FormReused:
        return jsonify({"error": "idempotency_key_reused", "status": 422}), 422
    return jsonify({"receipt": filed.receipt}), 201


def _idempotency(kind: receipts.SubmissionKind = "api") -> receipts.Once | None:
    """The optional Idempotency-Key header, as a one-time submission (portal/intake/receipts.py)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    submission = receipts.api_submission(key.strip(), kind)
    if submission is None:
        raise SchemaError({"Idempotency-Key": FieldError("weak_idempotency_key")})
    return submission.bind(receipts.SubmissionSecrets.from_secret_key(
        current_app.config["SECRET_KEY"]))


def _not_found() -> tuple[Response, int]:
    return jsonify({"error": "not_found", "status": 404}), 404


@bp.post("/followup")
@documented(Operation(
    summary="Status and messages of a tip", body=FollowupRequest,
    responses={"200": ("the tip's progress", {"$ref": "#/components/schemas/Followup"}),
               "404": error("no tip has this receipt")}))
def followup_status() -> tuple[Response, int]:
    try:
        receipt, _ = receipt_and_body(_json_body(), need_body=False)
        key = followup.unlock(db.session(), receipt, current_app.config["RECEIPT_ARGON2"])
    except SchemaError as rejected:
        return _errors(rejected.errors)
    except followup.ReceiptNotFound:
        return _not_found()
    view = followup.reporter_view(db.session(), key)
    return jsonify({
        "status": view.status,
        "status_text": status_text(view.status),
        # Its content destroyed under the retention rules: no messages, files or notes remain.
        "archived": view.archived,
        "archived_text": gettext("This report has been archived: its content was destroyed "
                                 "under the retention rules.") if view.archived else None,
        "received_at": view.received_at.isoformat(),
        "updates": [{"status": u.status, "status_text": status_text(u.status),
                     "at": u.at.isoformat(), "note": u.note} for u in view.updates],
        "messages": [{"from": m.author, "at": m.at.isoformat(), "body": m.body}
                     for m in view.messages],
        "attachments": [{"filename": a.filename, "family": a.family, "size": a.size}
                        for a in view.attachments],
    }), 200


@bp.post("/followup/messages")
@documented(Operation(
    summary="Write to the officers handling a tip", body=FollowupMessage,
    parameters=(header("Idempotency-Key", "Optional. A random value made by the client for "
                       "this one message: sending it again adds nothing and answers 200 with "
                       "the first message's time (Idempotent-Replayed: true).",
                       {"type": "string", "pattern": IDEMPOTENCY_PATTERN}),),
    responses={"201": ("sent", SENT_AT),
               "200": ("sent before with this Idempotency-Key: nothing added", SENT_AT),
               "404": error("no tip has this receipt"),
               "422": error("this Idempotency-Key was used for a message to another tip: "
                            "nothing was sent")}))
def followup_message() -> tuple[Response, int]:
    try:
        receipt, body = receipt_and_body(_json_body(), need_body=True)
        once = _idempotency("api_message")
        key = followup.unlock(db.session(), receipt, current_app.config["RECEIPT_ARGON2"])
        message = followup.reply(db.session(), key, body, [], limits=limits(),
                                 once=once.index if once else None)
    except (SchemaError, IntakeRejected) as rejected:
        return _errors(rejected.errors)
    except followup.ReceiptNotFound:
        return _not_found()
    except followup.AlreadySent as earlier:
        # The same Idempotency-Key again (a retry after a lost answer): added once.
        response = jsonify({"sent_at": earlier.sent_at.isoformat()})
        response.headers["Idempotent-Replayed"] = "true"
        return response, 200
    except filing.FormReused:
        # The key of a message sent to another tip: a key stands for one message.
        return jsonify({"error": "idempotency_key_reused", "status": 422}), 422
    return jsonify({"sent_at": message.created_at.isoformat()}), 201
