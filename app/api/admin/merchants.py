"""The platform administrator's area: sign-in and supplier approvals."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app import clients
from app.api.console.auth import StaffLoginIn
from app.api.pagination import PageArgs, page_body, page_of
from app.extensions import limiter
from app.models.merchant import MERCHANT_STATUSES
from app.security import admin_login_required, issue_token
from app.services import merchants as merchant_service
from app.services import staff as staff_service

blp = Blueprint("admin", __name__, url_prefix="/api/admin/v1", description="Platform admin")
BEARER = [{"bearerAuth": []}]


class AdminLoginOut(Schema):
    token = fields.String()
    expires_in = fields.Integer()


class MerchantListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(MERCHANT_STATUSES))


class MerchantOut(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String()
    contact_name = fields.String()
    contact_phone_masked = fields.String()
    platform_agreement_version = fields.String()
    platform_agreement_accepted_at = fields.DateTime(allow_none=True)
    review_reason = fields.String()
    reviewed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class ReviewIn(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


@blp.route("/auth/login", methods=["POST"])
@limiter.limit(lambda: clients.settings().login_rate_limit_ip)
@blp.arguments(StaffLoginIn)
@blp.response(200, AdminLoginOut)
def login(body):
    settings = clients.settings()
    admin = staff_service.admin_sign_in(username=body["username"], password=body["password"])
    token, _ = issue_token(secret_key=settings.secret_key, audience="admin", subject=admin.id,
                           ttl_seconds=settings.console_token_ttl_seconds)
    return {"token": token, "expires_in": settings.console_token_ttl_seconds}


@blp.route("/merchants", methods=["GET"])
@admin_login_required
@blp.arguments(MerchantListArgs, location="query")
@blp.response(200, page_of(MerchantOut))
@blp.doc(security=BEARER)
def list_merchants(args):
    items, total = merchant_service.list_merchants(status=args.get("status"), page=args["page"],
                                                   per_page=args["per_page"])
    return page_body(items, total, args)


@blp.route("/merchants/<int:merchant_id>/approve", methods=["POST"])
@admin_login_required
@blp.arguments(ReviewIn)
@blp.response(200, MerchantOut)
@blp.doc(security=BEARER)
def approve_merchant(body, merchant_id):
    return merchant_service.review_application(merchant_id=merchant_id, admin_id=g.admin.id,
                                               approve=True, reason=body["reason"])


@blp.route("/merchants/<int:merchant_id>/reject", methods=["POST"])
@admin_login_required
@blp.arguments(ReviewIn)
@blp.response(200, MerchantOut)
@blp.doc(security=BEARER)
def reject_merchant(body, merchant_id):
    return merchant_service.review_application(merchant_id=merchant_id, admin_id=g.admin.id,
                                               approve=False, reason=body["reason"])
