"""Risk signals on PostgreSQL (app/services/risk.py): each detector through the real event
paths (share visits, payments, refunds, the scan), the hold on settlement, release, the log.

Thresholds are lowered per merchant (they are program settings) so a burst takes a few
bindings instead of fifty; each detector is shown raising nothing at its threshold and exactly
one flag above it.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import DBAPIError

from app.database import transaction, utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.integrations.wechatpay import Payment, RefundResult
from app.models import Order, Refund, RiskFlag, RiskLog, User
from app.services import attribution, commissions, ledger, payments, refunds, risk
from tests.factories import make_member, make_merchant, make_order, make_share_link, make_user

APPID, MCH_ID = "wx-risk-app", "mch-risk"

# --- helpers ----------------------------------------------------------------------------------


def visit(link, user, *, ip_hash: str = "") -> attribution.VisitOutcome:
    return attribution.record_visit(token=link.token, user_id=user.id,
                                    context=attribution.VisitContext(channel="miniprogram",
                                                                     ip_hash=ip_hash))


def flags(merchant, *, member=None, kind=None) -> list[RiskFlag]:
    db.session.rollback()
    query = select(RiskFlag).where(RiskFlag.merchant_id == merchant.id).order_by(RiskFlag.id)
    if member is not None:
        query = query.where(RiskFlag.member_id == member.id)
    if kind is not None:
        query = query.where(RiskFlag.kind == kind)
    return list(db.session.scalars(query))


def pay(order) -> None:
    """Through the one payment path (apply_payment), as WeChat's notification would."""
    with transaction(db.session):
        row = db.session.get(Order, (order.merchant_id, order.id))
        row.pay_appid, row.pay_mch_id = APPID, MCH_ID
    outcome = payments.apply_payment(merchant_id=order.merchant_id, now=utcnow(), payment=Payment(
        appid=APPID, mch_id=MCH_ID, out_trade_no=order.out_trade_no, trade_state="SUCCESS",
        total_fen=order.paid_fen, transaction_id=f"tx-{order.out_trade_no}"))
    assert outcome.result == "paid"


def refund_in_full(order) -> None:
    """A refund WeChat reports successful, through the one refund-result path."""
    with transaction(db.session):
        row = db.session.get(Order, (order.merchant_id, order.id))
        row.status_before_refund, row.status = row.status, "refunding"
        db.session.add(Refund(merchant_id=order.merchant_id, order_id=order.id,
                              out_refund_no=f"{order.out_trade_no}R", amount_fen=row.paid_fen,
                              source="merchant", status="processing"))
    refunds.apply_refund_result(merchant_id=order.merchant_id, now=utcnow(), result=RefundResult(
        mch_id=MCH_ID, out_trade_no=order.out_trade_no, out_refund_no=f"{order.out_trade_no}R",
        refund_id=f"wx-{order.out_trade_no}", status="SUCCESS", refund_fen=order.paid_fen))


def paid_orders(shop, distributor, count: int) -> list[Order]:
    """``count`` paid orders, each by a new buyer under ``distributor`` (its tier 1)."""
    orders = []
    for _ in range(count):
        order = make_order(make_member(shop, upline=distributor, status="none"),
                           lines=[(10_000, 1)])
        pay(order)
        orders.append(order)
    return orders


def scan(now=None) -> dict:
    with transaction(db.session):
        return risk.scan(now=now or utcnow())


def settle(now) -> int:
    with transaction(db.session):
        return commissions.settle_due(now=now)


def release(flag, reason: str = "checked: two phones of one family") -> RiskFlag:
    return risk.release(merchant_id=flag.merchant_id, flag_id=flag.id, reason=reason,
                        staff_id=1, now=utcnow())


def same_phone_chain(shop):
    """grandparent ← parent ← buyer, where the buyer's account shares the parent's phone."""
    grandparent = make_member(shop)
    parent = make_member(shop, upline=grandparent, user=make_user(phone_hash="ph-parent"))
    buyer = make_member(shop, upline=parent, status="none",
                        user=make_user(phone_hash="ph-parent"))
    return grandparent, parent, buyer


@pytest.fixture
def shop(app_context):
    return make_merchant()


# --- self-referral ----------------------------------------------------------------------------


