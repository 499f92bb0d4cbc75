"""Issue 9: the second factor cannot be guessed without limit, one address cannot spray sign-ins,
nobody can lock an officer out, counting survives parallel requests, and signing in renews the
Flask session (a CSRF token from before is worthless after)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

import flask_migrate
import pyotp
import pytest
from sqlalchemy import MetaData, select

from models import LoginThrottle, User
from models.base import utcnow
from portal.security import auth
from portal.web.extensions import db
from portal.web.staff.views import DEVICE_COOKIE
from tests.conftest import FAST_ARGON2
from tests.test_migrations import database_at


def token_request(client, username: str, password: str, otp: str):
    return client.post("/api/v1/staff/token", json={"username": username, "password": password,
                                                    "otp": otp})


def wrong_code(right: str) -> str:
    return "000000" if right != "000000" else "111111"


# ---------------------------------------------------------------------------------------------
# Wrong codes: counted apart, not reset by a right password


def test_wrong_codes_on_the_code_page_lead_to_429_even_after_a_new_right_password(
        client, staff) -> None:
    uid = staff.create("ahn")
    client.post("/staff/login", data={"username": "ahn", "password": staff.PASSWORD})
    bad = wrong_code(staff.code(uid))
    answers = [client.post("/staff/login/code?lang=en", data={"code": bad}).status_code
               for _ in range(auth.FREE_FAILURES + 1)]
    assert answers == [401] * (auth.FREE_FAILURES + 1)
    blocked = client.post("/staff/login/code?lang=en", data={"code": bad})
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 30
    page = blocked.get_data(as_text=True)
    assert "Too many wrong codes for this account" in page and "recovery code" in page
    # Even the right code waits now; and signing in with the right password again clears nothing.
    assert client.post("/staff/login/code", data={"code": staff.code(uid)}).status_code == 429
    fresh = staff.app.test_client()
    assert fresh.post("/staff/login", data={"username": "ahn",
                                            "password": staff.PASSWORD}).status_code == 302
    assert fresh.post("/staff/login/code", data={"code": staff.code(uid)}).status_code == 429


def test_api_right_password_with_wrong_codes_leads_to_429_with_retry_after(client,
                                                                           staff) -> None:
    uid = staff.create("bae")
    bad = wrong_code(staff.code(uid))
    answers = [token_request(client, "bae", staff.PASSWORD, bad).status_code
               for _ in range(auth.FREE_FAILURES + 1)]
    assert answers == [401] * (auth.FREE_FAILURES + 1)
    blocked = token_request(client, "bae", staff.PASSWORD, staff.code(uid))
    assert blocked.status_code == 429
    body = blocked.get_json()
    assert body["retry_after"] == int(blocked.headers["Retry-After"]) and body["error"]


def test_a_right_code_resets_the_code_count(app, staff) -> None:
    uid = staff.create("cha")
    user = db.session.get(User, uid)
    secret = staff.secrets[uid]
    now = utcnow()
    for _ in range(auth.FREE_FAILURES - 1):
        with pytest.raises(auth.SecondFactorFailed):
            auth.check_second_factor(db.session, user, wrong_code(pyotp.TOTP(secret).at(now)),
                                     app.config["SECRET_KEY"], now)
    auth.check_second_factor(db.session, user, pyotp.TOTP(secret).at(now),
                             app.config["SECRET_KEY"], now)
    db.session.commit()
    # The count starts again: FREE_FAILURES more wrong codes are checked before any block.
    later = now + timedelta(seconds=60)
    for _ in range(auth.FREE_FAILURES + 1):
        with pytest.raises(auth.SecondFactorFailed):
            auth.check_second_factor(db.session, user, wrong_code(pyotp.TOTP(secret).at(later)),
                                     app.config["SECRET_KEY"], later)
    with pytest.raises(auth.Throttled):
        auth.check_second_factor(db.session, user, "123456", app.config["SECRET_KEY"], later)


def wrong_codes_checked_in(app, user: User, hours: int) -> list[int]:
    """An attacker who knows the password and sends a wrong TOTP code at every moment the
    throttle allows, the clock moved rather than slept; codes checked in each hour."""
    start = now = utcnow()
    per_hour = [0] * hours
    end = start + timedelta(hours=hours)
    while now < end:
        try:
            auth.check_second_factor(db.session, user, "000000", app.config["SECRET_KEY"], now)
        except auth.SecondFactorFailed:
            per_hour[int((now - start).total_seconds() // 3600)] += 1
            now += timedelta(milliseconds=10)  # as fast as the network allows
        except auth.Throttled as throttled:
            now += throttled.retry_after
    return per_hour


def test_wrong_totp_codes_checked_per_hour_per_account_is_a_few(app, staff) -> None:
    user = db.session.get(User, staff.create("dong"))
    user.totp_last_step = 2**31 - 1  # no code can succeed: every one checked is a wrong guess
    db.session.commit()
    per_hour = wrong_codes_checked_in(app, user, hours=24)
    # 5 free, then 30 s, 1, 2, 4, 8 minutes, then one every 15 minutes.
    assert per_hour[0] == 13 and set(per_hour[1:]) == {4}
    print(f"\nwrong TOTP codes checked per account: first hour {per_hour[0]}, then "
          f"{per_hour[1]} an hour, {sum(per_hour)} in 24 hours")


# ---------------------------------------------------------------------------------------------
# Nobody locks an officer out


def test_a_known_browser_passes_while_the_account_is_held_back(app, staff) -> None:
    uid = staff.create("eom")
    officer, attacker = app.test_client(), app.test_client()
    staff.login(officer, "eom", uid)
    assert officer.get_cookie(DEVICE_COOKIE, path="/staff/login") is not None
    officer.post("/staff/logout")
    for _ in range(auth.FREE_FAILURES + 1):
        attacker.post("/staff/login", data={"username": "eom", "password": "guess"})
    assert attacker.post("/staff/login", data={"username": "eom", "password": staff.PASSWORD}
                         ).status_code == 429
    # The officer's browser is held back only by its own failures.
    assert officer.post("/staff/login", data={"username": "eom", "password": staff.PASSWORD}
                        ).status_code == 302
    assert officer.post("/staff/login/code", data={
        "code": staff.code(uid, offset_steps=1)}).status_code == 302
    officer.post("/staff/logout")
    for _ in range(auth.FREE_FAILURES + 1):
        assert officer.post("/staff/login", data={"username": "eom", "password": "typo"}
                            ).status_code == 401
    assert officer.post("/staff/login", data={"username": "eom", "password": staff.PASSWORD}
                        ).status_code == 429
    # A forged or foreign cookie is no known device.
    stranger = app.test_client()
    stranger.set_cookie(DEVICE_COOKIE, "eyJkIjoieCIsInUiOlsxXX0.forged", path="/staff/login")
    assert stranger.post("/staff/login", data={"username": "eom", "password": staff.PASSWORD}
                         ).status_code == 429


def test_a_known_browser_passes_while_wrong_codes_hold_the_account_back(app, staff) -> None:
    uid = staff.create("gil")
    officer, attacker = app.test_client(), app.test_client()
    staff.login(officer, "gil", uid)
    attacker.post("/staff/login", data={"username": "gil", "password": staff.PASSWORD})
    for _ in range(auth.FREE_FAILURES + 1):
        attacker.post("/staff/login/code", data={"code": wrong_code(staff.code(uid))})
    assert attacker.post("/staff/login/code", data={"code": "123456"}).status_code == 429
    officer.post("/staff/logout")
    officer.post("/staff/login", data={"username": "gil", "password": staff.PASSWORD})
    assert officer.post("/staff/login/code", data={
        "code": staff.code(uid, offset_steps=1)}).status_code == 302


def enrolled_with_recovery_codes(client, staff, name: str) -> list[str]:
    staff.create(name, enrolled=False)
    client.post("/staff/login", data={"username": name, "password": staff.PASSWORD})
    page = client.get("/staff/login/enroll").get_data(as_text=True)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    done = client.post("/staff/login/enroll", data={"code": pyotp.TOTP(secret).now()})
    client.post("/staff/logout")
    return re.findall(r"<code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code>",
                      done.get_data(as_text=True))


def test_password_and_recovery_code_pass_while_the_account_is_held_back(app, staff) -> None:
    officer = app.test_client()
    codes = enrolled_with_recovery_codes(officer, staff, "hong")
    attacker = app.test_client()
    for _ in range(auth.FREE_FAILURES + 1):
        attacker.post("/staff/login", data={"username": "hong", "password": "guess"})
    held = app.test_client()  # a browser the account does not know
    blocked = held.post("/staff/login?lang=en", data={"username": "hong",
                                                      "password": staff.PASSWORD})
    assert blocked.status_code == 429 and 'name="recovery_code"' in blocked.get_data(as_text=True)
    # A wrong half gets the same answer whichever half it is, and is never throttled.
    for password, code in (("guess", codes[0]), (staff.PASSWORD, "AAAA-BBBB-CCCC")) * 4:
        wrong = held.post("/staff/login?lang=en", data={"username": "hong", "password": password,
                                                        "recovery_code": code})
        assert wrong.status_code == 401
        assert "Wrong username, password or recovery code." in wrong.get_data(as_text=True)
    passed = held.post("/staff/login", data={"username": "hong", "password": staff.PASSWORD,
                                             "recovery_code": codes[0]})
    assert passed.status_code == 302 and held.get("/staff/").status_code == 200
    # The API: a recovery code in `otp` passes the same way, once.
    token = token_request(app.test_client(), "hong", staff.PASSWORD, codes[1])
    assert token.status_code == 201
    assert token_request(app.test_client(), "hong", staff.PASSWORD, codes[1]).status_code == 401


# ---------------------------------------------------------------------------------------------
# One budget per address over every staff sign-in door, keyed without the address


def test_one_address_has_one_budget_over_every_staff_sign_in(app_factory) -> None:
    app = app_factory(STAFF_SIGNIN_RATE_LIMIT="4 per minute")
    client = app.test_client()
    with app.app_context():
        answers = [
            client.post("/staff/login", data={"username": "a", "password": "b"}).status_code,
            client.post("/api/v1/staff/token", json={"username": "c", "password": "d",
                                                     "otp": "1"}).status_code,
            client.post("/api/v1/liaison/token", json={"username": "e", "password": "f",
                                                       "otp": "1"}).status_code,
            client.post("/staff/login/code", data={"code": "1"}).status_code,
            client.post("/staff/login", data={"username": "g", "password": "h"}).status_code,
            client.post("/api/v1/liaison/token", json={}).status_code,
        ]
        assert answers == [401, 401, 401, 302, 429, 429]
        assert client.get("/staff/login").status_code == 200  # reading the page costs nothing
        assert "connection" in client.post("/staff/login?lang=en", data={}).get_data(
            as_text=True)
        other = app.test_client()
        assert other.post("/staff/login", data={"username": "a", "password": "b"},
                          environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 401
        storage = app.extensions["rate_limiter"].storage
        if app.config["RATELIMIT_STORAGE_URI"].startswith("redis"):
            keys = [k.decode() for k in storage.storage.scan_iter("*")]
        else:
            keys = list(storage.storage.keys())
        assert any("staff-signin" in key for key in keys), keys
        assert not any("127.0.0.1" in key or "192.0.2.7" in key for key in keys)


# ---------------------------------------------------------------------------------------------
# Parallel requests and odd input: never a 500


def test_eight_parallel_token_requests_never_answer_5xx(app, staff) -> None:
    """On SQLite (the default) these gave "database is locked" and UNIQUE races on the throttle."""
    uid = staff.create("jin")
    db.session.remove()
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def sign_in(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        password = staff.PASSWORD if n % 2 else "wrong"
        response = client.post("/api/v1/staff/token", json={
            "username": "jin" if n < 6 else f"nobody{n}", "password": password,
            "otp": staff.code(uid, offset_steps=n % 3 - 1)})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=sign_in, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 8 and all(status < 500 for status in statuses), statuses
    assert 201 in statuses
    # Each wrong attempt was counted once under its key (none lost to a race).
    for name in ("nobody6", "nobody7"):
        assert db.session.scalar(select(LoginThrottle.failures).where(
            LoginThrottle.key_hash == auth._name_hash(name))) == 1


def test_odd_token_bodies_are_400_or_401_in_words(client, staff) -> None:
    staff.create("kwon")
    for body in ("[1, 2]", '"text"', "3", "null"):
        answer = client.post("/api/v1/staff/token?lang=en", data=body,
                             content_type="application/json")
        assert answer.status_code == 400
        assert "JSON object" in answer.get_json()["error"]
    # A lone surrogate in a name hashes like any name (that no account has).
    assert auth._name_hash("a\ud800") != auth._name_hash("a")
    with pytest.raises(auth.AuthenticationFailed):
        auth.check_password(db.session, "a\ud800", "pass\udfff", FAST_ARGON2)
    answer = client.post("/api/v1/staff/token", data='{"username": "a\\ud800", "password": "x",'
                         ' "otp": "1"}', content_type="application/json")
    assert answer.status_code in (400, 401)


# ---------------------------------------------------------------------------------------------
# The Flask session is renewed at sign-in and sign-out


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_a_csrf_token_from_before_sign_in_is_not_valid_after(app_factory) -> None:
    from portal.operations.setup import complete_setup
    from tests.conftest import ADMIN_PASSWORD, COSTS, Staff

    app = app_factory(WTF_CSRF_ENABLED=True)
    # No app context stays pushed: each request has its own, as in production.
    with app.app_context():
        staff = Staff(app, dict(complete_setup(db.session, "admin", ADMIN_PASSWORD,
                                               **COSTS).recovery))
        uid = staff.create("lim")
        db.session.remove()
    client = app.test_client()
    client.get("/staff/login?lang=en")  # the language chosen survives the renewal
    before = csrf_token(client.get("/staff/login").get_data(as_text=True))
    assert client.post("/staff/login", data={"username": "lim", "password": staff.PASSWORD,
                                             "csrf_token": before}).status_code == 302
    # The code page already carries a new token; the old one is refused there …
    refused = client.post("/staff/login/code", data={"code": staff.code(uid),
                                                      "csrf_token": before})
    assert refused.status_code == 400 and "This form has expired" in refused.get_data(
        as_text=True)
    middle = csrf_token(client.get("/staff/login/code").get_data(as_text=True))
    assert middle != before
    assert client.post("/staff/login/code", data={"code": staff.code(uid),
                                                  "csrf_token": middle}).status_code == 302
    # … and after sign-in neither token from before works.
    page = client.get("/staff/account").get_data(as_text=True)
    after = csrf_token(page)
    assert after not in (before, middle) and 'lang="en"' in page
    for old in (before, middle):
        assert client.post("/staff/logout", data={"csrf_token": old}).status_code == 400
    assert client.post("/staff/logout", data={"csrf_token": after}).status_code == 302
    # Sign-out renews it too.
    again = csrf_token(client.get("/staff/login").get_data(as_text=True))
    assert again != after



# ---------------------------------------------------------------------------------------------
# The migration keeps the counts in force


def test_migration_renames_the_throttle_key_and_keeps_the_rows(tmp_path: Path) -> None:
    until = utcnow() + timedelta(minutes=5)
    with database_at(tmp_path, f"sqlite:///{tmp_path / 'throttle.sqlite3'}",
                     "a81e00000004") as metadata:
        with db.engine.begin() as conn:
            conn.execute(metadata.tables["login_throttles"].insert().values(
                name_hash=auth._name_hash("park"), failures=7, blocked_until=until))
        flask_migrate.upgrade(revision="a81e00000005")
        row = db.session.get(LoginThrottle, auth._name_hash("park"))
        assert row.failures == 7 and row.blocked_until == until
        db.session.remove()
        flask_migrate.upgrade()  # the code reads accounts as the latest models have them
        with pytest.raises(auth.Throttled):
            auth.check_password(db.session, "park", "x", FAST_ARGON2)
        db.session.remove()
        flask_migrate.downgrade(revision="a81e00000004")
        metadata = MetaData()
        metadata.reflect(db.engine)
        assert "name_hash" in metadata.tables["login_throttles"].c
