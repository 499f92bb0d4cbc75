"""A real-name reporter's identity, kept apart from the tip, and the requests to read it.

The identity (name, phone, ID number, address) is sealed to the custodian keys (Unit.identity_key)
of the tip's unit and of 州本级, and to the reporter's receipt key; never to the unit keys that
open the tip. An officer who needs it asks (IdentityRequest); a custodian grants or refuses; a
grant seals a copy to the officer's personal key for a limited time (portal/intake/identity.py)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, utcnow


class IdentityPurpose(enum.StrEnum):
    CONTACT = "contact"  # contact the reporter
    REWARD = "reward"  # pay a reward (举报奖励)
    WITNESS = "witness"  # take a witness statement
    PACKAGE = "package"  # send the identity with a referral (a witness who agreed)


class RequestState(enum.StrEnum):
    PENDING = "pending"
    GRANTED = "granted"  # readable by the requester until expires_at, unless revoked
    REFUSED = "refused"
    REVOKED = "revoked"
    WITHDRAWN = "withdrawn"  # the requester took it back before a decision


class TipIdentity(Base):
    __tablename__ = "tip_identities"

    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), primary_key=True)
    # age ciphertext of {"name", "phone", "id_number", "address"}: custodian keys + receipt key.
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdentityRequest(Base):
    __tablename__ = "identity_requests"
    __table_args__ = (Index("ix_identity_requests_state", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # IdentityPurpose
    # The officer's and the custodian's reasons are their own words, not the reporter's: kept
    # plain so auditors can read them (the form tells them not to write the identity into it).
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # purpose "package": the referral whose package carries the identity.
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    state: Mapped[str] = mapped_column(String(12), default=RequestState.PENDING)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    # While granted: the identity sealed to the personal keys of those it is granted to (the
    # requester; for a package, the case team too). Emptied on revocation and expiry.
    sealed_copy: Mapped[bytes | None] = mapped_column(LargeBinary)

    tip = relationship("Tip")


class ReferralTipText(Base):
    """A tip's statement (its narrative) sent with a referral as a text file, redacted as the
    Redaction rows for (referral, tip, no attachment) say."""

    __tablename__ = "referral_tip_texts"

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), primary_key=True)


class Redaction(Base):
    """What is blacked out of a tip's narrative or of one of its image files before it leaves the
    bureau in a referral's package. The bureau keeps the original; the package carries the
    redacted copy, rendered again the same way each time (reproducible)."""

    __tablename__ = "redactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"))
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id"))  # None: text
    # age ciphertext (to the case's unit keys) of {"phrases": [...]} for text, or
    # {"boxes": [[x, y, w, h], ...]} in thousandths of the image's width and height.
    spec: Mapped[bytes] = mapped_column(LargeBinary)
    count: Mapped[int] = mapped_column(default=0)  # phrases or boxes: for the material list
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
