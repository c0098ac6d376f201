"""Risk signals (DOMAIN.md, Risk signals): detection, the hold on settlement, review, release.

Detection runs inside the transaction of the event that may reveal a pattern (called by
services/events.py: a binding, a payment, a refund) and in the periodic scan. Each check is
one count over a short window on indexed columns, and most events stop before any count: an
upline with few direct members cannot be in a binding burst, a visit without an IP hash
cannot be in an IP burst, an order without beneficiaries pays nobody.

The member flagged is the distributor who would profit: the upline the bindings went to, the
beneficiaries of an order whose buyer shares their identity, the tier-1 distributor of the
refunded orders. An open flag holds that member's pending commission (``without_open_flag``
in commissions.settle_due) until the merchant releases it. A member has at most one open flag
of a kind, and a release clears the evidence it reviewed: the same kind is raised again only
on what happens after it. Every raise and release is written to the append-only risk log.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, distinct, exists, func, select

from app.database import lock_merchant, transaction
from app.domain import risk as rules_of_risk
from app.domain.attribution import BOUND, REBOUND
from app.domain.program_rules import ProgramRules
from app.domain.risk import BINDING_BURST, IP_BURST, REFUND_RATE, SELF_REFERRAL, Identity
from app.errors import Conflict, InvalidInput
from app.extensions import db
from app.models import Commission, Member, Merchant, Order, RiskFlag, RiskLog, User, Visit
from app.services.merchants import program_rules
from app.services.scoping import get_scoped

log = logging.getLogger("fenxiao.risk")

# Advisory-lock namespace (app/database.py LOCK_TREE is 1): raising a flag is serialized per
# merchant, so two payments seen at once still leave one open flag. Taken only to raise.
LOCK_RISK = 82


# --- detection ------------------------------------------------------------------------------


def on_binding(member: Member, upline: Member, *, at: datetime, ip_hash: str = "") -> None:
    """A binding or move put ``member`` under ``upline``: self-referral, binding burst, and
    (for a visit with an IP hash) many new members from one IP."""
    rules = _rules(member.merchant_id)
    _check_self_referral(member, [upline.id], at=at)
    _check_binding_burst(upline, rules, at=at)
    if ip_hash:
        _check_ip_burst(member, upline, ip_hash=ip_hash, rules=rules, at=at)


def on_payment(order: Order, *, at: datetime) -> None:
    """The buyer shares a unionid or phone with a beneficiary of the order (a phone or
    unionid learned after the binding shows here)."""
    others = [b["member_id"] for b in order.commission_snapshot.get("beneficiaries", ())
              if b["member_id"] != order.buyer_member_id]
    if others:
        buyer = db.session.get(Member, (order.merchant_id, order.buyer_member_id))
        _check_self_referral(buyer, others, at=at, order_id=order.id)


def on_refund(order: Order, *, at: datetime) -> None:
    """The refund rate of the order's tier-1 distributor over the last 30 days."""
    tier_one = next((b["member_id"] for b in order.commission_snapshot.get("beneficiaries", ())
                     if b["tier"] == 1), None)
    if tier_one is not None:
        _check_refund_rate(order.merchant_id, tier_one, _rules(order.merchant_id), at=at)


def scan(*, now: datetime) -> dict:
    """The periodic check: refund rates move without a refund (orders age out of the window,
    new orders reach the minimum). One grouped count over the window (``checked``: the
    distributors with a refunded order in it), then a precise check of each one above its
    merchant's threshold. Runs in the caller's transaction."""
    counts = db.session.execute(_referred_counts(now - rules_of_risk.REFUND_WINDOW)
                                .having(_refunded_orders() > 0)).all()
    flagged = 0
    for merchant_id, member_id, referred, refunded in counts:
        rules = _rules(merchant_id)
        if rules_of_risk.refund_rate_exceeded(
                referred_orders=referred, refunded_orders=refunded,
                threshold_bps=rules.risk_refund_rate_bps, min_orders=rules.risk_refund_min_orders):
            flagged += _check_refund_rate(merchant_id, member_id, rules, at=now)
    return {"checked": len(counts), "flagged": flagged}


def _rules(merchant_id: int) -> ProgramRules:
    return program_rules(db.session.get(Merchant, merchant_id))


def _check_self_referral(member: Member, others: list[int], *, at: datetime,
                         order_id: int | None = None) -> None:
    identities = {row.id: Identity(row.unionid, row.phone_hash) for row in db.session.execute(
        select(Member.id, User.unionid, User.phone_hash).join(User, User.id == Member.user_id)
        .where(Member.merchant_id == member.merchant_id, Member.id.in_([member.id, *others])))}
    for other in others:
        matched = rules_of_risk.shared_identity(identities[member.id], identities[other])
        if matched and not _pair_reviewed(member.merchant_id, other, account=member.id):
            _raise(member.merchant_id, other, SELF_REFERRAL, at=at, detail={
                "account_member_id": member.id, "matched": matched, "order_id": order_id})


