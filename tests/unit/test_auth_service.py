"""Staff sign-in as a service (portal/security/auth.py), without HTTP: the password and a second
factor, a recovery code in place of either the TOTP code or the throttle, the throttle itself,
and the API's one-request sign-in that tells a recovery code from a TOTP code by its length."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from auditlog.events import SYSTEM
from models import AuditEvent, RecoveryCode, User
from models.base import utcnow
from portal.security import auth
from portal.security.accounts import create_user
from portal.web.extensions import db
from tests.conftest import COSTS, FAST_ARGON2

PASSWORD = "officer password 2026"
SECRET_KEY = "test-secret-key-for-auth-service"


def _user(name: str = "officer", *, enrolled: bool = True) -> tuple[User, str]:
    """A new account; with `enrolled`, its TOTP secret (confirmed)."""
    user = create_user(db.session, name, PASSWORD, **COSTS, actor=SYSTEM)
    secret = ""
    if enrolled:
        secret = auth.begin_enrollment(user, SECRET_KEY).secret
        user.totp_confirmed_at = utcnow()
    db.session.commit()
    return user, secret


def _events(action: str, user_id: int) -> int:
    return db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action == action, AuditEvent.object_id == user_id)) or 0


def test_password_then_totp_signs_in_and_a_code_works_once(app) -> None:
    user, secret = _user()
    assert auth.check_password(db.session, "officer", PASSWORD, FAST_ARGON2).id == user.id
    code = pyotp.TOTP(secret).now()
    auth.check_second_factor(db.session, user, code, SECRET_KEY)
    db.session.commit()
    with pytest.raises(auth.SecondFactorFailed):  # replayed
        auth.check_second_factor(db.session, user, code, SECRET_KEY)


def test_wrong_password_and_unknown_name_fail_alike_and_are_logged(app) -> None:
    user, _ = _user()
    with pytest.raises(auth.AuthenticationFailed):
        auth.check_password(db.session, "officer", "not the password", FAST_ARGON2)
    with pytest.raises(auth.AuthenticationFailed):
        auth.check_password(db.session, "nobody", PASSWORD, FAST_ARGON2)
    assert _events("signin.failed", user.id) == 1


def test_a_deactivated_account_cannot_sign_in(app) -> None:
    user, _ = _user()
    user.active = False
    db.session.commit()
    with pytest.raises(auth.AuthenticationFailed):
        auth.check_password(db.session, "officer", PASSWORD, FAST_ARGON2)


def test_recovery_code_as_second_factor_is_used_up(app) -> None:
    user, _ = _user()
    codes = auth.new_recovery_codes(db.session, user)
    db.session.commit()
    auth.check_second_factor(db.session, user, codes[0], SECRET_KEY)
    db.session.commit()
    assert _events("recovery_code.used", user.id) == 1
    with pytest.raises(auth.SecondFactorFailed):
        auth.check_second_factor(db.session, user, codes[0], SECRET_KEY)


def test_wrong_passwords_are_throttled_after_the_free_ones(app) -> None:
    _user()
    now = utcnow()
    for _ in range(auth.FREE_FAILURES):
        with pytest.raises(auth.AuthenticationFailed):
            auth.check_password(db.session, "officer", "wrong", FAST_ARGON2, now)
    with pytest.raises(auth.AuthenticationFailed):  # the first one past: counted, then blocked
        auth.check_password(db.session, "officer", "wrong", FAST_ARGON2, now)
    with pytest.raises(auth.Throttled) as throttled:  # even the right password waits
        auth.check_password(db.session, "officer", PASSWORD, FAST_ARGON2,
                            now + timedelta(seconds=1))
    assert 0 < throttled.value.seconds <= auth.FIRST_BLOCK.total_seconds()
    # Once the wait is over the right password passes, and clears the count.
    later = now + auth.FIRST_BLOCK + timedelta(seconds=2)
    assert auth.check_password(db.session, "officer", PASSWORD, FAST_ARGON2, later)
    assert auth.check_password(db.session, "officer", PASSWORD, FAST_ARGON2, later)


def test_password_and_recovery_code_pass_the_throttle(app) -> None:
    user, _ = _user()
    codes = auth.new_recovery_codes(db.session, user)
    db.session.commit()
    now = utcnow()
    for _ in range(auth.FREE_FAILURES + 1):
        with pytest.raises(auth.AuthenticationFailed):
            auth.check_password(db.session, "officer", "wrong", FAST_ARGON2, now)
    with pytest.raises(auth.Throttled):
        auth.check_password(db.session, "officer", PASSWORD, FAST_ARGON2, now)
    signed_in = auth.check_password_and_recovery_code(db.session, "officer", PASSWORD,
                                                      codes[1], FAST_ARGON2, now)
    assert signed_in.id == user.id
    with pytest.raises(auth.AuthenticationFailed):  # the code is spent; a wrong half says nothing
        auth.check_password_and_recovery_code(db.session, "officer", PASSWORD, codes[1],
                                              FAST_ARGON2, now)


def test_wrong_totp_codes_are_throttled_per_account(app) -> None:
    user, secret = _user()
    now = utcnow()
    for _ in range(auth.FREE_FAILURES + 1):
        with pytest.raises(auth.SecondFactorFailed):
            auth.check_second_factor(db.session, user, "000000", SECRET_KEY, now)
    right = pyotp.TOTP(secret).at(now)
    with pytest.raises(auth.Throttled):
        auth.check_second_factor(db.session, user, right, SECRET_KEY, now)


@pytest.mark.parametrize(("code", "recovery"), [
    ("123456", False), ("123 456", False), ("ABCD-EFGH-JKLM", True), ("abcdefghjklm", True)])
def test_a_code_is_told_by_its_length(code: str, recovery: bool) -> None:
    assert auth.is_recovery_code(code) is recovery


def test_one_request_sign_in_with_totp(app) -> None:
    user, secret = _user()
    found = auth.check_password_and_code(db.session, "officer", PASSWORD,
                                         pyotp.TOTP(secret).now(), FAST_ARGON2, SECRET_KEY)
    assert found.id == user.id
    with pytest.raises(auth.SecondFactorFailed):
        auth.check_password_and_code(db.session, "officer", PASSWORD, "000000", FAST_ARGON2,
                                     SECRET_KEY)
    with pytest.raises(auth.AuthenticationFailed):
        auth.check_password_and_code(db.session, "officer", "wrong", pyotp.TOTP(secret).now(),
                                     FAST_ARGON2, SECRET_KEY)


def test_one_request_sign_in_with_a_recovery_code(app) -> None:
    user, _ = _user()
    codes = auth.new_recovery_codes(db.session, user)
    db.session.commit()
    found = auth.check_password_and_code(db.session, "officer", PASSWORD, codes[2],
                                         FAST_ARGON2, SECRET_KEY)
    assert found.id == user.id
    assert db.session.scalar(select(RecoveryCode.used_at).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_not(None))) is not None


def test_one_request_sign_in_needs_an_enrolled_authenticator(app) -> None:
    _user(enrolled=False)
    with pytest.raises(auth.SecondFactorFailed):
        auth.check_password_and_code(db.session, "officer", PASSWORD, "123456", FAST_ARGON2,
                                     SECRET_KEY)
