"""Upload sanitising: sniff the real type of an upload and strip identifying metadata.

Why this module exists
----------------------
A whistleblower's evidence file frequently identifies the whistleblower even when its
visible content does not:

* photos carry EXIF: GPS coordinates of where the picture was taken (often the
  reporter's home or desk), the phone make/model/serial number, owner name, software;
* office documents and PDFs carry author / last-modified-by names, company, template
  paths (``C:\\Users\\<name>\\...``), editing times and unique document IDs that let an
  employer match the upload with the copy on the reporter's own machine;
* zip-based documents carry per-entry timestamps and stale thumbnails.

The type of an upload is decided from its *content* only (``sniff`` / ``sniff_file``);
the filename and the client's ``Content-Type`` are never trusted, because both are chosen
by the uploader and an attacker could otherwise smuggle HTML, SVG (scripts) or
executables to staff.

Usage::

    kind = sniff_file(upload)                      # raises UploadRejected
    report = clean(upload, kind, keep_location=False,
                   max_in_memory=50 * 1024 * 1024, sink=encrypting_writer)

If ``clean`` raises, whatever was already written to ``sink`` is incomplete and must be
discarded. This module deliberately does not import Flask.
"""

from __future__ import annotations

import codecs
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol
from xml.etree import ElementTree

import pikepdf
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from portal.intake.sanitize import media

__all__ = [
    "ALLOWED",
    "CHUNK_SIZE",
    "MAX_PIXELS",
    "UNCLEANABLE_NOTICE_FAMILIES",
    "CleanReport",
    "FileKind",
    "UploadRejected",
    "WritableSink",
    "clean",
    "describe_uncleanable",
    "sniff",
    "sniff_file",
    "strip_jpeg_metadata",
]

#: Largest piece ever read from ``source`` at once when streaming (1 MiB).
CHUNK_SIZE = 1024 * 1024
#: Number of leading bytes ``sniff_file`` hands to ``sniff``.
HEAD_SIZE = 8192
#: Images with more pixels than this (summed over all frames) are rejected: decoding them
#: would need hundreds of MB of RAM (classic "decompression bomb").
MAX_PIXELS = 60_000_000
#: Zip-bomb guards for Office Open XML packages.
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_RATIO = 100
#: Entries smaller than this are exempt from the ratio check: small XML parts routinely
#: compress better than 100:1 and cannot hurt us.
ZIP_RATIO_FLOOR = 1024 * 1024
#: XML parts we parse/rewrite in memory are capped at this size.
MAX_XML_PART = 4 * 1024 * 1024

#: Families whose files are stored with their metadata (none since ffmpeg cleans video and
#: audio; legacy Office is a kind of the 'office' family, see ``describe_uncleanable``).
UNCLEANABLE_NOTICE_FAMILIES: tuple[str, ...] = ()

_REJECT_CODES = frozenset(
    {"type_not_allowed", "corrupt", "too_many_pixels", "too_large_to_clean", "empty",
     "cannot_clean"}
)


class UploadRejected(Exception):
    """The upload is refused.

    ``code`` is a stable machine string for the UI/API, one of ``'type_not_allowed'``,
    ``'corrupt'``, ``'too_many_pixels'``, ``'too_large_to_clean'``, ``'empty'``,
    ``'cannot_clean'`` (a video or audio file whose metadata could not be removed for sure:
    ffmpeg missing or too slow, or its result failed the check; never stored as it is).
    ``detail`` is a human-readable English explanation for logs (do not log it together
    with anything identifying the reporter).
    """

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in _REJECT_CODES:
            raise ValueError(f"unknown rejection code {code!r}")
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class FileKind:
    """A whitelisted upload type, as determined from file content.

    ``cleanable`` is False where we cannot remove embedded metadata (legacy OLE
    ``.doc/.xls/.ppt``); such files are stored unchanged and the reporter must be warned
    before uploading (see ``describe_uncleanable``). Video and audio are cleaned by
    ffmpeg (portal/intake/sanitize/media.py) or refused.
    """

    family: str  # 'image' | 'video' | 'audio' | 'pdf' | 'office' | 'text'
    media_type: str
    extension: str
    cleanable: bool


@dataclass(frozen=True)
class CleanReport:
    """Outcome of ``clean``.

    ``size``: bytes written to the sink. ``removed``: categories of metadata found and
    removed (e.g. 'exif', 'gps', 'xmp', 'document_author'). ``kept``: identifying
    metadata kept on purpose at the reporter's request ('gps', 'datetime').
    ``uncleaned``: True when the bytes were passed through unchanged although the
    format may contain metadata (legacy Office).
    Colour profiles (ICC) are always kept: they describe colour, not identity, and are
    not listed in ``kept``.
    """

    kind: FileKind
    size: int
    removed: tuple[str, ...]
    kept: tuple[str, ...]
    uncleaned: bool


class WritableSink(Protocol):
    """Anything with ``write(bytes)``; ``flush()`` is called if present."""

    def write(self, data: bytes, /) -> object: ...


# --------------------------------------------------------------------------- whitelist

