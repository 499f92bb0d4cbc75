"""Issue 10 in Chromium, JavaScript off: a case officer blacks out an area of a real-name reporter's
photo for a referral (four numbers, in percent) and sees the preview of what goes out, and asks on
the referral page to send the reporter's identity with the package; a custodian grants it on
/staff/identity-requests. After the head's approval the officer hands it over. The receiving
body's liaison, in the browser: the photo in the package is black over that area, with no run of
the original's pixels left in it; the material list names the identity sent apart, the ZIP holds
no name, and the identity page shows it. A second referral of the same case, handed over without
a grant, offers no identity link and its package names no identity at all."""

from __future__ import annotations

import base64
import io
import random
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from flask import current_app
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from sqlalchemy import select

from auditlog.events import SYSTEM
from models import CaseTip, IdentityRequest, Tip, TipIdentity
from portal.cases import referrals
from portal.intake import blobs, filing, identity
from portal.security import crypto
from portal.web.extensions import db
from tests.browser.test_identity_walk import _person, _sign_in, _sign_out
from tests.browser.test_referral_browser import (
    LIMITS,
    _accepted_tip,
    _act,
    _create_person,
    _no_error,
    _principal,
    _submit,
    _wait_for,
)
from tests.helpers import MemoryUpload, give_custodian_keys, hand_custodian_key

pytestmark = pytest.mark.browser


