"""Scheduled jobs, and the loop that runs them (`flask jobs run-scheduler`).

Each job is safe to run twice and on several hosts at once: work is claimed under database
locks, so a second runner waits or finds nothing left to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from app.database import transaction, utcnow
from app.extensions import db, redis
from app.models import TeamDeltaRow
from app.services import (
    commissions,
    exports,
    levels,
    orders,
    payments,
    refunds,
    risk,
    tree,
    wallets,
    withdrawals,
)

log = logging.getLogger("fenxiao.jobs")


def apply_team_deltas() -> dict:
    """Apply the queued team-counter deltas of every merchant that has some."""
    merchant_ids = db.session.scalars(select(TeamDeltaRow.merchant_id).distinct()).all()
    db.session.rollback()
    applied = {}
    for merchant_id in merchant_ids:
        with transaction(db.session):
            tree.lock_tree(merchant_id)
            applied[merchant_id] = tree.apply_team_deltas(merchant_id)
    return {"applied": sum(applied.values()), "merchants": len(applied)}


def settle_commissions() -> dict:
    """Pending commission past its settle date becomes available (frozen members wait), in
    batches; then the changed wallets are mirrored."""
    settled = 0
    while True:
        with transaction(db.session):
            batch = commissions.settle_due(now=utcnow())
        settled += batch
        if batch == 0:
            break
    if settled:
        wallets.sweep_outbox(redis.client)
    return {"settled": settled}


def _pay_config():
    from app.clients import pay_config

    return pay_config()


def cancel_unpaid_orders() -> dict:
    """Orders unpaid after 30 minutes: asked about, closed at WeChat, cancelled, stock back."""
    return payments.cancel_unpaid(_pay_config(), now=utcnow())


def recover_payments() -> dict:
    """Orders whose payment notification has not come: WeChat is asked, payments applied."""
    return payments.recover_payments(_pay_config(), now=utcnow())


def sync_refunds() -> dict:
    """Refunds still open: WeChat is asked, results applied (or lost requests resent)."""
    return refunds.sync_open_refunds(_pay_config(), now=utcnow())


def sync_transfers() -> dict:
    """Withdrawals: create bills a failed call left out, ask about open bills, cancel bills
    unconfirmed past 24 hours."""
    return withdrawals.sync_transfers(_pay_config(), now=utcnow())


def advance_orders() -> dict:
    """Automatic receipt after ``auto_receive_days``; completion after the after-sale window."""
    with transaction(db.session):
        received = orders.auto_receive_due(now=utcnow())
    with transaction(db.session):
        completed = orders.complete_due(now=utcnow())
    return {"received": received, "completed": completed}


def assess_levels() -> dict:
    """The periodic level assessment: members whose keep conditions fail move down."""
    with transaction(db.session):
        return levels.assess_due(now=utcnow())


def scan_risk() -> dict:
    """Risk checks that look back over time (refund rates)."""
    with transaction(db.session):
        return risk.scan(now=utcnow())


def run_exports() -> dict:
    """Queued exports, written to files with their progress recorded as they go."""
    return exports.run_queued()


def sweep_wallet_outbox() -> dict:
    """Mirror to Redis whatever the fast path after a commit could not."""
    return wallets.sweep_outbox(redis.client)


def restore_mirrors() -> dict:
    """Rebuild the mirror of merchants whose Redis data was lost."""
    return wallets.restore_lost_mirrors(redis.client)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], dict]
    every_seconds: float


# Team counters lag bindings and payments by at most about this interval (README glossary).
SCHEDULE = (
    Job("apply-team-deltas", apply_team_deltas, every_seconds=2),
    Job("sweep-wallet-outbox", sweep_wallet_outbox, every_seconds=5),
    Job("restore-mirrors", restore_mirrors, every_seconds=30),
    Job("settle-commissions", settle_commissions, every_seconds=60),
    Job("recover-payments", recover_payments, every_seconds=60),
    Job("cancel-unpaid-orders", cancel_unpaid_orders, every_seconds=60),
    Job("sync-refunds", sync_refunds, every_seconds=120),
    Job("sync-transfers", sync_transfers, every_seconds=120),
    Job("advance-orders", advance_orders, every_seconds=300),
    Job("assess-levels", assess_levels, every_seconds=3600),
    Job("scan-risk", scan_risk, every_seconds=600),
    Job("run-exports", run_exports, every_seconds=2),
)
JOBS = {job.name: job for job in SCHEDULE}


# Jobs that may run for minutes (a million-row export) get a scheduler of their own, so the
# quick ones (payments, settlement, the mirror) never wait behind them.
LONG_JOBS = frozenset({"run-exports"})


def run_scheduler(*, iterations: int | None = None, tick_seconds: float = 0.5,
                  only: frozenset[str] | None = None,
                  skip: frozenset[str] = frozenset()) -> None:
    """Run every job (or those ``only`` names, less those in ``skip``) when it is due, forever
    (or ``iterations`` ticks, for tests). A failing job is logged and retried at its next
    turn; it never stops the others."""
    chosen = [job for job in SCHEDULE
              if (only is None or job.name in only) and job.name not in skip]
    due = {job.name: 0.0 for job in chosen}
    tick = 0
    while iterations is None or tick < iterations:
        tick += 1
        for job in chosen:
            if time.monotonic() < due[job.name]:
                continue
            due[job.name] = time.monotonic() + job.every_seconds
            try:
                result = job.run()
                if any(result.values()):
                    log.info("job ran", extra={"job": job.name, **result})
            except Exception:
                db.session.rollback()
                log.exception("job failed", extra={"job": job.name})
        time.sleep(tick_seconds)
