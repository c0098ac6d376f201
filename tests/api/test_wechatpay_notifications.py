"""WeChat Pay notifications that fail a check change nothing (API.md, WeChat callbacks).

Every rejection is sent through the in-process test client to the real webhook routes, and each
test asserts the reply WeChat gets (v3: 4xx with ``{"code": "FAIL", "message": reason}``; v2:
FAIL XML with HTTP 200), that the order, its refunds, the ledger, the commissions and the
wallets are exactly as before, that the rejection was logged with its reason, and that WeChat's
genuine notification still applies afterwards. Repeats of a valid notification succeed without
effect. Notifications with a chosen content but a genuine signature come from the sandbox's
``/sandbox/notifications/custom``.
"""

from __future__ import annotations

import base64
import logging
import secrets

import pytest
import xmltodict
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, select
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from tests.api.conftest import ADDRESS
from tests.support.wechatpay import complete_refund, control, deliver, pay, signed

V3_MODES = [("v3_public_key", "MD5"), ("v3_certificate", "MD5")]
V2_MODES = [("v2", "MD5"), ("v2", "HMAC-SHA256")]
ALL_MODES = V3_MODES + V2_MODES
LOGGER = "fenxiao.webhooks"
ANOTHER_APPID = "wx0123456789abcdef"
ANOTHER_MCH_ID = "1900000109"


# -- helpers ----------------------------------------------------------------------------------

def place_order(client, shop, chain, product) -> dict:
    """An order offered for payment (prepaid), not yet paid."""
    response = client.post(f"/api/mp/v1/merchants/{shop.id}/orders",
                           headers=chain["carol"]["headers"],
                           json={"items": [{"product_id": product["id"], "quantity": 1}],
                                 "address": ADDRESS})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def state(client, shop, chain, order: dict) -> dict:
    """Everything a notification could change: the order, its refunds, the ledger, the
    commissions and the distributors' wallets."""
    from app.extensions import db
    from app.models import (
        Commission,
        Journal,
        LedgerAccount,
        LedgerEntry,
        Order,
        Refund,
        WalletOutbox,
    )

    db.session.rollback()  # read what is committed now, not what this session cached

    def count(model) -> int:
        return db.session.scalar(select(func.count()).select_from(model)
                                 .where(model.merchant_id == shop.id))

    row = db.session.get(Order, (shop.id, order["id"]))
    snapshot = {
        "status": row.status, "transaction_id": row.transaction_id,
        "refunded_fen": row.refunded_fen,
        "refunds": [(r.out_refund_no, r.status) for r in db.session.scalars(
            select(Refund).where(Refund.merchant_id == shop.id, Refund.order_id == row.id)
            .order_by(Refund.id))],
        "journals": count(Journal), "entries": count(LedgerEntry),
        "commissions": count(Commission), "outbox": count(WalletOutbox),
        "balances": sorted(tuple(row) for row in db.session.execute(
            select(LedgerAccount.owner_id, LedgerAccount.kind, LedgerAccount.balance_fen)
            .where(LedgerAccount.merchant_id == shop.id))),
        "wallets": {name: client.get(f"/api/mp/v1/merchants/{shop.id}/wallet",
                                     headers=chain[name]["headers"]).get_json()
                    for name in ("alice", "bob")},
    }
    db.session.rollback()
    return snapshot


def v2_reply(response) -> dict:
    return xmltodict.parse(response.get_data())["xml"]


def assert_accepted(response, mode: str) -> None:
    if mode.startswith("v3"):
        assert response.status_code == 204, response.get_data(as_text=True)
    else:
        assert response.status_code == 200
        assert v2_reply(response) == {"return_code": "SUCCESS", "return_msg": "OK"}


def assert_rejected(response, mode: str, reason: str, caplog) -> None:
    """The failure reply WeChat retries on, and one log line carrying the reason."""
    if mode.startswith("v3"):
        assert 400 <= response.status_code < 500, response.get_data(as_text=True)
        assert response.get_json() == {"code": "FAIL", "message": reason}
    else:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert v2_reply(response) == {"return_code": "FAIL", "return_msg": reason}
    logged = [r for r in caplog.records if r.name == LOGGER and hasattr(r, "reason")]
    assert [(r.levelno, r.reason) for r in logged] == [(logging.WARNING, reason)]
    caplog.clear()


