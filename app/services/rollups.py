"""Statistics rollups (daily_stats, daily_member_stats, daily_buyers), updated in the
transaction of the event they count. Called only through ``services/events.py``.

Every function adds to the day's row with an upsert (no read-modify-write race between two
payments of one merchant)."""

from __future__ import annotations

from datetime import date

from app.models import Commission, Member, Order, ShareLink, Visit, Withdrawal


def member_created(member: Member, *, day: date) -> None:
    """TODO(issue 7): new_members."""


def distributor_activated(member: Member, *, day: date) -> None:
    """TODO(issue 7): new_distributors."""


def member_bound(member: Member, upline: Member, *, day: date) -> None:
    """TODO(issue 7): bindings; the upline's new_direct_members."""


def link_created(link: ShareLink, *, day: date) -> None:
    """TODO(issue 7): links_shared."""


def visit_recorded(visit: Visit, *, day: date) -> None:
    """TODO(issue 7): visits."""


def order_created(order: Order, *, day: date) -> None:
    """TODO(issue 7): orders_created."""


def order_cancelled(order: Order, *, day: date) -> None:
    """TODO(issue 7): orders_cancelled."""


def order_paid(order: Order, accrued: list[Commission], *, day: date) -> None:
    """TODO(issue 7): gmv, orders, buyers, referred sales, commission accrued."""


def refund_succeeded(order: Order, *, refund_fen: int, goods_fen: int,
                     reversed_by_member: dict[int, int], day: date) -> None:
    """TODO(issue 7): refunds, reversed commission, spend and sales taken back."""


def commission_settled(commission: Commission, amount_fen: int, *, day: date) -> None:
    """TODO(issue 7): commission settled."""


def payout_done(withdrawal: Withdrawal, *, day: date) -> None:
    """TODO(issue 7): paid out."""
