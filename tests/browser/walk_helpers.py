"""Fixtures and page helpers for the end-to-end walk (tests/browser/test_walk_every_role.py).

The walk starts from a portal that has only been seeded, as `make run` leaves it: the setup link
comes from the `setup-link` command, and everything after that happens in Chromium. Nothing
here writes a row; the database is only read, to check that a refresh repeated nothing.

Two browsers: an office desktop (1280 px) that every staff member signs in and out of in turn,
and a phone (360 px) for the reporter. Screenshots are taken at 360 px and 1280 px from the
same session through the DevTools protocol (device metrics override), so the staff browser does
not need a second sign-in for its phone-sized pictures.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from models import Channel, Role
from portal import create_app
from portal.operations.seed import UNITS, seed
from portal.web.extensions import db
from referral.deadlines import RULES
from referral.workflow import TRANSITIONS, State
from tests.browser.conftest import (
    _chromium,
    desktop_chromium,
    page_replaced,
)
from tests.conftest import _reset_database, test_settings

PHONE, DESK = 360, 1280


# ---------------------------------------------------------------------------------------------
# The portal, fresh from `make run`


@dataclass(frozen=True)
class FreshPortal:
    url: str
    app: Flask
    setup_link: str  # as `flask setup-link` printed it


@contextmanager
def fresh_portal(folder: Path) -> Iterator[FreshPortal]:
    """A seeded portal with no administrator, served over HTTP with CSRF on, and the one-time
    setup link that `make run` prints (`flask setup-link --base-url …`)."""
    settings = test_settings(folder)
    settings["WTF_CSRF_ENABLED"] = True
    app = create_app(settings)
    with app.app_context():
        _reset_database()
        seed(db.session)
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    result = app.test_cli_runner().invoke(args=["setup-link", "--base-url", url])
    assert result.exit_code == 0, result.output
    links = re.findall(rf"{re.escape(url)}/\S+", result.output)
    assert len(links) == 1, result.output
    thread = threading.Thread(target=server.serve_forever, name="walk-portal", daemon=True)
    thread.start()
    try:
        yield FreshPortal(url=url, app=app, setup_link=links[0])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _allow_downloads(driver: WebDriver, folder: Path) -> None:
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(folder)})


@contextmanager
def office_browser(profile: Path) -> Iterator[WebDriver]:
    """The office desktop (1280 px, JavaScript off) that staff sign in and out of in turn."""
    driver = desktop_chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def phone_browser(profile: Path) -> Iterator[WebDriver]:
    """The reporter's phone: 360 px, JavaScript off."""
    driver = _chromium(profile, javascript=False)
    try:
        yield driver
    finally:
        driver.quit()


def shots_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: $WALK_SHOTS if set, else a pytest tmp folder."""
    chosen = os.environ.get("WALK_SHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("walk-shots")
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("*.png"), *folder.glob("text-*.txt")]:
        old.unlink()
    print(f"\nwalk screenshots: {folder}")
    return folder


# ---------------------------------------------------------------------------------------------
# People


@dataclass
class Person:
    key: str
    username: str
    display: str
    unit: str
    role: str
    password: str
    secret: str | None = None
    last_step: int | None = None
    recovery_codes: list[str] = field(default_factory=list)
    first_link: str | None = None  # a one-time sign-in link, if the portal gives one
    lang: str = "zh"  # the language they work in


FIRST_PASSWORD = "first password 2026 spring"
CHANGED_PASSWORD = "changed password 2026 autumn"

# Usernames carry no unit code, so a code found on a page is the page's, not a name's.
PEOPLE = (
    Person("intake", "piao.shouli", "朴受理", "yanji", Role.INTAKE_OFFICER.value, FIRST_PASSWORD),
    Person("case_a", "jin.chengban", "金承办", "yanji", Role.CASE_OFFICER.value, FIRST_PASSWORD),
    Person("case_b", "li.chengban", "李承办", "yanji", Role.CASE_OFFICER.value, FIRST_PASSWORD),
    Person("head", "cui.fuze", "崔负责", "yanji", Role.HEAD.value, FIRST_PASSWORD),
    Person("liaison", "zheng.lianluo", "郑联络", "psb_yanji", Role.LIAISON.value,
           FIRST_PASSWORD, lang="ko"),  # a 延吉市公安局 liaison who works in 조선어
    Person("auditor", "han.shenji", "韩审计", "zhou", Role.AUDITOR.value, FIRST_PASSWORD),
)


def totp_code(person: Person) -> str | None:
    """A code of a step the server accepts (now ± 1) and has not seen from this person, or None
    when the next two steps are used up (the caller then uses a recovery code)."""
    assert person.secret
    totp = pyotp.TOTP(person.secret)
    now_step = int(time.time()) // totp.interval
    for step in (now_step, now_step + 1):
        if person.last_step is None or step > person.last_step:
            person.last_step = step
            return totp.generate_otp(step)
    return None


# ---------------------------------------------------------------------------------------------
# Pages


def path_of(driver: WebDriver, base: str) -> str:
    return driver.current_url.removeprefix(base).split("?", 1)[0].split("#", 1)[0]


def wait_css(driver: WebDriver, css: str, timeout: float = 20) -> WebElement:
    return WebDriverWait(driver, timeout).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def click_and_wait(driver: WebDriver, element: WebElement) -> None:
    old_page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(page_replaced(old_page))


def submit(driver: WebDriver, form_css: str) -> None:
    """Click the (first) submit button of the form matching `form_css`; wait for the next
    page."""
    click_and_wait(driver, driver.find_element(
        By.CSS_SELECTOR, f'{form_css} button[type="submit"], {form_css} input[type="submit"]'))


def main_text(driver: WebDriver) -> str:
    try:
        return driver.find_element(By.TAG_NAME, "main").text
    except NoSuchElementException:
        return driver.find_element(By.TAG_NAME, "body").text


def errors_on(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(
        By.CSS_SELECTOR, ".error-summary, .flashes .error, [role=alert].error, .field-error, "
                         ".error-message") if e.text.strip()]


def success_on(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".flashes p.success, "
                                                                  "p.success[role=status]")]


def page_summary(driver: WebDriver, limit: int = 1500) -> str:
    return f"{driver.current_url}\n{main_text(driver)[:limit]}"


def option_values(select_element: WebElement) -> list[str]:
    return [o.get_attribute("value") or "" for o in Select(select_element).options]


def fill(element: WebElement, text: str) -> None:
    element.clear()
    element.send_keys(text)


def download(driver: WebDriver, folder: Path, start: Any, timeout: float = 30) -> Path:
    """Run `start()` (a click that makes the browser download a file) and return the new
    file once Chromium has finished writing it into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    _allow_downloads(driver, folder)
    before = {p.name for p in folder.iterdir()}
    start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [p for p in folder.iterdir() if p.name not in before]
        done = [p for p in new if not p.name.endswith((".crdownload", ".tmp"))
                and not p.name.startswith(".")]
        partial = [p for p in new if p.name.endswith(".crdownload")]
        if done and not partial:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no download finished in {folder} within {timeout} s "
                         f"({driver.current_url})")


