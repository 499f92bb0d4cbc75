"""Staff pages for cases and referrals; the liaison face reuses the referral page and actions.

Thin: forms in, one service call (portal/cases/referrals.py), render. What actions a page offers
comes
from referral/workflow.py through referrals.available_actions."""

from __future__ import annotations

from datetime import time
from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from models import Case, Offence, Referral, Unit, UnitKind, User
from portal.cases import redaction, referrals
from portal.security import crypto
from portal.security.access import KeyNotHeld
from portal.web import limits, row_id, uploads_from
from portal.web.extensions import db
from portal.web.http import content_disposition, current_lang
from portal.web.messages import DOCUMENT_LABELS, SUGGESTION_KIND_LABELS, state_text
from portal.web.referral_pages import (
    before_param,
    document_response,
    done,
    handle_action,
    int_list,
    letter_context,
    package_response,
    render_referral,
    step_keeping_input,
    step_then_redirect,
)
from portal.web.session import Caller, staff_required
from portal.web.staff import bp
from referral.calendar import prefecture_time


@bp.route("/cases", methods=["GET", "POST"])
@staff_required
def cases(caller: Caller) -> Any:
    principal = caller.principal
    error = None
    if request.method == "POST":
        with step_keeping_input() as outcome:
            case = referrals.form_case(
                db.session(), principal, tip_ids=int_list(request.form.getlist("tips")),
                member_ids=int_list(request.form.getlist("members")),
                offence_code=request.form.get("offence", ""),
                title=request.form.get("title", ""), summary=request.form.get("summary", ""),
                number_format=current_app.config["CASE_NUMBER_FORMAT"])
        if outcome.error is None:
            return done(url_for("staff.case", case_id=case.id))
        error = outcome.error
        typed = {"tips": set(int_list(request.form.getlist("tips"))),
                 "members": set(int_list(request.form.getlist("members"))),
                 "offence": request.form.get("offence", ""),
                 "title": request.form.get("title", ""),
                 "summary": request.form.get("summary", "")}
    else:
        typed = {"tips": set(int_list(request.args.getlist("tips"))), "members": set(),
                 "offence": "", "title": "", "summary": ""}
    visible = referrals.visible_cases(db.session(), principal)
    offences = list(db.session.scalars(select(Offence).where(Offence.active.is_(True))
                                       .order_by(Offence.id)))
    page = render_template(
        "staff/cases.html", cases=visible, lang=current_lang(), caller=caller,
        candidates=referrals.team_candidates(db.session(), principal),
        eligible=referrals.tips_for_a_case(db.session(), principal), offences=offences,
        typed=typed, error=error)
    return (page, 422) if error else page


@bp.route("/cases/<int:case_id>", methods=["GET", "POST"])
@staff_required
def case(caller: Caller, case_id: int) -> Any:
    principal = caller.principal
    if request.method == "POST":
        with step_then_redirect(url_for("staff.case", case_id=case_id)) as done:
            if request.form.get("do") == "referral":
                referral = referrals.create_referral(
                    db.session(), principal, case_id, request.form.get("receiver", ""),
                    request.form.get("copy") or None)
                done[0] = redirect(url_for("staff.referral", referral_id=referral.id), 303)
            else:
                referrals.add_documents(db.session(), principal, case_id,
                                        request.form.get("kind", ""),
                                        uploads_from(request.files.getlist("files")),
                                        limits=limits())
        return done[0]
    try:
        view = referrals.open_case(db.session(), principal, case_id)
    except referrals.NotFound:
        abort(404)
    except (KeyNotHeld, crypto.CryptoError):
        db.session.rollback()
        case_row = db.session.get(Case, case_id)
        return render_template("staff/no_key.html", what="case", tip_id=case_id,
                               unit=case_row.unit if case_row else None, caller=caller), 403
    receivers = list(db.session.scalars(select(Unit).where(Unit.kind.in_([
        UnitKind.PUBLIC_SECURITY, UnitKind.DISCIPLINE, UnitKind.PROCURATORATE,
        UnitKind.ADMIN_DEPT])).order_by(Unit.id)))
    # The files a referral's steps brought (the report uploaded at "submit" …) belong to the
    # case too: listed under the referral they came with.
    referral_files = [(r, files) for r in view.case.referrals
                      if (files := referrals.step_documents(db.session(), principal, r))]
    return render_template("staff/case.html", view=view, case=view.case, caller=caller,
                           lang=current_lang(), receivers=receivers, referral_files=referral_files,
                           documents=DOCUMENT_LABELS, state_text=state_text)


