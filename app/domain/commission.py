"""Commission: who earns on an order, at which rate, and how much (DOMAIN.md, Commission).

Pure functions over plain values. The order's snapshot (plan version, beneficiary chain, each
rate) is taken at order creation from ``beneficiary_chain``; ``split_commission`` turns the
snapshot and the paid lines into parts, one per (line, tier):

- base: each line's paid amount — the order discount allocated to lines by largest remainder
  (app/domain/money.py), shipping excluded;
- amount: ``floor(base × rate)``, or a product's fixed fen per unit per tier;
- cap: a line's parts never add up to more than ``floor(base × max_total_bps)`` nor more than
  the base itself; when they would, the deepest tier gives way first (tier 1 is paid in full
  before tier 2 gets anything), so an order never pays more commission than it was paid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.money import BPS, allocate_largest_remainder, apply_rate
from app.domain.program_rules import MAX_TIERS, ProgramRules

OVERRIDE_MODES = ("rates", "fixed", "opt_out")


@dataclass(frozen=True)
class ProductCommission:
    """A product's own commission: its rates per tier, fixed fen per unit per tier, or none."""

    mode: str
    values: tuple[int, ...] = ()


@dataclass(frozen=True)
class CommissionPlan:
    version: int
    tiers: int
    tier_rates_bps: tuple[int, ...]
    max_total_bps: int
    self_purchase: bool = False
    # (level id, its rates per tier): a distributor's level may override what it earns.
    level_rates_bps: tuple[tuple[int, tuple[int, ...]], ...] = ()

    def rate_for(self, *, tier: int, level_id: int | None) -> int:
        for level, rates in self.level_rates_bps:
            if level == level_id and len(rates) >= tier:
                return rates[tier - 1]
        return self.tier_rates_bps[tier - 1]


def plan_from_rules(rules: ProgramRules, *, version: int,
                    level_rates_bps: tuple[tuple[int, tuple[int, ...]], ...] = ()
                    ) -> CommissionPlan:
    return CommissionPlan(version=version, tiers=rules.tiers,
                          tier_rates_bps=tuple(rules.tier_rates_bps),
                          max_total_bps=rules.max_total_bps, self_purchase=rules.self_purchase,
                          level_rates_bps=level_rates_bps)


def validate_override(override: ProductCommission, *, tiers: int,
                      max_total_bps: int) -> list[str]:
    """Problems with a product's override under a plan of ``tiers`` tiers (empty: valid)."""
    if override.mode not in OVERRIDE_MODES:
        return [f"mode must be one of: {', '.join(OVERRIDE_MODES)}"]
    if override.mode == "opt_out":
        return [] if not override.values else ["an opt-out carries no values"]
    if len(override.values) != tiers or any(
            not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in override.values):
        return [f"give {tiers} whole numbers, zero or more, one per tier"]
    if override.mode == "rates" and sum(override.values) > max_total_bps:
        return [f"the rates add up to more than max_total_bps ({max_total_bps})"]
    return []


@dataclass(frozen=True)
class ChainLink:
    """A member of the buyer's upline chain as seen at order creation."""

    member_id: int
    active: bool
    level_id: int | None = None


@dataclass(frozen=True)
class Beneficiary:
    tier: int
    member_id: int
    rate_bps: int


def beneficiary_chain(plan: CommissionPlan, *, buyer: ChainLink | None,
                      uplines: Sequence[ChainLink]) -> tuple[Beneficiary, ...]:
    """Who earns which tier: the buyer's upline (tier 1) and its upline (tier 2) — or, with
    ``self_purchase``, an active distributor buying earns tier 1 and its upline tier 2.

    ``uplines`` is the buyer's effective chain, nearest first (empty when the buyer has no
    binding in force). An inactive member leaves its tier unpaid: nobody moves up into it.
    """
    chain = list(uplines)
    if plan.self_purchase and buyer is not None and buyer.active:
        chain = [buyer, *chain]
    return tuple(Beneficiary(tier=tier, member_id=link.member_id,
                             rate_bps=plan.rate_for(tier=tier, level_id=link.level_id))
                 for tier, link in enumerate(chain[:plan.tiers], start=1) if link.active)


