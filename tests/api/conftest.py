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
