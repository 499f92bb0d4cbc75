"""The officers' queue filter read from the query string, for the staff pages and the staff API
alike (who is asking lives in portal/web/session.py)."""

from __future__ import annotations

from datetime import date

from flask import request

from portal.triage import queue as tip_queue
from portal.web.extensions import db

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
    errors.update(tip_queue.filter_errors(db.session(), filters))
    for name in errors:
        if name == "sort":
            filters.sort = "received"
        elif hasattr(filters, name):
            setattr(filters, name, None)
    return filters, errors
