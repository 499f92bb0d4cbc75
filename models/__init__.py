"""SQLAlchemy 2 typed tables, a module per aggregate."""

from models.audit import AuditEvent
from models.base import Base
from models.calendar import CalendarYear, Holiday
from models.category import Category
from models.install import InstallSecret, SetupToken
from models.tip import Attachment, BlobChunk, Channel, Message, Tip, TipStatus, TipUpdate
from models.unit import HANDLING_KINDS, Unit, UnitKind
from models.user import (
    LoginThrottle,
    Membership,
    RecoveryCode,
    Role,
    StaffSession,
    UnitKeyGrant,
    User,
)

__all__ = [
    "HANDLING_KINDS",
    "Attachment",
    "AuditEvent",
    "Base",
    "BlobChunk",
    "CalendarYear",
    "Category",
    "Channel",
    "Holiday",
    "InstallSecret",
    "LoginThrottle",
    "Membership",
    "Message",
    "RecoveryCode",
    "Role",
    "SetupToken",
    "StaffSession",
    "Tip",
    "TipStatus",
    "TipUpdate",
    "Unit",
    "UnitKeyGrant",
    "UnitKind",
    "User",
]
