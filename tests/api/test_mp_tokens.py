"""Bearer tokens on mini-program routes: expiry, forgery, revocation (API.md, Auth)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from app.security import issue_token

ME = "/api/mp/v1/me"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_is_a_401(client):
    response = client.get(ME)
    assert response.status_code == 401
    assert response.get_json()["code"] == "missing_token"


def test_an_expired_token_is_a_401(client, app, login):
    user_id = login("alice")["user"]["id"]
    token, _ = issue_token(secret_key=app.config["SECRET_KEY"], audience="mp", subject=user_id,
                           ttl_seconds=60, now=datetime.now(UTC) - timedelta(hours=1))
    response = client.get(ME, headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_expired"


def test_a_forged_token_is_a_401(client, login):
    user_id = login("alice")["user"]["id"]
    now = datetime.now(UTC)
    forged = jwt.encode({"sub": str(user_id), "aud": "mp", "jti": "x", "iat": now,
                         "exp": now + timedelta(hours=1)}, "guessed-secret", algorithm="HS256")
    response = client.get(ME, headers=bearer(forged))
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_token"


def test_a_tampered_token_is_a_401(client, login):
    token = login("alice")["token"]
    header, payload, signature = token.split(".")
    tampered = ".".join([header, payload, signature[:-2] + ("AA" if signature[-2:] != "AA"
                                                            else "BB")])
    assert client.get(ME, headers=bearer(tampered)).status_code == 401


def test_logout_revokes_the_token_and_only_that_token(client, login):
    first = login("alice")["token"]
    second = login("alice")["token"]
    assert client.post("/api/mp/v1/auth/logout", headers=bearer(first)).status_code == 204
    revoked = client.get(ME, headers=bearer(first))
    assert revoked.status_code == 401
    assert revoked.get_json()["code"] == "token_revoked"
    assert client.get(ME, headers=bearer(second)).status_code == 200


def test_a_deleted_users_token_is_refused(client, app, login):
    from app.extensions import db
    from app.models import User

    body = login("alice")
    with app.app_context():
        db.session.delete(db.session.get(User, body["user"]["id"]))
        db.session.commit()
    response = client.get(ME, headers=bearer(body["token"]))
    assert response.status_code == 404
    assert response.get_json()["code"] == "user_not_found"
