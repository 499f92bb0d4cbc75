"""Bounding the receipt hash, so that it cannot starve everything else.

The receipt hash (Argon2id, about a quarter of a second of one core and 64 MiB) is the one
expensive step of filing a tip and of following one up. Without a bound, 200 clients filing at
once put every request thread of the server behind it, and the home page waits 20 seconds. The
gate lets at most `slots` hashes run at once in this process; up to `queue` more wait their turn
(first come, first served) for at most `wait` seconds; anything beyond is refused at once. A
refusal raises Busy before anything is written, so the caller answers 503 with Retry-After and
the citizen sends the same form again.

One gate per process (`process_gate()`), sized from the settings by `configure(app)`. Nothing
here but `configure` knows about Flask.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)
T = TypeVar("T")


class Busy(Exception):
    """No slot for the receipt hash within the allowed wait (or the queue was full): nothing
    was done; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("receipt hash busy")
        self.retry_after = retry_after


class Gate:
    """At most `slots` holders at once; at most `queue` waiting, each at most `wait` seconds.

    A freed slot is handed straight to the longest waiter, so a newcomer never overtakes the
    queue and a waiter is never woken only to find the slot taken again."""

    def __init__(self, slots: int, queue: int, wait: float, retry_after: int,
                 log_every: float = 60.0, on_wait: Callable[[], None] | None = None) -> None:
        if slots < 1 or queue < 0 or wait < 0:
            raise ValueError("a gate needs at least one slot and no negative queue or wait")
        self.slots, self.queue, self.wait, self.retry_after = slots, queue, wait, retry_after
        # Called (in the waiting thread, in line already) before a wait: lets the caller give
        # back what it need not hold while it waits (the web app: an idle database connection).
        self.on_wait = on_wait
        self._lock = threading.Lock()
        self._running = 0
        self._waiters: deque[threading.Event] = deque()
        # Refusals are summarised in the log: one line per `log_every` seconds at most.
        self._log_every = log_every
        self._refused = 0
        self._logged_at = float("-inf")

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)

    def acquire(self) -> None:
        """Take a slot, waiting in line if need be; Busy if the line is full or too slow."""
        with self._lock:
            if self._running < self.slots and not self._waiters:
                self._running += 1
                return
            if len(self._waiters) >= self.queue:
                self._refuse_locked("queue full")
            turn = threading.Event()
            self._waiters.append(turn)
        try:
            if self.on_wait is not None:
                self.on_wait()
        except BaseException:
            self._leave(turn)
            raise
        turn.wait(self.wait)
        with self._lock:
            if turn.is_set():  # handed a slot (perhaps just as the wait ran out: keep it)
                return
            self._waiters.remove(turn)
            self._refuse_locked("waited too long")

    def _leave(self, turn: threading.Event) -> None:
        """Step out of line; a slot handed over meanwhile is passed on."""
        with self._lock:
            if not turn.is_set():
                self._waiters.remove(turn)
                return
        self.release()

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the slot passes on; _running is unchanged
            elif self._running > 0:
                self._running -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def _refuse_locked(self, why: str) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._logged_at >= self._log_every:
            log.warning("receipt hash busy (%s): %d request(s) answered 503 since the last "
                        "such line; %d slot(s), %d waiting", why, self._refused, self.slots,
                        len(self._waiters))
            self._refused, self._logged_at = 0, now
        raise Busy(self.retry_after)


_gate = Gate(slots=1, queue=16, wait=10.0, retry_after=30)


def process_gate() -> Gate:
    return _gate


def slot() -> Any:
    """`with hashgate.slot(): …` around one receipt hash, on this process's gate."""
    return _gate.slot()


# The hash itself runs in a thread of lower CPU priority (nice +10; Linux gives each thread its
# own): when pages and a hash both want a core, the page gets it, and the hash takes what is
# left. Its cost is the same; only who waits changes. One such executor per process, made
# lazily (a thread does not survive gunicorn's fork).
HASH_NICENESS = 10
_executor: tuple[tuple[int, int], ThreadPoolExecutor] | None = None
_executor_lock = threading.Lock()


def _lower_priority() -> None:
    with suppress(AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)


def _hash_executor() -> ThreadPoolExecutor:
    global _executor
    owner = (os.getpid(), _gate.slots)  # one thread per slot of the gate in force
    with _executor_lock:
        if _executor is None or _executor[0] != owner:
            if _executor is not None and _executor[0][0] == owner[0]:
                _executor[1].shutdown(wait=False)  # resized: its threads end when idle
            _executor = (owner, ThreadPoolExecutor(
                max_workers=owner[1], thread_name_prefix="receipt-hash",
                initializer=_lower_priority))
        return _executor[1]


def run(work: Callable[[], T]) -> T:
    """Run one receipt hash: wait for a slot on this process's gate (Busy if none comes in
    time), then compute it at low priority; the calling thread waits for the result."""
    with _gate.slot():
        return _hash_executor().submit(work).result()


def configure(app: Flask) -> None:
    """Size this process's gate from RECEIPT_HASH_SLOTS / _QUEUE / _WAIT, and answer Busy that no
    view catches with 503 and Retry-After (a page or JSON, in the visitor's language)."""
    from flask_babel import gettext

    from portal.web.errors import _respond

    global _gate
    config = app.config
    _gate = Gate(slots=int(config.get("RECEIPT_HASH_SLOTS", 1)),
                 queue=int(config.get("RECEIPT_HASH_QUEUE", 16)),
                 wait=float(config.get("RECEIPT_HASH_WAIT", 10.0)),
                 retry_after=int(config.get("RETRY_AFTER_SECONDS", 30)),
                 log_every=float(config.get("LOG_REPEAT_SECONDS", 60)))

    _gate.on_wait = _release_idle_connection

    @app.errorhandler(Busy)
    def busy(error: Busy) -> Any:
        from portal.web.extensions import db

        db.session.rollback()
        return _respond(503, gettext(
            "The portal is very busy right now and could not do this. Nothing you sent was "
            "stored. Please try again in a minute."),
            headers={"Retry-After": str(error.retry_after)})


def _release_idle_connection() -> None:
    """Before a request waits in line for the hash: if its database session has written nothing
    yet, end the transaction, so that the wait holds no connection. The waiting requests (up to
    RECEIPT_HASH_QUEUE) would otherwise hold as many connections as SQLAlchemy's pool has (15),
    and every page would wait for one. A session that has written anything keeps its
    transaction whole and waits holding it."""
    from flask import has_app_context
    from sqlalchemy.exc import SQLAlchemyError

    from portal.web.extensions import db

    if not has_app_context():
        return
    session = db.session()
    if session.new or session.dirty or session.deleted or not session.in_transaction():
        return
    try:
        connection = session.connection()
        name = connection.dialect.name
        if name == "sqlite":
            # pysqlite opens a transaction only for a write (or a savepoint).
            raw = connection.connection.dbapi_connection
            idle = isinstance(raw, sqlite3.Connection) and not raw.in_transaction
        elif name == "postgresql":
            # A transaction gets an id at its first write.
            idle = connection.exec_driver_sql(
                "SELECT pg_current_xact_id_if_assigned() IS NULL").scalar() is True
        else:
            idle = False
        if idle:
            session.rollback()  # nothing to lose: loaded rows are read again when next used
    except SQLAlchemyError:
        return  # the request goes on as it would have; a failing database shows there
