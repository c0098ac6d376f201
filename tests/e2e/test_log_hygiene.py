"""Secrets and personal data never reach the logs (ARCHITECTURE.md, convention 12).

A whole flow runs over real processes — gunicorn at LOG_LEVEL=DEBUG with gunicorn's own
access log in its default format (request line with query string), a `flask jobs` command, and
the WeChat sandbox — then every log they wrote is read and searched for each secret the flow
handled: the merchant's APIv3 key, private key and APIv2 key, SECRET_KEY, the appsecret, the
WeChat access token, every bearer token we issued, the sign-in and phone codes, the session key,
openids and unionids, the phone numbers, the delivery address and the real name sent to WeChat
with a withdrawal of ¥2,000 or more.

Openids are pseudonymous, but stable per person and app, and the logs identify users by our own
ids; so they are held to the same rule. The sandbox stands in for WeChat: its log is WeChat's
side, whose API carries the appsecret, codes and access tokens in query strings, so only what
must never leave our service at all is looked for there.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from urllib.parse import quote, quote_plus

import pytest
import requests

from tests.support.processes import PROJECT_ROOT, child_env, start_gunicorn
from tests.support.wechat import sandbox_code, sandbox_phone_code
from tests.support.wechatpay import control, pay, sandbox_merchant, settings_body

SECRET_KEY = "log-hygiene-" + secrets.token_hex(24)
PRICE_FEN = 2_500_000  # alice earns 10%: 250,000 fen, enough for a withdrawal needing a name
WITHDRAW_FEN = 200_000  # ¥2,000: WeChat wants the payee's real name
REAL_NAME = "欧阳明月"
ALICE_PHONE = "13912345678"
ADDRESS = {"receiver": "诸葛青云", "phone": "13700001234", "province": "广东省",
           "city": "深圳市", "district": "南山区", "detail": "科技园北区 88 号 1806 室"}


@pytest.fixture(scope="module")
def hygiene_env(served_env) -> dict:
    return {**served_env, "SECRET_KEY": SECRET_KEY, "LOG_LEVEL": "DEBUG"}


@pytest.fixture(scope="module")
def verbose_app(hygiene_env, tmp_path_factory):
    """gunicorn at DEBUG, with its access log in gunicorn's default format, logging to a file
    of its own."""
    log_dir = tmp_path_factory.mktemp("hygiene-logs")
    process, base_url = start_gunicorn(
        {**hygiene_env, "GUNICORN_CMD_ARGS": "--access-logfile - --log-level debug"},
        log_dir, workers=2)
    yield base_url, process
    process.stop()


class Flow:
    """requests against the served app; remembers every token and code it handled."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.tokens: list[str] = []
        self.codes: list[str] = []

    def call(self, method: str, path: str, *, expect: int = 200, token: str | None = None,
             body: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = requests.request(method, self.base_url + path, json=body, headers=headers,
                                    timeout=30)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else {}

    def sign_in(self, user_key: str) -> str:
        code = sandbox_code(user_key)
        self.codes.append(code)
        token = self.call("POST", "/api/mp/v1/auth/login", body={"code": code})["token"]
        self.tokens.append(token)
        return token

    def staff(self, username: str) -> str:
        token = self.call("POST", "/api/console/v1/auth/login",
                          body={"username": username, "password": "pw-12345"})["token"]
        self.tokens.append(token)
        return token


def run_job(env: dict, name: str) -> str:
    """`flask --app wsgi jobs run NAME` as its own process; returns what it logged (stderr)."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run", name],
                          cwd=PROJECT_ROOT, env=child_env(**env), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def run_flow(flow: Flow, env: dict, sandbox_url: str) -> dict:
    """A merchant configures WeChat Pay (v3; another one v2), alice binds her phone and
    shares, bob visits and orders with an address, WeChat pays and notifies, the order is
    received and settled, alice withdraws ¥2,000 under her real name and WeChat pays it out.
    Returns the secrets the flow handled and what the job command logged."""
    from app.services.merchants import create_merchant

    shop = create_merchant(name="鲜果小铺", owner_username="hygiene-owner",
                           owner_password="pw-12345")
    v2_shop = create_merchant(name="老店", owner_username="hygiene-v2", owner_password="pw-12345")
    owner = flow.staff("hygiene-owner")
    account = sandbox_merchant(sandbox_url, "v3_public_key")
    flow.call("PUT", "/api/console/v1/settings/payment", token=owner, body=settings_body(account))
    v2_account = sandbox_merchant(sandbox_url, "v2", "HMAC-SHA256")
    flow.call("PUT", "/api/console/v1/settings/payment", token=flow.staff("hygiene-v2"),
              body=settings_body(v2_account))
    flow.call("PUT", "/api/console/v1/settings/distribution", token=owner,
              body={"join_mode": "everyone", "freeze_days": 0})
    product = flow.call("POST", "/api/console/v1/products", expect=201, token=owner,
                        body={"title": "茅台礼盒", "price_fen": PRICE_FEN, "stock": 5})

    mp = f"/api/mp/v1/merchants/{shop.id}"
    alice = flow.sign_in("hygiene-alice")
    phone_code = sandbox_phone_code(ALICE_PHONE)
    flow.codes.append(phone_code)
    assert flow.call("POST", "/api/mp/v1/me/phone", token=alice,
                     body={"code": phone_code})["has_phone"] is True
    flow.call("POST", f"{mp}/distributor", token=alice, body={"agreement_version": "v1"})
    link = flow.call("POST", f"{mp}/share-links", expect=201, token=alice,
                     body={"product_id": product["id"]})
    bob = flow.sign_in("hygiene-bob")
    assert flow.call("POST", "/api/mp/v1/share-visits", token=bob,
                     body={"share_token": link["token"]})["bound"] is True
    order = flow.call("POST", f"{mp}/orders", expect=201, token=bob, body={
        "items": [{"product_id": product["id"], "quantity": 1}], "address": ADDRESS,
        "share_token": link["token"]})
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    assert [d["status"] for d in paid["deliveries"]] == [204]

    flow.call("POST", f"/api/console/v1/orders/{order['id']}/shipment", token=owner,
              body={"carrier": "顺丰", "tracking_no": "SF1234567890"})
    flow.call("POST", f"{mp}/orders/{order['id']}/receipt", token=bob)
    job_log = run_job(env, "settle-commissions")
    asked = flow.call("POST", f"{mp}/withdrawals", expect=201, token=alice,
                      body={"amount_fen": WITHDRAW_FEN, "real_name": REAL_NAME})
    approved = flow.call("POST", f"/api/console/v1/withdrawals/{asked['id']}/approve",
                         token=owner)
    assert approved["status"] == "transferring"
    out_bill_no = f"W{shop.id}N{asked['id']:08d}"
    done = control(sandbox_url, "POST",
                   f"/sandbox/transfers/{account['mch_id']}/{out_bill_no}/confirm")
    sent = control(sandbox_url, "POST", f"/sandbox/notifications/{done['notification_id']}/resend")
    assert [d["status"] for d in sent["deliveries"]] == [204]
    assert flow.call("GET", f"{mp}/wallet", token=alice)["paid_out_fen"] == WITHDRAW_FEN
    flow.call("POST", "/api/mp/v1/auth/logout", expect=204, token=bob)
    return {"account": account, "v2_account": v2_account, "job_log": job_log,
            "merchant_ids": (shop.id, v2_shop.id)}


def wechat_identities() -> dict[str, str]:
    """What WeChat knows our users by, and the session keys it gave us (decrypted)."""
    from sqlalchemy import select

    from app.encryption import SecretBox
    from app.extensions import db
    from app.models import User

    box = SecretBox(SECRET_KEY)
    found = {}
    db.session.expire_all()
    for user in db.session.scalars(select(User)):
        found[f"openid of user {user.id}"] = user.openid
        if user.unionid:
            found[f"unionid of user {user.id}"] = user.unionid
        if user.session_key_encrypted:
            found[f"session_key of user {user.id}"] = box.decrypt(user.session_key_encrypted)
    db.session.rollback()
    assert found, "the flow signed users in"
    return found


def wechat_access_token(appid: str) -> str:
    from app.extensions import redis
    from app.integrations import redis_keys

    token = redis.client.get(redis_keys.wechat_access_token(appid))
    assert token, "the flow used the WeChat API, which needs an access token"
    return token.decode() if isinstance(token, bytes) else token


def pem_body(pem: str) -> list[str]:
    """The base64 lines of a PEM (any one of them found would be a leak)."""
    return [line for line in pem.strip().splitlines() if line and not line.startswith("-----")]


def readable(log_text: str) -> str:
    """The log as written, and the strings of every JSON line decoded (the JSON logs escape
    Chinese characters and newlines)."""
    decoded = []

    def strings(value) -> None:
        if isinstance(value, str):
            decoded.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                strings(item)
        elif isinstance(value, list):
            for item in value:
                strings(item)

    for line in log_text.splitlines():
        if line.startswith("{"):
            try:
                strings(json.loads(line))
            except ValueError:
                continue
    return log_text + "\n" + "\n".join(decoded)


def leaks(log_text: str, needles: dict[str, str]) -> list[str]:
    """The names of the needles found, as written or URL-encoded (a code in a query string)."""
    text = readable(log_text)
    return sorted(name for name, value in needles.items()
                  if value and any(form in text for form in (value, quote(value, safe=""),
                                                             quote_plus(value))))


def test_no_secret_or_personal_data_reaches_any_log(verbose_app, hygiene_env, app_context,
                                                    sandbox_url, artifacts_dir):
    from app import clients

    base_url, gunicorn = verbose_app
    flow = Flow(base_url)
    handled = run_flow(flow, hygiene_env, sandbox_url)
    account, v2_account = handled["account"], handled["v2_account"]

    never_anywhere = {
        "SECRET_KEY": SECRET_KEY,
        "APIv3 key": account["apiv3_key"], "APIv2 key": v2_account["api_key"],
        **{f"private key line {n}": line
           for n, line in enumerate(pem_body(account["merchant_private_key_pem"]))},
        **{f"bearer token {n}": token for n, token in enumerate(flow.tokens)},
        "alice's phone": ALICE_PHONE, "the address's phone": ADDRESS["phone"],
        "the receiver": ADDRESS["receiver"], "the address": ADDRESS["detail"],
        "the real name": REAL_NAME,
    }
    ours_only = {
        "the appsecret": clients.settings().wechat_secret,
        "the WeChat access token": wechat_access_token(clients.settings().wechat_appid),
        **{f"code {n}": code for n, code in enumerate(flow.codes)},
        **wechat_identities(),
    }
    gunicorn_log = gunicorn.log_text()
    # The logs are there to be read: this flow wrote app lines at DEBUG and access lines.
    assert '"logger": "fenxiao.access"' in gunicorn_log
    assert '"level": "DEBUG"' in gunicorn_log
    assert '"POST /api/mp/v1/auth/login HTTP/1.1" 200' in gunicorn_log
    assert '"logger": "fenxiao.webhooks"' in gunicorn_log

    ours = {"gunicorn": gunicorn_log, "flask jobs run": handled["job_log"]}
    assert {name: leaks(text, {**never_anywhere, **ours_only})
            for name, text in ours.items()} == {"gunicorn": [], "flask jobs run": []}
    sandbox_log = (artifacts_dir / "wechat-sandbox.log").read_text(errors="replace")
    assert "/v3/fund-app/mch-transfer/transfer-bills" in sandbox_log  # it saw this flow
    assert leaks(sandbox_log, never_anywhere) == []


# -- the redaction every log line passes (no servers needed) ----------------------------------


@pytest.mark.parametrize(("raw", "gone", "kept"), [
    ('"GET /sns/jscode2session?appid=wx5a&secret=s3cr3t&js_code=sandbox%3Aa%3A1 HTTP/1.1" 200',
     ["s3cr3t", "sandbox%3Aa%3A1"], ["appid=wx5a", "secret=[redacted]"]),
    ("POST /wxa/generate_urllink?access_token=ACCESS-TOKEN-1", ["ACCESS-TOKEN-1"],
     ["/wxa/generate_urllink"]),
    ("headers: {'Authorization': 'Bearer abc.def-ghi'}", ["abc.def-ghi"], ["Bearer [redacted]"]),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl seen", ["eyJzdWIiOiIxIn0"],
     ["seen"]),
    ("key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY----- end",
     ["MIIEvQIBADANBg"], ["key ", " end"]),
    ("call 13912345678 about order 4200001234567890123", ["13912345678"],
     ["139****5678", "4200001234567890123"]),
    ("WeChat error 40029: invalid code, errcode=40029", [], ["errcode=40029"]),
])
def test_redaction_hides_credentials_tokens_keys_and_phone_numbers(raw, gone, kept):
    from app.logs import redact

    cleaned = redact(raw)
    assert [piece for piece in gone if piece in cleaned] == []
    assert [piece for piece in kept if piece not in cleaned] == []


def test_a_log_line_is_redacted_in_its_fields_and_its_traceback():
    import logging

    from app.logs import RedactingJsonFormatter

    try:
        raise RuntimeError("upstream said secret=hunter2 for 13800138000")
    except RuntimeError:
        record = logging.LogRecord("lib", logging.ERROR, __file__, 1, "failed %s", ("x",),
                                   sys.exc_info())
    record.password = "pw-12345"
    record.detail = {"real_name": REAL_NAME, "order_id": 7}

    line = RedactingJsonFormatter("%(message)s").format(record)

    logged = json.loads(line)
    assert "hunter2" not in line and "13800138000" not in line and "pw-12345" not in line
    assert logged["password"] == "[redacted]"
    assert logged["detail"] == {"real_name": "[redacted]", "order_id": 7}
    assert logged["message"] == "failed x" and "RuntimeError" in logged["exc_info"]
