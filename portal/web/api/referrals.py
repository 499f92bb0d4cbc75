"""/api/v1/liaison (a receiving body's own system) and /api/v1/staff/referrals (the bureau's):
list referrals, read one, take a step. Token-authenticated like the staff API; every step is
checked by referral/workflow.py, and a step the table does not allow answers 409 and changes
nothing."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, stream_with_context
from flask_babel import gettext

from models import Referral
from portal.cases import referrals
from portal.cases.packages import package_download
from portal.intake.filing import IntakeRejected
from portal.security import crypto
from portal.security.access import KeyNotHeld
from portal.web import limits, row_id, uploads_from
from portal.web.api import bp
from portal.web.api.openapi import (
    documented,
    referral_detail,
    referral_list,
    referral_package,
    referral_step,
    sign_in,
)
from portal.web.api.staff import _error, staff_token
from portal.web.extensions import db
from portal.web.messages import NO_KEY, basis_text, error_text, state_text, step_refusal_text
from portal.web.referral_pages import letter_context
from portal.web.session import Caller, staff_required
from referral.workflow import TransitionRefused


def _summary(referral: Referral) -> dict[str, Any]:
    return {"id": referral.id, "case_number": referral.case.number,
            "offence": referral.case.offence.name_zh if referral.case.offence else None,
            "legal_basis": referral.case.offence.basis if referral.case.offence else None,
            "receiving_body": referral.receiving_unit.code,
            "copy_to": referral.copy_unit.code if referral.copy_unit else None,
            "state": referral.state, "state_text": state_text(referral.state),
            "state_since": referral.state_since.isoformat(),
            "due_step": referral.due_step,
            "due_at": referral.due_at.isoformat() if referral.due_at else None,
            "due_certain": referral.due_certain, "has_package": referral.package_id is not None,
            "letter_sha256": referral.letter_sha256}


def _list(caller: Caller, mine_only: bool) -> tuple[Response, int]:
    """Referrals addressed to the caller's body (liaisons), or all the caller may see."""
    text = request.args.get("before")
    before = None if text is None else row_id(text)
    if text is not None and before is None:
        return _error(400, gettext("Ask for the next page with the number given as next."))
    listing = referrals.addressed_to if mine_only else referrals.visible_referrals
    page = listing(db.session(), caller.principal, before)
    return jsonify({"referrals": [_summary(r) for r in page.rows], "total": page.total,
                    "next": page.older}), 200


def _detail(caller: Caller, referral_id: int) -> tuple[Response, int]:
    try:
        referral = referrals.get_referral(db.session(), caller.principal, referral_id)
    except referrals.NotFound:
        return _error(404, gettext("This page does not exist."))
    try:
        reasons = referrals.referral_reasons(db.session(), caller.principal, referral)
    except (KeyNotHeld, crypto.CryptoError):
        reasons = {}
    return jsonify({
        **_summary(referral),
        "events": [{"action": e.action, "from": e.from_state, "to": e.to_state,
                    "at": e.at.isoformat(), "role": e.actor_role,
                    "due_at": e.due_at.isoformat() if e.due_at else None,
                    "on_time": e.on_time, "reason": reasons.get(e.id)}
                   for e in referral.events],
        "next_actions": [{"action": t.action, "needs_reason": t.needs_reason,
                          "documents": list(t.documents), "basis": t.basis,
                          "basis_text": basis_text(t)}
                         for t in referrals.available_actions(caller.principal, referral)],
    }), 200


