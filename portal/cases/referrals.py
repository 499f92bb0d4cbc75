"""Cases and referrals: forming a case from accepted tips, its documents, and moving a referral
through referral/workflow.py. Every move is checked against that one table, changes nothing when
refused, records a ReferralEvent and an audit event in the same transaction, and starts the next
statutory deadline (referral/deadlines.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, NoReturn

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, joinedload

from auditlog.events import Actor as AuditActor
from auditlog.events import record
from config import Settings
from models import (
    Attachment,
    Case,
    CaseMember,
    CaseTip,
    Offence,
    Referral,
    ReferralEvent,
    ReferralTipFile,
    ReferralTipText,
    Role,
    Suggestion,
    Tip,
    TipUpdate,
    Unit,
    UnitKind,
    User,
)
from models.base import utcnow
from portal.intake import blobs
from portal.intake.filing import Limits, Upload, open_meta, store_attachments
from portal.security import access, crypto
from portal.security.access import Principal, officers_of
from portal.security.keys import KeyNotHeld, unit_recipients
from portal.transaction import transaction
from portal.triage import workflow as tip_workflow
from portal.triage.tip_actions import roles_where
from referral import workflow
from referral.calendar import PREFECTURE_ZONE, load_calendar
from referral.deadlines import deadline_for
from referral.filenames import safe_name, zip_entry
from referral.letter import LetterData, LetterIncomplete, Material, render_transfer_letter
from referral.workflow import Actor, Document, State

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

DEFAULT_NUMBER_FORMAT = Settings.CASE_NUMBER_FORMAT  # one source: config.py, where it is set
# What the reporter reads when their tip's case is handed over (by the receiving body's kind).
REPORTER_STATUS_ON_HANDOVER = {
    UnitKind.PUBLIC_SECURITY: "referred_police",
    UnitKind.PROCURATORATE: "referred_procuratorate",
    UnitKind.DISCIPLINE: "referred_discipline",
    UnitKind.ADMIN_DEPT: "referred_admin",
    UnitKind.COURT: "referred_court",
}
REPORTER_STATUS_ON = {"file": "case_filed", "prosecute": "case_prosecuted"}


class CaseRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class NotFound(Exception):
    """No such case or referral among the ones this person may see."""


# ---------------------------------------------------------------------------------------------
# Who may see and act: portal/security/access.py (the rules, and the lists' SQL conditions)


def get_case(session: Session, principal: Principal, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None or not access.may(principal, "case.view", case):
        raise NotFound
    return case


# A phone number, an extension and a name to ask for fit in this; the 移送书 prints it on one line.
CONTACT_PHONE_MAX = 40


def get_referral(session: Session, principal: Principal, referral_id: int) -> Referral:
    referral = session.get(Referral, referral_id)
    if referral is None or not access.may(principal, "referral.view", referral):
        raise NotFound
    return referral


def visible_cases(session: Session, principal: Principal) -> list[Case]:
    """The cases this person sees, newest first."""
    return list(session.scalars(select(Case).where(access.case_filter(principal))
                                .order_by(Case.id.desc())))


# A list page shows this many referrals; older ones are a link away (keyset on the id).
PAGE_SIZE = 50


@dataclass(frozen=True)
class ReferralPage:
    rows: list[Referral]  # newest first
    total: int  # in every page of the list
    older: int | None  # `before` for the next page; None: this is the last


def _page(session: Session, condition: ColumnElement[bool], before: int | None,
          size: int | None) -> ReferralPage:
    size = size or PAGE_SIZE
    query = select(Referral).where(condition)
    if before is not None:
        query = query.where(Referral.id < before)
    rows = list(session.scalars(query.options(
        joinedload(Referral.case), joinedload(Referral.receiving_unit))
        .order_by(Referral.id.desc()).limit(size + 1)))
    total = session.scalar(select(func.count()).select_from(Referral).where(condition)) or 0
    return ReferralPage(rows[:size], total, rows[size - 1].id if len(rows) > size else None)


def visible_referrals(session: Session, principal: Principal, before: int | None = None,
                      size: int | None = None) -> ReferralPage:
    """The referrals this person sees (their cases', and those handed over to their body),
    newest first, a page at a time: those older than `before`."""
    return _page(session, access.referral_filter(principal), before, size)


def addressed_to(session: Session, principal: Principal, before: int | None = None,
                 size: int | None = None) -> ReferralPage:
    """The referrals handed over to the bodies this person is a liaison of (or copied to them),
    newest first, a page at a time."""
    return _page(session, access.addressed_filter(principal), before, size)


def awaiting_approval(session: Session, principal: Principal, size: int = PAGE_SIZE
                      ) -> list[Referral]:
    """The referrals waiting for this person's approval, oldest request first (the table's
    HEAD column as SQL: access.approval_filter)."""
    return list(session.scalars(select(Referral).where(access.approval_filter(principal))
                                .options(joinedload(Referral.case),
                                         joinedload(Referral.receiving_unit))
                                .order_by(Referral.state_since, Referral.id).limit(size)))


def available_actions(principal: Principal, referral: Referral) -> list[workflow.Transition]:
    """What the table allows this person now (the UI shows exactly these)."""
    roles = access.workflow_roles(principal, referral)
    return [t for t in workflow.allowed(referral.state) if t.actor in roles]


def _staff(principal: Principal, unit_id: int) -> AuditActor:
    """The audit actor for a step of the bureau's people: the role they act in there."""
    return AuditActor("staff", principal.user.id, access.acting_role(principal, unit_id))


def _referral_recipients(session: Session, referral: Referral) -> list[str]:
    keys = unit_recipients(session, referral.case.unit)
    for unit in (referral.receiving_unit, referral.copy_unit):
        if unit is not None and unit.public_key:
            keys.append(unit.public_key)
    return keys


# ---------------------------------------------------------------------------------------------
# Cases


@dataclass(frozen=True)
class CaseView:
    case: Case
    title: str
    summary: str
    documents: list[tuple[Attachment, dict]]


def _next_number(session: Session, year: int, number_format: str) -> tuple[int, str]:
    seq = (session.scalar(select(func.max(Case.seq)).where(Case.year == year)) or 0) + 1
    return seq, number_format.format(year=year, seq=seq)


