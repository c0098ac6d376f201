"""Settings: the distribution rules with their compliance warnings, rates with a live preview
of what each tier earns on a sample order, and the WeChat Pay configuration (secrets are
write-only). Operators change the program but not money rules, as in the API."""

from __future__ import annotations

from flask import flash, g, jsonify, redirect, render_template, request, url_for

from app.clients import sandbox_base_url, secret_box
from app.clients import settings as app_settings
from app.console.pages import bp
from app.console.pages.forms import bps_from_percent, fen_from_yuan, text
from app.console.session import staff_page
from app.errors import Forbidden, InvalidInput
from app.services import commission_plans, merchants, payment_settings

PROGRAM = ("owner", "operator")
CHOICES = {"join_mode": ("apply", "everyone", "spend_threshold"),
           "bind_mode": ("permanent", "time_limited", "last_touch"),
           "bind_trigger": ("visit", "register", "first_order")}
WHOLE = ("bind_days", "protection_days", "tiers", "auto_receive_days", "freeze_days",
         "withdraw_daily_count")
YUAN = ("withdraw_min_fen", "withdraw_max_fen", "withdraw_auto_approve_below_fen",
        "join_spend_threshold_fen")
# Money rules are the owner's (DOMAIN.md, Actors and roles), here as in the API.
MONEY = {"tiers", "tier_rates_bps", "max_total_bps", "third_tier_acknowledged",
         "self_purchase", "freeze_days", "withdraw_min_fen", "withdraw_max_fen",
         "withdraw_daily_count", "withdraw_fee_bps", "withdraw_auto_approve_below_fen"}
SAMPLE = [{"unit_price_fen": 10_000, "quantity": 1}]




def _changes() -> dict:
    """The rules in the form (only the fields present), in DOMAIN.md names and units."""
    form, changes = request.form, {}
    for name, allowed in CHOICES.items():
        if name in form:
            if form[name] not in allowed:
                raise InvalidInput(errors={name: ["请选择一个选项。"]})
            changes[name] = form[name]
    for name in WHOLE:
        if form.get(name, "").strip():
            if not form[name].strip().isdigit():
                raise InvalidInput(errors={name: ["请填写整数。"]})
            changes[name] = int(form[name])
    for name in YUAN:
        if form.get(name, "").strip():
            changes[name] = fen_from_yuan(name)
    rates = [key for key in ("rate_1", "rate_2", "rate_3") if form.get(key, "").strip()]
    if rates:
        changes["tier_rates_bps"] = [bps_from_percent(key) for key in rates]
    for name in ("max_total", "withdraw_fee"):
        if form.get(name, "").strip():
            changes[f"{name}_bps"] = bps_from_percent(name)
    for name in ("self_purchase", "third_tier_acknowledged"):
        if "has_" + name in form:
            changes[name] = name in form
    return changes


@bp.route("/settings")
@staff_page(*PROGRAM)
def settings():
    merchant = merchants.get_approved_merchant(g.merchant_id)
    rules = merchants.program_rules(merchant)
    preview = commission_plans.preview_draft(merchant, draft={}, lines=SAMPLE, discount_fen=0)
    return render_template("console/settings.html", rules=rules, preview=preview,
                           choices=CHOICES, money_locked=g.staff.role != "owner",
                           payment=payment_settings.public_view(
                               payment_settings.get_settings(g.merchant_id)),
                           sandbox_available=sandbox_base_url() is not None)


@bp.route("/settings/distribution", methods=["POST"])
@staff_page(*PROGRAM)
def settings_save():
    changes = _changes()
    if g.staff.role != "owner" and MONEY & set(changes):
        raise Forbidden("佣金与结算规则只有店主可以修改。", code="money_rules_owner_only")
    merchants.update_program_rules(merchant_id=g.merchant_id, changes=changes,
                                   staff_id=g.staff.id)
    flash("规则已保存；新的佣金比例只影响之后创建的订单。")
    return redirect(url_for("console_pages.settings"))


@bp.route("/settings/preview", methods=["POST"])
@staff_page(*PROGRAM)
def settings_preview():
    """What each tier would earn on the sample order under the rates being typed (JSON for
    the page's script; nothing is stored)."""
    merchant = merchants.get_approved_merchant(g.merchant_id)
    sample = [{"unit_price_fen": fen_from_yuan("sample_price"), "quantity": 1}] \
        if request.form.get("sample_price") else SAMPLE
    try:
        preview = commission_plans.preview_draft(merchant, draft=_changes(), lines=sample,
                                                 discount_fen=0)
    except InvalidInput as error:
        return jsonify({"code": error.code, "message": error.message,
                        "errors": error.errors}), 422
    return jsonify(preview)


@bp.route("/settings/payment", methods=["POST"])
@staff_page("owner")
def settings_payment():
    mode = text("mode", required=True, max_length=16)
    body = {"mode": mode}
    names = {"v3": ("appid", "mch_id", "apiv3_key", "merchant_serial_no",
                    "merchant_private_key_pem", "wechatpay_public_key_id",
                    "wechatpay_public_key_pem", "platform_certificate_pem"),
             "v2": ("appid", "mch_id", "api_key", "sign_type"), "sandbox": ()}
    if mode not in names:
        raise InvalidInput(errors={"mode": ["请选择支付方式。"]})
    for name in names[mode]:
        value = request.form.get(name, "").strip()
        if value:
            body[name] = value
    if mode == "sandbox":
        body["appid"] = app_settings().wechat_appid
    payment_settings.configure(merchant_id=g.merchant_id, body=_checked_payment(body),
                               box=secret_box(), sandbox_base_url=sandbox_base_url())
    flash("支付配置已保存（密钥不会再显示）。")
    return redirect(url_for("console_pages.settings"))


def _checked_payment(body: dict) -> dict:
    """The same schema the API uses, so a form and an API client get the same answers."""
    from marshmallow import ValidationError

    from app.api.console.payment_settings import PaymentSettingsIn

    try:
        return PaymentSettingsIn().load(body)
    except ValidationError as error:
        raise InvalidInput(errors=error.messages) from None
