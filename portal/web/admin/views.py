"""The administrator's face: first-start setup, accounts and memberships, categories.

Administrators manage people and reference data; none of it opens a tip."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import PasswordField, SelectField, StringField, TextAreaField

from auditlog.events import Actor
from models import (
    HANDLING_KINDS,
    RECEIVING_KINDS,
    CalendarYear,
    Category,
    Membership,
    Offence,
    Role,
    Unit,
    UnitKind,
    User,
)
from portal.operations.seed import seed
from portal.operations.setup import AlreadySetUp, complete_setup, token_is_valid
from portal.security import access, auth, crypto, custody
from portal.security.accounts import (
    MIN_PASSWORD_LENGTH,
    RESET_CONFIRM,
    TWO_PERSON_ROLES,
    ConfirmRefused,
    ResetRefused,
    RoleRefused,
    UsernameTaken,
    WeakPassword,
    assign_role,
    check_not_self,
    complete_reset,
    confirm_reset,
    create_account,
    decide_membership,
    issue_first_sign_in_link,
    issue_reset_link,
    parse_role,
    remove_membership,
    roles_open_to,
    set_active,
    user_for_first_sign_in,
    user_for_reset,
    waiting_for,
)
from portal.security.crypto import CryptoError
from portal.security.custody import reset_password
from portal.triage.categories import (
    CategoryEdit,
    CategoryRejected,
    edit_category,
    import_calendar,
    save_offence,
    set_retention,
)
from portal.web import choices, health, row_id
from portal.web.admin import bp
from portal.web.admin.warnings import admin_warnings, missing_calendar_years
from portal.web.extensions import db
from portal.web.http import current_lang
from portal.web.messages import role_text, throttled_text
from portal.web.session import (
    Caller,
    renew_flask_session,
    session_store,
    set_session_cookie,
    staff_required,
)
from referral.calendar import PREFECTURE_ZONE

MAX_ID = 2**31 - 1  # the id columns' range (PostgreSQL integer): larger ids name nothing


class SetupForm(FlaskForm):
    username = StringField(_l("Administrator username"))
    password = PasswordField(_l("Password"))
    confirm = PasswordField(_l("Password again"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str) -> tuple[str, int] | str:
    if not token_is_valid(db.session(), token):
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
            seed(db.session())
            try:
                result = complete_setup(db.session(), username, password, token=token,
                                        wrap_cost=current_app.config["WRAP_ARGON2"],
                                        login_cost=current_app.config["LOGIN_ARGON2"])
            except WeakPassword:
                form.password.errors = [gettext("Use at least %(n)s characters.",
                                                n=MIN_PASSWORD_LENGTH)]
            except AlreadySetUp:
                abort(404)
            else:
                units = {u.code: u for u in db.session.scalars(select(Unit))}
                keys = [(units[code], crypto.identity_file_text(
                    identity, f"Qingliu recovery key {code}"))
                    for code, identity in result.recovery.items()]
                custodian_keys = [(units[code], crypto.identity_file_text(
                    identity, f"Qingliu custodian recovery key {code}"))
                    for code, identity in result.custodian_recovery.items()]
                return render_template("admin/recovery.html", keys=keys,
                                       custodian_keys=custodian_keys)
        return render_template("admin/setup.html", form=form), 400
    return render_template("admin/setup.html", form=form)


def _actor(caller: Caller) -> Actor:
    return Actor("staff", caller.user.id, Role.ADMINISTRATOR)


def _today() -> date:
    """Today in the prefecture; a test sets app.config["TODAY"] to a fixed day."""
    fixed = current_app.config.get("TODAY")
    return fixed if isinstance(fixed, date) else datetime.now(PREFECTURE_ZONE).date()


@bp.get("/admin", strict_slashes=False)
@staff_required(role="admin")
def home(caller: Caller) -> Any:
    """The administrator's start page: the accounts at a glance, where to go, what needs doing."""
    active = db.session.scalar(select(func.count(User.id)).where(User.active.is_(True))) or 0
    inactive = db.session.scalar(select(func.count(User.id)).where(User.active.is_(False))) or 0
    per_role = dict(db.session.execute(
        select(Membership.role, func.count(func.distinct(Membership.user_id)))
        .join(User, User.id == Membership.user_id)
        .where(User.active.is_(True), Membership.confirmed_at.is_not(None))
        .group_by(Membership.role)).all())
    return render_template("admin/home.html", caller=caller, active=active, inactive=inactive,
                           per_role=[(role, per_role.get(role.value, 0)) for role in Role],
                           warnings=admin_warnings(db.session(), _today()),
                           server_problems=health.problems(current_app),
                           to_confirm=_resets_to_confirm(),
                           roles_waiting=waiting_for(db.session(), caller.user.id))


