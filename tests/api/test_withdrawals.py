"""Withdrawals through the real entry points: the distributor asks in the mini-program, finance
reviews in the console, WeChat (the sandbox) runs the merchant transfer and its notifications
come back to our webhook; the sync job covers lost notifications and unconfirmed bills.
Every money test checks the wallet to the fen and ends with a clean ledger verification."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.api.test_withdrawal_flow import earn
from tests.support.wechatpay import complete_refund, control, deliver

# earn(): carol buys for 100,000 fen; bob (tier 1, 10%) has 10,000 available, alice (5%) 5,000.
BOB_EARNED = 10_000


# --- helpers ----------------------------------------------------------------------------------


def withdrawals_url(shop) -> str:
    return f"/api/mp/v1/merchants/{shop.id}/withdrawals"


def wallet(client, shop, person) -> dict:
    response = client.get(f"/api/mp/v1/merchants/{shop.id}/wallet", headers=person["headers"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def balances(available: int, withdrawing: int = 0, paid_out: int = 0) -> dict:
    return {"pending_fen": 0, "available_fen": available, "withdrawing_fen": withdrawing,
            "paid_out_fen": paid_out}


def ask(client, shop, person, amount_fen: int, key: str | None = None, **body):
    headers = dict(person["headers"], **({"Idempotency-Key": key} if key else {}))
    return client.post(withdrawals_url(shop), headers=headers,
                       json={"amount_fen": amount_fen, **body})


def asked(client, shop, person, amount_fen: int, **body) -> dict:
    response = ask(client, shop, person, amount_fen, **body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def assert_refused(response, code: str, field: str) -> None:
    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert error["code"] == code, error
    assert field in error["errors"], error


def review(client, staff_headers, withdrawal: dict, action: str, role: str = "finance1",
           body: dict | None = None):
    return client.post(f"/api/console/v1/withdrawals/{withdrawal['id']}/{action}",
                       headers=staff_headers(role), json=body)


def approved(client, staff_headers, withdrawal: dict, role: str = "finance1") -> dict:
    response = review(client, staff_headers, withdrawal, "approve", role)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def set_rules(client, staff_headers, **rules) -> None:
    response = client.put("/api/console/v1/settings/distribution", headers=staff_headers(),
                          json=rules)
    assert response.status_code == 200, response.get_json()


def out_bill_no(shop, withdrawal: dict) -> str:
    return f"W{shop.id}N{withdrawal['id']:08d}"


def wechat(sandbox_url: str, account: dict, shop, withdrawal: dict, action: str) -> dict:
    """The distributor confirms (or WeChat fails or closes) the bill; the FINISHED notification
    is built but, with the app in-process, only reaches it through ``deliver``."""
    return control(sandbox_url, "POST",
                   f"/sandbox/transfers/{account['mch_id']}/{out_bill_no(shop, withdrawal)}"
                   f"/{action}")


def wechat_reports(client, sandbox_url, account, shop, withdrawal, action: str) -> None:
    done = wechat(sandbox_url, account, shop, withdrawal, action)
    reply = deliver(client, sandbox_url, done["notification_id"])
    assert reply.status_code == 204, reply.get_data(as_text=True)


def mine(client, shop, person) -> list[dict]:
    response = client.get(withdrawals_url(shop), headers=person["headers"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def current(client, shop, person, withdrawal: dict) -> dict:
    return next(w for w in mine(client, shop, person) if w["id"] == withdrawal["id"])


def journals(shop, kind: str) -> int:
    from app.extensions import db
    from app.models import Journal

    db.session.rollback()  # see what the requests committed, not this session's snapshot
    return db.session.scalar(select(func.count()).select_from(Journal).where(
        Journal.merchant_id == shop.id, Journal.kind == kind))


def withdrawal_count(shop) -> int:
    from app.extensions import db
    from app.models import Withdrawal

    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Withdrawal).where(
        Withdrawal.merchant_id == shop.id))


def commission_expense(shop) -> int:
    from app.domain.ledger import COMMISSION_EXPENSE, MERCHANT_OWNER
    from app.extensions import db
    from app.models import LedgerAccount

    db.session.rollback()
    return db.session.scalar(select(LedgerAccount.balance_fen).where(
        LedgerAccount.merchant_id == shop.id, LedgerAccount.owner_id == MERCHANT_OWNER,
        LedgerAccount.kind == COMMISSION_EXPENSE))


def assert_ledger_sound(shop) -> None:
    from app.extensions import db
    from app.services import ledger

    db.session.rollback()
    report = ledger.verify(shop.id)
    assert report["accounts_checked"] > 0
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])


def sync(now):
    """The sync-transfers job at ``now``, then the outbox sweep it relies on for the mirror."""
    from app.clients import pay_config
    from app.extensions import db, redis
    from app.services import wallets, withdrawals

    db.session.rollback()
    result = withdrawals.sync_transfers(pay_config(), now=now)
    wallets.sweep_outbox(redis.client)
    return result


def bill_state(shop, withdrawal: dict) -> str:
    """What WeChat itself says of the bill (a query to the sandbox)."""
    from app.clients import pay_config
    from app.extensions import db

    db.session.rollback()
    return pay_config().gateway(shop.id).query_transfer(out_bill_no(shop, withdrawal)).state


def utcnow():
    from app.database import utcnow as now

    return now()


@pytest.fixture
def earned(client, shop, chain, pay_account, add_product, sandbox_url):
    """bob has 10,000 fen available at a v3 (public key) merchant; returns the pay account."""
    account, _ = earn(client, shop, chain, pay_account, add_product, sandbox_url)
    assert wallet(client, shop, chain["bob"]) == balances(BOB_EARNED)
    return account


# --- refusals ---------------------------------------------------------------------------------


def test_a_request_below_the_minimum_is_refused_and_the_minimum_itself_is_accepted(
        client, shop, chain, earned, staff_headers):
    set_rules(client, staff_headers, withdraw_min_fen=1_000)
    bob = chain["bob"]
    assert_refused(ask(client, shop, bob, 999), "below_minimum", "amount_fen")
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    assert withdrawal_count(shop) == 0 and journals(shop, "withdrawal") == 0

    asked(client, shop, bob, 1_000)
    assert wallet(client, shop, bob) == balances(BOB_EARNED - 1_000, 1_000)
    assert_ledger_sound(shop)


def test_a_request_above_the_maximum_is_refused_and_the_maximum_itself_is_accepted(
        client, shop, chain, earned, staff_headers):
    set_rules(client, staff_headers, withdraw_max_fen=5_000)
    bob = chain["bob"]
    assert_refused(ask(client, shop, bob, 5_001), "above_maximum", "amount_fen")
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    assert withdrawal_count(shop) == 0 and journals(shop, "withdrawal") == 0

    asked(client, shop, bob, 5_000)
    assert wallet(client, shop, bob) == balances(BOB_EARNED - 5_000, 5_000)
    assert_ledger_sound(shop)


def test_the_fourth_request_of_a_day_is_refused_until_a_rejection_gives_a_turn_back(
        client, shop, chain, earned, staff_headers):
    bob = chain["bob"]
    first, _, _ = (asked(client, shop, bob, 100) for _ in range(3))
    assert wallet(client, shop, bob) == balances(BOB_EARNED - 300, 300)

    assert_refused(ask(client, shop, bob, 100), "daily_limit_reached", "amount_fen")
    assert wallet(client, shop, bob) == balances(BOB_EARNED - 300, 300)
    assert withdrawal_count(shop) == 3

    rejected = review(client, staff_headers, first, "reject", body={"reason": "信息不全"})
    assert rejected.status_code == 200, rejected.get_json()
    assert wallet(client, shop, bob) == balances(BOB_EARNED - 200, 200)

    asked(client, shop, bob, 100)  # the rejected request's turn
    assert wallet(client, shop, bob) == balances(BOB_EARNED - 300, 300)
    assert_refused(ask(client, shop, bob, 100), "daily_limit_reached", "amount_fen")
    assert_ledger_sound(shop)


def test_a_request_above_the_available_balance_is_refused(client, shop, chain, earned):
    bob = chain["bob"]
    assert_refused(ask(client, shop, bob, BOB_EARNED + 1), "insufficient_balance", "amount_fen")
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    assert withdrawal_count(shop) == 0 and journals(shop, "withdrawal") == 0
    assert_ledger_sound(shop)


def test_a_request_the_fee_tips_over_the_available_balance_is_refused(
        client, shop, chain, earned, staff_headers):
    set_rules(client, staff_headers, withdraw_fee_bps=100)
    bob = chain["bob"]
    # 9,902 + floor(99.02) = 10,001 > 10,000; 9,901 + floor(99.01) = 10,000 exactly.
    assert_refused(ask(client, shop, bob, 9_902), "insufficient_balance", "amount_fen")
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    assert withdrawal_count(shop) == 0

    body = asked(client, shop, bob, 9_901)
    assert (body["amount_fen"], body["fee_fen"]) == (9_901, 99)
    assert wallet(client, shop, bob) == balances(0, BOB_EARNED)
    assert_ledger_sound(shop)


def test_a_debt_from_a_refund_after_payout_blocks_every_withdrawal(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    account, order = earn(client, shop, chain, pay_account, add_product, sandbox_url)
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, BOB_EARNED)
    approved(client, staff_headers, withdrawal)
    wechat_reports(client, sandbox_url, account, shop, withdrawal, "confirm")
    assert wallet(client, shop, bob) == balances(0, 0, BOB_EARNED)

    # The whole order is refunded after bob was paid: his 10,000 come back as a debt.
    started = client.post(f"/api/console/v1/orders/{order['id']}/refunds",
                          headers=staff_headers(), json={"reason": "缺货"})
    assert started.status_code == 201, started.get_json()
    done = complete_refund(sandbox_url, account["mch_id"], started.get_json()["out_refund_no"])
    assert deliver(client, sandbox_url, done["notification_id"]).status_code == 204
    assert wallet(client, shop, bob) == balances(-BOB_EARNED, 0, BOB_EARNED)

    assert_refused(ask(client, shop, bob, 100), "debt_outstanding", "amount_fen")
    assert wallet(client, shop, bob) == balances(-BOB_EARNED, 0, BOB_EARNED)
    assert withdrawal_count(shop) == 1 and journals(shop, "withdrawal") == 1
    assert_ledger_sound(shop)


def test_a_request_from_two_thousand_yuan_needs_the_real_name_which_the_transfer_carries(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    from app.clients import secret_box
    from app.extensions import db
    from app.models import Member

    # 2,000,000 × 10% = 200,000 fen for bob: exactly WeChat's real-name threshold.
    account, _ = earn(client, shop, chain, pay_account, add_product, sandbox_url,
                      price_fen=2_000_000)
    bob = chain["bob"]
    assert wallet(client, shop, bob) == balances(200_000)

    assert_refused(ask(client, shop, bob, 200_000), "real_name_required", "real_name")
    assert wallet(client, shop, bob) == balances(200_000)
    assert withdrawal_count(shop) == 0

    withdrawal = asked(client, shop, bob, 200_000, real_name="王小明")
    assert wallet(client, shop, bob) == balances(0, 200_000)
    db.session.rollback()
    member = db.session.get(Member, (shop.id, bob["member"].id))
    assert member.real_name_masked == "王**"
    assert secret_box().decrypt(member.real_name_encrypted) == "王小明"

    # The sandbox refuses a bill from ¥2,000 without an encrypted user_name it can decrypt.
    body = approved(client, staff_headers, withdrawal)
    assert body["status"] == "transferring" and body["transfer"]["package"]
    wechat_reports(client, sandbox_url, account, shop, withdrawal, "confirm")
    assert wallet(client, shop, bob) == balances(0, 0, 200_000)
    assert_ledger_sound(shop)


def test_a_frozen_distributor_cannot_withdraw(client, shop, chain, earned, staff_headers):
    bob = chain["bob"]
    frozen = client.post(f"/api/console/v1/distributors/{bob['member'].id}/freeze",
                         headers=staff_headers(), json={"reason": "刷单嫌疑"})
    assert frozen.status_code == 200, frozen.get_json()

    response = ask(client, shop, bob, 1_000)
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["code"] == "distributor_frozen"
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    assert withdrawal_count(shop) == 0 and journals(shop, "withdrawal") == 0
    assert_ledger_sound(shop)


# --- the fee and automatic approval -----------------------------------------------------------


def test_the_fee_is_rounded_down_taken_from_available_and_kept_by_the_merchant(
        client, shop, chain, earned, staff_headers, sandbox_url):
    set_rules(client, staff_headers, withdraw_fee_bps=150)
    bob = chain["bob"]
    expense_before = commission_expense(shop)
    assert expense_before == -15_000  # bob's 10,000 and alice's 5,000

    withdrawal = asked(client, shop, bob, 6_001)
    # 6,001 × 1.5% = 90.015 → 90.
    assert (withdrawal["amount_fen"], withdrawal["fee_fen"]) == (6_001, 90)
    assert wallet(client, shop, bob) == balances(BOB_EARNED - 6_091, 6_091)

    approved(client, staff_headers, withdrawal)
    wechat_reports(client, sandbox_url, earned, shop, withdrawal, "confirm")
    assert wallet(client, shop, bob) == balances(BOB_EARNED - 6_091, 0, 6_001)
    assert commission_expense(shop) == expense_before + 90
    assert_ledger_sound(shop)


def test_a_request_below_the_auto_approval_threshold_starts_the_transfer_at_once(
        client, shop, chain, earned, staff_headers, sandbox_url):
    set_rules(client, staff_headers, withdraw_auto_approve_below_fen=5_000)
    bob = chain["bob"]

    body = asked(client, shop, bob, 4_999)
    assert (body["status"], body["auto_approved"]) == ("transferring", True)
    transfer = body["transfer"]
    assert (transfer["mch_id"], transfer["app_id"]) == (earned["mch_id"], earned["appid"])
    assert transfer["package"]
    at_threshold = asked(client, shop, bob, 5_000)
    assert (at_threshold["status"], at_threshold["auto_approved"]) == ("requested", False)
    assert at_threshold["transfer"] is None
    assert wallet(client, shop, bob) == balances(1, 9_999)

    wechat_reports(client, sandbox_url, earned, shop, body, "confirm")
    assert wallet(client, shop, bob) == balances(1, 5_000, 4_999)
    assert_ledger_sound(shop)


# --- review -----------------------------------------------------------------------------------


def test_a_rejection_needs_a_reason_and_returns_the_money_to_available(
        client, shop, chain, earned, staff_headers):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    for body in (None, {}, {"reason": ""}):
        response = review(client, staff_headers, withdrawal, "reject", body=body)
        assert response.status_code == 422, response.get_json()
        assert current(client, shop, bob, withdrawal)["status"] == "requested"
    assert wallet(client, shop, bob) == balances(4_000, 6_000)

    response = review(client, staff_headers, withdrawal, "reject",
                      body={"reason": "请先完善收款信息"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["review_reason"]) == ("rejected", "请先完善收款信息")
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    seen = current(client, shop, bob, withdrawal)
    assert (seen["status"], seen["review_reason"]) == ("rejected", "请先完善收款信息")
    assert journals(shop, "withdrawal_return") == 1
    assert_ledger_sound(shop)


def test_a_blank_rejection_reason_is_refused(client, shop, chain, earned, staff_headers):
    """A reason of spaces says nothing to the distributor (distributor reviews refuse it)."""
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    response = review(client, staff_headers, withdrawal, "reject", body={"reason": "   "})
    assert response.status_code == 422, response.get_json()
    assert current(client, shop, bob, withdrawal)["status"] == "requested"
    assert wallet(client, shop, bob) == balances(4_000, 6_000)


def test_an_operator_cannot_approve_reject_or_mark_paid_but_finance_and_owner_can(
        client, shop, chain, earned, staff_headers):
    bob = chain["bob"]
    first, second, third = (asked(client, shop, bob, 1_000) for _ in range(3))
    for action, body in (("approve", None), ("reject", {"reason": "不符合规则"}),
                         ("mark-paid", {"reference": "BANK-1"})):
        response = review(client, staff_headers, first, action, "operator1", body)
        assert response.status_code == 403, (action, response.get_json())
    assert current(client, shop, bob, first)["status"] == "requested"
    assert wallet(client, shop, bob) == balances(7_000, 3_000)

    assert approved(client, staff_headers, first, "owner1")["status"] == "transferring"
    assert review(client, staff_headers, second, "reject", "finance1",
                  {"reason": "不符合规则"}).get_json()["status"] == "rejected"
    paid = review(client, staff_headers, third, "mark-paid", "owner1", {"reference": "BANK-2"})
    assert paid.status_code == 200 and paid.get_json()["status"] == "paid_out"
    assert wallet(client, shop, bob) == balances(8_000, 1_000, 1_000)
    assert_ledger_sound(shop)


def test_finance_can_mark_a_requested_withdrawal_paid_offline_with_a_reference(
        client, shop, chain, earned, staff_headers):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    missing = review(client, staff_headers, withdrawal, "mark-paid", body={})
    assert missing.status_code == 422, missing.get_json()
    assert wallet(client, shop, bob) == balances(4_000, 6_000)

    response = review(client, staff_headers, withdrawal, "mark-paid",
                      body={"reference": "ICBC-20250301-0042"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["offline_reference"]) == ("paid_out", "ICBC-20250301-0042")
    assert wallet(client, shop, bob) == balances(4_000, 0, 6_000)
    assert journals(shop, "payout") == 1
    assert_ledger_sound(shop)


def test_marking_paid_is_refused_while_the_wechat_transfer_is_in_progress(
        client, shop, chain, earned, staff_headers, sandbox_url):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    assert approved(client, staff_headers, withdrawal)["status"] == "transferring"

    response = review(client, staff_headers, withdrawal, "mark-paid",
                      body={"reference": "ICBC-1"})
    assert response.status_code == 409, response.get_json()
    assert current(client, shop, bob, withdrawal)["status"] == "transferring"
    assert wallet(client, shop, bob) == balances(4_000, 6_000)
    assert journals(shop, "payout") == 0

    wechat_reports(client, sandbox_url, earned, shop, withdrawal, "confirm")
    assert wallet(client, shop, bob) == balances(4_000, 0, 6_000)
    assert journals(shop, "payout") == 1
    assert_ledger_sound(shop)


def test_marking_paid_is_refused_while_a_bill_whose_creation_answer_was_lost_is_open(
        client, shop, chain, earned, staff_headers, sandbox_url, make_app):
    """The transfer call reached WeChat, which created the bill, but its answer never came
    back (a timeout): the distributor can confirm the bill, so paying it offline would pay
    twice. The withdrawal was claimed (``transferring``) before WeChat was called, and stays
    so until WeChat's word on the bill arrives (WECHAT.md: query before anything else)."""
    from app.clients import pay_config
    from app.extensions import db
    from app.models import User
    from app.services.withdrawals import REMARK

    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    unreachable = make_app(wechatpay_api_base_url="http://127.0.0.1:9")  # nothing listens
    response = unreachable.test_client().post(
        f"/api/console/v1/withdrawals/{withdrawal['id']}/approve",
        headers=staff_headers("finance1"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "transferring"
    assert response.get_json()["transfer"] is None  # no package: WeChat's answer never came
    # What that lost call did at WeChat: the same bill, same out_bill_no and parameters.
    db.session.rollback()
    config = pay_config()
    bill = config.gateway(shop.id).transfer(
        out_bill_no=out_bill_no(shop, withdrawal), amount_fen=6_000, remark=REMARK,
        openid=db.session.get(User, bob["member"].user_id).openid, user_name=None,
        notify_url=config.notify_url(shop.id, "v3"))
    assert bill.state == "WAIT_USER_CONFIRM"

    paid = review(client, staff_headers, withdrawal, "mark-paid", body={"reference": "ICBC-9"})
    assert paid.status_code == 409, paid.get_json()
    assert wallet(client, shop, bob) == balances(4_000, 6_000)
    assert journals(shop, "payout") == 0

    # The job finds the bill; the distributor's confirmation then pays once, through WeChat.
    sync(utcnow() + timedelta(minutes=2))
    assert current(client, shop, bob, withdrawal)["status"] == "transferring"
    wechat_reports(client, sandbox_url, earned, shop, withdrawal, "confirm")
    assert wallet(client, shop, bob) == balances(4_000, 0, 6_000)
    assert journals(shop, "payout") == 1
    assert_ledger_sound(shop)


# --- the transfer's outcome -------------------------------------------------------------------


def test_a_failed_transfer_returns_the_money_with_wechats_reason(
        client, shop, chain, earned, staff_headers, sandbox_url):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    approved(client, staff_headers, withdrawal)

    wechat_reports(client, sandbox_url, earned, shop, withdrawal, "reject")

    seen = current(client, shop, bob, withdrawal)
    assert (seen["status"], seen["fail_reason"]) == ("failed", "PAYEE_ACCOUNT_ABNORMAL")
    assert seen["transfer"] is None
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    assert (journals(shop, "payout"), journals(shop, "withdrawal_return")) == (0, 1)
    assert_ledger_sound(shop)


def test_a_bill_wechat_closes_unconfirmed_returns_the_money(
        client, shop, chain, earned, staff_headers, sandbox_url):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    approved(client, staff_headers, withdrawal)

    wechat_reports(client, sandbox_url, earned, shop, withdrawal, "expire")

    seen = current(client, shop, bob, withdrawal)
    assert (seen["status"], seen["transfer_state"]) == ("failed", "CANCELLED")
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    assert (journals(shop, "payout"), journals(shop, "withdrawal_return")) == (0, 1)
    assert_ledger_sound(shop)


def test_a_finished_notification_delivered_five_times_pays_out_once(
        client, shop, chain, earned, staff_headers, sandbox_url):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    approved(client, staff_headers, withdrawal)

    done = wechat(sandbox_url, earned, shop, withdrawal, "confirm")
    for _ in range(5):
        reply = deliver(client, sandbox_url, done["notification_id"])
        assert reply.status_code == 204, reply.get_data(as_text=True)

    assert journals(shop, "payout") == 1
    assert wallet(client, shop, bob) == balances(4_000, 0, 6_000)
    assert current(client, shop, bob, withdrawal)["status"] == "paid_out"
    assert_ledger_sound(shop)


def test_the_sync_job_pays_out_a_confirmed_bill_whose_notification_was_lost(
        client, shop, chain, earned, staff_headers, sandbox_url):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    approved(client, staff_headers, withdrawal)
    wechat(sandbox_url, earned, shop, withdrawal, "confirm")  # never delivered
    assert current(client, shop, bob, withdrawal)["status"] == "transferring"

    # Within a minute of approval the job leaves the bill to its notification.
    assert sync(utcnow()) == {"finished": 0}
    assert current(client, shop, bob, withdrawal)["status"] == "transferring"

    assert sync(utcnow() + timedelta(minutes=2)) == {"finished": 1}
    assert current(client, shop, bob, withdrawal)["status"] == "paid_out"
    assert wallet(client, shop, bob) == balances(4_000, 0, 6_000)

    assert sync(utcnow() + timedelta(minutes=4)) == {"finished": 0}
    assert journals(shop, "payout") == 1
    assert wallet(client, shop, bob) == balances(4_000, 0, 6_000)
    assert_ledger_sound(shop)


def test_the_sync_job_cancels_a_bill_left_unconfirmed_for_a_day_and_returns_the_money(
        client, shop, chain, earned, staff_headers, sandbox_url):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    approved(client, staff_headers, withdrawal)

    # A day has not passed yet: the bill is asked about and left open.
    assert sync(utcnow() + timedelta(hours=23)) == {"finished": 0}
    assert current(client, shop, bob, withdrawal)["status"] == "transferring"

    assert sync(utcnow() + timedelta(hours=25)) == {"finished": 1}
    assert bill_state(shop, withdrawal) == "CANCELLED"  # closed at WeChat, not only here
    seen = current(client, shop, bob, withdrawal)
    assert (seen["status"], seen["transfer_state"]) == ("failed", "CANCELLED")
    assert wallet(client, shop, bob) == balances(BOB_EARNED)
    assert journals(shop, "payout") == 0
    assert_ledger_sound(shop)


# --- APIv2-only merchants ---------------------------------------------------------------------


def test_a_v2_merchant_approves_without_a_transfer_and_pays_offline(
        client, shop, chain, pay_account, add_product, sandbox_url, staff_headers):
    earn(client, shop, chain, lambda: pay_account("v2"), add_product, sandbox_url)
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)

    body = approved(client, staff_headers, withdrawal)
    assert (body["status"], body["transfer"]) == ("approved", None)
    # The job has no transfer to make for it either.
    assert sync(utcnow() + timedelta(minutes=2)) == {"finished": 0}
    assert current(client, shop, bob, withdrawal)["status"] == "approved"
    assert wallet(client, shop, bob) == balances(4_000, 6_000)

    paid = review(client, staff_headers, withdrawal, "mark-paid",
                  body={"reference": "ABC-20250301-7"})
    assert paid.status_code == 200, paid.get_json()
    assert (paid.get_json()["status"], paid.get_json()["offline_reference"]) == (
        "paid_out", "ABC-20250301-7")
    assert wallet(client, shop, bob) == balances(4_000, 0, 6_000)
    assert_ledger_sound(shop)


# --- idempotency ------------------------------------------------------------------------------


def test_a_repeated_request_with_the_same_idempotency_key_moves_the_money_once(
        client, shop, chain, earned):
    bob = chain["bob"]
    first = ask(client, shop, bob, 6_000, key="withdraw-7f3a")
    again = ask(client, shop, bob, 6_000, key="withdraw-7f3a")
    assert (first.status_code, again.status_code) == (201, 201), again.get_json()
    assert again.get_json()["id"] == first.get_json()["id"]
    assert wallet(client, shop, bob) == balances(4_000, 6_000)
    assert withdrawal_count(shop) == 1 and journals(shop, "withdrawal") == 1

    other = ask(client, shop, bob, 3_000, key="withdraw-7f3a")
    assert other.status_code == 409, other.get_json()
    assert other.get_json()["code"] == "idempotency_key_reused"
    assert wallet(client, shop, bob) == balances(4_000, 6_000)
    assert withdrawal_count(shop) == 1
    assert_ledger_sound(shop)


# --- tenancy ----------------------------------------------------------------------------------


def test_another_merchants_staff_and_another_buyer_cannot_see_or_touch_a_withdrawal(
        client, shop, other_shop, chain, earned, staff_headers):
    bob = chain["bob"]
    withdrawal = asked(client, shop, bob, 6_000)
    stranger = staff_headers("owner2")

    listed = client.get("/api/console/v1/withdrawals", headers=stranger)
    assert listed.status_code == 200 and listed.get_json()["items"] == []
    for action, body in (("approve", None), ("reject", {"reason": "x"}),
                         ("mark-paid", {"reference": "x"})):
        response = client.post(f"/api/console/v1/withdrawals/{withdrawal['id']}/{action}",
                               headers=stranger, json=body)
        assert response.status_code == 404, (action, response.get_json())
        assert response.get_json()["code"] == "withdrawal_not_found"

    assert mine(client, shop, chain["alice"]) == []
    assert [w["id"] for w in mine(client, shop, bob)] == [withdrawal["id"]]
    ours = client.get("/api/console/v1/withdrawals", headers=staff_headers("finance1"))
    assert [w["id"] for w in ours.get_json()["items"]] == [withdrawal["id"]]
    assert current(client, shop, bob, withdrawal)["status"] == "requested"
    assert wallet(client, shop, bob) == balances(4_000, 6_000)
    assert_ledger_sound(shop)
