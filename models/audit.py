"""The audit log. One writer (auditlog/events.py:record), inside the transaction it records.

Entries never carry content: who (actor type, id, role), what (action), which object, which unit,
when, and small non-identifying details. They form a hash chain and the leaves of an RFC 6962
Merkle tree (docs/audit-log.md); signed checkpoints commit to the tree. The database refuses
UPDATE and DELETE on entries (triggers on SQLite and PostgreSQL, created with the table)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DDL, ForeignKey, LargeBinary, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(unique=True)  # the Merkle leaf index, from 0
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(16))  # reporter, staff, liaison, system
    actor_id: Mapped[int | None] = mapped_column()
    role: Mapped[str | None] = mapped_column(String(24))
    action: Mapped[str] = mapped_column(String(48), index=True)
    object_type: Mapped[str | None] = mapped_column(String(24))
    object_id: Mapped[int | None] = mapped_column()
    unit_code: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON, no content
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(Base):
    """One row: the log's size and last chain hash. Every writer locks it first (UPDATE …
    RETURNING), so two writers can never append at the same position."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(default=0)
    chain_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP signed note) of the tree at `size` entries."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditVerification(Base):
    """A run of the verification of the whole stored log (auditlog/verification_runs.py): who
    asked, how far it got, and what it found, as auditlog.database.Verification says it.

    One run at a time, whichever server or process asks: `running` is 1 while a run is unfinished
    and NULL once it finished or was given up, and it is unique, so the database refuses a second
    unfinished run (NULLs do not collide, in SQLite or PostgreSQL). A run whose heartbeat is older
    than a minute lost its worker: it reads as interrupted and a new run may take its place."""

    __tablename__ = "audit_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    auditor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the CLI
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done: Mapped[int] = mapped_column(default=0)  # entries checked so far
    total: Mapped[int | None] = mapped_column()  # the log's size when the run began
    ok: Mapped[bool | None] = mapped_column()
    problem: Mapped[str] = mapped_column(String(32), default="")  # a key of PROBLEMS
    params: Mapped[str] = mapped_column(Text, default="{}")  # the problem's, as JSON
    first_bad_seq: Mapped[int | None] = mapped_column()
    checkpoint_size: Mapped[int | None] = mapped_column()
    running: Mapped[int | None] = mapped_column(unique=True)


APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
)
APPEND_ONLY_POSTGRESQL = (
    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql "
    "AS $$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$",
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
)
for _statement in APPEND_ONLY_SQLITE:
    event.listen(AuditEvent.__table__, "after_create",
                 DDL(_statement).execute_if(dialect="sqlite"))
for _statement in APPEND_ONLY_POSTGRESQL:
    event.listen(AuditEvent.__table__, "after_create",
                 DDL(_statement).execute_if(dialect="postgresql"))
