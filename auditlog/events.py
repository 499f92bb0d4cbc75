"""The one function that writes audit events, always inside the caller's transaction.

Events carry who, what, which object, which unit and when, never content: `details` accepts only
short scalars, and callers pass counts and flags, not text the citizen or an officer wrote.
Each event becomes the next leaf of the append-only log (docs/audit-log.md): the writer locks
the log's head row, so concurrent writers queue instead of forking the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auditlog.logformat import ZERO, canonical, chain_hash, format_time, leaf_hash
from models import AuditEvent, AuditHead
from models.base import table_of, utcnow

Scalar = str | int | bool | None
_MAX_DETAIL_TEXT = 64
_HEAD = table_of(AuditHead)


@dataclass(frozen=True)
class Actor:
    type: str  # reporter, staff, liaison, system
    id: int | None = None
    role: str | None = None


REPORTER = Actor("reporter", None, "reporter")
SYSTEM = Actor("system", None, None)


def canonical_details(details: dict[str, Scalar]) -> str:
    for key, value in details.items():
        if not isinstance(value, str | int | bool | type(None)):
            raise TypeError(f"audit detail {key!r} must be a scalar")
        if isinstance(value, str) and len(value) > _MAX_DETAIL_TEXT:
            raise ValueError(f"audit detail {key!r} is too long to be metadata")
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_object(event: AuditEvent, prev: bytes) -> dict[str, Any]:
    """The canonical entry (docs/audit-log.md) of a stored event; `prev` is the previous chain
    hash. The writer and every verifier build it the same way."""
    return {
        "v": 1, "seq": event.seq, "at": format_time(event.at), "actor_type": event.actor_type,
        "actor_id": event.actor_id, "role": event.role, "action": event.action,
        "object_type": event.object_type, "object_id": event.object_id,
        "unit": event.unit_code, "details": json.loads(event.details), "prev": prev.hex(),
    }


def _take_position(session: Session) -> tuple[int, bytes]:
    """Lock the head row and take the next position; the lock holds until commit."""
    for _ in range(2):
        row = session.execute(
            update(_HEAD).where(_HEAD.c.id == 1).values(size=_HEAD.c.size + 1)
            .returning(_HEAD.c.size, _HEAD.c.chain_hash)).first()
        if row is not None:
            return row[0] - 1, row[1]
        try:  # a new (or emptied) database: create the head, then take it
            with session.begin_nested():
                session.execute(insert(_HEAD).values(id=1, size=0, chain_hash=ZERO))
        except IntegrityError:
            pass  # another writer created it first
    raise RuntimeError("the audit log head cannot be locked")


def _text(value: str | None) -> str | None:
    return None if value is None else str(value)


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str | None = None,
    object_id: int | None = None,
    unit_code: str | None = None,
    at: datetime | None = None,
    **details: Scalar,
) -> AuditEvent:
    seq, prev = _take_position(session)
    event = AuditEvent(
        seq=seq,
        at=at or utcnow(),
        actor_type=str(actor.type),
        actor_id=actor.id,
        role=_text(actor.role),  # enums (Role …) are written as their plain values
        action=str(action),
        object_type=_text(object_type),
        object_id=object_id,
        unit_code=_text(unit_code),
        details=canonical_details(details),
    )
    event.leaf_hash = leaf_hash(canonical(entry_object(event, prev)))
    event.chain_hash = chain_hash(prev, event.leaf_hash)
    session.add(event)
    session.execute(update(_HEAD).where(_HEAD.c.id == 1).values(chain_hash=event.chain_hash))
    return event


def head(session: Session) -> tuple[int, bytes]:
    row = session.execute(select(_HEAD.c.size, _HEAD.c.chain_hash).where(_HEAD.c.id == 1)).first()
    return (row[0], row[1]) if row else (0, ZERO)