def _resets_to_confirm() -> list[User]:
    """Password resets with the second factor lost too, waiting for a second administrator."""
    return list(db.session.scalars(select(User).where(User.reset_state == RESET_CONFIRM)
                                   .order_by(User.reset_at)))


class UserForm(FlaskForm):
    username = StringField(_l("Username"))
    display_name = StringField(_l("Display name"))
    password = PasswordField(_l("Initial password (at least 12 characters)"))
    unit = SelectField(_l("Unit"), validate_choice=False)
    role = SelectField(_l("Role"), validate_choice=False)


# Why a role was refused, in words; the field the message belongs to.
ROLE_REFUSALS: dict[str, tuple[str, Any]] = {
    "unknown_unit": ("unit", _l("Please choose one of the listed units.")),
    "unknown_role": ("role", _l("Please choose one of the listed roles.")),
    "liaison_needs_receiving_body": ("role", _l(
        "A liaison belongs to a receiving body (public security, procuratorate, court, "
        "discipline inspection and supervision commission or an administrative department). "
        "Choose such a body as the unit, or another role.")),
    "officer_needs_handling_unit": ("role", _l(
        "Intake officers, case officers and heads belong to a handling unit (州本级 or a county "
        "or city division). Choose such a unit, or the liaison role for a receiving body.")),
    "custodian_needs_handling_unit": ("role", _l(
        "A custodian keeps the reporters' identities of a handling unit (州本级 or a county or "
        "city division). Choose such a unit.")),
    "oversight_needs_bureau": ("role", _l(
        "Auditors and administrators belong to the bureau (州本级) or the province, not to a "
        "receiving body.")),
    "admin_not_officer": ("role", _l(
        "An administrator cannot also be an officer or a liaison: use a separate account.")),
    "already_member": ("role", _l("This person already has this role in this unit.")),
    "self_grant": ("role", _l(
        "No one changes their own roles, state or password here: another administrator must "
        "do it.")),
    "bad_username": ("username", _l("Use at most 64 characters.")),
    "no_role": ("role", _l("Please choose one of the listed roles.")),
}


def _unit_groups(lang: str) -> dict[str, list[tuple[str, str]]]:
    """The units for a select, grouped so that the role that fits each is plain to see."""
    groups: dict[str, list[tuple[str, str]]] = {
        str(_l("Handling units (officers)")): [],
        str(_l("Receiving bodies (liaisons)")): [],
        str(_l("Province")): [],
    }
    keys = list(groups)
    for unit in db.session.scalars(select(Unit).where(Unit.active.is_(True)).order_by(Unit.id)):
        if unit.kind in {k.value for k in HANDLING_KINDS}:
            groups[keys[0]].append((unit.code, unit.name(lang)))
        elif unit.kind in {k.value for k in RECEIVING_KINDS}:
            groups[keys[1]].append((unit.code, unit.name(lang)))
        else:
            groups[keys[2]].append((unit.code, unit.name(lang)))
    return {label: rows for label, rows in groups.items() if rows}


def _user_form() -> UserForm:
    form = UserForm()
    form.unit.choices = _unit_groups(current_lang())
    form.role.choices = choices([(role.value, role_text(role)) for role in ROLE_ORDER])
    return form


ROLE_ORDER = (Role.INTAKE_OFFICER, Role.CASE_OFFICER, Role.HEAD, Role.CUSTODIAN, Role.LIAISON,
              Role.AUDITOR, Role.ADMINISTRATOR)


def _show_refusal(form: FlaskForm, code: str) -> None:
    field_name, message = ROLE_REFUSALS.get(code, ("role", _l("A value in the form is not "
                                                              "valid.")))
    getattr(form, field_name).errors = [str(message)]


def _sign_in_link(token: str) -> str:
    return url_for("admin.first_sign_in", token=token, _external=True)


