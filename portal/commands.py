"""CLI: `flask --app app seed | setup | setup-link | users create | calendar-check | audit … |
blind-index rotate | identities keys | identities separate | retention | backup DIR |
restore DIR`.

Unattended commands fail with one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn

import click
from flask import Flask, current_app

from portal.operations.seed import seed
from portal.operations.setup import AlreadySetUp, complete_setup, new_setup_token
from portal.security import crypto
from portal.security.accounts import MIN_PASSWORD_LENGTH, WeakPassword
from portal.web.extensions import db


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2: what an unattended script can log and act on."""
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(2)


def recovery_file_name(code: str, *, custodian: bool = False) -> str:
    """yanji.txt for a unit key, custodian-yanji.txt for a custodian (信息保密员) key."""
    return f"custodian-{code}.txt" if custodian else f"{code}.txt"


def recovery_comment(code: str, *, custodian: bool = False) -> str:
    return (f"Qingliu custodian recovery key {code} (opens reporters' identities only)"
            if custodian else f"Qingliu recovery key, unit {code}")


def write_recovery_keys(directory: Path, recovery: dict[str, crypto.AgeIdentity], *,
                        custodian: bool = False) -> list[Path]:
    """One age identity file per unit, named after the unit's code (e.g. yanji.txt, or
    custodian-yanji.txt for a custodian key), 0600; an existing file is never overwritten."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for code, identity in recovery.items():
        path = directory / recovery_file_name(code, custodian=custodian)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(crypto.identity_file_text(identity,
                                                   recovery_comment(code, custodian=custodian)))
        written.append(path)
    return written


def register(app: Flask) -> None:
    register_audit_commands(app)
    register_user_commands(app)
    register_calendar_commands(app)
    register_blind_index_commands(app)
    register_retention_command(app)
    register_identity_commands(app)
    register_backup_commands(app)

    @app.cli.command("seed")
    def seed_command() -> None:
        """Load the default units and the 17 categories (idempotent)."""
        seed(db.session())
        click.echo("units and categories are in place")

    @app.cli.command("setup")
    @click.option("--admin", "admin_name", required=True, help="the first administrator's name")
    @click.option("--recovery-out", type=click.Path(file_okay=False, path_type=Path),
                  required=True, help="folder for the units' recovery keys (keep it offline)")
    def setup_command(admin_name: str, recovery_out: Path) -> None:
        """Non-interactive first setup; the password comes from PORTAL_ADMIN_PASSWORD."""
        password = os.environ.get("PORTAL_ADMIN_PASSWORD", "")
        if not password:
            fail("set PORTAL_ADMIN_PASSWORD to the first administrator's password")
        seed(db.session())
        try:
            result = complete_setup(db.session(), admin_name, password,
                                    wrap_cost=current_app.config["WRAP_ARGON2"],
                                    login_cost=current_app.config["LOGIN_ARGON2"])
        except WeakPassword:
            fail(f"PORTAL_ADMIN_PASSWORD is too weak: use at least {MIN_PASSWORD_LENGTH} "
                 "characters")
        except AlreadySetUp:
            fail("this portal is already set up")
        for path in write_recovery_keys(recovery_out, result.recovery):
            click.echo(f"wrote {path}")
        for path in write_recovery_keys(recovery_out, result.custodian_recovery, custodian=True):
            click.echo(f"wrote {path}")
        click.echo("Move these files offline now: they are the only way to recover the units' "
                   "keys, and they decrypt every tip of their unit. The custodian-*.txt files "
                   "open only reporters' identities: keep them apart, for the custodians.")

    @app.cli.command("setup-link")
    @click.option("--base-url", envvar="PORTAL_BASE_URL", default="http://127.0.0.1:5000",
                  show_default=True, help="the portal's address (or PORTAL_BASE_URL)")
    def setup_link_command(base_url: str) -> None:
        """Print a one-time setup link while no administrator exists."""
        token = new_setup_token(db.session())
        if token is None:
            click.echo("The portal is set up.")
            return
        click.echo(f"First start: create the administrator and the units' keys at\n"
                   f"  {base_url.rstrip('/')}/setup/{token}\n(the link works once)")


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def read_new_password(variable: str) -> str:
    """The password from the environment, else a hidden prompt when a person is at the terminal;
    an unattended run without it fails."""
    password = os.environ.get(variable, "")
    if password:
        return password
    if not stdin_is_terminal():
        fail(f"set {variable} (no terminal to ask for the password)")
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                            err=True)
    return str(password)


def register_user_commands(app: Flask) -> None:
    from flask.cli import AppGroup

    users = AppGroup("users", help="Staff accounts, for unattended provisioning.")

    @users.command("create")
    @click.argument("name")
    @click.option("--unit", "unit_code", required=True,
                  help="the unit's code, e.g. yanji or psb_zhou")
    @click.option("--role", "roles", required=True, multiple=True,
                  help="intake_officer, case_officer, head, custodian, liaison, auditor or "
                       "administrator "
                       "(repeat for several)")
    @click.option("--display-name", default="", help="the name colleagues see")
    @click.option("--base-url", envvar="PORTAL_BASE_URL", default="http://127.0.0.1:5000",
                  show_default=True,
                  help="the portal's address, for the sign-in link")
    def create_command(name: str, unit_code: str, roles: tuple[str, ...], display_name: str,
                       base_url: str) -> None:
        """Create an account; the first password comes from PORTAL_USER_PASSWORD (or a hidden
        prompt at a terminal). Prints a one-time sign-in link where the person chooses their
        own password. Exit 2 with one line on stderr when anything is refused.

        Its roles hold at once: whoever runs this on the server is the setup's trust root.
        Officer, liaison and administrator roles given on the administration pages instead
        wait for a second person's confirmation (a head of the unit, a liaison of the body, or
        another administrator)."""
        from auditlog.events import SYSTEM, record
        from portal.security.accounts import (
            RoleRefused,
            UsernameTaken,
            create_account,
            first_sign_in_token,
            parse_role,
        )

        try:
            wanted = [(unit_code, parse_role(role)) for role in roles]
        except RoleRefused:
            fail(f"unknown role in {', '.join(roles)}: use one of {_role_names()}")
        password = read_new_password("PORTAL_USER_PASSWORD")
        try:
            user = create_account(db.session(), name, password, wanted,
                                  wrap_cost=current_app.config["WRAP_ARGON2"],
                                  login_cost=current_app.config["LOGIN_ARGON2"], actor=SYSTEM,
                                  display_name=display_name.strip())
            record(db.session(), SYSTEM, "user.sign_in_link_issued", object_type="user",
                   object_id=user.id, via="cli")
            db.session.commit()
        except UsernameTaken:
            db.session.rollback()
            fail(f"the name {name!r} is taken")
        except WeakPassword:
            db.session.rollback()
            fail(f"the password is too weak: use at least {MIN_PASSWORD_LENGTH} characters")
        except RoleRefused as refused:
            db.session.rollback()
            fail(_ROLE_REFUSALS.get(refused.code, refused.code).format(unit=unit_code))
        token = first_sign_in_token(user, current_app.config["SECRET_KEY"])
        click.echo(f"created {user.username} ({', '.join(roles)} in {unit_code}; confirmed at "
                   f"once, as given from the server's command line)")
        click.echo(f"One-time sign-in link (valid 7 days; give it with the password):\n"
                   f"  {base_url.rstrip('/')}/welcome/{token}")

    app.cli.add_command(users)


def _role_names() -> str:
    from models import Role

    return ", ".join(r.value for r in Role)


_ROLE_REFUSALS = {
    "unknown_unit": "unknown unit {unit!r}",
    "liaison_needs_receiving_body": "{unit!r} is not a receiving body: a liaison belongs to one "
                                    "(e.g. psb_zhou)",
    "officer_needs_handling_unit": "{unit!r} is not a handling unit: officers and heads belong to "
                                   "one (e.g. zhou, yanji)",
    "custodian_needs_handling_unit": "{unit!r} is not a handling unit: a custodian belongs to "
                                     "one (e.g. zhou, yanji)",
    "oversight_needs_bureau": "auditors and administrators belong to the bureau, not to {unit!r}",
    "admin_not_officer": "an administrator cannot also be an officer or a liaison",
    "bad_username": "the name must be 1 to 64 characters",
    "no_role": "give at least one --role",
}


def register_calendar_commands(app: Flask) -> None:
    @app.cli.command("calendar-check")
    @click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
                  help="check as of this day (default: today in the prefecture)")
    def calendar_check_command(today: datetime | None) -> None:
        """Exit 1 naming the years without holiday data that deadlines already reach (this
        year, and next year from 1 November)."""
        from portal.web.admin.warnings import missing_calendar_years
        from referral.calendar import PREFECTURE_ZONE

        day: date = today.date() if today else datetime.now(PREFECTURE_ZONE).date()
        missing = missing_calendar_years(db.session(), day)
        if missing:
            years = ", ".join(str(y) for y in missing)
            click.echo(f"warning: the holiday calendar for {years} is missing; every deadline "
                       f"that reaches it is uncertain. Import it on /admin/calendar.", err=True)
            raise click.exceptions.Exit(1)
        click.echo(f"ok: the holiday calendar covers what deadlines reach as of {day}")


def read_identities(paths: tuple[Path, ...]) -> list[crypto.AgeIdentity]:
    """The age identities in identity files (recovery keys): the AGE-SECRET-KEY-1 lines."""
    found = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {path}: {exc.__class__.__name__}")
        found += [crypto.AgeIdentity(line.strip()) for line in text.splitlines()
                  if line.strip().upper().startswith("AGE-SECRET-KEY-1")]
    return found


def register_blind_index_commands(app: Flask) -> None:
    from flask.cli import AppGroup

    blind = AppGroup("blind-index", help="The key of the blind indexes that find related tips.")

    @blind.command("rotate")
    @click.option("--identity", "identity_files", multiple=True, required=True,
                  type=click.Path(dir_okay=False, exists=True, path_type=Path),
                  help="a unit's recovery key file (州本级's opens every tip); repeatable")
    def rotate_command(identity_files: tuple[Path, ...]) -> None:
        """Replace the blind-index key and compute every tip's indexes again with the new one.
        Copies of the database made before then confirm nothing about the new indexes."""
        from auditlog.events import SYSTEM
        from portal.intake.filing import NotAUnitKey, rotate_blind_key

        identities = read_identities(identity_files)
        try:
            result = rotate_blind_key(db.session(), identities, SYSTEM)
        except (NotAUnitKey, crypto.CryptoError):
            fail("give the recovery key file of a handling unit (e.g. zhou.txt)")
        click.echo(f"new blind-index key sealed; {result.indexed} tips indexed again")
        if result.left:
            click.echo(f"{result.left} tips are not opened by these keys: they are indexed when "
                       "an officer of their unit opens them or the queue")

    app.cli.add_command(blind)


def register_retention_command(app: Flask) -> None:
    @app.cli.command("retention")
    @click.option("--dry-run", is_flag=True,
                  help="list the tips whose content would be destroyed, and change nothing")
    def retention_command(dry_run: bool) -> None:
        """Destroy the content, files and messages of closed tips whose category's retention
        period has run out (natural days from closing), keeping their metadata; tips on legal
        hold or in a case still at work are kept. Audited per tip. Meant to run daily (later
        as a scheduled job)."""
        from auditlog.events import SYSTEM
        from models.base import utcnow
        from portal.operations.retention import destroy
        from referral.calendar import PREFECTURE_ZONE as local
        report = destroy(db.session(), utcnow(), dry_run=dry_run, actor=SYSTEM)
        if dry_run:
            for c in report.candidates:
                click.echo(f"tip #{c.tip_id}\t{c.unit_name_zh}\t{c.category_code}\t"
                           f"closed on {c.closed_at.astimezone(local).date()}\t"
                           f"due since {c.due_since.astimezone(local).date()}")
            click.echo(f"dry run: {len(report.candidates)} tips would have their content "
                       "destroyed; nothing was changed")
            return
        click.echo(f"{report.destroyed} tips had their content destroyed under the retention "
                   "rule; their records are kept")


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
        """Sign a checkpoint, then check the stored log against every signed checkpoint; exit 1
        naming the first fault. The same run as the auditor's button, in the foreground: shown
        on the auditor's page and recorded in the log; refused while another one runs."""
        from sqlalchemy.orm import sessionmaker

        from auditlog.verification_runs import latest_report, run_verification, start_run
        from portal.web import audit_keys

        start = start_run(db.session(), None)
        if not start.started:
            running = latest_report(db.session())
            done = f" ({running.done} of {running.total} entries checked)" if (
                running is not None and running.total is not None) else ""
            raise click.ClickException(f"a verification of the log is running already{done}; "
                                       "see the auditor's page, or try again when it has ended")
        result = run_verification(sessionmaker(db.engine), start.run_id, audit_keys(),
                                  current_app.config["AUDIT_LOG_ORIGIN"])
        if result is None:
            raise click.ClickException("the verification was given up as interrupted by "
                                       "another one; see the auditor's page")
        if not result.ok:
            raise click.ClickException(result.reason)
        click.echo(f"ok: {result.entries} entries, latest checkpoint {result.checkpoint_size}")

    @audit.command("export")
    @click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
    def export_command(directory: Path) -> None:
        """Write an export bundle for `python -m auditlog.verify DIRECTORY`."""
        from auditlog.database import export_bundle
        from portal.web import audit_keys, checkpoint_now

        checkpoint_now()
        count = export_bundle(db.session(), directory, audit_keys())
        click.echo(f"wrote {count} entries to {directory}")

    app.cli.add_command(audit)


