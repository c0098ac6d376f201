"""Wallets as members see them, and the Redis mirror kept from SQL.

SQL is the truth; Redis holds a mirror for fast reads and rankings. Every posting queues its
members in ``wallet_outbox`` inside its own transaction; after the commit the poster calls
``mirror_members`` (fast path) and the sweeper job replays whatever is left — after a crash
between commit and mirror, or while Redis was down. Reads use Redis and fall back to SQL.
Redis never decides whether money may move: withdrawals read SQL under row locks.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import redis as redis_lib
from sqlalchemy import delete, select

from app.database import transaction
from app.domain.ledger import WALLET_KINDS
from app.extensions import db
from app.integrations import wallet_mirror
from app.models import LedgerAccount, Merchant, PeriodTotal, WalletOutbox
from app.services.ledger import wallet_balances, wallet_revision

log = logging.getLogger("fenxiao.wallets")
SWEEP_BATCH = 500


def read_wallet(redis_client: redis_lib.Redis, *, merchant_id: int, member_id: int) -> dict:
    """``{kind: fen}`` from Redis, or from SQL when Redis is down or has not got it yet."""
    mirrored = wallet_mirror.read_wallet(redis_client, merchant_id, member_id)
    if mirrored is not None:
        return mirrored
    return wallet_balances(merchant_id, member_id)


def mirror_members(redis_client: redis_lib.Redis, *, merchant_id: int,
                   member_ids: set[int]) -> bool:
    """After a commit: mirror these members now and clear their outbox rows. False (rows kept
    for the sweeper) when Redis is unavailable."""
    if not member_ids:
        return True
    rows = db.session.execute(select(WalletOutbox.id, WalletOutbox.member_id,
                                     WalletOutbox.period).where(
        WalletOutbox.merchant_id == merchant_id,
        WalletOutbox.member_id.in_(member_ids))).all()
    return _mirror_rows(redis_client, merchant_id, rows)


def sweep_outbox(redis_client: redis_lib.Redis, *, batch: int = SWEEP_BATCH) -> dict:
    """The job: mirror every member still in the outbox, oldest first, merchant by merchant."""
    mirrored = failed = 0
    merchant_ids = db.session.scalars(select(WalletOutbox.merchant_id).distinct()).all()
    for merchant_id in merchant_ids:
        last_id = 0
        while True:  # batch after batch, so one sweep leaves nothing behind
            rows = db.session.execute(
                select(WalletOutbox.id, WalletOutbox.member_id, WalletOutbox.period)
                .where(WalletOutbox.merchant_id == merchant_id, WalletOutbox.id > last_id)
                .order_by(WalletOutbox.id).limit(batch)).all()
            if not rows:
                break
            last_id = rows[-1][0]
            if _mirror_rows(redis_client, merchant_id, rows):
                mirrored += len(rows)
            else:
                failed += len(rows)
                break  # Redis is down: the rest waits for the next sweep
    db.session.rollback()
    return {"mirrored": mirrored, "failed": failed}


def _mirror_rows(redis_client: redis_lib.Redis, merchant_id: int, rows) -> bool:
    periods: dict[int, set[str]] = defaultdict(set)
    for _, member_id, period in rows:
        periods[member_id].update([period] if period else [])
    try:
        for member_id, member_periods in periods.items():
            wallet_mirror.write(redis_client, _state(merchant_id, member_id, member_periods))
    except redis_lib.RedisError:
        db.session.rollback()
        log.warning("Redis mirror unavailable; the outbox keeps the rows",
                    extra={"merchant_id": merchant_id})
        return False
    with transaction(db.session):
        db.session.execute(delete(WalletOutbox).where(
            WalletOutbox.merchant_id == merchant_id,
            WalletOutbox.id.in_([row[0] for row in rows])))
    return True


def _state(merchant_id: int, member_id: int, periods: set[str]) -> wallet_mirror.WalletState:
    # The revision is read before the balances, so the balances are at least that new.
    version = wallet_revision(merchant_id, member_id)
    balances = wallet_balances(merchant_id, member_id)
    rows = db.session.execute(
        select(PeriodTotal.period, PeriodTotal.commission_fen, PeriodTotal.sales_fen,
               PeriodTotal.revision).where(
            PeriodTotal.merchant_id == merchant_id, PeriodTotal.member_id == member_id,
            PeriodTotal.period.in_(periods))).all() if periods else []
    return wallet_mirror.WalletState(
        merchant_id=merchant_id, member_id=member_id, version=version, balances=balances,
        period_totals={p: (c, s) for p, c, s, _ in rows},
        period_revisions={p: r for p, _, _, r in rows})


def rebuild_cache(redis_client: redis_lib.Redis, *, merchant_id: int | None = None) -> dict:
    """Forget the mirror and write it again from SQL: every wallet and every period's
    rankings (``flask wallets rebuild-cache``)."""
    deleted = wallet_mirror.forget_merchant(redis_client, merchant_id)
    owners = select(LedgerAccount.merchant_id, LedgerAccount.owner_id).where(
        LedgerAccount.kind.in_(WALLET_KINDS)).distinct()
    rankers = select(PeriodTotal.merchant_id, PeriodTotal.member_id, PeriodTotal.period)
    if merchant_id is not None:
        owners = owners.where(LedgerAccount.merchant_id == merchant_id)
        rankers = rankers.where(PeriodTotal.merchant_id == merchant_id)
    periods: dict[tuple[int, int], set[str]] = defaultdict(set)
    for merchant, member in db.session.execute(owners):
        periods[(merchant, member)]
    for merchant, member, period in db.session.execute(rankers):
        periods[(merchant, member)].add(period)
    for (merchant, member), member_periods in periods.items():
        # A posting racing the rebuild mirrors a newer version, which wins either way.
        wallet_mirror.write(redis_client, _state(merchant, member, member_periods))
    merchants = [merchant_id] if merchant_id is not None else list(
        db.session.scalars(select(Merchant.id)))
    db.session.rollback()
    wallet_mirror.mark_complete(redis_client, merchants)
    return {"deleted_keys": deleted, "wallets": len(periods)}


def restore_lost_mirrors(redis_client: redis_lib.Redis, *, batch: int = 1000) -> dict:
    """The job: rebuild every merchant whose mirror Redis no longer holds whole (after a
    restart that lost its data, a flush, or a deployment older than the mark). Until then its
    wallets read from SQL (missing hashes) and its rankings too (``wallet_mirror.top``)."""
    rebuilt: list[int] = []
    last_id = 0
    while True:
        merchant_ids = list(db.session.scalars(select(Merchant.id).where(Merchant.id > last_id)
                                               .order_by(Merchant.id).limit(batch)))
        db.session.rollback()
        if not merchant_ids:
            break
        last_id = merchant_ids[-1]
        for merchant_id in wallet_mirror.incomplete(redis_client, merchant_ids):
            rebuild_cache(redis_client, merchant_id=merchant_id)
            rebuilt.append(merchant_id)
    if rebuilt:
        log.warning("wallet mirror rebuilt after Redis lost it",
                    extra={"merchants": len(rebuilt)})
    return {"rebuilt_merchants": len(rebuilt)}


def mark_new_merchant(redis_client: redis_lib.Redis, merchant_id: int) -> None:
    """A new merchant has nothing to mirror: its (empty) mirror is whole. If Redis cannot be
    told, ``restore_lost_mirrors`` rebuilds it later."""
    try:
        wallet_mirror.mark_complete(redis_client, [merchant_id])
    except redis_lib.RedisError:
        log.warning("could not mark a new merchant's mirror", extra={"merchant_id": merchant_id})
