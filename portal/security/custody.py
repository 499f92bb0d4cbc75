"""Who holds which key. A unit's identity is sealed (age) to each member it is granted to; only
someone who holds it, or the unit's offline recovery key, can grant it. Every grant, revocation
and recovery is an audit event."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditlog.events import Actor, record
from models import KeyPurpose, Membership, Role, Unit, UnitKeyGrant, User
from models.base import utcnow
from portal.intake.receipts import Argon2Cost
from portal.security import crypto
from portal.security.accounts import check_password_strength
from portal.security.auth import hash_password


class NotHolder(Exception):
    """The granter does not hold this unit's key."""


class WrongRecoveryKey(Exception):
    """The identity given is not this unit's recovery key."""


class NotKeyMember(Exception):
    """The grantee is not an officer of this handling unit, nor a liaison of this body (the
    content key), or not a confirmed custodian of this handling unit (the identity key)."""


def _member_roles(purpose: KeyPurpose) -> list[str]:
    """Who may hold a unit's key of this purpose: officers and liaisons the content key,
    custodians (信息保密员) the reporter identity key."""
    from portal.security.access import KEY_ROLES

    if purpose == KeyPurpose.IDENTITY:
        return [Role.CUSTODIAN.value]
    return sorted(KEY_ROLES)


def unit_key(unit: Unit, purpose: KeyPurpose) -> str | None:
    """The recipient of a unit's key of this purpose."""
    return unit.identity_key if purpose == KeyPurpose.IDENTITY else unit.public_key


def key_members(session: Session, unit_ids: set[int],
                purpose: KeyPurpose = KeyPurpose.CONTENT) -> list[tuple[User, Unit]]:
    """Who may receive each of these units' keys: its active officers (handling unit) or
    liaisons (receiving body) for the content key, its custodians for the identity key, as
    (person, unit) pairs; confirmed roles only."""
    rows = session.execute(
        select(User, Unit).join(Membership, Membership.user_id == User.id)
        .join(Unit, Unit.id == Membership.unit_id)
        .where(Membership.unit_id.in_(sorted(unit_ids)),
               Membership.role.in_(_member_roles(purpose)),
               Membership.confirmed_at.is_not(None), User.active.is_(True))
        .distinct().order_by(Unit.id, User.username)).all()
    return [(user, unit) for user, unit in rows]


def check_key_member(session: Session, unit: Unit, grantee: User,
                     purpose: KeyPurpose = KeyPurpose.CONTENT) -> None:
    found = session.scalar(select(Membership.id).where(
        Membership.user_id == grantee.id, Membership.unit_id == unit.id,
        Membership.role.in_(_member_roles(purpose)), Membership.confirmed_at.is_not(None))
        .limit(1))
    if found is None or not grantee.active:
        raise NotKeyMember


def unlock_personal(user: User, password: str) -> crypto.AgeIdentity:
    return crypto.unwrap_identity(user.wrapped_identity, password)


def active_grants(session: Session, user_id: int,
                  purpose: KeyPurpose = KeyPurpose.CONTENT) -> list[UnitKeyGrant]:
    """The unit keys of one purpose this person holds: content keys (tips, cases, packages) or
    identity keys (custodians: real-name reporters' identities)."""
    return list(session.scalars(select(UnitKeyGrant).where(
        UnitKeyGrant.user_id == user_id, UnitKeyGrant.revoked_at.is_(None),
        UnitKeyGrant.purpose == purpose.value)))


def held_keys(session: Session, user: User, personal: crypto.AgeIdentity,
              purpose: KeyPurpose = KeyPurpose.CONTENT) -> dict[int, crypto.AgeIdentity]:
    """The unit keys of one purpose this person holds, by unit id, opened with their personal
    identity. A grant sealed to a personal key they no longer have (a password reset) opens
    nothing and is passed over."""
    held: dict[int, crypto.AgeIdentity] = {}
    for grant_row in active_grants(session, user.id, purpose):
        try:
            held[grant_row.unit_id] = crypto.AgeIdentity(
                crypto.open_sealed(grant_row.sealed_identity, [personal]).decode())
        except crypto.CryptoError:
            continue
    return held


def unit_identities(session: Session, user: User, personal: crypto.AgeIdentity
                    ) -> dict[int, crypto.AgeIdentity]:
    """The unit (content) keys this officer or liaison holds: tips, cases, packages."""
    return held_keys(session, user, personal, KeyPurpose.CONTENT)


def _seal_grant(session: Session, unit: Unit, identity: crypto.AgeIdentity, grantee: User,
                granted_by: int | None,
                purpose: KeyPurpose = KeyPurpose.CONTENT) -> UnitKeyGrant:
    for old in active_grants(session, grantee.id, purpose):
        if old.unit_id == unit.id:
            old.revoked_at = utcnow()
    grant = UnitKeyGrant(unit_id=unit.id, user_id=grantee.id, granted_by_id=granted_by,
                         purpose=purpose.value,
                         sealed_identity=crypto.seal(identity.encode(), [grantee.public_key]))
    session.add(grant)
    return grant


