"""APIv3 JSAPI payments, refunds and the platform certificate download."""

import re

from flask import Blueprint, request

from . import crypto, ids, resources
from .context import current
from .state import Order, Refund
from .v3_common import (
    V3Error,
    authenticate,
    fingerprint,
    install,
    request_json,
    require,
    v3_json,
)

bp = Blueprint("wechatpay_v3", __name__)
install(bp)

OUT_TRADE_NO_RE = re.compile(r"[0-9A-Za-z_\-|*@]{6,32}")
ORDER_FIELDS = ("appid", "description", "amount", "payer", "notify_url", "attach")


def valid_notify_url(url):
    # WeChat wants an absolute http(s) URL without a query string.
    return isinstance(url, str) and re.fullmatch(r"https?://[^\s?#]+", url) is not None


def valid_amount(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@bp.post("/v3/pay/transactions/jsapi")
def jsapi():
    merchant = authenticate()
    data = request_json()
    _validate_jsapi(merchant, data)
    state = current().state
    with state.lock:
        existing = state.orders.get((merchant.mch_id, data["out_trade_no"]))
        if existing:
            return v3_json({"prepay_id": _repeat_prepay(existing, fingerprint(data, ORDER_FIELDS))})
        order = Order(
            mch_id=merchant.mch_id,
            out_trade_no=data["out_trade_no"],
            appid=data["appid"],
            api="v3",
            description=data["description"],
            total=data["amount"]["total"],
            openid=data["payer"]["openid"],
            notify_url=data["notify_url"],
            attach=data.get("attach") or "",
            fingerprint=fingerprint(data, ORDER_FIELDS),
            prepay_id=ids.prepay_id(),
        )
        state.orders[(order.mch_id, order.out_trade_no)] = order
    return v3_json({"prepay_id": order.prepay_id})


def _validate_jsapi(merchant, data):
    require(data.get("mchid") == merchant.mch_id, "mchid与请求头中的商户号不一致")
    require(data.get("appid") == merchant.appid, "appid和mch_id不匹配", "INVALID_REQUEST")
    require(
        isinstance(data.get("description"), str) and 0 < len(data["description"]) <= 127,
        "description字段长度不合法",
    )
    require(
        isinstance(data.get("out_trade_no"), str)
        and OUT_TRADE_NO_RE.fullmatch(data["out_trade_no"]),
        "out_trade_no字段格式不正确（6-32位字母、数字、_-|*@）",
    )
    amount = data.get("amount")
    require(
        isinstance(amount, dict) and valid_amount(amount.get("total")),
        "amount.total必须为大于0的整数",
    )
    require(amount.get("currency", "CNY") == "CNY", "amount.currency仅支持CNY")
    payer = data.get("payer")
    require(
        isinstance(payer, dict) and isinstance(payer.get("openid"), str) and payer["openid"],
        "JSAPI下单payer.openid必填",
    )
    require(valid_notify_url(data.get("notify_url")), "notify_url格式不正确")


def _repeat_prepay(order, new_fingerprint):
    require(order.trade_state not in ("SUCCESS", "REFUND"), "该订单已支付", "ORDERPAID")
    require(order.trade_state != "CLOSED", "订单已关闭", "ORDER_CLOSED")
    require(order.fingerprint == new_fingerprint, "201 商户订单号重复", "INVALID_REQUEST")
    return order.prepay_id


def _owned_order(merchant, out_trade_no=None, transaction_id=None):
    require(
        request.args.get("mchid", merchant.mch_id) == merchant.mch_id,
        "mchid与请求头中的商户号不一致",
    )
    order = current().state.order_for(merchant.mch_id, out_trade_no, transaction_id)
    if order is None:  # v2 and v3 see the same orders, as on WeChat
        raise V3Error(404, "ORDER_NOT_EXIST", "订单不存在")
    return order


@bp.get("/v3/pay/transactions/out-trade-no/<out_trade_no>")
def query_by_out_trade_no(out_trade_no):
    merchant = authenticate()
    with current().state.lock:
        return v3_json(resources.transaction_v3(_owned_order(merchant, out_trade_no=out_trade_no)))


@bp.get("/v3/pay/transactions/id/<transaction_id>")
def query_by_transaction_id(transaction_id):
    merchant = authenticate()
    with current().state.lock:
        return v3_json(
            resources.transaction_v3(_owned_order(merchant, transaction_id=transaction_id))
        )


@bp.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
def close(out_trade_no):
    merchant = authenticate()
    data = request_json()
    require(data.get("mchid") == merchant.mch_id, "mchid与请求头中的商户号不一致")
    with current().state.lock:
        order = _owned_order(merchant, out_trade_no=out_trade_no)
        require(order.trade_state not in ("SUCCESS", "REFUND"), "订单已支付", "ORDERPAID")
        order.trade_state = "CLOSED"
    return v3_json_empty()


def v3_json_empty():
    response = v3_json({}, 204)
    response.set_data(b"")
    return response


@bp.post("/v3/refund/domestic/refunds")
def create_refund():
    merchant = authenticate()
    data = request_json()
    _validate_refund(data)
    state = current().state
    with state.lock:
        existing = state.refunds.get((merchant.mch_id, data["out_refund_no"]))
        if existing:
            require(
                existing.fingerprint == (data["amount"]["total"], data["amount"]["refund"]),
                "订单金额或退款金额与之前请求不一致，请核实后再试",
                "INVALID_REQUEST",
            )
            return v3_json(resources.refund_v3(existing))
        order = current().state.order_for(
            merchant.mch_id, data.get("out_trade_no"), data.get("transaction_id")
        )
        require(order is not None, "订单不存在", "RESOURCE_NOT_EXISTS", 404)
        refund = open_refund(
            order, data["out_refund_no"], data["amount"], data.get("notify_url") or "", "v3"
        )
        refund.funds_account = (
            "AVAILABLE" if data.get("funds_account") == "AVAILABLE" else "UNSETTLED"
        )
    return v3_json(resources.refund_v3(refund))


def _validate_refund(data):
    require(
        isinstance(data.get("out_refund_no"), str) and 0 < len(data["out_refund_no"]) <= 64,
        "out_refund_no字段长度不合法",
    )
    require(
        data.get("transaction_id") or data.get("out_trade_no"),
        "transaction_id和out_trade_no必须二选一",
    )
    amount = data.get("amount")
    require(
        isinstance(amount, dict)
        and valid_amount(amount.get("refund"))
        and valid_amount(amount.get("total")),
        "amount.refund与amount.total必须为大于0的整数",
    )
    require(amount.get("currency", "CNY") == "CNY", "amount.currency仅支持CNY")
    require(
        not data.get("notify_url") or valid_notify_url(data["notify_url"]), "notify_url格式不正确"
    )


def open_refund(order, out_refund_no, amount, notify_url, api):
    """Create a refund against a paid order (caller holds the lock); shared by APIv2 and APIv3."""
    require(
        order.trade_state in ("SUCCESS", "REFUND"), "订单状态不正确，无法退款", "INVALID_REQUEST"
    )
    require(
        amount["total"] == order.total,
        "订单金额或退款金额与之前请求不一致，请核实后再试",
        "INVALID_REQUEST",
    )
    require(
        amount["refund"] <= order.total - order.refunded,
        "申请退款金额超过订单可退金额",
        "INVALID_REQUEST",
    )
    refund = Refund(
        mch_id=order.mch_id,
        out_refund_no=out_refund_no,
        refund_id=ids.refund_id(),
        out_trade_no=order.out_trade_no,
        transaction_id=order.transaction_id,
        api=api,
        total=order.total,
        refund=amount["refund"],
        notify_url=notify_url,
        fingerprint=(amount["total"], amount["refund"]),
        create_time=ids.now_china(),
    )
    order.refunded += refund.refund
    order.trade_state = "REFUND"
    current().state.refunds[(order.mch_id, out_refund_no)] = refund
    return refund


@bp.get("/v3/refund/domestic/refunds/<out_refund_no>")
def query_refund(out_refund_no):
    merchant = authenticate()
    state = current().state
    with state.lock:
        refund = state.refunds.get((merchant.mch_id, out_refund_no))
        require(refund is not None, "退款单不存在", "RESOURCE_NOT_EXISTS", 404)
        return v3_json(resources.refund_v3(refund))


@bp.get("/v3/certificates")
def certificates():
    merchant = authenticate()
    # Merchants opened with a WeChat Pay public key have no platform certificate on WeChat either.
    require(
        merchant.mode != "v3_public_key", "商户使用微信支付公钥，无平台证书", "SYSTEM_ERROR", 500
    )
    keys = current().keys
    nonce, ciphertext = crypto.aes_gcm_encrypt(
        merchant.apiv3_key, keys.certificate_pem, "certificate"
    )
    cert = keys.certificate
    return v3_json(
        {
            "data": [
                {
                    "serial_no": keys.serial_no,
                    "effective_time": ids.rfc3339(
                        cert.not_valid_before_utc.astimezone(ids.CHINA_TZ)
                    ),
                    "expire_time": ids.rfc3339(cert.not_valid_after_utc.astimezone(ids.CHINA_TZ)),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": ciphertext,
                    },
                }
            ]
        }
    )
