"""The order status machine (DOMAIN.md, Products and orders).

``created → paid → shipped → received → completed``; ``created → cancelled``; any paid state →
``refunding`` → ``refunded`` or ``partially_refunded``. A refund that WeChat closes returns the
order to where it was. A partially refunded order keeps its own status while the rest of it is
still shipped and received (the timestamps tell how far it got). Anything not listed is an
error, never a silent no-op.
"""

from __future__ import annotations

PAID_STATES = ("paid", "shipped", "received", "completed", "partially_refunded")

# action -> {from status: to status}
TRANSITIONS: dict[str, dict[str, str]] = {
    # A payment WeChat confirms for an order we had cancelled is still money taken: record it.
    "pay": {"created": "paid", "cancelled": "paid"},
    "cancel": {"created": "cancelled"},
    "ship": {"paid": "shipped", "partially_refunded": "partially_refunded"},
    "receive": {"shipped": "received", "partially_refunded": "partially_refunded"},
    "complete": {"received": "completed"},
    "open_refund": {state: "refunding" for state in PAID_STATES},
    "refund_in_full": {"refunding": "refunded"},
    "refund_in_part": {"refunding": "partially_refunded"},
}


class IllegalOrderTransition(ValueError):
    def __init__(self, action: str, status: str):
        super().__init__(f"cannot {action.replace('_', ' ')} an order whose status is {status}")
        self.action = action
        self.status = status


def next_status(action: str, status: str) -> str:
    try:
        return TRANSITIONS[action][status]
    except KeyError:
        raise IllegalOrderTransition(action, status) from None


def refunded_goods_fen(*, refunded_fen: int, goods_paid_fen: int) -> int:
    """How much of the goods a refund total covers: refunds cover goods first and shipping
    last, so a partial refund reverses commission for the whole amount it returns, and only a
    refund of more than the goods also returns shipping."""
    if refunded_fen < 0 or goods_paid_fen < 0:
        raise ValueError("amounts must not be negative")
    return min(refunded_fen, goods_paid_fen)
