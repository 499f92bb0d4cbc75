"""Retention through the pages and the command: an administrator sets a category's period, a head
puts a tip on legal hold and lifts it (an officer cannot), `flask retention --dry-run` lists and
changes nothing, `flask retention` destroys; then the archived tip reads in words everywhere — the
officer's page, the queue, a file's download (404), an action (refused), the staff API, the
auditor's page, and the reporter's status page in Korean and over the API — never a 500."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pyotp
from sqlalchemy import func, select

from models import AuditEvent, BlobChunk, Category, Tip
from models.base import utcnow
from portal.web.extensions import db
from tests.functional.test_admin_users import admin_client
from tests.helpers import jpeg_with_metadata

SUBMISSION = re.compile(r'name="submission" type="hidden" value="([^"]+)"')
RECEIPT = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")


def events(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == action))


def report_with_photo(client) -> tuple[Tip, str]:
    """A Korean report of category P01 with a photo, through the citizen's page."""
    page = client.get("/report?lang=ko").get_data(as_text=True)
    response = client.post("/report", content_type="multipart/form-data", data={
        "narrative": "밤마다 폐수를 강에 버린다", "county": "yanji", "category": "P01",
        "submission": SUBMISSION.search(page).group(1),
        "attachments": (io.BytesIO(jpeg_with_metadata()), "river.jpg")})
    assert response.status_code == 201, response.get_data(as_text=True)[:2000]
    receipt = RECEIPT.search(response.get_data(as_text=True)).group(1)
    tip = db.session.scalars(select(Tip).order_by(Tip.id.desc()).limit(1)).one()
    return tip, receipt


def signed_in(app, staff, name: str, role: str, unit: str = "yanji"):
    uid = staff.create(name, unit, role=role)
    browser = app.test_client()
    staff.login(browser, name, uid)
    return browser, uid


def test_retention_from_the_pages_to_the_command(app, staff, runner) -> None:
    admin, _ = admin_client(app)
    # The administrator sets 30 days on P01; a wrong number comes back in words, kept.
    wrong = admin.post("/admin/categories/retention?lang=en",
                       data={"code": "P01", "retention_days": "0"})
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "from 1 to 36500" in page and 'value="0"' in page
    assert admin.post("/admin/categories/retention", data={
        "code": "P01", "retention_days": "30"}).status_code == 303
    current = db.session.scalars(select(Category).where(
        Category.code == "P01", Category.current.is_(True))).one()
    assert current.retention_days == 30 and events("category.retention_set") == 1
    page = admin.get("/admin/categories?lang=en").get_data(as_text=True)
    assert "are destroyed 30 days after closing" in page

    tip, receipt = report_with_photo(app.test_client())
    tip.status, tip.closed_at = "closed", utcnow() - timedelta(days=31)
    db.session.commit()
    attachment_id = tip.attachments[0].id

    # An officer cannot put it on hold; a head can, with a reason, and lift it again.
    officer, _ = signed_in(app, staff, "intake", "intake_officer")
    assert officer.post(f"/staff/tips/{tip.id}/legal-hold",
                        data={"hold": "on", "reason": "x"}).status_code == 403
    head, head_id = signed_in(app, staff, "head", "head")
    page = head.get(f"/staff/tips/{tip.id}?lang=en").get_data(as_text=True)
    assert "Not on legal hold" in page and "Put on legal hold" in page
    no_reason = head.post(f"/staff/tips/{tip.id}/legal-hold?lang=en", data={"hold": "on"})
    assert no_reason.status_code == 400 and "Please give a reason." in no_reason.get_data(
        as_text=True)
    assert "Retention and legal hold: Please give a reason.</a>" in no_reason.get_data(
        as_text=True)  # the summary at the top names the action in words
    assert head.post(f"/staff/tips/{tip.id}/legal-hold", data={
        "hold": "on", "reason": "州法院调取证据通知书"}).status_code == 303
    db.session.refresh(tip)
    assert tip.legal_hold and events("tip.hold_set") == 1
    held = runner.invoke(args=["retention", "--dry-run"])
    assert held.exit_code == 0 and f"#{tip.id}" not in held.output
    assert head.post(f"/staff/tips/{tip.id}/legal-hold", data={
        "hold": "off", "reason": "通知已撤销"}).status_code == 303
    db.session.refresh(tip)
    assert not tip.legal_hold and events("tip.hold_lifted") == 1

    # The dry run lists it and changes nothing; the run destroys it.
    dry = runner.invoke(args=["retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"tip #{tip.id}" in dry.output and "P01" in dry.output and "延吉" in dry.output
    assert "1 tips would" in dry.output
    db.session.refresh(tip)
    assert tip.archived_at is None and tip.content and events("tip.destroyed") == 0
    run = runner.invoke(args=["retention"])
    assert run.exit_code == 0 and "1 tips had their content destroyed" in run.output
    db.session.refresh(tip)
    assert tip.archived_at is not None and tip.content == b""
    assert db.session.scalar(select(func.count()).select_from(BlobChunk).where(
        BlobChunk.attachment_id == attachment_id)) == 0
    assert "0 tips had" in runner.invoke(args=["retention"]).output

    # The officer's page says it in words; the file is gone; actions are refused.
    page = head.get(f"/staff/tips/{tip.id}?lang=en").get_data(as_text=True)
    assert "This tip was destroyed on" in page and "its record is kept" in page
    assert "폐수" not in page, page[page.find("폐수") - 300:page.find("폐수") + 100]
    assert 'id="act-hold"' not in page
    assert head.get(f"/staff/attachments/{attachment_id}").status_code == 404
    refused = head.post(f"/staff/tips/{tip.id}/message?lang=en", data={"body": "hello"})
    assert refused.status_code == 400
    assert "nothing more can be done" in refused.get_data(as_text=True)
    assert "archived: content destroyed" in head.get("/staff/?lang=en").get_data(as_text=True)
    otp = pyotp.TOTP(staff.secrets[head_id]).at(__import__("time").time() + 30)
    token = app.test_client().post("/api/v1/staff/token", json={
        "username": "head", "password": staff.PASSWORD, "otp": otp}).get_json()["token"]
    api = app.test_client().get(f"/api/v1/staff/tips/{tip.id}",
                                headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200
    assert api.get_json()["archived_at"] and api.get_json()["content"] == {}

    # The auditor reads the destruction in words.
    auditor, _ = signed_in(app, staff, "auditor", "auditor", unit="zhou")
    page = auditor.get(f"/audit/tips/{tip.id}?lang=en").get_data(as_text=True)
    assert "Content destroyed under the retention rule" in page and "Put on legal hold" in page

    # The reporter's receipt answers "archived", in Korean, and over the API.
    citizen = app.test_client()
    status = citizen.post("/followup?lang=ko", data={"receipt": receipt})
    page = status.get_data(as_text=True)
    assert status.status_code == 200 and "보관처리되였습니다" in page and "폐수" not in page
    reply = citizen.post("/api/v1/followup/messages", json={"receipt": receipt, "body": "x"})
    assert reply.status_code == 400
    answer = citizen.post("/api/v1/followup", json={"receipt": receipt},
                          headers={"Accept-Language": "en"})
    assert answer.status_code == 200 and answer.get_json()["archived"] is True
    assert answer.get_json()["messages"] == [] and answer.get_json()["attachments"] == []
