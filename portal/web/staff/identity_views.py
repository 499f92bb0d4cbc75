"""Identity access requests on the staff pages (portal/intake/identity.py does the work).

An officer asks on the tip page (templates/staff/_identity_request.html) or, to send the identity
with a referral, on the referral page (_identity_package.html); custodians decide and revoke on
/staff/identity-requests; the officer reads a granted identity on a page of its own, each read
audited. Every POST redirects (a refresh repeats nothing) or, refused, shows its form again with
the reason in words and what was typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, SelectField, StringField, TextAreaField

from models import CaseTip, IdentityPurpose, IdentityRequest, Referral, RequestState, Tip
from portal.intake import identity
from portal.security.keys import NotSetUp
from portal.web.extensions import db
from portal.web.http import current_lang
from portal.web.messages import identity_purpose_text, identity_refusal_text
from portal.web.session import Caller, staff_required
from portal.web.staff import bp


class RequestForm(FlaskForm):
    purpose = SelectField(_l("Purpose"), validate_choice=False)
    reason = TextAreaField(_l("Reason"))
    referral_id = HiddenField()


class DecisionForm(FlaskForm):
    decision = StringField()  # grant | refuse (the button pressed)
    days = StringField(_l("Days (1 to 30)"))
    reason = TextAreaField(_l("Reason"))


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason"))


OFFICER_PURPOSES = (IdentityPurpose.CONTACT, IdentityPurpose.REWARD, IdentityPurpose.WITNESS)


# ---------------------------------------------------------------------------------------------
# What the partials and the menu read (registered for every template)


@dataclass(frozen=True)
class IdentityPanel:
    requests: list[IdentityRequest]
    may_request: bool
    purposes: list[tuple[str, str]]
    me: int


def identity_panel(tip: Tip, caller: Caller) -> IdentityPanel:
    """The tip page's part on the reporter's identity: this tip's requests and whether this
    officer may ask."""
    return IdentityPanel(
        requests=identity.tip_requests(db.session(), tip.id),
        may_request=bool(tip.real_name and caller.principal.may("identity.request", tip)),
        purposes=[(p.value, identity_purpose_text(p)) for p in OFFICER_PURPOSES],
        me=caller.user.id)


@dataclass(frozen=True)
class PackagePanel:
    tips: list[Tip]  # the case's real-name tips, which the officer may ask to send
    requests: list[IdentityRequest]
    granted: IdentityRequest | None
    may_request: bool
    me: int


def package_panel(referral: Referral, caller: Caller) -> PackagePanel:
    """The referral page's part: the package identity requests of this referral."""
    tips = [t for t in db.session.scalars(
        select(Tip).join(CaseTip, CaseTip.tip_id == Tip.id)
        .where(CaseTip.case_id == referral.case_id, Tip.real_name.is_(True)).order_by(Tip.id))]
    requests = list(db.session.scalars(select(IdentityRequest).where(
        IdentityRequest.referral_id == referral.id).order_by(IdentityRequest.id)))
    return PackagePanel(
        tips=tips, requests=requests,
        granted=identity.package_identity(db.session(), referral.id),
        may_request=referral.handed_over_at is None and any(
            caller.principal.may("identity.request", t) for t in tips),
        me=caller.user.id)


def identity_pending_count(caller: Caller) -> int:
    return identity.pending_count(db.session(), caller.principal)


@bp.app_context_processor
def _identity_helpers() -> dict[str, Any]:
    return {"identity_panel": identity_panel, "package_panel": package_panel,
            "identity_pending_count": identity_pending_count, "identity_is_live": identity.is_live,
            "identity_decision_reasons": identity.decision_reasons}


# ---------------------------------------------------------------------------------------------
# Asking


@bp.post("/tips/<int:tip_id>/identity-request")
@staff_required
def identity_request(caller: Caller, tip_id: int) -> Any:
    from portal.web.referral_pages import render_referral
    from portal.web.staff.views import _render_tip

    form = RequestForm()
    referral_text = (form.referral_id.data or "").strip()
    referral_id = int(referral_text) if referral_text.isdigit() and len(referral_text) < 10 \
        else None
    purpose = form.purpose.data or ""
    if referral_text and referral_id is None:
        purpose = "package"  # a damaged referral number: refused as an unknown referral
    try:
        identity.request(db.session(), caller.principal, tip_id, purpose, form.reason.data or "",
                         referral_id)
    except identity.IdentityNotFound:
        db.session.rollback()
        abort(404)
    except identity.IdentityRefused as refused:
        db.session.rollback()
        if purpose == IdentityPurpose.PACKAGE and referral_id is not None:
            return render_referral(caller, referral_id, "staff", failed=(
                f"identity-{tip_id}", identity_refusal_text(refused.code))), 400
        values = {"purpose": purpose, "reason": form.reason.data or ""}
        return _render_tip(caller, tip_id, failed={
            "action": "identity", "message": identity_refusal_text(refused.code), "values": values})
    db.session.commit()
    flash(gettext("Your request has been sent to the custodians (信息保密员)."))
    if purpose == IdentityPurpose.PACKAGE and referral_id is not None:
        return redirect(url_for("staff.referral", referral_id=referral_id) + "#identity-package",
                        303)
    return redirect(url_for("staff.tip", tip_id=tip_id) + "#identity-requests", 303)


