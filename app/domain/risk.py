"""Risk signals (DOMAIN.md, Risk signals): when a pattern is suspicious enough to flag.

Pure: the services count what happened (bindings, refunded orders, members from one IP) and
ask these rules whether the count crosses the merchant's threshold. Every threshold is a
"more than": a count equal to it is still normal. Rates are compared exactly in integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SELF_REFERRAL = "self_referral"
BINDING_BURST = "binding_burst"
REFUND_RATE = "refund_rate"
IP_BURST = "ip_burst"
KINDS = (SELF_REFERRAL, BINDING_BURST, REFUND_RATE, IP_BURST)
STATUSES = ("open", "released")

BINDING_BURST_WINDOW = timedelta(hours=1)
REFUND_WINDOW = timedelta(days=30)
RELEASE_REASON_MAX = 500


@dataclass(frozen=True)
class Identity:
    """What ties two WeChat accounts to one person: the unionid and the keyed phone hash."""

    unionid: str | None
    phone_hash: str | None


def shared_identity(a: Identity, b: Identity) -> str | None:
    """``"unionid"`` or ``"phone"`` when the two accounts share one (empty values never
    match), else None."""
    if a.unionid and a.unionid == b.unionid:
        return "unionid"
    if a.phone_hash and a.phone_hash == b.phone_hash:
        return "phone"
    return None


def burst(*, count: int, threshold: int) -> bool:
    """More than ``threshold`` events in the window (bindings to one distributor, new members
    from one IP)."""
    return count > threshold


def refund_rate_bps(*, referred_orders: int, refunded_orders: int) -> int:
    """The refund rate in whole basis points, floored (for people to read; the decision uses
    ``refund_rate_exceeded``)."""
    if referred_orders <= 0:
        return 0
    return refunded_orders * 10_000 // referred_orders


def refund_rate_exceeded(*, referred_orders: int, refunded_orders: int, threshold_bps: int,
                         min_orders: int) -> bool:
    """The share of refunded orders is above ``threshold_bps``, over at least ``min_orders``
    referred orders (so one refund of a distributor's only order is no signal)."""
    if referred_orders < max(min_orders, 1):
        return False
    return refunded_orders * 10_000 > threshold_bps * referred_orders


def evidence_since(*, window_start: datetime, last_release: datetime | None) -> datetime:
    """A release clears the evidence the merchant reviewed: the same kind of flag is raised
    again only on what happened after it."""
    if last_release is None:
        return window_start
    return max(window_start, last_release)


def release_reason_errors(reason: str) -> list[str]:
    if not reason.strip():
        return ["Say why the flag is released."]
    if len(reason) > RELEASE_REASON_MAX:
        return [f"At most {RELEASE_REASON_MAX} characters."]
    return []
