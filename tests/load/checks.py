"""What must hold after the load, whatever the timings: every order WeChat (the sandbox) paid is
paid in SQL exactly once with WeChat's transaction id, every notification went through gunicorn
and was answered 204, the ledger proves itself, and the Redis wallet mirror equals SQL.

Runs in the runner's app context, on the database and Redis gunicorn served from.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from tests.benchmarks.notify import _percentile
from tests.support.servers import ServiceUnavailableError, wait_until
from tests.support.wechatpay import control

# A buyer stopped mid-payment leaves the sandbox delivering its notification: wait for it.
IN_FLIGHT_SECONDS = 60
RETRIES = 5
# gunicorn writes a request's access line when it is done, which may be after the sandbox gave
# up waiting (5 s): the last ones are waited for.
ACCESS_LINES_SECONDS = 60


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict = field(default_factory=dict)


def run_all(shop: dict, gunicorn_log: Path) -> list[Check]:
    notes = _sandbox_payments(shop)
    under_load = Counter(_outcome(d) for note in notes for d in note["deliveries"])
    retried = _retry_failed(shop, notes)
    notes = _sandbox_payments(shop)
    return [_paid_once(shop, notes),
            _webhook_traffic(shop, notes, under_load, retried, gunicorn_log), _ledger(),
            _mirror()]


def _sandbox_payments(shop: dict) -> list[dict]:
    def notes() -> list[dict]:
        found = control(shop["sandbox_url"], "GET",
                        f"/sandbox/notifications?mch_id={shop['mch_id']}")["notifications"]
        return [note for note in found if note["event_type"] == "TRANSACTION.SUCCESS"]

    wait_until(lambda: all(note["deliveries"] for note in notes()), timeout=IN_FLIGHT_SECONDS,
               what="the sandbox's notifications still in flight")
    return notes()


def _outcome(delivery: dict) -> str:
    return str(delivery["status"]) if delivery["error"] is None else delivery["error"]


def _answered(note: dict) -> bool:
    return any(_outcome(d) == "204" for d in note["deliveries"])


def _retry_failed(shop: dict, notes: list[dict]) -> int:
    """What WeChat does after a failed delivery (an error status, or no reply within 5 s):
    send it again, here at once and one at a time, up to RETRIES times. A delivery that timed
    out may have been committed all the same: its retry must change nothing."""
    failed = [note["id"] for note in notes if not _answered(note)]
    for notification_id in failed:
        for _ in range(RETRIES):
            sent = control(shop["sandbox_url"], "POST",
                           f"/sandbox/notifications/{notification_id}/resend", {})
            if [_outcome(d) for d in sent["deliveries"]] == ["204"]:
                break
    return len(failed)


def _paid_once(shop: dict, notes: list[dict]) -> Check:
    """The sandbox's payments against SQL: same orders, same transaction ids, and one accrual
    journal for each paid order whose snapshot names beneficiaries (none for an order placed
    while the buyer was unbound, which earns nobody: a share visit that failed under the load
    leaves its buyer so)."""
    from app.extensions import db
    from app.models import Journal, Order

    merchant_id = shop["merchant_id"]
    wechat = {n["resource"]["out_trade_no"]: n["resource"]["transaction_id"] for n in notes}
    rows = db.session.execute(select(Order.id, Order.out_trade_no, Order.status,
                                     Order.transaction_id, Order.commission_snapshot)
                              .where(Order.merchant_id == merchant_id)).all()
    journals = dict(db.session.execute(
        select(Journal.order_id, func.count()).where(Journal.merchant_id == merchant_id,
                                                     Journal.kind == "accrual")
        .group_by(Journal.order_id)).all())
    db.session.rollback()
    problems, unearning = [], 0
    for order_id, out_trade_no, status, transaction_id, snapshot in rows:
        expected = wechat.pop(out_trade_no, None)
        accruals = journals.get(order_id, 0)
        earns = bool((snapshot or {}).get("beneficiaries"))
        if expected is None and (transaction_id or accruals):
            problems.append(f"{out_trade_no}: {status} with {accruals} accruals in SQL, "
                            "never paid by WeChat")
        elif expected is not None and (transaction_id != expected or status != "paid"
                                       or accruals != int(earns)):
            problems.append(f"{out_trade_no}: {status}, transaction {transaction_id} "
                            f"(WeChat: {expected}), {accruals} accrual journals for "
                            f"{'an earning' if earns else 'an unbound'} order")
        unearning += expected is not None and not earns
    problems += [f"{no}: paid by WeChat, unknown in SQL" for no in wechat]
    paid = len(notes)
    return Check("every order WeChat paid is paid in SQL exactly once", not problems,
                 f"{paid} paid by the sandbox, {len(rows)} orders created; "
                 + (f"{len(problems)} problems: {problems[:5]}" if problems else
                    "each paid with WeChat's transaction id and one accrual journal "
                    f"({unearning} placed by unbound buyers: no beneficiary, no journal)"),
                 {"paid_by_wechat": paid, "orders_created": len(rows),
                  "paid_unbound": unearning, "problems": problems})


def _webhook_traffic(shop: dict, notes: list[dict], under_load: Counter, retried: int,
                     gunicorn_log: Path) -> Check:
    """Every delivery the sandbox made, seen in the app's access log behind gunicorn (one line
    per request, its status and server-side time), and every notification answered 204 in
    the end. Deliveries that failed under the load are counted by Locust as failures too."""
    path = f"/webhooks/wechatpay/v3/{shop['merchant_id']}"
    sent = sum(len(note["deliveries"]) for note in notes)

    def seen() -> list[dict]:
        return [line for line in _access_lines(gunicorn_log) if line.get("path") == path]

    # A count that never matches is reported below, not raised.
    with contextlib.suppress(ServiceUnavailableError):
        wait_until(lambda: len(seen()) >= sent, timeout=ACCESS_LINES_SECONDS,
                   what="gunicorn's access lines for every delivery")
    lines = seen()
    statuses = Counter(str(line["status"]) for line in lines)
    durations = [float(line["duration_ms"]) for line in lines]
    timing = ({"p50_ms": _percentile(durations, 0.5), "p99_ms": _percentile(durations, 0.99),
               "max_ms": max(durations)} if durations else {})
    unanswered = [note["id"] for note in notes if not _answered(note)]
    ok = bool(notes) and not unanswered and len(lines) == sent
    detail = (f"{len(notes)} notifications; under the load the sandbox's deliveries got "
              f"{dict(under_load)}; {retried} resent afterwards as WeChat would; "
              f"{len(unanswered)} never answered 204; gunicorn logged {len(lines)} of {sent} "
              f"deliveries ({dict(statuses)})")
    if timing:
        detail += (f"; server-side p50 {timing['p50_ms']:.1f} ms, p99 "
                   f"{timing['p99_ms']:.1f} ms, max {timing['max_ms']:.1f} ms")
    return Check("every payment notification went through gunicorn and was answered 204", ok,
                 detail, {"notifications": len(notes), "under_load": dict(under_load),
                          "resent": retried, "unanswered": unanswered,
                          "deliveries": sent, "logged": dict(statuses), **timing})


def _access_lines(log_path: Path) -> list[dict]:
    lines = []
    for raw in log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{") and '"fenxiao.access"' in raw:
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue  # two workers' lines interleaved: the rest still count
    return lines


def _ledger() -> Check:
    from app.extensions import db
    from app.services import ledger

    found = ledger.verify()
    db.session.rollback()
    problems = {key: value for key, value in found.items() if key != "accounts_checked" and value}
    return Check("the ledger is sound (flask ledger verify)",
                 not problems and found["accounts_checked"] > 0,
                 f"{found['accounts_checked']} accounts checked; "
                 + (f"problems: {problems}" if problems else
                    "no balance drift, every journal sums to zero, every merchant sums to zero"),
                 {"accounts_checked": found["accounts_checked"], **problems})


def _mirror() -> Check:
    """After one sweep (the job's work, which no scheduler did during the run), each wallet in
    Redis equals SQL. Rows the fast path left in the outbox are counted first."""
    from app.domain.ledger import WALLET_KINDS
    from app.extensions import db, redis
    from app.integrations import wallet_mirror
    from app.models import LedgerAccount, WalletOutbox
    from app.services import ledger, wallets

    left = db.session.scalar(select(func.count()).select_from(WalletOutbox))
    db.session.rollback()
    swept = wallets.sweep_outbox(redis.client)
    owners = db.session.execute(select(LedgerAccount.merchant_id, LedgerAccount.owner_id)
                                .where(LedgerAccount.kind.in_(WALLET_KINDS)).distinct()).all()
    differ = []
    for merchant_id, member_id in owners:
        mirrored = wallet_mirror.read_wallet(redis.client, merchant_id, member_id)
        truth = ledger.wallet_balances(merchant_id, member_id)
        if mirrored != truth:
            differ.append({"member_id": member_id, "redis": mirrored, "sql": truth})
    db.session.rollback()
    return Check("the Redis wallet mirror equals SQL", bool(owners) and not differ and
                 not swept["failed"],
                 f"{len(owners)} wallets compared; {left} outbox rows left by the fast path "
                 f"(swept: {swept}); " + (f"{len(differ)} differ: {differ[:3]}" if differ
                                          else "all equal"),
                 {"wallets": len(owners), "outbox_left": left, "differ": differ})


def as_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(check) for check in checks]
