"""A reporter's video or recording, sent through the citizen form, is stored without the place,
device and time it carries (unless the reporter keeps place and time), and a file that cannot be
cleaned is refused in words, never stored as it came."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from models import Attachment, Tip
from portal.security import crypto
from portal.web.extensions import db
from tests.functional.test_citizen import submit
from tests.helpers import open_attachment
from tests.unit.test_media import LOCATION, TAKEN, assert_no_canary, make_media, probe


@pytest.fixture(scope="module")
def videos() -> dict[str, bytes]:
    return {"mp4": make_media("mp4"), "mov": make_media("mov"), "mp3": make_media("mp3")}


def stored_files(identity: str) -> list[tuple[dict, bytes]]:
    """Every attachment of the one tip, decrypted with the unit's recovery key."""
    tip = db.session.scalars(select(Tip)).one()
    attachments = db.session.scalars(
        select(Attachment).where(Attachment.tip_id == tip.id).order_by(Attachment.id)).all()
    return [(json.loads(crypto.open_sealed(a.meta, [identity])) | {"uncleaned": a.uncleaned},
             open_attachment(db.session, a, identity)) for a in attachments]


def test_video_and_audio_are_stored_without_place_device_or_time(client, portal_keys,
                                                                 videos) -> None:
    response = submit(client, "/report?lang=en", county="yanji", attachments=[
        (io.BytesIO(videos["mp4"]), "river.mp4"), (io.BytesIO(videos["mp3"]), "call.mp3")])
    assert response.status_code == 201, response.get_data(as_text=True)[:2000]
    (video_meta, video), (audio_meta, audio) = stored_files(portal_keys["yanji"])
    assert video_meta["media_type"] == "video/mp4" and not video_meta["uncleaned"]
    assert {"location", "device", "datetime"} <= set(video_meta["removed"])
    assert video_meta["kept"] == [] and audio_meta["media_type"] == "audio/mpeg"
    for data in (video, audio):
        assert_no_canary(data)
    assert "creation_time" not in probe(video)


def test_keeping_location_keeps_place_and_time_but_not_the_device(client, portal_keys,
                                                                  videos) -> None:
    response = submit(client, "/report?lang=en", county="yanji", keep_photo_location="y",
                      attachments=[(io.BytesIO(videos["mov"]), "IMG_0042.MOV")])
    assert response.status_code == 201, response.get_data(as_text=True)[:2000]
    [(meta, video)] = stored_files(portal_keys["yanji"])
    assert meta["kept"] == ["datetime", "location"] and "device" in meta["removed"]
    tags = json.loads(probe(video))["format"]["tags"]
    assert tags["location"] == LOCATION and tags["creation_time"].startswith(TAKEN)
    assert_no_canary(video, allowed=("42.9048", "129.5136"))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_video_that_cannot_be_cleaned_is_refused_in_words(client, portal_keys, videos,
                                                            damage: str) -> None:
    good = videos["mp4"]
    bad = good[: len(good) // 2] if damage == "truncated" else good[:32] + bytes(5000)
    response = submit(client, "/report?lang=en", county="yanji",
                      narrative="the video shows the outflow",
                      attachments=[(io.BytesIO(bad), "outflow.mp4")])
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "outflow.mp4" in page and "damaged or could not be read" in page
    assert "the video shows the outflow" in page  # nothing typed is lost
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0


def test_without_ffmpeg_the_reporter_is_told_why(client, portal_keys, videos,
                                                 monkeypatch) -> None:
    from portal.intake.sanitize import media

    monkeypatch.setattr(media.shutil, "which", lambda name: None)
    response = submit(client, "/report?lang=en", county="yanji",
                      attachments=[(io.BytesIO(videos["mp4"]), "river.mp4")])
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "could not remove the hidden data (place, time, device) from “river.mp4”" in page
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
