"""What a tip is and how one is taken in: validation, routing, sealing, attachments, audit.

Plain Python over a SQLAlchemy session; the citizen pages, the partner API and the officers'
hotline mode all call `file_tip`. Everything is written in one transaction: a tip is stored with
all its files or not at all.
"""

from __future__ import annotations

import hmac
import io
import json
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from hashlib import sha256
from typing import BinaryIO, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auditlog.events import REPORTER, Actor, record
from models import (
    HANDLING_KINDS,
    Attachment,
    Category,
    InstallSecret,
    Tip,
    TipStatus,
    TipUpdate,
    Unit,
)
from models.base import utcnow
from models.install import SEALED_BLIND_KEY
from portal.intake import receipts, sanitize
from portal.intake.blobs import ChunkSink
from portal.intake.identity import ReporterIdentity, open_identity, seal_identity
from portal.intake.schema import (  # noqa: F401 (what a tip is, named here as before)
    _ID_CHECK,
    _ID_WEIGHTS,
    COUNTIES,
    IDENTITY_FIELDS,
    MAX_LENGTH,
    TEXT_FIELDS,
    FieldError,
    Identity,
    TipDraft,
    draft_errors,
    valid_id_number,
)
from portal.security import crypto
from portal.security.keys import install_secret, routing_unit, unit_recipients
from portal.transaction import transaction
from referral.calendar import load_calendar
from referral.deadlines import deadline_for
from referral.filenames import safe_name

# Pillow, pikepdf and zipfile need the whole file; video and audio go from the spool to ffmpeg
# (portal/intake/sanitize/media.py), which sanitize.clean bounds by the same cap.
CLEANED_IN_MEMORY = ("image", "pdf", "office")


class Upload(Protocol):
    """One uploaded file: its name as given, a stream rewindable to 0, and whether it overflowed
    the per-file limit while spooling."""

    filename: str
    stream: BinaryIO
    oversize: bool


@dataclass(frozen=True)
class Limits:
    max_files: int
    max_file_bytes: int
    max_clean_bytes: int


class IntakeRejected(Exception):
    """The draft cannot be accepted; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, FieldError]) -> None:
        super().__init__(", ".join(f"{k}: {v.code}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class FiledTip:
    tip_id: int
    receipt: receipts.Receipt


class AlreadyFiled(Exception):
    """This submission (one report form, one Idempotency-Key) filed a tip before: nothing new is
    stored. `receipt` is that tip's receipt again while a repeat may still show it
    (receipts.RECEIPT_REPLAY_SECONDS), else None."""

    def __init__(self, tip_id: int, receipt: receipts.Receipt | None) -> None:
        super().__init__("already filed")
        self.tip_id = tip_id
        self.receipt = receipt


class FormReused(Exception):
    """A filed report's one-time token came back with other content (a used form restored from
    the browser's history and edited, or an Idempotency-Key reused): nothing is filed; the
    sender is asked to send it as a new report."""


def _same_report(session: Session, tip_id: int, once: receipts.Once, draft: TipDraft,
                 cost: receipts.Argon2Cost) -> bool:
    """Whether a repeat carries the content filed before: the receipt the token derives opens
    the tip (one Argon2id, as filing costs), so nothing else needs to be kept to compare."""
    keys = receipts.derive_keys(once.receipt, install_secret(session, "receipt_salt"), cost)
    tip = session.get(Tip, tip_id)
    if tip is None:
        return False
    try:
        stored = json.loads(crypto.open_sealed(tip.content, [keys.keypair.identity]))
        identity = open_identity(session, tip_id, [keys.keypair.identity])
    except (crypto.CryptoError, AttributeError, ValueError):
        return False
    if not isinstance(stored, dict):
        return False
    legacy = stored.get("identity")
    if isinstance(legacy, dict):  # filed before identities were sealed apart
        identity = identity or ReporterIdentity.from_dict(legacy)
        stored["reporter"] = {"contact_ok": bool(legacy.get("contact_ok")),
                              "reward": bool(legacy.get("reward"))}
        stored["identity"] = None
    wanted = (ReporterIdentity.from_dict(asdict(draft.identity))
              if draft.identity is not None else None)
    return bool(stored == json.loads(_content_json(draft)) and identity == wanted)


def filed_before(session: Session, once: receipts.Once, now: datetime | None = None
                 ) -> AlreadyFiled | None:
    """The tip this submission already filed, if any (found by the keyed hash alone)."""
    row = session.execute(select(Tip.id, Tip.received_at)
                          .where(Tip.submission_hash == once.index)).first()
    if row is None:
        return None
    age = ((now or utcnow()) - row.received_at).total_seconds()
    shown = once.receipt if age <= receipts.RECEIPT_REPLAY_SECONDS else None
    return AlreadyFiled(row.id, shown)


def validate(session: Session, draft: TipDraft, upload_count: int, limits: Limits
             ) -> dict[str, FieldError]:
    """Everything wrong with a draft: its values by the schema's rules (portal/intake/schema.py),
    a category that is not current, too many files."""
    errors = draft_errors(draft)
    if draft.category is not None and current_category(session, draft.category) is None:
        errors["category"] = FieldError("unknown_category")
    if upload_count > limits.max_files:
        errors["attachments"] = FieldError("too_many_files", {"max": limits.max_files})
    return errors


def current_category(session: Session, code: str) -> Category | None:
    return session.scalars(
        select(Category).where(Category.code == code, Category.current.is_(True))
    ).first()


# ---------------------------------------------------------------------------------------------
# Blind indexes
#
# The key is made at setup and stored only sealed (age) to every handling unit's key, which are
# also the printed recovery keys: a copy of the database, files and configuration cannot
# confirm a guessed name. Nobody holding a key is present when a citizen files, so a tip is
# stored without indexes (NULL) and an officer's request computes them when it opens the tip or
# the queue (portal/triage/tip_actions.py index_pending).

# What an index column holds once computed for a field with no letter or digit in it (NULL is
# "not computed yet").
NO_INDEX = b""


def blind_index(key: bytes, text: str) -> bytes | None:
    """Keyed hash of normalised text, so that officers can find tips naming the same party or
    place without decrypting any (NFKC, case-folded, spaces and punctuation dropped)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(c for c in folded if unicodedata.category(c)[0] in "LN")
    return hmac.new(key, kept.encode(), sha256).digest() if kept else None


