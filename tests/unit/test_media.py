"""Video and audio lose their metadata (portal/intake/sanitize/media.py through
portal.intake.sanitize.clean).

Every file here is a real one made by ffmpeg in the test (lavfi test pattern and sine, 1 s,
tiny), with the reporter's position, the device and canary strings planted in its tags; after
cleaning, neither ffprobe nor a search of the bytes finds any of them.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import subprocess

import pytest
from PIL import Image

from portal.intake import sanitize
from portal.intake.sanitize import CleanReport, FileKind, UploadRejected, clean, media, sniff

MB = 1024 * 1024
LOCATION = "+42.9048+129.5136/"
TAKEN = "2026-05-01T10:20:30"
CANARIES = ("CanaryPhone", "Canary9", "CanaryArtist", "CanaryComment", "42.9048", "129.5136")
VIDEO_INPUT = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=1",
               "-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000"]
AUDIO_INPUT = ["-f", "lavfi", "-i", "sine=duration=1:sample_rate=8000"]
# What each test file is made of: inputs, codecs and muxer options.
RECIPES: dict[str, list[str]] = {
    "mp4": [*VIDEO_INPUT, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            "-movflags", "use_metadata_tags", "-shortest", "-f", "mp4"],
    "mov": [*VIDEO_INPUT, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            "-movflags", "use_metadata_tags",
            "-metadata", f"com.apple.quicktime.location.ISO6709={LOCATION}",
            "-metadata", "com.apple.quicktime.make=CanaryPhone",
            "-metadata", "com.apple.quicktime.model=Canary9", "-shortest", "-f", "mov"],
    "m4a": [*AUDIO_INPUT, "-c:a", "aac", "-f", "ipod"],
    "mp3": [*AUDIO_INPUT, "-c:a", "libmp3lame", "-f", "mp3"],
    "ogg": [*AUDIO_INPUT, "-c:a", "libvorbis", "-f", "ogg"],
    "flac": [*AUDIO_INPUT, "-c:a", "flac", "-f", "flac"],
}
TAGS = ["-metadata", f"location={LOCATION}", "-metadata", "make=CanaryPhone",
        "-metadata", "model=Canary9", "-metadata", f"creation_time={TAKEN}Z",
        "-metadata", "artist=CanaryArtist", "-metadata", "comment=CanaryComment"]


def require_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        if os.environ.get("CI"):
            pytest.fail("ffmpeg is required in CI (Debian package ffmpeg)")
        pytest.skip("ffmpeg is not installed")


def make_media(kind: str, *, tags: bool = True) -> bytes:
    """A real 1-second file of ``kind`` (a key of RECIPES) with the canary tags planted."""
    require_ffmpeg()
    recipe = RECIPES[kind]
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", *recipe[:-2],
            *(TAGS if tags else []), *recipe[-2:], "out"]
    return _ffmpeg_to_bytes(args)


def _ffmpeg_to_bytes(args: list[str]) -> bytes:
    """Run ffmpeg with its last argument replaced by a seekable memory file (the MP4 muxer
    needs to seek back), and return what it wrote."""
    fd = os.memfd_create("test-media")
    try:
        subprocess.run([*args[:-1], "-y", f"/dev/fd/{fd}"], check=True, pass_fds=(fd,),
                       timeout=30)
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return {kind: make_media(kind) for kind in RECIPES}


@functools.lru_cache(maxsize=64)
def probe(data: bytes) -> str:
    """ffprobe's whole view (format, streams, chapters and their tags) as JSON text."""
    answer = subprocess.run(
        ["ffprobe", "-hide_banner", "-loglevel", "error", "-show_format", "-show_streams",
         "-show_chapters", "-of", "json", "pipe:0"],
        input=data, capture_output=True, check=True, timeout=30)
    return answer.stdout.decode()


def run_clean(data: bytes, *, keep_location: bool = False) -> tuple[CleanReport, bytes]:
    kind = sniff(data[:8192])
    sink = io.BytesIO()
    report = clean(io.BytesIO(data), kind, keep_location=keep_location,
                   max_in_memory=10 * MB, sink=sink)
    return report, sink.getvalue()


def refused(data: bytes, kind: FileKind | None = None) -> str:
    sink = io.BytesIO()
    with pytest.raises(UploadRejected) as info:
        clean(io.BytesIO(data), kind or sniff(data[:8192]), keep_location=False,
              max_in_memory=10 * MB, sink=sink)
    assert sink.getvalue() == b"", "nothing may be written for a refused file"
    return info.value.code


