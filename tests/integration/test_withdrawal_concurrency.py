"""Withdrawal requests racing on PostgreSQL (issue 6): 20 requests for the whole balance, the
same Idempotency-Key sent 20 times at once, and a used key with another body.

The money comes from real postings (an order paid, received and settled). Each request is a
thread with its own app context, so its own session and connection; all of them are released
together from a barrier (see test_ledger_concurrency.run_together).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select

from app.clients import secret_box
from app.database import transaction, utcnow
from app.errors import AppError, Conflict, InvalidInput
from app.extensions import db
from app.models import IdempotencyRecord, Journal, Order, Withdrawal
from app.services import commissions, ledger, withdrawals
from tests.factories import make_member, make_merchant, make_order, pay_order
from tests.integration.test_ledger_concurrency import run_together

N = 20
PRICE_FEN = 100_000
EARNED_FEN = 10_000  # tier 1 at the default 10% of a 1,000 yuan order


@pytest.fixture
def wide_app(make_app):
    """An app on the same database whose pool lets all N requests hold a connection at once
    (the default pool of 5 + 10 would queue some of them and the race would be narrower)."""
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


def earn(distributor, buyer) -> None:
    """``distributor`` earns tier-1 commission on a paid order of ``buyer`` that was received
    eight days ago and settled by the job: available money made only by real postings."""
    order = make_order(buyer, lines=[(PRICE_FEN, 1)])
    pay_order(order)
    with transaction(db.session):
        row = db.session.get(Order, (order.merchant_id, order.id))
        commissions.schedule_settlement(row, received_at=utcnow() - timedelta(days=8),
                                        freeze_days=7)
    with transaction(db.session):
        assert commissions.settle_due(now=utcnow()) > 0


@pytest.fixture
def earner(app_context):
    """A distributor with EARNED_FEN available in a merchant with the default withdrawal rules
    (no fee, nothing auto-approved: every request stays "requested")."""
    shop = make_merchant()
    distributor = make_member(shop)
    buyer = make_member(shop, upline=distributor)
    earn(distributor, buyer)
    assert ledger.wallet_balances(shop.id, distributor.id)["available"] == EARNED_FEN
    return {"merchant_id": shop.id, "member_id": distributor.id,
            "user_id": distributor.user_id, "buyer": buyer, "distributor": distributor}


def ask(earner: dict, amount_fen: int, key: str | None = None):
    """One withdrawal request as the API makes it: the id, or the refusal's class and code."""
    try:
        withdrawal = withdrawals.request_withdrawal(
            merchant_id=earner["merchant_id"], user_id=earner["user_id"],
            amount_fen=amount_fen, real_name=None, idempotency_key=key, box=secret_box(),
            now=utcnow())
        return withdrawal.id
    except AppError as error:
        return (type(error).__name__, error.code)


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def assert_sound(merchant_id: int) -> None:
    report = ledger.verify(merchant_id)
    assert (report["balance_drift"], report["unbalanced_journals"],
            report["merchants_not_zero"]) == ([], [], [])


def balances(earner: dict) -> tuple[int, int]:
    db.session.expire_all()
    wallet = ledger.wallet_balances(earner["merchant_id"], earner["member_id"])
    return wallet["available"], wallet["withdrawing"]


def test_twenty_requests_for_the_whole_balance_let_exactly_one_through(earner, wide_app):
    results, errors = run_together(wide_app, lambda i: ask(earner, EARNED_FEN), n=N)

    assert [repr(e) for e in errors] == []
    granted = [r for r in results if isinstance(r, int)]
    assert len(granted) == 1
    # Refused by the rule check under the member's lock, not by the ledger's backstop (a 409).
    assert sorted(r for r in results if not isinstance(r, int)) \
        == [(InvalidInput.__name__, "insufficient_balance")] * (N - 1)
    assert balances(earner) == (0, EARNED_FEN)
    assert count(Journal, Journal.kind == "withdrawal") == 1
    withdrawal = db.session.get(Withdrawal, (earner["merchant_id"], granted[0]))
    assert (withdrawal.amount_fen, withdrawal.status) == (EARNED_FEN, "requested")
    assert count(Withdrawal) == 1
    assert_sound(earner["merchant_id"])


def test_one_idempotency_key_sent_twenty_times_at_once_withdraws_once(earner, wide_app):
    results, errors = run_together(wide_app, lambda i: ask(earner, EARNED_FEN, "tap-1"), n=N)

    assert [repr(e) for e in errors] == []
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1
    assert count(Withdrawal) == 1 and count(IdempotencyRecord) == 1
    assert count(Journal, Journal.kind == "withdrawal") == 1
    assert balances(earner) == (0, EARNED_FEN)
    assert_sound(earner["merchant_id"])


def test_a_used_key_with_another_amount_is_refused_and_moves_nothing(earner, wide_app):
    first = ask(earner, 4_000, "tap-2")
    assert isinstance(first, int)

    # Racing repeats with the other amount: none may open a second withdrawal.
    results, errors = run_together(wide_app, lambda i: ask(earner, 5_000, "tap-2"), n=N)

    assert [repr(e) for e in errors] == []
    assert results == [(Conflict.__name__, "idempotency_key_reused")] * N
    assert ask(earner, 4_000, "tap-2") == first
    assert count(Withdrawal) == 1 and count(Journal, Journal.kind == "withdrawal") == 1
    assert balances(earner) == (EARNED_FEN - 4_000, 4_000)
    assert_sound(earner["merchant_id"])


def test_the_whole_balance_race_repeats_after_a_top_up(earner, wide_app):
    """The daily count and the earlier withdrawal must not confuse the second race: new money
    is again withdrawn exactly once."""
    first = ask(earner, EARNED_FEN)
    assert isinstance(first, int)
    earn(earner["distributor"], earner["buyer"])
    assert balances(earner) == (EARNED_FEN, EARNED_FEN)

    results, errors = run_together(wide_app, lambda i: ask(earner, EARNED_FEN), n=N)

    assert [repr(e) for e in errors] == []
    granted = [r for r in results if isinstance(r, int)]
    assert len(granted) == 1 and granted[0] != first
    assert balances(earner) == (0, 2 * EARNED_FEN)
    assert count(Journal, Journal.kind == "withdrawal") == 2
    assert_sound(earner["merchant_id"])
