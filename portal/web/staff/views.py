"""Staff pages: sign-in, the queue, a tip and its actions, files, hotline entry, keys, account.

Thin: each view reads its form, calls one service (portal/auth, triage, custody), renders."""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import format_date, gettext
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse  # what redirect() answers

from auditlog.events import Actor
from models import (
    Attachment,
    Category,
    Channel,
    KeyPurpose,
    Language,
    Tip,
    Unit,
    UnitKeyGrant,
    User,
)
from portal.intake import receipts
from portal.intake.filing import (
    COUNTIES,
    AlreadyFiled,
    FieldError,
    FormReused,
    IntakeRejected,
)
from portal.intake.filing import validate as intake_validate
from portal.intake.hashgate import Busy
from portal.intake.schema import SchemaError, hotline_draft
from portal.security import auth, custody, sessions
from portal.security.access import KEY_ROLES, KeyNotHeld
from portal.security.accounts import WeakPassword, take_reset_notice, waiting_for
from portal.security.crypto import CryptoError
from portal.triage import queue as tip_queue
from portal.triage import tip_actions
from portal.web import choices, limits, row_id
from portal.web.action_params import action_params
from portal.web.extensions import db
from portal.web.http import content_disposition, current_lang
from portal.web.messages import (
    channel_text,
    error_text,
    language_text,
    priority_text,
    refusal_text,
    throttled_text,
    unit_name,
)
from portal.web.queue_filter import queue_filter_from_args
from portal.web.session import (
    COOKIE,
    Caller,
    caller_of,
    current_caller,
    renew_flask_session,
    session_store,
    set_session_cookie,
    staff_required,
)
from portal.web.staff import bp
from portal.web.staff.forms import (
    ActionForm,
    EnrollForm,
    GrantForm,
    HotlineForm,
    LoginForm,
    PasswordForm,
    SecondFactorForm,
)

# ---------------------------------------------------------------------------------------------
# Sign-in


# A browser that has signed in to an account: not held back by that account's throttles, only
# by its own failures (portal/security/auth.py). Sent to the sign-in pages only.
DEVICE_COOKIE = "qingliu_device"


def _known_device() -> auth.KnownDevice | None:
    return auth.read_known_device(current_app.config["SECRET_KEY"],
                                  request.cookies.get(DEVICE_COOKIE))


