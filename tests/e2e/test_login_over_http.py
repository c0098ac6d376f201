"""End to end: gunicorn and the WeChat sandbox as real processes, sign-in over plain HTTP."""

from __future__ import annotations

import requests

from tests.support.wechat import sandbox_code


def test_a_user_signs_in_over_http_and_reads_their_profile(served_app):
    base_url, _ = served_app
    login = requests.post(f"{base_url}/api/mp/v1/auth/login",
                          json={"code": sandbox_code("e2e-user")}, timeout=10)
    assert login.status_code == 200, login.text
    assert login.headers["X-Request-ID"]
    token = login.json()["token"]
    me = requests.get(f"{base_url}/api/mp/v1/me", headers={"Authorization": f"Bearer {token}"},
                      timeout=10)
    assert me.status_code == 200
    assert me.json()["id"] == login.json()["user"]["id"]


def test_a_wechat_error_crosses_the_wire_in_the_error_shape(served_app):
    base_url, _ = served_app
    response = requests.post(f"{base_url}/api/mp/v1/auth/login",
                             json={"code": "sandbox-error:40226"}, timeout=10)
    assert response.status_code == 403
    assert response.json()["code"] == "blocked_user"


def test_the_served_app_logs_json_without_tokens(served_app):
    base_url, process = served_app
    login = requests.post(f"{base_url}/api/mp/v1/auth/login",
                          json={"code": sandbox_code("log-check")}, timeout=10)
    token = login.json()["token"]
    requests.get(f"{base_url}/api/mp/v1/me", headers={"Authorization": f"Bearer {token}"},
                 timeout=10)
    log = process.log_text()
    assert '"logger": "fenxiao.access"' in log and '"request_id"' in log
    assert token not in log
