"""Members of a merchant's program: the tree, distributor status, and their append-only logs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
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

DISTRIBUTOR_STATUSES = ("none", "pending", "active", "rejected", "frozen", "left")


class Member(MerchantScoped, Base):
    """A user inside one merchant's program, with at most one upline there.

    ``path`` lists the ancestors root first (app/domain/tree.py). ``direct_members`` changes in
    the binding's own transaction; ``team_size`` and ``team_sales_fen`` are summed over the
    whole team and arrive through the team-delta queue (services/tree.py), seconds later.
    """

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("merchant_id", "user_id"),
        ForeignKeyConstraint(["merchant_id", "upline_id"], ["members.merchant_id", "members.id"]),
        # Direct members of an upline, and how many bound in the last hour (risk: bursts).
        Index("ix_members_merchant_id_upline_id_bound_at", "merchant_id", "upline_id",
              "bound_at"),
        Index("ix_members_merchant_id_distributor_status", "merchant_id", "distributor_status"),
    )

    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("users.id"))
    upline_id: Mapped[int | None] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text, default="/")
    depth: Mapped[int] = mapped_column(Integer, default=0)
    bound_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A visit remembered until the first paid order (bind_trigger = first_order).
    pending_upline_id: Mapped[int | None] = mapped_column(BigInteger)
    pending_share_link_id: Mapped[int | None] = mapped_column(BigInteger)

    distributor_status: Mapped[str] = mapped_column(String(16), default="none")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    real_name_encrypted: Mapped[str | None] = mapped_column(String(255))
    real_name_masked: Mapped[str] = mapped_column(String(64), default="")
    phone_encrypted: Mapped[str | None] = mapped_column(String(255))
    phone_masked: Mapped[str] = mapped_column(String(32), default="")
    agreement_version: Mapped[str] = mapped_column(String(32), default="")
    agreement_accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    direct_members: Mapped[int] = mapped_column(Integer, default=0)
    team_size: Mapped[int] = mapped_column(Integer, default=0)
    team_sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    personal_sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # None is the base level (no level of its own: the plan's rates).
    level_id: Mapped[int | None] = mapped_column(BigInteger)
    level_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    @property
    def is_active_distributor(self) -> bool:
        return self.distributor_status == "active"


class BindingLog(MerchantScoped, Base):
    """Append-only: every binding decision (bound, rebound, refused and why) and every move."""

    __tablename__ = "binding_logs"
    __table_args__ = (
        Index("ix_binding_logs_merchant_id_member_id", "merchant_id", "member_id"),
        ForeignKeyConstraint(["merchant_id", "member_id"], ["members.merchant_id", "members.id"]),
    )

    member_id: Mapped[int] = mapped_column(BigInteger)
    distributor_id: Mapped[int | None] = mapped_column(BigInteger)
    previous_upline_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(16))  # bound | rebound | refused | moved | ...
    reason: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(64))  # e.g. "permanent/visit"
    share_link_id: Mapped[int | None] = mapped_column(BigInteger)
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class StatusLog(MerchantScoped, Base):
    """Append-only: distributor status changes (apply, approve, reject, freeze ...) and why."""

    __tablename__ = "status_logs"
    __table_args__ = (
        Index("ix_status_logs_merchant_id_member_id", "merchant_id", "member_id"),
        ForeignKeyConstraint(["merchant_id", "member_id"], ["members.merchant_id", "members.id"]),
    )

    member_id: Mapped[int] = mapped_column(BigInteger)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    staff_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TeamDeltaRow(MerchantScoped, Base):
    """A queued change to the team counters of every ancestor of ``member_id`` (and, for
    ``sales``, to that member's personal sales).

    Ancestors are resolved when the delta is applied, from the member's path at that moment,
    so a subtree that moved in between credits its new uplines (services/tree.py).
    """

    __tablename__ = "team_deltas"
    __table_args__ = (
        ForeignKeyConstraint(["merchant_id", "member_id"], ["members.merchant_id", "members.id"]),
    )

    member_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # sales | transfer
    size: Mapped[int] = mapped_column(Integer, default=0)
    sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
