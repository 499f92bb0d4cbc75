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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from auditlog.database import load_keys, make_checkpoint, verify_database
from auditlog.events import SYSTEM, record
from models import Base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="entries per transaction")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{folder}/audit.sqlite3"
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(url)
        if url.startswith("sqlite"):  # as `make run` leaves the embedded database: WAL
            with engine.begin() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        tables = [Base.metadata.tables[n] for n in ("audit_events", "audit_head",
                                                     "audit_checkpoints")]
        Base.metadata.drop_all(engine, tables=tables)
        Base.metadata.create_all(engine, tables=tables)
        keys = load_keys(Path(folder) / "log.key", "bench/audit-log")
        with Session(engine) as session:
            started = time.perf_counter()
            for i in range(args.entries):
                record(session, SYSTEM, "bench.event", object_type="tip", object_id=i, n=i)
                if (i + 1) % args.batch == 0:
                    session.commit()
            session.commit()
            append = time.perf_counter() - started
            started = time.perf_counter()
            make_checkpoint(session, keys, "bench/audit-log")
            checkpoint = time.perf_counter() - started
            started = time.perf_counter()
            result = verify_database(session, keys)
            verify = time.perf_counter() - started
        if args.database_url:
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE IF EXISTS audit_events, audit_head, "
                                  "audit_checkpoints CASCADE"))
        engine.dispose()
    kind = url.split(":", 1)[0]
    print(f"{kind}, {args.entries:,} entries, {args.batch} per transaction")
    print(f"append through record()   {args.entries / append:10,.0f} entries/s  ({append:.1f} s)")
    print(f"sign a checkpoint          {checkpoint:10.2f} s")
    print(f"verify_database            {args.entries / verify:10,.0f} entries/s  ({verify:.1f} s)"
          f"  ok={result.ok}")


if __name__ == "__main__":
    main()
