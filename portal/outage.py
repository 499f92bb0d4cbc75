"""Database and Redis outages answer 503 (owner: issue 11, helper "outage"). Skeleton."""

from __future__ import annotations

from flask import Flask


def install(app: Flask) -> None:
    """Register the 503 answers and the log summary of repeated failures."""
