"""A real-name reporter's identity: sealed apart from the tip, read only on a granted request.

The tip's content (narrative, place, …) is sealed to the unit keys; the identity (name, phone,
ID number, address) is sealed to the custodian keys (Unit.identity_key) of the tip's unit and
of 州本级 — which their custodians (信息保密员) hold and the printed recovery keys back up — and
to the reporter's receipt key. An officer asks for it with a reason; a custodian of the unit
grants (sealing a copy to the officer's personal key for a limited time) or refuses; a grant can
be revoked; every step is audited and the reporter's status page says when it was opened and
why. Plain Python over a SQLAlchemy session; no Flask.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Tip, TipIdentity, Unit
from portal import crypto
from portal.keys import BUREAU_CODE, NotSetUp

# The fields of the identity block; the flags (may be contacted, interested in a reward) stay in
# the tip's content, where the officers who handle it read them.
IDENTITY_FIELDS = ("name", "phone", "id_number", "address")


@dataclass(frozen=True)
class ReporterIdentity:
    name: str = ""
    phone: str = ""
    id_number: str = ""
    address: str = ""

    @classmethod
    def from_dict(cls, data: object) -> ReporterIdentity:
        fields = data if isinstance(data, dict) else {}
        return cls(**{name: str(fields.get(name) or "") for name in IDENTITY_FIELDS})

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()


def custodian_recipients(session: Session, unit: Unit) -> list[str]:
    """The custodian keys an identity of a tip in `unit` is sealed to: the unit's and 州本级's."""
    bureau = session.scalars(select(Unit).where(Unit.code == BUREAU_CODE)).one()
    keys = list(dict.fromkeys([unit.identity_key, bureau.identity_key]))
    if any(not k for k in keys):
        raise NotSetUp("custodian keys have not been generated")
    return [k for k in keys if k]


def identity_recipients(session: Session, tip: Tip, unit: Unit | None = None) -> list[str]:
    """Custodian keys of the tip's unit (or `unit`, when the tip moves) and 州本级, and the
    reporter's receipt key."""
    return [*custodian_recipients(session, unit or tip.unit), tip.receipt_recipient]


def seal_identity(session: Session, tip: Tip, identity: ReporterIdentity) -> TipIdentity:
    """Store the identity of a real-name tip apart from its content (the caller commits)."""
    row = session.get(TipIdentity, tip.id)
    sealed = crypto.seal(identity.to_json(), identity_recipients(session, tip))
    if row is None:
        row = TipIdentity(tip_id=tip.id, sealed=sealed)
        session.add(row)
    else:
        row.sealed = sealed
    return row


def open_identity(session: Session, tip_id: int, identities: Sequence[crypto.AgeIdentity]
                  ) -> ReporterIdentity | None:
    """The identity, opened with a custodian key (or the receipt key); None for an anonymous tip.
    Raises crypto.CryptoError when the keys given do not open it."""
    row = session.get(TipIdentity, tip_id)
    if row is None:
        return None
    return ReporterIdentity.from_dict(json.loads(crypto.open_sealed(row.sealed, identities)))
