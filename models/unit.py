"""Units: the bureau's handling units and the receiving bodies, as one tree."""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base


class UnitKind(enum.StrEnum):
    PROVINCE = "province"  # 省生态环境厅
    BUREAU = "bureau"  # 州本级: sees every tip of the prefecture
    COUNTY = "county"  # 县市分局
    PUBLIC_SECURITY = "public_security"  # 公安局
    PROCURATORATE = "procuratorate"  # 检察院
    COURT = "court"  # 法院
    DISCIPLINE = "discipline"  # 纪委监委
    ADMIN_DEPT = "admin_dept"  # 自然资源局, 林业局 … (转办)


HANDLING_KINDS = (UnitKind.BUREAU, UnitKind.COUNTY)
RECEIVING_KINDS = (UnitKind.PUBLIC_SECURITY, UnitKind.PROCURATORATE, UnitKind.COURT,
                   UnitKind.DISCIPLINE, UnitKind.ADMIN_DEPT)


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    name_zh: Mapped[str] = mapped_column(String(120))
    name_ko: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    # The unit's age X25519 recipient ("age1…"). Its identity is never stored in clear: it is
    # printed once as the recovery key and sealed to the members it is granted to.
    public_key: Mapped[str | None] = mapped_column(Text)
    # Handling units only: the custodian (信息保密员) key's recipient. A real-name reporter's
    # identity is sealed to it (and 州本级's), never to `public_key`: the unit's officers open the
    # tip but not who reported it (portal/intake/identity.py). Printed as a recovery key like the
    # other.
    identity_key: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)

    parent: Mapped[Unit | None] = relationship(remote_side=[id])

    def name(self, locale: str) -> str:
        return {"ko": self.name_ko, "en": self.name_en}.get(locale, self.name_zh)
