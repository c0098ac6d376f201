"""My withdrawals in one merchant's program (Idempotency-Key on the request).

Requests are limited per member (``WITHDRAWAL_RATE_LIMIT_MEMBER``), checked after sign-in and
before anything is read or locked: each request takes the member's row lock.
"""

from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app import clients
from app.api.idempotency_header import PARAMETER as IDEMPOTENCY_HEADER
from app.api.idempotency_header import idempotency_key
from app.api.json_fields import Int
from app.api.pagination import PageArgs, page_body, page_of
from app.api.withdrawal_views import WithdrawalOut, withdrawal_body
from app.clients import pay_config, secret_box
from app.database import utcnow
from app.extensions import limiter, redis
from app.security import mp_login_required
from app.services import members as member_service
from app.services import wallets
from app.services import withdrawals as withdrawal_service

blp = Blueprint("mp_withdrawals", __name__, url_prefix="/api/mp/v1/merchants",
                description="Withdrawals")
BEARER = [{"bearerAuth": []}]


class WithdrawalIn(Schema):
    amount_fen = Int(required=True, validate=validate.Range(min=1))
    real_name = fields.String(validate=validate.Length(min=2, max=32),
                              metadata={"description": "required by WeChat from ¥2,000"})


def member_key() -> str:
    # The member is (merchant, user); the URL names the merchant, the token the user.
    return f"member:{request.view_args['merchant_id']}:{g.user_id}"


@blp.route("/<int:merchant_id>/withdrawals", methods=["POST"])
@mp_login_required
@limiter.limit(lambda: clients.settings().withdrawal_rate_limit_member, key_func=member_key)
@blp.arguments(WithdrawalIn)
@blp.response(201, WithdrawalOut)
@blp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
def request_withdrawal(body, merchant_id):
    """Move ``amount_fen`` (and the fee) from available to withdrawing. Below the merchant's
    auto-approval threshold the WeChat transfer starts at once: ``transfer.package`` goes to
    ``wx.requestMerchantTransfer``."""
    withdrawal = withdrawal_service.request_withdrawal(
        merchant_id=merchant_id, user_id=g.user_id, amount_fen=body["amount_fen"],
        real_name=body.get("real_name"), idempotency_key=idempotency_key(),
        box=secret_box(), now=utcnow())
    wallets.mirror_members(redis.client, merchant_id=merchant_id,
                           member_ids={withdrawal.member_id})
    if withdrawal.status == "approved":
        withdrawal = withdrawal_service.start_transfer(
            merchant_id=merchant_id, withdrawal_id=withdrawal.id, config=pay_config(),
            now=utcnow())
    return withdrawal_body(withdrawal)


@blp.route("/<int:merchant_id>/withdrawals", methods=["GET"])
@mp_login_required
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(WithdrawalOut))
@blp.doc(security=BEARER)
def my_withdrawals(args, merchant_id):
    member = member_service.my_membership(merchant_id=merchant_id, user_id=g.user_id)
    items, total = withdrawal_service.list_withdrawals(
        merchant_id=merchant_id, member_id=member.id, page=args["page"],
        per_page=args["per_page"])
    return page_body([withdrawal_body(w) for w in items], total, args)
