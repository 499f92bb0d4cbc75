"""`make bench`: every benchmark of issue 13's table in a quick mode, one line per figure with
its goal and `ok` or `short` (bench/figures.py). Each ratio is measured side by side in this run.
Scale stays where scale is the point (1,000,000 entries for the offline verifier). Figures that
no benchmark measures yet say so, without a number.

Run:  make bench                              (about 5 minutes on a 2-core machine)
      .venv/bin/python bench/all.py --only audit_db,audit_log
      .venv/bin/python bench/all.py --tiny     (every benchmark at toy sizes: that each runs)
      .venv/bin/python bench/all.py --json figures.json   (the figures as JSON too)
Each benchmark also runs on its own, with its own options: see its file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import audit_db
import audit_log
import home
import queue_page
import referral_lists
import submit
import tips_rate
import upload_memory
from figures import Figure, line, machine


def on_postgres(name: str, goal: str, run: Callable[[str], list[Figure]]) -> list[Figure]:
    """The figures on the PostgreSQL database BENCH_DATABASE_URL names (emptied), or a line
    saying they were not measured."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        return [Figure(name, "not measured: no BENCH_DATABASE_URL (make bench sets it when "
                             "PostgreSQL answers on 127.0.0.1:5432)", goal, None)]
    return run(url)


# name → (quick run, tiny run); in the order of issue 13's table
BENCHES: dict[str, tuple[Callable[[], list[Figure]], Callable[[], list[Figure]]]] = {
    "home": (lambda: home.figures(seconds=10), lambda: home.figures(seconds=1)),
    "tips_rate": (lambda: tips_rate.figures(seconds=20),
                  lambda: tips_rate.figures(seconds=2, clients=2)),
    "queue_page": (lambda: queue_page.figures(tips=1_000_000, runs=100),
                   lambda: queue_page.figures(tips=2000, runs=5)),
    "queue_page_pg": (lambda: on_postgres(
        "queue page over HTTP, PostgreSQL, 1,000,000 tips", "p50 < 50 ms, p99 < 100 ms",
        lambda url: queue_page.figures(tips=1_000_000, runs=100, database_url=url)),
        lambda: []),
    "audit_db": (lambda: audit_db.figures(100_000), lambda: audit_db.figures(200)),
    "audit_log": (lambda: audit_log.figures(1_000_000), lambda: audit_log.figures(200)),
    "submit": (lambda: submit.figures(runs=10, photo_runs=5),
               lambda: submit.figures(runs=1, photo_runs=1, photo_mb=1)),
    "upload_memory": (lambda: upload_memory.figures(),
                      lambda: upload_memory.figures(files=2, file_mb=2, photos=1, photo_mb=1)),
    "referral_lists": (lambda: referral_lists.figures(1_000_000, 100_000, runs=50),
                       lambda: referral_lists.figures(2000, 200, runs=3)),
    "referral_lists_pg": (lambda: on_postgres(
        "referral lists and on-time rates over HTTP, PostgreSQL", "p50 < 50 ms each",
        lambda url: referral_lists.figures(1_000_000, 100_000, runs=50, database_url=url)),
        lambda: []),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated, of: " + ", ".join(BENCHES))
    parser.add_argument("--tiny", action="store_true", help="toy sizes: only that each runs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    chosen = [n for n in args.only.split(",") if n] or list(BENCHES)
    unknown = set(chosen) - set(BENCHES)
    if unknown:
        parser.error("unknown: " + ", ".join(sorted(unknown)))
    results: list[Figure] = []
    failed = False
    started = time.perf_counter()
    for name in chosen:
        quick, tiny = BENCHES[name]
        began = time.perf_counter()
        try:
            figures = (tiny if args.tiny else quick)()
        except Exception:  # one benchmark's failure is printed; the others still run
            traceback.print_exc()
            figures = [Figure(name, "the benchmark failed (traceback above)", "-", False)]
            failed = True
        for figure in figures:
            print(line(figure), flush=True)
        print(f"   ({name}: {time.perf_counter() - began:.0f} s)", flush=True)
        results.extend(figures)
    print(f"\n== issue 13's table, measured in this run ({machine()}, "
          f"{time.perf_counter() - started:.0f} s in all)")
    for figure in results:
        print(line(figure))
    if args.json:
        args.json.write_text(json.dumps([asdict(f) | {"verdict": f.verdict} for f in results],
                                        ensure_ascii=False, indent=1), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
