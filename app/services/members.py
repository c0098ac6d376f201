"""Members and distributor programs: joining, reviews by staff, moves in the tree."""

from __future__ import annotations

import logging

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from app.database import transaction, utcnow
from app.domain import distributor_status
from app.domain import tree as tree_rules
from app.domain.personal_data import mask_phone
from app.domain.program_rules import ProgramRules
from app.encryption import SecretBox
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db
from app.models import BindingLog, Member, StatusLog, User
from app.services import events, tree
from app.services.merchants import get_approved_merchant, program_rules
from app.services.scoping import get_scoped

log = logging.getLogger("fenxiao.members")


def find_member(*, merchant_id: int, user_id: int) -> Member | None:
    return db.session.scalars(select(Member).where(
        Member.merchant_id == merchant_id, Member.user_id == user_id)).one_or_none()


def ensure_member(*, merchant_id: int, user_id: int) -> Member:
    """The user's membership in this merchant's program, created on first contact. Flushes
    only; two concurrent first contacts end with one row (the loser reads the winner's)."""
    member = find_member(merchant_id=merchant_id, user_id=user_id)
    if member is not None:
        return member
    try:
        with db.session.begin_nested():
            member = Member(merchant_id=merchant_id, user_id=user_id)
            db.session.add(member)
    except IntegrityError:
        return find_member(merchant_id=merchant_id, user_id=user_id)
    events.member_created(member, utcnow())
    return member


def join_program(*, merchant_id: int, user_id: int, agreement_version: str,
                 real_name: str | None, phone: str | None, box: SecretBox) -> Member:
    """Apply or join per the program's ``join_mode``; joining twice returns the membership."""
    merchant = get_approved_merchant(merchant_id)
    rules = program_rules(merchant)
    if agreement_version != rules.agreement_version:
        raise InvalidInput("Accept the current distributor agreement.", errors={
            "agreement_version": [f"The current version is {rules.agreement_version}."]})
    with transaction(db.session):
        member = ensure_member(merchant_id=merchant_id, user_id=user_id)
        if member.distributor_status in ("active", "pending"):
            return member
        action = _join_action(rules, member, real_name=real_name, phone=phone)
        if real_name:
            member.real_name_encrypted = box.encrypt(real_name)
            member.real_name_masked = real_name[0] + "*" * (len(real_name) - 1)
        if phone:
            member.phone_encrypted = box.encrypt(phone)
            member.phone_masked = mask_phone(phone)
        member.agreement_version = agreement_version
        member.agreement_accepted_at = member.applied_at = utcnow()
        _change_status(member, action, reason="", staff_id=None)
    return member


def _join_action(rules: ProgramRules, member: Member, *, real_name: str | None,
                 phone: str | None) -> str:
    if rules.join_mode == "everyone":
        return "join"
    if rules.join_mode == "spend_threshold":
        if member.personal_sales_fen < rules.join_spend_threshold_fen:
            raise Conflict("Spend more to become a distributor.",
                           code="spend_threshold_not_reached")
        return "join"
    missing = {name: ["Required to apply."] for name, value in
               (("real_name", real_name), ("phone", phone)) if not value}
    if missing:
        raise InvalidInput(errors=missing)
    return "apply"


def review(*, merchant_id: int, member_id: int, action: str, reason: str,
           staff_id: int) -> Member:
    """Approve, reject, freeze or unfreeze; illegal transitions are 409s that change nothing."""
    if action in distributor_status.REASON_REQUIRED and not reason.strip():
        raise InvalidInput(errors={"reason": ["Say why."]})
    with transaction(db.session):
        member = get_scoped(Member, merchant_id=merchant_id, id=member_id, what="distributor",
                            for_update=True)
        _change_status(member, action, reason=reason, staff_id=staff_id)
    return member


def _change_status(member: Member, action: str, *, reason: str, staff_id: int | None) -> None:
    try:
        new_status = distributor_status.next_status(action, member.distributor_status)
    except distributor_status.IllegalTransition as error:
        raise Conflict(str(error).capitalize() + ".", code="invalid_status_transition") from None
    db.session.add(StatusLog(merchant_id=member.merchant_id, member_id=member.id,
                             from_status=member.distributor_status, to_status=new_status,
                             reason=reason, staff_id=staff_id))
    member.distributor_status = new_status
    member.status_reason = reason
    if new_status == "active" and member.activated_at is None:
        member.activated_at = utcnow()
        events.distributor_activated(member, member.activated_at)


