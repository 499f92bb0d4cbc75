"""Who holds which key, as a service (portal/security/custody.py), without HTTP: who may be given
a unit's key, handing it on from a held key or from the printed recovery key, revoking it, and
what a password change and an administrator's password reset do to the keys a person holds;
with the audit event each writes."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from auditlog.events import SYSTEM, Actor
from models import AuditEvent, KeyPurpose, Role, Unit, UnitKeyGrant, User
from portal.security import auth, crypto, custody
from portal.security.accounts import (
    RESET_CONFIRM,
    RESET_OPEN,
    RoleRefused,
    WeakPassword,
    add_membership,
    complete_reset,
    confirm_reset,
    create_user,
)
from portal.web.extensions import db
from tests.conftest import COSTS, FAST_ARGON2

PASSWORD = "officer password 2026"
NEW_PASSWORD = "a new password of mine"
CONTENT, IDENTITY = KeyPurpose.CONTENT, KeyPurpose.IDENTITY

# name → (unit code, role, confirmed, active); `multi_y` has a second key role (see _world)
PEOPLE = {
    "head_y": ("yanji", Role.HEAD, True, True),  # holds 延吉's content key from the start
    "case_y": ("yanji", Role.CASE_OFFICER, True, True),
    "multi_y": ("yanji", Role.INTAKE_OFFICER, True, True),
    "waiting_y": ("yanji", Role.CASE_OFFICER, False, True),  # second confirmation pending
    "gone_y": ("yanji", Role.CASE_OFFICER, True, False),  # deactivated account
    "cust_y": ("yanji", Role.CUSTODIAN, True, True),  # holds 延吉's identity key from the start
    "cust2_y": ("yanji", Role.CUSTODIAN, True, True),
    "officer_h": ("hunchun", Role.CASE_OFFICER, True, True),  # another county
    "liaison_psb": ("psb_zhou", Role.LIAISON, True, True),  # a receiving body
    "auditor": ("zhou", Role.AUDITOR, True, True),
    "admin": ("zhou", Role.ADMINISTRATOR, True, True),
    "admin2": ("zhou", Role.ADMINISTRATOR, True, True),
}


@dataclass
class World:
    units: dict[str, Unit]
    users: dict[str, User]
    content: dict[str, crypto.AgeIdentity]  # unit code → its content (recovery) key
    custodian: dict[str, crypto.AgeIdentity]  # handling unit code → its identity key

    def personal(self, name: str, password: str = PASSWORD) -> crypto.AgeIdentity:
        return custody.unlock_personal(self.users[name], password)

    def staff(self, name: str) -> Actor:
        return Actor("staff", self.users[name].id, str(PEOPLE[name][1]))


@pytest.fixture
def world(app) -> World:
    """Four units with fresh keys; the people of PEOPLE with real passwords; head_y holding
    延吉's content key and cust_y its identity key (granted from the recovery keys)."""
    units = {u.code: u for u in db.session.scalars(select(Unit).where(
        Unit.code.in_(["zhou", "yanji", "hunchun", "psb_zhou"])))}
    content, custodian = {}, {}
    for code, unit in units.items():
        pair = crypto.generate_keypair()
        unit.public_key, content[code] = pair.recipient, pair.identity
        if code != "psb_zhou":  # a receiving body has no identity key
            pair = crypto.generate_keypair()
            unit.identity_key, custodian[code] = pair.recipient, pair.identity
    users: dict[str, User] = {}
    for name in ("admin", *[n for n in PEOPLE if n != "admin"]):
        users[name] = create_user(db.session, name, PASSWORD, **COSTS, actor=SYSTEM)
    for name, (code, role, confirmed, active) in PEOPLE.items():
        # a role given by a person waits for a second one; given by the system it holds at once
        by = SYSTEM if confirmed else Actor("staff", users["admin"].id, "administrator")
        membership = add_membership(db.session, users[name], code, role, actor=by)
        assert (membership.confirmed_at is not None) == confirmed
        users[name].active = active
    add_membership(db.session, users["multi_y"], "yanji", Role.HEAD, actor=SYSTEM)
    db.session.flush()
    custody.grant_from_recovery(db.session, units["yanji"], users["head_y"], content["yanji"],
                                actor=SYSTEM)
    custody.grant_from_recovery(db.session, units["yanji"], users["cust_y"],
                                custodian["yanji"], actor=SYSTEM, purpose=IDENTITY)
    db.session.commit()
    return World(units, users, content, custodian)


