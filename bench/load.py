"""Load: do cheap pages stay fast while submissions saturate the receipt hash, and do slow
uploaders leave room for everyone else? (issue 11, rows 1 and 2)

Run:  .venv/bin/python bench/load.py                      (SQLite, quick: about 3 minutes)
      .venv/bin/python bench/load.py --seconds 60         (the issue's 60-second runs)
      .venv/bin/python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/bench
      (an empty PostgreSQL database: it is created if missing and emptied first)

It starts its own server as `make run` does (database, keys and counts file in a temporary
directory, `flask db upgrade`, `flask seed`, `flask setup`, then gunicorn -c gunicorn.conf.py,
so with the repository's own gunicorn settings and no proxy in front), with the submission and
follow-up rate limits raised (all clients come from 127.0.0.1).

1. Mixed: `--clients` (200) simulated visitors for `--seconds`, each choosing at random GET /
   (35 %), GET /report (35 %), POST /api/v1/tips (20 %) or POST /api/v1/followup (10 %), then
   thinking `--think` seconds (uniform 0…2×think, mean 1 s). Submissions far outnumber what two
   receipt-hash slots clear (about 8 a second), so the gate is full all along.
2. Slow clients: `--slow` (50) connections posting a tip at 1 KB/s for `--seconds`, while
   `--normal` (8) clients load GET / and GET /report one after another (0.2 s apart).

Prints one line per figure with its goal and "ok" or "short". The client is asyncio on raw
sockets (one request per connection), so that it costs the 2-core machine little.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from serve import free_port, start_server, stop_server

TIMEOUT = 60.0  # a request not answered by then counts as not served


@dataclass
class Tally:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    retry_after_missing: int = 0

    def add(self, kind: str, status: int, seconds: float) -> None:
        self.statuses[kind][status] += 1
        if status == 200 or status == 201:
            self.times[kind].append(seconds)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def request(port: int, method: str, path: str, body: bytes = b"",
                  content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Accept-Language: en\r\n")
        if method == "POST":
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    header_block, _, payload = raw.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    return status, headers, payload


def tip_body(n: int) -> bytes:
    return json.dumps({"narrative": f"load test tip {n}: black smoke from the chimney at night",
                       "county": random.choice(["yanji", "hunchun", "longjing"]),
                       "category": "P01"}).encode()


async def timed(tally: Tally, kind: str, port: int, method: str, path: str,
                body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    started = time.perf_counter()
    try:
        status, headers, payload = await asyncio.wait_for(
            request(port, method, path, body), TIMEOUT)
    except (TimeoutError, OSError):
        status, headers, payload = 0, {}, b""
    tally.add(kind, status, time.perf_counter() - started)
    if status == 503 and "retry-after" not in headers:
        tally.retry_after_missing += 1
    return status, headers, payload


async def visitor(port: int, until: float, think: float, receipts: list[str],
                  tally: Tally) -> None:
    await asyncio.sleep(random.uniform(0, 2 * think))  # do not all start in the same instant
    n = 0
    while time.monotonic() < until:
        n += 1
        pick = random.random()
        if pick < 0.35:
            await timed(tally, "GET /", port, "GET", "/?lang=en")
        elif pick < 0.70:
            await timed(tally, "GET /report", port, "GET", "/report?lang=en")
        elif pick < 0.90:
            await timed(tally, "POST /api/v1/tips", port, "POST", "/api/v1/tips", tip_body(n))
        else:
            body = json.dumps({"receipt": random.choice(receipts)}).encode()
            await timed(tally, "POST /api/v1/followup", port, "POST", "/api/v1/followup", body)
        await asyncio.sleep(random.uniform(0, 2 * think))


async def slow_uploader(port: int, until: float, opened: list[int]) -> None:
    """A tip posted at 1 KB/s: headers at once, then one kilobyte a second until the end."""
    boundary = "slowslowslow"
    length = 10 * 1024 * 1024
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    opened.append(1)
    writer.write((f"POST /api/v1/tips HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                  f"Content-Length: {length}\r\n\r\n--{boundary}\r\nContent-Disposition: "
                  f'form-data; name="attachments"; filename="slow.txt"\r\n'
                  f"Content-Type: text/plain\r\n\r\n").encode())
    try:
        while time.monotonic() < until:
            writer.write(b"x" * 1024)
            await writer.drain()
            await asyncio.sleep(1.0)
    except OSError:
        pass
    finally:
        writer.close()


async def normal_client(port: int, until: float, tally: Tally) -> None:
    while time.monotonic() < until:
        path = random.choice(["/?lang=en", "/report?lang=en"])
        await timed(tally, "normal", port, "GET", path)
        await asyncio.sleep(0.2)


async def mixed(port: int, seconds: float, clients: int, think: float,
                receipts: list[str]) -> Tally:
    tally = Tally()
    until = time.monotonic() + seconds
    await asyncio.gather(*(visitor(port, until, think, receipts, tally)
                           for _ in range(clients)))
    return tally


async def slow(port: int, seconds: float, slow_count: int, normal_count: int
               ) -> tuple[Tally, int]:
    tally = Tally()
    opened: list[int] = []
    until = time.monotonic() + seconds
    uploaders = [asyncio.create_task(slow_uploader(port, until + 5, opened))
                 for _ in range(slow_count)]
    await asyncio.sleep(3)  # every slow connection is in before the normal clients start
    await asyncio.gather(*(normal_client(port, until, tally) for _ in range(normal_count)))
    for task in uploaders:
        task.cancel()
    await asyncio.gather(*uploaders, return_exceptions=True)
    return tally, len(opened)


def line(figure: str, value: str, goal: str, ok: bool) -> None:
    print(f"{figure:<52} {value:<26} goal {goal:<22} {'ok' if ok else 'SHORT'}")


async def prepare(port: int) -> list[str]:
    receipts = []
    for n in range(3):
        status, _, payload = await request(port, "POST", "/api/v1/tips", tip_body(n))
        if status != 201:
            raise SystemExit(f"could not file a warm-up tip: {status} {payload[:200]!r}")
        receipts.append(json.loads(payload)["receipt"])
    return receipts


def report_mixed(tally: Tally, seconds: float, clients: int) -> None:
    print(f"== 1. {clients} visitors, mixed home/report/tip/follow-up, {seconds:.0f} s")
    for kind in ("GET /", "GET /report"):
        times, statuses = tally.times[kind], tally.statuses[kind]
        served = statuses[200]
        total = sum(statuses.values())
        line(f"{kind} p50", f"{percentile(times, 50) * 1000:.0f} ms", "-", True)
        line(f"{kind} p99", f"{percentile(times, 99) * 1000:.0f} ms", "< 500 ms",
             percentile(times, 99) < 0.5)
        line(f"{kind} answered 200", f"{served} of {total}", "all", served == total)
    for kind in ("POST /api/v1/tips", "POST /api/v1/followup"):
        statuses = tally.statuses[kind]
        good = statuses[201] + statuses[200] + statuses[404]
        other = {s: c for s, c in statuses.items() if s not in (200, 201, 404, 503)}
        line(f"{kind}: done / 503", f"{good} / {statuses[503]}", "503, never 5xx",
             not other)
        if other:
            print(f"   other answers: {dict(other)}")
        if tally.times[kind]:
            # Information: the wait to start is bounded (RECEIPT_HASH_WAIT), the hash itself
            # runs at low priority and takes what CPU the pages leave.
            line(f"{kind} p99 when done", f"{percentile(tally.times[kind], 99) * 1000:.0f} ms",
                 "-", True)
    line("503 without Retry-After", str(tally.retry_after_missing), "0",
         tally.retry_after_missing == 0)


def report_slow(tally: Tally, opened: int, seconds: float, slow_count: int) -> None:
    print(f"== 2. {slow_count} uploads at 1 KB/s ({opened} connected) + normal clients, "
          f"{seconds:.0f} s")
    statuses = tally.statuses["normal"]
    total = sum(statuses.values())
    served = statuses[200]
    share = served / total if total else 0.0
    line("normal requests served", f"{served} of {total} ({share:.1%})", ">= 99 %",
         share >= 0.99)
    p99 = percentile(tally.times["normal"], 99)
    line("normal requests p99", f"{p99 * 1000:.0f} ms", "< 2000 ms", p99 < 2.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--think", type=float, default=1.0,
                        help="mean pause of a visitor between requests, in seconds")
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--normal", type=int, default=8)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL database to use (emptied first); default SQLite")
    parser.add_argument("--only", choices=["mixed", "slow"], default=None)
    parser.add_argument("--wsgi-app", default="app:app",
                        help="for experiments: another module:app to serve (on PYTHONPATH)")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), port, args.database_url, args.wsgi_app)
        try:
            receipts = asyncio.run(prepare(port))
            if args.only in (None, "mixed"):
                tally = asyncio.run(mixed(port, args.seconds, args.clients, args.think,
                                          receipts))
                report_mixed(tally, args.seconds, args.clients)
                time.sleep(12)  # the queue drains before the next phase
            if args.only in (None, "slow"):
                tally, opened = asyncio.run(slow(port, args.seconds, args.slow, args.normal))
                report_slow(tally, opened, args.seconds, args.slow)
        finally:
            stop_server(server)
    database = (args.database_url or "sqlite").split("@")[-1]
    print(f"database: {database}; server: gunicorn -c gunicorn.conf.py on loopback, no proxy; "
          f"{os.cpu_count()} cores; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
