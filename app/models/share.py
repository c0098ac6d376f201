"""Share links (a distributor's trackable invitations), their images, and visits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, BigIntId, MerchantScoped, UtcDateTime, utcnow


class ShareLink(MerchantScoped, Base):
    __tablename__ = "share_links"
    __table_args__ = (
        UniqueConstraint("merchant_id", "token"),
        Index("ix_share_links_merchant_id_distributor_id", "merchant_id", "distributor_id"),
        ForeignKeyConstraint(["merchant_id", "distributor_id"],
                             ["members.merchant_id", "members.id"]),
        ForeignKeyConstraint(["merchant_id", "product_id"],
                             ["products.merchant_id", "products.id"]),
    )

    # The token carries the merchant (app/domain/share_token.py) so that a bare scene from the
    # mini-program finds its row without a platform-wide index.
    token: Mapped[str] = mapped_column(String(32))
    distributor_id: Mapped[int] = mapped_column(BigInteger)
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    page: Mapped[str] = mapped_column(String(128))
    url_link: Mapped[str] = mapped_column(String(255), default="")
    url_link_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ShareLinkImage(Base):
    """A share link's rendered images (wxacode, poster), cached once made.

    Kept in the database so that any host can serve them without shared disk.
    """

    __tablename__ = "share_link_images"
    __table_args__ = (
        ForeignKeyConstraint(["merchant_id", "share_link_id"],
                             ["share_links.merchant_id", "share_links.id"]),
    )

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    share_link_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # wxacode | poster
    png: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Visit(MerchantScoped, Base):
    """Append-only: one opening of a share link."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_merchant_id_share_link_id", "merchant_id", "share_link_id"),
        Index("ix_visits_merchant_id_created_at", "merchant_id", "created_at"),
        ForeignKeyConstraint(["merchant_id", "share_link_id"],
                             ["share_links.merchant_id", "share_links.id"]),
    )

    share_link_id: Mapped[int] = mapped_column(BigInteger)
    distributor_id: Mapped[int] = mapped_column(BigInteger)
    visitor_user_id: Mapped[int | None] = mapped_column(BigIntId)
    channel: Mapped[str] = mapped_column(String(16))  # miniprogram | h5
    scene_value: Mapped[str] = mapped_column(String(64), default="")
    ip_hash: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    binding_reason: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
