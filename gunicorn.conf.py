"""gunicorn settings for `make run` and production.

No access log: an access log line carries the client's address and user agent, which the portal
promises never to write for citizen routes. Errors go to stderr through a logger that
removes any client address (gunicorn logs malformed requests as "Invalid request from ip=…").
"""

import os
import secrets

accesslog = None
errorlog = "-"
logger_class = "portal.logscrub.GunicornLogger"
loglevel = "warning"
workers = 2
threads = 4
# Large uploads (several files of 50 MB) on slow phone connections.
timeout = 300
graceful_timeout = 30


def on_starting(server: object) -> None:
    """In the master, before any worker exists: draw the key with which every worker hashes
    client addresses for the rate limits (portal/ratelimit.py). The workers inherit it, so they
    count together in the instance folder's counts file; it lives only in the memory of this
    server's processes, so the counts file alone cannot be traced back to an address. A restart
    draws a new key (and starts the counts afresh)."""
    # The name is portal.ratelimit.SERVER_SECRET_ENV; the master does not import the portal, so
    # that a reload (HUP) starts workers with the code as it is on disk.
    os.environ["QINGLIU_RATE_LIMIT_SECRET"] = secrets.token_hex(32)
