"""The catalogue: products with their commission overrides."""

from __future__ import annotations

from sqlalchemy import delete, func, select

from app.database import transaction
from app.domain.commission import ProductCommission, validate_override
from app.errors import InvalidInput, NotFound
from app.extensions import db
from app.models import Merchant, Product, ShareLink, ShareLinkImage
from app.services.merchants import program_rules
from app.services.scoping import get_scoped

EDITABLE = ("title", "description", "image_urls", "price_fen", "stock", "status",
            "is_distributable", "commission_override")


def _check_override(merchant_id: int, override: dict | None) -> None:
    if override is None:
        return
    rules = program_rules(db.session.get(Merchant, merchant_id))
    problems = validate_override(
        ProductCommission(override.get("mode", ""), tuple(override.get("values", ()))),
        tiers=rules.tiers, max_total_bps=rules.max_total_bps)
    if problems:
        raise InvalidInput(errors={"commission_override": problems})


def create_product(*, merchant_id: int, fields: dict) -> Product:
    _check_override(merchant_id, fields.get("commission_override"))
    with transaction(db.session):
        product = Product(merchant_id=merchant_id, **fields)
        db.session.add(product)
    return product


def update_product(*, merchant_id: int, product_id: int, changes: dict) -> Product:
    """Change some fields; posters showing the product are redrawn on their next request.
    Orders already created keep their own copy of price, title and override."""
    if "commission_override" in changes:
        _check_override(merchant_id, changes["commission_override"])
    with transaction(db.session):
        product = get_scoped(Product, merchant_id=merchant_id, id=product_id, what="product",
                             for_update=True)
        for name in EDITABLE:
            if name in changes:
                setattr(product, name, changes[name])
        links = select(ShareLink.id).where(ShareLink.merchant_id == merchant_id,
                                           ShareLink.product_id == product_id)
        db.session.execute(delete(ShareLinkImage).where(
            ShareLinkImage.merchant_id == merchant_id, ShareLinkImage.kind == "poster",
            ShareLinkImage.share_link_id.in_(links)))
    return product


def list_products(*, merchant_id: int, page: int, per_page: int, on_sale_only: bool = False,
                  q: str | None = None) -> tuple[list[Product], int]:
    query = select(Product).where(Product.merchant_id == merchant_id)
    if on_sale_only:
        query = query.where(Product.status == "on_sale")
    if q:
        query = query.where(Product.title.contains(q, autoescape=True))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(Product.id.desc()).limit(per_page)
                               .offset((page - 1) * per_page)).all()
    return list(items), total


def product_for_buyers(*, merchant_id: int, product_id: int) -> Product:
    """A product buyers may see: on sale, of an approved merchant; others are not found."""
    product = get_scoped(Product, merchant_id=merchant_id, id=product_id, what="product")
    if product.status != "on_sale":
        raise NotFound("No such product.", code="product_not_found")
    return product
