"""Tests for portal.intake.sanitize: content sniffing and metadata stripping of evidence uploads.

All fixtures are generated here (Pillow, pikepdf, zipfile), so the canary strings
("CanaryCam", "Canary Person", ...) can only come from the metadata we plant.
"""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
import zipfile

import pikepdf
import pypdf
import pytest
from PIL import Image, ImageSequence, PngImagePlugin

from portal.intake import sanitize
from portal.intake.sanitize import (
    ALLOWED,
    UNCLEANABLE_NOTICE_FAMILIES,
    CleanReport,
    FileKind,
    UploadRejected,
    clean,
    describe_uncleanable,
    sniff,
    sniff_file,
)

MB = 1024 * 1024
GPS_IFD = 0x8825
EXIF_IFD = 0x8769
GPS = {
    1: "N",
    2: (52.0, 31.0, 12.5),
    3: "E",
    4: (13.0, 24.0, 1.0),
}


# ------------------------------------------------------------------------------- helpers


class RewindOnly(io.RawIOBase):
    """Mimics portal.intake.uploads.EncryptedSpool: readable, but seeks only back to 0."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("rewind only")
        self._pos = 0
        return 0

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self._data[self._pos : self._pos + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


class FakeVideo(io.RawIOBase):
    """A huge MP4-looking stream generated on the fly (valid ftyp box, then zeros)."""

    HEAD = struct.pack(">I", 24) + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("rewind only")
        self._pos = 0
        return 0

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        view = memoryview(buffer)[:n]
        view[:] = bytes(n)
        head_end = len(self.HEAD)
        if self._pos < head_end:
            part = self.HEAD[self._pos : min(head_end, self._pos + n)]
            view[: len(part)] = part
        self._pos += n
        return n


class CountingSink:
    """Write-only sink (no seek/tell), like the age encryption writer."""

    def __init__(self) -> None:
        self.size = 0
        self.first = b""
        self.max_write = 0

    def write(self, data: bytes) -> int:
        if len(self.first) < 64:
            self.first += bytes(data[: 64 - len(self.first)])
        self.size += len(data)
        self.max_write = max(self.max_write, len(data))
        return len(data)


def run_clean(data: bytes, *, keep_location: bool = False, max_in_memory: int = 50 * MB,
              **kwargs: object) -> tuple[CleanReport, bytes]:
    kind = sniff(data[:8192])
    sink = io.BytesIO()
    report = clean(io.BytesIO(data), kind, keep_location=keep_location,
                   max_in_memory=max_in_memory, sink=sink, **kwargs)  # type: ignore[arg-type]
    out = sink.getvalue()
    assert report.size == len(out)
    return report, out


def rejected(data: bytes, **kwargs: object) -> str:
    with pytest.raises(UploadRejected) as info:
        run_clean(data, **kwargs)  # type: ignore[arg-type]
    return info.value.code


def noisy(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    channels = len(mode)
    return Image.frombytes(mode, size, os.urandom(size[0] * size[1] * channels))


def exif_with_everything(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "CanaryCam"  # Make
    exif[0x0110] = "Canary X1"  # Model
    exif[0x0131] = "CanarySoft 1.0"  # Software
    exif[0x013B] = "Canary Artist"  # Artist
    exif[0x0132] = "2024:05:01 10:11:12"  # DateTime
    if orientation:
        exif[0x0112] = orientation
    exif.get_ifd(EXIF_IFD)[0x9003] = "2024:05:01 10:11:12"  # DateTimeOriginal
    exif.get_ifd(EXIF_IFD)[0xA431] = "SERIAL-CANARY-42"  # BodySerialNumber
    exif.get_ifd(GPS_IFD).update(GPS)
    return exif


def jpeg_with_exif(size: tuple[int, int] = (64, 48), orientation: int | None = None,
                   image: Image.Image | None = None) -> bytes:
    buf = io.BytesIO()
    im = image if image is not None else Image.new("RGB", size, (200, 30, 30))
    im.save(buf, "JPEG", exif=exif_with_everything(orientation).tobytes(),
            comment=b"CanaryComment", xmp=b"<x:xmpmeta>CanaryXMP</x:xmpmeta>")
    return buf.getvalue()


# --------------------------------------------------------------------------------- images


def test_jpeg_exif_gps_device_removed() -> None:
    source = jpeg_with_exif()
    assert b"CanaryCam" in source and b"CanaryComment" in source and b"CanaryXMP" in source

    report, out = run_clean(source)

    assert report.kind == sanitize.JPEG and not report.uncleaned and report.kept == ()
    assert {"exif", "gps", "xmp", "comment"} <= set(report.removed)
    with Image.open(io.BytesIO(out)) as im:
        assert im.format == "JPEG"
        exif = im.getexif()
        assert 0x010F not in exif and 0x0110 not in exif and 0x0131 not in exif
        assert not exif.get_ifd(GPS_IFD)
        assert len(exif) == 0
        assert "exif" not in im.info and "xmp" not in im.info and "comment" not in im.info
    for canary in (b"CanaryCam", b"Canary X1", b"CanarySoft", b"SERIAL-CANARY", b"Canary",
                   b"2024:05:01"):
        assert canary not in out


def test_keep_location_keeps_only_gps_and_capture_time() -> None:
    report, out = run_clean(jpeg_with_exif(), keep_location=True)

    assert report.kept == ("gps", "datetime")
    assert "gps" not in report.removed and "exif" in report.removed
    with Image.open(io.BytesIO(out)) as im:
        exif = im.getexif()
        gps = exif.get_ifd(GPS_IFD)
        assert gps[1] == "N" and gps[3] == "E"
        assert tuple(float(v) for v in gps[2]) == (52.0, 31.0, 12.5)
        assert exif.get_ifd(EXIF_IFD)[0x9003] == "2024:05:01 10:11:12"
        assert exif[0x0132] == "2024:05:01 10:11:12"
        for tag in (0x010F, 0x0110, 0x0131, 0x013B):
            assert tag not in exif
        assert 0xA431 not in exif.get_ifd(EXIF_IFD)
    for canary in (b"CanaryCam", b"Canary X1", b"CanarySoft", b"SERIAL-CANARY", b"Canary"):
        assert canary not in out


def test_orientation_applied_then_tag_dropped() -> None:
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, right half blue
    source = jpeg_with_exif(image=im, orientation=6)  # 6: display rotated 90° clockwise

    _, out = run_clean(source)

    with Image.open(io.BytesIO(out)) as cleaned:
        assert cleaned.size == (20, 40)
        assert 0x0112 not in cleaned.getexif()
        top = cleaned.convert("RGB").getpixel((10, 5))
        bottom = cleaned.convert("RGB").getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the red (left) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_png_text_chunks_removed() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Canary Person")
    info.add_itxt("Comment", "Canary comment", lang="en")
    info.add_text("Software", "CanarySoft")
    buf = io.BytesIO()
    noisy((32, 32)).save(buf, "PNG", pnginfo=info)
    assert b"Canary Person" in buf.getvalue()

    report, out = run_clean(buf.getvalue())

    assert report.kind == sanitize.PNG and "text_chunks" in report.removed
    assert b"Canary" not in out and b"tEXt" not in out and b"iTXt" not in out
    with Image.open(io.BytesIO(out)) as im:
        assert im.format == "PNG" and not im.text
        with Image.open(buf) as original:
            assert im.tobytes() == original.tobytes()  # PNG stays lossless


def test_webp_exif_removed() -> None:
    buf = io.BytesIO()
    noisy((32, 32)).save(buf, "WEBP", exif=exif_with_everything().tobytes())
    assert b"CanaryCam" in buf.getvalue()

    report, out = run_clean(buf.getvalue())

    assert report.kind == sanitize.WEBP and "exif" in report.removed
    assert b"CanaryCam" not in out
    with Image.open(io.BytesIO(out)) as im:
        assert im.format == "WEBP" and not im.getexif()


def test_animated_gif_keeps_frames_drops_comment() -> None:
    frames = [Image.new("RGB", (16, 16), (i * 80, 0, 255 - i * 80)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=120, loop=0,
                   comment=b"Canary Person was here")
    assert b"Canary Person" in buf.getvalue()

    report, out = run_clean(buf.getvalue())

    assert "comment" in report.removed and b"Canary" not in out
    with Image.open(io.BytesIO(out)) as im:
        assert im.format == "GIF" and im.n_frames == 3
        assert "comment" not in im.info
        assert len(list(ImageSequence.Iterator(im))) == 3


def test_truncated_jpeg_is_corrupt() -> None:
    buf = io.BytesIO()
    noisy((256, 256)).save(buf, "JPEG", quality=95)
    truncated = buf.getvalue()[: len(buf.getvalue()) // 2]
    assert rejected(truncated) == "corrupt"


def test_garbage_after_png_signature_is_corrupt() -> None:
    assert rejected(b"\x89PNG\r\n\x1a\n" + os.urandom(2000)) == "corrupt"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_png_rejected() -> None:
    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, "PNG")
    assert len(buf.getvalue()) < 100_000  # tiny file, 100 million pixels
    assert rejected(buf.getvalue()) == "too_many_pixels"


def test_pixel_limit_parameter() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, "PNG")
    assert rejected(buf.getvalue(), max_pixels=5_000) == "too_many_pixels"
    report, _ = run_clean(buf.getvalue(), max_pixels=10_000)
    assert report.kind == sanitize.PNG


def test_pillow_decompression_bomb_error_becomes_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (40, 40)).save(buf, "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 px > 2 * 100: Pillow raises
    assert rejected(buf.getvalue(), max_pixels=10**9) == "too_many_pixels"


def test_image_over_memory_limit_too_large_to_clean() -> None:
    buf = io.BytesIO()
    noisy((64, 64)).save(buf, "PNG")
    assert rejected(buf.getvalue(), max_in_memory=1000) == "too_large_to_clean"


# ------------------------------------------------------------------------------------ PDF


def pdf_with_metadata(*, with_photo: bool = False) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 200))
    pdf.docinfo["/Author"] = "Canary Person"
    pdf.docinfo["/Creator"] = "CanaryWriter"
    pdf.docinfo["/Producer"] = "CanaryProducer"
    pdf.docinfo["/Title"] = "Canary Title"
    pdf.docinfo["/CreationDate"] = "D:20240501101112+08'00'"
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:creator"] = ["Canary Person"]
        meta["xmp:CreatorTool"] = "CanaryXMPTool"
    if with_photo:
        photo = jpeg_with_exif()
        image = pikepdf.Stream(pdf, photo)
        image.Type = pikepdf.Name.XObject
        image.Subtype = pikepdf.Name.Image
        image.Width, image.Height = 64, 48
        image.ColorSpace = pikepdf.Name.DeviceRGB
        image.BitsPerComponent = 8
        image.Filter = pikepdf.Name.DCTDecode
        pdf.pages[0].Resources = pikepdf.Dictionary(
            XObject=pikepdf.Dictionary(Im0=pdf.make_indirect(image))
        )
        pdf.pages[0].Contents = pdf.make_stream(b"q 64 0 0 48 10 10 cm /Im0 Do Q")
    buf = io.BytesIO()
    pdf.save(buf, compress_streams=False)
    return buf.getvalue()


def test_pdf_info_and_xmp_removed() -> None:
    source = pdf_with_metadata(with_photo=True)
    assert b"Canary Person" in source and b"CanaryCam" in source

    report, out = run_clean(source)

    assert report.kind == sanitize.PDF and not report.uncleaned
    assert {"document_author", "document_info", "xmp", "document_id",
            "embedded_image_metadata"} <= set(report.removed)
    assert b"Canary" not in out
    reader = pypdf.PdfReader(io.BytesIO(out))
    assert not reader.metadata
    assert reader.xmp_metadata is None
    assert len(reader.pages) == 1
    with pikepdf.open(io.BytesIO(out)) as pdf:
        assert "/Info" not in pdf.trailer and "/Metadata" not in pdf.Root
        image = pdf.pages[0].Resources.XObject.Im0
        assert image.read_raw_bytes()[:2] == b"\xff\xd8"
        with pikepdf.open(io.BytesIO(source)) as original:
            assert pdf.trailer.ID[0] != original.trailer.ID[0]
        with Image.open(io.BytesIO(image.read_raw_bytes())) as im:
            assert im.size == (64, 48) and not im.getexif()


def test_encrypted_pdf_is_corrupt() -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    buf = io.BytesIO()
    pdf.save(buf, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    with pytest.raises(UploadRejected) as info:
        run_clean(buf.getvalue())
    assert info.value.code == "corrupt" and "encrypted" in info.value.detail


def test_restrictions_only_pdf_is_cleaned() -> None:
    """Owner-password-only PDFs open without a password: clean them, don't refuse them."""
    with pikepdf.open(io.BytesIO(pdf_with_metadata())) as pdf:
        buf = io.BytesIO()
        pdf.save(buf, encryption=pikepdf.Encryption(user="", owner="owner"))
    report, out = run_clean(buf.getvalue())
    assert "document_author" in report.removed
    with pikepdf.open(io.BytesIO(out)) as cleaned:
        assert not cleaned.is_encrypted and "/Info" not in cleaned.trailer
        assert "/Metadata" not in cleaned.Root


