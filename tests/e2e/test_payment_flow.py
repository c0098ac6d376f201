"""End to end through real processes: gunicorn with 4 workers, PostgreSQL, Redis and the WeChat
sandbox. A merchant sets up its program over HTTP, alice ← bob ← carol come in through share
links, carol orders, the sandbox pays and notifies gunicorn over HTTP, and the commission goes
from pending to available with the exact amounts; duplicate notifications credit nothing twice.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from tests.e2e.conftest import ACCESS_LOG_MARK, WORKERS
from tests.support.http import Api
from tests.support.processes import PROJECT_ROOT, child_env
from tests.support.servers import wait_until
from tests.support.wechatpay import control, pay, sandbox_merchant, settings_body

ADDRESS = {"receiver": "张三", "phone": "13800000000", "province": "广东省", "city": "深圳市",
           "district": "南山区", "detail": "科技园 1 号"}
PRICE_FEN, QUANTITY = 9_990, 3
PAID_FEN = PRICE_FEN * QUANTITY  # 29,970
BOB_TIER_ONE_FEN = 2_997  # 29,970 × 10%
ALICE_TIER_TWO_FEN = 1_498  # 29,970 × 5% = 1,498.5, floored
STORM_COPIES = 64
V3, V2 = ("v3_public_key", "MD5"), ("v2", "MD5")


def open_shop(api: Api, sandbox_url: str, mode: str, sign_type: str) -> dict:
    """A merchant with a sandbox WeChat Pay account, an open program (anyone may join,
    commission settles at receipt) and one product — all set up through the console API."""
    from app.services.merchants import create_merchant

    merchant = create_merchant(name="鲜果小铺", owner_username="owner1",
                               owner_password="pw-12345")
    login = api.call("POST", "/api/console/v1/auth/login",
                     json_body={"username": "owner1", "password": "pw-12345"})
    owner = {"Authorization": f"Bearer {login['token']}"}
    account = sandbox_merchant(sandbox_url, mode, sign_type)
    api.call("PUT", "/api/console/v1/settings/payment", headers=owner,
             json_body=settings_body(account))
    rules = api.call("PUT", "/api/console/v1/settings/distribution", headers=owner,
                     json_body={"join_mode": "everyone", "freeze_days": 0})
    assert (rules["join_mode"], rules["freeze_days"]) == ("everyone", 0)
    assert rules["tier_rates_bps"] == [1000, 500]
    product = api.call("POST", "/api/console/v1/products", expect=201, headers=owner,
                       json_body={"title": "丑橘 5斤", "price_fen": PRICE_FEN, "stock": 10})
    return {"id": merchant.id, "owner": owner, "account": account, "product": product}


def join_through(api: Api, shop: dict, user_key: str, link: dict | None) -> dict:
    """``user_key`` signs in, opens ``link`` (bound to its distributor) and becomes a
    distributor with a share link of their own."""
    headers = api.sign_in(user_key)
    base = f"/api/mp/v1/merchants/{shop['id']}"
    if link is not None:
        visit = api.call("POST", "/api/mp/v1/share-visits", headers=headers,
                         json_body={"share_token": link["token"]})
        assert (visit["bound"], visit["reason"]) == (True, "bound")
    membership = api.call("POST", f"{base}/distributor", headers=headers,
                          json_body={"agreement_version": "v1"})
    assert membership["status"] == "active"
    own_link = api.call("POST", f"{base}/share-links", expect=201, headers=headers,
                        json_body={"product_id": shop["product"]["id"]})
    return {"headers": headers, "member_id": membership["member_id"], "link": own_link,
            "upline_id": (membership["upline"] or {}).get("id")}


def place_order(api: Api, shop: dict) -> dict:
    """alice ← bob ← carol through share links; carol orders through bob's link."""
    alice = join_through(api, shop, "alice", None)
    bob = join_through(api, shop, "bob", alice["link"])
    assert bob["upline_id"] == alice["member_id"]
    carol = api.sign_in("carol")
    visit = api.call("POST", "/api/mp/v1/share-visits", headers=carol,
                     json_body={"share_token": bob["link"]["token"]})
    assert visit["distributor_id"] == bob["member_id"] and visit["bound"]
    order = api.call("POST", f"/api/mp/v1/merchants/{shop['id']}/orders", expect=201,
                     headers=carol, json_body={
                         "items": [{"product_id": shop["product"]["id"], "quantity": QUANTITY}],
                         "address": ADDRESS, "share_token": bob["link"]["token"]})
    assert (order["status"], order["paid_fen"]) == ("created", PAID_FEN)
    return {"alice": alice, "bob": bob, "carol": carol, "order": order}


def wallet(api: Api, shop: dict, person: dict) -> dict:
    return api.call("GET", f"/api/mp/v1/merchants/{shop['id']}/wallet",
                    headers=person["headers"])


