"""When the database or Redis fails: 503 with Retry-After, and a log that says so once.

A failure of something the portal depends on is not a bug in a request, so it is not answered 500
with a traceback per request. `classify` names its kind:

- the database cannot be reached (SQLite's file or folder gone or unreadable, PostgreSQL down or
  refusing connections, a connection lost): every page that needs it answers 503;
- the database can be read but not written (read-only, disk full): 503 saying that nothing was
  stored; the citizen's report and reply forms come back with everything typed in them (their
  one-time token kept, so sending them again files once);
- the database is busy (every pooled connection taken, SQLite locked beyond its busy timeout);
- Redis, where staff sessions live, cannot be reached: staff pages answer 503 (citizens never
  need Redis: the rate limits then count in each process's memory, portal/web/ratelimit.py).

Each answer is a page or JSON (under /api/) in the visitor's language, rendered by
portal/web/errors.py without the database, with `Retry-After: RETRY_AFTER_SECONDS`.

The log (`FailureLog`) gets one line at the first failure of a kind (the exception's class and
the first line of its message, client addresses removed, no traceback, no SQL and no parameters),
then at most one line per LOG_REPEAT_SECONDS per kind saying how many more happened. The
libraries' own lines about the same failures (flask-limiter falling back to memory, SQLAlchemy's
pool) are folded into the same summary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context, make_response, request
from flask.wrappers import Response
from flask_babel import gettext
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from portal.web.logscrub import redact

log = logging.getLogger(__name__)

DB_UNREACHABLE = "database unreachable"
DB_READ_ONLY = "database read-only"
DB_FULL = "database full"
DB_BUSY = "database busy"
REDIS_UNREACHABLE = "Redis unreachable"
RATE_LIMIT_STORE = "rate-limit store unreachable"

# What a kind means for the visitors, on its first line in the log.
_CONSEQUENCE = {RATE_LIMIT_STORE: "rate limits count in each process's memory meanwhile",
                REDIS_UNREACHABLE: "staff pages answered 503"}

# The kinds after which nothing of the request was stored, and the database can still be read,
# so a form can come back filled in.
_NOT_STORED = (DB_READ_ONLY, DB_FULL, DB_BUSY)

# SQLite's extended result codes (sqlite3.Error.sqlite_errorname, Python 3.11+) by prefix.
_SQLITE_KINDS = (
    ("SQLITE_READONLY", DB_READ_ONLY),
    ("SQLITE_FULL", DB_FULL),
    ("SQLITE_CANTOPEN", DB_UNREACHABLE),
    ("SQLITE_IOERR", DB_UNREACHABLE),
    ("SQLITE_NOTADB", DB_UNREACHABLE),
    ("SQLITE_PERM", DB_UNREACHABLE),
    ("SQLITE_BUSY", DB_BUSY),
    ("SQLITE_LOCKED", DB_BUSY),
)
# The same for a driver that does not name the code: the words of SQLite's messages.
_SQLITE_WORDS = (
    ("readonly database", DB_READ_ONLY),
    ("database or disk is full", DB_FULL),
    ("unable to open database file", DB_UNREACHABLE),
    ("disk i/o error", DB_UNREACHABLE),
    ("database is locked", DB_BUSY),
)
# PostgreSQL's SQLSTATEs: class 08 is "connection exception".
_PG_KINDS = {
    "25006": DB_READ_ONLY,  # read_only_sql_transaction
    "53100": DB_FULL,  # disk_full
    "53300": DB_BUSY,  # too_many_connections
    "57P01": DB_UNREACHABLE,  # admin_shutdown
    "57P02": DB_UNREACHABLE,  # crash_shutdown
    "57P03": DB_UNREACHABLE,  # cannot_connect_now
}


def classify(error: BaseException) -> str | None:
    """The kind of outage behind `error` (itself or what it was raised from), or None for an
    error that is not one (a bug: answered 500 as before)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        kind = _classify_one(current)
        if kind is not None:
            return kind
        current = current.__cause__ or current.__context__
    return None


def _classify_one(error: BaseException) -> str | None:
    if isinstance(error, PoolTimeout):  # every pooled connection in use for pool_timeout
        return DB_BUSY
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return DB_UNREACHABLE
        return _driver_kind(error.orig)
    if isinstance(error, (RedisConnectionError, RedisTimeout)):
        return REDIS_UNREACHABLE
    return None