@bp.post("/identity-requests/<int:request_id>/withdraw")
@staff_required
def identity_withdraw(caller: Caller, request_id: int) -> Any:
    row: IdentityRequest | None
    try:
        row = identity.withdraw(db.session(), caller.principal, request_id)
    except identity.IdentityNotFound:
        db.session.rollback()
        abort(404)
    except identity.IdentityRefused as refused:
        db.session.rollback()
        flash(identity_refusal_text(refused.code), "error")
        row = db.session.get(IdentityRequest, request_id)
    else:
        db.session.commit()
        flash(gettext("Your request has been withdrawn."))
    if row is None:  # refused, and gone meanwhile
        abort(404)
    if row.referral_id is not None:
        return redirect(url_for("staff.referral", referral_id=row.referral_id), 303)
    return redirect(url_for("staff.tip", tip_id=row.tip_id) + "#identity-requests", 303)


# ---------------------------------------------------------------------------------------------
# Reading a granted identity


@bp.get("/identity-requests/<int:request_id>")
@staff_required
def identity_read(caller: Caller, request_id: int) -> Any:
    """The identity, for the officer it was granted to, while the grant runs: each read is
    recorded."""
    row = db.session.get(IdentityRequest, request_id)
    try:
        reporter = identity.read(db.session(), caller.principal, caller.session.identity,
                                 request_id)
    except identity.IdentityNotFound:
        db.session.rollback()
        abort(404)
    except identity.IdentityRefused as refused:
        db.session.commit()  # a lapsed grant's copy is wiped
        page = render_template("staff/identity_read.html", caller=caller, row=row,
                               reporter=None, error=identity_refusal_text(refused.code))
        return page, 403
    db.session.commit()
    response = make_response(render_template("staff/identity_read.html", caller=caller, row=row,
                                             reporter=reporter, error=None))
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------------------------
# The custodian's page


def _render_requests(caller: Caller, failed: dict[str, Any] | None = None) -> Any:
    pending, live = identity.requests_to_decide(db.session(), caller.principal)
    mine = list(db.session.scalars(select(IdentityRequest).where(
        IdentityRequest.requester_id == caller.user.id)
        .order_by(IdentityRequest.id.desc()).limit(100)))
    viewable = {r.tip_id for r in (*pending, *live, *mine)
                if caller.principal.may("tip.view", r.tip)}
    # A package grant whose referral has been handed over has left the bureau: no revoke form.
    referral_ids = {r.referral_id for r in live if r.referral_id is not None}
    handed_over = set(db.session.scalars(select(Referral.id).where(
        Referral.id.in_(referral_ids), Referral.handed_over_at.is_not(None)))) \
        if referral_ids else set()
    left = {r.id for r in live if r.referral_id in handed_over}
    db.session.commit()  # lapsed grants wiped
    page = render_template("staff/identity_requests.html", caller=caller, pending=pending,
                           live=live, mine=mine, lang=current_lang(), failed=failed or {},
                           viewable=viewable, left=left,
                           is_custodian=bool(identity.custodian_units(caller.principal)),
                           default_days=identity.GRANT_DAYS_DEFAULT,
                           max_days=identity.GRANT_DAYS_MAX)
    return page, 400 if failed else 200


@bp.get("/identity-requests")
@staff_required
def identity_requests(caller: Caller) -> Any:
    return _render_requests(caller)


def _days(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and len(text) < 4 else None


@bp.post("/identity-requests/<int:request_id>/decide")
@staff_required
def identity_decide(caller: Caller, request_id: int) -> Any:
    form = DecisionForm()
    grant = form.decision.data == "grant"
    row = db.session.get(IdentityRequest, request_id)
    if row is None or not caller.principal.may("identity.decide", row.tip):
        abort(404)
    try:
        days = _days(form.days.data)
        if grant and days is None and row.purpose != IdentityPurpose.PACKAGE:
            raise identity.IdentityRefused("bad_days")
        keys = identity.custodian_keys(db.session(), caller.principal, caller.session.identity,
                                       row.tip)
        identity.decide(db.session(), caller.principal, keys, request_id, grant,
                        form.reason.data or "", days or identity.GRANT_DAYS_DEFAULT)
    except identity.IdentityNotFound:
        db.session.rollback()
        abort(404)
    except (identity.IdentityRefused, NotSetUp) as refused:
        db.session.rollback()
        code = getattr(refused, "code", "not_set_up")
        return _render_requests(caller, failed={
            "request_id": request_id, "form": "decide", "message": identity_refusal_text(code),
            "values": {"days": form.days.data or "", "reason": form.reason.data or "",
                       "decision": "grant" if grant else "refuse"}})
    db.session.commit()
    flash(gettext("Granted.") if grant else gettext("Refused."))
    return redirect(url_for("staff.identity_requests"), 303)


@bp.post("/identity-requests/<int:request_id>/revoke")
@staff_required
def identity_revoke(caller: Caller, request_id: int) -> Any:
    form = ReasonForm()
    row = db.session.get(IdentityRequest, request_id)
    if row is None or not caller.principal.may("identity.decide", row.tip):
        abort(404)
    try:
        identity.revoke(db.session(), caller.principal, request_id, form.reason.data or "")
    except identity.IdentityRefused as refused:
        db.session.rollback()
        return _render_requests(caller, failed={
            "request_id": request_id, "form": "revoke",
            "message": identity_refusal_text(refused.code),
            "values": {"reason": form.reason.data or ""}})
    db.session.commit()
    flash(gettext("Revoked: the identity can no longer be read."))
    return redirect(url_for("staff.identity_requests"), 303)


def state_of(row: IdentityRequest) -> str:
    """Where a request stands, in words (a lapsed grant says so)."""
    from portal.web.messages import identity_state_text

    if row.state == RequestState.GRANTED and not identity.is_live(row):
        return gettext("expired")
    return identity_state_text(row.state)


@bp.app_template_global("identity_request_state")
def _identity_request_state(row: IdentityRequest) -> str:
    return state_of(row)

