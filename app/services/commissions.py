"""Commission through its lifecycle: snapshot at order creation, accrual when paid, settlement
after the freeze, reversal on refunds (DOMAIN.md, Commission lifecycle and the ledger).

Every function runs in its caller's transaction (the payment, the refund, the job) and moves
money only through ``ledger.post`` under a key derived from what happened, so running any of
them twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from app.domain import ledger as ledger_rules
from app.domain import tree as tree_rules
from app.domain.attribution import has_effective_upline
from app.domain.business_time import business_date
from app.domain.commission import (
    Beneficiary,
    ChainLink,
    CommissionPlan,
    OrderLine,
    ProductCommission,
    beneficiary_chain,
    split_commission,
)
from app.domain.money import reversed_so_far
from app.domain.program_rules import ProgramRules
from app.extensions import db
from app.models import Commission, Member, Order, PeriodTotal, ProcessedRefund, WalletOutbox
from app.models import OrderLine as OrderLineRow
from app.services import events, ledger


def take_snapshot(*, buyer: Member, plan: CommissionPlan, rules: ProgramRules,
                  now: datetime) -> dict:
    """Plan version and beneficiary chain with each rate, as of order creation: nothing later
    (plan changes, levels, rebinding, moves) changes what this order pays."""
    chain = beneficiary_chain(plan, buyer=ChainLink(buyer.id, buyer.is_active_distributor,
                                                    buyer.level_id),
                              uplines=_effective_uplines(buyer, rules, now, plan.tiers))
    return {"plan_version": plan.version, "tiers": plan.tiers,
            "max_total_bps": plan.max_total_bps, "self_purchase": plan.self_purchase,
            "beneficiaries": [{"tier": b.tier, "member_id": b.member_id,
                               "rate_bps": b.rate_bps} for b in chain]}


def _effective_uplines(buyer: Member, rules: ProgramRules, now: datetime,
                       tiers: int) -> list[ChainLink]:
    """The buyer's uplines nearest first, as far as each binding is still in force."""
    nearest_first = list(reversed(tree_rules.ancestors(buyer.path)))[:tiers]
    rows = {m.id: m for m in db.session.scalars(select(Member).where(
        Member.merchant_id == buyer.merchant_id, Member.id.in_(nearest_first)))}
    links, child = [], buyer
    for member_id in nearest_first:
        if not has_effective_upline(rules, upline_id=child.upline_id, bound_at=child.bound_at,
                                    now=now):
            break
        upline = rows[member_id]
        # Each beneficiary's level now decides its rate (the snapshot keeps that rate).
        links.append(ChainLink(upline.id, upline.is_active_distributor, upline.level_id))
        child = upline
    return links


def _snapshot_terms(order: Order) -> tuple[CommissionPlan, list[Beneficiary]]:
    snap = order.commission_snapshot
    plan = CommissionPlan(version=snap["plan_version"], tiers=snap["tiers"],
                          tier_rates_bps=(), max_total_bps=snap["max_total_bps"],
                          self_purchase=snap["self_purchase"])
    return plan, [Beneficiary(**b) for b in snap["beneficiaries"]]


def _order_lines(order: Order) -> list[OrderLine]:
    rows = db.session.scalars(select(OrderLineRow).where(
        OrderLineRow.merchant_id == order.merchant_id, OrderLineRow.order_id == order.id)
        .order_by(OrderLineRow.line_no))
    return [OrderLine(line_no=r.line_no, unit_price_fen=r.unit_price_fen, quantity=r.quantity,
                      distributable=r.distributable,
                      override=ProductCommission(r.commission_override["mode"],
                                                 tuple(r.commission_override.get("values", ())))
                      if r.commission_override else None) for r in rows]


