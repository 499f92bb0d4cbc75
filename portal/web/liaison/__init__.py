"""The receiving bodies' face: a liaison sees only the referrals addressed to their body."""

from flask import Blueprint

bp = Blueprint("liaison", __name__)

from portal.web.liaison import views  # noqa: E402,F401
