"""The ledger under 64 concurrent writers on PostgreSQL: duplicates, one hot wallet, the same
order paid many times at once, many settlement runners, guards that must not be overdrawn.

Each writer is a thread with its own app context (so its own session and connection); all of
them hold an open connection at a barrier and are released together.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, func, select, text

from app.database import transaction, utcnow
from app.domain import ledger as rules
from app.extensions import db
from app.models import Commission, Journal, LedgerAccount, LedgerEntry, Order, PeriodTotal
from app.services import commissions, ledger
from tests.factories import make_member, make_merchant, make_order, pay_order

N = 64


@pytest.fixture
def wide_app(make_app):
    """An app on the same database whose pool lets all N writers hold a connection at once
    (the default pool of 5 + 10 would queue most of them)."""
    application = make_app()
    with application.app_context():
        narrow = db.engine
        db.engines[None] = create_engine(narrow.url, pool_size=N + 2, max_overflow=0,
                                         pool_pre_ping=True)
        narrow.dispose()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def run_together(application, work, n: int = N) -> tuple[list, list[BaseException]]:
    """``work(i)`` in n threads released at once; their results and their exceptions."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def runner(i: int) -> None:
        try:
            with application.app_context():
                db.session.execute(text("SELECT 1"))  # hold a connection before the start
                db.session.commit()
                barrier.wait(timeout=60)
                results[i] = work(i)
        except BaseException as error:  # noqa: BLE001 — reported by the test
            errors.append(error)
            barrier.abort()
        finally:
            with application.app_context():
                db.session.remove()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    return results, errors


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def assert_sound(merchant_id: int) -> None:
    report = ledger.verify(merchant_id)
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])


def expense(merchant_id: int) -> int:
    return db.session.scalar(select(LedgerAccount.balance_fen).where(
        LedgerAccount.merchant_id == merchant_id, LedgerAccount.owner_id == 0,
        LedgerAccount.kind == rules.COMMISSION_EXPENSE))


def post_alone(merchant_id: int, key: str, entries, **options):
    with transaction(db.session):
        journal = ledger.post(merchant_id=merchant_id, idempotency_key=key, kind="test",
                              entries=entries, **options)
        return None if journal is None else journal.id


def test_one_idempotency_key_posted_by_64_writers_moves_money_once(app_context, wide_app):
    shop = make_merchant()
    member = make_member(shop)
    shop_id, member_id = shop.id, member.id

    results, errors = run_together(wide_app, lambda i: post_alone(
        shop_id, "accrual:order:1", rules.accrual(member_id=member_id, amount_fen=250)))

    assert errors == []
    assert len([r for r in results if r is not None]) == 1
    db.session.expire_all()
    assert count(Journal) == 1 and count(LedgerEntry) == 2
    assert ledger.wallet_balances(shop_id, member_id)["pending"] == 250
    assert expense(shop_id) == -250
    # One wallet and one expense account, however many writers raced to create them.
    assert count(LedgerAccount) == 5
    assert_sound(shop_id)


def test_64_different_journals_to_one_wallet_all_land(app_context, wide_app):
    shop = make_merchant()
    member = make_member(shop)
    shop_id, member_id = shop.id, member.id

    results, errors = run_together(wide_app, lambda i: post_alone(
        shop_id, f"accrual:order:{i}", rules.accrual(member_id=member_id, amount_fen=137)))

    assert errors == []
    assert None not in results and len(set(results)) == N
    db.session.expire_all()
    pending = ledger.wallet_balances(shop_id, member_id)["pending"]
    entries = db.session.scalar(
        select(func.sum(LedgerEntry.amount_fen)).join(
            LedgerAccount, (LedgerAccount.merchant_id == LedgerEntry.merchant_id)
            & (LedgerAccount.id == LedgerEntry.account_id))
        .where(LedgerAccount.owner_id == member_id, LedgerAccount.kind == rules.PENDING))
    assert pending == entries == N * 137
    assert expense(shop_id) == -N * 137
    assert count(LedgerAccount) == 5
    assert_sound(shop_id)


