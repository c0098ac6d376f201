"""Level rules (app/domain/levels.py): conditions, upgrades, keeps and the assessment period."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.levels import (
    METRICS,
    Condition,
    LevelTerms,
    Rule,
    holds,
    keep_target,
    measures,
    review_cutoff,
    rule_from_dict,
    unmet,
    upgrade_target,
    validate_rule,
    validate_tier_rates,
    window_start,
)

SALES_30 = ("personal_sales_fen", 30)
TEAM = ("team_size", 0)


def rule(combine: str, *conditions: tuple[str, int, int]) -> Rule:
    return Rule(combine, tuple(Condition(m, t, w) for m, t, w in conditions))


def level(level_id: int, weight: int, *, upgrade: Rule = Rule(), keep: Rule = Rule()):
    return LevelTerms(id=level_id, weight=weight, upgrade=upgrade, keep=keep,
                      name=f"L{weight}")


BOTH = rule("all", ("personal_sales_fen", 5_000, 30), ("team_size", 10, 0))
EITHER = rule("any", ("personal_sales_fen", 5_000, 30), ("team_size", 10, 0))


# -- conditions ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("figures", "all_met", "any_met"), [
    ({SALES_30: 5_000, TEAM: 10}, True, True),       # the threshold itself is enough
    ({SALES_30: 4_999, TEAM: 10}, False, True),
    ({SALES_30: 5_000, TEAM: 9}, False, True),
    ({SALES_30: 4_999, TEAM: 9}, False, False),
    ({}, False, False),                                # a missing figure counts as 0
])
def test_all_needs_every_condition_and_any_needs_one(figures, all_met, any_met):
    assert holds(BOTH, figures) is all_met
    assert holds(EITHER, figures) is any_met


def test_a_figure_over_another_window_does_not_meet_a_condition():
    assert not holds(BOTH, {("personal_sales_fen", 0): 9_999, ("personal_sales_fen", 7): 9_999,
                            TEAM: 10})


def test_unmet_names_each_missed_condition_with_figure_and_threshold():
    assert unmet(BOTH, {SALES_30: 1_200, TEAM: 10}) == [
        "personal_sales_fen over 30 days 1200 < 5000"]


def test_measures_lists_every_metric_and_window_needed():
    assert measures([BOTH, rule("any", ("direct_members", 3, 7))]) == {
        SALES_30, TEAM, ("direct_members", 7)}


# -- upgrades -----------------------------------------------------------------------------------

SILVER = level(1, 10, upgrade=rule("all", ("direct_members", 3, 0)))
GOLD = level(2, 20, upgrade=rule("all", ("direct_members", 10, 0)))
DIAMOND = level(3, 30, upgrade=rule("any", ("team_sales_fen", 1_000_000, 0)))
LEVELS = [GOLD, DIAMOND, SILVER]


def test_a_member_jumps_to_the_highest_level_whose_upgrade_conditions_hold():
    figures = {("direct_members", 0): 12}
    assert upgrade_target(LEVELS, current_weight=0, figures=figures) == GOLD


def test_a_higher_level_is_reached_without_the_levels_between():
    figures = {("team_sales_fen", 0): 1_000_000}
    assert upgrade_target(LEVELS, current_weight=0, figures=figures) == DIAMOND


def test_an_upgrade_never_moves_a_member_down_or_sideways():
    figures = {("direct_members", 0): 12}
    assert upgrade_target(LEVELS, current_weight=30, figures=figures) is None
    assert upgrade_target(LEVELS, current_weight=20, figures=figures) is None


def test_nobody_upgrades_when_no_condition_holds():
    assert upgrade_target(LEVELS, current_weight=0, figures={("direct_members", 0): 2}) is None


def test_a_level_without_upgrade_conditions_is_reached_only_by_hand():
    manual = level(9, 90)
    assert upgrade_target([manual], current_weight=0, figures={}) is None


# -- keeping at assessment ----------------------------------------------------------------------

KEEP_SILVER = level(1, 10, keep=rule("all", ("personal_sales_fen", 1_000, 30)))
KEEP_GOLD = level(2, 20, keep=rule("all", ("personal_sales_fen", 5_000, 30)))
KEEP_DIAMOND = level(3, 30, keep=rule("all", ("personal_sales_fen", 20_000, 30)))
KEEPS = [KEEP_DIAMOND, KEEP_SILVER, KEEP_GOLD]


def test_a_member_whose_keep_conditions_hold_keeps_the_level():
    assert keep_target(KEEPS, current=KEEP_GOLD, figures={SALES_30: 5_000}) == KEEP_GOLD


def test_a_member_drops_to_the_highest_lower_level_whose_keep_conditions_hold():
    assert keep_target(KEEPS, current=KEEP_DIAMOND, figures={SALES_30: 4_000}) == KEEP_SILVER


def test_a_member_who_keeps_no_level_drops_to_the_base_level():
    assert keep_target(KEEPS, current=KEEP_DIAMOND, figures={SALES_30: 999}) is None


def test_assessment_never_moves_a_member_up():
    assert keep_target(KEEPS, current=KEEP_SILVER, figures={SALES_30: 50_000}) == KEEP_SILVER


def test_a_level_without_keep_conditions_is_always_kept():
    assert keep_target([level(1, 10)], current=level(1, 10), figures={}) == level(1, 10)


# -- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "field"), [
    ({"combine": "most", "conditions": []}, "combine"),
    ({"conditions": [{"metric": "likes", "threshold": 1}]}, "conditions.0.metric"),
    ({"conditions": [{"metric": "team_size", "threshold": 1, "window_days": 30}]},
     "conditions.0.window_days"),
    ({"conditions": [{"metric": "team_sales_fen", "threshold": 1, "window_days": 7}]},
     "conditions.0.window_days"),
    ({"conditions": [{"metric": "direct_members", "threshold": -1}]}, "conditions.0.threshold"),
    ({"conditions": [{"metric": "direct_members", "threshold": True}]},
     "conditions.0.threshold"),
    ({"conditions": [{"metric": "direct_members", "threshold": 1.5}]},
     "conditions.0.threshold"),
    ({"conditions": [{"metric": "direct_members", "threshold": 1, "window_days": 367}]},
     "conditions.0.window_days"),
    ({"conditions": [{"metric": "direct_members", "threshold": 1}] * 11}, "conditions"),
    ({"conditions": [{"metric": "direct_members", "threshold": 1, "extra": 1}]},
     "conditions.0"),
])
def test_invalid_rules_are_refused_naming_the_field(data, field):
    assert field in validate_rule(data)


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_is_accepted_all_time(metric):
    assert validate_rule({"combine": "any", "conditions": [
        {"metric": metric, "threshold": 1, "window_days": 0}]}) == {}


def test_a_stored_rule_reads_back_with_its_defaults():
    assert rule_from_dict({"conditions": [{"metric": "direct_members", "threshold": 3}]}) == \
        rule("all", ("direct_members", 3, 0))
    assert rule_from_dict(None) == Rule()


@pytest.mark.parametrize(("rates", "expected"), [
    ([1500, 800], []),
    ([2000, 1000], []),                       # exactly max_total_bps
    ([2000, 1001], ["The rates add up to more than max_total_bps (3000)."]),
    ([1500], ["Give exactly 2 rates, one per tier."]),
    ([1500, -1], ["Rates are whole basis points, zero or more."]),
    ([1500, 2.5], ["Rates are whole basis points, zero or more."]),
    (None, ["Give exactly 2 rates, one per tier."]),
])
def test_level_rates_follow_the_programs_tier_rules(rates, expected):
    assert validate_tier_rates(rates, tiers=2, max_total_bps=3000) == expected


# -- windows and periods ------------------------------------------------------------------------

def test_a_window_ends_today_and_counts_today():
    today = date(2026, 3, 10)
    assert window_start(today, window_days=1) == today
    assert window_start(today, window_days=30) == date(2026, 2, 9)


@pytest.mark.parametrize(("today", "months", "cutoff"), [
    (date(2026, 2, 15), 1, date(2026, 1, 15)),
    (date(2026, 2, 28), 1, date(2026, 1, 28)),   # a level set on 29-31 January is not due yet
    (date(2026, 3, 1), 1, date(2026, 2, 1)),     # ... and is due on 1 March
    (date(2026, 3, 31), 1, date(2026, 2, 28)),
    (date(2028, 3, 31), 1, date(2028, 2, 29)),   # leap year
    (date(2026, 1, 10), 1, date(2025, 12, 10)),  # across the year
    (date(2026, 5, 31), 3, date(2026, 2, 28)),
])
def test_review_cutoff_is_the_same_day_one_period_back(today, months, cutoff):
    assert review_cutoff(today, months=months) == cutoff


def next_review_day(set_on: date) -> date:
    """Oracle: the same day next month, or the 1st of the month after when it does not exist."""
    year, month = (set_on.year + 1, 1) if set_on.month == 12 else (set_on.year,
                                                                    set_on.month + 1)
    try:
        return date(year, month, set_on.day)
    except ValueError:
        return date(year + (month == 12), month % 12 + 1, 1)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 1)),
       st.integers(min_value=0, max_value=70))
def test_a_level_is_due_exactly_from_its_review_day_on(set_on, days_later):
    today = set_on + timedelta(days=days_later)
    assert (set_on <= review_cutoff(today, months=1)) is (today >= next_review_day(set_on))
