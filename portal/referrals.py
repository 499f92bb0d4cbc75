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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Attachment,
    Case,
    CaseMember,
    CaseTip,
    Membership,
    Offence,
    Referral,
    ReferralEvent,
    Role,
    Suggestion,
    Tip,
    TipStatus,
    TipUpdate,
    Unit,
    UnitKind,
    User,
)
from models.base import utcnow
from portal import blobs, crypto
from portal.access import OFFICERS, Principal
from portal.audit import Actor as AuditActor
from portal.audit import record
from portal.intake import Limits, Upload, store_attachments
from portal.keys import unit_recipients
from referral import workflow
from referral.calendar import load_calendar
from referral.deadlines import deadline_for
from referral.workflow import Actor, Document, State

LOCAL = ZoneInfo("Asia/Shanghai")
DEFAULT_NUMBER_FORMAT = "延州环移〔{year}〕第{seq}号"
REFERRABLE_TIP_STATES = (TipStatus.ACCEPTED, TipStatus.VERIFYING, TipStatus.REFERRED)
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
# Who may see and act (on top of portal/access.py's unit rules)


def _is_head(principal: Principal, case: Case) -> bool:
    return any(Role.HEAD in principal.roles.get(u, set())
               for u in (case.unit_id, principal.bureau_id))


def _is_team(principal: Principal, case: Case) -> bool:
    return any(m.user_id == principal.user.id for m in case.members) or _is_head(principal, case)


def case_visible(principal: Principal, case: Case) -> bool:
    return case.unit_id in principal.units_for("tip.view")


