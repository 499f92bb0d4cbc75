"""The audit log's real writer: entries per second appended through auditlog.events.record (head
lock, chain, leaf) into the database, then verify_database over all of them.

Run:  .venv/bin/python bench/audit_db.py [--entries 100000] [--batch 1000]
      .venv/bin/python bench/audit_db.py --database-url postgresql://postgres@127.0.0.1:5432/qingliu_bench
(The offline format and verifier at 1,000,000 entries: bench/audit_log.py.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from auditlog.database import load_keys, make_checkpoint, verify_database
from auditlog.events import SYSTEM, record
from models import Base

APPEND_GOAL = 20_000  # entries per second through record(), SQLite, 1,000 per transaction
VERIFY_GOAL = 500_000  # entries per second for verify_database


@dataclass(frozen=True)
class Measured:
    database: str
    entries: int
    batch: int
    append_seconds: float
    checkpoint_seconds: float
    verify_seconds: float
    verified: bool


def measure(entries: int, batch: int = 1000, database_url: str | None = None) -> Measured:
    """Append `entries` events through record() in transactions of `batch`, sign a checkpoint,
    then verify_database over all of them, on a fresh audit log (SQLite in WAL mode, as
    `make run` leaves it, unless `database_url` names a PostgreSQL database to use)."""
    with tempfile.TemporaryDirectory() as folder:
        url = database_url or f"sqlite:///{folder}/audit.sqlite3"
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(url)
        if url.startswith("sqlite"):
            with engine.begin() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        tables = [Base.metadata.tables[n] for n in ("audit_events", "audit_head",
                                                     "audit_checkpoints")]
        Base.metadata.drop_all(engine, tables=tables)
        Base.metadata.create_all(engine, tables=tables)
        keys = load_keys(Path(folder) / "log.key", "bench/audit-log")
        with Session(engine) as session:
            started = time.perf_counter()
            for i in range(entries):
                record(session, SYSTEM, "bench.event", object_type="tip", object_id=i, n=i)
                if (i + 1) % batch == 0:
                    session.commit()
            session.commit()
            append = time.perf_counter() - started
            started = time.perf_counter()
            make_checkpoint(session, keys, "bench/audit-log")
            checkpoint = time.perf_counter() - started
            started = time.perf_counter()
            result = verify_database(session, keys)
            verify = time.perf_counter() - started
        if database_url:
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS audit_events, audit_head, "
                                  "audit_checkpoints CASCADE"))
        engine.dispose()
    return Measured(url.split(":", 1)[0], entries, batch, append, checkpoint, verify,
                    result.ok)


def figures(entries: int = 100_000, database_url: str | None = None) -> list[Figure]:
    m = measure(entries, database_url=database_url)
    append, verify = m.entries / m.append_seconds, m.entries / m.verify_seconds
    where = f"{m.database}, {m.entries:,} entries"
    return [
        Figure(f"audit append through record() ({where}, {m.batch}/transaction)",
               f"{append:,.0f} entries/s", f">= {APPEND_GOAL:,} entries/s",
               append >= APPEND_GOAL),
        Figure(f"verify_database, inside the request ({where})",
               f"{verify:,.0f} entries/s" + ("" if m.verified else " (FAILED)"),
               f">= {VERIFY_GOAL:,} entries/s", m.verified and verify >= VERIFY_GOAL),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="entries per transaction")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    m = measure(args.entries, args.batch, args.database_url)
    print(f"{m.database}, {m.entries:,} entries, {m.batch} per transaction")
    print(f"append through record()   {m.entries / m.append_seconds:10,.0f} entries/s  "
          f"({m.append_seconds:.1f} s)")
    print(f"sign a checkpoint          {m.checkpoint_seconds:10.2f} s")
    print(f"verify_database            {m.entries / m.verify_seconds:10,.0f} entries/s  "
          f"({m.verify_seconds:.1f} s)  ok={m.verified}")


if __name__ == "__main__":
    main()
