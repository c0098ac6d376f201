"""The console's pages: one blueprint, one module per area."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template, request
from flask_wtf.csrf import CSRFError

from app.console import csrf
from app.console.session import navigation
from app.errors import AppError

bp = Blueprint("console_pages", __name__, url_prefix="/console",
               template_folder="../templates", static_folder="../static",
               static_url_path="/static")


@bp.before_request
def _check_csrf():
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


@bp.before_request
def _refuse_unstorable_text():
    from app.api import refuse_unstorable

    refuse_unstorable(request)  # a NUL in a form field: the error page, not a database 500


@bp.after_request
def _headers(response):
    # Our own assets only; no inline scripts; never framed (click-jacking). Inline styles are
    # allowed for the charts' SVG, which carries its own <style>.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


ORDER_LABELS = {"created": "待付款", "paid": "待发货", "shipped": "已发货", "received": "已收货",
                "completed": "已完成", "cancelled": "已取消", "refunding": "退款中",
                "refunded": "已退款", "partially_refunded": "部分退款"}


@bp.app_context_processor
def _layout():
    return {"nav": navigation(), "tz": _zone(), "order_labels": ORDER_LABELS}


def _zone():
    """Times are shown in the merchant's timezone (business dates are its dates)."""
    from flask import g

    from app.domain.business_time import merchant_zone
    from app.extensions import db
    from app.models import Merchant

    merchant = db.session.get(Merchant, g.merchant_id) if g.get("merchant_id") else None
    return merchant_zone(merchant.timezone if merchant else None)


@bp.errorhandler(AppError)
def _app_error(error: AppError):
    return render_template("console/error.html", error=error), error.status


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError):
    return render_template("console/error.html", error=AppError(
        "页面已过期，请刷新后重试。", code="csrf_failed")), 400


def register(app: Flask) -> None:
    from app.console.pages import (  # noqa: F401  (each module adds its routes to bp)
        admin,
        auth,
        distributors,
        home,
        levels,
        orders,
        reports,
        risk,
        settings,
        withdrawals,
    )

    app.register_blueprint(bp)