def test_broken_pdf_is_corrupt() -> None:
    assert rejected(b"%PDF-1.7\n" + os.urandom(3000)) == "corrupt"


def test_pdf_over_memory_limit() -> None:
    assert rejected(pdf_with_metadata(), max_in_memory=100) == "too_large_to_clean"


# --------------------------------------------------------------------------------- Office

CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Default Extension="jpeg" ContentType="image/jpeg"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/>'
    b'<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
    b'package.core-properties+xml"/>'
    b'<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.extended-properties+xml"/>'
    b'<Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.custom-properties+xml"/>'
    b"</Types>"
)
ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/>'
    b'<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
    b'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
    b'<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/extended-properties" Target="docProps/app.xml"/>'
    b'<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/custom-properties" Target="docProps/custom.xml"/>'
    b"</Relationships>"
)
DOCUMENT = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>The factory dumps waste at night.</w:t></w:r></w:p></w:body>"
    b"</w:document>"
)
CORE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    b'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'xmlns:dcterms="http://purl.org/dc/terms/" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    b"<dc:title>Canary Title</dc:title><dc:creator>Canary Person</dc:creator>"
    b"<cp:lastModifiedBy>Canary Editor</cp:lastModifiedBy>"
    b'<dcterms:created xsi:type="dcterms:W3CDTF">2024-05-01T10:11:12Z</dcterms:created>'
    b"</cp:coreProperties>"
)
APP = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'extended-properties"><Template>C:\\Users\\canary\\Normal.dotm</Template>'
    b"<Company>CanaryCorp</Company><Manager>Canary Boss</Manager>"
    b"<Application>Microsoft Office Word</Application><AppVersion>16.0000</AppVersion>"
    b"</Properties>"
)
CUSTOM = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'custom-properties"><property name="Owner">CanaryOwner</property></Properties>'
)