def _act(caller: Caller, referral_id: int, action: str) -> tuple[Response, int]:
    if request.mimetype == "multipart/form-data":
        params: dict[str, Any] = request.form.to_dict()
        uploads = uploads_from(request.files.getlist("documents"))
    else:
        params = request.get_json(silent=True) or {}
        uploads = []
    if not isinstance(params, dict):
        return _error(400, gettext("A value in the form is not valid."))
    # With submit: the tips' own files, and the tips whose statements, to send.
    chosen: dict[str, list[int] | None] = {}
    for name in ("tip_files", "tip_texts"):
        values = (request.form.getlist(name) if request.mimetype == "multipart/form-data"
                  else params.get(name))
        if values is not None and (not isinstance(values, list) or not all(
                row_id(x) is not None for x in values)):
            return _error(400, gettext("A value in the form is not valid."))
        if request.mimetype == "multipart/form-data" and name not in request.form:
            values = None
        chosen[name] = [row_id(x) or 0 for x in values] if values is not None else None
    try:
        referral = referrals.act(
            db.session(), caller.principal, referral_id, action,
            reason=str(params.get("reason", "")), period=str(params.get("period", "normal")),
            uploads=uploads, document_kind=params.get("document_kind") or None,
            limits=limits(),
            letter_context=letter_context(action, str(params.get("contact_phone", ""))),
            tip_files=chosen["tip_files"], tip_texts=chosen["tip_texts"])
    except referrals.NotFound:
        return _error(404, gettext("This page does not exist."))
    except TransitionRefused as refused:
        return _error(409, step_refusal_text(refused.code), code=refused.code, state=refused.state)
    except referrals.CaseRefused as refused:
        return _error(400, step_refusal_text(refused.code), code=refused.code)
    except (KeyNotHeld, crypto.CryptoError):
        db.session.rollback()
        return _error(403, str(NO_KEY))
    except IntakeRejected as rejected:
        return jsonify({"errors": {k: error_text(v) for k, v in rejected.errors.items()}}), 400
    return jsonify(_summary(referral)), 200


def _package(caller: Caller, referral_id: int) -> Response | tuple[Response, int]:
    try:
        package = package_download(db.session(), caller.principal, referral_id, sealed=True)
    except referrals.NotFound:
        return _error(404, gettext("This page does not exist."))
    except KeyNotHeld:  # as the page: no key, no package, and who can grant it
        return _error(403, str(NO_KEY), code="key_not_held")
    return Response(stream_with_context(package.chunks), mimetype=package.media_type,
                    headers={"Content-Disposition":
                             f'attachment; filename="{package.filename}"'})


@bp.post("/liaison/token")
@documented(sign_in(" as a liaison (the same as /staff/token)"))
def liaison_token() -> tuple[Response, int]:
    """The same sign-in as /staff/token: liaisons are accounts with the liaison role."""
    return staff_token()


@bp.get("/liaison/referrals")
@documented(referral_list("addressed to the caller's body"))
@staff_required(api=True)
def liaison_referrals(caller: Caller) -> tuple[Response, int]:
    return _list(caller, mine_only=True)


@bp.get("/liaison/referrals/<int:referral_id>")
@documented(referral_detail())
@staff_required(api=True)
def liaison_referral(caller: Caller, referral_id: int) -> tuple[Response, int]:
    return _detail(caller, referral_id)


@bp.post("/liaison/referrals/<int:referral_id>/<step:action>")
@documented(referral_step())
@staff_required(api=True)
def liaison_referral_action(caller: Caller, referral_id: int, action: str
                            ) -> tuple[Response, int]:
    return _act(caller, referral_id, action)


@bp.get("/liaison/referrals/<int:referral_id>/package")
@documented(referral_package())
@staff_required(api=True)
def liaison_package(caller: Caller, referral_id: int) -> Response | tuple[Response, int]:
    return _package(caller, referral_id)


@bp.get("/staff/referrals")
@documented(referral_list("of the caller's units"))
@staff_required(api=True)
def staff_referrals(caller: Caller) -> tuple[Response, int]:
    return _list(caller, mine_only=False)


@bp.get("/staff/referrals/<int:referral_id>")
@documented(referral_detail())
@staff_required(api=True)
def staff_referral(caller: Caller, referral_id: int) -> tuple[Response, int]:
    return _detail(caller, referral_id)


@bp.post("/staff/referrals/<int:referral_id>/<step:action>")
@documented(referral_step())
@staff_required(api=True)
def staff_referral_action(caller: Caller, referral_id: int, action: str
                          ) -> tuple[Response, int]:
    return _act(caller, referral_id, action)


@bp.get("/staff/referrals/<int:referral_id>/package")
@documented(referral_package())
@staff_required(api=True)
def staff_package(caller: Caller, referral_id: int) -> Response | tuple[Response, int]:
    return _package(caller, referral_id)