def register_identity_commands(app: Flask) -> None:
    from flask.cli import AppGroup

    group = AppGroup("identities", help="Real-name reporters' identities, sealed apart from "
                                        "their tips to the custodians' keys.")

    @group.command("keys")
    @click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="folder for the new recovery keys, one 0600 file each (default: print "
                       "them)")
    def keys_command(out: Path | None) -> None:
        """Make the custodian (信息保密员) key of every handling unit that has none (an
        installation set up before they existed) and print or write each recovery key once.
        Audited; run it before `identities separate`."""
        from auditlog.events import SYSTEM
        from portal.security.keys import generate_unit_keys

        made = generate_unit_keys(db.session(), SYSTEM)
        if not made.content and not made.custodian:
            db.session.rollback()
            click.echo("every unit has its keys: nothing to make")
            return
        if out is not None:
            try:
                paths = (write_recovery_keys(out, made.content)
                         + write_recovery_keys(out, made.custodian, custodian=True))
            except OSError as exc:
                db.session.rollback()
                fail(f"cannot write the recovery keys into {out} ({exc.__class__.__name__}); "
                     "nothing was changed")
            db.session.commit()
            for path in paths:
                click.echo(f"wrote {path}")
        else:
            for code, identity in made.content.items():
                click.echo(crypto.identity_file_text(identity, recovery_comment(code)))
            for code, identity in made.custodian.items():
                click.echo(crypto.identity_file_text(identity,
                                                     recovery_comment(code, custodian=True)))
            db.session.commit()
        click.echo(f"{len(made.custodian)} custodian keys made. Keep them offline, apart from "
                   "the unit keys: a custodian key opens only reporters' identities. Hand each "
                   "to a custodian of its unit on the Unit keys page.")

    @group.command("separate")
    @click.option("--identity", "identity_files", multiple=True, required=True,
                  type=click.Path(dir_okay=False, exists=True, path_type=Path),
                  help="a unit's recovery key file (州本级's opens every tip); repeatable")
    def separate_command(identity_files: tuple[Path, ...]) -> None:
        """Move each real-name reporter's identity out of the tip it was sealed in (tips filed
        before identities were kept apart): sealed apart to the custodians' keys, the tip sealed
        again without it. Idempotent; audited with the count."""
        from auditlog.events import SYSTEM
        from portal.intake.identity import separate_identities
        from portal.security.keys import NotSetUp

        identities = read_identities(identity_files)
        if not identities:
            fail("the files given hold no age identity (AGE-SECRET-KEY-1…)")
        try:
            result = separate_identities(db.session(), identities, SYSTEM)
        except NotSetUp:
            fail("the custodian keys have not been made: run `flask identities keys` first")
        click.echo(f"{result.separated} identities sealed apart from their tips")
        if result.left:
            click.echo(f"{result.left} real-name tips are not opened by these keys and still "
                       "hold the identity: run again with 州本级's recovery key (zhou.txt)")

    app.cli.add_command(group)


