"""Every dashboard, funnel and ranking figure, read from the rollups, against a direct query
over the raw tables (orders, refunds, commissions, journals and their entries, members,
visits, share links, binding logs, withdrawals) — on a fortnight of trade made through the
real services, with payments and refunds at midnight in Asia/Shanghai (stats_world.py)."""

from __future__ import annotations

import dataclasses

import pytest
import redis as redis_lib
from sqlalchemy import select, text

from app.extensions import db, redis
from app.integrations import redis_keys
from app.models import DailyBuyer, DailyMemberStat, DailyStat, HourlyStat
from app.services import stats, stats_consumers, stats_distributors, wallets
from app.services.stats import DAILY_FIELDS, DateRange
from tests.integration import stats_world
from tests.support.servers import free_port

pytestmark = pytest.mark.redis_topologies


def on_day(column: str) -> str:
    """The merchant's business date of a stored UTC moment."""
    return f"(({column}) AT TIME ZONE 'Asia/Shanghai')::date"


def in_range(column: str) -> str:
    return f"{on_day(column)} BETWEEN :start AND :end"


ENTRIES = ("FROM journals j JOIN ledger_entries e ON e.merchant_id = j.merchant_id "
           "AND e.journal_id = j.id JOIN ledger_accounts a ON a.merchant_id = e.merchant_id "
           "AND a.id = e.account_id ")
TIER_ONE = ("FROM orders o, json_array_elements(o.commission_snapshot -> 'beneficiaries') b "
            "WHERE o.merchant_id = :m AND (b ->> 'tier')::int = 1 AND o.paid_at IS NOT NULL ")
RAW = {
    "gmv_fen": "SELECT COALESCE(SUM(paid_fen), 0) FROM orders WHERE merchant_id = :m "
               f"AND paid_at IS NOT NULL AND {in_range('paid_at')}",
    "orders_paid": "SELECT COUNT(*) FROM orders WHERE merchant_id = :m "
                   f"AND paid_at IS NOT NULL AND {in_range('paid_at')}",
    "orders_created": f"SELECT COUNT(*) FROM orders WHERE merchant_id = :m "
                      f"AND {in_range('created_at')}",
    "orders_cancelled": f"SELECT COUNT(*) FROM orders WHERE merchant_id = :m "
                        f"AND {in_range('cancelled_at')}",
    "refunds": "SELECT COUNT(*) FROM refunds WHERE merchant_id = :m AND status = 'succeeded' "
               f"AND {in_range('finished_at')}",
    "refunded_fen": "SELECT COALESCE(SUM(amount_fen), 0) FROM refunds WHERE merchant_id = :m "
                    f"AND status = 'succeeded' AND {in_range('finished_at')}",
    # Accrued: what the accrual journals put in pending, on the day the order was paid.
    "commission_accrued_fen": f"SELECT COALESCE(SUM(e.amount_fen), 0) {ENTRIES}"
                              "JOIN orders o ON o.merchant_id = j.merchant_id "
                              "AND o.id = j.order_id WHERE j.merchant_id = :m "
                              "AND j.kind = 'accrual' AND a.kind = 'pending' "
                              f"AND {in_range('o.paid_at')}",
    "commission_settled_fen": f"SELECT COALESCE(SUM(e.amount_fen), 0) {ENTRIES}"
                              "JOIN commissions c ON c.merchant_id = j.merchant_id "
                              "AND j.idempotency_key = 'settle:commission:' || c.id "
                              "WHERE j.merchant_id = :m AND j.kind = 'settlement' "
                              f"AND a.kind = 'available' AND {in_range('c.settled_at')}",
    "commission_reversed_fen": f"SELECT COALESCE(-SUM(e.amount_fen), 0) {ENTRIES}"
                               "JOIN refunds r ON r.merchant_id = j.merchant_id "
                               "AND j.idempotency_key = 'reversal:refund:' || r.out_refund_no "
                               "WHERE j.merchant_id = :m AND j.kind = 'reversal' "
                               f"AND a.owner_id <> 0 AND {in_range('r.finished_at')}",
    "paid_out_fen": f"SELECT COALESCE(SUM(e.amount_fen), 0) {ENTRIES}"
                    "JOIN withdrawals w ON w.merchant_id = j.merchant_id "
                    "AND j.idempotency_key = 'payout:' || w.id "
                    "WHERE j.merchant_id = :m AND j.kind = 'payout' AND a.kind = 'paid_out' "
                    f"AND {in_range('w.finished_at')}",
    "new_members": f"SELECT COUNT(*) FROM members WHERE merchant_id = :m "
                   f"AND {in_range('created_at')}",
    "new_distributors": f"SELECT COUNT(*) FROM members WHERE merchant_id = :m "
                        f"AND {in_range('activated_at')}",
    "links_shared": f"SELECT COUNT(*) FROM share_links WHERE merchant_id = :m "
                    f"AND {in_range('created_at')}",
    "visits": f"SELECT COUNT(*) FROM visits WHERE merchant_id = :m AND {in_range('created_at')}",
    "bindings": "SELECT COUNT(*) FROM binding_logs WHERE merchant_id = :m "
                f"AND outcome IN ('bound', 'rebound', 'moved') AND {in_range('created_at')}",
    "paying_buyers": "SELECT COUNT(DISTINCT buyer_member_id) FROM orders WHERE merchant_id = :m "
                     f"AND paid_at IS NOT NULL AND {in_range('paid_at')}",
    # Active: shared a link, had a link opened, or referred a paid order (tier 1).
    "active_distributors": "SELECT COUNT(*) FROM ("
                           "SELECT distributor_id FROM share_links WHERE merchant_id = :m "
                           f"AND {in_range('created_at')} UNION "
                           "SELECT distributor_id FROM visits WHERE merchant_id = :m "
                           f"AND {in_range('created_at')} UNION "
                           f"SELECT (b ->> 'member_id')::bigint {TIER_ONE} "
                           f"AND {in_range('o.paid_at')}) active",
}


