"""Staff accounts: Argon2id login hashes and the personal key wrapped under the password."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import HANDLING_KINDS, RECEIVING_KINDS, Membership, Role, Unit, UnitKind, User
from portal import crypto
from portal.audit import Actor, record
from portal.auth import hash_password
from portal.receipts import Argon2Cost

MIN_PASSWORD_LENGTH = 12


class WeakPassword(ValueError):
    pass


class RoleRefused(ValueError):
    """A role that does not fit the unit or the person; `code` names why (words in the pages)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


OFFICER_ROLES = frozenset({Role.INTAKE_OFFICER, Role.CASE_OFFICER, Role.HEAD})
# Who belongs where: officers to a handling unit (州本级 or a county division), a liaison to a
# receiving body (公安局, 检察院 …), auditors and administrators to the bureau's side.
_KINDS_FOR_ROLE: dict[Role, frozenset[str]] = {
    **{role: frozenset(k.value for k in HANDLING_KINDS) for role in OFFICER_ROLES},
    Role.LIAISON: frozenset(k.value for k in RECEIVING_KINDS),
    Role.AUDITOR: frozenset(k.value for k in (UnitKind.PROVINCE, *HANDLING_KINDS)),
    Role.ADMINISTRATOR: frozenset(k.value for k in (UnitKind.PROVINCE, *HANDLING_KINDS)),
}
_WRONG_KIND = {Role.LIAISON: "liaison_needs_receiving_body",
               Role.AUDITOR: "oversight_needs_bureau", Role.ADMINISTRATOR: "oversight_needs_bureau"}
# PRODUCT.md: an administrator must never hold an officer role (nor speak for a receiving body).
_NOT_WITH_ADMIN = OFFICER_ROLES | {Role.LIAISON}


def role_fits(unit: Unit, role: Role) -> bool:
    return unit.kind in _KINDS_FOR_ROLE[role]


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise RoleRefused("unknown_role") from exc


def roles_open_to(held: set[Role] | frozenset[Role]) -> frozenset[Role]:
    """The roles a person holding `held` may still be given somewhere (the same rule as
    check_role): an administrator no officer or liaison role, and the reverse."""
    roles = frozenset(Role)
    if Role.ADMINISTRATOR in held:
        roles -= _NOT_WITH_ADMIN
    if held & _NOT_WITH_ADMIN:
        roles -= {Role.ADMINISTRATOR}
    return roles


def check_role(session: Session, user: User | None, unit_code: str, role: Role) -> Unit:
    """The unit, if `role` there makes sense for it and for the person's other roles; raises
    RoleRefused otherwise. Pages and the CLI ask this before adding a membership."""
    unit = session.scalar(select(Unit).where(Unit.code == unit_code, Unit.active.is_(True)))
    if unit is None:
        raise RoleRefused("unknown_unit")
    if not role_fits(unit, role):
        raise RoleRefused(_WRONG_KIND.get(role, "officer_needs_handling_unit"))
    if user is not None and user.id is not None:
        held = {(m.unit_id, m.role) for m in session.scalars(
            select(Membership).where(Membership.user_id == user.id))}
        if (unit.id, role) in held:
            raise RoleRefused("already_member")
        if role not in roles_open_to({r for _, r in held}):
            raise RoleRefused("admin_not_officer")
    return unit


def check_roles(session: Session, assignments: list[tuple[str, Role]]) -> None:
    """The same checks for a new account's roles, taken together."""
    roles = {role for _, role in assignments}
    if Role.ADMINISTRATOR in roles and roles & _NOT_WITH_ADMIN:
        raise RoleRefused("admin_not_officer")
    for unit_code, role in assignments:
        check_role(session, None, unit_code, role)


def assign_role(session: Session, user: User, unit_code: str, role: Role, *,
                actor: Actor) -> Membership:
    """Add a membership after checking that it makes sense (check_role)."""
    check_role(session, user, unit_code, role)
    return add_membership(session, user, unit_code, role, actor=actor)


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


class UsernameTaken(ValueError):
    pass


def create_account(session: Session, username: str, password: str,
                   roles: list[tuple[str, Role]], *, wrap_cost: Argon2Cost,
                   login_cost: Argon2Cost, actor: Actor, display_name: str = "") -> User:
    """A new account with its roles, everything checked before anything is written: the name is
    free, the password strong enough, and each role fits its unit (check_roles). The caller
    commits."""
    username = username.strip()
    if not username or len(username) > 64:
        raise RoleRefused("bad_username")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UsernameTaken(username)
    if not roles:
        raise RoleRefused("no_role")
    check_password_strength(password)
    check_roles(session, roles)
    user = create_user(session, username, password, wrap_cost=wrap_cost, login_cost=login_cost,
                       actor=actor, display_name=display_name)
    for unit_code, role in dict.fromkeys(roles):
        add_membership(session, user, unit_code, role, actor=actor)
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


# ---------------------------------------------------------------------------------------------
# First sign-in link: a signed token bound to the account's current password hash, so it works
# once. Whoever opens it chooses their own password (the administrator who typed the first one
# never completes the account), then enrols the second factor.

FIRST_SIGN_IN_SALT = "qingliu.first-sign-in"
FIRST_SIGN_IN_VALID = timedelta(days=7)


def _password_fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def first_sign_in_token(user: User, secret_key: str) -> str:
    return URLSafeTimedSerializer(secret_key, salt=FIRST_SIGN_IN_SALT).dumps(
        {"u": user.id, "p": _password_fingerprint(user)})


def user_for_first_sign_in(session: Session, token: str, secret_key: str,
                           max_age: timedelta = FIRST_SIGN_IN_VALID) -> User | None:
    """The account a first sign-in link is for; None when the link is forged, expired, or spent
    (the password has changed since it was made)."""
    try:
        data = URLSafeTimedSerializer(secret_key, salt=FIRST_SIGN_IN_SALT).loads(
            token, max_age=int(max_age.total_seconds()))
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    user = session.get(User, data["u"])
    if user is None or not user.active or data.get("p") != _password_fingerprint(user):
        return None
    return user
