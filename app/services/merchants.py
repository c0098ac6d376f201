"""Merchants: supplier applications, platform review, creation by CLI, and program rules."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from app.database import transaction, utcnow
from app.domain.personal_data import mask_phone
from app.domain.program_rules import ProgramRules, RulesError, rules_from_dict
from app.encryption import SecretBox
from app.errors import Conflict, InvalidInput, NotFound
from app.extensions import db, redis
from app.models import Merchant
from app.services import commission_plans, wallets
from app.services.staff import new_staff_account

log = logging.getLogger("fenxiao.merchants")

PLATFORM_AGREEMENT_VERSION = "2026-11"


def create_merchant(*, name: str, owner_username: str, owner_password: str) -> Merchant:
    """An approved merchant with its owner account, in one transaction (``flask merchants
    create``); a taken username changes nothing."""
    merchant = _open(Merchant(name=name, status="approved", reviewed_at=utcnow(),
                              platform_agreement_version=PLATFORM_AGREEMENT_VERSION,
                              platform_agreement_accepted_at=utcnow()),
                     owner_username=owner_username, owner_password=owner_password)
    log.info("merchant created", extra={"merchant_id": merchant.id})
    return merchant


def apply_as_supplier(*, name: str, contact_name: str, contact_phone: str, owner_username: str,
                      owner_password: str, agreement_version: str, box: SecretBox) -> Merchant:
    """A supplier's application: a pending merchant whose owner can sign in once approved."""
    if agreement_version != PLATFORM_AGREEMENT_VERSION:
        raise InvalidInput("Accept the current platform agreement.", errors={
            "agreement_version": [f"The current version is {PLATFORM_AGREEMENT_VERSION}."]})
    return _open(Merchant(name=name, status="pending", contact_name=contact_name,
                          contact_phone_masked=mask_phone(contact_phone),
                          contact_phone_encrypted=box.encrypt(contact_phone),
                          platform_agreement_version=agreement_version,
                          platform_agreement_accepted_at=utcnow()),
                 owner_username=owner_username, owner_password=owner_password)


def _open(merchant: Merchant, *, owner_username: str, owner_password: str) -> Merchant:
    """Store a new merchant with its owner account and plan version 1, in one transaction."""
    with transaction(db.session):
        db.session.add(merchant)
        db.session.flush()
        new_staff_account(merchant.id, username=owner_username, password=owner_password,
                          role="owner", field="owner_username")
        commission_plans.publish_if_changed(merchant.id, ProgramRules(), staff_id=None)
    wallets.mark_new_merchant(redis.client, merchant.id)
    return merchant


def review_application(*, merchant_id: int, admin_id: int, approve: bool,
                       reason: str = "") -> Merchant:
    with transaction(db.session):
        merchant = db.session.get(Merchant, merchant_id, with_for_update=True)
        if merchant is None:
            raise NotFound("No such merchant.", code="merchant_not_found")
        if merchant.status != "pending":
            raise Conflict(f"The application was already {merchant.status}.",
                           code="invalid_status_transition")
        if not approve and not reason.strip():
            raise InvalidInput(errors={"reason": ["Say why the application is rejected."]})
        merchant.status = "approved" if approve else "rejected"
        merchant.review_reason = reason
        merchant.reviewed_at = utcnow()
        merchant.reviewed_by_admin_id = admin_id
    return merchant


def list_merchants(*, status: str | None, page: int, per_page: int) -> tuple[list[Merchant], int]:
    query = select(Merchant)
    if status:
        query = query.where(Merchant.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(Merchant.id.desc())
                               .limit(per_page).offset((page - 1) * per_page)).all()
    return list(items), total


def get_approved_merchant(merchant_id: int) -> Merchant:
    """A merchant that buyers and distributors may see; others are simply not found."""
    merchant = db.session.get(Merchant, merchant_id)
    if merchant is None or merchant.status != "approved":
        raise NotFound("No such merchant.", code="merchant_not_found")
    return merchant


def program_rules(merchant: Merchant) -> ProgramRules:
    return rules_from_dict(merchant.program_rules)


def update_program_rules(*, merchant_id: int, changes: dict,
                         staff_id: int | None = None) -> ProgramRules:
    """Validate the whole result before storing anything; only fields that differ from the
    defaults are stored, so a future default change reaches merchants who never chose. A
    change to the money rules publishes a new commission plan version in the same
    transaction."""
    with transaction(db.session):
        merchant = db.session.get(Merchant, merchant_id, with_for_update=True)
        try:
            rules = rules_from_dict(merchant.program_rules, changes)
        except RulesError as error:
            raise InvalidInput(errors=error.errors) from None
        defaults = ProgramRules().to_dict()
        merchant.program_rules = {k: v for k, v in rules.to_dict().items() if defaults[k] != v}
        commission_plans.publish_if_changed(merchant_id, rules, staff_id=staff_id)
    return rules
