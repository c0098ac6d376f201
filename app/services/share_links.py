"""Share links: a distributor's trackable invitations, their images, and the H5 landing page.

A link is reused for the same (distributor, product, page), so asking twice shares one token
and one set of counters. Its wxacode and poster are made once and kept in the database
(``share_link_images``): WeChat is asked for a link's code once, whichever host serves it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import redis as redis_lib
from sqlalchemy import select

from app.database import transaction, utcnow
from app.domain.share_token import new_token
from app.errors import Forbidden, NotFound, UpstreamError
from app.extensions import db
from app.integrations import poster
from app.integrations.wechat_miniprogram import MiniProgram, WeChatError
from app.models import Member, Merchant, Product, ShareLink, ShareLinkImage, User
from app.services import attribution, events
from app.services.attribution import VisitContext
from app.services.merchants import get_approved_merchant

log = logging.getLogger("fenxiao.share_links")

DEFAULT_PAGE = "pages/index/index"
PRODUCT_PAGE = "pages/product/detail"
URL_LINK_DAYS = 30  # WeChat's maximum
# A URL Link handed out must survive at least a day of being passed around.
URL_LINK_RENEW_BEFORE = timedelta(days=1)
DEFAULT_DISTRIBUTOR_NAME = "分销员"


@dataclass(frozen=True)
class SharedLink:
    merchant_id: int
    token: str
    page: str
    product_id: int | None
    url_link: str | None  # None when WeChat could not make one


@dataclass(frozen=True)
class LandingPage:
    merchant_id: int
    token: str
    merchant_name: str
    distributor_name: str
    url_link: str | None
    product_title: str | None = None
    price_text: str | None = None
    product_image_url: str | None = None
    product_on_sale: bool = False


def create_link(*, merchant_id: int, user_id: int, product_id: int | None, page: str | None,
                wechat: MiniProgram) -> SharedLink:
    """The user's link for (product, page) in this merchant's program, made on first request.

    Only an active distributor may share. Concurrent requests by one distributor are
    serialized by a row lock on their membership, so they end with one link. The URL Link is
    asked of WeChat after that transaction (no lock waits on WeChat) and is best effort: on a
    WeChat failure the link is returned without one, and the next request tries again.
    """
    page = page or (PRODUCT_PAGE if product_id is not None else DEFAULT_PAGE)
    with transaction(db.session):
        link = _find_or_make(merchant_id=merchant_id, user_id=user_id, product_id=product_id,
                             page=page)
    if not _url_link_current(link):
        _renew_url_link(link, wechat)
    return SharedLink(merchant_id=link.merchant_id, token=link.token, page=link.page,
                      product_id=link.product_id,
                      url_link=link.url_link if _url_link_current(link) else None)


def _find_or_make(*, merchant_id: int, user_id: int, product_id: int | None,
                  page: str) -> ShareLink:
    get_approved_merchant(merchant_id)
    distributor = db.session.scalars(select(Member).where(
        Member.merchant_id == merchant_id, Member.user_id == user_id).with_for_update()
    ).one_or_none()
    if distributor is None or not distributor.is_active_distributor:
        raise Forbidden("Only active distributors of this merchant may share.",
                        code="not_a_distributor")
    if product_id is not None:
        _shareable_product(merchant_id, product_id)
    link = db.session.scalars(select(ShareLink).where(
        ShareLink.merchant_id == merchant_id, ShareLink.distributor_id == distributor.id,
        ShareLink.product_id == product_id, ShareLink.page == page,
    ).order_by(ShareLink.id).limit(1)).first()
    if link is None:
        link = ShareLink(merchant_id=merchant_id, distributor_id=distributor.id,
                         product_id=product_id, page=page, token=new_token(merchant_id))
        db.session.add(link)
        db.session.flush()
        events.link_created(link, utcnow())
    return link


def _shareable_product(merchant_id: int, product_id: int) -> Product:
    product = db.session.get(Product, (merchant_id, product_id))
    if product is None or product.status != "on_sale" or not product.is_distributable:
        raise NotFound("No such product to share.", code="product_not_found")
    return product


def _url_link_current(link: ShareLink) -> bool:
    return bool(link.url_link) and link.url_link_expires_at is not None \
        and link.url_link_expires_at > utcnow() + URL_LINK_RENEW_BEFORE


def _renew_url_link(link: ShareLink, wechat: MiniProgram) -> None:
    try:
        url = wechat.url_link(link.page, f"scene={link.token}", expire_days=URL_LINK_DAYS)
    except WeChatError as error:
        log.warning("URL Link not generated", extra={
            "merchant_id": link.merchant_id, "share_link_id": link.id, "errcode": error.errcode})
        return
    with transaction(db.session):
        link.url_link = url
        link.url_link_expires_at = utcnow() + timedelta(days=URL_LINK_DAYS)


def wxacode_png(*, merchant_id: int, token: str, wechat: MiniProgram) -> bytes:
    """The link's mini-program code as PNG; asked of WeChat once, then served from the table.

    A WeChat failure is a 502 and caches nothing, so the next request asks again.
    """
    link = _scoped_link(merchant_id, token)
    cached = _cached_image(link, "wxacode")
    if cached is not None:
        return cached
    with transaction(db.session):
        _lock(link)  # concurrent first requests wait here, then find the first one's image
        return _wxacode(link, wechat)


def poster_png(*, merchant_id: int, token: str, wechat: MiniProgram, public_base_url: str,
               static_dir: Path | None) -> bytes:
    """The link's poster as PNG, rendered once (with its wxacode) and then served cached."""
    link = _scoped_link(merchant_id, token)
    cached = _cached_image(link, "poster")
    if cached is not None:
        return cached
    with transaction(db.session):
        _lock(link)
        cached = _cached_image(link, "poster")
        if cached is not None:
            return cached
        png = poster.render_poster(qr_png=_wxacode(link, wechat),
                                   **_poster_facts(link, public_base_url, static_dir))
        db.session.add(ShareLinkImage(merchant_id=link.merchant_id, share_link_id=link.id,
                                      kind="poster", png=png))
        return png


