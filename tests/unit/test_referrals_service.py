"""Cases, referrals and suggestions through their service (portal/cases/referrals.py), without
HTTP: the lists are access's SQL conditions, a step's audit row names the role its taker acts
in, and every door to content checks the key before any cipher is asked to open."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AuditEvent, IdentityPurpose, IdentityRequest, RequestState, Role
from models.base import utcnow
from portal.cases import referrals
from portal.intake import identity
from portal.security.keys import KeyNotHeld
from portal.web.extensions import db
from tests.unit.test_access_service import PEOPLE, World, build_world


@pytest.fixture
def world(app) -> World:
    return build_world()


def _ids(rows: list) -> set[int]:
    return {row.id for row in rows}


def test_each_person_lists_what_they_may_see(world: World) -> None:
    cases, refs = world.cases, world.referrals
    expected = {
        "team_a": ({cases["yanji"].id}, {refs["draft"].id, refs["handed"].id}),
        "intake_y": ({cases["yanji"].id}, {refs["draft"].id, refs["handed"].id}),
        "officer_h": ({cases["hunchun"].id}, {refs["hunchun"].id}),
        "head_zhou": (_ids(list(cases.values())), _ids(list(refs.values()))),
        "liaison_psb": (set(), {refs["handed"].id}),
        "liaison_proc": (set(), {refs["handed"].id}),
        "liaison_other": (set(), {refs["hunchun"].id}),
        "auditor": (set(), set()),
        "admin": (set(), set()),
    }
    for name, (case_ids, referral_ids) in expected.items():
        person = world.principal(name)
        assert _ids(referrals.visible_cases(db.session, person)) == case_ids, name
        listed = referrals.visible_referrals(db.session, person)
        assert _ids(listed.rows) == referral_ids and listed.total == len(referral_ids), name
        assert [r.id for r in listed.rows] == sorted(referral_ids, reverse=True)  # newest first
        due = referrals.due_lists(db.session, person, now=utcnow() + timedelta(1))
        assert _ids(due.overdue) == referral_ids and due.soon == [], name
        addressed = referrals.addressed_to(db.session, person).rows
        assert _ids(addressed) == (referral_ids if name.startswith("liaison") else set())
        suggestions = _ids(referrals.visible_suggestions(db.session, person))
        assert suggestions == {world.suggestions[c.unit.code].id for c in cases.values()
                               if c.id in case_ids}, name


def test_the_lists_come_a_page_at_a_time(world: World) -> None:
    """Newest first, `size` at a time; the last row's id asks for the next page; the total and
    the due lists' totals count every row, not only those shown."""
    head = world.principal("head_zhou")
    every = sorted(_ids(list(world.referrals.values())), reverse=True)
    pages, before = [], None
    while True:
        page = referrals.visible_referrals(db.session, head, before, size=2)
        assert page.total == len(every) and len(page.rows) <= 2
        pages.append([r.id for r in page.rows])
        if page.older is None:
            break
        before = page.older
    assert [i for p in pages for i in p] == every and len(pages) == (len(every) + 1) // 2
    due = referrals.due_lists(db.session, head, now=utcnow() + timedelta(1), size=1)
    assert len(due.overdue) == 1 and due.overdue_total == len(every)


def test_awaiting_approval_is_the_table_s_head_column_in_sql(world: World) -> None:
    """The list's SQL condition (access.approval_filter) picks what the table lets each person
    approve: the head of the case's unit and 州本级's head, not a head on the 专案组 nor one who
    submitted the report."""
    from models import CaseMember, ReferralEvent

    draft, other = world.referrals["draft"], world.referrals["hunchun"]
    for referral in (draft, other):
        referral.state = "awaiting_approval"
    db.session.add(ReferralEvent(referral_id=draft.id, action="submit", from_state="draft",
                                 to_state="awaiting_approval", actor_id=world.users["team_a"].id,
                                 actor_role="officer"))
    db.session.commit()
    expected = {"head_y": [draft.id], "head_zhou": [draft.id, other.id]}
    for name in PEOPLE:
        person = world.principal(name)
        by_rule = [r.id for r in sorted(referrals.visible_referrals(db.session, person).rows,
                                        key=lambda r: r.id)
                   if r.state == "awaiting_approval" and any(
                       t.action == "approve" for t in referrals.available_actions(person, r))]
        listed = [r.id for r in referrals.awaiting_approval(db.session, person)]
        assert listed == by_rule == expected.get(name, []), name
    # On the team, or the one who submitted it: not theirs to approve.
    db.session.add(CaseMember(case_id=other.case_id, user_id=world.users["head_zhou"].id))
    db.session.add(ReferralEvent(referral_id=draft.id, action="submit", from_state="draft",
                                 to_state="awaiting_approval",
                                 actor_id=world.users["head_zhou"].id, actor_role="head"))
    db.session.commit()
    db.session.expire_all()
    assert referrals.awaiting_approval(db.session, world.principal("head_zhou")) == []


