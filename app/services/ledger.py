"""The one way money moves: ``post`` a journal (ARCHITECTURE.md, convention 4).

``post`` runs in the caller's transaction and only flushes. It inserts the journal under its
unique idempotency key (a repeat — even a concurrent one, which waits for the first to commit —
changes nothing and returns None), updates each account's stored balance with a conditional
UPDATE (in account-id order, so two postings never deadlock), inserts the immutable entries,
and queues the members whose wallets changed in the Redis outbox. Nothing else writes balances.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from app.domain.ledger import (
    MERCHANT_OWNER,
    NEVER_NEGATIVE,
    WALLET_KINDS,
    AccountRef,
    Entry,
    check_entries,
)
from app.errors import Conflict
from app.extensions import db
from app.models import Journal, LedgerAccount, LedgerEntry, WalletHead, WalletOutbox


class InsufficientFunds(Conflict):
    code = "insufficient_balance"
    message = "The balance is too low for this."


def post(*, merchant_id: int, idempotency_key: str, kind: str, entries: Sequence[Entry],
         order_id: int | None = None, memo: str = "",
         keep_non_negative: Iterable[AccountRef] = ()) -> Journal | None:
    """Post a balanced journal once per ``idempotency_key``; None if it was posted before.

    Accounts of the kinds in NEVER_NEGATIVE, and those in ``keep_non_negative``, refuse to go
    below zero: the whole transaction then fails with ``InsufficientFunds``.
    """
    check_entries(entries)
    journal = Journal(merchant_id=merchant_id, idempotency_key=idempotency_key, kind=kind,
                      order_id=order_id, memo=memo)
    try:
        with db.session.begin_nested():
            db.session.add(journal)
    except IntegrityError:
        if _posted(merchant_id, idempotency_key):
            return None  # a repeat: the first posting stands
        raise  # another constraint failed (an unknown merchant): never mistaken for a repeat
    accounts = accounts_for(merchant_id, [entry.account for entry in entries])
    guarded = set(keep_non_negative)
    totals: dict[AccountRef, int] = {}
    for entry in entries:
        totals[entry.account] = totals.get(entry.account, 0) + entry.amount_fen
    for ref in sorted(totals, key=lambda r: accounts[r].id):
        _move(accounts[ref], totals[ref],
              non_negative=ref.kind in NEVER_NEGATIVE or ref in guarded)
    db.session.add_all(LedgerEntry(merchant_id=merchant_id, journal_id=journal.id,
                                   account_id=accounts[entry.account].id,
                                   amount_fen=entry.amount_fen) for entry in entries)
    for member_id in sorted({ref.owner_id for ref in totals if ref.owner_id != MERCHANT_OWNER}):
        _raise_revision(merchant_id, member_id)
        db.session.add(WalletOutbox(merchant_id=merchant_id, member_id=member_id))
    db.session.flush()
    return journal


def _raise_revision(merchant_id: int, member_id: int) -> None:
    """The wallet's revision grows under its row lock, in commit order (see WalletHead)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(WalletHead).values(merchant_id=merchant_id, member_id=member_id,
                                          revision=1)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["merchant_id", "member_id"],
        set_={"revision": WalletHead.revision + 1}))


def wallet_revision(merchant_id: int, member_id: int) -> int:
    return db.session.scalar(select(WalletHead.revision).where(
        WalletHead.merchant_id == merchant_id, WalletHead.member_id == member_id)) or 0


def _move(account: LedgerAccount, amount_fen: int, *, non_negative: bool) -> None:
    statement = (update(LedgerAccount)
                 .where(LedgerAccount.merchant_id == account.merchant_id,
                        LedgerAccount.id == account.id)
                 .values(balance_fen=LedgerAccount.balance_fen + amount_fen))
    if non_negative and amount_fen < 0:
        statement = statement.where(LedgerAccount.balance_fen + amount_fen >= 0)
    if db.session.execute(statement.execution_options(synchronize_session=False)).rowcount != 1:
        raise InsufficientFunds(f"The {account.kind} balance is too low for this.")


