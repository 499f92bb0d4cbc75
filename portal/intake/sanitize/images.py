"""Photos re-encoded without metadata, and JPEGs inside documents stripped losslessly.

Photos carry EXIF: GPS coordinates of where the picture was taken (often the reporter's home
or desk), the phone make, model and serial number, owner name, software."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from portal.intake.sanitize.kinds import (
    GIF,
    JPEG,
    PNG,
    WEBP,
    FileKind,
    UploadRejected,
    WritableSink,
    type_not_allowed,
)

#: Images with more pixels than this (summed over all frames) are rejected: decoding them
#: would need hundreds of MB of RAM (classic "decompression bomb").
MAX_PIXELS = 60_000_000

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


def clean_image(
    data: bytes, kind: FileKind, keep_location: bool, max_pixels: int, out: WritableSink
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Decode, reorient and re-encode an image without any metadata, into ``out``.

    Re-encoding (rather than editing tags) is deliberate: it also drops maker notes,
    embedded thumbnails (which may show the uncropped original), trailers appended after
    the image data and anything a parser does not know about.

    The encoder writes to ``out`` as it goes (no second copy of the cleaned image in
    memory); if it fails part way, ``out`` holds partial output, which the caller discards
    (see ``clean``). A single frame is turned upright in place: a photo of 17 megapixels
    is 70 MB decoded, and a copy of it was as large again.
    """
    formats = _PIL_FORMATS[kind]
    limit = max_pixels
    if Image.MAX_IMAGE_PIXELS:
        limit = min(limit, int(Image.MAX_IMAGE_PIXELS))
    with _decoding():
        with Image.open(io.BytesIO(data), formats=list(formats)) as probe:
            if probe.width * probe.height > limit:
                raise UploadRejected("too_many_pixels", f"{probe.width}x{probe.height}")
            probe.verify()
        im = Image.open(io.BytesIO(data), formats=list(formats))
    with im:  # the decoded frames live until the cleaned copy is written
        frames, durations, loop, exif, found = _upright_frames(im, kind, limit)
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
            params.update(quality=92, lossless=b"VP8L" in data[:4096])
            pil_format = "WEBP"
        else:
            pil_format = kind.extension.upper()
        if len(frames) > 1:
            params.update(save_all=True, append_images=frames[1:], duration=durations,
                          loop=loop)
        try:
            first.save(_WriteOnly(out),  # type: ignore[arg-type]  # all the encoders use is write
                       format=pil_format, **params)
        except (OSError, ValueError) as exc:
            raise UploadRejected("corrupt", f"image could not be re-encoded: {exc}") from None
    return removed, kept


# Pillow reports malformed/truncated input through all of these.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError)


@contextmanager
def _decoding() -> Iterator[None]:
    """Pillow's ways of refusing an image, as the reasons the citizen reads."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected("too_many_pixels", str(exc)) from None
    except UnidentifiedImageError:
        raise UploadRejected("corrupt", "not a decodable image") from None
    except _DECODE_ERRORS as exc:
        raise UploadRejected("corrupt", f"image could not be decoded: {exc}") from None


def _upright_frames(
    im: Image.Image, kind: FileKind, limit: int
) -> tuple[list[Image.Image], list[int], int, Image.Exif, set[str]]:
    """The image's frames decoded and upright, holding only the info keys that are image data
    (no comment, XMP or EXIF, which Pillow's encoders would write again); their durations,
    the loop count, and the metadata found. A single frame is ``im`` itself, turned in place."""
    with _decoding():
        if im.format not in _PIL_FORMATS[kind]:
            raise type_not_allowed("image content does not match its detected type")
        n_frames = getattr(im, "n_frames", 1) if kind is not JPEG else 1
        if im.width * im.height * n_frames > limit:
            raise UploadRejected("too_many_pixels", f"{n_frames} frames")
        im.load()
        exif, found = _image_metadata(im)
        if n_frames == 1:
            ImageOps.exif_transpose(im, in_place=True)
            im.info = {k: im.info[k] for k in _SAFE_INFO_KEYS if k in im.info}
            return [im], [], 0, exif, found
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            frame.load()
            durations.append(frame.info.get("duration", 100))
            upright = ImageOps.exif_transpose(frame)  # a copy: the next frame replaces this one
            upright.info = {k: frame.info[k] for k in _SAFE_INFO_KEYS if k in frame.info}
            frames.append(upright)
            if len(frames) >= n_frames:
                break
        loop = im.info.get("loop", 0)
    return frames, durations, loop, exif, found


class _WriteOnly:
    """The sink as Pillow's encoders see it: `write` and nothing else (no `fileno`, `seek` or
    `tell`), so that they encode in pieces and hand each one over."""

    def __init__(self, sink: WritableSink) -> None:
        self._sink = sink

    def write(self, data: bytes) -> object:
        return self._sink.write(data)


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
