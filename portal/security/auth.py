"""Staff sign-in: password (Argon2id), a second factor (TOTP or a one-time recovery code), and
throttles that slow guessing without letting anyone lock an officer out.

Three counts, each a row of `login_throttles` under a hashed key, and none resetting another:
wrong passwords per account name, wrong TOTP codes per account (a right password does not clear
them), and a known device's own failures. After FREE_FAILURES each further attempt waits twice as
long as the last (30 s, 1 min … never more than 15 minutes). An attempt is counted before it is
checked, in a short transaction of its own, so parallel requests cannot all slip through the free
ones. What proves more than the throttled step still passes: a browser that has signed in to the
account before (a signed "known device" cookie) is held back only by its own failures, and a
password together with a recovery code (60 random bits, one use) is never held back.

Each way of failing has its own exception, but every one that could tell an attacker whether an
account exists is answered alike by the views."""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from typing import TypeGuard, TypeVar

import pyotp
import qrcode
import qrcode.image.svg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from auditlog.events import Actor, record
from models import LoginThrottle, RecoveryCode, User
from models.base import table_of, utcnow
from portal.intake.receipts import Argon2Cost
from portal.security import crypto

T = TypeVar("T")
_THROTTLE = table_of(LoginThrottle)


@functools.cache
def _hasher(cost: Argon2Cost) -> PasswordHasher:
    return PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib,
                          parallelism=cost.parallelism)


@functools.cache
def _dummy_hash(cost: Argon2Cost) -> str:
    """Verified against when the account does not exist, so both cost one Argon2id."""
    return _hasher(cost).hash("qingliu dummy password for timing")


FREE_FAILURES = 5
FIRST_BLOCK = timedelta(seconds=30)
MAX_BLOCK = timedelta(minutes=15)
RECOVERY_CODES = 10
ISSUER = "Qingliu 清流"
# A browser stays a known device of an account for this long after its last sign-in there.
KNOWN_DEVICE_LIFETIME = timedelta(days=90)
KNOWN_DEVICE_ACCOUNTS = 5  # accounts remembered per browser (a shared office computer)


class AuthenticationFailed(Exception):
    """Wrong name or password: deliberately the same for both."""


