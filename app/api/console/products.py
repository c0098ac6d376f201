"""The catalogue in the console, with commission overrides (owner and operator)."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import fields, validate

from app.api.pagination import PageArgs, page_body, page_of
from app.api.product_views import ProductIn, ProductPatch, StaffProductOut
from app.security import console_login_required
from app.services import products as product_service

blp = Blueprint("console_products", __name__, url_prefix="/api/console/v1",
                description="Products")
BEARER = [{"bearerAuth": []}]
CATALOGUE = ("owner", "operator")


class ProductListArgs(PageArgs):
    q = fields.String(validate=validate.Length(min=1, max=64))


@blp.route("/products", methods=["POST"])
@console_login_required(*CATALOGUE)
@blp.arguments(ProductIn)
@blp.response(201, StaffProductOut)
@blp.doc(security=BEARER)
def create_product(body):
    return product_service.create_product(merchant_id=g.merchant_id, fields=body)


@blp.route("/products", methods=["GET"])
@console_login_required()
@blp.arguments(ProductListArgs, location="query")
@blp.response(200, page_of(StaffProductOut))
@blp.doc(security=BEARER)
def list_products(args):
    items, total = product_service.list_products(merchant_id=g.merchant_id, q=args.get("q"),
                                                 page=args["page"], per_page=args["per_page"])
    return page_body(items, total, args)


@blp.route("/products/<int:product_id>", methods=["PATCH"])
@console_login_required(*CATALOGUE)
@blp.arguments(ProductPatch)
@blp.response(200, StaffProductOut)
@blp.doc(security=BEARER)
def update_product(changes, product_id):
    """Change some fields. Existing orders keep the price, title and override they had."""
    return product_service.update_product(merchant_id=g.merchant_id, product_id=product_id,
                                          changes=changes)
