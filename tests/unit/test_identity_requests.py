"""Identity access requests (portal/intake/identity.py): an officer asks, a custodian of the tip's
unit
or of 州本级 grants or refuses, a grant runs out or is revoked, and a package grant is readable by
the receiving body alone."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import (
    AuditEvent,
    Case,
    CaseTip,
    IdentityRequest,
    Referral,
    RequestState,
    Tip,
    Unit,
    User,
)
from models.base import utcnow
from portal.intake import identity
from portal.security import crypto
from portal.security.access import principal_for
from portal.security.custody import unlock_personal
from portal.web.extensions import db
from tests.helpers import give_custodian_keys, hand_custodian_key

REPORTER = identity.ReporterIdentity(name="김철수", phone="13900001111", id_number="",
                                     address="延吉市 河南街")


def _unit(code: str) -> Unit:
    return db.session.scalars(select(Unit).where(Unit.code == code)).one()


def _file_real_name(client, county: str = "yanji") -> Tip:
    response = client.post("/api/v1/tips", json={
        "narrative": "oil in the river", "county": county,
        "identity": {"name": REPORTER.name, "phone": REPORTER.phone, "contact_ok": True}})
    assert response.status_code == 201
    tip = db.session.get(Tip, db.session.scalar(select(func.max(Tip.id))))
    identity.seal_identity(db.session, tip, REPORTER)
    db.session.commit()
    return tip


class World:
    def __init__(self, app, staff) -> None:
        self.custodian_keys = give_custodian_keys(db.session)
        self.officer = staff.create("id_officer", "yanji", "case_officer")
        self.other_officer = staff.create("id_officer2", "yanji", "case_officer")
        self.custodian = staff.create("id_custodian", "yanji", "custodian", grant=False)
        self.zhou_custodian = staff.create("id_zhou_custodian", "zhou", "custodian", grant=False)
        self.hc_custodian = staff.create("id_hc_custodian", "hunchun", "custodian", grant=False)
        # A custodian who is also an officer of the unit: may ask, never grant their own.
        self.both = staff.create("id_both", "yanji", "head", extra=(("yanji", "custodian"),))
        for uid, code in ((self.custodian, "yanji"), (self.zhou_custodian, "zhou"),
                          (self.hc_custodian, "hunchun"), (self.both, "yanji")):
            hand_custodian_key(db.session, uid, code, self.custodian_keys[code])
        self.keys = staff.keys

    def user(self, uid: int) -> User:
        return db.session.get(User, uid)

    def personal(self, uid: int) -> crypto.AgeIdentity:
        from tests.conftest import Staff

        return unlock_personal(self.user(uid), Staff.PASSWORD)

    def principal(self, uid: int, units: dict[int, str] | None = None):
        return principal_for(db.session, self.user(uid), identities=units or {})

    def keys_of(self, uid: int, tip: Tip) -> list[crypto.AgeIdentity]:
        return identity.custodian_keys(db.session, self.principal(uid), self.personal(uid), tip)

    def decide(self, uid: int, request_id: int, grant: bool, reason: str = "", days: int = 7):
        row = db.session.get(IdentityRequest, request_id)
        out = identity.decide(db.session, self.principal(uid), self.keys_of(uid, row.tip),
                              request_id, grant, reason, days)
        db.session.commit()
        return out


@pytest.fixture
def world(app, staff) -> World:
    return World(app, staff)


def _ask(world: World, tip: Tip, uid: int | None = None, purpose: str = "contact",
         reason: str = "to arrange a site visit with the reporter", referral_id=None
         ) -> IdentityRequest:
    row = identity.request(db.session, world.principal(uid or world.officer), tip.id, purpose,
                           reason, referral_id)
    db.session.commit()
    return row


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_request_grant_read_revoke(app, client, world) -> None:
    tip = _file_real_name(client)
    row = _ask(world, tip)
    assert row.state == RequestState.PENDING
    # Not the officer's to read before a grant.
    with pytest.raises(identity.IdentityRefused, match="not_granted"):
        identity.read(db.session, world.principal(world.officer),
                      world.personal(world.officer), row.id)
    # One open request per officer, tip and purpose; another purpose is another request.
    with pytest.raises(identity.IdentityRefused, match="already_open"):
        _ask(world, tip)
    db.session.rollback()
    world.decide(world.custodian, row.id, True, "", days=3)
    assert row.state == RequestState.GRANTED and row.sealed_copy is not None
    assert timedelta(days=2, hours=23) < row.expires_at - utcnow() <= timedelta(days=3)
    read = identity.read(db.session, world.principal(world.officer),
                         world.personal(world.officer), row.id)
    db.session.commit()
    assert read == REPORTER
    # Only the requester: a colleague of the same unit reads nothing.
    with pytest.raises(identity.IdentityNotFound):
        identity.read(db.session, world.principal(world.other_officer),
                      world.personal(world.other_officer), row.id)
    # The copy is sealed to the requester's key alone: not the unit's, not a custodian's.
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(row.sealed_copy, [world.keys["yanji"], world.personal(world.custodian)])
    # Revocation wipes it; the requester reads nothing after.
    with pytest.raises(identity.IdentityRefused, match="reason_required"):
        identity.revoke(db.session, world.principal(world.custodian), row.id, " ")
    identity.revoke(db.session, world.principal(world.custodian), row.id, "visit done")
    db.session.commit()
    assert row.state == RequestState.REVOKED and row.sealed_copy is None
    assert identity.decision_reasons(row) == ("", "visit done")
    with pytest.raises(identity.IdentityRefused, match="not_granted"):
        identity.read(db.session, world.principal(world.officer),
                      world.personal(world.officer), row.id)
    actions = [e.action for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.action.like("identity.%")).order_by(AuditEvent.seq))]
    assert actions == ["identity.requested", "identity.granted", "identity.read",
                       "identity.revoked"]
    for event in _events("identity.read") + _events("identity.granted"):
        assert REPORTER.name not in event.details and REPORTER.phone not in event.details
        assert f'"request":{row.id}' in event.details
    # The reporter is told of the grant (still, after the revocation).
    told = identity.disclosures(db.session, tip.id)
    assert [(d.purpose, d.receiving_unit) for d in told] == [("contact", None)]


def test_refusal_reveals_nothing_and_needs_a_reason(app, client, world) -> None:
    tip = _file_real_name(client)
    row = _ask(world, tip, purpose="witness")
    with pytest.raises(identity.IdentityRefused, match="reason_required"):
        world.decide(world.custodian, row.id, False, "")
    db.session.rollback()
    world.decide(world.custodian, row.id, False, "no witness statement is needed yet")
    assert row.state == RequestState.REFUSED and row.sealed_copy is None
    with pytest.raises(identity.IdentityRefused, match="not_granted"):
        identity.read(db.session, world.principal(world.officer),
                      world.personal(world.officer), row.id)
    # A decided request is not decided again.
    with pytest.raises(identity.IdentityRefused, match="not_pending"):
        world.decide(world.zhou_custodian, row.id, True)
    assert identity.disclosures(db.session, tip.id) == []


def test_who_may_decide(app, client, world) -> None:
    tip = _file_real_name(client)
    own = _ask(world, tip, world.both)
    with pytest.raises(identity.IdentityRefused, match="own_request"):
        world.decide(world.both, own.id, True)
    db.session.rollback()
    row = _ask(world, tip)
    # 珲春's custodian is no custodian of 延吉's tips.
    with pytest.raises(identity.IdentityRefused, match="not_custodian"):
        world.decide(world.hc_custodian, row.id, True)
    db.session.rollback()
    # An officer is not a custodian; a custodian without the key cannot decide.
    with pytest.raises(identity.IdentityRefused, match="not_custodian"):
        identity.decide(db.session, world.principal(world.other_officer), [], row.id, True, "")
    with pytest.raises(identity.IdentityRefused, match="key_not_held"):
        identity.decide(db.session, world.principal(world.custodian), [], row.id, True, "")
    # The wrong unit's custodian key does not count either.
    with pytest.raises(identity.IdentityRefused, match="key_not_held"):
        identity.decide(db.session, world.principal(world.custodian),
                        [world.custodian_keys["hunchun"]], row.id, True, "")
    with pytest.raises(identity.IdentityRefused, match="bad_days"):
        world.decide(world.custodian, row.id, True, days=31)
    db.session.rollback()
    # 州本级's custodian decides for every unit; the withdrawn one cannot be decided.
    world.decide(world.zhou_custodian, row.id, True, days=1)
    assert row.state == RequestState.GRANTED
    pending = _ask(world, tip, purpose="reward", reason="the reward of 2026")
    identity.withdraw(db.session, world.principal(world.officer), pending.id)
    db.session.commit()
    assert pending.state == RequestState.WITHDRAWN
    with pytest.raises(identity.IdentityRefused, match="not_pending"):
        world.decide(world.custodian, pending.id, True)
    # Only real-name tips, known purposes, and a reason of bounded length.
    response = client.post("/api/v1/tips", json={"narrative": "anonymous", "county": "yanji"})
    assert response.status_code == 201
    anonymous = db.session.scalar(select(func.max(Tip.id)))
    for tip_id, purpose, reason, code in ((anonymous, "contact", "why", "not_real_name"),
                                          (tip.id, "gossip", "why", "unknown_purpose"),
                                          (tip.id, "witness", "", "reason_required"),
                                          (tip.id, "witness", "x" * 1001, "reason_too_long"),
                                          (tip.id, "package", "why", "unknown_referral")):
        with pytest.raises(identity.IdentityRefused, match=code):
            identity.request(db.session, world.principal(world.officer), tip_id, purpose,
                             reason)
    # Who may not see the tip learns nothing of it.
    with pytest.raises(identity.IdentityNotFound):
        identity.request(db.session, world.principal(world.hc_custodian), tip.id, "contact",
                         "why")


def test_expired_grant_is_wiped_and_reads_nothing(app, client, world) -> None:
    tip = _file_real_name(client)
    row = _ask(world, tip)
    world.decide(world.custodian, row.id, True, days=1)
    row.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    with pytest.raises(identity.IdentityRefused, match="expired"):
        identity.read(db.session, world.principal(world.officer),
                      world.personal(world.officer), row.id)
    db.session.commit()
    assert row.sealed_copy is None and not identity.is_live(row)
    # Lapsed: the officer may ask again.
    assert _ask(world, tip).state == RequestState.PENDING
    assert _events("identity.read") == []


def test_an_archived_tip_has_no_identity_to_ask_for(app, client, world) -> None:
    """Retention destroyed the tip's content and its identity: a request is refused in words,
    and nothing is stored."""
    tip = _file_real_name(client)
    tip.archived_at = utcnow()
    db.session.commit()
    with pytest.raises(identity.IdentityRefused, match="archived"):
        _ask(world, tip)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(IdentityRequest)) == 0


def test_transfer_is_healed_when_a_bureau_custodian_opens_it(app, client, world) -> None:
    """After a transfer to 珲春 its custodian cannot open the identity until a custodian of
    州本级 opens it once, which seals it again to 珲春's custodian key."""
    from portal.triage import tip_actions

    tip = _file_real_name(client)
    head = world.principal(world.both, {_unit("yanji").id: world.keys["yanji"]})
    tip_actions.transfer(db.session, head, tip.id, "hunchun", "belongs to Hunchun")
    db.session.commit()
    hc_keys = [world.custodian_keys["hunchun"]]
    with pytest.raises(identity.IdentityRefused, match="not_sealed_to_unit"):
        identity.open_as_custodian(db.session, world.principal(world.hc_custodian), hc_keys,
                                   db.session.get(Tip, tip.id))
    opened = identity.open_as_custodian(db.session, world.principal(world.zhou_custodian),
                                        [world.custodian_keys["zhou"]],
                                        db.session.get(Tip, tip.id))
    db.session.commit()
    assert opened == REPORTER and len(_events("identity.resealed")) == 1
    assert identity.open_as_custodian(db.session, world.principal(world.hc_custodian), hc_keys,
                                      db.session.get(Tip, tip.id)) == REPORTER
    assert len(_events("identity.resealed")) == 1  # once is enough