@bp.route("/admin/users", methods=["GET", "POST"])
@staff_required(role="admin")
def users(caller: Caller) -> Any:
    form = _user_form()
    if form.is_submitted():
        username = (form.username.data or "").strip()
        if not username:
            form.username.errors = [gettext("This field is required.")]
        else:
            try:
                role = parse_role(form.role.data or "")
                user = create_account(
                    db.session(), username, form.password.data or "",
                    [(form.unit.data or "", role)],
                    wrap_cost=current_app.config["WRAP_ARGON2"],
                    login_cost=current_app.config["LOGIN_ARGON2"], actor=_actor(caller),
                    display_name=(form.display_name.data or "").strip())
                link_token = issue_first_sign_in_link(
                    db.session(), user, current_app.config["SECRET_KEY"], actor=_actor(caller),
                    via="page")
            except UsernameTaken:
                db.session.rollback()
                form.username.errors = [gettext("This username is taken.")]
            except WeakPassword:
                db.session.rollback()
                form.password.errors = [gettext("Use at least %(n)s characters.",
                                                n=MIN_PASSWORD_LENGTH)]
            except RoleRefused as refused:
                db.session.rollback()
                _show_refusal(form, refused.code)
            else:
                db.session.commit()
                flash(gettext("The account has been created. Give %(name)s the password and "
                              "this one-time link, where they choose their own password and "
                              "set up the second factor: %(link)s",
                              name=username, link=_sign_in_link(link_token)))
                if role in TWO_PERSON_ROLES:
                    flash(_waiting_words(role))
                if role in access.KEY_ROLES:
                    flash(gettext("A holder of the unit's key (or its recovery key) must grant "
                                  "the key on the “Unit keys” page before they can open "
                                  "anything."))
                if role == Role.CUSTODIAN:
                    flash(_custodian_key_words())
                return redirect(url_for("admin.users")), 303
    people = list(db.session.scalars(select(User).order_by(User.username)))
    memberships = list(db.session.scalars(select(Membership)))
    # Each person's "add role" list offers only the roles that fit with what they hold.
    role_options = {person.id: [(role.value, role_text(role)) for role in ROLE_ORDER
                                if role in roles_open_to({Role(m.role) for m in memberships
                                                          if m.user_id == person.id})]
                    for person in people}
    return render_template("admin/users.html", form=form, people=people, caller=caller,
                           memberships=memberships, role_options=role_options,
                           to_confirm=_resets_to_confirm()), 400 if form.errors else 200


# Why a reset step was refused, in words.
RESET_REFUSALS: dict[str, Any] = {
    "nothing_to_confirm": _l("This account has no password reset waiting for confirmation."),
    "same_administrator": _l(
        "The administrator who asked for a reset cannot confirm it: another administrator "
        "must."),
}


def _refused(message: Any) -> Any:
    db.session.rollback()
    flash(str(message), "error")
    return redirect(url_for("admin.users")), 303


@bp.post("/admin/users/<int:user_id>/<action>")
@staff_required(role="admin")
def user_action(caller: Caller, user_id: int, action: str) -> Any:
    user = db.session.get(User, user_id) if user_id <= MAX_ID else None
    if user is None:
        abort(404)
    actor = _actor(caller)
    form = _user_form()
    try:
        if action == "membership":
            role = parse_role(form.role.data or "")
            assign_role(db.session(), user, form.unit.data or "", role, actor=actor)
            db.session.commit()
            flash(gettext("Saved."))
            if role in TWO_PERSON_ROLES:
                flash(_waiting_words(role))
            if role == Role.CUSTODIAN:
                flash(_custodian_key_words())
        elif action == "remove-membership":
            check_not_self(actor, user.id)
            membership_id = request.form.get("membership_id", "")
            membership = (db.session.get(Membership, row_id(membership_id))
                          if row_id(membership_id) else None)
            if membership is None or membership.user_id != user.id:
                abort(404)
            remove_membership(db.session(), membership, actor=actor)
            db.session.commit()
        elif action in ("deactivate", "activate"):
            set_active(db.session(), user, action == "activate", actor=actor)
            if action == "deactivate":
                session_store().revoke_all(user.id)
            db.session.commit()
        elif action == "reset-password":
            _reset(user, actor, factor_lost=request.form.get("factor_lost") == "y")
        elif action == "confirm-reset":
            confirm_reset(db.session(), user, actor=actor)
            _issue_reset_link(user, actor)
        else:
            abort(404)
    except RoleRefused as refused:
        return _refused(ROLE_REFUSALS.get(refused.code, ROLE_REFUSALS["unknown_role"])[1])
    except ResetRefused as refused:
        return _refused(RESET_REFUSALS.get(refused.code, RESET_REFUSALS["nothing_to_confirm"]))
    return redirect(url_for("admin.users")), 303


