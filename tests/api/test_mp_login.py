"""POST /api/mp/v1/auth/login: WeChat codes in, our tokens out (API.md)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import User
from tests.support.wechat import sandbox_code

LOGIN = "/api/mp/v1/auth/login"


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_a_new_user_signs_in_and_gets_a_token(client, app):
    response = client.post(LOGIN, json={"code": sandbox_code("alice")})
    body = response.get_json()
    assert response.status_code == 200
    assert body["is_new_user"] is True
    assert body["expires_in"] > 0 and body["token"]
    assert body["user"] == {"id": body["user"]["id"], "nickname": "", "avatar_url": "",
                            "has_phone": False}
    assert user_count(app) == 1


def test_the_same_wechat_user_signs_in_again_as_the_same_user(client, login):
    first = login("alice")
    second = login("alice")
    assert second["is_new_user"] is False
    assert second["user"]["id"] == first["user"]["id"]
    assert login("bob")["user"]["id"] != first["user"]["id"]


def test_the_session_key_is_stored_encrypted_and_never_returned(client, app):
    response = client.post(LOGIN, json={"code": sandbox_code("alice")})
    assert "session_key" not in response.get_data(as_text=True)
    with app.app_context():
        from app import clients

        user = db.session.scalars(select(User)).one()
        session_key = clients.secret_box().decrypt(user.session_key_encrypted)
        assert len(session_key) == 24 and session_key not in user.session_key_encrypted
        assert user.openid.startswith("o") and user.unionid


def test_a_token_is_accepted_by_me(client, login):
    token = login("alice")["token"]
    response = client.get("/api/mp/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json()["has_phone"] is False


@pytest.mark.parametrize("code,status,error_code", [
    ("sandbox-error:40029", 400, "invalid_code"),
    ("sandbox-error:45011", 429, "wechat_rate_limited"),
    ("sandbox-error:40226", 403, "blocked_user"),
    ("sandbox-error:-1", 502, "upstream_error"),
    ("not-a-sandbox-code", 400, "invalid_code"),
])
def test_wechat_errors_map_to_the_statuses_of_the_api(client, app, code, status, error_code):
    response = client.post(LOGIN, json={"code": code})
    assert response.status_code == status
    assert response.get_json()["code"] == error_code
    assert set(response.get_json()) == {"code", "message", "errors"}
    assert user_count(app) == 0


def test_a_code_works_only_once(client):
    code = sandbox_code("alice")
    assert client.post(LOGIN, json={"code": code}).status_code == 200
    second = client.post(LOGIN, json={"code": code})
    assert second.status_code == 400
    assert second.get_json()["code"] == "invalid_code"


def test_wechat_unreachable_is_a_502(make_app):
    app = make_app(wechat_api_base_url="http://127.0.0.1:9")  # discard port: nothing listens
    response = app.test_client().post(LOGIN, json={"code": sandbox_code("alice")})
    assert response.status_code == 502
    assert response.get_json()["code"] == "upstream_error"
    assert user_count(app) == 0


@pytest.mark.parametrize("kwargs,field", [
    ({"json": {}}, "code"),
    ({"json": {"code": ""}}, "code"),
    ({"json": {"code": "x" * 10_000}}, "code"),
    ({"json": {"code": 12345}}, "code"),
    ({"json": ["sandbox:alice:1"]}, "body"),
    ({"json": {"code": "sandbox:alice:1", "is_admin": True}}, "is_admin"),
    ({"data": '{"code": "sandbox:alice:1"}', "content_type": "text/plain"}, "code"),
    ({"data": "code=sandbox:alice:1",
      "content_type": "application/x-www-form-urlencoded"}, "code"),
])
def test_bad_bodies_are_refused_with_the_field_named(client, app, kwargs, field):
    response = client.post(LOGIN, **kwargs)
    body = response.get_json()
    assert response.status_code == 422
    assert body["code"] == "invalid_input"
    assert field in body["errors"]
    assert user_count(app) == 0


def test_malformed_json_is_a_400_in_the_error_shape(client, app):
    response = client.post(LOGIN, data='{"code": ', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == "bad_request"
    assert "body" in response.get_json()["errors"]
    assert user_count(app) == 0


def test_a_body_over_the_size_limit_is_refused(client, app):
    response = client.post(LOGIN, data="x" * (2 * 1024 * 1024), content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"


def test_sign_ins_are_rate_limited_per_client_ip(make_app):
    client = make_app(login_rate_limit_ip="3/minute").test_client()
    statuses = [client.post(LOGIN, json={"code": sandbox_code(f"u{i}")}).status_code
                for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.post(LOGIN, json={"code": sandbox_code("u9")})
    assert limited.get_json()["code"] == "rate_limited"
    assert "Retry-After" in limited.headers


def test_sign_ins_are_rate_limited_per_openid(make_app):
    client = make_app(login_rate_limit_openid="2/minute").test_client()
    statuses = [client.post(LOGIN, json={"code": sandbox_code("alice")}).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert client.post(LOGIN, json={"code": sandbox_code("bob")}).status_code == 200
