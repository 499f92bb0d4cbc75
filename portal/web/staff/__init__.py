"""The officers' face: sign-in, queue, tips, hotline entry, keys."""

from flask import Blueprint

bp = Blueprint("staff", __name__)

from portal.web.staff import cases, identity_views, retention_views, views  # noqa: E402,F401
