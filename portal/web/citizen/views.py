"""Thin views: read the form, call the domain, render.

A form that changes something takes effect once: the report and reply forms carry a one-time
submission token (portal/intake/receipts.py), so a refresh or a double click repeats nothing. The
receipt
and the follow-up handle travel only in POST bodies, never in an address or a cookie.
"""

from __future__ import annotations

from flask import Response, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_wtf import FlaskForm
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms.validators import ValidationError

from models import Category
from portal.intake import filing, followup, receipts
from portal.intake.filing import FieldError, IntakeRejected
from portal.intake.hashgate import Busy
from portal.intake.sanitize import describe_uncleanable
from portal.triage.categories import generation as categories_generation
from portal.web import choices, followup_secret, limits, outage, uploads_from
from portal.web.citizen import bp
from portal.web.citizen.forms import (
    COUNTY_FIELD_CHOICES,
    FollowupForm,
    ReceiptDownloadForm,
    ReceiptLanguageForm,
    ReplyForm,
    ReportForm,
)
from portal.web.extensions import csrf, db
from portal.web.http import LOCALES, current_lang, refresh_language
from portal.web.messages import error_text, unit_name
from portal.web.pagecache import page_cache
from referral.filenames import safe_name

# Where the error summary's link for a field lands when it is not the field's own id.
_ANCHORS = {"category": "category-none"}


def _categories() -> list[Category]:
    return list(db.session.scalars(
        select(Category).where(Category.current.is_(True)).order_by(Category.sort_order)
    ))


def _secrets() -> receipts.SubmissionSecrets:
    return receipts.SubmissionSecrets.from_secret_key(current_app.config["SECRET_KEY"])


def _switch_language(code: str | None) -> None:
    """A language button on a page that exists only as a POST result: remembered for the visit,
    as ?lang= is on other pages."""
    if code in LOCALES:
        session["lang"] = code
        refresh_language()


def _csrf_ok() -> bool:
    """The report and reply views check CSRF themselves, so that an expired form comes back with
    everything typed in it instead of an error page."""
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return True
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return False
    return True


def citizen_unit_name(code: str) -> str:
    """A handling unit as a citizen knows it: 州本级 is the bureau itself."""
    if code == "zhou":
        return gettext("Prefecture Ecological Environment Bureau")
    return unit_name(code)


def _prepare_report_form(form: ReportForm) -> ReportForm:
    lang = current_lang()
    categories = _categories()
    form.category.choices = choices([("", gettext("Not sure — let the officers classify it"))] + [
        (c.code, c.name(lang)) for c in categories
    ])
    from portal.operations.seed import UNITS

    names = {code: {"zh": zh, "ko": ko, "en": en}[lang] for code, _k, _p, zh, ko, en in UNITS}
    form.county.choices = choices([("", gettext("— choose —"))] + [
        (code, names[code] if code != "unknown" else gettext("I don't know"))
        for code in COUNTY_FIELD_CHOICES
    ])
    return form


def _attach_errors(form: ReportForm | ReplyForm, errors: dict[str, FieldError]) -> list[str]:
    """Put each domain error on its form field; return the messages with no field of their own."""
    loose = []
    for name, error in errors.items():
        field_name = name.split(".")[0]
        field = getattr(form, field_name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*list(field.errors or []), error_text(error)]
        else:
            loose.append(error_text(error))
    return loose


def _summary(form: FlaskForm) -> list[tuple[str, str, str]]:
    """(anchor, label, message) for every field error, in the form's order, for the summary."""
    return [(_ANCHORS.get(field.name, field.id), str(field.label.text), str(message))
            for field in form if field.type not in ("HiddenField", "CSRFTokenField")
            for message in (field.errors or [])]


def _files_again() -> list[str]:
    """Browsers cannot keep chosen files when a form comes back: name them, to choose again.
    (A URL-encoded post, like the report form's language buttons, sends only their names.)"""
    if request.method != "POST":
        return []
    names = [safe_name(f.filename) for f in request.files.getlist("attachments") if f.filename]
    names = names or [safe_name(name) for name in request.form.getlist("attachments")
                      if name.strip()]
    # A form drawn again carries the names it asked for (hidden), so that switching its
    # language, or another error, still says which files to attach again.
    names = names or [safe_name(name) for name in request.form.getlist("files_again")
                      if name.strip()]
    return names[:current_app.config["MAX_FILES"]]


