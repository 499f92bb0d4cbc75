"""Video and audio: remove identifying metadata with ffmpeg, then prove it is gone with ffprobe.

A phone video carries where it was filmed (``©xyz``, ``com.apple.quicktime.location.ISO6709``),
the device (make, model, software) and when (``creation_time``); audio files carry ID3 frames
or Vorbis comments, and some cameras add GPS tracks (GoPro, drones) or cover pictures with
their own EXIF. ``clean_media`` copies the audio and video streams into a new file of the same
container without re-encoding (``-c copy``), with no global, stream or chapter metadata and
no other streams (subtitles, data tracks, attached pictures, fonts), then checks the result
with ffprobe: only technical tags listed here may remain, and no value of an identifying tag
of the original may appear anywhere in the new bytes. Anything that fails is refused
(``MediaError``); nothing is ever passed through with its metadata.

With ``keep_location`` (the reporter's choice, as for photos) the location (ISO 6709) and
the recording time survive; device tags never do.

Safety: the plaintext never touches the disk. Input and output are anonymous memory files
(``memfd``) handed to the tools as ``/dev/fd/N``; the demuxer is fixed to the sniffed container
family (``-f``), only the ``file`` protocol is allowed (no URLs, no HLS/concat playlists), and
each run has a wall-clock timeout and resource limits (``prlimit``: CPU time, address space,
file size, open files, no core dump). No shell; arguments are a list; nothing from the tools'
stderr is kept (it could quote the metadata).

Plain Python; no Flask. ``portal/intake/sanitize/__init__.py`` calls this from ``clean``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["CONTAINERS", "CleanedMedia", "MediaError", "available", "clean_media"]

CHUNK_SIZE = 1024 * 1024
#: Wall-clock limits. A container copy of a 50 MB phone video takes well under a second.
FFMPEG_TIMEOUT = 60.0
FFPROBE_TIMEOUT = 20.0
#: CPU seconds and address space per tool run (ffmpeg maps ~200 MB of libraries at start).
CPU_SECONDS = 60
ADDRESS_SPACE = 2 * 1024 * 1024 * 1024
#: ffprobe's JSON is read up to this size; more is a crafted file.
MAX_PROBE_JSON = 4 * 1024 * 1024
#: Identifying tag values shorter than this are not searched for in the output bytes (too
#: likely to occur by chance in compressed data).
MIN_NEEDLE = 6


@dataclass(frozen=True)
class Container:
    """ffmpeg's demuxer for reading the sniffed family and the muxer that writes the same
    container again."""

    demuxer: str
    muxer: str


#: By ``FileKind.extension`` (the whitelist in kinds.py).
CONTAINERS: dict[str, Container] = {
    "mp4": Container("mov", "mp4"),
    "mov": Container("mov", "mov"),
    "3gp": Container("mov", "3gp"),
    "3g2": Container("mov", "3g2"),
    "m4a": Container("mov", "ipod"),
    "webm": Container("matroska", "webm"),
    "mkv": Container("matroska", "matroska"),
    "avi": Container("avi", "avi"),
    "ogv": Container("ogg", "ogg"),
    "ogg": Container("ogg", "ogg"),
    "mp3": Container("mp3", "mp3"),
    "aac": Container("aac", "adts"),
    "wav": Container("wav", "wav"),
    "amr": Container("amr", "amr"),
    "awb": Container("amr", "amr"),
    "flac": Container("flac", "flac"),
}

# Tags the muxers write themselves, describing the file format, not the person.
_TECHNICAL_FORMAT_TAGS = {
    "major_brand": re.compile(r"[ -~]{4}"),
    "minor_version": re.compile(r"[0-9]{1,10}"),
    "compatible_brands": re.compile(r"(?:[ -~]{4}){0,16}"),
    "encoder": re.compile(r"Lavf"),  # what ffmpeg writes with +bitexact (no version)
}
_TECHNICAL_STREAM_TAGS = {
    "language": re.compile(r"[a-z]{3}"),
    "handler_name": re.compile(r"(?:Video|Sound|Subtitle|Data)Handler"),
    "vendor_id": re.compile(r"\[0\]\[0\]\[0\]\[0\]|FFMP"),
    "DURATION": re.compile(r"[0-9]{1,4}:[0-9]{2}:[0-9]{2}\.[0-9]{1,9}"),
    "encoder": re.compile(r"Lavc"),
    "ENCODER": re.compile(r"Lavc"),
}
# What the reporter may keep: a position in ISO 6709 and a recording time.
_ISO6709 = re.compile(
    r"[+-][0-9]{1,3}(?:\.[0-9]+)?[+-][0-9]{1,3}(?:\.[0-9]+)?(?:[+-][0-9.]+)?(?:CRS[A-Z0-9_:]+)?/?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z?")
_LOCATION_KEYS = ("com.apple.quicktime.location.iso6709", "location", "location-eng")
_KEPT_FORMAT_TAGS = {"location": _ISO6709, "location-eng": _ISO6709, "creation_time": _TIMESTAMP}
_KEPT_STREAM_TAGS = _KEPT_FORMAT_TAGS


class MediaError(Exception):
    """The file cannot be cleaned. ``code`` is one of the rejection codes (kinds.py):
    'corrupt' (the tools cannot read or rewrite it), 'too_large_to_clean', or 'cannot_clean'
    (the tools are missing, too slow, or the result still holds metadata). ``detail`` is
    English for logs and never quotes the file's content."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class _Tools:
    ffmpeg: str
    ffprobe: str
    prlimit: str


