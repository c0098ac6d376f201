"""Levels: when a member's figures meet a level's conditions (DOMAIN.md, Levels and assessment).

Pure functions over plain values. A level has a weight (higher is better), tier rates, and two
rules — upgrade and keep — each ``{"combine": "any" | "all", "conditions": [{"metric",
"threshold", "window_days"}]}``. A condition holds when the member's figure for its metric,
over its window, is at least its threshold.

- Figures are keyed by ``(metric, window_days)``. A window of N days is the N business days
  ending today (today included); 0 is all time. ``team_size`` and ``team_sales_fen`` exist
  only all time (the team counters have no daily history), so their window must be 0.
- A rule without conditions: an upgrade rule is never met (the level is reached only by hand —
  otherwise an empty ``all`` would lift everyone at once); a keep rule is always met.
- Upgrades go to the highest level above the member's own whose upgrade rule holds, never
  down. Assessment keeps the member's level when its keep rule holds, else drops to the
  highest lower level whose keep rule holds, else to the base level (no level of its own).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

METRICS = ("direct_members", "team_size", "personal_sales_fen", "direct_sales_fen",
           "team_sales_fen", "commission_earned_fen")
ALL_TIME_ONLY = ("team_size", "team_sales_fen")
COMBINES = ("any", "all")
MAX_CONDITIONS = 10
MAX_WINDOW_DAYS = 366
MAX_THRESHOLD = 10**15  # fen: far beyond any real figure, well inside BIGINT
MAX_WEIGHT = 1000
# The base level (level_id None) is weight 0: every defined level ranks above it.
BASE_WEIGHT = 0

Measure = tuple[str, int]  # (metric, window_days)
Figures = Mapping[Measure, int]


@dataclass(frozen=True)
class Condition:
    metric: str
    threshold: int
    window_days: int = 0

    @property
    def measure(self) -> Measure:
        return self.metric, self.window_days


@dataclass(frozen=True)
class Rule:
    combine: str = "all"
    conditions: tuple[Condition, ...] = ()

    def to_dict(self) -> dict:
        return {"combine": self.combine,
                "conditions": [{"metric": c.metric, "threshold": c.threshold,
                                "window_days": c.window_days} for c in self.conditions]}


@dataclass(frozen=True)
class LevelTerms:
    id: int
    weight: int
    upgrade: Rule
    keep: Rule
    name: str = ""


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_rule(data) -> dict[str, list[str]]:
    """Problems with a rule given as a dict, keyed by field path (empty: valid)."""
    if not isinstance(data, dict) or set(data) - {"combine", "conditions"}:
        return {"": ["Give {\"combine\": \"any\" | \"all\", \"conditions\": [...]}."]}
    errors: dict[str, list[str]] = {}
    if data.get("combine", "all") not in COMBINES:
        errors["combine"] = [f"Must be one of: {', '.join(COMBINES)}."]
    conditions = data.get("conditions", [])
    if not isinstance(conditions, list) or len(conditions) > MAX_CONDITIONS:
        errors["conditions"] = [f"Give a list of at most {MAX_CONDITIONS} conditions."]
        return errors
    for number, condition in enumerate(conditions):
        for name, problems in _condition_errors(condition).items():
            errors[f"conditions.{number}" + (f".{name}" if name else "")] = problems
    return errors


def _condition_errors(condition) -> dict[str, list[str]]:
    if not isinstance(condition, dict) or set(condition) - {"metric", "threshold",
                                                            "window_days"}:
        return {"": ["Give {\"metric\", \"threshold\", \"window_days\"}."]}
    errors = {}
    metric, window = condition.get("metric"), condition.get("window_days", 0)
    threshold = condition.get("threshold")
    if metric not in METRICS:
        errors["metric"] = [f"Must be one of: {', '.join(METRICS)}."]
    if not _whole(threshold) or not 0 <= threshold <= MAX_THRESHOLD:
        errors["threshold"] = [f"Must be a whole number from 0 to {MAX_THRESHOLD}."]
    if not _whole(window) or not 0 <= window <= MAX_WINDOW_DAYS:
        errors["window_days"] = [f"Must be a whole number of days from 0 (all time) to "
                                 f"{MAX_WINDOW_DAYS}."]
    elif metric in ALL_TIME_ONLY and window != 0:
        errors["window_days"] = [f"{metric} is counted over all time: use 0."]
    return errors


def rule_from_dict(data: dict | None) -> Rule:
    """A rule from its stored (validated) form; nothing stored is the empty rule."""
    data = data or {}
    return Rule(combine=data.get("combine", "all"),
                conditions=tuple(Condition(c["metric"], c["threshold"], c.get("window_days", 0))
                                 for c in data.get("conditions", ())))


def validate_tier_rates(rates, *, tiers: int, max_total_bps: int) -> list[str]:
    """A level's rates follow the program's own rule: one per tier, summing to at most
    ``max_total_bps``."""
    if not isinstance(rates, list | tuple) or len(rates) != tiers:
        return [f"Give exactly {tiers} rates, one per tier."]
    if any(not _whole(rate) or rate < 0 for rate in rates):
        return ["Rates are whole basis points, zero or more."]
    if sum(rates) > max_total_bps:
        return [f"The rates add up to more than max_total_bps ({max_total_bps})."]
    return []


def holds(rule: Rule, figures: Figures) -> bool:
    """Whether ``rule`` is met by ``figures`` (a figure not given counts as 0)."""
    met = (figures.get(c.measure, 0) >= c.threshold for c in rule.conditions)
    return any(met) if rule.combine == "any" else all(met)


def unmet(rule: Rule, figures: Figures) -> list[str]:
    """The conditions of ``rule`` that ``figures`` miss, in words (for the change's reason)."""
    return [f"{c.metric}{_window_words(c.window_days)} {figures.get(c.measure, 0)} < "
            f"{c.threshold}" for c in rule.conditions
            if figures.get(c.measure, 0) < c.threshold]


def _window_words(window_days: int) -> str:
    return f" over {window_days} days" if window_days else ""


def upgrade_target(levels: Iterable[LevelTerms], *, current_weight: int,
                   figures: Figures) -> LevelTerms | None:
    """The highest level above ``current_weight`` whose upgrade rule holds (None: stay)."""
    for level in sorted(levels, key=lambda lv: lv.weight, reverse=True):
        if level.weight <= current_weight:
            return None
        if level.upgrade.conditions and holds(level.upgrade, figures):
            return level
    return None


def keep_target(levels: Iterable[LevelTerms], *, current: LevelTerms,
                figures: Figures) -> LevelTerms | None:
    """Where assessment leaves a member at ``current``: ``current`` itself when its keep rule
    holds, else the highest lower level whose keep rule holds, else None (the base level)."""
    for level in sorted(levels, key=lambda lv: lv.weight, reverse=True):
        if level.weight > current.weight:
            continue
        if holds(level.keep, figures):
            return level
    return None


def measures(rules: Iterable[Rule]) -> set[Measure]:
    """Every (metric, window) that evaluating ``rules`` needs."""
    return {c.measure for rule in rules for c in rule.conditions}


def window_start(today: date, *, window_days: int) -> date:
    """The first business day of a window of ``window_days`` days ending ``today``."""
    return today - timedelta(days=window_days - 1)


def review_cutoff(today: date, *, months: int) -> date:
    """A level last set or confirmed on this date or earlier is due for assessment ``today``:
    the same day ``months`` calendar months back, or that month's last day when it is
    shorter. So a level set on 15 January is due on 15 February, and one set on 31 January
    (there is no 31 February) on 1 March.
    """
    index = today.year * 12 + today.month - 1 - months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(today.day, last_day))
