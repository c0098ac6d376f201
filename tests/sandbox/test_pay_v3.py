"""APIv3 gateway through wechatpayv3, in public-key mode and in platform-certificate mode."""

from __future__ import annotations

import json

import pytest
import requests
from wechatpayv3.type import RequestType
from wechatpayv3.utils import build_authorization, load_private_key, rsa_encrypt

from app.wechat_sandbox.keys import public_key_pem

from .helpers import new_no, v3_client

MODES = ["v3_public_key", "v3_certificate"]


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def wxpay(sandbox, merchants, receiver, mode, tmp_path):
    return v3_client(sandbox.url, merchants[mode], receiver.new_url(), cert_dir=tmp_path / "certs")


def openid_of(sandbox, user="payer"):
    return requests.get(sandbox.url + "/sandbox/openid", params={"user": user}).json()["openid"]


def prepay(wxpay, sandbox, out_trade_no, total=100, **kwargs):
    return wxpay.pay(
        description="分销商品",
        out_trade_no=out_trade_no,
        amount={"total": total},
        payer={"openid": openid_of(sandbox)},
        **kwargs,
    )


def paid_order(wxpay, sandbox, merchants, mode, total=100):
    no = new_no()
    assert prepay(wxpay, sandbox, no, total)[0] == 200
    paid = sandbox.control("POST", f"/sandbox/pay/{merchants[mode]['mch_id']}/{no}").json()
    return no, paid["transaction_id"]


def test_prepay_query_and_close(wxpay, sandbox, mode):
    no = new_no()
    code, text = prepay(wxpay, sandbox, no, total=1234, attach="a1")
    assert code == 200
    prepay_id = json.loads(text)["prepay_id"]
    assert prepay_id.startswith("wx")
    assert prepay(wxpay, sandbox, no, total=1234, attach="a1") == (
        200,
        text,
    )  # same request, same prepay_id
    code, text = wxpay.query(out_trade_no=no)
    order = json.loads(text)
    assert code == 200 and order["trade_state"] == "NOTPAY" and order["amount"]["total"] == 1234
    assert order["attach"] == "a1" and "transaction_id" not in order
    assert wxpay.close(no)[0] == 204
    assert json.loads(wxpay.query(out_trade_no=no)[1])["trade_state"] == "CLOSED"


def test_duplicate_out_trade_no_with_other_content_is_rejected(wxpay, sandbox):
    no = new_no()
    prepay(wxpay, sandbox, no, total=100)
    code, text = prepay(wxpay, sandbox, no, total=200)
    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "change, message_part",
    [
        ({"out_trade_no": "x" * 33}, "out_trade_no"),
        ({"amount": {"total": 0}}, "amount"),
        ({"notify_url": "https://example.com/notify?x=1"}, "notify_url"),
    ],
)
def test_prepay_validation(wxpay, sandbox, change, message_part):
    kwargs = {
        "description": "d",
        "out_trade_no": new_no(),
        "amount": {"total": 1},
        "payer": {"openid": openid_of(sandbox)},
    } | change
    code, text = wxpay.pay(**kwargs)
    assert code == 400 and message_part in json.loads(text)["message"]


def test_unknown_order_is_404(wxpay):
    code, text = wxpay.query(out_trade_no=new_no())
    assert code == 404 and json.loads(text)["code"] == "ORDER_NOT_EXIST"


def test_paid_order_query_by_both_ids(wxpay, sandbox, merchants, mode):
    no, transaction_id = paid_order(wxpay, sandbox, merchants, mode, total=990)
    assert len(transaction_id) == 28 and transaction_id.isdigit()
    by_no = json.loads(wxpay.query(out_trade_no=no)[1])
    by_id = json.loads(wxpay.query(transaction_id=transaction_id)[1])
    assert by_no == by_id
    assert by_no["trade_state"] == "SUCCESS" and by_no["transaction_id"] == transaction_id
    assert by_no["amount"] == {
        "total": 990,
        "payer_total": 990,
        "currency": "CNY",
        "payer_currency": "CNY",
    }
    assert by_no["payer"] == {"openid": openid_of(sandbox)} and by_no["success_time"].endswith(
        "+08:00"
    )
    assert wxpay.close(no)[0] == 400  # paid orders cannot be closed


