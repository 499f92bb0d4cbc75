"""Upload spooling without plaintext on disk.

Werkzeug's multipart parser pushes each uploaded file into the object our stream factory returns.
EncryptedSpool encrypts those chunks as they arrive to a throwaway key that lives only in memory,
into an anonymous temporary file, and decrypts on the fly when read back. A crash leaves only
ciphertext whose key died with the process. A file over the per-file limit is counted, not kept,
so the form can say which file was too large instead of failing the whole request.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

from portal.security import crypto

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12


class EncryptedSpool(io.RawIOBase):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit
        self._keypair = crypto.generate_keypair()
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the spool
        self._writer: crypto.AgeWriter | None = crypto.AgeWriter(
            self._file, [self._keypair.recipient]
        )
        self._chunks: Iterator[bytes] | None = None
        self._pending = b""
        self.size = 0
        self.oversize = False

    def writable(self) -> bool:
        return self._writer is not None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # to the start only; that is all the parser and the cleaners need

    def write(self, data: Buffer) -> int:
        if self._writer is None:
            raise io.UnsupportedOperation("spool already sealed")
        chunk = bytes(data)
        self.size += len(chunk)
        if self.size > self._limit:
            self.oversize = True
        elif not self.oversize:
            self._writer.write(chunk)
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("an encrypted spool rewinds only to the start")
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._file.seek(0)
        self._chunks = crypto.open_stream(self._file, [self._keypair.identity])
        self._pending = b""
        return 0

    def tell(self) -> int:
        return 0 if self._chunks is None else -1

    def read(self, size: int = -1) -> bytes:
        if self._chunks is None:
            self.seek(0)
        assert self._chunks is not None
        # Each decrypted chunk is copied into one growing buffer and let go: the whole file read
        # at once (a photo, to be cleaned in memory) is held once, not once in chunks and once
        # joined. getvalue() hands over the buffer itself.
        out = io.BytesIO(self._pending)
        out.seek(0, io.SEEK_END)
        while size < 0 or out.tell() < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            out.write(chunk)
        data = out.getvalue()
        if size < 0 or size >= len(data):
            self._pending = b""
            return data
        self._pending = data[size:]
        return data[:size]

    def readinto(self, buffer: Buffer) -> int:
        target = memoryview(buffer).cast("B")
        data = self.read(len(target))
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()
