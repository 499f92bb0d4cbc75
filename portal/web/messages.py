"""Human words for the domain's codes, in the visitor's language (Flask-Babel catalogs).

The domain reports errors as codes (portal/intake/filing.py FieldError); this table is the one
place that
turns them into sentences, so the pages and the API say the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask_babel import gettext, lazy_gettext, ngettext
from flask_babel import lazy_gettext as _l

from portal.intake.filing import FieldError
from portal.intake.identity import REASON_MAX
from referral.workflow import Document, Transition

if TYPE_CHECKING:
    from models import Unit

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
    "cannot_clean": lazy_gettext("We could not remove the hidden data (place, time, device) "
                                 "from “%(name)s”, so it was not accepted. Please try again "
                                 "later, or send the report without it."),
    "empty": lazy_gettext("“%(name)s” is empty."),
    "honeypot": lazy_gettext("The form could not be accepted. Please try again."),
    "invalid_json": lazy_gettext("The request body is not valid JSON."),
    "unknown_field": lazy_gettext("This field is not part of the API."),
    "weak_idempotency_key": lazy_gettext("The Idempotency-Key must be a random value of 32 to "
                                         "128 letters, digits or -._~+/= (e.g. a UUID)."),
    "unknown_language": lazy_gettext("Please choose one of the listed languages."),
    "unknown_channel": lazy_gettext("Please choose the channel the tip came through."),
    "not_a_choice": lazy_gettext("Please choose one of the listed values."),
    "invalid_date": lazy_gettext("Please enter a date as year-month-day."),
    "form_expired": lazy_gettext("This form has expired. Check the entries and send it again."),
    "form_reused": lazy_gettext("This form was already used to file a tip. Everything typed is "
                                "kept: send it again to file it as a new tip."),
    "tip_archived": lazy_gettext("This report has been archived: its content was destroyed "
                                 "under the retention rules, so nothing more can be added."),
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
    "archived": lazy_gettext("This tip's content was destroyed under the retention rule: "
                             "nothing more can be done on it."),
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


def _lang(lang: str | None = None) -> str:
    from portal.web.http import current_lang

    return lang or current_lang()


def _cached(kind: str, key: object, load: Callable[[], str]) -> str:
    """Names looked up in the database once per request (a timeline names the same unit often)."""
    from flask import g, has_app_context

    if not has_app_context():
        return load()
    cache = g.setdefault("_word_cache", {})
    if (kind, key) not in cache:
        cache[(kind, key)] = load()
    return cache[(kind, key)]


def unit_name(unit: Unit | str | None, lang: str | None = None) -> str:
    """A unit (or its code) by its name in the page's language."""
    lang = _lang(lang)
    if unit is None or unit == "":
        return "—"
    if isinstance(unit, str):
        code = unit

        def load() -> str:
            from sqlalchemy import select

            from models import Unit
            from portal.web.extensions import db

            found = db.session.scalar(select(Unit).where(Unit.code == code))
            return found.name(lang) if found is not None else gettext("Unknown unit")

        return _cached("unit", (code, lang), load)
    return unit.name(lang)


def user_name(user_id: int | str | None) -> str:
    """A staff member by display name (or user name), for timelines that store only an id."""
    if user_id is None:
        return "—"

    def load() -> str:
        from models import User
        from portal.web.extensions import db

        found = db.session.get(User, int(user_id))
        if found is None:
            return gettext("Unknown account")
        return found.display_name or found.username

    return _cached("user", user_id, load)


def _coded_name(model: str, code: object, lang: str | None = None) -> str:
    """A category or offence by its name (codes such as P01 stay, names follow)."""
    lang = _lang(lang)

    def load() -> str:
        from sqlalchemy import select

        from models import Category, Offence
        from portal.web.extensions import db

        if model == "category":
            found = db.session.scalar(select(Category).where(
                Category.code == str(code)).order_by(Category.version.desc()).limit(1))
            return f"{code} {found.name(lang)}" if found is not None else str(code)
        offence = db.session.scalar(select(Offence).where(Offence.code == str(code)))
        return offence.name(lang) if offence is not None else str(code)

    return _cached(model, (code, lang), load)


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


def channel_text(channel: object) -> str:
    return str(CHANNEL_WORDS.get(str(channel), channel or "—"))


ROLE_WORDS = {
    "intake_officer": lazy_gettext("Intake officer"),
    "case_officer": lazy_gettext("Case officer"),
    "head": lazy_gettext("Head"),
    "custodian": lazy_gettext("Custodian of reporters' identities"),
    "auditor": lazy_gettext("Auditor"),
    "administrator": lazy_gettext("Administrator"),
    "liaison": lazy_gettext("Liaison"),
    # Who acts in a referral step (referral/workflow.py Actor) and in the log (actor types).
    "officer": lazy_gettext("Case officer"),
    "reporter": lazy_gettext("Reporter"),
    "staff": lazy_gettext("Staff member"),
    "system": lazy_gettext("The system"),
}


def role_text(role: object) -> str:
    return str(ROLE_WORDS.get(str(role), role or "—"))


PRIORITY_WORDS = {0: lazy_gettext("Normal"), 1: lazy_gettext("High"), 2: lazy_gettext("Urgent"),
                  3: lazy_gettext("Most urgent")}


def priority_text(priority: int | str | None) -> str:
    try:
        return str(PRIORITY_WORDS[int(priority or 0)])
    except (KeyError, TypeError, ValueError):
        return str(priority)


