"""Issue 10 in Chromium (JavaScript off, CSRF on): an officer asks for a real-name reporter's
identity on the tip page → a custodian grants it on /staff/identity-requests → the officer reads
it → the reporter's status page says so in Korean. A second request, refused, reveals nothing
and the reporter is not told of it."""

from __future__ import annotations

import time

import pyotp
import pytest
from flask import current_app
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from sqlalchemy import select

from auditlog.events import SYSTEM
from models import IdentityRequest, Role, Tip, TipIdentity
from portal.intake import filing, identity
from portal.security.accounts import add_membership, create_user
from portal.security.auth import begin_enrollment
from portal.web.extensions import db
from tests.browser.conftest import desktop_chromium
from tests.browser.walk_helpers import click_and_wait, main_text, submit, wait_css
from tests.helpers import give_custodian_keys, hand_custodian_key

pytestmark = pytest.mark.browser

PASSWORD = "officer password 2026"
_LAST_STEP: dict[str, int] = {}
NAME, PHONE = "리순희", "13844445555"


def _person(live_portal, username: str, unit_code: str, role: str, *, content_key: bool
            ) -> tuple[int, str]:
    from models import Unit
    from portal.security.custody import grant_from_recovery

    app = live_portal.app
    user = create_user(db.session, username, PASSWORD, wrap_cost=app.config["WRAP_ARGON2"],
                       login_cost=app.config["LOGIN_ARGON2"], actor=SYSTEM)
    add_membership(db.session, user, unit_code, Role(role), actor=SYSTEM)
    if content_key:
        unit = db.session.scalars(select(Unit).where(Unit.code == unit_code)).one()
        grant_from_recovery(db.session, unit, user, live_portal.recovery[unit_code],
                            actor=SYSTEM)
    enrollment = begin_enrollment(user, app.config["SECRET_KEY"])
    user.totp_confirmed_at = user.created_at
    db.session.commit()
    return user.id, enrollment.secret


def _sign_in(driver: WebDriver, base: str, username: str, secret: str) -> None:
    driver.get(f"{base}/staff/login?lang=en")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    submit(driver, 'form[action="/staff/login"]')
    # A code of a step not used yet (the server refuses a replayed one): now, then the next.
    totp = pyotp.TOTP(secret)
    step = max(int(time.time()) // totp.interval, _LAST_STEP.get(secret, -1) + 1)
    _LAST_STEP[secret] = step
    driver.find_element(By.ID, "code").send_keys(totp.generate_otp(step))
    submit(driver, 'form[action="/staff/login/code"]')
    assert driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), driver.page_source[:2000]


def _sign_out(driver: WebDriver) -> None:
    submit(driver, 'nav.staff-nav form[action="/staff/logout"]')


def _ask(driver: WebDriver, base: str, tip_id: int, purpose: str, reason: str) -> None:
    driver.get(f"{base}/staff/tips/{tip_id}")
    Select(driver.find_element(By.ID, "identity-purpose")).select_by_value(purpose)
    driver.find_element(By.ID, "identity-reason").send_keys(reason)
    submit(driver, "#act-identity")
    assert "/staff/tips/" in driver.current_url
    assert not driver.find_elements(By.CSS_SELECTOR, ".errors, .error-summary"), main_text(driver)


def test_request_grant_read_and_the_reporter_is_told(live_portal, browser, tmp_path) -> None:
    base = live_portal.url
    with live_portal.app.app_context():
        keys = give_custodian_keys(db.session)
        officer = _person(live_portal, "iw_officer", "yanji", "case_officer", content_key=True)
        custodian = _person(live_portal, "iw_custodian", "yanji", "custodian", content_key=False)
        hand_custodian_key(db.session, custodian[0], "yanji", keys["yanji"])
        filed = filing.file_tip(db.session, filing.TipDraft(
            narrative="dead fish below the paper mill", county="yanji", language="ko",
            identity=filing.Identity(name=NAME, phone=PHONE, contact_ok=True)), [],
            limits=filing.Limits(10, 10**6, 10**6),
            receipt_cost=current_app.config["RECEIPT_ARGON2"])
        if db.session.get(TipIdentity, filed.tip_id) is None:  # before filing sealed it apart
            identity.seal_identity(db.session, db.session.get(Tip, filed.tip_id),
                                   identity.ReporterIdentity(name=NAME, phone=PHONE))
        db.session.commit()
        tip_id, receipt = filed.tip_id, str(filed.receipt)
        db.session.remove()

    desk = desktop_chromium(tmp_path / "desk")
    try:
        # The officer asks twice: to contact the reporter, and for a witness statement.
        _sign_in(desk, base, "iw_officer", officer[1])
        _ask(desk, base, tip_id, "contact", "to arrange a visit to the mill")
        _ask(desk, base, tip_id, "witness", "a statement for the case file")
        assert NAME not in main_text(desk)
        _sign_out(desk)
        with live_portal.app.app_context():
            asked = {r.purpose: r.id for r in db.session.scalars(select(IdentityRequest))}
            db.session.remove()
        # The custodian: the menu counts two; grants one for 3 days, refuses the other.
        _sign_in(desk, base, "iw_custodian", custodian[1])
        link = desk.find_element(By.CSS_SELECTOR,
                                 'nav.staff-nav a[href="/staff/identity-requests"]')
        assert "(2)" in link.text
        click_and_wait(desk, link)
        assert "to arrange a visit to the mill" in main_text(desk) and NAME not in main_text(desk)
        days = desk.find_element(By.ID, f"days-{asked['contact']}")
        days.clear()
        days.send_keys("3")
        submit(desk, f"#grant-{asked['contact']}")
        desk.find_element(By.ID, f"refuse-reason-{asked['witness']}").send_keys(
            "no statement is needed yet")
        submit(desk, f"#refuse-{asked['witness']}")
        assert "No request is waiting." in main_text(desk)
        _sign_out(desk)
        # The officer reads the granted one; the refused one offers nothing.
        _sign_in(desk, base, "iw_officer", officer[1])
        desk.get(f"{base}/staff/tips/{tip_id}")
        links = desk.find_elements(By.CSS_SELECTOR, "a.identity-read-link")
        assert [a.get_attribute("href") for a in links] == [
            f"{base}/staff/identity-requests/{asked['contact']}"]
        click_and_wait(desk, links[0])
        text = main_text(desk)
        assert NAME in text and PHONE in text and "This read is recorded" in text
        desk.get(f"{base}/staff/identity-requests/{asked['witness']}")
        assert NAME not in main_text(desk) and wait_css(desk, "#identity-refused")
        _sign_out(desk)
    finally:
        desk.quit()

    # The reporter, on a phone, in Korean: the grant and its purpose; not the refusal.
    browser.get(f"{base}/followup?lang=ko")
    browser.find_element(By.ID, "receipt").send_keys(receipt)
    submit(browser, 'form[action="/followup"]')
    told = wait_css(browser, "#identity-disclosures").text
    assert "귀하의 신분정보가 귀하의 제보를 처리하는 사업일군에게 알려졌습니다" in told
    assert "귀하와 련락하기 위하여" in told
    assert "증인진술" not in told and "iw_officer" not in browser.page_source
