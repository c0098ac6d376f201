"""Statistics per distributor for the console: the funnel (overall and per distributor),
rankings for a month, and performance for a range (DOMAIN.md, Statistics and reports) — from
the rollups (``daily_stats``, ``daily_member_stats``), the Redis rankings the wallet mirror
keeps, and the unique-visitor HyperLogLogs."""

from __future__ import annotations

import redis as redis_lib
from sqlalchemy import func, or_, select

from app.extensions import db
from app.integrations import redis_keys, visit_counters, wallet_mirror
from app.models import DailyMemberStat, DailyStat, Member, PeriodTotal, User
from app.services.scoping import get_scoped
from app.services.stats import DateRange, month_range

RANKING_MEASURES = ("sales", "commission", "new_members")


# -- the funnel --------------------------------------------------------------------------------

def funnel(*, merchant_id: int, span: DateRange, redis_client: redis_lib.Redis,
           distributor_id: int | None = None) -> dict:
    """Links shared → visits → bindings → orders → paid → commission settled, overall or for
    one distributor (its links, its visits, members bound to it, orders it referred as tier 1,
    commission it had settled)."""
    if distributor_id is not None:
        return _distributor_funnel(merchant_id, distributor_id, span, redis_client)
    sums = db.session.execute(select(*(func.coalesce(func.sum(getattr(DailyStat, name)), 0)
                                       for name in ("links_shared", "visits", "bindings",
                                                    "orders_created", "orders_paid",
                                                    "commission_settled_fen")))
                              .where(DailyStat.merchant_id == merchant_id,
                                     DailyStat.day.between(span.start, span.end))).one()
    links, visits, bindings, created, paid, settled = (int(value) for value in sums)
    unique = _unique_visitors_of_days(redis_client, merchant_id, span)
    return _funnel_body(span, links=links, visits=visits, unique_visitors=unique,
                        bindings=bindings, orders=created, paid=paid, settled_fen=settled,
                        distributor_id=None, unique_source="hyperloglog" if unique is not None
                        else "visits")


def _distributor_funnel(merchant_id: int, distributor_id: int, span: DateRange,
                        redis_client: redis_lib.Redis) -> dict:
    get_scoped(Member, merchant_id=merchant_id, id=distributor_id, what="distributor")
    sums = _member_sums(merchant_id, span, member_id=distributor_id)
    row = sums[0] if sums else {}
    lifetime = visit_counters.unique_visitors(
        redis_client, redis_keys.unique_visitors_of_distributor(merchant_id, distributor_id))
    body = _funnel_body(span, links=row.get("links_shared", 0), visits=row.get("visits", 0),
                        unique_visitors=None, bindings=row.get("new_direct_members", 0),
                        orders=None, paid=row.get("referred_orders", 0),
                        settled_fen=row.get("commission_settled_fen", 0),
                        distributor_id=distributor_id, unique_source="visits")
    body["unique_visitors_all_time"] = lifetime
    return body


def _funnel_body(span: DateRange, *, links: int, visits: int, unique_visitors: int | None,
                 bindings: int, orders: int | None, paid: int, settled_fen: int,
                 distributor_id: int | None, unique_source: str) -> dict:
    counted = [("links_shared", links), ("visits", visits),
               ("unique_visitors", unique_visitors if unique_visitors is not None else visits),
               ("bindings", bindings), ("orders", orders), ("paid", paid)]
    steps, before = [], None
    for name, value in counted:
        conversion = value * 10_000 // before if before and value is not None else None
        steps.append({"step": name, "value": value, "conversion_bps": conversion})
        before = value if value is not None else before
    steps.append({"step": "commission_settled_fen", "value": settled_fen,
                  "conversion_bps": None})
    return {"from": span.start, "to": span.end, "distributor_id": distributor_id,
            "unique_visitors_source": unique_source, "steps": steps}


def _unique_visitors_of_days(client: redis_lib.Redis, merchant_id: int,
                             span: DateRange) -> int | None:
    """Distinct visitors over the range: PFCOUNT of the days' HyperLogLogs (their union), or
    None when Redis cannot say or lost (or expired) the counter of a day with visits — the
    funnel then shows visits."""
    days = db.session.scalars(select(DailyStat.day).where(
        DailyStat.merchant_id == merchant_id, DailyStat.day.between(span.start, span.end),
        DailyStat.visits > 0)).all()
    keys = [redis_keys.unique_visitors_of_day(merchant_id, day) for day in days]
    if not keys:
        return 0
    try:
        if int(client.exists(*keys)) < len(keys):
            return None
        return int(client.pfcount(*keys))
    except redis_lib.RedisError:
        return None


# -- per member sums: the funnel of one distributor, performance, rankings ---------------------

