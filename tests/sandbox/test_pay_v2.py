"""APIv2 (XML) through wechatpy's WeChatPay (MD5 and HMAC-SHA256 merchants) and v2 notifications."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
import requests
import xmltodict
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.exceptions import InvalidSignatureException, WeChatPayException

from app.wechat_sandbox.crypto import v2_sign

from .helpers import new_no, v2_client
from .test_pay_v3 import openid_of

KINDS = {"v2_md5": {}, "v2_hmac": {"sign_type": "HMAC-SHA256"}}


@pytest.fixture(params=list(KINDS))
def kind(request):
    return request.param


def create_order(pay, sandbox, kind, notify_url, total=300, **kwargs):
    no = new_no()
    result = pay.order.create(
        trade_type="JSAPI",
        body="分销商品",
        total_fee=total,
        notify_url=notify_url,
        client_ip="127.0.0.1",
        user_id=openid_of(sandbox),
        out_trade_no=no,
        **KINDS[kind],
        **kwargs,
    )
    return no, result


def independent_v2_check(fields, api_key, sign_type=None):
    """Verify a v2 signature without wechatpy (which only knows MD5). Notifications name their
    sign_type; responses are signed the way the request was."""
    fields = dict(fields)
    sign = fields.pop("sign")
    message = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if fields[k]) + f"&key={api_key}"
    if (sign_type or fields.get("sign_type")) == "HMAC-SHA256":
        expected = hmac.new(api_key.encode(), message.encode(), hashlib.sha256).hexdigest().upper()
    else:
        expected = hashlib.md5(message.encode()).hexdigest().upper()
    return sign == expected


def test_official_signature_vector():
    params = {
        "appid": "wxd930ea5d5a258f4f",
        "mch_id": "10000100",
        "device_info": "1000",
        "body": "test",
        "nonce_str": "ibuaiVcKdpRxkhJA",
    }
    key = "192006250b4c09247ec02edce69f6a2d"
    assert v2_sign(params, key) == "9A0A8659F005D6984697E2CA0A9CF3B7"
    assert (
        v2_sign(params, key, "HMAC-SHA256")
        == "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
    )


def test_unifiedorder_query_close(sandbox, merchants, receiver, kind):
    creds = merchants[kind]
    pay = v2_client(sandbox.url, creds)
    no, result = create_order(pay, sandbox, kind, receiver.new_url("v2"), attach="x1")
    assert result["prepay_id"].startswith("wx") and result["trade_type"] == "JSAPI"
    assert independent_v2_check(
        result, creds["api_key"], KINDS[kind].get("sign_type")
    )  # responses are signed
    queried = pay.order.query(out_trade_no=no)
    assert (
        queried["trade_state"] == "NOTPAY"
        and queried["total_fee"] == "300"
        and queried["attach"] == "x1"
    )
    pay.order.close(no)
    assert pay.order.query(out_trade_no=no)["trade_state"] == "CLOSED"
    with pytest.raises(WeChatPayException) as err:
        pay.order.query(out_trade_no=new_no())
    assert err.value.errcode == "ORDERNOTEXIST"


def test_bad_signature_is_rejected(sandbox, merchants, receiver):
    creds = dict(merchants["v2_md5"], api_key="X" * 32)
    with pytest.raises(WeChatPayException) as err:
        create_order(v2_client(sandbox.url, creds), sandbox, "v2_md5", receiver.new_url("v2"))
    assert err.value.return_code == "FAIL" and err.value.return_msg == "签名错误"


def test_duplicate_order_rules(sandbox, merchants, receiver):
    pay = v2_client(sandbox.url, merchants["v2_md5"])
    url = receiver.new_url("v2")
    no, first = create_order(pay, sandbox, "v2_md5", url)
    same = pay.order.create(
        trade_type="JSAPI",
        body="分销商品",
        total_fee=300,
        notify_url=url,
        client_ip="127.0.0.1",
        user_id=openid_of(sandbox),
        out_trade_no=no,
    )
    assert same["prepay_id"] == first["prepay_id"]
    with pytest.raises(WeChatPayException):
        pay.order.create(
            trade_type="JSAPI",
            body="分销商品",
            total_fee=301,
            notify_url=url,
            client_ip="127.0.0.1",
            user_id=openid_of(sandbox),
            out_trade_no=no,
        )


def pay_v2(sandbox, creds, no, **control):
    resp = sandbox.control("POST", f"/sandbox/pay/{creds['mch_id']}/{no}", control)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_payment_notification(sandbox, merchants, receiver, kind):
    creds = merchants[kind]
    pay, url = v2_client(sandbox.url, creds), receiver.new_url("v2")
    no, _ = create_order(pay, sandbox, kind, url, total=300)
    paid = pay_v2(sandbox, creds, no)
    assert paid["deliveries"][0]["status"] == 200 and "SUCCESS" in paid["deliveries"][0]["body"]
    [got] = receiver.received(url)
    fields = xmltodict.parse(got["body"])["xml"]
    assert fields["transaction_id"] == paid["transaction_id"] and fields["out_trade_no"] == no
    assert fields["total_fee"] == fields["cash_fee"] == "300" and fields["trade_type"] == "JSAPI"
    assert {
        "return_code",
        "result_code",
        "appid",
        "mch_id",
        "nonce_str",
        "openid",
        "bank_type",
        "fee_type",
        "time_end",
        "sign",
    } <= set(fields)
    assert independent_v2_check(fields, creds["api_key"])
    tampered = dict(fields, total_fee="1")
    assert not independent_v2_check(tampered, creds["api_key"])
    if kind == "v2_md5":
        assert "sign_type" not in fields
        parsed = pay.parse_payment_result(got["body"])
        assert parsed["total_fee"] == 300 and parsed["transaction_id"] == paid["transaction_id"]
        with pytest.raises(InvalidSignatureException):
            pay.parse_payment_result(got["body"].replace(b"<total_fee>300", b"<total_fee>1"))
    else:
        assert fields["sign_type"] == "HMAC-SHA256"
        with pytest.raises(InvalidSignatureException):  # wechatpy 1.8.18 only verifies MD5
            pay.parse_payment_result(got["body"])
    queried = pay.order.query(transaction_id=paid["transaction_id"])
    assert queried["trade_state"] == "SUCCESS" and queried["out_trade_no"] == no


def test_refund_and_refund_notification(sandbox, merchants, receiver, kind, tmp_path):
    creds = merchants[kind]
    # wechatpy always passes mch_cert/mch_key to requests for refunds; over plain http they are
    # unused
    # but must exist as files.
    cert, key = tmp_path / "apiclient_cert.pem", tmp_path / "apiclient_key.pem"
    cert.write_text(creds["platform_certificate_pem"])
    key.write_text(creds["merchant_private_key_pem"])
    pay = v2_client(sandbox.url, creds, mch_cert=str(cert), mch_key=str(key))
    no, _ = create_order(pay, sandbox, kind, receiver.new_url("v2"), total=500)
    paid = pay_v2(sandbox, creds, no)
    refund_url, out_refund_no = receiver.new_url("v2"), new_no("R")
    applied = pay.refund.apply(
        total_fee=500,
        refund_fee=200,
        out_refund_no=out_refund_no,
        out_trade_no=no,
        notify_url=refund_url,
    )
    assert applied["refund_fee"] == "200" and applied["transaction_id"] == paid["transaction_id"]
    with pytest.raises(WeChatPayException):
        pay.refund.apply(total_fee=500, refund_fee=301, out_refund_no=new_no("R"), out_trade_no=no)
    queried = pay.refund.query(out_refund_no=out_refund_no)
    assert (
        queried["refund_status_0"] == "PROCESSING"
        and queried["refund_id_0"] == applied["refund_id"]
    )
    done = sandbox.control(
        "POST",
        f"/sandbox/refunds/{creds['mch_id']}/{out_refund_no}/complete",
        {"status": "SUCCESS"},
    )
    assert done.json()["deliveries"][0]["status"] == 200
    [got] = receiver.received(refund_url)
    parsed = pay.parse_refund_notify_result(got["body"])
    assert parsed["refund_status"] == "SUCCESS" and parsed["out_refund_no"] == out_refund_no
    assert parsed["refund_fee"] == 200 and parsed["total_fee"] == 500
    assert _decrypt_req_info(got["body"], creds["api_key"])["refund_id"] == applied["refund_id"]
    assert pay.refund.query(out_trade_no=no)["refund_status_0"] == "SUCCESS"


def test_hmac_merchant_default_applies_when_the_request_names_no_sign_type(
    sandbox, merchants, receiver
):
    creds = merchants["v2_hmac"]
    pay, url = v2_client(sandbox.url, creds), receiver.new_url("v2")
    no, _ = create_order(pay, sandbox, "v2_md5", url)  # wechatpy signs MD5, no sign_type field
    queried = pay.order.query(out_trade_no=no)
    assert independent_v2_check(queried, creds["api_key"], "HMAC-SHA256")
    pay_v2(sandbox, creds, no)
    [got] = receiver.received(url)
    fields = xmltodict.parse(got["body"])["xml"]
    assert fields["sign_type"] == "HMAC-SHA256" and independent_v2_check(fields, creds["api_key"])


def _decrypt_req_info(xml, api_key):
    """Independent of wechatpy: AES-256-ECB with key md5(api_key) hex, PKCS#7."""
    req_info = base64.b64decode(xmltodict.parse(xml)["xml"]["req_info"])
    key = hashlib.md5(api_key.encode()).hexdigest().encode()
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    plain = unpadder.update(decryptor.update(req_info) + decryptor.finalize()) + unpadder.finalize()
    return xmltodict.parse(plain)["root"]


def test_garbage_xml_is_a_transport_failure(sandbox):
    resp = requests.post(sandbox.url + "/pay/unifiedorder", data=b"not xml")
    fields = xmltodict.parse(resp.text)["xml"]
    assert fields["return_code"] == "FAIL"