def accounts_for(merchant_id: int, refs: Iterable[AccountRef]) -> dict[AccountRef, LedgerAccount]:
    """The accounts behind ``refs``, created on first use (a member's whole wallet at once);
    two concurrent first uses end with one set of accounts."""
    wanted = set(refs)
    for ref in list(wanted):
        if ref.owner_id != MERCHANT_OWNER:
            wanted.update(AccountRef(ref.owner_id, kind) for kind in WALLET_KINDS)
    found = _load(merchant_id, wanted)
    missing = wanted - set(found)
    # One savepoint per account: losing the race for a shared account (the merchant's) must not
    # undo the creation of this member's own.
    for ref in sorted(missing, key=lambda r: (r.owner_id, r.kind)):
        try:
            with db.session.begin_nested():
                db.session.add(LedgerAccount(merchant_id=merchant_id, owner_id=ref.owner_id,
                                             kind=ref.kind, balance_fen=0))
        except IntegrityError:
            pass  # another transaction created it first; read theirs
    return _load(merchant_id, wanted) if missing else found


def _posted(merchant_id: int, idempotency_key: str) -> bool:
    return db.session.scalar(select(Journal.id).where(
        Journal.merchant_id == merchant_id, Journal.idempotency_key == idempotency_key)
        .limit(1)) is not None


def _load(merchant_id: int, refs: set[AccountRef]) -> dict[AccountRef, LedgerAccount]:
    owners = {ref.owner_id for ref in refs}
    rows = db.session.scalars(select(LedgerAccount).where(
        LedgerAccount.merchant_id == merchant_id, LedgerAccount.owner_id.in_(owners)))
    return {AccountRef(a.owner_id, a.kind): a for a in rows
            if AccountRef(a.owner_id, a.kind) in refs}


def wallet_balances(merchant_id: int, member_id: int) -> dict[str, int]:
    """A member's four balances from SQL (the truth), zero where no account exists yet."""
    rows = db.session.execute(select(LedgerAccount.kind, LedgerAccount.balance_fen).where(
        LedgerAccount.merchant_id == merchant_id, LedgerAccount.owner_id == member_id)).all()
    balances = dict.fromkeys(WALLET_KINDS, 0)
    balances.update({kind: balance for kind, balance in rows})
    return balances


def verify(merchant_id: int | None = None) -> dict:
    """Prove every stored balance equals the sum of its entries, every journal sums to zero, and
    each merchant's balances sum to zero. Returns the problems found (empty lists: sound)."""
    scope = "WHERE a.merchant_id = :m" if merchant_id is not None else ""
    params = {"m": merchant_id}
    drifted = db.session.execute(text(f"""
        SELECT a.merchant_id, a.id, a.balance_fen, COALESCE(SUM(e.amount_fen), 0) AS entries
        FROM ledger_accounts a LEFT JOIN ledger_entries e
          ON e.merchant_id = a.merchant_id AND e.account_id = a.id
        {scope} GROUP BY a.merchant_id, a.id, a.balance_fen
        HAVING a.balance_fen <> COALESCE(SUM(e.amount_fen), 0)"""), params).all()
    unbalanced = db.session.execute(text(f"""
        SELECT j.merchant_id, j.id, COALESCE(SUM(e.amount_fen), 0)
        FROM journals j LEFT JOIN ledger_entries e
          ON e.merchant_id = j.merchant_id AND e.journal_id = j.id
        {scope.replace("a.", "j.")} GROUP BY j.merchant_id, j.id
        HAVING COALESCE(SUM(e.amount_fen), 0) <> 0 OR COUNT(e.id) < 2"""), params).all()
    nonzero = db.session.execute(text(f"""
        SELECT a.merchant_id, SUM(a.balance_fen) FROM ledger_accounts a {scope}
        GROUP BY a.merchant_id HAVING SUM(a.balance_fen) <> 0"""), params).all()
    counts = db.session.execute(text(f"""
        SELECT COUNT(*) FROM ledger_accounts a {scope}"""), params).scalar()
    return {
        "accounts_checked": counts,
        # PostgreSQL sums bigints as numeric (Decimal): report whole fen as int, JSON-ready.
        "balance_drift": [{"merchant_id": m, "account_id": a, "stored": s, "entries": int(e)}
                          for m, a, s, e in drifted],
        "unbalanced_journals": [{"merchant_id": m, "journal_id": j, "sum": int(s)}
                                for m, j, s in unbalanced],
        "merchants_not_zero": [{"merchant_id": m, "sum": int(s)} for m, s in nonzero],
    }
