"""The one place that decides who may see and do what: tips, cases, referrals, their documents
and packages, and the inbound suggestions (三书一函).

A member of a handling unit with an officer role sees that unit's tips, cases and suggestions; a
member of 州本级 sees every unit's. A case's 专案组 and the unit's head act on it. A receiving
body's liaisons see a referral once it is handed over to their body, nothing before and nothing
else. Administrators and auditors have no officer role by being what they are, so they see no
content.

Each rule is written once, twice over: as a SQL condition the lists filter with (`tip_filter`,
`case_filter`, `referral_filter`, `suggestion_filter`, `addressed_filter`), and as `may(principal,
action, obj)` for one object; tests/unit/test_access_service.py holds the two to agreeing. Which
keys open something is `Principal.identities_for`, through the one key lookup
(portal/security/keys.py keys_opening)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, false, select
from sqlalchemy.orm import Session, object_session

from models import (
    HANDLING_KINDS,
    Attachment,
    Case,
    CaseMember,
    Membership,
    Referral,
    ReferralEvent,
    Role,
    Suggestion,
    Tip,
    Unit,
    User,
)
from portal.security import crypto
from portal.security.keys import BUREAU_CODE, KeyNotHeld, keys_opening
from referral.workflow import Actor, State

OFFICERS = frozenset({Role.INTAKE_OFFICER, Role.CASE_OFFICER, Role.HEAD})
_INTAKE = frozenset({Role.INTAKE_OFFICER, Role.HEAD})

# action → roles that may take it (in the tip's unit, or in 州本级)
ACTIONS: dict[str, frozenset[str]] = {
    "tip.view": OFFICERS,
    "tip.classify": _INTAKE,
    "tip.set_priority": OFFICERS,
    "tip.accept": _INTAKE,
    "tip.decline": _INTAKE,
    "tip.transfer": _INTAKE,
    "tip.verify": OFFICERS,
    "tip.link_duplicate": OFFICERS,
    "tip.assign": _INTAKE,
    "tip.message": OFFICERS,
    "tip.extend": OFFICERS,
    "tip.close": frozenset({Role.CASE_OFFICER, Role.HEAD}),
    "tip.hotline": _INTAKE,
    # Legal hold (portal/operations/retention.py): heads keep a tip from retention's destruction.
    "tip.hold": frozenset({Role.HEAD}),
    # A unit's key passes from holder to colleague: officers in handling units, liaisons in
    # the receiving body they speak for (README: a liaison grants the body's key to the others).
    "unit_key.grant": OFFICERS | {Role.LIAISON},
    # A real-name reporter's identity (portal/intake/identity.py): an officer who may see the tip
    # asks
    # for it; a custodian (信息保密员) of the tip's unit or of 州本级 decides, revokes, re-seals.
    "identity.request": OFFICERS,
    "identity.decide": frozenset({Role.CUSTODIAN}),
}
# The roles a unit's key may be granted to: officers of a handling unit, liaisons of a
# receiving body. Administrators and auditors never hold one (they read no content).
KEY_ROLES = OFFICERS | {Role.LIAISON}
ADMIN_ACTIONS = frozenset({"accounts.manage", "categories.edit", "units.manage"})


@dataclass
class Principal:
    user: User
    roles: dict[int, set[str]]  # unit id → roles
    bureau_id: int | None = None
    handling_ids: frozenset[int] = frozenset()
    # The unit keys are unsealed only when content is opened: a page that needs none (the
    # queue, an auditor's page) decrypts nothing.
    identity_loader: Callable[[], dict[int, crypto.AgeIdentity]] = dict
    _identities: dict[int, crypto.AgeIdentity] | None = field(default=None, repr=False)

    @property
    def identities(self) -> dict[int, crypto.AgeIdentity]:
        if self._identities is None:
            self._identities = self.identity_loader()
        return self._identities

    @property
    def is_admin(self) -> bool:
        return any(Role.ADMINISTRATOR in roles for roles in self.roles.values())

    @property
    def is_auditor(self) -> bool:
        """Auditors read metadata and the log; the role opens no content."""
        return any(Role.AUDITOR in roles for roles in self.roles.values())

    def liaison_units(self) -> set[int]:
        """The receiving bodies this person is a liaison of: they see referrals addressed
        there, and nothing else."""
        return {unit for unit, roles in self.roles.items() if Role.LIAISON in roles}

    def units_holding(self, roles: Iterable[str]) -> set[int]:
        """The units where this person holds one of these roles themselves (州本级's are not
        widened to the handling units, as units_for does)."""
        wanted = set(roles)
        return {unit for unit, held in self.roles.items() if held & wanted}

    def units_for(self, action: str) -> set[int]:
        allowed = ACTIONS.get(action, frozenset())
        units = {unit for unit, roles in self.roles.items() if roles & allowed}
        if self.bureau_id in units:
            units |= set(self.handling_ids)
        return units

    def may(self, action: str, tip: Tip) -> bool:
        return tip.unit_id in self.units_for(action)

    def may_admin(self, action: str) -> bool:
        return action in ADMIN_ACTIONS and self.is_admin

    def key_units(self, keyed_units: set[int]) -> set[int]:
        """The units whose key this person may hand on from the Unit keys page: their own (a
        州本级 officer: every handling unit); an administrator, who keeps the printed recovery
        keys, any keyed unit, but only with its recovery key pasted (custody checks it)."""
        if self.may_admin("units.manage"):
            return set(keyed_units)
        return self.units_for("unit_key.grant") & set(keyed_units)

    def identities_for(self, obj: Tip | Case | Suggestion | Referral
                       ) -> list[crypto.AgeIdentity]:
        """The unit keys this person holds that open `obj`: a tip, case or suggestion is
        sealed to its unit and 州本级; a referral's steps and package also to the receiving
        body and the procuratorate's copy. KeyNotHeld when none."""
        if isinstance(obj, Referral):
            return keys_opening(self.identities, (obj.case.unit_id, self.bureau_id,
                                                  obj.receiving_unit_id, obj.copy_unit_id))
        return keys_opening(self.identities, (obj.unit_id, self.bureau_id), unit=obj.unit)

    def holds_key_for(self, obj: Tip | Case | Suggestion | Referral) -> bool:
        try:
            self.identities_for(obj)
        except KeyNotHeld:
            return False
        return True


