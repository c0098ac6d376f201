"""Money arithmetic in integer fen and basis points: exact, with every rounding stated.

Nothing here uses floats or Decimal; every division is an integer floor, and where parts must
add up to a whole (discounts, reversals) the remainder is placed deliberately, never dropped.
"""

from __future__ import annotations

BPS = 10_000


def apply_rate(*, base_fen: int, rate_bps: int) -> int:
    """``base × rate``, rounded down (the fen below stays with the merchant)."""
    if base_fen < 0 or rate_bps < 0:
        raise ValueError("base and rate must not be negative")
    return base_fen * rate_bps // BPS


def allocate_largest_remainder(*, total_fen: int, weights: list[int]) -> list[int]:
    """Split ``total_fen`` in proportion to ``weights`` so the parts add up exactly.

    Each part gets its floor share; the fen left over go one each to the largest remainders
    (ties: the earlier weight). No part exceeds its weight when ``total ≤ sum(weights)``.
    """
    if total_fen < 0 or any(w < 0 for w in weights):
        raise ValueError("amounts must not be negative")
    whole = sum(weights)
    if whole == 0:
        if total_fen:
            raise ValueError("cannot allocate a non-zero total over zero weights")
        return [0] * len(weights)
    shares = [total_fen * w // whole for w in weights]
    remainders = [total_fen * w % whole for w in weights]
    leftover = total_fen - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:leftover]:
        shares[index] += 1
    return shares


def reversed_so_far(*, amount_fen: int, refunded_fen: int, base_fen: int) -> int:
    """How much of a commission ``amount_fen`` earned on ``base_fen`` is reversed once
    ``refunded_fen`` of that base has been refunded in all.

    Proportional and rounded down, and exact at a full refund: the reversal of each refund is
    the difference of this value before and after it, so a sequence of partial refunds reverses
    exactly the whole commission when the whole base is refunded (the last refund takes the
    remainder), and never more.
    """
    if base_fen <= 0 or refunded_fen <= 0:
        return 0
    if refunded_fen >= base_fen:
        return amount_fen
    return amount_fen * refunded_fen // base_fen


def yuan_text(fen: int) -> str:
    """¥19.90 for 1990 fen: integer arithmetic only."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan}.{cents:02d}"
