"""Issue 9, finding 1, by another road: an administrator creating a NEW officer (whose first
password and one-time link it knows) must not be able to act as that officer. Officer, liaison
and administrator roles given on the administration pages wait, giving no access, until someone
other than that administrator who speaks for the unit confirms them — a head of the handling
unit, a liaison of the receiving body, or (the unit having nobody such yet, or for the
administrator role) a second administrator. `flask users create` is the trust root.

Also here, the rest of the separation-of-duties gaps: wrong codes on the reset page count against
the account's second-factor throttle; the first sign-in link renews the Flask session; a known
device stops being known after a password change, a reset and "sign out everywhere"."""

from __future__ import annotations

import html
import re

import pyotp
from sqlalchemy import select

from models import AuditEvent, LoginThrottle, Membership, Unit, User
from portal.security import auth, custody
from portal.security.access import principal_for
from portal.security.accounts import first_sign_in_token
from portal.web.extensions import db
from portal.web.staff.views import DEVICE_COOKIE
from tests.conftest import ADMIN_PASSWORD, COSTS, Staff
from tests.functional.test_admin_users import admin_client, roles_of, visible_text
from tests.functional.test_separation_of_duties import flashed_link, second_admin, user_named

FIRST_PASSWORD = "first password 2026 spring"
OWN_PASSWORD = "only I know this 2026"


def create_on_page(client, username: str, unit: str, role: str) -> str:
    """The administrator creates an account on /admin/users; the page's words after it."""
    made = client.post("/admin/users?lang=en", data={
        "username": username, "display_name": username.title(), "password": FIRST_PASSWORD,
        "unit": unit, "role": role})
    assert made.status_code == 303, made.get_data(as_text=True)[:800]
    return client.get("/admin/users?lang=en").get_data(as_text=True)


def membership_of(username: str) -> Membership:
    return db.session.scalars(select(Membership).join(User, User.id == Membership.user_id)
                              .where(User.username == username)).one()


def reach(username: str) -> dict[int, set[str]]:
    db.session.expire_all()
    return principal_for(db.session, user_named(username)).roles


def decide(client, membership_id: int, decision: str, back: str = ""):
    return client.post("/roles-to-confirm?lang=en", data={
        "membership_id": str(membership_id), "decision": decision, "back": back})


def flashes(client, path: str = "/roles-to-confirm?lang=en") -> str:
    return visible_text(client.get(path).get_data(as_text=True))


def enrol_through_pages(client, link: str) -> None:
    """What the administrator holding the first password and link can do: complete the first
    sign-in, enrol an authenticator of its own."""
    done = client.post(link, data={"current": FIRST_PASSWORD, "new": OWN_PASSWORD,
                                   "confirm": OWN_PASSWORD})
    assert done.status_code == 303 and done.location.endswith("/staff/login/enroll")
    page = client.get("/staff/login/enroll").get_data(as_text=True)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    enrolled = client.post("/staff/login/enroll", data={"code": pyotp.TOTP(secret).now()})
    assert enrolled.status_code == 200, enrolled.get_data(as_text=True)[:500]


# ---------------------------------------------------------------------------------------------
# The two-person rule


