"""Demo orders paid through the WeChat sandbox by the same paths production uses: prepay,
the sandbox's payment, WeChat's answer to a query applied by ``payments.ask_wechat``, shipment,
receipt, settlement, and one partial refund. Older orders are dated back so that some
commission has passed its freeze and is available."""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from sqlalchemy import select

from app.clients import pay_config, sandbox_base_url, secret_box, settings
from app.database import transaction, utcnow
from app.extensions import db
from app.models import Order, Product
from app.services import commissions, orders, payment_settings, payments, refunds

log = logging.getLogger("fenxiao.demo")
ADDRESS = {"receiver": "王小明", "phone": "13800000000", "province": "广东省",
           "city": "深圳市", "district": "南山区", "detail": "科技园南区 8 栋"}
# (buyer's index in seed.PEOPLE, product index, quantity, days ago, how far it got)
ORDERS = [(3, 0, 2, 12, "settled"), (6, 1, 1, 11, "settled"), (9, 2, 3, 10, "settled"),
          (7, 3, 2, 4, "received"), (10, 0, 1, 3, "shipped"), (11, 1, 2, 1, "paid"),
          (14, 2, 1, 0, "paid"), (15, 3, 4, 0, "refunded_in_part")]


def seed_orders(merchant_id: int, user_ids: list[int]) -> int:
    """Configure the sandbox payment account and place the demo's orders; 0 without a
    sandbox (nothing here may reach the real WeChat)."""
    sandbox = sandbox_base_url()
    if sandbox is None:
        log.warning("no WeChat sandbox: the demo has no orders")
        return 0
    payment_settings.configure(merchant_id=merchant_id,
                               body={"mode": "sandbox", "appid": settings().wechat_appid},
                               box=secret_box(), sandbox_base_url=sandbox)
    product_ids = list(db.session.scalars(select(Product.id).where(
        Product.merchant_id == merchant_id).order_by(Product.id)))
    for buyer, product, quantity, days_ago, stage in ORDERS:
        place(merchant_id, user_ids[buyer], product_ids[product], quantity,
              utcnow() - timedelta(days=days_ago, hours=2), stage, sandbox)
    with transaction(db.session):
        commissions.settle_due(now=utcnow())
    return len(ORDERS)


def stage_for(days_ago: int) -> str:
    """How far an order placed ``days_ago`` has got in a shop that ships in a day."""
    if days_ago >= 10:
        return "settled"
    return "received" if days_ago >= 4 else "shipped" if days_ago >= 1 else "paid"


def place(merchant_id: int, user_id: int, product_id: int, quantity: int, at, stage: str,
          sandbox: str, address: dict = ADDRESS) -> int:
    """One order, paid through the sandbox at ``at`` and taken as far as ``stage``."""
    config = pay_config()
    order = orders.create_order(merchant_id=merchant_id, user_id=user_id,
                                items=[{"product_id": product_id, "quantity": quantity}],
                                address=address, share_token=None, idempotency_key=None, now=at)
    payments.payment_params(order, config, now=at)
    order = db.session.get(Order, (merchant_id, order.id))
    requests.post(f"{sandbox}/sandbox/pay/{order.pay_mch_id}/{order.out_trade_no}", json={},
                  timeout=10).raise_for_status()
    payments.ask_wechat(config, merchant_id, order.out_trade_no, now=at + timedelta(minutes=1))
    if stage in ("shipped", "received", "settled"):
        orders.ship(merchant_id=merchant_id, order_id=order.id, carrier="顺丰速运",
                    tracking_no=f"SF{order.id:010d}", now=at + timedelta(hours=20))
    if stage in ("received", "settled"):
        orders.receive(merchant_id=merchant_id, user_id=user_id, order_id=order.id,
                       now=at + timedelta(days=2))
    if stage == "refunded_in_part":
        refund_part(merchant_id, order.id, config, sandbox, at)
    return order.id


def refund_part(merchant_id: int, order_id: int, config, sandbox: str, at) -> None:
    refund = refunds.start_refund(merchant_id=merchant_id, order_id=order_id,
                                  amount_fen=1_000, reason="一个果子磕坏了", staff_id=None,
                                  config=config, now=at + timedelta(hours=1))
    mch_id = db.session.get(Order, (merchant_id, order_id)).pay_mch_id
    requests.post(f"{sandbox}/sandbox/refunds/{mch_id}/{refund.out_refund_no}/complete",
                  json={"status": "SUCCESS"}, timeout=10).raise_for_status()
    result = config.gateway(merchant_id).query_refund(refund.out_refund_no)
    refunds.apply_refund_result(merchant_id=merchant_id, result=result,
                                now=at + timedelta(hours=2))
