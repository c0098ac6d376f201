"""Statistics and reports in the console: the dashboard, the funnel, rankings, consumer
analysis, performance per distributor and team views. Every staff role may read them; all are
scoped to the signed-in merchant and read the rollups, never raw orders."""

from __future__ import annotations

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.api.json_fields import ID
from app.api.member_views import MemberOut, TeamMemberOut, member_dict
from app.api.pagination import PageArgs, page_body, page_of
from app.database import utcnow
from app.extensions import redis
from app.models.order import ORDER_STATUSES
from app.security import console_login_required
from app.services import members as member_service
from app.services import stats, stats_consumers, stats_distributors, stats_teams
from app.services.stats import DAILY_FIELDS
from app.services.stats_distributors import MEMBER_FIELDS, RANKING_MEASURES

blp = Blueprint("console_stats", __name__, url_prefix="/api/console/v1",
                description="Statistics and reports")
BEARER = [{"bearerAuth": []}]
PERIOD = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="Use YYYY-MM.")


class RangeArgs(Schema):
    start = fields.Date(data_key="from", metadata={"description": "first business day "
                                                   "(default: 29 days before `to`)"})
    end = fields.Date(data_key="to", metadata={"description": "last business day, inclusive "
                                               "(default: the merchant's today)"})


class DashboardArgs(RangeArgs):
    exact = fields.Boolean(load_default=False, metadata={
        "description": "count paying buyers and active distributors exactly in SQL instead "
                       "of from the HyperLogLogs (slower on large ranges)"})


class FunnelArgs(RangeArgs):
    distributor_id = fields.Integer(validate=ID)


class PerformanceArgs(RangeArgs, PageArgs):
    distributor_id = fields.Integer(validate=ID)


class RankingArgs(Schema):
    period = fields.String(validate=PERIOD, metadata={"description": "YYYY-MM (default: the "
                                                       "merchant's current month)"})
    by = fields.String(load_default="sales", validate=validate.OneOf(RANKING_MEASURES))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class TeamOrderArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))


def _integers(name: str, names) -> type[Schema]:
    return type(name, (Schema,), {n: fields.Integer() for n in names})


DayOut = type("StatsDayOut", (_integers("StatsDayFigures", DAILY_FIELDS),),
              {"day": fields.Date()})
FiguresOut = _integers("DashboardFiguresOut", (*DAILY_FIELDS, "paying_buyers",
                                               "average_order_fen", "active_distributors"))


class PreviousOut(FiguresOut):
    start = fields.Date(data_key="from", attribute="from")
    end = fields.Date(data_key="to", attribute="to")


class ChangeOut(Schema):
    delta = fields.Integer()
    change_bps = fields.Integer(allow_none=True, metadata={
        "description": "delta / previous in basis points, floored; null when previous is 0"})


class DashboardOut(Schema):
    start = fields.Date(data_key="from", attribute="from")
    end = fields.Date(data_key="to", attribute="to")
    days = fields.Integer()
    current = fields.Nested(FiguresOut)
    previous = fields.Nested(PreviousOut)
    change = fields.Dict(keys=fields.String(), values=fields.Nested(ChangeOut))
    series = fields.List(fields.Nested(DayOut))
    distinct_source = fields.String(metadata={
        "description": "hyperloglog (about 0.8% error on large counts) | sql (exact)"})


class StepOut(Schema):
    step = fields.String()
    value = fields.Integer(allow_none=True)
    conversion_bps = fields.Integer(allow_none=True)


class FunnelOut(Schema):
    start = fields.Date(data_key="from", attribute="from")
    end = fields.Date(data_key="to", attribute="to")
    distributor_id = fields.Integer(allow_none=True)
    unique_visitors_source = fields.String(metadata={"description": "hyperloglog | visits"})
    unique_visitors_all_time = fields.Integer(allow_none=True)
    steps = fields.List(fields.Nested(StepOut))


class RankOut(Schema):
    rank = fields.Integer()
    member_id = fields.Integer()
    nickname = fields.String()
    value = fields.Integer()


class RankingOut(Schema):
    period = fields.String()
    measure = fields.String()
    source = fields.String(metadata={"description": "redis | sql"})
    items = fields.List(fields.Nested(RankOut))


PerformanceOut = type("PerformanceOut", (_integers("PerformanceFigures", MEMBER_FIELDS),),
                      {"member_id": fields.Integer(), "nickname": fields.String()})


class RegionOut(Schema):
    province = fields.String()
    city = fields.String()
    buyers = fields.Integer()


class HourOut(Schema):
    hour = fields.Integer()
    orders_paid = fields.Integer()
    gmv_fen = fields.Integer()


class WeekdayOut(Schema):
    weekday = fields.String()
    orders_paid = fields.Integer()
    gmv_fen = fields.Integer()


class ConsumersOut(_integers("ConsumerTotals", ("buyers", "new_buyers", "returning_buyers",
                                                "repeat_buyers", "orders_paid",
                                                "repeat_rate_bps"))):
    start = fields.Date(data_key="from", attribute="from")
    end = fields.Date(data_key="to", attribute="to")
    by_region = fields.List(fields.Nested(RegionOut))
    by_hour = fields.List(fields.Nested(HourOut))
    by_weekday = fields.List(fields.Nested(WeekdayOut))
    by_gender = fields.List(fields.Dict())
    by_age_band = fields.List(fields.Dict())


class LevelOut(Schema):
    id = fields.Integer()
    name = fields.String()


