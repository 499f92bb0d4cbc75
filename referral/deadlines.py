"""The deadline engine: when each step of a tip or a referral falls due.

How periods run (《环境保护行政执法与刑事司法衔接工作办法》环环监〔2017〕17号 第38条): periods are
calendar days unless working days are named; the day of the starting event is not counted; a
period whose last day is a public holiday (weekends included, unless a 调休 working day) ends on
the next working day. Day-based periods are counted on local dates and end at 23:59:59 local time
of the due day; hour-based periods run around the clock. A deadline that touched a year the
holiday calendar does not cover is computed as best it can be and marked uncertain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo

from referral.calendar import PREFECTURE_ZONE, HolidayCalendar

_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)

Unit = Literal["calendar_days", "working_days", "hours", "months"]


@dataclass(frozen=True)
class Rule:
    step: str
    amount: int
    unit: Unit
    basis: str  # the legal citation


def _rules(*rules: Rule) -> Mapping[str, Rule]:
    return MappingProxyType({rule.step: rule for rule in rules})


RULES: Mapping[str, Rule] = _rules(
    # Tips: 12369 practice (PRODUCT.md "Deadlines"; configurable by passing other rules).
    Rule("tip.accept", 15, "calendar_days", "12369 practice"),  # from receipt
    Rule("tip.close", 60, "calendar_days", "12369 practice"),  # from acceptance
    Rule("tip.extension", 30, "calendar_days", "12369 practice"),  # at most one, at most 30 days
    Rule("tip.contact_real_name", 30, "calendar_days", "12369 practice"),  # from acceptance
    # Referral of a suspected crime: 国务院令第310号 (rev. 2020) and 环环监〔2017〕17号.
    Rule("referral.approve", 3, "calendar_days", "310号 第5条; 17号 第5条"),
    Rule("referral.handover", 24, "hours", "310号 第5条; 17号 第6条"),
    Rule("referral.request_material", 24, "hours", "17号 第8条"),
    Rule("referral.supplement", 3, "calendar_days", "17号 第8条"),
    Rule("referral.decide_filing", 3, "calendar_days", "17号 第9条"),
    Rule("referral.decide_filing_check", 7, "calendar_days", "17号 第9条"),  # clues to check
    Rule("referral.decide_filing_major", 30, "calendar_days", "17号 第9条"),  # major or complex
    Rule("referral.notify_decision", 3, "calendar_days", "17号 第9条"),
    Rule("referral.request_reconsideration", 3, "working_days", "17号 第11条"),
    Rule("referral.decide_reconsideration", 3, "working_days", "17号 第11条"),
    Rule("referral.hand_over_exhibits", 3, "calendar_days", "17号 第10条"),
    Rule("referral.refer_after_opinion", 3, "calendar_days", "17号 第14条"),
    Rule("referral.notify_non_prosecution", 3, "calendar_days", "17号 第18条"),
    # 三书一函, inbound: a 检察建议 is answered in writing within two months.
    Rule("suggestion.procuratorial_reply", 2, "months", "检察建议: 2个月内书面回复"),
)


@dataclass(frozen=True)
class Deadline:
    step: str
    started_at: datetime  # UTC
    due_at: datetime  # UTC; for day-based periods 23:59:59 local time of the due day
    certain: bool  # False when the period touched a year the holiday calendar does not cover
    basis: str


class DeadlineState(StrEnum):
    OK = "ok"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    MET = "met"
    MISSED = "missed"


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _add_months(d: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month (08-31 + 1 → 09-30)."""
    year, month_index = divmod(d.year * 12 + d.month - 1 + months, 12)
    month = month_index + 1
    next_month = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return date(year, month, min(d.day, (next_month - _ONE_DAY).day))


def _end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """23:59:59 local time: local midnight of the following day minus one second, in UTC."""
    return (datetime.combine(day + _ONE_DAY, time(), tzinfo=tz) - _ONE_SECOND).astimezone(UTC)


def _due_day(rule: Rule, start: date, calendar: HolidayCalendar) -> date:
    # 17号 第38条: the starting day is not counted; a last day that is a holiday moves to the
    # next working day; working-day periods count working days only.
    if rule.unit == "working_days":
        return calendar.add_working_days(start, rule.amount)
    if rule.unit == "months":
        return calendar.next_working_day(_add_months(start, rule.amount))
    return calendar.next_working_day(start + timedelta(days=rule.amount))


def deadline_for(
    step: str,
    started_at: datetime,
    calendar: HolidayCalendar,
    *,
    rules: Mapping[str, Rule] = RULES,
    tz: ZoneInfo = PREFECTURE_ZONE,
) -> Deadline:
    """When `step`, started at `started_at`, falls due under `rules`."""
    _require_aware("started_at", started_at)
    rule = rules[step]
    started_at = started_at.astimezone(UTC)
    if rule.unit == "hours":
        # 310号 第5条, 17号 第6条/第8条: 24-hour limits run around the clock, holidays included.
        due_at = started_at + timedelta(hours=rule.amount)
        return Deadline(step, started_at, due_at, certain=True, basis=rule.basis)
    start = started_at.astimezone(tz).date()
    due = _due_day(rule, start, calendar)
    certain = not calendar.uncertain_between(start + _ONE_DAY, due)
    return Deadline(step, started_at, _end_of_day(due, tz), certain, rule.basis)


def extend(
    deadline: Deadline,
    days: int,
    calendar: HolidayCalendar,
    *,
    rules: Mapping[str, Rule] = RULES,
    tz: ZoneInfo = PREFECTURE_ZONE,
) -> Deadline:
    """A tip's one extension (12369 practice): the old due date plus `days` calendar days, then
    the holiday rule (17号 第38条). That a tip is extended only once is the caller's to check."""
    limit = rules["tip.extension"].amount
    if not 0 < days <= limit:
        raise ValueError(f"an extension is 1 to {limit} days, not {days}")
    old_due = deadline.due_at.astimezone(tz).date()
    due = calendar.next_working_day(old_due + timedelta(days=days))
    certain = deadline.certain and not calendar.uncertain_between(old_due + _ONE_DAY, due)
    return replace(deadline, due_at=_end_of_day(due, tz), certain=certain)


def state_of(
    deadline: Deadline,
    now: datetime,
    calendar: HolidayCalendar,
    *,
    done_at: datetime | None = None,
    tz: ZoneInfo = PREFECTURE_ZONE,
) -> DeadlineState:
    """Met or missed once done; otherwise overdue, due soon (due today or on the next working
    day), or ok."""
    _require_aware("now", now)
    if done_at is not None:
        _require_aware("done_at", done_at)
        return DeadlineState.MET if done_at <= deadline.due_at else DeadlineState.MISSED
    if now > deadline.due_at:
        return DeadlineState.OVERDUE
    today = now.astimezone(tz).date()
    if deadline.due_at.astimezone(tz).date() <= calendar.next_working_day(today + _ONE_DAY):
        return DeadlineState.DUE_SOON
    return DeadlineState.OK


def lateness(deadline: Deadline, done_at: datetime) -> timedelta | None:
    """How late the step was done, or None if on time."""
    _require_aware("done_at", done_at)
    return done_at - deadline.due_at if done_at > deadline.due_at else None