def test_binding_an_account_that_shares_the_uplines_unionid_flags_the_upline(shop):
    distributor = make_member(shop, user=make_user(unionid="un-same"))
    second_account = make_user(unionid="un-same")
    assert visit(make_share_link(distributor), second_account).bound
    [flag] = flags(shop)
    assert (flag.member_id, flag.kind, flag.status) == (distributor.id, "self_referral", "open")
    assert flag.detail["matched"] == "unionid"
    assert flag.detail["account_member_id"] != distributor.id


def test_binding_accounts_that_share_nothing_raises_no_flag(shop):
    distributor = make_member(shop, user=make_user(unionid="un-a", phone_hash="ph-a"))
    assert visit(make_share_link(distributor), make_user(unionid="un-b", phone_hash="ph-b")).bound
    assert flags(shop) == []


def test_paying_through_an_upline_with_the_same_phone_flags_only_that_upline_once(shop):
    grandparent, parent, buyer = same_phone_chain(shop)  # bound without events: no flag yet
    assert flags(shop) == []
    pay(make_order(buyer))
    pay(make_order(buyer))
    [flag] = flags(shop)
    assert (flag.member_id, flag.kind, flag.detail["matched"]) == (parent.id, "self_referral",
                                                                   "phone")
    assert flag.detail["account_member_id"] == buyer.id


def test_a_released_self_referral_is_not_raised_again_for_the_same_account(shop):
    _, parent, buyer = same_phone_chain(shop)
    pay(make_order(buyer))
    release(flags(shop)[0])
    pay(make_order(buyer))
    assert [f.status for f in flags(shop)] == ["released"]
    other_account = make_member(shop, upline=parent, status="none",
                                user=make_user(phone_hash="ph-parent"))
    pay(make_order(other_account))
    assert [f.status for f in flags(shop)] == ["released", "open"]


