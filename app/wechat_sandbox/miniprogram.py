"""Mini-program server API: access tokens, login, phone number, share codes, URL links."""

import io
import json
import re
import secrets
import time

import qrcode
from flask import Blueprint, Response, jsonify, request
from PIL import Image

from . import ids
from .config import TOKEN_TTL_SECONDS
from .context import current

bp = Blueprint("wechat_miniprogram", __name__)

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40013: "invalid appid",
    40029: "invalid code",
    40125: "invalid appsecret",
    40165: "invalid weapp pagepath",
    40169: "invalid length for scene, or the data is not json string",
    40212: "invalid query",
    40226: "code blocked",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    41030: "invalid page",
    42001: "access_token expired",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
}
SCENE_RE = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}")
ERROR_CODE_RE = re.compile(r"sandbox-error:(-?\d+)")


def wx_error(errcode, errmsg=None):
    """WeChat reports errors as HTTP 200 JSON, with a request id appended to errmsg."""
    rid = "-".join(secrets.token_hex(4) for _ in range(3))
    text = errmsg or ERRMSG.get(errcode, "sandbox error")
    return jsonify({"errcode": errcode, "errmsg": f"{text}, rid: {rid}"})


def _check_app(appid, secret):
    sandbox = current()
    if not appid:
        return 41002
    if appid != sandbox.appid:
        return 40013
    if not secret:
        return 41004
    if secret != sandbox.config["SANDBOX_APP_SECRET"]:
        return 40125
    return None


def _issue_token():
    sandbox = current()
    token = ids.random_alnum(24) + "_" + secrets.token_urlsafe(96)
    with sandbox.state.lock:
        sandbox.state.tokens[token] = time.time() + TOKEN_TTL_SECONDS
    return token


def _token_error():
    """The errcode for this request's access_token, or None when it is valid."""
    token = request.args.get("access_token")
    if not token:
        return 41001
    expires_at = current().state.tokens.get(token)
    if expires_at is None:
        return 40001
    return 42001 if expires_at <= time.time() else None


def _json_body():
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@bp.get("/cgi-bin/token")
def token():
    if request.args.get("grant_type") != "client_credential":
        return wx_error(40002, "invalid grant_type")
    err = _check_app(request.args.get("appid"), request.args.get("secret"))
    if err:
        return wx_error(err)
    return jsonify({"access_token": _issue_token(), "expires_in": TOKEN_TTL_SECONDS})


@bp.post("/cgi-bin/stable_token")
def stable_token():
    body = _json_body() or {}
    err = _check_app(body.get("appid"), body.get("secret"))
    if err:
        return wx_error(err)
    state = current().state
    with state.lock:
        token = state.stable_tokens.get(body["appid"])
        expires_at = state.tokens.get(token, 0)
        if body.get("force_refresh") or expires_at - time.time() < 300:
            token = _issue_token()
            state.stable_tokens[body["appid"]] = token
            expires_at = state.tokens[token]
    return jsonify({"access_token": token, "expires_in": int(expires_at - time.time())})


def _scripted_error(code):
    """`sandbox-error:<errcode>` codes let tests provoke any WeChat error."""
    match = ERROR_CODE_RE.fullmatch(code)
    return int(match.group(1)) if match else None


@bp.get("/sns/jscode2session")
def jscode2session():
    args = request.args
    err = _check_app(args.get("appid"), args.get("secret"))
    if err:
        return wx_error(err)
    code = args.get("js_code", "")
    if not code:
        return wx_error(41008)
    scripted = _scripted_error(code)
    if scripted is not None:
        return wx_error(scripted)
    user_key, _nonce = _parse_login_code(code)
    if not user_key or not current().state.use_code(code):
        return wx_error(40029)
    sandbox = current()
    seed = sandbox.config["SANDBOX_SEED"]
    return jsonify(
        {
            "session_key": ids.session_key(),
            "openid": ids.openid(seed, sandbox.appid, user_key),
            "unionid": ids.unionid(seed, user_key),
        }
    )


def _parse_login_code(code):
    """`sandbox:<user-key>:<nonce>` -> (user_key, nonce); the user key may itself contain colons."""
    if not code.startswith("sandbox:"):
        return None, None
    user_key, _, nonce = code[len("sandbox:") :].rpartition(":")
    return (user_key, nonce) if user_key and nonce else (None, None)


@bp.post("/wxa/business/getuserphonenumber")
def phone_number():
    err = _token_error()
    if err:
        return wx_error(err)
    code = (_json_body() or {}).get("code") or ""
    if not code:
        return wx_error(41008)
    scripted = _scripted_error(code)
    if scripted is not None:
        return wx_error(scripted)
    match = re.fullmatch(r"sandbox-phone:(\d{5,15})(?::[^:]+)?", code)
    if not match or not current().state.use_code(code):
        return wx_error(40029)
    digits = match.group(1)
    return jsonify(
        {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": digits,
                "purePhoneNumber": digits,
                "countryCode": "86",
                "watermark": {"timestamp": int(time.time()), "appid": current().appid},
            },
        }
    )


@bp.post("/wxa/getwxacodeunlimit")
def wxacode_unlimit():
    err = _token_error()
    if err:
        return wx_error(err)
    body = _json_body()
    if body is None:
        return wx_error(40169)
    scene = body.get("scene")
    if not isinstance(scene, str) or not SCENE_RE.fullmatch(scene):
        return wx_error(40169)
    page = body.get("page") or ""
    if not isinstance(page, str) or page.startswith("/") or "?" in page:
        return wx_error(41030)
    width = _clamp_width(body.get("width"))
    return Response(_qr_png(scene, width), mimetype="image/png")


def _clamp_width(value):
    try:
        width = int(value)
    except (TypeError, ValueError):
        return 430
    return min(max(width, 280), 1280)


def _qr_png(data, width):
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    code.add_data(data)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white").get_image().convert("L")
    image = image.resize((width, width), Image.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@bp.post("/wxa/generate_urllink")
def generate_urllink():
    err = _token_error()
    if err:
        return wx_error(err)
    body = _json_body()
    if body is None:
        return wx_error(47001)
    path, query = body.get("path") or "", body.get("query") or ""
    if not isinstance(path, str) or path.startswith("/") or "?" in path:
        return wx_error(40165)
    if not isinstance(query, str) or len(query) > 1024:
        return wx_error(40212)
    return jsonify(
        {"errcode": 0, "errmsg": "ok", "url_link": "https://wxaurl.cn/" + ids.random_alnum(12)}
    )