def _not_sent_title(status: int) -> str | None:
    """The heading over a form that comes back because the portal could not take it (busy, or
    the database cannot store): the message below says why; the usual heading ("Please check
    what is listed here…") would ask the citizen to correct what is not wrong."""
    return gettext("Not sent yet") if status == 503 else None


def _render_report(form: ReportForm, status: int = 200, loose: list[str] | None = None
                   ) -> tuple[str, int]:
    categories = _categories()
    if receipts.form_submission(_secrets(), "report", form.submission.data) is None:
        form.submission.data = receipts.new_form_token(_secrets(), "report")
    return render_template(
        "citizen/report.html",
        form=_prepare_report_form(form),
        province=[c for c in categories if c.scope == "province"],
        prefecture=[c for c in categories if c.scope == "prefecture"],
        lang=current_lang(),
        uncleanable=describe_uncleanable(),
        summary=_summary(form),
        summary_title=_not_sent_title(status),
        loose_errors=loose or [],
        files_again=_files_again(),
        max_files=current_app.config["MAX_FILES"],
        max_mb=current_app.config["MAX_FILE_BYTES"] // (1024 * 1024),
    ), status


def _render_receipt(receipt: receipts.Receipt | None, submission: str, *, again: bool,
                    status: int = 200) -> tuple[str, int]:
    """The receipt page; `receipt` None when a repeat comes too late to show it again."""
    download = ReceiptDownloadForm(formdata=None, receipt=receipt) if receipt else None
    return render_template("citizen/receipt.html", receipt=receipt, download_form=download,
                           again=again, submission=submission), status


@bp.get("/")
def index() -> str:
    """The same for every visitor in a language: kept (portal/web/pagecache.py) until the
    categories change. A visitor with a message waiting (a flash) gets it rendered."""
    if "_flashes" in session:
        return _render_index()
    cache = page_cache()
    version = cache.version("categories", lambda: categories_generation(db.session()))
    return cache.page(("index", current_lang(), request.query_string, version), _render_index)


def _render_index() -> str:
    return render_template("citizen/index.html", categories=_categories(), lang=current_lang())


@bp.get("/report")
def report_form() -> tuple[str, int]:
    return _render_report(ReportForm())


@bp.post("/report")
@csrf.exempt  # checked below, keeping what was typed (_csrf_ok)
def report_submit() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    form = ReportForm()
    secrets_ = _secrets()
    submission = receipts.form_submission(secrets_, "report", form.submission.data)
    if not _csrf_ok():
        return _render_report(form, 400, [gettext(
            "This form had expired. Everything you typed is kept: please check it and send it "
            "again.")])
    if submission is None:
        # A form drawn before submission tokens existed, or a damaged one: filing it could not
        # be made refresh-safe, so ask once more, keeping every field (a new token is drawn).
        return _render_report(form, 400, [gettext(
            "This form was opened before the portal was updated, or it was damaged. Everything "
            "you typed is kept: please check it and send it again.")])
    if (form.website.data or "").strip():
        return _render_report(form, 400, [error_text(FieldError("honeypot"))])
    if form.identity_typed_but_not_chosen():
        form.real_name.errors = [error_text(FieldError("identity_unconfirmed"))]
        return _render_report(form, 400)
    uploads = uploads_from(request.files.getlist("attachments"))
    try:
        draft = form.to_draft()
        draft.language = current_lang()  # the page's language is the language of the tip
        filed = filing.file_tip(db.session(), draft, uploads, limits=limits(),
                                receipt_cost=current_app.config["RECEIPT_ARGON2"],
                                once=submission.bind(secrets_))
    except filing.AlreadyFiled as earlier:
        # A refresh or a double click: nothing new was filed; the same receipt, re-derived.
        return _render_receipt(earlier.receipt, form.submission.data or "", again=True)
    except filing.FormReused:
        form.submission.data = receipts.new_form_token(secrets_, "report")
        return _render_report(form, 400, [gettext(
            "This form had already been used to send a report, so nothing was sent now. What "
            "you typed is kept below: check it and send it as a new report.")])
    except IntakeRejected as rejected:
        loose = _attach_errors(form, rejected.errors)
        return _render_report(form, 400, loose)
    except Busy as busy:
        # Refused before anything was written; the form keeps its one-time token, so sending it
        # again files the report once.
        page, status = _render_report(form, 503, [gettext(
            "The portal is very busy right now. Nothing was stored. Everything you typed is "
            "kept: please send it again in a minute.")])
        return page, status, _retry_after(busy)
    return _render_receipt(filed.receipt, form.submission.data or "", again=False, status=201)