def raw(sql: str, **params) -> int:
    return int(db.session.scalar(text(sql), params))


def raw_figures(merchant_id: int, span: DateRange) -> dict:
    figures = {name: raw(sql, m=merchant_id, start=span.start, end=span.end)
               for name, sql in RAW.items()}
    paid = figures["orders_paid"]
    figures["average_order_fen"] = figures["gmv_fen"] // paid if paid else 0
    return figures


@pytest.fixture
def world(app_context, sandbox_url):
    from tests.factories import make_merchant

    return stats_world.build(make_merchant(name="鲜果小铺").id, sandbox_url)


def spans(world) -> list[DateRange]:
    d = world.day
    return [DateRange(d(1), world.today), DateRange(d(2), d(4)), DateRange(d(1), d(1)),
            DateRange(d(2), d(2)), DateRange(d(4), d(4)), DateRange(d(12), d(12)),
            DateRange(world.today, world.today), DateRange(d(3), d(13))]


# -- the dashboard -----------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["hyperloglog", "sql"])
def test_every_dashboard_figure_and_its_previous_range_match_the_raw_tables(world, source):
    for span in spans(world):
        board = stats.dashboard(merchant_id=world.merchant_id, span=span,
                                redis_client=redis.client, exact=source == "sql")
        expected, before = (raw_figures(world.merchant_id, span),
                            raw_figures(world.merchant_id, span.previous()))
        assert board["distinct_source"] == source
        assert board["current"] == expected, span
        assert {k: v for k, v in board["previous"].items() if k not in ("from", "to")} == \
            before, span
        assert board["change"]["gmv_fen"]["delta"] == expected["gmv_fen"] - before["gmv_fen"]


