"""Staff pages for cases and referrals; the liaison face reuses the referral page and actions.

Thin: forms in, one service call (portal/referrals.py), render. What actions a page offers comes
from referral/workflow.py through referrals.available_actions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from models import Case, Membership, Offence, Referral, Unit, UnitKind, User
from portal import crypto, referrals
from portal.access import OFFICERS, KeyNotHeld
from portal.extensions import db
from portal.http import current_lang
from portal.intake import IntakeRejected
from portal.messages import (  # the words live in portal/messages.py; re-exported here
    ACTION_LABELS,
    DOCUMENT_LABELS,
    LETTER_LABELS,
    STATE_LABELS,
    SUGGESTION_KIND_LABELS,
    error_text,
    refusal_text,
)
from portal.staff import bp
from portal.staff.context import Caller
from portal.staff.views import signed_in
from portal.web import checkpoint_now, limits, uploads_from
from referral.workflow import TransitionRefused

REFUSALS = {
    "unknown_action": _l("There is no such step."),
    "not_from_this_state": _l("This step is not possible in the referral's current state."),
    "not_your_step": _l("This step is not yours to take."),
    "documents_missing": _l("This step needs a document that is not attached yet."),
    "reason_required": _l("Please give a reason."),
    "not_overdue": _l("The period for this decision has not ended yet."),
}
CASE_REFUSALS = {
    "no_tips": _l("Choose at least one tip."),
    "unknown_tip": _l("There is no such tip among the ones you may see."),
    "tip_not_accepted": _l("Only accepted tips can form a case."),
    "tip_in_a_case": _l("One of these tips already belongs to a case."),
    "team_too_small": _l("A case team (专案组) needs at least two officers."),
    "not_a_member": _l("That officer does not belong to the tip's unit."),
    "unknown_offence": _l("Please choose a suspected offence."),
    "contact_phone_required": _l("The 移送书 needs a contact phone number."),
}


@contextmanager
def step_then_redirect(target: str) -> Iterator[list[Response]]:
    """Run a step; on success flash "Done.", on a refusal flash why, then go back to `target`.
    An unknown object answers 404. The views' one place for turning refusals into words."""
    result = [redirect(target, 303)]
    try:
        yield result
    except referrals.NotFound:
        abort(404)
    except KeyNotHeld:
        flash(gettext("You have not been granted this unit's key"), "error")
    except (TransitionRefused, referrals.CaseRefused) as refused:
        flash(refusal(refused.code), "error")
    except IntakeRejected as rejected:
        flash(" ".join(error_text(e) for e in rejected.errors.values()), "error")
    else:
        flash(gettext("Done."))


def refusal(code: str) -> str:
    label = REFUSALS.get(code) or CASE_REFUSALS.get(code)
    return str(label) if label else refusal_text(code)


def state_text(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


# ---------------------------------------------------------------------------------------------
# Cases


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.replace(",", " ").split() if part.isdigit()]


@bp.route("/cases", methods=["GET", "POST"])
@signed_in
def cases(caller: Caller) -> Any:
    principal = caller.principal
    lang = current_lang()
    units = principal.units_for("tip.verify")
    if request.method == "POST":
        try:
            case = referrals.form_case(
                db.session, principal, tip_ids=_int_list(request.form.get("tips", "")),
                member_ids=[int(x) for x in request.form.getlist("members") if x.isdigit()],
                offence_code=request.form.get("offence", ""),
                title=request.form.get("title", ""), summary=request.form.get("summary", ""),
                number_format=current_app.config.get("CASE_NUMBER_FORMAT",
                                                     referrals.DEFAULT_NUMBER_FORMAT))
        except referrals.CaseRefused as refused:
            db.session.rollback()
            flash(refusal(refused.code), "error")
            return redirect(url_for("staff.cases", tips=request.form.get("tips", ""))), 303
        return redirect(url_for("staff.case", case_id=case.id)), 303
    visible = [c for c in db.session.scalars(select(Case).order_by(Case.id.desc()))
               if referrals.case_visible(principal, c)]
    officers = list(db.session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.unit_id.in_(sorted(units)), Membership.role.in_(sorted(OFFICERS)))
        .distinct().order_by(User.username)))
    offences = list(db.session.scalars(select(Offence).where(Offence.active.is_(True))
                                       .order_by(Offence.id)))
    return render_template("staff/cases.html", cases=visible, officers=officers,
                           offences=offences, lang=lang, caller=caller,
                           tips=request.args.get("tips", ""))


