"""Commission plan versions: every change to a program's money rules is a new version.

Orders snapshot the version current at their creation, so publishing a new plan never changes
what an existing order pays.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.domain.commission import CommissionPlan, OrderLine, plan_from_rules, preview
from app.domain.program_rules import ProgramRules, RulesError, rules_from_dict
from app.errors import InvalidInput
from app.extensions import db
from app.models import CommissionPlanVersion, Level, Merchant


def _latest(merchant_id: int) -> CommissionPlanVersion | None:
    return db.session.scalars(select(CommissionPlanVersion).where(
        CommissionPlanVersion.merchant_id == merchant_id)
        .order_by(CommissionPlanVersion.version.desc()).limit(1)).first()


def as_plan(row: CommissionPlanVersion) -> CommissionPlan:
    return CommissionPlan(version=row.version, tiers=row.tiers,
                          tier_rates_bps=tuple(row.tier_rates_bps),
                          max_total_bps=row.max_total_bps, self_purchase=row.self_purchase,
                          level_rates_bps=tuple((level, tuple(rates))
                                                for level, rates in row.level_rates_bps))


def current_plan(merchant_id: int, rules: ProgramRules) -> CommissionPlan:
    """The plan in force: the latest version, published from the rules if there is none yet.
    Flushes only."""
    return publish_if_changed(merchant_id, rules, staff_id=None)


def publish_if_changed(merchant_id: int, rules: ProgramRules, *,
                       staff_id: int | None) -> CommissionPlan:
    """A new version when the money rules differ from the latest one; flushes only. Two
    concurrent publishers of the same rules end with one version. Each level's rates are
    terms of the plan too (read after the latest version, so never older than it)."""
    latest = _latest(merchant_id)
    wanted = plan_from_rules(rules, version=(latest.version + 1) if latest else 1,
                             level_rates_bps=_level_rates(merchant_id))
    if latest is not None and _same_terms(as_plan(latest), wanted):
        return as_plan(latest)
    row = CommissionPlanVersion(merchant_id=merchant_id, version=wanted.version,
                                tiers=wanted.tiers, tier_rates_bps=list(wanted.tier_rates_bps),
                                max_total_bps=wanted.max_total_bps,
                                self_purchase=wanted.self_purchase,
                                level_rates_bps=[[level, list(rates)]
                                                 for level, rates in wanted.level_rates_bps],
                                staff_id=staff_id)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return as_plan(_latest(merchant_id))
    return wanted


def _level_rates(merchant_id: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
    rows = db.session.execute(select(Level.id, Level.tier_rates_bps).where(
        Level.merchant_id == merchant_id).order_by(Level.id))
    return tuple((level_id, tuple(rates)) for level_id, rates in rows)


def _same_terms(a: CommissionPlan, b: CommissionPlan) -> bool:
    return (a.tiers, a.tier_rates_bps, a.max_total_bps, a.self_purchase, a.level_rates_bps) == \
        (b.tiers, b.tier_rates_bps, b.max_total_bps, b.self_purchase, b.level_rates_bps)


def preview_draft(merchant: Merchant, *, draft: dict, lines: list[dict],
                  discount_fen: int) -> dict:
    """Each tier's earnings on a sample order under the merchant's rules with ``draft``
    applied; invalid drafts are 422s naming their fields. Nothing is stored."""
    try:
        rules = rules_from_dict(merchant.program_rules, draft)
    except RulesError as error:
        raise InvalidInput(errors=error.errors) from None
    plan = plan_from_rules(rules, version=0)
    sample = [OrderLine(line_no=n, unit_price_fen=line["unit_price_fen"],
                        quantity=line["quantity"]) for n, line in enumerate(lines, start=1)]
    amounts = preview(plan, lines=sample, discount_fen=discount_fen)
    return {"tiers": [{"tier": tier, "rate_bps": plan.tier_rates_bps[tier - 1],
                       "amount_fen": amount} for tier, amount in amounts.items()],
            "total_fen": sum(amounts.values()),
            "paid_fen": sum(line.goods_fen for line in sample) - discount_fen,
            "warnings": rules.warnings}


def list_versions(merchant_id: int) -> list[CommissionPlanVersion]:
    return list(db.session.scalars(select(CommissionPlanVersion).where(
        CommissionPlanVersion.merchant_id == merchant_id)
        .order_by(CommissionPlanVersion.version.desc())))


def plan_version(merchant_id: int, version: int) -> CommissionPlan:
    """One published version (an order's snapshot names the version it was taken under)."""
    row = db.session.scalars(select(CommissionPlanVersion).where(
        CommissionPlanVersion.merchant_id == merchant_id,
        CommissionPlanVersion.version == version)).one()
    return as_plan(row)
