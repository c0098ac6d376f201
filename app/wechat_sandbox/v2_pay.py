"""APIv2 (XML) payments: unifiedorder, orderquery, closeorder, refund, refundquery."""

from flask import Blueprint, Response, request

from . import crypto, ids, resources
from .context import current
from .state import Order
from .v3_common import V3Error
from .v3_pay import open_refund, valid_notify_url
from .xmlwire import parse_xml, to_xml

bp = Blueprint("wechatpay_v2", __name__)

ORDER_FIELDS = ("body", "total_fee", "openid", "notify_url", "trade_type", "fee_type", "attach")


class V2Fail(Exception):
    """A business failure: return_code SUCCESS, result_code FAIL, err_code / err_code_des."""

    def __init__(self, err_code, err_code_des):
        super().__init__(err_code_des)
        self.err_code, self.err_code_des = err_code, err_code_des


def _xml(fields):
    return Response(to_xml(fields), content_type="text/xml; charset=utf-8")


def _transport_fail(message):
    return _xml({"return_code": "FAIL", "return_msg": message})


def sign_type_for(merchant, params):
    """The request's own sign_type wins (WeChat signs answers the way it was asked); a request that
    names none gets the merchant's configured sign_type."""
    return params.get("sign_type") or merchant.sign_type


def _signed(merchant, params, fields):
    """Success envelope, signed with the api key."""
    sign_type = sign_type_for(merchant, params)
    out = {
        "return_code": "SUCCESS",
        "return_msg": "OK",
        "appid": params.get("appid", merchant.appid),
        "mch_id": merchant.mch_id,
        "nonce_str": ids.random_alnum(16),
    }
    out.update(fields)
    out["sign"] = crypto.v2_sign(out, merchant.api_key, sign_type)
    return _xml(out)


def v2_endpoint(handler):
    """Parse and verify the signed XML request, then run handler(merchant, params) -> fields."""

    def view():
        params = parse_xml(request.get_data())
        if params is None:
            return _transport_fail("XML格式错误")
        merchant = current().state.merchants.get(params.get("mch_id", ""))
        if merchant is None:
            return _transport_fail("mch_id参数格式错误或商户号不存在")
        if not crypto.v2_verify(params, merchant.api_key):
            return _transport_fail("签名错误")
        if params.get("appid") != merchant.appid:
            return _transport_fail("appid和mch_id不匹配")
        try:
            fields = {"result_code": "SUCCESS"} | handler(merchant, params)
        except V2Fail as fail:
            fields = {
                "result_code": "FAIL",
                "err_code": fail.err_code,
                "err_code_des": fail.err_code_des,
            }
        except V3Error as err:  # rules shared with APIv3 (refund amounts)
            fields = {"result_code": "FAIL", "err_code": err.code, "err_code_des": err.message}
        return _signed(merchant, params, fields)

    view.__name__ = handler.__name__
    return view


def _need(params, *names):
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise V2Fail("LACK_PARAMS", f"缺少参数{missing[0]}")


def _fen(value, name):
    if not str(value).isdigit() or int(value) <= 0:
        raise V2Fail("INVALID_REQUEST", f"{name}参数格式错误")
    return int(value)


def unifiedorder(merchant, params):
    _need(
        params, "body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type"
    )
    total = _fen(params["total_fee"], "total_fee")
    if params["trade_type"] not in ("JSAPI", "NATIVE"):
        raise V2Fail("INVALID_REQUEST", "trade_type参数错误")
    if params["trade_type"] == "JSAPI":
        _need(params, "openid")
    if not valid_notify_url(params["notify_url"]):
        raise V2Fail("INVALID_REQUEST", "notify_url参数格式错误")
    state = current().state
    with state.lock:
        order = state.orders.get((merchant.mch_id, params["out_trade_no"]))
        if order is None:
            order = Order(
                mch_id=merchant.mch_id,
                out_trade_no=params["out_trade_no"],
                appid=merchant.appid,
                api="v2",
                description=params["body"],
                total=total,
                openid=params.get("openid", ""),
                notify_url=params["notify_url"],
                attach=params.get("attach", ""),
                fingerprint=tuple(params.get(f, "") for f in ORDER_FIELDS),
                prepay_id=ids.prepay_id(),
                sign_type=sign_type_for(merchant, params),
                trade_type=params["trade_type"],
            )
            state.orders[(order.mch_id, order.out_trade_no)] = order
        elif order.trade_state in ("SUCCESS", "REFUND"):
            raise V2Fail("ORDERPAID", "该订单已支付")
        elif order.trade_state == "CLOSED":
            raise V2Fail("ORDERCLOSED", "该订单已关闭")
        elif order.fingerprint != tuple(params.get(f, "") for f in ORDER_FIELDS):
            raise V2Fail("INVALID_REQUEST", "201 商户订单号重复")
    return {"trade_type": order.trade_type, "prepay_id": order.prepay_id}


