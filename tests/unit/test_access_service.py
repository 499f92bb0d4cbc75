"""Who may see and do what (portal/security/access.py), without HTTP: each role on tips, cases,
referrals, their documents and packages, and suggestions; and the SQL conditions the lists use
agree with `may` on every object of a seeded world."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date

import pytest
from sqlalchemy import select

from models import (
    Attachment,
    Case,
    CaseMember,
    Membership,
    Referral,
    Role,
    Suggestion,
    Tip,
    Unit,
    User,
)
from models.base import utcnow
from portal.security import access, crypto
from portal.security.access import Principal, principal_for
from portal.security.keys import KeyNotHeld, keys_opening
from portal.web.extensions import db
from referral.workflow import Actor

# name → (unit code, role); every one of them a confirmed role of an active account
PEOPLE = {
    "team_a": ("yanji", Role.CASE_OFFICER),  # on the 专案组 of the 延吉 case
    "team_b": ("yanji", Role.CASE_OFFICER),
    "intake_y": ("yanji", Role.INTAKE_OFFICER),  # of the unit, not on the team
    "head_y": ("yanji", Role.HEAD),
    "officer_h": ("hunchun", Role.CASE_OFFICER),  # another county
    "head_zhou": ("zhou", Role.HEAD),  # 州本级: every unit's
    "liaison_psb": ("psb_zhou", Role.LIAISON),  # the receiving body of the handed-over referral
    "liaison_proc": ("proc_zhou", Role.LIAISON),  # its copy (抄送检察院)
    "liaison_other": ("psb_yanji", Role.LIAISON),  # another body
    "auditor": ("zhou", Role.AUDITOR),
    "admin": ("zhou", Role.ADMINISTRATOR),
}


@dataclass
class World:
    units: dict[str, Unit]
    users: dict[str, User]
    keys: dict[int, crypto.AgeIdentity]  # unit id → its key (what a grant hands on)
    tips: dict[str, Tip] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    referrals: dict[str, Referral] = field(default_factory=dict)
    suggestions: dict[str, Suggestion] = field(default_factory=dict)
    documents: dict[str, Attachment] = field(default_factory=dict)

    def principal(self, name: str, *, keyed: bool = True) -> Principal:
        """The person as the portal sees them; `keyed`: holding their own unit's key."""
        unit = self.units[PEOPLE[name][0]]
        held = {unit.id: self.keys[unit.id]} if keyed and unit.id in self.keys else {}
        return principal_for(db.session, self.users[name], held)


def _attachment(family: str = "text", **columns: object) -> Attachment:
    attachment = Attachment(family=family, meta=b"-", created_at=utcnow(), **columns)
    db.session.add(attachment)
    db.session.flush()
    return attachment