def _reset(user: User, actor: Actor, *, factor_lost: bool) -> None:
    """Start a reset: no password is chosen here. The link goes out now when the person can
    prove it with their second factor, or after a second administrator's confirmation."""
    revoked = reset_password(db.session(), user, actor=actor, factor_lost=factor_lost)
    session_store().revoke_all(user.id)
    if user.reset_state == RESET_CONFIRM:
        db.session.commit()
        flash(gettext("Password reset: %(name)s can no longer sign in, and %(n)s unit keys must "
                      "be granted again by a holder. As the second factor is lost too, another "
                      "administrator must confirm the reset on the Accounts page; the one-time "
                      "link is given then.", name=user.username, n=revoked))
        return
    flash(gettext("Password reset: %(name)s can no longer sign in, and %(n)s unit keys must be "
                  "granted again by a holder.", name=user.username, n=revoked))
    _issue_reset_link(user, actor)


def _issue_reset_link(user: User, actor: Actor) -> None:
    token = issue_reset_link(db.session(), user, current_app.config["SECRET_KEY"], actor=actor)
    db.session.commit()
    link = url_for("admin.complete_password_reset", token=token, _external=True)
    if user.reset_factor_lost:
        flash(gettext("Give %(name)s this one-time link, where they choose their own password "
                      "and then set up a new second factor: %(link)s", name=user.username,
                      link=link))
    else:
        flash(gettext("Give %(name)s this one-time link. To choose a new password there they "
                      "need a code from their authenticator app or one of their recovery codes, "
                      "which you do not have: %(link)s", name=user.username, link=link))


def _custodian_key_words() -> str:
    return gettext("A custodian of the unit (or the unit's printed custodian recovery key) must "
                   "hand on the reporter identity key on the “Unit keys” page. The custodian "
                   "role opens no report.")


def _waiting_words(role: Role) -> str:
    """Who must confirm a role just given, in words."""
    who = (gettext("another administrator") if role == Role.ADMINISTRATOR else
           gettext("a liaison of the receiving body (or, while it has none, another "
                   "administrator)") if role == Role.LIAISON else
           gettext("a head of the unit (or, while it has none, another administrator)"))
    return gettext("The role gives no access until %(who)s confirms it: a second person must "
                   "agree to every officer, liaison and administrator role.", who=who)


# ---------------------------------------------------------------------------------------------
# Roles waiting for a second person's confirmation (portal/security/accounts.py, two-person rule)

CONFIRM_REFUSALS: dict[str, Any] = {
    "not_waiting": _l("This role is no longer waiting for confirmation."),
    "not_yours": _l("You cannot confirm this role: it must be someone other than the person "
                    "and the administrator who asked, who speaks for the unit."),
}


@bp.route("/roles-to-confirm", methods=["GET", "POST"])
@staff_required
def roles_to_confirm(caller: Caller) -> Any:
    """The roles waiting for this person's confirmation: a head sees the officer roles of their
    unit, a liaison those of their receiving body, an administrator the administrator roles
    and those of units that have nobody to speak for them yet. Confirm or refuse each."""
    if request.method == "POST":
        back = (url_for("admin.home") if request.form.get("back") == "admin"
                else url_for("admin.roles_to_confirm"))
        decision = request.form.get("decision", "")
        number = row_id(request.form.get("membership_id", ""))
        membership = db.session.get(Membership, number) if number else None
        if membership is None or decision not in ("confirm", "refuse"):
            flash(str(CONFIRM_REFUSALS["not_waiting"]), "error")
            return redirect(back), 303
        role = Role(membership.role)
        acting = access.confirming_role(caller.principal, role)
        name = membership.user.display_name or membership.user.username
        try:
            decide_membership(db.session(), membership, decision == "confirm",
                              actor=Actor("staff", caller.user.id, acting))
        except ConfirmRefused as refused:
            db.session.rollback()
            flash(str(CONFIRM_REFUSALS.get(refused.code, CONFIRM_REFUSALS["not_yours"])),
                  "error")
            return redirect(back), 303
        db.session.commit()
        flash(gettext("Confirmed: %(name)s is now %(role)s.", name=name, role=role_text(role))
              if decision == "confirm" else
              gettext("Refused: %(name)s was not given the role %(role)s.", name=name,
                      role=role_text(role)))
        return redirect(back), 303
    return render_template("admin/roles_to_confirm.html", caller=caller,
                           roles_waiting=waiting_for(db.session(), caller.user.id))


