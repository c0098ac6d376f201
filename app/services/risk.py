"""Risk signals (DOMAIN.md, Risk signals): detection, the hold on settlement, release."""

from __future__ import annotations

from datetime import datetime

from app.models import Member, Order


def on_binding(member: Member, upline: Member, *, at: datetime, ip_hash: str = "") -> None:
    """TODO(issue 7): self-referral, binding bursts, many members from one IP."""


def on_payment(order: Order, *, at: datetime) -> None:
    """TODO(issue 7): self-referral through a second account."""


def on_refund(order: Order, *, at: datetime) -> None:
    """TODO(issue 7): refund rate of the tier-1 distributor's referred orders."""


def scan(*, now: datetime) -> dict:
    """TODO(issue 7): periodic checks (refund rates over 30 days)."""
    return {"flagged": 0}
