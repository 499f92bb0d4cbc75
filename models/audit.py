"""The audit log. One writer (portal/audit.py:record), inside the transaction it records.

Entries never carry content: who (actor type, id, role), what (action), which object, which unit,
when, and small non-identifying details. Rows are append-only; the id is the log position that a
later hash chain and Merkle tree are built over.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(16))  # reporter, staff, liaison, system
    actor_id: Mapped[int | None] = mapped_column()
    role: Mapped[str | None] = mapped_column(String(24))
    action: Mapped[str] = mapped_column(String(48), index=True)
    object_type: Mapped[str | None] = mapped_column(String(24))
    object_id: Mapped[int | None] = mapped_column()
    unit_code: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON, no content
