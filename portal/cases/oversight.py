"""What auditors see: metadata, timelines and deadline performance, computed from plaintext
columns and the audit log only. Nothing here opens ciphertext (and nothing may: auditors hold no
officer role, so portal/security/access.py gives them no tip)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import (
    Attachment,
    AuditEvent,
    Referral,
    ReferralEvent,
    Tip,
    Unit,
    UnitKeyGrant,
)
from referral.calendar import HolidayCalendar, load_calendar
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


def on_time_rates(session: Session, since: datetime) -> tuple[dict[str, Rate], dict[str, Rate]]:
    """Met/missed per step and per unit: referral steps from their events, the tips' decision
    deadline from the tips' own dates."""
    per_step: dict[str, Rate] = defaultdict(Rate)
    per_unit: dict[str, Rate] = defaultdict(Rate)
    units = {u.id: u.code for u in session.scalars(select(Unit))}
    calendar = load_calendar(session)
    for tip in session.scalars(select(Tip).where(Tip.received_at >= since,
                                                 Tip.decided_at.is_not(None))):
        for result in tip_deadlines(tip, calendar):
            if result.met is None:
                continue
            for table, key in ((per_step, result.step), (per_unit, units[tip.unit_id])):
                if result.met:
                    table[key].met += 1
                else:
                    table[key].missed += 1
    rows = session.execute(select(ReferralEvent, Referral).join(
        Referral, Referral.id == ReferralEvent.referral_id).where(
        ReferralEvent.at >= since, ReferralEvent.on_time.is_not(None)))
    for event, referral in rows:
        for table, key in ((per_step, event.due_step or "?"),
                           (per_unit, units[referral.case.unit_id])):
            if event.on_time:
                table[key].met += 1
            else:
                table[key].missed += 1
    return dict(sorted(per_step.items())), dict(sorted(per_unit.items()))


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
