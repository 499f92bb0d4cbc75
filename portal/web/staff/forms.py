"""Forms of the staff pages: rendering and CSRF; the rules live in the services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)


class LoginForm(FlaskForm):
    username = StringField(_l("Username"))
    password = PasswordField(_l("Password"))
    # Offered while the account is held back by failed attempts (portal/security/auth.py).
    recovery_code = StringField(_l("One of your recovery codes"))


class SecondFactorForm(FlaskForm):
    code = StringField(_l("Code from your authenticator app, or a recovery code"))


class EnrollForm(FlaskForm):
    code = StringField(_l("Code shown by the app"))


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"))
    new = PasswordField(_l("New password"))
    confirm = PasswordField(_l("New password again"))


class ActionForm(FlaskForm):
    """One form for the tip actions; each action reads the fields it needs."""

    category = SelectField(_l("Category"), validate_choice=False)
    priority = SelectField(_l("Priority"), validate_choice=False)  # triage.PRIORITIES
    reason = TextAreaField(_l("Reason"))
    body = TextAreaField(_l("Message to the reporter"))
    days = IntegerField(_l("Days (at most 30)"), default=30)
    unit = SelectField(_l("Unit"), validate_choice=False)
    user_id = SelectField(_l("Officer"), validate_choice=False)
    original_id = IntegerField(_l("Number of the original tip"))


class GrantForm(FlaskForm):
    unit = SelectField(_l("Unit"), validate_choice=False)
    user_id = SelectField(_l("Officer"), validate_choice=False)
    recovery_key = TextAreaField(_l("Recovery key (only to grant without holding the key)"))


class HotlineForm(FlaskForm):
    """The choices are set by the view; values outside them are form errors, never a 500."""

    channel = SelectField(_l("Channel"), validate_choice=False)
    language = SelectField(_l("Language the caller speaks"), validate_choice=False)
    category = SelectField(_l("Category"), validate_choice=False)
    county = SelectField(_l("Where is the problem?"), validate_choice=False)
    place = StringField(_l("Place"))
    occurred = StringField(_l("When"))
    responsible = TextAreaField(_l("Responsible party"))
    narrative = TextAreaField(_l("What the caller reports"))
    officials = TextAreaField(_l("Officials involved"))
    name = StringField(_l("Caller's name (only if they want a real-name report)"))
    phone = StringField(_l("Caller's phone"))
    # One-time token (portal/intake/receipts.py): sending the same form again files no second tip.
    submission = HiddenField()
