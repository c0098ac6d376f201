"""APIv3 商家转账 (merchant transfer to a user's WeChat balance, the 2025 product)."""

import base64
import re
import secrets

from flask import Blueprint, request

from . import crypto, ids, resources
from .context import current
from .state import Transfer
from .v3_common import (
    authenticate,
    fingerprint,
    install,
    request_json,
    require,
    v3_json,
)
from .v3_pay import valid_amount, valid_notify_url

bp = Blueprint("wechatpay_v3_transfer", __name__)
install(bp)

BASE = "/v3/fund-app/mch-transfer/transfer-bills"
OUT_BILL_NO_RE = re.compile(r"[0-9A-Za-z]{5,32}")
# Each scene needs exactly its own report items (info_type), as registered with WeChat.
SCENE_REPORT_TYPES = {"1000": {"活动名称", "奖励说明"}, "1005": {"岗位类型", "报酬说明"}}
USER_NAME_REQUIRED_FROM = 200000  # fen: 2,000 CNY
FINAL_STATES = {"SUCCESS", "FAIL", "CANCELLED"}
TRANSFER_FIELDS = (
    "appid",
    "transfer_scene_id",
    "openid",
    "transfer_amount",
    "transfer_remark",
    "transfer_scene_report_infos",
    "notify_url",
)


@bp.post(BASE)
def create_transfer():
    merchant = authenticate()
    data = request_json()
    _validate(merchant, data)
    user_name = _decrypt_user_name(data)
    state = current().state
    with state.lock:
        existing = state.transfers.get((merchant.mch_id, data["out_bill_no"]))
        if existing:
            require(
                existing.fingerprint == fingerprint(data, TRANSFER_FIELDS),
                "同一商户单号的请求参数与之前不一致",
                "INVALID_REQUEST",
            )
            return v3_json(_created_view(existing))
        now = ids.now_china()
        transfer = Transfer(
            mch_id=merchant.mch_id,
            out_bill_no=data["out_bill_no"],
            transfer_bill_no=ids.transfer_bill_no(),
            appid=data["appid"],
            openid=data["openid"],
            amount=data["transfer_amount"],
            remark=data["transfer_remark"],
            scene_id=data["transfer_scene_id"],
            notify_url=data.get("notify_url") or "",
            fingerprint=fingerprint(data, TRANSFER_FIELDS),
            create_time=now,
            update_time=now,
            user_name=user_name,
            package_info=base64.b64encode(secrets.token_bytes(72)).decode(),
        )
        state.transfers[(merchant.mch_id, transfer.out_bill_no)] = transfer
        state.transfers_by_no[transfer.transfer_bill_no] = transfer
    return v3_json(_created_view(transfer))


def _created_view(transfer):
    view = {
        "out_bill_no": transfer.out_bill_no,
        "transfer_bill_no": transfer.transfer_bill_no,
        "create_time": ids.rfc3339(transfer.create_time),
        "state": transfer.state,
    }
    if transfer.state == "WAIT_USER_CONFIRM":
        view["package_info"] = transfer.package_info
    if transfer.fail_reason:
        view["fail_reason"] = transfer.fail_reason
    return view


def _validate(merchant, data):
    require(data.get("appid") == merchant.appid, "appid和mch_id不匹配", "INVALID_REQUEST")
    require(
        isinstance(data.get("out_bill_no"), str) and OUT_BILL_NO_RE.fullmatch(data["out_bill_no"]),
        "out_bill_no格式不正确，只能由数字、大小写字母组成，长度5-32",
    )
    scene = data.get("transfer_scene_id")
    require(scene in SCENE_REPORT_TYPES, "商户号未开通该转账场景或场景ID不正确", "NO_AUTH", 403)
    require(isinstance(data.get("openid"), str) and data["openid"], "openid必填")
    require(valid_amount(data.get("transfer_amount")), "transfer_amount必须为大于0的整数")
    remark = data.get("transfer_remark")
    require(
        isinstance(remark, str) and 0 < len(remark) <= 32, "transfer_remark必填且不超过32个字符"
    )
    require(
        not data.get("notify_url") or valid_notify_url(data["notify_url"]), "notify_url格式不正确"
    )
    require(
        data["transfer_amount"] < USER_NAME_REQUIRED_FROM or data.get("user_name"),
        "转账金额>=2000元时，收款用户姓名user_name必填",
    )
    infos = data.get("transfer_scene_report_infos")
    types = (
        [i.get("info_type") for i in infos if isinstance(i, dict) and i.get("info_content")]
        if isinstance(infos, list)
        else []
    )
    require(
        len(types) == len(SCENE_REPORT_TYPES[scene]) and set(types) == SCENE_REPORT_TYPES[scene],
        "需传入转账场景报备信息：" + "、".join(sorted(SCENE_REPORT_TYPES[scene])),
    )


