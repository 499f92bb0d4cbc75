"""The referral pages the officers' face (portal/web/staff) and the liaison face
(portal/web/liaison) share: the referral page and its steps, the package, a step's document, and
turning a refused step into words. Thin: one service call each (portal/cases)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse  # what redirect() answers

from models import Referral, User
from portal.cases import redaction, referrals
from portal.cases.packages import package_download
from portal.intake.filing import IntakeRejected
from portal.security import access, crypto
from portal.security.access import KeyNotHeld
from portal.web import checkpoint_now, limits, row_id, uploads_from
from portal.web.extensions import db
from portal.web.http import content_disposition, current_lang
from portal.web.messages import (
    ACTION_LABELS,
    DOCUMENT_LABELS,
    LETTER_LABELS,
    NO_KEY,
    REDACTION_REFUSALS,
    basis_text,
    error_text,
    state_text,
    step_refusal_text,
)
from portal.web.session import Caller
from referral.workflow import TransitionRefused

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
        return str(words) % error.params if words else step_refusal_text("bad_value")
    if isinstance(error, IntakeRejected):
        return " ".join(error_text(e) for e in error.errors.values())
    return step_refusal_text(getattr(error, "code", "bad_value"))


@contextmanager
def step_then_redirect(target: str) -> Iterator[list[BaseResponse]]:
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


def done(target: str) -> BaseResponse:
    flash(gettext("Done."))
    return redirect(target, 303)


def before_param() -> int | None:
    """The `before` of a referral list's next page (an id); anything else is the first page."""
    return row_id(request.args.get("before", ""))


def int_list(values: list[str]) -> list[int]:
    # An id no row can have (too large, or a digit like "²") becomes 0: refused as unknown.
    return [row_id(part) or 0 for value in values for part in value.replace(",", " ").split()
            if part.isdigit()]


def document_response(caller: Caller, attachment_id: int) -> Response:
    """A case's (or a referral step's) document, as uploaded: its name and true type
    (audited)."""
    try:
        filename, _media_type, chunks = referrals.open_document(db.session(), caller.principal,
                                                                attachment_id)
    except referrals.NotFound:
        abort(404)
    except (KeyNotHeld, crypto.CryptoError):
        db.session.rollback()
        abort(403)
    # Saved, never shown inline (nosniff forbids guessing): the type travels in the name.
    return Response(stream_with_context(chunks), mimetype="application/octet-stream",
                    headers={"Content-Disposition": content_disposition(filename)})


def render_referral(caller: Caller, referral_id: int, face: str, *,
                    failed: tuple[str, str] | None = None) -> Any:
    """The referral page. `failed` = (action, why) re-renders it after a refused step, with the
    form of that step holding what was typed."""
    try:
        referral = referrals.get_referral(db.session(), caller.principal, referral_id)
    except referrals.NotFound:
        abort(404)
    try:
        reasons = referrals.referral_reasons(db.session(), caller.principal, referral)
    except (KeyNotHeld, crypto.CryptoError):
        reasons = {}
    review = None
    steps = referrals.step_documents(db.session(), caller.principal, referral)
    if face == "staff" and access.may(caller.principal, "case.view", referral.case):
        try:
            review = referrals.review_referral(db.session(), caller.principal, referral)
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
            db.session(), caller.principal, referral_id, action,
            reason=request.form.get("reason", ""), period=request.form.get("period", "normal"),
            uploads=uploads_from(request.files.getlist("files")),
            document_kind=request.form.get("document_kind") or None, limits=limits(),
            letter_context=letter_context(action, request.form.get("contact_phone", "")),
            tip_files=(int_list(request.form.getlist("tip_files"))
                       if "tip_files_offered" in request.form else None),
            tip_texts=(int_list(request.form.getlist("tip_texts"))
                       if "tip_files_offered" in request.form else None))
    if outcome.error is None:
        return done(url_for(f"{face}.referral", referral_id=referral_id))
    return render_referral(caller, referral_id, face, failed=(action, outcome.error)), 422


def package_response(caller: Caller, referral_id: int) -> Any:
    """The package as the receiving body's liaison (or the bureau) can open it: decrypted ZIP,
    or ?format=age for the sealed file to open offline with the age tool."""
    try:
        package = package_download(db.session(), caller.principal, referral_id,
                                   sealed=request.args.get("format") == "age")
    except referrals.NotFound:
        abort(404)
    except KeyNotHeld:
        row = db.session.get(Referral, referral_id)
        return render_template("staff/no_key.html", what="referral", tip_id=referral_id,
                               unit=row.receiving_unit if row else None, caller=caller), 403
    return Response(stream_with_context(package.chunks), mimetype=package.media_type,
                    headers={"Content-Disposition":
                             f'attachment; filename="{package.filename}"'})
