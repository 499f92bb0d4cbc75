"""Operating the tamper-evident log: the signing key (kept outside the database), signed
checkpoints, verifying the stored log, and the export bundle that `python -m auditlog.verify`
checks offline (docs/audit-log.md). No Flask here."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auditlog import merkle, notes
from auditlog.events import SYSTEM, Actor, entry_object, record
from auditlog.logformat import ZERO, canonical, chain_hash, encode_line, leaf_hash
from models import AuditCheckpoint, AuditEvent, Role

BATCH = 10_000


@dataclass(frozen=True)
class LogKeys:
    signer: notes.Signer
    verifier_text: str

    @property
    def verifier(self) -> notes.Verifier:
        return notes.Verifier.from_text(self.verifier_text)


class VerifyingKey(Protocol):
    """What verifying needs of the keys: the public half (LogKeys, or the one a backup names)."""

    @property
    def verifier(self) -> notes.Verifier: ...


def load_keys(path: Path, origin: str) -> LogKeys:
    """The log-signing key from its file, made on first use (mode 0600). It lives outside the
    database by design: a database copy cannot forge a checkpoint."""
    if not path.exists():
        signer_text, verifier_text = notes.generate_signer(origin)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(signer_text + "\n" + verifier_text + "\n")
    signer_text, verifier_text = path.read_text().split("\n")[:2]
    return LogKeys(notes.Signer.from_text(signer_text), verifier_text)


def _events(session: Session, upto: int | None = None) -> Iterator[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if upto is not None:
        query = query.where(AuditEvent.seq < upto)
    yield from session.scalars(query.execution_options(yield_per=BATCH))


def leaf_hashes(session: Session) -> list[bytes]:
    return [bytes(h) for h in session.scalars(
        select(AuditEvent.leaf_hash).order_by(AuditEvent.seq)
        .execution_options(yield_per=BATCH))]


def make_checkpoint(session: Session, keys: LogKeys, origin: str) -> AuditCheckpoint:
    """Sign the tree as it stands (every entry committed so far) and keep the note."""
    leaves = leaf_hashes(session)
    existing = session.get(AuditCheckpoint, len(leaves))
    if existing is not None:
        return existing
    root = merkle.root(leaves)
    note = notes.sign_checkpoint(keys.signer, origin, len(leaves), root)
    checkpoint = AuditCheckpoint(size=len(leaves), root=root, note=note)
    try:
        with session.begin_nested():
            session.add(checkpoint)
    except IntegrityError:  # signed at the same size meanwhile elsewhere: the same tree, root
        found = session.get(AuditCheckpoint, len(leaves))
        if found is None:
            raise
        return found
    session.commit()
    return checkpoint


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))


# What can be wrong with the stored log, as codes with parameters: the pages put them into the
# reader's language (portal/web/messages.py verification_text); `reason` is the English of the CLI.
PROBLEMS = {
    "missing_entry": "entry {seq} is missing (found {found})",
    "altered_entry": "entry {seq} was altered (its content no longer matches its leaf hash)",
    "broken_chain": "entry {seq} does not follow entry {previous}",
    "bad_checkpoint": "checkpoint {size}: {detail}",
    "checkpoint_beyond_log": "checkpoint {size} covers entries that are missing",
    "differs_from_checkpoint": "the log differs from checkpoint {size}",
}


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    checkpoint_size: int | None
    first_bad_seq: int | None = None
    problem: str = ""  # a key of PROBLEMS
    params: Mapping[str, object] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return PROBLEMS[self.problem].format(**self.params) if self.problem else ""


# progress(done, total): entries checked so far, of the log's size when verifying began.
Progress = Callable[[int, int], None]


def verify_database(session: Session, keys: VerifyingKey, progress: Progress | None = None
                    ) -> Verification:
    """Recompute every entry's leaf and chain from its columns and the tree against each
    signed checkpoint; name the first entry that does not fit.

    The checkpoints are read first, then the log's end: a checkpoint signed meanwhile cannot be
    taken for one that covers missing entries, and entries appended meanwhile wait for the next
    verification. Entries are read BATCH at a time, each batch a short statement of its own, and
    `progress` is told after each (and once at the start)."""
    checkpoints = list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size)))
    first, last = session.execute(select(func.min(AuditEvent.seq),
                                         func.max(AuditEvent.seq))).one()
    total = 0 if last is None else last + 1
    prev, leaves, expected = ZERO, [], 0
    if progress is not None:
        progress(0, total)
    # From the first stored seq: a stray row below 0 is found out of place, as any other.
    for start in range(min(first or 0, 0), total, BATCH):
        batch = session.scalars(select(AuditEvent).where(AuditEvent.seq >= start,
                                                         AuditEvent.seq < start + BATCH)
                                .order_by(AuditEvent.seq))
        for event in batch:
            if event.seq != expected:
                return Verification(False, expected, None, expected, "missing_entry",
                                    {"seq": expected, "found": event.seq})
            leaf = leaf_hash(canonical(entry_object(event, prev)))
            if leaf != event.leaf_hash:
                return Verification(False, expected, None, event.seq, "altered_entry",
                                    {"seq": event.seq})
            chained = chain_hash(prev, leaf)
            if chained != event.chain_hash:
                return Verification(False, expected, None, event.seq, "broken_chain",
                                    {"seq": event.seq, "previous": event.seq - 1})
            prev = chained
            leaves.append(leaf)
            expected += 1
        if progress is not None:
            progress(expected, total)
    verifier = keys.verifier
    frontier = merkle.CompactRange()
    done = 0
    for checkpoint in checkpoints:
        try:
            signed = notes.parse_checkpoint(checkpoint.note, verifier)
        except notes.NoteError as error:
            return Verification(False, expected, checkpoint.size, None, "bad_checkpoint",
                                {"size": checkpoint.size, "detail": str(error)})
        if signed.size > expected:
            return Verification(False, expected, signed.size, expected,
                                "checkpoint_beyond_log", {"size": signed.size})
        while done < signed.size:
            frontier.append(leaves[done])
            done += 1
        if frontier.root() != signed.root:
            return Verification(False, expected, signed.size, None,
                                "differs_from_checkpoint", {"size": signed.size})
    latest = checkpoints[-1].size if checkpoints else None
    return Verification(True, expected, latest)


def export_bundle(session: Session, directory: Path, keys: LogKeys) -> int:
    """Write entries.jsonl, checkpoints/<size>.note and log.vkey; return the entry count."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "checkpoints").mkdir(exist_ok=True)
    prev, count = ZERO, 0
    with (directory / "entries.jsonl").open("wb") as out:
        for event in _events(session):
            out.write(encode_line(entry_object(event, prev), bytes(event.chain_hash)))
            prev = bytes(event.chain_hash)
            count += 1
    for checkpoint in session.scalars(select(AuditCheckpoint)):
        (directory / "checkpoints" / f"{checkpoint.size}.note").write_text(checkpoint.note)
    (directory / "log.vkey").write_text(keys.verifier_text + "\n")
    return count


# ---------------------------------------------------------------------------------------------
# The auditor's two acts on the log, each logged in it: verifying it (a run in the background,
# auditlog/verification_runs.py, which records its outcome here) and exporting it.


def _auditor(user_id: int) -> Actor:
    return Actor("staff", user_id, Role.AUDITOR)


def record_verification(session: Session, result: Verification, auditor_id: int | None
                        ) -> None:
    """Record in the log that the stored log was verified, by whom (an auditor; None: the
    command line), with the outcome. The caller commits (auditlog/verification_runs.py, with the
    run's outcome in the same transaction)."""
    actor = SYSTEM if auditor_id is None else _auditor(auditor_id)
    record(session, actor, "audit.verified", ok=result.ok, entries=result.entries)


def export_for_auditor(session: Session, directory: Path, keys: LogKeys, auditor_id: int
                       ) -> int:
    """Record the export, commit it, then write the bundle: the bundle carries the record of
    its own export. The entry count."""
    record(session, _auditor(auditor_id), "audit.exported")
    session.commit()
    return export_bundle(session, directory, keys)
