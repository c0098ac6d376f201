"""The dashboard (the console's first page): the range's figures against the previous
range, daily charts, the funnel, and this month's rankings."""

from __future__ import annotations

from datetime import date

from flask import g, render_template, request

from app.console import charts
from app.console.pages import bp
from app.console.session import staff_page
from app.database import utcnow
from app.errors import InvalidInput
from app.extensions import redis
from app.services import stats, stats_distributors

FIGURES = (("gmv_fen", "成交额", "fen"), ("orders_paid", "支付订单", "count"),
           ("paying_buyers", "付款人数", "count"), ("average_order_fen", "客单价", "fen"),
           ("refunded_fen", "退款金额", "fen"), ("commission_accrued_fen", "产生佣金", "fen"),
           ("commission_settled_fen", "结算佣金", "fen"),
           ("commission_reversed_fen", "冲回佣金", "fen"), ("paid_out_fen", "提现打款", "fen"),
           ("new_members", "新会员", "count"), ("new_distributors", "新分销员", "count"),
           ("active_distributors", "活跃分销员", "count"))
FUNNEL_STEPS = {"links_shared": "分享次数", "visits": "访问次数", "unique_visitors": "访客人数",
                "bindings": "新绑定", "orders": "下单", "paid": "支付订单"}
# (measure, title, unit): this month's top 10 of each, as the console API ranks them.
RANKINGS = (("sales", "销售额", "fen"), ("commission", "佣金", "fen"),
            ("new_members", "新增直属", "count"))
RANKING_SIZE = 10


def day_arg(name: str) -> date | None:
    """A ``YYYY-MM-DD`` query argument; absent is None, anything else is refused by name."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(errors={name: ["请用 YYYY-MM-DD 格式。"]}) from None


def span_of_request() -> stats.DateRange:
    return stats.date_range(merchant_id=g.merchant_id, start=day_arg("from"),
                            end=day_arg("to"), now=utcnow())


@bp.route("/dashboard")
@staff_page()
def dashboard():
    span = span_of_request()
    board = stats.dashboard(merchant_id=g.merchant_id, span=span, redis_client=redis.client)
    days = [row["day"].strftime("%m-%d") for row in board["series"]]
    gmv_chart = charts.daily_line("每日成交额（元）", days, {
        "成交额": [row["gmv_fen"] // 100 for row in board["series"]],
        "退款": [row["refunded_fen"] // 100 for row in board["series"]]})
    orders_chart = charts.daily_line("每日订单与新会员", days, {
        "支付订单": [row["orders_paid"] for row in board["series"]],
        "新会员": [row["new_members"] for row in board["series"]]})
    return render_template("console/dashboard.html", board=board, figures=FIGURES,
                           charts=[gmv_chart, orders_chart], funnel=_funnel(span),
                           **_rankings())


def _funnel(span: stats.DateRange) -> dict:
    """The range's funnel: its steps (labelled), the chart of the counted ones, and the
    commission settled (money, beside the chart rather than a bar among counts)."""
    body = stats_distributors.funnel(merchant_id=g.merchant_id, span=span,
                                     redis_client=redis.client)
    steps = [{**step, "label": FUNNEL_STEPS[step["step"]]} for step in body["steps"]
             if step["step"] in FUNNEL_STEPS]
    settled = next(s["value"] for s in body["steps"] if s["step"] == "commission_settled_fen")
    # pygal draws the first bar at the bottom: reversed, the funnel reads from the top.
    chart = charts.funnel("转化漏斗", [(step["label"], step["value"] or 0)
                                      for step in reversed(steps)])
    return {"steps": steps, "settled_fen": settled, "chart": chart}


def _rankings() -> dict:
    period = stats.current_period(merchant_id=g.merchant_id, now=utcnow())
    return {"period": period, "rankings": [
        {"title": title, "unit": unit, "items": stats_distributors.rankings(
            merchant_id=g.merchant_id, period=period, measure=measure, limit=RANKING_SIZE,
            redis_client=redis.client)["items"]}
        for measure, title, unit in RANKINGS]}