def index_values(key: bytes, content: object) -> tuple[bytes, bytes]:
    """(responsible_index, place_index) of a tip's opened content (TipDraft's fields)."""
    fields = content if isinstance(content, dict) else {}

    def one(name: str) -> bytes:
        value = fields.get(name)
        digest = blind_index(key, value) if isinstance(value, str) else None
        return digest if digest is not None else NO_INDEX

    return one("responsible"), one("place")


def blind_key_recipients(session: Session) -> list[str]:
    """Every handling unit's public key: the officers who may open tips, and the recovery keys."""
    kinds = [k.value for k in HANDLING_KINDS]
    return [key for key in session.scalars(
        select(Unit.public_key).where(Unit.kind.in_(kinds), Unit.public_key.is_not(None))
        .order_by(Unit.id)) if key]


def make_blind_key(session: Session, *, replace: bool = False) -> bytes | None:
    """A fresh blind-index key, stored sealed to the handling units; every tip's indexes are
    marked not computed (they belong to the earlier key, if any). Returns the key for the
    caller's own use (never kept), or None when no unit has a key yet. Without `replace`, a key
    another server made first wins and is returned instead (None if this one cannot open it)."""
    recipients = blind_key_recipients(session)
    existing = session.get(InstallSecret, SEALED_BLIND_KEY)
    if not recipients or (existing is not None and not replace):
        return None
    key = os.urandom(32)
    sealed = crypto.seal(key, recipients)
    try:
        with session.begin_nested():
            if existing is not None:
                existing.value = sealed
            else:
                session.add(InstallSecret(name=SEALED_BLIND_KEY, value=sealed))
            # Archived tips keep NO_INDEX: their content is gone, there is nothing to compute.
            session.execute(update(Tip).where(Tip.archived_at.is_(None))
                            .values(responsible_index=None, place_index=None))
    except IntegrityError:
        return None  # made by another request meanwhile; open_blind_key reads that one
    return key


def open_blind_key(session: Session, identities: Sequence[str]) -> bytes | None:
    """The blind-index key, opened with unit identities an officer holds (None if they open
    it not). The first key holder to need it makes it when setup did not (units keyed without
    it). For the caller's request only: it is never cached beyond."""
    if not identities:
        return None
    for _attempt in range(2):
        row = session.get(InstallSecret, SEALED_BLIND_KEY)
        if row is None:
            made = make_blind_key(session)
            if made is not None:
                return made
            if not blind_key_recipients(session):
                return None
            continue
        try:
            return crypto.open_sealed(row.value, identities)
        except crypto.CryptoError:
            return None
    return None


