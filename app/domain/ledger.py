"""The double-entry ledger's rules (DOMAIN.md, Commission lifecycle and the ledger).

Every money movement is a journal of entries that sum to zero. A member's wallet has four
accounts; the merchant has two. Balances are what is owed: a member's positive balance is money
the merchant owes them, ``commission_expense`` goes negative as commission is incurred, and the
sum of every balance of a merchant is always zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PENDING = "pending"
AVAILABLE = "available"
WITHDRAWING = "withdrawing"
PAID_OUT = "paid_out"
COMMISSION_EXPENSE = "commission_expense"
PAYOUT_CLEARING = "payout_clearing"

WALLET_KINDS = (PENDING, AVAILABLE, WITHDRAWING, PAID_OUT)
MERCHANT_KINDS = (COMMISSION_EXPENSE, PAYOUT_CLEARING)
# Merchant-level accounts belong to owner 0; wallet accounts to their member.
MERCHANT_OWNER = 0
# Accounts that may never go below zero whatever is posted. ``available`` may: a reversal of
# settled commission can leave a debt, which blocks withdrawals (checked by the withdrawal).
NEVER_NEGATIVE = (PENDING, WITHDRAWING, PAID_OUT)


@dataclass(frozen=True)
class AccountRef:
    owner_id: int  # a member id, or MERCHANT_OWNER
    kind: str


@dataclass(frozen=True)
class Entry:
    account: AccountRef
    amount_fen: int


class UnbalancedJournal(ValueError):
    pass


def check_entries(entries: Sequence[Entry]) -> None:
    """A journal moves money, so its entries are non-zero, name valid accounts, and sum to 0."""
    if len(entries) < 2:
        raise UnbalancedJournal("a journal needs at least two entries")
    if sum(entry.amount_fen for entry in entries) != 0:
        raise UnbalancedJournal("the entries of a journal must sum to zero")
    for entry in entries:
        if entry.amount_fen == 0 or not isinstance(entry.amount_fen, int):
            raise UnbalancedJournal("every entry moves a whole, non-zero number of fen")
        owner_is_merchant = entry.account.owner_id == MERCHANT_OWNER
        valid_kinds = MERCHANT_KINDS if owner_is_merchant else WALLET_KINDS
        if entry.account.kind not in valid_kinds:
            raise UnbalancedJournal(f"no {entry.account.kind} account for that owner")


def wallet(member_id: int, kind: str) -> AccountRef:
    return AccountRef(owner_id=member_id, kind=kind)


def merchant_account(kind: str) -> AccountRef:
    return AccountRef(owner_id=MERCHANT_OWNER, kind=kind)


def accrual(*, member_id: int, amount_fen: int) -> list[Entry]:
    """Commission earned on a paid order: pending until settlement."""
    return [Entry(merchant_account(COMMISSION_EXPENSE), -amount_fen),
            Entry(wallet(member_id, PENDING), amount_fen)]


def settlement(*, member_id: int, amount_fen: int) -> list[Entry]:
    """Pending commission past its freeze becomes available."""
    return [Entry(wallet(member_id, PENDING), -amount_fen),
            Entry(wallet(member_id, AVAILABLE), amount_fen)]


def reversal(*, member_id: int, amount_fen: int, from_kind: str) -> list[Entry]:
    """Commission taken back after a refund: from pending, or from available (maybe a debt)."""
    if from_kind not in (PENDING, AVAILABLE):
        raise ValueError("commission is reversed from pending or available")
    return [Entry(wallet(member_id, from_kind), -amount_fen),
            Entry(merchant_account(COMMISSION_EXPENSE), amount_fen)]
