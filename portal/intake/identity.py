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
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditlog.events import Actor, Scalar, record
from models import (
    AuditEvent,
    CaseTip,
    IdentityPurpose,
    IdentityRequest,
    Referral,
    RequestState,
    Role,
    Tip,
    TipIdentity,
    Unit,
    User,
)
from models.base import utcnow
from portal.security import crypto
from portal.security.access import Principal, acting_role
from portal.security.keys import BUREAU_CODE, KeyNotHeld, NotSetUp, keys_opening
from portal.transaction import transaction

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


# ---------------------------------------------------------------------------------------------
# Identity access requests
#
# An officer who may see a real-name tip asks for the reporter's identity with a purpose and a
# reason; a custodian (信息保密员) of the tip's unit or of 州本级 who holds its custodian key
# grants (a copy sealed to the officer's personal key, for 1–30 days) or refuses with a reason;
# a custodian may revoke a grant; the requester may withdraw a pending request. Purpose
# "package" sends the identity with a referral: the copy is sealed to the receiving body's (and
# the copied body's) key, read there by its liaisons once the referral is handed over. Every step
# is audited with the request's number and purpose, never the identity; the reporter's status
# page lists each grant (`disclosures`).

REASON_MAX = 1000  # characters of a request's, a decision's or a revocation's reason
GRANT_DAYS_DEFAULT = 7
GRANT_DAYS_MAX = 30
_OPEN_STATES = (RequestState.PENDING, RequestState.GRANTED)


class IdentityNotFound(Exception):
    """No such request or tip, or not one this person may see (answered alike: 404)."""


class IdentityRefused(Exception):
    """The step is not allowed; `code` says why (portal/web/messages.py has the
    words)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Disclosure:
    """What the reporter's status page says of one grant: when, why, and for a package, where."""

    at: datetime
    purpose: str
    receiving_unit: Unit | None = None


def _clean_reason(text: str | None, *, required: bool = True) -> str:
    cleaned = "".join(c for c in (text or "") if c in "\n\t" or unicodedata.category(c)[0] != "C")
    cleaned = cleaned.strip()
    if required and not cleaned:
        raise IdentityRefused("reason_required")
    if len(cleaned) > REASON_MAX:
        raise IdentityRefused("reason_too_long")
    return cleaned


def decision_reasons(row: IdentityRequest) -> tuple[str, str]:
    """(the decision's reason, the revocation's reason)."""
    return row.decision_reason or "", row.revoke_reason or ""


def is_live(row: IdentityRequest, now: datetime | None = None) -> bool:
    """Granted, not revoked, and (for an officer's grant) not yet expired."""
    if row.state != RequestState.GRANTED or row.sealed_copy is None:
        return False
    return row.expires_at is None or row.expires_at > (now or utcnow())


def _staff(principal: Principal, role: str | None) -> Actor:
    return Actor("staff", principal.user.id, role)


def _audit(session: Session, actor: Actor, action: str, row: IdentityRequest, **details: Scalar
           ) -> None:
    record(session, actor, action, object_type="tip", object_id=row.tip_id,
           unit_code=row.tip.unit.code, at=None,  # now; named, so no detail is taken for it
           request=row.id, purpose=row.purpose, **details)


def _bureau(session: Session) -> Unit:
    return session.scalars(select(Unit).where(Unit.code == BUREAU_CODE)).one()


def _package_referral(session: Session, tip: Tip, referral_id: int | None) -> Referral:
    """The referral a package request is tied to: one of the tip's case, not yet handed over."""
    referral = session.get(Referral, referral_id) if referral_id else None
    if referral is None or session.get(CaseTip, (referral.case_id, tip.id)) is None:
        raise IdentityRefused("unknown_referral")
    if referral.handed_over_at is not None:
        raise IdentityRefused("handed_over")
    return referral


def _get(session: Session, request_id: int) -> IdentityRequest:
    row = session.get(IdentityRequest, request_id)
    if row is None:
        raise IdentityNotFound
    return row


def wipe_expired(session: Session, now: datetime | None = None) -> int:
    """Lapsed grants lose their sealed copy (lazily, whenever requests are listed or read)."""
    lapsed = list(session.scalars(select(IdentityRequest).where(
        IdentityRequest.state == RequestState.GRANTED, IdentityRequest.sealed_copy.is_not(None),
        IdentityRequest.expires_at.is_not(None), IdentityRequest.expires_at <= (now or utcnow()))))
    for row in lapsed:
        row.sealed_copy = None
    return len(lapsed)


