"""The one function that writes audit events, always inside the caller's transaction.

Events carry who, what, which object, which unit and when, never content: `details` accepts only
short scalars, and callers pass counts and flags, not text the citizen or an officer wrote.
Each event becomes the next leaf of the append-only log (docs/audit-log.md): the writer locks
the log's head row, so concurrent writers queue instead of forking the chain.

The lock is taken by a transaction's first event and held until the transaction ends. Its place
in the log (the next position and the chain hash before it) is kept with the session, and its
events wait there as rows: they are inserted in one batch, and the head row written once, just
before the session next runs a statement, flushes or commits. So an event costs no statement of
its own, and anything the transaction reads (through the session) sees its events. A savepoint
rolled back takes the place and the waiting rows back to where they were when it began; the end
of the transaction forgets them.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from auditlog.logformat import ZERO, canonical, chain_hash, format_time, leaf_hash
from models import AuditEvent, AuditHead
from models.base import table_of, utcnow

Scalar = str | int | bool | None
_MAX_DETAIL_TEXT = 64
_HEAD = table_of(AuditHead)
_EVENTS = table_of(AuditEvent)
_DETAILS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Actor:
    type: str  # reporter, staff, liaison, system
    id: int | None = None
    role: str | None = None


REPORTER = Actor("reporter", None, "reporter")
SYSTEM = Actor("system", None, None)


def plain_details(details: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """The details as JSON reads them back: plain str, int, bool or None (an enum member becomes
    its value); TypeError or ValueError for anything that is not short metadata."""
    plain: dict[str, Scalar] = {}
    for key, value in details.items():
        kind = type(value)
        if kind is bool or kind is int or value is None:
            plain[key] = value
        elif isinstance(value, str):
            if len(value) > _MAX_DETAIL_TEXT:
                raise ValueError(f"audit detail {key!r} is too long to be metadata")
            plain[key] = value if kind is str else str.__str__(value)
        elif isinstance(value, int):  # an IntEnum member (bool is handled above)
            plain[key] = int(value)
        else:
            raise TypeError(f"audit detail {key!r} must be a scalar")
    return plain


def canonical_details(details: Mapping[str, Scalar]) -> str:
    """The details column: canonical JSON of the plain details."""
    return _DETAILS.encode(plain_details(details))


def _entry(row: Mapping[str, Any], prev: bytes, details: Mapping[str, Scalar]
           ) -> dict[str, Any]:
    return {
        "v": 1, "seq": row["seq"], "at": format_time(row["at"]),
        "actor_type": row["actor_type"], "actor_id": row["actor_id"], "role": row["role"],
        "action": row["action"], "object_type": row["object_type"],
        "object_id": row["object_id"], "unit": row["unit_code"], "details": details,
        "prev": prev.hex(),
    }


_ENTRY_COLUMNS = ("seq", "at", "actor_type", "actor_id", "role", "action", "object_type",
                  "object_id", "unit_code")


def entry_object(event: AuditEvent, prev: bytes) -> dict[str, Any]:
    """The canonical entry (docs/audit-log.md) of a stored event; `prev` is the previous chain
    hash. The writer (from the row it inserts) and every verifier build it the same way."""
    return _entry({name: getattr(event, name) for name in _ENTRY_COLUMNS}, prev,
                  json.loads(event.details))


# ---------------------------------------------------------------------------------------------
# A transaction's place in the log


@dataclass
class _Place:
    """The position the transaction's next event takes, the chain hash before it, and the
    events recorded but not inserted yet (as rows)."""

    seq: int
    chain: bytes
    waiting: list[dict[str, Any]] = field(default_factory=list)

    def copy(self) -> _Place:
        return _Place(self.seq, self.chain, list(self.waiting))


_PLACE = "auditlog.place"  # Session.info keys
_SAVED = "auditlog.saved"  # a savepoint (nested SessionTransaction) → the place when it began


def _lock_head(session: Session) -> _Place:
    """Lock the head row (held until the transaction ends) and read the log's end."""
    for _ in range(2):
        row = session.execute(
            update(_HEAD).where(_HEAD.c.id == 1).values(size=_HEAD.c.size)
            .returning(_HEAD.c.size, _HEAD.c.chain_hash)).first()
        if row is not None:
            return _Place(row[0], bytes(row[1]))
        try:  # a new (or emptied) database: create the head, then take it
            with session.begin_nested():
                session.execute(insert(_HEAD).values(id=1, size=0, chain_hash=ZERO))
        except IntegrityError:
            pass  # another writer created it first
    raise RuntimeError("the audit log head cannot be locked")


def _insert_waiting(session: Session) -> None:
    """Insert the events that wait, and move the head row past them."""
    place = session.info.get(_PLACE)
    if place is None or not place.waiting:
        return
    rows, place.waiting = place.waiting, []
    connection = session.connection()
    connection.execute(insert(_EVENTS), rows)
    connection.execute(update(_HEAD).where(_HEAD.c.id == 1).values(
        size=place.seq, chain_hash=place.chain))


@event.listens_for(Session, "do_orm_execute")
def _before_a_statement(state: ORMExecuteState) -> None:
    _insert_waiting(state.session)


@event.listens_for(Session, "before_flush")
def _before_a_flush(session: Session, _context: Any, _instances: Any) -> None:
    _insert_waiting(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    _insert_waiting(session)


@event.listens_for(Session, "after_transaction_create")
def _remember_place(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        place = session.info.get(_PLACE)
        saved = session.info.setdefault(_SAVED, weakref.WeakKeyDictionary())
        saved[transaction] = None if place is None else place.copy()


@event.listens_for(Session, "after_soft_rollback")
def _back_to_savepoint(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:
        _forget(session)
    elif previous in session.info.get(_SAVED, {}):
        place = session.info[_SAVED][previous]
        if place is None:  # the head was locked inside the savepoint: lock and read it again
            session.info.pop(_PLACE, None)
        else:
            session.info[_PLACE] = place.copy()


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _forget(session)


def _forget(session: Session) -> None:
    session.info.pop(_PLACE, None)
    session.info.pop(_SAVED, None)


# ---------------------------------------------------------------------------------------------
# The writer


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
) -> None:
    """Append one event to the log, in the session's transaction (the caller commits)."""
    place = session.info.get(_PLACE)
    if place is None:
        place = session.info[_PLACE] = _lock_head(session)
    row: dict[str, Any] = {
        "seq": place.seq, "at": at or utcnow(), "actor_type": str(actor.type),
        "actor_id": actor.id,
        "role": _text(actor.role),  # enums (Role …) are written as their plain values
        "action": str(action), "object_type": _text(object_type), "object_id": object_id,
        "unit_code": _text(unit_code),
    }
    plain = plain_details(details)
    row["details"] = _DETAILS.encode(plain)
    row["leaf_hash"] = leaf_hash(canonical(_entry(row, place.chain, plain)))
    row["chain_hash"] = chain_hash(place.chain, row["leaf_hash"])
    place.waiting.append(row)
    place.seq, place.chain = place.seq + 1, row["chain_hash"]


def head(session: Session) -> tuple[int, bytes]:
    row = session.execute(select(_HEAD.c.size, _HEAD.c.chain_hash).where(_HEAD.c.id == 1)).first()
    return (row[0], row[1]) if row else (0, ZERO)
