"""gunicorn settings for `make run` and production.

No access log: an access log line carries the client's address and user agent, which the portal
promises never to write for citizen routes. Errors go to stderr through a logger that
removes any client address (gunicorn logs malformed requests as "Invalid request from ip=…").
"""

import os
import secrets
import threading

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


# Memory that large bodies took (photos are decoded and re-encoded in memory, uploads spooled)
# goes back to the system once the worker has had no large body for IDLE_TRIM_SECONDS, not
# between two of them. glibc's defaults did neither well with 64 threads: a heap arena per few
# threads, each keeping what it had held (a worker that had cleaned five 20 MB photos stayed at
# 377 MB), and malloc_trim(0) after every large body gave all back only for the next photo to
# fault it in again page by page: some 65,000 page faults and 100 ms of a 20 MB photo's 630 ms
# (bench/submit.py). A photo after an idle spell still pays that; photos in a row do not. So
# each worker (post_fork, before it starts its threads) asks glibc for
# - one arena (M_ARENA_MAX): malloc_trim(0) gives back the free pages of every arena but the
#   unused top of the main one only, so other arenas' tops stayed resident (147-183 MB after
#   photos with them, 131 MB without; bench/load.py's pages as fast with one as with many);
# - fixed thresholds instead of glibc's sliding ones: blocks up to 32 MiB (M_MMAP_THRESHOLD,
#   glibc's largest) come from that heap and are reused warm by the next photo, and free() never
#   shrinks the heap (M_TRIM_THRESHOLD): the trim below does, when the worker is idle. The
#   receipt's Argon2id (64 MiB a hash, portal/intake/receipts.py) takes its memory from that
#   heap when it has as much free, else maps it for the hash alone.
# Without glibc (no mallopt) the allocator keeps its own ways.
TRIM_AFTER_BYTES = 1_000_000
IDLE_TRIM_SECONDS = 5.0
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_libc: list = []  # in a worker: glibc, once post_fork found it
_idle_trim: list = []  # in a worker: the pending trim (a threading.Timer), if any
_idle_trim_lock = threading.Lock()  # post_request runs in every request thread


def post_fork(server: object, worker: object) -> None:
    import contextlib
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
            return  # not glibc
        libc.mallopt(_M_ARENA_MAX, 1)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        libc.mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
        _libc.append(libc)


def post_request(worker: object, req: object, environ: dict, resp: object) -> None:
    if len(_frozen) == 1 and getattr(worker, "nr", 0) >= FREEZE_AFTER_REQUESTS:
        _freeze()
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length >= TRIM_AFTER_BYTES and _libc:
        _trim_when_idle()


def _trim_when_idle() -> None:
    """malloc_trim(0) IDLE_TRIM_SECONDS after the last large body, unless another one came."""
    timer = threading.Timer(IDLE_TRIM_SECONDS, _libc[0].malloc_trim, (0,))
    timer.daemon = True
    with _idle_trim_lock:
        if _idle_trim:
            _idle_trim.pop().cancel()
        _idle_trim.append(timer)
        timer.start()
