"""Bounding the receipt hash, so that it cannot starve everything else.

The receipt hash (Argon2id, about a quarter of a second of one core and 64 MiB) is the one
expensive step of filing a tip and of following one up. Without a bound, 200 clients filing at
once put every request thread of the server behind it, and the home page waits 20 seconds. The
gate lets at most `slots` hashes run at once in this process; up to `queue` more wait their turn
(first come, first served) for at most `wait` seconds; anything beyond is refused at once. A
refusal raises Busy before anything is written, so the caller answers 503 with Retry-After and
the citizen sends the same form again.

One gate per process (`process_gate()`), sized from the settings when the web app starts
(portal/web/hashgate.py `configure`, which also answers Busy with 503). Nothing here knows Flask.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

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


def install(gate: Gate) -> None:
    """Make `gate` this process's gate (the web app sizes it from its settings at start)."""
    global _gate
    _gate = gate
