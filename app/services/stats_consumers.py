"""Consumer analysis for the console (DOMAIN.md, Statistics and reports): who buys, where,
when, new or returning — from the rollups (``daily_buyers``, ``hourly_stats``,
``daily_stats``), and the buyers' own profile (gender, birth year) where they gave it.

Buyers are members who paid for an order in the range (a refund does not undo a purchase). A
buyer is counted once per region they had goods shipped to in the range, so regions can add up
to more than the buyers.
"""

from __future__ import annotations

from sqlalchemy import case, func, select

from app.extensions import db
from app.models import DailyBuyer, DailyStat, HourlyStat, Member, User
from app.services.stats import DateRange

GENDERS = {0: "unknown", 1: "male", 2: "female"}  # WeChat's codes
# (lowest age, name): a band runs up to the next band's lowest age.
AGE_BANDS = ((0, "under_18"), (18, "18_24"), (25, "25_34"), (35, "35_44"), (45, "45_54"),
             (55, "55_plus"))
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def consumer_analysis(*, merchant_id: int, span: DateRange) -> dict:
    buyers = _buyers(merchant_id, span)
    return {"from": span.start, "to": span.end, **_totals(buyers),
            "by_region": _by_region(merchant_id, span),
            "by_hour": _by_hour(merchant_id, span),
            "by_weekday": _by_weekday(merchant_id, span),
            "by_gender": _by_gender(merchant_id, buyers),
            "by_age_band": _by_age_band(merchant_id, buyers, year=span.end.year)}


def _buyers(merchant_id: int, span: DateRange):
    """One row per buyer of the range: paid orders, and whether their first purchase ever
    fell in the range."""
    first = case((DailyBuyer.first_purchase.is_(True), 1), else_=0)
    return (select(DailyBuyer.member_id, func.sum(DailyBuyer.orders).label("orders"),
                   func.max(first).label("first_in_range"))
            .where(DailyBuyer.merchant_id == merchant_id,
                   DailyBuyer.day.between(span.start, span.end))
            .group_by(DailyBuyer.member_id).subquery())


def _totals(buyers) -> dict:
    """New buyers bought for the first time ever in the range; returning buyers had bought
    before it; repeat buyers paid for two orders or more in the range."""
    count, new, repeat, orders = db.session.execute(select(
        func.count(), func.coalesce(func.sum(buyers.c.first_in_range), 0),
        func.coalesce(func.sum(case((buyers.c.orders >= 2, 1), else_=0)), 0),
        func.coalesce(func.sum(buyers.c.orders), 0))).one()
    count, new, repeat = int(count), int(new), int(repeat)
    return {"buyers": count, "new_buyers": new, "returning_buyers": count - new,
            "repeat_buyers": repeat, "orders_paid": int(orders),
            "repeat_rate_bps": repeat * 10_000 // count if count else 0}


def _by_region(merchant_id: int, span: DateRange) -> list[dict]:
    buyers = func.count(func.distinct(DailyBuyer.member_id))
    rows = db.session.execute(
        select(DailyBuyer.province, DailyBuyer.city, buyers)
        .where(DailyBuyer.merchant_id == merchant_id,
               DailyBuyer.day.between(span.start, span.end))
        .group_by(DailyBuyer.province, DailyBuyer.city)
        .order_by(buyers.desc(), DailyBuyer.province, DailyBuyer.city))
    return [{"province": province, "city": city, "buyers": count}
            for province, city, count in rows]


def _by_hour(merchant_id: int, span: DateRange) -> list[dict]:
    """Paid orders by the merchant's hour of day (every hour, zeros included)."""
    rows = {hour: (orders, gmv) for hour, orders, gmv in db.session.execute(
        select(HourlyStat.hour, func.sum(HourlyStat.orders_paid), func.sum(HourlyStat.gmv_fen))
        .where(HourlyStat.merchant_id == merchant_id,
               HourlyStat.day.between(span.start, span.end))
        .group_by(HourlyStat.hour))}
    return [{"hour": hour, "orders_paid": int(rows.get(hour, (0, 0))[0]),
             "gmv_fen": int(rows.get(hour, (0, 0))[1])} for hour in range(24)]


def _by_weekday(merchant_id: int, span: DateRange) -> list[dict]:
    totals = {name: [0, 0] for name in WEEKDAYS}
    for day, orders, gmv in db.session.execute(
            select(DailyStat.day, DailyStat.orders_paid, DailyStat.gmv_fen)
            .where(DailyStat.merchant_id == merchant_id,
                   DailyStat.day.between(span.start, span.end))):
        totals[WEEKDAYS[day.weekday()]][0] += orders
        totals[WEEKDAYS[day.weekday()]][1] += gmv
    return [{"weekday": name, "orders_paid": orders, "gmv_fen": gmv}
            for name, (orders, gmv) in totals.items()]


def _profiles(merchant_id: int, buyers, column):
    return (select(column, func.count()).select_from(buyers)
            .join(Member, (Member.merchant_id == merchant_id)
                  & (Member.id == buyers.c.member_id))
            .join(User, User.id == Member.user_id).group_by(column))


def _by_gender(merchant_id: int, buyers) -> list[dict]:
    counts = dict.fromkeys(GENDERS.values(), 0)
    for gender, count in db.session.execute(_profiles(merchant_id, buyers, User.gender)):
        counts[GENDERS.get(gender, "unknown")] += count
    return [{"gender": name, "buyers": count} for name, count in counts.items()]


def _by_age_band(merchant_id: int, buyers, *, year: int) -> list[dict]:
    """Age as the range's last year less the birth year; ``unknown`` without a birth year."""
    counts = dict.fromkeys([name for _, name in AGE_BANDS] + ["unknown"], 0)
    for birth_year, count in db.session.execute(
            _profiles(merchant_id, buyers, User.birth_year)):
        counts[age_band(year - birth_year) if birth_year else "unknown"] += count
    return [{"age_band": name, "buyers": count} for name, count in counts.items()]


def age_band(age: int) -> str:
    return next((name for lowest, name in reversed(AGE_BANDS) if age >= lowest), "unknown")
