"""A merchant's WeChat Pay settings: validated, secrets encrypted at rest, never returned.

``PUT /settings/payment`` replaces the whole configuration. ``sandbox`` asks the local WeChat
sandbox for a fresh merchant account (only where the deployment talks to the sandbox; production
refuses) and stores it like a v3 public-key merchant.
"""

from __future__ import annotations

import hashlib
import json

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from app.database import transaction
from app.encryption import SecretBox
from app.errors import Conflict, InvalidInput, UpstreamError
from app.extensions import db
from app.integrations.wechatpay import PayAccount, gateway_for
from app.models import PaymentSettings

SECRET_FIELDS = ("apiv3_key", "merchant_private_key_pem", "api_key")
V3_PLAIN = ("appid", "mch_id", "merchant_serial_no", "wechatpay_public_key_id",
            "wechatpay_public_key_pem", "platform_certificate_serial_no",
            "platform_certificate_pem")


def configure(*, merchant_id: int, body: dict, box: SecretBox, sandbox_base_url: str | None
              ) -> PaymentSettings:
    """Replace the merchant's payment configuration (body already shaped by the schema)."""
    mode = body["mode"]
    if mode == "sandbox":
        body = _sandbox_account(sandbox_base_url, appid=body.get("appid"))
    values = _checked_v3(body) if mode in ("v3", "sandbox") else _checked_v2(body)
    secrets = {name: values.pop(name) for name in SECRET_FIELDS if name in values}
    with transaction(db.session):
        row = db.session.get(PaymentSettings, merchant_id, with_for_update=True)
        if row is None:
            row = PaymentSettings(merchant_id=merchant_id, revision=0)
            db.session.add(row)
        for name in (*V3_PLAIN, "sign_type"):
            setattr(row, name, values.get(name, ""))
        row.mode = mode
        row.secrets_encrypted = box.encrypt(json.dumps(secrets))
        row.revision = (row.revision or 0) + 1
    return row


def _checked_v3(body: dict) -> dict:
    errors: dict[str, list[str]] = {}
    if len(body.get("apiv3_key", "")) != 32:
        errors["apiv3_key"] = ["The APIv3 key has exactly 32 characters."]
    try:
        key = load_pem_private_key(body.get("merchant_private_key_pem", "").encode(), None)
        if not isinstance(key, RSAPrivateKey):
            raise ValueError
    except (ValueError, TypeError):
        errors["merchant_private_key_pem"] = ["Not an unencrypted RSA private key in PEM."]
    has_public_key = bool(body.get("wechatpay_public_key_id") or body.get(
        "wechatpay_public_key_pem"))
    if has_public_key:
        _check_public_key(body, errors)
    if body.get("platform_certificate_pem"):
        _check_certificate(body, errors)
    elif not has_public_key:
        errors["wechatpay_public_key_pem"] = [
            "Give the WeChat Pay public key (with its id), the platform certificate, or both."]
    if errors:
        raise InvalidInput(errors=errors)
    return {name: body.get(name, "") for name in (*V3_PLAIN, "apiv3_key",
                                                   "merchant_private_key_pem")}


def _check_public_key(body: dict, errors: dict) -> None:
    if not str(body.get("wechatpay_public_key_id", "")).startswith("PUB_KEY_ID_"):
        errors["wechatpay_public_key_id"] = ["A WeChat Pay public key id starts PUB_KEY_ID_."]
    try:
        if not isinstance(load_pem_public_key(body.get("wechatpay_public_key_pem", "")
                                              .encode()), RSAPublicKey):
            raise ValueError
    except (ValueError, TypeError):
        errors["wechatpay_public_key_pem"] = ["Not an RSA public key in PEM."]


def _check_certificate(body: dict, errors: dict) -> None:
    try:
        certificate = x509.load_pem_x509_certificate(body["platform_certificate_pem"].encode())
    except ValueError:
        errors["platform_certificate_pem"] = ["Not an X.509 certificate in PEM."]
        return
    # The serial WeChat sends in Wechatpay-Serial is the certificate's, in upper-case hex.
    body["platform_certificate_serial_no"] = format(certificate.serial_number, "X")


def _checked_v2(body: dict) -> dict:
    errors = {}
    if len(body.get("api_key", "")) != 32:
        errors["api_key"] = ["The APIv2 key has exactly 32 characters."]
    if errors:
        raise InvalidInput(errors=errors)
    return {"appid": body["appid"], "mch_id": body["mch_id"], "api_key": body["api_key"],
            "sign_type": body["sign_type"]}


def _sandbox_account(sandbox_base_url: str | None, *, appid: str | None) -> dict:
    if not sandbox_base_url:
        raise InvalidInput("This deployment does not use the WeChat sandbox.",
                           code="sandbox_unavailable",
                           errors={"mode": ["sandbox is for local and test deployments"]})
    try:
        answer = requests.post(f"{sandbox_base_url}/sandbox/merchants",
                               json={"mode": "v3_public_key", "appid": appid}, timeout=10)
        answer.raise_for_status()
    except requests.RequestException:
        raise UpstreamError("The WeChat sandbox did not answer.") from None
    account = answer.json()
    account.pop("platform_certificate_pem")  # public-key mode: the merchant a new one would be
    account.pop("platform_certificate_serial_no")
    return account


def public_view(row: PaymentSettings | None) -> dict:
    """What the console may see: identifiers and which secrets are set, never the secrets."""
    if row is None:
        return {"configured": False}
    return {"configured": True, "mode": row.mode, "appid": row.appid, "mch_id": row.mch_id,
            "sign_type": row.sign_type or None,
            "merchant_serial_no": row.merchant_serial_no or None,
            "wechatpay_public_key_id": row.wechatpay_public_key_id or None,
            "platform_certificate_serial_no": row.platform_certificate_serial_no or None,
            "updated_at": row.updated_at}


def get_settings(merchant_id: int) -> PaymentSettings | None:
    return db.session.get(PaymentSettings, merchant_id)


def account_of(row: PaymentSettings, box: SecretBox) -> PayAccount:
    secrets = json.loads(box.decrypt(row.secrets_encrypted))
    return PayAccount(api="v2" if row.mode == "v2" else "v3", appid=row.appid,
                      mch_id=row.mch_id, sign_type=row.sign_type or "MD5",
                      **{name: getattr(row, name) for name in V3_PLAIN
                         if name not in ("appid", "mch_id")},
                      **secrets)


def gateway(merchant_id: int, *, box: SecretBox, base_url: str, timeout: float = 5.0):
    """The merchant's WeChat Pay gateway; 409 ``payment_not_configured`` without settings."""
    row = get_settings(merchant_id)
    if row is None:
        raise Conflict("This merchant has not configured WeChat Pay yet.",
                       code="payment_not_configured")
    return gateway_for(lambda: account_of(row, box), base_url=base_url,
                       cache_key=(merchant_id, _fingerprint(row)), timeout=timeout)


def _fingerprint(row: PaymentSettings) -> str:
    # Each save encrypts with a fresh IV, so this changes with every configuration, even when
    # a test database is emptied and a new merchant receives an old id.
    return hashlib.sha256(row.secrets_encrypted.encode()).hexdigest()
