"""Sign-in against real PostgreSQL, redis-server and the WeChat sandbox process."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import clients
from app.extensions import db, redis
from app.integrations import redis_keys
from app.models import User
from app.services import auth as auth_service
from tests.support.servers import free_port
from tests.support.wechat import sandbox_code, sandbox_phone_code

pytestmark = pytest.mark.redis_topologies


def _login(app, user_key: str):
    with app.app_context():
        return auth_service.login_with_code(
            code=sandbox_code(user_key), appid=clients.settings().wechat_appid,
            wechat=clients.mini_program(), box=clients.secret_box(),
            openid_limit=clients.openid_login_limit(),
        )


def test_concurrent_first_sign_ins_of_one_user_create_one_user(app):
    barrier = threading.Barrier(8)
    results, errors = [], []

    def sign_in():
        barrier.wait()
        try:
            result = _login(app, "racer")
            results.append((result.user.id, result.is_new_user))
        except Exception as error:  # noqa: BLE001 — collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=sign_in) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({user_id for user_id, _ in results}) == 1
    assert sum(is_new for _, is_new in results) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_the_access_token_is_fetched_once_and_shared_through_redis(app):
    user = _login(app, "alice").user
    with app.app_context():
        key = redis_keys.wechat_access_token(clients.settings().wechat_appid)
        auth_service.bind_phone(user_id=user.id, code=sandbox_phone_code("13800000001"),
                                wechat=clients.mini_program(), box=clients.secret_box())
        cached = redis.client.get(key)
        assert cached
        assert 0 < redis.client.ttl(key) <= 7200 - 300
        # A second call reuses the cached token instead of fetching another.
        auth_service.bind_phone(user_id=user.id, code=sandbox_phone_code("13800000002"),
                                wechat=clients.mini_program(), box=clients.secret_box())
        assert redis.client.get(key) == cached


def test_a_revoked_token_stays_denied_exactly_as_long_as_it_would_have_lived(app):
    with app.app_context():
        expires_at = datetime.now(UTC) + timedelta(seconds=120)
        auth_service.sign_out(token_id="t-1", expires_at=expires_at, redis_client=redis.client)
        assert 115 <= redis.client.ttl(redis_keys.revoked_token("t-1")) <= 121


def test_sign_in_and_me_work_while_redis_is_down(make_app):
    """Redis never decides whether a user may sign in: limits and caches fail open."""
    down = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = down.test_client()
    response = client.post("/api/mp/v1/auth/login", json={"code": sandbox_code("offline")})
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["token"]
    assert client.get("/api/mp/v1/me", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 200
    with down.app_context():
        db.session.execute(db.delete(User))
        db.session.commit()
