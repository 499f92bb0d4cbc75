"""Health for load balancers (portal/web/health.py, portal/web/readiness.py): /healthz answers while
everything behind it is down and touches nothing; /readyz answers 200 "ready" on a set-up portal
and 503 "not ready" with Retry-After, saying nothing more, for each thing a server needs (the
database and its migrations, the units' keys, Redis, the audit signing key, the CJK fonts,
ffmpeg, free disk), within ~2 s even when a dependency hangs; `flask --app app health` says
what is wrong and exits 1; the start-up log names the missing Debian packages."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event, text, update

from models import Unit
from portal import create_app
from portal.operations.setup import complete_setup
from portal.web import readiness
from portal.web.extensions import db
from referral import letter
from tests.conftest import ADMIN_PASSWORD, COSTS, stamp_migrations_head, test_settings

RETRY_AFTER = 17  # not the default, so that the header is seen to come from the setting
READY = {"READY_MIN_FREE_MB": 1, "RETRY_AFTER_SECONDS": RETRY_AFTER}
CLOSED_REDIS = "redis://127.0.0.1:1/0"


def set_up(app: Flask) -> None:
    complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    stamp_migrations_head(app)


@pytest.fixture
def ready_app(app_factory) -> Iterator[Flask]:
    """A set-up portal on migrated tables (yet without an audit signing key: no checkpoint was
    signed), with a low free-space threshold."""
    app = app_factory(**READY)
    with app.app_context():
        set_up(app)
        yield app
        db.session.rollback()
        stamp_migrations_head(app)  # as the next test expects it (PostgreSQL keeps the table)
        db.session.remove()


def unreachable_app(tmp_path: Path, **overrides: object) -> Flask:
    """An app whose database (or Redis) cannot be reached: built without the fixtures, which
    would make and seed the database."""
    settings = test_settings(tmp_path)
    settings.update(READY)
    settings.update(overrides)
    return create_app(settings)


def not_ready(app: Flask, *expected: str) -> str:
    """/readyz says 503 and no more; the command says why (each of `expected`) and exits 1."""
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_data(as_text=True) == "not ready\n"
    assert response.headers["Retry-After"] == str(RETRY_AFTER)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "text/plain"
    assert "Set-Cookie" not in response.headers
    result = app.test_cli_runner().invoke(args=["health"])
    assert result.exit_code == 1, result.output
    for words in expected:
        assert words in result.output
    assert "Not ready" in result.output
    return result.output


def is_ready(app: Flask) -> str:
    response = app.test_client().get("/readyz")
    result = app.test_cli_runner().invoke(args=["health"])
    assert response.status_code == 200, result.output
    assert response.get_data(as_text=True) == "ready\n"
    assert "Retry-After" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert result.exit_code == 0, result.output
    assert "problem" not in result.output
    return result.output


# ---------------------------------------------------------------------------------------------
# /healthz


def test_healthz_answers_with_everything_behind_it_down(tmp_path: Path) -> None:
    app = unreachable_app(tmp_path, SQLALCHEMY_DATABASE_URI=(
        f"sqlite:///{tmp_path / 'no such folder' / 'db.sqlite3'}"), REDIS_URL=CLOSED_REDIS)
    statements = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute",
                     lambda *args: statements.append(args[2]))
    client = app.test_client()
    for method in (client.get, client.head):
        response = method("/healthz?lang=en", headers={"Accept-Language": "ko"})
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert response.mimetype == "text/plain"
        assert "Set-Cookie" not in response.headers
    assert client.get("/healthz").get_data(as_text=True) == "ok\n"
    assert statements == []
    assert not (tmp_path / "no such folder").exists()


def test_probes_are_never_rate_limited(app_factory) -> None:
    app = app_factory(RATELIMIT_APPLICATION="2 per minute", **READY)
    client = app.test_client()
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code in (200, 503)
    # The same limit holds elsewhere: without the probes' exemption they would be refused too.
    assert [client.get("/").status_code for _ in range(3)][-1] == 429


# ---------------------------------------------------------------------------------------------
# /readyz and `flask --app app health`


def test_ready_on_a_set_up_portal(ready_app: Flask) -> None:
    output = is_ready(ready_app)
    for name in ("database", "migrations", "unit keys", "audit signing key", "fonts", "ffmpeg",
                 "disk (instance folder)"):
        assert f"ok       {name}: " in output
    # No checkpoint was ever signed: the first one makes the key.
    assert "not made yet" in output
    assert "Ready: this server can take traffic." in output


def test_not_ready_when_the_sqlite_database_cannot_be_opened(tmp_path: Path) -> None:
    missing = tmp_path / "no such folder" / "db.sqlite3"
    app = unreachable_app(tmp_path, SQLALCHEMY_DATABASE_URI=f"sqlite:///{missing}")
    not_ready(app, "problem  database: does not answer")
    assert not missing.parent.exists()  # a check creates nothing


def test_not_ready_when_postgresql_refuses(tmp_path: Path) -> None:
    app = unreachable_app(tmp_path,
                          SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/test")
    not_ready(app, "problem  database: does not answer")


def test_not_ready_when_redis_is_configured_but_unreachable(app_factory) -> None:
    app = app_factory(REDIS_URL=CLOSED_REDIS, **READY)
    with app.app_context():
        set_up(app)
    not_ready(app, "problem  redis: does not answer")


def test_not_ready_before_first_setup(app_factory) -> None:
    app = app_factory(**READY)
    with app.app_context():
        stamp_migrations_head(app)
    not_ready(app, "problem  unit keys: not set up", "setup-link")


def test_not_ready_when_migrations_are_behind(ready_app: Flask) -> None:
    db.session.execute(text("UPDATE alembic_version SET version_num = 'bb52ca95609b'"))
    db.session.commit()
    not_ready(ready_app, "problem  migrations: at bb52ca95609b", "db upgrade")
    db.session.execute(text("DROP TABLE alembic_version"))
    db.session.commit()
    not_ready(ready_app, "problem  migrations: the database was never migrated")


def test_not_ready_when_the_signing_key_is_lost_after_a_checkpoint(ready_app: Flask) -> None:
    from portal.web import checkpoint_now

    checkpoint_now()
    key = Path(ready_app.instance_path) / "audit-log.key"
    assert key.is_file()
    assert "ok       audit signing key" in is_ready(ready_app)
    key.unlink()
    not_ready(ready_app, "problem  audit signing key:", "restore it from the backup")
    key.write_text("not a key\n")
    not_ready(ready_app, "problem  audit signing key:", "cannot be read as a signing key")


def test_not_ready_without_the_letters_fonts(ready_app: Flask,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(letter, "BODY_FONT",
                        replace(letter.BODY_FONT, files=("/nonexistent/uming.ttc",)))
    not_ready(ready_app, "problem  fonts:", "AR PL UMing CN",
              "as root, apt-get install fonts-arphic-uming",
              "Install the missing Debian packages, as root: apt-get install fonts-arphic-uming")


def test_not_ready_without_ffmpeg(ready_app: Flask, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    empty = tmp_path / "empty bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    not_ready(ready_app, "problem  ffmpeg:", "apt-get install ffmpeg")


def test_not_ready_when_the_disk_is_nearly_full(ready_app: Flask,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real = readiness.shutil.disk_usage

    def nearly_full(path: object) -> object:
        return real(path)._replace(free=512 * 1024)

    monkeypatch.setattr(readiness.shutil, "disk_usage", nearly_full)
    output = not_ready(ready_app, "problem  disk (instance folder): 0 MB free")
    if ready_app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        assert "problem  disk (database folder)" in output


def test_a_unit_without_a_custodian_key_is_a_warning_only(ready_app: Flask) -> None:
    db.session.execute(update(Unit).where(Unit.code == "hunchun").values(identity_key=None))
    db.session.commit()
    output = is_ready(ready_app)
    assert "warning  custodian keys: no custodian key: hunchun" in output


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung Redis or PostgreSQL)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_readyz_answers_within_two_seconds_when_a_dependency_hangs(
        app_factory, silent_server: int, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    caplog.set_level(logging.INFO)
    hung_redis = app_factory(REDIS_URL=f"redis://127.0.0.1:{silent_server}/0", **READY)
    hung_database = unreachable_app(
        tmp_path / "pg", SQLALCHEMY_DATABASE_URI=(
            f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/test"))
    for app in (hung_redis, hung_database):
        client = app.test_client()
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 2.0
        assert response.status_code == 503
        assert response.get_data(as_text=True) == "not ready\n"
    # The operator reads why in the log, once per change of the answer.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and r.getMessage().startswith("Not ready for traffic")]
    assert len(warnings) == 2
    assert "redis: does not answer" in warnings[0]
    assert "database: no answer within 1.5 s" in warnings[1]


# ---------------------------------------------------------------------------------------------
# The start-up report of missing system packages


def test_start_up_names_the_missing_packages_once(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(letter, "HEADING_FONT",
                        replace(letter.HEADING_FONT, files=("/nonexistent/wqy-zenhei.ttc",)))
    unreachable_app(tmp_path / "quiet")  # tests are not told, unless asked
    assert "Missing Debian packages" not in caplog.text
    unreachable_app(tmp_path / "asked", REPORT_SYSTEM_PARTS=True)
    reports = [r for r in caplog.records if "Missing Debian packages" in r.getMessage()]
    assert len(reports) == 1
    assert reports[0].levelno == logging.WARNING
    assert "apt-get install fonts-wqy-zenhei" in reports[0].getMessage()
    assert "fonts-arphic-uming" not in reports[0].getMessage()
    monkeypatch.undo()
    caplog.clear()
    unreachable_app(tmp_path / "complete", REPORT_SYSTEM_PARTS=True)
    assert "Missing Debian packages" not in caplog.text


def test_the_start_up_lookup_is_made_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = readiness.shutil.which
    monkeypatch.setattr(readiness.shutil, "which",
                        lambda name, path=None: calls.append(name) or real(name, path=path))
    readiness.system_parts_cached.cache_clear()
    first = readiness.system_parts_cached(readiness.font_choices(), "/usr/bin:/bin")
    assert readiness.system_parts_cached(readiness.font_choices(), "/usr/bin:/bin") == first
    assert calls == list(readiness.MEDIA_TOOLS)


@pytest.mark.parametrize("lang", ["zh", "ko", "en"])
def test_the_administrator_reads_what_the_server_lacks(ready_app: Flask,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       lang: str) -> None:
    """The first hand-over must not be what finds the fonts missing: the administrator's start
    page says so in words, with the command that installs them."""
    from flask_babel import force_locale, gettext

    from tests.functional.test_admin_users import admin_client

    admin, _ = admin_client(ready_app)
    fine = admin.get(f"/admin?lang={lang}").get_data(as_text=True)
    monkeypatch.setattr(letter, "BODY_FONT",
                        replace(letter.BODY_FONT, files=("/nonexistent/uming.ttc",)))
    page = admin.get(f"/admin?lang={lang}").get_data(as_text=True)
    with ready_app.test_request_context(), force_locale({"zh": "zh_Hans"}.get(lang, lang)):
        title = gettext("This server is not ready")
    assert title not in fine
    # The command names what is missing, and only that.
    assert title in page and "apt-get install fonts-arphic-uming" in page
    assert "fonts-wqy-zenhei" not in page
