"""Staff sessions and API tokens as a service (portal/security/sessions.py), without HTTP: idle
and absolute timeouts, promotion after the second factor, signing out (here, everywhere), a
password change that ends the other sessions, and the audit event each of these writes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from auditlog.events import SYSTEM
from models import AuditEvent, User
from models.base import utcnow
from portal.security import custody, sessions
from portal.security.accounts import WeakPassword, create_user
from portal.security.crypto import CryptoError
from portal.security.sessions import (
    ABSOLUTE_TIMEOUT,
    API_TIMEOUT,
    IDLE_TIMEOUT,
    PENDING_TIMEOUT,
    SessionInvalid,
    SessionStore,
    SqlBackend,
)
from portal.web.extensions import db
from tests.conftest import COSTS, FAST_ARGON2

PASSWORD = "officer password 2026"


@pytest.fixture
def officer(app) -> User:
    user = create_user(db.session, "officer", PASSWORD, **COSTS, actor=SYSTEM)
    db.session.commit()
    return user


@pytest.fixture
def store(app) -> SessionStore:
    return SessionStore(SqlBackend(db.session))


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _still_open(store: SessionStore, token: str) -> bool:
    try:
        store.open(token)
    except SessionInvalid:
        return False
    return True


def test_a_session_carries_the_identity_and_only_its_token_opens_it(officer, store) -> None:
    personal = custody.unlock_personal(officer, PASSWORD)
    opened = store.create(officer.id, personal)
    again = store.open(opened.token)
    assert (again.user_id, again.kind, again.stage) == (officer.id, "web", "active")
    assert again.identity == personal
    tampered = opened.token[:-4] + ("AAAA" if not opened.token.endswith("AAAA") else "BBBB")
    with pytest.raises(SessionInvalid):
        store.open(tampered)
    with pytest.raises(SessionInvalid):
        store.open("not a token")


def test_idle_and_absolute_timeouts(officer, store) -> None:
    personal = custody.unlock_personal(officer, PASSWORD)
    start = utcnow()
    idle = store.create(officer.id, personal, now=start)
    with pytest.raises(SessionInvalid):  # untouched for longer than the idle limit
        store.open(idle.token, start + IDLE_TIMEOUT + IDLE_TIMEOUT / 10)
    busy = store.create(officer.id, personal, now=start)
    moment = start
    while moment + IDLE_TIMEOUT / 2 < start + ABSOLUTE_TIMEOUT:  # used all day, never idle
        moment += IDLE_TIMEOUT / 2
        store.open(busy.token, moment)
    with pytest.raises(SessionInvalid):  # yet it ends at the absolute limit
        store.open(busy.token, start + ABSOLUTE_TIMEOUT)


def test_pending_and_api_lifetimes(officer, store) -> None:
    personal = custody.unlock_personal(officer, PASSWORD)
    start = utcnow()
    pending = store.create(officer.id, personal, stage="password", now=start)
    assert pending.expires_at == start + PENDING_TIMEOUT
    token = store.create(officer.id, personal, kind="api", now=start)
    assert token.expires_at == start + API_TIMEOUT
    store.open(token.token, start + IDLE_TIMEOUT * 2)  # an API token has no 30-minute idle limit
    with pytest.raises(SessionInvalid):
        store.open(token.token, start + API_TIMEOUT)


def test_finishing_sign_in_replaces_the_pending_session_and_is_logged(officer, store) -> None:
    pending = store.create(officer.id, custody.unlock_personal(officer, PASSWORD),
                           stage="password")
    active = sessions.finish_sign_in(db.session, store, pending)
    db.session.commit()
    assert active.token != pending.token and active.stage == "active"
    assert not _still_open(store, pending.token)  # no fixation: the old id is gone
    assert _still_open(store, active.token)
    [event] = _events("signin.succeeded")
    assert (event.actor_id, event.object_type, event.object_id) == (officer.id, "user", officer.id)


def test_sign_out_ends_this_session_only(officer, store) -> None:
    personal = custody.unlock_personal(officer, PASSWORD)
    here, there = store.create(officer.id, personal), store.create(officer.id, personal)
    sessions.sign_out(db.session, store, here)
    db.session.commit()
    assert not _still_open(store, here.token)
    assert _still_open(store, there.token)
    [event] = _events("signout")
    assert (event.actor_id, event.object_id) == (officer.id, officer.id)


def test_sign_out_everywhere_ends_every_session_and_forgets_devices(officer, store) -> None:
    personal = custody.unlock_personal(officer, PASSWORD)
    tokens = [store.create(officer.id, personal).token for _ in range(3)]
    epoch = officer.device_epoch or 0
    assert sessions.sign_out_everywhere(db.session, store, officer) == 3
    db.session.commit()
    assert not any(_still_open(store, token) for token in tokens)
    assert officer.device_epoch == epoch + 1
    [event] = _events("signout.everywhere")
    assert json.loads(event.details)["sessions"] == 3


def test_a_password_change_ends_the_other_sessions(officer, store) -> None:
    personal = custody.unlock_personal(officer, PASSWORD)
    mine, other = store.create(officer.id, personal), store.create(officer.id, personal)
    api = store.create(officer.id, personal, kind="api")
    ended = sessions.change_password(db.session, store, officer, PASSWORD,
                                     "a new password of mine", keep_token=mine.token,
                                     wrap_cost=FAST_ARGON2, login_cost=FAST_ARGON2)
    db.session.commit()
    assert ended == 2
    assert _still_open(store, mine.token)
    assert not _still_open(store, other.token) and not _still_open(store, api.token)
    assert custody.unlock_personal(officer, "a new password of mine") == personal
    assert len(_events("password.changed")) == 1


def test_a_refused_password_change_ends_nothing(officer, store) -> None:
    personal = custody.unlock_personal(officer, PASSWORD)
    mine, other = store.create(officer.id, personal), store.create(officer.id, personal)
    db.session.commit()
    with pytest.raises(CryptoError):
        sessions.change_password(db.session, store, officer, "not my password",
                                 "a new password of mine", keep_token=mine.token,
                                 wrap_cost=FAST_ARGON2, login_cost=FAST_ARGON2)
    with pytest.raises(WeakPassword):
        sessions.change_password(db.session, store, officer, PASSWORD, "short",
                                 keep_token=mine.token, wrap_cost=FAST_ARGON2,
                                 login_cost=FAST_ARGON2)
    db.session.rollback()
    assert _still_open(store, mine.token) and _still_open(store, other.token)
    assert _events("password.changed") == []


def test_issuing_and_revoking_a_token_are_logged(officer, store) -> None:
    opened = sessions.issue_token(db.session, store, officer,
                                  custody.unlock_personal(officer, PASSWORD))
    db.session.commit()
    assert opened.kind == "api" and _still_open(store, opened.token)
    [issued] = _events("token.issued")
    assert (issued.actor_id, issued.object_type, issued.object_id) == (
        officer.id, "user", officer.id)
    sessions.revoke_token(db.session, store, opened)
    db.session.commit()
    assert not _still_open(store, opened.token)
    [revoked] = _events("token.revoked")
    assert (revoked.actor_id, revoked.object_id) == (officer.id, officer.id)
