"""Staff pages for cases and referrals; the liaison face reuses the referral page and actions.

Thin: forms in, one service call (portal/cases/referrals.py), render. What actions a page offers
comes
from referral/workflow.py through referrals.available_actions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time
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

from models import Case, Offence, Referral, Unit, UnitKind, User
from portal.cases import redaction, referrals
from portal.intake.filing import IntakeRejected
from portal.security import crypto
from portal.security.access import KeyNotHeld
from portal.web import checkpoint_now, limits, row_id, uploads_from
from portal.web.extensions import db
from portal.web.http import current_lang
from portal.web.messages import (  # the words live in portal/web/messages.py; re-exported here
    ACTION_LABELS,
    DOCUMENT_LABELS,
    LETTER_LABELS,
    STATE_LABELS,
    SUGGESTION_KIND_LABELS,
    error_text,
    refusal_text,
)
from portal.web.staff import bp
from portal.web.staff.context import Caller
from portal.web.staff.views import content_disposition, signed_in
from referral.calendar import PREFECTURE_ZONE
from referral.workflow import Transition, TransitionRefused

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
    "contact_phone_too_long": _l("The contact phone is too long: at most 40 characters."),
    "measures_required": _l("Please describe the rectification measures taken."),
    "bad_date": _l("Please enter the dates as year-month-day, for example 2026-08-31."),
    "issuer_required": _l("Please name the body that issued it."),
    "no_files": _l("Choose at least one file to add."),
    "problems_required": _l("Please write down the problems it names."),
    # What the 移送书 cannot be written without (referral/letter.py LetterIncomplete).
    "letter_materials": _l("The 移送书 lists the materials sent with it, and none is attached "
                           "yet: add the documents (at least the investigation report)."),
    "letter_facts": _l("The 移送书 needs the summary of the facts, and the case has none: the "
                       "case's summary of the facts must be filled in first."),
    "letter_officer_names": _l("The 移送书 names the case team: it needs at least two "
                               "officers."),
    "letter_contact_phone": _l("The 移送书 needs a contact phone number."),
    "letter_offence": _l("The 移送书 needs the suspected offence of the case."),
    "letter_legal_basis": _l("The 移送书 needs the legal basis of the suspected offence."),
    "letter_case_title": _l("The 移送书 needs the case's title."),
    # Blacking out before hand-over (portal/cases/redaction.py).
    "redaction_closed": _l("The package has been handed over: what it carries can no longer "
                           "be changed."),
    "redaction_unreadable": _l("An image with areas blacked out cannot be read any more: take "
                               "its blacking out back, or leave the image out of the package."),
    "redaction_not_team": _l("Only the case team can black out parts of what the package "
                             "carries."),
}
# Why a blacking out was refused (portal/redaction.RedactionRefused codes).
REDACTION_REFUSALS = {
    "no_phrases": _l("Write at least one word or phrase to black out, one a line."),
    "too_many_phrases": _l("At most %(num)d phrases at a time, each at most %(chars)d "
                           "characters."),
    "phrase_not_found": _l("“%(phrase)s” does not occur in the statement: check how it is "
                           "written there."),
    "phrases_already_out": _l("Every phrase you typed is blacked out already: the list below "
                              "shows them."),
    "box_not_numbers": _l("Give the area as four numbers: left, top, width and height, in "
                          "percent of the image."),
    "box_empty": _l("The area needs a width and a height above 0."),
    "box_outside": _l("The area must lie within the image: left plus width, and top plus "
                      "height, at most 100."),
    "too_many_boxes": _l("At most %(num)d areas can be blacked out in one image."),
    "image_unreadable": _l("This image cannot be read, so no area of it can be blacked out: "
                           "leave it out of the package."),
}
# What each row of referral/workflow.py says, beside its citation (kept as data there, in the
# regulation's own words: 17号 第9条).
BASIS_NOTES = {
    "head_decides_3_days": _l("The case team reports; the head decides within 3 days."),
    "hand_over_24_hours": _l("Hand over within 24 hours of approval."),
    "refusal_with_reasons": _l("A refusal is recorded with its reasons."),
    "letter_and_materials": _l("The 移送书 and the materials go to the receiving body, with a "
                               "copy to the procuratorate."),
    "decide_filing_3_days": _l("The receiving body decides on filing within 3 days."),
    "material_24_hours_supplement_3_days": _l("Missing material is asked for within 24 hours "
                                              "and supplemented within 3 days."),
    "not_in_jurisdiction": _l("Not within its jurisdiction: forwarded to the competent body."),
    "filed_in_writing_exhibits_3_days": _l("Filing is notified in writing; exhibits are handed "
                                           "over within 3 days."),
    "reconsideration_3_working_days": _l("Reconsideration may be asked within 3 working days."),
    "no_decision_in_period": _l("No decision within the period."),
    "police_decide_3_working_days": _l("The police decide the reconsideration within 3 working "
                                       "days."),
    "procuratorate_supervision": _l("The procuratorate is asked to supervise the filing "
                                    "(立案监督)."),
    "non_prosecution_notified_3_days": _l("A decision not to prosecute is notified within 3 "
                                          "days."),
    "returned_for_penalty": _l("Returned to the bureau for an administrative penalty."),
}
NO_KEY = _l("You have not been granted the key that opens this. Ask a colleague who holds the "
            "unit's key to grant it to you, or paste the unit's recovery key on the “Unit keys” "
            "page.")
# Every refusal a step of these pages can meet. A key that is not held or does not open is one
# of them: a refusal in words, never a 500.
REFUSED = (referrals.CaseRefused, TransitionRefused, KeyNotHeld, crypto.CryptoError,
           IntakeRejected, redaction.RedactionRefused)


def refusal_words(error: BaseException) -> str:
    """Why a step was refused, in the page's language."""
    if isinstance(error, KeyNotHeld | crypto.CryptoError):
        return str(NO_KEY)
    if isinstance(error, redaction.RedactionRefused):
        words = REDACTION_REFUSALS.get(error.code)
        return str(words) % error.params if words else refusal("bad_value")
    if isinstance(error, IntakeRejected):
        return " ".join(error_text(e) for e in error.errors.values())
    return refusal(getattr(error, "code", "bad_value"))


