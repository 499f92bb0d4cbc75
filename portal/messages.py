"""Human words for the domain's codes, in the visitor's language (Flask-Babel catalogs).

The domain reports errors as codes (portal/intake.py FieldError); this table is the one place that
turns them into sentences, so the pages and the API say the same thing.
"""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext

from portal.intake import FieldError

_ERRORS = {
    "required": lazy_gettext("This field is required."),
    "required_real_name": lazy_gettext("Please give your name for a real-name report, or untick "
                                       "“report under my real name”."),
    "identity_unconfirmed": lazy_gettext("You filled in personal details but did not tick “report "
                                         "under my real name”. Tick it to send them, or clear "
                                         "them to stay anonymous."),
    "too_long": lazy_gettext("This is too long: at most %(max)s characters."),
    "unknown_category": lazy_gettext("Please choose one of the listed categories."),
    "unknown_county": lazy_gettext("Please choose one of the listed counties or cities."),
    "invalid_phone": lazy_gettext("Please enter a phone number using digits only."),
    "invalid_id_number": lazy_gettext("This is not a valid 18-character ID number."),
    "invalid_boolean": lazy_gettext("Please answer yes or no."),
    "invalid_type": lazy_gettext("This value has the wrong type."),
    "too_many_files": lazy_gettext("At most %(max)s files can be attached."),
    "file_too_large": lazy_gettext("“%(name)s” is larger than the limit of %(max_mb)s MB."),
    "type_not_allowed": lazy_gettext("“%(name)s” is not a photo, video, audio recording, PDF, "
                                     "Office document or text file, so it cannot be accepted."),
    "corrupt": lazy_gettext("“%(name)s” is damaged or could not be read."),
    "too_many_pixels": lazy_gettext("“%(name)s” has too many pixels to be processed safely."),
    "too_large_to_clean": lazy_gettext("“%(name)s” is too large to remove its hidden data; please "
                                       "send a smaller copy."),
    "empty": lazy_gettext("“%(name)s” is empty."),
    "honeypot": lazy_gettext("The form could not be accepted. Please try again."),
    "invalid_json": lazy_gettext("The request body is not valid JSON."),
    "unknown_field": lazy_gettext("This field is not part of the API."),
}


def error_text(error: FieldError) -> str:
    params = dict(error.params)
    if "max" in params and error.code == "file_too_large":
        params["max_mb"] = int(params["max"]) // (1024 * 1024)
    template = _ERRORS.get(error.code)
    if template is None:
        return gettext("This value is not valid.")
    return str(template) % params if params else str(template)


_REFUSALS = {
    "not_allowed": lazy_gettext("Your role does not allow this action on this tip."),
    "wrong_status": lazy_gettext("This action is not possible in the tip's current state."),
    "classify_first": lazy_gettext("Classify the tip into one of the 17 categories before "
                                   "accepting it."),
    "reason_required": lazy_gettext("Please give a reason."),
    "too_long": lazy_gettext("The text is too long."),
    "unknown_category": lazy_gettext("Please choose one of the listed categories."),
    "bad_priority": lazy_gettext("Please choose a listed priority."),
    "already_extended": lazy_gettext("The deadline of this tip has already been extended once."),
    "extension_too_long": lazy_gettext("A deadline can be extended by at most 30 days."),
    "not_a_member": lazy_gettext("That officer does not belong to the tip's unit."),
    "same_tip": lazy_gettext("A tip cannot duplicate itself."),
    "unknown_tip": lazy_gettext("There is no such tip among the ones you may see."),
    "circular_duplicate": lazy_gettext("That tip is already marked as a duplicate of this one."),
    "bad_unit": lazy_gettext("Please choose another handling unit."),
    "bad_channel": lazy_gettext("Please choose the channel the tip came through."),
    "bad_cursor": lazy_gettext("The page link is damaged; start from the first page."),
    "bad_value": lazy_gettext("A value in the form is not valid."),
}


def refusal_text(code: str) -> str:
    return str(_REFUSALS.get(code, _REFUSALS["bad_value"]))


