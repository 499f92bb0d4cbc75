"""/api/v1/staff: everything the officer pages do, for the bureau's systems and a future desktop
client. Bearer tokens from POST /staff/token, expiring and revocable; the same rules, decided in
portal/security/access.py; the same services in portal/triage/tip_actions.py."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request, stream_with_context
from flask_babel import gettext

from portal.intake.filing import FieldError, IntakeRejected
from portal.intake.photo_location import PhotoLocation
from portal.intake.schema import HotlineFields, SchemaError, hotline_draft
from portal.security import auth, custody, sessions
from portal.security.access import KeyNotHeld
from portal.security.crypto import CryptoError
from portal.triage import queue as tip_queue
from portal.triage import tip_actions
from portal.web import limits
from portal.web.action_params import ACTION_PARAMS, action_params
from portal.web.api import bp
from portal.web.api.openapi import Operation, documented, error, queue_parameters, sign_in
from portal.web.extensions import db
from portal.web.http import content_disposition
from portal.web.messages import (
    channel_text,
    error_text,
    language_text,
    priority_text,
    refusal_text,
    status_text,
    step_text,
)
from portal.web.queue_filter import queue_filter_from_args
from portal.web.session import Caller, session_store, staff_required


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, "status": status, **extra}), status


@bp.post("/staff/token")
@documented(sign_in(""))
def staff_token() -> tuple[Response, int]:
    """A bearer token for a password and a TOTP code (or, never throttled, a recovery code)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):  # no body, a list, a string or a number is no sign-in
        return _error(400, gettext("Send a JSON object with username, password and otp."))
    username, password = str(data.get("username", "")), str(data.get("password", ""))
    otp = str(data.get("otp", ""))
    cost = current_app.config["LOGIN_ARGON2"]
    try:
        user = auth.check_password_and_code(db.session(), username, password, otp, cost,
                                            current_app.config["SECRET_KEY"])
        personal = custody.unlock_personal(user, password)
    except auth.Throttled as throttled:
        response, status = _error(429, gettext("Too many failed attempts."),
                                  retry_after=throttled.seconds)
        response.headers["Retry-After"] = str(throttled.seconds)
        return response, status
    except (auth.AuthenticationFailed, auth.SecondFactorFailed, CryptoError):
        db.session.commit()
        return _error(401, gettext("Wrong username, password or code."))
    opened = sessions.issue_token(db.session(), session_store(), user, personal)
    db.session.commit()
    return jsonify({"token": opened.token, "expires_at": opened.expires_at.isoformat()}), 201


@bp.delete("/staff/token")
@documented(Operation(summary="Revoke this token", bearer=True,
                      responses={"204": "revoked"}))
@staff_required(api=True)
def staff_token_revoke(caller: Caller) -> tuple[Response, int]:
    sessions.revoke_token(db.session(), session_store(), caller.session)
    db.session.commit()
    return jsonify({}), 204


def _row(row: tip_queue.QueueRow) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "status_text": status_text(row.status),
            "unit": row.unit_code, "county": row.county, "category": row.category_code,
            "channel": row.channel, "channel_text": channel_text(row.channel),
            "language": row.language, "language_text": language_text(row.language),
            "priority": row.priority, "priority_text": priority_text(row.priority),
            "real_name": row.real_name,
            "attachments": row.attachment_count, "received_at": row.received_at.isoformat(),
            "due_at": row.due_at.isoformat() if row.due_at else None,
            "due_step": row.due_step, "due_step_text": step_text(row.due_step)
            if row.due_step else None,
            "due_certain": row.due_certain, "deadline_state": row.deadline_state,
            "assigned_to": row.assigned_to_id, "archived": row.archived}


@bp.get("/staff/tips")
@documented(Operation(
    summary="The queue: tips of the caller's units (metadata only)", bearer=True,
    parameters=queue_parameters(),
    responses={"200": "one page and the next cursor",
               "400": error("a filter value that is not one of its choices, or a cursor that "
                            "is not one")}))
@staff_required(api=True)
def staff_queue(caller: Caller) -> tuple[Response, int]:
    filters, errors = queue_filter_from_args()
    if errors:
        return jsonify({"errors": {name: error_text(FieldError(code))
                                   for name, code in errors.items()}}), 400
    try:
        page = tip_queue.queue(db.session(), caller.principal, filters)
    except tip_actions.Refused as refused:
        return _error(400, refusal_text(refused.code))
    return jsonify({"tips": [_row(r) for r in page.rows], "next": page.next_cursor}), 200


@bp.get("/staff/counts")
@documented(Operation(summary="Open tips per category", bearer=True,
                      responses={"200": "counts by category code"}))
@staff_required(api=True)
def staff_counts(caller: Caller) -> tuple[Response, int]:
    counts = tip_queue.category_counts(db.session(), caller.principal)
    return jsonify({"open_by_category": {code or "unclassified": n
                                         for code, n in counts.items()}}), 200


@bp.get("/staff/tips/<int:tip_id>")
@documented(Operation(
    summary="A tip, decrypted with the caller's unit key (audited)", bearer=True,
    responses={"200": "the tip", "403": error("no key granted")}))