class Throttled(Exception):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"retry after {retry_after}")
        self.retry_after = retry_after

    @property
    def seconds(self) -> int:
        """Whole seconds to wait, rounded up (for Retry-After)."""
        return max(1, int(-(-self.retry_after.total_seconds() // 1)))


class SecondFactorFailed(Exception):
    """A wrong, expired or already used code."""


@dataclass(frozen=True)
class Enrollment:
    secret: str
    uri: str
    qr_svg_data_uri: str


def device_tag(device_id: str, user: User) -> str:
    """What binds a browser's known-device standing to the account as it is now: the password
    hash (a change or a reset replaces it) and the account's device epoch ("sign out
    everywhere" raises it). The cookie carrying it is signed, so it cannot be made up."""
    text = f"qingliu device tag {device_id} {user.id} {user.device_epoch or 0} {user.password_hash}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class KnownDevice:
    """A browser that has completed a sign-in: a random id and the accounts it signed in to,
    each with the device tag of the account at that time."""

    id: str
    accounts: tuple[tuple[int, str], ...]

    @property
    def user_ids(self) -> tuple[int, ...]:
        return tuple(user_id for user_id, _ in self.accounts)

    def knows(self, user: User | None) -> bool:
        """Whether this browser signed in to the account since its password last changed and
        since its holder last signed out everywhere."""
        if user is None:
            return False
        tag = device_tag(self.id, user)
        return any(user_id == user.id and secrets.compare_digest(seen, tag)
                   for user_id, seen in self.accounts)


def forget_devices(user: User) -> None:
    """No browser is a known device of this account any more ("sign out everywhere"). The
    caller commits."""
    user.device_epoch = (user.device_epoch or 0) + 1


# ---------------------------------------------------------------------------------------------
# Throttles


def _hash(label: str, text: str) -> bytes:
    # "surrogatepass": a lone surrogate in a name is still a name (that no account has), not a 500.
    return hashlib.sha256(f"qingliu {label} {text}".encode("utf-8", "surrogatepass")).digest()


def _name_hash(username: str) -> bytes:
    return _hash("login", username.strip().casefold())


def _code_key(user_id: int) -> bytes:
    return _hash("second factor", str(user_id))


def _device_key(device: KnownDevice, user_id: int, step: str) -> bytes:
    return _hash("device", f"{device.id} {user_id} {step}")


def _delay(failures: int) -> timedelta | None:
    extra = failures - FREE_FAILURES
    if extra <= 0:
        return None
    return min(FIRST_BLOCK * 2 ** min(extra - 1, 16), MAX_BLOCK)


def _insert_throttle(session: Session, key: bytes) -> None:
    """The key's row, created if missing; two requests creating it at once both succeed."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(LoginThrottle).values(key_hash=key, failures=0)
                    .on_conflict_do_nothing(index_elements=["key_hash"]))


def _retrying(session: Session, work: Callable[[], T]) -> T:
    """`work` in a short transaction of its own, committed; tried again when SQLite reports the
    database locked by another writer (or a rare race on the row), instead of answering 500."""
    for attempt in range(4):
        try:
            result = work()
            session.commit()
            return result
        except (OperationalError, IntegrityError) as error:
            session.rollback()
            if attempt == 3 or (isinstance(error, OperationalError)
                                and "locked" not in str(error.orig)):
                raise
            time.sleep(0.05 * 2 ** attempt)
    raise AssertionError("unreachable")


def _count_attempt(session: Session, key: bytes, now: datetime) -> None:
    """Count this attempt as a failure before it is checked (a right one clears the count
    afterwards), or raise Throttled while the key is blocked. Committed at once."""

    def work() -> timedelta | None:
        _insert_throttle(session, key)
        row = _THROTTLE.c
        failures = session.execute(
            update(_THROTTLE)
            .where(row.key_hash == key, or_(row.blocked_until.is_(None), row.blocked_until <= now))
            .values(failures=row.failures + 1).returning(row.failures)).scalar()
        if failures is None:  # blocked: the attempt is not checked, nor counted
            until = session.scalar(select(row.blocked_until).where(row.key_hash == key))
            return (until - now) if until and until > now else timedelta(seconds=1)
        delay = _delay(failures)
        if delay is not None:
            # The row stays locked until commit, so a parallel attempt waits and then sees this.
            session.execute(update(_THROTTLE).where(row.key_hash == key)
                            .values(blocked_until=now + delay))
        return None

    blocked = _retrying(session, work)
    if blocked is not None:
        raise Throttled(blocked)


def _clear(session: Session, key: bytes) -> None:
    row = _THROTTLE.c
    session.execute(update(_THROTTLE)
                    .where(row.key_hash == key, row.failures > 0)
                    .values(failures=0, blocked_until=None))


def _password_key(username: str, user: User | None, device: KnownDevice | None) -> bytes:
    if device is not None and user is not None and device.knows(user):
        return _device_key(device, user.id, "password")
    return _name_hash(username)


def _user_named(session: Session, username: str) -> User | None:
    name = username.strip()
    try:
        name.encode()
    except UnicodeEncodeError:  # a lone surrogate: no account's name, nor one a database takes
        return None
    return session.scalar(select(User).where(User.username == name))


def _password_matches(user: User | None, password: str, cost: Argon2Cost) -> TypeGuard[User]:
    """Whether this is an active account with this password (True says the user exists)."""
    try:
        _hasher(cost).verify(user.password_hash if user else _dummy_hash(cost),
                             password.encode("utf-8", "surrogatepass"))
    except (VerificationError, InvalidHashError):
        return False
    return user is not None and user.active


def _failed(session: Session, user: User | None) -> None:
    user_id = user.id if user else None
    _retrying(session, lambda: record(session, Actor("staff", user_id, None), "signin.failed",
                                      object_type="user", object_id=user_id))


def _passed(session: Session, user: User, password: str, cost: Argon2Cost,
            *keys: bytes) -> None:
    """Clear the counts the sign-in proved wrong; rehash an outdated password hash."""
    rehashed = (_hasher(cost).hash(password) if _hasher(cost).check_needs_rehash(
        user.password_hash) else None)

    def work() -> None:
        if rehashed:
            user.password_hash = rehashed
        for key in keys:
            _clear(session, key)

    _retrying(session, work)


def check_password(session: Session, username: str, password: str, cost: Argon2Cost,
                   now: datetime | None = None, *, device: KnownDevice | None = None) -> User:
    """The active user with this name and password, or AuthenticationFailed / Throttled.

    Counted per account name (existing or not, so the answer reveals nothing), or, from a known
    device of this account, per that device alone. Commits its counts itself."""
    now = now or utcnow()
    user = _user_named(session, username)
    key = _password_key(username, user, device)
    _count_attempt(session, key, now)
    if not _password_matches(user, password, cost):
        _failed(session, user)
        raise AuthenticationFailed
    _passed(session, user, password, cost, key)
    return user


def check_password_and_recovery_code(session: Session, username: str, password: str,
                                     code: str, cost: Argon2Cost,
                                     now: datetime | None = None) -> User:
    """A whole sign-in by password and a recovery code at once, for an officer whose account is
    held back by someone else's guessing. Never throttled: a wrong answer says nothing about
    which half was wrong, and guessing a recovery code (60 random bits) is hopeless. Both are
    always checked, so the time taken does not tell either. Consumes the code."""
    now = now or utcnow()
    user = _user_named(session, username)
    password_ok = _password_matches(user, password, cost)
    row = session.scalar(select(RecoveryCode).where(
        RecoveryCode.user_id == (user.id if user else -1), RecoveryCode.code_hash ==
        _code_hash(code), RecoveryCode.used_at.is_(None)))
    if user is None or not password_ok or row is None:
        _failed(session, user)
        raise AuthenticationFailed
    row_id, user_id = row.id, user.id

    def work() -> None:
        session.execute(update(RecoveryCode).where(RecoveryCode.id == row_id)
                        .values(used_at=now))
        record(session, Actor("staff", user_id, None), "recovery_code.used",
               object_type="user", object_id=user_id)

    _retrying(session, work)
    _passed(session, user, password, cost, _name_hash(username), _code_key(user_id))
    return user


def is_recovery_code(code: str) -> bool:
    """Recovery codes are 12 characters (shown as XXXX-XXXX-XXXX); TOTP codes are 6 digits."""
    return len("".join(c for c in code if c.isalnum())) > 8


def check_password_and_code(session: Session, username: str, password: str, code: str,
                            cost: Argon2Cost, secret_key: str, now: datetime | None = None
                            ) -> User:
    """A whole sign-in in one request (the API's token): the password and a second factor. The
    code's length tells which: a recovery code signs in with the password at once and is never
    held back (check_password_and_recovery_code); a TOTP code follows a throttled password
    check and is throttled itself. An account without a confirmed authenticator has no TOTP
    to give: SecondFactorFailed."""
    if is_recovery_code(code):
        return check_password_and_recovery_code(session, username, password, code, cost, now)
    user = check_password(session, username, password, cost, now)
    if user.totp_confirmed_at is None:
        raise SecondFactorFailed
    check_second_factor(session, user, code, secret_key, now)
    return user


def check_second_factor(session: Session, user: User, code: str, secret_key: str,
                        now: datetime | None = None, *, device: KnownDevice | None = None
                        ) -> None:
    """A TOTP code (counted per account, or per known device, and throttled) or a recovery code
    (not throttled). Raises SecondFactorFailed or Throttled; the caller commits success."""
    now = now or utcnow()
    if is_recovery_code(code):
        use_recovery_code(session, user, code, now)
        _clear(session, _code_key(user.id))
        return
    key = (_device_key(device, user.id, "code") if device is not None and device.knows(user)
           else _code_key(user.id))
    _count_attempt(session, key, now)
    try:
        verify_totp(user, code, secret_key, now)
    except crypto.CryptoError:
        raise SecondFactorFailed from None
    _clear(session, key)


def _device_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(crypto.server_key(secret_key, "known device").hex(),
                                  salt="qingliu known device")


def read_known_device(secret_key: str, value: str | None) -> KnownDevice | None:
    """The known device a cookie names, or None when absent, forged or too old."""
    if not value:
        return None
    try:
        data = _device_serializer(secret_key).loads(
            value, max_age=int(KNOWN_DEVICE_LIFETIME.total_seconds()))
        accounts = tuple((int(u), str(t)) for u, t in data["a"])
        return KnownDevice(str(data["d"]), accounts[:KNOWN_DEVICE_ACCOUNTS])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def remember_device(secret_key: str, device: KnownDevice | None, user: User) -> str:
    """The cookie value marking this browser as a known device of the account (kept with up to
    KNOWN_DEVICE_ACCOUNTS accounts, the latest first), bound to the account's device tag."""
    device_id = device.id if device else secrets.token_urlsafe(16)
    earlier = [[u, t] for u, t in (device.accounts if device else ()) if u != user.id]
    accounts = [[user.id, device_tag(device_id, user)], *earlier][:KNOWN_DEVICE_ACCOUNTS]
    return _device_serializer(secret_key).dumps({"d": device_id, "a": accounts})


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
    return hashlib.sha256("".join(code.split()).replace("-", "").upper()
                          .encode("utf-8", "surrogatepass")).digest()


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
