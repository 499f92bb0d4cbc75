"""Installation state: one-time setup tokens and install-wide secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow

# The blind-index key, as an age file sealed to every handling unit's key (portal/intake/filing.py
# make_blind_key): only an officer or a recovery key opens it. The key itself is never stored.
SEALED_BLIND_KEY = "blind_index_key.sealed"


class InstallSecret(Base):
    """Values made once per installation: the receipt salt, and the blind-index key sealed to
    the handling units (SEALED_BLIND_KEY), never in plain."""

    __tablename__ = "install_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)


class SetupToken(Base):
    __tablename__ = "setup_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
