"""Orders and their lines, with the commission snapshot taken at creation."""

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

ORDER_STATUSES = ("created", "paid", "shipped", "received", "completed", "cancelled",
                  "refunding", "refunded", "partially_refunded")


class Order(MerchantScoped, Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("merchant_id", "out_trade_no"),
        UniqueConstraint("merchant_id", "transaction_id"),
        ForeignKeyConstraint(["merchant_id", "buyer_member_id"],
                             ["members.merchant_id", "members.id"]),
        Index("ix_orders_merchant_id_buyer_member_id", "merchant_id", "buyer_member_id"),
        Index("ix_orders_merchant_id_status", "merchant_id", "status"),
        # The jobs look across merchants for unpaid, shipped and received orders by age.
        Index("ix_orders_status_created_at", "status", "created_at"),
    )

    out_trade_no: Mapped[str] = mapped_column(String(32))
    buyer_user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id"))
    buyer_member_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="created")
    goods_fen: Mapped[int] = mapped_column(BigInteger)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    shipping_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the buyer pays: goods - discount + shipping.
    paid_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    share_link_id: Mapped[int | None] = mapped_column(BigInteger)
    address: Mapped[dict] = mapped_column(JSON, default=dict)
    # Taken at creation and never changed: plan version, beneficiaries with their rates.
    commission_snapshot: Mapped[dict] = mapped_column(JSON, default=dict)
    transaction_id: Mapped[str | None] = mapped_column(String(32))
    # The WeChat Pay account and API the order was offered on (v3 | v2), fixed at prepay so a
    # later change of settings cannot redirect checks of its notifications.
    pay_api: Mapped[str | None] = mapped_column(String(4))
    pay_appid: Mapped[str | None] = mapped_column(String(32))
    pay_mch_id: Mapped[str | None] = mapped_column(String(32))
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    prepaid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Where a refund that WeChat closes returns the order to.
    status_before_refund: Mapped[str | None] = mapped_column(String(20))
    carrier: Mapped[str] = mapped_column(String(32), default="")
    tracking_no: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def goods_paid_fen(self) -> int:
        """The commission base of the whole order: goods less discount (shipping excluded)."""
        return self.goods_fen - self.discount_fen


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        ForeignKeyConstraint(["merchant_id", "order_id"], ["orders.merchant_id", "orders.id"]),
    )

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    order_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(128))
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    # The product's commission override as it was at order time ({"mode", "values"}) or None.
    commission_override: Mapped[dict | None] = mapped_column(JSON)
    distributable: Mapped[bool] = mapped_column(default=True)
