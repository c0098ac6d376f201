"""The whole money flow as a state machine, checked against a reference model after every step
(tests/integration/money_model.py).

Hypothesis drives the real services on PostgreSQL, Redis and the WeChat sandbox: orders through
the mini-program API, payments delivered as signed sandbox notifications (one to three copies)
or found by the recovery job's query, refunds started by the merchant or asked by the buyer and
finished by WeChat (SUCCESS, CLOSED, ABNORMAL; notification or query), shipment and receipt,
time moving on with the jobs (cancel unpaid, auto-receive, complete, settle, cancel stale
transfers), withdrawals with their review and WeChat transfer (confirm, reject, expire), moves
and freezes in the console. Times that decide money (shipment, receipt, settlement, expiry) run
on a clock the test moves; every step is followed by the same checks: SQL wallets, orders,
commission parts, refunds, withdrawals and ranking totals equal the model's; the ledger
verifies; the Redis mirror equals SQL; no line pays more than the plan's cap; no order is paid
twice.

Each Hypothesis example starts from empty tables and an empty Redis database (the sandbox keeps
its state; each example has a fresh sandbox merchant account).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text

from app.clients import pay_config
from app.database import transaction, utcnow
from app.errors import Conflict
from app.extensions import db, redis
from app.integrations import redis_keys, wallet_mirror
from app.models import (
    Commission,
    Journal,
    LedgerAccount,
    LedgerEntry,
    PeriodTotal,
    RiskFlag,
    User,
    WalletOutbox,
)
from app.models import Order as OrderRow
from app.models import Refund as RefundRow
from app.models import Withdrawal as WithdrawalRow
from app.services import commissions, ledger, orders, payments, refunds, wallets, withdrawals
from tests.api.conftest import ADDRESS
from tests.factories import make_member, make_merchant
from tests.integration.money_model import (
    BPS,
    Member,
    MoneyModel,
    Product,
    Refund,
    Rules,
    Withdrawal,
    business_day,
    business_month,
)
from tests.support.wechat import sandbox_code
from tests.support.wechatpay import (
    complete_refund,
    control,
    deliver,
    pay,
    sandbox_merchant,
    settings_body,
)

PASSWORD = "pw-12345"
RULES = Rules(tier_rates_bps=(1200, 600), max_total_bps=3000, freeze_days=7,
              auto_receive_days=10, withdraw_min_fen=100, withdraw_max_fen=20_000,
              withdraw_daily_count=3, withdraw_fee_bps=150,
              withdraw_auto_approve_below_fen=300)
PRODUCTS = (Product("plain", 9_990), Product("fixed", 1_001, "fixed", (250, 150)),
            Product("rates", 333, "rates", (2000, 1000)),
            Product("excluded", 5_000, "not_distributable"), Product("opt_out", 777, "opt_out"))
# (name, upline, distributor status): two tiers under ann, two plain buyers at the bottom.
TREE = (("ann", None, "active"), ("ben", "ann", "active"), ("cat", "ann", "active"),
        ("dan", "ben", "active"), ("eve", "dan", "none"), ("fay", "cat", "none"))
NAMES = tuple(name for name, _, _ in TREE)
HOURS = (1, 24, 72, 7 * 24, 8 * 24, 11 * 24)
# What follows at once in the same rule; "later" leaves it to the rules that act later.
REFUND_ENDINGS = ("later", "SUCCESS", "SUCCESS", "CLOSED", "ABNORMAL")
TRANSFER_ENDINGS = ("confirm", "confirm", "reject", "expire")
WITHDRAWAL_ENDINGS = ("later", "reject", "mark-paid", *TRANSFER_ENDINGS)
# Any amount (often refused), one small enough to be approved at once, part of the balance,
# or everything the balance allows once the fee is added.
WITHDRAWAL_AMOUNTS = st.one_of(st.integers(1, 25_000),
                               st.integers(RULES.withdraw_min_fen,
                                           RULES.withdraw_auto_approve_below_fen - 1),
                               st.sampled_from(["all", "half"]))
# The refund-rate signal would hold settlement on its own schedule; it has tests of its own.
NO_RISK_HOLDS = {"risk_refund_min_orders": 1_000_000}
# About 75 s on this 2-core machine at load 4, three minutes at load 10; the counts of
# examples and steps are printed at the end (pytest -s).
EXAMPLES, STEPS = 25, 30
STATS: Counter = Counter()


@dataclass
class Shop:
    merchant_id: int
    mch_id: str
    appid: str
    owner: dict
    finance: dict
    products: dict[str, int]  # key -> product id
    members: dict[str, tuple[int, int, dict]]  # name -> (member id, user id, headers)


@functools.cache
def password_hash() -> str:
    # Argon2 takes about a second here: hash once, not twice per example.
    from app.encryption import hash_password

    return hash_password(PASSWORD)


def staff_headers(merchant_id: int, username: str, role: str) -> dict:
    """A staff account and its console token, as the sign-in view issues it (the sign-in
    itself has its own tests; verifying Argon2 twice per example would double the run)."""
    from app.clients import settings as app_settings
    from app.models import StaffAccount
    from app.security import issue_token

    with transaction(db.session):
        staff = StaffAccount(merchant_id=merchant_id, username=username, role=role,
                             password_hash=password_hash())
        db.session.add(staff)
    current = app_settings()
    token, _ = issue_token(secret_key=current.secret_key, audience="console", subject=staff.id,
                           ttl_seconds=current.console_token_ttl_seconds)
    return {"Authorization": f"Bearer {token}"}


def product_body(product: Product) -> dict:
    body = {"title": product.key, "price_fen": product.price_fen, "stock": 1_000_000}
    if product.mode == "not_distributable":
        body["is_distributable"] = False
    elif product.mode != "plan":
        body["commission_override"] = {"mode": product.mode, "values": list(product.values)}
    return body


def open_shop(client, sandbox_url: str) -> Shop:
    from app.services.merchants import update_program_rules

    merchant = make_merchant(name="流水小铺")
    update_program_rules(merchant_id=merchant.id, changes={
        **{name: getattr(RULES, name) for name in RULES.__dataclass_fields__},
        "tier_rates_bps": list(RULES.tier_rates_bps), **NO_RISK_HOLDS})
    owner = staff_headers(merchant.id, "flow-owner", "owner")
    account = sandbox_merchant(sandbox_url, "v3_public_key")
    response = client.put("/api/console/v1/settings/payment", json=settings_body(account),
                          headers=owner)
    assert response.status_code == 200, response.get_json()
    products = {}
    for product in PRODUCTS:
        response = client.post("/api/console/v1/products", headers=owner,
                               json=product_body(product))
        assert response.status_code == 201, response.get_json()
        products[product.key] = response.get_json()["id"]
    members: dict[str, tuple[int, int, dict]] = {}
    for name, upline, status in TREE:
        response = client.post("/api/mp/v1/auth/login", json={"code": sandbox_code(name)})
        assert response.status_code == 200, response.get_json()
        session = response.get_json()
        user = db.session.get(User, session["user"]["id"])
        member = make_member(merchant, user=user, status=status,
                             upline=None if upline is None else _member_row(merchant,
                                                                             members[upline]))
        members[name] = (member.id, user.id, {"Authorization": f"Bearer {session['token']}"})
    return Shop(merchant.id, account["mch_id"], account["appid"], owner,
                staff_headers(merchant.id, "flow-finance", "finance"), products, members)


def _member_row(merchant, entry):
    from app.models import Member as MemberRow

    return db.session.get(MemberRow, (merchant.id, entry[0]))


def refusal_of(response) -> tuple[int, str] | None:
    if response.status_code < 300:
        return None
    return response.status_code, response.get_json()["code"]


# --- the checks after every step ----------------------------------------------------------------


def clean_state() -> None:
    """What tests/conftest.py's _clean_state does after a test, done before each example."""
    db.session.remove()
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()
    redis.client.flushdb()


