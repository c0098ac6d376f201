"""The dashboard (the console's first page): the range's figures against the previous
range, and daily charts."""

from __future__ import annotations

from datetime import date

from flask import g, render_template, request

from app.console import charts
from app.console.pages import bp
from app.console.session import staff_page
from app.database import utcnow
from app.errors import InvalidInput
from app.extensions import redis
from app.services import stats

FIGURES = (("gmv_fen", "成交额", "fen"), ("orders_paid", "支付订单", "count"),
           ("paying_buyers", "付款人数", "count"), ("average_order_fen", "客单价", "fen"),
           ("refunded_fen", "退款金额", "fen"), ("commission_accrued_fen", "产生佣金", "fen"),
           ("commission_settled_fen", "结算佣金", "fen"),
           ("commission_reversed_fen", "冲回佣金", "fen"), ("paid_out_fen", "提现打款", "fen"),
           ("new_members", "新会员", "count"), ("new_distributors", "新分销员", "count"),
           ("active_distributors", "活跃分销员", "count"))


def _day(name: str) -> date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(errors={name: ["请用 YYYY-MM-DD 格式。"]}) from None


@bp.route("/dashboard")
@staff_page()
def dashboard():
    span = stats.date_range(merchant_id=g.merchant_id, start=_day("from"), end=_day("to"),
                            now=utcnow())
    board = stats.dashboard(merchant_id=g.merchant_id, span=span, redis_client=redis.client)
    days = [row["day"].strftime("%m-%d") for row in board["series"]]
    gmv_chart = charts.daily_line("每日成交额（元）", days, {
        "成交额": [row["gmv_fen"] // 100 for row in board["series"]],
        "退款": [row["refunded_fen"] // 100 for row in board["series"]]})
    orders_chart = charts.daily_line("每日订单与新会员", days, {
        "支付订单": [row["orders_paid"] for row in board["series"]],
        "新会员": [row["new_members"] for row in board["series"]]})
    return render_template("console/dashboard.html", board=board, figures=FIGURES,
                           charts=[gmv_chart, orders_chart])
