"""APIv3 through wechatpayv3: JSAPI prepay, mini-program pay params, query, close, refunds, and
notifications verified by the platform certificate or the WeChat Pay public key.

WECHAT.md's pitfalls, handled here: the library has no base-URL option (the gateway attribute
is set after construction), certificate mode loads certificates in its constructor (we give it
a directory holding the stored certificate, so it never downloads from the real host), it does
no timestamp check (we add the 5-minute window) and it would crash on a serial that is not hex
(we accept only the serials the merchant configured).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
from pathlib import Path

import requests
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import load_certificate

from app.integrations.wechatpay import (
    SIGNTEST_PREFIX,
    TIMESTAMP_WINDOW_SECONDS,
    Notification,
    PayAccount,
    Payment,
    PayRejected,
    PayUnavailable,
    RefundResult,
    TransferResult,
)

log = logging.getLogger("fenxiao.wechatpay")
REFUND_EVENTS = ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED")
TRANSFER_EVENT = "MCHTRANSFER.BILL.FINISHED"
# Scene 1005 (佣金报酬) must report these two items, as registered with WeChat (WECHAT.md).
COMMISSION_SCENE = "1005"
COMMISSION_REPORT_INFOS = [{"info_type": "岗位类型", "info_content": "推广员"},
                           {"info_type": "报酬说明", "info_content": "推广佣金"}]


class V3Gateway:
    api = "v3"

    def __init__(self, account: PayAccount, *, base_url: str, timeout: float = 5.0):
        self.account = account
        common = dict(wechatpay_type=WeChatPayType.MINIPROG, mchid=account.mch_id,
                      private_key=account.merchant_private_key_pem,
                      cert_serial_no=account.merchant_serial_no, appid=account.appid,
                      apiv3_key=account.apiv3_key, timeout=timeout)
        if account.wechatpay_public_key_id:
            self._pay = WeChatPay(**common, public_key=account.wechatpay_public_key_pem,
                                  public_key_id=account.wechatpay_public_key_id)
            if account.platform_certificate_pem:  # a merchant migrating receives both kinds
                self._pay._core._certificates.append(
                    load_certificate(account.platform_certificate_pem))
        else:
            self._pay = WeChatPay(**common, cert_dir=self._certificate_dir(account))
        self._pay._core._gate_way = base_url
        self._serials = {s for s in (account.wechatpay_public_key_id,
                                     account.platform_certificate_serial_no.upper()) if s}

    @staticmethod
    def _certificate_dir(account: PayAccount) -> str:
        folder = Path(tempfile.mkdtemp(prefix="fenxiao-wechatpay-"))
        serial = account.platform_certificate_serial_no.upper()
        (folder / f"{serial}.pem").write_text(account.platform_certificate_pem)
        return str(folder)

    # -- calls -----------------------------------------------------------------------------

    def _call(self, what: str, method, **kwargs) -> tuple[int, dict]:
        try:
            status, text = method(**kwargs)
        except requests.RequestException as exc:
            raise PayUnavailable(f"WeChat Pay unreachable during {what}: "
                                 f"{type(exc).__name__}") from None
        except Exception as exc:  # noqa: BLE001 - the library raises bare Exception
            raise PayUnavailable(f"WeChat Pay answer to {what} failed verification: "
                                 f"{exc}") from None
        try:
            body = json.loads(text) if text else {}
        except (TypeError, ValueError):
            body = {}
        return status, body

    def _fail(self, what: str, status: int, body: dict) -> PayUnavailable:
        return PayUnavailable(f"WeChat Pay refused {what}: {body.get('message', status)}",
                              code=body.get("code", ""), status=status)

    def prepay(self, *, out_trade_no: str, description: str, total_fen: int, openid: str,
               notify_url: str, expire_rfc3339: str | None = None) -> str:
        status, body = self._call("prepay", self._pay.pay, description=description,
                                  out_trade_no=out_trade_no, amount={"total": total_fen},
                                  payer={"openid": openid}, notify_url=notify_url,
                                  time_expire=expire_rfc3339,
                                  pay_type=WeChatPayType.MINIPROG)
        if status != 200 or "prepay_id" not in body:
            raise self._fail("prepay", status, body)
        return body["prepay_id"]

    def payment_params(self, prepay_id: str) -> dict:
        """The object ``wx.requestPayment`` takes: RSA-SHA256 over appId, timeStamp,
        nonceStr and package, each followed by a newline."""
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex
        package = f"prepay_id={prepay_id}"
        sign = self._pay.sign([self.account.appid, timestamp, nonce, package])
        return {"timeStamp": timestamp, "nonceStr": nonce, "package": package,
                "signType": "RSA", "paySign": sign}

    def query_order(self, out_trade_no: str) -> Payment | None:
        """WeChat's view of an order; None when WeChat has never seen it."""
        status, body = self._call("order query", self._pay.query, out_trade_no=out_trade_no)
        if status == 404:
            return None
        if status != 200:
            raise self._fail("order query", status, body)
        return _payment(body)

    def close_order(self, out_trade_no: str) -> None:
        status, body = self._call("close", self._pay.close, out_trade_no=out_trade_no)
        if status not in (200, 204):
            raise self._fail("close", status, body)

    def refund(self, *, out_trade_no: str, out_refund_no: str, refund_fen: int,
               total_fen: int, notify_url: str, reason: str) -> RefundResult:
        status, body = self._call("refund", self._pay.refund, out_refund_no=out_refund_no,
                                  out_trade_no=out_trade_no, reason=reason or None,
                                  amount={"refund": refund_fen, "total": total_fen,
                                          "currency": "CNY"}, notify_url=notify_url)
        if status != 200:
            raise self._fail("refund", status, body)
        return _refund(body, mch_id=self.account.mch_id)

    def query_refund(self, out_refund_no: str) -> RefundResult | None:
        status, body = self._call("refund query", self._pay.query_refund,
                                  out_refund_no=out_refund_no)
        if status == 404:
            return None
        if status != 200:
            raise self._fail("refund query", status, body)
        return _refund(body, mch_id=self.account.mch_id)

    # -- merchant transfers (paying distributors) ----------------------------------------------

    def transfer(self, *, out_bill_no: str, openid: str, amount_fen: int, remark: str,
                 user_name: str | None, notify_url: str) -> TransferResult:
        """Create the bill (scene 1005). WeChat creates one bill per ``out_bill_no``: a repeat
        of the same request answers with the same bill, so a retry can never pay twice."""
        status, body = self._call("transfer", self._pay.mch_transfer_bills,
                                  out_bill_no=out_bill_no, transfer_scene_id=COMMISSION_SCENE,
                                  openid=openid, transfer_amount=amount_fen,
                                  transfer_remark=remark[:32], user_name=user_name or None,
                                  transfer_scene_report_infos=COMMISSION_REPORT_INFOS,
                                  notify_url=notify_url)
        if status != 200:
            raise self._fail("transfer", status, body)
        return _transfer(body, mch_id=self.account.mch_id, amount_fen=amount_fen)

    def query_transfer(self, out_bill_no: str) -> TransferResult | None:
        status, body = self._call("transfer query", self._pay.mch_transfer_bills_query,
                                  out_bill_no=out_bill_no)
        if status == 404:
            return None
        if status != 200:
            raise self._fail("transfer query", status, body)
        return _transfer(body, mch_id=self.account.mch_id)

    def cancel_transfer(self, out_bill_no: str) -> None:
        status, body = self._call("transfer cancel", self._pay.mch_transfer_bills_cancel,
                                  out_bill_no=out_bill_no)
        if status != 200:
            raise self._fail("transfer cancel", status, body)

    # -- notifications ---------------------------------------------------------------------

    def parse_notification(self, headers: dict, body: bytes, *, now: float) -> Notification:
        """Verify (serial, 5-minute window, signature), decrypt, and read one notification."""
        signature = headers.get("Wechatpay-Signature", "")
        if signature.startswith(SIGNTEST_PREFIX):
            raise PayRejected("signature_test_probe")
        try:
            timestamp = int(headers.get("Wechatpay-Timestamp", ""))
        except ValueError:
            raise PayRejected("timestamp_missing") from None
        if abs(now - timestamp) > TIMESTAMP_WINDOW_SECONDS:
            raise PayRejected("timestamp_outside_window")
        if headers.get("Wechatpay-Serial", "").upper() not in self._serials:
            raise PayRejected("unknown_serial")
        try:
            text = body.decode()
            # The library folds a bad signature and an undecryptable resource into one None:
            # check the signature first, so a wrong APIv3 key is reported as what it is.
            if not self._pay._core._verify_signature(headers, text):
                raise PayRejected("bad_signature")
            data = self._pay.callback(headers, text)
        except PayRejected:
            raise
        except Exception:  # noqa: BLE001 - malformed JSON, a bad algorithm, undecodable bytes
            raise PayRejected("malformed_or_undecryptable") from None
        if not data or not isinstance(data.get("resource"), dict):
            raise PayRejected("malformed_or_undecryptable")
        event_type, resource = data.get("event_type", ""), data["resource"]
        if event_type == "TRANSACTION.SUCCESS":
            if resource.get("mchid") != self.account.mch_id:
                raise PayRejected("mch_id_mismatch")
            return Notification("payment", event_type, payment=_payment(resource))
        if event_type in REFUND_EVENTS:
            if resource.get("mchid") != self.account.mch_id:
                raise PayRejected("mch_id_mismatch")
            return Notification("refund", event_type,
                                refund=_refund(resource, mch_id=resource.get("mchid", "")))
        if event_type == TRANSFER_EVENT:
            if resource.get("mch_id") != self.account.mch_id:
                raise PayRejected("mch_id_mismatch")
            return Notification("transfer", event_type,
                                transfer=_transfer(resource, mch_id=resource["mch_id"]))
        return Notification("other", event_type, resource=resource)