STATUS_WORDS = {
    "received": lazy_gettext("Received — waiting for a decision to accept it"),
    "accepted": lazy_gettext("Accepted"),
    "declined": lazy_gettext("Not accepted"),
    "verifying": lazy_gettext("Being verified"),
    "referred": lazy_gettext("Referred to the competent authority"),
    "closed": lazy_gettext("Closed with a result"),
    "extended": lazy_gettext("The handling period was extended"),
    "referred_police": lazy_gettext("Referred to the public security organs"),
    "referred_procuratorate": lazy_gettext("Referred to the procuratorate"),
    "referred_discipline": lazy_gettext("Referred to the discipline inspection and supervision "
                                        "commission"),
    "referred_admin": lazy_gettext("Transferred to the competent administrative department"),
    "referred_court": lazy_gettext("Referred to the court"),
    "case_filed": lazy_gettext("A criminal case has been opened"),
    "case_prosecuted": lazy_gettext("The case has been brought to prosecution"),
}


def status_text(status: str) -> str:
    return str(STATUS_WORDS.get(status, status))


# ---------------------------------------------------------------------------------------------
# Words for the codes the pages show. Every staff, liaison, auditor and admin page turns a code
# into words through one of these (registered as Jinja globals in portal/__init__.py); a page
# never prints a unit code, channel, role, deadline step, state or audit action as it is stored.


def unit_name(unit: object, lang: str | None = None) -> str:
    """A unit (or its code) by its name in the page's language."""
    from portal.http import current_lang

    lang = lang or current_lang()
    if unit is None:
        return "—"
    if isinstance(unit, str):
        from sqlalchemy import select

        from models import Unit
        from portal.extensions import db

        found = db.session.scalar(select(Unit).where(Unit.code == unit))
        return found.name(lang) if found is not None else unit
    return unit.name(lang)  # type: ignore[attr-defined]


CHANNEL_WORDS = {
    "online": lazy_gettext("Online portal"),
    "api": lazy_gettext("Partner app"),
    "hotline": lazy_gettext("12369 hotline"),
    "petition": lazy_gettext("Petition (信访)"),
    "inspection_rectification": lazy_gettext("Inspection rectification (督察整改)"),
    "enforcement": lazy_gettext("Enforcement"),
    "routine_inspection": lazy_gettext("Routine inspection"),
    "transfer": lazy_gettext("Transferred from another body"),
}


def channel_text(channel: str) -> str:
    return str(CHANNEL_WORDS.get(channel, channel))


ROLE_WORDS = {
    "intake_officer": lazy_gettext("Intake officer"),
    "case_officer": lazy_gettext("Case officer"),
    "head": lazy_gettext("Head"),
    "auditor": lazy_gettext("Auditor"),
    "administrator": lazy_gettext("Administrator"),
    "liaison": lazy_gettext("Liaison"),
}


def role_text(role: str) -> str:
    return str(ROLE_WORDS.get(str(role), role))


PRIORITY_WORDS = {0: lazy_gettext("Normal"), 1: lazy_gettext("High"), 2: lazy_gettext("Urgent")}


def priority_text(priority: int | None) -> str:
    return str(PRIORITY_WORDS.get(priority or 0, priority))


STEP_WORDS = {
    "tip.accept": lazy_gettext("Decide to accept or decline"),
    "tip.close": lazy_gettext("Close with a result"),
    "tip.contact": lazy_gettext("Contact the real-name reporter"),
}


def step_text(step: str | None) -> str:
    """A deadline step (tip.accept, referral.approve …) in words."""
    return str(STEP_WORDS.get(step or "", step or "—"))


def event_text(action: str, details: object = None) -> str:
    """One history or audit entry as a sentence (收到举报（1个附件）), never `action {json}`."""
    return str(EVENT_WORDS.get(action, action))


EVENT_WORDS: dict[str, object] = {}


def duration_text(delta: object) -> str:
    """A duration (late by …) in the page's language: days, hours and minutes."""
    from datetime import timedelta

    if not isinstance(delta, timedelta):
        return "—"
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(abs(minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(gettext("%(num)d days", num=days))
    if hours:
        parts.append(gettext("%(num)d hours", num=hours))
    if mins or not parts:
        parts.append(gettext("%(num)d minutes", num=mins))
    return " ".join(parts)


TEMPLATE_WORDS = {
    "unit_name": unit_name, "channel_text": channel_text, "role_text": role_text,
    "priority_text": priority_text, "step_text": step_text, "event_text": event_text,
    "duration_text": duration_text,
}
