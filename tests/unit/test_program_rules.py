"""Program rules (app/domain/program_rules.py): DOMAIN.md's defaults and the validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.program_rules import RULE_NAMES, ProgramRules, RulesError, rules_from_dict

# DOMAIN.md, "Defaults at a glance" (and the share-link section for the register window).
DOMAIN_DEFAULTS = {
    "join_mode": "apply",
    "bind_mode": "permanent",
    "bind_trigger": "visit",
    "bind_days": 30,
    "protection_days": 0,
    "register_window_minutes": 30,
    "tiers": 2,
    "tier_rates_bps": (1000, 500),
    "max_total_bps": 3000,
    "third_tier_acknowledged": False,
    "self_purchase": False,
    "auto_receive_days": 10,
    "freeze_days": 7,
    "withdraw_min_fen": 100,
    "withdraw_max_fen": 2_000_000,
    "withdraw_daily_count": 3,
    "withdraw_fee_bps": 0,
    "withdraw_auto_approve_below_fen": 0,
}


def refusal(changes: dict, stored: dict | None = None) -> dict[str, list[str]]:
    with pytest.raises(RulesError) as caught:
        rules_from_dict(stored, changes)
    return caught.value.errors


@pytest.mark.parametrize(("name", "expected"), DOMAIN_DEFAULTS.items())
def test_defaults_equal_the_domain_table(name, expected):
    assert getattr(ProgramRules(), name) == expected


def test_no_stored_rules_mean_the_defaults_and_are_valid():
    assert rules_from_dict(None) == ProgramRules()
    assert rules_from_dict({}, {}) == ProgramRules()
    assert ProgramRules().warnings == []


def test_three_tiers_without_acknowledgment_are_refused():
    errors = refusal({"tiers": 3, "tier_rates_bps": [1000, 500, 200]})
    assert set(errors) == {"tiers"}


def test_three_tiers_with_acknowledgment_are_allowed_with_a_warning():
    rules = rules_from_dict(None, {"tiers": 3, "tier_rates_bps": [1000, 500, 200],
                                   "third_tier_acknowledged": True})
    assert rules.tiers == 3
    assert any(w.startswith("third_tier") for w in rules.warnings)


@pytest.mark.parametrize("tiers", [4, 5, 0, -1])
def test_tiers_outside_one_to_three_are_refused_even_acknowledged(tiers):
    rates = [100] * max(tiers, 0)
    errors = refusal({"tiers": tiers, "tier_rates_bps": rates,
                      "third_tier_acknowledged": True})
    assert set(errors) == {"tiers"}


def test_one_tier_is_allowed():
    assert rules_from_dict(None, {"tiers": 1, "tier_rates_bps": [2000]}).tiers == 1


def test_rates_over_max_total_bps_are_refused():
    errors = refusal({"tier_rates_bps": [2000, 1001]})
    assert set(errors) == {"tier_rates_bps"}


def test_rates_exactly_at_max_total_bps_are_allowed():
    assert rules_from_dict(None, {"tier_rates_bps": [2000, 1000]}).tier_rates_bps == (2000, 1000)


def test_rates_over_a_lowered_max_total_bps_are_refused():
    errors = refusal({"max_total_bps": 1499})
    assert set(errors) == {"tier_rates_bps"}


@pytest.mark.parametrize("ceiling", [10_001, 20_000])
def test_max_total_bps_above_10000_is_refused(ceiling):
    errors = refusal({"max_total_bps": ceiling})
    assert set(errors) == {"max_total_bps"}


def test_max_total_bps_of_10000_is_allowed():
    rules = rules_from_dict(None, {"max_total_bps": 10_000, "tier_rates_bps": [6000, 4000]})
    assert rules.max_total_bps == 10_000


def test_negative_max_total_bps_is_refused():
    assert "max_total_bps" in refusal({"max_total_bps": -1, "tier_rates_bps": [0, 0]})


@pytest.mark.parametrize(("tiers", "rates"), [
    (2, [1000]), (2, [1000, 500, 100]), (1, [1000, 500]), (2, []),
])
def test_wrong_rate_count_is_refused(tiers, rates):
    assert set(refusal({"tiers": tiers, "tier_rates_bps": rates})) == {"tier_rates_bps"}


def test_negative_rates_are_refused():
    assert set(refusal({"tier_rates_bps": [1000, -1]})) == {"tier_rates_bps"}


def test_unknown_fields_are_refused_by_name():
    errors = refusal({"levels": 5, "bind_mode": "last_touch"})
    assert set(errors) == {"levels"}


def test_an_unknown_stored_field_is_refused_by_name():
    assert set(refusal({}, stored={"legacy_flag": True})) == {"legacy_flag"}


@pytest.mark.parametrize("name", ["join_mode", "bind_mode", "bind_trigger"])
def test_bad_enum_values_are_refused_by_name(name):
    assert set(refusal({name: "sometimes"})) == {name}


@pytest.mark.parametrize("name", ["bind_days", "protection_days", "register_window_minutes",
                                  "auto_receive_days", "freeze_days", "withdraw_min_fen",
                                  "withdraw_daily_count", "withdraw_auto_approve_below_fen",
                                  "join_spend_threshold_fen"])
def test_negative_counts_are_refused_by_name(name):
    assert name in refusal({name: -1})


def test_time_limited_bindings_last_at_least_a_day():
    assert set(refusal({"bind_mode": "time_limited", "bind_days": 0})) == {"bind_days"}


def test_spend_threshold_join_needs_a_threshold():
    assert set(refusal({"join_mode": "spend_threshold"})) == {"join_spend_threshold_fen"}
    rules = rules_from_dict(None, {"join_mode": "spend_threshold",
                                   "join_spend_threshold_fen": 10_000})
    assert any(w.startswith("spend_to_join") for w in rules.warnings)


def test_withdraw_max_below_min_is_refused():
    assert set(refusal({"withdraw_min_fen": 500, "withdraw_max_fen": 499})) == \
        {"withdraw_max_fen"}


def test_withdraw_fee_above_10000_bps_is_refused():
    assert set(refusal({"withdraw_fee_bps": 10_001})) == {"withdraw_fee_bps"}


def test_several_errors_are_reported_together():
    errors = refusal({"bind_mode": "never", "tiers": 4, "max_total_bps": 10_001})
    assert set(errors) == {"bind_mode", "tiers", "max_total_bps"}
    assert all(errors[name] and all(isinstance(m, str) and m for m in errors[name])
               for name in errors)


@pytest.mark.parametrize(("name", "value"), [
    ("max_total_bps", "3000"), ("max_total_bps", None), ("bind_days", "30"),
    ("withdraw_min_fen", 1.5), ("withdraw_fee_bps", "0"), ("tiers", "2"),
    ("join_spend_threshold_fen", "100"), ("tier_rates_bps", 1500),
    ("tier_rates_bps", ["1000", "500"]), ("tiers", 2.5),
])
def test_wrong_types_are_refused_by_name_not_crashing(name, value):
    changes = {name: value}
    if name == "join_spend_threshold_fen":
        changes["join_mode"] = "spend_threshold"
    if name == "bind_days":
        changes["bind_mode"] = "time_limited"
    assert name in refusal(changes)


@pytest.mark.parametrize("acknowledged", ["false", "no", 1, [True]])
def test_only_a_true_boolean_acknowledges_the_third_tier(acknowledged):
    errors = refusal({"tiers": 3, "tier_rates_bps": [1000, 500, 200],
                      "third_tier_acknowledged": acknowledged})
    assert "third_tier_acknowledged" in errors
    assert "tiers" in errors


@pytest.mark.parametrize("tiers", [True, 2.0])
def test_tiers_must_be_a_whole_number_not_a_bool_or_float(tiers):
    assert "tiers" in refusal({"tiers": tiers, "tier_rates_bps": [1000, 500][:int(tiers)]})


def test_self_purchase_must_be_a_boolean():
    assert set(refusal({"self_purchase": "off"})) == {"self_purchase"}


def test_a_valid_change_round_trips_through_to_dict():
    changes = {"bind_mode": "last_touch", "protection_days": 2, "bind_trigger": "first_order",
               "tiers": 1, "tier_rates_bps": [1500], "max_total_bps": 2000,
               "self_purchase": True, "withdraw_fee_bps": 60}
    rules = rules_from_dict({"freeze_days": 14}, changes)
    data = rules.to_dict()
    assert set(data) == set(RULE_NAMES)
    assert data["tier_rates_bps"] == [1500]
    assert data["freeze_days"] == 14
    assert {name: data[name] for name in changes} == changes
    assert rules_from_dict(data) == rules
    assert rules_from_dict(None, data) == rules


def test_changes_override_stored_rules():
    rules = rules_from_dict({"bind_mode": "time_limited", "bind_days": 10},
                            {"bind_days": 20})
    assert (rules.bind_mode, rules.bind_days) == ("time_limited", 20)


valid_changes = st.fixed_dictionaries({}, optional={
    "join_mode": st.sampled_from(["apply", "everyone"]),
    "bind_mode": st.sampled_from(["permanent", "time_limited", "last_touch"]),
    "bind_trigger": st.sampled_from(["visit", "register", "first_order"]),
    "bind_days": st.integers(1, 365),
    "protection_days": st.integers(0, 30),
    "register_window_minutes": st.integers(0, 1440),
    "tier_rates_bps": st.tuples(st.integers(0, 1500), st.integers(0, 1500)).map(list),
    "self_purchase": st.booleans(),
    "freeze_days": st.integers(0, 60),
})


@given(valid_changes)
def test_valid_changes_round_trip(changes):
    rules = rules_from_dict(None, changes)
    assert rules_from_dict(rules.to_dict()) == rules
    for name, value in changes.items():
        expected = tuple(value) if name == "tier_rates_bps" else value
        assert getattr(rules, name) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-20_000, 20_000) | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4), max_leaves=6)


@given(st.dictionaries(st.sampled_from(RULE_NAMES + ("nonsense",)), json_values, max_size=4))
def test_any_json_change_is_valid_rules_or_named_field_errors(changes):
    try:
        rules = rules_from_dict(None, changes)
    except RulesError as error:
        assert error.errors
        assert set(error.errors) <= set(RULE_NAMES) | set(changes)
    else:
        for name in ("tiers", "max_total_bps", "bind_days", "protection_days",
                     "register_window_minutes", "withdraw_min_fen", "withdraw_max_fen"):
            value = getattr(rules, name)
            assert isinstance(value, int) and not isinstance(value, bool), name
        assert all(isinstance(r, int) and not isinstance(r, bool)
                   for r in rules.tier_rates_bps)
        assert len(rules.tier_rates_bps) == rules.tiers
        assert sum(rules.tier_rates_bps) <= rules.max_total_bps <= 10_000
