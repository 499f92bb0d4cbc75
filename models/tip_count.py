"""How many tips each unit holds per category and status, kept exact by every change.

The officers' queue shows open tips per category; counting them from the rows takes about a
second at 1,000,000 tips (issue 13). This table holds the same numbers, changed in the same
transaction as each tip that is filed, moved to another unit, (re)classified, changes status or
is deleted (models/counters.py: noted at every flush, added as the transaction commits).
Category 0 stands for "not classified" (a key cannot be NULL). A change made behind the ORM
(raw SQL on tips.unit_id, category_id or status) must call `rebuild` afterwards; nothing in the
portal does.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import String, delete, func, insert, inspect, literal_column, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, table_of
from models.counters import CommitCounter, upsert_add
from models.tip import Tip, TipStatus

NOT_CLASSIFIED = 0

Key = tuple[int, int, str]  # unit id, category id (0: not classified), status


class TipCount(Base):
    __tablename__ = "tip_counts"

    unit_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    category_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(default=0)


_COUNTS = table_of(TipCount)
_TRACKED = ("unit_id", "category_id", "status")


def _key(unit_id: int | None, category_id: int | None, status: str | None) -> Key:
    return (unit_id or 0, category_id or NOT_CLASSIFIED, str(status or TipStatus.RECEIVED))


def _before(tip: Tip) -> Key | None:
    """The tip's key as the database holds it now (None: it holds no row of it yet)."""
    state = inspect(tip)
    if not state.has_identity:
        return None
    values = []
    for name in _TRACKED:
        history = state.attrs[name].history
        values.append(history.deleted[0] if history.deleted else
                      history.unchanged[0] if history.unchanged else getattr(tip, name))
    return _key(*values)


def _after(tip: Tip) -> Key:
    return _key(tip.unit_id, tip.category_id, tip.status)


def _note_changes(session: Session, changes: Counter[Key]) -> None:
    for tip in session.new:
        if isinstance(tip, Tip):
            changes[_after(tip)] += 1
    for tip in session.dirty:
        if isinstance(tip, Tip) and session.is_modified(tip, include_collections=False):
            before, after = _before(tip), _after(tip)
            if before != after and before is not None:
                changes[before] -= 1
                changes[after] += 1
    for tip in session.deleted:
        if isinstance(tip, Tip):
            before = _before(tip)
            if before is not None:
                changes[before] -= 1


def add(session: Session, changes: Counter[Key]) -> None:
    """Add these differences to the counts, in the session's transaction."""
    upsert_add(session, _COUNTS, [{"unit_id": u, "category_id": c, "status": s, "n": n}
                                  for (u, c, s), n in sorted(changes.items()) if n],
               keys=["unit_id", "category_id", "status"], sums=["n"])


CommitCounter("tip_count", _note_changes, add)


def rebuild(session: Session) -> None:
    """Count every tip again (after tips were written behind the ORM, as a benchmark does)."""
    tips = table_of(Tip)
    # The same text in SELECT and GROUP BY: PostgreSQL does not take two bound parameters for
    # one expression.
    category = func.coalesce(tips.c.category_id, literal_column(str(NOT_CLASSIFIED)))
    session.execute(delete(_COUNTS))
    session.execute(insert(_COUNTS).from_select(
        ["unit_id", "category_id", "status", "n"],
        select(tips.c.unit_id, category, tips.c.status, func.count())
        .group_by(tips.c.unit_id, category, tips.c.status)))