class NotAUnitKey(Exception):
    """An identity given to rotate the blind-index key is no handling unit's key."""


@dataclass(frozen=True)
class Rotated:
    indexed: int  # tips whose indexes were computed again with the new key
    left: int  # tips the given keys do not open: computed when an officer opens them


def rotate_blind_key(session: Session, identities: Sequence[crypto.AgeIdentity],
                     actor: Actor, batch: int = 200) -> Rotated:
    """Replace the blind-index key with a fresh one (sealed to the handling units) and compute
    every tip's indexes again with it, opening tips with the given unit identities (a recovery
    key: 州本级's opens every tip). A copy of the database taken earlier then confirms nothing
    about later indexes. One transaction; audited without content."""
    recipients = set(blind_key_recipients(session))
    if not identities or any(crypto.recipient_of(i) not in recipients for i in identities):
        raise NotAUnitKey
    with transaction(session):
        key = make_blind_key(session, replace=True)
        if key is None:
            raise NotAUnitKey
        indexed = left = 0
        last = 0
        while True:
            rows = session.execute(select(Tip.id, Tip.content)
                                   .where(Tip.id > last, Tip.archived_at.is_(None))
                                   .order_by(Tip.id).limit(batch)).all()
            if not rows:
                break
            for row in rows:
                last = row.id
                try:
                    content = json.loads(crypto.open_sealed(row.content, identities))
                except (crypto.CryptoError, ValueError):
                    left += 1
                    continue
                responsible, place = index_values(key, content)
                session.execute(update(Tip).where(Tip.id == row.id).values(
                    responsible_index=responsible, place_index=place))
                indexed += 1
        record(session, actor, "blind_index.rotated", tips=indexed)
    return Rotated(indexed, left)


# ---------------------------------------------------------------------------------------------
# Filing


def _draft_fields(draft: TipDraft) -> dict[str, str]:
    return {name: getattr(draft, name) for name in TEXT_FIELDS}


def _content_json(draft: TipDraft) -> bytes:
    content: dict[str, object] = dict(_draft_fields(draft))
    content["category"] = draft.category
    content["county"] = draft.county
    content["keep_photo_location"] = draft.keep_photo_location
    # The identity is sealed apart (portal/intake/identity.py, to the custodians' keys): the
    # content,
    # which the unit's officers open, says only whether the reporter may be contacted and is
    # interested in a reward.
    content["identity"] = None
    content["reporter"] = ({"contact_ok": bool(draft.identity.contact_ok),
                            "reward": bool(draft.identity.reward)}
                           if draft.identity is not None else None)
    return json.dumps(content, ensure_ascii=False).encode()


def store_attachments(
    session: Session,
    tip: Tip | None,
    uploads: Sequence[Upload],
    recipients: Sequence[str],
    *,
    keep_location: bool,
    limits: Limits,
    message_id: int | None = None,
    case_id: int | None = None,
    referral_id: int | None = None,
    suggestion_id: int | None = None,
    kind: str | None = None,
) -> list[Attachment]:
    """Sniff, clean and seal each upload into the tip (or a case's or referral's documents).
    Raises IntakeRejected naming the file."""
    stored = []
    for index, upload in enumerate(uploads):
        file_field = f"attachments.{index}"
        shown = safe_name(upload.filename)  # what an error quotes: no bidi override, not 10,000
        if upload.oversize:
            raise IntakeRejected({file_field: FieldError(
                "file_too_large", {"name": shown, "max": limits.max_file_bytes})})
        try:
            upload.stream.seek(0)
            head = upload.stream.read(8192)
            file_kind = sanitize.sniff(head)
            upload.stream.seek(0)
            source: BinaryIO = upload.stream
            if file_kind.cleanable and file_kind.family in CLEANED_IN_MEMORY:
                data = upload.stream.read(limits.max_clean_bytes + 1)
                if len(data) > limits.max_clean_bytes:
                    raise sanitize.UploadRejected("too_large_to_clean")
                source = io.BytesIO(data)
            attachment = Attachment(tip=tip, family=file_kind.family, message_id=message_id,
                                    case_id=case_id, referral_id=referral_id,
                                    suggestion_id=suggestion_id, kind=kind,
                                    meta=b"")
            session.add(attachment)
            session.flush()
            sink = ChunkSink(session, attachment.id)
            writer = crypto.AgeWriter(sink, recipients)
            report = sanitize.clean(source, file_kind, keep_location=keep_location,
                                    max_in_memory=limits.max_clean_bytes, sink=writer)
            writer.close()
            sink.close()
        except sanitize.UploadRejected as exc:
            raise IntakeRejected(
                {file_field: FieldError(exc.code, {"name": shown})}
            ) from exc
        attachment.uncleaned = report.uncleaned
        attachment.size = writer.plaintext_size
        attachment.meta = crypto.seal(json.dumps({
            "filename": shown, "media_type": file_kind.media_type,
            "extension": file_kind.extension, "removed": list(report.removed),
            "kept": list(report.kept),
        }, ensure_ascii=False).encode(), recipients)
        stored.append(attachment)
    return stored