def webhook_path(shop, mode: str, kind: str = "payment") -> str:
    if mode.startswith("v3"):
        return f"/webhooks/wechatpay/v3/{shop.id}"
    return f"/webhooks/wechatpay/v2/{shop.id}/{kind}"


def post(client, path: str, headers: dict, body: bytes):
    return client.post(path, data=body, headers=headers)


def custom(sandbox_url: str, shop, account: dict, **content) -> str:
    """A notification with the given content, signed (and encrypted) by the sandbox exactly as
    WeChat would for ``account``: for checks a forger could never reach. Returns its id."""
    url = "http://wechat-callback.invalid" + webhook_path(shop, account["mode"])
    answer = control(sandbox_url, "POST", "/sandbox/notifications/custom",
                     {"mch_id": account["mch_id"], "url": url, **content})
    return answer["notification_id"]


def custom_payment(sandbox_url: str, shop, account: dict, order: dict, *,
                   appid: str | None = None, mch_id: str | None = None,
                   total_fen: int | None = None, out_trade_no: str | None = None,
                   transaction_id: str | None = None) -> str:
    """A payment notification for ``order`` as WeChat would word it, with one detail changed."""
    appid, mch_id = appid or account["appid"], mch_id or account["mch_id"]
    total = order["paid_fen"] if total_fen is None else total_fen
    out_trade_no = out_trade_no or order["out_trade_no"]
    transaction_id = transaction_id or "42000" + "".join(secrets.choice("0123456789")
                                                       for _ in range(23))
    if account["mode"] == "v2":
        return custom(sandbox_url, shop, account, fields={
            "return_code": "SUCCESS", "result_code": "SUCCESS", "appid": appid,
            "mch_id": mch_id, "openid": "oSandboxPayer", "is_subscribe": "N",
            "trade_type": "JSAPI", "bank_type": "OTHERS", "total_fee": total, "cash_fee": total,
            "fee_type": "CNY", "transaction_id": transaction_id, "out_trade_no": out_trade_no,
            "time_end": "20240101120000"})
    return custom(sandbox_url, shop, account, event_type="TRANSACTION.SUCCESS", resource={
        "appid": appid, "mchid": mch_id, "out_trade_no": out_trade_no,
        "transaction_id": transaction_id, "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS",
        "success_time": "2024-01-01T12:00:00+08:00", "payer": {"openid": "oSandboxPayer"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY",
                   "payer_currency": "CNY"}})


def genuine_payment_applies(client, sandbox_url, shop, chain, account, order,
                            notification_id: str | None = None) -> None:
    """WeChat's own notification (sent now, or the one given) still pays the order."""
    if notification_id is None:
        notification_id = pay(sandbox_url, account["mch_id"], order["out_trade_no"])[
            "notification_id"]
    assert_accepted(deliver(client, sandbox_url, notification_id), account["mode"])
    after = state(client, shop, chain, order)
    assert after["status"] == "paid" and after["transaction_id"]
    assert after["commissions"] == 2  # bob's tier 1 and alice's tier 2


@pytest.fixture
def setup(client, shop, chain, pay_account, add_product):
    """(account, order, state before): a configured account and an order awaiting payment."""
    def _setup(mode: str, sign_type: str = "MD5"):
        account = pay_account(mode, sign_type)
        order = place_order(client, shop, chain, add_product(price_fen=10_000))
        return account, order, state(client, shop, chain, order)
    return _setup


# -- signatures: v3 ---------------------------------------------------------------------------

def flip_one_character(signature: str) -> str:
    position = len(signature) // 2
    replacement = "A" if signature[position] != "A" else "B"
    return signature[:position] + replacement + signature[position + 1:]


def signed_by_a_stranger(headers: dict, body: bytes) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode()
    return base64.b64encode(key.sign(message + body + b"\n", padding.PKCS1v15(),
                                     hashes.SHA256())).decode()


@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
@pytest.mark.parametrize("forgery", ["one_character_changed", "another_rsa_key"])
def test_a_forged_v3_signature_changes_nothing(client, shop, chain, setup, sandbox_url, caplog,
                                               mode, sign_type, forgery):
    account, order, before = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    path, headers, body = signed(sandbox_url, paid["notification_id"])
    headers["Wechatpay-Signature"] = (flip_one_character(headers["Wechatpay-Signature"])
                                      if forgery == "one_character_changed"
                                      else signed_by_a_stranger(headers, body))
    assert_rejected(post(client, path, headers, body), mode, "bad_signature", caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order,
                            paid["notification_id"])