def move(*, merchant_id: int, member_id: int, upline_id: int, reason: str,
         staff_id: int) -> Member:
    """Move a member and its whole team under another upline, re-validated and logged.

    Commission already snapshotted on orders is untouched: snapshots never read the tree.
    """
    if not reason.strip():
        raise InvalidInput(errors={"reason": ["Say why the member is moved."]})
    with transaction(db.session):
        tree.lock_tree(merchant_id)
        member = get_scoped(Member, merchant_id=merchant_id, id=member_id, what="distributor")
        upline = get_scoped(Member, merchant_id=merchant_id, id=upline_id, what="upline")
        refusal = _move_refusal(member, upline)
        if refusal:
            raise Conflict(refusal[1], code=refusal[0], errors={"upline_id": [refusal[1]]})
        previous = member.upline_id
        tree.attach(member, upline)
        member.bound_at = utcnow()
        events.member_bound(member, upline, member.bound_at)
        db.session.add(BindingLog(merchant_id=merchant_id, member_id=member.id,
                                  distributor_id=upline.id, previous_upline_id=previous,
                                  outcome="moved", reason="moved_by_staff", rule="staff",
                                  staff_id=staff_id, note=reason))
    return member


def _move_refusal(member: Member, upline: Member) -> tuple[str, str] | None:
    if upline.id == member.id:
        return "self", "A member cannot be its own upline."
    if tree_rules.is_ancestor(member.id, of_path=upline.path):
        return "cycle", "The new upline is in this member's own team."
    if not upline.is_active_distributor:
        return "inactive_distributor", "The new upline is not an active distributor."
    if member.upline_id == upline.id:
        return "already_bound", "The member is already under this upline."
    return None


def list_members(*, merchant_id: int, page: int, per_page: int, status: str | None = None,
                 q: str | None = None, direct_of: int | None = None
                 ) -> tuple[list[tuple[Member, User]], int]:
    """A page of the merchant's members with their users, newest first; ``q`` matches a
    member id or part of a nickname, ``direct_of`` keeps one member's direct members."""
    query = (select(Member, User).join(User, User.id == Member.user_id)
             .where(Member.merchant_id == merchant_id))
    if direct_of is not None:
        query = query.where(Member.upline_id == direct_of)
    if status:
        query = query.where(Member.distributor_status == status)
    if q:
        matches = User.nickname.contains(q, autoescape=True)
        query = query.where(or_(matches, Member.id == int(q)) if q.isdigit() else matches)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.execute(query.order_by(Member.id.desc()).limit(per_page)
                              .offset((page - 1) * per_page)).all()
    return [tuple(row) for row in rows], total


def member_with_user(*, merchant_id: int, member_id: int) -> tuple[Member, User]:
    member = get_scoped(Member, merchant_id=merchant_id, id=member_id, what="distributor")
    return member, db.session.get(User, member.user_id)


def my_membership(*, merchant_id: int, user_id: int) -> Member:
    member = find_member(merchant_id=merchant_id, user_id=user_id)
    if member is None:
        raise NotFound("You are not a member of this program yet.", code="not_a_member")
    return member


def team_page(*, merchant_id: int, viewer: Member, member_id: int | None, page: int,
              per_page: int) -> tuple[list[tuple[Member, User]], int]:
    """Direct members of ``viewer``, or of ``member_id`` when it is inside the viewer's own team
    (anyone else's team is not found)."""
    parent_id = viewer.id
    if member_id is not None and member_id != viewer.id:
        target = db.session.get(Member, (merchant_id, member_id))
        if target is None or not tree_rules.is_ancestor(viewer.id, of_path=target.path):
            raise NotFound("No such member in your team.", code="member_not_found")
        parent_id = target.id
    return list_members(merchant_id=merchant_id, page=page, per_page=per_page,
                        direct_of=parent_id)


def status_history(*, merchant_id: int, member_id: int, limit: int = 50) -> list[StatusLog]:
    return list(db.session.scalars(select(StatusLog).where(
        StatusLog.merchant_id == merchant_id, StatusLog.member_id == member_id)
        .order_by(StatusLog.id.desc()).limit(limit)))


def binding_history(*, merchant_id: int, member_id: int, limit: int = 50) -> list[BindingLog]:
    return list(db.session.scalars(select(BindingLog).where(
        BindingLog.merchant_id == merchant_id, BindingLog.member_id == member_id)
        .order_by(BindingLog.id.desc()).limit(limit)))
