"""Referral lists and the auditor's on-time rates over HTTP at 1,000,000 tips and 100,000
referrals (issue 13, last row): each page as its reader sees it, through gunicorn as `make run`
serves it.

It seeds `--tips` tips (bench/officer_queue.py) and `--referrals` cases, one referral each, with
three steps of history each (on time or late), straight into a fresh database, counts the kept
figures once (models/tip_count.py, models/step_outcome.py), makes four people with a second
factor (a head of 州本级, who sees every referral; a case officer of 延吉市; the liaison of the
prefecture's public security bureau; an auditor), serves the database with gunicorn, signs each
in through the pages, and times `--runs` GETs of their page one after another: p50 and p99.
- /staff/referrals (head, officer): awaiting approval, overdue, due within a working day (each
  the first 50 and how many), and the newest 50 of all;
- /liaison/: the same lists of what was handed over to the bureau;
- /audit/: deadlines met per step and per unit over the last 12 months.

Run:  .venv/bin/python bench/referral_lists.py          (SQLite, 1,000,000 tips, 100,000 referrals)
      .venv/bin/python bench/referral_lists.py --tips 20000 --referrals 2000 --runs 20
      .venv/bin/python bench/referral_lists.py \\
          --database-url postgresql://postgres@127.0.0.1:5432/qingliu_bench
(The PostgreSQL database is created when missing and emptied; never point it at data you keep.)
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta

from figures import Figure, percentile, show
from queue_page import seeded_and_timed

P50_GOAL = 50.0  # ms
PEOPLE = {"bench-head": ("zhou", "head"), "bench-officer": ("yanji", "case_officer"),
          "bench-liaison": ("psb_zhou", "liaison"), "bench-auditor": ("zhou", "auditor")}
PAGES = {"bench-head": ("/staff/referrals", b"<h1>Referrals</h1>", "head of 州本级"),
         "bench-officer": ("/staff/referrals", b"<h1>Referrals</h1>", "county case officer"),
         "bench-liaison": ("/liaison/", b"<h1>Referrals</h1>", "liaison"),
         "bench-auditor": ("/audit/", b'id="log-title"', "auditor's on-time rates")}
# Where referrals stand (a running step has a deadline; some are overdue).
STATES = {"handed_over": 3, "receipt_signed": 5, "filed": 40, "not_filed": 10, "prosecuted": 20,
          "withdrawn": 5, "draft": 2, "awaiting_approval": 1, "approved": 1, "returned": 3,
          "material_requested": 2, "reconsideration_requested": 1, "overdue": 2, "forwarded": 5}
RUNNING = {"handed_over": "referral.decide_filing", "receipt_signed": "referral.decide_filing",
           "awaiting_approval": "referral.approve", "approved": "referral.handover",
           "material_requested": "referral.supplement",
           "reconsideration_requested": "referral.decide_reconsideration"}
BATCH = 10_000


def seed_referrals(n: int, now: datetime) -> None:
    """n cases of the handling units, one referral each to a receiving body, three events
    each; then the kept counts of steps met and missed."""
    from sqlalchemy import insert, select

    from models import Case, Referral, ReferralEvent, Unit, User
    from models.step_outcome import rebuild
    from models.unit import HANDLING_KINDS, RECEIVING_KINDS
    from portal.web.extensions import db

    session = db.session
    rng = random.Random(20261129)
    handling = list(session.scalars(select(Unit.id).where(Unit.kind.in_(HANDLING_KINDS))))
    receiving = list(session.scalars(select(Unit.id).where(Unit.kind.in_(RECEIVING_KINDS))))
    author = session.scalar(select(User.id).where(User.username == "bench-officer"))
    states, weights = list(STATES), list(STATES.values())
    span = timedelta(days=3 * 365).total_seconds()
    start = now - timedelta(days=3 * 365)
    for first in range(0, n, BATCH):
        cases, referrals, events = [], [], []
        for i in range(first, min(n, first + BATCH)):
            created = start + timedelta(seconds=span * (i + rng.random()) / n)
            unit_id = rng.choice(handling)
            cases.append({"id": i + 1, "number": f"延州环移〔{created.year}〕第{i + 1}号",
                          "year": created.year, "seq": i + 1, "unit_id": unit_id,
                          "status": "referred", "created_at": created, "created_by_id": author,
                          "content": b"x" * 64})
            state = rng.choices(states, weights)[0]
            step = RUNNING.get(state)
            # Most running steps are not due yet; about one in eight is overdue.
            due = None if step is None else now + timedelta(days=rng.uniform(-3, 20))
            referrals.append({
                "id": i + 1, "case_id": i + 1, "unit_id": unit_id,
                "receiving_unit_id": rng.choice(receiving),
                "state": state, "state_since": created + timedelta(days=5), "due_step": step,
                "due_at": due, "due_certain": True, "created_at": created,
                "created_by_id": author, "handed_over_at": (
                    None if state in ("draft", "awaiting_approval", "approved")
                    else created + timedelta(days=2))})
            for k, (action, due_step) in enumerate((
                    ("submit", None), ("approve", "referral.approve"),
                    ("hand_over", "referral.handover"))):
                at = created + timedelta(days=k)
                events.append({"referral_id": i + 1, "action": action, "from_state": "a",
                               "to_state": "b", "actor_id": author, "actor_role": "officer",
                               "at": at, "due_step": due_step, "due_at": at,
                               "on_time": None if due_step is None else rng.random() < 0.9})
        session.execute(insert(Case), cases)
        session.execute(insert(Referral), referrals)
        session.execute(insert(ReferralEvent), events)
        session.commit()
    rebuild(session)
    session.commit()


def figures(tips: int = 1_000_000, referrals: int = 100_000, runs: int = 100,
            database_url: str | None = None) -> list[Figure]:
    now = datetime.now(UTC).replace(microsecond=0)
    kind, seeded, results = seeded_and_timed(
        database_url, tips, runs,
        {name: (path, marker) for name, (path, marker, _who) in PAGES.items()}, PEOPLE,
        extra=lambda: seed_referrals(referrals, now))
    out = []
    for username, times in results.items():
        p50, p99 = percentile(times, 50), percentile(times, 99)
        path, _marker, who = PAGES[username]
        out.append(Figure(f"{path} over HTTP, {who} ({kind}, {tips:,} tips, "
                          f"{referrals:,} referrals)",
                          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({runs} requests; "
                          f"seeded in {seeded:.0f} s)",
                          f"p50 < {P50_GOAL:.0f} ms", p50 < P50_GOAL))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tips", type=int, default=1_000_000)
    parser.add_argument("--referrals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    show(figures(args.tips, args.referrals, args.runs, args.database_url))


if __name__ == "__main__":
    main()
