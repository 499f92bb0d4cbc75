"""Staff sign-in: Argon2id password, TOTP second factor (no replay), recovery codes,
throttling, revocable server-side sessions with idle and absolute timeouts."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from models import AuditEvent, LoginThrottle, StaffSession, User
from models.base import utcnow
from portal.security import auth
from portal.security.sessions import (
    IDLE_TIMEOUT,
    SessionInvalid,
    SessionStore,
    SqlBackend,
)
from portal.web.extensions import db
from portal.web.session import COOKIE
from tests.conftest import FAST_ARGON2, TEST_REDIS_URL


def cookie(client) -> str | None:
    found = client.get_cookie(COOKIE)
    return found.value if found else None


def test_unknown_user_and_wrong_password_get_the_same_answer(client, staff) -> None:
    staff.create("kim")
    wrong = client.post("/staff/login?lang=en", data={"username": "kim", "password": "nope"})
    unknown = client.post("/staff/login?lang=en", data={"username": "nobody", "password": "x"})
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda r: re.sub(r'name="csrf_token"[^>]*|value="[^"]*"', "", r.get_data(as_text=True))  # noqa: E731
    assert strip(wrong) == strip(unknown)
    assert "Wrong username or password." in wrong.get_data(as_text=True)


def test_throttling_slows_guessing_but_expires(app, staff) -> None:
    staff.create("lee")
    now = utcnow()
    for _ in range(auth.FREE_FAILURES):
        with pytest.raises(auth.AuthenticationFailed):
            auth.check_password(db.session, "lee", "guess", FAST_ARGON2, now)
    with pytest.raises(auth.AuthenticationFailed):
        auth.check_password(db.session, "lee", "guess", FAST_ARGON2, now)  # the 6th starts a block
    with pytest.raises(auth.Throttled) as blocked:
        auth.check_password(db.session, "lee", staff.PASSWORD, FAST_ARGON2,
                            now + timedelta(seconds=5))
    assert blocked.value.retry_after <= timedelta(seconds=30)
    # Even the right password waits; once the block has passed, it works again.
    user = auth.check_password(db.session, "lee", staff.PASSWORD, FAST_ARGON2,
                               now + timedelta(seconds=31))
    assert user.username == "lee"
    # Blocks grow but never beyond 15 minutes.
    later = now + timedelta(hours=1)
    for i in range(30):
        try:
            auth.check_password(db.session, "lee", "guess", FAST_ARGON2, later)
        except auth.Throttled as t:
            assert t.retry_after <= auth.MAX_BLOCK
            later += t.retry_after
        except auth.AuthenticationFailed:
            pass
        later += timedelta(seconds=1)
        assert i < 30
    # Names that do not exist are throttled identically (nothing tells them apart).
    for _ in range(auth.FREE_FAILURES + 1):
        with pytest.raises(auth.AuthenticationFailed):
            auth.check_password(db.session, "ghost", "guess", FAST_ARGON2, now)
    with pytest.raises(auth.Throttled):
        auth.check_password(db.session, "ghost", "guess", FAST_ARGON2, now)
    assert db.session.scalar(select(func.count()).select_from(LoginThrottle)) == 2


def test_web_throttle_answers_429(client, staff) -> None:
    staff.create("park")
    for _ in range(auth.FREE_FAILURES + 1):
        client.post("/staff/login", data={"username": "park", "password": "wrong"})
    blocked = client.post("/staff/login?lang=en", data={"username": "park",
                                                        "password": staff.PASSWORD})
    assert blocked.status_code == 429 and "Too many failed attempts" in blocked.get_data(
        as_text=True)


def test_sign_in_needs_the_second_factor_and_changes_the_session_id(client, staff) -> None:
    uid = staff.create("choi")
    client.post("/staff/login", data={"username": "choi", "password": staff.PASSWORD})
    pending = cookie(client)
    assert pending
    # Half-signed-in: the queue is closed.
    assert client.get("/staff/").status_code == 302
    wrong = client.post("/staff/login/code", data={"code": "000000"})
    assert wrong.status_code == 401
    ok = client.post("/staff/login/code", data={"code": staff.code(uid)})
    assert ok.status_code == 302 and ok.location.endswith("/staff/")
    assert cookie(client) and cookie(client) != pending
    assert client.get("/staff/").status_code == 200
    events = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert "signin.succeeded" in events


def test_a_used_totp_code_cannot_be_replayed(app, client, staff) -> None:
    uid = staff.create("han")
    code = staff.code(uid)
    user = db.session.get(User, uid)
    auth.verify_totp(user, code, app.config["SECRET_KEY"])
    with pytest.raises(auth.SecondFactorFailed):
        auth.verify_totp(user, code, app.config["SECRET_KEY"])
    # Through the pages too: a second sign-in with the same code fails.
    db.session.commit()
    client.post("/staff/login", data={"username": "han", "password": staff.PASSWORD})
    replay = client.post("/staff/login/code", data={"code": code})
    assert replay.status_code == 401
    # An older code (previous step) is refused as well once a newer one was used.
    previous = pyotp.TOTP(staff.secrets[uid]).at(utcnow().timestamp() - 30)
    with pytest.raises(auth.SecondFactorFailed):
        auth.verify_totp(user, previous, app.config["SECRET_KEY"])


def test_first_sign_in_enrolls_with_a_server_drawn_qr_code(client, staff) -> None:
    staff.create("yoon", enrolled=False)
    first = client.post("/staff/login", data={"username": "yoon", "password": staff.PASSWORD})
    assert first.location.endswith("/staff/login/enroll")
    page = client.get("/staff/login/enroll").get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in page and "<script" not in page
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    done = client.post("/staff/login/enroll", data={"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = re.findall(r"<code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code>",
                       done.get_data(as_text=True))
    assert len(codes) == auth.RECOVERY_CODES
    assert client.get("/staff/").status_code == 200
    # A recovery code signs in once.
    client.post("/staff/logout")
    client.post("/staff/login", data={"username": "yoon", "password": staff.PASSWORD})
    assert client.post("/staff/login/code", data={"code": codes[0]}).status_code == 302
    client.post("/staff/logout")
    client.post("/staff/login", data={"username": "yoon", "password": staff.PASSWORD})
    assert client.post("/staff/login/code", data={"code": codes[0]}).status_code == 401


def test_recovery_codes_page_has_no_language_link_that_loses_them(client, staff) -> None:
    """The codes are shown once, as the answer to the enrolment: a language link (a GET of the
    enrolment page, which has nothing left to show) would lose them for good."""
    staff.create("seo", enrolled=False)
    client.post("/staff/login?lang=ko", data={"username": "seo", "password": staff.PASSWORD})
    page = client.get("/staff/login/enroll").get_data(as_text=True)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    done = client.post("/staff/login/enroll", data={"code": pyotp.TOTP(secret).now()})
    shown = done.get_data(as_text=True)
    assert len(re.findall(r"<code>[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}</code>", shown)) == (
        auth.RECOVERY_CODES)
    assert "/staff/login/enroll?lang=" not in shown and "hreflang" not in shown


def test_logout_and_logout_everywhere_revoke_sessions(app, staff) -> None:
    uid = staff.create("jung")
    phone, desk = app.test_client(), app.test_client()
    staff.login(phone, "jung", uid)
    # A different code for the second sign-in (the first one is spent).
    desk.post("/staff/login", data={"username": "jung", "password": staff.PASSWORD})
    desk.post("/staff/login/code", data={"code": staff.code(uid, offset_steps=1)})
    assert phone.get("/staff/").status_code == 200 and desk.get("/staff/").status_code == 200
    phone.post("/staff/logout/everywhere")
    assert phone.get("/staff/").status_code == 302
    assert desk.get("/staff/").status_code == 302


def test_password_change_keeps_access_and_ends_other_sessions(app, client, staff) -> None:
    uid = staff.create("kang")
    tip = client.post("/api/v1/tips", json={"narrative": "kept after change", "county": "yanji"})
    assert tip.status_code == 201
    other = app.test_client()
    staff.login(client, "kang", uid)
    other.post("/staff/login", data={"username": "kang", "password": staff.PASSWORD})
    other.post("/staff/login/code", data={"code": staff.code(uid, offset_steps=1)})
    new_password = "a brand new password 2027"
    changed = client.post("/staff/account", data={"current": staff.PASSWORD, "new": new_password,
                                                  "confirm": new_password})
    assert changed.status_code == 302
    assert other.get("/staff/").status_code == 302  # ended
    assert b"kept after change" in client.get("/staff/tips/1").data  # this one goes on
    client.post("/staff/logout")
    staff.PASSWORD, old = new_password, staff.PASSWORD
    # Two codes were spent in this 30-second window; let a step pass before the next sign-in.
    user = db.session.get(User, uid)
    user.totp_last_step -= 2
    db.session.commit()
    try:
        client.post("/staff/login", data={"username": "kang", "password": new_password})
        assert client.post("/staff/login/code",
                           data={"code": staff.code(uid)}).status_code == 302
        assert b"kept after change" in client.get("/staff/tips/1").data
    finally:
        staff.PASSWORD = old


def test_idle_and_absolute_timeouts(app, staff) -> None:
    from portal.security.sessions import ABSOLUTE_TIMEOUT

    uid = staff.create("seo")
    store = SessionStore(SqlBackend(db.session))
    now = utcnow()
    opened = store.create(uid, "AGE-SECRET-KEY-1XYZ", now=now)  # type: ignore[arg-type]
    assert store.open(opened.token, now + IDLE_TIMEOUT / 2).user_id == uid
    with pytest.raises(SessionInvalid):
        store.open(opened.token, now + IDLE_TIMEOUT / 2 + IDLE_TIMEOUT + timedelta(seconds=1))
    kept_alive = store.create(uid, "AGE-SECRET-KEY-1XYZ", now=now)  # type: ignore[arg-type]
    moment = now
    while moment < now + ABSOLUTE_TIMEOUT - IDLE_TIMEOUT:
        moment += IDLE_TIMEOUT / 2
        store.open(kept_alive.token, moment)
    with pytest.raises(SessionInvalid):
        store.open(kept_alive.token, now + ABSOLUTE_TIMEOUT + timedelta(seconds=1))
    with pytest.raises(SessionInvalid):
        store.open("not-a-token")


def test_sessions_live_where_configured(app, client, staff) -> None:
    uid = staff.create("moon")
    staff.login(client, "moon", uid)
    rows = db.session.scalar(select(func.count()).select_from(StaffSession))
    if TEST_REDIS_URL:
        redis = app.extensions["redis"]
        keys = list(redis.scan_iter(app.config["SESSION_KEY_PREFIX"] + ":s:*"))
        assert keys and rows == 0
        # Nothing in Redis reveals the session id or the identity.
        token = cookie(client)
        for key in keys:
            assert token[:20].encode() not in redis.get(key)
            assert b"AGE-SECRET-KEY" not in redis.get(key)
    else:
        assert rows == 1
        row = db.session.scalars(select(StaffSession)).one()
        assert b"AGE-SECRET-KEY" not in row.sealed_identity


def test_the_key_being_enrolled_survives_a_refresh_and_a_wrong_code(client, staff) -> None:
    """A person scans the QR code, then refreshes or mistypes: the key in their app must still be
    the one the portal checks against (a new key on each render locked people out)."""
    staff.create("moon", enrolled=False)
    client.post("/staff/login", data={"username": "moon", "password": staff.PASSWORD})

    def secret_on_page(response) -> str:
        return re.search(r'data-testid="totp-secret">([A-Z2-7]+)<',
                         response.get_data(as_text=True)).group(1)

    scanned = secret_on_page(client.get("/staff/login/enroll"))
    assert secret_on_page(client.get("/staff/login/enroll")) == scanned
    wrong = client.post("/staff/login/enroll", data={"code": "000000"})
    assert wrong.status_code == 401 and secret_on_page(wrong) == scanned
    done = client.post("/staff/login/enroll", data={"code": pyotp.TOTP(scanned).now()})
    assert done.status_code == 200 and client.get("/staff/").status_code == 200
