"""v3 notifications: what the sandbox POSTs must pass wechatpayv3's own callback() verification."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .helpers import new_no, v3_client
from .test_pay_v3 import REPORT_INFOS, openid_of, transfer


@pytest.fixture(params=["v3_public_key", "v3_certificate"])
def setup(request, sandbox, merchants, receiver, tmp_path):
    creds = merchants[request.param]
    url = receiver.new_url()
    return creds, url, v3_client(sandbox.url, creds, url, cert_dir=tmp_path / "certs")


def pay_order(sandbox, wxpay, creds, total=500, **control):
    no = new_no()
    code, _ = wxpay.pay(
        description="商品",
        out_trade_no=no,
        amount={"total": total},
        payer={"openid": openid_of(sandbox)},
    )
    assert code == 200
    resp = sandbox.control("POST", f"/sandbox/pay/{creds['mch_id']}/{no}", control)
    assert resp.status_code == 200, resp.text
    return no, resp.json()


def test_payment_notification_passes_wechatpayv3_callback(sandbox, receiver, setup):
    creds, url, wxpay = setup
    no, paid = pay_order(sandbox, wxpay, creds, total=500)
    assert [d["status"] for d in paid["deliveries"]] == [204]
    [got] = receiver.received(url)
    assert got["headers"]["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert got["headers"]["Content-Type"] == "application/json"
    result = wxpay.callback(got["headers"], got["body"])
    assert result is not None, "wechatpayv3 rejected the notification"
    assert (
        result["event_type"] == "TRANSACTION.SUCCESS"
        and result["resource_type"] == "encrypt-resource"
    )
    assert result["resource"]["out_trade_no"] == no
    assert result["resource"]["transaction_id"] == paid["transaction_id"]
    assert result["resource"]["trade_state"] == "SUCCESS"
    assert result["resource"]["amount"] == {
        "total": 500,
        "payer_total": 500,
        "currency": "CNY",
        "payer_currency": "CNY",
    }
    # The decrypted resource is exactly what a query returns.
    assert result["resource"] == json.loads(wxpay.query(out_trade_no=no)[1])
    raw = json.loads(got["body"])["resource"]
    assert raw["associated_data"] == raw["original_type"] == "transaction"


def test_tampered_notification_fails_verification(sandbox, receiver, setup):
    creds, url, wxpay = setup
    pay_order(sandbox, wxpay, creds, total=500)
    [got] = receiver.received(url)
    assert wxpay.callback(got["headers"], got["body"]) is not None
    tampered = got["body"].replace(
        b'"event_type":"TRANSACTION.SUCCESS"', b'"event_type":"TRANSACTION.SUCCESS "'
    )
    assert tampered != got["body"]
    assert wxpay.callback(got["headers"], tampered) is None
    other_headers = dict(
        got["headers"],
        **{"Wechatpay-Timestamp": str(int(got["headers"]["Wechatpay-Timestamp"]) + 1)},
    )
    assert wxpay.callback(other_headers, got["body"]) is None


def test_concurrent_copies_share_one_id(sandbox, receiver, merchants):
    creds = merchants["v3_public_key"]
    url = receiver.new_url("slow")
    wxpay = v3_client(sandbox.url, creds, url)
    receiver.max_in_flight = 0
    _, paid = pay_order(sandbox, wxpay, creds, copies=5, concurrent=True)
    assert [d["status"] for d in paid["deliveries"]] == [204] * 5
    got = receiver.received(url)
    assert len(got) == 5
    assert len({json.loads(g["body"])["id"] for g in got}) == 1
    assert len({g["headers"]["Wechatpay-Nonce"] for g in got}) == 5  # freshly signed each time
    assert all(wxpay.callback(g["headers"], g["body"]) for g in got)
    assert receiver.max_in_flight >= 2, "copies were not delivered concurrently"


def test_resend_and_notification_log(sandbox, receiver, setup):
    creds, url, wxpay = setup
    no, paid = pay_order(sandbox, wxpay, creds)
    notes = sandbox.control("GET", f"/sandbox/notifications?mch_id={creds['mch_id']}").json()[
        "notifications"
    ]
    [note] = [n for n in notes if n["id"] == paid["notification_id"]]
    assert note["event_type"] == "TRANSACTION.SUCCESS" and note["resource"]["out_trade_no"] == no
    assert note["url"] == url and len(note["deliveries"]) == 1
    resent = sandbox.control("POST", f"/sandbox/notifications/{note['id']}/resend").json()
    assert [d["status"] for d in resent["deliveries"]] == [204]
    first, second = receiver.received(url)
    assert first["body"] == second["body"]
    assert wxpay.callback(second["headers"], second["body"])["id"] == note["id"]
    again = sandbox.control("POST", f"/sandbox/pay/{creds['mch_id']}/{no}")
    assert again.status_code == 409


def test_failed_delivery_is_recorded(sandbox, receiver, merchants):
    creds = merchants["v3_public_key"]
    url = receiver.new_url("fail")
    wxpay = v3_client(sandbox.url, creds, url)
    _, paid = pay_order(sandbox, wxpay, creds)
    assert paid["deliveries"][0]["status"] == 500 and '"FAIL"' in paid["deliveries"][0]["body"]


def test_payer_total_override_for_mismatch_tests(sandbox, receiver, setup):
    creds, url, wxpay = setup
    pay_order(sandbox, wxpay, creds, total=500, payer_total_fen=1, total_fen=499)
    [got] = receiver.received(url)
    amount = wxpay.callback(got["headers"], got["body"])["resource"]["amount"]
    assert amount["payer_total"] == 1 and amount["total"] == 499


@pytest.mark.parametrize(
    "status, event",
    [("SUCCESS", "REFUND.SUCCESS"), ("ABNORMAL", "REFUND.ABNORMAL"), ("CLOSED", "REFUND.CLOSED")],
)
def test_refund_notifications(sandbox, receiver, setup, status, event):
    creds, _, wxpay = setup
    no, paid = pay_order(sandbox, wxpay, creds, total=800)
    refund_url, out_refund_no = receiver.new_url(), new_no("R")
    code, _ = wxpay.refund(
        out_refund_no=out_refund_no,
        amount={"refund": 300, "total": 800, "currency": "CNY"},
        out_trade_no=no,
        notify_url=refund_url,
    )
    assert code == 200
    done = sandbox.control(
        "POST", f"/sandbox/refunds/{creds['mch_id']}/{out_refund_no}/complete", {"status": status}
    ).json()
    assert done["status"] == status
    [got] = receiver.received(refund_url)
    body = json.loads(got["body"])
    assert body["resource"]["associated_data"] == "refund"
    # Decrypt independently with AES-256-GCM and AAD "refund" (not through the library).
    plain = AESGCM(creds["apiv3_key"].encode()).decrypt(
        body["resource"]["nonce"].encode(),
        base64.b64decode(body["resource"]["ciphertext"]),
        b"refund",
    )
    resource = json.loads(plain)
    assert resource["refund_status"] == status and resource["out_refund_no"] == out_refund_no
    assert (
        resource["transaction_id"] == paid["transaction_id"] and resource["amount"]["refund"] == 300
    )
    assert ("success_time" in resource) == (status == "SUCCESS")
    result = wxpay.callback(got["headers"], got["body"])
    assert result["event_type"] == event and result["resource"] == resource
    assert json.loads(wxpay.query_refund(out_refund_no)[1])["status"] == status


def test_closed_refund_frees_the_amount(sandbox, setup):
    creds, _, wxpay = setup
    no, _ = pay_order(sandbox, wxpay, creds, total=100)
    first = new_no("R")
    wxpay.refund(
        out_refund_no=first,
        amount={"refund": 100, "total": 100, "currency": "CNY"},
        out_trade_no=no,
    )
    assert (
        wxpay.refund(
            out_refund_no=new_no("R"),
            amount={"refund": 1, "total": 100, "currency": "CNY"},
            out_trade_no=no,
        )[0]
        == 400
    )
    sandbox.control(
        "POST", f"/sandbox/refunds/{creds['mch_id']}/{first}/complete", {"status": "CLOSED"}
    )
    assert (
        wxpay.refund(
            out_refund_no=new_no("R"),
            amount={"refund": 100, "total": 100, "currency": "CNY"},
            out_trade_no=no,
        )[0]
        == 200
    )


@pytest.mark.parametrize(
    "action, state, fail_reason",
    [
        ("confirm", "SUCCESS", None),
        ("reject", "FAIL", "PAYEE_ACCOUNT_ABNORMAL"),
        ("expire", "CANCELLED", None),
    ],
)
def test_transfer_finished_notifications(sandbox, receiver, setup, action, state, fail_reason):
    creds, _, wxpay = setup
    url, no = receiver.new_url(), new_no("B")
    code, text = transfer(wxpay, no, amount=1500, notify_url=url)
    assert code == 200
    done = sandbox.control("POST", f"/sandbox/transfers/{creds['mch_id']}/{no}/{action}").json()
    assert done["state"] == state
    [got] = receiver.received(url)
    result = wxpay.callback(got["headers"], got["body"])
    assert result["event_type"] == "MCHTRANSFER.BILL.FINISHED"
    assert json.loads(got["body"])["resource"]["associated_data"] == "mch_payment"
    resource = result["resource"]
    assert (
        resource["state"] == state
        and resource["out_bill_no"] == no
        and resource["transfer_amount"] == 1500
    )
    assert resource["transfer_bill_no"] == json.loads(text)["transfer_bill_no"]
    assert resource.get("fail_reason") == fail_reason
    assert json.loads(wxpay.mch_transfer_bills_query(out_bill_no=no)[1])["state"] == state
    assert (
        sandbox.control("POST", f"/sandbox/transfers/{creds['mch_id']}/{no}/confirm").status_code
        == 409
    )


def test_cancelled_transfer_is_notified_asynchronously(sandbox, receiver, setup):
    creds, _, wxpay = setup
    url, no = receiver.new_url(), new_no("B")
    transfer(wxpay, no, notify_url=url, transfer_scene_report_infos=REPORT_INFOS)
    assert json.loads(wxpay.mch_transfer_bills_cancel(no)[1])["state"] == "CANCELING"
    [got] = receiver.wait_for(url)
    assert wxpay.callback(got["headers"], got["body"])["resource"]["state"] == "CANCELLED"
