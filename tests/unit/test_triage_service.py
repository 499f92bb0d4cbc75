"""Tip actions through the service functions (portal/triage/tip_actions.py), with a real
database session and no HTTP: each moves the status the table allows (portal/triage/workflow.py),
tells the reporter, leaves its audit event naming the role the person acts in, and refuses the
wrong role, unit or status without changing anything."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from auditlog.events import SYSTEM
from models import AuditEvent, Channel, Tip, TipStatus, TipUpdate, Unit, User
from portal.cases import referrals
from portal.intake import filing
from portal.operations import retention
from portal.security.access import KeyNotHeld, Principal, principal_for
from portal.triage import tip_actions
from portal.web.extensions import db
from tests.conftest import FAST_ARGON2

LIMITS = filing.Limits(10, 10**6, 10**6)


class World:
    """Officers of 延吉市 (intake, case, head), one of 珲春市, one of 州本级, and tips to act on."""

    def __init__(self, staff, keys: dict[str, str]) -> None:
        self.keys = keys
        self.intake = staff.create("sv_intake", "yanji", "intake_officer")
        self.case = staff.create("sv_case", "yanji", "case_officer")
        self.case2 = staff.create("sv_case2", "yanji", "case_officer")
        self.head = staff.create("sv_head", "yanji", "head")
        self.hunchun = staff.create("sv_hunchun", "hunchun", "intake_officer")
        self.bureau = staff.create("sv_bureau", "zhou", "intake_officer")
        self.keyless = staff.create("sv_keyless", "yanji", "intake_officer", grant=False)

    def unit_id(self, code: str) -> int:
        return db.session.scalars(select(Unit.id).where(Unit.code == code)).one()

    def principal(self, user_id: int, *codes: str) -> Principal:
        identities = {self.unit_id(code): self.keys[code] for code in codes}
        return principal_for(db.session, db.session.get(User, user_id), identities=identities)

    def tip(self, category: str | None = "P01", county: str = "yanji") -> int:
        draft = filing.TipDraft(narrative="oil in the river", county=county, category=category)
        filed = filing.file_tip(db.session, draft, [], limits=LIMITS, receipt_cost=FAST_ARGON2,
                                actor=SYSTEM)
        return filed.tip_id

    def accepted(self, **fields: str | None) -> int:
        tip_id = self.tip(**fields)
        tip_actions.accept(db.session, self.principal(self.intake), tip_id)
        return tip_id


@pytest.fixture
def world(app, staff) -> World:
    return World(staff, staff.keys)


def _tip(tip_id: int) -> Tip:
    db.session.expire_all()
    return db.session.get(Tip, tip_id)


def _events(action: str, tip_id: int) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.object_id == tip_id).order_by(AuditEvent.seq)))


def _updates(tip_id: int) -> list[str]:
    return list(db.session.scalars(select(TipUpdate.status).where(TipUpdate.tip_id == tip_id)
                                   .order_by(TipUpdate.id)))


def _refused(code: str, call, *args, **kwargs) -> None:
    with pytest.raises(tip_actions.Refused) as refused:
        call(*args, **kwargs)
    assert refused.value.code == code
    db.session.rollback()


def test_accept_starts_the_closing_period_and_tells_the_reporter(world) -> None:
    tip_id = world.tip()
    tip_actions.accept(db.session, world.principal(world.intake), tip_id)
    tip = _tip(tip_id)
    assert tip.status == TipStatus.ACCEPTED and tip.accepted_at is not None
    assert tip.due_step == "tip.close" and tip.due_at is not None
    assert tip.due_at - tip.accepted_at >= timedelta(days=60)
    assert _updates(tip_id) == ["received", "accepted"]
    [event] = _events("tip.accepted", tip_id)
    assert (event.actor_type, event.actor_id, event.role, event.unit_code) == (
        "staff", world.intake, "intake_officer", "yanji")


def test_accept_refusals_change_nothing(world) -> None:
    unclassified = world.tip(category=None)
    _refused("classify_first", tip_actions.accept, db.session, world.principal(world.intake),
             unclassified)
    tip_id = world.tip()
    # a case officer does not decide 受理 (access.py tip.accept; workflow.py "accept")
    _refused("not_allowed", tip_actions.accept, db.session, world.principal(world.case), tip_id)
    # another county's officer does not even see it
    with pytest.raises(tip_actions.NotFound):
        tip_actions.accept(db.session, world.principal(world.hunchun), tip_id)
    db.session.rollback()
    for refused_id in (unclassified, tip_id):
        assert _tip(refused_id).status == TipStatus.RECEIVED
        assert _events("tip.accepted", refused_id) == []
    # 州本级 acts on every unit's tips, in its own role
    tip_actions.accept(db.session, world.principal(world.bureau), tip_id)
    assert _events("tip.accepted", tip_id)[0].role == "intake_officer"
    # once accepted, not again; and not declined any more
    _refused("wrong_status", tip_actions.accept, db.session, world.principal(world.intake),
             tip_id)
    _refused("wrong_status", tip_actions.decline, db.session, world.principal(world.intake),
             tip_id, "not ours")
    assert len(_events("tip.accepted", tip_id)) == 1 and _events("tip.declined", tip_id) == []


def test_decline_needs_a_reason_and_ends_the_tip(world) -> None:
    tip_id = world.tip()
    intake = world.principal(world.intake)
    _refused("reason_required", tip_actions.decline, db.session, intake, tip_id, "  ")
    _refused("too_long", tip_actions.decline, db.session, intake, tip_id, "x" * 4001)
    assert _tip(tip_id).status == TipStatus.RECEIVED
    tip_actions.decline(db.session, intake, tip_id, "no environmental matter")
    tip = _tip(tip_id)
    assert tip.status == TipStatus.DECLINED and tip.closed_at is not None
    assert (tip.due_step, tip.due_at) == (None, None)
    assert _updates(tip_id) == ["received", "declined"]
    assert [e.role for e in _events("tip.declined", tip_id)] == ["intake_officer"]
    for action in (tip_actions.start_verification, tip_actions.accept):
        _refused("wrong_status", action, db.session, world.principal(world.head), tip_id)
    _refused("wrong_status", tip_actions.close, db.session, world.principal(world.head), tip_id,
             "done")


def test_verify_then_close_by_a_case_officer(world) -> None:
    tip_id = world.tip()
    case = world.principal(world.case)
    _refused("wrong_status", tip_actions.start_verification, db.session, case, tip_id)
    tip_actions.accept(db.session, world.principal(world.intake), tip_id)
    tip_actions.start_verification(db.session, case, tip_id)
    assert _tip(tip_id).status == TipStatus.VERIFYING
    assert [e.role for e in _events("tip.verification_started", tip_id)] == ["case_officer"]
    _refused("wrong_status", tip_actions.start_verification, db.session, case, tip_id)
    # an intake officer does not close (access.py tip.close; workflow.py "close")
    _refused("not_allowed", tip_actions.close, db.session, world.principal(world.intake), tip_id,
             "fined")
    _refused("reason_required", tip_actions.close, db.session, case, tip_id, "")
    tip_actions.close(db.session, case, tip_id, "the factory was fined")
    tip = _tip(tip_id)
    assert tip.status == TipStatus.CLOSED and tip.closed_at is not None and tip.due_at is None
    [event] = _events("tip.closed", tip_id)
    assert event.role == "case_officer" and '"on_time":true' in event.details
    assert _updates(tip_id) == ["received", "accepted", "verifying", "closed"]
    _refused("wrong_status", tip_actions.close, db.session, case, tip_id, "again")


def test_close_straight_from_accepted_by_a_head(world) -> None:
    tip_id = world.accepted()
    tip_actions.close(db.session, world.principal(world.head), tip_id, "resolved on the phone")
    assert _tip(tip_id).status == TipStatus.CLOSED
    assert [e.role for e in _events("tip.closed", tip_id)] == ["head"]


def test_extend_once_while_open(world) -> None:
    received = world.tip()
    case = world.principal(world.case)
    _refused("wrong_status", tip_actions.extend_deadline, db.session, case, received, 10, "why")
    tip_id = world.accepted()
    due = _tip(tip_id).due_at
    _refused("extension_too_long", tip_actions.extend_deadline, db.session, case, tip_id, 31,
             "site visit")
    tip_actions.extend_deadline(db.session, case, tip_id, 10, "site visit")
    tip = _tip(tip_id)
    assert tip.extended and tip.due_at > due and tip.status == TipStatus.ACCEPTED
    _refused("already_extended", tip_actions.extend_deadline, db.session, case, tip_id, 5, "more")
    assert [e.role for e in _events("tip.deadline_extended", tip_id)] == ["case_officer"]


def test_assign_only_to_an_officer_of_the_unit(world) -> None:
    tip_id = world.tip()
    intake = world.principal(world.intake)
    _refused("not_allowed", tip_actions.assign, db.session, world.principal(world.case), tip_id,
             world.case)
    _refused("not_a_member", tip_actions.assign, db.session, intake, tip_id, world.hunchun)
    assert _tip(tip_id).assigned_to_id is None
    tip_actions.assign(db.session, intake, tip_id, world.case)
    assert _tip(tip_id).assigned_to_id == world.case
    [event] = _events("tip.assigned", tip_id)
    assert event.role == "intake_officer" and f'"assignee":{world.case}' in event.details


def test_priority_and_classification_in_any_status(world) -> None:
    tip_id = world.tip()
    tip_actions.decline(db.session, world.principal(world.intake), tip_id, "duplicate call")
    case = world.principal(world.case)
    tip_actions.set_priority(db.session, case, tip_id, 2)
    _refused("bad_priority", tip_actions.set_priority, db.session, case, tip_id, 7)
    # classifying is an intake duty
    _refused("not_allowed", tip_actions.classify, db.session, case, tip_id, "P02")
    tip_actions.classify(db.session, world.principal(world.intake), tip_id, "P02")
    _refused("unknown_category", tip_actions.classify, db.session,
             world.principal(world.intake), tip_id, "P99")
    tip = _tip(tip_id)
    assert (tip.priority, tip.category.code, tip.status) == (2, "P02", TipStatus.DECLINED)


def test_perform_checks_the_key_before_the_input(world) -> None:
    tip_id = world.tip()
    with pytest.raises(KeyNotHeld):
        tip_actions.perform(db.session, world.principal(world.keyless), tip_id, "accept", {})
    assert _tip(tip_id).status == TipStatus.RECEIVED
    with pytest.raises(tip_actions.NotFound):
        tip_actions.perform(db.session, world.principal(world.intake, "yanji"), tip_id,
                            "approve", {})
    # the role before the status, and both before what was sent
    _refused("not_allowed", tip_actions.perform, db.session,
             world.principal(world.intake, "yanji"), tip_id, "close", {"reason": ""})
    _refused("wrong_status", tip_actions.perform, db.session,
             world.principal(world.head, "yanji"), tip_id, "close", {"reason": ""})
    tip_actions.perform(db.session, world.principal(world.intake, "yanji"), tip_id, "accept", {})
    assert _tip(tip_id).status == TipStatus.ACCEPTED


def test_legal_hold_by_a_head_only(world) -> None:
    tip_id = world.tip()
    _refused("not_allowed", retention.set_hold, db.session, world.principal(world.intake),
             tip_id, True, "court order 12")
    retention.set_hold(db.session, world.principal(world.head), tip_id, True, "court order 12")
    assert _tip(tip_id).legal_hold
    assert [e.role for e in _events("tip.hold_set", tip_id)] == ["head"]
    with pytest.raises(retention.RetentionRefused, match="already_on_hold"):
        retention.set_hold(db.session, world.principal(world.head), tip_id, True, "again")


def test_a_hotline_tip_names_the_role_it_was_entered_in(world) -> None:
    draft = filing.TipDraft(narrative="a caller reports smoke", county="yanji",
                            channel=Channel.HOTLINE)
    for user_id, role in ((world.intake, "intake_officer"), (world.head, "head")):
        filed = tip_actions.hotline_tip(db.session, world.principal(user_id, "yanji"), draft,
                                        limits=LIMITS, receipt_cost=FAST_ARGON2)
        [event] = _events("tip.received", filed.tip_id)
        assert (event.actor_id, event.role) == (user_id, role)
    _refused("not_allowed", tip_actions.hotline_tip, db.session,
             world.principal(world.case, "yanji"), draft, limits=LIMITS,
             receipt_cost=FAST_ARGON2)


def test_a_case_is_formed_from_open_tips_only(world) -> None:
    officer = world.principal(world.case)
    members = [world.case, world.case2]

    def form(tip_ids: list[int]):
        return referrals.form_case(db.session, officer, tip_ids=tip_ids, member_ids=members,
                                   offence_code="pollution", title="quarry", summary="oil")

    received, declined = world.tip(), world.tip()
    tip_actions.decline(db.session, world.principal(world.intake), declined, "not ours")
    accepted, verifying = world.accepted(), world.accepted()
    tip_actions.start_verification(db.session, officer, verifying)
    for wrong in (received, declined):
        with pytest.raises(referrals.CaseRefused, match="tip_not_accepted"):
            form([accepted, wrong])
        db.session.rollback()
    assert {t.id for t in referrals.tips_for_a_case(db.session, officer)} >= {accepted, verifying}
    assert not {received, declined} & {t.id for t in referrals.tips_for_a_case(db.session,
                                                                               officer)}
    form([accepted, verifying])
    assert [_tip(t).status for t in (accepted, verifying)] == [TipStatus.VERIFYING] * 2
    # the reporter reads "verifying" once: the tip already verifying gets no second entry
    assert _updates(accepted)[-1] == "verifying" and _updates(verifying).count("verifying") == 1


def _counted_from_rows() -> dict[tuple[int, int, str], int]:
    from sqlalchemy import func

    rows = db.session.execute(select(Tip.unit_id, func.coalesce(Tip.category_id, 0), Tip.status,
                                      func.count()).group_by(Tip.unit_id, Tip.category_id,
                                                             Tip.status))
    return {(u, c, s): n for u, c, s, n in rows}


def _kept_counts() -> dict[tuple[int, int, str], int]:
    from models import TipCount

    return {(r.unit_id, r.category_id, r.status): r.n
            for r in db.session.scalars(select(TipCount)) if r.n}


def test_the_kept_counts_follow_every_change_of_a_tip(world: World) -> None:
    """models/tip_count.py: filing, classifying, accepting, declining, transferring and closing,
    a change made after the session forgot what it had read, a savepoint rolled back and a
    deletion each leave the counts equal to counting the rows; and the queue's summary reads
    them."""
    from portal.triage import queue as tip_queue

    intake = world.principal(world.intake, "yanji")
    tips = [world.tip(), world.tip(category=None), world.tip(category="P02"),
            world.tip(county="hunchun"), world.tip()]
    db.session.commit()
    assert _kept_counts() == _counted_from_rows()
    tip_actions.classify(db.session, intake, tips[1], "P03")
    tip_actions.accept(db.session, intake, tips[0])
    tip_actions.decline(db.session, intake, tips[2], "not our matter")
    db.session.commit()
    assert _kept_counts() == _counted_from_rows()
    db.session.expire_all()  # the old values must be read again before they change
    tip_actions.transfer(db.session, intake, tips[4], "hunchun", "their river")
    db.session.commit()
    assert _kept_counts() == _counted_from_rows()
    with pytest.raises(RuntimeError), db.session.begin_nested():
        db.session.get(Tip, tips[0]).status = TipStatus.CLOSED
        db.session.flush()
        raise RuntimeError("the step fails after its flush")
    db.session.commit()
    assert _kept_counts() == _counted_from_rows()
    stray = db.session.get(Tip, world.tip(county="hunchun"))
    db.session.commit()
    for update in db.session.scalars(select(TipUpdate).where(TipUpdate.tip_id == stray.id)):
        db.session.delete(update)
    db.session.delete(stray)
    db.session.commit()
    assert _kept_counts() == _counted_from_rows()
    # the queue's summary: open tips of the officer's units by category code
    summary = tip_queue.category_counts(db.session, world.principal(world.intake, "yanji"))
    open_yanji = db.session.scalars(select(Tip).where(
        Tip.unit_id == world.unit_id("yanji"),
        Tip.status.in_(list(tip_queue.OPEN_STATUSES)))).all()
    expected: dict[str | None, int] = {}
    for tip in open_yanji:
        code = tip.category.code if tip.category else None
        expected[code] = expected.get(code, 0) + 1
    assert summary == expected and sum(summary.values()) == 2
    # Counting again from the rows (after writes behind the ORM) gives the same counts.
    from models.tip_count import rebuild

    kept = _kept_counts()
    rebuild(db.session)
    db.session.commit()
    db.session.expire_all()
    assert _kept_counts() == kept


def test_the_counts_are_locked_after_the_audit_head(world: World) -> None:
    """Two transactions must never take the same locks in opposite orders: a tip's change locks
    the audit log's head row at its first event and the counts' rows only as it commits."""
    from sqlalchemy import event

    tip_id = world.tip()
    db.session.commit()
    statements: list[str] = []
    engine = db.session.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        filed = world.tip(category="P02")  # filing: a new tip, flushed before its events
        tip_actions.accept(db.session, world.principal(world.intake, "yanji"), tip_id)
        db.session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    head = next(i for i, s in enumerate(statements) if "audit_head" in s)
    counts = [i for i, s in enumerate(statements) if "tip_counts" in s]
    assert filed and counts and min(counts) > head, statements
