"""Staff sign-in: password (Argon2id), a second factor (TOTP or a one-time recovery code), and
throttling per account name that slows guessing without locking an officer out for long.

Each way of failing has its own exception, but every one that could tell an attacker whether an
account exists is answered alike by the views."""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO

import pyotp
import qrcode
import qrcode.image.svg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import LoginThrottle, RecoveryCode, User
from models.base import utcnow
from portal import crypto
from portal.audit import Actor, record
from portal.receipts import Argon2Cost


@functools.cache
def _hasher(cost: Argon2Cost) -> PasswordHasher:
    return PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib,
                          parallelism=cost.parallelism)


@functools.cache
def _dummy_hash(cost: Argon2Cost) -> str:
    """Verified against when the account does not exist, so both cost one Argon2id."""
    return _hasher(cost).hash("qingliu dummy password for timing")
FREE_FAILURES = 5
MAX_BLOCK = timedelta(minutes=15)
RECOVERY_CODES = 10
ISSUER = "Qingliu 清流"


class AuthenticationFailed(Exception):
    """Wrong name or password: deliberately the same for both."""


class Throttled(Exception):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"retry after {retry_after}")
        self.retry_after = retry_after


class SecondFactorFailed(Exception):
    """A wrong, expired or already used code."""


@dataclass(frozen=True)
class Enrollment:
    secret: str
    uri: str
    qr_svg_data_uri: str


def _name_hash(username: str) -> bytes:
    return hashlib.sha256(b"qingliu login " + username.strip().casefold().encode()).digest()


def _throttle(session: Session, username: str) -> LoginThrottle:
    key = _name_hash(username)
    row = session.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(name_hash=key, failures=0)
        session.add(row)
    return row


def check_password(session: Session, username: str, password: str, cost: Argon2Cost,
                   now: datetime | None = None) -> User:
    """The active user with this name and password, or AuthenticationFailed / Throttled.

    After FREE_FAILURES consecutive failures for a name, each further attempt waits twice as long
    as the last (30 s, 1 min, 2 min …), never more than 15 minutes: guessing is slowed to a few
    hundred tries a day while the real officer is never locked out for long."""
    now = now or utcnow()
    throttle = _throttle(session, username)
    if throttle.blocked_until and throttle.blocked_until > now:
        raise Throttled(throttle.blocked_until - now)
    user = session.scalar(select(User).where(User.username == username.strip()))
    try:
        _hasher(cost).verify(user.password_hash if user else _dummy_hash(cost), password)
        ok = user is not None and user.active
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        throttle.failures += 1
        extra = throttle.failures - FREE_FAILURES
        if extra > 0:
            throttle.blocked_until = now + min(timedelta(seconds=30 * 2 ** (extra - 1)),
                                               MAX_BLOCK)
        record(session, Actor("staff", user.id if user else None, None), "signin.failed",
               object_type="user", object_id=user.id if user else None)
        session.commit()
        raise AuthenticationFailed
    throttle.failures = 0
    throttle.blocked_until = None
    if _hasher(cost).check_needs_rehash(user.password_hash):
        user.password_hash = _hasher(cost).hash(password)
    return user


def hash_password(password: str, cost: Argon2Cost) -> str:
    return _hasher(cost).hash(password)


def _totp_key(secret_key: str) -> bytes:
    return crypto.server_key(secret_key, "totp secret")


def begin_enrollment(user: User, secret_key: str) -> Enrollment:
    """The TOTP secret being enrolled (sealed on the user until confirmed) and its QR code,
    drawn on the server as SVG so the page needs no JavaScript.

    A secret not yet confirmed is shown again rather than replaced: the person may already
    have scanned it, and a refresh or a mistyped code must not leave their app with a key the
    portal has forgotten."""
    if user.totp_secret is not None and user.totp_confirmed_at is None:
        secret = _secret_of(user, secret_key)
    else:
        secret = pyotp.random_base32(32)
        user.totp_secret = crypto.seal_symmetric(_totp_key(secret_key), secret.encode(),
                                                 str(user.id).encode())
        user.totp_confirmed_at = None
        user.totp_last_step = None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = BytesIO()
    image.save(buffer)
    data_uri = "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()
    return Enrollment(secret=secret, uri=uri, qr_svg_data_uri=data_uri)


def _secret_of(user: User, secret_key: str) -> str:
    if user.totp_secret is None:
        raise SecondFactorFailed
    return crypto.open_symmetric(_totp_key(secret_key), user.totp_secret,
                                 str(user.id).encode()).decode()


def verify_totp(user: User, code: str, secret_key: str, now: datetime | None = None) -> None:
    """Accept a code of the current 30-second step or its neighbours, once: the step is
    remembered, so a code (or an older one) cannot be replayed."""
    now = now or utcnow()
    code = "".join(c for c in code if c.isdigit())
    totp = pyotp.TOTP(_secret_of(user, secret_key))
    step_now = int(now.timestamp()) // totp.interval
    for step in (step_now - 1, step_now, step_now + 1):
        if secrets.compare_digest(totp.generate_otp(step), code.rjust(6, "x")):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                raise SecondFactorFailed
            user.totp_last_step = step
            return
    raise SecondFactorFailed


def confirm_enrollment(session: Session, user: User, code: str, secret_key: str,
                       now: datetime | None = None) -> list[str]:
    """Confirm the first code; return fresh one-time recovery codes, shown once."""
    verify_totp(user, code, secret_key, now)
    user.totp_confirmed_at = now or utcnow()
    codes = new_recovery_codes(session, user)
    record(session, Actor("staff", user.id, None), "second_factor.enrolled",
           object_type="user", object_id=user.id)
    return codes


def _code_hash(code: str) -> bytes:
    return hashlib.sha256("".join(code.split()).replace("-", "").upper().encode()).digest()


def new_recovery_codes(session: Session, user: User) -> list[str]:
    for old in session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id)):
        session.delete(old)
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(8)).decode()[:12]
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
        session.add(RecoveryCode(user_id=user.id, code_hash=_code_hash(codes[-1])))
    return codes


def use_recovery_code(session: Session, user: User, code: str, now: datetime | None = None
                      ) -> None:
    row = session.scalar(select(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _code_hash(code),
        RecoveryCode.used_at.is_(None)))
    if row is None:
        raise SecondFactorFailed
    row.used_at = now or utcnow()
    record(session, Actor("staff", user.id, None), "recovery_code.used", object_type="user",
           object_id=user.id)
