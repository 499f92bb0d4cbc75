"""How fast the officers' queue answers at scale: seeds N tips (default 1,000,000) straight into
the tips table, then times the first page (50 rows) of portal.triage.queue.queue() for a
county
officer and for a 州本级 officer, with a few filters, plus a second keyset page and the
category counts. The requirement is a median under 50 ms for every queue case; the category
counts are reported but not held to it.

Run:  .venv/bin/python bench/officer_queue.py                (SQLite file in a temporary folder)
      .venv/bin/python bench/officer_queue.py --tips 20000 --runs 20  (a quick check)
      .venv/bin/python bench/officer_queue.py \\
          --database-url postgresql://postgres@127.0.0.1:5432/qingliu_bench
The PostgreSQL database is created when missing and its tables are dropped and created again
(never point this at the test suite's database). --keep leaves the data behind (the SQLite
folder, or the PostgreSQL tables); --reuse times a database kept earlier without seeding it.

Prints the seeding time, one line per case (median, p95 and min in milliseconds) and the query
plan of case (b), and of any case over the limit. Tips are seeded with a fixed 64-byte `content`
blob instead of age ciphertext: the queue reads plaintext metadata only and never that column.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path, and this file would then stand in
# for the standard library's `queue` (which psycopg imports): put the project root there instead.
sys.path[:] = [str(ROOT), *(p for p in sys.path
                            if Path(p or ".").resolve() != Path(__file__).resolve().parent)]

from sqlalchemy import create_engine, event, func, insert, inspect, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from auditlog.events import SYSTEM  # noqa: E402
from config import Argon2Params  # noqa: E402
from models import Category, Channel, Role, Tip, TipStatus, Unit, User  # noqa: E402
from portal import create_app  # noqa: E402
from portal.operations.seed import seed  # noqa: E402
from portal.security.access import Principal, principal_for  # noqa: E402
from portal.security.accounts import add_membership, create_user  # noqa: E402
from portal.triage import queue as tip_queue  # noqa: E402
from portal.web.extensions import db  # noqa: E402
from referral.calendar import load_calendar  # noqa: E402

LIMIT_MS = 50.0
BATCH = 20_000
CONTENT = b"x" * 64  # stands in for the age ciphertext, which the queue never reads
CHEAP_ARGON2 = Argon2Params(time_cost=1, memory_kib=8 * 1024, parallelism=1)
PASSWORD = "bench officer password 2026"  # noqa: S105 (a throwaway account)
YEARS = 3

# Handling units, weighted: Yanji (the prefecture seat) and 州本级 get the most tips.
UNIT_WEIGHTS = {"yanji": 30, "zhou": 20, "dunhua": 11, "hunchun": 10, "longjing": 8,
                "tumen": 6, "helong": 6, "wangqing": 5, "antu": 4}
STATUS_WEIGHTS = {TipStatus.RECEIVED: 20, TipStatus.ACCEPTED: 30, TipStatus.VERIFYING: 10,
                  TipStatus.DECLINED: 10, TipStatus.CLOSED: 30}
CHANNEL_WEIGHTS = {Channel.ONLINE: 55, Channel.API: 25, Channel.HOTLINE: 12,
                   Channel.PETITION: 4, Channel.ENFORCEMENT: 2, Channel.ROUTINE_INSPECTION: 1,
                   Channel.INSPECTION_RECTIFICATION: 1}
UNCLASSIFIED_SHARE = 0.15
COLUMNS = ("receipt_lookup", "receipt_recipient", "unit_id", "county", "category_id", "channel",
           "status", "priority", "real_name", "attachment_count", "received_at", "accepted_at",
           "decided_at", "closed_at", "due_step", "due_at", "due_certain", "extended",
           "decided_on_time", "closed_on_time", "content")


def database_url(url: str | None, folder: Path) -> str:
    if not url:
        return f"sqlite:///{folder / 'bench.sqlite3'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def ensure_postgres_database(url: str) -> None:
    """CREATE DATABASE when missing, through the `postgres` maintenance database."""
    target = make_url(url)
    name = target.database
    if name in (None, "", "postgres", "test"):
        raise SystemExit(f"refusing to use database {name!r}: give a dedicated one")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()


def tip_rows(n: int, now: datetime, unit_ids: dict[str, int], category_ids: list[int],
             rng: random.Random) -> Iterator[dict[str, Any]]:
    """n tips in arrival order (ids grow with received_at, as in production), over YEARS years
    ending at `now`."""
    units = list(UNIT_WEIGHTS)
    unit_w = list(UNIT_WEIGHTS.values())
    statuses = list(STATUS_WEIGHTS)
    status_w = list(STATUS_WEIGHTS.values())
    channels = list(CHANNEL_WEIGHTS)
    channel_w = list(CHANNEL_WEIGHTS.values())
    start = now - timedelta(days=365 * YEARS)
    span = (now - start).total_seconds()
    for i in range(n):
        received = start + timedelta(seconds=span * (i + rng.random()) / n)
        unit = rng.choices(units, unit_w)[0]
        status = rng.choices(statuses, status_w)[0]
        row: dict[str, Any] = {
            "receipt_lookup": i.to_bytes(32, "big"),
            "receipt_recipient": "age1bench",
            "unit_id": unit_ids[unit],
            "county": None if unit == "zhou" else unit,
            "category_id": (None if rng.random() < UNCLASSIFIED_SHARE
                            else rng.choice(category_ids)),
            "channel": str(rng.choices(channels, channel_w)[0]),
            "status": str(status),
            "priority": rng.choices((0, 1, 2, 3), (70, 18, 8, 4))[0],
            "real_name": rng.random() < 0.10,
            "attachment_count": rng.choices((0, 1, 2, 3), (50, 25, 15, 10))[0],
            "received_at": received,
            "accepted_at": None, "decided_at": None, "closed_at": None,
            "due_step": None, "due_at": None, "due_certain": True, "extended": False,
            "decided_on_time": None, "closed_on_time": None, "content": CONTENT,
        }
        decided = received + timedelta(days=rng.randint(1, 14), hours=rng.randint(0, 8))
        if status == TipStatus.RECEIVED:
            row.update(due_step="tip.accept", due_at=received + timedelta(days=15))
        elif status == TipStatus.DECLINED:
            row.update(decided_at=decided, closed_at=decided, decided_on_time=True)
        else:
            row.update(accepted_at=decided, decided_at=decided, decided_on_time=True)
            if status == TipStatus.CLOSED:
                row.update(closed_at=decided + timedelta(days=rng.randint(5, 60)),
                           closed_on_time=True)
            else:
                row.update(due_step="tip.close", due_at=decided + timedelta(days=60))
        yield row


def batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def seed_tips(n: int, now: datetime) -> None:
    session = db.session
    unit_ids = dict(session.execute(select(Unit.code, Unit.id)).all())
    category_ids = list(session.scalars(select(Category.id).where(Category.current.is_(True))))
    rows = tip_rows(n, now, unit_ids, category_ids, random.Random(20260101))
    if db.engine.dialect.name == "postgresql":
        raw = session.connection().connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
                f"COPY tips ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in COLUMNS])
    else:
        # A bigger page cache for the load only: the timed queries get fresh connections.
        session.execute(text("PRAGMA cache_size = -1048576"))  # KiB: 1 GiB
        for batch in batches(rows, BATCH):
            session.execute(insert(Tip), batch)
    session.commit()
    db.session.remove()
    db.engine.dispose()


def analyze() -> None:
    """Planner statistics for tips and the small tables the queue joins."""
    db.session.execute(text("ANALYZE"))
    db.session.commit()


def officer(username: str, unit_code: str) -> Principal:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        user = create_user(db.session, username, PASSWORD, wrap_cost=CHEAP_ARGON2,
                           login_cost=CHEAP_ARGON2, actor=SYSTEM)
        add_membership(db.session, user, unit_code, Role.INTAKE_OFFICER, actor=SYSTEM)
        db.session.commit()
    return principal_for(db.session, user)


def fresh_session() -> None:
    """Each timed call starts like a request: no open transaction, an empty identity map."""
    db.session.rollback()
    db.session.expunge_all()


def time_it(call: Callable[[], object], runs: int) -> list[float]:
    call()  # warm-up: statement cache, pages in memory
    times = []
    for _ in range(runs):
        fresh_session()
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    fresh_session()
    return times


def capture_sql(call: Callable[[], object]) -> tuple[str, Any]:
    """The tips SELECT that `call` sends, with its driver parameters."""
    seen: list[tuple[str, Any]] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        if "FROM tips" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        fresh_session()
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return seen[-1]


def explain(call: Callable[[], object]) -> str:
    statement, parameters = capture_sql(call)
    conn = db.session.connection()
    if db.engine.dialect.name == "postgresql":
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = "\n".join(row[0] for row in rows)
    else:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        depth = {0: -1}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + detail)
        plan = "\n".join(lines)
    fresh_session()
    flat = " ".join(statement.split())
    return f"SQL: {flat}\nparameters: {parameters}\n{plan}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tips", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="leave the seeded data behind")
    parser.add_argument("--reuse", action="store_true",
                        help="time a database seeded (and kept) earlier; do not seed")
    args = parser.parse_args()
    if args.reuse and not args.database_url:
        parser.error("--reuse needs the --database-url of a kept database")

    folder = Path(tempfile.mkdtemp(prefix="qingliu-bench-queue-"))
    url = database_url(args.database_url, folder)
    keep_folder = args.keep and not args.database_url
    try:
        if url.startswith("postgresql"):
            ensure_postgres_database(url)
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench " + uuid.uuid4().hex,
            "INSTANCE_PATH": folder / "instance",
            "TESTING": False,
            "RATELIMIT_STORAGE_URI": "memory://",
            "REDIS_URL": None,
        })
        with app.app_context():
            run(args)
            db.session.remove()
            if url.startswith("postgresql") and not args.keep and not args.reuse:
                db.drop_all()  # a SQLite file goes with its folder
            db.engine.dispose()
        if args.keep:
            print(f"\ndata kept: {url}")
    finally:
        if not keep_folder:
            shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    kind = db.engine.dialect.name
    now = datetime.now(UTC).replace(microsecond=0)
    if args.reuse:
        now = db.session.scalar(select(func.max(Tip.received_at))) or now
        print(f"reusing {db.session.scalar(select(func.count(Tip.id))):,} tips")
    else:
        started = time.perf_counter()
        if kind == "postgresql" or inspect(db.engine).has_table("tips"):
            db.drop_all()
        db.create_all()
        seed(db.session)
        schema_s = time.perf_counter() - started
        started = time.perf_counter()
        seed_tips(args.tips, now)
        insert_s = time.perf_counter() - started
        started = time.perf_counter()
        analyze()
        analyze_s = time.perf_counter() - started
        print(f"seeded {args.tips:,} tips on {kind}: insert {insert_s:.1f} s, ANALYZE "
              f"{analyze_s:.1f} s (schema and units {schema_s:.1f} s); total "
              f"{insert_s + analyze_s:.1f} s")

    calendar = load_calendar(db.session)
    county = officer("bench-yanji", "yanji")
    bureau = officer("bench-zhou", "zhou")
    db.session.commit()
    QF = tip_queue.QueueFilter

    def page(principal: Principal, filters: tip_queue.QueueFilter) -> Callable[[], object]:
        return lambda: tip_queue.queue(db.session, principal, filters, now=now, calendar=calendar)

    first = tip_queue.queue(db.session, bureau, QF(), now=now, calendar=calendar)
    assert first.next_cursor, "fewer than two pages of tips"
    fresh_session()
    cases: list[tuple[str, Callable[[], object], bool]] = [
        ("(a) county officer (yanji), newest", page(county, QF()), True),
        ("(b) zhou officer (all 9 units), newest", page(bureau, QF()), True),
        ("(c) (b) status=received, by deadline",
         page(bureau, QF(status="received", sort="deadline")), True),
        ("(d) (a) category=P01", page(county, QF(category="P01")), True),
        ("(e) (b) deadline=overdue", page(bureau, QF(deadline="overdue")), True),
        ("(f) (b) second page (cursor)", page(bureau, QF(cursor=first.next_cursor)), True),
        ("category_counts (a)", lambda: tip_queue.category_counts(db.session, county), False),
        ("category_counts (b)", lambda: tip_queue.category_counts(db.session, bureau), False),
    ]
    tips = db.session.scalar(select(func.count(Tip.id)))
    print(f"\n{kind}, {tips:,} tips, {args.runs} runs per case (after one warm-up); "
          f"limit {LIMIT_MS:.0f} ms median for the queue cases")
    print(f"{'case':<42} {'median ms':>10} {'p95 ms':>9} {'min ms':>9}")
    slow = []
    for name, call, held in cases:
        times = time_it(call, args.runs)
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20, method="inclusive")[-1]
        over = held and median > LIMIT_MS
        note = "  OVER" if over else ("  (not held to the limit)" if not held else "")
        print(f"{name:<42} {median:>10.2f} {p95:>9.2f} {min(times):>9.2f}{note}")
        if over:
            slow.append((name, call))

    how = "EXPLAIN (ANALYZE, BUFFERS)" if kind == "postgresql" else "EXPLAIN QUERY PLAN"
    print(f"\nplan of case (b), {how}:")
    print(explain(cases[1][1]))
    for name, call in slow:
        if name.startswith("(b)"):
            continue
        print(f"\nplan of {name} (over {LIMIT_MS:.0f} ms):")
        print(explain(call))


if __name__ == "__main__":
    main()
