"""Error pages and JSON errors: always in the visitor's language, never a stack trace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, current_app, jsonify, make_response, render_template, request
from flask.wrappers import Response
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.security.keys import NotSetUp

if TYPE_CHECKING:
    from portal.web.session import Caller


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _explain(code: int) -> str:
    return {
        400: gettext("The request could not be understood. Please go back and try again."),
        403: gettext("You are not allowed to see this page."),
        404: gettext("This page does not exist."),
        405: gettext("This address does not accept that kind of request."),
        413: gettext("What you sent is larger than the portal accepts. Each file may be at most "
                     "%(mb)s MB, and all files together at most %(total)s MB. Please remove or "
                     "shrink some files and try again.",
                     mb=_mb("MAX_FILE_BYTES"), total=_mb("MAX_CONTENT_LENGTH")),
        429: gettext("Too many attempts from your connection. Please wait a while and try "
                     "again."),
        503: gettext("The portal is not ready yet: its keys have not been set up."),
    }.get(code, gettext("Something went wrong on our side. Nothing you sent was stored; please "
                        "try again later."))


def _title(code: int) -> str:
    """The page's title: the code in words (a tab or a screen reader reads it)."""
    return {
        400: gettext("Not understood"),
        403: gettext("Not allowed"),
        404: gettext("Page not found"),
        405: gettext("Not accepted here"),
        413: gettext("Too large"),
        429: gettext("Too many attempts"),
        503: gettext("Unavailable for a moment"),
    }.get(code, gettext("Something went wrong"))


def _mb(key: str) -> int:
    from flask import current_app

    return int(current_app.config[key]) // (1024 * 1024)


# Paths of the staff side: an error there is shown in the staff layout even to someone not (or
# no longer) signed in, who is most likely staff whose session ended.
STAFF_PATHS = ("/staff", "/admin", "/audit", "/liaison")


def _staff_caller() -> Caller | None:
    """The signed-in staff member, if any. Not for a server error: the database may be what
    failed, and the error page must not fail again."""
    from portal.web.extensions import db
    from portal.web.session import current_caller

    try:
        return current_caller()
    except Exception:  # an error page never fails over who is asking
        db.session.rollback()
        return None


def _staff_side(code: int) -> tuple[bool, Caller | None]:
    """(whether the staff layout fits, the signed-in staff member or None)."""
    on_staff_path = any(request.path == p or request.path.startswith(p + "/")
                        for p in STAFF_PATHS)
    caller = _staff_caller() if code < 500 else None
    return on_staff_path or caller is not None, caller


def _respond(code: int, message: str | None = None,
             headers: dict[str, str] | None = None) -> Response:
    """The one place that renders an error: JSON under /api/, else the citizen's or the staff
    layout. Renders without the database for a code of 500 and above (which may be the
    database failing)."""
    message = message or _explain(code)
    if _wants_json():
        response = make_response(jsonify({"error": message, "status": code}), code)
    else:
        staff_side, caller = _staff_side(code)
        if staff_side:
            page = render_template("errors/staff_error.html", code=code, title=_title(code),
                                   message=message, caller=caller)
        else:
            page = render_template("errors/error.html", code=code, title=_title(code),
                                   message=message)
        response = make_response(page, code)
    response.headers.update(headers or {})
    return response


def server_error(error: Exception) -> Response:
    """500 for what nobody expected: logged with its traceback (without the request's address,
    headers or body, portal/__init__.py)."""
    current_app.logger.exception("unhandled error on %s %s", request.method, request.url_rule)
    return _respond(500)


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> Response:
        return _respond(400, gettext("This form has expired or was opened in another window. "
                                     "Please go back, reload the page and send it again."))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        # A 405 names the methods the address takes (Allow, RFC 9110 15.5.6).
        allow = {k: v for k, v in error.get_headers() if k == "Allow"}
        return _respond(error.code or 500, headers=allow)

    @app.errorhandler(NotSetUp)
    def not_set_up(error: NotSetUp) -> Response:
        return _respond(503)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        # An outage raised as (or from within) another error is still an outage: 503, counted
        # in the log's summary (portal/web/outage.py), not a traceback per request.
        from portal.web import outage

        return outage.answer(error) or server_error(error)
