"""Fixtures in the manner of the Flask tutorial: a fresh app per test (`app`, `client`,
`runner`), plus the set-up portal (`portal_keys`: the units' recovery identities).

The suite runs on SQLite by default, and on PostgreSQL + Redis when TEST_DATABASE_URL and
TEST_REDIS_URL are set (make test does both when they are reachable).

Under pytest-xdist (`make test` runs `-n 2`) each worker `gwN` has a database of its own on
TEST_DATABASE_URL's server (`<name>_gwN`, made afresh when the worker starts), Redis database
number `<n> + N`, and its own tmp paths; serial runs use TEST_DATABASE_URL as it is.

Each test still starts from a fresh, seeded database, but the schema and the seed (the units,
categories and about 600 holidays, ~1 s through the ORM) are made once per worker and copied: a
template file on SQLite, a snapshot schema on PostgreSQL. So is first setup (the administrator,
every unit's key pair, the blind-index key: 2-4 s), which `portal_keys` copies in when the
database is still as seeded (`Templates`). Each app compiles its URL rules from code compiled
once per process (`_share_route_builders`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
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
# PostgreSQL: the seeded and the set-up database as schemas in the worker's database, each with
# (table, [(sequence, last value)]) for each table it fills.
SEED_SCHEMA, SETUP_SCHEMA = "seed_snapshot", "setup_snapshot"
_snapshots: dict[str, list[tuple[str, list[tuple[str, int]]]]] = {}


def _share_route_builders() -> None:
    """Each test builds its own app, and werkzeug compiles each of its ~95 URL rules into a
    builder function from generated Python source: about two thirds of create_app. The same
    rule always compiles to the same function (it reads the rule's converters through its
    `self` argument), so the process compiles each rule once."""
    from werkzeug.routing import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "shared", False):
        return  # another werkzeug: each app compiles its own
    builders: dict[tuple[object, ...], object] = {}

    @functools.wraps(compile_builder)
    def shared(self: Rule, append_unknown: bool = True) -> object:
        defaults = self.defaults or {}
        if any(dynamic and name in defaults for dynamic, name in self._trace):
            return compile_builder(self, append_unknown)  # a default made into a constant
        key = (self.rule, tuple(self._trace), tuple(defaults), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    shared.shared = True  # type: ignore[attr-defined]
    Rule._compile_builder = shared  # type: ignore[method-assign]


_share_route_builders()


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
        # A test that edits a category sees the home page change at once.
        "PUBLIC_PAGE_RECHECK_SECONDS": 0.0,
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
        _truncate_all()
        if seeded:
            if SEED_SCHEMA in _snapshots:
                _restore_snapshot(SEED_SCHEMA)
            else:
                seed(db.session)
                _take_snapshot(SEED_SCHEMA)
    else:
        db.create_all()
        if seeded:
            seed(db.session)
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


def _truncate_all() -> None:
    quote = db.engine.dialect.identifier_preparer.quote
    tables = ", ".join(quote(t.name) for t in db.metadata.sorted_tables)
    # A transaction an earlier test left open (a streamed download whose response it never
    # closed keeps its session reading blob_chunks) would make TRUNCATE wait for ever: the
    # worker's database is its own, so whatever sits idle in a transaction there is left over.
    db.session.execute(text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
        "current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"))
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


def _take_snapshot(schema: str) -> None:
    """PostgreSQL: copy each filled table (and its sequences) into a schema of its own, from
    which `_restore_snapshot` puts them back in a few statements."""
    session, quote = db.session, db.engine.dialect.identifier_preparer.quote
    session.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    session.execute(text(f"CREATE SCHEMA {schema}"))
    snapshot = []
    for table in db.metadata.sorted_tables:
        if session.execute(select(text("1")).select_from(table).limit(1)).first() is None:
            continue
        session.execute(text(f"CREATE TABLE {schema}.{quote(table.name)} "
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
    _snapshots[schema] = snapshot


def _restore_snapshot(schema: str) -> None:
    """Fill the emptied tables from the snapshot `schema` (rows and sequences)."""
    session, quote = db.session, db.engine.dialect.identifier_preparer.quote
    for name, sequences in _snapshots[schema]:
        # Table names from the models, not from input.
        copy = f"INSERT INTO {quote(name)} SELECT * FROM {schema}.{quote(name)}"  # noqa: S608
        session.execute(text(copy))
        for sequence, last in sequences:
            session.execute(text("SELECT setval(:s, :v)"), {"s": sequence, "v": last})
    session.commit()


@functools.cache
def _fingerprint_query() -> str:
    session, quote = db.session, db.engine.dialect.identifier_preparer.quote
    parts = []
    for table in db.metadata.sorted_tables:
        # The models' table names, not input.
        digest = "(SELECT md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM "
        parts.append(digest + quote(table.name) + " AS r)")
        for column in table.columns:
            sequence = session.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                      {"t": quote(table.name), "c": column.name})
            if sequence:
                parts.append(f"coalesce(pg_sequence_last_value('{sequence}')::text, '-')")
    return "SELECT concat_ws('|', " + ", ".join(parts) + ")"


def _fingerprint() -> str:
    """PostgreSQL: one text that changes with any row of any table or any sequence."""
    return str(db.session.scalar(text(_fingerprint_query())))


@dataclass(frozen=True)
class Templates:
    """What each test's database starts from, made once per session (per xdist worker).

    SQLite: `seeded` is a database file with the schema, the migration head and the seed, and
    `set_up` the same after first setup; a test's database starts as a copy of `seeded`, and
    becomes a copy of `set_up` when it asks for `portal_keys` before changing anything.
    PostgreSQL: the same two states as snapshot schemas in the worker's database (copying
    rows back is faster there than CREATE DATABASE … TEMPLATE and DROP DATABASE per test), and
    `seeded_fingerprint` tells a database still as seeded. `recovery`: the set-up state's unit
    recovery identities."""

    recovery: dict[str, str]
    seeded: Path | None = None
    set_up: Path | None = None
    seeded_bytes: bytes = b""
    seeded_fingerprint: str = ""


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    folder = tmp_path_factory.mktemp("templates")
    application = create_app(test_settings(folder))
    with application.app_context():
        if TEST_DATABASE_URL:
            _reset_database(seeded=True)
            fingerprint = _fingerprint()
            recovery = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
            _take_snapshot(SETUP_SCHEMA)
            _reset_database(seeded=True)
            db.session.remove()
            return Templates(recovery, seeded_fingerprint=fingerprint)
        working = Path(make_url(application.config["SQLALCHEMY_DATABASE_URI"]).database or "")
        seeded, set_up = folder / "seeded.sqlite3", folder / "set-up.sqlite3"
        _reset_database(seeded=True)
        db.session.remove()
        db.engine.dispose()
        shutil.copyfile(working, seeded)
        recovery = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
        db.session.remove()
        db.engine.dispose()
        working.rename(set_up)
    return Templates(recovery, seeded, set_up, seeded.read_bytes())


def _copy_template(database: object, template: Path | None) -> bool:
    """A new SQLite file starts as the seeded template (create_all + seed would make the same);
    True if it did."""
    if template is None or not isinstance(database, str):
        return False
    url = make_url(database)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return False
    path = Path(url.database)
    if path.exists() or not path.parent.is_dir():
        return False
    shutil.copyfile(template, path)
    return True


def _set_up_from_template(templates: Templates) -> bool:
    """Make the current app's database the set-up template, if it is still exactly the seeded
    one (first setup there would make the same, with other keys); False otherwise."""
    session = db.session
    if session.new or session.dirty or session.deleted:
        return False
    if db.engine.dialect.name == "postgresql":
        if not templates.seeded_fingerprint or _fingerprint() != templates.seeded_fingerprint:
            return False
        session.commit()
        _truncate_all()
        _restore_snapshot(SETUP_SCHEMA)
        return True
    path = db.engine.url.database
    if templates.set_up is None or not path or not Path(path).is_file():
        return False
    if Path(path).read_bytes() != templates.seeded_bytes:
        return False
    session.commit()  # nothing to write: ends its transaction, forgets what it read (as setup's)
    with closing(sqlite3.connect(templates.set_up)) as source, \
            closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return True


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


@pytest.fixture
def app_factory(tmp_path: Path, database_templates: Templates):
    """Build an app with extra settings; the database is fresh and seeded."""

    def build(**overrides: object) -> Flask:
        settings = test_settings(tmp_path)
        settings.update(overrides)
        copied = _copy_template(settings["SQLALCHEMY_DATABASE_URI"], database_templates.seeded)
        application = create_app(settings)
        if not copied:
            with application.app_context():
                _reset_database(seeded=True)
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
def portal_keys(app: Flask, database_templates: Templates) -> dict[str, str]:
    """Run first setup; return each handling unit's recovery identity (age secret key). A
    database still as seeded takes the setup made once per worker (`Templates`)."""
    if _set_up_from_template(database_templates):
        return dict(database_templates.recovery)
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
