"""Starting the portal for a benchmark as `make run` serves it: a fresh instance (database
migrated, seeded, set up) in a folder of the caller's, then gunicorn -c gunicorn.conf.py on a
loopback port. Used by bench/load.py and bench/submit.py; tests start theirs with tests/servers.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def empty_postgres(url: str) -> None:
    """Drop everything in the bench database (created if missing), with Debian's psql."""
    url = url.replace("postgresql+psycopg://", "postgresql://")
    base, _, name = url.rpartition("/")
    # Fails harmlessly when the database exists already.
    subprocess.run(["psql", f"{base}/postgres", "-qc", f'CREATE DATABASE "{name}"'],
                   check=False, capture_output=True)
    subprocess.run(["psql", url, "-qc", "DROP SCHEMA public CASCADE; CREATE SCHEMA public"],
                   check=True, capture_output=True)


def start_server(folder: Path, port: int, database_url: str | None,
                 wsgi_app: str = "app:app", prepare: bool = True,
                 secret_key: str | None = None) -> subprocess.Popen:
    """gunicorn -c gunicorn.conf.py serving `wsgi_app` on the loopback `port`, once the instance
    in `folder` is migrated, seeded and set up (`prepare`; not for an app that needs none)."""
    # Everything the instance folder would hold goes to `folder` instead.
    env = {**os.environ, "PORTAL_ADMIN_PASSWORD": "bench password 123",
           "SUBMIT_RATE_LIMIT": "1000000 per hour", "FOLLOWUP_RATE_LIMIT": "1000000 per hour",
           "SECRET_KEY": secret_key or os.urandom(32).hex(),
           "AUDIT_SIGNING_KEY_FILE": str(folder / "audit-log.key"),
           "RATELIMIT_STORAGE_URI": f"qingliu-sqlite://{folder / 'ratelimits.sqlite3'}"}
    env.pop("REDIS_URL", None)
    env["DATABASE_URL"] = database_url or f"sqlite:///{folder / 'qingliu.sqlite3'}"
    if database_url and prepare:
        empty_postgres(database_url)
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    steps = (["db", "upgrade"], ["seed"],
             ["setup", "--admin", "bench", "--recovery-out", str(folder / "keys")])
    for args in steps if prepare else ():
        subprocess.run([*flask, *args], cwd=ROOT, env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
         wsgi_app], cwd=ROOT, env=env)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("server did not start")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM, as systemd stops it; killed if it has not ended within a minute."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
