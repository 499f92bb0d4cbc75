"""Is this server ready for traffic? The checks behind /readyz and `flask --app app health`
(portal/web/health.py wires them to the app). No Flask here: each check takes what it looks at and
returns Check(name, ok, detail, required); the server is ready when every required check is ok.
A warning (required=False) is reported by the command but never takes the server out of service.

Every check is bounded: the database is asked over a connection of its own (never one of the
app's pool) with a short connect and statement timeout, read-only; Redis with a 1 s socket
timeout; and `run_groups` gives all of them together a deadline, so that a dependency that hangs
makes the answer "not ready", not a hung load-balancer probe.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, func, make_url, select, text
from sqlalchemy.pool import NullPool

from auditlog import notes
from models import HANDLING_KINDS, RECEIVING_KINDS, AuditCheckpoint, Unit
from referral import letter

MiB = 1024 * 1024
# The tools portal/intake/sanitize/media.py runs (its _tools) and the Debian package of each.
MEDIA_TOOLS = {"ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "prlimit": "util-linux"}
# Seconds: a database connection (libpq counts whole seconds, 2 at least) and one statement.
DATABASE_CONNECT_TIMEOUT = 2
DATABASE_STATEMENT_TIMEOUT_MS = 1000
REDIS_TIMEOUT = 1.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True
    # What puts it right, when it is a command an operator runs (e.g. "apt-get install ffmpeg").
    fix: str = ""


def is_ready(checks: Iterable[Check]) -> bool:
    return all(check.ok for check in checks if check.required)


def _first_line(error: BaseException) -> str:
    """An exception in one short line (SQLAlchemy's text carries the driver's and a link)."""
    cause = getattr(error, "orig", None) or error
    words = str(cause).strip().splitlines()
    return (words[0] if words else type(cause).__name__)[:300]


# ---------------------------------------------------------------------------------------------
# The database: it answers, its migrations are at the code's head, the units have their keys.


@functools.cache
def migration_heads(directory: Path) -> frozenset[str]:
    """The head revision(s) of the migration scripts (read once per process: they change only
    with the code)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(directory))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def database_engine(url: str) -> Engine:
    """An engine for the checks only: no pool (each check opens and closes one connection),
    short timeouts, read-only. A SQLite file is opened read-write but never created (a URL
    naming a missing file must not make an empty database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path in ("", ":memory:"):
            raise ValueError("an in-memory SQLite database cannot be checked from outside")

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=rw", uri=True,
                                   timeout=DATABASE_STATEMENT_TIMEOUT_MS / 1000,
                                   check_same_thread=False)

        return create_engine("sqlite://", creator=connect, poolclass=NullPool)
    options = (f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS} "
               "-c default_transaction_read_only=on")
    return create_engine(parsed, poolclass=NullPool,
                         connect_args={"connect_timeout": DATABASE_CONNECT_TIMEOUT,
                                       "options": options,
                                       "application_name": "qingliu-readiness"})


@dataclass(frozen=True)
class DatabaseState:
    checks: list[Check]
    checkpoints_signed: bool | None  # None: could not be asked


def check_database(engine: Engine, heads: frozenset[str]) -> DatabaseState:
    """SELECT 1; the alembic_version row against the scripts' head; every handling unit has its
    key (else nothing can be sealed: keys.NotSetUp); as warnings, every handling unit has a
    custodian key (real-name tips need it) and every receiving body a key (referrals need it).
    Also whether a checkpoint was ever signed (see check_signing_key)."""
    try:
        connection = engine.connect()
    except Exception as error:  # any failure to connect is "does not answer"
        return DatabaseState([Check("database", False, f"does not answer: {_first_line(error)}")],
                             None)
    checks = []
    signed: bool | None = None
    with connection:
        try:
            connection.execute(text("SELECT 1"))
        except Exception as error:
            return DatabaseState([Check("database", False,
                                        f"does not answer: {_first_line(error)}")], None)
        checks.append(Check("database", True, "answers"))
        checks.append(_check_migrations(connection, heads))
        try:
            checks.extend(_check_unit_keys(connection))
            signed = (connection.scalar(select(func.count()).select_from(
                AuditCheckpoint.__table__)) or 0) > 0
        except Exception as error:  # a table missing: not migrated
            connection.rollback()
            checks.append(Check("unit keys", False, f"could not be read: {_first_line(error)}"))
    return DatabaseState(checks, signed)


def _check_migrations(connection: Connection, heads: frozenset[str]) -> Check:
    upgrade = "run `flask --app app db upgrade`"
    try:
        found = frozenset(connection.scalars(
            text("SELECT version_num FROM alembic_version")))
    except Exception:  # no such table: never migrated
        connection.rollback()
        return Check("migrations", False, f"the database was never migrated: {upgrade}")
    if found == heads:
        return Check("migrations", True, f"at the head ({', '.join(sorted(heads))})")
    return Check("migrations", False,
                 f"at {', '.join(sorted(found)) or 'no revision'}, the code expects "
                 f"{', '.join(sorted(heads))}: {upgrade}")


def _check_unit_keys(connection: Connection) -> list[Check]:
    rows = connection.execute(
        select(Unit.code, Unit.kind, Unit.public_key, Unit.identity_key)
        .where(Unit.kind.in_([k.value for k in (*HANDLING_KINDS, *RECEIVING_KINDS)]))
        .order_by(Unit.id)).all()
    handling = {k.value for k in HANDLING_KINDS}
    unkeyed = [r.code for r in rows if r.kind in handling and not r.public_key]
    no_custodian = [r.code for r in rows if r.kind in handling and not r.identity_key]
    bodies = [r.code for r in rows if r.kind not in handling and not r.public_key]
    out = []
    if not any(r.kind in handling for r in rows):
        out.append(Check("unit keys", False, "no handling unit: run `flask --app app seed`"))
    elif unkeyed:
        out.append(Check("unit keys", False,
                         f"not set up (no key: {', '.join(unkeyed)}): complete first setup "
                         "through the link of `flask --app app setup-link`"))
    else:
        out.append(Check("unit keys", True, "every handling unit has its key"))
    if no_custodian and not unkeyed:
        out.append(Check("custodian keys", False,
                         f"no custodian key: {', '.join(no_custodian)}; real-name tips to these "
                         "units fail: run `flask --app app identities keys`", required=False))
    if bodies and not unkeyed:
        out.append(Check("receiving body keys", False,
                         f"no key: {', '.join(bodies)}; nothing can be handed over to them: "
                         "run `flask --app app identities keys`", required=False))
    return out


# ---------------------------------------------------------------------------------------------
# Redis, when configured.


def check_redis(url: str, timeout: float = REDIS_TIMEOUT) -> Check:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        return Check("redis", False, f"does not answer: {_first_line(error)}")
    finally:
        client.close()
    return Check("redis", True, "answers")


# ---------------------------------------------------------------------------------------------
# The audit log's signing key (auditlog/database.py load_keys), kept outside the database.


def check_signing_key(path: Path, checkpoints_signed: bool | None) -> Check:
    """The key file exists, is readable and holds a signer and a verifier. A missing key is
    fine only while no checkpoint was ever signed (load_keys makes it at the first one); after
    that a new key could not verify the earlier checkpoints: restore the file."""
    name = "audit signing key"
    if not path.exists():
        if checkpoints_signed is False:
            folder = _existing_ancestor(path.parent)
            if os.access(folder, os.W_OK):
                return Check(name, True, f"not made yet: the first checkpoint makes {path}")
            return Check(name, False, f"{path} does not exist and {folder} is not writable")
        if checkpoints_signed is None:
            return Check(name, False, f"{path} does not exist (and the database could not say "
                         "whether checkpoints were signed with it)")
        return Check(name, False, f"{path} is missing, but checkpoints were signed with it: "
                     "restore it from the backup (a new key cannot verify them)")
    try:
        signer, verifier = path.read_text().split("\n")[:2]
        notes.Signer.from_text(signer)
        notes.Verifier.from_text(verifier)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return Check(name, False, f"{path} cannot be read as a signing key: "
                     f"{_first_line(error)}")
    return Check(name, True, f"{path}")


# ---------------------------------------------------------------------------------------------
# Debian packages the portal runs: the CJK fonts of the 移送书 PDF (referral/letter.py) and
# ffmpeg (portal/intake/sanitize/media.py).


@dataclass(frozen=True)
class SystemPart:
    what: str  # "font AR PL UMing CN", "ffprobe"
    package: str
    found: str | None


def font_choices() -> tuple[letter.FontChoice, ...]:
    """The fonts the letter embeds, as referral/letter.py names them now."""
    return (letter.BODY_FONT, letter.HEADING_FONT)


def system_parts(fonts: tuple[letter.FontChoice, ...], search_path: str | None) -> list[SystemPart]:
    parts = []
    for choice in fonts:
        try:
            found: str | None = str(letter.find_font(choice))
        except letter.FontNotFound:
            found = None
        parts.append(SystemPart(f"font {choice.face}", choice.package, found))
    for tool, package in MEDIA_TOOLS.items():
        parts.append(SystemPart(tool, package, shutil.which(tool, path=search_path)))
    return parts


@functools.cache
def system_parts_cached(fonts: tuple[letter.FontChoice, ...],
                        search_path: str | None) -> tuple[SystemPart, ...]:
    """The same, looked up once per process for a given font list and PATH (the start-up
    report runs on every create_app)."""
    return tuple(system_parts(fonts, search_path))


def missing_packages(parts: Iterable[SystemPart]) -> list[str]:
    return list(dict.fromkeys(part.package for part in parts if part.found is None))


def install_line(packages: Iterable[str]) -> str:
    return "apt-get install " + " ".join(packages)


def _check_installed(name: str, parts: list[SystemPart], without: str,
                     shown: Callable[[SystemPart], str]) -> Check:
    """All of `parts` found, or which are missing and the apt-get line that installs them."""
    missing = missing_packages(parts)
    if missing:
        return Check(name, False, f"{without} "
                     f"{', '.join(shown(p) for p in parts if p.found is None)}: "
                     f"as root, {install_line(missing)}", fix=install_line(missing))
    return Check(name, True, ", ".join(str(p.found) for p in parts))


def check_fonts(parts: Iterable[SystemPart]) -> Check:
    return _check_installed("fonts", [p for p in parts if p.what.startswith("font ")],
                            "the 移送书 PDF cannot be made without", lambda p: p.what[5:])


def check_media_tools(parts: Iterable[SystemPart]) -> Check:
    return _check_installed("ffmpeg", [p for p in parts if not p.what.startswith("font ")],
                            "videos and audio cannot be cleaned without", lambda p: p.what)


# ---------------------------------------------------------------------------------------------
# Free disk space.


def _existing_ancestor(path: Path) -> Path:
    """The folder itself, or its nearest parent that exists (the instance folder may not yet)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(folders: Mapping[str, Path], min_free_mb: int) -> list[Check]:
    """Each folder (by what it holds) has at least `min_free_mb` MiB free for the portal (what
    an unprivileged process may use: the root reserve does not count)."""
    out = []
    for label, folder in folders.items():
        where = _existing_ancestor(folder)
        try:
            free_mb = shutil.disk_usage(where).free // MiB
        except OSError as error:
            out.append(Check(f"disk ({label})", False, f"{where}: {_first_line(error)}"))
            continue
        out.append(Check(f"disk ({label})", free_mb >= min_free_mb,
                         f"{free_mb} MB free at {where} (at least {min_free_mb} MB needed)"))
    return out