def _driver_kind(orig: BaseException | None) -> str | None:
    if orig is None:
        return None
    errorname = getattr(orig, "sqlite_errorname", None)
    if errorname:
        return next((kind for prefix, kind in _SQLITE_KINDS if errorname.startswith(prefix)),
                    None)
    module = type(orig).__module__
    if module.startswith("sqlite3"):
        text = str(orig).lower()
        return next((kind for words, kind in _SQLITE_WORDS if words in text), None)
    if module.startswith(("psycopg", "psycopg2")):
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if sqlstate is None:
            # No server answer at all: the connection could not be made or was lost.
            names = {cls.__name__ for cls in type(orig).__mro__}
            return DB_UNREACHABLE if names & {"OperationalError", "InterfaceError"} else None
        if sqlstate.startswith("08"):
            return DB_UNREACHABLE
        return _PG_KINDS.get(sqlstate)
    return None


def describe(error: BaseException) -> str:
    """One short line for the log: the driver's exception class and the first line of its
    message, client addresses removed. Never SQLAlchemy's text, which carries the statement and
    its parameters."""
    inner = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    first = (str(inner).strip().splitlines() or [""])[0][:200]
    return redact(f"{type(inner).__name__}: {first}" if first else type(inner).__name__)


# ---------------------------------------------------------------------------------------------
# The log


@dataclass
class _Seen:
    logged_at: float
    level: int
    more: int = 0
    latest: str = ""


class FailureLog:
    """Repeated failures, summarised: the first of a kind logged at once, then at most one line
    per `every` seconds per kind with how many more happened. Thread-safe; one per app."""

    def __init__(self, logger: logging.Logger, every: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.every, self.clock = logger, every, clock
        self._lock = threading.Lock()
        self._kinds: dict[str, _Seen] = {}

    def note(self, kind: str, detail: str, level: int = logging.ERROR) -> None:
        detail = redact(detail)
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is None or (seen.more == 0 and now - seen.logged_at >= self.every):
                self._kinds[kind] = _Seen(logged_at=now, level=level)
                line = (f"{kind}: {detail} ({_CONSEQUENCE.get(kind, 'answered 503')}; repeats "
                        f"are counted and logged at most once per {self.every:g} s)")
            else:
                seen.more += 1
                seen.latest = detail
                if now - seen.logged_at < self.every:
                    return
                line = self._summary_locked(kind, seen, now)
                level = seen.level
        self.logger.log(level, "%s", line)

    def flush(self) -> None:
        """Log the counts that are due even when the failures have stopped."""
        now = self.clock()
        lines = []
        with self._lock:
            for kind, seen in self._kinds.items():
                if seen.more and now - seen.logged_at >= self.every:
                    lines.append((seen.level, self._summary_locked(kind, seen, now)))
        for level, line in lines:
            self.logger.log(level, "%s", line)

    def _summary_locked(self, kind: str, seen: _Seen, now: float) -> str:
        line = (f"{kind}: {seen.more} more in the last {now - seen.logged_at:.0f} s "
                f"(latest: {seen.latest})")
        seen.logged_at, seen.more = now, 0
        return line


def failure_log() -> FailureLog | None:
    return current_app.extensions.get("outage") if has_app_context() else None


class FoldIntoSummary(logging.Filter):
    """On a library's logger: its warnings and errors about an outage go into the app's
    FailureLog instead of the log (no traceback per request). `kind_of` names the kind of a
    record, or None to let it through untouched."""

    def __init__(self, kind_of: Callable[[logging.LogRecord], str | None]) -> None:
        super().__init__()
        self.kind_of = kind_of

    def filter(self, record: logging.LogRecord) -> bool:
        summary = failure_log()
        kind = self.kind_of(record) if summary is not None else None
        if kind is None or summary is None:
            return True
        error = record.exc_info[1] if record.exc_info else None
        summary.note(kind, describe(error) if error is not None else record.getMessage(),
                     level=record.levelno)
        return False


def _limiter_record_kind(record: logging.LogRecord) -> str | None:
    # flask-limiter warns once when it falls back to memory and logs each storage error it
    # swallows with a traceback; "storage recovered" (INFO) and its other lines (a callback of
    # ours failing, a limit misconfigured) are let through.
    message = record.getMessage()
    if record.levelno < logging.WARNING or "callback" in message:
        return None
    if "storage unreachable" in message or "Swallowing error" in message:
        return RATE_LIMIT_STORE
    return None


def _pool_record_kind(record: logging.LogRecord) -> str | None:
    # "Exception during reset or similar" and the like, with a traceback, per dead connection.
    if record.levelno < logging.WARNING or not record.exc_info or record.exc_info[1] is None:
        return None
    return classify(record.exc_info[1])


_LIBRARY_LOGGERS: dict[str, Callable[[logging.LogRecord], str | None]] = {
    "flask-limiter": _limiter_record_kind,
    **{f"sqlalchemy.pool.impl.{name}": _pool_record_kind
       for name in ("QueuePool", "NullPool", "SingletonThreadPool", "StaticPool")},
}


def _fold_library_logs() -> None:
    """Once per process (the libraries' loggers are global): add the filters."""
    for name, kind_of in _LIBRARY_LOGGERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, FoldIntoSummary) for f in logger.filters):
            logger.addFilter(FoldIntoSummary(kind_of))


