"""Refunds: requested by the buyer and approved by the merchant, or started by the merchant;
sent to WeChat under an ``out_refund_no`` that a retry reuses; finished by WeChat's
notification or by the sync job's query (DOMAIN.md, Commission lifecycle: Reverse).

One refund is open per order at a time. ``REFUND.ABNORMAL`` is not final (the merchant fixes the
account in WeChat's console and WeChat completes it later); ``REFUND.CLOSED`` puts the order
back where it was. Success reverses commission in proportion to the goods refunded, once per
refund (``commissions.reverse_for_refund`` keys it), and reduces the team's sales.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from app.database import allocate_ids, transaction
from app.domain.order_status import PAID_STATES, refunded_goods_fen
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.integrations.wechatpay import PayRejected, PayUnavailable, RefundResult
from app.models import Order, Refund
from app.services import commissions, events, orders, tree
from app.services.payments import PayConfig
from app.services.scoping import get_scoped

log = logging.getLogger("fenxiao.refunds")
OPEN = ("requested", "processing", "abnormal")
SYNC_AFTER = timedelta(minutes=5)
# WeChat's "try again" answers (v3 and v2 spellings).
RETRYABLE = {"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BIZERR_NEED_RETRY"}


@dataclass
class RefundOutcome:
    result: str  # succeeded | abnormal | closed | processing | duplicate
    refund: Refund
    member_ids: set[int] = field(default_factory=set)


def request_refund(*, merchant_id: int, user_id: int, order_id: int, amount_fen: int | None,
                   reason: str, now: datetime) -> Refund:
    """The buyer asks; the merchant approves or rejects in the console."""
    with transaction(db.session):
        order = orders.buyer_order(merchant_id=merchant_id, user_id=user_id,
                                   order_id=order_id, for_update=True)
        refund = _open(order, amount_fen, reason, source="buyer", now=now)
    return refund


def start_refund(*, merchant_id: int, order_id: int, amount_fen: int | None, reason: str,
                 staff_id: int | None, config: PayConfig, now: datetime) -> Refund:
    """The merchant refunds (no approval step): opened and sent to WeChat at once."""
    with transaction(db.session):
        order = get_scoped(Order, merchant_id=merchant_id, id=order_id, what="order",
                           for_update=True)
        refund = _open(order, amount_fen, reason, source="merchant", now=now)
        refund.staff_id = refund.staff_id or staff_id
        _mark_processing(order, refund, now)
    return _submit(refund, config, now=now)


def _open(order: Order, amount_fen: int | None, reason: str, *, source: str,
          now: datetime) -> Refund:
    if db.session.scalar(select(Refund.id).where(Refund.merchant_id == order.merchant_id,
                                                 Refund.order_id == order.id,
                                                 Refund.status.in_(OPEN))) is not None:
        raise Conflict("This order already has a refund in progress.",
                       code="refund_in_progress")
    if order.status not in PAID_STATES:
        raise Conflict(f"An order that is {order.status} cannot be refunded.",
                       code="order_not_refundable")
    refundable = order.paid_fen - order.refunded_fen
    amount = refundable if amount_fen is None else amount_fen
    if not 0 < amount <= refundable:
        raise InvalidInput(errors={"amount_fen": [f"Refund 1 to {refundable} fen."]})
    refund_id = allocate_ids(db.session, "refunds", 1)[0]
    refund = Refund(merchant_id=order.merchant_id, id=refund_id, order_id=order.id,
                    amount_fen=amount, reason=reason, source=source, status="requested",
                    created_at=now, out_refund_no=f"{order.out_trade_no}R{refund_id}")
    db.session.add(refund)
    db.session.flush()
    return refund


def review(*, merchant_id: int, refund_id: int, approve: bool, reason: str, staff_id: int,
           config: PayConfig, now: datetime) -> Refund:
    with transaction(db.session):
        refund = get_scoped(Refund, merchant_id=merchant_id, id=refund_id, what="refund")
        order = get_scoped(Order, merchant_id=merchant_id, id=refund.order_id, what="order",
                           for_update=True)
        db.session.refresh(refund, with_for_update=True)
        if refund.status != "requested":
            raise Conflict(f"This refund is {refund.status}.", code="refund_not_requested")
        refund.staff_id, refund.review_reason = staff_id, reason
        if not approve:
            if not reason:
                raise InvalidInput(errors={"reason": ["Say why the refund is rejected."]})
            refund.status, refund.finished_at = "rejected", now
            return refund
        _mark_processing(order, refund, now)
    return _submit(refund, config, now=now)


def _mark_processing(order: Order, refund: Refund, now: datetime) -> None:
    order.status_before_refund = order.status
    orders.transition(order, "open_refund")
    refund.status, refund.submitted_at = "processing", now


def _submit(refund: Refund, config: PayConfig, *, now: datetime) -> Refund:
    """Send the refund to WeChat, outside any transaction. WeChat refunds an
    ``out_refund_no`` once, so when the answer is lost the sync job simply asks again."""
    order = db.session.get(Order, (refund.merchant_id, refund.order_id))
    db.session.rollback()
    try:
        gateway = config.gateway(order.merchant_id)
        result = gateway.refund(out_trade_no=order.out_trade_no,
                                out_refund_no=refund.out_refund_no,
                                refund_fen=refund.amount_fen, total_fen=order.paid_fen,
                                notify_url=config.notify_url(order.merchant_id, gateway.api,
                                                             "refund"),
                                reason=refund.reason)
    except PayUnavailable as exc:
        log.warning("refund not accepted by WeChat", extra={
            "merchant_id": refund.merchant_id, "refund_id": refund.id, "code": exc.code})
        if _refused_outright(exc):
            _fail(refund, now)  # nothing was refunded: the order goes back to where it was
        return db.session.get(Refund, (refund.merchant_id, refund.id))
    with transaction(db.session):
        row = db.session.get(Refund, (refund.merchant_id, refund.id), with_for_update=True)
        row.refund_id = result.refund_id or row.refund_id
    return row


def _refused_outright(exc: PayUnavailable) -> bool:
    """WeChat said no for good (bad amount, no balance...), as opposed to busy or unreachable,
    after which the same ``out_refund_no`` is sent again."""
    if exc.code in RETRYABLE or (exc.status is not None and exc.status >= 500):
        return False
    return bool(exc.code) or (exc.status is not None and 400 <= exc.status < 500)


def _fail(refund: Refund, now: datetime) -> None:
    with transaction(db.session):
        order = db.session.get(Order, (refund.merchant_id, refund.order_id),
                               with_for_update=True)
        row = db.session.get(Refund, (refund.merchant_id, refund.id), with_for_update=True)
        if row.status == "processing":
            row.status, row.finished_at = "failed", now
            order.status = order.status_before_refund


def apply_refund_result(*, merchant_id: int, result: RefundResult,
                        now: datetime) -> RefundOutcome:
    """WeChat's word on a refund (notification or query), applied once. Raises
    ``PayRejected`` (nothing changed) when it does not match our refund."""
    with transaction(db.session):
        order = db.session.scalars(select(Order).where(
            Order.merchant_id == merchant_id, Order.out_trade_no == result.out_trade_no)
            .with_for_update()).one_or_none()
        refund = db.session.scalars(select(Refund).where(
            Refund.merchant_id == merchant_id, Refund.out_refund_no == result.out_refund_no)
            .with_for_update()).one_or_none()
        if order is None or refund is None or refund.order_id != order.id:
            raise PayRejected("unknown_refund")
        if result.refund_fen != refund.amount_fen:
            raise PayRejected("amount_mismatch")
        if order.pay_mch_id and result.mch_id and result.mch_id != order.pay_mch_id:
            raise PayRejected("mch_id_mismatch")
        return _apply(order, refund, result, now)


def _apply(order: Order, refund: Refund, result: RefundResult, now: datetime) -> RefundOutcome:
    if refund.status in ("succeeded", "closed", "failed", "rejected"):
        return RefundOutcome("duplicate", refund)  # final: WeChat's retries change nothing
    refund.refund_id = result.refund_id or refund.refund_id
    if result.status == "ABNORMAL":
        refund.status = "abnormal"
        return RefundOutcome("abnormal", refund)
    if result.status == "CLOSED":
        refund.status, refund.finished_at = "closed", now
        order.status = order.status_before_refund
        return RefundOutcome("closed", refund)
    if result.status != "SUCCESS":
        return RefundOutcome("processing", refund)
    refund.status, refund.finished_at = "succeeded", now
    before = refunded_goods_fen(refunded_fen=order.refunded_fen,
                                goods_paid_fen=order.goods_paid_fen)
    order.refunded_fen += refund.amount_fen
    after = refunded_goods_fen(refunded_fen=order.refunded_fen,
                               goods_paid_fen=order.goods_paid_fen)
    orders.transition(order, "refund_in_full" if order.refunded_fen == order.paid_fen
                      else "refund_in_part")
    earlier = {c.id: c.reversed_fen for c in commissions.commissions_of(order)}
    commissions.reverse_for_refund(order, refund_key=f"refund:{refund.out_refund_no}",
                                   refunded_goods_before_fen=before,
                                   refunded_goods_after_fen=after)
    if after > before:
        tree.queue_sales(orders.member_of(order), sales_fen=-(after - before))
    reversed_by_member: dict[int, int] = {}
    for commission in commissions.commissions_of(order):
        taken = commission.reversed_fen - earlier[commission.id]
        reversed_by_member[commission.member_id] = (
            reversed_by_member.get(commission.member_id, 0) + taken)
    events.refund_succeeded(order, refund_fen=refund.amount_fen, goods_fen=after - before,
                            reversed_by_member=reversed_by_member, at=now)
    return RefundOutcome("succeeded", refund, set(reversed_by_member))


def sync_open_refunds(config: PayConfig, *, now: datetime, limit: int = 200) -> dict:
    """The job: refunds still open some minutes after submission are asked about (a lost
    notification, or an answer lost on the way back) and WeChat's answer is applied."""
    rows = db.session.execute(select(Refund.merchant_id, Refund.out_refund_no).where(
        Refund.status.in_(("processing", "abnormal")), Refund.submitted_at <= now - SYNC_AFTER)
        .order_by(Refund.submitted_at).limit(limit)).all()
    db.session.rollback()
    finished = 0
    for merchant_id, out_refund_no in rows:
        try:
            result = config.gateway(merchant_id).query_refund(out_refund_no)
        except (PayUnavailable, Conflict):
            continue
        if result is None:  # our request never reached WeChat: send the same one again
            _submit(get_refund(merchant_id=merchant_id, refund_id=_id_of(merchant_id,
                                                                           out_refund_no)),
                    config, now=now)
            continue
        try:
            outcome = apply_refund_result(merchant_id=merchant_id, result=result, now=now)
        except PayRejected as exc:
            log.warning("queried refund rejected", extra={"merchant_id": merchant_id,
                                                          "reason": exc.reason})
            continue
        finished += outcome.result in ("succeeded", "closed")
    return {"finished": finished}


def _id_of(merchant_id: int, out_refund_no: str) -> int:
    return db.session.scalar(select(Refund.id).where(Refund.merchant_id == merchant_id,
                                                     Refund.out_refund_no == out_refund_no))


def refunds_of_order(*, merchant_id: int, order_id: int) -> list[Refund]:
    return list(db.session.scalars(select(Refund).where(
        Refund.merchant_id == merchant_id, Refund.order_id == order_id).order_by(Refund.id)))


def list_refunds(*, merchant_id: int, status: str | None, page: int, per_page: int
                 ) -> tuple[list[Refund], int]:
    from sqlalchemy import func

    query = select(Refund).where(Refund.merchant_id == merchant_id)
    if status:
        query = query.where(Refund.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    return list(db.session.scalars(query.order_by(Refund.id.desc()).limit(per_page)
                                   .offset((page - 1) * per_page))), total


def get_refund(*, merchant_id: int, refund_id: int) -> Refund:
    refund = db.session.get(Refund, (merchant_id, refund_id))
    if refund is None:
        raise NotFound("No such refund.", code="refund_not_found")
    return refund
