"""What an administrator should act on, shown on their home page (and by `flask calendar-check`).

Flask-free: the caller passes the session and today's date, so a test can set the day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import HANDLING_KINDS, CalendarYear, KeyPurpose, Membership, Role, Unit, UnitKeyGrant
from portal.security.access import KEY_ROLES

# From 1 November the next year's deadlines begin to matter (a 60-day period started then ends in
# January), and the State Council usually publishes the next year's holidays in late autumn.
NEXT_YEAR_WARNING_FROM = (11, 1)


@dataclass(frozen=True)
class AdminWarning:
    # "calendar_missing" | "unit_without_key_holder" | "custodian_keys_missing" |
    # "unit_without_custodian_key"
    kind: str
    year: int | None = None
    unit: Unit | None = None


def missing_calendar_years(session: Session, today: date) -> list[int]:
    """Years without holiday data that deadlines already reach: this year always, and next year
    from 1 November (every deadline that reaches it is uncertain)."""
    covered = set(session.scalars(select(CalendarYear.year)))
    wanted = [today.year]
    if (today.month, today.day) >= NEXT_YEAR_WARNING_FROM:
        wanted.append(today.year + 1)
    return [year for year in wanted if year not in covered]


def units_without_key_holder(session: Session) -> list[Unit]:
    """Units with officers or liaisons of their own, none of whom holds the unit's key: nobody
    there can open anything until the unit's recovery key grants it."""
    staffed = set(session.scalars(select(Membership.unit_id).where(
        Membership.role.in_(sorted(KEY_ROLES)))))
    held = set(session.scalars(select(UnitKeyGrant.unit_id).where(
        UnitKeyGrant.revoked_at.is_(None), UnitKeyGrant.purpose == KeyPurpose.CONTENT.value)))
    missing = sorted(staffed - held)
    if not missing:
        return []
    return list(session.scalars(select(Unit).where(Unit.id.in_(missing)).order_by(Unit.id)))


def units_without_custodian_key(session: Session) -> list[Unit]:
    """Handling units with officers of their own (as units_without_key_holder counts them) and
    a custodian key, where no confirmed, active custodian holds that key: a real-name reporter's
    identity there can be opened by nobody but 州本级's custodians and the printed custodian
    recovery key (identity requests of the unit wait)."""
    from models import User

    handling = [k.value for k in HANDLING_KINDS]
    staffed = set(session.scalars(select(Membership.unit_id).where(
        Membership.role.in_(sorted(KEY_ROLES)))))
    units = list(session.scalars(select(Unit).where(
        Unit.kind.in_(handling), Unit.active.is_(True), Unit.identity_key.is_not(None),
        Unit.id.in_(sorted(staffed))).order_by(Unit.id)))
    holders = set(session.execute(
        select(UnitKeyGrant.unit_id).join(User, User.id == UnitKeyGrant.user_id)
        .join(Membership, (Membership.user_id == UnitKeyGrant.user_id)
              & (Membership.unit_id == UnitKeyGrant.unit_id))
        .where(UnitKeyGrant.revoked_at.is_(None),
               UnitKeyGrant.purpose == KeyPurpose.IDENTITY.value,
               Membership.role == Role.CUSTODIAN.value, Membership.confirmed_at.is_not(None),
               User.active.is_(True))).scalars())
    return [unit for unit in units if unit.id not in holders]


def custodian_keys_missing(session: Session) -> bool:
    """Whether a handling unit with a unit key lacks its custodian key (an installation set up
    before custodians existed): real-name tips cannot be filed until `flask identities keys`."""
    handling = [k.value for k in HANDLING_KINDS]
    return session.scalar(select(Unit.id).where(
        Unit.kind.in_(handling), Unit.public_key.is_not(None), Unit.identity_key.is_(None))
        .limit(1)) is not None


def admin_warnings(session: Session, today: date) -> list[AdminWarning]:
    return ([AdminWarning("calendar_missing", year=y)
             for y in missing_calendar_years(session, today)]
            + [AdminWarning("unit_without_key_holder", unit=u)
               for u in units_without_key_holder(session)]
            + ([AdminWarning("custodian_keys_missing")] if custodian_keys_missing(session)
               else [])
            + [AdminWarning("unit_without_custodian_key", unit=u)
               for u in units_without_custodian_key(session)])
