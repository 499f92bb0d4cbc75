"""gunicorn.conf.py's hooks, run in a fresh interpreter as a worker would run them: a worker
freezes what it holds once it has loaded the portal and once more after its first requests, so
the collector's full passes no longer walk the long-lived objects."""

from __future__ import annotations

import subprocess
import sys

from portal import ROOT

SCRIPT = """
import gc, runpy
hooks = runpy.run_path("gunicorn.conf.py")
class Worker:
    nr = 0
worker = Worker()
kept = [[object()] for _ in range(1000)]  # long-lived, as a loaded portal's objects
hooks["post_worker_init"](worker)
after_init = gc.get_freeze_count()
worker.nr = hooks["FREEZE_AFTER_REQUESTS"] - 1
later = [[object()] for _ in range(500)]  # made while serving the first requests
hooks["post_request"](worker, None, {}, None)
before_threshold = gc.get_freeze_count()
worker.nr = hooks["FREEZE_AFTER_REQUESTS"] + 3  # threads may count past it in between
hooks["post_request"](worker, None, {}, None)
after_threshold = gc.get_freeze_count()
hooks["post_request"](worker, None, {}, None)
print(after_init, before_threshold, after_threshold, gc.get_freeze_count())
"""


def test_a_worker_freezes_what_it_holds_twice() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    after_init, before_threshold, after_threshold, at_end = map(int, out)
    assert after_init >= 1000  # the portal's objects, frozen at start
    assert before_threshold == after_init  # nothing more until the threshold
    assert after_threshold >= after_init + 500  # what the first requests left, frozen once
    assert at_end == after_threshold  # and never again
