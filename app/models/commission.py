"""Commission plan versions, each order's commission parts, and per-period totals (rankings)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, BigIntId, MerchantScoped, UtcDateTime, utcnow

COMMISSION_STATUSES = ("pending", "settled", "reversed")


class CommissionPlanVersion(MerchantScoped, Base):
    """Every change to the money rules of a program is a new version; orders keep theirs."""

    __tablename__ = "commission_plans"
    __table_args__ = (UniqueConstraint("merchant_id", "version"),)

    version: Mapped[int] = mapped_column(Integer)
    tiers: Mapped[int] = mapped_column(Integer)
    tier_rates_bps: Mapped[list] = mapped_column(JSON)
    max_total_bps: Mapped[int] = mapped_column(Integer)
    self_purchase: Mapped[bool] = mapped_column(default=False)
    level_rates_bps: Mapped[list] = mapped_column(JSON, default=list)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Commission(MerchantScoped, Base):
    """One (order line, tier) part of an order's commission, and where it stands."""

    __tablename__ = "commissions"
    __table_args__ = (
        UniqueConstraint("merchant_id", "order_id", "line_no", "tier"),
        ForeignKeyConstraint(["merchant_id", "order_id"], ["orders.merchant_id", "orders.id"]),
        ForeignKeyConstraint(["merchant_id", "member_id"], ["members.merchant_id", "members.id"]),
        # A member's commission, and its recent part (risk: refund rate over 30 days).
        Index("ix_commissions_merchant_id_member_id_created_at", "merchant_id", "member_id",
              "created_at"),
        Index("ix_commissions_status_settle_at", "status", "settle_at"),
    )

    order_id: Mapped[int] = mapped_column(BigInteger)
    line_no: Mapped[int] = mapped_column(Integer)
    tier: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int] = mapped_column(BigInteger)
    base_fen: Mapped[int] = mapped_column(BigInteger)
    rate_bps: Mapped[int] = mapped_column(Integer)
    fixed_fen_per_unit: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reversed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # The merchant's month when the commission was earned: its ranking period.
    period: Mapped[str] = mapped_column(String(7))
    settle_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    @property
    def outstanding_fen(self) -> int:
        return self.amount_fen - self.reversed_fen


class PeriodTotal(Base):
    """A distributor's totals for one period (the merchant's month, YYYY-MM): the source of
    truth for the Redis rankings, which mirror these absolute values."""

    __tablename__ = "period_totals"

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    commission_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # Grows with every change of this row: the mirror writes a period's rankings only when
    # they are newer than what Redis holds (app/integrations/wallet_mirror.py).
    revision: Mapped[int] = mapped_column(BigInteger, default=1)


class ProcessedRefund(Base):
    """A refund whose commission (and sales) were already taken back: a repeat — a retried
    notification — finds its key here and changes nothing."""

    __tablename__ = "processed_refunds"

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    refund_key: Mapped[str] = mapped_column(String(96), primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
