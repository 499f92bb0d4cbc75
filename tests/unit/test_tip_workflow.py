"""The tip's status table (portal/triage/workflow.py): every row is allowed from each of its
statuses for each of its roles, every other status and every other role is refused, each row
cites its basis, and the roles agree with portal/security/access.py."""

from __future__ import annotations

import pytest

from models import Role, TipStatus
from portal.security.access import ACTIONS
from portal.triage import workflow
from portal.triage.workflow import TRANSITIONS, TipTransitionRefused, check

ROWS = [pytest.param(row, id=row.action) for row in TRANSITIONS]
# The rows a person takes (not those that follow a referral's step, whose table decides who).
PEOPLES_ROWS = [pytest.param(row, id=row.action) for row in TRANSITIONS if row.follows is None]


def test_one_row_per_action() -> None:
    actions = [row.action for row in TRANSITIONS]
    assert len(actions) == len(set(actions))
    assert {row.action for row in TRANSITIONS} == {
        "accept", "decline", "verify", "close", "extend", "form_case", "refer"}


@pytest.mark.parametrize("row", ROWS)
def test_every_row_is_allowed_from_its_statuses_for_its_roles(row: workflow.Transition) -> None:
    for status in row.sources:
        for role in row.roles:
            assert check(status, row.action, {role}) is row
        if row.follows:
            assert check(status, row.action, None) is row
        assert row.leads_to(status) == (row.target or status)


@pytest.mark.parametrize("row", PEOPLES_ROWS)
def test_every_other_status_is_refused(row: workflow.Transition) -> None:
    others = [s for s in TipStatus if s not in row.sources]
    assert others, "an action open in every status does not belong in the table"
    for status in others:
        with pytest.raises(TipTransitionRefused) as refused:
            check(status, row.action, row.roles)
        assert (refused.value.code, refused.value.status, refused.value.action) == (
            "wrong_status", status, row.action)


@pytest.mark.parametrize("row", PEOPLES_ROWS)
def test_every_other_role_is_refused_before_the_status(row: workflow.Transition) -> None:
    others = [r for r in Role if r not in row.roles]
    assert others
    for role in others:
        for status in TipStatus:  # in its statuses or not: the role is what is refused
            with pytest.raises(TipTransitionRefused) as refused:
                check(status, row.action, {role})
            assert refused.value.code == "not_allowed"
    with pytest.raises(TipTransitionRefused, match="not_allowed"):
        check(row.sources[0], row.action, set())
    with pytest.raises(TipTransitionRefused, match="not_allowed"):
        check(row.sources[0], row.action, None)


def test_a_referrals_handover_moves_its_tips_from_any_status() -> None:
    """Who hands over is referral/workflow.py's decision; the tips of the case follow, whatever
    their status (a closed one too: the reporter reads where it went)."""
    row = workflow.transition_for("refer")
    for status in TipStatus:
        assert check(status, "refer", None) is row
        assert check(status, "refer", {Role.LIAISON}).leads_to(status) == TipStatus.REFERRED


def test_the_exact_table() -> None:
    """The statuses as the product has them: 受理 or not from received; verifying once
    accepted; closing and the one extension while open; a case from open tips; handed over
    with the case's referral."""
    S = TipStatus
    assert {(row.action, row.sources, row.target) for row in TRANSITIONS} == {
        ("accept", (S.RECEIVED,), S.ACCEPTED),
        ("decline", (S.RECEIVED,), S.DECLINED),
        ("verify", (S.ACCEPTED,), S.VERIFYING),
        ("close", (S.ACCEPTED, S.VERIFYING), S.CLOSED),
        ("extend", (S.ACCEPTED, S.VERIFYING), None),
        ("form_case", (S.ACCEPTED, S.VERIFYING), S.VERIFYING),
        ("refer", tuple(S), S.REFERRED),
    }
    assert workflow.transition_for("accept").starts == "tip.close"
    assert workflow.transition_for("refer").follows == "hand_over"
    # declined and closed are ends: nothing a person does moves them on
    for status in (S.DECLINED, S.CLOSED):
        assert [row.action for row in workflow.allowed(status, set(Role))
                if row.follows is None] == []


@pytest.mark.parametrize("row", ROWS)
def test_every_row_cites_its_basis(row: workflow.Transition) -> None:
    assert row.basis.startswith("PRODUCT.md ")
    section = row.basis.removeprefix("PRODUCT.md ").split(":")[0]
    assert section in ("People", "Deadlines", "Referral")


@pytest.mark.parametrize("row", ROWS)
def test_roles_agree_with_access(row: workflow.Transition) -> None:
    assert row.roles == ACTIONS[row.permission]


def test_allowed_lists_what_a_role_may_do_from_a_status() -> None:
    assert [t.action for t in workflow.allowed(TipStatus.RECEIVED, {Role.INTAKE_OFFICER})] == [
        "accept", "decline"]
    assert workflow.allowed(TipStatus.RECEIVED, {Role.CASE_OFFICER}) == []
    assert [t.action for t in workflow.allowed(TipStatus.ACCEPTED, {Role.CASE_OFFICER})] == [
        "verify", "close", "extend", "form_case"]
    assert [t.action for t in workflow.allowed(TipStatus.ACCEPTED, {Role.INTAKE_OFFICER})] == [
        "verify", "extend", "form_case"]
    assert workflow.sources("form_case") == (TipStatus.ACCEPTED, TipStatus.VERIFYING)


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(TipTransitionRefused, match="unknown_action"):
        check(TipStatus.RECEIVED, "approve", {Role.HEAD})
    with pytest.raises(KeyError):
        workflow.transition_for("approve")


def test_the_tip_page_offers_what_the_table_allows() -> None:
    """The staff page's list of actions with a status (portal/web/staff/views.py) names the
    table's statuses, not rules of its own."""
    from portal.web.staff.views import TIP_ACTIONS

    for action, permission, statuses in TIP_ACTIONS:
        if statuses is None:
            assert action not in {row.action for row in TRANSITIONS}
            continue
        row = workflow.transition_for(action)
        assert (permission, set(statuses)) == (row.permission, set(row.sources))
