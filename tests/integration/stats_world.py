"""A merchant's fortnight, made through the real services, for the statistics tests.

Members join, share and bind through ``members``, ``share_links`` and ``attribution`` (today);
orders are created, offered to the WeChat sandbox, paid there and recorded by
``payments.apply_payment`` at chosen moments — two of them at 23:59:59 and 00:00:00 in
Asia/Shanghai (15:59:59 and 16:00:00 UTC) — refunded through ``refunds`` (one at midnight, one
after settlement), cancelled by ``payments.cancel_unpaid``, shipped, received, settled by the
job, and one withdrawal paid out. Timeline (D1 is 14 days before today)::

    o1 carol  created D1 23:50, paid D1 23:59:59, shipped, received D3, settled D11
    o2 dave   created D1 23:59, paid D2 00:00:00
    o3 erin   2 units, paid D2 10:00, 3,000 fen refunded D3 09:00
    o4 carol  paid D2 20:05 (Shanghai address), refunded in full D4 00:00:00
    o5 frank  paid D3 12:00, received D4, settled D11, 2,000 fen refunded D12 00:00:00
    o6 gina   paid D3 23:59:59 (no upline: nobody earns)
    o7 dave   created D4 10:00, cancelled unpaid D4 10:45
    o8 erin   created D5 08:00, never paid
    bob withdraws 600 fen on D11, paid out offline D12 09:00

The tree: alice ← bob ← carol, dave, erin; alice ← frank; gina alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.clients import mini_program, pay_config, secret_box, settings
from app.database import transaction, utcnow
from app.domain.business_time import business_date
from app.extensions import db, redis
from app.integrations.wechatpay import Payment
from app.models import Member, Order
from app.services import (
    attribution,
    commissions,
    members,
    merchants,
    orders,
    payment_settings,
    payments,
    products,
    refunds,
    share_links,
    withdrawals,
)
from tests.factories import make_user
from tests.support.wechatpay import complete_refund, pay

TIMEZONE = ZoneInfo("Asia/Shanghai")
PRICE_FEN = 10_000
SHENZHEN = {"receiver": "张三", "phone": "13800000000", "province": "广东省", "city": "深圳市",
            "district": "南山区", "detail": "科技园 1 号"}
SHANGHAI = {**SHENZHEN, "province": "上海市", "city": "上海市", "district": "浦东新区"}
# name: (gender, birth year)
PEOPLE = {"alice": (2, 1985), "bob": (1, 1992), "carol": (2, 2001), "dave": (1, None),
          "erin": (0, 1960), "frank": (1, 2010), "gina": (2, 1999)}


def local(day: date, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A moment of the merchant's day, in UTC as stored."""
    return datetime(day.year, day.month, day.day, hour, minute, second,
                    tzinfo=TIMEZONE).astimezone(UTC)


@dataclass
class World:
    merchant_id: int
    sandbox_url: str
    product_id: int = 0
    users: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    today: date = field(default_factory=lambda: business_date(utcnow(), timezone="Asia/Shanghai"))

    def day(self, n: int) -> date:
        """D1 is 14 days before today."""
        return self.today - timedelta(days=15 - n)


def build(merchant_id: int, sandbox_url: str) -> World:
    world = World(merchant_id=merchant_id, sandbox_url=sandbox_url)
    prepare(world)
    _grow_tree(world)
    _trade(world)
    return world


def prepare(world: World) -> None:
    """Program rules (anyone may join), a sandbox WeChat Pay account, a product, the users."""
    merchants.update_program_rules(merchant_id=world.merchant_id,
                                   changes={"join_mode": "everyone"})
    payment_settings.configure(merchant_id=world.merchant_id,
                               body={"mode": "sandbox", "appid": settings().wechat_appid},
                               box=secret_box(), sandbox_base_url=world.sandbox_url)
    world.product_id = products.create_product(merchant_id=world.merchant_id, fields={
        "title": "丑橘 5斤", "price_fen": PRICE_FEN, "stock": 1_000}).id
    for name, (gender, birth_year) in PEOPLE.items():
        world.users[name] = make_user(gender=gender, birth_year=birth_year).id


def _grow_tree(world: World) -> None:
    _join(world, "alice")
    world.links["alice"] = _link(world, "alice")
    _visit(world, "alice", "bob")
    _join(world, "bob")
    world.links["bob"] = _link(world, "bob")
    for name in ("carol", "dave", "erin"):
        _visit(world, "bob", name)
    _visit(world, "alice", "frank")
    _visit(world, "bob", "carol")  # already bound: a visit, no binding, the same visitor
    _visit(world, "bob", None, ip_hash="anonymous-1")
    _visit(world, "bob", None, ip_hash="anonymous-1")
    _visit(world, "alice", "carol")  # refused: carol stays with bob
    for name, user_id in world.users.items():
        member = members.find_member(merchant_id=world.merchant_id, user_id=user_id)
        if member is not None:
            world.members[name] = member.id


