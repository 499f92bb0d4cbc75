"""The officers' queue: one page of the tips an officer may see, filtered and sorted, by
plaintext metadata only (no ciphertext is loaded, nothing is decrypted), with keyset
pagination; the open tips per category; and which filter values are not among the choices.

A key holder's first page also computes the blind indexes of tips filed since
(tip_actions.index_pending), the only moment a key is at hand to do it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, defer

from models import Category, Channel, Language, Tip, TipCount, TipStatus, Unit
from models.base import utcnow
from portal.intake.filing import COUNTIES
from portal.security.access import Principal, tip_filter
from portal.triage.tip_actions import Refused, index_pending
from referral.calendar import PREFECTURE_ZONE, HolidayCalendar, load_calendar
from referral.deadlines import Deadline, DeadlineState, state_of

PAGE_SIZE = 50
OPEN_STATUSES = (TipStatus.RECEIVED, TipStatus.ACCEPTED, TipStatus.VERIFYING)
DEADLINE_FILTERS = ("due_soon", "overdue")
SORTS = ("received", "deadline", "priority")

@dataclass
class QueueFilter:
    status: str | None = None
    category: str | None = None  # a code, or "unclassified"
    county: str | None = None  # a unit code, or "unknown"
    channel: str | None = None
    language: str | None = None  # zh, ko, en, or "unknown" (tips filed before it was kept)
    received_from: date | None = None
    received_to: date | None = None
    real_name: bool | None = None
    has_attachments: bool | None = None
    deadline: str | None = None  # "due_soon" | "overdue"
    sort: str = "received"  # received | deadline | priority
    cursor: str | None = None


@dataclass(frozen=True)
class QueueRow:
    id: int
    status: str
    unit_code: str
    county: str | None
    category_code: str | None
    channel: str
    language: str | None
    priority: int
    real_name: bool
    attachment_count: int
    received_at: datetime
    due_at: datetime | None
    due_step: str | None
    due_certain: bool
    deadline_state: str | None
    assigned_to_id: int | None
    # its content destroyed under the retention rule (portal/operations/retention.py)
    archived: bool = False


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None


def _local_day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=PREFECTURE_ZONE)


def due_soon_limit(now: datetime, calendar: HolidayCalendar) -> datetime:
    """The end of the next working day, local time: 'due within one working day'."""
    today = now.astimezone(PREFECTURE_ZONE).date()
    next_day = calendar.next_working_day(today + timedelta(days=1))
    return _local_day_start(next_day + timedelta(days=1))


def _encode_cursor(values: list[object]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[object]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise Refused("bad_cursor") from exc
    if not isinstance(values, list):
        raise Refused("bad_cursor")
    try:
        return [datetime.fromisoformat(v) if isinstance(v, str) and "T" in v else v
                for v in values]
    except ValueError as exc:  # "2026-01-01T99": no time
        raise Refused("bad_cursor") from exc


def _filtered(query: Select, principal: Principal, filters: QueueFilter, now: datetime,
              calendar: HolidayCalendar) -> Select:
    query = query.where(tip_filter(principal))
    if filters.status:
        query = query.where(Tip.status == filters.status)
    if filters.category == "unclassified":
        query = query.where(Tip.category_id.is_(None))
    elif filters.category:
        ids = select(Category.id).where(Category.code == filters.category)
        query = query.where(Tip.category_id.in_(ids))
    if filters.county == "unknown":
        query = query.where(Tip.county.is_(None))
    elif filters.county:
        query = query.where(Tip.county == filters.county)
    if filters.channel:
        query = query.where(Tip.channel == filters.channel)
    if filters.language == "unknown":
        query = query.where(Tip.language.is_(None))
    elif filters.language:
        query = query.where(Tip.language == filters.language)
    if filters.received_from:
        query = query.where(Tip.received_at >= _local_day_start(filters.received_from))
    if filters.received_to:
        query = query.where(
            Tip.received_at < _local_day_start(filters.received_to + timedelta(days=1)))
    if filters.real_name is not None:
        query = query.where(Tip.real_name.is_(filters.real_name))
    if filters.has_attachments is not None:
        query = query.where(Tip.attachment_count > 0 if filters.has_attachments
                            else Tip.attachment_count == 0)
    if filters.deadline == "overdue":
        query = query.where(Tip.due_at < now)
    elif filters.deadline == "due_soon":
        query = query.where(Tip.due_at >= now, Tip.due_at < due_soon_limit(now, calendar))
    return query


def queue(session: Session, principal: Principal, filters: QueueFilter,
          now: datetime | None = None, limit: int = PAGE_SIZE,
          calendar: HolidayCalendar | None = None) -> QueuePage:
    """One page of the officer's queue, newest first (or by deadline, or by priority), with
    keyset pagination: the cursor carries the last row's sort keys."""
    now = now or utcnow()
    calendar = calendar or load_calendar(session)
    if not principal.units_for("tip.view"):
        return QueuePage([], None)
    # Metadata only: the ciphertext and the receipt's columns are not even loaded.
    query = _filtered(select(Tip, Unit.code, Category.code)
                      .options(defer(Tip.content), defer(Tip.receipt_lookup),
                               defer(Tip.receipt_recipient), defer(Tip.responsible_index),
                               defer(Tip.place_index), defer(Tip.submission_hash))
                      .join(Unit, Unit.id == Tip.unit_id)
                      .outerjoin(Category, Category.id == Tip.category_id),
                      principal, filters, now, calendar)
    after = _decode_cursor(filters.cursor) if filters.cursor else None
    # The cursor names the last row shown by the keys of its sort: anything else is no cursor.
    shape = (int, datetime, int) if filters.sort == "priority" else (datetime, int)
    if after is not None and (len(after) != len(shape) or not all(
            isinstance(v, t) and not isinstance(v, bool)
            and not (isinstance(v, int) and abs(v) >= 2**31)
            for v, t in zip(after, shape, strict=True))):
        raise Refused("bad_cursor")
    if filters.sort == "deadline":
        query = query.where(Tip.due_at.is_not(None))
        if after:
            query = query.where(or_(Tip.due_at > after[0],
                                    and_(Tip.due_at == after[0], Tip.id > after[1])))
        query = query.order_by(Tip.due_at.asc(), Tip.id.asc())
    elif filters.sort == "priority":
        if after:
            query = query.where(or_(
                Tip.priority < after[0],
                and_(Tip.priority == after[0], Tip.received_at < after[1]),
                and_(Tip.priority == after[0], Tip.received_at == after[1], Tip.id < after[2])))
        query = query.order_by(Tip.priority.desc(), Tip.received_at.desc(), Tip.id.desc())
    else:
        if after:
            query = query.where(or_(Tip.received_at < after[0],
                                    and_(Tip.received_at == after[0], Tip.id < after[1])))
        query = query.order_by(Tip.received_at.desc(), Tip.id.desc())
    results = session.execute(query.limit(limit + 1)).all()
    rows = []
    for tip, unit_code, category_code in results[:limit]:
        state = None
        if tip.due_at is not None and tip.status in OPEN_STATUSES:
            state = deadline_state(tip, now, calendar)
        rows.append(QueueRow(tip.id, tip.status, unit_code, tip.county, category_code,
                             tip.channel, tip.language, tip.priority, tip.real_name,
                             tip.attachment_count, tip.received_at, tip.due_at, tip.due_step,
                             tip.due_certain, state, tip.assigned_to_id,
                             tip.archived_at is not None))
    next_cursor = None
    if len(results) > limit:
        last = results[limit - 1][0]
        keys: list[object] = {"deadline": [last.due_at, last.id],
                              "priority": [last.priority, last.received_at, last.id]
                              }.get(filters.sort, [last.received_at, last.id])
        next_cursor = _encode_cursor(keys)
    if filters.cursor is None:
        index_pending(session, principal)
    return QueuePage(rows, next_cursor)


