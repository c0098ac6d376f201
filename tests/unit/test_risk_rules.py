"""Risk rules (DOMAIN.md, Risk signals): thresholds, identities, refund rates, releases, and the
program settings that configure them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.program_rules import ProgramRules, RulesError, rules_from_dict
from app.domain.risk import (
    Identity,
    burst,
    evidence_since,
    refund_rate_bps,
    refund_rate_exceeded,
    release_reason_errors,
    shared_identity,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("a", "b", "matched"), [
    (Identity("u1", None), Identity("u1", None), "unionid"),
    (Identity(None, "p1"), Identity("u2", "p1"), "phone"),
    (Identity("u1", "p1"), Identity("u1", "p1"), "unionid"),
    (Identity("u1", "p1"), Identity("u2", "p2"), None),
    (Identity(None, None), Identity(None, None), None),
    (Identity("", ""), Identity("", ""), None),
])
def test_two_accounts_are_one_person_only_by_a_shared_non_empty_unionid_or_phone(a, b, matched):
    assert shared_identity(a, b) == matched
    assert shared_identity(b, a) == matched


@pytest.mark.parametrize(("count", "threshold", "flags"), [
    (49, 50, False), (50, 50, False), (51, 50, True), (0, 0, False), (1, 0, True),
])
def test_a_burst_is_more_than_the_threshold_never_equal_to_it(count, threshold, flags):
    assert burst(count=count, threshold=threshold) is flags


@pytest.mark.parametrize(("referred", "refunded", "flags"), [
    (10, 2, False),   # 20%
    (8, 2, False),    # exactly 25% does not exceed 25%
    (10, 3, True),    # 30%
    (9, 9, False),    # 100%, but below the minimum of 10 orders
    (1, 1, False),    # one refund of one order
    (0, 0, False),
    (4000, 1001, True),  # 25.025%: exceeds although it floors to 2502 bps
])
def test_the_refund_rate_flags_above_25_percent_over_at_least_10_orders(referred, refunded,
                                                                        flags):
    assert refund_rate_exceeded(referred_orders=referred, refunded_orders=refunded,
                                threshold_bps=2500, min_orders=10) is flags


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000),
       st.integers(0, 50))
def test_the_refund_rate_decision_is_the_exact_fraction(referred, refunded, threshold, minimum):
    refunded = min(refunded, referred)
    exact = referred >= max(minimum, 1) and Fraction(refunded, referred) > Fraction(threshold,
                                                                                    10_000)
    assert refund_rate_exceeded(referred_orders=referred, refunded_orders=refunded,
                                threshold_bps=threshold, min_orders=minimum) is exact


def test_the_shown_refund_rate_is_floored_basis_points():
    assert refund_rate_bps(referred_orders=3, refunded_orders=1) == 3333
    assert refund_rate_bps(referred_orders=0, refunded_orders=0) == 0


def test_a_release_inside_the_window_moves_the_start_of_the_evidence():
    window_start = T0 - timedelta(hours=1)
    assert evidence_since(window_start=window_start, last_release=None) == window_start
    released = T0 - timedelta(minutes=5)
    assert evidence_since(window_start=window_start, last_release=released) == released
    older = T0 - timedelta(days=2)
    assert evidence_since(window_start=window_start, last_release=older) == window_start


@pytest.mark.parametrize(("reason", "valid"), [
    ("", False), ("   ", False), ("same person confirmed as a couple", True),
    ("x" * 500, True), ("x" * 501, False),
])
def test_a_release_needs_a_reason_of_at_most_500_characters(reason, valid):
    assert (release_reason_errors(reason) == []) is valid


def test_the_default_thresholds_are_those_of_the_domain():
    rules = ProgramRules()
    assert rules.risk_binding_burst_per_hour == 50
    assert rules.risk_refund_rate_bps == 2500
    assert rules.risk_refund_min_orders == 10
    assert (rules.risk_ip_burst_members, rules.risk_ip_burst_minutes) == (20, 10)


@pytest.mark.parametrize(("name", "value"), [
    ("risk_binding_burst_per_hour", 0), ("risk_binding_burst_per_hour", 1.5),
    ("risk_refund_rate_bps", -1), ("risk_refund_rate_bps", 10_001),
    ("risk_refund_rate_bps", True), ("risk_refund_min_orders", 0),
    ("risk_ip_burst_members", "20"), ("risk_ip_burst_minutes", 0),
    ("risk_ip_burst_minutes", 1441),
])
def test_an_invalid_threshold_is_refused_by_name(name, value):
    with pytest.raises(RulesError) as caught:
        rules_from_dict(None, {name: value})
    assert set(caught.value.errors) == {name}


def test_valid_thresholds_round_trip():
    changes = {"risk_binding_burst_per_hour": 1, "risk_refund_rate_bps": 0,
               "risk_refund_min_orders": 1, "risk_ip_burst_members": 5,
               "risk_ip_burst_minutes": 1440}
    rules = rules_from_dict(None, changes)
    assert {name: getattr(rules, name) for name in changes} == changes
    assert rules_from_dict(rules.to_dict()) == rules