@bp.get("/documents/<int:attachment_id>")
@staff_required
def case_document(caller: Caller, attachment_id: int) -> Response:
    return document_response(caller, attachment_id)


# ---------------------------------------------------------------------------------------------
# Referrals (officers and heads here; liaisons through portal/liaison)


@bp.get("/referrals")
@staff_required
def referral_list(caller: Caller) -> str:
    return render_template(
        "staff/referrals.html", due=referrals.due_lists(db.session(), caller.principal),
        awaiting=referrals.awaiting_approval(db.session(), caller.principal),
        page=referrals.visible_referrals(db.session(), caller.principal, before_param()),
        caller=caller, state_text=state_text, face="staff", lang=current_lang())


@bp.get("/referrals/<int:referral_id>")
@staff_required
def referral(caller: Caller, referral_id: int) -> Any:
    return render_referral(caller, referral_id, "staff")


@bp.post("/referrals/<int:referral_id>/<action>")
@staff_required
def referral_action(caller: Caller, referral_id: int, action: str) -> Any:
    return handle_action(caller, referral_id, action, "staff")


@bp.get("/referrals/<int:referral_id>/package")
@staff_required
def referral_package(caller: Caller, referral_id: int) -> Any:
    return package_response(caller, referral_id)


def _no_case_key(caller: Caller, referral_id: int) -> tuple[str, int]:
    """The "you hold no key" page (403) for a referral whose case unit's key the person lacks."""
    db.session.rollback()
    row = db.session.get(Referral, referral_id)
    return render_template("staff/no_key.html", what="referral", tip_id=referral_id,
                           unit=row.case.unit if row else None, caller=caller), 403


@bp.get("/referrals/<int:referral_id>/letter-preview")
@staff_required
def letter_preview(caller: Caller, referral_id: int) -> Any:
    """The 移送书 as it would be issued now, marked 样稿 (the head reads it before deciding)."""
    try:
        pdf = referrals.preview_letter(db.session(), caller.principal, referral_id,
                                       letter_context("preview", ""))
    except referrals.NotFound:
        abort(404)
    except (KeyNotHeld, crypto.CryptoError):
        return _no_case_key(caller, referral_id)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": content_disposition(f"referral-{referral_id}-preview.pdf",
                                                   "inline"),
        "Cache-Control": "no-store"})


# ---------------------------------------------------------------------------------------------
# Blacking out before hand-over: a tip's statement (phrases) or photo (areas), per referral


@bp.route("/referrals/<int:referral_id>/redact/statement/<int:tip_id>",
          methods=["GET", "POST"])
@staff_required
def redact_statement(caller: Caller, referral_id: int, tip_id: int) -> Any:
    return _redaction_page(caller, referral_id, tip_id=tip_id)


@bp.route("/referrals/<int:referral_id>/redact/file/<int:attachment_id>",
          methods=["GET", "POST"])
@staff_required
def redact_image(caller: Caller, referral_id: int, attachment_id: int) -> Any:
    return _redaction_page(caller, referral_id, attachment_id=attachment_id)


def _redaction_step(caller: Caller, referral_id: int, tip_id: int | None,
                    attachment_id: int | None) -> None:
    form, session, principal = request.form, db.session(), caller.principal
    if form.get("do") == "remove":
        redaction.remove(session, principal, referral_id, row_id(form.get("redaction", "")) or 0)
    elif tip_id is not None:
        redaction.add_phrases(session, principal, referral_id, tip_id,
                              form.get("phrases", "").splitlines())
    else:
        redaction.add_box(session, principal, referral_id, attachment_id or 0,
                          [form.get(k, "") for k in ("x", "y", "width", "height")])


