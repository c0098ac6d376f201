"""Levels in the console API: definitions by role, manual changes with reasons, level history,
and levels at work on orders paid through the WeChat sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.database import transaction, utcnow
from app.extensions import db
from app.models import Member
from tests.api.conftest import ADDRESS
from tests.api.test_orders import orders_url, place_paid_order, wallet
from tests.factories import make_member, make_share_link
from tests.support.wechat import sandbox_code
from tests.support.wechatpay import complete_refund, deliver, pay

LEVELS = "/api/console/v1/levels"
DISTRIBUTORS = "/api/console/v1/distributors"
SILVER = {"name": "Silver", "weight": 10, "tier_rates_bps": [1500, 700],
          "upgrade_rule": {"combine": "any", "conditions": [
              {"metric": "direct_members", "threshold": 2}]}}


def create(client, headers, **changes) -> dict:
    response = client.post(LEVELS, json={**SILVER, **changes}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def set_level(client, headers, member_id: int, level_id: int | None, reason: str = "试用"):
    return client.post(f"{DISTRIBUTORS}/{member_id}/level", headers=headers,
                       json={"level_id": level_id, "reason": reason})


# -- definitions --------------------------------------------------------------------------------

def test_the_owner_creates_a_level_that_every_role_can_read(client, shop, staff_headers):
    level = create(client, staff_headers())
    assert level["keep_rule"] == {"combine": "all", "conditions": []}
    assert level["upgrade_rule"]["conditions"] == [
        {"metric": "direct_members", "threshold": 2, "window_days": 0}]
    listed = client.get(LEVELS, headers=staff_headers("finance1")).get_json()
    assert listed["total"] == 1 and listed["items"][0] == {**level, "members": 0}
    plans = client.get("/api/console/v1/settings/commission-plans", headers=staff_headers())
    assert len(plans.get_json()) >= 1


def test_operators_edit_names_and_conditions_but_not_rates(client, shop, staff_headers):
    operator = staff_headers("operator1")
    assert client.post(LEVELS, json=SILVER, headers=operator).status_code == 403
    level = create(client, staff_headers())
    refused = client.patch(f"{LEVELS}/{level['id']}", headers=operator,
                           json={"name": "白银", "tier_rates_bps": [2000, 500]})
    assert refused.status_code == 403 and refused.get_json()["errors"] == {
        "tier_rates_bps": ["Owner only."]}
    renamed = client.patch(f"{LEVELS}/{level['id']}", headers=operator, json={
        "name": "白银", "keep_rule": {"conditions": [
            {"metric": "personal_sales_fen", "threshold": 1000, "window_days": 30}]}})
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["name"] == "白银"
    assert renamed.get_json()["tier_rates_bps"] == [1500, 700]
    assert client.delete(f"{LEVELS}/{level['id']}", headers=operator).status_code == 403


@pytest.mark.parametrize(("changes", "field"), [
    ({"upgrade_rule": {"conditions": [{"metric": "team_size", "threshold": 5,
                                       "window_days": 30}]}},
     "upgrade_rule.conditions.0.window_days"),
    ({"tier_rates_bps": [2500, 600]}, "tier_rates_bps"),  # 3,100 > max_total_bps 3,000
    ({"tier_rates_bps": [1500]}, "tier_rates_bps"),
    ({"weight": 0}, "weight"),
    ({"upgrade_rule": {"conditions": [{"metric": "likes", "threshold": 5}]}}, "upgrade_rule"),
    ({"keep_rule": {"conditions": [{"metric": "direct_members", "threshold": 1.5}]}},
     "keep_rule"),
    ({"keep_rule": {"combine": "most"}}, "keep_rule"),
    ({"colour": "silver"}, "colour"),
])
def test_invalid_levels_are_refused_naming_the_field(client, shop, staff_headers, changes,
                                                     field):
    response = client.post(LEVELS, json={**SILVER, **changes}, headers=staff_headers())
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_two_levels_never_share_a_weight_or_a_name(client, shop, staff_headers):
    create(client, staff_headers())
    same_weight = client.post(LEVELS, json={**SILVER, "name": "Gold"}, headers=staff_headers())
    assert same_weight.status_code == 409
    assert same_weight.get_json()["code"] == "level_weight_taken"
    same_name = client.post(LEVELS, json={**SILVER, "weight": 20}, headers=staff_headers())
    assert same_name.get_json()["code"] == "level_name_taken"


def test_a_level_cannot_be_deleted_while_members_hold_it(client, shop, staff_headers):
    level = create(client, staff_headers())
    member = make_member(shop)
    assert set_level(client, staff_headers(), member.id, level["id"]).status_code == 200
    refused = client.delete(f"{LEVELS}/{level['id']}", headers=staff_headers())
    assert refused.status_code == 409 and refused.get_json()["code"] == "level_in_use"
    assert set_level(client, staff_headers(), member.id, None).status_code == 200
    assert client.delete(f"{LEVELS}/{level['id']}", headers=staff_headers()).status_code == 204
    assert client.get(f"{LEVELS}/{level['id']}", headers=staff_headers()).status_code == 404


def test_another_merchants_levels_are_not_found(client, shop, other_shop, staff_headers):
    theirs = create(client, staff_headers("owner2"))
    mine = staff_headers()
    assert client.get(f"{LEVELS}/{theirs['id']}", headers=mine).status_code == 404
    assert client.patch(f"{LEVELS}/{theirs['id']}", json={"name": "x"},
                        headers=mine).status_code == 404
    assert client.delete(f"{LEVELS}/{theirs['id']}", headers=mine).status_code == 404
    member = make_member(shop)
    refused = set_level(client, mine, member.id, theirs["id"])
    assert refused.status_code == 422 and "level_id" in refused.get_json()["errors"]


# -- manual changes and history -----------------------------------------------------------------

def test_the_owner_moves_a_member_by_hand_and_the_member_page_shows_it(
        client, shop, staff_headers, chain):
    level = create(client, staff_headers())
    bob = chain["bob"]["member"]
    changed = set_level(client, staff_headers(), bob.id, level["id"], reason="老客户")
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["level"] == {"id": level["id"], "name": "Silver", "weight": 10}
    page = client.get(f"{DISTRIBUTORS}/{bob.id}", headers=staff_headers("finance1")).get_json()
    assert page["level"]["name"] == "Silver"
    [entry] = page["level_history"]
    assert (entry["from_level"], entry["to_level"], entry["cause"], entry["reason"]) == (
        None, "Silver", "manual", "老客户")
    assert entry["staff_id"] is not None
    history = client.get(f"{DISTRIBUTORS}/{bob.id}/level-changes",
                         headers=staff_headers("operator1")).get_json()
    assert history["total"] == 1 and history["items"] == [entry]
    mine = client.get(f"/api/mp/v1/merchants/{shop.id}/distributor",
                      headers=chain["bob"]["headers"]).get_json()
    assert mine["level"] == "Silver"


def test_only_the_owner_changes_levels_by_hand_and_always_with_a_reason(
        client, shop, staff_headers):
    level = create(client, staff_headers())
    member = make_member(shop)
    assert set_level(client, staff_headers("operator1"), member.id,
                     level["id"]).status_code == 403
    no_reason = set_level(client, staff_headers(), member.id, level["id"], reason="")
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["errors"]
    assert set_level(client, staff_headers(), member.id, level["id"]).status_code == 200
    again = set_level(client, staff_headers(), member.id, level["id"])
    assert again.status_code == 409 and again.get_json()["code"] == "level_unchanged"
    assert set_level(client, staff_headers(), 999_999, level["id"]).status_code == 404


# -- levels at work on real payments ------------------------------------------------------------

def test_an_order_keeps_the_rate_its_distributor_had_when_it_was_created(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account = pay_account()
    product = add_product(price_fen=10_000)
    silver = create(client, staff_headers(), upgrade_rule={"conditions": []})
    gold = create(client, staff_headers(), name="Gold", weight=20,
                  tier_rates_bps=[2500, 500], upgrade_rule=SILVER["upgrade_rule"])
    bob, carol = chain["bob"], chain["carol"]
    set_level(client, staff_headers(), bob["member"].id, silver["id"])
    created = client.post(orders_url(shop), headers=carol["headers"], json={
        "items": [{"product_id": product["id"], "quantity": 1}], "address": ADDRESS})
    order = created.get_json()
    # A second direct member signs in through bob's link: bob rises to Gold (25%) ...
    signed_in = client.post("/api/mp/v1/auth/login", json={
        "code": sandbox_code("dave"), "share_token": make_share_link(bob["member"]).token})
    assert signed_in.status_code == 200
    mine = client.get(f"/api/mp/v1/merchants/{shop.id}/distributor", headers=bob["headers"])
    assert mine.get_json()["level"] == "Gold" and gold["id"]
    # ... but the order created at Silver pays Silver's 15% when it is paid afterwards.
    paid = pay(sandbox_url, account["mch_id"], order["out_trade_no"])
    assert deliver(client, sandbox_url, paid["notification_id"]).status_code in (200, 204)
    assert wallet(client, shop, bob["headers"])["pending_fen"] == 1_500
    place_paid_order(client, shop, chain, account, sandbox_url, product)  # a new order: 25%
    assert wallet(client, shop, bob["headers"])["pending_fen"] == 1_500 + 2_500


def test_refunded_sales_stop_counting_at_the_assessment(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    from app.jobs import assess_levels

    account = pay_account()
    gold = create(client, staff_headers(), name="Gold", upgrade_rule={"conditions": []},
                  keep_rule={"conditions": [{"metric": "direct_sales_fen", "threshold": 5_000,
                                             "window_days": 30}]})
    bob = chain["bob"]["member"]
    set_level(client, staff_headers(), bob.id, gold["id"])
    with transaction(db.session):  # bob has held Gold for a period
        db.session.get(Member, (shop.id, bob.id)).level_changed_at = \
            utcnow() - timedelta(days=40)
    order = place_paid_order(client, shop, chain, account, sandbox_url,
                             add_product(price_fen=10_000))
    refund = client.post(f"/api/console/v1/orders/{order['id']}/refunds",
                         headers=staff_headers("finance1"),
                         json={"amount_fen": 6_000, "reason": "部分缺货"}).get_json()
    done = complete_refund(sandbox_url, account["mch_id"], refund["out_refund_no"])
    assert deliver(client, sandbox_url, done["notification_id"]).status_code in (200, 204)

    assert assess_levels() == {"assessed": 1, "downgraded": 1, "upgraded": 0}
    [entry, _] = client.get(f"{DISTRIBUTORS}/{bob.id}/level-changes",
                            headers=staff_headers()).get_json()["items"]
    assert (entry["from_level"], entry["to_level"], entry["cause"]) == ("Gold", None,
                                                                        "assessment")
    # 10,000 sold, 6,000 refunded: 4,000 left in the window.
    assert entry["reason"].endswith("direct_sales_fen over 30 days 4000 < 5000")
