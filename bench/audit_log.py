"""How fast the audit log's pure-Python side is: appending entries (canonical JSON, leaf hash,
chain hash, incremental Merkle root) and verifying an export bundle offline.

Run:  .venv/bin/python bench/audit_log.py                  (1,000,000 entries, about a minute)
      .venv/bin/python bench/audit_log.py --entries 20000  (a quick check)
      .venv/bin/python bench/audit_log.py --keep           (leave the bundle behind, print where)
      .venv/bin/python bench/audit_log.py --bundle FOLDER  (steps 3 and 4 only, on a kept bundle)
      .venv/bin/python bench/audit_log.py --bundle FOLDER --default-only  (no proofs, no --strict)

Steps: (1) append N synthetic entries with auditlog.logformat (canonical + leaf + chain) and
auditlog.merkle.CompactRange, signing a checkpoint at N/2 and at N; (2) write the bundle
(entries.jsonl, checkpoints/, log.vkey) to a temporary folder; (3) verify it with
auditlog.verify.verify_bundle: by default (the byte-level check of the signed lines), then with
--previous (the N/2 checkpoint) and --entry, then with strict=True (--strict: every line decoded
and re-encoded as JSON); (4) for comparison, hash entries.jsonl with hashlib.sha256 in 1 MiB
blocks (the best of three passes). Prints entries/second for appending and verifying and the
ratio of each verification to hashlib. The default pass checks a large entries.jsonl with
several processes (docs/audit-log.md §7.2): its CPU figure counts theirs too. The database
side's append rate is measured separately (it adds the INSERT and the row lock).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure

from auditlog.logformat import (
    ZERO,
    canonical,
    chain_hash,
    encode_line,
    format_time,
    leaf_hash,
)
from auditlog.merkle import CompactRange, HashList
from auditlog.notes import Signer, generate_signer, sign_checkpoint
from auditlog.verify import verify_bundle

ORIGIN = "audit.qingliu.example/bench"
ACTIONS = ["tip.submitted", "tip.viewed", "tip.assigned", "referral.created", "referral.file",
           "auth.login", "auth.logout", "attachment.downloaded"]
UNITS = ["222401", "222402", "222403", "222404", "222405", "222406", "222424", "222426", None]
START = datetime(2026, 1, 1, tzinfo=UTC)


def entries(n: int) -> Iterator[dict[str, Any]]:
    """N synthetic entries, `prev` left empty (the caller fills it in)."""
    for seq in range(n):
        staff = seq % 5 != 0
        yield {
            "v": 1, "seq": seq, "at": format_time(START + timedelta(microseconds=seq * 250_001)),
            "actor_type": "staff" if staff else "reporter",
            "actor_id": 1000 + seq % 97 if staff else None,
            "role": "officer" if staff else "reporter",
            "action": ACTIONS[seq % len(ACTIONS)],
            "object_type": "tip", "object_id": 500_000 + seq // 3,
            "unit": UNITS[seq % len(UNITS)],
            "details": {"count": seq % 7, "first": seq % 11 == 0, "channel": "web"},
            "prev": "",
        }


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (the verifier's worker
    processes have when verify_bundle returns)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Timer:
    """Wall-clock and CPU seconds of a block (the CPU figure is steadier on a shared machine)."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = cpu_seconds() - self.cpu

    def rate(self, n: int) -> str:
        return (f"{n / self.wall:>10,.0f} entries/s  ({self.wall:6.2f} s wall, "
                f"{self.cpu:6.2f} s CPU)")


OFFLINE_GOAL = 1_000_000  # entries per second, the default pass of python -m auditlog.verify
HASHLIB_GOAL = 5.0  # at most this many times one hashlib.sha256 pass over the same bytes


@dataclass
class Measured:
    entries: int
    size_mb: float
    append: Timer
    export: Timer
    verify: Timer
    verify_proofs: Timer
    verify_strict: Timer
    hashing: Timer
    proofs: Any
    summary: str
    folder: Path


def make_bundle(n: int) -> tuple[Path, Timer, Timer]:
    """Append `n` synthetic entries and export them: (the bundle folder, append, export)."""
    half = n // 2
    signer_text, verifier_text = generate_signer(ORIGIN)
    signer = Signer.from_text(signer_text)

    # (1) Append: what the server does per entry, minus the database.
    chains = HashList()
    notes: dict[int, str] = {}
    frontier = CompactRange()
    prev = ZERO
    with Timer() as append:
        for entry in entries(n):
            entry["prev"] = prev.hex()
            leaf = leaf_hash(canonical(entry))
            prev = chain_hash(prev, leaf)
            frontier.append(leaf)
            chains.append(prev)
            if frontier.size in (half, n):
                notes[frontier.size] = sign_checkpoint(signer, ORIGIN, frontier.size,
                                                       frontier.root())

    # (2) Export the bundle.
    folder = Path(tempfile.mkdtemp(prefix="audit-bundle-"))
    with Timer() as export:
        (folder / "checkpoints").mkdir()
        (folder / "log.vkey").write_text(verifier_text + "\n", encoding="utf-8")
        for size, note in notes.items():
            (folder / "checkpoints" / f"{size}.note").write_text(note, encoding="utf-8")
        previous_chain = ZERO
        with (folder / "entries.jsonl").open("wb", buffering=1 << 20) as out:
            for entry, chain in zip(entries(n), chains, strict=True):
                entry["prev"] = previous_chain.hex()
                out.write(encode_line(entry, chain))
                previous_chain = chain
    return folder, append, export