def _scoped_link(merchant_id: int, token: str) -> ShareLink:
    link = attribution.find_link(token)
    if link.merchant_id != merchant_id:
        raise NotFound("This share link does not exist.", code="share_link_not_found")
    return link


def _cached_image(link: ShareLink, kind: str) -> bytes | None:
    image = db.session.get(ShareLinkImage, (link.merchant_id, link.id, kind))
    return image.png if image is not None else None


def _lock(link: ShareLink) -> None:
    db.session.execute(select(ShareLink.id).where(
        ShareLink.merchant_id == link.merchant_id, ShareLink.id == link.id).with_for_update())


def _wxacode(link: ShareLink, wechat: MiniProgram) -> bytes:
    cached = _cached_image(link, "wxacode")
    if cached is not None:
        return cached
    try:
        # check_path=False: links may point at pages of a mini-program version not yet live.
        png = wechat.wxa_code_unlimited(scene=link.token, page=link.page, check_path=False)
    except WeChatError as error:
        log.warning("wxacode not generated", extra={
            "merchant_id": link.merchant_id, "share_link_id": link.id, "errcode": error.errcode})
        raise UpstreamError("WeChat could not make the mini-program code; try again.") from None
    db.session.add(ShareLinkImage(merchant_id=link.merchant_id, share_link_id=link.id,
                                  kind="wxacode", png=png))
    return png


def _poster_facts(link: ShareLink, public_base_url: str, static_dir: Path | None) -> dict:
    merchant = db.session.get(Merchant, link.merchant_id)
    product = db.session.get(Product, (link.merchant_id, link.product_id)) \
        if link.product_id is not None else None
    image_url = _first_image_url(product)
    product_png = poster.load_product_image(image_url, public_base_url=public_base_url,
                                            static_dir=static_dir) if image_url else None
    return {"product_png": product_png,
            "title": product.title if product else merchant.name,
            "price_fen": product.price_fen if product else None,
            "distributor_name": _distributor_name(link), "merchant_name": merchant.name}


def _first_image_url(product: Product | None) -> str | None:
    urls = product.image_urls if product is not None else None
    return urls[0] if urls and isinstance(urls[0], str) and urls[0] else None


def _distributor_name(link: ShareLink) -> str:
    nickname = db.session.scalar(select(User.nickname).join(Member, Member.user_id == User.id)
                                 .where(Member.merchant_id == link.merchant_id,
                                        Member.id == link.distributor_id))
    return nickname or DEFAULT_DISTRIBUTOR_NAME


def open_landing(*, token: str, context: VisitContext, redis_client: redis_lib.Redis,
                 record: bool = True) -> LandingPage:
    """What the H5 landing page shows; with ``record`` the opening is first recorded as a
    visit (its own transaction, through attribution) and, once committed, counted as a
    unique visitor in Redis — so a counter never counts a visit that SQL lost."""
    if record:
        attribution.record_visit(token=token, user_id=None, context=context,
                                 redis_client=redis_client)
    link = attribution.find_link(token)
    return _landing_page(link, get_approved_merchant(link.merchant_id))


def _landing_page(link: ShareLink, merchant: Merchant) -> LandingPage:
    page = LandingPage(merchant_id=link.merchant_id, token=link.token,
                       merchant_name=merchant.name, distributor_name=_distributor_name(link),
                       url_link=link.url_link if _url_link_current(link) else None)
    product = db.session.get(Product, (link.merchant_id, link.product_id)) \
        if link.product_id is not None else None
    if product is None:
        return page
    image_url = _first_image_url(product)
    return replace(page, product_title=product.title,
                   price_text=poster.yuan_text(product.price_fen),
                   product_image_url=image_url if _displayable(image_url) else None,
                   product_on_sale=product.status == "on_sale")


def _displayable(url: str | None) -> bool:
    # Only images a browser may load in an <img>; anything else is dropped, not escaped.
    return bool(url) and url.startswith(("https://", "http://", "/static/", "data:image/"))
