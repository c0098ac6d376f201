"""Risk flags: a suspicious pattern found on a member; open flags hold settlement."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKeyConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, MerchantScoped, UtcDateTime, utcnow

RISK_KINDS = ("self_referral", "binding_burst", "refund_rate", "ip_burst")


class RiskFlag(MerchantScoped, Base):
    __tablename__ = "risk_flags"
    __table_args__ = (
        ForeignKeyConstraint(["merchant_id", "member_id"], ["members.merchant_id", "members.id"]),
        Index("ix_risk_flags_merchant_id_member_id_status", "merchant_id", "member_id",
              "status"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | released
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    released_by_staff_id: Mapped[int | None] = mapped_column(BigInteger)
    release_reason: Mapped[str] = mapped_column(Text, default="")


class RiskLog(MerchantScoped, Base):
    """Append-only: every flag raised and every release, with who and why."""

    __tablename__ = "risk_logs"
    __table_args__ = (Index("ix_risk_logs_merchant_id_flag_id", "merchant_id", "flag_id"),)

    flag_id: Mapped[int] = mapped_column(BigInteger)
    member_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))  # raised | released
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
