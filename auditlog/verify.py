"""Offline verifier of an audit-log export bundle. Standard library and `cryptography` only.

    python -m auditlog.verify DIR_OR_ZIP [--previous CHECKPOINT_FILE] [--entry SEQ] [--strict]

DIR holds `log.vkey` (the verifier key text), `checkpoints/<size>.note` (signed checkpoints) and
`entries.jsonl` (one canonical line per entry, in seq order); the ZIP file the auditor's page
downloads holds the same files and is read in place, without unpacking it. The verifier checks every
checkpoint's signature; streams the entries, checking their format, their seq numbers, their
`prev` links and chain hashes; checks the Merkle root at every checkpoint size; with
--previous, verifies an RFC 6962 consistency proof from an earlier export's checkpoint to the
latest one; with --entry, builds and verifies the inclusion proof of one entry. Exit status 0
with a summary on stdout, or 1 with "FAILED: <reason>" on stderr. See docs/audit-log.md.

Two ways to check a line (docs/audit-log.md §7): by default, lines covered by a signed
checkpoint are checked at the byte level, in bulk: the fixed line frame, the chain hash text,
and the entry's top-level `prev` and `seq` read at fixed places of its tail; the leaf hash is
over the exact entry bytes, so the chain and the signed Merkle roots bind every byte. A block of
lines that fails any byte check is re-checked line by line, and a line that still fails is
decoded as JSON (the strict check), which names the problem. Lines past the latest checkpoint,
and every line with `strict=True` (`--strict`), get the strict check: the JSON is decoded,
validated and re-encoded to prove the line canonical. Only the format proof differs: a bundle
passes by default and fails --strict only if a signed entry is non-canonical JSON (a signer
that wrote a malformed entry); any change to signed bytes fails both.

A large entries.jsonl in a bundle directory is checked by worker processes, one a CPU, in spans
cut at line ends (docs/audit-log.md §7.2; multiprocessing, standard library): each span from the
seq and chain hash its lines claim, the main process taking a span only if it passed and its
claims are the state reached, and checking any other span itself, so that the first problem
named is the one the one-process pass names.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import sys
import zipfile
import zlib
from binascii import hexlify
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditlog import merkle
from auditlog.logformat import (
    CHAIN_PREFIX,
    ENTRY_START,
    ZERO,
    FormatError,
    chain_hash,
    decode_line,
    leaf_hash,
)
from auditlog.notes import Checkpoint, NoteError, Verifier, parse_checkpoint
from referral.filenames import member_problem

__all__ = ["Report", "VerifyError", "main", "verify_bundle"]

ENTRIES = "entries.jsonl"
CHECKPOINTS = "checkpoints"
VKEY = "log.vkey"
_NOTE_NAME = re.compile(r"(0|[1-9][0-9]*)\.note")


class VerifyError(Exception):
    """The bundle does not verify; the message names the first problem found."""


# A bundle is a directory or the ZIP of one, read in place (zipfile.Path walks it like a path).
Root = Path | zipfile.Path
# How a damaged ZIP shows, depending on which byte was hit: a bad CRC or header, a broken
# deflate stream, a stream cut short, or a header asking for a method zipfile lacks.
ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


def _open_bundle(path: Path) -> tuple[Root, zipfile.ZipFile | None]:
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return path, None
    try:
        archive = zipfile.ZipFile(path)
        _check_names(path, archive)
        root = zipfile.Path(archive)
        if not (root / VKEY).exists():  # a ZIP of the bundle's folder rather than of its files
            folders = [p for p in root.iterdir() if p.is_dir()]
            if len(folders) == 1 and (folders[0] / VKEY).exists():
                root = folders[0]
    except (OSError, *ZIP_DAMAGE) as error:
        raise VerifyError(f"{path}: not a readable ZIP file ({error})") from None
    return root, archive


def _check_names(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a ZIP whose entry names could point outside the folder it would be unpacked into
    (../, /, C:, \\), hide a part of the name (NUL, which zipfile cuts at; bidi or zero-width
    characters), or say two things (a name twice, perhaps in another case: one tool reads the
    first, another the last). The verifier reads the ZIP in place and never unpacks it; an
    exported bundle has none of these, so a ZIP that has them was made by someone else."""
    seen: set[str] = set()
    for info in archive.infolist():
        name = info.orig_filename  # as stored: zipfile's `filename` is cut at a NUL
        problem = member_problem(name)
        if problem is None and name.casefold() in seen:
            problem = "a name that is there twice"
        if problem is not None:
            archive.close()
            raise VerifyError(f"{path}: the ZIP file has an entry named {name!r}: {problem}; "
                              "refused (an exported bundle has no such name)")
        seen.add(name.casefold())