def form_case(session: Session, principal: Principal, *, tip_ids: Sequence[int],
              member_ids: Sequence[int], offence_code: str, title: str, summary: str,
              number_format: str = DEFAULT_NUMBER_FORMAT, now: datetime | None = None) -> Case:
    """A case from one or more accepted tips (duplicates merge into it), with a 专案组 of at
    least two officers of the unit."""
    now = now or utcnow()
    if not tip_ids:
        raise CaseRefused("no_tips")
    found = [session.get(Tip, tip_id) for tip_id in dict.fromkeys(tip_ids)]
    tips = [t for t in found if t is not None and principal.may("tip.verify", t)]
    if len(tips) != len(found):
        raise CaseRefused("unknown_tip")
    try:  # the tips' statuses by portal/triage/workflow.py
        steps = [tip_workflow.check(t.status, "form_case", roles_where(principal, t))
                 for t in tips]
    except tip_workflow.TipTransitionRefused as refused:
        raise CaseRefused("tip_not_accepted") from refused
    if session.scalar(select(CaseTip.tip_id).where(CaseTip.tip_id.in_(list(tip_ids)))):
        raise CaseRefused("tip_in_a_case")
    unit = tips[0].unit
    members = set(member_ids)
    if len(members) < 2:
        raise CaseRefused("team_too_small")  # 专案组: at least two officers
    officers = {user.id for user, _, _ in officers_of(session, {unit.id, principal.bureau_id})}
    if not members <= officers:
        raise CaseRefused("not_a_member")
    offence = session.scalar(select(Offence).where(Offence.code == offence_code,
                                                   Offence.active.is_(True)))
    if offence is None:
        raise CaseRefused("unknown_offence")
    if not title.strip():
        raise CaseRefused("reason_required")
    local_year = now.astimezone(PREFECTURE_ZONE).year
    seq, number = _next_number(session, local_year, number_format)
    content = json.dumps({"title": title.strip(), "summary": summary.strip()},
                         ensure_ascii=False).encode()
    case = Case(number=number, year=local_year, seq=seq, unit_id=unit.id,
                offence_id=offence.id, created_at=now, created_by_id=principal.user.id,
                content=crypto.seal(content, unit_recipients(session, unit)))
    session.add(case)
    session.flush()
    for tip, step in zip(tips, steps, strict=True):
        session.add(CaseTip(case_id=case.id, tip_id=tip.id))
        after = step.leads_to(tip.status)
        if tip.status != after:
            # The reporter's status is their latest progress entry (portal/intake/followup.py).
            session.add(TipUpdate(tip_id=tip.id, status=after, at=now))
        tip.status = after
    for user_id in sorted(members):
        session.add(CaseMember(case_id=case.id, user_id=user_id))
    record(session, _staff(principal, unit.id), "case.formed",
           object_type="case", object_id=case.id, unit_code=unit.code, tips=len(tips),
           members=len(members), offence=offence.code)
    session.commit()
    return case


@dataclass(frozen=True)
class TeamCandidate:
    """An officer who may sit on a 专案组, with where and as what."""

    user: User
    memberships: list[tuple[Unit, str]]  # (unit, role)


def team_candidates(session: Session, principal: Principal) -> list[TeamCandidate]:
    """The active officers of the units this person forms cases in (case officers first)."""
    found: dict[int, TeamCandidate] = {}
    for user, unit, role in officers_of(session, principal.units_for("tip.verify")):
        found.setdefault(user.id, TeamCandidate(user, [])).memberships.append((unit, role))
    return sorted(found.values(), key=lambda c: (
        not any(role == Role.CASE_OFFICER for _, role in c.memberships),
        c.user.display_name or c.user.username))


def tips_for_a_case(session: Session, principal: Principal) -> list[Tip]:
    """Accepted tips of this person's units that belong to no case yet (ids and metadata)."""
    in_a_case = select(CaseTip.tip_id)
    return list(session.scalars(select(Tip).where(
        access.tip_filter(principal, "tip.verify"),
        Tip.status.in_(tip_workflow.sources("form_case")),
        Tip.id.not_in(in_a_case)).order_by(Tip.id.desc()).limit(200)))


def add_documents(session: Session, principal: Principal, case_id: int, kind: str,
                  uploads: Sequence[Upload], *, limits: Limits) -> list[Attachment]:
    case = get_case(session, principal, case_id)
    if not access.may(principal, "case.edit", case):
        raise CaseRefused("not_allowed")
    if kind not in {d.value for d in Document}:
        raise CaseRefused("bad_value")
    if not uploads:
        raise CaseRefused("no_files")
    with transaction(session):
        stored = store_attachments(session, None, uploads, unit_recipients(session, case.unit),
                                   keep_location=True, limits=limits, case_id=case.id, kind=kind)
        record(session, _staff(principal, case.unit_id), "case.documents_added",
               object_type="case", object_id=case.id, unit_code=case.unit.code, kind=kind,
               files=len(stored))
    return stored


def open_case(session: Session, principal: Principal, case_id: int) -> CaseView:
    case = get_case(session, principal, case_id)
    identities = principal.identities_for(case)
    content = json.loads(crypto.open_sealed(case.content, identities))
    documents = []
    for attachment in session.scalars(select(Attachment).where(
            Attachment.case_id == case.id, Attachment.referral_id.is_(None))
            .order_by(Attachment.id)):
        documents.append((attachment, open_meta(attachment.meta, identities)))
    record(session, AuditActor("staff", principal.user.id, None), "case.opened",
           object_type="case", object_id=case.id, unit_code=case.unit.code)
    session.commit()
    return CaseView(case, content["title"], content["summary"], documents)


@dataclass(frozen=True)
class TipLinks:
    """Where a tip went: its case (if any) and that case's referrals. Numbers and states only,
    nothing sealed, so the tip page can show them to whoever may see the tip."""

    case: Case | None
    referrals: list[Referral]


def links_for_tip(session: Session, tip_id: int) -> TipLinks:
    case = session.scalar(select(Case).join(CaseTip, CaseTip.case_id == Case.id)
                          .where(CaseTip.tip_id == tip_id))
    return TipLinks(case, list(case.referrals) if case is not None else [])


# ---------------------------------------------------------------------------------------------
# Referrals


RECEIVER_FOR_KIND = {  # which receiving bodies a referral may go to
    "criminal": (UnitKind.PUBLIC_SECURITY,),
    "discipline": (UnitKind.DISCIPLINE,),
    "procuratorate": (UnitKind.PROCURATORATE,),
    "administrative": (UnitKind.ADMIN_DEPT,),
}