def test_a_day_whose_counter_redis_lost_is_counted_in_sql_and_can_be_rebuilt(world):
    span = DateRange(world.day(1), world.day(4))
    redis.client.delete(redis_keys.members_of_day(world.merchant_id, world.day(2), "buyers"))
    board = stats.dashboard(merchant_id=world.merchant_id, span=span,
                            redis_client=redis.client)
    assert board["distinct_source"] == "sql"
    assert board["current"]["paying_buyers"] == raw_figures(world.merchant_id, span)[
        "paying_buyers"] == 5
    redis.client.flushdb()
    assert stats.rebuild_member_counters(redis.client, merchant_id=world.merchant_id,
                                         span=DateRange(world.day(-30), world.today)) == 4
    # D1, D2 and D3 had paying buyers; today links were shared and opened.
    board = stats.dashboard(merchant_id=world.merchant_id, span=span,
                            redis_client=redis.client)
    assert (board["distinct_source"], board["current"]["paying_buyers"]) == ("hyperloglog", 5)
    assert board["current"] == raw_figures(world.merchant_id, span)


def test_the_daily_series_has_every_day_and_each_matches_the_raw_tables(world):
    span = DateRange(world.day(0), world.today)
    series = stats.dashboard(merchant_id=world.merchant_id, span=span)["series"]
    assert [point["day"] for point in series] == span.each_day()
    for point in series:
        day_figures = raw_figures(world.merchant_id, DateRange(point["day"], point["day"]))
        assert {name: point[name] for name in DAILY_FIELDS} == \
            {name: day_figures[name] for name in DAILY_FIELDS}, point["day"]


def test_orders_paid_a_second_either_side_of_shanghai_midnight_count_on_their_own_days(world):
    def day(n):
        return stats.dashboard(merchant_id=world.merchant_id,
                               span=DateRange(world.day(n), world.day(n)))["current"]

    # o1 paid at 23:59:59 on D1; o2 created on D1 but paid at 00:00:00 on D2.
    assert (day(1)["orders_paid"], day(1)["gmv_fen"], day(1)["orders_created"]) == \
        (1, 10_000, 2)
    assert (day(2)["orders_paid"], day(2)["gmv_fen"], day(2)["paying_buyers"]) == \
        (3, 40_000, 3)
    # o5 at noon and o6 at 23:59:59 on D3; o3's partial refund on D3, o4's at 00:00:00 on D4.
    assert (day(3)["orders_paid"], day(3)["refunds"], day(3)["refunded_fen"]) == (2, 1, 3_000)
    assert (day(4)["refunds"], day(4)["refunded_fen"], day(4)["orders_cancelled"]) == \
        (1, 10_000, 1)
    # o4's whole commission (1,000 + 500) was reversed from pending on D4.
    assert day(4)["commission_reversed_fen"] == 1_500
    # o5's 2,000 fen refund at 00:00:00 on D12 takes back 200 of alice's settled 1,000.
    assert (day(12)["refunds"], day(12)["commission_reversed_fen"], day(12)["paid_out_fen"]) \
        == (1, 200, 600)
    # Settled on D11: o1 (1,000 + 500) and o5 (1,000).
    assert day(11)["commission_settled_fen"] == 2_500


def test_the_previous_range_has_equal_length_and_ends_the_day_before(world):
    board = stats.dashboard(merchant_id=world.merchant_id,
                            span=DateRange(world.day(2), world.day(4)))
    assert (board["previous"]["from"], board["previous"]["to"]) == (world.day(-1), world.day(1))
    # o2, o3, o4, o5, o6 against o1 alone.
    assert board["change"]["orders_paid"] == {"delta": 5 - 1, "change_bps": 40_000}
    assert board["change"]["orders_cancelled"] == {"delta": 1, "change_bps": None}


# -- the funnel --------------------------------------------------------------------------------

