"""Triage: opening a tip, and every action on it (the queue is portal/triage/queue.py).

Opening a tip or a file decrypts with the unit key the officer holds and leaves an audit event.
A key holder's queue or tip page also computes the blind indexes of tips filed since
(index_pending), the only moment a key is at hand to do it. Every action checks
portal/security/access.py (and one that depends on the tip's status, the table in
portal/triage/workflow.py), writes its audit event in the same transaction, and tells the
reporter what they should know.
"""

from __future__ import annotations

import base64
import io
import json
import mimetypes
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from PIL import Image
from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from auditlog.events import Actor, Scalar, record
from models import (
    Attachment,
    Case,
    CaseTip,
    Channel,
    Message,
    Referral,
    Tip,
    TipIdentity,
    TipUpdate,
    Unit,
    User,
)
from models.base import utcnow
from portal.intake import blobs, filing
from portal.intake.filing import FiledTip, Limits, TipDraft, current_category, file_tip
from portal.intake.photo_location import PhotoLocation, photo_location
from portal.intake.receipts import Argon2Cost, Once
from portal.security import crypto
from portal.security.access import (
    ACTIONS,
    Principal,
    acting_role,
    officers_of,
    tip_filter,
)
from portal.security.keys import KeyNotHeld, keys_opening, tip_recipients, unit_recipients
from portal.transaction import transaction
from portal.triage import workflow
from referral.calendar import HolidayCalendar, load_calendar
from referral.deadlines import Deadline, deadline_for, extend

MAX_REASON = 4000
PRIORITIES = (0, 1, 2, 3)  # normal … most urgent (portal/web/messages.py PRIORITY_WORDS)
# Channels an officer enters on a caller's behalf: not the portal's own pages nor the API.
ENTERED_CHANNELS = tuple(c for c in Channel if c not in (Channel.ONLINE, Channel.API))
PREVIEW_PIXELS = 1280  # longest side of a photo shown on the tip page
INDEX_BATCH = 50  # tips whose blind indexes one request computes, so pages stay fast


class NotFound(Exception):
    """No such tip, or not one this officer may see: the two are answered alike (404)."""


class Refused(Exception):
    """The action is not allowed now; `code` says why (shown translated)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def roles_where(principal: Principal, tip: Tip) -> set[str]:
    """The roles this person holds where the tip is: in its unit, and in 州本级 (which acts in
    every handling unit), as access.Principal.may counts them."""
    roles = set(principal.roles.get(tip.unit_id, set()))
    if tip.unit_id in principal.handling_ids and principal.bureau_id is not None:
        roles |= principal.roles.get(principal.bureau_id, set())
    return roles


def _move(principal: Principal, tip: Tip, action: str) -> workflow.Transition:
    """The tip's step from its status by the table (portal/triage/workflow.py), or Refused
    ("not_allowed", "wrong_status")."""
    try:
        return workflow.check(tip.status, action, roles_where(principal, tip))
    except workflow.TipTransitionRefused as refused:
        raise Refused(refused.code) from refused


def actor_of(principal: Principal, action: str, tip: Tip | None = None) -> Actor:
    return Actor("staff", principal.user.id,
                 acting_role(principal, tip.unit_id if tip else None))


def _entering_role(principal: Principal) -> str | None:
    """The role this person enters a caller's tip in: one that access.py allows "tip.hotline"
    (before the tip is filed it has no unit; head before intake officer, in the order the
    roles are picked for the other actions)."""
    held = set().union(*principal.roles.values()) & ACTIONS["tip.hotline"]
    return sorted(held)[0] if held else None


# ---------------------------------------------------------------------------------------------
# Opening a tip


@dataclass(frozen=True)
class AttachmentView:
    id: int
    filename: str
    media_type: str
    family: str
    size: int
    uncleaned: bool
    from_message: int | None
    # Where and when a photo was taken, when the reporter chose to keep them (else None).
    location: PhotoLocation | None = None
    # A photo drawn on the tip page itself (a data: URL), so that seeing it is part of the
    # audited opening of the tip and not a separate download.
    preview: str | None = None


@dataclass(frozen=True)
class MessageView:
    id: int
    author: str
    staff_user_id: int | None
    at: datetime
    body: str


@dataclass(frozen=True)
class UpdateView:
    status: str
    at: datetime
    note: str | None


@dataclass
class TipDetail:
    tip: Tip
    content: dict
    attachments: list[AttachmentView]
    messages: list[MessageView]
    updates: list[UpdateView]
    related: list[int] = field(default_factory=list)


def get_visible(session: Session, principal: Principal, tip_id: int,
                action: str = "tip.view") -> Tip:
    tip = session.get(Tip, tip_id)
    if tip is None or not principal.may("tip.view", tip):
        raise NotFound
    if action != "tip.view" and not principal.may(action, tip):
        raise Refused("not_allowed")
    return tip


def _open(ciphertext: bytes, identities: list[crypto.AgeIdentity]) -> str:
    return crypto.open_sealed(ciphertext, identities).decode()


def _preview(data: bytes) -> str | None:
    """A photo scaled down for the page, re-encoded so only pixels reach the browser."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (PREVIEW_PIXELS, PREVIEW_PIXELS))  # JPEG: decode at a lower scale
            image.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
            out = io.BytesIO()
            if image.mode in ("RGBA", "LA", "P"):
                image.convert("RGBA").save(out, "PNG")
                media_type = "image/png"
            else:
                image.convert("RGB").save(out, "JPEG", quality=85)
                media_type = "image/jpeg"
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None  # the file can still be downloaded; the page does not break over it
    return f"data:{media_type};base64,{base64.b64encode(out.getvalue()).decode()}"


