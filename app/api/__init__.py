"""HTTP only: each blueprint parses with a schema, calls one service, serializes."""

from __future__ import annotations

from flask import Flask, send_from_directory
from flask_smorest import Api


def register(app: Flask, api: Api) -> None:
    from app.api import health
    from app.api import landing as share_landing
    from app.api.admin import merchants as admin_merchants
    from app.api.console import auth as console_auth
    from app.api.console import commission_plans as console_commission_plans
    from app.api.console import distributors as console_distributors
    from app.api.console import exports as console_exports
    from app.api.console import levels as console_levels
    from app.api.console import orders as console_orders
    from app.api.console import payment_settings as console_payment_settings
    from app.api.console import products as console_products
    from app.api.console import risk as console_risk
    from app.api.console import settings as console_settings
    from app.api.console import staff as console_staff
    from app.api.console import stats as console_stats
    from app.api.console import withdrawals as console_withdrawals
    from app.api.mp import auth as mp_auth
    from app.api.mp import catalogue as mp_catalogue
    from app.api.mp import me as mp_me
    from app.api.mp import orders as mp_orders
    from app.api.mp import programs as mp_programs
    from app.api.mp import share_links as mp_share_links
    from app.api.mp import share_visits as mp_share_visits
    from app.api.mp import wallet as mp_wallet
    from app.api.mp import withdrawals as mp_withdrawals
    from app.api.webhooks import wechatpay as wechatpay_webhooks

    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    for blueprint in (health.blp, mp_auth.blp, mp_me.blp, mp_programs.blp, mp_share_visits.blp,
                      mp_share_links.blp, mp_wallet.blp, mp_catalogue.blp, share_landing.blp,
                      console_auth.blp, console_settings.blp, console_distributors.blp,
                      console_staff.blp, console_commission_plans.blp, console_products.blp,
                      console_orders.blp, console_payment_settings.blp, mp_orders.blp,
                      console_withdrawals.blp, mp_withdrawals.blp, wechatpay_webhooks.blp,
                      console_levels.blp, console_stats.blp, console_risk.blp,
                      console_exports.blp, admin_merchants.blp):
        api.register_blueprint(blueprint)
    _serve_swagger_ui_assets(app)


def _serve_swagger_ui_assets(app: Flask) -> None:
    import swagger_ui_bundle

    @app.get("/api/docs/assets/<path:filename>")
    def swagger_ui_asset(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