UNIQUE_VISITORS = ("SELECT COUNT(DISTINCT COALESCE('user:' || visitor_user_id, 'ip:' || ip_hash)) "
                   f"FROM visits WHERE merchant_id = :m AND {in_range('created_at')} "
                   "AND (visitor_user_id IS NOT NULL OR ip_hash <> '')")


def funnel_of(world, span: DateRange, *, client=None, distributor_id: int | None = None):
    return stats_distributors.funnel(merchant_id=world.merchant_id, span=span,
                                     redis_client=client or redis.client,
                                     distributor_id=distributor_id)


def steps(funnel: dict) -> dict:
    return {step["step"]: step["value"] for step in funnel["steps"]}


def test_the_overall_funnel_matches_the_raw_tables(world):
    for span in spans(world):
        funnel = funnel_of(world, span)
        expected = raw_figures(world.merchant_id, span)
        unique = raw(UNIQUE_VISITORS, m=world.merchant_id, start=span.start, end=span.end)
        assert funnel["unique_visitors_source"] == "hyperloglog"
        assert steps(funnel) == {
            "links_shared": expected["links_shared"], "visits": expected["visits"],
            "unique_visitors": unique, "bindings": expected["bindings"],
            "orders": expected["orders_created"], "paid": expected["orders_paid"],
            "commission_settled_fen": expected["commission_settled_fen"]}, span
    today = steps(funnel_of(world, DateRange(world.today, world.today)))
    # bob, carol (3 visits), dave, erin, frank, and one anonymous visitor (twice): 9 visits.
    assert (today["visits"], today["unique_visitors"], today["bindings"]) == (9, 6, 5)


def test_without_redis_the_funnel_counts_visits_and_says_so(world):
    down = redis_lib.Redis(port=free_port(), socket_connect_timeout=0.2)
    funnel = funnel_of(world, DateRange(world.today, world.today), client=down)
    assert funnel["unique_visitors_source"] == "visits"
    assert steps(funnel)["unique_visitors"] == steps(funnel)["visits"] == 9


def test_a_lost_day_of_unique_visitors_shows_visits_rather_than_too_few(world):
    redis.client.delete(redis_keys.unique_visitors_of_day(world.merchant_id, world.today))
    funnel = funnel_of(world, DateRange(world.day(1), world.today))
    assert funnel["unique_visitors_source"] == "visits"
    assert steps(funnel)["unique_visitors"] == 9


DISTRIBUTOR_RAW = {
    "links_shared": "SELECT COUNT(*) FROM share_links WHERE merchant_id = :m "
                    f"AND distributor_id = :d AND {in_range('created_at')}",
    "visits": "SELECT COUNT(*) FROM visits WHERE merchant_id = :m AND distributor_id = :d "
              f"AND {in_range('created_at')}",
    "bindings": "SELECT COUNT(*) FROM binding_logs WHERE merchant_id = :m "
                "AND distributor_id = :d AND outcome IN ('bound', 'rebound', 'moved') "
                f"AND {in_range('created_at')}",
    "paid": f"SELECT COUNT(*) {TIER_ONE} AND (b ->> 'member_id')::bigint = :d "
            f"AND {in_range('o.paid_at')}",
    "commission_settled_fen": f"SELECT COALESCE(SUM(e.amount_fen), 0) {ENTRIES}"
                              "JOIN commissions c ON c.merchant_id = j.merchant_id "
                              "AND j.idempotency_key = 'settle:commission:' || c.id "
                              "WHERE j.merchant_id = :m AND j.kind = 'settlement' "
                              "AND a.kind = 'available' AND a.owner_id = :d "
                              f"AND {in_range('c.settled_at')}",
}