class ResetForm(FlaskForm):
    code = StringField(_l("A code from your authenticator app, or one of your recovery codes"))
    new = PasswordField(_l("Your own new password (at least 12 characters)"))
    confirm = PasswordField(_l("New password again"))


# Why completing a reset was refused, in words, and the field it belongs to.
COMPLETE_REFUSALS: dict[str, tuple[str, Any]] = {
    "wrong_code": ("code", _l("This code is wrong, expired or already used.")),
}


@bp.route("/reset/<token>", methods=["GET", "POST"])
def complete_password_reset(token: str) -> Any:
    """The one-time reset link: the holder proves it with their second factor (the
    administrator who reset the password has neither the authenticator nor the recovery
    codes), then chooses a new password. Then they sign in as usual."""
    secret_key = current_app.config["SECRET_KEY"]
    user = user_for_reset(db.session(), token, secret_key)
    if user is None:
        return render_template("admin/link_spent.html", reset=True), 404
    form = ResetForm()
    if not form.is_submitted():
        return render_template("admin/reset.html", form=form, user=user)
    new = form.new.data or ""
    if new != (form.confirm.data or ""):
        form.confirm.errors = [gettext("The two passwords differ.")]
        return render_template("admin/reset.html", form=form, user=user), 400
    try:
        complete_reset(db.session(), user, new, form.code.data or "", secret_key=secret_key,
                       wrap_cost=current_app.config["WRAP_ARGON2"],
                       login_cost=current_app.config["LOGIN_ARGON2"])
    except WeakPassword:
        db.session.rollback()
        form.new.errors = [gettext("Use at least %(n)s characters.", n=MIN_PASSWORD_LENGTH)]
        return render_template("admin/reset.html", form=form, user=user), 400
    except auth.Throttled as throttled:
        db.session.rollback()
        form.code.errors = [throttled_text("code", throttled.seconds)]
        response = make_response(render_template("admin/reset.html", form=form, user=user), 429)
        response.headers["Retry-After"] = str(throttled.seconds)
        return response
    except ResetRefused as refused:
        db.session.commit()  # the wrong code counts
        if refused.code == "spent":
            return render_template("admin/link_spent.html", reset=True), 404
        form.code.errors = [str(COMPLETE_REFUSALS["wrong_code"][1])]
        return render_template("admin/reset.html", form=form, user=user), 400
    session_store().revoke_all(user.id)
    db.session.commit()
    flash(gettext("Your new password is set. Sign in with it now.") if user.reset_factor_lost
          else gettext("Your new password is set. Sign in with it and a new code from your "
                       "app (the one you just used does not work twice)."))
    return redirect(url_for("staff.login")), 303


class FirstSignInForm(FlaskForm):
    current = PasswordField(_l("The password you were given"))
    new = PasswordField(_l("Your own new password (at least 12 characters)"))
    confirm = PasswordField(_l("New password again"))


