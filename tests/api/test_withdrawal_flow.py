"""A distributor withdraws commission and confirms the WeChat transfer: the happy path and
the review through the console, against the sandbox."""

from __future__ import annotations

from datetime import timedelta

from app.database import transaction, utcnow
from app.extensions import db, redis
from app.services import commissions, wallets
from tests.api.test_orders import place_paid_order
from tests.support.wechatpay import control, deliver


def earn(client, shop, chain, pay_account, add_product, sandbox_url, price_fen=100_000):
    """bob earns 10% of a paid, received and settled order; returns the pay account."""
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=price_fen))
    with transaction(db.session):
        from app.models import Commission
        for commission in db.session.query(Commission):
            commission.settle_at = utcnow() - timedelta(seconds=1)
        commissions.settle_due(now=utcnow())
    wallets.sweep_outbox(redis.client)
    return account, order


def wallet(client, shop, headers) -> dict:
    return client.get(f"/api/mp/v1/merchants/{shop.id}/wallet", headers=headers).get_json()


def test_request_approve_transfer_confirm_pays_out(client, shop, chain, pay_account,
                                                   add_product, sandbox_url, staff_headers):
    account, _ = earn(client, shop, chain, pay_account, add_product, sandbox_url)
    bob = chain["bob"]["headers"]
    assert wallet(client, shop, bob)["available_fen"] == 10_000
    asked = client.post(f"/api/mp/v1/merchants/{shop.id}/withdrawals",
                        headers={**bob, "Idempotency-Key": "w-1"}, json={"amount_fen": 6_000})
    assert asked.status_code == 201, asked.get_json()
    withdrawal = asked.get_json()
    assert withdrawal["status"] == "requested" and withdrawal["transfer"] is None
    assert wallet(client, shop, bob)["withdrawing_fen"] == 6_000
    approved = client.post(f"/api/console/v1/withdrawals/{withdrawal['id']}/approve",
                           headers=staff_headers("finance1"))
    assert approved.status_code == 200, approved.get_json()
    body = approved.get_json()
    assert body["status"] == "transferring"
    assert body["transfer"]["mch_id"] == account["mch_id"] and body["transfer"]["package"]
    out_bill_no = f"W{shop.id}N{withdrawal['id']:08d}"
    done = control(sandbox_url, "POST",
                   f"/sandbox/transfers/{account['mch_id']}/{out_bill_no}/confirm")
    assert deliver(client, sandbox_url, done["notification_id"]).status_code == 204
    assert wallet(client, shop, bob) == {"pending_fen": 0, "available_fen": 4_000,
                                         "withdrawing_fen": 0, "paid_out_fen": 6_000}
    mine = client.get(f"/api/mp/v1/merchants/{shop.id}/withdrawals", headers=bob).get_json()
    assert mine["items"][0]["status"] == "paid_out"
