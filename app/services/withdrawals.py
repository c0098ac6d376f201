"""Withdrawals and payouts (DOMAIN.md, Withdrawals and payouts; WECHAT.md, Paying
distributors).

A request moves the amount and the fee ``available → withdrawing`` in one transaction under the
member's row lock, so concurrent requests can never overdraw (and the ledger refuses a negative
``available`` besides). Review approves (a WeChat merchant transfer follows) or rejects (the
money returns); finance may instead mark it paid offline. The transfer's ``out_bill_no`` is
derived from the withdrawal, so a retry can never pay twice; after a failed call the bill is
queried before anything is sent again. ``MCHTRANSFER.BILL.FINISHED`` notifications and the
sync job's queries reach one function, ``apply_transfer_result``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from app.database import allocate_ids, transaction
from app.domain import withdrawal as rules_of
from app.domain.business_time import business_date
from app.domain.ledger import AVAILABLE, wallet
from app.encryption import SecretBox
from app.errors import Conflict, Forbidden, InvalidInput
from app.extensions import db
from app.integrations.wechatpay import PayRejected, PayUnavailable, TransferResult
from app.models import Member, Merchant, User, Withdrawal
from app.services import events, idempotency, ledger, members, merchants
from app.services.payments import PayConfig
from app.services.scoping import get_scoped

log = logging.getLogger("fenxiao.withdrawals")
# WeChat closes a bill the distributor has not confirmed in 24 hours; the sync job makes sure.
CONFIRM_WINDOW = timedelta(hours=24)
SYNC_AFTER = timedelta(minutes=1)
REMARK = "推广佣金提现"


@dataclass
class WithdrawalOutcome:
    result: str
    withdrawal: Withdrawal
    member_ids: set[int] = field(default_factory=set)


def out_bill_no_for(merchant_id: int, withdrawal_id: int) -> str:
    """[0-9A-Za-z], 5 to 32 characters, as WeChat requires; fixed for the withdrawal's life."""
    return f"W{merchant_id}N{withdrawal_id:08d}"


def request_withdrawal(*, merchant_id: int, user_id: int, amount_fen: int,
                       real_name: str | None, idempotency_key: str | None, box: SecretBox,
                       now: datetime) -> Withdrawal:
    """Check the rules and move the money to ``withdrawing``; with an ``Idempotency-Key`` a
    repeat returns the first withdrawal (another body: 409)."""
    body = {"amount_fen": amount_fen, "real_name": real_name}
    with transaction(db.session):
        merchant = merchants.get_approved_merchant(merchant_id)
        member = members.my_membership(merchant_id=merchant_id, user_id=user_id)
        scope = f"withdrawals:member:{member.id}"
        if idempotency_key:
            earlier = idempotency.claim(merchant_id=merchant_id, scope=scope,
                                        key=idempotency_key, body=body)
            if earlier is not None:
                return get_scoped(Withdrawal, merchant_id=merchant_id,
                                  id=earlier.result["withdrawal_id"], what="withdrawal")
        member = db.session.get(Member, (merchant_id, member.id), with_for_update=True,
                                populate_existing=True)
        withdrawal = _open(merchant, member, amount_fen, real_name, box, now)
        if idempotency_key:
            idempotency.record(merchant_id=merchant_id, scope=scope, key=idempotency_key,
                               result={"withdrawal_id": withdrawal.id})
    return withdrawal


def _open(merchant: Merchant, member: Member, amount_fen: int, real_name: str | None,
          box: SecretBox, now: datetime) -> Withdrawal:
    if member.distributor_status == "frozen":
        raise Forbidden("A frozen distributor cannot withdraw.", code="distributor_frozen")
    if real_name:
        member.real_name_encrypted = box.encrypt(real_name)
        member.real_name_masked = real_name[0] + "*" * (len(real_name) - 1)
    program = merchants.program_rules(merchant)
    today = business_date(now, timezone=merchant.timezone)
    fee = rules_of.fee_for(amount_fen=amount_fen, fee_bps=program.withdraw_fee_bps)
    refused = rules_of.refusal(
        amount_fen=amount_fen, fee_fen=fee,
        available_fen=ledger.wallet_balances(merchant.id, member.id)[AVAILABLE],
        min_fen=program.withdraw_min_fen, max_fen=program.withdraw_max_fen,
        daily_count=program.withdraw_daily_count,
        requests_today=_requests_on(merchant.id, member.id, today),
        withdrawn_today_fen=_withdrawn_on(merchant.id, member.id, today),
        has_real_name=member.real_name_encrypted is not None)
    if refused:
        raise InvalidInput(refused.message, code=refused.code,
                           errors={refused.field: [refused.message]})
    withdrawal_id = allocate_ids(db.session, "withdrawals", 1)[0]
    auto = amount_fen < program.withdraw_auto_approve_below_fen
    withdrawal = Withdrawal(
        merchant_id=merchant.id, id=withdrawal_id, member_id=member.id, amount_fen=amount_fen,
        fee_fen=fee, requested_on=today, requested_at=now,
        out_bill_no=out_bill_no_for(merchant.id, withdrawal_id),
        status="approved" if auto else "requested", auto_approved=auto,
        reviewed_at=now if auto else None)
    db.session.add(withdrawal)
    ledger.post(merchant_id=merchant.id, kind="withdrawal",
                idempotency_key=f"withdrawal:{withdrawal_id}",
                entries=rules_of.request_entries(member_id=member.id, amount_fen=amount_fen,
                                                 fee_fen=fee),
                keep_non_negative=[wallet(member.id, AVAILABLE)])
    db.session.flush()
    return withdrawal