def _tools() -> _Tools | None:
    ffmpeg, ffprobe, prlimit = (shutil.which(name) for name in ("ffmpeg", "ffprobe", "prlimit"))
    if ffmpeg is None or ffprobe is None or prlimit is None or not hasattr(os, "memfd_create"):
        return None
    return _Tools(ffmpeg, ffprobe, prlimit)


def available() -> bool:
    """Whether video and audio can be cleaned here (ffmpeg, ffprobe, prlimit and memfd)."""
    return _tools() is not None


@dataclass
class CleanedMedia:
    """A verified, metadata-free copy held in an anonymous memory file until closed.

    ``head``: its first bytes (for re-sniffing). ``removed``: categories found and dropped.
    ``kept``: what stayed at the reporter's request ('location', 'datetime')."""

    _fd: int
    size: int
    head: bytes
    removed: tuple[str, ...]
    kept: tuple[str, ...]

    def chunks(self) -> Iterator[bytes]:
        offset = 0
        while offset < self.size:
            chunk = os.pread(self._fd, min(CHUNK_SIZE, self.size - offset), offset)
            if not chunk:
                raise MediaError("corrupt", "cleaned copy shrank while being read")
            offset += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> CleanedMedia:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clean_media(
    source: BinaryIO, extension: str, family: str, *, keep_location: bool, max_bytes: int
) -> CleanedMedia:
    """Copy ``source`` (read from position 0, sequentially) without its metadata.

    ``extension`` names the sniffed container (a key of ``CONTAINERS``), ``family`` is
    'video' or 'audio' (audio files keep only their audio streams). Inputs over
    ``max_bytes`` are refused with 'too_large_to_clean': input and output are both held in
    memory (never on disk). Raises ``MediaError``; on success the caller must ``close()``.
    """
    container = CONTAINERS.get(extension)
    if container is None:
        raise MediaError("cannot_clean", f"no container mapping for {extension!r}")
    tools = _tools()
    if tools is None:
        raise MediaError("cannot_clean", "ffmpeg, ffprobe or prlimit is not installed")
    in_fd = os.memfd_create("qingliu-media-in")
    out_fd = -1
    try:
        size = _spool(source, in_fd, max_bytes)
        original = _probe(tools, container.demuxer, in_fd)
        streams = _selected_streams(original, family)
        if not streams:
            raise MediaError("corrupt", "no audio or video stream")
        kept_tags = _kept_tags(original) if keep_location else {}
        out_fd = os.memfd_create("qingliu-media-out")
        _copy(tools, container, in_fd, out_fd, family, kept_tags, limit=2 * size + CHUNK_SIZE)
        out_size = os.fstat(out_fd).st_size
        if out_size == 0:
            raise MediaError("corrupt", "ffmpeg wrote nothing")
        cleaned = _probe(tools, container.demuxer, out_fd)
        _verify(cleaned, len(streams), kept_tags)
        _no_needles(out_fd, out_size, _needles(original, set(kept_tags.values())))
        kept = _kept_categories(cleaned)
        result = CleanedMedia(
            out_fd, out_size, os.pread(out_fd, 8192, 0),
            tuple(c for c in _removed(original, streams) if c not in kept),
            kept,
        )
        out_fd = -1
        return result
    finally:
        os.close(in_fd)
        if out_fd >= 0:
            os.close(out_fd)


# ---------------------------------------------------------------------------- running


def _spool(source: BinaryIO, fd: int, max_bytes: int) -> int:
    source.seek(0)
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        size += len(chunk)
        if size > max_bytes:
            raise MediaError("too_large_to_clean", "exceeds the in-memory limit")
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]
    return size


