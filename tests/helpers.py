"""Small builders shared by the tests: real files with identifying metadata, uploads, and
readers of what the database holds."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import BinaryIO

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Attachment, BlobChunk
from portal.security import crypto

GPS_IFD = 0x8825


def jpeg_with_metadata(make: str = "CanaryCam", size: tuple[int, int] = (64, 48),
                       comment: bytes = b"") -> bytes:
    """A real JPEG carrying device EXIF (Make, Model), a DateTimeOriginal and GPS coordinates."""
    image = Image.new("RGB", size, (30, 120, 60))
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = "Model X1"
    exif[0x0131] = "CanarySoft 1.0"
    exif[0x0132] = "2026:11:01 08:30:00"
    exif.get_ifd(0x8769)[0x9003] = "2026:11:01 08:30:00"
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (42.0, 54.0, 30.0)
    gps[3] = "E"
    gps[4] = (129.0, 30.0, 10.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), comment=comment)
    return out.getvalue()


@dataclass
class MemoryUpload:
    filename: str
    data: bytes
    oversize: bool = False
    stream: BinaryIO = field(init=False)

    def __post_init__(self) -> None:
        self.stream = io.BytesIO(self.data)


def attachment_ciphertext(session: Session, attachment_id: int) -> bytes:
    return b"".join(session.scalars(
        select(BlobChunk.data).where(BlobChunk.attachment_id == attachment_id)
        .order_by(BlobChunk.seq)
    ))


def open_attachment(session: Session, attachment: Attachment, identity: str) -> bytes:
    return crypto.open_sealed(attachment_ciphertext(session, attachment.id), [identity])


def give_custodian_keys(session: Session, codes: tuple[str, ...] = ("zhou", "yanji", "hunchun")
                        ) -> dict[str, str]:
    """Fresh custodian (identity) keys for these handling units, set on Unit.identity_key;
    returns each unit's age identity (as the printed recovery key would)."""
    from models import Unit

    made = {}
    for code in codes:
        unit = session.scalars(select(Unit).where(Unit.code == code)).one()
        pair = crypto.generate_keypair()
        unit.identity_key = pair.recipient
        made[code] = pair.identity
    session.commit()
    return made


def hand_custodian_key(session: Session, user_id: int, unit_code: str, identity: str) -> None:
    """Hand a unit's custodian key to one of its custodians (UnitKeyGrant, purpose identity)."""
    from models import KeyPurpose, Unit, User
    from portal.security.custody import _seal_grant

    unit = session.scalars(select(Unit).where(Unit.code == unit_code)).one()
    _seal_grant(session, unit, crypto.AgeIdentity(identity), session.get(User, user_id), None,
                KeyPurpose.IDENTITY)
    session.commit()
