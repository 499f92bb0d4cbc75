"""The tamper-evident log in the database: chained Merkle leaves, append-only triggers, signed
checkpoints, concurrent writers, the export and the auditor's workspace."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from auditlog import database, notes, verification_runs
from auditlog.database import export_bundle, load_keys, make_checkpoint, verify_database
from auditlog.events import SYSTEM, Actor, record
from models import AuditCheckpoint, AuditEvent
from models.audit import AuditVerification
from models.base import utcnow
from portal.intake import filing
from portal.security import crypto
from portal.web.extensions import db
from tests.conftest import FAST_ARGON2

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "test.example/qingliu/audit-log"


@pytest.fixture
def keys(tmp_path):
    return load_keys(tmp_path / "keys" / "audit-log.key", ORIGIN)


def write_events(count: int) -> None:
    for i in range(count):
        record(db.session, SYSTEM, "test.event", object_type="tip", object_id=i, n=i)
        db.session.commit()


def verification_page(client, lang: str = "en") -> str:
    """The auditor's verification page once its run has ended (it no longer reloads itself), as
    a browser following the page's refresh sees it. The wait is bounded: a run that never ends
    fails the test; how long one takes is measured in bench/audit_db.py, not here."""
    for _ in range(600):
        answer = client.get(f"/audit/verify?lang={lang}")
        assert answer.status_code == 200, answer.status_code
        page = answer.get_data(as_text=True)
        if 'http-equiv="refresh"' not in page:
            return page
        time.sleep(0.05)
    raise AssertionError("the verification never ended:\n" + page[-1500:])


@contextmanager
def triggers_off():
    """What a database superuser could do: switch the append-only triggers off."""
    dialect = db.engine.dialect.name
    if dialect == "sqlite":
        db.session.execute(text("DROP TRIGGER audit_events_no_update"))
        db.session.execute(text("DROP TRIGGER audit_events_no_delete"))
    else:
        db.session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
    db.session.commit()
    try:
        yield
    finally:
        db.session.rollback()
        if dialect == "postgresql":
            db.session.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
            db.session.commit()


def alter_entry(seq: int, details: str) -> None:
    """Change one stored entry behind the log's back, as an intruder with the database would."""
    with triggers_off():
        db.session.execute(text("UPDATE audit_events SET details = :d WHERE seq = :s"),
                           {"d": details, "s": seq})
        db.session.commit()


def test_every_action_is_a_chained_leaf_and_the_log_verifies(app, client, keys,
                                                             portal_keys) -> None:
    client.post("/api/v1/tips", json={"narrative": "x", "county": "yanji"})
    write_events(5)
    make_checkpoint(db.session, keys, ORIGIN)
    seqs = list(db.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.id)))
    assert seqs == list(range(len(seqs))) and len(seqs) > 5
    result = verify_database(db.session, keys)
    assert result.ok and result.entries == len(seqs) and result.checkpoint_size == len(seqs)


def test_the_database_refuses_updates_and_deletes(app, keys) -> None:
    write_events(3)
    for statement in ("UPDATE audit_events SET action = 'x' WHERE seq = 1",
                      "DELETE FROM audit_events WHERE seq = 2"):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert verify_database(db.session, keys).ok


@pytest.mark.parametrize("tamper", ["change", "delete", "reorder"])
def test_tampering_is_detected_and_the_entry_named(app, keys, tamper) -> None:
    write_events(10)
    make_checkpoint(db.session, keys, ORIGIN)
    with triggers_off():
        if tamper == "change":
            db.session.execute(text("UPDATE audit_events SET action = 'test.evenT' WHERE seq = 4"))
        elif tamper == "delete":
            db.session.execute(text("DELETE FROM audit_events WHERE seq = 4"))
        else:  # swap two entries' positions
            db.session.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 4"))
            db.session.execute(text("UPDATE audit_events SET seq = 4 WHERE seq = 5"))
            db.session.execute(text("UPDATE audit_events SET seq = 5 WHERE seq = -1"))
        db.session.commit()
        result = verify_database(db.session, keys)
    assert not result.ok and result.first_bad_seq == 4, result


