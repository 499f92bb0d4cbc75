"""Deadlines met and missed (models/step_outcome.py): each tip's decision and closing and each
referral step is counted once, in the prefecture's month it ended, in the same transaction; the
kept counts equal counting the rows again, and the auditor's on-time rates read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models import ReferralEvent, StepOutcome, Tip
from models.base import month_of, utcnow
from models.step_outcome import rebuild
from portal.cases import oversight
from portal.triage import tip_actions
from portal.web.extensions import db
from tests.unit.test_access_service import build_world
from tests.unit.test_triage_service import World


def _kept() -> dict[tuple[int, int, str], tuple[int, int]]:
    return {(r.month, r.unit_id, r.step): (r.met, r.missed)
            for r in db.session.scalars(select(StepOutcome)) if r.met or r.missed}


def _kept_equals_rebuilt() -> dict[tuple[int, int, str], tuple[int, int]]:
    db.session.expire_all()
    kept = _kept()
    rebuild(db.session)
    db.session.commit()
    db.session.expire_all()
    assert _kept() == kept
    return kept


def test_the_months_are_the_prefectures() -> None:
    assert month_of(datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) == 202611
    assert month_of(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == 202612  # 00:00 in Yanji
    now = datetime(2027, 1, 10, tzinfo=UTC)
    assert oversight.first_month(1, now) == 202701
    assert oversight.first_month(2, now) == 202612
    assert oversight.first_month(12, now) == 202602
    assert oversight.first_month(25, now) == 202501


def test_each_tips_decision_and_closing_is_counted_once(app, staff) -> None:
    world = World(staff, staff.keys)
    intake, head = world.principal(world.intake, "yanji"), world.principal(world.head, "yanji")
    start = utcnow()
    on_time, late_decline, closed, closed_late, extended = (world.tip() for _ in range(5))
    db.session.commit()
    tip_actions.accept(db.session, intake, on_time)
    tip_actions.decline(db.session, intake, late_decline, "not ours",
                        now=start + timedelta(days=40))
    for tip_id in (closed, closed_late, extended):
        tip_actions.accept(db.session, intake, tip_id)
    tip_actions.close(db.session, head, closed, "done")
    tip_actions.close(db.session, head, closed_late, "done", now=start + timedelta(days=200))
    original_due = db.session.get(Tip, extended).due_at
    tip_actions.extend_deadline(db.session, head, extended, 30, "needs sampling")
    tip_actions.close(db.session, head, extended, "done", now=original_due + timedelta(days=10))
    db.session.expire_all()
    outcome = {t: (db.session.get(Tip, t).decided_on_time, db.session.get(Tip, t).closed_on_time)
               for t in (on_time, late_decline, closed, closed_late, extended)}
    assert outcome == {on_time: (True, None), late_decline: (False, None),
                       closed: (True, True), closed_late: (True, False),
                       extended: (True, True)}  # the extension counts
    yanji = world.unit_id("yanji")
    kept = _kept_equals_rebuilt()
    assert sum(met for (_, u, s), (met, _) in kept.items() if s == "tip.accept") == 4
    assert kept[(month_of(start + timedelta(days=40)), yanji, "tip.accept")][1] == 1
    assert kept[(month_of(start + timedelta(days=200)), yanji, "tip.close")] == (0, 1)
    # A step taken back with its savepoint is not counted.
    other = world.tip()
    db.session.commit()
    with pytest.raises(RuntimeError), db.session.begin_nested():
        tip = db.session.get(Tip, other)
        tip.decided_at, tip.decided_on_time = utcnow(), True
        db.session.flush()
        raise RuntimeError("the step fails after its flush")
    db.session.commit()
    assert _kept_equals_rebuilt() == kept
    # The auditor's rates: the last 12 months seen from 200 days on hold every step; seen from
    # now, the closing 200 days ahead is not in them yet.
    per_step, per_unit = oversight.on_time_rates(db.session, 12, start + timedelta(days=200))
    assert {s: (r.met, r.missed) for s, r in per_step.items()} == {
        "tip.accept": (4, 1), "tip.close": (2, 1)}
    assert {u: (r.met, r.missed) for u, r in per_unit.items()} == {"yanji": (6, 2)}
    per_step, _ = oversight.on_time_rates(db.session, 1, start)
    assert (per_step["tip.close"].met, per_step["tip.close"].missed) == (1, 0)


def test_each_referral_step_is_counted_for_its_cases_unit(app) -> None:
    world = build_world()
    now = utcnow()
    handed, hunchun = world.referrals["handed"], world.referrals["hunchun"]
    rows = [(handed, "referral.receipt", True, now), (handed, "referral.receipt", False, now),
            (hunchun, "referral.decision", True, now), (handed, None, None, now),
            (hunchun, "referral.decision", False, now - timedelta(days=400))]
    for referral, step, met, at in rows:
        db.session.add(ReferralEvent(
            referral_id=referral.id, action="x", from_state="a", to_state="b",
            actor_id=world.users["head_zhou"].id, actor_role="head", at=at, due_step=step,
            on_time=met))
    db.session.commit()
    kept = _kept_equals_rebuilt()
    assert sum(met + missed for met, missed in kept.values()) == 4  # the one with no deadline
    per_step, per_unit = oversight.on_time_rates(db.session, 12, now)
    assert {s: (r.met, r.missed) for s, r in per_step.items()} == {
        "referral.receipt": (1, 1), "referral.decision": (1, 0)}  # 400 days ago: not counted
    assert {u: (r.met, r.missed) for u, r in per_unit.items()} == {
        handed.case.unit.code: (1, 1), hunchun.case.unit.code: (1, 0)}
