"""Health for load balancers and operators: /healthz, /readyz, `flask --app app health`, and the
start-up report of missing system packages. The checks themselves are portal/web/readiness.py.

- /healthz: the process answers. It touches nothing else (no database, Redis, session, limit).
- /readyz: 200 "ready" when every required check passes, else 503 "not ready" with Retry-After.
  The public learns nothing more; the details are in the log (when the answer changes) and in
  `flask --app app health`.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy import Engine

from portal.web import readiness

bp = Blueprint("health", __name__)
ENDPOINTS = frozenset({"health.healthz", "health.readyz"})
# A load balancer's probe gives up after a few seconds: answer well before.
HTTP_DEADLINE = 1.5
CLI_DEADLINE = 15.0


class Probe:
    """What the checks of one app keep between requests: their database engine (made on first
    use), the runner that bounds them, and the last answer (logged when it changes)."""

    def __init__(self, app: Flask) -> None:
        self.runner = readiness.Runner()
        self.database_url: str = app.config["SQLALCHEMY_DATABASE_URI"]
        self.redis_url: str | None = app.config.get("REDIS_URL") or None
        self.instance_path = Path(app.instance_path)
        # As portal/web/__init__.py audit_keys() finds it.
        self.signing_key = Path(app.config.get("AUDIT_SIGNING_KEY_FILE")
                                or self.instance_path / "audit-log.key")
        self.min_free_mb: int = app.config["READY_MIN_FREE_MB"]
        self.migrations = Path(app.extensions["migrate"].directory)
        self._engine: Engine | None = None
        self.last_ready: bool | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = readiness.database_engine(self.database_url)
        return self._engine

    def database_group(self) -> list[readiness.Check]:
        state = readiness.check_database(self.engine(),
                                         readiness.migration_heads(self.migrations))
        return [*state.checks, readiness.check_signing_key(self.signing_key,
                                                           state.checkpoints_signed)]

    def redis_group(self) -> list[readiness.Check]:
        return [readiness.check_redis(self.redis_url)] if self.redis_url else []

    def system_group(self) -> list[readiness.Check]:
        parts = readiness.system_parts(readiness.font_choices(), os.environ.get("PATH"))
        folders = {"instance folder": self.instance_path}
        database_folder = readiness.database_folder(self.database_url)
        if database_folder is not None:
            folders["database folder"] = database_folder
        return [readiness.check_fonts(parts), readiness.check_media_tools(parts),
                *readiness.check_free_space(folders, self.min_free_mb)]

    def checks(self, deadline: float) -> list[readiness.Check]:
        groups = {"database": self.database_group}
        if self.redis_url:
            groups["redis"] = self.redis_group
        groups["system"] = self.system_group
        return self.runner.run(groups, deadline)


def probe(app: Flask) -> Probe:
    found = app.extensions.get("readiness")
    if found is None:
        found = app.extensions["readiness"] = Probe(app)
    return found


def problems(app: Flask) -> list[readiness.Check]:
    """The required checks this server fails, for the administrator's start page (which says
    what to do about each in words); none when the checks themselves cannot run."""
    try:
        checks = probe(app).checks(HTTP_DEADLINE)
    except Exception:  # the page must render whatever the checks meet
        return []
    return [check for check in checks if check.required and not check.ok]


def _plain(body: str, status: int = 200) -> Response:
    response = Response(body + "\n", status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    return _plain("ok")


@bp.get("/readyz")
def readyz() -> Response:
    app = current_app
    state = probe(app)
    try:
        checks = state.checks(HTTP_DEADLINE)
    except Exception as error:  # this route reports failure as data, never a 500
        checks = [readiness.Check("readiness", False, f"could not be checked: {error!r}")]
    ready = readiness.is_ready(checks)
    if ready != state.last_ready:
        state.last_ready = ready
        if ready:
            app.logger.info("Ready for traffic")
        else:
            app.logger.warning("Not ready for traffic: %s", "; ".join(
                f"{c.name}: {c.detail}" for c in checks if c.required and not c.ok))
    if ready:
        return _plain("ready")
    response = _plain("not ready", 503)
    response.headers["Retry-After"] = str(app.config["RETRY_AFTER_SECONDS"])
    return response


def _not_limited() -> bool:
    """The rate limiter's filter: the probes are never counted (nor, when the counts' store is
    down, do they make the limiter try it again)."""
    return request.endpoint in ENDPOINTS


def install(app: Flask) -> None:
    """Register /healthz, /readyz (outside the rate limits) and `flask --app app health`."""
    app.register_blueprint(bp)
    limiter = app.extensions.get("rate_limiter")
    if limiter is not None:
        limiter.request_filter(_not_limited)

    @app.cli.command("health")
    def health_command() -> None:
        """Check what this server needs to serve: the database and its migrations, the units'
        keys, Redis (when configured), the audit signing key, the CJK fonts, ffmpeg and free
        disk space. Exit status 0 when ready, 1 when not."""
        checks = probe(app).checks(CLI_DEADLINE)
        for check in checks:
            word = "ok" if check.ok else ("problem" if check.required else "warning")
            click.echo(f"{word:8} {check.name}: {check.detail}")
        missing = readiness.missing_packages(
            readiness.system_parts(readiness.font_choices(), os.environ.get("PATH")))
        if missing:
            click.echo("Install the missing Debian packages, as root: "
                       + readiness.install_line(missing))
        if readiness.is_ready(checks):
            click.echo("Ready: this server can take traffic.")
            return
        click.echo("Not ready: /readyz answers 503 until every problem above is solved.")
        raise click.exceptions.Exit(1)


def report_missing_system_parts(app: Flask) -> None:
    """Log once at start, as a warning, which Debian packages the portal needs are missing
    (the letter's CJK fonts, ffmpeg) and the one line that installs them. Looked up once per
    process; not under tests unless REPORT_SYSTEM_PARTS is set."""
    if app.testing and not app.config.get("REPORT_SYSTEM_PARTS"):
        return
    parts = readiness.system_parts_cached(readiness.font_choices(), os.environ.get("PATH"))
    missing = readiness.missing_packages(parts)
    if missing:
        app.logger.warning(
            "Missing Debian packages: %s (%s not found): referral letters or media cleaning "
            "will fail. As root: %s", " ".join(missing),
            ", ".join(p.what for p in parts if p.found is None), readiness.install_line(missing))