def _run(tools: _Tools, args: list[str], *, timeout: float, fsize: int,
         fds: tuple[int, ...], stdout: int | None = None) -> int:
    limits = [f"--cpu={CPU_SECONDS}", f"--as={ADDRESS_SPACE}", f"--fsize={fsize}",
              "--nofile=64", "--core=0"]
    # Fixed binaries found on PATH, an argument list, no shell.
    process = subprocess.Popen(
        [tools.prlimit, *limits, "--", *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # may quote tag values: never kept
        pass_fds=fds,
        env={"LC_ALL": "C"},
    )
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise MediaError("cannot_clean", f"{os.path.basename(args[0])} timed out") from None


def _input_args(demuxer: str, fd: int) -> list[str]:
    return ["-protocol_whitelist", "file", "-f", demuxer, "-i", f"file:/dev/fd/{fd}"]


def _probe(tools: _Tools, demuxer: str, fd: int) -> dict:
    """ffprobe's view of the file: format, streams and chapters with their tags."""
    out = os.memfd_create("qingliu-media-probe")
    try:
        status = _run(tools, [
            tools.ffprobe, "-hide_banner", "-loglevel", "error", "-threads", "1",
            *_input_args(demuxer, fd),
            "-show_format", "-show_streams", "-show_chapters", "-of", "json",
        ], timeout=FFPROBE_TIMEOUT, fsize=MAX_PROBE_JSON, fds=(fd,), stdout=out)
        if status != 0:
            raise MediaError("corrupt", f"ffprobe could not read it (status {status})")
        text = os.pread(out, MAX_PROBE_JSON + 1, 0)
    finally:
        os.close(out)
    try:
        probed = json.loads(text)
    except ValueError:
        raise MediaError("corrupt", "ffprobe gave no readable answer") from None
    if not isinstance(probed, dict) or not isinstance(probed.get("format"), dict):
        raise MediaError("corrupt", "ffprobe found no container")
    return probed


def _copy(tools: _Tools, container: Container, in_fd: int, out_fd: int, family: str,
          kept_tags: dict[str, str], *, limit: int) -> None:
    maps = ["-map", "0:V?", "-map", "0:a?"] if family == "video" else ["-map", "0:a"]
    keep: list[str] = []
    for key, value in kept_tags.items():
        keep += ["-metadata", f"{key}={value}"]
    status = _run(tools, [
        tools.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-threads", "1", *_input_args(container.demuxer, in_fd),
        *maps, "-c", "copy", "-map_metadata", "-1", "-map_metadata:s", "-1",
        "-map_chapters", "-1", *keep,
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-protocol_whitelist", "file", "-f", container.muxer, f"file:/dev/fd/{out_fd}",
    ], timeout=FFMPEG_TIMEOUT, fsize=limit, fds=(in_fd, out_fd))
    if status != 0:
        raise MediaError("corrupt", f"ffmpeg could not rewrite it (status {status})")


# --------------------------------------------------------------------------- checking


def _tags(entry: object) -> dict[str, str]:
    tags = entry.get("tags") if isinstance(entry, dict) else None
    if not isinstance(tags, dict):
        return {}
    return {str(k): str(v) for k, v in tags.items()}


def _streams(probed: dict) -> list[dict]:
    streams = probed.get("streams")
    return [s for s in streams if isinstance(s, dict)] if isinstance(streams, list) else []


def _selected_streams(probed: dict, family: str) -> list[dict]:
    """The streams ffmpeg's ``-map`` keeps: audio, and for a video file its real video
    streams (not attached cover pictures)."""
    chosen = []
    for stream in _streams(probed):
        kind = stream.get("codec_type")
        picture = (stream.get("disposition") or {}).get("attached_pic") == 1
        if kind == "audio" or (family == "video" and kind == "video" and not picture):
            chosen.append(stream)
    return chosen


def _kept_tags(probed: dict) -> dict[str, str]:
    """The location (ISO 6709) and recording time the reporter asked to keep, as tags for
    the new file; anything not shaped like a position or a time is not kept."""
    entries = [probed["format"], *_streams(probed)]  # Vorbis comments sit on the stream
    every = [{key.lower(): value.strip() for key, value in _tags(e).items()} for e in entries]
    kept: dict[str, str] = {}
    locations = [tags[key] for tags in every for key in _LOCATION_KEYS if key in tags]
    stamps = [tags["creation_time"] for tags in every if "creation_time" in tags]
    if location := next((v for v in locations if _ISO6709.fullmatch(v)), None):
        kept["location"] = location
    if stamp := next((v for v in stamps if _TIMESTAMP.fullmatch(v)), None):
        kept["creation_time"] = stamp
    return kept


def _kept_categories(cleaned: dict) -> tuple[str, ...]:
    """What the verified copy really holds of place and time (a container without a place
    for a location, such as M4A or WAV, keeps none)."""
    entries = [cleaned["format"], *_streams(cleaned)]
    keys = {key.lower() for entry in entries for key in _tags(entry)}
    kept = {"location"} if keys & {"location", "location-eng"} else set()
    if "creation_time" in keys:
        kept.add("datetime")
    return tuple(sorted(kept))


def _verify(probed: dict, expected_streams: int, kept_tags: dict[str, str]) -> None:
    """Only technical tags (and what the reporter kept) remain; every chosen stream is
    there and nothing else."""
    streams = _streams(probed)
    if len(streams) != expected_streams:
        raise MediaError("cannot_clean", "the cleaned copy lost or gained streams")
    if probed.get("chapters"):
        raise MediaError("cannot_clean", "chapters left in the cleaned copy")
    kept_values = set(kept_tags.values())
    checks: list[tuple[dict[str, str], dict[str, re.Pattern[str]], dict[str, re.Pattern[str]]]] = [
        (_tags(probed["format"]), _TECHNICAL_FORMAT_TAGS, _KEPT_FORMAT_TAGS)]
    checks += [(_tags(s), _TECHNICAL_STREAM_TAGS, _KEPT_STREAM_TAGS) for s in streams]
    for tags, technical, keepable in checks:
        for key, value in tags.items():
            if key in technical and technical[key].fullmatch(value):
                continue
            pattern = keepable.get(key.lower())
            if pattern and pattern.fullmatch(value) and _same_kept(value, kept_values):
                continue
            raise MediaError("cannot_clean", f"tag {key!r} left in the cleaned copy")


def _same_kept(value: str, kept_values: set[str]) -> bool:
    """A kept value as the muxer wrote it back (times gain microseconds: '…:30.000000Z')."""
    if value in kept_values:
        return True
    return any(_TIMESTAMP.fullmatch(k) and value[:19] == k[:19] for k in kept_values)


def _needles(probed: dict, kept_values: set[str]) -> set[bytes]:
    """Every value of a non-technical tag of the original, as bytes to look for in the copy."""
    entries = [probed["format"], *_streams(probed), *(probed.get("chapters") or [])]
    needles: set[bytes] = set()
    for entry in entries:
        for key, value in _tags(entry).items():
            value = value.strip()
            if key in _TECHNICAL_FORMAT_TAGS or key in _TECHNICAL_STREAM_TAGS:
                continue
            if value in kept_values or len(value) < MIN_NEEDLE:
                continue
            needles.add(value.encode())
    return needles


def _no_needles(fd: int, size: int, needles: set[bytes]) -> None:
    """Refuse the copy if any identifying value of the original is still in its bytes."""
    if not needles:
        return
    overlap = max(len(n) for n in needles) - 1
    tail = b""
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(CHUNK_SIZE, size - offset), offset)
        if not chunk:
            break
        window = tail + chunk
        if any(n in window for n in needles):
            raise MediaError("cannot_clean", "an identifying value is still in the copy")
        tail = window[-overlap:] if overlap else b""
        offset += len(chunk)


def _removed(probed: dict, chosen: list[dict]) -> tuple[str, ...]:
    """Categories of what the original held and the copy does not."""
    removed: set[str] = set()
    format_tags = _tags(probed["format"])
    every = [format_tags, *(_tags(s) for s in _streams(probed))]
    for tags in every:
        for key, value in tags.items():
            lowered = key.lower()
            if key in _TECHNICAL_FORMAT_TAGS or key in _TECHNICAL_STREAM_TAGS:
                continue
            if "location" in lowered or "gps" in lowered or _ISO6709.fullmatch(value.strip()):
                removed.add("location")
            elif "creation_time" in lowered or lowered in ("date", "year"):
                removed.add("datetime")
            elif any(word in lowered for word in ("make", "model", "software", "device")):
                removed.add("device")
            else:
                removed.add("tags")
    if probed.get("chapters"):
        removed.add("chapters")
    chosen_ids = {id(s) for s in chosen}
    for stream in _streams(probed):
        if id(stream) not in chosen_ids:
            kind = stream.get("codec_type")
            removed.add("cover_picture" if kind == "video" else f"{kind or 'other'}_stream")
    return tuple(sorted(removed))

