"""Staff accounts, their units and roles, and the unit keys granted to them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, utcnow


class Role(enum.StrEnum):
    INTAKE_OFFICER = "intake_officer"  # 受理员
    CASE_OFFICER = "case_officer"  # 承办人
    HEAD = "head"  # 负责人
    CUSTODIAN = "custodian"  # 信息保密员: holds the unit's identity key, decides identity requests
    LIAISON = "liaison"  # 联络员 of a receiving body
    AUDITOR = "auditor"  # 审计
    ADMINISTRATOR = "administrator"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(Text)  # Argon2id (login parameters)
    # Personal X25519 key: the identity is wrapped under a key derived from the password with
    # Argon2id parameters distinct from the login hash.
    public_key: Mapped[str] = mapped_column(Text)
    wrapped_identity: Mapped[bytes] = mapped_column(LargeBinary)
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # sealed under SECRET_KEY
    totp_last_step: Mapped[int | None] = mapped_column()  # a used code cannot be replayed
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A password reset by an administrator (portal/security/accounts.py): who asked and when (kept
    # for the
    # notice at the next sign-in), where it stands — "confirm" (a second administrator must
    # confirm, the second factor being lost too), "open" (the one-time link works) or None —,
    # wrong codes typed on the link's page, and whether the notice is still to be shown.
    reset_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reset_state: Mapped[str | None] = mapped_column(String(8))
    reset_factor_lost: Mapped[bool] = mapped_column(default=False, server_default=false())
    reset_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    reset_notice: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Raised by "sign out everywhere": the browsers this account signed in from are no longer
    # known devices (portal/security/auth.py binds the known-device cookie to it and the password
    # hash).
    device_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    memberships: Mapped[list[Membership]] = relationship(back_populates="user",
                                                         foreign_keys="Membership.user_id")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "unit_id", "role", name="uq_memberships_triple"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    role: Mapped[str] = mapped_column(String(24))
    # Two-person rule (portal/security/accounts.py): an officer, liaison or administrator role
    # given on
    # the administration pages waits, giving no access, until someone else who speaks for the
    # unit confirms it. Who asked and when; who confirmed and when (None while it waits).
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User] = relationship(back_populates="memberships", foreign_keys=[user_id])
    unit = relationship("Unit")


class KeyPurpose(enum.StrEnum):
    CONTENT = "content"  # Unit.public_key: opens the unit's tips, cases and packages
    IDENTITY = "identity"  # Unit.identity_key: opens real-name reporters' identities


class UnitKeyGrant(Base):
    """A unit's identity (age secret key) sealed to one member's personal key: the content key
    to its officers and liaisons, the identity key to its custodians."""

    __tablename__ = "unit_key_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    sealed_identity: Mapped[bytes] = mapped_column(LargeBinary)
    purpose: Mapped[str] = mapped_column(String(12), default=KeyPurpose.CONTENT,
                                         server_default=KeyPurpose.CONTENT.value)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    """One-time second-factor recovery codes, stored as SHA-256 of 60 random bits."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Failed sign-in attempts under a hashed key (portal/security/auth.py): an account name
    (existing or
    not, so the answer reveals nothing), an account's second factor, or a known device."""

    __tablename__ = "login_throttles"

    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffSession(Base):
    """A server-side staff session or API token (embedded store; Redis holds them when set).

    Only a hash of the session id is stored. The officer's personal identity is kept sealed
    under a key that exists only in the officer's cookie or token."""

    __tablename__ = "staff_sessions"

    id_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # web | api
    stage: Mapped[str] = mapped_column(String(12))  # password (second factor pending) | active
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sealed_identity: Mapped[bytes] = mapped_column(LargeBinary)
