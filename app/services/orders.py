"""Orders: creation with stock reservation and the commission snapshot, shipment, receipt,
and the jobs that cancel unpaid orders, receive shipped ones and complete received ones
(DOMAIN.md, Products and orders). Payment and refunds live in ``payments`` and ``refunds``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from app.database import allocate_ids, transaction
from app.domain.order_status import IllegalOrderTransition, next_status
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.models import Member, Merchant, Order, OrderLine, Product, ShareLink, User
from app.services import (
    commission_plans,
    commissions,
    events,
    idempotency,
    members,
    merchants,
)
from app.services.scoping import get_scoped

UNPAID_TIMEOUT = timedelta(minutes=30)
MAX_LINES = 50


def out_trade_no_for(merchant_id: int, order_id: int) -> str:
    """Unique per merchant and across merchants sharing a WeChat Pay account; 6 to 32
    characters, as WeChat requires."""
    return f"FX{merchant_id}N{order_id:08d}"


def create_order(*, merchant_id: int, user_id: int, items: list[dict], address: dict,
                 share_token: str | None, idempotency_key: str | None, now: datetime
                 ) -> Order:
    """Reserve stock, snapshot the commission terms and create the order, in one transaction.
    With an ``Idempotency-Key`` a repeat returns the first order (another body: 409)."""
    body = {"items": items, "address": address, "share_token": share_token}
    scope = f"orders:user:{user_id}"
    with transaction(db.session):
        merchant = merchants.get_approved_merchant(merchant_id)
        if idempotency_key:
            earlier = idempotency.claim(merchant_id=merchant_id, scope=scope,
                                        key=idempotency_key, body=body)
            if earlier is not None:
                return get_scoped(Order, merchant_id=merchant_id,
                                  id=earlier.result["order_id"], what="order")
        order = _new_order(merchant, user_id, items, address, share_token, now)
        events.order_created(order, now)
        if idempotency_key:
            idempotency.record(merchant_id=merchant_id, scope=scope, key=idempotency_key,
                               result={"order_id": order.id})
    return order


def _new_order(merchant: Merchant, user_id: int, items: list[dict], address: dict,
               share_token: str | None, now: datetime) -> Order:
    quantities = _merged(items)
    products = _reserve(merchant.id, quantities)
    buyer = members.ensure_member(merchant_id=merchant.id, user_id=user_id)
    rules = merchants.program_rules(merchant)
    plan = commission_plans.current_plan(merchant.id, rules)
    goods = sum(products[pid].price_fen * q for pid, q in quantities.items())
    order_id = allocate_ids(db.session, "orders", 1)[0]
    order = Order(merchant_id=merchant.id, id=order_id,
                  out_trade_no=out_trade_no_for(merchant.id, order_id),
                  buyer_user_id=user_id, buyer_member_id=buyer.id, status="created",
                  goods_fen=goods, discount_fen=0, shipping_fen=0, paid_fen=goods,
                  refunded_fen=0, address=address, created_at=now,
                  share_link_id=_share_link_id(merchant.id, share_token),
                  commission_snapshot=commissions.take_snapshot(buyer=buyer, plan=plan,
                                                                rules=rules, now=now))
    db.session.add(order)
    db.session.flush()
    for line_no, (product_id, quantity) in enumerate(quantities.items(), start=1):
        product = products[product_id]
        db.session.add(OrderLine(
            merchant_id=merchant.id, order_id=order.id, line_no=line_no, product_id=product_id,
            title=product.title, unit_price_fen=product.price_fen, quantity=quantity,
            commission_override=product.commission_override,
            distributable=product.is_distributable))
    db.session.flush()
    return order


def _merged(items: list[dict]) -> dict[int, int]:
    if not items or len(items) > MAX_LINES:
        raise InvalidInput(errors={"items": [f"Order 1 to {MAX_LINES} products."]})
    quantities: dict[int, int] = {}
    for item in items:
        quantities[item["product_id"]] = quantities.get(item["product_id"], 0) + item["quantity"]
    return dict(sorted(quantities.items()))


def _reserve(merchant_id: int, quantities: dict[int, int]) -> dict[int, Product]:
    """Take stock with conditional updates, in product-id order (no deadlocks between two
    orders): an update that finds too little stock changes nothing and the order fails."""
    products = {p.id: p for p in db.session.scalars(select(Product).where(
        Product.merchant_id == merchant_id, Product.id.in_(quantities)))}
    errors = {}
    for product_id in quantities:
        product = products.get(product_id)
        if product is None or product.status != "on_sale":
            errors[f"items.{product_id}"] = ["This product is not on sale."]
    if errors:
        raise InvalidInput("Some products cannot be ordered.", code="product_unavailable",
                           errors=errors)
    for product_id, quantity in quantities.items():
        taken = db.session.execute(
            update(Product).where(Product.merchant_id == merchant_id, Product.id == product_id,
                                  Product.stock >= quantity)
            .values(stock=Product.stock - quantity)).rowcount
        if taken != 1:
            raise Conflict("Not enough stock.", code="out_of_stock",
                           errors={f"items.{product_id}": ["Not enough stock."]})
    return products


def _share_link_id(merchant_id: int, token: str | None) -> int | None:
    """The link the order came through, for reports. An unknown or foreign token does not stop
    a purchase; binding is decided by the share visit, not here."""
    if not token:
        return None
    return db.session.scalar(select(ShareLink.id).where(ShareLink.merchant_id == merchant_id,
                                                        ShareLink.token == token))


def release_stock(order: Order) -> None:
    for line in _lines(order):
        if line.product_id is not None:
            db.session.execute(update(Product).where(
                Product.merchant_id == order.merchant_id, Product.id == line.product_id)
                .values(stock=Product.stock + line.quantity))


def take_stock_again(order: Order) -> None:
    """A cancelled order that WeChat says was paid after all: the goods are sold (stock may
    go below zero, which the console shows as oversold)."""
    for line in _lines(order):
        if line.product_id is not None:
            db.session.execute(update(Product).where(
                Product.merchant_id == order.merchant_id, Product.id == line.product_id)
                .values(stock=Product.stock - line.quantity))


def _lines(order: Order) -> list[OrderLine]:
    return list(db.session.scalars(select(OrderLine).where(
        OrderLine.merchant_id == order.merchant_id, OrderLine.order_id == order.id)
        .order_by(OrderLine.line_no)))


def transition(order: Order, action: str) -> None:
    try:
        order.status = next_status(action, order.status)
    except IllegalOrderTransition as exc:
        raise Conflict(str(exc), code="illegal_order_transition") from None


# -- reads -------------------------------------------------------------------------------------

def buyer_order(*, merchant_id: int, user_id: int, order_id: int,
                for_update: bool = False) -> Order:
    order = get_scoped(Order, merchant_id=merchant_id, id=order_id, what="order",
                       for_update=for_update)
    if order.buyer_user_id != user_id:
        raise NotFound("No such order.", code="order_not_found")
    return order


def lines_of(order: Order) -> list[OrderLine]:
    return _lines(order)


def list_orders(*, merchant_id: int, page: int, per_page: int, user_id: int | None = None,
                status: str | None = None) -> tuple[list[Order], int]:
    query = select(Order).where(Order.merchant_id == merchant_id)
    if user_id is not None:
        query = query.where(Order.buyer_user_id == user_id)
    if status:
        query = query.where(Order.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(Order.id.desc()).limit(per_page)
                               .offset((page - 1) * per_page)).all()
    return list(items), total


def buyer_openid(order: Order) -> str:
    return db.session.get(User, order.buyer_user_id).openid


# -- fulfilment --------------------------------------------------------------------------------

def ship(*, merchant_id: int, order_id: int, carrier: str, tracking_no: str,
         now: datetime) -> Order:
    with transaction(db.session):
        order = get_scoped(Order, merchant_id=merchant_id, id=order_id, what="order",
                           for_update=True)
        if order.shipped_at is not None:
            raise Conflict("This order was shipped already.", code="already_shipped")
        transition(order, "ship")
        order.carrier, order.tracking_no, order.shipped_at = carrier, tracking_no, now
    return order


def receive(*, merchant_id: int, user_id: int, order_id: int, now: datetime) -> Order:
    """The buyer confirms receipt: the after-sale window starts, and the order's pending
    commission is scheduled to settle ``freeze_days`` from now."""
    with transaction(db.session):
        order = buyer_order(merchant_id=merchant_id, user_id=user_id, order_id=order_id,
                            for_update=True)
        _receive(order, now)
    return order


def _receive(order: Order, now: datetime) -> None:
    if order.shipped_at is None or order.received_at is not None:
        raise Conflict(f"cannot receive an order whose status is {order.status}",
                       code="illegal_order_transition")
    transition(order, "receive")
    order.received_at = now
    rules = merchants.program_rules(db.session.get(Merchant, order.merchant_id))
    commissions.schedule_settlement(order, received_at=now, freeze_days=rules.freeze_days)


def _merchants_with(*conditions) -> list[int]:
    return list(db.session.scalars(select(Order.merchant_id).where(*conditions).distinct()))


def _claim(merchant_id: int, *conditions, limit: int) -> list[Order]:
    """Due orders of one merchant, locked; rows another runner holds are skipped."""
    return list(db.session.scalars(select(Order).where(Order.merchant_id == merchant_id,
                                                       *conditions)
                                   .order_by(Order.id).limit(limit)
                                   .with_for_update(skip_locked=True)))


def auto_receive_due(*, now: datetime, limit: int = 500) -> int:
    """The job: orders shipped ``auto_receive_days`` ago are received automatically (each
    merchant has its own number of days)."""
    waiting = (Order.shipped_at.is_not(None), Order.received_at.is_(None),
               Order.status.in_(("shipped", "partially_refunded")))
    received = 0
    for merchant_id in _merchants_with(*waiting):
        rules = merchants.program_rules(db.session.get(Merchant, merchant_id))
        cutoff = now - timedelta(days=rules.auto_receive_days)
        for order in _claim(merchant_id, *waiting, Order.shipped_at <= cutoff, limit=limit):
            _receive(order, now)
            received += 1
    db.session.flush()
    return received


def complete_due(*, now: datetime, limit: int = 500) -> int:
    """The job: received orders whose after-sale window (``freeze_days``) has passed are
    completed."""
    completed = 0
    for merchant_id in _merchants_with(Order.status == "received"):
        rules = merchants.program_rules(db.session.get(Merchant, merchant_id))
        cutoff = now - timedelta(days=rules.freeze_days)
        for order in _claim(merchant_id, Order.status == "received",
                            Order.received_at <= cutoff, limit=limit):
            transition(order, "complete")
            order.completed_at = now
            completed += 1
    db.session.flush()
    return completed


def unpaid_past(*, now: datetime, age: timedelta, limit: int = 200) -> list[tuple[int, int]]:
    """(merchant id, order id) of unpaid orders older than ``age``, oldest first."""
    rows = db.session.execute(select(Order.merchant_id, Order.id).where(
        Order.status == "created", Order.created_at <= now - age)
        .order_by(Order.created_at).limit(limit)).all()
    return [tuple(row) for row in rows]


def member_of(order: Order) -> Member:
    return db.session.get(Member, (order.merchant_id, order.buyer_member_id))