@bp.route("/cases/<int:case_id>", methods=["GET", "POST"])
@signed_in
def case(caller: Caller, case_id: int) -> Any:
    principal = caller.principal
    if request.method == "POST":
        with step_then_redirect(url_for("staff.case", case_id=case_id)) as done:
            if request.form.get("do") == "referral":
                referral = referrals.create_referral(
                    db.session, principal, case_id, request.form.get("receiver", ""),
                    request.form.get("copy") or None)
                done[0] = redirect(url_for("staff.referral", referral_id=referral.id), 303)
            else:
                referrals.add_documents(db.session, principal, case_id,
                                        request.form.get("kind", ""),
                                        uploads_from(request.files.getlist("files")),
                                        limits=limits())
        return done[0]
    try:
        view = referrals.open_case(db.session, principal, case_id)
    except referrals.NotFound:
        abort(404)
    except KeyNotHeld:
        return render_template("staff/no_key.html", tip_id=case_id), 403
    receivers = list(db.session.scalars(select(Unit).where(Unit.kind.in_([
        UnitKind.PUBLIC_SECURITY, UnitKind.DISCIPLINE, UnitKind.PROCURATORATE,
        UnitKind.ADMIN_DEPT])).order_by(Unit.id)))
    return render_template("staff/case.html", view=view, case=view.case, caller=caller,
                           lang=current_lang(), receivers=receivers,
                           documents=DOCUMENT_LABELS, state_text=state_text)


# ---------------------------------------------------------------------------------------------
# Referrals (officers and heads here; liaisons through portal/liaison)


@bp.get("/referrals")
@signed_in
def referral_list(caller: Caller) -> str:
    overdue, soon = referrals.due_lists(db.session, caller.principal)
    visible = [r for r in db.session.scalars(select(Referral).order_by(Referral.id.desc()))
               if referrals.referral_visible(caller.principal, r)]
    awaiting = [r for r in visible if r.state == "awaiting_approval"
                and any(t.action == "approve"
                        for t in referrals.available_actions(caller.principal, r))]
    return render_template("staff/referrals.html", overdue=overdue, soon=soon,
                           awaiting=awaiting, referrals=visible, caller=caller,
                           state_text=state_text, face="staff")


def render_referral(caller: Caller, referral_id: int, face: str) -> Any:
    try:
        referral = referrals.get_referral(db.session, caller.principal, referral_id)
    except referrals.NotFound:
        abort(404)
    try:
        reasons = referrals.referral_reasons(db.session, caller.principal, referral)
    except KeyNotHeld:
        reasons = {}
    users = {u.id: u for u in db.session.scalars(select(User))}
    return render_template(
        "staff/referral.html", referral=referral, caller=caller, face=face,
        actions=referrals.available_actions(caller.principal, referral), reasons=reasons,
        users=users, lang=current_lang(), labels=ACTION_LABELS, documents=DOCUMENT_LABELS,
        state_text=state_text)


def letter_context(action: str, contact_phone: str) -> dict[str, object]:
    """What the 移送书 needs beyond the case: the contact, the materials' names, and the log
    checkpoint it is issued under (signed at every handover)."""
    context: dict[str, object] = {"contact_phone": contact_phone,
                                  "document_labels": LETTER_LABELS}
    if action == "hand_over" and contact_phone.strip():
        context["checkpoint"] = checkpoint_now()
    return context


def handle_action(caller: Caller, referral_id: int, action: str, face: str) -> Response:
    with step_then_redirect(url_for(f"{face}.referral", referral_id=referral_id)) as done:
        referrals.act(
            db.session, caller.principal, referral_id, action,
            reason=request.form.get("reason", ""), period=request.form.get("period", "normal"),
            uploads=uploads_from(request.files.getlist("files")),
            document_kind=request.form.get("document_kind") or None, limits=limits(),
            letter_context=letter_context(action, request.form.get("contact_phone", "")))
    return done[0]


