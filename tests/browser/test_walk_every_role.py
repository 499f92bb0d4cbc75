"""Every role does its whole job in Chromium, through the pages only (issue 8, "Done means").

From a portal that `make run` has only seeded: the setup link makes the administrator and prints
the units' recovery keys (kept as a person would print them); the administrator creates an intake
officer, two case officers and a head of 延吉市, a liaison of 延吉市公安局 and an auditor; their
officer and liaison roles wait for a second person: a second administrator, made on the server's
command line, confirms the head and the liaison, and the head confirms the other officers. Each
signs in with the first password, follows the one-time link if the portal gives one, enrols TOTP
(the secret read from the page) and keeps the recovery codes. A reporter files a Korean tip with a
photo whose location and time are kept; an officer without the key is told how to get it; the
intake officer gives the unit's key to the officers (pasting the printed recovery key first), the
liaison takes its body's key the same way. The intake officer finds the tip by language,
classifies, accepts, answers; two officers form a case and refer it with the investigation
report; the head reviews and approves; hand-over; the liaison downloads the package, signs the
receipt and records 立案; the reporter sees every status in Korean; the auditor verifies the log
and the downloaded export verifies offline.

The walk is a chain of stages sharing one portal and two browsers (module fixtures). Each stage
test runs the stages it needs first, so `pytest -k liaison` walks up to the liaison and stops
there. A stage fails hard when the job cannot go on, and softly (at its end, after finishing its
work) when something is wrong but the next person can still do their part. Every staff page seen
is checked for raw codes, phone-width overflow and a header that does not line up with the
content at 1280 px; the last test fails on any. Screenshots
(360 px and 1280 px) go to the folder printed at the start ($WALK_SHOTS to choose it).

Nothing is written behind the pages. The database is only read: to check that a refresh after
each step repeated nothing (one tip, one message, one event).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from sqlalchemy import func, select

from models import (
    AuditEvent,
    Case,
    Membership,
    Message,
    Referral,
    ReferralEvent,
    Tip,
    TipUpdate,
    UnitKeyGrant,
    User,
)
from portal.operations.seed import UNITS
from portal.web.extensions import db
from portal.web.messages import language_text, state_text, status_text
from tests.browser.walk_helpers import (
    CHANGED_PASSWORD,
    PEOPLE,
    PHONE,
    FreshPortal,
    Person,
    click_and_wait,
    download,
    errors_on,
    fill,
    fresh_portal,
    header_offset,
    main_text,
    office_browser,
    option_values,
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
    unique,
    wait_css,
    words_text,
)
from tests.helpers import jpeg_with_metadata

pytestmark = pytest.mark.browser

# WALK_LANG=zh|ko|en: every staff member works in that language (by default the liaison works in
# 조선어 and everyone else in Chinese); the reporter files in Korean either way.
STAFF_LANG = os.environ.get("WALK_LANG") or None
ADMIN = Person("admin", "guanli", "管理员", "zhou", "administrator",
               "administrator password 2026 winter", lang=STAFF_LANG or "zh")
# The second administrator, made on the server's command line (`flask users create`, the setup's
# trust root): it confirms the first officer and liaison roles of a unit (two-person rule).
ADMIN_TWO = Person("admin2", "zhao.guanli", "赵管理", "zhou", "administrator",
                   "second administrator 2026 first", lang=STAFF_LANG or "zh")
for _person in PEOPLE if STAFF_LANG else ():  # the walk's people are the helpers' own
    _person.lang = STAFF_LANG
RECEIVER, COPY = "psb_yanji", "proc_zhou"
NARRATIVE = "밤마다 공장에서 검은 페수를 부르하통하에 흘려보냅니다. 냄새가 심합니다."
REPLY_KO = "제보를 수리하였습니다. 현장을 조사하겠습니다."
REPORTER_KO = "감사합니다. 어제 밤에도 또 흘려보냈습니다."
# Reads and sign-ins: a refresh may log them again (a read is logged each time); nothing else.
READS = ("tip.opened", "attachment.downloaded", "attachment.viewed", "signin.succeeded",
         "referral.package_downloaded", "signout")
READ_ACTION = re.compile(r"\.(opened|viewed|read|shown|previewed|downloaded|listed)$|^signin")
UNIT_NAMES = {row[0]: {row[0], row[3], row[4], row[5]} for row in UNITS}


# ---------------------------------------------------------------------------------------------
# The walk's shared state


@dataclass
class Walk:
    portal: FreshPortal
    office: WebDriver
    phone: WebDriver
    shots: Path
    downloads: Path
    people: dict[str, Person] = field(default_factory=lambda: {p.key: p for p in PEOPLE})
    recovery: dict[str, str] = field(default_factory=dict)  # unit code → printed text
    done: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    signed_in: str | None = None
    receipt: str | None = None
    marker: str = field(default_factory=lambda: unique("walk"))
    tip_id: int | None = None
    case_id: int | None = None
    referral_id: int | None = None
    problems: list[str] = field(default_factory=list)  # the running stage's soft failures
    soft: dict[str, list[str]] = field(default_factory=dict)  # stage → its soft failures
    leaks: dict[str, list[str]] = field(default_factory=dict)  # page → codes seen
    overflows: dict[str, int] = field(default_factory=dict)  # page → px too wide at 360
    misaligned: dict[str, int] = field(default_factory=dict)  # page → header/content offset
    shot_count: int = 0

    @property
    def base(self) -> str:
        return self.portal.url

    # -- soft checks, looks and pictures

    def check(self, ok: object, message: str) -> bool:
        if not ok:
            self.problems.append(f"{message} [{self.office.current_url}]")
        return bool(ok)

    def shoot(self, driver: WebDriver, name: str) -> Path:
        self.shot_count += 1
        stem = f"{self.shot_count:02d}-{name}"
        paths = screenshot(driver, self.shots, stem)
        if driver is self.phone:  # back to the phone's own 360 px device metrics
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": PHONE, "height": 800, "deviceScaleFactor": 1, "mobile": True})
        return paths[PHONE]

    def look(self, label: str, *, shoot: bool = False) -> str:
        """Check the office browser's page: no server error, no raw code, fits 360 px."""
        driver = self.office
        text = main_text(driver)
        title = driver.title
        assert "500" not in title and "Internal Server Error" not in text, page_summary(driver)
        visible = words_text(driver)
        (self.shots / f"text-{label}.txt").write_text(visible, encoding="utf-8")
        codes = raw_codes(visible)
        if codes:
            self.leaks[f"{label} ({path_of(driver, self.base)})"] = codes
        too_wide = overflow_at(driver, PHONE)
        if too_wide > 2:
            self.overflows[f"{label} ({path_of(driver, self.base)})"] = too_wide
        # one content width at 1280 px: the header's brand and the page's heading line up
        offset = header_offset(driver)
        if offset is not None and offset > 4:
            self.misaligned[f"{label} ({path_of(driver, self.base)})"] = offset
        if shoot:
            self.shoot(driver, label)
        return text

    # -- what the database holds (read only)

    def counts(self) -> dict[str, int]:
        with self.portal.app.app_context():
            session = db.session

            def count(model: type, *where: object) -> int:
                return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

            result = {
                "tips": count(Tip), "messages": count(Message), "tip updates": count(TipUpdate),
                "cases": count(Case), "referrals": count(Referral),
                "referral events": count(ReferralEvent), "key grants": count(UnitKeyGrant),
                "users": count(User), "memberships": count(Membership),
            }
            session.remove()
        return result

    def last_event_id(self) -> int:
        with self.portal.app.app_context():
            last = db.session.scalar(select(func.max(AuditEvent.id))) or 0
            db.session.remove()
        return last

    def events_since(self, last_id: int) -> list[str]:
        """Log entries written after `last_id` that record more than a read or a sign-in."""
        with self.portal.app.app_context():
            actions = list(db.session.scalars(select(AuditEvent.action)
                                              .where(AuditEvent.id > last_id)
                                              .order_by(AuditEvent.id)))
            db.session.remove()
        return [a for a in actions if a not in READS and not READ_ACTION.search(a)]

    def refresh_repeats_nothing(self, driver: WebDriver, step: str) -> None:
        """Refresh the page a step ended on; nothing may be done a second time."""
        before, last_id = self.counts(), self.last_event_id()
        try:
            driver.refresh()
        except WebDriverException as error:  # e.g. a resubmission prompt that never answers
            self.check(False, f"refresh after '{step}' did not finish: {error.msg}")
            return
        time.sleep(0.2)
        after = self.counts()
        repeated = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        self.check(not repeated, f"refresh after '{step}' repeated it: {repeated}")
        logged = self.events_since(last_id)
        self.check(not logged, f"refresh after '{step}' logged {logged}")
        body = driver.find_element(By.TAG_NAME, "body").text
        self.check("Internal Server Error" not in body and "500" not in driver.title,
                   f"refresh after '{step}' gave a server error")

    # -- staff sign-in

    def sign_out(self) -> None:
        driver = self.office
        buttons = driver.find_elements(By.CSS_SELECTOR,
                                       'form[action="/staff/logout"] button[type="submit"]')
        if buttons:
            click_and_wait(driver, buttons[0])
        driver.delete_all_cookies()
        self.signed_in = None

    def second_factor(self, person: Person) -> None:
        driver = self.office
        code = totp_code(person)
        if code is None:  # two sign-ins in one 30 s step already: a printed recovery code
            assert person.recovery_codes, f"{person.key} has no recovery code left"
            code = person.recovery_codes.pop()
        fill(driver.find_element(By.ID, "code"), code)
        submit(driver, 'form[action="/staff/login/code"]')
        assert driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), page_summary(driver)

    def sign_in(self, person: Person) -> None:
        """Sign in an enrolled person (password, then a TOTP code), in Chinese."""
        if self.signed_in == person.key:
            return
        self.sign_out()
        driver = self.office
        driver.get(f"{self.base}/staff/login?lang={person.lang}")
        fill(driver.find_element(By.ID, "username"), person.username)
        fill(driver.find_element(By.ID, "password"), person.password)
        submit(driver, 'form[action="/staff/login"]')
        assert path_of(driver, self.base) == "/staff/login/code", page_summary(driver)
        self.second_factor(person)
        self.signed_in = person.key

    def totp_secret_on_page(self) -> str:
        text = self.office.find_element(By.CSS_SELECTOR, '[data-testid="totp-secret"]').text
        return re.sub(r"\s+", "", text)

    def enrol(self, person: Person) -> None:
        """On the enrolment page: read the secret, confirm a code, keep the recovery codes,
        continue to the person's home."""
        driver = self.office
        assert path_of(driver, self.base) == "/staff/login/enroll", page_summary(driver)
        self.look(f"enrol-{person.key}", shoot=person.key == "intake")
        secret = driver.find_element(By.CSS_SELECTOR, '[data-testid="totp-secret"]').text
        person.secret = re.sub(r"\s+", "", secret)
        if person.key == "head":  # a refresh, then a mistyped code: the scanned key must hold
            driver.refresh()
            again = self.totp_secret_on_page()
            self.check(again == person.secret, "refreshing the enrolment page changes the "
                                               "TOTP key the person already scanned")
            fill(driver.find_element(By.ID, "code"), "000000")
            submit(driver, 'form[action="/staff/login/enroll"]')
            self.check(errors_on(driver) or driver.find_elements(By.ID, "code-error"),
                       "a wrong enrolment code is not reported")
            retyped = self.totp_secret_on_page()
            self.check(retyped == person.secret, "after a mistyped code the enrolment page "
                                                 "shows a new TOTP key (the app holds the old)")
            person.secret = retyped
        assert re.fullmatch(r"[A-Z2-7]{16,64}", person.secret), secret
        code = totp_code(person)
        assert code is not None
        fill(driver.find_element(By.ID, "code"), code)
        submit(driver, 'form[action="/staff/login/enroll"]')
        codes = [c.text.strip() for c in driver.find_elements(By.CSS_SELECTOR, "ul.codes li")]
        assert len(codes) == 10, page_summary(driver)
        person.recovery_codes = codes  # "printed"
        self.look(f"recovery-codes-{person.key}")
        continue_link = driver.find_element(By.CSS_SELECTOR, "main a.button.primary")
        click_and_wait(driver, continue_link)
        assert driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), page_summary(driver)
        self.signed_in = person.key

    # -- the reporter

    def reporter_sees(self, status: str) -> None:
        """The reporter looks their tip up in Korean and reads `status` in Korean."""
        phone = self.phone
        assert self.receipt
        phone.get(f"{self.base}/followup?lang=ko")
        assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
        fill(phone.find_element(By.ID, "receipt"), self.receipt)
        submit(phone, 'form[action="/followup"]')
        wait_css(phone, "dd.status-now")
        expected = self.words(status, "ko")
        assert re.search(r"[\uac00-\ud7a3]", expected), f"no Korean words for {status}"
        now = phone.find_element(By.CSS_SELECTOR, "dd.status-now").text.strip()
        self.check(now == expected, f"reporter reads {now!r}, expected {expected!r} ({status})")
        steps = [li.text for li in phone.find_elements(By.CSS_SELECTOR, "ol.timeline > li")]
        self.check(steps and expected in steps[-1],
                   f"the reporter's latest step is not {expected!r}: {steps}")
        sent = phone.find_element(By.XPATH, "//main//details[.//dl]")
        sent_text = sent.get_attribute("textContent") or ""
        self.check("연길시" in sent_text, "'what I sent' does not name the county (연길시)")
        self.check(NARRATIVE[:12] in sent_text, "'what I sent' lacks the narrative")

    def try_download(self, driver: WebDriver, name: str, start: Callable[[], None]
                     ) -> Path | None:
        try:
            return download(driver, self.downloads / name, start)
        except AssertionError as error:
            self.check(False, f"{name}: {error}")
            return None

    def cookie_texts(self, driver: WebDriver) -> list[str]:
        """The browser's cookies as text, Flask's signed session cookie decoded."""
        app = self.portal.app
        serializer = app.session_interface.get_signing_serializer(app)
        texts = []
        for cookie in driver.get_cookies():
            texts.append(cookie["value"])
            if cookie["name"] == app.config["SESSION_COOKIE_NAME"] and serializer:
                with suppress(Exception):
                    texts.append(repr(serializer.loads(cookie["value"])))
        return texts

    def words(self, status: str, lang: str) -> str:
        with self.portal.app.test_request_context(f"/?lang={lang}"):
            return status_text(status)


