"""The holiday calendar: seeding from chinesecalendar, working days across 调休, the
administrator's CSV import, uncovered years, and the round trip through the database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import chinese_calendar
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models.base import Base
from models.calendar import CalendarYear, Holiday
from referral.calendar import (
    CalendarDay,
    CalendarImportError,
    HolidayCalendar,
    known_years,
    load_calendar,
    parse_csv,
    seed_calendar,
    seed_days,
    store_days,
)

NATIONAL_DAY_2026 = [date(2026, 10, d) for d in range(1, 8)]


@pytest.fixture
def seeded_2026() -> HolidayCalendar:
    return HolidayCalendar(seed_days({2026}), {2026})


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine, tables=[Holiday.__table__, CalendarYear.__table__])
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_known_years_are_those_chinesecalendar_has_data_for() -> None:
    years = known_years()
    assert {2004, 2025, 2026} <= years
    assert 2003 not in years
    assert max(years) + 1 not in years
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(max(years) + 1, 1, 1))
    with pytest.raises(ValueError, match="no data"):
        seed_days({max(years) + 1})


def test_seed_has_weekday_holidays_and_working_weekends_only() -> None:
    days = {d.day: d for d in seed_days({2026})}
    # National Day 10-01..07: the weekdays are stored; Sat 10-03 and Sun 10-04 are weekends anyway.
    for day in NATIONAL_DAY_2026:
        if day.weekday() < 5:
            assert days[day].kind == "holiday"
            assert days[day].name == "国庆节"
        else:
            assert day not in days
    assert days[date(2026, 9, 25)].kind == "holiday"  # Mid-Autumn, a Friday
    assert days[date(2026, 9, 20)].kind == "workday"  # Sunday worked for National Day
    assert days[date(2026, 10, 10)].kind == "workday"  # Saturday worked for National Day
    assert all(
        (d.kind == "holiday") == (d.day.weekday() < 5) and d.day.year == 2026 for d in days.values()
    )
    assert date(2026, 9, 19) not in days  # an ordinary Saturday is not stored


def test_is_working_day_across_national_day(seeded_2026: HolidayCalendar) -> None:
    cal = seeded_2026
    assert cal.is_working_day(date(2026, 9, 20))  # 调休 Sunday
    assert not cal.is_working_day(date(2026, 9, 19))  # ordinary Saturday
    assert not cal.is_working_day(date(2026, 9, 25))  # Mid-Autumn Friday
    assert all(not cal.is_working_day(day) for day in NATIONAL_DAY_2026)
    assert cal.is_working_day(date(2026, 10, 8))
    assert cal.is_working_day(date(2026, 10, 10))  # 调休 Saturday
    assert not cal.is_working_day(date(2026, 10, 11))  # ordinary Sunday
    assert cal.next_working_day(date(2026, 10, 1)) == date(2026, 10, 8)
    assert cal.next_working_day(date(2026, 10, 8)) == date(2026, 10, 8)


def test_add_working_days_across_national_day(seeded_2026: HolidayCalendar) -> None:
    cal = seeded_2026
    # From Wed 09-30 (not counted): 10-01..07 off, then Thu 10-08, Fri 10-09, Sat 10-10 (调休).
    assert cal.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    # From Thu 09-24: Mid-Autumn 09-25..27 off, Mon 09-28, Tue 09-29, Wed 09-30, then 10-08.
    assert cal.add_working_days(date(2026, 9, 24), 4) == date(2026, 10, 8)
    assert cal.add_working_days(date(2026, 9, 30), 0) == date(2026, 9, 30)
    with pytest.raises(ValueError):
        cal.add_working_days(date(2026, 9, 30), -1)


def test_uncovered_year_is_reported(seeded_2026: HolidayCalendar) -> None:
    cal = seeded_2026
    assert cal.covers(2026)
    assert not cal.covers(2027)
    assert not cal.uncertain_between(date(2026, 1, 1), date(2026, 12, 31))
    assert cal.uncertain_between(date(2026, 12, 30), date(2027, 1, 2))
    assert cal.uncertain_between(date(2027, 1, 2), date(2026, 12, 30))  # either order
    assert cal.uncovered_years(date(2026, 6, 1), date(2029, 1, 1)) == [2027, 2028, 2029]
    # An uncovered year falls back to the ordinary week, but the caller is told (above).
    assert cal.is_working_day(date(2027, 1, 1))


GOOD_CSV = """\ufeffdate,kind,name
2027-01-01,holiday,元旦
2027-02-06,workday,春节