def test_an_officer_made_on_the_pages_opens_nothing_until_a_head_confirms(app, staff) -> None:
    head = staff.create("head_cui", "yanji", "head")
    client, _ = admin_client(app)
    page = create_on_page(client, "newcomer", "yanji", "intake_officer")
    words = visible_text(page)
    assert "gives no access until a head of the unit" in words
    assert "waiting for a second person's confirmation" in words
    link = re.search(r"http://localhost(/welcome/[\w.-]+)", page)
    # The administrator knows the password and the link: it completes the first sign-in and
    # enrols its own authenticator. The account still reaches nothing an officer does.
    assert link
    impostor = app.test_client()
    enrol_through_pages(impostor, link.group(1))
    assert reach("newcomer") == {}
    menu = impostor.get("/staff/account?lang=en").get_data(as_text=True)
    assert 'href="/staff/hotline"' not in menu and 'href="/staff/cases"' not in menu
    # No unit key can be granted to it either (the recovery key in hand).
    yanji = db.session.scalars(select(Unit).where(Unit.code == "yanji")).one()
    try:
        custody.check_key_member(db.session, yanji, user_named("newcomer"))
        raise AssertionError("a waiting role made its holder a key member")
    except custody.NotKeyMember:
        pass
    # The administrator who asked cannot confirm it; the head sees it first at sign-in.
    waiting = membership_of("newcomer")
    assert decide(client, waiting.id, "confirm").status_code == 303
    assert "You cannot confirm this role" in flashes(client, "/admin?lang=en")
    assert waiting.confirmed_at is None and reach("newcomer") == {}
    assert "Roles waiting for your confirmation" not in flashes(client, "/admin?lang=en")
    head_browser = app.test_client()
    first = head_browser.post("/staff/login", data={"username": "head_cui",
                                                    "password": staff.PASSWORD})
    assert first.status_code == 302
    landed = head_browser.post("/staff/login/code", data={"code": staff.code(head)})
    assert landed.location.endswith("/roles-to-confirm")
    page = flashes(head_browser)
    assert "Roles waiting for your confirmation" in page
    assert re.search(r"admin asked on .+: Newcomer \(newcomer\) as Intake officer in \S+",
                     page), page
    assert 'href="/roles-to-confirm"' in head_browser.get("/staff/?lang=en").get_data(
        as_text=True)  # the menu leads there too
    confirmed = decide(head_browser, waiting.id, "confirm")
    assert confirmed.status_code == 303
    assert "Confirmed: Newcomer is now Intake officer." in flashes(head_browser)
    assert reach("newcomer") == {yanji.id: {"intake_officer"}}
    db.session.refresh(waiting)
    assert waiting.confirmed_by_id == head and waiting.added_by_id == user_named("admin").id
    # Confirmed once: nobody confirms it again.
    assert decide(head_browser, waiting.id, "confirm").status_code == 303
    assert "no longer waiting" in flashes(head_browser)
    # The auditor reads it in words.
    auditor = staff.create("auditor_han", "zhou", "auditor", grant=False)
    reader = app.test_client()
    staff.login(reader, "auditor_han", auditor)
    log = html.unescape(flashes(reader, "/audit/accounts?lang=en"))
    assert re.search(r"admin \(Administrator\) Role given \(Intake officer, waiting for a "
                     r"second person's confirmation\) Newcomer", log), log
    assert re.search(r"head_cui \(Head\) Role confirmed by a second person \(Intake officer\) "
                     r"Newcomer", log), log


def test_a_role_added_to_an_existing_account_waits_and_can_be_refused(app, staff) -> None:
    staff.create("head_cui", "yanji", "head")
    head = user_named("head_cui").id
    plain = staff.create("plain", "zhou", "auditor", grant=False)
    client, _ = admin_client(app)
    added = client.post(f"/admin/users/{plain}/membership?lang=en",
                        data={"unit": "yanji", "role": "case_officer"})
    assert added.status_code == 303
    waiting = db.session.scalars(select(Membership).where(
        Membership.user_id == plain, Membership.role == "case_officer")).one()
    assert waiting.confirmed_at is None
    assert all("case_officer" not in roles for roles in reach("plain").values())
    head_browser = app.test_client()
    staff.login(head_browser, "head_cui", head)
    assert decide(head_browser, waiting.id, "refuse").status_code == 303
    assert "Refused: plain was not given the role Case officer." in flashes(head_browser)
    assert ("yanji", "case_officer") not in roles_of("plain")
    refused = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "membership.refused")).one()
    assert (refused.actor_id, refused.object_id, refused.unit_code) == (head, plain, "yanji")


