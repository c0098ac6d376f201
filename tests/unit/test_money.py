"""Money arithmetic: exact to the fen, every rounding stated (app/domain/money.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.money import allocate_largest_remainder, apply_rate, reversed_so_far, yuan_text

amounts = st.integers(min_value=0, max_value=10**12)


@pytest.mark.parametrize("base,rate,expected", [
    (0, 1000, 0), (9, 1000, 0), (10, 1000, 1), (19, 1000, 1), (6990, 1000, 699),
    (6999, 1500, 1049), (100, 10_000, 100), (1, 9999, 0),
])
def test_rates_round_down(base, rate, expected):
    assert apply_rate(base_fen=base, rate_bps=rate) == expected


def test_negative_money_is_refused():
    with pytest.raises(ValueError):
        apply_rate(base_fen=-1, rate_bps=100)
    with pytest.raises(ValueError):
        allocate_largest_remainder(total_fen=-1, weights=[1])


@pytest.mark.parametrize("total,weights,expected", [
    (100, [1, 1, 1], [34, 33, 33]),
    (2, [1, 1, 1], [1, 1, 0]),
    (10, [500, 300, 200], [5, 3, 2]),
    (7, [3, 3, 1], [3, 3, 1]),
    (0, [5, 5], [0, 0]),
    (5, [0, 10], [0, 5]),
])
def test_discounts_are_allocated_by_largest_remainder(total, weights, expected):
    assert allocate_largest_remainder(total_fen=total, weights=weights) == expected


@given(weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=30),
       data=st.data())
def test_an_allocation_always_adds_up_exactly_and_never_exceeds_a_weight(weights, data):
    total = data.draw(st.integers(min_value=0, max_value=sum(weights)))
    parts = allocate_largest_remainder(total_fen=total, weights=weights)
    assert sum(parts) == total
    assert all(0 <= part <= weight for part, weight in zip(parts, weights, strict=True))


@given(amount=amounts, base=st.integers(min_value=1, max_value=10**9), data=st.data())
def test_partial_refunds_reverse_exactly_the_commission_in_the_end(amount, base, data):
    refunds = data.draw(st.lists(st.integers(min_value=1, max_value=base), max_size=12))
    refunded, reversed_total, steps = 0, 0, []
    for refund in refunds:
        refund = min(refund, base - refunded)
        if refund == 0:
            break
        refunded += refund
        now = reversed_so_far(amount_fen=amount, refunded_fen=refunded, base_fen=base)
        steps.append(now - reversed_total)
        reversed_total = now
    assert all(step >= 0 for step in steps)
    assert reversed_total <= amount
    if refunded == base:
        assert reversed_total == amount  # the last refund takes the exact remainder


@pytest.mark.parametrize("fen,text", [(0, "¥0.00"), (1, "¥0.01"), (99, "¥0.99"),
                                      (100, "¥1.00"), (1990, "¥19.90"), (-250, "-¥2.50"),
                                      (123456789, "¥1234567.89")])
def test_yuan_text_is_exact(fen, text):
    assert yuan_text(fen) == text
