"""Backups: a consistent copy of the database taken while the portal runs, and its restore into
an empty database (`flask backup DIR`, `flask restore DIR`; README "Backups"). No Flask here:
the functions take the database URL and paths.

A backup folder (0700) holds the dump (0600) and manifest.json (0600), written last:

- SQLite (the embedded default): `qingliu.sqlite3`, a copy made with SQLite's online backup API
  (sqlite3.Connection.backup), of one committed state even while tips are filed. A database in
  WAL mode is copied in one step: one read transaction, whose snapshot it copies while writers
  go on (500 MiB: 4.2 s; a writer committing every 20 ms waited at worst 0.17 s). In rollback
  mode (SQLite's default) a reader holds writers back, so the copy goes in steps of
  SQLITE_STEP_PAGES pages, each under a short read lock, and SQLite starts it again when another
  connection commits in between; after SQLITE_RESTARTS such restarts the last attempt copies
  everything in one step, holding writers back for that copy (500 MiB: 6 s, longer than their
  5 s busy timeout). The copy is checked with `PRAGMA integrity_check`.
- PostgreSQL: `qingliu.pgdump`, `pg_dump --format=custom --compress=1` of one transaction
  snapshot. The backup exports that snapshot (REPEATABLE READ, read only) and counts the rows
  in it, and pg_dump dumps exactly it (`--snapshot`), so the counts are those of the dump;
  writers are not held up (300 MiB of files: 31 s; a writer committing every 20 ms waited at
  worst 0.29 s, on 2 cores at load 9). The dump is checked with `pg_restore --list`.

The manifest records the format version, the time, the database kind, the schema revision (the
database's alembic_version) and the code's migration head, every table's row count, the audit
log's head and its last signed checkpoint with the public verifier key, and the dump's SHA-256.
The database holds only ciphertext and public keys; the units' recovery keys are held offline by
people. The audit signing key and SECRET_KEY are kept out of a backup unless asked for (`keys`,
`--with-keys`): a copy of the database must not be able to forge a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from auditlog.notes import Verifier

FORMAT = "qingliu-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMPS = {"sqlite": "qingliu.sqlite3", "postgresql": "qingliu.pgdump"}
KEYS = "keys"
KEY_FILES = ("audit-log.key", "secret_key")
# 1024 pages of 4 KiB: 4 MiB under each short read lock.
SQLITE_STEP_PAGES = 1024
SQLITE_RESTARTS = 8
# zlib level 1: the files are age ciphertext, which does not compress; level 1 only takes back
# the hex of COPY's bytea text (100 MiB of files: 117 MiB in 6.3 s, against 114 MiB in 25 s at
# pg_dump's default level 6, or 204 MiB uncompressed; 2 loaded cores).
PG_COMPRESS = 1
# pg_dump / pg_restore may take long on a large database; this only stops a hung one.
PG_TIMEOUT = 24 * 3600


class BackupError(Exception):
    """What went wrong, in one line for the operator."""


class RestoreRefused(BackupError):
    """The restore did not start: nothing was changed."""


@dataclass(frozen=True)
class Database:
    url: URL

    @classmethod
    def from_url(cls, url: str) -> Database:
        database = cls(make_url(url))
        if database.kind not in DUMPS:
            raise BackupError(f"cannot back up a {database.url.get_backend_name()} database: "
                              "only SQLite and PostgreSQL")
        if database.kind == "sqlite" and database.url.database in (None, "", ":memory:"):
            raise BackupError("an in-memory SQLite database cannot be backed up")
        return database

    @property
    def kind(self) -> str:
        return self.url.get_backend_name()

    @property
    def path(self) -> Path:
        return Path(self.url.database or "")

    def engine(self) -> Engine:
        return create_engine(self.url, poolclass=NullPool)

    def libpq(self) -> tuple[str, dict[str, str]]:
        """A libpq connection URI for pg_dump / pg_restore, and their environment: the password
        goes in PGPASSWORD, never on a command line (which `ps` shows)."""
        env = dict(os.environ)
        if self.url.password:
            env["PGPASSWORD"] = str(self.url.password)
        uri = self.url.set(drivername="postgresql", password=None)
        return uri.render_as_string(hide_password=False), env


@dataclass(frozen=True)
class State:
    """What the manifest records of the database's content, read in the copy's snapshot."""

    tables: dict[str, int]
    revision: str | None
    audit: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Reading a database's state


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def table_names(conn: Connection) -> list[str]:
    """The portal's tables: SQLite's, or those of PostgreSQL's current schema."""
    if conn.dialect.name == "sqlite":
        query = ("SELECT name FROM sqlite_master WHERE type = 'table' "
                 "AND name NOT LIKE 'sqlite_%'")
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return sorted(conn.execute(text(query)).scalars())


