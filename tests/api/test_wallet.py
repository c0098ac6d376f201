"""GET /api/mp/v1/merchants/{id}/wallet and /commissions: my money in one merchant's program.

The signed-in user is the sandbox user "alice"; her membership is made with the factories, and
money reaches her wallet the way it will in production (paid orders, settlement, postings).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.database import transaction, utcnow
from app.domain.ledger import AVAILABLE, PAID_OUT, WITHDRAWING, Entry, wallet
from app.extensions import db, redis
from app.integrations import wallet_mirror
from app.models import Merchant, Order, User
from app.services import commissions, ledger, wallets
from tests.factories import make_member, make_merchant, make_order, pay_order
from tests.support.servers import free_port

pytestmark = pytest.mark.redis_topologies

BASE = "/api/mp/v1/merchants"


def wallet_url(merchant_id: int) -> str:
    return f"{BASE}/{merchant_id}/wallet"


def commissions_url(merchant_id: int, query: str = "") -> str:
    return f"{BASE}/{merchant_id}/commissions{query}"


@pytest.fixture
def alice(login, app_context):
    """Alice's token, and her User row."""
    session = login("alice")
    return {"Authorization": f"Bearer {session['token']}"}, db.session.get(
        User, session["user"]["id"])


def member_for(shop, user, *, upline=None):
    return make_member(shop, user=user, upline=upline)


def sell_under(distributor, *, fen: int, received_days_ago: int | None = None):
    """A buyer under ``distributor`` pays an order of ``fen`` (10% for the distributor)."""
    buyer = make_member(db.session.get(Merchant, distributor.merchant_id), upline=distributor,
                        status="none")
    order = make_order(buyer, lines=[(fen, 1)])
    pay_order(order)
    if received_days_ago is not None:
        with transaction(db.session):
            row = db.session.get(Order, (order.merchant_id, order.id))
            commissions.schedule_settlement(
                row, received_at=utcnow() - timedelta(days=received_days_ago), freeze_days=7)
        with transaction(db.session):
            commissions.settle_due(now=utcnow())
    return order


def withdraw_and_pay_out(member, *, withdraw_fen: int, paid_out_fen: int) -> None:
    with transaction(db.session):
        ledger.post(merchant_id=member.merchant_id, idempotency_key=f"w-{member.id}",
                    kind="withdrawal", keep_non_negative=[wallet(member.id, AVAILABLE)],
                    entries=[Entry(wallet(member.id, AVAILABLE), -withdraw_fen),
                             Entry(wallet(member.id, WITHDRAWING), withdraw_fen)])
        ledger.post(merchant_id=member.merchant_id, idempotency_key=f"p-{member.id}",
                    kind="payout",
                    entries=[Entry(wallet(member.id, WITHDRAWING), -paid_out_fen),
                             Entry(wallet(member.id, PAID_OUT), paid_out_fen)])


def fake_mirror(member, fen: int) -> None:
    """A mirror that differs from SQL: what a read returns shows where it came from."""
    wallet_mirror.write(redis.client, wallet_mirror.WalletState(
        merchant_id=member.merchant_id, member_id=member.id, version=10**12,
        balances={"pending": fen, "available": fen + 1, "withdrawing": fen + 2,
                  "paid_out": fen + 3}, period_totals={}))


# --- /wallet ----------------------------------------------------------------------------------


def test_my_wallet_shows_my_four_balances(client, shop, alice):
    headers, user = alice
    me = member_for(shop, user)
    sell_under(me, fen=20_000, received_days_ago=8)  # 2,000 settled
    sell_under(me, fen=7_000)  # 700 pending
    withdraw_and_pay_out(me, withdraw_fen=1_500, paid_out_fen=600)
    response = client.get(wallet_url(shop.id), headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"pending_fen": 700, "available_fen": 500,
                                   "withdrawing_fen": 900, "paid_out_fen": 600}
    # Mirrored or not, the numbers are the same.
    wallets.sweep_outbox(redis.client)
    assert client.get(wallet_url(shop.id), headers=headers).get_json() == response.get_json()


def test_a_new_member_has_an_empty_wallet(client, shop, alice):
    headers, user = alice
    member_for(shop, user)
    assert client.get(wallet_url(shop.id), headers=headers).get_json() == {
        "pending_fen": 0, "available_fen": 0, "withdrawing_fen": 0, "paid_out_fen": 0}


def test_a_debt_shows_as_a_negative_available_balance(client, shop, alice):
    headers, user = alice
    me = member_for(shop, user)
    order = sell_under(me, fen=10_000, received_days_ago=8)
    withdraw_and_pay_out(me, withdraw_fen=1_000, paid_out_fen=1_000)
    with transaction(db.session):
        commissions.reverse_for_refund(db.session.get(Order, (shop.id, order.id)),
                                       refund_key="all", refunded_goods_before_fen=0,
                                       refunded_goods_after_fen=10_000)
    body = client.get(wallet_url(shop.id), headers=headers).get_json()
    assert (body["available_fen"], body["paid_out_fen"]) == (-1_000, 1_000)


def test_my_wallet_is_read_from_the_mirror_when_there_is_one(client, shop, alice):
    headers, user = alice
    me = member_for(shop, user)
    sell_under(me, fen=10_000)
    fake_mirror(me, 42)
    assert client.get(wallet_url(shop.id), headers=headers).get_json() == {
        "pending_fen": 42, "available_fen": 43, "withdrawing_fen": 44, "paid_out_fen": 45}


