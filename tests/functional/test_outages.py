"""When Redis or the database fails (issue 11): citizens never need Redis, and a database that
cannot be reached, read-only or full answers 503 with Retry-After in the visitor's language,
stores nothing half, gives the citizen's form back, and is logged once per LOG_REPEAT_SECONDS
per kind of failure instead of a traceback per request.

Faults are made for real where the machine allows it: Redis and PostgreSQL at a closed port,
SQLite in a folder that does not exist, SQLite opened read-only (`mode=ro`), SQLite full
(`PRAGMA max_page_count`), PostgreSQL read-only (`default_transaction_read_only`). PostgreSQL's
disk full cannot be made in a test: the driver's own DiskFull is raised on every INSERT."""

from __future__ import annotations

import base64
import io
import logging
import os
import socket
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import event, func, make_url, select, text

from models import Attachment, AuditEvent, BlobChunk, Message, Tip
from portal import create_app
from portal.operations.setup import complete_setup
from portal.web.extensions import db
from tests.conftest import ADMIN_PASSWORD, COSTS, Staff, test_settings
from tests.functional.test_citizen import HANDLE, SUBMISSION, hidden, receipt_of, submit

RETRY = 17  # RETRY_AFTER_SECONDS in these tests, to tell it from the default
NARRATIVE = "Tankers empty black sludge into the Hailan river at night"
UNAVAILABLE = {"zh": "平台暂时无法使用", "ko": "플랫폼을 잠시 리용할수 없습니다",
               "en": "The portal is unavailable for a moment"}
CANNOT_STORE = "The portal cannot store anything right now. Nothing was stored."