def row_counts(conn: Connection) -> dict[str, int]:
    counts = {}
    for name in table_names(conn):
        # Names from the database's own catalogue, quoted as identifiers.
        count = f"SELECT count(*) FROM {_quote(conn, name)}"  # noqa: S608  # nosec B608
        counts[name] = int(conn.execute(text(count)).scalar_one())
    return counts


def read_state(conn: Connection) -> State:
    tables = row_counts(conn)
    revision = None
    if "alembic_version" in tables:
        revision = ",".join(sorted(conn.execute(text(
            "SELECT version_num FROM alembic_version")).scalars())) or None
    audit: dict[str, Any] = {"size": None, "chain_hash": None, "last_checkpoint": None}
    if "audit_head" in tables:
        head = conn.execute(text("SELECT size, chain_hash FROM audit_head ORDER BY id LIMIT 1"))
        row = head.first()
        if row is not None:
            audit["size"], audit["chain_hash"] = int(row[0]), bytes(row[1]).hex()
    if "audit_checkpoints" in tables:
        row = conn.execute(text("SELECT size, root, note FROM audit_checkpoints "
                                "ORDER BY size DESC LIMIT 1")).first()
        if row is not None:
            audit["last_checkpoint"] = {"size": int(row[0]), "root": bytes(row[1]).hex(),
                                        "note": row[2]}
    return State(tables, revision, audit)


