"""Rollups behind the console's statistics, kept current as events happen (no scans of raw
orders per request). Days are the merchant's business dates (its timezone)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, BigIntId


class DailyStat(Base):
    """One merchant's totals for one business day: the dashboard adds days up."""

    __tablename__ = "daily_stats"

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # What buyers paid (paid_fen) for orders paid that day; refunds are not netted here but
    # counted on their own day (refunds, refunded_fen, commission_reversed_fen).
    gmv_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    orders_paid: Mapped[int] = mapped_column(Integer, default=0)
    orders_created: Mapped[int] = mapped_column(Integer, default=0)
    orders_cancelled: Mapped[int] = mapped_column(Integer, default=0)
    refunds: Mapped[int] = mapped_column(Integer, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_accrued_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_settled_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_reversed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_out_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    new_members: Mapped[int] = mapped_column(Integer, default=0)
    new_distributors: Mapped[int] = mapped_column(Integer, default=0)
    links_shared: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    bindings: Mapped[int] = mapped_column(Integer, default=0)


class DailyMemberStat(Base):
    """One member's totals for one business day: funnels, performance, rankings and the
    windowed level metrics read these (a member only has rows for days something happened)."""

    __tablename__ = "daily_member_stats"
    # One member's days (level windows, a distributor's performance) without the merchant's.
    __table_args__ = (Index("ix_daily_member_stats_member_day", "merchant_id", "member_id",
                            "day"),)

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Each event counts on its own business day (services/rollups.py): a payment on the day
    # paid, a refund on the day it succeeded, a settlement on the day it settled.
    # As a buyer: orders paid, and spend (paid_fen, goods and shipping; a refund subtracts
    # what it returned).
    purchases: Mapped[int] = mapped_column(Integer, default=0)
    spent_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # As the tier-1 beneficiary of the order's snapshot: orders referred, their goods paid
    # (goods less discount, no shipping; a refund subtracts the goods it returned).
    referred_orders: Mapped[int] = mapped_column(Integer, default=0)
    direct_sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # As any beneficiary: commission accrued (reversals subtract), and what became available.
    commission_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_settled_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # As an upline: members bound or moved under it (one leaving later is not subtracted).
    new_direct_members: Mapped[int] = mapped_column(Integer, default=0)
    # As a distributor: links made, openings of its links, and referred orders refunded
    # (counted once per order, on the day of its first refund).
    links_shared: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    refunded_orders: Mapped[int] = mapped_column(Integer, default=0)


class DailyBuyer(Base):
    """A member who paid on that day (distinct paying buyers over a range, new vs returning,
    consumer analysis by hour and weekday)."""

    __tablename__ = "daily_buyers"

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    # The first paid order of this buyer ever was on this day.
    first_purchase: Mapped[bool] = mapped_column(default=False)
    province: Mapped[str] = mapped_column(String(32), default="")
    city: Mapped[str] = mapped_column(String(32), default="")


class HourlyStat(Base):
    """Paid orders by the merchant's hour of day (consumer analysis: when buyers buy)."""

    __tablename__ = "hourly_stats"

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    orders_paid: Mapped[int] = mapped_column(Integer, default=0)
    gmv_fen: Mapped[int] = mapped_column(BigInteger, default=0)