def _remember_device(response: BaseResponse, user: User) -> BaseResponse:
    value = auth.remember_device(current_app.config["SECRET_KEY"], _known_device(), user)
    response.set_cookie(DEVICE_COOKIE, value, httponly=True, samesite="Strict",
                        path=url_for("staff.login"),
                        max_age=int(auth.KNOWN_DEVICE_LIFETIME.total_seconds()),
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _throttled_page(template: str, form: Any, throttled: auth.Throttled) -> Response:
    """429 with Retry-After, and the page saying how long and what still works meanwhile."""
    response = make_response(render_template(template, form=form, offer_recovery=True), 429)
    response.headers["Retry-After"] = str(throttled.seconds)
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = LoginForm()
    if not form.is_submitted():
        return render_template("staff/login.html", form=form)
    username, password = form.username.data or "", form.password.data or ""
    recovery = (form.recovery_code.data or "").strip()
    cost = current_app.config["LOGIN_ARGON2"]
    try:
        if recovery:  # password and recovery code at once: never held back by the throttle
            user = auth.check_password_and_recovery_code(db.session(), username, password,
                                                         recovery, cost)
        else:
            user = auth.check_password(db.session(), username, password, cost,
                                       device=_known_device())
        personal = custody.unlock_personal(user, password)
    except auth.Throttled as throttled:
        form.username.errors = [throttled_text("password", throttled.seconds)]
        return _throttled_page("staff/login.html", form, throttled)
    except (auth.AuthenticationFailed, CryptoError):
        form.username.errors = [gettext("Wrong username, password or recovery code.")
                                if recovery else gettext("Wrong username or password.")]
        return render_template("staff/login.html", form=form,
                               offer_recovery=bool(recovery)), 401
    renew_flask_session()
    pending = session_store().create(user.id, personal, stage="password")
    db.session.commit()
    if recovery and user.totp_confirmed_at:
        return _finish_sign_in(caller_of(pending, user))
    target = "staff.second_factor" if user.totp_confirmed_at else "staff.enroll"
    return set_session_cookie(redirect(url_for(target)), pending.token)


def _pending() -> Caller:
    """The officer between password and second factor, or back to the sign-in page."""
    caller = current_caller(stage="password")
    if caller is None:
        abort(redirect(url_for("staff.login")))
    return caller


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor() -> Any:
    caller = _pending()
    form = SecondFactorForm()
    if not form.is_submitted():
        return render_template("staff/second_factor.html", form=form)
    code = (form.code.data or "").strip()
    try:
        auth.check_second_factor(db.session(), caller.user, code, current_app.config["SECRET_KEY"],
                                 device=_known_device())
    except auth.Throttled as throttled:
        form.code.errors = [throttled_text("code", throttled.seconds)]
        return _throttled_page("staff/second_factor.html", form, throttled)
    except auth.SecondFactorFailed:
        db.session.commit()
        form.code.errors = [gettext("This code is wrong, expired or already used.")]
        return render_template("staff/second_factor.html", form=form), 401
    return _finish_sign_in(caller)


def _home(caller: Caller) -> str:
    """Where a signed-in person starts: officers at the queue, administrators at their own home,
    auditors at the log, liaisons of receiving bodies at their referrals."""
    principal = caller.principal
    # A head or liaison asked to confirm someone's role: first.
    if not principal.is_admin and waiting_for(db.session(), caller.user.id):
        return url_for("admin.roles_to_confirm")
    if principal.units_for("tip.view"):
        return url_for("staff.queue")
    if principal.is_admin:
        return url_for("admin.home")
    if principal.is_auditor:
        return url_for("auditor.index")
    if principal.liaison_units():
        return url_for("liaison.index")
    if principal.units_for("identity.decide"):  # a custodian and nothing else: the requests
        return url_for("staff.identity_requests")
    return url_for("staff.account")


def _flash_reset_notice(user: User) -> None:
    """At the first sign-in after a reset: who reset the password and when, once. Called
    before the sign-in commits."""
    notice = take_reset_notice(db.session(), user)
    if notice is not None:
        name, at = notice
        flash(gettext("Your password was reset by %(name)s on %(date)s. If you did not ask for "
                      "this, tell your head at once.", name=name or gettext("an administrator"),
                      date=format_date(at, "long")), "error")


def _finish_sign_in(caller: Caller) -> BaseResponse:
    renew_flask_session()  # first: a notice flashed below goes into the new session
    active = sessions.finish_sign_in(db.session(), session_store(), caller.session)
    _flash_reset_notice(caller.user)  # after a password reset: who did it, once
    db.session.commit()
    return _remember_device(set_session_cookie(redirect(_home(caller)), active.token), caller.user)


@bp.route("/login/enroll", methods=["GET", "POST"])
def enroll() -> Any:
    caller = _pending()
    if caller.user.totp_confirmed_at:
        return redirect(url_for("staff.second_factor"))
    form = EnrollForm()
    secret_key = current_app.config["SECRET_KEY"]
    if form.is_submitted() and caller.user.totp_secret:
        try:
            codes = auth.confirm_enrollment(db.session(), caller.user, form.code.data or "",
                                            secret_key)
        except auth.SecondFactorFailed:
            form.code.errors = [gettext("This code is wrong, expired or already used.")]
        else:
            renew_flask_session()
            active = sessions.finish_sign_in(db.session(), session_store(), caller.session)
            _flash_reset_notice(caller.user)  # after a password reset: who did it, once
            db.session.commit()
            page = render_template("staff/recovery_codes.html", codes=codes,
                                   home=_home(caller))
            return _remember_device(set_session_cookie(Response(page), active.token), caller.user)
    enrollment = auth.begin_enrollment(caller.user, secret_key)
    db.session.commit()
    return render_template("staff/enroll.html", form=form, enrollment=enrollment), (
        401 if form.code.errors else 200)


@bp.post("/logout")
@staff_required
def logout(caller: Caller) -> BaseResponse:
    sessions.sign_out(db.session(), session_store(), caller.session)
    return _signed_out()


@bp.post("/logout/everywhere")
@staff_required
def logout_everywhere(caller: Caller) -> BaseResponse:
    sessions.sign_out_everywhere(db.session(), session_store(), caller.user)
    return _signed_out()


def _signed_out() -> BaseResponse:
    """Back at the sign-in page with neither the session cookie nor the form session left."""
    db.session.commit()
    renew_flask_session()
    response = redirect(url_for("staff.login"))
    response.delete_cookie(COOKIE, path="/")
    return response


@bp.route("/account", methods=["GET", "POST"])
@staff_required
def account(caller: Caller) -> Any:
    form = PasswordForm()
    if form.is_submitted():
        if (form.new.data or "") != (form.confirm.data or ""):
            form.confirm.errors = [gettext("The two passwords differ.")]
        else:
            try:
                # A password change ends every other session of the officer.
                sessions.change_password(db.session(), session_store(), caller.user,
                                         form.current.data or "", form.new.data or "",
                                         keep_token=caller.session.token,
                                         wrap_cost=current_app.config["WRAP_ARGON2"],
                                         login_cost=current_app.config["LOGIN_ARGON2"])
            except CryptoError:
                form.current.errors = [gettext("Wrong password.")]
            except WeakPassword:
                form.new.errors = [gettext("Use at least %(n)s characters.", n=12)]
            else:
                db.session.commit()
                flash(gettext("Your password has been changed; your other sessions were ended."))
                return redirect(url_for("staff.account"))
        return render_template("staff/account.html", form=form, caller=caller), 400
    return render_template("staff/account.html", form=form, caller=caller)


# ---------------------------------------------------------------------------------------------
# Queue


def _categories() -> list[Category]:
    return list(db.session.scalars(select(Category).where(Category.current.is_(True))
                                   .order_by(Category.sort_order)))


def _filter_messages(errors: dict[str, str]) -> dict[str, str]:
    return {name: refusal_text(code) if code == "bad_cursor" else error_text(FieldError(code))
            for name, code in errors.items()}


QUEUE_FILTER_FIELDS = ("status", "category", "county", "channel", "language", "received_from",
                       "received_to", "real_name", "has_attachments", "deadline")


@bp.get("/")
@staff_required
def queue(caller: Caller) -> Any:
    filters, errors = queue_filter_from_args()
    try:
        page = tip_queue.queue(db.session(), caller.principal, filters)
    except tip_actions.Refused as refused:  # a damaged "next page" link: start again
        errors["after"] = refused.code
        filters.cursor = None
        page = tip_queue.queue(db.session(), caller.principal, filters)
    counts = tip_queue.category_counts(db.session(), caller.principal)
    lang = current_lang()
    categories = _categories()
    # Any: url_for types its own keywords (_external: bool …) apart from the query's values.
    next_args: dict[str, Any] = {**request.args.to_dict(), "after": page.next_cursor}
    return render_template(
        "staff/queue.html", page=page, counts=counts, filters=filters, categories=categories,
        category_names={c.code: c.name(lang) for c in categories}, lang=lang, caller=caller,
        counties=COUNTIES, channels=[c.value for c in Channel],
        languages=[language.value for language in Language],
        errors=_filter_messages(errors), active_filters=sum(
            getattr(filters, name) is not None for name in QUEUE_FILTER_FIELDS),
        next_url=url_for("staff.queue", **next_args) if page.next_cursor else None,
    ), 400 if errors else 200


# ---------------------------------------------------------------------------------------------
# A tip


def _action_form(caller: Caller, tip_unit_id: int) -> ActionForm:
    form = ActionForm()
    lang = current_lang()
    form.category.choices = choices([(c.code, f"{c.code} {c.name(lang)}") for c in _categories()])
    form.priority.choices = choices([(str(p), priority_text(p)) for p in tip_actions.PRIORITIES])
    units = db.session.scalars(select(Unit).where(Unit.id.in_(
        sorted(caller.principal.handling_ids))).order_by(Unit.id))
    form.unit.choices = choices([(u.code, u.name(lang)) for u in units if u.id != tip_unit_id])
    officers = tip_actions.staff_of_units(db.session(), {tip_unit_id, caller.principal.bureau_id})
    form.user_id.choices = choices([(str(u.id), u.display_name or u.username) for u in officers])
    return form


def _history(tip_id: int) -> list[Any]:
    from models import AuditEvent

    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.object_type == "tip", AuditEvent.object_id == tip_id)
        .order_by(AuditEvent.id)))


