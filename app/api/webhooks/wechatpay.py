"""WeChat Pay's callbacks (API.md, WeChat callbacks).

A notification is verified with the merchant's keys, checked against our order or refund, and
applied by the same service a query uses; the reply goes out only after that commit. A repeat
succeeds without effect. One that fails a check changes nothing, is logged with its reason,
and gets a failure reply (v3: 4xx with ``{"code": "FAIL"}``; v2: FAIL XML with HTTP 200).
"""

from __future__ import annotations

import logging
import time

from flask import Response, jsonify, request
from flask_smorest import Blueprint
from werkzeug.exceptions import HTTPException

from app.clients import pay_config
from app.database import utcnow
from app.errors import AppError
from app.extensions import db, redis
from app.integrations.wechatpay import Notification, PayRejected
from app.services import payments, refunds, wallets, withdrawals

log = logging.getLogger("fenxiao.webhooks")
blp = Blueprint("wechatpay_webhooks", __name__, url_prefix="/webhooks/wechatpay",
                description="WeChat Pay notifications (called by WeChat, signed)")
V2_REPLY = ("<xml><return_code><![CDATA[{code}]]></return_code>"
            "<return_msg><![CDATA[{message}]]></return_msg></xml>")


def _gateway(merchant_id: int, api: str):
    try:
        gateway = pay_config().gateway(merchant_id)
    except AppError:
        raise PayRejected("merchant_not_configured") from None
    if gateway.api != api:
        raise PayRejected(f"merchant_does_not_use_{api}")
    return gateway


def _apply(merchant_id: int, note: Notification) -> None:
    if note.kind == "payment":
        outcome = payments.apply_payment(merchant_id=merchant_id, payment=note.payment,
                                         now=utcnow())
    elif note.kind == "refund":
        outcome = refunds.apply_refund_result(merchant_id=merchant_id, result=note.refund,
                                              now=utcnow())
    elif note.kind == "transfer":
        outcome = withdrawals.apply_transfer_result(merchant_id=merchant_id,
                                                    result=note.transfer, now=utcnow())
    else:
        raise PayRejected(f"unsupported_event:{note.event_type}")
    log.info("wechatpay notification applied", extra={
        "merchant_id": merchant_id, "event_type": note.event_type, "outcome": outcome.result})
    # After the commit: the fast path to the wallet mirror (the outbox sweep covers a failure).
    wallets.mirror_members(redis.client, merchant_id=merchant_id,
                           member_ids=outcome.member_ids)
    db.session.rollback()


def _rejected(merchant_id: int, api: str, exc: PayRejected) -> None:
    db.session.rollback()
    log.warning("wechatpay notification rejected", extra={
        "merchant_id": merchant_id, "api": api, "reason": exc.reason})


@blp.route("/v3/<int:merchant_id>", methods=["POST"])
@blp.doc(responses={"204": {"description": "applied (or a repeat)"},
                    "400": {"description": '{"code": "FAIL", "message": reason}'}})
def v3_notification(merchant_id: int):
    """Any APIv3 notification: TRANSACTION.SUCCESS, REFUND.SUCCESS/ABNORMAL/CLOSED,
    MCHTRANSFER.BILL.FINISHED."""
    try:
        note = _gateway(merchant_id, "v3").parse_notification(
            request.headers, request.get_data(), now=time.time())
        _apply(merchant_id, note)
    except PayRejected as exc:
        _rejected(merchant_id, "v3", exc)
        return jsonify({"code": "FAIL", "message": exc.reason}), 400
    except HTTPException:  # a body over the size limit: answered as such, not as our failure
        raise
    except Exception:  # the database or Redis failed: WeChat must retry, so answer 5xx
        db.session.rollback()
        log.exception("wechatpay notification failed", extra={"merchant_id": merchant_id})
        return jsonify({"code": "FAIL", "message": "temporarily unavailable"}), 500
    return Response(status=204)


def _v2(merchant_id: int, parse_name: str) -> Response:
    try:
        gateway = _gateway(merchant_id, "v2")
        _apply(merchant_id, getattr(gateway, parse_name)(request.get_data()))
    except PayRejected as exc:
        _rejected(merchant_id, "v2", exc)
        return _xml("FAIL", exc.reason)
    except HTTPException:
        raise
    except Exception:
        db.session.rollback()
        log.exception("wechatpay notification failed", extra={"merchant_id": merchant_id})
        return _xml("FAIL", "temporarily unavailable", status=500)
    return _xml("SUCCESS", "OK")


def _xml(code: str, message: str, status: int = 200) -> Response:
    return Response(V2_REPLY.format(code=code, message=message), status=status,
                    content_type="text/xml; charset=utf-8")


def _xml_reply(description: str) -> dict:
    return {"description": description,
            "content": {"text/xml": {"schema": {"type": "string"}}}}


V2_RESPONSES = {"200": _xml_reply("WeChat's XML reply: SUCCESS once applied (or a repeat); "
                                  "FAIL, still HTTP 200, for a bad signature or content"),
                "500": _xml_reply("FAIL: the database or Redis failed, WeChat retries")}


@blp.route("/v2/<int:merchant_id>/payment", methods=["POST"])
@blp.doc(responses=V2_RESPONSES)
def v2_payment_notification(merchant_id: int):
    """APIv2 payment result (XML, MD5 or HMAC-SHA256 signed)."""
    return _v2(merchant_id, "parse_payment_notification")


@blp.route("/v2/<int:merchant_id>/refund", methods=["POST"])
@blp.doc(responses=V2_RESPONSES)
def v2_refund_notification(merchant_id: int):
    """APIv2 refund result (``req_info`` encrypted with the API key)."""
    return _v2(merchant_id, "parse_refund_notification")