_BLOCK = 1 << 20  # bytes read at a time from entries.jsonl

# The byte-level (default) check. A bundle line is, byte for byte (logformat.encode_line):
#   {"chain":"<64 hex>","entry":{...,"prev":"<64 hex>","role":R,"seq":N,"unit":U,"v":1}}\n
# with the entry's keys sorted. See _check_bytes and docs/audit-log.md §7.
_sha256 = hashlib.sha256
_LEAF_START = hashlib.sha256(b"\x00").copy  # (cheaper than hashing b"\x00" + E anew)
_INFIX = b'","entry":'
_FRAME = _INFIX + CHAIN_PREFIX  # between two chain hashes in the concatenated line heads
_PREV = b',"prev":"'
_SEP = b',"'
_SEQ_SEP = b',"seq":'
_TAIL_END = b'","v":1}}\n'  # the end of a line, after its prev's last hex digit
_SMALL = [b"%d" % i for i in range(1000)]
_DIGITS3 = [b"%03d" % i for i in range(1000)]


def _seq_text(start: int, stop: int) -> bytes:
    """b'seq":' + b',"seq":'.join(decimal k for k in range(start, stop)), built 1000 at a time."""
    chunks = []
    while start < stop:
        high, low = divmod(start, 1000)
        end = min(stop, (high + 1) * 1000)
        if high:
            prefix = b"%d" % high
            chunks.append(prefix + (_SEQ_SEP + prefix).join(_DIGITS3[low:low + end - start]))
        else:
            chunks.append(_SEQ_SEP.join(_SMALL[low:end]))
        start = end
    return b'seq":' + _SEQ_SEP.join(chunks)


def _check_bytes(lines: list[bytes], seq: int, prev: bytes) -> tuple[list[bytes], bytes] | None:
    """Check `lines` (entries seq, seq+1, ..., each ending in a newline) at the byte level, in
    bulk; return (their leaf hashes, the chain hash of the last), or None if a check fails.

    Passing proves, for every line: it is CHAIN_PREFIX + hex(chain) + '","entry":' + E + '}\\n',
    where chain = SHA-256(c || leaf(E)), c being the chain hash of the line before (`prev` for
    the first line); and the bytes of E after its last ',"prev":"' are hex(c) + '"' + ',"' + X
    + ',"seq":' + its seq in decimal + ',"' + Y + ',"v":1}', X and Y not containing ',"'.
    If E is canonical JSON, that ',"prev":"' is its top-level key ("details", the only object
    inside, sorts before "prev"; in a string, '"' is escaped, so ',"' there can only be a last
    "," and the closing quote, which 'prev":' cannot follow), X is 'role":' + the role and Y
    'unit":' + the unit: seq and prev are checked exactly as the strict check does. (A role or
    unit ending with "," gives more pieces: that line does not pass.) None only means that this
    check proved nothing; the caller then checks line by line.
    """
    n = len(lines)
    leaves: list[bytes] = []
    append = leaves.append
    for line in lines:  # leaf(E): a copy of a hash of the 0x00 prefix, then E (no concatenation)
        leaf = _LEAF_START()
        leaf.update(line[ENTRY_START:-2])
        append(leaf.digest())
    chain = prev
    chains = [chain := _sha256(chain + leaf).digest() for leaf in leaves]
    hashes = b"".join(chains)
    # The heads, ENTRY_START bytes each (or fewer: then the lengths differ), against the frame
    # around each chain hash in hex: equal as a whole only if equal line by line.
    if b"".join([line[:ENTRY_START] for line in lines]) != (
            CHAIN_PREFIX + hexlify(hashes, b"\n", 32).replace(b"\n", _FRAME) + _INFIX):
        return None
    # The tails, after each line's last ',"prev":"', split at every ',"': 5 pieces a line,
    # 'PREV"', X, 'seq":N', Y, 'v":1}}\n' (the tails are concatenated, so the last piece of a
    # line and the first of the next are one piece). No piece holds ',"', so two joins by ',"'
    # are equal only if they are equal piece by piece.
    pieces = b"".join([line.rpartition(_PREV)[2] for line in lines]).split(_SEP)
    if len(pieces) != 4 * n + 1:
        return None
    if _SEP.join(pieces[0::4]) != (hexlify(prev + hashes[:-32], b"\n", 32)
                                   .replace(b"\n", _TAIL_END) + _TAIL_END):
        return None
    if _SEP.join(pieces[2::4]) != _seq_text(seq, seq + n):
        return None
    return leaves, chain


