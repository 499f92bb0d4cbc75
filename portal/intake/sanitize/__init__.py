"""Upload sanitising: sniff the real type of an upload and strip identifying metadata.

Why this package exists
-----------------------
A whistleblower's evidence file frequently identifies the whistleblower even when its
visible content does not: photos carry GPS coordinates and the phone's serial number, office
documents and PDFs carry author names and document IDs that match the copy on the reporter's
own machine, zip-based documents carry timestamps and thumbnails.

Where what is
-------------
``kinds``    the whitelist (``FileKind``), ``UploadRejected`` and its codes, ``CleanReport``
``sniff``    the type of an upload from its content only (``sniff`` / ``sniff_file``)
``images``   photos re-encoded without EXIF/XMP/IPTC; JPEGs inside documents stripped
``pdf``      PDFs without document information, XMP, private data or document ID
``office``   docx/xlsx/pptx and legacy OLE2 told apart; Office Open XML rewritten
``media``    video and audio through ffmpeg and ffprobe
``streams``  bounded reads and the counting writer the cleaners share

This module keeps the entry points callers use, and ``clean``, which picks the cleaner.

Usage::

    kind = sniff_file(upload)                      # raises UploadRejected
    report = clean(upload, kind, keep_location=False,
                   max_in_memory=50 * 1024 * 1024, sink=encrypting_writer)

If ``clean`` raises, whatever was already written to ``sink`` is incomplete and must be
discarded. This package deliberately does not import Flask.
"""

from __future__ import annotations

import codecs
from typing import BinaryIO

from portal.intake.sanitize import media
from portal.intake.sanitize.images import MAX_PIXELS, clean_image, strip_jpeg_metadata
from portal.intake.sanitize.kinds import (
    AAC,
    ALLOWED,
    AMR,
    AMR_WB,
    AVI,
    DOC,
    DOCX,
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
    OLE_OFFICE,
    PDF,
    PNG,
    PPT,
    PPTX,
    TEXT,
    THREE_G2,
    THREE_GP,
    UNCLEANABLE_NOTICE_FAMILIES,
    WAV,
    WEBM,
    WEBP,
    XLS,
    XLSX,
    CleanReport,
    FileKind,
    UploadRejected,
    WritableSink,
    describe_uncleanable,
    type_not_allowed,
)
from portal.intake.sanitize.office import clean_ooxml
from portal.intake.sanitize.pdf import clean_pdf
from portal.intake.sanitize.sniff import HEAD_SIZE, read_head, sniff, sniff_file
from portal.intake.sanitize.streams import CHUNK_SIZE, CountingWriter, copy_chunks, read_bounded

__all__ = [
    "AAC", "ALLOWED", "AMR", "AMR_WB", "AVI", "CHUNK_SIZE", "DOC", "DOCX", "FLAC", "GIF",
    "HEAD_SIZE", "JPEG", "M4A", "MAX_PIXELS", "MKV", "MOV", "MP3", "MP4", "OGG", "OGV",
    "OLE_OFFICE", "PDF", "PNG", "PPT", "PPTX", "TEXT", "THREE_G2", "THREE_GP",
    "UNCLEANABLE_NOTICE_FAMILIES", "WAV", "WEBM", "WEBP", "XLS", "XLSX",
    "CleanReport", "FileKind", "UploadRejected", "WritableSink",
    "clean", "describe_uncleanable", "media", "sniff", "sniff_file", "strip_jpeg_metadata",
]  # fmt: skip


def _clean_media(
    source: BinaryIO, kind: FileKind, keep_location: bool, max_in_memory: int,
    out: CountingWriter,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Video and audio through ffmpeg and ffprobe (media.py); the verified copy must still be
    the same kind, and only then is anything written to ``out``."""
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


def _copy_text(source: BinaryIO, out: CountingWriter) -> None:
    """Pass text through, checking as we go that all of it is UTF-8 without NULs."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := source.read(CHUNK_SIZE):
            if b"\x00" in chunk:
                raise type_not_allowed("text file contains binary data")
            decoder.decode(chunk)
            out.write(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise type_not_allowed("text file is not valid UTF-8") from None


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
    (media.py: never on disk), refused with ``too_large_to_clean`` above
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
        raise type_not_allowed("kind is not on the whitelist")
    head = read_head(source)
    if not head:
        raise UploadRejected("empty", "the file is empty")
    ooxml = kind.family == "office" and kind.cleanable
    if ooxml:
        if not head.startswith(b"PK\x03\x04"):
            raise type_not_allowed("content does not match the declared kind")
    elif sniff(head) != kind:
        raise type_not_allowed("content does not match the declared kind")
    kind = ALLOWED[ALLOWED.index(kind)]  # our own constant, so identity checks below hold
    out = CountingWriter(sink)
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    if kind.family == "image":
        data = read_bounded(source, max_in_memory, "image")
        removed, kept = clean_image(data, kind, keep_location, max_pixels, out)
    elif kind is PDF:
        cleaned, removed = clean_pdf(read_bounded(source, max_in_memory, "PDF"))
        out.write(cleaned)
    elif ooxml:
        removed = clean_ooxml(source, kind, max_in_memory, out)
    elif kind.family in ("video", "audio"):
        removed, kept = _clean_media(source, kind, keep_location, max_in_memory, out)
    elif kind is TEXT:
        _copy_text(source, out)
    else:
        copy_chunks(source, out)
    out.flush()
    return CleanReport(kind, out.count, removed, kept, uncleaned=not kind.cleanable)