def build_docx(extra: dict[str, bytes] | None = None, *, streaming: bool = False) -> bytes:
    parts = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "word/document.xml": DOCUMENT,
        "docProps/core.xml": CORE,
        "docProps/app.xml": APP,
        "docProps/custom.xml": CUSTOM,
        **(extra or {}),
    }
    buf = io.BytesIO()
    target = CountingSinkBuffer(buf) if streaming else buf
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 1, 10, 11, 12))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


class CountingSinkBuffer:
    """Unseekable wrapper, so zipfile writes data descriptors like streaming writers."""

    def __init__(self, buf: io.BytesIO) -> None:
        self._buf = buf

    def write(self, data: bytes) -> int:
        return self._buf.write(data)

    def flush(self) -> None:
        pass


def zip_texts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def test_docx_properties_removed_document_unchanged() -> None:
    photo = jpeg_with_exif(orientation=6, image=noisy((40, 20)))
    source = build_docx({"word/media/image1.jpeg": photo})
    assert sniff(source[:8192]) == sanitize.DOCX
    assert sniff_file(io.BytesIO(source)) == sanitize.DOCX

    report, out = run_clean(source)

    assert report.kind == sanitize.DOCX and not report.uncleaned
    assert {"document_author", "document_info", "custom_properties",
            "embedded_image_metadata", "archive_timestamps"} <= set(report.removed)
    parts = zip_texts(out)
    assert parts["word/document.xml"] == DOCUMENT
    assert "docProps/custom.xml" not in parts
    assert b"custom.xml" not in parts["_rels/.rels"]
    assert b"custom.xml" not in parts["[Content_Types].xml"]
    assert b"core.xml" in parts["_rels/.rels"] and b"document.xml" in parts["_rels/.rels"]
    for name, data in parts.items():
        for canary in (b"Canary", b"canary", b"Company", b"Manager", b"AppVersion",
                       b"2024"):
            assert canary not in data, (name, canary)
    # the embedded photo keeps its pixels and orientation, loses EXIF/XMP/comment
    with Image.open(io.BytesIO(parts["word/media/image1.jpeg"])) as cleaned, Image.open(
        io.BytesIO(photo)
    ) as original:
        assert cleaned.tobytes() == original.tobytes()
        assert dict(cleaned.getexif()) == {0x0112: 6}
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
    # the result is itself acceptable input
    assert sniff_file(io.BytesIO(out)) == sanitize.DOCX