def test_refunds_are_bounded_and_idempotent(wxpay, sandbox, merchants, mode):
    no, transaction_id = paid_order(wxpay, sandbox, merchants, mode, total=1000)
    first = new_no("R")
    code, text = wxpay.refund(
        out_refund_no=first,
        amount={"refund": 600, "total": 1000, "currency": "CNY"},
        out_trade_no=no,
        notify_url="http://127.0.0.1:9/refund",
    )
    refund = json.loads(text)
    assert code == 200 and refund["status"] == "PROCESSING" and refund["amount"]["refund"] == 600
    again = wxpay.refund(
        out_refund_no=first,
        amount={"refund": 600, "total": 1000, "currency": "CNY"},
        transaction_id=transaction_id,
    )
    assert json.loads(again[1])["refund_id"] == refund["refund_id"]
    code, text = wxpay.refund(
        out_refund_no=new_no("R"),
        amount={"refund": 401, "total": 1000, "currency": "CNY"},
        out_trade_no=no,
    )
    assert code == 400 and json.loads(text)["code"] == "INVALID_REQUEST"
    assert (
        wxpay.refund(
            out_refund_no=new_no("R"),
            amount={"refund": 400, "total": 1000, "currency": "CNY"},
            out_trade_no=no,
        )[0]
        == 200
    )
    queried = json.loads(wxpay.query_refund(first)[1])
    assert queried["out_refund_no"] == first and queried["out_trade_no"] == no
    assert json.loads(wxpay.query(out_trade_no=no)[1])["trade_state"] == "REFUND"


def test_refund_of_unpaid_or_unknown_order_fails(wxpay, sandbox):
    no = new_no()
    prepay(wxpay, sandbox, no)
    unpaid = wxpay.refund(
        out_refund_no=new_no("R"),
        amount={"refund": 1, "total": 100, "currency": "CNY"},
        out_trade_no=no,
    )
    unknown = wxpay.refund(
        out_refund_no=new_no("R"),
        amount={"refund": 1, "total": 100, "currency": "CNY"},
        out_trade_no=new_no(),
    )
    assert unpaid[0] == 400 and unknown[0] == 404


def test_bad_signature_is_rejected(sandbox, merchants):
    creds = merchants["v3_public_key"]
    path = f"/v3/pay/transactions/out-trade-no/{new_no()}?mchid={creds['mch_id']}"
    other_key = load_private_key(merchants["v3_certificate"]["merchant_private_key_pem"])
    auth = build_authorization(path, "GET", creds["mch_id"], creds["merchant_serial_no"], other_key)
    resp = requests.get(
        sandbox.url + path, headers={"Authorization": auth, "Accept": "application/json"}
    )
    assert resp.status_code == 401 and resp.json()["code"] == "SIGN_ERROR"
    own_key = load_private_key(creds["merchant_private_key_pem"])
    tampered = build_authorization(
        path + "x", "GET", creds["mch_id"], creds["merchant_serial_no"], own_key
    )
    resp = requests.get(sandbox.url + path, headers={"Authorization": tampered})
    assert resp.status_code == 401 and resp.json()["code"] == "SIGN_ERROR"
    no_auth = requests.get(sandbox.url + path)
    assert no_auth.status_code == 401


def signed_get(sandbox, creds, path):
    key = load_private_key(creds["merchant_private_key_pem"])
    auth = build_authorization(path, "GET", creds["mch_id"], creds["merchant_serial_no"], key)
    return requests.get(sandbox.url + path, headers={"Authorization": auth})


@pytest.mark.parametrize(
    "mode, serial_field",
    [
        ("v3_public_key", "wechatpay_public_key_id"),
        ("v3_certificate", "platform_certificate_serial_no"),
    ],
)
def test_response_serial_follows_the_key_mode(sandbox, merchants, mode, serial_field):
    creds = merchants[mode]
    resp = signed_get(
        sandbox, creds, f"/v3/pay/transactions/out-trade-no/{new_no()}?mchid={creds['mch_id']}"
    )
    assert resp.status_code == 404
    assert resp.headers["Wechatpay-Serial"] == creds[serial_field]
    assert resp.headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert resp.headers["Request-ID"]


def test_public_key_and_certificate_are_different_keys(sandbox, merchants, receiver):
    """Like WeChat, the public key (PUB_KEY_ID_) and the platform certificate are separate keys:
    a client holding the certificate's key under the public key id must reject the response."""
    from cryptography import x509

    creds = dict(merchants["v3_public_key"])
    cert = x509.load_pem_x509_certificate(creds["platform_certificate_pem"].encode())
    creds["wechatpay_public_key_pem"] = public_key_pem(cert.public_key())
    wrong = v3_client(sandbox.url, creds, receiver.new_url())
    with pytest.raises(Exception, match="failed to verify the signature"):
        prepay(wrong, sandbox, new_no())


