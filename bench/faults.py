"""Faults: what citizens, the API and the log see when Redis or the database fails, when the
database cannot be written, and when gunicorn is stopped during uploads (issue 11, rows 3-6).

Run:  .venv/bin/python bench/faults.py                    (SQLite, about 3 minutes)
      .venv/bin/python bench/faults.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
      (PostgreSQL: a scratch database is created on that server and dropped afterwards)
      .venv/bin/python bench/faults.py --seconds 60         (a longer window per fault)

Each fault gets its own gunicorn, started as `make run` starts it (gunicorn.conf.py, `app:app`,
`flask db upgrade` and `flask setup` first, the embedded SQLite file in WAL mode), on a fresh
instance in a temporary folder, with the submission and follow-up rate limits raised (every
request comes from 127.0.0.1). For `--seconds` one citizen goes round GET /, POST /report (the
form with its one-time token and a 20 KB file), POST /followup and POST /api/v1/followup, and
the log the server writes meanwhile is measured. Faults:

- Redis unreachable: REDIS_URL=redis://127.0.0.1:1/0.
- Database unreachable: PostgreSQL on a closed port; SQLite in a folder that does not exist.
- Database read-only: PostgreSQL: ALTER DATABASE … SET default_transaction_read_only = on;
  SQLite: the file opened read-only (`sqlite:///file:…?mode=ro&uri=true`).
- Disk full: the database on a small tmpfs (SQLite: the file; PostgreSQL: a tablespace), filled
  up but for about 1.5 MB, tips with a 3 MB file. Needs root (mount); skipped, saying so, if not.
- SIGTERM during 200 uploads: 200 connections have sent half of a 256 KB report when the master
  gets SIGTERM; they send the rest one after another over `--sigterm-seconds` (40) and read
  their answers.

Prints one line per fault: what was seen (status codes per request, log bytes per 20 s and log
lines), the goal, and "ok" or "short". This measures; it changes nothing in the portal.
"""

# ruff: noqa: E402 - the path is set right before the imports (below)
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, bench/ comes first on the path: the repository instead (portal, tests.servers),
# so that no script of bench/ can stand in for a module of the standard library.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

import argparse
import contextlib
import json
import math
import os
import runpy
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.servers import Answer, Gunicorn, Visit, accept_queue, hidden_field, start_gunicorn

ADMIN_PASSWORD = "bench password 2026"  # noqa: S105 - a throwaway instance
RAISED_LIMITS = {"SUBMIT_RATE_LIMIT": "100000 per hour", "FOLLOWUP_RATE_LIMIT": "100000 per hour"}
CONF = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
WORKERS = int(CONF.get("workers", 1))
# The follow-ups ask for the last receipt a tip got (at first one that matches nothing).
RECEIPT = ["0000-0000-0000-0000-0000"]
ROUTES = ("GET /", "POST tip", "POST follow-up", "API follow-up")


def flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                   check=True, capture_output=True)