def accrue_for_paid_order(order: Order, *, timezone: str, now: datetime) -> list[Commission]:
    """Post the order's commission as pending, once: called inside the payment transaction."""
    plan, beneficiaries = _snapshot_terms(order)
    parts = split_commission(plan, lines=_order_lines(order), discount_fen=order.discount_fen,
                             beneficiaries=beneficiaries)
    per_member: dict[int, int] = defaultdict(int)
    for part in parts:
        per_member[part.member_id] += part.amount_fen
    entries = [e for member_id, amount in sorted(per_member.items())
               for e in ledger_rules.accrual(member_id=member_id, amount_fen=amount)]
    if not entries or ledger.post(merchant_id=order.merchant_id, kind="accrual",
                                  idempotency_key=f"accrual:order:{order.id}",
                                  entries=entries, order_id=order.id) is None:
        return []
    period = business_date(now, timezone=timezone).strftime("%Y-%m")
    rows = [Commission(merchant_id=order.merchant_id, order_id=order.id, line_no=p.line_no,
                       tier=p.tier, member_id=p.member_id, base_fen=p.base_fen,
                       rate_bps=p.rate_bps, fixed_fen_per_unit=p.fixed_fen_per_unit,
                       amount_fen=p.amount_fen, period=period) for p in parts]
    db.session.add_all(rows)
    tier_one = next((b.member_id for b in beneficiaries if b.tier == 1), None)
    for member_id, amount in per_member.items():
        _add_period_totals(order.merchant_id, member_id, period, commission_fen=amount,
                           sales_fen=order.goods_paid_fen if member_id == tier_one else 0)
    db.session.flush()
    return rows


def schedule_settlement(order: Order, *, received_at: datetime, freeze_days: int) -> None:
    """On receipt: pending commission becomes settleable ``freeze_days`` later (the after-sale
    window)."""
    for commission in _commissions(order):
        if commission.status == "pending":
            commission.settle_at = received_at + timedelta(days=freeze_days)


def settle_due(*, now: datetime, limit: int = 1000) -> int:
    """The settlement job's work: pending commission past its settle date becomes available,
    except for frozen distributors and members with an open risk flag (held until released).
    Runs in the caller's transaction; rows another runner holds are skipped, and a second run
    finds nothing left."""
    from app.services.risk import without_open_flag

    due = db.session.scalars(
        select(Commission).join(Member, (Member.merchant_id == Commission.merchant_id)
                                & (Member.id == Commission.member_id))
        .where(Commission.status == "pending", Commission.settle_at <= now,
               Member.distributor_status != "frozen",
               without_open_flag(Commission.merchant_id, Commission.member_id))
        .order_by(Commission.id).limit(limit).with_for_update(of=Commission, skip_locked=True)
    ).all()
    for commission in due:
        outstanding = commission.outstanding_fen
        if outstanding > 0:
            ledger.post(merchant_id=commission.merchant_id, kind="settlement",
                        idempotency_key=f"settle:commission:{commission.id}",
                        entries=ledger_rules.settlement(member_id=commission.member_id,
                                                        amount_fen=outstanding),
                        order_id=commission.order_id)
        commission.status = "settled"
        commission.settled_at = now
        events.commission_settled(commission, max(outstanding, 0), now)
    db.session.flush()
    return len(due)


