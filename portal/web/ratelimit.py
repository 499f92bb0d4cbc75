"""Rate limits, one table for every face, bound to each app (no process-wide limiter).

A budget is shared by every door that spends it: filing a tip costs the same from the report page
and from the API, and looking up a receipt the same from the follow-up page and the API
(flask-limiter's shared limits, one scope each).

Counting is keyed on a keyed hash of the client address under a key that changes every UTC day,
so no store ever holds an address. Where that key comes from depends on where the counts live:
- the embedded default counts in a small SQLite file of the instance folder, shared by the
  workers of one server (portal/web/limitstore.py); its key exists only in the memory of the running
  server (drawn by the gunicorn master before it starts the workers, gunicorn.conf.py), so a copy
  of the disk cannot tell which address a count belongs to, not even by trying every address;
- counts in Redis are shared by several servers, which derive the key from their common
  SECRET_KEY.
"""

from __future__ import annotations

import hmac
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter, RouteLimit

from portal.security import crypto
from portal.web import limitstore

# The environment variable through which gunicorn's master hands its workers the key of the
# addresses' hashes (gunicorn.conf.py); never set it in a file.
SERVER_SECRET_ENV = "QINGLIU_RATE_LIMIT_SECRET"  # noqa: S105  (a variable's name, not a secret)

# scope → (the setting that holds its limit, the endpoints that spend it)
SHARED_LIMITS: dict[str, tuple[str, tuple[str, ...]]] = {
    "file-tip": ("SUBMIT_RATE_LIMIT", ("citizen.report_submit", "api.create_tip")),
    "followup": ("FOLLOWUP_RATE_LIMIT", ("citizen.followup_lookup", "citizen.followup_reply",
                                         "api.followup_status", "api.followup_message")),
}

# Staff sign-in, every way in (web password, code and enrolment, the staff and liaison API
# tokens), its POSTs only: one budget per address on top of the throttles per account
# (portal/security/auth.py), so one address cannot spray guesses over many accounts.
STAFF_SIGNIN = ("staff.login", "staff.second_factor", "staff.enroll", "api.staff_token",
                "api.liaison_token")


def counts_shared_between_servers(storage_uri: str) -> bool:
    """Counts in this one process (memory) or this one server (the SQLite file), or elsewhere."""
    return not storage_uri.startswith(("memory://", f"{limitstore.SCHEME}://"))


def server_secret() -> bytes:
    """The key handed down by the gunicorn master, or (dev server, tests) one for this app."""
    handed_down = os.environ.get(SERVER_SECRET_ENV)
    return bytes.fromhex(handed_down) if handed_down else os.urandom(32)


def address_hasher(app: Flask) -> Callable[[], str]:
    """The limiter's key function: HMAC-SHA256 of the client address under the day's key."""
    if counts_shared_between_servers(app.config["RATELIMIT_STORAGE_URI"]):
        secret = app.config["SECRET_KEY"]
    else:
        secret = server_secret().hex()

    def rate_limit_key() -> str:
        return address_key(secret, request.remote_addr or "")

    return rate_limit_key


def address_key(secret: str, address: str, day: str | None = None) -> str:
    day = day or datetime.now(UTC).strftime("%Y-%m-%d")
    key = crypto.server_key(secret, "rate-limit " + day)
    return hmac.new(key, address.encode(), sha256).hexdigest()


# Redis that does not answer (a host gone, packets dropped) must not hold a citizen's request for
# long: after this many seconds the limiter counts in memory instead.
REDIS_TIMEOUT_SECONDS = 1


def storage_options(storage_uri: str) -> dict[str, str | int]:
    if storage_uri.startswith(("redis://", "rediss://", "redis+unix://")):
        return {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
                "socket_timeout": REDIS_TIMEOUT_SECONDS}
    return {}


def spends_budget(response: Response) -> bool:
    """A 503 (the receipt hash busy, the database down) did nothing and asks the citizen to
    send the same again: it must not use up their budget of tips or follow-ups."""
    return response.status_code != 503


def _wrap_view(app: Flask, endpoint: str, limit: RouteLimit) -> None:
    # Flask types a view as a sync or an async callable; the limit keeps whichever it was.
    view: Callable[..., Any] = app.view_functions[endpoint]
    app.view_functions[endpoint] = limit(view)


def install_rate_limits(app: Flask) -> Limiter:
    # If the counts cannot be reached, each process counts in memory until they can again (and
    # says so once per LOG_REPEAT_SECONDS, portal/web/outage.py); should even that fail, the request
    # goes on: a limit is never a reason for a 500 or a 503.
    limiter = Limiter(key_func=address_hasher(app), app=app, headers_enabled=False,
                      key_prefix=app.config.get("RATELIMIT_KEY_PREFIX", "qingliu"),
                      storage_options=storage_options(app.config["RATELIMIT_STORAGE_URI"]),
                      in_memory_fallback_enabled=True, swallow_errors=True)
    for scope, (setting, endpoints) in SHARED_LIMITS.items():
        budget = limiter.shared_limit(app.config[setting], scope=scope,
                                      deduct_when=spends_budget)
        for endpoint in endpoints:
            _wrap_view(app, endpoint, budget)
    signin = limiter.shared_limit(app.config["STAFF_SIGNIN_RATE_LIMIT"], scope="staff-signin",
                                  methods=["POST"])
    for endpoint in STAFF_SIGNIN:
        _wrap_view(app, endpoint, signin)
    warn_if_counted_per_worker(app)
    app.extensions["rate_limiter"] = limiter
    return limiter


def warn_if_counted_per_worker(app: Flask) -> None:
    """Under gunicorn started without gunicorn.conf.py, each worker would hash with its own key:
    the limits would hold per worker only. Say so once, at start."""
    if ("gunicorn.arbiter" in sys.modules and SERVER_SECRET_ENV not in os.environ
            and not counts_shared_between_servers(app.config["RATELIMIT_STORAGE_URI"])):
        app.logger.warning("Rate limits count per worker: start gunicorn with -c gunicorn.conf.py "
                           "(it gives every worker the same key for counting).")
