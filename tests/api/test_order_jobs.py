"""The order jobs against the sandbox: cancelling unpaid orders (after asking WeChat),
recovering payments whose notification never came, automatic receipt and completion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.clients import pay_config
from app.database import transaction, utcnow
from app.extensions import db
from app.models import Commission, Order, Product
from app.services import orders, payments
from tests.api.conftest import ADDRESS
from tests.support.wechatpay import pay


@pytest.fixture
def offered(client, shop, chain, pay_account, add_product):
    """An order offered to WeChat Pay (prepaid) and not yet paid; returns (order, account)."""
    account = pay_account()
    product = add_product(price_fen=10_000, stock=5)
    order = client.post(f"/api/mp/v1/merchants/{shop.id}/orders",
                        headers=chain["carol"]["headers"],
                        json={"items": [{"product_id": product["id"], "quantity": 2}],
                              "address": ADDRESS}).get_json()
    return order, account


def age(order: dict, *, minutes: float) -> None:
    """Move an order's clock back, as if it had been created ``minutes`` ago."""
    then = utcnow() - timedelta(minutes=minutes)
    with transaction(db.session):
        db.session.execute(update(Order).where(Order.id == order["id"])
                           .values(created_at=then, prepaid_at=then))


def row(order: dict) -> Order:
    db.session.expire_all()
    return db.session.scalars(select(Order).where(Order.id == order["id"])).one()


def stock() -> int:
    db.session.expire_all()
    return db.session.scalars(select(Product.stock)).one()


def test_an_unpaid_order_is_closed_at_wechat_cancelled_and_its_stock_released(offered):
    order, _ = offered
    assert stock() == 3
    age(order, minutes=29)
    assert payments.cancel_unpaid(pay_config(), now=utcnow()) == {"cancelled": 0,
                                                                  "recovered": 0}
    age(order, minutes=31)
    assert payments.cancel_unpaid(pay_config(), now=utcnow()) == {"cancelled": 1,
                                                                  "recovered": 0}
    assert row(order).status == "cancelled" and stock() == 5
    answer = pay_config().gateway(row(order).merchant_id).query_order(order["out_trade_no"])
    assert answer.trade_state == "CLOSED"
    # Safe to run twice: nothing is left, and the stock is not released again.
    assert payments.cancel_unpaid(pay_config(), now=utcnow()) == {"cancelled": 0,
                                                                  "recovered": 0}
    assert stock() == 5


def test_an_order_paid_at_the_last_second_is_recorded_not_cancelled(offered, sandbox_url):
    order, account = offered
    pay(sandbox_url, account["mch_id"], order["out_trade_no"])  # its notification is lost
    age(order, minutes=31)
    assert payments.cancel_unpaid(pay_config(), now=utcnow()) == {"cancelled": 0,
                                                                  "recovered": 1}
    assert row(order).status == "paid" and stock() == 3
    assert db.session.query(Commission).count() == 2


def test_recovery_applies_a_payment_whose_notification_never_came(offered, sandbox_url):
    order, account = offered
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    assert payments.recover_payments(pay_config(), now=utcnow()) == {"recovered": 0}
    age(order, minutes=3)
    assert payments.recover_payments(pay_config(), now=utcnow()) == {"recovered": 1}
    assert row(order).status == "paid"
    assert row(order).transaction_id == paid["transaction_id"]
    assert payments.recover_payments(pay_config(), now=utcnow()) == {"recovered": 0}
    assert db.session.query(Commission).count() == 2


def test_recovery_leaves_orders_wechat_says_are_unpaid(offered):
    order, _ = offered
    age(order, minutes=3)
    assert payments.recover_payments(pay_config(), now=utcnow()) == {"recovered": 0}
    assert row(order).status == "created"


def test_an_order_never_offered_for_payment_is_cancelled_without_asking_wechat(
        client, shop, chain, pay_account, add_product):
    pay_account()
    product = add_product(stock=5)
    with transaction(db.session):
        order = orders.create_order(merchant_id=shop.id, user_id=chain["carol"]["member"].user_id,
                                    items=[{"product_id": product["id"], "quantity": 1}],
                                    address=ADDRESS, share_token=None, idempotency_key=None,
                                    now=utcnow() - timedelta(minutes=45))
    assert payments.cancel_unpaid(pay_config(), now=utcnow())["cancelled"] == 1
    assert row({"id": order.id}).status == "cancelled" and stock() == 5


def paid_and_shipped(client, offered, sandbox_url, staff_headers) -> dict:
    from tests.support.wechatpay import deliver

    order, account = offered
    deliver(client, sandbox_url, pay(sandbox_url, account["mch_id"],
                                     order["out_trade_no"])["notification_id"])
    shipped = client.post(f"/api/console/v1/orders/{order['id']}/shipment",
                          headers=staff_headers("operator1"),
                          json={"carrier": "中通", "tracking_no": "ZT100200300"})
    assert shipped.status_code == 200
    return order


def test_shipped_orders_are_received_automatically_after_auto_receive_days(
        client, offered, sandbox_url, staff_headers):
    order = paid_and_shipped(client, offered, sandbox_url, staff_headers)
    shipped_at = row(order).shipped_at
    with transaction(db.session):
        assert orders.auto_receive_due(now=shipped_at + timedelta(days=9, hours=23)) == 0
    with transaction(db.session):
        assert orders.auto_receive_due(now=shipped_at + timedelta(days=10)) == 1
    received = row(order)
    assert received.status == "received"
    settle_at = {c.settle_at for c in db.session.scalars(select(Commission))}
    assert settle_at == {received.received_at + timedelta(days=7)}
    with transaction(db.session):
        assert orders.auto_receive_due(now=shipped_at + timedelta(days=30)) == 0


def test_received_orders_complete_when_the_after_sale_window_ends(
        client, shop, chain, offered, sandbox_url, staff_headers):
    order = paid_and_shipped(client, offered, sandbox_url, staff_headers)
    client.post(f"/api/mp/v1/merchants/{shop.id}/orders/{order['id']}/receipt",
                headers=chain["carol"]["headers"])
    received_at = row(order).received_at
    with transaction(db.session):
        assert orders.complete_due(now=received_at + timedelta(days=6)) == 0
    with transaction(db.session):
        assert orders.complete_due(now=received_at + timedelta(days=7)) == 1
    assert row(order).status == "completed"


def test_fulfilment_steps_out_of_order_are_refused(client, shop, chain, offered, sandbox_url,
                                                   staff_headers):
    order, _ = offered
    ship = f"/api/console/v1/orders/{order['id']}/shipment"
    receipt = f"/api/mp/v1/merchants/{shop.id}/orders/{order['id']}/receipt"
    body = {"carrier": "顺丰", "tracking_no": "SF1"}
    unpaid = client.post(ship, headers=staff_headers("operator1"), json=body)
    assert unpaid.status_code == 409 and unpaid.get_json()["code"] == "illegal_order_transition"
    assert client.post(receipt, headers=chain["carol"]["headers"]).status_code == 409
    paid_and_shipped(client, offered, sandbox_url, staff_headers)
    again = client.post(ship, headers=staff_headers("operator1"), json=body)
    assert again.status_code == 409 and again.get_json()["code"] == "already_shipped"
    assert client.post(ship, headers=staff_headers("finance1"), json=body).status_code == 403
    assert client.post(receipt, headers=chain["bob"]["headers"]).status_code == 404
    assert client.post(receipt, headers=chain["carol"]["headers"]).status_code == 200
    assert client.post(receipt, headers=chain["carol"]["headers"]).status_code == 409