def test_64_first_postings_of_different_members_each_find_their_accounts(app_context,
                                                                          wide_app):
    """A merchant's first postings race to create its expense account while each creates its
    own member's wallet: every one of them must still post (DOMAIN.md: concurrent first uses
    end with one set of accounts)."""
    shop = make_merchant()
    member_ids = [make_member(shop).id for _ in range(N)]
    shop_id = shop.id

    results, errors = run_together(wide_app, lambda i: post_alone(
        shop_id, f"accrual:order:{i}", rules.accrual(member_id=member_ids[i], amount_fen=10)))

    assert [repr(e) for e in errors] == []
    db.session.expire_all()
    assert count(Journal) == N
    assert count(LedgerAccount) == 1 + 4 * N
    assert expense(shop_id) == -10 * N
    assert_sound(shop_id)


def test_64_concurrent_takers_never_overdraw_a_guarded_balance(app_context, wide_app):
    shop = make_merchant()
    member = make_member(shop)
    shop_id, member_id = shop.id, member.id
    post_alone(shop_id, "accrual", rules.accrual(member_id=member_id, amount_fen=3_000))

    def settle_100(i: int) -> bool:
        try:
            post_alone(shop_id, f"settle:{i}", rules.settlement(member_id=member_id,
                                                                amount_fen=100))
        except ledger.InsufficientFunds:
            return False
        return True

    results, errors = run_together(wide_app, settle_100)

    assert errors == []
    assert results.count(True) == 30 and results.count(False) == N - 30
    db.session.expire_all()
    balances = ledger.wallet_balances(shop_id, member_id)
    assert (balances["pending"], balances["available"]) == (0, 3_000)
    assert count(Journal) == 31
    assert_sound(shop_id)


def chain(shop):
    """grandparent → parent → buyer, all active distributors."""
    grandparent = make_member(shop)
    parent = make_member(shop, upline=grandparent)
    return grandparent, parent, make_member(shop, upline=parent)


def test_the_same_order_paid_by_64_writers_accrues_once(app_context, wide_app):
    shop = make_merchant()
    grandparent, parent, buyer = chain(shop)
    order = make_order(buyer, lines=[(10_000, 1), (3_333, 3)], discount_fen=1_000)
    ref = SimpleNamespace(merchant_id=order.merchant_id, id=order.id)
    shop_id, parent_id, grandparent_id = shop.id, parent.id, grandparent.id

    results, errors = run_together(wide_app, lambda i: len(pay_order(ref)))

    assert errors == []
    parts = [r for r in results if r]
    assert len(parts) == 1 and parts[0] == 4  # 2 lines × 2 tiers, by exactly one writer
    db.session.expire_all()
    assert count(Journal, Journal.kind == "accrual") == 1
    assert count(Commission) == 4
    amounts = dict(db.session.execute(select(Commission.member_id, func.sum(
        Commission.amount_fen)).group_by(Commission.member_id)).all())
    assert ledger.wallet_balances(shop_id, parent_id)["pending"] == amounts[parent_id] > 0
    assert ledger.wallet_balances(shop_id, grandparent_id)["pending"] \
        == amounts[grandparent_id] > 0
    totals = dict(db.session.execute(select(PeriodTotal.member_id,
                                            PeriodTotal.commission_fen)).all())
    assert totals == {parent_id: amounts[parent_id], grandparent_id: amounts[grandparent_id]}
    assert db.session.get(Order, (shop_id, order.id)).status == "paid"
    assert_sound(shop_id)


def test_64_settlement_runners_settle_each_commission_once(app_context, wide_app):
    shop = make_merchant()
    grandparent, parent, buyer = chain(shop)
    for n in range(12):
        order = make_order(buyer, lines=[(1_000 + n, 1), (2_000, 2)])
        pay_order(order)
        with transaction(db.session):
            row = db.session.get(Order, (order.merchant_id, order.id))
            commissions.schedule_settlement(row, received_at=utcnow() - timedelta(days=8),
                                            freeze_days=7)
    due = count(Commission, Commission.settle_at.is_not(None))
    assert due == 12 * 2 * 2
    pending_before = {m: ledger.wallet_balances(shop.id, m)["pending"]
                      for m in (parent.id, grandparent.id)}
    db.session.commit()

    def settle(i: int) -> int:
        with transaction(db.session):
            return commissions.settle_due(now=utcnow())

    results, errors = run_together(wide_app, settle)

    assert errors == []
    assert sum(results) == due
    db.session.expire_all()
    assert count(Journal, Journal.kind == "settlement") == due
    assert count(Commission, Commission.status == "settled") == due
    for member_id, pending in pending_before.items():
        balances = ledger.wallet_balances(shop.id, member_id)
        assert (balances["pending"], balances["available"]) == (0, pending)
    assert_sound(shop.id)
