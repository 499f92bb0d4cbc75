"""The bookkeeping of the log's verification runs (auditlog/verification_runs.py), without HTTP:
one unfinished run at a time, progress noted in the run's row batch by batch, a silent run read
as interrupted and given up for a new one, and the outcome in the row and in the log at once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from auditlog import database, verification_runs
from auditlog.database import load_keys
from auditlog.events import SYSTEM, record
from auditlog.verification_runs import (
    STALE_AFTER,
    RunState,
    latest_report,
    run_verification,
    start_run,
)
from models import AuditEvent
from models.audit import AuditVerification
from models.base import utcnow
from portal.web.extensions import db

ORIGIN = "test.example/qingliu/audit-log"


@pytest.fixture
def keys(tmp_path):
    return load_keys(tmp_path / "audit-log.key", ORIGIN)


@pytest.fixture
def sessions(app):
    return sessionmaker(db.engine)


def write_events(count: int) -> None:
    for i in range(count):
        record(db.session, SYSTEM, "test.event", n=i)
    db.session.commit()


def run_row(run_id: int) -> AuditVerification:
    db.session.expire_all()
    row = db.session.get(AuditVerification, run_id)
    assert row is not None
    return row


def verified_events() -> list[dict]:
    db.session.expire_all()
    return [json.loads(e.details) for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "audit.verified"))]


def test_one_unfinished_run_at_a_time(app) -> None:
    now = utcnow()
    first = start_run(db.session, None, now)
    assert first.started
    again = start_run(db.session, None, now + timedelta(seconds=5))
    assert again == verification_runs.Start(first.run_id, False)
    # The database itself refuses a second unfinished run (two servers asking at once).
    db.session.add(AuditVerification(started_at=now, heartbeat_at=now, running=1))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert db.session.scalar(select(db.func.count()).select_from(AuditVerification)) == 1


def test_a_silent_run_reads_as_interrupted_and_a_new_one_takes_its_place(app) -> None:
    started = utcnow()
    old = start_run(db.session, None, started)
    report = latest_report(db.session, started + STALE_AFTER - timedelta(seconds=1))
    assert report is not None and report.state is RunState.RUNNING
    later = started + STALE_AFTER
    report = latest_report(db.session, later)
    assert report is not None and report.state is RunState.INTERRUPTED and report.result is None
    new = start_run(db.session, None, later)
    assert new.started and new.run_id != old.run_id
    gone = run_row(old.run_id)
    assert gone.running is None and gone.finished_at is None
    # Given up, it stays interrupted even if its clock says otherwise.
    assert verification_runs.state_of(gone, started) is RunState.INTERRUPTED


def test_a_run_notes_its_progress_batch_by_batch_then_its_outcome(app, sessions, keys,
                                                                  monkeypatch) -> None:
    write_events(7)
    monkeypatch.setattr(database, "BATCH", 3)
    notes: list[tuple[int, int, int | None]] = []
    real_note = verification_runs._note

    def note(sessions_, run_id, now, done, total) -> None:
        real_note(sessions_, run_id, now, done, total)
        row = run_row(run_id)  # as another server's page reads it, committed
        notes.append((row.done, row.total, row.running))

    monkeypatch.setattr(verification_runs, "_note", note)
    start = start_run(db.session, None)
    result = run_verification(sessions, start.run_id, keys, ORIGIN)
    assert result is not None and result.ok and result.entries == 7
    assert notes == [(0, 7, 1), (3, 7, 1), (6, 7, 1), (7, 7, 1)]
    row = run_row(start.run_id)
    assert (row.done, row.total, row.ok, row.checkpoint_size, row.running) == (7, 7, True, 7, None)
    assert row.finished_at is not None and row.heartbeat_at == row.finished_at
    assert verified_events() == [{"entries": 7, "ok": True}]
    report = latest_report(db.session)
    assert report is not None and report.state is RunState.FINISHED
    assert report.result == database.Verification(True, 7, 7)


def test_a_fault_is_kept_with_its_parameters(app, sessions, keys) -> None:
    write_events(5)
    dialect = db.engine.dialect.name
    if dialect == "sqlite":
        db.session.execute(text("DROP TRIGGER audit_events_no_update"))
    else:
        db.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    try:
        db.session.execute(text("UPDATE audit_events SET action = 'test.evenT' WHERE seq = 2"))
        db.session.commit()
    finally:
        if dialect == "postgresql":
            db.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
            db.session.commit()
    start = start_run(db.session, None)
    result = run_verification(sessions, start.run_id, keys, ORIGIN)
    assert result is not None and not result.ok
    report = latest_report(db.session)
    assert report is not None and report.result == database.Verification(
        False, 2, None, 2, "altered_entry", {"seq": 2})
    assert verified_events() == [{"entries": 2, "ok": False}]


def test_a_run_given_up_meanwhile_stops_and_records_nothing(app, sessions, keys) -> None:
    write_events(3)
    started = utcnow()
    old = start_run(db.session, None, started)
    new = start_run(db.session, None, started + STALE_AFTER)  # the old one went silent
    assert new.started
    assert run_verification(sessions, old.run_id, keys, ORIGIN) is None
    assert run_row(old.run_id).done == 0 and verified_events() == []
    assert run_verification(sessions, new.run_id, keys, ORIGIN) is not None
    assert verified_events() == [{"entries": 3, "ok": True}]


def test_a_run_that_fails_reads_as_interrupted_at_once(app, sessions, keys,
                                                       monkeypatch) -> None:
    write_events(2)

    def broken(*args, **kwargs):
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(verification_runs, "verify_database", broken)
    start = start_run(db.session, None)
    with pytest.raises(RuntimeError, match="disk"):
        run_verification(sessions, start.run_id, keys, ORIGIN)
    report = latest_report(db.session)
    assert report is not None and report.state is RunState.INTERRUPTED
    assert start_run(db.session, None).started  # no need to wait for its silence
