"""Staff accounts: Argon2id login hashes and the personal key wrapped under the password."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Membership, Role, Unit, User
from portal import crypto
from portal.audit import Actor, record
from portal.auth import hash_password
from portal.receipts import Argon2Cost

MIN_PASSWORD_LENGTH = 12


class WeakPassword(ValueError):
    pass


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"at least {MIN_PASSWORD_LENGTH} characters")


def create_user(session: Session, username: str, password: str, *, wrap_cost: Argon2Cost,
                login_cost: Argon2Cost, actor: Actor, display_name: str = "") -> User:
    """A staff account. The login hash (LOGIN_ARGON2) and the key wrapping (WRAP_ARGON2) use
    distinct Argon2id parameters, so one cannot stand in for the other."""
    check_password_strength(password)
    pair = crypto.generate_keypair()
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password, login_cost),
        public_key=pair.recipient,
        wrapped_identity=crypto.wrap_identity(pair.identity, password, wrap_cost),
    )
    session.add(user)
    session.flush()
    record(session, actor, "user.created", object_type="user", object_id=user.id)
    return user


def add_membership(session: Session, user: User, unit_code: str, role: Role, *,
                   actor: Actor) -> Membership:
    unit = session.scalars(select(Unit).where(Unit.code == unit_code)).one()
    membership = Membership(user=user, unit=unit, role=role)
    session.add(membership)
    record(session, actor, "membership.added", object_type="user", object_id=user.id,
           unit_code=unit_code, role=str(role))
    return membership


def administrators_exist(session: Session) -> bool:
    return session.scalar(
        select(Membership.id).where(Membership.role == Role.ADMINISTRATOR).limit(1)
    ) is not None


def remove_membership(session: Session, membership: Membership, *, actor: Actor) -> None:
    record(session, actor, "membership.removed", object_type="user",
           object_id=membership.user_id, unit_code=membership.unit.code, role=membership.role)
    session.delete(membership)


def set_active(session: Session, user: User, active: bool, *, actor: Actor) -> None:
    user.active = active
    record(session, actor, "user.activated" if active else "user.deactivated",
           object_type="user", object_id=user.id)
