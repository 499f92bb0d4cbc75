"""The readiness checks' runner and the plain checks (portal/web/readiness.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from portal.web import readiness
from portal.web.readiness import Check, Runner


def test_a_hung_group_is_reported_and_not_started_again_until_it_returns() -> None:
    release, calls = threading.Event(), []

    def hangs() -> list[Check]:
        calls.append(1)
        release.wait(10)
        return [Check("redis", True, "answers")]

    def quick() -> list[Check]:
        return [Check("fonts", True, "found"), Check("disk", True, "plenty")]

    runner = Runner()
    first = runner.run({"redis": hangs, "system": quick}, deadline=0.05)
    assert first == [Check("redis", False, "no answer within 0.05 s"),
                     Check("fonts", True, "found"), Check("disk", True, "plenty")]
    assert not readiness.is_ready(first)
    second = runner.run({"redis": hangs, "system": quick}, deadline=0.05)
    assert second[0] == Check("redis", False, "its previous check has not answered")
    assert len(calls) == 1
    release.set()
    runner._running["redis"].join(10)
    third = runner.run({"redis": hangs, "system": quick}, deadline=10)
    assert readiness.is_ready(third)
    assert len(calls) == 2


def test_a_group_that_raises_is_a_failed_check() -> None:
    def broken() -> list[Check]:
        raise RuntimeError("surprise\nsecond line")

    checks = Runner().run({"database": broken}, deadline=5)
    assert checks == [Check("database", False, "could not be checked: surprise")]


def test_warnings_do_not_make_a_server_unready() -> None:
    assert readiness.is_ready([Check("database", True, "answers"),
                               Check("custodian keys", False, "no key: hunchun", required=False)])
    assert not readiness.is_ready([Check("database", False, "does not answer")])


def test_free_space_is_measured_where_the_folder_will_be(tmp_path: Path) -> None:
    not_yet = tmp_path / "instance" / "not made yet"
    [enough] = readiness.check_free_space({"instance folder": not_yet}, 1)
    assert enough.ok and f"at {tmp_path}" in enough.detail
    [short] = readiness.check_free_space({"instance folder": not_yet}, 10**12)
    assert not short.ok and short.name == "disk (instance folder)"


def test_the_media_tools_are_the_ones_media_runs(monkeypatch) -> None:
    from portal.intake.sanitize import media

    seen = []
    monkeypatch.setattr(media.shutil, "which", lambda name, *a, **k: seen.append(name))
    media.available()
    assert set(seen) == set(readiness.MEDIA_TOOLS)


def test_install_line_names_each_missing_package_once() -> None:
    parts = [readiness.SystemPart("ffmpeg", "ffmpeg", None),
             readiness.SystemPart("ffprobe", "ffmpeg", None),
             readiness.SystemPart("font AR PL UMing CN", "fonts-arphic-uming", "/x/uming.ttc")]
    assert readiness.install_line(readiness.missing_packages(parts)) == "apt-get install ffmpeg"