@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
def test_a_valid_v3_signature_over_another_body_changes_nothing(
        client, shop, chain, setup, add_product, sandbox_url, caplog, mode, sign_type):
    account, first, before = setup(mode, sign_type)
    second = place_order(client, shop, chain, add_product(price_fen=20_000))
    second_before = state(client, shop, chain, second)
    paid_first = pay(sandbox_url, account["mch_id"], first["out_trade_no"])
    paid_second = pay(sandbox_url, account["mch_id"], second["out_trade_no"])
    path, first_headers, _ = signed(sandbox_url, paid_first["notification_id"])
    _, _, second_body = signed(sandbox_url, paid_second["notification_id"])
    assert_rejected(post(client, path, first_headers, second_body), mode, "bad_signature",
                    caplog)
    assert state(client, shop, chain, first) == before
    assert state(client, shop, chain, second) == second_before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, first,
                            paid_first["notification_id"])


@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
@pytest.mark.parametrize("shift_seconds", [-360, 360])
def test_a_v3_timestamp_more_than_five_minutes_away_changes_nothing(
        client, shop, chain, setup, sandbox_url, caplog, mode, sign_type, shift_seconds):
    account, order, before = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    path, headers, body = signed(sandbox_url, paid["notification_id"])
    headers["Wechatpay-Timestamp"] = str(int(headers["Wechatpay-Timestamp"]) + shift_seconds)
    assert_rejected(post(client, path, headers, body), mode, "timestamp_outside_window", caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order,
                            paid["notification_id"])


@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
def test_a_genuine_v3_notification_is_refused_once_its_timestamp_is_six_minutes_old(
        shop, setup, sandbox_url, mode, sign_type):
    """The window is checked on its own: the very copy that verifies inside the window is a
    replay six minutes later, though its signature is still good."""
    from app.clients import pay_config
    from app.integrations.wechatpay import PayRejected

    account, order, _ = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    _, headers, body = signed(sandbox_url, paid["notification_id"])
    gateway = pay_config().gateway(shop.id)
    sent_at = int(headers["Wechatpay-Timestamp"])
    note = gateway.parse_notification(headers, body, now=sent_at + 299)
    assert note.payment.out_trade_no == order["out_trade_no"]
    with pytest.raises(PayRejected) as refused:
        gateway.parse_notification(headers, body, now=sent_at + 360)
    assert refused.value.reason == "timestamp_outside_window"


@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
def test_a_v3_signtest_probe_changes_nothing(client, shop, chain, setup, sandbox_url, caplog,
                                             mode, sign_type):
    account, order, before = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    path, headers, body = signed(sandbox_url, paid["notification_id"])
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    assert_rejected(post(client, path, headers, body), mode, "signature_test_probe", caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order,
                            paid["notification_id"])


@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
def test_a_v3_serial_the_merchant_did_not_configure_changes_nothing(
        client, shop, chain, setup, sandbox_url, caplog, mode, sign_type):
    """A public-key merchant knows no certificate serial, a certificate merchant no public key
    id: the serial picks the key, and an unknown one is refused before any verification."""
    account, order, before = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    path, headers, body = signed(sandbox_url, paid["notification_id"])
    expected, other = ((account["platform_certificate_serial_no"],
                        account["wechatpay_public_key_id"]) if mode == "v3_certificate" else
                       (account["wechatpay_public_key_id"],
                        account["platform_certificate_serial_no"]))
    assert headers["Wechatpay-Serial"] == expected
    headers["Wechatpay-Serial"] = other
    assert_rejected(post(client, path, headers, body), mode, "unknown_serial", caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order,
                            paid["notification_id"])


@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
def test_a_v3_notification_from_a_sandbox_merchant_of_the_other_key_mode_changes_nothing(
        client, shop, chain, setup, sandbox_url, caplog, mode, sign_type):
    """Signed by the platform key the other mode uses: its serial is not ours."""
    from tests.support.wechatpay import sandbox_merchant

    account, order, before = setup(mode, sign_type)
    other_mode = "v3_public_key" if mode == "v3_certificate" else "v3_certificate"
    stranger = sandbox_merchant(sandbox_url, other_mode)
    # The stranger's notification claims to be about our order, for our merchant.
    note = custom_payment(sandbox_url, shop, stranger, order, appid=account["appid"],
                          mch_id=account["mch_id"])
    path, headers, body = signed(sandbox_url, note)
    assert_rejected(post(client, path, headers, body), mode, "unknown_serial", caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order)


