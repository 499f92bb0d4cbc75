"""The home page's throughput against Flask's hello world (issue 13, row 1): wrk with
`--connections` (32) connections for `--seconds` against GET / of the portal served as `make run`
serves it (gunicorn -c gunicorn.conf.py, a fresh instance), then against bench/hello.py under the
same gunicorn settings; the figure is the ratio of requests per second. Client and servers share
the machine's cores, as in the issue's measurement.

Run:  .venv/bin/python bench/home.py                 (10 s each)
      .venv/bin/python bench/home.py --seconds 30 --path "/?lang=ko"
Needs wrk (Debian package wrk).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from figures import Figure, show
from serve import free_port, start_server, stop_server

GOAL = 0.5


@dataclass(frozen=True)
class Run:
    per_second: float
    other_answers: int  # not 2xx or 3xx
    errors: int  # connect, read, write, timeout


def wrk(port: int, path: str, seconds: float, connections: int) -> Run:
    done = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:g}s", "--latency",
         f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True)
    out = done.stdout
    found = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if found is None:
        raise SystemExit(f"wrk printed no rate:\n{out}\n{done.stderr}")
    rate = float(found.group(1))
    other = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return Run(rate, int(other.group(1)) if other else 0,
               sum(int(g) for g in errors.groups()) if errors else 0)


def served(wsgi_app: str, path: str, seconds: float, connections: int) -> Run:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder), port, None, wsgi_app,
                              prepare=wsgi_app == "app:app")
        try:
            wrk(port, path, min(seconds, 3), connections)  # warm-up: workers, caches
            return wrk(port, path, seconds, connections)
        finally:
            stop_server(server)


def figures(seconds: float = 10, connections: int = 32, path: str = "/") -> list[Figure]:
    if shutil.which("wrk") is None:
        return [Figure("GET / ÷ hello world (wrk)", "wrk is not installed", f">= {GOAL}", None)]
    home = served("app:app", path, seconds, connections)
    hello = served("bench.hello:app", "/", seconds, connections)
    ratio = home.per_second / hello.per_second
    clean = home.other_answers == 0 and home.errors == 0
    note = "" if clean else f", {home.other_answers} not 2xx, {home.errors} socket errors"
    return [Figure(f"GET {path} ÷ hello world (wrk, {connections} connections, {seconds:g} s)",
                   f"{home.per_second:,.0f} / {hello.per_second:,.0f} req/s = {ratio:.2f}"
                   + note, f">= {GOAL}", clean and ratio >= GOAL)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--path", default="/")
    args = parser.parse_args()
    show(figures(args.seconds, args.connections, args.path))


if __name__ == "__main__":
    main()