def _check_json(line: bytes, seq: int, prev: bytes) -> tuple[bytes, bytes]:
    """The strict check of one line (with its newline): decode, validate, re-encode; then
    seq, prev and the chain hash. Return (leaf hash, chain hash); raise VerifyError."""
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
    computed = chain_hash(prev, leaf)
    if computed != chain:
        raise VerifyError(f"entry {seq}: chain hash {chain.hex()} on the line does not "
                          f"match {computed.hex()} computed from the entry (it was altered)")
    return leaf, computed


def _check_lines(lines: list[bytes], seq: int, prev: bytes,
                 strict: bool) -> tuple[list[bytes], bytes]:
    """Check consecutive lines; return (leaf hashes, last chain hash); raise VerifyError naming
    the first bad line, with the strict check's message."""
    if not strict:
        done = _check_bytes(lines, seq, prev)
        if done is not None:
            return done
    leaves: list[bytes] = []
    for offset, line in enumerate(lines):
        one = None if strict else _check_bytes([line], seq + offset, prev)
        if one is None:
            leaf, prev = _check_json(line, seq + offset, prev)
            leaves.append(leaf)
        else:
            leaves += one[0]
            prev = one[1]
    return leaves, prev


class _Pass:
    """The pass over entries.jsonl: the next entry's seq and the chain hash before it, the tree of
    the entries so far, the checkpoints still to reach. Lines are fed in order (`feed`), or the
    result of a span checked by another process is grafted (`graft`)."""

    def __init__(self, checkpoints: list[tuple[str, Checkpoint]], strict_from: int,
                 entry: int | None) -> None:
        self.pending = list(checkpoints)  # ascending by size
        self.strict_from = strict_from  # the lines from here on get the strict check
        self.entry = entry  # --entry: keep that line
        self.entry_line: bytes | None = None
        self.tree = merkle.Tree()
        self.seq, self.prev = 0, ZERO
        self.last_good = 0  # size of the last checkpoint whose root matched
        self.check_roots()

    def check_roots(self) -> None:
        """Check the checkpoints of the sizes reached, in order of size."""
        while self.pending and self.pending[0][1].size <= self.tree.size:
            name, checkpoint = self.pending.pop(0)
            computed = self.tree.root(0, checkpoint.size)
            if computed != checkpoint.root:
                raise VerifyError(
                    f"checkpoint {name}: root {checkpoint.root.hex()} does not match the root "
                    f"{computed.hex()} of the first {checkpoint.size} entries; entries "
                    f"{self.last_good}..{checkpoint.size - 1} (after the last matching "
                    f"checkpoint, {self.last_good}) were changed, or the checkpoint is not this "
                    "log's")
            self.last_good = checkpoint.size

    def feed(self, lines: list[bytes]) -> None:
        """Check the next lines (each ending in a newline) in runs that end at every checkpoint
        size and where the strict check begins, so that the first problem found is the same as
        when checking line by line."""
        start = 0
        while start < len(lines):
            seq = self.seq
            next_size = self.pending[0][1].size if self.pending else -1
            stop = min(s for s in (next_size, self.strict_from, seq + len(lines) - start)
                       if s > seq)
            run = lines[start:start + stop - seq]
            leaves, self.prev = _check_lines(run, seq, self.prev, seq >= self.strict_from)
            self.tree.extend(leaves)
            if self.entry is not None and seq <= self.entry < seq + len(run):
                self.entry_line = run[self.entry - seq]
            self.seq += len(run)
            start += len(run)
            self.check_roots()

    def graft(self, count: int, last: bytes, levels: list[bytes], line: bytes | None) -> None:
        """Take the next `count` lines as checked elsewhere (_check_span): the chain hash of the
        last, the levels of their leaf hashes, the --entry line if it is among them."""
        self.tree.graft(levels)
        self.seq += count
        self.prev = last
        if line is not None:
            self.entry_line = line
        self.check_roots()


