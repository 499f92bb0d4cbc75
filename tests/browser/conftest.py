"""A live portal and a headless Chromium for the end-to-end browser tests (marker `browser`).

The portal runs in a thread on 127.0.0.1 with CSRF protection switched ON (tests/conftest.py turns
it off for the test client; a real browser carries the session cookie and the token). Chromium is
Debian's, driven by Debian's chromedriver: Selenium Manager is never asked to download anything.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from portal.operations.setup import complete_setup
from portal.web.extensions import db

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ADMIN_PASSWORD = "correct horse battery staple"
# A phone: 360 × 800 CSS pixels.
PHONE_WIDTH, PHONE_HEIGHT = 360, 800
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
# Content setting 2 = block: the page's own scripts do not run. (WebDriver's execute_script still
# does, but timers never fire in such a page; see test_accessibility.py.)
NO_JAVASCRIPT = {"profile.managed_default_content_settings.javascript": 2}


@dataclass(frozen=True)
class LivePortal:
    url: str
    app: Flask
    recovery: dict[str, str]  # handling unit code → recovery identity (age secret key)


@pytest.fixture
def live_portal(app_factory) -> Iterator[LivePortal]:
    """The set-up portal served over HTTP; yields its base URL, app and recovery identities."""
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        # The app's costs are tests/conftest.py's FAST_ARGON2.
        result = complete_setup(db.session, "admin", ADMIN_PASSWORD,
                                wrap_cost=app.config["WRAP_ARGON2"],
                                login_cost=app.config["LOGIN_ARGON2"])
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-portal", daemon=True)
    thread.start()
    try:
        yield LivePortal(url=f"http://127.0.0.1:{server.server_port}", app=app,
                         recovery=dict(result.recovery))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _require_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if not missing:
        return
    message = (f"browser tests need Debian's chromium and chromedriver; missing: "
               f"{', '.join(missing)} (apt-get install chromium chromium-driver)")
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _chromium(profile: Path, *, javascript: bool) -> WebDriver:
    _require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={PHONE_WIDTH},{PHONE_HEIGHT}")
    # Headless windows are at least 500 px wide; emulating the device gives a true 360 px
    # viewport (the page's <meta name="viewport"> applies, as on a phone). Touch emulation stays
    # off: with JavaScript blocked, chromedriver's emulated taps never return.
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {
        "width": PHONE_WIDTH, "height": PHONE_HEIGHT, "pixelRatio": 1.0, "touch": False,
    }})
    if not javascript:
        options.add_experimental_option("prefs", NO_JAVASCRIPT)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium, phone-sized, with JavaScript disabled (the portal needs none)."""
    driver = _chromium(tmp_path_factory.mktemp("chromium-profile"), javascript=False)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def js_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """The same phone with JavaScript allowed: only for injecting axe-core, whose axe.run()
    waits on timers that never fire while the content setting blocks JavaScript. The portal
    itself has no scripts, and its CSP (default-src 'none') would block any."""
    driver = _chromium(tmp_path_factory.mktemp("chromium-profile"), javascript=True)
    try:
        yield driver
    finally:
        driver.quit()


def page_replaced(old_root: WebElement) -> Callable[[WebDriver], bool]:
    """A wait condition: the page that `old_root` belonged to has been replaced.

    Chromium reports a reference into a replaced document either as a stale element or, at
    times, as "Node with given id does not belong to the document"; both mean the same here."""

    def check(_driver: WebDriver) -> bool:
        try:
            old_root.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    return check


DESKTOP_WIDTH, DESKTOP_HEIGHT = 1280, 900


