"""The administrator's face: first-start setup, the first sign-in link, the admin home, accounts,
categories, offences and the holiday calendar (none of it opens a tip)."""

from flask import Blueprint

bp = Blueprint("admin", __name__)

from portal.web.admin import views  # noqa: E402,F401