def build_world() -> World:
    """Two counties' tips, cases and suggestions; the 延吉 case's referral to the prefecture
    public security bureau (copy: the procuratorate) as a draft and handed over with its
    package; the 珲春 case's referral handed over to 延吉市公安局."""
    units = {u.code: u for u in db.session.scalars(select(Unit))}
    keys: dict[int, crypto.AgeIdentity] = {}
    for code in ("zhou", "yanji", "hunchun", "psb_zhou", "proc_zhou", "psb_yanji"):
        pair = crypto.generate_keypair()
        units[code].public_key = pair.recipient
        keys[units[code].id] = pair.identity
    users = {}
    for name, (code, role) in PEOPLE.items():
        user = User(username=name, display_name=name, password_hash="-", public_key="-",
                    wrapped_identity=b"-", active=True)
        db.session.add(user)
        db.session.flush()
        db.session.add(Membership(user_id=user.id, unit_id=units[code].id, role=role,
                                  confirmed_at=utcnow()))
        users[name] = user
    world = World(units, users, keys)
    for code in ("yanji", "hunchun"):
        tip = Tip(receipt_lookup=os.urandom(32), receipt_recipient="-", unit_id=units[code].id,
                  county=code, status="verifying", content=b"-")
        db.session.add(tip)
        world.tips[code] = tip
        case = Case(number=f"test-{code}", year=2026, seq=len(world.cases) + 1,
                    unit_id=units[code].id, created_by_id=users["head_zhou"].id, content=b"-")
        db.session.add(case)
        world.cases[code] = case
        suggestion = Suggestion(kind="procuratorial", issuer="检察院", unit_id=units[code].id,
                                received_on=date(2026, 9, 1), created_by_id=users["head_zhou"].id,
                                content=b"-")
        db.session.add(suggestion)
        world.suggestions[code] = suggestion
    db.session.flush()
    for name in ("team_a", "team_b"):
        db.session.add(CaseMember(case_id=world.cases["yanji"].id, user_id=users[name].id))
    db.session.add(CaseMember(case_id=world.cases["hunchun"].id, user_id=users["officer_h"].id))
    now = utcnow()
    for name, case, receiver, copy, handed in (
            ("draft", "yanji", "psb_zhou", "proc_zhou", False),
            ("handed", "yanji", "psb_zhou", "proc_zhou", True),
            ("hunchun", "hunchun", "psb_yanji", None, True)):
        referral = Referral(case_id=world.cases[case].id, unit_id=world.cases[case].unit_id,
                            receiving_unit_id=units[receiver].id,
                            copy_unit_id=units[copy].id if copy else None,
                            state="handed_over" if handed else "draft", state_since=now,
                            created_by_id=users["team_a"].id,
                            handed_over_at=now if handed else None, due_at=now)
        db.session.add(referral)
        db.session.flush()
        world.referrals[name] = referral
        if handed:
            package = _attachment(case_id=referral.case_id, referral_id=referral.id,
                                  family="package", kind="package")
            referral.package_id = package.id
    world.documents["case"] = _attachment(case_id=world.cases["yanji"].id,
                                          kind="investigation_report")
    world.documents["step"] = _attachment(case_id=world.cases["yanji"].id,
                                          referral_id=world.referrals["handed"].id,
                                          kind="filing_decision")
    world.documents["tip_file"] = _attachment(tip_id=world.tips["yanji"].id)
    db.session.commit()
    return world


@pytest.fixture
def world(app) -> World:
    return build_world()


# Who sees each object (the bureau's head sees every unit's; a liaison a referral handed over
# to their body or copied to it, and nothing else).
YANJI_STAFF = {"team_a", "team_b", "intake_y", "head_y", "head_zhou"}
HUNCHUN_STAFF = {"officer_h", "head_zhou"}
SEES = {
    ("tip.view", "tips", "yanji"): YANJI_STAFF,
    ("tip.view", "tips", "hunchun"): HUNCHUN_STAFF,
    ("case.view", "cases", "yanji"): YANJI_STAFF,
    ("case.view", "cases", "hunchun"): HUNCHUN_STAFF,
    ("referral.view", "referrals", "draft"): YANJI_STAFF,
    ("referral.view", "referrals", "handed"): YANJI_STAFF | {"liaison_psb", "liaison_proc"},
    ("referral.view", "referrals", "hunchun"): HUNCHUN_STAFF | {"liaison_other"},
    ("suggestion.view", "suggestions", "yanji"): YANJI_STAFF,
    ("suggestion.view", "suggestions", "hunchun"): HUNCHUN_STAFF,
    ("document.view", "documents", "case"): YANJI_STAFF,
    ("document.view", "documents", "step"): YANJI_STAFF | {"liaison_psb", "liaison_proc"},
    ("document.view", "documents", "tip_file"): set(),  # a tip's file has its own door
}


@pytest.mark.parametrize(("action", "kind", "key"), list(SEES))
def test_who_sees_what(world: World, action: str, kind: str, key: str) -> None:
    obj = getattr(world, kind)[key]
    seen = {name for name in PEOPLE if access.may(world.principal(name), action, obj)}
    assert seen == SEES[(action, kind, key)]


def test_the_lists_sql_agrees_with_may(world: World) -> None:
    """Every list condition picks exactly the objects `may` allows, for every person."""
    lists = (("tip.view", Tip, access.tip_filter), ("case.view", Case, access.case_filter),
             ("referral.view", Referral, access.referral_filter),
             ("suggestion.view", Suggestion, access.suggestion_filter))
    for name in PEOPLE:
        person = world.principal(name)
        for action, model, condition in lists:
            rows = list(db.session.scalars(select(model)))
            assert rows, model
            by_sql = set(db.session.scalars(select(model.id).where(condition(person))))
            by_may = {row.id for row in rows if access.may(person, action, row)}
            assert by_sql == by_may, (name, model.__name__)
        addressed = set(db.session.scalars(select(Referral.id).where(
            access.addressed_filter(person))))
        assert addressed == {r.id for r in world.referrals.values()
                             if access.may(person, "referral.view", r)
                             and not access.may(person, "case.view", r.case)}, name


