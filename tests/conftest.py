"""Fixtures in the manner of the Flask tutorial: a fresh app per test (`app`, `client`,
`runner`), plus the set-up portal (`portal_keys`: the units' recovery identities).

The suite runs on SQLite by default, and on PostgreSQL + Redis when TEST_DATABASE_URL and
TEST_REDIS_URL are set (make test does both when they are reachable).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, text

from config import Argon2Params
from portal import create_app
from portal.extensions import db
from portal.seed import seed
from portal.setup import complete_setup

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
# Cheap but real Argon2id for speed; tests/unit/test_receipts.py checks the production cost.
FAST_ARGON2 = Argon2Params(time_cost=1, memory_kib=8 * 1024, parallelism=1)
COSTS = {"wrap_cost": FAST_ARGON2, "login_cost": FAST_ARGON2}
ADMIN_PASSWORD = "correct horse battery staple"
_schema_ready = False


def test_settings(tmp_path: Path) -> dict[str, object]:
    database = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.sqlite3'}"
    if database.startswith("postgresql://"):
        database = "postgresql+psycopg://" + database[len("postgresql://"):]
    return {
        "TESTING": True,
        "SECRET_KEY": "test secret key " + uuid.uuid4().hex,
        "INSTANCE_PATH": tmp_path / "instance",
        "SQLALCHEMY_DATABASE_URI": database,
        "RATELIMIT_STORAGE_URI": TEST_REDIS_URL or "memory://",
        # Each test counts its own requests, even against a shared Redis.
        "RATELIMIT_KEY_PREFIX": "test-" + uuid.uuid4().hex,
        # Staff sessions: Redis in the scale-out run, the database otherwise.
        "REDIS_URL": TEST_REDIS_URL,
        "SESSION_KEY_PREFIX": "test-" + uuid.uuid4().hex,
        "RECEIPT_ARGON2": FAST_ARGON2,
        "WRAP_ARGON2": FAST_ARGON2,
        "LOGIN_ARGON2": FAST_ARGON2,
        "WTF_CSRF_ENABLED": False,
    }


test_settings.__test__ = False  # a helper, not a test


def _reset_database() -> None:
    global _schema_ready
    if db.engine.dialect.name == "postgresql":
        if not _schema_ready:
            db.drop_all()
            db.create_all()
            _schema_ready = True
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.session.commit()
    else:
        db.create_all()


@pytest.fixture
def app_factory(tmp_path: Path):
    """Build an app with extra settings; the database is fresh and seeded."""

    def build(**overrides: object) -> Flask:
        settings = test_settings(tmp_path)
        settings.update(overrides)
        application = create_app(settings)
        with application.app_context():
            _reset_database()
            seed(db.session)
        return application

    return build


@pytest.fixture
def app(app_factory) -> Iterator[Flask]:
    application = app_factory()
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def portal_keys(app: Flask) -> dict[str, str]:
    """Run first setup; return each handling unit's recovery identity (age secret key)."""
    result = complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    return dict(result.recovery)


class Staff:
    """Creates officers and signs them in through the real pages (password, then TOTP)."""

    PASSWORD = "officer password 2026"

    def __init__(self, app: Flask, keys: dict[str, str]) -> None:
        self.app = app
        self.keys = keys
        self.secrets: dict[int, str] = {}

    def create(self, username: str, unit: str = "yanji", role: str = "intake_officer",
               *, grant: bool = True, enrolled: bool = True, extra: tuple = ()) -> int:
        from models import Role, Unit
        from portal.accounts import add_membership, create_user
        from portal.audit import SYSTEM
        from portal.auth import begin_enrollment
        from portal.custody import grant_from_recovery

        user = create_user(db.session, username, self.PASSWORD, **COSTS,
                           actor=SYSTEM)
        for unit_code, role_name in ((unit, role), *extra):
            add_membership(db.session, user, unit_code, Role(role_name), actor=SYSTEM)
            if grant and unit_code in self.keys:
                target = db.session.scalars(select(Unit).where(Unit.code == unit_code)).one()
                grant_from_recovery(db.session, target, user, self.keys[unit_code], actor=SYSTEM)
        if enrolled:
            enrollment = begin_enrollment(user, self.app.config["SECRET_KEY"])
            user.totp_confirmed_at = user.created_at
            self.secrets[user.id] = enrollment.secret
        db.session.commit()
        return user.id

    def code(self, user_id: int, offset_steps: int = 0) -> str:
        import time

        import pyotp

        totp = pyotp.TOTP(self.secrets[user_id])
        return totp.at(time.time() + offset_steps * 30)

    def login(self, client, username: str, user_id: int) -> None:
        response = client.post("/staff/login", data={"username": username,
                                                     "password": self.PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        response = client.post("/staff/login/code", data={"code": self.code(user_id)})
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]


@pytest.fixture
def staff(app: Flask, portal_keys: dict[str, str]) -> Staff:
    return Staff(app, portal_keys)