@contextmanager
def step_then_redirect(target: str) -> Iterator[list[Response]]:
    """Run a step; on success flash "Done.", on a refusal flash why, then go back to `target`.
    An unknown object answers 404. The views' one place for turning refusals into words."""
    result = [redirect(target, 303)]
    try:
        yield result
    except referrals.NotFound:
        abort(404)
    except REFUSED as refused:
        db.session.rollback()
        result[0] = redirect(target, 303)
        flash(refusal_words(refused), "error")
    else:
        flash(gettext("Done."))


@dataclass
class Outcome:
    error: str | None = None
    no_key: bool = False


@contextmanager
def step_keeping_input() -> Iterator[Outcome]:
    """Run a step whose form has typed input: a refusal becomes `outcome.error` (in words) so
    the view renders the form again with what was typed; success is the view's to redirect."""
    outcome = Outcome()
    try:
        yield outcome
    except referrals.NotFound:
        abort(404)
    except REFUSED as refused:
        db.session.rollback()
        outcome.error = refusal_words(refused)
        outcome.no_key = isinstance(refused, KeyNotHeld | crypto.CryptoError)


def refusal(code: str) -> str:
    label = REFUSALS.get(code) or CASE_REFUSALS.get(code)
    return str(label) if label else refusal_text(code)