def test_tip_actions_follow_the_role_in_the_unit(world: World) -> None:
    tip = world.tips["yanji"]
    assert access.may(world.principal("intake_y"), "tip.accept", tip)
    assert not access.may(world.principal("team_a"), "tip.accept", tip)
    assert access.may(world.principal("team_a"), "tip.close", tip)
    assert access.may(world.principal("head_zhou"), "tip.hold", tip)
    assert not access.may(world.principal("head_y"), "tip.hold", world.tips["hunchun"])
    # an action that is not a tip's, or not an action at all, is refused
    assert not access.may(world.principal("head_y"), "case.view", tip)
    assert not access.may(world.principal("head_y"), "no.such.action", tip)


def test_the_team_and_the_heads_act_on_a_case(world: World) -> None:
    case = world.cases["yanji"]
    edits = {name for name in PEOPLE if access.may(world.principal(name), "case.edit", case)}
    assert edits == {"team_a", "team_b", "head_y", "head_zhou"}  # not intake_y: not on it
    assert not access.may(world.principal("team_a"), "case.edit", world.cases["hunchun"])


def test_workflow_columns_of_each_person(world: World) -> None:
    handed, other = world.referrals["handed"], world.referrals["hunchun"]
    roles = {name: access.workflow_roles(world.principal(name), handed) for name in PEOPLE}
    assert roles["team_a"] == {Actor.OFFICER}
    # a head acts for the team, and approves its report
    assert roles["head_y"] == roles["head_zhou"] == {Actor.OFFICER, Actor.HEAD}
    assert roles["liaison_psb"] == {Actor.LIAISON}
    assert roles["liaison_proc"] == set()  # the copy reads, the receiving body acts
    for name in ("intake_y", "officer_h", "liaison_other", "auditor", "admin"):
        assert roles[name] == set(), name
    assert access.workflow_roles(world.principal("liaison_other"), other) == {Actor.LIAISON}
    review = {name for name in PEOPLE
              if access.may(world.principal(name), "referral.review", handed)}
    assert review == {"team_a", "team_b", "head_y", "head_zhou"}
    redact = {name for name in PEOPLE
              if access.may(world.principal(name), "referral.redact", handed)}
    assert redact == {"team_a", "team_b", "head_y", "head_zhou"}


def test_a_head_on_the_team_does_not_approve_its_report(world: World) -> None:
    case, handed = world.cases["yanji"], world.referrals["handed"]
    db.session.add(CaseMember(case_id=case.id, user_id=world.users["head_y"].id))
    db.session.commit()
    db.session.refresh(case)
    assert access.workflow_roles(world.principal("head_y"), handed) == {Actor.OFFICER}


def test_packages_need_a_key_of_the_referral(world: World) -> None:
    handed, draft = world.referrals["handed"], world.referrals["draft"]
    opens = {name for name in PEOPLE
             if access.may(world.principal(name), "package.open", handed)}
    # a key of the case's unit, of 州本级, of the receiving body or of its copy
    assert opens == YANJI_STAFF | {"liaison_psb", "liaison_proc"}
    assert not access.may(world.principal("liaison_psb", keyed=False), "package.open", handed)
    assert not access.may(world.principal("head_y", keyed=False), "package.open", handed)
    assert not access.may(world.principal("liaison_other"), "package.open", handed)
    assert not access.may(world.principal("team_a"), "package.open", draft)  # none built yet


def test_content_needs_a_key_as_well_as_the_right_to_see(world: World) -> None:
    case, suggestion = world.cases["yanji"], world.suggestions["yanji"]
    assert access.may(world.principal("team_a"), "case.open", case)
    assert not access.may(world.principal("team_a", keyed=False), "case.open", case)
    assert access.may(world.principal("head_zhou"), "case.open", case)  # 州本级's key opens it
    assert not access.may(world.principal("officer_h"), "case.open", case)
    assert access.may(world.principal("intake_y"), "suggestion.open", suggestion)
    assert not access.may(world.principal("intake_y", keyed=False), "suggestion.open",
                          suggestion)
    assert access.may(world.principal("team_a"), "suggestion.record", world.units["yanji"])
    assert not access.may(world.principal("team_a"), "suggestion.record",
                          world.units["hunchun"])
    assert not access.may(world.principal("auditor"), "suggestion.record", world.units["zhou"])


