"""Issue 9, finding 1: administrators cannot act as officers.

No one changes their own account from the administration side; a password reset by an
administrator can be completed only with the holder's second factor (or, when that is lost too,
after a second administrator confirms); the holder is told at the next sign-in who reset it; and
auditors read every account change in words."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import func, select

from auditlog.events import Actor
from models import AuditEvent, Membership, RecoveryCode, UnitKeyGrant, User
from portal.security.accounts import MAX_RESET_FAILURES, RoleRefused, assign_role, complete_reset
from portal.security.auth import new_recovery_codes
from portal.web.extensions import db
from tests.conftest import COSTS
from tests.functional.test_admin_users import admin_client, roles_of, visible_text

OWN_PASSWORD = "only I know this 2026"


def user_named(username: str) -> User:
    return db.session.scalars(select(User).where(User.username == username)).one()


def actions_on(user_id: int) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(
        AuditEvent.object_type == "user", AuditEvent.object_id == user_id)
        .order_by(AuditEvent.seq)))


def flashed_link(client, path: str = "/admin/users?lang=en") -> str | None:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r"http://localhost(/reset/[\w.-]+)", page)
    return found.group(1) if found else None


def second_admin(app, staff, name: str = "admin_two") -> tuple[object, int]:
    uid = staff.create(name, "zhou", "administrator", grant=False)
    db.session.get(User, uid).display_name = "Second Admin"
    db.session.commit()
    client = app.test_client()
    staff.login(client, name, uid)
    return client, uid


def sign_in(app, staff, username: str, password: str, uid: int, offset: int = 0):
    browser = app.test_client()
    first = browser.post("/staff/login", data={"username": username, "password": password})
    assert first.status_code == 302, first.status_code
    done = browser.post("/staff/login/code?lang=en", data={"code": staff.code(uid, offset)})
    assert done.status_code == 302, done.get_data(as_text=True)[:500]
    return browser, done.location


# ---------------------------------------------------------------------------------------------
# No one grants a role to themselves


def test_an_administrator_cannot_change_its_own_account(app, portal_keys) -> None:
    client, _ = admin_client(app)
    admin = user_named("admin")
    before = actions_on(admin.id)
    # A role that would otherwise fit an administrator (auditor) is refused too: it is their own.
    for action, data in (("membership", {"unit": "zhou", "role": "auditor"}),
                         ("membership", {"unit": "yanji", "role": "head"}),
                         ("deactivate", {}), ("reset-password", {})):
        refused = client.post(f"/admin/users/{admin.id}/{action}?lang=en", data=data)
        assert refused.status_code == 303, action
        page = visible_text(client.get("/admin/users?lang=en").get_data(as_text=True))
        assert "another administrator must do it" in page, action
    # Dropping the administrator role first, to take an officer's, is refused as well.
    own = db.session.scalars(select(Membership).where(Membership.user_id == admin.id)).one()
    client.post(f"/admin/users/{admin.id}/remove-membership",
                data={"membership_id": str(own.id)})
    assert roles_of("admin") == {("zhou", "administrator")}
    db.session.refresh(admin)
    assert admin.active and admin.reset_state is None
    assert actions_on(admin.id) == before  # nothing happened, so nothing was logged
    # Their own row offers no change at all.
    page = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert f'id="role-{admin.id}"' not in page
    assert "Another administrator changes your own account." in page


def test_assign_role_refuses_the_actor_itself(app, portal_keys) -> None:
    admin = user_named("admin")
    with pytest.raises(RoleRefused) as refused:
        assign_role(db.session, admin, "zhou", "auditor",  # type: ignore[arg-type]
                    actor=Actor("staff", admin.id, "administrator"))
    assert refused.value.code == "self_grant"


def test_another_administrator_still_cannot_make_an_administrator_an_officer(
        app, staff) -> None:
    other, _ = second_admin(app, staff)
    admin = user_named("admin")
    other.post(f"/admin/users/{admin.id}/membership?lang=en",
               data={"unit": "yanji", "role": "head"})
    assert roles_of("admin") == {("zhou", "administrator")}
    page = other.get("/admin/users?lang=en").get_data(as_text=True)
    assert "An administrator cannot also be an officer or a liaison" in page


# ---------------------------------------------------------------------------------------------
# A reset the administrator cannot complete


def test_the_administrator_cannot_complete_a_reset_without_the_officers_factor(
        app, staff) -> None:
    uid = staff.create("officer_li", "yanji", "case_officer")
    assert db.session.scalar(select(func.count()).select_from(UnitKeyGrant).where(
        UnitKeyGrant.user_id == uid, UnitKeyGrant.revoked_at.is_(None))) == 1
    officer_browser = app.test_client()
    staff.login(officer_browser, "officer_li", uid)
    client, _ = admin_client(app)
    page = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert 'name="password"' not in page.split('id="new-account"')[0]  # no password to type

    reset = client.post(f"/admin/users/{uid}/reset-password")
    assert reset.status_code == 303
    link = flashed_link(client)
    assert link
    # At once: the old password no longer opens the account, its sessions ended, keys revoked.
    assert app.test_client().post("/staff/login", data={
        "username": "officer_li", "password": staff.PASSWORD}).status_code == 401
    assert officer_browser.get("/staff/").status_code == 302
    assert db.session.scalar(select(func.count()).select_from(UnitKeyGrant).where(
        UnitKeyGrant.user_id == uid, UnitKeyGrant.revoked_at.is_(None))) == 0

    # The administrator, holding the link, has no code: nothing it can type completes it.
    form = client.get(link + "?lang=en").get_data(as_text=True)
    assert "A code from your authenticator app, or one of your recovery codes" in form
    for code in ("", "000000", "123456"):
        attempt = client.post(link + "?lang=en", data={"code": code, "new": OWN_PASSWORD,
                                                       "confirm": OWN_PASSWORD})
        assert attempt.status_code == 400
        assert "This code is wrong, expired or already used." in attempt.get_data(as_text=True)
    assert app.test_client().post("/staff/login", data={
        "username": "officer_li", "password": OWN_PASSWORD}).status_code == 401
    # An administrator cannot enrol a factor of its own on the account either: no sign-in.
    assert user_named("officer_li").totp_confirmed_at is not None

    # The officer, with the authenticator, completes it and chooses the password (a minute
    # after the sign-in above: its code is not replayed).
    db.session.get(User, uid).totp_last_step = None
    db.session.commit()
    person = app.test_client()
    done = person.post(link, data={"code": staff.code(uid, -1), "new": OWN_PASSWORD,
                                   "confirm": OWN_PASSWORD})
    assert done.status_code == 303 and done.location.endswith("/staff/login")
    assert app.test_client().get(link).status_code == 404  # once
    sign_in(app, staff, "officer_li", OWN_PASSWORD, uid)
    logged = actions_on(uid)
    assert logged[logged.index("password.reset_requested"):] == [
        "password.reset_requested", "user.sign_in_link_issued", "signin.failed",
        *["password.reset_code_failed"] * 3, "signin.failed", "password.reset_completed",
        "signin.succeeded"]


def test_wrong_codes_spend_the_link(app, staff) -> None:
    uid = staff.create("guessed", "yanji", "intake_officer")
    client, _ = admin_client(app)
    client.post(f"/admin/users/{uid}/reset-password")
    link = flashed_link(client)
    for _ in range(MAX_RESET_FAILURES - 1):
        assert client.post(link, data={"code": "111111", "new": OWN_PASSWORD,
                                       "confirm": OWN_PASSWORD}).status_code == 400
    last = client.post(link, data={"code": "111111", "new": OWN_PASSWORD,
                                   "confirm": OWN_PASSWORD})
    assert last.status_code == 404
    # Spent even for the right code: an administrator must start another reset.
    assert app.test_client().post(link, data={"code": staff.code(uid), "new": OWN_PASSWORD,
                                              "confirm": OWN_PASSWORD}).status_code == 404
    assert user_named("guessed").reset_state is None


def test_a_recovery_code_completes_a_reset_and_a_new_reset_spends_the_old_link(
        app, staff) -> None:
    uid = staff.create("phone_left_home", "yanji", "intake_officer")
    codes = new_recovery_codes(db.session, db.session.get(User, uid))
    db.session.commit()
    client, _ = admin_client(app)
    client.post(f"/admin/users/{uid}/reset-password")
    first = flashed_link(client)
    client.post(f"/admin/users/{uid}/reset-password")
    second = flashed_link(client)
    assert first != second
    assert app.test_client().get(first).status_code == 404
    # A weak password or differing ones cost no code.
    person = app.test_client()
    assert person.post(second, data={"code": codes[0], "new": "short", "confirm": "short"}
                       ).status_code == 400
    done = person.post(second, data={"code": codes[0], "new": OWN_PASSWORD,
                                     "confirm": OWN_PASSWORD})
    assert done.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == uid, RecoveryCode.used_at.is_not(None))) == 1


def test_the_reset_is_refused_for_a_forged_link_and_a_first_sign_in_link_dies(
        app, portal_keys) -> None:
    client, _ = admin_client(app)
    client.post("/admin/users", data={"username": "newcomer", "password": "first password 26",
                                      "unit": "yanji", "role": "case_officer"})
    welcome = re.search(r"http://localhost(/welcome/[\w.-]+)",
                        client.get("/admin/users").get_data(as_text=True)).group(1)
    uid = user_named("newcomer").id
    client.post(f"/admin/users/{uid}/reset-password")
    assert app.test_client().get(welcome).status_code == 404
    assert app.test_client().get("/reset/forged.token").status_code == 404


# ---------------------------------------------------------------------------------------------
# Lost second factor: two administrators


def test_a_lost_factor_reset_needs_a_second_administrator(app, staff) -> None:
    uid = staff.create("lost_everything", "yanji", "head")
    new_recovery_codes(db.session, db.session.get(User, uid))
    db.session.commit()
    client, _ = admin_client(app)
    asked = client.post(f"/admin/users/{uid}/reset-password?lang=en",
                        data={"factor_lost": "y"})
    assert asked.status_code == 303
    page = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert "/reset/" not in page  # no link from one administrator alone
    assert "another administrator must confirm the reset" in page
    assert "Password resets to confirm" in page
    assert f"/admin/users/{uid}/confirm-reset" not in page  # not offered to the initiator
    # The initiator confirming anyway is refused, in words.
    client.post(f"/admin/users/{uid}/confirm-reset?lang=en")
    page = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert "/reset/" not in page
    assert "The administrator who asked for a reset cannot confirm it" in page
    assert user_named("lost_everything").reset_state == "confirm"

    other, _ = second_admin(app, staff)
    home = other.get("/admin?lang=en").get_data(as_text=True)
    assert "Password resets to confirm" in home
    assert f"/admin/users/{uid}/confirm-reset" in home
    assert other.post(f"/admin/users/{uid}/confirm-reset").status_code == 303
    link = flashed_link(other)
    assert link
    # No code asked: both administrators said it is lost; the person sets a new factor after.
    form = other.get(link + "?lang=en").get_data(as_text=True)
    assert 'name="code"' not in form
    done = app.test_client().post(link, data={"new": OWN_PASSWORD, "confirm": OWN_PASSWORD})
    assert done.status_code == 303
    person = user_named("lost_everything")
    assert person.totp_confirmed_at is None and person.totp_secret is None
    assert db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == uid)) == 0
    browser = app.test_client()
    signed = browser.post("/staff/login", data={"username": "lost_everything",
                                                "password": OWN_PASSWORD})
    assert signed.location.endswith("/staff/login/enroll")
    logged = actions_on(uid)
    assert logged.index("password.reset_requested") < logged.index(
        "password.reset_confirmed") < logged.index("password.reset_completed")
    confirmed = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "password.reset_confirmed")).one()
    assert confirmed.actor_id == user_named("admin_two").id


# ---------------------------------------------------------------------------------------------
# The notice at the next sign-in


def test_the_reset_is_shown_once_at_the_next_sign_in(app, staff) -> None:
    uid = staff.create("told", "yanji", "case_officer")
    admin = user_named("admin")
    admin.display_name = "Administrator Jin"
    db.session.commit()
    client, _ = admin_client(app)
    client.post(f"/admin/users/{uid}/reset-password")
    link = flashed_link(client)
    completed = app.test_client().post(link, data={
        "code": staff.code(uid, -1), "new": OWN_PASSWORD, "confirm": OWN_PASSWORD})
    assert completed.status_code == 303
    browser, home = sign_in(app, staff, "told", OWN_PASSWORD, uid)
    text = visible_text(browser.get(home + "?lang=en").get_data(as_text=True))
    assert re.search(r"Your password was reset by Administrator Jin on \w+ \d+, \d{4}\. If you "
                     r"did not ask for this, tell your head at once\.", text), text[:600]
    again, home = sign_in(app, staff, "told", OWN_PASSWORD, uid, offset=1)
    assert "Your password was reset" not in visible_text(
        again.get(home + "?lang=en").get_data(as_text=True))


# ---------------------------------------------------------------------------------------------
# Auditors see account changes in words


def test_auditors_read_account_changes_in_words(app, staff) -> None:
    auditor = staff.create("auditor_wu", "zhou", "auditor", grant=False)
    client, _ = admin_client(app)
    admin = user_named("admin")
    admin.display_name = "Administrator Jin"
    db.session.commit()
    client.post("/admin/users", data={"username": "officer_new", "display_name": "Officer Pak",
                                      "password": "first password 26", "unit": "yanji",
                                      "role": "intake_officer"})
    new_id = user_named("officer_new").id
    client.post(f"/admin/users/{new_id}/membership", data={"unit": "yanji", "role": "head"})
    client.post(f"/admin/users/{new_id}/reset-password")
    granted = db.session.scalars(select(AuditEvent).where(
        AuditEvent.action == "membership.added", AuditEvent.object_id == new_id,
        AuditEvent.details.contains("head"))).one()
    assert (granted.actor_id, granted.role, granted.unit_code) == (admin.id, "administrator",
                                                                   "yanji")

    browser = app.test_client()
    staff.login(browser, "auditor_wu", auditor)
    page = browser.get("/audit/accounts?lang=en")
    assert page.status_code == 200
    text = visible_text(page.get_data(as_text=True))
    assert "Role given (Head, waiting for a second person" in text
    assert "Administrator Jin (Administrator)" in text and "Officer Pak" in text
    assert "Account created" in text and "Password reset requested by an administrator" in text
    assert "membership.added" not in text and "yanji" not in text  # words, not codes
    assert 'href="/audit/accounts"' in page.get_data(as_text=True)  # in the auditor's menu
    for bad in ("abc", "-1", "99999999999999999999"):
        assert browser.get(f"/audit/accounts?page={bad}").status_code == 200
    assert "None." in visible_text(browser.get("/audit/accounts?page=5&lang=en").get_data(
        as_text=True))
    # Not for the administrator.
    assert client.get("/audit/accounts").status_code == 403


def test_complete_reset_is_refused_when_no_reset_is_open(app, staff) -> None:
    from portal.security.accounts import ResetRefused

    uid = staff.create("untouched", "yanji", "case_officer")
    with pytest.raises(ResetRefused):
        complete_reset(db.session, db.session.get(User, uid), OWN_PASSWORD,
                       pyotp.TOTP(staff.secrets[uid]).now(),
                       secret_key=app.config["SECRET_KEY"], **COSTS)
