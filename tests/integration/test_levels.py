"""Levels on PostgreSQL: upgrades as bindings and payments happen, the periodic assessment,
manual changes, and the rates a level puts into the commission snapshot (DOMAIN.md, Levels
and assessment).

Bindings go through share visits and payments through ``payments.apply_payment``, so the
events, rollups and team-delta queue are the real ones. The default program pays 1000 / 500
bps; expected amounts are worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.database import transaction, utcnow
from app.extensions import db
from app.integrations.wechatpay import Payment
from app.models import Commission, CommissionPlanVersion, LevelChange, Member, Order
from app.services import attribution, level_definitions, levels, payments, tree
from app.services.attribution import VisitContext
from tests.factories import make_member, make_merchant, make_order, make_share_link, make_user

NO_RULE = {"combine": "all", "conditions": []}


@pytest.fixture
def shop(app_context):
    return make_merchant()


def add_level(shop, name: str, weight: int, *, rates=(1500, 700), upgrade=None, keep=None):
    return level_definitions.create_level(merchant_id=shop.id, staff_id=None, fields={
        "name": name, "weight": weight, "tier_rates_bps": list(rates),
        "upgrade_rule": upgrade or NO_RULE, "keep_rule": keep or NO_RULE})


def when(combine: str, *conditions: tuple[str, int, int]) -> dict:
    return {"combine": combine, "conditions": [
        {"metric": m, "threshold": t, "window_days": w} for m, t, w in conditions]}


def fresh(member) -> Member:
    db.session.rollback()
    return db.session.get(Member, (member.merchant_id, member.id))


def level_of(member) -> int | None:
    return fresh(member).level_id


def invite(distributor, count: int = 1) -> list[Member]:
    """New users open the distributor's share link and bind under it (events fire)."""
    link = make_share_link(distributor)
    bound = []
    for _ in range(count):
        user = make_user()
        outcome = attribution.record_visit(token=link.token, user_id=user.id,
                                           context=VisitContext(channel="miniprogram"))
        assert outcome.bound, outcome
        bound.append(db.session.scalars(select(Member).where(
            Member.merchant_id == distributor.merchant_id, Member.user_id == user.id)).one())
    return bound


def pay(order, *, now=None) -> None:
    """WeChat reports the order paid: the one payment path, with its events."""
    with transaction(db.session):
        row = db.session.get(Order, (order.merchant_id, order.id))
        row.pay_appid, row.pay_mch_id = "wx-test", "mch-test"
    payments.apply_payment(merchant_id=order.merchant_id, now=now or utcnow(), payment=Payment(
        appid="wx-test", mch_id="mch-test", out_trade_no=order.out_trade_no,
        trade_state="SUCCESS", total_fen=order.paid_fen, transaction_id=f"tx-{order.id}"))


def buy(buyer, price_fen: int) -> Order:
    order = make_order(buyer, lines=[(price_fen, 1)])
    pay(order)
    return order


def apply_queue(shop) -> None:
    with transaction(db.session):
        tree.lock_tree(shop.id)
        tree.apply_team_deltas(shop.id)


def assess(now=None) -> dict:
    with transaction(db.session):
        return levels.assess_due(now=now or utcnow())


def changes(member) -> list[tuple]:
    return [tuple(row) for row in db.session.execute(
        select(LevelChange.from_level_id, LevelChange.to_level_id, LevelChange.cause)
        .where(LevelChange.merchant_id == member.merchant_id,
               LevelChange.member_id == member.id).order_by(LevelChange.id))]


@pytest.fixture
def tree_of_three(shop):
    """alice (root) ← bob ← carol, both uplines active distributors; counters applied."""
    alice = make_member(shop)
    bob = make_member(shop, upline=alice)
    carol = make_member(shop, upline=bob, status="none")
    apply_queue(shop)
    return alice, bob, carol


# -- upgrades by each metric --------------------------------------------------------------------

@pytest.mark.parametrize("window_days", [0, 7])
def test_direct_members_upgrade_the_upline_at_the_binding_that_reaches_them(shop,
                                                                           window_days):
    silver = add_level(shop, "Silver", 10, upgrade=when("all", ("direct_members", 2,
                                                                window_days)))
    alice = make_member(shop)
    invite(alice)
    assert level_of(alice) is None
    invite(alice)
    assert level_of(alice) == silver.id
    assert changes(alice) == [(None, silver.id, "upgrade")]