def sql_balances(merchant_id: int) -> dict[int, dict[str, int]]:
    """owner id (0: the merchant) -> {kind: balance} from the stored balances."""
    found: dict[int, dict[str, int]] = {}
    for owner, kind, balance in db.session.execute(select(
            LedgerAccount.owner_id, LedgerAccount.kind, LedgerAccount.balance_fen).where(
            LedgerAccount.merchant_id == merchant_id)):
        found.setdefault(owner, {})[kind] = balance
    return found


def wallet_of(balances: dict[int, dict[str, int]], member_id: int) -> dict[str, int]:
    return {kind: balances.get(member_id, {}).get(kind, 0) for kind in wallet_mirror.WALLET_FIELDS}


def assert_mirror_equals_sql(merchant_id: int, ids: dict[str, int],
                             balances: dict[int, dict[str, int]], *, skip=()) -> None:
    for name, member_id in ids.items():
        if member_id in skip:
            continue
        sql = wallet_of(balances, member_id)
        mirrored = wallet_mirror.read_wallet(redis.client, merchant_id, member_id)
        # Never mirrored is fine only for a wallet that never held anything.
        assert mirrored == sql or (mirrored is None and not any(sql.values())), (name, sql,
                                                                                  mirrored)


def assert_ledger_sound(merchant_id: int) -> None:
    report = ledger.verify(merchant_id)
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])


