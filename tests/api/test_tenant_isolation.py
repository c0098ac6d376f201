"""Another merchant's ids, tokens and share links reveal nothing and change nothing."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Member
from tests.factories import make_member, make_share_link

SECRET_NAME = "别家的秘密"


@pytest.fixture
def foreign_member(other_shop):
    return make_member(other_shop, status="pending")


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/console/v1/distributors/{id}"),
    ("GET", "/api/console/v1/distributors/{id}/team"),
    ("POST", "/api/console/v1/distributors/{id}/approve"),
    ("POST", "/api/console/v1/distributors/{id}/reject"),
    ("POST", "/api/console/v1/distributors/{id}/freeze"),
    ("POST", "/api/console/v1/distributors/{id}/unfreeze"),
])
def test_staff_cannot_reach_another_merchants_distributors(client, shop, foreign_member,
                                                          staff_headers, method, path):
    response = client.open(path.format(id=foreign_member.id), method=method,
                           json={"reason": "x"}, headers=staff_headers())
    assert response.status_code == 404
    assert response.get_json()["code"] == "distributor_not_found"
    db.session.expire_all()
    assert db.session.get(Member, (foreign_member.merchant_id,
                                   foreign_member.id)).distributor_status == "pending"


def test_a_move_under_another_merchants_member_is_not_found(client, shop, foreign_member,
                                                           staff_headers):
    mine = make_member(shop)
    response = client.post(f"/api/console/v1/distributors/{mine.id}/move",
                           json={"upline_id": foreign_member.id, "reason": "x"},
                           headers=staff_headers())
    assert response.status_code == 404


def test_lists_only_show_the_staff_members_own_merchant(client, shop, other_shop,
                                                       staff_headers):
    make_member(other_shop)
    mine = make_member(shop)
    listed = client.get("/api/console/v1/distributors", headers=staff_headers()).get_json()
    assert [m["id"] for m in listed["items"]] == [mine.id] and listed["total"] == 1


def test_mp_team_of_another_merchant_is_not_reachable(client, shop, other_shop, login):
    from app.models import User

    me = login("two-shops")
    make_member(shop, user=db.session.get(User, me["user"]["id"]))
    foreign = make_member(other_shop)
    response = client.get(f"/api/mp/v1/merchants/{shop.id}/team?member_id={foreign.id}",
                          headers={"Authorization": f"Bearer {me['token']}"})
    assert response.status_code == 404
    assert client.get(f"/api/mp/v1/merchants/{other_shop.id}/team",
                      headers={"Authorization": f"Bearer {me['token']}"}).status_code == 404


def test_a_share_token_only_ever_names_its_own_merchant(client, shop, other_shop,
                                                       auth_headers):
    link = make_share_link(make_member(other_shop))
    from app.domain.share_token import new_token

    forged = f"{new_token(shop.id).split('-')[0]}-{link.token.split('-')[1]}"
    response = client.post("/api/mp/v1/share-visits", json={"share_token": forged},
                           headers=auth_headers())
    assert response.status_code == 404


def test_an_unapproved_merchant_is_invisible(client, app_context, auth_headers):
    from tests.factories import make_merchant

    pending = make_merchant(status="pending", name=SECRET_NAME)
    response = client.get(f"/api/mp/v1/merchants/{pending.id}")
    assert response.status_code == 404 and SECRET_NAME not in response.get_data(as_text=True)


@pytest.fixture
def foreign_order(other_shop):
    """A paid order of another merchant, with a refund its buyer asked for."""
    from app.database import transaction, utcnow
    from app.models import Order, Refund
    from tests.factories import make_order

    order = make_order(make_member(other_shop, status="none"))
    with transaction(db.session):
        row = db.session.get(Order, (other_shop.id, order.id))
        row.status, row.paid_at, row.transaction_id = "paid", utcnow(), "4200000000000001"
        db.session.add(Refund(merchant_id=other_shop.id, order_id=order.id, amount_fen=100,
                              out_refund_no=f"{row.out_trade_no}R1", source="buyer",
                              status="requested"))
        db.session.flush()
        refund_id = db.session.query(Refund.id).scalar()
    return order, refund_id


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/api/console/v1/orders/{order}/shipment", {"carrier": "顺丰", "tracking_no": "1"}),
    ("POST", "/api/console/v1/orders/{order}/refunds", {"reason": "x"}),
    ("POST", "/api/console/v1/refunds/{refund}/approve", {"reason": "x"}),
    ("POST", "/api/console/v1/refunds/{refund}/reject", {"reason": "x"}),
])
def test_staff_cannot_touch_another_merchants_orders_or_refunds(client, shop, foreign_order,
                                                               staff_headers, method, path,
                                                               body):
    from app.models import Order, Refund

    order, refund_id = foreign_order
    response = client.open(path.format(order=order.id, refund=refund_id), method=method,
                           json=body, headers=staff_headers())
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Order, (order.merchant_id, order.id)).status == "paid"
    assert db.session.get(Refund, (order.merchant_id, refund_id)).status == "requested"
    listed = client.get("/api/console/v1/orders", headers=staff_headers()).get_json()
    assert listed["total"] == 0


def test_a_buyer_cannot_reach_an_order_through_another_merchants_url(client, shop, other_shop,
                                                                    foreign_order, login):
    order, _ = foreign_order
    headers = {"Authorization": f"Bearer {login('mallory')['token']}"}
    for merchant_id in (shop.id, other_shop.id):
        base = f"/api/mp/v1/merchants/{merchant_id}/orders/{order.id}"
        assert client.get(base, headers=headers).status_code == 404
        assert client.post(f"{base}/receipt", headers=headers).status_code == 404
        assert client.post(f"{base}/refund-requests", json={"reason": "x"},
                           headers=headers).status_code == 404
