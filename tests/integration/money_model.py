"""A reference model of the money flow, in plain Python and integer fen, for the stateful test
(tests/integration/test_money_flow_stateful.py).

It is written from DOMAIN.md and the README glossary, never by calling app code: the commission
split (floor per line and tier, the deepest tier giving way to the cap), the snapshot at
creation (no compression, frozen members earn nothing new), the reversal by cumulative floor
(the refund that completes the order takes exactly the rest), settlement after the freeze
(frozen members wait), and withdrawals with their fee and their rules in the documented order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

BPS = 10_000
# Asia/Shanghai has had no daylight saving since 1991: a fixed offset is exact.
SHANGHAI = timedelta(hours=8)
PAID_STATES = ("paid", "shipped", "received", "completed", "partially_refunded")


def business_day(at: datetime) -> date:
    return (at + SHANGHAI).date()


def business_month(at: datetime) -> str:
    return (at + SHANGHAI).strftime("%Y-%m")


@dataclass(frozen=True)
class Rules:
    tier_rates_bps: tuple[int, int]
    max_total_bps: int
    freeze_days: int
    auto_receive_days: int
    withdraw_min_fen: int
    withdraw_max_fen: int
    withdraw_daily_count: int
    withdraw_fee_bps: int
    withdraw_auto_approve_below_fen: int


@dataclass(frozen=True)
class Product:
    key: str
    price_fen: int
    mode: str = "plan"  # plan | fixed | rates | opt_out | not_distributable
    values: tuple[int, ...] = ()


@dataclass
class Part:
    """One commission part: a (line, tier) of an order, as the model expects it."""

    line_no: int
    tier: int
    member: str
    base_fen: int
    amount_fen: int
    period: str
    reversed_fen: int = 0
    status: str = "pending"  # pending | settled | reversed
    settle_at: datetime | None = None


@dataclass
class Order:
    id: int
    out_trade_no: str
    buyer: str
    lines: list[tuple[Product, int]]
    beneficiaries: list[tuple[int, str, int]]  # (tier, member, rate_bps) at creation
    status: str = "created"
    status_before_refund: str | None = None
    refunded_fen: int = 0
    shipped_at: datetime | None = None
    received_at: datetime | None = None
    parts: list[Part] = field(default_factory=list)

    @property
    def goods_fen(self) -> int:
        return sum(product.price_fen * quantity for product, quantity in self.lines)


@dataclass
class Refund:
    id: int
    order_id: int
    out_refund_no: str
    amount_fen: int
    status: str  # requested | processing | abnormal | succeeded | closed | rejected


@dataclass
class Withdrawal:
    id: int
    member: str
    amount_fen: int
    fee_fen: int
    day: date
    status: str  # requested | transferring | paid_out | rejected | failed
    out_bill_no: str


@dataclass
class Member:
    upline: str | None
    status: str  # active | frozen | none


class MoneyModel:
    """What the system should hold after each step; every method mirrors one business action
    and returns what the caller should observe (a status code, a refusal code)."""

    def __init__(self, rules: Rules, members: dict[str, Member]):
        self.rules = rules
        self.members = members
        self.wallets = {name: dict.fromkeys(("pending", "available", "withdrawing",
                                             "paid_out"), 0) for name in members}
        self.commission_expense = 0
        self.orders: dict[int, Order] = {}
        self.refunds: dict[int, Refund] = {}
        self.withdrawals: dict[int, Withdrawal] = {}
        self.period_totals: dict[tuple[str, str], list[int]] = {}  # (member, month) -> [c, s]

    # -- the tree ------------------------------------------------------------------------------

    def uplines(self, name: str) -> list[str]:
        chain, current = [], self.members[name].upline
        while current is not None:
            chain.append(current)
            current = self.members[current].upline
        return chain

    def move_refusal(self, name: str, upline: str) -> str | None:
        if upline == name:
            return "self"
        if name in self.uplines(upline):
            return "cycle"
        if self.members[upline].status != "active":
            return "inactive_distributor"
        if self.members[name].upline == upline:
            return "already_bound"
        return None

    def move(self, name: str, upline: str) -> str | None:
        refusal = self.move_refusal(name, upline)
        if refusal is None:
            self.members[name].upline = upline
        return refusal

    def review(self, name: str, action: str) -> bool:
        """freeze: active → frozen; unfreeze: frozen → active; anything else is refused."""
        wanted = {"freeze": "active", "unfreeze": "frozen"}[action]
        if self.members[name].status != wanted:
            return False
        self.members[name].status = "frozen" if action == "freeze" else "active"
        return True

    # -- orders and commission -----------------------------------------------------------------

    def create_order(self, order_id: int, out_trade_no: str, buyer: str,
                     lines: list[tuple[Product, int]]) -> Order:
        """The snapshot: tier 1 the buyer's upline, tier 2 its upline; an inactive member
        leaves its own tier unpaid and nobody moves up into it."""
        chain = self.uplines(buyer)[:2]
        beneficiaries = [(tier, name, self.rules.tier_rates_bps[tier - 1])
                         for tier, name in enumerate(chain, start=1)
                         if self.members[name].status == "active"]
        order = Order(order_id, out_trade_no, buyer, lines, beneficiaries)
        self.orders[order_id] = order
        return order

    def split(self, order: Order, period: str) -> list[Part]:
        parts = []
        for line_no, (product, quantity) in enumerate(order.lines, start=1):
            base = product.price_fen * quantity
            if product.mode in ("opt_out", "not_distributable") or base == 0:
                continue
            room = min(base, base * self.rules.max_total_bps // BPS)
            for tier, member, rate in sorted(order.beneficiaries):
                if product.mode == "fixed":
                    wanted = product.values[tier - 1] * quantity
                elif product.mode == "rates":
                    wanted = base * product.values[tier - 1] // BPS
                else:
                    wanted = base * rate // BPS
                amount = min(wanted, room)
                room -= amount
                if amount > 0:
                    parts.append(Part(line_no, tier, member, base, amount, period))
        return parts

    def pay(self, order_id: int, *, period: str) -> None:
        order = self.orders[order_id]
        assert order.status == "created", "the model pays only unpaid orders"
        order.status = "paid"
        order.parts = self.split(order, period)
        earned: dict[str, int] = {}
        for part in order.parts:
            earned[part.member] = earned.get(part.member, 0) + part.amount_fen
            self.wallets[part.member]["pending"] += part.amount_fen
            self.commission_expense -= part.amount_fen
        tier_one = next((m for tier, m, _ in order.beneficiaries if tier == 1), None)
        for member, amount in earned.items():
            self._add_totals(member, period, amount,
                             order.goods_fen if member == tier_one else 0)

    def _add_totals(self, member: str, period: str, commission_fen: int,
                    sales_fen: int) -> None:
        totals = self.period_totals.setdefault((member, period), [0, 0])
        totals[0] += commission_fen
        totals[1] += sales_fen

    def cancel_unpaid(self) -> None:
        for order in self.orders.values():
            if order.status == "created":
                order.status = "cancelled"

    def ship_refusal(self, order: Order) -> str | None:
        if order.shipped_at is not None:
            return "already_shipped"
        if order.status not in ("paid", "partially_refunded"):
            return "illegal_order_transition"
        return None

    def ship(self, order_id: int, now: datetime) -> str | None:
        order = self.orders[order_id]
        refusal = self.ship_refusal(order)
        if refusal is None:
            order.shipped_at = now
            order.status = "shipped" if order.status == "paid" else order.status
        return refusal

    def receive_refusal(self, order: Order) -> str | None:
        if order.shipped_at is None or order.received_at is not None \
                or order.status not in ("shipped", "partially_refunded"):
            return "illegal_order_transition"
        return None

    def receive(self, order_id: int, now: datetime) -> str | None:
        order = self.orders[order_id]
        refusal = self.receive_refusal(order)
        if refusal is None:
            order.received_at = now
            order.status = "received" if order.status == "shipped" else order.status
            for part in order.parts:
                if part.status == "pending":
                    part.settle_at = now + timedelta(days=self.rules.freeze_days)
        return refusal

    def advance_orders(self, now: datetime) -> None:
        """The jobs: automatic receipt, then completion after the after-sale window."""
        for order in self.orders.values():
            if order.shipped_at is not None and order.received_at is None \
                    and order.status in ("shipped", "partially_refunded") \
                    and order.shipped_at <= now - timedelta(days=self.rules.auto_receive_days):
                self.receive(order.id, now)
        for order in self.orders.values():
            if order.status == "received" \
                    and order.received_at <= now - timedelta(days=self.rules.freeze_days):
                order.status = "completed"

    def settle(self, now: datetime) -> None:
        for order in self.orders.values():
            for part in order.parts:
                if part.status != "pending" or part.settle_at is None or part.settle_at > now \
                        or self.members[part.member].status == "frozen":
                    continue
                outstanding = part.amount_fen - part.reversed_fen
                self.wallets[part.member]["pending"] -= outstanding
                self.wallets[part.member]["available"] += outstanding
                part.status = "settled"

    # -- refunds -------------------------------------------------------------------------------

    def open_refunds(self, order_id: int) -> list[Refund]:
        return [r for r in self.refunds.values() if r.order_id == order_id
                and r.status in ("requested", "processing", "abnormal")]

    def refund_refusal(self, order: Order, amount_fen: int | None) -> tuple[int, str] | None:
        """What opening a refund answers: None (201) or (status code, code)."""
        if self.open_refunds(order.id):
            return 409, "refund_in_progress"
        if order.status not in PAID_STATES:
            return 409, "order_not_refundable"
        refundable = order.goods_fen - order.refunded_fen
        amount = refundable if amount_fen is None else amount_fen
        if not 0 < amount <= refundable:
            return 422, "invalid_input"
        return None

    def open_refund(self, refund: Refund, *, processing: bool) -> None:
        self.refunds[refund.id] = refund
        if processing:
            self.submit_refund(refund.id)

    def submit_refund(self, refund_id: int) -> None:
        refund = self.refunds[refund_id]
        order = self.orders[refund.order_id]
        order.status_before_refund, order.status = order.status, "refunding"
        refund.status = "processing"

    def finish_refund(self, refund_id: int, wechat_status: str) -> None:
        refund = self.refunds[refund_id]
        order = self.orders[refund.order_id]
        if wechat_status == "ABNORMAL":
            refund.status = "abnormal"
        elif wechat_status == "CLOSED":
            refund.status, order.status = "closed", order.status_before_refund
        else:
            refund.status = "succeeded"
            self._refund_succeeded(order, refund.amount_fen)

    def _refund_succeeded(self, order: Order, amount_fen: int) -> None:
        goods = order.goods_fen
        before = min(order.refunded_fen, goods)
        order.refunded_fen += amount_fen
        after = min(order.refunded_fen, goods)
        order.status = "refunded" if order.refunded_fen == goods else "partially_refunded"
        for part in order.parts:
            target = part.amount_fen if after >= goods else part.amount_fen * after // goods
            delta = target - part.reversed_fen
            if delta <= 0:
                continue
            source = "pending" if part.status == "pending" else "available"
            self.wallets[part.member][source] -= delta
            self.commission_expense += delta
            part.reversed_fen = target
            if target == part.amount_fen and part.status == "pending":
                part.status = "reversed"
            self._add_totals(part.member, part.period, -delta, 0)
        tier_one = next((p for p in order.parts if p.tier == 1), None)
        if tier_one is not None and after > before:
            self._add_totals(tier_one.member, tier_one.period, 0, -(after - before))

    # -- withdrawals ---------------------------------------------------------------------------

    def fee_for(self, amount_fen: int) -> int:
        return amount_fen * self.rules.withdraw_fee_bps // BPS

    def withdrawal_refusal(self, member: str, amount_fen: int, day: date
                           ) -> tuple[int, str] | None:
        """The rules in the documented order: None (201) or (status code, code)."""
        rules, available = self.rules, self.wallets[member]["available"]
        if self.members[member].status == "frozen":
            return 403, "distributor_frozen"
        counted = [w for w in self.withdrawals.values() if w.member == member
                   and w.day == day and w.status not in ("rejected", "failed")]
        checks = [(available < 0, "debt_outstanding"),
                  (amount_fen < rules.withdraw_min_fen, "below_minimum"),
                  (amount_fen > rules.withdraw_max_fen, "above_maximum"),
                  (len(counted) >= rules.withdraw_daily_count, "daily_limit_reached"),
                  (amount_fen + self.fee_for(amount_fen) > available, "insufficient_balance")]
        return next(((422, code) for broken, code in checks if broken), None)

    def request_withdrawal(self, withdrawal: Withdrawal) -> None:
        """The amount and the fee wait in ``withdrawing``; below the auto-approval threshold
        the transfer starts at once."""
        total = withdrawal.amount_fen + withdrawal.fee_fen
        self.wallets[withdrawal.member]["available"] -= total
        self.wallets[withdrawal.member]["withdrawing"] += total
        if withdrawal.amount_fen < self.rules.withdraw_auto_approve_below_fen:
            withdrawal.status = "transferring"
        self.withdrawals[withdrawal.id] = withdrawal

    def pay_out(self, withdrawal_id: int) -> None:
        withdrawal = self.withdrawals[withdrawal_id]
        wallet = self.wallets[withdrawal.member]
        wallet["withdrawing"] -= withdrawal.amount_fen + withdrawal.fee_fen
        wallet["paid_out"] += withdrawal.amount_fen
        self.commission_expense += withdrawal.fee_fen  # the fee returns to the merchant
        withdrawal.status = "paid_out"

    def give_back(self, withdrawal_id: int, status: str) -> None:
        withdrawal = self.withdrawals[withdrawal_id]
        wallet = self.wallets[withdrawal.member]
        total = withdrawal.amount_fen + withdrawal.fee_fen
        wallet["withdrawing"] -= total
        wallet["available"] += total
        withdrawal.status = status

    # -- what the invariants compare -----------------------------------------------------------

    def commission_totals(self) -> dict[tuple[str, str], tuple[int, int]]:
        return {key: (c, s) for key, (c, s) in self.period_totals.items()}
