"""Administrators: their own home, accounts for every role (liaisons of receiving bodies too),
roles that fit the unit, a one-time first sign-in link, and the `flask users create` command."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import delete, func, select

from models import AuditEvent, LoginThrottle, Membership, User
from portal.security.auth import FREE_FAILURES, begin_enrollment
from portal.web.extensions import db
from tests.conftest import ADMIN_PASSWORD

NEW_PASSWORD = "a first password 2026"


def admin_client(app):
    admin = db.session.scalars(select(User).where(User.username == "admin")).one()
    secret = begin_enrollment(admin, app.config["SECRET_KEY"]).secret
    admin.totp_confirmed_at = admin.created_at
    db.session.commit()
    client = app.test_client()
    client.post("/staff/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    signed_in = client.post("/staff/login/code", data={"code": pyotp.TOTP(secret).now()})
    assert signed_in.status_code == 302
    return client, signed_in.location


def visible_text(html: str) -> str:
    """What a person reads: the page without tags, attributes or scripts."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def roles_of(username: str) -> set[tuple[str, str]]:
    user = db.session.scalars(select(User).where(User.username == username)).one()
    return {(m.unit.code, m.role) for m in db.session.scalars(
        select(Membership).where(Membership.user_id == user.id))}


def test_administrator_lands_on_their_home(app, portal_keys) -> None:
    client, landing = admin_client(app)
    assert landing.endswith("/admin")
    home = client.get("/admin?lang=en")
    text = visible_text(home.get_data(as_text=True))
    assert home.status_code == 200
    assert "1 active account, 0 deactivated" in text and "Administrator: 1" in text
    for link in ("/admin/users", "/admin/categories", "/admin/offences", "/admin/calendar"):
        assert f'href="{link}"' in home.get_data(as_text=True)
    assert "administrator" not in text  # the role in words, not its code


def test_sign_in_lands_where_each_role_works(app, staff) -> None:
    for name, unit, role, target in (("intake_x", "yanji", "intake_officer", "/staff/"),
                                     ("liaison_x", "psb_zhou", "liaison", "/liaison/"),
                                     ("auditor_x", "zhou", "auditor", "/audit/")):
        uid = staff.create(name, unit, role, grant=False)
        browser = app.test_client()
        browser.post("/staff/login", data={"username": name, "password": staff.PASSWORD})
        done = browser.post("/staff/login/code", data={"code": staff.code(uid)})
        assert done.location.endswith(target), (role, done.location)


def test_admin_creates_a_liaison_and_refuses_roles_that_do_not_fit(app, portal_keys) -> None:
    client, _ = admin_client(app)
    page = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert '<option value="liaison">Liaison</option>' in page
    assert "Receiving bodies (liaisons)" in page

    # A liaison of 延吉市 (a handling unit) makes no sense: a form error, the input kept.
    wrong = client.post("/admin/users?lang=en", data={
        "username": "police_wrong", "display_name": "Officer Pak", "password": NEW_PASSWORD,
        "unit": "yanji", "role": "liaison"})
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 400
    assert "A liaison belongs to a receiving body" in text
    assert 'value="police_wrong"' in text and 'value="Officer Pak"' in text
    assert '<option selected value="yanji">' in text or 'value="yanji" selected' in text
    # Nor is an intake officer of the public security bureau.
    wrong = client.post("/admin/users?lang=en", data={
        "username": "psb_officer", "password": NEW_PASSWORD, "unit": "psb_zhou",
        "role": "intake_officer"})
    assert wrong.status_code == 400 and "belong to a handling unit" in wrong.get_data(
        as_text=True)
    # An unknown unit or role is a form error too, never a 500.
    for data in ({"unit": "atlantis", "role": "head"}, {"unit": "yanji", "role": "king"}):
        refused = client.post("/admin/users", data={"username": "nobody",
                                                    "password": NEW_PASSWORD, **data})
        assert refused.status_code == 400
    assert db.session.scalar(select(func.count(User.id))) == 1

    made = client.post("/admin/users?lang=en", data={
        "username": "police", "display_name": "Liaison Choi", "password": NEW_PASSWORD,
        "unit": "psb_zhou", "role": "liaison"})
    assert made.status_code == 303
    assert roles_of("police") == {("psb_zhou", "liaison")}
    listing = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert "/welcome/" in listing  # the one-time link, shown once in the message
    text = visible_text(listing)
    assert "Liaison" in text and "psb_zhou" not in text and "(liaison)" not in text

    # The same name again is refused on the username field.
    again = client.post("/admin/users?lang=en", data={
        "username": "police", "password": NEW_PASSWORD, "unit": "psb_zhou", "role": "liaison"})
    assert again.status_code == 400 and "This username is taken." in again.get_data(
        as_text=True)


