"""The receipt hash's gate in the web app (the gate itself: portal/intake/hashgate.py).

`configure(app)` sizes this process's gate from RECEIPT_HASH_SLOTS / _QUEUE / _WAIT, lets a
request that waits in line give back its idle database connection, and answers the Busy that no
view catches with 503 and Retry-After (a page or JSON, in the visitor's language).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask, has_app_context
from flask_babel import gettext
from sqlalchemy.exc import SQLAlchemyError

from portal.intake.hashgate import Busy, Gate, install
from portal.web.extensions import db


def configure(app: Flask) -> None:
    """Size this process's gate from the settings, and answer Busy with 503."""
    from portal.web.errors import _respond

    config = app.config
    gate = Gate(slots=int(config.get("RECEIPT_HASH_SLOTS", 1)),
                queue=int(config.get("RECEIPT_HASH_QUEUE", 16)),
                wait=float(config.get("RECEIPT_HASH_WAIT", 10.0)),
                retry_after=int(config.get("RETRY_AFTER_SECONDS", 30)),
                log_every=float(config.get("LOG_REPEAT_SECONDS", 60)))

    gate.on_wait = _release_idle_connection
    install(gate)

    @app.errorhandler(Busy)
    def busy(error: Busy) -> Any:
        db.session.rollback()
        return _respond(503, gettext(
            "The portal is very busy right now and could not do this. Nothing you sent was "
            "stored. Please try again in a minute."),
            headers={"Retry-After": str(error.retry_after)})


def _release_idle_connection() -> None:
    """Before a request waits in line for the hash: if its database session has written nothing
    yet, end the transaction, so that the wait holds no connection. The waiting requests (up to
    RECEIPT_HASH_QUEUE) would otherwise hold as many connections as SQLAlchemy's pool has (15),
    and every page would wait for one. A session that has written anything keeps its
    transaction whole and waits holding it."""
    if not has_app_context():
        return
    session = db.session()
    if session.new or session.dirty or session.deleted or not session.in_transaction():
        return
    try:
        connection = session.connection()
        name = connection.dialect.name
        if name == "sqlite":
            # pysqlite opens a transaction only for a write (or a savepoint).
            raw = connection.connection.dbapi_connection
            idle = isinstance(raw, sqlite3.Connection) and not raw.in_transaction
        elif name == "postgresql":
            # A transaction gets an id at its first write.
            idle = connection.exec_driver_sql(
                "SELECT pg_current_xact_id_if_assigned() IS NULL").scalar() is True
        else:
            idle = False
        if idle:
            session.rollback()  # nothing to lose: loaded rows are read again when next used
    except SQLAlchemyError:
        return  # the request goes on as it would have; a failing database shows there
