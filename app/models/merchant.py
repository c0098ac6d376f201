"""Merchants (the tenants), their console staff, and the platform's administrators."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, BigIntId, UtcDateTime, utcnow

MERCHANT_STATUSES = ("pending", "approved", "rejected", "suspended")
STAFF_ROLES = ("owner", "operator", "finance")


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    description: Mapped[str] = mapped_column(String(500), default="")
    logo_url: Mapped[str] = mapped_column(String(512), default="")
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    contact_phone_masked: Mapped[str] = mapped_column(String(32), default="")
    contact_phone_encrypted: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # The platform agreement a supplier accepted when applying: which version, and when.
    platform_agreement_version: Mapped[str] = mapped_column(String(32), default="")
    platform_agreement_accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    review_reason: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reviewed_by_admin_id: Mapped[int | None] = mapped_column(BigIntId,
                                                             ForeignKey("platform_admins.id"))
    # ProgramRules as a dict, only the fields that differ from the defaults are required.
    program_rules: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class StaffAccount(Base):
    """A console login. Platform-level (usernames are unique across merchants so that sign-in
    needs only a username); each account belongs to exactly one merchant."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(64), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PlatformAdmin(Base):
    __tablename__ = "platform_admins"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
