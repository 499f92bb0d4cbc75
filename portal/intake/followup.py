"""The reporter's side after filing: find the tip by receipt, read its progress and messages,
reply and add evidence. Only the receipt-derived key decrypts here."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auditlog.events import REPORTER, record
from models import Message, Tip
from models.base import utcnow
from portal.intake import receipts
from portal.intake.filing import (
    MAX_LENGTH,
    FieldError,
    FormReused,
    IntakeRejected,
    Limits,
    Upload,
    open_meta,
    store_attachments,
)
from portal.intake.identity import Disclosure, disclosures
from portal.security import crypto
from portal.security.keys import install_secret, tip_recipients
from portal.transaction import transaction

TOKEN_LIFETIME = 30 * 60


class ReceiptNotFound(Exception):
    """No tip answers to this receipt, or the follow-up token expired; deliberately no more."""


class AlreadySent(Exception):
    """This reply form was sent before (a refresh, a double click): nothing was added."""

    def __init__(self, sent_at: datetime) -> None:
        super().__init__("already sent")
        self.sent_at = sent_at


@dataclass(frozen=True)
class FollowupKey:
    """What a correct receipt unlocks, kept only for the visit inside a sealed form token."""

    tip_id: int
    identity: crypto.AgeIdentity


@dataclass(frozen=True)
class Update:
    status: str
    at: datetime
    note: str | None


@dataclass(frozen=True)
class ThreadMessage:
    author: str  # reporter | staff
    at: datetime
    body: str


@dataclass(frozen=True)
class AttachmentInfo:
    filename: str
    family: str
    size: int
    uncleaned: bool


@dataclass(frozen=True)
class ReporterView:
    status: str  # always the latest update's: what the reporter reads first agrees with the list
    received_at: datetime
    content: dict
    updates: list[Update]
    messages: list[ThreadMessage]
    attachments: list[AttachmentInfo]
    unit_code: str  # the handling unit, named in words on the page
    # Each time the reporter's identity was made known (portal/intake/identity.py): when and why.
    disclosures: list[Disclosure] = field(default_factory=list)
    # Its content destroyed under the retention rules (portal/operations/retention.py): the receipt
    # still
    # finds it, the page says so; content, files and messages are gone.
    archived: bool = False


def current_status(updates: Sequence[Update], fallback: str) -> str:
    """The reporter's status is the latest progress entry (one source of truth): tip.status is
    the officers' working state and may move without a word to the reporter."""
    if not updates:
        return fallback
    return max(enumerate(updates), key=lambda pair: (pair[1].at, pair[0]))[1].status


def unlock(session: Session, receipt_text: str, cost: receipts.Argon2Cost) -> FollowupKey:
    """Slow-hash the receipt and find its tip. Unknown and malformed receipts cost the same."""
    keys = receipts.derive_keys(receipt_text, install_secret(session, "receipt_salt"), cost)
    tip_id = session.scalar(select(Tip.id).where(Tip.receipt_lookup == keys.lookup))
    if tip_id is None:
        raise ReceiptNotFound
    return FollowupKey(tip_id=tip_id, identity=keys.keypair.identity)


def issue_token(key: FollowupKey, secret: bytes, now: float | None = None) -> str:
    """A short-lived sealed token for the rest of the visit, so the receipt is typed once and is
    neither in a cookie nor in the page."""
    expiry = int((now or time.time()) + TOKEN_LIFETIME)
    payload = struct.pack(">QQ", key.tip_id, expiry) + key.identity.encode()
    return crypto.seal_symmetric(secret, payload, b"followup").hex()


def redeem_token(token: str, secret: bytes, now: float | None = None) -> FollowupKey:
    try:
        payload = crypto.open_symmetric(secret, bytes.fromhex(token), b"followup")
    except (ValueError, crypto.CryptoError) as exc:
        raise ReceiptNotFound from exc
    tip_id, expiry = struct.unpack(">QQ", payload[:16])
    if expiry < (now or time.time()):
        raise ReceiptNotFound
    return FollowupKey(tip_id=tip_id, identity=crypto.AgeIdentity(payload[16:].decode()))


