"""An officer's whole first visit in a real browser, with JavaScript off: a citizen (on the
360 px phone of the `browser` fixture) files a tip in Chinese; a new yanji intake officer (on a
desktop-sized browser: the queue and history tables are wider than a phone) signs in, enrolls a
second factor (secret read from the page, QR present), keeps the recovery codes, finds the tip in
the queue, classifies, accepts and writes to the reporter, signs out; signing in again, the
enrollment code is refused as a replay; the citizen follows up and sees the status and the
officer's message."""

from __future__ import annotations

import re
import uuid

import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from auditlog.events import SYSTEM
from models import Role, Unit
from portal.security.accounts import add_membership, create_user
from portal.security.custody import grant_from_recovery
from portal.web.extensions import db
from portal.web.messages import status_text
from tests.browser.conftest import page_replaced, submit_form, wait_for

pytestmark = pytest.mark.browser

RECEIPT = re.compile(r"^[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}$")
USERNAME = "yanji-intake"
PASSWORD = "officer password 2026"
WRONG_CODE = "This code is wrong, expired or already used."


def _path(driver: WebDriver, base: str) -> str:
    return driver.current_url.removeprefix(base).split("?", 1)[0]


def _status(live_portal, status: str, lang: str) -> str:
    """The app's own words for a tip status in a language."""
    with live_portal.app.test_request_context(f"/?lang={lang}"):
        return status_text(status)


def _create_unenrolled_officer(live_portal) -> None:
    """A yanji intake officer holding the yanji key, with no confirmed second factor yet."""
    app = live_portal.app
    with app.app_context():
        user = create_user(db.session, USERNAME, PASSWORD, wrap_cost=app.config["WRAP_ARGON2"],
                           login_cost=app.config["LOGIN_ARGON2"], actor=SYSTEM)
        add_membership(db.session, user, "yanji", Role.INTAKE_OFFICER, actor=SYSTEM)
        unit = db.session.scalars(select(Unit).where(Unit.code == "yanji")).one()
        grant_from_recovery(db.session, unit, user, live_portal.recovery["yanji"], actor=SYSTEM)
        assert user.totp_confirmed_at is None
        db.session.commit()
        db.session.remove()