def create_referral(session: Session, principal: Principal, case_id: int, receiving_code: str,
                    copy_code: str | None = None, now: datetime | None = None) -> Referral:
    """A draft referral of the case to a receiving body (public security with a copy to the
    procuratorate, the discipline commission, the procuratorate, or a department: 转办)."""
    now = now or utcnow()
    case = get_case(session, principal, case_id)
    if not access.may(principal, "case.edit", case):
        raise CaseRefused("not_allowed")
    receiver = session.scalar(select(Unit).where(Unit.code == receiving_code))
    allowed_kinds = {k for kinds in RECEIVER_FOR_KIND.values() for k in kinds}
    if receiver is None or receiver.kind not in allowed_kinds or not receiver.public_key:
        raise CaseRefused("bad_unit")
    copy = None
    if copy_code:
        copy = session.scalar(select(Unit).where(Unit.code == copy_code))
        if copy is None or copy.kind != UnitKind.PROCURATORATE or not copy.public_key:
            raise CaseRefused("bad_unit")
    referral = Referral(case_id=case.id, unit_id=case.unit_id, receiving_unit_id=receiver.id,
                        copy_unit_id=copy.id if copy else None, state=State.DRAFT,
                        state_since=now, created_at=now, created_by_id=principal.user.id)
    session.add(referral)
    session.flush()
    record(session, _staff(principal, case.unit_id), "referral.created",
           object_type="referral", object_id=referral.id, unit_code=case.unit.code,
           receiver=receiver.code, copy=copy.code if copy else None)
    session.commit()
    return referral


def _documents_present(session: Session, referral: Referral) -> set[str]:
    kinds = session.scalars(select(Attachment.kind).where(
        (Attachment.case_id == referral.case_id) | (Attachment.referral_id == referral.id)))
    return {k for k in kinds if k}


def act(session: Session, principal: Principal, referral_id: int, action: str, *,
        reason: str = "", period: str = "normal", uploads: Sequence[Upload] = (),
        document_kind: str | None = None, limits: Limits | None = None,
        letter_context: dict | None = None, tip_files: Sequence[int] | None = None,
        tip_texts: Sequence[int] | None = None, now: datetime | None = None) -> Referral:
    """Take one step of the procedure. Refusals (workflow.TransitionRefused, CaseRefused,
    NotFound, KeyNotHeld) change nothing. `tip_files`, with "submit": which of the tips' own
    files go into the package; `tip_texts`: the tips whose statements go with it."""
    now = now or utcnow()
    with transaction(session):  # the step commits itself; a refusal rolls everything back
        return _act(session, principal, referral_id, action, reason=reason, period=period,
                    uploads=uploads, document_kind=document_kind, limits=limits,
                    letter_context=letter_context or {}, tip_files=tip_files,
                    tip_texts=tip_texts, now=now)


def _act(session: Session, principal: Principal, referral_id: int, action: str, *,
         reason: str, period: str, uploads: Sequence[Upload], document_kind: str | None,
         limits: Limits | None, letter_context: dict, tip_files: Sequence[int] | None,
         tip_texts: Sequence[int] | None, now: datetime) -> Referral:
    referral = get_referral(session, principal, referral_id)
    roles = access.workflow_roles(principal, referral)
    if not roles:
        raise workflow.TransitionRefused("not_your_step", referral.state, action)
    # The column of the table this person acts in: the one the transition names, if theirs.
    expected = next((t.actor for t in workflow.TRANSITIONS
                     if t.action == action and referral.state in t.sources), None)
    actor = expected if expected in roles else sorted(roles)[0]
    documents = _documents_present(session, referral)
    brought = document_kind if (uploads and document_kind) else None
    if brought:
        documents.add(brought)
    transition = workflow.check(referral.state, action, actor, documents, reason)
    if action == "mark_overdue" and (referral.due_at is None or referral.due_at >= now):
        raise workflow.TransitionRefused("not_overdue", referral.state, action)
    if action == "sign_receipt" and period not in workflow.FILING_PERIODS:
        raise CaseRefused("bad_value")
    phone = str(letter_context.get("contact_phone", "")).strip()
    if action == "hand_over" and not phone:
        raise CaseRefused("contact_phone_required")  # 17号 第6条: the 移送书 names a contact
    if len(phone) > CONTACT_PHONE_MAX:
        raise CaseRefused("contact_phone_too_long")
    if tip_files is not None and action == "submit":
        _choose_tip_files(session, referral, tip_files)
    if tip_texts is not None and action == "submit":
        _choose_tip_texts(session, referral, tip_texts)
    recipients = _referral_recipients(session, referral)
    if uploads:
        if limits is None or brought is None:
            raise CaseRefused("bad_value")
        store_attachments(session, None, uploads, recipients, keep_location=True, limits=limits,
                          case_id=referral.case_id, referral_id=referral.id, kind=brought)
    if action == "hand_over":
        _build_package(session, principal, referral, letter_context, now)
    # Close the step that was running, noting whether it was on time.
    on_time = None if referral.due_at is None else now <= referral.due_at
    event = ReferralEvent(
        referral_id=referral.id, action=action, from_state=referral.state,
        to_state=transition.target, actor_id=principal.user.id, actor_role=actor.value, at=now,
        due_step=referral.due_step, due_at=referral.due_at, on_time=on_time,
        reason=crypto.seal(reason.strip().encode(), recipients) if reason.strip() else None)
    session.add(event)
    step = transition.starts
    if action == "sign_receipt":
        step = workflow.FILING_PERIODS[period]
    if step:
        deadline = deadline_for(step, now, load_calendar(session))
        referral.due_step, referral.due_at = step, deadline.due_at
        referral.due_certain = deadline.certain
    else:
        referral.due_step, referral.due_at, referral.due_certain = None, None, True
    referral.state, referral.state_since = transition.target, now
    if action == "hand_over":
        referral.handed_over_at = now
        referral.case.status = "referred"
    _tell_reporters(session, referral, action, now)
    record(session, AuditActor("staff" if actor != Actor.LIAISON else "liaison",
                               principal.user.id, actor.value),
           f"referral.{action}", object_type="referral", object_id=referral.id,
           unit_code=referral.case.unit.code, to_state=transition.target.value,
           on_time=on_time, with_documents=bool(uploads),
           tip_files=len(tip_files) if tip_files is not None and action == "submit" else None,
           tip_texts=len(tip_texts) if tip_texts is not None and action == "submit" else None,
           # The log commits to the 移送书 it handed over (SHA-256 of the PDF).
           letter_sha256=referral.letter_sha256 if action == "hand_over" else None)
    session.commit()
    return referral


