"""Every staff, liaison, auditor and administrator page on a 360 px phone and a 1280 px desktop,
in Chinese, Korean and English: the page never scrolls sideways, and at 1280 px the header, the
staff menu and the content share one left edge (one content width).

One Chromium per role (JavaScript off, as the portal needs none), signed in once; the width is
switched with the DevTools device-metrics override (mobile at 360 px, so the page's
<meta name="viewport"> applies as on a phone). Every page in Chinese and Korean is saved as a
full-page screenshot, `<role>-<lang>-<width>-<page>.png`, in the folder printed at the start (or
$LAYOUT_SCREENSHOTS): look at them after a layout change.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterator
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

LANGS = ("zh", "ko", "en")
# Screenshots cost a third of the run: the two official languages, whose words are longest.
SHOT_LANGS = ("zh", "ko")
PHONE, DESKTOP = 360, 1280
HEIGHT = 800
# Tall pages are cut here in the screenshots (the measurements cover the whole page).
SHOT_MAX_HEIGHT = 3600

# Where the page ends on the right and where the content, the header and the menu begin.
# Content-box edges: padding is part of the box, not of what the eye lines up.
MEASURE = """
function left(el) {
  if (!el) return null;
  var r = el.getBoundingClientRect(), s = getComputedStyle(el);
  return Math.round(r.left + parseFloat(s.paddingLeft) + parseFloat(s.borderLeftWidth));
}
var device = arguments[0], inner = window.innerWidth, wide = [];
var scroll = document.documentElement.scrollWidth;
// Name the culprits (what reaches past the device's width) only when there are some.
if (scroll > inner || inner != device) document.querySelectorAll('body *').forEach(function (el) {
  var r = el.getBoundingClientRect();
  if (r.width && r.right > device + 1 && wide.length < 6) {
    var classes = typeof el.className === 'string' ? el.className.trim() : '';
    var name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (classes ? '.' + classes.split(/\\s+/).join('.') : '');
    wide.push(name + ' (right ' + Math.round(r.right) + ')');
  }
});
return {
  scroll: scroll, inner: inner,
  header: left(document.querySelector('header.site .wrap')),
  nav: left(document.querySelector('nav.staff-nav')),
  main: left(document.querySelector('main')),
  h1: document.querySelectorAll('main h1').length,
  wide: wide
};
"""


def _chromium(profile: Path) -> WebDriver:
    return desktop_chromium(profile, width=DESKTOP, height=HEIGHT)


def _set_width(driver: WebDriver, width: int) -> None:
    set_viewport(driver, width, HEIGHT)


def _screenshot(driver: WebDriver, path: Path) -> None:
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"],
                 "height": min(size["height"], SHOT_MAX_HEIGHT), "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("LAYOUT_SCREENSHOTS") or tmp_path_factory.mktemp("staff-layout"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nstaff layout screenshots: {folder}")
    return folder


@pytest.fixture
def role_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], WebDriver]]:
    """One Chromium per role, started when that role's turn comes; the previous one is closed
    first, so only one runs at a time."""
    current: list[WebDriver] = []

    def start(role: str) -> WebDriver:
        while current:
            current.pop().quit()
        current.append(_chromium(tmp_path_factory.mktemp(f"chromium-{role}")))
        return current[0]

    try:
        yield start
    finally:
        while current:
            current.pop().quit()


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def test_staff_pages_fit_a_phone_and_share_one_edge(staff_world: StaffWorld, role_browser,
                                                    shots: Path) -> None:
    base = staff_world.portal.url
    problems: list[str] = []
    visited = 0
    for role, user in ROLE_USER.items():
        driver = role_browser(role)
        sign_in_staff(driver, staff_world, user)
        for lang in LANGS:
            for path in staff_world.pages[role]:
                _set_width(driver, DESKTOP)
                driver.get(f"{base}{path}?lang={lang}")
                visited += 1
                if not driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"):
                    text = driver.find_element(By.TAG_NAME, "body").text[:300]
                    problems.append(f"{role} {lang} {path}: no staff menu; the page says {text!r}")
                    continue
                for width in (DESKTOP, PHONE):
                    if width != DESKTOP:
                        _set_width(driver, width)
                    where = f"{role} {lang} {width}px {path}"
                    m = driver.execute_script(MEASURE, width)
                    # A phone zooms out to show content wider than the screen: its viewport
                    # then grows past the device width, which is the same failure.
                    if m["scroll"] > m["inner"] or m["inner"] != width:
                        problems.append(f"{where}: scrolls sideways (page {m['scroll']} px, "
                                        f"viewport {m['inner']} px); too wide: "
                                        f"{', '.join(m['wide']) or '?'}")
                    if m["h1"] != 1:
                        problems.append(f"{where}: {m['h1']} <h1> in main")
                    if width == DESKTOP and not m["header"] == m["nav"] == m["main"]:
                        problems.append(f"{where}: left edges differ: header {m['header']}, "
                                        f"menu {m['nav']}, content {m['main']}")
                    if lang in SHOT_LANGS:
                        _screenshot(driver, shots / f"{role}-{lang}-{width}-{_slug(path)}.png")
    assert visited == sum(len(p) for p in staff_world.pages.values()) * len(LANGS)
    # The check itself works: a box wider than the phone is caught and named.
    # (Through the CSSOM: the CSP forbids style attributes.)
    driver.execute_script("var box = document.createElement('div'); box.id = 'too-wide';"
                          "box.style.width = '500px'; box.textContent = 'x';"
                          "document.querySelector('main').append(box);")
    m = driver.execute_script(MEASURE, PHONE)
    assert m["scroll"] > m["inner"] or m["inner"] != PHONE, m
    assert any(w.startswith("div#too-wide") for w in m["wide"]), m["wide"]
    assert not problems, f"{len(problems)} layout problems:\n" + "\n".join(problems)
