"""Refunds through the real entry points: the console starts or reviews them, the buyer asks,
WeChat (the sandbox) completes them and its notifications come back to our webhooks. The
commission reversal is checked to the fen, and the ledger is verified after each money path."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.api.conftest import ADDRESS
from tests.support.wechatpay import complete_refund, deliver, pay, signed

# chain(): bob earns tier 1 (10%) and alice tier 2 (5%) on carol's orders.


def orders_url(shop) -> str:
    return f"/api/mp/v1/merchants/{shop.id}/orders"


def wallet(client, shop, person) -> dict:
    response = client.get(f"/api/mp/v1/merchants/{shop.id}/wallet", headers=person["headers"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def my_order(client, shop, chain, order) -> dict:
    response = client.get(f"{orders_url(shop)}/{order['id']}", headers=chain["carol"]["headers"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def place_order(client, shop, chain, product, quantity=1) -> dict:
    response = client.post(orders_url(shop), headers=chain["carol"]["headers"], json={
        "items": [{"product_id": product["id"], "quantity": quantity}], "address": ADDRESS})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def place_paid_order(client, shop, chain, account, sandbox_url, product, quantity=1) -> dict:
    order = place_order(client, shop, chain, product, quantity)
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    assert deliver(client, sandbox_url, paid["notification_id"]).status_code in (200, 204)
    return order


def start_refund(client, staff_headers, order, amount_fen=None, role="owner1"):
    body = {"reason": "缺货"} if amount_fen is None else {"reason": "缺货",
                                                         "amount_fen": amount_fen}
    return client.post(f"/api/console/v1/orders/{order['id']}/refunds",
                       headers=staff_headers(role), json=body)


def started(client, staff_headers, order, amount_fen=None) -> dict:
    response = start_refund(client, staff_headers, order, amount_fen)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["status"] == "processing"
    return response.get_json()


def wechat_finishes(client, sandbox_url, account, refund, status="SUCCESS"):
    """WeChat completes the refund and its notification reaches our webhook once."""
    done = complete_refund(sandbox_url, account["mch_id"], refund["out_refund_no"], status)
    reply = deliver(client, sandbox_url, done["notification_id"])
    assert_accepted(reply)
    return done


def assert_accepted(reply) -> None:
    """WeChat's idea of success: v3 2xx; v2 HTTP 200 with SUCCESS in the XML."""
    assert reply.status_code in (200, 204), reply.get_data(as_text=True)
    if reply.status_code == 200:
        assert "<![CDATA[SUCCESS]]>" in reply.get_data(as_text=True)


def journals(shop, kind: str) -> int:
    from app.extensions import db
    from app.models import Journal

    db.session.rollback()  # see what the requests committed, not this session's snapshot
    return db.session.scalar(select(func.count()).select_from(Journal).where(
        Journal.merchant_id == shop.id, Journal.kind == kind))


def refund_status(client, staff_headers, refund) -> str:
    listed = client.get("/api/console/v1/refunds?per_page=100", headers=staff_headers())
    assert listed.status_code == 200, listed.get_json()
    return next(r["status"] for r in listed.get_json()["items"] if r["id"] == refund["id"])


def assert_ledger_sound(shop) -> None:
    from app.extensions import db
    from app.services import ledger

    db.session.rollback()
    report = ledger.verify(shop.id)
    assert report["accounts_checked"] > 0
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])


def settle_now() -> int:
    """The settlement job, run as if the 7-day freeze after receipt had passed."""
    from app.database import transaction, utcnow
    from app.extensions import db, redis
    from app.services import commissions, wallets

    with transaction(db.session):
        settled = commissions.settle_due(now=utcnow() + timedelta(days=7, seconds=1))
    wallets.sweep_outbox(redis.client)
    return settled


def ship_and_receive(client, shop, chain, staff_headers, order) -> None:
    shipped = client.post(f"/api/console/v1/orders/{order['id']}/shipment",
                          headers=staff_headers("operator1"),
                          json={"carrier": "顺丰", "tracking_no": "SF1234567890"})
    assert shipped.status_code == 200, shipped.get_json()
    received = client.post(f"{orders_url(shop)}/{order['id']}/receipt",
                           headers=chain["carol"]["headers"])
    assert received.status_code == 200, received.get_json()


