"""Staff accounts: Argon2id login hashes and the personal key wrapped under the password."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from auditlog.events import Actor, record
from models import (
    HANDLING_KINDS,
    RECEIVING_KINDS,
    AuditEvent,
    Membership,
    RecoveryCode,
    Role,
    Unit,
    UnitKind,
    User,
)
from models.base import utcnow
from portal.intake.receipts import Argon2Cost
from portal.security import crypto
from portal.security.auth import SecondFactorFailed, check_second_factor, hash_password

MIN_PASSWORD_LENGTH = 12


class WeakPassword(ValueError):
    pass


class RoleRefused(ValueError):
    """A role that does not fit the unit or the person; `code` names why (words in the pages)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check_not_self(actor: Actor, user_id: int | None) -> None:
    """No one changes their own account's roles, state or password from the administration
    side (issue 9): an administrator cannot make itself an officer, drop its own administrator
    role to take one, nor reset its own password. Another administrator must do it."""
    if actor.type == "staff" and actor.id is not None and actor.id == user_id:
        raise RoleRefused("self_grant")


OFFICER_ROLES = frozenset({Role.INTAKE_OFFICER, Role.CASE_OFFICER, Role.HEAD})
# Who belongs where: officers to a handling unit (州本级 or a county division), a liaison to a
# receiving body (公安局, 检察院 …), auditors and administrators to the bureau's side.
_KINDS_FOR_ROLE: dict[Role, frozenset[str]] = {
    **{role: frozenset(k.value for k in HANDLING_KINDS) for role in OFFICER_ROLES},
    # A custodian (信息保密员) keeps a handling unit's key to its real-name reporters' identities.
    Role.CUSTODIAN: frozenset(k.value for k in HANDLING_KINDS),
    Role.LIAISON: frozenset(k.value for k in RECEIVING_KINDS),
    Role.AUDITOR: frozenset(k.value for k in (UnitKind.PROVINCE, *HANDLING_KINDS)),
    Role.ADMINISTRATOR: frozenset(k.value for k in (UnitKind.PROVINCE, *HANDLING_KINDS)),
}
_WRONG_KIND = {Role.LIAISON: "liaison_needs_receiving_body",
               Role.CUSTODIAN: "custodian_needs_handling_unit",
               Role.AUDITOR: "oversight_needs_bureau", Role.ADMINISTRATOR: "oversight_needs_bureau"}
# PRODUCT.md: an administrator must never hold an officer role (nor speak for a receiving body).
# Nor keep reporters' identities (custodian): an administrator reads no tip and no identity.
_NOT_WITH_ADMIN = OFFICER_ROLES | {Role.CUSTODIAN, Role.LIAISON}


def role_fits(unit: Unit, role: Role) -> bool:
    return unit.kind in _KINDS_FOR_ROLE[role]


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        raise RoleRefused("unknown_role") from exc


def roles_open_to(held: AbstractSet[str]) -> frozenset[Role]:  # stored roles are str
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
    """Add a membership after checking that it makes sense (check_role) and that the actor is
    not giving it to themselves (check_not_self)."""
    check_not_self(actor, user.id)
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


# Two-person rule (issue 9): an officer or liaison role given by an administrator waits until
# someone else who already speaks for the unit confirms it — a head of that handling unit, a
# liaison of that receiving body or, while the unit has nobody such yet, a second administrator
# — and an administrator role until another administrator confirms it. A waiting role gives no
# access at all (portal/access.principal_for reads confirmed roles only). The shell (`flask
# users create`, the setup) is the trust root: what it gives is confirmed at once.
TWO_PERSON_ROLES = OFFICER_ROLES | {Role.CUSTODIAN, Role.LIAISON, Role.ADMINISTRATOR}
# Who speaks for a unit, per role waiting there (the administrator role: administrators only).
# A custodian is confirmed as an officer is: by a head of the unit, else another administrator.
_SPEAKERS: dict[Role, Role] = {**{role: Role.HEAD for role in OFFICER_ROLES},
                               Role.CUSTODIAN: Role.HEAD,
                               Role.LIAISON: Role.LIAISON}


