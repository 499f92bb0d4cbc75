"""A citizen's whole visit in a real browser, with JavaScript off, on a 360 px phone, in Korean:
report with a photo, read the receipt, follow up with a sloppily typed receipt, reply; then check
through the domain that the stored photo lost its GPS position and camera make."""

from __future__ import annotations

import io
import json
import re
import unicodedata
import uuid
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select

from models import Attachment, BlobChunk, Message, Tip
from portal.intake.filing import FieldError
from portal.security import crypto
from portal.web.extensions import db
from portal.web.messages import error_text
from tests.browser.conftest import (
    PHONE_HEIGHT,
    PHONE_WIDTH,
    page_replaced,
    submit_form,
    wait_for,
)

pytestmark = pytest.mark.browser

RECEIPT = re.compile(r"^[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}$")
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
IFD_GPS = 0x8825
PHOTO_NAME = "evidence.jpg"


def _jpeg_with_location(path: Path) -> Path:
    """A small real JPEG whose EXIF says where it was taken and with which camera."""
    exif = Image.Exif()
    exif[TAG_MAKE] = "QingliuTestCam"
    exif[TAG_MODEL] = "Model 7"
    exif.get_ifd(IFD_GPS).update({1: "N", 2: (42.0, 54.0, 3.0), 3: "E", 4: (129.0, 30.0, 0.0)})
    Image.new("RGB", (64, 48), (40, 120, 60)).save(path, "JPEG", exif=exif)
    with Image.open(path) as check:  # the fixture itself must carry what the server strips
        written = check.getexif()
        assert written[TAG_MAKE] == "QingliuTestCam"
        assert written.get_ifd(IFD_GPS)
    return path


def _assert_fits_phone(driver: WebDriver) -> None:
    inner, scroll = driver.execute_script(
        "return [window.innerWidth, document.documentElement.scrollWidth];")
    assert inner == 360, f"the viewport is {inner} px wide, not a 360 px phone"
    assert scroll <= inner, f"{driver.current_url} scrolls sideways: {scroll} px > {inner} px"


def _has_hangul(text: str) -> bool:
    return any(unicodedata.name(c, "").startswith("HANGUL") for c in text)


def test_javascript_is_off(browser: WebDriver) -> None:
    """The citizen browser really runs no page script (WebDriver's own scripts still run)."""
    browser.get("data:text/html,<p id=out>static</p>"
                "<script>document.getElementById('out').textContent='scripted'</script>")
    assert browser.find_element(By.ID, "out").text == "static"
    assert browser.execute_script("return 6 * 7;") == 42