def _attachment_view(session: Session, attachment: Attachment,
                     identities: list[crypto.AgeIdentity], previews: bool) -> AttachmentView:
    meta = filing.open_meta(attachment.meta, identities)
    location = preview = None
    kept = bool(meta.get("kept"))
    if attachment.family == "image" and (previews or kept):
        data = b"".join(crypto.open_stream(blobs.reader(session, attachment.id), identities))
        location = photo_location(data) if kept else None
        preview = _preview(data) if previews else None
    return AttachmentView(attachment.id, meta["filename"], meta["media_type"],
                          attachment.family, attachment.size, attachment.uncleaned,
                          attachment.message_id, location, preview)


def officer_content(content: object) -> dict:
    """A tip's opened content as officers may read it: never the reporter's identity. A tip
    filed before identities were sealed apart (and not yet migrated: `flask identities
    separate`) still holds it in its content; only the flags are kept from it."""
    fields = dict(content) if isinstance(content, dict) else {}
    legacy = fields.get("identity")
    if isinstance(legacy, dict) and not isinstance(fields.get("reporter"), dict):
        fields["reporter"] = {"contact_ok": bool(legacy.get("contact_ok")),
                              "reward": bool(legacy.get("reward"))}
    fields["identity"] = None
    fields.setdefault("reporter", None)
    return fields


def open_tip(session: Session, principal: Principal, tip_id: int, *,
             previews: bool = False) -> TipDetail:
    """Decrypt a tip for an officer who may see it and holds a key; audited as a read. With
    `previews`, photos come along scaled down for the page: seeing them is part of this read.
    The location and time a reporter chose to keep with a photo are read either way.
    An archived tip (its content destroyed under the retention rule) has nothing to open: its
    metadata and the reporter's progress entries come back, no key is asked for, no read is
    logged."""
    tip = get_visible(session, principal, tip_id)
    if tip.archived_at is not None:
        return TipDetail(tip=tip, content={}, attachments=[], messages=[],
                         updates=[UpdateView(u.status, u.at, None) for u in tip.updates])
    identities = principal.identities_for(tip)
    index_pending(session, principal, first=tip.id)
    content = officer_content(json.loads(_open(tip.content, identities)))
    attachments = [_attachment_view(session, a, identities, previews) for a in tip.attachments]
    detail = TipDetail(
        tip=tip, content=content, attachments=attachments,
        messages=[MessageView(m.id, m.author, m.staff_user_id, m.created_at,
                              _open(m.body, identities)) for m in tip.messages],
        updates=[UpdateView(u.status, u.at, _open(u.note, identities) if u.note else None)
                 for u in tip.updates],
        related=related_tips(session, principal, tip),
    )
    record(session, actor_of(principal, "tip.view", tip), "tip.opened", object_type="tip",
           object_id=tip.id, unit_code=tip.unit.code)
    session.commit()
    return detail


