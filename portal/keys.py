"""Who holds which key: install secrets, unit keys made at setup, and which recipients a tip is
sealed to."""

from __future__ import annotations

import os

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import HANDLING_KINDS, RECEIVING_KINDS, InstallSecret, Tip, Unit
from portal import crypto
from portal.audit import SYSTEM, Actor, record

BUREAU_CODE = "zhou"  # 州本级: every tip is also sealed to it


class NotSetUp(Exception):
    """The units have no keys yet: nothing can be sealed until setup has run."""


def install_secret(session: Session, name: str) -> bytes:
    """A random per-installation value, created on first use (safe with several servers)."""
    existing = session.get(InstallSecret, name)
    if existing is not None:
        return existing.value
    try:
        with session.begin_nested():
            session.add(InstallSecret(name=name, value=os.urandom(32)))
    except IntegrityError:
        pass  # another server made it first; read theirs
    return session.execute(
        select(InstallSecret.value).where(InstallSecret.name == name)
    ).scalar_one()


def generate_unit_keys(session: Session, actor: Actor = SYSTEM) -> dict[str, crypto.AgeIdentity]:
    """Give every handling unit and receiving body without a key a fresh key pair; return the
    identities once, for the recovery printout. The identities are not kept."""
    made: dict[str, crypto.AgeIdentity] = {}
    kinds = [k.value for k in (*HANDLING_KINDS, *RECEIVING_KINDS)]
    units = session.scalars(select(Unit).where(Unit.kind.in_(kinds)).order_by(Unit.id))
    for unit in units:
        if unit.public_key:
            continue
        pair = crypto.generate_keypair()
        unit.public_key = pair.recipient
        made[unit.code] = pair.identity
        record(session, actor, "unit_key.created", object_type="unit", object_id=unit.id,
               unit_code=unit.code)
    return made


def routing_unit(session: Session, county: str | None) -> Unit:
    """The handling unit for a tip: the county where the problem is, else 州本级."""
    code = county or BUREAU_CODE
    unit = session.scalars(select(Unit).where(Unit.code == code)).one()
    return unit


def unit_recipients(session: Session, unit: Unit) -> list[str]:
    """The recipients that content for `unit` is sealed to: the unit and 州本级, which sees all."""
    bureau = session.scalars(select(Unit).where(Unit.code == BUREAU_CODE)).one()
    keys = [unit.public_key] if unit.id == bureau.id else [unit.public_key, bureau.public_key]
    if any(k is None for k in keys):
        raise NotSetUp("unit keys have not been generated")
    return [k for k in keys if k]


def tip_recipients(session: Session, tip: Tip) -> list[str]:
    return [*unit_recipients(session, tip.unit), tip.receipt_recipient]