def test_each_distributors_funnel_matches_the_raw_tables(world):
    for name in ("alice", "bob", "carol"):
        distributor_id = world.members[name]
        for span in spans(world):
            funnel = funnel_of(world, span, distributor_id=distributor_id)
            expected = {step: raw(sql, m=world.merchant_id, d=distributor_id,
                                  start=span.start, end=span.end)
                        for step, sql in DISTRIBUTOR_RAW.items()}
            got = steps(funnel)
            assert got["orders"] is None and got["unique_visitors"] == got["visits"]
            assert {step: got[step] for step in expected} == expected, (name, span)
    bob = funnel_of(world, DateRange(world.today, world.today),
                    distributor_id=world.members["bob"])
    assert bob["unique_visitors_all_time"] == 4  # carol, dave, erin and one anonymous


# -- rankings ----------------------------------------------------------------------------------

RANKING_RAW = {
    # Tier-1 sales: goods paid less the goods refunded (refunds take goods first).
    "sales": "SELECT c.member_id, SUM(o.goods_fen - o.discount_fen "
             "- LEAST(o.refunded_fen, o.goods_fen - o.discount_fen)) FROM commissions c "
             "JOIN orders o ON o.merchant_id = c.merchant_id AND o.id = c.order_id "
             "WHERE c.merchant_id = :m AND c.tier = 1 AND c.period = :period "
             "GROUP BY c.member_id",
    "commission": "SELECT member_id, SUM(amount_fen - reversed_fen) FROM commissions "
                  "WHERE merchant_id = :m AND period = :period GROUP BY member_id",
    "new_members": "SELECT distributor_id, COUNT(*) FROM binding_logs WHERE merchant_id = :m "
                   "AND outcome IN ('bound', 'rebound', 'moved') "
                   f"AND to_char({on_day('created_at')}, 'YYYY-MM') = :period "
                   "GROUP BY distributor_id",
}


def raw_ranking(merchant_id: int, period: str, measure: str) -> dict[int, int]:
    rows = db.session.execute(text(RANKING_RAW[measure]), {"m": merchant_id, "period": period})
    return {member_id: int(value) for member_id, value in rows if value > 0}


def periods(world) -> list[str]:
    return sorted({world.day(n).strftime("%Y-%m") for n in range(1, 13)}
                  | {world.today.strftime("%Y-%m")})


def ranked(world, period: str, measure: str, client) -> dict:
    return stats_distributors.rankings(merchant_id=world.merchant_id, period=period,
                                       measure=measure, limit=20, redis_client=client)


def assert_matches(board: dict, expected: dict[int, int]) -> None:
    values = [item["value"] for item in board["items"]]
    assert values == sorted(values, reverse=True)
    assert [item["rank"] for item in board["items"]] == list(range(1, len(values) + 1))
    assert {item["member_id"]: item["value"] for item in board["items"]} == expected


def test_rankings_from_redis_match_the_raw_tables(world):
    wallets.sweep_outbox(redis.client)
    for period in periods(world):
        for measure in ("sales", "commission"):
            board = ranked(world, period, measure, redis.client)
            expected = raw_ranking(world.merchant_id, period, measure)
            assert board["source"] == ("redis" if expected else "sql")
            assert_matches(board, expected)
        assert_matches(ranked(world, period, "new_members", redis.client),
                       raw_ranking(world.merchant_id, period, "new_members"))
    month = world.today.strftime("%Y-%m")
    new_members = ranked(world, month, "new_members", redis.client)["items"]
    assert [(item["member_id"], item["value"]) for item in new_members] == \
        [(world.members["bob"], 3), (world.members["alice"], 2)]


def test_rankings_fall_back_to_sql_when_redis_is_down_and_return_after_a_rebuild(world):
    down = redis_lib.Redis(port=free_port(), socket_connect_timeout=0.2)
    for period in periods(world):
        for measure in ("sales", "commission"):
            board = ranked(world, period, measure, down)
            assert board["source"] == "sql"
            assert_matches(board, raw_ranking(world.merchant_id, period, measure))
    redis.client.flushdb()
    period = world.day(2).strftime("%Y-%m")
    assert ranked(world, period, "sales", redis.client)["source"] == "sql"
    wallets.rebuild_cache(redis.client, merchant_id=world.merchant_id)
    board = ranked(world, period, "sales", redis.client)
    assert board["source"] == "redis"
    assert_matches(board, raw_ranking(world.merchant_id, period, "sales"))


