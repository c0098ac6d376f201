"""A merchant's catalogue as buyers see it (on sale only)."""

from __future__ import annotations

from flask_smorest import Blueprint

from app.api.pagination import PageArgs, page_body, page_of
from app.api.product_views import BuyerProductOut
from app.services import merchants as merchant_service
from app.services import products as product_service

blp = Blueprint("mp_catalogue", __name__, url_prefix="/api/mp/v1/merchants",
                description="Catalogue")


@blp.route("/<int:merchant_id>/products", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(BuyerProductOut))
def list_products(args, merchant_id):
    merchant_service.get_approved_merchant(merchant_id)
    items, total = product_service.list_products(merchant_id=merchant_id, on_sale_only=True,
                                                 page=args["page"], per_page=args["per_page"])
    return page_body(items, total, args)


@blp.route("/<int:merchant_id>/products/<int:product_id>", methods=["GET"])
@blp.response(200, BuyerProductOut)
def get_product(merchant_id, product_id):
    merchant_service.get_approved_merchant(merchant_id)
    return product_service.product_for_buyers(merchant_id=merchant_id, product_id=product_id)
