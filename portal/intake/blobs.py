"""Attachment ciphertext storage: BlobChunk rows of at most 1 MiB, written and read as streams
inside the caller's transaction (so a tip and its files commit together)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from models import BlobChunk
from portal.security import crypto

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

BLOB_ROW = 1024 * 1024


class ChunkSink:
    """A writable stream that stores what it is given as BlobChunk rows (Core inserts, so the
    session keeps no row objects alive)."""

    def __init__(self, session: Session, attachment_id: int, start_seq: int = 0) -> None:
        self._session = session
        self._attachment_id = attachment_id
        self._buffer = bytearray()
        self._seq = start_seq
        self._start = start_seq

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) >= BLOB_ROW:
            self._insert(bytes(self._buffer[:BLOB_ROW]))
            del self._buffer[:BLOB_ROW]
        return len(data)

    def _insert(self, data: bytes) -> None:
        self._session.execute(
            insert(BlobChunk).values(attachment_id=self._attachment_id, seq=self._seq, data=data))
        self._seq += 1

    def close(self) -> None:
        if self._buffer or self._seq == self._start:
            self._insert(bytes(self._buffer))
            self._buffer.clear()


class _RowReader(io.RawIOBase):
    def __init__(self, session: Session, attachment_id: int, below: int | None) -> None:
        self._session = session
        self._attachment_id = attachment_id
        self._below = below
        self._last = -1
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        target = memoryview(buffer).cast("B")
        while not self._buffer:
            query = select(BlobChunk.seq, BlobChunk.data).where(
                BlobChunk.attachment_id == self._attachment_id, BlobChunk.seq > self._last)
            if self._below is not None:
                query = query.where(BlobChunk.seq < self._below)
            row = self._session.execute(query.order_by(BlobChunk.seq).limit(1)).first()
            if row is None:
                return 0
            self._last, self._buffer = row[0], bytes(row[1])
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def reader(session: Session, attachment_id: int, below: int | None = None) -> io.BufferedReader:
    """The attachment's ciphertext as a stream, one row in memory at a time."""
    return io.BufferedReader(_RowReader(session, attachment_id, below), buffer_size=BLOB_ROW)


def reseal(session: Session, attachment_id: int, identities: Sequence[str],
           recipients: Sequence[str]) -> None:
    """Re-encrypt an attachment for new recipients in constant memory: the new rows are
    written after the old ones, then the old ones are deleted."""
    first_new = (session.scalar(select(func.max(BlobChunk.seq))
                                .where(BlobChunk.attachment_id == attachment_id)) or 0) + 1
    sink = ChunkSink(session, attachment_id, start_seq=first_new)
    writer = crypto.AgeWriter(sink, recipients)
    for chunk in crypto.open_stream(reader(session, attachment_id, below=first_new), identities):
        writer.write(chunk)
    writer.close()
    sink.close()
    session.execute(delete(BlobChunk).where(BlobChunk.attachment_id == attachment_id,
                                            BlobChunk.seq < first_new))
