"""The officers' queue page over HTTP at 1,000,000 tips (issue 13, row 3): the page as an officer
sees it, rendered with its counts per category, through gunicorn as `make run` serves it.

It seeds `--tips` tips straight into a fresh database (as bench/officer_queue.py does; the kept
counts are then counted once, models/tip_count.py), makes two intake officers with a second
factor (one of 延吉市, one of 州本级, who sees every unit), serves the database with gunicorn -c
gunicorn.conf.py, signs each officer in through the pages (password, TOTP code, CSRF tokens as
a browser sends them), and times `--runs` GET /staff/ one after another: p50 and p99.

Run:  .venv/bin/python bench/queue_page.py                  (SQLite, 1,000,000 tips)
      .venv/bin/python bench/queue_page.py --tips 20000 --runs 50
      .venv/bin/python bench/queue_page.py \\
          --database-url postgresql://postgres@127.0.0.1:5432/qingliu_bench
(The PostgreSQL database is created when missing and emptied; never point it at data you keep.)
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from figures import Figure, percentile, show
from serve import free_port, start_server, stop_server

P50_GOAL, P99_GOAL = 50.0, 100.0  # ms
PASSWORD = "bench officer password 2026"  # noqa: S105 (a throwaway account)
OFFICERS = {"bench-yanji": ("yanji", "intake_officer"), "bench-zhou": ("zhou", "intake_officer")}


def prepare(url: str, folder: Path, tips: int, secret_key: str,
            people: dict[str, tuple[str, str]] = OFFICERS,
            extra: Callable[[], None] | None = None) -> dict[str, str]:
    """Seed the database with `tips` tips and the `people` (username → unit, role), then call
    `extra` (more rows) in the app; return each person's TOTP secret."""
    import officer_queue  # here: it puts the project's root first on sys.path

    from auditlog.events import SYSTEM
    from models import Role, User
    from models.tip_count import rebuild
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
    secrets = {}
    with app.app_context():
        db.drop_all()
        db.create_all()
        seed(db.session)
        stamp_migrations_head(app)
        officer_queue.seed_tips(tips, datetime.now(UTC).replace(microsecond=0))
        rebuild(db.session())
        db.session.commit()
        for username, (unit, role) in people.items():
            user = create_user(db.session, username, PASSWORD,
                               wrap_cost=officer_queue.CHEAP_ARGON2,
                               login_cost=officer_queue.CHEAP_ARGON2, actor=SYSTEM)
            add_membership(db.session, user, unit, Role(role), actor=SYSTEM)
            enrollment = begin_enrollment(user, secret_key)
            user.totp_confirmed_at = user.created_at
            secrets[username] = enrollment.secret
        db.session.commit()
        assert db.session.query(User).count() >= len(people)
        if extra is not None:
            extra()
        officer_queue.analyze()
        db.session.remove()
        db.engine.dispose()
    return secrets


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if found is None:
        raise SystemExit("no CSRF token on the sign-in page")
    return found.group(1)


def signed_in(base: str, username: str, secret: str) -> urllib.request.OpenerDirector:
    """An opener holding the officer's session cookies, signed in as a browser would."""
    import pyotp

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def post(path: str, fields: dict[str, str]) -> str:
        form = opener.open(f"{base}{path}?lang=en", timeout=60).read().decode()
        data = urllib.parse.urlencode({"csrf_token": _csrf(form), **fields}).encode()
        return opener.open(f"{base}{path}?lang=en", data=data, timeout=60).read().decode()

    post("/staff/login", {"username": username, "password": PASSWORD})
    post("/staff/login/code", {"code": pyotp.TOTP(secret).now()})
    return opener


def time_page(opener: urllib.request.OpenerDirector, base: str, runs: int,
              path: str = "/staff/", marker: bytes = b'id="counts-title"') -> list[float]:
    """`runs` GETs of `path` one after another (after three to warm up), in ms; each answer
    must be the page (hold `marker`), not a sign-in form."""
    times = []
    for k in range(runs + 3):
        started = time.perf_counter()
        with opener.open(f"{base}{path}?lang=en", timeout=60) as response:
            body = response.read()
            url = response.geturl()
        if "/login" in url or marker not in body:
            raise SystemExit(f"not the page asked for: {url}\n{body[:800]!r}")
        if k >= 3:
            times.append((time.perf_counter() - started) * 1000)
    return times


def seeded_and_timed(database_url: str | None, tips: int, runs: int,
                     pages: dict[str, tuple[str, bytes]],
                     people: dict[str, tuple[str, str]] = OFFICERS,
                     extra: Callable[[], None] | None = None
                     ) -> tuple[str, float, dict[str, list[float]]]:
    """Seed a fresh database (`prepare`), serve it with gunicorn, sign each person of `pages`
    (username → path, a marker of the page) in and time their page `runs` times: the database's
    kind, the seconds seeding took, and each person's times in ms."""
    import officer_queue

    port = free_port()
    secret_key = "bench " + uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = officer_queue.database_url(database_url, folder)
        started = time.perf_counter()
        secrets = prepare(url, folder, tips, secret_key, people, extra)
        seeded = time.perf_counter() - started
        server = start_server(folder, port, url.replace("postgresql+psycopg://",
                                                       "postgresql://", 1),
                              prepare=False, secret_key=secret_key)
        base = f"http://127.0.0.1:{port}"
        results = {}
        try:
            for username, (path, marker) in pages.items():
                results[username] = time_page(signed_in(base, username, secrets[username]),
                                              base, runs, path, marker)
        finally:
            stop_server(server)
    return url.split(":", 1)[0].split("+")[0], seeded, results


def figures(tips: int = 1_000_000, runs: int = 100, database_url: str | None = None
            ) -> list[Figure]:
    kind, seeded, results = seeded_and_timed(
        database_url, tips, runs, {name: ("/staff/", b'id="counts-title"') for name in OFFICERS})
    out = []
    for username, times in results.items():
        p50, p99 = percentile(times, 50), percentile(times, 99)
        who = "州本级 officer" if OFFICERS[username][0] == "zhou" else "county officer"
        out.append(Figure(f"queue page over HTTP, {who} ({kind}, {tips:,} tips)",
                          f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({runs} requests; "
                          f"seeded in {seeded:.0f} s)",
                          f"p50 < {P50_GOAL:.0f} ms, p99 < {P99_GOAL:.0f} ms",
                          p50 < P50_GOAL and p99 < P99_GOAL))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tips", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    show(figures(args.tips, args.runs, args.database_url))


if __name__ == "__main__":
    main()
