"""Nothing lost, nothing half-saved: the shipped server (gunicorn with gunicorn.conf.py) is killed
with SIGKILL while citizens upload reports with files of a few MB, and stopped with SIGTERM
while they are still sending.

Kill points: in the middle of a body, while the server stores a report (its transaction open),
right after a 201 reached the citizen, and after a report was stored but before its answer was
read (the answer lost). First the worker is killed (the master starts another), then the master
and its worker (the server is started again). Afterwards, on the database the suite gives this
worker (SQLite file or PostgreSQL):

- every receipt that reached a citizen opens its follow-up page;
- sending the same form again (its one-time token) files what was lost and shows a stored
  report's receipt once more: one tip per form, never two;
- every tip is whole: its attachment_count is its attachments, each attachment's chunks run
  0…n-1 and open with the unit's recovery key to exactly the file sent; no attachment or chunk
  belongs to nothing; the audit log has one tip.received per tip and verifies.

SIGTERM to the master while uploads are being sent slowly: every one of them is answered 201 and
stored (gunicorn's graceful_timeout must cover an upload).
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import runpy
import sqlite3
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from auditlog.database import load_keys, verify_database
from config import Settings
from models import Attachment, AuditEvent, BlobChunk, Tip, Unit
from portal.intake import receipts
from portal.intake.filing import open_meta
from portal.security import crypto
from portal.web.extensions import db
from tests.conftest import TEST_REDIS_URL
from tests.helpers import jpeg_with_metadata, open_attachment
from tests.servers import ROOT, Answer, Gunicorn, Upload, Visit, accept_queue, start_gunicorn

FILE_BYTES = 1_500_000  # hex text: a 3 MB file per report, stored as three 1 MiB chunk rows
ALREADY_SENT = b"already been sent"


def _graceful_args() -> list[str]:
    """Until gunicorn.conf.py gives a stopping worker as long as a request may take
    (graceful_timeout = timeout), say so on the command line: what the SIGTERM test proves is
    that the portal lets uploads finish within it."""
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    if conf.get("graceful_timeout", 30) < conf.get("timeout", 30):
        return ["--graceful-timeout", str(conf["timeout"])]
    return []


@dataclass
class Report:
    """One report form, filled in and sent (perhaps more than once) by one visit."""

    visit: Visit
    form: dict[str, str]
    narrative: str
    text_file: bytes
    upload: Upload
    answers: list[Answer] = field(default_factory=list)

    @property
    def token(self) -> str:
        return self.form["submission"]

    def resend(self) -> Answer:
        """The same form posted again, as a citizen does after a failed answer."""
        self.upload = self.visit.upload("/report?lang=en", *self.upload_parts())
        answer = self.upload.send().answer()
        self.answers.append(answer)
        return answer

    def upload_parts(self) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
        return ({**self.form, "narrative": self.narrative},
                [("notes.txt", self.text_file), ("photo.jpg", jpeg_with_metadata())])


@dataclass
class Portal:
    """The served test database: the server, how to look at the database while it runs, and
    what was sent."""

    server: Gunicorn
    engine: Engine
    database_url: str
    secret_key: str
    keys: dict[str, str]
    reports: list[Report] = field(default_factory=list)

    def new_report(self, label: str) -> Report:
        visit = Visit(self.server.port)
        form = visit.report_form()
        narrative = f"crash test {label} {len(self.reports)}: oil dumped into the Hailan river"
        text_file = os.urandom(FILE_BYTES).hex().encode()
        report = Report(visit, form, narrative, text_file, None)  # type: ignore[arg-type]
        report.upload = visit.upload("/report?lang=en", *report.upload_parts())
        self.reports.append(report)
        return report

    def tips(self) -> int:
        with self.engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM tips"))

    def storing_files(self) -> Callable[[], bool]:
        """A probe: whether a transaction is open that has stored part of an attachment."""
        if self.engine.dialect.name == "postgresql":
            def inserting_chunks() -> bool:
                with self.engine.connect() as conn:
                    return bool(conn.scalar(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND backend_xid IS NOT NULL "
                        "AND query LIKE 'INSERT INTO blob_chunks%' "
                        "AND pid <> pg_backend_pid()")))
            return inserting_chunks
        # SQLite: a writer holds the write lock (WAL: byte 120 of the -shm file; rollback
        # journal: the RESERVED byte of the database file) from the tip's first write to the
        # commit; 3 MB of chunk rows overflow the page cache, so the WAL (or the journal) is
        # written again before the commit. Looked at with F_GETLK, which takes no lock.
        path = make_url(self.database_url).database
        wal_mode = Path(f"{path}-wal").exists()
        locked, written = ((f"{path}-shm", 120), f"{path}-wal") if wal_mode else (
            (path, 0x40000001), f"{path}-journal")
        first_seen: list[int] = []

        def writing_chunks() -> bool:
            if not write_locked(*locked):
                first_seen.clear()
                return False
            mtime = modified(written)
            if not first_seen:
                first_seen.append(mtime)
            return mtime > first_seen[0]
        return writing_chunks

    def expected_receipt(self, report: Report) -> str:
        secrets_ = receipts.SubmissionSecrets.from_secret_key(self.secret_key)
        submission = receipts.form_submission(secrets_, "report", report.token)
        assert submission is not None
        return submission.receipt(secrets_)

    def restart(self) -> None:
        self.server = self.server.restart()
        assert self.server.wait_ready() == 200


def write_locked(path: str, offset: int) -> bool:
    """Whether another process holds a POSIX write lock on byte `offset` of `path`."""
    request = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    fd = os.open(path, os.O_RDWR)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
    finally:
        os.close(fd)
    return struct.unpack("hhqqi", answer)[0] != fcntl.F_UNLCK


def modified(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll `condition` (the state of another process) until it holds; False at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.001)
    return False


def outcome(upload: Upload) -> Answer | None:
    """The answer of an upload whose server was killed, if one reached the client."""
    try:
        return upload.answer()
    except (OSError, http.client.HTTPException):  # reset, or closed before a status line
        return None


@pytest.fixture
def portal(app: Flask, portal_keys: dict[str, str], tmp_path: Path) -> Iterator[Portal]:
    """This test's fresh database, set up (units' keys, seed), served by gunicorn as `make run`
    serves it: one worker with four threads, Redis in the scale-out run."""
    database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    db.session.remove()
    db.engine.dispose()
    if make_url(database_url).get_backend_name() == "sqlite":
        # As `make run` leaves the embedded database: in WAL mode, kept in the file.
        with closing(sqlite3.connect(make_url(database_url).database)) as conn:
            assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    env = {"SECRET_KEY": app.config["SECRET_KEY"], "SUBMIT_RATE_LIMIT": "10000 per hour",
           "FOLLOWUP_RATE_LIMIT": "10000 per hour",
           # What is tested here is the kill and the stop, not the receipt hash's line: under a
           # loaded CI machine uploads finishing together may wait for the hash more than the
           # default 10 s (which answers 503, tested in test_busy.py).
           "RECEIPT_HASH_WAIT": "300", "RECEIPT_HASH_QUEUE": "64"}
    if TEST_REDIS_URL:
        env["REDIS_URL"] = TEST_REDIS_URL
    server = start_gunicorn(env, database_url, workers=1, threads=4,
                            extra_args=_graceful_args(), folder=tmp_path / "server")
    engine = create_engine(database_url, poolclass=NullPool)
    served = Portal(server, engine, database_url, app.config["SECRET_KEY"], portal_keys)
    try:
        assert server.wait_ready() == 200
        yield served
    finally:
        served.server.stop()
        engine.dispose()


def kill_round(portal: Portal, *, master: bool) -> dict[str, Report]:
    """One kill with uploads in flight at each point; returns them by where they were."""
    answered_lost = portal.new_report("answer lost")
    before = portal.tips()
    answered_lost.upload.send()
    assert wait_for(lambda: portal.tips() == before + 1), "the report was never stored"

    cut = portal.new_report("cut mid-body")
    cut.upload.send(upto=len(cut.upload.body) // 2)

    answered = portal.new_report("answered")
    first = answered.upload.send().answer()
    assert first.status == 201 and first.receipt, first.body[:2000]
    answered.answers.append(first)

    storing = portal.new_report("storing")
    stored, storing_files = portal.tips(), portal.storing_files()
    storing.upload.send()
    assert wait_for(lambda: storing_files() or portal.tips() == stored + 1)
    portal.server.kill9(master=master)

    answered_lost.upload.close()  # its answer never read: lost
    for report in (cut, storing):
        answer = outcome(report.upload)
        if answer is not None:
            report.answers.append(answer)
    assert cut.answers == []
    if master:
        portal.restart()
    else:
        assert portal.server.wait_ready() == 200  # the master started a new worker
    return {"answer lost": answered_lost, "cut": cut, "answered": answered, "storing": storing}


def kill_after_answer(portal: Portal, *, master: bool) -> list[Report]:
    """A kill the moment a 201 arrived, with a body cut short and one just sent in full."""
    cut = portal.new_report("cut early")
    cut.upload.send(upto=len(cut.upload.body) // 5)
    answered = portal.new_report("answered, then killed")
    answer = answered.upload.send().answer()
    just_sent = portal.new_report("just sent")
    just_sent.upload.send()
    portal.server.kill9(master=master)
    answered.answers.append(answer)
    assert answer.status == 201 and answer.receipt, answer.body[:2000]
    for report in (cut, just_sent):
        late = outcome(report.upload)
        if late is not None:
            report.answers.append(late)
    if master:
        portal.restart()
    else:
        assert portal.server.wait_ready() == 200
    return [cut, answered, just_sent]


def settle(portal: Portal) -> None:
    """Every form whose 201 did not arrive is sent again: a stored one shows its receipt once
    more (200), a lost one is filed (201). Every form's receipt opens its follow-up page."""
    for report in portal.reports:
        if not any(a.status == 201 for a in report.answers):
            stored_before = portal.tips()
            again = report.resend()
            assert again.status in (200, 201), again.body[:2000]
            assert (again.status == 200) == (ALREADY_SENT in again.body)
            assert portal.tips() == stored_before + (again.status == 201)
        receipts_shown = {a.receipt for a in report.answers if a.status in (200, 201)}
        assert receipts_shown == {portal.expected_receipt(report)}, report.narrative
        status = report.visit.followup(portal.expected_receipt(report))
        assert status.status == 200 and report.narrative.encode() in status.body, report.narrative