# -- what the levels and the consumer analysis read --------------------------------------------

MEMBER_DAY_RAW = f"""
SELECT member_id, day, SUM(purchases), SUM(spent_fen), SUM(referred_orders),
       SUM(direct_sales_fen), SUM(commission_fen), SUM(commission_settled_fen),
       SUM(new_direct_members), SUM(links_shared), SUM(visits), SUM(refunded_orders) FROM (
  SELECT buyer_member_id member_id, {on_day('paid_at')} AS day, 1 purchases,
         paid_fen spent_fen, 0 referred_orders, 0 direct_sales_fen, 0 commission_fen,
         0 commission_settled_fen, 0 new_direct_members, 0 links_shared, 0 visits,
         0 refunded_orders
    FROM orders WHERE merchant_id = :m AND paid_at IS NOT NULL
  UNION ALL
  SELECT o.buyer_member_id, {on_day('r.finished_at')}, 0, -r.amount_fen, 0, 0, 0, 0, 0, 0, 0, 0
    FROM refunds r JOIN orders o ON o.merchant_id = r.merchant_id AND o.id = r.order_id
   WHERE r.merchant_id = :m AND r.status = 'succeeded'
  UNION ALL
  SELECT (b ->> 'member_id')::bigint, {on_day('o.paid_at')}, 0, 0, 1,
         o.goods_fen - o.discount_fen, 0, 0, 0, 0, 0, 0 {TIER_ONE}
  UNION ALL
  SELECT (b ->> 'member_id')::bigint, {on_day('r.finished_at')}, 0, 0, 0, -r.amount_fen,
         0, 0, 0, 0, 0,
         CASE WHEN r.id = (SELECT MIN(f.id) FROM refunds f WHERE f.merchant_id = r.merchant_id
                           AND f.order_id = r.order_id AND f.status = 'succeeded')
              THEN 1 ELSE 0 END
    FROM refunds r JOIN orders o ON o.merchant_id = r.merchant_id AND o.id = r.order_id,
         json_array_elements(o.commission_snapshot -> 'beneficiaries') b
   WHERE r.merchant_id = :m AND r.status = 'succeeded' AND (b ->> 'tier')::int = 1
  UNION ALL
  SELECT a.owner_id, {on_day('o.paid_at')}, 0, 0, 0, 0, e.amount_fen, 0, 0, 0, 0, 0 {ENTRIES}
    JOIN orders o ON o.merchant_id = j.merchant_id AND o.id = j.order_id
   WHERE j.merchant_id = :m AND j.kind = 'accrual' AND a.kind = 'pending'
  UNION ALL
  SELECT a.owner_id, {on_day('r.finished_at')}, 0, 0, 0, 0, e.amount_fen, 0, 0, 0, 0, 0
    {ENTRIES} JOIN refunds r ON r.merchant_id = j.merchant_id
     AND j.idempotency_key = 'reversal:refund:' || r.out_refund_no
   WHERE j.merchant_id = :m AND j.kind = 'reversal' AND a.owner_id <> 0
  UNION ALL
  SELECT a.owner_id, {on_day('c.settled_at')}, 0, 0, 0, 0, 0, e.amount_fen, 0, 0, 0, 0
    {ENTRIES} JOIN commissions c ON c.merchant_id = j.merchant_id
     AND j.idempotency_key = 'settle:commission:' || c.id
   WHERE j.merchant_id = :m AND j.kind = 'settlement' AND a.kind = 'available'
  UNION ALL
  SELECT distributor_id, {on_day('created_at')}, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0
    FROM binding_logs WHERE merchant_id = :m AND outcome IN ('bound', 'rebound', 'moved')
  UNION ALL
  SELECT distributor_id, {on_day('created_at')}, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0
    FROM share_links WHERE merchant_id = :m
  UNION ALL
  SELECT distributor_id, {on_day('created_at')}, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0
    FROM visits WHERE merchant_id = :m
) facts GROUP BY member_id, day
"""
MEMBER_COLUMNS = ("purchases", "spent_fen", "referred_orders", "direct_sales_fen",
                  "commission_fen", "commission_settled_fen", "new_direct_members",
                  "links_shared", "visits", "refunded_orders")


