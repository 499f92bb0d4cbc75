"""Cases and referrals through the officers' pages, the liaison's pages and the liaison API."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

from pypdf import PdfReader
from sqlalchemy import select

from auditlog.events import SYSTEM
from models import AuditEvent, Case, Referral, Tip, User
from portal.cases import referrals
from portal.intake import filing
from portal.web.extensions import db
from tests.conftest import FAST_ARGON2


def accepted_tip(narrative: str) -> int:
    filed = filing.file_tip(db.session, filing.TipDraft(narrative=narrative, county="yanji",
                                                        category="P01"), [],
                            limits=filing.Limits(10, 10**6, 10**6), receipt_cost=FAST_ARGON2,
                            actor=SYSTEM)
    db.session.get(Tip, filed.tip_id).status = "accepted"
    db.session.commit()
    return filed.tip_id


def test_referral_from_case_to_filing_across_pages_and_api(app, staff) -> None:
    ids = {name: staff.create(name, unit, role) for name, unit, role in (
        ("kim_case", "yanji", "case_officer"), ("lee_case", "yanji", "case_officer"),
        ("head", "yanji", "head"), ("police", "psb_zhou", "liaison"),
        ("other_police", "psb_yanji", "liaison"))}
    tips = [accepted_tip("waste dumped at the quarry"), accepted_tip("same quarry, again")]
    officer, head, police, other = (app.test_client() for _ in range(4))
    staff.login(officer, "kim_case", ids["kim_case"])
    staff.login(head, "head", ids["head"])
    staff.login(police, "police", ids["police"])
    staff.login(other, "other_police", ids["other_police"])

    assert officer.get("/staff/cases?lang=en").status_code == 200
    made = officer.post("/staff/cases", data={
        "tips": f"{tips[0]}, {tips[1]}", "members": [str(ids["kim_case"]), str(ids["lee_case"])],
        "offence": "pollution", "title": "Quarry dumping case", "summary": "Waste oil, twice."})
    assert made.status_code == 303
    case = db.session.scalars(select(Case)).one()
    page = officer.get(f"/staff/cases/{case.id}?lang=en").get_data(as_text=True)
    assert "Quarry dumping case" in page and case.number in page
    officer.post(f"/staff/cases/{case.id}", content_type="multipart/form-data", data={
        "do": "documents", "kind": "investigation_report",
        "files": [(io.BytesIO("调查报告".encode()), "report.txt")]})
    started = officer.post(f"/staff/cases/{case.id}", data={
        "do": "referral", "receiver": "psb_zhou", "copy": "proc_zhou"})
    referral_id = int(started.location.rsplit("/", 1)[1])
    page = officer.get(f"/staff/referrals/{referral_id}?lang=en").get_data(as_text=True)
    assert 'id="action-submit"' in page and 'id="action-approve"' not in page
    officer.post(f"/staff/referrals/{referral_id}/submit")
    assert db.session.get(Referral, referral_id).state == "awaiting_approval"
    # The case officer cannot approve; the head sees it in "awaiting your approval".
    denied = officer.post(f"/staff/referrals/{referral_id}/approve?lang=en")
    assert denied.status_code == 422  # the page again, saying why; nothing changed
    assert "not yours to take" in denied.get_data(as_text=True)
    assert db.session.get(Referral, referral_id).state == "awaiting_approval"
    assert f"#{referral_id} " in head.get("/staff/referrals?lang=en").get_data(as_text=True)
    head.post(f"/staff/referrals/{referral_id}/approve")
    officer.post(f"/staff/referrals/{referral_id}/hand_over",
                 data={"contact_phone": "0433-2512345"})
    referral = db.session.get(Referral, referral_id)
    db.session.refresh(referral)
    assert referral.state == "handed_over" and referral.package_id
    # The letter carries the log checkpoint it was issued under, renders again to the same
    # bytes from what was kept, and the log commits to its hash.
    from portal.security.access import principal_for
    from portal.security.custody import unit_identities, unlock_personal

    kim = db.session.get(User, ids["kim_case"])
    kim_principal = principal_for(db.session, kim, unit_identities(
        db.session, kim, unlock_personal(kim, staff.PASSWORD)))
    again = referrals.render_letter_again(db.session, kim_principal, referral_id)
    assert hashlib.sha256(again).hexdigest() == referral.letter_sha256
    letter_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(again)).pages)
    assert "audit-log" in letter_text.replace("\n", "")
    handover = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "referral.hand_over")).one()
    assert json.loads(handover.details)["letter_sha256"] == referral.letter_sha256

    # The liaison's pages: their body's referral, not another's.
    assert f"#{referral_id} " in police.get("/liaison/?lang=en").get_data(as_text=True)
    assert f"#{referral_id} " not in other.get("/liaison/?lang=en").get_data(as_text=True)
    assert other.get(f"/liaison/referrals/{referral_id}").status_code == 404
    police.post(f"/liaison/referrals/{referral_id}/sign_receipt", data={"period": "check"})
    db.session.refresh(referral)
    assert (referral.state, referral.due_step) == ("receipt_signed",
                                                  "referral.decide_filing_check")
    package = police.get(f"/liaison/referrals/{referral_id}/package")
    names = zipfile.ZipFile(io.BytesIO(package.data)).namelist()
    assert "01_案件移送书.pdf" in names and any(n.endswith("report.txt") for n in names)
    assert other.get(f"/liaison/referrals/{referral_id}/package").status_code == 404

    # The liaison API: token, list, a refused step (409, nothing changed), then 立案.
    api = app.test_client()
    token = api.post("/api/v1/liaison/token", json={
        "username": "police", "password": staff.PASSWORD,
        "otp": staff.code(ids["police"], offset_steps=1)}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    listed = api.get("/api/v1/liaison/referrals", headers=headers).get_json()["referrals"]
    assert [r["id"] for r in listed] == [referral_id]
    detail = api.get(f"/api/v1/liaison/referrals/{referral_id}", headers=headers).get_json()
    assert {a["action"] for a in detail["next_actions"]} >= {"file", "decline_filing",
                                                             "request_material"}
    again = api.post(f"/api/v1/liaison/referrals/{referral_id}/sign_receipt", headers=headers)
    assert again.status_code == 409 and again.get_json()["code"] == "not_from_this_state"
    no_document = api.post(f"/api/v1/liaison/referrals/{referral_id}/file", headers=headers)
    assert no_document.status_code == 409 and no_document.get_json()["code"] == (
        "documents_missing")
    db.session.refresh(referral)
    assert referral.state == "receipt_signed"
    filed = api.post(f"/api/v1/liaison/referrals/{referral_id}/file", headers=headers,
                     content_type="multipart/form-data", data={
                         "document_kind": "decision",
                         "documents": [(io.BytesIO(b"decision"), "decision.txt")]})
    assert filed.status_code == 200 and filed.get_json()["state"] == "filed"
    # After 立案 the filled button carries the case on (prosecution), not 撤案.
    filed_page = police.get(f"/liaison/referrals/{referral_id}?lang=en").get_data(as_text=True)
    primary = re.findall(r'class="button primary">([^<]+)<', filed_page)
    assert len(primary) == 1 and "撤案" not in primary[0] and "prosecution" in primary[0], primary
    sealed = api.get(f"/api/v1/liaison/referrals/{referral_id}/package", headers=headers)
    assert sealed.data.startswith(b"age-encryption.org/v1\n")
    # The officer sees the decision in the history, and the next period (exhibits, 3 days).
    page = officer.get(f"/staff/referrals/{referral_id}?lang=en").get_data(as_text=True)
    assert re.search(r"Record 立案 \(case filed\)</td>|→ Filed \(立案\)", page)
    assert "Hand over the exhibits" in page and "referral.hand_over_exhibits" not in page
    # An auditor sees the case and the referral by their metadata, never the case's title.
    auditor = staff.create("case_auditor", "zhou", "auditor", grant=False)
    audit = app.test_client()
    staff.login(audit, "case_auditor", auditor)
    overview = audit.get("/audit/referrals?lang=en").get_data(as_text=True)
    assert case.number in overview and "Quarry dumping case" not in overview
    assert "kim_case" in overview


def test_suggestions_are_recorded_answered_with_evidence(app, staff) -> None:
    uid = staff.create("rectifier", "yanji", "head")
    client = app.test_client()
    staff.login(client, "rectifier", uid)
    assert client.get("/staff/suggestions?lang=en").status_code == 200
    made = client.post("/staff/suggestions", data={
        "kind": "procuratorial", "issuer": "延吉市人民检察院", "unit": "yanji",
        "received_on": "2026-08-31", "problems": "饮用水水源地排污口未拆除"})
    assert made.status_code == 303
    page = client.get(made.location + "?lang=en").get_data(as_text=True)
    # Two months from 31 Aug 2026 is Sat 31 Oct, a rest day: Mon 2 Nov.
    assert "饮用水水源地排污口未拆除" in page and "Nov 2, 2026" in page
    answered = client.post(made.location, content_type="multipart/form-data", data={
        "measures": "排污口已拆除", "files": [(io.BytesIO(b"photo notes"), "after.txt")]})
    assert answered.status_code == 303
    page = client.get(made.location + "?lang=en").get_data(as_text=True)
    assert "排污口已拆除" in page and "after.txt" in page
    refused = client.post("/staff/suggestions", data={"kind": "rumour", "issuer": "x",
                                                      "unit": "yanji",
                                                      "received_on": "2026-08-31",
                                                      "problems": "p"})
    assert refused.status_code == 422 and 'value="x"' in refused.get_data(as_text=True)