def test_the_first_accounts_of_a_unit_need_a_second_administrator(app, staff) -> None:
    """珲春 has no head yet: a second administrator confirms; a head of another unit cannot."""
    staff.create("head_cui", "yanji", "head")
    client, _ = admin_client(app)
    create_on_page(client, "hc_first", "hunchun", "head")
    waiting = membership_of("hc_first")
    other_head = app.test_client()
    staff.login(other_head, "head_cui", user_named("head_cui").id)
    assert decide(other_head, waiting.id, "confirm").status_code == 303
    assert waiting.confirmed_at is None
    assert "You cannot confirm this role" in flashes(other_head)
    two, _ = second_admin(app, staff)
    home = flashes(two, "/admin?lang=en")
    assert "Roles waiting for your confirmation" in home and "hc_first" in home
    assert decide(two, waiting.id, "confirm", back="admin").location.endswith("/admin")
    db.session.refresh(waiting)
    assert waiting.confirmed_at is not None
    # Once 珲春 has a head, its next officer is the head's to confirm, no longer the
    # administrators'.
    create_on_page(client, "hc_second", "hunchun", "case_officer")
    assert "hc_second" not in flashes(two, "/admin?lang=en")
    assert decide(two, membership_of("hc_second").id, "confirm").status_code == 303
    assert membership_of("hc_second").confirmed_at is None


def test_a_liaison_is_confirmed_by_a_liaison_of_the_body(app, staff) -> None:
    police = staff.create("police_one", "psb_zhou", "liaison", grant=False)
    client, _ = admin_client(app)
    create_on_page(client, "police_two", "psb_zhou", "liaison")
    assert reach("police_two") == {}
    liaison = app.test_client()
    staff.login(liaison, "police_one", police)
    assert "police_two" in flashes(liaison)
    decide(liaison, membership_of("police_two").id, "confirm")
    assert set().union(*reach("police_two").values()) == {"liaison"}


def test_an_administrator_role_given_on_the_pages_waits_for_another_administrator(
        app, staff) -> None:
    """Else one administrator would make a second one of its own and confirm through it."""
    client, _ = admin_client(app)
    create_on_page(client, "admin_puppet", "zhou", "administrator")
    waiting = membership_of("admin_puppet")
    assert waiting.confirmed_at is None
    assert not principal_for(db.session, user_named("admin_puppet")).is_admin
    assert decide(client, waiting.id, "confirm").status_code == 303
    assert waiting.confirmed_at is None
    two, _ = second_admin(app, staff)
    decide(two, waiting.id, "confirm")
    db.session.expire_all()
    assert principal_for(db.session, user_named("admin_puppet")).is_admin


