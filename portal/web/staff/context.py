"""Who is asking: the staff session (cookie or bearer token) turned into a Principal with the
unit keys the officer holds, for the staff pages and the staff API alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import current_app, request

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
from portal.triage import queue as tip_queue
from portal.web.extensions import db

COOKIE = "qingliu_staff"


def session_store() -> SessionStore:
    client = current_app.extensions.get("redis")
    if client is not None:
        prefix = current_app.config.get("SESSION_KEY_PREFIX", "qingliu")
        return SessionStore(RedisBackend(client, prefix))
    return SessionStore(SqlBackend(db.session))


@dataclass(frozen=True)
class Caller:
    session: OpenSession
    user: User
    principal: Principal


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
                personal = opened.identity
                caller = Caller(opened, user, principal_for(
                    db.session, user,
                    loader=lambda: unit_identities(db.session, user, personal)))
        db.session.commit()  # the session's last-seen time
    request.environ[cache_key] = caller
    return caller


_YES_NO = {"yes": True, "no": False}


def queue_filter_from_args() -> tuple[tip_queue.QueueFilter, dict[str, str]]:
    """The queue's filters from the query string, and the ones whose value is not one of the
    choices (field → error code). Those are left out of the filter, so the page can say so and
    still list the rest, and the API can answer 400 naming them."""
    args = request.args
    errors: dict[str, str] = {}

    def day(name: str) -> date | None:
        value = args.get(name, "")
        try:
            day = date.fromisoformat(value) if value else None
        except ValueError:
            day = None
        # Years far off (0001, 9999) would overflow when turned into local day bounds.
        if value and (day is None or not 1900 <= day.year <= 2999):
            errors[name] = "invalid_date"
            return None
        return day

    def yes_no(name: str) -> bool | None:
        value = args.get(name) or ""
        if value and value not in _YES_NO:
            errors[name] = "not_a_choice"
        return _YES_NO.get(value)

    filters = tip_queue.QueueFilter(
        status=args.get("status") or None, category=args.get("category") or None,
        county=args.get("county") or None, channel=args.get("channel") or None,
        language=args.get("language") or None,
        received_from=day("from"), received_to=day("to"),
        real_name=yes_no("real_name"), has_attachments=yes_no("attachments"),
        deadline=args.get("deadline") or None, sort=args.get("sort") or "received",
        cursor=args.get("after") or None)
    errors.update(tip_queue.filter_errors(db.session, filters))
    for name in errors:
        if name == "sort":
            filters.sort = "received"
        elif hasattr(filters, name):
            setattr(filters, name, None)
    return filters, errors
