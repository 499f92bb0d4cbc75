"""axe-core over every citizen page, and every staff, liaison, auditor and administrator page, in
Chinese, Korean and English, on a 360 px phone.

A visit per language walks: home, the report form, the form sent back with errors, the receipt,
the follow-up form, the same form after a wrong receipt, the status page, and the status page
after a reply. Any violation of impact "serious" or "critical" fails the test; the message lists
page, rule, impact, help and the offending nodes.

axe-core (4.x, from npm: package.json, installed by `make`) is injected with execute_script.
This uses the `js_browser` fixture, NOT the JavaScript-less `browser`: verified
here, WebDriver scripts do run while the content setting blocks JavaScript, but the page's timers
never fire, so axe.run() (which schedules its work with setTimeout) never calls back. The portal
has no script of its own and its CSP (default-src 'none') blocks any, so allowing JavaScript does
not change what is rendered.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.conftest import (
    ROLE_USER,
    STAFF_PASSWORD,
    StaffWorld,
    add_unenrolled_member,
    page_replaced,
    sign_in_staff,
)

pytestmark = pytest.mark.browser

AXE_JS = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
HTML_LANG = {"zh": "zh-Hans", "ko": "ko", "en": "en"}
FAILING_IMPACTS = ("serious", "critical")

AXE_RUN = """
var done = arguments[arguments.length - 1];
axe.run(document).then(function (results) {
  done({violations: results.violations.map(function (v) {
    return {id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
            nodes: v.nodes.map(function (n) {
              return {target: n.target, html: n.html, summary: n.failureSummary};
            })};
  })});
}, function (error) { done({error: String(error)}); });
"""


def _axe(driver: WebDriver) -> list[dict]:
    """Inject axe-core into the current page and return its violations."""
    if not AXE_JS.exists():
        pytest.fail("axe-core is missing: run `make install` (npm ci installs it)")
    driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    result = driver.execute_async_script(AXE_RUN)
    assert "error" not in result, f"axe.run failed on {driver.current_url}: {result['error']}"
    return result["violations"]


def _describe(page: str, violation: dict) -> str:
    lines = [f"[{page}] {violation['id']} ({violation['impact']}): {violation['help']}"
             f" <{violation['helpUrl']}>"]
    for node in violation["nodes"]:
        lines.append(f"    target {node['target']}: {node['html']}")
        if node.get("summary"):
            lines.extend("      " + line for line in node["summary"].splitlines())
    return "\n".join(lines)


class Audit:
    """Runs axe on each page of a visit and remembers the serious and critical violations."""

    def __init__(self, driver: WebDriver, lang: str) -> None:
        self.driver = driver
        self.lang = lang
        self.pages: list[str] = []
        self.problems: list[str] = []

    def check(self, page: str) -> None:
        html_lang = self.driver.find_element(By.TAG_NAME, "html").get_attribute("lang")
        assert html_lang == HTML_LANG[self.lang], f"{page}: <html lang={html_lang!r}>"
        self.pages.append(page)
        for violation in _axe(self.driver):
            if violation["impact"] in FAILING_IMPACTS:
                self.problems.append(_describe(f"{self.lang} {page}", violation))

    def submit(self, form_action: str) -> None:
        old_page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(
            By.CSS_SELECTOR, f'form[action="{form_action}"] button[type="submit"]').click()
        WebDriverWait(self.driver, 30).until(page_replaced(old_page))

    def shows(self, css: str) -> str:
        element = WebDriverWait(self.driver, 20).until(
            EC.visibility_of_element_located((By.CSS_SELECTOR, css)))
        return element.text


@pytest.mark.parametrize("lang", ["zh", "ko", "en"])
def test_citizen_pages_have_no_serious_violations(live_portal, js_browser: WebDriver,
                                                   lang: str) -> None:
    driver, base = js_browser, live_portal.url
    audit = Audit(driver, lang)

    driver.get(f"{base}/?lang={lang}")  # the language is remembered for the visit
    audit.check("home /")

    driver.get(f"{base}/report")
    audit.check("report form /report")

    driver.find_element(By.ID, "place").send_keys("Yanji, Buerhatong river")
    audit.submit("/report")
    audit.shows(".error-summary")
    audit.check("report form with errors")

    driver.find_element(By.ID, "narrative").send_keys(f"Black water at night. {uuid.uuid4()}")
    audit.submit("/report")
    receipt = audit.shows("p.receipt code").strip()
    audit.check("receipt page")

    driver.get(f"{base}/followup")
    audit.check("follow-up form /followup")

    driver.find_element(By.ID, "receipt").send_keys("0000-0000-0000-0000-0000")
    audit.submit("/followup")
    audit.shows(".error-summary")
    audit.check("follow-up form, receipt not found")

    driver.find_element(By.ID, "receipt").send_keys(receipt)
    audit.submit("/followup")
    audit.shows("dl.status")
    audit.check("status page")

    driver.find_element(By.ID, "body").send_keys("One more photo will follow.")
    audit.submit("/followup/reply")
    audit.shows('p.success[role="status"]')
    audit.check("status page after a reply")

    assert len(audit.pages) == 8
    assert not audit.problems, (
        f"{len(audit.problems)} serious/critical axe violations:\n" + "\n".join(audit.problems))


def test_staff_pages_have_no_serious_violations(staff_world: StaffWorld,
                                                 js_browser: WebDriver) -> None:
    """The sign-in pages; a new officer's first sign-in (second factor, recovery codes) and the
    page that says they hold no key yet; then each role's pages (staff_world.pages), signed in
    once per role, in each language."""
    import pyotp

    driver, base = js_browser, staff_world.portal.url
    audits = {lang: Audit(driver, lang) for lang in HTML_LANG}
    for lang, audit in audits.items():
        driver.get(f"{base}/staff/login?lang={lang}")
        audit.check("sign-in /staff/login")
    # The second step, with an error, once (its words are checked in every language above).
    audit = audits["zh"]
    driver.get(f"{base}/staff/login?lang=zh")
    driver.find_element(By.ID, "username").send_keys(ROLE_USER["staff"])
    driver.find_element(By.ID, "password").send_keys(staff_world.password(ROLE_USER["staff"]))
    audit.submit("/staff/login")
    audit.check("sign-in, second factor /staff/login/code")
    driver.find_element(By.ID, "code").send_keys("000000" if pyotp.TOTP(
        staff_world.secrets[ROLE_USER["staff"]]).now() != "000000" else "111111")
    audit.submit("/staff/login/code")
    audit.shows(".errors")
    audit.check("sign-in, wrong code")
    driver.delete_all_cookies()

    add_unenrolled_member(staff_world, "w_new", "yanji", "intake_officer")
    driver.get(f"{base}/staff/login")
    driver.find_element(By.ID, "username").send_keys("w_new")
    driver.find_element(By.ID, "password").send_keys(STAFF_PASSWORD)
    audit.submit("/staff/login")
    for lang, audit in audits.items():
        driver.get(f"{base}/staff/login/enroll?lang={lang}")
        audit.check("second factor enrollment /staff/login/enroll")
    secret = audit.shows('[data-testid="totp-secret"]').strip()
    driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
    audit.submit("/staff/login/enroll")
    audit.shows("ul.codes")
    audit.check("recovery codes")
    for lang, audit in audits.items():
        driver.get(f"{base}/staff/tips/{staff_world.tip_id}?lang={lang}")
        audit.shows("nav.staff-nav")
        assert not driver.find_elements(By.CSS_SELECTOR, "dd.narrative"), "w_new holds no key"
        audit.check("no key for the tip (no_key)")
    driver.delete_all_cookies()

    for role, user in ROLE_USER.items():
        sign_in_staff(driver, staff_world, user)
        for lang, audit in audits.items():
            for path in staff_world.pages[role]:
                driver.get(f"{base}{path}?lang={lang}")
                assert driver.find_elements(By.CSS_SELECTOR, "nav.staff-nav"), (
                    f"{role} {path}: " + driver.find_element(By.TAG_NAME, "main").text[:300])
                audit.check(f"{role} {path}")
        driver.delete_all_cookies()

    pages = sum(len(paths) for paths in staff_world.pages.values())
    assert [len(a.pages) for a in audits.values()] == [pages + 5, pages + 3, pages + 4]
    problems = [p for audit in audits.values() for p in audit.problems]
    assert not problems, (
        f"{len(problems)} serious/critical axe violations:\n" + "\n".join(problems))


def _reset_link(world: StaffWorld, username: str) -> str:
    """An administrator's password reset of `username`, as /admin/users starts it: the path
    of the one-time link the person is given."""
    from flask import current_app
    from sqlalchemy import select

    from auditlog.events import Actor
    from models import Role, User
    from portal.security.accounts import reset_token
    from portal.security.custody import reset_password
    from portal.web.extensions import db

    with world.portal.app.app_context():
        admin = db.session.scalars(select(User).where(User.username == "admin")).one()
        user = db.session.scalars(select(User).where(User.username == username)).one()
        reset_password(db.session, user, actor=Actor("staff", admin.id, Role.ADMINISTRATOR))
        db.session.commit()
        token = reset_token(user, current_app.config["SECRET_KEY"])
        db.session.remove()
    return f"/reset/{token}"


def test_security_pages_have_no_serious_violations(staff_world: StaffWorld,
                                                    js_browser: WebDriver) -> None:
    """Issue 9's pages outside a role's menu: the one-time password reset page (and the same
    with a wrong code), and the second-factor page once wrong codes are throttled (429), in
    each language. (/audit/accounts is among the auditor's pages above.)"""
    import pyotp

    driver, base = js_browser, staff_world.portal.url
    audits = {lang: Audit(driver, lang) for lang in HTML_LANG}
    link = _reset_link(staff_world, "w_case_b")
    for lang, audit in audits.items():
        driver.get(f"{base}{link}?lang={lang}")
        audit.shows("form input#code")
        audit.check("password reset /reset/<token>")
    audit = audits["en"]  # the language of the last visit
    driver.find_element(By.ID, "code").send_keys("000000")
    driver.find_element(By.ID, "new").send_keys("a new password 2026 winter")
    driver.find_element(By.ID, "confirm").send_keys("a new password 2026 winter")
    old_page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, 'main form button[type="submit"]').click()  # no action=
    WebDriverWait(driver, 30).until(page_replaced(old_page))
    audit.shows(".errors")
    audit.check("password reset, wrong code")

    user = "w_head"
    right = {pyotp.TOTP(staff_world.secrets[user]).at(datetime.now(UTC) + timedelta(seconds=d))
             for d in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in right)
    driver.delete_all_cookies()
    driver.get(f"{base}/staff/login?lang=en")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(staff_world.password(user))
    audit.submit("/staff/login")
    for lang, audit in audits.items():
        for _attempt in range(8):  # 5 free, then held back: the page offers a recovery code
            driver.get(f"{base}/staff/login/code?lang={lang}")
            driver.find_element(By.ID, "code").send_keys(wrong)
            audit.submit("/staff/login/code")
            if driver.find_element(By.ID, "code").get_attribute("inputmode") == "text":
                break
        else:
            pytest.fail("eight wrong codes and no throttle page")
        audit.check("second factor, throttled (429)")

    assert [len(a.pages) for a in audits.values()] == [2, 2, 3]
    problems = [p for audit in audits.values() for p in audit.problems]
    assert not problems, (
        f"{len(problems)} serious/critical axe violations:\n" + "\n".join(problems))


def test_axe_catches_real_problems(js_browser: WebDriver) -> None:
    """The checker itself works: a label hidden from everyone and an invalid autocomplete token
    are flagged; a visually hidden label and a text street-address are not."""
    js_browser.get(
        "data:text/html;charset=utf-8,<!doctype html><html lang=en><title>t</title><main>"
        "<label for=a style='display:none'>Name</label><input id=a>"
        "<label for=b>Address</label><input id=b type=text autocomplete=home-planet>"
        "<label for=c class=sr style='position:absolute;width:1px;height:1px;overflow:hidden;"
        "clip:rect(0 0 0 0)'>File</label><input id=c type=file>"
        "<label for=d>Street</label><input id=d type=text autocomplete=street-address>"
        "</main>")
    flagged = {(v["id"], node["target"][0]) for v in _axe(js_browser) for node in v["nodes"]}
    assert ("label", "#a") in flagged
    assert ("autocomplete-valid", "#b") in flagged
    assert not {target for _rule, target in flagged} & {"#c", "#d"}, flagged
