"""Deadlines met and missed, per month, unit and step, kept exact by every step that ends.

The auditor's on-time rates (and the public figures by month) read this table instead of every
tip and referral event. A step is counted once, in the prefecture's month in which it ended, for
the unit that held it:
- `tip.accept`: a tip decided (受理 or 不予受理), on time when decided by its deadline
  (`Tip.decided_on_time`, set by portal/triage/tip_actions.py);
- `tip.close`: a tip closed (办结) by its closing deadline, extension included
  (`Tip.closed_on_time`);
- a referral step (`ReferralEvent.due_step`): each event that ended a running step, for the unit
  of the referral's case (`ReferralEvent.on_time`).
The counts change in the same transaction as the rows (models/counters.py). `rebuild` counts
again from the rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import String, delete, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, month_of, table_of
from models.case import Referral, ReferralEvent
from models.counters import CommitCounter, upsert_add
from models.tip import Tip

Key = tuple[int, int, str]  # month (yyyymm), unit id, step
Outcome = tuple[Key, bool]  # … and whether the deadline was met


class StepOutcome(Base):
    __tablename__ = "step_outcomes"

    month: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    unit_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    step: Mapped[str] = mapped_column(String(40), primary_key=True)
    met: Mapped[int] = mapped_column(default=0)
    missed: Mapped[int] = mapped_column(default=0)


_OUTCOMES = table_of(StepOutcome)
_TIP_STEPS = (("decided_on_time", "decided_at", "tip.accept"),
              ("closed_on_time", "closed_at", "tip.close"))


def tip_outcomes(unit_id: int, decided: tuple[bool | None, datetime | None],
                 closed: tuple[bool | None, datetime | None]) -> Iterable[Outcome]:
    for (met, at), step in ((decided, "tip.accept"), (closed, "tip.close")):
        if met is not None and at is not None:
            yield (month_of(at), unit_id, step), met


def _newly_set(tip: Tip, name: str, is_new: bool) -> bool:
    """The tip's outcome column goes from nothing to met or missed in this flush."""
    if getattr(tip, name) is None:
        return False
    if is_new:
        return True
    history = inspect(tip).attrs[name].history
    return bool(history.added) and not any(v is not None for v in history.deleted)


def _note(session: Session, changes: Counter[Outcome]) -> None:
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Tip):
            is_new = obj in session.new
            for name, at_name, step in _TIP_STEPS:
                at = getattr(obj, at_name)
                if at is not None and _newly_set(obj, name, is_new):
                    changes[(month_of(at), obj.unit_id, step), bool(getattr(obj, name))] += 1
        elif isinstance(obj, ReferralEvent) and obj in session.new and obj.on_time is not None:
            referral = session.get(Referral, obj.referral_id)
            if referral is not None:
                changes[(month_of(obj.at), referral.unit_id, obj.due_step or "?"),
                        bool(obj.on_time)] += 1


def add(session: Session, changes: Counter[Outcome]) -> None:
    """Add these outcomes to the counts, in the session's transaction."""
    totals: dict[Key, list[int]] = {}
    for (key, met), n in changes.items():
        totals.setdefault(key, [0, 0])[0 if met else 1] += n
    upsert_add(session, _OUTCOMES, [
        {"month": m, "unit_id": u, "step": s, "met": met, "missed": missed}
        for (m, u, s), (met, missed) in sorted(totals.items()) if met or missed],
        keys=["month", "unit_id", "step"], sums=["met", "missed"])


CommitCounter("step_outcome", _note, add)


def rebuild(session: Session) -> None:
    """Count every ended step again from the tips and referral events."""
    session.execute(delete(_OUTCOMES))
    changes: Counter[Outcome] = Counter()
    tips = table_of(Tip)
    for row in session.execute(select(
            tips.c.unit_id, tips.c.decided_on_time, tips.c.decided_at, tips.c.closed_on_time,
            tips.c.closed_at).where(tips.c.decided_on_time.is_not(None)
                                    | tips.c.closed_on_time.is_not(None))
            .execution_options(yield_per=10_000)):
        changes.update(tip_outcomes(row.unit_id, (row.decided_on_time, row.decided_at),
                                    (row.closed_on_time, row.closed_at)))
    for at, unit_id, step, met in session.execute(
            select(ReferralEvent.at, Referral.unit_id, ReferralEvent.due_step,
                   ReferralEvent.on_time)
            .join(Referral, Referral.id == ReferralEvent.referral_id)
            .where(ReferralEvent.on_time.is_not(None))):
        changes[(month_of(at), unit_id, step or "?"), bool(met)] += 1
    add(session, changes)