STAGES: dict[str, tuple[Callable[[Walk], None], tuple[str, ...]]] = {}


def stage(name: str, *needs: str) -> Callable[[Callable[[Walk], None]], Callable[[Walk], None]]:
    def register(body: Callable[[Walk], None]) -> Callable[[Walk], None]:
        STAGES[name] = (body, needs)
        return body

    return register


def run(walk: Walk, name: str, *, target: bool = True) -> None:
    """Run stage `name` after the stages it needs; a stage runs once per module. Its soft
    problems fail its own test only: the stages after it go on."""
    if name in walk.failed:
        pytest.fail(f"stage {name!r} failed: {walk.failed[name]}", pytrace=False)
    if name not in walk.done:
        body, needs = STAGES[name]
        for need in needs:
            try:
                run(walk, need, target=False)
            except BaseException:
                walk.failed.setdefault(name, f"needs {need!r}, which failed")
                raise
        walk.problems = []
        try:
            body(walk)
        except BaseException as error:
            walk.failed[name] = f"{type(error).__name__}: {str(error)[:300]}"
            for driver, who in ((walk.office, "office"), (walk.phone, "phone")):
                with suppress(WebDriverException):
                    walk.shoot(driver, f"FAILED-{name}-{who}")
            raise
        walk.done.add(name)
        walk.soft[name] = list(walk.problems)
        if walk.problems:
            walk.shoot(walk.office, f"problems-{name}")
    if target and walk.soft.get(name):
        pytest.fail(f"stage {name!r} finished, with problems:\n- "
                    + "\n- ".join(walk.soft[name]), pytrace=False)


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walk]:
    """One portal, fresh from `make run`, and two browsers, shared by the stages."""
    with ExitStack() as stack:
        portal = stack.enter_context(fresh_portal(tmp_path_factory.mktemp("walk-portal")))
        office = stack.enter_context(office_browser(tmp_path_factory.mktemp("walk-office")))
        phone = stack.enter_context(phone_browser(tmp_path_factory.mktemp("walk-phone")))
        yield Walk(portal=portal, office=office, phone=phone,
                   shots=shots_folder(tmp_path_factory),
                   downloads=tmp_path_factory.mktemp("walk-downloads"))


