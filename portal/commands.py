"""CLI: `flask --app app seed | setup | setup-link`."""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import Flask, current_app

from portal import crypto
from portal.extensions import db
from portal.seed import seed
from portal.setup import AlreadySetUp, complete_setup, new_setup_token


def write_recovery_keys(directory: Path, recovery: dict[str, crypto.AgeIdentity]) -> list[Path]:
    """One age identity file per unit, named after the unit's code (e.g. yanji.txt), 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for code, identity in recovery.items():
        path = directory / f"{code}.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(crypto.identity_file_text(identity, f"Qingliu recovery key, unit {code}"))
        written.append(path)
    return written


def register(app: Flask) -> None:
    register_audit_commands(app)

    @app.cli.command("seed")
    def seed_command() -> None:
        """Load the default units and the 17 categories (idempotent)."""
        seed(db.session)
        click.echo("units and categories are in place")

    @app.cli.command("setup")
    @click.option("--admin", "admin_name", required=True, help="the first administrator's name")
    @click.option("--recovery-out", type=click.Path(file_okay=False, path_type=Path),
                  required=True, help="folder for the units' recovery keys (keep it offline)")
    def setup_command(admin_name: str, recovery_out: Path) -> None:
        """Non-interactive first setup; the password comes from PORTAL_ADMIN_PASSWORD."""
        password = os.environ.get("PORTAL_ADMIN_PASSWORD", "")
        if not password:
            raise click.UsageError("set PORTAL_ADMIN_PASSWORD")
        seed(db.session)
        try:
            result = complete_setup(db.session, admin_name, password,
                                    wrap_cost=current_app.config["WRAP_ARGON2"],
                login_cost=current_app.config["LOGIN_ARGON2"])
        except AlreadySetUp as exc:
            raise click.ClickException("this portal is already set up") from exc
        for path in write_recovery_keys(recovery_out, result.recovery):
            click.echo(f"wrote {path}")
        click.echo("Move these files offline now: they are the only way to recover the units' "
                   "keys, and they decrypt every tip of their unit.")

    @app.cli.command("setup-link")
    @click.option("--base-url", default="http://127.0.0.1:5000", show_default=True)
    def setup_link_command(base_url: str) -> None:
        """Print a one-time setup link while no administrator exists."""
        token = new_setup_token(db.session)
        if token is None:
            click.echo("The portal is set up.")
            return
        click.echo(f"First start: create the administrator and the units' keys at\n"
                   f"  {base_url.rstrip('/')}/setup/{token}\n(the link works once)")


def register_audit_commands(app: Flask) -> None:
    from flask.cli import AppGroup

    audit = AppGroup("audit", help="The tamper-evident log: checkpoints, verification, export.")

    @audit.command("checkpoint")
    def checkpoint_command() -> None:
        """Sign a checkpoint of the log as it stands (run it periodically, e.g. hourly)."""
        from portal.web import checkpoint_now

        click.echo(checkpoint_now())

    @audit.command("verify")
    def verify_command() -> None:
        """Check the stored log against its signed checkpoints; exit 1 naming the first fault."""
        from portal.auditlog import verify_database
        from portal.web import audit_keys

        result = verify_database(db.session, audit_keys())  # type: ignore[arg-type]
        if not result.ok:
            raise click.ClickException(result.reason)
        click.echo(f"ok: {result.entries} entries, latest checkpoint {result.checkpoint_size}")

    @audit.command("export")
    @click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
    def export_command(directory: Path) -> None:
        """Write an export bundle for `python -m referral.verify DIRECTORY`."""
        from portal.auditlog import export_bundle
        from portal.web import audit_keys, checkpoint_now

        checkpoint_now()
        count = export_bundle(db.session, directory, audit_keys())  # type: ignore[arg-type]
        click.echo(f"wrote {count} entries to {directory}")

    app.cli.add_command(audit)