# The parallel pass (a bundle directory; a ZIP's entries are read by one process). A file of at
# least _PARALLEL bytes is cut into spans of about _SPAN bytes at line ends; each span's lines
# below the strict check's start are checked by a worker process (_check_span) from the seq and
# the chain hash that the span's first line and the line before it claim, and the main process
# takes the spans in order (_parallel_pass): a span is taken only if its claims are the seq and
# chain hash actually reached, and only if every check passed in it; any other span is checked
# again by the main process itself (_recheck), so that every problem is found and named exactly
# as by the one-process pass. The worker returns the span's leaf hashes and the complete
# subtrees above them (merkle.complete_levels); the main process grafts them onto its tree and
# checks the roots of the checkpoints inside the span.
_PARALLEL = 8 << 20  # bytes of entries.jsonl from which several processes check it (fork)
_PARALLEL_SPAWN = 64 << 20  # the same where they are spawned (each starts an interpreter)
_SPAN = 4 << 20  # bytes of entries.jsonl a worker checks at a time
_SPAN_BLOCK = 1 << 18  # bytes it reads at a time (small: fresh memory costs more than reading)
_WINDOW = 1 << 14  # bytes read on either side of a span's end to find the line end there
_MAX_WORKERS = 8
_START_METHOD: str | None = None  # None: fork where that is safe (Linux, one thread), else spawn
_Span = tuple[int, int, int, bytes]  # start, stop (byte offsets), claimed seq and chain before


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(cpus, _MAX_WORKERS)