# Every step of referral/deadlines.py RULES (tests/unit/test_words.py keeps them in step).
STEP_WORDS = {
    "tip.accept": lazy_gettext("Decide to accept or decline"),
    "tip.close": lazy_gettext("Close with a result"),
    "tip.extension": lazy_gettext("Extended handling period"),
    "tip.contact_real_name": lazy_gettext("Contact the real-name reporter"),
    "tip.contact": lazy_gettext("Contact the real-name reporter"),
    "referral.approve": lazy_gettext("Head approves or rejects the referral"),
    "referral.handover": lazy_gettext("Hand over to the receiving body after approval"),
    "referral.hand_over": lazy_gettext("Hand over to the receiving body after approval"),
    "referral.request_material": lazy_gettext("Receiving body asks for missing material"),
    "referral.supplement": lazy_gettext("Supplement the missing material"),
    "referral.decide_filing": lazy_gettext("Decide whether to open a case (3 days)"),
    "referral.decide_filing_check": lazy_gettext("Decide whether to open a case (7 days, "
                                                 "clues to check)"),
    "referral.decide_filing_major": lazy_gettext("Decide whether to open a case (30 days, "
                                                 "major or complex case)"),
    "referral.notify_decision": lazy_gettext("Notify the decision in writing"),
    "referral.request_reconsideration": lazy_gettext("Ask for reconsideration"),
    "referral.decide_reconsideration": lazy_gettext("Decide the reconsideration"),
    "referral.hand_over_exhibits": lazy_gettext("Hand over the exhibits"),
    "referral.refer_after_opinion": lazy_gettext("Refer after a procuratorial opinion"),
    "referral.notify_non_prosecution": lazy_gettext("Notify the decision not to prosecute"),
    "suggestion.procuratorial_reply": lazy_gettext("Answer the procuratorial suggestion in "
                                                   "writing"),
}


def step_text(step: str | None) -> str:
    """A deadline step (tip.accept, referral.approve …) in words."""
    if not step:
        return "—"
    return str(STEP_WORDS.get(step, gettext("Another step")))


# ---------------------------------------------------------------------------------------------
# Referral documents, actions and states (referral/workflow.py), 三书一函 kinds.

DOCUMENT_LABELS: dict[str, Any] = {  # looked up by the kind stored, a plain str
    Document.INVESTIGATION_REPORT: lazy_gettext("Investigation report (案件调查报告)"),
    Document.INSPECTION_RECORD: lazy_gettext("On-site inspection record (现场检查笔录)"),
    Document.INTERVIEW_RECORD: lazy_gettext("Interview record (询问笔录)"),
    Document.SAMPLING_RECORD: lazy_gettext("Sampling record (采样记录)"),
    Document.EXHIBIT_LIST: lazy_gettext("List of exhibits (涉案物品清单)"),
    Document.MEDIA: lazy_gettext("Photos, audio and video (照片音像)"),
    Document.MONITORING_REPORT: lazy_gettext("Monitoring or test report (监测/检验报告)"),
    Document.EXPERT_OPINION: lazy_gettext("Expert opinion (认定意见)"),
    Document.PENALTY_DECISION: lazy_gettext("Administrative penalty decision (行政处罚决定书)"),
    Document.TRANSFER_LETTER: lazy_gettext("Case transfer letter (案件移送书)"),
    Document.RECEIPT: lazy_gettext("Receipt (回执)"),
    Document.DECISION: lazy_gettext("Decision (决定书)"),
    Document.RECONSIDERATION_REQUEST: lazy_gettext("Request for reconsideration (复议申请)"),
    Document.SUPERVISION_REQUEST: lazy_gettext("Request for supervision (立案监督申请)"),
    Document.OTHER: lazy_gettext("Other material"),
}
# The letter lists materials under their Chinese names (17号 第6条).
LETTER_LABELS = {
    "investigation_report": "案件调查报告", "inspection_record": "现场检查（勘察）笔录",
    "interview_record": "询问笔录", "sampling_record": "采样记录",
    "exhibit_list": "涉案物品清单", "media": "照片、音像资料及清单",
    "monitoring_report": "监测/检验报告", "expert_opinion": "认定意见",
    "penalty_decision": "行政处罚决定书", "other": "其他材料",
}
ACTION_LABELS = {
    "submit": lazy_gettext("Submit for approval"),
    "approve": lazy_gettext("Approve the referral"),
    "reject": lazy_gettext("Reject, with reasons"),
    "revise": lazy_gettext("Revise the report"),
    "hand_over": lazy_gettext("Hand over (generates the 移送书 and the package)"),
    "sign_receipt": lazy_gettext("Sign the receipt (回执)"),
    "request_material": lazy_gettext("Ask for missing material"),
    "supplement": lazy_gettext("Supplement the material (补正)"),
    "forward": lazy_gettext("Forward to another jurisdiction"),
    "return": lazy_gettext("Return"),
    "file": lazy_gettext("Record 立案 (case filed)"),
    "decline_filing": lazy_gettext("Record 不予立案"),
    "mark_overdue": lazy_gettext("Mark the decision overdue"),
    "request_reconsideration": lazy_gettext("Ask for reconsideration (复议)"),
    "uphold_refusal": lazy_gettext("Uphold the refusal"),
    "request_supervision": lazy_gettext("Ask the procuratorate for supervision (立案监督)"),
    "hand_over_exhibits": lazy_gettext("Record the handover of exhibits"),
    # 撤案: the police cancel the case they opened; not a withdrawal by the bureau.
    "withdraw": lazy_gettext("Record 撤案 (case cancelled)"),
    "prosecute": lazy_gettext("Record prosecution (起诉)"),
    "not_prosecute": lazy_gettext("Record 不起诉"),
    "return_for_penalty": lazy_gettext("Return for administrative penalty"),
}
STATE_LABELS = {
    "draft": lazy_gettext("Draft report"),
    "awaiting_approval": lazy_gettext("Awaiting approval"),
    "approved": lazy_gettext("Approved"),
    "rejected": lazy_gettext("Rejected"),
    "handed_over": lazy_gettext("Handed over"),
    "receipt_signed": lazy_gettext("Receipt signed"),
    "material_requested": lazy_gettext("Material requested"),
    "supplemented": lazy_gettext("Supplemented"),
    "forwarded": lazy_gettext("Forwarded"),
    "returned": lazy_gettext("Returned"),
    "filed": lazy_gettext("Filed (立案)"),
    "not_filed": lazy_gettext("Not filed (不予立案)"),
    "overdue": lazy_gettext("Decision overdue"),
    "reconsideration_requested": lazy_gettext("Reconsideration requested"),
    "reconsideration_upheld": lazy_gettext("Refusal upheld"),
    "supervision_requested": lazy_gettext("Supervision requested"),
    "exhibits_handed_over": lazy_gettext("Exhibits handed over"),
    "withdrawn": lazy_gettext("Case cancelled (撤案)"),
    "prosecuted": lazy_gettext("Prosecuted (起诉)"),
    "not_prosecuted": lazy_gettext("Not prosecuted (不起诉)"),
    "returned_for_penalty": lazy_gettext("Returned for administrative penalty"),
}
SUGGESTION_KIND_LABELS = {
    "judicial": lazy_gettext("Judicial suggestion (司法建议书)"),
    "procuratorial": lazy_gettext("Procuratorial suggestion (检察建议书)"),
    "supervisory": lazy_gettext("Supervisory suggestion (监察建议书)"),
    "police": lazy_gettext("Public security notice (公安提示函)"),
}
# A case's own status (models/case.py Case.status).
CASE_STATUS_WORDS = {
    "open": lazy_gettext("Open"),
    "referred": lazy_gettext("Referred"),
    "closed": lazy_gettext("Closed"),
}