# ---------------------------------------------------------------------------------------------
# Stages


@stage("setup")
def _setup(walk: Walk) -> None:
    """The setup link makes the administrator; the recovery keys are read off the page."""
    driver = walk.office
    driver.get(f"{walk.portal.setup_link}?lang={ADMIN.lang}")
    fill(driver.find_element(By.ID, "username"), ADMIN.username)
    fill(driver.find_element(By.ID, "password"), ADMIN.password)
    fill(driver.find_element(By.ID, "confirm"), ADMIN.password)
    submit(driver, "main form")
    sections = driver.find_elements(By.CSS_SELECTOR, "section.recovery")
    assert sections, page_summary(driver)
    walk.look("setup-recovery-keys", shoot=True)
    for section in sections:
        heading = section.find_element(By.CSS_SELECTOR, "h2, h3").text.strip()
        printed = section.find_element(By.TAG_NAME, "pre").text
        code = next((c for c, names in UNIT_NAMES.items()
                     if heading in names or f"unit {c}" in printed or f"key {c}\n" in printed),
                    None)
        assert code, f"cannot tell which unit {heading!r} is"
        walk.check(heading != code, f"the recovery key of {heading} is headed by its code")
        assert "AGE-SECRET-KEY-1" in printed
        walk.recovery[code] = printed
    assert {"yanji", RECEIVER} <= set(walk.recovery), sorted(walk.recovery)
    walk.check(driver.find_elements(By.CSS_SELECTOR, 'main a[href*="/staff/login"]'),
               "the recovery-key page does not link on to sign-in")
    walk.refresh_repeats_nothing(driver, "setup")

    # the administrator signs in and enrols a second factor
    driver.delete_all_cookies()
    driver.get(f"{walk.base}/staff/login?lang={ADMIN.lang}")
    fill(driver.find_element(By.ID, "username"), ADMIN.username)
    fill(driver.find_element(By.ID, "password"), ADMIN.password)
    submit(driver, 'form[action="/staff/login"]')
    walk.enrol(ADMIN)
    walk.people["admin"] = ADMIN
    home = path_of(driver, walk.base)
    walk.look("admin-home", shoot=True)
    walk.check(home != "/staff/", "the administrator lands on the tip queue, not their own home")


@stage("accounts", "setup")
def _accounts(walk: Walk) -> None:
    """The administrator creates the six people on /admin/users."""
    driver = walk.office
    walk.sign_in(ADMIN)
    for person in PEOPLE:
        driver.get(f"{walk.base}/admin/users")
        form = 'form[action="/admin/users"]'
        role_select = driver.find_element(By.CSS_SELECTOR, f"{form} select[name=role]")
        assert person.role in option_values(role_select), (
            f"/admin/users offers no {person.role} role: {option_values(role_select)}")
        fill(driver.find_element(By.CSS_SELECTOR, f"{form} input[name=username]"),
             person.username)
        fill(driver.find_element(By.CSS_SELECTOR, f"{form} input[name=display_name]"),
             person.display)
        fill(driver.find_element(By.CSS_SELECTOR, f"{form} input[name=password]"),
             person.password)
        Select(driver.find_element(By.CSS_SELECTOR, f"{form} select[name=unit]")) \
            .select_by_value(person.unit)
        Select(role_select).select_by_value(person.role)
        submit(driver, form)
        assert not errors_on(driver), (person.key, errors_on(driver))
        flashes = " ".join(success_on(driver))
        assert flashes, page_summary(driver)
        links = re.findall(rf"{re.escape(walk.base)}/\S+", flashes)
        person.first_link = links[0].rstrip("。.,，)）") if links else None
        walk.refresh_repeats_nothing(driver, f"create {person.key}")
    walk.look("admin-users", shoot=True)
    text = main_text(driver)
    for person in PEOPLE:
        walk.check(person.display in text or person.username in text,
                   f"{person.username} is not listed on /admin/users")
    walk.sign_out()
    _confirm_roles(walk)


