"""GET/PATCH /api/mp/v1/me and POST /api/mp/v1/me/phone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from tests.support.wechat import sandbox_phone_code

ME = "/api/mp/v1/me"


def test_a_profile_is_updated_field_by_field(client, auth_headers):
    headers = auth_headers("alice")
    response = client.patch(ME, json={"nickname": "小明", "gender": 1, "birth_year": 1990},
                            headers=headers)
    assert response.status_code == 200
    assert client.patch(ME, json={"region": "广东 深圳"}, headers=headers).status_code == 200
    profile = client.get(ME, headers=headers).get_json()
    assert (profile["nickname"], profile["gender"], profile["birth_year"], profile["region"]) \
        == ("小明", 1, 1990, "广东 深圳")


@pytest.mark.parametrize("changes,field", [
    ({"gender": 7}, "gender"),
    ({"birth_year": 1800}, "birth_year"),
    ({"nickname": "x" * 65}, "nickname"),
    ({"id": 99}, "id"),
    ({"openid": "o-someone-else"}, "openid"),
    ({"has_phone": True}, "has_phone"),
])
def test_bad_or_protected_profile_fields_are_refused_and_nothing_changes(client, app,
                                                                        auth_headers, changes,
                                                                        field):
    headers = auth_headers("alice")
    client.patch(ME, json={"region": "before"}, headers=headers)
    response = client.patch(ME, json={**changes, "region": "after"}, headers=headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert client.get(ME, headers=headers).get_json()["region"] == "before"


def test_a_phone_is_bound_masked_and_stored_encrypted(client, app, auth_headers):
    headers = auth_headers("alice")
    response = client.post(f"{ME}/phone", json={"code": sandbox_phone_code("13812345678")},
                           headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"has_phone": True, "phone_masked": "138****5678"}
    assert client.get(ME, headers=headers).get_json()["phone_masked"] == "138****5678"
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert "13812345678" not in (user.phone_encrypted or "")
        assert user.phone_hash and "13812345678" not in user.phone_hash


def test_an_invalid_phone_code_is_a_400(client, auth_headers):
    response = client.post(f"{ME}/phone", json={"code": "sandbox-error:40029"},
                           headers=auth_headers("alice"))
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_code"


def test_the_phone_route_needs_a_token(client):
    assert client.post(f"{ME}/phone", json={"code": "sandbox-phone:13812345678"}).status_code \
        == 401