def state_text(state: object) -> str:
    """A referral state (awaiting_approval …) in words."""
    return str(STATE_LABELS.get(str(state), gettext("Another state")))


def action_text(action: object) -> str:
    """A referral step (submit, hand_over …) in words."""
    return str(ACTION_LABELS.get(str(action), gettext("Another step")))


def document_text(kind: object) -> str:
    return str(DOCUMENT_LABELS.get(str(kind), DOCUMENT_LABELS[Document.OTHER]))


def case_status_text(status: object) -> str:
    return str(CASE_STATUS_WORDS.get(str(status), STATUS_WORDS.get(str(status), status)))


# ---------------------------------------------------------------------------------------------
# History and audit entries as sentences: `tip.received {"attachments":1}` → 收到举报（1个附件）.
# tests/unit/test_words.py collects every action the code writes and fails on one without words.

EVENT_WORDS: dict[str, Any] = {
    # Tips and their reporters
    "tip.received": lazy_gettext("Tip received"),
    "tip.opened": lazy_gettext("Tip opened and read"),
    "tip.classified": lazy_gettext("Tip classified"),
    "tip.priority_set": lazy_gettext("Priority set"),
    "tip.accepted": lazy_gettext("Tip accepted"),
    "tip.declined": lazy_gettext("Tip not accepted"),
    "tip.verification_started": lazy_gettext("Verification started"),
    "tip.closed": lazy_gettext("Tip closed with a result"),
    "tip.deadline_extended": lazy_gettext("Handling period extended"),
    "tip.assigned": lazy_gettext("Tip assigned"),
    "tip.linked_duplicate": lazy_gettext("Marked as a duplicate"),
    "tip.transferred": lazy_gettext("Tip transferred to another unit"),
    "tip.destroyed": lazy_gettext("Content destroyed under the retention rule; the record is "
                                  "kept"),
    "tip.hold_set": lazy_gettext("Put on legal hold"),
    "tip.hold_lifted": lazy_gettext("Legal hold lifted"),
    "identity.requested": lazy_gettext("Reporter's identity requested"),
    "identity.withdrawn": lazy_gettext("Request for the reporter's identity withdrawn"),
    "identity.granted": lazy_gettext("Request for the reporter's identity granted"),
    "identity.refused": lazy_gettext("Request for the reporter's identity refused"),
    "identity.revoked": lazy_gettext("Access to the reporter's identity revoked"),
    "identity.read": lazy_gettext("Reporter's identity read"),
    "identity.resealed": lazy_gettext("Reporter's identity sealed again for the tip's new unit"),
    "attachment.downloaded": lazy_gettext("Attachment opened"),
    "message.to_reporter": lazy_gettext("Message sent to the reporter"),
    "message.from_reporter": lazy_gettext("Message from the reporter"),
    # Cases, referrals, 三书一函
    "case.formed": lazy_gettext("Case formed"),
    "case.documents_added": lazy_gettext("Documents added to the case"),
    "case.opened": lazy_gettext("Case opened and read"),
    "referral.created": lazy_gettext("Referral drafted"),
    "referral.submit": lazy_gettext("Referral submitted for approval"),
    "referral.approve": lazy_gettext("Referral approved"),
    "referral.reject": lazy_gettext("Referral rejected"),
    "referral.revise": lazy_gettext("Referral report revised"),
    "referral.hand_over": lazy_gettext("Referral handed over"),
    "referral.sign_receipt": lazy_gettext("Receipt signed by the receiving body"),
    "referral.request_material": lazy_gettext("Receiving body asked for missing material"),
    "referral.supplement": lazy_gettext("Material supplemented"),
    "referral.forward": lazy_gettext("Forwarded to another jurisdiction"),
    "referral.return": lazy_gettext("Referral returned"),
    "referral.file": lazy_gettext("Case filed (立案)"),
    "referral.decline_filing": lazy_gettext("Case not filed (不予立案)"),
    "referral.mark_overdue": lazy_gettext("Filing decision marked overdue"),
    "referral.request_reconsideration": lazy_gettext("Reconsideration requested"),
    "referral.uphold_refusal": lazy_gettext("Refusal upheld on reconsideration"),
    "referral.request_supervision": lazy_gettext("Procuratorate asked for supervision"),
    "referral.hand_over_exhibits": lazy_gettext("Exhibits handed over"),
    "referral.withdraw": lazy_gettext("Case cancelled (撤案)"),
    "referral.prosecute": lazy_gettext("Prosecuted (起诉)"),
    "referral.not_prosecute": lazy_gettext("Not prosecuted (不起诉)"),
    "referral.return_for_penalty": lazy_gettext("Returned for administrative penalty"),
    "referral.package_downloaded": lazy_gettext("Referral package downloaded"),
    "referral.package_refused": lazy_gettext("Referral package refused: no key that opens it"),
    "referral.letter_previewed": lazy_gettext("Draft 移送书 previewed"),
    "referral.redaction_added": lazy_gettext("Part of the material blacked out before hand-over"),
    "referral.redaction_removed": lazy_gettext("Blacking out taken back before hand-over"),
    "case.document_downloaded": lazy_gettext("Case document opened"),
    "suggestion.recorded": lazy_gettext("Suggestion (三书一函) recorded"),
    "suggestion.opened": lazy_gettext("Suggestion (三书一函) opened and read"),
    "suggestion.answered": lazy_gettext("Suggestion (三书一函) answered"),
    # Keys, accounts and sign-in
    "unit_key.created": lazy_gettext("Unit key created"),
    "unit_key.granted": lazy_gettext("Unit key granted"),
    "unit_key.recovered": lazy_gettext("Unit key granted with the recovery key"),
    "unit_key.revoked": lazy_gettext("Unit key revoked"),
    "identity_key.created": lazy_gettext("Reporter identity key (custodians) created"),
    "identity_key.granted": lazy_gettext("Reporter identity key handed to a custodian"),
    "identity_key.recovered": lazy_gettext(
        "Reporter identity key handed to a custodian with the custodian recovery key"),
    "identity_key.revoked": lazy_gettext("Reporter identity key revoked"),
    "identity.separated": lazy_gettext("Reporters' identities sealed apart from their tips"),
    "identity.reseal_pending": lazy_gettext(
        "Reporter's identity waits to be sealed for the new unit's custodians"),
    "user.created": lazy_gettext("Account created"),
    "user.activated": lazy_gettext("Account activated"),
    "user.deactivated": lazy_gettext("Account deactivated"),
    "user.sign_in_link_issued": lazy_gettext("One-time sign-in link issued"),
    "membership.added": lazy_gettext("Role given"),
    "membership.removed": lazy_gettext("Role removed"),
    "membership.confirmed": lazy_gettext("Role confirmed by a second person"),
    "membership.refused": lazy_gettext("Role refused by a second person"),
    "password.changed": lazy_gettext("Password changed"),
    "password.reset": lazy_gettext("Password reset"),
    "password.reset_requested": lazy_gettext("Password reset requested by an administrator"),
    "password.reset_confirmed": lazy_gettext("Password reset confirmed by a second administrator"),
    "password.reset_code_failed": lazy_gettext("Wrong code on a password reset link"),
    "password.reset_completed": lazy_gettext("Password reset completed by the account holder"),
    "signin.succeeded": lazy_gettext("Signed in"),
    "signin.failed": lazy_gettext("Sign-in failed"),
    "signout": lazy_gettext("Signed out"),
    "signout.everywhere": lazy_gettext("Signed out everywhere"),
    "second_factor.enrolled": lazy_gettext("Authenticator app enrolled"),
    "recovery_code.used": lazy_gettext("Recovery code used"),
    "token.issued": lazy_gettext("API token issued"),
    "token.revoked": lazy_gettext("API token revoked"),
    # Administration and the log
    "setup.completed": lazy_gettext("Setup completed"),
    "blind_index.rotated": lazy_gettext("Related-tips key replaced"),
    "category.edited": lazy_gettext("Category edited"),
    "category.retention_set": lazy_gettext("Retention period of a category set"),
    "offence.saved": lazy_gettext("Offence saved"),
    "calendar.imported": lazy_gettext("Holiday calendar imported"),
    "audit.verified": lazy_gettext("Log verified"),
    "audit.exported": lazy_gettext("Log exported"),
}


