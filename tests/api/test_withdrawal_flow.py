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


def test_concurrent_requests_can_never_overdraw(app, client, shop, chain, pay_account,
                                                add_product, sandbox_url):
    import threading

    from app.services import ledger
    from tests.api.test_withdrawals import assert_ledger_sound

    earn(client, shop, chain, pay_account, add_product, sandbox_url)
    bob = chain["bob"]["headers"]
    url = f"/api/mp/v1/merchants/{shop.id}/withdrawals"
    db.session.rollback()  # this thread holds no snapshot or lock while the requests race

    copies = 4
    barrier = threading.Barrier(copies)
    replies: list = [None] * copies

    def ask(index: int) -> None:
        # Each thread has its own test client, so its own app context and database session.
        own_client = app.test_client()
        barrier.wait()
        replies[index] = own_client.post(url, headers=bob, json={"amount_fen": 6_000})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 10,000 available: one request of 6,000 fits, every other is refused on the balance.
    assert sorted(r.status_code for r in replies) == [201, 422, 422, 422]
    assert {r.get_json()["code"] for r in replies if r.status_code == 422} == {
        "insufficient_balance"}
    assert wallet(client, shop, bob) == {"pending_fen": 0, "available_fen": 4_000,
                                         "withdrawing_fen": 6_000, "paid_out_fen": 0}
    db.session.rollback()
    assert ledger.wallet_balances(shop.id, chain["bob"]["member"].id)["available"] == 4_000
    assert_ledger_sound(shop)


def test_concurrent_repeats_with_one_idempotency_key_make_one_withdrawal(
        app, client, shop, chain, pay_account, add_product, sandbox_url):
    import threading

    from tests.api.test_withdrawals import assert_ledger_sound, withdrawal_count

    earn(client, shop, chain, pay_account, add_product, sandbox_url)
    bob = {**chain["bob"]["headers"], "Idempotency-Key": "tap-twice"}
    url = f"/api/mp/v1/merchants/{shop.id}/withdrawals"
    db.session.rollback()

    copies = 4
    barrier = threading.Barrier(copies)
    replies: list = [None] * copies

    def ask(index: int) -> None:
        own_client = app.test_client()
        barrier.wait()
        replies[index] = own_client.post(url, headers=bob, json={"amount_fen": 3_000})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in replies] == [201] * copies, [r.get_json() for r in replies]
    assert len({r.get_json()["id"] for r in replies}) == 1
    assert withdrawal_count(shop) == 1
    assert wallet(client, shop, chain["bob"]["headers"]) == {
        "pending_fen": 0, "available_fen": 7_000, "withdrawing_fen": 3_000, "paid_out_fen": 0}
    assert_ledger_sound(shop)