def add_membership(session: Session, user: User, unit_code: str, role: Role, *,
                   actor: Actor) -> Membership:
    """Add a membership. Given by a person (an administrator on the pages) an officer, liaison
    or administrator role waits for a second person's confirmation; given by the system (the
    setup, the command line of the server) it holds at once."""
    unit = session.scalars(select(Unit).where(Unit.code == unit_code)).one()
    now = utcnow()
    by_person = actor.type == "staff" and actor.id is not None
    pending = by_person and Role(role) in TWO_PERSON_ROLES
    membership = Membership(user=user, unit=unit, role=role, added_at=now,
                            added_by_id=actor.id if by_person else None,
                            confirmed_at=None if pending else now,
                            confirmed_by_id=None if pending else (actor.id if by_person else None))
    session.add(membership)
    record(session, actor, "membership.added", object_type="user", object_id=user.id,
           unit_code=unit_code, role=str(role), pending=pending)
    return membership


class ConfirmRefused(ValueError):
    """A confirmation this person cannot give; `code` names why (words in the pages)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _confirmed_holders(session: Session, role: Role, unit_id: int | None = None) -> set[int]:
    """Active people holding `role` (in the unit, when given), confirmed."""
    query = (select(Membership.user_id).join(User, User.id == Membership.user_id)
             .where(Membership.role == role, Membership.confirmed_at.is_not(None),
                    User.active.is_(True)))
    if unit_id is not None:
        query = query.where(Membership.unit_id == unit_id)
    return set(session.scalars(query))


def confirmers_of(session: Session, membership: Membership) -> set[int]:
    """Who may confirm (or refuse) a waiting role: never the person it is for nor the one who
    asked; a head of the handling unit (officer roles) or a liaison of the receiving body; when
    the unit has no such person yet, and for the administrator role, another administrator."""
    role = Role(membership.role)
    others = {membership.user_id, membership.added_by_id}
    speakers: set[int] = set()
    if role in _SPEAKERS:
        speakers = _confirmed_holders(session, _SPEAKERS[role], membership.unit_id) - others
    if not speakers:
        speakers = _confirmed_holders(session, Role.ADMINISTRATOR) - others
    return speakers


def waiting_for(session: Session, user_id: int) -> list[Membership]:
    """The roles waiting for this person's confirmation, oldest first."""
    waiting = session.scalars(select(Membership).where(Membership.confirmed_at.is_(None))
                              .order_by(Membership.added_at, Membership.id))
    return [m for m in waiting if user_id in confirmers_of(session, m)]


def decide_membership(session: Session, membership: Membership, confirm: bool, *,
                      actor: Actor) -> None:
    """Confirm a waiting role (it gives access from now on) or refuse it (it goes). Only one
    of its confirmers (confirmers_of) may. The caller commits."""
    if membership.confirmed_at is not None:
        raise ConfirmRefused("not_waiting")
    if actor.id is None or actor.id not in confirmers_of(session, membership):
        raise ConfirmRefused("not_yours")
    unit_code, role = membership.unit.code, str(membership.role)
    if confirm:
        membership.confirmed_at = utcnow()
        membership.confirmed_by_id = actor.id
        record(session, actor, "membership.confirmed", object_type="user",
               object_id=membership.user_id, unit_code=unit_code, role=role)
    else:
        record(session, actor, "membership.refused", object_type="user",
               object_id=membership.user_id, unit_code=unit_code, role=role)
        session.delete(membership)


def administrators_exist(session: Session) -> bool:
    return session.scalar(
        select(Membership.id).where(Membership.role == Role.ADMINISTRATOR).limit(1)
    ) is not None