def assert_wallets(merchant_id: int, model: MoneyModel, ids: dict[str, int],
                   balances: dict[int, dict[str, int]]) -> None:
    for name, member_id in ids.items():
        wallet = wallet_of(balances, member_id)
        assert wallet == model.wallets[name], name
        assert min(wallet["pending"], wallet["withdrawing"], wallet["paid_out"]) >= 0, name
        if wallet["available"] < 0:  # a debt comes only from taking back settled commission
            assert db.session.scalar(select(func.count()).select_from(LedgerEntry).join(
                Journal, (Journal.merchant_id == LedgerEntry.merchant_id)
                & (Journal.id == LedgerEntry.journal_id)).join(
                LedgerAccount, (LedgerAccount.merchant_id == LedgerEntry.merchant_id)
                & (LedgerAccount.id == LedgerEntry.account_id)).where(
                LedgerEntry.merchant_id == merchant_id, Journal.kind == "reversal",
                LedgerAccount.owner_id == member_id, LedgerAccount.kind == "available")), name
    merchant = balances.get(0, {})
    assert merchant.get("commission_expense", 0) == model.commission_expense
    assert merchant.get("payout_clearing", 0) == 0


def assert_orders(merchant_id: int, model: MoneyModel, names: dict[int, str]) -> None:
    rows = db.session.execute(select(OrderRow.id, OrderRow.status, OrderRow.refunded_fen,
                                     OrderRow.transaction_id, OrderRow.paid_fen).where(
        OrderRow.merchant_id == merchant_id)).all()
    assert {r.id: (r.status, r.refunded_fen) for r in rows} == {
        i: (o.status, o.refunded_fen) for i, o in model.orders.items()}
    for row in rows:
        assert (row.transaction_id is not None) == (
            model.orders[row.id].status not in ("created", "cancelled")), row.id
    accruals = db.session.execute(select(Journal.order_id, func.count()).where(
        Journal.merchant_id == merchant_id, Journal.kind == "accrual")
        .group_by(Journal.order_id)).all()
    assert dict(accruals) == {i: 1 for i, o in model.orders.items() if o.parts}
    parts = db.session.execute(select(
        Commission.order_id, Commission.line_no, Commission.tier, Commission.member_id,
        Commission.base_fen, Commission.amount_fen, Commission.reversed_fen,
        Commission.status).where(Commission.merchant_id == merchant_id)).all()
    assert sorted((p[0], p[1], p[2], names[p[3]], *p[4:]) for p in parts) == sorted(
        (o.id, p.line_no, p.tier, p.member, p.base_fen, p.amount_fen, p.reversed_fen,
         p.status) for o in model.orders.values() for p in o.parts)
    assert_caps(parts, {r.id: r.paid_fen for r in rows})


