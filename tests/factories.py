"""Factory functions: one per thing, each committing what it makes (integration tests)."""

from __future__ import annotations

import itertools

from app.database import transaction, utcnow
from app.domain.share_token import new_token
from app.extensions import db
from app.models import Member, Merchant, Order, OrderLine, ShareLink, User
from app.services import tree

_seq = itertools.count(1)


def make_merchant(*, status: str = "approved", rules: dict | None = None, **fields) -> Merchant:
    with transaction(db.session):
        merchant = Merchant(name=fields.pop("name", f"Shop {next(_seq)}"), status=status,
                            program_rules=rules or {}, **fields)
        db.session.add(merchant)
    from app.extensions import redis
    from app.services import wallets

    wallets.mark_new_merchant(redis.client, merchant.id)  # as merchants._open does
    return merchant


def make_user(**fields) -> User:
    n = next(_seq)
    with transaction(db.session):
        user = User(appid="wx-test", openid=fields.pop("openid", f"o-test-{n}"), **fields)
        db.session.add(user)
    return user


def make_member(merchant: Merchant, *, upline: Member | None = None, status: str = "active",
                user: User | None = None) -> Member:
    """A member (an active distributor by default), bound under ``upline`` if given."""
    user = user or make_user()
    with transaction(db.session):
        member = Member(merchant_id=merchant.id, user_id=user.id, distributor_status=status)
        db.session.add(member)
        db.session.flush()
        if upline is not None:
            tree.lock_tree(merchant.id)
            tree.attach(member, db.session.get(Member, (merchant.id, upline.id)))
    return member


def make_share_link(distributor: Member, *, page: str = "pages/index/index") -> ShareLink:
    with transaction(db.session):
        link = ShareLink(merchant_id=distributor.merchant_id, distributor_id=distributor.id,
                         token=new_token(distributor.merchant_id), page=page)
        db.session.add(link)
    return link


def make_order(buyer: Member, *, lines: list[tuple[int, int]] | None = None,
               discount_fen: int = 0, shipping_fen: int = 0,
               overrides: dict[int, dict] | None = None) -> Order:
    """An unpaid order of ``buyer`` with its commission snapshot, as order creation takes it.
    ``lines`` are (unit price fen, quantity); ``overrides`` maps a line number to a product
    commission override ({"mode", "values"})."""
    from app.services import commission_plans, commissions, merchants

    lines = lines or [(10_000, 1)]
    goods = sum(price * quantity for price, quantity in lines)
    with transaction(db.session):
        merchant = db.session.get(Merchant, buyer.merchant_id)
        buyer = db.session.get(Member, (buyer.merchant_id, buyer.id))
        rules = merchants.program_rules(merchant)
        plan = commission_plans.current_plan(merchant.id, rules)
        order = Order(merchant_id=merchant.id, out_trade_no=f"T{next(_seq):012d}",
                      buyer_user_id=buyer.user_id, buyer_member_id=buyer.id, goods_fen=goods,
                      discount_fen=discount_fen, shipping_fen=shipping_fen,
                      paid_fen=goods - discount_fen + shipping_fen,
                      commission_snapshot=commissions.take_snapshot(
                          buyer=buyer, plan=plan, rules=rules, now=utcnow()))
        db.session.add(order)
        db.session.flush()
        for number, (price, quantity) in enumerate(lines, start=1):
            db.session.add(OrderLine(merchant_id=merchant.id, order_id=order.id, line_no=number,
                                     title=f"Item {number}", unit_price_fen=price,
                                     quantity=quantity,
                                     commission_override=(overrides or {}).get(number)))
    return order


def pay_order(order: Order) -> list:
    """Accrue the order's commission as the payment transaction will (issue 5 pays for real)."""
    from app.services import commissions

    with transaction(db.session):
        order = db.session.get(Order, (order.merchant_id, order.id))
        order.status, order.paid_at = "paid", utcnow()
        return commissions.accrue_for_paid_order(order, timezone="Asia/Shanghai", now=utcnow())