def open_meta(ciphertext: bytes, identities: Sequence[str]) -> dict:
    """An attachment's sealed metadata (store_attachments writes it), opened with `identities`:
    the one place its name is read out, so a name stored before names were cleaned at upload
    (a folder, a bidi override, 10,000 characters) reaches no page, API or download raw."""
    meta = json.loads(crypto.open_sealed(ciphertext, identities))
    meta["filename"] = safe_name(str(meta.get("filename") or ""))
    return meta


def file_tip(
    session: Session,
    draft: TipDraft,
    uploads: Sequence[Upload],
    *,
    limits: Limits,
    receipt_cost: receipts.Argon2Cost,
    actor: Actor = REPORTER,
    now: datetime | None = None,
    once: receipts.Once | None = None,
    blind_key: bytes | None = None,
) -> FiledTip:
    """Validate, seal and store a tip with its attachments in one transaction, and return the
    receipt, which exists nowhere else afterwards. With `once` (a one-time submission token), a
    repeat of the same submission raises AlreadyFiled instead of filing again. The blind
    indexes are computed now only with `blind_key` (an officer entering the tip holds it);
    otherwise when a key holder first opens the tip."""
    now = now or utcnow()
    if once is not None and (earlier := filed_before(session, once, now)) is not None:
        if not _same_report(session, earlier.tip_id, once, draft, receipt_cost):
            raise FormReused
        raise earlier
    uploads = [u for u in uploads if u.filename]
    errors = validate(session, draft, len(uploads), limits)
    if errors:
        raise IntakeRejected(errors)
    receipt = once.receipt if once is not None else receipts.new_receipt()
    keys = receipts.derive_keys(receipt, install_secret(session, "receipt_salt"), receipt_cost)
    unit: Unit = routing_unit(session, draft.county)
    recipients = [*unit_recipients(session, unit), keys.keypair.recipient]
    category = current_category(session, draft.category) if draft.category else None
    indexes = (index_values(blind_key, _draft_fields(draft)) if blind_key is not None
               else (None, None))
    try:
        with transaction(session):
            tip = Tip(
                receipt_lookup=keys.lookup,
                receipt_recipient=keys.keypair.recipient,
                unit_id=unit.id,
                county=draft.county,
                category_id=category.id if category else None,
                channel=draft.channel,
                language=draft.language,
                submission_hash=once.index if once is not None else None,
                status=TipStatus.RECEIVED,
                real_name=draft.identity is not None,
                received_at=now,
                content=crypto.seal(_content_json(draft), recipients),
                responsible_index=indexes[0],
                place_index=indexes[1],
            )
            # 15 days to decide whether to accept (12369 practice; referral/deadlines.py RULES).
            deadline = deadline_for("tip.accept", now, load_calendar(session))
            tip.due_step, tip.due_at = "tip.accept", deadline.due_at
            tip.due_certain = deadline.certain
            session.add(tip)
            session.flush()
            if draft.identity is not None:
                seal_identity(session, tip, ReporterIdentity.from_dict(asdict(draft.identity)))
            stored = store_attachments(session, tip, uploads, recipients,
                                       keep_location=draft.keep_photo_location, limits=limits)
            tip.attachment_count = len(stored)
            session.add(TipUpdate(tip_id=tip.id, status=TipStatus.RECEIVED, at=now))
            record(session, actor, "tip.received", object_type="tip", object_id=tip.id,
                   unit_code=unit.code, at=now, channel=str(draft.channel),
                   attachments=len(stored), real_name=draft.identity is not None)
    except IntegrityError:
        # Two POSTs of one form at once (a double click): the other one filed it (the
        # transaction is rolled back already).
        if once is not None and (earlier := filed_before(session, once, now)) is not None:
            raise earlier from None
        raise
    return FiledTip(tip_id=tip.id, receipt=receipt)
