"""POST /api/mp/v1/merchants/{id}/share-links, its image URLs, and the /s/{token} landing page."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app.database import transaction, utcnow
from app.extensions import db, redis
from app.integrations import redis_keys, visit_counters
from app.models import Product, ShareLink, ShareLinkImage, User, Visit
from app.wechat_sandbox.miniprogram import SCENE_RE
from tests.factories import make_member, make_merchant, make_share_link, make_user

DEAD_WECHAT = "http://127.0.0.1:9"  # the discard port: nothing listens there


def links_url(merchant_id: int) -> str:
    return f"/api/mp/v1/merchants/{merchant_id}/share-links"


def make_product(merchant, **fields) -> Product:
    with transaction(db.session):
        product = Product(merchant_id=merchant.id, title=fields.pop("title", "有机草莓"),
                          price_fen=fields.pop("price_fen", 1990), **fields)
        db.session.add(product)
    return product


def local(app, url: str) -> str:
    base = app.extensions["fenxiao.settings"].public_base_url
    assert url.startswith(base + "/"), url
    return url.removeprefix(base)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def merchant(app_context):
    return make_merchant(name="鲜果小铺")


@pytest.fixture
def sharer(merchant, login):
    """A signed-in user who is an active distributor of ``merchant``."""
    body = login("sharer")
    user = db.session.get(User, body["user"]["id"])
    member = make_member(merchant, user=user)
    return SimpleNamespace(member=member, headers={"Authorization": f"Bearer {body['token']}"})


def test_an_active_distributor_gets_a_link_whose_urls_all_resolve(client, app, merchant, sharer):
    response = client.post(links_url(merchant.id), json={}, headers=sharer.headers)
    body = response.get_json()
    assert response.status_code == 201, body
    assert {"token", "scene", "page", "h5_url", "wxacode_url", "poster_url", "url_link"} \
        <= set(body)
    assert body["scene"] == body["token"] and len(body["token"]) <= 32
    assert SCENE_RE.fullmatch(body["scene"])
    assert body["page"] == "pages/index/index"
    assert local(app, body["h5_url"]) == f"/s/{body['token']}"
    assert body["url_link"].startswith("https://wxaurl.cn/")
    landing = client.get(local(app, body["h5_url"]))
    assert landing.status_code == 200 and landing.mimetype == "text/html"
    for field in ("wxacode_url", "poster_url"):
        image = client.get(local(app, body[field]))
        assert image.status_code == 200 and image.mimetype == "image/png", field
        assert image.data.startswith(b"\x89PNG")


def test_the_url_link_is_stored_with_its_expiry(client, merchant, sharer):
    body = client.post(links_url(merchant.id), json={}, headers=sharer.headers).get_json()
    db.session.expire_all()
    link = db.session.scalars(select(ShareLink)).one()
    assert link.url_link == body["url_link"]
    assert timedelta(days=29) < link.url_link_expires_at - utcnow() <= timedelta(days=30)


def test_asking_twice_returns_the_same_link(client, merchant, sharer):
    product = make_product(merchant)
    first = client.post(links_url(merchant.id), json={}, headers=sharer.headers).get_json()
    again = client.post(links_url(merchant.id), json={}, headers=sharer.headers).get_json()
    assert again["token"] == first["token"] and again["url_link"] == first["url_link"]
    for_product = client.post(links_url(merchant.id), json={"product_id": product.id},
                              headers=sharer.headers).get_json()
    assert for_product["page"] == "pages/product/detail"
    assert for_product["token"] != first["token"]
    assert client.post(links_url(merchant.id), json={"product_id": product.id},
                       headers=sharer.headers).get_json()["token"] == for_product["token"]
    assert count(ShareLink) == 2


@pytest.mark.parametrize("status", ["none", "pending", "frozen", "left"])
def test_a_member_who_is_not_an_active_distributor_may_not_share(client, merchant, login,
                                                                 status):
    body = login("not-yet")
    make_member(merchant, user=db.session.get(User, body["user"]["id"]), status=status)
    response = client.post(links_url(merchant.id), json={},
                           headers={"Authorization": f"Bearer {body['token']}"})
    assert response.status_code == 403
    assert response.get_json()["code"] == "not_a_distributor"


def test_a_user_outside_the_program_may_not_share(client, merchant, auth_headers):
    response = client.post(links_url(merchant.id), json={}, headers=auth_headers("stranger"))
    assert response.status_code == 403
    assert response.get_json()["code"] == "not_a_distributor"


def test_another_merchants_product_is_simply_not_found(client, merchant, sharer):
    elsewhere = make_product(make_merchant(name="别家店"))
    response = client.post(links_url(merchant.id), json={"product_id": elsewhere.id},
                           headers=sharer.headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "product_not_found"
    assert count(ShareLink) == 0


@pytest.mark.parametrize("fields", [{"status": "off_sale"}, {"status": "draft"},
                                    {"is_distributable": False}])
def test_a_product_that_is_not_for_sharing_is_not_found(client, merchant, sharer, fields):
    product = make_product(merchant, **fields)
    response = client.post(links_url(merchant.id), json={"product_id": product.id},
                           headers=sharer.headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "product_not_found"


def test_an_unknown_or_unapproved_merchant_is_not_found(client, sharer):
    pending = make_merchant(status="pending")
    for merchant_id in (pending.id, 987654):
        response = client.post(links_url(merchant_id), json={}, headers=sharer.headers)
        assert response.status_code == 404
        assert response.get_json()["code"] == "merchant_not_found"


@pytest.mark.parametrize("page", ["/pages/index/index", "pages/index/index?x=1", "", "a" * 129])
def test_a_bad_page_is_refused_naming_the_field(client, merchant, sharer, page):
    response = client.post(links_url(merchant.id), json={"page": page}, headers=sharer.headers)
    assert response.status_code == 422
    assert "page" in response.get_json()["errors"]


def test_without_a_token_it_is_a_401(client, merchant):
    response = client.post(links_url(merchant.id), json={})
    assert response.status_code == 401
    assert response.get_json()["code"] == "missing_token"


def test_an_expired_url_link_is_made_again(client, merchant, sharer):
    first = client.post(links_url(merchant.id), json={}, headers=sharer.headers).get_json()
    with transaction(db.session):
        db.session.scalars(select(ShareLink)).one().url_link_expires_at = \
            utcnow() - timedelta(minutes=1)
    again = client.post(links_url(merchant.id), json={}, headers=sharer.headers).get_json()
    assert again["token"] == first["token"]
    assert again["url_link"] and again["url_link"] != first["url_link"]
    db.session.expire_all()
    assert db.session.scalars(select(ShareLink)).one().url_link_expires_at > utcnow()


def test_a_link_comes_without_url_link_when_wechat_fails(make_app, client, merchant, sharer):
    down = make_app(wechat_api_base_url=DEAD_WECHAT).test_client()
    response = down.post(links_url(merchant.id), json={}, headers=sharer.headers)
    assert response.status_code == 201
    assert "url_link" not in response.get_json()
    # The next request, with WeChat back, makes it.
    again = client.post(links_url(merchant.id), json={}, headers=sharer.headers).get_json()
    assert again["token"] == response.get_json()["token"] and again["url_link"]


def test_images_of_unknown_links_are_404s_in_the_error_shape(client, merchant, sharer):
    link = make_share_link(sharer.member)
    other = make_merchant()
    for path in (f"{links_url(merchant.id)}/zz-AAAAAAAAAA/wxacode.png",
                 f"{links_url(merchant.id)}/garbage/poster.png",
                 f"{links_url(other.id)}/{link.token}/wxacode.png",
                 f"{links_url(other.id)}/{link.token}/poster.png"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["code"] == "share_link_not_found"


def test_a_wechat_error_on_the_code_is_a_502_and_caches_nothing(client, merchant, sharer):
    link = make_share_link(sharer.member, page="pages/a?b=1")  # WeChat refuses: 41030
    for kind in ("wxacode", "poster"):
        response = client.get(f"{links_url(merchant.id)}/{link.token}/{kind}.png")
        assert response.status_code == 502
        assert response.get_json()["code"] == "upstream_error"
    assert count(ShareLinkImage) == 0


def test_the_landing_page_shows_the_product_and_records_an_h5_visit(client, merchant, sharer):
    product = make_product(merchant, title="丹东草莓 500g", price_fen=3990,
                           image_urls=["https://img.example.com/berry.jpg"])
    body = client.post(links_url(merchant.id), json={"product_id": product.id},
                       headers=sharer.headers).get_json()
    response = client.get(f"/s/{body['token']}", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    for text in ("鲜果小铺", "丹东草莓 500g", "¥39.90", "https://img.example.com/berry.jpg",
                 f"/api/mp/v1/merchants/{merchant.id}/share-links/{body['token']}/wxacode.png",
                 "分销员 为你推荐", f'<a class="open" href="{body["url_link"]}">打开小程序</a>'):
        assert text in html, text
    db.session.expire_all()
    visit = db.session.scalars(select(Visit)).one()
    assert (visit.channel, visit.visitor_user_id, visit.distributor_id) \
        == ("h5", None, sharer.member.id)
    assert visit.ip_hash and "127.0.0.1" not in visit.ip_hash
    assert visit.user_agent == "Mozilla/5.0 (iPhone)"


def test_landing_visits_from_one_address_count_as_one_unique_visitor(client, merchant, sharer):
    link = make_share_link(sharer.member)
    for _ in range(3):
        assert client.get(f"/s/{link.token}").status_code == 200
    assert count(Visit) == 3
    key = redis_keys.unique_visitors_of_link(merchant.id, link.id)
    assert visit_counters.unique_visitors(redis.client, key) == 1


def test_a_merchant_link_shows_the_shop_and_the_distributors_name(client, merchant):
    user = make_user(nickname="小红")
    link = make_share_link(make_member(merchant, user=user))
    html = client.get(f"/s/{link.token}").get_data(as_text=True)
    assert "鲜果小铺" in html and "小红 为你推荐" in html
    assert 'class="open"' not in html  # no URL Link, so no "打开小程序" button


@pytest.mark.parametrize("token", ["zz-AAAAAAAAAA", "not-a-token", "1-AAAAAAAAAA", "x" * 300])
def test_an_unknown_landing_token_gets_a_friendly_404_page(client, merchant, token):
    response = client.get(f"/s/{token}")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "分享链接不存在" in response.get_data(as_text=True)


def test_head_works_without_counting_as_a_visit(client, merchant, sharer):
    link = make_share_link(sharer.member)
    response = client.head(f"/s/{link.token}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.data == b""
    assert client.head("/s/zz-AAAAAAAAAA").status_code == 404
    assert count(Visit) == 0


def test_a_bot_without_a_user_agent_gets_the_page(app, merchant, sharer):
    bot = app.test_client()
    bot.environ_base.pop("HTTP_USER_AGENT", None)
    response = bot.get(f"/s/{make_share_link(sharer.member).token}")
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.scalars(select(Visit)).one().user_agent == ""


def test_the_landing_page_loads_nothing_from_elsewhere(client, merchant, sharer):
    response = client.get(f"/s/{make_share_link(sharer.member).token}")
    html = response.get_data(as_text=True)
    assert "<script" not in html and "<link" not in html
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
