"""gunicorn settings for `make run` and production.

No access log: an access log line carries the client's address and user agent, which the portal
promises never to write for citizen routes. Errors go to stderr through a logger that
removes any client address (gunicorn logs malformed requests as "Invalid request from ip=…").
"""

import os
import secrets

accesslog = None
errorlog = "-"
logger_class = "portal.web.logscrub.GunicornLogger"
loglevel = "warning"
workers = 2
# A request thread reads the whole request body: an upload on a slow phone connection holds one
# for minutes. With 64 threads a worker keeps room beside 50 slow uploads and the receipt hashes
# waiting in line (portal/web/hashgate.py: 1 running and at most 16 waiting per worker), so pages
# stay fast without a proxy in front (bench/load.py: 50 uploads at 1 KB/s, every page served).
# An idle thread costs little: its stack, and a database connection only while it uses one.
threads = 64
# Large uploads (several files of 50 MB) on slow phone connections.
timeout = 300
# SIGTERM lets every request in flight finish, uploads included: a worker gets as long to finish
# as a request may take at all.
graceful_timeout = timeout
# Reloading without dropping a request: `kill -HUP <master pid>` starts new workers with the code
# and settings as they are on disk and stops the old ones gracefully (they finish what they are
# doing; the listening socket is never closed). To change gunicorn itself or its Python: `kill
# -USR2 <master pid>` starts a second master beside the first, then `kill -WINCH <old pid>`
# stops the old workers gracefully and, once the new ones answer, `kill -TERM <old pid>`.


def on_starting(server: object) -> None:
    """In the master, before any worker exists: draw the key with which every worker hashes
    client addresses for the rate limits (portal/web/ratelimit.py). The workers inherit it, so they
    count together in the instance folder's counts file; it lives only in the memory of this
    server's processes, so the counts file alone cannot be traced back to an address. A restart
    draws a new key (and starts the counts afresh)."""
    # The name is portal.web.ratelimit.SERVER_SECRET_ENV; the master does not import the portal, so
    # that a reload (HUP) starts workers with the code as it is on disk.
    os.environ["QINGLIU_RATE_LIMIT_SECRET"] = secrets.token_hex(32)


# The garbage collector's full passes walk every object the worker holds (some 190,000 once the
# portal is loaded and has served its pages: about 250 ms on this machine), and a request that
# happens to set one off waits that long: they were the queue page's slowest 1 % (135 ms for a
# 27 ms median). The objects alive once the worker has loaded the portal, and again once it has
# served its first requests (compiled templates, statement caches, locale data), live as long as
# the worker: gc.freeze() moves them out of the collector's sight. The garbage there is
# collected first, so nothing unreachable is kept.
FREEZE_AFTER_REQUESTS = 200
_frozen = []  # in a worker: how many times it froze


def _freeze() -> None:
    import gc

    _frozen.append(True)
    gc.collect()
    gc.freeze()


def post_worker_init(worker: object) -> None:
    _freeze()


# After a request that brought a large body (photos are decoded and re-encoded in memory, uploads
# spooled), give the memory it freed back to the system. With 64 threads glibc keeps a heap
# arena per few threads and returns little on its own: a worker that had cleaned five 20 MB
# photos stayed at 377 MB (bench/upload_memory.py). malloc_trim(0) walks every arena.
TRIM_AFTER_BYTES = 1_000_000


def post_request(worker: object, req: object, environ: dict, resp: object) -> None:
    if len(_frozen) == 1 and getattr(worker, "nr", 0) >= FREEZE_AFTER_REQUESTS:
        _freeze()
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length >= TRIM_AFTER_BYTES:
        _trim()


def _trim() -> None:
    import contextlib
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to give back so
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