def _first_sign_in(walk: Walk, person: Person, link: str) -> None:
    """The one-time link: the person's own password, then the second factor."""
    driver = walk.office
    walk.sign_out()
    driver.get(f"{link}?lang={person.lang}")
    fill(driver.find_element(By.CSS_SELECTOR, "input[name=current]"), person.password)
    fill(driver.find_element(By.CSS_SELECTOR, "input[name=new]"), CHANGED_PASSWORD)
    fill(driver.find_element(By.CSS_SELECTOR, "input[name=confirm]"), CHANGED_PASSWORD)
    submit(driver, "main form")
    assert not errors_on(driver), (person.key, errors_on(driver), page_summary(driver))
    person.password = CHANGED_PASSWORD
    walk.enrol(person)


def _confirm(walk: Walk, person: Person) -> None:
    """Confirm the role waiting for `person` on the page shown (the list of roles waiting)."""
    driver = walk.office
    rows = driver.find_elements(By.CSS_SELECTOR, f'li[data-username="{person.username}"]')
    assert rows, f"{walk.signed_in} sees no role of {person.key} to confirm: " + page_summary(
        driver)
    walk.check(person.display in rows[0].text, f"the role waiting for {person.key} does not "
                                               "name the person")
    click_and_wait(driver, rows[0].find_element(By.CSS_SELECTOR, 'button[value="confirm"]'))
    assert not errors_on(driver), (errors_on(driver), page_summary(driver))
    assert success_on(driver), page_summary(driver)


def _confirm_roles(walk: Walk) -> None:
    """Every officer and liaison role the administrator gave waits for a second person. The
    server's operator makes a second administrator from the command line; it confirms the head
    and the liaison (the first of their unit and body); the head confirms the other officers."""
    driver = walk.office
    made = walk.portal.app.test_cli_runner().invoke(
        args=["users", "create", ADMIN_TWO.username, "--unit", "zhou", "--role",
              "administrator", "--display-name", ADMIN_TWO.display, "--base-url", walk.base],
        env={"PORTAL_USER_PASSWORD": ADMIN_TWO.password})
    assert made.exit_code == 0, made.output
    _first_sign_in(walk, ADMIN_TWO, re.findall(rf"{re.escape(walk.base)}/\S+", made.output)[0])
    walk.people[ADMIN_TWO.key] = ADMIN_TWO
    walk.check(path_of(driver, walk.base) == "/admin", "the second administrator does not land "
                                                      "on /admin")
    walk.look("roles-to-confirm-admin", shoot=True)
    people = walk.people
    _confirm(walk, people["head"])
    _confirm(walk, people["liaison"])
    # 延吉市 has a head now: its other officers are the head's to confirm, not an administrator's.
    walk.check(not driver.find_elements(By.CSS_SELECTOR, "li[data-username]"),
               "after the head is confirmed, an administrator still confirms 延吉市's officers")
    head = people["head"]
    assert head.first_link, "the head was given no one-time link"
    _first_sign_in(walk, head, head.first_link)
    head.first_link = None
    walk.check(path_of(driver, walk.base) == "/roles-to-confirm",
               f"the head lands on {path_of(driver, walk.base)}, not the roles to confirm")
    walk.look("roles-to-confirm-head", shoot=True)
    for key in ("intake", "case_a", "case_b"):
        _confirm(walk, people[key])
    walk.sign_out()


@stage("enrol", "accounts")
def _enrol(walk: Walk) -> None:
    """Each person signs in the first time (one-time link if given), enrols TOTP."""
    driver = walk.office
    for person in PEOPLE:
        walk.sign_out()
        if person.secret:  # enrolled already (the head, to confirm the officers' roles)
            continue
        if person.first_link:
            driver.get(f"{person.first_link}?lang={person.lang}")
            walk.look(f"first-sign-in-{person.key}", shoot=person.key == "intake")
            fill(driver.find_element(By.CSS_SELECTOR, "input[name=current]"), person.password)
            fill(driver.find_element(By.CSS_SELECTOR, "input[name=new]"), CHANGED_PASSWORD)
            fill(driver.find_element(By.CSS_SELECTOR, "input[name=confirm]"), CHANGED_PASSWORD)
            submit(driver, "main form")
            assert not errors_on(driver), (person.key, errors_on(driver), page_summary(driver))
            person.password = CHANGED_PASSWORD
        if path_of(driver, walk.base) != "/staff/login/enroll":
            driver.get(f"{walk.base}/staff/login?lang={person.lang}")
            fill(driver.find_element(By.ID, "username"), person.username)
            fill(driver.find_element(By.ID, "password"), person.password)
            submit(driver, 'form[action="/staff/login"]')
        walk.enrol(person)
        walk.look(f"home-{person.key}", shoot=person.key in ("liaison", "auditor"))
        home = {"liaison": "/liaison/", "auditor": "/audit"}.get(person.key, "/staff/")
        walk.check(path_of(driver, walk.base).startswith(home),
                   f"{person.key} lands on {path_of(driver, walk.base)}, not {home}")
    walk.sign_out()


def _grant(walk: Walk, unit: str, grantee: Person, recovery: str | None) -> None:
    driver = walk.office
    driver.get(f"{walk.base}/staff/keys")
    form = 'form[action="/staff/keys"]'
    unit_select = driver.find_element(By.CSS_SELECTOR, f"{form} select[name=unit]")
    assert unit in option_values(unit_select), (
        f"/staff/keys offers {walk.signed_in} no {unit}: {option_values(unit_select)}")
    Select(unit_select).select_by_value(unit)
    members = Select(driver.find_element(By.CSS_SELECTOR, f"{form} select[name=user_id]"))
    labels = [o.text for o in members.options]
    match = [o for o in members.options if grantee.display in o.text
             or grantee.username in o.text]
    assert match, f"/staff/keys lists no {grantee.display} to {walk.signed_in}: {labels}"
    members.select_by_value(match[0].get_attribute("value"))
    if recovery:
        fill(driver.find_element(By.CSS_SELECTOR, f"{form} textarea[name=recovery_key]"),
             recovery)
    submit(driver, form)
    assert not errors_on(driver), (errors_on(driver), page_summary(driver))
    assert success_on(driver), page_summary(driver)
    walk.refresh_repeats_nothing(driver, f"grant {unit} to {grantee.key}")


@stage("keys", "enrol", "report")
def _keys(walk: Walk) -> None:
    """Without a key a tip says how to get one; the first holder pastes the printed recovery
    key, then grants the others; the liaison takes the body's key the same way."""
    people = walk.people
    driver = walk.office
    walk.sign_in(people["case_a"])
    driver.get(f"{walk.base}/staff/")
    tips = driver.find_elements(By.CSS_SELECTOR, 'main a[href^="/staff/tips/"]')
    if walk.check(tips, "an officer without the key sees no tip in the queue"):
        click_and_wait(driver, tips[0])
        walk.look("no-key", shoot=True)
        walk.check(driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"),
                   "the no-key page loses the staff menu")
        walk.check(driver.find_elements(By.CSS_SELECTOR, 'main a[href="/staff/keys"]'),
                   "the no-key page does not lead to the keys page")
    walk.sign_in(people["intake"])
    _grant(walk, "yanji", people["intake"], walk.recovery["yanji"])
    for key in ("case_a", "case_b", "head"):
        _grant(walk, "yanji", people[key], None)
    walk.look("keys-intake", shoot=True)
    text = main_text(walk.office)
    for key in ("intake", "case_a", "case_b", "head"):
        walk.check(people[key].display in text, f"/staff/keys does not show {key} as holder")
    walk.sign_in(people["liaison"])
    _grant(walk, RECEIVER, people["liaison"], walk.recovery[RECEIVER])
    walk.look("keys-liaison", shoot=True)
    walk.sign_out()