def test_every_member_day_matches_the_raw_tables(world):
    expected = {(member_id, day): tuple(int(v) for v in values)
                for member_id, day, *values in db.session.execute(
                    text(MEMBER_DAY_RAW), {"m": world.merchant_id})
                if any(values)}
    rows = db.session.scalars(select(DailyMemberStat).where(
        DailyMemberStat.merchant_id == world.merchant_id)).all()
    got = {(row.member_id, row.day): tuple(getattr(row, name) for name in MEMBER_COLUMNS)
           for row in rows}
    assert got == expected
    # bob referred o2 (paid at 00:00:00), o3 (two units) and o4 on D2; o3 had 3,000 of its
    # 20,000 fen of goods refunded on D3.
    bob = world.members["bob"]
    assert got[(bob, world.day(2))][2:4] == (3, 40_000)
    assert got[(bob, world.day(3))][3] == -3_000


CONSUMERS_RAW = {
    "buyers": "SELECT COUNT(DISTINCT buyer_member_id) FROM orders WHERE merchant_id = :m "
              f"AND paid_at IS NOT NULL AND {in_range('paid_at')}",
    "new_buyers": "SELECT COUNT(*) FROM (SELECT buyer_member_id, MIN(paid_at) first FROM orders "
                  "WHERE merchant_id = :m AND paid_at IS NOT NULL GROUP BY buyer_member_id) f "
                  f"WHERE {in_range('first')}",
    "repeat_buyers": "SELECT COUNT(*) FROM (SELECT buyer_member_id FROM orders "
                     "WHERE merchant_id = :m AND paid_at IS NOT NULL "
                     f"AND {in_range('paid_at')} GROUP BY buyer_member_id "
                     "HAVING COUNT(*) >= 2) r",
}
PAID_IN_RANGE = f"merchant_id = :m AND paid_at IS NOT NULL AND {in_range('paid_at')}"


def raw_rows(sql: str, **params) -> list[tuple]:
    return [tuple(row) for row in db.session.execute(text(sql), params)]


def test_the_consumer_analysis_matches_the_raw_tables(world):
    for span in spans(world):
        params = {"m": world.merchant_id, "start": span.start, "end": span.end}
        got = stats_consumers.consumer_analysis(merchant_id=world.merchant_id, span=span)
        expected = {name: raw(sql, **params) for name, sql in CONSUMERS_RAW.items()}
        assert {name: got[name] for name in expected} == expected, span
        assert got["returning_buyers"] == expected["buyers"] - expected["new_buyers"]
        regions = raw_rows("SELECT address ->> 'province', address ->> 'city', "
                           f"COUNT(DISTINCT buyer_member_id) FROM orders WHERE {PAID_IN_RANGE} "
                           "GROUP BY 1, 2", **params)
        assert sorted((r["province"], r["city"], r["buyers"]) for r in got["by_region"]) == \
            sorted(regions)
        hours = dict(raw_rows("SELECT EXTRACT(HOUR FROM paid_at AT TIME ZONE "
                              f"'Asia/Shanghai')::int, COUNT(*) FROM orders WHERE "
                              f"{PAID_IN_RANGE} GROUP BY 1", **params))
        assert {h["hour"]: h["orders_paid"] for h in got["by_hour"] if h["orders_paid"]} == hours
        weekdays = dict(raw_rows(f"SELECT EXTRACT(ISODOW FROM {on_day('paid_at')})::int, "
                                 f"COUNT(*) FROM orders WHERE {PAID_IN_RANGE} GROUP BY 1",
                                 **params))
        assert {n + 1: w["orders_paid"] for n, w in enumerate(got["by_weekday"])
                if w["orders_paid"]} == weekdays
        genders = dict(raw_rows("SELECT u.gender, COUNT(DISTINCT o.buyer_member_id) FROM orders o "
                                "JOIN users u ON u.id = o.buyer_user_id WHERE o.merchant_id = :m "
                                f"AND o.paid_at IS NOT NULL AND {in_range('o.paid_at')} "
                                "GROUP BY 1", **params))
        assert {g["gender"]: g["buyers"] for g in got["by_gender"] if g["buyers"]} == \
            {stats_consumers.GENDERS[code]: count for code, count in genders.items()}


