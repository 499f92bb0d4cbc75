"""The one function that writes audit events, always inside the caller's transaction.

Events carry who, what, which object, which unit and when, never content: `details` accepts only
short scalars, and callers pass counts and flags, not text the citizen or an officer wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from models import AuditEvent
from models.base import utcnow

Scalar = str | int | bool | None
_MAX_DETAIL_TEXT = 64


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
    event = AuditEvent(
        at=at or utcnow(),
        actor_type=actor.type,
        actor_id=actor.id,
        role=actor.role,
        action=action,
        object_type=object_type,
        object_id=object_id,
        unit_code=unit_code,
        details=canonical_details(details),
    )
    session.add(event)
    return event
