"""Fixtures in the manner of the Flask tutorial: a fresh app per test (`app`, `client`,
`runner`), plus the set-up portal (`portal_keys`: the units' recovery identities).

The suite runs on SQLite by default, and on PostgreSQL + Redis when TEST_DATABASE_URL and
TEST_REDIS_URL are set (make test does both when they are reachable).

Under pytest-xdist (`make test` runs `-n 2`) each worker `gwN` has a database of its own on
TEST_DATABASE_URL's server (`<name>_gwN`, made afresh when the worker starts), Redis database
number `<n> + N`, and its own tmp paths; serial runs use TEST_DATABASE_URL as it is.

Each test still starts from a fresh, seeded database, but the seed (the units, categories and
about 600 holidays, ~1 s through the ORM) is made once per worker and copied: a template file on
SQLite, a snapshot schema on PostgreSQL (see `_reset_database`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, make_url, select, text

from config import Argon2Params
from portal import create_app
from portal.operations.seed import seed
from portal.operations.setup import complete_setup
from portal.web.extensions import db

# `from tests.conftest import …` gets this very module, not a second copy with its own state.
if __name__ != "tests.conftest":
    sys.modules.setdefault("tests.conftest", sys.modules[__name__])

# pytest-xdist names its workers gw0, gw1, … in the environment before conftest is imported.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
WORKER_NUMBER = int(WORKER[2:]) if WORKER and WORKER[2:].isdigit() else 0


def _worker_database(url: str | None) -> str | None:
    """The worker's own database on the same server: test → test_gw0 (serial: as given)."""
    if not url or not WORKER:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{WORKER}").render_as_string(
        hide_password=False)


def _worker_redis(url: str | None) -> str | None:
    """The worker's own Redis database number: redis://host/0 → /1 for gw1 (16 by default)."""
    if not url or not WORKER:
        return url
    head, _, number = url.rpartition("/")
    if not (head.startswith("redis") and head.count("/") >= 2 and number.isdigit()):
        head, number = url.rstrip("/"), "0"
    return f"{head}/{(int(number) + WORKER_NUMBER) % 16}"


SERVER_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_DATABASE_URL = _worker_database(SERVER_DATABASE_URL)
TEST_REDIS_URL = _worker_redis(os.environ.get("TEST_REDIS_URL"))
# Cheap but real Argon2id for speed; tests/unit/test_receipts.py checks the production cost.
FAST_ARGON2 = Argon2Params(time_cost=1, memory_kib=8 * 1024, parallelism=1)
COSTS = {"wrap_cost": FAST_ARGON2, "login_cost": FAST_ARGON2}
ADMIN_PASSWORD = "correct horse battery staple"
_schema_ready = False
SNAPSHOT_SCHEMA = "seed_snapshot"
# PostgreSQL: (table, [(sequence, last value)]) for each table the seed fills.
_seed_snapshot: list[tuple[str, list[tuple[str, int]]]] | None = None


