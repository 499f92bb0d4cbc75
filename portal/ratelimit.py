"""Rate limits, one table for every face, bound to each app (no process-wide limiter).

Counting is keyed on portal.http.rate_limit_key: a keyed hash of the address under a key that
changes daily, so neither Redis nor memory ever holds an address."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter

from portal.http import rate_limit_key

# endpoint → the setting that holds its limit
RATE_LIMITS = {
    "citizen.report_submit": "SUBMIT_RATE_LIMIT",
    "citizen.followup_lookup": "FOLLOWUP_RATE_LIMIT",
    "citizen.followup_reply": "FOLLOWUP_RATE_LIMIT",
    "api.create_tip": "SUBMIT_RATE_LIMIT",
    "api.followup_status": "FOLLOWUP_RATE_LIMIT",
    "api.followup_message": "FOLLOWUP_RATE_LIMIT",
}


def install_rate_limits(app: Flask) -> Limiter:
    limiter = Limiter(key_func=rate_limit_key, app=app, headers_enabled=False,
                      key_prefix=app.config.get("RATELIMIT_KEY_PREFIX", "qingliu"))
    for endpoint, setting in RATE_LIMITS.items():
        view = app.view_functions[endpoint]
        app.view_functions[endpoint] = limiter.limit(app.config[setting])(view)
    app.extensions["rate_limiter"] = limiter
    return limiter