JPEG = FileKind("image", "image/jpeg", "jpg", True)
PNG = FileKind("image", "image/png", "png", True)
WEBP = FileKind("image", "image/webp", "webp", True)
GIF = FileKind("image", "image/gif", "gif", True)
PDF = FileKind("pdf", "application/pdf", "pdf", True)
DOCX = FileKind(
    "office",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "docx",
    True,
)
XLSX = FileKind(
    "office", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", True
)
PPTX = FileKind(
    "office",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "pptx",
    True,
)
DOC = FileKind("office", "application/msword", "doc", False)
XLS = FileKind("office", "application/vnd.ms-excel", "xls", False)
PPT = FileKind("office", "application/vnd.ms-powerpoint", "ppt", False)
#: An OLE2 compound file whose application we cannot tell from its first bytes.
OLE_OFFICE = FileKind("office", "application/x-ole-storage", "ole", False)
MP4 = FileKind("video", "video/mp4", "mp4", True)
MOV = FileKind("video", "video/quicktime", "mov", True)
THREE_GP = FileKind("video", "video/3gpp", "3gp", True)
THREE_G2 = FileKind("video", "video/3gpp2", "3g2", True)
WEBM = FileKind("video", "video/webm", "webm", True)
MKV = FileKind("video", "video/x-matroska", "mkv", True)
AVI = FileKind("video", "video/x-msvideo", "avi", True)
OGV = FileKind("video", "video/ogg", "ogv", True)
MP3 = FileKind("audio", "audio/mpeg", "mp3", True)
AAC = FileKind("audio", "audio/aac", "aac", True)
M4A = FileKind("audio", "audio/mp4", "m4a", True)
WAV = FileKind("audio", "audio/wav", "wav", True)
AMR = FileKind("audio", "audio/amr", "amr", True)
AMR_WB = FileKind("audio", "audio/amr-wb", "awb", True)
OGG = FileKind("audio", "audio/ogg", "ogg", True)
FLAC = FileKind("audio", "audio/flac", "flac", True)
TEXT = FileKind("text", "text/plain", "txt", True)

#: The whitelist. Anything ``sniff`` cannot map onto one of these is rejected.
ALLOWED: tuple[FileKind, ...] = (
    JPEG, PNG, WEBP, GIF,
    PDF,
    DOCX, XLSX, PPTX, DOC, XLS, PPT, OLE_OFFICE,
    MP4, MOV, THREE_GP, THREE_G2, WEBM, MKV, AVI, OGV,
    MP3, AAC, M4A, WAV, AMR, AMR_WB, OGG, FLAC,
    TEXT,
)  # fmt: skip


def describe_uncleanable() -> tuple[str, ...]:
    """Stable codes for metadata we cannot remove, so the UI can warn *before* upload.

    Legacy ``.doc/.xls/.ppt`` files contain author names; we store them unchanged. Videos
    and audio recordings are cleaned (portal/intake/sanitize/media.py) or refused, never stored as
    sent.
    """
    return ("legacy_office_metadata",)


def _reject_type(detail: str) -> UploadRejected:
    return UploadRejected("type_not_allowed", detail)


# ------------------------------------------------------------------------------ sniffing

_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
     b"mif1", b"msf1", b"mif2", b"avif", b"avis", b"avio"}
)  # fmt: skip
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
     b"mp41", b"mp42", b"mp71", b"avc1", b"dash", b"mmp4", b"msnv", b"MSNV", b"M4V ",
     b"M4VH", b"M4VP", b"XAVC", b"f4v ", b"NDAS", b"CAEP", b"MiPr", b"hvc1"}
)  # fmt: skip
_MARKUP_HINTS = (
    b"<script", b"<html", b"<svg", b"<!doctype", b"<?xml", b"<iframe", b"<body",
    b"<head", b"<object", b"<embed", b"<meta", b"<xsl", b"<math",
)  # fmt: skip


def _sniff_iso_bmff(head: bytes) -> FileKind:
    """mp4/mov/3gp/m4a: an ``ftyp`` box whose brands say what the file is."""
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    compatible = [head[i : i + 4] for i in range(16, min(box_size, len(head), 256) - 3, 4)]
    brands = [major, *compatible]
    if major in _HEIF_BRANDS or (major not in _MP4_BRANDS and _HEIF_BRANDS & set(compatible)):
        raise _reject_type("HEIC/AVIF images are not supported; please send JPEG or PNG")
    if major in (b"M4A ", b"M4B "):
        return M4A
    if major == b"qt  ":
        return MOV
    if major.startswith(b"3g2"):
        return THREE_G2
    if major[:3] in (b"3gp", b"3gg", b"3gs", b"3ge", b"3gr"):
        return THREE_GP
    if any(b in _MP4_BRANDS for b in brands):
        return MP4
    if b"qt  " in compatible:
        return MOV
    raise _reject_type(f"unsupported ISO media brand {major!r}")


