"""A 200 MB upload never sits whole in memory and its plaintext never touches the disk.

The file is text, a kind stored as it streams in; videos are cleaned by ffmpeg in memory and
are refused above MAX_CLEAN_BYTES (tests/unit/test_media.py)."""

from __future__ import annotations

import io
import tempfile
import tracemalloc
from pathlib import Path

from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder

from models import Attachment, BlobChunk
from portal.intake import uploads
from portal.operations.setup import complete_setup
from portal.web.extensions import db
from tests.conftest import COSTS

MiB = 1024 * 1024
FILE_SIZE = 200 * MiB
MARKER = b"PLAINTEXT-MARKER-0123456789-"
TEXT_HEAD = b"Readings of the outflow, every minute since October:\n"


class GeneratedMultipart(io.RawIOBase):
    """A multipart body made on the fly: a narrative field and one large text file."""

    def __init__(self, boundary: str, size: int) -> None:
        super().__init__()
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"narrative\"\r\n\r\n"
                f"a long log of the dumping\r\n--{boundary}\r\nContent-Disposition: form-data; "
                f"name=\"attachments\"; filename=\"dumping.txt\"\r\nContent-Type: text/plain\r\n"
                "\r\n"
                ).encode() + TEXT_HEAD
        self._parts = [head, None, f"\r\n--{boundary}--\r\n".encode()]
        self._body_left = size - len(TEXT_HEAD)
        self.length = len(head) + self._body_left + len(self._parts[2])
        self._pending = b""
        self._block = MARKER * (MiB // len(MARKER) + 1)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            if not self._parts:
                return 0
            if self._parts[0] is None:
                if self._body_left <= 0:
                    self._parts.pop(0)
                    continue
                take = min(self._body_left, MiB)
                self._pending = self._block[:take]
                self._body_left -= take
            else:
                self._pending = self._parts.pop(0)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def test_200_mb_upload_streams_encrypted(app_factory, tmp_path: Path, monkeypatch) -> None:
    app = app_factory(MAX_FILE_BYTES=FILE_SIZE + MiB, MAX_CONTENT_LENGTH=FILE_SIZE + 2 * MiB)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    # Keep the spool files visible so we can read what reached the disk.
    monkeypatch.setattr(uploads.tempfile, "TemporaryFile",
                        lambda: tempfile.NamedTemporaryFile(dir=spool_dir, delete=False))  # noqa: SIM115
    with app.app_context():
        complete_setup(db.session, "admin", "correct horse battery", **COSTS)
        body = GeneratedMultipart("qingliuboundary", FILE_SIZE)
        environ = EnvironBuilder(path="/api/v1/tips", method="POST").get_environ()
        environ.update({"wsgi.input": body, "CONTENT_LENGTH": str(body.length),
                        "CONTENT_TYPE": "multipart/form-data; boundary=qingliuboundary"})
        status: list[str] = []
        tracemalloc.start()
        answer = b"".join(app.wsgi_app(environ, lambda code, headers: status.append(code)))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert status == ["201 CREATED"], answer
        print(f"peak traced memory {peak / MiB:.1f} MiB")
        assert peak < 20 * MiB, f"peak {peak / MiB:.1f} MiB for a {FILE_SIZE // MiB} MB upload"
        attachment = db.session.scalars(select(Attachment)).one()
        assert attachment.size == FILE_SIZE and attachment.family == "text"
        rows = db.session.scalar(select(func.count()).select_from(BlobChunk))
        assert rows == FILE_SIZE // MiB + 1  # 1 MiB rows of ciphertext (age adds 16 B / 64 KiB)
    spooled = list(spool_dir.iterdir())
    assert spooled, "the upload was not spooled through EncryptedSpool"
    for path in spooled:
        with path.open("rb") as handle:
            while block := handle.read(4 * MiB):
                assert MARKER not in block, f"plaintext reached the disk in {path}"
