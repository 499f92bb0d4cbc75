"""Identity access requests through the pages: the officer asks on the tip page, the custodian
grants or refuses on /staff/identity-requests, the officer reads the identity on its own page,
the auditor sees every step and read (never the identity), and the reporter's status page tells
them, in their language."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from models import AuditEvent, IdentityRequest, RequestState, Tip
from portal.intake import identity
from portal.web.extensions import db
from tests.helpers import give_custodian_keys, hand_custodian_key

NAME, PHONE = "박영희", "13911112222"


def _file_real_name(client) -> tuple[int, str]:
    response = client.post("/api/v1/tips", json={
        "narrative": "black water from the paper mill", "county": "yanji",
        "identity": {"name": NAME, "phone": PHONE, "contact_ok": True}})
    assert response.status_code == 201
    tip = db.session.get(Tip, db.session.scalar(select(func.max(Tip.id))))
    if db.session.get(identity.TipIdentity, tip.id) is None:  # filing seals it (issue 10)
        identity.seal_identity(db.session, tip, identity.ReporterIdentity(name=NAME, phone=PHONE))
        db.session.commit()
    return tip.id, response.get_json()["receipt"]


class People:
    def __init__(self, app, staff) -> None:
        keys = give_custodian_keys(db.session)
        self.officer = staff.create("pg_officer", "yanji", "case_officer")
        self.custodian = staff.create("pg_custodian", "yanji", "custodian", grant=False)
        self.auditor = staff.create("pg_auditor", "zhou", "auditor", grant=False)
        self.hc_custodian = staff.create("pg_hc_custodian", "hunchun", "custodian", grant=False)
        hand_custodian_key(db.session, self.custodian, "yanji", keys["yanji"])
        hand_custodian_key(db.session, self.hc_custodian, "hunchun", keys["hunchun"])
        self.clients = {}
        for name in ("officer", "custodian", "auditor", "hc_custodian"):
            client = app.test_client()
            staff.login(client, f"pg_{name}", getattr(self, name))
            self.clients[name] = client
        # A custodian and nothing else starts at the requests.
        again = app.test_client()
        again.post("/staff/login", data={"username": "pg_custodian",
                                         "password": staff.PASSWORD})
        signed = again.post("/staff/login/code", data={"code": staff.code(self.custodian, 1)})
        assert signed.headers["Location"].endswith("/staff/identity-requests")

    def __getitem__(self, name: str):
        return self.clients[name]


@pytest.fixture
def people(app, staff) -> People:
    return People(app, staff)


def _ask(people: People, tip_id: int, purpose: str = "contact",
         reason: str = "arrange a visit to the mill with the reporter"):
    return people["officer"].post(f"/staff/tips/{tip_id}/identity-request",
                                  data={"purpose": purpose, "reason": reason},
                                  headers={"Accept-Language": "en"})


def _only_request(tip_id: int) -> IdentityRequest:
    rows = list(db.session.scalars(select(IdentityRequest).where(
        IdentityRequest.tip_id == tip_id)))
    assert len(rows) == 1
    return rows[0]


def _status_page(client, receipt: str, lang: str) -> str:
    response = client.post(f"/followup?lang={lang}", data={"receipt": receipt})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_request_grant_read_audit_and_the_reporter_is_told(app, client, people) -> None:
    tip_id, receipt = _file_real_name(client)
    officer, custodian, auditor = people["officer"], people["custodian"], people["auditor"]
    en = {"Accept-Language": "en"}
    page = officer.get(f"/staff/tips/{tip_id}", headers=en).get_data(as_text=True)
    assert 'id="act-identity"' in page and NAME not in page
    assert "Do not write the reporter" in page, page[page.find("identity-requests") - 200:][:3000]
    # An empty reason is refused in words, nothing is stored, the choice is kept.
    refused = _ask(people, tip_id, purpose="witness", reason="  ")
    assert refused.status_code == 400 and "Please give a reason." in refused.get_data(as_text=True)
    assert '<option value="witness" selected>' in refused.get_data(as_text=True)
    # The summary at the top names the action in words, not a generic "Action".
    assert "identity: Please give a reason.</a>" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count(IdentityRequest.id))) == 0
    response = _ask(people, tip_id)
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/staff/tips/{tip_id}#identity-requests")
    # The same form sent again (a refresh, a double click) asks nothing twice.
    again = _ask(people, tip_id)
    assert again.status_code == 400 and "already have a request" in again.get_data(as_text=True)
    row = _only_request(tip_id)
    page = officer.get(f"/staff/tips/{tip_id}", headers=en).get_data(as_text=True)
    assert "waiting for a custodian&#39;s decision" in page and "Read the reporter" not in page
    assert officer.get(f"/staff/identity-requests/{row.id}", headers=en).status_code == 403
    # The custodian: the menu counts it, the page lists it with the reason, in words.
    listed = custodian.get("/staff/identity-requests", headers=en).get_data(as_text=True)
    assert "Identity requests <span class=\"count\">(1)</span>" in listed
    assert "arrange a visit to the mill" in listed and "to contact the reporter" in listed
    assert "Yanji" in listed and "pg_officer" in listed and NAME not in listed
    # 珲春's custodian neither sees nor decides it.
    other = people["hc_custodian"]
    assert "arrange a visit" not in other.get("/staff/identity-requests").get_data(as_text=True)
    assert other.post(f"/staff/identity-requests/{row.id}/decide",
                      data={"decision": "grant", "days": "7"}).status_code == 404
    bad_days = custodian.post(f"/staff/identity-requests/{row.id}/decide",
                              data={"decision": "grant", "days": "99"}, headers=en)
    assert bad_days.status_code == 400 and "from 1 to 30" in bad_days.get_data(as_text=True)
    granted = custodian.post(f"/staff/identity-requests/{row.id}/decide",
                             data={"decision": "grant", "days": "5", "reason": ""}, headers=en)
    assert granted.status_code == 303
    assert custodian.post(f"/staff/identity-requests/{row.id}/decide",
                          data={"decision": "grant", "days": "5"}).status_code == 400
    # The officer reads it; each read is recorded.
    page = officer.get(f"/staff/tips/{tip_id}", headers=en).get_data(as_text=True)
    assert f'href="/staff/identity-requests/{row.id}"' in page and NAME not in page
    for _ in range(2):
        read = officer.get(f"/staff/identity-requests/{row.id}", headers=en)
        text = read.get_data(as_text=True)
        assert read.status_code == 200 and NAME in text and PHONE in text
        assert "This read is recorded" in text and "The grant runs until" in text
        assert read.headers["Cache-Control"] == "no-store"
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action == "identity.read")) == 2
    # The auditor: request, reason, decision, decider and both reads, never the identity.
    audit = auditor.get("/audit/identity", headers=en)
    text = audit.get_data(as_text=True)
    assert audit.status_code == 200 and NAME not in text and PHONE not in text
    assert "arrange a visit to the mill" in text and "pg_custodian" in text
    assert len(re.findall(r"pg_officer · ", text)) >= 3  # asked, and read twice
    assert "Identity requests" in auditor.get("/audit/", headers=en).get_data(as_text=True)
    # The reporter, in Korean: when and why, no officer's name.
    status = _status_page(client, receipt, "ko")
    assert "귀하의 신분정보가 귀하의 제보를 처리하는 사업일군에게 알려졌습니다" in status
    assert "귀하와 련락하기 위하여" in status and "pg_officer" not in status
    # Revoked: nothing more to read; the reporter is still told it was made known.
    custodian.post(f"/staff/identity-requests/{row.id}/revoke", data={"reason": ""})
    revoked = custodian.post(f"/staff/identity-requests/{row.id}/revoke",
                             data={"reason": "the visit took place"}, headers=en)
    assert revoked.status_code == 303
    assert officer.get(f"/staff/identity-requests/{row.id}").status_code == 403
    assert "련락하기 위하여" in _status_page(client, receipt, "ko")


def test_a_refused_request_reveals_nothing(app, client, people) -> None:
    tip_id, receipt = _file_real_name(client)
    en = {"Accept-Language": "en"}
    assert _ask(people, tip_id, purpose="reward").status_code == 303
    row = _only_request(tip_id)
    custodian = people["custodian"]
    no_reason = custodian.post(f"/staff/identity-requests/{row.id}/decide",
                               data={"decision": "refuse", "reason": ""}, headers=en)
    assert no_reason.status_code == 400 and "Please give a reason." in no_reason.get_data(
        as_text=True)
    refused = custodian.post(f"/staff/identity-requests/{row.id}/decide",
                             data={"decision": "refuse", "reason": "no reward is due yet"},
                             headers=en)
    assert refused.status_code == 303
    db.session.refresh(row)
    assert row.state == RequestState.REFUSED and row.sealed_copy is None
    officer = people["officer"]
    read = officer.get(f"/staff/identity-requests/{row.id}", headers=en)
    assert read.status_code == 403 and NAME not in read.get_data(as_text=True)
    page = officer.get(f"/staff/tips/{tip_id}", headers=en).get_data(as_text=True)
    assert "refused" in page and "Read the reporter" not in page and NAME not in page
    mine = officer.get("/staff/identity-requests", headers=en).get_data(as_text=True)
    assert "no reward is due yet" in mine and NAME not in mine
    # An officer finds their own requests from the menu, not only by address.
    assert 'href="/staff/identity-requests"' in page
    assert "identity-disclosures" not in _status_page(client, receipt, "ko")
    assert "no reward is due yet" in people["auditor"].get("/audit/identity").get_data(
        as_text=True)
    # Withdrawn before a decision: nothing to decide.
    assert _ask(people, tip_id, purpose="witness", reason="a statement").status_code == 303
    pending = db.session.scalars(select(IdentityRequest).where(
        IdentityRequest.state == RequestState.PENDING)).one()
    assert officer.post(f"/staff/identity-requests/{pending.id}/withdraw").status_code == 303
    db.session.refresh(pending)
    assert pending.state == RequestState.WITHDRAWN


def test_package_identity_through_the_referral_pages(app, client, people, staff) -> None:
    """Asked on the referral page, granted by the custodian, read by the receiving body's liaison
    once handed over; the reporter is told where it went."""
    from models import Case, CaseTip, Referral, Unit
    from models.base import utcnow

    tip_id, receipt = _file_real_name(client)
    unit = {u.code: u for u in db.session.scalars(select(Unit))}
    case = Case(number="延州环移〔2026〕第9号", year=2026, seq=9, unit_id=unit["yanji"].id,
                created_by_id=people.officer, content=b"")
    db.session.add(case)
    db.session.flush()
    db.session.add(CaseTip(case_id=case.id, tip_id=tip_id))
    referral = Referral(case_id=case.id, unit_id=case.unit_id,
                        receiving_unit_id=unit["psb_zhou"].id, state="draft",
                        created_by_id=people.officer)
    db.session.add(referral)
    db.session.commit()
    en = {"Accept-Language": "en"}
    officer = people["officer"]
    page = officer.get(f"/staff/referrals/{referral.id}", headers=en).get_data(as_text=True)
    assert f'id="action-identity-{tip_id}"' in page and NAME not in page
    path = f"/staff/tips/{tip_id}/identity-request"
    empty = officer.post(path, data={"purpose": "package", "referral_id": str(referral.id),
                                     "reason": ""}, headers=en)
    assert empty.status_code == 400 and "Please give a reason." in empty.get_data(as_text=True)
    asked = officer.post(path, data={"purpose": "package", "referral_id": str(referral.id),
                                     "reason": "a witness who agreed to testify"}, headers=en)
    assert asked.status_code == 303 and f"/staff/referrals/{referral.id}" in asked.headers[
        "Location"]
    row = _only_request(tip_id)
    listed = people["custodian"].get("/staff/identity-requests", headers=en).get_data(
        as_text=True)
    assert "to send it with the case to the receiving body" in listed
    assert "My requests" not in listed  # the custodian never asked: no empty list of theirs
    assert f'id="days-{row.id}"' not in listed  # a package grant travels, it does not run out
    granted = people["custodian"].post(f"/staff/identity-requests/{row.id}/decide",
                                       data={"decision": "grant"})
    assert granted.status_code == 303
    assert identity.package_identity(db.session, referral.id).id == row.id
    liaison_id = staff.create("pg_liaison", "psb_zhou", "liaison")
    liaison = app.test_client()
    staff.login(liaison, "pg_liaison", liaison_id)
    read_path = f"/liaison/referrals/{referral.id}/identity"
    assert liaison.get(read_path).status_code == 404  # not handed over yet
    assert "identity-disclosures" not in _status_page(client, receipt, "ko")
    db.session.get(Referral, referral.id).handed_over_at = utcnow()
    db.session.commit()
    page = liaison.get(f"/liaison/referrals/{referral.id}", headers=en).get_data(as_text=True)
    assert f'href="{read_path}"' in page and NAME not in page
    read = liaison.get(read_path, headers=en)
    assert read.status_code == 200 and NAME in read.get_data(as_text=True)
    assert officer.get(read_path).status_code == 404  # the bureau's officer is no liaison
    # Handed over: the custodian can no longer take it back, and is offered no form to try.
    listed = people["custodian"].get("/staff/identity-requests", headers=en).get_data(
        as_text=True)
    assert f'id="revoke-{row.id}"' not in listed and "can no longer be revoked" in listed
    refused = people["custodian"].post(f"/staff/identity-requests/{row.id}/revoke",
                                       data={"reason": "changed our mind"}, headers=en)
    assert refused.status_code == 400 and "already been handed over" in refused.get_data(
        as_text=True)
    status = _status_page(client, receipt, "ko")
    assert f"귀하의 신분정보가 사건과 함께 {unit['psb_zhou'].name_ko}에 보내졌습니다" in status
