"""A referral (两法衔接) through the real pages, with JavaScript off, on an office desktop: a case
of two accepted yanji tips, with its investigation report, is referred to the prefecture public
security bureau (copy to the procuratorate) and submitted through the domain; then in Chromium
the yanji head approves it, a case officer hands it over (移送书 and package), and the bureau's
liaison signs the receipt and records 立案 with a decision file. Finally the database must hold
the steps in that order, each taken by the right person."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from flask import current_app
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from auditlog.events import SYSTEM
from models import Referral, ReferralEvent, Role, Tip, Unit, User
from portal.cases import referrals
from portal.intake import filing
from portal.security.access import principal_for
from portal.security.accounts import add_membership, create_user
from portal.security.auth import begin_enrollment
from portal.security.custody import grant_from_recovery, unit_identities, unlock_personal
from portal.web.extensions import db
from tests.browser.conftest import page_replaced
from tests.helpers import MemoryUpload

pytestmark = pytest.mark.browser

PASSWORD = "officer password 2026"
LIMITS = filing.Limits(10, 10**6, 10**6)
PEOPLE = (("ref_case_a", "yanji", "case_officer"), ("ref_case_b", "yanji", "case_officer"),
          ("ref_head", "yanji", "head"), ("ref_police", "psb_zhou", "liaison"))


@dataclass(frozen=True)
class Scenario:
    referral_id: int
    case_number: str
    user_ids: dict[str, int]  # username → user id
    secrets: dict[str, str]  # username → TOTP secret


# -- the domain set-up ---------------------------------------------------------------------


def _create_person(live_portal, username: str, unit_code: str, role: str) -> tuple[int, str]:
    """An account in one unit holding that unit's key, its TOTP already enrolled."""
    app = live_portal.app
    user = create_user(db.session, username, PASSWORD, wrap_cost=app.config["WRAP_ARGON2"],
                       login_cost=app.config["LOGIN_ARGON2"], actor=SYSTEM)
    add_membership(db.session, user, unit_code, Role(role), actor=SYSTEM)
    unit = db.session.scalars(select(Unit).where(Unit.code == unit_code)).one()
    grant_from_recovery(db.session, unit, user, live_portal.recovery[unit_code], actor=SYSTEM)
    enrollment = begin_enrollment(user, app.config["SECRET_KEY"])
    user.totp_confirmed_at = user.created_at
    db.session.commit()
    return user.id, enrollment.secret


def _accepted_tip(narrative: str) -> int:
    filed = filing.file_tip(db.session, filing.TipDraft(narrative=narrative, county="yanji",
                                                        category="P01"), [],
                            limits=LIMITS, receipt_cost=current_app.config["RECEIPT_ARGON2"],
                            actor=SYSTEM)
    db.session.get(Tip, filed.tip_id).status = "accepted"
    db.session.commit()
    return filed.tip_id


def _principal(user_id: int):
    user = db.session.get(User, user_id)
    personal = unlock_personal(user, PASSWORD)
    return principal_for(db.session, user, unit_identities(db.session, user, personal))


def _submitted_referral(live_portal) -> Scenario:
    """People, two accepted tips, a case with its investigation report, and its referral to
    psb_zhou (copy proc_zhou) submitted for the head's approval."""
    with live_portal.app.app_context():
        ids, secrets = {}, {}
        for username, unit_code, role in PEOPLE:
            ids[username], secrets[username] = _create_person(live_portal, username, unit_code,
                                                              role)
        tips = [_accepted_tip("waste oil poured into the river behind the quarry"),
                _accepted_tip("the same quarry, dumping again at night")]
        officer = _principal(ids["ref_case_a"])
        case = referrals.form_case(db.session, officer, tip_ids=tips,
                                   member_ids=[ids["ref_case_a"], ids["ref_case_b"]],
                                   offence_code="pollution", title="Quarry dumping case",
                                   summary="Waste oil dumped into the river, twice.")
        referrals.add_documents(db.session, officer, case.id, "investigation_report",
                                [MemoryUpload("report.txt", "调查报告正文".encode())],
                                limits=LIMITS)
        referral = referrals.create_referral(db.session, officer, case.id, "psb_zhou",
                                             "proc_zhou")
        referral = referrals.act(db.session, officer, referral.id, "submit", limits=LIMITS)
        db.session.commit()
        assert referral.state == "awaiting_approval"
        scenario = Scenario(referral.id, case.number, ids, secrets)
        db.session.remove()
    return scenario


# -- the browser ---------------------------------------------------------------------------


def _path(driver: WebDriver, base: str) -> str:
    return driver.current_url.removeprefix(base).split("?", 1)[0]


def _wait_for(driver: WebDriver, css: str) -> WebElement:
    return WebDriverWait(driver, 20).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def _click_and_wait(driver: WebDriver, element: WebElement) -> None:
    old_page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(page_replaced(old_page))


def _submit(driver: WebDriver, form_css: str) -> None:
    """Click the submit button of the form matching `form_css`; wait for the next page."""
    _click_and_wait(driver, driver.find_element(By.CSS_SELECTOR,
                                                f'{form_css} button[type="submit"]'))


def _no_error(driver: WebDriver) -> None:
    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".flashes .error-summary")]
    assert not errors, errors


def _sign_in(driver: WebDriver, base: str, username: str, secret: str) -> None:
    driver.get(f"{base}/staff/login?lang=en")
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    _submit(driver, 'form[action="/staff/login"]')
    assert _path(driver, base) == "/staff/login/code", driver.page_source[:2000]
    driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
    _submit(driver, 'form[action="/staff/login/code"]')
    assert driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), driver.page_source[:2000]


