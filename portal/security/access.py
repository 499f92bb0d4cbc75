"""The one place that decides who may see and do what with tips.

A member of a handling unit with an officer role sees that unit's tips; a member of 州本级 sees
every unit's. Administrators and auditors have no officer role by being what they are, so they
see no tip content. Everything else asks `may` or `visible_units`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import HANDLING_KINDS, Membership, Role, Tip, Unit, User
from portal.security import crypto
from portal.security.keys import BUREAU_CODE

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


class KeyNotHeld(Exception):
    """The officer may see the tip but has not been granted a key that opens it; `unit` is the
    unit whose key would open it (for the "you hold no key" page), when known."""

    def __init__(self, unit: Unit | None = None) -> None:
        super().__init__(unit.code if unit is not None else "")
        self.unit = unit


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

    def identities_for(self, tip: Tip) -> list[crypto.AgeIdentity]:
        """Unit identities that open this tip: its unit's, or 州本级's, which every tip is
        sealed to."""
        found = [self.identities[u] for u in (tip.unit_id, self.bureau_id)
                 if u is not None and u in self.identities]
        if not found:
            raise KeyNotHeld(tip.unit)
        return found


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
