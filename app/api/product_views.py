"""How a product is shown, to staff and to buyers, and how staff send one in."""

from __future__ import annotations

import copy

from marshmallow import Schema, ValidationError, fields, missing, validate, validates

from app.api.json_fields import Int
from app.models.product import PRODUCT_STATUSES

MAX_PRICE_FEN = 10**10  # ¥100,000,000: beyond any real product, well inside BIGINT


class OverrideSchema(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(["rates", "fixed", "opt_out"]))
    values = fields.List(Int(validate=validate.Range(min=0)), load_default=list)


class ProductIn(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=128))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    image_urls = fields.List(fields.String(validate=validate.Length(min=1, max=300_000)),
                             load_default=list, validate=validate.Length(max=9))
    price_fen = Int(required=True, validate=validate.Range(min=1, max=MAX_PRICE_FEN))
    stock = Int(load_default=0, validate=validate.Range(min=0, max=10**9))
    status = fields.String(load_default="on_sale", validate=validate.OneOf(PRODUCT_STATUSES))
    is_distributable = fields.Boolean(load_default=True)
    commission_override = fields.Nested(OverrideSchema, allow_none=True, load_default=None)

    @validates("image_urls")
    def images_are_links(self, urls, **kwargs):
        for url in urls:
            if not url.startswith(("https://", "http://", "/static/", "data:image/")):
                raise ValidationError("Images are http(s), /static/ or data:image URLs.")


def _patch_of(schema: type[Schema], name: str) -> type[Schema]:
    """The same fields and checks, none required and no defaults: a PATCH names only what
    changes."""
    clones = {}
    for field_name, field in schema._declared_fields.items():
        clone = copy.deepcopy(field)
        clone.required, clone.load_default = False, missing
        clones[field_name] = clone
    return type(name, (schema,), clones)


ProductPatch = _patch_of(ProductIn, "ProductPatch")


class BuyerProductOut(Schema):
    id = Int()
    title = fields.String()
    description = fields.String()
    image_urls = fields.List(fields.String())
    price_fen = Int()
    stock = Int()
    is_distributable = fields.Boolean()


class StaffProductOut(BuyerProductOut):
    status = fields.String()
    commission_override = fields.Nested(OverrideSchema, allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
