"""Reading uploads and writing cleaned copies: bounded reads, random access for Office
packages, and a writer that counts what reached the sink."""

from __future__ import annotations

import io
from typing import BinaryIO

from portal.intake.sanitize.kinds import UploadRejected, WritableSink

#: Largest piece ever read from ``source`` at once when streaming (1 MiB).
CHUNK_SIZE = 1024 * 1024


class CountingWriter:
    """Forwards to the sink, counts bytes. Has no ``tell``/``seek`` on purpose so that
    zipfile treats it as an unseekable stream."""

    def __init__(self, sink: WritableSink) -> None:
        self._sink = sink
        self.count = 0

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if callable(flush):
            flush()

    def close(self) -> None:
        """Nothing: the sink belongs to the caller, who closes it (zipfile's writer protocol
        asks for the method, and zipfile never closes a file it was handed)."""


def copy_chunks(source: BinaryIO, out: CountingWriter) -> None:
    while chunk := source.read(CHUNK_SIZE):
        out.write(chunk)


def read_bounded(source: BinaryIO, max_bytes: int, what: str) -> bytes:
    """Whole content for in-memory cleaners, refusing anything over ``max_bytes``."""
    source.seek(0)
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadRejected("too_large_to_clean", f"{what} exceeds the in-memory limit")
    return data


def random_access(source: BinaryIO, max_bytes: int) -> BinaryIO:
    """``source`` itself if it can seek anywhere, else an in-memory copy (bounded)."""
    try:
        source.seek(0, io.SEEK_END)
        source.seek(0)
    except (OSError, ValueError):  # io.UnsupportedOperation: e.g. a rewind-only spool
        return io.BytesIO(read_bounded(source, max_bytes, "document"))
    return source