def _tell_reporters(session: Session, referral: Referral, action: str, now: datetime) -> None:
    """The reporter's follow-up page shows progress in plain words, naming no one."""
    status = None
    if action == "hand_over":
        status = REPORTER_STATUS_ON_HANDOVER.get(UnitKind(referral.receiving_unit.kind))
    else:
        status = REPORTER_STATUS_ON.get(action)
    if status is None:
        return
    for link in referral.case.tips:
        tip = link.tip
        if action == "hand_over":
            tip.status = tip_workflow.check(tip.status, "refer", None).leads_to(tip.status)
            tip.due_step, tip.due_at, tip.due_certain = None, None, True
        session.add(TipUpdate(tip_id=tip.id, status=status, at=now))  # no names, no notes


# ---------------------------------------------------------------------------------------------
# What goes with a referral: its materials (17号 第6条)

# The documents a 移送书 lists; receipts and decisions come back from the receiving body.
MATERIAL_KINDS = (
    Document.INVESTIGATION_REPORT, Document.INSPECTION_RECORD, Document.INTERVIEW_RECORD,
    Document.SAMPLING_RECORD, Document.EXHIBIT_LIST, Document.MEDIA,
    Document.MONITORING_REPORT, Document.EXPERT_OPINION, Document.PENALTY_DECISION,
    Document.OTHER,
)
TIP_EVIDENCE = "tip_evidence"  # a file the reporter sent with one of the case's tips
TIP_EVIDENCE_LETTER_LABEL = "举报人提供的证据材料"
TIP_STATEMENT = "tip_statement"  # a tip's statement (its content fields), as a text file
TIP_STATEMENT_LETTER_LABEL = "举报内容"
# What the material list says when a custodian granted a "package" identity request: the
# identity itself is not in the package; it goes to the receiving body sealed, apart.
IDENTITY_LETTER_LABEL = "举报人身份信息（经信息保密员批准，另行加密移交）"
# Extensions that name the same type (a JPEG called .jpeg is still a JPEG).
_SAME_TYPE = {"jpeg": "jpg", "tif": "tiff", "htm": "html", "3gpp": "3gp"}


@dataclass(frozen=True)
class MaterialView:
    """One file that goes (or may go) with a referral, as the pages list it. The name, type and
    kept metadata are content: None when the person holds no key that opens them."""

    id: int
    kind: str  # a MATERIAL_KINDS value, or TIP_EVIDENCE
    size: int
    tip_id: int | None
    filename: str | None = None
    media_type: str | None = None
    kept: tuple[str, ...] = ()  # identifying metadata the reporter chose to keep (gps, datetime)
    chosen: bool = False
    redacted: int = 0  # places blacked out in the copy that goes (an image)
    family: str | None = None  # image, video, pdf …: only an image can be redacted


@dataclass(frozen=True)
class StatementView:
    """A tip's statement: whether it goes with the package, and how many phrases are blacked
    out of it. Metadata only; its text is read on the redaction page."""

    tip_id: int
    chosen: bool
    redacted: int


@dataclass(frozen=True)
class IdentityNote:
    """A granted "package" identity request: the material list records it (with its date); the
    identity travels sealed, apart from the package."""

    tip_id: int
    granted_on: date


@dataclass(frozen=True)
class ReferralReview:
    """What a head reads before deciding: the case, its team and tips, and what will be sent."""

    title: str | None
    team: list[str]
    tip_ids: list[int]
    materials: list[MaterialView]  # the documents and the chosen tip files, in package order
    tip_files: list[MaterialView]  # every file of the case's tips, `chosen` or not
    key_held: bool
    statements: list[StatementView] = dataclasses.field(default_factory=list)  # every tip's
    identity: IdentityNote | None = None
    redactable: bool = False  # this person may black out parts now (before the package)


def _referral_documents(session: Session, referral: Referral) -> list[Attachment]:
    """The case's documents and those uploaded at any step of this referral (the report comes
    with "submit for approval"): all of it belongs to what is handed over."""
    return list(session.scalars(select(Attachment).where(
        Attachment.case_id == referral.case_id,
        Attachment.referral_id.is_(None) | (Attachment.referral_id == referral.id),
        Attachment.tip_id.is_(None),
        Attachment.kind.in_([k.value for k in MATERIAL_KINDS])).order_by(Attachment.id)))


def _case_tip_files(session: Session, case: Case) -> list[Attachment]:
    tip_ids = [link.tip_id for link in case.tips]
    if not tip_ids:
        return []
    # A tip archived under the retention rule (portal/operations/retention.py) has no files left to
    # send.
    archived = select(Tip.id).where(Tip.id.in_(tip_ids), Tip.archived_at.is_not(None))
    return list(session.scalars(select(Attachment).where(Attachment.tip_id.in_(tip_ids),
                                                         Attachment.tip_id.not_in(archived))
                                .order_by(Attachment.tip_id, Attachment.id)))


def _chosen_tip_files(session: Session, referral: Referral) -> list[Attachment]:
    return list(session.scalars(
        select(Attachment).join(ReferralTipFile, ReferralTipFile.attachment_id == Attachment.id)
        .where(ReferralTipFile.referral_id == referral.id).order_by(Attachment.tip_id,
                                                                    Attachment.id)))


def _chosen_tip_texts(session: Session, referral: Referral) -> list[int]:
    """The tips whose statements go with the package (of the case's tips, by id)."""
    tip_ids = {link.tip_id for link in referral.case.tips}
    return [t for t in session.scalars(select(ReferralTipText.tip_id).where(
        ReferralTipText.referral_id == referral.id).order_by(ReferralTipText.tip_id))
        if t in tip_ids]


def _meta(attachment: Attachment, identities: Sequence[str]) -> dict:
    return open_meta(attachment.meta, identities)


def _material_view(attachment: Attachment, identities: Sequence[str] | None,
                   chosen: bool = False, redacted: int = 0) -> MaterialView:
    kind = TIP_EVIDENCE if attachment.tip_id else (attachment.kind or Document.OTHER.value)
    try:
        meta = _meta(attachment, identities) if identities else None
    except crypto.CryptoError:  # sealed to keys other than the ones held (a transferred tip)
        meta = None
    if meta is None:
        return MaterialView(attachment.id, kind, attachment.size, attachment.tip_id,
                            chosen=chosen, redacted=redacted, family=attachment.family)
    return MaterialView(attachment.id, kind, attachment.size, attachment.tip_id,
                        meta.get("filename", ""), meta.get("media_type"),
                        tuple(meta.get("kept", ())), chosen, redacted, attachment.family)


def package_identity(session: Session, referral: Referral) -> IdentityNote | None:
    """The custodian's grant to send a reporter's identity with this referral, if any
    (portal/intake/identity.py package_identity, once identity requests exist)."""
    from portal.intake import identity

    find = getattr(identity, "package_identity", None)
    granted = find(session, referral.id) if find is not None else None
    if granted is None:
        return None
    when = granted.decided_at or granted.created_at
    return IdentityNote(granted.tip_id, when.astimezone(PREFECTURE_ZONE).date())


