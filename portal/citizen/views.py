"""Thin views: read the form, call the domain, render."""

from __future__ import annotations

from flask import Response, current_app, render_template, request
from flask_babel import gettext
from sqlalchemy import select

from models import Category
from portal import followup, intake
from portal.citizen import bp
from portal.citizen.forms import (
    COUNTY_FIELD_CHOICES,
    FollowupForm,
    ReceiptDownloadForm,
    ReplyForm,
    ReportForm,
)
from portal.extensions import db
from portal.http import current_lang
from portal.intake import FieldError, IntakeRejected
from portal.messages import error_text
from portal.sanitize import describe_uncleanable
from portal.web import choices, followup_secret, limits, uploads_from


def _categories() -> list[Category]:
    return list(db.session.scalars(
        select(Category).where(Category.current.is_(True)).order_by(Category.sort_order)
    ))


def _prepare_report_form(form: ReportForm) -> ReportForm:
    lang = current_lang()
    categories = _categories()
    form.category.choices = choices([("", gettext("Not sure — let the officers classify it"))] + [
        (c.code, c.name(lang)) for c in categories
    ])
    from portal.seed import UNITS

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


def _render_report(form: ReportForm, status: int = 200, loose: list[str] | None = None
                   ) -> tuple[str, int]:
    categories = _categories()
    return render_template(
        "citizen/report.html",
        form=_prepare_report_form(form),
        province=[c for c in categories if c.scope == "province"],
        prefecture=[c for c in categories if c.scope == "prefecture"],
        lang=current_lang(),
        uncleanable=describe_uncleanable(),
        loose_errors=loose or [],
        max_files=current_app.config["MAX_FILES"],
        max_mb=current_app.config["MAX_FILE_BYTES"] // (1024 * 1024),
    ), status


@bp.get("/")
def index() -> str:
    return render_template("citizen/index.html", categories=_categories(), lang=current_lang())


@bp.get("/report")
def report_form() -> tuple[str, int]:
    return _render_report(ReportForm())


@bp.post("/report")
def report_submit() -> tuple[str, int]:
    form = ReportForm()
    if (form.website.data or "").strip():
        return _render_report(form, 400, [error_text(FieldError("honeypot"))])
    if form.identity_typed_but_not_chosen():
        form.real_name.errors = [error_text(FieldError("identity_unconfirmed"))]
        return _render_report(form, 400)
    uploads = uploads_from(request.files.getlist("attachments"))
    try:
        draft = form.to_draft()
        draft.language = current_lang()  # the page's language is the language of the tip
        filed = intake.file_tip(db.session, draft, uploads, limits=limits(),
                                receipt_cost=current_app.config["RECEIPT_ARGON2"])
    except IntakeRejected as rejected:
        loose = _attach_errors(form, rejected.errors)
        return _render_report(form, 400, loose)
    download = ReceiptDownloadForm(formdata=None, receipt=filed.receipt)
    return render_template("citizen/receipt.html", receipt=filed.receipt,
                           download_form=download), 201


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


def _render_status(key: followup.FollowupKey, reply_form: ReplyForm | None = None,
                   sent: bool = False, status: int = 200) -> tuple[str, int]:
    view = followup.reporter_view(db.session, key)
    token = followup.issue_token(key, followup_secret())
    reply_form = reply_form or ReplyForm(formdata=None)
    reply_form.token.data = token
    return render_template("citizen/status.html", view=view, reply_form=reply_form, sent=sent,
                           max_files=current_app.config["MAX_FILES"]), status


@bp.post("/followup")
def followup_lookup() -> tuple[str, int]:
    form = FollowupForm()
    try:
        key = followup.unlock(db.session, form.receipt.data or "",
                              current_app.config["RECEIPT_ARGON2"])
    except followup.ReceiptNotFound:
        form.receipt.data = ""
        return render_template("citizen/followup.html", form=form, not_found=True), 404
    return _render_status(key)


@bp.post("/followup/reply")
def followup_reply() -> tuple[str, int]:
    form = ReplyForm()
    try:
        key = followup.redeem_token(form.token.data or "", followup_secret())
    except followup.ReceiptNotFound:
        return render_template("citizen/followup.html", form=FollowupForm(formdata=None),
                               not_found=False, expired=True), 400
    uploads = uploads_from(request.files.getlist("attachments"))
    try:
        followup.reply(db.session, key, form.body.data or "", uploads, limits=limits())
    except IntakeRejected as rejected:
        _attach_errors(form, rejected.errors)
        return _render_status(key, reply_form=form, status=400)
    return _render_status(key, sent=True)