def test_an_administrator_never_also_holds_an_officer_role(app, staff) -> None:
    """Another administrator cannot make one an officer (their own account they cannot change
    at all: tests/functional/test_separation_of_duties.py)."""
    other = staff.create("admin_two", "zhou", "administrator", grant=False)
    client, _ = admin_client(app)
    client.post(f"/admin/users/{other}/membership?lang=en",
                data={"unit": "yanji", "role": "intake_officer"})
    assert roles_of("admin_two") == {("zhou", "administrator")}
    refused = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert "An administrator cannot also be an officer or a liaison" in refused


def test_first_sign_in_link_lets_the_newcomer_choose_a_password_once(app, portal_keys) -> None:
    client, _ = admin_client(app)
    client.post("/admin/users", data={"username": "newcomer", "password": NEW_PASSWORD,
                                      "unit": "yanji", "role": "case_officer"})
    listing = client.get("/admin/users").get_data(as_text=True)
    link = re.search(r"http://localhost(/welcome/[\w.-]+)", listing).group(1)
    newcomer = app.test_client()
    assert newcomer.get(link).status_code == 200
    wrong = newcomer.post(link, data={"current": "not the password", "new": "my own secret 2026",
                                      "confirm": "my own secret 2026"})
    assert wrong.status_code == 400
    # Guessing the first password here is throttled like the sign-in page.
    for _ in range(FREE_FAILURES + 1):
        last = newcomer.post(link, data={"current": "another guess", "new": "my own secret 2026",
                                         "confirm": "my own secret 2026"})
    assert last.status_code == 429
    db.session.execute(delete(LoginThrottle))
    db.session.commit()
    same = newcomer.post(link, data={"current": NEW_PASSWORD, "new": NEW_PASSWORD,
                                     "confirm": NEW_PASSWORD})
    assert same.status_code == 400
    done = newcomer.post(link, data={"current": NEW_PASSWORD, "new": "my own secret 2026",
                                     "confirm": "my own secret 2026"})
    assert done.status_code == 303 and done.location.endswith("/staff/login/enroll")
    assert newcomer.get("/staff/login/enroll").status_code == 200
    # The link is spent; the administrator's password no longer opens the account.
    assert app.test_client().get(link).status_code == 404
    old = app.test_client().post("/staff/login", data={"username": "newcomer",
                                                       "password": NEW_PASSWORD})
    assert old.status_code == 401
    fresh = app.test_client().post("/staff/login", data={"username": "newcomer",
                                                         "password": "my own secret 2026"})
    assert fresh.status_code == 302
    assert app.test_client().get("/welcome/forged.token").status_code == 404


# ---------------------------------------------------------------------------------------------
# flask users create


@pytest.fixture
def provision(runner, monkeypatch):
    def run(*args: str, password: str | None = NEW_PASSWORD):
        if password is None:
            monkeypatch.delenv("PORTAL_USER_PASSWORD", raising=False)
        else:
            monkeypatch.setenv("PORTAL_USER_PASSWORD", password)
        return runner.invoke(args=["users", "create", *args])

    return run


def test_cli_creates_a_liaison_and_prints_a_one_time_link(app, portal_keys, provision) -> None:
    result = provision("police", "--unit", "psb_zhou", "--role", "liaison",
                       "--base-url", "https://portal.test/")
    assert result.exit_code == 0, result.output
    assert roles_of("police") == {("psb_zhou", "liaison")}
    link = re.search(r"https://portal\.test(/welcome/\S+)", result.stdout).group(1)
    assert app.test_client().get(link).status_code == 200
    user = db.session.scalars(select(User).where(User.username == "police")).one()
    actions = list(db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "user", AuditEvent.object_id == user.id)))
    assert actions == ["user.created", "membership.added", "user.sign_in_link_issued"]
    # Several roles in one unit.
    both = provision("kim", "--unit", "yanji", "--role", "case_officer", "--role", "head")
    assert both.exit_code == 0, both.output
    assert roles_of("kim") == {("yanji", "case_officer"), ("yanji", "head")}