def _decrypt_user_name(data):
    """user_name arrives RSA-OAEP encrypted for the key named in Wechatpay-Serial."""
    if not data.get("user_name"):
        return ""
    keys = current().keys
    serial = request.headers.get("Wechatpay-Serial")
    require(
        serial and keys.is_known_serial(serial),
        "加密敏感字段时必须在Wechatpay-Serial中传入对应的证书序列号或公钥ID",
    )
    try:
        return crypto.oaep_decrypt(keys.private_key_for(serial), data["user_name"])
    except ValueError:
        require(False, "user_name解密失败，请检查加密公钥与Wechatpay-Serial是否一致")


def _owned(merchant, out_bill_no=None, transfer_bill_no=None):
    state = current().state
    if transfer_bill_no:
        transfer = state.transfers_by_no.get(transfer_bill_no)
        transfer = transfer if transfer and transfer.mch_id == merchant.mch_id else None
    else:
        transfer = state.transfers.get((merchant.mch_id, out_bill_no))
    require(transfer is not None, "转账单据不存在", "NOT_FOUND", 404)
    return transfer


@bp.get(BASE + "/out-bill-no/<out_bill_no>")
def query_by_out_bill_no(out_bill_no):
    merchant = authenticate()
    with current().state.lock:
        return v3_json(resources.transfer_v3(_owned(merchant, out_bill_no=out_bill_no)))


@bp.get(BASE + "/transfer-bill-no/<transfer_bill_no>")
def query_by_transfer_bill_no(transfer_bill_no):
    merchant = authenticate()
    with current().state.lock:
        return v3_json(resources.transfer_v3(_owned(merchant, transfer_bill_no=transfer_bill_no)))


@bp.post(BASE + "/out-bill-no/<out_bill_no>/cancel")
def cancel(out_bill_no):
    merchant = authenticate()
    sandbox = current()
    with sandbox.state.lock:
        transfer = _owned(merchant, out_bill_no=out_bill_no)
        require(transfer.state not in FINAL_STATES, "转账单据已是终态，无法撤销", "INVALID_REQUEST")
        update_time = ids.now_china()
    # WeChat answers CANCELING and reports CANCELLED later through MCHTRANSFER.BILL.FINISHED.
    note = finish_transfer(sandbox, transfer, "CANCELLED", "")
    if note:
        sandbox.notifier.deliver_later(note)
    return v3_json(
        {
            "out_bill_no": transfer.out_bill_no,
            "transfer_bill_no": transfer.transfer_bill_no,
            "state": "CANCELING",
            "update_time": ids.rfc3339(update_time),
        }
    )


def finish_transfer(sandbox, transfer, final_state, fail_reason):
    """Move a bill to a final state and build (not send) its FINISHED notification, if any."""
    state = sandbox.state
    with state.lock:
        if transfer.state in FINAL_STATES:
            return None
        transfer.state, transfer.fail_reason = final_state, fail_reason
        transfer.update_time = ids.now_china()
        merchant = state.merchants[transfer.mch_id]
        resource = resources.transfer_notify_v3(transfer)
    if not transfer.notify_url:
        return None
    return sandbox.notifier.build_v3(
        merchant, transfer.notify_url, "MCHTRANSFER.BILL.FINISHED", resource
    )