def review_referral(session: Session, principal: Principal, referral: Referral
                    ) -> ReferralReview:
    """The case behind a referral for the bureau's people: number, team, tips and materials.
    Without the unit's key the list keeps its kinds and sizes, and names nothing. Reading the
    names is a read of the case: audited."""
    case = referral.case
    team = [m.user.display_name or m.user.username for m in case.members]
    tip_ids = [link.tip_id for link in case.tips]
    try:
        identities: list[crypto.AgeIdentity] | None = principal.identities_for(case)
    except KeyNotHeld:
        identities = None
    from portal.cases.redaction import counts_for

    chosen = {a.id for a in _chosen_tip_files(session, referral)}
    redacted = counts_for(session, referral.id)
    documents = [_material_view(a, identities) for a in _referral_documents(session, referral)]
    tip_files = [_material_view(a, identities, a.id in chosen,
                                redacted.get((a.tip_id, a.id), 0) if a.family == "image" else 0)
                 for a in _case_tip_files(session, case)]
    texts = set(_chosen_tip_texts(session, referral))
    statements = [StatementView(t, t in texts, redacted.get((t, None), 0)) for t in tip_ids]
    title = None
    if identities:
        title = json.loads(crypto.open_sealed(case.content, identities))["title"]
        record(session, AuditActor("staff", principal.user.id, None), "case.opened",
               object_type="case", object_id=case.id, unit_code=case.unit.code)
        session.commit()
    redactable = (identities is not None and referral.package_id is None
                  and Actor.OFFICER in access.workflow_roles(principal, referral))
    return ReferralReview(title, team, tip_ids, documents + [f for f in tip_files if f.chosen],
                          tip_files, identities is not None, statements,
                          package_identity(session, referral), redactable)


def _choose_tip_files(session: Session, referral: Referral,
                      attachment_ids: Sequence[int]) -> None:
    """Which of the reporters' own files go into the package (chosen when submitting)."""
    allowed = {a.id for a in _case_tip_files(session, referral.case)}
    wanted = set(attachment_ids)
    if not wanted <= allowed:
        raise CaseRefused("bad_value")
    for link in session.scalars(select(ReferralTipFile).where(
            ReferralTipFile.referral_id == referral.id)):
        session.delete(link)
    session.flush()
    for attachment_id in sorted(wanted):
        session.add(ReferralTipFile(referral_id=referral.id, attachment_id=attachment_id))


def _choose_tip_texts(session: Session, referral: Referral, tip_ids: Sequence[int]) -> None:
    """Which tips' statements go into the package (chosen with the files, when submitting)."""
    wanted = set(tip_ids)
    # An archived tip's statement was destroyed under the retention rule: nothing to send.
    if not wanted <= {link.tip_id for link in referral.case.tips
                      if link.tip is None or link.tip.archived_at is None}:
        raise CaseRefused("bad_value")
    for link in session.scalars(select(ReferralTipText).where(
            ReferralTipText.referral_id == referral.id)):
        session.delete(link)
    session.flush()
    for tip_id in sorted(wanted):
        session.add(ReferralTipText(referral_id=referral.id, tip_id=tip_id))


def step_documents(session: Session, principal: Principal, referral: Referral
                   ) -> list[MaterialView]:
    """The files brought with the referral's steps, both ways: the report with "submit", a
    supplement (补正), the receiving body's receipt and decisions. Sealed to the bureau and the
    receiving body, so both sides list them by name (kind and size without a key)."""
    try:
        identities: list[crypto.AgeIdentity] | None = principal.identities_for(referral)
    except KeyNotHeld:
        identities = None
    return [_material_view(attachment, identities) for attachment in session.scalars(
        select(Attachment).where(Attachment.referral_id == referral.id,
                                 Attachment.kind != "package", Attachment.tip_id.is_(None))
        .order_by(Attachment.id))]


def open_document(session: Session, principal: Principal, attachment_id: int
                  ) -> tuple[str, str, Iterator[bytes]]:
    """A case's document, or one brought with a referral's step, as uploaded: name, true
    type, plaintext chunks. A step's document is open to both sides of the referral (the
    receiving body's liaison too); a case's only to the bureau. The download is audited; the
    package and the tips' files have their own doors."""
    attachment = session.get(Attachment, attachment_id)
    if (attachment is None or attachment.case_id is None or attachment.tip_id is not None
            or attachment.kind == "package"):
        raise NotFound
    if attachment.referral_id is not None:
        referral = get_referral(session, principal, attachment.referral_id)
        case = referral.case
        identities = principal.identities_for(referral)
    else:
        case = get_case(session, principal, attachment.case_id)
        identities = principal.identities_for(case)
    meta = _meta(attachment, identities)
    chunks = crypto.open_stream(blobs.reader(session, attachment.id), identities)
    first = next(chunks, b"")  # a key that does not open it fails here, before any byte is sent
    record(session, _package_actor(principal), "case.document_downloaded",
           object_type="attachment", object_id=attachment.id, unit_code=case.unit.code)
    session.commit()
    return meta["filename"], meta["media_type"], _prepend(first, chunks)  # cleaned by open_meta


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def package_name(filename: str, extension: str | None) -> str:
    """A file's name inside the package: the name it was sent with, made safe (filenames.
    safe_name: no folders, no control or invisible characters, not too long), with its true
    type's extension added when the name does not already say it."""
    base = safe_name(filename)
    if extension:
        suffix = PurePosixPath(base).suffix.lower().lstrip(".")
        if _SAME_TYPE.get(suffix, suffix) != _SAME_TYPE.get(extension, extension):
            base = safe_name(f"{base}.{extension}")
    return base


# ---------------------------------------------------------------------------------------------
# The 案件移送书 and the package


@dataclass(frozen=True)
class PackageItem:
    """One file that goes into the package, in package order."""

    kind: str  # a MATERIAL_KINDS value, TIP_EVIDENCE or TIP_STATEMENT
    tip_id: int | None
    attachment: Attachment | None  # None: the tip's statement
    redacted: int = 0  # places blacked out (phrases of a statement, boxes of an image)


