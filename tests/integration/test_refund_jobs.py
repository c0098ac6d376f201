"""The refund sync job (``refunds.sync_open_refunds``) against PostgreSQL, Redis and the WeChat
sandbox. The sandbox sends its notifications to the app's PUBLIC_BASE_URL, which nothing
listens on in these tests: completing a refund there without delivering the notification is
exactly a notification WeChat sent and we never received."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.database import transaction, utcnow
from app.extensions import db
from app.models import Commission, Journal, Order, Refund, StaffAccount
from app.services import ledger, payments, refunds
from tests.factories import make_member
from tests.support.wechatpay import (
    complete_refund,
    deliver,
    notifications,
    pay,
    sandbox_merchant,
    settings_body,
)

ADDRESS = {"receiver": "张三", "phone": "13800000000", "province": "广东省", "city": "深圳市",
           "district": "南山区", "detail": "科技园 1 号"}
MODES = [("v3_public_key", "MD5"), ("v2", "MD5")]


@pytest.fixture
def config(app_context):
    from app.clients import pay_config

    return pay_config()


@pytest.fixture
def paid_order(app_context, sandbox_url, config):
    """Configure a sandbox WeChat Pay account of the given mode, and return a factory of paid
    10,000-fen orders whose commission is 1,000 (tier 1) and 500 (tier 2) pending."""
    from app.clients import secret_box
    from app.services import merchants, orders, payment_settings, products

    def _make(mode: str = "v3_public_key", sign_type: str = "MD5") -> dict:
        shop = merchants.create_merchant(name="鲜果小铺", owner_username="owner1",
                                         owner_password="pw-12345")
        account = sandbox_merchant(sandbox_url, mode, sign_type)
        payment_settings.configure(merchant_id=shop.id, body=settings_body(account),
                                   box=secret_box(), sandbox_base_url=None)
        tier_two = make_member(shop)
        tier_one = make_member(shop, upline=tier_two)
        buyer = make_member(shop, upline=tier_one, status="none")
        product = products.create_product(merchant_id=shop.id, fields={
            "title": "丑橘 5斤", "price_fen": 10_000, "stock": 10})
        order = orders.create_order(merchant_id=shop.id, user_id=buyer.user_id,
                                    items=[{"product_id": product.id, "quantity": 1}],
                                    address=ADDRESS, share_token=None, idempotency_key=None,
                                    now=utcnow())
        payments.payment_params(order, config, now=utcnow())
        pay(sandbox_url, account["mch_id"], order.out_trade_no)
        # That notification is lost too: the payment job asks WeChat, as it would.
        later = utcnow() + payments.EXPECTED_PAYMENT_TIME + timedelta(seconds=1)
        assert payments.recover_payments(config, now=later) == {"recovered": 1}
        staff_id = db.session.scalar(select(StaffAccount.id).where(
            StaffAccount.merchant_id == shop.id))
        return {"shop": shop, "account": account, "order": order, "staff_id": staff_id,
                "tier_one": tier_one, "tier_two": tier_two}
    return _make


def start(setup: dict, config, amount_fen: int | None = None) -> Refund:
    refund = refunds.start_refund(merchant_id=setup["shop"].id, order_id=setup["order"].id,
                                  amount_fen=amount_fen, reason="缺货",
                                  staff_id=setup["staff_id"], config=config, now=utcnow())
    assert refund.status == "processing"
    return refund


def submitted_long_ago(refund: Refund) -> None:
    """As if the refund had been sent to WeChat six minutes ago (the job waits five)."""
    with transaction(db.session):
        db.session.execute(update(Refund).where(
            Refund.merchant_id == refund.merchant_id, Refund.id == refund.id)
            .values(submitted_at=utcnow() - timedelta(minutes=6)))


def state(setup: dict, refund: Refund) -> dict:
    db.session.rollback()  # read what the job committed
    shop_id = setup["shop"].id
    order = db.session.get(Order, (shop_id, setup["order"].id))
    row = db.session.get(Refund, (shop_id, refund.id))
    return {
        "refund": row.status, "order": order.status, "refunded_fen": order.refunded_fen,
        "tier_one": ledger.wallet_balances(shop_id, setup["tier_one"].id)["pending"],
        "tier_two": ledger.wallet_balances(shop_id, setup["tier_two"].id)["pending"],
        "reversals": db.session.scalar(select(func.count()).select_from(Journal).where(
            Journal.merchant_id == shop_id, Journal.kind == "reversal")),
    }


def assert_ledger_sound(shop_id: int) -> None:
    report = ledger.verify(shop_id)
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])


@pytest.mark.parametrize(("mode", "sign_type"), MODES)
def test_sync_applies_a_refund_whose_notification_never_came(
        paid_order, config, sandbox_url, mode, sign_type):
    setup = paid_order(mode, sign_type)
    refund = start(setup, config)
    done = complete_refund(sandbox_url, setup["account"]["mch_id"], refund.out_refund_no)
    # Nobody took it: no delivery was acknowledged.
    assert not any(d["status"] in (200, 204) for d in done["deliveries"])
    submitted_long_ago(refund)

    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 1}

    assert state(setup, refund) == {"refund": "succeeded", "order": "refunded",
                                     "refunded_fen": 10_000, "tier_one": 0, "tier_two": 0,
                                     "reversals": 1}
    rows = db.session.scalars(select(Commission).where(
        Commission.merchant_id == setup["shop"].id).order_by(Commission.tier)).all()
    assert [(c.reversed_fen, c.status) for c in rows] == [(1_000, "reversed"),
                                                          (500, "reversed")]
    assert_ledger_sound(setup["shop"].id)


def test_a_second_sync_run_changes_nothing(paid_order, config, sandbox_url):
    setup = paid_order()
    refund = start(setup, config, amount_fen=3_000)
    complete_refund(sandbox_url, setup["account"]["mch_id"], refund.out_refund_no)
    submitted_long_ago(refund)
    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 1}
    first = state(setup, refund)

    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 0}
    assert state(setup, refund) == first == {
        "refund": "succeeded", "order": "partially_refunded", "refunded_fen": 3_000,
        "tier_one": 700, "tier_two": 350, "reversals": 1}


def test_a_notification_arriving_after_the_sync_reverses_nothing_more(
        paid_order, config, sandbox_url, client):
    setup = paid_order()
    refund = start(setup, config)
    done = complete_refund(sandbox_url, setup["account"]["mch_id"], refund.out_refund_no)
    submitted_long_ago(refund)
    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 1}
    db.session.rollback()

    # WeChat's retry finally gets through: acknowledged, and nothing moves twice.
    reply = deliver(client, sandbox_url, done["notification_id"])
    assert reply.status_code == 204, reply.get_data(as_text=True)
    assert state(setup, refund)["reversals"] == 1
    assert state(setup, refund)["tier_one"] == 0
    assert_ledger_sound(setup["shop"].id)


def test_sync_leaves_a_refund_submitted_moments_ago_for_its_notification(
        paid_order, config, sandbox_url):
    setup = paid_order()
    refund = start(setup, config)
    complete_refund(sandbox_url, setup["account"]["mch_id"], refund.out_refund_no)

    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 0}
    assert state(setup, refund)["refund"] == "processing"


def test_sync_keeps_a_refund_wechat_is_still_processing_open(paid_order, config, sandbox_url):
    setup = paid_order()
    refund = start(setup, config)
    submitted_long_ago(refund)
    # WeChat has not finished it: no refund notification exists, and the query says so.
    found = notifications(sandbox_url, setup["account"]["mch_id"])
    assert not any(n["event_type"].startswith("REFUND") for n in found)

    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 0}
    assert state(setup, refund) == {"refund": "processing", "order": "refunding",
                                     "refunded_fen": 0, "tier_one": 1_000, "tier_two": 500,
                                     "reversals": 0}


def test_sync_keeps_an_abnormal_refund_open_and_finishes_it_when_wechat_does(
        paid_order, config, sandbox_url):
    setup = paid_order()
    refund = start(setup, config)
    mch_id = setup["account"]["mch_id"]
    complete_refund(sandbox_url, mch_id, refund.out_refund_no, "ABNORMAL")
    submitted_long_ago(refund)

    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 0}
    assert state(setup, refund) == {"refund": "abnormal", "order": "refunding",
                                     "refunded_fen": 0, "tier_one": 1_000, "tier_two": 500,
                                     "reversals": 0}

    complete_refund(sandbox_url, mch_id, refund.out_refund_no, "SUCCESS")
    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 1}
    assert state(setup, refund) == {"refund": "succeeded", "order": "refunded",
                                    "refunded_fen": 10_000, "tier_one": 0, "tier_two": 0,
                                    "reversals": 1}


def test_sync_applies_a_closed_refund_by_putting_the_order_back(
        paid_order, config, sandbox_url):
    setup = paid_order()
    refund = start(setup, config)
    complete_refund(sandbox_url, setup["account"]["mch_id"], refund.out_refund_no, "CLOSED")
    submitted_long_ago(refund)

    assert refunds.sync_open_refunds(config, now=utcnow()) == {"finished": 1}
    assert state(setup, refund) == {"refund": "closed", "order": "paid", "refunded_fen": 0,
                                    "tier_one": 1_000, "tier_two": 500, "reversals": 0}