def test_two_payments_seen_at_once_leave_one_open_flag(app, shop):
    """Both transactions have looked (no open flag) before either raises: the flag lock and
    the look taken again under it keep the second from raising a duplicate."""
    _, parent, buyer = same_phone_chain(shop)
    keys = [(o.merchant_id, o.id) for o in (make_order(buyer), make_order(buyer))]
    barrier, errors = threading.Barrier(2), []

    def hold_at_the_flag_lock(conn, cursor, statement, parameters, context, executemany):
        if "pg_advisory_xact_lock" in statement and isinstance(parameters, dict) \
                and parameters.get("key", 0) >> 48 == risk.LOCK_RISK:
            barrier.wait(timeout=30)

    def see_payment(key: tuple[int, int]) -> None:
        with app.app_context():
            try:
                with transaction(db.session):
                    risk.on_payment(db.session.get(Order, key), at=utcnow())
            except Exception as error:  # noqa: BLE001 - reported below
                errors.append(error)

    event.listen(db.engine, "before_cursor_execute", hold_at_the_flag_lock)
    try:
        threads = [threading.Thread(target=see_payment, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        event.remove(db.engine, "before_cursor_execute", hold_at_the_flag_lock)
    assert errors == []
    assert [(f.member_id, f.kind) for f in flags(shop)] == [(parent.id, "self_referral")]


# --- binding bursts ---------------------------------------------------------------------------


def test_a_binding_burst_flags_the_distributor_once_above_the_hourly_threshold(app_context):
    shop = make_merchant(rules={"risk_binding_burst_per_hour": 3})
    distributor = make_member(shop)
    link = make_share_link(distributor)
    for _ in range(3):
        assert visit(link, make_user()).bound
    assert flags(shop) == []  # three bindings in the hour: at the threshold, not above it
    assert visit(link, make_user()).bound
    assert visit(link, make_user()).bound
    [flag] = flags(shop)
    assert (flag.member_id, flag.kind) == (distributor.id, "binding_burst")
    assert (flag.detail["bindings"], flag.detail["threshold"]) == (4, 3)


def test_bindings_older_than_an_hour_are_not_a_burst(app_context):
    shop = make_merchant(rules={"risk_binding_burst_per_hour": 3})
    distributor = make_member(shop)
    link = make_share_link(distributor)
    for _ in range(3):
        visit(link, make_user())
    with transaction(db.session):
        db.session.execute(text("UPDATE members SET bound_at = bound_at - interval '61 minutes' "
                                "WHERE merchant_id = :m"), {"m": shop.id})
    visit(link, make_user())
    assert flags(shop) == []


def test_after_a_release_only_new_bindings_count_toward_the_next_burst(app_context):
    shop = make_merchant(rules={"risk_binding_burst_per_hour": 3})
    distributor = make_member(shop)
    link = make_share_link(distributor)
    for _ in range(4):
        visit(link, make_user())
    release(flags(shop)[0], "a live-stream brought these members in")
    for _ in range(3):
        visit(link, make_user())
    assert [f.status for f in flags(shop)] == ["released"]
    visit(link, make_user())
    assert [f.status for f in flags(shop)] == ["released", "open"]


# --- many new members from one IP -------------------------------------------------------------


def test_new_members_from_one_ip_flag_the_distributor_once_above_the_threshold(app_context):
    shop = make_merchant(rules={"risk_ip_burst_members": 3, "risk_ip_burst_minutes": 10})
    distributor = make_member(shop)
    link = make_share_link(distributor)
    for _ in range(3):
        assert visit(link, make_user(), ip_hash="ip-one").bound
    visit(link, make_user(), ip_hash="ip-other")  # another IP does not add to this one
    assert flags(shop) == []
    visit(link, make_user(), ip_hash="ip-one")
    visit(link, make_user(), ip_hash="ip-one")
    [flag] = flags(shop)
    assert (flag.member_id, flag.kind) == (distributor.id, "ip_burst")
    assert (flag.detail["members"], flag.detail["window_minutes"]) == (4, 10)


def test_every_distributor_receiving_members_of_an_ip_burst_is_flagged(app_context):
    shop = make_merchant(rules={"risk_ip_burst_members": 2})
    first, second = make_member(shop), make_member(shop)
    visit(make_share_link(first), make_user(), ip_hash="ip-one")
    visit(make_share_link(first), make_user(), ip_hash="ip-one")
    assert flags(shop) == []
    visit(make_share_link(second), make_user(), ip_hash="ip-one")
    assert sorted(f.member_id for f in flags(shop, kind="ip_burst")) == [first.id, second.id]


def test_members_who_joined_before_the_window_are_not_new(app_context):
    shop = make_merchant(rules={"risk_ip_burst_members": 2})
    distributor = make_member(shop)
    link = make_share_link(distributor)
    old_members = [make_member(shop, status="none") for _ in range(3)]
    with transaction(db.session):
        db.session.execute(text("UPDATE members SET created_at = created_at - interval '1 day' "
                                "WHERE merchant_id = :m"), {"m": shop.id})
    for member in old_members:
        assert visit(link, db.session.get(User, member.user_id), ip_hash="ip-one").bound
    assert flags(shop) == []


# --- refund rates -----------------------------------------------------------------------------


@pytest.fixture
def refund_shop(app_context):
    return make_merchant(rules={"risk_refund_min_orders": 4, "risk_refund_rate_bps": 2500})


def test_a_refund_rate_above_the_threshold_flags_the_tier_one_distributor_once(refund_shop):
    grandparent = make_member(refund_shop)
    distributor = make_member(refund_shop, upline=grandparent)
    orders = paid_orders(refund_shop, distributor, 4)
    refund_in_full(orders[0])
    assert flags(refund_shop) == []  # 1 of 4: exactly 25%, not above it
    refund_in_full(orders[1])
    refund_in_full(orders[2])
    [flag] = flags(refund_shop)
    assert (flag.member_id, flag.kind) == (distributor.id, "refund_rate")
    assert (flag.detail["referred_orders"], flag.detail["refunded_orders"],
            flag.detail["refund_rate_bps"]) == (4, 2, 5000)


def test_refunds_below_the_minimum_of_orders_raise_nothing_until_the_scan_sees_enough(
        refund_shop):
    distributor = make_member(refund_shop)
    for order in paid_orders(refund_shop, distributor, 3):
        refund_in_full(order)
    assert flags(refund_shop) == []  # 3 of 3 refunded, but fewer than 4 orders
    assert scan() == {"checked": 1, "flagged": 0}
    paid_orders(refund_shop, distributor, 1)
    assert scan() == {"checked": 1, "flagged": 1}
    assert scan()["flagged"] == 0
    [flag] = flags(refund_shop)
    assert (flag.member_id, flag.detail["referred_orders"], flag.detail["refunded_orders"]) == \
        (distributor.id, 4, 3)


def test_the_scan_counts_only_orders_paid_in_the_last_30_days(refund_shop):
    distributor = make_member(refund_shop)
    orders = paid_orders(refund_shop, distributor, 4)
    with transaction(db.session):
        for order in orders[:3]:
            db.session.get(Order, (order.merchant_id, order.id)).refunded_fen = order.paid_fen
    assert scan(utcnow() + timedelta(days=31)) == {"checked": 0, "flagged": 0}
    assert scan()["flagged"] == 1


# --- the hold and release ---------------------------------------------------------------------


def receive_long_ago(order) -> None:
    with transaction(db.session):
        row = db.session.get(Order, (order.merchant_id, order.id))
        commissions.schedule_settlement(row, received_at=utcnow() - timedelta(days=8),
                                        freeze_days=7)


def test_a_flagged_members_due_commission_waits_and_settles_after_release(shop):
    grandparent, parent, buyer = same_phone_chain(shop)
    order = make_order(buyer, lines=[(10_000, 1)])
    pay(order)  # tier 1 (parent) 1,000; tier 2 (grandparent) 500; parent is flagged
    receive_long_ago(order)
    assert settle(utcnow()) == 1
    assert ledger.wallet_balances(shop.id, parent.id)["pending"] == 1_000
    assert ledger.wallet_balances(shop.id, grandparent.id)["available"] == 500
    assert settle(utcnow() + timedelta(days=30)) == 0
    release(flags(shop)[0])
    assert settle(utcnow()) == 1
    assert (ledger.wallet_balances(shop.id, parent.id)["pending"],
            ledger.wallet_balances(shop.id, parent.id)["available"]) == (0, 1_000)


def test_every_open_flag_of_a_member_must_be_released_before_it_settles(app_context):
    shop = make_merchant(rules={"risk_binding_burst_per_hour": 1})
    grandparent, parent, buyer = same_phone_chain(shop)
    link = make_share_link(parent)
    visit(link, make_user())
    visit(link, make_user())  # two bindings to the parent in the hour: a burst
    order = make_order(buyer, lines=[(10_000, 1)])
    pay(order)
    receive_long_ago(order)
    first, second = flags(shop, member=parent)
    release(first)
    assert settle(utcnow()) == 1  # only the grandparent's part
    release(second)
    assert settle(utcnow()) == 1


def test_a_release_needs_a_reason_and_happens_once(shop):
    _, _, buyer = same_phone_chain(shop)
    pay(make_order(buyer))
    [flag] = flags(shop)
    with pytest.raises(InvalidInput) as caught:
        release(flag, "   ")
    assert set(caught.value.errors) == {"reason"}
    assert flags(shop)[0].status == "open"
    released = release(flag, "  the same household  ")
    assert (released.status, released.release_reason, released.released_by_staff_id) == \
        ("released", "the same household", 1)
    with pytest.raises(Conflict):
        release(flag)


def test_the_log_has_a_raised_and_a_released_row_and_refuses_changes(shop):
    _, parent, buyer = same_phone_chain(shop)
    pay(make_order(buyer))
    flag = release(flags(shop)[0], "verified by phone call")
    rows = list(db.session.scalars(select(RiskLog).where(RiskLog.merchant_id == shop.id)
                                   .order_by(RiskLog.id)))
    assert [(r.action, r.flag_id, r.member_id, r.staff_id) for r in rows] == [
        ("raised", flag.id, parent.id, None), ("released", flag.id, parent.id, 1)]
    assert rows[1].note == "verified by phone call"
    with pytest.raises(DBAPIError), transaction(db.session):
        db.session.execute(text("UPDATE risk_logs SET note = 'rewritten'"))


def test_another_merchant_cannot_release_or_read_a_flag(shop):
    _, _, buyer = same_phone_chain(shop)
    pay(make_order(buyer))
    [flag] = flags(shop)
    other = make_merchant()
    with pytest.raises(NotFound):
        risk.release(merchant_id=other.id, flag_id=flag.id, reason="not mine", staff_id=2,
                     now=utcnow())
    with pytest.raises(NotFound):
        risk.flag_with_log(merchant_id=other.id, flag_id=flag.id)
    assert risk.list_flags(merchant_id=other.id, page=1, per_page=20) == ([], 0)
    assert flags(shop)[0].status == "open"
