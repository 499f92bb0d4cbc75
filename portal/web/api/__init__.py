"""The JSON API for partner clients, on the same services as the pages."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from portal.web.api import referrals, staff, views  # noqa: E402,F401