def _pair_reviewed(merchant_id: int, member_id: int, *, account: int) -> bool:
    """An open self-referral flag exists, or one about this same account was released."""
    return any(flag.status == "open" or flag.detail.get("account_member_id") == account
               for flag in _flags_of(merchant_id, member_id, SELF_REFERRAL))


def _check_binding_burst(upline: Member, rules: ProgramRules, *, at: datetime) -> None:
    threshold = rules.risk_binding_burst_per_hour
    if not rules_of_risk.burst(count=upline.direct_members, threshold=threshold):
        return  # no more direct members than the threshold: no burst possible, no count
    since = _evidence_since(upline.merchant_id, upline.id, BINDING_BURST,
                            window_start=at - rules_of_risk.BINDING_BURST_WINDOW)
    if since is None:
        return
    bindings = db.session.scalar(select(func.count()).select_from(Member).where(
        Member.merchant_id == upline.merchant_id, Member.upline_id == upline.id,
        Member.bound_at > since))
    if rules_of_risk.burst(count=bindings, threshold=threshold):
        _raise(upline.merchant_id, upline.id, BINDING_BURST, at=at, detail={
            "bindings": bindings, "threshold": threshold,
            "window_minutes": rules_of_risk.BINDING_BURST_WINDOW // timedelta(minutes=1)})


def _check_ip_burst(member: Member, upline: Member, *, ip_hash: str, rules: ProgramRules,
                    at: datetime) -> None:
    """New members (joined within the window) bound through visits from one hashed IP; every
    distributor they were bound to is flagged. This binding's visit is not written yet."""
    window_start = at - timedelta(minutes=rules.risk_ip_burst_minutes)
    bound = db.session.execute(
        select(Visit.visitor_user_id, Visit.distributor_id, Visit.created_at)
        .join(Member, (Member.merchant_id == Visit.merchant_id)
              & (Member.user_id == Visit.visitor_user_id))
        .where(Visit.merchant_id == member.merchant_id, Visit.created_at > window_start,
               Visit.ip_hash == ip_hash, Visit.binding_reason.in_((BOUND, REBOUND)),
               Member.created_at > window_start)).all()
    if member.created_at is None or member.created_at > window_start:
        bound.append((member.user_id, upline.id, at))
    threshold = rules.risk_ip_burst_members
    if not rules_of_risk.burst(count=len({row[0] for row in bound}), threshold=threshold):
        return
    for distributor_id in sorted({row[1] for row in bound}):
        since = _evidence_since(member.merchant_id, distributor_id, IP_BURST,
                                window_start=window_start)
        if since is None:
            continue
        members = len({row[0] for row in bound if row[2] > since})
        if rules_of_risk.burst(count=members, threshold=threshold):
            _raise(member.merchant_id, distributor_id, IP_BURST, at=at, detail={
                "ip_hash": ip_hash[:16], "members": members,
                "window_minutes": rules.risk_ip_burst_minutes, "threshold": threshold})


def _check_refund_rate(merchant_id: int, member_id: int, rules: ProgramRules, *,
                       at: datetime) -> bool:
    since = _evidence_since(merchant_id, member_id, REFUND_RATE,
                            window_start=at - rules_of_risk.REFUND_WINDOW)
    if since is None:
        return False
    row = db.session.execute(_referred_counts(since).where(
        Commission.merchant_id == merchant_id, Commission.member_id == member_id)).one_or_none()
    referred, refunded = (row[2], row[3]) if row else (0, 0)
    if not rules_of_risk.refund_rate_exceeded(
            referred_orders=referred, refunded_orders=refunded,
            threshold_bps=rules.risk_refund_rate_bps, min_orders=rules.risk_refund_min_orders):
        return False
    return _raise(merchant_id, member_id, REFUND_RATE, at=at, detail={
        "referred_orders": referred, "refunded_orders": refunded,
        "refund_rate_bps": rules_of_risk.refund_rate_bps(referred_orders=referred,
                                                         refunded_orders=refunded),
        "threshold_bps": rules.risk_refund_rate_bps,
        "window_days": rules_of_risk.REFUND_WINDOW.days})


def _refunded_orders() -> ColumnElement:
    return func.count(distinct(case((Order.refunded_fen > 0, Commission.order_id))))


def _referred_counts(since: datetime):
    """Per tier-1 distributor: orders paid since ``since`` that earned them tier-1 commission
    (accrued with the payment), and how many of those were refunded (any successful refund,
    in part or in full)."""
    return (select(Commission.merchant_id, Commission.member_id,
                   func.count(distinct(Commission.order_id)), _refunded_orders())
            .join(Order, (Order.merchant_id == Commission.merchant_id)
                  & (Order.id == Commission.order_id))
            .where(Commission.tier == 1, Commission.created_at >= since)
            .group_by(Commission.merchant_id, Commission.member_id))


def _flags_of(merchant_id: int, member_id: int, kind: str) -> list[RiskFlag]:
    return list(db.session.scalars(select(RiskFlag).where(
        RiskFlag.merchant_id == merchant_id, RiskFlag.member_id == member_id,
        RiskFlag.kind == kind)))


def _evidence_since(merchant_id: int, member_id: int, kind: str, *,
                    window_start: datetime) -> datetime | None:
    """Where this member's evidence for ``kind`` starts; None while a flag of it is open."""
    flags = _flags_of(merchant_id, member_id, kind)
    if any(flag.status == "open" for flag in flags):
        return None
    return rules_of_risk.evidence_since(window_start=window_start, last_release=max(
        (f.released_at for f in flags if f.released_at is not None), default=None))


def _raise(merchant_id: int, member_id: int, kind: str, *, at: datetime, detail: dict) -> bool:
    """Open a flag and log it, unless one of this kind is open (checked again under the lock:
    the first look ran without it). Flushes only."""
    lock_merchant(db.session, merchant_id, namespace=LOCK_RISK)
    if db.session.scalar(select(RiskFlag.id).where(
            RiskFlag.merchant_id == merchant_id, RiskFlag.member_id == member_id,
            RiskFlag.kind == kind, RiskFlag.status == "open")) is not None:
        return False
    flag = RiskFlag(merchant_id=merchant_id, member_id=member_id, kind=kind, detail=detail,
                    status="open", created_at=at)
    db.session.add(flag)
    db.session.flush()
    db.session.add(RiskLog(merchant_id=merchant_id, flag_id=flag.id, member_id=member_id,
                           action="raised", note=kind, created_at=at))
    db.session.flush()
    log.warning("risk flag raised", extra={"merchant_id": merchant_id, "member_id": member_id,
                                           "kind": kind, "flag_id": flag.id})
    return True


# --- the hold -------------------------------------------------------------------------------


def without_open_flag(merchant_id: ColumnElement, member_id: ColumnElement) -> ColumnElement:
    """SQL condition: the member has no open flag (its pending commission may settle)."""
    return ~exists().where(RiskFlag.merchant_id == merchant_id,
                           RiskFlag.member_id == member_id, RiskFlag.status == "open")


# --- review ---------------------------------------------------------------------------------


def release(*, merchant_id: int, flag_id: int, reason: str, staff_id: int,
            now: datetime) -> RiskFlag:
    """Release an open flag with a reason, logged; the member's held commission settles on
    the next settlement run once no other flag of theirs is open."""
    errors = rules_of_risk.release_reason_errors(reason)
    if errors:
        raise InvalidInput(errors={"reason": errors})
    with transaction(db.session):
        flag = get_scoped(RiskFlag, merchant_id=merchant_id, id=flag_id, what="risk flag",
                          for_update=True)
        if flag.status != "open":
            raise Conflict("This flag has already been released.", code="risk_flag_not_open")
        flag.status, flag.released_at = "released", now
        flag.released_by_staff_id, flag.release_reason = staff_id, reason.strip()
        db.session.add(RiskLog(merchant_id=merchant_id, flag_id=flag.id,
                               member_id=flag.member_id, action="released", staff_id=staff_id,
                               note=reason.strip(), created_at=now))
    return flag


def list_flags(*, merchant_id: int, page: int, per_page: int, status: str | None = None,
               kind: str | None = None, member_id: int | None = None
               ) -> tuple[list[tuple[RiskFlag, str]], int]:
    """A page of flags, newest first, each with the flagged member's nickname."""
    query = (select(RiskFlag, User.nickname)
             .join(Member, (Member.merchant_id == RiskFlag.merchant_id)
                   & (Member.id == RiskFlag.member_id))
             .join(User, User.id == Member.user_id)
             .where(RiskFlag.merchant_id == merchant_id))
    if member_id is not None:
        get_scoped(Member, merchant_id=merchant_id, id=member_id, what="distributor")
        query = query.where(RiskFlag.member_id == member_id)
    if status:
        query = query.where(RiskFlag.status == status)
    if kind:
        query = query.where(RiskFlag.kind == kind)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.execute(query.order_by(RiskFlag.id.desc()).limit(per_page)
                              .offset((page - 1) * per_page)).all()
    return [tuple(row) for row in rows], total


def flag_with_log(*, merchant_id: int, flag_id: int
                  ) -> tuple[RiskFlag, str, list[RiskLog]]:
    """A flag, the flagged member's nickname, and the flag's log oldest first."""
    flag = get_scoped(RiskFlag, merchant_id=merchant_id, id=flag_id, what="risk flag")
    nickname = db.session.scalar(select(User.nickname).join(Member, Member.user_id == User.id)
                                 .where(Member.merchant_id == merchant_id,
                                        Member.id == flag.member_id))
    return flag, nickname or "", list(db.session.scalars(select(RiskLog).where(
        RiskLog.merchant_id == merchant_id, RiskLog.flag_id == flag_id).order_by(RiskLog.id)))


def list_logs(*, merchant_id: int, page: int, per_page: int,
              member_id: int | None = None) -> tuple[list[RiskLog], int]:
    """The risk log, newest first: every flag raised and released."""
    query = select(RiskLog).where(RiskLog.merchant_id == merchant_id)
    if member_id is not None:
        query = query.where(RiskLog.member_id == member_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(RiskLog.id.desc()).limit(per_page)
                              .offset((page - 1) * per_page))
    return list(rows), total