MEMBER_FIELDS = ("purchases", "spent_fen", "referred_orders", "direct_sales_fen",
                 "commission_fen", "commission_settled_fen", "new_direct_members",
                 "links_shared", "visits", "refunded_orders")
DISTRIBUTOR_FIELDS = ("referred_orders", "direct_sales_fen", "commission_fen",
                      "commission_settled_fen", "new_direct_members", "links_shared", "visits")


def _member_query(merchant_id: int, span: DateRange, member_id: int | None):
    sums = [func.sum(getattr(DailyMemberStat, name)).label(name) for name in MEMBER_FIELDS]
    query = (select(DailyMemberStat.member_id, *sums)
             .where(DailyMemberStat.merchant_id == merchant_id,
                    DailyMemberStat.day.between(span.start, span.end))
             .group_by(DailyMemberStat.member_id))
    if member_id is not None:
        query = query.where(DailyMemberStat.member_id == member_id)
    return query


def _member_sums(merchant_id: int, span: DateRange, *, member_id: int | None = None,
                 order_by: str = "direct_sales_fen", limit: int | None = None,
                 offset: int = 0, having=None) -> list[dict]:
    query = _member_query(merchant_id, span, member_id)
    if having is not None:
        query = query.having(having)
    query = query.order_by(func.sum(getattr(DailyMemberStat, order_by)).desc(),
                           DailyMemberStat.member_id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [{"member_id": row.member_id, **{name: int(getattr(row, name)) for name in
                                            MEMBER_FIELDS}}
            for row in db.session.execute(query)]


# -- rankings ----------------------------------------------------------------------------------

def rankings(*, merchant_id: int, period: str, measure: str, limit: int,
             redis_client: redis_lib.Redis) -> dict:
    """The period's best distributors by ``measure``, members with nothing to show left out.

    ``sales`` and ``commission`` come from the Redis sorted sets the wallet mirror keeps
    (``source: redis``), or from their SQL truth, ``period_totals``, when Redis is down or
    holds nothing for the period (``source: sql``). ``new_members`` sums the members' daily
    new direct members over the period's days."""
    span = month_range(period)
    source, rows = "sql", None
    if measure == "new_members":
        rows = [(r["member_id"], r["new_direct_members"]) for r in _member_sums(
            merchant_id, span, order_by="new_direct_members", limit=limit,
            having=func.sum(DailyMemberStat.new_direct_members) > 0)]
    else:
        rows = wallet_mirror.top(redis_client, merchant_id, period, measure, limit)
        source = "redis" if rows else "sql"
        rows = rows or _period_totals(merchant_id, period, measure, limit)
    rows = [(member_id, value) for member_id, value in rows if value > 0]
    names = _nicknames(merchant_id, [member_id for member_id, _ in rows])
    return {"period": period, "measure": measure, "source": source,
            "items": [{"rank": n, "member_id": member_id, "nickname": names.get(member_id, ""),
                       "value": value} for n, (member_id, value) in enumerate(rows, start=1)]}


def _period_totals(merchant_id: int, period: str, measure: str,
                   limit: int) -> list[tuple[int, int]]:
    column = PeriodTotal.sales_fen if measure == "sales" else PeriodTotal.commission_fen
    return [(member_id, int(value)) for member_id, value in db.session.execute(
        select(PeriodTotal.member_id, column).where(
            PeriodTotal.merchant_id == merchant_id, PeriodTotal.period == period)
        .order_by(column.desc(), PeriodTotal.member_id).limit(limit))]


def _nicknames(merchant_id: int, member_ids: list[int]) -> dict[int, str]:
    if not member_ids:
        return {}
    return dict(db.session.execute(select(Member.id, User.nickname)
                                   .join(User, User.id == Member.user_id)
                                   .where(Member.merchant_id == merchant_id,
                                          Member.id.in_(member_ids))).all())


# -- performance per distributor ---------------------------------------------------------------

def performance(*, merchant_id: int, span: DateRange, page: int, per_page: int,
                distributor_id: int | None = None) -> tuple[list[dict], int]:
    """Each distributor's figures for the range, best sales first: members with something
    to show as a distributor (a referred order, commission, a new direct member, a link, a
    visit); their own purchases are shown beside."""
    having = or_(*(func.sum(getattr(DailyMemberStat, name)) != 0 for name in DISTRIBUTOR_FIELDS))
    total = db.session.scalar(select(func.count()).select_from(
        _member_query(merchant_id, span, distributor_id).having(having).subquery()))
    rows = _member_sums(merchant_id, span, member_id=distributor_id, limit=per_page,
                        offset=(page - 1) * per_page, having=having)
    names = _nicknames(merchant_id, [row["member_id"] for row in rows])
    return [{**row, "nickname": names.get(row["member_id"], "")} for row in rows], total