@staff_required(api=True)
def staff_tip(caller: Caller, tip_id: int) -> tuple[Response, int]:
    try:
        detail = tip_actions.open_tip(db.session(), caller.principal, tip_id)
    except tip_actions.NotFound:
        return _error(404, gettext("This page does not exist."))
    except KeyNotHeld:
        return _error(403, gettext("You have not been granted this unit's key"))
    tip = detail.tip
    return jsonify({
        "id": tip.id, "status": tip.status, "unit": tip.unit.code,
        "category": tip.category.code if tip.category else None,
        "category_version": tip.category.version if tip.category else None,
        "channel": tip.channel, "language": tip.language, "priority": tip.priority,
        "real_name": tip.real_name,
        # Whether the reporter may be contacted and is interested in a reward; never who they
        # are (the identity is sealed apart, to the custodians: portal/intake/identity.py).
        "reporter": detail.content.get("reporter"),
        "received_at": tip.received_at.isoformat(),
        "due_step": tip.due_step, "due_at": tip.due_at.isoformat() if tip.due_at else None,
        "due_certain": tip.due_certain, "extended": tip.extended,
        "duplicate_of": tip.duplicate_of_id, "assigned_to": tip.assigned_to_id,
        # Destroyed under the retention rule: content {}, no files or messages, the record kept.
        "archived_at": tip.archived_at.isoformat() if tip.archived_at else None,
        "legal_hold": tip.legal_hold,
        "content": detail.content,
        "attachments": [{"id": a.id, "filename": a.filename, "media_type": a.media_type,
                         "family": a.family, "size": a.size, "uncleaned": a.uncleaned,
                         "location": _location(a.location)}
                        for a in detail.attachments],
        "messages": [{"id": m.id, "from": m.author, "at": m.at.isoformat(), "body": m.body}
                     for m in detail.messages],
        "updates": [{"status": u.status, "at": u.at.isoformat(), "note": u.note}
                    for u in detail.updates],
        "related": detail.related,
    }), 200


def _location(location: PhotoLocation | None) -> dict[str, Any] | None:
    """Where and when a photo was taken, when the reporter kept them: decimal degrees (north
    and east positive) and the camera's clock as it wrote it."""
    if location is None:
        return None
    return {"latitude": None if location.latitude is None else round(location.latitude, 5),
            "longitude": None if location.longitude is None else round(location.longitude, 5),
            "taken": location.taken}


@bp.post("/staff/tips/<int:tip_id>/<action>")
@documented(Operation(
    summary="An action on a tip", bearer=True, variants={"action": ACTION_PARAMS},
    responses={"200": "done", "400": error("bad input"),
               "403": error("the caller's role may not, or holds no key"),
               "409": error("not possible in the tip's state")}))
@staff_required(api=True)
def staff_tip_action(caller: Caller, tip_id: int, action: str) -> tuple[Response, int]:
    params = request.get_json(silent=True)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return _error(400, error_text(FieldError("invalid_json")))
    try:
        tip_actions.perform(db.session(), caller.principal, tip_id, action,
                            action_params(action, params))
    except tip_actions.NotFound:
        return _error(404, gettext("This page does not exist."))
    except KeyNotHeld:
        return _error(403, gettext("You have not been granted this unit's key"))
    except tip_actions.Refused as refused:
        status = 403 if refused.code == "not_allowed" else (
            409 if refused.code in tip_actions.CONFLICTS else 400)
        return _error(status, refusal_text(refused.code), code=refused.code)
    return jsonify({"done": action}), 200


@bp.get("/staff/attachments/<int:attachment_id>")
@documented(Operation(
    summary="A file, decrypted, as stored after cleaning (audited as a download): its true "
            "type as Content-Type, its original name in Content-Disposition (RFC 5987)",
    bearer=True, responses={"200": "the file", "403": error("no key granted")}))
@staff_required(api=True)
def staff_attachment(caller: Caller, attachment_id: int) -> Response | tuple[Response, int]:
    try:
        out = tip_actions.open_attachment(db.session(), caller.principal, attachment_id)
    except tip_actions.NotFound:
        return _error(404, gettext("This page does not exist."))
    except KeyNotHeld:
        return _error(403, gettext("You have not been granted this unit's key"))
    return Response(stream_with_context(out.chunks), mimetype=out.media_type,
                    headers={"Content-Disposition": content_disposition(out.filename),
                             "Content-Length": str(out.size)})


@bp.post("/staff/hotline")
@documented(Operation(
    summary="Enter a tip for a caller (hotline, petition …); returns the receipt to read back",
    bearer=True, body=HotlineFields,
    responses={"201": "filed", "403": error("the caller does not take hotline calls")}))
@staff_required(api=True)
def staff_hotline(caller: Caller) -> tuple[Response, int]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _error(400, error_text(FieldError("invalid_json")))
    try:
        draft = hotline_draft(data, values=False)
        if tip_actions.may_enter_calls(caller.principal):
            # Who may enter calls is answered first (403 below); then the values as sent (a
            # length counts what was sent, as the document says, before spaces are trimmed).
            draft = hotline_draft(data)
        filed = tip_actions.hotline_tip(db.session(), caller.principal, draft, limits=limits(),
                                   receipt_cost=current_app.config["RECEIPT_ARGON2"])
    except (SchemaError, IntakeRejected) as rejected:
        return jsonify({"errors": {k: error_text(v) for k, v in rejected.errors.items()}}), 400
    except tip_actions.Refused as refused:
        return _error(403, refusal_text(refused.code))
    return jsonify({"tip_id": filed.tip_id, "receipt": filed.receipt}), 201
