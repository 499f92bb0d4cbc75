"""Who works tips in a unit (portal/security/access.py officers_of): the one query behind assigning
a tip,
the case team (专案组) and the pickers. A deactivated account or a role still waiting for its
second confirmation is nobody's colleague."""

from __future__ import annotations

from sqlalchemy import select

from models import Membership, Role, Unit, User
from models.base import utcnow
from portal.security.access import officers_of
from portal.triage import tip_actions
from portal.web.extensions import db


def _unit(code: str) -> Unit:
    return db.session.scalars(select(Unit).where(Unit.code == code)).one()


def _person(name: str, unit: Unit, role: Role, *, active: bool = True,
            confirmed: bool = True) -> User:
    user = User(username=name, display_name=name, password_hash="-", public_key="-",
                wrapped_identity=b"-", active=active)
    db.session.add(user)
    db.session.flush()
    db.session.add(Membership(user_id=user.id, unit_id=unit.id, role=role,
                              confirmed_at=utcnow() if confirmed else None))
    db.session.flush()
    return user


def test_only_active_confirmed_officers_of_the_unit(app) -> None:
    yanji, hunchun = _unit("yanji"), _unit("hunchun")
    _person("o-active", yanji, Role.CASE_OFFICER)
    _person("o-head", yanji, Role.HEAD)
    _person("o-gone", yanji, Role.INTAKE_OFFICER, active=False)
    _person("o-waiting", yanji, Role.CASE_OFFICER, confirmed=False)
    _person("o-custodian", yanji, Role.CUSTODIAN)
    _person("o-elsewhere", hunchun, Role.CASE_OFFICER)

    found = officers_of(db.session, {yanji.id, None})
    assert sorted((u.username, unit.code, role) for u, unit, role in found) == [
        ("o-active", "yanji", Role.CASE_OFFICER), ("o-head", "yanji", Role.HEAD)]
    # the assignment picker asks the same question
    assert [u.username for u in tip_actions.staff_of_units(db.session, {yanji.id})] == [
        "o-active", "o-head"]
    assert {u.username for u, _, _ in officers_of(db.session, [yanji.id, hunchun.id])} == {
        "o-active", "o-head", "o-elsewhere"}