def _counted_on(merchant_id: int, member_id: int, day):
    """Requests that count against the daily limits: a rejected or failed one gives its turn
    (and its amount) back."""
    return (Withdrawal.merchant_id == merchant_id, Withdrawal.member_id == member_id,
            Withdrawal.requested_on == day, Withdrawal.status.not_in(("rejected", "failed")))


def _requests_on(merchant_id: int, member_id: int, day) -> int:
    return db.session.scalar(select(func.count()).select_from(Withdrawal).where(
        *_counted_on(merchant_id, member_id, day))) or 0


def _withdrawn_on(merchant_id: int, member_id: int, day) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(Withdrawal.amount_fen), 0))
                                 .where(*_counted_on(merchant_id, member_id, day))))


# -- review ------------------------------------------------------------------------------------

def approve(*, merchant_id: int, withdrawal_id: int, staff_id: int, now: datetime
            ) -> Withdrawal:
    with transaction(db.session):
        withdrawal = _locked(merchant_id, withdrawal_id, "requested")
        withdrawal.status, withdrawal.staff_id, withdrawal.reviewed_at = "approved", staff_id, now
    return withdrawal


def reject(*, merchant_id: int, withdrawal_id: int, staff_id: int, reason: str,
           now: datetime) -> WithdrawalOutcome:
    """The money goes back to ``available``; the reason is shown to the distributor."""
    if not reason.strip():
        raise InvalidInput(errors={"reason": ["Say why the withdrawal is rejected."]})
    with transaction(db.session):
        withdrawal = _locked(merchant_id, withdrawal_id, "requested")
        withdrawal.staff_id, withdrawal.reviewed_at = staff_id, now
        withdrawal.review_reason = reason
        _give_back(withdrawal, "rejected", now)
    return WithdrawalOutcome("rejected", withdrawal, {withdrawal.member_id})


def mark_paid_offline(*, merchant_id: int, withdrawal_id: int, staff_id: int, reference: str,
                      now: datetime) -> WithdrawalOutcome:
    """Finance paid by other means (a bank transfer): recorded with its reference. Not while a
    WeChat transfer was ever started — that could pay twice (``start_transfer`` claims the
    withdrawal before it calls WeChat)."""
    if not reference.strip():
        raise InvalidInput(errors={"reference": ["Give the payment's reference."]})
    with transaction(db.session):
        withdrawal = _locked(merchant_id, withdrawal_id, "requested", "approved")
        withdrawal.staff_id, withdrawal.offline_reference = staff_id, reference
        withdrawal.reviewed_at = withdrawal.reviewed_at or now
        _pay_out(withdrawal, now)
    return WithdrawalOutcome("paid_out", withdrawal, {withdrawal.member_id})


def _locked(merchant_id: int, withdrawal_id: int, *allowed: str) -> Withdrawal:
    withdrawal = get_scoped(Withdrawal, merchant_id=merchant_id, id=withdrawal_id,
                            what="withdrawal", for_update=True)
    if withdrawal.status not in allowed:
        raise Conflict(f"This withdrawal is {withdrawal.status}.",
                       code="illegal_withdrawal_transition")
    return withdrawal


def _give_back(withdrawal: Withdrawal, status: str, now: datetime) -> None:
    ledger.post(merchant_id=withdrawal.merchant_id, kind="withdrawal_return",
                idempotency_key=f"withdrawal-return:{withdrawal.id}",
                entries=rules_of.return_entries(member_id=withdrawal.member_id,
                                                amount_fen=withdrawal.amount_fen,
                                                fee_fen=withdrawal.fee_fen))
    withdrawal.status, withdrawal.finished_at = status, now


