"""Team views for the console (DOMAIN.md, Statistics and reports: team management): one
member's page — level, counters, wallet, direct members level by level — and the orders of
their whole team with shipment status.

Counters are the stored ones (``direct_members`` exact, ``team_size`` and ``team_sales_fen`` a
few seconds behind through the delta queue); the team's orders are found by the members'
materialized paths (every member whose path starts with this member's), newest first.
"""

from __future__ import annotations

import redis as redis_lib
from sqlalchemy import func, select

from app.domain import tree as tree_rules
from app.extensions import db
from app.models import Level, Member, Order, User
from app.services import members as member_service
from app.services import wallets


def team_member(*, merchant_id: int, member_id: int, redis_client: redis_lib.Redis) -> dict:
    """The member's summary: counters, level, wallet (Redis, else SQL) and upline."""
    member, user = member_service.member_with_user(merchant_id=merchant_id,
                                                   member_id=member_id)
    level = db.session.get(Level, (merchant_id, member.level_id)) if member.level_id else None
    return {"member": (member, user),
            "level": {"id": level.id, "name": level.name} if level is not None else None,
            "wallet": wallets.read_wallet(redis_client, merchant_id=merchant_id,
                                          member_id=member_id)}


def shipment_status(order: Order) -> str:
    """Where the goods are: ``unpaid`` (created or cancelled unpaid), ``awaiting_shipment``,
    ``shipped`` (on the way), ``received``."""
    if order.paid_at is None:
        return "unpaid"
    if order.shipped_at is None:
        return "awaiting_shipment"
    return "shipped" if order.received_at is None else "received"


def team_orders(*, merchant_id: int, member_id: int, page: int, per_page: int,
                status: str | None = None) -> tuple[list[dict], int]:
    """Orders placed by any member of ``member_id``'s team (not their own), newest first,
    each with its buyer and how far below the member the buyer sits."""
    member, _ = member_service.member_with_user(merchant_id=merchant_id, member_id=member_id)
    prefix = tree_rules.child_path(parent_path=member.path, parent_id=member.id)
    query = (select(Order, Member.depth, User.nickname)
             .join(Member, (Member.merchant_id == Order.merchant_id)
                   & (Member.id == Order.buyer_member_id))
             .join(User, User.id == Member.user_id)
             .where(Order.merchant_id == merchant_id,
                    Member.path.startswith(prefix, autoescape=True)))
    if status:
        query = query.where(Order.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.execute(query.order_by(Order.created_at.desc(), Order.id.desc())
                              .limit(per_page).offset((page - 1) * per_page)).all()
    return [{"order": order, "buyer_nickname": nickname,
             "team_level": depth - member.depth, "shipment_status": shipment_status(order)}
            for order, depth, nickname in rows], total