def _sign_out(driver: WebDriver, base: str) -> None:
    button = driver.find_element(By.CSS_SELECTOR, 'nav.staff-nav form[action="/staff/logout"] '
                                                  'button[type="submit"]')
    assert button.text.strip() == "Sign out"
    _click_and_wait(driver, button)
    assert _path(driver, base) == "/staff/login"
    assert not driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav")


def _open_referral(driver: WebDriver, base: str, list_css: str, referral_path: str) -> None:
    """Follow the link to the referral inside the list element(s) matching `list_css`."""
    links = driver.find_elements(By.CSS_SELECTOR, f'{list_css} a[href="{referral_path}"]')
    assert links, driver.find_element(By.TAG_NAME, "main").text
    _click_and_wait(driver, links[0])
    assert _path(driver, base) == referral_path


def _state(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "referral-state").text.strip()


def _act(driver: WebDriver, base: str, referral_path: str, action: str,
         label: str | None = None) -> None:
    form = f"form#action-{action}"
    if label is not None:
        button = driver.find_element(By.CSS_SELECTOR, f'{form} button[type="submit"]')
        assert button.text.strip() == label
    _submit(driver, form)
    assert _path(driver, base) == referral_path
    _no_error(driver)
    _wait_for(driver, '.flashes p.success[role="status"]')


def test_head_approves_officer_hands_over_liaison_files(live_portal, desk_browser: WebDriver,
                                                        tmp_path: Path) -> None:
    base, driver = live_portal.url, desk_browser
    scenario = _submitted_referral(live_portal)
    rid, secrets = scenario.referral_id, scenario.secrets
    staff_path, liaison_path = f"/staff/referrals/{rid}", f"/liaison/referrals/{rid}"

    # -- 1. the head approves
    _sign_in(driver, base, "ref_head", secrets["ref_head"])
    driver.get(f"{base}/staff/referrals")
    heading = driver.find_element(By.XPATH, '//main//h2[normalize-space()='
                                            '"Awaiting your approval"]')
    awaiting = heading.find_element(By.XPATH, "following-sibling::ul[1]")
    assert f"#{rid} {scenario.case_number}" in awaiting.text
    _click_and_wait(driver, awaiting.find_element(By.CSS_SELECTOR, f'a[href="{staff_path}"]'))
    assert _path(driver, base) == staff_path
    assert _state(driver) == "Awaiting approval"
    _act(driver, base, staff_path, "approve", label="Approve the referral")
    assert _state(driver) == "Approved"
    assert not driver.find_elements(By.CSS_SELECTOR, "form#action-approve")
    _sign_out(driver, base)

    # -- 2. a case officer hands it over
    _sign_in(driver, base, "ref_case_b", secrets["ref_case_b"])
    driver.get(f"{base}/staff/referrals")
    _open_referral(driver, base, "main ul", staff_path)
    assert _state(driver) == "Approved"
    driver.find_element(By.CSS_SELECTOR, "form#action-hand_over input[name=contact_phone]") \
        .send_keys("0433-2512345")
    _act(driver, base, staff_path, "hand_over")
    assert _state(driver) == "Handed over"
    package = f"{staff_path}/package"
    hrefs = {a.get_attribute("href").removeprefix(base)
             for a in driver.find_elements(By.CSS_SELECTOR, "dl.meta a")}
    assert {package, f"{package}?format=age"} <= hrefs, hrefs
    _sign_out(driver, base)

    # -- 3. the bureau's liaison signs the receipt and records 立案
    _sign_in(driver, base, "ref_police", secrets["ref_police"])
    assert _path(driver, base) == "/liaison/"
    _open_referral(driver, base, "main ul", liaison_path)
    assert _state(driver) == "Handed over"
    period = Select(driver.find_element(By.CSS_SELECTOR, "form#action-sign_receipt "
                                                         "select[name=period]"))
    assert period.first_selected_option.get_attribute("value") == "normal"
    assert period.first_selected_option.text.strip() == "3 days"
    _act(driver, base, liaison_path, "sign_receipt")
    assert _state(driver) == "Receipt signed"

    decision = tmp_path / "decision.txt"
    decision.write_text("立案决定书: the case is filed.\n", encoding="utf-8")
    kind = Select(driver.find_element(By.CSS_SELECTOR, "form#action-file "
                                                       "select[name=document_kind]"))
    assert kind.first_selected_option.get_attribute("value") == "decision"
    driver.find_element(By.CSS_SELECTOR, "form#action-file input[type=file][name=files]") \
        .send_keys(str(decision))
    _act(driver, base, liaison_path, "file")
    assert _state(driver) == "Filed (立案)"
    _sign_out(driver, base)

    # -- 4. what the database holds
    with live_portal.app.app_context():
        referral = db.session.get(Referral, rid)
        assert referral.state == "filed"
        events = db.session.scalars(select(ReferralEvent).where(ReferralEvent.referral_id == rid)
                                    .order_by(ReferralEvent.id)).all()
        ids = scenario.user_ids
        assert [(e.action, e.actor_id) for e in events] == [
            ("submit", ids["ref_case_a"]), ("approve", ids["ref_head"]),
            ("hand_over", ids["ref_case_b"]), ("sign_receipt", ids["ref_police"]),
            ("file", ids["ref_police"])]
        db.session.remove()