def _pay_out(withdrawal: Withdrawal, now: datetime) -> None:
    ledger.post(merchant_id=withdrawal.merchant_id, kind="payout",
                idempotency_key=f"payout:{withdrawal.id}",
                entries=rules_of.payout_entries(member_id=withdrawal.member_id,
                                                amount_fen=withdrawal.amount_fen,
                                                fee_fen=withdrawal.fee_fen))
    withdrawal.status, withdrawal.finished_at = "paid_out", now
    events.payout_done(withdrawal, now)


# -- the WeChat transfer -----------------------------------------------------------------------

def start_transfer(*, merchant_id: int, withdrawal_id: int, config: PayConfig,
                   now: datetime) -> Withdrawal:
    """Create (or find) the transfer bill of an approved withdrawal. The withdrawal is claimed
    (``transferring``) in its own transaction before WeChat is called, so finance can no longer
    mark it paid offline and no other runner starts it again. A merchant without APIv3 has no
    transfers: the withdrawal stays approved for finance to pay offline."""
    try:
        gateway = config.gateway(merchant_id)
    except Conflict:  # no payment settings: nothing to transfer with
        return db.session.get(Withdrawal, (merchant_id, withdrawal_id))
    if gateway.api != "v3" or not _claim(merchant_id, withdrawal_id, gateway, now):
        return db.session.get(Withdrawal, (merchant_id, withdrawal_id))
    return _create_bill(merchant_id, withdrawal_id, gateway, config, now)


def _claim(merchant_id: int, withdrawal_id: int, gateway, now: datetime) -> bool:
    with transaction(db.session):
        withdrawal = db.session.get(Withdrawal, (merchant_id, withdrawal_id),
                                    with_for_update=True)
        if withdrawal is None or withdrawal.status != "approved":
            return False
        withdrawal.status, withdrawal.transfer_started_at = "transferring", now
        withdrawal.transfer_mch_id = gateway.account.mch_id
        withdrawal.transfer_app_id = gateway.account.appid
    return True


def _create_bill(merchant_id: int, withdrawal_id: int, gateway, config: PayConfig,
                 now: datetime) -> Withdrawal:
    """Send the bill (same ``out_bill_no`` every time). After a failed call the bill is
    queried first: found → its state is applied; absent and refused for good → the money
    returns; otherwise the sync job asks again later."""
    withdrawal = db.session.get(Withdrawal, (merchant_id, withdrawal_id))
    member = db.session.get(Member, (merchant_id, withdrawal.member_id))
    request = dict(out_bill_no=withdrawal.out_bill_no, amount_fen=withdrawal.amount_fen,
                   openid=db.session.get(User, member.user_id).openid, remark=REMARK,
                   user_name=_real_name(member, withdrawal, config.box),
                   notify_url=config.notify_url(merchant_id, "v3"))
    db.session.rollback()  # no transaction stays open across the call to WeChat
    try:
        result = gateway.transfer(**request)
    except PayUnavailable as exc:
        log.warning("transfer call failed", extra={"merchant_id": merchant_id,
                                                   "withdrawal_id": withdrawal_id,
                                                   "code": exc.code, "status": exc.status})
        result = _bill_after_failed_call(gateway, request, exc)
        if result is None:
            return db.session.get(Withdrawal, (merchant_id, withdrawal_id))
    apply_transfer_result(merchant_id=merchant_id, result=result, now=now)
    return db.session.get(Withdrawal, (merchant_id, withdrawal_id))


def _bill_after_failed_call(gateway, request: dict, exc: PayUnavailable
                            ) -> TransferResult | None:
    try:
        found = gateway.query_transfer(request["out_bill_no"])
    except PayUnavailable:
        return None
    if found is not None or not _refused_outright(exc):
        return found
    # WeChat never created the bill and never will: the money goes back.
    return TransferResult(mch_id=gateway.account.mch_id, out_bill_no=request["out_bill_no"],
                          state="FAIL", transfer_amount_fen=request["amount_fen"],
                          fail_reason=(exc.code or "REFUSED")[:64])


def _refused_outright(exc: PayUnavailable) -> bool:
    retryable = {"SYSTEM_ERROR", "FREQUENCY_LIMITED", "NOT_ENOUGH"}
    return (exc.status is not None and 400 <= exc.status < 500
            and exc.code not in retryable)