def _sign_in_with_password(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/staff/login?lang=en")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    driver.find_element(By.ID, "username").send_keys(USERNAME)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    submit_form(driver, "/staff/login")


def test_officer_enrolls_handles_a_tip_and_the_citizen_sees_it(
        live_portal, browser: WebDriver, desk_browser: WebDriver) -> None:
    base = live_portal.url
    citizen, officer = browser, desk_browser  # two browsers: two separate sessions
    marker = f"staff-browser-{uuid.uuid4().hex[:12]}"
    message = f"We have accepted your report and will inspect the site. {marker}-reply"
    _create_unenrolled_officer(live_portal)
    received, accepted = (_status(live_portal, s, "en") for s in ("received", "accepted"))
    assert accepted == "Accepted"

    # -- the citizen files a tip, in Chinese
    citizen.get(f"{base}/report?lang=zh")
    assert citizen.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-Hans"
    Select(citizen.find_element(By.ID, "county")).select_by_value("yanji")
    citizen.find_element(By.ID, "narrative").send_keys(
        f"每天夜里有工厂把黑色废水排进布尔哈通河。{marker}")
    submit_form(citizen, "/report")
    receipt = wait_for(citizen, "p.receipt code").text.strip()
    assert RECEIPT.match(receipt), receipt

    # -- the officer signs in and enrolls a second factor
    _sign_in_with_password(officer, base)
    assert _path(officer, base) == "/staff/login/enroll"
    qr = officer.find_element(By.CSS_SELECTOR, "img.qr")
    assert (qr.get_attribute("src") or "").startswith("data:image/svg+xml")
    secret = officer.find_element(By.CSS_SELECTOR, '[data-testid="totp-secret"]').text.strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    enrollment_code = pyotp.TOTP(secret).now()
    officer.find_element(By.ID, "code").send_keys(enrollment_code)
    submit_form(officer, "/staff/login/enroll")

    codes = officer.find_elements(By.CSS_SELECTOR, "ul.codes li code")
    assert len(codes) == 10, officer.page_source[:2000]
    assert len({c.text for c in codes}) == 10
    old_page = officer.find_element(By.TAG_NAME, "html")
    officer.find_element(By.CSS_SELECTOR, 'main a.button[href="/staff/"]').click()
    WebDriverWait(officer, 30).until(page_replaced(old_page))

    # -- the queue lists the tip; open it
    assert _path(officer, base) == "/staff/"
    assert officer.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    links = officer.find_elements(By.CSS_SELECTOR, 'table.queue tbody a[href^="/staff/tips/"]')
    assert len(links) == 1, officer.find_element(By.CSS_SELECTOR, "table.queue").text
    tip_path = links[0].get_attribute("href").removeprefix(base)
    old_page = officer.find_element(By.TAG_NAME, "html")
    links[0].click()
    WebDriverWait(officer, 30).until(page_replaced(old_page))
    assert _path(officer, base) == tip_path
    assert marker in officer.find_element(By.CSS_SELECTOR, "dd.narrative").text
    assert officer.find_element(By.CSS_SELECTOR, "h1 .status-tag").text.strip() == received

    # -- classify, accept, write to the reporter; each time the tip page comes back
    Select(officer.find_element(By.ID, "classify-category")).select_by_value("P04")
    submit_form(officer, f"{tip_path}/classify")
    assert _path(officer, base) == tip_path
    wait_for(officer, 'p.success[role="status"]')
    assert not officer.find_elements(By.CSS_SELECTOR, ".flashes .error-summary")
    assert Select(officer.find_element(By.ID, "classify-category")) \
        .first_selected_option.get_attribute("value") == "P04"

    submit_form(officer, f"{tip_path}/accept")
    assert _path(officer, base) == tip_path
    assert not officer.find_elements(By.CSS_SELECTOR, ".flashes .error-summary")
    assert officer.find_element(By.CSS_SELECTOR, "h1 .status-tag").text.strip() == accepted
    assert not officer.find_elements(By.CSS_SELECTOR, f'form[action="{tip_path}/accept"]')

    officer.find_element(By.ID, "message-body").send_keys(message)
    submit_form(officer, f"{tip_path}/message")
    assert _path(officer, base) == tip_path
    assert not officer.find_elements(By.CSS_SELECTOR, ".flashes .error-summary")
    assert officer.find_element(By.CSS_SELECTOR, "h1 .status-tag").text.strip() == accepted
    thread = [m.text for m in officer.find_elements(By.CSS_SELECTOR, "ol.thread li.msg.staff")]
    assert any(message in text for text in thread), thread

    # -- sign out from the staff nav
    submit_form(officer, "/staff/logout")
    assert _path(officer, base) == "/staff/login"
    assert officer.find_elements(By.CSS_SELECTOR, 'form[action="/staff/login"] #password')
    assert not officer.find_elements(By.CSS_SELECTOR, "nav.staff-nav")

    # -- sign in again: the enrollment code, still inside the server's ±1 step window, is
    # refused because its step was already used
    _sign_in_with_password(officer, base)
    assert _path(officer, base) == "/staff/login/code"
    assert pyotp.TOTP(secret).verify(enrollment_code, valid_window=1), (
        "too slow: the enrollment code expired, so the replay check would prove nothing")
    officer.find_element(By.ID, "code").send_keys(enrollment_code)
    submit_form(officer, "/staff/login/code")
    assert _path(officer, base) == "/staff/login/code"
    assert officer.find_element(By.ID, "code-error").text.strip() == WRONG_CODE
    assert officer.find_element(By.ID, "code").get_attribute("aria-invalid") == "true"
    assert not officer.find_elements(By.CSS_SELECTOR, "nav.staff-nav")
    officer.get(f"{base}/staff/")
    assert _path(officer, base) == "/staff/login"

    # -- the citizen follows up, in Chinese, in a new visit
    citizen.delete_all_cookies()
    citizen.get(f"{base}/followup?lang=zh")
    citizen.find_element(By.ID, "receipt").send_keys(receipt)
    submit_form(citizen, "/followup")
    wait_for(citizen, "dl.status")
    accepted_zh = _status(live_portal, "accepted", "zh")
    assert accepted_zh != accepted  # really translated
    assert citizen.find_element(By.CSS_SELECTOR, "dd.status-now").text.strip() == accepted_zh
    staff_messages = [m.text for m in
                      citizen.find_elements(By.CSS_SELECTOR, "ol.thread li.msg.staff p.body")]
    assert message in staff_messages, staff_messages
