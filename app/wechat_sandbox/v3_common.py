"""APIv3 gateway plumbing: verify merchants' Authorization headers, sign every response."""

import json
import re
import time

from flask import Response, g, request

from . import crypto, ids
from .context import current
from .notify import SIGNATURE_TYPE

AUTH_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')
MAX_CLOCK_SKEW = 300  # seconds, WeChat's 5-minute window


class V3Error(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def require(condition, message, code="PARAM_ERROR", status=400):
    if not condition:
        raise V3Error(status, code, message)


def v3_json(obj, status=200):
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, content_type="application/json; charset=utf-8")


def handle_v3_error(err):
    return v3_json({"code": err.code, "message": err.message}, err.status)


def _signed_path():
    """The request target exactly as the client signed it (path plus raw query)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return raw
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


def parse_authorization(header):
    scheme, _, params = (header or "").partition(" ")
    if scheme != SIGNATURE_TYPE:
        return None
    return dict(AUTH_PARAM_RE.findall(params))


def authenticate():
    """The calling merchant, after checking its signature like WeChat; raises V3Error otherwise."""
    sandbox = current()
    auth = parse_authorization(request.headers.get("Authorization"))
    require(auth is not None, "Authorization头格式错误或签名类型不支持", "SIGN_ERROR", 401)
    merchant = sandbox.state.merchants.get(auth.get("mchid", ""))
    require(merchant is not None, "商户号不存在或未开通APIv3", "SIGN_ERROR", 401)
    require(auth.get("serial_no") == merchant.serial_no, "商户证书序列号有误", "SIGN_ERROR", 401)
    timestamp = auth.get("timestamp", "")
    require(
        timestamp.isdigit() and abs(time.time() - int(timestamp)) <= MAX_CLOCK_SKEW,
        "请求时间戳与当前时间相差过大",
        "SIGN_ERROR",
        401,
    )
    body = request.get_data(cache=True).decode("utf-8", "replace")
    message = (
        f"{request.method}\n{_signed_path()}\n{timestamp}\n{auth.get('nonce_str', '')}\n{body}\n"
    )
    require(
        crypto.rsa_verify(merchant.public_key, message, auth.get("signature", "")),
        "错误的签名，验签失败",
        "SIGN_ERROR",
        401,
    )
    g.merchant = merchant
    g.response_serial = _response_serial(merchant)
    return merchant


def _response_serial(merchant):
    # Merchants in migration get responses signed with whichever key they named in Wechatpay-Serial.
    keys = current().keys
    requested = request.headers.get("Wechatpay-Serial")
    if requested:
        require(
            keys.is_known_serial(requested), "Wechatpay-Serial对应的证书或公钥不存在", "PARAM_ERROR"
        )
        return requested
    return keys.serial_for_mode(merchant.mode)


def sign_response(response):
    keys = current().keys
    serial = getattr(g, "response_serial", None) or keys.public_key_id
    timestamp, nonce = str(int(time.time())), ids.random_alnum(32)
    message = f"{timestamp}\n{nonce}\n{response.get_data(as_text=True)}\n"
    response.headers["Wechatpay-Timestamp"] = timestamp
    response.headers["Wechatpay-Nonce"] = nonce
    response.headers["Wechatpay-Signature"] = crypto.rsa_sign(keys.private_key_for(serial), message)
    response.headers["Wechatpay-Serial"] = serial
    response.headers["Wechatpay-Signature-Type"] = SIGNATURE_TYPE
    response.headers["Request-ID"] = ids.request_id()
    return response


def request_json():
    try:
        data = json.loads(request.get_data(cache=True) or b"")
    except ValueError:
        data = None
    require(isinstance(data, dict), "请求体不是合法的JSON")
    return data


def fingerprint(data, fields):
    return tuple(json.dumps(data.get(f), sort_keys=True, ensure_ascii=False) for f in fields)


def install(bp):
    """Every v3 blueprint signs its responses and turns V3Error into WeChat's error JSON."""
    bp.register_error_handler(V3Error, handle_v3_error)
    bp.after_request(sign_response)