def test_my_wallet_is_read_from_sql_when_redis_is_down(client, make_app, shop, alice):
    headers, user = alice
    me = member_for(shop, user)
    sell_under(me, fen=10_000)
    fake_mirror(me, 42)  # in the shared Redis, which the app below cannot reach
    down = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0").test_client()
    response = down.get(wallet_url(shop.id), headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"pending_fen": 1_000, "available_fen": 0,
                                   "withdrawing_fen": 0, "paid_out_fen": 0}


def test_a_user_who_is_not_a_member_gets_404_not_a_member(client, shop, alice):
    headers, _ = alice
    for url in (wallet_url(shop.id), commissions_url(shop.id)):
        response = client.get(url, headers=headers)
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_a_member"


@pytest.mark.parametrize("status", ["pending", "rejected", "suspended"])
def test_a_merchant_that_is_not_approved_is_404(client, alice, status):
    headers, user = alice
    hidden = make_merchant(status=status)
    member_for(hidden, user)
    for url in (wallet_url(hidden.id), commissions_url(hidden.id)):
        response = client.get(url, headers=headers)
        assert response.status_code == 404
        assert response.get_json()["code"] == "merchant_not_found"


def test_an_unknown_merchant_is_404(client, alice):
    headers, _ = alice
    response = client.get(wallet_url(987_654), headers=headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "merchant_not_found"


def test_each_merchant_shows_its_own_wallet_and_never_anyone_elses(client, shop, other_shop,
                                                                   alice):
    headers, user = alice
    me_here = member_for(shop, user)
    me_there = member_for(other_shop, user)
    sell_under(me_here, fen=10_000)
    sell_under(me_there, fen=30_000)
    bob = make_member(shop)
    sell_under(bob, fen=50_000)
    wallets.sweep_outbox(redis.client)
    assert client.get(wallet_url(shop.id), headers=headers).get_json()["pending_fen"] == 1_000
    assert client.get(wallet_url(other_shop.id),
                      headers=headers).get_json()["pending_fen"] == 3_000
    third = make_merchant()
    make_member(third)
    assert client.get(wallet_url(third.id), headers=headers).status_code == 404


def test_the_wallet_needs_a_token(client, shop):
    response = client.get(wallet_url(shop.id))
    assert response.status_code == 401
    assert response.get_json()["code"] == "missing_token"


# --- /commissions -----------------------------------------------------------------------------


def test_my_commissions_list_my_parts_with_their_orders(client, shop, alice):
    headers, user = alice
    upline = make_member(shop)
    me = member_for(shop, user, upline=upline)
    buyer = make_member(shop, upline=me, status="none")
    order = make_order(buyer, lines=[(10_000, 1), (3_000, 2)])
    pay_order(order)
    out_trade_no = db.session.get(Order, (shop.id, order.id)).out_trade_no
    body = client.get(commissions_url(shop.id), headers=headers).get_json()
    assert (body["total"], body["page"], body["per_page"]) == (2, 1, 20)
    # Newest first; tier 1 for me — my upline's tier-2 parts of the same order are not mine.
    assert [(i["order_id"], i["out_trade_no"], i["line_no"], i["tier"], i["base_fen"],
             i["rate_bps"], i["amount_fen"], i["reversed_fen"], i["status"])
            for i in body["items"]] == [
        (order.id, out_trade_no, 2, 1, 6_000, 1000, 600, 0, "pending"),
        (order.id, out_trade_no, 1, 1, 10_000, 1000, 1_000, 0, "pending")]
    assert body["items"][0]["settle_at"] is None and body["items"][0]["created_at"]


def test_my_commissions_show_reversals_and_settlement(client, shop, alice):
    headers, user = alice
    me = member_for(shop, user)
    order = sell_under(me, fen=10_000, received_days_ago=8)
    with transaction(db.session):
        commissions.reverse_for_refund(db.session.get(Order, (shop.id, order.id)),
                                       refund_key="half", refunded_goods_before_fen=0,
                                       refunded_goods_after_fen=5_000)
    [item] = client.get(commissions_url(shop.id), headers=headers).get_json()["items"]
    assert (item["amount_fen"], item["reversed_fen"], item["status"]) == (1_000, 500, "settled")
    assert item["settle_at"] is not None


def test_my_commissions_are_paginated(client, shop, alice):
    headers, user = alice
    me = member_for(shop, user)
    orders = [sell_under(me, fen=1_000 * (n + 1)) for n in range(5)]
    first = client.get(commissions_url(shop.id, "?per_page=2"), headers=headers).get_json()
    third = client.get(commissions_url(shop.id, "?per_page=2&page=3"),
                       headers=headers).get_json()
    assert (first["total"], len(first["items"]), first["per_page"]) == (5, 2, 2)
    assert [i["amount_fen"] for i in first["items"]] == [500, 400]
    assert (third["page"], [i["order_id"] for i in third["items"]]) == (3, [orders[0].id])
    everything = client.get(commissions_url(shop.id, "?per_page=100"), headers=headers)
    assert everything.status_code == 200 and len(everything.get_json()["items"]) == 5


@pytest.mark.parametrize("query", ["?per_page=101", "?per_page=0", "?page=0",
                                   "?per_page=abc"])
def test_bad_paging_is_a_422(client, shop, alice, query):
    headers, user = alice
    member_for(shop, user)
    response = client.get(commissions_url(shop.id, query), headers=headers)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid_input"
    assert set(body["errors"]) <= {"page", "per_page"} and body["errors"]


def test_commissions_of_another_merchant_never_show(client, shop, other_shop, alice):
    headers, user = alice
    member_for(shop, user)
    elsewhere = member_for(other_shop, user)
    sell_under(elsewhere, fen=10_000)
    body = client.get(commissions_url(shop.id), headers=headers).get_json()
    assert (body["total"], body["items"]) == (0, [])
    assert client.get(commissions_url(other_shop.id), headers=headers).get_json()["total"] == 1