def remove_membership(session: Session, membership: Membership, *, actor: Actor) -> None:
    check_not_self(actor, membership.user_id)
    record(session, actor, "membership.removed", object_type="user",
           object_id=membership.user_id, unit_code=membership.unit.code, role=membership.role)
    session.delete(membership)


def set_active(session: Session, user: User, active: bool, *, actor: Actor) -> None:
    check_not_self(actor, user.id)
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


def issue_first_sign_in_link(session: Session, user: User, secret_key: str, *, actor: Actor,
                             via: str) -> str:
    """The token of a new account's one-time first sign-in link, its issue logged (`via`: the
    administrator's "page" or the "cli"). The caller commits."""
    record(session, actor, "user.sign_in_link_issued", object_type="user", object_id=user.id,
           via=via)
    return first_sign_in_token(user, secret_key)


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


# ---------------------------------------------------------------------------------------------
# Password reset by an administrator (issue 9). The administrator never chooses the password
# and cannot complete the reset: custody.reset_password makes the password unusable, ends the
# grants sealed to the personal key and opens the reset; the one-time link below lets the
# holder choose a new password only with proof the administrator does not have — a current
# code of the enrolled authenticator or an unused recovery code. When the second factor is lost
# as well, a second administrator confirms the reset first (two-person rule) and the person
# enrols a new authenticator afterwards. At the next sign-in the person is told who reset it.

RESET_SALT = "qingliu.password-reset"
RESET_VALID = timedelta(days=7)
MAX_RESET_FAILURES = 5
RESET_CONFIRM = "confirm"  # waiting for a second administrator
RESET_OPEN = "open"  # the link works


class ResetRefused(ValueError):
    """A reset step that cannot be taken; `code` names why (words in the pages)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def unusable_password_hash() -> str:
    """What stands in the login hash while a reset is open: no password verifies against it
    (it is not an Argon2 hash), and it differs for every reset, so older links are spent."""
    return "!reset:" + secrets.token_hex(16)


def confirm_reset(session: Session, user: User, *, actor: Actor) -> None:
    """The second administrator's confirmation of a reset whose second factor is lost too."""
    check_not_self(actor, user.id)
    if user.reset_state != RESET_CONFIRM:
        raise ResetRefused("nothing_to_confirm")
    if actor.id is not None and actor.id == user.reset_by_id:
        raise ResetRefused("same_administrator")
    user.reset_state = RESET_OPEN
    record(session, actor, "password.reset_confirmed", object_type="user", object_id=user.id)


def _reset_fingerprint(user: User) -> str:
    at = user.reset_at.isoformat() if user.reset_at else ""
    state = f"{user.password_hash}|{user.reset_state}|{at}"
    return hashlib.sha256(state.encode()).hexdigest()[:32]


def reset_token(user: User, secret_key: str) -> str:
    """The one-time reset link's token: bound to this reset (the unusable hash it set), so it
    stops working once the password is chosen or another reset is made."""
    if user.reset_state != RESET_OPEN:
        raise ResetRefused("not_open")
    return URLSafeTimedSerializer(secret_key, salt=RESET_SALT).dumps(
        {"u": user.id, "r": _reset_fingerprint(user)})


def issue_reset_link(session: Session, user: User, secret_key: str, *, actor: Actor) -> str:
    """The token of the one-time reset link, its issue logged. ResetRefused("not_open") while
    the reset still waits for a second administrator. The caller commits."""
    token = reset_token(user, secret_key)
    record(session, actor, "user.sign_in_link_issued", object_type="user", object_id=user.id,
           via="reset")
    return token


def user_for_reset(session: Session, token: str, secret_key: str,
                   max_age: timedelta = RESET_VALID) -> User | None:
    """The account a reset link is for; None when the link is forged, expired or spent."""
    try:
        data = URLSafeTimedSerializer(secret_key, salt=RESET_SALT).loads(
            token, max_age=int(max_age.total_seconds()))
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int) or not (
            0 < data["u"] < 2**31):
        return None
    user = session.get(User, data["u"])
    if (user is None or not user.active or user.reset_state != RESET_OPEN
            or user.reset_failures >= MAX_RESET_FAILURES
            or not secrets.compare_digest(str(data.get("r", "")), _reset_fingerprint(user))):
        return None
    return user


