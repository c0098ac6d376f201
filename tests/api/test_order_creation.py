"""POST /api/mp/v1/merchants/{id}/orders: stock, the snapshot, idempotency, bad input."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import IdempotencyRecord, Order, Product
from tests.api.conftest import ADDRESS


def orders_url(shop) -> str:
    return f"/api/mp/v1/merchants/{shop.id}/orders"


def order_body(product, quantity=1, **extra) -> dict:
    return {"items": [{"product_id": product["id"], "quantity": quantity}],
            "address": ADDRESS, **extra}


def stock_of(product) -> int:
    db.session.expire_all()
    return db.session.scalars(select(Product.stock).where(Product.id == product["id"])).one()


def test_an_order_reserves_stock_and_snapshots_the_chain(client, shop, chain, pay_account,
                                                         add_product):
    pay_account()
    product = add_product(price_fen=5_000, stock=10)
    response = client.post(orders_url(shop), headers=chain["carol"]["headers"],
                           json=order_body(product, 4))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["goods_fen"], body["paid_fen"], body["status"]) == (20_000, 20_000, "created")
    assert body["lines"] == [{"line_no": 1, "product_id": product["id"], "title": "丑橘 5斤",
                              "unit_price_fen": 5_000, "quantity": 4}]
    assert 6 <= len(body["out_trade_no"]) <= 32
    assert stock_of(product) == 6
    order = db.session.get(Order, (shop.id, body["id"]))
    beneficiaries = order.commission_snapshot["beneficiaries"]
    assert [(b["tier"], b["member_id"], b["rate_bps"]) for b in beneficiaries] == [
        (1, chain["bob"]["member"].id, 1000), (2, chain["alice"]["member"].id, 500)]


def test_too_little_stock_refuses_the_order_and_takes_nothing(client, shop, chain,
                                                              pay_account, add_product):
    pay_account()
    plenty, scarce = add_product(stock=10), add_product(stock=1, title="限量")
    response = client.post(orders_url(shop), headers=chain["carol"]["headers"], json={
        "items": [{"product_id": plenty["id"], "quantity": 2},
                  {"product_id": scarce["id"], "quantity": 2}], "address": ADDRESS})
    assert response.status_code == 409
    assert response.get_json()["code"] == "out_of_stock"
    assert f"items.{scarce['id']}" in response.get_json()["errors"]
    assert (stock_of(plenty), stock_of(scarce)) == (10, 1)
    assert db.session.query(Order).count() == 0


def test_concurrent_orders_never_oversell(app, client, shop, chain, pay_account, add_product):
    pay_account()
    product = add_product(stock=3)
    headers, url = chain["carol"]["headers"], orders_url(shop)
    statuses, barrier = [], threading.Barrier(8)

    def buy():
        barrier.wait()
        statuses.append(app.test_client().post(url, headers=headers,
                                               json=order_body(product)).status_code)

    threads = [threading.Thread(target=buy) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 3 + [409] * 5
    assert stock_of(product) == 0


def test_the_same_idempotency_key_returns_the_first_order(client, shop, chain, pay_account,
                                                          add_product):
    pay_account()
    product = add_product(stock=10)
    headers = {**chain["carol"]["headers"], "Idempotency-Key": "cart-7f3a"}
    first = client.post(orders_url(shop), headers=headers, json=order_body(product, 2))
    again = client.post(orders_url(shop), headers=headers, json=order_body(product, 2))
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["payment"]["package"] == first.get_json()["payment"]["package"]
    assert stock_of(product) == 8
    other = client.post(orders_url(shop), headers=headers, json=order_body(product, 3))
    assert other.status_code == 409
    assert other.get_json()["code"] == "idempotency_key_reused"
    assert db.session.query(Order).count() == 1 and stock_of(product) == 8


def test_idempotency_keys_belong_to_one_buyer(client, shop, chain, pay_account, add_product):
    pay_account()
    product = add_product(stock=10)
    for name in ("carol", "bob"):
        response = client.post(orders_url(shop), json=order_body(product),
                               headers={**chain[name]["headers"], "Idempotency-Key": "k1"})
        assert response.status_code == 201
    assert db.session.query(Order).count() == 2
    assert db.session.query(IdempotencyRecord).count() == 2


@pytest.mark.parametrize(("change", "field"), [
    ({"items": []}, "items"),
    ({"items": [{"product_id": 1, "quantity": 0}]}, "items"),
    ({"items": [{"product_id": 1, "quantity": 1.5}]}, "items"),
    ({"items": [{"product_id": "1", "quantity": 1}]}, "items"),
    ({"address": {**ADDRESS, "receiver": ""}}, "address"),
    ({"address": {k: v for k, v in ADDRESS.items() if k != "detail"}}, "address"),
    ({"paid_fen": 1}, "paid_fen"),  # the client never sets money
    ({"status": "paid"}, "status"),
])
def test_bad_order_bodies_are_refused_with_the_field_named(client, shop, chain, pay_account,
                                                           add_product, change, field):
    pay_account()
    product = add_product(stock=5)
    response = client.post(orders_url(shop), headers=chain["carol"]["headers"],
                           json={**order_body(product), **change})
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert stock_of(product) == 5


def test_products_off_sale_or_of_another_merchant_cannot_be_ordered(
        client, shop, other_shop, chain, pay_account, add_product, staff_headers):
    pay_account()
    off = add_product(stock=5, status="off_sale")
    foreign = client.post("/api/console/v1/products", headers=staff_headers("owner2"),
                          json={"title": "别家", "price_fen": 100, "stock": 5}).get_json()
    for product in (off, foreign):
        response = client.post(orders_url(shop), headers=chain["carol"]["headers"],
                               json=order_body(product))
        assert response.status_code == 422
        assert response.get_json()["code"] == "product_unavailable"


def test_without_payment_settings_no_order_is_left_behind_unpayable(client, shop, chain,
                                                                    add_product):
    product = add_product(stock=5)
    response = client.post(orders_url(shop), headers=chain["carol"]["headers"],
                           json=order_body(product))
    assert response.status_code == 409
    assert response.get_json()["code"] == "payment_not_configured"


def test_orders_need_a_signed_in_buyer(client, shop, add_product):
    product = add_product()
    assert client.post(orders_url(shop), json=order_body(product)).status_code == 401


def test_a_buyer_sees_only_their_own_orders(client, shop, chain, pay_account, add_product):
    pay_account()
    product = add_product()
    mine = client.post(orders_url(shop), headers=chain["carol"]["headers"],
                       json=order_body(product)).get_json()
    listed = client.get(orders_url(shop), headers=chain["carol"]["headers"]).get_json()
    assert [o["id"] for o in listed["items"]] == [mine["id"]] and listed["total"] == 1
    assert client.get(orders_url(shop), headers=chain["bob"]["headers"]).get_json()[
        "total"] == 0
    other = client.get(f"{orders_url(shop)}/{mine['id']}", headers=chain["bob"]["headers"])
    assert other.status_code == 404 and other.get_json()["code"] == "order_not_found"


def test_an_over_long_idempotency_key_is_refused_not_cut(client, shop, chain, pay_account,
                                                         add_product):
    pay_account()
    product = add_product(stock=5)
    response = client.post(orders_url(shop), json=order_body(product),
                           headers={**chain["carol"]["headers"], "Idempotency-Key": "k" * 129})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.get_json()["errors"]
    assert stock_of(product) == 5
