"""The audit log's real writer and the auditor's verify button, on a database of `--entries`
entries: entries per second appended through auditlog.events.record (head lock, chain, leaf),
then the button as an auditor presses it on the portal served by gunicorn -c gunicorn.conf.py:
how long POST /audit/verify takes to answer while the whole log is verified in the background,
how long the progress page takes while the run goes on, and the run's entries per second.

Run:  .venv/bin/python bench/audit_db.py [--entries 100000] [--batch 1000]
      .venv/bin/python bench/audit_db.py --database-url postgresql://postgres@127.0.0.1:5432/qingliu_bench
(The PostgreSQL database is created when missing and emptied; never point it at data you keep.
The offline format and verifier at 1,000,000 entries: bench/audit_log.py.)
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import queue_page  # here: officer_queue, imported where used, takes bench/ off sys.path
from figures import Figure
from serve import free_port, start_server, stop_server

APPEND_GOAL = 20_000  # entries per second through record(), SQLite, 1,000 per transaction
ANSWER_GOAL = 1.0  # seconds: the button's POST, and the progress page while the run goes on
VERIFY_GOAL = "a background job with progress that never blocks a request"
AUDITOR = "bench-auditor"


@dataclass(frozen=True)
class Measured:
    database: str
    entries: int
    batch: int
    append_seconds: float
    post_seconds: float  # POST /audit/verify until its 303 answer
    page_seconds: list[float]  # GET /audit/verify, each while the run was going on
    run_seconds: float  # the run's own start to end (its row), checkpoint included
    run_entries: int
    verified: bool


def prepare(url: str, folder: Path, entries: int, batch: int, secret_key: str
            ) -> tuple[float, str]:
    """A fresh portal database (schema, seed, an auditor with a second factor), then `entries`
    audit events appended through record() in transactions of `batch`: the seconds that took,
    and the auditor's TOTP secret."""
    import officer_queue

    from auditlog.events import SYSTEM, record
    from models import Role
    from portal import create_app
    from portal.operations.seed import seed
    from portal.security.accounts import add_membership, create_user
    from portal.security.auth import begin_enrollment
    from portal.web.extensions import db
    from tests.conftest import stamp_migrations_head

    if url.startswith("postgresql"):
        officer_queue.ensure_postgres_database(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret_key,
                      "INSTANCE_PATH": folder / "instance", "TESTING": False,
                      "RATELIMIT_STORAGE_URI": "memory://", "REDIS_URL": None})
    with app.app_context():
        db.drop_all()
        db.create_all()
        seed(db.session)
        stamp_migrations_head(app)
        user = create_user(db.session, AUDITOR, queue_page.PASSWORD,
                           wrap_cost=officer_queue.CHEAP_ARGON2,
                           login_cost=officer_queue.CHEAP_ARGON2, actor=SYSTEM)
        add_membership(db.session, user, "zhou", Role.AUDITOR, actor=SYSTEM)
        secret = begin_enrollment(user, secret_key).secret
        user.totp_confirmed_at = user.created_at
        db.session.commit()
        started = time.perf_counter()
        for i in range(entries):
            record(db.session, SYSTEM, "bench.event", object_type="tip", object_id=i, n=i)
            if (i + 1) % batch == 0:
                db.session.commit()
        db.session.commit()
        append = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    if url.startswith("sqlite"):  # as `make run` leaves the embedded database
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    return append, secret


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 303 itself is the answer timed


def press_verify(base: str, opener: urllib.request.OpenerDirector) -> float:
    """POST /audit/verify as the overview page's button sends it; the seconds to its answer."""
    page = opener.open(f"{base}/audit/?lang=en", timeout=60).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if token is None:
        raise SystemExit("no CSRF token on the audit overview")
    data = urllib.parse.urlencode({"csrf_token": token.group(1)}).encode()
    no_redirect = urllib.request.build_opener(_NoRedirect(), *[
        h for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor)])
    started = time.perf_counter()
    try:
        no_redirect.open(f"{base}/audit/verify", data=data, timeout=60).read()
    except urllib.error.HTTPError as answer:
        if answer.code != 303:
            raise
    else:
        raise SystemExit("POST /audit/verify did not answer 303")
    return time.perf_counter() - started


