"""Who is asking, and the one guard every staff-side face uses.

The staff session (a cookie for the pages, a bearer token for the API) becomes a `Caller`: the
open session, the user and their Principal with the unit keys they hold. `staff_required` is the
one decorator of the officer, liaison, auditor, administrator and API faces: it finds the caller,
sends someone not signed in to the sign-in page (or answers 401 in JSON on the API), asks
portal/security/access.py whether the role fits (403 if not) and passes the caller to the view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, Literal

from flask import abort, current_app, jsonify, redirect, request, session, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response as BaseResponse  # what redirect() answers

from models import User
from portal.security.access import Principal, principal_for
from portal.security.custody import unit_identities
from portal.security.sessions import (
    OpenSession,
    RedisBackend,
    SessionInvalid,
    SessionStore,
    SqlBackend,
)
from portal.web.extensions import db

COOKIE = "qingliu_staff"


def session_store() -> SessionStore:
    client = current_app.extensions.get("redis")
    if client is not None:
        prefix = current_app.config.get("SESSION_KEY_PREFIX", "qingliu")
        return SessionStore(RedisBackend(client, prefix))
    return SessionStore(SqlBackend(db.session()))


@dataclass(frozen=True)
class Caller:
    session: OpenSession
    user: User
    principal: Principal


def caller_of(opened: OpenSession, user: User) -> Caller:
    """The caller behind a session just opened (its unit keys unsealed when first needed)."""
    personal = opened.identity
    return Caller(opened, user, principal_for(
        db.session(), user, loader=lambda: unit_identities(db.session(), user, personal)))


def _token_from_request(api: bool) -> str | None:
    if api:
        header = request.headers.get("Authorization", "")
        return header[7:].strip() if header.startswith("Bearer ") else None
    return request.cookies.get(COOKIE)


def current_caller(*, api: bool = False, stage: str = "active") -> Caller | None:
    """The signed-in officer of this request, or None. Cached on the request itself (not on
    `g`, which lives as long as the app context and may outlive one request)."""
    cache_key = f"qingliu.caller.{api}.{stage}"
    if cache_key in request.environ:
        return request.environ[cache_key]
    caller = None
    token = _token_from_request(api)
    if token:
        try:
            opened = session_store().open(token)
        except SessionInvalid:
            opened = None
        if opened is not None and opened.stage == stage and opened.kind == (
                "api" if api else "web"):
            user = db.session.get(User, opened.user_id)
            if user is not None and user.active:
                caller = caller_of(opened, user)
        db.session.commit()  # the session's last-seen time
    request.environ[cache_key] = caller
    return caller


def set_session_cookie(response: BaseResponse, token: str) -> BaseResponse:
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def renew_flask_session() -> None:
    """A new Flask session, hence a new CSRF token, at each step of signing in and at sign-out:
    a token learnt before sign-in is worth nothing after it. Only the chosen language stays."""
    lang = session.get("lang")
    session.clear()
    if lang is not None:
        session["lang"] = lang


# What a role asks of the caller's Principal (portal/security/access.py decides).
GuardRole = Literal["admin", "auditor"]
ROLE_CHECKS: dict[str, Callable[[Principal], bool]] = {
    "admin": lambda principal: principal.may_admin("accounts.manage"),
    "auditor": lambda principal: principal.is_auditor,
}


def _not_signed_in(api: bool) -> Any:
    if api:
        return jsonify({"error": gettext("A valid bearer token is required."),
                        "status": 401}), 401
    return redirect(url_for("staff.login"))


def staff_required(view: Callable[..., Any] | None = None, *, role: GuardRole | None = None,
                   api: bool = False) -> Any:
    """`@staff_required`, `@staff_required(role="admin")`, `@staff_required(api=True)`: the
    view runs with the caller as its first argument, or not at all. Not signed in: the sign-in
    page (302), or 401 in JSON with `api=True`; signed in without the role: 403."""
    check = ROLE_CHECKS[role] if role is not None else None

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            caller = current_caller(api=api)
            if caller is None:
                return _not_signed_in(api)
            if check is not None and not check(caller.principal):
                abort(403)
            return view(caller, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
