"""The commission split (app/domain/commission.py): who earns, at which rate, how much."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.commission import (
    Beneficiary,
    ChainLink,
    CommissionPlan,
    OrderLine,
    ProductCommission,
    beneficiary_chain,
    line_bases,
    preview,
    split_commission,
    validate_override,
)
from app.domain.money import apply_rate

PLAN = CommissionPlan(version=1, tiers=2, tier_rates_bps=(1000, 500), max_total_bps=3000)
TWO = (Beneficiary(tier=1, member_id=11, rate_bps=1000),
       Beneficiary(tier=2, member_id=22, rate_bps=500))


def amounts_by(parts, key):
    totals = {}
    for part in parts:
        totals[getattr(part, key)] = totals.get(getattr(part, key), 0) + part.amount_fen
    return totals


def test_the_default_plan_pays_ten_and_five_percent_rounded_down_per_line():
    lines = [OrderLine(line_no=1, unit_price_fen=6999, quantity=1),
             OrderLine(line_no=2, unit_price_fen=1005, quantity=3)]
    parts = split_commission(PLAN, lines=lines, discount_fen=0, beneficiaries=TWO)
    assert [(p.line_no, p.tier, p.amount_fen) for p in parts] == [
        (1, 1, 699), (1, 2, 349), (2, 1, 301), (2, 2, 150)]


def test_the_discount_reduces_the_base_line_by_line_and_shipping_is_never_a_base():
    lines = [OrderLine(line_no=1, unit_price_fen=1000, quantity=1),
             OrderLine(line_no=2, unit_price_fen=2000, quantity=1)]
    assert line_bases(lines, discount_fen=300) == [900, 1800]
    parts = split_commission(PLAN, lines=lines, discount_fen=300, beneficiaries=TWO)
    assert amounts_by(parts, "tier") == {1: 90 + 180, 2: 45 + 90}


def test_a_product_can_opt_out_or_pay_fixed_amounts_or_its_own_rates():
    lines = [OrderLine(line_no=1, unit_price_fen=10_000, quantity=2,
                       override=ProductCommission("fixed", (300, 100))),
             OrderLine(line_no=2, unit_price_fen=10_000, quantity=1,
                       override=ProductCommission("rates", (2000, 0))),
             OrderLine(line_no=3, unit_price_fen=10_000, quantity=1,
                       override=ProductCommission("opt_out")),
             OrderLine(line_no=4, unit_price_fen=10_000, quantity=1, distributable=False)]
    parts = split_commission(PLAN, lines=lines, discount_fen=0, beneficiaries=TWO)
    assert [(p.line_no, p.tier, p.amount_fen, p.rate_bps, p.fixed_fen_per_unit)
            for p in parts] == [(1, 1, 600, 0, 300), (1, 2, 200, 0, 100),
                                (2, 1, 2000, 2000, 0)]


def test_fixed_amounts_are_capped_and_tier_one_is_paid_first():
    line = OrderLine(line_no=1, unit_price_fen=1000, quantity=1,
                     override=ProductCommission("fixed", (250, 200)))
    parts = split_commission(PLAN, lines=[line], discount_fen=0, beneficiaries=TWO)
    assert [(p.tier, p.amount_fen) for p in parts] == [(1, 250), (2, 50)]  # cap: 30% of 1000


def test_level_rates_override_the_tier_rate_and_the_cap_still_holds():
    plan = CommissionPlan(version=2, tiers=2, tier_rates_bps=(1000, 500), max_total_bps=3000,
                          level_rates_bps=((7, (2500, 1000)),))
    chain = beneficiary_chain(plan, buyer=None, uplines=[ChainLink(1, True, level_id=7),
                                                         ChainLink(2, True, level_id=7)])
    assert [(b.tier, b.rate_bps) for b in chain] == [(1, 2500), (2, 1000)]
    parts = split_commission(plan, lines=[OrderLine(1, 10_000, 1)], discount_fen=0,
                             beneficiaries=chain)
    assert [(p.tier, p.amount_fen) for p in parts] == [(1, 2500), (2, 500)]


def test_an_inactive_upline_leaves_its_tier_unpaid_without_compression():
    chain = beneficiary_chain(PLAN, buyer=None, uplines=[ChainLink(1, False), ChainLink(2, True),
                                                         ChainLink(3, True)])
    assert [(b.tier, b.member_id) for b in chain] == [(2, 2)]


def test_self_purchase_pays_the_buying_distributor_tier_one():
    plan = CommissionPlan(version=1, tiers=2, tier_rates_bps=(1000, 500), max_total_bps=3000,
                          self_purchase=True)
    chain = beneficiary_chain(plan, buyer=ChainLink(9, True), uplines=[ChainLink(1, True)])
    assert [(b.tier, b.member_id) for b in chain] == [(1, 9), (2, 1)]
    without = beneficiary_chain(PLAN, buyer=ChainLink(9, True), uplines=[ChainLink(1, True)])
    assert [(b.tier, b.member_id) for b in without] == [(1, 1)]


def test_no_binding_in_force_means_nobody_earns():
    assert beneficiary_chain(PLAN, buyer=ChainLink(9, True), uplines=[]) == ()


@pytest.mark.parametrize("override,problem", [
    (ProductCommission("gift"), "mode"),
    (ProductCommission("opt_out", (1,)), "no values"),
    (ProductCommission("rates", (1000,)), "2 whole numbers"),
    (ProductCommission("rates", (2000, 1500)), "max_total_bps"),
    (ProductCommission("fixed", (-1, 0)), "zero or more"),
])
def test_bad_overrides_are_refused(override, problem):
    assert any(problem in p for p in validate_override(override, tiers=2, max_total_bps=3000))


def test_the_preview_shows_each_tier_on_a_sample_order():
    draft = CommissionPlan(version=0, tiers=2, tier_rates_bps=(1200, 600), max_total_bps=3000)
    assert preview(draft, lines=[OrderLine(1, 9900, 1)]) == {1: 1188, 2: 594}


lines_strategy = st.lists(st.builds(
    OrderLine, line_no=st.integers(1, 50), unit_price_fen=st.integers(0, 10**7),
    quantity=st.integers(1, 20),
    override=st.none() | st.builds(ProductCommission, mode=st.just("fixed"),
                                   values=st.tuples(st.integers(0, 10**6),
                                                    st.integers(0, 10**6))),
), min_size=1, max_size=6)
rates = st.tuples(st.integers(0, 10_000), st.integers(0, 10_000))


@given(lines=lines_strategy, rates=rates, max_total=st.integers(0, 10_000), data=st.data())
def test_commission_never_exceeds_the_paid_amount_or_the_plans_cap(lines, rates, max_total,
                                                                    data):
    lines = [replace(line, line_no=number) for number, line in enumerate(lines, start=1)]
    plan = CommissionPlan(version=1, tiers=2, tier_rates_bps=rates, max_total_bps=max_total)
    goods = sum(line.goods_fen for line in lines)
    discount = data.draw(st.integers(0, goods))
    beneficiaries = (Beneficiary(1, 1, rates[0]), Beneficiary(2, 2, rates[1]))
    parts = split_commission(plan, lines=lines, discount_fen=discount,
                             beneficiaries=beneficiaries)
    bases = line_bases(lines, discount_fen=discount)
    assert sum(p.amount_fen for p in parts) <= goods - discount
    for line, base in zip(lines, bases, strict=True):
        line_total = sum(p.amount_fen for p in parts if p.line_no == line.line_no)
        assert line_total <= apply_rate(base_fen=base, rate_bps=max_total)
    assert all(p.amount_fen > 0 for p in parts)


@given(price=st.integers(0, 10**8), bump=st.integers(0, 10**6), quantity=st.integers(1, 10),
       rates=rates)
def test_commission_is_monotone_in_price(price, bump, quantity, rates):
    plan = CommissionPlan(version=1, tiers=2, tier_rates_bps=rates, max_total_bps=10_000)
    beneficiaries = (Beneficiary(1, 1, rates[0]), Beneficiary(2, 2, rates[1]))

    def total(unit_price):
        return sum(p.amount_fen for p in split_commission(
            plan, lines=[OrderLine(1, unit_price, quantity)], discount_fen=0,
            beneficiaries=beneficiaries))

    def tier_one(unit_price):
        return sum(p.amount_fen for p in split_commission(
            plan, lines=[OrderLine(1, unit_price, quantity)], discount_fen=0,
            beneficiaries=beneficiaries) if p.tier == 1)

    assert total(price) <= total(price + bump)
    assert tier_one(price) <= tier_one(price + bump)
