"""The holiday calendar: which days are working days in mainland China.

A calendar is the ordinary week (Monday to Friday work) plus listed exceptions: holidays that fall
on weekdays and weekend days that are working days (调休). Which years those lists are complete
for is data too: a year nobody has entered is reported as uncovered, never quietly treated as
weekends-only (PRODUCT.md, "Deadlines").
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal, TypeGuard, cast, get_args

import chinese_calendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.base import PREFECTURE_ZONE as PREFECTURE_ZONE  # the domain imports it from here
from models.base import utcnow
from models.calendar import CalendarYear, Holiday

# PREFECTURE_ZONE, the prefecture's clock (Yanbian keeps Beijing time): every local date, day
# and deadline.

def prefecture_time(text: str, at: time) -> datetime:
    """A day typed as yyyy-mm-dd, at a time of day on the prefecture's clock. ValueError when
    the text is not such a day."""
    return datetime.combine(datetime.strptime(text.strip(), "%Y-%m-%d").date(), at,
                            tzinfo=PREFECTURE_ZONE)


DayKind = Literal["holiday", "workday"]
DAY_KINDS: tuple[str, ...] = get_args(DayKind)

CSV_HEADER = ["date", "kind", "name"]
YEAR_COMPLETE = "complete"
NAME_LENGTH = 80  # models.calendar.Holiday.name
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR = re.compile(r"\d{4}")
_ONE_DAY = timedelta(days=1)


def _is_day_kind(kind: str) -> TypeGuard[DayKind]:
    return kind in DAY_KINDS


@dataclass(frozen=True)
class CalendarDay:
    """An exception to the ordinary week: a holiday on a weekday, or a working weekend day."""

    day: date
    kind: DayKind
    name: str


class CalendarImportError(ValueError):
    """A line of an administrator's calendar file that cannot be imported."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason


def _is_weekend(d: date) -> bool:
    return d.weekday() >= 5