def get_case(session: Session, principal: Principal, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None or not case_visible(principal, case):
        raise NotFound
    return case


def referral_visible(principal: Principal, referral: Referral) -> bool:
    if case_visible(principal, referral.case):
        return True
    return bool(principal.liaison_units() & {referral.receiving_unit_id, referral.copy_unit_id})


def get_referral(session: Session, principal: Principal, referral_id: int) -> Referral:
    referral = session.get(Referral, referral_id)
    if referral is None or not referral_visible(principal, referral):
        raise NotFound
    return referral


def actor_role(principal: Principal, referral: Referral) -> set[Actor]:
    """Which columns of the workflow table this person may act in, for this referral."""
    roles: set[Actor] = set()
    if case_visible(principal, referral.case) and _is_team(principal, referral.case):
        roles.add(Actor.OFFICER)
    if _is_head(principal, referral.case):
        roles.add(Actor.HEAD)
    if referral.receiving_unit_id in principal.liaison_units():
        roles.add(Actor.LIAISON)
    return roles


def available_actions(principal: Principal, referral: Referral) -> list[workflow.Transition]:
    """What the table allows this person now (the UI shows exactly these)."""
    roles = actor_role(principal, referral)
    return [t for t in workflow.allowed(referral.state) if t.actor in roles]


def identities_for_case(principal: Principal, case: Case) -> list[crypto.AgeIdentity]:
    found = [principal.identities[u] for u in (case.unit_id, principal.bureau_id)
             if u in principal.identities]
    if not found:
        from portal.access import KeyNotHeld

        raise KeyNotHeld
    return found


def identities_for_referral(principal: Principal, referral: Referral
                            ) -> list[crypto.AgeIdentity]:
    units = (referral.case.unit_id, principal.bureau_id, referral.receiving_unit_id,
             referral.copy_unit_id)
    found = [principal.identities[u] for u in units if u in principal.identities]
    if not found:
        from portal.access import KeyNotHeld

        raise KeyNotHeld
    return found


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
    tips = [session.get(Tip, tip_id) for tip_id in dict.fromkeys(tip_ids)]
    if any(t is None or not principal.may("tip.verify", t) for t in tips):
        raise CaseRefused("unknown_tip")
    if any(t.status not in (TipStatus.ACCEPTED, TipStatus.VERIFYING) for t in tips):
        raise CaseRefused("tip_not_accepted")
    if session.scalar(select(CaseTip.tip_id).where(CaseTip.tip_id.in_(list(tip_ids)))):
        raise CaseRefused("tip_in_a_case")
    unit = tips[0].unit
    members = set(member_ids)
    if len(members) < 2:
        raise CaseRefused("team_too_small")  # 专案组: at least two officers
    officers = set(session.scalars(select(Membership.user_id).where(
        Membership.user_id.in_(sorted(members)), Membership.role.in_(sorted(OFFICERS)),
        Membership.unit_id.in_([unit.id, principal.bureau_id]))))
    if officers != members:
        raise CaseRefused("not_a_member")
    offence = session.scalar(select(Offence).where(Offence.code == offence_code,
                                                   Offence.active.is_(True)))
    if offence is None:
        raise CaseRefused("unknown_offence")
    if not title.strip():
        raise CaseRefused("reason_required")
    local_year = now.astimezone(LOCAL).year
    seq, number = _next_number(session, local_year, number_format)
    content = json.dumps({"title": title.strip(), "summary": summary.strip()},
                         ensure_ascii=False).encode()
    case = Case(number=number, year=local_year, seq=seq, unit_id=unit.id,
                offence_id=offence.id, created_at=now, created_by_id=principal.user.id,
                content=crypto.seal(content, unit_recipients(session, unit)))
    session.add(case)
    session.flush()
    for tip in tips:
        session.add(CaseTip(case_id=case.id, tip_id=tip.id))
        tip.status = TipStatus.VERIFYING
    for user_id in sorted(members):
        session.add(CaseMember(case_id=case.id, user_id=user_id))
    record(session, AuditActor("staff", principal.user.id, Role.CASE_OFFICER), "case.formed",
           object_type="case", object_id=case.id, unit_code=unit.code, tips=len(tips),
           members=len(members), offence=offence.code)
    session.commit()
    return case


def add_documents(session: Session, principal: Principal, case_id: int, kind: str,
                  uploads: Sequence[Upload], *, limits: Limits) -> list[Attachment]:
    case = get_case(session, principal, case_id)
    if not _is_team(principal, case):
        raise CaseRefused("not_allowed")
    if kind not in {d.value for d in Document}:
        raise CaseRefused("bad_value")
    try:
        stored = store_attachments(session, None, uploads, unit_recipients(session, case.unit),
                                   keep_location=True, limits=limits, case_id=case.id, kind=kind)
        record(session, AuditActor("staff", principal.user.id, Role.CASE_OFFICER),
               "case.documents_added", object_type="case", object_id=case.id,
               unit_code=case.unit.code, kind=kind, files=len(stored))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return stored


def open_case(session: Session, principal: Principal, case_id: int) -> CaseView:
    case = get_case(session, principal, case_id)
    identities = identities_for_case(principal, case)
    content = json.loads(crypto.open_sealed(case.content, identities))
    documents = []
    for attachment in session.scalars(select(Attachment).where(
            Attachment.case_id == case.id, Attachment.referral_id.is_(None))
            .order_by(Attachment.id)):
        documents.append((attachment, json.loads(crypto.open_sealed(attachment.meta,
                                                                    identities))))
    record(session, AuditActor("staff", principal.user.id, None), "case.opened",
           object_type="case", object_id=case.id, unit_code=case.unit.code)
    session.commit()
    return CaseView(case, content["title"], content["summary"], documents)


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
    if not _is_team(principal, case):
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
    referral = Referral(case_id=case.id, receiving_unit_id=receiver.id,
                        copy_unit_id=copy.id if copy else None, state=State.DRAFT,
                        state_since=now, created_at=now, created_by_id=principal.user.id)
    session.add(referral)
    session.flush()
    record(session, AuditActor("staff", principal.user.id, Role.CASE_OFFICER),
           "referral.created", object_type="referral", object_id=referral.id,
           unit_code=case.unit.code, receiver=receiver.code, copy=copy.code if copy else None)
    session.commit()
    return referral


def _documents_present(session: Session, referral: Referral) -> set[str]:
    kinds = session.scalars(select(Attachment.kind).where(
        (Attachment.case_id == referral.case_id) | (Attachment.referral_id == referral.id)))
    return {k for k in kinds if k}


def act(session: Session, principal: Principal, referral_id: int, action: str, *,
        reason: str = "", period: str = "normal", uploads: Sequence[Upload] = (),
        document_kind: str | None = None, limits: Limits | None = None,
        letter_context: dict | None = None, now: datetime | None = None) -> Referral:
    """Take one step of the procedure. Refusals (workflow.TransitionRefused, CaseRefused,
    NotFound) change nothing."""
    now = now or utcnow()
    try:
        return _act(session, principal, referral_id, action, reason=reason, period=period,
                    uploads=uploads, document_kind=document_kind, limits=limits,
                    letter_context=letter_context or {}, now=now)
    except BaseException:
        session.rollback()
        raise


def _act(session: Session, principal: Principal, referral_id: int, action: str, *,
         reason: str, period: str, uploads: Sequence[Upload], document_kind: str | None,
         limits: Limits | None, letter_context: dict, now: datetime) -> Referral:
    referral = get_referral(session, principal, referral_id)
    roles = actor_role(principal, referral)
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
    if action == "hand_over" and not str(letter_context.get("contact_phone", "")).strip():
        raise CaseRefused("contact_phone_required")  # 17号 第6条: the 移送书 names a contact
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
            tip.status = TipStatus.REFERRED
            tip.due_step, tip.due_at, tip.due_certain = None, None, True
        session.add(TipUpdate(tip_id=tip.id, status=status, at=now))  # no names, no notes


def _build_package(session: Session, principal: Principal, referral: Referral,
                   letter_context: dict, now: datetime) -> None:
    """The referral package (17号 第6条): the 案件移送书 PDF, the case's documents and their
    list, as one reproducible ZIP sealed (age) to the receiving body (and the procuratorate's
    copy, and the bureau)."""
    from referral.letter import LetterData, Material, render_transfer_letter

    case = referral.case
    identities = identities_for_case(principal, case)
    content = json.loads(crypto.open_sealed(case.content, identities))
    documents = list(session.scalars(select(Attachment).where(
        Attachment.case_id == case.id, Attachment.referral_id.is_(None))
        .order_by(Attachment.id)))
    metas = [json.loads(crypto.open_sealed(d.meta, identities)) for d in documents]
    labels = letter_context.get("document_labels", {})
    counts: dict[str, int] = {}
    for document in documents:
        counts[document.kind or "other"] = counts.get(document.kind or "other", 0) + 1
    members = [session.get(User, m.user_id) for m in case.members]
    letter = LetterData(
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
        materials=tuple(Material(labels.get(kind, kind), n) for kind, n in counts.items()),
        issued_on=now.astimezone(LOCAL).date(),
        checkpoint=letter_context.get("checkpoint"),
    )
    pdf = render_transfer_letter(letter)
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
    stamp = now.astimezone(LOCAL).timetuple()[:6]
    listing = ["序号\t材料\t文件名\t字节"]
    with zipfile.ZipFile(_Unseekable(writer), "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _zip_add(archive, "01_案件移送书.pdf", io.BytesIO(pdf), stamp)
        for index, (document, meta) in enumerate(zip(documents, metas, strict=True), start=2):
            name = f"{index:02d}_{meta['filename']}"
            listing.append(f"{index}\t{labels.get(document.kind, document.kind)}\t{name}\t"
                           f"{document.size}")
            chunks = crypto.open_stream(blobs.reader(session, document.id), identities)
            _zip_add(archive, name, _ChunkStream(chunks), stamp)
        _zip_add(archive, "00_材料清单.txt", io.BytesIO("\n".join(listing).encode()), stamp)
    writer.close()
    sink.close()
    package.size = writer.plaintext_size
    package.meta = crypto.seal(json.dumps({
        "filename": f"{case.number}-移送材料.zip", "media_type": "application/zip",
        "letter_sha256": referral.letter_sha256}, ensure_ascii=False).encode(), recipients)
    referral.package_id = package.id


def _zip_add(archive: zipfile.ZipFile, name: str, source: io.RawIOBase | io.BytesIO,
             stamp: tuple[int, ...]) -> None:
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

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self._writer.write(bytes(data))


class _ChunkStream(io.RawIOBase):
    def __init__(self, chunks: object) -> None:
        super().__init__()
        self._chunks = iter(chunks)  # type: ignore[call-overload]
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
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
    from datetime import date

    from referral.letter import LetterData, Material, render_transfer_letter

    referral = get_referral(session, principal, referral_id)
    if referral.letter_data is None:
        raise NotFound
    data = json.loads(crypto.open_sealed(referral.letter_data,
                                         identities_for_referral(principal, referral)))
    data["materials"] = tuple(Material(**m) for m in data["materials"])
    data["officer_names"] = tuple(data["officer_names"])
    data["issued_on"] = date.fromisoformat(data["issued_on"])
    return render_transfer_letter(LetterData(**data))


def package_ciphertext(session: Session, principal: Principal, referral_id: int
                       ) -> tuple[Referral, io.BufferedReader]:
    """The package as stored (age), for offline decryption with the receiving body's key."""
    referral = get_referral(session, principal, referral_id)
    if referral.package_id is None:
        raise NotFound
    record(session, AuditActor("liaison" if principal.liaison_units() else "staff",
                               principal.user.id, None), "referral.package_downloaded",
           object_type="referral", object_id=referral.id, unit_code=referral.case.unit.code)
    session.commit()
    return referral, blobs.reader(session, referral.package_id)


def referral_reasons(session: Session, principal: Principal, referral: Referral
                     ) -> dict[int, str]:
    identities = identities_for_referral(principal, referral)
    return {e.id: crypto.open_sealed(e.reason, identities).decode()
            for e in referral.events if e.reason}


def due_lists(session: Session, principal: Principal, now: datetime | None = None
              ) -> tuple[list[Referral], list[Referral]]:
    """Overdue, and due within one working day, among the referrals this person may see."""
    from portal.triage import due_soon_limit

    now = now or utcnow()
    limit = due_soon_limit(now, load_calendar(session))
    visible = [r for r in session.scalars(select(Referral).where(Referral.due_at.is_not(None))
                                          .order_by(Referral.due_at))
               if referral_visible(principal, r)]
    return ([r for r in visible if r.due_at < now],
            [r for r in visible if now <= r.due_at < limit])


# ---------------------------------------------------------------------------------------------
# Inbound suggestions (三书一函)

SUGGESTION_KINDS = ("judicial", "procuratorial", "supervisory", "police")


def record_suggestion(session: Session, principal: Principal, *, kind: str, issuer: str,
                      unit_code: str, received_on: datetime, problems: str,
                      due_on: datetime | None = None) -> Suggestion:
    """Log a 司法建议书 / 检察建议书 / 监察建议书 / 公安提示函; a 检察建议 is answered in writing
    within two months (the due date follows the holiday rule)."""
    if kind not in SUGGESTION_KINDS or not issuer.strip() or not problems.strip():
        raise CaseRefused("bad_value")
    unit = session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None or unit.id not in principal.units_for("tip.view"):
        raise CaseRefused("bad_unit")
    due_at, certain = due_on, True
    if kind == "procuratorial" and due_on is None:
        deadline = deadline_for("suggestion.procuratorial_reply", received_on,
                                load_calendar(session))
        due_at, certain = deadline.due_at, deadline.certain
    suggestion = Suggestion(
        kind=kind, issuer=issuer.strip(), unit_id=unit.id,
        received_on=received_on.astimezone(LOCAL).date(), due_at=due_at, due_certain=certain,
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


def _suggestion(session: Session, principal: Principal, suggestion_id: int) -> Suggestion:
    suggestion = session.get(Suggestion, suggestion_id)
    if suggestion is None or suggestion.unit_id not in principal.units_for("tip.view"):
        raise NotFound
    return suggestion


def visible_suggestions(session: Session, principal: Principal) -> list[Suggestion]:
    units = principal.units_for("tip.view")
    return list(session.scalars(select(Suggestion).where(Suggestion.unit_id.in_(sorted(units)))
                                .order_by(Suggestion.answered_at.is_not(None),
                                          Suggestion.due_at)))


def open_suggestion(session: Session, principal: Principal, suggestion_id: int
                    ) -> tuple[Suggestion, dict, list[dict]]:
    """The suggestion's text, the measures taken and the evidence files' names (audited)."""
    suggestion = _suggestion(session, principal, suggestion_id)
    identities = [principal.identities[u] for u in (suggestion.unit_id, principal.bureau_id)
                  if u in principal.identities]
    if not identities:
        from portal.access import KeyNotHeld

        raise KeyNotHeld
    content = json.loads(crypto.open_sealed(suggestion.content, identities))
    evidence = [json.loads(crypto.open_sealed(a.meta, identities)) for a in session.scalars(
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
        raise CaseRefused("reason_required")
    try:
        return _answer(session, principal, suggestion, measures, now, evidence, limits)
    except BaseException:
        session.rollback()
        raise


def _answer(session: Session, principal: Principal, suggestion: Suggestion, measures: str,
            now: datetime, evidence: Sequence[Upload], limits: Limits | None) -> Suggestion:
    identities = [principal.identities[u] for u in (suggestion.unit_id, principal.bureau_id)
                  if u in principal.identities]
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