# The tip page's actions, in the order offered: (action, permission, statuses it applies to).
TIP_ACTIONS = (
    ("classify", "tip.classify", None),
    ("accept", "tip.accept", ("received",)),
    ("decline", "tip.decline", ("received",)),
    ("verify", "tip.verify", ("accepted",)),
    ("close", "tip.close", ("accepted", "verifying")),
    ("extend", "tip.extend", ("accepted", "verifying")),
    ("message", "tip.message", None),
    ("priority", "tip.set_priority", None),
    ("assign", "tip.assign", None),
    ("duplicate", "tip.link_duplicate", None),
    ("transfer", "tip.transfer", None),
)


def _no_key(caller: Caller, tip_id: int | None) -> Any:
    """The tip exists and may be seen, but the officer holds no key that opens it."""
    found = db.session.get(Tip, tip_id) if tip_id is not None else None
    return render_template("staff/no_key.html", tip_id=tip_id, caller=caller, what="tip",
                           unit=found.unit if found is not None else None), 403


def _render_tip(caller: Caller, tip_id: int, failed: dict[str, Any] | None = None) -> Any:
    """The tip page; `failed` names an action just refused, its reason and what was typed, so
    the page shows the error beside that form and keeps the input."""
    try:
        detail = tip_actions.open_tip(db.session(), caller.principal, tip_id, previews=True)
    except tip_actions.NotFound:
        abort(404)
    except KeyNotHeld:
        return _no_key(caller, tip_id)
    tip = detail.tip
    form = _action_form(caller, tip.unit_id)
    may = lambda permission: caller.principal.may(permission, tip)  # noqa: E731
    offered = [action for action, permission, statuses in TIP_ACTIONS
               if may(permission) and (statuses is None or tip.status in statuses)
               and tip.archived_at is None  # destroyed under the retention rule
               and not (action == "extend" and tip.extended)
               and not (action == "assign" and not form.user_id.choices)
               and not (action == "transfer" and not form.unit.choices)]
    users = {u.id: u for u in db.session.scalars(select(User))}
    lang = current_lang()
    page = render_template("staff/tip.html", detail=detail, tip=tip, form=form, caller=caller,
                           history=_history(tip_id), users=users, lang=lang,
                           category_names={c.code: c.name(lang) for c in _categories()},
                           case_link=tip_actions.case_of(db.session(), tip_id),
                           may=may, offered=offered, failed=failed or {},
                           typed=(failed or {}).get("values", {}))
    return page, 400 if failed else 200


