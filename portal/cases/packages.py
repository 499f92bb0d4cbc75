"""A referral's package as a download, for the staff and liaison pages and the API alike: the
ZIP decrypted with the keys the person holds, or the sealed file as stored (age) to open offline
with the receiving body's key. Who may have it, and the log of each download or refusal, are
portal/cases/referrals.py's (open_package, package_ciphertext)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from portal.cases import referrals
from portal.security.access import Principal

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PackageDownload:
    filename: str
    media_type: str
    chunks: Iterator[bytes]


def package_download(session: Session, principal: Principal, referral_id: int, *,
                     sealed: bool) -> PackageDownload:
    """referral-<id>.zip (decrypted) or referral-<id>.zip.age (sealed). Raises NotFound, or
    KeyNotHeld when the person holds no key that opens it (the refusal is logged)."""
    if sealed:
        referral, reader = referrals.package_ciphertext(session, principal, referral_id)
        return PackageDownload(f"referral-{referral.id}.zip.age", "application/octet-stream",
                               iter(lambda: reader.read(CHUNK), b""))
    referral, chunks = referrals.open_package(session, principal, referral_id)
    return PackageDownload(f"referral-{referral.id}.zip", "application/zip", chunks)
