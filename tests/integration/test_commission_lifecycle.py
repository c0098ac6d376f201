"""Commission from order creation to settlement and refund, on PostgreSQL (DOMAIN.md,
Commission; Commission lifecycle and the ledger).

The default program: two tiers at 1000 / 500 bps, max_total_bps 3000, freeze_days 7. Expected
amounts are worked out by hand in the comments, never by calling the code under test.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.database import transaction, utcnow
from app.domain import ledger as rules
from app.domain.ledger import AVAILABLE, Entry, wallet
from app.extensions import db, redis
from app.integrations import wallet_mirror
from app.models import (
    Commission,
    CommissionPlanVersion,
    Journal,
    LedgerAccount,
    Member,
    Order,
    PeriodTotal,
)
from app.services import commissions, ledger, members, merchants, wallets
from tests.factories import make_member, make_merchant, make_order, pay_order

# --- helpers ----------------------------------------------------------------------------------


def chain(shop, *, parent_status: str = "active", buyer_status: str = "none"):
    """grandparent (root) → parent → buyer."""
    grandparent = make_member(shop)
    parent = make_member(shop, upline=grandparent, status=parent_status)
    return grandparent, parent, make_member(shop, upline=parent, status=buyer_status)


def snapshot(order) -> dict:
    return db.session.get(Order, (order.merchant_id, order.id)).commission_snapshot


def balances(member) -> dict[str, int]:
    return ledger.wallet_balances(member.merchant_id, member.id)


def pending(member) -> int:
    return balances(member)["pending"]


def parts(order) -> list[tuple[int, int, int, int, int]]:
    """(line, tier, member, base, amount) of each commission part of the order."""
    return [tuple(row) for row in db.session.execute(
        select(Commission.line_no, Commission.tier, Commission.member_id, Commission.base_fen,
               Commission.amount_fen).where(Commission.merchant_id == order.merchant_id,
                                            Commission.order_id == order.id)
        .order_by(Commission.line_no, Commission.tier))]


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def assert_sound(merchant_id: int) -> None:
    report = ledger.verify(merchant_id)
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])


def set_bound_at(member, days_ago: float) -> None:
    with transaction(db.session):
        db.session.get(Member, (member.merchant_id, member.id)).bound_at = \
            utcnow() - timedelta(days=days_ago)


def review(member, action: str) -> None:
    members.review(merchant_id=member.merchant_id, member_id=member.id, action=action,
                   reason="risk review", staff_id=1)


def receive(order, *, received_at=None, freeze_days: int = 7) -> None:
    with transaction(db.session):
        row = db.session.get(Order, (order.merchant_id, order.id))
        commissions.schedule_settlement(row, received_at=received_at or utcnow(),
                                        freeze_days=freeze_days)


def settle(now) -> int:
    with transaction(db.session):
        return commissions.settle_due(now=now)


def refund(order, *, key: str, before: int, after: int) -> int:
    with transaction(db.session):
        row = db.session.get(Order, (order.merchant_id, order.id))
        return commissions.reverse_for_refund(row, refund_key=key,
                                              refunded_goods_before_fen=before,
                                              refunded_goods_after_fen=after)


def totals(member) -> tuple[int, int]:
    """(commission_fen, sales_fen) of the member over every period."""
    row = db.session.execute(select(func.coalesce(func.sum(PeriodTotal.commission_fen), 0),
                                    func.coalesce(func.sum(PeriodTotal.sales_fen), 0))
                             .where(PeriodTotal.merchant_id == member.merchant_id,
                                    PeriodTotal.member_id == member.id)).one()
    return int(row[0]), int(row[1])


@pytest.fixture
def shop(app_context):
    return make_merchant()


# --- the snapshot -----------------------------------------------------------------------------


def test_the_snapshot_holds_plan_version_beneficiaries_and_rates(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer)
    assert snapshot(order) == {
        "plan_version": 1, "tiers": 2, "max_total_bps": 3000, "self_purchase": False,
        "beneficiaries": [{"tier": 1, "member_id": parent.id, "rate_bps": 1000},
                          {"tier": 2, "member_id": grandparent.id, "rate_bps": 500}]}


def test_a_plan_change_applies_to_later_orders_only(shop):
    grandparent, parent, buyer = chain(shop)
    before = make_order(buyer, lines=[(10_000, 1)])
    merchants.update_program_rules(merchant_id=shop.id,
                                   changes={"tier_rates_bps": [2000, 800]})
    assert count(CommissionPlanVersion, CommissionPlanVersion.merchant_id == shop.id) == 2
    after = make_order(buyer, lines=[(10_000, 1)])
    assert (snapshot(before)["plan_version"], snapshot(after)["plan_version"]) == (1, 2)
    assert [b["rate_bps"] for b in snapshot(after)["beneficiaries"]] == [2000, 800]

    pay_order(before)
    assert (pending(parent), pending(grandparent)) == (1_000, 500)  # 10% and 5% of 10,000
    pay_order(after)
    assert (pending(parent), pending(grandparent)) == (1_000 + 2_000, 500 + 800)


def test_moving_the_buyer_does_not_change_an_existing_orders_commission(shop):
    grandparent, parent, buyer = chain(shop)
    newcomer = make_member(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    members.move(merchant_id=shop.id, member_id=buyer.id, upline_id=newcomer.id,
                 reason="wrong upline", staff_id=1)
    pay_order(order)
    assert (pending(parent), pending(grandparent), pending(newcomer)) == (1_000, 500, 0)
    # An order made after the move pays the new upline (a root: no tier 2).
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    assert (pending(parent), pending(grandparent), pending(newcomer)) == (1_000, 500, 1_000)


def test_freezing_a_beneficiary_does_not_change_an_existing_orders_commission(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    review(parent, "freeze")
    pay_order(order)
    assert (pending(parent), pending(grandparent)) == (1_000, 500)
    # A frozen distributor earns nothing on orders made while frozen; tier 2 is still paid.
    later = make_order(buyer, lines=[(10_000, 1)])
    assert [b["tier"] for b in snapshot(later)["beneficiaries"]] == [2]
    pay_order(later)
    assert (pending(parent), pending(grandparent)) == (1_000, 1_000)


# --- the split --------------------------------------------------------------------------------


def test_the_default_plan_pays_10_and_5_percent_floored_per_line_after_the_discount(shop):
    grandparent, parent, buyer = chain(shop)
    # goods 9,999 + 1,001 = 11,000; discount 1,234 split by largest remainder:
    # 1,234 × 9,999 / 11,000 = 1,121.706 → 1,122 ; 1,234 × 1,001 / 11,000 = 112.294 → 112.
    # bases 8,877 and 889; tier 1: 887 (887.7) and 88 (88.9); tier 2: 443 (443.85), 44 (44.45).
    order = make_order(buyer, lines=[(3_333, 3), (1_001, 1)], discount_fen=1_234,
                       shipping_fen=800)
    assert len(pay_order(order)) == 4
    assert parts(order) == [(1, 1, parent.id, 8_877, 887), (1, 2, grandparent.id, 8_877, 443),
                            (2, 1, parent.id, 889, 88), (2, 2, grandparent.id, 889, 44)]
    assert (pending(parent), pending(grandparent)) == (975, 487)
    assert count(Journal, Journal.kind == "accrual") == 1
    assert_sound(shop.id)


def test_an_inactive_tier_1_upline_leaves_tier_1_unpaid(shop):
    grandparent, parent, buyer = chain(shop, parent_status="pending")
    order = make_order(buyer, lines=[(10_000, 1)])
    assert snapshot(order)["beneficiaries"] == [
        {"tier": 2, "member_id": grandparent.id, "rate_bps": 500}]
    pay_order(order)
    # No compression: the grandparent keeps tier 2's 5%, nobody gets tier 1's 10%.
    assert (pending(parent), pending(grandparent)) == (0, 500)
    assert parts(order) == [(1, 2, grandparent.id, 10_000, 500)]


def test_self_purchase_pays_an_active_buyer_tier_1_and_its_upline_tier_2(shop):
    merchants.update_program_rules(merchant_id=shop.id, changes={"self_purchase": True})
    grandparent, parent, buyer = chain(shop, buyer_status="active")
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    assert (pending(buyer), pending(parent), pending(grandparent)) == (1_000, 500, 0)


def test_self_purchase_does_not_pay_a_buyer_who_is_not_a_distributor(shop):
    merchants.update_program_rules(merchant_id=shop.id, changes={"self_purchase": True})
    grandparent, parent, buyer = chain(shop, buyer_status="none")
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    assert (pending(buyer), pending(parent), pending(grandparent)) == (0, 1_000, 500)


def test_without_self_purchase_an_active_buyer_earns_nothing_on_its_own_order(shop):
    grandparent, parent, buyer = chain(shop, buyer_status="active")
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    assert (pending(buyer), pending(parent), pending(grandparent)) == (0, 1_000, 500)


def test_product_overrides_fixed_rates_and_opt_out(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(5_000, 2), (4_000, 1), (3_000, 1)], overrides={
        1: {"mode": "fixed", "values": [300, 100]},  # per unit: 600 and 200
        2: {"mode": "rates", "values": [2000, 0]},  # 20% of 4,000 = 800; tier 2 nothing
        3: {"mode": "opt_out"},
    })
    pay_order(order)
    assert parts(order) == [(1, 1, parent.id, 10_000, 600), (1, 2, grandparent.id, 10_000, 200),
                            (2, 1, parent.id, 4_000, 800)]
    assert (pending(parent), pending(grandparent)) == (1_400, 200)


def test_a_fixed_override_never_pays_more_than_max_total_bps_of_the_line(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(1_000, 1)],
                       overrides={1: {"mode": "fixed", "values": [400, 400]}})
    pay_order(order)
    # room: 30% of 1,000 = 300; tier 1 is paid first and takes it all.
    assert (pending(parent), pending(grandparent)) == (300, 0)


def test_an_expired_time_limited_binding_earns_nobody(shop):
    merchants.update_program_rules(merchant_id=shop.id,
                                   changes={"bind_mode": "time_limited", "bind_days": 30})
    grandparent, parent, buyer = chain(shop)
    set_bound_at(parent, 1)
    set_bound_at(buyer, 31)
    order = make_order(buyer, lines=[(10_000, 1)])
    assert snapshot(order)["beneficiaries"] == []
    assert pay_order(order) == []
    assert (pending(parent), pending(grandparent)) == (0, 0)
    assert count(Journal) == 0


def test_a_binding_still_in_force_earns_and_an_expired_upper_link_stops_the_chain(shop):
    merchants.update_program_rules(merchant_id=shop.id,
                                   changes={"bind_mode": "time_limited", "bind_days": 30})
    grandparent, parent, buyer = chain(shop)
    set_bound_at(buyer, 29)
    set_bound_at(parent, 31)
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    assert (pending(parent), pending(grandparent)) == (1_000, 0)
    set_bound_at(parent, 29)
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    assert (pending(parent), pending(grandparent)) == (2_000, 500)


def test_paying_an_order_twice_accrues_once(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    assert len(pay_order(order)) == 2
    assert pay_order(order) == []
    assert (pending(parent), pending(grandparent)) == (1_000, 500)
    assert count(Commission) == 2 and count(Journal) == 1
    assert totals(parent) == (1_000, 10_000)


# --- settlement -------------------------------------------------------------------------------


def test_commission_settles_only_after_settle_at_and_only_once(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    assert settle(utcnow() + timedelta(days=365)) == 0  # not received: no settle date yet
    received_at = utcnow()
    receive(order, received_at=received_at)
    assert settle(received_at + timedelta(days=7, seconds=-1)) == 0
    assert (pending(parent), balances(parent)["available"]) == (1_000, 0)
    assert settle(received_at + timedelta(days=7)) == 2
    assert balances(parent) == {"pending": 0, "available": 1_000, "withdrawing": 0,
                                "paid_out": 0}
    assert balances(grandparent)["available"] == 500
    journals = count(Journal)
    assert settle(received_at + timedelta(days=30)) == 0
    assert count(Journal) == journals and balances(parent)["available"] == 1_000
    assert count(Commission, Commission.status == "settled") == 2
    assert_sound(shop.id)


def test_a_frozen_distributors_pending_waits_until_unfrozen(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    receive(order, received_at=utcnow() - timedelta(days=8))
    review(parent, "freeze")
    assert settle(utcnow()) == 1
    assert (pending(parent), balances(parent)["available"]) == (1_000, 0)
    assert (pending(grandparent), balances(grandparent)["available"]) == (0, 500)
    assert settle(utcnow()) == 0
    review(parent, "unfreeze")
    assert settle(utcnow()) == 1
    assert (pending(parent), balances(parent)["available"]) == (0, 1_000)


def test_the_settle_commissions_job_settles_due_commission_and_is_safe_to_rerun(app, shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    receive(order, received_at=utcnow() - timedelta(days=8))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["jobs", "settle-commissions"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output.strip().splitlines()[-1]) == {"settled": 2}
    second = runner.invoke(args=["jobs", "settle-commissions"])
    assert json.loads(second.output.strip().splitlines()[-1]) == {"settled": 0}
    db.session.expire_all()
    assert balances(parent)["available"] == 1_000
    # The job mirrors what it settled.
    assert wallet_mirror.read_wallet(redis.client, shop.id, parent.id)["available"] == 1_000


# --- refunds ----------------------------------------------------------------------------------


def test_a_refund_of_pending_commission_is_reversed_from_pending(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    # A quarter refunded: 1,000 × 2,500 / 10,000 = 250 and 500 × 0.25 = 125.
    assert refund(order, key="r1", before=0, after=2_500) == 375
    assert (pending(parent), pending(grandparent)) == (750, 375)
    assert refund(order, key="r1", before=0, after=2_500) == 0  # the same refund again
    assert (pending(parent), pending(grandparent)) == (750, 375)
    assert refund(order, key="r2", before=2_500, after=10_000) == 1_125
    assert (pending(parent), pending(grandparent)) == (0, 0)
    assert count(Commission, Commission.status == "reversed") == 2
    assert_sound(shop.id)


def refund_points(goods_paid: int, cuts: list[int], full: bool) -> list[int]:
    points = sorted({1 + cut % goods_paid for cut in cuts} - {goods_paid})
    return [*points, goods_paid] if full else points


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=st.lists(st.tuples(st.integers(1, 30_000), st.integers(1, 3)), min_size=1,
                      max_size=3),
       discount_per_mille=st.integers(0, 400),
       cuts=st.lists(st.integers(0, 10**9), max_size=6),
       settle_at_step=st.integers(0, 7),
       full=st.booleans())
def test_partial_refunds_reverse_exactly_the_accrued_commission_and_never_more(
        app_context, lines, discount_per_mille, cuts, settle_at_step, full):
    shop = make_merchant()  # one per example: refund keys are unique per merchant
    grandparent, parent, buyer = chain(shop)
    goods = sum(price * quantity for price, quantity in lines)
    discount = goods * discount_per_mille // 1_000
    order = make_order(buyer, lines=lines, discount_fen=discount)
    pay_order(order)
    accrued = {m.id: pending(m) for m in (parent, grandparent)}
    total = sum(accrued.values())
    assert total == sum(amount for *_, amount in parts(order))
    reversed_total, before = 0, 0
    points = refund_points(goods - discount, cuts, full)
    for step, after in enumerate(points):
        if step == settle_at_step:
            receive(order, received_at=utcnow() - timedelta(days=8))
            settle(utcnow())
        reversed_total += refund(order, key=f"refund-{step}", before=before, after=after)
        before = after
        assert 0 <= reversed_total <= total
        rows = db.session.scalars(select(Commission).where(
            Commission.merchant_id == shop.id, Commission.order_id == order.id)).all()
        assert all(0 <= c.reversed_fen <= c.amount_fen for c in rows)
        for member in (parent, grandparent):
            now = balances(member)
            mine = [c for c in rows if c.member_id == member.id]
            assert now["pending"] + now["available"] == \
                accrued[member.id] - sum(c.reversed_fen for c in mine)
            assert now["pending"] >= 0
            assert now["pending"] == sum(c.outstanding_fen for c in mine
                                         if c.status == "pending")
            assert totals(member)[0] == accrued[member.id] - sum(c.reversed_fen for c in mine)
        assert_sound(shop.id)
    if full and points:
        assert reversed_total == total
        for member in (parent, grandparent):
            assert (pending(member), balances(member)["available"]) == (0, 0)
            assert totals(member)[0] == 0  # sales: see the tests below


def pay_out(member, amount_fen: int) -> None:
    """What a withdrawal and its successful transfer will post: available → withdrawing →
    paid_out (issue 7 implements them; the ledger rules are the same)."""
    with transaction(db.session):
        ledger.post(merchant_id=member.merchant_id, idempotency_key=f"w:{member.id}",
                    kind="withdrawal", keep_non_negative=[wallet(member.id, AVAILABLE)],
                    entries=[Entry(wallet(member.id, AVAILABLE), -amount_fen),
                             Entry(wallet(member.id, rules.WITHDRAWING), amount_fen)])
        ledger.post(merchant_id=member.merchant_id, idempotency_key=f"p:{member.id}",
                    kind="payout",
                    entries=[Entry(wallet(member.id, rules.WITHDRAWING), -amount_fen),
                             Entry(wallet(member.id, rules.PAID_OUT), amount_fen)])


def test_a_refund_after_settlement_and_payout_leaves_a_debt_never_capped(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    receive(order, received_at=utcnow() - timedelta(days=8))
    assert settle(utcnow()) == 2
    pay_out(parent, 600)
    assert balances(parent) == {"pending": 0, "available": 400, "withdrawing": 0,
                                "paid_out": 600}
    assert refund(order, key="whole", before=0, after=10_000) == 1_500
    assert balances(parent) == {"pending": 0, "available": -600, "withdrawing": 0,
                                "paid_out": 600}
    assert balances(grandparent)["available"] == 0
    rows = db.session.scalars(select(Commission).where(Commission.order_id == order.id)).all()
    assert [(c.reversed_fen, c.amount_fen, c.status) for c in rows] == [
        (1_000, 1_000, "settled"), (500, 500, "settled")]
    assert_sound(shop.id)


def test_a_debt_is_offset_by_later_commission(shop):
    grandparent, parent, buyer = chain(shop)
    first = make_order(buyer, lines=[(10_000, 1)])
    pay_order(first)
    receive(first, received_at=utcnow() - timedelta(days=8))
    settle(utcnow())
    pay_out(parent, 1_000)
    refund(first, key="whole", before=0, after=10_000)
    assert balances(parent)["available"] == -1_000
    second = make_order(buyer, lines=[(30_000, 1)])
    pay_order(second)
    receive(second, received_at=utcnow() - timedelta(days=8))
    settle(utcnow())
    assert balances(parent)["available"] == -1_000 + 3_000


# --- period totals and rankings ---------------------------------------------------------------


def test_period_totals_and_rankings_follow_accruals_and_reversals(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    period = db.session.scalars(select(Commission.period)).first()
    assert (totals(parent), totals(grandparent)) == ((1_000, 10_000), (500, 0))
    refund(order, key="quarter", before=0, after=2_500)
    assert (totals(parent), totals(grandparent)) == ((750, 7_500), (375, 0))
    wallets.sweep_outbox(redis.client)
    assert wallet_mirror.top(redis.client, shop.id, period, "commission", 10) == [
        (parent.id, 750), (grandparent.id, 375)]
    assert wallet_mirror.top(redis.client, shop.id, period, "sales", 10) == [
        (parent.id, 7_500), (grandparent.id, 0)]
    refund(order, key="rest", before=2_500, after=10_000)
    assert (totals(parent), totals(grandparent)) == ((0, 0), (0, 0))
    wallets.sweep_outbox(redis.client)
    assert dict(wallet_mirror.top(redis.client, shop.id, period, "commission", 10)) == {
        parent.id: 0, grandparent.id: 0}
    assert dict(wallet_mirror.top(redis.client, shop.id, period, "sales", 10)) == {
        parent.id: 0, grandparent.id: 0}


def test_a_refund_too_small_to_reverse_any_commission_still_reduces_sales(shop):
    """Sales follow the refunded goods, whether or not the refund was big enough to take back
    a whole fen of commission: after a full refund, the period's sales are zero."""
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    # 5 fen refunded: 1,000 × 5 / 10,000 = 0.5 → nothing reversed yet.
    assert refund(order, key="tiny", before=0, after=5) == 0
    assert refund(order, key="rest", before=5, after=10_000) == 1_500
    assert totals(parent) == (0, 0)


