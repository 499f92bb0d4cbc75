"""The citizen face: home, report, receipt, follow-up. Works without JavaScript."""

from flask import Blueprint

bp = Blueprint("citizen", __name__)

from portal.web.citizen import views  # noqa: E402,F401  (routes register on import)
