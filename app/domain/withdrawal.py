"""Withdrawal rules (DOMAIN.md, Withdrawals and payouts): what a request must satisfy, its fee,
and the ledger entries of each step. Pure functions over plain values."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.ledger import (
    AVAILABLE,
    COMMISSION_EXPENSE,
    PAID_OUT,
    WITHDRAWING,
    Entry,
    merchant_account,
    wallet,
)
from app.domain.money import BPS

# WeChat requires the payee's real name on a transfer from this amount (¥2,000).
REAL_NAME_REQUIRED_FROM_FEN = 200_000
# WeChat pays one user at most ¥20,000 a day through merchant transfers.
WECHAT_DAILY_CAP_FEN = 2_000_000


@dataclass(frozen=True)
class Refusal:
    code: str
    field: str
    message: str


def fee_for(*, amount_fen: int, fee_bps: int) -> int:
    """The merchant's fee, rounded down (the distributor never pays a fen more than the rate)."""
    return amount_fen * fee_bps // BPS


def refusal(*, amount_fen: int, fee_fen: int, available_fen: int, min_fen: int, max_fen: int,
            daily_count: int, requests_today: int, withdrawn_today_fen: int,
            has_real_name: bool) -> Refusal | None:
    """The first rule a request breaks, or None. Debt first: a negative balance blocks every
    withdrawal whatever its amount."""
    if available_fen < 0:
        return Refusal("debt_outstanding", "amount_fen",
                       "A refund left a debt; new commission pays it off before withdrawals.")
    if amount_fen < min_fen:
        return Refusal("below_minimum", "amount_fen", f"Withdraw at least {min_fen} fen.")
    if amount_fen > max_fen:
        return Refusal("above_maximum", "amount_fen", f"Withdraw at most {max_fen} fen.")
    if requests_today >= daily_count:
        return Refusal("daily_limit_reached", "amount_fen",
                       f"At most {daily_count} withdrawals a day.")
    if withdrawn_today_fen + amount_fen > WECHAT_DAILY_CAP_FEN:
        left = max(WECHAT_DAILY_CAP_FEN - withdrawn_today_fen, 0)
        return Refusal("daily_amount_exceeded", "amount_fen",
                       f"WeChat pays at most ¥20,000 a day; {left} fen are left today.")
    if amount_fen + fee_fen > available_fen:
        return Refusal("insufficient_balance", "amount_fen",
                       f"Only {available_fen} fen are available (the fee is {fee_fen} fen).")
    if amount_fen >= REAL_NAME_REQUIRED_FROM_FEN and not has_real_name:
        return Refusal("real_name_required", "real_name",
                       "WeChat needs your real name for withdrawals from ¥2,000.")
    return None


def request_entries(*, member_id: int, amount_fen: int, fee_fen: int) -> list[Entry]:
    """The amount and the fee leave ``available`` and wait in ``withdrawing``."""
    total = amount_fen + fee_fen
    return [Entry(wallet(member_id, AVAILABLE), -total),
            Entry(wallet(member_id, WITHDRAWING), total)]


def return_entries(*, member_id: int, amount_fen: int, fee_fen: int) -> list[Entry]:
    """Rejected, failed, cancelled or expired: everything goes back to ``available``."""
    total = amount_fen + fee_fen
    return [Entry(wallet(member_id, WITHDRAWING), -total),
            Entry(wallet(member_id, AVAILABLE), total)]


def payout_entries(*, member_id: int, amount_fen: int, fee_fen: int) -> list[Entry]:
    """Paid: the amount is ``paid_out``; the fee returns to the merchant, whose commission
    expense it reduces."""
    entries = [Entry(wallet(member_id, WITHDRAWING), -(amount_fen + fee_fen)),
               Entry(wallet(member_id, PAID_OUT), amount_fen)]
    if fee_fen:
        entries.append(Entry(merchant_account(COMMISSION_EXPENSE), fee_fen))
    return entries