def pay_out(member, amount_fen: int) -> None:
    """What a withdrawal and its successful transfer post (available → withdrawing →
    paid_out); the withdrawal endpoints do not exist yet, the ledger rules are the same."""
    from app.database import transaction
    from app.domain import ledger as rules
    from app.extensions import db, redis
    from app.services import ledger, wallets

    db.session.rollback()
    with transaction(db.session):
        ledger.post(merchant_id=member.merchant_id, idempotency_key=f"w:{member.id}",
                    kind="withdrawal",
                    keep_non_negative=[rules.wallet(member.id, rules.AVAILABLE)],
                    entries=[rules.Entry(rules.wallet(member.id, rules.AVAILABLE), -amount_fen),
                             rules.Entry(rules.wallet(member.id, rules.WITHDRAWING),
                                         amount_fen)])
        ledger.post(merchant_id=member.merchant_id, idempotency_key=f"p:{member.id}",
                    kind="payout",
                    entries=[rules.Entry(rules.wallet(member.id, rules.WITHDRAWING),
                                         -amount_fen),
                             rules.Entry(rules.wallet(member.id, rules.PAID_OUT), amount_fen)])
    wallets.sweep_outbox(redis.client)


# --- merchant-initiated refunds ---------------------------------------------------------------


@pytest.mark.parametrize(("mode", "sign_type"), [("v3_public_key", "MD5"), ("v2", "MD5")])
def test_a_full_refund_before_settlement_reverses_all_pending_commission(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers, mode,
        sign_type):
    account = pay_account(mode, sign_type)
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=9_990), quantity=3)
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 2_997
    refund = started(client, staff_headers, order)
    assert refund["amount_fen"] == 29_970 and refund["source"] == "merchant"
    assert my_order(client, shop, chain, order)["status"] == "refunding"

    wechat_finishes(client, sandbox_url, account, refund)

    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("refunded", 29_970)
    for name in ("bob", "alice"):
        assert wallet(client, shop, chain[name]) == {
            "pending_fen": 0, "available_fen": 0, "withdrawing_fen": 0, "paid_out_fen": 0}
    assert refund_status(client, staff_headers, refund) == "succeeded"
    assert journals(shop, "reversal") == 1
    assert_ledger_sound(shop)


def test_a_partial_refund_then_the_rest_reverses_proportionally_then_exactly_the_remainder(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    from app.extensions import db
    from app.models import Commission

    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=9_990), quantity=3)
    # Paid 29,970: bob 10% = 2,997; alice 5% = 1,498.5 → 1,498.
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 2_997
    assert wallet(client, shop, chain["alice"])["pending_fen"] == 1_498

    first = started(client, staff_headers, order, amount_fen=1_001)
    wechat_finishes(client, sandbox_url, account, first)
    # 2,997 × 1,001 / 29,970 = 100.09… → 100; 1,498 × 1,001 / 29,970 = 50.03… → 50.
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("partially_refunded", 1_001)
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 2_997 - 100
    assert wallet(client, shop, chain["alice"])["pending_fen"] == 1_498 - 50

    rest = started(client, staff_headers, order)  # no amount: whatever is left
    assert rest["amount_fen"] == 29_970 - 1_001
    wechat_finishes(client, sandbox_url, account, rest)
    # The last refund takes exactly the remainder: 2,897 and 1,448, not a rounded share.
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("refunded", 29_970)
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 0
    assert wallet(client, shop, chain["alice"])["pending_fen"] == 0
    db.session.rollback()
    rows = db.session.scalars(select(Commission).where(
        Commission.merchant_id == shop.id, Commission.order_id == order["id"])
        .order_by(Commission.tier)).all()
    assert [(c.tier, c.amount_fen, c.reversed_fen, c.status) for c in rows] == [
        (1, 2_997, 2_997, "reversed"), (2, 1_498, 1_498, "reversed")]
    assert journals(shop, "reversal") == 2
    assert_ledger_sound(shop)