def _package_items(session: Session, referral: Referral) -> list[PackageItem]:
    """The documents, then tip by tip its statement (if chosen) and its chosen files."""
    from portal.cases.redaction import counts_for

    counts = counts_for(session, referral.id)
    items = [PackageItem(a.kind or Document.OTHER.value, None, a)
             for a in _referral_documents(session, referral)]
    files = _chosen_tip_files(session, referral)
    texts = _chosen_tip_texts(session, referral)
    for tip_id in sorted(set(texts) | {a.tip_id for a in files if a.tip_id}):
        if tip_id in texts:
            items.append(PackageItem(TIP_STATEMENT, tip_id, None, counts.get((tip_id, None), 0)))
        items += [PackageItem(TIP_EVIDENCE, tip_id, a,
                              counts.get((tip_id, a.id), 0) if a.family == "image" else 0)
                  for a in files if a.tip_id == tip_id]
    return items


def _blacked_out(count: int) -> str:
    return f"已遮盖 {count} 处" if count else ""


def _letter_data(session: Session, principal: Principal, referral: Referral,
                 letter_context: dict, now: datetime) -> tuple[LetterData, list[PackageItem]]:
    """The letter's inputs from the case as it is now, and the files that go with it. The
    reporter's identity is never among them; a custodian's grant to send it is listed as a
    material of its own, handed over sealed and apart."""
    case = referral.case
    identities = principal.identities_for(case)
    content = json.loads(crypto.open_sealed(case.content, identities))
    items = _package_items(session, referral)
    labels = letter_context.get("document_labels", {})
    counts: dict[str, int] = {}
    blacked: dict[str, int] = {}
    for item in items:
        counts[item.kind] = counts.get(item.kind, 0) + 1
        blacked[item.kind] = blacked.get(item.kind, 0) + item.redacted
    materials = [Material(_letter_label(labels, kind), n, _blacked_out(blacked[kind]))
                 for kind, n in counts.items()]
    identity = package_identity(session, referral)
    if identity is not None:
        materials.append(Material(IDENTITY_LETTER_LABEL, 1,
                                  f"{identity.granted_on.isoformat()} 批准"))
    members = [m.user for m in case.members]
    return LetterData(
        case_number=case.number,
        agency=letter_context.get("agency", "延边朝鲜族自治州生态环境局"),
        receiving_body=referral.receiving_unit.name_zh,
        copy_to=referral.copy_unit.name_zh if referral.copy_unit else None,
        case_title=content["title"],
        offence=case.offence.name_zh if case.offence else "",
        legal_basis=case.offence.basis if case.offence else "",
        facts=content["summary"],
        officer_names=tuple(m.display_name or m.username for m in members),
        contact_phone=letter_context.get("contact_phone", ""),
        materials=tuple(materials),
        issued_on=now.astimezone(PREFECTURE_ZONE).date(),
        checkpoint=letter_context.get("checkpoint"),
    ), items


def _letter_label(labels: dict, kind: str) -> str:
    if kind == TIP_STATEMENT:
        return TIP_STATEMENT_LETTER_LABEL
    return TIP_EVIDENCE_LETTER_LABEL if kind == TIP_EVIDENCE else str(labels.get(kind, kind))


def preview_letter(session: Session, principal: Principal, referral_id: int,
                   letter_context: dict, now: datetime | None = None) -> bytes:
    """The 移送书 as it would be rendered now, marked 样稿: what a head reads before deciding.
    Only the bureau's people (team or head) preview it; the reading is audited."""
    now = now or utcnow()
    referral = get_referral(session, principal, referral_id)
    if not access.may(principal, "referral.review", referral):
        raise NotFound
    data, items = _letter_data(session, principal, referral, letter_context, now)
    pdf = render_transfer_letter(data, draft=True)
    record(session, AuditActor("staff", principal.user.id, None), "referral.letter_previewed",
           object_type="referral", object_id=referral.id, unit_code=referral.case.unit.code,
           files=len(items))
    session.commit()
    return pdf


@dataclass(frozen=True)
class _Entry:
    """What one package item writes: its file name, type, size, bytes, and its source note."""

    name: str
    media_type: str
    size: int
    source: io.RawIOBase | io.BytesIO
    note: str


def _item_entry(session: Session, principal: Principal, referral: Referral, item: PackageItem,
                folder: str, identities: Sequence[crypto.AgeIdentity],
                taken: set[str]) -> _Entry:
    """One item as it goes into the package: a file as stored, or the copy rendered from the
    original and its redactions (a statement as text, a redacted image as PNG), the same bytes
    each time."""
    from portal.cases import redaction

    source = f"举报 #{item.tip_id}" if item.tip_id else ""
    if item.redacted:
        source += f"；{_blacked_out(item.redacted)}"
    specs = [redaction.open_spec(row, identities) for row in redaction.rows_for(
        session, referral.id, item.tip_id, item.attachment.id if item.attachment else None)
        ] if item.redacted else []
    if item.attachment is None:  # the tip's statement: its content fields, never its identity
        tip = session.get_one(Tip, item.tip_id)
        content = json.loads(crypto.open_sealed(tip.content, principal.identities_for(tip)))
        data = redaction.statement_text(tip.id, content, redaction.phrases_of(specs)).encode()
        name = zip_entry(folder, f"举报内容_#{item.tip_id}.txt", taken=taken)
        return _Entry(name, "text/plain", len(data), io.BytesIO(data), source)
    attachment = item.attachment
    meta = _meta(attachment, identities)
    chunks = crypto.open_stream(blobs.reader(session, attachment.id), identities)
    if item.redacted:
        try:
            data = redaction.burn_boxes(b"".join(chunks), redaction.boxes_of(specs))
        except redaction.RedactionRefused as refused:
            raise CaseRefused("redaction_unreadable") from refused
        stem = PurePosixPath(safe_name(meta["filename"])).stem
        name = zip_entry(folder, package_name(f"{stem}.png", "png"), taken=taken)
        return _Entry(name, "image/png", len(data), io.BytesIO(data), source)
    if attachment.tip_id and meta.get("kept"):
        source += "（按举报人选择保留拍摄位置和时间）"
    name = zip_entry(folder, package_name(meta["filename"], meta.get("extension")), taken=taken)
    return _Entry(name, meta.get("media_type", ""), attachment.size or 0, _ChunkStream(chunks),
                  source)


