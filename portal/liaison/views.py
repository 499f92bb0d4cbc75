"""Liaison pages: the referrals addressed to the liaison's body, their steps and packages."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template

from portal import referrals
from portal.extensions import db
from portal.liaison import bp
from portal.staff.cases import (
    document_response,
    handle_action,
    package_response,
    render_referral,
    state_text,
)
from portal.staff.context import Caller
from portal.staff.views import signed_in


@bp.get("/")
@signed_in
def index(caller: Caller) -> str:
    addressed = list(db.session.scalars(referrals.addressed_to(caller.principal)))
    overdue, soon = referrals.due_lists(db.session, caller.principal)
    return render_template("staff/referrals.html", referrals=addressed, overdue=overdue,
                           soon=soon, awaiting=[], caller=caller, state_text=state_text,
                           face="liaison")


@bp.get("/referrals/<int:referral_id>")
@signed_in
def referral(caller: Caller, referral_id: int) -> Any:
    return render_referral(caller, referral_id, "liaison")


@bp.post("/referrals/<int:referral_id>/<action>")
@signed_in
def referral_action(caller: Caller, referral_id: int, action: str) -> Response:
    return handle_action(caller, referral_id, action, "liaison")


@bp.get("/referrals/<int:referral_id>/package")
@signed_in
def referral_package(caller: Caller, referral_id: int) -> Response:
    return package_response(caller, referral_id)


@bp.get("/documents/<int:attachment_id>")
@signed_in
def document(caller: Caller, attachment_id: int) -> Response:
    """A document brought with a step of a referral addressed to the liaison's body."""
    return document_response(caller, attachment_id)