def test_a_refund_after_settlement_takes_the_commission_back_from_available(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    ship_and_receive(client, shop, chain, staff_headers, order)
    assert settle_now() == 2
    assert wallet(client, shop, chain["bob"])["available_fen"] == 1_000

    refund = started(client, staff_headers, order, amount_fen=2_500)
    wechat_finishes(client, sandbox_url, account, refund)

    # A quarter of the goods: 250 of bob's 1,000 and 125 of alice's 500, from available.
    assert wallet(client, shop, chain["bob"]) == {
        "pending_fen": 0, "available_fen": 750, "withdrawing_fen": 0, "paid_out_fen": 0}
    assert wallet(client, shop, chain["alice"])["available_fen"] == 375
    assert my_order(client, shop, chain, order)["status"] == "partially_refunded"
    assert_ledger_sound(shop)


def test_a_refund_after_settlement_and_payout_leaves_a_debt(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    ship_and_receive(client, shop, chain, staff_headers, order)
    assert settle_now() == 2
    pay_out(chain["bob"]["member"], 1_000)
    pay_out(chain["alice"]["member"], 500)

    refund = started(client, staff_headers, order)
    wechat_finishes(client, sandbox_url, account, refund)

    # Nothing else to take it from: available goes negative, never capped at zero.
    assert wallet(client, shop, chain["bob"]) == {
        "pending_fen": 0, "available_fen": -1_000, "withdrawing_fen": 0,
        "paid_out_fen": 1_000}
    assert wallet(client, shop, chain["alice"]) == {
        "pending_fen": 0, "available_fen": -500, "withdrawing_fen": 0, "paid_out_fen": 500}
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("refunded", 10_000)
    assert_ledger_sound(shop)


# --- duplicate notifications ------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "sign_type"), [("v3_public_key", "MD5"), ("v2", "MD5")])
def test_a_refund_notification_delivered_five_times_reverses_once(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers, mode,
        sign_type):
    account = pay_account(mode, sign_type)
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    refund = started(client, staff_headers, order, amount_fen=4_000)
    done = complete_refund(sandbox_url, account["mch_id"], refund["out_refund_no"])
    for _ in range(5):
        assert_accepted(deliver(client, sandbox_url, done["notification_id"]))

    assert journals(shop, "reversal") == 1
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 1_000 - 400
    assert wallet(client, shop, chain["alice"])["pending_fen"] == 500 - 200
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("partially_refunded", 4_000)
    assert_ledger_sound(shop)


def test_concurrent_copies_of_a_refund_notification_reverse_once(
        app, client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    from app.extensions import db

    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    refund = started(client, staff_headers, order)
    done = complete_refund(sandbox_url, account["mch_id"], refund["out_refund_no"])
    path, headers, body = signed(sandbox_url, done["notification_id"])
    db.session.rollback()  # this thread holds no snapshot or lock while the copies race

    copies = 5
    barrier = threading.Barrier(copies)
    replies: list = [None] * copies

    def deliver_copy(index: int) -> None:
        # Each thread has its own test client, so its own app context and database session.
        own_client = app.test_client()
        barrier.wait()
        replies[index] = own_client.post(path, data=body, headers=headers)

    threads = [threading.Thread(target=deliver_copy, args=(i,)) for i in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for reply in replies:
        assert_accepted(reply)
    assert journals(shop, "reversal") == 1
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 0
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("refunded", 10_000)
    assert_ledger_sound(shop)


# --- the buyer asks, the merchant decides -----------------------------------------------------


def request_refund(client, shop, chain, order, body=None, who="carol"):
    return client.post(f"{orders_url(shop)}/{order['id']}/refund-requests",
                       headers=chain[who]["headers"], json=body or {"reason": "不想要了"})


@pytest.mark.parametrize("reviewer", ["owner1", "finance1"])
def test_a_buyer_request_approved_by_owner_or_finance_is_refunded_through_wechat(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers, reviewer):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    asked = request_refund(client, shop, chain, order)
    assert asked.status_code == 201, asked.get_json()
    request = asked.get_json()
    assert (request["status"], request["source"], request["amount_fen"]) == (
        "requested", "buyer", 10_000)

    approved = client.post(f"/api/console/v1/refunds/{request['id']}/approve",
                           headers=staff_headers(reviewer), json={})
    assert approved.status_code == 200, approved.get_json()
    assert approved.get_json()["status"] == "processing"
    assert my_order(client, shop, chain, order)["status"] == "refunding"

    wechat_finishes(client, sandbox_url, account, request)
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("refunded", 10_000)
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 0


def test_rejecting_a_buyer_request_needs_a_reason_and_leaves_the_order_unchanged(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    request = request_refund(client, shop, chain, order).get_json()
    url = f"/api/console/v1/refunds/{request['id']}/reject"

    no_reason = client.post(url, headers=staff_headers(), json={})
    assert no_reason.status_code == 422, no_reason.get_json()
    assert "reason" in no_reason.get_json()["errors"]
    assert refund_status(client, staff_headers, request) == "requested"

    rejected = client.post(url, headers=staff_headers(), json={"reason": "商品已拆封"})
    assert rejected.status_code == 200, rejected.get_json()
    assert (rejected.get_json()["status"], rejected.get_json()["review_reason"]) == (
        "rejected", "商品已拆封")
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("paid", 0)
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 1_000
    assert journals(shop, "reversal") == 0
    # A rejected request is closed: the buyer may ask again.
    assert request_refund(client, shop, chain, order).status_code == 201


def test_an_operator_cannot_approve_a_refund(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    request = request_refund(client, shop, chain, order).get_json()
    denied = client.post(f"/api/console/v1/refunds/{request['id']}/approve",
                         headers=staff_headers("operator1"), json={})
    assert denied.status_code == 403, denied.get_json()
    assert start_refund(client, staff_headers, order, role="operator1").status_code == 403
    assert refund_status(client, staff_headers, request) == "requested"
    assert my_order(client, shop, chain, order)["status"] == "paid"


def test_a_buyer_cannot_ask_to_refund_someone_elses_order(
        client, shop, chain, pay_account, add_product, sandbox_url):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    assert request_refund(client, shop, chain, order, who="bob").status_code == 404


# --- WeChat's non-success outcomes ------------------------------------------------------------


def test_an_abnormal_refund_stays_open_until_wechat_completes_it(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    refund = started(client, staff_headers, order)

    wechat_finishes(client, sandbox_url, account, refund, status="ABNORMAL")
    assert my_order(client, shop, chain, order)["status"] == "refunding"
    assert refund_status(client, staff_headers, refund) == "abnormal"
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 1_000
    assert start_refund(client, staff_headers, order, amount_fen=100).status_code == 409

    wechat_finishes(client, sandbox_url, account, refund, status="SUCCESS")
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("refunded", 10_000)
    assert refund_status(client, staff_headers, refund) == "succeeded"
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 0
    assert journals(shop, "reversal") == 1


def test_a_closed_refund_puts_the_order_back_and_reverses_nothing(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    shipped = client.post(f"/api/console/v1/orders/{order['id']}/shipment",
                          headers=staff_headers("operator1"),
                          json={"carrier": "顺丰", "tracking_no": "SF1234567890"})
    assert shipped.get_json()["status"] == "shipped"
    refund = started(client, staff_headers, order)

    wechat_finishes(client, sandbox_url, account, refund, status="CLOSED")
    mine = my_order(client, shop, chain, order)
    assert (mine["status"], mine["refunded_fen"]) == ("shipped", 0)
    assert refund_status(client, staff_headers, refund) == "closed"
    assert wallet(client, shop, chain["bob"])["pending_fen"] == 1_000
    assert wallet(client, shop, chain["alice"])["pending_fen"] == 500
    assert journals(shop, "reversal") == 0
    # Closed is final: the merchant may refund the order again.
    assert start_refund(client, staff_headers, order).status_code == 201


# --- validation -------------------------------------------------------------------------------


def test_a_refund_above_the_refundable_amount_is_refused_on_amount_fen(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    too_much = start_refund(client, staff_headers, order, amount_fen=10_001)
    assert too_much.status_code == 422, too_much.get_json()
    assert "amount_fen" in too_much.get_json()["errors"]
    asked = request_refund(client, shop, chain, order,
                           {"reason": "不想要了", "amount_fen": 10_001})
    assert asked.status_code == 422 and "amount_fen" in asked.get_json()["errors"]

    wechat_finishes(client, sandbox_url, account,
                    started(client, staff_headers, order, amount_fen=6_000))
    # What is left is 4,000: one fen more is refused, exactly that is accepted.
    beyond = start_refund(client, staff_headers, order, amount_fen=4_001)
    assert beyond.status_code == 422 and "amount_fen" in beyond.get_json()["errors"]
    assert start_refund(client, staff_headers, order, amount_fen=4_000).status_code == 201


def test_a_second_refund_while_a_request_awaits_review_is_a_conflict(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    assert request_refund(client, shop, chain, order).status_code == 201
    again = request_refund(client, shop, chain, order)
    assert (again.status_code, again.get_json()["code"]) == (409, "refund_in_progress")
    merchant = start_refund(client, staff_headers, order, amount_fen=1_000)
    assert (merchant.status_code, merchant.get_json()["code"]) == (409, "refund_in_progress")


def test_a_second_refund_while_one_is_at_wechat_is_a_conflict(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    started(client, staff_headers, order, amount_fen=1_000)
    merchant = start_refund(client, staff_headers, order, amount_fen=1_000)
    assert (merchant.status_code, merchant.get_json()["code"]) == (409, "refund_in_progress")
    buyer = request_refund(client, shop, chain, order, {"reason": "再退一点",
                                                        "amount_fen": 1_000})
    assert (buyer.status_code, buyer.get_json()["code"]) == (409, "refund_in_progress")


def test_an_unpaid_order_cannot_be_refunded(
        client, shop, chain, pay_account, add_product, staff_headers):
    pay_account()
    order = place_order(client, shop, chain, add_product(price_fen=10_000))
    refused = start_refund(client, staff_headers, order)
    assert refused.status_code == 409, refused.get_json()
    assert request_refund(client, shop, chain, order).status_code == 409
    assert my_order(client, shop, chain, order)["status"] == "created"
