"""Issue 8, the referral chain as people walk it: documents uploaded at any step belong to the
referral, a missing piece is a form error that keeps what was typed, a missing key is a refusal in
words, the log tells a refused download from a real one."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass

from sqlalchemy import select

from models import AuditEvent, Case, Referral
from portal.web.extensions import db
from tests.functional.test_referral_pages import accepted_tip
from tests.helpers import jpeg_with_metadata


@dataclass
class Scene:
    ids: dict[str, int]
    officer: object
    head: object
    tips: list[int]
    case_id: int
    referral_id: int


def referral_scene(app, staff, *, summary: str = "Waste oil, twice.") -> Scene:
    """Two officers form a case from two tips (no documents yet) and start a referral."""
    ids = {name: staff.create(name, unit, role) for name, unit, role in (
        ("kim_case", "yanji", "case_officer"), ("lee_case", "yanji", "case_officer"),
        ("head", "yanji", "head"))}
    tips = [accepted_tip("waste dumped at the quarry"), accepted_tip("same quarry, again")]
    officer, head = app.test_client(), app.test_client()
    staff.login(officer, "kim_case", ids["kim_case"])
    staff.login(head, "head", ids["head"])
    made = officer.post("/staff/cases", data={
        "tips": f"{tips[0]} {tips[1]}", "members": [str(ids["kim_case"]), str(ids["lee_case"])],
        "offence": "pollution", "title": "Quarry dumping case", "summary": summary})
    assert made.status_code == 303, made.get_data(as_text=True)[:2000]
    case = db.session.scalars(select(Case)).one()
    started = officer.post(f"/staff/cases/{case.id}", data={
        "do": "referral", "receiver": "psb_zhou", "copy": "proc_zhou"})
    referral_id = int(started.location.rsplit("/", 1)[1])
    return Scene(ids, officer, head, tips, case.id, referral_id)


def submit_with_report(scene: Scene) -> None:
    """The submit step asks for the 案件调查报告: it is uploaded there, not on the case page."""
    submitted = scene.officer.post(
        f"/staff/referrals/{scene.referral_id}/submit", content_type="multipart/form-data",
        data={"document_kind": "investigation_report",
              "files": [(io.BytesIO("调查报告：倾倒废油两次。".encode()), "调查报告.txt")]})
    assert submitted.status_code == 303
    assert db.session.get(Referral, scene.referral_id).state == "awaiting_approval"


def test_report_uploaded_at_submit_is_part_of_the_handed_over_package(app, staff) -> None:
    scene = referral_scene(app, staff)
    submit_with_report(scene)
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    handed = scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over",
                                data={"contact_phone": "0433-2512345"})
    assert handed.status_code == 303, handed.get_data(as_text=True)[:2000]
    referral = db.session.get(Referral, scene.referral_id)
    db.session.refresh(referral)
    assert referral.state == "handed_over" and referral.package_id
    package = scene.officer.get(f"/staff/referrals/{scene.referral_id}/package")
    archive = zipfile.ZipFile(io.BytesIO(package.data))
    report = [n for n in archive.namelist() if n.endswith("/调查报告.txt")]
    assert report and archive.read(report[0]).decode() == "调查报告：倾倒废油两次。"
    listing = archive.read("00_材料清单.txt").decode()
    assert "案件调查报告" in listing and "调查报告.txt" in listing


def test_a_letter_that_cannot_be_made_is_a_form_error_keeping_the_phone(app, staff) -> None:
    scene = referral_scene(app, staff, summary="")  # no facts: the 移送书 cannot be written
    submit_with_report(scene)
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    refused = scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over?lang=en",
                                 data={"contact_phone": "0433-2512345"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422, page[:2000]
    assert "0433-2512345" in page and "summary of the facts" in page
    assert db.session.get(Referral, scene.referral_id).state == "approved"
    # Without a phone number: the same page, the reason in words.
    refused = scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over?lang=en",
                                 data={"contact_phone": " "})
    assert refused.status_code == 422
    assert "contact phone" in refused.get_data(as_text=True)


def test_an_overlong_contact_phone_is_refused_before_the_letter_is_drawn(app, staff) -> None:
    scene = referral_scene(app, staff)
    submit_with_report(scene)
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    refused = scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over?lang=en",
                                 data={"contact_phone": "0433" * 25_000})
    assert refused.status_code == 422
    assert "at most 40 characters" in refused.get_data(as_text=True)
    assert db.session.get(Referral, scene.referral_id).state == "approved"


def test_refused_package_download_is_logged_as_a_refusal(app, staff) -> None:
    scene = referral_scene(app, staff)
    submit_with_report(scene)
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over",
                       data={"contact_phone": "0433-2512345"})
    keyless = staff.create("keyless_police", "psb_zhou", "liaison", grant=False)
    police = app.test_client()
    staff.login(police, "keyless_police", keyless)
    refused = police.get(f"/liaison/referrals/{scene.referral_id}/package?lang=en")
    assert refused.status_code == 403
    assert "key" in refused.get_data(as_text=True)
    actions = [e.action for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "referral",
                                 AuditEvent.actor_id == keyless))]
    assert actions == ["referral.package_refused"]
    # The sealed file is no way around a grant: refused as well, here and over the API.
    assert police.get(f"/liaison/referrals/{scene.referral_id}/package?format=age"
                      ).status_code == 403
    actions = [e.action for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "referral",
                                 AuditEvent.actor_id == keyless).order_by(AuditEvent.seq))]
    assert actions == ["referral.package_refused", "referral.package_refused"]


def test_answering_a_suggestion_without_the_key_is_a_refusal(app, staff) -> None:
    holder = staff.create("holder", "yanji", "head")
    keyless = staff.create("keyless", "yanji", "head", grant=False)
    client, other = app.test_client(), app.test_client()
    staff.login(client, "holder", holder)
    staff.login(other, "keyless", keyless)
    made = client.post("/staff/suggestions", data={
        "kind": "procuratorial", "issuer": "延吉市人民检察院", "unit": "yanji",
        "received_on": "2026-08-31", "problems": "排污口未拆除"})
    answered = other.post(made.location + "?lang=en", data={"measures": "已拆除"})
    assert answered.status_code == 303
    page = other.get(answered.location + "?lang=en").get_data(as_text=True)
    assert "key" in page
    # The suggestions form keeps what was typed when a value is wrong.
    refused = client.post("/staff/suggestions?lang=en", data={
        "kind": "procuratorial", "issuer": "延吉市人民检察院", "unit": "yanji",
        "received_on": "not a date", "problems": "饮用水水源地排污口"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "饮用水水源地排污口" in page
    assert "延吉市人民检察院" in page
    # Measures left empty: the answer page says so and keeps nothing half-done.
    empty = client.post(made.location + "?lang=en", data={"measures": "  "})
    assert empty.status_code == 422


def test_case_team_form_names_officers_and_keeps_input(app, staff) -> None:
    ids = {name: staff.create(name, "yanji", "case_officer", extra=())
           for name in ("kim_case", "lee_case")}
    tip = accepted_tip("waste dumped at the quarry")
    officer = app.test_client()
    staff.login(officer, "kim_case", ids["kim_case"])
    page = officer.get("/staff/cases?lang=en").get_data(as_text=True)
    assert "at least two officers" in page.split("<form", 2)[1] or \
        "at least two officers" in page.split("<form")[0]
    assert "lee_case" in page
    refused = officer.post("/staff/cases?lang=en", data={
        "tips": str(tip), "members": [str(ids["kim_case"])], "offence": "pollution",
        "title": "Quarry dumping case", "summary": "Waste oil at the quarry."})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Quarry dumping case" in page and "Waste oil at the quarry." in page
    assert f'value="{ids["kim_case"]}" id="member-{ids["kim_case"]}" checked' in page


def test_tip_evidence_goes_into_the_package_with_its_name_and_location(app, staff) -> None:
    from auditlog.events import SYSTEM
    from portal.intake import filing
    from tests.conftest import FAST_ARGON2
    from tests.helpers import MemoryUpload

    photo = jpeg_with_metadata()
    filed = filing.file_tip(
        db.session, filing.TipDraft(narrative="dumping at night", county="yanji",
                                    category="P01", keep_photo_location=True),
        [MemoryUpload("河边倾倒.jpg", photo)], limits=filing.Limits(10, 10**6, 10**6),
        receipt_cost=FAST_ARGON2, actor=SYSTEM)
    from models import Tip

    db.session.get(Tip, filed.tip_id).status = "accepted"
    db.session.commit()
    scene = referral_scene(app, staff)
    # The case gets the photo's tip too: a fresh case would do, but one case is simpler here.
    from models import CaseTip

    db.session.add(CaseTip(case_id=scene.case_id, tip_id=filed.tip_id))
    db.session.commit()
    attachment = db.session.get(Tip, filed.tip_id).attachments[0]
    page = scene.officer.get(f"/staff/referrals/{scene.referral_id}?lang=en")
    assert "河边倾倒.jpg" in page.get_data(as_text=True)
    # The reporter's photo is chosen where the report is submitted.
    submitted = scene.officer.post(
        f"/staff/referrals/{scene.referral_id}/submit", content_type="multipart/form-data",
        data={"document_kind": "investigation_report", "tip_files_offered": "1",
              "tip_files": [str(attachment.id)],
              "files": [(io.BytesIO("调查报告".encode()), "调查报告.txt")]})
    assert submitted.status_code == 303
    page = scene.head.get(f"/staff/referrals/{scene.referral_id}?lang=en").get_data(as_text=True)
    assert "河边倾倒.jpg" in page and "location and time kept" in page
    preview = scene.head.get(f"/staff/referrals/{scene.referral_id}/letter-preview")
    assert preview.status_code == 200 and preview.data.startswith(b"%PDF")
    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(preview.data)).pages)
    assert "样稿" in text and "举报人提供的证据材料" in text and "案件调查报告" in text
    assert db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "referral.letter_previewed")).one().actor_id == scene.ids["head"]
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over",
                       data={"contact_phone": "0433-2512345"})
    package = scene.officer.get(f"/staff/referrals/{scene.referral_id}/package")
    archive = zipfile.ZipFile(io.BytesIO(package.data))
    names = [n for n in archive.namelist() if n.endswith("/河边倾倒.jpg")]
    assert names, archive.namelist()
    data = archive.read(names[0])
    assert data[:3] == b"\xff\xd8\xff"  # still a JPEG, not re-rendered
    from PIL import Image

    exif = Image.open(io.BytesIO(data)).getexif()
    assert exif.get_ifd(0x8825)  # the location the reporter chose to keep
    listing = archive.read("00_材料清单.txt").decode()
    assert "image/jpeg" in listing and f"#{filed.tip_id}" in listing
    handover = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "referral.hand_over")).one()
    assert json.loads(handover.details)["letter_sha256"]


def test_both_sides_read_the_documents_of_the_steps(app, staff) -> None:
    from models import Attachment

    scene = referral_scene(app, staff)
    # A case-level document (the bureau's own) and the report brought with "submit".
    scene.officer.post(f"/staff/cases/{scene.case_id}", content_type="multipart/form-data",
                       data={"do": "documents", "kind": "interview_record",
                             "files": [(io.BytesIO("询问笔录".encode()), "询问笔录.txt")]})
    submit_with_report(scene)
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over",
                       data={"contact_phone": "0433-2512345"})
    police_id = staff.create("police", "psb_zhou", "liaison")
    police = app.test_client()
    staff.login(police, "police", police_id)
    police.post(f"/liaison/referrals/{scene.referral_id}/sign_receipt", data={"period": "normal"})
    filed = police.post(f"/liaison/referrals/{scene.referral_id}/file",
                        content_type="multipart/form-data", data={
                            "document_kind": "decision",
                            "files": [(io.BytesIO("立案决定书".encode()), "立案决定书.txt")]})
    assert filed.status_code == 303
    decision = db.session.scalars(select(Attachment).where(Attachment.kind == "decision")).one()
    report = db.session.scalars(select(Attachment).where(
        Attachment.kind == "investigation_report")).one()
    interview = db.session.scalars(select(Attachment).where(
        Attachment.kind == "interview_record")).one()
    # The bureau reads the receiving body's decision …
    page = scene.officer.get(f"/staff/referrals/{scene.referral_id}?lang=en")
    assert "立案决定书.txt" in page.get_data(as_text=True)
    got = scene.officer.get(f"/staff/documents/{decision.id}")
    assert got.status_code == 200 and got.data.decode() == "立案决定书"
    assert "filename*=UTF-8''%E7%AB%8B" in got.headers["Content-Disposition"]
    # … and the liaison the report brought with a step, never the bureau's case file.
    page = police.get(f"/liaison/referrals/{scene.referral_id}?lang=en").get_data(as_text=True)
    assert "调查报告.txt" in page and "询问笔录.txt" not in page
    assert police.get(f"/liaison/documents/{report.id}").data.decode() == "调查报告：倾倒废油两次。"
    assert police.get(f"/liaison/documents/{interview.id}").status_code == 404
    downloads = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "case.document_downloaded")).all()
    assert [(e.actor_type, e.object_id) for e in downloads] == [
        ("staff", decision.id), ("liaison", report.id)]


def test_the_api_gives_the_citation_as_data_and_its_words(app, staff) -> None:
    scene = referral_scene(app, staff)
    api = app.test_client()
    token = api.post("/api/v1/staff/token", json={
        "username": "kim_case", "password": staff.PASSWORD,
        "otp": staff.code(scene.ids["kim_case"], offset_steps=1)}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": "en"}
    detail = api.get(f"/api/v1/staff/referrals/{scene.referral_id}", headers=headers).get_json()
    submit = next(a for a in detail["next_actions"] if a["action"] == "submit")
    assert submit["basis"] == "310号 第5条; 17号 第5条"
    assert submit["basis_text"].endswith("the head decides within 3 days.")
    # tip_files must be a list of ids of the case's tips' files
    refused = api.post(f"/api/v1/staff/referrals/{scene.referral_id}/submit", headers=headers,
                       json={"tip_files": "all"})
    assert refused.status_code == 400
    refused = api.post(f"/api/v1/staff/referrals/{scene.referral_id}/submit", headers=headers,
                       json={"tip_files": [999999]})
    assert refused.status_code in (400, 409)
    from models import Referral

    assert db.session.get(Referral, scene.referral_id).state == "draft"


def test_nonsense_and_missing_keys_never_answer_500(app, staff) -> None:
    scene = referral_scene(app, staff)
    submit_with_report(scene)
    keyless_id = staff.create("keyless_head", "yanji", "head", grant=False)
    police_id = staff.create("police", "psb_zhou", "liaison")
    keyless, police = app.test_client(), app.test_client()
    staff.login(keyless, "keyless_head", keyless_id)
    staff.login(police, "police", police_id)
    rid, cid = scene.referral_id, scene.case_id
    nonsense = {"tips": "² 99999999999999999999999 -1", "members": ["x", "1e9"],
                "offence": "nope", "title": "t" * 5000, "do": "referral", "receiver": "mars",
                "kind": "bogus", "period": "forever", "document_kind": "x",
                "tip_files": ["99999999999999999999"], "tip_files_offered": "1",
                "received_on": "31/08/2026", "measures": "", "contact_phone": "x" * 500}
    seen = []
    for client in (scene.officer, scene.head, keyless, police):
        for method, path in (
                ("GET", "/staff/cases"), ("POST", "/staff/cases"),
                ("GET", f"/staff/cases/{cid}"), ("POST", f"/staff/cases/{cid}"),
                ("GET", f"/staff/referrals/{rid}"), ("POST", f"/staff/referrals/{rid}/submit"),
                ("POST", f"/staff/referrals/{rid}/approve"),
                ("POST", f"/staff/referrals/{rid}/no_such_step"),
                ("GET", f"/staff/referrals/{rid}/letter-preview"),
                ("GET", f"/staff/referrals/{rid}/package"),
                ("GET", "/staff/documents/1"), ("GET", "/staff/documents/999999"),
                ("GET", "/liaison/documents/1"), ("GET", f"/liaison/referrals/{rid}"),
                ("POST", f"/liaison/referrals/{rid}/sign_receipt"),
                ("GET", "/staff/suggestions"), ("POST", "/staff/suggestions"),
                ("POST", "/staff/suggestions/1")):
            response = client.open(path, method=method, data=nonsense)
            seen.append((method, path, response.status_code))
    assert all(code < 500 for _, _, code in seen), [s for s in seen if s[2] >= 500]
    keyless_preview = keyless.get(f"/staff/referrals/{rid}/letter-preview?lang=en")
    assert keyless_preview.status_code == 403 and "key" in keyless_preview.get_data(as_text=True)
    assert police.get(f"/staff/referrals/{rid}/letter-preview").status_code == 404
    page = keyless.get(f"/staff/referrals/{rid}?lang=en").get_data(as_text=True)
    assert "listed by kind and size only" in page and "调查报告.txt" not in page


def test_case_page_lists_the_documents_its_referrals_brought(app, staff) -> None:
    """The report uploaded at "submit" is the case's too: the case page lists it under its
    referral (never "no documents yet"), with its size in bytes."""
    scene = referral_scene(app, staff)
    before = scene.officer.get(f"/staff/cases/{scene.case_id}?lang=en").get_data(as_text=True)
    assert "No documents yet." in before and "With referral #" not in before
    submit_with_report(scene)
    page = scene.officer.get(f"/staff/cases/{scene.case_id}?lang=en")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "No documents yet." not in text
    assert f"With referral #{scene.referral_id}" in text
    group = text[text.index(f'id="referral-files-{scene.referral_id}"'):]
    group = group[:group.index("</ul>")]
    assert "调查报告.txt" in group and "/staff/documents/" in group
    size = len("调查报告：倾倒废油两次。".encode())
    assert f"({size} B)" in group
    download = scene.officer.get(group.split('href="', 1)[1].split('"', 1)[0])
    assert download.status_code == 200
    assert b"".join(download.response).decode() == "调查报告：倾倒废油两次。"
