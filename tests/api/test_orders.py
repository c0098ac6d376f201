"""Orders through the mini-program API, paid through the WeChat sandbox: the commission
arrives as pending with the exact amounts, in every payment mode."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from tests.api.conftest import ADDRESS
from tests.support.wechatpay import deliver, pay

MODES = [("v3_public_key", "MD5"), ("v3_certificate", "MD5"), ("v2", "MD5"),
         ("v2", "HMAC-SHA256")]


def orders_url(shop) -> str:
    return f"/api/mp/v1/merchants/{shop.id}/orders"


def wallet(client, shop, headers) -> dict:
    return client.get(f"/api/mp/v1/merchants/{shop.id}/wallet", headers=headers).get_json()


def check_pay_sign(account: dict, payment: dict) -> None:
    """Verify paySign exactly as the WeChat client would before opening the payment sheet."""
    if payment["signType"] == "RSA":
        message = "\n".join([account["appid"], payment["timeStamp"], payment["nonceStr"],
                             payment["package"]]) + "\n"
        key = load_pem_private_key(account["merchant_private_key_pem"].encode(), None)
        key.public_key().verify(base64.b64decode(payment["paySign"]), message.encode(),
                                padding.PKCS1v15(), hashes.SHA256())
        return
    fields = {"appId": account["appid"], **{k: payment[k] for k in
                                            ("timeStamp", "nonceStr", "package", "signType")}}
    sign = (calculate_signature_hmac if payment["signType"] == "HMAC-SHA256"
            else calculate_signature)(fields, account["api_key"])
    assert payment["paySign"] == sign


@pytest.mark.parametrize(("mode", "sign_type"), MODES)
def test_a_paid_order_accrues_tier_one_and_tier_two_commission(
        client, shop, chain, pay_account, add_product, sandbox_url, mode, sign_type):
    account = pay_account(mode, sign_type)
    product = add_product(price_fen=9_990, stock=5)
    response = client.post(orders_url(shop), headers=chain["carol"]["headers"], json={
        "items": [{"product_id": product["id"], "quantity": 3}], "address": ADDRESS})
    assert response.status_code == 201, response.get_json()
    order = response.get_json()
    assert order["status"] == "created" and order["paid_fen"] == 29_970
    assert set(order["payment"]) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    expected_sign_type = "RSA" if mode.startswith("v3") else sign_type
    assert order["payment"]["signType"] == expected_sign_type
    check_pay_sign(account, order["payment"])

    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    reply = deliver(client, sandbox_url, paid["notification_id"])
    assert reply.status_code in (200, 204), reply.get_data(as_text=True)
    if mode == "v2":
        assert "SUCCESS" in reply.get_data(as_text=True)

    mine = client.get(f"{orders_url(shop)}/{order['id']}", headers=chain["carol"]["headers"])
    assert mine.get_json()["status"] == "paid"
    # 29,970 × 10% = 2,997 for bob; × 5% = 1,498.5 → 1,498 for alice (floor).
    assert wallet(client, shop, chain["bob"]["headers"])["pending_fen"] == 2_997
    assert wallet(client, shop, chain["alice"]["headers"])["pending_fen"] == 1_498
    stock = client.get(f"/api/mp/v1/merchants/{shop.id}/products/{product['id']}").get_json()
    assert stock["stock"] == 2


def place_paid_order(client, shop, chain, account, sandbox_url, product, quantity=1) -> dict:
    response = client.post(orders_url(shop), headers=chain["carol"]["headers"], json={
        "items": [{"product_id": product["id"], "quantity": quantity}], "address": ADDRESS})
    assert response.status_code == 201, response.get_json()
    order = response.get_json()
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    assert deliver(client, sandbox_url, paid["notification_id"]).status_code in (200, 204)
    return order


def test_shipment_receipt_and_settlement_make_commission_available(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    from datetime import timedelta

    from app.database import utcnow
    from app.jobs import settle_commissions
    from app.services import commissions

    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    shipped = client.post(f"/api/console/v1/orders/{order['id']}/shipment",
                          headers=staff_headers("operator1"),
                          json={"carrier": "顺丰", "tracking_no": "SF1234567890"})
    assert shipped.status_code == 200 and shipped.get_json()["status"] == "shipped"
    received = client.post(f"{orders_url(shop)}/{order['id']}/receipt",
                           headers=chain["carol"]["headers"])
    assert received.status_code == 200 and received.get_json()["status"] == "received"
    settle_commissions()  # the freeze (7 days) has not passed: nothing moves
    assert wallet(client, shop, chain["bob"]["headers"])["available_fen"] == 0
    from app.database import transaction
    from app.extensions import db
    with transaction(db.session):
        assert commissions.settle_due(now=utcnow() + timedelta(days=7, seconds=1)) == 2
    from app.extensions import redis
    from app.services import wallets
    wallets.sweep_outbox(redis.client)
    assert wallet(client, shop, chain["bob"]["headers"]) == {
        "pending_fen": 0, "available_fen": 1_000, "withdrawing_fen": 0, "paid_out_fen": 0}
    assert wallet(client, shop, chain["alice"]["headers"])["available_fen"] == 500


@pytest.mark.parametrize(("mode", "sign_type"), [("v3_public_key", "MD5"), ("v2", "MD5")])
def test_a_full_refund_reverses_the_pending_commission(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers, mode,
        sign_type):
    from tests.support.wechatpay import complete_refund

    account = pay_account(mode, sign_type)
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    started = client.post(f"/api/console/v1/orders/{order['id']}/refunds",
                          headers=staff_headers("finance1"), json={"reason": "缺货"})
    assert started.status_code == 201, started.get_json()
    refund = started.get_json()
    assert refund["status"] == "processing" and refund["amount_fen"] == 10_000
    done = complete_refund(sandbox_url, account["mch_id"], refund["out_refund_no"])
    assert deliver(client, sandbox_url, done["notification_id"]).status_code in (200, 204)
    mine = client.get(f"{orders_url(shop)}/{order['id']}", headers=chain["carol"]["headers"])
    assert mine.get_json()["status"] == "refunded"
    assert mine.get_json()["refunded_fen"] == 10_000
    assert wallet(client, shop, chain["bob"]["headers"])["pending_fen"] == 0
    assert wallet(client, shop, chain["alice"]["headers"])["pending_fen"] == 0
