"""A merchant's WeChat Pay account, its refunds, and the idempotency records of client POSTs."""

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
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, BigIntId, MerchantScoped, UtcDateTime, utcnow

PAYMENT_MODES = ("v3", "v2", "sandbox")
REFUND_STATUSES = ("requested", "rejected", "processing", "abnormal", "succeeded", "closed",
                   "failed")


class PaymentSettings(Base):
    """How one merchant is paid. Identifiers are stored plainly; every secret (API keys, the
    merchant's private key) sits in ``secrets_encrypted`` (Fernet) and is never returned."""

    __tablename__ = "payment_settings"

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    appid: Mapped[str] = mapped_column(String(32))
    mch_id: Mapped[str] = mapped_column(String(32))
    sign_type: Mapped[str] = mapped_column(String(16), default="")  # v2: MD5 | HMAC-SHA256
    merchant_serial_no: Mapped[str] = mapped_column(String(64), default="")
    wechatpay_public_key_id: Mapped[str] = mapped_column(String(64), default="")
    wechatpay_public_key_pem: Mapped[str] = mapped_column(Text, default="")
    platform_certificate_serial_no: Mapped[str] = mapped_column(String(64), default="")
    platform_certificate_pem: Mapped[str] = mapped_column(Text, default="")
    secrets_encrypted: Mapped[str] = mapped_column(Text)
    # Grows with every change: processes rebuild their cached WeChat Pay client when it moves.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Refund(MerchantScoped, Base):
    """One refund of (part of) an order: requested by the buyer or started by the merchant,
    sent to WeChat under ``out_refund_no``, finished by WeChat's notification or a query."""

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("merchant_id", "out_refund_no"),
        ForeignKeyConstraint(["merchant_id", "order_id"], ["orders.merchant_id", "orders.id"]),
        Index("ix_refunds_merchant_id_order_id", "merchant_id", "order_id"),
        Index("ix_refunds_status", "status"),
    )

    order_id: Mapped[int] = mapped_column(BigInteger)
    out_refund_no: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(16))  # buyer | merchant
    status: Mapped[str] = mapped_column(String(16), default="requested")
    review_reason: Mapped[str] = mapped_column(Text, default="")
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    refund_id: Mapped[str | None] = mapped_column(String(64))  # WeChat's id
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class IdempotencyRecord(Base):
    """An ``Idempotency-Key`` a client used: the same key with the same body gets the first
    result again; with another body, 409. The unique key makes concurrent repeats wait for the
    first and then find its result."""

    __tablename__ = "idempotency_records"

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)  # e.g. "orders:user:7"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