def test_package_grant_is_for_the_receiving_body_only(app, client, world, staff) -> None:
    tip = _file_real_name(client)
    yanji, body = _unit("yanji"), _unit("psb_zhou")
    case = Case(number="延州环移〔2026〕第1号", year=2026, seq=1, unit_id=yanji.id,
                created_by_id=world.officer, content=b"")
    db.session.add(case)
    db.session.flush()
    db.session.add(CaseTip(case_id=case.id, tip_id=tip.id))
    referral = Referral(case_id=case.id, unit_id=case.unit_id, receiving_unit_id=body.id,
                        state="draft",
                        created_by_id=world.officer)
    db.session.add(referral)
    db.session.commit()
    liaison = staff.create("id_liaison", "psb_zhou", "liaison")
    row = _ask(world, tip, purpose="package", reason="a witness who agreed to testify",
               referral_id=referral.id)
    assert identity.package_identity(db.session, referral.id) is None
    world.decide(world.custodian, row.id, True)
    assert identity.package_identity(db.session, referral.id) is row
    assert row.expires_at is None
    # The receiving body's key opens it; the county unit's key and the requester's do not.
    assert identity.ReporterIdentity.from_dict(json.loads(
        crypto.open_sealed(row.sealed_copy, [world.keys["psb_zhou"]]))) == REPORTER
    for wrong in (world.keys["yanji"], world.keys["zhou"], world.personal(world.officer)):
        with pytest.raises(crypto.CryptoError):
            crypto.open_sealed(row.sealed_copy, [wrong])
    # The officer does not read a package grant; the liaison reads it once handed over.
    with pytest.raises(identity.IdentityNotFound):
        identity.read(db.session, world.principal(world.officer),
                      world.personal(world.officer), row.id)
    as_liaison = world.principal(liaison, {body.id: world.keys["psb_zhou"]})
    with pytest.raises(identity.IdentityNotFound):
        identity.open_package_identity(db.session, as_liaison, referral.id)
    assert identity.disclosures(db.session, tip.id) == []
    referral.handed_over_at = utcnow()
    db.session.commit()
    assert identity.open_package_identity(db.session, as_liaison, referral.id) == REPORTER
    db.session.commit()
    # Another body's liaison, or an officer, opens nothing.
    other = staff.create("id_liaison2", "psb_yanji", "liaison")
    with pytest.raises(identity.IdentityNotFound):
        identity.open_package_identity(
            db.session, world.principal(other, {_unit("psb_yanji").id: world.keys["psb_yanji"]}),
            referral.id)
    with pytest.raises(identity.IdentityNotFound):
        identity.open_package_identity(db.session, world.principal(world.officer), referral.id)
    # Handed over: the package has left, so the grant stands.
    with pytest.raises(identity.IdentityRefused, match="handed_over"):
        identity.revoke(db.session, world.principal(world.custodian), row.id, "changed mind")
    told = identity.disclosures(db.session, tip.id)
    assert [(d.purpose, d.receiving_unit.code) for d in told] == [("package", "psb_zhou")]
    read = _events("identity.read")
    assert len(read) == 1 and read[0].actor_type == "liaison" and read[0].unit_code == "psb_zhou"
