"""Distributor levels and the log of every level change (DOMAIN.md, Levels and assessment)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, MerchantScoped, UtcDateTime, utcnow


class Level(MerchantScoped, Base):
    """A grade with its own tier rates. ``weight`` orders levels (higher is better); the base
    level (weight 0) is where every distributor starts and never leaves downwards."""

    __tablename__ = "levels"
    __table_args__ = (UniqueConstraint("merchant_id", "weight"),
                      UniqueConstraint("merchant_id", "name"))

    name: Mapped[str] = mapped_column(String(32))
    weight: Mapped[int] = mapped_column(Integer)
    tier_rates_bps: Mapped[list] = mapped_column(JSON, default=list)
    # {"combine": "any" | "all", "conditions": [{"metric", "threshold", "window_days"}]}
    upgrade_rule: Mapped[dict] = mapped_column(JSON, default=dict)
    keep_rule: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class LevelChange(MerchantScoped, Base):
    """Append-only: who moved from which level to which, why (upgrade, assessment, manual)."""

    __tablename__ = "level_changes"
    __table_args__ = (
        ForeignKeyConstraint(["merchant_id", "member_id"], ["members.merchant_id", "members.id"]),
        Index("ix_level_changes_merchant_id_member_id", "merchant_id", "member_id"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger)
    from_level_id: Mapped[int | None] = mapped_column(BigInteger)
    to_level_id: Mapped[int | None] = mapped_column(BigInteger)
    cause: Mapped[str] = mapped_column(String(16))  # upgrade | assessment | manual
    reason: Mapped[str] = mapped_column(Text, default="")
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
