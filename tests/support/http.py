"""A small client for a served app (gunicorn in the end-to-end tests)."""

from __future__ import annotations

import requests

from tests.support.wechat import sandbox_code


class Api:
    """requests against a served app; every call states the status it expects."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def call(self, method: str, path: str, *, expect: int = 200, headers: dict | None = None,
             json_body: dict | None = None) -> dict:
        response = requests.request(method, self.base_url + path, json=json_body,
                                    headers=headers, timeout=30)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json()

    def sign_in(self, user_key: str) -> dict:
        session = self.call("POST", "/api/mp/v1/auth/login",
                            json_body={"code": sandbox_code(user_key)})
        return {"Authorization": f"Bearer {session['token']}"}