def _retry_after(busy: Busy) -> dict[str, str]:
    return {"Retry-After": str(busy.retry_after)}


@bp.post("/report/language")
@csrf.exempt  # changes nothing but the visit's language; an expired form must not lose the text
def report_language() -> tuple[str, int]:
    """The report form's language buttons: the form again, in that language, with everything
    typed in it (and its one-time token); nothing is checked or filed."""
    form = ReportForm()
    _switch_language(request.form.get("lang"))
    return _render_report(form)


@bp.post("/report/receipt")
def receipt_again() -> tuple[str, int] | BaseResponse:
    """The receipt page in another language: its buttons post the report form's token back."""
    form = ReceiptLanguageForm()
    _switch_language(form.lang.data)
    secrets_ = _secrets()
    submission = receipts.form_submission(secrets_, "report", form.submission.data)
    earlier = filing.filed_before(db.session(), submission.bind(secrets_)) if submission else None
    if earlier is None:
        return redirect(url_for("citizen.report_form"))
    return _render_receipt(earlier.receipt, form.submission.data or "", again=False)


@bp.post("/receipt.txt")
def receipt_download() -> Response:
    form = ReceiptDownloadForm()
    receipt = form.receipt.data or ""
    text = gettext("Qingliu tip receipt: %(receipt)s\n\nKeep it secret. It is the only way to "
                   "follow up your tip; it cannot be recovered.\n", receipt=receipt)
    return Response(text, mimetype="text/plain",
                    headers={"Content-Disposition": 'attachment; filename="receipt.txt"'})


@bp.get("/followup")
def followup_form() -> str:
    return render_template("citizen/followup.html", form=FollowupForm(), not_found=False)


def _what_was_sent(view: followup.ReporterView) -> dict[str, str]:
    """The category the citizen chose and the county, in words (codes stay in the content)."""
    lang = current_lang()
    code = view.content.get("category")
    category = db.session.scalars(
        select(Category).where(Category.code == code)
        .order_by(Category.current.desc(), Category.version.desc())
    ).first() if code else None
    county = view.content.get("county")
    return {
        "category": category.name(lang) if category else gettext("Not sure"),
        "county": citizen_unit_name(county) if county else gettext("I don't know"),
        "handled_by": citizen_unit_name(view.unit_code),
    }


def _render_status(key: followup.FollowupKey, reply_form: ReplyForm | None = None,
                   sent: bool = False, status: int = 200, loose: list[str] | None = None,
                   files_again: list[str] | None = None) -> tuple[str, int]:
    view = followup.reporter_view(db.session(), key)
    token = followup.issue_token(key, followup_secret())
    reply_form = reply_form or ReplyForm(formdata=None)
    reply_form.token.data = token
    if receipts.form_submission(_secrets(), "reply", reply_form.submission.data) is None:
        reply_form.submission.data = receipts.new_form_token(_secrets(), "reply")
    return render_template("citizen/status.html", view=view, reply_form=reply_form, sent=sent,
                           handle=token, what_was_sent=_what_was_sent(view),
                           summary=_summary(reply_form), loose_errors=loose or [],
                           summary_title=_not_sent_title(status),
                           files_again=files_again if files_again is not None else (
                               _files_again() if status >= 400 else []),
                           max_files=current_app.config["MAX_FILES"]), status


def _expired(draft: str = "") -> tuple[str, int]:
    """The visit's handle ran out: ask for the receipt again, carrying an unsent message back."""
    form = FollowupForm(formdata=None)
    form.draft.data = draft
    return render_template("citizen/followup.html", form=form, not_found=False, expired=True,
                           files_again=_files_again()), 400