def request(session: Session, principal: Principal, tip_id: int, purpose: str, reason: str,
            referral_id: int | None = None) -> IdentityRequest:
    """An officer who may see a real-name tip asks for its reporter's identity (the caller
    commits). One open request (pending, or a live grant) per officer, tip and purpose."""
    tip = session.get(Tip, tip_id)
    if tip is None or not principal.may("tip.view", tip):
        raise IdentityNotFound
    if not principal.may("identity.request", tip):
        raise IdentityRefused("not_allowed")
    if not tip.real_name:
        raise IdentityRefused("not_real_name")
    if tip.archived_at is not None:
        raise IdentityRefused("archived")  # destroyed under the retention rule, identity too
    if purpose not in tuple(IdentityPurpose):
        raise IdentityRefused("unknown_purpose")
    referral = (_package_referral(session, tip, referral_id)
                if purpose == IdentityPurpose.PACKAGE else None)
    text = _clean_reason(reason)
    wipe_expired(session)
    same_referral = (IdentityRequest.referral_id == referral.id if referral is not None
                     else IdentityRequest.referral_id.is_(None))
    earlier = session.scalars(select(IdentityRequest).where(
        IdentityRequest.tip_id == tip.id, IdentityRequest.requester_id == principal.user.id,
        IdentityRequest.purpose == purpose, same_referral,
        IdentityRequest.state.in_([s.value for s in _OPEN_STATES])))
    if any(r.state == RequestState.PENDING or is_live(r) for r in earlier):
        raise IdentityRefused("already_open")
    row = IdentityRequest(tip_id=tip.id, requester_id=principal.user.id, purpose=str(purpose),
                          reason=text, referral_id=referral.id if referral else None,
                          state=RequestState.PENDING, created_at=utcnow())
    session.add(row)
    session.flush()
    _audit(session, _staff(principal, acting_role(principal, tip.unit_id)), "identity.requested",
           row)
    return row


def withdraw(session: Session, principal: Principal, request_id: int) -> IdentityRequest:
    """The requester takes a pending request back."""
    row = _get(session, request_id)
    if row.requester_id != principal.user.id:
        raise IdentityNotFound
    if row.state != RequestState.PENDING:
        raise IdentityRefused("not_pending")
    row.state = RequestState.WITHDRAWN
    _audit(session, _staff(principal, acting_role(principal, row.tip.unit_id)),
           "identity.withdrawn", row)
    return row


def custodian_keys(session: Session, principal: Principal, personal: crypto.AgeIdentity,
                   tip: Tip) -> list[crypto.AgeIdentity]:
    """The custodian keys this person holds that may open `tip`'s identity: the tip's unit's
    and 州本级's, each only where they are a confirmed custodian (opened with their personal key;
    used for one step and never kept)."""
    from portal.security.custody import held_identity_keys

    held = held_identity_keys(session, principal.user, personal)
    return [held[u] for u in dict.fromkeys([tip.unit_id, principal.bureau_id])
            if u is not None and u in held and Role.CUSTODIAN in principal.roles.get(u, set())]


def _custodian_of(session: Session, principal: Principal, tip: Tip,
                  keys: Sequence[crypto.AgeIdentity]) -> tuple[str, list[crypto.AgeIdentity]]:
    """Check that this person is a custodian of the tip's unit or 州本级 and holds that unit's
    custodian key; returns (role, the keys that qualify)."""
    if not principal.may("identity.decide", tip):
        raise IdentityRefused("not_custodian")
    wanted = set()
    if Role.CUSTODIAN in principal.roles.get(tip.unit_id, set()):
        wanted.add(tip.unit.identity_key)
    if Role.CUSTODIAN in principal.roles.get(principal.bureau_id or -1, set()):
        wanted.add(_bureau(session).identity_key)
    usable = []
    for key in keys:
        try:
            if crypto.recipient_of(key) in wanted:
                usable.append(key)
        except crypto.CryptoError:
            continue
    if not usable:
        raise IdentityRefused("key_not_held")
    return Role.CUSTODIAN.value, usable


def _moved_since_sealed(session: Session, tip: Tip, row: TipIdentity) -> bool:
    """The tip changed unit after its identity was last sealed: the new unit's custodians cannot
    open it yet."""
    sealed_at = max([row.created_at, *session.scalars(select(AuditEvent.at).where(
        AuditEvent.action == "identity.resealed", AuditEvent.object_type == "tip",
        AuditEvent.object_id == tip.id))])
    moved_at = session.scalar(select(func.max(AuditEvent.at)).where(
        AuditEvent.action == "tip.transferred", AuditEvent.object_type == "tip",
        AuditEvent.object_id == tip.id))
    return moved_at is not None and moved_at > sealed_at