def _driver_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def pytest_sessionstart(session: pytest.Session) -> None:
    """An xdist worker on PostgreSQL: its database, dropped and made again (a run cut short
    leaves it behind)."""
    if not (WORKER and SERVER_DATABASE_URL and TEST_DATABASE_URL):
        return
    name = make_url(TEST_DATABASE_URL).database
    engine = create_engine(_driver_url(SERVER_DATABASE_URL), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


# Scopes that make tests share something, in a test module's own source.
SHARED_FIXTURE = re.compile(r"""scope\s*=\s*["'](module|class|package)["']""")


@functools.cache
def _shares_fixtures(module: Path) -> bool:
    try:
        return bool(SHARED_FIXTURE.search(module.read_text(encoding="utf-8")))
    except OSError:
        return False


def xdist_unit(rootpath: Path, nodeid: str) -> str:
    """What one xdist worker runs as a whole, one test after another (else: the test alone):

    - a test module with a module- or class-scoped fixture (the browser walks, whose later stages
      need the earlier ones; the page-words world): built once, not once per worker;
    - the tests that start the shipped server (gunicorn, `flask …`) from the repository folder:
      they share its instance/ folder (the audit-log key made on first use, the counts file)."""
    module, _, name = nodeid.partition("::")
    if module.endswith("test_server_logs.py") or (
            module.endswith("test_rate_limits.py") and "gunicorn" in name):
        return "repository-instance"
    if _shares_fixtures(rootpath / module):
        return module
    return nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`-n N` (xdist's `--dist load`) with the units of `xdist_unit`. (xdist's own `loadgroup`
    marks do nothing under pytest 9: it renames items through `_nodeid`, which pytest 9 no
    longer reads.)"""
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(config.rootpath, nodeid)

    return Scheduling(config, log)


def test_settings(tmp_path: Path) -> dict[str, object]:
    database = _driver_url(TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'test.sqlite3'}")
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
        # /readyz (portal/web/readiness.py): a test machine's disk may hold less than production's.
        "READY_MIN_FREE_MB": 1,
    }


test_settings.__test__ = False  # a helper, not a test


def _reset_database(*, seeded: bool = False) -> None:
    """Empty tables for the current app (the caller seeds), or with `seeded` the seed already
    in them, exactly as `seed()` leaves a fresh database (rows and sequences)."""
    global _schema_ready
    if db.engine.dialect.name == "postgresql":
        if not _schema_ready:
            db.drop_all()
            db.create_all()
            _schema_ready = True
        quote = db.engine.dialect.identifier_preparer.quote
        tables = ", ".join(quote(t.name) for t in db.metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.session.commit()
        if seeded:
            _restore_seed() if _seed_snapshot is not None else _take_seed_snapshot()
    else:
        db.create_all()
    stamp_migrations_head()


def stamp_migrations_head(app: Flask | None = None) -> None:
    """The tables come from create_all; leave the head revision in alembic_version as
    `flask db upgrade` would, so that /readyz finds the database migrated."""
    from flask import current_app

    from portal.web.readiness import migration_heads

    heads = migration_heads(Path((app or current_app).extensions["migrate"].directory))
    db.session.execute(text("CREATE TABLE IF NOT EXISTS alembic_version "
                            "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
    db.session.execute(text("DELETE FROM alembic_version"))
    for head in heads:
        db.session.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})
    db.session.commit()


def _take_seed_snapshot() -> None:
    """Seed the emptied tables, then copy each filled table (and its sequences) into a schema
    of its own, from which `_restore_seed` puts them back in a few statements."""
    global _seed_snapshot
    seed(db.session)
    session, quote = db.session, db.engine.dialect.identifier_preparer.quote
    session.execute(text(f"DROP SCHEMA IF EXISTS {SNAPSHOT_SCHEMA} CASCADE"))
    session.execute(text(f"CREATE SCHEMA {SNAPSHOT_SCHEMA}"))
    snapshot = []
    for table in db.metadata.sorted_tables:
        if session.execute(select(text("1")).select_from(table).limit(1)).first() is None:
            continue
        session.execute(text(f"CREATE TABLE {SNAPSHOT_SCHEMA}.{quote(table.name)} "
                             f"AS TABLE {quote(table.name)}"))
        sequences = []
        for column in table.columns:
            sequence = session.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                      {"t": quote(table.name), "c": column.name})
            # NULL while unused: TRUNCATE … RESTART IDENTITY leaves it so already.
            last = sequence and session.scalar(
                text("SELECT pg_sequence_last_value(CAST(:s AS regclass))"), {"s": sequence})
            if last is not None:
                sequences.append((sequence, last))
        snapshot.append((table.name, sequences))
    session.commit()
    _seed_snapshot = snapshot


def _restore_seed() -> None:
    session, quote = db.session, db.engine.dialect.identifier_preparer.quote
    for name, sequences in _seed_snapshot or ():
        # Table names from the models, not from input.
        copy = f"INSERT INTO {quote(name)} SELECT * FROM {SNAPSHOT_SCHEMA}.{quote(name)}"  # noqa: S608
        session.execute(text(copy))
        for sequence, last in sequences:
            session.execute(text("SELECT setval(:s, :v)"), {"s": sequence, "v": last})
    session.commit()


@pytest.fixture(autouse=True)
def _loggers_left_enabled() -> Iterator[None]:
    """Running the migrations in-process (tests/test_migrations.py, `flask db upgrade`) calls
    logging.config.fileConfig from migrations/env.py, which disables every logger that exists
    then, the app's included: a later test on the same process would see no log at all
    (caplog empty). Switch back on what a test switched off, whatever order the tests run in."""
    loggers = logging.root.manager.loggerDict
    disabled = {name for name, logger in loggers.items() if getattr(logger, "disabled", False)}
    yield
    for name, logger in list(loggers.items()):
        if getattr(logger, "disabled", False) and name not in disabled:
            logger.disabled = False


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """SQLite: a database file with the schema and the seed, made once per session (per xdist
    worker); a test's database starts as a copy of it."""
    if TEST_DATABASE_URL:
        return None
    folder = tmp_path_factory.mktemp("seeded")
    application = create_app(test_settings(folder))
    with application.app_context():
        db.create_all()
        seed(db.session)
        db.session.remove()
        db.engine.dispose()
    return folder / "test.sqlite3"


def _copy_seeded(database: object, template: Path | None) -> None:
    """A new SQLite file starts as the seeded template (create_all + seed would make the same)."""
    if template is None or not isinstance(database, str):
        return
    url = make_url(database)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    if not path.exists() and path.parent.is_dir():
        shutil.copyfile(template, path)


@pytest.fixture
def app_factory(tmp_path: Path, seeded_sqlite: Path | None):
    """Build an app with extra settings; the database is fresh and seeded."""

    def build(**overrides: object) -> Flask:
        settings = test_settings(tmp_path)
        settings.update(overrides)
        _copy_seeded(settings["SQLALCHEMY_DATABASE_URI"], seeded_sqlite)
        application = create_app(settings)
        with application.app_context():
            _reset_database(seeded=True)
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
        from auditlog.events import SYSTEM
        from models import Role, Unit
        from portal.security.accounts import add_membership, create_user
        from portal.security.auth import begin_enrollment
        from portal.security.custody import grant_from_recovery

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
