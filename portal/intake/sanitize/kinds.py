"""What an upload may be and how it is refused: the whitelist of kinds (decided from content
by sniff.py), the rejection with its stable codes, and the report ``clean`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


def type_not_allowed(detail: str) -> UploadRejected:
    return UploadRejected("type_not_allowed", detail)
