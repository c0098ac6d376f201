"""The ledger against a reference model, on PostgreSQL and a real redis-server.

A hypothesis state machine drives the real services — orders created and paid (make_order,
pay_order), accruals posted directly (ledger.post), duplicates of both, receipts and settlement
(schedule_settlement, settle_due), freezes, partial and full refunds (reverse_for_refund),
withdrawals and payouts (so that a later refund leaves a debt), attempts to overdraw — while
Redis is flushed, stopped and started again, and mirrored (mirror_members, sweep_outbox,
rebuild_cache) at random points. After every step it checks the database against plain
dictionaries of what every balance should be, the ledger's own invariants (ledger.verify), and
the Redis mirror against SQL wherever the mirror claims to be current.

Redis here is a redis-server of this test's own: stopping it never disturbs the shared one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from types import SimpleNamespace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text

from app.database import transaction, utcnow
from app.domain import ledger as rules
from app.domain.ledger import AVAILABLE, PAID_OUT, PENDING, WALLET_KINDS, WITHDRAWING, Entry
from app.domain.ledger import wallet as account
from app.extensions import db, redis
from app.integrations import wallet_mirror
from app.models import Commission, Journal, LedgerAccount, Order, PeriodTotal, WalletOutbox
from app.services import commissions, ledger, members, wallets
from tests.factories import make_member, make_merchant, make_order, pay_order
from tests.support.servers import RedisServer

SHOPS = 2
# Each shop's tree: g (root) → p → b, p → d, g → c. b and c only buy; g, p, d distribute.
UPLINES = {"g": None, "p": "g", "b": "p", "d": "p", "c": "g"}
NAMES = sorted(UPLINES)
DISTRIBUTORS = ("d", "g", "p")
BUYERS = ("b", "c", "d", "p")
RATES_BPS = {1: 1000, 2: 500}  # the default plan
FREEZE_DAYS = 7
# How each order goes on right after it is created.
ORDER_PATHS = ("unpaid", "paid", "received", "past_freeze", "settled")
# Moves that take 1 fen more than the account holds: (from, to, guard available?).
OVERDRAWS = {AVAILABLE: (AVAILABLE, WITHDRAWING, True), PENDING: (PENDING, AVAILABLE, False),
             WITHDRAWING: (WITHDRAWING, AVAILABLE, False),
             PAID_OUT: (PAID_OUT, WITHDRAWING, False)}
shops = st.integers(0, SHOPS - 1)
picks = st.integers(0, 10**6)


def reset_database() -> None:
    """Each example starts empty: the autouse cleanup runs only after the whole test."""
    db.session.remove()
    tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
    db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.session.commit()


def redis_is_up(server: RedisServer) -> bool:
    return server.process is not None and server.process.poll() is None


def post(merchant_id: int, key: str, entries: list[Entry], **options):
    with transaction(db.session):
        return ledger.post(merchant_id=merchant_id, idempotency_key=key, kind="test",
                           entries=entries, **options)


class LedgerMachine(RuleBasedStateMachine):
    server: RedisServer  # set by the test

    def __init__(self):
        super().__init__()
        if not redis_is_up(self.server):
            self.server.start()
        redis.client.flushall()
        reset_database()
        self.redis_up = True
        # Complete: nothing was lost from Redis since the example began or the last rebuild,
        # so every wallet and ranking not waiting in the outbox must be in the mirror.
        self.complete = True
        self.shops: list[int] = []
        self.ids: list[dict[str, int]] = []
        for _ in range(SHOPS):
            shop = make_merchant()
            made: dict[str, object] = {}
            for name, upline in UPLINES.items():
                made[name] = make_member(shop, upline=made.get(upline),
                                         status="active" if name in DISTRIBUTORS else "none")
            self.shops.append(shop.id)
            self.ids.append({name: member.id for name, member in made.items()})
        # The model: plain values only.
        self.balance: dict[tuple[int, int, str], int] = defaultdict(int)
        self.expense: dict[int, int] = defaultdict(int)
        self.commission_totals: dict[tuple[int, int], int] = defaultdict(int)
        self.frozen: set[tuple[int, int]] = set()
        self.orders: list[dict] = []
        self.direct: list[tuple[int, str]] = []
        self.journals = 0
        self.n = 0

    def teardown(self):
        if not redis_is_up(self.server):
            self.server.start()
        db.session.remove()

    # --- model helpers ------------------------------------------------------------------------

    def _key(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def _member(self, shop: int, name: str) -> tuple[int, int]:
        return self.shops[shop], self.ids[shop][name]

    def _active(self, merchant_id: int, member_id: int) -> bool:
        return (merchant_id, member_id) not in self.frozen

    def _move(self, merchant_id: int, member_id: int, kind: str, amount: int) -> None:
        self.balance[(merchant_id, member_id, kind)] += amount

    def _expected_parts(self, shop: int, buyer: str, bases: list[int]) -> list[dict]:
        """The default plan by hand: floor(base × rate) per (line, tier), active uplines only,
        no compression."""
        merchant_id = self.shops[shop]
        chain, link = [], UPLINES[buyer]
        while link is not None and len(chain) < 2:
            chain.append(link)
            link = UPLINES[link]
        parts = []
        for line_no, base in enumerate(bases, start=1):
            for tier, name in enumerate(chain, start=1):
                member_id = self.ids[shop][name]
                amount = base * RATES_BPS[tier] // 10_000
                if self._active(merchant_id, member_id) and amount > 0:
                    parts.append({"line": line_no, "tier": tier, "member": member_id,
                                  "amount": amount, "reversed": 0, "status": "pending",
                                  "due": False})
        return parts

    def _outbox_rows(self) -> list[tuple]:
        rows = db.session.execute(select(WalletOutbox.id, WalletOutbox.merchant_id,
                                         WalletOutbox.member_id, WalletOutbox.period)
                                  .order_by(WalletOutbox.id)).all()
        db.session.rollback()
        return [tuple(row) for row in rows]

    # --- orders -------------------------------------------------------------------------------

    @rule(shop=shops, buyer=st.sampled_from(BUYERS),
          lines=st.lists(st.tuples(st.integers(1, 20_000), st.integers(1, 3)), min_size=1,
                         max_size=2),
          discount_per_mille=st.integers(0, 500), then=st.sampled_from(ORDER_PATHS))
    def create_order(self, shop, buyer, lines, discount_per_mille, then):
        """An order, paid later (after freezes that must not change it) or at once, and maybe
        received within or past the after-sale window — and then settled by the job."""
        goods = sum(price * quantity for price, quantity in lines)
        # A discount on one-line orders only: that line's base is simply goods less discount.
        discount = goods * discount_per_mille // 1_000 if len(lines) == 1 else 0
        merchant_id, buyer_id = self._member(shop, buyer)
        made = make_order(SimpleNamespace(merchant_id=merchant_id, id=buyer_id), lines=lines,
                          discount_fen=discount)
        bases = [price * quantity for price, quantity in lines]
        bases[0] -= discount
        order = {"merchant": merchant_id, "id": made.id, "paid": False,
                 "goods_paid": goods - discount, "refunded": 0, "last_refund": None,
                 "parts": self._expected_parts(shop, buyer, bases)}
        self.orders.append(order)
        if then != "unpaid":
            self._pay(order)
        if then in ("received", "past_freeze", "settled"):
            self._receive(order, days_ago=0 if then == "received" else FREEZE_DAYS + 1)
        if then == "settled":
            self.settle()

    @precondition(lambda self: self.orders)
    @rule(pick=picks)
    def pay(self, pick):
        """Pays an unpaid order, or pays a paid one again (a duplicate: nothing moves)."""
        order = self.orders[pick % len(self.orders)]
        if order["paid"]:
            assert pay_order(SimpleNamespace(merchant_id=order["merchant"], id=order["id"])) \
                == []
        else:
            self._pay(order)

    def _pay(self, order: dict) -> None:
        rows = pay_order(SimpleNamespace(merchant_id=order["merchant"], id=order["id"]))
        assert sorted((r.line_no, r.tier, r.member_id, r.amount_fen) for r in rows) == sorted(
            (p["line"], p["tier"], p["member"], p["amount"]) for p in order["parts"])
        order["paid"] = True
        for part in order["parts"]:
            self._move(order["merchant"], part["member"], PENDING, part["amount"])
            self.expense[order["merchant"]] -= part["amount"]
            self.commission_totals[(order["merchant"], part["member"])] += part["amount"]
        self.journals += 1 if order["parts"] else 0

    # --- direct postings ----------------------------------------------------------------------

    @rule(shop=shops, who=st.sampled_from(NAMES), amount=st.integers(1, 5_000),
          again=st.booleans(), pick=picks)
    def accrue_directly(self, shop, who, amount, again, pick):
        """A new accrual, or an earlier key posted again with whatever entries: a no-op."""
        merchant_id, member_id = self._member(shop, who)
        if again and self.direct:
            merchant_id, key = self.direct[pick % len(self.direct)]
            member_id = self.ids[self.shops.index(merchant_id)][who]
            assert post(merchant_id, key, rules.accrual(member_id=member_id,
                                                        amount_fen=amount)) is None
            return
        key = self._key("direct")
        assert post(merchant_id, key, rules.accrual(member_id=member_id,
                                                     amount_fen=amount)) is not None
        self._move(merchant_id, member_id, PENDING, amount)
        self.expense[merchant_id] -= amount
        self.direct.append((merchant_id, key))
        self.journals += 1

    # --- receipt, settlement, freezes ---------------------------------------------------------

    @precondition(lambda self: any(o["paid"] for o in self.orders))
    @rule(pick=picks, days_ago=st.sampled_from([0, 3, FREEZE_DAYS + 1]))
    def receive(self, pick, days_ago):
        """Receipt of a paid order (preferably one with pending commission), within or past
        the after-sale window; a second receipt reschedules."""
        paid = [o for o in self.orders if o["paid"]]
        waiting = [o for o in paid if any(p["status"] == "pending" for p in o["parts"])]
        choices = waiting or paid
        self._receive(choices[pick % len(choices)], days_ago=days_ago)

    def _receive(self, order: dict, *, days_ago: int) -> None:
        with transaction(db.session):
            row = db.session.get(Order, (order["merchant"], order["id"]))
            commissions.schedule_settlement(row, received_at=utcnow() - timedelta(days=days_ago),
                                            freeze_days=FREEZE_DAYS)
        for part in order["parts"]:
            if part["status"] == "pending":
                part["due"] = days_ago >= FREEZE_DAYS

    @rule()
    def settle(self):
        with transaction(db.session):
            settled = commissions.settle_due(now=utcnow())
        expected = 0
        for order in self.orders:
            for part in order["parts"]:
                if part["status"] == "pending" and part["due"] \
                        and self._active(order["merchant"], part["member"]):
                    expected += 1
                    outstanding = part["amount"] - part["reversed"]
                    self._move(order["merchant"], part["member"], PENDING, -outstanding)
                    self._move(order["merchant"], part["member"], AVAILABLE, outstanding)
                    part["status"] = "settled"
                    self.journals += 1
        assert settled == expected

    @rule(shop=shops, who=st.sampled_from(DISTRIBUTORS), then_settle=st.booleans())
    def freeze_or_unfreeze(self, shop, who, then_settle):
        """A freeze holds pending commission (and stops new commission); an unfreeze releases
        it. Often the settlement job runs right after."""
        merchant_id, member_id = self._member(shop, who)
        action = "unfreeze" if (merchant_id, member_id) in self.frozen else "freeze"
        members.review(merchant_id=merchant_id, member_id=member_id, action=action,
                       reason="risk review", staff_id=1)
        self.frozen ^= {(merchant_id, member_id)}
        if then_settle:
            self.settle()

    # --- refunds ------------------------------------------------------------------------------

    @precondition(lambda self: any(o["paid"] and o["refunded"] < o["goods_paid"]
                                   for o in self.orders))
    @rule(pick=picks, size=picks, full=st.booleans(), again=st.booleans(),
          settled_first=st.booleans())
    def refund(self, pick, size, full, again, settled_first):
        """A partial or the final refund — preferably of settled commission, which is taken
        back from available (a debt if it was withdrawn) — or an earlier refund once more."""
        refunded = [o for o in self.orders if o["last_refund"]]
        if again and refunded:
            order = refunded[pick % len(refunded)]
            key, before, after = order["last_refund"]
            assert self._reverse(order, key, before, after) == 0
            return
        open_orders = [o for o in self.orders if o["paid"] and o["refunded"] < o["goods_paid"]]
        settled = [o for o in open_orders if any(p["status"] == "settled" for p in o["parts"])]
        choices = settled if settled_first and settled else open_orders
        order = choices[pick % len(choices)]
        before, base = order["refunded"], order["goods_paid"]
        after = base if full else before + 1 + size % (base - before)
        key = self._key("refund")
        reversed_now = self._reverse(order, key, before, after)
        expected = 0
        for part in order["parts"]:
            target = part["amount"] if after >= base else part["amount"] * after // base
            delta = target - part["reversed"]
            if delta <= 0:
                continue
            source = PENDING if part["status"] == "pending" else AVAILABLE
            self._move(order["merchant"], part["member"], source, -delta)
            self.expense[order["merchant"]] += delta
            self.commission_totals[(order["merchant"], part["member"])] -= delta
            part["reversed"] = target
            if target == part["amount"] and part["status"] == "pending":
                part["status"] = "reversed"
            expected += delta
        assert reversed_now == expected
        self.journals += 1 if expected else 0
        order["refunded"] = after
        order["last_refund"] = (key, before, after)

    def _reverse(self, order: dict, key: str, before: int, after: int) -> int:
        with transaction(db.session):
            row = db.session.get(Order, (order["merchant"], order["id"]))
            return commissions.reverse_for_refund(row, refund_key=key,
                                                  refunded_goods_before_fen=before,
                                                  refunded_goods_after_fen=after)

    # --- withdrawals: available leaves, so a later reversal can leave a debt -------------------

    @precondition(lambda self: any(v > 0 for (_, _, kind), v in self.balance.items()
                                   if kind == AVAILABLE))
    @rule(pick=picks, size=picks, paid_out=st.booleans())
    def withdraw(self, pick, size, paid_out):
        """What a withdrawal (guarded: available never goes below zero for it) and its
        transfer will post."""
        funded = sorted((m, member) for (m, member, kind), v in self.balance.items()
                        if kind == AVAILABLE and v > 0)
        merchant_id, member_id = funded[pick % len(funded)]
        amount = 1 + size % self.balance[(merchant_id, member_id, AVAILABLE)]
        assert post(merchant_id, self._key("withdraw"),
                    [Entry(account(member_id, AVAILABLE), -amount),
                     Entry(account(member_id, WITHDRAWING), amount)],
                    keep_non_negative=[account(member_id, AVAILABLE)])
        self._move(merchant_id, member_id, AVAILABLE, -amount)
        self._move(merchant_id, member_id, WITHDRAWING, amount)
        self.journals += 1
        if paid_out:
            assert post(merchant_id, self._key("payout"),
                        [Entry(account(member_id, WITHDRAWING), -amount),
                         Entry(account(member_id, PAID_OUT), amount)])
            self._move(merchant_id, member_id, WITHDRAWING, -amount)
            self._move(merchant_id, member_id, PAID_OUT, amount)
            self.journals += 1

    @rule(shop=shops, who=st.sampled_from(NAMES), kind=st.sampled_from(sorted(OVERDRAWS)))
    def overdraw(self, shop, who, kind):
        """Taking 1 fen more than a never-negative (or guarded) account holds fails whole."""
        merchant_id, member_id = self._member(shop, who)
        source, target, guard = OVERDRAWS[kind]
        amount = max(self.balance[(merchant_id, member_id, source)], 0) + 1
        try:
            post(merchant_id, self._key("overdraw"),
                 [Entry(account(member_id, source), -amount),
                  Entry(account(member_id, target), amount)],
                 keep_non_negative=[account(member_id, AVAILABLE)] if guard else ())
        except ledger.InsufficientFunds:
            return
        raise AssertionError(f"{kind} was overdrawn")

    # --- Redis --------------------------------------------------------------------------------

    @precondition(lambda self: self.redis_up)
    @rule(stop=st.booleans())
    def lose_redis(self, stop):
        """FLUSHALL, or stop the server (it has no persistence: it comes back empty)."""
        if stop:
            self.server.stop(remove=False)
            self.redis_up = False
        else:
            redis.client.flushall()
        self.complete = False

    @precondition(lambda self: not self.redis_up)
    @rule()
    def start_redis(self):
        self.server.start()
        self.redis_up = True

    @rule(shop=shops, who=st.sets(st.sampled_from(NAMES), min_size=1), sweep=st.booleans())
    def mirror(self, shop, who, sweep):
        """The fast path after a commit (some members), or the sweeper job (everything):
        never an error while Redis is down, and the outbox keeps what was not mirrored."""
        before = self._outbox_rows()
        if sweep:
            result = wallets.sweep_outbox(redis.client)
            # One batch per merchant per run, oldest first.
            batches = [[r for r in before if r[1] == m][:wallets.SWEEP_BATCH]
                       for m in self.shops]
            swept = [r for batch in batches for r in batch]
            done = swept if self.redis_up else []
            assert result == {"mirrored": len(done), "failed": len(swept) - len(done)}
        else:
            merchant_id = self.shops[shop]
            member_ids = {self.ids[shop][name] for name in who}
            mine = [r for r in before if r[1] == merchant_id and r[2] in member_ids]
            assert wallets.mirror_members(redis.client, merchant_id=merchant_id,
                                          member_ids=member_ids) is (self.redis_up or not mine)
            done = mine if self.redis_up else []
        assert self._outbox_rows() == [r for r in before if r not in done]

    @precondition(lambda self: self.redis_up)
    @rule()
    def rebuild(self):
        wallets.rebuild_cache(redis.client)
        self.complete = True

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def everything_holds(self):
        accounts = {(m, owner, kind): balance for m, owner, kind, balance in db.session.execute(
            select(LedgerAccount.merchant_id, LedgerAccount.owner_id, LedgerAccount.kind,
                   LedgerAccount.balance_fen))}
        self._check_ledger(accounts)
        self._check_commissions()
        waiting = {(m, member) for _, m, member, _ in self._outbox_rows()}
        self._check_reads(accounts, waiting)
        if self.redis_up:
            self._check_rankings(waiting)
        db.session.rollback()

    def _check_ledger(self, accounts: dict) -> None:
        report = ledger.verify()
        assert report["balance_drift"] == []
        assert report["unbalanced_journals"] == []
        assert report["merchants_not_zero"] == []
        assert db.session.scalar(select(func.count()).select_from(Journal)) == self.journals
        assert [k for k, v in accounts.items() if k[2] in rules.NEVER_NEGATIVE and v < 0] == []
        for shop, merchant_id in enumerate(self.shops):
            assert sum(v for k, v in accounts.items() if k[0] == merchant_id) == 0
            assert accounts.get((merchant_id, 0, rules.COMMISSION_EXPENSE), 0) \
                == self.expense[merchant_id]
            assert accounts.get((merchant_id, 0, rules.PAYOUT_CLEARING), 0) == 0
            for member_id in self.ids[shop].values():
                for kind in WALLET_KINDS:
                    assert accounts.get((merchant_id, member_id, kind), 0) \
                        == self.balance[(merchant_id, member_id, kind)], (member_id, kind)

    def _check_commissions(self) -> None:
        stored = {(m, o, line, tier): (member, amount, reversed_fen, status)
                  for m, o, line, tier, member, amount, reversed_fen, status in
                  db.session.execute(select(
                      Commission.merchant_id, Commission.order_id, Commission.line_no,
                      Commission.tier, Commission.member_id, Commission.amount_fen,
                      Commission.reversed_fen, Commission.status))}
        expected = {(o["merchant"], o["id"], p["line"], p["tier"]):
                    (p["member"], p["amount"], p["reversed"], p["status"])
                    for o in self.orders if o["paid"] for p in o["parts"]}
        assert stored == expected
        assert all(0 <= reversed_fen <= amount for _, amount, reversed_fen, _ in stored.values())
        totals = {(m, member): commission for m, member, commission in db.session.execute(
            select(PeriodTotal.merchant_id, PeriodTotal.member_id,
                   func.sum(PeriodTotal.commission_fen))
            .group_by(PeriodTotal.merchant_id, PeriodTotal.member_id))}
        assert totals == {k: v for k, v in self.commission_totals.items()
                          if k in totals or v != 0}

    def _check_reads(self, accounts: dict, waiting: set[tuple[int, int]]) -> None:
        """Reads equal SQL for every member whose change is not still waiting in the outbox;
        Redis holds no other value, and, unless it lost its data since the last rebuild,
        holds every wallet."""
        for shop, merchant_id in enumerate(self.shops):
            for member_id in self.ids[shop].values():
                if (merchant_id, member_id) in waiting:
                    continue
                truth = {kind: accounts.get((merchant_id, member_id, kind), 0)
                         for kind in WALLET_KINDS}
                assert wallets.read_wallet(redis.client, merchant_id=merchant_id,
                                           member_id=member_id) == truth
                if self.redis_up:
                    mirrored = wallet_mirror.read_wallet(redis.client, merchant_id, member_id)
                    has_wallet = (merchant_id, member_id, PENDING) in accounts
                    if mirrored is not None or (self.complete and has_wallet):
                        assert mirrored == truth, (merchant_id, member_id)

    def _check_rankings(self, waiting: set[tuple[int, int]]) -> None:
        expected: dict[tuple[int, str, str], dict[int, int]] = defaultdict(dict)
        for merchant_id, period, member_id, commission, sales in db.session.execute(select(
                PeriodTotal.merchant_id, PeriodTotal.period, PeriodTotal.member_id,
                PeriodTotal.commission_fen, PeriodTotal.sales_fen)):
            expected[(merchant_id, period, "commission")][member_id] = commission
            expected[(merchant_id, period, "sales")][member_id] = sales
        for (merchant_id, period, measure), truth in expected.items():
            top = wallet_mirror.top(redis.client, merchant_id, period, measure, 1_000)
            if top is None:  # Redis lost the merchant's mirror: rankings are read from SQL
                assert not self.complete
                continue
            mirrored = dict(top)
            assert set(mirrored) <= set(truth)
            for member_id, value in truth.items():
                if (merchant_id, member_id) in waiting:
                    continue
                if member_id in mirrored or self.complete:
                    assert mirrored.get(member_id) == value, (merchant_id, period, measure)


def test_the_ledger_follows_its_model_through_redis_outages(make_app):
    server = RedisServer().start()
    try:
        application = make_app(redis_url=server.url)
        with application.app_context():
            machine = type("LedgerModel", (LedgerMachine,), {"server": server})
            run_state_machine_as_test(machine, settings=settings(
                max_examples=35, stateful_step_count=60, deadline=None,
                suppress_health_check=list(HealthCheck)))
            db.session.remove()
    finally:
        server.stop()