def test_a_binding_counts_the_team_it_brings_before_the_queue_is_applied(shop):
    silver = add_level(shop, "Silver", 10, upgrade=when("all", ("team_size", 2, 0)))
    alice = make_member(shop)
    bob = make_member(shop)
    make_member(shop, upline=bob)
    apply_queue(shop)
    link = make_share_link(alice)
    outcome = attribution.record_visit(token=link.token, user_id=fresh(bob).user_id,
                                       context=VisitContext(channel="miniprogram"))
    # bob and his member join alice's team: 2, still in the queue, already counted.
    assert outcome.bound and level_of(alice) == silver.id


def test_a_team_grown_deeper_down_upgrades_at_the_next_assessment_run(shop, tree_of_three):
    alice, bob, _ = tree_of_three
    gold = add_level(shop, "Gold", 20, upgrade=when("all", ("team_size", 4, 0)))
    invite(bob, 2)  # alice hears of no event: the bindings are bob's
    apply_queue(shop)
    assert level_of(alice) is None
    assert assess()["upgraded"] == 1
    assert level_of(alice) == gold.id


@pytest.mark.parametrize("window_days", [0, 30])
def test_personal_sales_upgrade_the_buyer_at_its_payment(shop, window_days):
    silver = add_level(shop, "Silver", 10, upgrade=when("all", ("personal_sales_fen", 10_000,
                                                                window_days)))
    buyer = make_member(shop)
    buy(buyer, 9_999)
    assert level_of(buyer) is None
    buy(buyer, 1)
    assert level_of(buyer) == silver.id


@pytest.mark.parametrize("window_days", [0, 30])
def test_direct_sales_upgrade_the_tier_one_distributor(shop, tree_of_three, window_days):
    _, bob, carol = tree_of_three
    silver = add_level(shop, "Silver", 10, upgrade=when("all", ("direct_sales_fen", 10_000,
                                                                window_days)))
    buy(carol, 10_000)
    assert level_of(bob) == silver.id


def test_team_sales_upgrade_the_tier_two_distributor_at_the_payment(shop, tree_of_three):
    alice, _, carol = tree_of_three
    silver = add_level(shop, "Silver", 10, upgrade=when("all", ("team_sales_fen", 10_000, 0)))
    buy(carol, 10_000)  # carol's sales are still queued: counted for alice all the same
    assert level_of(alice) == silver.id


@pytest.mark.parametrize("window_days", [0, 30])
def test_commission_earned_upgrades_the_distributor(shop, tree_of_three, window_days):
    _, bob, carol = tree_of_three
    silver = add_level(shop, "Silver", 10, upgrade=when(
        "all", ("commission_earned_fen", 1_000, window_days)))
    buy(carol, 9_999)  # 999 fen for bob (10%, floor)
    assert level_of(bob) is None
    buy(carol, 10)  # 1 fen more
    assert level_of(bob) == silver.id


def test_sales_outside_the_window_do_not_count(shop, tree_of_three):
    _, bob, carol = tree_of_three
    add_level(shop, "Silver", 10, upgrade=when("all", ("direct_sales_fen", 10_000, 7)))
    pay(make_order(carol, lines=[(6_000, 1)]), now=utcnow() - timedelta(days=8))
    buy(carol, 5_000)  # 5,000 in the last 7 days, 11,000 in all
    assert level_of(bob) is None


# -- any / all, and which level --------------------------------------------------------------

def test_all_waits_for_every_condition(shop):
    silver = add_level(shop, "Silver", 10, upgrade=when(
        "all", ("direct_members", 1, 0), ("personal_sales_fen", 5_000, 30)))
    alice = make_member(shop)
    invite(alice)
    assert level_of(alice) is None
    buy(alice, 5_000)
    assert level_of(alice) == silver.id


def test_any_upgrades_on_the_first_condition_met(shop):
    silver = add_level(shop, "Silver", 10, upgrade=when(
        "any", ("direct_members", 1, 0), ("personal_sales_fen", 5_000, 30)))
    alice = make_member(shop)
    invite(alice)
    assert level_of(alice) == silver.id