@bp.post("/followup/language")
@csrf.exempt  # changes nothing but the visit's language; an unsent message must not be lost
def followup_language() -> str:
    """The follow-up page holding an unsent message (its visit expired, or the portal was busy)
    in another language: its language buttons post the form here, and the message comes back.
    The receipt is not written back into the page (it never is)."""
    form = FollowupForm()
    _switch_language(request.form.get("lang"))
    form.receipt.data = ""
    return render_template("citizen/followup.html", form=form, not_found=False,
                           draft_kept=bool(form.draft.data))


@bp.post("/followup")
def followup_lookup() -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    form = FollowupForm()
    try:
        key = followup.unlock(db.session(), form.receipt.data or "",
                              current_app.config["RECEIPT_ARGON2"])
    except followup.ReceiptNotFound:
        form.receipt.data = ""
        return render_template("citizen/followup.html", form=form, not_found=True), 404
    except Busy as busy:
        # A message being carried back (form.draft) stays; the receipt is not written back into
        # the page, as on every other page but the receipt page itself.
        form.receipt.data = ""
        return render_template("citizen/followup.html", form=form, not_found=False,
                               busy=True), 503, _retry_after(busy)
    reply_form = None
    if form.draft.data:
        reply_form = ReplyForm(formdata=None)
        reply_form.body.data = form.draft.data
    return _render_status(key, reply_form=reply_form)


@bp.post("/followup/status")
@csrf.exempt  # changes nothing but the visit's language; the sealed handle is the credential
def followup_show() -> tuple[str, int]:
    """The status page again, in another language: its language buttons post the reply form
    (URL-encoded) with the sealed handle in the body, and a message being written comes back
    unsent, with its one-time token."""
    form = ReplyForm()
    _switch_language(request.form.get("lang"))
    try:
        key = followup.redeem_token(form.token.data or "", followup_secret())
    except followup.ReceiptNotFound:
        return _expired(form.body.data or "")
    return _render_status(key, reply_form=form, files_again=_files_again())


@bp.post("/followup/reply")
@csrf.exempt  # checked below, keeping what was typed (_csrf_ok)
def followup_reply() -> tuple[str, int]:
    form = ReplyForm()
    try:
        key = followup.redeem_token(form.token.data or "", followup_secret())
    except followup.ReceiptNotFound:
        return _expired(form.body.data or "")
    if not _csrf_ok():
        return _render_status(key, reply_form=form, status=400, loose=[gettext(
            "This form had expired. Everything you typed is kept: please check it and send it "
            "again.")])
    secrets_ = _secrets()
    submission = receipts.form_submission(secrets_, "reply", form.submission.data)
    if submission is None:
        return _render_status(key, reply_form=form, status=400, loose=[gettext(
            "This form was opened before the portal was updated, or it was damaged. Everything "
            "you typed is kept: please check it and send it again.")])
    uploads = uploads_from(request.files.getlist("attachments"))
    try:
        followup.reply(db.session(), key, form.body.data or "", uploads, limits=limits(),
                       once=submission.index(secrets_))
    except followup.AlreadySent:
        return _render_status(key, sent=True)  # a refresh: the message is there once
    except filing.FormReused:
        # The form's token was used for a message to another tip (a form carried across pages):
        # nothing was sent; a fresh token, and what was typed is kept.
        form.submission.data = receipts.new_form_token(secrets_, "reply")
        return _render_status(key, reply_form=form, status=400, loose=[gettext(
            "This form had already been used to send a message, so nothing was sent now. What "
            "you typed is kept below: please send it again.")])
    except IntakeRejected as rejected:
        loose = _attach_errors(form, rejected.errors)
        return _render_status(key, reply_form=form, status=400, loose=loose)
    return _render_status(key, sent=True)


# After an outage that stored nothing (portal/web/outage.py), the report and reply forms come
# back with everything typed in them and their one-time token, so that sending again files once.
@outage.form_again("citizen.report_submit")
def _report_form_again(message: str) -> tuple[str, int]:
    return _render_report(ReportForm(), 503, [message])


@outage.form_again("citizen.followup_reply")
def _reply_form_again(message: str) -> tuple[str, int]:
    form = ReplyForm()
    key = followup.redeem_token(form.token.data or "", followup_secret())
    return _render_status(key, reply_form=form, status=503, loose=[message])