def test_roles_given_from_the_servers_command_line_hold_at_once(app, portal_keys,
                                                               runner, monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_USER_PASSWORD", FIRST_PASSWORD)
    result = runner.invoke(args=["users", "create", "shell_head", "--unit", "yanji",
                                 "--role", "head"])
    assert result.exit_code == 0, result.output
    assert "confirmed at once" in result.output
    assert membership_of("shell_head").confirmed_at is not None
    assert set().union(*reach("shell_head").values()) == {"head"}
    helped = runner.invoke(args=["users", "create", "--help"])
    assert "second person" in helped.output


def test_the_confirmation_page_answers_nonsense_in_words(app, staff) -> None:
    client, _ = admin_client(app)
    for data in ({}, {"membership_id": "x", "decision": "confirm"},
                 {"membership_id": "99999999999999999999", "decision": "confirm"},
                 {"membership_id": "1", "decision": "maybe"}):
        answer = client.post("/roles-to-confirm?lang=en", data=data)
        assert answer.status_code == 303
    assert "no longer waiting" in flashes(client)
    assert app.test_client().get("/roles-to-confirm").status_code == 302  # sign in first


# ---------------------------------------------------------------------------------------------
# The reset page counts wrong codes against the account's second-factor throttle


def test_wrong_codes_on_the_reset_page_and_at_sign_in_share_one_throttle(app, staff) -> None:
    uid = staff.create("shared")
    client, _ = admin_client(app)
    client.post(f"/admin/users/{uid}/reset-password")
    link = flashed_link(client)
    assert link
    wrong = "000000" if staff.code(uid) != "000000" else "111111"
    for _ in range(3):  # three on the reset page …
        assert client.post(link, data={"code": wrong, "new": OWN_PASSWORD,
                                       "confirm": OWN_PASSWORD}).status_code == 400
    # … count for the account: three more anywhere and it is held back, the reset page too,
    # even for a right code (not checked while held back).
    db.session.get(User, uid).reset_failures = 0  # not the per-reset count that stops it
    db.session.commit()
    for _ in range(3):
        auth_try = client.post(link, data={"code": wrong, "new": OWN_PASSWORD,
                                           "confirm": OWN_PASSWORD})
        db.session.get(User, uid).reset_failures = 0
        db.session.commit()
    assert auth_try.status_code == 400, auth_try.status_code  # the sixth is still checked
    held = client.post(link + "?lang=en", data={"code": staff.code(uid), "new": OWN_PASSWORD,
                                                "confirm": OWN_PASSWORD})
    assert held.status_code == 429 and held.headers["Retry-After"]
    assert "Too many wrong codes for this account" in held.get_data(as_text=True)
    assert user_named("shared").reset_state == "open"
    # A recovery code still completes it (never held back).
    db.session.get(User, uid).reset_failures = 0
    db.session.commit()
    code = auth.new_recovery_codes(db.session, db.session.get(User, uid))[0]
    db.session.commit()
    done = app.test_client().post(link, data={"code": code, "new": OWN_PASSWORD,
                                              "confirm": OWN_PASSWORD})
    assert done.status_code == 303


def test_wrong_codes_at_sign_in_hold_the_reset_page_back(app, staff) -> None:
    uid = staff.create("held")
    attacker = app.test_client()
    client, _ = admin_client(app)
    client.post(f"/admin/users/{uid}/reset-password")
    link = flashed_link(client)
    db.session.add(LoginThrottle(key_hash=auth._code_key(uid), failures=auth.FREE_FAILURES + 1,
                                 blocked_until=auth.utcnow() + auth.MAX_BLOCK))
    db.session.commit()
    held = attacker.post(link, data={"code": staff.code(uid), "new": OWN_PASSWORD,
                                     "confirm": OWN_PASSWORD})
    assert held.status_code == 429


# ---------------------------------------------------------------------------------------------
# The first sign-in renews the Flask session


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_the_first_sign_in_link_renews_the_flask_session(app_factory) -> None:
    from auditlog.events import SYSTEM
    from portal.operations.setup import complete_setup
    from portal.security.accounts import create_account

    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
        user = create_account(db.session, "fresh", FIRST_PASSWORD, [("yanji", "case_officer")],
                              wrap_cost=COSTS["wrap_cost"], login_cost=COSTS["login_cost"],
                              actor=SYSTEM)
        db.session.commit()
        link = "/welcome/" + first_sign_in_token(user, app.config["SECRET_KEY"])
        db.session.remove()
    client = app.test_client()
    client.get("/staff/login?lang=en")
    before = csrf_token(client.get(link).get_data(as_text=True))
    done = client.post(link, data={"current": FIRST_PASSWORD, "new": OWN_PASSWORD,
                                   "confirm": OWN_PASSWORD, "csrf_token": before})
    assert done.status_code == 303, done.get_data(as_text=True)[:500]
    refused = client.post("/staff/login/enroll", data={"code": "123456", "csrf_token": before})
    assert refused.status_code == 400 and "This form has expired" in refused.get_data(
        as_text=True)
    page = client.get("/staff/login/enroll").get_data(as_text=True)
    assert csrf_token(page) != before
    assert "Scan" in page or "scan" in page  # the chosen language (en) survived


# ---------------------------------------------------------------------------------------------
# Known devices end with a password change, a reset and "sign out everywhere"


def hold_back(app, username: str) -> None:
    attacker = app.test_client()
    for _ in range(auth.FREE_FAILURES + 1):
        attacker.post("/staff/login", data={"username": username, "password": "guess"})


def known_browser(app, staff: Staff, username: str, uid: int, offset: int = 0):
    browser = app.test_client()
    assert browser.post("/staff/login", data={"username": username,
                                              "password": staff.PASSWORD}).status_code == 302
    assert browser.post("/staff/login/code", data={
        "code": staff.code(uid, offset)}).status_code == 302
    assert browser.get_cookie(DEVICE_COOKIE, path="/staff/login") is not None
    return browser


def passes(browser, username: str, password: str) -> bool:
    return browser.post("/staff/login", data={"username": username,
                                              "password": password}).status_code == 302


def test_a_known_device_is_forgotten_after_sign_out_everywhere(app, staff) -> None:
    uid = staff.create("everywhere")
    browser = known_browser(app, staff, "everywhere", uid, -1)
    other = known_browser(app, staff, "everywhere", uid, 0)
    hold_back(app, "everywhere")
    assert passes(browser, "everywhere", staff.PASSWORD)  # known: not held back
    browser.post("/staff/login/code", data={"code": staff.code(uid, 1)})
    assert browser.post("/staff/logout/everywhere").status_code == 302
    # Every browser of the account, the one that signed out everywhere as well, is a stranger
    # now: held back with everyone else.
    assert other.post("/staff/login", data={"username": "everywhere",
                                             "password": staff.PASSWORD}).status_code == 429
    assert browser.post("/staff/login", data={"username": "everywhere",
                                               "password": staff.PASSWORD}).status_code == 429


def test_a_known_device_is_forgotten_after_a_password_change(app, staff) -> None:
    uid = staff.create("changer")
    browser = known_browser(app, staff, "changer", uid)
    changed = browser.post("/staff/account", data={"current": staff.PASSWORD,
                                                   "new": OWN_PASSWORD, "confirm": OWN_PASSWORD})
    assert changed.status_code == 302
    hold_back(app, "changer")
    assert browser.post("/staff/login", data={"username": "changer",
                                              "password": OWN_PASSWORD}).status_code == 429


def test_a_known_device_is_forgotten_after_a_reset(app, staff) -> None:
    uid = staff.create("resetted")
    browser = known_browser(app, staff, "resetted", uid)
    client, _ = admin_client(app)
    client.post(f"/admin/users/{uid}/reset-password")
    link = flashed_link(client)
    db.session.get(User, uid).totp_last_step = None
    db.session.commit()
    done = app.test_client().post(link, data={"code": staff.code(uid, -1), "new": OWN_PASSWORD,
                                              "confirm": OWN_PASSWORD})
    assert done.status_code == 303
    hold_back(app, "resetted")
    assert browser.post("/staff/login", data={"username": "resetted",
                                              "password": OWN_PASSWORD}).status_code == 429


def test_a_known_device_cookie_cannot_be_carried_to_another_epoch(app, staff) -> None:
    """The tag is bound in the signed cookie: a cookie of the old format, or one whose tag is
    for another password, knows nobody."""
    uid = staff.create("tagged")
    user = db.session.get(User, uid)
    secret = app.config["SECRET_KEY"]
    value = auth.remember_device(secret, None, user)
    assert auth.read_known_device(secret, value).knows(user)
    auth.forget_devices(user)
    assert not auth.read_known_device(secret, value).knows(user)
    old_format = auth._device_serializer(secret).dumps({"d": "x", "u": [uid]})
    assert auth.read_known_device(secret, old_format) is None
