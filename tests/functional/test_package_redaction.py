"""Issue 10, "never sent on by default": a referral package and its 移送书 carry no reporter's
identity, whatever the officer chooses; a tip's statement may go as a text file; before hand-over
the officer blacks out phrases of it and areas of a photo (burned in), the material list says so,
the receiving body's copy shows nothing of them, every step is audited without content, nothing
changes after hand-over; a custodian's grant to send the identity is a line of the list, the
identity itself not in the ZIP; and the package is the same bytes when built twice."""

from __future__ import annotations

import io
import json
import random
import re
import zipfile
import zlib
from datetime import datetime
from zoneinfo import ZoneInfo

from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from auditlog.events import SYSTEM
from models import (
    AuditEvent,
    CaseTip,
    IdentityRequest,
    Redaction,
    Referral,
    ReferralTipFile,
    ReferralTipText,
    Tip,
    Unit,
)
from portal.cases import redaction, referrals
from portal.intake import filing
from portal.security import crypto
from portal.web.extensions import db
from tests.conftest import FAST_ARGON2
from tests.functional.test_referral_handover import referral_scene
from tests.functional.test_referrals import principal
from tests.helpers import MemoryUpload

CANARIES = ("CANARY金哲", "13987650123", "222401199001011230", "CANARY河南街九号")
LIMITS = filing.Limits(10, 10**7, 10**7)
CST = ZoneInfo("Asia/Shanghai")


