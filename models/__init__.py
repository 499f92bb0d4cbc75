"""SQLAlchemy 2 typed tables, a module per aggregate."""

from models.audit import AuditCheckpoint, AuditEvent, AuditHead, AuditVerification
from models.base import Base
from models.calendar import CalendarYear, Holiday
from models.case import (
    Case,
    CaseMember,
    CaseTip,
    Offence,
    Referral,
    ReferralEvent,
    ReferralTipFile,
    Suggestion,
)
from models.category import Category
from models.identity import (
    IdentityPurpose,
    IdentityRequest,
    Redaction,
    ReferralTipText,
    RequestState,
    TipIdentity,
)
from models.install import InstallSecret, SetupToken
from models.step_outcome import StepOutcome
from models.tip import (
    Attachment,
    BlobChunk,
    Channel,
    Language,
    Message,
    Tip,
    TipStatus,
    TipUpdate,
)
from models.tip_count import TipCount
from models.unit import HANDLING_KINDS, RECEIVING_KINDS, Unit, UnitKind
from models.user import (
    KeyPurpose,
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
    "RECEIVING_KINDS",
    "Attachment",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "AuditVerification",
    "Base",
    "BlobChunk",
    "CalendarYear",
    "Case",
    "CaseMember",
    "CaseTip",
    "Category",
    "Channel",
    "Holiday",
    "IdentityPurpose",
    "IdentityRequest",
    "InstallSecret",
    "KeyPurpose",
    "Language",
    "LoginThrottle",
    "Membership",
    "Message",
    "Offence",
    "RecoveryCode",
    "Redaction",
    "Referral",
    "ReferralEvent",
    "ReferralTipFile",
    "ReferralTipText",
    "RequestState",
    "Role",
    "SetupToken",
    "StaffSession",
    "StepOutcome",
    "Suggestion",
    "Tip",
    "TipCount",
    "TipIdentity",
    "TipStatus",
    "TipUpdate",
    "Unit",
    "UnitKeyGrant",
    "UnitKind",
    "User",
]
