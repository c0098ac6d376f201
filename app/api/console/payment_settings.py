"""WeChat Pay settings (owner only): write-only secrets, stored encrypted."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.clients import sandbox_base_url, secret_box, settings
from app.security import console_login_required
from app.services import payment_settings as payment_settings_service

blp = Blueprint("console_payment_settings", __name__, url_prefix="/api/console/v1",
                description="Payment settings")
BEARER = [{"bearerAuth": []}]
ID = validate.Regexp(r"^[0-9A-Za-z_]{1,32}$")
REQUIRED = {"v3": ("appid", "mch_id", "apiv3_key", "merchant_serial_no",
                   "merchant_private_key_pem"),
            "v2": ("appid", "mch_id", "api_key", "sign_type"), "sandbox": ()}


class PaymentSettingsIn(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(tuple(REQUIRED)))
    appid = fields.String(validate=ID)
    mch_id = fields.String(validate=ID)
    apiv3_key = fields.String(validate=validate.Length(max=64), load_only=True)
    merchant_serial_no = fields.String(validate=validate.Regexp(r"^[0-9A-Fa-f]{8,64}$"))
    merchant_private_key_pem = fields.String(validate=validate.Length(max=8192),
                                             load_only=True)
    wechatpay_public_key_id = fields.String(validate=validate.Length(max=64))
    wechatpay_public_key_pem = fields.String(validate=validate.Length(max=4096))
    platform_certificate_pem = fields.String(validate=validate.Length(max=8192))
    api_key = fields.String(validate=validate.Length(max=64), load_only=True)
    sign_type = fields.String(validate=validate.OneOf(("MD5", "HMAC-SHA256")))

    @validates_schema
    def _required_for_mode(self, data, **kwargs):
        missing = {name: ["Required in this mode."] for name in REQUIRED.get(data.get("mode"), ())
                   if not data.get(name)}
        if missing:
            raise ValidationError(missing)


class PaymentSettingsOut(Schema):
    configured = fields.Boolean()
    mode = fields.String()
    appid = fields.String()
    mch_id = fields.String()
    sign_type = fields.String(allow_none=True)
    merchant_serial_no = fields.String(allow_none=True)
    wechatpay_public_key_id = fields.String(allow_none=True)
    platform_certificate_serial_no = fields.String(allow_none=True)
    updated_at = fields.DateTime()


@blp.route("/settings/payment", methods=["GET"])
@console_login_required("owner")
@blp.response(200, PaymentSettingsOut)
@blp.doc(security=BEARER)
def get_payment_settings():
    """Identifiers only; secrets are never returned."""
    return payment_settings_service.public_view(
        payment_settings_service.get_settings(g.merchant_id))


@blp.route("/settings/payment", methods=["PUT"])
@console_login_required("owner")
@blp.arguments(PaymentSettingsIn)
@blp.response(200, PaymentSettingsOut)
@blp.doc(security=BEARER)
def put_payment_settings(body):
    """v3 (WeChat Pay public key and/or platform certificate), v2 (MD5 or HMAC-SHA256), or
    ``sandbox`` (local deployments: a fresh sandbox merchant account)."""
    if body["mode"] == "sandbox":  # the sandbox account pays for this deployment's mini-program
        body.setdefault("appid", settings().wechat_appid)
    row = payment_settings_service.configure(merchant_id=g.merchant_id, body=body,
                                             box=secret_box(),
                                             sandbox_base_url=sandbox_base_url())
    return payment_settings_service.public_view(row)