def test_korean_report_followup_and_reply(live_portal, browser: WebDriver,
                                          tmp_path: Path) -> None:
    base = live_portal.url
    marker = f"browser-{uuid.uuid4().hex[:12]}"
    photo = _jpeg_with_location(tmp_path / PHOTO_NAME)

    # -- the report form, in Korean
    browser.get(f"{base}/report?lang=ko")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    _assert_fits_phone(browser)

    label = browser.find_element(By.CSS_SELECTOR, 'label[for="category-P01"]')
    assert _has_hangul(label.text), label.text  # category names come from the seed, in Korean
    label.click()
    assert browser.find_element(By.ID, "category-P01").is_selected()
    assert not browser.find_element(By.ID, "category-none").is_selected()

    Select(browser.find_element(By.ID, "county")).select_by_value("yanji")
    browser.find_element(By.ID, "place").send_keys("연길시 부르하통하 하류")
    browser.find_element(By.ID, "narrative").send_keys(
        f"밤마다 공장에서 검은 폐수를 강에 버립니다. {marker}")
    browser.find_element(By.ID, "attachments").send_keys(str(photo))
    assert not browser.find_element(By.ID, "keep_photo_location").is_selected()
    submit_form(browser, "/report")

    # -- the receipt, shown once
    code = wait_for(browser, "p.receipt code").text.strip()
    assert RECEIPT.match(code), code
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    _assert_fits_phone(browser)
    _assert_receipt_on_one_line(browser)

    # -- follow up, typing the receipt in lower case without dashes
    browser.get(f"{base}/followup")
    browser.find_element(By.ID, "receipt").send_keys(code.replace("-", "").lower())
    submit_form(browser, "/followup")
    wait_for(browser, "dl.status")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    _assert_fits_phone(browser)

    details = browser.find_element(By.CSS_SELECTOR, "main details")
    narrative = details.find_element(By.CSS_SELECTOR, "dd.body")
    assert not narrative.is_displayed()  # closed until the reporter asks to see it
    details.find_element(By.TAG_NAME, "summary").click()
    assert details.get_attribute("open") is not None
    assert marker in narrative.text
    files = details.find_element(By.CSS_SELECTOR, "dl.content").text
    assert PHOTO_NAME in files

    # -- write to the officers
    reply = f"사진을 더 찍었습니다. {marker}-reply"
    browser.find_element(By.ID, "body").send_keys(reply)
    submit_form(browser, "/followup/reply")
    sent = wait_for(browser, 'p.success[role="status"]')
    assert sent.text.strip()
    thread = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "ol.thread li.msg.reporter")]
    assert any(reply in text for text in thread), thread
    _assert_fits_phone(browser)

    # -- what was stored: decrypt the photo with the county unit's recovery identity
    with live_portal.app.app_context():
        tip = db.session.scalars(select(Tip)).one()
        assert tip.county == "yanji"
        assert tip.unit.code == "yanji"
        assert tip.category is not None and tip.category.code == "P01"
        attachment = db.session.scalars(
            select(Attachment).where(Attachment.tip_id == tip.id)).one()
        assert attachment.family == "image"
        chunks = db.session.scalars(
            select(BlobChunk.data).where(BlobChunk.attachment_id == attachment.id)
            .order_by(BlobChunk.seq)).all()
        identity = crypto.AgeIdentity(live_portal.recovery["yanji"])
        meta = json.loads(crypto.open_sealed(attachment.meta, [identity]))
        stored = b"".join(crypto.open_stream(io.BytesIO(b"".join(chunks)), [identity]))
        db.session.remove()

    assert meta["filename"] == PHOTO_NAME
    assert "gps" in meta["removed"]
    assert len(stored) == attachment.size
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert image.size == (64, 48)
        exif = image.getexif()
        assert TAG_MAKE not in exif
        assert TAG_MODEL not in exif
        assert not exif.get_ifd(IFD_GPS)


def test_missing_narrative_is_explained_in_korean(live_portal, browser: WebDriver) -> None:
    browser.get(f"{live_portal.url}/report?lang=ko")
    place = "연길시 공원로 다리 밑"
    browser.find_element(By.ID, "place").send_keys(place)
    browser.find_element(By.ID, "occurred").send_keys("2026-11-03")
    Select(browser.find_element(By.ID, "county")).select_by_value("tumen")
    submit_form(browser, "/report")

    wait_for(browser, '.error-summary[role="alert"]')
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    error = browser.find_element(By.ID, "narrative-error").text.strip()
    narrative = browser.find_element(By.ID, "narrative")
    assert narrative.get_attribute("aria-invalid") == "true"
    assert "narrative-error" in (narrative.get_attribute("aria-describedby") or "").split()
    # Everything typed is kept.
    assert browser.find_element(By.ID, "place").get_attribute("value") == place
    assert browser.find_element(By.ID, "occurred").get_attribute("value") == "2026-11-03"
    assert Select(browser.find_element(By.ID, "county")).first_selected_option \
        .get_attribute("value") == "tumen"
    _assert_fits_phone(browser)

    # The message is the app's own Korean sentence for a missing required field...
    with live_portal.app.test_request_context("/report?lang=ko"):
        expected = error_text(FieldError("required"))
    assert error == expected
    # ...which must be Korean, not the English source text.
    catalog = Path(live_portal.app.root_path) / "translations/ko/LC_MESSAGES"
    assert _has_hangul(error), (
        f"the Korean page shows {error!r}: is it translated in {catalog / 'messages.po'} and "
        f"compiled (make translations; messages.mo exists: {(catalog / 'messages.mo').exists()})?")


RECEIPT_LINES = """
const code = document.querySelector('p.receipt code'), box = code.closest('.receipt-box');
const inner = box.getBoundingClientRect().right - parseFloat(getComputedStyle(box).paddingRight);
return [code.getClientRects().length, code.getBoundingClientRect().right <= inner + 0.5];
"""