def open_as_custodian(session: Session, principal: Principal,
                      keys: Sequence[crypto.AgeIdentity], tip: Tip) -> ReporterIdentity:
    """The identity, opened by a custodian of the tip's unit or 州本级 with their custodian key.
    After a transfer it is sealed again to the current unit's and 州本级's custodian keys (and
    the receipt key), so the new unit's custodians can open it too (audited)."""
    role, usable = _custodian_of(session, principal, tip, keys)
    row = session.get(TipIdentity, tip.id)
    if row is None:
        raise IdentityRefused("no_identity")
    try:
        identity = open_identity(session, tip.id, usable)
    except crypto.CryptoError:
        raise IdentityRefused("not_sealed_to_unit") from None
    if identity is None:
        raise IdentityRefused("no_identity")
    if _moved_since_sealed(session, tip, row):
        seal_identity(session, tip, identity)
        record(session, Actor("staff", principal.user.id, role), "identity.resealed",
               object_type="tip", object_id=tip.id, unit_code=tip.unit.code)
    return identity


def _package_recipients(session: Session, referral: Referral) -> list[str]:
    """The receiving body's key and the copied body's (the identity travels to them as a sealed
    item of its own), and the case unit's custodian keys — never the unit's content key."""
    bodies = [u.public_key for u in (referral.receiving_unit, referral.copy_unit)
              if u is not None]
    if any(not key for key in bodies):
        raise NotSetUp("the receiving body has no key")
    return [*[k for k in bodies if k], *custodian_recipients(session, referral.case.unit)]


def decide(session: Session, principal: Principal, custodian_keys: Sequence[crypto.AgeIdentity],
           request_id: int, grant: bool, reason: str, days: int = GRANT_DAYS_DEFAULT
           ) -> IdentityRequest:
    """A custodian grants or refuses a pending request — never their own (the caller commits).
    A grant seals a copy of the identity to the requester's personal key until `days` from now
    (1–30), or for a package to the receiving (and copied) body; a refusal needs a reason and
    opens nothing."""
    row = _get(session, request_id)
    tip = row.tip
    role, usable = _custodian_of(session, principal, tip, custodian_keys)
    if row.requester_id == principal.user.id:
        raise IdentityRefused("own_request")
    if row.state != RequestState.PENDING:
        raise IdentityRefused("not_pending")
    text = _clean_reason(reason, required=not grant)
    now = utcnow()
    if grant:
        if row.purpose == IdentityPurpose.PACKAGE:
            referral = _package_referral(session, tip, row.referral_id)
            recipients = _package_recipients(session, referral)
            expires = None  # it travels with the case
        else:
            if not isinstance(days, int) or not 1 <= days <= GRANT_DAYS_MAX:
                raise IdentityRefused("bad_days")
            requester = session.get(User, row.requester_id)
            if requester is None or not requester.active:
                raise IdentityRefused("requester_gone")
            recipients = [requester.public_key]
            expires = now + timedelta(days=days)
        identity = open_as_custodian(session, principal, usable, tip)
        row.sealed_copy = crypto.seal(identity.to_json(), recipients)
        row.expires_at = expires
        row.state = RequestState.GRANTED
    else:
        row.state = RequestState.REFUSED
    row.decided_by_id = principal.user.id
    row.decided_at = now
    row.decision_reason = text
    if grant and row.expires_at is not None:
        _audit(session, Actor("staff", principal.user.id, role), "identity.granted", row,
               for_days=days)
    else:
        _audit(session, Actor("staff", principal.user.id, role),
               "identity.granted" if grant else "identity.refused", row)
    return row


def revoke(session: Session, principal: Principal, request_id: int, reason: str
           ) -> IdentityRequest:
    """A custodian of the tip's unit or 州本级 ends a grant: its sealed copy is wiped. A package
    grant cannot be revoked once the referral is handed over (the package has left)."""
    row = _get(session, request_id)
    if not principal.may("identity.decide", row.tip):
        raise IdentityRefused("not_custodian")
    if row.state != RequestState.GRANTED:
        raise IdentityRefused("not_granted")
    if row.purpose == IdentityPurpose.PACKAGE and row.referral_id is not None:
        referral = session.get(Referral, row.referral_id)
        if referral is not None and referral.handed_over_at is not None:
            raise IdentityRefused("handed_over")
    text = _clean_reason(reason)
    row.state = RequestState.REVOKED
    row.sealed_copy = None
    row.revoked_by_id = principal.user.id
    row.revoked_at = utcnow()
    row.revoke_reason = text
    _audit(session, _staff(principal, Role.CUSTODIAN.value), "identity.revoked", row)
    return row


