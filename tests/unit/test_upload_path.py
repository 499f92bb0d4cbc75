"""The citizen's upload path in fewer copies: the form parser reads the body in large pieces, and
a photo is re-encoded straight into the sink (the encrypting writer) instead of into a second
copy in memory (issue 13, bench/submit.py)."""

from __future__ import annotations

import io
import os

from PIL import Image

from portal.intake.sanitize import JPEG, clean
from portal.web.http import UPLOAD_READ_BYTES, PortalRequest, UploadFormParser


class RecordingSink:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        return len(data)


def noise_jpeg(width: int, height: int) -> bytes:
    """A camera-like JPEG: noise does not compress, so the cleaned copy is large too."""
    exif = Image.Exif()
    exif[0x0110] = "CanaryCam"  # camera model
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def test_a_photo_reaches_the_sink_in_pieces_as_it_is_encoded() -> None:
    photo = noise_jpeg(1200, 900)
    sink = RecordingSink()

    report = clean(io.BytesIO(photo), JPEG, keep_location=False, max_in_memory=len(photo) * 2,
                   sink=sink)

    cleaned = b"".join(sink.pieces)
    assert report.size == len(cleaned) > 500_000
    # Never the whole image in one write: it was not held whole in memory first.
    assert len(sink.pieces) > 4 and max(map(len, sink.pieces)) < len(cleaned) // 4
    assert "exif" in report.removed and b"CanaryCam" not in cleaned
    with Image.open(io.BytesIO(cleaned)) as image:
        assert image.size == (1200, 900) and not image.getexif()


def multipart_body(boundary: str, content: bytes) -> bytes:
    return (f'--{boundary}\r\nContent-Disposition: form-data; name="narrative"\r\n\r\n'
            f"a tip\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"attachments\"; "
            f'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n').encode() + content + (
            f"\r\n--{boundary}--\r\n").encode()


def test_the_form_parser_reads_the_body_in_large_pieces() -> None:
    content = b"outlet 3, black water\n" * 100_000  # 2.2 MB
    body = multipart_body("b0undary", content)
    reads: list[int] = []

    class Recording(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(-1 if size is None else size)
            return super().read(size)

    parser = UploadFormParser(stream_factory=lambda **_: io.BytesIO())
    _, form, files = parser.parse(Recording(body), "multipart/form-data", len(body),
                                  {"boundary": "b0undary"})

    assert form["narrative"] == "a tip"
    stored = files["attachments"]
    stored.stream.seek(0)
    assert stored.filename == "big.txt" and stored.stream.read() == content
    assert set(reads) == {UPLOAD_READ_BYTES} and len(reads) <= len(body) // UPLOAD_READ_BYTES + 2
    assert PortalRequest.form_data_parser_class is UploadFormParser
