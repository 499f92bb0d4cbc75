"""First-start setup: create the administrator and the units' keys; show recovery keys once."""

from __future__ import annotations

from flask import abort, current_app, render_template
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField

from portal import crypto
from portal.accounts import MIN_PASSWORD_LENGTH, WeakPassword
from portal.admin import bp
from portal.extensions import db
from portal.seed import seed
from portal.setup import AlreadySetUp, complete_setup, token_is_valid


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
                                        wrap_cost=current_app.config["WRAP_ARGON2"])
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
