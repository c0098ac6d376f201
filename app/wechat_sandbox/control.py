"""Control API under /sandbox: create merchants, play the payer / WeChat, inspect notifications."""

import time

from flask import Blueprint, jsonify, request

from . import ids, resources
from . import keys as platform_keys
from .context import current
from .notify import V3_EVENTS, describe
from .state import Merchant, Notification, persist_merchants
from .v3_transfer import finish_transfer

bp = Blueprint("wechat_sandbox_control", __name__, url_prefix="/sandbox")

MODES = ("v3_public_key", "v3_certificate", "v2")
REFUND_EVENTS = {
    "SUCCESS": "REFUND.SUCCESS",
    "ABNORMAL": "REFUND.ABNORMAL",
    "CLOSED": "REFUND.CLOSED",
}
TRANSFER_OUTCOMES = {  # action -> (final state, fail_reason)
    "confirm": ("SUCCESS", ""),
    "reject": ("FAIL", "PAYEE_ACCOUNT_ABNORMAL"),
    "expire": ("CANCELLED", ""),  # the user did not confirm in time: WeChat closes the bill
}


def _error(status, message):
    return jsonify({"error": message}), status


def _body():
    return request.get_json(silent=True) or {}


MAX_COPIES = 100
# WeChat's retry delays after a failed delivery (WECHAT.md): 15 deliveries in 24 h 4 min.
RETRY_SCHEDULE_SECONDS = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800,
                          10800, 21600, 21600)


def _copies(body):
    """How many identical copies to deliver (1..MAX_COPIES), or None when unusable.
    ``retry_schedule: true`` means one delivery per step of WeChat's retry schedule."""
    if body.get("retry_schedule"):
        return len(RETRY_SCHEDULE_SECONDS)
    try:
        copies = int(body.get("copies", 1))
    except (TypeError, ValueError):
        return None
    return copies if 1 <= copies <= MAX_COPIES else None


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/platform")
def platform():
    keys = current().keys
    return jsonify(
        {
            "wechatpay_public_key_id": keys.public_key_id,
            "wechatpay_public_key_pem": keys.public_key_pem,
            "platform_certificate_serial_no": keys.serial_no,
            "platform_certificate_pem": keys.certificate_pem,
        }
    )


@bp.post("/merchants")
def create_merchant():
    sandbox = current()
    body = _body()
    mode = body.get("mode", "v3_public_key")
    sign_type = body.get("sign_type", "MD5")
    if mode not in MODES or sign_type not in ("MD5", "HMAC-SHA256"):
        return _error(400, f"mode must be one of {MODES}; sign_type MD5 or HMAC-SHA256")
    private_key = platform_keys.new_rsa_key()
    merchant = Merchant(
        mch_id=ids.mch_id(),
        appid=body.get("appid") or sandbox.appid,
        mode=mode,
        sign_type=sign_type,
        apiv3_key=ids.random_alnum(32),
        api_key=ids.random_alnum(32),
        serial_no=ids.hex_serial(),
        public_key=private_key.public_key(),
    )
    with sandbox.state.lock:
        sandbox.state.merchants[merchant.mch_id] = merchant
    persist_merchants(sandbox)
    keys = sandbox.keys
    return jsonify(
        {
            "mch_id": merchant.mch_id,
            "appid": merchant.appid,
            "mode": mode,
            "sign_type": sign_type,
            "apiv3_key": merchant.apiv3_key,
            "api_key": merchant.api_key,
            "merchant_serial_no": merchant.serial_no,
            "merchant_private_key_pem": platform_keys.private_key_pem(private_key),
            "wechatpay_public_key_id": keys.public_key_id,
            "wechatpay_public_key_pem": keys.public_key_pem,
            "platform_certificate_serial_no": keys.serial_no,
            "platform_certificate_pem": keys.certificate_pem,
        }
    ), 201


@bp.get("/openid")
def openid():
    """The ids a user key logs in as, without spending a login code (handy for payer openids)."""
    sandbox = current()
    user, seed = request.args.get("user", ""), sandbox.config["SANDBOX_SEED"]
    if not user:
        return _error(400, "user is required")
    appid = request.args.get("appid") or sandbox.appid
    return jsonify({"openid": ids.openid(seed, appid, user), "unionid": ids.unionid(seed, user)})


