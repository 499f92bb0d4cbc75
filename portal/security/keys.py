"""Who holds which key: install secrets, unit keys made at setup, and which recipients a tip is
sealed to."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auditlog.events import SYSTEM, Actor, record
from models import HANDLING_KINDS, RECEIVING_KINDS, InstallSecret, Tip, Unit
from portal.security import crypto

BUREAU_CODE = "zhou"  # 州本级: every tip is also sealed to it


class NotSetUp(Exception):
    """The units have no keys yet: nothing can be sealed until setup has run."""


class KeyNotHeld(Exception):
    """The person may see the thing but has not been granted a key that opens it; `unit` is the
    unit whose key would open it (for the "you hold no key" page), when known."""

    def __init__(self, unit: Unit | None = None) -> None:
        super().__init__(unit.code if unit is not None else "")
        self.unit = unit


def keys_opening(held: Mapping[int, crypto.AgeIdentity], unit_ids: Iterable[int | None], *,
                 unit: Unit | None = None) -> list[crypto.AgeIdentity]:
    """The one key lookup: of the unit keys a person holds (`held`, unit id → identity), those
    of these units, each once and in this order, which is what opens content sealed to them.
    KeyNotHeld (naming `unit`) when there is none, so that no cipher is ever asked to open with
    no key."""
    found = [held[u] for u in dict.fromkeys(unit_ids) if u is not None and u in held]
    if not found:
        raise KeyNotHeld(unit)
    return found


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


@dataclass(frozen=True)
class RecoveryKeys:
    """The keys made by one run of generate_unit_keys, shown once for the recovery printout:
    `content` (unit code → the unit's key, which opens its tips, cases and packages) and
    `custodian` (handling unit code → its custodian (信息保密员) key, which opens only the
    identities of real-name reporters)."""

    content: dict[str, crypto.AgeIdentity] = field(default_factory=dict)
    custodian: dict[str, crypto.AgeIdentity] = field(default_factory=dict)


def generate_unit_keys(session: Session, actor: Actor = SYSTEM) -> RecoveryKeys:
    """Give every handling unit and receiving body without a key a fresh key pair, and every
    handling unit without a custodian key a custodian key pair; return the identities once, for
    the recovery printout. The identities are not kept."""
    made = RecoveryKeys()
    kinds = [k.value for k in (*HANDLING_KINDS, *RECEIVING_KINDS)]
    handling = {k.value for k in HANDLING_KINDS}
    units = session.scalars(select(Unit).where(Unit.kind.in_(kinds)).order_by(Unit.id))
    for unit in units:
        if not unit.public_key:
            pair = crypto.generate_keypair()
            unit.public_key = pair.recipient
            made.content[unit.code] = pair.identity
            record(session, actor, "unit_key.created", object_type="unit", object_id=unit.id,
                   unit_code=unit.code)
        if unit.kind in handling and not unit.identity_key:
            pair = crypto.generate_keypair()
            unit.identity_key = pair.recipient
            made.custodian[unit.code] = pair.identity
            record(session, actor, "identity_key.created", object_type="unit",
                   object_id=unit.id, unit_code=unit.code)
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
