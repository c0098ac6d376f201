"""Payments: prepay (the object ``wx.requestPayment`` takes), WeChat's payment result applied
once, and the jobs that recover payments whose notification never came and cancel orders left
unpaid (DOMAIN.md, Commission lifecycle; API.md, WeChat callbacks).

``apply_payment`` is the one path for a payment, whether a notification or a query reports it:
it checks WeChat's word against the order, and records the payment, the binding a first order
redeems, the commission accrual and the sales counters in one transaction. The order's row lock
serializes concurrent duplicates; the stored transaction id turns every repeat into a no-op.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from app.database import transaction
from app.encryption import SecretBox
from app.errors import Conflict, UpstreamError
from app.extensions import db
from app.integrations.wechatpay import Payment, PayRejected, PayUnavailable
from app.models import Member, Merchant, Order
from app.services import (
    attribution,
    commission_plans,
    commissions,
    events,
    merchants,
    orders,
    payment_settings,
    tree,
)

log = logging.getLogger("fenxiao.payments")
# When a buyer who opened the payment sheet has usually paid; later, we ask WeChat.
EXPECTED_PAYMENT_TIME = timedelta(minutes=2)


@dataclass(frozen=True)
class PayConfig:
    """What payment services need from settings: handed in by the caller."""

    box: SecretBox
    base_url: str
    public_base_url: str
    timeout: float = 5.0

    def notify_url(self, merchant_id: int, api: str, kind: str = "payment") -> str:
        if api == "v3":
            return f"{self.public_base_url}/webhooks/wechatpay/v3/{merchant_id}"
        return f"{self.public_base_url}/webhooks/wechatpay/v2/{merchant_id}/{kind}"

    def gateway(self, merchant_id: int):
        return payment_settings.gateway(merchant_id, box=self.box, base_url=self.base_url,
                                        timeout=self.timeout)


@dataclass
class PaymentOutcome:
    result: str  # paid | duplicate
    order: Order
    member_ids: set[int] = field(default_factory=set)


def payment_params(order: Order, config: PayConfig, *, now: datetime) -> dict:
    """Prepay once per order (WeChat answers a repeat with the same prepay_id) and sign the
    object for ``wx.requestPayment``. Runs outside any transaction: the WeChat call must not
    hold database locks."""
    if order.status != "created":
        raise Conflict(f"This order is {order.status}; it cannot be paid now.",
                       code="order_not_payable")
    gateway = config.gateway(order.merchant_id)
    prepay_id = order.prepay_id
    if not prepay_id or order.pay_mch_id != gateway.account.mch_id:
        request = dict(out_trade_no=order.out_trade_no, description=_description(order),
                       total_fen=order.paid_fen, openid=orders.buyer_openid(order),
                       notify_url=config.notify_url(order.merchant_id, gateway.api),
                       expire_rfc3339=(order.created_at + orders.UNPAID_TIMEOUT)
                       .isoformat(timespec="seconds"))
        db.session.rollback()  # no transaction stays open across the call to WeChat
        try:
            prepay_id = gateway.prepay(**request)
        except PayUnavailable as exc:
            raise UpstreamError(f"WeChat Pay did not accept the order: {exc}",
                                code="wechatpay_unavailable") from None
        _remember_prepay(order, gateway, prepay_id, now)
    return gateway.payment_params(prepay_id)


def _description(order: Order) -> str:
    lines = orders.lines_of(order)
    text = lines[0].title if lines else "订单"
    return (text if len(lines) == 1 else f"{text} 等{len(lines)}件")[:127]


def _remember_prepay(order: Order, gateway, prepay_id: str, now: datetime) -> None:
    with transaction(db.session):
        row = db.session.get(Order, (order.merchant_id, order.id), with_for_update=True)
        row.prepay_id, row.prepaid_at = prepay_id, now
        row.pay_api, row.pay_appid, row.pay_mch_id = (gateway.api, gateway.account.appid,
                                                      gateway.account.mch_id)


def apply_payment(*, merchant_id: int, payment: Payment, now: datetime) -> PaymentOutcome:
    """Record WeChat's payment of an order, once; raises ``PayRejected`` (nothing changed)
    when WeChat's word does not match the order."""
    with transaction(db.session):
        order = db.session.scalars(select(Order).where(
            Order.merchant_id == merchant_id, Order.out_trade_no == payment.out_trade_no)
            .with_for_update()).one_or_none()
        _check(order, payment)
        if order.transaction_id is not None:
            return PaymentOutcome("duplicate", order)
        member_ids = _record(order, payment, now)
    return PaymentOutcome("paid", order, member_ids)


