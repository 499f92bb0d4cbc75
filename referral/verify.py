"""Offline verifier of an audit-log export bundle. Standard library and `cryptography` only.

    python -m referral.verify DIR [--previous CHECKPOINT_FILE] [--entry SEQ]

DIR holds `log.vkey` (the verifier key text), `checkpoints/<size>.note` (signed checkpoints) and
`entries.jsonl` (one canonical line per entry, in seq order). The verifier checks every
checkpoint's signature; streams the entries, checking their format, their seq numbers, their
`prev` links and chain hashes; checks the Merkle root at every checkpoint size; with
--previous, verifies an RFC 6962 consistency proof from an earlier export's checkpoint to the
latest one; with --entry, builds and verifies the inclusion proof of one entry. Exit status 0
with a summary on stdout, or 1 with "FAILED: <reason>" on stderr. See docs/audit-log.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from referral import merkle
from referral.logformat import (
    ENTRY_START,
    ZERO,
    FormatError,
    chain_hash,
    decode_line,
    leaf_hash,
)
from referral.notes import Checkpoint, NoteError, Verifier, parse_checkpoint

__all__ = ["Report", "VerifyError", "main", "verify_bundle"]

ENTRIES = "entries.jsonl"
CHECKPOINTS = "checkpoints"
VKEY = "log.vkey"
_NOTE_NAME = re.compile(r"(0|[1-9][0-9]*)\.note")


class VerifyError(Exception):
    """The bundle does not verify; the message names the first problem found."""


@dataclass
class Report:
    """What verify_bundle proved."""

    entries: int
    origin: str
    checkpoints: list[Checkpoint]  # by size; every root matched
    latest: Checkpoint
    verifier: str  # the verifier key text
    key: str  # its name+key id
    previous: Checkpoint | None = None
    consistency_proof: list[bytes] | None = None
    entry: int | None = None
    entry_line: bytes | None = None
    entry_leaf: bytes | None = None
    inclusion_proof: list[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"ok: {self.entries} entries, latest checkpoint {self.latest.size}, "
               f"root {self.latest.root.hex()}",
               f"origin {self.origin}, key {self.key}, "
               f"{len(self.checkpoints)} checkpoints verified: "
               f"{', '.join(str(c.size) for c in self.checkpoints)}"]
        out += self.notes
        if self.previous is not None and self.consistency_proof is not None:
            out.append(f"consistent: previous checkpoint {self.previous.size} "
                       f"(root {self.previous.root.hex()}) -> {self.latest.size}, "
                       f"proof of {len(self.consistency_proof)} hashes")
            out += [f"  {h.hex()}" for h in self.consistency_proof]
        if self.entry is not None and self.inclusion_proof is not None:
            assert self.entry_leaf is not None and self.entry_line is not None
            out.append(f"included: entry {self.entry} in checkpoint {self.latest.size}, "
                       f"leaf {self.entry_leaf.hex()}, proof of "
                       f"{len(self.inclusion_proof)} hashes")
            out += [f"  {h.hex()}" for h in self.inclusion_proof]
            out.append("  entry " + self.entry_line[ENTRY_START:-2].decode("utf-8"))
        return out

    @property
    def summary(self) -> str:
        return self.lines()[0]


def _read_checkpoints(root: Path, verifier: Verifier) -> list[tuple[str, Checkpoint]]:
    folder = root / CHECKPOINTS
    if not folder.is_dir():
        raise VerifyError(f"{CHECKPOINTS}/ is missing")
    found: list[tuple[str, Checkpoint]] = []
    for path in sorted(folder.iterdir()):
        name = f"{CHECKPOINTS}/{path.name}"
        match = _NOTE_NAME.fullmatch(path.name)
        if not match or not path.is_file():
            raise VerifyError(f"checkpoint {name}: not named <size>.note")
        try:
            checkpoint = parse_checkpoint(path.read_bytes(), verifier)
        except NoteError as error:
            raise VerifyError(f"checkpoint {name}: {error}") from None
        if checkpoint.size != int(match.group(1)):
            raise VerifyError(f"checkpoint {name}: its note says size {checkpoint.size}")
        found.append((name, checkpoint))
    if not found:
        raise VerifyError(f"no checkpoints in {CHECKPOINTS}/: nothing is signed")
    found.sort(key=lambda item: item[1].size)
    origins = {c.origin for _, c in found}
    if len(origins) != 1:
        raise VerifyError(f"checkpoints name more than one origin: {sorted(origins)}")
    return found


def verify_bundle(path: str | Path, previous: str | Path | None = None,
                  entry: int | None = None) -> Report:
    """Verify the bundle in `path`; raise VerifyError naming the first problem found."""
    root = Path(path)
    try:
        verifier = Verifier.from_text((root / VKEY).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise VerifyError(f"{VKEY}: cannot read it ({error})") from None
    except NoteError as error:
        raise VerifyError(f"{VKEY}: {error}") from None
    checkpoints = _read_checkpoints(root, verifier)
    origin = checkpoints[0][1].origin

    earlier: Checkpoint | None = None
    if previous is not None:
        try:
            earlier = parse_checkpoint(Path(previous).read_bytes(), verifier, origin=origin)
        except OSError as error:
            raise VerifyError(f"previous checkpoint {previous}: cannot read it ({error})") from None
        except NoteError as error:
            raise VerifyError(f"previous checkpoint {previous}: {error}") from None

    # Stream the entries: format, seq, prev, chain; the root at every checkpoint size.
    pending = list(checkpoints)  # ascending by size
    frontier = merkle.CompactRange()
    leaves = merkle.HashList()
    last_good = 0  # size of the last checkpoint whose root matched
    entry_line: bytes | None = None

    def check_roots() -> int:
        """Check the checkpoints of the current size; return the next size to stop at."""
        nonlocal last_good
        while pending and pending[0][1].size == frontier.size:
            name, checkpoint = pending.pop(0)
            if frontier.root() != checkpoint.root:
                raise VerifyError(
                    f"checkpoint {name}: root {checkpoint.root.hex()} does not match the root "
                    f"{frontier.root().hex()} of the first {checkpoint.size} entries; entries "
                    f"{last_good}..{checkpoint.size - 1} (after the last matching checkpoint, "
                    f"{last_good}) were changed, or the checkpoint is not this log's")
            last_good = checkpoint.size
        return pending[0][1].size if pending else -1

    next_size = check_roots()
    prev = ZERO
    try:
        stream = (root / ENTRIES).open("rb")
    except OSError as error:
        raise VerifyError(f"{ENTRIES}: cannot read it ({error})") from None
    with stream:
        for seq, line in enumerate(stream):
            if not line.endswith(b"\n"):
                raise VerifyError(f"entry {seq} (line {seq + 1}): the last line is not "
                                  "terminated (truncated file?)")
            try:
                item, chain = decode_line(line)
            except FormatError as error:
                raise VerifyError(f"entry {seq} (line {seq + 1}): {error}") from None
            if item["seq"] != seq:
                raise VerifyError(f"entry {item['seq']}: expected seq {seq} (line {seq + 1}; "
                                  "a missing, added or reordered line)")
            if item["prev"] != prev.hex():
                raise VerifyError(f"entry {seq}: prev {item['prev']} is not the chain hash "
                                  f"{prev.hex()} of entry {seq - 1}")
            leaf = leaf_hash(line[ENTRY_START:-2])
            prev = chain_hash(prev, leaf)
            if prev != chain:
                raise VerifyError(f"entry {seq}: chain hash {chain.hex()} on the line does not "
                                  f"match {prev.hex()} computed from the entry (it was altered)")
            frontier.append(leaf)
            leaves.append(leaf)
            if seq == entry:
                entry_line = line
            if seq + 1 == next_size:
                next_size = check_roots()
    count = frontier.size
    if pending:
        name, checkpoint = pending[0]
        raise VerifyError(f"checkpoint {name}: size {checkpoint.size} is larger than the log "
                          f"({count} entries: entries missing at the end)")

    latest = checkpoints[-1][1]
    report = Report(entries=count, origin=origin, checkpoints=[c for _, c in checkpoints],
                    latest=latest, verifier=verifier.text, key=verifier.label)
    if count > latest.size:
        report.notes.append(f"note: entries {latest.size}..{count - 1} are not covered by a "
                            "signed checkpoint yet")

    if earlier is not None:
        if earlier.size > latest.size:
            raise VerifyError(
                f"previous checkpoint {previous}: size {earlier.size} is larger than the latest "
                f"checkpoint {latest.size}: the log lost entries since then")
        proof = merkle.consistency_proof(earlier.size, leaves[:latest.size])
        if not merkle.verify_consistency(earlier.size, latest.size, earlier.root, latest.root,
                                         proof):
            raise VerifyError(
                f"previous checkpoint {previous} (size {earlier.size}, root "
                f"{earlier.root.hex()}) is not consistent with checkpoint {latest.size}: the "
                f"history of entries 0..{earlier.size - 1} was rewritten since it was signed")
        report.previous, report.consistency_proof = earlier, proof

    if entry is not None:
        if not 0 <= entry < latest.size:
            raise VerifyError(f"entry {entry} is not covered by the latest checkpoint "
                              f"(size {latest.size})")
        assert entry_line is not None
        proof = merkle.inclusion_proof(entry, leaves[:latest.size])
        leaf = leaves[entry]
        if not merkle.verify_inclusion(entry, latest.size, leaf, proof, latest.root):
            raise VerifyError(f"entry {entry}: inclusion proof does not verify")  # unreachable
        report.entry, report.entry_line, report.entry_leaf = entry, entry_line, leaf
        report.inclusion_proof = proof
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m referral.verify",
        description="Verify an audit-log export bundle offline (see docs/audit-log.md).")
    parser.add_argument("bundle", help="the bundle directory")
    parser.add_argument("--previous", metavar="CHECKPOINT_FILE",
                        help="a signed checkpoint from an earlier export: prove the log only "
                             "grew since")
    parser.add_argument("--entry", metavar="SEQ", type=int,
                        help="prove that entry SEQ is in the latest checkpoint")
    args = parser.parse_args(argv)
    try:
        report = verify_bundle(args.bundle, previous=args.previous, entry=args.entry)
    except VerifyError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