def test_certificate_download(sandbox, merchants, receiver, tmp_path):
    wxpay = v3_client(
        sandbox.url, merchants["v3_certificate"], receiver.new_url(), cert_dir=tmp_path / "seed"
    )
    core = wxpay._core
    core._certificates.clear()
    core._cert_dir = str(tmp_path / "downloaded") + "/"
    core._update_certificates()  # GET /v3/certificates, AES-GCM decrypted with the APIv3 key
    serial = merchants["v3_certificate"]["platform_certificate_serial_no"]
    assert [format(c.serial_number, "X") for c in core._certificates] == [serial]
    assert (
        (tmp_path / "downloaded" / f"{serial}.pem")
        .read_text()
        .startswith("-----BEGIN CERTIFICATE-----")
    )
    # Public-key merchants have no platform certificate, as on WeChat.
    pub = v3_client(sandbox.url, merchants["v3_public_key"], receiver.new_url())
    assert pub._core.request("/v3/certificates", skip_verify=True)[0] == 500


TRANSFER_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
REPORT_INFOS = [
    {"info_type": "岗位类型", "info_content": "分销员"},
    {"info_type": "报酬说明", "info_content": "推广佣金"},
]


def transfer(wxpay, out_bill_no, amount=1000, **kwargs):
    params = dict(
        out_bill_no=out_bill_no,
        transfer_scene_id="1005",
        openid="oTestOpenid",
        transfer_amount=amount,
        transfer_remark="1月佣金",
        transfer_scene_report_infos=REPORT_INFOS,
    )
    params.update(kwargs)
    return wxpay.mch_transfer_bills(**params)


def test_transfer_bills(wxpay):
    no = new_no("B")
    code, text = transfer(wxpay, no)
    bill = json.loads(text)
    assert code == 200 and bill["state"] == "WAIT_USER_CONFIRM" and bill["package_info"]
    assert bill["out_bill_no"] == no and bill["create_time"].endswith("+08:00")
    assert json.loads(transfer(wxpay, no)[1]) == bill  # idempotent on out_bill_no
    assert transfer(wxpay, no, amount=999)[0] == 400
    by_no = json.loads(wxpay.mch_transfer_bills_query(out_bill_no=no)[1])
    by_bill = json.loads(
        wxpay.mch_transfer_bills_query(transfer_bill_no=bill["transfer_bill_no"])[1]
    )
    assert (
        by_no == by_bill
        and by_no["transfer_amount"] == 1000
        and by_no["state"] == "WAIT_USER_CONFIRM"
    )
    code, text = wxpay.mch_transfer_bills_cancel(no)
    assert code == 200 and json.loads(text)["state"] == "CANCELING"
    assert json.loads(wxpay.mch_transfer_bills_query(out_bill_no=no)[1])["state"] == "CANCELLED"
    assert wxpay.mch_transfer_bills_query(out_bill_no=new_no("B"))[0] == 404


def test_transfer_with_encrypted_user_name(wxpay, sandbox, merchants, mode):
    no = new_no("B")
    code, text = transfer(wxpay, no, amount=200000, user_name="张三")
    assert code == 200, text
    assert json.loads(text)["state"] == "WAIT_USER_CONFIRM"
    # The sandbox really decrypts: a name encrypted for some other key is refused.
    other_key = load_private_key(merchants[mode]["merchant_private_key_pem"]).public_key()
    params = {
        "appid": wxpay._appid,
        "out_bill_no": new_no("B"),
        "transfer_scene_id": "1005",
        "openid": "o1",
        "transfer_amount": 200000,
        "transfer_remark": "r",
        "user_name": rsa_encrypt("张三", other_key),
        "transfer_scene_report_infos": REPORT_INFOS,
    }
    code, text = wxpay._core.request(
        TRANSFER_PATH, method=RequestType.POST, data=params, cipher_data=True
    )
    assert code == 400 and "解密" in json.loads(text)["message"]


def test_transfer_validation(wxpay):
    no_infos = transfer(
        wxpay,
        new_no("B"),
        transfer_scene_report_infos=[
            {"info_type": "活动名称", "info_content": "x"},
            {"info_type": "奖励说明", "info_content": "y"},
        ],
    )
    assert no_infos[0] == 400 and "报备" in json.loads(no_infos[1])["message"]
    bad_no = transfer(wxpay, "bad-no_with_symbols")
    assert bad_no[0] == 400
    big_without_name = wxpay._core.request(
        TRANSFER_PATH,
        method=RequestType.POST,
        data={
            "appid": wxpay._appid,
            "out_bill_no": new_no("B"),
            "transfer_scene_id": "1005",
            "openid": "o1",
            "transfer_amount": 200000,
            "transfer_remark": "r",
            "transfer_scene_report_infos": REPORT_INFOS,
        },
    )
    assert big_without_name[0] == 400 and "user_name" in json.loads(big_without_name[1])["message"]
