"""Factory functions: one per thing, each committing what it makes (integration tests)."""

from __future__ import annotations

import itertools

from app.database import transaction
from app.domain.share_token import new_token
from app.extensions import db
from app.models import Member, Merchant, ShareLink, User
from app.services import tree

_seq = itertools.count(1)


def make_merchant(*, status: str = "approved", rules: dict | None = None, **fields) -> Merchant:
    with transaction(db.session):
        merchant = Merchant(name=fields.pop("name", f"Shop {next(_seq)}"), status=status,
                            program_rules=rules or {}, **fields)
        db.session.add(merchant)
    return merchant


def make_user(**fields) -> User:
    n = next(_seq)
    with transaction(db.session):
        user = User(appid="wx-test", openid=fields.pop("openid", f"o-test-{n}"), **fields)
        db.session.add(user)
    return user


def make_member(merchant: Merchant, *, upline: Member | None = None, status: str = "active",
                user: User | None = None) -> Member:
    """A member (an active distributor by default), bound under ``upline`` if given."""
    user = user or make_user()
    with transaction(db.session):
        member = Member(merchant_id=merchant.id, user_id=user.id, distributor_status=status)
        db.session.add(member)
        db.session.flush()
        if upline is not None:
            tree.lock_tree(merchant.id)
            tree.attach(member, db.session.get(Member, (merchant.id, upline.id)))
    return member


def make_share_link(distributor: Member, *, page: str = "pages/index/index") -> ShareLink:
    with transaction(db.session):
        link = ShareLink(merchant_id=distributor.merchant_id, distributor_id=distributor.id,
                         token=new_token(distributor.merchant_id), page=page)
        db.session.add(link)
    return link
