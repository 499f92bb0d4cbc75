"""A tip and what hangs off it. Every column here is metadata that officers may list without
decrypting; everything the citizen wrote or uploaded lives only in the age ciphertext columns."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, utcnow


class TipStatus(enum.StrEnum):
    RECEIVED = "received"  # 已收到, waiting for the 受理 decision
    ACCEPTED = "accepted"  # 已受理
    DECLINED = "declined"  # 不予受理 (reason shown to the reporter)
    VERIFYING = "verifying"  # 核查中
    REFERRED = "referred"  # 已移送
    CLOSED = "closed"  # 已办结 (result shown to the reporter)


class Channel(enum.StrEnum):
    ONLINE = "online"  # this portal's citizen pages
    API = "api"  # a partner client (mini-program) through /api/v1
    HOTLINE = "hotline"  # 12369, entered by an officer for the caller
    PETITION = "petition"  # 环境信访
    INSPECTION_RECTIFICATION = "inspection_rectification"  # 督察整改
    ENFORCEMENT = "enforcement"  # 执法
    ROUTINE_INSPECTION = "routine_inspection"  # 日常检查
    TRANSFER = "transfer"  # from another body


class Language(enum.StrEnum):
    """The language the citizen filed in (the page's or the request's language; for a hotline
    entry, the one the officer picks), so a Korean tip can be found without opening it."""

    ZH = "zh"
    KO = "ko"
    EN = "en"


class Tip(Base):
    __tablename__ = "tips"
    __table_args__ = (
        # The officer queue lists by unit and status, newest first, with keyset pagination.
        Index("ix_tips_queue", "unit_id", "status", "received_at", "id"),
        Index("ix_tips_queue_received", "unit_id", "received_at", "id"),
        Index("ix_tips_queue_due", "unit_id", "due_at", "id"),
        Index("ix_tips_queue_category", "unit_id", "category_id", "received_at", "id"),
        # 州本级 sees every unit: with unit_id IN (…) only an index that starts with the sort
        # key returns rows in order (bench/officer_queue.py: 300 ms → 3 ms at 1,000,000 tips).
        Index("ix_tips_received", "received_at", "id"),
        Index("ix_tips_due", "due_at", "id"),
        Index("ix_tips_priority", "priority", "received_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The receipt is stored only as this slow (Argon2id) hash; see portal/intake/receipts.py.
    receipt_lookup: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # Public half of the key derived from the receipt: officers' messages are sealed to it too.
    receipt_recipient: Mapped[str] = mapped_column(Text)
    # Keyed hash of the report form's one-time token (portal/intake/receipts.py Submission): a
    # second
    # POST of the same form files nothing and shows the same receipt. Never the token itself.
    submission_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    # unit_id, category_id and status keep their old value when changed (active_history), so
    # that models/tip_count.py can move the tip's count from the old key to the new.
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), active_history=True)
    county: Mapped[str | None] = mapped_column(String(40))  # unit code, None when unknown
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"),
                                                    active_history=True)
    channel: Mapped[str] = mapped_column(String(32), default=Channel.ONLINE)
    # Language (zh, ko, en); None for tips filed before it was recorded. No index of its own:
    # the queue walks an order-first index and filters, and each language is a large share.
    language: Mapped[str | None] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(16), default=TipStatus.RECEIVED,
                                        active_history=True)
    priority: Mapped[int] = mapped_column(default=0)
    real_name: Mapped[bool] = mapped_column(default=False)
    attachment_count: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # accepted or declined
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Whether the decision and the closing came by their deadlines (None: not yet, or no
    # deadline ran); counted per month in step_outcomes (models/step_outcome.py).
    decided_on_time: Mapped[bool | None] = mapped_column()
    closed_on_time: Mapped[bool | None] = mapped_column()
    # The open step's deadline (accept, then close), from referral/deadlines.py RULES.
    due_step: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_certain: Mapped[bool] = mapped_column(default=True, server_default=true())
    extended: Mapped[bool] = mapped_column(default=False, server_default=false())
    contact_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # real-name reporters
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # age v1 ciphertext of the citizen's fields (JSON), to the units and the receipt key.
    content: Mapped[bytes] = mapped_column(LargeBinary)
    # Keyed blind indexes (HMAC of normalised text) so related tips can be found unread.
    responsible_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    place_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"))
    # Retention (portal/operations/retention.py): a tip on legal hold is never destroyed; a
    # destroyed tip
    # keeps this row (metadata, for statistics) with its content, files and messages gone.
    legal_hold: Mapped[bool] = mapped_column(default=False, server_default=false())
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    unit = relationship("Unit")
    category = relationship("Category")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="tip", order_by="Attachment.id"
    )
    messages: Mapped[list[Message]] = relationship(back_populates="tip", order_by="Message.id")
    updates: Mapped[list[TipUpdate]] = relationship(back_populates="tip", order_by="TipUpdate.id")


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    # An encrypted file belongs to a tip, or to a case (its documents) or a referral (its
    # package and the receiving body's decision documents).
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    suggestion_id: Mapped[int | None] = mapped_column(ForeignKey("suggestions.id"), index=True)
    kind: Mapped[str | None] = mapped_column(String(32))  # referral/workflow.py Document
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    family: Mapped[str] = mapped_column(String(12))  # image, video, audio, pdf, office, text
    uncleaned: Mapped[bool] = mapped_column(default=False)
    size: Mapped[int] = mapped_column(default=0)  # plaintext bytes after cleaning
    # age ciphertext of {"filename", "media_type", "removed", "kept"}: the name is content too.
    meta: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    tip: Mapped[Tip | None] = relationship(back_populates="attachments")


class BlobChunk(Base):
    """An attachment's age ciphertext, in rows of at most 1 MiB, so that a 200 MB file is written
    and read as a stream inside the same transaction as its tip."""

    __tablename__ = "blob_chunks"

    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachments.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), index=True)
    author: Mapped[str] = mapped_column(String(12))  # "reporter" | "staff"
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # age ciphertext
    # Keyed hash of the reply form's one-time token: a refresh does not post the message twice.
    submission_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)

    tip: Mapped[Tip] = relationship(back_populates="messages")


class TipUpdate(Base):
    """What the reporter sees of the tip's progress: a status and when, with an optional note
    (a decline reason, a result) sealed like any content."""

    __tablename__ = "tip_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[bytes | None] = mapped_column(LargeBinary)

    tip: Mapped[Tip] = relationship(back_populates="updates")