def _build_package(session: Session, principal: Principal, referral: Referral,
                   letter_context: dict, now: datetime) -> None:
    """The referral package (17号 第6条): the 案件移送书 PDF, the case's documents, the files
    uploaded at the referral's steps and the chosen statements and files of its tips, with their
    list, as one reproducible ZIP sealed (age) to the receiving body (and the procuratorate's
    copy, and the bureau). Every file goes in as stored, under the name it was sent with, in a
    folder that numbers it and names its kind; what was blacked out goes as the redacted copy
    (portal/cases/redaction.py). No identity of a reporter is in it: a custodian's grant to send one
    is a line of the list, the identity travelling sealed, apart."""
    letter, items = _letter_data(session, principal, referral, letter_context, now)
    try:
        pdf = render_transfer_letter(letter)
    except LetterIncomplete as missing:
        raise CaseRefused(f"letter_{missing.field}") from missing
    case = referral.case
    identities = principal.identities_for(case)
    labels = letter_context.get("document_labels", {})
    referral.letter_sha256 = hashlib.sha256(pdf).hexdigest()
    recipients = _referral_recipients(session, referral)
    referral.letter_data = crypto.seal(json.dumps(
        {**dataclasses.asdict(letter), "issued_on": letter.issued_on.isoformat()},
        ensure_ascii=False).encode(), recipients)
    package = Attachment(case_id=case.id, referral_id=referral.id, family="package",
                         kind="package", meta=b"", created_at=now)
    session.add(package)
    session.flush()
    sink = blobs.ChunkSink(session, package.id)
    writer = crypto.AgeWriter(sink, recipients)
    local = now.astimezone(PREFECTURE_ZONE)
    stamp = (local.year, local.month, local.day, local.hour, local.minute, local.second)
    listing = ["序号\t材料\t文件\t类型\t字节\t来源"]
    taken: set[str] = set()  # every entry's name goes through zip_entry: safe, and unique
    letter_name = zip_entry("01_案件移送书.pdf", taken=taken)
    listing_name = zip_entry("00_材料清单.txt", taken=taken)
    with zipfile.ZipFile(_Unseekable(writer), "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _zip_add(archive, letter_name, io.BytesIO(pdf), stamp)
        listing.append(f"1\t案件移送书\t{letter_name}\tapplication/pdf\t{len(pdf)}\t")
        for index, item in enumerate(items, start=2):
            label = _letter_label(labels, item.kind)
            entry = _item_entry(session, principal, referral, item,
                                f"{index:02d}_{label.replace('/', '、')}", identities, taken)
            listing.append(f"{index}\t{label}\t{entry.name}\t{entry.media_type}\t"
                           f"{entry.size}\t{entry.note}")
            _zip_add(archive, entry.name, entry.source, stamp)
        identity = package_identity(session, referral)
        if identity is not None:
            listing.append(f"{len(items) + 2}\t{IDENTITY_LETTER_LABEL}\t\t\t\t"
                           f"举报 #{identity.tip_id}；{identity.granted_on.isoformat()} 批准")
        _zip_add(archive, listing_name, io.BytesIO("\n".join(listing).encode()), stamp)
    writer.close()
    sink.close()
    package.size = writer.plaintext_size
    package.meta = crypto.seal(json.dumps({
        "filename": f"{case.number}-移送材料.zip", "media_type": "application/zip",
        "letter_sha256": referral.letter_sha256}, ensure_ascii=False).encode(), recipients)
    referral.package_id = package.id


def _zip_add(archive: zipfile.ZipFile, name: str, source: io.RawIOBase | io.BytesIO,
             stamp: tuple[int, int, int, int, int, int]) -> None:
    info = zipfile.ZipInfo(name, date_time=stamp)  # fixed time: the same case, the same bytes
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w") as target:
        while block := source.read(1024 * 1024):
            target.write(block)


class _Unseekable(io.RawIOBase):
    """zipfile writes to a stream it cannot seek (it then uses data descriptors)."""

    def __init__(self, writer: crypto.AgeWriter) -> None:
        super().__init__()
        self._writer = writer

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer) -> int:
        return self._writer.write(bytes(data))


class _ChunkStream(io.RawIOBase):
    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        target = memoryview(buffer).cast("B")
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def render_letter_again(session: Session, principal: Principal, referral_id: int) -> bytes:
    """The 移送书 rendered again from the inputs kept at handover: the same bytes."""
    referral = get_referral(session, principal, referral_id)
    if referral.letter_data is None:
        raise NotFound
    data = json.loads(crypto.open_sealed(referral.letter_data,
                                         principal.identities_for(referral)))
    data["materials"] = tuple(Material(**m) for m in data["materials"])
    data["officer_names"] = tuple(data["officer_names"])
    data["issued_on"] = date.fromisoformat(data["issued_on"])
    return render_transfer_letter(LetterData(**data))


def _package_actor(principal: Principal) -> AuditActor:
    return AuditActor("liaison" if principal.liaison_units() else "staff", principal.user.id,
                      None)


def _visible_package(session: Session, principal: Principal, referral_id: int
                     ) -> tuple[Referral, int]:
    """The referral and its package's id; NotFound while it has no package."""
    referral = get_referral(session, principal, referral_id)
    if referral.package_id is None:
        raise NotFound
    return referral, referral.package_id


def _refuse_package(session: Session, principal: Principal, referral: Referral,
                    reason: str) -> NoReturn:
    """Log that someone who may see the referral was refused its package (a refusal is not a
    download), and raise KeyNotHeld: the page and the API say a holder must grant the key."""
    session.rollback()
    record(session, _package_actor(principal), "referral.package_refused",
           object_type="referral", object_id=referral.id, unit_code=referral.case.unit.code,
           reason=reason)
    session.commit()
    raise KeyNotHeld


def package_ciphertext(session: Session, principal: Principal, referral_id: int
                       ) -> tuple[Referral, io.BufferedReader]:
    """The package as stored (age), for offline decryption with the receiving body's key.
    Only for someone who holds a key of the referral, as the decrypted package: the sealed
    file is no way around a grant."""
    referral, package_id = _visible_package(session, principal, referral_id)
    try:
        principal.identities_for(referral)
    except KeyNotHeld:
        _refuse_package(session, principal, referral, "key_not_held")
    record(session, _package_actor(principal), "referral.package_downloaded",
           object_type="referral", object_id=referral.id, unit_code=referral.case.unit.code,
           sealed=True)
    session.commit()
    return referral, blobs.reader(session, package_id)


def open_package(session: Session, principal: Principal, referral_id: int
                 ) -> tuple[Referral, Iterator[bytes]]:
    """The package decrypted (the ZIP). Someone who may see the referral but holds no key that
    opens it is refused, and the log says so: a refusal is not a download."""
    referral, package_id = _visible_package(session, principal, referral_id)
    try:
        chunks = crypto.open_stream(blobs.reader(session, package_id),
                                    principal.identities_for(referral))
        first = next(chunks, b"")  # the header opens here, or not at all
    except (KeyNotHeld, crypto.CryptoError) as refused:
        _refuse_package(session, principal, referral, "key_not_held" if isinstance(
            refused, KeyNotHeld) else "key_does_not_open")
    record(session, _package_actor(principal), "referral.package_downloaded",
           object_type="referral", object_id=referral.id, unit_code=referral.case.unit.code,
           sealed=False)
    session.commit()
    return referral, _prepend(first, chunks)


