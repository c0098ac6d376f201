"""Statistics rollups, counted in the transaction of the event they count (DOMAIN.md,
Statistics and reports). Called only through ``services/events.py``; the day is the merchant's
business date of the event — a refund counts on the day it succeeded, a settlement on the day
it settled, never back on the order's day.

Every function adds to its rows with an upsert (no read-modify-write race between two
payments of one merchant). Two kinds of row are written at two moments:

- Per member (``daily_member_stats``, ``daily_buyers``): at once, so that a level upgrade
  considered later in the same transaction sees the event it reacts to.
- Per merchant (``daily_stats``, ``hourly_stats``): every event of a merchant touches the same
  row of the day, so these deltas are summed in the session and written just before the
  transaction commits, in one key order. The hot row is then locked only for the commit, and
  never before another lock (the tree lock, a ledger account), which would risk a deadlock.
  A rolled-back transaction drops its deltas with everything else.

The members a day counts (paying buyers, active distributors) also go, after the commit, to
the HyperLogLogs of ``integrations/member_counters.py``: the dashboard's distinct counts over a
range read those instead of every member-day row.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import event, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.domain.business_time import merchant_zone
from app.extensions import db, redis
from app.integrations import member_counters
from app.models import (
    Commission,
    DailyBuyer,
    DailyMemberStat,
    DailyStat,
    HourlyStat,
    Member,
    Merchant,
    Order,
    ShareLink,
    Visit,
    Withdrawal,
)

_PENDING = "rollups.pending"  # session.info key: {(model name, *key): {column: delta}}
_COUNTED = "rollups.counted"  # {(merchant_id, day): {kind: member ids}}, counted after commit


def member_created(member: Member, *, day: date) -> None:
    _merchant_day(member.merchant_id, day, new_members=1)


def distributor_activated(member: Member, *, day: date) -> None:
    _merchant_day(member.merchant_id, day, new_distributors=1)


def member_bound(member: Member, upline: Member, *, day: date) -> None:
    """A binding, a rebinding or a staff move: one binding for the merchant, one new direct
    member for the upline (the upline left behind keeps its earlier count)."""
    _merchant_day(member.merchant_id, day, bindings=1)
    _members(member.merchant_id, day, {upline.id: {"new_direct_members": 1}})


def link_created(link: ShareLink, *, day: date) -> None:
    _merchant_day(link.merchant_id, day, links_shared=1)
    _count(link.merchant_id, day, distributors=link.distributor_id)
    _members(link.merchant_id, day, {link.distributor_id: {"links_shared": 1}})


def visit_recorded(visit: Visit, *, day: date) -> None:
    _merchant_day(visit.merchant_id, day, visits=1)
    _count(visit.merchant_id, day, distributors=visit.distributor_id)
    _members(visit.merchant_id, day, {visit.distributor_id: {"visits": 1}})


def order_created(order: Order, *, day: date) -> None:
    _merchant_day(order.merchant_id, day, orders_created=1)


def order_cancelled(order: Order, *, day: date) -> None:
    _merchant_day(order.merchant_id, day, orders_cancelled=1)


def order_paid(order: Order, accrued: list[Commission], *, day: date) -> None:
    """GMV is what the buyer paid (goods less discount plus shipping); the tier-1 distributor
    of the order's snapshot is credited the goods paid (shipping is not a sale of theirs)."""
    accrued_fen = sum(c.amount_fen for c in accrued)
    _merchant_day(order.merchant_id, day, gmv_fen=order.paid_fen, orders_paid=1,
                  commission_accrued_fen=accrued_fen)
    merchant = db.session.get(Merchant, order.merchant_id)
    hour = order.paid_at.astimezone(merchant_zone(merchant.timezone)).hour
    _defer(HourlyStat, (order.merchant_id, day, hour), orders_paid=1, gmv_fen=order.paid_fen)
    _buyer_day(order, day)
    changes: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    changes[order.buyer_member_id]["purchases"] += 1
    changes[order.buyer_member_id]["spent_fen"] += order.paid_fen
    tier_one = _tier_one(order)
    _count(order.merchant_id, day, buyers=order.buyer_member_id, distributors=tier_one)
    if tier_one is not None:
        changes[tier_one]["referred_orders"] += 1
        changes[tier_one]["direct_sales_fen"] += order.goods_paid_fen
    for commission in accrued:
        changes[commission.member_id]["commission_fen"] += commission.amount_fen
    _members(order.merchant_id, day, changes)


def refund_succeeded(order: Order, *, refund_fen: int, goods_fen: int,
                     reversed_by_member: dict[int, int], day: date) -> None:
    """Counted on the refund's own day: the buyer's spend drops by the refund, the tier-1
    distributor's sales by the goods refunded, each beneficiary's commission by what was
    reversed. An order counts once among its distributor's refunded orders (its first
    refund); ``order.refunded_fen`` already includes this refund."""
    _merchant_day(order.merchant_id, day, refunds=1, refunded_fen=refund_fen,
                  commission_reversed_fen=sum(reversed_by_member.values()))
    changes: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    changes[order.buyer_member_id]["spent_fen"] -= refund_fen
    tier_one = _tier_one(order)
    if tier_one is not None:
        changes[tier_one]["direct_sales_fen"] -= goods_fen
        changes[tier_one]["refunded_orders"] += int(order.refunded_fen == refund_fen)
    for member_id, reversed_fen in reversed_by_member.items():
        changes[member_id]["commission_fen"] -= reversed_fen
    _members(order.merchant_id, day, changes)


