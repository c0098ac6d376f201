"""Statistics for the console: date ranges and the dashboard (DOMAIN.md, Statistics and
reports), read from the rollups that events keep current (``services/rollups.py``) — never from
scans of raw orders. Days are the merchant's business dates; a range is inclusive at both ends.
The funnel, rankings and performance are in ``stats_distributors.py``, consumer analysis in
``stats_consumers.py``, team views in ``stats_teams.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import redis as redis_lib
from sqlalchemy import case, func, or_, select

from app.domain.business_time import business_date
from app.errors import InvalidInput
from app.extensions import db
from app.integrations import member_counters
from app.models import DailyBuyer, DailyMemberStat, DailyStat, Merchant

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
DAILY_FIELDS = ("gmv_fen", "orders_paid", "orders_created", "orders_cancelled", "refunds",
                "refunded_fen", "commission_accrued_fen", "commission_settled_fen",
                "commission_reversed_fen", "paid_out_fen", "new_members", "new_distributors",
                "links_shared", "visits", "bindings")


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> DateRange:
        """The range of equal length that ends the day before this one starts."""
        return DateRange(self.start - timedelta(days=self.days),
                         self.start - timedelta(days=1))

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]


def date_range(*, merchant_id: int, start: date | None, end: date | None,
               now: datetime) -> DateRange:
    """The range asked for, checked: ``to`` defaults to the merchant's today, ``from`` to 30
    days before ``to``; ``from`` ≤ ``to``; at most 366 days."""
    end = end or business_date(now, timezone=_timezone(merchant_id))
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise InvalidInput(errors={"from": ["Must not be after to."]})
    span = DateRange(start, end)
    if span.days > MAX_RANGE_DAYS:
        raise InvalidInput(errors={"to": [f"A range is at most {MAX_RANGE_DAYS} days."]})
    return span


def month_range(period: str) -> DateRange:
    """The business days of a period ``YYYY-MM``."""
    try:
        if len(period) != 7 or period[4] != "-":
            raise ValueError(period)
        first = date(int(period[:4]), int(period[5:]), 1)
    except ValueError:
        raise InvalidInput(errors={"period": ["Use YYYY-MM."]}) from None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return DateRange(first, following - timedelta(days=1))


def current_period(*, merchant_id: int, now: datetime) -> str:
    return business_date(now, timezone=_timezone(merchant_id)).strftime("%Y-%m")


def _timezone(merchant_id: int) -> str:
    return db.session.get(Merchant, merchant_id).timezone


# -- the dashboard -----------------------------------------------------------------------------

def dashboard(*, merchant_id: int, span: DateRange, redis_client: redis_lib.Redis | None = None,
              exact: bool = False) -> dict:
    """The range's figures, the previous range's, the change of each, and the daily series
    (every day of the range, zeros included).

    Paying buyers and active distributors are distinct over each range: from the day
    HyperLogLogs (``distinct_source: hyperloglog``, about 0.8% error on large counts), or
    exactly from the member-day rows (``sql``) when asked (``exact``), without Redis, or when
    a day's counter is missing."""
    previous = span.previous()
    rows = {row.day: row for row in db.session.scalars(select(DailyStat).where(
        DailyStat.merchant_id == merchant_id, DailyStat.day.between(previous.start, span.end)))}
    distinct, source = _distinct_counts(merchant_id, span, rows,
                                        None if exact else redis_client)
    current = _figures(rows, span, **{name: pair[0] for name, pair in distinct.items()})
    before = _figures(rows, previous, **{name: pair[1] for name, pair in distinct.items()})
    return {"from": span.start, "to": span.end, "days": span.days, "current": current,
            "previous": {"from": previous.start, "to": previous.end, **before},
            "change": {name: _change(current[name], before[name]) for name in current},
            "series": [{"day": day, **_day_figures(rows.get(day))} for day in span.each_day()],
            "distinct_source": source}


def _day_figures(row: DailyStat | None) -> dict:
    return {name: getattr(row, name) if row is not None else 0 for name in DAILY_FIELDS}