def _claim(before: bytes, first: bytes) -> tuple[int, bytes] | None:
    """The seq that a span's first line claims and the chain hash that the line before claims,
    or None if they cannot be read. Only a claim: a span is taken only if it is right."""
    try:
        prev = bytes.fromhex(before[len(CHAIN_PREFIX):len(CHAIN_PREFIX) + 64].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    pieces = first.rpartition(_PREV)[2].split(_SEP)
    if len(prev) != 32 or len(pieces) != 5 or not pieces[2].startswith(b'seq":'):
        return None
    digits = pieces[2][5:]
    if not (digits.isdigit() and len(digits) < 19):
        return None
    return int(digits), prev


def _spans(path: Path, size: int, strict_from: int) -> list[_Span]:
    """Cut entries.jsonl into spans that end at line ends, about _SPAN bytes each, up to the
    first span whose first line claims a seq at or past `strict_from`."""
    spans: list[_Span] = []
    start, seq, prev = 0, 0, ZERO
    with path.open("rb") as stream:
        for target in range(_SPAN, size, _SPAN):
            if target <= start:
                continue
            base = max(target - _WINDOW, 0)
            stream.seek(base)
            window = stream.read(2 * _WINDOW)
            cut = window.find(b"\n", target - base - 1)  # the line end at or after target - 1
            before = window.rfind(b"\n", 0, cut) if cut >= 0 else -1
            after = window.find(b"\n", cut + 1) if cut >= 0 else -1
            if after < 0 or (before < 0 and base > 0):  # a line longer than the window
                continue
            claim = _claim(window[before + 1:cut + 1], window[cut + 1:after + 1])
            if claim is None:
                continue
            spans.append((start, base + cut + 1, seq, prev))
            start, (seq, prev) = base + cut + 1, claim
            if seq >= strict_from:
                return spans  # from here on: the strict check, by the main process
        spans.append((start, size, seq, prev))
    return spans


def _check_span(path: str, start: int, stop: int, seq: int, prev: bytes, strict_from: int,
                entry: int | None) -> tuple[int, bytes, list[bytes], int, bytes | None] | None:
    """In a worker process: check the lines in bytes start..stop-1 of entries.jsonl, entries
    seq, seq+1, ... after chain hash `prev`, those below `strict_from` only, as _check_lines
    does. Return (the number of lines checked, the chain hash of the last, complete_levels of
    their leaf hashes, the offset after them, the --entry line if it is among them), or None if
    a line fails (or the span does not end at a line end): the main process checks it again."""
    first, leaves, line = seq, [], None
    rest = b""
    with open(path, "rb", buffering=0) as stream:
        stream.seek(start)
        position = start
        while position < stop and seq < strict_from:
            data = stream.read(min(_SPAN_BLOCK, stop - position))
            if not data:
                return None
            position += len(data)
            lines = io.BytesIO(data).readlines()  # (memchr: faster than data.split)
            lines[0] = rest + lines[0]
            rest = b"" if lines[-1].endswith(b"\n") else lines.pop()
            if seq + len(lines) > strict_from:  # leave the strict check's lines to the caller
                keep = strict_from - seq
                position -= len(rest) + sum(map(len, lines[keep:]))
                rest = b""
                del lines[keep:]
            if not lines:
                continue
            try:
                more, prev = _check_lines(lines, seq, prev, False)
            except VerifyError:
                return None
            if entry is not None and seq <= entry < seq + len(lines):
                line = lines[entry - seq]
            leaves += more
            seq += len(lines)
    if rest:
        return None
    return seq - first, prev, merkle.complete_levels(leaves, first), position, line


def _recheck(state: _Pass, path: Path, start: int, stop: int) -> int:
    """Check the span start..stop-1 in this process; return the offset after its last complete
    line (stop, unless the file ends there with an unterminated line)."""
    with path.open("rb") as stream:
        stream.seek(start)
        data = stream.read(stop - start)
    lines = io.BytesIO(data).readlines()
    rest = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
    state.feed(lines)
    return start + len(data) - len(rest)


def _serve(tasks: Any, results: Any) -> None:
    """A worker process: check the spans taken from `tasks` (index, _check_span's arguments)
    until None, sending (index, result) to `results`."""
    while (task := tasks.get()) is not None:
        index, args = task
        try:
            result = _check_span(*args)
        except Exception:  # whatever it is, the main process checks the span again
            result = None
        results.send((index, result))


def _parallel_pass(state: _Pass, path: Path) -> int:
    """Check the lines of entries.jsonl below the strict check's start with worker processes, if
    the file is large enough for that to pay; return the offset of the first line left to the
    one-process pass (0 if none was checked)."""
    import threading

    # fork is cheap but unsafe in a process with threads; spawn starts a fresh interpreter
    # (a program that calls verify_bundle must then guard its main module, as any program that
    # uses multiprocessing; if it does not, the workers fail and this process checks it all).
    method = _START_METHOD or ("fork" if sys.platform == "linux"
                               and threading.active_count() == 1 else "spawn")
    size = path.stat().st_size
    if (_workers() < 2 or state.strict_from == 0
            or size < (_PARALLEL if method == "fork" else _PARALLEL_SPAWN)):
        return 0
    spans = _spans(path, size, state.strict_from)
    if len(spans) < 2:
        return 0
    import multiprocessing
    from multiprocessing.connection import wait

    context: Any = multiprocessing.get_context(method)
    tasks = context.SimpleQueue()
    processes: list[Any] = []
    readers: list[Any] = []
    given = 0  # spans 0 .. given-1 are on the task queue (a few ahead: see `give`)

    def give(upto: int) -> None:
        nonlocal given
        while given < min(upto, len(spans)):
            tasks.put((given, (str(path), *spans[given], state.strict_from, state.entry)))
            given += 1
            if given == len(spans):
                for _ in processes:
                    tasks.put(None)  # no more: the workers end

    try:
        for _ in range(min(_workers(), len(spans))):
            reader, writer = context.Pipe(duplex=False)
            _widen(writer)
            process = context.Process(target=_serve, args=(tasks, writer), daemon=True)
            process.start()
            writer.close()
            processes.append(process)
            readers.append(reader)
        results: dict[int, Any] = {}
        offset, died = 0, False
        for index, (start, stop, seq, prev) in enumerate(spans):
            if state.seq >= state.strict_from:
                break
            give(index + 3 * len(processes))  # (so the queue and the results stay small)
            # A worker that ended leaves an EOF; one that died (a non-zero exit: killed, out of
            # memory) may have died holding the queue's lock: the rest is checked here.
            while index not in results and readers and not died:
                ready: Any
                for ready in wait(readers):
                    try:
                        done, result = ready.recv()
                    except (EOFError, OSError):
                        process = processes[readers.index(ready)]
                        process.join()
                        died = died or process.exitcode != 0
                        del processes[readers.index(ready)]
                        readers.remove(ready)
                    else:
                        results[done] = result
            result = results.pop(index, None)
            # Taken only if the span starts where the checked lines end: the seq, and the chain
            # hash (the line before the span claims the hash it has checked, unless the file
            # changed meanwhile). Any other span is checked here.
            if result is not None and (seq, prev) == (state.seq, state.prev):
                count, last, levels, offset, line = result
                state.graft(count, last, levels, line)
            else:
                offset = _recheck(state, path, start, stop)
            if offset != stop:
                break
        return offset
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for reader in readers:
            reader.close()
        tasks.close()


def _widen(writer: Any) -> None:
    """Let a worker's result pipe hold a whole span's result (Linux), so that the worker goes on
    to its next span without waiting for this process to read."""
    try:
        import fcntl

        fcntl.fcntl(writer.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass


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
    strict: bool = False  # every line was decoded and re-encoded as JSON (--strict)

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


def _read_checkpoints(root: Root, verifier: Verifier) -> list[tuple[str, Checkpoint]]:
    folder = root / CHECKPOINTS
    if not folder.is_dir():
        raise VerifyError(f"{CHECKPOINTS}/ is missing")
    found: list[tuple[str, Checkpoint]] = []
    entries: list[Root] = list(folder.iterdir())
    for path in sorted(entries, key=lambda p: p.name):
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
                  entry: int | None = None, strict: bool = False) -> Report:
    """Verify the bundle in `path` (a directory or its ZIP); raise VerifyError naming the first
    problem found.

    With strict=True every line is decoded and re-encoded as JSON; by default only the lines
    past the latest checkpoint are (see the module docstring and docs/audit-log.md §7).
    """
    root, archive = _open_bundle(Path(path))
    try:
        return _verify(root, previous, entry, strict)
    except ZIP_DAMAGE as error:
        raise VerifyError(f"{path}: the ZIP file is damaged ({error})") from None
    finally:
        if archive is not None:
            archive.close()


def _verify(root: Root, previous: str | Path | None, entry: int | None, strict: bool
            ) -> Report:
    try:
        verifier = Verifier.from_text((root / VKEY).read_text(encoding="utf-8"))
    except (OSError, KeyError, UnicodeDecodeError) as error:
        raise VerifyError(f"{VKEY}: cannot read it ({error})") from None
    except NoteError as error:
        raise VerifyError(f"{VKEY}: {error}") from None
    checkpoints = _read_checkpoints(root, verifier)
    origin = checkpoints[0][1].origin
    latest = checkpoints[-1][1]

    earlier: Checkpoint | None = None
    if previous is not None:
        try:
            earlier = parse_checkpoint(Path(previous).read_bytes(), verifier, origin=origin)
        except OSError as error:
            raise VerifyError(f"previous checkpoint {previous}: cannot read it ({error})") from None
        except NoteError as error:
            raise VerifyError(f"previous checkpoint {previous}: {error}") from None

    # Stream the entries: format, seq, prev, chain; the root at every checkpoint size (_Pass).
    state = _Pass(checkpoints, 0 if strict else latest.size, entry)
    try:
        stream = ((root / ENTRIES).open("rb", buffering=_BLOCK) if isinstance(root, Path)
                  else (root / ENTRIES).open("rb"))
    except (OSError, KeyError) as error:
        raise VerifyError(f"{ENTRIES}: cannot read it ({error})") from None
    with stream:
        if isinstance(root, Path):  # a file, which other processes can read too
            stream.seek(_parallel_pass(state, root / ENTRIES))
        rest = b""
        while lines := stream.readlines(_BLOCK):
            if not lines[-1].endswith(b"\n"):
                rest = lines.pop()  # an unterminated last line
            state.feed(lines)
        if rest:
            raise VerifyError(f"entry {state.seq} (line {state.seq + 1}): the last line is not "
                              "terminated (truncated file?)")
    tree, pending, entry_line = state.tree, state.pending, state.entry_line
    count = tree.size
    if pending:
        name, checkpoint = pending[0]
        raise VerifyError(f"checkpoint {name}: size {checkpoint.size} is larger than the log "
                          f"({count} entries: entries missing at the end)")

    report = Report(entries=count, origin=origin, checkpoints=[c for _, c in checkpoints],
                    latest=latest, verifier=verifier.text, key=verifier.label, strict=strict)
    if count > latest.size:
        report.notes.append(f"note: entries {latest.size}..{count - 1} are not covered by a "
                            "signed checkpoint yet")

    if earlier is not None:
        if earlier.size > latest.size:
            raise VerifyError(
                f"previous checkpoint {previous}: size {earlier.size} is larger than the latest "
                f"checkpoint {latest.size}: the log lost entries since then")
        proof = tree.consistency_proof(earlier.size, latest.size)
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
        proof = tree.inclusion_proof(entry, latest.size)
        leaf = tree.node(0, entry)
        if not merkle.verify_inclusion(entry, latest.size, leaf, proof, latest.root):
            raise VerifyError(f"entry {entry}: inclusion proof does not verify")  # unreachable
        report.entry, report.entry_line, report.entry_leaf = entry, entry_line, leaf
        report.inclusion_proof = proof
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m auditlog.verify",
        description="Verify an audit-log export bundle offline (see docs/audit-log.md).")
    parser.add_argument("bundle", help="the bundle directory, or the ZIP file exported from "
                                       "the auditor's page")
    parser.add_argument("--previous", metavar="CHECKPOINT_FILE",
                        help="a signed checkpoint from an earlier export: prove the log only "
                             "grew since")
    parser.add_argument("--entry", metavar="SEQ", type=int,
                        help="prove that entry SEQ is in the latest checkpoint")
    parser.add_argument("--strict", action="store_true",
                        help="decode and re-encode every entry as JSON to prove it canonical "
                             "(several times slower; by default only the entries past the "
                             "latest checkpoint are, the signed ones are checked byte by byte)")
    args = parser.parse_args(argv)
    try:
        report = verify_bundle(args.bundle, previous=args.previous, entry=args.entry,
                               strict=args.strict)
    except VerifyError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