@stage("report")
def _report(walk: Walk) -> None:
    """A reporter files a tip in 조선어 with a photo whose location and time are kept."""
    phone = walk.phone
    phone.delete_all_cookies()
    phone.get(f"{walk.base}/")
    click_and_wait(phone, phone.find_element(By.CSS_SELECTOR, 'nav.langs a[hreflang="ko"]'))
    assert phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ko"
    click_and_wait(phone, phone.find_element(By.CSS_SELECTOR, 'main a[href^="/report"]'))
    photo = walk.downloads / "현장사진.jpg"
    photo.write_bytes(jpeg_with_metadata(size=(320, 240)))
    Select(phone.find_element(By.ID, "county")).select_by_value("yanji")
    fill(phone.find_element(By.ID, "place"), "부르하통하 다리 아래")
    fill(phone.find_element(By.ID, "narrative"), f"{NARRATIVE} {walk.marker}")
    phone.find_element(By.ID, "attachments").send_keys(str(photo))
    keep = phone.find_element(By.ID, "keep_photo_location")
    if not keep.is_selected():
        phone.find_element(By.CSS_SELECTOR, 'label[for="keep_photo_location"]').click()
    assert keep.is_selected()
    walk.shoot(phone, "citizen-report-form")
    submit(phone, 'form[action="/report"]')
    receipt = wait_css(phone, "p.receipt code").text.strip()
    assert re.fullmatch(r"[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}", receipt), receipt
    walk.receipt = receipt  # written down, as the page asks
    walk.shoot(phone, "citizen-receipt")
    walk.refresh_repeats_nothing(phone, "file the tip")
    walk.check(walk.counts()["tips"] == 1, "more than one tip was filed")
    walk.reporter_sees("received")
    walk.shoot(phone, "citizen-status-received")


def _language_words(walk: Walk, language: str) -> str:
    """The app's own word, in the intake officer's language, for a report's language."""
    with walk.portal.app.test_request_context(f"/?lang={walk.people['intake'].lang}"):
        return language_text(language)


def _open_tip(walk: Walk) -> None:
    driver = walk.office
    driver.get(f"{walk.base}/staff/tips/{walk.tip_id}")
    assert path_of(driver, walk.base) == f"/staff/tips/{walk.tip_id}", page_summary(driver)


def _tip_action(walk: Walk, action: str, step: str) -> None:
    driver = walk.office
    submit(driver, f'form[action="/staff/tips/{walk.tip_id}/{action}"]')
    assert path_of(driver, walk.base) == f"/staff/tips/{walk.tip_id}", page_summary(driver)
    assert not errors_on(driver), (step, errors_on(driver))
    walk.refresh_repeats_nothing(driver, step)


@stage("intake", "keys", "report")
def _intake(walk: Walk) -> None:
    """The intake officer finds the Korean tip, classifies, accepts and answers."""
    driver = walk.office
    walk.sign_in(walk.people["intake"])
    driver.get(f"{walk.base}/staff/")
    walk.look("queue", shoot=True)
    language = [s for s in driver.find_elements(By.CSS_SELECTOR, "form.filters select")
                if "ko" in option_values(s) and (s.get_attribute("name") or "") != "county"]
    if walk.check(language, "the queue has no filter by the report's language"):
        folded = "details:has(form.filters):not([open]) > summary"  # the filters fold away
        for summary in driver.find_elements(By.CSS_SELECTOR, folded):
            summary.click()
        Select(language[0]).select_by_value("ko")
        submit(driver, "form.filters")
        walk.look("queue-korean")
    rows = driver.find_elements(By.CSS_SELECTOR, 'main a[href^="/staff/tips/"]')
    ids = sorted({int(m.group(1)) for r in rows
                  if (m := re.search(r"/staff/tips/(\d+)$", r.get_attribute("href") or ""))})
    assert ids, page_summary(driver)
    walk.check(len(ids) == 1, f"the queue lists {len(ids)} tips, expected the one Korean tip")
    queue_text = main_text(driver)
    walk.check(_language_words(walk, "ko") in queue_text,
               f"the queue does not show the report's language as "
               f"{_language_words(walk, 'ko')!r}")
    walk.tip_id = ids[0]
    _open_tip(walk)
    text = walk.look("tip-received", shoot=True)
    assert walk.marker in text, page_summary(driver)
    # the photo's kept location and time, as text
    walk.check(re.search(r"42[.,°]\s*9|42°\s*54", text) and re.search(r"129[.,°]\s*5|129°\s*30",
                                                                          text),
               "the tip page does not show the photo's location as text")
    walk.check("08:30" in text, "the tip page does not show the photo's time")
    walk.check("현장사진" in text, "the photo lost its name")
    photo_links = [a for a in driver.find_elements(By.CSS_SELECTOR, 'main a[href*="/attachments/"]')
                   if "현장사진" in a.text]
    if walk.check(photo_links, "no link to download the photo"):
        saved = walk.try_download(driver, "intake-photo", photo_links[0].click)
        if saved:
            walk.check(saved.name.startswith("현장사진") and saved.suffix == ".jpg",
                       f"the photo downloads as {saved.name}")
            walk.check(saved.read_bytes()[:3] == b"\xff\xd8\xff", "the photo is not a JPEG")
            walk.check(Image.open(saved).getexif().get_ifd(0x8825),
                       "the kept photo lost its location")

    accept = driver.find_element(By.CSS_SELECTOR, f'form[action="/staff/tips/{walk.tip_id}/accept"]'
                                                   f' button[type="submit"]')
    walk.check(accept.rect["y"] < 1200, f"at 1280 px, 受理 is {int(accept.rect['y'])} px down")
    Select(driver.find_element(By.ID, "classify-category")).select_by_value("P04")
    _tip_action(walk, "classify", "classify")
    _tip_action(walk, "accept", "accept")
    text = walk.look("tip-accepted")
    walk.check(walk.words("accepted", walk.people["intake"].lang) in text,
               "the tip page does not say 已受理/accepted")
    fill(driver.find_element(By.ID, "message-body"), REPLY_KO)
    _tip_action(walk, "message", "answer the reporter")
    staff_messages = [m.text for m in driver.find_elements(By.CSS_SELECTOR, "ol.thread li.msg")
                      if REPLY_KO in m.text]
    walk.check(len(staff_messages) == 1, f"the answer shows {len(staff_messages)} times")
    walk.look("tip-answered", shoot=True)

    # the reporter reads it in Korean and writes back once
    walk.reporter_sees("accepted")
    phone = walk.phone
    thread = [m.text for m in phone.find_elements(By.CSS_SELECTOR, "ol.thread li.msg.staff")]
    walk.check(sum(REPLY_KO in t for t in thread) == 1, f"reporter sees the answer: {thread}")
    fill(phone.find_element(By.CSS_SELECTOR, "textarea[name=body]"), REPORTER_KO)
    submit(phone, 'form[action="/followup/reply"]')
    walk.shoot(phone, "citizen-replied")
    walk.refresh_repeats_nothing(phone, "the reporter's reply")
    thread = [m.text for m in phone.find_elements(By.CSS_SELECTOR, "ol.thread li.msg")]
    walk.check(sum(REPORTER_KO in t for t in thread) <= 1,
               f"the reporter's message shows twice: {thread}")
    # switching language on the status page stays on it, without the receipt in the URL
    switch = phone.find_elements(By.CSS_SELECTOR, 'nav.langs a[hreflang="zh-Hans"], '
                                                  'nav.langs button[value="zh"]')
    if walk.check(switch, "the status page offers no language switch"):
        click_and_wait(phone, switch[0])
        walk.check(phone.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-Hans",
                   "the language switch on the status page did not switch")
        now = phone.find_elements(By.CSS_SELECTOR, "dd.status-now")
        walk.check(now and now[0].text.strip() == walk.words("accepted", "zh"),
                   "switching language on the status page leaves it")
        walk.check(walk.receipt.replace("-", "") not in phone.current_url.replace("-", ""),
                   "the receipt is in the URL")
        walk.check(all(walk.receipt.replace("-", "") not in text.replace("-", "")
                       for text in walk.cookie_texts(phone)), "the receipt is in a cookie")
        walk.shoot(phone, "citizen-status-zh")
    with walk.portal.app.app_context():
        from_reporter = db.session.scalar(select(func.count()).select_from(Message).where(
            Message.tip_id == walk.tip_id, Message.author == "reporter"))
        db.session.remove()
    walk.check(from_reporter == 1, f"{from_reporter} reporter messages stored, expected 1")
    walk.sign_out()


