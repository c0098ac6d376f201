"""The dashboard benchmark's data: a merchant's orders and refunds over 400 days, and their
rollup rows by bulk aggregation (PostgreSQL only; see dashboard.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from app.extensions import db

DAYS = 400
PRICE_FEN = 9_900
TZ = "Asia/Shanghai"
REGIONS = [("广东省", "深圳市"), ("广东省", "广州市"), ("上海市", "上海市"), ("浙江省", "杭州市"),
           ("北京市", "北京市"), ("四川省", "成都市")]


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def sql(statement: str, **params) -> None:
    db.session.execute(text(statement), params)


def load(merchant_id: int, orders: int, last_day: date) -> None:
    """One transaction: the temporary tables live on its connection."""
    _insert_orders(merchant_id, orders, last_day)
    for statement in (PAID, DAILY, BUYERS, HOURLY, MEMBER_DAYS):
        sql(statement, m=merchant_id)


def _insert_orders(merchant_id: int, orders: int, last_day: date) -> None:
    first = local_midnight(last_day - timedelta(days=DAYS - 1))
    regions = ", ".join(f"('{p}', '{c}')" for p, c in REGIONS)
    sql(f"""CREATE TEMP TABLE bench_buyers AS
        SELECT (row_number() OVER (ORDER BY m.id) - 1)::int AS idx, m.id, m.user_id,
               m.upline_id AS tier1, p.upline_id AS tier2, r.province, r.city
          FROM members m
          LEFT JOIN members p ON p.merchant_id = m.merchant_id AND p.id = m.upline_id
          CROSS JOIN LATERAL (SELECT * FROM (VALUES {regions}) v(province, city)
                              OFFSET m.id % {len(REGIONS)} LIMIT 1) r
         WHERE m.merchant_id = :m""", m=merchant_id)
    sql("CREATE UNIQUE INDEX ON bench_buyers (idx)")
    sql("SELECT setseed(0.42)")
    sql("""CREATE TEMP TABLE bench_orders AS
        SELECT nextval(pg_get_serial_sequence('orders', 'id')) AS id,
               floor(random() * :buyers)::int AS buyer_idx,
               :first + random() * interval '1 day' * :days AS created_at,
               1 + floor(random() * 4)::int AS quantity,
               random() < 0.03 AS cancelled, random() < 0.04 AS refunded
          FROM generate_series(1, :orders)""",
         buyers=_count("SELECT count(*) FROM bench_buyers"), first=first, days=DAYS,
         orders=orders)
    sql("""INSERT INTO orders (merchant_id, id, out_trade_no, buyer_user_id, buyer_member_id,
               status, goods_fen, discount_fen, shipping_fen, paid_fen, refunded_fen, address,
               commission_snapshot, carrier, tracking_no, created_at, paid_at, cancelled_at)
        SELECT :m, o.id, 'FX' || :m || 'N' || lpad(o.id::text, 8, '0'), b.user_id, b.id,
               CASE WHEN o.cancelled THEN 'cancelled' WHEN o.refunded THEN 'refunded'
                    ELSE 'completed' END,
               o.quantity * :price, 0, 0, o.quantity * :price,
               CASE WHEN o.refunded AND NOT o.cancelled THEN o.quantity * :price ELSE 0 END,
               json_build_object('province', b.province, 'city', b.city),
               json_build_object('plan_version', 1, 'tiers', 2, 'max_total_bps', 3000,
                                 'self_purchase', false, 'beneficiaries',
                                 json_build_array(json_build_object(
                                     'tier', 1, 'member_id', b.tier1, 'rate_bps', 1000))),
               '', '', o.created_at,
               CASE WHEN NOT o.cancelled THEN o.created_at + interval '3 minutes' END,
               CASE WHEN o.cancelled THEN o.created_at + interval '30 minutes' END
          FROM bench_orders o JOIN bench_buyers b ON b.idx = o.buyer_idx
         ORDER BY o.created_at""", m=merchant_id, price=PRICE_FEN)
    sql("""INSERT INTO refunds (merchant_id, id, order_id, out_refund_no, amount_fen, reason,
               source, status, review_reason, created_at, submitted_at, finished_at)
        SELECT :m, r.id, r.order_id, r.out_trade_no || 'R' || r.id, r.paid_fen, 'bench',
               'merchant', 'succeeded', '', r.at, r.at, r.at
          FROM (SELECT nextval(pg_get_serial_sequence('refunds', 'id')) AS id, id AS order_id,
                       out_trade_no, paid_fen, paid_at + interval '2 days' AS at
                  FROM orders WHERE merchant_id = :m AND status = 'refunded') r""",
         m=merchant_id)


def _count(statement: str) -> int:
    return int(db.session.scalar(text(statement)))


# Per paid order: its buyer, beneficiaries and commission (floor per tier), local day and hour.
PAID = f"""CREATE TEMP TABLE bench_paid AS
    SELECT o.id, o.buyer_member_id AS buyer, b.tier1, b.tier2, o.paid_fen,
           o.goods_fen - o.discount_fen AS goods, o.paid_at, b.province, b.city,
           (o.paid_at AT TIME ZONE '{TZ}')::date AS day,
           EXTRACT(HOUR FROM o.paid_at AT TIME ZONE '{TZ}')::int AS hour,
           CASE WHEN b.tier1 IS NULL THEN 0 ELSE (o.goods_fen - o.discount_fen) * 1000 / 10000
           END AS c1,
           CASE WHEN b.tier1 IS NULL OR b.tier2 IS NULL THEN 0
                ELSE (o.goods_fen - o.discount_fen) * 500 / 10000 END AS c2,
           r.amount_fen AS refunded_fen, (r.finished_at AT TIME ZONE '{TZ}')::date AS refund_day
      FROM orders o JOIN bench_buyers b ON b.id = o.buyer_member_id
      LEFT JOIN refunds r ON r.merchant_id = o.merchant_id AND r.order_id = o.id
     WHERE o.merchant_id = :m AND o.paid_at IS NOT NULL"""
DAILY = f"""INSERT INTO daily_stats (merchant_id, day, gmv_fen, orders_paid, orders_created,
        orders_cancelled, refunds, refunded_fen, commission_accrued_fen,
        commission_settled_fen, commission_reversed_fen, paid_out_fen, new_members,
        new_distributors, links_shared, visits, bindings)
    SELECT :m, day, SUM(gmv), SUM(paid), SUM(created), SUM(cancelled), SUM(refunds),
           SUM(refunded), SUM(accrued), 0, SUM(reversed), 0, 0, 0, 0, 0, 0 FROM (
      SELECT day, paid_fen gmv, 1 paid, 0 created, 0 cancelled, 0 refunds, 0 refunded,
             c1 + c2 accrued, 0 reversed FROM bench_paid
      UNION ALL SELECT (created_at AT TIME ZONE '{TZ}')::date, 0, 0, 1, 0, 0, 0, 0, 0
        FROM orders WHERE merchant_id = :m
      UNION ALL SELECT (cancelled_at AT TIME ZONE '{TZ}')::date, 0, 0, 0, 1, 0, 0, 0, 0
        FROM orders WHERE merchant_id = :m AND cancelled_at IS NOT NULL
      UNION ALL SELECT refund_day, 0, 0, 0, 0, 1, refunded_fen, 0, c1 + c2
        FROM bench_paid WHERE refund_day IS NOT NULL) f
    GROUP BY day ORDER BY day"""
BUYERS = """INSERT INTO daily_buyers (merchant_id, day, member_id, orders, first_purchase,
        province, city)
    SELECT :m, p.day, p.buyer, COUNT(*), bool_or(p.paid_at = f.first_at), MIN(p.province),
           MIN(p.city)
      FROM bench_paid p JOIN (SELECT buyer, MIN(paid_at) first_at FROM bench_paid
                              GROUP BY buyer) f ON f.buyer = p.buyer
     GROUP BY p.day, p.buyer ORDER BY p.day, p.buyer"""
HOURLY = """INSERT INTO hourly_stats (merchant_id, day, hour, orders_paid, gmv_fen)
    SELECT :m, day, hour, COUNT(*), SUM(paid_fen) FROM bench_paid GROUP BY day, hour
     ORDER BY day, hour"""
MEMBER_DAYS = """INSERT INTO daily_member_stats (merchant_id, day, member_id, purchases,
        spent_fen, referred_orders, direct_sales_fen, commission_fen, commission_settled_fen,
        new_direct_members, links_shared, visits, refunded_orders)
    SELECT :m, day, member_id, SUM(purchases), SUM(spent), SUM(referred), SUM(sales),
           SUM(commission), 0, 0, 0, 0, SUM(refunded_orders) FROM (
      SELECT day, buyer member_id, 1 purchases, paid_fen spent, 0 referred, 0 sales,
             0 commission, 0 refunded_orders FROM bench_paid
      UNION ALL SELECT day, tier1, 0, 0, 1, goods, c1, 0 FROM bench_paid WHERE tier1 IS NOT NULL
      UNION ALL SELECT day, tier2, 0, 0, 0, 0, c2, 0 FROM bench_paid WHERE c2 > 0
      UNION ALL SELECT refund_day, buyer, 0, -refunded_fen, 0, 0, 0, 0 FROM bench_paid
       WHERE refund_day IS NOT NULL
      UNION ALL SELECT refund_day, tier1, 0, 0, 0, -goods, -c1, 1 FROM bench_paid
       WHERE refund_day IS NOT NULL AND tier1 IS NOT NULL
      UNION ALL SELECT refund_day, tier2, 0, 0, 0, 0, -c2, 0 FROM bench_paid
       WHERE refund_day IS NOT NULL AND c2 > 0) f
    GROUP BY day, member_id ORDER BY day, member_id"""


def vacuum() -> None:
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("orders", "refunds", "daily_stats", "daily_member_stats", "daily_buyers",
                      "hourly_stats"):
            connection.execute(text(f"VACUUM ANALYZE {table}"))