class TeamViewOut(MemberOut):
    level = fields.Nested(LevelOut, allow_none=True)
    wallet = fields.Dict(keys=fields.String(), values=fields.Integer())
    direct = fields.Nested(page_of(TeamMemberOut))


class TeamOrderOut(Schema):
    id = fields.Integer()
    out_trade_no = fields.String()
    status = fields.String()
    buyer_member_id = fields.Integer()
    buyer_nickname = fields.String()
    team_level = fields.Integer(metadata={"description": "1: a direct member's order"})
    paid_fen = fields.Integer()
    refunded_fen = fields.Integer()
    shipment_status = fields.String(metadata={
        "description": "unpaid | awaiting_shipment | shipped | received"})
    carrier = fields.String()
    tracking_no = fields.String()
    created_at = fields.DateTime()
    paid_at = fields.DateTime(allow_none=True)
    shipped_at = fields.DateTime(allow_none=True)
    received_at = fields.DateTime(allow_none=True)


def _span(args: dict) -> stats.DateRange:
    return stats.date_range(merchant_id=g.merchant_id, start=args.get("start"),
                            end=args.get("end"), now=utcnow())


@blp.route("/dashboard", methods=["GET"])
@console_login_required()
@blp.arguments(DashboardArgs, location="query")
@blp.response(200, DashboardOut)
@blp.doc(security=BEARER)
def dashboard(args):
    """The range's figures beside the previous range of equal length, with the daily series.
    At most 366 days; ``from`` must not be after ``to``."""
    return stats.dashboard(merchant_id=g.merchant_id, span=_span(args),
                           redis_client=redis.client, exact=args["exact"])


@blp.route("/stats/funnel", methods=["GET"])
@console_login_required()
@blp.arguments(FunnelArgs, location="query")
@blp.response(200, FunnelOut)
@blp.doc(security=BEARER)
def funnel(args):
    """Links shared → visits → unique visitors → bindings → orders → paid → commission
    settled; with ``distributor_id``, that distributor's own (orders created are not counted
    per distributor: ``orders`` is null, ``paid`` counts the orders it referred)."""
    return stats_distributors.funnel(merchant_id=g.merchant_id, span=_span(args),
                                     redis_client=redis.client,
                                     distributor_id=args.get("distributor_id"))


@blp.route("/stats/rankings", methods=["GET"])
@console_login_required()
@blp.arguments(RankingArgs, location="query")
@blp.response(200, RankingOut)
@blp.doc(security=BEARER)
def rankings(args):
    """Distributors of a month by tier-1 sales, by commission (net of reversals) or by new
    direct members."""
    period = args.get("period") or stats.current_period(merchant_id=g.merchant_id,
                                                        now=utcnow())
    return stats_distributors.rankings(merchant_id=g.merchant_id, period=period, measure=args["by"],
                          limit=args["limit"], redis_client=redis.client)


@blp.route("/stats/consumers", methods=["GET"])
@console_login_required()
@blp.arguments(RangeArgs, location="query")
@blp.response(200, ConsumersOut)
@blp.doc(security=BEARER)
def consumers(args):
    """Buyers by region, hour, weekday, gender and age band; new, returning and repeat."""
    return stats_consumers.consumer_analysis(merchant_id=g.merchant_id, span=_span(args))


@blp.route("/stats/performance", methods=["GET"])
@console_login_required()
@blp.arguments(PerformanceArgs, location="query")
@blp.response(200, page_of(PerformanceOut))
@blp.doc(security=BEARER)
def performance(args):
    """Each distributor's figures for the range, best tier-1 sales first."""
    items, total = stats_distributors.performance(merchant_id=g.merchant_id, span=_span(args),
                                     page=args["page"], per_page=args["per_page"],
                                     distributor_id=args.get("distributor_id"))
    return page_body(items, total, args)


@blp.route("/stats/teams/<int:member_id>", methods=["GET"])
@console_login_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, TeamViewOut)
@blp.doc(security=BEARER)
def team_view(args, member_id):
    """A member's page: counters, level, wallet, and a page of direct members (each with its
    own team size: open one to go a level down)."""
    view = stats_teams.team_member(merchant_id=g.merchant_id, member_id=member_id,
                                   redis_client=redis.client)
    rows, total = member_service.list_members(merchant_id=g.merchant_id, page=args["page"],
                                              per_page=args["per_page"], direct_of=member_id)
    return {**member_dict(*view["member"]), "level": view["level"], "wallet": view["wallet"],
            "direct": page_body([member_dict(m, u) for m, u in rows], total, args)}


@blp.route("/stats/teams/<int:member_id>/orders", methods=["GET"])
@console_login_required()
@blp.arguments(TeamOrderArgs, location="query")
@blp.response(200, page_of(TeamOrderOut))
@blp.doc(security=BEARER)
def team_orders(args, member_id):
    """Orders of the member's whole team (not the member's own), newest first, with
    shipment status."""
    rows, total = stats_teams.team_orders(merchant_id=g.merchant_id, member_id=member_id,
                                          page=args["page"], per_page=args["per_page"],
                                          status=args.get("status"))
    return page_body([{**_order_fields(row["order"]), **{k: v for k, v in row.items()
                                                         if k != "order"}}
                      for row in rows], total, args)


def _order_fields(order) -> dict:
    return {name: getattr(order, name) for name in (
        "id", "out_trade_no", "status", "buyer_member_id", "paid_fen", "refunded_fen",
        "carrier", "tracking_no", "created_at", "paid_at", "shipped_at", "received_at")}
