"""Orders in the console: the list, shipment entry, refunds (start, review)."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.order_views import OrderOut, RefundIn, RefundOut, order_body
from app.api.pagination import PageArgs, page_body, page_of
from app.clients import pay_config
from app.database import utcnow
from app.models.order import ORDER_STATUSES
from app.models.payment import REFUND_STATUSES
from app.security import console_login_required
from app.services import orders as order_service
from app.services import refunds as refund_service

blp = Blueprint("console_orders", __name__, url_prefix="/api/console/v1",
                description="Orders and refunds")
BEARER = [{"bearerAuth": []}]
FULFILMENT = ("owner", "operator")
# Refunds give money back: the owner and finance decide them; operators ship.
MONEY = ("owner", "finance")


class OrderListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))


class ShipmentIn(Schema):
    carrier = fields.String(required=True, validate=validate.Length(min=1, max=32))
    tracking_no = fields.String(required=True, validate=validate.Length(min=1, max=64))


class RefundListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(REFUND_STATUSES))


class RefundReviewIn(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=200))


@blp.route("/orders", methods=["GET"])
@console_login_required()
@blp.arguments(OrderListArgs, location="query")
@blp.response(200, page_of(OrderOut))
@blp.doc(security=BEARER)
def list_orders(args):
    items, total = order_service.list_orders(merchant_id=g.merchant_id,
                                             status=args.get("status"), page=args["page"],
                                             per_page=args["per_page"])
    return page_body([order_body(o, order_service.lines_of(o)) for o in items], total, args)


@blp.route("/orders/<int:order_id>/shipment", methods=["POST"])
@console_login_required(*FULFILMENT)
@blp.arguments(ShipmentIn)
@blp.response(200, OrderOut)
@blp.doc(security=BEARER)
def ship(body, order_id):
    """Enter the carrier and tracking number; automatic receipt counts from now."""
    order = order_service.ship(merchant_id=g.merchant_id, order_id=order_id,
                               carrier=body["carrier"], tracking_no=body["tracking_no"],
                               now=utcnow())
    return order_body(order, order_service.lines_of(order))


@blp.route("/orders/<int:order_id>/refunds", methods=["POST"])
@console_login_required(*MONEY)
@blp.arguments(RefundIn)
@blp.response(201, RefundOut)
@blp.doc(security=BEARER)
def start_refund(body, order_id):
    """Refund the whole order (no ``amount_fen``) or part of it, through WeChat Pay."""
    return refund_service.start_refund(
        merchant_id=g.merchant_id, order_id=order_id, amount_fen=body.get("amount_fen"),
        reason=body["reason"], staff_id=g.staff.id, config=pay_config(), now=utcnow())


@blp.route("/refunds", methods=["GET"])
@console_login_required()
@blp.arguments(RefundListArgs, location="query")
@blp.response(200, page_of(RefundOut))
@blp.doc(security=BEARER)
def list_refunds(args):
    items, total = refund_service.list_refunds(merchant_id=g.merchant_id,
                                               status=args.get("status"), page=args["page"],
                                               per_page=args["per_page"])
    return page_body(items, total, args)


@blp.route("/refunds/<int:refund_id>/approve", methods=["POST"])
@console_login_required(*MONEY)
@blp.arguments(RefundReviewIn)
@blp.response(200, RefundOut)
@blp.doc(security=BEARER)
def approve_refund(body, refund_id):
    """Approve a buyer's request: the refund goes to WeChat Pay at once."""
    return refund_service.review(merchant_id=g.merchant_id, refund_id=refund_id, approve=True,
                                 reason=body["reason"], staff_id=g.staff.id,
                                 config=pay_config(), now=utcnow())


@blp.route("/refunds/<int:refund_id>/reject", methods=["POST"])
@console_login_required(*MONEY)
@blp.arguments(RefundReviewIn)
@blp.response(200, RefundOut)
@blp.doc(security=BEARER)
def reject_refund(body, refund_id):
    """Reject a buyer's request, saying why (shown to the buyer)."""
    return refund_service.review(merchant_id=g.merchant_id, refund_id=refund_id,
                                 approve=False, reason=body["reason"], staff_id=g.staff.id,
                                 config=pay_config(), now=utcnow())