def test_an_upgrade_jumps_over_the_levels_between(shop):
    add_level(shop, "Silver", 10, upgrade=when("all", ("personal_sales_fen", 1_000, 0)))
    gold = add_level(shop, "Gold", 20, upgrade=when("all", ("personal_sales_fen", 5_000, 0)))
    buyer = make_member(shop)
    buy(buyer, 5_000)
    assert changes(buyer) == [(None, gold.id, "upgrade")]


def test_members_who_are_not_active_distributors_never_upgrade(shop):
    add_level(shop, "Silver", 10, upgrade=when("all", ("personal_sales_fen", 1_000, 0)))
    buyer = make_member(shop, status="none")
    buy(buyer, 5_000)
    assert level_of(buyer) is None and changes(buyer) == []


def test_an_event_never_moves_a_member_down(shop):
    add_level(shop, "Silver", 10, upgrade=when("all", ("personal_sales_fen", 1_000, 0)))
    gold = add_level(shop, "Gold", 20)
    buyer = make_member(shop)
    level_definitions.change_member_level(merchant_id=shop.id, member_id=buyer.id,
                                          level_id=gold.id, reason="VIP", staff_id=1,
                                          now=utcnow())
    buy(buyer, 5_000)
    assert level_of(buyer) == gold.id


def test_a_change_decided_on_a_stale_level_writes_nothing(shop):
    silver = add_level(shop, "Silver", 10)
    gold = add_level(shop, "Gold", 20)
    member = fresh(make_member(shop))
    # Another transaction moved the member meanwhile; this session still sees no level.
    db.session.execute(update(Member).where(Member.merchant_id == shop.id,
                                            Member.id == member.id)
                       .values(level_id=gold.id).execution_options(synchronize_session=False))
    assert not levels.change_to(member, silver.id, cause="upgrade", reason="", at=utcnow())
    db.session.commit()
    assert level_of(member) == gold.id and changes(member) == []


# -- the commission snapshot --------------------------------------------------------------------

def tier_one_parts(order) -> list[tuple[int, int]]:
    return [tuple(r) for r in db.session.execute(
        select(Commission.rate_bps, Commission.amount_fen).where(
            Commission.merchant_id == order.merchant_id, Commission.order_id == order.id,
            Commission.tier == 1))]


def test_an_order_keeps_the_rate_of_the_level_its_distributor_had_when_it_was_created(
        shop, tree_of_three):
    _, bob, carol = tree_of_three
    silver = add_level(shop, "Silver", 10, rates=(1500, 700))
    gold = add_level(shop, "Gold", 20, rates=(2500, 500),
                     upgrade=when("all", ("direct_members", 2, 0)))
    level_definitions.change_member_level(merchant_id=shop.id, member_id=bob.id,
                                          level_id=silver.id, reason="pilot", staff_id=1,
                                          now=utcnow())
    order = make_order(carol, lines=[(10_000, 1)])  # bob at Silver: 15%
    invite(bob)  # bob's second direct member: Gold (25%) before carol pays
    assert level_of(bob) == gold.id
    pay(order)
    assert tier_one_parts(order) == [(1500, 1_500)]
    assert tier_one_parts(buy(carol, 10_000)) == [(2500, 2_500)]


def test_members_at_the_base_level_earn_the_plan_rate(shop, tree_of_three):
    _, _, carol = tree_of_three
    add_level(shop, "Silver", 10, rates=(1500, 700))
    assert tier_one_parts(buy(carol, 10_000)) == [(1000, 1_000)]


def test_level_rates_publish_plan_versions_and_other_edits_do_not(shop):
    def versions():
        return db.session.scalar(select(func.count()).select_from(CommissionPlanVersion).where(
            CommissionPlanVersion.merchant_id == shop.id))

    make_order(make_member(shop))  # the first version, from the rules
    silver = add_level(shop, "Silver", 10, rates=(1500, 700))
    assert versions() == 2
    level_definitions.update_level(merchant_id=shop.id, level_id=silver.id, staff_id=None,
                                   changes={"name": "白银"})
    assert versions() == 2
    level_definitions.update_level(merchant_id=shop.id, level_id=silver.id, staff_id=None,
                                   changes={"tier_rates_bps": [1600, 700]})
    latest = db.session.scalars(select(CommissionPlanVersion.level_rates_bps).where(
        CommissionPlanVersion.merchant_id == shop.id)
        .order_by(CommissionPlanVersion.version.desc())).first()
    assert versions() == 3 and latest == [[silver.id, [1600, 700]]]

