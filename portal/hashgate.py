"""Bounding the receipt hash (owner: issue 11, helper "gate"). Skeleton: filled in by its owner."""

from __future__ import annotations

from flask import Flask


def configure(app: Flask) -> None:
    """Size this process's gate from RECEIPT_HASH_SLOTS / _QUEUE / _WAIT."""