# -- malformed and undecryptable: v3 ----------------------------------------------------------

@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
def test_a_non_json_v3_body_under_valid_looking_headers_changes_nothing(
        client, shop, chain, setup, sandbox_url, caplog, mode, sign_type):
    account, order, before = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    path, headers, _ = signed(sandbox_url, paid["notification_id"])
    assert_rejected(post(client, path, headers, b"<xml>not json</xml>"), mode, "bad_signature",
                    caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order,
                            paid["notification_id"])


@pytest.mark.parametrize("raw_body", ['{"id": "truncated', "[]", "<xml></xml>",
                                      '{"event_type": "TRANSACTION.SUCCESS"}'])
def test_a_validly_signed_v3_body_that_is_not_a_notification_changes_nothing(
        client, shop, chain, setup, sandbox_url, caplog, raw_body):
    account, order, before = setup("v3_public_key")
    path, headers, body = signed(sandbox_url, custom(sandbox_url, shop, account,
                                                     raw_body=raw_body))
    assert_rejected(post(client, path, headers, body), "v3", "malformed_or_undecryptable",
                    caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order)


def test_a_v3_notification_encrypted_with_another_merchants_apiv3_key_changes_nothing(
        client, shop, chain, setup, sandbox_url, caplog):
    """Signed by the same platform key, so only decryption can tell."""
    from tests.support.wechatpay import sandbox_merchant

    account, order, before = setup("v3_public_key")
    stranger = sandbox_merchant(sandbox_url, "v3_public_key")
    note = custom_payment(sandbox_url, shop, stranger, order, appid=account["appid"],
                          mch_id=account["mch_id"])
    path, headers, body = signed(sandbox_url, note)
    assert_rejected(post(client, path, headers, body), "v3", "malformed_or_undecryptable",
                    caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order)


# -- content checks: both APIs ----------------------------------------------------------------

@pytest.mark.parametrize(("mode", "sign_type"), ALL_MODES)
@pytest.mark.parametrize(("change", "reason"), [
    ({"appid": ANOTHER_APPID}, "appid_mismatch"),
    ({"mch_id": ANOTHER_MCH_ID}, "mch_id_mismatch"),
    ({"total_fen": 9_999}, "amount_mismatch"),
    ({"total_fen": 10_001}, "amount_mismatch"),
    ({"out_trade_no": "NEVER-CREATED-0001"}, "unknown_order"),
])
def test_a_genuinely_signed_payment_notification_that_does_not_match_the_order_changes_nothing(
        client, shop, chain, setup, sandbox_url, caplog, mode, sign_type, change, reason):
    account, order, before = setup(mode, sign_type)
    note = custom_payment(sandbox_url, shop, account, order, **change)
    path, headers, body = signed(sandbox_url, note)
    assert_rejected(post(client, path, headers, body), mode, reason, caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order)


@pytest.mark.parametrize(("mode", "sign_type"), ALL_MODES)
def test_a_payment_claiming_another_amount_changes_nothing(
        client, shop, chain, setup, sandbox_url, caplog, mode, sign_type):
    """The sandbox's own notification, when WeChat's word on the amount differs."""
    account, order, before = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"], total_fen=1)
    assert_rejected(deliver(client, sandbox_url, paid["notification_id"]), mode,
                    "amount_mismatch", caplog)
    assert state(client, shop, chain, order) == before
    corrected = custom_payment(sandbox_url, shop, account, order,
                               transaction_id=paid["transaction_id"])
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order, corrected)
    assert state(client, shop, chain, order)["transaction_id"] == paid["transaction_id"]


# -- signatures and malformed bodies: v2 ------------------------------------------------------

def v2_fields(body: bytes) -> dict:
    return dict(xmltodict.parse(body)["xml"])


def v2_body(fields: dict) -> bytes:
    return xmltodict.unparse({"xml": fields}, full_document=False).encode()