def test_the_keys_that_open_each_kind(world: World) -> None:
    units, keys = world.units, world.keys
    team_a = world.principal("team_a")
    assert team_a.identities_for(world.tips["yanji"]) == [keys[units["yanji"].id]]
    assert team_a.identities_for(world.cases["yanji"]) == [keys[units["yanji"].id]]
    assert team_a.identities_for(world.referrals["handed"]) == [keys[units["yanji"].id]]
    liaison = world.principal("liaison_proc")
    assert liaison.identities_for(world.referrals["handed"]) == [keys[units["proc_zhou"].id]]
    with pytest.raises(KeyNotHeld) as refused:
        liaison.identities_for(world.cases["yanji"])
    assert refused.value.unit is not None and refused.value.unit.code == "yanji"
    with pytest.raises(KeyNotHeld):
        world.principal("team_a", keyed=False).identities_for(world.suggestions["yanji"])


def test_the_one_key_lookup() -> None:
    held = {1: crypto.AgeIdentity("a"), 2: crypto.AgeIdentity("b")}
    assert keys_opening(held, (2, None, 1, 2, 3)) == ["b", "a"]  # in order, each once
    with pytest.raises(KeyNotHeld):
        keys_opening(held, (3, None))
    with pytest.raises(KeyNotHeld):
        keys_opening({}, ())


def test_the_role_a_person_acts_in(world: World) -> None:
    yanji = world.units["yanji"].id
    assert access.acting_role(world.principal("team_a"), yanji) == Role.CASE_OFFICER
    assert access.acting_role(world.principal("intake_y"), yanji) == Role.INTAKE_OFFICER
    assert access.acting_role(world.principal("head_y"), yanji) == Role.HEAD
    assert access.acting_role(world.principal("head_zhou"), yanji) == Role.HEAD  # from 州本级
    for name in ("officer_h", "liaison_psb", "auditor", "admin"):
        assert access.acting_role(world.principal(name), yanji) is None, name


def test_auditors_and_administrators_see_no_content(world: World) -> None:
    for name in ("auditor", "admin"):
        person = world.principal(name)
        for model, condition in ((Tip, access.tip_filter), (Case, access.case_filter),
                                 (Referral, access.referral_filter),
                                 (Suggestion, access.suggestion_filter)):
            assert list(db.session.scalars(select(model).where(condition(person)))) == []


def test_the_role_in_custody_and_in_confirming() -> None:
    """Who hands on a reporter identity key acts as the unit's custodian where they are one,
    else as administrator (from the printed recovery key); a confirmer acts as administrator,
    else as the body's liaison for a liaison role, else as the unit's head."""
    custodian = Principal(user=User(username="c"), roles={1: {Role.CUSTODIAN}, 2: {Role.HEAD}},
                          bureau_id=1, handling_ids=frozenset({1, 2, 3}))
    admin = Principal(user=User(username="a"), roles={1: {Role.ADMINISTRATOR}}, bureau_id=1)
    both = Principal(user=User(username="b"),
                     roles={1: {Role.ADMINISTRATOR}, 3: {Role.CUSTODIAN}}, bureau_id=1)
    liaison = Principal(user=User(username="l"), roles={9: {Role.LIAISON}}, bureau_id=1)
    # Held in the unit itself: 州本级's custody is not widened to the counties here.
    assert custodian.units_holding({Role.CUSTODIAN}) == {1}
    assert custodian.units_holding(access.KEY_ROLES) == {2}
    assert custodian.units_for("identity.decide") == {1, 2, 3}
    assert access.custody_role(custodian, 1) == Role.CUSTODIAN
    assert access.custody_role(custodian, 2) is None
    assert access.custody_role(admin, 2) == Role.ADMINISTRATOR
    assert access.custody_role(both, 3) == Role.CUSTODIAN
    assert access.custody_role(both, 2) == Role.ADMINISTRATOR
    assert access.custody_role(liaison, 9) is None
    assert access.confirming_role(admin, Role.LIAISON) == Role.ADMINISTRATOR
    assert access.confirming_role(liaison, Role.LIAISON) == Role.LIAISON
    assert access.confirming_role(custodian, Role.CASE_OFFICER) == Role.HEAD