class HolidayCalendar:
    """Working days from the ordinary week plus exceptions, and the years the data covers.

    Exceptions listed for a year that is not covered are still used (partial data beats none),
    but any question touching that year is reported as uncertain.
    """

    def __init__(self, days: Iterable[CalendarDay], covered_years: Iterable[int]) -> None:
        self._exceptions = {d.day: d for d in days}
        self.covered_years = frozenset(covered_years)

    @property
    def days(self) -> list[CalendarDay]:
        return sorted(self._exceptions.values(), key=lambda d: d.day)

    def covers(self, year: int) -> bool:
        return year in self.covered_years

    def uncovered_years(self, a: date, b: date) -> list[int]:
        """The years between a and b (inclusive, either order) the calendar has no data for."""
        first, last = sorted((a.year, b.year))
        return [year for year in range(first, last + 1) if not self.covers(year)]

    def uncertain_between(self, a: date, b: date) -> bool:
        return bool(self.uncovered_years(a, b))

    def is_working_day(self, d: date) -> bool:
        exception = self._exceptions.get(d)
        if exception is not None:
            return exception.kind == "workday"
        return not _is_weekend(d)

    def next_working_day(self, d: date) -> date:
        """d itself if it is a working day, else the first working day after it (the list of
        exceptions is finite, so an ordinary weekday always comes)."""
        while not self.is_working_day(d):
            d += _ONE_DAY
        return d

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after start; the start day itself is not counted (17号 第38条)."""
        if n < 0:
            raise ValueError("a number of working days cannot be negative")
        d = start
        while n:
            d += _ONE_DAY
            if self.is_working_day(d):
                n -= 1
        return d


# --- chinesecalendar, the seed -----------------------------------------------------------------


def known_years() -> set[int]:
    """The years chinesecalendar has data for: it raises NotImplementedError for the others
    (it supports at most 1900–2100)."""
    years = set()
    for year in range(1900, 2101):
        try:
            chinese_calendar.is_workday(date(year, 1, 1))
        except NotImplementedError:
            continue
        years.add(year)
    return years


def _chinese_name(english: str) -> str:
    try:
        return chinese_calendar.Holiday(english).chinese
    except ValueError:  # a name newer than the enum: keep it as given
        return english


def seed_days(years: Iterable[int]) -> list[CalendarDay]:
    """The exceptions chinesecalendar knows for these years: weekday holidays and working weekend
    days. Holidays falling on a weekend change nothing and are left out."""
    wanted = set(years)
    unknown = wanted - known_years()
    if unknown:
        raise ValueError(f"chinesecalendar has no data for {sorted(unknown)}")
    holidays = [
        CalendarDay(d, "holiday", _chinese_name(name))
        for d, name in chinese_calendar.holidays.items()
        if d.year in wanted and not _is_weekend(d)
    ]
    workdays = [
        CalendarDay(d, "workday", _chinese_name(name))
        for d, name in chinese_calendar.workdays.items()
        if d.year in wanted and _is_weekend(d)
    ]
    return sorted(holidays + workdays, key=lambda d: d.day)


# --- the administrator's import ----------------------------------------------------------------


def parse_csv(text: str) -> tuple[list[CalendarDay], set[int]]:
    """Read an administrator's calendar file.

    Header `date,kind,name`; then one row per exception, `2027-10-09,workday,国庆节` (kind is
    holiday or workday, dates ISO), and `2027,complete,` to say the file lists every exception of
    2027 so that year counts as covered. Blank lines are skipped. Holidays may be listed on a
    weekend (notices list whole spans); a workday on a weekday is refused as a likely typo.
    """
    reader = csv.reader(text.removeprefix("\ufeff").splitlines())
    header = next(reader, None)
    if header is None or [cell.strip().lower() for cell in header] != CSV_HEADER:
        raise CalendarImportError(1, "the first line must be the header date,kind,name")
    days: dict[date, tuple[int, CalendarDay]] = {}
    years: set[int] = set()
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_HEADER):
            raise CalendarImportError(line, f"expected 3 columns (date,kind,name), got {len(row)}")
        when, kind, name = (cell.strip() for cell in row)
        if kind == YEAR_COMPLETE:
            if not _YEAR.fullmatch(when):
                raise CalendarImportError(line, f"{when!r} is not a year like 2027")
            years.add(int(when))
            continue
        if not _is_day_kind(kind):
            raise CalendarImportError(line, f"kind {kind!r} is not holiday, workday or complete")
        day = _parse_day(line, when)
        if kind == "workday" and not _is_weekend(day):
            raise CalendarImportError(line, f"{day} is a weekday, a working day already")
        if len(name) > NAME_LENGTH:
            raise CalendarImportError(line, f"name longer than {NAME_LENGTH} characters")
        if day in days:
            raise CalendarImportError(line, f"{day} is already given on line {days[day][0]}")
        days[day] = (line, CalendarDay(day, kind, name))
    return sorted((d for _, d in days.values()), key=lambda d: d.day), years


def _parse_day(line: int, text: str) -> date:
    if _ISO_DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise CalendarImportError(line, f"{text!r} is not a date like 2027-10-01")


# --- persistence -------------------------------------------------------------------------------


# Calendars as loaded, by database and version: every page with a deadline needs one, and it
# changes only when years are imported (store_days marks them with the time of the import) or
# taken out (their count changes). A calendar is only read once made.
_LOADED: dict[tuple[str, int, object], HolidayCalendar] = {}
_LOADED_KEPT = 16


def load_calendar(session: Session) -> HolidayCalendar:
    """The stored calendar: read again only when its years changed (one small query)."""
    count, latest = session.execute(
        select(func.count(), func.max(CalendarYear.imported_at))).one()
    key = (str(session.connection().engine.url), int(count), latest)
    found = _LOADED.get(key)
    if found is None:
        days = [
            CalendarDay(row.day, cast(DayKind, row.kind), row.name)  # CHECK (kind IN …) holds it
            for row in session.scalars(select(Holiday))
        ]
        found = HolidayCalendar(days, session.scalars(select(CalendarYear.year)))
        if len(_LOADED) >= _LOADED_KEPT:
            _LOADED.clear()
        _LOADED[key] = found
    return found


def store_days(
    session: Session, days: Iterable[CalendarDay], years: Iterable[int], source: str
) -> None:
    """Upsert: each given day replaces the stored row for that day; the years are marked covered
    by this source. The caller commits (and writes the audit event in the same transaction)."""
    for day in {d.day: d for d in days}.values():
        session.merge(Holiday(day=day.day, kind=day.kind, name=day.name))
    for year in set(years):
        session.merge(CalendarYear(year=year, source=source, imported_at=utcnow()))
    session.flush()


def seed_calendar(session: Session) -> set[int]:
    """Store the years chinesecalendar knows that are not covered yet; returns those years.
    Years already covered (perhaps corrected by the administrator) are left alone."""
    covered = set(session.scalars(select(CalendarYear.year)))
    years = known_years() - covered
    if years:
        source = f"chinesecalendar {chinese_calendar.__version__}"
        store_days(session, seed_days(years), years, source)
    return years