@pytest.mark.parametrize(("mode", "sign_type"), V2_MODES)
@pytest.mark.parametrize("forgery", ["one_character_changed", "another_api_key", "no_sign"])
def test_a_forged_v2_signature_changes_nothing(client, shop, chain, setup, sandbox_url, caplog,
                                               mode, sign_type, forgery):
    account, order, before = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    path, headers, body = signed(sandbox_url, paid["notification_id"])
    fields = v2_fields(body)
    if forgery == "one_character_changed":
        fields["sign"] = flip_one_character(fields["sign"])
    elif forgery == "another_api_key":
        unsigned = {k: v for k, v in fields.items() if k != "sign"}
        sign = (calculate_signature_hmac if sign_type == "HMAC-SHA256" else calculate_signature)
        fields["sign"] = sign(unsigned, secrets.token_hex(16))
    else:
        del fields["sign"]
    assert_rejected(post(client, path, headers, v2_body(fields)), mode, "bad_signature", caplog)
    assert state(client, shop, chain, order) == before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order,
                            paid["notification_id"])


@pytest.mark.parametrize(("mode", "sign_type"), V2_MODES)
def test_a_valid_v2_signature_over_another_body_changes_nothing(
        client, shop, chain, setup, add_product, sandbox_url, caplog, mode, sign_type):
    account, first, before = setup(mode, sign_type)
    second = place_order(client, shop, chain, add_product(price_fen=20_000))
    second_before = state(client, shop, chain, second)
    paid_first = pay(sandbox_url, account["mch_id"], first["out_trade_no"])
    paid_second = pay(sandbox_url, account["mch_id"], second["out_trade_no"])
    path, headers, first_body = signed(sandbox_url, paid_first["notification_id"])
    _, _, second_body = signed(sandbox_url, paid_second["notification_id"])
    grafted = dict(v2_fields(second_body), sign=v2_fields(first_body)["sign"])
    assert_rejected(post(client, path, headers, v2_body(grafted)), mode, "bad_signature",
                    caplog)
    # The same signature over the first body with one field changed fails too.
    tampered = dict(v2_fields(first_body), total_fee=str(second["paid_fen"]))
    assert_rejected(post(client, path, headers, v2_body(tampered)), mode, "bad_signature",
                    caplog)
    assert state(client, shop, chain, first) == before
    assert state(client, shop, chain, second) == second_before
    genuine_payment_applies(client, sandbox_url, shop, chain, account, first,
                            paid_first["notification_id"])


MALFORMED_XML = [b"", b"<xml><return_code>SUCCESS</return_code>", b"not xml at all",
                 b"<html><body>SUCCESS</body></html>", b"<xml>SUCCESS</xml>",
                 b'{"return_code": "SUCCESS"}']


@pytest.mark.parametrize(("mode", "sign_type"), V2_MODES)
def test_malformed_v2_payment_xml_changes_nothing(client, shop, chain, setup, sandbox_url,
                                                  caplog, mode, sign_type):
    account, order, before = setup(mode, sign_type)
    for body in MALFORMED_XML:
        reply = client.post(webhook_path(shop, mode), data=body,
                            headers={"Content-Type": "text/xml"})
        assert_rejected(reply, mode, "malformed_xml", caplog)
        assert state(client, shop, chain, order) == before, body
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order)


# -- refunds ----------------------------------------------------------------------------------

@pytest.fixture
def refunding(client, shop, chain, setup, sandbox_url, staff_headers):
    """(account, order, refund, state before): a paid order whose full refund WeChat is
    processing."""
    def _refunding(mode: str, sign_type: str = "MD5"):
        account, order, _ = setup(mode, sign_type)
        genuine_payment_applies(client, sandbox_url, shop, chain, account, order)
        started = client.post(f"/api/console/v1/orders/{order['id']}/refunds",
                              headers=staff_headers("finance1"), json={"reason": "缺货"})
        assert started.status_code == 201, started.get_json()
        refund = started.get_json()
        before = state(client, shop, chain, order)
        assert before["status"] == "refunding"
        assert before["refunds"] == [(refund["out_refund_no"], "processing")]
        return account, order, refund, before
    return _refunding


def genuine_refund_applies(client, sandbox_url, shop, chain, account, order, refund) -> None:
    done = complete_refund(sandbox_url, account["mch_id"], refund["out_refund_no"])
    assert_accepted(deliver(client, sandbox_url, done["notification_id"]), account["mode"])
    after = state(client, shop, chain, order)
    assert after["status"] == "refunded" and after["refunded_fen"] == order["paid_fen"]
    assert after["refunds"] == [(refund["out_refund_no"], "succeeded")]


