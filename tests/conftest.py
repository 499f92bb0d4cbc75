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
from sqlalchemy import text

from config import Argon2Params
from portal import create_app
from portal.extensions import db
from portal.seed import seed
from portal.setup import complete_setup

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
# Cheap but real Argon2id for speed; tests/unit/test_receipts.py checks the production cost.
FAST_ARGON2 = Argon2Params(time_cost=1, memory_kib=8 * 1024, parallelism=1)
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
        "RECEIPT_ARGON2": FAST_ARGON2,
        "WRAP_ARGON2": FAST_ARGON2,
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
    result = complete_setup(db.session, "admin", ADMIN_PASSWORD, wrap_cost=FAST_ARGON2)
    return dict(result.recovery)