def test_streamed_docx_is_sniffed_from_head() -> None:
    """Streaming writers (Apache POI, etc.) put sizes in data descriptors."""
    source = build_docx(streaming=True)
    with zipfile.ZipFile(io.BytesIO(source)) as zf:
        assert zf.infolist()[0].flag_bits & 0x08
    assert sniff(source[:8192]) == sanitize.DOCX
    report, out = run_clean(source)
    assert b"Canary Person" not in b"".join(zip_texts(out).values())
    assert report.kind == sanitize.DOCX


def test_docx_from_rewind_only_source() -> None:
    source = build_docx()
    sink = io.BytesIO()
    report = clean(RewindOnly(source), sanitize.DOCX, keep_location=False,
                   max_in_memory=10 * MB, sink=sink)
    assert report.size == len(sink.getvalue())
    assert b"Canary Person" not in b"".join(zip_texts(sink.getvalue()).values())


def test_zip_bomb_ratio_rejected() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("word/document.xml", DOCUMENT)
        with zf.open("word/media/bomb.bin", "w") as entry:
            for _ in range(20):
                entry.write(bytes(MB))
    with pytest.raises(UploadRejected) as info:
        run_clean(buf.getvalue(), max_in_memory=50 * MB)
    assert info.value.code == "corrupt" and "zip bomb" in info.value.detail