def _find_order(merchant, params):
    if not (params.get("transaction_id") or params.get("out_trade_no")):
        raise V2Fail("LACK_PARAMS", "transaction_id和out_trade_no至少填一个")
    order = current().state.order_for(
        merchant.mch_id, params.get("out_trade_no"), params.get("transaction_id")
    )
    if order is None:
        raise V2Fail("ORDERNOTEXIST", "订单不存在")
    return order


def orderquery(merchant, params):
    with current().state.lock:
        order = _find_order(merchant, params)
        fields = {
            "out_trade_no": order.out_trade_no,
            "trade_state": order.trade_state,
            "trade_state_desc": resources.TRADE_STATE_DESC[order.trade_state],
            "total_fee": order.total,
            "fee_type": "CNY",
            "attach": order.attach,
        }
        if order.transaction_id:
            fields.update(
                openid=order.openid,
                is_subscribe="N",
                trade_type=order.trade_type,
                bank_type="OTHERS",
                cash_fee=order.payer_total,
                transaction_id=order.transaction_id,
                time_end=ids.compact_time(order.success_time),
            )
    return {k: v for k, v in fields.items() if v != ""}


def closeorder(merchant, params):
    _need(params, "out_trade_no")
    with current().state.lock:
        order = _find_order(merchant, params)
        if order.trade_state in ("SUCCESS", "REFUND"):
            raise V2Fail("ORDERPAID", "订单已支付，不能发起关单")
        order.trade_state = "CLOSED"
    return {}


def refund(merchant, params):
    _need(params, "out_refund_no", "total_fee", "refund_fee")
    amount = {
        "total": _fen(params["total_fee"], "total_fee"),
        "refund": _fen(params["refund_fee"], "refund_fee"),
    }
    notify_url = params.get("notify_url", "")
    if notify_url and not valid_notify_url(notify_url):
        raise V2Fail("INVALID_REQUEST", "notify_url参数格式错误")
    state = current().state
    with state.lock:
        existing = state.refunds.get((merchant.mch_id, params["out_refund_no"]))
        if existing and existing.fingerprint != (amount["total"], amount["refund"]):
            raise V2Fail("INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试")
        rec = existing or open_refund(
            _find_order(merchant, params), params["out_refund_no"], amount, notify_url, "v2"
        )
    return {
        "transaction_id": rec.transaction_id,
        "out_trade_no": rec.out_trade_no,
        "out_refund_no": rec.out_refund_no,
        "refund_id": rec.refund_id,
        "refund_fee": rec.refund,
        "total_fee": rec.total,
        "cash_fee": rec.total,
        "refund_channel": "ORIGINAL",
    }


def refundquery(merchant, params):
    state = current().state
    with state.lock:
        if params.get("out_refund_no") or params.get("refund_id"):
            rows = [
                r
                for r in state.refunds.values()
                if r.mch_id == merchant.mch_id
                and params.get("out_refund_no", r.out_refund_no) == r.out_refund_no
                and params.get("refund_id", r.refund_id) == r.refund_id
            ]
        else:
            rows = state.refunds_of(_find_order(merchant, params))
        if not rows:
            raise V2Fail("REFUNDNOTEXIST", "退款订单查询失败")
        first = rows[0]
        fields = {
            "transaction_id": first.transaction_id,
            "out_trade_no": first.out_trade_no,
            "total_fee": first.total,
            "cash_fee": first.total,
            "refund_count": len(rows),
        }
        for n, row in enumerate(rows):
            fields.update(_refund_row(n, row))
    return fields


def _refund_row(n, row):
    fields = {
        f"out_refund_no_{n}": row.out_refund_no,
        f"refund_id_{n}": row.refund_id,
        f"refund_fee_{n}": row.refund,
        f"refund_status_{n}": resources.V2_REFUND_STATUS[row.status],
        f"refund_recv_accout_{n}": resources.USER_RECEIVED_ACCOUNT,
        f"refund_channel_{n}": "ORIGINAL",
    }
    if row.success_time:
        fields[f"refund_success_time_{n}"] = row.success_time.strftime("%Y-%m-%d %H:%M:%S")
    return fields


for _path, _handler in (
    ("/pay/unifiedorder", unifiedorder),
    ("/pay/orderquery", orderquery),
    ("/pay/closeorder", closeorder),
    ("/secapi/pay/refund", refund),
    ("/pay/refundquery", refundquery),
):
    bp.add_url_rule(_path, view_func=v2_endpoint(_handler), methods=["POST"])
