"""Withdrawal rules: the fee, the order in which refusals are decided, and the entries."""

from __future__ import annotations

import pytest

from app.domain.ledger import check_entries
from app.domain.withdrawal import (
    WECHAT_DAILY_CAP_FEN,
    fee_for,
    payout_entries,
    refusal,
    request_entries,
    return_entries,
)

FINE = dict(amount_fen=10_000, fee_fen=0, available_fen=50_000, min_fen=100,
            max_fen=2_000_000, daily_count=3, requests_today=0, withdrawn_today_fen=0,
            has_real_name=False)


@pytest.mark.parametrize(("amount", "bps", "fee"), [(6_001, 150, 90), (100, 0, 0),
                                                     (99, 100, 0), (10_000, 10_000, 10_000)])
def test_the_fee_is_rounded_down(amount, bps, fee):
    assert fee_for(amount_fen=amount, fee_bps=bps) == fee


@pytest.mark.parametrize(("change", "code"), [
    ({"available_fen": -1}, "debt_outstanding"),
    ({"available_fen": -1, "amount_fen": 1}, "debt_outstanding"),  # debt is decided first
    ({"amount_fen": 99}, "below_minimum"),
    ({"amount_fen": 2_000_001, "available_fen": 5_000_000}, "above_maximum"),
    ({"requests_today": 3}, "daily_limit_reached"),
    ({"withdrawn_today_fen": WECHAT_DAILY_CAP_FEN - 9_999}, "daily_amount_exceeded"),
    ({"available_fen": 9_999}, "insufficient_balance"),
    ({"available_fen": 10_000, "fee_fen": 1}, "insufficient_balance"),
    ({"amount_fen": 200_000, "available_fen": 300_000}, "real_name_required"),
])
def test_each_rule_refuses_with_its_code(change, code):
    assert refusal(**{**FINE, **change}).code == code


def test_a_request_within_every_rule_passes():
    assert refusal(**FINE) is None
    assert refusal(**{**FINE, "amount_fen": 200_000, "available_fen": 200_000,
                      "has_real_name": True}) is None
    assert refusal(**{**FINE, "available_fen": 10_000}) is None  # the whole balance


@pytest.mark.parametrize("entries", [
    request_entries(member_id=7, amount_fen=6_001, fee_fen=90),
    return_entries(member_id=7, amount_fen=6_001, fee_fen=90),
    payout_entries(member_id=7, amount_fen=6_001, fee_fen=90),
    payout_entries(member_id=7, amount_fen=6_001, fee_fen=0),
])
def test_every_step_posts_a_balanced_journal(entries):
    check_entries(entries)


def test_a_payout_gives_the_fee_back_to_the_merchant():
    amounts = {(e.account.owner_id, e.account.kind): e.amount_fen
               for e in payout_entries(member_id=7, amount_fen=6_001, fee_fen=90)}
    assert amounts == {(7, "withdrawing"): -6_091, (7, "paid_out"): 6_001,
                       (0, "commission_expense"): 90}
