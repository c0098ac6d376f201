"""The merchant's staff accounts (owner only), and supplier applications (public)."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app import clients
from app.api.pagination import PageArgs, page_body, page_of
from app.extensions import limiter
from app.models.merchant import STAFF_ROLES
from app.security import console_login_required
from app.services import merchants as merchant_service
from app.services import staff as staff_service

blp = Blueprint("console_staff", __name__, url_prefix="/api/console/v1",
                description="Staff and supplier applications")
BEARER = [{"bearerAuth": []}]
USERNAME = validate.Regexp(r"^[A-Za-z0-9_.@-]{3,64}$",
                           error="3-64 letters, digits or _ . @ -")
PASSWORD = validate.Length(min=8, max=256)


class StaffIn(Schema):
    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, load_only=True, validate=PASSWORD)
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    display_name = fields.String(load_default="", validate=validate.Length(max=64))


class StaffOut(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()
    display_name = fields.String()
    is_active = fields.Boolean()
    created_at = fields.DateTime()
    last_login_at = fields.DateTime(allow_none=True)


class ApplicationIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    contact_name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    contact_phone = fields.String(required=True, validate=validate.Regexp(r"^\+?\d{6,20}$"))
    owner_username = fields.String(required=True, validate=USERNAME)
    owner_password = fields.String(required=True, load_only=True, validate=PASSWORD)
    agreement_version = fields.String(required=True, validate=validate.Length(max=32))


class ApplicationOut(Schema):
    merchant_id = fields.Integer(attribute="id")
    name = fields.String()
    status = fields.String()
    platform_agreement_version = fields.String()
    platform_agreement_accepted_at = fields.DateTime()


@blp.route("/staff", methods=["GET"])
@console_login_required("owner")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(StaffOut))
@blp.doc(security=BEARER)
def list_staff(args):
    items, total = staff_service.list_staff(merchant_id=g.merchant_id, page=args["page"],
                                            per_page=args["per_page"])
    return page_body(items, total, args)


@blp.route("/staff", methods=["POST"])
@console_login_required("owner")
@blp.arguments(StaffIn)
@blp.response(201, StaffOut)
@blp.doc(security=BEARER)
def add_staff(body):
    return staff_service.add_staff(merchant_id=g.merchant_id, **body)


@blp.route("/merchant-applications", methods=["POST"])
@limiter.limit(lambda: clients.settings().login_rate_limit_ip)
@blp.arguments(ApplicationIn)
@blp.response(201, ApplicationOut)
def apply_as_supplier(body):
    """A supplier applies to sell on the platform, accepting the platform agreement; the owner
    account signs in once a platform administrator approves."""
    return merchant_service.apply_as_supplier(box=clients.secret_box(), **body)