@bp.post("/tokens/expire")
def expire_tokens():
    """Expire one access token (or all): lets clients exercise their 42001 refresh path."""
    state, token = current().state, _body().get("access_token")
    with state.lock:
        targets = [token] if token in state.tokens else ([] if token else list(state.tokens))
        for t in targets:
            state.tokens[t] = time.time() - 1
    return jsonify({"expired": len(targets)})


@bp.post("/pay/<mch_id>/<out_trade_no>")
def pay(mch_id, out_trade_no):
    sandbox = current()
    body = _body()
    copies = _copies(body)
    if copies is None:
        return _error(400, f"copies must be 1..{MAX_COPIES}")
    with sandbox.state.lock:
        order = sandbox.state.order_for(mch_id, out_trade_no)
        if order is None:
            return _error(404, "order not found")
        if order.trade_state != "NOTPAY":
            return _error(
                409, f"order is {order.trade_state}; use the resend endpoint to notify again"
            )
        _mark_paid(sandbox, order, body.get("payer_total_fen"))
        note = _payment_notification(sandbox, order, body.get("total_fen"))
    deliveries = sandbox.notifier.deliver(note, copies, bool(body.get("concurrent")))
    return jsonify(
        {
            "transaction_id": order.transaction_id,
            "notification_id": note.id,
            "deliveries": deliveries,
        }
    )


def _mark_paid(sandbox, order, payer_total):
    order.trade_state = "SUCCESS"
    order.transaction_id = ids.transaction_id()
    order.success_time = ids.now_china()
    order.payer_total = order.total if payer_total is None else int(payer_total)
    sandbox.state.orders_by_txn[order.transaction_id] = order


def _payment_notification(sandbox, order, total_override):
    """total_override only changes what the notification claims: for amount-mismatch tests."""
    merchant = sandbox.state.merchants[order.mch_id]
    override = None if total_override is None else int(total_override)
    if order.api == "v2":
        fields = resources.payment_notify_v2(order, merchant, override)
        return sandbox.notifier.build_v2_payment(
            merchant, order.notify_url, fields, order.sign_type
        )
    resource = resources.transaction_v3(order, override)
    return sandbox.notifier.build_v3(merchant, order.notify_url, "TRANSACTION.SUCCESS", resource)


@bp.get("/notifications")
def list_notifications():
    sandbox, mch_id = current(), request.args.get("mch_id")
    with sandbox.state.lock:
        notes = [
            describe(n)
            for n in sandbox.state.notifications.values()
            if not mch_id or n.mch_id == mch_id
        ]
    return jsonify({"notifications": notes})


@bp.post("/notifications/<notification_id>/resend")
def resend(notification_id):
    sandbox = current()
    note = sandbox.state.notifications.get(notification_id)
    if note is None:
        return _error(404, "notification not found")
    body = _body()
    copies = _copies(body)
    if copies is None:
        return _error(400, f"copies must be 1..{MAX_COPIES}")
    deliveries = sandbox.notifier.deliver(note, copies, bool(body.get("concurrent")))
    return jsonify({"notification_id": note.id, "deliveries": deliveries})


@bp.post("/notifications/<notification_id>/sign")
def sign_notification(notification_id):
    """A delivery as WeChat would send it now (fresh timestamp, nonce and signature), without
    sending it: for callers that cannot be reached over HTTP, such as an in-process client."""
    sandbox = current()
    note = sandbox.state.notifications.get(notification_id)
    if note is None:
        return _error(404, "notification not found")
    return jsonify(
        {"url": note.url, "headers": sandbox.notifier.headers_for(note), "body": note.body.decode()}
    )


