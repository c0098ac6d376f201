"""WeChat's objects (query results, decrypted notification resources) from sandbox state."""

from .ids import compact_time, rfc3339

TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "订单发生过退款",
}
# v2 spells refund states differently from v3.
V2_REFUND_STATUS = {
    "PROCESSING": "PROCESSING",
    "SUCCESS": "SUCCESS",
    "CLOSED": "REFUNDCLOSE",
    "ABNORMAL": "CHANGE",
}
USER_RECEIVED_ACCOUNT = "支付用户零钱"


def transaction_v3(order, total_override=None):
    paid = order.trade_state in ("SUCCESS", "REFUND")
    result = {
        "appid": order.appid,
        "mchid": order.mch_id,
        "out_trade_no": order.out_trade_no,
        "trade_state": order.trade_state,
        "trade_state_desc": TRADE_STATE_DESC[order.trade_state],
        "attach": order.attach,
        "amount": {"total": order.total, "currency": order.currency, "payer_currency": "CNY"},
        "payer": {"openid": order.openid} if paid else {},
        "promotion_detail": [],
    }
    if paid:
        result.update(
            {
                "transaction_id": order.transaction_id,
                "trade_type": order.trade_type,
                "bank_type": "OTHERS",
                "success_time": rfc3339(order.success_time),
            }
        )
        result["amount"]["payer_total"] = order.payer_total
    if total_override is not None:
        result["amount"]["total"] = total_override
    return result


def refund_v3(refund):
    result = {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": USER_RECEIVED_ACCOUNT,
        "create_time": rfc3339(refund.create_time),
        "status": refund.status,
        "funds_account": refund.funds_account,
        "amount": _refund_amount(refund)
        | {
            "from": [],
            "settlement_refund": refund.refund,
            "settlement_total": refund.total,
            "discount_refund": 0,
            "currency": "CNY",
            "refund_fee": 0,
        },
        "promotion_detail": [],
    }
    if refund.success_time:
        result["success_time"] = rfc3339(refund.success_time)
    return result


def refund_notify_v3(refund):
    result = {
        "mchid": refund.mch_id,
        "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "refund_status": refund.status,
        "user_received_account": USER_RECEIVED_ACCOUNT,
        "amount": _refund_amount(refund),
    }
    if refund.success_time:
        result["success_time"] = rfc3339(refund.success_time)
    return result


def _refund_amount(refund):
    return {
        "total": refund.total,
        "refund": refund.refund,
        "payer_total": refund.total,
        "payer_refund": refund.refund,
    }


def transfer_v3(transfer):
    result = {
        "mch_id": transfer.mch_id,
        "out_bill_no": transfer.out_bill_no,
        "transfer_bill_no": transfer.transfer_bill_no,
        "appid": transfer.appid,
        "state": transfer.state,
        "transfer_amount": transfer.amount,
        "transfer_remark": transfer.remark,
        "openid": transfer.openid,
        "create_time": rfc3339(transfer.create_time),
        "update_time": rfc3339(transfer.update_time),
    }
    if transfer.fail_reason:
        result["fail_reason"] = transfer.fail_reason
    return result


def transfer_notify_v3(transfer):
    keys = (
        "out_bill_no",
        "transfer_bill_no",
        "state",
        "mch_id",
        "transfer_amount",
        "openid",
        "fail_reason",
        "create_time",
        "update_time",
    )
    full = transfer_v3(transfer)
    return {k: full[k] for k in keys if k in full}


def payment_notify_v2(order, merchant, total_override=None):
    """Unsigned v2 payment notification fields (the caller adds sign / sign_type)."""
    fields = {
        "appid": order.appid,
        "mch_id": order.mch_id,
        "nonce_str": "",  # filled by the caller
        "openid": order.openid,
        "is_subscribe": "N",
        "trade_type": order.trade_type,
        "bank_type": "OTHERS",
        "total_fee": order.total if total_override is None else total_override,
        "cash_fee": order.payer_total,
        "fee_type": "CNY",
        "transaction_id": order.transaction_id,
        "out_trade_no": order.out_trade_no,
        "attach": order.attach,
        "time_end": compact_time(order.success_time),
        "result_code": "SUCCESS",
        "return_code": "SUCCESS",
    }
    return {k: v for k, v in fields.items() if v != "" or k == "nonce_str"}


def refund_req_info_v2(refund):
    fields = {
        "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "total_fee": refund.total,
        "settlement_total_fee": refund.total,
        "refund_fee": refund.refund,
        "settlement_refund_fee": refund.refund,
        "refund_status": V2_REFUND_STATUS[refund.status],
        "refund_recv_accout": USER_RECEIVED_ACCOUNT,  # sic: WeChat's spelling
        "refund_account": "REFUND_SOURCE_UNSETTLED_FUNDS",
        "refund_request_source": "API",
    }
    if refund.success_time:
        fields["success_time"] = refund.success_time.strftime("%Y-%m-%d %H:%M:%S")
    return fields
