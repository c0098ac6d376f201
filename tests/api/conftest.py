from __future__ import annotations

import pytest

from tests.support.wechat import sandbox_code


@pytest.fixture
def login(client):
    def _login(user_key: str = "alice") -> dict:
        response = client.post("/api/mp/v1/auth/login", json={"code": sandbox_code(user_key)})
        assert response.status_code == 200, response.get_json()
        return response.get_json()
    return _login


@pytest.fixture
def auth_headers(login):
    def _headers(user_key: str = "alice") -> dict:
        return {"Authorization": f"Bearer {login(user_key)['token']}"}
    return _headers


@pytest.fixture
def shop(app_context):
    """An approved merchant with owner, operator and finance accounts (password pw-12345)."""
    from app.services.merchants import create_merchant
    from app.services.staff import add_staff

    merchant = create_merchant(name="鲜果小铺", owner_username="owner1",
                               owner_password="pw-12345")
    add_staff(merchant_id=merchant.id, username="operator1", password="pw-12345",
              role="operator")
    add_staff(merchant_id=merchant.id, username="finance1", password="pw-12345", role="finance")
    return merchant


@pytest.fixture
def other_shop(app_context):
    from app.services.merchants import create_merchant

    return create_merchant(name="别家店", owner_username="owner2", owner_password="pw-12345")


@pytest.fixture
def staff_headers(client):
    def _headers(username: str = "owner1", password: str = "pw-12345") -> dict:
        response = client.post("/api/console/v1/auth/login",
                               json={"username": username, "password": password})
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['token']}"}
    return _headers


@pytest.fixture
def pay_account(client, shop, staff_headers, sandbox_url):
    """Give ``shop`` a fresh sandbox WeChat Pay account through PUT /settings/payment; returns
    the account's credentials (mode: v3_public_key, v3_certificate or v2 + sign_type)."""
    from tests.support.wechatpay import sandbox_merchant, settings_body

    def _configure(mode: str = "v3_public_key", sign_type: str = "MD5") -> dict:
        account = sandbox_merchant(sandbox_url, mode, sign_type)
        response = client.put("/api/console/v1/settings/payment", json=settings_body(account),
                              headers=staff_headers())
        assert response.status_code == 200, response.get_json()
        return account
    return _configure


@pytest.fixture
def add_product(client, shop, staff_headers):
    def _add(price_fen: int = 10_000, stock: int = 100, **fields) -> dict:
        response = client.post("/api/console/v1/products", headers=staff_headers(),
                               json={"title": fields.pop("title", "丑橘 5斤"),
                                     "price_fen": price_fen, "stock": stock, **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()
    return _add


@pytest.fixture
def chain(login, shop):
    """alice (tier 2) ← bob (tier 1) ← carol (the buyer), as signed-in sandbox users whose
    memberships bind them in that order. Values: {"headers", "member"} per name."""
    from app.extensions import db
    from app.models import User
    from tests.factories import make_member

    people, upline = {}, None
    for name, status in (("alice", "active"), ("bob", "active"), ("carol", "none")):
        session = login(name)
        user = db.session.get(User, session["user"]["id"])
        member = make_member(shop, user=user, upline=upline, status=status)
        people[name] = {"headers": {"Authorization": f"Bearer {session['token']}"},
                        "member": member}
        upline = member
    return people


ADDRESS = {"receiver": "张三", "phone": "13800000000", "province": "广东省", "city": "深圳市",
           "district": "南山区", "detail": "科技园 1 号"}