def test_zip_bomb_total_size_rejected() -> None:
    source = build_docx({"word/media/noise.bin": os.urandom(2 * MB)})
    with pytest.raises(UploadRejected) as info:
        run_clean(source, max_in_memory=100_000)
    assert info.value.code == "corrupt" and "zip bomb" in info.value.detail


def test_zip_bomb_entry_count_rejected() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("word/document.xml", DOCUMENT)
        for i in range(10_001):
            zf.writestr(f"word/x{i}", b"")
    with pytest.raises(UploadRejected) as info:
        run_clean(buf.getvalue())
    assert info.value.code == "corrupt" and "zip bomb" in info.value.detail


def test_plain_zip_not_allowed() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes/readme.txt", b"hello")
        zf.writestr("photo.jpg", jpeg_with_exif())
    assert rejected(buf.getvalue()) == "type_not_allowed"
    with pytest.raises(UploadRejected) as info:
        sniff_file(io.BytesIO(buf.getvalue()))
    assert info.value.code == "type_not_allowed"


def test_zip_with_word_folder_but_no_content_types_not_allowed() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("word/document.xml", DOCUMENT)
    data = buf.getvalue()
    kind = sniff(data)  # provisional from the head...
    assert kind == sanitize.DOCX
    with pytest.raises(UploadRejected) as info:  # ...but clean checks the directory
        clean(io.BytesIO(data), kind, keep_location=False, max_in_memory=MB,
              sink=io.BytesIO())
    assert info.value.code == "type_not_allowed"


def test_macro_enabled_docx_not_allowed() -> None:
    macro_types = CONTENT_TYPES.replace(
        b"officedocument.wordprocessingml.document.main+xml",
        b"ms-word.document.macroEnabled.main+xml",
    )
    source = build_docx({"[Content_Types].xml": macro_types})
    assert rejected(source) == "type_not_allowed"


def test_broken_docx_is_corrupt() -> None:
    source = build_docx()
    with pytest.raises(UploadRejected) as info:
        clean(io.BytesIO(source[:-40]), sanitize.DOCX, keep_location=False,
              max_in_memory=MB, sink=io.BytesIO())
    assert info.value.code == "corrupt"