def commission_settled(commission: Commission, amount_fen: int, *, day: date) -> None:
    """``amount_fen`` is what became available (the part not reversed before settling)."""
    if amount_fen:
        _merchant_day(commission.merchant_id, day, commission_settled_fen=amount_fen)
        _members(commission.merchant_id, day,
                 {commission.member_id: {"commission_settled_fen": amount_fen}})


def payout_done(withdrawal: Withdrawal, *, day: date) -> None:
    """Paid out is what the distributor received; the fee stays with the merchant."""
    _merchant_day(withdrawal.merchant_id, day, paid_out_fen=withdrawal.amount_fen)


# -- writing -----------------------------------------------------------------------------------

def _tier_one(order: Order) -> int | None:
    """The tier-1 beneficiary of the order's snapshot (the buyer's upline, or the buyer under
    self-purchase); None when nobody earned tier 1."""
    return next((b["member_id"] for b in order.commission_snapshot.get("beneficiaries", ())
                 if b["tier"] == 1), None)


def _insert(session: Session):
    dialect = session.get_bind().dialect.name
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


def _upsert(session: Session, model, keys: dict, deltas: dict[str, int]) -> None:
    statement = _insert(session)(model).values(**keys, **deltas)
    session.execute(statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: getattr(model, name) + getattr(statement.excluded, name)
              for name in deltas}))


def _members(merchant_id: int, day: date, changes: dict[int, dict[str, int]]) -> None:
    """Member-day rows, written now, in member order (two events never lock two members'
    rows in opposite orders)."""
    for member_id in sorted(changes):
        deltas = {name: value for name, value in changes[member_id].items() if value}
        if deltas:
            _upsert(db.session, DailyMemberStat,
                    {"merchant_id": merchant_id, "day": day, "member_id": member_id}, deltas)


def _buyer_day(order: Order, day: date) -> None:
    """The buyer paid on ``day``: first purchase ever when no other order of theirs was paid
    before; province and city from the first order's address of that day."""
    earlier = db.session.scalar(select(Order.id).where(
        Order.merchant_id == order.merchant_id, Order.buyer_member_id == order.buyer_member_id,
        Order.paid_at.is_not(None), Order.paid_at < order.paid_at).limit(1))
    address = order.address or {}
    statement = _insert(db.session)(DailyBuyer).values(
        merchant_id=order.merchant_id, day=day, member_id=order.buyer_member_id, orders=1,
        first_purchase=earlier is None, province=str(address.get("province", ""))[:32],
        city=str(address.get("city", ""))[:32])
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["merchant_id", "day", "member_id"],
        set_={"orders": DailyBuyer.orders + 1,
              "first_purchase": or_(DailyBuyer.first_purchase,
                                    statement.excluded.first_purchase)}))


def _count(merchant_id: int, day: date, **members: int | None) -> None:
    kinds = db.session.info.setdefault(_COUNTED, {}).setdefault((merchant_id, day), {})
    for kind, member_id in members.items():
        kinds.setdefault(kind, set()).update([member_id] if member_id is not None else [])


def _merchant_day(merchant_id: int, day: date, **deltas: int) -> None:
    _defer(DailyStat, (merchant_id, day), **deltas)


def _defer(model, key: tuple, **deltas: int) -> None:
    pending = db.session.info.setdefault(_PENDING, {})
    row = pending.setdefault((model.__tablename__, *key), defaultdict(int))
    for name, value in deltas.items():
        row[name] += value


_KEYS = {DailyStat.__tablename__: (DailyStat, ("merchant_id", "day")),
         HourlyStat.__tablename__: (HourlyStat, ("merchant_id", "day", "hour"))}


@event.listens_for(Session, "before_commit")
def _write_deferred(session: Session) -> None:
    """Write the merchant rows just before the outermost commit (a savepoint's release is no
    commit of the day's figures), in sorted key order."""
    if session.in_nested_transaction() or not session.info.get(_PENDING):
        return
    pending = session.info.pop(_PENDING)
    for key in sorted(pending):
        model, names = _KEYS[key[0]]
        deltas = {name: value for name, value in pending[key].items() if value}
        if deltas:
            _upsert(session, model, dict(zip(names, key[1:], strict=True)), deltas)


@event.listens_for(Session, "after_commit")
def _count_members(session: Session) -> None:
    """After the outermost commit (a counter never counts what SQL lost); best effort."""
    if not session.in_nested_transaction() and session.info.get(_COUNTED):
        member_counters.add(redis.client, session.info.pop(_COUNTED))


@event.listens_for(Session, "after_transaction_end")
def _drop_deferred(session: Session, transaction) -> None:
    """A transaction that ended without committing (rolled back, closed) leaves nothing."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_COUNTED, None)