@bp.route("/welcome/<token>", methods=["GET", "POST"])
def first_sign_in(token: str) -> Any:
    """A one-time first sign-in link: the newcomer replaces the password the administrator chose
    with their own (the personal key is re-wrapped, nothing is lost), then enrols the second
    factor. Once the password has changed the link no longer works."""
    secret_key = current_app.config["SECRET_KEY"]
    user = user_for_first_sign_in(db.session(), token, secret_key)
    if user is None:
        return render_template("admin/link_spent.html"), 404
    form = FirstSignInForm()
    if not form.is_submitted():
        return render_template("admin/first_sign_in.html", form=form, user=user)
    current, new = form.current.data or "", form.new.data or ""
    if new != (form.confirm.data or ""):
        form.confirm.errors = [gettext("The two passwords differ.")]
    elif new == current:
        form.new.errors = [gettext("Choose a password of your own, not the one you were given.")]
    else:
        try:
            # The sign-in check, with its throttling: the link alone does not open the account.
            auth.check_password(db.session(), user.username, current,
                                current_app.config["LOGIN_ARGON2"])
            personal = custody.unlock_personal(user, current)
            custody.change_password(db.session(), user, current, new,
                                    wrap_cost=current_app.config["WRAP_ARGON2"],
                                    login_cost=current_app.config["LOGIN_ARGON2"])
        except auth.Throttled as throttled:
            form.current.errors = [throttled_text("password", throttled.seconds)]
            return render_template("admin/first_sign_in.html", form=form, user=user), 429
        except (auth.AuthenticationFailed, CryptoError):
            db.session.rollback()
            form.current.errors = [gettext("Wrong password.")]
        except WeakPassword:
            db.session.rollback()
            form.new.errors = [gettext("Use at least %(n)s characters.", n=MIN_PASSWORD_LENGTH)]
        else:
            renew_flask_session()  # as at the staff sign-in: no CSRF token outlives it
            pending = session_store().create(user.id, personal, stage="password")
            db.session.commit()
            target = "staff.second_factor" if user.totp_confirmed_at else "staff.enroll"
            return set_session_cookie(redirect(url_for(target), 303), pending.token)
    return render_template("admin/first_sign_in.html", form=form, user=user), 400


# What a category's usual receiving body is, in words (the stored value is a kind of unit).
RECEIVER_LABELS = {
    UnitKind.PUBLIC_SECURITY: _l("Public security (公安)"),
    UnitKind.PROCURATORATE: _l("Procuratorate (检察院)"),
    UnitKind.COURT: _l("Court (法院)"),
    UnitKind.DISCIPLINE: _l("Discipline inspection and supervision commission (纪委监委)"),
    UnitKind.ADMIN_DEPT: _l("Competent administrative department (转办)"),
}


class CategoryForm(FlaskForm):
    code = StringField()
    name_zh = StringField(_l("Name (中文)"))
    name_ko = StringField(_l("Name (조선어)"))
    name_en = StringField(_l("Name (English)"))
    description_zh = TextAreaField(_l("Description (中文)"))
    description_ko = TextAreaField(_l("Description (조선어)"))
    description_en = TextAreaField(_l("Description (English)"))
    usual_receiver = SelectField(_l("Usual receiving body"), validate_choice=False)


@bp.route("/admin/categories", methods=["GET", "POST"])
@staff_required(role="admin")
def categories(caller: Caller) -> Any:
    form = CategoryForm()
    if form.is_submitted():
        edit = CategoryEdit(
            names={lang: getattr(form, f"name_{lang}").data or "" for lang in ("zh", "ko", "en")},
            descriptions={lang: getattr(form, f"description_{lang}").data or ""
                          for lang in ("zh", "ko", "en")},
            usual_receiver=form.usual_receiver.data or None)
        try:
            edit_category(db.session(), form.code.data or "", edit,
                          actor=_actor(caller))
        except CategoryRejected as rejected:
            db.session.rollback()
            typed = {"code": form.code.data or "", "usual_receiver": edit.usual_receiver or "",
                     **{f"name_{lang}": text for lang, text in edit.names.items()},
                     **{f"description_{lang}": text for lang, text in edit.descriptions.items()}}
            return _categories_page(caller, form, typed=typed, error=str(
                CATEGORY_REFUSALS.get(rejected.field.split("_")[0], CATEGORY_REFUSALS["name"]))
            ), 400
        db.session.commit()
        flash(gettext("Saved as a new version; tips keep the version they were filed under."))
        return redirect(url_for("admin.categories")), 303
    return _categories_page(caller, form)