def _open_text(ciphertext: bytes, key: FollowupKey) -> str:
    return crypto.open_sealed(ciphertext, [key.identity]).decode()


def reporter_view(session: Session, key: FollowupKey) -> ReporterView:
    tip = session.get(Tip, key.tip_id)
    if tip is None:
        raise ReceiptNotFound
    if tip.archived_at is not None:  # nothing left to open: the progress without notes
        updates = [Update(u.status, u.at, None) for u in tip.updates]
        return ReporterView(status=current_status(updates, tip.status),
                            received_at=tip.received_at, content={}, updates=updates,
                            messages=[], attachments=[], unit_code=tip.unit.code, archived=True)
    content = json.loads(crypto.open_sealed(tip.content, [key.identity]))
    attachments = []
    for attachment in tip.attachments:
        meta = open_meta(attachment.meta, [key.identity])
        attachments.append(AttachmentInfo(meta["filename"], attachment.family, attachment.size,
                                          attachment.uncleaned))
    updates = [Update(u.status, u.at, _open_text(u.note, key) if u.note else None)
               for u in tip.updates]
    return ReporterView(
        status=current_status(updates, tip.status),
        received_at=tip.received_at,
        content=content,
        updates=updates,
        messages=[ThreadMessage(m.author, m.created_at, _open_text(m.body, key))
                  for m in tip.messages],
        attachments=attachments,
        unit_code=tip.unit.code,
        disclosures=disclosures(session, tip.id),
    )


def _sent_before(session: Session, tip_id: int, once: bytes | None) -> AlreadySent | None:
    if once is None:
        return None
    sent_at = session.scalar(select(Message.created_at).where(
        Message.tip_id == tip_id, Message.submission_hash == once))
    return AlreadySent(sent_at) if sent_at is not None else None


def _check_once(session: Session, tip_id: int, once: bytes | None) -> None:
    """A repeat of a message sent to this tip raises AlreadySent; the same token or
    Idempotency-Key already used for a message to another tip raises FormReused (nothing is sent:
    a key stands for one message)."""
    if (earlier := _sent_before(session, tip_id, once)) is not None:
        raise earlier
    if once is not None and session.scalar(select(Message.id).where(
            Message.submission_hash == once, Message.tip_id != tip_id)) is not None:
        raise FormReused


def reply(session: Session, key: FollowupKey, body: str, uploads: Sequence[Upload],
          *, limits: Limits, once: bytes | None = None) -> Message:
    """The reporter writes to the officers and may add evidence, in one transaction. `once` is
    the keyed hash of the reply form's one-time token: a repeat raises AlreadySent, the token of
    a message to another tip FormReused."""
    _check_once(session, key.tip_id, once)
    uploads = [u for u in uploads if u.filename]
    if not body.strip() and not uploads:
        raise IntakeRejected({"body": FieldError("required")})
    if len(body) > MAX_LENGTH["message"]:
        raise IntakeRejected({"body": FieldError("too_long", {"max": MAX_LENGTH["message"]})})
    if len(uploads) > limits.max_files:
        raise IntakeRejected({"attachments": FieldError("too_many_files",
                                                        {"max": limits.max_files})})
    tip = session.get(Tip, key.tip_id)
    if tip is None:
        raise ReceiptNotFound
    if tip.archived_at is not None:
        raise IntakeRejected({"body": FieldError("tip_archived")})
    try:
        with transaction(session):
            recipients = tip_recipients(session, tip)
            message = Message(tip_id=tip.id, author="reporter", created_at=utcnow(),
                              body=crypto.seal(body.encode(), recipients), submission_hash=once)
            session.add(message)
            session.flush()
            stored = store_attachments(session, tip, uploads, recipients, keep_location=False,
                                       limits=limits, message_id=message.id)
            tip.attachment_count += len(stored)
            record(session, REPORTER, "message.from_reporter", object_type="tip",
                   object_id=tip.id, unit_code=tip.unit.code, attachments=len(stored))
    except IntegrityError:
        # The same form, posted twice at once (the transaction is rolled back already).
        _check_once(session, key.tip_id, once)
        raise
    return message