def _check(order: Order | None, payment: Payment) -> None:
    if order is None:
        raise PayRejected("unknown_order")
    if not payment.is_paid:
        raise PayRejected("not_paid")
    if order.pay_appid is None:
        raise PayRejected("never_offered_for_payment")
    if payment.appid != order.pay_appid:
        raise PayRejected("appid_mismatch")
    if payment.mch_id != order.pay_mch_id:
        raise PayRejected("mch_id_mismatch")
    if payment.total_fen != order.paid_fen:
        raise PayRejected("amount_mismatch")
    if order.transaction_id not in (None, payment.transaction_id):
        # A second payment of one order: WeChat holds money we must refund by hand.
        log.error("order paid twice", extra={"merchant_id": order.merchant_id,
                                             "order_id": order.id})
        raise PayRejected("paid_by_another_transaction")


def _record(order: Order, payment: Payment, now: datetime) -> set[int]:
    was_cancelled = order.status == "cancelled"
    orders.transition(order, "pay")
    if was_cancelled:
        orders.take_stock_again(order)
    order.transaction_id, order.paid_at = payment.transaction_id, now
    merchant = db.session.get(Merchant, order.merchant_id)
    buyer = orders.member_of(order)
    if buyer.pending_upline_id is not None:
        _redeem_first_order(order, buyer, merchant)
    accrued = commissions.accrue_for_paid_order(order, timezone=merchant.timezone, now=now)
    tree.queue_sales(buyer, sales_fen=order.goods_paid_fen)
    events.order_paid(order, accrued, now)
    return {row.member_id for row in accrued}


def _redeem_first_order(order: Order, buyer: Member, merchant: Merchant) -> None:
    """``first_order`` trigger: this payment turns the remembered visit into a binding, and
    the order itself earns the new upline commission under the plan it was created with."""
    tree.lock_tree(merchant.id)
    db.session.refresh(buyer)
    rules = merchants.program_rules(merchant)
    if attribution.redeem_first_order(member=buyer, rules=rules) in ("bound", "rebound"):
        plan = commission_plans.plan_version(merchant.id,
                                             order.commission_snapshot["plan_version"])
        order.commission_snapshot = commissions.take_snapshot(
            buyer=buyer, plan=plan, rules=rules, now=order.created_at)


# -- jobs --------------------------------------------------------------------------------------

def recover_payments(config: PayConfig, *, now: datetime, limit: int = 200) -> dict:
    """The job: ask WeChat about orders offered for payment but still unpaid after the
    expected time, and apply any payment it reports by the same path as a notification."""
    candidates = db.session.execute(select(Order.merchant_id, Order.out_trade_no).where(
        Order.status == "created", Order.prepay_id.is_not(None),
        Order.prepaid_at <= now - EXPECTED_PAYMENT_TIME)
        .order_by(Order.prepaid_at).limit(limit)).all()
    db.session.rollback()
    recovered = 0
    for merchant_id, out_trade_no in candidates:
        if ask_wechat(config, merchant_id, out_trade_no, now=now) == "paid":
            recovered += 1
    return {"recovered": recovered}


def ask_wechat(config: PayConfig, merchant_id: int, out_trade_no: str, *,
                now: datetime) -> str:
    """paid | unpaid | unknown (WeChat unreachable: try again next run)."""
    try:
        payment = config.gateway(merchant_id).query_order(out_trade_no)
    except (PayUnavailable, Conflict):
        return "unknown"
    if payment is None or not payment.is_paid:
        return "unpaid"
    try:
        apply_payment(merchant_id=merchant_id, payment=payment, now=now)
    except PayRejected as exc:
        log.warning("queried payment rejected", extra={"merchant_id": merchant_id,
                                                       "reason": exc.reason})
        return "unknown"
    return "paid"


def cancel_unpaid(config: PayConfig, *, now: datetime, limit: int = 200) -> dict:
    """The job: orders unpaid ``UNPAID_TIMEOUT`` after creation are cancelled and their stock
    released — after WeChat confirms they were not paid and closes them, so a payment made
    in the last second is recorded rather than lost."""
    candidates = orders.unpaid_past(now=now, age=orders.UNPAID_TIMEOUT, limit=limit)
    db.session.rollback()
    cancelled = recovered = 0
    for merchant_id, order_id in candidates:
        outcome = _cancel_one(config, merchant_id, order_id, now=now)
        cancelled += outcome == "cancelled"
        recovered += outcome == "paid"
    return {"cancelled": cancelled, "recovered": recovered}


def _cancel_one(config: PayConfig, merchant_id: int, order_id: int, *, now: datetime) -> str:
    order = db.session.get(Order, (merchant_id, order_id))
    out_trade_no, offered = order.out_trade_no, order.prepay_id is not None
    db.session.rollback()
    if offered:
        answer = ask_wechat(config, merchant_id, out_trade_no, now=now)
        if answer != "unpaid":
            return answer
        try:
            config.gateway(merchant_id).close_order(out_trade_no)
        except PayUnavailable:
            return "unknown"  # maybe paid this very moment: the next run asks again
    with transaction(db.session):
        order = db.session.get(Order, (merchant_id, order_id), with_for_update=True)
        if order.status != "created":
            return order.status
        orders.transition(order, "cancel")
        order.cancelled_at = now
        orders.release_stock(order)
        events.order_cancelled(order, now)
    return "cancelled"