def assert_whole(portal: Portal, audit_key: Path) -> None:
    """One tip per form sent, each whole; nothing that belongs to no tip; the log verifies."""
    session = db.session
    session.expire_all()
    tips = session.scalars(select(Tip).order_by(Tip.id)).all()
    by_narrative: dict[str, list[int]] = {}
    for tip in tips:
        identity = portal.keys[session.get(Unit, tip.unit_id).code]
        content = json.loads(crypto.open_sealed(tip.content, [identity]))
        by_narrative.setdefault(content["narrative"], []).append(tip.id)
        report = next(r for r in portal.reports if r.narrative == content["narrative"])
        attachments = session.scalars(select(Attachment).where(Attachment.tip_id == tip.id)
                                      .order_by(Attachment.id)).all()
        assert tip.attachment_count == len(attachments) == 2, report.narrative
        files = {}
        for attachment in attachments:
            seqs = session.scalars(select(BlobChunk.seq).where(
                BlobChunk.attachment_id == attachment.id).order_by(BlobChunk.seq)).all()
            assert seqs == list(range(len(seqs))) and seqs, attachment.id
            plain = open_attachment(session, attachment, identity)
            assert len(plain) == attachment.size
            files[open_meta(attachment.meta, [identity])["filename"]] = plain
        assert files["notes.txt"] == report.text_file, report.narrative
        assert files["photo.jpg"].startswith(b"\xff\xd8\xff")
    assert by_narrative == {r.narrative: by_narrative.get(r.narrative) for r in portal.reports}
    assert all(len(ids) == 1 for ids in by_narrative.values()), by_narrative
    stray_attachments = session.scalar(select(func.count()).select_from(Attachment).where(
        Attachment.tip_id.is_(None) | Attachment.tip_id.not_in(select(Tip.id))))
    stray_chunks = session.scalar(select(func.count()).select_from(BlobChunk).where(
        BlobChunk.attachment_id.not_in(select(Attachment.id))))
    assert (stray_attachments, stray_chunks) == (0, 0)
    received = Counter(session.scalars(select(AuditEvent.object_id).where(
        AuditEvent.action == "tip.received")))
    assert received == Counter(tip.id for tip in tips)
    verification = verify_database(session, load_keys(audit_key, Settings.AUDIT_LOG_ORIGIN))
    assert verification.ok, verification.reason