def test_consumers_are_banded_by_age_and_repeat_buyers_counted(world):
    got = stats_consumers.consumer_analysis(merchant_id=world.merchant_id,
                                            span=DateRange(world.day(1), world.day(4)))
    year = world.day(4).year
    # carol (2001) twice, dave (no birth year), erin (1960), frank (2010), gina (1999).
    bands = {b["age_band"]: b["buyers"] for b in got["by_age_band"] if b["buyers"]}
    expected: dict[str, int] = {}
    for birth_year in (2001, None, 1960, 2010, 1999):
        band = stats_consumers.age_band(year - birth_year) if birth_year else "unknown"
        expected[band] = expected.get(band, 0) + 1
    assert bands == expected
    assert (got["buyers"], got["repeat_buyers"], got["repeat_rate_bps"]) == (5, 1, 2_000)


# -- how the rollups are written ---------------------------------------------------------------

def test_merchant_rows_of_a_rolled_back_transaction_are_never_written(app_context):
    from app.database import utcnow
    from app.services import events
    from tests.factories import make_member, make_merchant

    shop = make_merchant()
    member = make_member(shop)
    events.member_created(member, utcnow())
    db.session.rollback()
    events.distributor_activated(member, utcnow())
    db.session.commit()
    row = db.session.scalars(select(DailyStat).where(DailyStat.merchant_id == shop.id)).one()
    assert (row.new_members, row.new_distributors) == (0, 1)


def test_rollups_upsert_on_sqlite_too(app_settings, sandbox_url, tmp_path):
    from flask_migrate import upgrade

    from app import create_app
    from tests.factories import make_merchant

    app = create_app(dataclasses.replace(app_settings,
                                         database_url=f"sqlite:///{tmp_path}/demo.db"))
    with app.app_context():
        upgrade()
        world = stats_world.World(merchant_id=make_merchant().id, sandbox_url=sandbox_url)
        stats_world.prepare(world)
        d1, d2 = world.day(1), world.day(2)
        for created, paid in ((stats_world.local(d1, 23), stats_world.local(d1, 23, 59, 59)),
                              (stats_world.local(d1, 23, 30), stats_world.local(d2))):
            stats_world.place(world, "carol", created=created, paid=paid)
        board = stats.dashboard(merchant_id=world.merchant_id, span=DateRange(d1, d2))
        assert [(p["orders_created"], p["orders_paid"], p["gmv_fen"])
                for p in board["series"]] == [(2, 1, 10_000), (0, 1, 10_000)]
        assert board["current"]["paying_buyers"] == 1
        buyer_days = db.session.scalars(select(DailyBuyer).order_by(DailyBuyer.day)).all()
        assert [b.first_purchase for b in buyer_days] == [True, False]
        assert [(h.hour, h.orders_paid) for h in db.session.scalars(
            select(HourlyStat).order_by(HourlyStat.day))] == [(23, 1), (0, 1)]
        db.session.remove()
