"""My wallet and my commission records in one merchant's program."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.api.pagination import PageArgs, page_body, page_of
from app.extensions import redis
from app.security import mp_login_required
from app.services import commissions as commission_service
from app.services import members as member_service
from app.services import merchants as merchant_service
from app.services import wallets as wallet_service

blp = Blueprint("mp_wallet", __name__, url_prefix="/api/mp/v1/merchants",
                description="Wallet and commissions")
BEARER = [{"bearerAuth": []}]


class WalletOut(Schema):
    pending_fen = fields.Integer()
    available_fen = fields.Integer(metadata={"description": "negative: a debt"})
    withdrawing_fen = fields.Integer()
    paid_out_fen = fields.Integer()


class CommissionOut(Schema):
    id = fields.Integer()
    order_id = fields.Integer()
    out_trade_no = fields.String()
    line_no = fields.Integer()
    tier = fields.Integer()
    base_fen = fields.Integer()
    rate_bps = fields.Integer()
    fixed_fen_per_unit = fields.Integer()
    amount_fen = fields.Integer()
    reversed_fen = fields.Integer()
    status = fields.String()
    settle_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


def _me(merchant_id: int):
    merchant_service.get_approved_merchant(merchant_id)
    return member_service.my_membership(merchant_id=merchant_id, user_id=g.user_id)


@blp.route("/<int:merchant_id>/wallet", methods=["GET"])
@mp_login_required
@blp.response(200, WalletOut)
@blp.doc(security=BEARER)
def my_wallet(merchant_id):
    """Balances from the Redis mirror, or from SQL (the truth) when Redis cannot answer."""
    member = _me(merchant_id)
    balances = wallet_service.read_wallet(redis.client, merchant_id=merchant_id,
                                          member_id=member.id)
    return {f"{kind}_fen": amount for kind, amount in balances.items()}


@blp.route("/<int:merchant_id>/commissions", methods=["GET"])
@mp_login_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(CommissionOut))
@blp.doc(security=BEARER)
def my_commissions(args, merchant_id):
    member = _me(merchant_id)
    rows, total = commission_service.member_commissions(
        merchant_id=merchant_id, member_id=member.id, page=args["page"],
        per_page=args["per_page"])
    items = [{**{c.name: getattr(commission, c.name) for c in commission.__table__.columns},
              "out_trade_no": out_trade_no} for commission, out_trade_no in rows]
    return page_body(items, total, args)
