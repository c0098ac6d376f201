"""Collaborators built once per app from settings and handed to services as arguments.

Views call these instead of reading configuration, so services never touch ``current_app``.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.encryption import SecretBox
from app.integrations.rate_limits import KeyedLimit
from app.integrations.redis_client import RedisConnection
from app.integrations.wechat_miniprogram import MiniProgram
from config.settings import Settings


def init_clients(app: Flask, settings: Settings, redis_connection: RedisConnection) -> None:
    app.extensions["fenxiao.settings"] = settings
    app.extensions["fenxiao.secret_box"] = SecretBox(settings.secret_key)
    app.extensions["fenxiao.mini_program"] = MiniProgram(
        appid=settings.wechat_appid, secret=settings.wechat_secret,
        api_base_url=settings.wechat_api_base_url, redis_client=redis_connection.client,
        timeout=settings.wechat_timeout_seconds,
    )
    app.extensions["fenxiao.openid_login_limit"] = KeyedLimit(
        storage_uri=redis_connection.limiter_storage_uri, limit=settings.login_rate_limit_openid,
        namespace="mp-login-openid", storage_options=redis_connection.limiter_storage_options,
    )


def settings() -> Settings:
    return current_app.extensions["fenxiao.settings"]


def secret_box() -> SecretBox:
    return current_app.extensions["fenxiao.secret_box"]


def mini_program() -> MiniProgram:
    return current_app.extensions["fenxiao.mini_program"]


def openid_login_limit() -> KeyedLimit:
    return current_app.extensions["fenxiao.openid_login_limit"]


def pay_config():
    """Everything the payment services need from settings (the merchant's keys come from the
    database)."""
    from app.services.payments import PayConfig

    current = settings()
    return PayConfig(box=secret_box(), base_url=current.wechatpay_api_base_url,
                     public_base_url=current.public_base_url,
                     timeout=current.wechat_timeout_seconds)


def sandbox_base_url() -> str | None:
    """The WeChat sandbox's address where this deployment uses it (never in production)."""
    current = settings()
    if current.is_production or not current.uses_wechat_sandbox:
        return None
    return current.wechatpay_api_base_url
