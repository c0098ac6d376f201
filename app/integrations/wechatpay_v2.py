"""APIv2 (XML) through wechatpy: unifiedorder, JSAPI pay params, order query and close,
refunds, and the payment and refund notifications.

wechatpy signs requests with MD5 unless the request names ``sign_type``, and verifies
notifications with MD5 only (WECHAT.md): HMAC-SHA256 merchants get ``sign_type`` on every
request and their notifications checked here with wechatpy's own HMAC helper.
"""

from __future__ import annotations

import hmac
import time
import uuid
from datetime import datetime

import requests
import xmltodict
from wechatpy.exceptions import WeChatPayException
from wechatpy.pay import WeChatPay
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac

from app.integrations.wechatpay import (
    Notification,
    PayAccount,
    Payment,
    PayRejected,
    PayUnavailable,
    RefundResult,
)

HMAC = "HMAC-SHA256"
# v2 spells refund states its own way; the rest of the app speaks v3's.
REFUND_STATUS = {"SUCCESS": "SUCCESS", "REFUNDCLOSE": "CLOSED", "CHANGE": "ABNORMAL",
                 "PROCESSING": "PROCESSING"}


class V2Gateway:
    api = "v2"

    def __init__(self, account: PayAccount, *, base_url: str, timeout: float = 5.0):
        self.account = account
        self._pay = WeChatPay(account.appid, account.api_key, account.mch_id, timeout=timeout)
        self._pay.API_BASE_URL = base_url + "/"

    def _post(self, what: str, endpoint: str, data: dict) -> dict:
        data = {"appid": self.account.appid, **data}
        if self.account.sign_type == HMAC:
            data["sign_type"] = HMAC
        try:
            return self._pay.post(endpoint, data=data)
        except WeChatPayException as exc:
            raise PayUnavailable(f"WeChat Pay refused {what}: {exc.errmsg or exc.return_msg}",
                                 code=exc.errcode or exc.return_code or "") from None
        except requests.RequestException as exc:
            raise PayUnavailable(f"WeChat Pay unreachable during {what}: "
                                 f"{type(exc).__name__}") from None

    def _sign(self, params: dict) -> str:
        if self.account.sign_type == HMAC:
            return calculate_signature_hmac(params, self.account.api_key)
        return calculate_signature(params, self.account.api_key)

    def prepay(self, *, out_trade_no: str, description: str, total_fen: int, openid: str,
               notify_url: str, expire_rfc3339: str | None = None) -> str:
        data = {"body": description, "out_trade_no": out_trade_no, "total_fee": total_fen,
                "spbill_create_ip": "127.0.0.1", "notify_url": notify_url,
                "trade_type": "JSAPI", "openid": openid}
        if expire_rfc3339:
            data["time_expire"] = datetime.fromisoformat(expire_rfc3339).strftime("%Y%m%d%H%M%S")
        return self._post("prepay", "pay/unifiedorder", data)["prepay_id"]

    def payment_params(self, prepay_id: str) -> dict:
        """The object ``wx.requestPayment`` takes, signed with the merchant's sign type."""
        params = {"appId": self.account.appid, "timeStamp": str(int(time.time())),
                  "nonceStr": uuid.uuid4().hex, "package": f"prepay_id={prepay_id}",
                  "signType": self.account.sign_type or "MD5"}
        signed = dict(params, paySign=self._sign(params))
        del signed["appId"]  # the mini-program passes its own appId; the signature covers it
        return signed

    def query_order(self, out_trade_no: str) -> Payment | None:
        try:
            data = self._post("order query", "pay/orderquery", {"out_trade_no": out_trade_no})
        except PayUnavailable as exc:
            if exc.code == "ORDERNOTEXIST":
                return None
            raise
        return Payment(appid=data.get("appid", ""), mch_id=data.get("mch_id", ""),
                       out_trade_no=data.get("out_trade_no", out_trade_no),
                       trade_state=data.get("trade_state", ""),
                       total_fen=int(data.get("total_fee") or 0),
                       transaction_id=data.get("transaction_id") or "",
                       success_time=data.get("time_end") or "")

    def close_order(self, out_trade_no: str) -> None:
        self._post("close", "pay/closeorder", {"out_trade_no": out_trade_no})

    def refund(self, *, out_trade_no: str, out_refund_no: str, refund_fen: int,
               total_fen: int, notify_url: str, reason: str) -> RefundResult:
        data = self._post("refund", "secapi/pay/refund", {
            "out_trade_no": out_trade_no, "out_refund_no": out_refund_no,
            "total_fee": total_fen, "refund_fee": refund_fen, "notify_url": notify_url,
            "refund_desc": reason or None})
        return RefundResult(mch_id=self.account.mch_id, out_trade_no=out_trade_no,
                            out_refund_no=out_refund_no, refund_id=data.get("refund_id", ""),
                            status="PROCESSING", refund_fen=refund_fen)

    def query_refund(self, out_refund_no: str) -> RefundResult | None:
        try:
            data = self._post("refund query", "pay/refundquery",
                              {"out_refund_no": out_refund_no})
        except PayUnavailable as exc:
            if exc.code == "REFUNDNOTEXIST":
                return None
            raise
        return RefundResult(mch_id=self.account.mch_id,
                            out_trade_no=data.get("out_trade_no", ""),
                            out_refund_no=data.get("out_refund_no_0", out_refund_no),
                            refund_id=data.get("refund_id_0", ""),
                            status=REFUND_STATUS.get(data.get("refund_status_0", ""),
                                                     "PROCESSING"),
                            refund_fen=int(data.get("refund_fee_0") or 0))

    def transfer(self, **_request) -> None:
        """Merchant transfers exist only in APIv3: a v2 merchant pays distributors offline."""
        raise PayUnavailable("Merchant transfers need APIv3 credentials.",
                             code="TRANSFER_NEEDS_V3")

    query_transfer = cancel_transfer = transfer

    # -- notifications ---------------------------------------------------------------------

    def parse_payment_notification(self, body: bytes) -> Notification:
        fields = _xml_fields(body)
        sign = fields.pop("sign", "")
        expected = (calculate_signature_hmac(fields, self.account.api_key)
                    if fields.get("sign_type") == HMAC
                    else calculate_signature(fields, self.account.api_key))
        if not sign or not hmac.compare_digest(sign, expected):
            raise PayRejected("bad_signature")
        if fields.get("return_code") != "SUCCESS" or fields.get("result_code") != "SUCCESS":
            raise PayRejected("not_a_success")
        if fields.get("mch_id") != self.account.mch_id:
            raise PayRejected("mch_id_mismatch")
        try:
            payment = Payment(appid=fields.get("appid", ""), mch_id=fields["mch_id"],
                              out_trade_no=fields["out_trade_no"], trade_state="SUCCESS",
                              total_fen=int(fields["total_fee"]),
                              transaction_id=fields["transaction_id"],
                              success_time=fields.get("time_end", ""))
        except (KeyError, ValueError):
            raise PayRejected("resource_incomplete") from None
        return Notification("payment", "TRANSACTION.SUCCESS", payment=payment)

    def parse_refund_notification(self, body: bytes) -> Notification:
        """v2 refund notifications are not signed: decrypting ``req_info`` with the API key is
        what proves they came from WeChat."""
        fields = _xml_fields(body)
        if fields.get("return_code") != "SUCCESS":
            raise PayRejected("not_a_success")
        if fields.get("appid") != self.account.appid:
            raise PayRejected("appid_mismatch")
        if fields.get("mch_id") != self.account.mch_id:
            raise PayRejected("mch_id_mismatch")
        try:
            info = self._pay.parse_refund_notify_result(fields)
            status = REFUND_STATUS[info["refund_status"]]
            refund = RefundResult(mch_id=self.account.mch_id, out_trade_no=info["out_trade_no"],
                                  out_refund_no=info["out_refund_no"],
                                  refund_id=info.get("refund_id", ""), status=status,
                                  refund_fen=int(info["refund_fee"]))
        except Exception:  # noqa: BLE001 - bad padding, a wrong key, a field missing
            raise PayRejected("undecryptable") from None
        return Notification("refund", f"REFUND.{status}", refund=refund)


def _xml_fields(body: bytes) -> dict:
    try:
        parsed = xmltodict.parse(body)
    except Exception:  # noqa: BLE001 - expat and xmltodict raise several kinds
        raise PayRejected("malformed_xml") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("xml"), dict):
        raise PayRejected("malformed_xml")
    return {k: v for k, v in parsed["xml"].items() if isinstance(v, str)}