def state_text(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


def basis_text(transition: Transition) -> str:
    """The row's legal citation, and what it says in the page's language."""
    note = BASIS_NOTES.get(transition.note)
    if transition.basis and note:
        return f"{transition.basis}: {note}"
    return transition.basis or (str(note) if note else "")


def _done(target: str) -> Response:
    flash(gettext("Done."))
    return redirect(target, 303)


# ---------------------------------------------------------------------------------------------
# Cases


def _int_list(values: list[str]) -> list[int]:
    # An id no row can have (too large, or a digit like "²") becomes 0: refused as unknown.
    return [row_id(part) or 0 for value in values for part in value.replace(",", " ").split()
            if part.isdigit()]


@bp.route("/cases", methods=["GET", "POST"])
@signed_in
def cases(caller: Caller) -> Any:
    principal = caller.principal
    error = None
    if request.method == "POST":
        with step_keeping_input() as outcome:
            case = referrals.form_case(
                db.session, principal, tip_ids=_int_list(request.form.getlist("tips")),
                member_ids=_int_list(request.form.getlist("members")),
                offence_code=request.form.get("offence", ""),
                title=request.form.get("title", ""), summary=request.form.get("summary", ""),
                number_format=current_app.config["CASE_NUMBER_FORMAT"])
        if outcome.error is None:
            return _done(url_for("staff.case", case_id=case.id))
        error = outcome.error
        typed = {"tips": set(_int_list(request.form.getlist("tips"))),
                 "members": set(_int_list(request.form.getlist("members"))),
                 "offence": request.form.get("offence", ""),
                 "title": request.form.get("title", ""),
                 "summary": request.form.get("summary", "")}
    else:
        typed = {"tips": set(_int_list(request.args.getlist("tips"))), "members": set(),
                 "offence": "", "title": "", "summary": ""}
    visible = [c for c in db.session.scalars(select(Case).order_by(Case.id.desc()))
               if referrals.case_visible(principal, c)]
    offences = list(db.session.scalars(select(Offence).where(Offence.active.is_(True))
                                       .order_by(Offence.id)))
    page = render_template(
        "staff/cases.html", cases=visible, lang=current_lang(), caller=caller,
        candidates=referrals.team_candidates(db.session, principal),
        eligible=referrals.tips_for_a_case(db.session, principal), offences=offences,
        typed=typed, error=error)
    return (page, 422) if error else page


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
                      if (files := referrals.step_documents(db.session, principal, r))]
    return render_template("staff/case.html", view=view, case=view.case, caller=caller,
                           lang=current_lang(), receivers=receivers, referral_files=referral_files,
                           documents=DOCUMENT_LABELS, state_text=state_text)


@bp.get("/documents/<int:attachment_id>")
@signed_in
def case_document(caller: Caller, attachment_id: int) -> Response:
    return document_response(caller, attachment_id)


def document_response(caller: Caller, attachment_id: int) -> Response:
    """A case's (or a referral step's) document, as uploaded: its name and true type
    (audited)."""
    try:
        filename, _media_type, chunks = referrals.open_document(db.session, caller.principal,
                                                                attachment_id)
    except referrals.NotFound:
        abort(404)
    except (KeyNotHeld, crypto.CryptoError):
        db.session.rollback()
        abort(403)
    # Saved, never shown inline (nosniff forbids guessing): the type travels in the name.
    return Response(stream_with_context(chunks), mimetype="application/octet-stream",
                    headers={"Content-Disposition": content_disposition(filename)})


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
                           state_text=state_text, face="staff", lang=current_lang())


def render_referral(caller: Caller, referral_id: int, face: str, *,
                    failed: tuple[str, str] | None = None) -> Any:
    """The referral page. `failed` = (action, why) re-renders it after a refused step, with the
    form of that step holding what was typed."""
    try:
        referral = referrals.get_referral(db.session, caller.principal, referral_id)
    except referrals.NotFound:
        abort(404)
    try:
        reasons = referrals.referral_reasons(db.session, caller.principal, referral)
    except (KeyNotHeld, crypto.CryptoError):
        reasons = {}
    review = None
    steps = referrals.step_documents(db.session, caller.principal, referral)
    if face == "staff" and referrals.case_visible(caller.principal, referral.case):
        try:
            review = referrals.review_referral(db.session, caller.principal, referral)
        except crypto.CryptoError:
            db.session.rollback()
    users = {u.id: u for u in db.session.scalars(select(User))}
    return render_template(
        "staff/referral.html", referral=referral, caller=caller, face=face,
        actions=referrals.available_actions(caller.principal, referral), reasons=reasons,
        users=users, lang=current_lang(), labels=ACTION_LABELS, documents=DOCUMENT_LABELS,
        state_text=state_text, basis_text=basis_text, review=review,
        tip_evidence=referrals.TIP_EVIDENCE, failed=failed, steps=steps,
        typed=request.form if failed else {})


