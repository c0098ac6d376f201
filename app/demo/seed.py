"""`flask demo seed`: a demo merchant with a living program, in an empty database only.

Everything goes through the real services (sign-up, joining, share visits that bind), so the
demo shows what the code does, not what a fixture claims. Accounts it creates:

- platform admin ``admin`` / ``demo-pass-123``
- merchant 鲜果小铺: ``demo-owner``, ``demo-operator``, ``demo-finance`` / ``demo-pass-123``
- distributor 阿丽 is the WeChat sandbox user ``alice``: sign in with ``sandbox:alice:<any>``
"""

from __future__ import annotations

import base64
import io
import logging

import requests
from sqlalchemy import func, select

from app.clients import sandbox_base_url, secret_box, settings
from app.database import transaction
from app.demo.history import seed_history
from app.demo.orders import seed_orders
from app.domain.share_token import new_token
from app.extensions import db
from app.jobs import apply_team_deltas
from app.models import Merchant, Product, ShareLink, User
from app.services import attribution, members, merchants, staff

log = logging.getLogger("fenxiao.demo")
PASSWORD = "demo-pass-123"
# (sandbox user key, nickname, index of the upline in this list or None)
PEOPLE = [
    ("alice", "阿丽", None), ("bob", "小波", 0), ("carol", "卡萝", 0), ("dave", "大卫", 1),
    ("erin", "艾琳", 1), ("frank", "老方", 2), ("grace", "格格", 3), ("heidi", "海蒂", 3),
    ("ivan", "伊万", 4), ("judy", "朱迪", 5), ("mallory", "茉莉", 5), ("niaj", "尼亚", 6),
    ("olivia", "奥莉", 0), ("peggy", "佩琪", 12), ("rupert", "鲁伯", 12), ("sybil", "西贝", 13),
]
APPLICANTS = [("trent", "特伦", "陈特伦", "13800138001"),
              ("victor", "维克", "王维克", "13800138002")]
PRODUCTS = [("阳光玫瑰青提 2斤装", 6990, (120, 200, 90)),
            ("赣南脐橙 5斤礼盒", 4990, (250, 160, 40)),
            ("丹东草莓 3斤", 8800, (220, 50, 60)),
            ("海南金煌芒 5斤", 3990, (250, 200, 60))]


def seed(*, size: str = "full") -> str:
    if db.session.scalar(select(func.count()).select_from(Merchant)):
        return "the database already has data; nothing seeded"
    staff.create_admin(username="admin", password=PASSWORD)
    shop = merchants.create_merchant(name="鲜果小铺", owner_username="demo-owner",
                                     owner_password=PASSWORD)
    for username, role in (("demo-operator", "operator"), ("demo-finance", "finance")):
        staff.add_staff(merchant_id=shop.id, username=username, password=PASSWORD, role=role)
    _products(shop.id)
    user_ids, links = _program(shop.id)
    placed = seed_orders(shop.id, user_ids)
    history = _history(shop.id, links, size)
    _supplier_application()
    apply_team_deltas()
    return (f"demo seeded: merchant {shop.id} 鲜果小铺 with {len(PEOPLE)} distributors, "
            f"{history['buyers']} buyers and {placed + history['orders']} orders paid through "
            f"the WeChat sandbox; "
            f"console users demo-owner/demo-operator/demo-finance, admin 'admin', password "
            f"{PASSWORD}; sign in to the mini-program API as sandbox:alice:<any> to be 阿丽")


def _history(merchant_id: int, links: list[str], size: str) -> dict:
    sandbox = sandbox_base_url()
    if sandbox is None:
        return {"buyers": 0, "orders": 0}
    product_ids = list(db.session.scalars(select(Product.id).where(
        Product.merchant_id == merchant_id).order_by(Product.id)))
    return seed_history(merchant_id, links=links, product_ids=product_ids, sandbox=sandbox,
                        size=size)


def _program(merchant_id: int) -> tuple[list[int], list[str]]:
    """Everyone joins while the demo builds its tree through real share visits; then the
    program switches to the default review-by-application mode with two applicants."""
    merchants.update_program_rules(merchant_id=merchant_id, changes={"join_mode": "everyone"})
    users, links = [], []
    for key, nickname, upline_index in PEOPLE:
        user = _user(key, nickname)
        users.append(user)
        if upline_index is not None:
            attribution.record_visit(token=links[upline_index], user_id=user.id,
                                     context=attribution.VisitContext(channel="miniprogram"))
        member = members.join_program(merchant_id=merchant_id, user_id=user.id,
                                      agreement_version="v1", real_name=None, phone=None,
                                      box=secret_box())
        links.append(_share_link(merchant_id, member.id))
    merchants.update_program_rules(merchant_id=merchant_id, changes={"join_mode": "apply"})
    for key, nickname, real_name, phone in APPLICANTS:
        user = _user(key, nickname)
        attribution.record_visit(token=links[1], user_id=user.id,
                                 context=attribution.VisitContext(channel="h5"))
        members.join_program(merchant_id=merchant_id, user_id=user.id, agreement_version="v1",
                             real_name=real_name, phone=phone, box=secret_box())
    return [user.id for user in users], links


def _user(key: str, nickname: str) -> User:
    openid, unionid = _sandbox_identity(key)
    with transaction(db.session):
        user = User(appid=settings().wechat_appid, openid=openid, unionid=unionid,
                    nickname=nickname)
        db.session.add(user)
    return user


def _sandbox_identity(key: str) -> tuple[str, str | None]:
    """The openid the WeChat sandbox gives user ``key``, so that signing in with
    ``sandbox:<key>:<nonce>`` lands on this demo user; a made-up one without a sandbox."""
    if settings().uses_wechat_sandbox:
        try:
            answer = requests.get(f"{settings().wechat_api_base_url}/sandbox/openid",
                                  params={"user": key, "appid": settings().wechat_appid},
                                  timeout=5).json()
            return answer["openid"], answer.get("unionid")
        except (requests.RequestException, ValueError, KeyError):
            log.warning("WeChat sandbox unreachable; demo users get made-up openids")
    return f"demo-{key}", None


def _share_link(merchant_id: int, member_id: int) -> str:
    with transaction(db.session):
        link = ShareLink(merchant_id=merchant_id, distributor_id=member_id,
                         token=new_token(merchant_id), page="pages/index/index")
        db.session.add(link)
    return link.token


def _products(merchant_id: int) -> None:
    with transaction(db.session):
        for title, price_fen, colour in PRODUCTS:
            db.session.add(Product(merchant_id=merchant_id, title=title, price_fen=price_fen,
                                   stock=500, image_urls=[_fruit_image(colour)]))


def _fruit_image(colour: tuple[int, int, int]) -> str:
    """A simple drawn product picture as a data URL, so the demo needs no image hosting."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (600, 600), (250, 246, 238))
    draw = ImageDraw.Draw(image)
    draw.ellipse((110, 130, 490, 510), fill=colour)
    draw.ellipse((250, 70, 350, 170), fill=(90, 150, 60))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _supplier_application() -> None:
    merchants.apply_as_supplier(name="山野茶坊", contact_name="林山", contact_phone="13900139000",
                                owner_username="tea-owner", owner_password=PASSWORD,
                                agreement_version=merchants.PLATFORM_AGREEMENT_VERSION,
                                box=secret_box())