def assert_caps(parts, paid_fen: dict[int, int]) -> None:
    """From SQL alone: no line pays more than max_total_bps of its base (nor its base), no
    order more than it was paid, and nothing is reversed beyond what was earned."""
    lines: dict[tuple[int, int], list[int]] = {}
    per_order: dict[int, int] = {}
    for order_id, line_no, _, _, base, amount, reversed_fen, _ in parts:
        assert 0 <= reversed_fen <= amount
        lines.setdefault((order_id, line_no), [base, 0])[1] += amount
        per_order[order_id] = per_order.get(order_id, 0) + amount
    for (order_id, line_no), (base, total) in lines.items():
        assert total <= min(base, base * RULES.max_total_bps // BPS), (order_id, line_no)
    for order_id, total in per_order.items():
        assert total <= paid_fen[order_id], order_id


def assert_refunds_and_withdrawals(merchant_id: int, model: MoneyModel) -> None:
    refund_rows = db.session.execute(select(RefundRow.id, RefundRow.status, RefundRow.amount_fen)
                                     .where(RefundRow.merchant_id == merchant_id)).all()
    assert {r.id: (r.status, r.amount_fen) for r in refund_rows} == {
        i: (r.status, r.amount_fen) for i, r in model.refunds.items()}
    withdrawal_rows = db.session.execute(select(
        WithdrawalRow.id, WithdrawalRow.status, WithdrawalRow.amount_fen, WithdrawalRow.fee_fen)
        .where(WithdrawalRow.merchant_id == merchant_id)).all()
    assert {w.id: tuple(w[1:]) for w in withdrawal_rows} == {
        i: (w.status, w.amount_fen, w.fee_fen) for i, w in model.withdrawals.items()}


def assert_totals_and_rankings(merchant_id: int, model: MoneyModel,
                               names: dict[int, str]) -> None:
    rows = db.session.execute(select(PeriodTotal.member_id, PeriodTotal.period,
                                     PeriodTotal.commission_fen, PeriodTotal.sales_fen).where(
        PeriodTotal.merchant_id == merchant_id)).all()
    assert {(names[r[0]], r[1]): (r[2], r[3]) for r in rows} == model.commission_totals()
    for period in {r[1] for r in rows}:
        for measure, column in (("commission", 2), ("sales", 3)):
            ranked = dict(redis.client.zrange(redis_keys.ranking(merchant_id, period, measure),
                                              0, -1, withscores=True))
            assert {int(m): int(s) for m, s in ranked.items()} == {
                r[0]: r[column] for r in rows if r[1] == period}, (period, measure)


def assert_books_match(merchant_id: int, model: MoneyModel, ids: dict[str, int]) -> None:
    names = {member_id: name for name, member_id in ids.items()}
    db.session.rollback()  # read what every request and job committed
    waiting = set(db.session.scalars(select(WalletOutbox.member_id).where(
        WalletOutbox.merchant_id == merchant_id)))
    balances = sql_balances(merchant_id)
    # The fast path: a wallet with nothing left in the outbox is mirrored already.
    assert_mirror_equals_sql(merchant_id, ids, balances, skip=waiting)
    wallets.sweep_outbox(redis.client)  # the sweeper job; it moves no money
    assert_mirror_equals_sql(merchant_id, ids, balances)
    assert_wallets(merchant_id, model, ids, balances)
    assert_ledger_sound(merchant_id)
    assert_orders(merchant_id, model, names)
    assert_refunds_and_withdrawals(merchant_id, model)
    assert_totals_and_rankings(merchant_id, model, names)
    assert db.session.scalar(select(func.count()).select_from(RiskFlag).where(
        RiskFlag.merchant_id == merchant_id)) == 0
    db.session.rollback()


class MoneyFlow(RuleBasedStateMachine):
    """One shop, six members, five products; the rules below are what can happen to money."""

    client = None
    sandbox_url = ""

    def __init__(self):
        super().__init__()
        clean_state()
        self.shop = open_shop(self.client, self.sandbox_url)
        self.model = MoneyModel(RULES, {name: Member(upline, status)
                                        for name, upline, status in TREE})
        self.offset = timedelta(0)
        self.notifications: list[str] = []
        self.keys = itertools.count(1)
        STATS["examples"] += 1

    def now(self):
        return utcnow() + self.offset

    def step(self, name: str) -> None:
        STATS["steps"] += 1
        STATS[name] += 1

    def member_id(self, name: str) -> int:
        return self.shop.members[name][0]

    def pick(self, data, eligible, every):
        """Mostly something the action can apply to; now and then anything (a refusal)."""
        eligible = sorted(eligible)
        # Hypothesis favours (and shrinks towards) 0, so 0 means "something sensible".
        anything = data.draw(st.integers(0, 4), label="anything") == 4
        return data.draw(st.sampled_from(eligible if eligible and not anything
                                         else sorted(every)))

    # -- the opening: money in every state from the first step ---------------------------------

    @initialize(purchases=st.lists(st.tuples(st.sampled_from(("dan", "eve", "fay")),
                                             st.sampled_from(PRODUCTS[:3]), st.integers(1, 3),
                                             st.booleans()), min_size=1, max_size=3),
                paid_out=st.booleans())
    def the_shop_has_a_history(self, purchases, paid_out):
        """Orders that pay commission, paid, shipped and received: those marked settled a
        freeze ago (their commission is available), the others just now (pending, due in
        ``freeze_days``). With ``paid_out`` every earner has been paid all that was
        available (a refund of a settled order now leaves a debt)."""
        STATS["histories"] += 1
        for settled in (True, False):
            for buyer, product, quantity, _ in filter(lambda p: p[3] == settled, purchases):
                order_id = self._order(buyer, [(product, quantity)])
                self._pay(order_id, "notify", 1)
                for action in ("ship", "receive"):
                    self._fulfil(order_id, action)
            if settled:
                self._time_passes(hours=RULES.freeze_days * 24 + 1)
        for member, wallet in self.model.wallets.items():
            if paid_out and wallet["available"] >= RULES.withdraw_min_fen:
                self._withdraw(member, "all", repeat=False, then="mark-paid")

    # -- orders and payments -------------------------------------------------------------------

    @rule(buyer=st.sampled_from(NAMES),
          items=st.lists(st.tuples(st.sampled_from(PRODUCTS), st.integers(1, 3)), min_size=1,
                         max_size=3),
          then=st.sampled_from(["notify", "notify", "query", "leave unpaid"]),
          copies=st.integers(1, 3), fulfil=st.sampled_from(["", "ship", "ship receive"]))
    def buyer_orders(self, buyer, items, then, copies, fulfil):
        """A new order, paid by notification (copies of it) or found by the recovery job,
        maybe shipped and received at once."""
        self.step("buyer_orders")
        order_id = self._order(buyer, items)
        if then != "leave unpaid":
            self._pay(order_id, then, copies)
            for action in fulfil.split():
                self._fulfil(order_id, action)

    def _order(self, buyer: str, items: list[tuple[Product, int]]) -> int:
        merged: dict[Product, int] = {}
        for product, quantity in items:
            merged[product] = merged.get(product, 0) + quantity
        response = self.client.post(
            f"/api/mp/v1/merchants/{self.shop.merchant_id}/orders",
            headers=self.shop.members[buyer][2], json={"address": ADDRESS, "items": [
                {"product_id": self.shop.products[p.key], "quantity": q}
                for p, q in merged.items()]})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        # Lines are numbered in product order, as the service merges and sorts them.
        lines = sorted(merged.items(), key=lambda item: self.shop.products[item[0].key])
        order = self.model.create_order(body["id"], body["out_trade_no"], buyer, lines)
        assert (body["status"], body["paid_fen"]) == ("created", order.goods_fen)
        return order.id

    @precondition(lambda self: any(o.status == "created" for o in self.model.orders.values()))
    @rule(data=st.data(), how=st.sampled_from(["notify", "query"]), copies=st.integers(1, 3))
    def buyer_pays(self, data, how, copies):
        self.step("buyer_pays")
        self._pay(data.draw(st.sampled_from(sorted(
            i for i, o in self.model.orders.items() if o.status == "created"))), how, copies)

    def _pay(self, order_id: int, how: str, copies: int) -> None:
        order = self.model.orders[order_id]
        paid = pay(self.sandbox_url, self.shop.mch_id, order.out_trade_no)
        self.notifications.append(paid["notification_id"])
        if how == "notify":
            period = business_month(utcnow())
            for _ in range(copies):
                reply = deliver(self.client, self.sandbox_url, paid["notification_id"])
                assert reply.status_code == 204, reply.get_data(as_text=True)
        else:  # the notification is lost: the recovery job asks WeChat
            now = self.now() + payments.EXPECTED_PAYMENT_TIME + timedelta(minutes=1)
            period = business_month(now)
            assert payments.recover_payments(pay_config(), now=now)["recovered"] == 1
        self.model.pay(order_id, period=period)
        STATS[f"payment by {how}"] += 1

    @precondition(lambda self: self.notifications)
    @rule(data=st.data())
    def wechat_repeats_an_old_notification(self, data):
        self.step("wechat_repeats_an_old_notification")
        note = data.draw(st.sampled_from(self.notifications))
        reply = deliver(self.client, self.sandbox_url, note)
        assert reply.status_code == 204, reply.get_data(as_text=True)

    @precondition(lambda self: any(o.status not in ("created", "cancelled")
                                   for o in self.model.orders.values()))
    @rule(data=st.data(), transaction=st.integers(10**9, 10**10 - 1))
    def wechat_reports_a_second_payment_of_a_paid_order(self, data, transaction):
        """Genuinely signed, but another transaction of an order already paid: refused (WeChat
        retries; the money must be refunded by hand) and nothing moves."""
        self.step("wechat_reports_a_second_payment_of_a_paid_order")
        order = self.model.orders[data.draw(st.sampled_from(sorted(
            i for i, o in self.model.orders.items() if o.status not in ("created", "cancelled"))))]
        total = order.goods_fen
        note = control(self.sandbox_url, "POST", "/sandbox/notifications/custom", {
            "mch_id": self.shop.mch_id, "event_type": "TRANSACTION.SUCCESS",
            "url": f"http://wechat-callback.invalid/webhooks/wechatpay/v3/{self.shop.merchant_id}",
            "resource": {
                "appid": self.shop.appid, "mchid": self.shop.mch_id,
                "out_trade_no": order.out_trade_no,
                "transaction_id": f"420000000020240101{transaction}", "trade_type": "JSAPI",
                "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
                "success_time": "2024-01-01T12:00:00+08:00", "payer": {"openid": "oPayer"},
                "amount": {"total": total, "payer_total": total, "currency": "CNY",
                           "payer_currency": "CNY"}}})
        reply = deliver(self.client, self.sandbox_url, note["notification_id"])
        assert (reply.status_code, reply.get_json()) == (
            400, {"code": "FAIL", "message": "paid_by_another_transaction"})

    # -- fulfilment and time -------------------------------------------------------------------

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), what=st.sampled_from(["ship", "receive", "ship receive"]))
    def merchant_ships_and_buyer_receives(self, data, what):
        self.step("merchant_ships_and_buyer_receives")
        order_id = self.pick(data, [i for i, o in self.model.orders.items()
                                    if self.model.ship_refusal(o) is None
                                    or self.model.receive_refusal(o) is None],
                             self.model.orders)
        for action in what.split():
            self._fulfil(order_id, action)

    def _fulfil(self, order_id: int, action: str) -> None:
        now = self.now()
        try:
            if action == "ship":
                orders.ship(merchant_id=self.shop.merchant_id, order_id=order_id,
                            carrier="顺丰", tracking_no="SF1", now=now)
            else:
                orders.receive(merchant_id=self.shop.merchant_id, order_id=order_id,
                               user_id=self.shop.members[self.model.orders[order_id].buyer][1],
                               now=now)
            code = None
        except Conflict as exc:
            db.session.rollback()
            code = exc.code
        expected = (self.model.ship if action == "ship" else self.model.receive)(order_id, now)
        assert code == expected, (action, order_id)

    @rule(hours=st.sampled_from(HOURS))
    def time_passes_and_the_jobs_run(self, hours):
        self.step("time_passes_and_the_jobs_run")
        self._time_passes(hours)

    def _time_passes(self, hours: int) -> None:
        """Unpaid orders are cancelled (after 30 minutes), shipped ones received, received
        ones completed, due commission settled, bills unconfirmed for 24 hours cancelled."""
        self.offset += timedelta(hours=hours)
        now = self.now()
        payments.cancel_unpaid(pay_config(), now=now)
        if self.offset >= orders.UNPAID_TIMEOUT:  # orders are created at the real time
            self.model.cancel_unpaid()
        with transaction(db.session):
            orders.auto_receive_due(now=now)
        with transaction(db.session):
            orders.complete_due(now=now)
        self.model.advance_orders(now)
        while True:
            with transaction(db.session):
                if commissions.settle_due(now=now) == 0:
                    break
        self.model.settle(now)
        withdrawals.sync_transfers(pay_config(), now=now)
        if self.offset >= withdrawals.CONFIRM_WINDOW:
            for withdrawal in self.model.withdrawals.values():
                if withdrawal.status == "transferring":
                    self.model.give_back(withdrawal.id, "failed")

    # -- refunds -------------------------------------------------------------------------------

    def _refund_amount(self, data, order, kind: str) -> int | None:
        left = order.goods_fen - order.refunded_fen
        if kind == "part" and left > 1:
            return data.draw(st.integers(1, left - 1))
        return {"all": None, "tiny": data.draw(st.integers(1, 3)), "too much": left + 1,
                "part": None}[kind]

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data(), kind=st.sampled_from(["all", "part", "part", "tiny", "too much"]),
          by=st.sampled_from(["merchant", "buyer"]), then=st.sampled_from(REFUND_ENDINGS))
    def someone_asks_for_a_refund(self, data, kind, by, then):
        """The merchant refunds, or the buyer asks and finance approves; WeChat then answers
        at once (``then``) or later (another rule)."""
        self.step("someone_asks_for_a_refund")
        order = self.model.orders[self.pick(
            data, [i for i, o in self.model.orders.items()
                   if self.model.refund_refusal(o, None) is None], self.model.orders)]
        amount = self._refund_amount(data, order, kind)
        body = {"reason": "不想要了", **({} if amount is None else {"amount_fen": amount})}
        if by == "merchant":
            response = self.client.post(f"/api/console/v1/orders/{order.id}/refunds",
                                        headers=self.shop.finance, json=body)
        else:
            response = self.client.post(
                f"/api/mp/v1/merchants/{self.shop.merchant_id}/orders/{order.id}"
                "/refund-requests", headers=self.shop.members[order.buyer][2], json=body)
        expected = self.model.refund_refusal(order, amount)
        assert refusal_of(response) == expected, response.get_json()
        STATS[f"refund refused: {expected[1]}" if expected else "refund opened"] += 1
        if expected is not None:
            return
        refund = response.get_json()
        assert refund["amount_fen"] == (amount or order.goods_fen - order.refunded_fen)
        self.model.open_refund(Refund(refund["id"], order.id, refund["out_refund_no"],
                                      refund["amount_fen"], "requested"),
                               processing=by == "merchant")
        assert refund["status"] == self.model.refunds[refund["id"]].status
        if then != "later":
            if by == "buyer":
                self._review_refund(refund["id"], approve=True)
            self._finish_refund(refund["id"], then, "notify", 1)

    @precondition(lambda self: any(r.status == "requested"
                                   for r in self.model.refunds.values()))
    @rule(data=st.data(), approve=st.booleans())
    def merchant_reviews_a_refund_request(self, data, approve):
        self.step("merchant_reviews_a_refund_request")
        self._review_refund(data.draw(st.sampled_from(sorted(
            i for i, r in self.model.refunds.items() if r.status == "requested"))), approve)

    def _review_refund(self, refund_id: int, approve: bool) -> None:
        response = self.client.post(
            f"/api/console/v1/refunds/{refund_id}/{'approve' if approve else 'reject'}",
            headers=self.shop.finance, json={"reason": "核实"})
        assert response.status_code == 200, response.get_json()
        if approve:
            self.model.submit_refund(refund_id)
        else:
            self.model.refunds[refund_id].status = "rejected"
        assert response.get_json()["status"] == self.model.refunds[refund_id].status

    @precondition(lambda self: any(r.status in ("processing", "abnormal")
                                   for r in self.model.refunds.values()))
    @rule(data=st.data(), outcome=st.sampled_from(REFUND_ENDINGS[1:]),
          how=st.sampled_from(["notify", "query"]), copies=st.integers(1, 2))
    def wechat_finishes_a_refund(self, data, outcome, how, copies):
        self.step("wechat_finishes_a_refund")
        self._finish_refund(data.draw(st.sampled_from(sorted(
            i for i, r in self.model.refunds.items() if r.status in ("processing", "abnormal")))),
            outcome, how, copies)

    def _finish_refund(self, refund_id: int, outcome: str, how: str, copies: int) -> None:
        refund = self.model.refunds[refund_id]
        done = complete_refund(self.sandbox_url, self.shop.mch_id, refund.out_refund_no,
                               outcome)
        self.notifications.append(done["notification_id"])
        if how == "notify":
            for _ in range(copies):
                reply = deliver(self.client, self.sandbox_url, done["notification_id"])
                assert reply.status_code == 204, reply.get_data(as_text=True)
        else:  # the notification is lost: the sync job asks WeChat
            refunds.sync_open_refunds(pay_config(),
                                      now=utcnow() + refunds.SYNC_AFTER + timedelta(minutes=1))
        self.model.finish_refund(refund_id, outcome)
        STATS[f"refund {outcome} by {how}"] += 1

    # -- withdrawals ---------------------------------------------------------------------------

    @rule(data=st.data(), amount=WITHDRAWAL_AMOUNTS, repeat=st.booleans(),
          then=st.sampled_from(WITHDRAWAL_ENDINGS))
    def distributor_withdraws(self, data, amount, repeat, then):
        """A request (sent twice with one Idempotency-Key when ``repeat``); finance and WeChat
        then act at once (``then``) or later (other rules)."""
        self.step("distributor_withdraws")
        self._withdraw(self.pick(data, [n for n, w in self.model.wallets.items()
                                        if w["available"] >= RULES.withdraw_min_fen], NAMES),
                       amount, repeat=repeat, then=then)

    def _withdraw(self, member: str, amount: int | str, *, repeat: bool, then: str) -> None:
        if isinstance(amount, str):
            most = self.model.wallets[member]["available"] * BPS // (
                BPS + RULES.withdraw_fee_bps)
            amount = max(most if amount == "all" else most // 2, 1)
        day = business_day(utcnow())
        expected = self.model.withdrawal_refusal(member, amount, day)
        headers = {**self.shop.members[member][2], "Idempotency-Key": f"w-{next(self.keys)}"}
        url = f"/api/mp/v1/merchants/{self.shop.merchant_id}/withdrawals"
        replies = [self.client.post(url, headers=headers, json={"amount_fen": amount})
                   for _ in range(2 if repeat else 1)]
        for response in replies:
            assert refusal_of(response) == expected, (response.get_json(), amount)
        STATS[f"withdrawal refused: {expected[1]}" if expected else "withdrawal accepted"] += 1
        if expected is not None:
            return
        body = replies[0].get_json()
        assert {r.get_json()["id"] for r in replies} == {body["id"]}
        withdrawal = Withdrawal(body["id"], member, amount, self.model.fee_for(amount), day,
                                "requested", f"W{self.shop.merchant_id}N{body['id']:08d}")
        self.model.request_withdrawal(withdrawal)
        assert body["status"] == withdrawal.status
        if then in ("reject", "mark-paid") or (then != "later"
                                               and withdrawal.status == "requested"):
            self._review_withdrawal(withdrawal.id, "approve" if then in TRANSFER_ENDINGS
                                    else then)
        if then in TRANSFER_ENDINGS:
            self._finish_transfer(withdrawal.id, then, "notify", 1)

    @precondition(lambda self: self.model.withdrawals)
    @rule(data=st.data(), action=st.sampled_from(["approve", "reject", "mark-paid"]))
    def finance_reviews_a_withdrawal(self, data, action):
        self.step("finance_reviews_a_withdrawal")
        self._review_withdrawal(self.pick(
            data, [i for i, w in self.model.withdrawals.items() if w.status == "requested"],
            self.model.withdrawals), action)

    def _review_withdrawal(self, withdrawal_id: int, action: str) -> None:
        withdrawal = self.model.withdrawals[withdrawal_id]
        body = {"approve": None, "reject": {"reason": "信息不符"},
                "mark-paid": {"reference": "BANK-1"}}[action]
        response = self.client.post(f"/api/console/v1/withdrawals/{withdrawal.id}/{action}",
                                    headers=self.shop.finance, json=body)
        if withdrawal.status != "requested":
            assert refusal_of(response) == (409, "illegal_withdrawal_transition")
            return
        assert response.status_code == 200, response.get_json()
        STATS[f"withdrawal {action}"] += 1
        if action == "approve":
            withdrawal.status = "transferring"
        elif action == "reject":
            self.model.give_back(withdrawal.id, "rejected")
        else:
            self.model.pay_out(withdrawal.id)
        assert response.get_json()["status"] == withdrawal.status

    @precondition(lambda self: any(w.status == "transferring"
                                   for w in self.model.withdrawals.values()))
    @rule(data=st.data(), action=st.sampled_from(TRANSFER_ENDINGS),
          how=st.sampled_from(["notify", "query"]), copies=st.integers(1, 2))
    def wechat_finishes_a_transfer(self, data, action, how, copies):
        self.step("wechat_finishes_a_transfer")
        self._finish_transfer(data.draw(st.sampled_from(sorted(
            i for i, w in self.model.withdrawals.items() if w.status == "transferring"))),
            action, how, copies)

    def _finish_transfer(self, withdrawal_id: int, action: str, how: str, copies: int) -> None:
        withdrawal = self.model.withdrawals[withdrawal_id]
        done = control(self.sandbox_url, "POST",
                       f"/sandbox/transfers/{self.shop.mch_id}/{withdrawal.out_bill_no}/{action}")
        self.notifications.append(done["notification_id"])
        if how == "notify":
            for _ in range(copies):
                reply = deliver(self.client, self.sandbox_url, done["notification_id"])
                assert reply.status_code == 204, reply.get_data(as_text=True)
        else:  # the notification is lost: the sync job asks WeChat
            withdrawals.sync_transfers(pay_config(), now=utcnow() + timedelta(minutes=2))
        if action == "confirm":
            self.model.pay_out(withdrawal.id)
        else:
            self.model.give_back(withdrawal.id, "failed")
        STATS[f"transfer {action} by {how}"] += 1

    # -- the tree ------------------------------------------------------------------------------

    @rule(member=st.sampled_from(NAMES), upline=st.sampled_from(NAMES))
    def operator_moves_a_member(self, member, upline):
        self.step("operator_moves_a_member")
        response = self.client.post(
            f"/api/console/v1/distributors/{self.member_id(member)}/move",
            headers=self.shop.owner, json={"upline_id": self.member_id(upline),
                                           "reason": "调整团队"})
        refusal = self.model.move(member, upline)
        assert refusal_of(response) == (None if refusal is None else (409, refusal))
        STATS[f"move refused: {refusal}" if refusal else "move done"] += 1

    @rule(member=st.sampled_from(NAMES), action=st.sampled_from(["freeze", "unfreeze"]))
    def operator_freezes_or_unfreezes(self, member, action):
        self.step("operator_freezes_or_unfreezes")
        response = self.client.post(
            f"/api/console/v1/distributors/{self.member_id(member)}/{action}",
            headers=self.shop.owner, json={"reason": "风险核查"})
        changed = self.model.review(member, action)
        STATS[f"{action} {'done' if changed else 'refused'}"] += 1
        assert refusal_of(response) == (None if changed else (409,
                                                              "invalid_status_transition"))

    # -- after every step ----------------------------------------------------------------------

    @invariant()
    def the_books_match_the_model(self):
        STATS["checks with a debt"] += any(w["available"] < 0
                                           for w in self.model.wallets.values())
        assert_books_match(self.shop.merchant_id, self.model,
                           {name: entry[0] for name, entry in self.shop.members.items()})


# Passing takes a few minutes at most; a failure is then shrunk for up to five more
# (Hypothesis's own limit) so that the report shows a short sequence of steps.
@pytest.mark.timeout(900)
def test_the_money_flow_matches_its_reference_model_after_every_step(app_context, client,
                                                                     sandbox_url):
    STATS.clear()
    started = time.monotonic()
    machine = type("BoundMoneyFlow", (MoneyFlow,), {"client": client,
                                                    "sandbox_url": sandbox_url})
    run_state_machine_as_test(machine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    print(f"\nmoney flow: {STATS['examples']} examples, {STATS['steps']} steps in "
          f"{time.monotonic() - started:.0f}s; "
          + ", ".join(f"{k} {v}" for k, v in sorted(STATS.items())
                      if k not in ("examples", "steps")))
    assert STATS["examples"] >= EXAMPLES and STATS["steps"] > 0
