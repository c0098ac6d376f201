"""A merchant's distribution program rules (DOMAIN.md), their defaults and their validation.

Pure: the console API validates a change by building ``ProgramRules`` from the stored rules plus
the change; the result is either valid rules or a dict of field errors, never half-applied.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

JOIN_MODES = ("apply", "everyone", "spend_threshold")
BIND_MODES = ("permanent", "time_limited", "last_touch")
BIND_TRIGGERS = ("visit", "register", "first_order")
MAX_TIERS = 3  # PRC rules: 3+ levels of downline pay is a pyramid-selling marker
MAX_TOTAL_BPS_CEILING = 10_000


@dataclass(frozen=True)
class ProgramRules:
    join_mode: str = "apply"
    join_spend_threshold_fen: int = 0
    bind_mode: str = "permanent"
    bind_trigger: str = "visit"
    bind_days: int = 30
    protection_days: int = 0
    register_window_minutes: int = 30
    tiers: int = 2
    tier_rates_bps: tuple[int, ...] = (1000, 500)
    max_total_bps: int = 3000
    third_tier_acknowledged: bool = False
    self_purchase: bool = False
    auto_receive_days: int = 10
    freeze_days: int = 7
    withdraw_min_fen: int = 100
    withdraw_max_fen: int = 2_000_000
    withdraw_daily_count: int = 3
    withdraw_fee_bps: int = 0
    withdraw_auto_approve_below_fen: int = 0
    # Risk signals: each flags on more than its threshold (DOMAIN.md, Risk signals).
    risk_binding_burst_per_hour: int = 50
    risk_refund_rate_bps: int = 2500  # over the referred orders of the last 30 days
    risk_refund_min_orders: int = 10
    risk_ip_burst_members: int = 20
    risk_ip_burst_minutes: int = 10
    agreement_version: str = "v1"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tier_rates_bps"] = list(self.tier_rates_bps)
        return data

    @property
    def warnings(self) -> list[str]:
        """Compliance warnings the console shows beside these rules."""
        found = []
        if self.tiers == 3:
            found.append("third_tier: paying on three levels of downline sales is treated as a "
                         "pyramid-selling marker under PRC rules; WeChat bans multi-level "
                         "distribution")
        if self.join_mode == "spend_threshold":
            found.append("spend_to_join: buy-to-join schemes are a compliance risk")
        return found


RULE_NAMES = tuple(f.name for f in fields(ProgramRules))


class RulesError(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid program rules")
        self.errors = errors


def rules_from_dict(stored: dict | None, changes: dict | None = None) -> ProgramRules:
    """Defaults, overlaid with ``stored`` then ``changes``; raise ``RulesError`` when invalid."""
    merged = {**(stored or {}), **(changes or {})}
    unknown = sorted(set(merged) - set(RULE_NAMES))
    if unknown:
        raise RulesError({name: ["Unknown field."] for name in unknown})
    if isinstance(merged.get("tier_rates_bps"), list | tuple):
        merged["tier_rates_bps"] = tuple(merged["tier_rates_bps"])
    rules = replace(ProgramRules(), **merged)
    errors = validate_rules(rules)
    if errors:
        raise RulesError(errors)
    return rules


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_rules(rules: ProgramRules) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    for name, allowed in (("join_mode", JOIN_MODES), ("bind_mode", BIND_MODES),
                          ("bind_trigger", BIND_TRIGGERS)):
        if getattr(rules, name) not in allowed:
            refuse(name, f"Must be one of: {', '.join(allowed)}.")
    _validate_tiers(rules, refuse)
    _validate_risk(rules, refuse)
    for name in ("join_spend_threshold_fen", "bind_days", "protection_days",
                 "register_window_minutes", "auto_receive_days", "freeze_days",
                 "withdraw_min_fen", "withdraw_max_fen", "withdraw_daily_count",
                 "withdraw_fee_bps", "withdraw_auto_approve_below_fen"):
        value = getattr(rules, name)
        if not _whole(value) or value < 0:
            refuse(name, "Must be a whole number, zero or more.")
    for name in ("third_tier_acknowledged", "self_purchase"):
        if not isinstance(getattr(rules, name), bool):
            refuse(name, "Must be true or false.")
    # The cross-field rules only compare values that are whole numbers (refused above if not).
    if rules.bind_mode == "time_limited" and _whole(rules.bind_days) and rules.bind_days < 1:
        refuse("bind_days", "A time-limited binding must last at least one day.")
    if rules.join_mode == "spend_threshold" and _whole(rules.join_spend_threshold_fen) \
            and rules.join_spend_threshold_fen < 1:
        refuse("join_spend_threshold_fen", "Set the spend that makes a member a distributor.")
    if _whole(rules.withdraw_max_fen) and _whole(rules.withdraw_min_fen) \
            and rules.withdraw_max_fen < rules.withdraw_min_fen:
        refuse("withdraw_max_fen", "Must not be below withdraw_min_fen.")
    if _whole(rules.withdraw_fee_bps) and not 0 <= rules.withdraw_fee_bps \
            <= MAX_TOTAL_BPS_CEILING:
        refuse("withdraw_fee_bps", "Must be between 0 and 10000.")
    return errors


# name -> (least, most) allowed; a zero threshold would flag on the first binding or refund.
RISK_RULE_RANGES = {"risk_binding_burst_per_hour": (1, 1_000_000),
                    "risk_refund_rate_bps": (0, MAX_TOTAL_BPS_CEILING),
                    "risk_refund_min_orders": (1, 1_000_000),
                    "risk_ip_burst_members": (1, 1_000_000),
                    "risk_ip_burst_minutes": (1, 1440)}


def _validate_risk(rules: ProgramRules, refuse) -> None:
    for name, (least, most) in RISK_RULE_RANGES.items():
        value = getattr(rules, name)
        if not _whole(value) or not least <= value <= most:
            refuse(name, f"Must be a whole number from {least} to {most}.")


def _validate_tiers(rules: ProgramRules, refuse) -> None:
    max_valid = _whole(rules.max_total_bps) and 0 <= rules.max_total_bps <= MAX_TOTAL_BPS_CEILING
    if not max_valid:
        refuse("max_total_bps", "Must be between 0 and 10000.")
    if not _whole(rules.tiers) or rules.tiers not in (1, 2, 3):
        refuse("tiers", f"Must be 1, 2 or 3 (never more than {MAX_TIERS}).")
        return
    if rules.tiers == 3 and rules.third_tier_acknowledged is not True:
        refuse("tiers", "A third tier needs third_tier_acknowledged: true (compliance warning).")
    rates = rules.tier_rates_bps
    if not isinstance(rates, tuple):
        refuse("tier_rates_bps", "Give a list of rates, one per tier.")
    elif len(rates) != rules.tiers:
        refuse("tier_rates_bps", f"Give exactly {rules.tiers} rates, one per tier.")
    elif any(not _whole(r) or r < 0 for r in rates):
        refuse("tier_rates_bps", "Rates are whole basis points, zero or more.")
    elif _whole(rules.max_total_bps) and sum(rates) > rules.max_total_bps:
        refuse("tier_rates_bps", f"The rates add up to more than max_total_bps "
                                 f"({rules.max_total_bps}).")