@stage("case", "intake")
def _case(walk: Walk) -> None:
    """A case officer forms a case of two and starts its referral with the report."""
    driver = walk.office
    people = walk.people
    walk.sign_in(people["case_a"])
    _open_tip(walk)
    walk.look("tip-as-case-officer")
    driver.get(f"{walk.base}/staff/cases")
    walk.look("cases", shoot=True)
    form = 'form[action="/staff/cases"]'
    tips_input = driver.find_elements(By.CSS_SELECTOR, f"{form} input[name=tips]")
    if tips_input and tips_input[0].get_attribute("type") == "checkbox":
        box = [b for b in tips_input if b.get_attribute("value") == str(walk.tip_id)]
        assert box, "the case form does not offer the accepted tip"
        if not box[0].is_selected():
            driver.find_element(By.CSS_SELECTOR, f'label[for="{box[0].get_attribute("id")}"]'
                                ).click()
    else:
        assert tips_input, page_summary(driver)
        fill(tips_input[0], str(walk.tip_id))
    title = "布尔哈通河夜间排污案"
    summary = "群众举报某工厂夜间向布尔哈通河排放黑色废水，附现场照片。"

    def choose(key: str) -> None:
        person = people[key]
        label = driver.find_elements(By.XPATH, f'//form[@action="/staff/cases"]//label'
                                               f'[contains(., "{person.display}")]')
        assert label, f"the case team lists no {person.display}"
        box = driver.find_element(By.ID, label[0].get_attribute("for"))
        if not box.is_selected():
            label[0].click()

    # a slip a newcomer makes: only themself in the team
    choose("case_a")
    offence = Select(driver.find_element(By.CSS_SELECTOR, f"{form} select[name=offence]"))
    offence.select_by_index(next(i for i, o in enumerate(offence.options)
                                 if o.get_attribute("value")))
    fill(driver.find_element(By.CSS_SELECTOR, f"{form} [name=title]"), title)
    fill(driver.find_element(By.CSS_SELECTOR, f"{form} [name=summary]"), summary)
    submit(driver, form)
    assert path_of(driver, walk.base) == "/staff/cases", page_summary(driver)
    walk.check(errors_on(driver), "a team of one is not refused with words")
    walk.check(walk.counts()["cases"] == 0, "a case of one officer was formed")
    walk.look("cases-team-of-one", shoot=True)
    kept_title = driver.find_element(By.CSS_SELECTOR, f"{form} [name=title]")
    walk.check(kept_title.get_attribute("value") == title, "the typed case title was lost")
    kept_summary = driver.find_element(By.CSS_SELECTOR, f"{form} [name=summary]")
    walk.check(kept_summary.get_attribute("value") == summary, "the typed summary was lost")
    tips_again = driver.find_elements(By.CSS_SELECTOR, f"{form} input[name=tips]")
    if tips_again and tips_again[0].get_attribute("type") == "checkbox":
        chosen = [b for b in tips_again if b.get_attribute("value") == str(walk.tip_id)]
        walk.check(chosen and chosen[0].is_selected(), "the chosen tip was lost")
        if chosen and not chosen[0].is_selected():
            driver.find_element(By.CSS_SELECTOR,
                                f'label[for="{chosen[0].get_attribute("id")}"]').click()
    elif tips_again:
        walk.check(tips_again[0].get_attribute("value") == str(walk.tip_id),
                   "the typed tip number was lost")
        fill(tips_again[0], str(walk.tip_id))
    # …then the team of two, with what the page kept (or typed again)
    choose("case_a")
    choose("case_b")
    fill(driver.find_element(By.CSS_SELECTOR, f"{form} [name=title]"), title)
    fill(driver.find_element(By.CSS_SELECTOR, f"{form} [name=summary]"), summary)
    submit(driver, form)
    assert not errors_on(driver), (errors_on(driver), page_summary(driver))
    match = re.fullmatch(r"/staff/cases/(\d+)", path_of(driver, walk.base))
    assert match, page_summary(driver)
    walk.case_id = int(match.group(1))
    walk.refresh_repeats_nothing(driver, "form the case")
    text = walk.look("case", shoot=True)
    walk.check(people["case_b"].display in text, "the case page does not show the team")
    walk.check(driver.find_elements(By.CSS_SELECTOR, f'main a[href="/staff/tips/{walk.tip_id}"]'),
               "the case page does not link to its tip")
    _open_tip(walk)
    walk.check(driver.find_elements(By.CSS_SELECTOR, f'main a[href="/staff/cases/{walk.case_id}"]'),
               "the tip page does not link to its case")
    driver.get(f"{walk.base}/staff/cases/{walk.case_id}")

    # start the referral to 延吉市公安局, copy to the procuratorate
    Select(driver.find_element(By.CSS_SELECTOR, "select[name=receiver]")).select_by_value(RECEIVER)
    copies = driver.find_elements(By.CSS_SELECTOR, "select[name=copy]")
    if copies and COPY in option_values(copies[0]):
        Select(copies[0]).select_by_value(COPY)
    receiver_form = driver.find_element(By.CSS_SELECTOR, "select[name=receiver]") \
        .find_element(By.XPATH, "ancestor::form")
    click_and_wait(driver, receiver_form.find_element(By.CSS_SELECTOR, 'button[type="submit"]'))
    assert not errors_on(driver), (errors_on(driver), page_summary(driver))
    match = re.fullmatch(r"/staff/referrals/(\d+)", path_of(driver, walk.base))
    assert match, page_summary(driver)
    walk.referral_id = int(match.group(1))
    walk.refresh_repeats_nothing(driver, "start the referral")
    walk.look("referral-draft", shoot=True)

    # submit for approval, with the investigation report where the page asks for it
    report = walk.downloads / "调查报告.txt"
    report.write_text("案件调查报告\n经核查，该厂夜间通过暗管向布尔哈通河排放废水。\n",
                      encoding="utf-8")
    files = driver.find_elements(By.CSS_SELECTOR, "form#action-submit input[type=file]")
    assert files, "the step 'submit for approval' does not ask for the investigation report"
    kinds = driver.find_elements(By.CSS_SELECTOR, "form#action-submit select[name=document_kind]")
    if kinds:
        Select(kinds[0]).select_by_value("investigation_report")
    files[0].send_keys(str(report))
    # the tip's own photo goes into the package, with the location the reporter kept
    photo = [b for b in driver.find_elements(By.CSS_SELECTOR, "form#action-submit "
                                                              "input[type=checkbox]")
             if "현장사진" in (driver.find_element(
                 By.CSS_SELECTOR, f'label[for="{b.get_attribute("id")}"]').text)]
    offered = walk.check(photo, "the referral does not offer the tip's own photo for the package")
    if offered and not photo[0].is_selected():
        photo[0].click()
    submit(driver, "form#action-submit")
    assert not errors_on(driver), (errors_on(driver), page_summary(driver))
    walk.refresh_repeats_nothing(driver, "submit for approval")
    state = driver.find_element(By.ID, "referral-state").text
    walk.check(state == _state_words(walk, "awaiting_approval"), f"state reads {state!r}")
    walk.look("referral-submitted", shoot=True)
    _open_tip(walk)
    walk.check(driver.find_elements(By.CSS_SELECTOR,
                                    f'main a[href="/staff/referrals/{walk.referral_id}"]'),
               "the tip page does not link to its referral")
    walk.reporter_sees("verifying")
    walk.sign_out()


