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

from portal.extensions import db
from portal.setup import complete_setup

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


@pytest.fixture
def desk_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """An office desktop: headless Chromium, 1280 px wide, JavaScript disabled; the phone's
    options minus the device emulation (staff tables are wider than a phone)."""
    _require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-desk')}")
    options.add_argument(f"--window-size={DESKTOP_WIDTH},{DESKTOP_HEIGHT}")
    options.add_experimental_option("prefs", NO_JAVASCRIPT)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
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