def noisy_png(size: tuple[int, int] = (160, 100)) -> bytes:
    rng = random.Random(10)
    image = Image.frombytes("RGB", size, bytes(rng.randrange(256)
                                               for _ in range(size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def real_name_tip(case_id: int) -> tuple[int, int]:
    """A real-name tip (name, phone, ID number, address: the canaries) with a photo, accepted
    and added to the case. Returns (tip id, photo attachment id)."""
    filed = filing.file_tip(
        db.session, filing.TipDraft(
            narrative="夜里王五在采石场倒废油，我家就在旁边。", place="采石场东门",
            occurred="11月3日夜", responsible="某运输公司", county="yanji", category="P01",
            identity=filing.Identity(name=CANARIES[0], phone=CANARIES[1],
                                     id_number=CANARIES[2], address=CANARIES[3],
                                     contact_ok=True)),
        [MemoryUpload("门口.png", noisy_png())], limits=LIMITS, receipt_cost=FAST_ARGON2,
        actor=SYSTEM)
    tip = db.session.get(Tip, filed.tip_id)
    tip.status = "accepted"
    db.session.add(CaseTip(case_id=case_id, tip_id=tip.id))
    db.session.commit()
    return tip.id, tip.attachments[0].id


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def assert_no_canary(archive: zipfile.ZipFile) -> None:
    """No canary in any entry: raw, as text, in the PDF's text and its decompressed streams."""
    for name in archive.namelist():
        data = archive.read(name)
        texts = [data.decode("utf-8", "ignore"), name]
        if name.endswith(".pdf"):
            texts.append(pdf_text(data))
            for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
                try:
                    texts.append(zlib.decompress(stream).decode("latin-1"))
                except zlib.error:
                    continue
        for canary in CANARIES:
            assert all(canary not in text for text in texts), (canary, name)
            assert canary.encode() not in data


def test_statement_and_photo_redacted_before_hand_over_and_no_identity(app, staff) -> None:
    scene = referral_scene(app, staff)
    police_id = staff.create("police", "psb_zhou", "liaison")
    police = app.test_client()
    staff.login(police, "police", police_id)
    tip_id, photo_id = real_name_tip(scene.case_id)
    rid = scene.referral_id
    base = f"/staff/referrals/{rid}"
    statement_page = f"{base}/redact/statement/{tip_id}"
    photo_page = f"{base}/redact/file/{photo_id}"

    page = scene.officer.get(f"{base}?lang=en").get_data(as_text=True)
    assert f'name="tip_texts" value="{tip_id}"' in page and photo_page in page
    submitted = scene.officer.post(f"{base}/submit", content_type="multipart/form-data", data={
        "document_kind": "investigation_report", "tip_files_offered": "1",
        "tip_files": [str(photo_id)], "tip_texts": [str(tip_id)],
        "files": [(io.BytesIO("调查报告".encode()), "调查报告.txt")]})
    assert submitted.status_code == 303
    assert db.session.get(ReferralTipText, (rid, tip_id))

    # The statement as it would go out: the content fields, never the identity.
    page = scene.officer.get(f"{statement_page}?lang=en").get_data(as_text=True)
    assert "夜里王五在采石场倒废油" in page and "采石场东门" in page
    assert not any(c in page for c in CANARIES)
    refused = scene.officer.post(f"{statement_page}?lang=en", data={"do": "add",
                                                                   "phrases": "李四"})
    assert refused.status_code == 422 and "does not occur in the statement" in refused.text
    assert "李四" in refused.text  # what was typed is kept
    added = scene.officer.post(statement_page, data={"do": "add", "phrases": "王五\n\n我家"})
    assert added.status_code == 303
    page = scene.officer.get(statement_page).get_data(as_text=True)
    assert "夜里■■在采石场倒废油，■■就在旁边。" in page
    # The same phrases typed again (a second tab, a full-width twin): refused in words, and the
    # material list still counts two places, not four.
    again = scene.officer.post(f"{statement_page}?lang=en",
                               data={"do": "add", "phrases": "王五\n我家\n王五"})
    assert again.status_code == 422 and "blacked out already" in again.text
    assert redaction.counts_for(db.session, rid)[(tip_id, None)] == 2

    # A box on the photo, entered in percent; the preview is the redacted image itself.
    page = scene.officer.get(f"{photo_page}?lang=en").get_data(as_text=True)
    assert 'src="data:image/png;base64,' in page and "门口.png" in page
    for bad in ({"x": "90", "y": "0", "width": "20", "height": "10"},
                {"x": "10", "y": "0", "width": "0", "height": "10"},
                {"x": "ten", "y": "0", "width": "5", "height": "10"}):
        refused = scene.officer.post(f"{photo_page}?lang=en", data={"do": "add", **bad})
        assert refused.status_code == 422 and "error-summary" in refused.text
    box = {"do": "add", "x": "25", "y": "20", "width": "50", "height": "40"}
    assert scene.officer.post(photo_page, data=box).status_code == 303
    assert scene.officer.post(photo_page, data={"do": "add", "x": "0", "y": "0", "width": "5",
                                                "height": "5"}).status_code == 303
    extra = db.session.scalars(select(Redaction).order_by(Redaction.id.desc())).first()
    assert scene.officer.post(photo_page, data={"do": "remove",
                                                "redaction": str(extra.id)}).status_code == 303
    # The spec is sealed; the row keeps only a count. The audit says what kind, how many.
    rows = db.session.scalars(select(Redaction).where(Redaction.referral_id == rid)).all()
    assert [(r.attachment_id, r.count) for r in rows] == [(None, 2), (photo_id, 1)]
    assert all("王五".encode() not in r.spec and b"boxes" not in r.spec for r in rows)
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action.like("referral.redaction_%")).order_by(AuditEvent.id)).all()
    assert [(e.action, json.loads(e.details)) for e in events] == [
        ("referral.redaction_added", {"kind": "text", "count": 2}),
        ("referral.redaction_added", {"kind": "image", "count": 1}),
        ("referral.redaction_added", {"kind": "image", "count": 1}),
        ("referral.redaction_removed", {"kind": "image", "count": 1})]
    # Another unit's liaison and the receiving body see nothing of it.
    assert police.get(statement_page).status_code == 404

    page = scene.head.get(f"{base}?lang=en").get_data(as_text=True)
    assert "1 area blacked out" in page and "2 phrases blacked out" in page
    scene.head.post(f"{base}/approve")
    handed = scene.officer.post(f"{base}/hand_over", data={"contact_phone": "0433-2512345"})
    assert handed.status_code == 303

    # After hand-over: shown, not changed.
    late = scene.officer.post(f"{photo_page}?lang=en", data={"do": "add", "x": "0", "y": "0",
                                                              "width": "5", "height": "5"})
    assert late.status_code == 422 and "handed over" in late.text
    assert scene.officer.post(statement_page, data={"do": "remove", "redaction": str(
        rows[0].id)}).status_code == 422
    assert db.session.scalar(select(Redaction.id).where(Redaction.id == rows[0].id))
    page = scene.officer.get(f"{photo_page}?lang=en").get_data(as_text=True)
    assert "can no longer be changed" in page and 'name="do" value="add"' not in page

    # The receiving body's package: the statement redacted, the photo's region black.
    package = police.get(f"/liaison/referrals/{rid}/package")
    assert package.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(package.data))
    assert_no_canary(archive)
    names = archive.namelist()
    statement = [n for n in names if n.endswith(f"举报内容_#{tip_id}.txt")]
    assert statement, names
    text = archive.read(statement[0]).decode()
    assert "夜里■■在采石场倒废油，■■就在旁边。" in text and "王五" not in text
    assert "地点：采石场东门" in text
    photos = [n for n in names if n.endswith("/门口.png")]
    assert photos, names
    burned = Image.open(io.BytesIO(archive.read(photos[0]))).convert("RGB")
    original = Image.open(io.BytesIO(scene.officer.get(f"/staff/attachments/{photo_id}").data)
                          ).convert("RGB")
    assert burned.size == original.size == (160, 100)
    box = (40, 20, 120, 60)  # 25 %, 20 %, 50 % wide, 40 % high of 160 × 100
    assert not any(burned.crop(box).tobytes())  # every pixel (0, 0, 0)
    raw = burned.tobytes()
    for y in range(box[1], box[3]):
        run = original.crop((box[0], y, box[2], y + 1)).tobytes()
        assert run[:30] not in raw and run[:30] not in archive.read(photos[0])
    assert burned.crop((0, 0, 160, 20)).tobytes() == original.crop((0, 0, 160, 20)).tobytes()
    listing = archive.read("00_材料清单.txt").decode()
    assert f"举报内容_#{tip_id}.txt\ttext/plain" in listing
    assert "image/png" in listing and listing.count("已遮盖") == 2
    assert "已遮盖 2 处" in listing and "已遮盖 1 处" in listing
    assert "举报人身份信息" not in listing  # nobody asked; no custodian granted it
    letter = pdf_text(archive.read("01_案件移送书.pdf")).replace(" ", "").replace("\n", "")
    assert "举报内容" in letter and "已遮盖2处" in letter and "已遮盖1处" in letter