@dataclass(frozen=True)
class CaseLink:
    """The case a tip belongs to and that case's referrals (metadata: number, status, states)."""

    case: Case
    referrals: list[Referral]


def case_of(session: Session, tip_id: int) -> CaseLink | None:
    """A tip is in at most one case (case_tips.tip_id is unique)."""
    case = session.scalar(select(Case).join(CaseTip, CaseTip.case_id == Case.id)
                          .where(CaseTip.tip_id == tip_id))
    if case is None:
        return None
    return CaseLink(case, list(session.scalars(
        select(Referral).where(Referral.case_id == case.id).order_by(Referral.id))))


def blind_key(session: Session, principal: Principal) -> bytes | None:
    """The blind-index key, opened with the handling units' keys this officer holds; None
    without one. Unsealed for the caller's request and kept nowhere."""
    held = principal.identities
    return filing.open_blind_key(
        session, [identity for unit, identity in held.items() if unit in principal.handling_ids])


def index_pending(session: Session, principal: Principal, first: int | None = None,
                  limit: int = INDEX_BATCH) -> int:
    """Compute the blind indexes of up to `limit` tips not indexed yet that this officer's keys
    open (`first`, the tip being opened, before the others), and commit; return how many. A
    citizen files without anyone holding the key at hand, so this is when indexes are made.
    Nothing is shown nor logged: only the keyed hashes are stored."""
    units = principal.units_for("tip.view")
    if not units:
        return 0
    # An archived tip has nothing to index (retention.py sets "names nothing"; a key rotation
    # marks it not computed again): never opened here.
    pending = (Tip.responsible_index.is_(None), Tip.unit_id.in_(sorted(units)),
               Tip.archived_at.is_(None))
    if session.scalar(select(Tip.id).where(*pending).limit(1)) is None:
        return 0  # the usual case: one indexed lookup, no key unsealed
    held = principal.identities
    if principal.bureau_id not in held:  # 州本级's key opens every tip; a county's its own
        units &= set(held)
    key = blind_key(session, principal) if units else None
    if key is None:
        return 0
    order = [case((Tip.id == first, 0), else_=1)] if first is not None else []
    rows = session.execute(
        select(Tip.id, Tip.unit_id, Tip.content)
        .where(Tip.responsible_index.is_(None), Tip.unit_id.in_(sorted(units)),
               Tip.archived_at.is_(None))
        .order_by(*order, Tip.id.desc()).limit(limit)).all()
    for row in rows:
        try:
            opening = keys_opening(held, (row.unit_id, principal.bureau_id))
            content = json.loads(crypto.open_sealed(row.content, opening))
        except (KeyNotHeld, crypto.CryptoError, ValueError):
            content = {}  # a damaged tip: indexed as naming nothing, not retried every page
        responsible, place = filing.index_values(key, content)
        session.execute(update(Tip).where(Tip.id == row.id, Tip.responsible_index.is_(None))
                        .values(responsible_index=responsible, place_index=place))
    session.commit()
    return len(rows)


def related_tips(session: Session, principal: Principal, tip: Tip, limit: int = 20) -> list[int]:
    """Tips naming the same responsible party or place, by blind index: nothing decrypted.
    Tips not indexed yet (none of their unit's key holders has opened them or the queue since)
    are not found until then."""
    conditions = []
    if tip.responsible_index:
        conditions.append(Tip.responsible_index == tip.responsible_index)
    if tip.place_index:
        conditions.append(Tip.place_index == tip.place_index)
    if not conditions:
        return []
    return list(session.scalars(
        select(Tip.id).where(or_(*conditions), Tip.id != tip.id, tip_filter(principal))
        .order_by(Tip.id.desc()).limit(limit)))