def buyer_order(api: Api, shop: dict, flow: dict) -> dict:
    return api.call("GET", f"/api/mp/v1/merchants/{shop['id']}/orders/{flow['order']['id']}",
                    headers=flow["carol"])


def assert_every_reply_succeeded(deliveries: list[dict], mode: str) -> None:
    """WeChat's success: v3 wants 204 (or 200); v2 wants HTTP 200 with SUCCESS in its XML."""
    assert [d["error"] for d in deliveries] == [None] * len(deliveries)
    if mode == "v2":
        assert [d["status"] for d in deliveries] == [200] * len(deliveries)
        assert all("<return_code><![CDATA[SUCCESS]]>" in d["body"] for d in deliveries)
    else:
        assert [d["status"] for d in deliveries] == [204] * len(deliveries)


def run_command(served_env: dict, *args: str) -> dict:
    """`flask --app wsgi ARGS` as its own process on the served database and Redis; returns
    the JSON it prints last."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                          cwd=PROJECT_ROOT, env=child_env(**served_env), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def money_state(shop: dict, flow: dict) -> dict:
    """Everything a repeated payment notification could wrongly change, read from SQL."""
    from app.extensions import db
    from app.models import Commission, Journal, LedgerEntry, Order, PeriodTotal
    from app.services.ledger import wallet_balances

    db.session.expire_all()
    merchant_id, order_id = shop["id"], flow["order"]["id"]
    order = db.session.get(Order, (merchant_id, order_id))
    journals = db.session.execute(select(Journal.kind, func.count()).where(
        Journal.merchant_id == merchant_id).group_by(Journal.kind)).all()
    state = {
        "order": (order.status, order.transaction_id, order.paid_at),
        "journals": dict(journals),
        "entries": db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.merchant_id == merchant_id)),
        "commissions": sorted(db.session.execute(select(
            Commission.tier, Commission.member_id, Commission.amount_fen, Commission.status)
            .where(Commission.merchant_id == merchant_id, Commission.order_id == order_id))
            .all()),
        "period_totals": sorted(db.session.execute(select(
            PeriodTotal.member_id, PeriodTotal.commission_fen, PeriodTotal.sales_fen)
            .where(PeriodTotal.merchant_id == merchant_id)).all()),
        "wallets": {name: wallet_balances(merchant_id, flow[name]["member_id"])
                    for name in ("alice", "bob")},
    }
    db.session.rollback()
    return state


def assert_ledger_sound_and_mirrored(shop: dict, flow: dict) -> None:
    """The ledger proves itself, and after a sweep Redis shows exactly what SQL holds."""
    from app.extensions import db, redis
    from app.services import ledger, wallets

    wallets.sweep_outbox(redis.client)
    report = ledger.verify()
    assert report["accounts_checked"] > 0
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])
    for name in ("alice", "bob"):
        member_id = flow[name]["member_id"]
        mirrored = wallets.read_wallet(redis.client, merchant_id=shop["id"], member_id=member_id)
        assert mirrored == ledger.wallet_balances(shop["id"], member_id)
    db.session.rollback()


def worker_pids(log_text: str, path: str) -> list[str]:
    """The pid of the gunicorn worker behind each access line for POST ``path``."""
    pattern = re.compile(rf"^{ACCESS_LOG_MARK} pid=<(\d+)> POST {re.escape(path)} \d+$",
                         re.MULTILINE)
    return pattern.findall(log_text)


def notify_path(shop: dict, mode: str) -> str:
    if mode == "v2":
        return f"/webhooks/wechatpay/v2/{shop['id']}/payment"
    return f"/webhooks/wechatpay/v3/{shop['id']}"


@pytest.mark.parametrize(("mode", "sign_type"), [V3, ("v3_certificate", "MD5"), V2,
                                                 ("v2", "HMAC-SHA256")])
def test_a_shared_order_paid_by_wechat_makes_both_tiers_available_after_settlement(
        served_app, served_env, app_context, sandbox_url, mode, sign_type):
    api = Api(served_app[0])
    shop = open_shop(api, sandbox_url, mode, sign_type)
    flow = place_order(api, shop)
    alice, bob = flow["alice"], flow["bob"]

    paid = pay(sandbox_url, shop["account"]["mch_id"], flow["order"]["out_trade_no"])
    assert_every_reply_succeeded(paid["deliveries"], mode)
    # The reply goes out after the commit: once the sandbox has it, the order is paid.
    assert buyer_order(api, shop, flow)["status"] == "paid"
    assert wallet(api, shop, bob) == {"pending_fen": BOB_TIER_ONE_FEN, "available_fen": 0,
                                      "withdrawing_fen": 0, "paid_out_fen": 0}
    assert wallet(api, shop, alice) == {"pending_fen": ALICE_TIER_TWO_FEN, "available_fen": 0,
                                        "withdrawing_fen": 0, "paid_out_fen": 0}

    order_path = f"/orders/{flow['order']['id']}"
    shipped = api.call("POST", f"/api/console/v1{order_path}/shipment", headers=shop["owner"],
                       json_body={"carrier": "顺丰", "tracking_no": "SF1234567890"})
    assert shipped["status"] == "shipped"
    received = api.call("POST", f"/api/mp/v1/merchants/{shop['id']}{order_path}/receipt",
                        headers=flow["carol"])
    assert received["status"] == "received"
    assert run_command(served_env, "jobs", "settle-commissions") == {"settled": 2}
    assert run_command(served_env, "jobs", "settle-commissions") == {"settled": 0}

    assert wallet(api, shop, bob) == {"pending_fen": 0, "available_fen": BOB_TIER_ONE_FEN,
                                      "withdrawing_fen": 0, "paid_out_fen": 0}
    assert wallet(api, shop, alice) == {"pending_fen": 0, "available_fen": ALICE_TIER_TWO_FEN,
                                        "withdrawing_fen": 0, "paid_out_fen": 0}
    assert_ledger_sound_and_mirrored(shop, flow)


@pytest.mark.parametrize(("mode", "sign_type"), [V3, V2])
def test_sixty_four_concurrent_copies_of_a_notification_across_workers_pay_once(
        served_app, app_context, sandbox_url, mode, sign_type):
    base_url, gunicorn = served_app
    api = Api(base_url)
    shop = open_shop(api, sandbox_url, mode, sign_type)
    flow = place_order(api, shop)
    log_before = len(gunicorn.log_text())

    paid = pay(sandbox_url, shop["account"]["mch_id"], flow["order"]["out_trade_no"],
               copies=STORM_COPIES, concurrent=True)

    assert_every_reply_succeeded(paid["deliveries"], mode)
    assert len(paid["deliveries"]) == STORM_COPIES
    # gunicorn writes the access line just after the reply: wait for all of them.
    path = notify_path(shop, mode)
    wait_until(lambda: len(worker_pids(gunicorn.log_text()[log_before:], path))
               == STORM_COPIES, timeout=30, what="the access lines of every copy")
    assert len(set(worker_pids(gunicorn.log_text()[log_before:], path))) >= WORKERS
    state = money_state(shop, flow)
    assert state["order"][:2] == ("paid", paid["transaction_id"])
    assert state["journals"] == {"accrual": 1}
    bob_id, alice_id = flow["bob"]["member_id"], flow["alice"]["member_id"]
    assert state["commissions"] == [(1, bob_id, BOB_TIER_ONE_FEN, "pending"),
                                    (2, alice_id, ALICE_TIER_TWO_FEN, "pending")]
    assert state["wallets"]["bob"]["pending"] == BOB_TIER_ONE_FEN
    assert state["wallets"]["alice"]["pending"] == ALICE_TIER_TWO_FEN
    # The ranking totals count the order once: bob sold it, alice only earns on it.
    assert state["period_totals"] == sorted([(bob_id, BOB_TIER_ONE_FEN, PAID_FEN),
                                             (alice_id, ALICE_TIER_TWO_FEN, 0)])
    assert wallet(api, shop, flow["bob"])["pending_fen"] == BOB_TIER_ONE_FEN
    assert_ledger_sound_and_mirrored(shop, flow)


@pytest.mark.parametrize(("mode", "sign_type"), [V3, V2])
def test_the_whole_retry_schedule_replayed_after_a_storm_changes_nothing(
        served_app, app_context, sandbox_url, mode, sign_type):
    api = Api(served_app[0])
    shop = open_shop(api, sandbox_url, mode, sign_type)
    flow = place_order(api, shop)
    paid = pay(sandbox_url, shop["account"]["mch_id"], flow["order"]["out_trade_no"],
               copies=STORM_COPIES, concurrent=True)
    assert_every_reply_succeeded(paid["deliveries"], mode)
    before = money_state(shop, flow)
    assert before["journals"] == {"accrual": 1}

    replay = control(sandbox_url, "POST",
                     f"/sandbox/notifications/{paid['notification_id']}/resend",
                     {"retry_schedule": True})

    assert len(replay["deliveries"]) == 15  # WeChat's schedule: 15 deliveries in 24 h 4 min
    assert_every_reply_succeeded(replay["deliveries"], mode)
    assert money_state(shop, flow) == before
    assert wallet(api, shop, flow["alice"])["pending_fen"] == ALICE_TIER_TWO_FEN
    assert_ledger_sound_and_mirrored(shop, flow)
