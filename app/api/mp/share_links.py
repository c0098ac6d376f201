"""A distributor's share links, and their images (public: they are made to be passed on)."""

from __future__ import annotations

from pathlib import Path

from flask import Response, current_app, g, request, url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields, post_dump, validate

from app import clients
from app.api.json_fields import ID, Int
from app.security import mp_login_required
from app.services import share_links

blp = Blueprint("mp_share_links", __name__, url_prefix="/api/mp/v1",
                description="Share links, mini-program codes and posters")
BEARER = [{"bearerAuth": []}]
# A code never changes for its token; a poster may be re-rendered when its cache is cleared.
WXACODE_CACHE = "public, max-age=31536000, immutable"
POSTER_CACHE = "public, max-age=86400"

PAGE_PATH = validate.Regexp(
    r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$",
    error="A mini-program page path such as pages/index/index: no leading slash, no query.")


class ShareLinkIn(Schema):
    product_id = Int(validate=ID)
    page = fields.String(validate=[validate.Length(max=128), PAGE_PATH])


class ShareLinkOut(Schema):
    token = fields.String()
    scene = fields.String()
    page = fields.String()
    product_id = fields.Integer(allow_none=True)
    h5_url = fields.String()
    wxacode_url = fields.String()
    poster_url = fields.String()
    url_link = fields.String()

    @post_dump
    def _omit_missing_url_link(self, data, **kwargs):
        if data.get("url_link") is None:
            data.pop("url_link", None)
        return data


@blp.route("/merchants/<int:merchant_id>/share-links", methods=["POST"])
@mp_login_required
@blp.arguments(ShareLinkIn)
@blp.response(201, ShareLinkOut)
@blp.doc(security=BEARER)
def create_share_link(body, merchant_id):
    """My link for a product or page (the same one on every request), with its H5 landing
    URL, code and poster URLs, and a URL Link when WeChat made one. 403 not_a_distributor."""
    link = share_links.create_link(merchant_id=merchant_id, user_id=g.user_id,
                                   product_id=body.get("product_id"), page=body.get("page"),
                                   wechat=clients.mini_program())
    base = clients.settings().public_base_url
    path = {"merchant_id": link.merchant_id, "token": link.token}
    return {"token": link.token, "scene": link.token, "page": link.page,
            "product_id": link.product_id, "url_link": link.url_link,
            "h5_url": base + url_for("share_landing.landing", token=link.token),
            "wxacode_url": base + url_for("mp_share_links.wxacode", **path),
            "poster_url": base + url_for("mp_share_links.poster", **path)}


@blp.route("/merchants/<int:merchant_id>/share-links/<token>/wxacode.png", methods=["GET"])
@blp.response(200, description="The mini-program code", content_type="image/png")
@blp.alt_response(502, description="WeChat could not make the code (upstream_error)")
def wxacode(merchant_id, token):
    """The link's mini-program code (made by WeChat once, then cached)."""
    png = share_links.wxacode_png(merchant_id=merchant_id, token=token,
                                  wechat=clients.mini_program())
    return _png(png, cache_control=WXACODE_CACHE)


@blp.route("/merchants/<int:merchant_id>/share-links/<token>/poster.png", methods=["GET"])
@blp.response(200, description="The share poster (750 × 1334)", content_type="image/png")
@blp.alt_response(502, description="WeChat could not make the code (upstream_error)")
def poster(merchant_id, token):
    """The link's poster: product, price, distributor's name and code (rendered once)."""
    png = share_links.poster_png(
        merchant_id=merchant_id, token=token, wechat=clients.mini_program(),
        public_base_url=clients.settings().public_base_url,
        static_dir=_static_dir())
    return _png(png, cache_control=POSTER_CACHE)


def _png(png: bytes, *, cache_control: str) -> Response:
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = cache_control
    response.add_etag()
    return response.make_conditional(request)


def _static_dir() -> Path | None:
    folder = current_app.static_folder
    return Path(folder) if folder else None