def _count(num: int, one: Any, many: Any) -> str:
    # A placeholder, not ngettext (the catalogs carry one form per message).
    return str(one if num == 1 else many) % {"num": num}


def _yes(value: object, yes: Any, no: Any = None) -> str | None:
    if value:
        return str(yes)
    return str(no) if no is not None else None


# What a redaction blacked out (portal/cases/redaction.py): a tip's statement, or an image.
REDACTION_KIND_WORDS = {"text": lazy_gettext("in a tip's statement"),
                        "image": lazy_gettext("in a photo")}


def _kind_text(kind: object) -> str:
    if str(kind) in SUGGESTION_KIND_LABELS:
        return str(SUGGESTION_KIND_LABELS[str(kind)])
    if str(kind) in REDACTION_KIND_WORDS:
        return str(REDACTION_KIND_WORDS[str(kind)])
    return document_text(kind)


# How each detail a writer may record reads, in the order shown. A detail not listed here is
# left out of the sentence (never dumped as JSON); tests/unit/test_words.py lists the keys the
# code writes and fails on one without words.
DETAIL_WORDS: dict[str, Callable[[Any], str | None]] = {
    "channel": lambda v: channel_text(v),
    "attachments": lambda v: _count(int(v), _l("%(num)d attachment"), _l("%(num)d attachments"))
    if v else None,
    "real_name": lambda v: _yes(v, _l("real name"), _l("anonymous")),
    "category": lambda v: _coded_name("category", v) if v else None,
    "previous": lambda v: gettext("previously %(name)s", name=_coded_name("category", v))
    if v else None,
    "version": lambda v: gettext("version %(num)d", num=int(v)) if v else None,
    "with_reason": lambda v: _yes(v, _l("with a reason")),
    "priority": lambda v: priority_text(v),
    "days": lambda v: gettext("by %(num)d days", num=int(v)),
    "assignee": lambda v: gettext("to %(name)s", name=user_name(v)),
    "original": lambda v: gettext("of tip #%(num)d", num=int(v)),
    "from_unit": lambda v: gettext("from %(unit)s", unit=unit_name(v)),
    "to_unit": lambda v: gettext("to %(unit)s", unit=unit_name(v)),
    "tips": lambda v: _count(int(v), _l("%(num)d tip"), _l("%(num)d tips")),
    "left": lambda v: _count(int(v), _l("%(num)d tip not opened by the keys given"),
                             _l("%(num)d tips not opened by the keys given")) if v else None,
    "members": lambda v: _count(int(v), _l("%(num)d officer"), _l("%(num)d officers")),
    "offence": lambda v: _coded_name("offence", v) if v else None,
    "kind": lambda v: _kind_text(v),
    "files": lambda v: _count(int(v), _l("%(num)d file"), _l("%(num)d files")),
    "receiver": lambda v: gettext("to %(unit)s", unit=unit_name(v)),
    "copy": lambda v: gettext("copy to %(unit)s", unit=unit_name(v)) if v else None,
    "to_state": lambda v: gettext("now: %(state)s", state=state_text(v)),
    "with_documents": lambda v: _yes(v, _l("with documents")),
    "letter_sha256": lambda v: gettext("letter fingerprint %(hash)s", hash=str(v)[:16])
    if v else None,
    "evidence": lambda v: _count(int(v), _l("%(num)d evidence file"), _l("%(num)d evidence files"))
    if v else None,
    "on_time": lambda v: None if v is None else _yes(v, _l("on time"), _l("late")),
    "code": lambda v: str(v),
    "active": lambda v: _yes(v, _l("in use"), _l("no longer in use")),
    "years": lambda v: gettext("years %(years)s", years=str(v)) if v else None,
    "role": lambda v: role_text(v),
    "grants_revoked": lambda v: _count(int(v), _l("%(num)d key revoked"),
                                       _l("%(num)d keys revoked")) if v else None,
    "sessions": lambda v: _count(int(v), _l("%(num)d session ended"), _l("%(num)d sessions ended"))
    if v else None,
    "units": lambda v: _count(int(v), _l("%(num)d unit"), _l("%(num)d units")),
    "ok": lambda v: _yes(v, _l("intact"), _l("does not verify")),
    "entries": lambda v: _count(int(v), _l("%(num)d entry"), _l("%(num)d entries")),
    "tip_files": lambda v: _count(int(v), _l("%(num)d of the reporter's files"),
                                  _l("%(num)d of the reporters' files")) if v else None,
    "tip_texts": lambda v: _count(int(v), _l("%(num)d tip statement"),
                                  _l("%(num)d tip statements")) if v else None,
    "count": lambda v: _count(int(v), _l("%(num)d place"), _l("%(num)d places")),
    "sealed": lambda v: _yes(v, _l("sealed, for offline decryption")),
    "reason": lambda v: str(REFUSAL_REASON_WORDS.get(str(v), "")) or None,
    "via": lambda v: str(VIA_WORDS.get(str(v), "")) or None,
    "factor_lost": lambda v: _yes(v, _l("the second factor lost as well")),
    "pending": lambda v: _yes(v, _l("waiting for a second person's confirmation")),
    # Retention (portal/operations/retention.py)
    "closed_on": lambda v: gettext("closed on %(date)s", date=str(v)),
    "retention_days": lambda v: _retention_days_text(v),
    "previous_days": lambda v: gettext("previously: %(period)s",
                                       period=_retention_days_text(v)),
    "hold_reason": lambda v: gettext("reason: %(reason)s", reason=str(v)) if v else None,
    "request": lambda v: gettext("request #%(num)d", num=int(v)),
    "purpose": lambda v: identity_purpose_text(v),
    "for_days": lambda v: _count(int(v), _l("for %(num)d day"), _l("for %(num)d days")),
}