def test_one_object_out_of_sight_is_not_found(world: World) -> None:
    officer_h = world.principal("officer_h")
    with pytest.raises(referrals.NotFound):
        referrals.get_case(db.session, officer_h, world.cases["yanji"].id)
    with pytest.raises(referrals.NotFound):
        referrals.get_referral(db.session, officer_h, world.referrals["handed"].id)
    with pytest.raises(referrals.NotFound):
        referrals.suggestion_row(db.session, officer_h, world.suggestions["yanji"].id)
    # a receiving body never sees the bureau's draft
    with pytest.raises(referrals.NotFound):
        referrals.get_referral(db.session, world.principal("liaison_psb"),
                               world.referrals["draft"].id)
    assert referrals.get_referral(db.session, world.principal("liaison_psb"),
                                  world.referrals["handed"].id) is world.referrals["handed"]


def _last(action: str) -> AuditEvent:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.seq.desc())).first()


def test_audit_rows_name_the_role_the_person_acts_in(world: World) -> None:
    """Not a case officer for everyone: a head who forms a case is recorded as the head."""
    tip = world.tips["yanji"]
    tip.status = "accepted"
    db.session.commit()
    team = [world.users["team_a"].id, world.users["team_b"].id]
    case = referrals.form_case(db.session, world.principal("head_y"), tip_ids=[tip.id],
                               member_ids=team, offence_code="pollution", title="案",
                               summary="事实")
    formed = _last("case.formed")
    assert (formed.actor_id, formed.role) == (world.users["head_y"].id, Role.HEAD)
    referral = referrals.create_referral(db.session, world.principal("team_a"), case.id,
                                         "psb_zhou")
    created = _last("referral.created")
    assert (created.object_id, created.role) == (referral.id, Role.CASE_OFFICER)
    # 州本级's head forming a case of 延吉 acts as 州本级's head
    world.tips["hunchun"].status = "accepted"
    db.session.commit()
    referrals.form_case(db.session, world.principal("head_zhou"),
                        tip_ids=[world.tips["hunchun"].id],
                        member_ids=[world.users["officer_h"].id, world.users["head_zhou"].id],
                        offence_code="pollution", title="案", summary="事实")
    assert _last("case.formed").role == Role.HEAD


def test_who_is_not_on_the_team_adds_nothing_to_a_case(world: World) -> None:
    with pytest.raises(referrals.CaseRefused) as refused:
        referrals.create_referral(db.session, world.principal("intake_y"),
                                  world.cases["yanji"].id, "psb_zhou")
    assert refused.value.code == "not_allowed"
    with pytest.raises(referrals.CaseRefused):
        referrals.add_documents(db.session, world.principal("intake_y"),
                                world.cases["yanji"].id, "investigation_report", [],
                                limits=None)  # type: ignore[arg-type]  # refused before use


def test_every_door_to_content_checks_the_key_first(world: World) -> None:
    """Someone who may see a thing but holds no key of it is refused in words (KeyNotHeld, or
    the identity's 'key_not_held'), never left to a cipher given no key (a 500)."""
    handed = world.referrals["handed"]
    liaison = world.principal("liaison_psb", keyed=False)
    for door in (referrals.package_ciphertext, referrals.open_package):
        with pytest.raises(KeyNotHeld):
            door(db.session, liaison, handed.id)
        refusal = _last("referral.package_refused")
        assert (refusal.actor_id, refusal.object_id) == (world.users["liaison_psb"].id,
                                                         handed.id)
    assert _last("referral.package_downloaded") is None
    with pytest.raises(KeyNotHeld):
        referrals.open_document(db.session, liaison, world.documents["step"].id)
    officer = world.principal("team_a", keyed=False)
    with pytest.raises(KeyNotHeld):
        referrals.open_case(db.session, officer, world.cases["yanji"].id)
    with pytest.raises(KeyNotHeld):
        referrals.open_document(db.session, officer, world.documents["case"].id)
    with pytest.raises(KeyNotHeld):
        referrals.open_suggestion(db.session, officer, world.suggestions["yanji"].id)
    with pytest.raises(KeyNotHeld):
        referrals.answer_suggestion(db.session, officer, world.suggestions["yanji"].id, "整改")
    with pytest.raises(KeyNotHeld):
        referrals.referral_reasons(db.session, officer, handed)
    # the review lists kinds and sizes without the key, and says so
    review = referrals.review_referral(db.session, officer, handed)
    assert review.key_held is False and review.title is None


def test_a_package_identity_without_the_bodys_key_is_refused(world: World) -> None:
    """The liaison's door to a reporter's identity sent with a package: no key, refused."""
    handed = world.referrals["handed"]
    row = IdentityRequest(tip_id=world.tips["yanji"].id,
                                   requester_id=world.users["team_a"].id,
                                   purpose=IdentityPurpose.PACKAGE, reason="移送",
                                   referral_id=handed.id,
                                   state=RequestState.GRANTED, created_at=utcnow(),
                                   decided_at=utcnow(), sealed_copy=b"not opened")
    db.session.add(row)
    db.session.commit()
    with pytest.raises(identity.IdentityRefused) as refused:
        identity.open_package_identity(db.session, world.principal("liaison_psb", keyed=False),
                                       handed.id)
    assert refused.value.code == "key_not_held"
    with pytest.raises(identity.IdentityNotFound):  # another body: not theirs at all
        identity.open_package_identity(db.session, world.principal("liaison_other"), handed.id)

