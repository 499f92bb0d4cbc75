"""What auditors see: metadata, timelines and deadline performance, computed from plaintext
columns and the audit log only. Nothing here opens ciphertext (and nothing may: auditors hold no
officer role, so portal/security/access.py gives them no tip)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models import (
    Attachment,
    AuditEvent,
    ReferralEvent,
    StepOutcome,
    Tip,
    Unit,
    UnitKeyGrant,
)
from models.base import month_of, utcnow
from referral.calendar import HolidayCalendar
from referral.deadlines import deadline_for

READ_ACTIONS = ("tip.opened", "attachment.downloaded", "case.opened", "case.document_downloaded",
                "suggestion.opened", "referral.package_downloaded", "referral.package_refused",
                "referral.letter_previewed")


@dataclass(frozen=True)
class StepResult:
    step: str
    due_at: datetime | None
    done_at: datetime | None
    met: bool | None  # None: still running
    late_by: timedelta | None


@dataclass
class Rate:
    met: int = 0
    missed: int = 0

    @property
    def percent(self) -> float | None:
        total = self.met + self.missed
        return None if not total else round(100 * self.met / total, 1)


def _result(step: str, due: datetime | None, done: datetime | None) -> StepResult:
    if due is None:
        return StepResult(step, None, done, None, None)
    if done is None:
        return StepResult(step, due, None, None, None)
    return StepResult(step, due, done, done <= due, done - due if done > due else None)


def tip_deadlines(tip: Tip, calendar: HolidayCalendar) -> list[StepResult]:
    """The tip's statutory steps: decide within 15 days; close within 60 of acceptance (plus
    the extension, when one was granted)."""
    results = [_result("tip.accept", deadline_for("tip.accept", tip.received_at,
                                                  calendar).due_at, tip.decided_at)]
    if tip.accepted_at:
        close_due = tip.due_at if tip.status != "closed" and tip.due_at else deadline_for(
            "tip.close", tip.accepted_at, calendar).due_at
        results.append(_result("tip.close", close_due, tip.closed_at))
    return results


def tip_timeline(session: Session, tip_id: int) -> list[AuditEvent]:
    attachment_ids = select(Attachment.id).where(Attachment.tip_id == tip_id)
    return list(session.scalars(select(AuditEvent).where(or_(
        (AuditEvent.object_type == "tip") & (AuditEvent.object_id == tip_id),
        (AuditEvent.object_type == "attachment") & AuditEvent.object_id.in_(attachment_ids)))
        .order_by(AuditEvent.seq)))


def referral_timeline(session: Session, referral_id: int) -> list[ReferralEvent]:
    return list(session.scalars(select(ReferralEvent).where(
        ReferralEvent.referral_id == referral_id).order_by(ReferralEvent.id)))


def first_month(months: int, now: datetime) -> int:
    """The first of the last `months` calendar months (this one included), as yyyymm."""
    this = month_of(now)
    index = (this // 100) * 12 + this % 100 - 1 - (months - 1)  # months since year 0
    return (index // 12) * 100 + index % 12 + 1


def on_time_rates(session: Session, months: int = 12, now: datetime | None = None
                  ) -> tuple[dict[str, Rate], dict[str, Rate]]:
    """Met/missed per step and per unit over the last `months` calendar months (this one
    included), counted by the month each step ended (models/step_outcome.py)."""
    now = now or utcnow()
    since, until = first_month(months, now), month_of(now)
    per_step: dict[str, Rate] = {}
    per_unit: dict[str, Rate] = {}
    for grouping, table in ((StepOutcome.step, per_step), (Unit.code, per_unit)):
        for key, met, missed in session.execute(
                select(grouping, func.sum(StepOutcome.met), func.sum(StepOutcome.missed))
                .join(Unit, Unit.id == StepOutcome.unit_id)
                .where(StepOutcome.month.between(since, until))
                .group_by(grouping).order_by(grouping)):
            if met or missed:
                table[key] = Rate(int(met), int(missed))
    return per_step, per_unit


def decryptions(session: Session, limit: int = 500) -> list[AuditEvent]:
    """Who decrypted what and when, newest first."""
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action.in_(READ_ACTIONS))
                                .order_by(AuditEvent.seq.desc()).limit(limit)))


def key_events(session: Session) -> tuple[list[AuditEvent], list[UnitKeyGrant]]:
    events = list(session.scalars(select(AuditEvent).where(
        AuditEvent.action.like("unit_key.%") | AuditEvent.action.like("identity_key.%"))
        .order_by(AuditEvent.seq.desc())))
    grants = list(session.scalars(select(UnitKeyGrant).order_by(UnitKeyGrant.id)))
    return events, grants
