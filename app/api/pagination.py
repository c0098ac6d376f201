"""The one list shape: ``?page=1&per_page=20`` (per_page capped at 100) →
``{"items": [...], "page", "per_page", "total"}`` (API.md, Conventions)."""

from __future__ import annotations

from functools import cache

from marshmallow import Schema, fields, validate

MAX_PER_PAGE = 100


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


@cache
def page_of(item_schema: type[Schema]) -> type[Schema]:
    """A response schema for a page of ``item_schema`` (one class per item schema, so the
    OpenAPI document names each once)."""
    return type(f"{item_schema.__name__.removesuffix('Out')}Page", (Schema,), {
        "items": fields.List(fields.Nested(item_schema)),
        "page": fields.Integer(),
        "per_page": fields.Integer(),
        "total": fields.Integer(),
    })


def page_body(items, total: int, args: dict) -> dict:
    return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}