# Annotated: the lambdas above read them before mypy reaches their definitions.
REFUSAL_REASON_WORDS: dict[str, Any] = {
    "key_not_held": lazy_gettext("no key of the unit held"),
    "key_does_not_open": lazy_gettext("the key held does not open it")}
VIA_WORDS: dict[str, Any] = {"page": lazy_gettext("on the administration page"),
                             "command": lazy_gettext("from the command line"),
                             "cli": lazy_gettext("from the command line"),
                             "reset": lazy_gettext("for a password reset")}


def _retention_days_text(days: object) -> str:
    """A category's retention period in words: None keeps closed tips for ever."""
    if days is None:
        return gettext("kept for ever")
    number = days if isinstance(days, int) else int(str(days))
    return ngettext("kept %(num)d day after closing", "kept %(num)d days after closing", number)


def _details(details: object) -> dict[str, Any]:
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except ValueError:
            return {}
    return details if isinstance(details, dict) else {}


def event_text(action: str, details: object = None) -> str:
    """One history or audit entry as a sentence (收到举报（1个附件）), never `action {json}`."""
    words = EVENT_WORDS.get(str(action))
    sentence = str(words) if words is not None else gettext("Recorded event")
    parts = []
    values = _details(details)
    if values.get("previous") == values.get("category"):
        values.pop("previous", None)  # confirmed as the reporter chose: nothing to compare
    for key, render in DETAIL_WORDS.items():
        if key not in values:
            continue
        try:
            part = render(values[key])
        except (TypeError, ValueError):
            part = None  # a malformed value is left out, not shown raw
        if part:
            parts.append(part)
    if not parts:
        return sentence
    if _lang().startswith("zh"):
        return f"{sentence}（{'，'.join(parts)}）"
    return f"{sentence} ({', '.join(parts)})"