@pytest.mark.parametrize("master", [False, True], ids=["worker", "master-and-worker"])
def test_kill9_mid_upload_loses_nothing_and_half_saves_nothing(portal: Portal,
                                                               master: bool) -> None:
    rounds = kill_round(portal, master=master)
    kill_after_answer(portal, master=master)
    assert rounds["answer lost"].answers == []
    settle(portal)
    # The lost answer's form was stored before the kill: sent again, it showed the receipt.
    assert [a.status for a in rounds["answer lost"].answers] == [200]
    assert ALREADY_SENT in rounds["answer lost"].answers[0].body
    assert [a.status for a in rounds["cut"].answers] == [201]
    portal.server.stop()
    assert_whole(portal, portal.server.folder / "audit-log.key")


def test_sigterm_lets_the_uploads_in_flight_finish(portal: Portal) -> None:
    """Six slow uploads (four threads: two wait for one) are being sent when the master gets
    SIGTERM; it answers each of them 201, stores them whole, then exits."""
    reports = [portal.new_report(f"slow {i}") for i in range(6)]
    started = threading.Barrier(len(reports) + 1)
    signalled = threading.Event()

    def send_slowly(report: Report) -> Answer:
        upload = report.upload
        upload.send(upto=upload.chunk)
        started.wait(timeout=30)
        assert signalled.wait(timeout=30)
        upload.send(pause=0.08)  # ~3 s for the rest
        return upload.answer()

    with ThreadPoolExecutor(len(reports)) as pool:
        futures = [pool.submit(send_slowly, r) for r in reports]
        started.wait(timeout=30)
        # In flight: each connection accepted by the worker (none waits in the kernel's queue).
        assert wait_for(lambda: accept_queue(portal.server.port) == 0)
        portal.server.terminate()
        signalled.set()
        answers = [f.result(timeout=120) for f in futures]
    assert [a.status for a in answers] == [201] * len(reports), [a.body[:300] for a in answers]
    for report, answer in zip(reports, answers, strict=True):
        assert answer.receipt == portal.expected_receipt(report)
        report.answers.append(answer)
    assert portal.server.process.wait(timeout=60) == 0
    assert portal.tips() == len(reports)
    assert_whole(portal, portal.server.folder / "audit-log.key")