def existing_tables(conn: Connection) -> list[str]:
    """The tables a restore would collide with (none: the database is empty). On PostgreSQL
    every schema but the system's counts."""
    if conn.dialect.name == "sqlite":
        return table_names(conn)
    return sorted(conn.execute(text(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'")).scalars())


# ---------------------------------------------------------------------------------------------
# Files


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _private_folder(directory: Path) -> bool:
    """A new (or empty) folder, mode 0700; True when this call made it."""
    if directory.exists():
        if not directory.is_dir():
            raise BackupError(f"{directory} is not a folder")
        if any(directory.iterdir()):
            raise BackupError(f"{directory} is not empty: give a new folder for each backup")
        directory.chmod(0o700)
        return False
    try:
        directory.mkdir(mode=0o700, parents=True)
    except OSError as error:
        raise BackupError(f"cannot make {directory}: {error.strerror or error}") from error
    directory.chmod(0o700)  # whatever the umask
    return True


def _new_private_file(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _write_private(path: Path, data: bytes) -> None:
    with os.fdopen(_new_private_file(path), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_folder(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verifier_text(audit_key_file: Path | None) -> str | None:
    """The public half of the audit signing key (second line of its file), if there is one."""
    if audit_key_file is None or not audit_key_file.is_file():
        return None
    lines = audit_key_file.read_text(encoding="utf-8").split("\n")
    return lines[1].strip() if len(lines) > 1 and lines[1].strip() else None


# ---------------------------------------------------------------------------------------------
# Migrations


@dataclass(frozen=True)
class Migrations:
    head: str | None
    known: frozenset[str]

    @classmethod
    def at(cls, folder: Path) -> Migrations:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory(str(folder))
        return cls(script.get_current_head(), frozenset(r.revision for r in
                                                        script.walk_revisions()))

    def status(self, revision: str | None) -> str:
        """current, older (restore, then `flask db upgrade`), unrecorded (a database not made
        by the migrations), or newer (not among this code's migrations)."""
        if revision is None:
            return "unrecorded"
        if revision == self.head:
            return "current"
        if all(r in self.known for r in revision.split(",")):
            return "older"
        return "newer"


# ---------------------------------------------------------------------------------------------
# Backup


class _Restarted(Exception):
    pass


def _sqlite_copy(source: Path, dump: Path,
                 on_step: Callable[[int, int], None] | None) -> dict[str, Any]:
    """Copy the live SQLite file into `dump` (made 0600 here) with the online backup API."""
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    os.close(_new_private_file(dump))
    # Read-only: the backup never writes to the live database.
    # Never creates the file; reads only (opening may roll back a crashed writer's journal).
    src = sqlite3.connect(f"file:{url_quote(str(source.resolve()))}?mode=rw", uri=True,
                          timeout=30)
    dst = sqlite3.connect(dump)
    restarts, single_step, previous = 0, False, None
    wal = src.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def progress(_status: int, remaining: int, total: int) -> None:
        nonlocal restarts, previous
        if previous is not None and remaining >= previous:  # another connection committed
            restarts += 1
            if restarts > SQLITE_RESTARTS:
                raise _Restarted
        previous = remaining
        if on_step is not None:
            on_step(remaining, total)

    try:
        try:
            if wal:  # one read transaction: its snapshot, while writers go on in the WAL
                raise _Restarted
            src.backup(dst, pages=SQLITE_STEP_PAGES, progress=progress)
        except _Restarted:
            single_step = True
            src.backup(dst, pages=-1, progress=lambda _s, remaining, total: (
                on_step(remaining, total) if on_step is not None else None))
        # A stand-alone file: no WAL beside it, whatever mode the live database is in.
        dst.execute("PRAGMA journal_mode=DELETE")
        check = [row[0] for row in dst.execute("PRAGMA integrity_check")]
    except sqlite3.Error as error:
        raise BackupError(f"the SQLite copy failed: {error}") from error
    finally:
        src.close()
        dst.close()
    if check != ["ok"]:
        raise BackupError(f"the copy failed its integrity check: {'; '.join(check)[:200]}")
    return {"verified": {"method": "PRAGMA integrity_check", "result": "ok"},
            "consistency": {"method": "SQLite online backup API", "journal_mode":
                            "wal" if wal else "rollback", "restarts": restarts,
                            "single_step": single_step},
            "tool": f"SQLite {sqlite3.sqlite_version}"}


def _tool(name: str, pg_bin: Path | None) -> str:
    found = str(pg_bin / name) if pg_bin else shutil.which(name)
    if not found or not os.access(found, os.X_OK):
        raise BackupError(f"{name} not found: install the PostgreSQL client of the server's "
                          "version (e.g. apt-get install postgresql-client-15) or give --pg-bin")
    return found


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines()
             if line.strip()]
    return lines[-1][:300] if lines else "no message"


def _pg_list(pg_restore: str, dump: Path) -> list[str]:
    listing = subprocess.run([pg_restore, "--list", str(dump)], capture_output=True,
                             check=False, timeout=PG_TIMEOUT)
    if listing.returncode != 0:
        raise BackupError(f"pg_restore --list cannot read the dump: "
                          f"{_last_line(listing.stderr)}")
    return listing.stdout.decode("utf-8", "replace").splitlines()


def _pg_dump(database: Database, dump: Path, pg_bin: Path | None) -> tuple[State, dict]:
    pg_dump, pg_restore = _tool("pg_dump", pg_bin), _tool("pg_restore", pg_bin)
    conninfo, env = database.libpq()
    engine = database.engine()
    try:
        with engine.connect() as conn:
            snap = conn.execution_options(isolation_level="REPEATABLE READ",
                                          postgresql_readonly=True)
            snapshot = snap.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            state = read_state(snap)
            schema = snap.execute(text("SELECT current_schema()")).scalar_one()
            server = snap.execute(text("SHOW server_version")).scalar_one()
            with os.fdopen(_new_private_file(dump), "wb") as out:
                done = subprocess.run(
                    [pg_dump, "--format=custom", f"--compress={PG_COMPRESS}",
                     f"--snapshot={snapshot}", "--dbname", conninfo], stdout=out,
                    stderr=subprocess.PIPE, env=env, check=False, timeout=PG_TIMEOUT)
                out.flush()
                os.fsync(out.fileno())
            snap.rollback()
    except OSError as error:
        raise BackupError(f"cannot write {dump}: {error.strerror or error}") from error
    finally:
        engine.dispose()
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {_last_line(done.stderr)}")
    version = subprocess.run([pg_dump, "--version"], capture_output=True, check=False)
    entries = _pg_list(pg_restore, dump)
    with_data = {tuple(line.split(" TABLE DATA ", 1)[1].split()[:2]) for line in entries
                 if " TABLE DATA " in line and not line.startswith(";")}
    missing = [t for t in state.tables if (schema, t) not in with_data]
    if missing:
        raise BackupError(f"the dump lacks the data of {', '.join(missing[:5])}")
    return state, {
        "verified": {"method": "pg_restore --list", "result": "ok",
                     "entries": sum(1 for line in entries if line and not line.startswith(";")),
                     "tables_with_data": len(state.tables)},
        "consistency": {"method": "pg_dump of one exported REPEATABLE READ snapshot, "
                                  "counted in the same snapshot"},
        "tool": _last_line(version.stdout), "server_version": server, "schema": schema}


def backup(database_url: str, directory: Path, *, migrations: Path,
           audit_key_file: Path | None = None, keys: Mapping[str, bytes] | None = None,
           pg_bin: Path | None = None, on_step: Callable[[int, int], None] | None = None,
           now: datetime | None = None) -> dict[str, Any]:
    """Write a backup of the database at `database_url` into `directory` (new or empty) and
    return its manifest. `keys` (file name → content, from KEY_FILES) puts secrets into the
    backup too: only when the operator asks. `on_step(remaining, total)` is called between the
    steps of a SQLite copy. On failure nothing is left that looks like a backup."""
    database = Database.from_url(database_url)
    unknown = set(keys or {}) - set(KEY_FILES)
    if unknown:
        raise BackupError(f"unknown key files: {', '.join(sorted(unknown))}")
    made_folder = _private_folder(directory)
    dump = directory / DUMPS[database.kind]
    try:
        if database.kind == "sqlite":
            facts = _sqlite_copy(database.path, dump, on_step)
            engine = Database(URL.create("sqlite", database=str(dump))).engine()
            try:
                with engine.connect() as conn:
                    state = read_state(conn)
            finally:
                engine.dispose()
        else:
            state, facts = _pg_dump(database, dump, pg_bin)
        key_hashes = {}
        if keys:
            (directory / KEYS).mkdir(mode=0o700)
            for name, content in sorted(keys.items()):
                _write_private(directory / KEYS / name, content)
                key_hashes[name] = hashlib.sha256(content).hexdigest()
        head = Migrations.at(migrations).head
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
            "database": {"kind": database.kind, "dump": dump.name,
                         "bytes": dump.stat().st_size, "sha256": sha256_file(dump), **facts},
            "schema_revision": state.revision,
            "code_revision": head,
            "tables": state.tables,
            "rows": sum(state.tables.values()),
            "audit_log": {**state.audit, "verifier": verifier_text(audit_key_file)},
            "keys": key_hashes,
        }
        _write_private(directory / MANIFEST,
                       json.dumps(manifest, ensure_ascii=False, indent=2).encode() + b"\n")
        _fsync_folder(directory)
    except BaseException:
        _remove_partial(directory, made_folder)
        raise
    return manifest


def _remove_partial(directory: Path, made_folder: bool) -> None:
    for name in (MANIFEST, *DUMPS.values(), *(f"{d}-journal" for d in DUMPS.values())):
        (directory / name).unlink(missing_ok=True)
    for name in KEY_FILES:
        (directory / KEYS / name).unlink(missing_ok=True)
    if (directory / KEYS).is_dir():
        (directory / KEYS).rmdir()
    if made_folder and not any(directory.iterdir()):
        directory.rmdir()


# ---------------------------------------------------------------------------------------------
# Restore


def read_backup(directory: Path, migrations: Migrations) -> dict[str, Any]:
    """The manifest of a complete, unaltered backup this code can restore; else RestoreRefused."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RestoreRefused(f"{directory} holds no {MANIFEST}: not a complete backup made by "
                             "`flask backup`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RestoreRefused(f"cannot read {path}: {error.__class__.__name__}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RestoreRefused(f"{path} is not a Qingliu backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise RestoreRefused(f"backup format version {manifest.get('format_version')!r}: this "
                             f"portal restores version {FORMAT_VERSION}")
    database, tables = manifest.get("database"), manifest.get("tables")
    if not (isinstance(database, dict) and isinstance(tables, dict)
            and all(isinstance(database.get(k), str) for k in ("kind", "dump", "sha256"))
            and isinstance(manifest.get("audit_log"), dict)
            and isinstance(manifest.get("keys", {}), dict)):
        raise RestoreRefused(f"{path} is incomplete: not a backup this portal can restore")
    kind = database["kind"]
    dump = directory / DUMPS.get(kind, "?")
    if not dump.is_file() or manifest["database"].get("dump") != dump.name:
        raise RestoreRefused(f"the dump file {dump.name} is missing from {directory}")
    if sha256_file(dump) != manifest["database"]["sha256"]:
        raise RestoreRefused(f"{dump.name} does not match its SHA-256 in {MANIFEST} (altered "
                             "or incomplete): nothing was restored")
    for name, digest in manifest.get("keys", {}).items():
        key = directory / KEYS / name
        if name not in KEY_FILES or not key.is_file() or sha256_file(key) != digest:
            raise RestoreRefused(f"{KEYS}/{name} does not match its SHA-256 in {MANIFEST}")
    if migrations.status(manifest.get("schema_revision")) == "newer":
        raise RestoreRefused(f"the backup's schema revision {manifest['schema_revision']} is "
                             "not among this portal's migrations (a newer version made it): "
                             "restore it with that version")
    return manifest


@dataclass
class Restored:
    manifest: dict[str, Any]
    kind: str
    tables: dict[str, int]
    revision_status: str  # Migrations.status
    revision: str | None
    head: str | None
    audit_entries: int | None = None
    audit_checkpoint: int | None = None
    problems: list[str] = field(default_factory=list)  # restored, but something does not fit
    notes: list[str] = field(default_factory=list)


def _refuse_unless_empty(conn: Connection) -> None:
    tables = existing_tables(conn)
    if tables:
        shown = ", ".join(tables[:3]) + (", …" if len(tables) > 3 else "")
        raise RestoreRefused(f"the target database already has {len(tables)} tables ({shown}): "
                             "restore only into an empty database")


def _refuse_unless_empty_database(database: Database) -> None:
    engine = database.engine()
    try:
        with engine.connect() as conn:
            _refuse_unless_empty(conn)
    finally:
        engine.dispose()


def _sqlite_restore(database: Database, dump: Path) -> None:
    target = database.path
    if target.exists():
        _refuse_unless_empty_database(database)
        for suffix in ("-wal", "-journal"):
            if Path(f"{target}{suffix}").exists():
                raise RestoreRefused(f"{target}{suffix} exists: the database is in use; stop "
                                     "the portal before restoring")
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.name}.restoring"
    partial.unlink(missing_ok=True)
    with os.fdopen(_new_private_file(partial), "wb") as out, dump.open("rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target)  # atomic: the old (empty) file or the whole copy, never half
    _fsync_folder(folder)


def _pg_restore(database: Database, dump: Path, pg_bin: Path | None) -> None:
    pg_restore = _tool("pg_restore", pg_bin)
    _refuse_unless_empty_database(database)
    conninfo, env = database.libpq()
    # One transaction: a failed restore leaves the database as empty as it was.
    done = subprocess.run([pg_restore, "--no-owner", "--single-transaction", "--exit-on-error",
                           "--dbname", conninfo, str(dump)], capture_output=True, env=env,
                          check=False, timeout=PG_TIMEOUT)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing was restored: {_last_line(done.stderr)}")


class _PublicKey:
    """verify_database needs only the public half of the signing key."""

    def __init__(self, text_: str) -> None:
        self.verifier_text = text_

    @property
    def verifier(self) -> Verifier:
        from auditlog import notes

        return notes.Verifier.from_text(self.verifier_text)


def restore(database_url: str, directory: Path, *, migrations: Path,
            pg_bin: Path | None = None) -> Restored:
    """Restore the backup in `directory` into the empty database at `database_url`, then count
    its rows against the manifest and verify the audit log against the backup's checkpoints
    with the verifier key the manifest records. RestoreRefused: nothing was changed."""
    from auditlog.database import verify_database

    scripts = Migrations.at(migrations)
    manifest = read_backup(directory, scripts)
    database = Database.from_url(database_url)
    kind = manifest["database"]["kind"]
    if kind != database.kind:
        raise RestoreRefused(f"this backup is of a {kind} database; the portal is configured "
                             f"for {database.kind}")
    dump = directory / manifest["database"]["dump"]
    if kind == "sqlite":
        _sqlite_restore(database, dump)
    else:
        _pg_restore(database, dump, pg_bin)
    engine = database.engine()
    try:
        with engine.connect() as conn:
            state = read_state(conn)
        revision = manifest.get("schema_revision")
        report = Restored(manifest, kind, state.tables, scripts.status(revision), revision,
                          scripts.head)
        expected: dict[str, int] = manifest["tables"]
        for name in sorted(set(expected) | set(state.tables)):
            if expected.get(name) != state.tables.get(name):
                report.problems.append(f"table {name} has {state.tables.get(name)} rows, the "
                                       f"backup recorded {expected.get(name)}")
        audit = manifest.get("audit_log") or {}
        if state.audit["last_checkpoint"] != audit.get("last_checkpoint"):
            report.problems.append("the last audit checkpoint differs from the backup's")
        if audit.get("verifier"):
            with Session(engine) as session:
                result = verify_database(session, _PublicKey(audit["verifier"]))
            report.audit_entries, report.audit_checkpoint = result.entries, result.checkpoint_size
            if not result.ok:
                report.problems.append(f"the audit log does not verify: {result.reason}")
        elif audit.get("last_checkpoint"):
            report.notes.append("the backup records no audit verifier key: check the log with "
                                "`flask audit verify` once the signing key is in place")
    finally:
        engine.dispose()
    return report


def install_keys(directory: Path, manifest: Mapping[str, Any],
                 places: Mapping[str, Path | None]) -> list[str]:
    """Put the key files a `--with-keys` backup holds where the portal reads them (`places`:
    file name → path, None where the key comes from elsewhere, e.g. SECRET_KEY from the
    environment); an existing file is never overwritten. Returns one line per key."""
    lines = []
    for name in sorted(manifest.get("keys", {})):
        content = (directory / KEYS / name).read_bytes()
        place = places.get(name)
        if place is None:
            lines.append(f"{name}: not placed (set from the environment); the backup's copy is "
                         f"{directory / KEYS / name}")
        elif place.exists():
            same = place.read_bytes().strip() == content.strip()
            lines.append(f"{name}: {place} already exists"
                         + ("" if same else " and differs from the backup's copy: kept as it is"))
        else:
            place.parent.mkdir(parents=True, exist_ok=True)
            _write_private(place, content)
            lines.append(f"{name}: placed at {place}")
    return lines
