"""The administrator's face: first-start setup, accounts and memberships, categories.

Administrators manage people and reference data; none of it opens a tip."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from models import CalendarYear, Category, Membership, Offence, Role, Unit, UnitKind, User
from portal import crypto
from portal.accounts import (
    MIN_PASSWORD_LENGTH,
    WeakPassword,
    add_membership,
    create_user,
    remove_membership,
    set_active,
)
from portal.admin import bp
from portal.audit import Actor
from portal.categories import (
    CategoryEdit,
    CategoryRejected,
    edit_category,
    import_calendar,
    save_offence,
)
from portal.custody import reset_password
from portal.extensions import db
from portal.http import current_lang
from portal.seed import seed
from portal.setup import AlreadySetUp, complete_setup, token_is_valid
from portal.staff.context import Caller, current_caller, session_store
from portal.web import choices


class SetupForm(FlaskForm):
    username = StringField(_l("Administrator username"))
    password = PasswordField(_l("Password"))
    confirm = PasswordField(_l("Password again"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str) -> tuple[str, int] | str:
    if not token_is_valid(db.session, token):
        abort(404)
    form = SetupForm()
    if form.is_submitted():
        username = (form.username.data or "").strip()
        password = form.password.data or ""
        if not username:
            form.username.errors = [gettext("This field is required.")]
        elif password != (form.confirm.data or ""):
            form.confirm.errors = [gettext("The two passwords differ.")]
        else:
            seed(db.session)
            try:
                result = complete_setup(db.session, username, password, token=token,
                                        wrap_cost=current_app.config["WRAP_ARGON2"],
                login_cost=current_app.config["LOGIN_ARGON2"])
            except WeakPassword:
                form.password.errors = [gettext("Use at least %(n)s characters.",
                                                n=MIN_PASSWORD_LENGTH)]
            except AlreadySetUp:
                abort(404)
            else:
                files = {code: crypto.identity_file_text(identity, f"Qingliu recovery key {code}")
                         for code, identity in result.recovery.items()}
                return render_template("admin/recovery.html", files=files)
        return render_template("admin/setup.html", form=form), 400
    return render_template("admin/setup.html", form=form)


def _admin() -> Caller:
    caller = current_caller()
    if caller is None:
        abort(redirect(url_for("staff.login")))
    if not caller.principal.may_admin("accounts.manage"):
        abort(403)
    return caller


class UserForm(FlaskForm):
    username = StringField(_l("Username"))
    display_name = StringField(_l("Display name"))
    password = PasswordField(_l("Initial password (at least 12 characters)"))
    unit = SelectField(_l("Unit"), validate_choice=False)
    role = SelectField(_l("Role"), validate_choice=False)


ROLE_LABELS = {
    Role.INTAKE_OFFICER: _l("Intake officer"), Role.CASE_OFFICER: _l("Case officer"),
    Role.HEAD: _l("Head"), Role.AUDITOR: _l("Auditor"), Role.ADMINISTRATOR: _l("Administrator"),
    Role.LIAISON: _l("Liaison"),
}


def _user_form() -> UserForm:
    form = UserForm()
    lang = current_lang()
    form.unit.choices = choices([(u.code, u.name(lang)) for u in
                         db.session.scalars(select(Unit).order_by(Unit.id))])
    form.role.choices = choices([(role.value, str(label)) for role, label in ROLE_LABELS.items()
                         if role != Role.LIAISON])
    return form


@bp.route("/admin/users", methods=["GET", "POST"])
def users() -> Any:
    caller = _admin()
    form = _user_form()
    actor = Actor("staff", caller.user.id, Role.ADMINISTRATOR)
    if form.is_submitted():
        username = (form.username.data or "").strip()
        if not username:
            form.username.errors = [gettext("This field is required.")]
        elif db.session.scalar(select(User.id).where(User.username == username)):
            form.username.errors = [gettext("This username is taken.")]
        else:
            try:
                user = create_user(db.session, username, form.password.data or "",
                                   wrap_cost=current_app.config["WRAP_ARGON2"],
                login_cost=current_app.config["LOGIN_ARGON2"], actor=actor,
                                   display_name=(form.display_name.data or "").strip())
                add_membership(db.session, user, form.unit.data or "", Role(form.role.data),
                               actor=actor)
            except WeakPassword:
                db.session.rollback()
                form.password.errors = [gettext("Use at least %(n)s characters.",
                                                n=MIN_PASSWORD_LENGTH)]
            except ValueError:
                db.session.rollback()
                form.role.errors = [gettext("A value in the form is not valid.")]
            else:
                db.session.commit()
                flash(gettext("The account has been created. A holder of the unit's key must "
                              "grant it before the officer can read tips."))
                return redirect(url_for("admin.users")), 303
    people = list(db.session.scalars(select(User).order_by(User.username)))
    memberships = list(db.session.scalars(select(Membership)))
    return render_template("admin/users.html", form=form, people=people, caller=caller,
                           memberships=memberships, role_labels=ROLE_LABELS,
                           lang=current_lang()), 400 if form.errors else 200


@bp.post("/admin/users/<int:user_id>/<action>")
def user_action(user_id: int, action: str) -> Any:
    caller = _admin()
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    actor = Actor("staff", caller.user.id, Role.ADMINISTRATOR)
    form = _user_form()
    if action == "membership":
        try:
            add_membership(db.session, user, form.unit.data or "", Role(form.role.data),
                           actor=actor)
            db.session.commit()
        except (ValueError, LookupError):
            db.session.rollback()
            flash(gettext("A value in the form is not valid."), "error")
    elif action == "remove-membership":
        membership = db.session.get(Membership, int(request.form.get("membership_id", 0)))
        if membership is None or membership.user_id != user.id:
            abort(404)
        remove_membership(db.session, membership, actor=actor)
        db.session.commit()
    elif action in ("deactivate", "activate"):
        set_active(db.session, user, action == "activate", actor=actor)
        if action == "deactivate":
            session_store().revoke_all(user.id)
        db.session.commit()
    elif action == "reset-password":
        try:
            revoked = reset_password(db.session, user, form.password.data or "",
                                     wrap_cost=current_app.config["WRAP_ARGON2"],
                login_cost=current_app.config["LOGIN_ARGON2"], actor=actor)
        except WeakPassword:
            flash(gettext("Use at least %(n)s characters.", n=MIN_PASSWORD_LENGTH), "error")
            return redirect(url_for("admin.users")), 303
        session_store().revoke_all(user.id)
        db.session.commit()
        flash(gettext("Password reset. %(n)s unit keys must be granted again by a holder.",
                      n=revoked))
    else:
        abort(404)
    return redirect(url_for("admin.users")), 303


class CategoryForm(FlaskForm):
    code = StringField()
    name_zh = StringField(_l("Name (中文)"))
    name_ko = StringField(_l("Name (조선어)"))
    name_en = StringField(_l("Name (English)"))
    description_zh = TextAreaField(_l("Description (中文)"))
    description_ko = TextAreaField(_l("Description (조선어)"))
    description_en = TextAreaField(_l("Description (English)"))
    usual_receiver = SelectField(_l("Usual receiving body"), validate_choice=False,
                                 choices=[SelectChoice("", "—")]
                                 + [SelectChoice(k.value, k.value) for k in UnitKind])


@bp.route("/admin/categories", methods=["GET", "POST"])
def categories() -> Any:
    caller = _admin()
    form = CategoryForm()
    if form.is_submitted():
        edit = CategoryEdit(
            names={lang: getattr(form, f"name_{lang}").data or "" for lang in ("zh", "ko", "en")},
            descriptions={lang: getattr(form, f"description_{lang}").data or ""
                          for lang in ("zh", "ko", "en")},
            usual_receiver=form.usual_receiver.data or None)
        try:
            edit_category(db.session, form.code.data or "", edit,
                          actor=Actor("staff", caller.user.id, Role.ADMINISTRATOR))
        except CategoryRejected:
            db.session.rollback()
            flash(gettext("Every category needs a name in all three languages."), "error")
            return redirect(url_for("admin.categories")), 303
        db.session.commit()
        flash(gettext("Saved as a new version; tips keep the version they were filed under."))
        return redirect(url_for("admin.categories")), 303
    rows = list(db.session.scalars(select(Category).where(Category.current.is_(True))
                                   .order_by(Category.sort_order)))
    return render_template("admin/categories.html", rows=rows, caller=caller, form=form,
                           receivers=[k.value for k in UnitKind])


@bp.route("/admin/calendar", methods=["GET", "POST"])
def calendar() -> Any:
    """The holiday calendar: which years have data, and an import for the years to come."""
    from referral.calendar import CalendarImportError

    caller = _admin()
    if request.method == "POST":
        upload = request.files.get("file")
        text = (upload.stream.read().decode("utf-8-sig", errors="replace") if upload
                and upload.filename else request.form.get("csv", ""))
        try:
            years = import_calendar(db.session, text,
                                    actor=Actor("staff", caller.user.id, Role.ADMINISTRATOR))
        except CalendarImportError as error:
            db.session.rollback()
            flash(gettext("The calendar was not imported: %(error)s", error=str(error)), "error")
            return redirect(url_for("admin.calendar")), 303
        db.session.commit()
        flash(gettext("Imported. Years now complete: %(years)s",
                      years=", ".join(str(y) for y in sorted(years)) or "—"))
        return redirect(url_for("admin.calendar")), 303
    years = list(db.session.scalars(select(CalendarYear).order_by(CalendarYear.year)))
    return render_template("admin/calendar.html", years=years, caller=caller)


@bp.route("/admin/offences", methods=["GET", "POST"])
def offences() -> Any:
    caller = _admin()
    if request.method == "POST":
        form = request.form
        try:
            save_offence(db.session, form.get("code", ""),
                         {lang: form.get(f"name_{lang}", "") for lang in ("zh", "ko", "en")},
                         form.get("basis", ""), form.get("active") == "y",
                         actor=Actor("staff", caller.user.id, Role.ADMINISTRATOR))
        except CategoryRejected:
            db.session.rollback()
            flash(gettext("Every offence needs a code, a name in all three languages and its "
                          "legal basis."), "error")
            return redirect(url_for("admin.offences")), 303
        db.session.commit()
        flash(gettext("Saved."))
        return redirect(url_for("admin.offences")), 303
    rows = list(db.session.scalars(select(Offence).order_by(Offence.id)))
    return render_template("admin/offences.html", rows=rows, caller=caller)