@dataclass(frozen=True)
class FileOut:
    filename: str  # the reporter's name for it, with the true type's extension if it lacked it
    # the type found by content (portal/intake/sanitize sniff), not the one claimed
    media_type: str
    size: int
    chunks: Iterator[bytes]


_SAME_EXTENSION = {"jpg": ("jpeg", "jpe", "jfif"), "ole": ("doc", "xls", "ppt"),
                   "txt": ("text", "log", "csv", "md")}


def download_name(filename: str, media_type: str, extension: str | None) -> str:
    """The reporter's file name, with the extension of its true type added when the name's own
    does not say that type (a JPEG sent as "photo.png" saves as "photo.png.jpg")."""
    name = filename.replace("/", "_").replace("\\", "_").strip() or "file"
    if not extension:
        return name
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    guessed, _encoding = mimetypes.guess_type(name, strict=False)
    major = media_type.split("/")[0]
    if (suffix == extension or suffix in _SAME_EXTENSION.get(extension, ())
            or guessed == media_type
            # recordings and text pass through unchanged: any name of the same sort will do
            or (guessed and major in ("audio", "video", "text") and guessed.startswith(major))):
        return name
    return f"{name}.{extension}"


def open_attachment(session: Session, principal: Principal, attachment_id: int) -> FileOut:
    """Decrypt a file for download, as stored after cleaning (a photo keeps the location and
    time the reporter chose to keep). Audited as a download: photos seen on the tip page come
    with the tip (open_tip) instead."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.tip_id is None:
        raise NotFound
    tip = get_visible(session, principal, attachment.tip_id)
    if tip.archived_at is not None:
        raise NotFound  # destroyed under the retention rule: the file is gone
    identities = principal.identities_for(tip)
    meta = filing.open_meta(attachment.meta, identities)
    record(session, actor_of(principal, "tip.view", tip), "attachment.downloaded",
           object_type="attachment", object_id=attachment.id, unit_code=tip.unit.code)
    session.commit()
    chunks = crypto.open_stream(blobs.reader(session, attachment.id), identities)
    return FileOut(download_name(meta["filename"], meta["media_type"], meta.get("extension")),
                   meta["media_type"], attachment.size, chunks)


# ---------------------------------------------------------------------------------------------
# Deadlines on a tip


def start_deadline(session: Session, tip: Tip, step: str, started_at: datetime,
                   calendar: HolidayCalendar | None = None) -> Deadline:
    deadline = deadline_for(step, started_at, calendar or load_calendar(session))
    tip.due_step, tip.due_at, tip.due_certain = step, deadline.due_at, deadline.certain
    return deadline


def _clear_deadline(tip: Tip) -> None:
    tip.due_step, tip.due_at, tip.due_certain = None, None, True


def _decided(session: Session, tip: Tip, now: datetime,
             calendar: HolidayCalendar | None = None) -> None:
    """受理 or 不予受理 now: note whether within the 15 days the tip's deadline gave."""
    due = tip.due_at if tip.due_step == "tip.accept" else None
    if due is None:
        due = deadline_for("tip.accept", tip.received_at,
                           calendar or load_calendar(session)).due_at
    tip.decided_at, tip.decided_on_time = now, now <= due


# ---------------------------------------------------------------------------------------------
# Actions


