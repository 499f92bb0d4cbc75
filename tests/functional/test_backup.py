"""Issue 11, backups: `flask backup DIR` copies the database while the portal runs (SQLite's
online backup API, or pg_dump of one snapshot) with a manifest; `flask restore DIR` puts it into
an empty database. Restored into a fresh database, the units' recovery keys open every tip and
file, the custodian keys every identity, the audit log verifies against the backup's last signed
checkpoint as an auditor checks it, and every table holds the rows the manifest counted. A
database that has tables and a dump that was altered are refused in one line; a copy taken while
tips are being filed is of one committed state."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import create_engine, make_url, select, text

from auditlog.database import export_bundle, verify_database
from auditlog.events import SYSTEM, record
from auditlog.verify import verify_bundle
from models import Attachment, Tip, TipIdentity
from portal import ROOT, create_app
from portal.intake import filing
from portal.operations import backup
from portal.operations.setup import complete_setup
from portal.security import crypto
from portal.web.extensions import db
from tests.conftest import (
    ADMIN_PASSWORD,
    COSTS,
    FAST_ARGON2,
    SERVER_DATABASE_URL,
    TEST_DATABASE_URL,
    Staff,
    _driver_url,
    test_settings,
)
from tests.functional.test_referral_handover import referral_scene, submit_with_report
from tests.helpers import MemoryUpload, attachment_ciphertext, jpeg_with_metadata

LIMITS = filing.Limits(10, 10**7, 10**7)
OLDER_REVISION = "a81e00000008"


@pytest.fixture
def empty_target(tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database: a new SQLite file, or a PostgreSQL database of this
    worker's, made here and dropped afterwards."""
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'fresh' / 'qingliu.sqlite3'}"
        return
    name = f"{make_url(TEST_DATABASE_URL).database}_restore"  # test_gw0 → test_gw0_restore
    server = create_engine(_driver_url(SERVER_DATABASE_URL or TEST_DATABASE_URL),
                           isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(_driver_url(TEST_DATABASE_URL)).set(database=name).render_as_string(
        hide_password=False)
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def app_on(url: str, folder: Path) -> Flask:
    settings = test_settings(folder)
    settings["SQLALCHEMY_DATABASE_URI"] = url
    return create_app(settings)


def run_on(application: Flask, *args: str) -> Result:
    """A command of `application`, inside its own app context: the test's `app` context is
    pushed already, and Flask's CLI would otherwise run the command there."""
    with application.app_context():
        return application.test_cli_runner().invoke(args=list(args))


def file_tip(narrative: str, uploads: list[MemoryUpload], **identity: object) -> int:
    draft = filing.TipDraft(narrative=narrative, county="yanji", category="P01",
                            identity=filing.Identity(**identity) if identity else None)
    return filing.file_tip(db.session, draft, uploads, limits=LIMITS, receipt_cost=FAST_ARGON2,
                           actor=SYSTEM).tip_id


def opened(identities: list[str]) -> dict[str, dict[int, str]]:
    """Every tip's content and every file (name and bytes), every identity, opened with these
    keys: as sha256 of the plaintext, by row id. A row the keys do not open fails the test."""
    tips = {tip.id: hashlib.sha256(crypto.open_sealed(tip.content, identities)).hexdigest()
            for tip in db.session.scalars(select(Tip))}
    files = {}
    for attachment in db.session.scalars(select(Attachment)):
        meta = crypto.open_sealed(attachment.meta, identities)
        data = crypto.open_sealed(attachment_ciphertext(db.session, attachment.id), identities)
        files[attachment.id] = hashlib.sha256(meta + b"\0" + data).hexdigest()
    return {"tips": tips, "files": files}


def identities_opened(custodian: list[str]) -> dict[int, str]:
    return {row.tip_id: hashlib.sha256(crypto.open_sealed(row.sealed, custodian)).hexdigest()
            for row in db.session.scalars(select(TipIdentity))}


def live_counts() -> dict[str, int]:
    with db.engine.connect() as conn:
        return backup.row_counts(conn)


def mark_schema_revision(revision: str) -> None:
    """The tests' databases are made by create_all and stamped with the head (tests/conftest.py):
    give this one an older revision, as a backup taken before an upgrade has."""
    db.session.execute(text("CREATE TABLE IF NOT EXISTS alembic_version "
                            "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
    db.session.execute(text("DELETE FROM alembic_version"))
    db.session.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    db.session.commit()


def test_a_backup_restored_into_a_fresh_database_opens_verifies_and_counts(
        app, tmp_path, empty_target) -> None:
    setup = complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    unit_keys, custodian_keys = list(setup.recovery.values()), list(
        setup.custodian_recovery.values())
    staff = Staff(app, dict(setup.recovery))
    # A case referred and handed over (its package sealed to the receiving body, a checkpoint
    # signed at hand-over), tips with files, and a real-name tip.
    scene = referral_scene(app, staff)
    submit_with_report(scene)
    scene.head.post(f"/staff/referrals/{scene.referral_id}/approve")
    handed = scene.officer.post(f"/staff/referrals/{scene.referral_id}/hand_over",
                                data={"contact_phone": "0433-2512345"})
    assert handed.status_code == 303, handed.get_data(as_text=True)[:1000]
    file_tip("oil barrels behind the dye works", [
        MemoryUpload("barrels.jpg", jpeg_with_metadata()),
        MemoryUpload("notes.txt", "三次，晚上十点以后。".encode())])
    file_tip("the river turned red", [MemoryUpload("river.jpg", jpeg_with_metadata("Other"))])
    file_tip("I saw the truck myself", [MemoryUpload("truck.txt", "plate 吉H-12345".encode())],
             name="김영희", phone="13912345678", contact_ok=True)
    runner = app.test_cli_runner()
    signed = runner.invoke(args=["audit", "checkpoint"])
    assert signed.exit_code == 0, signed.output
    record(db.session, SYSTEM, "test.after_checkpoint")  # the log goes on past it
    db.session.commit()
    mark_schema_revision(OLDER_REVISION)
    before = opened(unit_keys)
    identities_before = identities_opened(custodian_keys)
    assert len(before["tips"]) == 5 and len(before["files"]) >= 6 and identities_before

    out = tmp_path / "backups" / "2026-11-29"
    made = runner.invoke(args=["backup", str(out)])
    assert made.exit_code == 0, made.output
    assert "Not in it: the audit signing key and SECRET_KEY" in made.output
    manifest = json.loads((out / "manifest.json").read_text())
    kind = db.engine.dialect.name
    dump = out / backup.DUMPS[kind]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {
        "manifest.json": 0o600, dump.name: 0o600}
    assert manifest["database"]["kind"] == kind
    assert manifest["database"]["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert manifest["database"]["verified"]["result"] == "ok"
    assert manifest["schema_revision"] == OLDER_REVISION
    assert manifest["tables"] == live_counts() and manifest["tables"]["tips"] == 5
    checkpoint = manifest["audit_log"]["last_checkpoint"]
    assert checkpoint and checkpoint["size"] == manifest["audit_log"]["size"] - 1
    assert manifest["audit_log"]["verifier"] and "keys" not in {p.name for p in out.iterdir()}

    fresh = app_on(empty_target, tmp_path / "fresh")
    restored = run_on(fresh, "restore", str(out))
    assert restored.exit_code == 0, restored.output
    assert "as the manifest records" in restored.output
    assert f"verified against the backup's last checkpoint {checkpoint['size']}" in \
        restored.output
    assert "flask --app app db upgrade" in restored.output  # the backup is at an older revision
    assert "The audit signing key is not at" in restored.output  # the new instance has none

    with fresh.app_context():
        assert live_counts() == manifest["tables"]
        # The units' recovery keys open every tip and file, as they did before the backup.
        assert opened(unit_keys) == before
        assert identities_opened(custodian_keys) == identities_before
        assert db.session.scalar(select(text("version_num")).select_from(
            text("alembic_version"))) == OLDER_REVISION
        # The audit log, as the auditor checks it: the public key from the manifest, the
        # restored log exported and verified offline against the backup's last checkpoint.
        public = backup._PublicKey(manifest["audit_log"]["verifier"])
        result = verify_database(db.session, public)  # type: ignore[arg-type]
        assert result.ok and result.checkpoint_size == checkpoint["size"], result
        bundle = tmp_path / "export"
        export_bundle(db.session, bundle, public)  # type: ignore[arg-type]
        earlier = tmp_path / "backup-checkpoint.note"
        earlier.write_text(checkpoint["note"])
        report = verify_bundle(str(bundle), previous=str(earlier))
        assert report.entries == manifest["audit_log"]["size"]
        db.session.remove()

        # Restoring again into the now filled database: refused in one line, nothing changed.
        again = run_on(fresh, "restore", str(out))
        assert again.exit_code == 2 and again.stdout == ""
        assert again.stderr.count("\n") == 1 and "already has" in again.stderr, again.stderr
        assert "restore only into an empty database" in again.stderr
        assert "Traceback" not in again.output

    # An altered dump is refused before anything is touched.
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    tampered = run_on(fresh, "restore", str(out))
    assert tampered.exit_code == 2 and tampered.stderr.count("\n") == 1
    assert "does not match its SHA-256" in tampered.stderr, tampered.stderr
    with fresh.app_context():
        assert live_counts() == manifest["tables"]
        db.session.remove()
        db.engine.dispose()


def test_backup_keeps_secrets_out_unless_asked_and_refuses_a_used_folder(app, tmp_path) -> None:
    runner = app.test_cli_runner()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "old.txt").write_text("an earlier backup")
    refused = runner.invoke(args=["backup", str(tmp_path / "used")])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "not empty" in refused.stderr
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["old.txt"]

    runner.invoke(args=["audit", "checkpoint"])  # makes the signing key
    out = tmp_path / "with-keys"
    made = runner.invoke(args=["backup", "--with-keys", str(out)])
    assert made.exit_code == 0, made.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["keys"]) == {"audit-log.key", "secret_key"}
    assert stat.S_IMODE((out / "keys").stat().st_mode) == 0o700
    key_file = Path(app.instance_path) / "audit-log.key"
    assert (out / "keys" / "audit-log.key").read_bytes() == key_file.read_bytes()
    assert stat.S_IMODE((out / "keys" / "audit-log.key").stat().st_mode) == 0o600
    assert (out / "keys" / "secret_key").read_text().strip() == app.config["SECRET_KEY"]
    # The manifest names the public verifier key only, never the signing key.
    assert manifest["audit_log"]["verifier"] == key_file.read_text().split("\n")[1]
    signer = key_file.read_text().split("\n")[0]
    assert signer not in (out / "manifest.json").read_text()


def test_restore_places_the_backed_up_keys_where_none_are(app, tmp_path, empty_target) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["audit", "checkpoint"])
    out = tmp_path / "b"
    assert runner.invoke(args=["backup", "--with-keys", str(out)]).exit_code == 0
    fresh = app_on(empty_target, tmp_path / "fresh")
    restored = run_on(fresh, "restore", str(out))
    assert restored.exit_code == 0, restored.output
    placed = Path(fresh.instance_path) / "audit-log.key"
    assert placed.read_bytes() == (Path(app.instance_path) / "audit-log.key").read_bytes()
    assert stat.S_IMODE(placed.stat().st_mode) == 0o600
    assert "The audit signing key is not at" not in restored.output
    with fresh.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(("restarts", "wal"), [(backup.SQLITE_RESTARTS, False), (0, False),
                                              (backup.SQLITE_RESTARTS, True)],
                         ids=["steps", "one-step", "wal"])
def test_a_backup_taken_while_tips_are_filed_is_one_committed_state(
        app, tmp_path, empty_target, monkeypatch, restarts, wal) -> None:
    """SQLite: the copy restarts when the writer commits between two steps; with no restart
    allowed (a database written to without pause) the last attempt copies in one step; a
    database in WAL mode is copied in one read transaction while the writer goes on.
    PostgreSQL: pg_dump dumps the snapshot the rows were counted in, while tips are filed."""
    if TEST_DATABASE_URL and (restarts == 0 or wal):
        pytest.skip("SQLite only")
    if wal:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode=WAL").scalar() == "wal"
    complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    base = live_counts()
    committed = [0]
    changed, stop, failures = threading.Condition(), threading.Event(), []

    def writer() -> None:
        with app.app_context():
            try:
                while not stop.is_set() and len(committed) < 400:
                    file_tip(f"tip {len(committed)}", [MemoryUpload("a.txt", b"x" * 3000)])
                    with changed:
                        committed.append(committed[-1] + 1)
                        changed.notify_all()
            except Exception as error:  # reported by the test below
                with changed:
                    failures.append(error)
                    changed.notify_all()
            finally:
                db.session.remove()

    def a_commit_after_now() -> None:
        """Wait until the writer has committed once after this call. The tip counted by the next
        append may have committed before the call (its count comes after its commit); the one
        counted after it was filed after the call."""
        with changed:
            seen = len(committed)
            assert changed.wait_for(lambda: failures or len(committed) >= seen + 2, 30)

    steps = []

    def on_step(remaining: int, total: int) -> None:
        """After the first step of the copy, let the writer commit once (the copy restarts);
        after the last, once more (the live database is then ahead of the copy)."""
        if (not steps and remaining) or not remaining:
            a_commit_after_now()
        steps.append(remaining)

    monkeypatch.setattr(backup, "SQLITE_STEP_PAGES", 16)
    monkeypatch.setattr(backup, "SQLITE_RESTARTS", restarts)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        a_commit_after_now()
        manifest = backup.backup(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "b",
                                 migrations=ROOT / "migrations", on_step=on_step)
        during = len(committed)
    finally:
        stop.set()
        thread.join(60)
    assert not failures, failures
    assert manifest["database"]["verified"]["result"] == "ok"
    if manifest["database"]["kind"] == "sqlite":
        consistency = manifest["database"]["consistency"]
        assert consistency["journal_mode"] == ("wal" if wal else "rollback")
        assert steps[-1] == 0 and (wal or consistency["restarts"] >= 1), steps
        assert consistency["single_step"] == (restarts == 0 or wal), consistency
    # Every table as after one of the writer's commits: k whole tips, none half.
    tables = manifest["tables"]
    k = tables["tips"] - base["tips"]
    assert 1 <= k <= during and k in committed
    for name in ("tips", "attachments", "blob_chunks", "tip_updates", "audit_events"):
        assert tables[name] == base[name] + k, (name, tables[name], base[name], k)
    assert manifest["audit_log"]["size"] == tables["audit_events"]

    fresh = app_on(empty_target, tmp_path / "fresh")
    restored = run_on(fresh, "restore", str(tmp_path / "b"))
    assert restored.exit_code == 0, restored.output
    with fresh.app_context():
        assert live_counts() == tables
        db.engine.dispose()


def test_restore_refuses_what_it_cannot_restore(app, tmp_path) -> None:
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["restore", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no manifest.json" in missing.stderr
    assert missing.stderr.count("\n") == 1
    out = tmp_path / "b"
    assert runner.invoke(args=["backup", str(out)]).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "schema_revision": "ffff"}))
    newer = runner.invoke(args=["restore", str(out)])
    assert newer.exit_code == 2 and "newer version" in newer.stderr, newer.stderr
    (out / "manifest.json").write_text(json.dumps({**manifest, "database": None}))
    broken = runner.invoke(args=["restore", str(out)])
    assert broken.exit_code == 2 and "incomplete" in broken.stderr, broken.output
    assert broken.stderr.count("\n") == 1


def test_an_in_memory_or_unknown_database_is_refused_in_words(tmp_path) -> None:
    with pytest.raises(backup.BackupError, match="in-memory"):
        backup.backup("sqlite://", tmp_path / "b", migrations=ROOT / "migrations")
    with pytest.raises(backup.BackupError, match="only SQLite and PostgreSQL"):
        backup.backup("mysql://x@localhost/db", tmp_path / "b", migrations=ROOT / "migrations")
    assert not (tmp_path / "b").exists()
