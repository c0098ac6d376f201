"""The ledger: accounts with stored balances, journals, immutable entries, and the outbox that
mirrors wallets to Redis. Only app/services/ledger.py writes these tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, BigIntId, MerchantScoped, UtcDateTime, utcnow


class LedgerAccount(MerchantScoped, Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("merchant_id", "owner_id", "kind"),)

    owner_id: Mapped[int] = mapped_column(BigInteger)  # a member id; 0 for the merchant's own
    kind: Mapped[str] = mapped_column(String(24))
    # Always equal to the sum of this account's entries (`flask ledger verify` proves it).
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Journal(MerchantScoped, Base):
    """One money movement. Its idempotency key makes a repeat of the same movement a no-op."""

    __tablename__ = "journals"
    __table_args__ = (UniqueConstraint("merchant_id", "idempotency_key"),
                      Index("ix_journals_merchant_id_order_id", "merchant_id", "order_id"))

    idempotency_key: Mapped[str] = mapped_column(String(96))
    kind: Mapped[str] = mapped_column(String(24))  # accrual | settlement | reversal | ...
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    memo: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LedgerEntry(MerchantScoped, Base):
    """Immutable: PostgreSQL refuses updates and deletes (migration trigger)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        ForeignKeyConstraint(["merchant_id", "journal_id"],
                             ["journals.merchant_id", "journals.id"]),
        ForeignKeyConstraint(["merchant_id", "account_id"],
                             ["ledger_accounts.merchant_id", "ledger_accounts.id"]),
        Index("ix_ledger_entries_merchant_id_account_id", "merchant_id", "account_id"),
        Index("ix_ledger_entries_merchant_id_journal_id", "merchant_id", "journal_id"),
    )

    journal_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WalletOutbox(MerchantScoped, Base):
    """A member whose wallet (or ranking) changed: mirror it to Redis after commit. Written in
    the posting's transaction, so a crash or a Redis outage between commit and mirror leaves a
    row for the sweeper."""

    __tablename__ = "wallet_outbox"

    member_id: Mapped[int] = mapped_column(BigInteger)
    # A ranking period (YYYY-MM) whose totals changed too, if any.
    period: Mapped[str | None] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WalletHead(Base):
    """A member wallet's revision: raised by every posting to that wallet, under the row's lock,
    so revisions follow commit order even when two postings touch different accounts of the
    wallet (an accrual to pending, a withdrawal from available). The Redis mirror writes a
    wallet only when its revision is newer than the one it holds."""

    __tablename__ = "wallet_heads"

    merchant_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("merchants.id"),
                                             primary_key=True)
    member_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=1)