def test_a_granted_identity_is_listed_not_packed_and_the_package_is_the_same_twice(
        app, staff, monkeypatch) -> None:
    from portal.intake import identity as identity_module
    from tests.functional.test_referrals import LIMITS as STEP_LIMITS

    scene = referral_scene(app, staff)
    tip_id, photo_id = real_name_tip(scene.case_id)
    officer, head = principal(staff, "kim_case"), principal(staff, "head")
    phone = {"contact_phone": "0433-1234567"}
    at = datetime(2026, 11, 30, 10, tzinfo=CST)
    psb = db.session.scalars(select(Unit).where(Unit.code == "psb_zhou")).one()

    def prepared(referral_id: int) -> None:
        referrals.act(db.session, officer, referral_id, "submit", now=at, limits=STEP_LIMITS,
                      uploads=[MemoryUpload("调查报告.txt", "调查报告".encode())],
                      document_kind="investigation_report", tip_files=[photo_id],
                      tip_texts=[tip_id])
        redaction.add_phrases(db.session, officer, referral_id, tip_id, ["王五"], now=at)
        redaction.add_box(db.session, officer, referral_id, photo_id, (100, 100, 300, 300),
                          now=at)
        referrals.act(db.session, head, referral_id, "approve", now=at)

    first = scene.referral_id
    second = referrals.create_referral(db.session, officer, scene.case_id, "psb_zhou",
                                       "proc_zhou", now=at).id
    # A custodian granted sending the identity with the first (a witness who agreed): sealed
    # to the receiving body, apart.
    db.session.add(IdentityRequest(
        tip_id=tip_id, requester_id=scene.ids["kim_case"], purpose="package",
        reason="证人同意", referral_id=first, state="granted", decided_at=at,
        decided_by_id=scene.ids["head"], created_at=at,
        sealed_copy=crypto.seal(json.dumps({"name": CANARIES[0]}).encode(), [psb.public_key])))
    db.session.commit()
    if not hasattr(identity_module, "package_identity"):  # until identity requests land
        monkeypatch.setattr(identity_module, "package_identity", lambda session, rid: (
            session.scalars(select(IdentityRequest).where(
                IdentityRequest.referral_id == rid, IdentityRequest.state == "granted"))
            .first()), raising=False)
    for referral_id in (first, second):
        prepared(referral_id)
        referrals.act(db.session, officer, referral_id, "hand_over", now=at,
                      letter_context=phone)

    def opened(referral_id: int) -> bytes:
        return b"".join(referrals.open_package(db.session, officer, referral_id)[1])

    packages = {rid: opened(rid) for rid in (first, second)}
    archive = zipfile.ZipFile(io.BytesIO(packages[first]))
    assert_no_canary(archive)
    listing = archive.read("00_材料清单.txt").decode()
    line = next(x for x in listing.splitlines() if "举报人身份信息" in x)
    assert "举报人身份信息（经信息保密员批准，另行加密移交）" in line and "2026-11-30" in line
    letter = pdf_text(archive.read("01_案件移送书.pdf")).replace(" ", "").replace("\n", "")
    assert "举报人身份信息" in letter and "2026-11-30" in letter
    # Built twice (another referral of the same case, the same choices and redactions): the
    # same ZIP but for the identity line, and the same again from the kept letter data.
    other = zipfile.ZipFile(io.BytesIO(packages[second]))
    assert "举报人身份信息" not in other.read("00_材料清单.txt").decode()
    for name in archive.namelist():
        if name not in ("00_材料清单.txt", "01_案件移送书.pdf"):
            assert archive.read(name) == other.read(name), name
    db.session.delete(db.session.scalars(select(IdentityRequest)).one())
    db.session.commit()
    third = referrals.create_referral(db.session, officer, scene.case_id, "psb_zhou",
                                      "proc_zhou", now=at).id
    prepared(third)
    referrals.act(db.session, officer, third, "hand_over", now=at, letter_context=phone)
    assert opened(third) == packages[second]
    assert (db.session.get(Referral, third).letter_sha256
            == db.session.get(Referral, second).letter_sha256)
    assert (referrals.render_letter_again(db.session, officer, second)
            == zipfile.ZipFile(io.BytesIO(packages[second])).read("01_案件移送书.pdf"))
    assert db.session.scalar(select(ReferralTipFile.attachment_id).where(
        ReferralTipFile.referral_id == third)) == photo_id


