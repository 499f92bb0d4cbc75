"""Schemathesis with every check (`schemathesis run --checks all`) against the API, heavier than
the suite's run (tests/functional/test_openapi.py): all phases, as many examples per operation
as asked, as each staff caller (a token of theirs, and a tip, a file and a referral that exist).

Run:  .venv/bin/python bench/schemathesis_all.py                       (intake, 50 examples)
      .venv/bin/python bench/schemathesis_all.py --examples 200 --who intake,head,liaison
      .venv/bin/python bench/schemathesis_all.py --seed 0               (new cases every run)

Prints Schemathesis's report for each caller; exits 1 when any run found a failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT), *(p for p in sys.path
                            if Path(p or ".").resolve() != Path(__file__).resolve().parent)]

from portal.web.extensions import db  # noqa: E402
from tests.fuzzing import bearer_token, fresh_world  # noqa: E402
from tests.fuzzing_api import run_all_checks  # noqa: E402

LIMITS = {"FOLLOWUP_RATE_LIMIT": "1000000 per minute", "SUBMIT_RATE_LIMIT": "1000000 per minute",
          "STAFF_SIGNIN_RATE_LIMIT": "1000000 per minute"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--who", default="intake", help="comma-separated staff callers")
    parser.add_argument("--seed", type=int, default=1, help="0: new cases every run")
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    args = parser.parse_args()
    failed = False
    for who in args.who.split(","):
        app, context, staff, world = fresh_world(
            Path(tempfile.mkdtemp(prefix="schemathesis-")), **LIMITS)
        try:
            token = bearer_token(app, staff, world, who)
        finally:
            db.session.remove()
            context.pop()
        run = run_all_checks(app, world, token, max_examples=args.examples, phases=args.phases,
                             seed=args.seed or None, timeout=24 * 3600)
        print(f"== as {who}\n{run.output}")
        failed = failed or run.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
