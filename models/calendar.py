"""The holiday calendar the administrator maintains: exceptions to the ordinary week, and the
years for which that list is complete (a year not listed here is flagged as uncertain)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Holiday(Base):
    """A holiday on a weekday, or a working weekend day (调休); ordinary weekends are not stored."""

    __tablename__ = "holidays"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "holiday" | "workday"
    name: Mapped[str] = mapped_column(String(80), default="")


class CalendarYear(Base):
    """A year whose holidays and working weekends are all in `holidays`."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(40))  # "chinesecalendar 1.11.0" | "import"
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