def _is_mpeg_audio_frame(head: bytes) -> bool:
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 3
    layer = (head[1] >> 1) & 3
    bitrate = head[2] >> 4
    rate = (head[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def _is_adts_frame(head: bytes) -> bool:
    return len(head) >= 7 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0 and (
        (head[2] >> 2) & 0x0F
    ) < 13


def _zip_local_entries(head: bytes) -> Iterator[tuple[str, bytes | None]]:
    """Walk the ZIP local file headers found in ``head``.

    Yields (name, data) where data is the (possibly partial) uncompressed content as far
    as ``head`` reaches, or None when it cannot be decoded. Entries whose sizes are only
    given in a trailing data descriptor (streaming writers such as Apache POI) are
    followed by letting the deflate stream find its own end.
    """
    pos = 0
    while pos + 30 <= len(head) and head[pos : pos + 4] == b"PK\x03\x04":
        flags, method = struct.unpack_from("<HH", head, pos + 6)
        csize = struct.unpack_from("<I", head, pos + 18)[0]
        name_len, extra_len = struct.unpack_from("<HH", head, pos + 26)
        name_end = pos + 30 + name_len
        if name_end > len(head):
            return
        name = head[pos + 30 : name_end].decode("utf-8" if flags & 0x800 else "cp437", "replace")
        start = name_end + extra_len
        sized = not (flags & 0x08 and csize == 0) and csize != 0xFFFFFFFF
        if method == zipfile.ZIP_DEFLATED:
            inflater = zlib.decompressobj(-15)
            try:
                data = inflater.decompress(head[start:], MAX_XML_PART)
            except zlib.error:
                yield name, None
                return
            yield name, data
            if sized:
                end = start + csize
            elif inflater.eof:
                end = len(head) - len(inflater.unused_data)
            else:
                return
        elif method == zipfile.ZIP_STORED and sized:
            end = start + csize
            yield name, head[start:end]
        else:
            yield name, None
            if not sized:
                return
            end = start + csize
        pos = end
        if flags & 0x08:  # skip the data descriptor (with/without signature, zip64 or not)
            for skip in (16, 12, 24, 20):
                if head[pos + skip : pos + skip + 4] in (b"PK\x03\x04", b"PK\x01\x02"):
                    pos += skip
                    break
            else:
                return


_OOXML_MAIN_TYPES = (
    (b"wordprocessingml.document.main+xml", DOCX),
    (b"spreadsheetml.sheet.main+xml", XLSX),
    (b"presentationml.presentation.main+xml", PPTX),
)
_OOXML_REJECT_TYPES = (b"macroenabled", b"template.main+xml", b"slideshow.main+xml")


def _classify_ooxml(content_types: bytes | None, names: Iterable[str]) -> FileKind | None:
    """Decide docx/xlsx/pptx from [Content_Types].xml, falling back to folder names."""
    if content_types is not None:
        lowered = content_types.lower()
        if any(marker in lowered for marker in _OOXML_REJECT_TYPES):
            raise _reject_type("macro-enabled or template Office files are not allowed")
        for marker, kind in _OOXML_MAIN_TYPES:
            if marker in content_types:
                return kind
    prefixes = {n.split("/", 1)[0] for n in names if "/" in n}
    found = [k for p, k in (("word", DOCX), ("xl", XLSX), ("ppt", PPTX)) if p in prefixes]
    return found[0] if len(found) == 1 else None


def _sniff_zip_head(head: bytes) -> FileKind:
    """Provisional Office classification from the first local headers of a ZIP.

    ``clean`` re-checks the full central directory before trusting it."""
    names: list[str] = []
    content_types: bytes | None = None
    for name, data in _zip_local_entries(head):
        names.append(name)
        if name == "[Content_Types].xml":
            content_types = data
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise _reject_type("Office documents with macros are not allowed")
    package_hint = any(
        n in ("[Content_Types].xml", "_rels/.rels") or n.startswith("docProps/") for n in names
    )
    kind = _classify_ooxml(content_types, names)
    if kind is not None and (package_hint or content_types is not None):
        return kind
    if package_hint:
        raise _reject_type("cannot identify the Office document from its first bytes")
    raise _reject_type("zip archives are not allowed (only Office documents)")


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Well-known first bytes of the main stream when it starts in the first sector.
_OLE_SUBHEADERS = (
    (b"\xec\xa5\xc1\x00", DOC),  # Word FIB
    (b"\xec\xa5\xc2\x00", DOC),
    (b"\x09\x08\x10\x00\x00\x06\x05\x00", XLS),  # BIFF8 BOF (workbook globals)
    (b"\x09\x08\x08\x00\x00\x06\x05\x00", XLS),
    (b"\x00\x6e\x1e\xf0", PPT),
    (b"\x0f\x00\xe8\x03", PPT),
    (b"\xa0\x46\x1d\xf0", PPT),
)


def _classify_ole(stream_names: set[str]) -> FileKind | None:
    if "EncryptedPackage" in stream_names:
        raise _reject_type("password-protected Office documents cannot be accepted")
    if stream_names & {"Macros", "_VBA_PROJECT_CUR", "VBA", "_VBA_PROJECT"}:
        raise _reject_type("Office documents with macros are not allowed")
    if any("\u3800" <= ch <= "\u4840" for name in stream_names for ch in name):
        raise _reject_type("Windows installer packages are not allowed")  # MSI name encoding
    if "WordDocument" in stream_names:
        return DOC
    if stream_names & {"Workbook", "Book"}:
        return XLS
    if "PowerPoint Document" in stream_names:
        return PPT
    return None


def _sniff_ole_head(head: bytes) -> FileKind:
    """Legacy Office (OLE2 compound file) from its first bytes.

    Reads the directory sectors that lie inside ``head`` (following the allocation
    table as far as it is visible), else recognises the main stream's signature in the
    first sector. A compound file we cannot attribute is still accepted as the generic
    ``OLE_OFFICE`` kind: it is stored unchanged and offered to staff under a
    non-executable extension.
    """
    if len(head) < 512 or head[0x1C:0x1E] != b"\xfe\xff":
        raise UploadRejected("corrupt", "malformed OLE header")
    shift = struct.unpack_from("<H", head, 0x1E)[0]
    if shift not in (9, 12):
        raise UploadRejected("corrupt", "malformed OLE sector size")
    ssize = 1 << shift
    per_fat = ssize // 4
    difat = struct.unpack_from("<109I", head, 0x4C)
    sector = struct.unpack_from("<I", head, 0x30)[0]
    names: set[str] = set()
    seen: set[int] = set()
    while sector < 0xFFFFFFFA and sector not in seen and (sector + 2) * ssize <= len(head):
        seen.add(sector)
        data = head[(sector + 1) * ssize : (sector + 2) * ssize]
        for off in range(0, ssize, 128):
            name_len = struct.unpack_from("<H", data, off + 0x40)[0]
            if 2 <= name_len <= 64 and name_len % 2 == 0 and data[off + 0x42] in (1, 2, 5):
                names.add(data[off : off + name_len - 2].decode("utf-16-le", "replace"))
        fat_index = sector // per_fat
        if fat_index >= 109 or difat[fat_index] >= 0xFFFFFFFA:
            break
        entry = (difat[fat_index] + 1) * ssize + (sector % per_fat) * 4
        if entry + 4 > len(head):
            break
        sector = struct.unpack_from("<I", head, entry)[0]
    kind = _classify_ole(names)
    if kind is not None:
        return kind
    first_sector = head[ssize : ssize + 8]
    for signature, candidate in _OLE_SUBHEADERS:
        if first_sector.startswith(signature):
            return candidate
    return OLE_OFFICE


def _sniff_text(head: bytes) -> FileKind:
    if b"\x00" in head:
        raise _reject_type("unrecognised binary format")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        raise _reject_type("unrecognised binary format") from None
    stripped = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if stripped.startswith((b"{\\rtf", b"%!")):
        raise _reject_type("RTF/PostScript files are not allowed")
    if stripped.startswith(b"<") or any(hint in stripped for hint in _MARKUP_HINTS):
        raise _reject_type("HTML/XML/SVG markup is not allowed")
    return TEXT


def sniff(head: bytes) -> FileKind:
    """Identify an upload from its first bytes (pass at least 4096, ideally ``HEAD_SIZE``).

    Never trust the filename or the client-declared Content-Type: both are chosen by the
    uploader. Raises ``UploadRejected('empty')`` for no bytes and
    ``UploadRejected('type_not_allowed')`` for anything outside ``ALLOWED``.

    Office Open XML is classified provisionally from the first ZIP entries; ``clean``
    re-checks the whole archive directory before writing anything.
    """
    if not head:
        raise UploadRejected("empty", "the file is empty")
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and len(head) >= 12:
        riff = {b"WEBP": WEBP, b"WAVE": WAV, b"AVI ": AVI}.get(head[8:12])
        if riff is None:
            raise _reject_type(f"unsupported RIFF type {head[8:12]!r}")
        return riff
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip_head(head)
    if head.startswith(_OLE_MAGIC):
        return _sniff_ole_head(head)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    if len(head) >= 8 and head[4:8] in (b"moov", b"wide", b"mdat", b"pnot"):
        return MOV
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return WEBM
        if b"matroska" in head[:64]:
            return MKV
        raise _reject_type("unsupported EBML document type")
    if head.startswith(b"OggS"):
        return OGV if b"\x80theora" in head[:512] else OGG
    if head.startswith(b"#!AMR-WB\n"):
        return AMR_WB
    if head.startswith(b"#!AMR\n"):
        return AMR
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"ID3") and len(head) > 3 and head[3] < 0xFF:
        return MP3
    if _is_mpeg_audio_frame(head):
        return MP3
    if _is_adts_frame(head):
        return AAC
    return _sniff_text(head)


def _read_head(source: BinaryIO) -> bytes:
    """First ``HEAD_SIZE`` bytes; rewinds to 0 before and after (the only seek we use on
    pass-through sources, which may be rewind-only encrypted spools)."""
    source.seek(0)
    head = source.read(HEAD_SIZE)
    source.seek(0)
    return head


def sniff_file(source: BinaryIO) -> FileKind:
    """``sniff`` for a fully seekable file, with ZIPs classified by their central directory.

    Leaves ``source`` at 0. Use this when you have a real file or BytesIO; with a
    rewind-only stream use ``sniff(head)``.
    """
    head = _read_head(source)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(source) as zf:
                return _classify_zip(zf)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise UploadRejected("corrupt", f"broken zip archive: {exc}") from None
        finally:
            source.seek(0)
    return sniff(head)


def _classify_zip(zf: zipfile.ZipFile) -> FileKind:
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise UploadRejected("corrupt", "zip bomb: too many entries")
    names = [i.filename for i in infos]
    if "[Content_Types].xml" not in names:
        raise _reject_type("zip archives are not allowed (only Office documents)")
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise _reject_type("Office documents with macros are not allowed")
    try:
        content_types = _utf8_xml(_read_part(zf, zf.getinfo("[Content_Types].xml")))
    except ElementTree.ParseError as exc:
        raise UploadRejected("corrupt", f"[Content_Types].xml is not valid XML: {exc}") from None
    kind = _classify_ooxml(content_types, names)
    if kind is None:
        raise _reject_type("zip is not a Word/Excel/PowerPoint document")
    return kind


# ------------------------------------------------------------------------------ helpers


class _CountingWriter:
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


def _copy_chunks(source: BinaryIO, out: _CountingWriter) -> None:
    while chunk := source.read(CHUNK_SIZE):
        out.write(chunk)


def _clean_media(
    source: BinaryIO, kind: FileKind, keep_location: bool, max_in_memory: int,
    out: _CountingWriter,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Video and audio through ffmpeg and ffprobe (portal/intake/sanitize/media.py); the verified
    copy
    must still be the same kind, and only then is anything written to ``out``."""
    try:
        with media.clean_media(source, kind.extension, kind.family,
                               keep_location=keep_location, max_bytes=max_in_memory) as cleaned:
            if sniff(cleaned.head) != kind:
                raise UploadRejected("cannot_clean", "the cleaned copy changed its type")
            for chunk in cleaned.chunks():
                out.write(chunk)
            return cleaned.removed, cleaned.kept
    except media.MediaError as exc:
        raise UploadRejected(exc.code, exc.detail) from None


def _copy_text(source: BinaryIO, out: _CountingWriter) -> None:
    """Pass text through, checking as we go that all of it is UTF-8 without NULs."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := source.read(CHUNK_SIZE):
            if b"\x00" in chunk:
                raise _reject_type("text file contains binary data")
            decoder.decode(chunk)
            out.write(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _reject_type("text file is not valid UTF-8") from None


def _read_bounded(source: BinaryIO, max_bytes: int, what: str) -> bytes:
    """Whole content for in-memory cleaners, refusing anything over ``max_bytes``."""
    source.seek(0)
    data = source.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UploadRejected("too_large_to_clean", f"{what} exceeds the in-memory limit")
    return data


def _random_access(source: BinaryIO, max_bytes: int) -> BinaryIO:
    """``source`` itself if it can seek anywhere, else an in-memory copy (bounded)."""
    try:
        source.seek(0, io.SEEK_END)
        source.seek(0)
    except (OSError, ValueError):  # io.UnsupportedOperation: e.g. a rewind-only spool
        return io.BytesIO(_read_bounded(source, max_bytes, "document"))
    return source


# ------------------------------------------------------------------------------- images

_PIL_FORMATS = {JPEG: ("JPEG", "MPO"), PNG: ("PNG",), WEBP: ("WEBP",), GIF: ("GIF",)}
_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003
_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_TAG_ORIENTATION = 0x0112
# Pillow info keys that are image data / colour, not identity.
_SAFE_INFO_KEYS = ("transparency", "icc_profile", "background")


def _image_metadata(im: Image.Image) -> tuple[Image.Exif, set[str]]:
    """Return the parsed EXIF and the categories of metadata present in ``im``."""
    found: set[str] = set()
    exif = im.getexif()
    info = im.info
    if exif or info.get("exif"):
        found.add("exif")
        if exif.get_ifd(_IFD_GPS):
            found.add("gps")
    if "xmp" in info or "XML:com.adobe.xmp" in info:
        found.add("xmp")
    if "photoshop" in info or "iptc" in info:
        found.add("iptc")
    if info.get("comment"):
        found.add("comment")
    text = getattr(im, "text", None)
    if text and set(text) - {"XML:com.adobe.xmp"}:
        found.add("text_chunks")
    return exif, found


def _location_exif(exif: Image.Exif) -> tuple[Image.Exif | None, tuple[str, ...]]:
    """Fresh EXIF holding only GPS and capture time (no device/owner/software tags)."""
    fresh = Image.Exif()
    kept: list[str] = []
    gps = {k: v for k, v in exif.get_ifd(_IFD_GPS).items() if isinstance(k, int) and k < 0x100}
    if gps:
        fresh.get_ifd(_IFD_GPS).update(gps)
        kept.append("gps")
    original = exif.get_ifd(_IFD_EXIF).get(_TAG_DATETIME_ORIGINAL) or exif.get(
        _TAG_DATETIME_ORIGINAL
    )
    stamp = exif.get(_TAG_DATETIME)
    if original:
        fresh.get_ifd(_IFD_EXIF)[_TAG_DATETIME_ORIGINAL] = original
    if stamp:
        fresh[_TAG_DATETIME] = stamp
    if original or stamp:
        kept.append("datetime")
    return (fresh if kept else None), tuple(kept)


def _clean_image(
    data: bytes, kind: FileKind, keep_location: bool, max_pixels: int
) -> tuple[bytes, tuple[str, ...], tuple[str, ...]]:
    """Decode, reorient and re-encode an image without any metadata.

    Re-encoding (rather than editing tags) is deliberate: it also drops maker notes,
    embedded thumbnails (which may show the uncropped original), trailers appended after
    the image data and anything a parser does not know about.
    """
    formats = _PIL_FORMATS[kind]
    limit = max_pixels
    if Image.MAX_IMAGE_PIXELS:
        limit = min(limit, int(Image.MAX_IMAGE_PIXELS))
    try:
        with Image.open(io.BytesIO(data), formats=list(formats)) as probe:
            if probe.width * probe.height > limit:
                raise UploadRejected("too_many_pixels", f"{probe.width}x{probe.height}")
            probe.verify()
        with Image.open(io.BytesIO(data), formats=list(formats)) as im:
            if im.format not in formats:
                raise _reject_type("image content does not match its detected type")
            n_frames = getattr(im, "n_frames", 1) if kind is not JPEG else 1
            if im.width * im.height * n_frames > limit:
                raise UploadRejected("too_many_pixels", f"{n_frames} frames")
            im.load()
            exif, found = _image_metadata(im)
            frames, durations = [], []
            for frame in ImageSequence.Iterator(im) if n_frames > 1 else [im]:
                frame.load()
                durations.append(frame.info.get("duration", 100))
                upright = ImageOps.exif_transpose(frame)
                upright.info = {k: frame.info[k] for k in _SAFE_INFO_KEYS if k in frame.info}
                frames.append(upright)
                if len(frames) >= n_frames:
                    break
            loop = im.info.get("loop", 0)
            lossless = kind is WEBP and b"VP8L" in data[:4096]
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected("too_many_pixels", str(exc)) from None
    except UnidentifiedImageError:
        raise UploadRejected("corrupt", "not a decodable image") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError) as exc:
        # Pillow reports malformed/truncated input through all of these.
        raise UploadRejected("corrupt", f"image could not be decoded: {exc}") from None

    kept: tuple[str, ...] = ()
    new_exif: Image.Exif | None = None
    if keep_location and kind is not GIF:  # GIF cannot carry EXIF
        new_exif, kept = _location_exif(exif)
    removed = tuple(sorted(c for c in found if c not in kept))

    params: dict[str, object] = {}
    first = frames[0]
    if "icc_profile" in first.info:
        params["icc_profile"] = first.info["icc_profile"]
    if new_exif is not None:
        params["exif"] = new_exif.tobytes()
    if kind is JPEG:
        params.update(quality=92)
        pil_format = "JPEG"
    elif kind is WEBP:
        params.update(quality=92, lossless=lossless)
        pil_format = "WEBP"
    else:
        pil_format = kind.extension.upper()
    if len(frames) > 1:
        params.update(save_all=True, append_images=frames[1:], duration=durations, loop=loop)
    buffer = io.BytesIO()
    try:
        first.save(buffer, format=pil_format, **params)
    except (OSError, ValueError) as exc:
        raise UploadRejected("corrupt", f"image could not be re-encoded: {exc}") from None
    return buffer.getvalue(), removed, kept


# -------------------------------------------------------------- embedded JPEG metadata


def _exif_orientation(tiff: bytes) -> int | None:
    try:
        order = {b"II": "<", b"MM": ">"}[tiff[:2]]
        offset = struct.unpack_from(order + "I", tiff, 4)[0]
        count = struct.unpack_from(order + "H", tiff, offset)[0]
        for i in range(min(count, 512)):
            tag, typ, _n = struct.unpack_from(order + "HHI", tiff, offset + 2 + 12 * i)
            if tag == _TAG_ORIENTATION and typ == 3:
                value = struct.unpack_from(order + "H", tiff, offset + 2 + 12 * i + 8)[0]
                return int(value) if 1 <= value <= 8 else None
    except (KeyError, struct.error):
        return None
    return None


def _orientation_segment(orientation: int) -> bytes:
    payload = (
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01"
        + struct.pack(">HHIHH", _TAG_ORIENTATION, 3, 1, orientation, 0)
        + b"\x00\x00\x00\x00"
    )
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def strip_jpeg_metadata(data: bytes, *, keep_orientation: bool) -> bytes | None:
    """Losslessly remove metadata segments from JPEG bytes embedded in documents.

    Drops APP1 (EXIF incl. GPS, XMP), APP13 (IPTC), COM, every other APPn except JFIF,
    ICC profile and Adobe colour info, and anything after the end-of-image marker (e.g.
    secondary MPO images with their own EXIF). Pixel data is untouched, so documents
    stay byte-identical in appearance. Returns None if the data cannot be parsed.
    With ``keep_orientation`` a minimal EXIF holding only the orientation is re-added.
    """
    if data[:2] != b"\xff\xd8":
        return None
    out = bytearray(b"\xff\xd8")
    orientation: int | None = None
    pos, end = 2, len(data)
    while True:
        if pos >= end or data[pos] != 0xFF:
            return None
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            out += b"\xff\xd9"
            break
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > end:
            return None
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > end:
            return None
        body = data[pos + 2 : pos + length]
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(body[6:]) or orientation
        keep = not (0xE0 <= marker <= 0xEF or marker == 0xFE) or (
            (marker == 0xE0 and body.startswith(b"JFIF\x00"))
            or (marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"))
            or (marker == 0xEE and body.startswith(b"Adobe"))
        )
        if keep:
            out += bytes((0xFF, marker)) + data[pos : pos + length]
        pos += length
        if marker == 0xDA:  # entropy-coded data runs until the next real marker
            scan = pos
            while True:
                i = data.find(b"\xff", scan)
                if i < 0 or i + 1 >= end:
                    return None
                nxt = data[i + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    scan = i + (1 if nxt == 0xFF else 2)
                    continue
                break
            out += data[pos:i]
            pos = i
    if keep_orientation and orientation and orientation != 1:
        insert_at = 2
        if out[2:4] == b"\xff\xe0":
            insert_at = 4 + int.from_bytes(out[4:6], "big")
        out[insert_at:insert_at] = _orientation_segment(orientation)
    return bytes(out)


# ---------------------------------------------------------------------------------- PDF

_PDF_PRIVATE_KEYS = ("/PieceInfo", "/LastModified")


def _clean_pdf(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Remove the Info dictionary, XMP streams, application private data, the document
    ID (which lets an employer match this file with the reporter's copy) and EXIF/XMP
    inside embedded JPEG images."""
    removed: set[str] = set()
    buffer = io.BytesIO()
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            info = pdf.trailer.get("/Info")
            if isinstance(info, pikepdf.Dictionary):
                if any(k in info for k in ("/Author", "/Creator", "/Producer")):
                    removed.add("document_author")
                if len(info):
                    removed.add("document_info")
            if "/Info" in pdf.trailer:
                del pdf.trailer["/Info"]
            if "/ID" in pdf.trailer:
                del pdf.trailer["/ID"]
                removed.add("document_id")
            for obj in pdf.objects:
                if not isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
                    continue
                if "/Metadata" in obj:
                    del obj["/Metadata"]
                    removed.add("xmp")
                for key in _PDF_PRIVATE_KEYS:
                    if key in obj:
                        del obj[key]
                        removed.add("application_data")
                if isinstance(obj, pikepdf.Stream) and _is_plain_jpeg(obj):
                    raw = obj.read_raw_bytes()
                    stripped = strip_jpeg_metadata(raw, keep_orientation=False)
                    if stripped is not None and stripped != raw:
                        obj.write(
                            stripped,
                            filter=pikepdf.Name.DCTDecode,
                            decode_parms=obj.get("/DecodeParms"),
                        )
                        removed.add("embedded_image_metadata")
            pdf.save(buffer, fix_metadata_version=False)
    except pikepdf.PasswordError:
        raise UploadRejected("corrupt", "encrypted PDF (password required)") from None
    except (pikepdf.PdfError, ValueError) as exc:
        raise UploadRejected("corrupt", f"PDF could not be processed: {exc}") from None
    return buffer.getvalue(), tuple(sorted(removed))


def _is_plain_jpeg(obj: pikepdf.Object) -> bool:
    if obj.get("/Subtype") != pikepdf.Name.Image:
        return False
    filt = obj.get("/Filter")
    if isinstance(filt, pikepdf.Array):
        return len(filt) == 1 and filt[0] == pikepdf.Name.DCTDecode
    return filt == pikepdf.Name.DCTDecode


# ------------------------------------------------------------------------- Office (zip)

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_REL_CORE = "/metadata/core-properties"
_REL_APP = "/extended-properties"
_REL_CUSTOM = "/custom-properties"
_REL_THUMB = "/metadata/thumbnail"
_NS_DC = "{http://purl.org/dc/elements/1.1/}"
_NS_CP = "{http://schemas.openxmlformats.org/package/2006/metadata/core-properties}"
_NS_APP = "{http://schemas.openxmlformats.org/officeDocument/2006/extended-properties}"
_NS_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_AUTHOR_ELEMENTS = {
    _NS_DC + "creator",
    _NS_CP + "lastModifiedBy",
    _NS_APP + "Company",
    _NS_APP + "Manager",
}
_MINIMAL_CORE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    b'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'xmlns:dcterms="http://purl.org/dc/terms/" '
    b'xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>'
)
_MINIMAL_APP = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/'
    b'2006/docPropsVTypes"/>'
)
_REL_ELEMENT = re.compile(
    rb"<(?:[\w.-]+:)?Relationship\b[^>]*?(?:/>|>\s*</(?:[\w.-]+:)?Relationship\s*>)", re.S
)
_OVERRIDE_ELEMENT = re.compile(
    rb"<(?:[\w.-]+:)?Override\b[^>]*?(?:/>|>\s*</(?:[\w.-]+:)?Override\s*>)", re.S
)
_JPEG_NAMES = (".jpg", ".jpeg", ".jpe", ".jfif")


def _attr(element: bytes, name: bytes) -> str:
    match = re.search(rb"\b" + name + rb"\s*=\s*([\"'])(.*?)\1", element, re.S)
    return match.group(2).decode("utf-8", "replace") if match else ""


def _read_part(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > MAX_XML_PART:
        raise UploadRejected("corrupt", f"{info.filename} is implausibly large")
    with zf.open(info) as part:
        return part.read(MAX_XML_PART + 1)[:MAX_XML_PART]


def _check_zip_limits(infos: list[zipfile.ZipInfo], max_in_memory: int) -> None:
    if len(infos) > MAX_ZIP_ENTRIES:
        raise UploadRejected("corrupt", "zip bomb: too many entries")
    if sum(i.file_size for i in infos) > 10 * max_in_memory:
        raise UploadRejected("corrupt", "zip bomb: total uncompressed size too large")
    for info in infos:
        if info.file_size > ZIP_RATIO_FLOOR and info.file_size > MAX_ZIP_RATIO * max(
            info.compress_size, 1
        ):
            raise UploadRejected("corrupt", "zip bomb: compression ratio too high")
        if info.flag_bits & 0x1:
            raise UploadRejected("corrupt", "encrypted zip entry")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UploadRejected("corrupt", "unsupported zip compression method")
    if len({i.filename for i in infos}) != len(infos):
        raise UploadRejected("corrupt", "duplicate zip entry names")


def _parse_xml(data: bytes) -> ElementTree.Element:
    """Parse a small package part with defusedxml. OPC forbids DTDs (ECMA-376 part 2, 8.1.4)
    and allows UTF-8 and UTF-16: a DTD, an entity or an external reference is refused in every
    encoding the parser reads (a byte search for "<!DOCTYPE" misses UTF-16), so no entity
    expansion bomb and no external entity. Not well-formed: ElementTree.ParseError."""
    try:
        return SafeElementTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise UploadRejected("corrupt", f"DTD in an Office package part ({exc})") from None
    except LookupError as exc:  # an encoding the parser does not know
        raise UploadRejected("corrupt", f"an Office package part: {exc}") from None


class _RootReached(Exception):
    """The XML part's root element began: no DTD can come after it."""


class _PrologCheck:
    """An XML part that is copied unchanged, fed through defusedxml's parser as it streams up
    to its root element: a DTD can only stand before the root, so a DTD in any encoding is
    refused without reading the part whole. A part that is not XML up to its root (an encoding
    the parser does not know, no element) is refused too: an Office reader could still find a
    DTD there."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._parser: SafeElementTree.XMLParser | None = SafeElementTree.XMLParser(
            target=self, forbid_dtd=True
        )

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        raise _RootReached

    def feed(self, chunk: bytes) -> None:
        if self._parser is not None:
            self._run(self._parser.feed, chunk)

    def close(self) -> None:
        if self._parser is not None:
            self._run(self._parser.close)
            raise UploadRejected("corrupt", f"{self._name}: no XML element")

    def _run(self, step: object, *args: bytes) -> None:
        try:
            step(*args)  # type: ignore[operator]
        except _RootReached:
            self._parser = None
        except DefusedXmlException as exc:
            raise UploadRejected("corrupt", f"DTD in an Office package part ({exc})") from None
        except (ElementTree.ParseError, LookupError) as exc:
            raise UploadRejected("corrupt", f"{self._name} is not valid XML: {exc}") from None


_XML_PART_NAMES = (".xml", ".rels", ".vml")
_XML_STARTS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"<?xml",
               "<?xml".encode("utf-16-le"), "<?xml".encode("utf-16-be"))


def _is_xml_part(name: str, head: bytes) -> bool:
    """Parsed by an Office reader as XML: by its name, or by how it starts."""
    return name.lower().endswith(_XML_PART_NAMES) or head.startswith(_XML_STARTS)


def _utf8_xml(data: bytes) -> bytes:
    """A part (checked by _parse_xml) as UTF-8 with its declaration saying so, for the
    byte-level rewrites below (OPC allows UTF-16 too)."""
    _parse_xml(data)
    encoding = ("utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
                else "utf-16-le" if data.startswith(b"<\0")
                else "utf-16-be" if data.startswith(b"\0<") else None)
    if encoding is None:
        return data
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UploadRejected("corrupt", f"an Office package part is not UTF-16: {exc}") from None
    text = re.sub(r"""^(<\?xml[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""", r"\1\2UTF-8\2", text)
    return text.encode("utf-8")


def _package_relationships(rels: bytes) -> dict[str, str]:
    """Map each root relationship's target part (no leading '/') to its type."""
    try:
        root = _parse_xml(rels)
    except ElementTree.ParseError as exc:
        raise UploadRejected("corrupt", f"_rels/.rels is not valid XML: {exc}") from None
    parts: dict[str, str] = {}
    for rel in root.iter(_NS_RELS + "Relationship"):
        if rel.get("TargetMode") != "External":
            parts[rel.get("Target", "").lstrip("/")] = rel.get("Type", "")
    return parts


def _found_in_properties(xml: bytes) -> set[str]:
    try:
        root = _parse_xml(xml)
    except ElementTree.ParseError:
        return {"document_info"}
    found: set[str] = set()
    for element in root.iter():
        if element is root or not (element.text or "").strip():
            continue
        found.add("document_author" if element.tag in _AUTHOR_ELEMENTS else "document_info")
    return found


def _clean_ooxml(
    source: BinaryIO, kind: FileKind, max_in_memory: int, out: _CountingWriter
) -> tuple[str, ...]:
    """Rewrite an Office Open XML package entry by entry with neutral document
    properties, no custom properties, no thumbnail, metadata-free embedded JPEGs and
    normalised zip timestamps (these reveal when and in which time zone it was saved)."""
    removed: set[str] = set()
    try:
        with zipfile.ZipFile(_random_access(source, max_in_memory)) as zin:
            if _classify_zip(zin) != kind:
                raise _reject_type("content does not match the declared kind")
            infos = zin.infolist()
            _check_zip_limits(infos, max_in_memory)
            names = {i.filename for i in infos}
            rel_types = (
                _package_relationships(_read_part(zin, zin.getinfo("_rels/.rels")))
                if "_rels/.rels" in names
                else {}
            )
            core = {p for p, t in rel_types.items() if t.endswith(_REL_CORE)}
            app = {p for p, t in rel_types.items() if t.endswith(_REL_APP)}
            dropped = {p for p, t in rel_types.items() if t.endswith((_REL_CUSTOM, _REL_THUMB))}
            core.add("docProps/core.xml")
            app.add("docProps/app.xml")
            dropped.add("docProps/custom.xml")
            budget = 10 * max_in_memory
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
                for info in infos:
                    name = info.filename
                    if info.is_dir():
                        continue
                    if name in dropped:
                        removed.add(
                            "thumbnail" if rel_types.get(name, "").endswith(_REL_THUMB)
                            else "custom_properties"
                        )  # fmt: skip
                        continue
                    if info.date_time != _FIXED_ZIP_TIME or info.extra or info.comment:
                        removed.add("archive_timestamps")
                    target = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
                    target.compress_type = (
                        zipfile.ZIP_STORED
                        if info.compress_type == zipfile.ZIP_STORED
                        else zipfile.ZIP_DEFLATED
                    )
                    target.create_system = 0
                    target.external_attr = 0
                    target.file_size = info.file_size  # lets zipfile pick zip64 if needed
                    data = _rewritten_part(zin, info, core, app, dropped, removed, max_in_memory)
                    if data is not None:
                        zout.writestr(target, data)
                        continue
                    with zin.open(info) as src, zout.open(target, "w") as dst:
                        chunk = src.read(CHUNK_SIZE)
                        prolog = (_PrologCheck(name) if chunk and _is_xml_part(name, chunk)
                                  else None)  # an empty part holds no DTD
                        while chunk:
                            budget -= len(chunk)
                            if budget < 0:
                                raise UploadRejected("corrupt", "zip bomb: too much data")
                            if prolog is not None:
                                prolog.feed(chunk)
                            dst.write(chunk)
                            chunk = src.read(CHUNK_SIZE)
                        if prolog is not None:
                            prolog.close()
            if zin.comment:
                removed.add("archive_comment")
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise UploadRejected("corrupt", f"broken Office document: {exc}") from None
    return tuple(sorted(removed))


def _rewritten_part(
    zin: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    core: set[str],
    app: set[str],
    dropped: set[str],
    removed: set[str],
    max_in_memory: int,
) -> bytes | None:
    """New bytes for parts we change, or None to stream the part unchanged."""
    name = info.filename
    if name in core or name in app:
        removed |= _found_in_properties(_read_part(zin, info))
        return _MINIMAL_CORE if name in core else _MINIMAL_APP
    if name == "_rels/.rels":
        rels = _utf8_xml(_read_part(zin, info))
        return _REL_ELEMENT.sub(
            lambda m: b"" if _attr(m.group(0), b"Target").lstrip("/") in dropped else m.group(0),
            rels,
        )
    if name == "[Content_Types].xml":
        types = _utf8_xml(_read_part(zin, info))
        return _OVERRIDE_ELEMENT.sub(
            lambda m: b"" if _attr(m.group(0), b"PartName").lstrip("/") in dropped else m.group(0),
            types,
        )
    if name.lower().endswith(_JPEG_NAMES) and info.file_size <= max_in_memory:
        with zin.open(info) as part:
            original = part.read()
        stripped = strip_jpeg_metadata(original, keep_orientation=True)
        if stripped is not None and stripped != original:
            removed.add("embedded_image_metadata")
            return stripped
        return original
    return None


# -------------------------------------------------------------------------------- clean


def clean(
    source: BinaryIO,
    kind: FileKind,
    *,
    keep_location: bool,
    max_in_memory: int,
    sink: WritableSink,
    max_pixels: int = MAX_PIXELS,
) -> CleanReport:
    """Write a metadata-free copy of ``source`` to ``sink`` and report what was removed.

    ``source`` is read from position 0. Pass-through kinds (legacy Office, text) and
    video/audio only ever need ``seek(0)`` and ``read``, so a rewind-only encrypted spool
    is fine; pass-through kinds are copied in chunks of at most ``CHUNK_SIZE`` bytes and
    never held whole. Video and audio are copied into an anonymous memory file for ffmpeg
    (portal/intake/sanitize/media.py: never on disk), refused with ``too_large_to_clean`` above
    ``max_in_memory`` bytes, and with ``corrupt`` or ``cannot_clean`` when they cannot be
    cleaned for sure. ``kind`` is re-checked against the content (mismatch:
    ``type_not_allowed``).
    Images and PDFs are processed in memory and refused with ``too_large_to_clean``
    above ``max_in_memory`` bytes; Office files are rewritten entry by entry (random
    access is needed: a rewind-only source is copied into memory, bounded likewise).
    ``keep_location`` (images, video and audio) keeps GPS and the capture time, which the
    reporter may want as evidence; device data is always removed.

    On ``UploadRejected`` the sink may hold partial output that must be discarded.
    """
    if kind not in ALLOWED:
        raise _reject_type("kind is not on the whitelist")
    head = _read_head(source)
    if not head:
        raise UploadRejected("empty", "the file is empty")
    ooxml = kind.family == "office" and kind.cleanable
    if ooxml:
        if not head.startswith(b"PK\x03\x04"):
            raise _reject_type("content does not match the declared kind")
    elif sniff(head) != kind:
        raise _reject_type("content does not match the declared kind")
    kind = ALLOWED[ALLOWED.index(kind)]  # our own constant, so identity checks below hold
    out = _CountingWriter(sink)
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    if kind.family == "image":
        data = _read_bounded(source, max_in_memory, "image")
        cleaned, removed, kept = _clean_image(data, kind, keep_location, max_pixels)
        out.write(cleaned)
    elif kind is PDF:
        cleaned, removed = _clean_pdf(_read_bounded(source, max_in_memory, "PDF"))
        out.write(cleaned)
    elif ooxml:
        removed = _clean_ooxml(source, kind, max_in_memory, out)
    elif kind.family in ("video", "audio"):
        removed, kept = _clean_media(source, kind, keep_location, max_in_memory, out)
    elif kind is TEXT:
        _copy_text(source, out)
    else:
        _copy_chunks(source, out)
    out.flush()
    return CleanReport(kind, out.count, removed, kept, uncleaned=not kind.cleanable)