def _state_words(walk: Walk, state: str) -> str:
    """The app's own words for a referral state, in the signed-in person's language."""
    lang = walk.people[walk.signed_in].lang if walk.signed_in else "zh"
    with walk.portal.app.test_request_context(f"/?lang={lang}"):
        return state_text(state)


def _referral_step(walk: Walk, action: str, *, before: Callable[[], None] | None = None) -> None:
    driver = walk.office
    form = f"form#action-{action}"
    assert driver.find_elements(By.CSS_SELECTOR, form), (
        f"no '{action}' step offered to {walk.signed_in}: {page_summary(driver)}")
    if before:
        before()
    submit(driver, form)
    assert not errors_on(driver), (action, errors_on(driver), page_summary(driver))
    walk.refresh_repeats_nothing(driver, action)


@stage("approve", "case")
def _approve(walk: Walk) -> None:
    """The head reviews the case, its materials and the 移送书 preview, and approves."""
    driver = walk.office
    walk.sign_in(walk.people["head"])
    driver.get(f"{walk.base}/staff/referrals")
    walk.look("referrals-head", shoot=True)
    link = driver.find_elements(By.CSS_SELECTOR,
                                f'main a[href="/staff/referrals/{walk.referral_id}"]')
    assert link, page_summary(driver)
    click_and_wait(driver, link[0])
    text = walk.look("referral-for-approval", shoot=True)
    walk.check("调查报告" in text, "the head does not see the investigation report among the "
                                  "materials")
    walk.check(driver.find_elements(By.CSS_SELECTOR, f'main a[href="/staff/cases/{walk.case_id}"]'),
               "the referral does not link to its case")
    material = [a for a in driver.find_elements(By.CSS_SELECTOR, "main a[href]")
                if a.text.strip() == "调查报告.txt"]
    if walk.check(material, "the head cannot open the investigation report"):
        saved = walk.try_download(driver, "head-material", material[0].click)
        walk.check(saved and saved.read_text(encoding="utf-8").startswith("案件调查报告"),
                   "the investigation report the head downloads is not the one uploaded")
    case_links = driver.find_elements(By.CSS_SELECTOR,
                                      f'main a[href="/staff/cases/{walk.case_id}"]')
    if case_links:
        click_and_wait(driver, case_links[0])
        walk.look("case-for-the-head", shoot=True)
        driver.back()
    previews = [a for a in driver.find_elements(By.CSS_SELECTOR, "main a[href]")
                if re.search(r"letter|preview|移送书", (a.get_attribute("href") or "")
                             + a.text)]
    if walk.check(previews, "the head has no preview of the 移送书"):
        href = previews[0].get_attribute("href")
        data = _fetch(walk, href)
        walk.check(data.startswith(b"%PDF") or b"<html" in data[:500].lower(),
                   f"the 移送书 preview is neither a PDF nor a page ({data[:40]!r})")
    driver.get(f"{walk.base}/staff/referrals/{walk.referral_id}")
    _referral_step(walk, "approve")
    walk.check(driver.find_element(By.ID, "referral-state").text
               == _state_words(walk, "approved"), "the referral does not read approved")
    walk.look("referral-approved")
    walk.sign_out()


def _fetch(walk: Walk, href: str) -> bytes:
    """What the browser would receive for `href`, with its cookies (for files it would
    download or show in its PDF viewer)."""
    import urllib.request

    cookies = "; ".join(f"{c['name']}={c['value']}" for c in walk.office.get_cookies())
    assert href.startswith(walk.base), href
    request = urllib.request.Request(href, headers={"Cookie": cookies})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.read()


@stage("hand_over", "approve")
def _hand_over(walk: Walk) -> None:
    """The second case officer hands the referral over."""
    driver = walk.office
    walk.sign_in(walk.people["case_b"])
    driver.get(f"{walk.base}/staff/referrals/{walk.referral_id}")
    walk.look("referral-approved-case-b")

    # a slip: hand over without the contact number the 移送书 needs
    before, last_id = walk.counts(), walk.last_event_id()
    submit(driver, "form#action-hand_over")
    walk.check(errors_on(driver), "a hand-over without a contact phone is not refused in words")
    walk.check(walk.counts() == before and not walk.events_since(last_id),
               "a refused hand-over changed something")
    walk.check(driver.find_element(By.ID, "referral-state").text
               == _state_words(walk, "approved"), "a refused hand-over moved the referral")
    walk.look("referral-hand-over-refused", shoot=True)

    def phone_number() -> None:
        fill(driver.find_element(By.CSS_SELECTOR, "form#action-hand_over "
                                                  "input[name=contact_phone]"), "0433-2512345")

    _referral_step(walk, "hand_over", before=phone_number)
    walk.check(driver.find_element(By.ID, "referral-state").text
               == _state_words(walk, "handed_over"), "the referral does not read handed over")
    walk.look("referral-handed-over", shoot=True)
    walk.reporter_sees("referred_police")
    walk.shoot(walk.phone, "citizen-status-referred")
    walk.sign_out()


