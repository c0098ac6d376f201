"""The console's pages through the test client: sign-in, CSRF on every form, and roles and
tenancy enforced on the server whatever the page shows."""

from __future__ import annotations

import re

import pytest
from flask import g

from app.extensions import db
from app.models import Member
from tests.factories import make_member


def csrf_token(client, path: str = "/console/login") -> str:
    """The token in the page at ``path``. The test's own app context stays pushed across
    requests, so Flask-WTF's per-context cache of the token is dropped first (a real request
    always starts with a fresh context)."""
    g.pop("csrf_token", None)
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, username: str = "owner1", password: str = "pw-12345"):
    return client.post("/console/login", data={"username": username, "password": password,
                                               "csrf_token": csrf_token(client)})


def test_pages_need_a_signed_in_staff_member(client, shop):
    response = client.get("/console/distributors")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login")


def test_signing_in_opens_the_dashboard_and_signing_out_ends_the_session(client, shop):
    response = sign_in(client)
    assert response.status_code == 302 and response.headers["Location"] == "/console/dashboard"
    assert client.get("/console/dashboard").status_code == 200
    client.post("/console/logout", data={"csrf_token": csrf_token(client, "/console/dashboard")})
    assert client.get("/console/dashboard").status_code == 302


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(client, shop):
    response = sign_in(client, password="wrong")
    assert response.status_code == 401
    assert "用户名或密码不正确" in response.get_data(as_text=True)


def test_a_form_without_its_csrf_token_changes_nothing(client, shop):
    pending = make_member(shop, status="pending")
    sign_in(client)
    response = client.post(f"/console/distributors/{pending.id}/approve", data={})
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Member, (shop.id, pending.id)).distributor_status == "pending"


def test_a_nul_character_in_a_form_is_refused_on_the_error_page_and_changes_nothing(client,
                                                                                    shop):
    member = make_member(shop)
    sign_in(client)
    response = client.post(f"/console/distributors/{member.id}/freeze", data={
        "reason": "刷单\x00", "csrf_token": csrf_token(client, "/console/dashboard")})
    assert response.status_code == 422
    assert "reason" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Member, (shop.id, member.id)).distributor_status == "active"
    login = client.post("/console/login", data={"username": "own\x00er1", "password": "x",
                                                "csrf_token": csrf_token(client)})
    assert login.status_code == 422


def test_an_application_is_approved_from_the_page(client, shop):
    pending = make_member(shop, status="pending")
    sign_in(client, "operator1")
    response = client.post(f"/console/distributors/{pending.id}/approve",
                           data={"csrf_token": csrf_token(client, "/console/distributors")})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Member, (shop.id, pending.id)).distributor_status == "active"


@pytest.mark.parametrize(("username", "path"), [
    ("operator1", "/console/withdrawals"),
    ("finance1", "/console/distributors"),
    ("finance1", "/console/settings"),
])
def test_a_role_cannot_open_another_roles_pages(client, shop, username, path):
    sign_in(client, username)
    response = client.get(path)
    assert response.status_code == 403
    assert "无权访问" in response.get_data(as_text=True)


def test_an_operator_cannot_post_a_finance_action_even_without_the_page(client, shop):
    sign_in(client, "operator1")
    token = csrf_token(client, "/console/dashboard")
    response = client.post("/console/withdrawals/1/approve", data={"csrf_token": token})
    assert response.status_code == 403


def test_an_operator_cannot_change_money_rules(client, shop):
    sign_in(client, "operator1")
    token = csrf_token(client, "/console/settings")
    response = client.post("/console/settings/distribution",
                           data={"csrf_token": token, "rate_1": "20"})
    assert response.status_code == 403


def test_another_merchants_member_is_not_found(client, shop, other_shop):
    foreign = make_member(other_shop)
    sign_in(client)
    assert client.get(f"/console/distributors/{foreign.id}").status_code == 404
    token = csrf_token(client, "/console/dashboard")
    assert client.post(f"/console/distributors/{foreign.id}/freeze",
                       data={"csrf_token": token, "reason": "x"}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Member, (other_shop.id, foreign.id)).distributor_status == "active"


def test_the_rate_preview_answers_what_each_tier_earns(client, shop):
    sign_in(client)
    token = csrf_token(client, "/console/settings")
    response = client.post("/console/settings/preview", data={
        "csrf_token": token, "tiers": "2", "rate_1": "12.5", "rate_2": "3"})
    assert response.status_code == 200
    assert [t["amount_fen"] for t in response.get_json()["tiers"]] == [1_250, 300]
    bad = client.post("/console/settings/preview", data={"csrf_token": token, "rate_1": "x"})
    assert bad.status_code == 422 and "rate_1" in bad.get_json()["errors"]


def test_pages_forbid_framing_and_foreign_scripts(client, shop):
    response = client.get("/console/login")
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
