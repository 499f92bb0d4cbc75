"""The auditor's face: the chain of custody and deadlines of every tip, case and referral, and
proof that the log is intact — read-only, and never a decryption."""

from flask import Blueprint

bp = Blueprint("auditor", __name__)

from portal.web.auditor import views  # noqa: E402,F401
