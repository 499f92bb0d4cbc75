"""A tip's statuses as data: one table of the actions that depend on a tip's status, the status
each leads from and to, and who may take it, checked in one place (`check`).

Like referral/workflow.py, the pages, the API and the services ask this table instead of
repeating the rules; each row cites its basis in the product reference
(../shared/spec/PRODUCT.md: who does what under "People", the periods under "Deadlines").
The other actions on a tip (classify, priority, message, assign, link a duplicate, transfer,
hold) are open in every status: only the roles in portal/security/access.py ACTIONS decide them.
Plain Python: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.tip import TipStatus
from models.user import Role

S = TipStatus
OFFICERS = frozenset({Role.INTAKE_OFFICER, Role.CASE_OFFICER, Role.HEAD})
INTAKE = frozenset({Role.INTAKE_OFFICER, Role.HEAD})


@dataclass(frozen=True)
class Transition:
    sources: tuple[TipStatus, ...]
    action: str
    target: TipStatus | None  # None: the status stays (the action is only open from `sources`)
    # Who may take it, in the tip's unit or in 州本级 (the same roles as access.py ACTIONS under
    # `permission`; tests/unit/test_tip_workflow.py holds the two to agreeing).
    roles: frozenset[str]
    permission: str
    # A step that follows another procedure's (referral/workflow.py), whose table has already
    # decided who takes it: the tip's status moves with it, whoever's the step was.
    follows: str | None = None
    starts: str | None = None  # the deadline it starts (referral/deadlines.py RULES)
    basis: str = ""

    def leads_to(self, status: str) -> str:
        """The status after this step from `status` (the same one when the status stays)."""
        return self.target or status


TRANSITIONS: tuple[Transition, ...] = (
    Transition((S.RECEIVED,), "accept", S.ACCEPTED, INTAKE, "tip.accept", starts="tip.close",
               basis="PRODUCT.md People: the intake officer (受理员) accepts or declines; "
                     "Deadlines: decide to accept within 15 days of receipt, close within 60 "
                     "days of acceptance"),
    Transition((S.RECEIVED,), "decline", S.DECLINED, INTAKE, "tip.decline",
               basis="PRODUCT.md People: the intake officer (受理员) accepts or declines; "
                     "Deadlines: decide to accept (受理) or decline, telling the reporter"),
    Transition((S.ACCEPTED,), "verify", S.VERIFYING, OFFICERS, "tip.verify",
               basis="PRODUCT.md People: the case officer (承办人) verifies accepted tips"),
    Transition((S.ACCEPTED, S.VERIFYING), "close", S.CLOSED,
               frozenset({Role.CASE_OFFICER, Role.HEAD}), "tip.close",
               basis="PRODUCT.md Deadlines: close the tip with a result, 60 days from "
                     "acceptance"),
    Transition((S.ACCEPTED, S.VERIFYING), "extend", None, OFFICERS, "tip.extend",
               basis="PRODUCT.md Deadlines: one extension, with notice to the reporter, at "
                     "most 30 days"),
    Transition((S.ACCEPTED, S.VERIFYING), "form_case", S.VERIFYING, OFFICERS, "tip.verify",
               basis="PRODUCT.md People: the case officer (承办人) verifies accepted tips and "
                     "forms cases (a 专案组 has at least 2 officers)"),
    # From whatever status a tip of the case is in (form_case leaves it verifying; it may have
    # been closed since, or referred by an earlier referral of the same case): the handover is
    # the referral table's decision, and the reporter reads where their tip went.
    Transition(tuple(S), "refer", S.REFERRED, OFFICERS,
               "tip.verify", follows="hand_over",
               basis="PRODUCT.md Referral: hand over to public security after approval "
                     "(310号 第5条; 17号 第6条)"),
)


class TipTransitionRefused(Exception):
    """The table does not allow this action now, or not for these roles. `code` is what the
    pages show in words: "wrong_status" or "not_allowed" (or "unknown_action", a bug)."""

    def __init__(self, code: str, status: str, action: str) -> None:
        super().__init__(f"{action} from {status}: {code}")
        self.code = code
        self.status = status
        self.action = action


def transition_for(action: str) -> Transition:
    """The row of an action (KeyError for an action not in the table)."""
    for row in TRANSITIONS:
        if row.action == action:
            return row
    raise KeyError(action)


def sources(action: str) -> tuple[TipStatus, ...]:
    """The statuses an action may be taken from (for the queries that list such tips)."""
    return transition_for(action).sources


def allowed(status: str, roles: Iterable[str] | None = None) -> list[Transition]:
    """The actions open from `status`, in table order; with `roles`, those that someone holding
    them takes (not the steps that follow a referral's)."""
    held = None if roles is None else set(roles)
    return [t for t in TRANSITIONS if status in t.sources
            and (held is None or (t.follows is None and bool(held & t.roles)))]


def check(status: str, action: str, roles: Iterable[str] | None) -> Transition:
    """The transition for `action` on a tip in `status`, or TipTransitionRefused saying why
    not. Who comes before what: the roles the person holds where the tip is (its unit, or
    州本级) are checked first, as the tip page does. A row that `follows` a referral step is
    checked with roles None: the referral's own table has decided who takes it."""
    row = next((t for t in TRANSITIONS if t.action == action), None)
    if row is None:
        raise TipTransitionRefused("unknown_action", status, action)
    if row.follows is None and not set(roles or ()) & row.roles:
        raise TipTransitionRefused("not_allowed", status, action)
    if status not in row.sources:
        raise TipTransitionRefused("wrong_status", status, action)
    return row