@stage("liaison", "hand_over")
def _liaison(walk: Walk) -> None:
    """The liaison downloads the package, signs the receipt and records 立案."""
    driver = walk.office
    walk.sign_in(walk.people["liaison"])
    walk.look("liaison-home", shoot=True)
    path = f"/liaison/referrals/{walk.referral_id}"
    links = driver.find_elements(By.CSS_SELECTOR, f'main a[href="{path}"]')
    assert links, page_summary(driver)
    click_and_wait(driver, links[0])
    walk.look("liaison-referral", shoot=True)
    package = driver.find_element(By.CSS_SELECTOR, f'main a[href="{path}/package"]')
    zip_path = download(driver, walk.downloads / "liaison", package.click)
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        pdfs = [n for n in names if n.lower().endswith(".pdf")]
        assert pdfs, names
        walk.check(any("调查报告" in n for n in names), f"no investigation report in {names}")
        photos = [n for n in names if n.lower().endswith((".jpg", ".jpeg"))]
        if walk.check(photos, f"the reporter's photo is not in the package: {names}"):
            with archive.open(photos[0]) as handle:
                exif = Image.open(handle).getexif()
            walk.check(exif.get_ifd(0x8825), "the packaged photo lost its location")

    def receipt_period() -> None:
        periods = driver.find_elements(By.CSS_SELECTOR, "form#action-sign_receipt "
                                                        "select[name=period]")
        if periods:
            Select(periods[0]).select_by_value("normal")

    _referral_step(walk, "sign_receipt", before=receipt_period)
    walk.look("liaison-receipt-signed")
    decision = walk.downloads / "立案决定书.txt"
    decision.write_text("立案决定书：决定对该案立案侦查。\n", encoding="utf-8")

    def decision_file() -> None:
        kinds = driver.find_elements(By.CSS_SELECTOR, "form#action-file "
                                                      "select[name=document_kind]")
        if kinds:
            Select(kinds[0]).select_by_value("decision")
        driver.find_element(By.CSS_SELECTOR, "form#action-file input[type=file]") \
            .send_keys(str(decision))

    _referral_step(walk, "file", before=decision_file)
    walk.check(driver.find_element(By.ID, "referral-state").text == _state_words(walk, "filed"),
               "the referral does not read filed")
    walk.look("liaison-filed", shoot=True)
    walk.reporter_sees("case_filed")
    walk.shoot(walk.phone, "citizen-status-filed")
    walk.sign_out()


@stage("audit", "enrol")
def _audit(walk: Walk) -> None:
    """The auditor verifies the log, exports it, and the export verifies offline."""
    driver = walk.office
    walk.sign_in(walk.people["auditor"])
    home = driver.current_url
    walk.look("auditor-home", shoot=True)
    pages = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR,
                                                                    "nav.subnav a[href]")]
    walk.check(len(pages) >= 3, f"the audit menu has {len(pages)} pages")
    for href in pages:
        driver.get(href)
        name = path_of(driver, walk.base).strip("/").replace("/", "-") or "home"
        text = walk.look(f"auditor-{name}", shoot=True)
        links = driver.find_elements(By.CSS_SELECTOR, f'main a[href$="/tips/{walk.tip_id}"]')
        if walk.tip_id and links and "tips" in name:
            click_and_wait(driver, links[0])
            text = walk.look("auditor-tip", shoot=True)
            walk.check(walk.marker not in text and NARRATIVE[:10] not in text,
                       "the auditor sees the tip's content")
    driver.get(home)
    submit(driver, 'form[action$="/verify"]')
    # The run goes on in the background; its page reloads itself (no script) until it ends.
    with suppress(WebDriverException):
        wait_css(driver, "main .success, main .error-summary, main .notice", timeout=60)
    assert driver.find_elements(By.CSS_SELECTOR, "main .success"), page_summary(driver)
    walk.look("auditor-verified", shoot=True)
    walk.refresh_repeats_nothing(driver, "verify the log")
    driver.get(home)
    # the command the page shows, run on the file the page names
    commands = [c.text.split() for c in driver.find_elements(By.CSS_SELECTOR, "main code")
                if "auditlog.verify" in c.text]
    assert commands, "the audit page does not show the command that checks an export"
    command = commands[0]
    button = driver.find_element(By.CSS_SELECTOR, 'form[action$="/export"] '
                                                  'button[type="submit"]')
    bundle = download(driver, walk.downloads / "audit", button.click)
    named = command[command.index("auditlog.verify") + 1]
    walk.check(named == bundle.name, f"the page names {named}, the download is {bundle.name}")
    assert command[:2] == ["python", "-m"], command
    result = subprocess.run([sys.executable, "-m", "auditlog.verify", str(bundle)],
                            capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, (result.stdout, result.stderr)
    walk.sign_out()


# ---------------------------------------------------------------------------------------------
# The tests: one per stage, in the walk's order; each runs what it needs first.


def test_setup_from_the_link(walk: Walk) -> None:
    run(walk, "setup")


def test_accounts_created_by_the_administrator(walk: Walk) -> None:
    run(walk, "accounts")


def test_enrol_a_second_factor_each(walk: Walk) -> None:
    run(walk, "enrol")


def test_report_in_korean_with_a_located_photo(walk: Walk) -> None:
    run(walk, "report")


def test_keys_granted_through_the_pages(walk: Walk) -> None:
    run(walk, "keys")


def test_intake_classifies_accepts_and_answers(walk: Walk) -> None:
    run(walk, "intake")


def test_case_of_two_becomes_a_referral(walk: Walk) -> None:
    run(walk, "case")


def test_approve_by_the_head_after_review(walk: Walk) -> None:
    run(walk, "approve")


def test_hand_over_by_a_case_officer(walk: Walk) -> None:
    run(walk, "hand_over")


def test_liaison_downloads_signs_and_files(walk: Walk) -> None:
    run(walk, "liaison")


def test_audit_verified_and_the_export_verifies_offline(walk: Walk) -> None:
    run(walk, "audit")


def test_words_and_layout_of_every_staff_page(walk: Walk) -> None:
    """Over every staff page the walk saw: no stored code in the visible text, nothing wider
    than a 360 px phone."""
    for name in STAGES:  # alone (-k words), it walks first; a failed stage fails its own test
        with suppress(Exception, pytest.fail.Exception):
            run(walk, name, target=False)
    report = [f"{page}: {', '.join(codes)}" for page, codes in walk.leaks.items()]
    report += [f"{page}: {px} px wider than 360 px" for page, px in walk.overflows.items()]
    report += [f"{page}: at 1280 px the header and the content start {px} px apart"
               for page, px in walk.misaligned.items()]
    print(f"\nwalk screenshots: {walk.shots}")
    assert not report, "\n".join(report)