def reverse_for_refund(order: Order, *, refund_key: str, refunded_goods_before_fen: int,
                       refunded_goods_after_fen: int) -> int:
    """Take back commission in proportion to the goods refunded so far; the refund that
    completes the order takes back exactly the rest. Once per ``refund_key``: a repeat
    changes nothing. Pending commission is reversed from
    pending, settled commission from available (even into a debt). Returns fen reversed."""
    try:
        with db.session.begin_nested():
            db.session.add(ProcessedRefund(merchant_id=order.merchant_id, refund_key=refund_key,
                                           order_id=order.id))
    except IntegrityError:
        return 0  # this refund was handled before: money and sales stay as they are
    per_account: dict[tuple[int, str], int] = defaultdict(int)
    changes = []
    commissions_of_order = _commissions(order, for_update=True)
    for commission in commissions_of_order:
        target = reversed_so_far(amount_fen=commission.amount_fen,
                                 refunded_fen=refunded_goods_after_fen,
                                 base_fen=order.goods_paid_fen)
        delta = target - commission.reversed_fen
        if delta > 0:
            source = ledger_rules.PENDING if commission.status == "pending" \
                else ledger_rules.AVAILABLE
            per_account[(commission.member_id, source)] += delta
            changes.append((commission, target, delta))
    entries = [e for (member_id, source), amount in sorted(per_account.items())
               for e in ledger_rules.reversal(member_id=member_id, amount_fen=amount,
                                              from_kind=source)]
    if entries:
        ledger.post(merchant_id=order.merchant_id, kind="reversal",
                    idempotency_key=f"reversal:{refund_key}", entries=entries,
                    order_id=order.id)
    for commission, target, delta in changes:
        commission.reversed_fen = target
        if target == commission.amount_fen and commission.status == "pending":
            commission.status = "reversed"
        _add_period_totals(order.merchant_id, commission.member_id, commission.period,
                           commission_fen=-delta, sales_fen=0)
    _reduce_sales(order, commissions_of_order,
                  refunded_fen=refunded_goods_after_fen - refunded_goods_before_fen)
    db.session.flush()
    return sum(delta for _, _, delta in changes)


def _reduce_sales(order: Order, commissions_of_order: list[Commission], *,
                  refunded_fen: int) -> None:
    """Every refund reduces the tier-1 distributor's sales, even one too small to reverse a
    fen of commission (once per refund: the processed-refund marker guards it)."""
    tier_one = next((c for c in commissions_of_order if c.tier == 1), None)
    if tier_one is not None and refunded_fen > 0:
        _add_period_totals(order.merchant_id, tier_one.member_id, tier_one.period,
                           commission_fen=0, sales_fen=-refunded_fen)


def commissions_of(order: Order) -> list[Commission]:
    """The order's commission parts, as they stand in this transaction."""
    return _commissions(order)


def _commissions(order: Order, *, for_update: bool = False) -> list[Commission]:
    query = select(Commission).where(Commission.merchant_id == order.merchant_id,
                                     Commission.order_id == order.id).order_by(Commission.id)
    return list(db.session.scalars(query.with_for_update() if for_update else query))


def _add_period_totals(merchant_id: int, member_id: int, period: str, *, commission_fen: int,
                       sales_fen: int) -> None:
    """Totals behind the rankings, changed in the money's own transaction and queued for the
    mirror (absolute values are mirrored, never increments)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    # An upsert: two first payments of one member in a period never race on the insert.
    statement = insert(PeriodTotal).values(merchant_id=merchant_id, period=period,
                                           member_id=member_id, commission_fen=commission_fen,
                                           sales_fen=sales_fen, revision=1)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["merchant_id", "period", "member_id"],
        set_={"commission_fen": PeriodTotal.commission_fen + statement.excluded.commission_fen,
              "sales_fen": PeriodTotal.sales_fen + statement.excluded.sales_fen,
              "revision": PeriodTotal.revision + 1}))
    db.session.add(WalletOutbox(merchant_id=merchant_id, member_id=member_id, period=period))


def member_commissions(*, merchant_id: int, member_id: int, page: int, per_page: int
                       ) -> tuple[list[tuple[Commission, str]], int]:
    """A member's commission parts, newest first, each with its order's out_trade_no."""
    query = (select(Commission, Order.out_trade_no)
             .join(Order, (Order.merchant_id == Commission.merchant_id)
                   & (Order.id == Commission.order_id))
             .where(Commission.merchant_id == merchant_id, Commission.member_id == member_id))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.execute(query.order_by(Commission.id.desc()).limit(per_page)
                              .offset((page - 1) * per_page)).all()
    return [tuple(row) for row in rows], total
