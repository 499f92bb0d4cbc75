"""Tips per second against what the receipt hash allows (issue 13, row 2).

A tip's one expensive step is the receipt hash (Argon2id at the configured cost); everything else
should cost little beside it. The bound: Argon2id hashes per second at config.Argon2Params, run
in 2 processes at once (one per core; with nothing else running, the most that the machine can
hash). The measured: `--clients` (8) clients posting JSON tips without files one after another
for `--seconds` to the portal served as `make run` serves it (a fresh instance, gunicorn -c
gunicorn.conf.py, rate limits raised). The figure is the ratio of the two rates, and p99 of a
tip's time at that rate.

Run:  .venv/bin/python bench/tips_rate.py               (20 s)
      .venv/bin/python bench/tips_rate.py --seconds 60 --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from figures import Figure, percentile, show
from serve import ROOT, free_port, start_server, stop_server

RATIO_GOAL, P99_GOAL = 0.9, 1.0


def _hash_for(seconds: float, rates: Any, start: Any) -> None:
    sys.path.insert(0, str(ROOT))
    from config import Argon2Params
    from portal.security import crypto

    cost = Argon2Params()
    start.wait()  # every process has imported what it needs: they hash at the same time
    began = time.perf_counter()
    until = time.monotonic() + seconds
    n = 0
    while time.monotonic() < until:
        crypto.derive_key(os.urandom(20), os.urandom(16), cost.time_cost, cost.memory_kib,
                          cost.parallelism)
        n += 1
    rates.put(n / (time.perf_counter() - began))


def hash_bound(seconds: float, processes: int = 2) -> float:
    """Receipt hashes per second with `processes` processes hashing at once (the sum of their
    rates, each timed from when all have started, without the start-up)."""
    context = multiprocessing.get_context("spawn")
    rates = context.Queue()
    start = context.Barrier(processes)
    workers = [context.Process(target=_hash_for, args=(seconds, rates, start))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    total = sum(rates.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total


async def _post_tip(port: int, n: int) -> int:
    body = json.dumps({"narrative": f"rate bench tip {n}: black water at night",
                       "county": "yanji", "category": "P01"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write((f"POST /api/v1/tips HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                      ).encode() + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/") else 0


async def _clients(port: int, seconds: float, clients: int
                   ) -> tuple[float, list[float], dict[int, int]]:
    times: list[float] = []
    other: dict[int, int] = {}
    until = time.monotonic() + seconds

    async def client(k: int) -> None:
        n = 0
        while time.monotonic() < until:
            started = time.perf_counter()
            status = await _post_tip(port, k * 1_000_000 + n)
            n += 1
            if status == 201:
                times.append(time.perf_counter() - started)
            else:
                other[status] = other.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return time.perf_counter() - started, times, other


def figures(seconds: float = 20, clients: int = 8) -> list[Figure]:
    bound = hash_bound(min(seconds, 10))
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder), port, os.environ.get("DATABASE_URL"))
        try:
            asyncio.run(_clients(port, 3, clients))  # warm-up
            elapsed, times, other = asyncio.run(_clients(port, seconds, clients))
        finally:
            stop_server(server)
    rate = len(times) / max(elapsed, 1e-9)
    p99 = percentile(times, 99)
    note = f", answers not 201: {other}" if other else ""
    return [Figure(f"tips/s ({clients} clients, JSON, no file) ÷ receipt-hash bound",
                   f"{rate:.2f} ÷ {bound:.2f} = {rate / bound:.2f}; p99 {p99:.2f} s{note}",
                   f">= {RATIO_GOAL}, p99 < {P99_GOAL:g} s",
                   not other and rate / bound >= RATIO_GOAL and p99 < P99_GOAL)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    show(figures(args.seconds, args.clients))


if __name__ == "__main__":
    main()
