"""Application factory: create_app() binds the extensions, faces, error handlers and commands."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import config
from portal.web import hashgate, health, http, outage, pagecache
from portal.web.extensions import babel, csrf, db, migrate
from portal.web.ratelimit import install_rate_limits

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine.interfaces import DBAPIConnection

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `test_config` overrides settings (INSTANCE_PATH moves the instance folder)."""
    instance_path = (test_config or {}).get("INSTANCE_PATH")
    app = Flask(
        __name__,
        instance_path=str(instance_path) if instance_path else None,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    settings = config.from_environment(Path(app.instance_path))
    app.config.from_mapping(settings.as_flask_config())
    if test_config:
        app.config.from_mapping(test_config)
    if app.config["PROXY_COUNT"]:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented middleware way
            app.wsgi_app, x_for=app.config["PROXY_COUNT"], x_proto=app.config["PROXY_COUNT"])
    register_extensions(app)
    hashgate.configure(app)
    pagecache.install(app)
    http.install_converters(app)  # before the routes: `<int:…>` ids are bounded
    register_blueprints(app)
    register_errorhandlers(app)
    outage.install(app)  # after the error pages: a database or Redis outage answers 503
    register_commands(app)
    health.install(app)
    http.install(app)
    register_template_helpers(app)
    configure_logging(app)
    health.report_missing_system_parts(app)
    return app


def register_template_helpers(app: Flask) -> None:
    from flask_babel import format_datetime

    from portal.web.messages import TEMPLATE_WORDS, status_text
    from portal.web.sizes import file_size_text

    app.jinja_env.globals.update(format_datetime=format_datetime, status_text=status_text,
                                 file_size=file_size_text, **TEMPLATE_WORDS)


def register_extensions(app: Flask) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # A connection left stale by a PostgreSQL restart is replaced before use (not a 503 per
        # pooled connection), and an unreachable server answers 503 within 5 s, not a hang.
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("pool_pre_ping", True)
        options["connect_args"] = {"connect_timeout": 5, **options.get("connect_args", {})}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    open_sqlite_without_creating(app)
    db.init_app(app)
    with app.app_context():
        enforce_sqlite_foreign_keys(db.engine)
    if app.config.get("REDIS_URL"):
        import redis

        # Staff sessions live in Redis when it is configured (several servers share them).
        # With timeouts: a Redis host that drops packets answers 503, never hangs a thread.
        app.extensions["redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=2)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=http.select_locale,
                   default_translation_directories=str(ROOT / "portal" / "translations"))


def open_sqlite_without_creating(app: Flask) -> None:
    """The embedded database, once it exists, and always under gunicorn, is opened for reading
    and writing only, never created: should its file be moved away or its disk be unmounted,
    requests answer 503 (portal/web/outage.py) instead of SQLite making a new empty file there,
    which would answer 500 and which a later `make run` would set up as a new portal in place
    of the real one. A file that does not exist yet is created by `flask db upgrade` (a new
    installation), a test or the development server (SQLITE_MAY_CREATE overrides the choice)."""
    import sqlite3
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    database = url.database or ""
    if (url.get_backend_name() != "sqlite" or database in ("", ":memory:")
            or database.startswith("file:") or url.query.get("uri")):
        return
    path = Path(database)
    if not path.is_absolute():
        return
    # Who may make the database: `flask db upgrade` (which `make run` runs first), tests, the
    # development server; never a served portal, where a missing file is an outage, not a new
    # installation (gunicorn started after the file went would otherwise make it empty).
    may_create = app.config.get("SQLITE_MAY_CREATE")
    if may_create is None:
        may_create = "gunicorn.arbiter" not in sys.modules
    if may_create and not path.is_file():
        return
    target = f"file:{quote(str(path))}?mode=rw"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(target, uri=True, check_same_thread=False)

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "creator": connect, **(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})}


def enforce_sqlite_foreign_keys(engine: Engine) -> None:
    """SQLite checks foreign keys only when asked; PostgreSQL always does. Ask, so that the
    embedded default keeps the same rules."""
    from sqlalchemy import event

    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(connection: DBAPIConnection, _record: object) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def register_blueprints(app: Flask) -> None:
    from portal.web.admin import bp as admin_bp
    from portal.web.api import bp as api_bp
    from portal.web.auditor import bp as auditor_bp
    from portal.web.citizen import bp as citizen_bp
    from portal.web.liaison import bp as liaison_bp
    from portal.web.staff import bp as staff_bp

    app.register_blueprint(citizen_bp)
    app.register_blueprint(staff_bp, url_prefix="/staff")
    app.register_blueprint(liaison_bp, url_prefix="/liaison")
    app.register_blueprint(auditor_bp, url_prefix="/audit")
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(admin_bp)
    csrf.exempt(api_bp)
    install_rate_limits(app)


def register_errorhandlers(app: Flask) -> None:
    from portal.web.errors import register

    register(app)


def register_commands(app: Flask) -> None:
    from portal.commands import register

    register(app)


def configure_logging(app: Flask) -> None:
    """Werkzeug's request log carries client addresses; the portal never writes one."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # Pillow logs EXIF tag values at DEBUG: those are the citizen's content.
    logging.getLogger("PIL").setLevel(logging.INFO)
    from portal.web.logscrub import RedactAddresses

    app.logger.addFilter(RedactAddresses())
    app.logger.setLevel(logging.INFO)