def throttled_text(kind: str, seconds: int) -> str:
    """Why a sign-in is held back and for how long, in whole minutes (rounded up), with the
    plural the language needs: `kind` is "password" or "code" (a recovery code still passes)."""
    minutes = max(1, -(-int(seconds) // 60))
    if kind == "code":
        return ngettext("Too many wrong codes for this account. Try again in %(num)d minute, or "
                        "enter one of your recovery codes.",
                        "Too many wrong codes for this account. Try again in %(num)d minutes, or "
                        "enter one of your recovery codes.", minutes)
    return ngettext("Too many failed attempts for this account. Try again in %(num)d minute.",
                    "Too many failed attempts for this account. Try again in %(num)d minutes.",
                    minutes)


def duration_text(delta: object) -> str:
    """A duration (late by …) in the page's language: days, hours and minutes."""
    if not isinstance(delta, timedelta):
        return "—"
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(_count(days, _l("%(num)d day"), _l("%(num)d days")))
    if hours:
        parts.append(_count(hours, _l("%(num)d hour"), _l("%(num)d hours")))
    if mins or not parts:
        parts.append(_count(mins, _l("%(num)d minute"), _l("%(num)d minutes")))
    return ("" if _lang().startswith("zh") else " ").join(parts)


# The language a tip was filed in (models.Language), named in the page's language.
LANGUAGE_WORDS = {"zh": lazy_gettext("Chinese"), "ko": lazy_gettext("Korean"),
                  "en": lazy_gettext("English")}


def language_text(language: object) -> str:
    if language is None or language == "":
        return gettext("Not recorded")
    return str(LANGUAGE_WORDS.get(str(language), language))




OBJECT_WORDS = {
    "tip": lazy_gettext("tip"), "attachment": lazy_gettext("attachment"),
    "case": lazy_gettext("case"), "referral": lazy_gettext("referral"),
    "suggestion": lazy_gettext("suggestion (三书一函)"), "user": lazy_gettext("account"),
    "unit": lazy_gettext("unit"), "category": lazy_gettext("category"),
    "offence": lazy_gettext("offence"),
}


def object_text(object_type: object) -> str:
    """What an audit entry is about (tip, case …), in words."""
    return str(OBJECT_WORDS.get(str(object_type), ""))

VERIFICATION_WORDS = {
    "missing_entry": lazy_gettext("Entry %(seq)s is missing (the next stored entry is "
                                  "%(found)s)."),
    "altered_entry": lazy_gettext("Entry %(seq)s was altered: its content no longer matches its "
                                  "leaf hash."),
    "broken_chain": lazy_gettext("Entry %(seq)s does not follow entry %(previous)s."),
    "bad_checkpoint": lazy_gettext("The signed checkpoint of %(size)s entries is not signed by "
                                   "the log's key, or cannot be read."),
    "checkpoint_beyond_log": lazy_gettext("The signed checkpoint of %(size)s entries covers "
                                          "entries that are missing."),
    "differs_from_checkpoint": lazy_gettext("The log differs from the signed checkpoint of "
                                            "%(size)s entries."),
}


def verification_text(problem: str, params: dict[str, Any] | None = None) -> str:
    """Why the log does not verify (auditlog/database.py PROBLEMS), in the page's language."""
    words = VERIFICATION_WORDS.get(problem)
    if words is None:
        return gettext("The log does not verify.")
    try:
        return str(words) % dict(params or {})
    except (KeyError, TypeError, ValueError):
        return gettext("The log does not verify.")

# Why an officer asks for a real-name reporter's identity (models.IdentityPurpose), and where
# a request stands (models.RequestState); the reporter reads the purpose as REPORTER_PURPOSE.
IDENTITY_PURPOSE_WORDS = {
    "contact": lazy_gettext("to contact the reporter"),
    "reward": lazy_gettext("to pay a reward"),
    "witness": lazy_gettext("to take a witness statement"),
    "package": lazy_gettext("to send it with the case to the receiving body"),
}
REPORTER_PURPOSE_WORDS = {
    "contact": lazy_gettext("contact you"),
    "reward": lazy_gettext("pay you a reward"),
    "witness": lazy_gettext("take your statement as a witness"),
}
IDENTITY_STATE_WORDS = {
    "pending": lazy_gettext("waiting for a custodian's decision"),
    "granted": lazy_gettext("granted"),
    "refused": lazy_gettext("refused"),
    "revoked": lazy_gettext("revoked"),
    "withdrawn": lazy_gettext("withdrawn"),
}


def identity_purpose_text(purpose: object) -> str:
    return str(IDENTITY_PURPOSE_WORDS.get(str(purpose), gettext("another purpose")))


def reporter_purpose_text(purpose: object) -> str:
    return str(REPORTER_PURPOSE_WORDS.get(str(purpose), REPORTER_PURPOSE_WORDS["contact"]))


def identity_state_text(state: object) -> str:
    return str(IDENTITY_STATE_WORDS.get(str(state), state))


TEMPLATE_WORDS = {
    "language_text": language_text,
    "unit_name": unit_name, "channel_text": channel_text, "role_text": role_text,
    "priority_text": priority_text, "step_text": step_text, "event_text": event_text,
    "duration_text": duration_text, "state_text": state_text, "action_text": action_text,
    "document_text": document_text, "case_status_text": case_status_text,
    "user_name": user_name, "verification_text": verification_text, "object_text": object_text,
    "identity_purpose_text": identity_purpose_text,
    "reporter_purpose_text": reporter_purpose_text, "identity_state_text": identity_state_text,
}


# ---------------------------------------------------------------------------------------------
# Cases and referrals: why a step was refused, and what each row of referral/workflow.py says.
# The staff and liaison pages and the API say the same.

REFERRAL_REFUSALS = {
    "unknown_action": _l("There is no such step."),
    "not_from_this_state": _l("This step is not possible in the referral's current state."),
    "not_your_step": _l("This step is not yours to take."),
    "documents_missing": _l("This step needs a document that is not attached yet."),
    "reason_required": _l("Please give a reason."),
    "not_overdue": _l("The period for this decision has not ended yet."),
}
CASE_REFUSALS = {
    "no_tips": _l("Choose at least one tip."),
    "unknown_tip": _l("There is no such tip among the ones you may see."),
    "tip_not_accepted": _l("Only accepted tips can form a case."),
    "tip_in_a_case": _l("One of these tips already belongs to a case."),
    "team_too_small": _l("A case team (专案组) needs at least two officers."),
    "not_a_member": _l("That officer does not belong to the tip's unit."),
    "unknown_offence": _l("Please choose a suspected offence."),
    "contact_phone_required": _l("The 移送书 needs a contact phone number."),
    "contact_phone_too_long": _l("The contact phone is too long: at most 40 characters."),
    "measures_required": _l("Please describe the rectification measures taken."),
    "bad_date": _l("Please enter the dates as year-month-day, for example 2026-08-31."),
    "issuer_required": _l("Please name the body that issued it."),
    "no_files": _l("Choose at least one file to add."),
    "problems_required": _l("Please write down the problems it names."),
    # What the 移送书 cannot be written without (referral/letter.py LetterIncomplete).
    "letter_materials": _l("The 移送书 lists the materials sent with it, and none is attached "
                           "yet: add the documents (at least the investigation report)."),
    "letter_facts": _l("The 移送书 needs the summary of the facts, and the case has none: the "
                       "case's summary of the facts must be filled in first."),
    "letter_officer_names": _l("The 移送书 names the case team: it needs at least two "
                               "officers."),
    "letter_contact_phone": _l("The 移送书 needs a contact phone number."),
    "letter_offence": _l("The 移送书 needs the suspected offence of the case."),
    "letter_legal_basis": _l("The 移送书 needs the legal basis of the suspected offence."),
    "letter_case_title": _l("The 移送书 needs the case's title."),
    # Blacking out before hand-over (portal/cases/redaction.py).
    "redaction_closed": _l("The package has been handed over: what it carries can no longer "
                           "be changed."),
    "redaction_unreadable": _l("An image with areas blacked out cannot be read any more: take "
                               "its blacking out back, or leave the image out of the package."),
    "redaction_not_team": _l("Only the case team can black out parts of what the package "
                             "carries."),
}
# Why a blacking out was refused (portal/redaction.RedactionRefused codes).
REDACTION_REFUSALS = {
    "no_phrases": _l("Write at least one word or phrase to black out, one a line."),
    "too_many_phrases": _l("At most %(num)d phrases at a time, each at most %(chars)d "
                           "characters."),
    "phrase_not_found": _l("“%(phrase)s” does not occur in the statement: check how it is "
                           "written there."),
    "phrases_already_out": _l("Every phrase you typed is blacked out already: the list below "
                              "shows them."),
    "box_not_numbers": _l("Give the area as four numbers: left, top, width and height, in "
                          "percent of the image."),
    "box_empty": _l("The area needs a width and a height above 0."),
    "box_outside": _l("The area must lie within the image: left plus width, and top plus "
                      "height, at most 100."),
    "too_many_boxes": _l("At most %(num)d areas can be blacked out in one image."),
    "image_unreadable": _l("This image cannot be read, so no area of it can be blacked out: "
                           "leave it out of the package."),
}
# What each row of referral/workflow.py says, beside its citation (kept as data there, in the
# regulation's own words: 17号 第9条).
BASIS_NOTES = {
    "head_decides_3_days": _l("The case team reports; the head decides within 3 days."),
    "hand_over_24_hours": _l("Hand over within 24 hours of approval."),
    "refusal_with_reasons": _l("A refusal is recorded with its reasons."),
    "letter_and_materials": _l("The 移送书 and the materials go to the receiving body, with a "
                               "copy to the procuratorate."),
    "decide_filing_3_days": _l("The receiving body decides on filing within 3 days."),
    "material_24_hours_supplement_3_days": _l("Missing material is asked for within 24 hours "
                                              "and supplemented within 3 days."),
    "not_in_jurisdiction": _l("Not within its jurisdiction: forwarded to the competent body."),
    "filed_in_writing_exhibits_3_days": _l("Filing is notified in writing; exhibits are handed "
                                           "over within 3 days."),
    "reconsideration_3_working_days": _l("Reconsideration may be asked within 3 working days."),
    "no_decision_in_period": _l("No decision within the period."),
    "police_decide_3_working_days": _l("The police decide the reconsideration within 3 working "
                                       "days."),
    "procuratorate_supervision": _l("The procuratorate is asked to supervise the filing "
                                    "(立案监督)."),
    "non_prosecution_notified_3_days": _l("A decision not to prosecute is notified within 3 "
                                          "days."),
    "returned_for_penalty": _l("Returned to the bureau for an administrative penalty."),
}
NO_KEY = _l("You have not been granted the key that opens this. Ask a colleague who holds the "
            "unit's key to grant it to you, or paste the unit's recovery key on the “Unit keys” "
            "page.")


def step_refusal_text(code: str) -> str:
    """Why a step of a case or a referral was refused (a tip's refusals: refusal_text)."""
    label = REFERRAL_REFUSALS.get(code) or CASE_REFUSALS.get(code)
    return str(label) if label else refusal_text(code)


def basis_text(transition: Transition) -> str:
    """The row's legal citation, and what it says in the page's language."""
    note = BASIS_NOTES.get(transition.note)
    if transition.basis and note:
        return f"{transition.basis}: {note}"
    return transition.basis or (str(note) if note else "")


# ---------------------------------------------------------------------------------------------
# The reporter's identity (portal/intake/identity.py IdentityRefused codes): the officers' and
# the liaisons' pages say the same.

IDENTITY_REFUSALS = {
    "not_allowed": _l("Your role does not allow you to ask for the reporter's identity."),
    "not_real_name": _l("This tip is anonymous: there is no identity to ask for."),
    "archived": _l("This tip's content and the reporter's identity were destroyed under the "
                   "retention rule: there is nothing to ask for."),
    "unknown_purpose": _l("Please choose one of the listed purposes."),
    "reason_required": _l("Please give a reason."),
    "reason_too_long": _l("The reason is too long: at most %(max)s characters."),
    "already_open": _l("You already have a request for this purpose that is waiting or granted."),
    "unknown_referral": _l("This tip is not part of that referral's case."),
    "handed_over": _l("The referral has already been handed over: its package has left the "
                      "bureau."),
    "not_custodian": _l("Only a custodian of the tip's unit or of 州本级 decides on this."),
    "key_not_held": _l("You do not hold the custodian key of this unit. Ask another custodian "
                       "to hand it to you on the “Unit keys” page."),
    "own_request": _l("You cannot decide on your own request: another custodian must."),
    "not_pending": _l("This request has already been decided or withdrawn."),
    "bad_days": _l("Please give a number of days from 1 to 30."),
    "requester_gone": _l("The officer who asked no longer has an active account."),
    "no_identity": _l("This tip's identity has not been sealed apart yet: an administrator must "
                      "first run the command that separates identities."),
    "not_sealed_to_unit": _l("The tip came from another unit and its identity is not yet sealed "
                             "to your unit's custodian key: a custodian of 州本级 must decide "
                             "(which seals it again for your unit)."),
    "not_granted": _l("This request is not granted (or no longer): the identity cannot be "
                      "read."),
    "expired": _l("This grant has run out: the identity can no longer be read. Ask again if "
                  "you still need it."),
    "personal_key_changed": _l("The identity was sealed to a personal key you no longer have "
                               "(after a password reset): ask again."),
    "not_set_up": _l("The keys this needs have not been generated yet."),
}


def identity_refusal_text(code: str) -> str:
    """Why an identity request, decision or read was refused (portal/intake/identity.py)."""
    words = IDENTITY_REFUSALS.get(code)
    if words is None:
        return gettext("This is not possible.")
    return str(words) % {"max": REASON_MAX} if "%(max)" in str(words) else str(words)