# ---------------------------------------------------------------------------------------------
# The answers


def _message(kind: str) -> str:
    if kind == REDIS_UNREACHABLE:
        return gettext("Staff sign-in is unavailable right now: the portal cannot reach the "
                       "place where staff sessions are kept. Please try again in a few minutes.")
    if kind in (DB_READ_ONLY, DB_FULL):
        return gettext("The portal cannot store anything right now. Nothing you sent was "
                       "stored. Please try again later.")
    if kind == DB_BUSY:
        return gettext("The portal is very busy right now and could not do this. Nothing you "
                       "sent was stored. Please try again in a minute.")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return gettext("The portal is unavailable for a moment. Please try again in a few "
                       "minutes.")
    return gettext("The portal is unavailable for a moment, so what you sent could not be "
                   "handled. Please try again in a few minutes.")


def _form_message(kind: str) -> str:
    if kind == DB_BUSY:
        return gettext("The portal is very busy right now. Nothing was stored. Everything you "
                       "typed is kept: please send it again in a minute.")
    return gettext("The portal cannot store anything right now. Nothing was stored. "
                   "Everything you typed is kept: please send it again later.")


# The citizen forms that come back filled in when nothing could be stored: endpoint → renderer
# of the form from the request, with a message on top. The citizen face registers its own.
FORMS_AGAIN: dict[str, Callable[[str], Any]] = {}


def form_again(endpoint: str) -> Callable[[Callable[[str], Any]], Callable[[str], Any]]:
    """Register the decorated function as the renderer of `endpoint`'s form after an outage:
    it gets the message to put on top and renders the form from the request, all kept."""
    def register(renderer: Callable[[str], Any]) -> Callable[[str], Any]:
        FORMS_AGAIN[endpoint] = renderer
        return renderer
    return register


def _rollback() -> None:
    from portal.web.extensions import db

    with contextlib.suppress(Exception):  # the connection is what failed: nothing to undo
        db.session.rollback()


def answer(error: BaseException) -> Response | None:
    """The 503 for an outage (logged in the summary), or None if `error` is not one."""
    kind = classify(error)
    if kind is None:
        return None
    _rollback()
    summary = failure_log()
    if summary is not None:
        summary.note(kind, describe(error))
    headers = {"Retry-After": str(int(current_app.config["RETRY_AFTER_SECONDS"]))}
    page = _form_again(kind)
    if page is not None:
        response = make_response(page)
        response.status_code = 503
        response.headers.update(headers)
        return response
    from portal.web.errors import _respond

    return _respond(503, _message(kind), headers=headers)


def _form_again(kind: str) -> Any:
    renderer = FORMS_AGAIN.get(request.endpoint or "")
    if kind not in _NOT_STORED or renderer is None:
        return None
    try:
        return renderer(_form_message(kind))
    except Exception as again:  # the form needs the database too: the plain page then
        _rollback()
        if classify(again) is None:
            log.warning("the form could not be shown again after a %s: %s", kind,
                        describe(again))
        return None


def install(app: Flask) -> None:
    """Answer outages with 503 and summarise them in the log (after portal/web/errors.py, whose
    catch-all handler also asks `answer` first, for an outage wrapped in another error)."""
    from portal.web.errors import server_error

    summary = FailureLog(log, float(app.config["LOG_REPEAT_SECONDS"]))
    app.extensions["outage"] = summary

    def on_error(error: Exception) -> Any:
        return answer(error) or server_error(error)

    app.register_error_handler(SQLAlchemyError, on_error)
    app.register_error_handler(RedisError, on_error)

    limiter = app.extensions.get("rate_limiter")

    @app.after_request
    def note_and_flush(response: Response) -> Response:
        # flask-limiter counts in memory while its store is down (its `limiter` is then the
        # fallback, not the one on `storage`): one warning per LOG_REPEAT_SECONDS says so.
        if (limiter is not None and limiter.enabled
                and limiter.limiter.storage is not limiter.storage):
            summary.note(RATE_LIMIT_STORE, "counting in this process's memory until the store "
                         "answers again", level=logging.WARNING)
        summary.flush()
        return response

    _fold_library_logs()
