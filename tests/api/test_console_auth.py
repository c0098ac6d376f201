"""POST /api/console/v1/auth/login and role checks."""

from __future__ import annotations

LOGIN = "/api/console/v1/auth/login"


def test_staff_sign_in_with_their_role_and_merchant(client, shop):
    response = client.post(LOGIN, json={"username": "operator1", "password": "pw-12345"})
    body = response.get_json()
    assert response.status_code == 200
    assert body["merchant_id"] == shop.id and body["role"] == "operator"
    assert body["expires_in"] == 12 * 3600


def test_a_wrong_password_and_an_unknown_user_look_the_same(client, shop):
    wrong = client.post(LOGIN, json={"username": "owner1", "password": "nope-nope"})
    unknown = client.post(LOGIN, json={"username": "ghost", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["code"] == "invalid_credentials"


def test_passwords_are_stored_hashed_with_argon2(app_context, shop):
    from sqlalchemy import select

    from app.extensions import db
    from app.models import StaffAccount

    stored = db.session.scalars(select(StaffAccount.password_hash)).all()
    assert all(h.startswith("$argon2id$") and "pw-12345" not in h for h in stored)


def test_repeated_failures_are_rate_limited(make_app, shop):
    client = make_app(login_rate_limit_ip="3/minute").test_client()
    statuses = [client.post(LOGIN, json={"username": "owner1", "password": "bad-pass"})
                .status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_a_pending_merchants_owner_cannot_sign_in_yet(client, app_context):
    from app import clients
    from app.services.merchants import PLATFORM_AGREEMENT_VERSION, apply_as_supplier

    apply_as_supplier(name="新店", contact_name="张三", contact_phone="13800000000",
                      owner_username="newowner", owner_password="pw-12345",
                      agreement_version=PLATFORM_AGREEMENT_VERSION, box=clients.secret_box())
    response = client.post(LOGIN, json={"username": "newowner", "password": "pw-12345"})
    assert response.status_code == 403
    assert response.get_json()["code"] == "merchant_pending"


def test_a_mini_program_token_is_not_a_console_token(client, shop, login):
    token = login("alice")["token"]
    response = client.get("/api/console/v1/distributors",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_console_logout_revokes_the_token(client, shop, staff_headers):
    headers = staff_headers()
    assert client.post("/api/console/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/console/v1/distributors", headers=headers).status_code == 401


def test_a_deactivated_staff_token_stops_working_at_once(client, shop, staff_headers):
    from sqlalchemy import update

    from app.extensions import db
    from app.models import StaffAccount

    headers = staff_headers("operator1")
    db.session.execute(update(StaffAccount).where(StaffAccount.username == "operator1")
                       .values(is_active=False))
    db.session.commit()
    assert client.get("/api/console/v1/distributors", headers=headers).status_code == 401


def test_only_the_owner_manages_staff(client, shop, staff_headers):
    body = {"username": "packer1", "password": "pw-123456", "role": "operator"}
    denied = client.post("/api/console/v1/staff", json=body, headers=staff_headers("operator1"))
    assert denied.status_code == 403 and denied.get_json()["code"] == "role_forbidden"
    created = client.post("/api/console/v1/staff", json=body, headers=staff_headers())
    assert created.status_code == 201 and "password" not in created.get_json()
    taken = client.post("/api/console/v1/staff", json=body, headers=staff_headers())
    assert taken.status_code == 409 and "username" in taken.get_json()["errors"]
