"""Server-side staff sessions and API tokens, revocable, with idle and absolute timeouts.

The token the officer holds (cookie or bearer) is 64 random bytes: a session id and a key. The
store keeps only SHA-256 of the id, and the officer's personal identity sealed under the key, so
neither a copy of the store nor of the database unlocks anything without the officer's token.
The store is the database by default and Redis when REDIS_URL is set."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import CursorResult, delete
from sqlalchemy.orm import Session

from auditlog.events import Actor, record
from models import StaffSession, User
from models.base import utcnow
from portal.intake.receipts import Argon2Cost
from portal.security import crypto, custody
from portal.security.auth import forget_devices

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
PENDING_TIMEOUT = timedelta(minutes=10)  # between the password and the second factor
API_TIMEOUT = timedelta(hours=8)


class SessionInvalid(Exception):
    """Unknown, revoked, expired or idle too long."""


@dataclass(frozen=True)
class SessionRecord:
    user_id: int
    kind: str
    stage: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    sealed_identity: bytes


@dataclass(frozen=True)
class OpenSession:
    token: str
    user_id: int
    kind: str
    stage: str
    identity: crypto.AgeIdentity
    expires_at: datetime


class Backend(Protocol):
    def put(self, id_hash: bytes, record: SessionRecord) -> None: ...
    def get(self, id_hash: bytes) -> SessionRecord | None: ...
    def touch(self, id_hash: bytes, when: datetime) -> None: ...
    def delete(self, id_hash: bytes) -> None: ...
    def delete_user(self, user_id: int, keep: bytes | None) -> int: ...


class SqlBackend:
    def __init__(self, session: Session) -> None:
        self._session = session

    def put(self, id_hash: bytes, record: SessionRecord) -> None:
        self._session.add(StaffSession(id_hash=id_hash, **record.__dict__))
        self._session.flush()

    def get(self, id_hash: bytes) -> SessionRecord | None:
        row = self._session.get(StaffSession, id_hash)
        if row is None:
            return None
        return SessionRecord(row.user_id, row.kind, row.stage, row.created_at, row.last_seen_at,
                             row.expires_at, row.sealed_identity)

    def touch(self, id_hash: bytes, when: datetime) -> None:
        row = self._session.get(StaffSession, id_hash)
        if row is not None:
            row.last_seen_at = when

    def delete(self, id_hash: bytes) -> None:
        self._session.execute(delete(StaffSession).where(StaffSession.id_hash == id_hash))

    def delete_user(self, user_id: int, keep: bytes | None) -> int:
        query = delete(StaffSession).where(StaffSession.user_id == user_id)
        if keep is not None:
            query = query.where(StaffSession.id_hash != keep)
        result = self._session.execute(query)
        assert isinstance(result, CursorResult)  # a DELETE answers with the cursor's result
        return result.rowcount or 0


class RedisBackend:
    """Keys `<prefix>:s:<hash>` (JSON, expiring at the absolute timeout) and a set per user."""

    def __init__(self, client: Any, prefix: str = "qingliu") -> None:
        # Any: redis-py types every reply as "a value or an awaitable" (one class serves the
        # sync and the async client), so its own types would need a check on each reply.
        self._redis = client
        self._prefix = prefix

    def _key(self, id_hash: bytes) -> str:
        return f"{self._prefix}:s:{id_hash.hex()}"

    def _user_key(self, user_id: int) -> str:
        return f"{self._prefix}:u:{user_id}"

    def put(self, id_hash: bytes, record: SessionRecord) -> None:
        data = {**record.__dict__, "created_at": record.created_at.isoformat(),
                "last_seen_at": record.last_seen_at.isoformat(),
                "expires_at": record.expires_at.isoformat(),
                "sealed_identity": base64.b64encode(record.sealed_identity).decode()}
        ttl = max(1, int((record.expires_at - utcnow()).total_seconds()))
        pipe = self._redis.pipeline()
        pipe.set(self._key(id_hash), json.dumps(data), ex=ttl)
        pipe.sadd(self._user_key(record.user_id), id_hash.hex())
        pipe.execute()

    def get(self, id_hash: bytes) -> SessionRecord | None:
        raw = self._redis.get(self._key(id_hash))
        if raw is None:
            return None
        data = json.loads(raw)
        return SessionRecord(
            data["user_id"], data["kind"], data["stage"],
            datetime.fromisoformat(data["created_at"]),
            datetime.fromisoformat(data["last_seen_at"]),
            datetime.fromisoformat(data["expires_at"]),
            base64.b64decode(data["sealed_identity"]))

    def touch(self, id_hash: bytes, when: datetime) -> None:
        record = self.get(id_hash)
        if record is not None:
            self.put(id_hash, SessionRecord(**{**record.__dict__, "last_seen_at": when}))

    def delete(self, id_hash: bytes) -> None:
        self._redis.delete(self._key(id_hash))

    def delete_user(self, user_id: int, keep: bytes | None) -> int:
        members = self._redis.smembers(self._user_key(user_id))
        removed = 0
        for member in members:
            hex_id = member.decode() if isinstance(member, bytes) else member
            if keep is not None and hex_id == keep.hex():
                continue
            removed += self._redis.delete(self._key(bytes.fromhex(hex_id)))
            self._redis.srem(self._user_key(user_id), hex_id)
        return removed


def _split(token: str) -> tuple[bytes, bytes]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError as exc:
        raise SessionInvalid from exc
    if len(raw) != 64:
        raise SessionInvalid
    return hashlib.sha256(raw[:32]).digest(), raw[32:]


class SessionStore:
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def create(self, user_id: int, identity: crypto.AgeIdentity, *, kind: str = "web",
               stage: str = "active", now: datetime | None = None) -> OpenSession:
        now = now or utcnow()
        session_id, key = secrets.token_bytes(32), secrets.token_bytes(32)
        lifetime = {"api": API_TIMEOUT}.get(kind, ABSOLUTE_TIMEOUT)
        if stage != "active":
            lifetime = PENDING_TIMEOUT
        record = SessionRecord(user_id, kind, stage, now, now, now + lifetime,
                               crypto.seal_symmetric(key, identity.encode(), b"staff session"))
        self._backend.put(hashlib.sha256(session_id).digest(), record)
        token = base64.urlsafe_b64encode(session_id + key).decode().rstrip("=")
        return OpenSession(token, user_id, kind, stage, identity, record.expires_at)

    def open(self, token: str, now: datetime | None = None) -> OpenSession:
        now = now or utcnow()
        id_hash, key = _split(token)
        record = self._backend.get(id_hash)
        if record is None:
            raise SessionInvalid
        idle_limit = IDLE_TIMEOUT if record.kind == "web" else API_TIMEOUT
        if now >= record.expires_at or now - record.last_seen_at > idle_limit:
            self._backend.delete(id_hash)
            raise SessionInvalid
        try:
            identity = crypto.open_symmetric(key, record.sealed_identity, b"staff session")
        except crypto.CryptoError as exc:
            raise SessionInvalid from exc
        self._backend.touch(id_hash, now)
        return OpenSession(token, record.user_id, record.kind, record.stage,
                           crypto.AgeIdentity(identity.decode()), record.expires_at)

    def promote(self, pending: OpenSession, now: datetime | None = None) -> OpenSession:
        """After the second factor: a new session id (fixation), the pending one destroyed."""
        self.revoke(pending.token)
        return self.create(pending.user_id, pending.identity, kind=pending.kind, now=now)

    def revoke(self, token: str) -> None:
        try:
            id_hash, _ = _split(token)
        except SessionInvalid:
            return
        self._backend.delete(id_hash)

    def revoke_all(self, user_id: int, *, except_token: str | None = None) -> int:
        keep = _split(except_token)[0] if except_token else None
        return self._backend.delete_user(user_id, keep)


# ---------------------------------------------------------------------------------------------
# Signing in and out, tokens: the session change and its audit event together. The caller
# commits (the event is written in the same transaction as the change it records).


def _actor(user_id: int) -> Actor:
    return Actor("staff", user_id, None)


def finish_sign_in(session: Session, store: SessionStore, pending: OpenSession) -> OpenSession:
    """After the second factor (or its enrolment): the active session, under a new id."""
    active = store.promote(pending)
    record(session, _actor(pending.user_id), "signin.succeeded", object_type="user",
           object_id=pending.user_id)
    return active


def sign_out(session: Session, store: SessionStore, opened: OpenSession) -> None:
    store.revoke(opened.token)
    record(session, _actor(opened.user_id), "signout", object_type="user",
           object_id=opened.user_id)


def sign_out_everywhere(session: Session, store: SessionStore, user: User) -> int:
    """End every session of the account, and forget its known browsers: none of them skips the
    account's throttle any more (portal/security/auth.py). How many sessions ended."""
    ended = store.revoke_all(user.id)
    forget_devices(user)
    record(session, _actor(user.id), "signout.everywhere", object_type="user",
           object_id=user.id, sessions=ended)
    return ended


def issue_token(session: Session, store: SessionStore, user: User,
                identity: crypto.AgeIdentity) -> OpenSession:
    """An API bearer token (expiring after API_TIMEOUT, revocable)."""
    opened = store.create(user.id, identity, kind="api")
    record(session, _actor(user.id), "token.issued", object_type="user", object_id=user.id)
    return opened


def revoke_token(session: Session, store: SessionStore, opened: OpenSession) -> None:
    store.revoke(opened.token)
    record(session, _actor(opened.user_id), "token.revoked", object_type="user",
           object_id=opened.user_id)


def change_password(session: Session, store: SessionStore, user: User, current: str, new: str,
                    *, keep_token: str, wrap_cost: Argon2Cost, login_cost: Argon2Cost) -> int:
    """The officer's own password change (portal/security/custody.py re-wraps the personal
    key): it ends every other session of the officer, the one asking (`keep_token`) stays.
    CryptoError for a wrong current password, WeakPassword for a weak new one."""
    custody.change_password(session, user, current, new, wrap_cost=wrap_cost,
                            login_cost=login_cost)
    return store.revoke_all(user.id, except_token=keep_token)