def v2_refund_body(account: dict, refund: dict, order: dict, *, api_key: str,
                   appid: str | None = None, mch_id: str | None = None) -> bytes:
    """A v2 refund notification whose req_info is encrypted with ``api_key`` (WeChat uses
    the merchant's): AES-256-ECB keyed by the key's md5 (WECHAT.md)."""
    from app.wechat_sandbox.crypto import refund_req_info_encrypt

    info = {"out_trade_no": order["out_trade_no"], "out_refund_no": refund["out_refund_no"],
            "refund_id": "50300000000000000000000000001", "refund_status": "SUCCESS",
            "total_fee": str(order["paid_fen"]), "refund_fee": str(refund["amount_fen"]),
            "settlement_refund_fee": str(refund["amount_fen"])}
    plaintext = xmltodict.unparse({"root": info}, full_document=False)
    return v2_body({"return_code": "SUCCESS", "appid": appid or account["appid"],
                    "mch_id": mch_id or account["mch_id"], "nonce_str": secrets.token_hex(16),
                    "req_info": refund_req_info_encrypt(api_key, plaintext)})


def test_malformed_v2_refund_xml_changes_nothing(client, shop, chain, refunding, sandbox_url,
                                                 caplog):
    account, order, refund, before = refunding("v2")
    for body in MALFORMED_XML:
        reply = client.post(webhook_path(shop, "v2", "refund"), data=body,
                            headers={"Content-Type": "text/xml"})
        assert_rejected(reply, "v2", "malformed_xml", caplog)
        assert state(client, shop, chain, order) == before, body
    genuine_refund_applies(client, sandbox_url, shop, chain, account, order, refund)


@pytest.mark.parametrize(("variant", "reason"), [
    ("another_api_key", "undecryptable"),
    ("not_encrypted", "undecryptable"),
    ("another_appid", "appid_mismatch"),
    ("another_mch_id", "mch_id_mismatch"),
])
def test_a_v2_refund_notification_that_is_not_wechats_changes_nothing(
        client, shop, chain, refunding, sandbox_url, caplog, variant, reason):
    """v2 refund notifications carry no signature (the sign type plays no part): req_info
    encrypted with the merchant's API key is the proof."""
    mode = "v2"
    account, order, refund, before = refunding(mode)
    key = secrets.token_hex(16) if variant == "another_api_key" else account["api_key"]
    body = v2_refund_body(account, refund, order, api_key=key,
                          appid=ANOTHER_APPID if variant == "another_appid" else None,
                          mch_id=ANOTHER_MCH_ID if variant == "another_mch_id" else None)
    if variant == "not_encrypted":
        body = v2_body(dict(v2_fields(body), req_info=base64.b64encode(b"SUCCESS").decode()))
    reply = client.post(webhook_path(shop, mode, "refund"), data=body,
                        headers={"Content-Type": "text/xml"})
    assert_rejected(reply, mode, reason, caplog)
    assert state(client, shop, chain, order) == before
    genuine_refund_applies(client, sandbox_url, shop, chain, account, order, refund)


@pytest.mark.parametrize(("mode", "sign_type"), V2_MODES)
def test_a_v2_refund_notification_encrypted_with_the_merchants_key_applies(
        client, shop, chain, refunding, sandbox_url, mode, sign_type):
    """The control for the test above: the same notification under the right key is WeChat's
    word, so the rejections there are for the key, not for the way the body is built."""
    account, order, refund, _ = refunding(mode, sign_type)
    body = v2_refund_body(account, refund, order, api_key=account["api_key"])
    reply = client.post(webhook_path(shop, mode, "refund"), data=body,
                        headers={"Content-Type": "text/xml"})
    assert_accepted(reply, mode)
    assert state(client, shop, chain, order)["status"] == "refunded"