def grant(session: Session, unit: Unit, grantee: User, *, granter: User,
          granter_identities: dict[int, crypto.AgeIdentity], actor: Actor,
          purpose: KeyPurpose = KeyPurpose.CONTENT) -> UnitKeyGrant:
    """Pass on a unit's key the granter holds (`granter_identities`: their keys of this
    purpose, by unit id)."""
    identity = granter_identities.get(unit.id)
    if identity is None or crypto.recipient_of(identity) != unit_key(unit, purpose):
        raise NotHolder
    result = _seal_grant(session, unit, identity, grantee, granter.id, purpose)
    record(session, actor,
           "identity_key.granted" if purpose == KeyPurpose.IDENTITY else "unit_key.granted",
           object_type="user", object_id=grantee.id, unit_code=unit.code)
    return result


def grant_from_recovery(session: Session, unit: Unit, grantee: User, recovery_text: str, *,
                        actor: Actor, purpose: KeyPurpose = KeyPurpose.CONTENT) -> UnitKeyGrant:
    """Grant a unit key using its printed recovery key (an age identity file or line): the
    unit key's, or for KeyPurpose.IDENTITY the custodian recovery key's."""
    lines = [line.strip() for line in recovery_text.splitlines()]
    candidates = [line for line in lines if line.upper().startswith("AGE-SECRET-KEY-1")]
    if not candidates:
        raise WrongRecoveryKey
    identity = crypto.AgeIdentity(candidates[0].upper())
    expected = unit_key(unit, purpose)
    try:
        matches = expected is not None and crypto.recipient_of(identity) == expected
    except crypto.CryptoError as exc:
        raise WrongRecoveryKey from exc
    if not matches:
        raise WrongRecoveryKey
    result = _seal_grant(session, unit, identity, grantee, actor.id, purpose)
    record(session, actor,
           "identity_key.recovered" if purpose == KeyPurpose.IDENTITY else "unit_key.recovered",
           object_type="user", object_id=grantee.id, unit_code=unit.code)
    return result


def hand_on(session: Session, unit: Unit, grantee: User, *, granter: User,
            granter_identities: dict[int, crypto.AgeIdentity], recovery_text: str,
            actor: Actor, purpose: KeyPurpose = KeyPurpose.CONTENT) -> UnitKeyGrant:
    """The Unit keys page: pass a unit's key to one of its officers or liaisons (the content
    key) or custodians (the identity key), from the key the granter holds or from the unit's
    printed recovery key of that purpose when one is given."""
    check_key_member(session, unit, grantee, purpose)
    if recovery_text.strip():
        return grant_from_recovery(session, unit, grantee, recovery_text, actor=actor,
                                   purpose=purpose)
    return grant(session, unit, grantee, granter=granter, granter_identities=granter_identities,
                 actor=actor, purpose=purpose)


def held_identity_keys(session: Session, user: User, personal: crypto.AgeIdentity
                       ) -> dict[int, crypto.AgeIdentity]:
    """The custodian (identity) keys this person holds, by unit id; for one request and never
    kept."""
    return held_keys(session, user, personal, KeyPurpose.IDENTITY)


def revoke(session: Session, grant_row: UnitKeyGrant, *, actor: Actor) -> None:
    grant_row.revoked_at = utcnow()
    unit = session.get(Unit, grant_row.unit_id)
    record(session, actor,
           "identity_key.revoked" if grant_row.purpose == KeyPurpose.IDENTITY
           else "unit_key.revoked",
           object_type="user", object_id=grant_row.user_id,
           unit_code=unit.code if unit else None)


def change_password(session: Session, user: User, old: str, new: str, *, wrap_cost: Argon2Cost,
                    login_cost: Argon2Cost) -> None:
    """Re-wrap the personal identity under the new password: nothing is lost."""
    check_password_strength(new)
    personal = unlock_personal(user, old)
    user.wrapped_identity = crypto.wrap_identity(personal, new, wrap_cost)
    user.password_hash = hash_password(new, login_cost)
    user.password_changed_at = utcnow()
    record(session, Actor("staff", user.id, None), "password.changed", object_type="user",
           object_id=user.id)


def reset_password(session: Session, user: User, *, actor: Actor,
                   factor_lost: bool = False) -> int:
    """An administrator's reset, which the administrator cannot complete (issue 9): no password
    is chosen here. The password becomes unusable at once and the grants sealed to the personal
    key are revoked (a holder of each unit key re-grants it); the person completes the reset on
    a one-time link with their second factor (accounts.complete_reset), which makes a new
    personal key. When the second factor is lost as well, or was never enrolled, a second
    administrator must confirm first (accounts.confirm_reset). The caller ends the account's
    sessions. Returns how many grants were revoked."""
    from portal.security.accounts import (
        RESET_CONFIRM,
        RESET_OPEN,
        check_not_self,
        unusable_password_hash,
    )

    check_not_self(actor, user.id)
    lost = factor_lost or user.totp_confirmed_at is None
    now = utcnow()
    user.password_hash = unusable_password_hash()
    user.reset_by_id = actor.id
    user.reset_at = now
    user.reset_state = RESET_CONFIRM if lost else RESET_OPEN
    user.reset_factor_lost = lost
    user.reset_failures = 0
    user.reset_notice = False
    revoked = 0
    for purpose in KeyPurpose:  # the unit keys and custodian keys sealed to the old key
        for old in active_grants(session, user.id, purpose):
            old.revoked_at = now
            revoked += 1
    record(session, actor, "password.reset_requested", object_type="user", object_id=user.id,
           grants_revoked=revoked, factor_lost=lost)
    return revoked
