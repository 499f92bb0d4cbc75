"""The intake service: validation, routing and sealing, attachments, audit, atomicity."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from sqlalchemy import func, select

from auditlog.events import canonical_details
from models import Attachment, AuditEvent, BlobChunk, Tip, TipUpdate
from portal.intake import filing
from portal.security import crypto
from tests.conftest import FAST_ARGON2
from tests.helpers import GPS_IFD, MemoryUpload, jpeg_with_metadata, open_attachment

LIMITS = filing.Limits(max_files=10, max_file_bytes=5 * 1024 * 1024,
                       max_clean_bytes=5 * 1024 * 1024)


def file(session, draft, uploads=()):
    return filing.file_tip(session, draft, list(uploads), limits=LIMITS,
                           receipt_cost=FAST_ARGON2)


def test_tip_for_a_county_is_sealed_to_it_the_bureau_and_the_receipt(app, portal_keys) -> None:
    from portal.web.extensions import db

    filed = file(db.session, filing.TipDraft(narrative="sand mining at night", county="dunhua",
                                             category="P05"))
    tip = db.session.get(Tip, filed.tip_id)
    assert tip.unit.code == "dunhua" and tip.category.code == "P05" and tip.status == "received"
    for holder in ("dunhua", "zhou"):
        content = json.loads(crypto.open_sealed(tip.content, [portal_keys[holder]]))
        assert content["narrative"] == "sand mining at night"
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(tip.content, [portal_keys["yanji"]])
    from portal.intake.receipts import derive_keys
    from portal.security.keys import install_secret

    keys = derive_keys(filed.receipt, install_secret(db.session, "receipt_salt"), FAST_ARGON2)
    assert keys.lookup == tip.receipt_lookup
    assert crypto.open_sealed(tip.content, [keys.keypair.identity])


def test_unknown_county_goes_to_the_bureau_only(app, portal_keys) -> None:
    from portal.web.extensions import db

    filed = file(db.session, filing.TipDraft(narrative="somewhere", county=None))
    tip = db.session.get(Tip, filed.tip_id)
    assert tip.unit.code == "zhou" and tip.category_id is None
    crypto.open_sealed(tip.content, [portal_keys["zhou"]])
    for county in filing.COUNTIES:
        with pytest.raises(crypto.CryptoError):
            crypto.open_sealed(tip.content, [portal_keys[county]])


@pytest.mark.parametrize(("draft", "field", "code"), [
    (filing.TipDraft(narrative="  "), "narrative", "required"),
    (filing.TipDraft(narrative="x", category="P11"), "category", "unknown_category"),
    (filing.TipDraft(narrative="x", county="beijing"), "county", "unknown_county"),
    (filing.TipDraft(narrative="x" * 20001), "narrative", "too_long"),
    (filing.TipDraft(narrative="x", identity=filing.Identity(name="")), "name",
     "required_real_name"),
    (filing.TipDraft(narrative="x", identity=filing.Identity(name="李", phone="call me")),
     "phone", "invalid_phone"),
    (filing.TipDraft(narrative="x", identity=filing.Identity(name="李",
                                                             id_number="222401199001011234")),
     "id_number", "invalid_id_number"),
])
def test_validation_names_the_field(app, portal_keys, draft, field, code) -> None:
    from portal.web.extensions import db

    with pytest.raises(filing.IntakeRejected) as rejected:
        file(db.session, draft)
    assert rejected.value.errors[field].code == code
    assert db.session.scalar(select(func.count()).select_from(Tip)) == 0


def test_id_number_checksum() -> None:
    assert filing.valid_id_number("11010519491231002X")
    assert filing.valid_id_number("11010519491231002x")
    assert not filing.valid_id_number("110105194912310021")
    assert not filing.valid_id_number("1101051949123100")


def test_photo_is_cleaned_and_sealed(app, portal_keys) -> None:
    from portal.web.extensions import db

    photo = jpeg_with_metadata()
    filed = file(db.session, filing.TipDraft(narrative="photo", county="yanji"),
                 [MemoryUpload("river.jpg", photo)])
    attachment = db.session.scalars(select(Attachment)).one()
    assert attachment.tip_id == filed.tip_id and attachment.family == "image"
    stored = open_attachment(db.session, attachment, portal_keys["yanji"])
    assert b"CanaryCam" not in stored
    exif = Image.open(__import__("io").BytesIO(stored)).getexif()
    assert 0x010F not in exif and not exif.get_ifd(GPS_IFD)
    meta = json.loads(crypto.open_sealed(attachment.meta, [portal_keys["zhou"]]))
    assert meta["filename"] == "river.jpg" and meta["media_type"] == "image/jpeg"


def test_keep_location_keeps_gps_but_not_the_device(app, portal_keys) -> None:
    from portal.web.extensions import db

    file(db.session, filing.TipDraft(narrative="photo", keep_photo_location=True),
         [MemoryUpload("river.jpg", jpeg_with_metadata())])
    attachment = db.session.scalars(select(Attachment)).one()
    stored = open_attachment(db.session, attachment, portal_keys["zhou"])
    exif = Image.open(__import__("io").BytesIO(stored)).getexif()
    assert exif.get_ifd(GPS_IFD) and 0x010F not in exif and b"CanaryCam" not in stored


def test_a_bad_file_leaves_nothing_behind(app, portal_keys) -> None:
    from portal.web.extensions import db

    good = MemoryUpload("ok.jpg", jpeg_with_metadata())
    bad = MemoryUpload("evil.exe", b"MZ\x90\x00" + b"\x00" * 500)
    with pytest.raises(filing.IntakeRejected) as rejected:
        file(db.session, filing.TipDraft(narrative="two files"), [good, bad])
    assert rejected.value.errors["attachments.1"].code == "type_not_allowed"
    for table in (Tip, Attachment, BlobChunk, TipUpdate):
        assert db.session.scalar(select(func.count()).select_from(table)) == 0, table
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action.like("tip.%"))) == 0


def test_oversize_and_too_many_files_are_named(app, portal_keys) -> None:
    from portal.web.extensions import db

    with pytest.raises(filing.IntakeRejected) as rejected:
        file(db.session, filing.TipDraft(narrative="big"),
             [MemoryUpload("huge.mp4", b"", oversize=True)])
    assert rejected.value.errors["attachments.0"].code == "file_too_large"
    many = [MemoryUpload(f"{i}.txt", b"text") for i in range(11)]
    with pytest.raises(filing.IntakeRejected) as rejected:
        file(db.session, filing.TipDraft(narrative="many"), many)
    assert rejected.value.errors["attachments"].code == "too_many_files"


def test_audit_event_records_the_filing_without_content(app, portal_keys) -> None:
    from portal.web.extensions import db

    filed = file(db.session, filing.TipDraft(
        narrative="CANARY-NARRATIVE", county="antu",
        identity=filing.Identity(name="CANARY-NAME", phone="13800000000")))
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "tip.received")).one()
    assert (event.actor_type, event.object_type, event.object_id, event.unit_code) == (
        "reporter", "tip", filed.tip_id, "antu")
    assert json.loads(event.details) == {"attachments": 0, "channel": "online", "real_name": True}
    assert "CANARY" not in event.details


def test_audit_details_refuse_text_that_could_be_content() -> None:
    with pytest.raises(ValueError):
        canonical_details({"note": "x" * 200})
    with pytest.raises(TypeError):
        canonical_details({"blob": b"bytes"})  # type: ignore[dict-item]


def test_blind_index_matches_the_same_party_written_differently() -> None:
    key = b"k" * 32
    spaced = filing.blind_index(key, "延吉 某某 化工厂")
    assert spaced == filing.blind_index(key, "延吉某某化工厂。")
    assert filing.blind_index(key, "ACME Ltd.") == filing.blind_index(key, "acme ltd")
    assert filing.blind_index(key, "ACME") != filing.blind_index(b"j" * 32, "ACME")
    assert filing.blind_index(key, " ,. ") is None