def _trade(world: World) -> None:
    d = world.day
    world.orders["o1"] = place(world, "carol", created=local(d(1), 23, 50),
                               paid=local(d(1), 23, 59, 59))
    world.orders["o2"] = place(world, "dave", created=local(d(1), 23, 59),
                               paid=local(d(2)))
    world.orders["o3"] = place(world, "erin", created=local(d(2), 9, 55),
                               paid=local(d(2), 10), quantity=2)
    refund(world, "o3", 3_000, local(d(3), 9))
    world.orders["o4"] = place(world, "carol", created=local(d(2), 20),
                               paid=local(d(2), 20, 5), address=SHANGHAI)
    refund(world, "o4", None, local(d(4)))
    deliver(world, "o1", shipped=local(d(2), 10), received=local(d(3), 10))
    world.orders["o5"] = place(world, "frank", created=local(d(3), 11, 50),
                               paid=local(d(3), 12))
    deliver(world, "o5", shipped=local(d(3), 13), received=local(d(4), 12))
    world.orders["o6"] = place(world, "gina", created=local(d(3), 23, 55),
                               paid=local(d(3), 23, 59, 59))
    world.orders["o7"] = place(world, "dave", created=local(d(4), 10), offer=False)
    assert payments.cancel_unpaid(pay_config(), now=local(d(4), 10, 45))["cancelled"] == 1
    world.orders["o8"] = place(world, "erin", created=local(d(5), 8), offer=False)
    with transaction(db.session):
        assert commissions.settle_due(now=local(d(11), 12, 30)) == 3
    withdrawal = withdrawals.request_withdrawal(
        merchant_id=world.merchant_id, user_id=world.users["bob"], amount_fen=600,
        real_name=None, idempotency_key=None, box=secret_box(), now=local(d(11), 14))
    withdrawals.mark_paid_offline(merchant_id=world.merchant_id, withdrawal_id=withdrawal.id,
                                  staff_id=None, reference="BANK-1", now=local(d(12), 9))
    refund(world, "o5", 2_000, local(d(12)))


def _join(world: World, name: str) -> None:
    members.join_program(merchant_id=world.merchant_id, user_id=world.users[name],
                         agreement_version="v1", real_name=None, phone=None, box=secret_box())


def _link(world: World, name: str) -> str:
    return share_links.create_link(merchant_id=world.merchant_id, user_id=world.users[name],
                                   product_id=None, page=None, wechat=mini_program()).token


def _visit(world: World, sharer: str, visitor: str | None, *, ip_hash: str = "") -> None:
    attribution.record_visit(
        token=world.links[sharer], user_id=world.users[visitor] if visitor else None,
        context=attribution.VisitContext(channel="miniprogram", ip_hash=ip_hash),
        redis_client=redis.client)


def place(world: World, buyer: str, *, created: datetime, paid: datetime | None = None,
          quantity: int = 1, address: dict = SHENZHEN, offer: bool = True) -> int:
    order = orders.create_order(merchant_id=world.merchant_id, user_id=world.users[buyer],
                                items=[{"product_id": world.product_id, "quantity": quantity}],
                                address=address, share_token=None, idempotency_key=None,
                                now=created)
    if offer:
        payments.payment_params(order, pay_config(), now=created)
    if paid is not None:
        _pay(world, order.id, paid)
    return order.id


def _pay(world: World, order_id: int, when: datetime) -> None:
    """WeChat takes the money (the sandbox), and its word is applied at ``when``."""
    order = db.session.get(Order, (world.merchant_id, order_id))
    answer = pay(world.sandbox_url, order.pay_mch_id, order.out_trade_no)
    outcome = payments.apply_payment(merchant_id=world.merchant_id, payment=Payment(
        appid=order.pay_appid, mch_id=order.pay_mch_id, out_trade_no=order.out_trade_no,
        trade_state="SUCCESS", total_fen=order.paid_fen,
        transaction_id=answer["transaction_id"]), now=when)
    assert outcome.result == "paid"


def refund(world: World, key: str, amount_fen: int | None, when: datetime) -> None:
    """The merchant refunds; WeChat completes it; the result is applied at ``when``."""
    order_id = world.orders[key]
    started = refunds.start_refund(merchant_id=world.merchant_id, order_id=order_id,
                                   amount_fen=amount_fen, reason="果子磕坏了", staff_id=None,
                                   config=pay_config(), now=when - timedelta(minutes=30))
    mch_id = db.session.get(Order, (world.merchant_id, order_id)).pay_mch_id
    complete_refund(world.sandbox_url, mch_id, started.out_refund_no)
    result = pay_config().gateway(world.merchant_id).query_refund(started.out_refund_no)
    outcome = refunds.apply_refund_result(merchant_id=world.merchant_id, result=result,
                                          now=when)
    assert outcome.result == "succeeded"


def deliver(world: World, key: str, *, shipped: datetime, received: datetime) -> None:
    order_id = world.orders[key]
    orders.ship(merchant_id=world.merchant_id, order_id=order_id, carrier="顺丰速运",
                tracking_no=f"SF{order_id:010d}", now=shipped)
    buyer = db.session.get(Order, (world.merchant_id, order_id)).buyer_user_id
    orders.receive(merchant_id=world.merchant_id, user_id=buyer, order_id=order_id,
                   now=received)


def member(world: World, name: str) -> Member:
    return db.session.get(Member, (world.merchant_id, world.members[name]))
