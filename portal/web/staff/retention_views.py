"""The tip page's legal hold (portal/operations/retention.py set_hold): a head of the tip's unit or
of 州本级
puts a tip on hold, or lifts the hold, with a reason. Thin: read the form, call the domain,
redirect (a refresh repeats nothing) or show the tip page again with the refusal in words."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from portal.operations import retention
from portal.triage import tip_actions
from portal.web.extensions import db
from portal.web.messages import refusal_text
from portal.web.session import Caller, staff_required
from portal.web.staff import bp
from portal.web.staff.views import _render_tip

HOLD_REFUSALS = {
    "reason_required": _l("Please give a reason."),
    "reason_too_long": _l("The reason is too long: at most 64 characters."),
    "already_on_hold": _l("This tip is already on legal hold."),
    "not_on_hold": _l("This tip is not on legal hold."),
    "archived": _l("This tip's content was destroyed under the retention rule: nothing more can "
                   "be done on it."),
    "bad_value": _l("A value in the form is not valid."),
}


@bp.post("/tips/<int:tip_id>/legal-hold")
@staff_required
def legal_hold(caller: Caller, tip_id: int) -> Any:
    choice = request.form.get("hold", "")
    reason = request.form.get("reason", "")
    try:
        if choice not in ("on", "off"):
            # Who may act comes before what they sent: the same refusal as set_hold's for them.
            tip_actions.get_visible(db.session(), caller.principal, tip_id, "tip.hold")
            raise retention.RetentionRefused("bad_value")
        retention.set_hold(db.session(), caller.principal, tip_id, choice == "on", reason)
    except tip_actions.NotFound:
        db.session.rollback()
        abort(404)
    except tip_actions.Refused as refused:
        db.session.rollback()
        if refused.code == "not_allowed":
            abort(403)
        return _render_tip(caller, tip_id, failed={
            "action": "hold", "message": refusal_text(refused.code), "values": {"reason": reason}})
    except retention.RetentionRefused as refused:
        db.session.rollback()
        return _render_tip(caller, tip_id, failed={
            "action": "hold", "message": str(HOLD_REFUSALS.get(refused.code,
                                                               HOLD_REFUSALS["bad_value"])),
            "values": {"reason": reason}})
    flash(gettext("The tip is on legal hold.") if choice == "on"
          else gettext("The legal hold is lifted."))
    return redirect(url_for("staff.tip", tip_id=tip_id) + "#legal-hold"), 303