def test_sales_are_reduced_by_every_refund(shop):
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    refund(order, key="tiny", before=0, after=5)
    assert totals(parent) == (1_000, 9_995)


def test_repeating_a_refund_changes_nothing_not_even_sales(shop):
    """A refund is identified by its key: handling it again (a retried notification) moves no
    commission and no sales, whether or not it reversed any commission the first time."""
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay_order(order)
    refund(order, key="tiny", before=0, after=5)
    refund(order, key="quarter", before=5, after=2_500)
    once = (totals(parent), totals(grandparent), balances(parent), balances(grandparent))
    assert refund(order, key="tiny", before=0, after=5) == 0
    assert refund(order, key="quarter", before=5, after=2_500) == 0
    assert (totals(parent), totals(grandparent), balances(parent), balances(grandparent)) \
        == once
    assert totals(parent) == (750, 7_500)


def test_orders_of_two_merchants_never_mix(shop):
    other_shop = make_merchant()
    grandparent, parent, buyer = chain(shop)
    other_gp, other_parent, other_buyer = chain(other_shop)
    pay_order(make_order(buyer, lines=[(10_000, 1)]))
    pay_order(make_order(other_buyer, lines=[(20_000, 1)]))
    assert (pending(parent), pending(other_parent)) == (1_000, 2_000)
    assert count(LedgerAccount, LedgerAccount.merchant_id == shop.id) == 9
    assert_sound(shop.id)
    assert_sound(other_shop.id)