def _noisy_png(size: tuple[int, int] = (200, 100)) -> bytes:
    rng = random.Random(3)
    image = Image.frombytes("RGB", size, bytes(rng.randrange(256)
                                               for _ in range(size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


NAME, PHONE = "金秀英", "13904331234"  # canaries: only the liaison's identity page shows them


def _fetch(driver: WebDriver, url: str) -> bytes:
    """What the browser would download from `url`, sent with its cookies."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    request = urllib.request.Request(url, headers={"Cookie": cookies})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.read()


def _package(driver: WebDriver, base: str, rid: int) -> zipfile.ZipFile:
    """The referral's package as its liaison downloads it; no entry names the reporter."""
    data = _fetch(driver, f"{base}/liaison/referrals/{rid}/package")
    archive = zipfile.ZipFile(io.BytesIO(data))
    for entry in archive.namelist():
        body = archive.read(entry)
        for canary in (NAME, PHONE):
            assert canary not in entry and canary.encode() not in body, (rid, entry, canary)
    return archive


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
        keys = give_custodian_keys(db.session, ("yanji",))
        ids["rd_keeper"], secrets["rd_keeper"] = _person(live_portal, "rd_keeper", "yanji",
                                                         "custodian", content_key=False)
        hand_custodian_key(db.session, ids["rd_keeper"], "yanji", keys["yanji"])
        filed = filing.file_tip(db.session, filing.TipDraft(
            narrative="夜里有人在河边倾倒废油，照片里能看到我家的门牌。", county="yanji",
            category="P01", identity=filing.Identity(name=NAME, phone=PHONE, contact_ok=True)),
            [MemoryUpload("河边.png", _noisy_png())], limits=LIMITS,
            receipt_cost=current_app.config["RECEIPT_ARGON2"], actor=SYSTEM)
        db.session.get(Tip, filed.tip_id).status = "accepted"
        db.session.commit()
        assert db.session.get(TipIdentity, filed.tip_id) is not None
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
        # The same case's second referral goes out with the photo and the real-name tip's
        # statement, but nobody asks for the identity: it must travel nowhere.
        plain = referrals.create_referral(db.session, officer, case.id, "psb_zhou").id
        referrals.act(db.session, officer, plain, "submit", limits=LIMITS, tip_files=[photo_id],
                      tip_texts=[filed.tip_id])
        referrals.act(db.session, _principal(ids["rd_head"]), plain, "approve", limits=LIMITS)
        referrals.act(db.session, officer, plain, "hand_over", limits=LIMITS,
                      letter_context={"contact_phone": "0433-2512345"})
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

    # The officer asks, on the referral page, to send the reporter's identity with the package.
    driver.get(f"{base}{staff_path}?lang=en")
    driver.find_element(By.ID, f"package-reason-{filed.tip_id}").send_keys(
        "a witness who agreed to testify")
    _submit(driver, f"form#action-identity-{filed.tip_id}")
    assert driver.current_url.startswith(f"{base}{staff_path}")
    _no_error(driver)
    assert NAME not in driver.page_source and PHONE not in driver.page_source
    _sign_out(driver)
    with app.app_context():
        asked = db.session.scalars(select(IdentityRequest).where(
            IdentityRequest.referral_id == rid)).one().id
        db.session.remove()
    # A custodian grants it on the identity requests page.
    _sign_in(driver, base, "rd_keeper", secrets["rd_keeper"])
    driver.get(f"{base}/staff/identity-requests?lang=en")
    _submit(driver, f"#grant-{asked}")
    _no_error(driver)
    assert NAME not in driver.page_source
    _sign_out(driver)
    with app.app_context():
        assert identity.package_identity(db.session, rid).id == asked
        referrals.act(db.session, _principal(ids["rd_head"]), rid, "approve", limits=LIMITS)
        db.session.remove()
    _sign_in(driver, base, "rd_case_a", secrets["rd_case_a"])
    driver.get(f"{base}{staff_path}?lang=en")
    assert "1 area blacked out" in driver.find_element(By.ID, "materials").find_element(
        By.XPATH, "following-sibling::table[1]").text
    driver.find_element(By.CSS_SELECTOR, "form#action-hand_over input[name=contact_phone]") \
        .send_keys("0433-2512345")
    _act(driver, base, staff_path, "hand_over")
    driver.get(f"{base}{redact_path}?lang=en")
    assert "can no longer be changed" in driver.find_element(By.TAG_NAME, "main").text
    assert not driver.find_elements(By.ID, "box-x")
    _sign_out(driver)

    # The bureau's liaison. Without a grant: no identity link, no identity line, no name.
    _sign_in(driver, base, "rd_police", secrets["rd_police"])
    driver.get(f"{base}/liaison/referrals/{plain}?lang=en")
    assert driver.find_element(By.ID, "referral-state").text == "Handed over"
    assert not driver.find_elements(By.ID, "identity-package")
    assert not driver.find_elements(By.CSS_SELECTOR, 'a[href$="/identity"]')
    with pytest.raises(urllib.error.HTTPError) as missing:
        _fetch(driver, f"{base}/liaison/referrals/{plain}/identity")
    assert missing.value.code == 404
    bare = _package(driver, base, plain)
    listing = bare.read("00_材料清单.txt").decode()
    assert "举报内容" in listing and "身份" not in listing, listing
    # With the grant: the material list names the identity sent apart; the page shows it.
    driver.get(f"{base}/liaison/referrals/{rid}?lang=en")
    assert NAME not in driver.find_element(By.TAG_NAME, "main").text
    read_link = driver.find_element(By.ID, "read-package-identity")
    assert read_link.get_attribute("href") == f"{base}/liaison/referrals/{rid}/identity"
    read_link.click()
    shown_identity = _wait_for(driver, "#reporter-identity").text
    assert NAME in shown_identity and PHONE in shown_identity
    archive = _package(driver, base, rid)
    assert "举报人身份信息（经信息保密员批准，另行加密移交）" in archive.read(
        "00_材料清单.txt").decode()
    entry = next(n for n in archive.namelist() if n.endswith("/河边.png"))
    data = archive.read(entry)
    sent = Image.open(io.BytesIO(data)).convert("RGB")
    box = (40, 30, 120, 80)  # 20 %, 30 %, 40 % wide, 50 % high of 200 × 100
    assert sent.size == original.size and not any(sent.crop(box).tobytes())
    for y in range(box[1], box[3]):
        run = original.crop((box[0], y, box[2], y + 1)).tobytes()[:30]
        assert run not in data and run not in sent.tobytes()
    assert "已遮盖 1 处" in archive.read("00_材料清单.txt").decode()