# --------------------------------------------------------------------- legacy OLE (.doc)


def ole_file(stream_name: str, *, pad_sectors: int = 0) -> bytes:
    """Minimal compound file: header, FAT at sector 0, directory at sector 1."""
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 0x2C, 1)  # one FAT sector
    struct.pack_into("<I", header, 0x30, 1 + pad_sectors)  # first directory sector
    struct.pack_into("<I", header, 0x38, 4096)
    struct.pack_into("<I", header, 0x3C, 0xFFFFFFFE)
    struct.pack_into("<I", header, 0x44, 0xFFFFFFFE)
    difat = [0] + [0xFFFFFFFF] * 108
    struct.pack_into("<109I", header, 0x4C, *difat)
    fat = [0xFFFFFFFD] + [0xFFFFFFFF] * pad_sectors + [0xFFFFFFFE]
    fat += [0xFFFFFFFF] * (128 - len(fat))
    fat_sector = struct.pack("<128I", *fat)

    def entry(name: str, kind: int) -> bytes:
        raw = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        raw[: len(encoded)] = encoded
        struct.pack_into("<HB", raw, 0x40, len(encoded), kind)
        return bytes(raw)

    directory = entry("Root Entry", 5) + entry(stream_name, 2) + bytes(256)
    padding = bytes(512 * pad_sectors)
    return bytes(header) + fat_sector + padding + directory + b"document body" * 100


def test_legacy_doc_passes_through_uncleaned() -> None:
    source = ole_file("WordDocument")
    assert sniff(source) == sanitize.DOC
    sink = CountingSink()
    report = clean(RewindOnly(source), sanitize.DOC, keep_location=False,
                   max_in_memory=MB, sink=sink)
    assert report.uncleaned and report.removed == () and report.size == len(source)
    assert report.kind.extension == "doc" and not report.kind.cleanable


def test_legacy_ole_kinds() -> None:
    assert sniff(ole_file("Workbook")) == sanitize.XLS
    assert sniff(ole_file("PowerPoint Document")) == sanitize.PPT
    far_away = ole_file("WordDocument", pad_sectors=40)  # directory beyond the head
    assert sniff(far_away[:8192]) == sanitize.OLE_OFFICE
    with pytest.raises(UploadRejected) as info:
        sniff(ole_file("EncryptedPackage"))
    assert info.value.code == "type_not_allowed"
    with pytest.raises(UploadRejected) as info:
        sniff(ole_file("\u4840\u3b3f\u43f2"))  # MSI-encoded stream name
    assert info.value.code == "type_not_allowed"


# ---------------------------------------------------------------------- video and audio


def test_large_video_is_refused_without_filling_memory() -> None:
    """Video is cleaned by ffmpeg (tests/unit/test_media.py), never passed through: a fake
    MP4 of zeros is refused as damaged, one above the cleaning cap as too large, and
    neither is held in Python's memory nor written to the sink."""
    for size, limit, code in ((40 * MB, 50 * MB, "corrupt"),
                              (200 * MB, 50 * MB, "too_large_to_clean")):
        sink = CountingSink()
        source = FakeVideo(size)
        kind = sniff(source.read(8192))
        assert kind == sanitize.MP4 and kind.family == "video" and kind.cleanable
        tracemalloc.start()
        try:
            with pytest.raises(UploadRejected) as info:
                clean(source, kind, keep_location=True, max_in_memory=limit, sink=sink)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert info.value.code == code
        assert peak < 20 * MB, peak
        assert sink.size == 0


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (struct.pack(">I", 20) + b"ftypmp42\x00\x00\x00\x00mp42", sanitize.MP4),
        (struct.pack(">I", 20) + b"ftypqt  \x00\x00\x00\x00qt  ", sanitize.MOV),
        (struct.pack(">I", 20) + b"ftyp3gp4\x00\x00\x00\x003gp4", sanitize.THREE_GP),
        (struct.pack(">I", 20) + b"ftypM4A \x00\x00\x00\x00M4A ", sanitize.M4A),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", sanitize.WEBM),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", sanitize.MKV),
        (b"RIFF\x00\x10\x00\x00AVI LIST", sanitize.AVI),
        (b"RIFF\x00\x10\x00\x00WAVEfmt ", sanitize.WAV),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", sanitize.MP3),
        (b"\xff\xfb\x90\x64" + bytes(100), sanitize.MP3),
        (b"#!AMR\n" + b"\x3c" * 40, sanitize.AMR),
        (b"OggS\x00\x02" + bytes(30) + b"\x01vorbis", sanitize.OGG),
        (b"fLaC\x00\x00\x00\x22", sanitize.FLAC),
    ],
)
def test_sniff_media(head: bytes, expected: FileKind) -> None:
    assert sniff(head) == expected
    assert expected.family not in UNCLEANABLE_NOTICE_FAMILIES and expected.cleanable