def measure(n: int, keep: bool = False, bundle: Path | None = None,
            default_only: bool = False) -> Measured:
    """Append, export and verify `n` synthetic entries (see the module's docstring); or only
    verify `bundle`, a folder kept by an earlier run (n is then its number of entries); with
    `default_only`, only the default pass (the proofs' and --strict's figures are its own)."""
    if bundle is None:
        folder, append, export = make_bundle(n)
    else:
        folder, append, export = bundle, Timer(), Timer()
        append.wall = append.cpu = export.wall = export.cpu = float("nan")
    size_mb = (folder / "entries.jsonl").stat().st_size / 1e6
    with (folder / "entries.jsonl").open("rb") as written:
        os.fsync(written.fileno())  # (untimed) lest the kernel write it back while verifying

    # (3) Verify.
    with Timer() as verify:
        report = verify_bundle(folder)
    n = report.entries
    half = min(int(p.stem) for p in (folder / "checkpoints").glob("*.note"))
    verify_proofs = verify_strict = verify
    proofs = report
    if not default_only:
        with Timer() as verify_proofs:
            proofs = verify_bundle(folder, previous=folder / "checkpoints" / f"{half}.note",
                                   entry=n * 7 // 9)
        with Timer() as verify_strict:
            strict = verify_bundle(folder, strict=True)
        assert strict.summary == report.summary

    # (4) The floor: one SHA-256 pass over the same bytes (the best of three).
    passes = []
    for _ in range(3):
        with Timer() as hashing:
            digest = hashlib.sha256()
            with (folder / "entries.jsonl").open("rb", buffering=0) as stream:
                while block := stream.read(1 << 20):
                    digest.update(block)
        passes.append(hashing)
    hashing = min(passes, key=lambda timer: timer.wall)
    if not keep and bundle is None:
        shutil.rmtree(folder)
    return Measured(n, size_mb, append, export, verify, verify_proofs, verify_strict, hashing,
                    proofs, report.summary, folder)


def figures(n: int = 1_000_000) -> list[Figure]:
    m = measure(n)
    rate = n / m.verify.wall
    ratio = m.verify.wall / m.hashing.wall
    return [Figure(f"offline verify, default pass ({n:,} entries)",
                   f"{rate:,.0f} entries/s, {ratio:.1f}x hashlib",
                   f">= {OFFLINE_GOAL:,}/s, <= {HASHLIB_GOAL:.0f}x",
                   rate >= OFFLINE_GOAL and ratio <= HASHLIB_GOAL)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the bundle folder")
    parser.add_argument("--bundle", type=Path, metavar="FOLDER",
                        help="verify this bundle (kept by --keep) instead of making one")
    parser.add_argument("--default-only", action="store_true",
                        help="verify by default only (no --previous, --entry or --strict)")
    args = parser.parse_args()
    m = measure(args.entries, keep=args.keep, bundle=args.bundle, default_only=args.default_only)
    n = m.entries
    hashing = m.hashing

    def ratio(timer: Timer) -> str:
        return f"{timer.wall / hashing.wall:10.1f}x wall, {timer.cpu / hashing.cpu:.1f}x CPU"

    print(f"python {sys.version.split()[0]}, {n:,} entries, entries.jsonl {m.size_mb:,.1f} MB")
    if args.bundle is None:
        print(f"append (canonical+leaf+chain+root) {m.append.rate(n)}")
        print(f"export (encode_line, write)        {m.export.rate(n)}")
    print(f"verify_bundle (default)            {m.verify.rate(n)}")
    if not args.default_only:
        print(f"verify + --previous + --entry      {m.verify_proofs.rate(n)}")
        print(f"  (consistency proof {len(m.proofs.consistency_proof or [])} hashes, "
              f"inclusion proof {len(m.proofs.inclusion_proof or [])} hashes)")
        print(f"verify_bundle --strict             {m.verify_strict.rate(n)}")
    print(f"hashlib.sha256, 1 MiB blocks       {hashing.rate(n)}, "
          f"{m.size_mb / hashing.wall:,.0f} MB/s")
    print(f"ratio verify / hashlib             {ratio(m.verify)}")
    if not args.default_only:
        print(f"ratio verify + proofs / hashlib    {ratio(m.verify_proofs)}")
        print(f"ratio verify --strict / hashlib    {ratio(m.verify_strict)}")
    print(m.summary)
    if args.keep:
        print(f"bundle kept in {m.folder}")


if __name__ == "__main__":
    main()
