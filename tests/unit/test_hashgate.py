"""The receipt-hash gate: slots, a bounded line, a bounded wait, first come first served, and a
slot given back whatever happens."""

from __future__ import annotations

import threading

import pytest

from portal.intake import hashgate, receipts
from portal.intake.hashgate import Busy, Gate

FAST = type("Cost", (), {"time_cost": 1, "memory_kib": 8, "parallelism": 1})()


def waiter(gate: Gate, results: list, name: str) -> threading.Thread:
    """A thread that takes a slot, records `name`, and gives it back; or records the Busy."""

    def run() -> None:
        try:
            with gate.slot():
                results.append(name)
        except Busy as busy:
            results.append(("busy", name, busy.retry_after))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until(condition, what: str) -> None:
    """Spin on an event the gate exposes (how many wait), never on a guessed delay."""
    done = threading.Event()
    for _ in range(10_000):
        if condition():
            return
        done.wait(0.001)
    raise AssertionError(what)


def test_slots_bound_how_many_run_at_once() -> None:
    gate = Gate(slots=2, queue=0, wait=5.0, retry_after=7)
    gate.acquire()
    gate.acquire()
    assert gate.running == 2
    with pytest.raises(Busy) as refused:
        gate.acquire()  # no room to wait: refused at once, not after the wait
    assert refused.value.retry_after == 7
    gate.release()
    gate.acquire()
    assert gate.running == 2


def test_the_line_is_bounded_and_served_in_order() -> None:
    gate = Gate(slots=1, queue=2, wait=30.0, retry_after=30)
    gate.acquire()
    results: list = []
    first = waiter(gate, results, "first")
    wait_until(lambda: gate.waiting == 1, "first in line")
    second = waiter(gate, results, "second")
    wait_until(lambda: gate.waiting == 2, "second in line")
    with pytest.raises(Busy):
        gate.acquire()  # the line is full: the third is refused at once
    assert gate.waiting == 2
    gate.release()
    first.join(5)
    second.join(5)
    assert results == ["first", "second"]
    assert (gate.running, gate.waiting) == (0, 0)


def test_a_wait_that_runs_out_is_busy_and_leaves_the_line() -> None:
    gate = Gate(slots=1, queue=4, wait=0.05, retry_after=30)
    gate.acquire()
    with pytest.raises(Busy):
        gate.acquire()
    assert (gate.running, gate.waiting) == (1, 0)
    gate.release()
    assert gate.running == 0


def test_a_freed_slot_is_handed_to_the_first_in_line() -> None:
    gate = Gate(slots=1, queue=4, wait=30.0, retry_after=30)
    gate.acquire()
    entered, leave = threading.Event(), threading.Event()

    def first() -> None:
        with gate.slot():
            entered.set()
            leave.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    wait_until(lambda: gate.waiting == 1, "first in line")
    gate.release()
    # Handed over, not freed: a newcomer arriving now finds no free slot to overtake with.
    assert (gate.running, gate.waiting) == (1, 0)
    assert entered.wait(5)
    leave.set()
    thread.join(5)
    assert gate.running == 0


def test_the_slot_is_given_back_when_the_work_fails() -> None:
    gate = Gate(slots=1, queue=0, wait=1.0, retry_after=30)
    with pytest.raises(ZeroDivisionError), gate.slot():
        1 / 0  # noqa: B018
    assert gate.running == 0
    with gate.slot():
        assert gate.running == 1


def test_the_wait_hook_runs_only_for_those_who_wait_and_a_failing_hook_leaves_the_line() -> None:
    calls: list[str] = []
    gate = Gate(slots=1, queue=2, wait=0.05, retry_after=30, on_wait=lambda: calls.append("w"))
    gate.acquire()
    assert calls == []  # a free slot: no wait, no hook
    with pytest.raises(Busy):
        gate.acquire()
    assert calls == ["w"]

    def broken() -> None:
        raise RuntimeError("hook failed")

    gate.on_wait = broken
    with pytest.raises(RuntimeError):
        gate.acquire()
    assert (gate.running, gate.waiting) == (1, 0)


def test_receipt_hashes_go_through_the_process_gate(monkeypatch) -> None:
    gate = Gate(slots=1, queue=0, wait=1.0, retry_after=12)
    monkeypatch.setattr(hashgate, "_gate", gate)
    keys = receipts.derive_keys("ABCD-EFGH-JK01-MNPQ-RSTV", b"s" * 32, FAST)
    assert gate.running == 0
    gate.acquire()
    with pytest.raises(Busy) as refused:
        receipts.derive_keys("ABCD-EFGH-JK01-MNPQ-RSTV", b"s" * 32, FAST)
    assert refused.value.retry_after == 12
    gate.release()
    assert receipts.derive_keys("ABCD-EFGH-JK01-MNPQ-RSTV", b"s" * 32, FAST) == keys


def test_a_failing_hash_gives_its_slot_back(monkeypatch) -> None:
    gate = Gate(slots=1, queue=0, wait=1.0, retry_after=30)
    monkeypatch.setattr(hashgate, "_gate", gate)

    def broken(*_args) -> bytes:
        raise MemoryError("no room for the hash")

    monkeypatch.setattr(receipts.crypto, "derive_key", broken)
    with pytest.raises(MemoryError):
        receipts.derive_keys("ABCD-EFGH-JK01-MNPQ-RSTV", b"s" * 32, FAST)
    assert gate.running == 0


def test_the_hash_runs_at_lower_priority() -> None:
    import os

    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    there = hashgate.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert there == min(19, here + hashgate.HASH_NICENESS)
