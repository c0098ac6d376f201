"""PUT/GET /api/console/v1/settings/payment: validated, secrets encrypted and never returned."""

from __future__ import annotations

import json

import pytest

from app.extensions import db
from app.models import PaymentSettings
from tests.support.wechatpay import sandbox_merchant, settings_body

URL = "/api/console/v1/settings/payment"


@pytest.mark.parametrize(("mode", "sign_type"), [("v3_public_key", "MD5"),
                                                 ("v3_certificate", "MD5"), ("v2", "MD5"),
                                                 ("v2", "HMAC-SHA256")])
def test_secrets_are_stored_encrypted_and_never_returned(client, shop, staff_headers,
                                                         sandbox_url, mode, sign_type):
    account = sandbox_merchant(sandbox_url, mode, sign_type)
    body = settings_body(account)
    response = client.put(URL, json=body, headers=staff_headers())
    assert response.status_code == 200, response.get_json()
    shown = json.dumps(response.get_json()) + json.dumps(
        client.get(URL, headers=staff_headers()).get_json())
    stored = db.session.get(PaymentSettings, shop.id)
    row_text = json.dumps({c.name: str(getattr(stored, c.name))
                           for c in PaymentSettings.__table__.columns})
    for secret in ("apiv3_key", "api_key", "merchant_private_key_pem"):
        if secret in body:
            assert body[secret] not in shown
            assert body[secret] not in row_text
    assert response.get_json()["mch_id"] == account["mch_id"]
    assert response.get_json()["configured"] is True


def test_a_certificate_merchant_is_known_by_the_certificate_serial(client, shop, staff_headers,
                                                                   sandbox_url):
    account = sandbox_merchant(sandbox_url, "v3_certificate")
    shown = client.put(URL, json=settings_body(account), headers=staff_headers()).get_json()
    assert shown["platform_certificate_serial_no"] == \
        account["platform_certificate_serial_no"].upper()
    assert shown["wechatpay_public_key_id"] is None


def test_sandbox_mode_opens_a_sandbox_account(client, shop, staff_headers):
    response = client.put(URL, json={"mode": "sandbox"}, headers=staff_headers())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["mode"] == "sandbox"
    assert response.get_json()["wechatpay_public_key_id"].startswith("PUB_KEY_ID_")


def test_sandbox_mode_is_refused_where_the_sandbox_is_not_used(make_app, shop):
    other = make_app(wechatpay_api_base_url="https://api.mch.weixin.qq.com",
                     wechat_api_base_url="https://api.weixin.qq.com")
    client = other.test_client()
    token = client.post("/api/console/v1/auth/login",
                        json={"username": "owner1", "password": "pw-12345"}).get_json()["token"]
    response = client.put(URL, json={"mode": "sandbox"},
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    assert response.get_json()["code"] == "sandbox_unavailable"


@pytest.mark.parametrize(("change", "field"), [
    ({"apiv3_key": "short"}, "apiv3_key"),
    ({"merchant_private_key_pem": "-----BEGIN PRIVATE KEY-----\nnope\n"},
     "merchant_private_key_pem"),
    ({"wechatpay_public_key_id": "KEY_1"}, "wechatpay_public_key_id"),
    ({"wechatpay_public_key_pem": "not a key"}, "wechatpay_public_key_pem"),
    ({"mch_id": ""}, "mch_id"),
    ({"merchant_serial_no": "not hex!"}, "merchant_serial_no"),
    ({"mode": "v4"}, "mode"),
    ({"balance_fen": 1}, "balance_fen"),
])
def test_bad_v3_settings_are_refused_with_the_field_named(client, shop, staff_headers,
                                                          sandbox_url, change, field):
    body = {**settings_body(sandbox_merchant(sandbox_url)), **change}
    response = client.put(URL, json=body, headers=staff_headers())
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert db.session.get(PaymentSettings, shop.id) is None


def test_v2_needs_its_key_and_sign_type(client, shop, staff_headers):
    response = client.put(URL, headers=staff_headers(),
                          json={"mode": "v2", "appid": "wx1", "mch_id": "1900000109"})
    assert response.status_code == 422
    assert {"api_key", "sign_type"} <= set(response.get_json()["errors"])


def test_a_v3_merchant_needs_a_public_key_or_a_certificate(client, shop, staff_headers,
                                                           sandbox_url):
    body = settings_body(sandbox_merchant(sandbox_url))
    del body["wechatpay_public_key_id"], body["wechatpay_public_key_pem"]
    response = client.put(URL, json=body, headers=staff_headers())
    assert response.status_code == 422
    assert "wechatpay_public_key_pem" in response.get_json()["errors"]


@pytest.mark.parametrize("username", ["operator1", "finance1"])
def test_only_the_owner_sees_or_sets_payment(client, shop, staff_headers, sandbox_url,
                                             username):
    body = settings_body(sandbox_merchant(sandbox_url))
    assert client.put(URL, json=body, headers=staff_headers(username)).status_code == 403
    assert client.get(URL, headers=staff_headers(username)).status_code == 403


def test_before_configuration_the_console_says_so(client, shop, staff_headers):
    assert client.get(URL, headers=staff_headers()).get_json() == {"configured": False}


def test_changing_accounts_moves_new_orders_to_the_new_account(
        client, shop, chain, pay_account, add_product):
    from tests.api.conftest import ADDRESS

    first, second = pay_account(), pay_account("v2")
    product = add_product()
    order = client.post(f"/api/mp/v1/merchants/{shop.id}/orders",
                        headers=chain["carol"]["headers"],
                        json={"items": [{"product_id": product["id"], "quantity": 1}],
                              "address": ADDRESS}).get_json()
    assert first["mch_id"] != second["mch_id"]
    assert order["payment"]["signType"] == "MD5"  # v2: the second account's API