def desktop_chromium(profile: Path, *, width: int = DESKTOP_WIDTH,
                     height: int = DESKTOP_HEIGHT) -> WebDriver:
    """An office desktop: headless Chromium with JavaScript disabled, the phone's options minus
    the device emulation (staff tables are wider than a phone). The one builder every staff-side
    browser test uses; the caller quits it."""
    _require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.add_experimental_option("prefs", NO_JAVASCRIPT)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def set_viewport(driver: WebDriver, width: int, height: int) -> None:
    """Lay the page out as on a screen `width` CSS pixels wide (a phone below 600)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


@pytest.fixture
def desk_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """An office desktop, 1280 px wide (desktop_chromium)."""
    driver = desktop_chromium(tmp_path_factory.mktemp("chromium-desk"))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: WebDriver, css: str) -> WebElement:
    return WebDriverWait(driver, 20).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def submit_form(driver: WebDriver, form_action: str) -> None:
    """Click the submit button of the form posting to `form_action`; wait for the next page."""
    old_page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR,
                        f'form[action="{form_action}"] button[type="submit"]').click()
    WebDriverWait(driver, 30).until(page_replaced(old_page))


# -- a staffed portal: one signed-in browser per role -------------------------------------------

STAFF_PASSWORD = "officer password 2026"
# username → (unit, roles). The officer holds three yanji roles so one browser sees every page of
# the officers' side; the second case officer completes the 专案组, the head approves.
STAFF_PEOPLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "w_officer": ("yanji", ("intake_officer", "case_officer", "head")),
    "w_case_b": ("yanji", ("case_officer",)),
    "w_head": ("yanji", ("head",)),
    "w_police": ("psb_zhou", ("liaison",)),
    "w_auditor": ("zhou", ("auditor",)),
}
# A file name with no break opportunity: it must wrap instead of widening the page.
LONG_FILE_NAME = "布尔哈通河排污口夜间现场照片_IMG_20261101_083000_0123456789abcdef0123456789.jpg"


@dataclass(frozen=True)
class StaffWorld:
    """The live portal with a person for each role and something on every page: a tip with a
    long narrative and a photo, a case of two tips, one referral awaiting approval and one
    handed over to the prefecture public security bureau, a 检察建议书."""

    portal: LivePortal
    secrets: dict[str, str]  # username → TOTP secret ("admin" included)
    pages: dict[str, tuple[str, ...]]  # role → paths that role's browser visits
    tip_id: int  # the yanji tip with the long narrative and the photo

    def password(self, username: str) -> str:
        return ADMIN_PASSWORD if username == "admin" else STAFF_PASSWORD


ROLE_USER = {"staff": "w_officer", "liaison": "w_police", "auditor": "w_auditor",
             "admin": "admin"}


def _build_staff_world(portal: LivePortal) -> StaffWorld:
    # Imported here: only the tests that ask for this fixture need the domain.
    from datetime import UTC, datetime

    from flask import current_app
    from sqlalchemy import select

    from auditlog.events import SYSTEM
    from models import Role, Tip, Unit, User
    from portal.cases import referrals
    from portal.intake import filing
    from portal.security.access import principal_for
    from portal.security.accounts import add_membership, create_user
    from portal.security.auth import begin_enrollment
    from portal.security.custody import grant_from_recovery, unit_identities, unlock_personal
    from tests.helpers import MemoryUpload, jpeg_with_metadata

    app = portal.app
    limits = filing.Limits(10, 10**7, 10**7)
    secrets: dict[str, str] = {}
    ids: dict[str, int] = {}

    def enroll(user: User) -> None:
        secrets[user.username] = begin_enrollment(user, app.config["SECRET_KEY"]).secret
        user.totp_confirmed_at = user.created_at

    def principal(username: str):
        user = db.session.get(User, ids[username])
        personal = unlock_personal(user, STAFF_PASSWORD)
        return principal_for(db.session, user, unit_identities(db.session, user, personal))

    def tip(narrative: str, uploads=(), status: str = "accepted") -> int:
        filed = filing.file_tip(db.session, filing.TipDraft(
            narrative=narrative, county="yanji", category="P04", place="布尔哈通河 延吉段"),
            list(uploads), limits=limits, receipt_cost=current_app.config["RECEIPT_ARGON2"],
            actor=SYSTEM)
        db.session.get(Tip, filed.tip_id).status = status
        db.session.commit()
        return filed.tip_id

    with app.app_context():
        for username, (unit_code, roles) in STAFF_PEOPLE.items():
            user = create_user(db.session, username, STAFF_PASSWORD,
                               wrap_cost=app.config["WRAP_ARGON2"],
                               login_cost=app.config["LOGIN_ARGON2"], actor=SYSTEM)
            for role in roles:
                add_membership(db.session, user, unit_code, Role(role), actor=SYSTEM)
            if unit_code in portal.recovery:
                unit = db.session.scalars(select(Unit).where(Unit.code == unit_code)).one()
                grant_from_recovery(db.session, unit, user, portal.recovery[unit_code],
                                    actor=SYSTEM)
            enroll(user)
            db.session.commit()
            ids[username] = user.id
        enroll(db.session.scalars(select(User).where(User.username == "admin")).one())
        db.session.commit()

        long_line = "每天夜里有工厂通过暗管把黑色废水排进布尔哈通河，气味刺鼻，鱼死了很多。" * 6
        photo = MemoryUpload(LONG_FILE_NAME, jpeg_with_metadata())
        shown = tip(long_line + "\nhttps://example.org/" + "x" * 90, [photo], status="received")
        case_tips = [tip("quarry waste oil poured into the river"), tip("the same quarry again")]
        other_tips = [tip("a second site, same owner"), tip("the second site at night")]
        officer = principal("w_officer")
        cases = []
        for n, tips in enumerate((case_tips, other_tips)):
            case = referrals.form_case(
                db.session, officer, tip_ids=tips, member_ids=[ids["w_officer"], ids["w_case_b"]],
                offence_code="pollution", title=f"布尔哈通河暗管排污案 {n + 1}",
                summary="暗管夜间排放含油废水，多次。")
            referrals.add_documents(db.session, officer, case.id, "investigation_report",
                                    [MemoryUpload("调查报告.txt", "调查报告正文".encode())],
                                    limits=limits)
            cases.append(case.id)
        waiting = referrals.create_referral(db.session, officer, cases[0], "psb_zhou",
                                            "proc_zhou")
        referrals.act(db.session, officer, waiting.id, "submit", limits=limits)
        sent = referrals.create_referral(db.session, officer, cases[1], "psb_zhou", "proc_zhou")
        referrals.act(db.session, officer, sent.id, "submit", limits=limits)
        referrals.act(db.session, principal("w_head"), sent.id, "approve", limits=limits)
        referrals.act(db.session, officer, sent.id, "hand_over", limits=limits,
                      letter_context={"contact_phone": "0433-2512345"})
        suggestion = referrals.record_suggestion(
            db.session, officer, kind="procuratorial", issuer="延边朝鲜族自治州人民检察院",
            unit_code="yanji", received_on=datetime.now(UTC),
            problems="饮用水水源保护区内排污口未拆除。")
        db.session.commit()
        referral_ids = (waiting.id, sent.id)
        case_id, suggestion_id = cases[0], suggestion.id
        db.session.remove()

    mine = ("/staff/keys", "/staff/account")
    pages = {
        "staff": ("/staff/", f"/staff/tips/{shown}", "/staff/cases", f"/staff/cases/{case_id}",
                  "/staff/referrals", *(f"/staff/referrals/{r}" for r in referral_ids),
                  "/staff/suggestions", f"/staff/suggestions/{suggestion_id}", "/staff/hotline",
                  *mine),
        "liaison": ("/liaison/", f"/liaison/referrals/{referral_ids[1]}", *mine),
        "auditor": ("/audit/", "/audit/tips", f"/audit/tips/{shown}", "/audit/referrals",
                    "/audit/decryptions", "/audit/accounts", *mine),
        "admin": ("/admin", "/admin/users", "/admin/categories", "/admin/offences",
                  "/admin/calendar", *mine),
    }
    return StaffWorld(portal=portal, secrets=secrets, pages=pages, tip_id=shown)


def add_unenrolled_member(world: StaffWorld, username: str, unit_code: str, role: str) -> None:
    """A member of a unit with neither a second factor nor the unit's key: what an
    administrator's new account is before its first sign-in."""
    from auditlog.events import SYSTEM
    from models import Role
    from portal.security.accounts import add_membership, create_user

    app = world.portal.app
    with app.app_context():
        user = create_user(db.session, username, STAFF_PASSWORD,
                           wrap_cost=app.config["WRAP_ARGON2"],
                           login_cost=app.config["LOGIN_ARGON2"], actor=SYSTEM)
        add_membership(db.session, user, unit_code, Role(role), actor=SYSTEM)
        db.session.commit()
        db.session.remove()


@pytest.fixture
def staff_world(live_portal: LivePortal) -> StaffWorld:
    """The live portal, staffed (see StaffWorld); sign people in with `sign_in_staff`."""
    return _build_staff_world(live_portal)


def sign_in_staff(driver: WebDriver, world: StaffWorld, username: str, lang: str = "en") -> None:
    """Password, then the current TOTP code, through the real sign-in pages."""
    import pyotp

    base = world.portal.url
    driver.get(f"{base}/staff/login?lang={lang}")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(world.password(username))
    submit_form(driver, "/staff/login")
    assert driver.current_url.startswith(f"{base}/staff/login/code"), driver.page_source[:2000]
    driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(world.secrets[username]).now())
    submit_form(driver, "/staff/login/code")
    assert driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), driver.page_source[:2000]
