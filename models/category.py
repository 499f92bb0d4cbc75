"""The 17 clue categories, versioned: an edit adds a version and a tip keeps the one it was filed
under."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime, utcnow


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("code", "version", name="uq_categories_code_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8))  # P01…P10 (province), Z01…Z07 (prefecture)
    version: Mapped[int] = mapped_column(default=1)
    current: Mapped[bool] = mapped_column(default=True, index=True)
    scope: Mapped[str] = mapped_column(String(12))  # "province" | "prefecture"
    sort_order: Mapped[int] = mapped_column(default=0)
    name_zh: Mapped[str] = mapped_column(Text)
    name_ko: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    description_zh: Mapped[str] = mapped_column(Text, default="")
    description_ko: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    usual_receiver: Mapped[str | None] = mapped_column(String(24))  # a UnitKind
    # Days after closing that a tip of this category is kept (portal/operations/retention.py); None
    # keeps
    # it for ever. Carried to each new version; the current version's value applies.
    retention_days: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def name(self, locale: str) -> str:
        return {"ko": self.name_ko, "en": self.name_en}.get(locale, self.name_zh)

    def description(self, locale: str) -> str:
        return {"ko": self.description_ko, "en": self.description_en}.get(
            locale, self.description_zh
        )