def test_a_rewritten_tail_fails_the_earlier_checkpoint(app, keys) -> None:
    write_events(8)
    make_checkpoint(db.session, keys, ORIGIN)
    with triggers_off():
        # Replace entries 5.. with another history, recomputing every hash consistently.
        db.session.execute(text("DELETE FROM audit_events WHERE seq >= 5"))
        last = db.session.scalar(select(AuditEvent.chain_hash).where(AuditEvent.seq == 4))
        db.session.execute(text("UPDATE audit_head SET size = 5, chain_hash = :h"), {"h": last})
        db.session.commit()
        for i in range(3):
            record(db.session, SYSTEM, "forged.event", n=i)
        db.session.commit()
        result = verify_database(db.session, keys)
    assert not result.ok and "checkpoint 8" in result.reason


def test_a_checkpoint_signed_with_another_key_is_refused(app, keys, tmp_path) -> None:
    write_events(4)
    other = load_keys(tmp_path / "other.key", ORIGIN)
    forged = make_checkpoint(db.session, other, ORIGIN)
    assert forged.size == 4
    result = verify_database(db.session, keys)
    assert not result.ok and "checkpoint 4" in result.reason


def _append_many(url: str, count: int, label: str) -> None:
    engine = create_engine(url)
    for i in range(count):
        with Session(engine) as session:
            record(session, Actor("system"), "concurrent.append", writer=label, n=i)
            session.commit()
    engine.dispose()


def test_two_processes_appending_at_once_cannot_fork_the_chain(app, keys) -> None:
    write_events(1)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append_many, args=(url, 40, label)) for label in "ab"]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    db.session.expire_all()
    seqs = list(db.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))
    assert seqs == list(range(81))
    assert verify_database(db.session, keys).ok


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_a_transactions_events_wait_for_its_next_statement_and_are_seen(app, keys) -> None:
    """Events of one transaction cost no statement each, yet anything the transaction reads
    sees them, in order, and the head row moves with them."""
    from auditlog.events import head

    write_events(1)
    for i in range(3):
        record(db.session, SYSTEM, f"test.batch{i}")
    assert _actions() == ["test.event", "test.batch0", "test.batch1", "test.batch2"]
    assert head(db.session)[0] == 4
    record(db.session, SYSTEM, "test.after_a_read")
    db.session.commit()
    assert _actions()[-1] == "test.after_a_read"
    assert head(db.session)[0] == 5
    assert verify_database(db.session, keys).ok


def test_a_rolled_back_savepoint_takes_its_events_back_and_no_others(app, keys) -> None:
    write_events(1)
    record(db.session, SYSTEM, "test.before")  # waiting when the savepoint begins
    savepoint = db.session.begin_nested()
    record(db.session, SYSTEM, "test.inside")
    assert "test.before" in _actions()  # a read inside the savepoint inserts both
    savepoint.rollback()
    record(db.session, SYSTEM, "test.after")
    db.session.commit()
    assert _actions() == ["test.event", "test.before", "test.after"]
    assert verify_database(db.session, keys).ok


def test_a_savepoint_that_took_the_lock_and_rolled_back_leaves_no_gap(app, keys) -> None:
    write_events(2)
    with pytest.raises(RuntimeError), db.session.begin_nested():
        record(db.session, SYSTEM, "test.inside")
        raise RuntimeError("the step inside fails")
    record(db.session, SYSTEM, "test.after")
    db.session.commit()
    record(db.session, SYSTEM, "test.rolled_back")
    db.session.rollback()
    record(db.session, SYSTEM, "test.last")
    db.session.commit()
    assert _actions() == ["test.event", "test.event", "test.after", "test.last"]
    assert list(db.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq))) == [
        0, 1, 2, 3]
    assert verify_database(db.session, keys).ok


def test_details_are_stored_as_json_reads_them_back(app, keys) -> None:
    """An enum member in the details is written as its value, so that a verifier reading the
    column back hashes the same bytes."""
    from models import Role, TipStatus

    record(db.session, SYSTEM, "test.enums", role_given=Role.HEAD, status=TipStatus.ACCEPTED,
           flag=True, count=3, nothing=None)
    db.session.commit()
    stored = db.session.scalar(select(AuditEvent.details).where(
        AuditEvent.action == "test.enums"))
    assert stored == ('{"count":3,"flag":true,"nothing":null,"role_given":"head",'
                      '"status":"accepted"}')
    assert verify_database(db.session, keys).ok


