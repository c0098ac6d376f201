"""The ledger's one posting function, its guards and its verification, on PostgreSQL.

``ledger.post`` runs in the caller's transaction: every test posts inside
``transaction(db.session)`` as a service would, and reads the tables back afterwards.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.database import transaction
from app.domain import ledger as rules
from app.domain.ledger import (
    AVAILABLE,
    COMMISSION_EXPENSE,
    NEVER_NEGATIVE,
    PENDING,
    Entry,
    merchant_account,
    wallet,
)
from app.extensions import db, redis
from app.integrations import redis_keys, wallet_mirror
from app.models import Journal, LedgerAccount, LedgerEntry, WalletOutbox
from app.services import ledger
from tests.factories import make_member, make_merchant

# --- helpers ----------------------------------------------------------------------------------


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def table_counts() -> dict[str, int]:
    return {model.__tablename__: count(model)
            for model in (Journal, LedgerEntry, LedgerAccount, WalletOutbox)}


def post(merchant_id: int, key: str, entries: list[Entry], **options):
    """One posting in its own transaction, as a service function would make it."""
    with transaction(db.session):
        return ledger.post(merchant_id=merchant_id, idempotency_key=key, kind="test",
                           entries=entries, **options)


def accrue(merchant_id: int, member_id: int, amount_fen: int, key: str | None = None):
    return post(merchant_id, key or f"accrual:{member_id}:{amount_fen}:{count(Journal)}",
                rules.accrual(member_id=member_id, amount_fen=amount_fen))


def merchant_balance(merchant_id: int, kind: str) -> int:
    return db.session.scalar(select(LedgerAccount.balance_fen).where(
        LedgerAccount.merchant_id == merchant_id, LedgerAccount.owner_id == rules.MERCHANT_OWNER,
        LedgerAccount.kind == kind))


def assert_sound(report: dict) -> None:
    assert report["balance_drift"] == []
    assert report["unbalanced_journals"] == []
    assert report["merchants_not_zero"] == []


@pytest.fixture
def shop(app_context):
    return make_merchant()


@pytest.fixture
def member(shop):
    return make_member(shop)


# --- posting ----------------------------------------------------------------------------------


def test_an_accrual_moves_money_from_the_merchant_into_pending(shop, member):
    journal = accrue(shop.id, member.id, 1_234, key="accrual:order:1")
    assert journal is not None and journal.idempotency_key == "accrual:order:1"
    assert ledger.wallet_balances(shop.id, member.id) == {
        "pending": 1_234, "available": 0, "withdrawing": 0, "paid_out": 0}
    assert merchant_balance(shop.id, COMMISSION_EXPENSE) == -1_234
    entries = db.session.execute(select(LedgerEntry.journal_id, LedgerEntry.amount_fen)
                                 .order_by(LedgerEntry.amount_fen)).all()
    assert entries == [(journal.id, -1_234), (journal.id, 1_234)]
    # The whole wallet exists from the first posting, and the member is queued for Redis.
    kinds = set(db.session.scalars(select(LedgerAccount.kind).where(
        LedgerAccount.owner_id == member.id)))
    assert kinds == set(rules.WALLET_KINDS)
    assert db.session.scalars(select(WalletOutbox.member_id)).all() == [member.id]
    assert_sound(ledger.verify())


def test_the_entries_of_one_account_in_one_journal_add_up(shop, member):
    post(shop.id, "split", [Entry(merchant_account(COMMISSION_EXPENSE), -300),
                            Entry(wallet(member.id, PENDING), 100),
                            Entry(wallet(member.id, PENDING), 200)])
    assert ledger.wallet_balances(shop.id, member.id)["pending"] == 300
    assert count(LedgerEntry) == 3
    assert_sound(ledger.verify())


@pytest.mark.parametrize("make_entries", [
    pytest.param(lambda m: [Entry(merchant_account(COMMISSION_EXPENSE), -100),
                            Entry(wallet(m, PENDING), 99)], id="unbalanced"),
    pytest.param(lambda m: [Entry(wallet(m, PENDING), 0)], id="single-zero-entry"),
    pytest.param(lambda m: [Entry(wallet(m, PENDING), 100)], id="single-entry"),
    pytest.param(lambda m: [], id="no-entries"),
    pytest.param(lambda m: [Entry(merchant_account(COMMISSION_EXPENSE), -100),
                            Entry(wallet(m, PENDING), 100),
                            Entry(wallet(m, AVAILABLE), 0)], id="a-zero-entry"),
    pytest.param(lambda m: [Entry(merchant_account(PENDING), -100),
                            Entry(wallet(m, PENDING), 100)], id="merchant-has-no-pending"),
    pytest.param(lambda m: [Entry(wallet(m, COMMISSION_EXPENSE), -100),
                            Entry(wallet(m, PENDING), 100)], id="member-has-no-expense"),
])
def test_a_malformed_journal_is_refused_and_writes_nothing(shop, member, make_entries):
    with pytest.raises(ValueError) as caught, transaction(db.session):
        ledger.post(merchant_id=shop.id, idempotency_key="bad", kind="test",
                    entries=make_entries(member.id))
    assert isinstance(caught.value, rules.UnbalancedJournal)
    assert table_counts() == {"journals": 0, "ledger_entries": 0, "ledger_accounts": 0,
                              "wallet_outbox": 0}


def test_a_repeat_of_an_idempotency_key_returns_none_and_changes_nothing(shop, member):
    assert accrue(shop.id, member.id, 500, key="accrual:order:7") is not None
    before = (table_counts(), ledger.wallet_balances(shop.id, member.id))
    assert accrue(shop.id, member.id, 500, key="accrual:order:7") is None
    # Even with other entries: the key, not the content, names the movement.
    assert accrue(shop.id, member.id, 9_999, key="accrual:order:7") is None
    assert (table_counts(), ledger.wallet_balances(shop.id, member.id)) == before
    assert merchant_balance(shop.id, COMMISSION_EXPENSE) == -500


def test_the_same_key_in_another_merchant_is_another_movement(shop, member):
    other_shop = make_merchant()
    other_member = make_member(other_shop)
    assert accrue(shop.id, member.id, 500, key="accrual:order:1") is not None
    assert accrue(other_shop.id, other_member.id, 700, key="accrual:order:1") is not None
    assert ledger.wallet_balances(shop.id, member.id)["pending"] == 500
    assert ledger.wallet_balances(other_shop.id, other_member.id)["pending"] == 700
    assert_sound(ledger.verify())


def test_a_posting_that_fails_for_another_reason_is_not_taken_for_a_repeat(shop, member):
    """Only a repeat of the key may return None; a journal that cannot be stored at all (here:
    a merchant that does not exist) must fail loudly, not look already posted."""
    with pytest.raises(DBAPIError), transaction(db.session):
        ledger.post(merchant_id=shop.id + 1_000, idempotency_key="accrual:order:1",
                    kind="accrual",
                    entries=rules.accrual(member_id=member.id, amount_fen=100))
    assert count(Journal) == 0


# --- balances that may not go negative ---------------------------------------------------------

NEVER_NEGATIVE_MOVES = {
    # kind -> entries taking 1 fen more than the account holds (it holds what ``fill`` put in)
    PENDING: lambda m, n: rules.settlement(member_id=m, amount_fen=n + 1),
    rules.WITHDRAWING: lambda m, n: [Entry(wallet(m, rules.WITHDRAWING), -(n + 1)),
                                     Entry(wallet(m, AVAILABLE), n + 1)],
    rules.PAID_OUT: lambda m, n: [Entry(wallet(m, rules.PAID_OUT), -(n + 1)),
                                  Entry(wallet(m, AVAILABLE), n + 1)],
}


def fill(shop_id: int, member_id: int, kind: str, amount_fen: int) -> None:
    """Put ``amount_fen`` into one wallet account through legal-looking postings."""
    accrue(shop_id, member_id, amount_fen, key=f"fill:accrual:{kind}")
    if kind == PENDING:
        return
    post(shop_id, f"fill:settle:{kind}", rules.settlement(member_id=member_id,
                                                          amount_fen=amount_fen))
    if kind == AVAILABLE:
        return
    post(shop_id, f"fill:move:{kind}", [Entry(wallet(member_id, AVAILABLE), -amount_fen),
                                        Entry(wallet(member_id, kind), amount_fen)])


def test_every_never_negative_kind_is_covered():
    assert set(NEVER_NEGATIVE_MOVES) == set(NEVER_NEGATIVE)


@pytest.mark.parametrize("kind", sorted(NEVER_NEGATIVE_MOVES))
def test_a_never_negative_account_refuses_to_go_below_zero(shop, member, kind):
    fill(shop.id, member.id, kind, 100)
    bystander = make_member(shop)
    before = (table_counts(), ledger.wallet_balances(shop.id, member.id),
              merchant_balance(shop.id, COMMISSION_EXPENSE))
    with pytest.raises(ledger.InsufficientFunds) as caught, transaction(db.session):
        # An earlier posting in the same transaction goes down with it.
        ledger.post(merchant_id=shop.id, idempotency_key="same-transaction", kind="test",
                    entries=rules.accrual(member_id=bystander.id, amount_fen=50))
        ledger.post(merchant_id=shop.id, idempotency_key="too-much", kind="test",
                    entries=NEVER_NEGATIVE_MOVES[kind](member.id, 100))
    assert (caught.value.status, caught.value.code) == (409, "insufficient_balance")
    assert ledger.wallet_balances(shop.id, bystander.id)["pending"] == 0
    assert (table_counts(), ledger.wallet_balances(shop.id, member.id),
            merchant_balance(shop.id, COMMISSION_EXPENSE)) == before
    assert_sound(ledger.verify())


@pytest.mark.parametrize("kind", sorted(NEVER_NEGATIVE_MOVES))
def test_a_never_negative_account_may_be_emptied_exactly(shop, member, kind):
    fill(shop.id, member.id, kind, 100)
    assert post(shop.id, "exactly", NEVER_NEGATIVE_MOVES[kind](member.id, 99)) is not None
    assert ledger.wallet_balances(shop.id, member.id)[kind] == 0


def test_available_may_go_negative_a_debt(shop, member):
    post(shop.id, "reverse-settled", rules.reversal(member_id=member.id, amount_fen=300,
                                                    from_kind=AVAILABLE))
    assert ledger.wallet_balances(shop.id, member.id)["available"] == -300
    assert merchant_balance(shop.id, COMMISSION_EXPENSE) == 300
    assert_sound(ledger.verify())


def test_keep_non_negative_guards_available_when_asked(shop, member):
    fill(shop.id, member.id, AVAILABLE, 100)
    withdraw = [Entry(wallet(member.id, AVAILABLE), -101),
                Entry(wallet(member.id, rules.WITHDRAWING), 101)]
    before = (table_counts(), ledger.wallet_balances(shop.id, member.id))
    with pytest.raises(ledger.InsufficientFunds):
        post(shop.id, "withdraw-101", withdraw,
             keep_non_negative=[wallet(member.id, AVAILABLE)])
    assert (table_counts(), ledger.wallet_balances(shop.id, member.id)) == before
    withdraw_all = [Entry(wallet(member.id, AVAILABLE), -100),
                    Entry(wallet(member.id, rules.WITHDRAWING), 100)]
    assert post(shop.id, "withdraw-100", withdraw_all,
                keep_non_negative=[wallet(member.id, AVAILABLE)]) is not None
    assert ledger.wallet_balances(shop.id, member.id)["available"] == 0
    assert ledger.wallet_balances(shop.id, member.id)["withdrawing"] == 100


def test_an_unguarded_account_is_not_guarded_by_someone_elses_guard(shop, member):
    other = make_member(shop)
    post(shop.id, "debt", rules.reversal(member_id=member.id, amount_fen=10,
                                         from_kind=AVAILABLE),
         keep_non_negative=[wallet(other.id, AVAILABLE)])
    assert ledger.wallet_balances(shop.id, member.id)["available"] == -10


# --- immutability -----------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET amount_fen = amount_fen + 1",
    "DELETE FROM ledger_entries",
    "UPDATE journals SET memo = 'edited'",
    "DELETE FROM journals",
])
def test_entries_and_journals_are_append_only_in_postgresql(shop, member, statement):
    accrue(shop.id, member.id, 400, key="accrual:order:1")
    before = db.session.execute(text(
        "SELECT j.id, j.memo, e.id, e.amount_fen FROM journals j JOIN ledger_entries e "
        "ON e.journal_id = j.id ORDER BY e.id")).all()
    db.session.commit()
    with pytest.raises(DBAPIError) as caught:
        db.session.execute(text(statement))
    assert "append-only" in str(caught.value)
    db.session.rollback()
    after = db.session.execute(text(
        "SELECT j.id, j.memo, e.id, e.amount_fen FROM journals j JOIN ledger_entries e "
        "ON e.journal_id = j.id ORDER BY e.id")).all()
    assert after == before and len(after) == 2


# --- verification -----------------------------------------------------------------------------

def drift_one_account(merchant_id: int, member_id: int) -> int:
    account_id = db.session.scalar(select(LedgerAccount.id).where(
        LedgerAccount.merchant_id == merchant_id, LedgerAccount.owner_id == member_id,
        LedgerAccount.kind == PENDING))
    with transaction(db.session):
        db.session.execute(text("UPDATE ledger_accounts SET balance_fen = balance_fen + 1 "
                                "WHERE id = :id"), {"id": account_id})
    return account_id


def test_verify_finds_a_stored_balance_changed_behind_the_ledgers_back(shop, member):
    accrue(shop.id, member.id, 700)
    assert_sound(ledger.verify())
    account_id = drift_one_account(shop.id, member.id)
    report = ledger.verify()
    assert report["balance_drift"] == [{"merchant_id": shop.id, "account_id": account_id,
                                        "stored": 701, "entries": 700}]
    assert report["merchants_not_zero"] == [{"merchant_id": shop.id, "sum": 1}]
    assert report["unbalanced_journals"] == []
    assert ledger.verify(shop.id)["balance_drift"] == report["balance_drift"]
    # Money is int fen everywhere (ARCHITECTURE.md, convention 1), also in the report.
    assert {type(report["balance_drift"][0][field]) for field in ("stored", "entries")} == {int}
    assert type(report["merchants_not_zero"][0]["sum"]) is int


def test_verify_of_one_merchant_looks_at_that_merchant_only(shop, member):
    other_shop = make_merchant()
    accrue(other_shop.id, make_member(other_shop).id, 100)
    accrue(shop.id, member.id, 700)
    drift_one_account(shop.id, member.id)
    assert_sound(ledger.verify(other_shop.id))
    assert ledger.verify(other_shop.id)["accounts_checked"] == 5
    assert ledger.verify()["accounts_checked"] == 10


def test_verify_finds_a_journal_that_does_not_sum_to_zero(shop, member):
    accrue(shop.id, member.id, 700)
    account_id = db.session.scalar(select(LedgerAccount.id).where(
        LedgerAccount.owner_id == member.id, LedgerAccount.kind == PENDING))
    with transaction(db.session):  # appending is possible in SQL; verify must notice
        journal_id = db.session.execute(text(
            "INSERT INTO journals (merchant_id, idempotency_key, kind, memo, created_at) "
            "VALUES (:m, 'forged', 'forged', '', now()) RETURNING id"), {"m": shop.id}).scalar()
        db.session.execute(text(
            "INSERT INTO ledger_entries (merchant_id, journal_id, account_id, amount_fen, "
            "created_at) VALUES (:m, :j, :a, 5, now())"),
            {"m": shop.id, "j": journal_id, "a": account_id})
    report = ledger.verify(shop.id)
    assert report["unbalanced_journals"] == [{"merchant_id": shop.id, "journal_id": journal_id,
                                              "sum": 5}]
    assert type(report["unbalanced_journals"][0]["sum"]) is int
    assert [d["account_id"] for d in report["balance_drift"]] == [account_id]


def verify_command(app, *args: str):
    result = app.test_cli_runner().invoke(args=["ledger", "verify", *args])
    return result, json.loads(result.output.strip().splitlines()[-1])


def test_flask_ledger_verify_exits_zero_on_a_sound_ledger(app, shop, member):
    accrue(shop.id, member.id, 700)
    result, report = verify_command(app)
    assert result.exit_code == 0, result.output
    assert report["sound"] is True and report["accounts_checked"] == 5
    assert report["balance_drift"] == []


def test_flask_ledger_verify_exits_non_zero_with_the_drift(app, shop, member):
    accrue(shop.id, member.id, 700)
    account_id = drift_one_account(shop.id, member.id)
    result, report = verify_command(app)
    assert result.exit_code == 1
    assert report["sound"] is False
    assert report["balance_drift"] == [{"merchant_id": shop.id, "account_id": account_id,
                                        "stored": 701, "entries": 700}]
    other_shop = make_merchant()
    result, report = verify_command(app, "--merchant", str(other_shop.id))
    assert result.exit_code == 0 and report["sound"] is True


def test_flask_wallets_rebuild_cache_restores_the_mirror(app, shop, member):
    accrue(shop.id, member.id, 700)
    redis.client.flushdb()
    assert wallet_mirror.read_wallet(redis.client, shop.id, member.id) is None
    result = app.test_cli_runner().invoke(args=["wallets", "rebuild-cache"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"deleted_keys": 0,
                                                                  "wallets": 1}
    assert wallet_mirror.read_wallet(redis.client, shop.id, member.id) == \
        ledger.wallet_balances(shop.id, member.id)
    # A second run forgets the mirror it finds first (the wallet and the completeness mark),
    # and writes the same thing again.
    again = app.test_cli_runner().invoke(args=["wallets", "rebuild-cache", "--merchant",
                                               str(shop.id)])
    assert json.loads(again.output.strip().splitlines()[-1]) == {"deleted_keys": 2,
                                                                 "wallets": 1}
    assert redis.client.exists(redis_keys.mirror_complete(shop.id))
    assert wallet_mirror.read_wallet(redis.client, shop.id, member.id)["pending"] == 700
