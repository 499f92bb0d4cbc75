"""Issue 10 in Chromium, JavaScript off: a case officer blacks out an area of a reporter's photo
for a referral (four numbers, in percent) and sees the preview of what goes out; after the head's
approval the officer hands it over, and the photo in the package the receiving body opens is
black over that area, with no run of the original's pixels left in it."""

from __future__ import annotations

import base64
import io
import random
import zipfile
from pathlib import Path

import pytest
from flask import current_app
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from models import CaseTip, Tip
from portal import blobs, crypto, intake, referrals
from portal.audit import SYSTEM
from portal.extensions import db
from tests.browser.test_referral_browser import (
    LIMITS,
    _accepted_tip,
    _act,
    _create_person,
    _principal,
    _sign_in,
    _submit,
    _wait_for,
)
from tests.helpers import MemoryUpload

pytestmark = pytest.mark.browser


def _noisy_png(size: tuple[int, int] = (200, 100)) -> bytes:
    rng = random.Random(3)
    image = Image.frombytes("RGB", size, bytes(rng.randrange(256)
                                               for _ in range(size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_an_officer_blacks_out_an_area_and_the_package_keeps_none_of_it(
        live_portal, desk_browser: WebDriver, tmp_path: Path) -> None:
    base, driver, app = live_portal.url, desk_browser, live_portal.app
    with app.app_context():
        ids, secrets = {}, {}
        for username, unit, role in (("rd_case_a", "yanji", "case_officer"),
                                     ("rd_case_b", "yanji", "case_officer"),
                                     ("rd_head", "yanji", "head"),
                                     ("rd_police", "psb_zhou", "liaison")):
            ids[username], secrets[username] = _create_person(live_portal, username, unit, role)
        filed = intake.file_tip(db.session, intake.TipDraft(
            narrative="夜里有人在河边倾倒废油，照片里能看到我家的门牌。", county="yanji",
            category="P01"), [MemoryUpload("河边.png", _noisy_png())], limits=LIMITS,
            receipt_cost=current_app.config["RECEIPT_ARGON2"], actor=SYSTEM)
        db.session.get(Tip, filed.tip_id).status = "accepted"
        db.session.commit()
        photo_id = db.session.get(Tip, filed.tip_id).attachments[0].id
        officer = _principal(ids["rd_case_a"])
        case = referrals.form_case(
            db.session, officer, tip_ids=[filed.tip_id, _accepted_tip("the same river bank")],
            member_ids=[ids["rd_case_a"], ids["rd_case_b"]], offence_code="pollution",
            title="河边倾倒废油案", summary="夜间倾倒废油。")
        assert db.session.get(CaseTip, (case.id, filed.tip_id))
        referrals.add_documents(db.session, officer, case.id, "investigation_report",
                                [MemoryUpload("调查报告.txt", "调查报告正文".encode())],
                                limits=LIMITS)
        rid = referrals.create_referral(db.session, officer, case.id, "psb_zhou").id
        referrals.act(db.session, officer, rid, "submit", limits=LIMITS, tip_files=[photo_id])
        original = Image.open(io.BytesIO(b"".join(crypto.open_stream(
            blobs.reader(db.session, photo_id), officer.identities_for(
                db.session.get(Tip, filed.tip_id)))))).convert("RGB")
        db.session.remove()

    staff_path = f"/staff/referrals/{rid}"
    redact_path = f"{staff_path}/redact/file/{photo_id}"
    _sign_in(driver, base, "rd_case_a", secrets["rd_case_a"])
    driver.get(f"{base}{staff_path}?lang=en")
    link = driver.find_element(By.CSS_SELECTOR, f'#redaction ~ ul a[href="{redact_path}"]')
    link.click()
    _wait_for(driver, "#redacted-preview")
    for name, value in (("x", "20"), ("y", "30"), ("width", "40"), ("height", "50")):
        driver.find_element(By.ID, f"box-{name}").send_keys(value)
    _submit(driver, 'form.action')
    preview = _wait_for(driver, "#redacted-preview").get_attribute("src")
    assert preview.startswith("data:image/png;base64,")
    shown = Image.open(io.BytesIO(base64.b64decode(preview.split(",", 1)[1]))).convert("RGB")
    assert shown.getpixel((int(shown.width * 0.35), int(shown.height * 0.45))) == (0, 0, 0)
    assert "20, 30, 40, 50" in driver.find_element(By.ID, "blacked-out").find_element(
        By.XPATH, "following-sibling::table[1]").text

    with app.app_context():
        referrals.act(db.session, _principal(ids["rd_head"]), rid, "approve", limits=LIMITS)
        db.session.remove()
    driver.get(f"{base}{staff_path}?lang=en")
    assert "1 area blacked out" in driver.find_element(By.ID, "materials").find_element(
        By.XPATH, "following-sibling::table[1]").text
    driver.find_element(By.CSS_SELECTOR, "form#action-hand_over input[name=contact_phone]") \
        .send_keys("0433-2512345")
    _act(driver, base, staff_path, "hand_over")
    driver.get(f"{base}{redact_path}?lang=en")
    assert "can no longer be changed" in driver.find_element(By.TAG_NAME, "main").text
    assert not driver.find_elements(By.ID, "box-x")

    with app.app_context():
        _referral, chunks = referrals.open_package(db.session, _principal(ids["rd_police"]),
                                                   rid)
        archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
        db.session.remove()
    entry = next(n for n in archive.namelist() if n.endswith("/河边.png"))
    data = archive.read(entry)
    sent = Image.open(io.BytesIO(data)).convert("RGB")
    box = (40, 30, 120, 80)  # 20 %, 30 %, 40 % wide, 50 % high of 200 × 100
    assert sent.size == original.size and not any(sent.crop(box).tobytes())
    for y in range(box[1], box[3]):
        run = original.crop((box[0], y, box[2], y + 1)).tobytes()[:30]
        assert run not in data and run not in sent.tobytes()
    assert "已遮盖 1 处" in archive.read("00_材料清单.txt").decode()