def test_cli_link_takes_the_address_from_the_environment(provision, portal_keys,
                                                         monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_BASE_URL", "https://jubao.example.test")
    result = provision("park", "--unit", "yanji", "--role", "intake_officer")
    assert result.exit_code == 0, result.output
    assert "https://jubao.example.test/welcome/" in result.stdout


@pytest.mark.parametrize(("args", "password", "says"), [
    (("x1", "--unit", "atlantis", "--role", "head"), NEW_PASSWORD, "unknown unit"),
    (("x2", "--unit", "yanji", "--role", "king"), NEW_PASSWORD, "unknown role"),
    (("x3", "--unit", "yanji", "--role", "liaison"), NEW_PASSWORD, "not a receiving body"),
    (("x4", "--unit", "psb_zhou", "--role", "head"), NEW_PASSWORD, "not a handling unit"),
    (("x5", "--unit", "zhou", "--role", "administrator", "--role", "head"), NEW_PASSWORD,
     "cannot also be an officer"),
    (("x6", "--unit", "yanji", "--role", "head"), "short", "too weak"),
    (("admin", "--unit", "yanji", "--role", "head"), NEW_PASSWORD, "is taken"),
    (("x7", "--unit", "yanji", "--role", "head"), None, "PORTAL_USER_PASSWORD"),
])
def test_cli_refusals_are_one_line_and_exit_2(app, portal_keys, provision, args, password,
                                              says) -> None:
    users_before = db.session.scalar(select(func.count(User.id)))
    result = provision(*args, password=password)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert db.session.scalar(select(func.count(User.id))) == users_before


def test_a_password_reset_is_completed_by_the_person_not_the_administrator(app, staff) -> None:
    """The administrator types no password and holds a link it cannot use: choosing the new
    password takes the person's second factor (more in test_separation_of_duties)."""
    uid = staff.create("forgetful", "yanji", "case_officer")
    client, _ = admin_client(app)
    reset = client.post(f"/admin/users/{uid}/reset-password?lang=en")
    assert reset.status_code == 303
    page = client.get("/admin/users?lang=en").get_data(as_text=True)
    link = re.search(r"http://localhost(/reset/[\w.-]+)", page).group(1)
    assert "which you do not have" in page
    assert client.post(link, data={"code": "", "new": "only I know this 2026",
                                   "confirm": "only I know this 2026"}).status_code == 400
    person = app.test_client()
    done = person.post(link, data={"code": staff.code(uid), "new": "only I know this 2026",
                                   "confirm": "only I know this 2026"})
    assert done.status_code == 303 and done.location.endswith("/staff/login")
    assert app.test_client().post("/staff/login", data={
        "username": "forgetful", "password": staff.PASSWORD}).status_code == 401
    assert app.test_client().post("/staff/login", data={
        "username": "forgetful", "password": "only I know this 2026"}).status_code == 302
    assert app.test_client().get(link).status_code == 404


def test_cli_asks_for_the_password_at_a_terminal(app, portal_keys, runner, monkeypatch) -> None:
    import portal.commands

    monkeypatch.delenv("PORTAL_USER_PASSWORD", raising=False)
    monkeypatch.setattr(portal.commands, "stdin_is_terminal", lambda: True)
    typed = f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    result = runner.invoke(args=["users", "create", "asked", "--unit", "psb_yanji",
                                 "--role", "liaison"], input=typed)
    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output  # hidden, never echoed
    assert roles_of("asked") == {("psb_yanji", "liaison")}


def test_each_accounts_role_list_offers_only_roles_that_fit(app, staff) -> None:
    """Another administrator's row offers no officer or liaison role; an officer's row no
    administrator role; one's own row nothing; the actions of each account fold into a
    "Change…" box."""
    staff.create("admin_two", "zhou", "administrator", grant=False)
    client, _ = admin_client(app)
    made = client.post("/admin/users?lang=en", data={
        "username": "officer_kim", "password": NEW_PASSWORD, "unit": "yanji",
        "role": "intake_officer"})
    assert made.status_code == 303
    page = client.get("/admin/users?lang=en").get_data(as_text=True)

    def offered(username: str) -> set[str]:
        user = db.session.scalars(select(User).where(User.username == username)).one()
        select_html = re.search(rf'<select id="role-{user.id}" name="role">(.*?)</select>',
                                page, re.S)
        assert select_html, username
        return set(re.findall(r'<option value="([a-z_]+)"', select_html.group(1)))

    assert offered("admin_two") == {"auditor", "administrator"}
    assert offered("officer_kim") == {"intake_officer", "case_officer", "head", "custodian",
                                      "liaison", "auditor"}
    own = db.session.scalars(select(User).where(User.username == "admin")).one()
    assert f'<select id="role-{own.id}"' not in page
    rows = page[page.index("<tbody>"):page.index("</tbody>")]
    assert rows.count('<details class="actions">') == 2
    assert rows.count("<summary>Change…</summary>") == 2