class Clock:
    """The failure log's clock, moved by hand: a minute passes without waiting for it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def summary_lines(caplog: pytest.LogCaptureFixture, kind: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(kind + ":")]


def assert_quiet_log(caplog: pytest.LogCaptureFixture) -> None:
    """No traceback and no address anywhere in what was logged."""
    assert all(r.exc_info is None for r in caplog.records), caplog.text
    assert "Traceback" not in caplog.text
    assert "127.0.0.1" not in caplog.text


def with_clock(app: Flask) -> Clock:
    clock = Clock()
    app.extensions["outage"].clock = clock
    return clock


def counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        result = {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                  for model in (Tip, Attachment, BlobChunk, AuditEvent, Message)}
        db.session.remove()
    return result


# ---------------------------------------------------------------------------------------------
# Redis unreachable


def test_redis_down_citizens_file_and_follow_up_with_limits_in_memory(
        app_factory, caplog) -> None:
    down = f"redis://127.0.0.1:{closed_port()}/0"
    app = app_factory(REDIS_URL=down, RATELIMIT_STORAGE_URI=down, SUBMIT_RATE_LIMIT="3 per hour")
    clock = with_clock(app)
    with app.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
    caplog.set_level(logging.INFO)
    client = app.test_client()
    filed = [submit(client, place="Hailan bridge") for _ in range(3)]
    assert [r.status_code for r in filed] == [201, 201, 201]
    # The limit still holds, counted in this process's memory.
    assert submit(client).status_code == 429
    page = client.post("/followup?lang=en", data={"receipt": receipt_of(filed[0])})
    assert page.status_code == 200 and "Hailan bridge" in page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    reply = client.post("/followup/reply?lang=en", content_type="multipart/form-data", data={
        "token": hidden(HANDLE, text), "submission": hidden(SUBMISSION, text),
        "body": "They came again last night."})
    assert reply.status_code == 200
    assert "Your message has been sent" in reply.get_data(as_text=True)
    assert counts(app)["Message"] == 1

    lines = summary_lines(caplog, "rate-limit store unreachable")
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING, caplog.text
    assert_quiet_log(caplog)
    # A minute later, while the store is still down: one more warning, with the count.
    clock.now += 61
    assert client.get("/followup").status_code == 200
    lines = summary_lines(caplog, "rate-limit store unreachable")
    assert len(lines) == 2 and "more in the last 61 s" in lines[1].getMessage()


def test_redis_down_staff_pages_answer_503_in_words(app_factory, caplog) -> None:
    """Staff sessions live in Redis when it is configured: without it nobody can sign in or be
    recognised, and the staff pages say so (503, staff layout) instead of failing."""
    down = f"redis://127.0.0.1:{closed_port()}/0"
    app = app_factory(REDIS_URL=down, RATELIMIT_STORAGE_URI="memory://",
                      RETRY_AFTER_SECONDS=RETRY)
    with app.app_context():
        keys = dict(complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS).recovery)
        Staff(app, keys).create("officer.li")
    caplog.set_level(logging.INFO)
    client = app.test_client()
    signin = client.post("/staff/login?lang=en", data={"username": "officer.li",
                                                       "password": Staff.PASSWORD})
    token = base64.urlsafe_b64encode(os.urandom(64)).decode().rstrip("=")
    client.set_cookie("qingliu_staff", token)
    queue = client.get("/staff/?lang=ko")
    api = app.test_client().get("/api/v1/staff/tips", headers={
        "Authorization": f"Bearer {token}", "Accept-Language": "zh"})
    for response in (signin, queue, api):
        assert response.status_code == 503, response.get_data(as_text=True)[:500]
        assert response.headers["Retry-After"] == str(RETRY)
    assert "Staff sign-in is unavailable right now" in signin.get_data(as_text=True)
    assert 'class="staff"' in signin.get_data(as_text=True)
    assert "사업일군 로그인을 지금은 리용할수 없습니다" in queue.get_data(as_text=True)
    assert api.get_json() == {"status": 503, "error": api.get_json()["error"]}
    assert "工作人员登录暂时无法使用" in api.get_json()["error"]
    assert len(summary_lines(caplog, "Redis unreachable")) == 1, caplog.text
    assert_quiet_log(caplog)
    # The citizen side does not need Redis at all.
    assert client.get("/report").status_code == 200


# ---------------------------------------------------------------------------------------------
# Database unreachable


def unreachable_database(tmp_path) -> str:
    """PostgreSQL at a closed port, or an SQLite file in a folder that is not there."""
    url = make_url(test_settings(tmp_path)["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "postgresql":
        return url.set(port=closed_port()).render_as_string(hide_password=False)
    return f"sqlite:///{tmp_path / 'gone' / 'qingliu.sqlite3'}"


def test_database_unreachable_answers_503_in_the_visitors_language(tmp_path, caplog) -> None:
    app = create_app({**test_settings(tmp_path), "RETRY_AFTER_SECONDS": RETRY,
                      "SQLALCHEMY_DATABASE_URI": unreachable_database(tmp_path)})
    clock = with_clock(app)
    caplog.set_level(logging.INFO)
    client = app.test_client()
    answered = 0
    for lang, words in UNAVAILABLE.items():
        for path in ("/", "/report"):
            page = client.get(f"{path}?lang={lang}")
            assert page.status_code == 503, (path, page.get_data(as_text=True)[:300])
            assert page.headers["Retry-After"] == str(RETRY)
            assert words in page.get_data(as_text=True)
            answered += 1
        api = client.get("/api/v1/categories", headers={"Accept-Language": lang})
        assert api.status_code == 503 and api.headers["Retry-After"] == str(RETRY)
        assert words in api.get_json()["error"]
        answered += 1
    # A form sent meanwhile, and the staff sign-in (staff layout, no database behind it).
    sent = client.post("/report?lang=en", data={"narrative": NARRATIVE, "submission": "x"},
                       content_type="multipart/form-data")
    assert sent.status_code == 503 and "could not be handled" in sent.get_data(as_text=True)
    signin = client.post("/staff/login?lang=en", data={"username": "a", "password": "b"})
    assert signin.status_code == 503 and 'class="staff"' in signin.get_data(as_text=True)
    answered += 2

    lines = summary_lines(caplog, "database unreachable")
    assert len(lines) == 1, caplog.text
    assert "OperationalError" in lines[0].getMessage()
    assert_quiet_log(caplog)
    # A minute on: one line says how many more there were.
    clock.now += 60
    assert client.get("/?lang=en").status_code == 503
    lines = summary_lines(caplog, "database unreachable")
    assert len(lines) == 2 and f"{answered} more in the last 60 s" in lines[1].getMessage()
    assert_quiet_log(caplog)


def test_an_embedded_database_moved_away_answers_503_and_is_not_made_again(tmp_path,
                                                                            caplog) -> None:
    """The SQLite file that existed at start is moved away (a volume unmounted, an operator's
    mistake): requests answer 503, and no new empty database appears in its place, which would
    answer 500 ("no such table") and which a later `make run` would set up as a new portal."""
    database = tmp_path / "portal.sqlite3"
    settings = {**test_settings(tmp_path), "RETRY_AFTER_SECONDS": RETRY,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}
    made = create_app(settings)
    with made.app_context():
        db.create_all()
        db.engine.dispose()
    app = create_app(settings)
    with_clock(app)
    caplog.set_level(logging.INFO)
    client = app.test_client()
    assert client.get("/?lang=en").status_code == 200
    with app.app_context():
        db.engine.dispose()  # as after a restart: no connection still holds the old file open
    database.rename(tmp_path / "moved-away.sqlite3")
    for lang, words in UNAVAILABLE.items():
        page = client.get(f"/?lang={lang}")
        assert page.status_code == 503 and words in page.get_data(as_text=True)
        assert page.headers["Retry-After"] == str(RETRY)
    assert not database.exists()
    assert len(summary_lines(caplog, "database unreachable")) == 1, caplog.text
    assert_quiet_log(caplog)


def test_a_served_portal_started_without_its_database_answers_503_and_makes_none(
        tmp_path, caplog) -> None:
    """Gunicorn started after the file went (the server rebooted without its volume): a served
    portal never makes its database; only `flask db upgrade` does."""
    database = tmp_path / "gone" / "portal.sqlite3"
    database.parent.mkdir()
    app = create_app({**test_settings(tmp_path), "RETRY_AFTER_SECONDS": RETRY,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
                      "SQLITE_MAY_CREATE": False})  # as under gunicorn
    with_clock(app)
    caplog.set_level(logging.INFO)
    client = app.test_client()
    for lang, words in UNAVAILABLE.items():
        page = client.get(f"/?lang={lang}")
        assert page.status_code == 503 and words in page.get_data(as_text=True)
    assert not database.exists()
    assert len(summary_lines(caplog, "database unreachable")) == 1, caplog.text
    assert_quiet_log(caplog)


# ---------------------------------------------------------------------------------------------
# Database read-only or full


def _sqlite_full(engine: object) -> None:
    @event.listens_for(engine, "connect")
    def _no_room(connection: object, _record: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {int(pages)}")
        cursor.close()


def _postgresql_full(engine: object) -> None:
    import psycopg.errors

    @event.listens_for(engine, "before_cursor_execute")
    def _no_room(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise psycopg.errors.DiskFull("could not extend file: No space left on device")


def broken_twin(writable: Flask, settings: dict, fault: str) -> Flask:
    """A second app on the same database (same secret key, instance folder and keys), which
    can read it but not write it."""
    url = make_url(settings["SQLALCHEMY_DATABASE_URI"])
    postgresql = url.get_backend_name() == "postgresql"
    overrides: dict[str, object] = {}
    if fault == "read-only" and postgresql:
        overrides["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "connect_args": {"options": "-c default_transaction_read_only=on"}}
    elif fault == "read-only":
        overrides["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///file:{url.database}?mode=ro&uri=true"
    twin = create_app({**settings, **overrides})
    if fault == "full":
        with twin.app_context():
            (_postgresql_full if postgresql else _sqlite_full)(db.engine)
    return twin


@pytest.fixture(params=["read-only", "full"])
def cannot_store(request, app_factory, tmp_path) -> tuple[Flask, Flask, Callable[[], None]]:
    settings = {**test_settings(tmp_path), "RETRY_AFTER_SECONDS": RETRY}
    writable = app_factory(**settings)
    with writable.app_context():
        complete_setup(db.session, "admin", ADMIN_PASSWORD, **COSTS)
        db.session.remove()
    return writable, broken_twin(writable, settings, request.param), request.param


def big_text_file() -> tuple[io.BytesIO, str]:
    """A few hundred KiB: more than an SQLite file at its page limit has left."""
    return io.BytesIO(os.urandom(150 * 1024).hex().encode()), "notes.txt"


def test_tip_is_not_half_stored_and_the_form_comes_back(cannot_store, caplog) -> None:
    writable, broken, fault = cannot_store
    caplog.set_level(logging.INFO)
    client = broken.test_client()
    token = hidden(SUBMISSION, client.get("/report?lang=en"))  # reading still works
    before = counts(writable)
    fields = {"narrative": NARRATIVE, "place": "Hailan bridge", "county": "longjing",
              "submission": token}
    sent = client.post("/report?lang=en", content_type="multipart/form-data",
                       data={**fields, "attachments": [big_text_file()]})
    assert sent.status_code == 503, sent.get_data(as_text=True)[:2000]
    assert sent.headers["Retry-After"] == str(RETRY)
    page = sent.get_data(as_text=True)
    assert CANNOT_STORE in page and "Everything you typed is kept" in page
    assert NARRATIVE in page and "Hailan bridge" in page and "notes.txt" in page
    assert hidden(SUBMISSION, page) == token  # the same one-time token: sent again, filed once
    assert counts(writable) == before
    kind = "database read-only" if fault == "read-only" else "database full"
    assert len(summary_lines(caplog, kind)) == 1, caplog.text
    assert_quiet_log(caplog)

    # Once the database takes writes again, the form as it came back files the tip once.
    again = writable.test_client().post("/report?lang=en", content_type="multipart/form-data",
                                        data={**fields, "attachments": [big_text_file()]})
    assert again.status_code == 201
    after = counts(writable)
    assert (after["Tip"], after["Attachment"]) == (before["Tip"] + 1, before["Attachment"] + 1)


def test_reply_is_not_stored_and_the_message_comes_back(cannot_store, caplog) -> None:
    writable, broken, _fault = cannot_store
    receipt = receipt_of(submit(writable.test_client()))
    client = broken.test_client()
    caplog.set_level(logging.INFO)
    status = client.post("/followup?lang=en", data={"receipt": receipt})
    assert status.status_code == 200, status.get_data(as_text=True)[:2000]
    text = status.get_data(as_text=True)
    before = counts(writable)
    sent = client.post("/followup/reply?lang=en", content_type="multipart/form-data", data={
        "token": hidden(HANDLE, text), "submission": hidden(SUBMISSION, text),
        "body": "The tankers have a red stripe.", "attachments": [big_text_file()]})
    assert sent.status_code == 503, sent.get_data(as_text=True)[:2000]
    assert sent.headers["Retry-After"] == str(RETRY)
    page = sent.get_data(as_text=True)
    assert CANNOT_STORE in page and "The tankers have a red stripe." in page
    assert "notes.txt" in page
    assert counts(writable) == before
    assert_quiet_log(caplog)


def test_an_error_that_is_not_an_outage_is_still_a_500_with_its_traceback(app, caplog) -> None:
    """The summary is for outages only: a bug in SQL keeps its traceback in the log."""

    @app.get("/broken-query")
    def broken_query() -> str:
        db.session.execute(text("SELECT no_such_column FROM no_such_table"))
        return "unreachable"

    caplog.set_level(logging.INFO)
    response = app.test_client().get("/broken-query")
    assert response.status_code == 500
    assert any(r.exc_info for r in caplog.records if "unhandled error" in r.getMessage())


def test_the_failure_log_reports_a_count_even_after_the_failures_stop(caplog) -> None:
    from portal.web.outage import FailureLog

    clock = Clock()
    summary = FailureLog(logging.getLogger("test.outage"), every=60, clock=clock)
    caplog.set_level(logging.INFO, logger="test.outage")
    for _ in range(5):
        summary.note("database full", "OperationalError: database or disk is full "
                                       "(from 10.1.2.3)")
    summary.flush()  # not a minute yet: nothing more
    assert len(caplog.records) == 1 and "[address removed]" in caplog.text
    assert "10.1.2.3" not in caplog.text
    clock.now += 60
    summary.flush()  # the failures stopped; the count is still told, once
    summary.flush()
    assert [r.getMessage().split(" (latest")[0] for r in caplog.records][1:] == [
        "database full: 4 more in the last 60 s"]
    clock.now += 600  # a new failure long after: told as a first one again
    summary.note("database full", "OperationalError: database or disk is full")
    assert len(caplog.records) == 3 and "repeats are counted" in caplog.records[2].getMessage()