def _real_name(member: Member, withdrawal: Withdrawal, box: SecretBox) -> str | None:
    if withdrawal.amount_fen < rules_of.REAL_NAME_REQUIRED_FROM_FEN:
        return None
    return box.decrypt(member.real_name_encrypted) if member.real_name_encrypted else None


def apply_transfer_result(*, merchant_id: int, result: TransferResult,
                          now: datetime) -> WithdrawalOutcome:
    """WeChat's word on a bill (creation answer, notification or query), applied once:
    SUCCESS pays out; FAIL and CANCELLED (including expiry) return the money; anything else
    is recorded as the bill's state."""
    with transaction(db.session):
        withdrawal = db.session.scalars(select(Withdrawal).where(
            Withdrawal.merchant_id == merchant_id,
            Withdrawal.out_bill_no == result.out_bill_no).with_for_update()).one_or_none()
        if withdrawal is None:
            raise PayRejected("unknown_transfer")
        if result.transfer_amount_fen != withdrawal.amount_fen:
            raise PayRejected("amount_mismatch")
        if withdrawal.status in ("paid_out", "failed", "rejected"):
            return WithdrawalOutcome("duplicate", withdrawal)
        withdrawal.transfer_state = result.state
        withdrawal.transfer_bill_no = result.transfer_bill_no or withdrawal.transfer_bill_no
        withdrawal.package_info = result.package_info or withdrawal.package_info
        if result.state == "SUCCESS":
            _pay_out(withdrawal, now)
        elif result.state in ("FAIL", "CANCELLED"):
            withdrawal.fail_reason = result.fail_reason or result.state
            _give_back(withdrawal, "failed", now)
        else:
            withdrawal.status = "transferring"
        return WithdrawalOutcome(withdrawal.status, withdrawal, {withdrawal.member_id})


def sync_transfers(config: PayConfig, *, now: datetime, limit: int = 200) -> dict:
    """The job: create bills for approved withdrawals that have none yet (a failed call),
    ask WeChat about open bills, and cancel bills left unconfirmed past 24 hours."""
    rows = db.session.execute(select(Withdrawal.merchant_id, Withdrawal.id, Withdrawal.status)
                              .where(Withdrawal.status.in_(("approved", "transferring")),
                                     Withdrawal.reviewed_at <= now - SYNC_AFTER)
                              .order_by(Withdrawal.id).limit(limit)).all()
    db.session.rollback()
    finished = 0
    for merchant_id, withdrawal_id, status in rows:
        try:
            if status == "approved":
                start_transfer(merchant_id=merchant_id, withdrawal_id=withdrawal_id,
                               config=config, now=now)
            elif _query(config, merchant_id, withdrawal_id, now) in ("paid_out", "failed"):
                finished += 1
        except (PayUnavailable, PayRejected, Conflict) as exc:
            log.warning("transfer sync skipped", extra={"merchant_id": merchant_id,
                                                        "withdrawal_id": withdrawal_id,
                                                        "reason": str(exc)})
    return {"finished": finished}


def _query(config: PayConfig, merchant_id: int, withdrawal_id: int, now: datetime) -> str:
    withdrawal = db.session.get(Withdrawal, (merchant_id, withdrawal_id))
    out_bill_no, started = withdrawal.out_bill_no, withdrawal.transfer_started_at
    db.session.rollback()
    gateway = config.gateway(merchant_id)
    result = gateway.query_transfer(out_bill_no)
    if result is None:  # the creating call never reached WeChat: send the same bill again
        return _create_bill(merchant_id, withdrawal_id, gateway, config, now).status
    if not result.is_final and started and started + CONFIRM_WINDOW <= now:
        gateway.cancel_transfer(out_bill_no)  # WeChat reports CANCELLED when it is done
        result = gateway.query_transfer(out_bill_no) or result
    return apply_transfer_result(merchant_id=merchant_id, result=result, now=now).result


# -- reads -------------------------------------------------------------------------------------

def list_withdrawals(*, merchant_id: int, page: int, per_page: int, member_id: int | None = None,
                     status: str | None = None) -> tuple[list[Withdrawal], int]:
    query = select(Withdrawal).where(Withdrawal.merchant_id == merchant_id)
    if member_id is not None:
        query = query.where(Withdrawal.member_id == member_id)
    if status:
        query = query.where(Withdrawal.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    return list(db.session.scalars(query.order_by(Withdrawal.id.desc()).limit(per_page)
                                   .offset((page - 1) * per_page))), total