@pytest.mark.parametrize(("mode", "sign_type"), V3_MODES)
@pytest.mark.parametrize(("change", "reason"), [
    ({"refund_fen": -1}, "amount_mismatch"),
    ({"mchid": ANOTHER_MCH_ID}, "mch_id_mismatch"),
    ({"out_refund_no": "NEVER-CREATED-R1"}, "unknown_refund"),
])
def test_a_genuinely_signed_v3_refund_notification_that_does_not_match_changes_nothing(
        client, shop, chain, refunding, sandbox_url, caplog, mode, sign_type, change, reason):
    account, order, refund, before = refunding(mode, sign_type)
    change = dict(change)  # the parameter is shared between the modes: do not consume it
    refund_fen = refund["amount_fen"] + change.pop("refund_fen", 0)
    resource = {"mchid": account["mch_id"], "out_trade_no": order["out_trade_no"],
                "transaction_id": before["transaction_id"],
                "refund_id": "50300000000000000000000000002",
                "out_refund_no": refund["out_refund_no"], "refund_status": "SUCCESS",
                "user_received_account": "支付用户零钱",
                "amount": {"total": order["paid_fen"], "refund": refund_fen,
                           "payer_total": order["paid_fen"], "payer_refund": refund_fen},
                **change}
    note = custom(sandbox_url, shop, account, event_type="REFUND.SUCCESS", resource=resource)
    path, headers, body = signed(sandbox_url, note)
    assert_rejected(post(client, path, headers, body), mode, reason, caplog)
    assert state(client, shop, chain, order) == before
    genuine_refund_applies(client, sandbox_url, shop, chain, account, order, refund)


# -- repeats ----------------------------------------------------------------------------------

def applied_outcomes(caplog) -> list[str]:
    return [r.outcome for r in caplog.records if r.name == LOGGER and hasattr(r, "outcome")]


@pytest.mark.parametrize(("mode", "sign_type"), ALL_MODES)
def test_repeats_of_a_payment_notification_are_no_op_successes(
        client, shop, chain, setup, sandbox_url, caplog, mode, sign_type):
    caplog.set_level(logging.INFO, logger=LOGGER)
    account, order, _ = setup(mode, sign_type)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    assert_accepted(deliver(client, sandbox_url, paid["notification_id"]), mode)
    once = state(client, shop, chain, order)
    assert once["status"] == "paid" and once["transaction_id"] == paid["transaction_id"]
    assert once["wallets"]["bob"]["pending_fen"] == 1_000
    for _ in range(4):  # WeChat's retries, each freshly signed
        assert_accepted(deliver(client, sandbox_url, paid["notification_id"]), mode)
        assert state(client, shop, chain, order) == once
    assert applied_outcomes(caplog) == ["paid"] + ["duplicate"] * 4


@pytest.mark.parametrize(("mode", "sign_type"), [V3_MODES[0], V2_MODES[0]])
def test_repeats_of_a_refund_notification_are_no_op_successes(
        client, shop, chain, refunding, sandbox_url, caplog, mode, sign_type):
    account, order, refund, _ = refunding(mode, sign_type)
    caplog.set_level(logging.INFO, logger=LOGGER)
    caplog.clear()
    done = complete_refund(sandbox_url, account["mch_id"], refund["out_refund_no"])
    assert_accepted(deliver(client, sandbox_url, done["notification_id"]), mode)
    once = state(client, shop, chain, order)
    assert once["status"] == "refunded" and once["wallets"]["bob"]["pending_fen"] == 0
    for _ in range(3):
        assert_accepted(deliver(client, sandbox_url, done["notification_id"]), mode)
        assert state(client, shop, chain, order) == once
    assert applied_outcomes(caplog) == ["succeeded"] + ["duplicate"] * 3


@pytest.mark.parametrize(("change", "reason"), [
    ({"total_fen": 1}, "amount_mismatch"),
    ({"transaction_id": "4200000000202401019999999999"}, "paid_by_another_transaction"),
])
def test_a_mismatching_notification_for_a_paid_order_leaves_the_payment_alone(
        client, shop, chain, setup, sandbox_url, caplog, change, reason):
    """After the order is paid, a genuinely signed notification that disagrees with it (a
    second payment of the same order included) is refused, and the recorded payment, its
    commissions and the wallets stay as they are."""
    account, order, _ = setup("v3_public_key")
    genuine_payment_applies(client, sandbox_url, shop, chain, account, order)
    paid_state = state(client, shop, chain, order)
    caplog.clear()
    path, headers, body = signed(sandbox_url, custom_payment(sandbox_url, shop, account, order,
                                                             **change))
    assert_rejected(post(client, path, headers, body), "v3", reason, caplog)
    assert state(client, shop, chain, order) == paid_state
