"""Driving WeChat Pay through the sandbox's control API, for tests of our payment paths."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests


def control(sandbox_url: str, method: str, path: str, json: dict | None = None) -> dict:
    response = requests.request(method, sandbox_url + path, json=json, timeout=30)
    assert response.status_code < 300, response.text
    return response.json()


def sandbox_merchant(sandbox_url: str, mode: str = "v3_public_key", sign_type: str = "MD5"
                     ) -> dict:
    """A fresh WeChat Pay merchant account in the sandbox, with all its credentials."""
    return control(sandbox_url, "POST", "/sandbox/merchants",
                   {"mode": mode, "sign_type": sign_type})


def settings_body(account: dict) -> dict:
    """The PUT /settings/payment body for a sandbox account of any mode."""
    if account["mode"] == "v2":
        return {"mode": "v2", "appid": account["appid"], "mch_id": account["mch_id"],
                "api_key": account["api_key"], "sign_type": account["sign_type"]}
    body = {"mode": "v3", "appid": account["appid"], "mch_id": account["mch_id"],
            "apiv3_key": account["apiv3_key"],
            "merchant_serial_no": account["merchant_serial_no"],
            "merchant_private_key_pem": account["merchant_private_key_pem"]}
    if account["mode"] == "v3_certificate":
        body["platform_certificate_pem"] = account["platform_certificate_pem"]
    else:
        body["wechatpay_public_key_id"] = account["wechatpay_public_key_id"]
        body["wechatpay_public_key_pem"] = account["wechatpay_public_key_pem"]
    return body


def pay(sandbox_url: str, mch_id: str, out_trade_no: str, **options) -> dict:
    """The buyer pays: the sandbox marks the order paid and sends the notification (options:
    copies, concurrent, total_fen to make the notification claim another amount)."""
    return control(sandbox_url, "POST", f"/sandbox/pay/{mch_id}/{out_trade_no}", options)


def signed(sandbox_url: str, notification_id: str) -> tuple[str, dict, bytes]:
    """(path, headers, body) of a notification as WeChat would send it now."""
    answer = control(sandbox_url, "POST", f"/sandbox/notifications/{notification_id}/sign")
    return urlsplit(answer["url"]).path, answer["headers"], answer["body"].encode()


def deliver(client, sandbox_url: str, notification_id: str):
    """Deliver a notification to the in-process app through its test client."""
    path, headers, body = signed(sandbox_url, notification_id)
    return client.post(path, data=body, headers=headers)


def notifications(sandbox_url: str, mch_id: str) -> list[dict]:
    return control(sandbox_url, "GET", f"/sandbox/notifications?mch_id={mch_id}")[
        "notifications"]


def complete_refund(sandbox_url: str, mch_id: str, out_refund_no: str,
                    status: str = "SUCCESS") -> dict:
    return control(sandbox_url, "POST", f"/sandbox/refunds/{mch_id}/{out_refund_no}/complete",
                   {"status": status})
