"""The withdrawal review queue and payouts (finance and owner)."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.pagination import PageArgs, page_body, page_of
from app.api.withdrawal_views import WithdrawalOut, withdrawal_body
from app.clients import pay_config
from app.database import utcnow
from app.extensions import redis
from app.models.withdrawal import WITHDRAWAL_STATUSES
from app.security import console_login_required
from app.services import wallets
from app.services import withdrawals as withdrawal_service

blp = Blueprint("console_withdrawals", __name__, url_prefix="/api/console/v1",
                description="Withdrawals and payouts")
BEARER = [{"bearerAuth": []}]
MONEY = ("owner", "finance")


class WithdrawalListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(WITHDRAWAL_STATUSES))


class RejectIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class MarkPaidIn(Schema):
    reference = fields.String(required=True, validate=validate.Length(min=1, max=64))


@blp.route("/withdrawals", methods=["GET"])
@console_login_required(*MONEY)
@blp.arguments(WithdrawalListArgs, location="query")
@blp.response(200, page_of(WithdrawalOut))
@blp.doc(security=BEARER)
def list_withdrawals(args):
    items, total = withdrawal_service.list_withdrawals(
        merchant_id=g.merchant_id, status=args.get("status"), page=args["page"],
        per_page=args["per_page"])
    return page_body([withdrawal_body(w) for w in items], total, args)


@blp.route("/withdrawals/<int:withdrawal_id>/approve", methods=["POST"])
@console_login_required(*MONEY)
@blp.response(200, WithdrawalOut)
@blp.doc(security=BEARER)
def approve(withdrawal_id):
    """Approve: the WeChat merchant transfer is created at once (v3 merchants)."""
    withdrawal_service.approve(merchant_id=g.merchant_id, withdrawal_id=withdrawal_id,
                               staff_id=g.staff.id, now=utcnow())
    return withdrawal_body(withdrawal_service.start_transfer(
        merchant_id=g.merchant_id, withdrawal_id=withdrawal_id, config=pay_config(),
        now=utcnow()))


@blp.route("/withdrawals/<int:withdrawal_id>/reject", methods=["POST"])
@console_login_required(*MONEY)
@blp.arguments(RejectIn)
@blp.response(200, WithdrawalOut)
@blp.doc(security=BEARER)
def reject(body, withdrawal_id):
    """Reject with a reason: the money returns to the distributor's available balance."""
    outcome = withdrawal_service.reject(merchant_id=g.merchant_id, withdrawal_id=withdrawal_id,
                                        staff_id=g.staff.id, reason=body["reason"],
                                        now=utcnow())
    wallets.mirror_members(redis.client, merchant_id=g.merchant_id,
                           member_ids=outcome.member_ids)
    return withdrawal_body(outcome.withdrawal)


@blp.route("/withdrawals/<int:withdrawal_id>/mark-paid", methods=["POST"])
@console_login_required(*MONEY)
@blp.arguments(MarkPaidIn)
@blp.response(200, WithdrawalOut)
@blp.doc(security=BEARER)
def mark_paid(body, withdrawal_id):
    """Paid outside WeChat (a bank transfer): recorded with its reference."""
    outcome = withdrawal_service.mark_paid_offline(
        merchant_id=g.merchant_id, withdrawal_id=withdrawal_id, staff_id=g.staff.id,
        reference=body["reference"], now=utcnow())
    wallets.mirror_members(redis.client, merchant_id=g.merchant_id,
                           member_ids=outcome.member_ids)
    return withdrawal_body(outcome.withdrawal)
