"""Ninety days of a living shop for the demo console: buyers arriving through distributors'
share links, orders paid through the WeChat sandbox on every day, refunds, two levels with
their upgrades and assessment, and a risk flag — all through the real services, so every
figure on the dashboard comes from the rollups the events keep.

Buyers get made-up openids (they never sign in). The burst of visits from one address is
what makes the IP-burst detector flag their distributors."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from app.clients import secret_box
from app.database import transaction, utcnow
from app.demo.orders import place, refund_part, stage_for
from app.extensions import db
from app.models import LedgerAccount, Member, Merchant, User
from app.services import (
    attribution,
    commissions,
    level_definitions,
    levels,
    merchants,
    withdrawals,
)

DAYS = 90
SIZES = {"full": (2_400, 300), "small": (60, 24)}  # (buyers, orders)
CITIES = [("广东省", "深圳市"), ("广东省", "广州市"), ("浙江省", "杭州市"), ("上海市", "上海市"),
          ("北京市", "北京市"), ("四川省", "成都市"), ("湖北省", "武汉市"), ("江苏省", "南京市")]
BURST_IP = "demo-burst-ip-hash"
LEVELS = [
    {"name": "银牌", "weight": 10, "tier_rates_bps": [1200, 600],
     "upgrade_rule": {"combine": "any", "conditions": [
         {"metric": "direct_sales_fen", "threshold": 30_000, "window_days": 30},
         {"metric": "direct_members", "threshold": 40, "window_days": 0}]},
     "keep_rule": {"combine": "any", "conditions": [
         {"metric": "direct_sales_fen", "threshold": 10_000, "window_days": 30}]}},
    {"name": "金牌", "weight": 20, "tier_rates_bps": [1500, 800],
     "upgrade_rule": {"combine": "all", "conditions": [
         {"metric": "team_size", "threshold": 300, "window_days": 0},
         {"metric": "direct_sales_fen", "threshold": 60_000, "window_days": 30}]},
     "keep_rule": {"combine": "all", "conditions": [
         {"metric": "direct_sales_fen", "threshold": 20_000, "window_days": 30}]}},
]


def seed_history(merchant_id: int, *, links: list[str], product_ids: list[int],
                 sandbox: str, size: str = "full") -> dict:
    buyers_wanted, orders_wanted = SIZES[size]
    chance = random.Random(20261127)  # the same demo every time
    for fields in LEVELS:
        level_definitions.create_level(merchant_id=merchant_id, fields=fields, staff_id=None)
    buyers = _arrive_all(merchant_id, links, buyers_wanted, chance)
    for n in range(orders_wanted):
        days_ago = DAYS - 1 - n * DAYS // orders_wanted
        at = utcnow() - timedelta(days=days_ago, hours=chance.randrange(0, 12),
                                  minutes=chance.randrange(60))
        province, city = chance.choice(CITIES)
        order_id = place(merchant_id, chance.choice(buyers), chance.choice(product_ids),
                         chance.randrange(1, 4), at, stage_for(days_ago), sandbox,
                         address={"receiver": "顾客", "phone": "13800000000",
                                  "province": province, "city": city, "district": "",
                                  "detail": "幸福路 1 号"})
        if n % 13 == 5 and days_ago >= 2:
            refund_part(merchant_id, order_id, _config(), sandbox, at + timedelta(days=1))
    with transaction(db.session):
        commissions.settle_due(now=utcnow())
    with transaction(db.session):
        levels.assess_due(now=utcnow())
    _withdrawals(merchant_id)
    return {"buyers": len(buyers), "orders": orders_wanted}


def _withdrawals(merchant_id: int) -> None:
    """The two distributors with the most available money ask for half of it: the review
    queue the finance role opens first."""
    richest = db.session.execute(
        select(Member.id, Member.user_id, LedgerAccount.balance_fen)
        .join(LedgerAccount, (LedgerAccount.merchant_id == Member.merchant_id)
              & (LedgerAccount.owner_id == Member.id))
        .where(Member.merchant_id == merchant_id, LedgerAccount.kind == "available",
               LedgerAccount.balance_fen >= 200)
        .order_by(LedgerAccount.balance_fen.desc()).limit(2)).all()
    db.session.rollback()
    for _, user_id, available in richest:
        withdrawals.request_withdrawal(merchant_id=merchant_id, user_id=user_id,
                                       amount_fen=available // 2, real_name=None,
                                       idempotency_key=None, box=secret_box(), now=utcnow())


def _arrive_all(merchant_id: int, links: list[str], count: int, chance: random.Random
                ) -> list[int]:
    """The buyers arrive in one go, as an import of an existing customer base would: the
    binding-burst detector is paused meanwhile (its threshold raised, then restored), or every
    distributor would be flagged for bindings that really came over months."""
    usual = merchants.program_rules(db.session.get(Merchant, merchant_id)) \
        .risk_binding_burst_per_hour
    merchants.update_program_rules(merchant_id=merchant_id,
                                   changes={"risk_binding_burst_per_hour": 1_000_000})
    buyers = [_arrive(merchant_id, n, links[-1] if n < 24 else chance.choice(links),
                      burst=n < 24) for n in range(count)]
    merchants.update_program_rules(merchant_id=merchant_id,
                                   changes={"risk_binding_burst_per_hour": usual})
    return buyers


def _arrive(merchant_id: int, n: int, token: str, *, burst: bool) -> int:
    """A buyer opens a distributor's link and is bound; the first few come from one address
    within minutes (a pattern the IP-burst detector flags)."""
    with transaction(db.session):
        user = User(appid="wx-demo-buyers", openid=f"demo-buyer-{n}",
                    nickname=f"顾客{n + 1:04d}", gender=1 + n % 2, birth_year=1970 + n % 35)
        db.session.add(user)
    attribution.record_visit(token=token, user_id=user.id, context=attribution.VisitContext(
        channel="miniprogram", ip_hash=BURST_IP if burst else f"ip-{n % 500}"))
    return user.id


def _config():
    from app.clients import pay_config

    return pay_config()