def filter_errors(session: Session, filters: QueueFilter) -> dict[str, str]:
    """The filters whose value is not one of the choices (a hand-edited link), by field name,
    with an error code: the caller shows the error instead of an empty or wrong list."""
    errors = {}
    if filters.status and filters.status not in tuple(TipStatus):
        errors["status"] = "not_a_choice"
    if filters.category and filters.category != "unclassified" and session.scalar(
            select(Category.id).where(Category.code == filters.category).limit(1)) is None:
        errors["category"] = "unknown_category"
    if filters.county and filters.county not in (*COUNTIES, "unknown"):
        errors["county"] = "unknown_county"
    if filters.channel and filters.channel not in tuple(Channel):
        errors["channel"] = "unknown_channel"
    if filters.language and filters.language not in (*tuple(Language), "unknown"):
        errors["language"] = "unknown_language"
    if filters.deadline and filters.deadline not in DEADLINE_FILTERS:
        errors["deadline"] = "not_a_choice"
    if filters.sort not in SORTS:
        errors["sort"] = "not_a_choice"
    return errors


def category_counts(session: Session, principal: Principal) -> dict[str | None, int]:
    """Open tips per category code (None: unclassified), for the queue's summary: from the
    counts kept with every change (models/tip_count.py), not from the rows."""
    units = principal.units_for("tip.view")
    if not units:
        return {}
    total = func.sum(TipCount.n)
    rows = session.execute(
        select(Category.code, total)
        .select_from(TipCount).outerjoin(Category, Category.id == TipCount.category_id)
        .where(TipCount.unit_id.in_(sorted(units)),
               TipCount.status.in_(sorted(OPEN_STATUSES)))
        .group_by(Category.code).having(total > 0))
    return {code: int(n) for code, n in rows.all()}


def deadline_state(tip: Tip, now: datetime, calendar: HolidayCalendar) -> str | None:
    """How the tip stands against its deadline; None when it has none."""
    if tip.due_at is None:
        return None
    deadline = Deadline(step=tip.due_step or "", started_at=tip.received_at,
                        due_at=tip.due_at, certain=tip.due_certain, basis="")
    state: DeadlineState = state_of(deadline, now, calendar)
    return state.value
