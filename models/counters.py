"""Counts kept exact by the same transaction as the rows they count.

A counter table (models/tip_count.py, models/step_outcome.py) declares how a flush changes its
counts (`note`) and how the differences are added (`add`, one upsert). `CommitCounter` notes the
differences at every flush (`before_flush`) in the session's info, and adds them as the
transaction commits (`before_commit`). Added then, and not at the flush, the counts' rows are
locked last: a transaction has locked the audit log's head row by then (its first event,
auditlog/events.py), so two transactions never wait for each other's locks in opposite orders.
A savepoint rolled back takes its differences back; a transaction rolled back forgets them.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction


class CommitCounter:
    """One counter table's bookkeeping in each session (see the module's docstring)."""

    def __init__(self, name: str, note: Callable[[Session, Counter[Any]], None],
                 add: Callable[[Session, Counter[Any]], None]) -> None:
        self._waiting_key, self._saved_key = f"{name}.waiting", f"{name}.saved"
        self._note, self._add = note, add
        event.listen(Session, "before_flush", self._before_flush)
        event.listen(Session, "before_commit", self._before_commit)
        event.listen(Session, "after_transaction_create", self._remember)
        event.listen(Session, "after_soft_rollback", self._back_to_savepoint)
        event.listen(Session, "after_transaction_end", self._ended)

    def _waiting(self, session: Session) -> Counter[Any]:
        found: Counter[Any] | None = session.info.get(self._waiting_key)
        if found is None:
            found = session.info[self._waiting_key] = Counter()
        return found

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        self._note(session, self._waiting(session))

    def _before_commit(self, session: Session) -> None:
        session.flush()  # the last changes are noted before they are added
        changes = session.info.pop(self._waiting_key, None)
        if changes:
            self._add(session, changes)

    def _remember(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:  # begin_nested flushed first: what is noted so far stays
            saved = session.info.setdefault(self._saved_key, weakref.WeakKeyDictionary())
            saved[transaction] = Counter(session.info.get(self._waiting_key) or {})

    def _back_to_savepoint(self, session: Session, previous: SessionTransaction) -> None:
        if not previous.nested:
            self._forget(session)
        elif previous in session.info.get(self._saved_key, {}):
            session.info[self._waiting_key] = Counter(session.info[self._saved_key][previous])

    def _ended(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            self._forget(session)

    def _forget(self, session: Session) -> None:
        session.info.pop(self._waiting_key, None)
        session.info.pop(self._saved_key, None)


def upsert_add(session: Session, table: Table, rows: list[Mapping[str, object]],
               keys: list[str], sums: list[str]) -> None:
    """Insert these rows, or add their `sums` columns to the rows already there with the same
    `keys`, in the session's transaction (SQLite and PostgreSQL both say ON CONFLICT)."""
    if not rows:
        return
    connection = session.connection()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(rows)
    connection.execute(statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: table.c[name] + statement.excluded[name] for name in sums}))