def package_response(caller: Caller, referral_id: int) -> Response:
    """The package as the receiving body's liaison (or the bureau) can open it: decrypted ZIP,
    or ?format=age for the sealed file to open offline with the age tool."""
    try:
        referral, sealed = referrals.package_ciphertext(db.session, caller.principal,
                                                        referral_id)
    except referrals.NotFound:
        abort(404)
    name = f"referral-{referral.id}"
    if request.args.get("format") == "age":
        return Response(stream_with_context(iter(lambda: sealed.read(1024 * 1024), b"")),
                        mimetype="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}.zip.age"'})
    try:
        identities = referrals.identities_for_referral(caller.principal, referral)
    except KeyNotHeld:
        abort(403)
    return Response(stream_with_context(crypto.open_stream(sealed, identities)),
                    mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}.zip"'})


@bp.get("/referrals/<int:referral_id>")
@signed_in
def referral(caller: Caller, referral_id: int) -> Any:
    return render_referral(caller, referral_id, "staff")


@bp.post("/referrals/<int:referral_id>/<action>")
@signed_in
def referral_action(caller: Caller, referral_id: int, action: str) -> Response:
    return handle_action(caller, referral_id, action, "staff")


@bp.get("/referrals/<int:referral_id>/package")
@signed_in
def referral_package(caller: Caller, referral_id: int) -> Response:
    return package_response(caller, referral_id)


# ---------------------------------------------------------------------------------------------
# Inbound suggestions (三书一函)


@bp.route("/suggestions", methods=["GET", "POST"])
@signed_in
def suggestions(caller: Caller) -> Any:
    principal = caller.principal
    if request.method == "POST":
        from datetime import datetime, time
        from zoneinfo import ZoneInfo

        try:
            received = datetime.combine(
                datetime.strptime(request.form.get("received_on", ""), "%Y-%m-%d").date(),
                time(9), tzinfo=ZoneInfo("Asia/Shanghai"))
            due_text = request.form.get("due_on", "").strip()
            due = (datetime.combine(datetime.strptime(due_text, "%Y-%m-%d").date(),
                                    time(23, 59, 59), tzinfo=ZoneInfo("Asia/Shanghai"))
                   if due_text else None)
            suggestion = referrals.record_suggestion(
                db.session, principal, kind=request.form.get("kind", ""),
                issuer=request.form.get("issuer", ""), unit_code=request.form.get("unit", ""),
                received_on=received, problems=request.form.get("problems", ""), due_on=due)
        except ValueError:
            flash(refusal_text("bad_value"), "error")
            return redirect(url_for("staff.suggestions")), 303
        except referrals.CaseRefused as refused:
            db.session.rollback()
            flash(refusal(refused.code), "error")
            return redirect(url_for("staff.suggestions")), 303
        return redirect(url_for("staff.suggestion", suggestion_id=suggestion.id)), 303
    units = list(db.session.scalars(select(Unit).where(Unit.id.in_(
        sorted(principal.units_for("tip.view")))).order_by(Unit.id)))
    return render_template("staff/suggestions.html", caller=caller,
                           rows=referrals.visible_suggestions(db.session, principal),
                           kinds=SUGGESTION_KIND_LABELS, units=units, lang=current_lang())


@bp.route("/suggestions/<int:suggestion_id>", methods=["GET", "POST"])
@signed_in
def suggestion(caller: Caller, suggestion_id: int) -> Any:
    principal = caller.principal
    if request.method == "POST":
        with step_then_redirect(url_for("staff.suggestion", suggestion_id=suggestion_id)) as done:
            referrals.answer_suggestion(db.session, principal, suggestion_id,
                                        request.form.get("measures", ""),
                                        evidence=uploads_from(request.files.getlist("files")),
                                        limits=limits())
        return done[0]
    try:
        row, content, evidence = referrals.open_suggestion(db.session, principal, suggestion_id)
    except referrals.NotFound:
        abort(404)
    except KeyNotHeld:
        return render_template("staff/no_key.html", tip_id=suggestion_id), 403
    return render_template("staff/suggestion.html", caller=caller, row=row, content=content,
                           evidence=evidence, kinds=SUGGESTION_KIND_LABELS)