@bp.post("/notifications/custom")
def custom_notification():
    """A notification whose content the caller chooses (another appid, mch_id or amount, an
    order never created), encrypted and signed exactly as WeChat would for that merchant, so a
    receiver's content checks can be reached past its signature check. Stored, not delivered:
    send it with the resend or sign endpoint.

    v3 merchants: {"mch_id", "url", "event_type", "resource"}, encrypted with the merchant's
    APIv3 key and signed with the platform key of its mode; or {"mch_id", "url", "raw_body"},
    signed as given (a body that is not even JSON, which only a signature check can let
    through). v2 merchants: {"mch_id", "url", "fields"}, a payment notification signed with
    the merchant's API key and sign type.
    """
    sandbox, body = current(), _body()
    merchant = sandbox.state.merchants.get(body.get("mch_id"))
    if merchant is None:
        return _error(404, "merchant not found")
    url = body.get("url")
    if not isinstance(url, str) or not url:
        return _error(400, "url is required")
    if merchant.mode == "v2":
        fields = body.get("fields")
        if not isinstance(fields, dict) or not fields:
            return _error(400, "fields must be a non-empty object")
        note = sandbox.notifier.build_v2_payment(merchant, url, fields, merchant.sign_type)
    elif isinstance(body.get("raw_body"), str):
        note = Notification(ids.notification_id(), merchant.mch_id, "v3",
                            body.get("event_type", ""), url, body["raw_body"].encode(), {},
                            serial=sandbox.keys.serial_for_mode(merchant.mode))
        sandbox.state.add_notification(note)
    else:
        event_type, resource = body.get("event_type", "TRANSACTION.SUCCESS"), body.get("resource")
        if event_type not in V3_EVENTS:
            return _error(400, f"event_type must be one of {sorted(V3_EVENTS)}")
        if not isinstance(resource, dict):
            return _error(400, "resource must be an object")
        note = sandbox.notifier.build_v3(merchant, url, event_type, resource)
    return jsonify({"notification_id": note.id}), 201


@bp.post("/refunds/<mch_id>/<out_refund_no>/complete")
def complete_refund(mch_id, out_refund_no):
    sandbox = current()
    status = _body().get("status", "SUCCESS")
    if status not in REFUND_EVENTS:
        return _error(400, "status must be SUCCESS, ABNORMAL or CLOSED")
    with sandbox.state.lock:
        refund = sandbox.state.refunds.get((mch_id, out_refund_no))
        if refund is None:
            return _error(404, "refund not found")
        if refund.status not in ("PROCESSING", "ABNORMAL"):  # ABNORMAL is not final on WeChat
            return _error(409, f"refund is already {refund.status}")
        _set_refund_status(sandbox, refund, status)
        note = _refund_notification(sandbox, refund)
    deliveries = sandbox.notifier.deliver(note) if note else []
    return jsonify(
        {
            "status": refund.status,
            "notification_id": note.id if note else None,
            "deliveries": deliveries,
        }
    )


def _set_refund_status(sandbox, refund, status):
    refund.status = status
    if status == "SUCCESS":
        refund.success_time = ids.now_china()
    if status == "CLOSED":  # the money goes back to the refundable pool
        order = sandbox.state.order_for(refund.mch_id, refund.out_trade_no)
        order.refunded -= refund.refund


def _refund_notification(sandbox, refund):
    if not refund.notify_url:
        return None
    merchant = sandbox.state.merchants[refund.mch_id]
    event = REFUND_EVENTS[refund.status]
    if refund.api == "v2":
        appid = sandbox.state.order_for(refund.mch_id, refund.out_trade_no).appid
        fields = resources.refund_req_info_v2(refund)
        return sandbox.notifier.build_v2_refund(merchant, appid, refund.notify_url, event, fields)
    return sandbox.notifier.build_v3(
        merchant, refund.notify_url, event, resources.refund_notify_v3(refund)
    )


@bp.post("/transfers/<mch_id>/<out_bill_no>/<action>")
def finish(mch_id, out_bill_no, action):
    sandbox = current()
    if action not in TRANSFER_OUTCOMES:
        return _error(404, "action must be confirm, reject or expire")
    final_state, fail_reason = TRANSFER_OUTCOMES[action]
    fail_reason = _body().get("fail_reason", fail_reason) if final_state == "FAIL" else fail_reason
    with sandbox.state.lock:
        transfer = sandbox.state.transfers.get((mch_id, out_bill_no))
        if transfer is None:
            return _error(404, "transfer bill not found")
        if transfer.state != "WAIT_USER_CONFIRM":
            return _error(409, f"transfer bill is already {transfer.state}")
        note = finish_transfer(sandbox, transfer, final_state, fail_reason)
    deliveries = sandbox.notifier.deliver(note) if note else []
    return jsonify(
        {
            "state": transfer.state,
            "notification_id": note.id if note else None,
            "deliveries": deliveries,
        }
    )