def _redaction_page(caller: Caller, referral_id: int, *, tip_id: int | None = None,
                    attachment_id: int | None = None) -> Any:
    """One statement or image of a referral as it would go out, what is blacked out of it, and
    (before hand-over, for the case team) the form to black out more or take one back."""
    error = None
    if request.method == "POST":
        with step_keeping_input() as outcome:
            _redaction_step(caller, referral_id, tip_id, attachment_id)
        if outcome.error is None:
            return done(request.path)
        error = outcome.error  # without the key, the page below says how to get it (403)
    try:
        target = redaction.open_target(db.session(), caller.principal, referral_id,
                                       tip_id=tip_id, attachment_id=attachment_id)
    except referrals.NotFound:
        abort(404)
    except (KeyNotHeld, crypto.CryptoError):
        return _no_case_key(caller, referral_id)
    users = {u.id: u for u in db.session.scalars(select(User).where(
        User.id.in_({r.created_by_id for r in target.redactions})))}
    page = render_template("staff/redact.html", caller=caller, target=target, users=users,
                           error=error, typed=request.form if error else {},
                           lang=current_lang())
    return (page, 422) if error else page


# ---------------------------------------------------------------------------------------------
# Inbound suggestions (三书一函)

@bp.route("/suggestions", methods=["GET", "POST"])
@staff_required
def suggestions(caller: Caller) -> Any:
    principal = caller.principal
    error = None
    if request.method == "POST":
        with step_keeping_input() as outcome:
            try:
                received = prefecture_time(request.form.get("received_on", ""), time(9))
                due_text = request.form.get("due_on", "").strip()
                due = prefecture_time(due_text, time(23, 59, 59)) if due_text else None
            except ValueError:
                raise referrals.CaseRefused("bad_date") from None
            suggestion = referrals.record_suggestion(
                db.session(), principal, kind=request.form.get("kind", ""),
                issuer=request.form.get("issuer", ""), unit_code=request.form.get("unit", ""),
                received_on=received, problems=request.form.get("problems", ""), due_on=due)
        if outcome.error is None:
            return done(url_for("staff.suggestion", suggestion_id=suggestion.id))
        error = outcome.error
    units = list(db.session.scalars(select(Unit).where(Unit.id.in_(
        sorted(principal.units_for("tip.view")))).order_by(Unit.id)))
    page = render_template("staff/suggestions.html", caller=caller,
                           rows=referrals.visible_suggestions(db.session(), principal),
                           kinds=SUGGESTION_KIND_LABELS, units=units, lang=current_lang(),
                           typed=request.form if error else {}, error=error)
    return (page, 422) if error else page


@bp.route("/suggestions/<int:suggestion_id>", methods=["GET", "POST"])
@staff_required
def suggestion(caller: Caller, suggestion_id: int) -> Any:
    principal = caller.principal
    target = url_for("staff.suggestion", suggestion_id=suggestion_id)
    error = None
    if request.method == "POST":
        with step_keeping_input() as outcome:
            referrals.answer_suggestion(db.session(), principal, suggestion_id,
                                        request.form.get("measures", ""),
                                        evidence=uploads_from(request.files.getlist("files")),
                                        limits=limits())
        if outcome.error is None:
            return done(target)
        if outcome.no_key:  # the page cannot be shown either: it says how to get the key
            flash(outcome.error, "error")
            return redirect(target, 303)
        error = outcome.error
    try:
        row, content, evidence = referrals.open_suggestion(db.session(), principal, suggestion_id)
    except referrals.NotFound:
        abort(404)
    except (KeyNotHeld, crypto.CryptoError):
        db.session.rollback()
        row = referrals.suggestion_row(db.session(), principal, suggestion_id)
        return render_template("staff/no_key.html", what="suggestion", tip_id=suggestion_id,
                               unit=row.unit, caller=caller), 403
    page = render_template("staff/suggestion.html", caller=caller, row=row, content=content,
                           evidence=evidence, kinds=SUGGESTION_KIND_LABELS, error=error,
                           measures=request.form.get("measures") if error else None)
    return (page, 422) if error else page