def referral_reasons(session: Session, principal: Principal, referral: Referral
                     ) -> dict[int, str]:
    identities = principal.identities_for(referral)
    return {e.id: crypto.open_sealed(e.reason, identities).decode()
            for e in referral.events if e.reason}


@dataclass(frozen=True)
class DueLists:
    overdue: list[Referral]  # the first `size`, most overdue first
    soon: list[Referral]  # due within one working day, soonest first
    overdue_total: int
    soon_total: int


def due_lists(session: Session, principal: Principal, now: datetime | None = None,
              size: int = PAGE_SIZE) -> DueLists:
    """Overdue, and due within one working day, among the referrals this person may see."""
    from portal.triage.queue import due_soon_limit

    now = now or utcnow()
    limit = due_soon_limit(now, load_calendar(session))
    visible = access.referral_filter(principal)
    found = []
    for window in (Referral.due_at < now, (Referral.due_at >= now) & (Referral.due_at < limit)):
        condition = visible & window
        found.append((list(session.scalars(
            select(Referral).where(condition)
            .options(joinedload(Referral.case), joinedload(Referral.receiving_unit))
            .order_by(Referral.due_at, Referral.id).limit(size))),
            session.scalar(select(func.count()).select_from(Referral).where(condition)) or 0))
    (overdue, overdue_total), (soon, soon_total) = found
    return DueLists(overdue, soon, overdue_total, soon_total)


# ---------------------------------------------------------------------------------------------
# Inbound suggestions (三书一函)

SUGGESTION_KINDS = ("judicial", "procuratorial", "supervisory", "police")


def record_suggestion(session: Session, principal: Principal, *, kind: str, issuer: str,
                      unit_code: str, received_on: datetime, problems: str,
                      due_on: datetime | None = None) -> Suggestion:
    """Log a 司法建议书 / 检察建议书 / 监察建议书 / 公安提示函; a 检察建议 is answered in writing
    within two months (the due date follows the holiday rule)."""
    if kind not in SUGGESTION_KINDS:
        raise CaseRefused("bad_value")
    if not issuer.strip():
        raise CaseRefused("issuer_required")
    if not problems.strip():
        raise CaseRefused("problems_required")
    unit = session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None or not access.may(principal, "suggestion.record", unit):
        raise CaseRefused("bad_unit")
    due_at, certain = due_on, True
    if kind == "procuratorial" and due_on is None:
        deadline = deadline_for("suggestion.procuratorial_reply", received_on,
                                load_calendar(session))
        due_at, certain = deadline.due_at, deadline.certain
    suggestion = Suggestion(
        kind=kind, issuer=issuer.strip(), unit_id=unit.id,
        received_on=received_on.astimezone(PREFECTURE_ZONE).date(), due_at=due_at,
        due_certain=certain,
        created_by_id=principal.user.id,
        content=crypto.seal(json.dumps({"problems": problems.strip(), "measures": ""},
                                       ensure_ascii=False).encode(),
                            unit_recipients(session, unit)))
    session.add(suggestion)
    session.flush()
    record(session, AuditActor("staff", principal.user.id, None), "suggestion.recorded",
           object_type="suggestion", object_id=suggestion.id, unit_code=unit.code, kind=kind)
    session.commit()
    return suggestion


def suggestion_row(session: Session, principal: Principal, suggestion_id: int) -> Suggestion:
    """The suggestion's metadata (kind, issuer, unit, dates), without opening its text."""
    return _suggestion(session, principal, suggestion_id)


def _suggestion(session: Session, principal: Principal, suggestion_id: int) -> Suggestion:
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None or not access.may(principal, "suggestion.view", suggestion):
        raise NotFound
    return suggestion


def visible_suggestions(session: Session, principal: Principal) -> list[Suggestion]:
    return list(session.scalars(select(Suggestion).where(access.suggestion_filter(principal))
                                .order_by(Suggestion.answered_at.is_not(None),
                                          Suggestion.due_at)))


def open_suggestion(session: Session, principal: Principal, suggestion_id: int
                    ) -> tuple[Suggestion, dict, list[dict]]:
    """The suggestion's text, the measures taken and the evidence files' names (audited)."""
    suggestion = _suggestion(session, principal, suggestion_id)
    identities = principal.identities_for(suggestion)
    content = json.loads(crypto.open_sealed(suggestion.content, identities))
    evidence = [open_meta(a.meta, identities) for a in session.scalars(
        select(Attachment).where(Attachment.suggestion_id == suggestion.id))]
    record(session, AuditActor("staff", principal.user.id, None), "suggestion.opened",
           object_type="suggestion", object_id=suggestion.id)
    session.commit()
    return suggestion, content, evidence


def answer_suggestion(session: Session, principal: Principal, suggestion_id: int,
                      measures: str, now: datetime | None = None,
                      evidence: Sequence[Upload] = (), limits: Limits | None = None
                      ) -> Suggestion:
    """Record the rectification measures and their evidence; the answer closes the due date."""
    now = now or utcnow()
    suggestion = _suggestion(session, principal, suggestion_id)
    if not measures.strip():
        raise CaseRefused("measures_required")
    with transaction(session):
        return _answer(session, principal, suggestion, measures, now, evidence, limits)


def _answer(session: Session, principal: Principal, suggestion: Suggestion, measures: str,
            now: datetime, evidence: Sequence[Upload], limits: Limits | None) -> Suggestion:
    identities = principal.identities_for(suggestion)
    content = json.loads(crypto.open_sealed(suggestion.content, identities))
    content["measures"] = measures.strip()
    suggestion.content = crypto.seal(json.dumps(content, ensure_ascii=False).encode(),
                                     unit_recipients(session, suggestion.unit))
    suggestion.answered_at = now
    if evidence:
        if limits is None:
            raise CaseRefused("bad_value")
        store_attachments(session, None, evidence, unit_recipients(session, suggestion.unit),
                          keep_location=True, limits=limits, suggestion_id=suggestion.id,
                          kind="evidence")
    record(session, AuditActor("staff", principal.user.id, None), "suggestion.answered",
           object_type="suggestion", object_id=suggestion.id,
           on_time=suggestion.due_at is None or now <= suggestion.due_at,
           evidence=len(evidence))
    session.commit()
    return suggestion