def _assert_receipt_on_one_line(browser: WebDriver) -> None:
    """The 24-character receipt is one line inside its box (a break at a dash reads as two
    codes), on this 360 px phone and on a 320 px one."""
    try:
        for width in (PHONE_WIDTH, 320):
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": PHONE_HEIGHT, "deviceScaleFactor": 1, "mobile": True})
            lines, inside = browser.execute_script(RECEIPT_LINES)
            assert (lines, inside) == (1, True), f"the receipt at {width} px: {lines} lines"
    finally:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE_WIDTH, "height": PHONE_HEIGHT, "deviceScaleFactor": 1, "mobile": True})


def _no_receipt_in_address_or_cookie(browser: WebDriver, code: str) -> None:
    for secret in (code, code.replace("-", ""), code.lower()):
        assert secret not in browser.current_url
        for cookie in browser.get_cookies():
            assert secret not in cookie.get("value", "")


def test_refresh_and_language_switch_repeat_nothing(live_portal, browser: WebDriver) -> None:
    """With JavaScript off: refreshing the receipt page files no second tip and shows the same
    receipt; the receipt and status pages change language and stay; refreshing after a message
    does not post it twice."""
    base = live_portal.url
    marker = f"refresh-{uuid.uuid4().hex[:12]}"
    browser.get(f"{base}/report?lang=en")
    browser.find_element(By.ID, "narrative").send_keys(f"Ash dumped by the road. {marker}")
    # -- the form in Korean, keeping what was typed (its buttons post it to be drawn again)
    old_page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR,
                         'button[formaction="/report/language"][value="ko"]').click()
    WebDriverWait(browser, 30).until(page_replaced(old_page))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    assert marker in browser.find_element(By.ID, "narrative").get_attribute("value")
    with live_portal.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Tip)) == 0
        db.session.remove()
    submit_form(browser, "/report")
    code = wait_for(browser, "p.receipt code").text.strip()
    assert RECEIPT.match(code), code

    # -- refresh: the browser posts the same form again
    old_page = browser.find_element(By.TAG_NAME, "html")
    browser.refresh()
    WebDriverWait(browser, 30).until(page_replaced(old_page))
    assert wait_for(browser, "p.receipt code").text.strip() == code
    assert browser.find_element(By.CSS_SELECTOR, 'p.success[role="status"]').text.strip()
    _no_receipt_in_address_or_cookie(browser, code)

    # -- the receipt page in English: the same receipt, on the same page
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    submit_form_button(browser, "/report/receipt", "en")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert wait_for(browser, "p.receipt code").text.strip() == code
    _no_receipt_in_address_or_cookie(browser, code)
    with live_portal.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Tip)) == 1
        db.session.remove()

    # -- follow up, then switch the status page to Korean: it stays
    browser.get(f"{base}/followup")
    browser.find_element(By.ID, "receipt").send_keys(code)
    submit_form(browser, "/followup")
    wait_for(browser, "dl.status")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    browser.find_element(By.ID, "body").send_keys(f"Again today. {marker}")
    old_page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR,
                         'button[formaction="/followup/status"][value="ko"]').click()
    WebDriverWait(browser, 30).until(page_replaced(old_page))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    # the message being written came along, unsent
    assert marker in browser.find_element(By.ID, "body").get_attribute("value")
    wait_for(browser, "dl.status")
    assert browser.find_element(By.ID, "body")  # still the status page with its reply form
    _no_receipt_in_address_or_cookie(browser, code)

    # -- the message sent, then a refresh: it is there once
    submit_form(browser, "/followup/reply")
    wait_for(browser, 'p.success[role="status"]')
    old_page = browser.find_element(By.TAG_NAME, "html")
    browser.refresh()
    WebDriverWait(browser, 30).until(page_replaced(old_page))
    wait_for(browser, 'p.success[role="status"]')
    thread = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "ol.thread li.msg.reporter")]
    assert sum(f"Again today. {marker}" in text for text in thread) == 1, thread
    _no_receipt_in_address_or_cookie(browser, code)
    with live_portal.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 1
        db.session.remove()


def submit_form_button(browser: WebDriver, form_action: str, lang: str) -> None:
    """Press one language button (a small form) and wait for the next page."""
    old_page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(
        By.CSS_SELECTOR, f'form[action="{form_action}"] button[name="lang"][value="{lang}"]'
    ).click()
    WebDriverWait(browser, 30).until(page_replaced(old_page))
