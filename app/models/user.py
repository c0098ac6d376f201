"""A WeChat identity, platform-wide: one row per (appid, openid)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, BigIntId, UtcDateTime, utcnow


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("appid", "openid"),
        Index("ix_users_unionid", "unionid"),
        Index("ix_users_phone_hash", "phone_hash"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    appid: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    unionid: Mapped[str | None] = mapped_column(String(64))
    # Encrypted at rest (SecretBox); never leaves the server.
    session_key_encrypted: Mapped[str | None] = mapped_column(String(255))
    nickname: Mapped[str] = mapped_column(String(64), default="")
    avatar_url: Mapped[str] = mapped_column(String(512), default="")
    gender: Mapped[int] = mapped_column(SmallInteger, default=0)  # WeChat's: 0 unknown, 1 m, 2 f
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    region: Mapped[str] = mapped_column(String(64), default="")
    # The phone is personal data: stored encrypted, shown masked, compared by keyed hash.
    phone_encrypted: Mapped[str | None] = mapped_column(String(255))
    phone_masked: Mapped[str | None] = mapped_column(String(32))
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    @property
    def has_phone(self) -> bool:
        return self.phone_encrypted is not None
