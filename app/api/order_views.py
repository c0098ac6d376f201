"""Order and refund schemas shared by the mini-program and the console."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.api.json_fields import ID, Int


class AddressIn(Schema):
    receiver = fields.String(required=True, validate=validate.Length(min=1, max=32))
    phone = fields.String(required=True, validate=validate.Regexp(r"^[0-9+\- ]{5,20}$"))
    province = fields.String(required=True, validate=validate.Length(min=1, max=32))
    city = fields.String(required=True, validate=validate.Length(min=1, max=32))
    district = fields.String(load_default="", validate=validate.Length(max=32))
    detail = fields.String(required=True, validate=validate.Length(min=1, max=200))


class AddressOut(Schema):
    receiver = fields.String()
    phone = fields.String()
    province = fields.String()
    city = fields.String()
    district = fields.String()
    detail = fields.String()


class OrderItemIn(Schema):
    product_id = Int(required=True, validate=ID)
    quantity = Int(required=True, validate=validate.Range(min=1, max=999))


class OrderLineOut(Schema):
    line_no = fields.Integer()
    product_id = fields.Integer(allow_none=True)
    title = fields.String()
    unit_price_fen = fields.Integer()
    quantity = fields.Integer()


class OrderOut(Schema):
    id = fields.Integer()
    merchant_id = fields.Integer()
    out_trade_no = fields.String()
    status = fields.String()
    goods_fen = fields.Integer()
    discount_fen = fields.Integer()
    shipping_fen = fields.Integer()
    paid_fen = fields.Integer()
    refunded_fen = fields.Integer()
    address = fields.Nested(AddressOut)
    carrier = fields.String()
    tracking_no = fields.String()
    created_at = fields.DateTime()
    paid_at = fields.DateTime(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(OrderLineOut))


class PaymentOut(Schema):
    """Exactly what ``wx.requestPayment`` takes."""

    timeStamp = fields.String()  # noqa: N815 - WeChat's spelling
    nonceStr = fields.String()  # noqa: N815
    package = fields.String()
    signType = fields.String()  # noqa: N815
    paySign = fields.String()  # noqa: N815


class BuyerOrderOut(OrderOut):
    payment = fields.Nested(PaymentOut, allow_none=True)


class RefundIn(Schema):
    amount_fen = Int(validate=validate.Range(min=1))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class RefundOut(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    out_refund_no = fields.String()
    amount_fen = fields.Integer()
    reason = fields.String()
    source = fields.String()
    status = fields.String()
    review_reason = fields.String()
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


def order_body(order, lines, payment: dict | None = None) -> dict:
    body = {name: getattr(order, name) for name in OrderOut._declared_fields
            if name not in ("lines",)}
    body["lines"] = lines
    if payment is not None:
        body["payment"] = payment
    return body
