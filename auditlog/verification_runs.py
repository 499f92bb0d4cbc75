"""Verifying the whole stored log as a run with progress, outside any request (issue 13).

Verifying a million entries takes most of a minute, so the auditor's button only starts a run
(`start_run`) and shows it; `run_verification` does the work, noting its progress in the run's
row (models.audit.AuditVerification) as it goes. The web carries a run out in a thread of its
own, `flask audit verify` in the foreground, and a job runner can call `run_verification` as it
is: it takes a session factory and the run's id, nothing of Flask.

Each note of progress is a short transaction of its own, from a session of its own: a run never
holds a write lock for longer than one small UPDATE, on SQLite (one writer at a time) as on
PostgreSQL. The outcome goes into the run's row and into the log ("audit.verified", written by
auditlog.database.record_verification) in one transaction.

One run at a time, whichever server asks: the database allows one unfinished row. A run that has
not noted progress for STALE_AFTER lost its worker (a server restarted or died): it reads as
interrupted, and the next start gives it up and takes its place; should its worker come back, its
next note finds the run no longer its own and it stops.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from auditlog.database import (
    LogKeys,
    Verification,
    make_checkpoint,
    record_verification,
    verify_database,
)
from models.audit import AuditVerification
from models.base import table_of, utcnow

# A run notes its progress every auditlog.database.BATCH entries (well under a second each);
# one silent for a minute has lost its worker.
STALE_AFTER = timedelta(seconds=60)

Sessions = Callable[[], Session]
Clock = Callable[[], datetime]
_RUNS = table_of(AuditVerification)


class RunState(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # its worker stopped before the end; never finished


@dataclass(frozen=True)
class Start:
    run_id: int
    started: bool  # False: a run was going on already, and this is that one


@dataclass(frozen=True)
class RunReport:
    """A run as the auditor's page shows it."""

    id: int
    state: RunState
    auditor_id: int | None  # None: started from the command line
    started_at: datetime
    finished_at: datetime | None
    done: int
    total: int | None  # None until the run has read the log's size
    result: Verification | None  # once finished


class NoLongerOurs(Exception):
    """The run was finished or given up (as interrupted) by someone else: stop working on it."""


def state_of(run: AuditVerification, now: datetime) -> RunState:
    if run.finished_at is not None:
        return RunState.FINISHED
    if run.running is None or now - run.heartbeat_at >= STALE_AFTER:
        return RunState.INTERRUPTED
    return RunState.RUNNING


def _unfinished(session: Session) -> AuditVerification | None:
    return session.scalar(select(AuditVerification).where(AuditVerification.running == 1))


def start_run(session: Session, auditor_id: int | None, now: datetime | None = None) -> Start:
    """Begin a run asked for by `auditor_id` (None: the command line), unless one is going on:
    then that one, not started again. A run gone silent is given up first (it stays on record as
    interrupted). Commits; the caller then hands the run to a worker (`run_verification`)."""
    now = now or utcnow()
    for _attempt in range(2):
        current = _unfinished(session)
        if current is not None and state_of(current, now) is RunState.RUNNING:
            return Start(current.id, False)
        if current is not None:
            # Only if it is still silent: a run that noted progress just now keeps going.
            session.execute(update(_RUNS).where(
                _RUNS.c.id == current.id, _RUNS.c.running == 1,
                _RUNS.c.heartbeat_at <= now - STALE_AFTER).values(running=None))
        run = AuditVerification(auditor_id=auditor_id, started_at=now, heartbeat_at=now,
                                running=1)
        session.add(run)
        try:
            session.commit()
        except IntegrityError:
            # Another server started one between our look and our insert: show that one.
            session.rollback()
            continue
        return Start(run.id, True)
    current = _unfinished(session)
    if current is None:
        raise RuntimeError("no verification run could be started, and none is running")
    return Start(current.id, False)


def latest_report(session: Session, now: datetime | None = None) -> RunReport | None:
    """The latest run, whoever started it (None: the log was never verified this way)."""
    run = session.scalar(select(AuditVerification).order_by(AuditVerification.id.desc())
                         .limit(1))
    if run is None:
        return None
    state = state_of(run, now or utcnow())
    result = None
    if state is RunState.FINISHED:
        result = Verification(bool(run.ok), run.done, run.checkpoint_size, run.first_bad_seq,
                              run.problem, json.loads(run.params or "{}"))
    return RunReport(run.id, state, run.auditor_id, run.started_at, run.finished_at, run.done,
                     run.total, result)


def run_verification(sessions: Sessions, run_id: int, keys: LogKeys, origin: str,
                     clock: Clock = utcnow) -> Verification | None:
    """Carry out run `run_id` (from `start_run`): sign a checkpoint of the log as it stands, then
    verify every entry and the tree against each signed checkpoint, noting progress in the run's
    row after every batch; record the outcome in the row and in the log. The outcome, or None
    when the run turned out no longer to be this worker's (given up as interrupted meanwhile).

    `sessions` makes a new Session on the portal's database each time it is called (a
    sessionmaker); the run closes every one it makes."""
    try:
        with sessions() as session:
            make_checkpoint(session, keys, origin)
        with sessions() as reader:
            # Each batch is read in a statement of its own, outside any transaction: nothing is
            # held open for the whole run (on PostgreSQL, no transaction idle for a minute).
            reader.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            result = verify_database(
                reader, keys, lambda done, total: _note(sessions, run_id, clock(), done, total))
        return _finish(sessions, run_id, result, clock())
    except NoLongerOurs:
        return None
    except BaseException:
        # Shown as interrupted at once rather than after STALE_AFTER; if even this fails (the
        # database is gone), the silence says it in a minute. The error itself goes on.
        with suppress(SQLAlchemyError), sessions() as session:
            session.execute(update(_RUNS).where(_RUNS.c.id == run_id, _RUNS.c.running == 1)
                            .values(running=None))
            session.commit()
        raise


def _changed(result: object) -> int:
    assert isinstance(result, CursorResult)  # an UPDATE answers with the cursor's result
    return result.rowcount or 0


def _note(sessions: Sessions, run_id: int, now: datetime, done: int, total: int) -> None:
    """The heartbeat and the progress, in a transaction of one UPDATE."""
    with sessions() as session:
        changed = _changed(session.execute(update(_RUNS).where(
            _RUNS.c.id == run_id, _RUNS.c.running == 1).values(
                heartbeat_at=now, done=done, total=total)))
        session.commit()
    if changed != 1:
        raise NoLongerOurs(run_id)


def _finish(sessions: Sessions, run_id: int, result: Verification, now: datetime
            ) -> Verification | None:
    """The outcome in the run's row and in the log, one transaction (the log's head locked
    first, as every writer does)."""
    params = {k: v for k, v in result.params.items() if isinstance(v, int | str)}
    with sessions() as session:
        auditor_id = session.scalar(select(AuditVerification.auditor_id)
                                    .where(AuditVerification.id == run_id))
        record_verification(session, result, auditor_id)
        changed = _changed(session.execute(update(_RUNS).where(
            _RUNS.c.id == run_id, _RUNS.c.running == 1).values(
                finished_at=now, heartbeat_at=now, done=result.entries, ok=result.ok,
                problem=result.problem, params=json.dumps(params, sort_keys=True),
                first_bad_seq=result.first_bad_seq, checkpoint_size=result.checkpoint_size,
                running=None)))
        if changed != 1:
            session.rollback()
            return None
        session.commit()
    return result
