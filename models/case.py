"""Cases (formed from accepted tips), their 专案组, the offences they concern, referrals of a
case to a receiving body with their event history, and inbound suggestions (三书一函)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, utcnow


class Offence(Base):
    """A suspected offence and its legal basis (editable list)."""

    __tablename__ = "offences"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    name_zh: Mapped[str] = mapped_column(String(80))
    name_ko: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    basis: Mapped[str] = mapped_column(String(120))  # e.g. 《中华人民共和国刑法》第三百三十八条
    active: Mapped[bool] = mapped_column(default=True)

    def name(self, locale: str) -> str:
        return {"ko": self.name_ko, "en": self.name_en}.get(locale, self.name_zh)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("year", "seq", name="uq_cases_year_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(60), unique=True)  # 延州环移〔2026〕第17号
    year: Mapped[int] = mapped_column()
    seq: Mapped[int] = mapped_column()
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    offence_id: Mapped[int | None] = mapped_column(ForeignKey("offences.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | referred | closed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # age ciphertext of {"title", "summary"}: the case's facts are content.
    content: Mapped[bytes] = mapped_column(LargeBinary)

    unit = relationship("Unit")
    offence = relationship("Offence")
    tips = relationship("CaseTip", back_populates="case", order_by="CaseTip.tip_id")
    members = relationship("CaseMember", back_populates="case", order_by="CaseMember.user_id")
    referrals = relationship("Referral", back_populates="case", order_by="Referral.id")


class CaseTip(Base):
    __tablename__ = "case_tips"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    tip_id: Mapped[int] = mapped_column(ForeignKey("tips.id"), primary_key=True, unique=True)

    case = relationship("Case", back_populates="tips")
    tip = relationship("Tip")


class CaseMember(Base):
    """A member of the case's 专案组 (at least two officers)."""

    __tablename__ = "case_members"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)

    case = relationship("Case", back_populates="members")
    user = relationship("User")


class Referral(Base):
    """A case referred to one receiving body, moving through referral/workflow.py."""

    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_receiver_state", "receiving_unit_id", "state"),
                      Index("ix_referrals_due", "due_at"),
                      Index("ix_referrals_state", "state", "state_since"),
                      Index("ix_referrals_unit", "unit_id", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # The case's unit (a case never changes unit), so the lists filter on it without cases.
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    receiving_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    copy_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))  # 抄送检察院
    state: Mapped[str] = mapped_column(String(32))
    state_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_step: Mapped[str | None] = mapped_column(String(40))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_certain: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # use_alter: attachments point back at referrals, so this key is added after both tables.
    package_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id", use_alter=True))
    letter_sha256: Mapped[str | None] = mapped_column(String(64))
    # age ciphertext of the letter's inputs, so the 移送书 can be rendered again, identical.
    letter_data: Mapped[bytes | None] = mapped_column(LargeBinary)

    case = relationship("Case", back_populates="referrals")
    receiving_unit = relationship("Unit", foreign_keys=[receiving_unit_id])
    copy_unit = relationship("Unit", foreign_keys=[copy_unit_id])
    events = relationship("ReferralEvent", back_populates="referral",
                          order_by="ReferralEvent.id")


class ReferralEvent(Base):
    """One step of a referral: who did what, when, and whether its deadline was met."""

    __tablename__ = "referral_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_step: Mapped[str | None] = mapped_column(String(40))  # the step this event closed
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_time: Mapped[bool | None] = mapped_column()
    # age ciphertext of the reason, sealed to the bureau and the receiving body.
    reason: Mapped[bytes | None] = mapped_column(LargeBinary)

    referral = relationship("Referral", back_populates="events")


class ReferralTipFile(Base):
    """A file a reporter sent with one of the case's tips, chosen to go into the referral's
    package as it is stored: its name, its type, and the location and time the reporter chose to
    keep."""

    __tablename__ = "referral_tip_files"

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachments.id"), primary_key=True)


class Suggestion(Base):
    """An inbound 司法建议书 / 检察建议书 / 监察建议书 / 公安提示函 and its rectification."""

    __tablename__ = "suggestions"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))  # judicial|procuratorial|supervisory|police
    issuer: Mapped[str] = mapped_column(String(120))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    received_on: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_certain: Mapped[bool] = mapped_column(default=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # age ciphertext of {"problems", "measures"} (the text of the suggestion and the answer).
    content: Mapped[bytes] = mapped_column(LargeBinary)
    notes: Mapped[str] = mapped_column(Text, default="")

    unit = relationship("Unit")
