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