def _reason(text: str, required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise Refused("reason_required")
    if len(text) > MAX_REASON:
        raise Refused("too_long")
    return text


def _tell_reporter(session: Session, tip: Tip, status: str, note: str | None,
                   now: datetime) -> None:
    sealed = crypto.seal(note.encode(), tip_recipients(session, tip)) if note else None
    session.add(TipUpdate(tip_id=tip.id, status=status, at=now, note=sealed))


def _done(session: Session, principal: Principal, tip: Tip, action: str, **details: Scalar
          ) -> None:
    record(session, actor_of(principal, action, tip), action, object_type="tip",
           object_id=tip.id, unit_code=tip.unit.code, at=None,  # now; no detail taken for it
           **details)
    session.commit()


def classify(session: Session, principal: Principal, tip_id: int, code: str,
             reason: str = "") -> None:
    tip = get_visible(session, principal, tip_id, "tip.classify")
    category = current_category(session, code)
    if category is None:
        raise Refused("unknown_category")
    previous = tip.category.code if tip.category else None
    tip.category_id = category.id
    _done(session, principal, tip, "tip.classified", category=code, previous=previous,
          version=category.version, with_reason=bool(reason.strip()))


def set_priority(session: Session, principal: Principal, tip_id: int, priority: int) -> None:
    tip = get_visible(session, principal, tip_id, "tip.set_priority")
    if priority not in PRIORITIES:
        raise Refused("bad_priority")
    tip.priority = priority
    _done(session, principal, tip, "tip.priority_set", priority=priority)


def accept(session: Session, principal: Principal, tip_id: int,
           now: datetime | None = None) -> None:
    """受理: needs a category; starts the 60-day closing period (and, for a real-name reporter,
    the 30-day contact period)."""
    now = now or utcnow()
    tip = get_visible(session, principal, tip_id)
    step = _move(principal, tip, "accept")
    if tip.category_id is None:
        raise Refused("classify_first")
    calendar = load_calendar(session)
    tip.status = step.leads_to(tip.status)
    tip.accepted_at = now
    _decided(session, tip, now, calendar)
    start_deadline(session, tip, step.starts or "tip.close", now, calendar)
    if tip.real_name:
        tip.contact_due_at = deadline_for("tip.contact_real_name", now, calendar).due_at
    _tell_reporter(session, tip, tip.status, None, now)
    _done(session, principal, tip, "tip.accepted")


def decline(session: Session, principal: Principal, tip_id: int, reason: str,
            now: datetime | None = None) -> None:
    """不予受理, with a reason the reporter reads."""
    now = now or utcnow()
    tip = get_visible(session, principal, tip_id)
    step = _move(principal, tip, "decline")
    reason = _reason(reason)
    tip.status = step.leads_to(tip.status)
    _decided(session, tip, now)
    tip.closed_at = now
    _clear_deadline(tip)
    _tell_reporter(session, tip, tip.status, reason, now)
    _done(session, principal, tip, "tip.declined")


def start_verification(session: Session, principal: Principal, tip_id: int,
                       now: datetime | None = None) -> None:
    now = now or utcnow()
    tip = get_visible(session, principal, tip_id)
    step = _move(principal, tip, "verify")
    tip.status = step.leads_to(tip.status)
    _tell_reporter(session, tip, tip.status, None, now)
    _done(session, principal, tip, "tip.verification_started")


def close(session: Session, principal: Principal, tip_id: int, result: str,
          now: datetime | None = None) -> None:
    """办结, with a result the reporter reads."""
    now = now or utcnow()
    tip = get_visible(session, principal, tip_id)
    step = _move(principal, tip, "close")
    result = _reason(result)
    on_time = tip.due_at is None or now <= tip.due_at
    tip.status = step.leads_to(tip.status)
    tip.closed_at, tip.closed_on_time = now, on_time
    _clear_deadline(tip)
    _tell_reporter(session, tip, tip.status, result, now)
    _done(session, principal, tip, "tip.closed", on_time=on_time)


def extend_deadline(session: Session, principal: Principal, tip_id: int, days: int,
                    reason: str, now: datetime | None = None) -> None:
    """One extension of the closing period, at most 30 days, with notice to the reporter."""
    now = now or utcnow()
    tip = get_visible(session, principal, tip_id)
    _move(principal, tip, "extend")  # the status stays
    if tip.due_at is None:
        raise Refused("wrong_status")
    if tip.extended:
        raise Refused("already_extended")
    reason = _reason(reason)
    current = Deadline(step=tip.due_step or "tip.close", started_at=tip.accepted_at or now,
                       due_at=tip.due_at, certain=tip.due_certain, basis="")
    try:
        longer = extend(current, days, load_calendar(session))
    except ValueError as exc:
        raise Refused("extension_too_long") from exc
    tip.due_at, tip.due_certain, tip.extended = longer.due_at, longer.certain, True
    _tell_reporter(session, tip, "extended", reason, now)
    _done(session, principal, tip, "tip.deadline_extended", days=days)


def assign(session: Session, principal: Principal, tip_id: int, user_id: int) -> None:
    tip = get_visible(session, principal, tip_id, "tip.assign")
    if all(user.id != user_id for user, _, _ in
           officers_of(session, {tip.unit_id, principal.bureau_id})):
        raise Refused("not_a_member")
    tip.assigned_to_id = user_id
    _done(session, principal, tip, "tip.assigned", assignee=user_id)


def link_duplicate(session: Session, principal: Principal, tip_id: int, original_id: int
                   ) -> None:
    tip = get_visible(session, principal, tip_id, "tip.link_duplicate")
    if original_id == tip_id:
        raise Refused("same_tip")
    try:
        original = get_visible(session, principal, original_id)
    except NotFound as exc:
        raise Refused("unknown_tip") from exc
    if original.duplicate_of_id == tip.id:
        raise Refused("circular_duplicate")
    tip.duplicate_of_id = original.id
    _done(session, principal, tip, "tip.linked_duplicate", original=original.id)


def message_reporter(session: Session, principal: Principal, tip_id: int, body: str,
                     now: datetime | None = None) -> Message:
    now = now or utcnow()
    tip = get_visible(session, principal, tip_id, "tip.message")
    body = _reason(body)
    message = Message(tip_id=tip.id, author="staff", staff_user_id=principal.user.id,
                      created_at=now, body=crypto.seal(body.encode(), tip_recipients(session, tip)))
    session.add(message)
    _done(session, principal, tip, "message.to_reporter")
    return message


def transfer(session: Session, principal: Principal, tip_id: int, unit_code: str, reason: str
             ) -> None:
    """Move a tip to another handling unit: everything sealed to the old unit is opened with
    the officer's key and sealed again for the new one (and 州本级 and the reporter)."""
    tip = get_visible(session, principal, tip_id, "tip.transfer")
    _reason(reason)
    target = session.scalar(select(Unit).where(Unit.code == unit_code))
    if target is None or target.id not in principal.handling_ids or target.id == tip.unit_id:
        raise Refused("bad_unit")
    identities = principal.identities_for(tip)
    recipients = [*unit_recipients(session, target), tip.receipt_recipient]

    def reseal(ciphertext: bytes) -> bytes:
        return crypto.seal(crypto.open_sealed(ciphertext, identities), recipients)

    source_code = tip.unit.code
    tip.content = reseal(tip.content)
    for message in tip.messages:
        message.body = reseal(message.body)
    for tip_update in tip.updates:
        if tip_update.note:
            tip_update.note = reseal(tip_update.note)
    for attachment in tip.attachments:
        attachment.meta = reseal(attachment.meta)
        blobs.reseal(session, attachment.id, identities, recipients)
    tip.unit_id = target.id
    tip.county = target.code if target.kind == "county" else None
    tip.assigned_to_id = None
    session.flush()
    session.refresh(tip)
    if session.get(TipIdentity, tip.id) is not None:
        # The officer cannot open the reporter's identity: it stays sealed to the old unit's
        # and 州本级's custodians (and the reporter) until a custodian opens it and seals it
        # for the new unit's custodians.
        record(session, actor_of(principal, "tip.transferred", tip), "identity.reseal_pending",
               object_type="tip", object_id=tip.id, unit_code=target.code,
               from_unit=source_code, to_unit=target.code)
    _done(session, principal, tip, "tip.transferred", from_unit=source_code, to_unit=target.code)


def may_enter_calls(principal: Principal) -> bool:
    """Whether this person enters tips for callers (12369 hotline, petitions …)."""
    return bool(principal.units_for("tip.hotline"))


def hotline_tip(session: Session, principal: Principal, draft: TipDraft, *, limits: Limits,
                receipt_cost: Argon2Cost, once: Once | None = None) -> FiledTip:
    """An officer enters a tip for a caller (12369 hotline, petition …); returns FiledTip, whose
    receipt is read back to the caller. With `once` (the entry form's one-time token), sending
    the same form again files nothing and raises portal.intake.filing.AlreadyFiled."""
    if not may_enter_calls(principal):
        raise Refused("not_allowed")
    if draft.channel not in ENTERED_CHANNELS:
        raise Refused("bad_channel")
    return file_tip(session, draft, [], limits=limits, receipt_cost=receipt_cost,
                    actor=Actor("staff", principal.user.id, _entering_role(principal)), once=once,
                    blind_key=blind_key(session, principal))


def staff_of_units(session: Session, unit_ids: set[int | None]) -> list[User]:
    """The officers a tip may be assigned to, once each, by username."""
    people = {user.id: user for user, _, _ in officers_of(session, unit_ids)}
    return sorted(people.values(), key=lambda user: user.username)


def _int(params: Mapping[str, object], name: str) -> int:
    try:
        number = int(str(params.get(name, "")).strip())
    except ValueError as exc:
        raise Refused("bad_value") from exc
    if abs(number) > 2**31 - 1:  # no id, number of days or priority is that large
        raise Refused("bad_value")
    return number


def _text(params: Mapping[str, object], name: str) -> str:
    value = params.get(name, "")
    if not isinstance(value, str):
        raise Refused("bad_value")
    return value


# action name (URL) → the permission it needs and how to run it from request parameters; shared
# by the pages and the API.
PERFORM = {
    "classify": ("tip.classify", lambda s, p, t, a: classify(s, p, t, _text(a, "category"),
                                                             _text(a, "reason"))),
    "priority": ("tip.set_priority", lambda s, p, t, a: set_priority(s, p, t,
                                                                     _int(a, "priority"))),
    "accept": ("tip.accept", lambda s, p, t, a: accept(s, p, t)),
    "decline": ("tip.decline", lambda s, p, t, a: decline(s, p, t, _text(a, "reason"))),
    "verify": ("tip.verify", lambda s, p, t, a: start_verification(s, p, t)),
    "close": ("tip.close", lambda s, p, t, a: close(s, p, t, _text(a, "reason"))),
    "extend": ("tip.extend", lambda s, p, t, a: extend_deadline(s, p, t, _int(a, "days"),
                                                                _text(a, "reason"))),
    "transfer": ("tip.transfer", lambda s, p, t, a: transfer(s, p, t, _text(a, "unit"),
                                                             _text(a, "reason"))),
    "duplicate": ("tip.link_duplicate", lambda s, p, t, a: link_duplicate(
        s, p, t, _int(a, "original_id"))),
    "assign": ("tip.assign", lambda s, p, t, a: assign(s, p, t, _int(a, "user_id"))),
    "message": ("tip.message", lambda s, p, t, a: message_reporter(s, p, t, _text(a, "body"))),
}
# Refusals that mean "not in this state" rather than "bad input" (HTTP 409 in the API).
CONFLICTS = frozenset({"wrong_status", "already_extended", "classify_first",
                       "circular_duplicate", "archived"})


def perform(session: Session, principal: Principal, tip_id: int, action: str,
            params: Mapping[str, object]) -> None:
    """Run a named action; raises NotFound, Refused or KeyNotHeld, and changes nothing then.
    Who may act comes before what they sent, as on the tip page: the tip seen, the action
    allowed, the unit's key held (an action is taken on a tip its officer can read), then the
    input."""
    if action not in PERFORM:
        raise NotFound
    permission, handler = PERFORM[action]
    with transaction(session):  # the handler commits its step; a refusal rolls back
        tip = get_visible(session, principal, tip_id, permission)
        if tip.archived_at is not None:
            raise Refused("archived")  # its content is destroyed: nothing more is done on it
        principal.identities_for(tip)
        handler(session, principal, tip_id, params)
