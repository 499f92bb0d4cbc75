"""The tip page puts its actions within reach, in real Chromium (JavaScript off): at 1280 px the
actions column starts in the first screen and stays in view while the officer reads down a long
tip; on a 360 px phone a short list of links under the title jumps to each action's form.
Screenshots go to the folder printed at the start (or $TIP_PAGE_SCREENSHOTS)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from tests.browser.conftest import (
    ROLE_USER,
    StaffWorld,
    desktop_chromium,
    set_viewport,
    sign_in_staff,
)

pytestmark = pytest.mark.browser

HEIGHT = 800
BOX = "var r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom, r.left, r.right];"


def _chromium(profile: Path) -> WebDriver:
    return desktop_chromium(profile, height=HEIGHT)


def _width(driver: WebDriver, width: int) -> None:
    set_viewport(driver, width, HEIGHT)


def _shot(driver: WebDriver, path: Path) -> None:
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    path.write_bytes(base64.b64decode(shot["data"]))


def _box(driver: WebDriver, css: str) -> list[float]:
    return driver.execute_script(BOX, driver.find_element(By.CSS_SELECTOR, css))


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("TIP_PAGE_SCREENSHOTS") or tmp_path_factory.mktemp("tip-page"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ntip page screenshots: {folder}")
    return folder


def test_actions_are_within_reach_on_a_desktop_and_a_phone(
        staff_world: StaffWorld, tmp_path_factory: pytest.TempPathFactory, shots: Path) -> None:
    tip_path = next(p for p in staff_world.pages["staff"] if p.startswith("/staff/tips/"))
    driver = _chromium(tmp_path_factory.mktemp("chromium-tip"))
    try:
        sign_in_staff(driver, staff_world, ROLE_USER["staff"])
        for lang in ("zh", "ko", "en"):
            _width(driver, 1280)
            driver.get(f"{staff_world.portal.url}{tip_path}?lang={lang}")
            assert driver.find_elements(By.CSS_SELECTOR, "img.evidence"), "the photo is not shown"
            top, _bottom, left, _right = _box(driver, "#actions-title")
            assert top < HEIGHT, f"{lang}: the actions start {top:.0f} px down"
            assert left > 1280 / 2, f"{lang}: the actions are not beside the tip"
            _shot(driver, shots / f"tip-{lang}-1280-top.png")
            # Read down to the history: the actions column is still on the screen.
            driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
            top, bottom, *_ = _box(driver, "aside.actions-panel")
            assert top < HEIGHT and bottom > 0, f"{lang}: the actions scrolled away"
            _shot(driver, shots / f"tip-{lang}-1280-bottom.png")

            _width(driver, 360)
            driver.get(f"{staff_world.portal.url}{tip_path}?lang={lang}")
            links = driver.find_elements(By.CSS_SELECTOR, "nav.tip-jump a")
            assert len(links) >= 4, f"{lang}: {len(links)} action links"
            assert _box(driver, "nav.tip-jump")[0] < HEIGHT, f"{lang}: the action links are " \
                                                              "not on the first screen"
            _shot(driver, shots / f"tip-{lang}-360-top.png")
            target = links[2].get_attribute("href").split("#")[1]
            links[2].click()
            top, *_ = _box(driver, f"#{target}")
            assert -2 <= top < HEIGHT, f"{lang}: the link to #{target} did not reach its form"
            width = driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= 360, f"{lang}: the tip page scrolls sideways at 360 px ({width})"
            _shot(driver, shots / f"tip-{lang}-360-jumped.png")
    finally:
        driver.quit()