def principal_for(session: Session, user: User,
                  identities: dict[int, crypto.AgeIdentity] | None = None,
                  loader: Callable[[], dict[int, crypto.AgeIdentity]] | None = None
                  ) -> Principal:
    roles: dict[int, set[str]] = {}
    # A role waiting for a second person's confirmation (portal/security/accounts.py) gives nothing.
    for membership in session.scalars(select(Membership).where(
            Membership.user_id == user.id, Membership.confirmed_at.is_not(None))):
        roles.setdefault(membership.unit_id, set()).add(membership.role)
    bureau_id = session.scalar(select(Unit.id).where(Unit.code == BUREAU_CODE))
    handling = frozenset(session.scalars(
        select(Unit.id).where(Unit.kind.in_([k.value for k in HANDLING_KINDS]))))
    if loader is None:
        fixed = dict(identities or {})
        loader = fixed.copy
    return Principal(user=user, roles=roles, bureau_id=bureau_id, handling_ids=handling,
                     identity_loader=loader)


def officers_of(session: Session, unit_ids: Iterable[int | None]) -> list[tuple[User, Unit, str]]:
    """Who works tips in these units: the active people holding a confirmed officer role there,
    as (person, unit, role), by unit, then name. A deactivated account or a role still waiting
    for its second confirmation (portal/security/accounts.py) is nobody's colleague: it is not
    offered,
    assigned, or put on a 专案组. The one query of it (assigning, the team, the pickers)."""
    units = sorted({u for u in unit_ids if u is not None})
    return [(user, unit, role) for user, unit, role in session.execute(
        select(User, Unit, Membership.role).join(Membership, Membership.user_id == User.id)
        .join(Unit, Unit.id == Membership.unit_id)
        .where(Membership.unit_id.in_(units), Membership.role.in_(sorted(OFFICERS)),
               Membership.confirmed_at.is_not(None), User.active.is_(True))
        .order_by(Unit.id, User.display_name, User.username))]


# ---------------------------------------------------------------------------------------------
# Roles in a case and in the referral workflow


