"""Share visits and the bindings they cause (DOMAIN.md, Share links and attribution).

A visit is always recorded. For a signed-in visitor the attribution rule decides whether it
binds; every decision, refusals included, goes to the append-only binding log. A decision that
would change the tree is taken again under the merchant's tree lock, so 50 simultaneous visits
by one new member bind exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis as redis_lib
from sqlalchemy import select

from app.database import transaction, utcnow
from app.domain import attribution
from app.domain import tree as tree_rules
from app.domain.business_time import business_date
from app.domain.program_rules import ProgramRules
from app.domain.share_token import merchant_of
from app.errors import NotFound
from app.extensions import db
from app.integrations import visit_counters
from app.models import BindingLog, Member, ShareLink, User, Visit
from app.services import events, tree
from app.services.members import ensure_member, find_member
from app.services.merchants import get_approved_merchant, program_rules

log = logging.getLogger("fenxiao.attribution")


@dataclass(frozen=True)
class VisitOutcome:
    merchant_id: int
    share_link_id: int
    distributor_id: int
    bound: bool
    reason: str


@dataclass(frozen=True)
class VisitContext:
    channel: str  # miniprogram | h5 | login
    scene_value: str = ""
    ip_hash: str = ""
    user_agent: str = ""


def find_link(token: str) -> ShareLink:
    merchant_id = merchant_of(token)
    link = None
    if merchant_id is not None:
        link = db.session.scalars(select(ShareLink).where(
            ShareLink.merchant_id == merchant_id, ShareLink.token == token)).one_or_none()
    if link is None:
        raise NotFound("This share link does not exist.", code="share_link_not_found")
    return link


def record_visit(*, token: str, user_id: int | None, context: VisitContext,
                 redis_client: redis_lib.Redis | None = None) -> VisitOutcome:
    """Record one opening of a share link and apply the binding rule; one transaction.

    With ``redis_client`` the visitor (the user, else the hashed IP) is then counted in the
    unique-visitor HyperLogLogs — after the commit, so a counter never counts a visit that SQL
    lost.
    """
    link = find_link(token)
    merchant_id, distributor_id, link_id = link.merchant_id, link.distributor_id, link.id
    merchant = get_approved_merchant(merchant_id)
    timezone, rules = merchant.timezone, program_rules(merchant)
    # A first look without the lock: most visits change nothing and need not queue for it.
    locked = user_id is not None and _first_look(rules, merchant_id, distributor_id, user_id)
    db.session.rollback()  # end the read; the write transaction takes its lock first
    with transaction(db.session):
        if locked:
            tree.lock_tree(merchant_id)
        reason = ""
        if user_id is not None:
            reason = _attribute(rules, merchant_id, distributor_id, user_id, link_id,
                                locked=locked, ip_hash=context.ip_hash or "")
        visit = Visit(merchant_id=merchant_id, share_link_id=link.id,
                      distributor_id=distributor_id, visitor_user_id=user_id,
                      channel=context.channel, scene_value=context.scene_value,
                      ip_hash=context.ip_hash, user_agent=context.user_agent[:255],
                      binding_reason=reason)
        db.session.add(visit)
        events.visit_recorded(visit, utcnow())
    visitor = f"user:{user_id}" if user_id is not None else (
        f"ip:{context.ip_hash}" if context.ip_hash else None)
    if redis_client is not None and visitor:
        visit_counters.count_visitor(
            redis_client, merchant_id=merchant_id, share_link_id=link_id,
            distributor_id=distributor_id, visitor=visitor,
            day=business_date(utcnow(), timezone=timezone))
    bound = reason in (attribution.BOUND, attribution.REBOUND)
    return VisitOutcome(merchant_id=merchant_id, share_link_id=link_id,
                        distributor_id=distributor_id, bound=bound, reason=reason)


def record_login_visit(*, token: str, user_id: int, context: VisitContext,
                       redis_client: redis_lib.Redis | None = None) -> VisitOutcome | None:
    """The share token a user signed in with: attributed like a visit. A stale or unknown token
    never fails the sign-in; it is logged and ignored."""
    try:
        return record_visit(token=token, user_id=user_id, context=context,
                            redis_client=redis_client)
    except NotFound:
        db.session.rollback()
        log.info("sign-in with an unknown share token", extra={"user_id": user_id})
        return None


_CHANGES = (attribution.BOUND, attribution.REBOUND, attribution.PENDING_FIRST_ORDER)


def _decide(rules: ProgramRules, merchant_id: int, distributor_id: int, user_id: int,
            *, event: str = "visit", member: Member | None = None) -> attribution.Decision:
    member = member or ensure_member(merchant_id=merchant_id, user_id=user_id)
    distributor = db.session.get(Member, (merchant_id, distributor_id))
    user = db.session.get(User, user_id)
    return attribution.decide_binding(rules, attribution.BindingFacts(
        now=utcnow(), member_id=member.id, member_upline_id=member.upline_id,
        member_bound_at=member.bound_at, user_created_at=user.created_at,
        distributor_id=distributor.id, distributor_active=distributor.is_active_distributor,
        distributor_in_member_team=tree_rules.is_ancestor(member.id, of_path=distributor.path),
        event=event))


def _first_look(rules: ProgramRules, merchant_id: int, distributor_id: int,
                user_id: int) -> bool:
    """Whether this visit may change the tree; reads only (a new member is not inserted)."""
    member = find_member(merchant_id=merchant_id, user_id=user_id) or Member(
        merchant_id=merchant_id, id=0, user_id=user_id, upline_id=None, path="/")
    return _decide(rules, merchant_id, distributor_id, user_id,
                   member=member).reason in _CHANGES


def _attribute(rules: ProgramRules, merchant_id: int, distributor_id: int, user_id: int,
               share_link_id: int | None, *, locked: bool, ip_hash: str = "") -> str:
    """Decide and apply. A decision that would change the tree is only ever applied under the
    tree lock: if the first look did not take it (the world changed since), take it now and
    decide again on fresh rows."""
    member = ensure_member(merchant_id=merchant_id, user_id=user_id)
    decision = _decide(rules, merchant_id, distributor_id, user_id, member=member)
    if decision.reason in _CHANGES and not locked:
        tree.lock_tree(merchant_id)
        db.session.expire_all()
        decision = _decide(rules, merchant_id, distributor_id, user_id, member=member)
    _apply(rules, member, distributor_id, decision, share_link_id=share_link_id,
           ip_hash=ip_hash)
    return decision.reason


def _apply(rules: ProgramRules, member: Member, distributor_id: int,
           decision: attribution.Decision, *, share_link_id: int | None,
           ip_hash: str = "") -> None:
    previous = member.upline_id
    if decision.binds:
        upline = db.session.get(Member, (member.merchant_id, distributor_id))
        tree.attach(member, upline)
        member.bound_at = utcnow()
        events.member_bound(member, upline, member.bound_at, ip_hash=ip_hash)
        member.pending_upline_id = member.pending_share_link_id = None
        outcome = decision.reason
    elif decision.remembers:
        member.pending_upline_id = distributor_id
        member.pending_share_link_id = share_link_id
        outcome = "remembered"
    else:
        outcome = "refused"
    db.session.add(BindingLog(
        merchant_id=member.merchant_id, member_id=member.id, distributor_id=distributor_id,
        previous_upline_id=previous, outcome=outcome, reason=decision.reason,
        rule=f"{rules.bind_mode}/{rules.bind_trigger}", share_link_id=share_link_id))


def redeem_first_order(*, member: Member, rules: ProgramRules) -> str | None:
    """``first_order`` trigger: when the member's first order is paid, the remembered visit
    becomes a binding if the rules still allow it. Runs in the payment's transaction after the
    caller took the tree lock; returns the decision's reason, or None with nothing remembered."""
    if member.pending_upline_id is None:
        return None
    distributor_id = member.pending_upline_id
    decision = _decide(rules, member.merchant_id, distributor_id, member.user_id,
                       event="first_order", member=member)
    _apply(rules, member, distributor_id, decision, share_link_id=member.pending_share_link_id)
    member.pending_upline_id = member.pending_share_link_id = None
    return decision.reason