def test_the_api_chooses_statements_as_the_page_does(app, staff) -> None:
    from tests.functional.test_staff_api import token_for

    scene = referral_scene(app, staff)
    scene.officer.post(f"/staff/cases/{scene.case_id}", content_type="multipart/form-data",
                       data={"do": "documents", "kind": "investigation_report",
                             "files": [(io.BytesIO("调查报告".encode()), "调查报告.txt")]})
    token = token_for(app, staff, "kim_case", scene.ids["kim_case"], offset_steps=1)
    headers = {"Authorization": f"Bearer {token}",
               "Accept-Language": "en"}
    url = f"/api/v1/staff/referrals/{scene.referral_id}/submit"
    client = app.test_client()
    assert client.post(url, json={"tip_texts": "all"}, headers=headers).status_code == 400
    other = real_name_tip(scene.case_id)[0]
    db.session.delete(db.session.get(CaseTip, (scene.case_id, other)))
    db.session.commit()
    refused = client.post(url, json={"tip_texts": [other]}, headers=headers)
    assert refused.status_code == 400  # not a tip of the case
    done = client.post(url, json={"tip_texts": [scene.tips[1]]}, headers=headers)
    assert done.status_code == 200, done.get_json()
    assert db.session.scalars(select(ReferralTipText.tip_id).where(
        ReferralTipText.referral_id == scene.referral_id)).all() == [scene.tips[1]]


def test_hostile_redaction_input_is_refused_in_words(app, staff) -> None:
    """The redaction forms' own fields (tests/fuzzing.FIELDS does not name them), on a draft
    referral with a real statement and photo: never a 5xx, nothing stored."""
    scene = referral_scene(app, staff)
    tip_id, photo_id = real_name_tip(scene.case_id)
    base = f"/staff/referrals/{scene.referral_id}/redact"
    form = "application/x-www-form-urlencoded"
    hostile = [b"phrases=a%ED%A0%80", b"phrases=%00", b"phrases=" + b"x" * 300_000,
               b"phrases=" + b"%0A".join([b"p"] * 500), b"do=remove&redaction=%C2%B2",
               b"do=remove&redaction=" + str(2**70).encode(), b"do=remove&redaction=-1",
               b"x=1e309&y=0&width=1&height=1", b"x=nan&y=0&width=1&height=1",
               b"x=%D9%A3&y=0&width=1&height=1", b"x=-0&y=-0&width=100&height=100.04",
               b"x=0&y=0&width=" + b"9" * 5000 + b"&height=1", b"x=&y=&width=&height="]
    for path in (f"{base}/statement/{tip_id}", f"{base}/file/{photo_id}"):
        for body in hostile:
            answer = scene.officer.post(f"{path}?lang=en", data=body, content_type=form)
            assert answer.status_code in (404, 422), (path, body[:40], answer.status_code)
        assert scene.officer.post(path, json={"phrases": ["x"]}).status_code < 500
    assert not db.session.scalars(select(Redaction)).all()
