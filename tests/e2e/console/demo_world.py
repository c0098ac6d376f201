"""What a browser test needs in the demo database, through the app's own services, run as
`python -m tests.e2e.console.demo_world <need>` in the console's environment (the test process
has an app of its own on another database). Each need reuses what the demo seeded while it is
there and makes one more when a test (or the other viewport) has used it up, so no test
depends on another having run or not. Prints one JSON object as its last line."""

from __future__ import annotations

import json
import sys
import uuid

from sqlalchemy import select

from app.database import transaction, utcnow
from app.extensions import db
from app.models import LedgerAccount, Member, Merchant, Order, Product, User, Withdrawal

DEMO_SHOP = "鲜果小铺"


def _shop_id() -> int:
    return db.session.scalar(select(Merchant.id).where(Merchant.name == DEMO_SHOP))


def pending_applicant() -> dict:
    """A distributor application waiting for review."""
    from app.clients import secret_box, settings
    from app.services import members

    shop = _shop_id()
    member_id = db.session.scalar(select(Member.id).where(
        Member.merchant_id == shop, Member.distributor_status == "pending")
        .order_by(Member.id))
    if member_id is None:
        with transaction(db.session):
            user = User(appid=settings().wechat_appid, openid=f"e2e-{uuid.uuid4().hex}",
                        nickname="新申请人")
            db.session.add(user)
        member_id = members.join_program(merchant_id=shop, user_id=user.id,
                                         agreement_version="v1", real_name="申请人",
                                         phone="13800138009", box=secret_box()).id
    return {"member_id": member_id}


def paid_order() -> dict:
    """A paid order not shipped yet, paid through the WeChat sandbox."""
    from app.clients import sandbox_base_url
    from app.demo.orders import place

    shop = _shop_id()
    order_id = db.session.scalar(select(Order.id).where(
        Order.merchant_id == shop, Order.status == "paid", Order.shipped_at.is_(None))
        .order_by(Order.id.desc()))
    if order_id is None:
        buyer = db.session.scalar(select(Order.buyer_user_id).where(Order.merchant_id == shop)
                                  .order_by(Order.id))
        product = db.session.scalar(select(Product.id).where(Product.merchant_id == shop)
                                    .order_by(Product.id))
        order_id = place(shop, buyer, product, 1, utcnow(), "paid", sandbox_base_url())
    return {"order_id": order_id}


def requested_withdrawal() -> dict:
    """A withdrawal waiting for review; a new one is the minimum from the distributor with
    the most available money."""
    from app.clients import secret_box
    from app.services import withdrawals

    shop = _shop_id()
    withdrawal_id = db.session.scalar(select(Withdrawal.id).where(
        Withdrawal.merchant_id == shop, Withdrawal.status == "requested")
        .order_by(Withdrawal.id))
    if withdrawal_id is None:
        user_id = db.session.scalar(
            select(Member.user_id)
            .join(LedgerAccount, (LedgerAccount.merchant_id == Member.merchant_id)
                  & (LedgerAccount.owner_id == Member.id))
            .where(Member.merchant_id == shop, LedgerAccount.kind == "available")
            .order_by(LedgerAccount.balance_fen.desc()))
        db.session.rollback()
        withdrawal_id = withdrawals.request_withdrawal(
            merchant_id=shop, user_id=user_id, amount_fen=100, real_name="测试",
            idempotency_key=None, box=secret_box(), now=utcnow()).id
    return {"withdrawal_id": withdrawal_id}


def demo_records() -> dict:
    """Ids of the demo shop's own records, for opening them as another merchant's staff."""
    shop = _shop_id()
    first = select(Member.id).where(Member.merchant_id == shop).order_by(Member.id)
    return {"merchant_id": shop, "member_id": db.session.scalar(first),
            "order_id": db.session.scalar(select(Order.id).where(Order.merchant_id == shop)
                                          .order_by(Order.id)),
            "withdrawal_id": db.session.scalar(select(Withdrawal.id).where(
                Withdrawal.merchant_id == shop).order_by(Withdrawal.id))}


NEEDS = {"pending-applicant": pending_applicant, "paid-order": paid_order,
         "requested-withdrawal": requested_withdrawal, "demo-records": demo_records}


def main(need: str) -> None:
    from wsgi import app

    with app.app_context():
        answer = NEEDS[need]()
        db.session.rollback()
    print(json.dumps(answer))


if __name__ == "__main__":
    main(sys.argv[1])