@bp.get("/tips/<int:tip_id>")
@staff_required
def tip(caller: Caller, tip_id: int) -> Any:
    return _render_tip(caller, tip_id)


@bp.post("/tips/<int:tip_id>/<action>")
@staff_required
def tip_action(caller: Caller, tip_id: int, action: str) -> Any:
    try:
        tip_actions.perform(db.session(), caller.principal, tip_id, action,
                            action_params(action, request.form.to_dict()))
    except tip_actions.NotFound:
        abort(404)
    except KeyNotHeld:
        return _no_key(caller, tip_id)
    except tip_actions.Refused as refused:
        # Nothing changed: the page comes back with the reason and what was typed (a refresh
        # sends the same refused request again, which changes nothing either).
        values = {k: v for k, v in request.form.items() if k != "csrf_token"}
        return _render_tip(caller, tip_id, failed={
            "action": action, "message": refusal_text(refused.code), "values": values})
    flash(gettext("Done."))
    # Post/Redirect/Get: a refresh of the page that follows repeats nothing.
    return redirect(url_for("staff.tip", tip_id=tip_id)), 303


@bp.get("/attachments/<int:attachment_id>")
@staff_required
def attachment(caller: Caller, attachment_id: int) -> Any:
    """An explicit download (logged as one): photos on the tip page are part of its opening."""
    try:
        out = tip_actions.open_attachment(db.session(), caller.principal, attachment_id)
    except tip_actions.NotFound:
        abort(404)
    except KeyNotHeld:
        found = db.session.get(Attachment, attachment_id)
        return _no_key(caller, found.tip_id if found is not None else None)
    # Saved, never rendered by the browser (attachment), and nosniff forbids guessing.
    return Response(stream_with_context(out.chunks), mimetype=out.media_type,
                    headers={"Content-Disposition": content_disposition(out.filename),
                             "Content-Length": str(out.size)})


