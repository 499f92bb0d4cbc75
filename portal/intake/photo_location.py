"""Where and when a photo was taken, read from the EXIF that intake kept.

portal/intake/sanitize/__init__.py strips every photo's EXIF unless the reporter chose to keep
location and time
as evidence; then it keeps only the GPS block and the capture time. This reads those back from
the decrypted (cleaned) image, so the officer sees them as text on the tip page: coordinates and
the camera's clock, no map and no request to anywhere.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, UnidentifiedImageError

_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_TIME_ORIGINAL = 0x9011
_GPS_LATITUDE_REF, _GPS_LATITUDE, _GPS_LONGITUDE_REF, _GPS_LONGITUDE = 1, 2, 3, 4
_GPS_TIMESTAMP, _GPS_DATESTAMP = 7, 29
_FORMATS = ["JPEG", "MPO", "PNG", "WEBP"]


@dataclass(frozen=True)
class PhotoLocation:
    """Decimal degrees (north and east positive) and the capture time as the camera wrote it."""

    latitude: float | None
    longitude: float | None
    taken: str | None  # "2026-11-01 08:30:00", "+08:00" appended when the camera gave it

    @property
    def coordinates(self) -> str | None:
        """Latitude, longitude to 5 decimals (about a metre), the form map tools accept."""
        if self.latitude is None or self.longitude is None:
            return None
        return f"{self.latitude:.5f}, {self.longitude:.5f}"


def _degrees(value: object, ref: object, limit: float) -> float | None:
    """(degrees, minutes, seconds) rationals and an N/S/E/W reference to signed degrees."""
    if not isinstance(value, Iterable):
        return None
    try:
        parts = [float(x) for x in value]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    parts += [0.0] * (3 - len(parts))
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    if degrees > limit:
        return None
    reference = ref.decode(errors="replace") if isinstance(ref, bytes) else str(ref or "")
    return -degrees if reference.strip().upper() in ("S", "W") else degrees


def _camera_time(exif: Image.Exif) -> str | None:
    sub = exif.get_ifd(_IFD_EXIF)
    raw = sub.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME_ORIGINAL) or exif.get(
        _TAG_DATETIME)
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    try:
        taken = datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    text = taken.strftime("%Y-%m-%d %H:%M:%S")
    offset = sub.get(_TAG_OFFSET_TIME_ORIGINAL)
    if isinstance(offset, str) and len(offset) == 6 and offset[0] in "+-":
        text += " " + offset
    return text


def _gps_time(gps: dict) -> str | None:
    """The satellite time (UTC), for a camera that wrote no clock time of its own."""
    date, time = gps.get(_GPS_DATESTAMP), gps.get(_GPS_TIMESTAMP)
    if time is None:
        return None
    try:
        day = datetime.strptime(str(date).strip("\x00 "), "%Y:%m:%d")
        hours, minutes, seconds = (int(float(x)) for x in time)
        stamp = day.replace(hour=hours, minute=minutes, second=seconds)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def photo_location(data: bytes) -> PhotoLocation | None:
    """The location and capture time a photo carries, or None when it carries neither (or is
    not a photo Pillow reads). Only the header is parsed: no pixels are decoded."""
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as image:
            exif = image.getexif()
            gps = dict(exif.get_ifd(_IFD_GPS))
            latitude = _degrees(gps.get(_GPS_LATITUDE), gps.get(_GPS_LATITUDE_REF), 90)
            longitude = _degrees(gps.get(_GPS_LONGITUDE), gps.get(_GPS_LONGITUDE_REF), 180)
            if latitude is None or longitude is None:
                latitude = longitude = None
            taken = _camera_time(exif) or _gps_time(gps)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, KeyError,
            IndexError, TypeError):
        return None  # a damaged header shows no location rather than breaking the tip page
    if latitude is None and taken is None:
        return None
    return PhotoLocation(latitude, longitude, taken)