# ------------------------------------------------------------------------ text and junk


def test_plain_text_passes_through() -> None:
    source = "Rapport: l'usine déverse la nuit. 工厂夜间排污。\n".encode() * 1000
    report, out = run_clean(source)
    assert report.kind == sanitize.TEXT and out == source
    assert not report.uncleaned and report.removed == ()


def test_text_with_binary_later_rejected() -> None:
    source = b"plain words\n" * 1000 + b"\xff\xfe\x00binary"
    assert sniff(source[:8192]) == sanitize.TEXT
    assert rejected(source) == "type_not_allowed"


@pytest.mark.parametrize(
    "data",
    [
        b"\x7fELF\x02\x01\x01\x00" + bytes(120),
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(100),
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script/></svg>',
        b"  <svg onload=alert(1)>",
        b"Dear staff,\n<script>fetch('//evil')</script>",
        b"{\\rtf1\\ansi{\\info{\\author Canary}}}",
        b"%!PS-Adobe-3.0\n",
        b"\x1f\x8b\x08\x00" + bytes(50),  # gzip
        b"Rar!\x1a\x07\x01\x00" + bytes(50),
        b"7z\xbc\xaf\x27\x1c" + bytes(50),
        b"II*\x00\x08\x00\x00\x00" + bytes(50),  # TIFF (full EXIF container)
        struct.pack(">I", 24) + b"ftypheic\x00\x00\x00\x00mif1heic",  # HEIC photo
        b"RIFF\x00\x00\x00\x00CDXA",
    ],
)
def test_disallowed_types(data: bytes) -> None:
    with pytest.raises(UploadRejected) as info:
        sniff(data)
    assert info.value.code == "type_not_allowed"
    assert rejected(data) == "type_not_allowed"


def test_empty_file() -> None:
    with pytest.raises(UploadRejected) as info:
        sniff(b"")
    assert info.value.code == "empty"
    with pytest.raises(UploadRejected) as info:
        clean(io.BytesIO(b""), sanitize.TEXT, keep_location=False, max_in_memory=MB,
              sink=io.BytesIO())
    assert info.value.code == "empty"


def test_kind_must_match_content() -> None:
    with pytest.raises(UploadRejected) as info:
        clean(io.BytesIO(jpeg_with_exif()), sanitize.PNG, keep_location=False,
              max_in_memory=MB, sink=io.BytesIO())
    assert info.value.code == "type_not_allowed"
    forged = FileKind("image", "image/svg+xml", "svg", True)
    with pytest.raises(UploadRejected) as info:
        clean(io.BytesIO(b"<svg/>"), forged, keep_location=False, max_in_memory=MB,
              sink=io.BytesIO())
    assert info.value.code == "type_not_allowed"


# ---------------------------------------------------------------------------- public API


def test_public_constants() -> None:
    assert UNCLEANABLE_NOTICE_FAMILIES == ()
    assert describe_uncleanable() == ("legacy_office_metadata",)
    assert {k.family for k in ALLOWED} == {"image", "video", "audio", "pdf", "office", "text"}
    assert all(k.cleanable for k in ALLOWED if k.family in ("video", "audio"))
    assert len({(k.media_type, k.extension) for k in ALLOWED}) == len(ALLOWED)
    with pytest.raises(ValueError, match="unknown rejection code"):
        UploadRejected("nope")
    exc = UploadRejected("corrupt", "why")
    assert exc.code == "corrupt" and exc.detail == "why"
