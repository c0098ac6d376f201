"""The catalogue: console product routes with commission overrides, and the buyers' view."""

from __future__ import annotations

import pytest

PRODUCTS = "/api/console/v1/products"
GRAPES = {"title": "阳光玫瑰青提", "price_fen": 6990, "stock": 100,
          "image_urls": ["https://img.example.com/grapes.png"]}


def test_an_operator_adds_and_edits_a_product_buyers_then_see(client, shop, staff_headers):
    headers = staff_headers("operator1")
    created = client.post(PRODUCTS, json=GRAPES, headers=headers)
    assert created.status_code == 201, created.get_json()
    product_id = created.get_json()["id"]
    patched = client.patch(f"{PRODUCTS}/{product_id}", json={"price_fen": 5990},
                           headers=headers)
    assert patched.get_json()["price_fen"] == 5990 and patched.get_json()["title"] == "阳光玫瑰青提"
    seen = client.get(f"/api/mp/v1/merchants/{shop.id}/products/{product_id}").get_json()
    assert seen["price_fen"] == 5990 and "commission_override" not in seen
    listed = client.get(f"/api/mp/v1/merchants/{shop.id}/products").get_json()
    assert [p["id"] for p in listed["items"]] == [product_id]


@pytest.mark.parametrize("override", [{"mode": "fixed", "values": [300, 100]},
                                      {"mode": "rates", "values": [2000, 500]},
                                      {"mode": "opt_out"}])
def test_valid_commission_overrides_are_kept(client, shop, staff_headers, override):
    response = client.post(PRODUCTS, json={**GRAPES, "commission_override": override},
                           headers=staff_headers())
    assert response.status_code == 201
    assert response.get_json()["commission_override"]["mode"] == override["mode"]


@pytest.mark.parametrize("body,field", [
    ({**GRAPES, "commission_override": {"mode": "rates", "values": [2500, 1000]}},
     "commission_override"),  # 35% > max_total_bps 30%
    ({**GRAPES, "commission_override": {"mode": "fixed", "values": [300]}},
     "commission_override"),  # one value for two tiers
    ({**GRAPES, "commission_override": {"mode": "bonus", "values": []}}, "commission_override"),
    ({**GRAPES, "price_fen": 0}, "price_fen"),
    ({**GRAPES, "price_fen": 19.9}, "price_fen"),
    ({**GRAPES, "image_urls": ["javascript:alert(1)"]}, "image_urls"),
    ({"price_fen": 100}, "title"),
])
def test_bad_products_are_refused_with_the_field_named(client, shop, staff_headers, body,
                                                      field):
    response = client.post(PRODUCTS, json=body, headers=staff_headers())
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert client.get(PRODUCTS, headers=staff_headers()).get_json()["total"] == 0


def test_finance_cannot_edit_the_catalogue(client, shop, staff_headers):
    response = client.post(PRODUCTS, json=GRAPES, headers=staff_headers("finance1"))
    assert response.status_code == 403


def test_products_off_sale_or_of_other_merchants_are_not_found(client, shop, other_shop,
                                                               staff_headers):
    off = client.post(PRODUCTS, json={**GRAPES, "status": "off_sale"},
                      headers=staff_headers()).get_json()
    assert client.get(f"/api/mp/v1/merchants/{shop.id}/products/{off['id']}").status_code == 404
    assert client.get(f"/api/mp/v1/merchants/{other_shop.id}/products/{off['id']}"
                      ).status_code == 404
    other_staff = staff_headers("owner2")
    assert client.patch(f"{PRODUCTS}/{off['id']}", json={"price_fen": 1},
                        headers=other_staff).status_code == 404


def test_a_price_change_redraws_posters_of_the_product(client, shop, staff_headers):
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import ShareLinkImage
    from tests.factories import make_member, make_share_link

    product = client.post(PRODUCTS, json=GRAPES, headers=staff_headers()).get_json()
    link = make_share_link(make_member(shop))
    link.product_id = product["id"]
    db.session.add(ShareLinkImage(merchant_id=shop.id, share_link_id=link.id, kind="poster",
                                  png=b"old"))
    db.session.commit()  # nothing held open while the request runs
    response = client.patch(f"{PRODUCTS}/{product['id']}", json={"price_fen": 100},
                            headers=staff_headers())
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(ShareLinkImage)) == 0
