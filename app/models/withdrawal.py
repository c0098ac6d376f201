"""Withdrawals: a distributor asking to be paid, its review, and its WeChat transfer bill."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, MerchantScoped, UtcDateTime, utcnow

WITHDRAWAL_STATUSES = ("requested", "approved", "transferring", "paid_out", "rejected",
                       "failed")


class Withdrawal(MerchantScoped, Base):
    __tablename__ = "withdrawals"
    __table_args__ = (
        UniqueConstraint("merchant_id", "out_bill_no"),
        ForeignKeyConstraint(["merchant_id", "member_id"], ["members.merchant_id", "members.id"]),
        Index("ix_withdrawals_merchant_id_member_id_requested_on", "merchant_id", "member_id",
              "requested_on"),
        Index("ix_withdrawals_status", "status"),
    )

    member_id: Mapped[int] = mapped_column(BigInteger)
    # What the distributor receives, and the merchant's fee on top (both left `available`).
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    auto_approved: Mapped[bool] = mapped_column(default=False)
    # The merchant's business date of the request: the daily count is per this date.
    requested_on: Mapped[date] = mapped_column(Date)
    review_reason: Mapped[str] = mapped_column(Text, default="")
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    # WeChat's merchant transfer: out_bill_no is derived from the id, so a retry reuses it.
    out_bill_no: Mapped[str] = mapped_column(String(32))
    transfer_bill_no: Mapped[str] = mapped_column(String(64), default="")
    transfer_state: Mapped[str] = mapped_column(String(24), default="")
    package_info: Mapped[str] = mapped_column(Text, default="")
    transfer_mch_id: Mapped[str] = mapped_column(String(32), default="")
    transfer_app_id: Mapped[str] = mapped_column(String(32), default="")
    fail_reason: Mapped[str] = mapped_column(String(64), default="")
    offline_reference: Mapped[str] = mapped_column(String(64), default="")
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    transfer_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