def database_folder(url: str) -> Path | None:
    """The folder of a SQLite database file (None for a server database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).parent


# ---------------------------------------------------------------------------------------------
# Running the checks under one deadline.


Group = Callable[[], list[Check]]


class Runner:
    """Runs groups of checks in threads of their own and waits for them until a deadline; a
    group still running then is reported as not answering. A group whose previous run still
    hangs is not started again (at most one thread per group waits on a dead dependency)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}

    def run(self, groups: Mapping[str, Group], deadline: float) -> list[Check]:
        started: dict[str, tuple[threading.Thread, list[Check]]] = {}
        results: dict[str, list[Check]] = {}
        with self._lock:
            for name, group in groups.items():
                previous = self._running.get(name)
                if previous is not None and previous.is_alive():
                    results[name] = [Check(name, False, "its previous check has not answered")]
                    continue
                box: list[Check] = []
                thread = threading.Thread(target=_collect, args=(name, group, box),
                                          name=f"readiness {name}", daemon=True)
                thread.start()
                self._running[name] = thread
                started[name] = (thread, box)
        end = time.monotonic() + deadline
        for name, (thread, box) in started.items():
            thread.join(max(0.0, end - time.monotonic()))
            results[name] = list(box) if not thread.is_alive() else [
                Check(name, False, f"no answer within {deadline:g} s")]
        return [check for name in groups for check in results[name]]


def _collect(name: str, group: Group, box: list[Check]) -> None:
    try:
        box.extend(group())
    except Exception as error:  # a check that fails is a failed check
        box.append(Check(name, False, f"could not be checked: {_first_line(error)}"))