def prepare(database_url: str, folder: Path) -> None:
    """A fresh instance as `make run` makes it: schema, WAL (SQLite), setup with unit keys."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "faults bench",
           "PORTAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "AUDIT_SIGNING_KEY_FILE": str(folder / "audit-log.key")}
    env.pop("REDIS_URL", None)
    flask(env, "db", "upgrade")
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with contextlib.closing(sqlite3.connect(url.database)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    flask(env, "setup", "--admin", "bench", "--recovery-out", str(folder / "keys"))


# --- databases ---------------------------------------------------------------------------------

class Postgres:
    """Scratch databases on the server of `url`, dropped at the end."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
        self.admin = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.made: list[str] = []
        self.tablespaces: list[str] = []

    def execute(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(sql))

    def create(self, tablespace: str | None = None) -> str:
        name = f"qingliu_faults_{uuid.uuid4().hex[:8]}"
        self.execute(f'CREATE DATABASE "{name}"'
                     + (f' TABLESPACE "{tablespace}"' if tablespace else ""))
        self.made.append(name)
        return self.url_of(name)

    def url_of(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        for name in self.made:
            self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for name in self.tablespaces:
            self.execute(f'DROP TABLESPACE IF EXISTS "{name}"')
        self.admin.dispose()


def stored(database_url: str) -> tuple[int, int, int, int]:
    """(tips, attachments, chunk rows, things half-saved): tips whose attachment_count is not
    their attachments, attachments of no tip, chunks of no attachment."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1),
                           poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tips = conn.scalar(text("SELECT count(*) FROM tips"))
            attachments = conn.scalar(text("SELECT count(*) FROM attachments"))
            chunks = conn.scalar(text("SELECT count(*) FROM blob_chunks"))
            half = conn.scalar(text(
                "SELECT (SELECT count(*) FROM tips t WHERE t.attachment_count <> "
                "(SELECT count(*) FROM attachments a WHERE a.tip_id = t.id))"
                " + (SELECT count(*) FROM attachments WHERE tip_id IS NULL)"
                " + (SELECT count(*) FROM blob_chunks c WHERE NOT EXISTS "
                "(SELECT 1 FROM attachments a WHERE a.id = c.attachment_id))"))
    finally:
        engine.dispose()
    return tips, attachments, chunks, half


# --- one citizen going round -------------------------------------------------------------------

@dataclass
class Seen:
    statuses: dict[str, Counter] = field(default_factory=lambda: {r: Counter() for r in ROUTES})
    no_retry_after: Counter = field(default_factory=Counter)  # 503s without Retry-After
    errors: Counter = field(default_factory=Counter)  # no HTTP answer at all
    log_bytes: int = 0
    log_lines: int = 0
    seconds: float = 0.0

    def note(self, route: str, answer: Answer | None) -> None:
        if answer is None:
            self.statuses[route]["cut"] += 1
            return
        self.statuses[route][answer.status] += 1
        if answer.status == 503 and "retry-after" not in answer.headers:
            self.no_retry_after[route] += 1

    def only(self, route: str) -> set[int | str]:
        return set(self.statuses[route])

    def codes(self) -> str:
        parts = []
        for route in ROUTES:
            counts = " ".join(f"{status}×{n}" for status, n in
                              sorted(self.statuses[route].items(), key=str))
            parts.append(f"{route} {counts or '-'}")
        missing = sum(self.no_retry_after.values())
        return "; ".join(parts) + (f"; 503 without Retry-After: {missing}" if missing else "")

    def log(self) -> str:
        per_20 = self.log_bytes * 20 / max(self.seconds, 1)
        return f"log {per_20 / 1024:.1f} KiB/20 s, {self.log_lines} lines in {self.seconds:.0f} s"


def attempt(call: Callable[[], Answer]) -> Answer | None:
    try:
        return call()
    except (OSError, ValueError, RuntimeError, ConnectionError):
        return None
    except Exception:  # http.client's RemoteDisconnected, IncompleteRead …: no answer
        return None


def citizen_round(server: Gunicorn, seen: Seen, receipt: list[str], file_bytes: int) -> None:
    visit = Visit(server.port, timeout=30)
    seen.note("GET /", attempt(lambda: visit.get("/?lang=en")))
    form = attempt(lambda: visit.get("/report?lang=en"))
    fields = {}
    if form is not None and form.status == 200:
        fields = {n: hidden_field(n, form.body) or "" for n in ("csrf_token", "submission")}
    narrative = f"faults bench: oil in the Hailan river {uuid.uuid4().hex[:6]}"
    upload = visit.upload("/report?lang=en", {**fields, "narrative": narrative},
                          [("notes.txt", os.urandom(file_bytes // 2).hex().encode())])
    answer = attempt(lambda: upload.send().answer())
    seen.note("POST tip", answer)
    if answer is not None and answer.status == 201 and answer.receipt:
        receipt[0] = answer.receipt
    seen.note("POST follow-up", attempt(lambda: visit.followup(receipt[0])))
    seen.note("API follow-up", attempt(lambda: visit.request(
        "POST", "/api/v1/followup", json.dumps({"receipt": receipt[0]}).encode(),
        {"Content-Type": "application/json"})))


def go_round(server: Gunicorn, seconds: float, file_bytes: int = 20_000) -> Seen:
    """One citizen going round for `seconds`; the log written meanwhile."""
    seen = Seen()
    receipt = RECEIPT
    log_start = server.log.stat().st_size
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        citizen_round(server, seen, receipt, file_bytes)
    seen.seconds = time.monotonic() - started
    with server.log.open("rb") as log:
        log.seek(log_start)
        written = log.read()
    seen.log_bytes, seen.log_lines = len(written), written.count(b"\n")
    return seen


# --- faults ------------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    measured: str
    goal: str
    ok: bool | None  # None: not measured


def serve(database_url: str, folder: Path, env: dict[str, str] | None = None) -> Gunicorn:
    server = start_gunicorn({**RAISED_LIMITS, **(env or {})}, database_url, workers=None,
                            threads=None, folder=folder)
    server.wait_ready(timeout=120)
    return server


@contextlib.contextmanager
def served(database_url: str, folder: Path, env: dict[str, str] | None = None
           ) -> Iterator[Gunicorn]:
    server = serve(database_url, folder, env)
    try:
        yield server
    finally:
        server.stop()


def per_minute(seen: Seen, lines_per_minute: int) -> bool:
    """Log lines within `lines_per_minute` per worker process and started minute."""
    return seen.log_lines <= lines_per_minute * WORKERS * math.ceil(seen.seconds / 60)


def redis_down(database_url: str, folder: Path, seconds: float) -> Result:
    with served(database_url, folder, {"REDIS_URL": "redis://127.0.0.1:1/0"}) as server:
        seen = go_round(server, seconds)
    ok = (seen.only("GET /") == {200} and seen.only("POST tip") == {201}
          and seen.only("POST follow-up") == {200} and seen.only("API follow-up") == {200}
          and per_minute(seen, 1))
    return Result("Redis unreachable", f"{seen.codes()}; {seen.log()}",
                  "citizens unaffected (200/201), one warning a minute", ok)


def database_down(unreachable_url: str, folder: Path, seconds: float) -> Result:
    try:
        server = serve(unreachable_url, folder)
    except RuntimeError as error:
        return Result("database unreachable", f"gunicorn did not start: {str(error)[-300:]}",
                      "503 with Retry-After on every route", False)
    try:
        seen = go_round(server, seconds)
    finally:
        server.stop()
    all_503 = all(seen.only(route) == {503} for route in ROUTES)
    ok = all_503 and not seen.no_retry_after and per_minute(seen, 2)
    return Result("database unreachable", f"{seen.codes()}; {seen.log()}",
                  "503 with Retry-After everywhere, ≤ 1 log line a minute per kind", ok)


def cannot_write(name: str, database_url: str, check_url: str, folder: Path, seconds: float,
                 file_bytes: int) -> Result:
    before = stored(check_url)
    try:
        server = serve(database_url, folder)
    except RuntimeError as error:
        return Result(name, f"gunicorn did not start: {str(error)[-300:]}",
                      "tip POST 503, nothing half-saved", False)
    try:
        seen = go_round(server, seconds, file_bytes)
    finally:
        server.stop()
    after = stored(check_url)
    ok = (seen.only("POST tip") == {503} and not seen.no_retry_after["POST tip"]
          and after == before and after[3] == 0)
    return Result(name, f"{seen.codes()}; stored before {before[:3]}, after {after[:3]}, "
                        f"half-saved {after[3]}; {seen.log()}",
                  "tip POST 503 with a clear message, nothing half-saved", ok)


def read_only_sqlite(path: Path, folder: Path, seconds: float) -> Result:
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    return cannot_write("database read-only (SQLite ?mode=ro)", url, f"sqlite:///{path}",
                        folder, seconds, 20_000)


def read_only_postgres(pg: Postgres, database_url: str, folder: Path, seconds: float) -> Result:
    name = make_url(database_url).database
    pg.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        return cannot_write("database read-only (PostgreSQL)", database_url, database_url,
                            folder, seconds, 20_000)
    finally:
        pg.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


@contextlib.contextmanager
def small_disk(where: Path, size_mb: int) -> Iterator[Path]:
    where.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs",
                    str(where)], check=True, capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` but for about `leave` bytes."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as out:
        remaining = free - leave
        while remaining > 0:
            out.write(b"\0" * min(remaining, 1 << 20))
            remaining -= 1 << 20
    return filler


def disk_full_sqlite(template: Path, folder: Path, seconds: float) -> Result:
    name = "disk full (SQLite on a full tmpfs)"
    try:
        with small_disk(folder / "small", 24) as disk:
            shutil.copyfile(template, disk / "qingliu.sqlite3")
            fill(disk, 1_500_000)
            url = f"sqlite:///{disk / 'qingliu.sqlite3'}"
            return cannot_write(name, url, url, folder, seconds, 3_000_000)
    except (subprocess.CalledProcessError, OSError) as error:
        detail = getattr(error, "stderr", b"") or str(error)
        return Result(name, f"not measured: {detail!r}", "tip POST 503, nothing half-saved",
                      None)


def disk_full_postgres(pg: Postgres, folder: Path, seconds: float) -> Result:
    name = "disk full (PostgreSQL tablespace on a full tmpfs)"
    try:
        with small_disk(folder / "small", 64) as disk:
            space = disk / "tablespace"
            space.mkdir()
            shutil.chown(space, "postgres", "postgres")
            for parent in (folder.parent, folder):  # postgres must reach its tablespace
                os.chmod(parent, 0o755)  # noqa: S103
            tablespace = f"qingliu_faults_{uuid.uuid4().hex[:8]}"
            pg.execute(f"CREATE TABLESPACE \"{tablespace}\" LOCATION '{space}'")
            pg.tablespaces.append(tablespace)
            url = pg.create(tablespace)
            prepare(url, folder)
            fill(disk, 1_500_000)
            try:
                return cannot_write(name, url, url, folder, seconds, 3_000_000)
            finally:
                pg.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
                pg.execute(f'DROP TABLESPACE IF EXISTS "{tablespace}"')
    except (subprocess.CalledProcessError, OSError, LookupError, DBAPIError) as error:
        detail = getattr(error, "stderr", b"") or str(error)
        return Result(name, f"not measured: {detail!r}", "tip POST 503, nothing half-saved",
                      None)


def sigterm_during_uploads(database_url: str, folder: Path, uploads: int, seconds: float
                           ) -> Result:
    """`uploads` connections have sent half their report when the master gets SIGTERM."""
    before = stored(database_url)[0]
    server = serve(database_url, folder)
    visits = [Visit(server.port, timeout=300) for _ in range(uploads)]
    posts = []
    for visit in visits:
        form = visit.report_form()
        posts.append(visit.upload(
            "/report?lang=en", {**form, "narrative": f"faults bench: SIGTERM {uuid.uuid4().hex}"},
            [("notes.txt", os.urandom(128 * 1024).hex().encode())], chunk=16 * 1024))
    half_sent = threading.Barrier(uploads + 1)
    go = threading.Event()

    def send(index: int, post) -> Answer | None:
        try:
            post.send(upto=len(post.body) // 2)
        finally:
            half_sent.wait(timeout=120)
        go.wait(timeout=120)
        # The second halves end one after another over `seconds` (as many phones would), so
        # that the receipt-hash gate is not what turns them away.
        time.sleep(seconds * index / uploads)  # pacing the clients, not waiting for anything
        return attempt(lambda: post.send().answer())

    with ThreadPoolExecutor(uploads) as pool:
        futures = [pool.submit(send, i, post) for i, post in enumerate(posts)]
        half_sent.wait(timeout=120)
        deadline = time.monotonic() + 30
        while accept_queue(server.port) and time.monotonic() < deadline:
            time.sleep(0.01)  # the workers accepting what is in the kernel's queue
        stopped_at = time.monotonic()
        server.terminate()
        go.set()
        answers = [f.result() for f in futures]
    exit_code = server.process.wait(timeout=600)
    took = time.monotonic() - stopped_at
    seen = Counter("cut" if a is None else a.status for a in answers)
    filed = stored(database_url)[0] - before
    ok = seen.get(201, 0) == uploads and filed == uploads
    codes = " ".join(f"{k}×{v}" for k, v in sorted(seen.items(), key=str))
    return Result(f"SIGTERM during {uploads} uploads",
                  f"answers {codes}; stored {filed}; master exited {exit_code} after "
                  f"{took:.0f} s (graceful_timeout {CONF.get('graceful_timeout')} s)",
                  "every in-flight upload finishes: 201 and stored", ok)


# --- main --------------------------------------------------------------------------------------

def print_result(result: Result, database: str) -> None:
    verdict = {True: "ok", False: "short", None: "not measured"}[result.ok]
    print(f"[{database}] {result.name}: {result.measured} | goal: {result.goal} | {verdict}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL server (a scratch database is "
                        "created there and dropped); default: SQLite in a temporary folder")
    parser.add_argument("--seconds", type=float, default=20, help="window per fault")
    parser.add_argument("--uploads", type=int, default=200, help="in flight at SIGTERM")
    parser.add_argument("--sigterm-seconds", type=float, default=40,
                        help="the uploads' second halves end over this long after SIGTERM "
                             "(beyond the 30 s graceful_timeout gunicorn.conf.py used to have)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qingliu-faults-") as tmp:
        folder = Path(tmp)
        pg = Postgres(args.database_url) if args.database_url else None
        try:
            if pg is not None:
                database, url = "PostgreSQL", pg.create()
                unreachable = "postgresql://postgres@127.0.0.1:1/qingliu"
            else:
                database, url = "SQLite", f"sqlite:///{folder / 'qingliu.sqlite3'}"
                unreachable = f"sqlite:///{folder / 'no-such-folder' / 'qingliu.sqlite3'}"
            prepare(url, folder)
            steps: list[Callable[[], Result]] = [
                lambda: redis_down(url, folder / "redis", args.seconds),
                lambda: database_down(unreachable, folder / "down", args.seconds),
                (lambda: read_only_postgres(pg, url, folder / "ro", args.seconds))
                if pg is not None else
                (lambda: read_only_sqlite(folder / "qingliu.sqlite3", folder / "ro",
                                          args.seconds)),
                (lambda: disk_full_postgres(pg, folder / "full", args.seconds))
                if pg is not None else
                (lambda: disk_full_sqlite(folder / "qingliu.sqlite3", folder / "full",
                                          args.seconds)),
                lambda: sigterm_during_uploads(url, folder / "sigterm", args.uploads,
                                               args.sigterm_seconds),
            ]
            for step in steps:
                print_result(step(), database)
        finally:
            if pg is not None:
                pg.close()
    print(f"{database}: {time.monotonic() - started:.0f} s; gunicorn.conf.py: workers "
          f"{WORKERS}, threads {CONF.get('threads')}, timeout {CONF.get('timeout')}, "
          f"graceful_timeout {CONF.get('graceful_timeout')}")


if __name__ == "__main__":
    main()