def _audit_key_file() -> Path:
    """Where this app keeps the audit-log signing key (as portal.web.audit_keys reads it)."""
    return Path(current_app.config.get("AUDIT_SIGNING_KEY_FILE")
                or Path(current_app.instance_path) / "audit-log.key")


def _secret_key_file() -> Path | None:
    """The instance folder's secret_key file, unless SECRET_KEY comes from the environment."""
    return None if os.environ.get("SECRET_KEY") else Path(current_app.instance_path) / "secret_key"


def register_backup_commands(app: Flask) -> None:
    pg_bin = click.option("--pg-bin", type=click.Path(file_okay=False, path_type=Path),
                          envvar="PG_BIN", default=None,
                          help="folder of pg_dump / pg_restore of the server's version "
                               "(default: those on PATH; or PG_BIN)")

    @app.cli.command("backup")
    @click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--with-keys", is_flag=True,
                  help="also copy the audit signing key and SECRET_KEY into DIR/keys (they are "
                       "otherwise backed up separately: whoever holds them can sign checkpoints "
                       "and open staff second factors)")
    @pg_bin
    def backup_command(directory: Path, with_keys: bool, pg_bin: Path | None) -> None:
        """Copy the database into DIRECTORY (new or empty; 0700) while the portal runs: one
        consistent state (SQLite's online backup API, or pg_dump of one snapshot), checked, with
        manifest.json (row counts, schema revision, audit-log head and last checkpoint, SHA-256).
        Exit 2 with one line on stderr when it fails."""
        from portal import ROOT
        from portal.operations.backup import BackupError, backup

        keys: dict[str, bytes] = {}
        if with_keys:
            audit_key = _audit_key_file()
            if audit_key.is_file():
                keys["audit-log.key"] = audit_key.read_bytes()
            keys["secret_key"] = str(current_app.config["SECRET_KEY"]).encode() + b"\n"
        db.session.remove()
        try:
            manifest = backup(current_app.config["SQLALCHEMY_DATABASE_URI"], directory,
                              migrations=ROOT / "migrations", audit_key_file=_audit_key_file(),
                              keys=keys, pg_bin=pg_bin)
        except BackupError as error:
            fail(str(error))
        except OSError as error:
            fail(f"cannot write the backup into {directory}: {error.strerror or error}")
        dump = manifest["database"]
        audit = manifest["audit_log"]
        checkpoint = audit["last_checkpoint"]
        click.echo(f"backup of the {dump['kind']} database written to {directory}")
        click.echo(f"  {dump['dump']}: {dump['bytes']} bytes, sha256 {dump['sha256']}, "
                   f"checked ({dump['verified']['method']})")
        click.echo(f"  {len(manifest['tables'])} tables, {manifest['rows']} rows; schema "
                   f"revision {manifest['schema_revision'] or 'not recorded'}")
        click.echo(f"  audit log: {audit['size']} entries, last signed checkpoint "
                   f"{checkpoint['size'] if checkpoint else 'none'}")
        if with_keys:
            click.echo(f"  keys: {', '.join(sorted(keys))} in {directory / 'keys'}: keep this "
                       "backup as safe as the keys themselves")
        else:
            click.echo("Not in it: the audit signing key and SECRET_KEY; back them up "
                       "separately (README, Backups).")

    @app.cli.command("restore")
    @click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
    @pg_bin
    def restore_command(directory: Path, pg_bin: Path | None) -> None:
        """Restore a backup made by `flask backup` into the configured database, which must be
        empty (stop the portal first). Checks the manifest and the dump's SHA-256 first, then
        counts the rows against the manifest and verifies the audit log against the backup's
        last checkpoint. Exit 2 with one line on stderr when it refuses or fails."""
        from portal import ROOT
        from portal.operations.backup import BackupError, install_keys, restore, verifier_text

        db.session.remove()
        db.engine.dispose()  # no pooled connection keeps the file being replaced open
        try:
            report = restore(current_app.config["SQLALCHEMY_DATABASE_URI"], directory,
                             migrations=ROOT / "migrations", pg_bin=pg_bin)
        except BackupError as error:
            fail(str(error))
        except OSError as error:
            fail(f"cannot restore from {directory}: {error.strerror or error}")
        finally:
            db.engine.dispose()
        manifest = report.manifest
        click.echo(f"restored the {report.kind} backup of {manifest['created_at']} from "
                   f"{directory}")
        click.echo(f"  {len(report.tables)} tables, {sum(report.tables.values())} rows: "
                   + ("as the manifest records" if not any(p.startswith("table ")
                                                           for p in report.problems)
                      else "NOT as the manifest records"))
        if report.audit_entries is not None:
            click.echo(f"  audit log: {report.audit_entries} entries, verified against the "
                       f"backup's last checkpoint {report.audit_checkpoint}")
        for line in install_keys(directory, manifest, {"audit-log.key": _audit_key_file(),
                                                       "secret_key": _secret_key_file()}):
            click.echo(f"  {line}")
        key_file, signed_by = _audit_key_file(), manifest["audit_log"].get("verifier")
        if signed_by and verifier_text(key_file) is None:
            click.echo(f"The audit signing key is not at {key_file}: put the backed-up key "
                       "there before starting the portal, or new checkpoints are signed with a "
                       "new key that auditors do not know.")
        elif signed_by and verifier_text(key_file) != signed_by:
            click.echo(f"The audit signing key at {key_file} did not sign the backup's "
                       "checkpoints: new checkpoints will not verify with the key auditors "
                       "hold. Put the backed-up key there.")
        for note in report.notes:
            click.echo(note)
        if report.revision_status == "older":
            click.echo(f"The backup's schema is at revision {report.revision}, older than this "
                       f"portal's {report.head}: now run `flask --app app db upgrade`.")
        elif report.revision_status == "unrecorded":
            click.echo("The backup records no schema revision (its database was not made by "
                       "`flask db upgrade`).")
        if report.problems:
            fail("restored, but " + "; ".join(report.problems))
