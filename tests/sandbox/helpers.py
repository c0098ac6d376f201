"""Client construction against the sandbox, exactly as an app would do it."""

from __future__ import annotations

import uuid
from pathlib import Path

from wechatpayv3 import WeChatPay as WeChatPayV3
from wechatpayv3 import WeChatPayType
from wechatpy import WeChatClient
from wechatpy.pay import WeChatPay as WeChatPayV2

APPID = "wx5a4d0b1c2e3f4a5b"
SECRET = "sandbox-app-secret"


def wechat_client(sandbox_url, access_token, secret=SECRET, appid=APPID):
    # auto_retry=False: on 40001/42001 wechatpy would fetch a token from the hard-coded real URL.
    client = WeChatClient(appid, secret, access_token=access_token, auto_retry=False)
    client.API_BASE_URL = sandbox_url + "/cgi-bin/"
    client.wxa.API_BASE_URL = sandbox_url + "/"
    return client


def v3_client(sandbox_url, creds, notify_url, cert_dir: Path | None = None):
    """wechatpayv3 in the merchant's key mode, pointed at the sandbox.

    Public-key mode does no I/O in the constructor, so setting `_core._gate_way` afterwards is
    enough. Certificate mode loads platform certificates in the constructor: from `cert_dir` if it
    holds any, else by GET /v3/certificates on the hard-coded real gateway. So we seed `cert_dir`
    with the sandbox platform certificate (as a deployment caching downloaded certificates would),
    then redirect.
    """
    common = dict(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=creds["mch_id"],
        private_key=creds["merchant_private_key_pem"],
        cert_serial_no=creds["merchant_serial_no"],
        appid=creds["appid"],
        apiv3_key=creds["apiv3_key"],
        notify_url=notify_url,
    )
    if creds["mode"] == "v3_certificate":
        cert_dir.mkdir(parents=True, exist_ok=True)
        serial = creds["platform_certificate_serial_no"]
        (cert_dir / f"{serial}.pem").write_text(creds["platform_certificate_pem"])
        pay = WeChatPayV3(**common, cert_dir=str(cert_dir))
    else:
        pay = WeChatPayV3(
            **common,
            public_key=creds["wechatpay_public_key_pem"],
            public_key_id=creds["wechatpay_public_key_id"],
        )
    pay._core._gate_way = sandbox_url
    return pay


def v2_client(sandbox_url, creds, mch_cert=None, mch_key=None):
    pay = WeChatPayV2(
        creds["appid"], creds["api_key"], creds["mch_id"], mch_cert=mch_cert, mch_key=mch_key
    )
    pay.API_BASE_URL = sandbox_url + "/"
    return pay


def new_no(prefix="T"):
    return prefix + uuid.uuid4().hex[:20]
