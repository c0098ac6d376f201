"""Members and distributor programs: joining, reviews by staff, moves in the tree."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.database import transaction, utcnow
from app.domain import distributor_status
from app.domain import tree as tree_rules
from app.domain.personal_data import mask_phone
from app.domain.program_rules import ProgramRules
from app.encryption import SecretBox
from app.errors import Conflict, InvalidInput
from app.extensions import db
from app.models import BindingLog, Member, StatusLog
from app.services import tree
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
        member = find_member(merchant_id=merchant_id, user_id=user_id)
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


def list_members(*, merchant_id: int, status: str | None = None,
                 search_user_ids: list[int] | None = None, page: int, per_page: int,
                 only_direct_of: int | None = None) -> tuple[list[Member], int]:
    """A page of the merchant's members, optionally only one member's direct members."""
    query = select(Member).where(Member.merchant_id == merchant_id)
    if only_direct_of is not None:
        query = query.where(Member.upline_id == only_direct_of)
    if status:
        query = query.where(Member.distributor_status == status)
    if search_user_ids is not None:
        query = query.where(Member.user_id.in_(search_user_ids))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(Member.id).limit(per_page)
                               .offset((page - 1) * per_page)).all()
    return list(items), total


def binding_history(*, merchant_id: int, member_id: int, limit: int = 50) -> list[BindingLog]:
    return list(db.session.scalars(select(BindingLog).where(
        BindingLog.merchant_id == merchant_id, BindingLog.member_id == member_id)
        .order_by(BindingLog.id.desc()).limit(limit)))