def _events(action: str, object_id: int | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    if object_id is not None:
        query = query.where(AuditEvent.object_id == object_id)
    return list(db.session.scalars(query))


def _event_fields(event: AuditEvent) -> tuple[object, ...]:
    return (event.actor_type, event.actor_id, event.role, event.object_type, event.object_id,
            event.unit_code, json.loads(event.details))


def _grant_count() -> int:
    return db.session.scalar(select(func.count()).select_from(UnitKeyGrant)) or 0


def _audit_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0


# ---------------------------------------------------------------------------------------------
# Who may be given a unit's key


def test_key_members_are_the_confirmed_key_roles_of_active_accounts(world: World) -> None:
    yanji, psb = world.units["yanji"], world.units["psb_zhou"]
    found = custody.key_members(db.session, {yanji.id})
    # multi_y holds two key roles in 延吉 and is listed once; not waiting_y (unconfirmed),
    # gone_y (deactivated), the custodians (another key), officer_h (another county)
    assert [(u.username, unit.code) for u, unit in found] == [
        ("case_y", "yanji"), ("head_y", "yanji"), ("multi_y", "yanji")]
    both = custody.key_members(db.session, {yanji.id, psb.id})
    expected = [("case_y", yanji), ("head_y", yanji), ("multi_y", yanji), ("liaison_psb", psb)]
    expected.sort(key=lambda pair: (pair[1].id, pair[0]))  # by unit, then name
    assert [(u.username, unit.code) for u, unit in both] == [
        (name, unit.code) for name, unit in expected]
    zhou = world.units["zhou"]
    assert custody.key_members(db.session, {zhou.id}) == []  # the auditor and administrators
    identity = custody.key_members(db.session, {yanji.id}, IDENTITY)
    assert [(u.username, unit.code) for u, unit in identity] == [
        ("cust2_y", "yanji"), ("cust_y", "yanji")]


@pytest.mark.parametrize(("name", "unit", "purpose"), [
    ("case_y", "yanji", CONTENT),
    ("multi_y", "yanji", CONTENT),
    ("liaison_psb", "psb_zhou", CONTENT),
    ("cust_y", "yanji", IDENTITY),
])
def test_check_key_member_accepts(world: World, name: str, unit: str,
                                  purpose: KeyPurpose) -> None:
    custody.check_key_member(db.session, world.units[unit], world.users[name], purpose)


@pytest.mark.parametrize(("name", "unit", "purpose"), [
    ("cust_y", "yanji", CONTENT),  # a custodian holds the identity key, not the content key
    ("case_y", "yanji", IDENTITY),  # an officer never the identity key
    ("auditor", "zhou", CONTENT),  # auditors and administrators read no content
    ("admin", "zhou", CONTENT),
    ("waiting_y", "yanji", CONTENT),  # the role waits for its second confirmation
    ("gone_y", "yanji", CONTENT),  # a deactivated account
    ("officer_h", "yanji", CONTENT),  # an officer of another unit
    ("liaison_psb", "yanji", CONTENT),
    ("case_y", "hunchun", CONTENT),
    ("cust_y", "hunchun", IDENTITY),
])
def test_check_key_member_refuses(world: World, name: str, unit: str,
                                  purpose: KeyPurpose) -> None:
    with pytest.raises(custody.NotKeyMember):
        custody.check_key_member(db.session, world.units[unit], world.users[name], purpose)


# ---------------------------------------------------------------------------------------------
# Granting from a held key


def test_a_grant_opens_with_the_grantees_password_and_is_logged(world: World) -> None:
    yanji, head, case = world.units["yanji"], world.users["head_y"], world.users["case_y"]
    held = custody.unit_identities(db.session, head, world.personal("head_y"))
    assert held == {yanji.id: world.content["yanji"]}
    assert custody.unit_identities(db.session, case, world.personal("case_y")) == {}
    row = custody.grant(db.session, yanji, case, granter=head, granter_identities=held,
                        actor=world.staff("head_y"))
    db.session.commit()
    assert (row.unit_id, row.user_id, row.granted_by_id, row.purpose, row.revoked_at) == (
        yanji.id, case.id, head.id, "content", None)
    assert custody.unit_identities(db.session, case, world.personal("case_y")) == {
        yanji.id: world.content["yanji"]}
    assert custody.held_identity_keys(db.session, case, world.personal("case_y")) == {}
    # sealed to case_y's personal key: anyone else's opens nothing, and is passed over
    assert custody.unit_identities(db.session, case, world.personal("officer_h")) == {}
    [event] = _events("unit_key.granted")
    assert _event_fields(event) == ("staff", head.id, "head", "user", case.id, "yanji", {})


def test_granting_the_identity_key(world: World) -> None:
    yanji, cust, cust2 = world.units["yanji"], world.users["cust_y"], world.users["cust2_y"]
    held = custody.held_identity_keys(db.session, cust, world.personal("cust_y"))
    assert held == {yanji.id: world.custodian["yanji"]}
    custody.grant(db.session, yanji, cust2, granter=cust, granter_identities=held,
                  actor=world.staff("cust_y"), purpose=IDENTITY)
    db.session.commit()
    assert custody.held_identity_keys(db.session, cust2, world.personal("cust2_y")) == {
        yanji.id: world.custodian["yanji"]}
    assert custody.unit_identities(db.session, cust2, world.personal("cust2_y")) == {}
    [event] = _events("identity_key.granted")
    assert _event_fields(event) == ("staff", cust.id, "custodian", "user", cust2.id, "yanji", {})
    assert _events("unit_key.granted") == []


@pytest.mark.parametrize("held", ["nothing", "another unit's key", "the content key"])
def test_a_key_the_granter_does_not_hold_is_refused(world: World, held: str) -> None:
    yanji, hunchun = world.units["yanji"], world.units["hunchun"]
    identities, purpose = {
        "nothing": ({}, CONTENT),
        "another unit's key": ({yanji.id: world.content["hunchun"],
                                hunchun.id: world.content["hunchun"]}, CONTENT),
        # 延吉's content key cannot pass for its identity key
        "the content key": ({yanji.id: world.content["yanji"]}, IDENTITY),
    }[held]
    grants, events = _grant_count(), _audit_count()
    with pytest.raises(custody.NotHolder):
        custody.grant(db.session, yanji, world.users["cust2_y"], granter=world.users["head_y"],
                      granter_identities=identities, actor=world.staff("head_y"),
                      purpose=purpose)
    db.session.flush()
    assert (_grant_count(), _audit_count()) == (grants, events)


def test_granting_again_replaces_the_earlier_grant(world: World) -> None:
    yanji, head, case = world.units["yanji"], world.users["head_y"], world.users["case_y"]
    held = custody.unit_identities(db.session, head, world.personal("head_y"))
    first = custody.grant(db.session, yanji, case, granter=head, granter_identities=held,
                          actor=world.staff("head_y"))
    db.session.flush()
    second = custody.grant(db.session, yanji, case, granter=head, granter_identities=held,
                           actor=world.staff("head_y"))
    db.session.commit()
    assert first.revoked_at is not None and second.revoked_at is None
    assert [g.id for g in custody.active_grants(db.session, case.id)] == [second.id]
    # head_y's own grant, another person's, is not touched
    assert len(custody.active_grants(db.session, head.id)) == 1


# ---------------------------------------------------------------------------------------------
# Granting from the printed recovery key


def test_a_recovery_key_grants_and_is_logged(world: World) -> None:
    yanji, case = world.units["yanji"], world.users["case_y"]
    printout = crypto.identity_file_text(world.content["yanji"], "延吉 unit key")
    actor = world.staff("head_y")
    row = custody.grant_from_recovery(db.session, yanji, case, printout, actor=actor)
    db.session.commit()
    assert (row.granted_by_id, row.purpose) == (world.users["head_y"].id, "content")
    assert custody.unit_identities(db.session, case, world.personal("case_y")) == {
        yanji.id: world.content["yanji"]}
    [event] = _events("unit_key.recovered", case.id)
    assert _event_fields(event) == (
        "staff", world.users["head_y"].id, "head", "user", case.id, "yanji", {})
    assert _events("unit_key.granted") == []


def test_a_recovery_key_typed_in_lower_case_grants(world: World) -> None:
    yanji, case = world.units["yanji"], world.users["case_y"]
    typed = "\n  " + world.content["yanji"].lower() + "  \n"
    custody.grant_from_recovery(db.session, yanji, case, typed, actor=world.staff("head_y"))
    db.session.commit()
    assert custody.unit_identities(db.session, case, world.personal("case_y")) == {
        yanji.id: world.content["yanji"]}


def test_the_custodian_recovery_key_grants_the_identity_key(world: World) -> None:
    yanji, cust2 = world.units["yanji"], world.users["cust2_y"]
    custody.grant_from_recovery(db.session, yanji, cust2, world.custodian["yanji"],
                                actor=world.staff("cust_y"), purpose=IDENTITY)
    db.session.commit()
    assert custody.held_identity_keys(db.session, cust2, world.personal("cust2_y")) == {
        yanji.id: world.custodian["yanji"]}
    [event] = _events("identity_key.recovered", cust2.id)
    assert _event_fields(event) == (
        "staff", world.users["cust_y"].id, "custodian", "user", cust2.id, "yanji", {})


WRONG_RECOVERY = {
    "empty": lambda w: ("yanji", "", CONTENT),
    "no key in it": lambda w: ("yanji", "# public key: " + w.units["yanji"].public_key, CONTENT),
    "another unit's key": lambda w: ("yanji", w.content["hunchun"], CONTENT),
    "the identity key for the content key": lambda w: ("yanji", w.custodian["yanji"], CONTENT),
    "the content key for the identity key": lambda w: ("yanji", w.content["yanji"], IDENTITY),
    "a unit without an identity key": lambda w: ("psb_zhou", w.content["psb_zhou"], IDENTITY),
    "malformed": lambda w: ("yanji", "AGE-SECRET-KEY-1XYZ", CONTENT),
    "one letter off": lambda w: ("yanji", w.content["yanji"][:-1]
                                 + ("Q" if w.content["yanji"][-1] != "Q" else "P"), CONTENT),
}


@pytest.mark.parametrize("case", list(WRONG_RECOVERY))
def test_a_wrong_recovery_key_is_refused_and_nothing_is_stored(world: World, case: str) -> None:
    unit_code, text, purpose = WRONG_RECOVERY[case](world)
    grantee = world.users["cust2_y" if purpose == IDENTITY else "case_y"]
    grants, events = _grant_count(), _audit_count()
    with pytest.raises(custody.WrongRecoveryKey):
        custody.grant_from_recovery(db.session, world.units[unit_code], grantee, text,
                                    actor=world.staff("head_y"), purpose=purpose)
    db.session.flush()
    assert (_grant_count(), _audit_count()) == (grants, events)


# ---------------------------------------------------------------------------------------------
# The Unit keys page: hand_on


def test_hand_on_from_the_held_key(world: World) -> None:
    yanji, head, case = world.units["yanji"], world.users["head_y"], world.users["case_y"]
    held = custody.unit_identities(db.session, head, world.personal("head_y"))
    custody.hand_on(db.session, yanji, case, granter=head, granter_identities=held,
                    recovery_text="  \n ", actor=world.staff("head_y"))
    db.session.commit()
    assert custody.unit_identities(db.session, case, world.personal("case_y")) == {
        yanji.id: world.content["yanji"]}
    assert len(_events("unit_key.granted", case.id)) == 1
    assert _events("unit_key.recovered", case.id) == []


def test_hand_on_from_the_recovery_key_needs_no_held_key(world: World) -> None:
    yanji, multi = world.units["yanji"], world.users["multi_y"]
    custody.hand_on(db.session, yanji, multi, granter=world.users["case_y"],
                    granter_identities={}, recovery_text=world.content["yanji"],
                    actor=world.staff("case_y"))
    db.session.commit()
    assert custody.unit_identities(db.session, multi, world.personal("multi_y")) == {
        yanji.id: world.content["yanji"]}
    assert len(_events("unit_key.recovered", multi.id)) == 1
    assert _events("unit_key.granted") == []


def test_hand_on_the_identity_key_between_custodians(world: World) -> None:
    yanji, cust, cust2 = world.units["yanji"], world.users["cust_y"], world.users["cust2_y"]
    held = custody.held_identity_keys(db.session, cust, world.personal("cust_y"))
    custody.hand_on(db.session, yanji, cust2, granter=cust, granter_identities=held,
                    recovery_text="", actor=world.staff("cust_y"), purpose=IDENTITY)
    db.session.commit()
    assert custody.held_identity_keys(db.session, cust2, world.personal("cust2_y")) == {
        yanji.id: world.custodian["yanji"]}
    assert len(_events("identity_key.granted", cust2.id)) == 1


@pytest.mark.parametrize(("name", "purpose"), [
    ("officer_h", CONTENT), ("waiting_y", CONTENT), ("gone_y", CONTENT), ("auditor", CONTENT),
    ("cust2_y", CONTENT), ("case_y", IDENTITY),
])
def test_hand_on_refuses_who_may_not_hold_the_key_even_with_the_recovery_key(
        world: World, name: str, purpose: KeyPurpose) -> None:
    yanji = world.units["yanji"]
    keys = world.custodian if purpose == IDENTITY else world.content
    granter = world.users["cust_y" if purpose == IDENTITY else "head_y"]
    grants, events = _grant_count(), _audit_count()
    for recovery_text in ("", keys["yanji"]):
        with pytest.raises(custody.NotKeyMember):
            custody.hand_on(db.session, yanji, world.users[name], granter=granter,
                            granter_identities={yanji.id: keys["yanji"]},
                            recovery_text=recovery_text, actor=world.staff(granter.username),
                            purpose=purpose)
    db.session.flush()
    assert (_grant_count(), _audit_count()) == (grants, events)


def test_hand_on_passes_on_refusals_of_the_key(world: World) -> None:
    yanji, head, case = world.units["yanji"], world.users["head_y"], world.users["case_y"]
    with pytest.raises(custody.NotHolder):
        custody.hand_on(db.session, yanji, case, granter=head, granter_identities={},
                        recovery_text="", actor=world.staff("head_y"))
    with pytest.raises(custody.WrongRecoveryKey):
        custody.hand_on(db.session, yanji, case, granter=head, granter_identities={},
                        recovery_text=world.content["hunchun"], actor=world.staff("head_y"))
    db.session.flush()
    assert custody.active_grants(db.session, case.id) == []


# ---------------------------------------------------------------------------------------------
# Revoking


def test_a_revoked_grant_no_longer_opens_and_is_logged(world: World) -> None:
    yanji, head, case = world.units["yanji"], world.users["head_y"], world.users["case_y"]
    held = custody.unit_identities(db.session, head, world.personal("head_y"))
    row = custody.grant(db.session, yanji, case, granter=head, granter_identities=held,
                        actor=world.staff("head_y"))
    db.session.commit()
    custody.revoke(db.session, row, actor=world.staff("head_y"))
    db.session.commit()
    assert row.revoked_at is not None
    assert custody.active_grants(db.session, case.id) == []
    assert custody.unit_identities(db.session, case, world.personal("case_y")) == {}
    # the granter's own grant stays
    assert custody.unit_identities(db.session, head, world.personal("head_y")) == held
    [event] = _events("unit_key.revoked")
    assert _event_fields(event) == ("staff", head.id, "head", "user", case.id, "yanji", {})
    assert _events("identity_key.revoked") == []


def test_revoking_an_identity_key_is_logged_as_such(world: World) -> None:
    yanji, cust = world.units["yanji"], world.users["cust_y"]
    [row] = custody.active_grants(db.session, cust.id, IDENTITY)
    custody.revoke(db.session, row, actor=world.staff("cust2_y"))
    db.session.commit()
    assert custody.held_identity_keys(db.session, cust, world.personal("cust_y")) == {}
    [event] = _events("identity_key.revoked")
    assert _event_fields(event) == (
        "staff", world.users["cust2_y"].id, "custodian", "user", cust.id, "yanji", {})
    assert _events("unit_key.revoked") == []
    assert row.unit_id == yanji.id and row.revoked_at is not None


# ---------------------------------------------------------------------------------------------
# The person's own password change


def test_keys_still_open_after_a_password_change_with_the_new_password_only(
        world: World) -> None:
    yanji, head = world.units["yanji"], world.users["head_y"]
    before = world.personal("head_y")
    custody.change_password(db.session, head, PASSWORD, NEW_PASSWORD, **COSTS)
    db.session.commit()
    with pytest.raises(crypto.CryptoError):
        world.personal("head_y", PASSWORD)
    personal = world.personal("head_y", NEW_PASSWORD)
    assert personal == before  # the same personal key, wrapped anew: nothing is lost
    assert custody.unit_identities(db.session, head, personal) == {
        yanji.id: world.content["yanji"]}
    assert auth.check_password(db.session, "head_y", NEW_PASSWORD, FAST_ARGON2).id == head.id
    with pytest.raises(auth.AuthenticationFailed):
        auth.check_password(db.session, "head_y", PASSWORD, FAST_ARGON2)
    [event] = _events("password.changed")
    assert _event_fields(event) == ("staff", head.id, None, "user", head.id, None, {})


def test_a_refused_password_change_changes_nothing(world: World) -> None:
    head = world.users["head_y"]
    wrapped, login = head.wrapped_identity, head.password_hash
    with pytest.raises(crypto.CryptoError):
        custody.change_password(db.session, head, "not my password", NEW_PASSWORD, **COSTS)
    with pytest.raises(WeakPassword):
        custody.change_password(db.session, head, PASSWORD, "short", **COSTS)
    db.session.flush()
    assert (head.wrapped_identity, head.password_hash) == (wrapped, login)
    assert _events("password.changed") == []


# ---------------------------------------------------------------------------------------------
# An administrator's password reset


def test_a_reset_revokes_every_grant_of_the_person_and_is_logged(world: World) -> None:
    yanji, head = world.units["yanji"], world.users["head_y"]
    # head_y holds both keys of 延吉 (grant_from_recovery does not ask who may: hand_on does)
    custody.grant_from_recovery(db.session, yanji, head, world.custodian["yanji"], actor=SYSTEM,
                                purpose=IDENTITY)
    db.session.commit()
    old = world.personal("head_y")
    assert custody.held_identity_keys(db.session, head, old) == {
        yanji.id: world.custodian["yanji"]}
    [kept] = custody.active_grants(db.session, world.users["cust_y"].id, IDENTITY)
    admin = world.staff("admin")
    assert custody.reset_password(db.session, head, actor=admin) == 2
    db.session.commit()
    for purpose in KeyPurpose:
        assert custody.active_grants(db.session, head.id, purpose) == []
    assert custody.unit_identities(db.session, head, old) == {}
    assert custody.held_identity_keys(db.session, head, old) == {}
    # nobody else's grants
    assert custody.active_grants(db.session, world.users["cust_y"].id, IDENTITY) == [kept]
    # the password no longer works; no second factor was ever enrolled: a second administrator
    # must confirm
    assert head.password_hash.startswith("!reset:")
    with pytest.raises(auth.AuthenticationFailed):
        auth.check_password(db.session, "head_y", PASSWORD, FAST_ARGON2)
    assert (head.reset_state, head.reset_factor_lost, head.reset_by_id) == (
        RESET_CONFIRM, True, world.users["admin"].id)
    [event] = _events("password.reset_requested")
    assert _event_fields(event) == (
        "staff", world.users["admin"].id, "administrator", "user", head.id, None,
        {"grants_revoked": 2, "factor_lost": True})


def test_after_a_completed_reset_the_new_key_opens_nothing_until_granted_again(
        world: World, app) -> None:
    yanji, head = world.units["yanji"], world.users["head_y"]
    custody.reset_password(db.session, head, actor=world.staff("admin"))
    confirm_reset(db.session, head, actor=world.staff("admin2"))
    complete_reset(db.session, head, NEW_PASSWORD, "", secret_key=app.config["SECRET_KEY"],
                   **COSTS)
    db.session.commit()
    personal = world.personal("head_y", NEW_PASSWORD)
    assert custody.unit_identities(db.session, head, personal) == {}
    # a holder of the key grants it again, to the new personal key
    case = world.users["case_y"]
    custody.grant_from_recovery(db.session, yanji, case, world.content["yanji"], actor=SYSTEM)
    held = custody.unit_identities(db.session, case, world.personal("case_y"))
    custody.hand_on(db.session, yanji, head, granter=case, granter_identities=held,
                    recovery_text="", actor=world.staff("case_y"))
    db.session.commit()
    assert custody.unit_identities(db.session, head, personal) == {
        yanji.id: world.content["yanji"]}


def test_a_reset_with_the_second_factor_kept_opens_the_link_at_once(world: World) -> None:
    head = world.users["head_y"]
    head.totp_confirmed_at = head.created_at
    assert custody.reset_password(db.session, head, actor=world.staff("admin")) == 1
    db.session.commit()
    assert (head.reset_state, head.reset_factor_lost) == (RESET_OPEN, False)
    [event] = _events("password.reset_requested")
    assert json.loads(event.details) == {"grants_revoked": 1, "factor_lost": False}
    # unless the administrator says it is lost too
    custody.reset_password(db.session, head, actor=world.staff("admin2"), factor_lost=True)
    assert (head.reset_state, head.reset_factor_lost) == (RESET_CONFIRM, True)


def test_an_administrator_cannot_reset_their_own_password(world: World) -> None:
    admin = world.users["admin"]
    custody.grant_from_recovery(db.session, world.units["yanji"], admin, world.content["yanji"],
                                actor=SYSTEM)
    db.session.commit()
    login, events = admin.password_hash, _audit_count()
    with pytest.raises(RoleRefused) as refused:
        custody.reset_password(db.session, admin, actor=world.staff("admin"))
    assert refused.value.code == "self_grant"
    db.session.flush()
    assert admin.password_hash == login and admin.reset_state is None
    assert len(custody.active_grants(db.session, admin.id)) == 1
    assert _audit_count() == events
