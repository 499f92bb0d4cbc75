"""Editing the 17 categories: an edit adds a version; tips keep the version they were filed or
classified under."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditlog.events import Actor, record
from models import Category, Offence, UnitKind

LANGS = ("zh", "ko", "en")


def generation(session: Session) -> tuple[int, int]:
    """What changes whenever the current categories do (an edit adds a version, with a new id):
    a page made from them can be kept until this changes. One small query."""
    row = session.execute(select(func.coalesce(func.max(Category.id), 0), func.count())
                          .select_from(Category).where(Category.current.is_(True))).one()
    return int(row[0]), int(row[1])


class CategoryRejected(ValueError):
    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


@dataclass(frozen=True)
class CategoryEdit:
    names: dict[str, str]
    descriptions: dict[str, str]
    usual_receiver: str | None


def edit_category(session: Session, code: str, edit: CategoryEdit, *, actor: Actor) -> Category:
    current = session.scalar(select(Category).where(Category.code == code,
                                                    Category.current.is_(True)))
    if current is None:
        raise CategoryRejected("code", "unknown_category")
    for lang in LANGS:
        if not edit.names.get(lang, "").strip():
            raise CategoryRejected(f"name_{lang}", "required")
    if edit.usual_receiver and edit.usual_receiver not in {k.value for k in UnitKind}:
        raise CategoryRejected("usual_receiver", "bad_value")
    latest = session.scalar(select(func.max(Category.version)).where(Category.code == code)) or 0
    current.current = False
    new = Category(
        code=code, version=latest + 1, current=True, scope=current.scope,
        sort_order=current.sort_order, usual_receiver=edit.usual_receiver,
        name_zh=edit.names["zh"].strip(), name_ko=edit.names["ko"].strip(),
        name_en=edit.names["en"].strip(),
        description_zh=edit.descriptions.get("zh", "").strip(),
        description_ko=edit.descriptions.get("ko", "").strip(),
        description_en=edit.descriptions.get("en", "").strip(),
        retention_days=current.retention_days,  # a new wording keeps the retention period
    )
    session.add(new)
    session.flush()
    record(session, actor, "category.edited", object_type="category", object_id=new.id,
           code=code, version=new.version)
    return new


def set_retention(session: Session, code: str, days: int | None, *, actor: Actor) -> Category:
    """How long closed tips of a category are kept (portal/operations/retention.py), in natural
    days from
    closing, 1 to 36,500; None keeps them for ever. Set on the current version (the one that
    decides) without a new version: the category's wording does not change. Audited."""
    from portal.operations.retention import MAX_DAYS, MIN_DAYS

    current = session.scalar(select(Category).where(Category.code == code,
                                                    Category.current.is_(True)))
    if current is None:
        raise CategoryRejected("code", "unknown_category")
    if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
        raise CategoryRejected("retention", "bad_value")
    previous = current.retention_days
    current.retention_days = days
    session.flush()
    record(session, actor, "category.retention_set", object_type="category",
           object_id=current.id, category=code, retention_days=days,
           previous_days=previous)
    return current


def save_offence(session: Session, code: str, names: dict[str, str], basis: str, active: bool,
                 *, actor: Actor) -> Offence:
    """Add or edit a suspected offence of the list cases choose from."""
    code = code.strip().lower()
    if len(code) > 24:  # the column's length (models/case.py Offence.code)
        raise CategoryRejected("offence", "too_long")
    if not code or not all(names.get(lang, "").strip() for lang in LANGS) or not basis.strip():
        raise CategoryRejected("offence", "required")
    # The columns' lengths (models/case.py Offence): longer text is refused, not truncated.
    if (len(names.get("zh", "").strip()) > 80 or len(basis.strip()) > 120
            or any(len(names.get(lang, "").strip()) > 120 for lang in LANGS)):
        raise CategoryRejected("offence", "too_long")
    offence = session.scalar(select(Offence).where(Offence.code == code))
    if offence is None:
        offence = Offence(code=code)
        session.add(offence)
    offence.name_zh, offence.name_ko, offence.name_en = (names[lang].strip() for lang in LANGS)
    offence.basis, offence.active = basis.strip(), active
    session.flush()
    record(session, actor, "offence.saved", object_type="offence", object_id=offence.id,
           code=code, active=active)
    return offence


def import_calendar(session: Session, csv_text: str, *, actor: Actor) -> set[int]:
    """An administrator's holiday-calendar import (referral/calendar.py parse_csv format);
    returns the years marked complete. Raises CalendarImportError naming the bad line."""
    from referral.calendar import parse_csv, store_days

    days, years = parse_csv(csv_text)
    store_days(session, days, years, "import")
    record(session, actor, "calendar.imported", days=len(days),
           years=",".join(str(y) for y in sorted(years))[:64])
    return years