def read(session: Session, principal: Principal, personal_identity: crypto.AgeIdentity,
         request_id: int) -> ReporterIdentity:
    """The identity, for the officer it was granted to while the grant runs; audited each time.
    A lapsed grant's copy is wiped here (the caller commits either way)."""
    row = _get(session, request_id)
    if row.requester_id != principal.user.id or row.purpose == IdentityPurpose.PACKAGE:
        raise IdentityNotFound
    if not principal.may("tip.view", row.tip):
        raise IdentityNotFound  # moved out of the officer's sight since
    if row.state == RequestState.GRANTED and not is_live(row):
        row.sealed_copy = None
        raise IdentityRefused("expired")
    if row.state != RequestState.GRANTED or row.sealed_copy is None:
        raise IdentityRefused("not_granted")
    try:
        opened = crypto.open_sealed(row.sealed_copy, [personal_identity])
    except crypto.CryptoError:
        raise IdentityRefused("personal_key_changed") from None
    _audit(session, _staff(principal, acting_role(principal, row.tip.unit_id)), "identity.read",
           row)
    return ReporterIdentity.from_dict(json.loads(opened))


def package_identity(session: Session, referral_id: int) -> IdentityRequest | None:
    """The granted, unrevoked package request of this referral, if any (the package's material
    list names it: the identity travels as a sealed item of its own)."""
    return session.scalars(select(IdentityRequest).where(
        IdentityRequest.referral_id == referral_id,
        IdentityRequest.purpose == IdentityPurpose.PACKAGE,
        IdentityRequest.state == RequestState.GRANTED,
        IdentityRequest.sealed_copy.is_not(None)).order_by(IdentityRequest.id)).first()


def open_package_identity(session: Session, principal: Principal, referral_id: int
                          ) -> ReporterIdentity:
    """The identity sent with a handed-over referral, for a liaison of the receiving (or
    copied) body with its key; audited as a read."""
    referral = session.get(Referral, referral_id)
    if referral is None or referral.handed_over_at is None:
        raise IdentityNotFound
    bodies = principal.liaison_units() & {referral.receiving_unit_id, referral.copy_unit_id}
    row = package_identity(session, referral_id)
    if not bodies or row is None or row.sealed_copy is None:
        raise IdentityNotFound
    try:
        opened = crypto.open_sealed(row.sealed_copy, keys_opening(principal.identities,
                                                                  sorted(bodies)))
    except (KeyNotHeld, crypto.CryptoError):
        raise IdentityRefused("key_not_held") from None
    body = session.get(Unit, sorted(bodies)[0])
    record(session, Actor("liaison", principal.user.id, Role.LIAISON.value), "identity.read",
           object_type="tip", object_id=row.tip_id, unit_code=body.code if body else None,
           request=row.id, purpose=row.purpose)
    return ReporterIdentity.from_dict(json.loads(opened))


def tip_requests(session: Session, tip_id: int) -> list[IdentityRequest]:
    return list(session.scalars(select(IdentityRequest).where(
        IdentityRequest.tip_id == tip_id).order_by(IdentityRequest.id)))


def custodian_units(principal: Principal) -> set[int]:
    """The handling units whose requests this person decides (州本级's custodians: all)."""
    return principal.units_for("identity.decide")


def requests_to_decide(session: Session, principal: Principal
                       ) -> tuple[list[IdentityRequest], list[IdentityRequest]]:
    """(pending requests, live grants) of the tips of the units this person is custodian of."""
    units = custodian_units(principal)
    if not units:
        return [], []
    wipe_expired(session)
    rows = list(session.scalars(select(IdentityRequest).join(Tip, Tip.id == IdentityRequest.tip_id)
                                .where(Tip.unit_id.in_(sorted(units)),
                                       IdentityRequest.state.in_([s.value for s in _OPEN_STATES]))
                                .order_by(IdentityRequest.created_at, IdentityRequest.id)))
    return ([r for r in rows if r.state == RequestState.PENDING],
            [r for r in rows if r.state == RequestState.GRANTED and (
                r.sealed_copy is not None)])


