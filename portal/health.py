"""/healthz, /readyz and the start-up check of system parts (owner: issue 11, helper "health").
Skeleton."""

from __future__ import annotations

from flask import Flask


def install(app: Flask) -> None:
    """Register /healthz and /readyz."""


def report_missing_system_parts(app: Flask) -> None:
    """Log, once at start, which system packages the portal needs are missing."""
