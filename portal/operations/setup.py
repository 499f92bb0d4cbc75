"""First start: the one-time setup link, the first administrator and the units' keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from hashlib import sha256

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditlog.events import SYSTEM, Actor, record
from models import Role, SetupToken
from models.base import utcnow
from portal.intake.filing import make_blind_key
from portal.intake.receipts import Argon2Cost
from portal.security import crypto
from portal.security.accounts import add_membership, administrators_exist, create_user
from portal.security.keys import BUREAU_CODE, generate_unit_keys
from portal.transaction import transaction


class AlreadySetUp(Exception):
    pass


@dataclass(frozen=True)
class SetupResult:
    admin_id: int
    recovery: dict[str, crypto.AgeIdentity]  # unit code → identity, shown once
    # handling unit code → custodian (信息保密员) key, which opens reporters' identities only
    custodian_recovery: dict[str, crypto.AgeIdentity] = field(default_factory=dict)


def _digest(token: str) -> bytes:
    return sha256(token.encode()).digest()


def new_setup_token(session: Session) -> str | None:
    """A fresh one-time token while there is no administrator; None once there is one."""
    if administrators_exist(session):
        return None
    token = secrets.token_urlsafe(32)
    session.add(SetupToken(token_hash=_digest(token)))
    session.commit()
    return token


def token_is_valid(session: Session, token: str) -> bool:
    row = session.scalar(select(SetupToken).where(SetupToken.token_hash == _digest(token)))
    return row is not None and row.used_at is None and not administrators_exist(session)


def complete_setup(session: Session, username: str, password: str, *, wrap_cost: Argon2Cost,
                   login_cost: Argon2Cost, token: str | None = None) -> SetupResult:
    """Create the first administrator, every unit's key pair, every handling unit's custodian
    key pair and the blind-index key (sealed to the handling units' keys), in one transaction.

    The administrator receives no unit key: being administrator grants no access to tips. The
    identities are returned once, for printing as recovery keys, and are not kept."""
    with transaction(session):
        if administrators_exist(session):
            raise AlreadySetUp
        if token is not None:
            row = session.scalar(select(SetupToken).where(SetupToken.token_hash == _digest(token))
                                 .with_for_update())
            if row is None or row.used_at is not None:
                raise AlreadySetUp
            row.used_at = utcnow()
        admin = create_user(session, username, password, wrap_cost=wrap_cost,
                            login_cost=login_cost, actor=SYSTEM)
        add_membership(session, admin, BUREAU_CODE, Role.ADMINISTRATOR, actor=SYSTEM)
        made = generate_unit_keys(session, Actor("staff", admin.id, Role.ADMINISTRATOR))
        make_blind_key(session)  # sealed to the units' keys just made; the key itself is dropped
        record(session, SYSTEM, "setup.completed", object_type="user", object_id=admin.id,
               units=len(made.content))
    return SetupResult(admin_id=admin.id, recovery=made.content,
                       custodian_recovery=made.custodian)