# ---------------------------------------------------------------------------------------------
# Hotline mode


HOTLINE_FIELDS = ("channel", "language", "category", "county", "place", "occurred", "responsible",
                  "narrative", "officials", "name", "phone")


def _hotline_form() -> HotlineForm:
    form = HotlineForm()
    lang = current_lang()
    form.channel.choices = choices([(c.value, channel_text(c))
                                    for c in tip_actions.ENTERED_CHANNELS])
    form.language.choices = choices([(code.value, language_text(code)) for code in Language])
    form.category.choices = choices([("", gettext("Not sure"))] + [
        (c.code, f"{c.code} {c.name(lang)}") for c in _categories()])
    form.county.choices = choices([("", gettext("I don't know"))] + [
        (code, unit_name(code)) for code in COUNTIES])
    return form


def _submission_secrets() -> receipts.SubmissionSecrets:
    return receipts.SubmissionSecrets.from_secret_key(current_app.config["SECRET_KEY"])


def _hotline_errors(form: HotlineForm, errors: dict[str, FieldError], caller: Caller) -> Any:
    """The form again with each error beside its field and everything typed kept."""
    for name, error in errors.items():
        field = getattr(form, name, None)
        if field is not None and name != "submission":
            field.errors = [error_text(error)]
    used = errors.get("submission")
    if used is not None:  # expired, or it filed another tip: a new one-time token
        form.submission.data = receipts.new_form_token(_submission_secrets(), "hotline")
    return render_template("staff/hotline.html", form=form, caller=caller,
                           form_error=error_text(used) if used is not None else None), 400


@bp.route("/hotline", methods=["GET", "POST"])
@staff_required
def hotline(caller: Caller) -> Any:
    if not caller.principal.units_for("tip.hotline"):
        abort(403)
    form = _hotline_form()
    if not form.is_submitted():
        form.channel.data = form.channel.data or Channel.HOTLINE.value
        form.language.data = form.language.data or current_lang()
        form.submission.data = receipts.new_form_token(_submission_secrets(), "hotline")
        return render_template("staff/hotline.html", form=form, caller=caller)
    fields = {name: form[name].data or "" for name in HOTLINE_FIELDS}
    try:
        draft, errors = hotline_draft(fields, page=True), {}
    except SchemaError as rejected:  # the draft as typed, to list every error at once
        draft, errors = hotline_draft(fields, page=True, values=False), rejected.errors
    submission = receipts.form_submission(_submission_secrets(), "hotline",
                                          form.submission.data)
    if submission is None:
        errors["submission"] = FieldError("form_expired")
    errors = {**intake_validate(db.session(), draft, 0, limits()), **errors}
    if errors or submission is None:
        return _hotline_errors(form, errors, caller)
    try:
        filed = tip_actions.hotline_tip(db.session(), caller.principal, draft, limits=limits(),
                                   receipt_cost=current_app.config["RECEIPT_ARGON2"],
                                   once=submission.bind(_submission_secrets()))
    except IntakeRejected as rejected:
        return _hotline_errors(form, rejected.errors, caller)
    except FormReused:
        # This form filed another tip before (restored from the history and changed).
        return _hotline_errors(form, {"submission": FieldError("form_reused")}, caller)
    except Busy as busy:
        # Nothing was filed; the form keeps everything typed and its one-time token.
        return render_template("staff/hotline.html", form=form, caller=caller, form_error=gettext(
            "The portal is very busy right now. Nothing was stored. Everything you typed is "
            "kept: please send it again in a minute.")), 503, {"Retry-After": str(busy.retry_after)}
    except AlreadyFiled as earlier:
        # The same form sent again (a refresh of the receipt page): nothing is filed twice; the
        # receipt is shown again within the hour (portal/intake/receipts.py), then no more.
        return render_template("staff/hotline_done.html", tip_id=earlier.tip_id,
                               receipt=earlier.receipt, again=True, caller=caller), 200
    # A one-time token rather than a redirect: the receipt lives only in this response.
    return render_template("staff/hotline_done.html", tip_id=filed.tip_id,
                           receipt=filed.receipt, again=False, caller=caller), 201


