"""The reporter identity keys (custodians, 信息保密员) on the "Unit keys" page.

Each handling unit has two keys: its reports key (Unit.public_key), which its officers hold,
and its reporter identity key (Unit.identity_key), which only its confirmed custodians hold. A
custodian who holds it hands it to another custodian of the unit; anyone who may act here can
hand it on from the unit's printed custodian recovery key; an administrator or a custodian of
the unit can revoke it. Thin: the rules are in portal/security/custody.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext
from sqlalchemy import select

from auditlog.events import Actor
from models import HANDLING_KINDS, KeyPurpose, Role, Unit, UnitKeyGrant, User
from portal.security import access, custody
from portal.web import choices, row_id
from portal.web.extensions import db
from portal.web.http import current_lang
from portal.web.session import Caller
from portal.web.staff.forms import GrantForm

PREFIX = "identity"


def custodian_units(caller: Caller) -> set[int]:
    """The units where this person is a confirmed custodian."""
    return caller.principal.units_holding({Role.CUSTODIAN})


def identity_units(caller: Caller) -> list[Unit]:
    """The handling units whose reporter identity key this person may hand on here: where they
    are a custodian (from the key they hold), and — with the printed custodian recovery key —
    the units whose reports key they may hand on (an administrator: every handling unit)."""
    principal = caller.principal
    handling = [k.value for k in HANDLING_KINDS]
    keyed = list(db.session.scalars(select(Unit).where(
        Unit.kind.in_(handling), Unit.identity_key.is_not(None)).order_by(Unit.id)))
    wanted = custodian_units(caller) | principal.key_units({u.id for u in keyed})
    return [unit for unit in keyed if unit.id in wanted]


@dataclass
class IdentityKeys:
    form: GrantForm
    units: list[Unit]
    grants: list[UnitKeyGrant]
    may_revoke: set[int]  # unit ids whose identity key grants this person may revoke
    missing: list[str]  # names of the units where the person is custodian and holds no key


def identity_form(units: list[Unit]) -> GrantForm:
    form = GrantForm(prefix=PREFIX)
    lang = current_lang()
    form.unit.choices = choices([(u.code, u.name(lang)) for u in units])
    members = custody.key_members(db.session(), {u.id for u in units}, KeyPurpose.IDENTITY)
    form.user_id.label.text = gettext("Custodian who receives the key")
    form.user_id.choices = choices([(str(user.id), f"{user.display_name or user.username} — "
                                     f"{unit.name(lang)}") for user, unit in members])
    form.recovery_key.label.text = gettext(
        "Custodian recovery key (only to hand on without holding the key)")
    return form


def page_data(caller: Caller) -> IdentityKeys:
    units = identity_units(caller)
    lang = current_lang()
    ids = sorted({u.id for u in units})
    grants = list(db.session.scalars(select(UnitKeyGrant).where(
        UnitKeyGrant.unit_id.in_(ids), UnitKeyGrant.revoked_at.is_(None),
        UnitKeyGrant.purpose == KeyPurpose.IDENTITY.value)
        .order_by(UnitKeyGrant.unit_id, UnitKeyGrant.granted_at)))
    mine = custodian_units(caller)
    held = {g.unit_id for g in custody.active_grants(db.session(), caller.user.id,
                                                     KeyPurpose.IDENTITY)}
    names = {u.id: u.name(lang) for u in db.session.scalars(select(Unit))}
    may_revoke = set(ids) if caller.principal.is_admin else mine & set(ids)
    return IdentityKeys(identity_form(units), units, grants, may_revoke,
                        [names[u] for u in sorted(mine - held) if u in names])


def _back() -> Any:
    return redirect(url_for("staff.keys")), 303


def handle_post(caller: Caller) -> Any:
    """Hand on or revoke a reporter identity key (the form posted with purpose=identity)."""
    units = identity_units(caller)
    lang = current_lang()
    if request.form.get("action") == "revoke":
        return _revoke(caller, units)
    form = identity_form(units)
    unit = next((u for u in units if u.code == form.unit.data), None)
    user_id = form.user_id.data or ""
    grantee = db.session.get(User, row_id(user_id)) if row_id(user_id) else None
    if unit is None or grantee is None:
        flash(gettext("Choose a unit and a colleague from the lists."), "error")
        return _back()
    name = grantee.display_name or grantee.username
    recovery = form.recovery_key.data or ""
    actor = Actor("staff", caller.user.id, access.custody_role(caller.principal, unit.id))
    try:
        held = ({} if recovery.strip() else
                custody.held_identity_keys(db.session(), caller.user, caller.session.identity))
        custody.hand_on(db.session(), unit, grantee, granter=caller.user,
                        granter_identities=held, recovery_text=recovery, actor=actor,
                        purpose=KeyPurpose.IDENTITY)
    except custody.NotKeyMember:
        db.session.rollback()
        flash(gettext("%(name)s is not a confirmed custodian of %(unit)s, so cannot hold its "
                      "reporter identity key.", name=name, unit=unit.name(lang)), "error")
        return _back()
    except custody.NotHolder:
        db.session.rollback()
        flash(gettext("You do not hold the reporter identity key of %(unit)s, so you cannot "
                      "hand it on. Paste its custodian recovery key, or ask a custodian who "
                      "holds it.", unit=unit.name(lang)), "error")
        return _back()
    except custody.WrongRecoveryKey:
        db.session.rollback()
        flash(gettext("That is not the custodian recovery key of %(unit)s.",
                      unit=unit.name(lang)), "error")
        return _back()
    db.session.commit()
    flash(gettext("%(name)s now holds the reporter identity key of %(unit)s.", name=name,
                  unit=unit.name(lang)))
    return _back()


def _revoke(caller: Caller, units: list[Unit]) -> Any:
    number = row_id(request.form.get("grant_id", ""))
    grant_row = db.session.get(UnitKeyGrant, number) if number else None
    allowed = {u.id for u in units}
    if not caller.principal.is_admin:
        allowed &= custodian_units(caller)
    if (grant_row is None or grant_row.revoked_at is not None
            or grant_row.purpose != KeyPurpose.IDENTITY.value
            or grant_row.unit_id not in allowed):
        flash(gettext("This key is no longer held, or you cannot revoke it."), "error")
        return _back()
    holder = db.session.get(User, grant_row.user_id)
    unit = db.session.get(Unit, grant_row.unit_id)
    custody.revoke(db.session(), grant_row, actor=Actor(
        "staff", caller.user.id, access.custody_role(caller.principal, grant_row.unit_id)))
    db.session.commit()
    flash(gettext("%(name)s no longer holds the reporter identity key of %(unit)s.",
                  name=(holder.display_name or holder.username) if holder else "—",
                  unit=unit.name(current_lang()) if unit else "—"))
    return _back()