# ---------------------------------------------------------------------------------------------
# Words, not codes; layout


def _codes() -> list[str]:
    units = [row[0] for row in UNITS]
    channels = [c.value for c in Channel]
    roles = [r.value for r in Role]
    states = [s.value for s in State]
    actions = sorted({t.action for t in TRANSITIONS})
    steps = list(RULES)
    statuses = ["received", "accepted", "declined", "verifying", "referred", "closed",
                "referred_police", "referred_procuratorate", "case_filed", "case_prosecuted"]
    return sorted({*units, *channels, *roles, *states, *actions, *steps, *statuses},
                  key=len, reverse=True)


CODES = _codes()
# A code as a token of its own: not part of a longer word, file name or hash. Stored codes are
# lower case; a capitalised English word is an untranslated label (the translations' business).
CODE_PATTERN = re.compile(
    r"(?<![A-Za-z0-9_.\-])(" + "|".join(re.escape(c) for c in CODES) + r")(?![A-Za-z0-9_\-]|\.\w)")
AUDIT_ACTION = re.compile(r"(?<![\w.])(tip|referral|case|unit_key|signin|signout|audit|setup|"
                          r"second_factor|account|suggestion|attachment|membership|user|package"
                          r"|password|message|category|calendar|offence)\.[a-z_]+(?![\w.])")
JSON_DETAILS = re.compile(r"\{\s*\"[a-z_]+\"\s*:")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def raw_codes(text: str) -> list[str]:
    """Stored codes found in a page's visible text. A plain word (`head`, `file`) counts only
    when it stands alone, not inside an English sentence (an untranslated sentence is a
    translation gap, found by the translation tests)."""
    found = []
    for match in CODE_PATTERN.finditer(text):
        code = match.group(0)
        if "_" not in code and "." not in code:
            before = text[max(0, match.start() - 30):match.start()].split()
            after = text[match.end():match.end() + 30].split()
            if (before and _LATIN_WORD.search(before[-1])) or (
                    after and _LATIN_WORD.match(after[0])):
                continue
        found.append(code)
    found += [m.group(0) for m in AUDIT_ACTION.finditer(text)
              if not text[:m.start()].endswith("-m ")]  # a command: python -m auditlog.verify
    found += [m.group(0) for m in JSON_DETAILS.finditer(text)]
    return sorted(set(found))


_VISIBLE_TEXT = """
const root = (document.querySelector('main') || document.body).cloneNode(true);
root.querySelectorAll('pre, code, kbd, samp').forEach(e => e.remove());
document.body.appendChild(root); root.style.position = 'absolute'; root.style.left = '-99999px';
const text = root.innerText; root.remove(); return text;
"""


def words_text(driver: WebDriver) -> str:
    """The visible text of the page's main content and header, minus literal machine text
    (pre, code: keys, hashes, commands)."""
    header = driver.find_elements(By.CSS_SELECTOR, "header.site")
    return driver.execute_script(_VISIBLE_TEXT) + "\n" + (header[0].text if header else "")


def screenshot(driver: WebDriver, folder: Path, name: str) -> dict[int, Path]:
    """Full-page pictures of the current page at 360 px and 1280 px; also return, per width,
    how far the page overflows to the side (0 when it fits)."""
    paths: dict[int, Path] = {}
    for width in (PHONE, DESK):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width == PHONE})
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = min(int(size["height"]) + 1, 12000)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": max(width, int(size["width"])), "height": height,
                     "scale": 1}})
        path = folder / f"{name}-{width}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        paths[width] = path
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return paths


def overflow_at(driver: WebDriver, width: int) -> int:
    """How many CSS pixels the page is wider than a `width` px viewport."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width == PHONE})
    try:
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        return max(0, int(size["width"]) - width)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def header_offset(driver: WebDriver, width: int = DESK) -> int | None:
    """At `width` px, how far apart the header's brand and the page's first heading start
    (None when the page has no such pair)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    try:
        brand = driver.find_elements(By.CSS_SELECTOR, "header.site .brand")
        heading = driver.find_elements(By.CSS_SELECTOR, "main h1")
        if not brand or not heading:
            return None
        return int(abs(brand[0].rect["x"] - heading[0].rect["x"]))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