def acting_role(principal: Principal, unit_id: int | None) -> str | None:
    """The officer role this person acts in on something of this unit, as the audit log
    records it: the one they hold in the unit, else in 州本级 (case officer before head before
    intake officer); None when they hold no officer role there."""
    for unit in (unit_id, principal.bureau_id):
        held = sorted(principal.roles.get(unit, set()) & OFFICERS) if unit is not None else []
        if held:
            return held[0]
    return None


def custody_role(principal: Principal, unit_id: int) -> str | None:
    """The role in which this person hands on or takes back a unit's reporter identity key, as
    the audit log records it: custodian (信息保密员) of that unit, else administrator (from the
    printed recovery key); None when neither."""
    if unit_id in principal.units_holding({Role.CUSTODIAN}):
        return Role.CUSTODIAN
    return Role.ADMINISTRATOR if principal.is_admin else None


def confirming_role(principal: Principal, role: str) -> str:
    """The role in which this person confirms or refuses someone's waiting role (who may at all
    is accounts.confirmers_of): an administrator as such; else the liaison of the receiving body
    for a liaison role, the unit's head for an officer role."""
    if principal.is_admin:
        return Role.ADMINISTRATOR
    return Role.LIAISON if role == Role.LIAISON else Role.HEAD


def is_head(principal: Principal, case: Case) -> bool:
    """A head of the case's unit or of 州本级."""
    return any(Role.HEAD in principal.roles.get(u, set())
               for u in (case.unit_id, principal.bureau_id) if u is not None)


def is_team(principal: Principal, case: Case) -> bool:
    """On the case's 专案组, or a head over it: who adds documents and starts referrals."""
    return any(m.user_id == principal.user.id for m in case.members) or is_head(principal, case)


def wrote_the_report(principal: Principal, referral: Referral) -> bool:
    """A head of the 专案组, or one who submitted the report, does not approve it: 310号 第5条
    asks the unit's head to review the team's report, and nobody approves their own."""
    user_id = principal.user.id
    return (any(m.user_id == user_id for m in referral.case.members)
            or any(e.action == "submit" and e.actor_id == user_id for e in referral.events))


def workflow_roles(principal: Principal, referral: Referral) -> set[Actor]:
    """Which columns of the workflow table (referral/workflow.py) this person may act in, for
    this referral: the case team (officer), the unit's head (not on their own report), the
    receiving body's liaison."""
    roles: set[Actor] = set()
    if case_visible(principal, referral.case) and is_team(principal, referral.case):
        roles.add(Actor.OFFICER)
    if is_head(principal, referral.case) and not wrote_the_report(principal, referral):
        roles.add(Actor.HEAD)
    if referral.receiving_unit_id in principal.liaison_units():
        roles.add(Actor.LIAISON)
    return roles


# ---------------------------------------------------------------------------------------------
# Who sees what, as SQL conditions for the lists


def _in(column: SQLColumnExpression[int | None], ids: Iterable[int]) -> ColumnElement[bool]:
    ids = sorted(ids)
    return column.in_(ids) if ids else false()


def tip_filter(principal: Principal, action: str = "tip.view") -> ColumnElement[bool]:
    """The tips this person may take `action` on (their units' tips; 州本级: every unit's)."""
    return _in(Tip.unit_id, principal.units_for(action))


def case_filter(principal: Principal) -> ColumnElement[bool]:
    """The cases this person sees: those of the units whose tips they see."""
    return _in(Case.unit_id, principal.units_for("tip.view"))


def addressed_filter(principal: Principal) -> ColumnElement[bool]:
    """The referrals handed over to a body this person is a liaison of (or copied to it). A
    receiving body never sees the bureau's draft, its approval or its rejection (17号 第6条: what
    is sent is the 移送书 and its package)."""
    mine = principal.liaison_units()
    if not mine:
        return false()
    return Referral.handed_over_at.is_not(None) & (
        _in(Referral.receiving_unit_id, mine) | _in(Referral.copy_unit_id, mine))


def referral_filter(principal: Principal) -> ColumnElement[bool]:
    """The referrals this person sees: those of the cases they see, and those addressed to
    their body."""
    return _in(Referral.unit_id, principal.units_for("tip.view")) | addressed_filter(principal)


