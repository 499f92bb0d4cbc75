"""A file's name as the reporter sent it never reaches a page or JSON raw (issue 9, after finding
7): names stored before upload names were cleaned are cleaned where they are read out of their
sealed metadata (portal.intake.filing.open_meta), and intake's refusals quote the cleaned name. A
hostile name: a right-to-left override that shows "xexe.pdf" as "xfdp.exe", zero-width
characters, folders, 10,000 characters."""

from __future__ import annotations

import io
import json
import re

from sqlalchemy import func, select

from models import Attachment, Tip
from portal.security import crypto
from portal.security.keys import tip_recipients
from portal.web.extensions import db
from referral.filenames import safe_name
from tests.helpers import jpeg_with_metadata

SUBMISSION = re.compile(r'name="submission" type="hidden" value="([^"]+)"')
HANDLE = re.compile(r'name="token" type="hidden" value="([^"]+)"')
RECEIPT = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")
RLO = "\u202e"
HOSTILE = f"../../secret/证据{RLO}gpj.exe\u200b"
LONG = "证" * 10_000 + ".exe"
INVISIBLE = ("\u202a", "\u202b", "\u202c", "\u202d", RLO, "\u2066", "\u2067", "\u2068",
             "\u2069", "\u200b", "\u200c", "\u200d", "\ufeff", "\x00")
EXECUTABLE = b"MZ\x90\x00" + b"\x00" * 200  # a Windows program: not a type a tip takes


def clean(text: str) -> bool:
    return not any(c in text for c in INVISIBLE) and "../" not in text and "证" * 200 not in text


def old_name(tip: Tip, name: str, keys: dict[str, str]) -> None:
    """Seal `name` into the tip's first file as it was stored before names were cleaned."""
    attachment = db.session.scalars(select(Attachment).where(Attachment.tip_id == tip.id)).one()
    meta = json.loads(crypto.open_sealed(attachment.meta, [keys[tip.unit.code]]))
    meta["filename"] = name
    attachment.meta = crypto.seal(json.dumps(meta, ensure_ascii=False).encode(),
                                  tip_recipients(db.session, tip))
    db.session.commit()


def token_for(app, staff, username: str, uid: int) -> str:
    response = app.test_client().post("/api/v1/staff/token", json={
        "username": username, "password": staff.PASSWORD, "otp": staff.code(uid, offset_steps=1)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def test_a_name_stored_raw_is_shown_clean_to_officers_and_the_reporter(app, staff,
                                                                        portal_keys) -> None:
    citizen = app.test_client()
    page = citizen.get("/report?lang=en").get_data(as_text=True)
    filed = citizen.post("/report?lang=en", content_type="multipart/form-data", data={
        "narrative": "oil in the river", "county": "yanji",
        "submission": SUBMISSION.search(page).group(1),
        "attachments": [(io.BytesIO(jpeg_with_metadata()), "river.jpg")]})
    assert filed.status_code == 201, filed.get_data(as_text=True)[:1000]
    receipt = RECEIPT.search(filed.get_data(as_text=True)).group(1)
    tip = db.session.get(Tip, db.session.scalar(select(func.max(Tip.id))))
    old_name(tip, HOSTILE, portal_keys)
    shown = safe_name(HOSTILE)
    assert shown == "证据gpj.exe"

    uid = staff.create("reader", "yanji")
    browser = app.test_client()
    staff.login(browser, "reader", uid)
    page = browser.get(f"/staff/tips/{tip.id}?lang=en").get_data(as_text=True)
    assert shown in page and clean(page)
    attachment_id = db.session.scalar(select(Attachment.id).where(Attachment.tip_id == tip.id))
    download = browser.get(f"/staff/attachments/{attachment_id}")
    assert download.status_code == 200
    assert clean(download.headers["Content-Disposition"])
    assert download.data  # read to the end: a streamed download left open keeps its transaction

    api = app.test_client()
    headers = {"Authorization": f"Bearer {token_for(app, staff, 'reader', uid)}"}
    detail = api.get(f"/api/v1/staff/tips/{tip.id}", headers=headers).get_json()
    assert [a["filename"] for a in detail["attachments"]] == [shown]

    status = citizen.post("/followup?lang=en", data={"receipt": receipt})
    assert shown in status.get_data(as_text=True) and clean(status.get_data(as_text=True))
    seen = citizen.post("/api/v1/followup", json={"receipt": receipt}).get_json()
    assert [a["filename"] for a in seen["attachments"]] == [shown]


def test_a_refused_file_is_named_clean_on_the_form_and_over_the_api(app, portal_keys) -> None:
    for name in (HOSTILE, LONG):
        citizen = app.test_client()
        page = citizen.get("/report?lang=en").get_data(as_text=True)
        refused = citizen.post("/report?lang=en", content_type="multipart/form-data", data={
            "narrative": "oil in the river", "county": "yanji",
            "submission": SUBMISSION.search(page).group(1),
            "attachments": [(io.BytesIO(EXECUTABLE), name)]})
        text = refused.get_data(as_text=True)
        assert refused.status_code == 400
        assert f"“{safe_name(name)}” is not a photo" in text
        assert clean(text), name[:40]

        over_api = app.test_client().post(
            "/api/v1/tips", content_type="multipart/form-data",
            data={"narrative": "oil", "county": "yanji",
                  "attachments": [(io.BytesIO(EXECUTABLE), name)]},
            headers={"Accept-Language": "en"})
        assert over_api.status_code == 400
        errors = over_api.get_json()["errors"]
        assert [f"“{safe_name(name)}” is not a photo" in e for e in errors.values()] == [True]
        assert clean(json.dumps(errors, ensure_ascii=False))
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0


def test_a_lone_surrogate_in_a_sent_name_is_quoted_clean(app, portal_keys) -> None:
    """A name that is no text at all (a lone surrogate; werkzeug drops a multipart body whose
    headers are not UTF-8, but other callers of intake hand names over as they got them):
    the refusal quotes a name every encoder takes, in words."""
    from portal.intake.filing import IntakeRejected, Limits, store_attachments
    from portal.web.messages import error_text
    from tests.helpers import MemoryUpload

    limits = Limits(max_files=5, max_file_bytes=1 << 20, max_clean_bytes=1 << 20)
    for name, oversize in (("a\ud800" + RLO + "gpj.exe", False), (LONG, True)):
        with app.test_request_context(headers={"Accept-Language": "en"}):
            try:
                store_attachments(db.session, None, [MemoryUpload(name, EXECUTABLE, oversize)],
                                  ["age1" + "q" * 58], keep_location=False, limits=limits)
            except IntakeRejected as rejected:
                quoted = rejected.errors["attachments.0"].params["name"]
                text = error_text(rejected.errors["attachments.0"])
            else:
                raise AssertionError("an executable was stored")
            db.session.rollback()
        assert quoted == safe_name(name) and clean(text) and f"“{quoted}”" in text
        text.encode("utf-8")  # no lone surrogate left to break an encoder or a JSON answer


def test_files_to_choose_again_are_named_clean(app) -> None:
    """A refused form names the files chosen, to choose again: cleaned too."""
    citizen = app.test_client()
    page = citizen.get("/report?lang=en").get_data(as_text=True)
    refused = citizen.post("/report?lang=en", content_type="multipart/form-data", data={
        "narrative": "", "county": "yanji", "submission": SUBMISSION.search(page).group(1),
        "attachments": [(io.BytesIO(jpeg_with_metadata()), HOSTILE)]})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and safe_name(HOSTILE) in text and clean(text)