def complete_reset(session: Session, user: User, new: str, code: str, *, secret_key: str,
                   wrap_cost: Argon2Cost, login_cost: Argon2Cost,
                   now: datetime | None = None) -> None:
    """The holder completes the reset: proves it with the second factor (unless a second
    administrator confirmed that it is lost), then a new personal key is wrapped under the new
    password. A wrong code counts; after MAX_RESET_FAILURES the reset is spent and an
    administrator must start another. The caller commits in both cases. Raises auth.Throttled
    while the account's wrong authenticator codes hold it back (the code is not checked)."""
    if user.reset_state != RESET_OPEN or user.reset_failures >= MAX_RESET_FAILURES:
        raise ResetRefused("spent")
    check_password_strength(new)
    holder = Actor("staff", user.id, None)
    if not user.reset_factor_lost:
        code = code.strip()
        try:
            # The sign-in's own check: a wrong authenticator code counts against the account's
            # second-factor throttle (shared with /staff/login/code, so a reset adds no guesses;
            # auth.Throttled goes to the caller) as well as against this reset.
            check_second_factor(session, user, code, secret_key, now)
        except (SecondFactorFailed, crypto.CryptoError):
            user.reset_failures += 1
            record(session, holder, "password.reset_code_failed", object_type="user",
                   object_id=user.id)
            if user.reset_failures >= MAX_RESET_FAILURES:
                user.reset_state = None
                raise ResetRefused("spent") from None
            raise ResetRefused("wrong_code") from None
    pair = crypto.generate_keypair()
    user.public_key = pair.recipient
    user.wrapped_identity = crypto.wrap_identity(pair.identity, new, wrap_cost)
    user.password_hash = hash_password(new, login_cost)
    user.password_changed_at = now or utcnow()
    if user.reset_factor_lost:  # a new authenticator is enrolled at the next sign-in
        user.totp_secret = None
        user.totp_confirmed_at = None
        user.totp_last_step = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    user.reset_state = None
    user.reset_failures = 0
    user.reset_notice = True
    record(session, holder, "password.reset_completed", object_type="user", object_id=user.id,
           factor_lost=user.reset_factor_lost)


def take_reset_notice(session: Session, user: User) -> tuple[str, datetime] | None:
    """Who reset this account's password and when, once: the first sign-in after a completed
    reset shows it, later ones do not. The caller commits."""
    if not user.reset_notice or user.reset_at is None:
        return None
    user.reset_notice = False
    by = session.get(User, user.reset_by_id) if user.reset_by_id else None
    return (by.display_name or by.username) if by else "", user.reset_at


# ---------------------------------------------------------------------------------------------
# Account changes, for auditors: from the log alone.

ACCOUNT_ACTIONS = ("setup.completed", "user.created", "user.sign_in_link_issued",
                   "membership.added", "membership.confirmed", "membership.refused",
                   "membership.removed", "user.activated",
                   "user.deactivated", "password.reset", "password.reset_requested",
                   "password.reset_confirmed", "password.reset_code_failed",
                   "password.reset_completed")
ACCOUNT_CHANGES_PAGE = 100


def account_changes(session: Session, page: int = 0) -> list[AuditEvent]:
    """One page (newest first) of the log's entries that created accounts, gave or removed
    roles, reset passwords or (de)activated accounts."""
    return list(session.scalars(
        select(AuditEvent).where(AuditEvent.action.in_(ACCOUNT_ACTIONS))
        .order_by(AuditEvent.seq.desc()).offset(max(page, 0) * ACCOUNT_CHANGES_PAGE)
        .limit(ACCOUNT_CHANGES_PAGE)))