@bp.post("/admin/categories/retention")
@staff_required(role="admin")
def category_retention(caller: Caller) -> Any:
    """How long closed tips of one category are kept (portal/operations/retention.py): a number of
    days,
    or empty to keep them for ever. The page comes back with the error beside that category."""
    code = request.form.get("code", "")
    typed = (request.form.get("retention_days", "") or "").strip()
    days: int | None = None
    error = None
    if typed:
        days = int(typed) if typed.isascii() and typed.isdigit() and len(typed) <= 6 else 0
        if not 1 <= days <= 36500:
            error = str(RETENTION_REFUSAL)
    if error is None:
        try:
            set_retention(db.session(), code, days, actor=_actor(caller))
        except CategoryRejected as rejected:
            db.session.rollback()
            error = str(CATEGORY_REFUSALS["code"] if rejected.field == "code"
                        else RETENTION_REFUSAL)
    if error is not None:
        return _categories_page(caller, CategoryForm(formdata=None), error=error,
                                retention_typed={"code": code, "days": typed}), 400
    db.session.commit()
    flash(gettext("Closed tips of this category are now kept for ever.") if days is None
          else gettext("Closed tips of this category are now destroyed %(num)d days after "
                       "closing, unless held.", num=days))
    return redirect(url_for("admin.categories") + f"#retention-{code}"), 303


RETENTION_REFUSAL = _l("Enter a whole number of days from 1 to 36500, or leave it empty to keep "
                       "closed tips for ever.")

CATEGORY_REFUSALS = {
    "name": _l("Every category needs a name in all three languages."),
    "usual": _l("Please choose one of the listed receiving bodies."),
    "code": _l("There is no such category."),
}


def _categories_page(caller: Caller, form: CategoryForm, *, typed: dict[str, str] | None = None,
                     error: str | None = None,
                     retention_typed: dict[str, str] | None = None) -> str:
    rows = list(db.session.scalars(select(Category).where(Category.current.is_(True))
                                   .order_by(Category.sort_order)))
    return render_template("admin/categories.html", rows=rows, caller=caller, form=form,
                           receivers=[(k.value, str(label)) for k, label in
                                      RECEIVER_LABELS.items()], lang=current_lang(),
                           typed=typed, error=error, retention_typed=retention_typed)


@bp.route("/admin/calendar", methods=["GET", "POST"])
@staff_required(role="admin")
def calendar(caller: Caller) -> Any:
    """The holiday calendar: which years have data, and an import for the years to come."""
    from referral.calendar import CalendarImportError

    if request.method == "POST":
        upload = request.files.get("file")
        text = (upload.stream.read().decode("utf-8-sig", errors="replace") if upload
                and upload.filename else request.form.get("csv", ""))
        try:
            years = import_calendar(db.session(), text,
                                    actor=_actor(caller))
        except CalendarImportError as error:
            db.session.rollback()
            flash(gettext("The calendar was not imported: %(error)s", error=str(error)), "error")
            return redirect(url_for("admin.calendar")), 303
        db.session.commit()
        flash(gettext("Imported. Years now complete: %(years)s",
                      years=", ".join(str(y) for y in sorted(years)) or "—"))
        return redirect(url_for("admin.calendar")), 303
    recorded = list(db.session.scalars(select(CalendarYear).order_by(CalendarYear.year)))
    return render_template("admin/calendar.html", years=recorded, caller=caller,
                           missing=missing_calendar_years(db.session(), _today()))


@bp.route("/admin/offences", methods=["GET", "POST"])
@staff_required(role="admin")
def offences(caller: Caller) -> Any:
    if request.method == "POST":
        form = request.form
        try:
            save_offence(db.session(), form.get("code", ""),
                         {lang: form.get(f"name_{lang}", "") for lang in ("zh", "ko", "en")},
                         form.get("basis", ""), form.get("active") == "y",
                         actor=_actor(caller))
        except CategoryRejected as rejected:
            db.session.rollback()
            typed = {name: form.get(name, "") for name in
                     ("code", "name_zh", "name_ko", "name_en", "basis", "active")}
            error = (gettext("A name is at most 80 characters in Chinese and 120 in Korean or "
                             "English, the legal basis at most 120, the code at most 24.")
                     if rejected.code == "too_long" else
                     gettext("Every offence needs a code, a name in all three languages and its "
                             "legal basis."))
            return _offences_page(caller, typed=typed, error=error), 400
        db.session.commit()
        flash(gettext("Saved."))
        return redirect(url_for("admin.offences")), 303
    return _offences_page(caller)


def _offences_page(caller: Caller, *, typed: dict[str, str] | None = None,
                   error: str | None = None) -> str:
    rows = list(db.session.scalars(select(Offence).order_by(Offence.id)))
    return render_template("admin/offences.html", rows=rows, caller=caller, lang=current_lang(),
                           typed=typed, error=error)