def _figures(rows: dict, span: DateRange, *, paying_buyers: int,
             active_distributors: int) -> dict:
    totals = dict.fromkeys(DAILY_FIELDS, 0)
    for day in span.each_day():
        if day in rows:
            for name in DAILY_FIELDS:
                totals[name] += getattr(rows[day], name)
    # Average order value: GMV per paid order, floored to the fen.
    average = totals["gmv_fen"] // totals["orders_paid"] if totals["orders_paid"] else 0
    return {**totals, "paying_buyers": paying_buyers, "average_order_fen": average,
            "active_distributors": active_distributors}


def _change(now: int, before: int) -> dict:
    """The difference, and its share of the earlier figure in basis points (floored; None
    when the earlier figure was zero)."""
    return {"delta": now - before,
            "change_bps": (now - before) * 10_000 // before if before else None}


def _distinct_counts(merchant_id: int, span: DateRange, rows: dict,
                     client: redis_lib.Redis | None) -> tuple[dict, str]:
    """{figure: (this range, previous range)} and where the counts came from."""
    if client is not None:
        counted = _counted(client, merchant_id, span, rows)
        if counted is not None:
            return counted, "hyperloglog"
    previous = span.previous()
    return {"paying_buyers": _distinct_per_range(DailyBuyer, merchant_id, span, previous),
            "active_distributors": _distinct_per_range(
                DailyMemberStat, merchant_id, span, previous,
                or_(DailyMemberStat.referred_orders > 0, DailyMemberStat.links_shared > 0,
                    DailyMemberStat.visits > 0))}, "sql"


def _counted(client: redis_lib.Redis, merchant_id: int, span: DateRange,
             rows: dict) -> dict | None:
    """From the HyperLogLogs of every day that counted someone (a paid order, a link, a
    visit); None when Redis cannot answer or lost a day's counter."""
    days = [day for day, row in rows.items() if row.orders_paid or row.links_shared
            or row.visits]
    if not member_counters.all_exist(client, [
            name for kind in member_counters.KINDS
            for name in member_counters.keys(merchant_id, days, kind)]):
        return None
    counted = {}
    for figure, kind in (("paying_buyers", "buyers"), ("active_distributors", "distributors")):
        pair = tuple(member_counters.union_count(client, member_counters.keys(
            merchant_id, [day for day in days if part.start <= day <= part.end], kind))
            for part in (span, span.previous()))
        if None in pair:
            return None
        counted[figure] = pair
    return counted


def _distinct_per_range(model, merchant_id: int, span: DateRange, previous: DateRange,
                        *conditions) -> tuple[int, int]:
    """Distinct members with a row in each range, both counted in one pass over the rows."""
    per_member = (select(model.member_id,
                         func.max(case((model.day >= span.start, 1), else_=0)).label("now"),
                         func.max(case((model.day < span.start, 1), else_=0)).label("before"))
                  .where(model.merchant_id == merchant_id,
                         model.day.between(previous.start, span.end), *conditions)
                  .group_by(model.member_id).subquery())
    now, before = db.session.execute(select(func.coalesce(func.sum(per_member.c.now), 0),
                                            func.coalesce(func.sum(per_member.c.before), 0))
                                     ).one()
    return int(now), int(before)


def rebuild_member_counters(client: redis_lib.Redis, *, merchant_id: int,
                            span: DateRange) -> int:
    """Count again, from SQL, every day's paying buyers and active distributors into the
    HyperLogLogs (after a Redis outage or loss); adding a member twice changes nothing.
    Returns the days written."""
    counted: dict = {}
    for day, member_id in db.session.execute(select(DailyBuyer.day, DailyBuyer.member_id).where(
            DailyBuyer.merchant_id == merchant_id, DailyBuyer.day.between(span.start, span.end))):
        counted.setdefault((merchant_id, day), {"buyers": set(), "distributors": set()})[
            "buyers"].add(member_id)
    active = or_(DailyMemberStat.referred_orders > 0, DailyMemberStat.links_shared > 0,
                 DailyMemberStat.visits > 0)
    for day, member_id in db.session.execute(
            select(DailyMemberStat.day, DailyMemberStat.member_id).where(
                DailyMemberStat.merchant_id == merchant_id, active,
                DailyMemberStat.day.between(span.start, span.end))):
        counted.setdefault((merchant_id, day), {"buyers": set(), "distributors": set()})[
            "distributors"].add(member_id)
    db.session.rollback()
    days = sorted(counted)
    for start in range(0, len(days), 31):  # a month of days per pipeline
        member_counters.add(client, {key: counted[key] for key in days[start:start + 31]})
    return len(days)
