"""gunicorn.conf.py's memory hooks: a worker allocates from one glibc arena, which malloc_trim(0)
can give back whole, and gives back what large bodies took once no other one has come for a
second, not between two of them (bench/submit.py, bench/upload_memory.py)."""

from __future__ import annotations

import ctypes.util
import runpy
import subprocess
import sys

import pytest

from portal import ROOT

# Eight threads alive at once, each allocating from glibc; then glibc's own count of its arenas
# (malloc_stats writes one "Arena n:" block per arena to stderr).
ARENAS = """
import ctypes, runpy, sys, threading
hooks = runpy.run_path("gunicorn.conf.py")
if sys.argv[1] == "worker":
    hooks["post_fork"](None, None)
barrier = threading.Barrier(8)
kept = []
def allocate():
    barrier.wait()
    kept.append(bytearray(200_000))
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def arenas(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ARENAS, mode], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@pytest.mark.skipif(ctypes.util.find_library("c") != "libc.so.6", reason="glibc only")
def test_a_worker_allocates_from_one_arena() -> None:
    assert arenas("plain") > 1  # glibc's default: an arena per thread, up to 8 per core
    assert arenas("worker") == 1


class Worker:
    nr = 0


class FakeLibc:
    def __init__(self) -> None:
        self.trims: list[int] = []

    def malloc_trim(self, pad: int) -> int:
        self.trims.append(pad)
        return 1


def test_memory_goes_back_once_large_bodies_stop_not_between_them() -> None:
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    settings = hooks["post_request"].__globals__  # the hooks' own module, not run_path's copy
    libc = FakeLibc()
    settings["_libc"][:] = [libc]
    large = {"CONTENT_LENGTH": str(settings["TRIM_AFTER_BYTES"])}
    pending = settings["_idle_trim"]

    hooks["post_request"](Worker(), None, {"CONTENT_LENGTH": "1000"}, None)
    assert pending == []  # a small body leaves nothing to give back
    hooks["post_request"](Worker(), None, large, None)
    first = pending[0]
    hooks["post_request"](Worker(), None, large, None)
    second = pending[0]

    try:
        assert first.finished.is_set()  # cancelled: a second large body came
        assert not second.finished.is_set() and second.interval == settings["IDLE_TRIM_SECONDS"]
        assert pending == [second] and libc.trims == []
    finally:
        second.cancel()
    second.function(*second.args)  # what the timer runs once the worker is idle
    assert libc.trims == [0]
