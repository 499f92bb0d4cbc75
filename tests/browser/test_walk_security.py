"""Issue 9's changed flows, walked in Chromium by the people they are for (JavaScript off).

- An administrator resets an officer's password on /admin/users without choosing one; the officer
  opens the one-time /reset link, proves the account with a code of their authenticator, chooses
  a new password, signs in and reads once who reset it and when (zh).
- With the second factor lost as well, the administrator who asked cannot confirm (no button); a
  second administrator confirms on /admin and is given the link (ko).
- A citizen files a report with a small video carrying a GPS position, on the phone; an officer
  who mistypes codes reaches the throttle page, which says in words that a recovery code still
  works, gets in with one and finds the video listed, cleaned, under a safe name (en; the citizen
  in ko).
- The auditor reads the reset and the role grant in words on "Account changes" (zh).

The world is small and made behind the pages (one fixture): two administrators, three officers,
an auditor, their TOTP secrets and recovery codes. Every page seen is checked for raw codes,
English left in a zh/ko page and overflow at 360 px; with $WALK_SHOTS set, each is also
photographed at 360 px and 1280 px (walk_helpers.screenshot).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from sqlalchemy import func, select

from models import Role, Tip, Unit, User
from portal.web.extensions import db
from portal.web.messages import throttled_text
from tests.browser.conftest import set_viewport
from tests.browser.walk_helpers import (
    DESK,
    PHONE,
    FreshPortal,
    Person,
    click_and_wait,
    errors_on,
    fill,
    fresh_portal,
    office_browser,
    overflow_at,
    page_summary,
    path_of,
    phone_browser,
    raw_codes,
    screenshot,
    shots_folder,
    submit,
    success_on,
    totp_code,
    wait_css,
    words_text,
)

pytestmark = pytest.mark.browser

PASSWORD = "officer password 2026 spring"
NEW_PASSWORD = "my own password 2026 autumn"
ADMIN_A = Person("admin_a", "guanli.jia", "管理员甲", "zhou", Role.ADMINISTRATOR.value, PASSWORD)
ADMIN_B = Person("admin_b", "guanli.yi", "管理员乙", "zhou", Role.ADMINISTRATOR.value, PASSWORD,
                 lang="ko")
RESET = Person("reset", "jin.chengban", "金承办", "yanji", Role.CASE_OFFICER.value, PASSWORD)
LOST = Person("lost", "piao.shouli", "朴受理", "yanji", Role.INTAKE_OFFICER.value, PASSWORD,
              lang="ko")
GUESS = Person("guess", "li.shouli", "李受理", "yanji", Role.INTAKE_OFFICER.value, PASSWORD,
               lang="en")
AUDITOR = Person("auditor", "han.shenji", "韩审计", "zhou", Role.AUDITOR.value, PASSWORD)
PEOPLE = (ADMIN_A, ADMIN_B, RESET, LOST, GUESS, AUDITOR)
# A bidi override, leading dots and a folder: what the officer's page must not show as sent.
HOSTILE_VIDEO_NAME = "..\u202e夜间排污现场视频 4pm.mp4"
# Four English words in a row on a zh or ko page: an untranslated sentence.
ENGLISH_RUN = re.compile(r"(?<![\w/.:-])[A-Za-z]{2,}(?:[ ,]+[A-Za-z]{2,}){3,}(?![\w/.:-])")
SCRIPT = {"zh": re.compile(r"[\u4e00-\u9fff]"), "ko": re.compile(r"[\uac00-\ud7a3]"),
          "en": re.compile(r"[A-Za-z]")}


@dataclass
class SecurityWalk:
    portal: FreshPortal
    office: WebDriver  # 1280 px, staff sign in and out of it in turn
    phone: WebDriver  # 360 px, the citizen's
    shots: Path | None
    ids: dict[str, int] = field(default_factory=dict)  # person key → user id
    signed_in: str | None = None
    problems: list[str] = field(default_factory=list)
    done: dict[str, object] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.portal.url

    def look(self, driver: WebDriver, name: str, lang: str) -> str:
        """The current page in words, in `lang`, fitting 360 px; photographed when $WALK_SHOTS
        is set. Problems are collected (the test fails at its end)."""
        where = f"{name} ({path_of(driver, self.base)})"
        assert "Internal Server Error" not in driver.page_source, page_summary(driver)
        visible = words_text(driver) + "\n" + "\n".join(
            e.text for e in driver.find_elements(By.CSS_SELECTOR, ".flashes p"))
        codes = raw_codes(visible)
        if codes:
            self.problems.append(f"{where}: codes instead of words: {codes}")
        if lang != "en":
            english = [m.group(0) for m in ENGLISH_RUN.finditer(visible)
                       if "http" not in m.group(0)]
            if english:
                self.problems.append(f"{where}: English on a {lang} page: {english[:3]}")
        if not SCRIPT[lang].search(driver.find_element(By.TAG_NAME, "h1").text):
            self.problems.append(f"{where}: the heading is not in {lang}")
        too_wide = overflow_at(driver, PHONE)
        if driver is self.phone:
            _phone_metrics(driver)
        if too_wide > 2:
            self.problems.append(f"{where}: {too_wide} px too wide at {PHONE} px")
        if self.shots is not None:
            screenshot(driver, self.shots, f"{name}-{lang}")
            if driver is self.phone:
                _phone_metrics(driver)
        return visible

    def check(self, ok: object, message: str) -> None:
        if not ok:
            self.problems.append(message)

    def finish(self) -> None:
        problems, self.problems = self.problems, []
        assert not problems, "\n".join(problems)

    # -- staff sign-in through the pages

    def sign_out(self) -> None:
        buttons = self.office.find_elements(
            By.CSS_SELECTOR, 'form[action="/staff/logout"] button[type="submit"]')
        if buttons:
            click_and_wait(self.office, buttons[0])
        self.office.delete_all_cookies()
        self.signed_in = None

    def password_step(self, person: Person, lang: str) -> None:
        self.sign_out()
        driver = self.office
        driver.get(f"{self.base}/staff/login?lang={lang}")
        fill(driver.find_element(By.ID, "username"), person.username)
        fill(driver.find_element(By.ID, "password"), person.password)
        submit(driver, 'form[action="/staff/login"]')
        assert path_of(driver, self.base) == "/staff/login/code", page_summary(driver)

    def code_step(self, code: str) -> None:
        fill(self.office.find_element(By.ID, "code"), code)
        submit(self.office, 'form[action="/staff/login/code"]')

    def sign_in(self, person: Person, lang: str) -> None:
        """Password, then a fresh TOTP code (a recovery code when two were used this step)."""
        if self.signed_in == person.key:
            return
        self.password_step(person, lang)
        code = totp_code(person) or person.recovery_codes.pop()
        self.code_step(code)
        assert self.office.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), (
            page_summary(self.office))
        self.signed_in = person.key

    def once(self, name: str, flow: Callable[[SecurityWalk], object]) -> object:
        """Run a flow another test needs (a reset for the auditor to read) once per module."""
        if name not in self.done:
            self.done[name] = flow(self)
        return self.done[name]

    def words(self, lang: str, message: str, **values: object) -> str:
        from flask_babel import gettext

        with self.portal.app.test_request_context(f"/?lang={lang}"):
            return gettext(message, **values)


def _phone_metrics(driver: WebDriver) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": PHONE, "height": 800, "deviceScaleFactor": 1, "mobile": True})


def _build(portal: FreshPortal) -> dict[str, int]:
    """The administrator as setup makes it, the others by an administrator; TOTP enrolled and
    recovery codes printed for everyone; the unit key for the officer who opens the video."""
    from auditlog.events import SYSTEM, Actor
    from portal.operations.setup import complete_setup
    from portal.security.accounts import add_membership, create_user
    from portal.security.auth import begin_enrollment, new_recovery_codes
    from portal.security.custody import grant_from_recovery

    app, ids = portal.app, {}
    costs = {"wrap_cost": app.config["WRAP_ARGON2"], "login_cost": app.config["LOGIN_ARGON2"]}
    with app.app_context():
        session = db.session
        setup = complete_setup(session, ADMIN_A.username, ADMIN_A.password, **costs)
        admin = session.scalars(select(User).where(User.username == ADMIN_A.username)).one()
        admin.display_name = ADMIN_A.display
        by_admin = Actor("staff", admin.id, Role.ADMINISTRATOR)
        for person in PEOPLE:
            if person is ADMIN_A:
                user = admin
            else:
                user = create_user(session, person.username, person.password, actor=by_admin,
                                   display_name=person.display, **costs)
                # by the system: confirmed at once (a role given on the pages waits for a
                # second person, which this walk is not about)
                add_membership(session, user, person.unit, Role(person.role), actor=SYSTEM)
            person.secret = begin_enrollment(user, app.config["SECRET_KEY"]).secret
            user.totp_confirmed_at = user.created_at
            person.recovery_codes = new_recovery_codes(session, user)
            person.last_step = None
            session.flush()
            ids[person.key] = user.id
        guess = session.get(User, ids[GUESS.key])
        unit = session.scalars(select(Unit).where(Unit.code == GUESS.unit)).one()
        grant_from_recovery(session, unit, guess, dict(setup.recovery)[GUESS.unit],
                            actor=SYSTEM)
        session.commit()
        session.remove()
    return ids


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityWalk]:
    shots = shots_folder(tmp_path_factory) if os.environ.get("WALK_SHOTS") else None
    with (fresh_portal(tmp_path_factory.mktemp("security-portal")) as portal,
          office_browser(tmp_path_factory.mktemp("security-office")) as office,
          phone_browser(tmp_path_factory.mktemp("security-phone")) as phone):
        for person in PEOPLE:  # module-level people: fresh passwords for this portal
            person.password = PASSWORD
        walk = SecurityWalk(portal=portal, office=office, phone=phone, shots=shots)
        walk.ids = _build(portal)
        yield walk


def _open_actions(driver: WebDriver, user_id: int, action: str) -> str:
    """On /admin/users: open the "Change…" of the person's row; the form's CSS selector."""
    form = f'form[action="/admin/users/{user_id}/{action}"]'
    row = driver.find_element(By.XPATH, f"//tr[.//form[@action='/admin/users/{user_id}/{action}']]")
    row.find_element(By.CSS_SELECTOR, "details.actions > summary").click()
    assert driver.find_element(By.CSS_SELECTOR, f'{form} button[type="submit"]').is_displayed()
    return form


_LABEL_PLACES = """
const form = document.querySelector(arguments[0]), astray = [];
for (const label of form.querySelectorAll('label[for]')) {
  const control = document.getElementById(label.htmlFor);
  if (!control || control.type === 'checkbox') continue;
  const l = label.getBoundingClientRect(), c = control.getBoundingClientRect();
  const middle = (r) => (r.top + r.bottom) / 2;
  const beside = Math.abs(middle(l) - middle(c)) < 12 && l.right <= c.left;
  const above = l.bottom <= c.top + 1 && Math.abs(l.left - c.left) < 4;
  if (!beside && !above) astray.push(label.textContent.trim());
}
return astray;
"""


def _labels_astray(driver: WebDriver, form_css: str, width: int) -> list[str]:
    """At `width` px: the labels of the form that are neither beside nor above their control
    (a label at the end of one line, its control at the start of the next)."""
    set_viewport(driver, width, 800)
    try:
        return driver.execute_script(_LABEL_PLACES, form_css)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _gaps_between(driver: WebDriver, css: str) -> list[int]:
    """Vertical gaps between consecutive elements matching `css`, at 360 px."""
    set_viewport(driver, PHONE, 800)
    try:
        boxes = [e.rect for e in driver.find_elements(By.CSS_SELECTOR, css)]
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return [int(b["y"] - (a["y"] + a["height"])) for a, b in pairwise(boxes)]


def _field_errors(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "ul.errors") if e.text]


def _link_in(texts: list[str], base: str) -> str:
    links = re.findall(rf"{re.escape(base)}/reset/\S+", " ".join(texts))
    assert len(links) == 1, texts
    return links[0].rstrip("。.,，)）")  # the sentence's end, not the token's dots


# ---------------------------------------------------------------------------------------------
# Flows


def _reset_flow(walk: SecurityWalk) -> str:
    """zh. Administrator A resets 金承办's password; 金承办 completes it with a TOTP code, signs
    in and reads the notice once. Returns the link (spent)."""
    driver, lang = walk.office, "zh"
    walk.sign_in(ADMIN_A, lang)
    driver.get(f"{walk.base}/admin/users?lang={lang}")
    # no one changes their own account here: no reset, role or state form on one's own row
    own = driver.find_elements(By.CSS_SELECTOR,
                               f'form[action^="/admin/users/{walk.ids[ADMIN_A.key]}/"]')
    assert not own, "an administrator is offered changes to their own account"
    form = _open_actions(driver, walk.ids[RESET.key], "reset-password")
    walk.look(driver, "01-admin-users-reset-form", lang)
    for width in (PHONE, DESK):
        astray = _labels_astray(driver, f'form[action="/admin/users/{walk.ids[RESET.key]}/'
                                        f'membership"]', width)
        walk.check(not astray, f"/admin/users at {width} px: a label stands apart from its "
                               f"control: {astray}")
    submit(driver, form)
    assert not errors_on(driver), page_summary(driver)
    link = _link_in(success_on(driver), walk.base)
    walk.look(driver, "02-admin-reset-link", lang)
    walk.sign_out()

    # 金承办 opens the link: a code from the authenticator and a new password
    driver.get(f"{link}?lang={lang}")
    assert driver.find_elements(By.ID, "code"), page_summary(driver)
    walk.look(driver, "03-reset-page", lang)
    fill(driver.find_element(By.ID, "code"), "000000" if pyotp.TOTP(RESET.secret).now() != "000000"
         else "111111")
    fill(driver.find_element(By.ID, "new"), NEW_PASSWORD)
    fill(driver.find_element(By.ID, "confirm"), NEW_PASSWORD)
    submit(driver, "main form")
    assert _field_errors(driver), "a wrong code on the reset page is not reported"
    walk.look(driver, "04-reset-page-wrong-code", lang)
    fill(driver.find_element(By.ID, "code"), totp_code(RESET) or "")
    fill(driver.find_element(By.ID, "new"), NEW_PASSWORD)
    fill(driver.find_element(By.ID, "confirm"), NEW_PASSWORD)
    submit(driver, "main form")
    assert path_of(driver, walk.base) == "/staff/login", page_summary(driver)
    assert success_on(driver), page_summary(driver)
    walk.look(driver, "05-reset-done-sign-in", lang)
    RESET.password = NEW_PASSWORD

    # the next sign-in says who reset the password, once
    walk.sign_in(RESET, lang)
    notice = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, ".flashes p"))
    said = walk.words(lang, "Your password was reset by %(name)s on %(date)s. If you did not "
                            "ask for this, tell your head at once.", name=ADMIN_A.display,
                      date="\0").split("\0")[0]
    assert said and said in notice, (said, notice)
    walk.look(driver, "06-reset-notice", lang)
    driver.refresh()
    assert said not in driver.find_element(By.TAG_NAME, "body").text, "the notice came twice"
    walk.sign_out()  # and again, with a printed recovery code: no notice
    walk.password_step(RESET, lang)
    walk.code_step(RESET.recovery_codes.pop())
    assert driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), page_summary(driver)
    assert said not in driver.find_element(By.TAG_NAME, "body").text, "the notice came twice"
    walk.sign_out()

    # the link was for one use
    driver.get(f"{link}?lang={lang}")
    assert not driver.find_elements(By.ID, "new"), "a spent reset link still offers a password"
    walk.look(driver, "07-reset-link-spent", lang)
    return link


def test_admin_resets_an_officers_password_and_the_officer_completes_it(walk: SecurityWalk
                                                                         ) -> None:
    walk.once("reset", _reset_flow)
    walk.finish()


def test_a_lost_second_factor_needs_a_second_administrator(walk: SecurityWalk) -> None:
    """ko. A asks, cannot confirm (no button); B confirms on /admin and is given the link."""
    driver, lang = walk.office, "ko"
    lost_id = walk.ids[LOST.key]
    confirm = f'form[action="/admin/users/{lost_id}/confirm-reset"]'
    walk.sign_in(ADMIN_A, lang)
    driver.get(f"{walk.base}/admin/users?lang={lang}")
    form = _open_actions(driver, lost_id, "reset-password")
    driver.find_element(By.CSS_SELECTOR, f"{form} input[name=factor_lost]").click()
    submit(driver, form)
    assert not errors_on(driver), page_summary(driver)
    flashes = " ".join(success_on(driver))
    assert "/reset/" not in flashes, "the link was given before a second administrator confirmed"
    assert driver.find_element(By.ID, "resets").is_displayed()
    assert not driver.find_elements(By.CSS_SELECTOR, confirm), "A may confirm A's own request"
    item = driver.find_element(By.CSS_SELECTOR, "#resets li")
    hint = item.find_element(By.CSS_SELECTOR, ".hint")
    walk.check(hint.rect["x"] - item.rect["x"] < 2, "the 'another administrator must confirm' "
                                                   "note runs on in the request's sentence")
    walk.look(driver, "11-lost-factor-asked", lang)
    driver.get(f"{walk.base}/admin?lang={lang}")
    assert not driver.find_elements(By.CSS_SELECTOR, confirm), "A may confirm it on /admin"

    walk.sign_in(ADMIN_B, lang)
    assert path_of(driver, walk.base) == "/admin", page_summary(driver)
    section = driver.find_element(By.ID, "resets").text
    assert LOST.display in section and ADMIN_A.display in section, section
    walk.look(driver, "12-lost-factor-to-confirm", lang)
    gaps = _gaps_between(driver, "main > section.warning")
    walk.check(all(g >= 8 for g in gaps), f"/admin: the warning boxes touch ({gaps} px apart)")
    submit(driver, confirm)
    link = _link_in(success_on(driver), walk.base)
    assert not driver.find_elements(By.CSS_SELECTOR, confirm)
    walk.look(driver, "13-lost-factor-confirmed-link", lang)
    walk.sign_out()

    driver.get(f"{link}?lang={lang}")
    assert not driver.find_elements(By.ID, "code"), "no second factor is asked when it is lost"
    assert driver.find_elements(By.ID, "new"), page_summary(driver)
    walk.look(driver, "14-reset-page-factor-lost", lang)
    walk.finish()


def _video(folder: Path) -> Path:
    """One second of test picture, tagged with a place in Yanji, under a hostile name."""
    path = folder / HOSTILE_VIDEO_NAME
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=duration=1:size=64x48", "-metadata", "location=+42.9+129.5/",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4", str(path)],
                   check=True, timeout=60)
    tags = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags",
                           str(path)], capture_output=True, text=True, check=True).stdout
    assert "+42.9" in tags, tags  # the position the portal must remove
    return path


def test_citizen_video_and_an_officer_past_the_code_throttle(
        walk: SecurityWalk, tmp_path: Path) -> None:
    """The citizen (ko, phone) sends a video; the officer (en) mistypes codes until the throttle
    page, signs in with a recovery code and finds the video listed, cleaned."""
    phone, lang = walk.phone, "ko"
    video = _video(tmp_path)
    phone.get(f"{walk.base}/report?lang={lang}")
    Select(phone.find_element(By.ID, "county")).select_by_value("yanji")
    fill(phone.find_element(By.ID, "place"), "연길시 부르하통하 하류")
    fill(phone.find_element(By.ID, "narrative"), "밤마다 공장에서 검은 페수를 강에 버립니다.")
    phone.find_element(By.ID, "attachments").send_keys(str(video))
    walk.look(phone, "21-report-with-video", lang)
    submit(phone, 'form[action="/report"]')
    receipt = wait_css(phone, "p.receipt code").text.strip()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){4}", receipt), page_summary(phone)
    walk.look(phone, "22-receipt", lang)
    with walk.portal.app.app_context():
        tip_id = db.session.scalar(select(func.max(Tip.id)))
        db.session.remove()

    driver, lang = walk.office, "en"
    walk.password_step(GUESS, lang)
    now = {pyotp.TOTP(GUESS.secret).at(time.time() + d) for d in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in now)
    with walk.portal.app.test_request_context(f"/?lang={lang}"):
        said = throttled_text("code", 30)  # "… Try again in 1 minute, or …"
    tries = 0
    while said not in driver.find_element(By.TAG_NAME, "body").text:
        assert tries < 10, "ten wrong codes and no throttle page"
        assert tries == 0 or _field_errors(driver), page_summary(driver)
        walk.code_step(wrong)
        tries += 1
    assert tries > 5, f"throttled after {tries} wrong codes (5 are free)"
    assert path_of(driver, walk.base) == "/staff/login/code", page_summary(driver)
    walk.look(driver, "23-code-throttled", lang)
    field = driver.find_element(By.ID, "code")
    walk.check(field.get_attribute("inputmode") != "numeric",
               "the throttle page asks for a recovery code with a digits-only phone keyboard")
    walk.check(not field.get_attribute("value"), "the wrong code is left in the field")
    walk.code_step(GUESS.recovery_codes.pop())
    assert driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), page_summary(driver)
    walk.signed_in = GUESS.key

    driver.get(f"{walk.base}/staff/?lang={lang}")
    click_and_wait(driver, driver.find_element(By.CSS_SELECTOR,
                                               f'main a[href="/staff/tips/{tip_id}"]'))
    files = driver.find_element(By.CSS_SELECTOR, "ul.files").text
    assert "夜间排污现场视频" in files and ".mp4" in files, files
    assert "\u202e" not in files and " ..\u202e" not in files, files
    assert not driver.find_elements(By.CSS_SELECTOR, "ul.files .warn"), files
    walk.look(driver, "24-tip-with-video", lang)
    walk.sign_out()
    walk.finish()


def test_the_auditor_reads_account_changes_in_words(walk: SecurityWalk) -> None:
    """zh. The reset and the role grants, in words, with who did them."""
    from portal.web.messages import EVENT_WORDS

    walk.once("reset", _reset_flow)
    driver, lang = walk.office, "zh"
    walk.sign_in(AUDITOR, lang)
    nav = driver.find_elements(By.CSS_SELECTOR, 'nav a[href="/audit/accounts"]')
    assert nav, "no way to Account changes from the auditor's pages"
    click_and_wait(driver, nav[0])
    text = walk.look(driver, "31-audit-accounts", lang)
    with walk.portal.app.test_request_context(f"/?lang={lang}"):
        expected = {a: str(EVENT_WORDS[a]) for a in ("password.reset_requested",
                                                     "password.reset_completed",
                                                     "membership.added")}
    rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.cards tbody tr")]
    for action, words in expected.items():
        assert any(words in row for row in rows), (action, words, rows[:10])
    asked = [r for r in rows if expected["password.reset_requested"] in r and RESET.display in r]
    assert asked and ADMIN_A.display in asked[0], rows[:10]
    granted = [r for r in rows if expected["membership.added"] in r]
    assert any(RESET.display in r for r in granted), granted
    assert "password.reset" not in text
    walk.sign_out()
    walk.finish()