def approval_filter(principal: Principal) -> ColumnElement[bool]:
    """The referrals waiting for this person's approval: the HEAD column of the table
    (workflow_roles) as a condition — a head of the case's unit or of 州本级, who is not on the
    case's 专案组 and did not submit the report."""
    heads = {u for u, roles in principal.roles.items() if Role.HEAD in roles}
    if not heads:
        return false()
    user_id = principal.user.id
    condition = (Referral.state == State.AWAITING_APPROVAL) & ~select(CaseMember.user_id).where(
        CaseMember.case_id == Referral.case_id, CaseMember.user_id == user_id).exists() & ~select(
        ReferralEvent.id).where(ReferralEvent.referral_id == Referral.id,
                                ReferralEvent.action == "submit",
                                ReferralEvent.actor_id == user_id).exists()
    if principal.bureau_id in heads:
        return condition
    return condition & _in(Referral.unit_id, heads)


def suggestion_filter(principal: Principal) -> ColumnElement[bool]:
    """The suggestions (三书一函) this person sees: those of the units whose tips they see."""
    return _in(Suggestion.unit_id, principal.units_for("tip.view"))


# ---------------------------------------------------------------------------------------------
# The same rules for one object


def case_visible(principal: Principal, case: Case) -> bool:
    return case.unit_id in principal.units_for("tip.view")


def referral_visible(principal: Principal, referral: Referral) -> bool:
    if case_visible(principal, referral.case):
        return True
    return referral.handed_over_at is not None and bool(
        principal.liaison_units() & {referral.receiving_unit_id, referral.copy_unit_id})


def suggestion_visible(principal: Principal, suggestion: Suggestion) -> bool:
    return suggestion.unit_id in principal.units_for("tip.view")


def _document_visible(principal: Principal, attachment: Attachment) -> bool:
    """A case's document is the bureau's; one brought with a referral's step is open to both
    sides of the referral. Tips' files and packages have their own doors."""
    session = object_session(attachment)
    if (session is None or attachment.case_id is None or attachment.tip_id is not None
            or attachment.kind == "package"):
        return False
    if attachment.referral_id is not None:
        referral = session.get(Referral, attachment.referral_id)
        return referral is not None and referral_visible(principal, referral)
    case = session.get(Case, attachment.case_id)
    return case is not None and case_visible(principal, case)


def _package_open(principal: Principal, referral: Referral) -> bool:
    return (referral_visible(principal, referral) and referral.package_id is not None
            and principal.holds_key_for(referral))


# action → (the kind of object it applies to, the rule). Tip actions are ACTIONS, by unit.
RULES: dict[str, tuple[type, Callable[[Principal, Any], bool]]] = {
    "case.view": (Case, case_visible),
    # add documents, start a referral: the 专案组 and the unit's head
    "case.edit": (Case, lambda p, case: case_visible(p, case) and is_team(p, case)),
    "case.open": (Case, lambda p, case: case_visible(p, case) and p.holds_key_for(case)),
    "referral.view": (Referral, referral_visible),
    # the head's review and the 移送书 preview: the bureau's people, never the receiving body
    "referral.review": (Referral, lambda p, referral: referral_visible(p, referral) and bool(
        workflow_roles(p, referral) & {Actor.OFFICER, Actor.HEAD})),
    # blacking out what the package carries: the case team, on the bureau's side
    "referral.redact": (Referral, lambda p, referral: case_visible(p, referral.case)
                        and Actor.OFFICER in workflow_roles(p, referral)),
    # the package, decrypted or sealed: who sees the referral and holds a key of it
    "package.open": (Referral, _package_open),
    "document.view": (Attachment, _document_visible),
    "suggestion.view": (Suggestion, suggestion_visible),
    "suggestion.open": (Suggestion, lambda p, suggestion: suggestion_visible(p, suggestion)
                        and p.holds_key_for(suggestion)),
    # recording one, for a unit whose tips this person sees
    "suggestion.record": (Unit, lambda p, unit: unit.id in p.units_for("tip.view")),
}


def may(principal: Principal, action: str, obj: object) -> bool:
    """May this person take `action` on this one object? Tips by ACTIONS (the roles held in
    their unit), everything else by RULES; an action that does not fit the object is refused."""
    if isinstance(obj, Tip):
        return action in ACTIONS and principal.may(action, obj)
    rule = RULES.get(action)
    return rule is not None and isinstance(obj, rule[0]) and rule[1](principal, obj)
