"""POST /sandbox/notifications/custom: a notification with content the caller chooses, signed
(and for v3 encrypted) exactly as WeChat would, stored but not delivered."""

from __future__ import annotations

import json

import pytest
import xmltodict

from .helpers import v3_client
from .test_pay_v2 import independent_v2_check

RESOURCE = {
    "appid": "wx0000000000000000",
    "mchid": "1900000001",
    "out_trade_no": "NEVER-CREATED-1",
    "trade_state": "SUCCESS",
    "transaction_id": "4200000000202401010000000001",
    "amount": {"total": 1, "currency": "CNY"},
}


def custom(sandbox, body):
    return sandbox.control("POST", "/sandbox/notifications/custom", body)


def signed(sandbox, notification_id):
    resp = sandbox.control("POST", f"/sandbox/notifications/{notification_id}/sign")
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("mode", ["v3_public_key", "v3_certificate"])
def test_a_v3_custom_notification_passes_wechatpayv3_callback_with_the_given_resource(
        sandbox, merchants, receiver, tmp_path, mode):
    creds = merchants[mode]
    url = receiver.new_url()
    resp = custom(sandbox, {"mch_id": creds["mch_id"], "url": url,
                            "event_type": "TRANSACTION.SUCCESS", "resource": RESOURCE})
    assert resp.status_code == 201, resp.text
    note = signed(sandbox, resp.json()["notification_id"])
    expected_serial = (creds["platform_certificate_serial_no"] if mode == "v3_certificate"
                       else creds["wechatpay_public_key_id"])
    assert note["headers"]["Wechatpay-Serial"] == expected_serial
    wxpay = v3_client(sandbox.url, creds, url, cert_dir=tmp_path / "certs")
    result = wxpay.callback(note["headers"], note["body"])
    assert result is not None, "wechatpayv3 rejected the custom notification"
    assert result["event_type"] == "TRANSACTION.SUCCESS" and result["resource"] == RESOURCE
    assert receiver.received(url) == []  # stored, not delivered


def test_a_v3_custom_raw_body_is_signed_as_given(sandbox, merchants, receiver, tmp_path):
    creds = merchants["v3_public_key"]
    resp = custom(sandbox, {"mch_id": creds["mch_id"], "url": receiver.new_url(),
                            "raw_body": "{not json"})
    assert resp.status_code == 201, resp.text
    note = signed(sandbox, resp.json()["notification_id"])
    assert note["body"] == "{not json"
    wxpay = v3_client(sandbox.url, creds, "", cert_dir=tmp_path / "certs")
    # The signature verifies, so the library gets as far as parsing the body, which fails.
    with pytest.raises(json.JSONDecodeError):
        wxpay.callback(note["headers"], note["body"])


@pytest.mark.parametrize(("kind", "sign_type"), [("v2_md5", "MD5"), ("v2_hmac", "HMAC-SHA256")])
def test_a_v2_custom_notification_is_signed_with_the_merchants_key_and_sign_type(
        sandbox, merchants, receiver, kind, sign_type):
    creds = merchants[kind]
    fields = {"return_code": "SUCCESS", "result_code": "SUCCESS", "appid": "wx0000000000000000",
              "mch_id": creds["mch_id"], "out_trade_no": "NEVER-CREATED-2", "total_fee": "7",
              "transaction_id": "4200000000202401010000000002"}
    url = receiver.new_url("v2")
    resp = custom(sandbox, {"mch_id": creds["mch_id"], "url": url, "fields": fields})
    assert resp.status_code == 201, resp.text
    note = signed(sandbox, resp.json()["notification_id"])
    sent = xmltodict.parse(note["body"])["xml"]
    assert {k: sent[k] for k in fields} == fields and sent["nonce_str"]
    assert sent.get("sign_type", "MD5") == sign_type
    assert independent_v2_check(sent, creds["api_key"])
    assert not independent_v2_check(dict(sent, total_fee="8"), creds["api_key"])
    assert receiver.received(url) == []


@pytest.mark.parametrize(("body", "status"), [
    ({"mch_id": "0000000000", "url": "http://x/", "resource": {}}, 404),
    ({"url": "http://x/", "resource": {}}, 404),
    ({"mch_id": "<v3>", "resource": {}}, 400),
    ({"mch_id": "<v3>", "url": "http://x/", "event_type": "NOPE", "resource": {}}, 400),
    ({"mch_id": "<v3>", "url": "http://x/", "resource": "not an object"}, 400),
    ({"mch_id": "<v2>", "url": "http://x/", "fields": {}}, 400),
])
def test_unusable_custom_notification_requests_are_refused(sandbox, merchants, body, status):
    ids = {"<v3>": merchants["v3_public_key"]["mch_id"], "<v2>": merchants["v2_md5"]["mch_id"]}
    body = dict(body, **({"mch_id": ids[body["mch_id"]]} if body.get("mch_id") in ids else {}))
    before = len(sandbox.control("GET", "/sandbox/notifications").json()["notifications"])
    resp = custom(sandbox, body)
    assert resp.status_code == status, resp.text
    assert "error" in resp.json()
    after = len(sandbox.control("GET", "/sandbox/notifications").json()["notifications"])
    assert after == before