def test_export_verifies_offline_with_proofs(app, keys, tmp_path) -> None:
    write_events(6)
    first = make_checkpoint(db.session, keys, ORIGIN)
    (tmp_path / "earlier.note").write_text(first.note)
    write_events(7)
    make_checkpoint(db.session, keys, ORIGIN)
    bundle = tmp_path / "bundle"
    assert export_bundle(db.session, bundle, keys) == 13
    ok = subprocess.run([sys.executable, "-m", "auditlog.verify", str(bundle), "--previous",
                         str(tmp_path / "earlier.note"), "--entry", "3"], cwd=ROOT,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    lines = (bundle / "entries.jsonl").read_bytes().splitlines(keepends=True)
    lines[9] = lines[9].replace(b"test.event", b"test.evenT")
    (bundle / "entries.jsonl").write_bytes(b"".join(lines))
    bad = subprocess.run([sys.executable, "-m", "auditlog.verify", str(bundle)], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "entry 9" in bad.stderr


def test_cli_checkpoint_verify_and_export(app, runner, tmp_path) -> None:
    write_events(3)
    assert "—" in runner.invoke(args=["audit", "checkpoint"]).output
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0 and "ok:" in verified.output
    exported = runner.invoke(args=["audit", "export", str(tmp_path / "out")])
    assert exported.exit_code == 0
    assert (tmp_path / "out" / "log.vkey").exists()
    assert list((tmp_path / "out" / "checkpoints").iterdir())


def test_the_referral_letter_carries_a_checkpoint(app, keys) -> None:
    write_events(2)
    note = make_checkpoint(db.session, keys, ORIGIN).note
    checkpoint = notes.parse_checkpoint(note, keys.verifier)
    assert checkpoint.size == 2 and db.session.get(AuditCheckpoint, 2) is not None


def test_auditors_browse_and_verify_but_never_decrypt(app, client, staff, monkeypatch) -> None:
    filed = filing.file_tip(db.session, filing.TipDraft(narrative="AUDITOR-MUST-NOT-SEE",
                                                        county="yanji"), [],
                            limits=filing.Limits(10, 10**6, 10**6), receipt_cost=FAST_ARGON2,
                            actor=SYSTEM)
    officer = staff.create("reader", "yanji")
    reader = app.test_client()
    staff.login(reader, "reader", officer)
    assert b"AUDITOR-MUST-NOT-SEE" in reader.get(f"/staff/tips/{filed.tip_id}").data
    # An auditor of 州本级, even holding 州本级's key, reads no content anywhere.
    auditor = staff.create("auditor", "zhou", "auditor")
    browser = app.test_client()
    staff.login(browser, "auditor", auditor)

    def no_decryption(*args, **kwargs):
        raise AssertionError("an auditor's page decrypted something")

    monkeypatch.setattr(crypto, "open_sealed", no_decryption)
    monkeypatch.setattr(crypto, "open_stream", no_decryption)
    for path in ("/audit/", "/audit/tips", f"/audit/tips/{filed.tip_id}", "/audit/referrals",
                 "/audit/decryptions"):
        page = browser.get(path + "?lang=en")
        assert page.status_code == 200, path
        assert b"AUDITOR-MUST-NOT-SEE" not in page.data
    timeline = browser.get(f"/audit/tips/{filed.tip_id}?lang=en").get_data(as_text=True)
    assert "Tip received (Online portal, anonymous)" in timeline
    assert "Tip opened and read" in timeline and "tip.received" not in timeline
    assert "reader" in browser.get("/audit/decryptions").get_data(as_text=True)
    assert browser.get(f"/staff/tips/{filed.tip_id}").status_code == 404
    verified = browser.post("/audit/verify?lang=en")
    assert verified.status_code == 303  # Post/Redirect/Get: a refresh verifies nothing twice
    assert verified.headers["Location"] == "/audit/verify"
    assert "The log is intact" in verification_page(browser)
    export = browser.post("/audit/export")
    assert export.status_code == 200 and export.mimetype == "application/zip"
    # Officers are not auditors.
    assert reader.get("/audit/").status_code == 403
    assert reader.get("/audit/verify").status_code == 403


def test_the_export_verifies_with_the_command_its_page_shows(app, client, staff, tmp_path
                                                              ) -> None:
    write_events(3)
    auditor = staff.create("auditor", "zhou", "auditor")
    staff.login(client, "auditor", auditor)
    page = client.get("/audit/?lang=zh").get_data(as_text=True)
    command = page.split("<code>", 1)[1].split("</code>", 1)[0]
    assert command.startswith("python -m auditlog.verify ")
    export = client.post("/audit/export")
    assert export.status_code == 200
    name = command.split()[3]  # the file name the page names is the one downloaded
    assert f'filename="{name}"' in export.headers["Content-Disposition"]
    (tmp_path / name).write_bytes(export.data)
    done = subprocess.run([sys.executable, "-m", "auditlog.verify", name], cwd=tmp_path,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")
    # The same file with one entry cut out fails, naming the entry.
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(export.data)) as original, \
            zipfile.ZipFile(tmp_path / "cut.zip", "w") as cut:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "entries.jsonl":
                data = b"".join(data.splitlines(keepends=True)[:1] + data.splitlines(
                    keepends=True)[2:])
            cut.writestr(item, data)
    bad = subprocess.run([sys.executable, "-m", "auditlog.verify", "cut.zip"], cwd=tmp_path,
                         capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert bad.returncode == 1 and "expected seq 1" in bad.stderr


def test_a_broken_log_is_explained_in_the_page_language(app, client, staff) -> None:
    write_events(4)
    auditor = staff.create("auditor", "zhou", "auditor")
    staff.login(client, "auditor", auditor)
    alter_entry(2, '{"n":7}')
    answer = client.post("/audit/verify")
    assert answer.headers["Location"] == "/audit/verify"
    page = verification_page(client, "zh")
    assert "第2条记录已被改动" in page, page
    page = client.get("/audit/verify?lang=ko").get_data(as_text=True)
    assert "2번 기록이 변경되였습니다" in page
    english = client.get("/audit/verify?lang=en").get_data(as_text=True)
    assert "Entry 2 was altered" in english


# ---------------------------------------------------------------------------------------------
# The verify button starts a run in the background (auditlog/verification_runs.py).


def _verified_events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.verified")
                                   .order_by(AuditEvent.seq)))


def _runs() -> list[AuditVerification]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditVerification).order_by(AuditVerification.id)))