def _payment(resource: dict) -> Payment:
    try:
        return Payment(appid=resource.get("appid", ""), mch_id=resource.get("mchid", ""),
                       out_trade_no=resource["out_trade_no"],
                       trade_state=resource["trade_state"],
                       total_fen=int(resource["amount"]["total"]),
                       transaction_id=resource.get("transaction_id", ""),
                       success_time=resource.get("success_time", ""))
    except (KeyError, TypeError, ValueError):
        raise PayRejected("resource_incomplete") from None


def _refund(resource: dict, *, mch_id: str) -> RefundResult:
    try:
        return RefundResult(mch_id=mch_id, out_trade_no=resource["out_trade_no"],
                            out_refund_no=resource["out_refund_no"],
                            refund_id=resource.get("refund_id", ""),
                            status=resource.get("refund_status") or resource["status"],
                            refund_fen=int(resource["amount"]["refund"]))
    except (KeyError, TypeError, ValueError):
        raise PayRejected("resource_incomplete") from None


def _transfer(resource: dict, *, mch_id: str, amount_fen: int | None = None) -> TransferResult:
    try:
        return TransferResult(mch_id=resource.get("mch_id", mch_id),
                              out_bill_no=resource["out_bill_no"], state=resource["state"],
                              transfer_amount_fen=int(resource.get("transfer_amount",
                                                                   amount_fen or 0)),
                              transfer_bill_no=resource.get("transfer_bill_no", ""),
                              package_info=resource.get("package_info", ""),
                              fail_reason=resource.get("fail_reason", ""))
    except (KeyError, TypeError, ValueError):
        raise PayRejected("resource_incomplete") from None
