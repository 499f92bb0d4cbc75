"""The never-500 fuzzer, heavier than the suite's run: every page and form for every role, each
nasty value in each field one at a time (--deep), and the API fuzzed from its OpenAPI document
with as many generated examples per operation as asked (--examples).

Run:  .venv/bin/python bench/fuzz.py                          (all roles, 200 API examples)
      .venv/bin/python bench/fuzz.py --examples 1000 --deep   (a long run)
      .venv/bin/python bench/fuzz.py --hostile --no-pages --no-api
          (the hand-made hostile set of tests/fuzzing.py, whole, to every POST route as
           every role; the suite sends it whole only as the role that reaches each route)
      .venv/bin/python bench/fuzz.py --roles head,keyless --no-api
      TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
      TEST_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/fuzz.py
(the PostgreSQL database's tables are dropped and created again: never point this at data you
keep). --seed N makes the API run repeatable; without it every run draws new examples.

Prints, per role, how many requests it made and how many answered 5xx, then one block per
distinct failure (route, role, input, the innermost frame of the portal's code and the
exception). Exits 1 when any request answered 5xx.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT), *(p for p in sys.path
                            if Path(p or ".").resolve() != Path(__file__).resolve().parent)]

from portal.web.extensions import db  # noqa: E402
from tests.fuzzing import (  # noqa: E402
    ROLES,
    Fuzzer,
    bearer_token,
    crawl_forms,
    fresh_world,
    hit_every_route,
    hostile_inputs,
    post_routes,
    send_hostile,
    sign_in,
)

API_ROLES = ("anonymous", "citizen", "intake", "case", "head", "liaison", "keyless")
MISMATCHES: list[str] = []  # answers that differ from what the OpenAPI document promises
LIMITS = {"FOLLOWUP_RATE_LIMIT": "1000000 per minute", "SUBMIT_RATE_LIMIT": "1000000 per minute"}


def run_pages(role: str, folder: Path, deep: bool) -> Fuzzer:
    app, context, staff, world = fresh_world(folder / f"pages-{role}", **LIMITS)
    fuzzer = Fuzzer(app, role)
    try:
        client = sign_in(app, staff, world, role)
        extra = [("POST", "/followup", {"data": {"receipt": world.receipt}})] if (
            role == "citizen") else []
        own = world.admin_id if role == "admin" else world.users.get(role)
        crawl_forms(fuzzer, client, world, own_id=own, level=2 if deep else 1, extra_pages=extra,
                    max_pages=2000)
        hit_every_route(fuzzer, client, world)
    finally:
        fuzzer.close()
        db.session.remove()
        context.pop()
    return fuzzer


def run_hostile(role: str, folder: Path) -> Fuzzer:
    app, context, staff, world = fresh_world(folder / f"hostile-{role}", **LIMITS)
    fuzzer = Fuzzer(app, "hostile " + role)
    try:
        client, headers = sign_in(app, staff, world, role), {"Accept-Language": "en"}
        if role not in ("anonymous", "citizen"):
            headers["Authorization"] = "Bearer " + bearer_token(app, staff, world, role)
        send_hostile(fuzzer, client, post_routes(app, world), hostile_inputs(), headers,
                     full=lambda _endpoint: True)
    finally:
        fuzzer.close()
        db.session.remove()
        context.pop()
    return fuzzer


def run_api(role: str, folder: Path, examples: int, seed_value: int | None) -> Fuzzer:
    from tests.fuzzing_api import fuzz_api

    app, context, staff, world = fresh_world(folder / f"api-{role}", **LIMITS)
    fuzzer = Fuzzer(app, "api " + role)
    try:
        run = fuzz_api(fuzzer, app, staff, world, role, examples=examples, seed=seed_value)
        MISMATCHES.extend(run.mismatches)
    finally:
        fuzzer.close()
        db.session.remove()
        context.pop()
    return fuzzer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--roles", default=",".join(ROLES),
                        help="comma-separated, of: " + ", ".join(ROLES))
    parser.add_argument("--examples", type=int, default=200,
                        help="generated examples per API operation and role (default 200)")
    parser.add_argument("--deep", action="store_true",
                        help="also each nasty value in each form field on its own")
    parser.add_argument("--no-pages", action="store_true", help="skip the pages and forms")
    parser.add_argument("--no-api", action="store_true", help="skip the OpenAPI fuzzing")
    parser.add_argument("--seed", type=int, default=None, help="seed of the API examples")
    parser.add_argument("--hostile", action="store_true",
                        help="also the whole hostile set to every POST route as each role")
    args = parser.parse_args()
    roles = [r for r in args.roles.split(",") if r]
    unknown = set(roles) - set(ROLES)
    if unknown:
        parser.error("unknown role(s): " + ", ".join(sorted(unknown)))
    results: list[tuple[str, Fuzzer, float]] = []
    with tempfile.TemporaryDirectory(prefix="qingliu-fuzz-") as tmp:
        folder = Path(tmp)
        for role in roles:
            if not args.no_pages:
                started = time.monotonic()
                results.append(("pages " + role, run_pages(role, folder, args.deep),
                                time.monotonic() - started))
                print(_line(*results[-1]), flush=True)
            if args.hostile:
                started = time.monotonic()
                results.append(("hostile " + role, run_hostile(role, folder),
                                time.monotonic() - started))
                print(_line(*results[-1]), flush=True)
            if not args.no_api and role in API_ROLES:
                started = time.monotonic()
                results.append(("api " + role, run_api(role, folder, args.examples, args.seed),
                                time.monotonic() - started))
                print(_line(*results[-1]), flush=True)
    total = sum(sum(f.requests.values()) for _n, f, _t in results)
    failures = [finding for _n, f, _t in results for finding in f.distinct()]
    print(f"total: {total} requests, "
          f"{sum(len(f.findings) for _n, f, _t in results)} answered 5xx, "
          f"{len(failures)} distinct")
    distinct = sorted({m.split(" [")[0] for m in MISMATCHES})
    if distinct:
        print(f"\n{len(MISMATCHES)} API answers differ from the OpenAPI document "
              f"({len(distinct)} distinct):")
        for mismatch in distinct:
            print("  " + mismatch)
    for finding in failures:
        print("\n" + str(finding))
    return 1 if failures else 0


def _line(name: str, fuzzer: Fuzzer, seconds: float) -> str:
    sent = sum(fuzzer.requests.values())
    return (f"{name:<18} {sent:>7} requests  {len(fuzzer.findings):>5} 5xx  "
            f"({len(fuzzer.distinct())} distinct)  {seconds:6.1f} s")


if __name__ == "__main__":
    sys.exit(main())