2027-10-02,holiday,国庆节
2027,complete,
"""


def test_csv_import() -> None:
    days, years = parse_csv(GOOD_CSV)
    assert days == [
        CalendarDay(date(2027, 1, 1), "holiday", "元旦"),
        CalendarDay(date(2027, 2, 6), "workday", "春节"),  # a Saturday
        CalendarDay(date(2027, 10, 2), "holiday", "国庆节"),  # a Saturday: allowed, harmless
    ]
    assert years == {2027}
    cal = HolidayCalendar(days, years)
    assert cal.covers(2027)
    assert not cal.is_working_day(date(2027, 1, 1))
    assert cal.is_working_day(date(2027, 2, 6))


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", 1, "header"),
        ("day,kind,name\n2027-01-01,holiday,元旦\n", 1, "header"),
        ("date,kind,name\n2027-01-01,holiday,元旦\n2027-13-01,holiday,x\n", 3, "not a date"),
        ("date,kind,name\n20270101,holiday,元旦\n", 2, "not a date"),
        ("date,kind,name\n2027-01-01,holiday\n", 2, "3 columns"),
        ("date,kind,name\n2027-01-01,holdiay,元旦\n", 2, "kind"),
        ("date,kind,name\n2027-01-04,workday,x\n", 2, "weekday"),
        ("date,kind,name\n2027-01-01,holiday,a\n\n2027-01-01,holiday,b\n", 4, "on line 2"),
        ("date,kind,name\n27,complete,\n", 2, "not a year"),
        ("date,kind,name\n2027-01-01,holiday," + "长" * 81 + "\n", 2, "longer"),
    ],
)
def test_csv_import_errors_name_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(CalendarImportError, match=reason) as caught:
        parse_csv(text)
    assert caught.value.line_number == line
    assert str(caught.value).startswith(f"line {line}: ")


def test_seed_and_load_round_trip(session: Session) -> None:
    seeded = seed_calendar(session)
    session.commit()
    assert seeded == known_years()
    assert seed_calendar(session) == set()  # covered years are not seeded again

    cal = load_calendar(session)
    assert cal.covered_years == known_years()
    assert cal.days == seed_days(known_years())
    assert cal.add_working_days(date(2026, 10, 9), 3) == date(2026, 10, 13)
    year = session.get(CalendarYear, 2026)
    assert year is not None
    assert year.source == f"chinesecalendar {chinese_calendar.__version__}"
    assert year.imported_at.tzinfo is not None


def test_store_days_replaces_those_days_and_marks_years(session: Session) -> None:
    store_days(session, seed_days({2026}), {2026}, "chinesecalendar")
    session.commit()
    # The administrator corrects 10-08 to a holiday and imports 2027.
    days, years = parse_csv(
        "date,kind,name\n2026-10-08,holiday,国庆节\n2027-01-01,holiday,元旦\n2027,complete,\n"
    )
    store_days(session, days, years, "import")
    session.commit()

    cal = load_calendar(session)
    assert not cal.is_working_day(date(2026, 10, 8))
    assert cal.next_working_day(date(2026, 10, 1)) == date(2026, 10, 9)
    assert cal.covered_years == {2026, 2027}
    assert session.scalar(select(CalendarYear.source).where(CalendarYear.year == 2027)) == "import"
    assert session.get(Holiday, date(2026, 10, 1)) is not None  # untouched days stay
    assert session.get(Holiday, date(2026, 10, 3)) is None  # weekends never stored
    assert len(cal.days) == len(seed_days({2026})) + 2  # 2026-10-08 and 2027-01-01 added
