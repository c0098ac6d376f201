"""The order status machine of DOMAIN.md: every legal step, and every other one refused."""

from __future__ import annotations

import pytest

from app.domain.order_status import (
    PAID_STATES,
    TRANSITIONS,
    IllegalOrderTransition,
    next_status,
    refunded_goods_fen,
)
from app.models.order import ORDER_STATUSES

LEGAL = [(action, source, target) for action, steps in TRANSITIONS.items()
         for source, target in steps.items()]


@pytest.mark.parametrize(("action", "source", "target"), LEGAL)
def test_each_legal_transition_leads_where_domain_says(action, source, target):
    assert next_status(action, source) == target


@pytest.mark.parametrize(("action", "source"), [
    (action, source) for action in TRANSITIONS for source in ORDER_STATUSES
    if source not in TRANSITIONS[action]])
def test_every_other_transition_is_an_error(action, source):
    with pytest.raises(IllegalOrderTransition):
        next_status(action, source)


def test_the_happy_path_runs_from_created_to_completed():
    status = "created"
    for action in ("pay", "ship", "receive", "complete"):
        status = next_status(action, status)
    assert status == "completed"


def test_only_unpaid_orders_can_be_cancelled_and_only_paid_ones_refunded():
    assert set(TRANSITIONS["cancel"]) == {"created"}
    assert set(TRANSITIONS["open_refund"]) == set(PAID_STATES)
    assert "created" not in PAID_STATES and "cancelled" not in PAID_STATES


def test_every_status_in_the_machine_is_a_stored_status():
    named = {s for steps in TRANSITIONS.values() for pair in steps.items() for s in pair}
    assert named <= set(ORDER_STATUSES)


@pytest.mark.parametrize(("refunded", "goods", "expected"), [
    (0, 10_000, 0), (1, 10_000, 1), (10_000, 10_000, 10_000),
    (10_500, 10_000, 10_000),  # shipping (500) comes back last and earns no commission
])
def test_refunds_cover_goods_before_shipping(refunded, goods, expected):
    assert refunded_goods_fen(refunded_fen=refunded, goods_paid_fen=goods) == expected


def test_negative_refund_amounts_are_refused():
    with pytest.raises(ValueError):
        refunded_goods_fen(refunded_fen=-1, goods_paid_fen=100)