def assert_no_canary(data: bytes, *, allowed: tuple[str, ...] = ()) -> None:
    seen = probe(data)
    for canary in CANARIES:
        if canary in allowed:
            continue
        assert canary not in seen, f"ffprobe still shows {canary}"
        assert canary.encode() not in data, f"{canary} still in the bytes"


def test_fixtures_really_carry_the_metadata(files) -> None:
    """Otherwise the tests below would prove nothing."""
    for kind, data in files.items():
        for canary in ("CanaryComment", "CanaryArtist", LOCATION):
            if kind == "m4a" and canary == LOCATION:
                continue  # M4A holds it in binary (a 'loci' box)
            assert canary.encode() in data, (kind, canary)
    for kind in ("mp4", "mov"):
        for canary in ("CanaryPhone", "Canary9"):
            assert canary.encode() in files[kind], (kind, canary)
    assert b"com.apple.quicktime.location.ISO6709" in files["mov"]
    assert int(TAKEN[:4]) > 2000  # creation_time is checked through ffprobe below


@pytest.mark.parametrize("kind", ["mp4", "mov"])
def test_video_loses_location_device_and_time(files, kind: str, monkeypatch) -> None:
    original = json.loads(probe(files[kind]))["format"]["tags"]
    assert original["make"] == "CanaryPhone" and original["creation_time"].startswith(TAKEN)
    calls: list[list[str]] = []
    real_run = media._run

    def spy(tools, args, **kwargs):
        calls.append(args)
        return real_run(tools, args, **kwargs)

    monkeypatch.setattr(media, "_run", spy)
    report, out = run_clean(files[kind])
    assert report.kind.extension == kind and not report.uncleaned and report.kept == ()
    assert {"location", "device", "datetime", "tags"} <= set(report.removed)
    assert_no_canary(out)
    seen = json.loads(probe(out))
    assert "creation_time" not in json.dumps(seen)
    assert sorted(s["codec_type"] for s in seen["streams"]) == ["audio", "video"]
    assert out.startswith(files[kind][:4]) and sniff(out[:8192]) == report.kind
    assert report.size == len(out)
    assert_safe_invocations(calls, demuxer="mov", muxer=kind)


def assert_safe_invocations(calls: list[list[str]], *, demuxer: str, muxer: str) -> None:
    """Each run: a fixed demuxer (no HLS/concat playlists), only the file protocol (no URLs),
    input and output as /dev/fd of anonymous memory files (no plaintext on disk), no stdin;
    ffmpeg copies without re-encoding, drops all metadata and chapters, and is asked not to
    write an encoder tag."""
    assert len(calls) == 3  # probe, copy, probe the copy
    for args in calls:
        assert args[args.index("-f") + 1] == demuxer
        assert args[args.index("-protocol_whitelist") + 1] == "file"
        assert args[args.index("-i") + 1].startswith("file:/dev/fd/")
    copy = calls[1]
    assert "-nostdin" in copy and copy[-1].startswith("file:/dev/fd/")
    assert copy[copy.index("-map_metadata") + 1] == "-1"
    assert copy[copy.index("-map_chapters") + 1] == "-1"
    assert copy[copy.index("-c") + 1] == "copy" and "+bitexact" in copy
    assert copy[-3:-1] == ["-f", muxer]


def test_video_keeps_location_and_time_on_request_but_never_the_device(files) -> None:
    report, out = run_clean(files["mov"], keep_location=True)
    assert report.kept == ("datetime", "location")
    assert "device" in report.removed and "location" not in report.removed
    assert_no_canary(out, allowed=("42.9048", "129.5136"))
    tags = json.loads(probe(out))["format"]["tags"]
    assert tags["location"] == LOCATION and tags["creation_time"].startswith(TAKEN)
    assert not {"make", "model", "comment", "artist"} & set(tags)


@pytest.mark.parametrize("kind", ["m4a", "mp3", "ogg", "flac"])
def test_audio_loses_its_tags(files, kind: str) -> None:
    report, out = run_clean(files[kind])
    assert report.kind.family == "audio" and report.kind.extension == kind
    assert not report.uncleaned and "tags" in report.removed
    assert_no_canary(out)
    streams = json.loads(probe(out))["streams"]
    assert [s["codec_type"] for s in streams] == ["audio"]


def test_audio_keeps_a_location_on_request(files) -> None:
    report, out = run_clean(files["flac"], keep_location=True)
    assert "location" in report.kept
    assert_no_canary(out, allowed=("42.9048", "129.5136"))