def test_the_button_starts_one_run_in_the_background_and_shows_its_progress(
        app, client, staff, monkeypatch) -> None:
    write_events(10)
    auditor = staff.create("auditor", "zhou", "auditor")
    staff.login(client, "auditor", auditor)
    # Hold the run after its first batch of 3 entries, until the test lets it go on.
    monkeypatch.setattr(database, "BATCH", 3)
    reached, go_on = threading.Event(), threading.Event()
    real = verification_runs.verify_database

    def held(session, keys, progress):
        def noted(done: int, total: int) -> None:
            progress(done, total)
            if done:
                reached.set()
                go_on.wait(60)
        return real(session, keys, noted)

    monkeypatch.setattr(verification_runs, "verify_database", held)
    try:
        answer = client.post("/audit/verify")
        assert answer.status_code == 303 and answer.headers["Location"] == "/audit/verify"
        assert reached.wait(60), "the run never got through its first batch"
        total = _runs()[0].total
        assert total and total > 10
        page = client.get("/audit/verify?lang=en").get_data(as_text=True)
        assert f"3 of {total} entries checked." in page
        assert f'<progress max="{total}" value="3">' in page
        assert '<meta http-equiv="refresh" content="2">' in page
        assert "Started by auditor on" in page and "The log is intact" not in page
        overview = client.get("/audit/?lang=en").get_data(as_text=True)
        assert "A verification of the log is running." in overview
        # A second press, or a refresh of the page, starts nothing: the running one is shown.
        again = client.post("/audit/verify")
        assert again.status_code == 303 and again.headers["Location"] == "/audit/verify"
        assert "3 of" in client.get("/audit/verify?lang=en").get_data(as_text=True)
        assert len(_runs()) == 1 and _verified_events() == []
    finally:
        go_on.set()
    page = verification_page(client)
    assert "The log is intact" in page and "Started by auditor on" in page and "Finished on" in page
    assert "<progress" not in page
    [run] = _runs()
    assert run.finished_at is not None and run.running is None and run.ok is True
    assert run.done == run.total == total and run.checkpoint_size == total
    # The log records who verified it and the outcome, once.
    [event] = _verified_events()
    assert (event.actor_type, event.actor_id, event.role) == ("staff", auditor, "auditor")
    assert json.loads(event.details) == {"entries": total, "ok": True}
    assert "The latest verification found the log intact." in client.get(
        "/audit/?lang=en").get_data(as_text=True)


