"""What happened, told once to everything that keeps figures about it.

The services that change orders, money, members and links call these functions inside their
own transaction (flush only). Each passes the event to the statistics rollups, the level
upgrades and the risk detectors, so those stay current as events happen and commit or roll
back with them. Days are the merchant's business dates.
"""

from __future__ import annotations

from datetime import date, datetime

from app.domain.business_time import business_date
from app.extensions import db
from app.models import Commission, Member, Merchant, Order, ShareLink, Visit, Withdrawal
from app.services import levels, risk, rollups


def _day(merchant_id: int, at: datetime) -> date:
    merchant = db.session.get(Merchant, merchant_id)
    return business_date(at, timezone=merchant.timezone)


def member_created(member: Member, at: datetime) -> None:
    rollups.member_created(member, day=_day(member.merchant_id, at))


def distributor_activated(member: Member, at: datetime) -> None:
    rollups.distributor_activated(member, day=_day(member.merchant_id, at))


def member_bound(member: Member, upline: Member, at: datetime, *, ip_hash: str = "") -> None:
    """A binding or a move put ``member`` under ``upline``."""
    rollups.member_bound(member, upline, day=_day(member.merchant_id, at))
    levels.consider_upgrade(upline, at=at)
    risk.on_binding(member, upline, at=at, ip_hash=ip_hash)


def link_created(link: ShareLink, at: datetime) -> None:
    rollups.link_created(link, day=_day(link.merchant_id, at))


def visit_recorded(visit: Visit, at: datetime) -> None:
    rollups.visit_recorded(visit, day=_day(visit.merchant_id, at))


def order_created(order: Order, at: datetime) -> None:
    rollups.order_created(order, day=_day(order.merchant_id, at))


def order_cancelled(order: Order, at: datetime) -> None:
    rollups.order_cancelled(order, day=_day(order.merchant_id, at))


def order_paid(order: Order, accrued: list[Commission], at: datetime) -> None:
    rollups.order_paid(order, accrued, day=_day(order.merchant_id, at))
    for member_id in {order.buyer_member_id, *(c.member_id for c in accrued)}:
        levels.consider_upgrade(db.session.get(Member, (order.merchant_id, member_id)), at=at)
    risk.on_payment(order, at=at)


def refund_succeeded(order: Order, *, refund_fen: int, goods_fen: int,
                     reversed_by_member: dict[int, int], at: datetime) -> None:
    """A refund of ``refund_fen`` (``goods_fen`` of it goods) took back
    ``reversed_by_member`` commission."""
    rollups.refund_succeeded(order, refund_fen=refund_fen, goods_fen=goods_fen,
                             reversed_by_member=reversed_by_member,
                             day=_day(order.merchant_id, at))
    risk.on_refund(order, at=at)


def commission_settled(commission: Commission, amount_fen: int, at: datetime) -> None:
    rollups.commission_settled(commission, amount_fen, day=_day(commission.merchant_id, at))
    levels.consider_upgrade(db.session.get(Member, (commission.merchant_id,
                                                    commission.member_id)), at=at)


def payout_done(withdrawal: Withdrawal, at: datetime) -> None:
    rollups.payout_done(withdrawal, day=_day(withdrawal.merchant_id, at))
