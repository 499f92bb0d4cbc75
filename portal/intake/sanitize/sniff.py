"""The real type of an upload, from its content only.

The filename and the client's ``Content-Type`` are never trusted: both are chosen by the
uploader, and an attacker could otherwise smuggle HTML, SVG (scripts) or executables to staff.
ZIP and OLE2 containers are told apart by office.py, which knows their insides."""

from __future__ import annotations

import codecs
import zipfile
from typing import BinaryIO

from portal.intake.sanitize.kinds import (
    AAC,
    AMR,
    AMR_WB,
    AVI,
    FLAC,
    GIF,
    JPEG,
    M4A,
    MKV,
    MOV,
    MP3,
    MP4,
    OGG,
    OGV,
    PDF,
    PNG,
    TEXT,
    THREE_G2,
    THREE_GP,
    WAV,
    WEBM,
    WEBP,
    FileKind,
    UploadRejected,
    type_not_allowed,
)
from portal.intake.sanitize.office import OLE_MAGIC, classify_zip, sniff_ole_head, sniff_zip_head

#: Number of leading bytes ``sniff_file`` hands to ``sniff``.
HEAD_SIZE = 8192

_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
     b"mif1", b"msf1", b"mif2", b"avif", b"avis", b"avio"}
)
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
     b"mp41", b"mp42", b"mp71", b"avc1", b"dash", b"mmp4", b"msnv", b"MSNV", b"M4V ",
     b"M4VH", b"M4VP", b"XAVC", b"f4v ", b"NDAS", b"CAEP", b"MiPr", b"hvc1"}
)
_MARKUP_HINTS = (
    b"<script", b"<html", b"<svg", b"<!doctype", b"<?xml", b"<iframe", b"<body",
    b"<head", b"<object", b"<embed", b"<meta", b"<xsl", b"<math",
)


def _sniff_iso_bmff(head: bytes) -> FileKind:
    """mp4/mov/3gp/m4a: an ``ftyp`` box whose brands say what the file is."""
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    compatible = [head[i : i + 4] for i in range(16, min(box_size, len(head), 256) - 3, 4)]
    brands = [major, *compatible]
    if major in _HEIF_BRANDS or (major not in _MP4_BRANDS and _HEIF_BRANDS & set(compatible)):
        raise type_not_allowed("HEIC/AVIF images are not supported; please send JPEG or PNG")
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
    raise type_not_allowed(f"unsupported ISO media brand {major!r}")


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


def _sniff_text(head: bytes) -> FileKind:
    if b"\x00" in head:
        raise type_not_allowed("unrecognised binary format")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        raise type_not_allowed("unrecognised binary format") from None
    stripped = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if stripped.startswith((b"{\\rtf", b"%!")):
        raise type_not_allowed("RTF/PostScript files are not allowed")
    if stripped.startswith(b"<") or any(hint in stripped for hint in _MARKUP_HINTS):
        raise type_not_allowed("HTML/XML/SVG markup is not allowed")
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
            raise type_not_allowed(f"unsupported RIFF type {head[8:12]!r}")
        return riff
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return sniff_zip_head(head)
    if head.startswith(OLE_MAGIC):
        return sniff_ole_head(head)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    if len(head) >= 8 and head[4:8] in (b"moov", b"wide", b"mdat", b"pnot"):
        return MOV
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return WEBM
        if b"matroska" in head[:64]:
            return MKV
        raise type_not_allowed("unsupported EBML document type")
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


def read_head(source: BinaryIO) -> bytes:
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
    head = read_head(source)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(source) as zf:
                return classify_zip(zf)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise UploadRejected("corrupt", f"broken zip archive: {exc}") from None
        finally:
            source.seek(0)
    return sniff(head)