def letter_context(action: str, contact_phone: str) -> dict[str, object]:
    """What the 移送书 needs beyond the case: the contact, the materials' names, and the log
    checkpoint it is issued under (signed at every handover)."""
    context: dict[str, object] = {"contact_phone": contact_phone,
                                  "document_labels": LETTER_LABELS}
    if action == "hand_over" and contact_phone.strip():
        context["checkpoint"] = checkpoint_now()
    return context


def handle_action(caller: Caller, referral_id: int, action: str, face: str) -> Any:
    """One step; a refused one shows the page again, its form keeping what was typed."""
    with step_keeping_input() as outcome:
        referrals.act(
            db.session, caller.principal, referral_id, action,
            reason=request.form.get("reason", ""), period=request.form.get("period", "normal"),
            uploads=uploads_from(request.files.getlist("files")),
            document_kind=request.form.get("document_kind") or None, limits=limits(),
            letter_context=letter_context(action, request.form.get("contact_phone", "")),
            tip_files=(_int_list(request.form.getlist("tip_files"))
                       if "tip_files_offered" in request.form else None),
            tip_texts=(_int_list(request.form.getlist("tip_texts"))
                       if "tip_files_offered" in request.form else None))
    if outcome.error is None:
        return _done(url_for(f"{face}.referral", referral_id=referral_id))
    return render_referral(caller, referral_id, face, failed=(action, outcome.error)), 422


def package_response(caller: Caller, referral_id: int) -> Any:
    """The package as the receiving body's liaison (or the bureau) can open it: decrypted ZIP,
    or ?format=age for the sealed file to open offline with the age tool."""
    sealed_only = request.args.get("format") == "age"
    try:
        if sealed_only:
            referral, sealed = referrals.package_ciphertext(db.session, caller.principal,
                                                            referral_id)
            chunks = iter(lambda: sealed.read(1024 * 1024), b"")
        else:
            referral, chunks = referrals.open_package(db.session, caller.principal,
                                                      referral_id)
    except referrals.NotFound:
        abort(404)
    except KeyNotHeld:
        row = db.session.get(Referral, referral_id)
        return render_template("staff/no_key.html", what="referral", tip_id=referral_id,
                               unit=row.receiving_unit if row else None, caller=caller), 403
    name = f"referral-{referral.id}.zip" + (".age" if sealed_only else "")
    return Response(stream_with_context(chunks),
                    mimetype="application/octet-stream" if sealed_only else "application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/referrals/<int:referral_id>")
@signed_in
def referral(caller: Caller, referral_id: int) -> Any:
    return render_referral(caller, referral_id, "staff")


@bp.post("/referrals/<int:referral_id>/<action>")
@signed_in
def referral_action(caller: Caller, referral_id: int, action: str) -> Any:
    return handle_action(caller, referral_id, action, "staff")


@bp.get("/referrals/<int:referral_id>/package")
@signed_in
def referral_package(caller: Caller, referral_id: int) -> Any:
    return package_response(caller, referral_id)


def _no_case_key(caller: Caller, referral_id: int) -> tuple[str, int]:
    """The "you hold no key" page (403) for a referral whose case unit's key the person lacks."""
    db.session.rollback()
    row = db.session.get(Referral, referral_id)
    return render_template("staff/no_key.html", what="referral", tip_id=referral_id,
                           unit=row.case.unit if row else None, caller=caller), 403


