"""Liaison pages: the referrals addressed to the liaison's body, their steps and packages."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, make_response, render_template

from models import Referral
from portal.cases import referrals
from portal.intake import identity
from portal.web.extensions import db
from portal.web.liaison import bp
from portal.web.messages import identity_refusal_text, state_text
from portal.web.referral_pages import (
    before_param,
    document_response,
    handle_action,
    package_response,
    render_referral,
)
from portal.web.session import Caller, staff_required


@bp.get("/")
@staff_required
def index(caller: Caller) -> str:
    return render_template(
        "staff/referrals.html", due=referrals.due_lists(db.session(), caller.principal),
        page=referrals.addressed_to(db.session(), caller.principal, before_param()),
        awaiting=[], caller=caller, state_text=state_text, face="liaison")


@bp.get("/referrals/<int:referral_id>")
@staff_required
def referral(caller: Caller, referral_id: int) -> Any:
    return render_referral(caller, referral_id, "liaison")


@bp.post("/referrals/<int:referral_id>/<action>")
@staff_required
def referral_action(caller: Caller, referral_id: int, action: str) -> Response:
    return handle_action(caller, referral_id, action, "liaison")


@bp.get("/referrals/<int:referral_id>/package")
@staff_required
def referral_package(caller: Caller, referral_id: int) -> Response:
    return package_response(caller, referral_id)


@bp.get("/documents/<int:attachment_id>")
@staff_required
def document(caller: Caller, attachment_id: int) -> Response:
    """A document brought with a step of a referral addressed to the liaison's body."""
    return document_response(caller, attachment_id)


@bp.get("/referrals/<int:referral_id>/identity")
@staff_required
def package_identity(caller: Caller, referral_id: int) -> Response:
    """The reporter's identity a custodian agreed to send with this referral, sealed to the
    body's key: for its liaisons once handed over, each read recorded."""
    try:
        reporter = identity.open_package_identity(db.session(), caller.principal, referral_id)
    except identity.IdentityNotFound:
        db.session.rollback()
        abort(404)
    except identity.IdentityRefused as refused:
        db.session.rollback()
        return make_response(render_template(
            "staff/identity_package_read.html", caller=caller, referral_id=referral_id,
            reporter=None, error=identity_refusal_text(refused.code)), 403)
    db.session.commit()
    response = make_response(render_template(
        "staff/identity_package_read.html", caller=caller, referral_id=referral_id,
        referral=db.session.get(Referral, referral_id), reporter=reporter, error=None))
    response.headers["Cache-Control"] = "no-store"
    return response