def test_a_run_of_another_server_is_shown_and_a_silent_one_interrupted(app, client,
                                                                       staff) -> None:
    write_events(3)
    auditor = staff.create("auditor", "zhou", "auditor")
    other = staff.create("other-auditor", "zhou", "auditor")
    staff.login(client, "auditor", auditor)
    assert client.get("/audit/verify").status_code == 302  # nothing verified yet: the overview
    now = utcnow()
    # Another server's run, alive: its heartbeat is a second old.
    db.session.add(AuditVerification(auditor_id=other, started_at=now - timedelta(seconds=30),
                                     heartbeat_at=now - timedelta(seconds=1), done=40,
                                     total=100, running=1))
    db.session.commit()
    assert client.post("/audit/verify").status_code == 303
    page = client.get("/audit/verify?lang=en").get_data(as_text=True)
    assert "40 of 100 entries checked." in page and "Started by other-auditor on" in page
    assert len(_runs()) == 1
    # Its server died: two minutes without a heartbeat.
    db.session.execute(update(AuditVerification).values(
        heartbeat_at=now - timedelta(minutes=2)))
    db.session.commit()
    page = client.get("/audit/verify?lang=en").get_data(as_text=True)
    assert "The verification stopped before its end" in page and "after 40 of 100" in page
    assert "http-equiv" not in page and "Verify the whole log again" in page
    assert "interrupted" in client.get("/audit/?lang=en").get_data(as_text=True)
    # So a new run starts, and ends.
    assert client.post("/audit/verify").status_code == 303
    assert "The log is intact" in verification_page(client)
    stale, fresh = _runs()
    assert stale.running is None and stale.finished_at is None and stale.done == 40
    assert fresh.auditor_id == auditor and fresh.ok is True
    assert len(_verified_events()) == 1


def test_a_tampered_entry_is_named_by_the_run_and_recorded(app, client, staff) -> None:
    write_events(6)
    auditor = staff.create("auditor", "zhou", "auditor")
    staff.login(client, "auditor", auditor)
    alter_entry(3, '{"n":9}')
    client.post("/audit/verify")
    page = verification_page(client)
    assert "The log does NOT verify. Entry 3 was altered" in page, page
    assert "(first entry that does not fit: 3)" in page
    [run] = _runs()
    assert (run.ok, run.problem, json.loads(run.params), run.first_bad_seq, run.done) == (
        False, "altered_entry", {"seq": 3}, 3, 3)
    [event] = _verified_events()
    assert json.loads(event.details) == {"entries": 3, "ok": False}


def test_the_command_runs_the_same_verification_and_not_beside_another(app, runner,
                                                                      staff) -> None:
    write_events(3)
    done = runner.invoke(args=["audit", "verify"])
    assert done.exit_code == 0 and "ok:" in done.output, done.output
    [run] = _runs()
    assert run.auditor_id is None and run.ok is True
    [event] = _verified_events()
    assert event.actor_type == "system"
    auditor = staff.create("auditor", "zhou", "auditor")
    now = utcnow()
    db.session.add(AuditVerification(auditor_id=auditor, started_at=now, heartbeat_at=now,
                                     done=5, total=50, running=1))
    db.session.commit()
    refused = runner.invoke(args=["audit", "verify"])
    assert refused.exit_code == 1 and "running already (5 of 50" in refused.output
    assert len(_runs()) == 2 and len(_verified_events()) == 1


def test_a_checkpoint_signed_meanwhile_elsewhere_is_the_one_kept(app, keys, monkeypatch) -> None:
    """Two signers of the same tree at once (a verification run and an export, two servers):
    the second finds the first's row when it inserts and answers with it, instead of failing
    (the export answered 500)."""
    write_events(3)
    db.session.commit()
    signed = notes.sign_checkpoint

    def and_another_server_too(signer, origin, size, root):  # between its check and its insert
        note = signed(signer, origin, size, root)
        with Session(db.engine) as other:
            other.add(AuditCheckpoint(size=size, root=root, note=note))
            other.commit()
        return note

    monkeypatch.setattr(notes, "sign_checkpoint", and_another_server_too)
    kept = make_checkpoint(db.session, keys, "test/audit")
    db.session.commit()
    assert kept.size == 3 and db.session.query(AuditCheckpoint).count() == 1