# ---------------------------------------------------------------------------------------------
# Keys


@bp.route("/keys", methods=["GET", "POST"])
@staff_required
def keys(caller: Caller) -> Any:
    """Grant a unit's key: officers of a handling unit and liaisons of a receiving body pass on
    the key they hold; anyone who may see the unit here can paste its recovery key instead.
    A handling unit's reporter identity key passes between its custodians the same way
    (portal/web/staff/custodian_keys.py)."""
    from portal.web.staff import custodian_keys

    if request.method == "POST" and request.form.get("purpose") == "identity":
        return custodian_keys.handle_post(caller)
    form = GrantForm()
    principal = caller.principal
    keyed = set(db.session.scalars(select(Unit.id).where(Unit.public_key.is_not(None))))
    my_units = principal.key_units(keyed)
    units = list(db.session.scalars(select(Unit).where(Unit.id.in_(sorted(my_units)))
                                    .order_by(Unit.id)))
    lang = current_lang()
    form.unit.choices = choices([(u.code, u.name(lang)) for u in units])
    members = custody.key_members(db.session(), my_units)
    form.user_id.label.text = gettext("Colleague who receives the key")
    form.user_id.choices = choices([(str(user.id), f"{user.display_name or user.username} — "
                                     f"{unit.name(lang)}") for user, unit in members])
    if form.is_submitted():
        unit = next((u for u in units if u.code == form.unit.data), None)
        user_id = form.user_id.data or ""
        grantee = db.session.get(User, row_id(user_id)) if row_id(user_id) else None
        if unit is None or grantee is None:
            flash(gettext("Choose a unit and a colleague from the lists."), "error")
            return redirect(url_for("staff.keys")), 303
        actor = Actor("liaison" if unit.id in principal.liaison_units() else "staff",
                      caller.user.id, None)
        try:
            custody.hand_on(db.session(), unit, grantee, granter=caller.user,
                            granter_identities=principal.identities,
                            recovery_text=form.recovery_key.data or "", actor=actor)
        except custody.NotKeyMember:
            db.session.rollback()
            flash(gettext("%(name)s is not an officer or liaison of %(unit)s, so cannot hold its "
                          "key.", name=grantee.display_name or grantee.username,
                          unit=unit.name(lang)), "error")
            return redirect(url_for("staff.keys")), 303
        except custody.NotHolder:
            db.session.rollback()
            flash(gettext("You do not hold the key of %(unit)s, so you cannot grant it. Paste "
                          "its recovery key, or ask a colleague who holds it.",
                          unit=unit.name(lang)), "error")
            return redirect(url_for("staff.keys")), 303
        except custody.WrongRecoveryKey:
            db.session.rollback()
            flash(gettext("That is not the recovery key of %(unit)s.", unit=unit.name(lang)),
                  "error")
            return redirect(url_for("staff.keys")), 303
        db.session.commit()
        flash(gettext("%(name)s now holds the key of %(unit)s.",
                      name=grantee.display_name or grantee.username, unit=unit.name(lang)))
        return redirect(url_for("staff.keys")), 303
    grants = list(db.session.scalars(select(UnitKeyGrant).where(
        UnitKeyGrant.unit_id.in_(sorted(my_units)), UnitKeyGrant.revoked_at.is_(None),
        UnitKeyGrant.purpose == KeyPurpose.CONTENT.value)
        .order_by(UnitKeyGrant.unit_id, UnitKeyGrant.granted_at)))
    users = {u.id: u for u in db.session.scalars(select(User))}
    unit_names = {u.id: u.name(lang) for u in db.session.scalars(select(Unit))}
    own = principal.units_holding(KEY_ROLES)
    return render_template("staff/keys.html", form=form, grants=grants, users=users,
                           unit_names=unit_names, held=set(principal.identities),
                           missing=[unit_names[u] for u in sorted(own - set(principal.identities))
                                    if u in unit_names],
                           identity_keys=custodian_keys.page_data(caller), caller=caller)
