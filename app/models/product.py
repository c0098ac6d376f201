"""Products a merchant sells (the catalogue; orders and overrides build on it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, MerchantScoped, UtcDateTime, utcnow

PRODUCT_STATUSES = ("draft", "on_sale", "off_sale")


class Product(MerchantScoped, Base):
    __tablename__ = "products"

    title: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    image_urls: Mapped[list] = mapped_column(JSON, default=list)
    price_fen: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="on_sale")
    is_distributable: Mapped[bool] = mapped_column(default=True)
    # The product's own commission ({"mode": "rates"|"fixed"|"opt_out", "values": [...]}), or
    # None for the plan's rates. Orders copy it onto their lines at creation.
    commission_override: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