def test_kept_names_only_what_the_copy_holds(files, monkeypatch) -> None:
    """'kept' is read from the verified copy, not from what was asked: a muxer with no place
    for the location (here: ffmpeg given nothing to keep) keeps none, and says so."""
    real_copy = media._copy

    def copy_keeping_nothing(tools, container, in_fd, out_fd, family, kept_tags, *, limit):
        real_copy(tools, container, in_fd, out_fd, family, {}, limit=limit)

    monkeypatch.setattr(media, "_copy", copy_keeping_nothing)
    report, out = run_clean(files["mp3"], keep_location=True)
    assert report.kept == () and "location" in report.removed
    assert_no_canary(out)


def test_cover_picture_of_an_audio_file_is_dropped(tmp_path) -> None:
    """An MP3's attached picture is a JPEG that may carry its own EXIF."""
    require_ffmpeg()
    cover = tmp_path / "cover.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(cover)
    data = _ffmpeg_to_bytes(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
                             *AUDIO_INPUT, "-i", str(cover), "-map", "0", "-map", "1",
                             "-c:a", "libmp3lame", "-c:v", "png", "-disposition:v",
                             "attached_pic", *TAGS, "-f", "mp3", "out"])
    assert '"attached_pic": 1' in probe(data)
    report, out = run_clean(data)
    assert "cover_picture" in report.removed
    assert [s["codec_type"] for s in json.loads(probe(out))["streams"]] == ["audio"]
    assert_no_canary(out)


# ---------------------------------------------------------------- refused, never stored


def test_truncated_or_garbage_video_is_refused(files) -> None:
    video = files["mp4"]
    assert refused(video[: len(video) // 2]) == "corrupt"  # the index (moov) is at the end
    assert refused(video[:32] + os.urandom(4000)) == "corrupt"
    assert refused(video[:32] + b"\x00" * 4000) == "corrupt"


def test_garbage_audio_is_refused() -> None:
    assert refused(b"fLaC" + os.urandom(3000)) == "corrupt"
    assert refused(b"OggS" + bytes(3000)) == "corrupt"


def test_a_copy_that_still_holds_metadata_is_refused(files, monkeypatch) -> None:
    """If ffmpeg ever left the tags in (a muxer writing what it was given), the ffprobe check
    refuses the file instead of storing it."""

    def copy_unchanged(tools, container, in_fd, out_fd, family, kept_tags, *, limit):
        os.write(out_fd, os.pread(in_fd, 10 * MB, 0))

    monkeypatch.setattr(media, "_copy", copy_unchanged)
    assert refused(files["mov"]) == "cannot_clean"


def test_identifying_bytes_outside_any_tag_are_refused(files, monkeypatch) -> None:
    """The second check: a value of the original's tags found anywhere in the new bytes (say
    in a box ffprobe does not show) also refuses the file."""
    real_copy = media._copy

    def copy_then_append(tools, container, in_fd, out_fd, family, kept_tags, *, limit):
        real_copy(tools, container, in_fd, out_fd, family, kept_tags, limit=limit)
        os.pwrite(out_fd, b"\x00\x00\x00\x13freeCanaryPhone", os.fstat(out_fd).st_size)

    monkeypatch.setattr(media, "_copy", copy_then_append)
    assert refused(files["mp4"]) == "cannot_clean"


def test_without_ffmpeg_video_and_audio_are_refused(monkeypatch) -> None:
    monkeypatch.setattr(media.shutil, "which", lambda name: None)
    assert not media.available()
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(100)
    assert refused(head) == "cannot_clean"
    assert refused(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(100)) == "cannot_clean"


def test_a_tool_that_hangs_is_killed_and_the_file_refused(files, monkeypatch) -> None:
    require_ffmpeg()
    monkeypatch.setattr(media, "FFPROBE_TIMEOUT", 0.001)
    assert refused(files["mp4"]) == "cannot_clean"


def test_too_large_to_clean_before_any_tool_runs(files, monkeypatch) -> None:
    monkeypatch.setattr(media, "_run", lambda *a, **k: pytest.fail("a tool ran"))
    sink = io.BytesIO()
    with pytest.raises(UploadRejected) as info:
        clean(io.BytesIO(files["mp4"]), sanitize.MP4, keep_location=False,
              max_in_memory=1000, sink=sink)
    assert info.value.code == "too_large_to_clean" and sink.getvalue() == b""

