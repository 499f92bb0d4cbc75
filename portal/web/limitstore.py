"""The rate-limit counts of the embedded default: a small SQLite file that every gunicorn worker
of one server opens, so that a limit holds whichever worker answers.

A `limits` storage backend (registered under the scheme `qingliu-sqlite://`, followed by the
file's absolute path) for the fixed-window strategy flask-limiter uses. It keeps one row per
counter: the limiter's key, the count, and when the window ends; a row is gone once its window
has ended. The keys it receives are already keyed hashes (portal/web/ratelimit.py), so the file
holds
no address. It is not the portal's database: counts are worth nothing after a restart, and
keeping them apart keeps the database free of anything derived from a visitor's connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from limits.storage import Storage

SCHEME = "qingliu-sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS counters_expires ON counters (expires);
"""

# One statement, so two workers adding to the same counter at once both count: a window that
# has ended starts again from this hit.
_INCR = """
INSERT INTO counters (key, count, expires) VALUES (:key, :amount, :now + :expiry)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN counters.expires <= :now THEN :amount ELSE counters.count + :amount END,
    expires = CASE WHEN counters.expires <= :now THEN :now + :expiry ELSE counters.expires END
RETURNING count
"""


def storage_uri(path: Path | str) -> str:
    """The limiter storage URI of a counts file."""
    return f"{SCHEME}://{Path(path).resolve()}"


def _use_wal(connection: sqlite3.Connection, attempts: int = 40) -> None:
    """Put the file in WAL mode once. Changing the journal mode needs the file to itself and
    SQLite answers "database is locked" at once, without waiting out the busy timeout, while
    another connection opens it too (several threads or workers starting on a new file): a
    file already in WAL mode is left alone, and a lost race is tried again after a short wait."""
    for attempt in range(attempts):
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.005 * (attempt + 1))  # at most about 4 s in all


class SQLiteStorage(Storage):
    """Counts shared by the processes of one server through one SQLite file (WAL mode)."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 - limits declares it on instances, not ClassVar

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: float | str | bool) -> None:
        prefix = f"{SCHEME}://"
        if not uri or not uri.startswith(prefix) or not uri[len(prefix):].startswith("/"):
            raise ValueError(f"expected {prefix}/absolute/path/to/file.sqlite3")
        self.path = Path(uri[len(prefix):])
        self._local = threading.local()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def _connection(self) -> sqlite3.Connection:
        """One connection per thread and process (gunicorn forks, and its workers run threads)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            return connection
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Readable by the portal's user only, like the instance folder's other files.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                                     check_same_thread=False)
        _use_wal(connection)
        connection.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows are overwritten, not left in free pages.
        connection.execute("PRAGMA secure_delete=ON")
        connection.executescript(_SCHEMA)
        self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        connection = self._connection()
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("DELETE FROM counters WHERE expires <= ?", (now,))
            row = connection.execute(_INCR, {"key": key, "amount": amount, "now": now,
                                             "expiry": expiry}).fetchone()
        return int(row[0])

    def get(self, key: str) -> int:
        row = self._connection().execute(
            "SELECT count FROM counters WHERE key = ? AND expires > ?", (key, time.time())
        ).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        row = self._connection().execute(
            "SELECT expires FROM counters WHERE key = ? AND expires > ?", (key, now)
        ).fetchone()
        return float(row[0]) if row else now

    def check(self) -> bool:
        try:
            self._connection().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        with self._connection() as connection:
            return connection.execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        with self._connection() as connection:
            connection.execute("DELETE FROM counters WHERE key = ?", (key,))

    def keys(self) -> list[str]:
        """Every live counter's key (for tests and inspection)."""
        return [row[0] for row in self._connection().execute(
            "SELECT key FROM counters WHERE expires > ?", (time.time(),))]
