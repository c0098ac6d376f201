"""My orders in one merchant's shop: create (with the ``wx.requestPayment`` object), pay again,
read, confirm receipt, ask for a refund."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.idempotency_header import PARAMETER as IDEMPOTENCY_HEADER
from app.api.idempotency_header import idempotency_key
from app.api.order_views import (
    AddressIn,
    BuyerOrderOut,
    OrderItemIn,
    RefundIn,
    RefundOut,
    order_body,
)
from app.api.pagination import PageArgs, page_body, page_of
from app.clients import pay_config
from app.database import utcnow
from app.security import mp_login_required
from app.services import merchants as merchant_service
from app.services import orders as order_service
from app.services import payments as payment_service
from app.services import refunds as refund_service

blp = Blueprint("mp_orders", __name__, url_prefix="/api/mp/v1/merchants",
                description="Orders")
BEARER = [{"bearerAuth": []}]


class OrderIn(Schema):
    items = fields.List(fields.Nested(OrderItemIn), required=True,
                        validate=validate.Length(min=1, max=order_service.MAX_LINES))
    address = fields.Nested(AddressIn, required=True)
    share_token = fields.String(validate=validate.Length(max=32))


class OrderListArgs(PageArgs):
    status = fields.String(validate=validate.Length(max=20))


def _with_payment(order) -> dict:
    """The order, and while it is unpaid the object for ``wx.requestPayment``."""
    payment = None
    if order.status == "created":
        payment = payment_service.payment_params(order, pay_config(), now=utcnow())
    return order_body(order, order_service.lines_of(order), payment)


@blp.route("/<int:merchant_id>/orders", methods=["POST"])
@mp_login_required
@blp.arguments(OrderIn)
@blp.response(201, BuyerOrderOut)
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
def create_order(body, merchant_id):
    """Reserve stock, take the commission snapshot, and offer the order to WeChat Pay: the
    ``payment`` object goes to ``wx.requestPayment`` as it is."""
    order = order_service.create_order(
        merchant_id=merchant_id, user_id=g.user_id, items=body["items"],
        address=body["address"], share_token=body.get("share_token"),
        idempotency_key=idempotency_key(), now=utcnow())
    return _with_payment(order)


@blp.route("/<int:merchant_id>/orders/<int:order_id>/payment", methods=["POST"])
@mp_login_required
@blp.response(200, BuyerOrderOut)
@blp.doc(security=BEARER)
def pay_again(merchant_id, order_id):
    """A fresh ``wx.requestPayment`` object for an unpaid order (same prepay_id)."""
    order = order_service.buyer_order(merchant_id=merchant_id, user_id=g.user_id,
                                      order_id=order_id)
    payment = payment_service.payment_params(order, pay_config(), now=utcnow())
    return order_body(order, order_service.lines_of(order), payment)


@blp.route("/<int:merchant_id>/orders", methods=["GET"])
@mp_login_required
@blp.arguments(OrderListArgs, location="query")
@blp.response(200, page_of(BuyerOrderOut))
@blp.doc(security=BEARER)
def list_my_orders(args, merchant_id):
    merchant_service.get_approved_merchant(merchant_id)
    items, total = order_service.list_orders(merchant_id=merchant_id, user_id=g.user_id,
                                             status=args.get("status"), page=args["page"],
                                             per_page=args["per_page"])
    return page_body([order_body(o, order_service.lines_of(o)) for o in items], total, args)


@blp.route("/<int:merchant_id>/orders/<int:order_id>", methods=["GET"])
@mp_login_required
@blp.response(200, BuyerOrderOut)
@blp.doc(security=BEARER)
def get_my_order(merchant_id, order_id):
    order = order_service.buyer_order(merchant_id=merchant_id, user_id=g.user_id,
                                      order_id=order_id)
    return order_body(order, order_service.lines_of(order))


@blp.route("/<int:merchant_id>/orders/<int:order_id>/receipt", methods=["POST"])
@mp_login_required
@blp.response(200, BuyerOrderOut)
@blp.doc(security=BEARER)
def confirm_receipt(merchant_id, order_id):
    """The buyer has the goods: commission settles ``freeze_days`` from now."""
    order = order_service.receive(merchant_id=merchant_id, user_id=g.user_id,
                                  order_id=order_id, now=utcnow())
    return order_body(order, order_service.lines_of(order))


@blp.route("/<int:merchant_id>/orders/<int:order_id>/refund-requests", methods=["POST"])
@mp_login_required
@blp.arguments(RefundIn)
@blp.response(201, RefundOut)
@blp.doc(security=BEARER)
def request_refund(body, merchant_id, order_id):
    """Ask for the whole order (no ``amount_fen``) or part of it back; the merchant decides."""
    return refund_service.request_refund(
        merchant_id=merchant_id, user_id=g.user_id, order_id=order_id,
        amount_fen=body.get("amount_fen"), reason=body["reason"], now=utcnow())