def follow_progress(base: str, opener: urllib.request.OpenerDirector) -> tuple[list[float], str]:
    """GET /audit/verify every half second (as its refresh would, a little more often) until
    the run has ended: the seconds of each answer given while it ran, and the last page."""
    times = []
    for _ in range(7200):  # an hour at most
        started = time.perf_counter()
        page = opener.open(f"{base}/audit/verify?lang=en", timeout=60).read().decode()
        took = time.perf_counter() - started
        if 'http-equiv="refresh"' not in page:
            return times, page
        if " entries checked." not in page and "is starting" not in page:
            raise SystemExit("the progress page shows no progress:\n" + page[-1500:])
        times.append(took)
        time.sleep(0.5)
    raise SystemExit("the verification did not end within an hour")


def run_of(url: str) -> tuple[float, int, bool]:
    """The latest run's seconds (its row), entries checked and outcome."""
    from sqlalchemy import create_engine, select

    from models.audit import AuditVerification

    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(select(AuditVerification).order_by(AuditVerification.id.desc())
                           .limit(1)).one()
    engine.dispose()
    if row.finished_at is None:
        raise SystemExit("the run did not finish")
    return (row.finished_at - row.started_at).total_seconds(), row.done, bool(row.ok)


def measure(entries: int, batch: int = 1000, database_url: str | None = None) -> Measured:
    import officer_queue

    port = free_port()
    secret_key = "bench " + uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = officer_queue.database_url(database_url, folder)
        append, secret = prepare(url, folder, entries, batch, secret_key)
        server = start_server(folder, port, url.replace("postgresql+psycopg://",
                                                       "postgresql://", 1),
                              prepare=False, secret_key=secret_key)
        base = f"http://127.0.0.1:{port}"
        try:
            opener = queue_page.signed_in(base, AUDITOR, secret)
            post = press_verify(base, opener)
            pages, last = follow_progress(base, opener)
        finally:
            stop_server(server)
        if "The log is intact" not in last:
            raise SystemExit("the log did not verify:\n" + last[-1500:])
        run_seconds, run_entries, ok = run_of(url)
        if url.startswith("postgresql"):
            from sqlalchemy import create_engine

            from models import Base

            engine = create_engine(url)
            Base.metadata.drop_all(engine)
            engine.dispose()
    return Measured(url.split(":", 1)[0].split("+")[0], entries, batch, append, post, pages,
                    run_seconds, run_entries, ok)


def figures(entries: int = 100_000, database_url: str | None = None) -> list[Figure]:
    m = measure(entries, database_url=database_url)
    append = m.entries / m.append_seconds
    slowest_page = max(m.page_seconds, default=0.0)
    rate = m.run_entries / m.run_seconds if m.run_seconds else float("inf")
    where = f"{m.database}, {m.entries:,} entries"
    return [
        Figure(f"audit append through record() ({where}, {m.batch}/transaction)",
               f"{append:,.0f} entries/s", f">= {APPEND_GOAL:,} entries/s",
               append >= APPEND_GOAL),
        Figure(f"audit verify: POST + verify_database in background ({where})",
               f"POST {m.post_seconds * 1000:,.0f} ms; page <= "
               f"{slowest_page * 1000:,.0f} ms ({len(m.page_seconds)} while running); "
               f"run {rate:,.0f} entries/s" + ("" if m.verified else " (FAILED)"),
               VERIFY_GOAL,
               m.verified and m.post_seconds < ANSWER_GOAL and slowest_page < ANSWER_GOAL),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="entries per transaction")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    m = measure(args.entries, args.batch, args.database_url)
    print(f"{m.database}, {m.entries:,} entries, {m.batch} per transaction")
    print(f"append through record()   {m.entries / m.append_seconds:10,.0f} entries/s  "
          f"({m.append_seconds:.1f} s)")
    print(f"POST /audit/verify         {m.post_seconds * 1000:10,.0f} ms  (answered while the "
          f"run goes on in the background)")
    if m.page_seconds:
        print(f"progress page, while running  max {max(m.page_seconds) * 1000:,.0f} ms, "
              f"{len(m.page_seconds)} requests")
    print(f"the run (checkpoint + verify_database)  {m.run_entries / m.run_seconds:10,.0f} "
          f"entries/s  ({m.run_seconds:.1f} s)  ok={m.verified}")


if __name__ == "__main__":
    main()