@dataclass(frozen=True)
class OrderLine:
    line_no: int
    unit_price_fen: int
    quantity: int
    override: ProductCommission | None = None
    distributable: bool = True

    @property
    def goods_fen(self) -> int:
        return self.unit_price_fen * self.quantity


@dataclass(frozen=True)
class CommissionPart:
    line_no: int
    tier: int
    member_id: int
    base_fen: int
    rate_bps: int  # 0 for a fixed amount
    fixed_fen_per_unit: int  # 0 for a rate
    amount_fen: int


def line_bases(lines: Sequence[OrderLine], *, discount_fen: int) -> list[int]:
    """Each line's paid amount: its goods less its share of the order discount."""
    goods = [line.goods_fen for line in lines]
    if not 0 <= discount_fen <= sum(goods):
        raise ValueError("the discount must be between zero and the goods total")
    shares = allocate_largest_remainder(total_fen=discount_fen, weights=goods)
    return [amount - share for amount, share in zip(goods, shares, strict=True)]


def split_commission(plan: CommissionPlan, *, lines: Sequence[OrderLine], discount_fen: int,
                     beneficiaries: Sequence[Beneficiary]) -> list[CommissionPart]:
    """The commission parts of an order, one per (line, paid tier), amounts > 0 only."""
    parts: list[CommissionPart] = []
    for line, base in zip(lines, line_bases(lines, discount_fen=discount_fen), strict=True):
        parts.extend(_line_parts(plan, line, base, beneficiaries))
    return parts


def _line_parts(plan: CommissionPlan, line: OrderLine, base: int,
                beneficiaries: Sequence[Beneficiary]) -> list[CommissionPart]:
    override = line.override
    if not line.distributable or (override and override.mode == "opt_out") or base == 0:
        return []
    room = min(base, apply_rate(base_fen=base, rate_bps=min(plan.max_total_bps, BPS)))
    parts = []
    for beneficiary in sorted(beneficiaries, key=lambda b: b.tier):
        rate, fixed = _terms(override, beneficiary)
        wanted = fixed * line.quantity if override and override.mode == "fixed" \
            else apply_rate(base_fen=base, rate_bps=rate)
        amount = min(wanted, room)
        room -= amount
        if amount > 0:
            parts.append(CommissionPart(line_no=line.line_no, tier=beneficiary.tier,
                                        member_id=beneficiary.member_id, base_fen=base,
                                        rate_bps=rate, fixed_fen_per_unit=fixed,
                                        amount_fen=amount))
    return parts


def _terms(override: ProductCommission | None, beneficiary: Beneficiary) -> tuple[int, int]:
    """(rate_bps, fixed fen per unit) for this tier on this line."""
    index = beneficiary.tier - 1
    if override is None or index >= len(override.values):
        return beneficiary.rate_bps, 0
    if override.mode == "fixed":
        return 0, override.values[index]
    return override.values[index], 0


def preview(plan: CommissionPlan, *, lines: Sequence[OrderLine],
            discount_fen: int = 0) -> dict[int, int]:
    """What each tier would earn on a sample order under ``plan`` (a draft, before it is
    published), with every tier held by an active distributor of no particular level."""
    sample = tuple(Beneficiary(tier=t, member_id=-t, rate_bps=plan.tier_rates_bps[t - 1])
                   for t in range(1, min(plan.tiers, MAX_TIERS) + 1))
    totals = dict.fromkeys(range(1, plan.tiers + 1), 0)
    for part in split_commission(plan, lines=lines, discount_fen=discount_fen,
                                 beneficiaries=sample):
        totals[part.tier] += part.amount_fen
    return totals