@bp.get("/referrals/<int:referral_id>/letter-preview")
@signed_in
def letter_preview(caller: Caller, referral_id: int) -> Any:
    """The 移送书 as it would be issued now, marked 样稿 (the head reads it before deciding)."""
    try:
        pdf = referrals.preview_letter(db.session, caller.principal, referral_id,
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
@signed_in
def redact_statement(caller: Caller, referral_id: int, tip_id: int) -> Any:
    return _redaction_page(caller, referral_id, tip_id=tip_id)


@bp.route("/referrals/<int:referral_id>/redact/file/<int:attachment_id>",
          methods=["GET", "POST"])
@signed_in
def redact_image(caller: Caller, referral_id: int, attachment_id: int) -> Any:
    return _redaction_page(caller, referral_id, attachment_id=attachment_id)


def _redaction_step(caller: Caller, referral_id: int, tip_id: int | None,
                    attachment_id: int | None) -> None:
    form, session, principal = request.form, db.session, caller.principal
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
            return _done(request.path)
        error = outcome.error  # without the key, the page below says how to get it (403)
    try:
        target = redaction.open_target(db.session, caller.principal, referral_id,
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

def _local_datetime(text: str, at: time) -> datetime:
    """A yyyy-mm-dd date typed in the form, at a time of day in Beijing; ValueError if not."""
    return datetime.combine(datetime.strptime(text.strip(), "%Y-%m-%d").date(), at,
                            tzinfo=PREFECTURE_ZONE)


@bp.route("/suggestions", methods=["GET", "POST"])
@signed_in
def suggestions(caller: Caller) -> Any:
    principal = caller.principal
    error = None
    if request.method == "POST":
        with step_keeping_input() as outcome:
            try:
                received = _local_datetime(request.form.get("received_on", ""), time(9))
                due_text = request.form.get("due_on", "").strip()
                due = _local_datetime(due_text, time(23, 59, 59)) if due_text else None
            except ValueError:
                raise referrals.CaseRefused("bad_date") from None
            suggestion = referrals.record_suggestion(
                db.session, principal, kind=request.form.get("kind", ""),
                issuer=request.form.get("issuer", ""), unit_code=request.form.get("unit", ""),
                received_on=received, problems=request.form.get("problems", ""), due_on=due)
        if outcome.error is None:
            return _done(url_for("staff.suggestion", suggestion_id=suggestion.id))
        error = outcome.error
    units = list(db.session.scalars(select(Unit).where(Unit.id.in_(
        sorted(principal.units_for("tip.view")))).order_by(Unit.id)))
    page = render_template("staff/suggestions.html", caller=caller,
                           rows=referrals.visible_suggestions(db.session, principal),
                           kinds=SUGGESTION_KIND_LABELS, units=units, lang=current_lang(),
                           typed=request.form if error else {}, error=error)
    return (page, 422) if error else page


@bp.route("/suggestions/<int:suggestion_id>", methods=["GET", "POST"])
@signed_in
def suggestion(caller: Caller, suggestion_id: int) -> Any:
    principal = caller.principal
    target = url_for("staff.suggestion", suggestion_id=suggestion_id)
    error = None
    if request.method == "POST":
        with step_keeping_input() as outcome:
            referrals.answer_suggestion(db.session, principal, suggestion_id,
                                        request.form.get("measures", ""),
                                        evidence=uploads_from(request.files.getlist("files")),
                                        limits=limits())
        if outcome.error is None:
            return _done(target)
        if outcome.no_key:  # the page cannot be shown either: it says how to get the key
            flash(outcome.error, "error")
            return redirect(target, 303)
        error = outcome.error
    try:
        row, content, evidence = referrals.open_suggestion(db.session, principal, suggestion_id)
    except referrals.NotFound:
        abort(404)
    except (KeyNotHeld, crypto.CryptoError):
        db.session.rollback()
        row = referrals.suggestion_row(db.session, principal, suggestion_id)
        return render_template("staff/no_key.html", what="suggestion", tip_id=suggestion_id,
                               unit=row.unit, caller=caller), 403
    page = render_template("staff/suggestion.html", caller=caller, row=row, content=content,
                           evidence=evidence, kinds=SUGGESTION_KIND_LABELS, error=error,
                           measures=request.form.get("measures") if error else None)
    return (page, 422) if error else page