def pending_count(session: Session, principal: Principal) -> int:
    units = custodian_units(principal)
    if not units:
        return 0
    return session.scalar(select(func.count(IdentityRequest.id))
                          .join(Tip, Tip.id == IdentityRequest.tip_id)
                          .where(Tip.unit_id.in_(sorted(units)),
                                 IdentityRequest.state == RequestState.PENDING)) or 0


def disclosures(session: Session, tip_id: int) -> list[Disclosure]:
    """What the reporter is told: each grant of their identity (to the officer handling the
    report, or with the case to a receiving body once handed over), when and why."""
    out = []
    for row in session.scalars(select(IdentityRequest).where(
            IdentityRequest.tip_id == tip_id, IdentityRequest.decided_at.is_not(None),
            IdentityRequest.state.in_([RequestState.GRANTED.value,
                                       RequestState.REVOKED.value]))
            .order_by(IdentityRequest.decided_at, IdentityRequest.id)):
        decided_at = row.decided_at
        assert decided_at is not None  # the query takes decided requests only
        if row.purpose == IdentityPurpose.PACKAGE:
            referral = session.get(Referral, row.referral_id) if row.referral_id else None
            if referral is None or referral.handed_over_at is None or (
                    row.state != RequestState.GRANTED):
                continue
            out.append(Disclosure(max(decided_at, referral.handed_over_at), row.purpose,
                                  referral.receiving_unit))
        else:
            out.append(Disclosure(decided_at, row.purpose))
    return out


# ---------------------------------------------------------------------------------------------
# Migration of identities stored inside tips
#
# Before identities were sealed apart, a real-name tip's content held {"identity": {name, phone,
# id_number, address, contact_ok, reward}}, sealed to the unit keys. `flask identities keys`
# gives an existing installation its custodian keys (keys.generate_unit_keys, committed by the
# command once the recovery keys are written out); `flask identities separate` opens each such
# tip with a unit's recovery key (州本级's opens every tip), seals the identity apart
# (seal_identity) and seals the content again without it, to the same recipients.


@dataclass(frozen=True)
class Separated:
    separated: int  # tips whose identity is now sealed apart
    left: int  # real-name tips still holding it that the keys given do not open


def _unseparated(session: Session, after: int, batch: int) -> list[Tip]:
    """Real-name tips without a separate identity row (filed before identities were sealed
    apart), by id: only these can still hold the identity in their content."""
    return list(session.scalars(
        select(Tip).outerjoin(TipIdentity, TipIdentity.tip_id == Tip.id)
        .where(Tip.real_name.is_(True), TipIdentity.tip_id.is_(None), Tip.id > after)
        .order_by(Tip.id).limit(batch)))


def separate_identities(session: Session, identities: Sequence[crypto.AgeIdentity],
                        actor: Actor, batch: int = 100) -> Separated:
    """Move every real-name reporter's identity out of the tip content it was sealed in, for
    the tips the given unit identities open: the identity is sealed apart (custodians of the
    tip's unit and 州本级, and the receipt key) and the content sealed again without it (the
    flags stay) to the same recipients (keys.tip_recipients). Idempotent: a tip already
    separated is not touched. Committed batch by batch; one audit event with the count."""
    from portal.security.keys import tip_recipients

    bureau = session.scalars(select(Unit).where(Unit.code == BUREAU_CODE)).one()
    custodian_recipients(session, bureau)  # NotSetUp before anything, when keys are missing
    separated = left = 0
    last = 0
    with transaction(session):
        while True:
            tips = _unseparated(session, last, batch)
            if not tips:
                break
            for tip in tips:
                last = tip.id
                try:
                    content = json.loads(crypto.open_sealed(tip.content, identities))
                except (crypto.CryptoError, ValueError):
                    left += 1
                    continue
                stored = content.get("identity") if isinstance(content, dict) else None
                if not isinstance(stored, dict):
                    continue  # nothing inside to move (a damaged or unusual tip): left as is
                seal_identity(session, tip, ReporterIdentity.from_dict(stored))
                content["identity"] = None
                content["reporter"] = {"contact_ok": bool(stored.get("contact_ok")),
                                       "reward": bool(stored.get("reward"))}
                tip.content = crypto.seal(json.dumps(content, ensure_ascii=False).encode(),
                                          tip_recipients(session, tip))
                separated += 1
            session.commit()
        record(session, actor, "identity.separated", tips=separated, left=left)
    return Separated(separated, left)
