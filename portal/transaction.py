"""The unit of work: one transaction around a domain step (plain Python, no Flask)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """Commit what the block did; on any exception (a refusal, an error, an interrupt) roll it
    all back and let the exception go on. A block may commit batches itself on the way."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
