"""The deadline engine against hand-computed dates around Mid-Autumn and National Day 2026.

2026 facts used below: Fri 09-25 Mid-Autumn (09-26/27 the weekend); Sun 09-20 and Sat 10-10 are
working days (调休); 10-01 (Thu) to 10-07 (Wed) National Day; 10-08 is a Thursday; 10-31 a
Saturday; 11-08 a Sunday. 2027 onwards is not in the calendar built here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from referral.calendar import PREFECTURE_ZONE, CalendarDay, HolidayCalendar
from referral.deadlines import (
    RULES,
    Deadline,
    DeadlineState,
    Rule,
    deadline_for,
    extend,
    lateness,
    state_of,
)

AUTUMN_2026 = [
    CalendarDay(date(2026, 9, 20), "workday", "国庆节"),
    CalendarDay(date(2026, 9, 25), "holiday", "中秋"),
    *(CalendarDay(date(2026, 10, d), "holiday", "国庆节") for d in (1, 2, 5, 6, 7)),
    CalendarDay(date(2026, 10, 10), "workday", "国庆节"),
]
CAL = HolidayCalendar(AUTUMN_2026, {2026})


def cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=PREFECTURE_ZONE)


def end_of(year: int, month: int, day: int) -> datetime:
    return cst(year, month, day, 23, 59, 59)


@pytest.mark.parametrize(
    ("step", "started_at", "due_at"),
    [
        # 09-22 + 15 days = 10-07, a National Day holiday → next working day Thu 10-08.
        ("tip.accept", cst(2026, 9, 22, 10), end_of(2026, 10, 8)),
        # 09-28 + 3 = 10-01, holiday; 10-02..07 holidays or weekend → 10-08.
        ("referral.approve", cst(2026, 9, 28, 9), end_of(2026, 10, 8)),
        # 10-07 + 3 = Sat 10-10, a 调休 working day → due that Saturday.
        ("referral.decide_filing", cst(2026, 10, 7, 15), end_of(2026, 10, 10)),
        # 3 working days after Wed 09-30: 10-08, 10-09, 10-10 (调休 Saturday).
        ("referral.request_reconsideration", cst(2026, 9, 30, 11), end_of(2026, 10, 10)),
        # 3 working days after Fri 10-09: Sat 10-10 (调休), Sun 10-11 off, Mon 10-12, Tue 10-13.
        ("referral.decide_reconsideration", cst(2026, 10, 9, 16), end_of(2026, 10, 13)),
        # 09-18 + 7 = Fri 09-25, Mid-Autumn; Sat/Sun off → Mon 09-28.
        ("referral.decide_filing_check", cst(2026, 9, 18, 8), end_of(2026, 9, 28)),
        # 09-13 + 7 = Sun 09-20, a 调休 working Sunday → due that Sunday.
        ("referral.decide_filing_check", cst(2026, 9, 13, 8), end_of(2026, 9, 20)),
        # 24 hours run around the clock, National Day or not: 09-30 20:00 → 10-01 20:00.
        ("referral.handover", cst(2026, 9, 30, 20), cst(2026, 10, 1, 20)),
        ("referral.request_material", cst(2026, 10, 3, 9, 30), cst(2026, 10, 4, 9, 30)),
        # 08-31 + 2 months = Sat 10-31; Sun 11-01 → Mon 11-02.
        ("suggestion.procuratorial_reply", cst(2026, 8, 31, 10), end_of(2026, 11, 2)),
        # 07-31 + 2 months = 09-31, clamped to Wed 09-30, a working day.
        ("suggestion.procuratorial_reply", cst(2026, 7, 31, 10), end_of(2026, 9, 30)),
    ],
)
def test_hand_computed_deadlines(step: str, started_at: datetime, due_at: datetime) -> None:
    deadline = deadline_for(step, started_at, CAL)
    assert deadline.due_at == due_at
    assert deadline.due_at.tzinfo is UTC
    assert deadline.started_at == started_at
    assert deadline.certain
    assert deadline.basis == RULES[step].basis


def test_start_day_is_the_local_date() -> None:
    # 2026-09-27 16:30 UTC is 09-28 00:30 in Shanghai: 09-28 + 3 = 10-01 → 10-08. Counting
    # from the UTC date (09-27 + 3 = Wed 09-30) would wrongly give 09-30.
    started_at = datetime(2026, 9, 27, 16, 30, tzinfo=UTC)
    assert deadline_for("referral.approve", started_at, CAL).due_at == end_of(2026, 10, 8)


def test_due_moment_is_the_last_second_of_the_local_day() -> None:
    deadline = deadline_for("tip.accept", cst(2026, 9, 22, 10), CAL)
    assert deadline.due_at == datetime(2026, 10, 8, 15, 59, 59, tzinfo=UTC)


def test_period_in_an_uncovered_year_is_uncertain() -> None:
    # 2030-12-30 + 3 = Thu 2031-01-02; 2031 is not covered, so counted as a plain week, flagged.
    deadline = deadline_for("referral.decide_filing", cst(2030, 12, 30, 9), CAL)
    assert deadline.due_at == end_of(2031, 1, 2)
    assert not deadline.certain
    # 2026-12-01 + 60 = Sat 2027-01-30 → Mon 2027-02-01 on weekends only; 2027 is uncovered.
    deadline = deadline_for("tip.close", cst(2026, 12, 1, 9), CAL)
    assert deadline.due_at == end_of(2027, 2, 1)
    assert not deadline.certain
    # Hours need no calendar: certain even in an uncovered year.
    assert deadline_for("referral.handover", cst(2031, 5, 1, 9), CAL).certain


def test_extension_of_a_close_deadline() -> None:
    # Accepted 08-10: + 60 = Fri 10-09. Extended 30 days: 11-08, a Sunday → Mon 11-09.
    close = deadline_for("tip.close", cst(2026, 8, 10, 10), CAL)
    assert close.due_at == end_of(2026, 10, 9)
    extended = extend(close, 30, CAL)
    assert extended.due_at == end_of(2026, 11, 9)
    assert extended.step == "tip.close"
    assert extended.started_at == close.started_at
    assert extended.certain
    with pytest.raises(ValueError, match="1 to 30 days"):
        extend(close, 31, CAL)
    with pytest.raises(ValueError):
        extend(close, 0, CAL)


def test_extension_into_an_uncovered_year_is_uncertain() -> None:
    # Accepted 10-20: + 60 = Sat 12-19 → Mon 12-21. + 30 = Wed 2027-01-20, 2027 uncovered.
    close = deadline_for("tip.close", cst(2026, 10, 20, 10), CAL)
    assert close.due_at == end_of(2026, 12, 21)
    extended = extend(close, 30, CAL)
    assert extended.due_at == end_of(2027, 1, 20)
    assert close.certain and not extended.certain


def due_on(day: date) -> Deadline:
    return Deadline(
        "referral.approve", cst(2026, 9, 1), end_of(day.year, day.month, day.day), True, "test"
    )


@pytest.mark.parametrize(
    ("due", "now", "state"),
    [
        # A minute past the last second of Thu 10-08.
        (date(2026, 10, 8), cst(2026, 10, 9, 0, 1), DeadlineState.OVERDUE),
        # Due today.
        (date(2026, 10, 9), cst(2026, 10, 9, 10), DeadlineState.DUE_SOON),
        # Due Tue 10-13, seen Mon 10-12: tomorrow is a working day.
        (date(2026, 10, 13), cst(2026, 10, 12, 9), DeadlineState.DUE_SOON),
        # Due Fri 10-09, seen Thu 10-08.
        (date(2026, 10, 9), cst(2026, 10, 8, 9), DeadlineState.DUE_SOON),
        # Due Mon 10-19, seen Fri 10-16: the weekend between is not working time.
        (date(2026, 10, 19), cst(2026, 10, 16, 9), DeadlineState.DUE_SOON),
        # Due Thu 10-08, seen Wed 09-30: the next working day after 09-30 is 10-08.
        (date(2026, 10, 8), cst(2026, 9, 30, 17), DeadlineState.DUE_SOON),
        # Due Tue 10-13, seen Fri 10-09: the next working day is Sat 10-10 (调休), so not yet.
        (date(2026, 10, 13), cst(2026, 10, 9, 9), DeadlineState.OK),
        (date(2026, 10, 30), cst(2026, 10, 20, 9), DeadlineState.OK),
    ],
)
def test_state_of_an_open_deadline(due: date, now: datetime, state: DeadlineState) -> None:
    assert state_of(due_on(due), now, CAL) is state


def test_met_and_missed_with_lateness() -> None:
    deadline = due_on(date(2026, 10, 8))
    later = cst(2026, 10, 20)
    on_time = end_of(2026, 10, 8)
    assert state_of(deadline, later, CAL, done_at=on_time) is DeadlineState.MET
    assert lateness(deadline, on_time) is None
    late = cst(2026, 10, 9, 1)
    assert state_of(deadline, later, CAL, done_at=late) is DeadlineState.MISSED
    assert lateness(deadline, late) == timedelta(hours=1, seconds=1)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 9, 22, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline_for("tip.accept", naive, CAL)
    deadline = due_on(date(2026, 10, 8))
    with pytest.raises(ValueError, match="timezone-aware"):
        state_of(deadline, naive, CAL)
    with pytest.raises(ValueError, match="timezone-aware"):
        state_of(deadline, cst(2026, 10, 1), CAL, done_at=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        lateness(deadline, naive)


def test_every_rule_names_its_basis() -> None:
    required = {
        "tip.accept",
        "tip.close",
        "tip.extension",
        "tip.contact_real_name",
        "referral.approve",
        "referral.handover",
        "referral.request_material",
        "referral.supplement",
        "referral.decide_filing",
        "referral.decide_filing_check",
        "referral.decide_filing_major",
        "referral.notify_decision",
        "referral.request_reconsideration",
        "referral.decide_reconsideration",
        "referral.hand_over_exhibits",
        "referral.refer_after_opinion",
        "referral.notify_non_prosecution",
        "suggestion.procuratorial_reply",
    }
    assert required <= set(RULES)
    for step, rule in RULES.items():
        assert rule.step == step
        assert rule.basis.strip()
        assert rule.amount > 0
    assert RULES["referral.handover"].unit == "hours"
    assert RULES["referral.decide_reconsideration"].unit == "working_days"
    with pytest.raises(TypeError):
        RULES["tip.accept"] = Rule("tip.accept", 1, "calendar_days", "x")  # type: ignore[index]


def test_rules_are_configurable() -> None:
    rules = {**RULES, "tip.accept": Rule("tip.accept", 7, "working_days", "local practice")}
    # 7 working days after Tue 09-22: 09-23, 09-24, 09-28, 09-29, 09-30, 10-08, 10-09.
    deadline = deadline_for("tip.accept", cst(2026, 9, 22, 10), CAL, rules=rules)
    assert deadline.due_at == end_of(2026, 10, 9)
    assert deadline.basis == "local practice"
    with pytest.raises(KeyError):
        deadline_for("no.such.step", cst(2026, 9, 22), CAL)
